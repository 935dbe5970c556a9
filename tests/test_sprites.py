"""Tests for vaekit.datasets.sprites (procedural dSprites, Matthey et al. 2017).

Kept fast: resolution 32 (64 only for a few rendered images), factor subsets
and :func:`render` instead of the 737,280-image grid.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pytest

from vaekit.datasets import sprites
from vaekit.datasets.sprites import (
    FACTOR_NAMES,
    FACTOR_SIZES,
    SpritesFactorData,
    cache_path,
    factor_value_table,
    generate,
    load,
    render,
    render_values,
)

RES = 32
SMALL = {"orientation": range(0, 40, 8), "pos_x": [0, 13, 31], "pos_y": [0, 31], "scale": [0, 5]}


def _com(images: np.ndarray) -> np.ndarray:
    """Centre of mass (row, col) of (n, h, w) images -> (n, 2)."""
    rows, cols = np.indices(images.shape[1:])
    mass = images.sum(axis=(1, 2)).astype(np.float64)
    r = (images * rows).sum(axis=(1, 2)) / mass
    c = (images * cols).sum(axis=(1, 2)) / mass
    return np.stack([r, c], axis=1)


def _digest(arr: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()


# --- factor grid -------------------------------------------------------------


def test_full_grid_count_and_factor_values():
    assert FACTOR_NAMES == ("shape", "scale", "orientation", "pos_x", "pos_y")
    assert FACTOR_SIZES == (3, 6, 40, 32, 32)
    assert int(np.prod(FACTOR_SIZES)) == 737_280
    shape, scale, orient, pos_x, pos_y = factor_value_table()
    np.testing.assert_array_equal(shape, [0, 1, 2])
    np.testing.assert_allclose(scale, [0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    assert orient.size == 40 and orient[0] == 0.0 and orient[-1] == pytest.approx(2 * np.pi)
    np.testing.assert_allclose(np.diff(orient), 2 * np.pi / 39)
    for pos in (pos_x, pos_y):
        assert pos.size == 32 and pos[0] == 0.0 and pos[-1] == 1.0
        np.testing.assert_allclose(np.diff(pos), 1 / 31)


def test_subset_count_and_row_major_order():
    arr = generate(RES, SMALL)
    assert arr.factor_sizes == (3, 2, 5, 3, 2)
    assert len(arr) == 3 * 2 * 5 * 3 * 2 == arr.factor_indices.shape[0]
    assert arr.packed.shape == (180, RES, RES // 8) and arr.packed.dtype == np.uint8
    assert arr.factor_names == FACTOR_NAMES
    kept = [range(3), [0, 5], range(0, 40, 8), [0, 13, 31], [0, 31]]
    expected = np.array(np.meshgrid(*kept, indexing="ij")).reshape(5, -1).T
    np.testing.assert_array_equal(arr.factor_indices, expected)  # shape slowest, pos_y fastest
    table = factor_value_table()
    for k in range(5):
        np.testing.assert_array_equal(arr.factor_values[:, k], table[k][expected[:, k]])
    # index_of inverts the row order and rejects indices outside the subset
    rows = np.array([0, 7, 101, 179])
    np.testing.assert_array_equal(arr.index_of(arr.factor_indices[rows]), rows)
    with pytest.raises(KeyError):
        arr.index_of([[0, 1, 0, 0, 0]])


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("scale", np.linspace(0.5, 1.0, 6)),
        ("orientation", np.linspace(0.0, 2 * np.pi, 40)),
        ("pos_x", np.linspace(0.0, 1.0, 32)),
        ("pos_y", np.linspace(0.0, 1.0, 32)),
    ],
)
def test_each_factor_column_has_the_dsprites_values(name, expected):
    k = FACTOR_NAMES.index(name)
    one = {n: [0] for n in FACTOR_NAMES if n != name}
    arr = generate(RES, one)
    assert len(arr) == FACTOR_SIZES[k]
    np.testing.assert_allclose(np.unique(arr.factor_values[:, k]), expected)
    np.testing.assert_array_equal(arr.factor_indices[:, k], np.arange(FACTOR_SIZES[k]))


def test_generate_rows_equal_render_and_values_are_binary():
    arr = generate(RES, SMALL)
    images = arr.images
    assert images.shape == (180, RES, RES) and images.dtype == np.uint8
    assert set(np.unique(images).tolist()) == {0, 1}
    np.testing.assert_array_equal(np.packbits(images, axis=-1), arr.packed)
    rows = np.array([3, 50, 99, 179])
    np.testing.assert_array_equal(render(arr.factor_indices[rows], RES), images[rows])
    np.testing.assert_array_equal(render(arr.factor_indices[rows], RES, packed=True), arr.packed[rows])
    obs = arr.observations(rows)
    assert obs.dtype == np.float32 and obs.shape == (4, RES * RES)
    assert set(np.unique(obs).tolist()) == {0.0, 1.0}
    assert arr.observations(rows, flatten=False).shape == (4, 1, RES, RES)


def test_invalid_arguments_raise():
    with pytest.raises(KeyError):
        generate(RES, {"colour": [0]})
    with pytest.raises(ValueError):
        generate(RES, {"pos_x": [32]})
    with pytest.raises(ValueError):
        generate(RES, {"scale": []})
    with pytest.raises(ValueError):
        render([[0, 0, 0, 0, 0]], resolution=30)
    with pytest.raises(ValueError):
        render([[3, 0, 0, 0, 0]], RES)


# --- determinism and cache ----------------------------------------------------


def test_generation_is_deterministic():
    a = generate(RES, SMALL)
    b = generate(RES, SMALL)
    assert _digest(a.packed) == _digest(b.packed)
    # the same sprites rendered in a different order/batch give the same pixels
    idx = a.factor_indices[::-1]
    np.testing.assert_array_equal(render(idx, RES, packed=True), a.packed[::-1])


def test_cache_round_trip(tmp_path):
    first = load(RES, SMALL, cache_dir=tmp_path)
    path = cache_path(RES, SMALL, cache_dir=tmp_path)
    assert path.is_file() and path.parent == tmp_path
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp files left
    mtime = path.stat().st_mtime_ns
    second = load(RES, SMALL, cache_dir=tmp_path)
    assert path.stat().st_mtime_ns == mtime  # read, not rewritten
    fresh = generate(RES, SMALL)
    for got in (first, second):
        np.testing.assert_array_equal(got.packed, fresh.packed)
        np.testing.assert_array_equal(got.factor_indices, fresh.factor_indices)
        np.testing.assert_array_equal(got.factor_values, fresh.factor_values)
        assert got.factor_sizes == fresh.factor_sizes
    # the key depends on resolution and subset
    assert cache_path(64, SMALL, cache_dir=tmp_path) != path
    assert cache_path(RES, {"scale": [0]}, cache_dir=tmp_path) != path
    assert cache_path(RES, None, cache_dir=tmp_path).name.endswith("_full.npz")


def test_cache_dir_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("VAEKIT_CACHE", str(tmp_path / "env_cache"))
    subset = {"shape": ["heart"], "scale": [5], "orientation": [0], "pos_x": [0, 31]}
    arr = load(RES, subset)
    assert cache_path(RES, subset).parent == tmp_path / "env_cache"
    assert cache_path(RES, subset).is_file()
    assert arr.factor_sizes == (1, 1, 1, 2, 32)


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage"])
def test_corrupt_cache_is_detected_and_regenerated(tmp_path, damage):
    good = load(RES, SMALL, cache_dir=tmp_path)
    path = cache_path(RES, SMALL, cache_dir=tmp_path)
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        middle = len(data) // 2
        path.write_bytes(data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :])
    else:
        path.write_bytes(b"not a zip file")
    with pytest.warns(RuntimeWarning, match="regenerating"):
        again = load(RES, SMALL, cache_dir=tmp_path)
    np.testing.assert_array_equal(again.packed, good.packed)
    assert path.read_bytes() == data  # rewritten identically (deterministic)


def test_interrupted_write_leaves_no_cache_file(tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(np.lib.format, "write_array", boom)
    with pytest.raises(KeyboardInterrupt):
        load(RES, SMALL, cache_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    arr = load(RES, SMALL, cache_dir=tmp_path)
    assert cache_path(RES, SMALL, cache_dir=tmp_path).is_file() and len(arr) == 180


def test_unwritable_cache_warns_and_still_returns_data(tmp_path, monkeypatch):
    def refuse(src, dst):
        raise PermissionError("read-only cache")

    monkeypatch.setattr(sprites.os, "replace", refuse)
    with pytest.warns(RuntimeWarning, match="could not write"):
        arr = load(RES, SMALL, cache_dir=tmp_path)
    np.testing.assert_array_equal(arr.packed, generate(RES, SMALL).packed)
    assert list(tmp_path.iterdir()) == []  # the temp file was removed


# --- what each factor does to the image ---------------------------------------


def test_scale_increases_lit_pixels_for_every_shape():
    idx = np.array([[s, k, o, 15, 15] for s in range(3) for o in (0, 7, 13) for k in range(6)])
    lit = render(idx, 64).sum(axis=(1, 2)).astype(np.int64).reshape(3, 3, 6)
    # monotone over the 6 scales; an axis-aligned square grows in whole pixel rows, so
    # one step of 1.28 px can leave the count unchanged, but two steps never do
    assert np.all(np.diff(lit, axis=-1) >= 0), lit
    assert np.all(lit[..., 2:] > lit[..., :-2]), lit
    assert np.all(np.diff(lit[:, 1:], axis=-1) > 0), lit  # strictly, when not axis-aligned
    # area grows ~ scale^2 (4x from 0.5 to 1.0)
    ratio = lit[..., -1] / lit[..., 0]
    assert np.all((ratio > 3.0) & (ratio < 5.5)), ratio


def test_pos_x_moves_right_and_pos_y_moves_down():
    steps = np.arange(0, 32, 4).tolist() + [31]
    for shape in range(3):
        idx_x = np.array([[shape, 3, 5, p, 10] for p in steps])
        idx_y = np.array([[shape, 3, 5, 10, p] for p in steps])
        com_x = _com(render(idx_x, RES))
        com_y = _com(render(idx_y, RES))
        assert np.all(np.diff(com_x[:, 1]) > 0)  # column increases with pos_x
        assert np.ptp(com_x[:, 0]) < 0.5  # row unchanged
        assert np.all(np.diff(com_y[:, 0]) > 0)  # row increases with pos_y (downwards)
        assert np.ptp(com_y[:, 1]) < 0.5
        # pos 0..1 spans 0.6 of the image width (centre 0.2 -> 0.8)
        assert com_x[-1, 1] - com_x[0, 1] == pytest.approx(0.6 * RES, abs=1.0)
        assert com_y[-1, 0] - com_y[0, 0] == pytest.approx(0.6 * RES, abs=1.0)


def test_orientation_effects():
    # square: 90 degree symmetric, but not at a non-symmetric angle (index 3 ~ 27.7 deg)
    sq = render([[0, 5, 0, 15, 15], [0, 5, 3, 15, 15]], 64)
    assert np.sum(sq[0] != sq[1]) > 0.1 * sq[0].sum()
    quarter = render_values([[0, 1.0, 0.0, 0.5, 0.5], [0, 1.0, np.pi / 2, 0.5, 0.5]], 64)
    assert np.sum(quarter[0] != quarter[1]) <= 4
    # ellipse: symmetric under a half turn, not under a quarter turn
    theta = 0.7
    ell = render_values(
        [[1, 1.0, theta, 0.5, 0.5], [1, 1.0, theta + np.pi, 0.5, 0.5], [1, 1.0, theta + np.pi / 2, 0.5, 0.5]],
        64,
    )
    assert np.sum(ell[0] != ell[1]) <= 4
    assert np.sum(ell[0] != ell[2]) > 0.3 * ell[0].sum()
    # heart: not symmetric under a half turn
    heart = render_values([[2, 1.0, 0.0, 0.5, 0.5], [2, 1.0, np.pi, 0.5, 0.5]], 64)
    assert np.sum(heart[0] != heart[1]) > 0.1 * heart[0].sum()
    # orientation indices 0 and 39 are both 0 / 2 pi, as in dSprites
    ends = render([[s, 5, o, 9, 20] for s in range(3) for o in (0, 39)], RES)
    for s in range(3):
        assert np.sum(ends[2 * s] != ends[2 * s + 1]) <= 2
    # positive angles turn counter-clockwise on screen: at 45 deg the ellipse's
    # long axis runs from bottom-left to top-right (col up <=> row down)
    img = render_values([[1, 1.0, np.pi / 4, 0.5, 0.5]], 64)[0]
    rows, cols = np.nonzero(img)
    assert np.corrcoef(rows, cols)[0, 1] < -0.5


def test_heart_points_up_at_orientation_zero():
    img = render([[2, 5, 0, 15, 15]], 64)[0]
    width_per_row = img.sum(axis=1)
    lit_rows = np.flatnonzero(width_per_row)
    top, bottom = lit_rows[0], lit_rows[-1]
    # the tip (narrow) is at the bottom, the lobes (wide) in the upper half
    assert width_per_row[bottom] <= 3
    assert np.argmax(width_per_row) < (top + bottom) / 2


@pytest.mark.parametrize(("resolution", "scales"), [(64, range(0, 6, 5)), (32, [5])])
def test_shapes_differ_at_equal_other_factors(resolution, scales):
    # At 32x32 the smallest square and heart can coincide (~3 px wide), so only
    # the largest scale is checked there.
    subset = {"scale": scales, "orientation": range(0, 40, 5), "pos_x": [0, 15, 31]}
    subset["pos_y"] = [0, 15, 31]
    imgs = generate(resolution, subset).images.reshape(3, -1, resolution, resolution)
    for a in range(3):
        for b in range(a + 1, 3):
            diff = np.sum(imgs[a] != imgs[b], axis=(1, 2))
            assert diff.min() >= 3, (a, b)
            assert diff.mean() >= 8, (a, b)


def test_every_sprite_is_lit_and_inside_the_image():
    subset = {"orientation": range(0, 40, 3), "pos_x": [0, 31], "pos_y": [0, 31]}
    images = generate(RES, subset).images  # all shapes and scales at the extreme positions
    assert images.shape[0] == 3 * 6 * 14 * 4
    assert images.sum(axis=(1, 2)).min() >= 5
    border = np.concatenate([images[:, 0], images[:, -1], images[:, :, 0], images[:, :, -1]], axis=1)
    assert border.max() == 0


def test_small_resolution_is_the_same_scene_at_half_size():
    idx = np.array([[s, 5, o, p, 31 - p] for s in range(3) for o in (0, 11) for p in (0, 20)])
    big, small = render(idx, 64), render(idx, 32)
    lit_big, lit_small = big.sum(axis=(1, 2)), small.sum(axis=(1, 2))
    np.testing.assert_allclose(lit_small, lit_big / 4, rtol=0.2)
    np.testing.assert_allclose(_com(small), (_com(big) + 0.5) / 2 - 0.5, atol=0.35)


# --- sampling interface -------------------------------------------------------


def test_factor_data_sampling():
    data = SpritesFactorData(RES)
    assert data.factor_sizes == FACTOR_SIZES and data.factor_names == FACTOR_NAMES
    factors = data.sample_factors(64, np.random.default_rng(0))
    assert factors.shape == (64, 5) and np.issubdtype(factors.dtype, np.integer)
    assert np.all((factors >= 0) & (factors < np.array(FACTOR_SIZES)))
    np.testing.assert_array_equal(factors, data.sample_factors(64, np.random.default_rng(0)))
    obs = data.sample_observations(factors, np.random.default_rng(1))
    assert obs.shape == (64, RES * RES) and obs.dtype == np.float32
    np.testing.assert_array_equal(obs, render(factors, RES).reshape(64, -1).astype(np.float32))
    np.testing.assert_array_equal(data.sample_observations_from_factors(factors, None), obs)
    images = SpritesFactorData(RES, flatten=False).sample_observations(factors[:3])
    assert images.shape == (3, 1, RES, RES)
    restricted = SpritesFactorData(RES, factors={"orientation": range(0, 40, 10), "shape": ["heart"]})
    sampled = restricted.sample_factors(200, np.random.default_rng(2))
    assert set(np.unique(sampled[:, 2]).tolist()) <= {0, 10, 20, 30}
    assert set(np.unique(sampled[:, 0]).tolist()) == {2}


def test_module_imports_only_numpy_and_stdlib():
    source = open(sprites.__file__, encoding="utf-8").read()
    imported = {
        line.split()[1].split(".")[0] for line in source.splitlines() if line.startswith(("import ", "from "))
    }
    assert imported <= {
        "__future__",
        "collections",
        "dataclasses",
        "hashlib",
        "json",
        "numpy",
        "os",
        "pathlib",
        "tempfile",
        "warnings",
        "zipfile",
    }
    assert os.path.basename(sprites.__file__) == "sprites.py"
