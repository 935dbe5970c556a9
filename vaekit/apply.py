"""A trained run applied to data, example by example: what `vaekit encode`, `reconstruct`,
`sample`, `score`, `impute` and `evaluate` do, as library functions that return pandas frames and
dicts. The command line only checks its options, calls one of these by keyword, writes the result
(`vaekit.io.write_table`) and prints.

Every function takes a run folder and reads a file (or a built-in name) the way the run read its
training data, scaled with the run's own scaling (`read_for_run`); numbers come from
`vaekit.evaluate`, the one loss path, in nats per example of the data as the model sees it.

    import vaekit.apply as apply
    codes = apply.encode("runs/mnist", "new.npy")                  # z means and standard deviations
    scores, meanings = apply.score("runs/mnist", "new.npy", samples=100)
    apply.reconstruct("runs/table", "rows.csv")                    # in the user's units
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from vaekit import evaluate as measures
from vaekit import plots, runs
from vaekit.batch import Batch
from vaekit.errors import VaekitError, check


def check_beta(model, beta, run) -> None:
    """Refuse (`VaekitError`) a `beta` for a run that is not beta-conditioned, or one outside the
    range the model was trained on; None (the model's own beta) always passes."""
    check(
        beta is None or model.beta_conditioned,
        f"--beta needs a beta-conditioned run (trained with --beta-range); {run} is not one.",
    )
    if beta is not None:
        lo, hi = model.beta_range
        check(
            lo <= beta <= hi,
            f"--beta {beta:g} is outside the range this model was trained on ({lo:g} to {hi:g}); "
            "choose a beta inside it.",
        )


def _model(run, beta=None):
    model = runs.load(run)
    check_beta(model, beta, run)
    return model


def _labels_of(raw) -> list[str] | None:
    """Each example's label as the data names it, or None without labels."""
    if raw.y is None:
        return None
    return [raw.label_names[int(v)] if raw.label_names else str(v) for v in raw.y]


def _with_ids(frame, raw):
    """`frame` with the input's identifier columns first, where the input has them."""
    import pandas as pd

    if raw is None or raw.ids is None:
        return frame
    return pd.concat([raw.ids.reset_index(drop=True), frame.reset_index(drop=True)], axis=1)


def read_for_run(model, source, label_column=None, run=None, keep_labels: bool = True, outside="refuse"):
    """A user's file (or a built-in name) as a `Batch` in the model's units, read the way the
    run read its training data (its array names, image options, column names) and scaled with
    the run's own scaling; a table's feature columns are matched by name (other columns, text
    ones included, are skipped). A label-conditional model gets the file's labels, matched to
    its classes by name. Notes about the file are issued as warnings. Returns (Batch, RawData).
    `outside`: for a typed table, what to do with a cell the model gives probability zero (a
    category never seen in training, a count below the smallest seen, a value past a bound):
    "refuse" raises naming it; "mark" reads it as missing and sets `raw.outside` (n,) to the rows
    that hold one, with a warning naming them (`scores_of` scores those rows as impossible).
    Raises `VaekitError` for a file whose examples differ in shape from the training data, or
    one without the labels a label-conditional model needs."""
    from vaekit import columns, datasets

    record = runs.read_config(run).get("data", {}) if run is not None else {}
    # the run's own way of reading: its x array name and label column, not its y/factors names
    # (a file to encode need not have labels)
    keys = {k: v for k, v in (record.get("keys") or {}).items() if k in ("x", "table")}
    only = record.get("column_names")

    schema = getattr(model.likelihood, "schema", None)
    # a typed table: the run's own dialect and types, and missing cells scored on the observed ones
    table = {**(record.get("table_options") or {}), "missing": "model"} if schema is not None else None
    if table is not None:
        table["schema"] = schema.spec()
        table["id_columns"] = record.get("id_columns")
        table.pop("column_types", None)

    def read(column):
        return datasets.read_raw(source, column, keys, record.get("image_options"), only, table)

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
    if raw.frame is not None:
        check(
            schema is not None,
            f"{run} was trained on an array, not a table of typed columns; give data like its training data.",
        )
        gaps = raw.frame[schema.names].isna().any(axis=1).to_numpy()  # as read, before any cell is blanked
        if outside == "mark":
            cells, said = schema.outside(raw.frame)
            raw.outside = cells.any(axis=1)
            if raw.outside.any():
                raw.meta["outside_cells"] = [
                    ", ".join(
                        f"{name}={columns.plain(raw.frame[name].iloc[i])!r}"
                        for j, name in enumerate(schema.names)
                        if cells[i, j]
                    )
                    for i in range(len(cells))
                ]
                raw.frame = raw.frame.copy()
                for j, name in enumerate(schema.names):
                    raw.frame[name] = raw.frame[name].where(~cells[:, j])
                n_bad = f"{int(raw.outside.sum())} of {len(raw.outside)}"
                warnings.warn(
                    f"{Path(str(source)).name}: {n_bad} rows hold a value the model gives probability zero "
                    f"({'; '.join(said)}): scored as impossible (-ELBO, "
                    "distortion and IS-NLL inf; rate and squared error not computed).",
                    stacklevel=2,
                )
        if gaps.any() and not schema.missing:
            warnings.warn(
                f"{Path(str(source)).name}: the run was trained without missing cells (not --missing model), "
                f"so its encoder reads the missing cells of these {int(gaps.sum())} rows as 0 in model units "
                "(a column's training mean, a category's first value); their scores sum over the observed "
                "cells but are approximate: retrain with --missing model to score such rows properly.",
                stacklevel=2,
            )
        x = schema.to_model(raw.frame)
    else:
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
    if getattr(x, "is_lazy_rows", False):  # larger than memory: scaled as each batch is read

        def scale(block):
            return model.scale_input(torch.as_tensor(np.asarray(block, dtype=np.float32))).numpy()

        return Batch(x.view(scale), labels), raw
    return Batch(model.scale_input(torch.as_tensor(x, dtype=torch.float32)), labels), raw


def is_training_file(run, source) -> bool:
    """Whether `source` is the file `run` was trained on (the same file, by path)."""
    record = runs.read_config(run).get("data") or {}
    trained = record.get("source")
    if trained is None:
        return False
    try:
        return os.path.samefile(str(trained), str(source))
    except OSError:
        return str(trained) == str(source)


def scores_of(
    model, run, source, samples: int, seed: int = 0, beta=None, label_column=None, rows=None, outside="refuse"
):
    """`measures.sampled_scores` of a file for a run (its objective), restricted to `rows`
    (indices) when given. `outside="mark"`: a typed table's rows holding a value the model gives
    probability zero (`read_for_run`) are not run through the model; their -log p scores
    (-ELBO, distortion, IS-NLL, the loss) are inf and the others NaN. Returns (scores dict,
    RawData, the Batch scored in the model's units)."""
    batch, raw = read_for_run(model, source, label_column, run, outside=outside)
    if rows is not None:
        batch = batch[torch.as_tensor(rows)]
    impossible = raw.outside if raw.outside is not None and rows is None else None
    if impossible is None or not impossible.any():
        s = measures.sampled_scores(
            model, batch, samples, beta=beta, seed=seed, objective=runs.load_objective(run, model)
        )
        return s, raw, batch
    possible = np.flatnonzero(~impossible)
    part = (
        measures.sampled_scores(
            model,
            batch[torch.as_tensor(possible)],
            samples,
            beta=beta,
            seed=seed,
            objective=runs.load_objective(run, model),
        )
        if len(possible)
        else {k: np.zeros(0) for k in measures.score_columns(model, samples) + ["loss"]}
    )
    s = {}
    for name, values in part.items():
        full = np.full(len(impossible), np.inf if name in measures.NEG_LOG_SCORES else np.nan)
        full[possible] = values
        s[name] = full
    return s, raw, batch


def impute(
    run,
    data,
    *,
    method: str = "mean",
    draws: int = 1,
    samples: int = 100,
    seed: int = 0,
    label_column=None,
):
    """The rows of a table file with their missing cells filled by the run's model
    (`measures.impute`), in the user's units: observed cells exactly as read, identifiers and
    labels carried. With `draws` M > 1 (method `draw`), M imputations of every row, stacked, with
    an `imputation` column (1..M): multiple imputation. Returns (DataFrame, summary dict: rows,
    missing cells per column, method, draws, samples)."""
    import pandas as pd

    check(draws >= 1, f"--draws must be at least 1, not {draws}.")
    check(
        draws == 1 or method == "draw",
        "--draws M > 1 gives M imputations drawn from the model; add --method draw.",
    )
    model = runs.load(run)
    check(
        getattr(model.likelihood, "schema", None) is not None,
        f"{run} was not trained on a table file, so it has no cells to impute.",
    )
    batch, raw = read_for_run(model, data, label_column, run)
    schema = model.likelihood.schema
    missing = raw.frame[schema.names].isna()
    frames = []
    for m in range(draws):
        filled = measures.impute(model, batch, method, samples, seed + m, labels=batch.labels)
        user = schema.to_user(filled)
        rows = raw.frame[schema.names].copy()
        for name in schema.names:  # observed cells as read; only the missing ones from the model
            if missing[name].any():
                rows[name] = rows[name].astype(object).where(~missing[name], user[name].astype(object))
                rows[name] = rows[name].infer_objects()
        if raw.y is not None:
            rows.insert(0, "label", [raw.label_names[int(v)] if raw.label_names else str(v) for v in raw.y])
        if raw.ids is not None:
            rows = pd.concat([raw.ids.reset_index(drop=True), rows], axis=1)
        if draws > 1:
            rows.insert(0, "imputation", m + 1)
        frames.append(rows)
    summary = {
        "rows": len(raw.frame),
        "missing_cells": {c: int(n) for c, n in missing.sum().items() if n},
        "method": method,
        "draws": draws,
        "samples": samples,
        "trained_with_missing_cells": schema.missing,
    }
    return pd.concat(frames, ignore_index=True), summary


def _file_measures(run, data, samples: int = 100, *, seed: int = 0, beta=None, label_column=None) -> dict:
    """The ELBO, rate, distortion (K-draw means) and the IS-NLL with K samples of any file under
    a run, nats per example (mean and standard error over the file's examples), plus the IS-NLL
    as a density of the user's own units where the run standardised them. Raises `VaekitError`
    for a deterministic autoencoder or K < 1."""
    model = runs.load(run)
    check(model.kind == "vae", f"{run} is a deterministic autoencoder: it has no ELBO or likelihood.")
    s, raw, _ = scores_of(model, run, data, samples, seed, beta, label_column)
    n = len(s["nll"])

    def mean_se(v):
        v = np.asarray(v, dtype=np.float64)
        return float(v.mean()), float(v.std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan")

    out = {"data": str(data), "n": n, "samples": samples}
    for key, name in (
        ("elbo", "neg_elbo_avg"),
        ("rate", "rate_avg"),
        ("distortion", "distortion_avg"),
        ("nll", "nll"),
    ):
        m, se = mean_se(s[name])
        out[key], out[f"{key}_stderr"] = (-m if key == "elbo" else m), se
    out["iwae_bound"] = -out["nll"]
    if model.likelihood.name in ("gaussian", "gaussian-learned", "laplace", "columns"):  # densities
        out["nll_user_units"] = out["nll"] - model.log_jacobian()
    return out


def encode(run, data, *, label_column=None, beta=None):
    """The posterior q(z|x) of every example of `data` (a file or built-in name): a DataFrame of
    n rows, the input's identifier columns (if any), then `z1_mean` ... `zd_mean` and `z1_std` ...
    `zd_std` (float64, latent units). `beta`: for a beta-conditioned run, which beta. Raises
    `VaekitError` for data unlike the training data, or a `beta` the run cannot take."""
    import pandas as pd

    model = _model(run, beta)
    batch, raw = read_for_run(model, data, label_column, run)
    means, variances = measures.encode_means(model, batch, beta=beta)
    d = model.latent_dim
    header = [f"z{i + 1}_mean" for i in range(d)] + [f"z{i + 1}_std" for i in range(d)]
    frame = pd.DataFrame(np.c_[means, np.sqrt(variances)].astype(np.float64), columns=header)
    return _with_ids(frame, raw)


def reconstruct(run, data, *, label_column=None, beta=None):
    """Each example's reconstruction, the decoder's mean at q's mean, in the data's own units: a
    DataFrame of n rows, the identifier columns and the label (where the input has them), then
    one column per feature (a typed table's columns as its types write them; images flattened,
    `vaekit.io.write_table` reshapes them for .npy). Raises `VaekitError` as `encode` does."""
    model = _model(run, beta)
    batch, raw = read_for_run(model, data, label_column, run)
    parts = []
    with torch.no_grad():
        for start in range(0, len(batch), 1000):
            parts.append(model.reconstruct(batch[start : start + 1000], beta=beta))
    frame = runs.user_frame(run, model, torch.cat(parts))
    labels = _labels_of(raw)
    if labels is not None:
        frame.insert(0, "label", labels)
    return _with_ids(frame, raw)


def features(run, frame) -> tuple:
    """The feature columns of a frame from `sample` or `reconstruct` (without the identifier,
    label and other carried columns), in the data's order, and one example's shape: what a .npy
    of the examples holds (`vaekit.io.write_table(path, *features(run, frame))`)."""
    model = runs.load(run)
    schema = getattr(model.likelihood, "schema", None)
    names = list(schema.names) if schema is not None else runs.column_names(run, model)
    return frame[names], model.data_shape


def sample(run, n: int = 64, *, seed: int = 0, beta=None, label=None, draw: bool = False):
    """`n` samples z ~ p(z) through the decoder, in the data's own units: a DataFrame of n rows,
    one column per feature (a `label` column first for a label-conditional run: `label`, as the
    data names it, or every class in turn). `draw`: x ~ p(x|z), true samples of the model,
    instead of the decoder's mean at each z. Seeded by `seed` (torch's global generator is left as
    it was). Raises `VaekitError` for n < 1, a `label` the run has no classes for, or a `beta` it
    cannot take."""
    check(n >= 1, f"-n must be at least 1, not {n}.")
    model = _model(run, beta)
    labels = _class_index(model, run, label)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        drawn = model.sample(n, beta, mean=not draw, labels=labels)
    frame = runs.user_frame(run, model, drawn)
    if model.conditional:
        index = labels.expand(n) if labels is not None else torch.arange(n) % model.n_classes
        frame.insert(0, "label", [model.classes[int(i)] for i in index])
    return frame


def sample_figure(run, n: int = 64, *, seed: int = 0, beta=None, label=None, draw: bool = False):
    """`sample`'s draws as a matplotlib figure (a grid of images, or a table's columns), from
    `vaekit.plots.samples`; same arguments and errors."""
    check(n >= 1, f"-n must be at least 1, not {n}.")
    model = _model(run, beta)
    return plots.samples(model, n, seed, beta=beta, labels=_class_index(model, run, label), mean=not draw)


def latent_figure(run, data: list, *, beta=None) -> tuple:
    """Several files' posterior means in one latent figure, one colour per file
    (`vaekit.plots.latent_groups`): `data` is a list of files or built-in names. Returns (figure,
    [(file name, examples), ...]). Raises `VaekitError` as `encode` does."""
    model = _model(run, beta)
    groups = []
    for source in data:
        batch, _ = read_for_run(model, source, None, run)
        groups.append((Path(str(source)).name, measures.encode_means(model, batch, beta=beta)[0]))
    return plots.latent_groups(model, groups), [(name, len(codes)) for name, codes in groups]


def _class_index(model, run, label):
    check(
        label is None or model.conditional,
        f"--label needs a label-conditional run (trained with --condition labels); {run} is not one.",
    )
    return model.class_index([label]) if label is not None else None


SCORES_UNITS = {
    "vae": "nats per example of the data as the model sees it (after the run's scaling); for a density of "
    "your own units subtract log_jacobian from nll",
    "ae": "nats per example of the data as the model sees it",
}


def score(
    run, data, *, samples: int = 1, label_column=None, keep_columns=(), beta=None, seed: int = 0
) -> tuple:
    """Per-example anomaly scores of `data`, nats (higher = more anomalous), from
    `vaekit.evaluate.sampled_scores` with K = `samples` draws of z per example (K > 1 adds the
    K-draw averages and nll, the importance-sampled -log p(x); Burda et al., 2016).

    Returns (frame, record): the frame has n rows, `index` (the input's row, 0-based), the label
    and identifier columns, the `keep_columns` copied from a table, then the score columns
    (`vaekit.evaluate.score_columns`); a typed table's row holding a value the model gives
    probability zero is kept, with `outside_support` naming the cells and inf -log p scores. The
    record is what `vaekit score` writes beside the scores (OUT.json): the run, data, K, seed,
    beta, units, log_jacobian and each column's meaning. Raises `VaekitError` for K < 1,
    `keep_columns` on data that is not a table, or data unlike the training data."""
    import pandas as pd

    from vaekit import datasets
    from vaekit.datasets import tables

    check(samples >= 1, f"--samples must be at least 1, not {samples}.")
    model = _model(run, beta)
    s, raw, _ = scores_of(model, run, data, samples, seed, beta, label_column, outside="mark")
    frame = pd.DataFrame({"index": np.arange(len(s["loss"]))})
    meanings = {"index": "row of the input (0-based)"}
    if raw.y is not None and (label_column or raw.kind != "tabular"):
        frame["label"] = _labels_of(raw)
        meanings["label"] = f"the label ({label_column or 'from the data'})"
    for name in raw.ids.columns if raw.ids is not None else ():
        frame[name] = raw.ids[name].to_numpy()
        meanings[name] = "the row's identifier, from the input"
    keep = [c.strip() for c in keep_columns if c.strip()]
    if keep:
        path = Path(data)
        check(
            getattr(datasets.format_of(path), "labels_by_column", False),
            "--keep-columns applies to tables (CSV, Parquet, HDF5) only; drop it for this data.",
        )
        record = runs.read_config(run).get("data", {})
        kept = tables.read_columns(path, keep, (record.get("keys") or {}).get("table"))
        for name, values in kept.items():
            check(
                len(values) == len(frame),
                f"{data}: column {name!r} has {len(values)} rows but {len(frame)} examples were read.",
            )
            if name not in frame:
                frame[name] = values
                meanings[name] = "copied from the input"
    for name in measures.score_columns(model, samples):
        frame[name] = s[name]
        meanings[name] = measures.SCORE_MEANINGS[name]
    if "outside_cells" in raw.meta:
        frame["outside_support"] = raw.meta["outside_cells"]
        meanings["outside_support"] = (
            "the row's cells the model gives probability zero (a category never seen in training, a value "
            "past a bound or below a count's smallest): the row's -log p scores are inf"
        )
    record = {
        "run": str(run),
        "data": str(data),
        "samples": samples,
        "seed": seed,
        "beta": beta if beta is not None else model.beta,
        "units": SCORES_UNITS[model.kind],
        "log_jacobian": model.log_jacobian(),
        "columns": meanings,
    }
    return frame, record


def evaluate(
    run,
    data=None,
    *,
    nll_samples: int | None = None,
    metrics=None,
    metric_preset: str = "fast",
    dci_method: str = "gbt",
    label_column=None,
) -> dict:
    """Evaluate a run, nats per example.

    Without `data`: the run's test split, as training ended (`vaekit.evaluate.summarize`, K =
    `nll_samples`, default the run's own), plus the disentanglement `metrics` ("all" or names of
    `vaekit.metrics.ALL_METRICS`, at `metric_preset`'s sample counts; Locatello et al., 2019);
    summary.json and the report are rewritten, and the summary returned.
    With `data` (a file or built-in name): its ELBO, rate, distortion (means over K draws) and
    IS-NLL with K = `nll_samples` (default 100) samples, each with its standard error, and the
    IS-NLL as a density of the user's own units where the run standardised them; nothing in the
    run is rewritten. Raises `VaekitError` for an unknown metric, metrics with `data`, K out of
    range, or a deterministic autoencoder given `data`."""
    from vaekit import io
    from vaekit import metrics as m
    from vaekit import report as rep

    if data is not None:
        check(
            metrics is None, "--metrics needs the run's own data with its factors; drop --data or --metrics."
        )
        k = 100 if nll_samples is None else nll_samples
        check(k >= 1, f"--nll-samples must be at least 1, not {k}.")
        return _file_measures(run, data, k, label_column=label_column)
    model = runs.load(run)
    data = runs.load_data(run)
    config = runs.read_config(run)
    k = config.get("train", {}).get("nll_samples", 100) if nll_samples is None else nll_samples
    check(k >= 0, f"--nll-samples must be at least 0, not {k}.")
    seed = config.get("train", {}).get("seed", 0)
    summary = measures.summarize(
        model, data, nll_samples=k, seed=seed, objective=runs.load_objective(run, model)
    )
    if metrics:
        names = m.ALL_METRICS if metrics == "all" else tuple(metrics)
        unknown = [n for n in names if n not in m.ALL_METRICS]
        check(
            not unknown,
            f"Unknown metric {unknown[0]!r}; choose all or some of {', '.join(m.ALL_METRICS)}."
            if unknown
            else "",
        )
        scores = measures.disentanglement(model, data, names, metric_preset, seed, dci_method)
        summary.update({k: v for k, v in scores.items() if isinstance(v, float)})
        summary["disentanglement"] = {k: v for k, v in scores.items() if not isinstance(v, float)}
    io.write_json(Path(run) / "summary.json", summary)
    rep.write_run(Path(run), model, data, io.read_jsonl(Path(run) / "metrics.jsonl"), summary)
    return summary


__all__ = [
    "check_beta",
    "encode",
    "evaluate",
    "features",
    "impute",
    "read_for_run",
    "reconstruct",
    "sample",
    "sample_figure",
    "score",
    "scores_of",
    "is_training_file",
    "latent_figure",
]
