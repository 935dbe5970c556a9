"""beta-TCVAE: the ELBO split into index-code mutual information, total correlation and
dimension-wise KL, each weighted (Chen et al., 2018, eq. 2 and 4)."""

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

# ============================================================================ beta-TCVAE

ESTIMATORS = ("mws", "mss")


def log_importance_weights(m: int, n_train: int, estimator: str, device=None, dtype=torch.float32):
    """log w_ij (m, m): the weight of q(z_i | x_j) in the minibatch estimate of the aggregate
    posterior q(z_i) = (1/N) sum_n q(z_i | x_n) (Chen et al., 2018, sec. 3 and appendix C).

    Args:
        m: the batch size M (examples i, j of one batch).
        n_train: the training set's size N (never the batch size).
        estimator: "mws", minibatch-weighted sampling: every w_ij = 1 / (N M), as the paper's
            estimator E[log q(z)] ~ (1/M) sum_i log (1/(N M)) sum_j q(z_i|x_j) (sec. 3) writes it;
            or "mss", minibatch-stratified sampling: the example's own posterior weighs exactly
            1/N and the other N - 1 examples' share, (N - 1)/N, is spread over the batch's other
            M - 1 examples, w_ij = (N - 1) / (N (M - 1)), so the weights of each row sum to 1
            (an unbiased estimate of q(z_i) itself when the batch is drawn without replacement).
    Raises `VaekitError` for an unknown estimator or N < 1.
    """
    check(estimator in ESTIMATORS, f"estimator must be one of {', '.join(ESTIMATORS)}, not {estimator!r}.")
    check(n_train >= 1, f"The data set size N must be at least 1, not {n_train!r}.")
    if estimator == "mws":
        return torch.full((m, m), -math.log(n_train * m), device=device, dtype=dtype)
    own = -math.log(n_train)
    if m == 1:
        return torch.full((1, 1), own, device=device, dtype=dtype)
    other = math.log(n_train - 1) - math.log(n_train * (m - 1)) if n_train > 1 else -math.inf
    w = torch.full((m, m), other, device=device, dtype=dtype)
    w.fill_diagonal_(own)
    return w


def tc_decomposition(
    q: D.Distribution, z: torch.Tensor, log_pz: torch.Tensor, n_train: int, estimator: str = "mws"
) -> dict[str, torch.Tensor]:
    """The KL term split into index-code mutual information, total correlation and
    dimension-wise KL (Chen et al., 2018, eq. 2), per example, by the minibatch estimators.

    With log q(z) and log q(z_j) estimated from the batch (`log_importance_weights`):
        mi_i         = log q(z_i | x_i) - log q(z_i)
        tc_i         = log q(z_i) - sum_j log q(z_ij)
        dimwise_kl_i = sum_j log q(z_ij) - log p(z_i)
    Their sum is log q(z_i | x_i) - log p(z_i), the one-sample KL estimate, exactly (the
    estimated densities cancel); each term's batch mean is the paper's estimate of that term.

    Args:
        q: the posterior, `Independent(Normal)` with loc/scale (batch, latent_dim).
        z: (batch, latent_dim) one draw from q per example.
        log_pz: (batch,) log p(z_i) under a prior that factorises over dimensions, nats.
        n_train: the training set's size N.
        estimator: "mws" or "mss".
    Returns {"mi", "tc", "dimwise_kl", "log_qz_x"}: (batch,) each, nats.
    """
    base = q.base_dist if isinstance(q, D.Independent) else q
    loc, scale = base.loc, base.scale
    m = len(z)
    # log q(z_id | x_j) for every pair: (i, j, d)
    per_dim = D.Normal(loc.unsqueeze(0), scale.unsqueeze(0), validate_args=False).log_prob(z.unsqueeze(1))
    log_w = log_importance_weights(m, n_train, estimator, z.device, z.dtype)
    log_qz = torch.logsumexp(per_dim.sum(2) + log_w, dim=1)  # (i,)
    log_qz_dims = torch.logsumexp(per_dim + log_w.unsqueeze(2), dim=1)  # (i, d)
    log_prod = log_qz_dims.sum(1)
    log_qz_x = q.log_prob(z)
    return {
        "mi": log_qz_x - log_qz,
        "tc": log_qz - log_prod,
        "dimwise_kl": log_prod - log_pz,
        "log_qz_x": log_qz_x,
    }


@register("beta-tcvae")
class BetaTCVAE(KLScheduled):
    """beta-TCVAE (Chen et al., 2018, eq. 4): the KL term split (eq. 2) into index-code mutual
    information I(z; n), total correlation KL(q(z) || prod_j q(z_j)) and dimension-wise KL
    sum_j KL(q(z_j) || p(z_j)), weighted alpha, beta, gamma:

        loss_i = distortion_i + w(t) [alpha mi_i + beta tc_i + gamma dimwise_kl_i]

    computed as distortion_i + w(t) [rate_i + (alpha-1) mi_i + (beta-1) tc_i + (gamma-1)
    dimwise_kl_i]: the same loss in expectation (the three estimates sum to log q(z|x) - log p(z),
    whose expectation is the closed-form rate), with the closed form's lower variance, and exactly
    the ELBO at alpha = beta = gamma = 1. beta weights only the total correlation, never the full
    KL. The terms come from the minibatch-weighted (MWS, sec. 3) or minibatch-stratified (MSS,
    appendix C) estimate of q(z) (`tc_decomposition`); w(t) is the KL schedule (`KLScheduled`).

    Settings: mi_weight (alpha, 1), tc_weight (beta, 6: the value at which the paper's dSprites
    runs disentangle), dimwise_weight (gamma, 1), estimator (mss, the default, or mws), and
    dataset_size N (0: the training split's size, set by `bind(n_train=...)` from `train.fit`,
    then stored in config.yaml). N is the training set's size, never the batch's:
    the test pass and `vaekit evaluate` use the same N, so the test split's terms estimate the
    same objective as training's (the weights of the estimate, and so the terms, would otherwise
    change with the test split's size). Each term is logged per example: mi, tc, dimwise_kl
    (nats), estimated within the example's batch (the batch's other examples stand in for the
    data set; with several processes, within each process's share).
    Why MSS by default: its estimate of q(z) has the right total weight, so the logged terms are
    on the scale of the quantities they name (tc about 0 for a factorised aggregate posterior).
    MWS's weights 1/(N M) sum to 1/N over the batch, which shifts its terms by constants: mi by
    +log N, tc by +(D - 1) log N and dimwise_kl by -D log N (D = latent_dim) against the same
    estimate with weights 1/M. The constants cancel in the sum and do not change the gradient,
    so MWS trains the same, but its logged tc is not near 0 for an independent code.
    Needs the N(0, I) prior (the dimension-wise KL needs a prior that factorises) and beta = 1.
    Raises `VaekitError` for a bad setting, another prior, or a call before N is known.
    """

    batch_dependent = True

    SETTINGS = config.OBJECTIVE_SETTINGS["beta-tcvae"]

    def __init__(self, **settings):
        super().__init__(**settings)
        for key in ("mi_weight", "tc_weight", "dimwise_weight"):
            value = getattr(self, key)
            check(math.isfinite(value), f"{key} must be a finite number, not {value!r}.")
        self.estimator = self.estimator.lower()
        check(
            self.estimator in ESTIMATORS,
            f"estimator must be mss (minibatch-stratified) or mws (minibatch-weighted), "
            f"not {self.estimator!r}.",
        )
        check(
            self.dataset_size >= 0,
            f"dataset_size must be at least 0 (0: the training split's size), not {self.dataset_size}.",
        )

    def check_model(self, model):
        require_standard_normal(model, self.name, "splits the KL per dimension")
        require_plain_beta(model, self.name, "--mi-weight, --tc-weight and --dimwise-weight")

    def bind(self, *, n_train=None, **context):
        super().bind(n_train=n_train, **context)
        if n_train is not None and self.dataset_size == 0:
            self.dataset_size = int(n_train)
        return self

    def loss(self, terms, batch, progress, beta):
        check(
            self.dataset_size >= 1,
            "beta-TCVAE needs the training set's size N; call objective.bind(n_train=...) (train.fit does) "
            "or give dataset_size.",
        )
        parts = tc_decomposition(
            terms.q, terms.z, self._log_prior(terms.z), self.dataset_size, self.estimator
        )
        penalty = (
            terms.rate
            + (self.mi_weight - 1.0) * parts["mi"]
            + (self.tc_weight - 1.0) * parts["tc"]
            + (self.dimwise_weight - 1.0) * parts["dimwise_kl"]
        )
        out = elbo_terms(terms)
        out.update(mi=parts["mi"], tc=parts["tc"], dimwise_kl=parts["dimwise_kl"])
        return LossOutput(terms.distortion + self.kl_weight(progress) * penalty, out, terms)

    @staticmethod
    def _log_prior(z):
        return D.Normal(torch.zeros((), device=z.device, dtype=z.dtype), 1.0).log_prob(z).sum(-1)
