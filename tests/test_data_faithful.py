"""Users' arrays and tables are read as what they hold: pixel arrays by their type's range, the
whole data's range decides validity, .npz side entries are skipped unread, each table column is
scaled on its own, pandas' index column is dropped, columns are matched by name, and a missing
value is called missing. Each test checks the loaded values."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch
import yaml
from conftest import FAST

import vaekit
from vaekit import datasets, runs


@pytest.mark.parametrize(
    ("dtype", "full", "shape"),
    [(np.uint8, 255, (600, 784)), (np.uint16, 65535, (300, 30)), (np.uint8, 255, (200, 12, 12))],
    ids=["flat-uint8", "uint16-table", "uint8-images"],
)
def test_unsigned_integer_arrays_are_pixels_whatever_their_shape(tmp_path, dtype, full, shape):
    gen = np.random.default_rng(0)
    x = gen.integers(0, np.iinfo(dtype).max, size=shape, endpoint=True).astype(dtype)
    x[:, :3] = 0  # near-empty border pixels: standardising them per column would blow them up
    x[0, 0] = 1
    np.save(tmp_path / "x.npy", x)
    data = datasets.load(tmp_path / "x.npy")
    assert data.scaling.name == "unit"
    np.testing.assert_array_equal(data.scaling.scale, [full])
    expected = x.astype(np.float64) / full
    if x.ndim == 3:
        expected = expected[:, None]
    np.testing.assert_allclose(data.x, expected, rtol=1e-6)
    assert data.x.max() <= 1.0 and data.x.min() >= 0.0
    assert any(f"{np.dtype(dtype)} values" in note for note in data.notes)


def test_flat_pixel_array_trains_with_a_pixel_likelihood(cli, tmp_path):
    x = np.random.default_rng(1).integers(0, 256, size=(200, 64)).astype(np.uint8)
    np.save(tmp_path / "x.npy", x)
    code, _, err = cli("train", "--data", tmp_path / "x.npy", "--epochs", "1", "--out", tmp_path / "r", *FAST)
    assert code == 0, err
    assert "read as pixels" in err
    config = yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())
    assert config["model"]["likelihood"] == "bernoulli" and config["data"]["scaling"] == "unit"


def test_the_whole_datas_range_decides_not_the_training_split(cli, tmp_path):
    """Float images in [-1, 1] whose largest value lies in the test split: unit scaling uses the
    whole range, so every value lands in [0, 1] and the Bernoulli default is accepted."""
    gen = np.random.default_rng(2)
    x = gen.uniform(-1, 0.999, size=(100, 1, 6, 6)).astype(np.float32)
    test_row = datasets.split_indices(100, 0.2)[1][0]
    x[test_row, 0, 0, 0] = 1.0000063
    x[test_row, 0, 0, 1] = -1.0000021
    np.save(tmp_path / "x.npy", x)
    data = datasets.load(tmp_path / "x.npy")
    assert float(data.x.max()) == 1.0 and float(data.x.min()) == 0.0
    np.testing.assert_allclose(data.scaling.shift, [np.float32(-1.0000021)])
    np.testing.assert_allclose(
        data.scaling.scale, [np.float32(1.0000063) - np.float32(-1.0000021)], rtol=1e-6
    )
    code, _, err = cli("train", "--data", tmp_path / "x.npy", "--epochs", "1", "--out", tmp_path / "r", *FAST)
    assert code == 0, err


def test_a_range_in_a_message_shows_the_offending_value(cli, tmp_path):
    x = np.full((50, 4), 0.5, np.float32)
    x[7, 2] = 1.0000063
    x += np.random.default_rng(0).uniform(0, 0.1, size=x.shape).astype(np.float32) * (x < 1)
    np.save(tmp_path / "x.npy", x)
    args = ["--data", tmp_path / "x.npy", "--likelihood", "bernoulli", "--scaling", "none", "--epochs", "1"]
    code, _, err = cli("train", *args, "--out", tmp_path / "r", *FAST)
    assert code == 2
    assert "1.0000063" in err and "after none scaling" in err and "--scaling unit" in err
    code, _, err = cli(
        "train", *args[:-4], "--scaling", "standard", "--epochs", "1", "--out", tmp_path / "s", *FAST
    )
    assert code == 2 and "after standard scaling" in err


def _dsprites_like(path):
    gen = np.random.default_rng(3)
    imgs = gen.integers(0, 2, size=(40, 8, 8)).astype(np.uint8)
    classes = np.stack([gen.integers(0, 3, 40), gen.integers(0, 6, 40)], axis=1)
    metadata = np.array({"title": "dSprites-like", "latents_names": ("shape", "scale")}, dtype=object)
    np.savez(path, imgs=imgs, latents_classes=classes, latents_values=classes * 0.5, metadata=metadata)
    return imgs, classes


def test_npz_side_entries_are_skipped_unread(tmp_path, monkeypatch):
    path = tmp_path / "dsprites.npz"
    imgs, classes = _dsprites_like(path)
    calls = []
    monkeypatch.setattr(pickle, "loads", lambda *a, **k: calls.append(a))  # unpickling would show here
    raw = datasets.read_raw(path, keys={"x": "imgs", "factors": "latents_classes"})
    np.testing.assert_array_equal(raw.x, imgs)
    np.testing.assert_array_equal(raw.factors, classes)
    assert calls == []
    (note,) = [n for n in raw.notes if "ignored" in n]
    assert "latents_values" in note and "metadata" in note


def test_npz_without_x_names_its_keys_and_the_option(cli, tmp_path):
    path = tmp_path / "dsprites.npz"
    _dsprites_like(path)
    code, _, err = cli("train", "--data", path, "--epochs", "1", "--out", tmp_path / "r", *FAST)
    assert code == 2
    assert "'imgs'" in err and "'metadata'" in err and "--x-key" in err
    assert not (tmp_path / "r").exists()
    code, _, err = cli(
        "train", "--data", path, "--x-key", "imgs", "--factors-key", "latents_classes",
        "--epochs", "1", "--out", tmp_path / "r", *FAST,
    )  # fmt: skip
    assert code == 0, err
    data = runs.load_data(tmp_path / "r")
    # dSprites' own images: uint8 holding only 0 and 1 are binary, kept 0/1 (not 0 and 1/255)
    assert data.factors.shape == (40, 2) and data.scaling.scale.tolist() == [1.0]
    imgs, _ = _dsprites_like(tmp_path / "again.npz")
    np.testing.assert_array_equal(data.x.reshape(40, 8, 8), imgs)
    assert "holds only 0 and 1 (uint8): read as binary values" in err


def test_each_table_column_is_scaled_on_its_own(tmp_path):
    gen = np.random.default_rng(4)
    x = np.c_[1e6 + gen.normal(size=300) * 1e3, gen.normal(size=300) * 0.005, np.full(300, 3.0)]
    np.save(tmp_path / "t.npy", x)
    data = datasets.load(tmp_path / "t.npy")
    train = x[data.train_idx]
    np.testing.assert_allclose(data.scaling.scale, [train[:, 0].std(), train[:, 1].std(), 1.0], rtol=1e-5)
    assert data.x_train[:, 1].std() == pytest.approx(1.0, rel=1e-3)  # the small column is not ignored
    unit = datasets.load(tmp_path / "t.npy", scaling="unit")
    np.testing.assert_allclose(unit.scaling.shift, x.min(0), rtol=1e-6)
    np.testing.assert_allclose(unit.scaling.scale, [np.ptp(x[:, 0]), np.ptp(x[:, 1]), 1.0], rtol=1e-5)
    assert np.allclose(unit.x[:, :2].min(0), 0, atol=1e-5) and np.allclose(unit.x[:, :2].max(0), 1, atol=1e-5)


def _table(path, columns, rows, index=False):
    lines = [("," if index else "") + ",".join(columns)]
    for i, row in enumerate(rows):
        lines.append((f"{i}," if index else "") + ",".join(repr(float(v)) for v in row))
    path.write_text("\n".join(lines) + "\n")


def test_pandas_index_is_dropped_and_columns_are_matched_by_name(cli, tmp_path):
    pd = pytest.importorskip("pandas")
    gen = np.random.default_rng(5)
    values = gen.normal(size=(120, 3)) * [1.0, 10.0, 100.0]
    pd.DataFrame(values, columns=["a", "b", "c"]).to_csv(tmp_path / "train.csv")  # with its index
    code, _, err = cli(
        "train", "--data", tmp_path / "train.csv", "--epochs", "1", "--out", tmp_path / "r", *FAST
    )
    assert code == 0, err
    assert "holds row identifiers" in err
    data = runs.load_data(tmp_path / "r")
    assert data.column_names == ["a", "b", "c"] and data.shape == (3,)
    # score a file without the index, columns reordered, one extra column
    _table(
        tmp_path / "new.csv", ["c", "extra", "a", "b"], np.c_[values[:, 2], values[:, 0] * 0, values[:, :2]]
    )
    code, _, err = cli("score", tmp_path / "r", "--data", tmp_path / "new.csv", "--out", tmp_path / "s1.csv")
    assert code == 0, err
    assert "'extra'" in err
    _table(tmp_path / "same.csv", ["a", "b", "c"], values)
    assert cli("score", tmp_path / "r", "--data", tmp_path / "same.csv", "--out", tmp_path / "s2.csv")[0] == 0
    s1 = np.loadtxt(tmp_path / "s1.csv", delimiter=",", skiprows=1)
    s2 = np.loadtxt(tmp_path / "s2.csv", delimiter=",", skiprows=1)
    np.testing.assert_allclose(s1[:, 3], s2[:, 3], rtol=1e-6)  # the rate: same rows, same codes
    _table(tmp_path / "short.csv", ["a", "c"], values[:, [0, 2]])
    code, _, err = cli(
        "score", tmp_path / "r", "--data", tmp_path / "short.csv", "--out", tmp_path / "s3.csv"
    )
    assert code == 2 and "lacks the column 'b'" in err and not (tmp_path / "s3.csv").exists()


def test_columns_and_drop_columns_choose_the_features(cli, tmp_path):
    gen = np.random.default_rng(6)
    _table(tmp_path / "t.csv", ["id", "a", "b", "c"], np.c_[np.arange(50) + 1000, gen.normal(size=(50, 3))])
    code, _, err = cli(
        "train",
        "--data",
        tmp_path / "t.csv",
        "--drop-columns",
        "id",
        "--epochs",
        "1",
        "--out",
        tmp_path / "r",
        *FAST,
    )
    assert code == 0, err
    assert runs.load_data(tmp_path / "r").column_names == ["a", "b", "c"]
    code, _, err = cli(
        "train",
        "--data",
        tmp_path / "t.csv",
        "--columns",
        "c,a",
        "--epochs",
        "1",
        "--out",
        tmp_path / "q",
        *FAST,
    )
    assert code == 0, err
    data = runs.load_data(tmp_path / "q")
    assert data.column_names == ["c", "a"] and data.shape == (2,)
    code, _, err = cli(
        "train", "--data", tmp_path / "t.csv", "--columns", "a,zz", "--out", tmp_path / "z", *FAST
    )
    assert code == 2 and "no column 'zz'" in err


@pytest.mark.parametrize("cell", ["", "nan", "NA", "null", "#N/A", "<NA>"])
def test_a_missing_value_is_called_missing(cli, tmp_path, cell):
    text = "f1,f2,f3\n1,2,3\n4,5,6\n7,8," + cell + "\n1,1,1\n"
    (tmp_path / "t.csv").write_text(text)
    code, _, err = cli("train", "--data", tmp_path / "t.csv", "--out", tmp_path / "r", *FAST)
    assert code == 2
    assert "line 4, column 'f3'" in err and "missing cells" in err and "'f3' 1, in 1 of 4 rows" in err
    assert "--missing drop-rows" in err and "--missing model" in err
    assert "--label-column" not in err


def test_a_table_is_modelled_column_by_column_with_its_spread_per_row(cli, tmp_path):
    _table(tmp_path / "t.csv", ["a", "b"], np.random.default_rng(7).normal(size=(60, 2)))
    code, _, err = cli(
        "train", "--data", tmp_path / "t.csv", "--epochs", "1", "--out", tmp_path / "r", "--device", "cpu"
    )
    assert code == 0, err
    assert "columns likelihood" in err and "a     real         Gaussian (standardised" in err
    config = yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())
    assert config["model"]["likelihood"] == "columns"
    assert [c["type"] for c in config["model"]["columns"]["columns"]] == ["real", "real"]
    assert config["data"]["schema"] == config["model"]["columns"]
    model = vaekit.load(tmp_path / "r")
    assert model.decoder(torch.zeros(1, 2), None).shape == (1, 4)  # mean and log sigma per column
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert np.isfinite(summary["nll"])


# ----------------------------------------------------------------------------- summaries that do not mislead


def test_one_class_labels_give_null_label_scores_with_a_note(cli, tmp_path):
    x = np.random.default_rng(8).normal(size=(80, 3))
    np.savez(tmp_path / "d.npz", x=x, y=np.zeros(80, int))
    code, _, err = cli("train", "--data", tmp_path / "d.npz", "--epochs", "1", "--out", tmp_path / "r", *FAST)
    assert code == 0, err
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["knn_accuracy"] is None and summary["logistic_accuracy"] is None
    assert any("one class" in n for n in summary["notes"]) and "one class" in err
    assert "NaN" not in (tmp_path / "r" / "summary.json").read_text()


def test_a_tiny_test_split_gives_null_statistics_with_a_warning(cli, tmp_path):
    x = np.random.default_rng(9).normal(size=(60, 5))
    np.save(tmp_path / "x.npy", x)
    args = ["--data", tmp_path / "x.npy", "--latent-dim", "4", "--epochs", "1", "--test-size", "5"]
    code, _, err = cli("train", *args, "--out", tmp_path / "r", *FAST)
    assert code == 0, err
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["n_test"] == 5
    assert summary["active_units"] is None and summary["aggregate_posterior_kl"] is None
    assert len(summary["per_dim_kl"]) == 4 and all(v >= 0 for v in summary["per_dim_kl"])
    assert "warning:" in err and "at least 10 test examples" in err


def test_an_exploded_loss_is_a_diverged_run(cli, tmp_path):
    """Values of 1e6 with --scaling none: the loss is finite but about 1e11 nats per dimension."""
    x = np.random.default_rng(10).normal(size=(60, 3)) * 1e6
    np.save(tmp_path / "x.npy", x)
    args = ["--data", tmp_path / "x.npy", "--scaling", "none", "--likelihood", "gaussian", "--epochs", "2"]
    code, _, err = cli("train", *args, "--out", tmp_path / "r", *FAST)
    assert code == 3
    assert "diverged" in err and "per dimension" in err and "epoch 1" in err
    assert (
        "no epoch had finished" in err
        and "a change of the data or model is a new run: --out with --overwrite" in err
    )
    assert not (tmp_path / "r" / "summary.json").exists()


def test_half_precision_on_a_cpu_is_refused_not_swapped(cli, tmp_path):
    args = ["train", "--data", "digits", "--epochs", "1", "--precision", "16-mixed"]
    code, _, err = cli(*args, "--out", tmp_path / "r", *FAST)
    assert code == 2 and "needs a CUDA device" in err and "bf16-mixed" in err
    assert not (tmp_path / "r" / "config.yaml").exists()


def test_a_separate_test_file_forms_the_test_split(cli, tmp_path):
    gen = np.random.default_rng(11)
    train, test = gen.normal(size=(90, 3)) * [1, 5, 50], gen.normal(size=(25, 3)) * [1, 5, 50] + 3
    _table(tmp_path / "train.csv", ["a", "b", "c"], train)
    _table(tmp_path / "test.csv", ["c", "a", "b"], test[:, [2, 0, 1]])  # another column order
    args = ["--data", tmp_path / "train.csv", "--test-data", tmp_path / "test.csv", "--epochs", "1"]
    code, _, err = cli("train", *args, "--out", tmp_path / "r", *FAST)
    assert code == 0, err
    config = yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())
    assert config["data"]["test_data"] == str((tmp_path / "test.csv").resolve())
    data = runs.load_data(tmp_path / "r")
    assert len(data.train_idx) == 90 and len(data.test_idx) == 25
    mean, std = train.mean(0), train.std(0)  # fitted on the training file only
    np.testing.assert_allclose([c.constants["mean"] for c in data.schema.columns], mean, rtol=1e-9)
    np.testing.assert_allclose(data.x_test, (test - mean) / std, rtol=1e-4, atol=1e-5)
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["n_test"] == 25
    np.save(tmp_path / "wrong.npy", gen.normal(size=(10, 4)))
    args = ["--data", tmp_path / "train.csv", "--test-data", tmp_path / "wrong.npy", "--epochs", "1"]
    code, _, err = cli("train", *args, "--out", tmp_path / "w", *FAST)
    assert code == 2 and "wrong.npy are not both tables" in err


# ----------------------------------------------------------------------------- HDF5 and Parquet


def _frame_values(n=50, seed=12):
    gen = np.random.default_rng(seed)
    return gen.normal(size=(n, 3)) * [1e-3, 1.0, 1e4], np.where(gen.random(n) > 0.5, "sig", "bkg")


def test_parquet_round_trip_with_a_label_column(cli, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    values, kind = _frame_values()
    table = pa.table({"px": values[:, 0], "kind": kind, "py": values[:, 1], "e": values[:, 2]})
    pq.write_table(table, tmp_path / "events.parquet")
    raw = datasets.read_raw(tmp_path / "events.parquet", label_column="kind")
    np.testing.assert_array_equal(raw.x, values)  # exact
    assert raw.column_names == ["px", "py", "e"]
    np.testing.assert_array_equal(np.asarray(raw.label_names)[raw.y], kind)
    args = ["--data", tmp_path / "events.parquet", "--label-column", "kind", "--epochs", "1"]
    code, _, err = cli("train", *args, "--out", tmp_path / "r", *FAST)
    assert code == 0, err
    assert runs.load_data(tmp_path / "r").column_names == ["px", "py", "e"]
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [4.0, 5.0, 6.0]}, index=[10, 11, 12])
    frame.to_parquet(tmp_path / "indexed.parquet")  # pandas stores its index as a column
    raw = datasets.read_raw(tmp_path / "indexed.parquet")
    assert raw.column_names == ["a", "b"] and raw.x.tolist() == [[1, 4], [2, 5], [3, 6]]
    with_null = pa.table({"a": pa.array([1.0, None, 3.0]), "b": [1.0, 2.0, 3.0]})
    pq.write_table(with_null, tmp_path / "null.parquet")
    code, _, err = cli("train", "--data", tmp_path / "null.parquet", "--out", tmp_path / "n", *FAST)
    assert code == 2 and "missing cells" in err and "'a' 1, in 1 of 3 rows" in err


def test_hdf5_datasets_compound_tables_and_column_groups(cli, tmp_path):
    import h5py

    values, _ = _frame_values()
    compound = np.zeros(len(values), dtype=[("px", "f8"), ("py", "f4"), ("e", "f8")])
    for j, name in enumerate(("px", "py", "e")):
        compound[name] = values[:, j]
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f["plain"] = values
        f["events"] = compound
        group = f.create_group("columns")
        group["a"], group["b"] = values[:, 0], values[:, 2]
    code, _, err = cli("train", "--data", tmp_path / "d.h5", "--out", tmp_path / "r", *FAST)
    assert code == 2 and "--key" in err and "plain" in err and "events" in err
    blocks = np.zeros(4, dtype=[("index", "i8"), ("values_block_0", "f8", (3,))])  # pandas' to_hdf table
    with h5py.File(tmp_path / "pandas.h5", "w") as f:
        f["table"] = blocks
    code, _, err = cli("train", "--data", tmp_path / "pandas.h5", "--out", tmp_path / "p", *FAST)
    assert code == 2 and "'values_block_0' has shape (4, 3)" in err
    raw = datasets.read_raw(tmp_path / "d.h5", keys={"table": "plain"})
    np.testing.assert_array_equal(raw.x, values)
    raw = datasets.read_raw(tmp_path / "d.h5", keys={"table": "events"})
    assert raw.column_names == ["px", "py", "e"]
    np.testing.assert_array_equal(raw.x[:, [0, 2]], values[:, [0, 2]])
    np.testing.assert_array_equal(raw.x[:, 1], values[:, 1].astype(np.float32))
    raw = datasets.read_raw(tmp_path / "d.h5", keys={"table": "columns"})
    assert raw.column_names == ["a", "b"]
    np.testing.assert_array_equal(raw.x, values[:, [0, 2]])
    code, _, err = cli(
        "train",
        "--data",
        tmp_path / "d.h5",
        "--key",
        "events",
        "--epochs",
        "1",
        "--out",
        tmp_path / "r",
        *FAST,
    )
    assert code == 0, err
    assert runs.load_data(tmp_path / "r").column_names == ["px", "py", "e"]


# ----------------------------------------------------------------------------- images from the command line


def test_a_16_bit_image_folder_trains_on_its_true_values(cli, tmp_path):
    """The case that trained on all-ones images: 16-bit PNGs with values 1000-1400."""
    from PIL import Image

    gen = np.random.default_rng(13)
    folder = tmp_path / "stamps"
    folder.mkdir()
    stored = gen.integers(1000, 1401, size=(20, 12, 12)).astype(np.uint16)
    for i, image in enumerate(stored):
        Image.fromarray(image).save(folder / f"{i:03d}.png")  # Pillow writes mode I;16
    code, _, err = cli("train", "--data", folder, "--epochs", "1", "--out", tmp_path / "r", *FAST)
    assert code == 0, err
    data = runs.load_data(tmp_path / "r")
    np.testing.assert_array_equal(data.scaling.scale, [65535.0])
    np.testing.assert_allclose(data.x[:, 0], stored / 65535.0, rtol=1e-6)
    assert data.x.std() > 0  # not a constant image
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert np.isfinite(summary["elbo"])


def test_mixed_grey_and_colour_images_with_transparency(cli, tmp_path):
    """A folder where a few images are grey and one has alpha: all become RGB (said once), the
    transparent pixel shows the stated background, and the run reloads the same way."""
    from PIL import Image

    folder = tmp_path / "mixed"
    folder.mkdir()
    gen = np.random.default_rng(14)
    colour = gen.integers(0, 256, size=(6, 8, 8, 3)).astype(np.uint8)
    for i, image in enumerate(colour):
        Image.fromarray(image).save(folder / f"c{i}.png")
    grey = gen.integers(0, 256, size=(8, 8)).astype(np.uint8)
    Image.fromarray(grey).save(folder / "g0.png")
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0] = 255  # red everywhere, fully transparent in the top-left pixel
    rgba[..., 3] = 255
    rgba[0, 0, 3] = 0
    Image.fromarray(rgba, "RGBA").save(folder / "t0.png")
    args = ["--data", folder, "--background", "0", "--epochs", "1", "--test-size", "2"]
    code, _, err = cli("train", *args, "--out", tmp_path / "r", *FAST)
    assert code == 0, err
    assert err.count("promoted to RGB") == 1
    data = runs.load_data(tmp_path / "r")
    assert data.shape == (3, 8, 8)
    names = sorted([f"c{i}.png" for i in range(6)] + ["g0.png", "t0.png"])
    x = {name: data.x[i] for i, name in enumerate(names)}
    np.testing.assert_allclose(x["g0.png"], np.repeat(grey[None] / 255.0, 3, 0), rtol=1e-6)
    np.testing.assert_allclose(x["t0.png"][:, 0, 0], [0, 0, 0])  # transparent: the black background
    np.testing.assert_allclose(x["t0.png"][:, 1, 1], [1, 0, 0])  # opaque red


def test_an_image_folder_of_any_size_trains_a_conv_net(cli, tmp_path):
    """96 x 72 RGB stamps: auto picks the conv net, and reconstructions have the images' shape."""
    import torch
    from PIL import Image

    folder = tmp_path / "stamps"
    folder.mkdir()
    gen = np.random.default_rng(15)
    for i in range(12):
        Image.fromarray(gen.integers(0, 256, size=(72, 96, 3)).astype(np.uint8)).save(folder / f"{i}.png")
    code, _, err = cli("train", "--data", folder, "--epochs", "1", "--out", tmp_path / "r", *FAST)
    assert code == 0, err
    config = yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())
    assert config["model"]["arch"] == "conv" and config["model"]["data_shape"] == [3, 72, 96]
    model, data = runs.load(tmp_path / "r"), runs.load_data(tmp_path / "r")
    with torch.no_grad():
        assert model.reconstruct(torch.as_tensor(data.x_test)).shape == (len(data.x_test), 3, 72, 96)


def test_test_file_labels_join_by_value_and_ranges_must_match(cli, tmp_path):
    """Labels 0.0/1.0 in the training file and 0/1 in the test file are the same two classes;
    an 8-bit training array with a 16-bit test array is refused, naming both."""
    gen = np.random.default_rng(16)
    train, test = gen.normal(size=(40, 2)), gen.normal(size=(10, 2))
    (tmp_path / "train.csv").write_text(
        "a,b,y\n" + "".join(f"{r[0]},{r[1]},{i % 2}.0\n" for i, r in enumerate(train))
    )
    (tmp_path / "test.csv").write_text(
        "a,b,y\n" + "".join(f"{r[0]},{r[1]},{i % 2}\n" for i, r in enumerate(test))
    )
    data = datasets.load(tmp_path / "train.csv", label_column="y", test_data=tmp_path / "test.csv")
    assert data.label_names is None and sorted(set(data.y.tolist())) == [0, 1]
    np.testing.assert_array_equal(data.labels("test"), np.arange(10) % 2)
    np.save(tmp_path / "a8.npy", gen.integers(0, 256, size=(20, 4, 4)).astype(np.uint8))
    np.save(tmp_path / "a16.npy", gen.integers(0, 65536, size=(5, 4, 4)).astype(np.uint16))
    args = ["--data", tmp_path / "a8.npy", "--test-data", tmp_path / "a16.npy", "--epochs", "1"]
    code, _, err = cli("train", *args, "--out", tmp_path / "r", *FAST)
    assert code == 2 and "a8.npy" in err and "a16.npy" in err and "different ranges" in err


def test_a_reloaded_run_sees_the_inputs_it_was_trained_on(cli, tmp_path):
    """load_data uses the scaling saved with the weights; a file that now reads with another
    shape is refused with a sentence, not a traceback."""
    gen = np.random.default_rng(17)
    _table(tmp_path / "t.csv", ["a", "b", "c"], gen.normal(size=(60, 3)) * [1, 10, 100])
    assert cli("train", "--data", tmp_path / "t.csv", "--epochs", "1", "--out", tmp_path / "r", *FAST)[0] == 0
    model = runs.load(tmp_path / "r")
    _table(tmp_path / "t.csv", ["a", "b", "c"], gen.normal(size=(60, 3)) * [5, 50, 500])  # the file changed
    data = runs.load_data(tmp_path / "r")
    assert data.schema.spec() == model.likelihood.schema.spec()  # the saved constants, not refitted
    np.testing.assert_array_equal(data.x, data.schema.to_model(data.extra["frame"]).astype(np.float32))
    _table(tmp_path / "t.csv", ["a", "b", "c", "d"], gen.normal(size=(60, 4)))
    code, _, err = cli("evaluate", tmp_path / "r")
    assert code == 2 and "now reads as examples of shape (4,)" in err and "(3,)" in err


def test_every_file_format_has_one_row_and_is_read_and_listed(cli, tmp_path):
    """datasets.FORMATS is the one list of formats: every suffix in it reads, `vaekit datasets`
    prints every row, and an unknown suffix's message names every format."""
    import pandas as pd
    from PIL import Image

    frame = pd.DataFrame({"a": np.arange(6.0) / 7, "b": np.arange(6.0) ** 2})
    writers = {
        ".npy": lambda p: np.save(p, frame.to_numpy()),
        ".npz": lambda p: np.savez(p, x=frame.to_numpy()),
        ".csv": lambda p: frame.to_csv(p, index=False),
        ".tsv": lambda p: frame.to_csv(p, index=False, sep="\t"),
        ".txt": lambda p: np.savetxt(p, frame.to_numpy(), header="a b", comments=""),
        ".parquet": lambda p: frame.to_parquet(p, index=False),
        ".pq": lambda p: frame.to_parquet(p, index=False),
        ".png": lambda p: Image.fromarray(np.zeros((4, 4), np.uint8)).save(p),
    }
    for form in datasets.FORMATS:
        for suffix in form.suffixes:
            if suffix not in writers:
                continue
            path = tmp_path / f"f{suffix}"
            writers[suffix](path)
            raw = datasets.read_raw(path)
            assert datasets.format_of(path) is form
            if form.labels_by_column:
                assert raw.frame["b"].tolist() == frame["b"].tolist(), suffix
    untested = {s for f in datasets.FORMATS for s in f.suffixes} - set(writers)
    assert untested <= {
        ".h5",
        ".hdf5",
        ".hdf",
        ".jpg",
        ".jpeg",
        ".bmp",
        ".gif",
        ".tif",
        ".tiff",
    }  # tested elsewhere
    _, out, _ = cli("datasets")
    assert all(form.help in out for form in datasets.FORMATS)
    (tmp_path / "x.xyz").write_text("1")
    code, _, err = cli("train", "--data", tmp_path / "x.xyz", "--out", tmp_path / "r")
    assert code == 2 and all(form.name in err for form in datasets.FORMATS)


def test_an_hdf5_file_of_images_is_read_as_arrays_not_as_its_label_table(cli, tmp_path):
    """Laid out like 3D Shapes: images (n, 16, 16, 3) uint8 beside labels (n, 6) floats."""
    import h5py

    gen = np.random.default_rng(11)
    images = gen.integers(0, 256, size=(30, 16, 16, 3)).astype(np.uint8)
    labels = gen.random((30, 6))
    path = tmp_path / "shapes.h5"
    with h5py.File(path, "w") as f:
        f["images"] = images
        f["labels"] = labels
    raw = datasets.read_raw(path)
    np.testing.assert_array_equal(raw.x, images)
    assert raw.factors is None
    assert any("read images as x; ignored labels" in n for n in raw.notes)
    data = datasets.load(path, keys={"factors": "labels"})
    assert data.shape == (3, 16, 16) and data.is_image
    np.testing.assert_array_equal(data.x * 255, images.transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(data.factors, labels)
    np.testing.assert_array_equal(datasets.read_raw(path, keys={"table": "images"}).x, images)  # --key images
    with h5py.File(tmp_path / "mixed.h5", "w") as f:  # a column named x beside a table: --key wins
        f["x"] = np.arange(30.0)
        f["measurements"] = gen.normal(size=(30, 4))
    assert datasets.read_raw(tmp_path / "mixed.h5", keys={"table": "measurements"}).x.shape == (30, 4)
    with h5py.File(tmp_path / "two.h5", "w") as f:
        f["a"], f["b"] = images, images
    code, _, err = cli("train", "--data", tmp_path / "two.h5", "--out", tmp_path / "r", *FAST)
    assert code == 2 and "holds 2 image-shaped datasets (a, b); name the observations with --x-key" in err


def test_pixel_types_are_recognised_by_kind_and_size_not_byte_order(cli, tmp_path):
    gen = np.random.default_rng(12)
    native = gen.integers(0, 65536, size=(30, 8, 8)).astype(np.uint16)
    np.save(tmp_path / "native.npy", native)
    np.save(tmp_path / "big.npy", native.astype(">u2"))
    a, b = datasets.load(tmp_path / "native.npy"), datasets.load(tmp_path / "big.npy")
    assert a.scaling.scale.tolist() == b.scaling.scale.tolist() == [65535.0]
    np.testing.assert_array_equal(a.x, b.x)
    # a big-endian test file beside native training data is the same kind of data
    both = datasets.load(tmp_path / "native.npy", test_data=tmp_path / "big.npy")
    assert len(both.test_idx) == 30


def test_values_decide_the_scaling_and_each_choice_is_said(tmp_path):
    gen = np.random.default_rng(13)
    binary = gen.integers(0, 2, size=(30, 8, 8)).astype(np.uint8)
    np.save(tmp_path / "binary.npy", binary)
    data = datasets.load(tmp_path / "binary.npy")
    np.testing.assert_array_equal(data.x[:, 0], binary)  # kept 0/1, not 0 and 1/255
    assert any("holds only 0 and 1 (uint8): read as binary" in n for n in data.notes)
    grey = gen.integers(0, 256, size=(30, 8, 8)).astype(np.float32)  # pixels stored as floats
    np.save(tmp_path / "grey.npy", grey)
    data = datasets.load(tmp_path / "grey.npy")
    assert data.scaling.scale.tolist() == [255.0]
    np.testing.assert_allclose(data.x[:, 0] * 255, grey)
    assert any(
        "whole numbers 0-255 stored as float32, shaped like images: read as 8-bit" in n for n in data.notes
    )
    wide = gen.integers(0, 4096, size=(30, 8, 8)).astype(np.float64)  # 16-bit pixels stored as floats
    np.save(tmp_path / "wide.npy", wide)
    assert datasets.load(tmp_path / "wide.npy").scaling.scale.tolist() == [65535.0]
    counts = gen.integers(0, 200, size=(30, 5)).astype(np.float64)  # a small table of counts: measurements
    np.save(tmp_path / "counts.npy", counts)
    data = datasets.load(tmp_path / "counts.npy")
    assert data.scaling.name == "standard" and not any("pixels" in n for n in data.notes)


def test_a_count_table_is_not_taken_for_pixels_and_a_broken_record_is_one_line(cli, tmp_path):
    counts = np.random.default_rng(14).poisson(20, size=(40, 1000)).astype(np.float64)  # 1,000 genes
    np.save(tmp_path / "counts.npy", counts)
    assert datasets.load(tmp_path / "counts.npy").scaling.name == "standard"
    flat = np.random.default_rng(15).integers(0, 256, size=(40, 784)).astype(np.float64)  # flat 28x28 pixels
    np.save(tmp_path / "flat.npy", flat)
    assert datasets.load(tmp_path / "flat.npy").scaling.scale.tolist() == [255.0]
    run = tmp_path / "run"
    assert cli("train", "--data", "digits", "--epochs", "1", "--out", run, *FAST)[0] == 0
    (run / "config.yaml").write_text((run / "config.yaml").read_text() + "\n  bad: [unclosed\n")
    code, _, err = cli("evaluate", run)
    assert code == 2 and "is not valid YAML" in err and "undo the edit" in err
    assert len([line for line in err.strip().splitlines() if not line.startswith("warning")]) == 1


def test_an_hdf5_of_objects_by_quantities_reads_as_named_columns(tmp_path):
    """The LHC anomaly-detection challenge's layout: `Particles` (n, 19, 4) with `Particles_Names`
    and `Particles_Classes`: a table of 76 columns named per object and quantity, not images."""
    import h5py

    gen = np.random.default_rng(3)
    particles = gen.normal(size=(30, 19, 4)).astype(np.float32)
    particles[:, :, 3] = np.array([1] + [2] * 4 + [3] * 4 + [4] * 10)
    with h5py.File(tmp_path / "bkg.h5", "w") as f:
        f.create_dataset("Particles", data=particles)
        f.create_dataset("Particles_Names", data=np.array([b"Pt", b"Eta", b"Phi", b"Class"]))
        f.create_dataset(
            "Particles_Classes",
            data=np.array([b"MET_class_1", b"Four_Ele_class_2", b"Four_Mu_class_3", b"Ten_Jet_class_4"]),
        )
    raw = datasets.read_raw(tmp_path / "bkg.h5")
    assert raw.kind == "tabular" and len(raw.column_names) == 76
    assert raw.column_names[:5] == ["MET_pT", "MET_eta", "MET_phi", "MET_class", "ele1_pT"]
    assert raw.column_names[-4:] == ["jet10_pT", "jet10_eta", "jet10_phi", "jet10_class"]
    np.testing.assert_array_equal(raw.frame["mu2_eta"].to_numpy(), particles[:, 6, 1])
    np.testing.assert_array_equal(raw.frame["jet1_pT"].to_numpy(), particles[:, 9, 0])
