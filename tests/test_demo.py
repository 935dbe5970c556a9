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
