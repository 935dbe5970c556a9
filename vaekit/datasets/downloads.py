"""The data sets the field uses by name: fetched once, verified, cached.

Each file is one registry row (`RemoteFile`): its ordered mirrors, byte size and hash (SHA-256;
MD5 only where the publisher gives nothing else). A named set (`RemoteSet`) lists its files with
the licence, the citation and a reader that turns the verified files into `RawData` without
unpickling anything. pooch does the transfer: it streams into a temporary file beside the
target and renames it only once the hash matches, so a killed download never leaves a file that
passes as complete. Before that, the payload's size is checked and an HTML page (a mirror's
error or quota page saved under the file's name) is refused.

Files live in `$VAEKIT_CACHE` (default: the user's cache folder, e.g. ~/.cache/vaekit). A
verified file there is used without touching the network; a file placed there by hand is
verified the same way. `$VAEKIT_MIRROR` (a base URL, e.g. a lab's own copy) is tried before the
registry's mirrors. Two processes fetching one file take turns (a file lock beside it).

A file published on a Zenodo record (the LHC anomaly-detection challenge's tables) is checked
against the size and MD5 that the record's file list publishes: the record is read once, at the
first download, and kept beside the file (`NAME.record.json`), so later uses and a file placed
by hand are verified against it without the network.
"""

from __future__ import annotations

import gzip
import json
import os
import sys
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from vaekit import io
from vaekit.errors import VaekitError, check
from vaekit.io import cache_dir


@dataclass(frozen=True)
class RemoteFile:
    """One downloadable file: `filename` in the cache, `urls` tried in order, `size` in bytes
    (None where no source publishes it: then only the hash decides), and its `sha256` (or, where
    the publisher gives only that, its `md5`)."""

    filename: str
    urls: tuple[str, ...]
    size: int | None
    sha256: str | None = None
    md5: str | None = None
    # a file never downloaded automatically (`urls` empty): why, and the page to fetch it from
    by_hand_only: str | None = None
    page: str | None = None
    # a file whose size and MD5 its publisher gives in a record's file list (Zenodo's API: files
    # with key, size and checksum "md5:..."), not in this registry: the record's URL
    record: str | None = None

    def known_hash(self) -> str:
        """The hash as pooch takes it ("sha256:..." or "md5:...")."""
        return f"sha256:{self.sha256}" if self.sha256 else f"md5:{self.md5}"

    def hash_text(self) -> str:
        """The hash in words for a message ("SHA-256 abc..." or "MD5 abc...")."""
        if self.sha256 is None and self.md5 is None and self.record:
            return f"the MD5 its record {self.record} publishes"
        return f"SHA-256 {self.sha256}" if self.sha256 else f"MD5 {self.md5}"


@dataclass(frozen=True)
class RemoteSet:
    """A named data set: its files by role, what it is, its licence and citation, and `read`,
    which turns {role: verified path} into `vaekit.datasets.RawData`."""

    name: str
    files: dict[str, RemoteFile]
    description: str
    licence: str
    citation: str
    read: Callable[[dict[str, Path]], object] = field(repr=False)

    @property
    def size(self) -> int:
        """Bytes to download, all files together (those of known size)."""
        return sum(f.size or 0 for f in self.files.values())

    def size_text(self) -> str:
        """The download size in words: "11.6 MB", "size on its record" for a file whose record
        gives it, or "size unpublished" for a file no source sizes."""
        if any(f.size is None and f.record for f in self.files.values()):
            return "size on its record"
        if any(f.size is None for f in self.files.values()):
            return "size unpublished"
        return human_size(self.size)


REMOTE: dict[str, RemoteSet] = {}


def register(remote: RemoteSet) -> RemoteSet:
    """Add a named set to `REMOTE`."""
    REMOTE[remote.name] = remote
    return remote


def human_size(size: int) -> str:
    """Bytes in words: "4,542 bytes", "9.9 MB", "1.4 GB" (powers of 1,000)."""
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:,} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"


def problem(path: Path, remote: RemoteFile) -> str | None:
    """Why the file at `path` is not `remote` (size first, then an HTML page, then the hash), or
    None when it is."""
    size = path.stat().st_size
    if remote.size is not None and size != remote.size:
        what = " (an HTML page, not the data)" if _is_html(path) else ""
        return f"it has {size:,} bytes{what}, not {remote.size:,}"
    if _is_html(path):
        return "it is an HTML page, not the data"
    algorithm, expected = ("sha256", remote.sha256) if remote.sha256 else ("md5", remote.md5)
    actual = io.file_digest(path, algorithm)
    if actual != expected:
        return f"its {algorithm.upper()} is {actual}, not {expected}"
    return None


def _is_html(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(512).lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html", b"<?xml", b"<head"))


def _urls(remote: RemoteFile) -> list[str]:
    mirror = os.environ.get("VAEKIT_MIRROR")
    first = [mirror.rstrip("/") + "/" + remote.filename] if mirror else []
    return first + list(remote.urls)


def by_hand(remote: RemoteFile, path: Path) -> str:
    """The sentence a user needs to fetch the file without vaekit."""
    if remote.record and remote.sha256 is None and remote.md5 is None:
        return (
            f"fetch {remote.filename} from {' or '.join(remote.urls)} by hand and put it at {path}, with its "
            f"record's file list ({remote.record}, which publishes its size and MD5) saved beside it as "
            f"{record_copy(path).name}; vaekit verifies it against the record and uses it"
        )
    return (
        f"fetch {remote.filename} ({human_size(remote.size) if remote.size else 'size not published'}) from "
        f"{' or '.join(remote.urls) or remote.page} by hand and put it "
        f"at {path} ({remote.hash_text()}); vaekit verifies it and uses it"
    )


def record_copy(path: Path) -> Path:
    """Where the record of the file at `path` is kept: beside it, `NAME.record.json`."""
    return path.with_name(path.name + ".record.json")


class _NoRecord(Exception):
    """A record that could not be read (no connection, a server error)."""


def published(remote: RemoteFile, path: Path) -> RemoteFile:
    """`remote` with the size and MD5 its record publishes, from the copy kept beside the file at
    `path`, else read from the record's URL (and then kept). A file with its hash in the
    registry is returned as it is. Raises `_NoRecord` when the record cannot be read, and
    `VaekitError` for a record that does not list the file with an MD5."""
    if remote.record is None or remote.sha256 or remote.md5:
        return remote
    kept = record_copy(path)
    if kept.exists():
        text = kept.read_bytes()
    else:
        import requests

        try:
            answer = requests.get(remote.record, timeout=60)
            answer.raise_for_status()
        except Exception as err:  # noqa: BLE001 - any failure to read it: said with the by-hand way
            raise _NoRecord(_reason(err)) from None
        text = answer.content
    try:
        listing = json.loads(text)
    except ValueError:
        listing = None
    entries = listing.get("files") if isinstance(listing, dict) else None
    check(
        isinstance(entries, list),
        f"{remote.record} is not a record's file list (JSON with 'files'); delete {kept} if it is there.",
    )
    entry = next((e for e in entries if isinstance(e, dict) and e.get("key") == remote.filename), None)
    listed = ", ".join(str(e.get("key")) for e in entries if isinstance(e, dict))
    check(
        entry is not None, f"The record {remote.record} lists no file {remote.filename} (it lists: {listed})."
    )
    algorithm, _, value = str(entry.get("checksum", "")).partition(":")
    check(
        algorithm == "md5" and len(value) == 32 and isinstance(entry.get("size"), int),
        f"The record {remote.record} gives {remote.filename} no size and MD5 to verify it by.",
    )
    if not kept.exists():
        kept.parent.mkdir(parents=True, exist_ok=True)
        with io.atomic_path(kept) as tmp:
            Path(tmp).write_bytes(text)
    return replace(remote, size=entry["size"], md5=value)


def _remembered_problem(path: Path, remote: RemoteFile) -> str | None:
    """`problem(path, remote)`, with a verified file remembered in a stamp beside it (size,
    modification time and expected hash): hashed once, not at every use, until it changes."""
    stamp = path.with_name(path.name + ".verified")
    info = path.stat()
    key = f"{info.st_size} {info.st_mtime_ns} {remote.known_hash()}"
    if stamp.exists() and stamp.read_text() == key:
        return None
    wrong = problem(path, remote)
    if wrong is None:
        stamp.write_text(key)
    return wrong


def fetch(remote: RemoteFile, progress: bool | None = None) -> Path:
    """The verified local copy of `remote`, downloaded when it is not in the cache. Raises
    `VaekitError` (one sentence: the file, its size, its URLs, where to put it by hand and its
    hash) when no mirror gives the right bytes, or when a file in the cache is not the right one."""
    import filelock

    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / remote.filename
    try:
        remote = published(remote, path)
    except _NoRecord as err:
        raise VaekitError(
            f"Could not read the record of {remote.filename} ({remote.record}: {err}), which gives the size "
            f"and MD5 it is verified by: {by_hand(remote, path)}."
        ) from None
    if path.exists() and _remembered_problem(path, remote) is None:
        return path  # verified: no network
    with filelock.FileLock(str(path) + ".lock"):
        if path.exists():  # another process may have finished it meanwhile
            wrong = _remembered_problem(path, remote)
            if wrong is None:
                return path
            raise VaekitError(
                f"{path} is not the expected file: {wrong}; delete it, or {by_hand(remote, path)}."
            )
        if remote.by_hand_only and not os.environ.get("VAEKIT_MIRROR"):
            raise VaekitError(
                f"{remote.filename} is placed by hand ({remote.by_hand_only}): {by_hand(remote, path)}."
            )
        reasons = []
        for url in _urls(remote):
            try:
                _download(url, remote, folder, progress)
                return path
            except _Refused as err:
                reasons.append(f"{url} gave a file that {err}")
            except Exception as err:  # noqa: BLE001 - any transfer failure: try the next mirror
                reasons.append(f"{url}: {_reason(err)}")
        raise VaekitError(
            f"Could not download {remote.filename} ({'; '.join(reasons)}): {by_hand(remote, path)}."
        )


class _Refused(Exception):
    """A payload that arrived but is not the file (size, HTML, hash)."""


def _reason(err: Exception) -> str:
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    if "Max retries exceeded" in text or "Failed to establish" in text or "NameResolution" in text:
        return "no connection"
    return text[:160]


def _download(url: str, remote: RemoteFile, folder: Path, progress: bool | None) -> None:
    import pooch

    pooch.get_logger().setLevel("WARNING")
    show = sys.stderr.isatty() if progress is None else progress
    transfer = pooch.HTTPDownloader(progressbar=show, timeout=60)

    def checked(url_, output_file, pooch_=None, check_only=False):
        transfer(url_, output_file, pooch_, check_only)
        wrong = problem(Path(output_file), remote)
        if wrong is not None:
            raise _Refused(wrong)  # pooch deletes its temporary file: nothing passes as complete

    pooch.retrieve(
        url,
        known_hash=remote.known_hash(),
        fname=remote.filename,
        path=folder,
        downloader=checked,
        progressbar=show,
    )


def is_cached(name: str) -> bool:
    """Whether every file of named set `name` is in the cache (by name; `fetch` verifies)."""
    return all((cache_dir() / f.filename).exists() for f in REMOTE[name].files.values())


def load(name: str):
    """Named set `name` as `vaekit.datasets.RawData`, its files fetched and verified first. The
    licence and citation are printed once, at the set's first use, and kept in the data's meta
    (so the run records them)."""
    remote = REMOTE[name]
    paths = {}
    for role, f in remote.files.items():
        try:
            paths[role] = fetch(f)
        except VaekitError as err:
            rest = [g for r, g in remote.files.items() if r not in paths and r != role]
            if rest:  # all a user needs to place the set by hand, in the one sentence
                more = "; ".join(by_hand(g, cache_dir() / g.filename) for g in rest)
                raise VaekitError(f"{str(err).rstrip('.')}; {name} also needs: {more}.") from None
            raise
    said = cache_dir() / f".{name}.licence-shown"
    if not said.exists():  # once per cache: at the first use of the set
        print(f"{name}: {remote.licence}. Cite: {remote.citation}", file=sys.stderr)
        said.touch()
    raw = remote.read(paths)
    raw.source = raw.source or name
    raw.meta.update({"licence": remote.licence, "citation": remote.citation})
    return raw


# ----------------------------------------------------------------------------- readers


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (LeCun et al.'s MNIST format; gzip-compressed or not) as a numpy array of its
    stored type and shape. Raises `VaekitError` for a file that is not IDX."""
    opener = gzip.open if path.read_bytes()[:2] == b"\x1f\x8b" else open
    with opener(path, "rb") as f:
        data = f.read()
    check(
        len(data) >= 4 and data[0] == 0 and data[1] == 0, f"{path} is not an IDX file (wrong magic number)."
    )
    types = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    check(data[2] in types, f"{path}: unknown IDX type code {data[2]:#x}.")
    ndim = data[3]
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    body = np.frombuffer(data, dtype=types[data[2]], offset=4 + 4 * ndim)
    check(
        body.size == int(np.prod(dims)), f"{path} holds {body.size} values, not the {dims} its header says."
    )
    return body.reshape(dims).astype(body.dtype.newbyteorder("="))


def _idx_set(names: list[str] | None = None):
    def read(paths: dict[str, Path]):
        from vaekit.datasets.raw import RawData

        train, test = read_idx(paths["train_images"]), read_idx(paths["test_images"])
        y = np.concatenate([read_idx(paths["train_labels"]), read_idx(paths["test_labels"])]).astype(np.int64)
        x = np.concatenate([train, test])[:, None]  # uint8: scaled per batch when larger than memory allows
        check(len(x) == len(y), f"{paths['train_images'].parent}: {len(x)} images but {len(y)} labels.")
        return RawData(
            x=x, y=y, label_names=names, kind="image", full_scale=255.0, meta={"official_test": len(test)}
        )

    return read


def read_cifar10_binary(paths: dict[str, Path]):
    """CIFAR-10's binary version (a tar.gz of data_batch_1..5.bin and test_batch.bin, each a run
    of 1 label byte + 3,072 pixel bytes, channel-major 32x32): read from the archive without
    extracting it and without pickle."""
    from vaekit.datasets.raw import RawData

    record = 1 + 3 * 32 * 32
    parts = {}
    with tarfile.open(paths["archive"], "r:gz") as archive:
        for member in archive.getmembers():
            base = Path(member.name).name
            if member.isfile() and base.endswith(".bin") and "batch" in base:
                parts[base] = np.frombuffer(archive.extractfile(member).read(), dtype=np.uint8)
        names_member = next(
            (m for m in archive.getmembers() if Path(m.name).name == "batches.meta.txt"), None
        )
        names = (
            [n for n in archive.extractfile(names_member).read().decode().split() if n]
            if names_member is not None
            else None
        )
    order = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    missing = [n for n in order if n not in parts]
    check(not missing, f"{paths['archive']} lacks {', '.join(missing)}; it is not CIFAR-10's binary version.")
    blocks = []
    for name in order:
        check(parts[name].size % record == 0, f"{paths['archive']}: {name} is not a whole number of records.")
        blocks.append(parts[name].reshape(-1, record))
    table = np.concatenate(blocks)
    x = table[:, 1:].reshape(-1, 3, 32, 32)
    y = table[:, 0].astype(np.int64)
    return RawData(
        x=x, y=y, label_names=names, kind="image", full_scale=255.0, meta={"official_test": len(blocks[-1])}
    )


MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
FASHION_MIRRORS = (
    "https://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
)


def _idx_files(mirrors, rows) -> dict[str, RemoteFile]:
    roles = ("train_images", "train_labels", "test_images", "test_labels")
    names = (
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    )
    return {
        role: RemoteFile(f"{prefix}{name}", tuple(m + name for m in mirrors), size, sha)
        for role, name, (prefix, size, sha) in zip(roles, names, rows, strict=True)
    }


register(
    RemoteSet(
        name="mnist",
        files=_idx_files(
            MNIST_MIRRORS,
            [
                ("mnist-", 9_912_422, "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
                ("mnist-", 28_881, "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
                ("mnist-", 1_648_877, "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
                ("mnist-", 4_542, "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
            ],
        ),
        description="MNIST: 70,000 28x28 handwritten digits, grey levels 0-255, 10 labels; the official "
        "60,000 / 10,000 split",
        licence="CC BY-SA 3.0 (Y. LeCun and C. Cortes)",
        citation="LeCun, Bottou, Bengio & Haffner (1998), Gradient-based learning applied to document "
        "recognition, Proc. IEEE 86(11)",
        read=_idx_set(),
    )
)

register(
    RemoteSet(
        name="fashion-mnist",
        files=_idx_files(
            FASHION_MIRRORS,
            [
                ("fashion-", 26_421_880, "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"),
                ("fashion-", 29_515, "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"),
                ("fashion-", 4_422_102, "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"),
                ("fashion-", 5_148, "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"),
            ],
        ),
        description="Fashion-MNIST: 70,000 28x28 images of clothing, grey levels 0-255, 10 labels; the "
        "official 60,000 / 10,000 split",
        licence="MIT (Zalando Research)",
        citation="Xiao, Rasul & Vollgraf (2017), Fashion-MNIST: a novel image dataset for benchmarking "
        "machine learning algorithms, arXiv:1708.07747",
        read=_idx_set(
            [
                "T-shirt/top",
                "Trouser",
                "Pullover",
                "Dress",
                "Coat",
                "Sandal",
                "Shirt",
                "Sneaker",
                "Bag",
                "Ankle boot",
            ]
        ),
    )
)

register(
    RemoteSet(
        name="cifar10",
        files={
            "archive": RemoteFile(
                "cifar-10-binary.tar.gz",
                ("https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",),
                170_052_171,
                md5="c32a1d4ab5d03f1284b67883e8d87530",  # the publisher gives MD5 only
            )
        },
        description="CIFAR-10: 60,000 32x32 colour images, 8 bits per channel, 10 labels; the official "
        "50,000 / 10,000 split (the binary version: no pickle is ever loaded)",
        licence="no licence stated by the authors; cite the report when you use it",
        citation="Krizhevsky (2009), Learning multiple layers of features from tiny images, tech. report, "
        "University of Toronto",
        read=read_cifar10_binary,
    )
)

register(
    RemoteSet(
        name="kmnist",
        files=_idx_files(
            ("http://codh.rois.ac.jp/kmnist/dataset/kmnist/",),
            [
                ("kmnist-", 18_165_135, "51467d22d8cc72929e2a028a0428f2086b092bb31cfb79c69cc0a90ce135fde4"),
                ("kmnist-", 29_497, "e38f9ebcd0f3ebcdec7fc8eabdcdaef93bb0df8ea12bee65224341c8183d8e17"),
                ("kmnist-", 3_041_136, "edd7a857845ad6bb1d0ba43fe7e794d164fe2dce499a1694695a792adfac43c5"),
                ("kmnist-", 5_120, "20bb9a0ef54c7db3efc55a92eef5582c109615df22683c380526788f98e42a1c"),
            ],
        ),
        description="Kuzushiji-MNIST: 70,000 28x28 images of cursive Japanese (hiragana), grey levels "
        "0-255, 10 labels; the official 60,000 / 10,000 split",
        licence="CC BY-SA 4.0 (ROIS-DS Center for Open Data in the Humanities)",
        citation="Clanuwat, Bober-Irizar, Kitamoto, Lamb, Yamamoto & Ha (2018), Deep learning for classical "
        "Japanese literature, arXiv:1812.01718",
        read=_idx_set(["o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"]),
    )
)


def read_amat_binary(path: Path, side: int = 28) -> np.ndarray:
    """A Larochelle .amat text file of binary images (one image per line, `side`**2 values 0 or 1
    separated by spaces) as (n, side, side) uint8. Raises `VaekitError` for any other content."""
    data = path.read_bytes()
    codes = np.frombuffer(data, dtype=np.uint8)
    digits = codes[(codes == ord("0")) | (codes == ord("1"))] - ord("0")
    other = np.isin(codes, np.frombuffer(b"01 \t\r\n", dtype=np.uint8), invert=True)
    lines = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
    check(
        not other.any() and digits.size == lines * side * side,
        f"{path} is not a file of binary {side}x{side} images (a line of {side * side} values 0 or 1 each).",
    )
    return digits.reshape(-1, side, side)


def read_binarized_mnist(paths: dict[str, Path]):
    """The fixed binarisation of MNIST of Larochelle & Murray (2011): training and validation
    images (50,000 + 10,000) form the training split, the 10,000 test images the test split."""
    from vaekit.datasets.raw import RawData

    parts = [read_amat_binary(paths[role]) for role in ("train", "valid", "test")]
    x = np.concatenate(parts)[:, None]
    return RawData(x=x, kind="image", full_scale=1.0, meta={"official_test": len(parts[-1])})


LAROCHELLE = "http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/"

register(
    RemoteSet(
        name="binarized-mnist",
        files={
            role: RemoteFile(
                f"binarized_mnist_{role}.amat", (f"{LAROCHELLE}binarized_mnist_{role}.amat",), size, sha
            )
            for role, size, sha in [
                ("train", 78_400_000, "ad693b29f94c14277b095f5238ddefbbdaaae0939789dd2f4f0205278cee3e4d"),
                ("valid", 15_680_000, "1de3d397c40fe8eeb33dafd4099a1f665ec01e96d9be234aaeeac8a34930e2e2"),
                ("test", 15_680_000, "e6687bfea3f820c174f33b7865140b2a2dd2930ef786f35d45795fc193b5ab2c"),
            ]
        },
        description="MNIST with the fixed binarisation of Larochelle & Murray (2011) that published "
        "likelihood tables quote: 70,000 28x28 binary images; training and validation (60,000) as the "
        "training split, the 10,000 test images as the test split",
        licence="no licence stated by the authors; MNIST itself is CC BY-SA 3.0 (Y. LeCun and C. Cortes)",
        citation="Larochelle & Murray (2011), The neural autoregressive distribution estimator, AISTATS",
        read=read_binarized_mnist,
    )
)


def read_dsprites(paths: dict[str, Path]):
    """dSprites' official .npz (Matthey et al., 2017): `imgs` (737,280, 64, 64) uint8 holding 0
    and 1, and `latents_classes` (737,280, 6) as the factors, read without unpickling (the
    `metadata` entry is a pickled dict and stays unread). Colour takes one value and is left out:
    the factors are shape, scale, orientation, pos_x, pos_y, the order and sizes of the
    procedural grid (`vaekit.datasets.sprites`). Raises `VaekitError` for another layout."""
    from vaekit.datasets import sprites
    from vaekit.datasets.formats import read_raw

    path = paths["archive"]
    raw = read_raw(path, keys={"x": "imgs", "factors": "latents_classes"})
    factors = raw.factors
    check(
        factors.shape[1] == 1 + len(sprites.FACTOR_NAMES) and np.all(factors[:, 0] == factors[0, 0]),
        f"{path}: latents_classes has {factors.shape[1]} columns, not dSprites' 6 (colour first, constant).",
    )
    raw.factors = np.ascontiguousarray(factors[:, 1:])
    raw.factor_names = list(sprites.FACTOR_NAMES)
    raw.notes = [
        "dsprites: the official file's imgs (64x64, values 0 and 1: a Bernoulli likelihood) with "
        "latents_classes as factors (shape, scale, orientation, pos_x, pos_y; colour, constant, left "
        "out); its pickled metadata entry is never read."
    ]
    return raw


register(
    RemoteSet(
        name="dsprites",
        files={
            "archive": RemoteFile(
                "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz",
                (
                    "https://github.com/google-deepmind/dsprites-dataset/raw/master/"
                    "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz",
                ),
                None,  # no source publishes its size: the hash alone decides
                md5="7da33b31b13a06f4b04a70402ce90c2e",  # the peers' hash; no SHA-256 is published
            )
        },
        description="dSprites, the official file: 737,280 64x64 binary images of 2D shapes, the full "
        "grid of 3 shapes x 6 scales x 40 orientations x 32 x 32 positions, with those five factors "
        "(the procedural `sprites` renders the same grid offline)",
        licence="Apache License 2.0 (DeepMind)",
        citation="Matthey, Higgins, Hassabis & Lerchner (2017), dSprites: disentanglement testing sprites "
        "dataset, https://github.com/deepmind/dsprites-dataset",
        read=read_dsprites,
    )
)

SHAPES3D_FACTORS = ("floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation")


def read_shapes3d(paths: dict[str, Path]):
    """3D Shapes (Burgess & Kim, 2018): `images` (480,000, 64, 64, 3) uint8 and `labels`
    (480,000, 6) float64 factor values, each column ranked to factor indices (floor_hue,
    wall_hue, object_hue, scale, shape, orientation). Raises `VaekitError` for another layout."""
    from vaekit.datasets.formats import read_raw

    path = paths["file"]
    raw = read_raw(path, keys={"x": "images", "factors": "labels"})
    factors = np.asarray(raw.factors)
    check(
        factors.shape[1] == len(SHAPES3D_FACTORS),
        f"{path}: labels has {factors.shape[1]} columns, not 3D Shapes' {len(SHAPES3D_FACTORS)}.",
    )
    raw.factors = np.stack([np.unique(column, return_inverse=True)[1] for column in factors.T], axis=1)
    raw.factor_names = list(SHAPES3D_FACTORS)
    raw.notes = [n for n in raw.notes if "ignored" not in n] + [
        f"shapes3d: images (64x64 RGB, 8-bit) with labels ranked to factor indices "
        f"({', '.join(SHAPES3D_FACTORS)})."
    ]
    return raw


register(
    RemoteSet(
        name="shapes3d",
        files={
            "file": RemoteFile(
                "3dshapes.h5",
                ("https://storage.googleapis.com/3d-shapes/3dshapes.h5",),
                267_573_662,
                "0a0f6ed98baff276a50f3a081a7434d788da63cb135a98189b2a5b5769be1785",
            )
        },
        description="3D Shapes: 480,000 64x64 RGB images of a shape in a room, the full grid of six "
        "factors (10 floor, 10 wall and 10 object hues, 8 scales, 4 shapes, 15 orientations)",
        licence="Apache License 2.0 (DeepMind)",
        citation="Burgess & Kim (2018), 3D Shapes dataset, https://github.com/deepmind/3dshapes-dataset",
        read=read_shapes3d,
    )
)

CELEBA_BOX = (15, 35, 163, 183)  # the central 148x148 of CelebA's aligned 178x218 faces
CELEBA_SIDE = 64


def _celeba_face(data: bytes) -> np.ndarray:
    """One aligned CelebA JPEG as (3, 64, 64) uint8: its central 148x148 square resized with
    Lanczos filtering."""
    import io as _io

    from PIL import Image

    with Image.open(_io.BytesIO(data)) as im:
        face = im.convert("RGB").crop(CELEBA_BOX).resize((CELEBA_SIDE, CELEBA_SIDE), Image.Resampling.LANCZOS)
    return np.asarray(face).transpose(2, 0, 1)


def _celeba_block(args) -> np.ndarray:
    zip_path, names = args
    import zipfile

    with zipfile.ZipFile(zip_path) as archive:
        return np.stack([_celeba_face(archive.read(n)) for n in names])


def read_celeba(paths: dict[str, Path]):
    """CelebA at 64 px (Liu et al., 2015): each aligned face's central 148x148 square resized to
    64x64 (Lanczos), made once from `img_align_celeba.zip` by worker processes into a memory-mapped
    uint8 array in the cache (a partial file renamed when complete), then read from it. The
    published partition decides the split: train and validation images (182,637) train, the
    19,962 test images test. Raises `VaekitError` for an archive or partition file of another
    layout."""
    import zipfile
    from concurrent.futures import ProcessPoolExecutor

    import filelock

    from vaekit.datasets.raw import RawData

    archive_path, listing = paths["images"], paths["partition"]
    split = {}
    for line in listing.read_text().split("\n"):
        parts = line.split()
        if len(parts) == 2 and parts[1] in ("0", "1", "2"):
            split[parts[0]] = int(parts[1])
    check(bool(split), f"{listing} lists no image with a partition (lines like '000001.jpg 0').")
    with zipfile.ZipFile(archive_path) as archive:
        members = {Path(n).name: n for n in archive.namelist() if n.lower().endswith(".jpg")}
    missing = [n for n in split if n not in members]
    check(
        not missing, f"{archive_path} lacks {len(missing)} image(s) the partition lists, e.g. {missing[:1]}."
    )
    order = sorted(split, key=lambda n: (split[n] == 2, n))  # training (0, 1) first, then test (2)
    n_test = sum(1 for n in order if split[n] == 2)
    digest = REMOTE["celeba"].files["images"].known_hash().split(":")[1][:12]  # the archive's (verified) hash
    cached = cache_dir() / f"celeba-{CELEBA_SIDE}px-{digest}-{len(order)}.npy"
    with filelock.FileLock(str(cached) + ".lock"):
        if not cached.exists():
            print(
                f"celeba: cropping and resizing {len(order):,} faces to {CELEBA_SIDE} px once, into "
                f"{cached} ({len(order) * 3 * CELEBA_SIDE**2 / 1e9:.1f} GB)",
                file=sys.stderr,
            )
            partial = cached.with_name(cached.name + ".partial")
            x = np.lib.format.open_memmap(
                partial, mode="w+", dtype=np.uint8, shape=(len(order), 3, CELEBA_SIDE, CELEBA_SIDE)
            )
            block = 500
            jobs = [
                (archive_path, [members[n] for n in order[i : i + block]])
                for i in range(0, len(order), block)
            ]
            with ProcessPoolExecutor(max_workers=max(1, min(os.cpu_count() or 1, 8))) as pool:
                for i, faces in enumerate(pool.map(_celeba_block, jobs)):
                    x[i * block : i * block + len(faces)] = faces
            x.flush()
            del x
            os.replace(partial, cached)
    x = np.load(cached, mmap_mode="r")
    return RawData(x=x, kind="image", full_scale=255.0, meta={"official_test": n_test})


CELEBA_PAGE = "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html (Google Drive or Baidu links there)"
CELEBA_WHY = "its host limits downloads and its agreement allows non-commercial research use only"

register(
    RemoteSet(
        name="celeba",
        files={
            "images": RemoteFile(
                "img_align_celeba.zip",
                (),
                1_443_490_838,
                "46fb89443c578308acf364d7d379fe1b9efb793042c0af734b6112e4fd3a8c74",
                by_hand_only=CELEBA_WHY,
                page=CELEBA_PAGE,
            ),
            "partition": RemoteFile(
                "list_eval_partition.txt",
                (),
                2_836_386,
                "fc955bcb3ef8fbdf7d5640d9a8693a8431b5f2ee291a5c1449a1549e7e073fe7",
                by_hand_only=CELEBA_WHY,
                page=CELEBA_PAGE,
            ),
        },
        description="CelebA at 64 px: 202,599 aligned celebrity faces, the central 148x148 square of each "
        "resized to 64x64 RGB; the published split (182,637 training and validation, 19,962 test); placed "
        "by hand",
        licence="research use only: non-commercial research and educational purposes (the CelebA agreement, "
        "MMLAB, The Chinese University of Hong Kong)",
        citation="Liu, Luo, Wang & Tang (2015), Deep learning face attributes in the wild, ICCV",
        read=read_celeba,
    )
)


# ----------------------------------------------------------------------------- the LHC challenge

ZENODO = "https://zenodo.org"
ADC2021_CITATION = (
    "Govorkova, Puljak, Aarrestad, Pierini, Wozniak & Ngadiuba (2022), LHC physics dataset for "
    "unsupervised New Physics detection at 40 MHz, Scientific Data 9, 118"
)


def read_adc2021(paths: dict[str, Path]):
    """One table of the LHC anomaly-detection challenge (ADC2021): `Particles` (n, 19, 4) read as
    76 named columns (MET, ele1..ele4, mu1..mu4, jet1..jet10, each with pT, eta, phi and class),
    as the same file given by path (`vaekit.datasets.tables.objects_table`). Raises `VaekitError` for
    another layout."""
    from vaekit.datasets.formats import read_raw

    path = paths["file"]
    raw = read_raw(path)
    check(
        raw.kind == "tabular" and raw.column_names is not None and len(raw.column_names) == 76,
        f"{path} is not an ADC2021 table (Particles of 19 objects x 4 quantities, 76 columns).",
    )
    return raw


def _adc2021(name: str, record: int, filename: str, what: str) -> RemoteSet:
    return RemoteSet(
        name=name,
        files={
            "file": RemoteFile(
                filename,
                (f"{ZENODO}/records/{record}/files/{filename}?download=1",),
                None,
                record=f"{ZENODO}/api/records/{record}",
            )
        },
        description=f"LHC anomaly-detection challenge (ADC2021), {what}: simulated 13 TeV collisions as 76 "
        f"columns (pT, eta, phi, class of MET, 4 electrons, 4 muons, 10 jets); Zenodo record {record}",
        licence="CC BY 4.0 (Aarrestad, Govorkova, Ngadiuba, Puljak, Pierini & Wozniak)",
        citation=ADC2021_CITATION,
        read=read_adc2021,
    )


for _row in (
    ("adc2021-background", 5046389, "background_for_training.h5", "the Standard Model background"),
    ("adc2021-ato4l", 5046446, "Ato4l_lepFilter_13TeV.h5", "signal: a neutral scalar A to four leptons"),
    ("adc2021-leptoquark", 5055454, "leptoquark_LOWMASS_lepFilter_13TeV.h5", "signal: a leptoquark to b tau"),
    ("adc2021-htautau", 5061633, "hToTauTau_13TeV_PU20.h5", "signal: a neutral scalar h0 to tau tau"),
    ("adc2021-hplus", 5061688, "hChToTauNu_13TeV_PU20.h5", "signal: a charged scalar h+ to tau nu"),
):
    register(_adc2021(*_row))
