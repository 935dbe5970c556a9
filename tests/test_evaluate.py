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
    x = marginal.sample(torch.Size([400]))
    exact = float(-marginal.log_prob(x).mean())
    return model, x, exact


def test_nll_matches_the_exact_marginal_likelihood(linear_model):
    model, x, exact = linear_model
    result = evaluate.nll(model, x, samples=2000)
    assert result.samples == 2000
    assert abs(result.nll - exact) < 3 * result.stderr + 0.01
    # the estimate is a mean over examples of a per-example estimate
    assert result.per_example.shape == (400,)


def test_bias_shrinks_with_more_samples_and_iwae_bounds_the_elbo(linear_model):
    model, x, exact = linear_model
    biases = [evaluate.nll(model, x, samples=k, seed=1).nll - exact for k in (1, 10, 200)]
    assert biases[0] > biases[1] > biases[2] > -0.02
    assert biases[0] > 0.05  # with one sample it is the ELBO: a real gap
    with torch.no_grad():
        elbo = float(model.elbo(x).mean())
    iwae = evaluate.nll(model, x, samples=50).iwae_bound
    assert iwae >= elbo - 0.05
    assert evaluate.nll(model, x, samples=50).iwae_bound == pytest.approx(-evaluate.nll(model, x, 50).nll)


def test_nll_in_user_units_includes_the_scaling_jacobian(linear_model):
    model, x, _ = linear_model
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
    assert evaluate.aggregate_posterior_kl(10 * rng.normal(size=(5000, 2)), np.full((5000, 2), 1e-4)) > 5
    kl = evaluate.per_dim_kl(np.zeros((3, 2)), np.ones((3, 2)))
    np.testing.assert_allclose(kl, 0.0, atol=1e-12)


def test_decode_takes_several_leading_dimensions(linear_model):
    """decode((K, B, latent)) has batch shape (K, B), and its log_prob(x) broadcasts x over K:
    the same numbers as decoding each of the K slices on its own."""
    model, x, _ = linear_model
    z = torch.randn(5, 7, Z_DIM)
    px = model.decode(z)
    assert px.batch_shape == (5, 7)
    together = px.log_prob(x[:7])
    apart = torch.stack([model.decode(z[k]).log_prob(x[:7]) for k in range(5)])
    assert together.shape == (5, 7)
    assert torch.allclose(together, apart, atol=1e-5)
