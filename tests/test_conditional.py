"""The label-conditional VAE (Sohn et al., 2015) and the new priors, end to end: train from the
command line, draw a chosen class, reload with labels, and the run folder's report."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml
from conftest import FAST

from vaekit import datasets, evaluate, runs

EPOCHS = "25"


@pytest.fixture(scope="module")
def conditional_run(tmp_path_factory):
    from vaekit.cli import main

    out = tmp_path_factory.mktemp("cvae") / "run"
    try:
        main(
            [
                "train",
                "--data",
                "digits",
                "--condition",
                "labels",
                "--latent-dim",
                "2",
                "--epochs",
                EPOCHS,
                "--out",
                str(out),
                *FAST,
            ]
        )
    except SystemExit as e:
        assert e.code in (0, None)
    return out


def test_samples_of_two_labels_look_like_those_labels(conditional_run, cli, tmp_path):
    """A probe trained on the real digits reads the class we asked for from the samples."""
    from sklearn.linear_model import LogisticRegression

    data = datasets.load("digits", test_size=0.2)
    probe = LogisticRegression(max_iter=2000).fit(
        data.x_train.reshape(len(data.x_train), -1), data.labels("train")
    )
    rates = {}
    for label in ("3", "7"):
        path = tmp_path / f"s{label}.npy"
        code, out, err = cli("sample", conditional_run, "--label", label, "-n", "200", "--out", path)
        assert code == 0, err
        assert f"of class {label}" in out
        samples = np.load(path) / 16.0  # sample writes user units: digits are 0..16
        predicted = probe.predict(samples.reshape(len(samples), -1))
        rates[label] = float(np.mean(predicted == int(label)))
    # chance is 1/10; the two classes' samples differ as the labels do
    assert rates["3"] > 0.5 and rates["7"] > 0.5, rates


def test_reload_encode_and_score_use_the_labels(conditional_run, cli, tmp_path):
    model = runs.load(conditional_run)
    assert model.conditional and model.classes == [str(i) for i in range(10)] and not model.beta_conditioned
    config = yaml.safe_load((conditional_run / "config.yaml").read_text())
    assert config["model"]["condition"] == "labels"
    data = runs.load_data(conditional_run)
    labels = model.data_classes(data, index=np.arange(len(data.x)))
    expected = evaluate.encode_means(model, data.x, labels=labels)[0]
    # the label changes the code: encoding every digit as a 0 gives other means
    as_zero = evaluate.encode_means(model, data.x, labels=torch.zeros(len(data.x), dtype=torch.long))[0]
    assert np.abs(expected - as_zero).max() > 0.1
    code, _, err = cli("encode", conditional_run, "--data", "digits", "--out", tmp_path / "z.npy")
    assert code == 0, err
    np.testing.assert_allclose(np.load(tmp_path / "z.npy"), expected, rtol=1e-5, atol=1e-5)
    summary = yaml.safe_load((conditional_run / "summary.json").read_text())
    # the summary's ELBO is the labelled model's: recompute it through the loss path
    again = evaluate.nll(
        model, data.x_test, samples=summary["nll_samples"], labels=model.data_classes(data, "test")
    )
    assert summary["elbo"] == pytest.approx(float(again.elbo_per_example.mean()), rel=1e-6)
    assert summary["nll"] == pytest.approx(again.nll, rel=1e-6)
    assert (conditional_run / "figures" / "samples.png").exists()


def test_conditional_likelihood_per_batch_equals_one_example_at_a_time(conditional_run):
    """The IS-NLL repeats each example's label over its importance samples: a batch of mixed
    labels gives each example the figure it gets alone (same noise: one example per batch)."""
    model = runs.load(conditional_run)
    data = runs.load_data(conditional_run)
    x = torch.as_tensor(data.x_test[:6])
    labels = model.data_classes(data, "test")[:6]
    together = evaluate.nll(model, x, samples=50, labels=labels, batch_size=1, seed=4).per_example
    alone = [
        evaluate.nll(model, x[i : i + 1], samples=50, labels=labels[i : i + 1], seed=4).per_example[0]
        for i in range(6)
    ]
    wrong = evaluate.nll(model, x, samples=50, labels=(labels + 1) % 10, batch_size=1, seed=4).per_example
    np.testing.assert_allclose(together[:1], alone[:1], rtol=1e-6)
    batched = evaluate.nll(model, x, samples=50, labels=labels, seed=4).per_example
    assert np.abs(batched - np.array(alone)).max() < 0.5  # other noise, same quantity
    assert wrong.mean() > together.mean() + 1.0  # the label is used: a wrong one explains x worse


def test_png_samples_say_what_they_show(conditional_run, cli, tmp_path):
    code, out, err = cli("sample", conditional_run, "-n", "20", "--out", tmp_path / "grid.png")
    assert code == 0, err
    assert "wrote 2 samples of each of 10 classes" in out


def test_sampling_a_class_the_model_never_saw_is_one_sentence(conditional_run, cli, tmp_path):
    code, _, err = cli("sample", conditional_run, "--label", "12", "--out", tmp_path / "x.npy")
    assert code == 2 and "The label '12' is not one this model was trained on" in err
    assert not (tmp_path / "x.npy").exists()


def test_condition_labels_without_labels_is_refused(cli, tmp_path):
    x = np.random.default_rng(0).random((50, 4)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    code, _, err = cli(
        "train",
        "--data",
        tmp_path / "x.npy",
        "--condition",
        "labels",
        "--epochs",
        "1",
        "--out",
        tmp_path / "run",
        *FAST,
    )
    assert code == 2 and "--condition labels needs labels" in err and "Traceback" not in err
    assert not (tmp_path / "run" / "model.safetensors").exists()


def test_label_and_beta_condition_together():
    """One model conditioned on labels and on beta: the condition vector is [log beta, one-hot]."""
    from vaekit.model import VAE

    data = datasets.load("digits", test_size=0.2)
    model = VAE.for_data(data, latent_dim=2, hidden=(16,), beta_range=(0.5, 4.0), condition="labels")
    assert model.encoder.net[0].in_features == 64 + 1 + 10
    from vaekit.batch import Batch

    c = model.condition(
        Batch(torch.zeros(2, 1, 8, 8), labels=torch.tensor([3, 0]), beta=torch.tensor([2.0, 0.5]))
    )
    expected = torch.zeros(2, 11)
    expected[:, 0] = torch.log(torch.tensor([2.0, 0.5]))
    expected[0, 1 + 3] = expected[1, 1 + 0] = 1
    torch.testing.assert_close(c, expected)
    x = torch.as_tensor(data.x_test[:5])
    nll = evaluate.nll(model, x, samples=7, beta=2.0, labels=torch.tensor([0, 1, 2, 3, 4]))
    assert np.isfinite(nll.per_example).all()


@pytest.mark.parametrize("prior", ["mog", "vamp"])
def test_mixture_priors_train_end_to_end(prior, cli, tmp_path):
    out = tmp_path / prior
    code, _, err = cli(
        "train",
        "--data",
        "digits",
        "--prior",
        prior,
        "--prior-components",
        "4",
        "--latent-dim",
        "2",
        "--epochs",
        "3",
        "--out",
        out,
        *FAST,
    )
    assert code == 0, err
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["model"]["prior"]["name"] == prior and config["model"]["prior"]["components"] == 4
    model = runs.load(out)
    assert model.prior.name == prior
    # the reloaded prior is the trained one (its parameters are in model.safetensors)
    state = {k: v for k, v in model.state_dict().items() if k.startswith("prior.")}
    assert state and all(torch.isfinite(v).all() for v in state.values())
    summary = yaml.safe_load((out / "summary.json").read_text())
    assert np.isfinite(summary["nll"]) and summary["nll"] <= -summary["elbo"] + 1.0
    assert (out / "report.html").exists() and (out / "figures" / "latent_space.png").exists()


def test_bad_prior_options_are_one_sentence(cli, tmp_path):
    code, _, err = cli("train", "--data", "digits", "--prior", "flat", "--out", tmp_path / "a", *FAST)
    assert code == 2 and "Unknown prior 'flat'" in err
    code, _, err = cli("train", "--data", "digits", "--prior-components", "5", "--out", tmp_path / "b", *FAST)
    assert code == 2 and "--prior-components applies to the mog and vamp priors" in err
    code, _, err = cli(
        "train",
        "--data",
        "digits",
        "--prior",
        "vamp",
        "--beta-range",
        "0.5",
        "4",
        "--out",
        tmp_path / "c",
        *FAST,
    )
    assert code == 2 and "VampPrior" in err and "--prior mog" in err
    code, _, err = cli("train", "--data", "digits", "--objective", "elbo2", "--out", tmp_path / "d", *FAST)
    assert code == 2 and "Unknown objective 'elbo2'" in err
