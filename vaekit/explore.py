"""`vaekit explore`: one self-contained HTML page (Bokeh, all JavaScript inline, no server, no
network) to move through what a run's latent space learned.

The page holds a scatter of posterior means over two latent dimensions (by default the two with
the largest average KL, Higgins et al. 2017's informative dimensions), coloured by label or by
a score; hovering a point shows its example (a thumbnail, or a table row's values in the user's
units with its identifiers) and its scores; moving over the plane shows the decoder's output at
that point (a precomputed grid, the other dimensions at the prior's mean); a click lists the
nearest neighbours in the full latent space; a beta-conditioned run or a sweep folder gets a
beta slider that moves every point between the betas. Every string from the user's data is
escaped before it reaches the page.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vaekit import evaluate, plots, runs
from vaekit import io as io_
from vaekit.errors import VaekitError, check

GRID = 25  # decodes per side of the decoded view's grid: fine enough to follow the mouse, 625 images
THUMB_LIMIT = 2000  # examples with a hover thumbnail: the page stays a few MB


@dataclass
class View:
    """One beta's latent picture: points (n, 2) on the shown dimensions, the full codes for
    neighbours, per-example scores and the decoded grid over the plane."""

    beta: float
    points: np.ndarray
    codes: np.ndarray
    scores: dict
    grid: list  # GRID * GRID decodes, row-major from the top left: data URIs, or rows of values
    x_range: tuple[float, float]
    y_range: tuple[float, float]
    dims: tuple[int, int] = (0, 1)
    name: str = ""  # what the slider says of this view: "beta = 4", "latent_dim = 3"
    traversals: str = ""  # HTML
    axes: tuple[str, str] = ("", "")  # the axes' names: "z3 (posterior mean)", "PC1 (62% of the variance)"


def _png(image: np.ndarray) -> str:
    """A (H, W) or (H, W, 3) image in [0, 1] as a PNG data URI."""
    from PIL import Image

    array = (np.clip(image, 0, 1) * 255).round().astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _stratified(labels, n: int, limit: int, seed: int = 0) -> np.ndarray:
    """Up to `limit` of n indices, the same share of every label (sorted)."""
    rng = np.random.default_rng(seed)
    if n <= limit:
        return np.arange(n)
    if labels is None:
        return np.sort(rng.choice(n, limit, replace=False))
    picked = []
    values = np.unique(labels)
    for v in values:
        where = np.flatnonzero(labels == v)
        take = max(1, round(limit * len(where) / n))
        picked.append(rng.choice(where, min(take, len(where)), replace=False))
    return np.sort(np.concatenate(picked))[:limit]


def _dims(model, kl: np.ndarray, dims) -> tuple[int, int]:
    """The two latent dimensions shown (0-based): the user's (`--dims`, numbered from 1 as the
    page names them, z1 first), else the two of largest average KL."""
    if dims is not None:
        check(
            model.latent_dim > 1,
            "--dims chooses two latent dimensions, and this run has one; leave --dims out.",
        )
        check(
            len(dims) == 2 and all(1 <= d <= model.latent_dim for d in dims) and dims[0] != dims[1],
            f"--dims takes two different latent dimensions in 1..{model.latent_dim} (z1 is 1), not "
            f"{' '.join(map(str, dims))}.",
        )
        return int(dims[0]) - 1, int(dims[1]) - 1
    if model.latent_dim == 1:
        return 0, 0
    order = np.argsort(-kl, kind="stable")
    return int(order[0]), int(order[1])


def _plane(model, means: np.ndarray, background: np.ndarray, kl: np.ndarray, dims, pca: bool):
    """The plane the page shows: (points (n, 2), a function from plane coordinates (m, 2) to
    latent codes (m, latent_dim), the axes' names, the two dimensions). The plane is two latent
    dimensions (`dims`, else the two of largest KL; the others at the prior's mean), or with `pca`
    the first two principal components of the background's posterior means (the other directions
    at those means' average: Pearson 1901)."""
    mean = model.prior.moments()[0].detach().reshape(-1).numpy()
    if pca:
        from sklearn.decomposition import PCA

        check(model.latent_dim > 1, "--pca needs two latent dimensions, and this run has one; leave it out.")
        check(
            dims is None,
            "Give --dims or --pca, not both: the plane is two latent dimensions or two components.",
        )
        fit = PCA(n_components=2, random_state=0).fit(means[background])
        shares = fit.explained_variance_ratio_
        names = tuple(
            f"PC{k + 1} of the posterior means ({shares[k]:.0%} of their variance)" for k in range(2)
        )
        return fit.transform(means), fit.inverse_transform, names, (0, 1)
    d = _dims(model, kl, dims)

    def to_codes(plane: np.ndarray) -> np.ndarray:
        z = np.repeat(mean.reshape(1, -1), len(plane), axis=0)
        z[:, d[0]] = plane[:, 0]
        if d[0] != d[1]:
            z[:, d[1]] = plane[:, 1]
        return z

    if d[0] == d[1]:  # a 1-D latent space: its one dimension against nothing
        return np.c_[means[:, 0], np.zeros(len(means))], to_codes, ("z1 (posterior mean)", "(1-D latent)"), d
    return means[:, list(d)], to_codes, tuple(f"z{k + 1} (posterior mean)" for k in d), d


def _view(model, batch, beta, dims, shape, decode_user, background, name, factors=None, pca=False) -> View:
    """One view: the codes of every shown example under (model, beta), the plane (chosen from the
    background rows, so a signal file does not move it; see `_plane`), the scores, the decoded
    grid and the traversals."""
    means, variances = evaluate.encode_means(model, batch, beta)
    kl = evaluate.per_dim_kl(
        means[background], variances[background], getattr(model.prior, "marginal_prior", None)
    )
    points, to_codes, axes, dims = _plane(model, means, background, kl, dims, pca)
    factor_mi = None
    if factors is not None:
        from vaekit import metrics

        values, names = factors
        ranked = np.stack([np.unique(c, return_inverse=True)[1] for c in values.T], axis=1)
        mi = metrics.discrete_mutual_information(metrics.histogram_discretize(means), ranked)
        factor_mi = (names, np.asarray(mi).reshape(model.latent_dim, len(names)))
    traversals = _traversals(model, beta, kl, shape, decode_user, factor_mi)
    s = evaluate.sampled_scores(model, batch, 1, beta=beta)
    scores = {k: s[k] for k in ("neg_elbo", "rate", "distortion") if k in s}
    lo, hi = points.min(axis=0), points.max(axis=0)
    pad = 0.05 * np.maximum(hi - lo, 1e-6)
    lo, hi = lo - pad, hi + pad
    ys = np.linspace(hi[1], lo[1], GRID)  # top row first
    xs = np.linspace(lo[0], hi[0], GRID)
    gy, gx = np.meshgrid(ys, xs, indexing="ij")
    z = torch.as_tensor(to_codes(np.c_[gx.reshape(-1), gy.reshape(-1)]), dtype=torch.float32)
    labels = torch.zeros(1, dtype=torch.long) if model.conditional else None
    with torch.no_grad():
        decoded = model.decode(z, beta, labels).mean
    grid = decode_user(decoded)
    return View(
        float(beta if beta is not None else model.beta),
        points,
        means,
        scores,
        grid,
        (float(lo[0]), float(hi[0])),
        (float(lo[1]), float(hi[1])),
        dims,
        name,
        traversals,
        axes,
    )


def _label_colours(labels: list[str]) -> tuple[list[str], str]:
    """A colour per label, and the legend's HTML (escaped; at most 40 names)."""
    from bokeh.palettes import Category10_10, Category20_20

    names = sorted(set(labels))
    palette = Category10_10 if len(names) <= 10 else Category20_20
    lookup = {n: palette[i % len(palette)] for i, n in enumerate(names)}
    legend = (
        "<div style='display:flex;flex-wrap:wrap;gap:10px;font-size:12px'>"
        + "".join(
            f"<span><span style='color:{lookup[n]}'>&#9679;</span> {html.escape(n)}</span>"
            for n in names[:40]
        )
        + (f"<span>and {len(names) - 40} more</span>" if len(names) > 40 else "")
        + "</div>"
    )
    return [lookup[v] for v in labels], legend


def _score_colours(values: np.ndarray, name: str) -> tuple[list[str], str]:
    """A Viridis colour per value (its 2nd to 98th percentile spans the map; values beyond are
    clipped to its ends, an infinite one to the top), and the colour bar's HTML naming `name`."""
    from bokeh.palettes import Viridis256

    v = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(v)
    lo, hi = np.percentile(v[finite], [2, 98]) if finite.any() else (0.0, 1.0)
    t = np.clip((np.nan_to_num(v, nan=hi, posinf=hi, neginf=lo) - lo) / max(hi - lo, 1e-12), 0, 1)
    stops = ",".join(Viridis256[i] for i in range(0, 256, 32)) + "," + Viridis256[255]
    legend = (
        "<div style='display:flex;align-items:center;gap:8px;font-size:12px'>"
        f"<span>{html.escape(name)}:</span><span>{lo:.4g}</span>"
        f"<span class='vk-bar' style='width:240px;height:12px;background:linear-gradient(to right,{stops})'>"
        f"</span><span>{hi:.4g}</span><span>(2nd to 98th percentile of the points shown; beyond it, the "
        "ends' colours)</span></div>"
    )
    return [Viridis256[int(round(x * 255))] for x in t], legend


def _rows_html(frame, ids=None) -> list[str]:
    """`_row_html` of every row of `frame` (a DataFrame), with its identifiers (`ids`, a
    DataFrame of the same rows) first."""
    return [
        _row_html(frame.columns, frame.iloc[i].tolist(), ids.iloc[i].to_dict() if ids is not None else None)
        for i in range(len(frame))
    ]


def _row_html(names, values, ids=None) -> str:
    """An escaped HTML table of one row's values (and identifiers first)."""
    cells = []
    for name, value in list((ids or {}).items()) + list(zip(names, values, strict=True)):
        shown = "" if value is None or (isinstance(value, float) and math.isnan(value)) else value
        if isinstance(shown, float):
            shown = f"{shown:.4g}"
        cells.append(f"<tr><th>{html.escape(str(name))}</th><td>{html.escape(str(shown))}</td></tr>")
    return "<table class='vk-row'>" + "".join(cells) + "</table>"


@dataclass
class Examples:
    """The examples a page shows: their batch, label text, hover content (a thumbnail URI, or a
    table row's escaped HTML; None until drawn), row names, which are signal, and the factors."""

    batch: object
    texts: list
    contents: list
    numbers: list
    signal: np.ndarray
    factors: np.ndarray | None = None
    factor_names: list | None = None


def _start(views: list) -> int:
    """The view the page opens on: the middle one of a slider's views (the only one otherwise)."""
    return len(views) // 2 if len(views) > 1 else 0


def _runs(run: Path):
    """[(model, beta or None, run folder)] per view, and the run whose data and scaling are read."""
    from vaekit import sweep

    check(run.exists(), f"{run} does not exist; give a run folder or a sweep folder.")
    if (run / "sweep.json").exists():
        rows = [r for r in sweep.read_rows(run) if r.get("source") == "separate"]
        check(bool(rows), f"{run} holds no separately trained runs yet; run the sweep first.")
        seeds = sweep.has_seeds(rows)  # a sweep over seeds: each seed its own view
        views = [
            (
                runs.load(run / r["run"]),
                None,
                run / r["run"],
                f"{sweep.setting_of(rows)} = {sweep.value_of(r):g}"
                + (f", seed {r['seed']}" if seeds else ""),
            )
            for r in rows
        ]
        return views, run / rows[0]["run"]
    check(
        (run / "config.yaml").exists(),
        f"{run} is neither a run folder (config.yaml) nor a sweep folder (sweep.json); give one.",
    )
    model = runs.load(run)
    if model.beta_conditioned:
        lo, hi = model.beta_range
        betas = np.geomspace(lo, hi, 7) if lo > 0 else np.linspace(lo, hi, 7)
        return [(model, float(b), run, f"beta = {b:.3g}") for b in betas], run
    return [(model, None, run, f"beta = {model.beta:g}")], run


def _file_examples(model, first, files, label_column, signal: bool) -> Examples:
    from vaekit import apply
    from vaekit.batch import Batch

    xs, labels, texts, contents, numbers = [], [], [], [], []
    for f in files:
        batch, raw = apply.read_for_run(model, f, label_column, first)
        n = len(batch)
        xs.append(torch.as_tensor(np.asarray(batch.x[:]), dtype=torch.float32))
        labels.append(batch.labels)
        name = Path(str(f)).name
        if raw.y is not None and not signal:
            texts += [raw.label_names[int(v)] if raw.label_names else str(v) for v in raw.y]
        else:
            texts += [f"signal: {name}" if signal else name] * n
        ids = raw.ids
        numbers += (
            [str(v) for v in ids.iloc[:, 0].tolist()]
            if ids is not None
            else [f"{name} row {i}" for i in range(n)]
        )
        contents += _rows_html(raw.frame, ids) if raw.frame is not None else [None] * n
    classes = torch.cat(labels) if all(v is not None for v in labels) else None
    return Examples(Batch(torch.cat(xs), classes), texts, contents, numbers, np.full(len(texts), signal))


def _run_examples(model, first) -> Examples:
    from vaekit.batch import Batch

    data = runs.load_data(first)
    index = data.test_idx
    labels = data.labels("test")
    texts = [data.label_name(int(v)) for v in labels] if labels is not None else ["test"] * len(index)
    frame, ids = data.extra.get("frame"), data.ids
    numbers = [str(i) for i in index]  # rows of the data set, as the other commands number them
    contents = [None] * len(index)
    if frame is not None:
        rows = frame.iloc[index]
        some = ids.iloc[index] if ids is not None else None
        numbers = [str(v) for v in some.iloc[:, 0].tolist()] if some is not None else numbers
        contents = _rows_html(rows, some)
    factors = np.asarray(data.factors)[index] if data.factors is not None else None
    return Examples(
        Batch(torch.as_tensor(np.asarray(data.x[index])), model.data_classes(data, "test")),
        texts,
        contents,
        numbers,
        np.zeros(len(index), dtype=bool),
        factors,
        list(data.factor_names) if data.factor_names else None,
    )


def _subset(ex: Examples, rows: np.ndarray) -> Examples:
    """The examples at `rows` (indices), every field alike."""
    return Examples(
        ex.batch[torch.as_tensor(rows)],
        [ex.texts[i] for i in rows],
        [ex.contents[i] for i in rows],
        [ex.numbers[i] for i in rows],
        ex.signal[rows],
        ex.factors[rows] if ex.factors is not None else None,
        ex.factor_names,
    )


def _joined(a: Examples, b: Examples) -> Examples:
    from vaekit.batch import Batch

    both = a.batch.labels is not None and b.batch.labels is not None
    return Examples(
        Batch(
            torch.cat([a.batch.x, b.batch.x]), torch.cat([a.batch.labels, b.batch.labels]) if both else None
        ),
        a.texts + b.texts,
        a.contents + b.contents,
        a.numbers + b.numbers,
        np.concatenate([a.signal, b.signal]),
    )


def _traversals(
    model, beta, kl: np.ndarray, shape, decode_user, factor_mi=None, rows: int = 8, steps: int = 9
):
    """HTML rows of decodes along each latent dimension (largest average KL first), from the
    prior's mean -2.5 to +2.5 sd (others at its mean), each labelled with its KL and, where
    factors exist, the factor it shares the most mutual information with."""
    mean, _ = model.prior.moments()
    low, high = model.prior.ranges(2.5)
    order = np.argsort(-kl, kind="stable")[:rows]
    labels = torch.zeros(1, dtype=torch.long) if model.conditional else None
    parts = ["<h3>Traversals (largest average KL first; the other dimensions at the prior's mean)</h3>"]
    for d in order:
        z = mean.detach().reshape(1, -1).repeat(steps, 1).clone()
        z[:, d] = torch.linspace(float(low[d]), float(high[d]), steps)
        with torch.no_grad():
            decoded = model.decode(z, beta, labels).mean
        cells = decode_user(decoded)
        said = f"z{d + 1}: KL {kl[d]:.2f} nats"
        if factor_mi is not None:
            names, mi = factor_mi
            j = int(np.argmax(mi[d]))
            said += f"; most informative of {html.escape(str(names[j]))} ({mi[d, j]:.2f} nats)"
        if len(shape) == 3:
            body = "".join(f"<img src='{c}' width='56' style='image-rendering: pixelated'>" for c in cells)
        else:
            body = "".join(f"<div style='font-size:10px'>{c}</div>" for c in cells[:: max(1, steps // 3)])
        parts.append(
            f"<div class='vk-traversal'><div>{said}</div><div style='display:flex;gap:2px'>{body}</div></div>"
        )
    return "".join(parts)


@dataclass
class Source:
    """What a page shows, resolved from the path given to `vaekit explore` (`source_of`)."""

    run: Path  # the run or sweep folder whose models are shown
    page: Path  # the page's default path
    files: list | None = None  # files shown instead of the run's test split
    signal: list | None = None  # files of signal examples (the anomaly view)
    label_column: str | None = None
    signal_label: str | None = None  # the value of the labels that marks signal rows in `files`
    saved: object = None  # a score output's DataFrame: one row per example of files[0]
    said: str = ""  # where the page's inputs came from (HTML)


def _recorded(value, record: Path, what: str) -> Path:
    """A path a saved output records (as typed where it was written), found from here: as
    recorded, else the output's own folder's parent when it is that folder (RUN/anomaly)."""
    path = Path(str(value))
    if path.exists():
        return path
    parent = record.parent.parent
    if path.name == parent.name and parent.exists():
        return parent
    raise VaekitError(
        f"{record} records the {what} {value}, which is not there from {Path.cwd()}; run vaekit explore from "
        "the folder the output was written in."
    )


def _anomaly_inputs(record: Path, result: dict) -> dict:
    """The inputs of an anomaly output (its anomaly.json): background and signal files, or one
    file with its label column and signal label."""
    if result.get("data") is not None:
        return dict(
            files=[str(_recorded(result["data"], record, "data file"))],
            label_column=result.get("label_column"),
            signal_label=str(result["signal_label"]),
        )
    return dict(
        files=[str(_recorded(result["background"], record, "background file"))],
        signal=[str(_recorded(result["signal"], record, "signal file"))],
    )


def source_of(path) -> Source:
    """Resolve what `vaekit explore PATH` shows. PATH is a run folder, a sweep folder, an anomaly
    output folder (anomaly.json: its run with its background and signal), an anomaly output of a
    sweep (anomaly_sweep.json), or a score output (scores.csv or .parquet with its .json sidecar:
    the scored file's examples, coloured by their saved scores). Raises `VaekitError` for a path
    that is none of these, or an output whose run or files are not there."""
    import pandas as pd

    path = Path(path)
    check(
        path.exists(),
        f"{path} does not exist; give a run folder, a sweep folder, or an anomaly or score output.",
    )
    if path.is_dir() and (path / "anomaly.json").exists():
        record = path / "anomaly.json"
        result = json.loads(record.read_text(encoding="utf-8"))
        auc = (result.get("scores") or {}).get("neg_elbo", {}).get("auc")
        said = (
            f" From the anomaly output <code>{html.escape(str(path))}</code>"
            + (f" (ROC AUC of -ELBO there: {auc:.3f})" if auc is not None else "")
            + "."
        )
        run = _recorded(result["run"], record, "run")
        return Source(run, path / "explorer.html", said=said, **_anomaly_inputs(record, result))
    if path.is_dir() and (path / "anomaly_sweep.json").exists():
        record = path / "anomaly_sweep.json"
        result = json.loads(record.read_text(encoding="utf-8"))
        parts = sorted(path.glob("*/anomaly.json"))
        check(bool(parts), f"{path} holds no per-run anomaly.json; run vaekit anomaly on the sweep again.")
        said = f" From the anomaly output <code>{html.escape(str(path))}</code> of a sweep."
        sweep_dir = _recorded(result["sweep"], record, "sweep")
        first = json.loads(parts[0].read_text(encoding="utf-8"))
        return Source(sweep_dir, path / "explorer.html", said=said, **_anomaly_inputs(parts[0], first))
    if path.is_file() and path.suffix in (".csv", ".parquet"):
        sidecar = path.with_suffix(".json")
        check(
            sidecar.exists(),
            f"{path} is a file; give a run folder, a sweep folder, or a score output with its sidecar "
            f"({sidecar.name}, written by vaekit score).",
        )
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
        check(
            {"run", "data"} <= set(meta),
            f"{sidecar} does not say which run and data its scores are of; give the score output "
            "vaekit score wrote.",
        )
        frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
        saved = frame[[c for c in frame.columns if c in evaluate.SCORE_MEANINGS]]
        check(saved.shape[1] > 0, f"{path} holds no score columns ({', '.join(evaluate.SCORE_MEANINGS)}).")
        said = f" Coloured by the scores saved in <code>{html.escape(str(path))}</code>."
        return Source(
            _recorded(meta["run"], sidecar, "run"),
            path.with_name(path.stem + "-explorer.html"),
            files=[str(_recorded(meta["data"], sidecar, "data file"))],
            saved=saved,
            said=said,
        )
    check(
        path.is_dir(), f"{path} is a file; give a run folder, a sweep folder, or an anomaly or score output."
    )
    return Source(path, path / "explorer.html")


@dataclass
class Shown:
    """What a page shows, read (`_read`): the views' models [(model, beta, folder, name)], the
    run whose data and scaling are read, the examples kept, their saved scores (a score
    output's), each example's thumbnail (images) and what the page says of its inputs."""

    entries: list
    first: Path
    examples: Examples
    saved: dict | None
    said: str
    images: object  # (n, H, W[, 3]) for images, else None

    @property
    def model(self):
        return self.entries[0][0]


def build(
    run,
    files=None,
    out=None,
    dims=None,
    max_points: int = THUMB_LIMIT,
    label_column=None,
    k: int = 8,
    signal=None,
    pca: bool = False,
) -> Path:
    """Write the explorer page (see the module docstring) and return its path.

    Args:
        run: a run folder, a beta-conditioned run, a sweep folder, an anomaly output folder or a
            score output file (see `source_of`), or a `Source`.
        files: the user's files to show instead of the run's test split, each in its own colour.
        out: the page (default: `explorer.html` in the run, sweep or anomaly folder; beside a
            score output, `<name>-explorer.html`).
        dims: the two latent dimensions of the plane, from 1 (default: the two of largest
            average KL).
        max_points: at most this many examples are shown (stratified by label), each with its
            thumbnail or row: the page's size grows with it.
        label_column: tables in `files`: the column that holds labels.
        k: neighbours listed on a click.
        signal: files of signal examples for the anomaly view: shown beside the background (the
            run's test split, or `files`) with a cut on -ELBO (a slider) and the examples above it
            listed with their identifiers, with the fraction of each group above the cut.
        pca: the plane of the first two principal components of the posterior means instead of
            two latent dimensions.
    Raises `VaekitError` for a path that is none of the above, a deterministic autoencoder's run,
    bad `dims`, or files given beside an output that names its own."""
    from bokeh.embed import file_html
    from bokeh.resources import INLINE

    from vaekit import report

    src = run if isinstance(run, Source) else source_of(run)
    if src.files is not None or src.signal is not None:
        check(
            not files and not signal and label_column is None,
            "This output names its own run and files; leave out --data, --signal and --label-column "
            "(or explore the run folder with the files you want).",
        )
    shown = _read(src, src.files or files, src.signal or signal, src.label_column or label_column, max_points)
    views = _views(shown, dims, pca)
    document = _document(src.run, shown, views, k, pca)
    page = file_html(document, resources=INLINE, title=f"vaekit explorer: {src.run.name}")
    out = Path(out) if out is not None else src.page
    out.parent.mkdir(parents=True, exist_ok=True)
    io_.write_text(out, page)
    if out.name == "explorer.html" and out.resolve() == src.page.resolve():
        report.link_explorer(out.parent)
    return out


def _read(src: Source, files, signal, label_column, max_points: int) -> Shown:
    """Read the examples a page shows: the run's test split or `files`, with `signal`'s beside
    them; at most `max_points`, stratified by label (signal rows keep up to half)."""
    from vaekit import apply

    entries, first = _runs(src.run)
    model = entries[0][0]
    check(
        model.kind == "vae", f"{src.run} is a deterministic autoencoder: it has no rate or prior to explore."
    )
    ex = _file_examples(model, first, files, label_column, False) if files else _run_examples(model, first)
    if src.signal_label is not None:  # one file of both: its signal label's rows are signal
        ex.signal = np.asarray(ex.texts) == src.signal_label
    saved = None
    if src.saved is not None:
        check(
            len(src.saved) == len(ex.texts),
            f"The score output has {len(src.saved)} rows and {files[0]} now reads as "
            f"{len(ex.texts)} examples; score the file again.",
        )
        saved = {c: src.saved[c].to_numpy(dtype=np.float64) for c in src.saved.columns}
    said = src.said
    if signal:
        if not files and set(ex.texts) == {"test"}:
            ex.texts = ["background (test split)"] * len(ex.texts)
        if files and len(files) == 1 and apply.is_training_file(first, files[0]):
            # as vaekit anomaly: the training rows were fitted and score low; only the test split
            ex = _subset(ex, np.asarray(runs.load_data(first).test_idx))
            ex.texts = [f"{t} (test split)" for t in ex.texts]
            said += (
                f" The background file is the one the run trained on: only its {len(ex.texts)} test-split "
                "rows are shown (the training rows were fitted, and their scores are biased low)."
            )
        ex = _joined(ex, _file_examples(model, first, signal, label_column, True))
    # signal rows are never crowded out by the background: up to half of the points are theirs
    sig = np.flatnonzero(ex.signal)
    sig = sig[_stratified(np.asarray(ex.texts)[sig], len(sig), max(1, max_points // 2))] if len(sig) else sig
    bkg = np.flatnonzero(~ex.signal)
    bkg = bkg[_stratified(np.asarray(ex.texts)[bkg], len(bkg), max(1, max_points - len(sig)))]
    keep = np.concatenate([bkg, sig])
    kept = _subset(ex, keep)
    kept.factor_names = ex.factor_names or (
        [f"factor_{j}" for j in range(kept.factors.shape[1])] if kept.factors is not None else None
    )
    shape = model.data_shape
    images = plots.to_images(model.unscale_output(kept.batch.x).numpy(), shape) if len(shape) == 3 else None
    if images is not None:
        kept.contents = [_png(im) for im in images]
    saved = {c: v[keep] for c, v in saved.items()} if saved is not None else None
    return Shown(entries, first, kept, saved, said, images)


def _views(shown: Shown, dims, pca: bool) -> list[View]:
    """One `View` per model or beta of the page, on the same examples."""
    model, first = shown.model, shown.first
    shape = model.data_shape

    def decode_user(decoded):
        if len(shape) == 3:
            return [_png(im) for im in plots.to_images(model.unscale_output(decoded).numpy(), shape)]
        frame = runs.user_frame(first, model, decoded)
        return [_row_html(frame.columns, frame.iloc[i].tolist()) for i in range(len(frame))]

    ex = shown.examples
    factors = (ex.factors, ex.factor_names) if ex.factors is not None else None
    return [
        _view(m, ex.batch, beta, dims, shape, decode_user, ~ex.signal, name, factors, pca)
        for m, beta, _, name in shown.entries
    ]


def _colourings(shown: Shown, views: list[View]):
    """Every colouring with its legend (a label's swatches, a score's colour bar): (colours,
    legends) shared by the views, the per-view ones (the scores), and the options in order."""
    ex = shown.examples
    colours, legends = {}, {}
    colours["label"], legends["label"] = _label_colours(ex.texts)
    score_names = {"neg_elbo": "-ELBO (nats)", "rate": "rate (nats)", "distortion": "distortion (nats)"}
    per_view = [
        {score_names[k]: _score_colours(v, score_names[k]) for k, v in view.scores.items()} for view in views
    ]
    for name, values in (shown.saved or {}).items():
        colours[f"saved {name}"], legends[f"saved {name}"] = _score_colours(values, f"saved {name}")
    for j, name in enumerate(ex.factor_names or ()):
        colours[f"factor: {name}"], legends[f"factor: {name}"] = _score_colours(
            ex.factors[:, j], f"factor {name}"
        )
    start = _start(views)
    options = ["label", *per_view[start], *(name for name in colours if name != "label")]
    return colours, legends, per_view, options


def _document(run: Path, shown: Shown, views: list[View], k: int, pca: bool):
    """The page as a Bokeh document: the scatter with its hover, decoded, neighbour, colour,
    slider and cut views, and their callbacks."""
    from bokeh.document import Document
    from bokeh.layouts import column, row
    from bokeh.models import ColumnDataSource, CustomJS, Div, HoverTool, Select, Slider
    from bokeh.plotting import figure

    ex, model, images = shown.examples, shown.model, shown.images
    texts, is_signal = ex.texts, ex.signal
    start = _start(views)
    v0 = views[start]
    colours, legends, per_view, options = _colourings(shown, views)
    traversals = Div(text=v0.traversals, width=900, name="traversals")
    more = [""] * len(texts)
    if shown.saved is not None:
        more = [
            "<div>saved: "
            + ", ".join(f"{html.escape(c)} {v[i]:.4g}" for c, v in shown.saved.items())
            + "</div>"
            for i in range(len(texts))
        ]
    source = ColumnDataSource(
        {
            "x": v0.points[:, 0].tolist(),
            "y": v0.points[:, 1].tolist(),
            "colour": colours["label"],
            "label": texts,
            "content": ex.contents,
            "neg_elbo": v0.scores.get("neg_elbo", np.zeros(len(texts))).tolist(),
            "index": ex.numbers,
            "size": [7] * len(texts),
            "line": [NO_LINE] * len(texts),
            "more": more,
        }
    )

    def title(view: View) -> str:
        return f"{run.name}: {len(texts):,} examples in latent space, {view.name}"

    p = figure(
        width=560,
        height=560,
        tools="pan,wheel_zoom,box_select,tap,reset",
        x_range=v0.x_range,
        y_range=v0.y_range,
        x_axis_label=v0.axes[0],
        y_axis_label=v0.axes[1],
        title=title(v0),
        name="scatter",
    )
    points = p.scatter(
        "x",
        "y",
        source=source,
        color="colour",
        size="size",
        alpha=0.75,
        line_color="line",
        line_width=2,
        name="points",
    )
    points.nonselection_glyph.fill_alpha = 0.35  # a click's neighbours stay visible around it
    points.nonselection_glyph.line_alpha = 1.0
    # one example at a time, the nearest under the pointer, in a panel beside the plot (a tooltip
    # stacks every point under the pointer: dozens where the points crowd)
    hovered = Div(text="<i>hover a point: its example appears here</i>", width=300, name="hovered")
    p.add_tools(
        HoverTool(
            tooltips=None,
            renderers=[points],
            callback=CustomJS(
                args={"panel": hovered, "source": source, "plot": p, "images": images is not None},
                code=HOVER_JS,
            ),
            name="hover",
        )
    )
    side = 240
    decoded = Div(
        text="<i>move over the plane: the decoder's output there appears here</i>",
        width=side + 40,
        name="decoded",
    )
    neighbours = Div(
        text="<i>click a point: its nearest neighbours in latent space appear here, outlined on the plot</i>",
        width=900,
        name="neighbours",
    )
    p.tags = [_payload(views, per_view, title, images is not None)]  # once; callbacks read it here
    slider = None
    if len(views) > 1:
        slider = Slider(
            start=0,
            end=len(views) - 1,
            value=start,
            step=1,
            show_value=False,
            title=f"{v0.name} (view {start + 1} of {len(views)})",
            name="beta",
            width=400,
        )
    view_js = "const data = plot.tags[0]; const vi = slider ? slider.value : 0;"
    p.js_on_event(
        "mousemove",
        CustomJS(args={"div": decoded, "plot": p, "slider": slider, "side": side}, code=view_js + DECODED_JS),
    )
    source.selected.js_on_change(
        "indices",
        CustomJS(
            args={"div": neighbours, "plot": p, "slider": slider, "source": source, "k": k},
            code=view_js + NEIGHBOURS_JS,
        ),
    )
    legend = Div(text=legends["label"], width=900, name="legend")
    colour = Select(title="colour by", value="label", options=options, name="colour")
    colour.js_on_change(
        "value",
        CustomJS(
            args={
                "source": source,
                "colours": colours,
                "legends": legends,
                "legend": legend,
                "plot": p,
                "slider": slider,
            },
            code=view_js + COLOUR_JS,
        ),
    )
    controls = [colour]
    below = [neighbours]
    cut, listed = _cut(views, is_signal)
    recut = {"source": source, "signal": is_signal.tolist(), "listed": listed, "cut": cut}
    if cut is not None:
        below = [cut, listed, *below]
        cut.js_on_change("value", CustomJS(args=recut, code=RECUT_JS))
    if slider is not None:
        slider.js_on_change(
            "value",
            CustomJS(
                args={
                    "source": source,
                    "plot": p,
                    "colour": colour,
                    "legend": legend,
                    "traversals": traversals,
                    **recut,
                },
                code=SLIDER_JS + (RECUT_JS if cut is not None else ""),
            ),
        )
        controls.append(slider)
    condition = (
        f" A label-conditional model: the decoded view and the traversals are for its first class, "
        f"{html.escape(str(model.classes[0]))}."
        if model.conditional
        else ""
    )
    held = "the posterior means' average" if pca else "the prior's mean"
    style = Div(
        text="<style>.vk-row th{text-align:left;padding-right:8px}.vk-row{font-size:11px}"
        ".vk-above td,.vk-above th{padding:1px 10px 1px 0;text-align:left}</style>"
        f"<p>vaekit explorer for <code>{html.escape(str(run))}</code>: {len(views)} "
        f"view{'s' if len(views) > 1 else ''}.{shown.said} The decoded view is a {GRID}x{GRID} grid of "
        f"decodes over the plane, the other latent directions at {held}.{condition}</p>",
        width=900,
    )
    layout = column(style, row(*controls), legend, row(p, column(hovered, decoded)), *below, traversals)
    document = Document()
    document.add_root(layout)
    if cut is not None:  # the page opens with the starting cut applied
        document.js_on_event("document_ready", CustomJS(args=recut, code=RECUT_JS))
    return document


def _payload(views: list[View], per_view: list[dict], title, images: bool) -> dict:
    """What the page's callbacks read, held once (the figure's tags): each view's points, codes,
    decoded grid, ranges, scores, colourings and traversals."""
    n = len(views[0].points)
    return {
        "grid": GRID,
        "images": images,
        "views": [
            {
                "name": v.name,
                "title": title(v),
                "xlabel": v.axes[0],
                "ylabel": v.axes[1],
                "x": v.points[:, 0].tolist(),
                "y": v.points[:, 1].tolist(),
                "codes": np.round(v.codes, 5).tolist(),
                "cells": v.grid,
                "xr": v.x_range,
                "yr": v.y_range,
                "neg_elbo": v.scores.get("neg_elbo", np.zeros(n)).tolist(),
                "colours": {name: c for name, (c, _) in view_colours.items()},
                "legends": {name: lg for name, (_, lg) in view_colours.items()},
                "traversals": v.traversals,
            }
            for v, view_colours in zip(views, per_view, strict=True)
        ],
    }


def _cut(views: list[View], is_signal: np.ndarray):
    """The anomaly view's -ELBO cut (a slider opening at the background's 99th percentile) and
    the list of the examples above it; (None, None) without signal rows."""
    from bokeh.models import Div, Slider

    if not is_signal.any():
        return None, None
    start = _start(views)
    score = np.asarray(views[start].scores["neg_elbo"])
    background = score[~is_signal]
    cut0 = float(np.quantile(background, 0.99)) if len(background) else float(np.median(score))
    lo_s = min(float(np.min(v.scores["neg_elbo"])) for v in views)
    hi_s = max(float(np.max(v.scores["neg_elbo"])) for v in views)
    listed = Div(text="", width=900, name="above")
    cut = Slider(
        start=lo_s,
        end=hi_s,
        value=min(max(cut0, lo_s), hi_s),
        step=(hi_s - lo_s) / 500 or 1.0,
        title="-ELBO cut (nats; it opens at the background's 99th percentile): the examples above it "
        "are enlarged and listed",
        name="cut",
        width=600,
    )
    return cut, listed


# ----------------------------------------------------------------------------- the page's JavaScript

# HTML-escapes a string the page shows (labels and identifiers come from the user's data)
ESC_JS = """
const codes = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"};
const esc = s => String(s).replace(/[&<>"']/g, ch => codes[ch]);
"""

HOVER_JS = (
    ESC_JS
    + """
const hits = cb_data.index.indices;
if (!hits.length) { return; }
const g = cb_data.geometry, xs = source.data.x, ys = source.data.y;
const wx = plot.x_range.end - plot.x_range.start, wy = plot.y_range.end - plot.y_range.start;
let best = hits[0], bd = Infinity;
for (const j of hits) {
  const d = ((xs[j] - g.x) / wx) ** 2 + ((ys[j] - g.y) / wy) ** 2;
  if (d < bd) { bd = d; best = j; }
}
const c = source.data.content[best];
const body = images ? `<img src='${c}' width='120' style='image-rendering: pixelated'>` : c;
const more = hits.length > 1 ? `<div>(the nearest of ${hits.length} points under the pointer)</div>` : "";
panel.text = `<div class='vk-hover'>${body}<div>${esc(source.data.label[best])}</div>`
  + `<div>-ELBO ${source.data.neg_elbo[best].toFixed(1)} nats</div>${source.data.more[best]}`
  + `<div>row ${esc(source.data.index[best])}</div>${more}</div>`;
"""
)

DECODED_JS = """
const v = data.views[vi], g = data.grid;
const fx = (cb_obj.x - v.xr[0]) / (v.xr[1] - v.xr[0]), fy = (v.yr[1] - cb_obj.y) / (v.yr[1] - v.yr[0]);
const at = `(${cb_obj.x.toFixed(2)}, ${cb_obj.y.toFixed(2)})`;
if (fx < -0.02 || fx > 1.02 || fy < -0.02 || fy > 1.02) {
  div.text = `<div>${at} is outside the decoded grid (it covers the points' range); reset the view</div>`;
  return;
}
const col = Math.min(g - 1, Math.max(0, Math.round(fx * (g - 1))));
const row = Math.min(g - 1, Math.max(0, Math.round(fy * (g - 1))));
const cell = v.cells[row * g + col];
const pixelated = "style='image-rendering: pixelated'";
div.text = data.images
  ? `<div>decoded at ${at}</div><img class='vk-decoded' src='${cell}' width='${side}' ${pixelated}>`
  : `<div>decoded at ${at}</div>${cell}`;
"""

NO_LINE = "rgba(0, 0, 0, 0)"  # a point's outline when it is not a click's query or neighbour

NEIGHBOURS_JS = (
    ESC_JS
    + f"const NO_LINE = '{NO_LINE}';"
    + """
const sel = source.selected.indices;
if (sel.length == 0) { return; }
const i = sel[0], v = data.views[vi], c = v.codes;
const d = c.map((row, j) => [Math.hypot(...row.map((a, t) => a - c[i][t])), j]);
d.sort((a, b) => a[0] - b[0]);
const found = d.filter(p => p[1] != i).slice(0, k);
const line = source.data.line.map(() => NO_LINE);
line[i] = "#d62728";
for (const [, j] of found) { line[j] = "#000000"; }
source.data.line = line;
source.change.emit();
const show = j => data.images
  ? `<img src='${source.data.content[j]}' width='64' style='image-rendering: pixelated'>`
  : source.data.content[j];
let html = `<div><b>row ${esc(source.data.index[i])}</b> (${esc(source.data.label[i])}, `
  + `outlined red) and its `
  + `${found.length} nearest neighbours (outlined black; distance in the full latent space)</div>`
  + "<div style='display:flex;gap:8px;flex-wrap:wrap'>";
html += `<div>${show(i)}<div>query</div></div>`;
for (const [dist, j] of found) {
  html += `<div>${show(j)}<div>${esc(source.data.label[j])}, distance ${dist.toFixed(2)}</div></div>`;
}
div.text = html + "</div>";
"""
)

COLOUR_JS = """
const chosen = cb_obj.value;
source.data.colour = data.views[vi].colours[chosen] ?? colours[chosen];
legend.text = data.views[vi].legends[chosen] ?? legends[chosen];
source.change.emit();
"""

SLIDER_JS = """
const data = plot.tags[0], i = cb_obj.value, v = data.views[i];
source.data.x = v.x; source.data.y = v.y; source.data.neg_elbo = v.neg_elbo;
if (v.colours[colour.value]) {
  source.data.colour = v.colours[colour.value]; legend.text = v.legends[colour.value];
}
source.change.emit();
cb_obj.title = `${v.name} (view ${i + 1} of ${data.views.length})`;
plot.title.text = v.title;
plot.below[0].axis_label = v.xlabel; plot.left[0].axis_label = v.ylabel;
plot.x_range.start = v.xr[0]; plot.x_range.end = v.xr[1];
plot.y_range.start = v.yr[0]; plot.y_range.end = v.yr[1];
traversals.text = v.traversals;
"""

RECUT_JS = (
    """
{"""
    + ESC_JS
    + """
const value = cut.value, sc = source.data.neg_elbo, n = sc.length;
let above = [], sig = 0, bkg = 0, sigN = 0, bkgN = 0;
const size = [];
for (let i = 0; i < n; i++) {
  const s = signal[i];
  if (s) { sigN++; } else { bkgN++; }
  if (sc[i] > value) { above.push(i); if (s) { sig++; } else { bkg++; } }
  size.push(sc[i] > value ? 12 : 5);
}
source.data.size = size;
source.change.emit();
above.sort((a, b) => sc[b] - sc[a]);
let html = `<div><b>${above.length}</b> examples above the cut: ${sig} of ${sigN} signal`
  + ` (${sigN ? (100 * sig / sigN).toFixed(1) : 0}%), ${bkg} of ${bkgN} background`
  + ` (${bkgN ? (100 * bkg / bkgN).toFixed(1) : 0}%)</div><table class='vk-above'><tr><th>row</th>`
  + "<th>group</th><th>-ELBO</th></tr>";
for (const i of above.slice(0, 50)) {
  html += `<tr><td>${esc(source.data.index[i])}</td><td>${esc(source.data.label[i])}</td>`
    + `<td>${sc[i].toFixed(2)}</td></tr>`;
}
listed.text = html + "</table>" + (above.length > 50 ? `<div>and ${above.length - 50} more</div>` : "");
}
"""
)
