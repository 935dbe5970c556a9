"""Each paper objective checked against its paper's defining property (issue 12): each test
fails on the wrong loss the peers' trackers record (beta on the full KL, variance on every
covariance entry, a discriminator loss that reaches the encoder, a logged loss that is not the
IWAE bound). Tiny models, tiny data: the whole file runs in well under a minute on 2 cores."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import distributions as D
from torch import nn

from vaekit import objectives, runs, schedules, train
from vaekit.batch import Batch
from vaekit.errors import VaekitError
from vaekit.model import VAE, Terms

SHAPE = (6,)


def _tiny(latent=2, seed=0, prior=None, beta=1.0) -> VAE:
    from vaekit import nets

    torch.manual_seed(seed)
    enc, dec = nets.build("mlp", SHAPE, latent, 2 * latent, [16], "tanh", 0)
    return VAE(enc, dec, latent, SHAPE, "gaussian", beta=beta, prior=prior)


def _batch(n=32, seed=1, latent=2):
    x = torch.randn(n, *SHAPE, generator=torch.Generator().manual_seed(seed))
    noise = torch.randn(n, latent, generator=torch.Generator().manual_seed(seed + 100))
    return Batch(x), noise


def _q(loc, scale):
    return D.Independent(D.Normal(loc, scale), 1)


def _log_std_normal(z):
    return D.Normal(0.0, 1.0).log_prob(z).sum(-1)


# ============================================================================ KL schedules


def test_cyclical_weight_reaches_one_at_ratio_holds_and_restarts():
    """Fu et al. (2019): M = 4 cycles of 2 epochs over 8 epochs, R = 0.5: the weight rises
    linearly to 1 at R of each cycle, holds at 1 to the cycle's end, then restarts from 0."""
    obj = objectives.make("beta-elbo", _tiny(), kl_schedule="cyclical", cycles=4, cycle_ratio=0.5).bind(
        epochs=8
    )
    w = obj.kl_weight
    for start in (0.0, 2.0, 4.0, 6.0):
        assert w(start + 1e-9) == pytest.approx(0.0, abs=1e-6)  # restarts at 0
        assert w(start + 0.25) == pytest.approx(0.25)  # linear: tau / R = 0.125 / 0.5
        assert w(start + 0.5) == pytest.approx(0.5)
        assert w(start + 1.0) == pytest.approx(1.0)  # 1 at R of the cycle
        for held in (1.2, 1.5, 1.9, 2.0):
            assert w(start + held) == 1.0  # and holds until the cycle ends
    assert w(0.0) == 0.0 and w(8.0) == 1.0 and w(math.inf) == 1.0
    assert obj.schedule(3.0) == {"kl_weight": 1.0}
    # R = 1: the weight reaches 1 only at each cycle's end
    assert schedules.cyclical(1.5, 8, 4, 1.0) == pytest.approx(0.75)
    # the weight enters the loss as w * rate
    model = _tiny()
    batch, noise = _batch()
    t = model.terms(batch, noise=noise)
    torch.testing.assert_close(obj(model, batch, noise, progress=2.5).loss, t.distortion + 0.5 * t.rate)


def test_linear_warmup_and_old_settings_keep_their_meaning():
    model = _tiny()
    old = objectives.make("beta-elbo", model, warmup_epochs=4)  # what runs of 0.1.0 stored
    assert old.kl_schedule == "linear" and old.kl_weight(1.0) == 0.25 and old.kl_weight(9) == 1.0
    assert objectives.make("beta-elbo", model).kl_schedule == "constant"
    assert objectives.make("beta-elbo", model).kl_weight(0.0) == 1.0
    # every KL-weighting objective shares the schedule
    for name in ("beta-tcvae", "factorvae", "dip-vae", "free-bits"):
        assert objectives.make(name, model, kl_schedule="cyclical").bind(epochs=4).kl_weight(0.5) == 1.0


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"kl_schedule": "cyclical", "cycle_ratio": 2.0}, "cycle_ratio must be a fraction in"),
        ({"kl_schedule": "cyclical", "cycles": 0}, "cycles must be a whole number of at least 1"),
        ({"kl_schedule": "sigmoid"}, "kl_schedule must be one of constant, linear, cyclical"),
        ({"kl_schedule": "linear"}, "needs --warmup-epochs above 0"),
        ({"kl_schedule": "cyclical", "warmup_epochs": 2.0}, "--warmup-epochs applies to the linear"),
        ({"cycles": 3}, "--cycles applies to the cyclical KL schedule"),
    ],
)
def test_bad_schedule_settings_are_one_sentence(settings, message):
    with pytest.raises(VaekitError, match=message):
        objectives.make("beta-elbo", _tiny(), **settings)


def test_cyclical_schedule_needs_the_epochs():
    obj = objectives.make("beta-elbo", _tiny(), kl_schedule="cyclical")
    with pytest.raises(VaekitError, match="needs the number of training epochs"):
        obj.kl_weight(1.0)


# ============================================================================ beta-TCVAE


@pytest.mark.parametrize("estimator", ["mws", "mss"])
def test_tc_decomposition_sums_to_the_kl_estimate(estimator):
    """MI + TC + dimension-wise KL = log q(z|x) - log p(z) per example (Chen et al., eq. 2), for
    both estimators, by hand and through the objective on a model."""
    gen = torch.Generator().manual_seed(0)
    loc, scale = torch.randn(40, 3, generator=gen), 0.2 + torch.rand(40, 3, generator=gen)
    q = _q(loc, scale)
    z = loc + scale * torch.randn(40, 3, generator=gen)
    parts = objectives.tc_decomposition(q, z, _log_std_normal(z), 1000, estimator)
    total = parts["mi"] + parts["tc"] + parts["dimwise_kl"]
    torch.testing.assert_close(total, q.log_prob(z) - _log_std_normal(z), rtol=1e-5, atol=1e-4)

    model = _tiny(latent=3)
    batch, noise = _batch(latent=3)
    out = objectives.make("beta-tcvae", model, estimator=estimator, dataset_size=500)(model, batch, noise)
    t = out.outputs
    total = out.terms["mi"] + out.terms["tc"] + out.terms["dimwise_kl"]
    torch.testing.assert_close(total, t.q.log_prob(t.z) - _log_std_normal(t.z), rtol=1e-5, atol=1e-4)


def _grid_posterior(correlated: bool, scale: float = 0.05):
    """64 narrow posteriors whose means form an 8 x 8 grid (independent coordinates: the
    aggregate posterior factorises exactly) or lie on the diagonal (fully dependent)."""
    values = torch.linspace(-2, 2, 8)
    if correlated:
        a = torch.linspace(-2, 2, 64)
        loc = torch.stack([a, a], 1)
    else:
        loc = torch.cartesian_prod(values, values)
    q = _q(loc, torch.full_like(loc, scale))
    z = loc + scale * torch.randn(loc.shape, generator=torch.Generator().manual_seed(3))
    return q, z


def test_tc_is_zero_for_independent_dimensions_and_positive_for_correlated_ones():
    """With the whole data set as the batch (N = M), MSS's estimate of q(z) is exact: TC is 0 for
    a factorised aggregate posterior and clearly positive for a correlated one. MWS's TC is the
    same up to its constant (D - 1) log N (documented), so the difference is the same."""
    n = 64
    tc = {}
    for correlated in (False, True):
        q, z = _grid_posterior(correlated)
        for estimator in ("mss", "mws"):
            parts = objectives.tc_decomposition(q, z, _log_std_normal(z), n, estimator)
            tc[correlated, estimator] = parts["tc"].mean().item()
    assert abs(tc[False, "mss"]) < 1e-3
    assert tc[True, "mss"] > 1.0
    assert tc[False, "mws"] == pytest.approx(math.log(n), abs=1e-3)  # (D - 1) log N, D = 2
    assert tc[True, "mws"] - tc[False, "mws"] > 1.0


def test_weights_one_give_the_elbo_and_beta_weights_only_the_tc():
    model = _tiny(latent=3)
    batch, noise = _batch(latent=3)
    elbo = objectives.make("beta-elbo", model)(model, batch, noise).loss
    one = objectives.make("beta-tcvae", model, tc_weight=1.0, dataset_size=300)(model, batch, noise)
    torch.testing.assert_close(one.loss, elbo)  # alpha = beta = gamma = 1: the ELBO, same numbers
    six = objectives.make("beta-tcvae", model, tc_weight=6.0, dataset_size=300)(model, batch, noise)
    # beta = 6 adds 5 TC, not 5 KL (the peers' bug): the difference is exactly (beta - 1) tc
    torch.testing.assert_close(six.loss - elbo, 5.0 * six.terms["tc"], rtol=1e-5, atol=1e-4)
    alpha = objectives.make(
        "beta-tcvae", model, mi_weight=2.0, tc_weight=1.0, dimwise_weight=3.0, dataset_size=300
    )(model, batch, noise)
    torch.testing.assert_close(
        alpha.loss - elbo, alpha.terms["mi"] + 2.0 * alpha.terms["dimwise_kl"], rtol=1e-5, atol=1e-4
    )


def test_n_comes_from_the_training_data_never_the_batch(tmp_path):
    """N is the training split's size whatever the batch size, and it is stored for evaluation;
    the estimate depends on N as the estimator says (MWS: log q(z) shifts by log of N's ratio)."""
    from vaekit import datasets

    data = datasets.load(_table(tmp_path), test_size=0.25)
    used = []
    for batch_size in (16, 40):
        model = VAE.for_data(data, latent_dim=2, hidden=(8,), seed=0)
        obj = objectives.make("beta-tcvae", model)
        assert obj.dataset_size == 0  # not known until the data are
        train.fit(
            model,
            data,
            epochs=1,
            batch_size=batch_size,
            objective=obj,
            out=tmp_path / f"b{batch_size}",
            progress=False,
            device="cpu",
            nll_samples=0,
        )
        config = runs.read_config(tmp_path / f"b{batch_size}")
        used.append((obj.dataset_size, config["train"]["objective"]["dataset_size"]))
        assert runs.load_objective(tmp_path / f"b{batch_size}", model).dataset_size == len(data.x_train)
    assert used == [(len(data.x_train),) * 2] * 2
    q, z = _grid_posterior(False)
    a = objectives.tc_decomposition(q, z, _log_std_normal(z), 100, "mws")
    b = objectives.tc_decomposition(q, z, _log_std_normal(z), 1000, "mws")
    torch.testing.assert_close(b["mi"] - a["mi"], torch.full((64,), math.log(10.0)), rtol=0, atol=1e-4)
    with pytest.raises(VaekitError, match="needs the training set's size N"):
        objectives.make("beta-tcvae", _tiny())(_tiny(), *_batch())


def test_beta_tcvae_refuses_a_prior_that_does_not_factorise():
    with pytest.raises(VaekitError, match="needs the N\\(0, I\\) prior, not mog"):
        objectives.make("beta-tcvae", _tiny(prior="mog"))
    with pytest.raises(VaekitError, match="--beta applies to the beta-elbo objective"):
        objectives.make("beta-tcvae", _tiny(beta=4.0))


# ============================================================================ FactorVAE


def test_permute_dims_keeps_each_columns_values_and_breaks_the_pairing():
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(256, generator=gen)
    z = torch.stack([a, a, -a, torch.randn(256, generator=gen)], 1)  # columns 0-2 fully dependent
    p = objectives.permute_dims(z, torch.Generator().manual_seed(1))
    for j in range(z.shape[1]):
        torch.testing.assert_close(p[:, j].sort().values, z[:, j].sort().values)  # same multiset
    assert not torch.equal(p, z)
    same_rows = (p[:, None, :] == z[None, :, :]).all(-1).any(1).float().mean()
    assert same_rows < 0.05  # the original rows are gone
    corr = torch.corrcoef(p.T)
    assert abs(corr[0, 1]) < 0.2 and abs(corr[0, 2]) < 0.2  # the dependence is broken
    again = objectives.permute_dims(z, torch.Generator().manual_seed(1))
    assert torch.equal(p, again)  # the same generator, the same permutation


def _factorvae(model, **kw):
    return objectives.make("factorvae", model, gamma=kw.pop("gamma", 5.0), disc_units=16, disc_layers=2, **kw)


def test_the_discriminator_loss_gives_the_encoder_zero_gradient():
    model = _tiny(latent=3)
    batch, noise = _batch(latent=3)
    obj = _factorvae(model)
    out = obj(model, batch, noise)
    model.zero_grad(set_to_none=True)
    out.terms["disc_loss"].mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is None or torch.count_nonzero(p.grad) == 0, name
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in obj.discriminator.parameters())
    # while the VAE's TC term does reach the encoder (through z)
    out = obj(model, batch, noise)
    model.zero_grad(set_to_none=True)
    out.terms["tc"].sum().backward()
    grads = [p.grad for p in model.encoder.parameters()]
    assert all(g is not None for g in grads) and sum(g.abs().sum() for g in grads) > 0
    # the loss is the ELBO plus gamma times the density-ratio TC
    t = out.outputs
    torch.testing.assert_close(out.loss, t.distortion + t.rate + 5.0 * out.terms["tc"])


def test_the_discriminator_steps_after_the_vae_and_only_itself():
    model = _tiny(latent=3)
    batch, noise = _batch(latent=3)
    obj = _factorvae(model)
    before_model = [p.detach().clone() for p in model.parameters()]
    before_disc = [p.detach().clone() for p in obj.discriminator.parameters()]
    out = obj(model, batch, noise)
    out.loss.mean().backward()  # the VAE's backward leaves gradients in D too
    obj.after_step()
    assert all(torch.equal(a, p) for a, p in zip(before_model, model.parameters(), strict=True))
    assert any(
        not torch.equal(a, p) for a, p in zip(before_disc, obj.discriminator.parameters(), strict=True)
    )
    # the step used D's own loss: replaying it by hand from the same state gives the same weights
    replay = _factorvae(model)
    replay.discriminator.load_state_dict(
        dict(zip(replay.discriminator.state_dict(), before_disc, strict=True))
    )
    d_loss, _ = replay.discriminator_terms(out.outputs.z.detach(), objectives.noise_generator(noise))
    d_loss.mean().backward()
    replay.optimizer.step()
    for a, b in zip(replay.discriminator.parameters(), obj.discriminator.parameters(), strict=True):
        torch.testing.assert_close(a, b)


# ============================================================================ DIP-VAE


def _cov_means(cov: torch.Tensor) -> torch.Tensor:
    """Four points whose population covariance is exactly `cov` (2 x 2) and mean 0."""
    grid = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])
    return grid @ torch.linalg.cholesky(cov).T


def test_dip_penalty_is_zero_at_identity_and_grows_with_off_diagonal_mass():
    tiny = torch.full((4, 2), 1e-4)
    q = _q(_cov_means(torch.eye(2)), tiny)
    assert objectives.dip_penalty(objectives.dip_covariance(q, "i"), 10.0, 100.0).item() == pytest.approx(
        0, abs=1e-9
    )
    # type II: means' covariance 0.5 I plus posterior variance 0.5 on the diagonal = I
    q2 = _q(_cov_means(0.5 * torch.eye(2)), torch.full((4, 2), math.sqrt(0.5)))
    cov2 = objectives.dip_covariance(q2, "ii")
    torch.testing.assert_close(cov2, torch.eye(2))
    assert objectives.dip_penalty(cov2, 10.0, 10.0).item() == pytest.approx(0, abs=1e-9)
    penalties = []
    for rho in (0.0, 0.3, 0.6, 0.9):
        cov = torch.tensor([[1.0, rho], [rho, 1.0]])
        c = objectives.dip_covariance(_q(_cov_means(cov), tiny), "i")
        torch.testing.assert_close(c, cov, rtol=1e-5, atol=1e-5)
        penalties.append(objectives.dip_penalty(c, 10.0, 100.0).item())
        assert penalties[-1] == pytest.approx(10.0 * 2 * rho**2, rel=1e-4, abs=1e-6)
    assert penalties == sorted(penalties) and penalties[-1] > penalties[0]


def test_dip_type_two_covariance_matches_sampled_z():
    """Cov_q(z)[z] of type II = the covariance of z drawn from the aggregate posterior; the
    variances land on the diagonal only (the peers' bug adds them to every entry)."""
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(50, 1, generator=gen)
    loc = torch.cat(
        [a, 0.5 * a + 0.3 * torch.randn(50, 1, generator=gen), torch.randn(50, 1, generator=gen)], 1
    )
    scale = 0.3 + torch.rand(50, 3, generator=gen)
    q = _q(loc, scale)
    z = (loc + scale * torch.randn(4000, 50, 3, generator=gen)).reshape(-1, 3)
    mc = torch.cov(z.T, correction=0)
    cov2 = objectives.dip_covariance(q, "ii")
    torch.testing.assert_close(cov2, mc, rtol=0, atol=0.03)
    cov1 = objectives.dip_covariance(q, "i")
    torch.testing.assert_close(cov2 - cov1, torch.diag(scale.pow(2).mean(0)))


def test_dip_vae_loss_and_the_papers_lambda_ratios():
    model = _tiny(latent=3)
    batch, noise = _batch(latent=3)
    one = objectives.make("dip-vae", model)
    two = objectives.make("dip-vae", model, dip_type="II", lambda_od=4.0)
    assert (one.lambda_od, one.lambda_d) == (10.0, 100.0) and (two.lambda_od, two.lambda_d) == (4.0, 4.0)
    out = two(model, batch, noise)
    t = out.outputs
    penalty = objectives.dip_penalty(objectives.dip_covariance(t.q, "ii"), 4.0, 4.0)
    torch.testing.assert_close(out.loss, t.distortion + t.rate + penalty)
    assert torch.all(out.terms["dip_penalty"] == penalty)


# ============================================================================ IWAE


class _Linear(nn.Module):
    def __init__(self, weight, bias, logvar=None):
        super().__init__()
        self.weight, self.bias, self.logvar = weight, bias, logvar

    def forward(self, x, c=None):
        out = x @ self.weight.T + self.bias
        return out if self.logvar is None else torch.cat([out, self.logvar.expand(len(x), -1)], 1)


def _linear_gaussian(seed=0, data_dim=4, latent=2, sigma=0.5):
    """z ~ N(0, I), x | z ~ N(W z + b, s^2 I): log p(x) = log N(x; b, W W^T + s^2 I) exactly. The
    encoder is a Gaussian near, but not at, the true posterior (a shifted mean, wider diagonal)."""
    gen = torch.Generator().manual_seed(seed)
    w = torch.randn(data_dim, latent, generator=gen)
    b = torch.randn(data_dim, generator=gen)
    post_cov = torch.linalg.inv(torch.eye(latent) + w.T @ w / sigma**2)
    gain = post_cov @ w.T / sigma**2  # posterior mean = gain (x - b)
    logvar = torch.log(1.5**2 * torch.diagonal(post_cov))
    encoder = _Linear(gain, -gain @ b + 0.3, logvar)
    decoder = _Linear(w, b)
    model = VAE(encoder, decoder, latent, (data_dim,), "gaussian")
    model.likelihood.sigma = sigma
    marginal = D.MultivariateNormal(b, w @ w.T + sigma**2 * torch.eye(data_dim))
    x = marginal.sample((400,))
    return model, x, marginal.log_prob(x)


def test_iwae_bound_grows_with_k_stays_below_log_px_and_approaches_it():
    torch.manual_seed(0)
    model, x, log_px = _linear_gaussian()
    noise = torch.randn(len(x), 2, generator=torch.Generator().manual_seed(5))
    gaps = []
    with torch.no_grad():
        for k in (1, 5, 50, 500):
            out = objectives.make("iwae", model, iwae_samples=k)(model, Batch(x), noise)
            torch.testing.assert_close(out.loss, -out.terms["bound"])  # the logged value is the bound
            gaps.append((log_px - out.terms["bound"]).mean().item())
    assert gaps[0] > 0.3  # the ELBO is clearly below log p(x) for this q
    assert all(a > b for a, b in zip(gaps, gaps[1:], strict=False)), gaps  # grows with K
    assert -0.01 < gaps[-1] < 0.05 * gaps[0], gaps  # below log p(x), and close at K = 500


def test_iwae_k1_is_the_elbo_and_the_draws_repeat_with_the_noise():
    model = _tiny()
    batch, noise = _batch()
    elbo = objectives.make("beta-elbo", model)(model, batch, noise).loss
    one = objectives.make("iwae", model, iwae_samples=1)(model, batch, noise)
    torch.testing.assert_close(one.loss, elbo)
    five = objectives.make("iwae", model, iwae_samples=5)
    a, b = five(model, batch, noise).terms["bound"], five(model, batch, noise).terms["bound"]
    assert torch.equal(a, b)
    c = five(model, batch, noise + 0.1).terms["bound"]
    assert not torch.equal(a, c)
    # the bound with the first draw alone is the one-sample ELBO at the model's z
    t = model.terms(batch, noise=noise)
    log_w1 = -t.distortion + model.prior.log_prob(t.z) - t.q.log_prob(t.z)
    assert torch.all(five(model, batch, noise).terms["bound"] >= log_w1 - math.log(5) - 1e-5)


# ============================================================================ minibatch estimates


def test_a_minibatch_estimate_is_evaluated_in_batches_of_the_training_size(tmp_path):
    """Objectives whose terms depend on the batch evaluate in batches of the training batch size
    (per process), so test terms estimate what training's did; the others keep the evaluation
    batch. loss_terms then equals the objective called chunk by chunk with the same noise."""
    import vaekit
    from vaekit import datasets, evaluate

    model = _tiny()
    for name, settings, dependent in [
        ("beta-tcvae", {}, True),
        ("dip-vae", {}, True),
        ("factorvae", {"disc_units": 8, "disc_layers": 1}, True),
        ("capacity", {}, True),
        ("capacity", {"capacity_over": "example"}, False),
        ("beta-elbo", {}, False),
        ("iwae", {}, False),
    ]:
        obj = objectives.make(name, model, **settings).bind(batch_size=25, n_train=1000, epochs=2)
        assert obj.eval_batch_size(1000) == (25 if dependent else 1000), name
    tc = objectives.make("beta-tcvae", model).bind(batch_size=25, n_train=1000)
    x = torch.randn(100, *SHAPE, generator=torch.Generator().manual_seed(3))
    got = evaluate.loss_terms(model, x, tc, seed=4)["tc"]
    gen = torch.Generator().manual_seed(4)
    want = []
    with torch.no_grad():
        for start in range(0, 100, 25):
            noise = torch.randn(25, model.latent_dim, generator=gen)
            want.append(tc(model, Batch(x[start : start + 25]), noise).terms["tc"])
    np.testing.assert_allclose(got, torch.cat(want).double().numpy(), rtol=1e-6, atol=1e-7)
    # fit binds the training batch; a reloaded run's objective gets it from config.yaml
    data = datasets.load(_table(tmp_path))
    fitted = vaekit.VAE.for_data(data, latent_dim=2, hidden=(8,))
    run_obj = objectives.make("beta-tcvae", fitted)
    vaekit.fit(fitted, data, objective=run_obj, epochs=1, batch_size=40, out=tmp_path / "r", progress=False,
               nll_samples=0)  # fmt: skip
    assert run_obj.eval_batch_size(1000) == 40
    assert runs.load_objective(tmp_path / "r", runs.load(tmp_path / "r")).eval_batch_size(1000) == 40


# ============================================================================ capacity, free bits


def test_capacity_hits_its_end_points_on_schedule():
    model = _tiny()
    obj = objectives.make("capacity", model, capacity_max=20.0, capacity_epochs=10.0)
    c = obj.capacity
    assert c(0.0) == 0.0 and c(10.0) == 20.0 and c(25.0) == 20.0 and c(math.inf) == 20.0
    assert c(2.5) == pytest.approx(5.0) and c(7.0) == pytest.approx(14.0)
    assert obj.schedule(5.0) == {"capacity": 10.0}
    default = objectives.make("capacity", model, capacity_max=20.0).bind(epochs=8)
    assert default.capacity(4.0) == 10.0 and default.capacity(8.0) == 20.0  # the ramp spans training
    # capacity_over="example": |KL - C| of each example, as eq. 8 reads for one x
    per_example = objectives.make(
        "capacity", model, capacity_max=20.0, capacity_epochs=10.0, capacity_over="example"
    )
    batch, noise = _batch()
    out = per_example(model, batch, noise, progress=0.02)  # C = 0.04, inside the spread of the rates
    t = out.outputs
    assert (t.rate < 0.04).any() and (t.rate > 0.04).any()
    torch.testing.assert_close(out.loss, t.distortion + 1000.0 * (t.rate - 0.04).abs())


def test_capacity_bounds_the_batch_mean_kl_and_leaves_its_spread_free():
    """The default form (capacity_over="batch"): the batch mean of the loss is mean distortion +
    gamma |mean KL - C| for C below, above and at the mean KL; its gradient is that of the batch
    form; and a batch whose mean KL equals C pays nothing for the spread of its examples' KLs,
    which the per-example form charges gamma mean |KL_i - C| for."""
    model = _tiny()
    batch, noise = _batch()
    t = model.terms(batch, noise=noise)
    mean_rate = float(t.rate.detach().mean())
    for c in (0.5 * mean_rate, 2.0 * mean_rate, mean_rate):
        obj = objectives.make("capacity", model, capacity_weight=7.0, capacity_max=c, capacity_epochs=1.0)
        model.zero_grad()
        out = obj(model, batch, noise, progress=5.0)  # past the ramp: C = c
        expected = out.outputs.distortion.mean() + 7.0 * (out.outputs.rate.mean() - c).abs()
        torch.testing.assert_close(out.loss.mean(), expected, atol=1e-4, rtol=1e-6)
        out.loss.mean().backward()
        got = [p.grad.clone() for p in model.parameters() if p.grad is not None]
        model.zero_grad()
        direct = model.terms(batch, noise=noise)
        (direct.distortion.mean() + 7.0 * (direct.rate.mean() - c).abs()).backward()
        want = [p.grad.clone() for p in model.parameters() if p.grad is not None]
        for a, b in zip(got, want, strict=True):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    # at C = the batch's mean KL the spread is free in the batch form, charged per example
    at_mean = objectives.make(
        "capacity", model, capacity_weight=7.0, capacity_max=mean_rate, capacity_epochs=1.0
    )
    free = at_mean(model, batch, noise, progress=5.0)
    torch.testing.assert_close(free.loss, free.outputs.distortion, atol=1e-4, rtol=0)
    charged = objectives.make(
        "capacity",
        model,
        capacity_weight=7.0,
        capacity_max=mean_rate,
        capacity_epochs=1.0,
        capacity_over="example",
    )(model, batch, noise, progress=5.0)
    spread = 7.0 * (charged.outputs.rate - mean_rate).abs().mean()
    assert float(spread.detach()) > 1e-3
    torch.testing.assert_close(charged.loss.mean(), charged.outputs.distortion.mean() + spread)


def test_free_bits_dimensions_below_lambda_get_no_kl_gradient():
    """Dimension 1's batch-mean KL is below lambda although one example's KL there is above it:
    the mean is taken before the max, so no example gets a KL gradient in that dimension."""
    loc = torch.zeros(8, 2)
    loc[:, 0] = 2.0  # KL 2 nats per example in dimension 0
    loc[0, 1] = 1.2  # KL 0.72 for one example, batch mean 0.09 in dimension 1
    loc.requires_grad_(True)
    q = _q(loc, torch.ones(8, 2))
    z = loc.detach()
    terms = Terms(torch.zeros(8), D.kl_divergence(q, _q(torch.zeros(2), torch.ones(2))), z, q, None)
    obj = objectives.make("free-bits", _tiny(), free_bits=0.5)
    out = obj.loss(terms, None, math.inf, 1.0)
    out.loss.mean().backward()
    assert torch.all(loc.grad[:, 1] == 0)
    assert torch.all(loc.grad[:, 0] > 0)
    torch.testing.assert_close(out.loss.mean(), torch.tensor(2.0 + 0.5))  # sum_j max(lambda, E KL_j)


def test_free_bits_lambda_zero_is_the_elbo_and_other_priors_are_refused():
    model = _tiny(latent=3)
    batch, noise = _batch(latent=3)
    elbo = objectives.make("beta-elbo", model)(model, batch, noise).loss
    torch.testing.assert_close(
        objectives.make("free-bits", model, free_bits=0.0)(model, batch, noise).loss, elbo
    )
    with pytest.raises(VaekitError, match="needs the N\\(0, I\\) prior, not vamp"):
        objectives.make("free-bits", _tiny(prior="vamp"))


# ============================================================================ end to end


def _table(tmp_path):
    path = tmp_path / "table.npy"
    if not path.exists():
        rng = np.random.default_rng(0)
        z = rng.normal(size=(160, 2))
        np.save(path, (z @ rng.normal(size=(2, 6)) + 0.1 * rng.normal(size=(160, 6))).astype(np.float32))
    return path


NEW = {
    "beta-tcvae": ([], ["mi", "tc", "dimwise_kl"]),
    "factorvae": (["--disc-units", "16", "--disc-layers", "2"], ["tc", "disc_loss", "disc_accuracy"]),
    "dip-vae": (["--dip-type", "ii"], ["dip_penalty"]),
    "capacity": (["--capacity-max", "5"], []),
    "iwae": (["--iwae-samples", "3"], ["bound"]),
    "free-bits": (["--free-bits", "0.2", "--kl-schedule", "cyclical", "--cycles", "2"], ["free_bits_kl"]),
}
TINY = ["--hidden", "8", "--latent-dim", "2", "--nll-samples", "5", "--quiet", "--device", "cpu"]


@pytest.mark.parametrize("name", sorted(NEW))
def test_each_objective_trains_from_the_cli_and_logs_its_terms(name, cli, tmp_path):
    extra, terms = NEW[name]
    out = tmp_path / name
    code, _, err = cli(
        "train", "--data", _table(tmp_path), "--objective", name, "--epochs", "1", *extra, *TINY, "--out", out
    )
    assert code == 0, err
    row = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    summary = json.loads((out / "summary.json").read_text())
    for term in ["loss", "distortion", "rate", *terms]:
        assert math.isfinite(row[f"train_{term}"]) and math.isfinite(row[f"test_{term}"]), term
        if term != "loss":
            assert math.isfinite(summary[term]), term
    if name == "capacity":
        assert row["capacity"] == 5.0  # C at the end of the one-epoch ramp
    else:
        assert "kl_weight" in row or name == "iwae"
    config = runs.read_config(out)
    assert config["train"]["objective"]["name"] == name


@pytest.mark.parametrize(
    "name, args, message",
    [
        ("beta-tcvae", ["--estimator", "exact"], "estimator must be mss"),
        ("factorvae", ["--disc-layers", "0"], "disc_layers must be a whole number of at least 1"),
        ("dip-vae", ["--dip-type", "III"], "dip_type must be i or ii"),
        ("capacity", ["--capacity-max", "-1"], "capacity_max must be a finite number of at least 0"),
        ("iwae", ["--iwae-samples", "0"], "iwae_samples must be a whole number of at least 1"),
        ("free-bits", ["--kl-schedule", "cyclical", "--cycle-ratio", "2"], "cycle_ratio must be a fraction"),
        ("iwae", ["--tc-weight", "2"], "--tc-weight applies to the beta-tcvae objective"),
    ],
)
def test_a_bad_setting_is_exit_2_and_one_sentence(name, args, message, cli, tmp_path):
    code, _, err = cli(
        "train", "--data", _table(tmp_path), "--objective", name, *args, *TINY, "--out", tmp_path / "bad"
    )
    assert code == 2 and message in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err


def test_factorvae_resume_restores_the_discriminator_and_evaluate_rebuilds_it(cli, tmp_path):
    """1 epoch + resume to 2 = 2 epochs straight: the discriminator and its Adam state travel in
    checkpoint.pt (a fresh D would change epoch 2's numbers); evaluate reloads the saved D."""
    args = [
        "train",
        "--data",
        _table(tmp_path),
        "--objective",
        "factorvae",
        "--disc-units",
        "16",
        "--disc-layers",
        "2",
        *TINY,
    ]
    assert cli(*args, "--epochs", "2", "--out", tmp_path / "straight")[0] == 0
    assert cli(*args, "--epochs", "1", "--out", tmp_path / "resumed")[0] == 0
    code, _, err = cli(
        "train", "--resume", tmp_path / "resumed", "--epochs", "2", "--quiet", "--device", "cpu"
    )
    assert code == 0, err

    def rows(run):
        return [
            {k: v for k, v in r.items() if k != "seconds"}
            for r in map(json.loads, (tmp_path / run / "metrics.jsonl").read_text().splitlines())
        ]

    assert rows("resumed") == rows("straight")
    from safetensors.torch import load_file

    a, b = (
        load_file(tmp_path / "straight/objective.safetensors"),
        load_file(tmp_path / "resumed/objective.safetensors"),
    )
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    model = runs.load(tmp_path / "straight")
    rebuilt = runs.load_objective(tmp_path / "straight", model)
    assert all(torch.equal(v, a[k]) for k, v in rebuilt.weights().items())
    (tmp_path / "straight/objective.safetensors").unlink()
    with pytest.raises(VaekitError, match="objective.safetensors is missing"):
        runs.load_objective(tmp_path / "straight", model)


def test_a_capacity_run_written_before_capacity_over_keeps_the_per_example_form(tmp_path):
    """Runs from before the setting existed took |KL - C| per example: reloaded, they evaluate
    with that form (OLD_DEFAULTS), while a new run keeps what it stored."""
    import yaml

    import vaekit
    from vaekit import datasets, evaluate

    data = datasets.load(_table(tmp_path))
    model = vaekit.VAE.for_data(data, latent_dim=2, hidden=(8,))
    obj = objectives.make("capacity", model, capacity_max=3.0)
    vaekit.fit(model, data, objective=obj, epochs=1, out=tmp_path / "r", progress=False, nll_samples=0)
    assert runs.load_objective(tmp_path / "r", model).capacity_over == "batch"
    path = tmp_path / "r" / "config.yaml"
    config = yaml.safe_load(path.read_text())
    del config["train"]["objective"]["capacity_over"]
    path.write_text(yaml.safe_dump(config))
    old = runs.load_objective(tmp_path / "r", model)
    assert old.capacity_over == "example" and old.eval_batch_size(1000) == 1000
    x = data.x_test
    terms = evaluate.loss_terms(model, x, old, seed=2)
    c = old.capacity(math.inf)
    np.testing.assert_allclose(
        terms["loss"], terms["distortion"] + 1000.0 * np.abs(terms["rate"] - c), rtol=1e-5
    )
