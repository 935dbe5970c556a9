import json

import pytest
from conftest import FAST

SUMMARY_KEYS = {"elbo", "rate", "distortion", "knn_accuracy", "active_units", "aggregate_posterior_kl"}


@pytest.fixture(scope="module")
def digits_sweep(tmp_path_factory):
    from vaekit.cli import main

    out = tmp_path_factory.mktemp("sweeps") / "s"
    main(["sweep", "--beta", "0", "1", "--data", "digits", "--epochs", "2", "--out", str(out), *FAST])
    return out


def test_sweep_writes_every_file(digits_sweep):
    for name in ("sweep.json", "report.html", "figures/latent_panels.png", "figures/rate_distortion.png"):
        assert (digits_sweep / name).stat().st_size > 0, name
    rows = json.loads((digits_sweep / "sweep.json").read_text())
    assert [r["beta"] for r in rows] == [0.0, 1.0]
    for r in rows:
        assert SUMMARY_KEYS <= set(r) and r["source"] == "separate"
        assert (digits_sweep / r["run"] / "model.safetensors").exists()
        assert r["settings"]["beta"] == r["beta"] and r["settings"]["epochs"] == 2
    page = (digits_sweep / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 2 and "aggregate_posterior_kl" in page


def test_interrupted_sweep_resumes_without_retraining(cli, digits_sweep, tmp_path):
    import shutil

    copy = tmp_path / "s"
    shutil.copytree(digits_sweep, copy)
    done = copy / "beta-0" / "model.safetensors"
    before = done.stat().st_mtime_ns
    # beta = 1 was cut short: its summary never got written
    (copy / "beta-1" / "summary.json").unlink()
    code, out, err = cli(
        "sweep", "--beta", "0", "1", "--data", "digits", "--epochs", "2", "--out", copy, *FAST
    )
    assert code == 0, err
    assert "1 of 2 runs already done" in out
    assert done.stat().st_mtime_ns == before
    assert (copy / "beta-1" / "summary.json").exists()
    original = json.loads((digits_sweep / "sweep.json").read_text())
    again = json.loads((copy / "sweep.json").read_text())
    assert [r["elbo"] for r in again] == pytest.approx([r["elbo"] for r in original], rel=1e-6)


def test_bad_betas(cli, tmp_path):
    code, _, err = cli("sweep", "--beta", "0", "-1", "--data", "digits", "--out", tmp_path / "x")
    assert code == 2 and "beta must be a number of at least 0" in err
    code, _, err = cli("sweep", "--data", "digits", "--out", tmp_path / "x")
    assert code == 2 and "Give the betas" in err


def test_beta_conditioned_model_orders_rates(cli, tmp_path):
    run = tmp_path / "cond"
    code, _, err = cli(
        "train",
        "--data",
        "digits",
        "--beta-range",
        "0.01",
        "100",
        "--latent-dim",
        "4",
        "--epochs",
        "4",
        "--out",
        run,
        *FAST,
    )
    assert code == 2 or code == 0, err
    assert code == 0, err
    code, out, err = cli(
        "sweep", "--from", run, "--beta", "0.1", "10", "--out", tmp_path / "sw", "--nll-samples", "5"
    )
    assert code == 0, err
    rows = json.loads((tmp_path / "sw" / "sweep.json").read_text())
    assert [r["source"] for r in rows] == ["conditioned", "conditioned"]
    low, high = rows
    assert low["beta"] == 0.1 and high["beta"] == 10
    assert low["rate"] > high["rate"] + 0.5
    assert low["distortion"] < high["distortion"]
    code, _, err = cli("sweep", "--from", run, "--beta", "1000", "--out", tmp_path / "sw2")
    assert code == 2 and "outside the run's range" in err


def test_neighbors(cli, tmp_path):
    run = tmp_path / "r"
    assert cli("train", "--data", "digits", "--latent-dim", "4", "--epochs", "2", "--out", run, *FAST)[0] == 0
    code, out, err = cli("neighbors", run, "--index", "3", "-k", "4")
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0] == "index,distance,label" and len(lines) == 5
    distances = [float(line.split(",")[1]) for line in lines[1:]]
    assert distances == sorted(distances) and "3," not in [line[:2] for line in lines[1:]]
    assert (run / "figures" / "neighbors-3.png").stat().st_size > 1000
    assert cli("neighbors", run, "--index", "99999")[0] == 2
