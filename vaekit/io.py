"""Atomic file writes (a reader never sees a half-written file, even after SIGKILL), content
hashes of the files a run read, and vaekit's cache folder."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from vaekit.errors import VaekitError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the same folder; on success fsync it and rename it onto `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` atomically (see `atomic_path`), creating its folder; mode 0o644."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write `text` as UTF-8 to `path` atomically."""
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write `obj` as indented JSON (keys in their order, a final newline) to `path` atomically."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def write_yaml(path: str | os.PathLike, obj: Any) -> None:
    """Write `obj` as YAML (`yaml.safe_dump`, keys in their order) to `path` atomically."""
    write_text(path, yaml.safe_dump(obj, sort_keys=False))


def write_jsonl(path: str | os.PathLike, rows: list[dict]) -> None:
    """Rewrite a JSON-lines file atomically with `rows` (small files: one row per epoch)."""
    write_text(path, "".join(json.dumps(r) + "\n" for r in rows))


TABLE_SUFFIXES = (".csv", ".parquet", ".npy")


def write_table(path: str | os.PathLike, frame, shape: tuple[int, ...] | None = None) -> Path:
    """A pandas DataFrame to `path`, atomically, by its suffix: .csv (every float as its
    shortest round-trip text, so values read back exactly), .parquet, or .npy (the numbers as a
    float64 array (n, *shape); `shape` is one example's, e.g. an image's (1, 28, 28), default
    (n_columns,)). Raises `VaekitError` for another suffix, or a .npy of a frame that holds text.
    Returns the path."""
    import numpy as np
    import pandas as pd

    path = Path(path)
    if path.suffix not in TABLE_SUFFIXES:
        raise VaekitError(f"--out must end in .csv, .parquet or .npy, not {path.name!r}.")
    if path.suffix == ".npy":
        if not all(pd.api.types.is_numeric_dtype(frame[c]) for c in frame.columns):
            raise VaekitError(
                "These rows hold text categories, which a .npy array cannot hold; write a .csv or .parquet."
            )
        values = frame.to_numpy(dtype=np.float64)
        values = values.reshape(len(values), *(shape or values.shape[1:]))
    with atomic_path(path) as tmp:
        if path.suffix == ".parquet":
            frame.to_parquet(tmp, index=False)
        elif path.suffix == ".csv":
            frame.to_csv(tmp, index=False)
        else:
            with open(tmp, "wb") as f:
                np.save(f, values)
    return path


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """The rows of a JSON-lines file, blank lines skipped; [] when the file does not exist."""
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                raise VaekitError(
                    f"{path} line {number} is not valid JSON; the file was edited or damaged: restore it."
                ) from None
    return rows


def file_digest(path: str | os.PathLike, algorithm: str = "sha256", chunk: int = 1 << 22) -> str:
    """The hex digest of a file's bytes (`algorithm`: any hashlib name), read in chunks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def content_sha256(path: str | os.PathLike, chunk: int = 1 << 22) -> str:
    """The SHA-256 (hex) of a file's bytes, or of a folder's files: each file's path relative to
    the folder and its bytes, in sorted order (hidden files skipped), so a renamed, added or
    changed image changes it."""
    path = Path(path)
    digest = hashlib.sha256()
    files = (
        [path]
        if path.is_file()
        else sorted(
            p
            for p in path.rglob("*")
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
        )
    )
    for file in files:
        if file != path:
            digest.update(str(file.relative_to(path)).encode() + b"\0")
        with open(file, "rb") as f:
            while block := f.read(chunk):
                digest.update(block)
    return digest.hexdigest()


def cache_dir() -> Path:
    """vaekit's cache folder (downloaded sets, decoded image folders, rendered sprites):
    `$VAEKIT_CACHE`, else the user's cache folder (e.g. ~/.cache/vaekit)."""
    given = os.environ.get("VAEKIT_CACHE")
    if given:
        return Path(given).expanduser()
    import pooch

    return Path(pooch.os_cache("vaekit"))
