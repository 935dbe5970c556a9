"""The demo's lesson holds on real data: as beta grows, rate falls and distortion rises."""

import json

import pytest


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


def test_the_disentanglement_demo_trains_scores_and_reports_each_model(tmp_path, monkeypatch, cli):
    """A tiny preset of the disentanglement demo through the command: one row per model with
    metrics in [0, 1] that equal the run's own summary, the report with its table, figure and
    each model's labelled traversals, and a rerun that reuses the finished models."""
    from vaekit import disentangle

    monkeypatch.setitem(
        disentangle.PRESETS,
        "quick",
        {
            "train": {"epochs": 2, "latent_dim": 4, "arch": "mlp", "hidden": "64", "batch_size": 256},
            "metrics": "quick",
            "metric_names": ("mig", "sap"),
            "models": ["beta-VAE (beta=1)", "beta-VAE (beta=4)"],
        },
    )
    out = tmp_path / "dis"
    code, text, err = cli("demo", "disentanglement", "--out", out)
    assert code == 0, err
    table = json.loads((out / "disentanglement.json").read_text())
    assert [r["model"] for r in table["rows"]] == ["beta-VAE (beta=1)", "beta-VAE (beta=4)"]
    for row in table["rows"]:
        summary = json.loads((out / disentangle._slug(row["model"]) / "summary.json").read_text())
        assert summary["beta"] == row["weight"] and summary["mig"] == row["mig"]
        assert all(0 <= row[k] <= 1 for k in ("mig", "sap")) and row["factorvae_score"] is None
        # the MIG curve: one point per epoch, the last one the final model's MIG (same count, seed)
        curve = row["mig_curve"]
        assert [p["epoch"] for p in curve] == [1, 2] and curve[-1]["mig"] == row["mig"]
        assert curve[-1]["seconds"] == pytest.approx(summary["seconds"], abs=0.01)
        assert summary["disentanglement"]["settings"]["mig"]["num_train"] == 10_000
    page = (out / "report.html").read_text()
    # MIG against beta, MIG against time, and two traversal figures
    assert page.count("data:image/png;base64,") == 4
    assert "best MIG" in text and "mig_vs_weight" in page and "mig_vs_time" in page
    before = (out / "beta-vae-beta-4" / "model.safetensors").stat().st_mtime_ns
    assert cli("demo", "disentanglement", "--out", out)[0] == 0  # reuses the finished models
    assert (out / "beta-vae-beta-4" / "model.safetensors").stat().st_mtime_ns == before
