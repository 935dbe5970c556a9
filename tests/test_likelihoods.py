import math

import numpy as np
import pytest
import torch
from scipy import stats
from torch import distributions as D

from vaekit import likelihoods
from vaekit.model import VAE
from vaekit.nets import MLPDecoder, MLPEncoder

SHAPE = (5,)


def _params_and_x(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(3, *SHAPE, generator=g), torch.rand(3, *SHAPE, generator=g)


def test_gaussian_matches_scipy_and_is_half_squared_error_plus_constant():
    mu, x = _params_and_x()
    for sigma in (1.0, 0.3):
        lp = likelihoods.make("gaussian", SHAPE, sigma=sigma)(mu).log_prob(x)
        ref = stats.norm(mu.numpy(), sigma).logpdf(x.numpy()).sum(1)
        np.testing.assert_allclose(lp.numpy(), ref, rtol=1e-5)
    lp1 = likelihoods.make("gaussian", SHAPE, sigma=1.0)(mu).log_prob(x)
    half_se = 0.5 * ((x - mu) ** 2).sum(1)
    constant = 0.5 * SHAPE[0] * math.log(2 * math.pi)
    np.testing.assert_allclose((-lp1 - half_se).numpy(), constant, rtol=1e-6)


def test_learned_gaussian_and_laplace_match_scipy():
    mu, x = _params_and_x(1)
    g = likelihoods.make("gaussian-learned", SHAPE, per_dim=True)
    with torch.no_grad():
        g.log_sigma.copy_(torch.linspace(-1, 1, SHAPE[0]))
    ref = stats.norm(mu.numpy(), np.exp(np.linspace(-1, 1, 5))).logpdf(x.numpy()).sum(1)
    np.testing.assert_allclose(g(mu).log_prob(x).detach().numpy(), ref, rtol=1e-5)
    lap = likelihoods.make("laplace", SHAPE)
    with torch.no_grad():
        lap.log_scale.fill_(math.log(0.5))
    ref = stats.laplace(mu.numpy(), 0.5).logpdf(x.numpy()).sum(1)
    np.testing.assert_allclose(lap(mu).log_prob(x).detach().numpy(), ref, rtol=1e-5)


def test_bernoulli_and_continuous_bernoulli():
    logits, x = _params_and_x(2)
    p = torch.sigmoid(logits).numpy()
    binary = (x > 0.5).float()
    lp = likelihoods.make("bernoulli", SHAPE)(logits).log_prob(binary)
    np.testing.assert_allclose(lp.numpy(), stats.bernoulli(p).logpmf(binary.numpy()).sum(1), rtol=1e-5)
    # continuous Bernoulli: log C(p) + x log p + (1 - x) log(1 - p), C(p) = 2 atanh(1-2p) / (1-2p)
    lam = p.astype(np.float64)
    log_c = np.log(2 * np.arctanh(1 - 2 * lam) / (1 - 2 * lam))
    xn = x.numpy().astype(np.float64)
    ref = (log_c + xn * np.log(lam) + (1 - xn) * np.log1p(-lam)).sum(1)
    lp = likelihoods.make("continuous-bernoulli", SHAPE)(logits).log_prob(x)
    np.testing.assert_allclose(lp.numpy(), ref, rtol=1e-4)
    # a normalised density on [0, 1]: integrates to 1 in one dimension
    cb = D.ContinuousBernoulli(logits=torch.tensor(1.3))
    grid = torch.linspace(0, 1, 20001)
    assert torch.trapezoid(cb.log_prob(grid).exp(), grid).item() == pytest.approx(1.0, abs=1e-4)


def test_unknown_likelihood_is_a_clear_error():
    with pytest.raises(Exception, match="Unknown likelihood 'poisson'; choose one of"):
        likelihoods.make("poisson", SHAPE)


def _tiny_vae(model="vae"):
    torch.manual_seed(0)
    enc = MLPEncoder(SHAPE, [16], 4 if model == "vae" else 2)
    dec = MLPDecoder(2, [16], SHAPE)
    return VAE(enc, dec, 2, SHAPE, "gaussian", beta=1.0, model=model)


def test_rate_matches_monte_carlo_kl():
    vae = _tiny_vae()
    x = torch.randn(4, *SHAPE)
    q = vae.encode(x)
    exact = vae.terms(x).rate
    z = q.sample((200_000,))
    mc = (q.log_prob(z) - vae.prior.log_prob(z)).mean(0)
    np.testing.assert_allclose(exact.detach().numpy(), mc.detach().numpy(), atol=0.02, rtol=0.02)


def test_autoencoder_has_no_kl_and_a_point_posterior():
    ae = _tiny_vae("ae")
    t = ae.terms(torch.randn(4, *SHAPE))
    assert torch.isnan(t.rate).all()
    assert torch.equal(t.z, t.q.mean)
    from vaekit.batch import Batch
    from vaekit.objectives import for_model

    objective = for_model(ae)
    assert objective.name == "reconstruction"
    out = objective.loss(t, Batch(torch.zeros(4, *SHAPE)), 0.0, 1.0)
    assert torch.equal(out.loss, t.distortion) and set(out.terms) == {"distortion"}


def test_beta_zero_loss_is_pure_reconstruction():
    from vaekit.batch import Batch
    from vaekit.objectives import BetaELBO

    vae = _tiny_vae()
    x = torch.randn(4, *SHAPE)
    t = vae.terms(x)
    assert torch.equal(BetaELBO().loss(t, Batch(x), 1.0, 0.0).loss, t.distortion)
    # with beta = 0 the encoder's log-variance gets no gradient from the KL
    BetaELBO().loss(t, Batch(x), 1.0, 0.0).loss.sum().backward()
    w = vae.encoder.net[-1].weight.grad
    assert w is not None and torch.isfinite(w).all()


def test_warmup_weight_is_linear():
    from vaekit.objectives import BetaELBO

    o = BetaELBO(warmup_epochs=4)
    assert [o.kl_weight(e) for e in (0, 1, 2, 4, 9)] == [0.0, 0.25, 0.5, 1.0, 1.0]
