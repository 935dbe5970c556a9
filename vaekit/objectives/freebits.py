"""Free bits: distortion + sum_j max(lambda, E_batch KL_j) (Kingma et al., 2016, eq. 15)."""

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

# ============================================================================ free bits


@register("free-bits")
class FreeBits(KLScheduled):
    """Free bits (Kingma et al., 2016, sec. on free bits, eq. 15), per latent dimension j:

        loss = distortion + w(t) sum_j max(lambda, E_batch[KL_j]),  KL_j = KL(q(z_j|x) || N(0, 1))

    with KL_j averaged over the batch before the max, as the paper does (for minibatch
    estimates). Per example it is written loss_i = distortion_i + w(t) sum_j k_ij, k_ij = KL_ij
    where the dimension's batch mean exceeds lambda and lambda where it does not: the batch mean
    is the paper's objective and a dimension below lambda gets no KL gradient. lambda = 0 is the
    ELBO. Terms: distortion, rate (the full KL), free_bits_kl (sum_j k_ij, nats).
    Settings: free_bits (lambda in nats per dimension, 0.5; the paper tunes it per experiment)
    and the KL schedule. The KL per dimension is in closed form, which needs the N(0, I) prior:
    other priors' KL does not split over dimensions, so they are refused. Needs beta = 1.
    Raises `VaekitError` for a negative lambda or another prior.
    """

    SETTINGS = config.OBJECTIVE_SETTINGS["free-bits"]

    def __init__(self, **settings):
        super().__init__(**settings)
        check(
            self.free_bits >= 0 and math.isfinite(self.free_bits),
            f"free_bits must be a finite number of nats of at least 0, not {self.free_bits!r}.",
        )

    def check_model(self, model):
        require_standard_normal(model, self.name, "needs the KL of each latent dimension")
        require_plain_beta(model, self.name, "--free-bits")

    def loss(self, terms, batch, progress, beta):
        base = terms.q.base_dist
        prior = D.Normal(torch.zeros((), device=base.loc.device, dtype=base.loc.dtype), 1.0)
        kl = D.kl_divergence(base, prior)  # (batch, latent_dim)
        kept = kl.detach().mean(0) > self.free_bits
        free = torch.where(kept, kl, torch.full_like(kl, self.free_bits)).sum(1)
        out = elbo_terms(terms)
        out["free_bits_kl"] = free
        return LossOutput(terms.distortion + self.kl_weight(progress) * free, out, terms)
