"""Experiment trackers: what a run's metrics.jsonl records, mirrored to the tracker a lab already
uses, through Lightning Fabric's loggers. metrics.jsonl stays the record; a tracker is a copy.

    vaekit train --data mnist5k --logger tensorboard,csv      (RUN/logs/tensorboard, RUN/logs/csv)
    tensorboard --logdir RUN/logs/tensorboard

Each epoch's row goes to every tracker at step = the epoch: every named term of the objective
(train_* and test_*), the learning rate, the KL weight and beta, the epoch's seconds. When
training ends, the final summary's numbers (summary/NAME, nats per example as in summary.json)
and, for TensorBoard, the run's figures (the PNGs the report draws) and its settings. Trackers
are offline: they write files in the run folder, and nothing leaves the machine. Each training
session (a --resume starts another) writes its own version folder.
"""

from __future__ import annotations

import math
from pathlib import Path

from vaekit.errors import VaekitError, check

# tracker name -> (Fabric logger class name, the package it needs, what to install)
TRACKERS = {
    "tensorboard": ("TensorBoardLogger", "tensorboard", 'pip install "vaekit[trackers]"'),
    "csv": ("CSVLogger", None, None),
}


def parse(value) -> tuple[str, ...]:
    """The trackers a --logger value names ("tensorboard,csv", a list, or None/"" for none), in
    order, each once. Raises `VaekitError` for a name that is not a tracker."""
    if not value:
        return ()
    names = [v.strip() for v in (value.split(",") if isinstance(value, str) else value) if str(v).strip()]
    unknown = [n for n in names if n not in TRACKERS]
    check(
        not unknown,
        f"--logger {unknown[0] if unknown else ''!r} is not a tracker; choose from {', '.join(TRACKERS)} "
        "(several as a comma list).",
    )
    return tuple(dict.fromkeys(names))


def _numbers(row: dict, prefix: str = "") -> dict[str, float]:
    """The finite numbers of a metrics row or summary, a list's entries as NAME_0, NAME_1, ..."""
    out = {}
    for key, value in row.items():
        if isinstance(value, bool) or key == "epoch":
            continue
        if isinstance(value, (int, float)) and math.isfinite(value):
            out[prefix + key] = float(value)
        elif isinstance(value, (list, tuple)) and all(isinstance(v, (int, float)) for v in value):
            out.update({f"{prefix}{key}_{i}": float(v) for i, v in enumerate(value) if math.isfinite(v)})
    return out


class Trackers:
    """A training callback (`vaekit.train.fit`'s `callbacks`) that mirrors each epoch's row and
    the final summary to the named trackers, under `out/logs/NAME`. Raises `VaekitError` when a
    tracker's package is missing (with the command that installs it) or no run folder is given."""

    def __init__(self, names, out, settings: dict | None = None):
        from lightning_fabric import loggers

        self.names = parse(names)
        check(out is not None, "--logger writes into the run folder; give the run an --out folder.")
        self.out = Path(out)
        self.loggers = {}
        for name in self.names:
            cls, package, install = TRACKERS[name]
            if package is not None:
                try:
                    __import__(package)
                except ImportError:
                    raise VaekitError(f"--logger {name} needs the {package} package; {install}.") from None
            self.loggers[name] = getattr(loggers, cls)(root_dir=self.out / "logs", name=name)
        if settings and "tensorboard" in self.loggers:  # the CSV logger keeps no settings
            plain = {k: v for k, v in settings.items() if isinstance(v, (int, float, str, bool)) or v is None}
            self.loggers["tensorboard"].log_hyperparams(plain)

    def on_epoch_end(self, run, row: dict) -> None:
        values = _numbers(row)
        for logger in self.loggers.values():
            logger.log_metrics(values, step=int(row["epoch"]))

    def on_fit_end(self, run) -> None:
        step = int(run.history[-1]["epoch"]) if run.history else 0
        summary = _numbers(run.summary or {}, "summary/")
        for name, logger in self.loggers.items():
            if summary:
                logger.log_metrics(summary, step=step)
            if name == "tensorboard":
                self._figures(logger, step)
            logger.finalize("success")

    def _figures(self, logger, step: int) -> None:
        """The run's figures (out/figures/*.png, as the report drew them) as TensorBoard images."""
        import numpy as np
        from PIL import Image

        for path in sorted((self.out / "figures").glob("*.png")):
            with Image.open(path) as image:
                pixels = np.asarray(image.convert("RGB"))
            logger.experiment.add_image(f"figures/{path.stem}", pixels, step, dataformats="HWC")

    def log_dirs(self) -> dict[str, Path]:
        """Each tracker's folder of this session."""
        return {name: Path(logger.log_dir) for name, logger in self.loggers.items()}


__all__ = ["TRACKERS", "Trackers", "parse"]
