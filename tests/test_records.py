"""Numbers in the field's units and records that match what ran: bits/dim in the papers'
convention, an ELBO that never reads above the IWAE bound, and what a run folder records."""

from __future__ import annotations

import hashlib
import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml
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


# ----------------------------------------------------------------------------- resume rules


def _rows(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _config(run):
    return yaml.safe_load((run / "config.yaml").read_text())


def test_resume_applies_and_records_loop_changes_and_refuses_the_rest(cli, tmp_path):
    run = tmp_path / "run"
    code, _, err = cli(
        "train", "--data", "digits", "--epochs", "2", "--lr-schedule", "cosine", "--out", run, *FAST
    )
    assert code == 0, err
    files = {name: (run / name).read_bytes() for name in ("metrics.jsonl", "summary.json", "config.yaml")}
    # a finished run says so and touches nothing
    code, out, err = cli("train", "--resume", run, "--quiet")
    assert code == 0 and "has finished: it trained all its 2 epochs" in out and "--epochs" in out
    assert {name: (run / name).read_bytes() for name in files} == files
    # fewer epochs, or a change of model or objective: one sentence, nothing touched
    code, _, err = cli("train", "--resume", run, "--epochs", "1", "--quiet")
    assert code == 2 and "would undo them: give --epochs 3 or more" in err
    code, _, err = cli(
        "train", "--resume", run, "--epochs", "4", "--latent-dim", "5", "--beta", "2", "--quiet"
    )
    assert code == 2 and "--beta, --latent-dim cannot change on --resume" in err
    assert {name: (run / name).read_bytes() for name in files} == files
    # extending a cosine run: the added epochs run the schedule again (said), not from where it stopped
    code, _, err = cli("train", "--resume", run, "--epochs", "4", "--quiet")
    assert code == 0 and "run the cosine schedule again over the added epochs" in err
    rows = _rows(run)
    assert [r["segment"] for r in rows] == [0, 0, 1, 1]
    assert [r["lr"] for r in rows[2:]] == pytest.approx([r["lr"] for r in rows[:2]], rel=1e-12)
    # new loop settings apply from the next epoch and are recorded with the epoch they start at
    code, _, err = cli(
        "train", "--resume", run, "--epochs", "5", "--lr", "5e-3", "--batch-size", "32", "--lr-schedule",
        "constant", "--nll-samples", "12", "--quiet",
    )  # fmt: skip
    assert (
        code == 0
        and "from epoch 5: batch_size 64 -> 32, lr 0.001 -> 0.005, lr_schedule cosine -> constant" in err
    )
    rows = _rows(run)
    assert (
        [r["epoch"] for r in rows] == [1, 2, 3, 4, 5] and rows[-1]["lr"] == 5e-3 and rows[-1]["segment"] == 2
    )
    config = _config(run)
    segments = config["train"]["segments"]
    assert [(s["from_epoch"], s["until_epoch"]) for s in segments] == [(0, 2), (2, 4), (4, 5)]
    assert [(s["lr"], s["batch_size"], s["lr_schedule"]) for s in segments] == [
        (1e-3, 64, "cosine"), (1e-3, 64, "cosine"), (5e-3, 32, "constant")
    ]  # fmt: skip
    assert (config["train"]["epochs"], config["train"]["lr"], config["train"]["batch_size"]) == (5, 5e-3, 32)
    assert (config["options"]["epochs"], config["options"]["lr"], config["options"]["nll_samples"]) == (
        5,
        5e-3,
        12,
    )
    assert [e["from_epoch"] for e in config["environment"]] == [0, 2, 4]
    assert config["environment"][-1]["device"] == "cpu" and config["environment"][-1]["versions"]["torch"]
    assert json.loads((run / "summary.json").read_text())["nll_samples"] == 12


def test_resume_mid_epoch_with_new_settings_finishes_that_epoch_as_it_began(tmp_path, monkeypatch):
    """Ctrl-C inside epoch 2 of 3, resumed with --epochs 4 and a new learning rate: epoch 2 ends
    with the settings it started with (the same bytes as an uninterrupted run), epochs 3-4 use
    the new ones."""
    from test_lr_schedule import _digits, _interrupted_run, _model

    from vaekit import train as train_module

    data = _digits()
    settings = {"epochs": 3, "lr": 5e-3, "lr_schedule": "cosine", "progress": False, "nll_samples": 0}
    whole = train_module.fit(_model(data), data, out=tmp_path / "whole", **settings)
    cut = _interrupted_run(data, tmp_path / "cut", monkeypatch, settings, at_step=30)
    new = {**settings, "epochs": 4, "lr": 1e-3, "lr_schedule": "constant"}
    resumed = train_module.fit(_model(data), data, out=cut, resume=True, **new)
    for a, b in zip(whole.history[:2], resumed.history[:2], strict=True):
        assert {k: v for k, v in a.items() if k != "seconds"} == {
            k: v for k, v in b.items() if k != "seconds"
        }
    assert [r["lr"] for r in resumed.history[2:]] == [1e-3, 1e-3]
    assert [r["segment"] for r in resumed.history] == [0, 0, 1, 1]
    assert [s["from_epoch"] for s in _config(cut)["train"]["segments"]] == [0, 2]


def test_a_run_whose_first_epoch_failed_starts_again_with_resume(cli, tmp_path):
    run = tmp_path / "run"
    code, _, err = cli("train", "--data", "digits", "--epochs", "1", "--lr", "1e4", "--out", run, *FAST)
    assert code == 3 and f"vaekit train --resume {run} --lr X" in err
    code, _, err = cli("train", "--data", "digits", "--epochs", "1", "--out", run, *FAST)
    assert code == 2 and "never finished an epoch; start it again with --resume" in err
    code, _, err = cli("train", "--resume", run, "--lr", "1e-3", "--quiet")
    assert code == 0, err
    assert "no finished epoch to continue from" in err
    assert _config(run)["train"]["lr"] == 1e-3 and [r["epoch"] for r in _rows(run)] == [1]
    assert np.isfinite(json.loads((run / "summary.json").read_text())["elbo"])


def test_a_run_is_rebuilt_from_its_record_alone(cli, tmp_path):
    """config.yaml's options and segments say what ran: replaying them (train, then one resume
    per segment) gives the same weights and the same numbers."""
    a = tmp_path / "a"
    assert cli("train", "--data", "digits", "--epochs", "2", "--seed", "3", "--out", a, *FAST)[0] == 0
    code, _, err = cli(
        "train", "--resume", a, "--epochs", "3", "--lr", "3e-3", "--batch-size", "32", "--quiet"
    )
    assert code == 0, err
    config = _config(a)
    options, segments = dict(config["options"]), config["train"]["segments"]
    ends = [s["from_epoch"] for s in segments[1:]] + [config["train"]["epochs"]]
    first = {k: v for k, v in segments[0].items() if k not in ("from_epoch", "until_epoch")}
    (tmp_path / "b.yaml").write_text(yaml.safe_dump({**options, **first, "epochs": ends[0]}))
    b = tmp_path / "b"
    assert cli("train", "--config", tmp_path / "b.yaml", "--out", b, "--quiet")[0] == 0
    for segment, end in zip(segments[1:], ends[1:], strict=True):
        args = ["--epochs", end, "--lr", segment["lr"], "--batch-size", segment["batch_size"]]
        args += ["--lr-schedule", segment["lr_schedule"], "--lr-min", segment["lr_min"]]
        code, _, err = cli("train", "--resume", b, *args, "--quiet")
        assert code == 0, err
    assert (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes()
    sa, sb = (json.loads((r / "summary.json").read_text()) for r in (a, b))
    assert {k: v for k, v in sa.items() if k != "seconds"} == {k: v for k, v in sb.items() if k != "seconds"}
    assert _config(b)["data"]["content_sha256"] == config["data"]["content_sha256"]


def test_the_data_is_identified_by_its_content(cli, tmp_path):
    x = np.random.default_rng(6).normal(size=(80, 3))
    path = tmp_path / "t.csv"
    np.savetxt(path, x, delimiter=",", header="a,b,c", comments="")
    run = tmp_path / "run"
    assert cli("train", "--data", path, "--epochs", "1", "--out", run, *FAST)[0] == 0
    record = _config(run)["data"]
    assert record["content_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    np.savetxt(path, x * 2, delimiter=",", header="a,b,c", comments="")
    code, _, err = cli("evaluate", run, "--json")
    assert code == 0 and "has changed since run was trained on it" in err


def test_two_trainings_of_one_run_folder_never_interleave(cli, tmp_path):
    """A second `train --resume` of a folder another process is training into stops with one
    sentence naming that process; nothing of the first is touched."""
    import subprocess
    import sys
    import time

    run = tmp_path / "run"
    assert cli("train", "--data", "digits", "--epochs", "1", "--out", run, *FAST)[0] == 0
    first = subprocess.Popen(
        [sys.executable, "-m", "vaekit", "train", "--resume", str(run), "--epochs", "400", "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        owner = run / ".vaekit.lock.owner"
        deadline = time.time() + 60
        while not owner.exists() and time.time() < deadline:
            time.sleep(0.1)
        assert owner.exists(), "the first process never took the lock"
        code, _, err = cli("train", "--resume", run, "--epochs", "3", "--quiet")
        assert code == 2 and f"is being trained by process {first.pid} on" in err
        assert "wait for it to finish (or stop it), then run again" in err
    finally:
        first.kill()
        first.wait()


def test_dynamic_binarisation_draws_training_pixels_afresh_and_the_test_split_once(
    cli, tmp_path, monkeypatch
):
    from vaekit import datasets
    from vaekit import train as train_module
    from vaekit.model import VAE

    data = datasets.load("digits", binarize="dynamic")
    grey = datasets.load("digits")
    test = data.x_test
    assert set(np.unique(test)) <= {0.0, 1.0}
    np.testing.assert_array_equal(data.x_train, grey.x_train)  # training pixels stay grey
    # the test draw is a Bernoulli of the grey levels, and the same seed draws the same one
    assert abs(test.mean() - grey.x_test.mean()) < 0.01
    np.testing.assert_array_equal(datasets.load("digits", binarize="dynamic").x_test, test)

    seen = []
    original = train_module._Loop.step

    def record(self, batch, *args):
        seen.append(batch.x.clone())
        return original(self, batch, *args)

    monkeypatch.setattr(train_module._Loop, "step", record)
    model = VAE.for_data(data, latent_dim=2, hidden=(32,), seed=0)
    train_module.fit(model, data, epochs=2, batch_size=4000, progress=False, nll_samples=0)
    assert len(seen) == 2 and all(set(np.unique(x.numpy())) <= {0.0, 1.0} for x in seen)
    # each epoch a fresh draw: the pixel means match the grey levels', the draws differ
    assert abs(float(seen[0].mean()) - float(grey.x_train.mean())) < 0.01
    assert not torch.equal(seen[0].sum(0), seen[1].sum(0))

    code, _, err = cli(
        "train",
        "--data",
        "digits",
        "--binarize",
        "dynamic",
        "--epochs",
        "1",
        "--out",
        tmp_path / "run",
        *FAST,
    )
    assert code == 0, err
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["bits_per_dim_convention"] == "discrete: the Bernoulli probability of binary data"
    assert set(np.unique(__import__("vaekit").runs.load_data(tmp_path / "run").x_test)) <= {0.0, 1.0}
    table = np.random.default_rng(0).normal(size=(30, 3))
    np.savetxt(tmp_path / "t.csv", table, delimiter=",", header="a,b,c", comments="")
    code, _, err = cli(
        "train", "--data", tmp_path / "t.csv", "--binarize", "dynamic", "--out", tmp_path / "r2", *FAST
    )
    assert code == 2 and "--binarize applies to images or arrays in [0, 1]" in err


def test_resume_edge_cases_found_by_a_new_user(cli, tmp_path):
    run = tmp_path / "run"
    args = ["--data", "digits", "--epochs", "1", "--lr-schedule", "cosine", "--lr-min", "1e-5", "--out", run]
    assert cli("train", *args, *FAST)[0] == 0
    # the value a run already has (its resolved objective) is no change
    code, _, err = cli("train", "--resume", run, "--epochs", "2", "--objective", "beta-elbo", "--quiet")
    assert code == 0, err
    # switching to a constant rate, as the warm-restart warning advises, leaves the cosine end point behind
    code, _, err = cli(
        "train", "--resume", run, "--epochs", "3", "--lr-schedule", "constant", "--lr", "1e-4", "--quiet"
    )
    assert code == 0, err
    assert _config(run)["train"]["segments"][-1]["lr_min"] == 0.0
    # a finished run without its checkpoint is never retrained from scratch over its weights
    weights = (run / "model.safetensors").read_bytes()
    (run / "checkpoint.pt").unlink()
    code, _, err = cli("train", "--resume", run, "--epochs", "4", "--quiet")
    assert code == 2 and "has trained 3 epochs but has no checkpoint.pt" in err
    assert (run / "model.safetensors").read_bytes() == weights
    # a damaged record is one sentence
    config = _config(run)
    config["train"]["segments"][0]["from_epoch"] = 5
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    (tmp_path / "other").mkdir()
    code, _, err = cli("train", "--data", "digits", "--epochs", "1", "--out", tmp_path / "other" / "r", *FAST)
    assert code == 0
    import shutil

    shutil.copy(tmp_path / "other" / "r" / "checkpoint.pt", run / "checkpoint.pt")
    code, _, err = cli("train", "--resume", run, "--epochs", "4", "--quiet")
    assert code == 2 and "train.segments is damaged" in err and "Traceback" not in err
    config["options"] = "x"
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    code, _, err = cli("train", "--resume", run, "--epochs", "4", "--quiet")
    assert code == 2 and "options entry is damaged" in err


def test_a_run_folder_config_trains_again(cli, tmp_path):
    a = tmp_path / "a"
    assert cli("train", "--data", "digits", "--epochs", "1", "--latent-dim", "3", "--out", a, *FAST)[0] == 0
    code, _, err = cli("train", "--config", a / "config.yaml", "--out", tmp_path / "b", "--quiet")
    assert code == 0, err
    assert (a / "model.safetensors").read_bytes() == (tmp_path / "b" / "model.safetensors").read_bytes()


def test_resume_with_out_elsewhere_and_an_all_missing_row(cli, tmp_path):
    run = tmp_path / "run"
    assert cli("train", "--data", "digits", "--epochs", "1", "--out", run, *FAST)[0] == 0
    code, _, err = cli("train", "--resume", run, "--epochs", "2", "--out", tmp_path / "elsewhere", "--quiet")
    assert code == 2 and "--out" in err and "has no effect" in err and not (tmp_path / "elsewhere").exists()
    from vaekit.datasets import tables

    (tmp_path / "gap.csv").write_text("a,b,c\n,,\n")
    frame = tables.read_frame(tmp_path / "gap.csv").frame
    assert frame.shape == (1, 3) and frame.isna().all(axis=None)  # a row of missing cells, not "no rows"


def test_review_findings_overwrite_waits_for_the_lock_and_resume_keeps_its_data(cli, tmp_path):
    """--overwrite never deletes the files of a run another process is training; a resume on
    changed data is refused; the lock leaves nothing behind."""
    import subprocess
    import sys
    import time

    path = tmp_path / "t.csv"
    np.savetxt(
        path, np.random.default_rng(1).normal(size=(80, 3)), delimiter=",", header="a,b,c", comments=""
    )
    run = tmp_path / "run"
    assert cli("train", "--data", path, "--epochs", "1", "--out", run, *FAST)[0] == 0
    assert not any(p.name.startswith(".vaekit.lock") for p in run.iterdir())
    np.savetxt(
        path, np.random.default_rng(2).normal(size=(80, 3)), delimiter=",", header="a,b,c", comments=""
    )
    code, _, err = cli("train", "--resume", run, "--epochs", "2", "--quiet")
    assert code == 2 and "data has changed since it was trained" in err
    busy = tmp_path / "busy"
    first = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vaekit",
            "train",
            "--data",
            "digits",
            "--epochs",
            "400",
            "--out",
            str(busy),
            "--quiet",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 60
        while not (busy / "config.yaml").exists() and time.time() < deadline:
            time.sleep(0.1)
        assert (busy / ".vaekit.lock.owner").exists()
        before = (busy / "config.yaml").read_bytes()
        code, _, err = cli("train", "--data", "digits", "--out", busy, "--overwrite", *FAST)
        assert code == 2 and "is being trained by process" in err
        assert (busy / "config.yaml").read_bytes() == before  # nothing of the first deleted
    finally:
        first.kill()
        first.wait()
