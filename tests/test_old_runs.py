"""Run folders written by vaekit 0.1.0 before the one-loss-path change (tests/fixtures/runs-0.1.0:
trained on digits, 2 epochs: a VAE with seed 3, a beta-conditioned VAE over [0.5, 4], an AE) still
load, evaluate to the same numbers, sample and resume."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import FAST

from vaekit import io, runs

FIXTURES = Path(__file__).parent / "fixtures" / "runs-0.1.0"
SAME = ("loss", "nll", "mse", "aggregate_posterior_kl", "knn_accuracy")
MONTE_CARLO = ("elbo", "rate", "distortion")


@pytest.fixture
def old_run(tmp_path):
    def copy(name):
        target = tmp_path / name
        shutil.copytree(FIXTURES / name, target)
        return target

    return copy


@pytest.mark.parametrize("name", ["plain", "cond", "ae"])
def test_old_runs_evaluate_to_the_numbers_they_were_written_with(name, old_run, cli):
    run = old_run(name)
    before = json.loads((run / "summary.json").read_text())
    code, _, err = cli("evaluate", run, "--json")
    assert code == 0, err
    after = json.loads((run / "summary.json").read_text())
    for key in SAME:
        if before.get(key) is None:
            assert after.get(key) is None, key
        else:
            assert after[key] == pytest.approx(before[key], rel=1e-6, abs=1e-9), key
    # elbo, distortion and rate now average the IS-NLL's K draws (once one draw): the same
    # figures up to the one draw's Monte-Carlo noise, and never above the IWAE bound
    for key in MONTE_CARLO:
        if before.get(key) is None:
            assert after.get(key) is None, key
        else:
            assert after[key] == pytest.approx(before[key], rel=0.02, abs=0.02), key
    if after.get("nll") is not None:
        assert after["elbo"] <= after["iwae_bound"]
    assert (run / "report.html").exists()


def test_the_beta_conditioned_attribute_was_renamed_and_old_runs_know_it(old_run, cli, tmp_path):
    model = runs.load(old_run("cond"))
    assert model.beta_conditioned and not model.conditional and model.beta_range == (0.5, 4.0)
    assert runs.load_objective(FIXTURES / "cond", model).name == "beta-elbo-conditioned"
    code, _, err = cli("sample", FIXTURES / "cond", "--beta", "2", "-n", "4", "--out", tmp_path / "s.npy")
    assert code == 0, err
    code, _, err = cli("sample", FIXTURES / "plain", "--label", "3", "--out", tmp_path / "t.npy")
    assert code == 2 and "--label needs a label-conditional run" in err


def test_an_old_run_resumes_its_history_unchanged(old_run, cli):
    run = old_run("plain")
    before = io.read_jsonl(run / "metrics.jsonl")
    code, _, err = cli("train", "--resume", run, "--epochs", "3", *FAST[-3:])
    assert code == 0, err
    after = io.read_jsonl(run / "metrics.jsonl")
    assert after[:2] == before and len(after) == 3
    assert set(before[0]) <= set(after[2])  # the same names are logged


def test_a_damaged_metrics_file_is_one_sentence_on_resume(old_run, cli):
    run = old_run("plain")
    (run / "metrics.jsonl").write_text('{"epoch": 1, "train_loss": 3\n{"epoch": 2')
    code, _, err = cli("train", "--resume", run, "--epochs", "3", "--quiet", "--device", "cpu")
    assert code == 2 and "metrics.jsonl line 1 is not valid JSON" in err and "Traceback" not in err
