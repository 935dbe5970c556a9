"""Objectives: a model and a batch in, a record of named per-example terms out.

The one loss path: training, the per-epoch test pass, the final summary and per-example scores
all call an objective, so `train_loss` and `test_loss` always measure the same thing. An
objective returns a `LossOutput`: `loss` (batch,), the value minimised (its batch mean), and
`terms`, every named per-example quantity it wants logged (nats); the loop logs each as
`train_<name>` / `test_<name>` without knowing the names. Adding an objective is one class
with `@register(name)`, chosen with `--objective NAME`; its settings are `SETTINGS` (name ->
(type, default, meaning)), stored in config.yaml and checked by `make`.

    beta-elbo              distortion + w(t) beta rate                   Higgins et al., 2017, eq. 4
    beta-elbo-conditioned  the same, one beta per example, / max(1, beta)
    reconstruction         distortion (the deterministic autoencoder)
    beta-tcvae             ELBO split into MI, TC, dimension-wise KL     Chen et al., 2018, eq. 2/4
    factorvae              ELBO - gamma TC, TC by a discriminator        Kim & Mnih, 2018, eq. 2
    dip-vae                ELBO - lambda ||Cov - I||, type I or II       Kumar et al., 2018, eq. 6/7
    capacity               distortion + gamma |KL - C(t)|                Burgess et al., 2018, eq. 8
    iwae                   -IWAE_K bound                                 Burda et al., 2016, eq. 8
    free-bits              distortion + sum_j max(lambda, E_batch KL_j)  Kingma et al., 2016, eq. 15

What an objective may need beyond the batch it is told with `bind`: the model (checked for
fitness: prior, beta), the training set's size (beta-TCVAE's N), the number of training epochs
(the cyclical schedule) and the seed. An objective with its own trained parameters (FactorVAE's
discriminator) keeps them itself and tells the loop through four hooks: `to(device)`,
`after_step(reduce)` (its own optimisation step after the model's), `state()`/`load_state()`
(checkpoint.pt, so a resumed run continues exactly) and `weights()`/`load_weights()` (the run
folder's objective.safetensors, so evaluate and score rebuild it).

Randomness beyond the one reparameterisation draw the loop passes as `noise` (IWAE's further
samples, FactorVAE's permutations) comes from a generator seeded by a hash of that noise
(`noise_generator`): the same seed gives the same numbers, a resumed run continues exactly and
the test pass is repeatable. On an accelerator that costs one copy of the (batch, latent_dim)
noise to the host per step.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import distributions as D
from torch import nn

from vaekit import schedules
from vaekit.batch import Batch
from vaekit.errors import VaekitError, check
from vaekit.model import Terms
from vaekit.registry import registrar

OBJECTIVES: dict[str, type[Objective]] = {}


register = registrar(OBJECTIVES)  # @register(name) adds a class to OBJECTIVES


@dataclass
class LossOutput:
    """What an objective returns for one batch.

    Args:
        loss: (batch,) per-example value whose mean over the batch is minimised, nats.
        terms: name -> (batch,) per-example quantity (nats unless the name says otherwise);
            logged per epoch as train_<name>/test_<name> and drawn in the curves figure.
        outputs: the model's `Terms` (z, q, p(x|z)) behind the numbers, for scores that need
            them (e.g. the reconstruction at the posterior mean).
    """

    loss: torch.Tensor
    terms: dict[str, torch.Tensor] = field(default_factory=dict)
    outputs: Terms | None = None


class Objective:
    """`objective(model, batch, noise, progress)` -> `LossOutput`.

    `model` is called as `model(batch, noise=noise)` and returns the model's `Terms` (in
    training it is the possibly DDP-wrapped module, so gradient synchronisation sees a forward
    pass); `noise` (batch, latent_dim) fixes the reparameterisation draw; `progress` is the
    training position in epochs (schedules read it; evaluation passes the end of training).
    A setting whose default is None keeps None until the objective resolves it.
    """

    name = "base"
    SETTINGS: dict[str, tuple[type, object, str]] = {}

    def __init__(self, **settings):
        for key, (kind, default, _) in self.SETTINGS.items():
            value = settings.get(key, default)
            setattr(self, key, None if value is None else kind(value))
        self.bound: dict = {}

    def __call__(self, model, batch: Batch, noise: torch.Tensor | None = None, progress: float = math.inf):
        terms = model(batch, noise=noise)
        return self.loss(terms, batch, progress, _beta(model, batch))

    def loss(self, terms: Terms, batch: Batch, progress: float, beta) -> LossOutput:
        raise NotImplementedError

    def schedule(self, progress: float) -> dict[str, float]:
        """Batch-independent values at `progress` epochs (e.g. the KL weight), logged per epoch."""
        return {}

    #: Values for settings a run's config.yaml lacks because it was written before the setting
    #: existed (the default the objective had then), where today's default differs.
    OLD_DEFAULTS: dict = {}

    #: True when an example's terms depend on the other examples in its batch (a minibatch
    #: estimate: beta-TCVAE's q(z), DIP-VAE's covariance, FactorVAE's discriminator halves, the
    #: capacity's batch-mean KL). Evaluation then uses batches of the training batch size
    #: (`eval_batch_size`), so the test terms estimate what the training terms did.
    batch_dependent = False

    def eval_batch_size(self, default: int) -> int:
        """The batch size to evaluate with: the training batch size (per process, from
        `bind(batch_size=...)`) for a batch-dependent objective that knows it, else `default`."""
        size = self.bound.get("batch_size") if self.batch_dependent and hasattr(self, "bound") else None
        return int(size) if size else int(default)

    def settings(self) -> dict:
        """What config.yaml stores: the name and each setting."""
        return {"name": self.name, **{k: getattr(self, k) for k in self.SETTINGS}}

    # ------------------------------------------------------------------ what the loop tells it
    def bind(
        self,
        *,
        model=None,
        n_train: int | None = None,
        epochs: int | None = None,
        seed: int | None = None,
        batch_size: int | None = None,
    ) -> Objective:
        """Tell the objective what it may need beyond a batch; every argument is optional and
        a later call adds to (or replaces) what an earlier one told.

        Args:
            model: the `VAE` it will train: checked by `check_model` (raises `VaekitError` when
                the objective cannot train this model, e.g. a prior it cannot decompose).
            n_train: the number of training examples (beta-TCVAE's N; never the batch size).
            epochs: the number of training epochs (the cyclical schedule's length, the
                capacity ramp's default).
            seed: the training seed (FactorVAE seeds its discriminator's weights with it).
            batch_size: the examples of one training step on one process (`eval_batch_size`).
        Returns self. `train.fit` calls it with all five before training; `make` with the model;
        `runs.load_objective` with the model, the epochs and the batch size of the run.
        """
        if not hasattr(self, "bound"):  # a subclass that did not call Objective.__init__
            self.bound = {}
        if model is not None:
            self.check_model(model)
        told = {"model": model, "n_train": n_train, "epochs": epochs, "seed": seed, "batch_size": batch_size}
        for key, value in told.items():
            if value is not None:
                self.bound[key] = value
        return self

    def check_model(self, model) -> None:
        """Raise `VaekitError` (one sentence with the fix) if this objective cannot train `model`."""

    # ------------------------------------------------------------------ objectives with parameters
    def to(self, device) -> Objective:
        """Move the objective's own parameters (if any) to `device`; returns self."""
        return self

    def after_step(self, reduce=None) -> None:
        """Called by the training loop after the model's optimiser step of each training batch:
        an objective with its own parameters takes its own step here. `reduce(tensor)` averages
        a tensor over the processes (None on one process)."""

    def state(self) -> dict | None:
        """The objective's training state for checkpoint.pt (weights and optimiser), or None."""
        return None

    def load_state(self, state: dict) -> None:
        """Restore `state()` (a resumed run continues exactly)."""

    def weights(self) -> dict[str, torch.Tensor] | None:
        """The objective's learned weights for the run folder's objective.safetensors, or None
        when it has none."""
        return None

    def load_weights(self, state: dict[str, torch.Tensor]) -> None:
        """Load `weights()` saved by a run. Raises `VaekitError` when they do not fit."""


def _beta(model, batch: Batch):
    """The KL weight of each example: the batch's own (beta-conditioned training) or the model's."""
    if batch.beta is not None:
        return batch.beta
    return _inner(model).beta


def _inner(model):
    """The VAE inside a DDP or Fabric wrapper (which holds it as .module)."""
    inner = model
    while hasattr(inner, "module") and not hasattr(inner, "beta"):
        inner = inner.module
    return inner


def _elbo_terms(terms: Terms) -> dict[str, torch.Tensor]:
    return {"distortion": terms.distortion, "rate": terms.rate}


def noise_generator(noise: torch.Tensor | None) -> torch.Generator | None:
    """A CPU generator seeded by a hash of `noise` (the step's reparameterisation draw, any
    shape), so randomness an objective draws beyond it repeats whenever the noise does: same
    seed, same numbers; a resumed run continues exactly. None when `noise` is None (then torch's
    global generator is used)."""
    if noise is None:
        return None
    data = np.ascontiguousarray(noise.detach().to("cpu", torch.float32).numpy()).tobytes()
    seed = int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little") & (2**63 - 1)
    return torch.Generator().manual_seed(seed)


def _require_standard_normal(model, objective: str, why: str) -> None:
    check(
        model.prior.name == "normal",
        f"The {objective} objective {why}, so it needs the N(0, I) prior, not {model.prior.name}; "
        "drop --prior or use --objective beta-elbo.",
    )


def _require_plain_beta(model, objective: str, weights: str) -> None:
    check(
        not model.beta_conditioned,
        f"The {objective} objective trains one model, not a beta-conditioned one; drop --beta-range.",
    )
    check(
        model.beta == 1.0,
        f"--beta applies to the beta-elbo objective; the {objective} objective weights its terms with "
        f"{weights}, so drop --beta (or set it to 1).",
    )


# ============================================================================ KL weight schedules

KL_SCHEDULE_SETTINGS: dict[str, tuple[type, object, str]] = {
    "kl_schedule": (
        str,
        None,
        "KL weight schedule: constant, linear (warm-up over --warmup-epochs) or cyclical "
        "(Fu et al., 2019) [default: linear with --warmup-epochs, else constant]",
    ),
    "warmup_epochs": (float, 0.0, "linear KL warm-up over this many epochs"),
    "cycles": (int, 4, "cyclical KL schedule: number of cycles M (Fu et al., 2019)"),
    "cycle_ratio": (
        float,
        0.5,
        "cyclical KL schedule: fraction R of each cycle over which the weight rises from 0 to 1",
    ),
}


class KLScheduled(Objective):
    """An objective whose KL term is weighted by a schedule w(t) of training progress t (epochs),
    the one place the schedules live (`vaekit.schedules`):

        constant   w = 1
        linear     w = min(1, t / warmup_epochs)                        (Bowman et al., 2016)
        cyclical   w rises linearly to 1 over the first R of each of M cycles, then holds
                   (Fu et al., 2019, eq. 4-5); needs the training epochs (`bind(epochs=...)`)

    Settings: kl_schedule (default: linear when warmup_epochs > 0, else constant, so run folders
    that stored only warmup_epochs load as they trained), warmup_epochs, cycles, cycle_ratio.
    Raises `VaekitError` for an unknown schedule, a bad value, or a setting of another schedule
    given with a non-default value (e.g. warmup_epochs with the cyclical schedule).
    """

    SETTINGS = dict(KL_SCHEDULE_SETTINGS)

    def __init__(self, **settings):
        super().__init__(**settings)
        w = self.warmup_epochs
        if not (w >= 0 and math.isfinite(w)):
            raise VaekitError(f"warmup_epochs must be a finite number of at least 0, not {w!r}.")
        if self.kl_schedule is None:
            self.kl_schedule = "linear" if w > 0 else "constant"
        self.kl_schedule = self.kl_schedule.lower()
        check(
            self.kl_schedule in schedules.SCHEDULES,
            f"kl_schedule must be one of {', '.join(schedules.SCHEDULES)}, not {self.kl_schedule!r}.",
        )
        if self.kl_schedule == "linear":
            check(w > 0, "The linear KL schedule needs --warmup-epochs above 0; give it, or use constant.")
        else:
            check(
                w == 0,
                f"--warmup-epochs applies to the linear KL schedule, not {self.kl_schedule}; drop it or use "
                "--kl-schedule linear.",
            )
        if self.kl_schedule == "cyclical":
            schedules.check_cyclical(self.cycles, self.cycle_ratio)
        else:
            defaults = KL_SCHEDULE_SETTINGS
            for key in ("cycles", "cycle_ratio"):
                check(
                    getattr(self, key) == defaults[key][1],
                    f"--{key.replace('_', '-')} applies to the cyclical KL schedule, not {self.kl_schedule}; "
                    "drop it or use --kl-schedule cyclical.",
                )

    def kl_weight(self, progress: float) -> float:
        """The schedule's factor w(t) on the KL term at `progress` epochs, in [0, 1]."""
        return schedules.kl_weight(
            self.kl_schedule,
            progress,
            warmup_epochs=self.warmup_epochs,
            epochs=getattr(self, "bound", {}).get("epochs"),
            cycles=self.cycles,
            ratio=self.cycle_ratio,
        )

    def schedule(self, progress):
        return {"kl_weight": self.kl_weight(progress)}


# ============================================================================ the ELBO family


@register("beta-elbo")
class BetaELBO(KLScheduled):
    """distortion + w(t) * beta * rate (Higgins et al., 2017, eq. 4) per example, nats, with the
    KL schedule w(t) of `KLScheduled` (default constant; linear warm-up, Bowman et al., 2016;
    cyclical, Fu et al., 2019). beta = 1 with w = 1 is the negative ELBO (Kingma & Welling,
    2014, eq. 3)."""

    def loss(self, terms, batch, progress, beta):
        return LossOutput(
            terms.distortion + self.kl_weight(progress) * beta * terms.rate, _elbo_terms(terms), terms
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

    SETTINGS = {
        **KL_SCHEDULE_SETTINGS,
        "mi_weight": (
            float,
            1.0,
            "alpha, the weight of the index-code mutual information (Chen et al., 2018)",
        ),
        "tc_weight": (float, 6.0, "beta, the weight of the total correlation"),
        "dimwise_weight": (float, 1.0, "gamma, the weight of the dimension-wise KL"),
        "estimator": (str, "mss", "minibatch estimator of q(z): mss (stratified) or mws (weighted)"),
        "dataset_size": (int, 0, "data set size N in the estimator (0: the training split's size)"),
    }

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
        _require_standard_normal(model, self.name, "splits the KL per dimension")
        _require_plain_beta(model, self.name, "--mi-weight, --tc-weight and --dimwise-weight")

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
        out = _elbo_terms(terms)
        out.update(mi=parts["mi"], tc=parts["tc"], dimwise_kl=parts["dimwise_kl"])
        return LossOutput(terms.distortion + self.kl_weight(progress) * penalty, out, terms)

    @staticmethod
    def _log_prior(z):
        return D.Normal(torch.zeros((), device=z.device, dtype=z.dtype), 1.0).log_prob(z).sum(-1)


# ============================================================================ FactorVAE


def permute_dims(z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Kim & Mnih (2018, Algorithm 1): each column of z (batch, latent_dim) shuffled by its own
    random permutation over the batch, so every column keeps its values but the rows pair them
    at random: samples of prod_j q(z_j) from samples of q(z). `generator`: a CPU generator
    (None: torch's global one). Returns a new (batch, latent_dim) tensor."""
    keys = torch.rand(z.shape, generator=generator).to(z.device)
    return torch.gather(z, 0, keys.argsort(dim=0))


class Discriminator(nn.Module):
    """FactorVAE's discriminator (Kim & Mnih, 2018, appendix A): an MLP of `layers` hidden layers
    of `units` units with leaky ReLU (slope 0.2), z (batch, latent_dim) -> 2 logits (batch, 2):
    column 0 for "a sample of q(z)", column 1 for "a sample of prod_j q(z_j)"."""

    def __init__(self, latent_dim: int, units: int = 1000, layers: int = 6):
        super().__init__()
        sizes = [latent_dim] + [units] * layers
        parts: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:], strict=True):
            parts += [nn.Linear(a, b), nn.LeakyReLU(0.2)]
        parts.append(nn.Linear(sizes[-1], 2))
        self.net = nn.Sequential(*parts)

    def forward(self, z):
        return self.net(z)


@register("factorvae")
class FactorVAE(KLScheduled):
    """FactorVAE (Kim & Mnih, 2018, eq. 2): the ELBO plus gamma times the total correlation
    TC = KL(q(z) || prod_j q(z_j)), the TC estimated by the density-ratio trick with a
    discriminator D trained to tell samples of q(z) from permuted ones (eq. 3):

        loss_i = distortion_i + w(t) rate_i + gamma tc_i,   tc_i = log D(z_i) / (1 - D(z_i))
               = logit_0(z_i) - logit_1(z_i)    (D's softmax over its two logits)

    D is trained with its own Adam (lr `disc_lr` 1e-4, betas (0.5, 0.9), the paper's appendix A)
    on the cross-entropy of telling the batch's first half (samples of q(z)) from `permute_dims`
    of its second half (samples of prod_j q(z_j)); the paper draws a second batch, and the two
    disjoint halves of one random batch are such a pair. D's loss sees z detached, so it never
    reaches the encoder; the VAE's gamma tc term does move the encoder (and only the encoder:
    the loop's optimiser holds the model's parameters, and D's own step zeroes D's gradients
    first). D steps in `after_step`, after each VAE step, as in the paper's Algorithm 1.

    Terms per example (nats unless said): distortion, rate, tc (the density-ratio estimate at
    the example's z), disc_loss (D's cross-entropy on the example's half: real for the first
    half, permuted for the second), disc_accuracy (1 when D classifies it right, else 0; unitless).
    Settings: gamma (40; the paper reports a range of gamma for dSprites, and good disentangling
    at 40), disc_units (1000) and disc_layers (6) as in the paper's appendix, disc_lr, and the KL
    schedule. D's weights start from the training seed (`bind(seed=...)`). Needs beta = 1.
    Raises `VaekitError` for a bad setting.
    """

    batch_dependent = True

    SETTINGS = {
        **KL_SCHEDULE_SETTINGS,
        "gamma": (float, 40.0, "the weight of the total correlation (Kim & Mnih, 2018)"),
        "disc_units": (int, 1000, "units in each hidden layer of the discriminator"),
        "disc_layers": (int, 6, "hidden layers of the discriminator"),
        "disc_lr": (float, 1e-4, "Adam learning rate of the discriminator (betas 0.5, 0.9)"),
    }
    BETAS = (0.5, 0.9)

    def __init__(self, **settings):
        super().__init__(**settings)
        check(math.isfinite(self.gamma), f"gamma must be a finite number, not {self.gamma!r}.")
        check(
            self.disc_units >= 1, f"disc_units must be a whole number of at least 1, not {self.disc_units}."
        )
        check(
            self.disc_layers >= 1,
            f"disc_layers must be a whole number of at least 1, not {self.disc_layers}.",
        )
        check(
            self.disc_lr > 0 and math.isfinite(self.disc_lr),
            f"disc_lr must be a positive number, not {self.disc_lr!r}.",
        )
        self.discriminator: Discriminator | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self._pending: torch.Tensor | None = None
        self._built_with: tuple | None = None

    def check_model(self, model):
        _require_plain_beta(model, self.name, "--gamma")

    def bind(self, **context):
        super().bind(**context)
        model = self.bound.get("model")
        if model is not None:
            key = (model.latent_dim, int(self.bound.get("seed", 0)))
            if key != self._built_with:
                self._build(*key)
        return self

    def _build(self, latent_dim: int, seed: int) -> None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.discriminator = Discriminator(latent_dim, self.disc_units, self.disc_layers)
        self.optimizer = torch.optim.Adam(self.discriminator.parameters(), lr=self.disc_lr, betas=self.BETAS)
        self._built_with = (latent_dim, seed)

    def _d(self, device) -> Discriminator:
        check(
            self.discriminator is not None,
            "The factorvae objective has no discriminator yet; make it with objectives.make(..., model) or "
            "call objective.bind(model=...).",
        )
        if next(self.discriminator.parameters()).device != device:
            self.to(device)
        return self.discriminator

    def to(self, device):
        if self.discriminator is not None:
            self.discriminator.to(device)
            for state in self.optimizer.state.values():
                for k, v in state.items():
                    if torch.is_tensor(v) and k != "step":
                        state[k] = v.to(device)
        return self

    def __call__(self, model, batch, noise=None, progress=math.inf):
        self._generator = noise_generator(noise)
        return super().__call__(model, batch, noise, progress)

    def loss(self, terms, batch, progress, beta):
        disc = self._d(terms.z.device)
        z = terms.z.to(next(disc.parameters()).dtype)  # D is outside any mixed-precision wrapper
        logits = disc(z)
        tc = logits[:, 0] - logits[:, 1]
        d_loss, d_acc = self.discriminator_terms(z.detach(), getattr(self, "_generator", None))
        if torch.is_grad_enabled():
            self._pending = d_loss.mean()
        out = _elbo_terms(terms)
        out.update(tc=tc, disc_loss=d_loss, disc_accuracy=d_acc)
        loss = terms.distortion + self.kl_weight(progress) * terms.rate + self.gamma * tc
        return LossOutput(loss, out, terms)

    def discriminator_terms(self, z: torch.Tensor, generator=None) -> tuple[torch.Tensor, torch.Tensor]:
        """D's per-example cross-entropy (nats) and accuracy (0/1), both (batch,), on z (batch,
        latent_dim), which the caller detaches: the first ceil(batch/2) rows are samples of q(z)
        (label 0), the rest are permuted (`permute_dims`) into samples of prod_j q(z_j) (label 1)."""
        disc = self._d(z.device)
        half = len(z) - len(z) // 2
        inputs = torch.cat([z[:half], permute_dims(z[half:], generator)])
        labels = torch.cat(
            [torch.zeros(half, dtype=torch.long), torch.ones(len(z) - half, dtype=torch.long)]
        ).to(z.device)
        logits = disc(inputs)
        d_loss = nn.functional.cross_entropy(logits, labels, reduction="none")
        d_acc = (logits.argmax(1) == labels).to(z.dtype)
        return d_loss, d_acc

    def after_step(self, reduce=None):
        pending, self._pending = self._pending, None
        if pending is None:
            return
        self.optimizer.zero_grad(set_to_none=True)  # the VAE's backward left gradients in D
        pending.backward()
        if reduce is not None:
            for p in self.discriminator.parameters():
                if p.grad is not None:
                    p.grad = reduce(p.grad)
        self.optimizer.step()

    def state(self):
        if self.discriminator is None:
            return None
        return {
            "discriminator": {k: v.detach().cpu() for k, v in self.discriminator.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
        }

    def load_state(self, state):
        check(
            self.discriminator is not None,
            "The factorvae objective is not bound to a model; call bind(model=...).",
        )
        self.discriminator.load_state_dict(state["discriminator"])
        self.optimizer.load_state_dict(state["optimizer"])

    def weights(self):
        if self.discriminator is None:
            return None
        return {f"discriminator.{k}": v for k, v in self.discriminator.state_dict().items()}

    def load_weights(self, state):
        disc = self._d(torch.device("cpu"))
        prefix = "discriminator."
        try:
            disc.load_state_dict({k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)})
        except RuntimeError as err:
            raise VaekitError(
                f"The saved discriminator does not fit this factorvae objective "
                f"({str(err).splitlines()[-1].strip()}); the run's files come from different runs."
            ) from None


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

    SETTINGS = {
        **KL_SCHEDULE_SETTINGS,
        "dip_type": (
            str,
            "i",
            "DIP-VAE type: i (covariance of the means) or ii (of the aggregate posterior)",
        ),
        "lambda_od": (float, 10.0, "weight of the off-diagonal covariance penalty (Kumar et al., 2018)"),
        "lambda_d": (
            float,
            None,
            "weight of the diagonal covariance penalty "
            "[default: 10 x lambda_od for type i, lambda_od for ii]",
        ),
    }

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
        _require_standard_normal(
            model, self.name, "matches the aggregate posterior's covariance to the identity"
        )
        _require_plain_beta(model, self.name, "--lambda-od and --lambda-d")

    def loss(self, terms, batch, progress, beta):
        penalty = dip_penalty(dip_covariance(terms.q, self.dip_type), self.lambda_od, self.lambda_d)
        penalty = penalty.expand(len(terms.distortion))
        out = _elbo_terms(terms)
        out["dip_penalty"] = penalty
        return LossOutput(terms.distortion + self.kl_weight(progress) * terms.rate + penalty, out, terms)


# ============================================================================ capacity annealing


@register("capacity")
class Capacity(Objective):
    """Capacity annealing (Burgess et al., 2018, eq. 8): the ELBO's KL term replaced by
    gamma |KL - C(t)|, with C(t) = C_max min(1, t / capacity_epochs) raised linearly.

    Where |.| is taken (`capacity_over`):
      batch (default): |.| of the batch-mean KL, so C bounds the average information the code
          carries, which is what the paper's capacity is (sec. 4): per example,
              loss_i = distortion_i + gamma s (rate_i - C),  s = sign(mean_batch(rate) - C),
          whose batch mean is mean(distortion) + gamma |mean(rate) - C| exactly and whose
          gradient is that of the batch form (s is constant almost everywhere);
      example: |.| of each example's KL, loss_i = distortion_i + gamma |rate_i - C|, as eq. 8
          reads for one x.
    Why batch: an informative code has a KL that varies from example to example (a posterior
    mean far from 0 costs more than one near it), and the per-example form charges gamma for
    that spread. On sprites32 (MLP, 10 latents, 8 epochs) it gave a test ELBO of -52.6 nats
    where the batch form gave -35.2 at the same mean rate (gamma 100, C 4.8 nats), and at the
    paper's gamma = 1000 the per-example form met C by shrinking the posterior variances with
    constant means: 11 nats of rate and no information about any factor. The batch form depends
    on the batch (larger batches estimate the mean KL better), as any minibatch estimate does.
    C is logged per epoch as `capacity` (nats) by `schedule`.
    Settings: capacity_weight (gamma, 1000), capacity_max (C_max, 25 nats: the paper's dSprites
    values, for 64 x 64 images; on smaller images the distortion is smaller and the same gamma
    weighs relatively more), capacity_epochs (the ramp's length in epochs, since the loop reports
    progress in epochs; default: all training epochs, from `bind(epochs=...)`), capacity_over
    (batch or example). Needs beta = 1.
    Raises `VaekitError` for a negative or non-finite setting, an unknown `capacity_over`, or a
    ramp of unknown length.
    """

    SETTINGS = {
        "capacity_weight": (float, 1000.0, "gamma, the weight of |KL - C| (Burgess et al., 2018)"),
        "capacity_max": (float, 25.0, "C_max, the capacity reached at the end of the ramp, nats"),
        "capacity_epochs": (
            float,
            None,
            "epochs over which C rises linearly from 0 to C_max [default: all training epochs]",
        ),
        "capacity_over": (str, "batch", "where |KL - C| is taken: batch (the batch-mean KL) or example"),
    }
    OLD_DEFAULTS = {"capacity_over": "example"}  # runs from before the setting took it per example

    def __init__(self, **settings):
        super().__init__(**settings)
        for key in ("capacity_weight", "capacity_max", "capacity_epochs"):
            value = getattr(self, key)
            check(
                value is None or (value >= 0 and math.isfinite(value)),
                f"{key} must be a finite number of at least 0, not {value!r}.",
            )
        self.capacity_over = str(self.capacity_over).lower()
        check(
            self.capacity_over in ("batch", "example"),
            f"capacity_over must be batch or example, not {self.capacity_over!r}.",
        )

    @property
    def batch_dependent(self) -> bool:
        return self.capacity_over == "batch"

    def check_model(self, model):
        _require_plain_beta(model, self.name, "--capacity-weight")

    def capacity(self, progress: float) -> float:
        """C(t) in nats at `progress` epochs: 0 at the start, C_max from the end of the ramp on."""
        ramp = self.capacity_epochs
        if ramp is None:
            if progress == math.inf:
                return self.capacity_max
            ramp = self.bound.get("epochs")
            check(
                ramp is not None,
                "The capacity objective ramps C over the training epochs; give capacity_epochs or call "
                "objective.bind(epochs=...) (train.fit does).",
            )
        return self.capacity_max * schedules.linear(progress, ramp)

    def schedule(self, progress):
        return {"capacity": self.capacity(progress)}

    def loss(self, terms, batch, progress, beta):
        c = self.capacity(progress)
        if self.capacity_over == "example":
            penalty = (terms.rate - c).abs()
        else:
            penalty = torch.sign(terms.rate.detach().mean() - c) * (terms.rate - c)
        return LossOutput(terms.distortion + self.capacity_weight * penalty, _elbo_terms(terms), terms)


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

    SETTINGS = {
        "iwae_samples": (int, 5, "importance samples K per example (Burda et al., 2016; 1 = the ELBO)")
    }

    def __init__(self, **settings):
        super().__init__(**settings)
        check(
            self.iwae_samples >= 1,
            f"iwae_samples must be a whole number of at least 1 (1 = the ELBO), not {self.iwae_samples}.",
        )

    def check_model(self, model):
        _require_plain_beta(model, self.name, "its K samples (--iwae-samples)")

    def __call__(self, model, batch, noise=None, progress=math.inf):
        terms = model(batch, noise=noise)
        out = _elbo_terms(terms)
        if self.iwae_samples == 1:
            bound = -(terms.distortion + terms.rate)
        else:
            bound = self.bound_from(_inner(model), batch, terms, noise_generator(noise))
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

    SETTINGS = {
        **KL_SCHEDULE_SETTINGS,
        "free_bits": (float, 0.5, "lambda, the KL in nats per latent dimension below which it is free"),
    }

    def __init__(self, **settings):
        super().__init__(**settings)
        check(
            self.free_bits >= 0 and math.isfinite(self.free_bits),
            f"free_bits must be a finite number of nats of at least 0, not {self.free_bits!r}.",
        )

    def check_model(self, model):
        _require_standard_normal(model, self.name, "needs the KL of each latent dimension")
        _require_plain_beta(model, self.name, "--free-bits")

    def loss(self, terms, batch, progress, beta):
        base = terms.q.base_dist
        prior = D.Normal(torch.zeros((), device=base.loc.device, dtype=base.loc.dtype), 1.0)
        kl = D.kl_divergence(base, prior)  # (batch, latent_dim)
        kept = kl.detach().mean(0) > self.free_bits
        free = torch.where(kept, kl, torch.full_like(kl, self.free_bits)).sum(1)
        out = _elbo_terms(terms)
        out["free_bits_kl"] = free
        return LossOutput(terms.distortion + self.kl_weight(progress) * free, out, terms)


# ============================================================================ choosing one


def default_name(model) -> str:
    """The objective a model trains with when none is named."""
    return default_for(model.kind, model.beta_conditioned)


def default_for(kind: str, beta_conditioned: bool) -> str:
    """The objective a model of `kind` ("vae" or "ae") trains with when none is named:
    reconstruction for an autoencoder, the beta-conditioned ELBO for a beta-conditioned VAE, else
    the beta-ELBO (what `default_name` says of a built model, from the settings alone)."""
    if kind == "ae":
        return "reconstruction"
    return "beta-elbo-conditioned" if beta_conditioned else "beta-elbo"


def make(name: str | None, model, **settings) -> Objective:
    """The objective `name` (None or "auto": the model's default) with `settings`, each checked,
    bound to `model` (`Objective.bind`). Raises `VaekitError` naming an unknown objective or
    setting, a value of the wrong kind or out of range, or a model the objective cannot train."""
    if name in (None, "auto"):
        name = default_name(model)
    check(
        model.kind == "vae" or name == "reconstruction" or name not in OBJECTIVES,
        f"A deterministic autoencoder has no KL term, so it trains with the reconstruction objective, "
        f"not {name}; drop --objective or use --model vae.",
    )
    return build(name, **settings).bind(model=model)


def build(name: str, **settings) -> Objective:
    """The objective `name` with `settings` (None: the default), each checked, not yet bound to
    a model (`make` binds it). Raises `VaekitError` naming an unknown objective or setting, or a
    value of the wrong kind or out of range."""
    if name not in OBJECTIVES:
        raise VaekitError(f"Unknown objective {name!r}; choose one of {', '.join(OBJECTIVES)}.")
    cls = OBJECTIVES[name]
    given = {k: v for k, v in settings.items() if v is not None}
    for key, value in given.items():
        if key not in cls.SETTINGS:
            known = ", ".join(cls.SETTINGS) or "none"
            raise VaekitError(f"The {name} objective has no setting {key!r} (its settings: {known}).")
        kind = cls.SETTINGS[key][0]
        try:
            ok = not isinstance(value, bool) or kind is bool
            if kind is int and isinstance(value, float):
                ok = ok and value.is_integer()
            given[key] = kind(value)
        except (TypeError, ValueError, OverflowError):
            ok = False
        check(ok, f"The {name} objective's {key} must be {_kind_name(kind)}, not {value!r}.")
    return cls(**given)


def _kind_name(kind) -> str:
    return {int: "a whole number", float: "a number", bool: "true or false"}.get(kind, "text")


def for_model(model, warmup_epochs: float = 0.0) -> Objective:
    """The objective a model trains with by default (with its KL warm-up where it has one)."""
    name = default_name(model)
    return make(name, model, **({"warmup_epochs": warmup_epochs} if name != "reconstruction" else {}))
