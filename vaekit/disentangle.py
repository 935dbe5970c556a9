"""`vaekit demo disentanglement`: several objectives trained side by side on sprites32 (a
procedural dSprites), each scored with the disentanglement metrics of `vaekit.metrics`
(disentanglement_lib's definitions), in one report: a table of metrics per model, each model's
traversals labelled by the factor each latent captures, and MIG against the weight on the
KL or total-correlation term.

The models and their weights follow the papers' dSprites settings where they give them
(beta-VAE: Higgins et al., 2017, beta = 4; beta-TCVAE: Chen et al., 2018, beta = 6 on the TC;
FactorVAE: Kim & Mnih, 2018, gamma = 40; DIP-VAE-I: Kumar et al., 2018, lambda_od = 10,
lambda_d = 100), on a net and a number of epochs that fit a 2-core CPU (`PRESETS`).
"""

from __future__ import annotations

import html
import json
import time
from pathlib import Path

import numpy as np

from vaekit import evaluate, io, report, runs
from vaekit.errors import check

# name -> (objective settings, the weight the MIG figure puts on its x axis, its name)
MODELS = {
    "beta-VAE (beta=1)": ({"objective": "beta-elbo", "beta": 1.0}, 1.0, "beta"),
    "beta-VAE (beta=4)": ({"objective": "beta-elbo", "beta": 4.0}, 4.0, "beta"),
    "beta-VAE (beta=16)": ({"objective": "beta-elbo", "beta": 16.0}, 16.0, "beta"),
    "beta-TCVAE (TC weight 6)": ({"objective": "beta-tcvae", "tc_weight": 6.0}, 6.0, "TC weight"),
    "FactorVAE (gamma=40)": ({"objective": "factorvae", "gamma": 40.0}, 40.0, "gamma"),
    # the paper's discriminator (6 x 1000); the demo's settings use 3 x 256 (see PRESETS)
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
# took 6.4x a beta-VAE step on 2 CPU cores (53.6 against 8.3 ms, batch 64), which would put the
# long setting over its 20 minutes (15.6 minutes with the 3 x 256 one, 1.4x a beta-VAE step);
# both settings use 3 x 256 (`vaekit train --objective factorvae` keeps the paper's). Ten epochs:
# on this net the best model's MIG is flat after epoch 10 (0.151 at 10, 0.157 at 20, beta = 16).
PRESETS = {
    "quick": {
        "train": {"epochs": 3, "latent_dim": 10, "arch": "mlp", "hidden": "512,256", "batch_size": 64},
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
        "train": {"epochs": 10, "latent_dim": 10, "arch": "mlp", "hidden": "512,256", "batch_size": 64},
        "metrics": "fast",
        "models": [m for m in MODELS if m != "FactorVAE (gamma=40)"],
    },
}
METRIC_KEYS = ("mig", "dci_disentanglement", "sap", "factorvae_score", "betavae_score", "modularity")
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


def run(out, settings_for, setting: str = "quick", echo=print) -> list[dict]:
    """Train each model of `PRESETS[setting]` into OUT/<name>/ (a finished one is reused, so an
    interrupted demo resumes), score it, and write OUT/disentanglement.json, OUT/report.html and
    OUT/figures/mig_vs_weight.png. `settings_for(options)` completes a dict of training options
    with the defaults (the command line's `merge_options`). Returns one row per model: the
    metrics, elbo, rate and seconds. Raises `VaekitError` for an unknown setting."""
    from vaekit import datasets
    from vaekit.workflow import build_and_fit

    check(setting in PRESETS, f"The demo setting must be one of {', '.join(PRESETS)}, not {setting!r}.")
    preset = PRESETS[setting]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sprites = datasets.load("sprites32")  # for the MIG curves (the factors are the data set's)
    rows = []
    for name in preset["models"]:
        spec, weight, weight_name = MODELS[name]
        folder = out / _slug(name)
        summary_path = folder / "summary.json"
        started = time.perf_counter()
        summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
        if "mig" not in summary:
            settings = settings_for({"data": "sprites32", **preset["train"], **spec, "nll_samples": 0})
            # the report is drawn once, below, with the traversals labelled by the metrics
            curve = MigCurve(sprites, folder / "mig_curve.json")
            build_and_fit(settings, folder, overwrite=True, progress=False, figures=False, callbacks=[curve])
            model, data = runs.load(folder), runs.load_data(folder)
            summary = json.loads(summary_path.read_text())
            names = preset.get("metric_names", evaluate.METRIC_NAMES)
            scores = evaluate.disentanglement(
                model, data, names, preset["metrics"], overrides=MIG_AT_REFERENCE
            )
            summary.update({k: v for k, v in scores.items() if isinstance(v, float)})
            summary["disentanglement"] = {k: v for k, v in scores.items() if not isinstance(v, float)}
            summary["demo_seconds"] = time.perf_counter() - started
            io.write_json(summary_path, summary)
            report.write_run(folder, model, data, io.read_jsonl(folder / "metrics.jsonl"), summary)
        row = {"model": name, "objective": spec["objective"], "weight": weight, "weight_name": weight_name}
        row.update({k: summary.get(k) for k in (*METRIC_KEYS, "elbo", "rate", "active_units")})
        row["seconds"] = summary.get("demo_seconds")
        row["train_seconds"] = summary.get("seconds")
        curve_path = folder / "mig_curve.json"
        row["mig_curve"] = json.loads(curve_path.read_text()) if curve_path.exists() else []
        rows.append(row)
        echo(_line(row))
    io.write_json(out / "disentanglement.json", {"setting": setting, "preset": preset, "rows": rows})
    _write_report(out, rows, setting, preset)
    return rows


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-").replace("--", "-")


def _line(row: dict) -> str:
    cells = " ".join(
        f"{row[k]:.3f}" if isinstance(row.get(k), float) else "  -  "
        for k in ("mig", "dci_disentanglement", "sap", "factorvae_score")
    )
    return f"{row['model']:<28} {cells}  ({row['seconds'] or 0:.0f} s)"


def _write_report(out: Path, rows: list[dict], setting: str, preset: dict) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for i, objective in enumerate(dict.fromkeys(r["objective"] for r in rows)):
        group = [r for r in rows if r["objective"] == objective and r.get("mig") is not None]
        ax.plot([r["weight"] for r in group], [r["mig"] for r in group], "o-", color=f"C{i}",
                label=f"{objective} ({group[0]['weight_name']})" if group else objective)  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlabel("weight on the KL / TC term")
    ax.set_ylabel("MIG")
    ax.set_title(f"MIG against the weight (sprites32, {setting})", fontsize=9)
    ax.legend(fontsize=7)
    report.save_figure(fig, out / "figures" / "mig_vs_weight.png")
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for i, r in enumerate(rows):
        if r.get("mig_curve"):
            pts = r["mig_curve"]
            ax.plot(
                [p["seconds"] for p in pts],
                [p["mig"] for p in pts],
                "o-",
                ms=3,
                color=f"C{i}",
                label=r["model"],
            )
    ax.set_xlabel("training seconds (this machine)")
    ax.set_ylabel("MIG (10,000 points)")
    ax.set_title(f"MIG against training time, after each epoch (sprites32, {setting})", fontsize=9)
    ax.legend(fontsize=6)
    report.save_figure(fig, out / "figures" / "mig_vs_time.png")
    head = "".join(f"<th>{html.escape(k)}</th>" for k in ("model", *METRIC_KEYS, "elbo", "rate", "seconds"))
    body_rows = []
    for r in rows:
        cells = "".join(
            f"<td>{r[k]:.3f}</td>" if isinstance(r.get(k), float) else "<td>-</td>"
            for k in (*METRIC_KEYS, "elbo", "rate", "seconds")
        )
        body_rows.append(f"<tr><td>{html.escape(r['model'])}</td>{cells}</tr>")
    traversals = ""
    for r in rows:
        png = out / _slug(r["model"]) / "figures" / "traversals.png"
        if png.exists():
            traversals += f"<h3>{html.escape(r['model'])}</h3><img src='data:image/png;base64,{_b64(png)}'>"
    train = ", ".join(f"{k} {v}" for k, v in preset["train"].items())
    body = (
        f"<p>sprites32, {html.escape(train)}; metrics preset {preset['metrics']}, MIG at 10,000 points "
        "(disentanglement_lib's count) in the table and in the curve over training. Higher is more "
        "disentangled for every metric. Each model's folder holds its own report.</p>"
        f"<table><tr>{head}</tr>{''.join(body_rows)}</table>"
        "<h2>Traversals, each row labelled by the factor that latent captures best (MIG's matrix)</h2>"
        + traversals
    )
    figures = [out / "figures" / "mig_vs_weight.png", out / "figures" / "mig_vs_time.png"]
    report.write_html(out, "vaekit demo: disentanglement", body, figures)


def _b64(path: Path) -> str:
    import base64

    return base64.b64encode(path.read_bytes()).decode("ascii")


def best(rows: list[dict], key: str = "mig") -> dict:
    """The row with the highest `key`."""
    scored = [r for r in rows if isinstance(r.get(key), float) and np.isfinite(r[key])]
    return max(scored, key=lambda r: r[key]) if scored else {}
