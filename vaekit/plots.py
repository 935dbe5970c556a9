"""Figures: each function returns a matplotlib Figure (for notebooks); `report` saves them."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from vaekit import evaluate  # noqa: E402
from vaekit.columns import label_key  # noqa: E402
from vaekit.model import VAE, describe_prior  # noqa: E402


def to_images(x: np.ndarray, shape) -> np.ndarray | None:
    """(n, *shape) in [0, 1]-ish -> (n, H, W) or (n, H, W, 3) for imshow; None for non-images."""
    if len(shape) != 3:
        return None
    x = np.asarray(x).reshape(-1, *shape)
    x = np.clip(x, 0, 1) if x.min() >= -0.05 and x.max() <= 1.05 else _minmax(x)
    return x[:, 0] if shape[0] == 1 else x.transpose(0, 2, 3, 1)[..., :3]


def _minmax(x):
    lo, hi = x.min(), x.max()
    return (x - lo) / (hi - lo + 1e-12)


def _grid(ax, images, rows, cols, title=None):
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=9)
    h, w = images.shape[1:3]
    colour = images.ndim == 4
    canvas = np.ones((rows * (h + 1), cols * (w + 1)) + ((3,) if colour else ()))
    for i, im in enumerate(images[: rows * cols]):
        r, c = divmod(i, cols)
        canvas[r * (h + 1) : r * (h + 1) + h, c * (w + 1) : c * (w + 1) + w] = im
    ax.imshow(canvas, cmap=None if colour else "gray", vmin=0, vmax=1, interpolation="nearest")


def _curves(ax, values, title):
    """Non-image data (spectra, table rows): one line per example."""
    ax.set_title(title, fontsize=9)
    for v in values:
        ax.plot(np.asarray(v).reshape(-1), lw=0.8)
    ax.set_xlabel("feature")


def reconstructions(model: VAE, data, n: int = 8) -> plt.Figure:
    """Test inputs (top row) and their reconstructions at the posterior mean (bottom row)."""
    index = data.preview_index(n)
    x = data.x[index]
    with torch.no_grad():
        recon = model.reconstruct(torch.as_tensor(x), labels=model.data_classes(data, index=index)).numpy()
    schema = getattr(model.likelihood, "schema", None)
    if schema is not None:
        index = data.test_idx[:500]
        with torch.no_grad():
            recon = model.reconstruct(
                torch.as_tensor(data.x[index]), labels=model.data_classes(data, index=index)
            ).numpy()
        return column_reconstructions(schema, data.extra["frame"].iloc[index], schema.to_user(recon))
    images = to_images(np.concatenate([x, recon]), data.shape)
    if images is None:
        fig, axes = plt.subplots(1, 2, figsize=(9, 3))
        _curves(axes[0], x[:4], "inputs")
        _curves(axes[1], recon[:4], "reconstructions (posterior mean)")
        return fig
    fig, ax = plt.subplots(figsize=(n * 0.9, 2.2))
    _grid(ax, images, 2, n, "top: test inputs, bottom: reconstructions (decoder mean at q's mean)")
    return fig


def prior_text(model: VAE) -> str:
    """The model's prior in words for figure titles, e.g. "N(0, I)" or "mog (10 components)"."""
    return describe_prior(model.prior)


def samples(model: VAE, n: int = 64, seed: int = 0, beta=None, labels=None, mean: bool = True) -> plt.Figure:
    """Decoder means (`mean`, else draws of p(x|z)) at z drawn from the prior; for a
    label-conditional model without `labels` (one class index, or (n,)), one row per class (up
    to 10 classes, 8 samples each)."""
    if model.conditional and labels is None:
        per_class = max(1, math.ceil(n / min(model.n_classes, 10)))
        return samples_per_class(model, per_class=per_class, seed=seed, beta=beta)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        x = model.sample(n, beta, labels=labels, mean=mean).numpy()
    what = "decoder mean" if mean else "x ~ p(x|z)"
    schema = getattr(model.likelihood, "schema", None)
    if schema is not None:  # a typed table: each column's draws in the user's units
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            drawn = model.sample(max(n, 2000), beta, labels=labels, mean=False).numpy()
        return column_marginals(
            schema, [(f"x ~ p(x|z), z ~ {prior_text(model)}", schema.to_user(drawn))], "samples per column"
        )
    images = to_images(x, model.data_shape)
    if images is None:
        fig, ax = plt.subplots(figsize=(6, 3))
        _curves(ax, x[:8], f"samples from the prior ({what})")
        return fig
    cols = int(math.ceil(math.sqrt(n)))
    fig, ax = plt.subplots(figsize=(cols * 0.7, cols * 0.7))
    _grid(ax, images, int(math.ceil(n / cols)), cols, f"samples: {what} at z ~ {prior_text(model)}")
    return fig


def samples_per_class(
    model: VAE, per_class: int = 8, seed: int = 0, max_classes: int = 10, beta=None
) -> plt.Figure:
    """A label-conditional model's samples: one row per class, `per_class` decoder means each
    (z from the prior, the same z in every row, so a column shows one z across classes)."""
    classes = list(range(min(model.n_classes, max_classes)))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        z = model.prior.sample(per_class)
    with torch.no_grad():
        rows = [model.decode(z, beta, torch.full((per_class,), c)).mean.numpy() for c in classes]
    names = [model.classes[c] for c in classes]
    return _labelled_rows(
        rows,
        model.data_shape,
        names,
        [f"samples of class {name}" for name in names],
        f"samples per class: decoder mean at z ~ {prior_text(model)}",
        width=per_class * 0.8 + 0.8,
        curve_height=1.5,
    )


# a 2-D N(0, I) holds 1 - exp(-2) = 86.5% of its mass within 2 sd: the contour drawn for any prior
PRIOR_CONTOUR_MASS = 1 - math.exp(-2)


def prior_contour(ax, model: VAE) -> None:
    """Draw the 2-D prior's own contour enclosing 86.5% of its mass (for N(0, I): the circle of
    radius 2, 2 sd); nothing for other latent sizes or an autoencoder."""
    if model.latent_dim != 2 or model.kind != "vae":
        return
    prior = model.prior
    if prior.name == "normal":
        ax.add_patch(plt.Circle((0, 0), 2, fill=False, ls="--", color="grey", lw=0.8))
        return
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        level = float(torch.quantile(prior.log_prob(prior.sample(20000)), 1 - PRIOR_CONTOUR_MASS))
        (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
        gx, gy = torch.meshgrid(torch.linspace(x0, x1, 200), torch.linspace(y0, y1, 200), indexing="xy")
        density = prior.log_prob(torch.stack([gx, gy], -1).reshape(-1, 2)).reshape(200, 200)
    ax.contour(
        gx.numpy(),
        gy.numpy(),
        density.numpy(),
        levels=[level],
        colors="grey",
        linestyles="--",
        linewidths=0.8,
    )


def project_2d(codes: np.ndarray) -> tuple[np.ndarray, tuple[str, str]]:
    """The codes themselves if 2-D, else their first two principal components."""
    if codes.shape[1] == 1:
        return np.c_[codes, np.zeros(len(codes))], ("z1", "(1-D latent)")
    if codes.shape[1] == 2:
        return codes, ("z1", "z2")
    from sklearn.decomposition import PCA  # imported here: scikit-learn adds ~2 s to every command's start

    pca = PCA(n_components=2).fit(codes)
    ratio = pca.explained_variance_ratio_
    return pca.transform(codes), (
        f"principal component 1 ({ratio[0]:.0%} of variance)",
        f"principal component 2 ({ratio[1]:.0%} of variance)",
    )


def scatter_codes(ax, codes, labels, data, legend=True, s=4):
    """Scatter codes (n, latent_dim) on `ax` (2-D as is, 1-D against 0, else the first two PCs),
    one colour per integer label (n,) named by `data.label_name` (a legend if `legend`), or one
    colour when `labels` is None; `s` is the marker size. Returns the plotted points (n, 2)."""
    points, (xl, yl) = project_2d(codes)
    if labels is None:
        ax.scatter(points[:, 0], points[:, 1], s=s, alpha=0.6, lw=0)
    else:
        cmap = plt.get_cmap("tab10" if len(np.unique(labels)) <= 10 else "tab20")
        for i, label in enumerate(np.unique(labels)):
            sel = labels == label
            ax.scatter(
                points[sel, 0],
                points[sel, 1],
                s=s,
                alpha=0.7,
                lw=0,
                color=cmap(i % cmap.N),
                label=data.label_name(int(label)),
            )
        if legend:
            ax.legend(markerscale=3, fontsize=7, loc="best", framealpha=0.7)
    ax.set_xlabel(xl, fontsize=8)
    ax.set_ylabel(yl, fontsize=8)
    if codes.shape[1] == 2:
        ax.set_aspect("equal", adjustable="datalim")
    return points


def latent_space(model: VAE, data, beta=None) -> plt.Figure:
    """The test set's posterior means, coloured by label (2-D, or the first two PCs)."""
    means, _ = evaluate.encode_means(model, data.x_test, beta, labels=model.data_classes(data, "test"))
    fig, ax = plt.subplots(figsize=(5.5, 5))
    scatter_codes(ax, means, data.labels("test"), data)
    prior_contour(ax, model)
    contour = " (dashed: the prior's 86% contour)" if model.latent_dim == 2 and model.kind == "vae" else ""
    ax.set_title(
        f"latent space (test set posterior means, latent_dim {model.latent_dim}){contour}", fontsize=9
    )
    return fig


def traversal_rows(model: VAE, data, steps: int = 9, limit: float = 2.5, order=None):
    """The decoded traversals behind `traversals`: (order (dims,), low, high (latent_dim,) the
    swept ranges, rows: one (steps, *data_shape) array of decoder means per dimension in `order`,
    in model units). Dimensions default to the 10 with the largest KL to the prior's marginal."""
    index = data.preview_index(500)
    labels = model.data_classes(data, index=index)
    means, variances = evaluate.encode_means(model, data.x[index], labels=labels)
    if order is None:
        kl = evaluate.per_dim_kl(means, variances, model.prior) if model.kind == "vae" else np.var(means, 0)
        order = np.argsort(-kl)[: min(model.latent_dim, 10)]
    base = torch.as_tensor(means[0])
    low, high = model.prior.ranges(limit) if model.kind == "vae" else (base - limit, base + limit)
    rows = []
    for d in order:
        z = base.repeat(steps, 1)
        z[:, d] = torch.linspace(float(low[d]), float(high[d]), steps)
        with torch.no_grad():
            rows.append(model.decode(z, labels=None if labels is None else labels[:1]).mean.numpy())
    return order, low, high, rows


def _free_name(name: str, taken: set) -> str:
    """`name`, or `name` with leading underscores, whichever no column of the data already has."""
    while name in taken:
        name = "_" + name
    return name


def traversal_table(model: VAE, data, steps: int = 9, limit: float = 2.5):
    """A table run's traversals as a table: one row per (latent dimension, step), the swept z
    value, and the decoded columns in the data's units (a pandas DataFrame)."""
    import pandas as pd

    order, low, high, rows = traversal_rows(model, data, steps, limit)
    frames = []
    taken = set(data.column_names or ())
    value_name, dim_name = _free_name("z", taken), _free_name("latent", taken)
    for d, decoded in zip(order, rows, strict=True):
        if data.schema is not None:  # typed columns: labels and whole numbers as the user writes them
            frame = data.schema.to_user(decoded.reshape(steps, -1))
        else:
            frame = pd.DataFrame(data.to_user_units(decoded).reshape(steps, -1), columns=data.column_names)
        frame.insert(0, value_name, np.linspace(float(low[d]), float(high[d]), steps))
        frame.insert(0, dim_name, f"z{d + 1}")
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def traversals(model: VAE, data, steps: int = 9, limit: float = 2.5, order=None, names=None) -> plt.Figure:
    """One row per latent dimension (sorted by its KL to the prior's marginal, largest first):
    decode the mean code of a test example with that dimension swept over the prior's mean
    -/+ `limit` sd (for N(0, I): [-limit, limit]), the others held."""
    order, low, high, rows = traversal_rows(model, data, steps, limit, order)
    schema = getattr(model.likelihood, "schema", None)
    if schema is not None:
        return column_traversals(schema, order, low, high, rows, names)
    if model.kind != "vae":
        span = f"over the code -/+ {limit}"
    elif model.prior.name == "normal":
        span = f"from {-limit} to {limit}"
    else:
        span = f"over the prior's mean -/+ {limit} sd"
    return _labelled_rows(
        rows,
        model.data_shape,
        [f"z{d + 1}" + (f" → {names[i]}" if names is not None else "") for i, d in enumerate(order)],
        [f"z{d + 1} from {float(low[d]):.3g} to {float(high[d]):.3g}" for d in order],
        f"traversals: rows z_j {span}, by KL",
        width=steps * 0.8,
        curve_height=1.6,
    )


def _labelled_rows(rows, shape, row_labels, curve_titles, title, width, curve_height) -> plt.Figure:
    """Rows of decoded examples (each (cols, *shape)): an image grid with each row's label at its
    left, or, for data that are not images, one panel of curves per row with its title."""
    images = to_images(np.concatenate(rows), shape)
    if images is None:
        fig, axes = plt.subplots(len(rows), 1, figsize=(6, curve_height * len(rows)), squeeze=False)
        for ax, r, curve_title in zip(axes[:, 0], rows, curve_titles, strict=True):
            _curves(ax, r, curve_title)
        fig.tight_layout()
        return fig
    fig, ax = plt.subplots(figsize=(width, len(rows) * 0.8 + 0.6))
    _grid(ax, images, len(rows), len(rows[0]), title)
    h = images.shape[1] + 1
    for i, label in enumerate(row_labels):
        ax.text(-2, i * h + h / 2, label, ha="right", va="center", fontsize=7)
    return fig


def curve_names(history: list[dict]) -> list[str]:
    """The logged terms of a run, in the order training logged them: "loss" first, then each
    term the objective named (from the train_<name> / test_<name> keys; the derived test ELBO
    is not repeated)."""
    names: list[str] = []
    for row in history:
        for key, value in row.items():
            for split in ("train_", "test_"):
                name = key[len(split) :]
                if key.startswith(split) and name != "elbo" and name not in names and value is not None:
                    names.append(name)
    return sorted(names, key=lambda n: n != "loss")


def training_curves(history: list[dict]) -> plt.Figure:
    """Every logged term per epoch (nats unless its name says otherwise), train and test: loss,
    distortion, rate and whatever further terms the objective names; and the learning rate when
    it changed over training (--lr-schedule)."""
    epochs = [r["epoch"] for r in history]
    names = curve_names(history) or ["loss"]
    rates = [r.get("lr") for r in history]
    scheduled = all(v is not None for v in rates) and len(set(rates)) > 1  # --lr-schedule cosine
    panels = len(names) + scheduled
    cols = min(panels, 4)
    rows = math.ceil(panels / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.7 * cols, 3 * rows), squeeze=False)
    for ax, key in zip(axes.flat, names, strict=False):
        for split, style in (("train", "-"), ("test", "--")):
            vals = [r.get(f"{split}_{key}") for r in history]
            if vals and all(v is not None for v in vals):
                ax.plot(epochs, vals, style, label=split)
        ax.set_title(f"{key} (nats)", fontsize=9)
        ax.set_xlabel("epoch")
        if ax.lines:
            ax.legend(fontsize=7)
    if scheduled:
        ax = axes.flat[len(names)]
        ax.plot(epochs, rates, "-")
        ax.set_title("learning rate (last step of the epoch)", fontsize=9)
        ax.set_xlabel("epoch")
    for ax in list(axes.flat)[panels:]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def latent_map(model: VAE, data, n: int = 300, zoom: float = 0.9, beta=None) -> plt.Figure:
    """Thumbnails of test images drawn at their latent positions (2-D, or the first two PCs)."""
    from matplotlib.offsetbox import AnnotationBbox, OffsetImage

    index = data.preview_index(n)
    x = data.x[index]
    means, _ = evaluate.encode_means(model, x, beta, labels=model.data_classes(data, index=index))
    points, (xl, yl) = project_2d(means)
    images = to_images(x, data.shape)
    fig, ax = plt.subplots(figsize=(7, 7))
    ax.scatter(points[:, 0], points[:, 1], s=0)
    for (px, py), im in zip(points, images, strict=True):
        thumb = OffsetImage(im, zoom=zoom * 28 / max(im.shape[:2]), cmap="gray" if im.ndim == 2 else None)
        ax.add_artist(AnnotationBbox(thumb, (px, py), frameon=False, pad=0))
    ax.set_xlabel(xl)
    ax.set_ylabel(yl)
    ax.set_title("latent map: test images at their posterior means", fontsize=9)
    return fig


def manifold(model: VAE, steps: int = 15, limit: float = 2.5, beta=None) -> plt.Figure:
    """Decoder means on a regular grid over the first two latent dimensions, each over the
    prior's mean -/+ `limit` sd (for N(0, I): [-limit, limit]); the others at the prior's mean.
    A label-conditional model is drawn for its first class."""
    mean, _ = model.prior.moments()
    low, high = model.prior.ranges(limit)
    z = mean.detach().repeat(steps * steps, 1)
    d2 = 1 if model.latent_dim > 1 else 0
    values_y = torch.linspace(float(low[d2]), float(high[d2]), steps).flip(0)
    values_x = torch.linspace(float(low[0]), float(high[0]), steps)
    grid_y, grid_x = torch.meshgrid(values_y, values_x, indexing="ij")
    z[:, 0] = grid_x.reshape(-1)
    if model.latent_dim > 1:
        z[:, 1] = grid_y.reshape(-1)
    labels = torch.zeros(1, dtype=torch.long) if model.conditional else None
    with torch.no_grad():
        x = model.decode(z, beta, labels).mean.numpy()
    images = to_images(x, model.data_shape)
    fig, ax = plt.subplots(figsize=(7, 7))
    span = f"[-{limit}, {limit}]" if model.prior.name == "normal" else f"the prior's mean -/+ {limit} sd"
    which = f" (class {model.classes[0]})" if model.conditional else ""
    _grid(ax, images, steps, steps, f"manifold: decoded z1, z2 on a grid over {span}{which}")
    return fig


def neighbors(data, query: int, found: np.ndarray, distances: np.ndarray) -> plt.Figure:
    """The query example and its nearest neighbours in latent space."""
    shown = np.concatenate([[query], found])
    images = to_images(data.x[shown], data.shape)
    fig, axes = plt.subplots(1, len(shown), figsize=(1.2 * len(shown), 1.7))
    for i, (ax, idx) in enumerate(zip(np.atleast_1d(axes), shown, strict=True)):
        if images is not None:
            ax.imshow(images[i], cmap="gray" if images.ndim == 3 else None, vmin=0, vmax=1)
        else:
            ax.plot(data.x[idx].reshape(-1), lw=0.7)
        ax.set_xticks([])
        ax.set_yticks([])
        label = f"query {idx}" if i == 0 else f"{idx}\nd={distances[i - 1]:.2f}"
        if data.y is not None:
            label += f"\n({data.label_name(int(data.y[idx]))})"
        ax.set_title(label, fontsize=7)
    fig.tight_layout()
    return fig


def heatmap(matrix, factor_names, title: str, value_label: str) -> plt.Figure:
    """A (latent_dim x n_factors) matrix: which latent dimension captures which factor."""
    matrix = np.asarray(matrix, dtype=float)
    fig, ax = plt.subplots(figsize=(1.2 * matrix.shape[1] + 2, 0.35 * matrix.shape[0] + 1.5))
    im = ax.imshow(matrix, cmap="viridis", aspect="auto")
    ax.set_xticks(range(matrix.shape[1]), factor_names, rotation=30, fontsize=8)
    ax.set_yticks(range(matrix.shape[0]), [f"z{i + 1}" for i in range(matrix.shape[0])], fontsize=7)
    for (i, j), v in np.ndenumerate(matrix):
        ax.text(
            j,
            i,
            f"{v:.2f}",
            ha="center",
            va="center",
            fontsize=6,
            color="white" if v < matrix.max() * 0.6 else "black",
        )
    fig.colorbar(im, ax=ax, label=value_label)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- science workflows
def roc_curves(table: dict) -> plt.Figure:
    """ROC curves of each score (`science.anomaly_table`): signal efficiency against background
    efficiency (log scale, so the tight cuts a search uses are visible), AUC in the legend."""
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    for name, row in table.items():
        fpr = np.asarray(row["roc"]["background_efficiency"])
        tpr = np.asarray(row["roc"]["signal_efficiency"])
        keep = fpr > 0
        ax.plot(fpr[keep], tpr[keep], lw=1.2, label=f"{name} (AUC {row['auc']:.3f})")
    grid = np.logspace(-4, 0, 50)
    ax.plot(grid, grid, color="grey", lw=0.8, ls="--", label="random (AUC 0.5)")
    ax.set_xscale("log")
    ax.set_xlim(1e-4, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("background efficiency (fraction of background passing the cut)")
    ax.set_ylabel("signal efficiency")
    ax.set_title("ROC: cut score > threshold", fontsize=9)
    ax.legend(fontsize=7)
    return fig


def score_histograms(background: dict, signal: dict, names, cuts: dict | None = None) -> plt.Figure:
    """Signal-vs-background histograms of each score (densities, log y), with the
    background-quantile cuts marked."""
    names = list(names)
    cols = min(3, len(names))
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names, strict=False):
        b, s = np.asarray(background[name]), np.asarray(signal[name])
        lo, hi = np.quantile(np.r_[b, s], [0.001, 0.999])
        bins = np.linspace(lo, hi if hi > lo else lo + 1, 60)
        ax.hist(np.clip(b, lo, hi), bins=bins, density=True, histtype="step", label="background", lw=1.2)
        ax.hist(np.clip(s, lo, hi), bins=bins, density=True, histtype="step", label="signal", lw=1.2)
        for cut in (cuts or {}).get(name, []):
            ax.axvline(cut["cut"], color="grey", lw=0.7, ls=":")
        ax.set_yscale("log")
        ax.set_xlabel(f"{name} (nats)" if name != "squared_error" else name)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    fig.suptitle("scores: signal vs background (dotted: background-quantile cuts)", fontsize=9)
    fig.tight_layout()
    return fig


def example_rows(rows: list[tuple[str, np.ndarray]], shape, column_names=None) -> plt.Figure:
    """Rows of examples, each (title, (k, *shape) array in the user's units): image grids, or for
    a table one line per example over the named columns."""
    images = [to_images(x, shape) for _, x in rows]
    if all(im is not None for im in images):
        k = max(len(x) for _, x in rows)
        fig, axes = plt.subplots(
            len(rows), 1, figsize=(max(4, 0.8 * k), 1.1 * len(rows) + 0.4), squeeze=False
        )
        for ax, (title, _), im in zip(axes[:, 0], rows, images, strict=True):
            _grid(ax, im, 1, len(im), title)
        fig.tight_layout()
        return fig
    fig, axes = plt.subplots(len(rows), 1, figsize=(8, 2.2 * len(rows)), squeeze=False)
    for ax, (title, x) in zip(axes[:, 0], rows, strict=True):
        flat = np.asarray(x).reshape(len(x), -1)
        for row in flat:
            ax.plot(row, lw=0.7, marker=".", ms=3)
        if column_names is not None and len(column_names) <= 40:
            ax.set_xticks(range(len(column_names)), column_names, rotation=60, fontsize=6)
        ax.set_title(title, fontsize=8)
    fig.tight_layout()
    return fig


def null_distribution(null: np.ndarray, observed: float, title: str) -> plt.Figure:
    """The permutation null of the two-sample balanced accuracy, with the observed value."""
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.hist(null, bins=40, color="#999", label="null (held-out labels permuted)")
    ax.axvline(observed, color="C3", lw=1.5, label=f"observed {observed:.3f}")
    ax.axvline(0.5, color="k", lw=0.6, ls=":")
    ax.set_xlabel("balanced accuracy")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    return fig


def marginals(columns, panels: list[tuple[str, np.ndarray]], discrete=()) -> plt.Figure:
    """Per-column marginal histograms of several (n, d) tables in the user's units (e.g. data,
    reconstructions, samples), one panel per column; a column named in `discrete` is drawn as
    bars over its values."""
    columns = list(columns)
    cols = min(4, len(columns))
    rows = math.ceil(len(columns) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows), squeeze=False)
    for j, (ax, name) in enumerate(zip(axes.flat, columns, strict=False)):
        values = [np.asarray(x)[:, j] for _, x in panels]
        if name in discrete:
            levels = np.unique(np.concatenate([np.round(v) for v in values]))
            width = 0.8 / len(panels)
            for i, ((label, _), v) in enumerate(zip(panels, values, strict=True)):
                share = [(np.round(v) == level).mean() for level in levels]
                ax.bar(np.arange(len(levels)) + i * width, share, width, label=label)
            ax.set_xticks(np.arange(len(levels)) + 0.4 - width / 2, [f"{v:g}" for v in levels], fontsize=7)
        else:
            lo, hi = np.quantile(np.concatenate(values), [0.002, 0.998])
            bins = np.linspace(lo, hi if hi > lo else lo + 1, 40)
            for (label, _), v in zip(panels, values, strict=True):
                ax.hist(np.clip(v, lo, hi), bins=bins, density=True, histtype="step", label=label, lw=1.1)
        ax.set_title(name, fontsize=8)
        ax.tick_params(labelsize=6)
    for ax in list(axes.flat)[len(columns) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=6)
    fig.suptitle("marginals per column, in the data's units", fontsize=9)
    fig.tight_layout()
    return fig


def latent_groups(model: VAE, groups: list[tuple[str, np.ndarray]], max_points: int = 3000) -> plt.Figure:
    """Posterior means (n_i, latent_dim) of several files in one latent figure, one colour per
    file (e.g. background and signal), projected together (2-D as is, else one PCA of all);
    at most `max_points` points drawn per file (an even thinning)."""
    codes = np.concatenate([c for _, c in groups])
    points, (xl, yl) = project_2d(codes)
    fig, ax = plt.subplots(figsize=(5.5, 5))
    start = 0
    for i, (name, c) in enumerate(groups):
        p = points[start : start + len(c)]
        start += len(c)
        step = max(1, len(p) // max_points)
        ax.scatter(
            p[::step, 0], p[::step, 1], s=5, alpha=0.6, lw=0, color=f"C{i}", label=f"{name} ({len(c)})"
        )
    if model.latent_dim == 2:
        prior_contour(ax, model)
        ax.set_aspect("equal", adjustable="datalim")
    ax.set_xlabel(xl, fontsize=8)
    ax.set_ylabel(yl, fontsize=8)
    ax.legend(markerscale=3, fontsize=7)
    ax.set_title(f"posterior means of each file (latent_dim {model.latent_dim})", fontsize=9)
    return fig


# ----------------------------------------------------------------------------- typed table columns


def _panel_grid(n: int, width: float = 3.0, height: float = 2.4):
    cols = min(4, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    return fig, list(axes.flat)[:n]


def _as_bars(column, values: list) -> list | None:
    """The levels to draw a column as bars over (labels, or few whole numbers), else None."""
    if column.name in ("binary", "categorical"):
        return list(column.constants["values"])
    if column.name in ("count", "integer"):
        seen = np.unique(np.concatenate([np.asarray(v, dtype=np.float64) for v in values]))
        seen = seen[~np.isnan(seen)]
        return list(seen) if len(seen) <= 25 else None
    return None


def _observed_values(series) -> np.ndarray:
    return series[series.notna()].to_numpy()


def column_marginals(schema, panels: list, title: str = "marginals per column") -> plt.Figure:
    """One panel per typed column, in the user's units: for each (label, DataFrame) in `panels`,
    the share of each category or whole value as bars, or a histogram of a continuous column
    (missing cells left out)."""
    fig, axes = _panel_grid(len(schema.columns))
    for ax, column in zip(axes, schema.columns, strict=True):
        values = [_observed_values(frame[column.column]) for _, frame in panels]
        levels = _as_bars(column, values)
        if levels is not None:
            width = 0.8 / len(panels)
            for i, ((label, _), v) in enumerate(zip(panels, values, strict=True)):
                keys = [label_key(x) for x in v]
                share = [keys.count(label_key(level)) / max(1, len(v)) for level in levels]
                if column.name in ("count", "integer"):
                    share = [np.mean(np.asarray(v, np.float64) == level) if len(v) else 0 for level in levels]
                ax.bar(np.arange(len(levels)) + i * width, share, width, label=label)
            shown = [f"{x:g}" if isinstance(x, (int, float)) else str(x) for x in levels]
            ax.set_xticks(np.arange(len(levels)) + 0.4 - width / 2, shown, fontsize=6, rotation=90)
            ax.set_ylabel("share", fontsize=6)
        else:
            both = np.concatenate([np.asarray(v, np.float64) for v in values])
            lo, hi = np.quantile(both, [0.002, 0.998]) if len(both) else (0.0, 1.0)
            bins = np.linspace(lo, hi if hi > lo else lo + 1, 40)
            for (label, _), v in zip(panels, values, strict=True):
                ax.hist(np.clip(np.asarray(v, np.float64), lo, hi), bins=bins, density=True, histtype="step",
                        label=label, lw=1.1)  # fmt: skip
        ax.set_title(f"{column.column} ({column.name})", fontsize=8)
        ax.tick_params(labelsize=6)
    axes[0].legend(fontsize=6)
    fig.suptitle(f"{title}, in the data's units", fontsize=9)
    fig.tight_layout()
    return fig


def column_reconstructions(schema, inputs, recon) -> plt.Figure:
    """One panel per typed column: each test row's value (x) against its reconstruction (y) for
    numbers, with the diagonal; for a binary or categorical column, the share of rows whose
    category is reconstructed as each category (rows: the input's)."""
    fig, axes = _panel_grid(len(schema.columns))
    for ax, column in zip(axes, schema.columns, strict=True):
        x, y = inputs[column.column].reset_index(drop=True), recon[column.column]
        seen = x.notna().to_numpy()
        if column.name in ("binary", "categorical"):
            levels = [str(v) for v in column.constants["values"]]
            code = {label_key(v): i for i, v in enumerate(column.constants["values"])}
            matrix = np.zeros((len(levels), len(levels)))
            for a, b in zip(x[seen], y[seen], strict=True):
                matrix[code[label_key(a)], code[label_key(b)]] += 1
            matrix /= np.maximum(matrix.sum(1, keepdims=True), 1)
            ax.imshow(matrix, vmin=0, vmax=1, cmap="viridis")
            ax.set_xticks(range(len(levels)), levels, fontsize=6, rotation=90)
            ax.set_yticks(range(len(levels)), levels, fontsize=6)
            ax.set_xlabel("reconstructed", fontsize=6)
        else:
            a, b = np.asarray(x[seen], np.float64), np.asarray(y[seen], np.float64)
            ax.scatter(a, b, s=3, alpha=0.5)
            if len(a):
                lo, hi = float(min(a.min(), b.min())), float(max(a.max(), b.max()))
                ax.plot([lo, hi], [lo, hi], color="grey", lw=0.8)
            ax.set_xlabel("input", fontsize=6)
            ax.set_ylabel("reconstruction", fontsize=6)
        ax.set_title(f"{column.column} ({column.name})", fontsize=8)
        ax.tick_params(labelsize=6)
    fig.suptitle(
        "reconstructions (decoder's typical value at q's mean), test rows, in the data's units", fontsize=9
    )
    fig.tight_layout()
    return fig


def column_traversals(schema, order, low, high, rows, names=None) -> plt.Figure:
    """One panel per typed column: the decoded value (the decoder's typical value, in the
    user's units) as each latent dimension in `order` is swept, one line per dimension; a
    category is drawn at its position in the column's list of values (the y ticks)."""
    fig, axes = _panel_grid(len(schema.columns))
    for ax, column in zip(axes, schema.columns, strict=True):
        labelled = column.name in ("binary", "categorical")
        for i, (d, decoded) in enumerate(zip(order, rows, strict=True)):
            values = schema.to_user(decoded)[column.column]
            if labelled:
                lookup = {label_key(v): k for k, v in enumerate(column.constants["values"])}
                values = [lookup[label_key(v)] for v in values]
            steps = np.linspace(float(low[d]), float(high[d]), len(decoded))
            label = f"z{d + 1}" + (f" → {names[i]}" if names is not None else "")
            ax.plot(steps, np.asarray(values, np.float64), marker=".", lw=1, label=label)
        if labelled:
            levels = [str(v) for v in column.constants["values"]]
            ax.set_yticks(range(len(levels)), levels, fontsize=6)
        ax.set_title(f"{column.column} ({column.name})", fontsize=8)
        ax.set_xlabel("z_j", fontsize=6)
        ax.tick_params(labelsize=6)
    axes[0].legend(fontsize=6)
    fig.suptitle("traversals: each column as one latent dimension is swept (others held), by KL", fontsize=9)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- sweeps


def regime(beta: float, betas: list[float]) -> str:
    """A panel caption for `beta` among `betas`: "pure reconstruction" for 0, "more latent
    regularisation" for the largest of several, else ""."""
    if beta == 0:
        return "pure reconstruction"
    if beta == max(betas) and len(betas) > 1:
        return "more latent regularisation"
    return ""


def latent_panels(entries, data, n_recon: int = 6, setting: str = "beta") -> plt.Figure:
    """One column per value of `setting` (entries: (value, model, beta argument) each, in value
    order, as `vaekit.sweep` reads a sweep folder): one draw z ~ q(z|x) per test
    example (2-D, or the first two PCs), coloured by label, and under it the reconstructions of
    the same test inputs (inputs in the top strip row). Draws rather than means, so a posterior
    that collapsed onto the prior shows as what it is: a cloud shaped like the prior in which the
    classes mix."""
    values = [v for v, _, _ in entries]
    n = len(entries)
    is_image = data.is_image
    fig = plt.figure(figsize=(3.3 * n, 4.9 if is_image else 3.6))
    grid = fig.add_gridspec(2 if is_image else 1, n, height_ratios=[3.3, 1.0] if is_image else [1])
    labels = data.labels("test")
    index = data.preview_index(n_recon)
    x_in = data.x[index]
    for i, (value, model, beta_arg) in enumerate(entries):
        ax = fig.add_subplot(grid[0, i])
        means, variances = evaluate.encode_means(
            model, data.x_test, beta_arg, labels=model.data_classes(data, "test")
        )
        noise = np.random.default_rng(0).standard_normal(means.shape)
        draws = means + np.sqrt(variances) * noise if model.kind == "vae" else means
        scatter_codes(ax, draws, labels, data, legend=(i == n - 1), s=3)
        prior_contour(ax, model)
        name = regime(value, values) if setting == "beta" else ""
        ax.set_title(f"{setting} = {value:g}" + (f"\n{name}" if name else "\n"), fontsize=10)
        if is_image:
            with torch.no_grad():
                classes = model.data_classes(data, index=index)
                recon = model.reconstruct(torch.as_tensor(x_in), beta_arg, classes).numpy()
            images = to_images(np.concatenate([x_in, recon]), data.shape)
            _grid(fig.add_subplot(grid[1, i]), images, 2, n_recon, "inputs / reconstructions")
    fig.suptitle(
        f"latent space of the test set as {setting} grows: one z ~ q(z|x) per image "
        "(dashed: the prior's contour holding 86% of its mass; 2 sd for N(0, I))",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def rate_distortion(rows: list[dict], setting: str = "beta", values=None, means=()) -> plt.Figure:
    """Distortion against rate, one point per run coloured by the swept value (log10 of it when
    no value is negative), and the line rate + distortion = -ELBO through the best (highest-ELBO)
    point. `rows`: a sweep's rows (rate, distortion, elbo, source); `values`: the swept `setting`'s
    value of each row (default each row's beta); `means`: with several seeds per value, each
    value's mean rate and distortion with their standard deviations (`vaekit.sweep.over_seeds`),
    drawn as black crosses with error bars."""
    fig, ax = plt.subplots(figsize=(6.2, 4.6))
    values = [r["beta"] for r in rows] if values is None else list(values)
    keep = [i for i, r in enumerate(rows) if r.get("rate") is not None]
    vae_rows, values = [rows[i] for i in keep], [values[i] for i in keep]
    positive = [v for v in values if v > 0]
    log_scale = all(v >= 0 for v in values) and bool(positive)
    floor = np.log10(min(positive)) - 1 if positive else -1.0
    colour = [(np.log10(v) if v > 0 else floor) if log_scale else v for v in values]
    norm = plt.Normalize(min(colour), max(colour)) if colour else None
    for source, marker, size in (("separate", "o", 60), ("conditioned", "x", 70)):
        sel = [i for i, r in enumerate(vae_rows) if r["source"] == source]
        if not sel:
            continue
        sc = ax.scatter(
            [vae_rows[i]["rate"] for i in sel],
            [vae_rows[i]["distortion"] for i in sel],
            c=[colour[i] for i in sel],
            cmap="viridis",
            norm=norm,
            marker=marker,
            s=size,
            label="separately trained" if source == "separate" else "one beta-conditioned model",
        )
        for i in sel:
            ax.annotate(
                f"{values[i]:g}",
                (vae_rows[i]["rate"], vae_rows[i]["distortion"]),
                textcoords="offset points",
                xytext=(5, 4),
                fontsize=8,
            )
    if vae_rows:
        zero = f" ({setting} = 0 drawn at {floor:g})" if log_scale and 0 in values else ""
        fig.colorbar(sc, ax=ax, label=(f"log10 {setting}" if log_scale else setting) + zero)
        best = max(vae_rows, key=lambda r: r["elbo"])
        total, best_value = best["rate"] + best["distortion"], values[vae_rows.index(best)]
        xs = np.linspace(0, max(r["rate"] for r in vae_rows) * 1.05, 50)
        ax.plot(
            xs,
            total - xs,
            "--",
            color="grey",
            lw=1,
            label=f"rate + distortion = {total:.1f} (best -ELBO, {setting} = {best_value:g})",
        )
        low = min(r["distortion"] for r in vae_rows)
        high = max(r["distortion"] for r in vae_rows)
        pad = 0.1 * (high - low + 1)
        ax.set_ylim(low - pad, high + pad)
    for i, m in enumerate(means):
        ax.errorbar(
            m["rate"],
            m["distortion"],
            xerr=m["rate_sd"],
            yerr=m["distortion_sd"],
            fmt="+",
            color="black",
            capsize=3,
            zorder=5,
            label="mean +- sd over seeds" if i == 0 else None,
        )
    ax.set_xlabel("rate = KL(q(z|x) || p(z)), nats")
    ax.set_ylabel("distortion = -E_q log p(x|z), nats")
    ax.set_title("the rate-distortion trade-off (test split)", fontsize=10)
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- the disentanglement demo


def mig_by_weight(models: list[dict], setting: str) -> plt.Figure:
    """The disentanglement demo's MIG against each objective's weight (log axis), one line per
    objective: `models` as `vaekit.disentangle.over_seeds` gives them (mean and sd over seeds,
    each seed a dot when there are several); `setting` names the demo's budget in the title."""
    several = any(len(m["seeds"]) > 1 for m in models)
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for i, objective in enumerate(dict.fromkeys(m["objective"] for m in models)):
        group = [m for m in models if m["objective"] == objective and m.get("mig") is not None]
        label = f"{objective} ({group[0]['weight_name']})" if group else objective
        if several:  # each seed as a dot, the mean +- sd as the line
            for m in group:
                ax.plot([m["weight"]] * len(m["mig_seeds"]), m["mig_seeds"], ".", color=f"C{i}", alpha=0.5)
        weights, migs = [m["weight"] for m in group], [m["mig"] for m in group]
        sds = [m["mig_sd"] or 0.0 for m in group]
        ax.errorbar(weights, migs, yerr=sds, fmt="o-", capsize=3, color=f"C{i}", label=label)
    ax.set_xscale("log")
    ax.set_xlabel("weight on the KL / TC term")
    ax.set_ylabel("MIG" + (" (mean +- sd over seeds; dots: seeds)" if several else ""))
    ax.set_title(f"MIG against the weight (sprites32, {setting})", fontsize=9)
    ax.legend(fontsize=7)
    return fig


def mig_over_time(rows: list[dict], setting: str) -> plt.Figure:
    """The disentanglement demo's MIG after each epoch against training seconds, one line per
    model and seed (`rows`: the demo's rows with their `mig_curve`)."""
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    colour = {name: f"C{i}" for i, name in enumerate(dict.fromkeys(r["model"] for r in rows))}
    for r in rows:
        if r.get("mig_curve"):
            pts = r["mig_curve"]
            label = r["model"] if r["seed"] == rows[0]["seed"] else None  # one legend entry per model
            times, migs = [p["seconds"] for p in pts], [p["mig"] for p in pts]
            ax.plot(times, migs, "o-", ms=3, color=colour[r["model"]], label=label)
    ax.set_xlabel("training seconds (this machine)")
    ax.set_ylabel("MIG (10,000 points)")
    ax.set_title(f"MIG against training time, after each epoch (sprites32, {setting})", fontsize=9)
    ax.legend(fontsize=6)
    return fig


# ----------------------------------------------------------------------------- anomaly sweeps


def auc_by_setting(table: list[dict], setting: str, scores: dict[str, str]) -> plt.Figure:
    """Anomaly ROC AUC against a sweep's swept `setting`, one line per score (`scores`: name ->
    title): `table` has one row per run with `value`, `<name>` and `<name>_stderr`. A value with
    one run shows its AUC with its standard error; a value with several (seeds), their mean with
    their standard deviation. A log axis when no value is negative (0 then left out, said in the
    title)."""
    values = [r["value"] for r in table]
    log_axis = all(v >= 0 for v in values) and any(v > 0 for v in values)
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for i, (name, title) in enumerate(scores.items()):
        groups: dict = {}
        for r in table:
            if r["value"] > 0 or not log_axis:
                groups.setdefault(r["value"], []).append(r)
        pts = []
        for value, group in sorted(groups.items()):
            aucs = [r[name] for r in group]
            spread = float(np.std(aucs, ddof=1)) if len(aucs) > 1 else group[0][f"{name}_stderr"]
            pts.append((value, float(np.mean(aucs)), spread))
        if pts:
            b, a, e = zip(*pts, strict=True)
            ax.errorbar(b, a, yerr=e, marker="o", color=f"C{i}", label=title)
    ax.axhline(0.5, color="grey", lw=0.7, ls=":")
    if log_axis:
        ax.set_xscale("log")
    ax.set_xlabel(setting)
    ax.set_ylabel("ROC AUC")
    left_out = f" ({setting} = 0 left out of the log axis)" if log_axis and 0 in values else ""
    ax.set_title(f"anomaly ROC AUC per {setting}{left_out}", fontsize=9)
    ax.legend(fontsize=7)
    return fig
