"""Objectives: the model's terms in, the loss to minimise and the values to log out.

An objective is a small callable; adding one is one class and one registry entry.
"""

from __future__ import annotations

import math

import torch

from vaekit.errors import VaekitError
from vaekit.model import Terms

OBJECTIVES: dict[str, type[Objective]] = {}


def register(name: str):
    def wrap(cls):
        cls.name = name
        OBJECTIVES[name] = cls
        return cls

    return wrap


class Objective:
    """`loss(terms, beta, progress)` -> per-example loss (batch,); `progress` is in epochs."""

    name = "base"

    def loss(self, terms: Terms, beta: torch.Tensor | float, progress: float) -> torch.Tensor:
        raise NotImplementedError

    def kl_weight(self, progress: float) -> float:
        """The factor on beta * rate at `progress` epochs (logged in metrics.jsonl)."""
        return 1.0

    def settings(self) -> dict:
        return {}


@register("beta-elbo")
class BetaELBO(Objective):
    """distortion + beta * rate (Higgins et al., 2017), with an optional linear KL warm-up
    over the first `warmup_epochs` epochs (Bowman et al., 2016). beta = 1 is the ELBO."""

    def __init__(self, warmup_epochs: float = 0.0):
        if not (warmup_epochs >= 0 and math.isfinite(warmup_epochs)):
            raise VaekitError(f"warmup_epochs must be at least 0, not {warmup_epochs!r}.")
        self.warmup_epochs = float(warmup_epochs)

    def kl_weight(self, progress: float) -> float:
        if self.warmup_epochs <= 0:
            return 1.0
        return min(1.0, progress / self.warmup_epochs)

    def loss(self, terms, beta, progress):
        return terms.distortion + self.kl_weight(progress) * beta * terms.rate

    def settings(self):
        return {"warmup_epochs": self.warmup_epochs}


@register("beta-elbo-conditioned")
class ConditionedBetaELBO(BetaELBO):
    """For the beta-conditioned model: beta differs per example. Each example's loss is divided
    by max(1, beta): this leaves each beta's optimum unchanged but stops the large-beta examples'
    gradients from drowning the small-beta ones (without it the shared net collapses)."""

    def loss(self, terms, beta, progress):
        return super().loss(terms, beta, progress) / beta.clamp_min(1.0)


@register("reconstruction")
class Reconstruction(Objective):
    """Distortion only: the deterministic autoencoder's objective (no KL at all)."""

    def loss(self, terms, beta, progress):
        return terms.distortion

    def kl_weight(self, progress):
        return 0.0


def for_model(model, warmup_epochs: float = 0.0) -> Objective:
    """The objective a model trains with by default."""
    if model.kind == "ae":
        return Reconstruction()
    if model.conditional:
        return ConditionedBetaELBO(warmup_epochs)
    return BetaELBO(warmup_epochs)
