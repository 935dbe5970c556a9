"""The ELBO family: the beta-ELBO (Higgins et al., 2017, eq. 4), its beta-conditioned form and the
deterministic autoencoder's reconstruction objective."""

from __future__ import annotations

import torch

from vaekit.objectives.base import KLScheduled, LossOutput, Objective, elbo_terms, register

# ============================================================================ the ELBO family


@register("beta-elbo")
class BetaELBO(KLScheduled):
    """distortion + w(t) * beta * rate (Higgins et al., 2017, eq. 4) per example, nats, with the
    KL schedule w(t) of `KLScheduled` (default constant; linear warm-up, Bowman et al., 2016;
    cyclical, Fu et al., 2019). beta = 1 with w = 1 is the negative ELBO (Kingma & Welling,
    2014, eq. 3)."""

    def loss(self, terms, batch, progress, beta):
        return LossOutput(
            terms.distortion + self.kl_weight(progress) * beta * terms.rate, elbo_terms(terms), terms
        )


@register("beta-elbo-conditioned")
class ConditionedBetaELBO(BetaELBO):
    """For the beta-conditioned model: beta differs per example. Each example's loss is divided
    by max(1, beta): this leaves each beta's optimum unchanged but stops the large-beta examples'
    gradients from drowning the small-beta ones (without it the shared net collapses)."""

    def loss(self, terms, batch, progress, beta):
        out = super().loss(terms, batch, progress, beta)
        out.loss = out.loss / torch.as_tensor(beta, dtype=out.loss.dtype, device=out.loss.device).clamp_min(
            1.0
        )
        return out


@register("reconstruction")
class Reconstruction(Objective):
    """Distortion only: the deterministic autoencoder's objective (no KL at all)."""

    def loss(self, terms, batch, progress, beta):
        return LossOutput(terms.distortion, {"distortion": terms.distortion}, terms)

    def schedule(self, progress):
        return {"kl_weight": 0.0}
