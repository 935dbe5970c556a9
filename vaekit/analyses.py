"""Studies of a trained run on the user's files, each written as an output folder with its
report: anomaly evaluation against signal (ROC AUC per score, cuts), the classifier two-sample
test, rare and typical examples, nearest neighbours. Files are read through the run's own reading
and scaling (`vaekit.apply`, which also holds the per-example outputs: codes, scores,
reconstructions, samples, imputations); numbers come from `vaekit.evaluate` (the one loss path)
and `vaekit.science`; outputs are written atomically. The command line only parses and prints.
"""

from __future__ import annotations

import html
import shutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vaekit import apply, evaluate, io, plots, report, runs, science
from vaekit.batch import Batch, observations
from vaekit.datasets.rows import chunks
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


def _rows_at(frame, ids, index):
    """A table's rows `index` as read, its identifier columns first (a DataFrame), or None for
    data that is not a table file."""
    import pandas as pd

    if frame is None:
        return None
    rows = frame.iloc[index].reset_index(drop=True)
    if ids is not None:
        rows = pd.concat([ids.iloc[index].reset_index(drop=True), rows], axis=1)
    return rows


def _shared_numbers(a, b) -> tuple[np.ndarray, np.ndarray]:
    """Two tables' columns as numbers for a classifier: numbers as they are (NaN where missing),
    text and booleans as codes over the values of both tables, so a value has one code."""
    import pandas as pd

    cols_a, cols_b = [], []
    for name in a.columns:
        if pd.api.types.is_numeric_dtype(a[name]) and pd.api.types.is_numeric_dtype(b[name]):
            cols_a.append(a[name].astype("float64").to_numpy(na_value=np.nan))
            cols_b.append(b[name].astype("float64").to_numpy(na_value=np.nan))
        else:
            both = pd.concat([a[name], b[name]], ignore_index=True).astype(str)
            codes = pd.factorize(both)[0].astype(np.float64)
            cols_a.append(codes[: len(a)])
            cols_b.append(codes[len(a) :])
    return np.stack(cols_a, axis=1), np.stack(cols_b, axis=1)


def training_rows(run, *xs) -> list[np.ndarray] | None:
    """For each array of rows `xs` (n_i, d) in the model's units, which rows (n_i,) hold exactly
    the values of a row of the run's training split (matched by content, float32 bytes); None
    when the run's training data cannot be read."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            train = runs.load_data(run).x_train
            pool = np.concatenate([science.row_keys(np.asarray(p, np.float32)) for p in chunks(train)])
    except (VaekitError, OSError):
        return None
    return [np.isin(science.row_keys(np.asarray(x, np.float32)), pool) for x in xs]


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


def anomaly(
    run,
    out,
    *,
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
    apply.check_beta(model, beta, run)
    check(
        model.kind == "vae",
        f"{run} is a deterministic autoencoder: it has one score (its distortion); anomaly needs a VAE's "
        "rate and likelihood. Train a VAE, or use vaekit score.",
    )
    check(samples >= 1, f"--samples must be at least 1, not {samples}.")
    if data is not None:
        check(
            background is None and signal is None,
            "Give either --background and --signal, or --data with --label-column, not both.",
        )
        scored = _scores_by_label(model, run, data, label_column, signal_label, samples, seed, beta)
    else:
        check(
            background is not None and signal is not None,
            "Give the background and the signal: --background FILE --signal FILE "
            "(or --data FILE --label-column C).",
        )
        scored = _scores_of_two_files(model, run, background, signal, samples, seed, beta)
    bg, sig, sources, notes = scored
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
    report.write_html(
        out,
        f"vaekit anomaly: {Path(str(run)).name}",
        anomaly_html(result),
        report.sorted_pngs(out),
        explorable=True,
    )
    for note in notes:
        warnings.warn(note, stacklevel=2)
    return report.DisplayedResult(result, out, anomaly_html)  # a dict; Jupyter shows its report


def _scores_by_label(model, run, data, label_column, signal_label, samples, seed, beta):
    """Read and score step, one file: every row scored, told apart by `label_column`'s
    `signal_label`. Returns (background scores, signal scores, the inputs, notes)."""
    notes = []
    s, raw, batch = apply.scores_of(model, run, data, samples, seed, beta, label_column)
    check(
        raw.y is not None,
        f"{data} does not say which examples are signal: name a table's label column with "
        "--label-column, or give an .npz with a y array or a folder with one sub-folder per class.",
    )
    names = raw.label_names or [str(v) for v in np.unique(raw.y)]
    what = repr(label_column) if label_column else "the labels"
    check(
        signal_label is not None,
        f"Say which value of {what} is signal with --signal-label (its values: {', '.join(names[:10])}).",
    )
    check(
        str(signal_label) in names,
        f"{what} has no value {signal_label!r}; its values are {', '.join(names[:10])}.",
    )
    label_of = np.asarray(names)[raw.y] if raw.label_names else raw.y.astype(str)
    is_signal = label_of == str(signal_label)
    check(is_signal.any() and (~is_signal).any(), "The file needs both signal and background rows.")
    seen = (training_rows(run, batch.x.numpy()) or [None])[0]
    if seen is not None and seen.any():
        counts = f"{int(seen[~is_signal].sum())} background, {int(seen[is_signal].sum())} signal"
        notes.append(
            f"{int(seen.sum())} of the {len(seen)} rows of {Path(str(data)).name} ({counts}) are rows "
            "the model was trained on (matched by content); their scores are biased low."
        )
    bg = {k: v[~is_signal] for k, v in s.items()}
    sig = {k: v[is_signal] for k, v in s.items()}
    sources = {"data": str(data), "label_column": label_column, "signal_label": str(signal_label)}
    return bg, sig, sources, notes


def _scores_of_two_files(model, run, background, signal, samples, seed, beta):
    """Read and score step, two files (a background that is the run's training file: its test
    split only). Returns (background scores, signal scores, the inputs, notes)."""
    notes = []
    rows = None
    if apply.is_training_file(run, background):
        rows = runs.load_data(run).test_idx
        notes.append(
            f"The background file is the one the run trained on, so only its {len(rows)} test-split rows "
            "were scored (the training rows were fitted, and their scores are biased low)."
        )
    bg, _, bg_batch = apply.scores_of(model, run, background, samples, seed, beta, rows=rows)
    sig, _, sig_batch = apply.scores_of(model, run, signal, samples, seed + 1, beta)
    if apply.is_training_file(run, signal):
        notes.append("The signal file is the run's training file: the model was fitted to it.")
    found = training_rows(run, bg_batch.x.numpy(), sig_batch.x.numpy()) or [None, None]
    for role, source, seen in zip(("background", "signal"), (background, signal), found, strict=True):
        if apply.is_training_file(run, source):
            continue  # said above
        if seen is not None and seen.any():
            notes.append(
                f"{int(seen.sum())} of the {len(seen)} {role} rows are rows the model was trained on "
                "(matched by content); their scores are biased low."
            )
    sources = {"background": str(background), "signal": str(signal)}
    return bg, sig, sources, notes


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


def _model_draws(model, n: int, seed: int, draw: bool, beta=None, like_labels=None) -> np.ndarray:
    """n samples of the model in its own units: x ~ p(x|z) (`draw`) or the decoder's mean, z from
    the prior; a label-conditional model draws its classes as often as `like_labels` holds them."""
    labels = None
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if model.conditional and like_labels is not None:
            pick = torch.randint(len(like_labels), (n,))
            labels = torch.as_tensor(like_labels)[pick]
        with torch.no_grad():
            x = model.sample(n, beta, mean=not draw, labels=labels)
    return x.cpu().numpy()


@dataclass
class _Samples:
    """The two samples of a two-sample test as read: arrays a and b (n, *shape), their names, a
    function to the user's units, the columns (or a typed table's rows as read, identifiers
    first, for a and b), the notes so far, and what the result records about them."""

    a: np.ndarray
    b: np.ndarray
    names: tuple[str, str]
    to_user: Callable
    shape: tuple
    columns: list | None
    table_rows: tuple | None
    notes: list[str]
    record: dict


def twosample(
    out,
    *,
    run=None,
    data=None,
    against=None,
    n: int | None = None,
    classifier: str = "gbt",
    permutations: int = 1000,
    seed: int = 0,
    draw: bool = True,
    beta=None,
    label_column=None,
    overwrite: bool = False,
    drop_columns=(),
) -> dict:
    """Classifier two-sample test (`science.two_sample_test`, Lopez-Paz & Oquab, 2017).

    With a run: the model's samples (true draws x ~ p(x|z) with z ~ p(z), or with `draw=False`
    the decoder's means) against real data held out from training (the run's test split, or the
    file `data`), plus a real-vs-real control (the real data split in two halves), which should
    come out near 0.5. Without a run: the file `data` against the file `against` (a table's
    columns matched by name).
    Writes OUT/twosample.json, OUT/figures/null.png, the classifier's surest examples (a figure
    for images, OUT/extremes.csv for tables) and OUT/report.html; returns the JSON.
    Raises `VaekitError` for missing inputs, n < 4, or samples of different kinds.
    """
    check(n is None or n >= 4, f"-n must be at least 4, not {n}.")
    if run is not None:
        check(against is None, "--against compares two files; with a run, give --data only (the real data).")
        samples = _model_and_real(run, data, n, seed, draw, beta, label_column)
    else:
        check(
            data is not None and against is not None,
            "Give a run (model samples against real data) or two files: --data A --against B.",
        )
        samples = _two_files(data, against, n, seed, label_column, drop_columns)
    test, result = _test(samples, classifier, permutations, seed, control=run is not None)
    out = prepare_folder(Path(out), overwrite)
    _write_twosample(out, samples, test, result)
    for note in result["notes"]:
        warnings.warn(note, stacklevel=2)
    return result


def _model_and_real(run, data, n, seed, draw, beta, label_column) -> _Samples:
    """Read step, with a run: the real examples (the run's test split, or `data`; n of them at
    most, drawn before reading) and as many draws of the model."""
    model = runs.load(run)
    apply.check_beta(model, beta, run)
    notes, record = [], {}
    if data is None:
        real = runs.load_data(run)
        x_real = real.x_test
        labels = model.data_classes(real, "test")
        record["real"] = f"{real.name}, the run's test split"
        frame, ids = real.extra.get("frame"), real.ids
        real_rows = _rows_at(frame, ids, real.test_idx)
    else:
        batch, raw = apply.read_for_run(model, data, label_column, run)
        x_real, labels = batch.x, batch.labels
        record["real"] = str(data)
        real_rows = _rows_at(raw.frame, raw.ids, np.arange(len(x_real)))
        if apply.is_training_file(run, data):
            notes.append(f"{data} is the run's training file: the model was fitted to these examples.")
    keep = None
    if n is not None and n < len(x_real):  # drawn before reading: a large split is never read whole
        keep = np.random.default_rng(seed).choice(len(x_real), n, replace=False)
    x_real = np.asarray(x_real[keep] if keep is not None else x_real[:], dtype=np.float32)
    if keep is not None:
        labels = labels[torch.as_tensor(keep)] if labels is not None else None
        real_rows = real_rows.iloc[keep].reset_index(drop=True) if real_rows is not None else None
    if n is not None and n > len(x_real):
        notes.append(
            f"-n {n} is more than the {len(x_real)} real rows: {len(x_real)} draws were compared with "
            "them (the classifier needs as many of each)."
        )
    count = min(n or len(x_real), len(x_real))
    x_fake = _model_draws(model, count, seed, draw, beta, labels)
    record["model"] = "draws x ~ p(x|z), z ~ p(z)" if draw else "decoder means at z ~ p(z)"
    holes = np.isnan(x_real)
    if holes.any():  # the draws lose the real rows' cells, row for row: missingness is no giveaway
        x_fake = np.where(holes, np.nan, x_fake).astype(x_fake.dtype)
        notes.append(
            f"The real rows have {int(holes.sum())} missing cells; each draw was given the missing cells "
            "of one real row, so the classifier compares observed cells, not which cells are missing."
        )
    if draw and model.likelihood.name == "bernoulli" and not np.isin(x_real, (0.0, 1.0)).all():
        notes.append(
            "The model's Bernoulli draws are 0/1 values and the real data is not binary, so the two are "
            "trivially separable; --decoder-mean compares the decoder's means instead."
        )
    table_rows = None  # a typed table: real rows as read, the model's in the user's units
    if real_rows is not None:
        table_rows = (real_rows, runs.user_frame(run, model, x_fake))
    return _Samples(
        x_real,
        x_fake,
        ("real", "model"),
        lambda x: model.unscale_output(torch.as_tensor(x)).numpy(),
        model.data_shape,
        runs.column_names(run, model),
        table_rows,
        notes,
        record,
    )


def _two_files(data, against, n, seed, label_column, drop_columns) -> _Samples:
    """Read step, without a run: the files `data` and `against` (a table's columns matched by
    name, text coded over both), n rows of each at most."""
    from vaekit import datasets
    from vaekit.datasets import Columns

    drop = Columns(drop=tuple(drop_columns), strict=True) if drop_columns else None
    raw_a = datasets.validate(datasets.read_raw(data, label_column, only_columns=drop))
    raw_b = datasets.read_raw(against, label_column, only_columns=raw_a.column_names)
    if raw_a.column_names is not None and raw_b.column_names is not None:
        raw_b = datasets.match_columns(raw_b, raw_a.column_names)
    raw_b = datasets.validate(raw_b)
    for note in raw_a.notes + raw_b.notes:
        warnings.warn(note, stacklevel=2)
    if raw_a.frame is not None and raw_b.frame is not None:
        raw_a.x, raw_b.x = _shared_numbers(raw_a.frame, raw_b.frame)
    check(
        raw_a.x is not None and raw_b.x is not None,
        f"{data} and {against} are not two tables nor two arrays; give two samples of the same kind.",
    )
    check(
        raw_a.x.shape[1:] == raw_b.x.shape[1:],
        f"{data} has examples of shape {raw_a.x.shape[1:]} and {against} of shape {raw_b.x.shape[1:]}; "
        "give two samples of the same kind.",
    )
    a, b = raw_a.x, raw_b.x
    keep_a, keep_b = np.arange(len(a)), np.arange(len(b))
    if n is not None:
        gen = np.random.default_rng(seed)
        keep_a = gen.choice(len(a), min(n, len(a)), replace=False)
        keep_b = gen.choice(len(b), min(n, len(b)), replace=False)
        a, b = a[keep_a], b[keep_b]
    table_rows = None
    if raw_a.frame is not None and raw_b.frame is not None:  # rows as read, identifiers first
        table_rows = (_rows_at(raw_a.frame, raw_a.ids, keep_a), _rows_at(raw_b.frame, raw_b.ids, keep_b))
    names = (Path(str(data)).name, Path(str(against)).name)
    record = {"a": str(data), "b": str(against)}
    return _Samples(a, b, names, lambda x: x, raw_a.x.shape[1:], raw_a.column_names, table_rows, [], record)


def _test(samples: _Samples, classifier, permutations, seed, control: bool):
    """Compute step: the test of a against b and, with `control`, of a's two halves; returns the
    test and the JSON result (with the notes)."""
    a, b, notes = samples.a, samples.b, list(samples.notes)
    result: dict = {"classifier": classifier, "seed": seed, **samples.record}
    test = science.two_sample_test(a, b, classifier, permutations=permutations, seed=seed)
    result.update(test.summary())
    result["samples"] = {"a": samples.names[0], "b": samples.names[1], "n_a": len(a), "n_b": len(b)}
    if control:
        half = len(a) // 2
        order = np.random.default_rng(seed + 1).permutation(len(a))
        try:
            halves = science.two_sample_test(
                a[order[:half]], a[order[half:]], classifier, permutations=permutations, seed=seed
            )
            result["control"] = {
                "what": "real vs real: the real data split in two halves",
                **halves.summary(),
            }
        except VaekitError as err:
            result["control"] = None
            notes.append(f"No real-vs-real control: {err}")
    if test.extra.get("classifier_note"):
        notes.append(test.extra["classifier_note"])
    if test.duplicates:
        notes.append(
            f"{test.duplicates} rows occur more than once; every copy was kept on one side of the split."
        )
    result["notes"] = notes
    return test, result


def _write_twosample(out: Path, samples: _Samples, test, result: dict) -> None:
    """Draw and write step: the null figure, the surest examples (a figure for images, a table
    otherwise), twosample.json and the report."""
    a, b, names = samples.a, samples.b, samples.names
    title = f"{names[1]} vs {names[0]}: {science.p_value_phrase(test.p_value, len(test.null))}"
    report.save_figure(plots.null_distribution(test.null, test.accuracy, title), out / "figures" / "null.png")
    ext = science.extremes(test, len(a))
    picks = [
        (f"{names[1]}: judged most surely {names[1]}", b, ext["b_most_b"]),
        (f"{names[1]}: judged most like {names[0]}", b, ext["b_most_a"]),
        (f"{names[0]}: judged most like {names[1]}", a, ext["a_most_b"]),
    ]
    if plots.to_images(a[:1], samples.shape) is not None:
        rows = [(title, samples.to_user(x[i])) for title, x, i in picks if len(i)]
        report.save_figure(plots.example_rows(rows, samples.shape), out / "figures" / "extremes.png")
    else:
        import pandas as pd

        frames = []
        for title, x, idx in picks:
            if samples.table_rows is not None:
                frame = samples.table_rows[0 if x is a else 1].iloc[idx].reset_index(drop=True)
            else:
                frame = pd.DataFrame(samples.to_user(x[idx]).reshape(len(idx), -1), columns=samples.columns)
            frame.insert(0, "index", idx)
            frame.insert(0, "group", title)
            frames.append(frame)
        table = pd.concat(frames)
        if samples.table_rows is not None:  # a's columns (identifiers first) for every group
            table = table[["group", "index", *samples.table_rows[0].columns]]
        io.write_table(out / "extremes.csv", table)
    io.write_json(out / "twosample.json", result)
    report.write_html(out, "vaekit two-sample test", _twosample_html(result), report.sorted_pngs(out))


def _p_shown(p: float, permutations: int) -> str:
    """ "= 0.0312" or "< 0.001 (1,000 permutations)"."""
    text = science.p_value_text(p, permutations)
    return text if text.startswith("<") else f"= {text}"


def _twosample_html(result: dict) -> str:
    rows = [("test", result)] + ([("control", result["control"])] if result.get("control") else [])
    cells = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{r['balanced_accuracy']:.4f}</td><td>{r['null_mean']:.4f} "
        f"&plusmn; {r['null_sd']:.4f}</td><td>{html.escape(r['p_value_text'])}</td>"
        f"<td>{r['n_train']} / {r['n_test']}</td></tr>"
        for name, r in rows
    )
    s = result["samples"]
    notes = "".join(f"<p>{html.escape(n)}</p>" for n in result["notes"])
    return (
        f"<p>{html.escape(str(s['a']))} ({s['n_a']}) against {html.escape(str(s['b']))} ({s['n_b']}); "
        f"classifier {html.escape(result['classifier'])}.</p>{notes}"
        "<table><tr><th></th><th>balanced accuracy</th><th>null mean &plusmn; sd</th><th>p-value</th>"
        f"<th>train / test</th></tr>{cells}</table><p class='small'>0.5 = the classifier cannot tell the "
        "samples apart. The null permutes the held-out labels (Lopez-Paz &amp; Oquab, 2017).</p>"
    )


def rare(
    run,
    out,
    *,
    data=None,
    k: int = 16,
    by: str = "nll",
    samples: int = 100,
    seed: int = 0,
    beta=None,
    label_column=None,
    overwrite: bool = False,
) -> dict:
    """The k rarest and k most typical examples of a file (default: the run's own data set) by
    a per-example score of `evaluate.sampled_scores` (default the IS-NLL with K samples; higher
    = rarer), with the typicality caveat (`TYPICALITY_CAVEAT`).
    Writes OUT/rare.csv (group, rank, index, score, label, and a table's columns in its units),
    OUT/figures/rare_and_typical.png for images, OUT/report.html; returns the JSON summary.
    Raises `VaekitError` for an unknown score, k < 1 or K < 1."""
    import pandas as pd

    model = runs.load(run)
    apply.check_beta(model, beta, run)
    check(samples >= 1, f"--samples must be at least 1, not {samples}.")
    known = evaluate.score_columns(model, max(samples, 2) if model.kind == "vae" else 1)
    check(by in known, f"--by must be one of {', '.join(known)}, not {by!r}.")
    check(k >= 1, f"-k must be at least 1, not {k}.")
    if data is None:
        dataset = runs.load_data(run)
        batch = Batch(observations(dataset.x), model.data_classes(dataset, index=np.arange(len(dataset.x))))
        label_names = [dataset.label_name(int(v)) for v in dataset.y] if dataset.y is not None else None
        source = dataset.name
        rows, ids = dataset.extra.get("frame"), dataset.ids
    else:
        batch, raw = apply.read_for_run(model, data, label_column, run)
        rows = raw.frame  # a table's rows exactly as read
        ids = raw.ids
        label_names = None
        if raw.y is not None:
            label_names = [raw.label_names[int(v)] if raw.label_names else str(v) for v in raw.y]
        source = str(data)
    if model.kind == "ae":
        samples = 1
    s = evaluate.sampled_scores(
        model, batch, samples, beta=beta, seed=seed, objective=runs.load_objective(run, model)
    )
    rarest, typical = science.rare_and_typical(s[by], k)

    def x_user(index):  # the rows `index` (a list) in the user's units, read as needed
        return model.unscale_output(batch[torch.as_tensor(np.array(index, dtype=np.int64))].x).numpy()

    columns = runs.column_names(run, model)
    frames = []
    for group, idx in (("rarest", rarest), ("most typical", typical)):
        frame = pd.DataFrame(
            {"group": group, "rank": np.arange(1, len(idx) + 1), "index": idx, by: s[by][idx]}
        )
        if label_names is not None:
            frame["label"] = [label_names[i] for i in idx]
        if ids is not None:
            frame = pd.concat([frame, ids.iloc[idx].reset_index(drop=True)], axis=1)
        if rows is not None:
            frame = pd.concat([frame, rows.iloc[idx].reset_index(drop=True)], axis=1)
        elif plots.to_images(x_user([0]), model.data_shape) is None:
            frame = pd.concat(
                [frame, pd.DataFrame(x_user(idx).reshape(len(idx), -1), columns=columns)], axis=1
            )
        frames.append(frame)
    out = prepare_folder(Path(out), overwrite)
    table = pd.concat(frames, ignore_index=True)
    with io.atomic_path(out / "rare.csv") as tmp:
        table.to_csv(tmp, index=False)
    title = SCORE_TITLES.get(by, by)
    if plots.to_images(x_user([0]), model.data_shape) is not None:
        rows = [
            (f"rarest: highest {title}", x_user(rarest)),
            (f"most typical: lowest {title}", x_user(typical)),
        ]
        report.save_figure(
            plots.example_rows(rows, model.data_shape), out / "figures" / "rare_and_typical.png"
        )
    result = {
        "run": str(run),
        "data": source,
        "by": by,
        "samples": samples,
        "k": k,
        "rarest": {"index": rarest.tolist(), by: s[by][rarest].tolist()},
        "most_typical": {"index": typical.tolist(), by: s[by][typical].tolist()},
        "caveat": TYPICALITY_CAVEAT,
    }
    io.write_json(out / "rare.json", result)
    body = (
        f"<p>{html.escape(source)}: the {k} examples with the highest and the lowest {html.escape(title)} "
        f"({html.escape(by)}, K = {samples}).</p><p><b>Caveat.</b> {html.escape(TYPICALITY_CAVEAT)}</p>"
        + table.head(2 * k).to_html(index=False, float_format=lambda v: f"{v:.4g}")
    )
    report.write_html(out, "vaekit: rare and typical examples", body, report.sorted_pngs(out))
    result["table"] = table
    return result


def neighbors(run, *, index=None, query=None, data=None, k: int = 8, label_column=None) -> dict:
    """The k nearest examples to a query in latent space (posterior means, Euclidean).

    The query is example `index` of the file `query` (default: of the run's own data set; a
    file's first example when `index` is None); the search runs over the file `data` (default:
    the run's data set), excluding the query itself when both are the run's data.
    Returns found indices (k,), distances (k,), labels of the searched examples (or None), a
    figure for images, and for a table a DataFrame (query first, then the neighbours) with the
    columns in the data's units (a table file's rows exactly as read, its identifiers first).
    Raises `VaekitError` for an index out of range."""
    import pandas as pd

    model = runs.load(run)

    def load(source):
        """(Batch, label names, a table's rows as read and its identifiers, or None each)."""
        if source is None:
            dataset = runs.load_data(run)
            labels = model.data_classes(dataset, index=np.arange(len(dataset.x)))
            names = [dataset.label_name(int(v)) for v in dataset.y] if dataset.y is not None else None
            rows = (dataset.extra.get("frame"), dataset.ids)
            return Batch(observations(dataset.x), labels), names, rows
        batch, raw = apply.read_for_run(model, source, label_column, run)
        names = None
        if raw.y is not None:
            names = [raw.label_names[int(v)] if raw.label_names else str(v) for v in raw.y]
        return batch, names, (raw.frame, raw.ids)

    check(
        index is not None or query is not None,
        "Name the query: --index I (of the run's data) or --query FILE.",
    )
    q_batch, q_names, q_rows = load(query)
    i = 0 if index is None else index
    check(0 <= i < len(q_batch), f"--index must be between 0 and {len(q_batch) - 1}, not {i}.")
    pool, names, rows = (
        (q_batch, q_names, q_rows) if data == query or (data is None and query is None) else load(data)
    )
    same = data is None and query is None or data == query
    q_code = evaluate.encode_means(model, q_batch[i : i + 1])[0]
    codes = evaluate.encode_means(model, pool)[0]
    distance = np.linalg.norm(codes - q_code, axis=1)
    if same:
        distance[i] = np.inf
    found = np.argsort(distance, kind="stable")[: min(k, len(codes) - (1 if same else 0))]
    result = {"found": found, "distances": distance[found], "labels": names, "table": None, "figure": None}
    result["name"] = f"{i}" if query is None else f"{Path(str(query)).stem}-{i}"
    x_query = model.unscale_output(q_batch[i : i + 1].x).numpy()
    x_found = model.unscale_output(pool[torch.as_tensor(found)].x).numpy()
    if plots.to_images(x_query, model.data_shape) is None:
        if rows[0] is not None and q_rows[0] is not None:  # a table's rows exactly as read, ids first
            parts = [(q_rows, [i]), (rows, list(found))]
            frame = pd.concat([r[0].iloc[idx] for r, idx in parts], ignore_index=True)
            if rows[1] is not None and q_rows[1] is not None:
                ids = pd.concat([r[1].iloc[idx] for r, idx in parts], ignore_index=True)
                frame = pd.concat([ids, frame], axis=1)
        else:
            frame = runs.user_frame(
                run, model, torch.cat([q_batch[i : i + 1].x, pool[torch.as_tensor(found)].x])
            )
        frame.insert(0, "distance", np.r_[0.0, distance[found]])
        frame.insert(0, "index", np.r_[i, found])
        frame.insert(0, "role", ["query"] + ["neighbour"] * len(found))
        if names is not None or q_names is not None:
            frame.insert(
                3, "label", [(q_names or [""] * (i + 1))[i]] + [names[j] if names else "" for j in found]
            )
        result["table"] = frame
    else:
        rows = [("query", x_query)] + [("neighbours (nearest first)", x_found)]
        result["figure"] = plots.example_rows(rows, model.data_shape)
    return result


def anomaly_sweep(sweep_dir, out, rows, overwrite: bool = False, **kwargs) -> list[dict]:
    """`anomaly` for every run of a sweep (`rows`: sweep.json's rows, over beta or another
    setting, one or several seeds per value): each run's full result in OUT/<run folder's name>/
    (a beta-conditioned model's rows evaluated at their beta, in OUT/beta-B-conditioned/), and the
    ROC AUC of each score per run in OUT/anomaly_sweep.json (with `over_seeds`: each value's mean
    and sample standard deviation over its seeds), OUT/figures/auc_vs_<setting>.png and
    OUT/report.html. `kwargs` are `anomaly`'s inputs (background, signal, data, ...). Returns one
    row per run: setting, value, beta, seed, source and the AUC (with s.e.) of each score."""

    from vaekit import sweep as sw

    out = prepare_folder(Path(out), overwrite)
    setting = sw.setting_of(rows)
    table = []
    for r in rows:
        conditioned = r.get("source") == "conditioned"
        run = Path(r["run"]) if conditioned else Path(sweep_dir) / r["run"]
        value = sw.value_of(r)
        # each run its own folder: a value trained with several seeds has several runs
        sub = out / (sw.run_name(value, setting) + "-conditioned" if conditioned else Path(r["run"]).name)
        result = anomaly(run, sub, beta=r["beta"] if conditioned else None, **kwargs)
        row = {
            "setting": setting,
            "value": value,
            "beta": r["beta"],
            "seed": r.get("seed"),
            "source": r.get("source", "separate"),
            "run": str(run),
        }
        for name, score in result["scores"].items():
            row[name] = score["auc"]
            row[f"{name}_stderr"] = score["auc_stderr"]
        table.append(row)
    names = [n for n in ANOMALY_SCORES if n in table[0]]
    record = {
        "sweep": str(sweep_dir),
        "setting": setting,
        "rows": table,
        "over_seeds": sw.over_seeds(table, names),
    }
    io.write_json(out / "anomaly_sweep.json", record)
    titles = {n: SCORE_TITLES.get(n, n) for n in names}
    figure = plots.auc_by_setting(table, setting, titles)
    report.save_figure(figure, out / "figures" / f"auc_vs_{setting}.png")
    seeds = sw.has_seeds(table)
    head = "".join(f"<th>{html.escape(t)}</th>" for t in titles.values())
    body = "".join(
        f"<tr><td>{r['value']:g}</td>"
        + (f"<td>{r['seed']}</td>" if seeds else "")
        + f"<td>{html.escape(r['source'])}</td>"
        + "".join(f"<td>{r[n]:.4f} &plusmn; {r[n + '_stderr']:.4f}</td>" for n in names)
        + "</tr>"
        for r in table
    )
    report.write_html(
        out,
        f"vaekit anomaly per {setting}: {Path(str(sweep_dir)).name}",
        sw.over_seeds_table(table, names, "ROC AUC", titles)
        + f"<h2>Each run</h2><table><tr><th>{html.escape(setting)}</th>"
        + ("<th>seed</th>" if seeds else "")
        + f"<th>source</th>{head}</tr>{body}</table>"
        "<p class='small'>ROC AUC of each score, &plusmn; its standard error; each run's folder has "
        "its own report.</p>",
        report.sorted_pngs(out),
        explorable=True,
    )
    return table
