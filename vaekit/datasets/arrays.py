"""Arrays: `.npy` (memory-mapped when larger than memory allows) and `.npz` (its arrays read by
name, never unpickled), pixel types and the decision to keep data as stored."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vaekit.datasets.raw import RawData, encode_labels
from vaekit.datasets.rows import Rows, chunks, memory_limit
from vaekit.errors import VaekitError, check


def load_npy(path: Path) -> RawData:
    try:  # memory-mapped: rows are read from the file as batches ask for them (`vaekit.datasets.rows`)
        x = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError):
        try:  # one that cannot be mapped (Python objects) is read whole, to say why it is refused
            x = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as err:
            raise VaekitError(f"{path} is not a readable NumPy file ({err}); give a .npy array.") from None
    return _array_raw(x, str(path))


# unsigned integers are pixels (or counts): scaled by their type's full range, never per column
def pixel_full_scale(dtype) -> float | None:
    """The full range of an unsigned-integer (or boolean) pixel type, by kind and size whatever
    its byte order: 1 for bool, 255 for 8-bit, 65535 for 16-bit; None for other types."""
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return 1.0
    if dtype.kind == "u" and dtype.itemsize in (1, 2):
        return float(2 ** (8 * dtype.itemsize) - 1)
    return None


def _flat_image_width(d: int) -> bool:
    """Whether d values per row look like a flattened square image (grey or RGB, 8x8 or more):
    784 = 28x28, 3072 = 3x32x32; a count table's thousands of columns rarely are."""
    for channels in (1, 3, 4):
        side = round((d / channels) ** 0.5)
        if side >= 8 and channels * side * side == d:
            return True
    return False


def _array_raw(x: np.ndarray, source: str) -> RawData:
    """An array as RawData, read as what its values are, each choice said once with its override:
    unsigned integers (or floats) holding only 0 and 1 are binary (kept 0/1); other 8- or 16-bit
    unsigned integers are pixels or counts scaled by the type's range; whole-number floats in
    0..255 (or 0..65535) shaped like images are pixels stored as floats. Big-endian arrays are
    read in native order."""
    if not stays_stored(x):
        x = np.asarray(x)
        if x.dtype.byteorder not in ("=", "|"):
            x = x.astype(x.dtype.newbyteorder("="))
    raw = RawData(x=x, source=source)
    name = Path(source).name
    full = pixel_full_scale(x.dtype)
    imagelike = x.ndim >= 3 or (x.ndim == 2 and _flat_image_width(x.shape[1]))
    if full is not None or (imagelike and x.dtype.kind == "f"):
        finite, lo, hi, whole = profile(x)
        if x.size and whole and lo >= 0 and hi <= 1 and full != 1.0:
            raw.full_scale = 1.0
            raw.notes.append(
                f"{name} holds only 0 and 1 ({x.dtype}): read as binary values (kept 0/1, a Bernoulli "
                "likelihood); --scaling standard to treat them as measurements."
            )
        elif full is not None:
            raw.full_scale = full
            if x.dtype != np.bool_:
                raw.notes.append(
                    f"{name} holds {x.dtype.kind}int{8 * x.dtype.itemsize} values: read as pixels or counts "
                    f"scaled by the type's full range ({full:g} = 1), not column by column (--scaling "
                    "standard to override)."
                )
        elif whole and lo >= 0 and 1 < hi <= 65535:
            raw.full_scale = 255.0 if hi <= 255 else 65535.0
            bits = 8 if hi <= 255 else 16
            raw.notes.append(
                f"{name} holds whole numbers 0-{hi:g} stored as {x.dtype}, shaped like images: read as "
                f"{bits}-bit pixels scaled by {raw.full_scale:g} (--scaling standard to treat them as "
                "measurements)."
            )
    return raw


def stays_stored(x) -> bool:
    """Whether x may be kept as stored and read per batch (`vaekit.datasets.rows.Rows`) when it is larger
    than memory allows (`fits_in_memory`): a memory map, an HDF5 dataset, `Rows` already, or
    pixels in their own type (8- and 16-bit, a quarter and a half of float32)."""
    if isinstance(x, (np.memmap, Rows)) or not isinstance(x, np.ndarray):
        return hasattr(x, "shape") and hasattr(x, "dtype")
    return pixel_full_scale(x.dtype) is not None


def fits_in_memory(x) -> bool:
    """Whether x as float32 fits under `vaekit.datasets.rows.memory_limit()`: then it is read whole and
    scaled once, the fastest way to train; else it stays as stored and is scaled per batch."""
    return int(np.prod(x.shape, dtype=np.int64)) * 4 <= memory_limit()


def profile(x) -> tuple[bool, float, float, bool]:
    """(every value finite, min, max, every value a whole number) of an array, memory map, HDF5
    dataset or `Rows`, in one chunked pass (min and max are 0 when a value is not finite)."""
    lo, hi, whole, floats = np.inf, -np.inf, True, np.dtype(x.dtype).kind == "f"
    for part in chunks(x):
        if not part.size:
            continue
        if floats:
            if not np.isfinite(part).all():
                return False, 0.0, 0.0, False
            whole = whole and bool(np.all(part == np.round(part)))
        lo, hi = min(lo, float(part.min())), max(hi, float(part.max()))
    return True, (0.0 if lo == np.inf else lo), (0.0 if hi == -np.inf else hi), whole


def load_npz(path: Path, keys: dict | None = None) -> RawData:
    """x (and optional y, factors) from an .npz archive: only those arrays are read, nothing is
    unpickled, and the entries left out are named in a note. `keys` maps x/y/factors to the
    archive's own names (--x-key, --y-key, --factors-key)."""
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as err:
        raise VaekitError(f"{path} is not a readable .npz archive ({err}).") from None

    def get(key):
        try:
            return archive[key]
        except ValueError as err:  # an object array: reading it would unpickle
            raise VaekitError(
                f"{path}: the entry {key!r} holds Python objects ({err}); vaekit never unpickles, so "
                "save it as a numeric array."
            ) from None

    with archive:
        return arrays_raw(path, list(archive.files), get, keys, default_x="x")


def arrays_raw(path: Path, names: list[str], get, keys: dict | None, default_x: str) -> RawData:
    """x, and y and factors where named (or stored as "y", "factors"), from a file of named arrays
    (`get(name)` reads one): only those are read, and the others are named in a note."""
    keys = {"x": default_x, "y": "y", "factors": "factors"} | {
        k: v for k, v in (keys or {}).items() if v and k in ("x", "y", "factors")
    }
    check(
        keys["x"] in names,
        f"{path} has no array named {keys['x']!r} (it has {', '.join(map(repr, names)) or 'none'}); "
        "name the observations with --x-key (and labels, factors with --y-key, --factors-key).",
    )
    arrays = {}
    for role, key in keys.items():
        if key not in names:
            check(
                key == role,
                f"{path} has no array named {key!r} for {role} (it has {', '.join(map(repr, names))}).",
            )
            continue
        arrays[role] = get(key)
    raw = _array_raw(arrays["x"], str(path))
    ignored = [n for n in names if n not in {keys[r] for r in arrays}]
    if ignored:
        raw.notes.append(
            f"{path.name}: read {', '.join(f'{keys[r]} as {r}' for r in arrays)}; ignored "
            f"{', '.join(ignored)} (name labels or factors with --y-key, --factors-key)."
        )
    if "y" in arrays:
        raw.y, raw.label_names = encode_labels(arrays["y"], f"{path}: {keys['y']}")
    if "factors" in arrays:
        factors = np.asarray(arrays["factors"])
        if factors.ndim == 1:
            factors = factors[:, None]
        check(
            factors.ndim == 2 and np.issubdtype(factors.dtype, np.number),
            f"{path}: {keys['factors']} must be a numeric array of shape (n, n_factors).",
        )
        raw.factors = factors
        raw.factor_names = [f"factor_{i}" for i in range(factors.shape[1])]
    return raw
