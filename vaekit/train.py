"""Training: a plain loop (Adam, in-memory batches) with Lightning Fabric around it.

Reproducibility: the batch order and the reparameterisation noise of epoch e come from a CPU
generator seeded by (seed, e), drawn for the global batch and sliced per process. So the same
seed gives the same numbers, a resumed run continues exactly, and N processes match one.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import time
import warnings
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import torch

from vaekit import datasets, evaluate, io, objectives, runs, schedules, trackers
from vaekit.batch import Batch, observations
from vaekit.config import SEGMENT_KEYS, TrainConfig
from vaekit.errors import Finished, Interrupted, NumericalError, VaekitError, check
from vaekit.model import VAE


@dataclass
class Run:
    """A trained model with its history (one dict per epoch) and final summary."""

    model: VAE
    history: list[dict] = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    path: Path | None = None

    @property
    def metrics(self) -> dict:
        """The final summary (the same dict as `summary`, summary.json's keys)."""
        return self.summary

    def __repr__(self) -> str:
        elbo = self.summary.get("elbo")
        said = f", elbo {elbo:.6g} nats" if isinstance(elbo, (int, float)) else ""
        return f"Run({str(self.path) if self.path else 'no folder'}: {len(self.history)} epochs{said})"

    #: the figures a notebook shows of a run, where its folder holds them
    SHOWN_FIGURES = ("latent_space", "reconstructions", "samples", "training_curves")

    def summary_frame(self):
        """The summary's numbers as a pandas DataFrame: one row per scalar key, with its value and
        its meaning and unit (`vaekit.summary_keys`); lists and nested records are left out."""
        import pandas as pd

        from vaekit import summary_keys

        rows = [
            (key, value, summary_keys.meaning(key))
            for key, value in self.summary.items()
            if isinstance(value, (int, float, str, bool)) or value is None
        ]
        return pd.DataFrame(rows, columns=["key", "value", "meaning"]).set_index("key")

    def history_frame(self):
        """metrics.jsonl as a pandas DataFrame: one row per epoch, one column per logged value
        (nats per example unless the name says otherwise)."""
        import pandas as pd

        return pd.DataFrame(self.history)

    def _repr_html_(self) -> str:
        """Jupyter's display of a run: where it is, the summary's numbers with their meanings,
        and the run's figures where its folder holds them."""
        import base64
        import html

        where = f"<code>{html.escape(str(self.path))}</code>" if self.path else "(no run folder)"
        epochs = len(self.history)
        parts = [
            f"<p><b>vaekit run</b> {where}: {epochs} epoch{'s' if epochs != 1 else ''}</p>",
            self.summary_frame().to_html(float_format=lambda v: f"{v:.6g}", na_rep=""),
        ]
        for name in self.SHOWN_FIGURES if self.path else ():
            png = Path(self.path) / "figures" / f"{name}.png"
            if png.exists():
                data = base64.b64encode(png.read_bytes()).decode("ascii")
                parts.append(
                    f"<figure style='display:inline-block;width:48%;margin:0 1% 1em 0'><img "
                    f"src='data:image/png;base64,{data}' style='width:100%' alt='{name}'><figcaption>"
                    f"{name.replace('_', ' ')}</figcaption></figure>"
                )
        return "".join(parts)


def _generator(seed: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


class _OneCPUProcess:
    """What the loop asks of Fabric when there is one process at full precision on the CPU, the
    case `_direct` trains without Fabric's wrappers: the device, a world of one, rank 0."""

    device = torch.device("cpu")
    world_size = 1
    global_rank = 0

    def launch(self) -> None:
        """Nothing to launch: one process."""


def _fabric(device: str, devices: int, strategy: str, precision: str, num_nodes: int = 1):
    """Lightning Fabric for the device, precision and processes asked for (`_OneCPUProcess` for
    one full-precision process on the CPU). Raises `VaekitError` for a device or precision this
    machine cannot give."""
    accelerator = {"auto": "auto", "cpu": "cpu", "cuda": "cuda", "gpu": "cuda"}.get(device)
    check(accelerator is not None, f"--device must be auto, cpu or cuda, not {device!r}.")
    if accelerator == "cuda" and not torch.cuda.is_available():
        raise VaekitError("--device cuda was asked for but no CUDA device is available; use cpu.")
    on_cpu = accelerator == "cpu" or not torch.cuda.is_available()
    # Fabric would quietly run 16-mixed as bf16 on a CPU: config.yaml must say what ran
    check(
        not (on_cpu and str(precision) in ("16-mixed", "16", "16-true")),
        f"--precision {precision} needs a CUDA device; on a CPU use bf16-mixed or 32-true.",
    )
    check(devices >= 1, f"--devices must be at least 1, not {devices}.")
    check(num_nodes >= 1, f"--num-nodes must be at least 1, not {num_nodes}.")
    if on_cpu and devices == num_nodes == 1 and strategy == "auto" and _direct(1, precision):
        return _OneCPUProcess()  # nothing for Fabric to do, and importing it costs about 1 s
    from lightning_fabric import Fabric

    return Fabric(
        accelerator=accelerator, devices=devices, num_nodes=num_nodes, strategy=strategy, precision=precision
    )


def check_settings(s: TrainConfig) -> None:
    """Raise `VaekitError` naming the first `TrainConfig` field of the wrong kind or out of range:
    whole numbers of at least 1 for epochs, batch_size, devices and num_nodes, at least 0 for
    nll_samples and seed; a positive finite lr; a known lr_schedule; a finite lr_min in [0, lr],
    0 unless the schedule is cosine; a finite warmup_epochs of at least 0; a positive clip_grad
    or None; known trackers in logger. Called by `fit` before anything is built, and by a sweep
    before its first run trains."""

    def whole(value) -> bool:
        return isinstance(value, (int, np.integer)) and not isinstance(value, bool)

    def number(value) -> bool:
        real = isinstance(value, (int, float, np.number)) and not isinstance(value, bool)
        return real and math.isfinite(value)

    for key, low in (("epochs", 1), ("batch_size", 1), ("devices", 1), ("num_nodes", 1)):
        value = getattr(s, key)
        ok = whole(value) and value >= low
        check(ok, f"{key} must be a whole number of at least {low}, not {value!r}.")
    for key in ("nll_samples", "seed"):
        value = getattr(s, key)
        check(whole(value) and value >= 0, f"{key} must be a whole number of at least 0, not {value!r}.")
    check(number(s.lr) and s.lr > 0, f"lr must be a positive number, not {s.lr!r}.")
    schedules.check_lr_schedule(s.lr_schedule)
    check(
        number(s.lr_min) and 0 <= s.lr_min <= s.lr,
        f"lr_min must be a number from 0 to lr ({s.lr!r}), not {s.lr_min!r}.",
    )
    check(
        s.lr_min == 0 or s.lr_schedule in ("cosine", "auto"),  # auto: checked again once resolved
        f"lr_min ({s.lr_min!r}) is the end of the cosine schedule; add --lr-schedule cosine, or drop "
        "--lr-min.",
    )
    check(
        number(s.warmup_epochs) and s.warmup_epochs >= 0,
        f"warmup_epochs must be a number of at least 0, not {s.warmup_epochs!r}.",
    )
    check(
        s.clip_grad is None or (number(s.clip_grad) and s.clip_grad > 0),
        f"clip_grad must be a positive number (or not given), not {s.clip_grad!r}.",
    )
    trackers.parse(s.logger)  # a tracker's name, before anything trains


def fit(
    model: VAE, data, settings: TrainConfig | None = None, *, out: str | Path | None = None, **kwargs
) -> Run:
    """Train `model` on `data.x_train`, evaluating on the test split every epoch (the loop only:
    figures and reports are callbacks; `vaekit.fit` adds the report's).

    `settings`: a `vaekit.config.TrainConfig` (epochs, batch_size, lr, lr_schedule, lr_min, seed,
    warmup_epochs, clip_grad, skip_nonfinite, nll_samples, device, devices, num_nodes, strategy, precision);
    any of its fields may also be given as a keyword (`fit(model, data, epochs=5)`), overriding it.
    With `out`, the run folder is written as it goes (see SPEC: config.yaml, model.safetensors,
    checkpoint.pt, metrics.jsonl, summary.json). `resume=True` continues from `out/checkpoint.pt`
    under the resume rules (`vaekit.config.SEGMENT_KEYS`): a loop setting that differs from the
    run's last segment starts a new segment at the next epoch boundary.
    `config` is the data part of config.yaml (the CLI passes it). `objective`: a
    `vaekit.objectives.Objective` (default: the model's own, with `warmup_epochs`); every term
    its `LossOutput` names is logged per epoch as train_<name> and test_<name>. The objective is
    bound (`Objective.bind`) to the model, the training split's size, the epochs and the seed
    before training; one with its own parameters (FactorVAE's discriminator) steps after each
    model step (`after_step`), its state travels in checkpoint.pt and its weights in the run
    folder's objective.safetensors. A label-conditional
    model trains on the data's labels. `callbacks`: objects with optional methods
    `on_epoch_end(run, row)` (every process, after the epoch's row is written),
    `on_fit_end(run)` (main process, after summary.json) and `on_fit_failed(run)` (when training,
    the final summary or an `on_fit_end` stops with an error or Ctrl-C, before it is raised on).
    The run folder is locked while training (`runs.lock`): a second process training into it (two
    `--resume` of one run) stops with one sentence naming the first.
    Returns a `Run` with the history and the final `evaluate.summarize` result.
    Raises `VaekitError` for a bad setting or a change the resume rules refuse, `Finished` when a
    resumed run has already trained all its epochs, `NumericalError` when training diverges,
    and `Interrupted` on Ctrl-C (after saving the position).
    """
    with contextlib.ExitStack() as held:  # the run folder's lock, once the folder is ours
        return _fit(model, data, settings, out=out, locks=held, **kwargs)


def _fit(
    model: VAE,
    data,
    settings: TrainConfig | None = None,
    *,
    out: str | Path | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    config: dict | None = None,
    objective: objectives.Objective | None = None,
    callbacks=(),
    locks=None,
    **options,
) -> Run:
    """`fit` without its ExitStack (`locks`, where the run folder's lock is held)."""
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(options) - known)
    check(
        not unknown,
        f"fit() has no setting {unknown[0]!r}; TrainConfig's are {', '.join(sorted(known))}."
        if unknown
        else "",
    )
    s = replace(settings or TrainConfig(), **options)
    typed_table = getattr(data, "schema", None) is not None
    s = replace(s, lr_schedule=schedules.resolve_lr_schedule(s.lr_schedule, typed_table))
    check_settings(s)
    epochs, batch_size, lr, seed = s.epochs, s.batch_size, s.lr, s.seed
    clip_grad, skip_nonfinite, nll_samples = s.clip_grad, s.skip_nonfinite, s.nll_samples
    devices, num_nodes = s.devices, s.num_nodes
    fabric = _fabric(s.device, devices, s.strategy, s.precision, num_nodes)
    check(  # before launching: a wrong split should not cost starting the processes
        batch_size % (devices * num_nodes) == 0,
        f"batch_size {batch_size} must be a multiple of the {devices * num_nodes} processes.",
    )
    if devices * num_nodes > 1:
        fabric.launch()
    world, rank = fabric.world_size, fabric.global_rank
    if world > 1 and fabric.device.type == "cpu":
        # N processes on one machine's cores: oversubscribed OpenMP threads slow each step 10x+
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // devices))
    check(
        batch_size % world == 0,
        f"batch_size {batch_size} must be a multiple of the {world} processes.",
    )
    is_main = rank == 0
    out = Path(out) if out is not None else None
    if objective is None:
        objective = objectives.for_model(model, s.warmup_epochs) if s.objective == "auto" else None
        if objective is None:
            settings_ = {"warmup_epochs": s.warmup_epochs} if s.warmup_epochs else {}
            objective = objectives.make(s.objective, model, **settings_)
    # what the objective may need beyond a batch: the model (checked), the training set's size
    # (beta-TCVAE's N, never the batch's), the epochs (the cyclical schedule), the seed and each
    # process's batch (a minibatch estimate's test pass uses the same size)
    objective.bind(
        model=model, n_train=len(data.x_train), epochs=epochs, seed=seed, batch_size=batch_size // world
    )

    state, segments, start_at = _open_folder(
        out, resume, overwrite, locks, is_main, s, data, model, objective, fabric, config
    )
    for seg in segments:
        check(
            seg["batch_size"] % world == 0,
            f"batch_size {seg['batch_size']} must be a multiple of the {world} processes.",
        )

    direct = _direct(world, s.precision)
    if direct:
        model.to(fabric.device)  # before the optimizer state is loaded onto the parameters
    optimizer = _adam(model.parameters(), lr)
    objective.to(fabric.device)  # an objective's own parameters (FactorVAE's discriminator)
    if resume and is_main:
        runs.remove_temp_files(out)
    start_epoch, start_step, history, partial = _restore(state, model, optimizer, out, objective)
    module, optimizer = (model, optimizer) if direct else fabric.setup(model, optimizer)
    loop = _Loop(
        model=model,
        module=module,
        optimizer=optimizer,
        objective=objective,
        fabric=fabric,
        direct=direct,
        train_set=_batch(data, "train", model).to(fabric.device),
        batch_size=batch_size,
        clip_grad=clip_grad,
        skip_nonfinite=skip_nonfinite,
        learning_rate=None,  # set per epoch from its segment
        out=out if is_main else None,
        bar=_progress(progress and is_main, epochs, start_epoch),
        binarize=getattr(data, "extra", {}).get("binarize") == "dynamic",
    )
    test_set = _batch(data, "test", model).to(fabric.device)
    run = Run(model=model, history=history, path=out)

    if s.logger and is_main:  # after the report's callback: the figures exist when training ends
        # the run's settings as the tracker keeps them: the model's, then training's (objective named)
        settings = {**model.config, **asdict(s), "objective": getattr(objective, "name", s.objective)}
        settings["prior"] = getattr(model.prior, "name", None)
        settings["data"] = (
            (config or {}).get("name") or (config or {}).get("source") or getattr(data, "name", None)
        )
        callbacks = [*callbacks, trackers.Trackers(s.logger, out, settings=settings)]
    try:
        _epochs(loop, run, segments, s, start_epoch, start_step, partial, test_set, callbacks, is_main)
        model.eval()
        if is_main:
            run.summary = evaluate.summarize(
                model, data, nll_samples=nll_samples, seed=seed, objective=objective
            )
            run.summary["seconds"] = sum(r["seconds"] for r in history)
            if out is not None:
                io.write_json(out / "summary.json", run.summary)
            for callback in callbacks:
                if hasattr(callback, "on_fit_end"):
                    callback.on_fit_end(run)
    except BaseException:  # Ctrl-C, a non-finite loss, ...: each callback hears it, then it goes on
        for callback in callbacks:
            if hasattr(callback, "on_fit_failed"):
                try:
                    callback.on_fit_failed(run)
                except Exception as err:  # noqa: BLE001 - the training's own error is the one to raise
                    warnings.warn(f"{type(callback).__name__} could not end its run ({err}).", stacklevel=2)
        raise
    if world > 1:  # every process leaves together: one leaving while rank 0 still writes could abort
        fabric.barrier()
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
    return run


def _open_folder(out, resume, overwrite, locks, is_main, s, data, model, objective, fabric, config):
    """The run folder's step: a resumed run's checkpoint and config (its data unchanged, by
    content hash), or a new folder; the lock held in `locks`; the segments planned and
    config.yaml written. Returns (checkpoint state or None, segments, the epoch training starts
    at)."""
    previous = None
    state = None
    if resume:
        check(out is not None and out.is_dir(), f"--resume needs an existing run folder, not {out}.")
        if is_main and locks is not None:
            locks.enter_context(runs.lock(out))
        state = runs.load_checkpoint(out)
        previous = runs.read_config(out)
    elif out is not None and is_main:
        held = locks is not None and out.is_dir()
        if held:  # before prepare deletes anything a process training into it still writes
            locks.enter_context(runs.lock(out))
        runs.prepare(out, overwrite)
        if locks is not None and not held:
            locks.enter_context(runs.lock(out))
    segments, start_at, notes = _plan_segments(previous, state, s, out)
    if state is not None:  # a resumed run continues on the data it started with, or not at all
        then = ((previous or {}).get("data") or {}).get("content_sha256")
        record = (config or {}).get("data") or (
            datasets.record(data) if isinstance(data, datasets.Dataset) else None
        )
        now = (record or {}).get("content_sha256")
        if then and now and then != now:
            raise VaekitError(
                f"{out}'s data has changed since it was trained (content hash {then[:12]}... then, "
                f"{now[:12]}... now); resume it on the data it started with, or train a new run with --out."
            )
    if out is not None and is_main:
        if config is None:  # called from Python: the data's own record, when `datasets.load` made it
            record = datasets.record(data) if isinstance(data, datasets.Dataset) else None
            config = {"data": record} if record else None
            if previous is not None:
                config = {k: v for k, v in previous.items() if k not in ("model", "train", "environment")}
        sessions = list((previous or {}).get("environment") or []) if state is not None else []
        sessions.append({"from_epoch": start_at, **_environment(fabric, s)})
        runs.save_config(
            out,
            {
                **(config or {}),
                "model": model.config,
                "train": {**asdict(s), "objective": objective.settings(), "segments": segments},
                "environment": sessions,
            },
        )
    for note in notes if is_main else ():
        warnings.warn(note, stacklevel=2)
    return state, segments, start_at


def _epochs(loop, run, segments, s, start_epoch, start_step, partial, test_set, callbacks, is_main):
    """The training step: each epoch from `start_epoch` (a partial one resumed at `start_step`),
    its row in metrics.jsonl, the weights and checkpoint saved, the callbacks told; Ctrl-C stops
    at the next batch with the run saved."""
    model, objective, out, history = loop.model, loop.objective, run.path, run.history
    epochs, seed = s.epochs, s.seed

    def on_sigint(signum, frame):
        loop.stop = True

    previous_handler = signal.signal(signal.SIGINT, on_sigint) if is_main else None
    try:
        for epoch in range(start_epoch, epochs):
            resumed = partial if epoch == start_epoch and start_step > 0 else None
            index = loop.use_segment(segments, epoch, epochs)
            train, started = loop.epoch(epoch, seed, resumed, start_step)
            _check_finite(train, epoch, model, history, out)
            row = {
                "epoch": epoch + 1,
                "seconds": None,
                "beta": model.beta if not model.beta_conditioned else list(model.beta_range),
                "lr": loop.lr,
                "segment": index,
                **objective.schedule(epoch + 1),
                **{f"train_{k}": v for k, v in train.items()},
                **_test_metrics(model, test_set, objective, seed, epoch + 1),
            }
            row["seconds"] = round(time.perf_counter() - started, 4)  # the test pass included
            history.append(row)
            loop.bar.epoch_done(row)
            if is_main and out is not None:
                io.write_jsonl(out / "metrics.jsonl", history)
                runs.save_weights(out, model)
                runs.save_objective_weights(out, objective)
                _save_state(out, loop.module, loop.optimizer, epoch + 1, 0, None, None, 0.0, objective)
            for callback in callbacks:
                if hasattr(callback, "on_epoch_end"):
                    callback.on_epoch_end(run, row)
    finally:
        loop.bar.close()
        if previous_handler is not None:
            signal.signal(signal.SIGINT, previous_handler)


def _segment(settings) -> dict:
    """The loop's settings (`SEGMENT_KEYS`) of a TrainConfig or of a config.yaml train section
    (a run from before a setting existed had its default; before schedules, a constant rate)."""
    if not isinstance(settings, dict):
        return {k: getattr(settings, k) for k in SEGMENT_KEYS}
    defaults = {**asdict(TrainConfig()), "lr_schedule": "constant"}
    return {k: settings.get(k, defaults[k]) for k in SEGMENT_KEYS}


def _plan_segments(previous: dict | None, state: dict | None, s: TrainConfig, out):
    """The run's segments after this (re)start under the resume rules (see `SEGMENT_KEYS`):
    ([{"from_epoch", **loop settings}], the epoch training starts from, notes). Raises
    `Finished`, or `VaekitError` for a change that is refused."""
    fresh = [{"from_epoch": 0, "until_epoch": s.epochs, **_segment(s)}]
    if previous is None:
        return fresh, 0, []
    old = previous.get("train") or {}
    if state is None:  # nothing finished (e.g. the first epoch failed): start again as given
        done = len(io.read_jsonl(out / "metrics.jsonl")) if (out / "metrics.jsonl").exists() else 0
        if done or (out / "summary.json").exists():
            raise VaekitError(
                f"{out} has trained {done} epoch{'s' if done != 1 else ''} but has no checkpoint.pt to "
                "continue from; restore checkpoint.pt, or train a new run with --out (its weights stay as "
                "they are)."
            )
        return fresh, 0, [f"{out} has no finished epoch to continue from: training starts again at epoch 1."]
    fixed = [k for k in ("seed", "warmup_epochs") if k in old and old[k] != getattr(s, k)]
    if fixed:
        flags = " and ".join("--" + k.replace("_", "-") for k in fixed)
        raise VaekitError(
            f"{flags} cannot change on --resume (they define the run's noise or objective); train a new "
            "run with --out, or resume without them."
        )
    done, mid = int(state["epoch"]), int(state.get("step", 0)) > 0
    boundary = done + 1 if mid else done
    old_total = int(old.get("epochs", done))
    if s.epochs == done and not mid and (out / "summary.json").exists():
        raise Finished(
            f"{out} has finished: it trained all its {done} epochs. Give --epochs with more than {done} to "
            "train further (`vaekit evaluate` measures it again)."
        )
    if s.epochs < boundary:
        raise VaekitError(
            f"{out} has trained {done} epochs{' and part of the next' if mid else ''}; --epochs {s.epochs} "
            f"would undo them: give --epochs {max(boundary, done + 1)} or more to train further."
        )
    planned = [{"from_epoch": 0, "until_epoch": old_total, **_segment(old)}]
    segments = (
        [dict(seg) for seg in old.get("segments") or planned]
        if isinstance(old.get("segments") or [], list)
        else []
    )
    if not (
        segments
        and all(isinstance(seg, dict) and set(SEGMENT_KEYS) | {"from_epoch"} <= set(seg) for seg in segments)
        and segments[0]["from_epoch"] == 0
        and all(isinstance(seg["from_epoch"], int) for seg in segments)
        and [seg["from_epoch"] for seg in segments] == sorted(seg["from_epoch"] for seg in segments)
    ):
        raise VaekitError(
            f"{out}/config.yaml's train.segments is damaged (each needs from_epoch, counting up from 0, and "
            f"{', '.join(SEGMENT_KEYS)}); restore the file from the run."
        )
    last, new = segments[-1], _segment(s)
    changed = [k for k in SEGMENT_KEYS if new[k] != last.get(k)]
    if changed:
        check(
            boundary < s.epochs,
            (
                f"{out} stopped inside epoch {done + 1}, the last of its {s.epochs}; new settings start at "
                "an epoch boundary, so give --epochs with more epochs for them to apply."
            )
            if mid
            else f"{out} has trained all its {done} epochs; new settings need epochs to apply to: give "
            f"--epochs {done + 1} or more.",
        )
        segments = [seg for seg in segments if seg["from_epoch"] < boundary] + [
            {"from_epoch": boundary, "until_epoch": s.epochs, **new}
        ]
        said = ", ".join(f"{k} {last.get(k)} -> {new[k]}" for k in changed)
        where = f" (epoch {done + 1} finishes with the settings it started with)" if mid else ""
        return (
            segments,
            done,
            [f"from epoch {boundary + 1}: {said}{where}; recorded in config.yaml train.segments."],
        )
    if s.epochs > old_total and last["lr_schedule"] != "constant":
        # the added epochs: a segment like the last, its schedule over them alone (a warm restart)
        segments.append({**last, "from_epoch": old_total, "until_epoch": s.epochs})
        return (
            segments,
            done,
            [
                f"epochs {old_total + 1}-{s.epochs} run the {last['lr_schedule']} schedule again over the "
                f"added epochs, from lr {last['lr']:g} (a warm restart, Loshchilov & Hutter 2017); give --lr "
                "for another start, or --lr-schedule constant --lr X to hold a rate."
            ],
        )
    if last["lr_schedule"] == "constant":
        last["until_epoch"] = max(s.epochs, int(last.get("until_epoch", 0)))  # a constant rate goes on
    return segments, done, []


def _environment(fabric, s: TrainConfig) -> dict:
    """Where and how a (re)start ran: device, precision, processes, library versions."""
    device = fabric.device
    name = str(device)
    if device.type == "cuda":
        name += f" ({torch.cuda.get_device_name(device)})"
    return {
        "device": name,
        "precision": str(s.precision),
        "processes": int(fabric.world_size),
        "torch_threads": int(torch.get_num_threads()),
        "versions": evaluate.versions(),
    }


def _batch(data, split: str, model: VAE) -> Batch:
    """One split of the data as a Batch (labels included for a label-conditional model)."""
    x = data.x_train if split == "train" else data.x_test
    # data kept as stored (`vaekit.datasets.rows.Rows`) stay so: each batch is read and scaled as indexed
    return Batch(observations(x), model.data_classes(data, split))


def _restore(state, model: VAE, optimizer, out, objective=None):
    """Load a checkpoint's weights and optimizer state (and the objective's own, where it has
    one and the checkpoint holds it): (start epoch, start step within it, the history of the
    finished epochs, the partial epoch's state or None)."""
    if state is None:
        return 0, 0, [], None
    try:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if objective is not None and state.get("objective") is not None:
            objective.load_state(state["objective"])
        start_epoch, start_step = int(state["epoch"]), int(state.get("step", 0))
    except (RuntimeError, KeyError, ValueError, TypeError) as err:
        raise VaekitError(
            f"{out}/checkpoint.pt does not match the model this run describes "
            f"({type(err).__name__}); its config.yaml may have been edited: restore it, or train "
            "a new run."
        ) from None
    return start_epoch, start_step, io.read_jsonl(out / "metrics.jsonl")[:start_epoch], state.get("partial")


@dataclass
class _Loop:
    """One epoch of optimisation steps: the batch order and the noise come from a generator seeded
    by (seed, epoch), drawn for the global batch and sliced per process. Sums of the objective's
    terms stay on the device (no host sync per step) until the epoch ends."""

    model: VAE
    module: torch.nn.Module  # the model, or Fabric's wrapper of it (DDP, mixed precision)
    optimizer: torch.optim.Optimizer
    objective: objectives.Objective
    fabric: object
    direct: bool
    train_set: Batch
    batch_size: int
    clip_grad: float | None
    skip_nonfinite: bool
    learning_rate: object  # progress in epochs -> the learning rate of the step taken there
    out: Path | None  # the run folder, on the main process only
    bar: object
    stop: bool = False  # set by Ctrl-C: save the position at the end of the step and stop
    binarize: bool = False  # --binarize dynamic: draw each training pixel afresh per batch
    names: list[str] | None = None  # the objective's term names, from its first output
    lr: float | None = None  # the learning rate of the last step taken

    def use_segment(self, segments: list[dict], epoch: int, epochs: int) -> int:
        """Take the loop settings of the segment that holds `epoch` (its learning-rate schedule
        from the segment's first epoch to its planned `until_epoch`); returns the segment's index."""
        index = max(i for i, seg in enumerate(segments) if seg["from_epoch"] <= epoch)
        seg = segments[index]
        start, end = seg["from_epoch"], seg.get("until_epoch") or epochs
        self.batch_size, self.clip_grad = int(seg["batch_size"]), seg["clip_grad"]
        self.skip_nonfinite = bool(seg["skip_nonfinite"])
        self.learning_rate = lambda t: schedules.learning_rate(
            seg["lr_schedule"], t - start, end - start, seg["lr"], seg["lr_min"]
        )
        return index

    def epoch(self, epoch: int, seed: int, partial: dict | None, start_step: int):
        """Train one epoch (from `start_step` of a partial one); returns (mean of each named term
        over the epoch's examples, on every process; the epoch's start time)."""
        fabric, world, rank = self.fabric, self.fabric.world_size, self.fabric.global_rank
        dev = fabric.device
        self.module.train()
        gen = _generator(seed, epoch)
        n = len(self.train_set)
        steps = math.ceil(n / self.batch_size)
        order = torch.randperm(n, generator=gen)
        sums, count, first, skipped = None, 0, 0, 0  # sums: float64 per name, on the device
        if partial is not None:
            gen.set_state(partial["generator"])
            # checkpoints from before named terms hold (loss, distortion, rate) without names
            legacy = ["loss", "distortion", "rate"][: 3 if self.model.kind == "vae" else 2]
            self.names = list(partial.get("names") or legacy)
            sums = partial["sums"][: len(self.names)].to(dev)
            count, first = int(partial["count"]), start_step
        started = time.perf_counter() - (partial or {}).get("seconds", 0.0)
        for step in range(first, steps):
            idx = order[step * self.batch_size : (step + 1) * self.batch_size]
            b = len(idx)
            noise = torch.randn(b, self.model.latent_dim, generator=gen)
            beta = _draw_beta(self.model, b, gen)
            lo, hi = (b * rank) // world, (b * (rank + 1)) // world
            local = self.train_set[idx[lo:hi].to(dev)]
            if self.binarize:  # dynamic binarisation: a fresh Bernoulli draw of each grey pixel
                u = torch.rand((b, *local.x.shape[1:]), generator=gen)[lo:hi].to(dev)
                local.x = (u < local.x).to(local.x.dtype)
            if torch.is_tensor(beta):
                local.beta = beta[lo:hi].to(dev)
            values = self.step(local, noise[lo:hi].to(dev), epoch + step / steps, b)
            if values is None:
                skipped += 1
                continue
            sums = values if sums is None else sums + values
            count += hi - lo
            self.bar.step(self.names, sums, count)
            if self.stop:
                if self.out is not None:
                    state = (self.names, sums, count)
                    _save_state(
                        self.out,
                        self.module,
                        self.optimizer,
                        epoch,
                        step + 1,
                        gen,
                        state,
                        started,
                        self.objective,
                    )
                raise Interrupted(self.out)
        if skipped and rank == 0:
            warnings.warn(
                f"epoch {epoch + 1}: skipped {skipped} batch(es) whose loss or gradient was NaN or Inf",
                stacklevel=1,
            )
        if sums is None:  # every batch skipped
            self.names = self.names or ["loss"]
            sums = torch.full((len(self.names),), math.nan, dtype=torch.float64, device=dev)
        totals = torch.cat([sums, sums.new_tensor([count])])
        totals = fabric.all_reduce(totals, reduce_op="sum") if world > 1 else totals
        return dict(zip(self.names, (totals[:-1] / totals[-1]).tolist(), strict=True)), started

    def step(self, batch: Batch, noise: torch.Tensor, progress: float, global_batch: int):
        """One optimisation step on this process's share of a batch of `global_batch` examples:
        the summed terms (float64, on the device) for the epoch's sums, or None if skipped."""
        model, world = self.model, self.fabric.world_size
        out = self.objective(self.module, batch, noise, progress)
        loss_sum = out.loss.sum()
        # the sum over the global batch / its size, whatever the split: DDP averages over ranks
        scaled = loss_sum * (world / global_batch)
        if self.direct:
            scaled.backward()
        else:
            self.fabric.backward(scaled)
        if self.skip_nonfinite and not _all_finite(loss_sum, model, self.fabric, world):
            self.optimizer.zero_grad(set_to_none=True)  # this batch never touches the weights
            return None
        if self.clip_grad and self.direct:
            torch.nn.utils.clip_grad_norm_(model.parameters(), self.clip_grad)
        elif self.clip_grad:
            self.fabric.clip_gradients(self.module, self.optimizer, max_norm=self.clip_grad)
        self.lr = self.learning_rate(progress)
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        # an objective with its own parameters takes its step after the model's (FactorVAE's D)
        self.objective.after_step(self._reduce if world > 1 else None)
        with torch.no_grad():
            if self.names is None:
                self.names = ["loss", *out.terms]
            return torch.stack(
                [loss_sum.detach(), *(out.terms[k].detach().sum() for k in self.names[1:])]
            ).double()

    def _reduce(self, tensor: torch.Tensor) -> torch.Tensor:
        """The mean of `tensor` over the processes (for an objective's own gradients)."""
        return self.fabric.all_reduce(tensor, reduce_op="mean")


def _direct(world: int, precision) -> bool:
    """Train without Fabric's module and optimizer wrappers? On one process at full precision
    they only add per-step work (about 7% of a small MLP's step on a CPU, in an A/B profile);
    DDP and mixed precision go through Fabric."""
    return world == 1 and str(precision) in ("32-true", "32")


def _all_finite(loss_sum, model, fabric, world: int) -> bool:
    """Are the loss and every gradient finite on every process? (One host sync: only with
    --skip-nonfinite.)"""
    grads = [p.grad.detach().isfinite().all() for p in model.parameters() if p.grad is not None]
    ok = torch.stack([loss_sum.detach().isfinite(), *grads]).all().float()
    if world > 1:
        ok = fabric.all_reduce(ok, reduce_op="mean")
    return bool(ok.item() == 1.0)


def _adam(params, lr: float) -> torch.optim.Optimizer:
    """Adam with the fused kernel where this torch has it (CPU since torch 2.4): one pass over
    the parameters per step instead of several, the same maths."""
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(params, lr=lr)


def _draw_beta(model: VAE, b: int, gen: torch.Generator):
    if not model.beta_conditioned:
        return model.beta
    lo, hi = (math.log(v) for v in model.beta_range)
    return torch.exp(lo + (hi - lo) * torch.rand(b, generator=gen))


def _test_metrics(model: VAE, test_set: Batch, objective, seed: int, progress: float = math.inf) -> dict:
    """The epoch's test pass: the objective's mean terms on the test split through the same
    loss path as training (noise from a fixed generator, so epochs compare like with like)."""
    terms = evaluate.loss_terms(
        model, test_set, objective, generator=_generator(seed, 10**6), progress=progress
    )
    return {f"test_{k}": float(v.mean()) for k, v in terms.items()}


# nats per data dimension beyond which a finite training loss means the run diverged: a Gaussian
# with sigma = 1 reaches it only for values about 45,000 from its mean (unscaled data of a few
# thousand, --scaling none, starts near 1e7 and may still train); later epochs also stop when the
# loss jumps far above the best epoch so far
EXPLODED_NATS_PER_DIM = 1e9
EXPLODED_RISE = 1e3


def _check_finite(
    train: dict[str, float], epoch: int, model: VAE, history: list[dict] | None = None, out=None
) -> None:
    again = f"vaekit train --resume {out}" if out is not None else "vaekit train --resume RUN"
    kept = (
        f"the last good checkpoint is kept ({again} continues from it, with a new --lr or --clip-grad "
        "from the next epoch)"
        if epoch > 0
        else f"no epoch had finished, so there is no checkpoint: {again} --lr X (or --clip-grad) starts it "
        "again with that change (a change of the data or model is a new run: --out with --overwrite, without "
        "--resume)"
    )
    for name, value in train.items():
        if not math.isfinite(value):
            raise NumericalError(
                f"The training {name} became {value} in epoch {epoch + 1}; {kept}. Try a lower --lr, "
                "--clip-grad 10, or another likelihood (a larger --sigma, or gaussian-learned)."
            )
    bad = [n for n, p in model.named_parameters() if not torch.isfinite(p).all()]
    if bad:
        raise NumericalError(
            f"The weights {bad[0]} became non-finite in epoch {epoch + 1} (a NaN or Inf gradient); "
            f"{kept}. Try a lower --lr or --clip-grad 10."
        )
    # the training loss only: a test loss can be huge because of one outlier (what anomaly
    # scores look for), which is no sign that the optimisation diverged
    data_dim = math.prod(model.data_shape)
    loss = train["loss"]
    per_dim = abs(loss) / data_dim
    best = min((r["train_loss"] for r in history or [] if r.get("train_loss") is not None), default=None)
    jumped = best is not None and loss - best > EXPLODED_RISE * max(abs(best), data_dim)
    if per_dim > EXPLODED_NATS_PER_DIM or jumped:
        raise NumericalError(
            f"The training loss reached {loss:.3g} nats in epoch {epoch + 1} ({per_dim:.3g} per "
            f"dimension): the run diverged; {kept}. Check the data's scaling (--scaling standard "
            "for tables), or try a lower --lr or --clip-grad 10."
        )


def _save_state(out, module, optimizer, epoch, step, gen, sums, started, objective=None) -> None:
    state = {
        "model": {k: v.detach().cpu() for k, v in module.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "epoch": epoch,
        "step": step,
    }
    extra = objective.state() if objective is not None else None
    if extra is not None:
        state["objective"] = extra
    if step > 0:
        names, totals, count = sums
        state["partial"] = {
            "generator": gen.get_state(),
            "names": list(names or []),
            "sums": totals.cpu() if totals is not None else torch.zeros(0, dtype=torch.float64),
            "count": count,
            "seconds": time.perf_counter() - started,
        }
    runs.save_checkpoint(out, state)


class _progress:
    """A tqdm bar over epochs showing the running loss, rate and distortion (read at most
    twice a second, so the hot loop has no per-step host sync)."""

    def __init__(self, enabled: bool, epochs: int, start: int):
        self.bar = None
        self.last = 0.0
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=epochs, initial=start, unit="epoch", dynamic_ncols=True)

    def step(self, names, sums, count):
        if self.bar is None or sums is None or time.perf_counter() - self.last < 0.5:
            return
        self.last = time.perf_counter()
        count = max(count, 1)
        self.bar.set_postfix_str(
            " ".join(f"{k} {v / count:.2f}" for k, v in zip(names, sums.tolist(), strict=True))
        )

    def epoch_done(self, row):
        if self.bar is None:
            return
        shown = [(k[5:], v) for k, v in row.items() if k.startswith("test_") and isinstance(v, float)]
        self.bar.set_postfix_str("test " + " ".join(f"{k} {v:.2f}" for k, v in shown))
        self.bar.update(1)

    def close(self):
        if self.bar is not None:
            self.bar.close()
