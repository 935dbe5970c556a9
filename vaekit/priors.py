"""Priors p(z): each a module with `log_prob`, `sample`, and the KL from a posterior to it.

Every place that needs p(z) asks the model's prior: the rate (closed form where one exists,
Monte Carlo at the sampled z otherwise), the importance-sampled likelihood, samples, the latent
plots' contours, traversal ranges and the aggregate-posterior KL. Adding a prior is one class
here and one entry in `PRIORS`.

    StandardNormal       N(0, I)                                   (Kingma & Welling, 2014)
    MixtureOfGaussians   sum_k pi_k N(mu_k, diag sigma_k^2), learned    (e.g. Dilokthanakul et al., 2016)
    VampPrior            (1/K) sum_k q(z | u_k), K learned pseudo-inputs u_k (Tomczak & Welling, 2018, eq. 9)
"""

from __future__ import annotations

import math

import torch
from torch import distributions as D
from torch import nn

from vaekit.config import PRIOR_SETTINGS
from vaekit.errors import VaekitError, check
from vaekit.registry import registrar

PRIORS: dict[str, type[Prior]] = {}
MC_SAMPLES = 20_000  # draws for a Monte-Carlo KL of a Gaussian to a prior without a closed form


register = registrar(PRIORS)  # @register(name) adds a class to PRIORS


class Prior(nn.Module):
    """p(z) over `latent_dim` dimensions. Subclasses give `distribution()`: a torch distribution
    with event shape (latent_dim,)."""

    name = "base"
    closed_form_kl = False
    # the keys config.yaml's prior entry may hold besides "name": {key: (type, default, meaning)},
    # declared as data in `vaekit.config.PRIOR_SETTINGS` (the options --prior-KEY come from there)
    SETTINGS: dict[str, tuple] = {}

    def __init__(self, latent_dim: int):
        super().__init__()
        self.latent_dim = int(latent_dim)

    def _device(self) -> torch.device:
        for t in [*self.parameters(), *self.buffers()]:
            return t.device
        return torch.device("cpu")

    def distribution(self) -> D.Distribution:
        raise NotImplementedError

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z) in nats: z (..., latent_dim) -> (...)."""
        return self.distribution().log_prob(z)

    def sample(self, n: int) -> torch.Tensor:
        """n draws (n, latent_dim) from torch's global generator (seed it for reproducible draws)."""
        return self.distribution().sample((n,))

    def kl(self, q: D.Distribution, z: torch.Tensor) -> torch.Tensor:
        """KL(q(z|x) || p(z)) per example (batch,), nats: closed form where one exists, else the
        one-sample Monte-Carlo estimate log q(z|x) - log p(z) at the sampled z (batch, latent_dim)
        (unbiased; its gradient is the reparameterised one, Kingma & Welling, 2014, eq. 6)."""
        return q.log_prob(z) - self.log_prob(z)

    def settings(self) -> dict:
        """What config.yaml stores to rebuild this prior (its name included)."""
        return {"name": self.name}

    # ------------------------------------------------------------------ summaries for figures
    def moments(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and variance of each dimension (latent_dim,) each."""
        draws = self.sample(MC_SAMPLES)
        return draws.mean(0), draws.var(0)

    def ranges(self, sds: float = 2.5) -> tuple[torch.Tensor, torch.Tensor]:
        """(low, high) per dimension: mean -/+ `sds` standard deviations of each marginal (the
        span traversals sweep)."""
        mean, var = self.moments()
        return mean - sds * var.sqrt(), mean + sds * var.sqrt()

    def marginal_kl(self, means: torch.Tensor, variances: torch.Tensor, samples: int = 64) -> torch.Tensor:
        """Average over examples of KL(q(z_j|x) || p(z_j)) per dimension (latent_dim,), nats, on
        the CPU, for q(z_j|x) = N(means, variances), (n, latent_dim) each. Here by Monte Carlo:
        `samples` seeded draws per example and dimension (standard error about sd / sqrt(n samples))."""
        gen = torch.Generator().manual_seed(0)
        std = variances.sqrt()
        eps = torch.randn((samples, *means.shape), generator=gen, dtype=means.dtype)
        z = means + std * eps
        log_q = D.Normal(means, std).log_prob(z)
        log_p = self.marginal_log_prob(z.to(self._device())).to("cpu", log_q.dtype)
        return (log_q - log_p).mean((0, 1))

    def marginal_log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z_j) of each dimension's marginal: z (..., latent_dim) -> (..., latent_dim)."""
        raise NotImplementedError

    def kl_from_gaussian(self, mean: torch.Tensor, cov: torch.Tensor) -> float:
        """KL(N(mean, cov) || p) in nats, for mean (latent_dim,) and cov (latent_dim, latent_dim)
        float64 CPU tensors: Monte Carlo with MC_SAMPLES seeded draws where no closed form exists
        (standard error about sd(log ratio) / 141)."""
        fitted = D.MultivariateNormal(mean, covariance_matrix=cov)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            z = fitted.sample((MC_SAMPLES,))
        with torch.no_grad():
            log_p = self.log_prob(z.to(self._device(), torch.float32)).to("cpu", torch.float64)
        return float((fitted.log_prob(z) - log_p).mean())


@register("normal")
class StandardNormal(Prior):
    """N(0, I): the rate KL(q || p) in closed form (Kingma & Welling, 2014, appendix B)."""

    SETTINGS = PRIOR_SETTINGS["normal"]

    closed_form_kl = True

    def __init__(self, latent_dim: int, **_):
        super().__init__(latent_dim)
        self.register_buffer("_zero", torch.zeros(()), persistent=False)  # follows .to(device)

    def distribution(self) -> D.Distribution:
        zeros = self._zero.expand(self.latent_dim)
        return D.Independent(D.Normal(zeros, torch.ones_like(zeros), validate_args=False), 1)

    def sample(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.latent_dim, device=self._zero.device)

    def kl(self, q, z):
        return D.kl_divergence(q, self.distribution())

    def moments(self):
        zeros = self._zero.expand(self.latent_dim)
        return zeros, torch.ones_like(zeros)

    def marginal_kl(self, means, variances, samples: int = 64):
        """Closed form: 0.5 * (m^2 + v - 1 - log v), averaged over examples."""
        q = D.Normal(means, variances.sqrt())
        return D.kl_divergence(q, D.Normal(0.0, 1.0)).mean(0)

    def marginal_log_prob(self, z):
        return D.Normal(0.0, 1.0).log_prob(z)

    def kl_from_gaussian(self, mean, cov):
        eye = torch.eye(len(cov), dtype=cov.dtype)
        fitted = D.MultivariateNormal(mean, covariance_matrix=cov)
        return float(D.kl_divergence(fitted, D.MultivariateNormal(torch.zeros_like(mean), eye)))


class _DiagonalMixture(Prior):
    """A mixture of K diagonal Gaussians; subclasses give `components()` -> (logits (K,),
    means (K, latent_dim), scales (K, latent_dim))."""

    def components(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def distribution(self):
        logits, means, scales = self.components()
        normal = D.Independent(D.Normal(means, scales, validate_args=False), 1)
        return D.MixtureSameFamily(
            D.Categorical(logits=logits, validate_args=False), normal, validate_args=False
        )

    def moments(self):
        logits, means, scales = self.components()
        w = torch.softmax(logits, 0)[:, None]
        mean = (w * means).sum(0)
        var = (w * (scales**2 + means**2)).sum(0) - mean**2
        return mean.detach(), var.clamp_min(0).detach()

    def marginal_log_prob(self, z):
        logits, means, scales = (t.detach().to(z.dtype) for t in self.components())
        log_w = torch.log_softmax(logits, 0)
        per = D.Normal(means, scales).log_prob(z.unsqueeze(-2))  # (..., K, latent_dim)
        return torch.logsumexp(per + log_w[:, None], dim=-2)

    def marginal_kl(self, means, variances, samples: int = 64):
        parts = [
            super(_DiagonalMixture, self).marginal_kl(m, v, samples) * len(m)
            for m, v in zip(means.split(256), variances.split(256), strict=True)
        ]
        return torch.stack(parts).sum(0) / len(means)


@register("mog")
class MixtureOfGaussians(_DiagonalMixture):
    """A learned mixture of K diagonal Gaussians, p(z) = sum_k pi_k N(z; mu_k, diag sigma_k^2).

    Args:
        latent_dim: dimensions of z.
        components: K >= 1. The means start at seeded N(0, I) draws, the scales at 1 (learned as
            log-scales, clamped to [-15, 10] so a component can neither vanish nor overflow).
        weights: "learned", the mixture weights pi as a softmax of K learned logits, or "uniform"
            (1/K).
    The rate has no closed form: it is estimated at the sampled z (see `Prior.kl`).
    Raises `VaekitError` for K < 1 or other weights.
    """

    SETTINGS = PRIOR_SETTINGS["mog"]

    def __init__(self, latent_dim: int, components: int = 10, weights: str = "learned", **_):
        super().__init__(latent_dim)
        check_components(components, "mog")
        check(
            weights in ("learned", "uniform"),
            f"--prior-weights must be learned or uniform, not {weights!r}.",
        )
        self.n_components = int(components)
        self.weights = weights
        self.means = nn.Parameter(torch.randn(self.n_components, latent_dim))
        self.log_scales = nn.Parameter(torch.zeros(self.n_components, latent_dim))
        logits = torch.zeros(self.n_components)
        if weights == "learned":
            self.logits = nn.Parameter(logits)
        else:
            self.register_buffer("logits", logits)

    @property
    def learn_weights(self) -> bool:
        return self.weights == "learned"

    def components(self):
        return self.logits, self.means, torch.exp(self.log_scales.clamp(-15.0, 10.0))

    def settings(self):
        return {"name": self.name, "components": self.n_components, "weights": self.weights}


@register("vamp")
class VampPrior(_DiagonalMixture):
    """The VampPrior (Tomczak & Welling, 2018, eq. 9): p(z) = (1/K) sum_k q(z | u_k), the
    encoder's posterior at K learned pseudo-inputs u_k (K, *data_shape) in the likelihood's units.

    Args:
        latent_dim: dimensions of z.
        components: K >= 1 (500 in the paper; a smaller default keeps a CPU step cheap: each
            step encodes the K pseudo-inputs).
        data_shape: the shape of one example.
        pseudo_inputs: "learned" (the paper's VampPrior), or "data": fixed at the K training
            examples they start at, never trained ('VampPrior data', Tomczak & Welling, 2018,
            Table 2).
    The model attaches its encoder with `attach(model)`; the pseudo-inputs start at K training
    examples (`init_from`) or, when none are given, at seeded N(0, 0.01) noise.
    """

    SETTINGS = PRIOR_SETTINGS["vamp"]

    def __init__(self, latent_dim: int, components: int = 50, data_shape=(1,), pseudo_inputs="learned", **_):
        super().__init__(latent_dim)
        check_components(components, "vamp")
        check(
            pseudo_inputs in ("learned", "data"),
            f"--prior-pseudo-inputs must be learned or data, not {pseudo_inputs!r}.",
        )
        self.n_components = int(components)
        self.fixed = pseudo_inputs == "data"
        start = 0.1 * torch.randn(self.n_components, *data_shape)
        if self.fixed:  # the 'VampPrior data' variant: K training examples, not trained
            self.register_buffer("pseudo_inputs", start)
        else:
            self.pseudo_inputs = nn.Parameter(start)
        self._model: list = []  # a list, so the encoder is not registered twice as a submodule

    def attach(self, model) -> None:
        """Use `model.encode` for q(z|u_k) (the VAE does this when it is built with this prior)."""
        self._model[:] = [model]

    def init_from(self, x: torch.Tensor) -> None:
        """Start the pseudo-inputs at the given examples (K, *data_shape) (repeated if fewer)."""
        reps = math.ceil(self.n_components / len(x))
        with torch.no_grad():
            self.pseudo_inputs.copy_(
                torch.as_tensor(x).repeat(reps, *[1] * (x.ndim - 1))[: self.n_components]
            )

    def components(self):
        check(
            bool(self._model),
            "The VampPrior is not attached to a model; build the model with VAE(..., prior=this prior) "
            "or call prior.attach(model).",
        )
        q = self._model[0].encode(self.pseudo_inputs)
        logits = torch.zeros(self.n_components, device=self.pseudo_inputs.device)
        return logits, q.base_dist.loc, q.base_dist.scale

    def settings(self):
        out = {"name": self.name, "components": self.n_components}
        return {**out, "pseudo_inputs": "data"} if self.fixed else out


def check_components(components, prior: str) -> None:
    ok = isinstance(components, int) and not isinstance(components, bool) and components >= 1
    check(
        ok,
        f"--prior-components for the {prior} prior must be a whole number of at least 1, not {components!r}.",
    )


def make(settings: dict | str | None, latent_dim: int, data_shape=(1,)) -> Prior:
    """The prior that `settings` (config.yaml's `prior` entry, or a name) describes; None = N(0, I).
    `data_shape` is one example's shape (a VampPrior's pseudo-inputs have it). Raises
    `VaekitError` for an unknown prior, a setting that prior does not have, or a bad value."""
    if settings is None:
        settings = {"name": "normal"}
    if isinstance(settings, str):
        settings = {"name": settings}
    settings = dict(settings)
    name = settings.pop("name", "normal")
    if (
        name == "mog" and "learn_weights" in settings
    ):  # a run folder written before the weights setting: a bool
        settings["weights"] = "learned" if settings.pop("learn_weights") else "uniform"
    if name not in PRIORS:
        raise VaekitError(f"Unknown prior {name!r}; choose one of {', '.join(PRIORS)}.")
    known = PRIORS[name].SETTINGS
    unknown = sorted(set(settings) - set(known))
    if unknown:
        raise VaekitError(
            f"The {name} prior has no setting {unknown[0]!r} (its settings: {', '.join(known) or 'none'})."
        )
    return PRIORS[name](latent_dim, data_shape=tuple(data_shape), **settings)


__all__ = ["Prior", "StandardNormal", "MixtureOfGaussians", "VampPrior", "PRIORS", "make"]
