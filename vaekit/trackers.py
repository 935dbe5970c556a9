"""Experiment trackers: what a run's metrics.jsonl records, mirrored to the tracker a lab already
uses, through Lightning Fabric's loggers (TensorBoard, CSV) and two adapters of Fabric's logger
interface where Fabric has none (Weights & Biases, MLflow). metrics.jsonl stays the record; a
tracker is a copy.

    vaekit train --data mnist5k --logger tensorboard,csv      (RUN/logs/tensorboard, RUN/logs/csv)
    tensorboard --logdir RUN/logs/tensorboard
    vaekit train --data mnist5k --logger wandb                (RUN/logs/wandb/offline-run-*)
    wandb sync RUN/logs/wandb/offline-run-*                   (later, to a W&B server)
    vaekit train --data mnist5k --logger mlflow               (RUN/logs/mlflow/mlflow.db)
    mlflow ui --backend-store-uri sqlite:///RUN/logs/mlflow/mlflow.db   (the full mlflow package)

Each epoch's row goes to every tracker at step = the epoch: every named term of the objective
(train_* and test_*), the learning rate, the KL weight and beta, the epoch's seconds. When
training ends, the final summary's numbers (summary/NAME, nats per example as in summary.json)
and, for TensorBoard, W&B and MLflow, the run's figures (the PNGs the report draws) and its
settings. Trackers are offline by default: they write files in the run folder, and nothing leaves
the machine. A lab's own server is the trackers' own switch: WANDB_MODE=online (with
WANDB_PROJECT, WANDB_ENTITY) for W&B, MLFLOW_TRACKING_URI (with MLFLOW_EXPERIMENT_NAME) for
MLflow. Each training session (a --resume starts another) writes its own version, W&B run or
MLflow run, named after the run folder.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from pathlib import Path

from lightning_fabric.loggers import CSVLogger, Logger, TensorBoardLogger

from vaekit.errors import VaekitError, check


class WandbLogger(Logger):
    """A Lightning Fabric logger that writes a Weights & Biases run under `root_dir`/wandb,
    offline unless the environment says otherwise (WANDB_MODE; the project is WANDB_PROJECT, else
    "vaekit"). Metrics are logged at the given step; `log_image` takes a PNG file.
    `wandb sync ROOT_DIR/wandb/offline-run-*` uploads an offline run later."""

    def __init__(self, root_dir, name: str = "wandb", run_name: str | None = None):
        import wandb

        self._wandb = wandb
        self._root = Path(root_dir)
        self._root.mkdir(parents=True, exist_ok=True)
        quiet = wandb.Settings(
            silent=True, console="off", disable_git=True, save_code=False, x_disable_stats=True
        )
        self._run = wandb.init(
            dir=str(self._root),
            project=os.environ.get("WANDB_PROJECT", "vaekit"),
            name=run_name,
            mode=os.environ.get("WANDB_MODE", "offline"),
            reinit="create_new",  # a sweep's runs in one process are separate W&B runs
            settings=quiet,
        )

    @property
    def name(self) -> str:
        return "wandb"

    @property
    def version(self) -> str:
        return self._run.id

    @property
    def root_dir(self) -> str:
        return str(self._root)

    @property
    def log_dir(self) -> str:
        return str(Path(self._run.dir).parent)  # ROOT/wandb/offline-run-DATE-ID

    @property
    def experiment(self):
        return self._run

    def log_hyperparams(self, params, *args, **kwargs) -> None:
        self._run.config.update(dict(params), allow_val_change=True)

    def log_metrics(self, metrics: dict, step: int | None = None) -> None:
        self._run.log(dict(metrics), step=step)

    def log_image(self, key: str, png, step: int) -> None:
        """The PNG file `png` as the W&B image `key` at `step`."""
        self._run.log({key: self._wandb.Image(str(png))}, step=step)

    def finalize(self, status: str) -> None:
        self._run.finish(exit_code=0 if status == "success" else 1)


class MLflowLogger(Logger):
    """A Lightning Fabric logger that writes an MLflow run: to the local database
    `root_dir`/mlflow/mlflow.db (artifacts beside it) unless MLFLOW_TRACKING_URI names a
    tracking server; the experiment is MLFLOW_EXPERIMENT_NAME, else "vaekit". Metrics are logged
    at the given step, settings as parameters, `log_image`'s PNG files as artifacts under
    figures/."""

    def __init__(self, root_dir, name: str = "mlflow", run_name: str | None = None):
        from mlflow.tracking import MlflowClient

        self._root = Path(root_dir) / name
        self._root.mkdir(parents=True, exist_ok=True)
        uri = os.environ.get("MLFLOW_TRACKING_URI")
        local = not uri
        uri = uri or f"sqlite:///{(self._root / 'mlflow.db').resolve()}"
        for noisy in ("mlflow.store.db.utils", "alembic.runtime.migration"):  # "Creating tables..."
            logging.getLogger(noisy).setLevel(logging.WARNING)
        self._client = MlflowClient(tracking_uri=uri)
        experiment_name = os.environ.get("MLFLOW_EXPERIMENT_NAME", "vaekit")
        with _unless_set(MLFLOW_HTTP_REQUEST_MAX_RETRIES="1", MLFLOW_HTTP_REQUEST_TIMEOUT="20"):
            # a server that does not answer is said in seconds, not after MLflow's minutes of retries
            experiment = self._client.get_experiment_by_name(experiment_name)
            if experiment is None:
                artifacts = (self._root / "artifacts").resolve().as_uri() if local else None
                try:
                    experiment_id = self._client.create_experiment(
                        experiment_name, artifact_location=artifacts
                    )
                except Exception:  # noqa: BLE001 - made meanwhile by a parallel run of the same sweep
                    experiment = self._client.get_experiment_by_name(experiment_name)
                    if experiment is None:
                        raise
                    experiment_id = experiment.experiment_id
            else:
                experiment_id = experiment.experiment_id
            self._run_id = self._client.create_run(experiment_id, run_name=run_name).info.run_id
        self.tracking_uri = uri

    @property
    def name(self) -> str:
        return "mlflow"

    @property
    def version(self) -> str:
        return self._run_id

    @property
    def root_dir(self) -> str:
        return str(self._root)

    @property
    def log_dir(self) -> str:
        return str(self._root)

    @property
    def experiment(self):
        return self._client

    def log_hyperparams(self, params, *args, **kwargs) -> None:
        from mlflow.entities import Param

        self._client.log_batch(self._run_id, params=[Param(k, str(v)) for k, v in dict(params).items()])

    def log_metrics(self, metrics: dict, step: int | None = None) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, int(step or 0)) for k, v in metrics.items()]
        for i in range(0, len(batch), 1000):  # MLflow's limit per batch
            self._client.log_batch(self._run_id, metrics=batch[i : i + 1000])

    def log_image(self, key: str, png, step: int) -> None:
        """The PNG file `png` as an artifact in the folder of `key` (figures/NAME: figures/)."""
        self._client.log_artifact(self._run_id, str(png), os.path.dirname(key) or None)

    def finalize(self, status: str) -> None:
        self._client.set_terminated(self._run_id, "FINISHED" if status == "success" else "FAILED")


@contextlib.contextmanager
def _unless_set(**values):
    """Environment variables set to `values` for the block, except those the user set."""
    added = {k: v for k, v in values.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


# tracker name -> (its Fabric logger, the packages it needs, what to install)
TRACKERS = {
    "tensorboard": (TensorBoardLogger, ("tensorboard",), 'pip install "vaekit[trackers]"'),
    "csv": (CSVLogger, (), None),
    "wandb": (WandbLogger, ("wandb",), 'pip install "vaekit[wandb]"'),
    # the local database (sqlite) needs SQLAlchemy and Alembic besides mlflow-skinny
    "mlflow": (MLflowLogger, ("mlflow", "sqlalchemy", "alembic"), 'pip install "vaekit[mlflow]"'),
}


def parse(value) -> tuple[str, ...]:
    """The trackers a --logger value names ("tensorboard,csv", a list, or None, "" or "none" for
    none: on --resume, that turns them off), in order, each once, each with its packages
    installed. Raises `VaekitError` for a name that is not a tracker, or a tracker whose package
    is missing (with the command that installs it)."""
    if not value or (isinstance(value, str) and value.strip().lower() == "none"):
        return ()
    names = [v.strip() for v in (value.split(",") if isinstance(value, str) else value) if str(v).strip()]
    unknown = [n for n in names if n not in TRACKERS]
    check(
        not unknown,
        f"--logger {unknown[0] if unknown else ''!r} is not a tracker; choose from {', '.join(TRACKERS)} "
        "(several as a comma list), or none.",
    )
    import importlib.util

    for name in names:
        _, packages, install = TRACKERS[name]
        if name == "mlflow" and os.environ.get("MLFLOW_TRACKING_URI"):
            packages = packages[:1]  # a tracking server: no local database, so no SQLAlchemy
        for package in packages:
            check(
                importlib.util.find_spec(package) is not None,
                f"--logger {name} needs the {package} package; {install}.",
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
    the final summary to the named trackers, under `out/logs/NAME`, and the run's settings and
    figures to those that keep them (all but CSV). Raises `VaekitError` as `parse` does, or when
    no run folder is given."""

    def __init__(self, names, out, settings: dict | None = None):
        self.names = parse(names)
        check(out is not None, "--logger writes into the run folder; give the run an --out folder.")
        self.out = Path(out)
        self.loggers = {}
        plain = {}
        for key, value in (settings or {}).items():  # numbers and words; a prior's entry by its name
            value = value.get("name") if isinstance(value, dict) else value
            if isinstance(value, (list, tuple)) and all(isinstance(v, (int, float, str)) for v in value):
                value = ",".join(str(v) for v in value)  # hidden sizes as written: 512,256
            if isinstance(value, (int, float, str, bool)) or value is None:
                plain[key] = value
        for name in self.names:
            cls = TRACKERS[name][0]
            try:  # a tracker's own service (a server named in the environment, a login) may refuse
                if cls is TensorBoardLogger:  # no hp_metric: the settings are not a score
                    logger = cls(root_dir=self.out / "logs", name=name, default_hp_metric=False)
                elif cls is CSVLogger:
                    logger = cls(root_dir=self.out / "logs", name=name)
                else:
                    logger = cls(self.out / "logs", name=name, run_name=self.out.resolve().name)
                self.loggers[name] = logger
                if plain and name != "csv":  # the CSV logger keeps no settings
                    logger.log_hyperparams(plain)
            except Exception as err:  # noqa: BLE001 - each tracker's own errors, said in one sentence
                self.close("failed")
                reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
                reason = reason if len(reason) <= 200 else reason[:200] + "..."
                raise VaekitError(
                    f"--logger {name} could not start its run ({reason}); check the tracker's settings in "
                    "the environment (WANDB_MODE, MLFLOW_TRACKING_URI, ...) or leave it out of --logger, "
                    f"then go on with --resume {self.out} (this session trained nothing)."
                ) from None

    def close(self, status: str) -> None:
        """End every tracker's run with `status` ("success" or "failed"), once."""
        loggers, self.loggers = self.loggers, {}
        for logger in loggers.values():
            logger.finalize(status)

    def on_fit_failed(self, run) -> None:
        """Training stopped (an error, Ctrl-C): each tracker's run ends as failed."""
        self.close("failed")

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
            if name != "csv":
                self._figures(logger, step)
        self.close("success")

    def _figures(self, logger, step: int) -> None:
        """The run's figures (out/figures/*.png, as the report drew them) as the tracker's images
        (figures/NAME)."""
        import numpy as np
        from PIL import Image

        for path in sorted((self.out / "figures").glob("*.png")):
            if isinstance(logger, TensorBoardLogger):  # TensorBoard takes pixels; the others the file
                with Image.open(path) as image:
                    pixels = np.asarray(image.convert("RGB"))
                logger.experiment.add_image(f"figures/{path.stem}", pixels, step, dataformats="HWC")
            else:
                logger.log_image(f"figures/{path.stem}", path, step)

    def log_dirs(self) -> dict[str, Path]:
        """Each tracker's folder of this session."""
        return {name: Path(logger.log_dir) for name, logger in self.loggers.items()}


__all__ = ["TRACKERS", "MLflowLogger", "Trackers", "WandbLogger", "parse"]
