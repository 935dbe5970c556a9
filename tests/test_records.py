"""Numbers in the field's units and records that match what ran: bits/dim in the papers'
convention, an ELBO that never reads above the IWAE bound, and what a run folder records."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import FAST
from scipy import stats

from vaekit import evaluate


def _fake(likelihood: str, x_test: np.ndarray, full_scale=None, log_jacobian: float = 0.0):
    """The three things bits_per_dim reads: the likelihood's name, the scaling's log-Jacobian,
    and the data (test split in model units, dimensions, full scale)."""
    model = SimpleNamespace(likelihood=SimpleNamespace(name=likelihood), log_jacobian=lambda: log_jacobian)
    data = SimpleNamespace(
        data_dim=int(np.prod(x_test.shape[1:])), x_test=x_test, extra={"full_scale": full_scale}
    )
    return model, data


@pytest.mark.parametrize("bits", [8, 16, 5])
def test_a_uniform_density_on_k_bit_data_is_exactly_k_bits_per_dim(bits):
    """A uniform density on the [0, 1]-scaled values has nll 0: bits/dim is the bit depth."""
    top = 2**bits - 1
    x = np.random.default_rng(0).integers(0, top + 1, size=(20, 3, 4, 4)) / top
    model, data = _fake(
        "gaussian", x.astype(np.float32), full_scale=float(top), log_jacobian=-48 * math.log(top)
    )
    value, convention = evaluate.bits_per_dim(model, data, 0.0)
    assert value == pytest.approx(bits, abs=1e-12)
    assert convention.startswith(f"discrete: {bits}-bit integer data")


def test_a_discretised_gaussian_by_hand():
    """A Gaussian density on 8-bit pixels scaled to [0, 1]: bits/dim equals -log2 of the mass the
    density puts on each value's bin of width 1/256 (computed by hand with scipy), to within the
    density's curvature over one bin."""
    gen = np.random.default_rng(1)
    levels = gen.integers(60, 200, size=(50, 10))
    x = levels / 255.0
    mu, sigma = 0.5, 0.2
    nll = -stats.norm(mu, sigma).logpdf(x).sum(axis=1).mean()  # nats per example, density on [0, 1]
    model, data = _fake("gaussian", x.astype(np.float32), full_scale=255.0, log_jacobian=-10 * math.log(255))
    value, _ = evaluate.bits_per_dim(model, data, nll)
    centre = x  # the bin of width 1/256 around each value
    mass = stats.norm(mu, sigma).cdf(centre + 0.5 / 256) - stats.norm(mu, sigma).cdf(centre - 0.5 / 256)
    by_hand = -np.log2(mass).sum(axis=1).mean() / 10
    assert value == pytest.approx(by_hand, abs=1e-3)
    # the same density of the same pixels seen through another scaling (standardised) gives the same
    scale = 37.0  # x_model = (x_user - m) / scale in each of 10 dimensions
    nll_model = nll + 10 * math.log(255) - 10 * math.log(scale)  # density of x_model
    model, data = _fake(
        "gaussian", x.astype(np.float32), full_scale=255.0, log_jacobian=-10 * math.log(scale)
    )
    assert evaluate.bits_per_dim(model, data, nll_model)[0] == pytest.approx(value, abs=1e-9)


def test_bernoulli_bits_per_dim_only_for_binary_data():
    binary = (np.random.default_rng(2).random((30, 8)) > 0.5).astype(np.float32)
    model, data = _fake("bernoulli", binary, full_scale=1.0)
    value, convention = evaluate.bits_per_dim(model, data, 8 * math.log(2))  # a fair coin per pixel
    assert value == pytest.approx(1.0) and "Bernoulli probability of binary data" in convention
    grey = np.random.default_rng(3).integers(0, 256, size=(30, 8)).astype(np.float32) / 255
    model, data = _fake("bernoulli", grey, full_scale=255.0)
    value, convention = evaluate.bits_per_dim(model, data, 3.0)
    assert value is None and "not a probability of the data" in convention


def test_continuous_data_get_the_density_in_their_own_units():
    x = np.random.default_rng(4).normal(size=(30, 5)).astype(np.float32)
    model, data = _fake("gaussian", x, full_scale=None, log_jacobian=-5 * math.log(2.0))
    value, convention = evaluate.bits_per_dim(model, data, 7.0)
    assert value == pytest.approx((7.0 + 5 * math.log(2.0)) / (5 * math.log(2)))
    assert convention.startswith("density")


@pytest.mark.parametrize(
    ("dtype", "bits", "likelihood"),
    [(np.uint8, 8, "gaussian"), (np.uint16, 16, "laplace"), (np.uint8, 8, "bernoulli")],
)
def test_train_records_bits_per_dim_in_the_papers_convention(cli, tmp_path, dtype, bits, likelihood):
    """End to end: k-bit pixel arrays give (nll + D log 2^k) / (D ln 2) with the convention named;
    a Bernoulli likelihood on grey pixels gives none, with the reason."""
    gen = np.random.default_rng(5)
    top = np.iinfo(dtype).max
    x = (gen.random((120, 1, 6, 6)) ** 2 * top).astype(dtype)
    np.save(tmp_path / "x.npy", x)
    run = tmp_path / "run"
    code, _, err = cli(
        "train",
        "--data",
        tmp_path / "x.npy",
        "--likelihood",
        likelihood,
        "--epochs",
        "2",
        "--out",
        run,
        *FAST,
    )
    assert code == 0, err
    summary = json.loads((run / "summary.json").read_text())
    if likelihood == "bernoulli":
        assert summary["bits_per_dim"] is None
        assert "not a probability of the data" in summary["bits_per_dim_convention"]
        return
    expected = (summary["nll"] + 36 * math.log(2.0**bits)) / (36 * math.log(2))
    assert summary["bits_per_dim"] == pytest.approx(expected, rel=1e-7)  # log-Jacobian in float32
    assert summary["bits_per_dim_convention"].startswith(f"discrete: {bits}-bit integer data")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_summary_elbo_is_never_above_the_iwae_bound_on_a_tiny_table(cli, tmp_path, seed):
    """On small tables the one-draw ELBO once came out above -nll; now both use the same draws."""
    gen = np.random.default_rng(seed)
    x = gen.normal(size=(40, 3))
    np.savetxt(tmp_path / "t.csv", x, delimiter=",", header="a,b,c", comments="")
    run = tmp_path / "run"
    code, _, err = cli(
        "train", "--data", tmp_path / "t.csv", "--epochs", "3", "--seed", seed, "--out", run, *FAST
    )
    assert code == 0, err
    s = json.loads((run / "summary.json").read_text())
    assert s["elbo"] <= s["iwae_bound"] == -s["nll"]
    assert s["elbo"] == pytest.approx(-(s["distortion"] + s["rate"]), rel=1e-9)
    assert s["elbo_samples"] == s["nll_samples"] == 10 and s["elbo_stderr"] > 0
    model = __import__("vaekit").load(run)
    data = __import__("vaekit").runs.load_data(run)
    again = evaluate.nll(model, torch.as_tensor(data.x_test), samples=10, seed=0)
    assert np.all(again.elbo_per_example <= -again.per_example + 1e-9)
