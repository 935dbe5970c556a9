"""A data set ready to train on: `load` turns a name or a path into a `Dataset`, validated, split
(deterministic train/test indices) and scaled for the likelihood (`unit` for images, `standard`
for arrays; for a table each column's type and units, `vaekit.columns`), fitted on the training
split only and kept, so outputs go back to the user's units."""

from __future__ import annotations

import collections
import hashlib
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vaekit import io
from vaekit.config import DataConfig
from vaekit.datasets.arrays import fits_in_memory, profile, stays_stored
from vaekit.datasets.builtin import is_named
from vaekit.datasets.formats import read_raw
from vaekit.datasets.raw import RawData, encode_labels
from vaekit.datasets.rows import MEMORY_LIMIT_HINT, Replaced, Rows, Stacked, chunk_rows, chunks, memory_limit
from vaekit.datasets.tables import Columns, numeric_matrix
from vaekit.errors import VaekitError, check

SCALINGS = ("auto", "unit", "standard", "none")


@dataclass
class Scaling:
    """x_model = (x_user - shift) / scale, per feature (arrays broadcast to one example's shape)."""

    name: str
    shift: np.ndarray
    scale: np.ndarray

    def apply(self, x: np.ndarray) -> np.ndarray:
        """User units -> model units: (x - shift) / scale as float32; x (n, *shape) or one example."""
        return ((x - self.shift) / self.scale).astype(np.float32, copy=False)

    def invert(self, x: np.ndarray) -> np.ndarray:
        """Model units -> user units: x * scale + shift as float32, the inverse of `apply`."""
        return (x * self.scale + self.shift).astype(np.float32)


class ColumnScaling(Scaling):
    """A typed table's scaling: `apply` maps the user's rows (a DataFrame, or an array of the
    columns in order) to model values through the schema (`vaekit.columns`); `invert` maps model
    values back (float64; a category as its code). The model itself sees identity buffers: each
    column's change of units lives in its likelihood."""

    def __init__(self, schema):
        super().__init__("columns", np.zeros(1, np.float32), np.ones(1, np.float32))
        self.schema = schema

    def apply(self, x) -> np.ndarray:
        import pandas as pd

        frame = x if isinstance(x, pd.DataFrame) else pd.DataFrame(np.asarray(x), columns=self.schema.names)
        return self.schema.to_model(frame).astype(np.float32)

    def invert(self, x: np.ndarray) -> np.ndarray:
        frame = self.schema.to_user(np.asarray(x))
        return np.stack([_as_numbers(frame[c]) for c in frame.columns], axis=1)


@dataclass
class Dataset:
    """A validated data set with its split. `x` is in the units the likelihood sees (scaled).

    Attributes: `x` (n, *shape) float32 scaled: an array, or `vaekit.datasets.rows.Rows` when the data stay
    as stored (8-bit pixels, a memory-mapped .npy, an HDF5 dataset) and are scaled per read; `y`
    (n,) int or None; `factors` (n, n_factors) or None; `train_idx`, `test_idx` index arrays;
    `scaling` maps user units to model units.
    """

    name: str
    x: np.ndarray
    shape: tuple[int, ...]
    kind: str
    scaling: Scaling
    train_idx: np.ndarray
    test_idx: np.ndarray
    y: np.ndarray | None = None
    label_names: list[str] | None = None
    factors: np.ndarray | None = None
    factor_names: list[str] | None = None
    column_names: list[str] | None = None
    extra: dict = field(default_factory=dict)

    @property
    def data_dim(self) -> int:
        """Numbers per example: the product of `shape` (e.g. 784 for (1, 28, 28))."""
        return int(np.prod(self.shape))

    @property
    def is_image(self) -> bool:
        """Whether the examples are images (`kind == "image"`, shape (channels, height, width))."""
        return self.kind == "image"

    @property
    def is_pixels(self) -> bool:
        """Images, or arrays of pixel values (unsigned integers scaled by their type's range)."""
        return self.is_image or self.extra.get("full_scale") is not None

    @property
    def value_range(self) -> tuple[float, float]:
        """Range of the whole scaled data (both splits: no split decides what the data are)."""
        if isinstance(self.x, Rows):
            parts = [(np.nanmin(c), np.nanmax(c)) for c in chunks(self.x) if c.size]
            return float(min(p[0] for p in parts)), float(max(p[1] for p in parts))
        return float(np.nanmin(self.x)), float(np.nanmax(self.x))

    @property
    def schema(self):
        """A table file's typed columns (`vaekit.columns.Schema`), or None for arrays and images."""
        return self.extra.get("schema")

    @property
    def ids(self):
        """A table's identifier columns (a pandas DataFrame, one row per example), or None."""
        return self.extra.get("ids")

    @property
    def notes(self) -> list[str]:
        """Sentences about how the file was read (conversions, dropped columns), said once."""
        return list(self.extra.get("notes", []))

    @property
    def x_train(self) -> np.ndarray:
        """The training split (n_train, *shape), scaled: a copy (fancy indexing), or unread `Rows`
        when the data stay as stored."""
        return self.x.take(self.train_idx) if isinstance(self.x, Rows) else self.x[self.train_idx]

    @property
    def x_test(self) -> np.ndarray:
        """The test split (n_test, *shape), scaled: a copy (fancy indexing), or unread `Rows`
        when the data stay as stored."""
        return self.x.take(self.test_idx) if isinstance(self.x, Rows) else self.x[self.test_idx]

    def labels(self, split: str = "test") -> np.ndarray | None:
        """Integer labels (n_split,) of the `"train"` split, or of the test split for any other
        `split`; None when the data set has no labels."""
        if self.y is None:
            return None
        return self.y[self.train_idx if split == "train" else self.test_idx]

    def label_name(self, label: int) -> str:
        """The text of integer label `label`: its entry in `label_names`, or the number itself."""
        return self.label_names[label] if self.label_names else str(label)

    def factor_source(self):
        """The ground-truth factor sampler the disentanglement metrics draw from
        (`vaekit.metrics` protocol): the full sprites grid, rendered on demand, for the sprites
        data sets, else this data set's own `factors` array. Raises `VaekitError` when the data
        have no factors."""
        from vaekit import metrics

        resolution = self.extra.get("sprites_resolution")
        if resolution:
            from vaekit.datasets import sprites

            return sprites.SpritesFactorData(resolution, flatten=False)
        if self.factors is None:
            raise VaekitError(
                f"{self.name} has no ground-truth factors, so disentanglement metrics cannot be computed; "
                "use sprites, or a .npz file with a factors array."
            )
        factors = np.asarray(self.factors)
        if factors.dtype.kind == "f" and not np.isfinite(factors).all():
            column = int(np.argmax(~np.isfinite(factors).all(axis=0)))
            names = self.factor_names or [f"factor_{j}" for j in range(factors.shape[1])]
            raise VaekitError(
                f"{self.name}: the factor {names[column]!r} has missing or infinite values; disentanglement "
                "metrics need every example's factors: drop those examples or that factor."
            )
        constant = [j for j in range(factors.shape[1]) if len(np.unique(factors[:, j])) < 2]
        if constant:
            names = self.factor_names or [f"factor_{j}" for j in range(factors.shape[1])]
            warnings.warn(
                f"{self.name}: the factor(s) {', '.join(repr(names[j]) for j in constant)} never vary: "
                "metrics that compare factors' entropies (MIG, DCI, modularity) are undefined or inflated "
                "with them; leave them out of the factors.",
                stacklevel=2,
            )
        return metrics.ArrayFactorData(self.x, factors, self.factor_names)

    def preview_index(self, n: int) -> np.ndarray:
        """Indices into `x` of n test examples for figures: a fixed random draw, one per label
        first when labelled (the test split is in file order, which is often sorted by label)."""
        rng = np.random.default_rng(0)
        order = rng.permutation(len(self.test_idx))
        if self.y is not None:
            labels = self.y[self.test_idx][order]
            _, first = np.unique(labels, return_index=True)
            order = np.concatenate([order[np.sort(first)], np.delete(order, first)])
        return self.test_idx[order[:n]]

    def preview(self, n: int) -> np.ndarray:
        """The examples at `preview_index(n)` (n, *shape)."""
        return self.x[self.preview_index(n)]

    def to_user_units(self, x: np.ndarray) -> np.ndarray:
        """Model-unit arrays (n, *shape) (e.g. reconstructions, samples) back in the user's units;
        for a typed table, (n, d) float64 with each category as its code (`schema.to_user`
        gives the labels)."""
        return self.scaling.invert(x)

    def describe(self) -> str:
        """One line for the terminal: name, example counts per split, shape, kind, scaling and the
        scaled value range, and the number of distinct labels when labelled."""
        lo, hi = self.value_range
        if self.schema is not None:
            counts = collections.Counter(self.schema.types.values())
            types = ", ".join(f"{n} {k}" for k, n in counts.items())
            labels = f", {len(np.unique(self.y))} labels" if self.y is not None else ""
            return (
                f"{self.name}: {len(self.x)} rows ({len(self.train_idx)} train, {len(self.test_idx)} test) "
                f"of {self.data_dim} columns ({types}){labels}"
            )
        labels = f", {len(np.unique(self.y))} labels" if self.y is not None else ""
        return (
            f"{self.name}: {len(self.x)} examples ({len(self.train_idx)} train, "
            f"{len(self.test_idx)} test) of shape {self.shape}, {self.kind}, "
            f"scaling {self.scaling.name} -> [{lo:.4g}, {hi:.4g}]{labels}"
        )


def _as_numbers(values) -> np.ndarray:
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):  # labels: their codes
        _, codes = np.unique(np.asarray(values, dtype=str), return_inverse=True)
        return codes.astype(np.float64)


def _column_list(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value]
    return [c.strip() for c in str(value).split(",") if c.strip()]


def select_columns(raw: RawData, columns=None, drop_columns=None) -> RawData:
    """Keep the table columns named in `columns` (in that order) and/or remove those in
    `drop_columns` (comma-separated text or a list). Raises VaekitError naming unknown columns."""
    keep, drop = _column_list(columns), _column_list(drop_columns)
    if not keep and not drop:
        return raw
    names = raw.column_names
    check(
        names is not None, f"{raw.source}: --columns and --drop-columns apply to tables with named columns."
    )
    unknown = [c for c in keep + drop if c not in names]
    if unknown:
        raise VaekitError(
            f"{raw.source} has no column {unknown[0]!r} (--columns/--drop-columns); its columns are "
            f"{', '.join(map(repr, names))}."
        )
    chosen = [c for c in (keep or names) if c not in drop]
    check(bool(chosen), f"{raw.source}: no feature column is left after --drop-columns.")
    _take_columns(raw, chosen)
    return raw


def _take_columns(raw: RawData, chosen: list[str]) -> None:
    names = raw.column_names
    if raw.frame is not None:
        raw.frame = raw.frame[chosen]
        raw.x = numeric_matrix(raw.frame)
        raw.column_types = {c: raw.column_types[c] for c in chosen} if raw.column_types else None
    else:
        raw.x = np.asarray(raw.x)[:, [names.index(c) for c in chosen]]
    raw.column_names = list(chosen)


def match_columns(raw: RawData, trained_on: list[str]) -> RawData:
    """Bring a table's columns into the order a model was trained on, by name: any order, extra
    columns ignored (and named in a note); a missing column is an error naming it."""
    names = raw.column_names
    if names is None or names == trained_on:
        return raw
    missing = [c for c in trained_on if c not in names]
    check(
        not missing,
        f"{raw.source} lacks the column{'s' if len(missing) > 1 else ''} "
        f"{', '.join(map(repr, missing))} that the model was trained on; give a table with "
        f"{', '.join(map(repr, trained_on))}.",
    )
    extra = [c for c in names if c not in trained_on]
    if extra:
        raw.notes.append(f"{Path(raw.source).name}: ignored the columns {', '.join(map(repr, extra))}.")
    _take_columns(raw, list(trained_on))
    return raw


def validate(raw: RawData) -> RawData:
    """Check and normalise `raw` in place and return it: x becomes float32 (float64 stays float64);
    1-D x becomes one column; 3-D or 4-D x not yet marked as images becomes images (n, C, H, W)
    (a channel axis added to (n, H, W), channels-last moved first); x of 5+ dims is flattened to
    a table; labels without names are encoded as integers (`label_names` set for text labels).
    Raises `VaekitError` for non-numeric, empty or featureless data, NaN/Inf (naming the first),
    or y/factors whose row count differs from x's. A table file (`raw.frame`) was checked as it
    was read; only its row counts are checked here. Training needs at least 2 examples
    (`from_raw`); one is enough to score or encode."""
    where = raw.source or "the data"
    if raw.frame is not None:
        check(len(raw.frame) > 0, f"The data in {where} is empty; give at least one row.")
        _check_rows(raw, len(raw.frame), where)
        return raw
    if stays_stored(raw.x) and not fits_in_memory(raw.x):
        return _validate_stored(raw, where)
    x = np.array(raw.x) if isinstance(raw.x, np.memmap) else np.asarray(raw.x)  # it fits: read whole
    if x.dtype.byteorder not in ("=", "|"):  # a mapped big-endian file, read in native order
        x = x.astype(x.dtype.newbyteorder("="))
    check(
        (np.issubdtype(x.dtype, np.number) and not np.issubdtype(x.dtype, np.complexfloating))
        or x.dtype == np.bool_,
        f"The data in {where} has dtype {x.dtype}, not real numbers; give a numeric array.",
    )
    check(x.ndim >= 1 and x.shape[0] > 0, f"The data in {where} is empty; give at least 2 examples.")
    if x.ndim == 1:
        x = x[:, None]
    check(x[0].size > 0, f"The data in {where} has 0 features per example; give at least one.")
    x = x.astype(np.float64 if x.dtype == np.float64 else np.float32, copy=False)
    _refuse_nonfinite([x], where)
    if raw.kind != "image" and x.ndim in (3, 4):
        raw.kind = "image"
        if x.ndim == 3:
            x = x[:, None]
        elif x.shape[-1] in (1, 3, 4) and x.shape[1] not in (1, 3, 4):
            x = x.transpose(0, 3, 1, 2)
    if raw.kind != "image" and x.ndim > 2:
        x = x.reshape(len(x), -1)
    raw.x = x
    _check_rows(raw, len(x), where)
    return raw


def _refuse_nonfinite(parts, where: str) -> None:
    """Raise `VaekitError` naming how many NaN and Inf values the row blocks `parts` (in order)
    hold and where the first is; return quietly when every value is finite."""
    n_nan = n_inf = start = 0
    first = None
    for part in parts:
        bad = ~np.isfinite(part)
        if bad.any():
            n_nan, n_inf = n_nan + int(np.isnan(part).sum()), n_inf + int(np.isinf(part).sum())
            if first is None:
                first = np.argwhere(bad)[0]
                first[0] += start
        start += len(part)
    if first is None:
        return
    what = " and ".join(
        f"{n} {name} value{'s' if n != 1 else ''}" for n, name in ((n_nan, "NaN"), (n_inf, "Inf")) if n
    )
    raise VaekitError(
        f"The data in {where} contains {what} (the first at example {first[0]}, position "
        f"{tuple(int(i) for i in first[1:])}); remove or impute them before training."
    )


def _validate_stored(raw: RawData, where: str) -> RawData:
    """`validate` for data kept as stored (`stays_stored`): the same checks in chunked passes,
    and the same changes of layout as per-read views of `Rows`, so every value read equals the
    one an in-memory array would hold."""
    source = raw.x
    compressed = getattr(source, "compression", None) is not None  # an HDF5 dataset read through filters
    if compressed and int(np.prod(source.shape, dtype=np.int64)) * source.dtype.itemsize <= memory_limit():
        source = source[()]  # its stored values fit: read once (decompressing per batch is slow)
    elif compressed:
        raw.notes.append(
            f"{Path(where).name}: the dataset is compressed and larger than memory allows "
            f"({memory_limit() / 2**30:.1f} GiB, {MEMORY_LIMIT_HINT}): each batch is read and decompressed "
            "from the file, which is slow; store it uncompressed, or as a .npy, to train at memory speed."
        )
    x = source if isinstance(source, Rows) else Rows(source)
    kind = x.dtype.kind
    check(
        kind in "iufb",
        f"The data in {where} has dtype {x.dtype}, not real numbers; give a numeric array.",
    )
    check(x.ndim >= 1 and len(x) > 0, f"The data in {where} is empty; give at least 2 examples.")
    check(
        x.ndim == 1 or int(np.prod(x.shape[1:])) > 0,
        f"The data in {where} has 0 features per example; give at least one.",
    )
    if x.dtype.byteorder not in ("=", "|"):  # big-endian files are read in native order
        x = x.view(lambda b: b.astype(b.dtype.newbyteorder("=")))
    if kind == "f":
        _refuse_nonfinite(chunks(x), where)
    if x.dtype not in (np.uint8, np.uint16, np.bool_, np.float32, np.float64):
        x = x.view(lambda b: b.astype(np.float32))  # as `validate` makes an in-memory array
    if x.ndim == 1:
        x = x.view(lambda b: b[:, None])
    if raw.kind != "image" and x.ndim in (3, 4):
        raw.kind = "image"
        if x.ndim == 3:
            x = x.view(lambda b: b[:, None])
        elif x.shape[-1] in (1, 3, 4) and x.shape[1] not in (1, 3, 4):
            x = x.view(lambda b: b.transpose(0, 3, 1, 2))
    if raw.kind != "image" and x.ndim > 2:
        x = x.view(lambda b: b.reshape(len(b), int(np.prod(b.shape[1:]))))
    raw.x = x
    _check_rows(raw, len(x), where)
    return raw


def _check_rows(raw: RawData, n: int, where: str) -> None:
    for name in ("y", "factors"):
        value = getattr(raw, name)
        if value is not None:
            check(len(value) == n, f"{where}: {name} has {len(value)} rows but x has {n}; they must match.")
    if raw.y is not None and raw.label_names is None:
        raw.y, raw.label_names = encode_labels(raw.y, f"{where}: y")


def split_indices(n: int, test_size: float | int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A deterministic shuffled split: `test_size` is a fraction in (0, 1) or a count."""
    if 0 < test_size < 1:
        n_test = max(1, int(round(n * float(test_size))))
    else:
        check(
            float(test_size).is_integer(),
            f"test_size must be a fraction in (0, 1) or a whole count, not {test_size}.",
        )
        n_test = int(test_size)
    check(
        1 <= n_test <= n - 1,
        f"test_size asks for {n_test} test examples but the data has {n}; choose a count "
        f"between 1 and {n - 1} or a fraction such as 0.2.",
    )
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def fit_scaling(raw: RawData, train_idx: np.ndarray, how: str = "auto") -> Scaling:
    """Choose x_model = (x - shift) / scale.

    - `unit` maps the data's range to [0, 1]: by the full scale of its type where that is known
      (255 for 8-bit pixels), else by the range of the whole data (both splits: a range is a
      property of the data, and no split may decide whether a value is valid), one range for an
      image, one per column for a table.
    - `standard` subtracts each column's mean and divides by its standard deviation, fitted on
      the training split only; a column whose spread is float noise next to its own mean keeps
      scale 1 (the tolerance is per column, so a small-valued column beside a large one is still
      scaled).
    - `auto` is `unit` for images and for unsigned-integer arrays (pixels or counts), `standard`
      for other tables.
    """
    check(how in SCALINGS, f"scaling must be one of {', '.join(SCALINGS)}, not {how!r}.")
    if how == "auto":
        how = "unit" if raw.kind == "image" or raw.full_scale is not None else "standard"
    if how == "none":
        return Scaling("none", np.zeros(1, np.float32), np.ones(1, np.float32))
    if how == "unit":
        x = raw.x
        full_scale = raw.full_scale
        if raw.kind != "image" and full_scale is None:  # a table: each column to [0, 1]
            lo, hi = _column_range(x)
            span = np.where(hi > lo, hi - lo, 1.0)
            return Scaling("unit", lo.astype(np.float32), span.astype(np.float32))
        if full_scale is None:
            _, lo, hi, whole = profile(x)
            if lo >= 0 and hi <= 1:
                full_scale = 1.0
            elif lo >= 0 and hi <= 255 and whole:
                full_scale = 255.0
            else:
                shift = np.full(1, lo, np.float32)
                return Scaling("unit", shift, np.full(1, max(hi - lo, 1e-12), np.float32))
        return Scaling("unit", np.zeros(1, np.float32), np.full(1, full_scale, np.float32))
    mean, std = _moments(raw.x, train_idx)
    # float32 resolves about 1e-7 of a value: a spread below 1e-6 of the column's own mean is noise;
    # so is one near float32's smallest normal numbers (1.2e-38), where dividing by it overflows
    noise = (std < 1e-30) | (std <= 1e-6 * np.abs(mean))
    std = np.where(noise, 1.0, std)
    return Scaling("standard", mean.astype(np.float32), std.astype(np.float32))


def _column_range(x) -> tuple[np.ndarray, np.ndarray]:
    """Each column's (min, max) as float64, over the rows of an array or `Rows`."""
    if not isinstance(x, Rows):
        return x.min(axis=0).astype(np.float64), x.max(axis=0).astype(np.float64)
    parts = [(p.min(axis=0), p.max(axis=0)) for p in chunks(x) if len(p)]
    return (
        np.min([p[0] for p in parts], axis=0).astype(np.float64),
        np.max([p[1] for p in parts], axis=0).astype(np.float64),
    )


def _moments(x, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mean and standard deviation (float64, per feature) of x's rows `rows` (an array or
    `Rows`), in two chunked passes (the mean, then the squared deviations), the same sums in the
    same order for both, so either storage gives the same scaling."""
    part_rows = chunk_rows(x.shape, 8)
    split = [rows[i : i + part_rows] for i in range(0, len(rows), part_rows)]
    mean = sum(x[r].astype(np.float64).sum(axis=0) for r in split) / len(rows)
    var = sum(((x[r].astype(np.float64) - mean) ** 2).sum(axis=0) for r in split) / len(rows)
    return mean, np.sqrt(var)


def _labels_as_text(raw: RawData) -> np.ndarray:
    return np.asarray([raw.label_names[i] for i in raw.y] if raw.label_names else raw.y.astype(str))


def join_test_file(raw: RawData, test_raw: RawData) -> tuple[RawData, int]:
    """Append a separate test file's examples to the training file's: (joined, n_train). A table's
    test columns are matched to the training columns by name; labels are joined by their names."""
    if raw.column_names is not None and test_raw.column_names is not None:
        test_raw = match_columns(test_raw, raw.column_names)
    raw, test_raw = validate(raw), validate(test_raw)
    if raw.frame is not None or test_raw.frame is not None:
        return _join_test_table(raw, test_raw)
    check(
        raw.x.shape[1:] == test_raw.x.shape[1:],
        f"The test data {test_raw.source} has examples of shape {tuple(test_raw.x.shape[1:])} but the "
        f"training data {raw.source} has {tuple(raw.x.shape[1:])}; give test data like the training data.",
    )
    for name in ("y", "factors"):
        check(
            (getattr(raw, name) is None) == (getattr(test_raw, name) is None),
            f"Only one of {raw.source} and {test_raw.source} has {name}; give both or neither.",
        )
    if raw.full_scale != test_raw.full_scale:
        raise VaekitError(
            f"{raw.source} and {test_raw.source} hold values of different ranges (full scale "
            f"{raw.full_scale} and {test_raw.full_scale}, e.g. 8-bit and 16-bit); give test data of the "
            "training data's type."
        )
    n_train = len(raw.x)
    dtype = np.result_type(raw.x.dtype, test_raw.x.dtype)
    if isinstance(raw.x, Rows) or isinstance(test_raw.x, Rows):  # larger than memory: joined unread
        raw.x = Rows(Stacked([raw.x, test_raw.x], dtype))
    else:
        raw.x = np.concatenate([raw.x.astype(dtype), test_raw.x.astype(dtype)])
    if raw.factors is not None:
        raw.factors = np.concatenate([raw.factors, test_raw.factors])
    if raw.y is not None:
        raw.y, raw.label_names = encode_labels(
            np.concatenate([_labels_as_text(raw), _labels_as_text(test_raw)])
            if raw.label_names or test_raw.label_names
            else np.concatenate([raw.y, test_raw.y]),
            f"{raw.source} and {test_raw.source}: labels",
        )
    raw.notes += test_raw.notes
    return raw, n_train


def _join_test_table(raw: RawData, test_raw: RawData) -> tuple[RawData, int]:
    import pandas as pd

    check(
        raw.frame is not None and test_raw.frame is not None,
        f"{raw.source} and {test_raw.source} are not both tables; give test data like the training data.",
    )
    check(
        (raw.y is None) == (test_raw.y is None),
        f"Only one of {raw.source} and {test_raw.source} has labels; give both or neither.",
    )
    n_train = len(raw.frame)
    raw.frame = pd.concat([raw.frame, test_raw.frame], ignore_index=True)
    raw.x = numeric_matrix(raw.frame)
    if raw.ids is not None or test_raw.ids is not None:
        raw.ids = pd.concat([raw.ids, test_raw.ids], ignore_index=True)
    if raw.y is not None:
        raw.y, raw.label_names = encode_labels(
            np.concatenate([_labels_as_text(raw), _labels_as_text(test_raw)]),
            f"{raw.source} and {test_raw.source}: labels",
        )
    if test_raw.column_types and raw.column_types:
        for name, kind in test_raw.column_types.items():  # a wider type wins (e.g. count over binary)
            if kind != raw.column_types[name]:
                from vaekit import columns

                raw.column_types[name] = columns.infer(name, raw.frame[name])[0] or raw.column_types[name]
    raw.notes += test_raw.notes
    return raw, n_train


def _table_dataset(raw: RawData, name: str, train_idx, test_idx, schema=None) -> Dataset:
    """A table file's Dataset: its schema fitted on the training rows (or a run's saved schema),
    x the model values (n, d) float32 (NaN for a missing cell, with --missing model)."""
    from vaekit import columns

    if schema is None:
        schema = columns.fit_schema(raw.frame, raw.column_types, train_idx, missing=raw.missing == "model")
    elif isinstance(schema, dict):
        schema = columns.Schema.from_spec(schema)
    x = schema.to_model(raw.frame)
    bad = np.isinf(x) | (np.isnan(x) & ~raw.frame[schema.names].isna().to_numpy())
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise VaekitError(
            f"{raw.source or name}: column {schema.names[col]!r} holds {raw.frame.iloc[row, col]!r} at row "
            f"{row}, which is infinite or too large for its type; remove that row or retrain."
        )
    with np.errstate(over="ignore"):
        x32 = x.astype(np.float32)
    check(
        not np.isinf(x32).any(),
        f"The data in {raw.source or name} holds values too large for 32-bit floats after scaling; divide "
        "them by a large constant (or take logs) before training.",
    )
    return Dataset(
        name=name,
        x=x32,
        shape=(x.shape[1],),
        kind="tabular",
        scaling=ColumnScaling(schema),
        train_idx=train_idx,
        test_idx=test_idx,
        y=raw.y,
        label_names=raw.label_names,
        column_names=schema.names,
        extra={
            "source": raw.source,
            "notes": list(raw.notes),
            "full_scale": None,
            "schema": schema,
            "ids": raw.ids,
            "frame": raw.frame,
            **raw.meta,
        },
    )


def from_raw(
    raw: RawData,
    name: str,
    test_size: float | int = 0.2,
    split_seed: int = 0,
    scaling: str | Scaling = "auto",
    test_raw: RawData | None = None,
    schema=None,
) -> Dataset:
    """Validate `raw`, split it and scale it. With `test_raw` (a separate test file), the test
    split is exactly that file's examples and `test_size` is not used. A table file is typed
    column by column instead (`vaekit.columns`; `schema`: a run's saved one)."""
    if test_raw is not None:
        raw, n_train = join_test_file(raw, test_raw)
        n = len(raw.frame) if raw.frame is not None else len(raw.x)
        train_idx, test_idx = np.arange(n_train), np.arange(n_train, n)
    elif raw.meta.get("official_test"):  # a named set's published split: its last rows are the test set
        raw = validate(raw)
        n, n_test = len(raw.x), int(raw.meta["official_test"])
        train_idx, test_idx = np.arange(n - n_test), np.arange(n - n_test, n)
        raw.notes.append(
            f"{name}: the published split, {n - n_test:,} training and {n_test:,} test examples."
        )
    else:
        raw = validate(raw)
        n = len(raw.frame) if raw.frame is not None else len(raw.x)
        check(
            n >= 2, f"The data has {n} example; at least 2 are needed (one to train on and one to test on)."
        )
        train_idx, test_idx = split_indices(n, test_size, split_seed)
    if raw.frame is not None:
        return _table_dataset(raw, name, train_idx, test_idx, schema)
    if not isinstance(scaling, Scaling):
        scaling = fit_scaling(raw, train_idx, scaling)
    else:
        try:  # a saved scaling (a reloaded run) must fit the examples as the file reads now
            np.broadcast_shapes(raw.x.shape[1:], np.shape(scaling.shift), np.shape(scaling.scale))
        except ValueError:
            raise VaekitError(
                f"{raw.source or name} now reads as examples of shape {tuple(raw.x.shape[1:])} but the run's "
                f"saved scaling is for shape {tuple(np.shape(scaling.shift))}; the file changed, or an older "
                "vaekit read it differently (e.g. kept a pandas index column): retrain the run on it."
            ) from None
    if isinstance(raw.x, Rows):  # kept as stored: scaled as each batch is read
        x = raw.x.view(scaling.apply)
        with np.errstate(over="ignore", invalid="ignore"):
            floats = raw.x.stored_dtype.kind == "f"  # scaled integers stay finite
            bad = sum(int((~np.isfinite(part)).sum()) for part in chunks(x)) if floats else 0
    else:
        with np.errstate(over="ignore", invalid="ignore"):
            x = scaling.apply(raw.x)
        bad = int((~np.isfinite(x)).sum())
    check(
        bad == 0 and np.all(np.isfinite(scaling.scale)) and np.all(np.isfinite(scaling.shift)),
        f"The data in {raw.source or name} holds values too large for 32-bit floats ({bad} become "
        "Inf after scaling); divide it by a large constant (or take logs) before training.",
    )
    return Dataset(
        name=name,
        x=x,
        shape=tuple(x.shape[1:]),
        kind=raw.kind,
        scaling=scaling,
        train_idx=train_idx,
        test_idx=test_idx,
        y=raw.y,
        label_names=raw.label_names,
        factors=raw.factors,
        factor_names=raw.factor_names,
        column_names=raw.column_names,
        extra={"source": raw.source, "notes": list(raw.notes), "full_scale": raw.full_scale, **raw.meta},
    )


def load(
    source: str | os.PathLike | DataConfig,
    test_size: float | int = 0.2,
    split_seed: int = 0,
    scaling: str | Scaling = "auto",
    label_column: str | None = None,
    keys: dict | None = None,
    columns=None,
    drop_columns=None,
    test_data: str | os.PathLike | None = None,
    image_options: dict | None = None,
    discrete_columns=None,
    table_options: dict | None = None,
    binarize: str = "none",
) -> Dataset:
    """Load a built-in data set by name, or a file or folder, split and scaled.

    `source` may be a `vaekit.config.DataConfig` (the settings `vaekit train` takes), whose fields
    give every argument but `split_seed` (`DataConfig.load_arguments`).

    `binarize="dynamic"` (data in [0, 1]): the test split is binarised once, each pixel a
    Bernoulli draw of its grey level seeded by `split_seed`; the training split stays grey and
    `vaekit.train.fit` draws it afresh every epoch (dynamic binarisation, as in the likelihoods
    Burda et al. 2016 report).

    `keys` names an .npz archive's arrays: {"x": ..., "y": ..., "factors": ...}; `columns` /
    `drop_columns` choose a table's feature columns by name; `test_data` is a separate file
    whose examples form the test split (instead of a random `test_size` split).
    `table_options`: how to read and model a table file: {"sep", "decimal", "id_column",
    "column_types" ("name=type,..." or a mapping), "missing" (refuse, drop-rows or model),
    "schema" (a run's saved schema: its types and constants instead of fitting them)}.

    >>> data = load("digits")
    >>> data.x.shape, data.shape
    ((1797, 1, 8, 8), (1, 8, 8))
    """
    if isinstance(source, DataConfig):  # the typed settings: their arguments, nothing else given
        return load(**source.load_arguments(), split_seed=split_seed)
    memory_limit()  # a malformed VAEKIT_MEMORY_LIMIT is said before anything is read, whatever the data
    keep, drop = _column_list(columns), _column_list(drop_columns)
    # a table reads only the chosen columns (so a dropped one may hold text, e.g. an event id)
    chosen = Columns(tuple(keep) or None, tuple(drop), strict=True) if keep or drop else None
    table_options = {k: v for k, v in (table_options or {}).items() if v is not None}
    if _column_list(discrete_columns):  # a table file's discrete columns become typed ones
        table_options["discrete"] = _column_list(discrete_columns)
    raw = read_raw(source, label_column, keys, image_options, chosen, table_options)
    if raw.frame is None:
        unused = [k for k in table_options if k not in ("schema", "discrete")]
        check(
            not unused,
            f"--{unused[0].replace('_', '-')} applies to table files (CSV, Parquet, HDF5); drop it here."
            if unused
            else "",
        )
    elif not (isinstance(scaling, Scaling) or scaling == "auto"):
        raise VaekitError(
            "A table file is scaled column by column as each column's type needs; drop --scaling (choose "
            "column types with --column-types instead)."
        )
    if chosen is not None and raw.column_names is not None:
        raw = select_columns(raw, keep or None)  # in the order --columns gives
    else:
        raw = select_columns(raw, columns, drop_columns)
    name = str(source) if is_named(str(source)) else Path(str(source)).name
    test_raw = None
    if test_data is not None:
        test_only = Columns(tuple(raw.column_names)) if raw.column_names is not None and chosen else None
        test_raw = read_raw(test_data, label_column, keys, image_options, test_only, table_options)
        if raw.column_names is None:
            test_raw = select_columns(test_raw, columns, drop_columns)
    data = from_raw(raw, name, test_size, split_seed, scaling, test_raw, table_options.get("schema"))
    discrete = _column_list(discrete_columns)
    if discrete:
        names = data.column_names or []
        unknown = [c for c in discrete if c not in names]
        if unknown:
            where = (
                f" (they are {', '.join(map(repr, names))})."
                if names
                else "; it applies to named table columns."
            )
            raise VaekitError(
                f"--discrete-columns names {unknown[0]!r}, which is not a feature column{where}"
            )
    data.extra["discrete_columns"] = discrete
    _binarize(data, binarize, split_seed)
    named = is_named(str(source))  # a name wins over a same-named folder, as read_raw reads it
    resolved = Path(str(source))
    on_disk = resolved.exists() and not named
    data.extra["load"] = {  # how to read this data and split again (`record`, `runs.load_data`)
        "source": str(resolved.resolve()) if on_disk else str(source),
        # what was read: the file's (or folder's) bytes, or a named set's values as loaded
        "content_sha256": io.content_sha256(resolved) if on_disk else _values_sha256(data.x),
        "test_data_sha256": io.content_sha256(test_data) if test_data is not None else None,
        "test_size": None if test_data is not None else test_size,
        "split_seed": split_seed,
        "test_data": str(Path(test_data).resolve()) if test_data is not None else None,
        "label_column": label_column,
        "keys": dict(keys) if keys else None,
        "columns": columns,
        "drop_columns": drop_columns,
        "image_options": dict(image_options) if image_options and data.is_image else None,
        "table_options": {k: v for k, v in table_options.items() if k not in ("schema", "discrete")} or None,
        "binarize": binarize if binarize != "none" else None,
    }
    return data


def _values_sha256(x) -> str:
    """The SHA-256 of x's values as float32 bytes in C order (an array's `tobytes()`), read in chunks."""
    digest = hashlib.sha256()
    for part in chunks(x):
        digest.update(np.ascontiguousarray(part).tobytes())
    return digest.hexdigest()


BINARIZE = ("none", "dynamic")


def _binarize(data: Dataset, how: str, seed: int) -> None:
    """--binarize dynamic: the test split drawn once (Bernoulli of each grey level, seeded), the
    training split marked for a fresh draw every epoch. Raises `VaekitError` for data outside
    [0, 1] or a table."""
    check(how in BINARIZE, f"--binarize must be one of {', '.join(BINARIZE)}, not {how!r}.")
    if how == "none":
        return
    check(
        data.schema is None,
        "--binarize applies to images or arrays in [0, 1], not to a table of typed columns.",
    )
    lo, hi = data.value_range
    check(
        lo >= 0 and hi <= 1,
        f"--binarize draws each value as a probability, so the data must lie in [0, 1] after scaling; it "
        f"spans [{lo:g}, {hi:g}] (use --scaling unit).",
    )
    rng = np.random.default_rng([seed, 20_160_101])
    test = data.x[data.test_idx]
    drawn = (rng.random(test.shape) < test).astype(data.x.dtype)
    if isinstance(data.x, Rows):  # the drawn test split held in memory, the rest read as stored
        data.x = Rows(Replaced(data.x, data.test_idx, drawn))
    else:
        data.x[data.test_idx] = drawn
    data.extra["binarize"] = how
    data.notes.append(
        f"--binarize dynamic: training pixels are drawn as Bernoulli(grey level) afresh each epoch; the "
        f"{len(data.test_idx):,} test examples were drawn once (seeded), so test figures are of binary data."
    )


def record(data: Dataset) -> dict | None:
    """What a run's config.yaml says about its data: how `load` read it (source, split, columns,
    keys, image options; enough for `runs.load_data` to read the same split again) and what it
    found (name, shape, kind, scaling, column, label and factor names, notes). None for a
    Dataset that `load` did not make (e.g. one built in memory): its run can only be evaluated
    with the data passed explicitly."""
    how = data.extra.get("load")
    if how is None:
        return None
    return {
        **how,
        "name": data.name,
        "shape": list(data.shape),
        "kind": data.kind,
        "scaling": data.scaling.name,
        "notes": data.notes,
        "column_names": data.column_names,
        "discrete_columns": data.extra.get("discrete_columns") or None,
        "label_names": data.label_names,
        "factor_names": data.factor_names,
        "schema": data.schema.spec() if data.schema is not None else None,
        "id_columns": list(data.ids.columns) if data.ids is not None else None,
        "licence": data.extra.get("licence"),
        "citation": data.extra.get("citation"),
    }
