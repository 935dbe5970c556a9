"""The demo's lesson holds on real data: as beta grows, rate falls and distortion rises."""

import json
import math

import pytest
import yaml

import vaekit


@pytest.fixture(scope="module")
def demo_rows(tmp_path_factory):
    from vaekit.cli import DEMO_BETAS, main

    out = tmp_path_factory.mktemp("demo") / "demo"
    main(["demo", "--out", str(out), "--epochs", "8", "--jobs", "2"])
    rows = json.loads((out / "sweep.json").read_text())
    assert [r["beta"] for r in rows] == list(DEMO_BETAS)
    assert (out / "figures" / "latent_panels.png").stat().st_size > 20_000
    return rows


def test_rate_falls_and_distortion_rises_with_beta(demo_rows):
    rates = [r["rate"] for r in demo_rows]
    distortions = [r["distortion"] for r in demo_rows]
    for lo, hi in zip(rates, rates[1:], strict=False):
        assert hi < lo * 1.02, rates
    for lo, hi in zip(distortions, distortions[1:], strict=False):
        assert hi > lo - 0.01 * lo, distortions  # ties within 1 % allowed (beta = 0 vs 0.1)
    assert rates[0] > 3 * rates[-1] and distortions[-1] > distortions[0] + 10


def test_beta_zero_is_farthest_from_the_prior(demo_rows):
    distances = [r["aggregate_posterior_kl"] for r in demo_rows]
    assert distances[0] == max(distances) and distances[0] > 5 * distances[2]
    assert all(r["settings"]["latent_dim"] == 2 and r["settings"]["data"] == "mnist5k" for r in demo_rows)


def test_the_code_tells_less_about_the_example_as_beta_grows(demo_rows):
    """I_q(x; z) <= rate (Hoffman & Johnson, 2016: rate = I_q(x; z) + KL(q(z) || p(z))), within
    the estimates' noise, and it shrinks from beta = 1 to beta = 64; at most log n_test."""
    for r in demo_rows:
        assert -0.01 <= r["mutual_information"] <= math.log(r["n_test"]) + 1e-9  # noise around 0
        assert r["mutual_information"] <= r["rate"] + 0.1, r
    by_beta = {r["beta"]: r["mutual_information"] for r in demo_rows}
    assert by_beta[64.0] < 0.5 * by_beta[1.0], by_beta


def test_the_disentanglement_demo_trains_scores_and_reports_each_model(tmp_path, monkeypatch, cli):
    """A tiny preset of the disentanglement demo through the command, then with two seeds: one row per
    model and seed with metrics in [0, 1] that equal the run's own summary, each model's mean and
    sd over its seeds, the report with its table, figures and each model's labelled traversals,
    a rerun with a second seed that reuses the finished models, and the refusals."""
    import numpy as np

    from vaekit import disentangle

    monkeypatch.setitem(
        disentangle.BUDGETS,
        "quick",
        {
            "train": {
                "epochs": 2,
                "latent_dim": 4,
                "arch": "mlp",
                "hidden": "64",
                "batch_size": 256,
                "lr_schedule": "cosine",
            },
            "metrics": "quick",
            "metric_names": ("mig", "sap"),
            "models": ["beta-VAE (beta=1)", "beta-VAE (beta=4)"],
        },
    )
    out = tmp_path / "dis"
    code, text, err = cli("demo", "disentanglement", "--out", out)
    assert code == 0, err
    first = json.loads((out / "disentanglement.json").read_text())
    assert "+-" not in text and "best MIG: " in text
    before = (out / "beta-vae-beta-4" / "model.safetensors").stat().st_mtime_ns
    # adds seed 1, each model one job of submitit's local executor (what a Slurm job array runs)
    code, text, err = cli("demo", "disentanglement", "--out", out, "--seeds", 2, "--launcher", "local")
    assert code == 0, err
    assert "2 local jobs, 2 at a time, logs in" in text
    assert len(list((out / "jobs").glob("*_log.out"))) == 2
    assert (out / "beta-vae-beta-4" / "model.safetensors").stat().st_mtime_ns == before
    table = json.loads((out / "disentanglement.json").read_text())
    names = ["beta-VAE (beta=1)", "beta-VAE (beta=4)"]
    assert [(r["model"], r["seed"]) for r in table["rows"]] == [(n, s) for n in names for s in (0, 1)]
    assert [r["folder"] for r in table["rows"]][:2] == ["beta-vae-beta-1", "beta-vae-beta-1-seed-1"]
    assert [r["mig"] for r in first["rows"]] == [r["mig"] for r in table["rows"] if r["seed"] == 0]
    for row in table["rows"]:
        folder = out / row["folder"]
        summary = json.loads((folder / "summary.json").read_text())
        assert summary["beta"] == row["weight"] and summary["mig"] == row["mig"]
        assert json.loads((folder / "demo.json").read_text())["seed"] == row["seed"]
        assert all(0 <= row[k] <= 1 for k in ("mig", "sap")) and row["factorvae_score"] is None
        # the MIG curve: one point per epoch, the last one the final model's MIG (same count, seed)
        curve = row["mig_curve"]
        assert [p["epoch"] for p in curve] == [1, 2] and curve[-1]["mig"] == row["mig"]
        assert curve[-1]["seconds"] == pytest.approx(summary["seconds"], abs=0.01)
        assert summary["disentanglement"]["settings"]["mig"]["num_train"] == 10_000
        # the preset's training settings reach the run: the cosine rate fell from 1e-3 towards 0
        assert yaml.safe_load((folder / "config.yaml").read_text())["train"]["lr_schedule"] == "cosine"
        rates = [r["lr"] for r in vaekit.io.read_jsonl(folder / "metrics.jsonl")]
        assert 0 < rates[1] < rates[0] < 1e-3 and rates[1] < 1e-4
    # the seeds are different models, and each model's entry is the mean and sd of its seeds
    weights = [(out / r["folder"] / "model.safetensors").read_bytes() for r in table["rows"][:2]]
    assert weights[0] != weights[1]
    for entry, pair in zip(table["models"], (table["rows"][:2], table["rows"][2:]), strict=True):
        migs = [r["mig"] for r in pair]
        assert entry["seeds"] == [0, 1] and entry["mig_seeds"] == migs
        assert entry["mig"] == pytest.approx(np.mean(migs))
        assert entry["mig_sd"] == pytest.approx(np.std(migs, ddof=1))
    top = max(table["models"], key=lambda m: m["mig"])
    assert f"best MIG: {top['model']} {top['mig']:.3f} +- {top['mig_sd']:.3f} over 2 seeds" in text
    page = (out / "report.html").read_text()
    # MIG against beta, MIG against time, and two traversal figures (seed 0 of each model)
    assert page.count("data:image/png;base64,") == 4
    assert "mig_vs_weight" in page and "mig_vs_time" in page and "&plusmn;" in page
    # refused with one sentence, and nothing of the quick demo touched: the long setting's models in
    # the quick one's folders, a folder holding a run of the user's, no seeds, --seeds for the beta demo
    listing = sorted(p.name for p in out.rglob("*"))
    code, text, err = cli("demo", "disentanglement", "--out", out, "--long")
    assert code == 2 and "holds something other than this model of the long demo" in err
    assert "Traceback" not in err and sorted(p.name for p in out.rglob("*")) == listing
    mine = tmp_path / "mine" / "beta-vae-beta-1"
    mine.mkdir(parents=True)
    (mine / "notes.txt").write_text("mine")
    assert cli("demo", "disentanglement", "--out", mine.parent)[0] == 2
    assert [p.name for p in mine.parent.rglob("*")] == ["beta-vae-beta-1", "notes.txt"]
    assert (mine / "notes.txt").read_text() == "mine"
    (mine / "notes.txt").unlink()
    (mine / "demo.json").write_text("{")  # a marker cut short: refused, not a traceback
    code, text, err = cli("demo", "disentanglement", "--out", mine.parent)
    assert code == 2 and "holds something other" in err and "Traceback" not in err
    assert (mine / "demo.json").read_text() == "{"
    code, text, err = cli("demo", "disentanglement", "--out", tmp_path / "none", "--seeds", 0)
    assert code == 2 and "--seeds must be a whole number of at least 1" in err and text == ""
    assert not (tmp_path / "none").exists()  # refused before anything, the table's head included
    code, text, err = cli("demo", "disentanglement", "--out", tmp_path / "none", "--epochs", 2)
    assert code == 2 and "--epochs is the beta demo's" in err and not (tmp_path / "none").exists()
    code, text, err = cli("demo", "--out", tmp_path / "beta", "--seeds", 2)
    assert code == 2 and "vaekit demo disentanglement" in err and not (tmp_path / "beta").exists()
    code, text, err = cli("demo", "--out", tmp_path / "beta", "--launcher", "local")
    assert code == 2 and "vaekit demo disentanglement" in err and not (tmp_path / "beta").exists()
