"""The likelihood estimate against a model whose marginal likelihood is known in closed form."""

import math

import numpy as np
import pytest
import torch
from torch import distributions as D
from torch import nn

from vaekit import evaluate
from vaekit.model import VAE

X_DIM, Z_DIM, SIGMA = 6, 2, 0.5


class LinearPosterior(nn.Module):
    """The exact posterior mean of a linear Gaussian model, with its variance inflated, so
    importance sampling is needed (and biased) with few samples."""

    def __init__(self, w, b, inflate=3.0):
        super().__init__()
        precision = torch.eye(Z_DIM) + w.T @ w / SIGMA**2
        cov = torch.linalg.inv(precision)
        self.register_buffer("gain", cov @ w.T / SIGMA**2)
        self.register_buffer("b", b)
        self.register_buffer("logvar", torch.log(torch.diagonal(cov) * inflate))

    def forward(self, x, c=None):
        mean = (x - self.b) @ self.gain.T
        return torch.cat([mean, self.logvar.expand_as(mean)], dim=1)


class LinearDecoder(nn.Module):
    def __init__(self, w, b):
        super().__init__()
        self.register_buffer("w", w)
        self.register_buffer("b", b)

    def forward(self, z, c=None):
        return z @ self.w.T + self.b


@pytest.fixture(scope="module")
def linear_model():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(X_DIM, Z_DIM, generator=g)
    b = torch.randn(X_DIM, generator=g)
    model = VAE(LinearPosterior(w, b), LinearDecoder(w, b), Z_DIM, (X_DIM,), "gaussian").eval()
    model.likelihood.sigma = SIGMA
    marginal = D.MultivariateNormal(b, covariance_matrix=w @ w.T + SIGMA**2 * torch.eye(X_DIM))
    x = _draw(marginal, 400, seed=1)
    exact = -marginal.log_prob(x).double()  # (400,) per example
    return model, x, exact, w, b


def _draw(dist, n: int, seed: int) -> torch.Tensor:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return dist.sample(torch.Size([n]))


def closed_form_elbo(model, x, w, b) -> tuple[torch.Tensor, torch.Tensor]:
    """The linear-Gaussian model's ELBO terms in closed form, per example: with q = N(m, S)
    (S diagonal) and p(x|z) = N(Wz + b, sigma^2 I),
    distortion = D/2 log(2 pi sigma^2) + (|x - Wm - b|^2 + tr(W S W^T)) / (2 sigma^2),
    rate = 0.5 * sum(m^2 + S - 1 - log S)."""
    enc = model.encoder
    m = ((x - enc.b) @ enc.gain.T).double()
    s = torch.exp(enc.logvar).double().expand_as(m)
    w, b, x = w.double(), b.double(), x.double()
    residual = (x - m @ w.T - b).pow(2).sum(1)
    trace = (s @ (w**2).T).sum(1)  # tr(W diag(s) W^T) = sum_i sum_j W_ij^2 s_j
    distortion = 0.5 * X_DIM * math.log(2 * math.pi * SIGMA**2) + (residual + trace) / (2 * SIGMA**2)
    rate = 0.5 * (m**2 + s - 1 - torch.log(s)).sum(1)
    return distortion, rate


def test_nll_matches_the_exact_marginal_likelihood(linear_model):
    """Only the estimator's error counts: the estimate and the exact value are computed on the
    same x, so their per-example difference is what must be small (not the spread over x)."""
    model, x, exact, _, _ = linear_model
    result = evaluate.nll(model, x, samples=2000)
    assert result.per_example.shape == (400,)
    error = result.per_example - exact.numpy()
    stderr = error.std(ddof=1) / math.sqrt(len(error))
    assert stderr < 0.01  # at K = 2000 each per-example estimate is already close
    assert abs(error.mean()) < 4 * stderr + 2e-3, (error.mean(), stderr)
    assert abs(result.nll - float(exact.mean())) < 4 * stderr + 2e-3


def test_bias_shrinks_with_more_samples_and_iwae_bounds(linear_model):
    """The IWAE bound (Burda et al., 2016): K = 1 is the ELBO (closed form here), it rises with
    K, and stays below the exact log p(x)."""
    model, x, exact, w, b = linear_model
    distortion, rate = closed_form_elbo(model, x, w, b)
    elbo = -(distortion + rate)
    bounds = {k: evaluate.nll(model, x, samples=k, seed=1).iwae_bound for k in (1, 10, 200)}
    log_px = float(-exact.mean())
    # K = 1: one draw per example, so only Monte-Carlo noise separates it from the closed form
    assert bounds[1] == pytest.approx(float(elbo.mean()), abs=0.1)
    assert log_px - float(elbo.mean()) > 0.05  # a real gap for the bound to close
    assert bounds[1] < bounds[10] < bounds[200] < log_px + 0.01
    assert log_px - bounds[200] < 0.25 * (log_px - float(elbo.mean()))


def test_training_step_elbo_estimate_matches_the_closed_form(linear_model):
    """model.terms with fixed noise (what a training step computes): the rate is the closed-form
    KL exactly, and the distortion averaged over many noise draws is the closed form."""
    model, x, _, w, b = linear_model
    distortion, rate = closed_form_elbo(model, x, w, b)
    g = torch.Generator().manual_seed(5)
    draws = []
    with torch.no_grad():
        for _ in range(200):
            t = model.terms(x, noise=torch.randn(len(x), Z_DIM, generator=g))
            np.testing.assert_allclose(t.rate.double().numpy(), rate.numpy(), rtol=1e-5, atol=1e-6)
            draws.append(t.distortion.double())
    mean = torch.stack(draws).mean(0)
    spread = torch.stack(draws).std(0) / math.sqrt(len(draws))
    z_scores = (mean - distortion) / spread
    assert float(z_scores.abs().max()) < 5.0 and abs(float(z_scores.mean())) < 0.5


def test_nll_in_user_units_includes_the_scaling_jacobian(linear_model):
    model, x, _, _, _ = linear_model
    plain = evaluate.nll(model, x, samples=50, seed=3)
    scale = torch.full((X_DIM,), 4.0)
    shift = torch.full((X_DIM,), 1.0)
    model.set_scaling(shift, scale)
    try:
        user = evaluate.nll(model, x * scale + shift, samples=50, seed=3, user_units=True)
    finally:
        model.set_scaling(torch.zeros(1), torch.ones(1))
    # p_user(x) = p_model((x - shift) / scale) / prod(scale)
    assert user.nll == pytest.approx(plain.nll + X_DIM * math.log(4.0), rel=1e-5)


def test_probes_and_summaries():
    rng = np.random.default_rng(0)
    means = np.c_[rng.normal(size=500), 1e-3 * rng.normal(size=500), rng.normal(size=500)]
    assert evaluate.active_units(means) == 2
    labels = (means[:, 0] > 0).astype(int)
    assert evaluate.knn_accuracy(means[:400], labels[:400], means[400:], labels[400:]) > 0.9
    assert evaluate.logistic_accuracy(means[:400], labels[:400], means[400:], labels[400:]) > 0.95
    # the aggregate-posterior KL is ~0 when the codes fill the prior, large when they are spread
    assert evaluate.aggregate_posterior_kl(rng.normal(size=(5000, 2)) * 0.6, np.full((5000, 2), 0.64)) < 0.01
    # closed form: q(z) ~ N(m, C + 1e-4 I) from the codes' own moments, KL to N(0, I) =
    # 0.5 (tr S + |m|^2 - d - log det S); about 94.4 for codes of standard deviation 10
    codes = 10 * rng.normal(size=(5000, 2))
    cov = np.cov(codes, rowvar=False) + 1e-4 * np.eye(2)
    m = codes.mean(0)
    expected = 0.5 * (np.trace(cov) + m @ m - 2 - np.log(np.linalg.det(cov)))
    got = evaluate.aggregate_posterior_kl(codes, np.full((5000, 2), 1e-4))
    assert got == pytest.approx(expected, rel=1e-6) and got == pytest.approx(
        2 * 0.5 * (100 - 1 - np.log(100)), rel=0.05
    )
    kl = evaluate.per_dim_kl(np.zeros((3, 2)), np.ones((3, 2)))
    np.testing.assert_allclose(kl, 0.0, atol=1e-12)


def test_mutual_information_matches_the_linear_gaussian_closed_form():
    """x ~ N(0, I_2), q(z|x) = N(a x, s^2 I): I(x; z) = sum_j 0.5 log(1 + a_j^2 / s^2) in closed
    form; the estimate on 5,000 codes matches it. Identical posteriors carry nothing (exactly 0);
    codes that tell every example apart reach the bound log n."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(5000, 2))
    a, s = np.array([2.0, 0.5]), 0.7
    exact = float(np.sum(0.5 * np.log1p(a**2 / s**2)))
    got = evaluate.mutual_information(x * a, np.full((5000, 2), s**2), seed=0)
    assert got == pytest.approx(exact, abs=0.03), (got, exact)
    assert evaluate.mutual_information(np.zeros((300, 2)), np.ones((300, 2))) == pytest.approx(0.0, abs=1e-12)
    apart = evaluate.mutual_information(100.0 * np.arange(300.0)[:, None], np.full((300, 1), 1e-2))
    assert apart == pytest.approx(math.log(300), abs=1e-6)
    # the same seed gives the same number; above MI_EXAMPLES a seeded subset is used
    assert evaluate.mutual_information(x * a, np.full((5000, 2), s**2), seed=0) == got


def test_decode_takes_several_leading_dimensions(linear_model):
    """decode((K, B, latent)) has batch shape (K, B), and its log_prob(x) broadcasts x over K:
    the same numbers as decoding each of the K slices on its own."""
    model, x, _, _, _ = linear_model
    z = torch.randn(5, 7, Z_DIM, generator=torch.Generator().manual_seed(2))
    px = model.decode(z)
    assert px.batch_shape == (5, 7)
    together = px.log_prob(x[:7])
    apart = torch.stack([model.decode(z[k]).log_prob(x[:7]) for k in range(5)])
    assert together.shape == (5, 7)
    assert torch.allclose(together, apart, atol=1e-5)
