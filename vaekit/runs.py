"""The run folder: config.yaml + model.safetensors is all it takes to rebuild a model.

Loading never unpickles: weights are safetensors, the config is YAML read with `safe_load`, and
`checkpoint.pt` (training state only) is read with `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import yaml
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from vaekit import io
from vaekit._version import __version__
from vaekit.errors import VaekitError, check
from vaekit.model import VAE

FORMAT_VERSION = 1
RUN_FILES = (
    "config.yaml",
    "model.safetensors",
    "objective.safetensors",
    "checkpoint.pt",
    "metrics.jsonl",
    "summary.json",
    "report.html",
    "traversals.csv",
    "figures",
)


def prepare(out: str | os.PathLike, overwrite: bool = False) -> Path:
    """Make a new run folder; refuse to touch an existing one unless `overwrite`."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise VaekitError(f"{out} is a file, not a folder; choose another --out.")
    if out.is_dir() and any(not p.name.startswith(LOCK) for p in out.iterdir()):
        if not overwrite:
            started = (out / "config.yaml").exists() and not (out / "checkpoint.pt").exists()
            raise VaekitError(
                f"{out} holds a run that never finished an epoch; start it again with --resume {out} (with a "
                "new --lr or --clip-grad if it failed), or replace it with --overwrite."
                if started
                else f"{out} already exists and is not empty; choose another --out, continue it with "
                "--resume, or replace it with --overwrite."
            )
        for name in RUN_FILES:
            target = out / name
            if target.is_dir():
                shutil.rmtree(target)
            else:
                target.unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    remove_temp_files(out)
    return out


LOCK = ".vaekit.lock"  # held while a process trains into the folder; its owner beside it


@contextlib.contextmanager
def lock(out: Path):
    """Hold the lock of the existing folder `out` while training into it; the lock file and its
    owner note are removed when it is released, so a folder keeps nothing of it. Raises
    `VaekitError` naming the process that holds it (another `vaekit train` into the same folder)."""
    import filelock

    owner = out / (LOCK + ".owner")
    held = filelock.FileLock(str(out / LOCK))
    try:
        held.acquire(timeout=0)
    except filelock.Timeout:
        who = owner.read_text().strip() if owner.exists() else "another process"
        raise VaekitError(
            f"{out} is being trained by {who}; wait for it to finish (or stop it), then run again."
        ) from None
    try:
        owner.write_text(
            f"process {os.getpid()} on {socket.gethostname()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}"
        )
        yield
    finally:
        owner.unlink(missing_ok=True)
        held.release()
        (out / LOCK).unlink(missing_ok=True)


def remove_temp_files(out: Path) -> None:
    """Delete the temporary files a write killed mid-way left behind (`.NAME.*.tmp`)."""
    for folder in (out, out / "figures"):
        if folder.is_dir():
            for tmp in folder.glob(".*.tmp"):
                tmp.unlink(missing_ok=True)


def save_config(out: Path, config: dict) -> None:
    """Write `out/config.yaml` atomically: `config` with `format_version` and `vaekit_version`
    first (a key of `config` with either name replaces it)."""
    io.write_yaml(
        out / "config.yaml",
        {"format_version": FORMAT_VERSION, "vaekit_version": __version__, **config},
    )


def read_config(run: str | os.PathLike) -> dict:
    """A run folder's config.yaml as a dict (read with `yaml.safe_load`). Raises `VaekitError` for
    a missing folder or file, invalid YAML, a file without a `model` entry or a format_version,
    or a format newer than this vaekit reads."""
    run = Path(run)
    path = run / "config.yaml"
    if not run.exists():
        raise VaekitError(f"No run folder at {run}; check the path (train one with vaekit train).")
    check(path.exists(), f"{run} has no config.yaml, so it is not a vaekit run folder.")
    try:
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        first = (str(err).splitlines() or [type(err).__name__])[0][:200]
        raise VaekitError(
            f"{path} is not valid YAML ({first}); it is the run's record: undo the edit, or restore it "
            "from a copy of the run."
        ) from None
    check(isinstance(config, dict) and "model" in config, f"{path} does not describe a vaekit model.")
    version = config.get("format_version")
    check(
        isinstance(version, int),
        f"{path} has no format_version; it was not written by vaekit.",
    )
    if version > FORMAT_VERSION:
        raise VaekitError(
            f"{run} was written by a newer vaekit (run format {version}, this vaekit reads up to "
            f"{FORMAT_VERSION}); upgrade vaekit with pip install -U vaekit."
        )
    return config


def save_weights(out: Path, model: VAE) -> None:
    """Write the model's state dict (CPU copies, the scaling buffers included) atomically to
    `out/model.safetensors`."""
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    io.write_bytes(out / "model.safetensors", save(state, metadata={"format_version": str(FORMAT_VERSION)}))


def save_objective_weights(out: Path, objective) -> None:
    """Write an objective's own learned weights (`Objective.weights()`, e.g. FactorVAE's
    discriminator; CPU copies) atomically to `out/objective.safetensors`; nothing for an
    objective without weights."""
    weights = objective.weights()
    if weights is None:
        return
    state = {k: v.detach().cpu().contiguous() for k, v in weights.items()}
    io.write_bytes(
        out / "objective.safetensors", save(state, metadata={"format_version": str(FORMAT_VERSION)})
    )


def load_objective_weights(run: Path, objective) -> None:
    """Load `run/objective.safetensors` into an objective that has weights of its own (no-op for
    one without). Raises `VaekitError` for a missing or unreadable file, or weights that do not
    fit the objective."""
    if objective.weights() is None:
        return
    path = run / "objective.safetensors"
    state = _read_safetensors(
        path,
        f"{path} is missing; the {objective.name} objective's weights (e.g. its discriminator) are "
        "needed to evaluate the run: restore the file or retrain.",
    )
    objective.load_weights(state)


def _read_safetensors(path: Path, missing: str) -> dict:
    """The tensors of a safetensors file; raises `VaekitError` with `missing` when there is no
    file, and one sentence when it cannot be read (truncated, not safetensors)."""
    check(path.exists(), missing)
    try:
        return load_file(path)
    except (SafetensorError, OSError, ValueError) as err:
        raise VaekitError(
            f"{path} is not a readable safetensors file ({err}); it may be truncated: restore it or retrain."
        ) from None


def load_weights(run: Path, model: VAE) -> None:
    """Load `run/model.safetensors` into `model` in place; every key must match. The scaling
    buffers are set from the saved ones first (a table's are per feature, so their shape differs
    from a fresh model's). Raises `VaekitError` for a missing or unreadable file, or weights that
    do not fit the model (from a different run)."""
    path = run / "model.safetensors"
    state = _read_safetensors(
        path, f"{path} is missing; the run did not finish or the file was removed: retrain or restore it."
    )
    if "data_shift" in state and "data_scale" in state:
        model.set_scaling(state["data_shift"], state["data_scale"])  # per-feature for tables
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as err:
        raise VaekitError(
            f"{path} does not match the model in config.yaml ({str(err).splitlines()[-1].strip()}); "
            "the two files come from different runs."
        ) from None
    if missing or unexpected:
        raise VaekitError(
            f"{path} does not match the model in config.yaml (missing {list(missing)[:3]}, "
            f"unexpected {list(unexpected)[:3]}); the two files come from different runs."
        )


def load(run: str | os.PathLike) -> VAE:
    """Rebuild a trained model from a run folder (no data needed, nothing unpickled)."""
    run = Path(run)
    config = read_config(run)
    model = VAE.from_config(config["model"])
    load_weights(run, model)
    model.eval()
    return model


def load_objective(run: str | os.PathLike, model: VAE):
    """The `vaekit.objectives.Objective` a run trained with, from config.yaml's train section (a
    name with its settings; runs written before objectives had settings store only the name, with
    warmup_epochs beside it; runs without one get the model's default), bound to `model` and the
    run's epochs and per-process batch size, with its own weights (objective.safetensors) where it
    has any. Raises `VaekitError` for an objective this vaekit does not have, or missing weights."""
    from vaekit import objectives

    train = read_config(run).get("train") or {}
    entry = train.get("objective")
    if isinstance(entry, dict):
        settings = {k: v for k, v in entry.items() if k != "name"}
        name = entry.get("name")
        old = getattr(objectives.OBJECTIVES.get(name), "OLD_DEFAULTS", {})
        settings = {**old, **settings}  # a setting added since the run was written: its old value
    else:
        settings, name = {}, entry if isinstance(entry, str) else objectives.default_name(model)
    check(
        name in objectives.OBJECTIVES,
        f"{run}/config.yaml says the run trained with the objective {name!r}, which this vaekit does not "
        f"have ({', '.join(objectives.OBJECTIVES)}); upgrade vaekit.",
    )
    if not isinstance(entry, dict):
        settings = {}
        if "warmup_epochs" in objectives.OBJECTIVES[name].SETTINGS:
            settings["warmup_epochs"] = train.get("warmup_epochs") or 0.0
    objective = objectives.make(name, model, **settings)
    epochs = train.get("epochs")
    batch, processes = train.get("batch_size"), (train.get("devices") or 1) * (train.get("num_nodes") or 1)
    objective.bind(
        epochs=int(epochs) if isinstance(epochs, int) and epochs >= 1 else None,
        batch_size=batch // processes if isinstance(batch, int) and batch >= processes >= 1 else None,
    )
    load_objective_weights(Path(run), objective)
    return objective


def save_checkpoint(out: Path, state: dict) -> None:
    """Write the training state `state` atomically to `out/checkpoint.pt` (`torch.save`)."""
    with io.atomic_path(out / "checkpoint.pt") as tmp:
        torch.save(state, tmp)


def load_checkpoint(run: Path) -> dict | None:
    """The training state in `run/checkpoint.pt`, tensors on the CPU, read with
    `torch.load(weights_only=True)`; None when there is none. Raises `VaekitError` when the file
    cannot be loaded that way (corrupt, or holding code)."""
    path = run / "checkpoint.pt"
    if not path.exists():
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a hostile file's pickle-protocol warning is noise
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any failure means: do not trust this file
        raise VaekitError(
            f"{path} cannot be loaded safely ({type(err).__name__}); it may be corrupt or contain "
            "code. Delete it to restart training, or restore the original."
        ) from None


def load_data(run: str | os.PathLike):
    """Reload the data set (and its split) that a run was trained on, from config.yaml."""
    from vaekit import datasets

    record = read_config(run).get("data")
    check(
        isinstance(record, dict) and "source" in record,
        f"{run}/config.yaml does not say which data the run used; pass the data explicitly.",
    )
    data = datasets.load(
        record["source"],
        test_size=record.get("test_size") or 0.2,
        split_seed=record.get("split_seed") or 0,
        scaling=_saved_scaling(Path(run), record.get("scaling", "auto")),
        label_column=record.get("label_column"),
        keys=record.get("keys"),
        columns=record.get("columns"),
        drop_columns=record.get("drop_columns"),
        test_data=record.get("test_data"),
        image_options=record.get("image_options"),
        discrete_columns=record.get("discrete_columns"),
        binarize=record.get("binarize") or "none",
        table_options={**(record.get("table_options") or {}), "schema": record.get("schema")}
        if record.get("schema")
        else None,
    )
    shape = read_config(run)["model"].get("data_shape")
    check(
        shape is None or list(data.shape) == list(shape),
        f"{record['source']} now reads as examples of shape {tuple(data.shape)} but the run's model takes "
        f"{tuple(shape or ())}; the file changed, or an older vaekit read it differently (e.g. kept a pandas "
        "index column): retrain the run on it.",
    )
    then, now = record.get("content_sha256"), datasets.record(data)["content_sha256"]
    if then and then != now:
        warnings.warn(
            f"{record['source']} has changed since {Path(run).name} was trained on it (its content hash "
            f"differs: {then[:12]}... then, {now[:12]}... now); what is computed from it describes the new "
            "content, not the training data.",
            stacklevel=2,
        )
    return data


def _saved_scaling(run: Path, name: str):
    """The scaling the run was trained with, from the weights file's buffers (so a reloaded run sees
    exactly the inputs it was trained on, whatever today's defaults); `name` if it cannot be read."""
    from safetensors import safe_open

    from vaekit import datasets

    try:
        with safe_open(str(run / "model.safetensors"), framework="pt") as f:
            shift, scale = f.get_tensor("data_shift").numpy(), f.get_tensor("data_scale").numpy()
    except Exception:  # noqa: BLE001 - a missing or partial file: fit the scaling again
        return name
    return datasets.Scaling(name if name != "auto" else "saved", shift, scale)


def column_names(run: str | os.PathLike, model: VAE) -> list[str]:
    """The names of the model's input features: a table run's column names from config.yaml,
    else feature_0, feature_1, ... (one per value of an example, flattened)."""
    import math

    names = (read_config(run).get("data") or {}).get("column_names")
    size = math.prod(model.data_shape)
    if names and len(names) == size:
        return [str(n) for n in names]
    return [f"feature_{i}" for i in range(size)]


def user_frame(run: str | os.PathLike, model: VAE, x) -> pandas.DataFrame:  # noqa: F821
    """Model-unit rows (n, *data_shape) (reconstructions, samples) as a DataFrame in the user's
    units, one column per feature: a typed table's columns as `Schema.to_user` writes them
    (float64, whole numbers, labels), else the run's scaling undone, as float64."""
    import pandas as pd

    x = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    schema = getattr(model.likelihood, "schema", None)
    if schema is not None:
        return schema.to_user(x)
    shift = model.data_shift.double().numpy()
    scale = model.data_scale.double().numpy()
    user = x.astype(np.float64) * scale + shift
    return pd.DataFrame(user.reshape(len(user), -1), columns=column_names(run, model))
