"""Every registered prior against independent computations: its density is normalised, its
samples have its moments, its rate (closed form or Monte Carlo) matches a large Monte-Carlo KL,
and the importance-sampled likelihood with it matches a closed-form marginal."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import yaml
from reference import diagonal_mixture_log_prob
from torch import distributions as D
from torch import nn

from vaekit import evaluate, priors
from vaekit.model import VAE

LATENT = 2
X_DIM, SIGMA = 5, 0.4


def _decoder_weights(seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(X_DIM, LATENT, generator=g), torch.randn(X_DIM, generator=g)


class LinearEncoder(nn.Module):
    """q(z|x) = N(A (x - b), diag v): A = (W^T W)^-1 W^T, the z that best explains x under the
    linear decoder, and v = 4 x the diagonal of sigma^2 (W^T W)^-1, the likelihood's own spread
    widened: a proposal that covers the posterior whatever the prior (so importance sampling
    converges), and linear, so a VampPrior's components are Gaussians the test computes by hand."""

    def __init__(self):
        super().__init__()
        w, b = _decoder_weights()
        gram = torch.linalg.inv(w.T @ w)
        self.register_buffer("a", gram @ w.T)
        self.register_buffer("b", b)
        self.register_buffer("logvar", torch.log(4 * SIGMA**2 * torch.diagonal(gram)))

    def forward(self, x, c=None):
        mean = (x - self.b) @ self.a.T
        return torch.cat([mean, self.logvar.expand_as(mean)], dim=1)


class LinearDecoder(nn.Module):
    def __init__(self):
        super().__init__()
        w, b = _decoder_weights()
        self.register_buffer("w", w)
        self.register_buffer("b", b)

    def forward(self, z, c=None):
        return z @ self.w.T + self.b


def _model(name: str) -> VAE:
    settings = {"name": name}
    if name != "normal":
        settings["components"] = 3
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(5)
        prior = priors.make(settings, LATENT, (X_DIM,))
    model = VAE(LinearEncoder(), LinearDecoder(), LATENT, (X_DIM,), "gaussian", prior=prior).eval()
    model.likelihood.sigma = SIGMA
    if name == "mog":  # spread the components so the mixture is far from one Gaussian
        with torch.no_grad():
            prior.means.copy_(torch.tensor([[-2.0, 0.0], [2.0, 1.0], [0.0, -2.5]]))
            prior.log_scales.copy_(torch.log(torch.tensor([[0.5, 0.8], [1.0, 0.4], [0.7, 0.7]])))
            prior.logits.copy_(torch.tensor([0.0, 0.7, -0.4]))
    if name == "vamp":
        with torch.no_grad():
            prior.pseudo_inputs.copy_(3 * torch.randn(3, X_DIM, generator=torch.Generator().manual_seed(9)))
    return model


def _components(model):
    """(weights, means, stds) of the prior written by hand, not read from vaekit's mixture code."""
    prior = model.prior
    if prior.name == "normal":
        return torch.ones(1), torch.zeros(1, LATENT), torch.ones(1, LATENT)
    if prior.name == "mog":
        return (
            torch.softmax(prior.logits.detach(), 0),
            prior.means.detach(),
            torch.exp(prior.log_scales.detach()),
        )
    enc = model.encoder
    u = prior.pseudo_inputs.detach()
    means = (u - enc.b) @ enc.a.T
    stds = torch.exp(0.5 * enc.logvar).expand_as(means)
    return torch.full((len(u),), 1 / len(u)), means, stds


@pytest.fixture(params=sorted(priors.PRIORS))
def model(request):
    return _model(request.param)


def test_every_prior_is_in_this_table():
    assert set(priors.PRIORS) == {"normal", "mog", "vamp"}, "add the new prior to the tests here"


def test_every_prior_declares_its_settings_as_data():
    """Each registered prior takes its SETTINGS from vaekit.config.PRIOR_SETTINGS (no torch), and
    each setting is an option --prior-SETTING of vaekit train with its help."""
    from vaekit import config

    assert list(priors.PRIORS) == list(config.PRIOR_SETTINGS), "declare the new prior's row"
    for name, cls in priors.PRIORS.items():
        assert cls.SETTINGS is config.PRIOR_SETTINGS[name], name
    options = {o.name: o for o in config.training_options()}
    for settings in config.PRIOR_SETTINGS.values():
        for key, (kind, _, meaning) in settings.items():
            assert options[f"prior_{key}"].type is kind and meaning in options[f"prior_{key}"].help


def test_vamp_prior_data_keeps_its_pseudo_inputs_at_training_examples(tmp_path):
    """--prior-pseudo-inputs data (Tomczak & Welling, 2018, Table 2, 'VampPrior data'): the K
    pseudo-inputs are training examples and stay exactly those examples through training; the
    learned VampPrior moves them."""
    import vaekit
    from vaekit.cli import main

    data = vaekit.datasets.load("digits")
    moved = {}
    for variant in ("data", "learned"):
        out = tmp_path / variant
        main(
            ["train", "--data", "digits", "--prior", "vamp", "--prior-components", "6"]
            + ["--prior-pseudo-inputs", variant, "--epochs", "1", "--hidden", "32", "--quiet"]
            + ["--nll-samples", "2", "--device", "cpu", "--out", str(out)]
        )
        model = vaekit.load(out)
        u = model.prior.pseudo_inputs.detach()
        train = torch.as_tensor(data.x_train).reshape(len(data.x_train), -1)
        distance = torch.cdist(u.reshape(len(u), -1), train).min(1).values
        moved[variant] = float(distance.max())
        assert ("pseudo_inputs" in dict(model.prior.named_parameters())) == (variant == "learned")
        entry = yaml.safe_load((out / "config.yaml").read_text())["model"]["prior"]
        assert entry == {"name": "vamp", "components": 6, "pseudo_inputs": variant}
    assert moved["data"] == 0.0 and moved["learned"] > 1e-3


def test_a_mixture_entry_of_an_older_run_still_loads():
    """Run folders written before the weights setting hold learn_weights (a bool)."""
    old = priors.make({"name": "mog", "components": 3, "learn_weights": False}, 2)
    assert old.settings() == {"name": "mog", "components": 3, "weights": "uniform"}
    assert priors.make({"name": "mog", "learn_weights": True}, 2).weights == "learned"


def test_log_prob_is_normalised_and_matches_the_hand_density(model):
    with torch.no_grad():
        grid = torch.linspace(-9, 9, 721)
        gx, gy = torch.meshgrid(grid, grid, indexing="xy")
        z = torch.stack([gx, gy], -1).reshape(-1, 2)
        log_p = model.prior.log_prob(z).double()
    cell = float(grid[1] - grid[0]) ** 2
    assert float(log_p.exp().sum() * cell) == pytest.approx(1.0, abs=2e-3)
    hand = diagonal_mixture_log_prob(z, *_components(model))
    np.testing.assert_allclose(log_p.numpy(), hand.numpy(), atol=1e-4)


def test_samples_have_the_prior_moments(model):
    weights, means, stds = (t.double() for t in _components(model))
    mean = (weights[:, None] * means).sum(0)
    var = (weights[:, None] * (stds**2 + means**2)).sum(0) - mean**2
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        draws = model.prior.sample(200_000).double()
    sd_of_mean = (var / len(draws)).sqrt()
    assert torch.all((draws.mean(0) - mean).abs() < 5 * sd_of_mean), (draws.mean(0), mean)
    np.testing.assert_allclose(draws.var(0).numpy(), var.numpy(), rtol=0.02)
    m, v = model.prior.moments()
    np.testing.assert_allclose(
        m.double().numpy(), mean.numpy(), atol=0.02 if model.prior.name == "normal" else 1e-5
    )
    np.testing.assert_allclose(v.double().numpy(), var.numpy(), rtol=1e-4)


def test_rate_matches_a_large_monte_carlo_kl(model):
    """The rate the model trains with, averaged over its own z draws, against KL(q || p) from
    200,000 fresh draws with the hand-written density."""
    x = torch.randn(4, X_DIM, generator=torch.Generator().manual_seed(3))
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        q = model.encode(x)
        z = q.sample((200_000,))
        log_ratio = q.log_prob(z).double() - diagonal_mixture_log_prob(z, *_components(model))
        mc, mc_stderr = log_ratio.mean(0), log_ratio.std(0) / math.sqrt(len(z))
        rates = torch.stack([model.terms(x).rate for _ in range(4000)]).double()
    stderr = (rates.var(0) / len(rates) + mc_stderr**2).sqrt()
    assert torch.all((rates.mean(0) - mc).abs() < 5 * stderr + 1e-4), (rates.mean(0), mc, stderr)
    if model.prior.closed_form_kl:  # no noise at all: the closed form itself
        np.testing.assert_allclose(rates[0].numpy(), mc.numpy(), atol=0.02)


def test_is_nll_matches_the_closed_form_marginal(model):
    """With p(x|z) = N(Wz + b, sigma^2 I) and a mixture prior sum_k w_k N(mu_k, S_k), the
    marginal is sum_k w_k N(x; W mu_k + b, W S_k W^T + sigma^2 I) in closed form (for N(0, I) and
    the VampPrior with a linear encoder too)."""
    dec = model.decoder
    weights, means, stds = (t.double() for t in _components(model))
    w, b = dec.w.double(), dec.b.double()
    comps = D.MultivariateNormal(
        means @ w.T + b,
        covariance_matrix=w @ torch.diag_embed(stds**2) @ w.T
        + SIGMA**2 * torch.eye(X_DIM, dtype=torch.float64),
    )
    marginal = D.MixtureSameFamily(D.Categorical(probs=weights), comps)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(2)
        x = marginal.sample((100,)).float()
    exact = -marginal.log_prob(x.double()).numpy()
    result = evaluate.nll(model, x, samples=3000, seed=0)
    diff = result.per_example - exact
    # -IWAE_K is an upper bound on -log p(x) in expectation; one estimate per example is noisy
    assert np.all(np.abs(diff) < 0.2), np.abs(diff).max()
    assert abs(diff.mean()) < 0.02, (diff.mean(), result.nll, exact.mean())


def test_aggregate_kl_and_traversal_ranges_ask_the_prior():
    """The aggregate-posterior KL with the MoG prior: KL from the moment-matched Gaussian to the
    mixture, against 200,000 draws scored with the hand-written mixture density."""
    model = _model("mog")
    rng = np.random.default_rng(0)
    means = rng.normal([0.5, -0.3], [1.2, 0.8], size=(3000, 2))
    variances = rng.uniform(0.05, 0.3, size=(3000, 2))
    to_mog = evaluate.aggregate_posterior_kl(means, variances, model.prior)
    m = torch.as_tensor(means.mean(0))
    cov = torch.as_tensor(np.cov(means.T) + np.diag(variances.mean(0)))
    fitted = D.MultivariateNormal(m, covariance_matrix=cov)
    z = fitted.sample((200_000,))
    hand = float((fitted.log_prob(z) - diagonal_mixture_log_prob(z, *_components(model))).mean())
    assert to_mog == pytest.approx(hand, abs=0.03)
    assert to_mog != pytest.approx(evaluate.aggregate_posterior_kl(means, variances), abs=0.1)
    low, high = model.prior.ranges(2.5)
    m, v = model.prior.moments()
    np.testing.assert_allclose((high - low).numpy(), (5 * v.sqrt()).numpy(), rtol=1e-6)
    assert torch.all(low < m) and torch.all(m < high)
    normal = _model("normal")
    lo, hi = normal.prior.ranges(2.5)
    assert lo.tolist() == [-2.5, -2.5] and hi.tolist() == [2.5, 2.5]


def test_per_dimension_kl_to_the_mixture_marginal():
    """per_dim_kl with the MoG prior: the average KL from q(z_j|x) to the prior's 1-D marginal,
    against a numerical integral of q log(q / p_j) on a fine grid."""
    model = _model("mog")
    weights, means, stds = _components(model)
    m = np.array([[0.3, -1.0], [1.5, 0.2]])
    v = np.array([[0.2, 0.5], [0.1, 0.3]])
    got = evaluate.per_dim_kl(m, v, model.prior)
    grid = torch.linspace(-12, 12, 20001, dtype=torch.float64)
    dz = float(grid[1] - grid[0])
    expected = []
    for j in range(LATENT):
        log_p = torch.logsumexp(
            D.Normal(means[:, j].double(), stds[:, j].double()).log_prob(grid[:, None])
            + torch.log(weights.double()),
            dim=1,
        )
        kls = []
        for i in range(len(m)):
            log_q = D.Normal(m[i, j], math.sqrt(v[i, j])).log_prob(grid)
            kls.append(float((log_q.exp() * (log_q - log_p)).sum() * dz))
        expected.append(np.mean(kls))
    np.testing.assert_allclose(got, expected, atol=0.05)


def test_unknown_prior_and_bad_settings_are_one_sentence():
    from vaekit.errors import VaekitError

    with pytest.raises(VaekitError, match="Unknown prior 'flat'; choose one of"):
        priors.make("flat", 2)
    with pytest.raises(VaekitError, match="at least 1"):
        priors.make({"name": "mog", "components": 0}, 2)
    with pytest.raises(VaekitError, match="no setting 'temperature'"):
        priors.make({"name": "mog", "temperature": 2}, 2)
    with pytest.raises(
        VaekitError,
        match=r"The vamp prior has no setting 'learn_weights' \(its settings: components, pseudo_inputs\)",
    ):
        priors.make({"name": "vamp", "learn_weights": False}, 2)
    with pytest.raises(VaekitError, match="The normal prior has no setting 'components'"):
        priors.make({"name": "normal", "components": 3}, 2)
    fixed = priors.make({"name": "mog", "components": 3, "learn_weights": False}, 2)
    assert "logits" in dict(fixed.named_buffers()) and "logits" not in dict(fixed.named_parameters())
