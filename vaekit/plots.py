"""Figures: each function returns a matplotlib Figure (for notebooks); `report` saves them."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from vaekit import evaluate  # noqa: E402
from vaekit.model import VAE  # noqa: E402


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
    x = data.preview(n)
    with torch.no_grad():
        recon = model.reconstruct(torch.as_tensor(x)).numpy()
    images = to_images(np.concatenate([x, recon]), data.shape)
    if images is None:
        fig, axes = plt.subplots(1, 2, figsize=(9, 3))
        _curves(axes[0], x[:4], "inputs")
        _curves(axes[1], recon[:4], "reconstructions (posterior mean)")
        return fig
    fig, ax = plt.subplots(figsize=(n * 0.9, 2.2))
    _grid(ax, images, 2, n, "top: test inputs, bottom: reconstructions (decoder mean at q's mean)")
    return fig


def samples(model: VAE, n: int = 64, seed: int = 0) -> plt.Figure:
    """Decoder means at z ~ N(0, I)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        x = model.sample(n).numpy()
    images = to_images(x, model.data_shape)
    if images is None:
        fig, ax = plt.subplots(figsize=(6, 3))
        _curves(ax, x[:8], "samples from the prior (decoder mean)")
        return fig
    cols = int(math.ceil(math.sqrt(n)))
    fig, ax = plt.subplots(figsize=(cols * 0.7, cols * 0.7))
    _grid(ax, images, int(math.ceil(n / cols)), cols, "samples: decoder mean at z ~ N(0, I)")
    return fig


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
    means, _ = evaluate.encode_means(model, data.x_test, beta)
    fig, ax = plt.subplots(figsize=(5.5, 5))
    scatter_codes(ax, means, data.labels("test"), data)
    if means.shape[1] == 2:
        ax.add_patch(plt.Circle((0, 0), 2, fill=False, ls="--", color="grey", lw=0.8))
    ax.set_title(f"latent space (test set posterior means, latent_dim {model.latent_dim})", fontsize=9)
    return fig


def traversals(model: VAE, data, steps: int = 9, limit: float = 2.5, order=None, names=None) -> plt.Figure:
    """One row per latent dimension (sorted by its KL, largest first): decode the mean code of a
    test example with that dimension swept over [-limit, limit], the others held."""
    means, variances = evaluate.encode_means(model, data.preview(500))
    if order is None:
        kl = evaluate.per_dim_kl(means, variances) if model.kind == "vae" else np.var(means, 0)
        order = np.argsort(-kl)[: min(model.latent_dim, 10)]
    base = torch.as_tensor(means[0])
    values = torch.linspace(-limit, limit, steps)
    rows = []
    for d in order:
        z = base.repeat(steps, 1)
        z[:, d] = values
        with torch.no_grad():
            rows.append(model.decode(z).mean.numpy())
    x = np.concatenate(rows)
    images = to_images(x, model.data_shape)
    if images is None:
        fig, axes = plt.subplots(len(order), 1, figsize=(6, 1.6 * len(order)), squeeze=False)
        for ax, r, d in zip(axes[:, 0], rows, order, strict=True):
            _curves(ax, r, f"z{d + 1} from {-limit} to {limit}")
        fig.tight_layout()
        return fig
    fig, ax = plt.subplots(figsize=(steps * 0.8, len(order) * 0.8 + 0.6))
    _grid(ax, images, len(order), steps, f"traversals: rows z_j from {-limit} to {limit}, by KL")
    for i, d in enumerate(order):
        h = images.shape[1] + 1
        label = f"z{d + 1}" + (f" → {names[i]}" if names is not None else "")
        ax.text(-2, i * h + h / 2, label, ha="right", va="center", fontsize=7)
    return fig


def training_curves(history: list[dict]) -> plt.Figure:
    """Loss, distortion and rate per epoch, train and test."""
    epochs = [r["epoch"] for r in history]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3))
    for ax, key in zip(axes, ("loss", "distortion", "rate"), strict=True):
        for split, style in (("train", "-"), ("test", "--")):
            vals = [r.get(f"{split}_{key}") for r in history]
            if all(v is not None for v in vals):
                ax.plot(epochs, vals, style, label=split)
        ax.set_title(f"{key} (nats)", fontsize=9)
        ax.set_xlabel("epoch")
        if ax.lines:
            ax.legend(fontsize=7)
        else:
            ax.text(0.5, 0.5, "no KL term (autoencoder)", ha="center", transform=ax.transAxes)
    fig.tight_layout()
    return fig


def latent_map(model: VAE, data, n: int = 300, zoom: float = 0.9, beta=None) -> plt.Figure:
    """Thumbnails of test images drawn at their latent positions (2-D, or the first two PCs)."""
    from matplotlib.offsetbox import AnnotationBbox, OffsetImage

    x = data.preview(n)
    means, _ = evaluate.encode_means(model, x, beta)
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
    """Decoder means on a regular grid over the first two latent dimensions (others at 0)."""
    values = torch.linspace(-limit, limit, steps)
    z = torch.zeros(steps * steps, model.latent_dim)
    grid_y, grid_x = torch.meshgrid(values.flip(0), values, indexing="ij")
    z[:, 0] = grid_x.reshape(-1)
    if model.latent_dim > 1:
        z[:, 1] = grid_y.reshape(-1)
    with torch.no_grad():
        x = model.decode(z, beta).mean.numpy()
    images = to_images(x, model.data_shape)
    fig, ax = plt.subplots(figsize=(7, 7))
    _grid(ax, images, steps, steps, f"manifold: decoded z1, z2 on a grid over [-{limit}, {limit}]")
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
