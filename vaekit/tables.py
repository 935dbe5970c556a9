"""Tables from files: CSV (pandas' C parser), Parquet (pyarrow) and HDF5 (h5py), each to one
float64 matrix with its column names and an optional label column.

The fast readers handle well-formed files; when one meets anything it cannot read exactly (a
ragged row, a text or empty cell, a NaN), the plain-Python CSV pass re-reads the file only to
name the line and column in one sentence. Values are parsed round-trip exact.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vaekit.errors import VaekitError, check

TABLE_SUFFIXES = {".csv": ",", ".txt": ",", ".tsv": "\t"}
PARQUET_SUFFIXES = (".parquet", ".pq")
HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf")


def _round_trip() -> dict:
    import pandas as pd

    # before pandas 3 the default "high" float parser could be off in the last digit; 3.x parses
    # exactly by default and deprecates the argument
    return {"float_precision": "round_trip"} if int(pd.__version__.split(".")[0]) < 3 else {}


@dataclass
class Table:
    """values (n, d) float64; names, one per column of values; labels (n,) or None."""

    values: np.ndarray
    names: list[str]
    labels: np.ndarray | None = None
    skipped: list[str] = field(default_factory=list)  # columns not read (not chosen)


def _with_skipped(table: Table, names: list[str], label_column: str | None) -> Table:
    table.skipped = [n for n in names if n not in table.names and n != label_column]
    return table


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _first_row(path: Path, sep: str) -> list[str]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            for row in csv.reader(f, delimiter=sep):
                if any(cell.strip() for cell in row):
                    return [cell.strip() for cell in row]
    except (UnicodeDecodeError, csv.Error) as err:
        raise VaekitError(f"{path} is not a readable text CSV file ({err}).") from None
    raise VaekitError(f"{path} holds no rows; give a CSV with a header and one row per example.")


def read_csv(path: Path, label_column: str | None = None, only: list[str] | None = None) -> Table:
    """A CSV (or .tsv) of numeric columns: a header row if the first row is not all numbers, and
    optionally a label column (any text). `only`: read just these feature columns (the others,
    text ones included, are skipped; missing ones are left for the caller to name). Raises
    VaekitError naming the line and column of the first cell that is not a finite number."""
    sep = TABLE_SUFFIXES.get(path.suffix.lower(), ",")
    first = _first_row(path, sep)
    has_header = not all(_is_number(h) for h in first)
    names = first if has_header else [f"column_{i}" for i in range(len(first))]
    _features(path, names, label_column, only)  # the label column exists; a feature column besides it
    table = _read_csv_fast(path, sep, names, has_header, label_column, only)
    if table is None:  # something the fast reader cannot take exactly: find and name it
        table = _read_csv_exact(path, sep, names, has_header, label_column, only)
    return _with_skipped(table, names, label_column)


def _read_csv_fast(path, sep, names, has_header, label_column, only=None) -> Table | None:
    import pandas as pd

    if len(set(names)) != len(names):
        return None  # pandas would rename duplicates; the exact pass reads them as they are
    try:
        # the same call as reading the file with pandas directly: NaN for empty or "nan" cells and
        # text columns as objects both send the file to the exact pass, which names the cell
        frame = pd.read_csv(
            path,
            sep=sep,
            header=0 if has_header else None,
            encoding="utf-8-sig",
            engine="c",
            # labels as the file writes them (pandas would turn 0 and 0.0 into one float)
            dtype={names.index(label_column): str} if label_column is not None else None,
            **_round_trip(),
        )
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError):
        return None
    if frame.shape[1] != len(names) or len(frame) == 0:
        return None
    frame.columns = names
    features = _features(path, names, label_column, only)
    if not features or not all(pd.api.types.is_numeric_dtype(frame[n]) for n in features):
        return None
    values = frame[features].to_numpy(dtype=np.float64)
    if not np.isfinite(values).all():
        return None
    labels = frame[label_column].astype(str).str.strip().to_numpy() if label_column else None
    return Table(values, features, labels)


def _read_csv_exact(path, sep, names, has_header, label_column, only=None) -> Table:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f, delimiter=sep))
    except (UnicodeDecodeError, csv.Error) as err:
        raise VaekitError(f"{path} is not a readable text CSV file ({err}).") from None
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    body = rows[1:] if has_header else rows
    check(bool(body), f"{path} has a header but no data rows; add one row per example.")
    label_idx = names.index(label_column) if label_column is not None else None
    features = _features(path, names, label_column, only)
    wanted = {names.index(n) for n in features}
    first_line = 2 if has_header else 1
    values, labels = [], []
    for i, row in enumerate(body):
        line = first_line + i
        check(
            len(row) == len(names),
            f"{path} line {line} has {len(row)} values but the first row has {len(names)}; "
            "every row needs the same number of columns.",
        )
        numbers = []
        for j, cell in enumerate(row):
            if j == label_idx:
                labels.append(cell.strip())
                continue
            if j not in wanted:
                continue
            text = cell.strip()
            check(
                text != "",
                f"{path} line {line}, column {names[j]!r} is empty (a missing value); remove or impute it.",
            )
            try:
                number = float(text)
            except ValueError:
                raise VaekitError(
                    f"{path} line {line}, column {names[j]!r} holds {text!r}, which is not a number; "
                    "give numeric feature columns (name a text label column with --label-column)."
                ) from None
            if not math.isfinite(number):
                raise VaekitError(
                    f"{path} line {line}, column {names[j]!r} holds {text!r} (a missing or infinite "
                    "value); remove or impute it."
                )
            numbers.append(number)
        values.append(numbers)
    x = np.asarray(values, dtype=np.float64).reshape(len(values), len(features))
    return Table(x, features, np.asarray(labels) if label_idx is not None else None)


@dataclass(frozen=True)
class Columns:
    """Which feature columns to read: `keep` (None: all) minus `drop`. With `strict`, a named
    column the file lacks is an error (the user's --columns/--drop-columns); without, missing
    ones are left for the caller to name (a run's columns matched against a new file)."""

    keep: tuple[str, ...] | None = None
    drop: tuple[str, ...] = ()
    strict: bool = False


def _features(path: Path, names: list[str], label_column: str | None, only=None) -> list[str]:
    """The feature columns: every column but the label column, which must exist if named. `only`
    (a `Columns`, or a list of names to keep) chooses among them, in the file's order; the
    columns not chosen are never parsed, so they may hold text."""
    if label_column is not None:
        check(
            label_column in names,
            f"{path} has no column named {label_column!r}; its columns are {', '.join(map(repr, names))}.",
        )
    if only is not None and not isinstance(only, Columns):
        only = Columns(keep=tuple(only))
    only = only or Columns()
    lacking = [c for c in (only.keep or ()) if c not in names]
    if lacking and not only.strict:  # a run's columns, looked for in a new file
        raise VaekitError(
            f"{path} lacks the column{'s' if len(lacking) > 1 else ''} {', '.join(map(repr, lacking))} "
            f"that the model was trained on; give a table with {', '.join(map(repr, only.keep))}."
        )
    if only.strict:
        unknown = [c for c in (only.keep or ()) + only.drop if c not in names]
        if unknown:
            raise VaekitError(
                f"{path} has no column {unknown[0]!r} (--columns/--drop-columns); its columns are "
                f"{', '.join(map(repr, names))}."
            )
    chosen = [n for n in names if n != label_column and (only.keep is None or n in only.keep)]
    features = [n for n in chosen if n not in only.drop]
    check(
        bool(features),
        f"{path}: no feature column is left after --drop-columns."
        if chosen
        else f"{path} has no feature columns besides the label column.",
    )
    return features


def _fill_column(path: Path, out: np.ndarray, j: int, name: str, column: np.ndarray) -> None:
    """out[:, j] = column, refusing a column that is not one finite number per row."""
    if column.ndim != 1:
        raise VaekitError(
            f"{path}: column {name!r} has shape {column.shape}, not one value per row (pandas' "
            "to_hdf table format stores blocks like this); save one 1-D column per feature."
        )
    if not (np.issubdtype(column.dtype, np.number) or column.dtype == np.bool_):
        raise VaekitError(
            f"{path}: column {name!r} holds {column.dtype} values, not numbers; give numeric feature "
            "columns (name a text label column with --label-column)."
        )
    out[:, j] = column
    bad = ~np.isfinite(out[:, j])
    if bad.any():
        raise VaekitError(
            f"{path}: column {name!r} holds {int(bad.sum())} missing or infinite values (the first at "
            f"row {int(np.argmax(bad))}); remove or impute them."
        )


def _columns_to_table(
    path: Path, columns: dict[str, np.ndarray], label_column: str | None, only=None
) -> Table:
    """Named 1-D columns (equal length) -> a Table; non-numeric feature columns are refused."""
    names = list(columns)
    check(bool(names), f"{path} holds no columns.")
    features = _features(path, names, label_column, only)
    lengths = {len(columns[n]) for n in names}
    check(
        len(lengths) == 1, f"{path}: the columns have different lengths {sorted(lengths)}; they must match."
    )
    out = np.empty((lengths.pop(), len(features)), dtype=np.float64)
    for j, name in enumerate(features):
        _fill_column(path, out, j, name, np.asarray(columns[name]))
    labels = np.asarray(columns[label_column]) if label_column is not None else None
    return _with_skipped(Table(out, features, labels), names, label_column)


def read_parquet(path: Path, label_column: str | None = None, only: list[str] | None = None) -> Table:
    """A Parquet file's columns (pyarrow), read one column at a time into one float64 matrix, so
    the peak memory is the matrix plus one column; nulls are refused naming the column."""
    import pyarrow.parquet as pq

    def fail(err: Exception) -> VaekitError:
        return VaekitError(f"{path} is not a readable Parquet file ({type(err).__name__}: {err}).")

    try:
        parquet = pq.ParquetFile(path)
        names = [str(n) for n in parquet.schema_arrow.names]
        n_rows = parquet.metadata.num_rows
    except Exception as err:  # noqa: BLE001 - pyarrow raises many types for a bad file
        raise fail(err) from None
    pandas_index = {str(c) for c in (parquet.schema_arrow.pandas_metadata or {}).get("index_columns", [])}
    names = [n for n in names if n not in pandas_index]  # pandas' stored index is not a measurement
    features = _features(path, names, label_column, only)
    out = np.empty((n_rows, len(features)), dtype=np.float64)
    labels = None
    for name in [n for n in names if n in features or n == label_column]:
        try:
            column = parquet.read(columns=[name]).column(0)
        except Exception as err:  # noqa: BLE001
            raise fail(err) from None
        if name == label_column:
            labels = column.to_numpy(zero_copy_only=False)
            continue
        if column.null_count:
            raise VaekitError(
                f"{path}: column {name!r} holds {column.null_count} missing values (nulls); remove or "
                "impute them."
            )
        _fill_column(path, out, features.index(name), name, column.to_numpy(zero_copy_only=False))
    return _with_skipped(Table(out, features, labels), names, label_column)


def read_hdf5(
    path: Path, key: str | None = None, label_column: str | None = None, only: list[str] | None = None
) -> Table:
    """A table from an HDF5 file (h5py): `key` names a 2-D numeric dataset (columns column_0, ...),
    a compound dataset (its field names are the columns), or a group of equal-length 1-D
    datasets (their names are the columns). Without `key` the file must hold exactly one."""
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise VaekitError(f"{path} is not a readable HDF5 file ({err}).") from None
    with f:
        candidates = []
        f.visititems(lambda name, obj: candidates.append(name) if isinstance(obj, h5py.Dataset) else None)
        if key is None:
            tables = [n for n in candidates if f[n].ndim == 2 or f[n].dtype.names]
            check(
                len(tables) == 1,
                f"{path} holds {len(tables)} table-shaped datasets ({', '.join(tables[:8]) or 'none'}; all "
                f"datasets: {', '.join(candidates[:12]) or 'none'}); name one with --key.",
            )
            key = tables[0]
        check(
            key in f,
            f"{path} has no dataset or group {key!r}; it has {', '.join(candidates[:12]) or 'none'}.",
        )
        obj = f[key]
        if isinstance(obj, h5py.Group):
            columns = {
                name: obj[name][()]
                for name in obj
                if isinstance(obj[name], h5py.Dataset) and obj[name].ndim == 1
            }
            return _columns_to_table(path, columns, label_column, only)
        data = obj[()]
    if data.dtype.names:  # compound: named fields
        return _columns_to_table(path, {name: data[name] for name in data.dtype.names}, label_column, only)
    check(
        data.ndim == 2,
        f"{path}: dataset {key!r} has shape {data.shape}; give a 2-D table (rows x columns) or a group "
        "of 1-D columns (for images or arrays use .npy or .npz).",
    )
    check(
        label_column is None, f"{path}: dataset {key!r} has no column names, so --label-column cannot apply."
    )
    check(
        np.issubdtype(data.dtype, np.number),
        f"{path}: dataset {key!r} holds {data.dtype} values, not numbers; give a numeric table.",
    )
    values = data.astype(np.float64, copy=False)  # one array, no per-column copies
    bad = ~np.isfinite(values)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise VaekitError(
            f"{path}: dataset {key!r} holds {int(bad.sum())} missing or infinite values (the first at row "
            f"{row}, column {col}); remove or impute them."
        )
    return Table(values, [f"column_{i}" for i in range(values.shape[1])], None)


def read_columns(path: Path, names: list[str], key: str | None = None) -> dict[str, np.ndarray]:
    """The named columns of a table file as they are stored (numbers or text), name -> (n,), for
    carrying ids and labels through to a scores file. Raises `VaekitError` naming a column the
    file lacks."""
    import pandas as pd

    suffix = path.suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        import pyarrow.parquet as pq

        have = [str(n) for n in pq.ParquetFile(path).schema_arrow.names]
        _check_has(path, names, have)
        frame = pq.read_table(path, columns=list(names)).to_pandas()
    elif suffix in HDF5_SUFFIXES:
        import h5py

        with h5py.File(path, "r") as f:
            if key is None:
                found = []
                f.visititems(lambda n, o: found.append(n) if isinstance(o, h5py.Dataset) else None)
                tables = [n for n in found if f[n].ndim == 2 or f[n].dtype.names]
                key = tables[0] if len(tables) == 1 else None
            obj = f[key] if key is not None and key in f else f
            if isinstance(obj, h5py.Group):
                have = [n for n in obj if isinstance(obj[n], h5py.Dataset) and obj[n].ndim == 1]
                _check_has(path, names, have)
                frame = pd.DataFrame({n: obj[n][()] for n in names})
            else:
                data = obj[()]
                have = list(data.dtype.names or [])
                _check_has(path, names, have)
                frame = pd.DataFrame({n: data[n] for n in names})
    else:
        sep = TABLE_SUFFIXES.get(suffix, ",")
        have = _first_row(path, sep)
        _check_has(path, names, have)
        # as the file writes them: an id 007 stays 007
        frame = pd.read_csv(
            path, sep=sep, usecols=list(names), dtype=str, keep_default_na=False, encoding="utf-8-sig"
        )
    out = {}
    for n in names:
        values = frame[n].to_numpy()
        if values.dtype == object:
            values = np.array([v.decode() if isinstance(v, bytes) else v for v in values], dtype=object)
        out[n] = values
    return out


def _check_has(path: Path, names, have) -> None:
    missing = [n for n in names if n not in have]
    check(
        not missing,
        f"{path} has no column {missing[0]!r} (--keep-columns); its columns are {', '.join(map(repr, have))}."
        if missing
        else "",
    )
