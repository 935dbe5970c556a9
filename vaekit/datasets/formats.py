"""The file formats, one list (`FORMATS`) that `vaekit datasets`, the README and the readers
read, and the one suffix dispatch (`format_of`, `read_raw`)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vaekit.datasets.arrays import load_npy, load_npz
from vaekit.datasets.builtin import BUILTIN, builtin_names
from vaekit.datasets.hdf5 import read_hdf5
from vaekit.datasets.images import IMAGE_SUFFIXES, load_images
from vaekit.datasets.raw import RawData
from vaekit.datasets.tables import HDF5_SUFFIXES, PARQUET_SUFFIXES, TEXT_SUFFIXES, read_table_file
from vaekit.errors import VaekitError, check


@dataclass(frozen=True)
class FileFormat:
    """A kind of file vaekit reads: its `name` as messages say it, the `suffixes` that select it,
    its reader `read(path, options) -> RawData` (options: label_column, keys, image_options,
    only_columns, table_options, as `read_raw` takes them), what `vaekit datasets` says of it,
    and whether --label-column names one of its columns."""

    name: str
    suffixes: tuple[str, ...]
    read: Callable[[Path, dict], RawData]
    help: str
    labels_by_column: bool = False


# every file format, one row each: `read_raw` dispatches through it, its messages and
# `vaekit datasets` list it (a format without a row fails tests/test_data_faithful.py)
FORMATS: list[FileFormat] = [
    FileFormat("a .npy array", (".npy",), lambda p, o: load_npy(p), "a .npy array"),
    FileFormat(
        "a .npz archive",
        (".npz",),
        lambda p, o: load_npz(p, o.get("keys")),
        "a .npz with x, y, factors (--x-key, --y-key, --factors-key)",
    ),
    FileFormat(
        "a text table (.csv, .tsv, .txt)",
        tuple(TEXT_SUFFIXES),
        read_table_file,
        "a table as .csv/.tsv/.txt (separator and decimal comma detected)",
        labels_by_column=True,
    ),
    FileFormat(
        "a Parquet table",
        PARQUET_SUFFIXES,
        read_table_file,
        "a Parquet table (.parquet)",
        labels_by_column=True,
    ),
    FileFormat(
        "an HDF5 file (.h5)",
        HDF5_SUFFIXES,
        read_hdf5,
        "an HDF5 file (.h5): image-shaped datasets as arrays (--x-key, --y-key, --factors-key), else a "
        "table (--key dataset, compound dataset or group of columns)",
        labels_by_column=True,
    ),
    FileFormat(
        "an image file",
        tuple(sorted(IMAGE_SUFFIXES)),
        lambda p, o: load_images(p, o.get("image_options")),
        "an image file or a folder of images (PNG, JPEG, BMP, GIF, TIFF; sub-folders as labels)",
    ),
]


def format_of(path: Path) -> FileFormat | None:
    """The `FileFormat` that reads `path` (by its suffix, any case), or None."""
    suffix = Path(path).suffix.lower()
    return next((f for f in FORMATS if suffix in f.suffixes), None)


def read_raw(
    source: str | os.PathLike,
    label_column: str | None = None,
    keys: dict | None = None,
    image_options: dict | None = None,
    only_columns: list[str] | None = None,
    table_options: dict | None = None,
) -> RawData:
    """Read a built-in data set by name, or a user's file or folder, in the user's units.

    `only_columns`: for a table, read just these feature columns (a run's own, when a file is
    scored or encoded): the file's other columns, ids and text included, are skipped.

    `keys`: for an .npz, the archive's names of x, y and factors (default "x", "y", "factors");
    for an HDF5 file, "table" names the dataset or group that holds the table. `image_options`:
    {"alpha": "composite" | "keep", "background": grey level in [0, 1]} for images.
    `table_options`: for a table, {"sep", "decimal", "id_column", "column_types", "missing",
    "schema"} (see `load_table`)."""
    text = str(source)
    if text in BUILTIN:
        raw = BUILTIN[text][0]()
        raw.source = raw.source or text
        return raw
    from vaekit.datasets import downloads

    if text in downloads.REMOTE:
        return downloads.load(text)
    path = Path(text).expanduser()
    looks_like_path = os.sep in text or path.suffix != ""
    if not path.exists():
        if looks_like_path:
            raise VaekitError(
                f"No file or folder at {path}; check the path, or run `vaekit datasets` "
                "to list the built-in data sets."
            )
        raise VaekitError(
            f"Unknown data set {text!r}: it is neither a built-in name "
            f"({', '.join(builtin_names())}) nor an existing path."
        )
    if path.is_dir():
        return load_images(path, image_options)
    check(os.access(path, os.R_OK), f"{path} cannot be read (permission denied); fix its mode.")
    check(path.stat().st_size > 0, f"{path} is empty (0 bytes); give a file that holds the data.")
    suffix = path.suffix.lower()
    form = format_of(path)
    if form is None:
        raise VaekitError(
            f"{path} has the suffix {suffix!r}, which vaekit cannot read; give "
            f"{', '.join(f.name for f in FORMATS[:-1])} or {FORMATS[-1].name}, or a folder of images."
        )
    options = {
        "label_column": label_column,
        "keys": keys,
        "image_options": image_options,
        "only_columns": only_columns,
        "table_options": table_options,
    }
    raw = form.read(path, options)
    if label_column is not None and not form.labels_by_column:
        raise VaekitError(
            "--label-column applies to tables (CSV, Parquet, HDF5) only; drop it for this data."
        )
    return raw
