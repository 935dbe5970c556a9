"""A trained run applied to the user's own files: per-example scores, anomaly evaluation against
signal, the classifier two-sample test, rare and typical examples, reconstructions and the
likelihood of any file. Each function reads files through the run's own reading and scaling,
computes through `vaekit.evaluate` (the one loss path) and `vaekit.science`, and writes its
outputs atomically; the command line (`vaekit.cli`) only parses and prints.
"""

from __future__ import annotations

import html
import math
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import torch

from vaekit import evaluate, io, plots, report, runs, science
from vaekit.batch import Batch
from vaekit.errors import VaekitError, check

ANOMALY_SCORES = ("neg_elbo_avg", "distortion_avg", "rate_avg", "nll", "squared_error")
SCORE_TITLES = {
    "neg_elbo_avg": "-ELBO",
    "distortion_avg": "distortion",
    "rate_avg": "rate",
    "nll": "IS-NLL",
    "squared_error": "squared error",
    "neg_elbo": "-ELBO (one draw)",
    "distortion": "distortion",
    "rate": "rate (one draw)",
}
TYPICALITY_CAVEAT = (
    "The most likely examples of a high-dimensional model are often atypical (e.g. the thinnest, "
    "faintest digits): high density is not the same as typical, so read the 'most typical' row as "
    "'highest density', not as 'most representative' (Nalisnick et al., 2019)."
)


def read_for_run(model, source, label_column=None, run=None, keep_labels: bool = True):
    """A user's file (or a built-in name) as a `Batch` in the model's units, read the way the
    run read its training data (its array names, image options, column names) and scaled with
    the run's own scaling; a table's feature columns are matched by name (other columns, text
    ones included, are skipped). A label-conditional model gets the file's labels, matched to
    its classes by name. Notes about the file are issued as warnings. Returns (Batch, RawData).
    Raises `VaekitError` for a file whose examples differ in shape from the training data, or
    one without the labels a label-conditional model needs."""
    from vaekit import datasets

    record = runs.read_config(run).get("data", {}) if run is not None else {}
    # the run's own way of reading: its x array name and label column, not its y/factors names
    # (a file to encode need not have labels)
    keys = {k: v for k, v in (record.get("keys") or {}).items() if k in ("x", "table")}
    only = record.get("column_names")

    def read(column):
        return datasets.read_raw(source, column, keys, record.get("image_options"), only_columns=only)

    raw = None
    if label_column is None and record.get("label_column") and keep_labels:
        try:  # the run's own label column, where the file has it
            raw = read(record["label_column"])
        except VaekitError as err:
            if "has no column named" not in str(err) and "applies to tables" not in str(err):
                raise
    if raw is None:
        raw = read(label_column)
    if record.get("column_names") and raw.column_names is not None:
        raw = datasets.match_columns(raw, record["column_names"])
    for note in raw.notes:
        warnings.warn(note, stacklevel=2)
    raw = datasets.validate(raw)
    x = raw.x
    check(
        tuple(x.shape[1:]) == model.data_shape,
        f"The data in {source} has examples of shape {tuple(x.shape[1:])} but the model was "
        f"trained on {model.data_shape}; give data like the training data.",
    )
    labels = None
    if model.conditional:
        check(
            raw.y is not None,
            f"{run} is a label-conditional model, so it needs each example's label, and {source} has none; "
            "give --label-column (tables) or data with labels.",
        )
        values, inverse = np.unique(raw.y, return_inverse=True)
        names = [raw.label_names[v] if raw.label_names else str(v) for v in values]
        labels = model.class_index(names)[torch.as_tensor(inverse.reshape(-1))]
    return Batch(model.scale_input(torch.as_tensor(x, dtype=torch.float32)), labels), raw


def prepare_folder(out: Path, overwrite: bool) -> Path:
    """A new output folder; an existing non-empty one is refused unless `overwrite` (then
    emptied). Raises `VaekitError` when `out` is a file or exists without `overwrite`."""
    out = Path(out)
    check(not out.is_file(), f"{out} is a file, not a folder; choose another --out.")
    if out.is_dir() and any(out.iterdir()):
        check(
            overwrite,
            f"{out} already exists and is not empty; choose another --out, or replace it with --overwrite "
            "(nothing was overwritten).",
        )
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    return out


def _is_training_file(run, source) -> bool:
    record = runs.read_config(run).get("data") or {}
    trained = record.get("source")
    if trained is None:
        return False
    try:
        return os.path.samefile(str(trained), str(source))
    except OSError:
        return str(trained) == str(source)


def scores_of(model, run, source, samples: int, seed: int = 0, beta=None, label_column=None, rows=None):
    """`evaluate.sampled_scores` of a file for a run (its objective), restricted to `rows`
    (indices) when given. Returns (scores dict, RawData)."""
    batch, raw = read_for_run(model, source, label_column, run)
    if rows is not None:
        batch = batch[torch.as_tensor(rows)]
    s = evaluate.sampled_scores(model, batch, samples, beta=beta, seed=seed, objective=runs.load_objective(run, model))
    return s, raw


def anomaly(
    run,
    out,
    background=None,
    signal=None,
    data=None,
    label_column=None,
    signal_label=None,
    samples: int = 100,
    quantiles=science.CUT_QUANTILES,
    seed: int = 0,
    beta=None,
    overwrite: bool = False,
) -> dict:
    """Anomaly evaluation of a run: score background and signal examples, then for each score
    (-ELBO, distortion and rate averaged over K draws, IS-NLL, squared error) the ROC AUC, the
    signal efficiency at background-quantile cuts and the histograms.

    Either `background` and `signal` files, or one `data` file with `label_column`, whose
    `signal_label` rows are signal and the rest background. When the background is the run's
    training file, only its test split is used (the training rows were fitted, so their scores
    are biased low), and the result says so.
    Writes OUT/anomaly.json, OUT/figures/{roc,score_histograms}.png and OUT/report.html.
    Returns the JSON table. Raises `VaekitError` for a missing input, an unknown signal label,
    K < 1, or an empty sample.
    """
    model = runs.load(run)
    check(
        model.kind == "vae",
        f"{run} is a deterministic autoencoder: it has one score (its distortion); anomaly needs a VAE's "
        "rate and likelihood. Train a VAE, or use vaekit score.",
    )
    check(samples >= 1, f"--samples must be at least 1, not {samples}.")
    notes = []
    if data is not None:
        check(
            background is None and signal is None,
            "Give either --background and --signal, or --data with --label-column, not both.",
        )
        check(label_column is not None, "With --data, name the column that says signal or background: --label-column.")
        s, raw = scores_of(model, run, data, samples, seed, beta, label_column)
        names = raw.label_names or [str(v) for v in np.unique(raw.y)]
        check(raw.y is not None, f"{data} has no labels in {label_column!r}.")
        check(
            signal_label is not None,
            f"Say which value of {label_column!r} is signal with --signal-label (its values: {', '.join(names[:10])}).",
        )
        check(
            str(signal_label) in names,
            f"{label_column!r} has no value {signal_label!r}; its values are {', '.join(names[:10])}.",
        )
        label_of = np.asarray(names)[raw.y] if raw.label_names else raw.y.astype(str)
        is_signal = label_of == str(signal_label)
        check(is_signal.any() and (~is_signal).any(), "The file needs both signal and background rows.")
        bg = {k: v[~is_signal] for k, v in s.items()}
        sig = {k: v[is_signal] for k, v in s.items()}
        sources = {"data": str(data), "label_column": label_column, "signal_label": str(signal_label)}
    else:
        check(
            background is not None and signal is not None,
            "Give the background and the signal: --background FILE --signal FILE (or --data FILE --label-column C).",
        )
        rows = None
        if _is_training_file(run, background):
            rows = runs.load_data(run).test_idx
            notes.append(
                f"The background file is the one the run trained on, so only its {len(rows)} test-split rows "
                "were scored (the training rows were fitted, and their scores are biased low)."
            )
        bg, _ = scores_of(model, run, background, samples, seed, beta, rows=rows)
        sig, _ = scores_of(model, run, signal, samples, seed + 1, beta)
        if _is_training_file(run, signal):
            notes.append("The signal file is the run's training file: the model was fitted to it.")
        sources = {"background": str(background), "signal": str(signal)}
    names = [n for n in ANOMALY_SCORES if n in bg]
    table = science.anomaly_table({n: bg[n] for n in names}, {n: sig[n] for n in names}, quantiles)
    result = {
        "run": str(run),
        **sources,
        "samples": samples,
        "n_background": int(len(bg["nll"])),
        "n_signal": int(len(sig["nll"])),
        "scores": table,
        "notes": notes,
        "units": "scores in nats per example of the data as the model sees it (squared_error: model units^2)",
    }
    out = prepare_folder(Path(out), overwrite)
    report.save_figure(plots.roc_curves(table), out / "figures" / "roc.png")
    cuts = {n: row["cuts"] for n, row in table.items()}
    report.save_figure(plots.score_histograms(bg, sig, names, cuts), out / "figures" / "score_histograms.png")
    io.write_json(out / "anomaly.json", result)
    report.write_html(out, f"vaekit anomaly: {Path(str(run)).name}", anomaly_html(result), report.sorted_pngs(out))
    for note in notes:
        warnings.warn(note, stacklevel=2)
    return result


def anomaly_html(result: dict) -> str:
    """The anomaly report's table: AUC and signal efficiency at each cut, per score."""
    table = result["scores"]
    quantiles = [c["quantile"] for c in next(iter(table.values()))["cuts"]]
    head = "".join(f"<th>signal eff. at {100 * q:g}% bkg quantile</th>" for q in quantiles)
    rows = []
    for name, row in table.items():
        cells = "".join(f"<td>{c['signal_efficiency']:.4f}</td>" for c in row["cuts"])
        rows.append(
            f"<tr><td>{html.escape(SCORE_TITLES.get(name, name))} ({html.escape(name)})</td>"
            f"<td>{row['auc']:.4f} &plusmn; {row['auc_stderr']:.4f}</td>{cells}</tr>"
        )
    notes = "".join(f"<p>{html.escape(n)}</p>" for n in result["notes"])
    return (
        f"<p>{result['n_background']} background and {result['n_signal']} signal examples; K = "
        f"{result['samples']} draws per example.</p>{notes}"
        f"<table><tr><th>score</th><th>ROC AUC</th>{head}</tr>{''.join(rows)}</table>"
        "<p class='small'>The cut keeps examples whose score is above the background's quantile; an AUC "
        "below 0.5 means signal scores lower than background on that score.</p>"
    )
