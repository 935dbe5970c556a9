"""The base of every objective: the registry (`OBJECTIVES`, `register`), `LossOutput`, `Objective`
with its hooks, the KL weight schedules (`KLScheduled`), the helpers the families share, and the
choice of one by name (`make`, `build`, `default_for`). The package's docstring says how the
pieces fit."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field

import numpy as np
import torch

from vaekit import config, schedules
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
        return self.loss(terms, batch, progress, beta_of(model, batch))

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


def beta_of(model, batch: Batch):
    """The KL weight of each example: the batch's own (beta-conditioned training) or the model's."""
    if batch.beta is not None:
        return batch.beta
    return inner_model(model).beta


def inner_model(model):
    """The VAE inside a DDP or Fabric wrapper (which holds it as .module)."""
    inner = model
    while hasattr(inner, "module") and not hasattr(inner, "beta"):
        inner = inner.module
    return inner


def elbo_terms(terms: Terms) -> dict[str, torch.Tensor]:
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


def require_standard_normal(model, objective: str, why: str) -> None:
    check(
        model.prior.name == "normal",
        f"The {objective} objective {why}, so it needs the N(0, I) prior, not {model.prior.name}; "
        "drop --prior or use --objective beta-elbo.",
    )


def require_plain_beta(model, objective: str, weights: str) -> None:
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

    SETTINGS = config.KL_SCHEDULE_SETTINGS

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
            defaults = config.KL_SCHEDULE_SETTINGS
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
    if name not in OBJECTIVES:
        raise VaekitError(f"Unknown objective {name!r}; choose one of {', '.join(OBJECTIVES)}.")
    return attach(build(name, **settings), model)


def attach(objective: Objective, model) -> Objective:
    """A built objective (`build`) bound to `model` (`Objective.bind`): what `make` does once the
    objective exists. Raises `VaekitError` for a deterministic autoencoder with an objective other
    than reconstruction, or a model the objective cannot train."""
    check(
        model.kind == "vae" or objective.name == "reconstruction",
        f"A deterministic autoencoder has no KL term, so it trains with the reconstruction objective, "
        f"not {objective.name}; drop --objective or use --model vae.",
    )
    return objective.bind(model=model)


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
