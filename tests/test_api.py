"""The Python API does what each command does: `vaekit.apply`'s functions return what `vaekit
encode`, `reconstruct`, `sample`, `score`, `impute` and `evaluate` write (the commands only parse,
call them and write), value for value."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import FAST


@pytest.fixture(scope="module")
def table_run(tmp_path_factory):
    """A run on a typed table with an identifier, a text category, a count and missing cells."""
    from vaekit.cli import main

    folder = tmp_path_factory.mktemp("api")
    rng = np.random.default_rng(3)
    n = 120
    frame = pd.DataFrame(
        {
            "visit": [f"v{i:04d}" for i in range(n)],
            "site": rng.choice(["north", "south", "east"], n),
            "visits": rng.poisson(3, n),
            "bmi": np.round(rng.normal(25, 4, n), 2),
        }
    )
    frame.loc[rng.choice(n, 15, replace=False), "bmi"] = np.nan
    path = folder / "visits.csv"
    frame.to_csv(path, index=False)
    run = folder / "run"
    main(
        ["train", "--data", str(path), "--id-column", "visit", "--missing", "model", "--latent-dim", "2"]
        + ["--epochs", "2", "--out", str(run), *FAST]
    )
    return run, path


def test_encode_is_the_command(cli, table_run, tmp_path):
    from vaekit import apply

    run, path = table_run
    code, _, err = cli("encode", run, "--data", path, "--out", tmp_path / "z.csv")
    assert code == 0, err
    written = pd.read_csv(tmp_path / "z.csv")
    frame = apply.encode(run, str(path))
    assert list(frame.columns) == ["visit", "z1_mean", "z2_mean", "z1_std", "z2_std"]
    pd.testing.assert_frame_equal(written, frame, check_dtype=False)
    assert (frame["z1_std"] > 0).all()


def test_reconstruct_is_the_command(cli, table_run, digits_run, tmp_path):
    from vaekit import apply, runs

    run, path = table_run
    code, _, err = cli("reconstruct", run, "--data", path, "--out", tmp_path / "r.csv")
    assert code == 0, err
    frame = apply.reconstruct(run, str(path))
    assert list(frame.columns) == ["visit", "site", "visits", "bmi"]
    assert set(frame["site"]) <= {"north", "south", "east"}
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "r.csv"), frame, check_dtype=False)
    # images: the .npy holds the same numbers in the examples' shape
    code, _, err = cli("reconstruct", digits_run, "--data", "digits", "--out", tmp_path / "r.npy")
    assert code == 0, err
    images = apply.reconstruct(digits_run, "digits")
    array = np.load(tmp_path / "r.npy")
    assert array.shape == (1797, 1, 8, 8)
    numbers, shape = apply.features(digits_run, images)
    assert shape == runs.load(digits_run).data_shape
    np.testing.assert_array_equal(array, numbers.to_numpy().reshape(-1, *shape))


def test_sample_is_the_command(cli, table_run, tmp_path):
    from vaekit import apply

    run, _ = table_run
    code, _, err = cli("sample", run, "-n", 7, "--seed", 4, "--draw", "--out", tmp_path / "s.csv")
    assert code == 0, err
    frame = apply.sample(run, 7, seed=4, draw=True)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "s.csv"), frame, check_dtype=False)
    assert not frame.equals(apply.sample(run, 7, seed=5, draw=True))  # the seed matters


def test_score_is_the_command(cli, table_run, tmp_path):
    from vaekit import apply

    run, path = table_run
    out = tmp_path / "scores.csv"
    code, _, err = cli("score", run, "--data", path, "--samples", 3, "--seed", 1, "--out", out)
    assert code == 0, err
    frame, record = apply.score(run, str(path), samples=3, seed=1)
    pd.testing.assert_frame_equal(pd.read_csv(out), frame, check_dtype=False)
    assert json.loads(out.with_suffix(".json").read_text()) == json.loads(json.dumps(record))
    assert {"nll", "neg_elbo_avg", "rate_avg"} <= set(frame.columns) and frame["visit"].iloc[0] == "v0000"
    assert np.isfinite(frame["nll"]).all() and record["columns"]["nll"].startswith("importance-sampled")


def test_impute_is_the_command(cli, table_run, tmp_path):
    from vaekit import apply

    run, path = table_run
    code, _, err = cli("impute", run, "--data", path, "--out", tmp_path / "i.csv")
    assert code == 0, err
    frame, summary = apply.impute(run, str(path))
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "i.csv"), frame, check_dtype=False)
    assert summary["missing_cells"] == {"bmi": 15} and frame["bmi"].notna().all()


def test_evaluate_is_the_command(cli, table_run, tmp_path):
    from vaekit import apply

    run, path = table_run
    code, out, err = cli("evaluate", run, "--data", path, "--nll-samples", 5, "--json")
    assert code == 0, err
    result = apply.evaluate(run, str(path), nll_samples=5)
    assert json.loads(out) == result and result["n"] == 120
    assert result["nll"] <= -result["elbo"]  # the IS-NLL is a tighter bound than the ELBO
    # the run's own test split: summary.json rewritten with what the function returns
    summary = apply.evaluate(run, nll_samples=5)
    stored = json.loads((run / "summary.json").read_text())
    assert stored["nll"] == summary["nll"] and stored["nll_samples"] == 5
    code, out, err = cli("evaluate", run, "--nll-samples", 5, "--json")
    assert code == 0, err
    assert json.loads(out)["nll"] == summary["nll"]  # the same seed gives the same number
