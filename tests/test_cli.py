import json

import numpy as np
import pytest
import torch
import yaml
from conftest import FAST

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


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    from vaekit.cli import main

    out = tmp_path_factory.mktemp("runs") / "digits"
    main(["train", "--data", "digits", "--latent-dim", "3", "--epochs", "4", "--out", str(out), *FAST])
    return out


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
    assert summary["elbo"] == pytest.approx(-(summary["rate"] + summary["distortion"]))
    assert summary["nll_samples"] == 10 and summary["nll"] <= -summary["elbo"] + 1.0
    assert summary["versions"]["torch"] == torch.__version__
    rows = [json.loads(line) for line in (digits_run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
    assert {"seconds", "beta", "train_loss", "test_loss", "train_rate", "test_distortion"} <= set(rows[0])
    config = yaml.safe_load((digits_run / "config.yaml").read_text())
    assert config["format_version"] == 1 and config["model"]["latent_dim"] == 3
    page = (digits_run / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 7 and "http" not in page.split("<body>")[1]


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
    terms = vaekit.evaluate.per_example_terms(model, data.x_test, seed=0)
    assert float(terms["distortion"].mean()) == pytest.approx(summary["distortion"], rel=1e-5)


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
    assert cli("sample", digits_run, "-n", "5", "--out", tmp_path / "s.npy")[0] == 0
    s = np.load(tmp_path / "s.npy")
    assert s.shape == (5, 1, 8, 8) and 0 <= s.min() and s.max() <= 16  # the user's units (0-16)
    assert cli("encode", digits_run, "--data", "digits", "--out", tmp_path / "z.csv")[0] == 0
    lines = (tmp_path / "z.csv").read_text().splitlines()
    assert lines[0].split(",")[:3] == ["z1_mean", "z2_mean", "z3_mean"] and len(lines) == 1798
    assert cli("score", digits_run, "--data", "digits", "--out", tmp_path / "a.csv")[0] == 0
    table = np.loadtxt(tmp_path / "a.csv", delimiter=",", skiprows=1)
    np.testing.assert_allclose(table[:, 1], table[:, 2] + table[:, 3], rtol=1e-6)
    before = (digits_run / "report.html").stat().st_mtime_ns
    assert cli("report", digits_run)[0] == 0
    assert (digits_run / "report.html").stat().st_mtime_ns > before
    code, out, _ = cli("evaluate", digits_run, "--nll-samples", "20", "--json")
    assert code == 0 and json.loads(out)["nll_samples"] == 20


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
    for command in ("train", "evaluate", "sample", "encode", "score", "report", "datasets"):
        code, out, _ = cli(command, "--help")
        assert code == 0 and "Usage" in out
