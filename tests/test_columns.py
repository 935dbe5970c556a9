"""Tables as they are written: dialects, missing cells, identifiers and typed columns, each
column's likelihood against scipy.stats, draws inside each column's support, and the CLI end to
end on a mixed table."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import FAST
from scipy import stats

import vaekit
from vaekit import columns, datasets
from vaekit.datasets import tables

# ----------------------------------------------------------------------------- reading


@pytest.mark.parametrize(
    ("text", "sep", "decimal"),
    [
        ("a;b;c\n1,5;2;x\n2,25;3;y\n", ";", ","),
        ("a\tb\tc\n1.5\t2\tx\n2.25\t3\ty\n", "\t", "."),
        ("a b c\n1.5 2 x\n2.25  3 y\n", tables.WHITESPACE, "."),
        ("a|b|c\n1.5|2|x\n2.25|3|y\n", "|", "."),
    ],
    ids=["semicolon-decimal-comma", "tab", "whitespace", "pipe"],
)
def test_dialects_are_detected_and_values_read_exactly(text, sep, decimal):
    table = tables.frame_from_text(text)
    assert (table.sep, table.decimal) == (sep, decimal)
    frame = table.frame
    assert list(frame.columns) == ["a", "b", "c"]
    assert frame["a"].tolist() == [1.5, 2.25] and frame["b"].dtype == np.int64
    assert frame["c"].tolist() == ["x", "y"]


def test_one_column_with_decimal_commas_is_not_taken_for_row_names():
    table = tables.frame_from_text("x\n-1,25\n0,5\n2,75\n")
    assert (table.sep, table.decimal) == (";", ",") and table.frame["x"].tolist() == [-1.25, 0.5, 2.75]


def test_ragged_rows_are_refused_naming_the_line():
    cases = [
        ("a,b\n1,2\n3\n4,5\n", 3),
        ("a,b\n1,2\n3,4\n5,6,7\n", 4),  # pandas would cut or refuse this row; named either way
        ("a;b\n1;2\n3;4;5\n", 3),  # not one column named 'a;b'
        ("a\tb\n1\t2\n\n3\n", 4),  # a blank line counts in the line number
        ("a,b\n1,2\n" + "3,4\n" * 50 + "5,6,7\n", 53),
    ]
    for text, line in cases:
        with pytest.raises(vaekit.VaekitError, match=f"line {line} has"):
            tables.frame_from_text(text)


def test_r_row_names_and_exact_values():
    # R's write.table: the header has no field for the row names
    table = tables.frame_from_text('"x","n"\n"r1",59.6,9007199254740993\n"r2",1700000000.123456,2\n')
    assert list(table.frame.columns) == ["rownames", "x", "n"]
    assert table.frame["x"].tolist() == [59.6, 1700000000.123456]  # float64, not through float32
    assert table.frame["n"].tolist() == [9007199254740993, 2]  # beyond 2**53, exact
    assert tables.identifier_columns(table) == ["rownames"]


@pytest.mark.parametrize("token", sorted(tables.MISSING_TOKENS))
def test_every_missing_token_is_missing(token):
    frame = tables.frame_from_text(f"a,b\n1,2\n{token},3\n4,5\n").frame
    assert frame["a"].isna().tolist() == [False, True, False] and frame["b"].notna().all()


def test_identifiers_of_each_kind():
    frame = tables.frame_from_text(
        ",id,PatientID,event_key,count,name\n"
        + "".join(f"{i},{100 - i},P{i:03d},k{i},{i % 3},n{i}\n" for i in (5, 2, 9, 7))
    )
    assert tables.identifier_columns(frame) == ["", "id", "PatientID", "event_key"]
    assert tables.identifier_columns(frame, "name")[0] == "name"


def test_all_non_numeric_columns_in_one_message(tmp_path):
    rows = [f"{i},2024-01-{i % 28 + 1:02d},free text {i},{'ab'[i % 2]},{i % 4}" for i in range(40)]
    (tmp_path / "t.csv").write_text("x,when,comment,kind,level\n" + "\n".join(rows) + "\n")
    with pytest.raises(vaekit.VaekitError) as err:
        datasets.load(tmp_path / "t.csv")
    message = str(err.value)
    assert "'when' (dates)" in message and "'comment' (text, every value distinct)" in message
    assert "--drop-columns when,comment" in message and "--label-column" not in message
    assert "\n" not in message


# ----------------------------------------------------------------------------- each type's likelihood


def _logp(column, params, x_user):
    v = torch.as_tensor(column.to_model(pd.Series(x_user)), dtype=torch.float64)
    return column.log_prob(torch.as_tensor(params, dtype=torch.float64), v).numpy()


def test_real_positive_bounded_densities_in_user_units_match_scipy():
    gen = np.random.default_rng(0)
    x = gen.normal(3.0, 2.0, 50)
    real = columns.Real.fit("x", pd.Series(x))
    m, s = real.constants["mean"], real.constants["std"]
    params = np.c_[gen.normal(size=50), gen.normal(size=50) * 0.3]
    expected = stats.norm(params[:, 0] * s + m, np.exp(params[:, 1]) * s).logpdf(x)
    np.testing.assert_allclose(_logp(real, params, x), expected, rtol=1e-9)

    y = np.exp(gen.normal(1.0, 0.5, 50))
    pos = columns.Positive.fit("y", pd.Series(y))
    m, s = pos.constants["mean"], pos.constants["std"]
    expected = stats.lognorm(s=np.exp(params[:, 1]) * s, scale=np.exp(params[:, 0] * s + m)).logpdf(y)
    np.testing.assert_allclose(_logp(pos, params, y), expected, rtol=1e-9)

    p = gen.uniform(0.05, 0.95, 50)
    bounded = columns.Bounded.fit("p", pd.Series(p))
    assert (bounded.constants["lo"], bounded.constants["hi"]) == (0.0, 1.0)
    eps, m, s = bounded.EPS, bounded.constants["mean"], bounded.constants["std"]
    u = eps + (1 - 2 * eps) * p
    w = np.log(u / (1 - u))
    expected = stats.norm(params[:, 0] * s + m, np.exp(params[:, 1]) * s).logpdf(w) + np.log(
        (1 - 2 * eps) / (u * (1 - u))
    )
    np.testing.assert_allclose(_logp(bounded, params, p), expected, rtol=1e-9)
    # a density: it integrates to 1 over the bounds
    grid = np.linspace(0, 1, 200001)
    dens = np.exp(_logp(bounded, np.tile([[0.3, -0.2]], (len(grid), 1)), grid))
    assert np.trapezoid(dens, grid) == pytest.approx(1.0, abs=2e-3)


def test_discrete_types_are_probabilities_matching_scipy():
    gen = np.random.default_rng(1)
    counts = gen.negative_binomial(3, 0.4, 60)
    count = columns.Count.fit("k", pd.Series(counts), lo=0)
    params = np.c_[gen.normal(size=60) * 0.3, gen.normal(size=60) * 0.3]
    mu = np.exp(params[:, 0] + math.log(count.constants["mean"] + 1e-3))
    r = np.exp(params[:, 1])
    expected = stats.nbinom(r, r / (r + mu)).logpmf(counts)
    np.testing.assert_allclose(_logp(count, params, counts), expected, rtol=1e-7)

    sizes = counts + 1  # a count from 1 (a household's size): x - 1 follows the negative binomial
    from_one = columns.Count.fit("size", pd.Series(sizes))
    assert from_one.constants["lo"] == 1
    np.testing.assert_allclose(_logp(from_one, params, sizes), _logp(count, params, counts), rtol=1e-12)
    assert from_one.to_user(from_one.to_model(pd.Series(sizes))).tolist() == sizes.tolist()

    years = gen.integers(1990, 2021, 60)
    integer = columns.Integer.fit("year", pd.Series(years))
    m, s = integer.constants["mean"], integer.constants["std"]
    loc, scale = params[:, 0] * s + m, np.exp(params[:, 1]) * s
    expected = np.log(stats.norm(loc, scale).cdf(years + 0.5) - stats.norm(loc, scale).cdf(years - 0.5))
    np.testing.assert_allclose(_logp(integer, params, years), expected, rtol=1e-6)
    ks = np.arange(1900, 2100)  # the masses sum to 1
    total = np.exp(_logp(integer, np.tile(params[:1], (len(ks), 1)), ks)).sum()
    assert total == pytest.approx(1.0, abs=1e-6)

    labels = gen.choice(["red", "green", "blue"], 60)
    cat = columns.Categorical.fit("c", pd.Series(labels))
    assert cat.constants["values"] == ["blue", "green", "red"]
    logits = gen.normal(size=(60, 3))
    codes = np.searchsorted(["blue", "green", "red"], labels)
    expected = logits[np.arange(60), codes] - np.log(np.exp(logits).sum(1))
    np.testing.assert_allclose(_logp(cat, logits, labels), expected, rtol=1e-9)

    rain = np.where(gen.random(60) < 0.4, 0.0, np.exp(gen.normal(size=60)))
    hurdle = columns.NonNegative.fit("rain", pd.Series(rain))
    m, s = hurdle.constants["mean"], hurdle.constants["std"]
    three = np.c_[gen.normal(size=60), params]
    pi = 1 / (1 + np.exp(-three[:, 0]))
    lognormal = stats.lognorm(s=np.exp(three[:, 2]) * s, scale=np.exp(three[:, 1] * s + m))
    with np.errstate(divide="ignore"):
        expected = np.where(rain == 0, np.log(pi), np.log1p(-pi) + lognormal.logpdf(rain))
    np.testing.assert_allclose(_logp(hurdle, three, rain), expected, rtol=1e-9)
    grid = np.linspace(1e-6, 60, 400001)  # P(0) plus the density above 0 make 1
    dens = np.exp(_logp(hurdle, np.tile(three[:1], (len(grid), 1)), grid))
    assert pi[0] + np.trapezoid(dens, grid) == pytest.approx(1.0, abs=2e-3)

    flags = gen.integers(0, 2, 60)
    binary = columns.Binary.fit("f", pd.Series(flags))
    logit = gen.normal(size=(60, 1))
    expected = stats.bernoulli(1 / (1 + np.exp(-logit[:, 0]))).logpmf(flags)
    np.testing.assert_allclose(_logp(binary, logit, flags), expected, rtol=1e-9)


# ----------------------------------------------------------------------------- end to end


def _mixed(n, gen, missing=0.0):
    z = gen.normal(size=n)
    frame = pd.DataFrame(
        {
            "event_id": [f"e{i:05d}" for i in range(n)],
            "z": z * 2 + 1 + gen.normal(size=n) * 0.3,  # a column named like the latent variable
            "latent loss": np.exp(1 + 0.5 * z + gen.normal(size=n) * 0.3),  # positive, with a space
            "share": 1 / (1 + np.exp(-(z + gen.normal(size=n) * 0.5))),
            "flag": (z + gen.normal(size=n) > 0).astype(int),
            "colour": np.where(z > 0.5, "red", np.where(z < -0.5, "blue", "green")),
            "visits": gen.poisson(np.exp(0.5 + 0.5 * z)),
        }
    )
    if missing:
        frame.loc[gen.random(n) < missing, "z"] = np.nan
        frame.loc[gen.random(n) < missing, "flag"] = np.nan  # a 0/1 column read back as 1.0 / NaN
    return frame


@pytest.fixture(scope="module")
def mixed_run(tmp_path_factory):
    from vaekit.cli import main

    folder = tmp_path_factory.mktemp("mixed")
    gen = np.random.default_rng(3)
    frame = _mixed(500, gen, missing=0.05)
    frame.to_csv(folder / "t.csv", index=False, sep=";", decimal=",")
    run = folder / "run"
    main(["train", "--data", str(folder / "t.csv"), "--missing", "model", "--epochs", "30",
          "--latent-dim", "2", "--out", str(run), *FAST])  # fmt: skip
    return folder, run, frame


def test_a_mixed_table_is_typed_trained_and_drawn_inside_each_support(cli, mixed_run, tmp_path):
    folder, run, frame = mixed_run
    model = vaekit.load(run)
    assert model.likelihood.schema.types == {
        "z": "real",
        "latent loss": "positive",
        "share": "bounded",
        "flag": "binary",
        "colour": "categorical",
        "visits": "count",
    }
    code, _, err = cli("sample", run, "-n", "3000", "--draw", "--out", tmp_path / "s.csv")
    assert code == 0, err
    drawn = pd.read_csv(tmp_path / "s.csv")
    assert list(drawn.columns) == ["z", "latent loss", "share", "flag", "colour", "visits"]
    assert (drawn["latent loss"] > 0).all()
    assert drawn["share"].between(0, 1).all()
    assert set(drawn["flag"]) <= {0, 1} and set(drawn["colour"]) <= {"red", "green", "blue"}
    assert (drawn["visits"] >= 0).all() and drawn["visits"].dtype == np.int64
    # the report of a table whose columns are named z and 'latent loss' is drawn
    assert (run / "report.html").exists() and (run / "figures" / "samples.png").exists()


def test_missing_cells_add_nothing_to_the_likelihood(mixed_run):
    folder, run, frame = mixed_run
    model = vaekit.load(run)
    data = vaekit.runs.load_data(run)
    x = torch.as_tensor(data.x[:50])
    assert torch.isnan(x).any()
    z = torch.zeros(50, 2)
    with torch.no_grad():
        px = model.decode(z)
        full = px.log_prob_columns(x)
        total = px.log_prob(x)
    observed = ~torch.isnan(x)
    np.testing.assert_allclose(total.numpy(), (full * observed).sum(1).numpy(), rtol=1e-6)
    assert torch.all(full[~observed] == 0)


def test_one_row_is_scored_with_its_identifier(cli, mixed_run, tmp_path):
    folder, run, frame = mixed_run
    one = frame.iloc[[7]].fillna({"z": 0.0})
    one.to_csv(tmp_path / "one.csv", index=False)
    code, _, err = cli("score", run, "--data", tmp_path / "one.csv", "--out", tmp_path / "s.csv")
    assert code == 0, err
    scores = pd.read_csv(tmp_path / "s.csv")
    assert scores["event_id"].tolist() == ["e00007"] and np.isfinite(scores["neg_elbo"]).all()
    code, _, err = cli("reconstruct", run, "--data", tmp_path / "one.csv", "--out", tmp_path / "r.csv")
    assert code == 0, err
    rec = pd.read_csv(tmp_path / "r.csv")
    assert rec["event_id"].tolist() == ["e00007"] and rec["colour"].iloc[0] in {"red", "green", "blue"}


def test_a_value_outside_the_support_is_scored_impossible_and_refused_elsewhere(cli, mixed_run, tmp_path):
    """score: a row with an unseen category, a count below the smallest seen or a share past its
    bound has probability zero (-log p = inf, its cell named); the other rows score as they do
    alone. Commands that need the row's code refuse it in one sentence."""
    folder, run, frame = mixed_run
    rows = frame.iloc[:6].fillna({"z": 0.0, "flag": 0}).reset_index(drop=True)
    rows.loc[1, "colour"] = "purple"
    rows.loc[3, "visits"] = -1
    rows.loc[4, "share"] = 1.25
    rows.to_csv(tmp_path / "new.csv", index=False)
    code, _, err = cli(
        "score", run, "--data", tmp_path / "new.csv", "--out", tmp_path / "s.csv", "--samples", "5"
    )
    assert code == 0, err
    assert "3 of 6 rows hold a value the model gives probability zero" in err and "'purple' at row 1" in err
    scores = pd.read_csv(tmp_path / "s.csv")
    bad = [1, 3, 4]
    for name in ("neg_elbo", "distortion", "nll"):
        assert np.isinf(scores.loc[bad, name]).all() and np.isfinite(scores.loc[[0, 2, 5], name]).all()
    assert scores.loc[bad, "rate"].isna().all()
    assert scores["outside_support"].fillna("").tolist() == [
        "",
        "colour='purple'",
        "",
        "visits=-1",
        "share=1.25",
        "",
    ]
    rows.iloc[[0, 2, 5]].to_csv(tmp_path / "good.csv", index=False)
    code, _, err = cli(
        "score", run, "--data", tmp_path / "good.csv", "--out", tmp_path / "g.csv", "--samples", "5"
    )
    assert code == 0, err
    alone = pd.read_csv(tmp_path / "g.csv")
    np.testing.assert_allclose(scores.loc[[0, 2, 5], "nll"], alone["nll"], rtol=1e-5)
    assert "outside_support" not in alone
    code, _, err = cli("encode", run, "--data", tmp_path / "new.csv", "--out", tmp_path / "e.csv")
    assert code == 2 and "Traceback" not in err
    assert (
        "3 of 6 rows hold a value outside what the model was trained on ('share': 1 cell, the first 1.25"
        in err
    )
    assert (
        "'colour': 1 cell, the first 'purple' at row 1 (the values seen in training: blue, green, red)" in err
    )
    assert "'visits': 1 cell, the first -1 at row 3 (whole numbers >= 0" in err
    assert not (tmp_path / "e.csv").exists()


def test_scoring_gaps_with_a_model_trained_without_them_warns(cli, tmp_path):
    gen = np.random.default_rng(8)
    frame = _mixed(200, gen).drop(columns="event_id")
    frame.to_csv(tmp_path / "t.csv", index=False)
    code, _, err = cli(
        "train", "--data", tmp_path / "t.csv", "--epochs", "2", "--out", tmp_path / "run", *FAST
    )
    assert code == 0, err
    gaps = frame.head(3).copy()
    gaps.loc[0, "share"] = np.nan
    gaps.to_csv(tmp_path / "gaps.csv", index=False)
    code, _, err = cli(
        "score", tmp_path / "run", "--data", tmp_path / "gaps.csv", "--out", tmp_path / "s.csv"
    )
    assert code == 0, err
    assert "trained without missing cells (not --missing model)" in err and "these 1 rows" in err
    assert np.isfinite(pd.read_csv(tmp_path / "s.csv")["neg_elbo"]).all()


def test_column_types_are_overridable_and_refusals_name_the_fix(cli, tmp_path):
    gen = np.random.default_rng(5)
    frame = _mixed(120, gen)
    frame.to_csv(tmp_path / "t.csv", index=False)
    types = "visits=real,flag=categorical"
    code, _, err = cli("train", "--data", tmp_path / "t.csv", "--column-types", types,
                       "--epochs", "1", "--out", tmp_path / "r", *FAST)  # fmt: skip
    assert code == 0, err
    assert vaekit.load(tmp_path / "r").likelihood.schema.types["visits"] == "real"
    code, _, err = cli("train", "--data", tmp_path / "t.csv", "--column-types", "visits=poisson",
                       "--out", tmp_path / "q", *FAST)  # fmt: skip
    assert code == 2 and "the types are real, positive, bounded" in err
    code, _, err = cli("train", "--data", tmp_path / "t.csv", "--column-types", "share=positive,z=positive",
                       "--out", tmp_path / "p", *FAST)  # fmt: skip
    assert code == 2 and "column 'z' holds" in err and "cannot be positive" in err


def test_impute_recovers_a_dependent_column_better_than_its_mean(cli, mixed_run, tmp_path):
    folder, run, frame = mixed_run
    held = _mixed(200, np.random.default_rng(9))
    truth = held["z"].to_numpy().copy()
    held.loc[:, "z"] = np.nan
    held.loc[:9, "colour"] = None  # a text column's cells too
    held.to_csv(tmp_path / "held.csv", index=False)
    code, out, err = cli("impute", run, "--data", tmp_path / "held.csv", "--out", tmp_path / "i.csv")
    assert code == 0, err
    assert "filled 210 missing cells (z 200, colour 10) of 200 rows" in out
    filled = pd.read_csv(tmp_path / "i.csv")
    assert filled["event_id"].tolist() == held["event_id"].tolist()
    observed = held.drop(columns=["z", "colour"])
    pd.testing.assert_frame_equal(filled[observed.columns], observed)  # observed cells exactly as read
    assert set(filled["colour"]) <= {"red", "green", "blue"}
    rmse = np.sqrt(np.mean((filled["z"] - truth) ** 2))
    rmse_mean = np.sqrt(np.mean((np.nanmean(frame["z"]) - truth) ** 2))
    assert rmse < 0.6 * rmse_mean
    code, out, err = cli("impute", run, "--data", tmp_path / "held.csv", "--method", "draw", "--draws", "3",
                         "--out", tmp_path / "m.csv")  # fmt: skip
    assert code == 0, err
    many = pd.read_csv(tmp_path / "m.csv")
    assert many["imputation"].tolist() == [1] * 200 + [2] * 200 + [3] * 200
    draws = many["z"].to_numpy().reshape(3, 200)
    assert np.all(draws[0] != draws[1])  # draws differ; the mean imputation lies among them
    code, _, err = cli(
        "impute", run, "--data", tmp_path / "held.csv", "--draws", "3", "--out", tmp_path / "x.csv"
    )
    assert code == 2 and "add --method draw" in err


def test_parquet_with_its_own_types_and_a_filtered_index(tmp_path):
    gen = np.random.default_rng(8)
    n = 80
    frame = pd.DataFrame(
        {
            "cut": pd.Categorical(gen.choice(["fair", "good", "ideal"], n)),
            "carat": np.exp(gen.normal(size=n) * 0.4),
            "stock": pd.array(gen.integers(0, 9, n), dtype="Int64"),
            "sold": gen.random(n) > 0.5,
        }
    )
    frame.loc[3, "stock"] = pd.NA
    kept = frame[frame["carat"] > 0.5]  # a filtered frame: its index is no longer 0..n-1
    kept.to_parquet(tmp_path / "t.parquet")  # with its index
    data = datasets.load(tmp_path / "t.parquet", table_options={"missing": "model"})
    assert data.schema.types == {
        "cut": "categorical",
        "carat": "positive",
        "stock": "count",
        "sold": "binary",
    }
    assert list(data.ids.columns) == ["index"] and data.ids["index"].tolist() == kept.index.tolist()
    assert any("'index' holds row identifiers" in note for note in data.notes)
    read = data.extra["frame"]
    assert read["carat"].tolist() == kept["carat"].tolist()  # exactly, float64
    assert read["stock"].isna().sum() == int(kept["stock"].isna().sum())
    frame.assign(when=pd.date_range("2021-01-01", periods=n)).to_parquet(tmp_path / "d.parquet", index=False)
    with pytest.raises(vaekit.VaekitError, match=r"'when' \(dates\); leave it out with --drop-columns when"):
        datasets.load(tmp_path / "d.parquet", table_options={"missing": "model"})


def test_a_label_conditional_table_keeps_each_class_spread(tmp_path):
    """Class a has sd 1 and class b sd 3 in x, noise the latent (busy with w1, w2) cannot carry:
    with each column's spread from the decoder per row, draws of each class keep their own
    spread; one spread per column (--column-spread column) makes a's as wide as b's."""
    from vaekit.cli import main

    gen = np.random.default_rng(2)
    n = 2000
    label = gen.choice(["a", "b"], n)
    t = gen.normal(size=n)
    x = np.where(label == "a", 1.0, 3.0) * gen.normal(size=n)
    w1, w2 = t + 0.1 * gen.normal(size=n), -t + 0.1 * gen.normal(size=n)
    pd.DataFrame({"label": label, "x": x, "w1": w1, "w2": w2}).to_csv(tmp_path / "t.csv", index=False)
    spreads = {}
    for mode in ("row", "column"):
        main(["train", "--data", str(tmp_path / "t.csv"), "--label-column", "label", "--condition", "labels",
              "--latent-dim", "1", "--epochs", "40", "--column-spread", mode, "--out", str(tmp_path / mode),
              *FAST])  # fmt: skip
        model = vaekit.load(tmp_path / mode)
        for name in ("a", "b"):
            with torch.no_grad():
                torch.manual_seed(0)
                drawn = model.sample(4000, mean=False, labels=model.class_index([name]).expand(4000)).numpy()
            spreads[mode, name] = model.likelihood.schema.to_user(drawn)["x"].std()
    assert 0.85 < spreads["row", "a"] < 1.2 and 2.6 < spreads["row", "b"] < 3.4
    assert abs(spreads["column", "a"] / spreads["column", "b"] - 1) < 0.15  # one spread for both classes


def test_the_report_says_what_was_read_and_how_each_column_is_modelled(mixed_run):
    folder, run, frame = mixed_run
    page = (run / "report.html").read_text()
    assert "<h2>Data</h2>" in page
    assert "<td>latent loss</td><td>positive</td><td>log-normal (x &gt; 0)</td><td>" in page
    missing = int(frame["z"].isna().sum())
    assert "<td>z</td><td>real</td>" in page and f"</td><td>{missing}</td></tr>" in page
    assert "Row identifiers (carried into outputs, not modelled): event_id." in page
    assert "read with separator &#x27;;&#x27; and decimal mark &#x27;,&#x27;" in page


def test_squared_error_of_a_typed_table_is_in_feature_units(mixed_run):
    """Per observed cell: the squared difference of standardised values, 2 for a category
    reconstructed as another (one-hot), nothing for a missing cell."""
    from vaekit import evaluate

    folder, run, frame = mixed_run
    model = vaekit.load(run)
    data = vaekit.runs.load_data(run)
    x = torch.as_tensor(data.x_test[:40])
    scores = np.asarray(evaluate.sampled_scores(model, x, 1)["squared_error"])
    with torch.no_grad():
        recon = model.decode(model.encode(x).mean).mean
    schema = model.likelihood.schema
    expected = np.zeros(len(x))
    for j, column in enumerate(schema.columns):
        a, b = x[:, j].numpy().astype(np.float64), recon[:, j].numpy().astype(np.float64)
        seen = ~np.isnan(a)
        if column.name in ("binary",):
            cell = (a != b).astype(float)
        elif column.name == "categorical":
            cell = 2.0 * (a != b)
        elif column.name == "count":
            c = column.constants
            cell = ((np.log1p(a) - np.log1p(b)) / c["log1p_std"]) ** 2
        else:
            cell = (a - b) ** 2
        expected += np.where(seen, cell, 0.0)
    np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-5)
    assert np.all(scores < 100)  # no code (a category's index) leaks in


def test_the_learning_rate_schedule_auto_is_cosine_for_tables_only(mixed_run, digits_run):
    import yaml

    _, run, _ = mixed_run
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["lr_schedule"] == "cosine"
    history = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert history[-1]["lr"] < 0.01 * history[0]["lr"]  # annealed towards 0
    assert yaml.safe_load((digits_run / "config.yaml").read_text())["train"]["lr_schedule"] == "constant"


def test_identifiers_are_carried_through_rare_neighbours_and_two_sample_extremes(cli, mixed_run, tmp_path):
    folder, run, frame = mixed_run
    held = _mixed(120, np.random.default_rng(11))
    held.to_csv(tmp_path / "held.csv", index=False)
    code, _, err = cli("rare", run, "--data", tmp_path / "held.csv", "-k", "3", "--samples", "5",
                       "--out", tmp_path / "rare")  # fmt: skip
    assert code == 0, err
    rare = pd.read_csv(tmp_path / "rare" / "rare.csv")
    rows = held.set_index("event_id")
    assert rare["event_id"].isin(held["event_id"]).all()
    for _, row in rare.iterrows():  # each listed row is the input row, exactly as read
        assert (
            row["z"] == rows.loc[row["event_id"], "z"]
            and row["colour"] == rows.loc[row["event_id"], "colour"]
        )
    code, _, err = cli("neighbors", run, "--query", tmp_path / "held.csv", "--index", "4", "--data",
                       tmp_path / "held.csv", "-k", "3", "--out", tmp_path / "nb.csv")  # fmt: skip
    assert code == 0, err
    nb = pd.read_csv(tmp_path / "nb.csv")
    assert nb["event_id"].iloc[0] == held["event_id"].iloc[4] and len(nb) == 4
    assert nb["visits"].tolist() == held.set_index("event_id").loc[nb["event_id"], "visits"].tolist()
    code, _, err = cli("twosample", run, "--data", tmp_path / "held.csv", "--permutations", "50",
                       "--out", tmp_path / "ts")  # fmt: skip
    assert code == 0, err
    extremes = pd.read_csv(tmp_path / "ts" / "extremes.csv")
    real = extremes[extremes["group"].str.startswith("real")]
    model = extremes[extremes["group"].str.startswith("model")]
    assert real["event_id"].isin(held["event_id"]).all() and model["event_id"].isna().all()
    assert set(model["colour"]) <= {"red", "green", "blue"}  # the model's rows in the user's units


def test_discrete_columns_of_a_table_file_are_typed_not_only_drawn(tmp_path):
    gen = np.random.default_rng(0)
    charge = gen.choice([-1.0, 0.0, 1.0, 2.0], 40) + 0.5
    pd.DataFrame({"x": gen.normal(size=40), "charge": charge, "k": gen.poisson(3, 40)}).to_csv(
        tmp_path / "t.csv", index=False
    )
    assert datasets.load(tmp_path / "t.csv").schema.types["x"] == "real"
    types = datasets.load(tmp_path / "t.csv", discrete_columns="x,k").schema.types
    assert types["x"] == "categorical" and types["k"] == "count"  # a count is discrete already
    given = datasets.load(tmp_path / "t.csv", discrete_columns="x", table_options={"column_types": "x=real"})
    assert given.schema.types["x"] == "real"  # --column-types wins


def test_two_sample_of_a_run_compares_observed_cells_only(cli, mixed_run, tmp_path):
    """Real rows with missing cells against the model's draws, which have none: each draw is
    given one real row's missing cells, so which cells are missing gives nothing away."""
    folder, run, frame = mixed_run
    code, _, err = cli("twosample", run, "--data", folder / "t.csv", "--permutations", "50",
                       "--out", tmp_path / "ts")  # fmt: skip
    assert code == 0, err
    result = json.loads((tmp_path / "ts" / "twosample.json").read_text())
    holes = int(frame[["z", "flag"]].isna().sum().sum())
    assert any(f"The real rows have {holes} missing cells" in note for note in result["notes"])
    extremes = pd.read_csv(tmp_path / "ts" / "extremes.csv")
    drawn = extremes[extremes["group"].str.startswith("model")]
    assert drawn[["z", "flag"]].isna().sum().sum() <= holes  # the draws carry real rows' gaps


def test_float_profiles_match_each_column_and_feed_the_types_of_a_row_major_block(tmp_path):
    """One chunked pass gives each float column's missing count, min and max (a row-major HDF5
    block is never walked column by column); the types and the missing-cell report follow them."""
    import h5py

    gen = np.random.default_rng(3)
    n = 70_000  # more rows than one chunk
    block = np.column_stack(
        [gen.normal(size=n), gen.uniform(size=n), gen.exponential(size=n), gen.poisson(3.0, size=n)]
    ).astype(np.float64)
    block[[5, 69_999], 1] = np.nan
    frame = pd.DataFrame(block, columns=["a", "b", "c", "d"], copy=False)
    profiles = columns.float_profiles(frame, ["a", "b", "c", "d"], chunk=4096)
    for name in "abcd":
        s = frame[name]
        assert profiles[name] == (int(s.isna().sum()), float(s.min()), float(s.max()))
    assert profiles["b"][0] == 2
    path = tmp_path / "block.h5"
    with h5py.File(path, "w") as f:
        f["table"] = block
    with pytest.raises(vaekit.VaekitError, match=r"'column_1' 2, in 2 of 70000 rows"):
        datasets.read_raw(path)
    raw = datasets.read_raw(path, table_options={"missing": "model"})
    assert raw.column_types == {
        "column_0": "real",
        "column_1": "bounded",
        "column_2": "positive",
        "column_3": "count",
    }
    assert np.array_equal(raw.x, block, equal_nan=True)


def test_an_infinite_cell_is_outside_every_support_and_gaps_are_not_invented(cli, mixed_run, tmp_path):
    folder, run, frame = mixed_run
    rows = frame.iloc[:3].fillna({"z": 0.0, "flag": 0}).reset_index(drop=True)
    rows["latent loss"] = rows["latent loss"].astype(object)
    rows.loc[1, "latent loss"] = "inf"
    rows.loc[2, "colour"] = "purple"
    rows.to_csv(tmp_path / "inf.csv", index=False)
    code, _, err = cli(
        "score", run, "--data", tmp_path / "inf.csv", "--out", tmp_path / "s.csv", "--samples", "3"
    )
    assert code == 0, err
    scores = pd.read_csv(tmp_path / "s.csv")
    assert np.isinf(scores.loc[[1, 2], "nll"]).all() and np.isfinite(scores.loc[0, "nll"])
    assert scores["outside_support"].fillna("").tolist() == ["", "latent loss=inf", "colour='purple'"]
    assert "trained without missing cells" not in err  # no cell was missing in the file
    code, _, err = cli("encode", run, "--data", tmp_path / "inf.csv", "--out", tmp_path / "e.csv")
    assert code == 2 and "'latent loss': 1 cell, the first inf at row 1" in err
    assert "outside what the model" in err and not (tmp_path / "e.csv").exists()


def test_mean_imputation_of_a_hurdle_column_is_zero_or_a_plausible_amount(cli, tmp_path):
    """The mean of a nonnegative (hurdle) cell takes the likelier branch: exactly 0, or an amount
    on the positive part's scale, never a near-zero blend of the zero code with log amounts."""
    gen = np.random.default_rng(21)
    n = 600
    x = gen.normal(size=n)
    amount = np.where(x > 0, np.exp(1.0 + 0.3 * x + 0.2 * gen.normal(size=n)), 0.0).round(3)
    frame = pd.DataFrame({"x": x, "amount": amount})
    frame.loc[gen.random(n) < 0.05, "amount"] = np.nan
    frame.to_csv(tmp_path / "t.csv", index=False)
    run = tmp_path / "run"
    code, _, err = cli(
        "train", "--data", tmp_path / "t.csv", "--missing", "model", "--epochs", "30", "--out", run, *FAST
    )
    assert code == 0, err
    assert vaekit.load(run).likelihood.schema.types["amount"] == "nonnegative"
    code, _, err = cli("impute", run, "--data", tmp_path / "t.csv", "--out", tmp_path / "f.csv")
    assert code == 0, err
    filled = pd.read_csv(tmp_path / "f.csv")
    gaps = frame["amount"].isna()
    imputed = filled.loc[gaps, "amount"].to_numpy()
    smallest = amount[amount > 0].min()
    assert np.all((imputed == 0) | (imputed > smallest / 10)), imputed
    assert (imputed == 0).any() and (imputed > 0).any()
    # the branch follows x, on average: the rows imputed as zero have the smaller x
    xs = frame.loc[gaps, "x"].to_numpy()
    assert xs[imputed == 0].mean() < xs[imputed > 0].mean()


def test_a_column_of_one_value_has_probability_one_and_is_drawn_as_itself(cli, tmp_path):
    """A column constant in training (a detector slot that is always empty) is the value with
    probability 1: log p 0 for it, minus infinity for any other, and samples and reconstructions
    give it back (the Bernoulli's other code names no value)."""
    column = columns.Binary.fit("slot", pd.Series([4, 4, 4]))
    params = torch.randn(5, 1)
    assert torch.equal(column.log_prob(params, torch.zeros(5)), torch.zeros(5))
    assert torch.isinf(column.log_prob(params, torch.ones(5))).all()
    assert torch.equal(column.sample(params), torch.zeros(5)) and "constant (4" in column.describe()
    gen = np.random.default_rng(0)
    frame = pd.DataFrame({"energy": gen.gamma(2.0, 3.0, 200), "slot": 4, "flag": gen.integers(0, 2, 200)})
    frame.to_csv(tmp_path / "t.csv", index=False)
    code, _, err = cli(
        "train", "--data", tmp_path / "t.csv", "--epochs", "2", "--out", tmp_path / "run", *FAST
    )
    assert code == 0, err
    code, _, err = cli("sample", tmp_path / "run", "-n", "50", "--draw", "--out", tmp_path / "s.csv")
    assert code == 0, err
    drawn = pd.read_csv(tmp_path / "s.csv")
    assert (drawn["slot"] == 4).all() and set(drawn["flag"]) <= {0, 1}
