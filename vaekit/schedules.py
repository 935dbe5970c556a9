"""Weights that change with training progress: the KL weight schedules, the capacity ramp and
the learning-rate schedules.

Every function takes `progress`, the training position in epochs (a float: epoch + step / steps
while training, the end of an epoch in the per-epoch log, `math.inf` for evaluation after
training), and returns a plain float. They hold no state, so one resumed run and one
uninterrupted run see the same weights. The objectives (`vaekit.objectives`) share them through
one mixin, `KLScheduled`, so every KL-weighting objective offers the same three schedules.

    constant   w(t) = 1
    linear     w(t) = min(1, t / warmup_epochs)                        (Bowman et al., 2016)
    cyclical   w(t) = min(1, tau(t) / R), tau the position in the cycle (Fu et al., 2019, eq. 4-5)

The learning rate at progress t of T epochs (`learning_rate`, used by `vaekit.train.fit` before
every optimisation step):

    constant   lr(t) = lr
    cosine     lr(t) = lr_min + (lr - lr_min) (1 + cos(pi t / T)) / 2   (Loshchilov & Hutter, 2017, eq. 5)
"""

from __future__ import annotations

import math

from vaekit.errors import VaekitError, check

SCHEDULES = ("constant", "linear", "cyclical")
LR_SCHEDULES = ("auto", "constant", "cosine")


def linear(progress: float, epochs: float) -> float:
    """min(1, progress / epochs), 1 when `epochs` <= 0 (no ramp): a linear warm-up (Bowman et al.,
    2016) over `epochs` epochs. Unitless, in [0, 1]."""
    if epochs <= 0 or progress >= epochs:
        return 1.0
    return max(0.0, progress / epochs)


def cyclical(progress: float, epochs: float, cycles: int, ratio: float) -> float:
    """The cyclical KL weight of Fu et al. (2019, eq. 4 with the linear f of eq. 5).

    Training's `epochs` are cut into `cycles` (M) cycles of length L = epochs / M. Within a cycle
    the position is tau in (0, 1]; the weight rises linearly, tau / R, reaching 1 at tau = R
    (`ratio`), and holds at 1 until the cycle ends; the next cycle restarts from 0. Cycle c spans
    (c L, (c + 1) L]: the point c L itself is the last instant of the previous cycle (weight 1),
    so the value logged at the end of an epoch is the weight its last steps used; only the first
    step of each later cycle differs from the paper's discrete formula (1 instead of 0).
    `progress` <= 0 gives 0; `progress` >= `epochs` (after training) gives 1.
    Raises `VaekitError` for epochs <= 0, cycles < 1 or a ratio outside (0, 1].
    """
    check_cyclical(cycles, ratio)
    check(epochs > 0, f"The cyclical KL schedule needs a positive number of epochs, not {epochs!r}.")
    if progress >= epochs:
        return 1.0
    if progress <= 0:
        return 0.0
    length = epochs / cycles
    position = progress / length
    tau = position - math.ceil(position) + 1.0  # in (0, 1]
    return min(1.0, tau / ratio)


def check_cyclical(cycles, ratio) -> None:
    """Raise `VaekitError` unless cycles is a whole number >= 1 and 0 < ratio <= 1."""
    check(
        isinstance(cycles, int) and not isinstance(cycles, bool) and cycles >= 1,
        f"cycles must be a whole number of at least 1, not {cycles!r}.",
    )
    check(
        isinstance(ratio, (int, float)) and 0 < ratio <= 1,
        f"cycle_ratio must be a fraction in (0, 1] of each cycle, not {ratio!r}.",
    )


def kl_weight(
    name: str,
    progress: float,
    warmup_epochs: float = 0.0,
    epochs: float | None = None,
    cycles: int = 4,
    ratio: float = 0.5,
) -> float:
    """The KL weight of schedule `name` (constant, linear, cyclical) at `progress` epochs.
    `epochs` (the length of training) is needed by the cyclical schedule before the end of
    training; raises `VaekitError` for an unknown name or a cyclical schedule without it."""
    if name == "constant":
        return 1.0
    if name == "linear":
        return linear(progress, warmup_epochs)
    if name == "cyclical":
        if progress == math.inf:
            return 1.0
        if epochs is None:
            raise VaekitError(
                "The cyclical KL schedule needs the number of training epochs; call "
                "objective.bind(epochs=...) (train.fit does) before using it."
            )
        return cyclical(progress, epochs, cycles, ratio)
    raise VaekitError(f"kl_schedule must be one of {', '.join(SCHEDULES)}, not {name!r}.")


def learning_rate(name: str, progress: float, epochs: float, lr: float, lr_min: float = 0.0) -> float:
    """The learning rate of schedule `name` at `progress` epochs of `epochs`.

    constant: `lr` throughout. cosine: SGDR's cosine annealing without restarts (Loshchilov &
    Hutter, 2017, eq. 5, with T_cur = `progress` and T_i = `epochs`), from `lr` at the start to
    `lr_min` at the end of training, evaluated in closed form at every step (no scheduler state,
    so a resumed run steps with the same rates as an uninterrupted one). Units: those of `lr`.
    Raises `VaekitError` for an unknown name.
    """
    check_lr_schedule(name)
    check(name != "auto", "lr_schedule auto is resolved before training (resolve_lr_schedule).")
    if name == "constant":
        return lr
    t = min(max(progress / epochs, 0.0), 1.0) if epochs > 0 else 1.0
    return lr_min + (lr - lr_min) * 0.5 * (1.0 + math.cos(math.pi * t))


def resolve_lr_schedule(name: str, typed_table: bool) -> str:
    """The schedule `auto` stands for: cosine for a table of typed columns (on probabilistic-PCA
    data its test NLL came within 0.05 nats of the exact value over three seeds, against 0.13
    with a constant rate: benchmarks/RESULTS-tables.md), constant otherwise (what every image
    result so far was measured with). Other names are returned as they are."""
    if name == "auto":
        return "cosine" if typed_table else "constant"
    return name


def check_lr_schedule(name) -> None:
    """Raise `VaekitError` unless `name` is one of `LR_SCHEDULES`."""
    check(name in LR_SCHEDULES, f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, not {name!r}.")


__all__ = [
    "SCHEDULES",
    "LR_SCHEDULES",
    "linear",
    "cyclical",
    "kl_weight",
    "check_cyclical",
    "learning_rate",
    "check_lr_schedule",
    "resolve_lr_schedule",
]
