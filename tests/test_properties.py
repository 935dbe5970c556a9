"""Property tests: no file a user can give the data loaders or the config parser ends in anything
but a `VaekitError` with a one-line message, and valid input loads correctly."""

import csv
import io as stdio
import math
import os
import string
import warnings
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from vaekit import datasets
from vaekit.cli import OPTIONS_BY_NAME, read_config_file
from vaekit.datasets import tables
from vaekit.errors import VaekitError

SETTINGS = settings(
    max_examples=80,
    deadline=None,
    # CI runs one fixed set of examples (no flaky failures there); local runs keep exploring
    derandomize=bool(os.environ.get("CI")),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("properties")


def _outcome(fn):
    """Run `fn`: (result, None) or (None, the VaekitError); any other exception propagates."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # overflow in numpy is checked below
        try:
            return fn(), None
        except VaekitError as err:
            message = str(err)
            assert message.strip(), "an empty error message"
            assert "\n" not in message and "\r" not in message, f"a multi-line message: {message!r}"
            return None, err


# ----------------------------------------------------------------------------- .npy arrays

DTYPES = [
    "bool",
    "int8",
    "uint8",
    "int16",
    "uint16",
    "int32",
    "uint32",
    "int64",
    "uint64",
    "float16",
    "float32",
    "float64",
    ">f8",
    ">i4",
    ">f4",
]
SHAPES = hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=5)


@st.composite
def npy_arrays(draw, finite=False):
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    shape = draw(SHAPES)
    elements = None
    if finite and dtype.kind == "f":
        elements = hnp.from_dtype(dtype, allow_nan=False, allow_infinity=False)
    x = draw(hnp.arrays(dtype, shape, elements=elements))
    if not finite and dtype.kind == "f" and x.size and draw(st.booleans()):
        # NaN / Inf at chosen positions
        flat = x.reshape(-1)
        for i in draw(st.lists(st.integers(0, x.size - 1), min_size=1, max_size=3)):
            flat[i] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    return x


def _save_npy(folder: Path, x: np.ndarray) -> Path:
    path = folder / "x.npy"
    np.save(path, x)
    return path


@SETTINGS
@given(x=npy_arrays())
@example(x=np.zeros((2, 0)))
@example(x=np.array([[1.0, np.nan], [2.0, 3.0]]))
@example(x=np.ones((1, 3)))
@example(x=np.ones((3, 4, 4, 3), ">f8"))
def test_npy_loads_or_fails_clearly(folder, x):
    path = _save_npy(folder, x)
    data, err = _outcome(lambda: datasets.load(path))
    n = x.shape[0]
    features = math.prod(x.shape[1:])
    finite = bool(np.isfinite(x).all()) if x.dtype.kind == "f" else True
    # values beyond float32's range are refused on purpose (the model computes in float32)
    with np.errstate(over="ignore"):  # e.g. float128 values beyond float64: they do not fit anyway
        fits = (
            not x.size or not finite or float(np.abs(x.astype(np.float64)).max()) <= np.finfo(np.float32).max
        )
    valid = n >= 2 and features > 0 and finite and fits
    if not valid:
        assert err is not None, f"accepted invalid data of shape {x.shape}, finite={finite}"
        return
    assert err is None, f"refused valid data of shape {x.shape} {x.dtype}: {err}"
    assert len(data.x) == n and data.x.dtype == np.float32
    assert data.x[0].size == features and math.prod(data.shape) == features
    assert len(data.train_idx) + len(data.test_idx) == n and len(data.test_idx) >= 1
    assert sorted(np.r_[data.train_idx, data.test_idx].tolist()) == list(range(n))


@SETTINGS
@given(x=npy_arrays(finite=True))
@example(x=np.array([[1e308, 1.0], [-1e308, 2.0], [0.0, 3.0]]))
def test_accepted_arrays_load_as_finite_numbers(folder, x):
    """What the loader accepts, the model can use: no NaN or Inf after scaling."""
    _assert_finite_or_refused(folder, x)


def _assert_finite_or_refused(folder: Path, x: np.ndarray) -> None:
    path = _save_npy(folder, x)
    data, err = _outcome(lambda: datasets.load(path))
    if data is not None:
        bad = ~np.isfinite(data.x)
        assert not bad.any(), (
            f"{int(bad.sum())} non-finite values after scaling an all-finite {x.dtype} array"
        )


@pytest.mark.parametrize(
    "x",
    [
        np.array([3.40282357e38, 3.40282357e38]),  # float64, just above float32's largest value
        np.array([[1e308], [1e308], [0.0]]),  # the column mean overflows
        np.full((3, 2, 2), 1e308) * np.array([1.0, -1.0, 1.0])[:, None, None],  # image: max - min overflows
    ],
    ids=["above-float32-max", "mean-overflows", "image-range-overflows"],
)
def test_huge_finite_values_are_refused_or_scaled_finitely(folder, x):
    """Found by the property above: huge but finite float64 values load as Inf/NaN."""
    _assert_finite_or_refused(folder, x)


# ----------------------------------------------------------------------------- CSV text

CELLS = st.one_of(
    st.floats().map(repr),
    st.integers().map(str),
    st.text(max_size=6),
    st.just(""),
    st.sampled_from(["nan", "inf", "-inf", "1e999", " 1 ", "1_000", "0x10", "١٢", '"', "a,b", "x\ny"]),
)


@st.composite
def csv_bytes(draw) -> bytes:
    kind = draw(st.sampled_from(["table", "table", "table", "text", "binary"]))
    if kind == "binary":
        return draw(st.binary(max_size=80))
    if kind == "text":
        text = draw(st.text(max_size=80))
    else:
        rows = draw(st.lists(st.lists(CELLS, max_size=5), max_size=6))  # ragged rows allowed
        if draw(st.booleans()):
            buffer = stdio.StringIO()
            csv.writer(buffer, lineterminator=draw(st.sampled_from(["\n", "\r\n"]))).writerows(rows)
            text = buffer.getvalue()
        else:
            text = "".join(",".join(row) + "\n" for row in rows)
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16"]))
    return text.encode(encoding, errors="surrogatepass")


@SETTINGS
@given(content=csv_bytes(), label=st.one_of(st.none(), st.sampled_from(["a", "label", "x\ny"])))
@example(content=b"a,b\n1,2\n3\n", label=None)
@example(content=b"a,b\n", label=None)
@example(content=b'"a b",c\n1,2\n3,4\n', label="y")
@example(content=b"a\n1\n2\n", label="a")
@example(content="é,ü\n1,2\n3,4\n".encode(), label="é")
def test_csv_loads_or_fails_clearly(folder, content, label):
    path = folder / "t.csv"
    path.write_bytes(content)
    data, err = _outcome(lambda: datasets.load(path, label_column=label))
    if data is not None:
        assert len(data.x) >= 2 and data.x.dtype == np.float32
        assert len(data.column_names) == data.x.shape[1]
        if label is not None:
            assert data.y is not None and len(data.y) == len(data.x)


@pytest.mark.parametrize(
    "content, label",
    [(b'"a\nb",c\nx,1\n2,3\n', None), (b'"a\nb",c\n1,2\n3,4\n', "y")],
    ids=["text-cell-under-the-name", "unknown-label-column"],
)
def test_one_line_messages_with_a_newline_in_a_column_name(folder, content, label):
    """Found by the property above: a quoted header cell holding a newline is put into the
    error message raw, so the 'one sentence' spans two lines."""
    path = folder / "newline.csv"
    path.write_bytes(content)
    data, err = _outcome(lambda: datasets.load(path, label_column=label))
    assert err is not None and data is None


NAMES = st.lists(
    st.text(alphabet=string.ascii_letters + "_", min_size=1, max_size=6).filter(
        lambda s: not tables.is_number(s) and not tables.is_id_name(s)  # an id column is not a feature
    ),
    min_size=1,
    max_size=4,
    unique=True,
)


@SETTINGS
@given(
    names=NAMES,
    n=st.integers(2, 8),
    values=st.data(),
    with_label=st.booleans(),
    newline=st.sampled_from(["\n", "\r\n"]),
)
def test_valid_csv_loads_every_row_and_value(folder, names, n, values, with_label, newline):
    table = np.array(
        [[values.draw(st.floats(-1e6, 1e6, allow_nan=False, width=32)) for _ in names] for _ in range(n)],
        dtype=np.float64,
    )
    labels = [values.draw(st.sampled_from(["cat", "dog", "émeu"])) for _ in range(n)]
    header = [*names, "label_col"] if with_label else names
    buffer = stdio.StringIO()
    writer = csv.writer(buffer, lineterminator=newline)
    writer.writerow(header)
    for row, lab in zip(table, labels, strict=True):
        writer.writerow([repr(float(v)) for v in row] + ([lab] if with_label else []))
    path = folder / "valid.csv"
    path.write_text(buffer.getvalue(), encoding="utf-8")
    data, err = _outcome(lambda: datasets.load(path, label_column="label_col" if with_label else None))
    assert err is None, f"refused a valid CSV: {err}"
    assert data.x.shape == (n, len(names)) and data.column_names == names
    # float32 in model units: exact up to ~1e-7 of the column's spread, back in the user's units
    tolerance = 1e-5 * (np.abs(table).max() + 1.0)
    np.testing.assert_allclose(data.to_user_units(data.x), table, rtol=1e-5, atol=tolerance)
    if with_label:
        assert [data.label_names[i] for i in data.y] == labels


@pytest.mark.parametrize("header", [True, False])
def test_csv_with_a_byte_order_mark_loads_every_row(folder, header):
    """Spreadsheets save 'CSV UTF-8' with a byte-order mark: it must not become part of the
    first column's name, nor turn the first data row into a header."""
    text = ("a,b\n" if header else "") + "1,2\n3,4\n5,6\n"
    path = folder / "bom.csv"
    path.write_bytes(text.encode("utf-8-sig"))
    data = datasets.load(path, label_column="a" if header else None)
    assert len(data.x) == 3, "a row was lost"
    if header:
        assert data.y is not None and data.column_names == ["b"]
    else:
        assert data.column_names == ["column_0", "column_1"]


# ----------------------------------------------------------------------------- config files

KNOWN = sorted(OPTIONS_BY_NAME)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(-(10**400), 10**400),
    st.floats(),
    st.text(max_size=10),
    st.dates(),
    st.binary(max_size=5),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)
KEYS = st.one_of(
    st.sampled_from(KNOWN),
    st.sampled_from(KNOWN).map(lambda k: k.replace("_", "-")),
    st.text(max_size=12),
    st.integers(),
    st.booleans(),
)


def _write_config(folder: Path, text: str) -> Path:
    path = folder / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@SETTINGS
@given(
    content=st.one_of(
        st.dictionaries(KEYS, VALUES, max_size=4).map(lambda d: yaml.safe_dump(d, sort_keys=False)),
        st.text(max_size=60),
        st.lists(VALUES, max_size=3).map(yaml.safe_dump),
    )
)
@example(content="epochs: 1.0e400\n")
@example(content="hidden: [0]\n")
@example(content="a: &x [*x]\n")
@example(content="out: ../../x\n")
@example(content="")
@example(content="- a\n")
def test_config_parses_or_fails_clearly(folder, content):
    path = _write_config(folder, content)
    result, err = _outcome(lambda: read_config_file(str(path)))
    if result is not None:
        assert set(result) <= set(OPTIONS_BY_NAME), "an unknown key was accepted"


@pytest.mark.parametrize(
    "content",
    [
        "epochs: " + "9" * 400,
        "beta: " + "9" * 400,
        "beta_range: [1, " + "9" * 400 + "]",
        "data: " + "9" * 5000,
    ],
    ids=["int-option", "float-option", "beta-range", "int-longer-than-4300-digits"],
)
def test_config_with_huge_numbers_fails_clearly(folder, content):
    """Found by the property above: OverflowError / ValueError escape read_config_file."""
    path = _write_config(folder, content + "\n")
    result, err = _outcome(lambda: read_config_file(str(path)))
    assert err is not None and result is None


def _valid_value(name: str):
    """(strategy of a valid YAML value for option `name`, function giving the expected result)."""
    opt = OPTIONS_BY_NAME[name]
    if name == "hidden":
        sizes = st.lists(st.integers(1, 4096), min_size=1, max_size=4)
        return st.one_of(
            sizes, sizes.map(lambda s: ",".join(map(str, s)))
        ), lambda v: ",".join(map(str, v)) if isinstance(v, list) else v
    if opt.nargs == 2:
        return st.lists(st.floats(allow_nan=False), min_size=2, max_size=2), tuple
    if opt.type is bool:
        return st.booleans(), lambda v: v
    if opt.type is int:
        whole = st.integers(-(10**9), 10**9)
        return st.one_of(whole, whole.map(float)), int
    if opt.type is float:
        return st.one_of(st.floats(allow_nan=False), st.integers(-(10**9), 10**9)), float
    # no U+0085: PyYAML's emitter writes it unescaped under allow_unicode=True and its reader then
    # folds it into a space (vaekit writes its own YAML without allow_unicode, which escapes it)
    text = st.text(st.characters(blacklist_characters="\x85"), max_size=12)
    return st.one_of(text, st.integers(-(10**6), 10**6)), str


@st.composite
def valid_configs(draw):
    names = draw(st.lists(st.sampled_from(KNOWN), unique=True, max_size=8))
    mapping, expected = {}, {}
    for name in names:
        strategy, coerce = _valid_value(name)
        value = draw(st.one_of(st.none(), strategy))
        key = name.replace("_", "-") if draw(st.booleans()) else name
        mapping[key] = value
        expected[name] = None if value is None else coerce(value)
    return mapping, expected


@SETTINGS
@given(config=valid_configs())
def test_valid_config_reads_back_every_value(folder, config):
    mapping, expected = config
    path = _write_config(folder, yaml.safe_dump(mapping, sort_keys=False, allow_unicode=True))
    result, err = _outcome(lambda: read_config_file(str(path)))
    assert err is None, f"refused a valid config {mapping}: {err}"
    assert result == expected


def test_config_yaml_keeps_line_break_characters(tmp_path):
    """vaekit's own YAML writer escapes the characters YAML reads as line breaks."""
    from vaekit import io

    value = "a\x85b\u2028c\u2029d\re"
    io.write_yaml(tmp_path / "c.yaml", {"activation": value})
    assert yaml.safe_load((tmp_path / "c.yaml").read_text())["activation"] == value


# ----------------------------------------------------------------------------- typed tables

KINDS = ["real", "positive", "proportion", "binary_text", "categorical", "count", "integer"]


def _typed_column(kind: str, n: int, gen: np.random.Generator):
    if kind == "real":
        return gen.normal(size=n) * 10.0 ** gen.integers(-3, 4)
    if kind == "positive":
        return np.exp(gen.normal(size=n) * 1.5 + gen.integers(-3, 5))
    if kind == "proportion":
        return gen.uniform(0, 1, n)
    if kind == "binary_text":
        return gen.choice(["yes", "no"], n)
    if kind == "categorical":
        return gen.choice(["a", "b b", "ç", "d-1"], n)
    if kind == "count":
        return gen.poisson(gen.uniform(0.5, 20), n)
    return gen.integers(1900, 2030, n)


@SETTINGS
@given(
    kinds=st.lists(st.sampled_from(KINDS), min_size=1, max_size=6),
    n=st.integers(12, 60),
    seed=st.integers(0, 2**16),
    missing=st.floats(0, 0.2),
    dialect=st.sampled_from([(",", "."), (";", ","), ("\t", "."), (";", ".")]),
)
def test_mixed_tables_round_trip_and_untrained_draws_stay_in_support(
    folder, kinds, n, seed, missing, dialect
):
    """Any mixed table, written in any usual dialect with missing cells: it reads back to the
    same values, the model's units map back to them, missing cells stay missing, and even an
    untrained model's draws lie inside every column's support."""
    import pandas as pd
    import torch

    from vaekit.model import VAE

    gen = np.random.default_rng(seed)
    frame = pd.DataFrame({f"{k} {i}": _typed_column(k, n, gen) for i, k in enumerate(kinds)})
    holes = gen.random(frame.shape) < missing
    holes[0] = False  # every column keeps observed values
    frame = frame.mask(holes)
    sep, decimal = dialect
    path = folder / f"typed_{seed}.csv"
    frame.to_csv(path, index=False, sep=sep, decimal=decimal, float_format="%.17g")
    data, err = _outcome(lambda: datasets.load(path, table_options={"missing": "model"}))
    if err is not None:  # only a column with a single observed value may be refused
        assert "cannot model" in str(err) or "test_size" in str(err), str(err)
        return
    read = data.extra["frame"]
    assert list(read.columns) == list(frame.columns)
    np.testing.assert_array_equal(read.isna().to_numpy(), frame.isna().to_numpy())
    assert np.array_equal(np.isnan(data.x), frame.isna().to_numpy())
    back = data.schema.to_user(data.x.astype(np.float64))
    for name in frame.columns:
        seen = frame[name].notna().to_numpy()
        if data.schema.types[name] in ("binary", "categorical"):
            from vaekit.columns import label_key

            assert [label_key(v) for v in back[name][seen]] == [label_key(v) for v in frame[name][seen]]
        else:
            scale = float(np.abs(frame[name][seen].astype(float)).max())  # float32 model units
            np.testing.assert_allclose(
                back[name][seen].astype(float), frame[name][seen].astype(float), rtol=2e-6, atol=2e-6 * scale
            )
    model = VAE.for_data(data, latent_dim=2, hidden=(16,))
    with torch.no_grad():
        torch.manual_seed(seed)
        drawn = data.schema.to_user(model.sample(200, mean=False).numpy())
    for column in data.schema.columns:
        values = drawn[column.column]
        if column.name in ("binary", "categorical"):
            assert set(values.astype(str)) <= {str(v) for v in column.constants["values"]}
        elif column.name == "positive":
            assert (values.astype(float) > 0).all()
        elif column.name == "bounded":
            lo, hi = column.constants["lo"], column.constants["hi"]
            assert values.astype(float).between(lo, hi).all()
        elif column.name in ("count", "integer"):
            assert (values.astype(float) % 1 == 0).all()
            assert column.name == "integer" or (values.astype(float) >= 0).all()
