"""A table end to end: train on a CSV, reload, encode / score / sample in the user's units,
the likelihood in user units, and the non-image figures, each value checked against a
computation in the test."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch
from conftest import FAST
from reference import gaussian_kl_to_standard_normal, standardise_stats

import vaekit
from vaekit import report, runs

SCALES = np.array([1.0, 1000.0, 0.01, 50.0, 3.0])
OFFSETS = np.array([0.0, 5000.0, -1.0, 20.0, 7.0])
COLUMNS = ["energy", "pt", "eta", "mass", "width"]
N = 400


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """A probabilistic-PCA table (2 latent factors, 5 columns on very different scales) with a
    text label column in the middle."""
    gen = np.random.default_rng(11)
    z = gen.normal(size=(N, 2))
    w = gen.normal(size=(2, 5))
    standard = z @ w + 0.3 * gen.normal(size=(N, 5))
    values = standard * SCALES + OFFSETS
    kind = np.where(z[:, 0] > 0, "signal", "background")
    path = tmp_path_factory.mktemp("table") / "events.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS[:2] + ["kind"] + COLUMNS[2:])
        for row, k in zip(values, kind, strict=True):
            writer.writerow([repr(float(v)) for v in row[:2]] + [k] + [repr(float(v)) for v in row[2:]])
    return path, values, kind


@pytest.fixture(scope="module")
def table_run(table, tmp_path_factory):
    from vaekit.cli import main

    path, _, _ = table
    out = tmp_path_factory.mktemp("runs") / "events"
    main(["train", "--data", path, "--label-column", "kind", "--latent-dim", "2", "--epochs", "6"]
         + ["--out", str(out), *FAST])  # fmt: skip
    return out


def _user_scaling(run, values):
    """The standardisation the run must use: mean and std of the training rows only."""
    data = runs.load_data(run)
    mean, std = standardise_stats(values[data.train_idx])
    return data, mean, std


def _schema_stats(data):
    constants = [c.constants for c in data.schema.columns]
    return np.array([c["mean"] for c in constants]), np.array([c["std"] for c in constants])


def test_the_table_is_read_column_by_column_and_scaled_on_the_training_rows(table, table_run):
    _, values, kind = table
    data, mean, std = _user_scaling(table_run, values)
    assert data.column_names == COLUMNS and data.kind == "tabular" and data.shape == (5,)
    assert data.schema.types == dict.fromkeys(COLUMNS, "real")  # real numbers of both signs
    assert data.label_names == ["background", "signal"]
    np.testing.assert_array_equal(np.asarray(data.label_names)[data.y], kind)
    shift, scale = _schema_stats(data)
    np.testing.assert_allclose(shift, mean, rtol=1e-9)
    np.testing.assert_allclose(scale, std, rtol=1e-9)
    all_mean, _ = standardise_stats(values)
    assert not np.allclose(shift, all_mean, rtol=1e-4)  # the test rows were left out
    np.testing.assert_allclose(data.x, (values - mean) / std, rtol=1e-4, atol=1e-4)


def test_encode_score_and_sample_are_in_the_users_units(cli, table, table_run, tmp_path):
    path, values, kind = table
    _, mean, std = _user_scaling(table_run, values)
    model = vaekit.load(table_run)
    x_model = torch.as_tensor((values - mean) / std, dtype=torch.float32)
    with torch.no_grad():
        q = model.encode(x_model)

    assert (
        cli("encode", table_run, "--data", path, "--label-column", "kind", "--out", tmp_path / "z.csv")[0]
        == 0
    )
    codes = np.loadtxt(tmp_path / "z.csv", delimiter=",", skiprows=1)
    # without --label-column the run's own label column is left out, as in training
    assert cli("encode", table_run, "--data", path, "--out", tmp_path / "z2.csv")[0] == 0
    np.testing.assert_array_equal(np.loadtxt(tmp_path / "z2.csv", delimiter=",", skiprows=1), codes)
    np.testing.assert_allclose(codes[:, :2], q.mean.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(codes[:, 2:], q.stddev.numpy(), rtol=1e-4, atol=1e-5)

    assert (
        cli("score", table_run, "--data", path, "--label-column", "kind", "--out", tmp_path / "s.csv")[0] == 0
    )
    import pandas as pd

    scores = pd.read_csv(tmp_path / "s.csv")
    assert list(scores.columns) == ["index", "label", "neg_elbo", "distortion", "rate", "squared_error"]
    np.testing.assert_array_equal(scores["label"], kind)  # the label column is carried through
    np.testing.assert_allclose(scores["rate"], gaussian_kl_to_standard_normal(q.mean, q.stddev), rtol=1e-4)
    with torch.no_grad():
        recon = model.decoder(q.mean, None)[:, 0::2]  # each real column: (mean, log sigma)
    np.testing.assert_allclose(scores["squared_error"], (recon - x_model).pow(2).sum(1).numpy(), rtol=1e-4)

    assert cli("sample", table_run, "-n", "2000", "--out", tmp_path / "x.npy")[0] == 0
    drawn = np.load(tmp_path / "x.npy")
    assert drawn.dtype == np.float64
    with torch.no_grad():
        torch.manual_seed(0)
        expected = model.decoder(torch.randn(2000, 2), None)[:, 0::2].double().numpy() * std + mean
    np.testing.assert_allclose(drawn, expected, rtol=1e-4, atol=1e-6 * np.abs(OFFSETS).max())
    # in user units each column sits where the data's column does (scales 0.01 to 1000)
    assert np.all(np.abs(drawn.mean(0) - values.mean(0)) < 0.5 * values.std(0))
    # the spread of each column, relative to the data's, is alike for every column: each column was
    # unscaled with its own std (decoder means at sigma = 1 are shrunk, so the ratio is below 1)
    ratio = drawn.std(0) / values.std(0)
    assert ratio.max() < 3 * ratio.min() and 0.05 < ratio.min() and ratio.max() < 2


def test_the_likelihood_is_a_density_of_the_users_numbers(table, table_run):
    """The table's nll is a density of the user's numbers: log p_user(x) = log N(v; mu, sigma)
    - sum_j log std_j, with v the standardised row, checked against scipy at the decoder's
    outputs; no separate user-units figure is needed."""
    from scipy import stats

    _, values, _ = table
    data, mean, std = _user_scaling(table_run, values)
    model = vaekit.load(table_run)
    summary = json.loads((table_run / "summary.json").read_text())
    assert "nll_user_units" not in summary
    z = torch.zeros(3, 2)
    with torch.no_grad():
        params = model.decoder(z, None).double().numpy()
        x = torch.as_tensor(data.x[:3])
        logp = model.decode(z).log_prob(x).numpy()
    mu, sigma = params[:, 0::2], np.exp(params[:, 1::2])
    expected = (stats.norm(mu, sigma).logpdf(data.x[:3].astype(np.float64)) - np.log(std)).sum(1)
    np.testing.assert_allclose(logp, expected, rtol=1e-5)
    # in the user's units directly: a normal density of each column with the spread scaled back
    first_rows = np.sort(np.r_[data.train_idx, data.test_idx])[:3]
    direct = stats.norm(mu * std + mean, sigma * std).logpdf(values[first_rows]).sum(1)
    np.testing.assert_allclose(logp, direct, rtol=1e-4)
    assert summary["bits_per_dim"] == pytest.approx(summary["nll"] / (5 * math.log(2)), rel=1e-6)


def test_a_table_gets_the_non_image_figures_with_its_own_numbers(table_run):
    model = vaekit.load(table_run)
    data = runs.load_data(table_run)
    history = [json.loads(line) for line in (table_run / "metrics.jsonl").read_text().splitlines()]
    summary = json.loads((table_run / "summary.json").read_text())
    on_disk = sorted(p.stem for p in (table_run / "figures").glob("*.png"))
    assert on_disk == [
        "latent_space",
        "marginals",
        "reconstructions",
        "samples",
        "training_curves",
        "traversals",
    ]
    figures = report.run_figures(model, data, history, summary)
    assert sorted(figures) == on_disk
    loss_ax = figures["training_curves"].axes[0]
    train_line, test_line = loss_ax.lines
    np.testing.assert_allclose(train_line.get_ydata(), [r["train_loss"] for r in history])
    np.testing.assert_allclose(test_line.get_ydata(), [r["test_loss"] for r in history])
    # reconstructions: one panel per column, each test row's input against its reconstruction
    recon_axes = [ax for ax in figures["reconstructions"].axes if ax.get_title()]
    assert [ax.get_title() for ax in recon_axes] == [f"{c} (real)" for c in COLUMNS]
    index = data.test_idx[:500]
    with torch.no_grad():
        recon = model.reconstruct(torch.as_tensor(data.x[index])).numpy()
    user = data.schema.to_user(recon)
    frame = data.extra["frame"].iloc[index]
    for ax, name in zip(recon_axes, COLUMNS, strict=True):
        points = ax.collections[0].get_offsets()
        np.testing.assert_allclose(points[:, 0], frame[name].to_numpy())
        np.testing.assert_allclose(points[:, 1], user[name].to_numpy(), rtol=1e-5)
    # traversals: one panel per column, a line per latent dimension over its swept values
    traversal_axes = [ax for ax in figures["traversals"].axes if ax.get_title()]
    assert len(traversal_axes) == 5 and all(len(ax.lines) == 2 for ax in traversal_axes)
    assert all(len(line.get_ydata()) == 9 for line in traversal_axes[0].lines)
