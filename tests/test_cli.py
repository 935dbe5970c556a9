import json
import shutil

import numpy as np
import pytest
import torch
import yaml
from conftest import FAST
from reference import (
    gaussian_kl_to_standard_normal,
    importance_sampled_nll,
    mc_distortion,
)
from sklearn.datasets import load_digits

import vaekit

SUMMARY_KEYS = {
    "elbo",
    "rate",
    "distortion",
    "loss",
    "nll",
    "nll_samples",
    "bits_per_dim",
    "mse",
    "active_units",
    "knn_accuracy",
}


def test_train_writes_the_whole_run_folder(digits_run):
    for name in (
        "config.yaml",
        "model.safetensors",
        "checkpoint.pt",
        "metrics.jsonl",
        "summary.json",
        "report.html",
    ):
        assert (digits_run / name).stat().st_size > 0, name
    for fig in (
        "reconstructions",
        "samples",
        "latent_space",
        "traversals",
        "training_curves",
        "latent_map",
        "manifold",
    ):
        png = (digits_run / "figures" / f"{fig}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 2000
    summary = json.loads((digits_run / "summary.json").read_text())
    assert SUMMARY_KEYS <= set(summary)
    assert summary["versions"]["torch"] == torch.__version__
    rows = [json.loads(line) for line in (digits_run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
    assert {"seconds", "beta", "train_loss", "test_loss", "train_rate", "test_distortion"} <= set(rows[0])
    config = yaml.safe_load((digits_run / "config.yaml").read_text())
    assert config["format_version"] == 1 and config["model"]["latent_dim"] == 3
    page = (digits_run / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 7 and "http" not in page.split("<body>")[1]


def test_summary_numbers_match_a_computation_by_hand(digits_run):
    """summary.json against the formulas written out in the test: the closed-form Gaussian KL
    (rate), a 50-draw Monte-Carlo Bernoulli log-likelihood (distortion) and a hand-written
    importance-sampled -log p(x), on digits scaled by its full range 16."""
    summary = json.loads((digits_run / "summary.json").read_text())
    model = vaekit.load(digits_run)
    data = vaekit.datasets.load("digits")
    x_test = torch.as_tensor(load_digits().images[data.test_idx][:, None] / 16.0, dtype=torch.float32)
    np.testing.assert_array_equal(data.x_test, x_test.numpy())  # grey levels 0-16 read as /16
    with torch.no_grad():
        q = model.encode(x_test)
    rate = gaussian_kl_to_standard_normal(q.mean, q.stddev).mean()
    # elbo, distortion and rate are averages over the IS-NLL's own K = 10 draws per example: the
    # rate (log q - log p(z) at the draws) estimates the closed-form KL
    assert summary["elbo_samples"] == summary["nll_samples"] == 10
    assert abs(summary["rate"] - rate) < 4 * summary["rate_stderr"] + 0.02 * rate, (summary["rate"], rate)
    distortion, spread = mc_distortion(model, x_test)
    assert abs(summary["distortion"] - distortion) < 4 * spread + 1e-3, (summary["distortion"], distortion)
    assert summary["elbo"] == pytest.approx(-(summary["rate"] + summary["distortion"]), rel=1e-9)
    assert summary["elbo"] <= summary["iwae_bound"] == -summary["nll"]
    assert 0 < summary["elbo_stderr"] < 5 and 0 < summary["nll_stderr"] < 5
    # IS with K = 10 lies between a K = 1000 estimate (less biased) and -ELBO
    nll_1000 = importance_sampled_nll(model, x_test, 1000)
    assert nll_1000 - 0.05 < summary["nll"] < distortion + rate + 4 * spread
    assert summary["n_test"] == len(x_test) == 359  # round(0.2 * 1797)


def test_test_elbo_improves_over_training(digits_run):
    rows = [json.loads(line) for line in (digits_run / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["test_elbo"] > rows[0]["test_elbo"] + 1.0


def test_load_round_trips_the_model(digits_run):
    model = vaekit.load(digits_run)
    again = vaekit.load(digits_run)
    data = vaekit.datasets.load("digits")
    x = torch.as_tensor(data.x_test[:16])
    q1, q2 = model.encode(x), again.encode(x)
    assert torch.equal(q1.mean, q2.mean) and torch.equal(q1.stddev, q2.stddev)
    # the loaded weights are the trained ones: its test ELBO is the one in summary.json
    summary = json.loads((digits_run / "summary.json").read_text())
    again = vaekit.evaluate.nll(model, data.x_test, samples=summary["nll_samples"], seed=0)
    assert again.nll == pytest.approx(summary["nll"], rel=1e-6)
    assert float(again.elbo_per_example.mean()) == pytest.approx(summary["elbo"], rel=1e-6)
    assert float(again.distortion_per_example.mean()) == pytest.approx(summary["distortion"], rel=1e-6)


def test_same_seed_gives_identical_numbers(cli, tmp_path):
    args = ["train", "--data", "digits", "--epochs", "2", *FAST]
    assert cli(*args, "--out", tmp_path / "a")[0] == 0
    assert cli(*args, "--out", tmp_path / "b")[0] == 0
    a = (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()
    b = (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()
    strip = lambda rows: [{k: v for k, v in json.loads(r).items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(a) == strip(b)
    assert (tmp_path / "a/model.safetensors").read_bytes() == (tmp_path / "b/model.safetensors").read_bytes()
    sa = json.loads((tmp_path / "a/summary.json").read_text())
    sb = json.loads((tmp_path / "b/summary.json").read_text())
    assert {k: v for k, v in sa.items() if k != "seconds"} == {k: v for k, v in sb.items() if k != "seconds"}


def test_mnist5k_end_to_end(cli, tmp_path):
    code, out, err = cli("train", "--data", "mnist5k", "--epochs", "2", "--out", tmp_path / "m", *FAST)
    assert code == 0, err
    assert "elbo" in out and "knn_accuracy" in out
    summary = json.loads((tmp_path / "m/summary.json").read_text())
    assert SUMMARY_KEYS <= set(summary) and summary["knn_accuracy"] > 0.2  # chance is 0.1


def test_sample_encode_score_and_report(cli, digits_run, tmp_path):
    """sample, encode and score work in the user's units (digits: grey levels 0-16), checked
    against the model's own nets evaluated in the test."""
    run = tmp_path / "run"
    shutil.copytree(digits_run, run)  # evaluate and report rewrite files: leave the fixture alone
    model = vaekit.load(run)
    raw = load_digits().images[:, None].astype(np.float32)  # (1797, 1, 8, 8) in 0..16

    assert cli("sample", run, "-n", "5", "--out", tmp_path / "s.npy")[0] == 0
    s = np.load(tmp_path / "s.npy")
    with torch.no_grad():
        torch.manual_seed(0)  # the command's default --seed
        expected = 16.0 * torch.sigmoid(model.decoder(torch.randn(5, 3), None)).numpy()
    assert s.shape == (5, 1, 8, 8)
    np.testing.assert_allclose(s, expected, rtol=1e-5, atol=1e-5)
    assert s.max() > 1.5  # user units (0-16), not the model's [0, 1]

    assert cli("encode", run, "--data", "digits", "--out", tmp_path / "z.csv")[0] == 0
    lines = (tmp_path / "z.csv").read_text().splitlines()
    assert lines[0].split(",") == [f"z{i}_mean" for i in (1, 2, 3)] + [f"z{i}_std" for i in (1, 2, 3)]
    table = np.loadtxt(tmp_path / "z.csv", delimiter=",", skiprows=1)
    with torch.no_grad():
        q = model.encode(torch.as_tensor(raw / 16.0))
    assert table.shape == (1797, 6)
    np.testing.assert_allclose(table[:, :3], q.mean.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(table[:, 3:], q.stddev.numpy(), rtol=1e-5, atol=1e-6)

    assert cli("score", run, "--data", "digits", "--out", tmp_path / "a.csv")[0] == 0
    header = (tmp_path / "a.csv").read_text().splitlines()[0].split(",")
    assert header == ["index", "label", "neg_elbo", "distortion", "rate", "squared_error"]
    labels = [line.split(",")[1] for line in (tmp_path / "a.csv").read_text().splitlines()[1:]]
    assert labels == [str(v) for v in load_digits().target]  # the data's labels, kept row by row
    scores = np.loadtxt(tmp_path / "a.csv", delimiter=",", skiprows=1, usecols=(0, 2, 3, 4, 5))
    x = torch.as_tensor(raw / 16.0)
    np.testing.assert_array_equal(scores[:, 0], np.arange(1797))
    np.testing.assert_allclose(scores[:, 3], gaussian_kl_to_standard_normal(q.mean, q.stddev), rtol=1e-5)
    with torch.no_grad():
        recon = torch.sigmoid(model.decoder(q.mean, None)).reshape(x.shape)
    np.testing.assert_allclose(scores[:, 4], (recon - x).pow(2).flatten(1).sum(1).numpy(), rtol=1e-4)
    distortion, spread = mc_distortion(model, x)
    assert abs(scores[:, 2].mean() - distortion) < 4 * spread + 1e-3
    np.testing.assert_allclose(scores[:, 1], scores[:, 2] + scores[:, 3], rtol=1e-6)

    before = (run / "report.html").stat().st_mtime_ns
    assert cli("report", run)[0] == 0
    assert (run / "report.html").stat().st_mtime_ns > before
    code, out, _ = cli("evaluate", run, "--nll-samples", "20", "--json")
    assert code == 0
    result = json.loads(out)
    assert json.loads((run / "summary.json").read_text())["nll"] == result["nll"]
    x_test = torch.as_tensor(raw[vaekit.datasets.load("digits").test_idx] / 16.0)
    nll_1000 = importance_sampled_nll(model, x_test, 1000)
    # K = 20 is biased upward from the K = 1000 figure, and less than the K = 10 one
    assert (
        nll_1000 - 0.05 < result["nll"] < json.loads((digits_run / "summary.json").read_text())["nll"] + 0.05
    )


def test_config_file_and_command_line_override(cli, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data: digits\nlatent_dim: 4\nbeta: 2.0\nepochs: 1\nhidden: [32]\nnll_samples: 5\n")
    code, _, err = cli("train", "--config", cfg, "--beta", "0.5", "--out", tmp_path / "r", "--quiet")
    assert code == 0, err
    config = yaml.safe_load((tmp_path / "r/config.yaml").read_text())
    assert config["model"]["latent_dim"] == 4 and config["model"]["hidden"] == [32]
    assert config["model"]["beta"] == 0.5


def test_autoencoder_and_resume(cli, tmp_path):
    args = ["train", "--data", "digits", "--model", "ae", *FAST]
    assert cli(*args, "--epochs", "3", "--out", tmp_path / "full")[0] == 0
    summary = json.loads((tmp_path / "full/summary.json").read_text())
    assert summary["rate"] is None and summary["elbo"] is None and "nll" not in summary
    assert cli(*args, "--epochs", "1", "--out", tmp_path / "part")[0] == 0
    assert cli("train", "--resume", tmp_path / "part", "--epochs", "3", "--quiet")[0] == 0
    assert (tmp_path / "full/model.safetensors").read_bytes() == (
        tmp_path / "part/model.safetensors"
    ).read_bytes()


def test_help_on_every_command(cli):
    """--help works on every command and lists each of its options."""
    from vaekit.cli import cli as group

    assert len(group.commands) >= 10
    for name, command in group.commands.items():
        code, out, _ = cli(name, "--help")
        assert code == 0 and out.startswith(f"Usage: vaekit {name}"), name
        for param in command.params:
            for flag in param.opts:
                if flag.startswith("--"):
                    assert flag in out, (name, flag)


def test_progress_bar_and_data_description_without_quiet(cli, tmp_path):
    """The default (non --quiet) path: the data line, a tqdm bar over epochs and the summary."""
    args = ["train", "--data", "digits", "--epochs", "2", "--hidden", "32", "--nll-samples", "5"]
    code, out, err = cli(*args, "--device", "cpu", "--out", tmp_path / "r")
    assert code == 0, err
    assert "digits: 1797 examples (1438 train, 359 test) of shape (1, 8, 8), image" in err
    assert "2/2" in err and "epoch" in err and "test loss" in err
    rows = [json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert f"test loss {rows[-1]['test_loss']:.2f}" in err
    assert out.startswith(f"{tmp_path / 'r'}: elbo ")


def test_bf16_mixed_precision_trains_close_to_full_precision(cli, tmp_path):
    """--precision bf16-mixed goes through Fabric's autocast: different weights from 32-true,
    the same loss within bf16's error."""
    args = ["train", "--data", "digits", "--epochs", "2", *FAST]
    assert cli(*args, "--out", tmp_path / "full")[0] == 0
    code, _, err = cli(*args, "--precision", "bf16-mixed", "--out", tmp_path / "bf16")
    assert code == 0, err
    config = yaml.safe_load((tmp_path / "bf16" / "config.yaml").read_text())
    assert config["options"]["precision"] == "bf16-mixed"
    full = (tmp_path / "full" / "model.safetensors").read_bytes()
    assert (tmp_path / "bf16" / "model.safetensors").read_bytes() != full
    a = json.loads((tmp_path / "full" / "summary.json").read_text())
    b = json.loads((tmp_path / "bf16" / "summary.json").read_text())
    assert b["elbo"] == pytest.approx(a["elbo"], rel=0.05)


def test_datasets_lists_the_built_ins_and_every_file_format(cli):
    code, out, _ = cli("datasets")
    assert code == 0
    for word in ("digits", "mnist5k", "sprites32", ".npz", ".parquet", ".h5", "TIFF", "--x-key", "--key"):
        assert word in out, word
