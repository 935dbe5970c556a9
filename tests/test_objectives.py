"""Every registered objective through the one loss path: finite named per-example terms, the
ELBO at its neutral setting, and the same numbers from a training pass and a test pass."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vaekit import evaluate, objectives, train
from vaekit.batch import Batch
from vaekit.model import VAE

SHAPE = (6,)

# the model each objective trains and its neutral setting: where the objective equals
# distortion + rate (the negative ELBO); reconstruction's neutral value is the distortion
NEUTRAL = {
    "beta-elbo": ({}, {"warmup_epochs": 0.0}),
    "beta-elbo-conditioned": ({"beta_range": (0.1, 10.0)}, {}),
    "reconstruction": ({"model": "ae"}, {}),
    # the paper objectives at the setting where each is the ELBO (tests/test_objectives_papers.py
    # checks each paper's own property)
    "beta-tcvae": ({}, {"tc_weight": 1.0, "dataset_size": 1000}),
    "factorvae": ({}, {"gamma": 0.0, "disc_units": 8, "disc_layers": 2}),
    "dip-vae": ({}, {"lambda_od": 0.0, "lambda_d": 0.0}),
    "capacity": ({}, {"capacity_weight": 1.0, "capacity_max": 0.0, "capacity_epochs": 2.0}),
    "iwae": ({}, {"iwae_samples": 1}),
    "free-bits": ({}, {"free_bits": 0.0}),
}


def _tiny(model="vae", beta_range=None, seed=0) -> VAE:
    from vaekit import nets

    torch.manual_seed(seed)
    cond = 1 if beta_range else 0
    out = 2 * 2 if model == "vae" else 2
    enc, dec = nets.build("mlp", SHAPE, 2, out, [16], "tanh", cond)
    return VAE(enc, dec, 2, SHAPE, "gaussian", beta=1.0, model=model, beta_range=beta_range)


def test_every_objective_is_in_the_table():
    assert set(objectives.OBJECTIVES) == set(NEUTRAL), "give the new objective its neutral setting here"


def test_every_objective_declares_its_settings_where_the_command_line_reads_them():
    """The command line and config files read the objectives' settings from
    vaekit.config.OBJECTIVE_SETTINGS (no torch); each registered class takes its SETTINGS from
    there, in the declared order, and a setting there reaches `vaekit train`'s options."""
    from vaekit import cli, config

    assert list(objectives.OBJECTIVES) == list(config.OBJECTIVE_SETTINGS), "declare the new objective's row"
    for name, cls in objectives.OBJECTIVES.items():
        assert cls.SETTINGS == config.OBJECTIVE_SETTINGS[name], name
        for key, (kind, default, _) in cls.SETTINGS.items():
            option = cli.OPTIONS_BY_NAME[key]
            assert option.type is kind and (
                option.default == default or key in {o.name for o in config.options()}
            )


@pytest.mark.parametrize("name", sorted(NEUTRAL))
def test_objective_terms_neutral_setting_and_one_loss_path(name):
    model_kw, settings = NEUTRAL[name]
    model = _tiny(**model_kw)
    objective = objectives.make(name, model, **settings)
    x = torch.randn(32, *SHAPE, generator=torch.Generator().manual_seed(1))
    batch = Batch(x)
    noise = torch.randn(32, 2, generator=torch.Generator().manual_seed(7))

    model.train()
    out = objective(model, batch, noise, progress=3.0)
    assert out.loss.shape == (32,)
    assert out.terms and all(t.shape == (32,) and torch.isfinite(t).all() for t in out.terms.values())
    assert torch.isfinite(out.loss).all()

    # the neutral setting: the loss is the negative ELBO (reconstruction: the distortion)
    t = model.terms(x, noise=noise)
    expected = t.distortion if name == "reconstruction" else t.distortion + t.rate
    torch.testing.assert_close(out.loss, expected)

    # the test pass (evaluate.loss_terms, what metrics.jsonl's test_* and summary.json use) on the
    # same batch with the same noise gives the same per-example numbers
    tested = evaluate.loss_terms(
        model, x, objective, generator=torch.Generator().manual_seed(7), progress=3.0
    )
    np.testing.assert_allclose(tested["loss"], out.loss.detach().double().numpy(), rtol=1e-6, atol=1e-6)
    for key, value in out.terms.items():
        np.testing.assert_allclose(tested[key], value.detach().double().numpy(), rtol=1e-6, atol=1e-6)


def test_warmup_and_beta_enter_the_loss_as_written():
    model = _tiny()
    model.beta = 4.0
    x = torch.randn(8, *SHAPE, generator=torch.Generator().manual_seed(2))
    noise = torch.randn(8, 2, generator=torch.Generator().manual_seed(3))
    t = model.terms(x, noise=noise)
    out = objectives.make("beta-elbo", model, warmup_epochs=4)(model, Batch(x), noise, progress=1.0)
    torch.testing.assert_close(out.loss, t.distortion + 0.25 * 4.0 * t.rate)


def test_conditioned_objective_divides_by_beta_above_one():
    model = _tiny(beta_range=(0.1, 10.0))
    x = torch.randn(3, *SHAPE, generator=torch.Generator().manual_seed(2))
    beta = torch.tensor([0.5, 1.0, 8.0])
    noise = torch.zeros(3, 2)
    t = model.terms(Batch(x, beta=beta), noise=noise)
    out = objectives.make("beta-elbo-conditioned", model)(model, Batch(x, beta=beta), noise)
    torch.testing.assert_close(out.loss, (t.distortion + beta * t.rate) / torch.tensor([1.0, 1.0, 8.0]))


def test_unknown_objective_and_settings_are_one_sentence():
    from vaekit.errors import VaekitError

    model = _tiny()
    with pytest.raises(VaekitError, match="Unknown objective 'elbo2'; choose one of"):
        objectives.make("elbo2", model)
    with pytest.raises(VaekitError, match="has no setting 'gamma'"):
        objectives.make("beta-elbo", model, gamma=2.0)
    with pytest.raises(VaekitError, match="warmup_epochs must be a number"):
        objectives.make("beta-elbo", model, warmup_epochs="soon")
    with pytest.raises(VaekitError, match="deterministic autoencoder has no KL"):
        objectives.make("beta-elbo", _tiny("ae"))


class HalfRate(objectives.BetaELBO):
    """A test objective that names one more term; nothing in the loop knows it."""

    name = "half-rate"

    def loss(self, terms, batch, progress, beta):
        out = super().loss(terms, batch, progress, beta)
        out.terms["half_rate"] = 0.5 * terms.rate
        return out


def test_a_new_term_is_logged_and_drawn_without_touching_the_loop(tmp_path, monkeypatch):
    from vaekit import datasets, plots

    monkeypatch.setitem(objectives.OBJECTIVES, "half-rate", HalfRate)
    data = datasets.load("digits", test_size=0.2)
    model = VAE.for_data(data, latent_dim=2, hidden=(32,), seed=0)
    run = train.fit(
        model, data, epochs=2, out=tmp_path / "run", objective=HalfRate(), progress=False, device="cpu"
    )
    for row in run.history:
        assert row["train_half_rate"] == pytest.approx(0.5 * row["train_rate"], rel=1e-6)
        assert row["test_half_rate"] == pytest.approx(0.5 * row["test_rate"], rel=1e-6)
    terms = evaluate.loss_terms(model, data.x_test, HalfRate(), seed=0)  # the summary's own terms' path
    assert run.summary["half_rate"] == pytest.approx(0.5 * float(terms["rate"].mean()), rel=1e-6)
    fig = plots.training_curves(run.history)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["loss (nats)", "distortion (nats)", "rate (nats)", "half_rate (nats)"]
    half = next(ax for ax in fig.axes if ax.get_title() == "half_rate (nats)")
    assert list(half.lines[0].get_ydata()) == [r["train_half_rate"] for r in run.history]
    # the run folder's config says which objective trained it, with its settings
    import yaml

    config = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert config["train"]["objective"] == {
        "name": "half-rate",
        "kl_schedule": "constant",
        "warmup_epochs": 0.0,
        "cycles": 4,
        "cycle_ratio": 0.5,
    }
    # train.fit alone writes no figures: the report is a callback that vaekit.fit adds
    assert not (tmp_path / "run" / "report.html").exists()


def test_train_and_test_loss_measure_the_same_thing_with_warmup(tmp_path):
    """metrics.jsonl's train_loss and test_loss come from one objective: with a KL warm-up both
    carry the epoch's KL weight (before, the test loss ignored it)."""
    from vaekit import datasets

    data = datasets.load("digits", test_size=0.2)
    model = VAE.for_data(data, latent_dim=2, hidden=(32,), seed=0)
    run = train.fit(model, data, epochs=2, warmup_epochs=4, progress=False, device="cpu")
    for row in run.history:
        w = row["kl_weight"]
        assert w == row["epoch"] / 4
        assert row["test_loss"] == pytest.approx(row["test_distortion"] + w * row["test_rate"], rel=1e-6)
