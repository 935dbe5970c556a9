"""Objectives: a model and a batch in, a record of named per-example terms out.

The one loss path: training, the per-epoch test pass, the final summary and per-example scores
all call an objective, so `train_loss` and `test_loss` always measure the same thing. An
objective returns a `LossOutput`: `loss` (batch,), the value minimised (its batch mean), and
`terms`, every named per-example quantity it wants logged (nats); the loop logs each as
`train_<name>` / `test_<name>` without knowing the names. Adding an objective is one class
with `@register(name)`, chosen with `--objective NAME`; its settings are `SETTINGS` (name ->
(type, default, meaning)), stored in config.yaml and checked by `make`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

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
    """

    name = "base"
    SETTINGS: dict[str, tuple[type, object, str]] = {}

    def __init__(self, **settings):
        for key, (kind, default, _) in self.SETTINGS.items():
            setattr(self, key, kind(settings.get(key, default)))

    def __call__(self, model, batch: Batch, noise: torch.Tensor | None = None, progress: float = math.inf):
        terms = model(batch, noise=noise)
        return self.loss(terms, batch, progress, _beta(model, batch))

    def loss(self, terms: Terms, batch: Batch, progress: float, beta) -> LossOutput:
        raise NotImplementedError

    def schedule(self, progress: float) -> dict[str, float]:
        """Batch-independent values at `progress` epochs (e.g. the KL weight), logged per epoch."""
        return {}

    def settings(self) -> dict:
        """What config.yaml stores: the name and each setting."""
        return {"name": self.name, **{k: getattr(self, k) for k in self.SETTINGS}}


def _beta(model, batch: Batch):
    """The KL weight of each example: the batch's own (beta-conditioned training) or the model's."""
    if batch.beta is not None:
        return batch.beta
    inner = getattr(model, "module", model)  # a DDP or Fabric wrapper holds the VAE as .module
    while hasattr(inner, "module") and not hasattr(inner, "beta"):
        inner = inner.module
    return inner.beta


def _elbo_terms(terms: Terms) -> dict[str, torch.Tensor]:
    return {"distortion": terms.distortion, "rate": terms.rate}


@register("beta-elbo")
class BetaELBO(Objective):
    """distortion + w(t) * beta * rate (Higgins et al., 2017, eq. 4), with an optional linear KL
    warm-up w(t) = min(1, t / warmup_epochs) (Bowman et al., 2016). beta = 1 is the ELBO
    (Kingma & Welling, 2014, eq. 3)."""

    SETTINGS = {"warmup_epochs": (float, 0.0, "linear KL warm-up over this many epochs")}

    def __init__(self, **settings):
        super().__init__(**settings)
        w = self.warmup_epochs
        if not (w >= 0 and math.isfinite(w)):
            raise VaekitError(f"warmup_epochs must be a finite number of at least 0, not {w!r}.")

    def kl_weight(self, progress: float) -> float:
        """The factor on beta * rate at `progress` epochs."""
        if self.warmup_epochs <= 0:
            return 1.0
        return min(1.0, progress / self.warmup_epochs)

    def schedule(self, progress):
        return {"kl_weight": self.kl_weight(progress)}

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


def default_name(model) -> str:
    """The objective a model trains with when none is named."""
    if model.kind == "ae":
        return "reconstruction"
    return "beta-elbo-conditioned" if model.beta_conditioned else "beta-elbo"


def make(name: str | None, model, **settings) -> Objective:
    """The objective `name` (None or "auto": the model's default) with `settings`, each checked:
    raises `VaekitError` naming an unknown objective or setting, or a value of the wrong kind."""
    if name in (None, "auto"):
        name = default_name(model)
    if name not in OBJECTIVES:
        raise VaekitError(f"Unknown objective {name!r}; choose one of {', '.join(OBJECTIVES)}.")
    cls = OBJECTIVES[name]
    check(
        model.kind == "vae" or name == "reconstruction",
        f"A deterministic autoencoder has no KL term, so it trains with the reconstruction objective, "
        f"not {name}; drop --objective or use --model vae.",
    )
    given = {k: v for k, v in settings.items() if v is not None}
    for key, value in given.items():
        if key not in cls.SETTINGS:
            known = ", ".join(cls.SETTINGS) or "none"
            raise VaekitError(f"The {name} objective has no setting {key!r} (its settings: {known}).")
        kind = cls.SETTINGS[key][0]
        try:
            ok = not isinstance(value, bool) or kind is bool
            given[key] = kind(value)
        except (TypeError, ValueError):
            ok = False
        check(ok, f"The {name} objective's {key} must be {_kind_name(kind)}, not {value!r}.")
    return cls(**given)


def _kind_name(kind) -> str:
    return {int: "a whole number", float: "a number", bool: "true or false"}.get(kind, "text")


def for_model(model, warmup_epochs: float = 0.0) -> Objective:
    """The objective a model trains with by default (with its KL warm-up where it has one)."""
    name = default_name(model)
    return make(name, model, **({"warmup_epochs": warmup_epochs} if name != "reconstruction" else {}))
