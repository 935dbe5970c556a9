"""Reconstruction likelihoods p(x|z): a name mapped to a `torch.distributions` family.

Every log-probability is a normalised density (or mass function) in nats, constants included,
summed over the data dimensions, so figures compare across likelihoods and with papers.
A likelihood is a small module: the decoder produces one tensor of parameters shaped like the
data; the likelihood turns it into a distribution (and may own learned parameters, like sigma).
"""

from __future__ import annotations

import math

import torch
from torch import distributions as D
from torch import nn

from vaekit.errors import VaekitError
from vaekit.registry import registrar

LIKELIHOODS: dict[str, type[Likelihood]] = {}


register = registrar(LIKELIHOODS)  # @register(name) adds a class to LIKELIHOODS


class Likelihood(nn.Module):
    """Maps decoder output (batch, *shape) to a distribution with event shape `shape`."""

    name = "base"
    needs_unit_interval = False  # data must lie in [0, 1]

    def __init__(self, shape: tuple[int, ...], **_: object):
        super().__init__()
        self.shape = tuple(shape)
        self.param_shape = self.shape  # the decoder's outputs per example

    def base(self, params: torch.Tensor) -> D.Distribution:
        """The per-dimension distribution for decoder output `params` (..., *shape); subclasses
        give it (batch shape (..., *shape), no event dimensions)."""
        raise NotImplementedError

    def forward(self, params: torch.Tensor) -> D.Distribution:
        """p(x|z) for decoder output `params` (..., *shape): `base` with the data dimensions as
        the event, so `log_prob(x)` is (...,), nats summed over the dimensions of each example."""
        return D.Independent(self.base(params), len(self.shape))

    def settings(self) -> dict:
        """This likelihood's settings besides its name, as `make` takes them ({} when it has none)."""
        return {}


@register("gaussian")
class Gaussian(Likelihood):
    """N(x; mu(z), sigma^2) with a fixed sigma: -log p = |x - mu|^2 / (2 sigma^2) + D log(sigma sqrt(2 pi)).

    Multiplying sigma^2 by c weighs the KL c times more relative to the squared error, the same
    move as multiplying beta by c (up to the constant).
    """

    def __init__(self, shape, sigma: float = 1.0, **_):
        super().__init__(shape)
        if not (isinstance(sigma, (int, float)) and sigma > 0 and math.isfinite(sigma)):
            raise VaekitError(f"sigma must be a positive number, not {sigma!r}.")
        self.sigma = float(sigma)

    def base(self, params):
        return D.Normal(params, self.sigma, validate_args=False)

    def settings(self):
        return {"sigma": self.sigma}


@register("gaussian-learned")
class GaussianLearned(Likelihood):
    """N(x; mu(z), sigma^2) with sigma learned: one shared value, or one per data dimension."""

    def __init__(self, shape, per_dim: bool = False, **_):
        super().__init__(shape)
        self.per_dim = bool(per_dim)
        self.log_sigma = nn.Parameter(torch.zeros(self.shape if per_dim else ()))

    def base(self, params):
        return D.Normal(params, self.log_sigma.clamp(-7.0, 7.0).exp(), validate_args=False)

    def settings(self):
        return {"per_dim": self.per_dim}


@register("laplace")
class Laplace(Likelihood):
    """Laplace(x; mu(z), b) with a learned scale b shared over dimensions (an L1 distortion)."""

    def __init__(self, shape, **_):
        super().__init__(shape)
        self.log_scale = nn.Parameter(torch.zeros(()))

    def base(self, params):
        return D.Laplace(params, self.log_scale.clamp(-7.0, 7.0).exp(), validate_args=False)


@register("bernoulli")
class Bernoulli(Likelihood):
    """Bernoulli(x; sigmoid(logits)): a mass function for binary data. On grey levels in (0, 1)
    it is the usual binary cross-entropy, which is not a normalised density; use
    continuous-bernoulli for that."""

    needs_unit_interval = True

    def base(self, params):
        return D.Bernoulli(logits=params, validate_args=False)


@register("continuous-bernoulli")
class ContinuousBernoulli(Likelihood):
    """The continuous Bernoulli (Loaiza-Ganem & Cunningham, 2019): a normalised density on [0, 1]."""

    needs_unit_interval = True

    def base(self, params):
        return D.ContinuousBernoulli(logits=params, validate_args=False)


def make(name: str, shape: tuple[int, ...], **settings) -> Likelihood:
    """The likelihood registered as `name` for examples of `shape`, built with `settings` (e.g.
    sigma, per_dim); settings that likelihood does not take are ignored. Raises `VaekitError` for
    an unknown name, or a bad value (a sigma that is not a positive finite number)."""
    if name not in LIKELIHOODS:
        raise VaekitError(f"Unknown likelihood {name!r}; choose one of {', '.join(LIKELIHOODS)}.")
    return LIKELIHOODS[name](shape, **settings)
