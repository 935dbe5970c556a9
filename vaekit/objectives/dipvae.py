"""DIP-VAE: the ELBO minus a penalty on the aggregate posterior's covariance, type I or II
(Kumar et al., 2018, eq. 6 and 7)."""

from __future__ import annotations

import math

import torch
from torch import distributions as D

from vaekit import config
from vaekit.errors import check
from vaekit.objectives.base import (
    KLScheduled,
    LossOutput,
    elbo_terms,
    register,
    require_plain_beta,
    require_standard_normal,
)

# ============================================================================ DIP-VAE


def dip_covariance(q: D.Distribution, dip_type: str = "i") -> torch.Tensor:
    """The covariance DIP-VAE matches to the identity (Kumar et al., 2018, sec. 3), (latent_dim,
    latent_dim), over the batch (expectations over p(x) are batch means, so 1/M, not 1/(M-1)):

        i:  Cov_p(x)[mu(x)]                                  (eq. 6)
        ii: Cov_q(z)[z] = Cov_p(x)[mu(x)] + E_p(x)[Sigma(x)]  (eq. 7)

    q: the diagonal-Gaussian posterior (loc, scale (batch, latent_dim)); Sigma(x) is diagonal,
    so type ii adds the mean posterior variance to the diagonal only.
    """
    base = q.base_dist if isinstance(q, D.Independent) else q
    mu = base.loc
    centred = mu - mu.mean(0, keepdim=True)
    cov = centred.T @ centred / len(mu)
    if dip_type == "ii":
        cov = cov + torch.diag(base.scale.pow(2).mean(0))
    return cov


def dip_penalty(cov: torch.Tensor, lambda_od: float, lambda_d: float) -> torch.Tensor:
    """lambda_od sum_{i != j} Cov_ij^2 + lambda_d sum_i (Cov_ii - 1)^2 (Kumar et al., 2018,
    eq. 6/7): a scalar, 0 exactly at Cov = I."""
    diag = torch.diagonal(cov)
    off = cov - torch.diag(diag)
    return lambda_od * off.pow(2).sum() + lambda_d * (diag - 1).pow(2).sum()


@register("dip-vae")
class DIPVAE(KLScheduled):
    """DIP-VAE (Kumar et al., 2018, eq. 6 for type I, eq. 7 for type II): the ELBO plus a penalty
    pulling the covariance of the posterior means (I) or of the aggregate posterior (II, means'
    covariance plus the mean posterior variance on the diagonal) to the identity:

        loss_i = distortion_i + w(t) rate_i + dip_penalty
        dip_penalty = lambda_od sum_{i != j} Cov_ij^2 + lambda_d sum_i (Cov_ii - 1)^2

    The penalty is one number per batch (the covariance is the batch's, `dip_covariance`),
    broadcast to every example, so the batch mean of the loss is the paper's minibatch objective;
    it is logged as dip_penalty (nats-scale units of the loss, per batch).
    Settings: dip_type (i or ii), lambda_od (10), lambda_d (default 10 lambda_od for type I and
    lambda_od for type II, the paper's ratios), and the KL schedule. Needs the N(0, I) prior
    (the identity is its covariance) and beta = 1. Raises `VaekitError` for a bad setting.
    """

    batch_dependent = True

    SETTINGS = config.OBJECTIVE_SETTINGS["dip-vae"]

    def __init__(self, **settings):
        super().__init__(**settings)
        self.dip_type = str(self.dip_type).lower()
        check(
            self.dip_type in ("i", "ii"),
            f"dip_type must be i or ii (DIP-VAE-I or DIP-VAE-II), not {settings.get('dip_type')!r}.",
        )
        if self.lambda_d is None:
            self.lambda_d = self.lambda_od * (10.0 if self.dip_type == "i" else 1.0)
        for key in ("lambda_od", "lambda_d"):
            value = getattr(self, key)
            check(
                value >= 0 and math.isfinite(value),
                f"{key} must be a finite number of at least 0, not {value!r}.",
            )

    def check_model(self, model):
        require_standard_normal(
            model, self.name, "matches the aggregate posterior's covariance to the identity"
        )
        require_plain_beta(model, self.name, "--lambda-od and --lambda-d")

    def loss(self, terms, batch, progress, beta):
        penalty = dip_penalty(dip_covariance(terms.q, self.dip_type), self.lambda_od, self.lambda_d)
        penalty = penalty.expand(len(terms.distortion))
        out = elbo_terms(terms)
        out["dip_penalty"] = penalty
        return LossOutput(terms.distortion + self.kl_weight(progress) * terms.rate + penalty, out, terms)
