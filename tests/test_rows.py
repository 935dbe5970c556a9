"""Data larger than memory: above `VAEKIT_MEMORY_LIMIT` a data set stays as stored (uint8 pixels,
a memory-mapped .npy, an HDF5 dataset read in chunks) and is scaled per batch. Every value read
equals the in-memory one, a run trains to the same numbers, and the process's memory stays
bounded."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest
import torch
from conftest import FAST

from vaekit import datasets
from vaekit.batch import Batch
from vaekit.datasets.rows import Rows, memory_limit
from vaekit.errors import VaekitError


def _both(path, monkeypatch, **kwargs):
    """The data set loaded whole (no limit) and kept as stored (a 1-byte limit)."""
    monkeypatch.setenv("VAEKIT_MEMORY_LIMIT", "64G")
    whole = datasets.load(path, **kwargs)
    monkeypatch.setenv("VAEKIT_MEMORY_LIMIT", "1")
    stored = datasets.load(path, **kwargs)
    return whole, stored


def _h5(path, name, array, **options):
    with h5py.File(path, "w") as f:
        f.create_dataset(name, data=array, **options)
        f.create_dataset("labels", data=np.arange(len(array)) % 3)
    return path


GEN = np.random.default_rng(0)
CASES = {
    "npy-uint8-images": lambda d: _save(d / "a.npy", GEN.integers(0, 256, (40, 12, 12)).astype(np.uint8)),
    "npy-big-endian-uint16": lambda d: _save(d / "b.npy", GEN.integers(0, 65536, (40, 8, 8)).astype(">u2")),
    "npy-channels-last-rgb": lambda d: _save(
        d / "c.npy", GEN.integers(0, 256, (40, 8, 8, 3)).astype(np.uint8)
    ),
    "npy-float-table": lambda d: _save(d / "d.npy", GEN.normal(5, 3, (40, 7))),
    "npy-big-endian-float64": lambda d: _save(d / "d2.npy", GEN.normal(5, 3, (40, 7)).astype(">f8")),
    "npy-five-dims": lambda d: _save(d / "d3.npy", GEN.normal(0, 1, (40, 2, 2, 2, 2)).astype(np.float32)),
    "npy-int-counts": lambda d: _save(d / "e.npy", GEN.poisson(4, (40, 6)).astype(np.int32)),
    "npy-one-column": lambda d: _save(d / "f.npy", GEN.normal(0, 1, 40).astype(np.float32)),
    "h5-contiguous": lambda d: _h5(
        d / "g.h5", "images", GEN.integers(0, 256, (40, 8, 8, 3)).astype(np.uint8)
    ),
    "h5-chunked-gzip": lambda d: _h5(
        d / "h.h5",
        "images",
        GEN.integers(0, 256, (40, 8, 8)).astype(np.uint8),
        chunks=(7, 8, 8),
        compression="gzip",
    ),
}


def _save(path, array):
    np.save(path, array)
    return path


@pytest.mark.parametrize("case", list(CASES))
def test_values_read_per_batch_equal_the_in_memory_ones(case, tmp_path, monkeypatch):
    path = CASES[case](tmp_path)
    whole, stored = _both(path, monkeypatch, test_size=8)
    assert isinstance(stored.x, Rows) and isinstance(whole.x, np.ndarray)
    assert stored.shape == whole.shape and stored.scaling.name == whole.scaling.name
    np.testing.assert_array_equal(np.asarray(stored.x), whole.x)
    np.testing.assert_array_equal(np.asarray(stored.x_train), whole.x_train)
    np.testing.assert_array_equal(stored.x[[5, 1, 5, 30]], whole.x[[5, 1, 5, 30]])  # any order, repeats
    np.testing.assert_array_equal(stored.x[np.arange(40) % 2 == 0], whole.x[::2])
    np.testing.assert_array_equal(stored.x[-1], whole.x[-1])
    assert stored.value_range == whole.value_range and stored.describe() == whole.describe()
    np.testing.assert_array_equal(stored.scaling.shift, whole.scaling.shift)
    np.testing.assert_array_equal(stored.scaling.scale, whole.scaling.scale)
    # a batch indexes them as tensors, on the index's device
    batch = Batch(stored.x_train)[torch.tensor([3, 0])]
    assert torch.equal(batch.x, torch.as_tensor(whole.x_train[[3, 0]]))


def test_a_compressed_hdf5_larger_than_memory_is_read_per_batch_with_a_note(tmp_path, monkeypatch):
    path = CASES["h5-chunked-gzip"](tmp_path)
    monkeypatch.setenv("VAEKIT_MEMORY_LIMIT", "1")
    data = datasets.load(path, test_size=8)
    assert type(data.x.source).__name__ == "Dataset"  # h5py's: read per batch
    assert any(
        "compressed and larger than memory allows" in n and "VAEKIT_MEMORY_LIMIT" in n for n in data.notes
    )
    monkeypatch.setenv("VAEKIT_MEMORY_LIMIT", "5K")  # 2,560 stored bytes fit, 10,240 as float32 not
    data = datasets.load(path, test_size=8)
    assert isinstance(data.x.source, np.ndarray) and data.x.stored_dtype == np.uint8


def test_nan_in_a_mapped_file_is_counted_and_placed(tmp_path, monkeypatch):
    x = GEN.normal(size=(50, 4))
    x[7, 2] = x[9, 0] = np.nan
    x[30, 1] = np.inf
    np.save(tmp_path / "x.npy", x)
    monkeypatch.setenv("VAEKIT_MEMORY_LIMIT", "1")
    with pytest.raises(
        VaekitError, match=r"2 NaN values and 1 Inf value \(the first at example 7, position \(2,\)\)"
    ):
        datasets.load(tmp_path / "x.npy")


def test_a_bad_memory_limit_is_one_sentence(monkeypatch, cli, tmp_path):
    monkeypatch.setenv("VAEKIT_MEMORY_LIMIT", "lots")
    with pytest.raises(VaekitError, match="is not a size; give bytes, or a number with K, M or G"):
        memory_limit()
    code, _, err = cli("train", "--data", "digits", "--out", tmp_path / "run")  # said even for small data
    assert code == 2 and "VAEKIT_MEMORY_LIMIT='lots' is not a size" in err and not (tmp_path / "run").exists()
    monkeypatch.setenv("VAEKIT_MEMORY_LIMIT", "1.5G")
    assert memory_limit() == int(1.5 * 2**30)


def test_a_run_on_stored_rows_trains_to_the_same_numbers(cli, tmp_path, monkeypatch):
    x = GEN.integers(0, 256, (120, 10, 10)).astype(np.uint8)
    np.save(tmp_path / "x.npy", x)
    results = []
    for limit in ("64G", "1"):
        monkeypatch.setenv("VAEKIT_MEMORY_LIMIT", limit)
        out = tmp_path / f"run-{limit}"
        code, _, err = cli("train", "--data", tmp_path / "x.npy", "--epochs", "2", "--out", out, *FAST)
        assert code == 0, err
        metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
        summary = json.loads((out / "summary.json").read_text())
        results.append(([m["train_loss"] for m in metrics], summary["elbo"], summary["nll"]))
    assert results[0] == results[1]


MEASURE = r"""
import json, os, sys, threading, time
import numpy as np
from vaekit import datasets, train
from vaekit.model import VAE

def anon():
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024
peak = [0]
stop = threading.Event()
def watch():
    while not stop.is_set():
        peak[0] = max(peak[0], anon())
        time.sleep(0.02)
data = datasets.load(sys.argv[1], test_size=1000)  # one test split size: the same evaluation batches
model = VAE.for_data(data, latent_dim=4, arch="mlp", hidden=(32,))
base = anon()
thread = threading.Thread(target=watch, daemon=True)
thread.start()
train.fit(model, data, epochs=1, batch_size=256, nll_samples=2, device="cpu")
stop.set(); thread.join()
print(json.dumps({"base": base, "peak": peak[0], "lazy": type(data.x).__name__}))
"""


def _peak_anonymous_memory(path, tmp_path) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, str(path)],
        capture_output=True,
        text=True,
        env={**os.environ, "VAEKIT_MEMORY_LIMIT": "1M"},
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def _pixels(path, n, side=64):
    x = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(n, side, side))
    for start in range(0, n, 2000):
        x[start : start + 2000] = GEN.integers(0, 256, (min(2000, n - start), side, side), dtype=np.uint8)
    x.flush()
    return path


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads /proc (Linux)")
def test_training_on_a_mapped_file_larger_than_the_limit_keeps_memory_bounded(tmp_path):
    """The peak anonymous memory (not the file's pages, which the kernel may drop) of training
    and evaluating on 30,000 64x64 images against 2,000 (1,000 test images each): the difference
    stays far below a float32 copy of the 28,000 more images (459 MB), so the data are never held
    as floats. Measured with 12,000 images: -37 to +74 MB over repeats (allocator noise), hence
    the larger set and a bound of a third of the copy."""
    n = 30_000
    big = _peak_anonymous_memory(_pixels(tmp_path / "big.npy", n), tmp_path)
    small = _peak_anonymous_memory(_pixels(tmp_path / "small.npy", 2000), tmp_path)
    assert big["lazy"] == small["lazy"] == "Rows"
    float32_bytes = (n - 2000) * 64 * 64 * 4
    assert big["peak"] - small["peak"] < float32_bytes / 3, (big, small)


def _image_folder(root, n=24, mode="L", size=(10, 12)):
    from PIL import Image

    gen = np.random.default_rng(4)
    for i in range(n):
        label = ("cats", "dogs")[i % 2]
        (root / label).mkdir(parents=True, exist_ok=True)
        bands = len(mode)
        pixels = gen.integers(0, 256, (size[1], size[0], bands), dtype=np.uint8)
        Image.fromarray(pixels[..., 0] if bands == 1 else pixels, mode).save(root / label / f"{i:03d}.png")
    return root


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA"])
def test_a_streamed_image_folder_reads_and_trains_as_the_in_memory_one(mode, cli, tmp_path, monkeypatch):
    """A folder larger than the limit is decoded once by worker processes into a memory map in
    the cache (uint8 for 8-bit images; float where alpha is composited), reused by the next
    load, and gives the same values, labels and notes, and the same trained numbers."""
    folder = _image_folder(tmp_path / "images", mode=mode)
    monkeypatch.setenv("VAEKIT_CACHE", str(tmp_path / "cache"))
    whole, stored = _both(folder, monkeypatch, test_size=6)
    assert isinstance(stored.x, Rows) and stored.x.stored_dtype == (
        np.float32 if mode == "RGBA" else np.uint8
    )
    np.testing.assert_array_equal(np.asarray(stored.x), whole.x)
    np.testing.assert_array_equal(stored.y, whole.y)
    assert stored.label_names == whole.label_names == ["cats", "dogs"]
    assert stored.notes[:-1] == whole.notes and "decoded once into" in stored.notes[-1]
    cached = list((tmp_path / "cache" / "folders").glob("*.npy"))
    assert len(cached) == 1
    stamp = cached[0].stat().st_mtime_ns
    again = datasets.load(folder, test_size=6)  # reused, not decoded again
    assert cached[0].stat().st_mtime_ns == stamp
    np.testing.assert_array_equal(np.asarray(again.x), whole.x)
    if mode == "L":
        results = []
        for limit in ("64G", "1"):
            monkeypatch.setenv("VAEKIT_MEMORY_LIMIT", limit)
            out = tmp_path / f"run-{limit}"
            code, _, err = cli("train", "--data", folder, "--epochs", "2", "--out", out, *FAST)
            assert code == 0, err
            summary = json.loads((out / "summary.json").read_text())
            results.append((summary["elbo"], summary["nll"]))
        assert results[0] == results[1]


def test_rows_index_like_numpy(tmp_path, monkeypatch):
    whole, stored = _both(CASES["npy-channels-last-rgb"](tmp_path), monkeypatch, test_size=8)
    x, ref = stored.x, whole.x
    for key in [(slice(None), 0), ([1, 2], 0), (slice(2, 5), slice(None), 3), (4, 1), np.array(4), []]:
        np.testing.assert_array_equal(x[key], ref[key])
    assert x[np.array(4)].shape == ref[4].shape
    np.testing.assert_array_equal(x[torch.tensor([], dtype=torch.long)].numpy(), ref[[]])


def test_the_python_api_reads_rows_a_model_consumes(tmp_path, monkeypatch):
    from vaekit.model import VAE

    whole, stored = _both(CASES["npy-uint8-images"](tmp_path), monkeypatch, test_size=8)
    model = VAE.for_data(whole, latent_dim=2, arch="mlp", hidden=(16,))
    assert torch.equal(model.encode(stored.x_test).mean, model.encode(torch.as_tensor(whole.x_test)).mean)


def test_test_data_and_binarize_keep_rows_unread_and_the_same_values(tmp_path, monkeypatch):
    train = CASES["npy-uint8-images"](tmp_path)
    test = _save(tmp_path / "t.npy", GEN.integers(0, 256, (9, 12, 12)).astype(np.uint8))
    whole, stored = _both(train, monkeypatch, test_data=test)
    assert isinstance(stored.x, Rows) and stored.x.in_memory is False
    np.testing.assert_array_equal(np.asarray(stored.x), whole.x)
    np.testing.assert_array_equal(stored.test_idx, whole.test_idx)
    whole, stored = _both(train, monkeypatch, test_size=8, binarize="dynamic")
    assert isinstance(stored.x, Rows)
    np.testing.assert_array_equal(np.asarray(stored.x), whole.x)
    assert set(np.unique(np.asarray(stored.x_test))) <= {0.0, 1.0}


def test_factor_metrics_read_only_the_rows_they_match(tmp_path, monkeypatch):
    x = GEN.integers(0, 256, (60, 8, 8)).astype(np.uint8)
    np.savez(tmp_path / "f.npz", x=x, factors=GEN.integers(0, 3, (60, 2)))
    whole, stored = _both(tmp_path / "f.npz", monkeypatch, test_size=10)
    lazy, ref = stored.factor_source(), whole.factor_source()
    assert isinstance(lazy.x, Rows)
    a = lazy.sample_observations_from_factors(
        ref.sample_factors(5, np.random.default_rng(0)), np.random.default_rng(1)
    )
    b = ref.sample_observations_from_factors(
        ref.sample_factors(5, np.random.default_rng(0)), np.random.default_rng(1)
    )
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "command",
    [
        ["rare", "{run}", "-k", "3", "--out", "{out}"],
        ["neighbors", "{run}", "--index", "3", "-k", "4", "--out", "{out}.png"],
        ["score", "{run}", "--data", "{data}", "--samples", "2", "--out", "{out}.csv"],
        ["encode", "{run}", "--data", "{data}", "--out", "{out}.csv"],
        ["twosample", "{run}", "--data", "{data}", "-n", "30", "--out", "{out}"],
    ],
    ids=lambda c: c[0],
)
def test_commands_on_stored_rows_give_the_in_memory_results(command, cli, tmp_path, monkeypatch):
    data = CASES["npy-uint8-images"](tmp_path)
    outputs = []
    for limit in ("64G", "1"):
        monkeypatch.setenv("VAEKIT_MEMORY_LIMIT", limit)
        run = tmp_path / f"run-{limit}"
        if not run.exists():
            code, _, err = cli("train", "--data", data, "--epochs", "1", "--out", run, *FAST)
            assert code == 0, err
        out = tmp_path / f"out-{limit}"
        args = [a.format(run=run, out=out, data=data) for a in command]
        code, text, err = cli(*args)
        assert code == 0, err
        found = sorted(p for p in tmp_path.glob(f"out-{limit}*") if p.is_file()) + sorted(
            p for p in tmp_path.glob(f"out-{limit}/*") if p.suffix in (".csv", ".json")
        )
        found = [p for p in found if p.suffix in (".csv", ".json", ".png")]
        outputs.append(
            [p.read_bytes() if p.suffix == ".png" else p.read_text().replace(str(run), "RUN") for p in found]
        )
    assert outputs[0] == outputs[1] and outputs[0]
