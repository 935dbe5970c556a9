"""IWAE: the negative importance-weighted bound with K samples (Burda et al., 2016, eq. 8)."""

from __future__ import annotations

import math

import torch

from vaekit import config
from vaekit.batch import Batch
from vaekit.errors import check
from vaekit.model import Terms
from vaekit.objectives.base import (
    LossOutput,
    Objective,
    elbo_terms,
    inner_model,
    noise_generator,
    register,
    require_plain_beta,
)

# ============================================================================ IWAE


@register("iwae")
class IWAE(Objective):
    """The importance-weighted bound (Burda et al., 2016, eq. 8), per example, nats:

        bound_i = log (1/K) sum_k p(x_i | z_k) p(z_k) / q(z_k | x_i),   z_k ~ q(z | x_i)

    loss_i = -bound_i; the logged term `bound` is the bound itself (named so it does not collide
    with summary.json's `iwae_bound`, the evaluation's K = nll_samples figure), beside the first
    draw's distortion and rate. K = `iwae_samples` (5, one of the paper's values). K = 1 is the
    ELBO and is computed as such, distortion + closed-form rate (the same expectation as
    log p(x|z) + log p(z) - log q(z|x), lower variance). The gradient is the reparameterised one.
    The draws: z_1 is the model's own, from the step's `noise`; the other K - 1 come from a
    generator seeded by a hash of that noise (`noise_generator`), so the same seed gives the same
    numbers (torch's global generator when no noise is given). Needs beta = 1.
    Raises `VaekitError` for K < 1.
    """

    SETTINGS = config.OBJECTIVE_SETTINGS["iwae"]

    def __init__(self, **settings):
        super().__init__(**settings)
        check(
            self.iwae_samples >= 1,
            f"iwae_samples must be a whole number of at least 1 (1 = the ELBO), not {self.iwae_samples}.",
        )

    def check_model(self, model):
        require_plain_beta(model, self.name, "its K samples (--iwae-samples)")

    def __call__(self, model, batch, noise=None, progress=math.inf):
        terms = model(batch, noise=noise)
        out = elbo_terms(terms)
        if self.iwae_samples == 1:
            bound = -(terms.distortion + terms.rate)
        else:
            bound = self.bound_from(inner_model(model), batch, terms, noise_generator(noise))
        out["bound"] = bound
        return LossOutput(-bound, out, terms)

    def bound_from(self, vae, batch: Batch, terms: Terms, generator=None) -> torch.Tensor:
        """IWAE_K per example (batch,), nats: the model's draw `terms.z` as z_1, K - 1 more
        reparameterised draws of q from `generator` (a CPU generator; None: torch's global)."""
        q, k = terms.q, self.iwae_samples
        base = q.base_dist
        eps = torch.randn((k - 1, *terms.z.shape), generator=generator).to(terms.z.device, terms.z.dtype)
        z_more = base.loc + base.scale * eps  # (K-1, batch, latent_dim)
        log_px_more = vae.decode(z_more, batch.beta, batch.labels).log_prob(batch.x)  # (K-1, batch)
        prior = vae.prior
        log_w_more = log_px_more + prior.log_prob(z_more) - q.log_prob(z_more)
        log_w_first = -terms.distortion + prior.log_prob(terms.z) - q.log_prob(terms.z)
        log_w = torch.cat([log_w_first.unsqueeze(0), log_w_more])
        return torch.logsumexp(log_w, 0) - math.log(k)
