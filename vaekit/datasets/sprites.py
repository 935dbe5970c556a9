"""Deterministic, procedural reproduction of the dSprites dataset.

dSprites (Matthey, Higgins, Hassabis & Lerchner, 2017, "dSprites:
Disentanglement testing Sprites dataset", https://github.com/deepmind/dsprites-dataset)
consists of binary images of a single white shape on a black background,
generated from five independent ground-truth factors.  This module re-renders
an equivalent dataset from scratch with numpy (no download, no randomness):

=============  ====  ==========================================================
factor         size  values
=============  ====  ==========================================================
``shape``         3  0 = square, 1 = ellipse, 2 = heart
``scale``         6  ``np.linspace(0.5, 1.0, 6)``
``orientation``  40  ``np.linspace(0, 2 * pi, 40)`` radians (0 and 2 pi repeat,
                     as in dSprites), counter-clockwise as displayed
``pos_x``        32  ``np.linspace(0, 1, 32)``; larger = further right
``pos_y``        32  ``np.linspace(0, 1, 32)``; larger = further *down*
=============  ====  ==========================================================

The full grid has 3 * 6 * 40 * 32 * 32 = 737,280 images, stored in the
row-major order of the factor grid (``shape`` slowest, ``pos_y`` fastest),
like the official ``.npz`` file.

Geometry (all lengths in units of the image width, so that every resolution
renders the same continuous scene; pixel ``(row, col)`` samples the point
``((col + 0.5) / res, (row + 0.5) / res)``, row 0 at the top):

* sprite centre: ``x = 0.2 + 0.6 * pos_x`` and ``y = 0.2 + 0.6 * pos_y``
  (``pos_y = 0`` is near the *top* row, i.e. ``pos_y`` follows the row index);
* canonical shapes at ``scale = 1`` (multiplied by ``scale``), in a frame
  whose ``v`` axis points up on screen:

  - square: half side 0.1 (side 12.8 px at 64x64);
  - ellipse: semi-axes 0.14 (horizontal at orientation 0) and 0.07;
  - heart: ``(x^2 + y^2 - 1)^3 - x^2 y^3 <= 0`` with ``x = u / 0.1`` and
    ``y = v / 0.1 + 0.118`` (lobes up at orientation 0; about 0.23 wide);

* every sprite fits in a disc of radius 0.1415 * scale around its centre, so
  even the largest, most rotated sprite keeps a margin of ~0.058 image widths
  (3 pixels at 64x64, 1 pixel at 32x32) to the border.

Rendering inverse-transforms pixel coordinates into each sprite's frame
(translate, rotate by ``-orientation``, divide by ``scale``) and tests shape
membership, vectorised over chunks of sprites; only a square window around
each sprite is evaluated.  Images are binary (no anti-aliasing).

Main entry points: :func:`generate`, :func:`load` (disk cache), :func:`render`
(images of arbitrary factor indices), :func:`render_values` (continuous
factor values) and :class:`SpritesFactorData` (sampling interface for
disentanglement metrics).
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "FACTOR_NAMES",
    "FACTOR_SIZES",
    "SHAPE_NAMES",
    "SpritesArrays",
    "SpritesFactorData",
    "cache_path",
    "factor_value_table",
    "generate",
    "load",
    "render",
    "render_values",
]

FACTOR_NAMES: tuple[str, ...] = ("shape", "scale", "orientation", "pos_x", "pos_y")
FACTOR_SIZES: tuple[int, ...] = (3, 6, 40, 32, 32)
SHAPE_NAMES: tuple[str, ...] = ("square", "ellipse", "heart")

#: Bump whenever the rendered pixels change, so that old caches are ignored.
GEOMETRY_VERSION = 1

# --- geometry (units: image width) ----------------------------------------
_POS_LO = 0.2
_POS_SPAN = 0.6
_SQUARE_HALF = 0.1
_ELLIPSE_A = 0.14
_ELLIPSE_B = 0.07
_HEART_UNIT = 0.1
_HEART_Y0 = 0.118
_BOUND_RADIUS = 0.1415  # >= max(0.1 * sqrt(2), 0.14, 0.1 * 1.337)

_CHUNK = 4096  # sprites rendered per vectorised chunk

FactorSubset = Mapping[str, int | str | Iterable[int | str]]


def factor_value_table() -> tuple[np.ndarray, ...]:
    """Return the value of every index of every factor.

    Returns:
        Five float64 arrays of shapes (3,), (6,), (40,), (32,), (32,): shape ids
        (0, 1, 2), scales, orientations in radians, pos_x, pos_y.
    """
    return (
        np.arange(3, dtype=np.float64),
        np.linspace(0.5, 1.0, 6),
        np.linspace(0.0, 2.0 * np.pi, 40),
        np.linspace(0.0, 1.0, 32),
        np.linspace(0.0, 1.0, 32),
    )


_VALUES = factor_value_table()


def _check_resolution(resolution: int) -> int:
    res = int(resolution)
    if res != resolution or res < 8 or res % 8 != 0:
        raise ValueError(f"resolution must be a multiple of 8 >= 8 (use 16, 32, 64, ...), got {resolution!r}")
    return res


def _normalise_subset(factors: FactorSubset | None) -> tuple[np.ndarray, ...]:
    """Turn a user factor restriction into 5 sorted, unique int64 index arrays."""
    subset = [np.arange(size, dtype=np.int64) for size in FACTOR_SIZES]
    if factors is None:
        return tuple(subset)
    unknown = set(factors) - set(FACTOR_NAMES)
    if unknown:
        raise KeyError(f"unknown factor name(s) {sorted(unknown)}; expected a subset of {FACTOR_NAMES}")
    for name, spec in factors.items():
        k = FACTOR_NAMES.index(name)
        items = [spec] if isinstance(spec, (int, np.integer, str)) else list(spec)
        idx: list[int] = []
        for item in items:
            if isinstance(item, str):
                if name != "shape" or item not in SHAPE_NAMES:
                    raise ValueError(f"invalid value {item!r} for factor {name!r}")
                idx.append(SHAPE_NAMES.index(item))
            else:
                idx.append(int(item))
        arr = np.unique(np.asarray(idx, dtype=np.int64))
        if arr.size == 0:
            raise ValueError(f"factor {name!r} restricted to an empty set")
        if arr[0] < 0 or arr[-1] >= FACTOR_SIZES[k]:
            raise ValueError(f"indices for factor {name!r} must lie in [0, {FACTOR_SIZES[k]})")
        subset[k] = arr
    return tuple(subset)


def _grid_indices(subset: tuple[np.ndarray, ...]) -> np.ndarray:
    """Row-major (first factor slowest) product grid, shape (N, 5) int64."""
    grids = np.meshgrid(*subset, indexing="ij")
    return np.stack([g.reshape(-1) for g in grids], axis=1)


def _indices_to_values(factor_indices: np.ndarray) -> np.ndarray:
    """Map (n, 5) integer factor indices to (n, 5) float64 factor values."""
    return np.stack([_VALUES[k][factor_indices[:, k]] for k in range(5)], axis=1)


def _as_factor_indices(factor_indices: np.ndarray | Iterable[Iterable[int]]) -> np.ndarray:
    idx = np.asarray(factor_indices)
    if idx.ndim == 1:
        idx = idx[None, :]
    if idx.ndim != 2 or idx.shape[1] != 5:
        raise ValueError(f"factor_indices must have shape (n, 5), got {idx.shape}")
    if idx.size and not np.issubdtype(idx.dtype, np.integer):
        if not np.array_equal(idx, np.round(idx)):
            raise ValueError("factor_indices must be integers")
    idx = idx.astype(np.int64)
    sizes = np.asarray(FACTOR_SIZES)
    if idx.size and (np.any(idx < 0) or np.any(idx >= sizes)):
        raise ValueError(f"factor_indices out of range for factor sizes {FACTOR_SIZES}")
    return idx


# --- rendering ---------------------------------------------------------------


def _shape_masks(shape_id: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Membership of canonical-frame points, computed in place.

    Args:
        shape_id: 0 square, 1 ellipse, 2 heart.
        u, v: (m, w, w) float32 coordinates, already normalised per shape
            (square: by half side; ellipse: by semi-axes; heart: by the heart
            unit, with the vertical offset applied).  Overwritten.

    Returns:
        (m, w, w) bool membership mask.
    """
    if shape_id == 0:
        np.abs(u, out=u)
        np.abs(v, out=v)
        np.maximum(u, v, out=u)
        return u <= 1.0
    if shape_id == 1:
        np.multiply(u, u, out=u)
        np.multiply(v, v, out=v)
        u += v
        return u <= 1.0
    # heart: (x^2 + y^2 - 1)^3 - x^2 y^3 <= 0 with x = u, y = v
    y2 = v * v
    np.multiply(u, u, out=u)  # u = x^2
    np.multiply(v, y2, out=v)  # v = y^3
    y2 += u
    y2 -= 1.0  # y2 = x^2 + y^2 - 1
    cube = y2 * y2
    cube *= y2
    u *= v  # u = x^2 y^3
    return cube <= u


def _shape_frame_factors(shape_id: int) -> tuple[float, float, float]:
    """(1 / horizontal unit, 1 / vertical unit, vertical offset) of a shape."""
    if shape_id == 0:
        return 1.0 / _SQUARE_HALF, 1.0 / _SQUARE_HALF, 0.0
    if shape_id == 1:
        return 1.0 / _ELLIPSE_A, 1.0 / _ELLIPSE_B, 0.0
    return 1.0 / _HEART_UNIT, 1.0 / _HEART_UNIT, _HEART_Y0


def _render_chunk(values: np.ndarray, res: int) -> np.ndarray:
    """Render one chunk of sprites.

    Args:
        values: (n, 5) float64 factor values (shape id, scale, orientation,
            pos_x, pos_y).
        res: image side in pixels.

    Returns:
        (n, res, res) uint8 images with values in {0, 1}.
    """
    n = values.shape[0]
    out = np.zeros((n, res * res), dtype=np.uint8)
    if n == 0:
        return out.reshape(n, res, res)
    shape_ids = np.rint(values[:, 0]).astype(np.int64)
    scale = values[:, 1]
    theta = values[:, 2]
    cx = _POS_LO + _POS_SPAN * values[:, 3]
    cy = _POS_LO + _POS_SPAN * values[:, 4]

    # Square window (w x w pixels) around each sprite that contains it.
    half = int(np.ceil(_BOUND_RADIUS * float(scale.max()) * res))
    w = min(2 * half + 2, res)
    offs = np.arange(w)
    c0 = np.clip(np.floor(cx * res - 0.5).astype(np.int64) - half, 0, res - w)
    r0 = np.clip(np.floor(cy * res - 0.5).astype(np.int64) - half, 0, res - w)
    cols = c0[:, None] + offs  # (n, w)
    rows = r0[:, None] + offs  # (n, w)
    dx = (cols + 0.5) / res - cx[:, None]  # right
    dy = cy[:, None] - (rows + 0.5) / res  # up
    cos_s = (np.cos(theta) / scale)[:, None]
    sin_s = (np.sin(theta) / scale)[:, None]
    # Canonical frame: u = (cos dx + sin dy) / s, v = (-sin dx + cos dy) / s,
    # split into a column part (depends on dx) and a row part (depends on dy).
    u_col, u_row = cos_s * dx, sin_s * dy
    v_col, v_row = -sin_s * dx, cos_s * dy

    masks = np.empty((n, w, w), dtype=bool)
    for sid in range(len(SHAPE_NAMES)):
        sel = np.flatnonzero(shape_ids == sid)
        if sel.size == 0:
            continue
        fu, fv, v0 = _shape_frame_factors(sid)
        uc = (u_col[sel] * fu).astype(np.float32)
        ur = (u_row[sel] * fu).astype(np.float32)
        vc = (v_col[sel] * fv).astype(np.float32)
        vr = (v_row[sel] * fv + v0).astype(np.float32)
        u = uc[:, None, :] + ur[:, :, None]  # (m, w rows, w cols)
        v = vc[:, None, :] + vr[:, :, None]
        masks[sel] = _shape_masks(sid, u, v)

    # Scatter each window into its image with one flat (1-D) index assignment.
    base = np.arange(n, dtype=np.int64) * (res * res) + r0 * res + c0  # (n,)
    lin = base[:, None, None] + ((offs * res)[:, None] + offs)  # (n, w, w)
    out.reshape(-1)[lin.reshape(-1)] = masks.reshape(-1).view(np.uint8)
    return out.reshape(n, res, res)


def _render_into(values: np.ndarray, res: int, packed_out: np.ndarray | None = None) -> np.ndarray:
    """Render (n, 5) factor values chunk by chunk into a packed (n, res, res // 8) array."""
    n = values.shape[0]
    if packed_out is None:
        packed_out = np.empty((n, res, res // 8), dtype=np.uint8)
    for start in range(0, n, _CHUNK):
        stop = min(start + _CHUNK, n)
        packed_out[start:stop] = np.packbits(_render_chunk(values[start:stop], res), axis=-1)
    return packed_out


def render_values(factor_values: np.ndarray, resolution: int = 64, *, packed: bool = False) -> np.ndarray:
    """Render sprites from continuous factor values.

    Args:
        factor_values: (n, 5) or (5,) array: shape id (0 square, 1 ellipse,
            2 heart), scale (1.0 = largest dSprites size), orientation in
            radians (counter-clockwise as displayed), pos_x and pos_y (0..1
            spans the dSprites range; other values extrapolate, and the image
            is simply cropped).
        resolution: image side in pixels (a multiple of 8; 64 and 32 are the
            standard sizes).
        packed: return ``np.packbits(images, axis=-1)`` instead of the images.

    Returns:
        (n, res, res) uint8 images with values in {0, 1}, or (n, res, res // 8)
        uint8 packed bits if ``packed``.
    """
    res = _check_resolution(resolution)
    vals = np.asarray(factor_values, dtype=np.float64)
    if vals.ndim == 1:
        vals = vals[None, :]
    if vals.ndim != 2 or vals.shape[1] != 5:
        raise ValueError(f"factor_values must have shape (n, 5), got {vals.shape}")
    if vals.size and not np.all(np.isin(vals[:, 0], (0.0, 1.0, 2.0))):
        raise ValueError("shape id (column 0) must be 0, 1 or 2")
    if vals.size and np.any(vals[:, 1] <= 0):
        raise ValueError("scale (column 1) must be positive")
    if packed:
        return _render_into(vals, res)
    out = np.empty((vals.shape[0], res, res), dtype=np.uint8)
    for start in range(0, vals.shape[0], _CHUNK):
        stop = min(start + _CHUNK, vals.shape[0])
        out[start:stop] = _render_chunk(vals[start:stop], res)
    return out


def render(
    factor_indices: np.ndarray | Iterable[Iterable[int]],
    resolution: int = 64,
    *,
    packed: bool = False,
) -> np.ndarray:
    """Render the dSprites images of given factor indices (no full grid needed).

    Args:
        factor_indices: (n, 5) or (5,) integer indices into
            ``FACTOR_SIZES = (3, 6, 40, 32, 32)``, columns in ``FACTOR_NAMES``
            order.
        resolution: image side in pixels.
        packed: return bit-packed rows instead (see :func:`render_values`).

    Returns:
        (n, res, res) uint8 images in {0, 1} (or (n, res, res // 8) packed);
        identical to the corresponding rows of :func:`generate`.
    """
    idx = _as_factor_indices(factor_indices)
    return render_values(_indices_to_values(idx), resolution, packed=packed)


# --- full / sub-grid arrays --------------------------------------------------


@dataclass(frozen=True)
class SpritesArrays:
    """A (sub)grid of dSprites images with its factors.

    Attributes:
        packed: (N, res, res // 8) uint8, ``np.packbits(images, axis=-1)``.
            Use :attr:`images`, :meth:`unpack` or :meth:`observations` to get
            pixels (the full 64x64 grid is 3 GB unpacked).
        factor_indices: (N, 5) int64 indices into the *full* factor grid
            (e.g. orientation index 8 even in a subset with every 4th angle).
        factor_values: (N, 5) float64 factor values (shape id as 0., 1., 2.).
        factor_sizes: sizes of the (sub)grid per factor; ``prod == N``.
        factor_subset: the full-grid indices kept for each factor (5 arrays).
        resolution: image side in pixels.
        factor_names: ``FACTOR_NAMES``.
    """

    packed: np.ndarray
    factor_indices: np.ndarray
    factor_values: np.ndarray
    factor_sizes: tuple[int, ...]
    factor_subset: tuple[np.ndarray, ...]
    resolution: int
    factor_names: tuple[str, ...] = FACTOR_NAMES

    def __len__(self) -> int:
        return int(self.packed.shape[0])

    @property
    def images(self) -> np.ndarray:
        """All images, (N, res, res) uint8 in {0, 1} (unpacks everything)."""
        return self.unpack()

    def unpack(self, rows: np.ndarray | slice | None = None) -> np.ndarray:
        """Unpack selected rows to (n, res, res) uint8 images in {0, 1}."""
        sel = self.packed if rows is None else self.packed[rows]
        return np.unpackbits(sel, axis=-1, count=self.resolution)

    def observations(self, rows: np.ndarray | slice | None = None, *, flatten: bool = True) -> np.ndarray:
        """Selected rows as float32: (n, res * res) if ``flatten`` else (n, 1, res, res)."""
        imgs = self.unpack(rows).astype(np.float32)
        if flatten:
            return imgs.reshape(imgs.shape[0], -1)
        return imgs[:, None]

    def index_of(self, factor_indices: np.ndarray | Iterable[Iterable[int]]) -> np.ndarray:
        """Row numbers of given full-grid factor indices ((n, 5) -> (n,) int64).

        Raises:
            KeyError: if some factor index is not part of this subset.
        """
        idx = _as_factor_indices(factor_indices)
        local = np.empty_like(idx)
        for k, kept in enumerate(self.factor_subset):
            pos = np.searchsorted(kept, idx[:, k])
            ok = (pos < kept.size) & (kept[np.minimum(pos, kept.size - 1)] == idx[:, k])
            if not np.all(ok):
                raise KeyError(f"factor {FACTOR_NAMES[k]!r} index not in this subset")
            local[:, k] = pos
        return np.ravel_multi_index(tuple(local.T), self.factor_sizes).astype(np.int64)


def _make_arrays(packed: np.ndarray, subset: tuple[np.ndarray, ...], res: int) -> SpritesArrays:
    idx = _grid_indices(subset)
    return SpritesArrays(
        packed=packed,
        factor_indices=idx,
        factor_values=_indices_to_values(idx),
        factor_sizes=tuple(int(s.size) for s in subset),
        factor_subset=subset,
        resolution=res,
    )


def generate(resolution: int = 64, factors: FactorSubset | None = None) -> SpritesArrays:
    """Render the dSprites factor grid (or a sub-grid) in memory.

    Args:
        resolution: image side in pixels (64 default, 32 small; multiple of 8).
        factors: optional restriction ``{factor name: index values}``, e.g.
            ``{"orientation": range(0, 40, 4), "pos_x": range(0, 32, 2)}``;
            indices are sorted and de-duplicated, ``"shape"`` also accepts
            names ("square", "ellipse", "heart").  Unlisted factors keep all
            values.

    Returns:
        :class:`SpritesArrays` with N = prod(factor_sizes) images in row-major
        factor order (shape slowest, pos_y fastest).  Deterministic: the same
        bytes on every call.
    """
    res = _check_resolution(resolution)
    subset = _normalise_subset(factors)
    idx = _grid_indices(subset)
    values = _indices_to_values(idx)
    return SpritesArrays(
        packed=_render_into(values, res),
        factor_indices=idx,
        factor_values=values,
        factor_sizes=tuple(int(s.size) for s in subset),
        factor_subset=subset,
        resolution=res,
    )


# --- disk cache --------------------------------------------------------------


def _cache_meta(res: int, subset: tuple[np.ndarray, ...]) -> str:
    full = all(s.size == size for s, size in zip(subset, FACTOR_SIZES, strict=True))
    meta = {
        "dataset": "vaekit.sprites",
        "geometry_version": GEOMETRY_VERSION,
        "resolution": res,
        "subset": None if full else {n: s.tolist() for n, s in zip(FACTOR_NAMES, subset, strict=True)},
    }
    return json.dumps(meta, sort_keys=True)


def cache_path(
    resolution: int = 64,
    factors: FactorSubset | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> Path:
    """Path of the cache file for a resolution and factor subset.

    The folder is ``cache_dir``, else ``$VAEKIT_CACHE``, else
    ``~/.cache/vaekit``.  The name encodes the geometry version, resolution
    and (for subsets) a hash of the kept indices.
    """
    res = _check_resolution(resolution)
    subset = _normalise_subset(factors)
    from vaekit import io  # the package's helpers, imported when used: this module needs numpy only

    folder = Path(cache_dir) if cache_dir is not None else io.cache_dir()
    meta = json.loads(_cache_meta(res, subset))
    if meta["subset"] is None:
        tag = "full"
    else:
        tag = "sub-" + hashlib.sha256(json.dumps(meta["subset"], sort_keys=True).encode()).hexdigest()[:16]
    return folder / f"dsprites_v{GEOMETRY_VERSION}_r{res}_{tag}.npz"


def _read_cache(path: Path, meta: str, expected_shape: tuple[int, ...]) -> np.ndarray:
    """Read and validate a cache file; raise ValueError if it is unusable."""
    try:
        with np.load(path, allow_pickle=False) as data:
            stored_meta = str(data["meta"][()])
            packed = data["packed"]  # zip CRC is verified while reading
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(f"unreadable cache file {path}: {exc}") from exc
    if stored_meta != meta:
        raise ValueError(f"cache file {path} has metadata {stored_meta}, expected {meta}")
    if packed.dtype != np.uint8 or packed.shape != expected_shape:
        raise ValueError(
            f"cache file {path} holds {packed.dtype}{packed.shape}, expected uint8{expected_shape}"
        )
    return packed


def _write_cache(path: Path, packed: np.ndarray, meta: str) -> None:
    """Atomically write the cache (vaekit.io.atomic_path: temp file in the same folder, fsync,
    rename), so an interrupted generation never leaves a partial file."""

    from vaekit import io

    with io.atomic_path(path) as tmp, open(tmp, "wb") as fh:
        # An ``.npz`` (readable by np.load) deflated at level 1: the binary
        # images compress ~36x and decompress about as fast as they are read.
        with zipfile.ZipFile(fh, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
            for name, arr in (("packed", packed), ("meta", np.array(meta))):
                with zf.open(name + ".npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, arr, allow_pickle=False)


def load(
    resolution: int = 64,
    factors: FactorSubset | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> SpritesArrays:
    """Like :func:`generate`, but cached on disk.

    The packed images are stored as a deflated ``.npz`` (zip CRC-checked;
    about 11 MB for the full 64x64 grid instead of 377 MB of packed bits) at
    :func:`cache_path`.  Writing is atomic, so an interrupted generation never
    leaves a partial file; a corrupt, truncated or mismatching cache file is
    reported with a :class:`RuntimeWarning` and regenerated (a cache that
    cannot be written only warns).

    Args:
        resolution: image side in pixels.
        factors: optional factor restriction (see :func:`generate`).
        cache_dir: cache folder; default ``$VAEKIT_CACHE`` or ``~/.cache/vaekit``.

    Returns:
        :class:`SpritesArrays`, identical to ``generate(resolution, factors)``.
    """
    res = _check_resolution(resolution)
    subset = _normalise_subset(factors)
    path = cache_path(res, factors, cache_dir)
    meta = _cache_meta(res, subset)
    n = int(np.prod([s.size for s in subset]))
    expected = (n, res, res // 8)
    if path.exists():
        try:
            return _make_arrays(_read_cache(path, meta, expected), subset, res)
        except ValueError as exc:
            warnings.warn(f"{exc}; regenerating", RuntimeWarning, stacklevel=2)
    arrays = generate(res, factors)
    try:
        _write_cache(path, arrays.packed, meta)
    except OSError as exc:  # e.g. read-only or full disk: still return the data
        warnings.warn(f"could not write sprites cache {path}: {exc}", RuntimeWarning, stacklevel=2)
    return arrays


# --- sampling interface for metrics ------------------------------------------


class SpritesFactorData:
    """Ground-truth factor sampler over dSprites, rendering on demand.

    Args:
        resolution: image side in pixels.
        flatten: if True, observations are (n, res * res) float32; otherwise
            (n, 1, res, res) float32.
        factors: optional restriction of the factor values that
            :meth:`sample_factors` may draw (see :func:`generate`);
            :attr:`factor_sizes` stays the full-grid sizes because indices
            are full-grid indices.

    Attributes:
        factor_names: ``FACTOR_NAMES``.
        factor_sizes: ``FACTOR_SIZES`` = (3, 6, 40, 32, 32).
        num_factors: 5.
        observation_shape: (res * res,) or (1, res, res).
    """

    factor_names: tuple[str, ...] = FACTOR_NAMES
    factor_sizes: tuple[int, ...] = FACTOR_SIZES
    num_factors: int = len(FACTOR_NAMES)

    def __init__(
        self, resolution: int = 64, *, flatten: bool = True, factors: FactorSubset | None = None
    ) -> None:
        self.resolution = _check_resolution(resolution)
        self.flatten = flatten
        self.factor_subset = _normalise_subset(factors)
        res = self.resolution
        self.observation_shape: tuple[int, ...] = (res * res,) if flatten else (1, res, res)

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Draw n factor combinations uniformly (independent per factor).

        Returns:
            (n, 5) int64 full-grid factor indices.
        """
        cols = [kept[rng.integers(0, kept.size, size=n)] for kept in self.factor_subset]
        return np.stack(cols, axis=1).astype(np.int64)

    def sample_observations(
        self, factor_indices: np.ndarray, rng: np.random.Generator | None = None
    ) -> np.ndarray:
        """Images of the given factors (deterministic; ``rng`` is unused).

        Args:
            factor_indices: (n, 5) int full-grid factor indices.
            rng: accepted for interface compatibility; rendering is noise-free.

        Returns:
            float32 in {0, 1}, shape (n, res * res) or (n, 1, res, res).
        """
        imgs = render(factor_indices, self.resolution).astype(np.float32)
        return imgs.reshape((imgs.shape[0], *self.observation_shape))

    def sample_observations_from_factors(
        self, factor_indices: np.ndarray, rng: np.random.Generator | None = None
    ) -> np.ndarray:
        """Alias of :meth:`sample_observations` (disentanglement_lib naming)."""
        return self.sample_observations(factor_indices, rng)

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Draw n factors and their observations: ((n, 5) int64, float32 images)."""
        factor_indices = self.sample_factors(n, rng)
        return factor_indices, self.sample_observations(factor_indices, rng)
