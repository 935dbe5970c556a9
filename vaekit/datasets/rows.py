"""Examples read per batch: data kept as stored and made model values only for the rows asked for.

A data set larger than memory, or one stored in a type smaller than the model's (8-bit pixels
are a quarter of float32), stays as it is stored: an array in memory, a memory-mapped `.npy`,
an HDF5 dataset read through h5py, a folder of images decoded once into a memory map. `Rows`
reads the rows a batch asks for, applies the per-example views that reading decided (a channel
axis added, channels moved first, flattening) and the data set's scaling, and returns float32
values exactly equal to the ones the whole array scaled at once would hold (the same float32
operations on the same values).

`Rows` answers the part of numpy's array interface the library uses: `len`, `shape`, `ndim`,
`dtype`, indexing by an integer, a slice, an index array or a boolean mask (a torch index
tensor gives a torch tensor on its device), and `np.asarray` (the whole, in memory).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import numpy as np

# rows per read in whole-data passes (profiles, moments, hashes): about this many bytes each
CHUNK_BYTES = 8 << 20
MEMORY_LIMIT_VARIABLE = "VAEKIT_MEMORY_LIMIT"


MEMORY_LIMIT_HINT = "VAEKIT_MEMORY_LIMIT raises it"  # said where the limit decided something


def memory_limit() -> int:
    """Bytes a data set may take in memory as float32 before it stays as stored: the environment
    variable `VAEKIT_MEMORY_LIMIT` (bytes, or with a K, M or G suffix: "500M"), else a quarter
    of the machine's physical memory (2 GiB where that is unknown)."""
    given = os.environ.get(MEMORY_LIMIT_VARIABLE, "").strip().upper().rstrip("B")
    if given:
        scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(given[-1], 1)
        try:
            return int(float(given.rstrip("KMG")) * scale)
        except ValueError:
            from vaekit.errors import VaekitError

            raise VaekitError(
                f"{MEMORY_LIMIT_VARIABLE}={os.environ[MEMORY_LIMIT_VARIABLE]!r} is not a size; give bytes, "
                "or a number with K, M or G (e.g. 4G)."
            ) from None
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4
    except (ValueError, OSError, AttributeError):
        return 2 << 30


def chunk_rows(shape, itemsize: int) -> int:
    """Rows per chunk of about `CHUNK_BYTES` for examples of `shape[1:]` and `itemsize` bytes."""
    per_row = max(1, int(np.prod(shape[1:], dtype=np.int64)) * itemsize)
    return max(1, CHUNK_BYTES // per_row)


def chunks(x, rows: int | None = None) -> Iterator[np.ndarray]:
    """The rows of x (an array, a memory map, an HDF5 dataset or `Rows`) in order, as in-memory
    arrays of about `CHUNK_BYTES` each (or `rows` rows)."""
    n = len(x)
    rows = rows or chunk_rows(x.shape, np.dtype(x.dtype).itemsize)
    for start in range(0, n, rows):
        yield np.asarray(x[start : start + rows])


class Rows:
    """Rows of a stored array, read on demand (see the module docstring).

    Args:
        source: (n, *stored_shape) indexable by a slice and by a sorted integer array: a numpy
            array or memory map, an `h5py.Dataset`, or an object with `shape`, `dtype` and
            `__getitem__` (`Stacked`, `Replaced`).
        index: (m,) int64 rows of `source` these rows are (None: all, in order).
        views: per-example functions applied to each read batch (batch -> batch), each with the
            example shape it gives; the last may change the dtype (a scaling).
    """

    is_lazy_rows = True  # what `vaekit.batch` checks (it sits below this module)

    def __init__(self, source, index: np.ndarray | None = None, views: tuple = ()):
        self.source = source
        self.index = None if index is None else np.asarray(index, dtype=np.int64)
        self.views = tuple(views)
        self._n = len(source) if self.index is None else len(self.index)
        probe = np.zeros((0, *source.shape[1:]), dtype=np.dtype(source.dtype))
        for fn in self.views:
            probe = fn(probe)
        self._example_shape, self._dtype = tuple(probe.shape[1:]), probe.dtype

    # --------------------------------------------------------------- numpy-like description
    def __len__(self) -> int:
        return self._n

    @property
    def shape(self) -> tuple[int, ...]:
        return (self._n, *self._example_shape)

    @property
    def ndim(self) -> int:
        return 1 + len(self._example_shape)

    @property
    def dtype(self) -> np.dtype:
        return self._dtype

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def stored_dtype(self) -> np.dtype:
        """The dtype the rows are stored in (uint8 for 8-bit pixels)."""
        return np.dtype(self.source.dtype)

    @property
    def in_memory(self) -> bool:
        """Whether the stored rows are an ordinary in-memory array (not a file read on demand)."""
        return isinstance(self.source, np.ndarray) and not isinstance(self.source, np.memmap)

    def __repr__(self) -> str:
        where = "in memory" if self.in_memory else type(self.source).__name__
        return f"Rows(shape={self.shape}, dtype={self.dtype}, stored {self.stored_dtype} {where})"

    # --------------------------------------------------------------- new views of the same rows
    def take(self, index) -> Rows:
        """These rows at `index` ((m,) integers or a boolean mask), still unread."""
        rows = self._positions(index)
        return Rows(self.source, rows if self.index is None else self.index[rows], self.views)

    def view(self, fn: Callable[[np.ndarray], np.ndarray]) -> Rows:
        """The same rows with `fn` (batch -> batch, acting on the example axes only) applied to
        every read."""
        return Rows(self.source, self.index, (*self.views, fn))

    def to(self, device) -> Rows:
        """Itself: rows are read on the host and moved to the device an index tensor is on."""
        return self

    # --------------------------------------------------------------- reading
    def _positions(self, key) -> np.ndarray:
        if isinstance(key, slice):
            return np.arange(self._n, dtype=np.int64)[key]
        key = np.asarray(key)
        if key.size == 0:
            return np.zeros(0, dtype=np.int64)
        if key.dtype == np.bool_:
            if key.shape != (self._n,):
                raise IndexError(f"a boolean mask of shape {key.shape} for {self._n} rows")
            return np.flatnonzero(key)
        if key.dtype.kind not in "iu":
            raise IndexError(f"rows are indexed by integers, slices or masks, not {key.dtype}")
        key = key.astype(np.int64).reshape(-1)
        if key.size and (key.max() >= self._n or key.min() < -self._n):
            raise IndexError(f"index out of range for {self._n} rows")
        return np.where(key < 0, key + self._n, key)

    def _read(self, rows: np.ndarray) -> np.ndarray:
        """The stored rows `rows` ((m,) into source), in that order, before the views."""
        source = self.source
        if len(rows) and rows[-1] - rows[0] == len(rows) - 1 and np.all(np.diff(rows) == 1):
            return np.asarray(source[int(rows[0]) : int(rows[-1]) + 1])  # one contiguous run
        if isinstance(source, np.ndarray):
            return source[rows]
        # an HDF5 dataset (or another reader) takes increasing indices only: read each once, sorted
        unique, inverse = np.unique(rows, return_inverse=True)
        if len(unique) == 0:
            return np.zeros((0, *source.shape[1:]), dtype=np.dtype(source.dtype))
        return np.asarray(source[unique])[inverse]

    def tensor(self, key):
        """The rows at `key` as a torch tensor: on the device of `key` when it is an index tensor,
        else on the CPU."""
        import torch

        if torch.is_tensor(key):
            return torch.from_numpy(np.ascontiguousarray(self[key.cpu().numpy()])).to(key.device)
        return torch.from_numpy(np.ascontiguousarray(self[key]))

    def min(self) -> float:
        """The smallest value read, over all rows (one chunked pass)."""
        return min(float(part.min()) for part in chunks(self) if part.size)

    def max(self) -> float:
        """The largest value read, over all rows (one chunked pass)."""
        return max(float(part.max()) for part in chunks(self) if part.size)

    def __getitem__(self, key):
        if hasattr(key, "device") and hasattr(key, "cpu"):  # a torch index tensor
            return self.tensor(key)
        rest = ()
        if isinstance(key, tuple):
            key, rest = key[0], key[1:]
        scalar = isinstance(key, (int, np.integer)) and not isinstance(key, bool)
        scalar = scalar or (isinstance(key, np.ndarray) and key.ndim == 0 and key.dtype.kind in "iu")
        rows = self._positions(np.array([int(key)]) if scalar else key)
        batch = self._read(rows if self.index is None else self.index[rows])
        for fn in self.views:
            batch = fn(batch)
        if scalar:
            return batch[0][rest] if rest else batch[0]
        return batch[(slice(None), *rest)] if rest else batch

    def __array__(self, dtype=None, copy=None):
        whole = self[:]
        return whole if dtype is None else whole.astype(dtype, copy=False)

    def __iter__(self):
        for part in chunks(self):
            yield from part


class Stacked:
    """Several row sources one after the other (a training file and its --test-data file), as
    one source for `Rows`: `shape`, `dtype` (`dtype`, each part cast to it as read) and reads by
    a slice or a sorted index array."""

    def __init__(self, parts: list, dtype):
        self.parts, self.dtype = list(parts), np.dtype(dtype)
        self.starts = np.cumsum([0] + [len(p) for p in self.parts])
        self.shape = (int(self.starts[-1]), *self.parts[0].shape[1:])

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key) -> np.ndarray:
        rows = np.arange(len(self), dtype=np.int64)[key] if isinstance(key, slice) else np.asarray(key)
        out = []
        for part, lo, hi in zip(self.parts, self.starts[:-1], self.starts[1:], strict=True):
            mine = rows[(rows >= lo) & (rows < hi)] - lo
            if len(mine):
                out.append(np.asarray(part[mine]).astype(self.dtype, copy=False))
        return np.concatenate(out) if out else np.zeros((0, *self.shape[1:]), self.dtype)


class Replaced:
    """Rows whose rows `index` (sorted) read as `values` instead (a test split drawn once and
    held in memory, the rest read from the stored rows `base`): a source for `Rows`."""

    def __init__(self, base, index: np.ndarray, values: np.ndarray):
        self.base, self.index, self.values = base, np.asarray(index, dtype=np.int64), values
        self.shape, self.dtype = tuple(base.shape), np.dtype(values.dtype)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key) -> np.ndarray:
        rows = np.arange(len(self), dtype=np.int64)[key] if isinstance(key, slice) else np.asarray(key)
        out = np.asarray(self.base[rows]).astype(self.dtype, copy=True)
        at = np.searchsorted(self.index, rows)
        hit = (at < len(self.index)) & (self.index[np.minimum(at, len(self.index) - 1)] == rows)
        out[hit] = self.values[at[hit]]
        return out
