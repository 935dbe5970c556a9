"""Tables from files, read as they are written: CSV/TSV/whitespace text (pandas), Parquet
(pyarrow) and HDF5 (h5py), each to a pandas DataFrame of the user's values (`read_frame`).

- **Dialects.** The separator (`,` `;` tab `|` or runs of whitespace, as `np.savetxt` writes)
  and a decimal comma are detected from the first lines, or given (`sep`, `decimal`). A row
  with more or fewer fields than the header is refused naming its line; R's row names (a header
  one field short, or an empty first header) become the identifier column `rownames`.
- **Missing cells** are every token pandas and R write for one (`MISSING_TOKENS`), read as NA.
- **Types.** A column is numbers (int64 where every value is whole, else float64, parsed
  round-trip exact), booleans, dates, or text. Nothing is converted through float32.
- **Identifiers** (`identifier_columns`): an index column (an empty name, pandas' "Unnamed: 0",
  `rownames`, `index`) or a column named like an id (`id`, `event_id`, `PatientID`, `uuid`,
  `key`) whose values are all distinct. They are not measurements: the caller drops them from
  the model and carries them through the outputs that list rows.
"""

from __future__ import annotations

import csv
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vaekit.config import TABLE_OPTIONS  # noqa: F401 (re-exported: the user's settings of a table)
from vaekit.datasets.raw import RawData, encode_labels
from vaekit.errors import VaekitError, check

TEXT_SUFFIXES = {".csv": None, ".txt": None, ".tsv": "\t"}
PARQUET_SUFFIXES = (".parquet", ".pq")
HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf")
TABLE_SUFFIXES = (*TEXT_SUFFIXES, *PARQUET_SUFFIXES, *HDF5_SUFFIXES)

# what pandas (its default na_values), R (NA) and spreadsheets write for a missing cell
MISSING_TOKENS = frozenset(
    {"", "NA", "N/A", "n/a", "na", "NaN", "nan", "NAN", "-NaN", "-nan", "null", "NULL", "Null", "None"}
    | {"none", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "1.#IND", "1.#QNAN", "<NA>", "NaT", "?"}
)
SEPARATORS = (",", ";", "\t", "|")
WHITESPACE = r"\s+"
INDEX_NAMES = ("", "Unnamed: 0", "rownames", "row.names", "row_names", "index", "...1")
_ID_NAME = re.compile(
    r"(^|[_\s.\-])(id|uuid|guid|key)$|^(id|uuid)([_\s.\-]|$)|[a-z0-9](Id|ID)$", re.IGNORECASE
)
_DATE = re.compile(r"^\d{4}-\d{1,2}-\d{1,2}([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$")
_BOOLEANS = {"true": True, "false": False}


@dataclass
class Frame:
    """A table as read: `frame` (n rows; numbers, booleans, dates or text, NA where missing),
    the dialect it was read with, and notes for the user."""

    frame: object  # pandas.DataFrame
    sep: str | None = None
    decimal: str | None = None
    notes: list[str] = field(default_factory=list)
    index_columns: list[str] = field(default_factory=list)  # written as an index (R row names, pandas)
    lines: list[int] | None = None  # a text file's line number of each row


def is_number(text) -> bool:
    """Whether `float` reads `text` as a number ('1e5', ' 3 ', 'nan' do; '1,5' does not)."""
    try:
        float(text)
    except (TypeError, ValueError):
        return False
    return True


def is_id_name(name: str) -> bool:
    """Whether a column name reads as an identifier (id, event_id, PatientID, uuid, key, ...)."""
    return bool(_ID_NAME.search(str(name).strip()))


# ----------------------------------------------------------------------------- text files


def _head_lines(path: Path, limit: int = 200) -> list[str]:
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            lines = []
            for line in f:
                if line.strip():
                    lines.append(line.rstrip("\r\n"))
                if len(lines) >= limit:
                    break
    except UnicodeDecodeError as err:
        raise VaekitError(
            f"{path} is not a readable UTF-8 text table ({err.reason}); save it as UTF-8."
        ) from None
    check(bool(lines), f"{path} holds no rows; give a table with a header and one row per example.")
    return lines


def _split(line: str, sep: str) -> list[str]:
    if sep == WHITESPACE:
        return line.split()
    return next(csv.reader([line], delimiter=sep))


def _decimal_comma_column(lines: list[str]) -> bool:
    """Whether the lines are one column of numbers written with a decimal comma (-1,25 or
    2,5e-05), missing cells ("", NA, ...) allowed among them."""
    numbers = [re.fullmatch(r"\s*-?\d+,\d+([eE][-+]?\d+)?\s*", line) for line in lines]
    missing = [line.strip().strip('"') in MISSING_TOKENS for line in lines]
    return any(numbers) and all(n or m for n, m in zip(numbers, missing, strict=True))


def detect_dialect(path: Path, sep: str | None = None, decimal: str | None = None) -> tuple[str, str]:
    """(separator, decimal mark) of a text table: the given ones, else those that split the first
    lines into the same number (> 1) of fields, preferring `,` `;` tab `|` and then whitespace; a
    decimal comma where `;` or tab separates and the numbers are written like 1,5."""
    lines = _head_lines(path)
    if sep is None:
        sep = TEXT_SUFFIXES.get(path.suffix.lower())
    if sep is None:
        found, single = {}, []
        for candidate in (*SEPARATORS, WHITESPACE):
            try:
                rows = [_split(line, candidate) for line in lines]
            except csv.Error:
                continue
            counts = [len(r) for r in rows]
            body = counts[1:] or counts
            if len(set(counts)) == 1 and counts[0] == 1:
                single.append(candidate)  # one column: this separator never occurs
            elif len(set(body)) == 1 and body[0] > 1 and counts[0] == body[0]:
                found[candidate] = True
            elif len(set(body)) == 1 and body[0] > 1 and counts[0] == body[0] - 1:
                names = [r[0] for r in rows[1:]]
                decimal_commas = candidate == "," and _decimal_comma_column(lines[1:])
                # R's row names (a header one field short) are distinct; numbers like -1,5 are not them
                if len(set(names)) == len(names) and not decimal_commas:
                    found[candidate] = False
        # a header as wide as the rows first; one field short (R's row names) only failing that;
        # else one column, where a comma inside the numbers is their decimal mark
        sep = next((c for c, full in found.items() if full), next(iter(found), None))
        if sep is None:  # one column, or a ragged file
            if _decimal_comma_column(lines[1:]) and ";" in single:
                sep = ";"  # commas make one column only as decimal marks
            else:  # the separator the header uses and most lines hold, so a ragged line is named
                used = [c for c in SEPARATORS if c in lines[0]]
                sep = max(used, key=lambda c: sum(c in line for line in lines)) if used else ","
    if decimal is None:
        decimal = "."
        if sep != ",":
            cells = [c.strip() for line in lines[1:] for c in _split(line, sep)]
            comma = sum(bool(re.fullmatch(r"-?\d+,\d+", c)) for c in cells)
            point = sum(bool(re.fullmatch(r"-?\d*\.\d+([eE][-+]?\d+)?", c)) for c in cells)
            if comma > point:
                decimal = ","
    check(decimal in (".", ","), f"--decimal must be . or , not {decimal!r}.")
    check(decimal != sep, f"The separator and the decimal mark are both {sep!r}; give --sep or --decimal.")
    return sep, decimal


def _field_counts(path: Path, sep: str) -> tuple[np.ndarray, np.ndarray]:
    """(line numbers (r,), numbers of fields (r,)) of every non-empty row. A file without quote
    characters is counted in numpy, 16 MiB at a time; a quoted one (or whitespace-separated) row
    by row with the csv module."""
    counted = _count_unquoted(path, sep) if sep != WHITESPACE else None
    if counted is not None:
        return counted
    out = []
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            if sep == WHITESPACE:
                out = [(i, len(line.split())) for i, line in enumerate(f, 1) if line.strip()]
            else:
                reader = csv.reader(f, delimiter=sep)
                out = [(reader.line_num, len(row)) for row in reader if any(cell.strip() for cell in row)]
    except (UnicodeDecodeError, csv.Error) as err:
        raise VaekitError(f"{path} is not a readable text table ({err}).") from None
    lines, counts = (np.array([v[k] for v in out], dtype=np.int64) for k in (0, 1))
    return lines, counts


def _count_unquoted(path: Path, sep: str, chunk: int = 1 << 24):
    """(line numbers, fields per line) of the non-blank lines, by counting separator bytes per
    line in numpy; None when the file holds a quote character (a quoted field may hold the
    separator or a newline) or the separator is not one byte."""
    sep_byte = sep.encode()
    if len(sep_byte) != 1:
        return None
    lines, counts = [], []
    offset_line, rest = 0, b""
    with open(path, "rb") as f:
        while True:
            block = f.read(chunk)
            data = rest + block
            if not block:
                if data and not data.endswith(b"\n"):
                    data += b"\n"
                rest = b""
            else:
                cut = data.rfind(b"\n") + 1
                data, rest = data[:cut], data[cut:]
            if data:
                arr = np.frombuffer(data, dtype=np.uint8)
                if (arr == ord('"')).any():
                    return None
                ends = np.flatnonzero(arr == 10)
                starts = np.r_[0, ends[:-1] + 1]
                seps = np.cumsum(arr == sep_byte[0], dtype=np.int32)[ends]  # separators up to each line end
                per_line = np.diff(seps, prepend=0)
                # a line of only a carriage return, spaces or tabs is blank
                blank = np.zeros(len(ends), bool)
                short = (ends - starts) <= 2
                for i in np.flatnonzero(short):
                    blank[i] = not bytes(arr[starts[i] : ends[i]]).strip()
                keep = ~blank
                lines.append(offset_line + 1 + np.flatnonzero(keep))
                counts.append(per_line[keep] + 1)
                offset_line += len(ends)
            if not block:
                break
    return np.concatenate(lines) if lines else np.zeros(0, np.int64), (
        np.concatenate(counts) if counts else np.zeros(0, np.int64)
    )


def _first_rows(path: Path, sep: str, n: int = 2) -> list[list[str]]:
    """The first `n` non-empty rows' cells (quoted cells, newlines inside them included)."""
    rows = []
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            if sep == WHITESPACE:
                rows = [line.split() for line in f if line.strip()][:n] if n else []
            else:
                for row in csv.reader(f, delimiter=sep):
                    if len(row) > 1 or any(cell.strip() for cell in row):  # ",,," is a row of missing cells
                        rows.append([c.strip() for c in row])
                        if len(rows) == n:
                            break
    except (UnicodeDecodeError, csv.Error) as err:
        raise VaekitError(f"{path} is not a readable text table ({err}).") from None
    check(bool(rows), f"{path} holds no values; give a table with a header and one row per example.")
    return rows


def _check_fields(path, sep, lines, counts, width, first, has_header, row_names) -> None:
    bad = np.flatnonzero(counts != width)
    if len(bad):
        line, n = int(lines[bad[0]]), int(counts[bad[0]])
        raise VaekitError(
            f"{path} line {line} has {n} fields but the {'header' if has_header else 'first row'} has "
            f"{len(first)}{' (plus row names)' if row_names else ''}; every row needs the same number "
            f"of fields (separator {_sep_name(sep)}; give --sep if that is wrong)."
        )


def read_text(path: Path, sep: str | None = None, decimal: str | None = None) -> Frame:
    """A CSV, TSV or whitespace-separated table, read by pandas' C parser with MISSING_TOKENS as
    missing cells; a column it leaves as text is parsed by `parse_column` (booleans, dates,
    numbers with a stray token). Every row's number of fields is checked: pandas refuses a long
    row itself; a short one, which pandas would fill with missing cells, is found by counting
    the fields of every row (`_field_counts`) whenever the table has a missing cell, which also
    gives the line of each row for messages."""
    import pandas as pd

    sep, decimal = detect_dialect(path, sep, decimal)
    head = _first_rows(path, sep, 2)
    first = head[0]
    has_header = not all(is_number(c) for c in first)
    n_fields = len(head[1]) if len(head) > 1 else len(first)
    row_names = has_header and len(first) == n_fields - 1  # R's write.table: no header for the row names
    width = n_fields if row_names else len(first)
    names = (["rownames"] if row_names else []) + ([c.strip() for c in first] if has_header else [])
    if not has_header:
        names = [f"column_{i}" for i in range(width)]
    check(len(head) > 1 or not has_header, f"{path} has a header but no data rows; add one row per example.")
    duplicated = sorted({n for n in names if names.count(n) > 1})
    check(
        not duplicated,
        f"{path} has more than one column named {duplicated[0]!r}; give each column its own name."
        if duplicated
        else "",
    )
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", pd.errors.ParserWarning)
            raw = pd.read_csv(
                path,
                sep=sep,
                header=None,
                skiprows=1 if has_header else 0,
                names=list(range(width)),
                na_values=sorted(MISSING_TOKENS),
                keep_default_na=False,
                decimal=decimal,
                encoding="utf-8-sig",
                engine="python" if sep == WHITESPACE else "c",
                index_col=False,
                skip_blank_lines=True,
                skipinitialspace=sep == WHITESPACE,
            )
    except pd.errors.ParserError as err:
        found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(err))
        if found is None:
            raise VaekitError(f"{path} is not a readable text table ({err}).") from None
        line, n = int(found.group(2)), int(found.group(3))  # pandas counts the file's lines
        _check_fields(path, sep, np.array([line]), np.array([n]), width, first, has_header, row_names)
        raise VaekitError(f"{path} is not a readable text table ({err}).") from None
    except (ValueError, UnicodeDecodeError) as err:
        raise VaekitError(f"{path} is not a readable text table ({err}).") from None
    lines = None
    truncated = any(issubclass(w.category, pd.errors.ParserWarning) for w in caught)
    if truncated or raw.isna().to_numpy().any():  # rows pandas cut or filled, or missing cells
        lines, counts = _field_counts(path, sep)
        lines, counts = (lines[1:], counts[1:]) if has_header else (lines, counts)
        _check_fields(path, sep, lines, counts, width, first, has_header, row_names)
    raw.columns = names
    for name in names:
        if raw[name].dtype == object or pd.api.types.is_string_dtype(raw[name].dtype):
            raw[name] = parse_column(raw[name].fillna(""), decimal)
    notes = []
    if sep != "," or decimal != ".":
        notes.append(f"{path.name}: read with separator {_sep_name(sep)} and decimal mark {decimal!r}.")
    index_columns = ["rownames"] if row_names else []
    return Frame(
        raw,
        sep,
        decimal,
        notes,
        index_columns,
        lines if lines is not None and len(lines) == len(raw) else None,
    )


def _sep_name(sep: str) -> str:
    return {"\t": "tab", WHITESPACE: "whitespace", ",": "','", ";": "';'", "|": "'|'"}.get(sep, repr(sep))


def parse_column(tokens, decimal: str = "."):
    """A column of text cells -> a typed Series: int64 (Int64 with missing cells) where every
    value is a whole number, float64 where they are numbers (round-trip exact), boolean for
    true/false, datetime64 for ISO dates, else text; MISSING_TOKENS become NA."""
    import pandas as pd

    text = tokens.astype(str).str.strip()
    missing = text.isin(MISSING_TOKENS)
    present = text[~missing]
    numeric = present.str.replace(",", ".", regex=False) if decimal == "," else present
    try:
        numbers = pd.to_numeric(numeric, errors="raise")
    except (ValueError, TypeError):
        numbers = None
    if numbers is not None and len(present):
        if pd.api.types.is_integer_dtype(numbers.dtype):
            out = pd.Series(pd.NA, index=text.index, dtype="Int64")
            out[~missing] = numbers.astype("int64")
            return out if missing.any() else out.astype("int64")
        out = pd.Series(np.nan, index=text.index, dtype="float64")
        out[~missing] = numbers.astype("float64")
        return out
    lowered = present.str.lower()
    if len(present) and lowered.isin(list(_BOOLEANS)).all():
        out = pd.Series(pd.NA, index=text.index, dtype="boolean")
        out[~missing] = lowered.map(_BOOLEANS).astype(bool)
        return out
    if len(present) and present.map(lambda s: bool(_DATE.match(s))).all():
        try:
            dates = pd.to_datetime(present, format="ISO8601")
        except (ValueError, TypeError):
            dates = None
        if dates is not None:
            out = pd.Series(pd.NaT, index=text.index, dtype=dates.dtype)
            out[~missing] = dates
            return out
    out = pd.Series(None, index=text.index, dtype=object)
    out[~missing] = tokens.astype(str)[~missing].str.strip()
    return out


# ----------------------------------------------------------------------------- Parquet, HDF5


def read_parquet(path: Path) -> Frame:
    """A Parquet file's columns with their own types (category, datetime, nullable integers,
    text); a pandas index stored in the file comes back as a column, marked as an index."""
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as err:  # noqa: BLE001 - pyarrow raises many types for a bad file
        raise VaekitError(f"{path} is not a readable Parquet file ({type(err).__name__}: {err}).") from None
    import pandas as pd

    frame = table.to_pandas()
    index_columns = []
    if not isinstance(frame.index, pd.RangeIndex):  # an index pandas stored (e.g. after filtering)
        n_before = frame.shape[1]
        frame = frame.reset_index()
        index_columns = [str(c) for c in frame.columns[: frame.shape[1] - n_before]]
    frame.columns = [str(c) for c in frame.columns]
    for name in frame.columns:
        if isinstance(frame[name].dtype, pd.CategoricalDtype):
            frame[name] = frame[name].astype(object).where(frame[name].notna(), None)
    return Frame(frame, index_columns=index_columns)


_COUNT_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8}
_COUNT_WORDS |= {"nine": 9, "ten": 10, "eleven": 11, "twelve": 12}
_OBJECT_NAMES = {"ele": "ele", "electron": "ele", "mu": "mu", "muon": "mu", "jet": "jet", "met": "MET"}


def objects_table(f, key: str) -> dict[str, np.ndarray] | None:
    """A dataset of objects x quantities per row, (n, objects, quantities), whose file names the
    quantities in `<key>_Names` (the LHC anomaly-detection challenge's `Particles` (n, 19, 4) with
    `Particles_Names` pT, eta, phi, class and `Particles_Classes` MET, four electrons, four muons,
    ten jets; Govorkova et al., 2022): one column per object and quantity, "ele1_pT". The
    objects are named from `<key>_Classes` ("Four_Ele_class_2": ele1..ele4) when its counts add
    up, else object1, object2, .... None for any other dataset."""
    names_key = f"{key}_Names"
    if key not in f or names_key not in f or f[key].ndim != 3:
        return None
    quantities = [v.decode() if isinstance(v, bytes) else str(v) for v in f[names_key][()].reshape(-1)]
    n_objects = f[key].shape[1]
    if len(quantities) != f[key].shape[2]:
        return None
    quantities = [{"pt": "pT"}.get(q.lower(), q.lower()) for q in quantities]
    objects = []
    if f"{key}_Classes" in f:
        for entry in f[f"{key}_Classes"][()].reshape(-1):
            words = (entry.decode() if isinstance(entry, bytes) else str(entry)).lower().split("_")
            count = next((_COUNT_WORDS[w] for w in words if w in _COUNT_WORDS), 1)
            kind = next((_OBJECT_NAMES[w] for w in words if w in _OBJECT_NAMES), words[0])
            objects += [kind] if count == 1 else [f"{kind}{i}" for i in range(1, count + 1)]
    if len(objects) != n_objects or len(set(objects)) != n_objects:
        objects = [f"object{i}" for i in range(1, n_objects + 1)]
    block = f[key][()]
    return {f"{o}_{q}": block[:, i, j] for i, o in enumerate(objects) for j, q in enumerate(quantities)}


def _hdf5_columns(path: Path, key: str | None) -> dict[str, np.ndarray] | np.ndarray:
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise VaekitError(f"{path} is not a readable HDF5 file ({err}).") from None
    with f:
        candidates = []
        f.visititems(lambda name, obj: candidates.append(name) if isinstance(obj, h5py.Dataset) else None)
        objects = [n for n in candidates if objects_table(f, n) is not None] if key is None else []
        if len(objects) == 1 or (key is not None and objects_table(f, key) is not None):
            return objects_table(f, key or objects[0])
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
            columns = {}
            for name in obj:
                if isinstance(obj[name], h5py.Dataset) and obj[name].ndim >= 1:
                    columns[name] = obj[name][()]
            check(bool(columns), f"{path}: group {key!r} holds no 1-D datasets (columns).")
            return columns
        data = obj[()]
    if data.dtype.names:  # compound: named fields
        return {name: data[name] for name in data.dtype.names}
    check(
        data.ndim == 2,
        f"{path}: dataset {key!r} has shape {data.shape}; give a 2-D table (rows x columns) or a group "
        "of 1-D columns (for images or arrays use .npy or .npz).",
    )
    check(
        np.issubdtype(data.dtype, np.number) or data.dtype == np.bool_,
        f"{path}: dataset {key!r} holds {data.dtype} values, not numbers; give a numeric table.",
    )
    return data  # one 2-D block: its columns are column_0, column_1, ...


def read_hdf5(path: Path, key: str | None = None) -> Frame:
    """A table from an HDF5 file (h5py): `key` names a 2-D numeric dataset (columns column_0, ...),
    a compound dataset (its field names are the columns), or a group of equal-length 1-D
    datasets (their names are the columns). Without `key` the file must hold exactly one."""
    import pandas as pd

    columns = _hdf5_columns(path, key)
    if isinstance(columns, np.ndarray):  # a 2-D dataset: pandas keeps it as one block, not copied
        names = [f"column_{i}" for i in range(columns.shape[1])]
        return Frame(pd.DataFrame(columns, columns=names, copy=False))
    for name, column in columns.items():
        if column.ndim != 1:
            raise VaekitError(
                f"{path}: column {name!r} has shape {column.shape}, not one value per row (pandas' "
                "to_hdf table format stores blocks like this); save one 1-D column per feature."
            )
    lengths = {len(c) for c in columns.values()}
    check(
        len(lengths) == 1, f"{path}: the columns have different lengths {sorted(lengths)}; they must match."
    )
    frame = {}
    for name, column in columns.items():
        if column.dtype.kind in "SO":
            column = np.array([v.decode() if isinstance(v, bytes) else v for v in column], dtype=object)
        frame[name] = column
    return Frame(pd.DataFrame(frame))


def read_frame(
    path: Path, sep: str | None = None, decimal: str | None = None, key: str | None = None
) -> Frame:
    """Any table file as a `Frame` (see the module docstring). Raises `VaekitError` naming what
    cannot be read."""
    suffix = path.suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        return read_parquet(path)
    if suffix in HDF5_SUFFIXES:
        return read_hdf5(path, key)
    return read_text(path, sep, decimal)


# ----------------------------------------------------------------------------- identifiers


def identifier_columns(table: Frame, id_column: str | None = None) -> list[str]:
    """The identifier columns of a table: `id_column` if given, index columns (R row names, a
    pandas index, an empty or "Unnamed: 0" first header, `rownames`, `index`) and columns named
    like an id, each only where its values are all distinct and present."""
    frame = table.frame
    found = []
    if id_column is not None:
        check(
            id_column in frame.columns,
            f"There is no column named {id_column!r} (--id-column); the columns are "
            f"{', '.join(map(repr, frame.columns))}.",
        )
        found.append(id_column)
    for i, name in enumerate(frame.columns):
        if name in found:
            continue
        named = name in table.index_columns or (i == 0 and name in INDEX_NAMES) or is_id_name(name)
        if named and len(frame) > 1 and frame[name].notna().all() and frame[name].is_unique:
            found.append(name)
    return found


def read_columns(path: Path, names: list[str], key: str | None = None, sep=None, decimal=None) -> dict:
    """The named columns of a table file as they are written (text exactly as in a CSV: an id
    007 stays 007; a Parquet or HDF5 column in its own type), name -> (n,) array. Raises
    `VaekitError` naming a column the file lacks."""
    import pandas as pd

    suffix = path.suffix.lower()
    if suffix in PARQUET_SUFFIXES or suffix in HDF5_SUFFIXES:
        frame = read_frame(path, key=key).frame
    else:
        sep, _ = detect_dialect(path, sep, decimal)
        head = _first_rows(path, sep, 2)  # the header, and a row to tell R's row names
        first, n_fields = head[0], len(head[-1])
        header = (["rownames"] if len(first) == n_fields - 1 else []) + first
        frame = pd.read_csv(
            path,
            sep=sep,
            header=None,
            skiprows=1,
            names=list(range(len(header))),
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            encoding="utf-8-sig",
            engine="python" if sep == WHITESPACE else "c",
            index_col=False,
        )
        frame.columns = header
        frame = frame.apply(lambda c: c.str.strip())
    have = [str(c) for c in frame.columns]
    missing = [n for n in names if n not in have]
    check(
        not missing,
        f"{path} has no column {missing[0]!r} (--keep-columns); its columns are {', '.join(map(repr, have))}."
        if missing
        else "",
    )
    return {n: frame[n].to_numpy() for n in names}


def frame_from_text(text: str, **kwargs) -> Frame:
    """`read_text` of a string (for tests and notebooks): written to a temporary file first."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "table.csv"
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return read_text(path, **kwargs)


# ----------------------------------------------------------------------------- read as a data set

MISSING_POLICIES = ("refuse", "drop-rows", "model")


@dataclass(frozen=True)
class Columns:
    """Which feature columns to read: `keep` (None: all) minus `drop`. With `strict`, a named
    column the file lacks is an error (the user's --columns/--drop-columns); without, missing
    ones are named as the columns the model was trained on (a run's columns in a new file)."""

    keep: tuple[str, ...] | None = None
    drop: tuple[str, ...] = ()
    strict: bool = False


def _feature_names(path: Path, names: list[str], label_column, ids: list[str], only) -> list[str]:
    """The feature columns among `names`: all but the label and identifier columns, then
    `only` (a `Columns`, or a run's column list) chooses among them."""
    if label_column is not None:
        check(
            label_column in names,
            f"{path} has no column named {label_column!r}; its columns are {', '.join(map(repr, names))}.",
        )
    if only is not None and not isinstance(only, Columns):
        only = Columns(keep=tuple(only))
    only = only or Columns()
    lacking = [c for c in (only.keep or ()) if c not in names]
    if lacking and not only.strict:
        raise VaekitError(
            f"{path} lacks the column{'s' if len(lacking) > 1 else ''} {', '.join(map(repr, lacking))} "
            f"that the model was trained on; give a table with {', '.join(map(repr, only.keep))}."
        )
    unknown = [c for c in (only.keep or ()) + only.drop if c not in names] if only.strict else []
    check(
        not unknown,
        f"{path} has no column {unknown[0]!r} (--columns/--drop-columns); its columns are "
        f"{', '.join(map(repr, names))}."
        if unknown
        else "",
    )
    if only.keep is not None:
        chosen = [n for n in only.keep if n != label_column]  # in the order asked
    else:
        chosen = [n for n in names if n != label_column and n not in ids]
    features = [n for n in chosen if n not in only.drop]
    check(
        bool(features),
        f"{path}: no feature column is left after --drop-columns."
        if chosen
        else f"{path} has no feature columns besides the label and identifier columns.",
    )
    return features


def _shown(name: str) -> str:
    """A column name as it can be typed in an option (control characters escaped)."""
    return name.encode("unicode_escape").decode() if not name.isprintable() else name


def _column_types(path: Path, frame, features: list[str], options: dict, profiles=None) -> dict[str, str]:
    """Each feature column's type: the run's saved schema, --column-types, else `columns.infer`
    (`profiles`: `columns.float_profiles` of the float columns). Every column that cannot be
    modelled as it is is named in one message with what can be done."""
    from vaekit import columns

    saved = options.get("schema")
    if saved is not None:
        types = {c["name"]: c["type"] for c in saved["columns"]}
        check(
            set(features) <= set(types),
            f"{path} now reads as examples of shape ({len(features)},) but the run's model takes "
            f"({len(types)},); the file changed (its columns are {', '.join(map(repr, features))}): retrain "
            "the run on it.",
        )
        return {name: types[name] for name in features}
    given = columns.parse_types(options.get("column_types"))
    unknown = [c for c in given if c not in features]
    check(
        not unknown,
        f"--column-types names {unknown[0]!r}, which is not a feature column of {path.name} (they are "
        f"{', '.join(map(repr, features))})."
        if unknown
        else "",
    )
    types, problems = {}, []
    discrete = set(options.get("discrete") or ())
    for name in features:
        profile = (profiles or {}).get(name)
        kind, why = (given[name], "") if name in given else columns.infer(name, frame[name], profile)
        if name in discrete and name not in given and kind in columns.CONTINUOUS:
            kind = "categorical"  # --discrete-columns: a few values, each a category
        if kind is None:
            problems.append((name, why))
        else:
            types[name] = kind
    if problems:
        listed = ", ".join(f"{name!r} ({why})" for name, why in problems)
        them = "them" if len(problems) > 1 else "it"
        fixes = [f"leave {them} out with --drop-columns {','.join(_shown(n) for n, _ in problems)}"]
        distinct = [n for n, why in problems if "every value distinct" in why]
        if distinct:
            fixes.append(f"use {distinct[0]!r} as the row identifier with --id-column {_shown(distinct[0])}")
        text = [n for n, why in problems if why.startswith("text with")]
        if text:
            fixes.append(f"model {text[0]!r} as categories with --column-types {_shown(text[0])}=categorical")
        if any(why.startswith("numbers, but") for _, why in problems):
            fixes.append("mend the text cells among numbers (or write them as NA)")
        raise VaekitError(
            f"{path} has {len(problems)} column{'s' if len(problems) > 1 else ''} vaekit cannot model as "
            f"{'they are' if len(problems) > 1 else 'it is'}: {listed}; {', or '.join(fixes)}."
        )
    return types


def _missing_cells(path: Path, frame, features: list[str], policy: str, lines=None, profiles=None):
    """Apply the --missing policy to the feature columns' missing cells: (frame, notes).
    `profiles` (`columns.float_profiles`) spares looking for them where none was counted."""
    check(
        policy in MISSING_POLICIES,
        f"--missing must be one of {', '.join(MISSING_POLICIES)}, not {policy!r}.",
    )
    if profiles and all(n in profiles and profiles[n][0] == 0 for n in features):
        return frame, []
    cells = frame[features].isna()
    per_column = {c: int(n) for c, n in cells.sum().items() if n}
    if not per_column:
        return frame, []
    rows = cells.any(axis=1)
    counts = ", ".join(f"{c!r} {n}" for c, n in per_column.items())
    row, col = np.argwhere(cells.to_numpy())[0]
    where = f"line {lines[row]}" if lines is not None else f"row {row}"
    what = (
        f"missing cells (empty, NA, NaN, null, ...): {counts}, in {int(rows.sum())} of {len(frame)} rows "
        f"(the first at {where}, column {features[col]!r})"
    )
    if policy == "refuse":
        raise VaekitError(
            f"{path} has {what}; choose --missing drop-rows to leave those rows out, or --missing model to "
            "train on the observed cells."
        )
    if policy == "drop-rows":
        check(
            not rows.all(),
            f"{path}: every row has a missing cell, so --missing drop-rows leaves none; use --missing model.",
        )
        return frame[~rows.to_numpy()].reset_index(drop=True), [
            f"{path.name}: {what}; those rows were left out (--missing drop-rows)."
        ]
    return frame, [f"{path.name}: {what}; each row's likelihood sums over its observed cells."]


def numeric_matrix(frame) -> np.ndarray | None:
    """A table's values as one float64 matrix (NaN where missing) when every column holds
    numbers, else None (text categories have no number)."""
    import pandas as pd

    if not all(
        pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c]) for c in frame
    ):
        return None
    if not len(frame.columns):
        return None
    if all(frame[c].dtype == np.float64 for c in frame):  # one float block: no copy
        return frame.to_numpy(dtype=np.float64)
    return frame.astype("float64").to_numpy(na_value=np.nan)


def load_table(path: Path, label_column, key=None, only=None, options: dict | None = None) -> RawData:
    """A CSV/TSV/whitespace, Parquet or HDF5 table (`vaekit.datasets.tables.read_frame`) as RawData: the
    identifier columns apart, the label column encoded, each feature column typed
    (`_column_types`) and the --missing policy applied. `only`: just these feature columns."""
    from vaekit import columns

    options = options or {}
    table = read_frame(path, options.get("sep"), options.get("decimal"), key)
    frame = table.frame
    check(len(frame) > 0, f"{path} holds no rows; give a table with a header and one row per example.")
    names = [str(c) for c in frame.columns]
    keep = set(getattr(only, "keep", None) or (only if isinstance(only, (list, tuple)) else ()))
    ids = [c for c in identifier_columns(table, options.get("id_column")) if c != label_column]
    ids += [c for c in options.get("id_columns") or () if c in names and c not in ids]  # a run's own
    ids = [c for c in ids if c not in keep or c == options.get("id_column")]
    features = _feature_names(path, names, label_column, ids, only)
    ids = [c for c in ids if c not in features]
    notes = list(table.notes)
    if ids and not options.get("id_column"):
        notes.append(
            f"{path.name}: {', '.join(map(repr, ids))} {'hold' if len(ids) > 1 else 'holds'} row identifiers "
            "(every value distinct), not measurements: not modelled, carried into the outputs that list rows."
        )
    skipped = [n for n in names if n not in features and n not in ids and n != label_column]
    if skipped and not getattr(only, "strict", False):
        notes.append(f"{path.name}: ignored the columns {', '.join(map(repr, skipped))}.")
    elif skipped:
        notes.append(
            f"{path.name}: left out the columns {', '.join(map(repr, skipped))} (--columns/--drop-columns)."
        )
    if label_column is not None:
        labels = frame[label_column]
        check(
            bool(labels.notna().all()),
            f"{path}: the label column {label_column!r} has {int(labels.isna().sum())} missing cells; give "
            "every row a label.",
        )
    profiles = columns.float_profiles(frame, features)  # one pass over the float columns
    types = _column_types(path, frame, features, options, profiles)  # every unusable column named first
    policy = options.get("missing") or "refuse"
    frame, more = _missing_cells(path, frame, features, policy, table.lines, profiles)
    notes += more
    raw = RawData(x=None, source=str(path), column_names=features, notes=notes)
    raw.frame = frame[features].reset_index(drop=True)
    raw.x = numeric_matrix(raw.frame)
    raw.column_types = types
    raw.ids = frame[ids].reset_index(drop=True) if ids else None
    raw.missing = options.get("missing") or "refuse"
    if label_column is not None:
        raw.y, raw.label_names = encode_labels(
            frame[label_column].astype(str).to_numpy(), f"{path}: {label_column}"
        )
    return raw


def read_table_file(path: Path, o: dict) -> RawData:
    key = (o.get("keys") or {}).get("table")
    return load_table(path, o.get("label_column"), key, o.get("only_columns"), o.get("table_options"))
