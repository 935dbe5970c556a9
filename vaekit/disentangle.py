"""`vaekit demo disentanglement`: several objectives trained side by side on sprites32 (a
procedural dSprites), each scored with the disentanglement metrics of `vaekit.metrics`
(disentanglement_lib's definitions), in one report: a table of metrics per model, each model's
traversals labelled by the factor each latent captures, and MIG against the weight on the
KL or total-correlation term.

The models and their weights follow the papers' dSprites settings where they give them
(beta-VAE: Higgins et al., 2017, beta = 4; beta-TCVAE: Chen et al., 2018, beta = 6 on the TC;
FactorVAE: Kim & Mnih, 2018, gamma = 40; DIP-VAE-I: Kumar et al., 2018, lambda_od = 10,
lambda_d = 100), on a net and a number of epochs that fit a 2-core CPU (`BUDGETS`).
"""

from __future__ import annotations

import html
import json
import time
from pathlib import Path

import numpy as np

from vaekit import datasets, evaluate, io, launch, report, summary_keys
from vaekit.errors import check

# name -> (objective settings, the weight the MIG figure puts on its x axis, its name)
MODELS = {
    "beta-VAE (beta=1)": ({"objective": "beta-elbo", "beta": 1.0}, 1.0, "beta"),
    "beta-VAE (beta=4)": ({"objective": "beta-elbo", "beta": 4.0}, 4.0, "beta"),
    "beta-VAE (beta=16)": ({"objective": "beta-elbo", "beta": 16.0}, 16.0, "beta"),
    "beta-TCVAE (TC weight 6)": ({"objective": "beta-tcvae", "tc_weight": 6.0}, 6.0, "TC weight"),
    "FactorVAE (gamma=40)": ({"objective": "factorvae", "gamma": 40.0}, 40.0, "gamma"),
    # the paper's discriminator (6 x 1000); the demo's settings use 3 x 256 (see BUDGETS)
    "FactorVAE (gamma=40, D 3x256)": (
        {"objective": "factorvae", "gamma": 40.0, "disc_units": 256, "disc_layers": 3},
        40.0,
        "gamma",
    ),
    "DIP-VAE-I (lambda_od=10)": (
        {"objective": "dip-vae", "dip_type": "i", "lambda_od": 10.0},
        10.0,
        "lambda_od",
    ),
}

# setting -> training and metric settings, and the models trained. The paper's discriminator
# (6 x 1000 units) has about 4x the VAE's weights and runs twice a step: a FactorVAE step with it
# took 6.4x a beta-VAE step on 2 CPU cores (53.6 against 8.3 ms, batch 64); both settings use
# 3 x 256 (1.4x a beta-VAE step; `vaekit train --objective factorvae` keeps the paper's).
# Five latents, not the papers' ten: at beta = 16 after 10 epochs, initial weights 0, 1, 2 gave
# MIG 0.144, 0.033, 0.046 with ten (in two of three a third, weakly active unit mixed pos_x with
# pos_y) and 0.162, 0.156, 0.157 with five. A cosine learning rate (1e-3 to 0 over training)
# sharpens the position units: beta = 16, 5 latents, initial weights 0, 1, 2 reached MIG 0.184,
# 0.197, 0.178 after 10 epochs against 0.162, 0.156, 0.157 at a constant 1e-3, and 0.206 after
# 14 epochs (weights 0; 0.209 after 20). Batch 128 at lr 2e-3 was as fast per MIG but left
# initial weights 1 unaligned (0.058). The long setting's 14 epochs for five models fit its 20
# minutes; beta = 4 is left to the quick setting (with it, six models took 19 minutes' estimate,
# too close: DCI's gradient-boosted trees alone take 36 s per model).
BUDGETS = {
    "quick": {
        "train": {
            "epochs": 3,
            "latent_dim": 5,
            "arch": "mlp",
            "hidden": "512,256",
            "batch_size": 64,
            "lr_schedule": "cosine",
        },
        "metrics": "quick",
        "models": [
            "beta-VAE (beta=1)",
            "beta-VAE (beta=4)",
            "beta-VAE (beta=16)",
            "beta-TCVAE (TC weight 6)",
            "FactorVAE (gamma=40, D 3x256)",
        ],
    },
    "long": {
        "train": {
            "epochs": 14,
            "latent_dim": 5,
            "arch": "mlp",
            "hidden": "512,256",
            "batch_size": 64,
            "lr_schedule": "cosine",
        },
        "metrics": "fast",
        "models": [m for m in MODELS if m not in ("FactorVAE (gamma=40)", "beta-VAE (beta=4)")],
    },
}
METRIC_KEYS = tuple(summary_keys.headline(m) for m in summary_keys.METRICS)  # one score per metric
# MIG at disentanglement_lib's own sample count (10,000 points) whatever the preset: it is the
# demo's target, it is cheap, and with fewer points the histogram's MI estimates are biased upward
MIG_AT_REFERENCE = {"mig": {"num_train": 10_000}}


class MigCurve:
    """A `train.fit` callback: the model's MIG (`MIG_AT_REFERENCE`) after every epoch, with the
    training seconds so far (each epoch's own `seconds`, its test pass included; the MIG's own
    time is not counted), kept in `points` and written to `path` (JSON) as training goes."""

    def __init__(self, data, path: Path):
        self.data, self.path = data, Path(path)
        self.points: list[dict] = []
        self.seconds = 0.0

    def on_epoch_end(self, run, row):
        self.seconds += row["seconds"]
        model = run.model
        was_training = model.training
        model.eval()
        mig = evaluate.disentanglement(model, self.data, ["mig"], "reference")["mig"]
        model.train(was_training)
        self.points.append({"epoch": row["epoch"], "seconds": round(self.seconds, 2), "mig": mig})
        io.write_json(self.path, self.points)


def run(
    out,
    settings_for,
    setting: str = "quick",
    seeds: int = 1,
    echo=print,
    launcher: str | None = None,
    resources: dict | None = None,
    jobs: int = 1,
) -> list[dict]:
    """Train each model of `BUDGETS[setting]` with each seed 0..seeds-1 into OUT/<name>/ (seed
    0) or OUT/<name>-seed-<k>/, score it, and write OUT/disentanglement.json, OUT/report.html and
    OUT/figures/mig_vs_weight.png. A finished model trained with the same demo settings is reused,
    so an interrupted demo resumes and more seeds add to the ones trained. `settings_for(options)`
    completes a dict of training options with the defaults (the command line's `merge_options`).
    `launcher` "local" or "slurm": each model and seed still to train is one job of submitit's
    executor of that kind (`vaekit.launch.run_jobs`; `jobs` local processes at a time;
    `resources`: partition, time_min, gpus, mem_gb, cpus), its log under OUT/jobs. Returns one
    row per model and seed: the metrics, elbo, rate and seconds; `over_seeds(rows)` gives each
    model's mean and standard deviation over its seeds. Raises `VaekitError` for an unknown
    setting, fewer than one seed, or a model folder that holds a model trained with other settings
    (a quick demo's folder given to --long, say), which is left as it is."""
    check(setting in BUDGETS, f"The demo setting must be one of {', '.join(BUDGETS)}, not {setting!r}.")
    check(
        isinstance(seeds, int) and not isinstance(seeds, bool) and seeds >= 1,
        f"--seeds must be a whole number of at least 1, not {seeds!r}.",
    )
    check(isinstance(jobs, int) and jobs >= 1, f"--jobs must be at least 1, not {jobs!r}.")
    if launcher is not None:
        launch.check_launcher(launcher)
    budget = BUDGETS[setting]
    out = Path(out)
    check(not out.exists() or out.is_dir(), f"{out} is a file; give the demo another --out.")
    plan = []
    for name in budget["models"]:
        spec = MODELS[name][0]
        for seed in range(seeds):
            demo = {"data": "sprites32", **budget["train"], **spec, "nll_samples": 0, "seed": seed}
            folder = out / folder_name(name, seed)
            check(
                not (folder.is_dir() and any(folder.iterdir())) or _marker(folder) == demo,
                f"{folder} holds something other than this model of the {setting} demo (a model "
                "trained with other settings, by the other demo setting or an earlier vaekit, or a "
                "run of your own); give the demo another --out, or delete that folder.",
            )
            check(not folder.exists() or folder.is_dir(), f"{folder} is a file; give the demo another --out.")
            plan.append((name, seed, demo, folder))
    out.mkdir(parents=True, exist_ok=True)
    # each model still to train: folder -> its job's arguments (settings, demo marker, folder, budget)
    todo = {
        str(folder): (settings_for(dict(demo)), demo, str(folder), budget)
        for _, _, demo, folder in plan
        if "mig" not in _summary(folder)
    }
    if launcher is not None and todo:
        todo_jobs = [(args, folder) for folder, args in todo.items()]
        launch.run_jobs(train_model, todo_jobs, out / "jobs", launcher, resources, True, "vaekit-demo", jobs)
        todo = {}
    sprites = None  # for the MIG curves (the factors are the data set's), read if a model trains here
    rows = []
    for name, seed, _, folder in plan:
        if str(folder) in todo:  # trained in this process, each row shown as its model finishes
            sprites = sprites if sprites is not None else datasets.load("sprites32")
            train_model(*todo[str(folder)], data=sprites)
        summary = _summary(folder)
        spec, weight, weight_name = MODELS[name]
        row = {"model": name, "seed": seed, "folder": folder.name, "objective": spec["objective"]}
        row.update({"weight": weight, "weight_name": weight_name})
        row.update({k: summary.get(k) for k in (*METRIC_KEYS, "elbo", "rate", "active_units")})
        row["seconds"] = summary.get("demo_seconds")
        row["train_seconds"] = summary.get("seconds")
        curve_path = folder / "mig_curve.json"
        row["mig_curve"] = json.loads(curve_path.read_text()) if curve_path.exists() else []
        rows.append(row)
        echo(_line(row))
    models = over_seeds(rows)
    io.write_json(
        out / "disentanglement.json",
        {"setting": setting, "seeds": seeds, "budget": budget, "models": models, "rows": rows},
    )
    _write_report(out, rows, models, setting, budget)
    return rows


def train_model(settings: dict, demo: dict, folder, budget: dict, threads: int = 0, data=None) -> dict:
    """Train one model of the demo into `folder` (its marker `demo` first, then training with
    `settings`, the MIG after every epoch), score it with `budget`'s metrics and write its
    summary.json (the scores added) and report. `data`: sprites32 when already read (it is read
    otherwise); `threads`: torch's threads (a launcher's job), 0 to leave them. Returns the
    summary. The one step a launcher's job runs."""
    import torch

    from vaekit.workflow import build_and_fit

    if threads:
        torch.set_num_threads(threads)
    started = time.perf_counter()
    folder = Path(folder)
    data = data if data is not None else datasets.load("sprites32")
    curve = MigCurve(data, folder / "mig_curve.json")
    folder.mkdir(parents=True, exist_ok=True)
    io.write_json(folder / DEMO_MARKER, demo)  # what this folder is for, before training
    # the report is drawn once, below, with the traversals labelled by the metrics
    trained = build_and_fit(
        settings, folder, overwrite=True, progress=False, figures=False, callbacks=[curve]
    )
    model = trained.model  # the trained model as it is in memory
    summary = _summary(folder)
    names = budget.get("metric_names", evaluate.METRIC_NAMES)
    scores = evaluate.disentanglement(model, data, names, budget["metrics"], overrides=MIG_AT_REFERENCE)
    summary.update({k: v for k, v in scores.items() if isinstance(v, float)})
    summary["disentanglement"] = {k: v for k, v in scores.items() if not isinstance(v, float)}
    summary["demo_seconds"] = time.perf_counter() - started
    io.write_json(folder / "summary.json", summary)
    report.write_run(folder, model, data, io.read_jsonl(folder / "metrics.jsonl"), summary)
    return summary


def folder_name(model: str, seed: int) -> str:
    """The run folder of `model` (a `MODELS` name) trained with `seed`: its slug, with
    `-seed-<k>` after it for seeds other than 0."""
    return _slug(model) + (f"-seed-{seed}" if seed else "")


DEMO_MARKER = "demo.json"  # a demo model folder's settings, written before it is trained


def _marker(folder: Path) -> dict | None:
    """The demo settings a model folder was made for, or None (no marker, or one that does not read)."""
    try:
        return json.loads((folder / DEMO_MARKER).read_text())
    except (OSError, ValueError):
        return None


def _summary(folder: Path) -> dict:
    path = folder / "summary.json"
    return json.loads(path.read_text()) if path.exists() else {}


SEED_KEYS = (*METRIC_KEYS, "elbo", "rate", "seconds")


def over_seeds(rows: list[dict]) -> list[dict]:
    """One entry per model, in the order of `rows`: its objective and weight, the seeds, and for
    each of `SEED_KEYS` the mean and the sample standard deviation over its seeds (`<key>_sd`,
    None with one seed) and the per-seed values (`<key>_seeds`); None where a run has no value
    (a metric the budget skips)."""
    models: dict[str, dict] = {}
    for r in rows:
        entry = models.setdefault(
            r["model"], {k: r[k] for k in ("model", "objective", "weight", "weight_name")}
        )
        entry.setdefault("seeds", []).append(r["seed"])
        for key in SEED_KEYS:
            entry.setdefault(f"{key}_seeds", []).append(r.get(key))
    for entry in models.values():
        for key in SEED_KEYS:
            values = entry[f"{key}_seeds"]
            known = all(isinstance(v, float) for v in values)
            entry[key] = float(np.mean(values)) if known else None
            entry[f"{key}_sd"] = float(np.std(values, ddof=1)) if known and len(values) > 1 else None
    return list(models.values())


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-").replace("--", "-")


def _line(row: dict) -> str:
    """One printed line per trained model: its name, seed and each metric's headline score (named,
    those the budget computed), and the seconds it took."""
    cells = " ".join(f"{k} {row[k]:.3f}" for k in METRIC_KEYS if isinstance(row.get(k), float))
    return f"{row['model']:<30} {row['seed']:>4} {cells}  ({row['seconds'] or 0:.0f} s)"


def _write_report(out: Path, rows: list[dict], models: list[dict], setting: str, budget: dict) -> None:
    from vaekit import plots

    several = any(len(m["seeds"]) > 1 for m in models)
    report.save_figure(plots.mig_by_weight(models, setting), out / "figures" / "mig_vs_weight.png")
    report.save_figure(plots.mig_over_time(rows, setting), out / "figures" / "mig_vs_time.png")
    columns = (*METRIC_KEYS, "elbo", "rate", "seconds")
    head = "".join(f"<th>{html.escape(k)}</th>" for k in ("model", "seeds", *columns))
    body_rows = [
        f"<tr><td>{html.escape(m['model'])}</td><td>{len(m['seeds'])}</td>"
        + "".join(f"<td>{_cell(m, k)}</td>" for k in columns)
        + "</tr>"
        for m in models
    ]
    traversals = ""
    for m in models:
        png = out / folder_name(m["model"], m["seeds"][0]) / "figures" / "traversals.png"
        if png.exists():
            traversals += f"<h3>{html.escape(m['model'])}</h3><img src='data:image/png;base64,{_b64(png)}'>"
    train = ", ".join(f"{k} {v}" for k, v in budget["train"].items())
    spread = (
        " Each cell is the mean over the seeds, +- the sample standard deviation, with each seed's "
        "value below it: a difference smaller than the spread is not a ranking."
        if several
        else " One seed per model: the scores of one objective can differ several-fold between seeds "
        "(Locatello et al., 2019, sec. 5.2), so rank models with --seeds 3 or more."
    )
    body = (
        f"<p>sprites32, {html.escape(train)}; metrics preset {budget['metrics']}, MIG at 10,000 points "
        "(disentanglement_lib's count) in the table and in the curve over training. Higher is more "
        f"disentangled for every metric.{spread} Each model's folder holds its own report.</p>"
        f"<table><tr>{head}</tr>{''.join(body_rows)}</table>"
        "<h2>Traversals, each row labelled by the factor that latent captures best (MIG's matrix)</h2>"
        + traversals
    )
    figures = [out / "figures" / "mig_vs_weight.png", out / "figures" / "mig_vs_time.png"]
    report.write_html(out, "vaekit demo: disentanglement", body, figures)


def _cell(model: dict, key: str) -> str:
    value, sd = model.get(key), model.get(f"{key}_sd")
    if not isinstance(value, float):
        return "-"
    if sd is None:
        return f"{value:.3f}"
    seeds = " ".join(f"{v:.3f}" for v in model[f"{key}_seeds"])
    return f"{value:.3f} &plusmn; {sd:.3f}<br><small>{seeds}</small>"


def _b64(path: Path) -> str:
    import base64

    return base64.b64encode(path.read_bytes()).decode("ascii")


def best(rows: list[dict], key: str = "mig") -> dict:
    """The row (a run, or a model of `over_seeds`) with the highest `key`."""
    scored = [r for r in rows if isinstance(r.get(key), float) and np.isfinite(r[key])]
    return max(scored, key=lambda r: r[key]) if scored else {}
