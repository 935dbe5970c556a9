"""Named data sets, offline: a server on 127.0.0.1 started by the test serves fixture files the
test builds in each real format (IDX gzip, CIFAR-10's binary tar.gz); the registry rows point at
it. Download, verify, cache, reuse without network; every bad payload is one sentence and leaves
no file that passes as complete; a file placed by hand is used; two processes take turns."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import json
import subprocess
import sys
import tarfile
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import FAST

from vaekit import datasets
from vaekit.datasets import downloads
from vaekit.errors import VaekitError


class _Handler(http.server.BaseHTTPRequestHandler):
    """/ok/NAME serves the file, /html/NAME an HTML error page with status 200 (a quota page),
    /short/NAME half the bytes, /error/NAME status 500, /slow/NAME the file after 1 s."""

    root: Path
    hits: dict

    def do_GET(self):  # noqa: N802 - http.server's name
        kind, _, name = self.path.strip("/").partition("/")
        self.hits[self.path] = self.hits.get(self.path, 0) + 1
        path = self.root / name
        if kind == "error" or not path.exists():
            self.send_response(500 if kind == "error" else 404)
            self.end_headers()
            return
        body = path.read_bytes()
        if kind == "html":
            body = (
                b"<!DOCTYPE html><html><body>Quota exceeded: too many users viewed this file.</body></html>"
            )
        elif kind == "short":
            body = body[: len(body) // 2]
        elif kind == "slow":
            time.sleep(1.0)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    handler = type("Handler", (_Handler,), {"root": root, "hits": {}})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", root, handler.hits
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("VAEKIT_CACHE", str(folder))
    monkeypatch.delenv("VAEKIT_MIRROR", raising=False)
    return folder


def _idx(array: np.ndarray) -> bytes:
    """An IDX file (big-endian header: 0, 0, type 0x08, ndim, then each dimension) of uint8."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes())


def _mnist_like(root: Path, gen, n_train=40, n_test=10):
    arrays = {
        "train_images": gen.integers(0, 256, size=(n_train, 28, 28)),
        "train_labels": gen.integers(0, 10, size=n_train),
        "test_images": gen.integers(0, 256, size=(n_test, 28, 28)),
        "test_labels": gen.integers(0, 10, size=n_test),
    }
    for role, f in downloads.REMOTE["mnist"].files.items():
        (root / f.filename).write_bytes(_idx(arrays[role]))
    return arrays


def _point(name: str, base: str, root: Path, kind: str = "ok", **change) -> None:
    """Make registry row `name` point at the test server with the fixture files' sizes and hashes."""
    remote = downloads.REMOTE[name]
    files = {}
    for role, f in remote.files.items():
        data = (root / f.filename).read_bytes()
        settings = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "md5": None, **change}
        files[role] = replace(f, urls=(f"{base}/{kind}/{f.filename}",), **settings)
    downloads.REMOTE[name] = replace(remote, files=files)


@pytest.fixture
def registry():
    saved = dict(downloads.REMOTE)
    yield
    downloads.REMOTE.clear()
    downloads.REMOTE.update(saved)


def _leftovers(folder: Path) -> list[str]:
    """Files in the cache that could pass as a downloaded data file."""
    return sorted(
        p.name
        for p in folder.glob("*")
        if p.is_file() and not p.name.endswith((".lock", ".verified")) and not p.name.startswith(".")
    )


def test_download_verify_cache_and_reuse_without_network(server, cache, registry, tmp_path):
    base, root, hits = server
    arrays = _mnist_like(root, np.random.default_rng(0))
    _point("mnist", base, root)
    raw = datasets.read_raw("mnist")
    np.testing.assert_array_equal(raw.x[:40, 0], arrays["train_images"])
    np.testing.assert_array_equal(raw.x[40:, 0], arrays["test_images"])
    np.testing.assert_array_equal(raw.y, np.concatenate([arrays["train_labels"], arrays["test_labels"]]))
    assert raw.full_scale == 255.0 and raw.meta["official_test"] == 10 and "CC BY-SA" in raw.meta["licence"]
    assert sum(hits.values()) == 4 and downloads.is_cached("mnist")
    # no network now: the verified cache is used, the server is never asked
    downloads.REMOTE["mnist"] = replace(
        downloads.REMOTE["mnist"],
        files={
            r: replace(f, urls=("http://127.0.0.1:9/x",)) for r, f in downloads.REMOTE["mnist"].files.items()
        },
    )
    again = datasets.read_raw("mnist")
    np.testing.assert_array_equal(again.x, raw.x)
    assert sum(hits.values()) == 4
    # the official split, not a random one
    data = datasets.load("mnist")
    np.testing.assert_array_equal(data.test_idx, np.arange(40, 50))
    assert any("published split" in n for n in data.notes)


@pytest.mark.parametrize(
    ("kind", "change", "said"),
    [
        ("ok", {"sha256": "0" * 64}, "its SHA256 is"),
        ("short", {}, "bytes, not"),
        ("html", {}, "(an HTML page, not the data)"),
        ("error", {}, "500"),
    ],
    ids=["wrong-checksum", "truncated", "html-page", "server-error"],
)
def test_a_bad_payload_is_one_sentence_and_leaves_nothing(
    server, cache, registry, cli, tmp_path, kind, change, said
):
    base, root, _ = server
    _mnist_like(root, np.random.default_rng(1))
    _point("mnist", base, root, kind, **change)
    code, _, err = cli("train", "--data", "mnist", "--out", tmp_path / "run", *FAST)
    assert code == 2 and "Traceback" not in err
    lines = [line for line in err.strip().splitlines() if not line.startswith("warning")]
    assert len(lines) == 1 and said in lines[0], err
    assert "by hand and put it at" in lines[0] and str(cache) in lines[0]
    assert _leftovers(cache) == []  # no file that could pass as complete
    assert not (tmp_path / "run").exists()


def test_the_next_mirror_is_tried_and_a_file_placed_by_hand_is_used(server, cache, registry):
    base, root, hits = server
    arrays = _mnist_like(root, np.random.default_rng(2))
    _point("mnist", base, root)
    remote = downloads.REMOTE["mnist"]
    downloads.REMOTE["mnist"] = replace(
        remote,
        files={r: replace(f, urls=(f"{base}/error/{f.filename}", *f.urls)) for r, f in remote.files.items()},
    )
    raw = datasets.read_raw("mnist")
    assert len(raw.x) == 50 and sum(v for k, v in hits.items() if k.startswith("/error/")) == 4
    # by hand: files copied into the cache, no mirror reachable
    (cache / "x").mkdir()
    for f in remote.files.values():
        (cache / f.filename).unlink()
        (cache / f.filename).write_bytes((root / f.filename).read_bytes())
    downloads.REMOTE["mnist"] = replace(
        remote, files={r: replace(f, urls=("http://127.0.0.1:9/gone",)) for r, f in remote.files.items()}
    )
    np.testing.assert_array_equal(datasets.read_raw("mnist").x[:40, 0], arrays["train_images"])
    # a wrong file placed by hand is named, never used
    first = next(iter(remote.files.values()))
    (cache / first.filename).write_bytes(b"not the data")
    with pytest.raises(VaekitError, match=rf"{first.filename} is not the expected file: it has 12 bytes"):
        datasets.read_raw("mnist")


def test_offline_the_sentence_names_every_file_to_place(cache, registry):
    remote = downloads.REMOTE["mnist"]
    downloads.REMOTE["mnist"] = replace(
        remote,
        files={r: replace(f, urls=("http://127.0.0.1:9/unreachable",)) for r, f in remote.files.items()},
    )
    with pytest.raises(VaekitError) as caught:
        datasets.read_raw("mnist")
    text = str(caught.value)
    for f in remote.files.values():
        assert f.filename in text and f.sha256 in text
    assert text.count("by hand and put it at") == 4 and "no connection" in text


def test_cifar10_binary_is_read_from_its_archive(server, cache, registry):
    base, root, _ = server
    gen = np.random.default_rng(3)
    buffer = io.BytesIO()
    records = {}
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
        for name in names:
            labels = gen.integers(0, 10, size=3)
            pixels = gen.integers(0, 256, size=(3, 3 * 32 * 32))
            records[name] = (labels, pixels)
            data = np.concatenate([labels[:, None], pixels], axis=1).astype(np.uint8).tobytes()
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        meta = "\n".join(
            ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
        )
        info = tarfile.TarInfo("cifar-10-batches-bin/batches.meta.txt")
        info.size = len(meta.encode())
        archive.addfile(info, io.BytesIO(meta.encode()))
    (root / "cifar-10-binary.tar.gz").write_bytes(buffer.getvalue())
    _point("cifar10", base, root)
    raw = datasets.read_raw("cifar10")
    assert raw.x.shape == (18, 3, 32, 32) and raw.label_names[0] == "airplane"
    labels, pixels = records["test_batch.bin"]
    np.testing.assert_array_equal(raw.x[-3:].reshape(3, -1), pixels)
    np.testing.assert_array_equal(raw.y[-3:], labels)
    np.testing.assert_array_equal(raw.x[:3].reshape(3, -1), records["data_batch_1.bin"][1])
    assert raw.meta["official_test"] == 3


def test_train_on_a_named_set_end_to_end(server, cache, registry, cli, tmp_path):
    base, root, _ = server
    _mnist_like(root, np.random.default_rng(4), n_train=60, n_test=20)
    _point("mnist", base, root)
    run = tmp_path / "run"
    code, _, err = cli("train", "--data", "mnist", "--epochs", "1", "--out", run, *FAST)
    assert code == 0, err
    assert "Cite: LeCun" in err  # licence and citation, once, at first download
    summary = json.loads((run / "summary.json").read_text())
    assert summary["n_test"] == 20 and summary["bits_per_dim_convention"].startswith("none: a Bernoulli")
    import yaml

    record = yaml.safe_load((run / "config.yaml").read_text())["data"]
    assert record["source"] == "mnist" and "CC BY-SA" in record["licence"] and "LeCun" in record["citation"]
    code, _, err = cli("train", "--data", "mnist", "--epochs", "1", "--out", tmp_path / "run2", *FAST)
    assert code == 0 and "Cite:" not in err  # said once


CHILD = """
import json, sys
from dataclasses import replace
from pathlib import Path
from vaekit.datasets import downloads
f = downloads.RemoteFile(**json.loads(sys.argv[1]))
path = downloads.fetch(f, progress=False)
print(downloads.problem(path, f))
"""


def test_two_processes_fetching_one_file_take_turns(server, cache, tmp_path):
    base, root, hits = server
    data = np.random.default_rng(5).integers(0, 256, size=200_000).astype(np.uint8).tobytes()
    (root / "big.bin").write_bytes(data)
    spec = {
        "filename": "big.bin",
        "urls": [f"{base}/slow/big.bin"],
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    env = {**__import__("os").environ, "VAEKIT_CACHE": str(cache)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, json.dumps(spec)], stdout=subprocess.PIPE, env=env, text=True
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0] and outs == ["None", "None"]
    assert hits == {"/slow/big.bin": 1}  # the second waited for the first, then used its file
    assert (cache / "big.bin").read_bytes() == data


class _Tripwire:
    """Unpickling this touches a file: a test proves an entry stayed unread by its absence."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


def _dsprites_like(root: Path, rows: np.ndarray, tripwire: Path) -> np.ndarray:
    """A file in the official dSprites layout (imgs, latents_classes, latents_values, a pickled
    metadata entry) holding the grid rows `rows`: latents_classes from the published order
    (latents_sizes 1, 3, 6, 40, 32, 32; pos_y fastest), images rendered at 64 px."""
    from vaekit.datasets import sprites

    classes = np.stack(np.unravel_index(rows, (1, 3, 6, 40, 32, 32)), axis=1).astype(np.int64)
    imgs = sprites.render(classes[:, 1:], 64)
    np.savez_compressed(
        root / "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz",
        imgs=imgs,
        latents_classes=classes,
        latents_values=classes.astype(np.float64),
        metadata=np.array(_Tripwire(tripwire), dtype=object),
    )
    return classes


def test_dsprites_reads_the_official_layout_without_unpickling(server, cache, registry, tmp_path):
    base, root, _ = server
    rows = np.sort(np.random.default_rng(6).choice(737_280, size=40, replace=False))
    tripwire = tmp_path / "unpickled"
    classes = _dsprites_like(root, rows, tripwire)
    _point("dsprites", base, root)
    data = datasets.load("dsprites", test_size=10)
    assert not tripwire.exists()  # the pickled metadata was never read
    assert data.factor_names == ["shape", "scale", "orientation", "pos_x", "pos_y"]
    np.testing.assert_array_equal(data.factors, classes[:, 1:])
    from vaekit.datasets import sprites

    np.testing.assert_array_equal(
        np.asarray(data.x)[:, 0], sprites.render(classes[:, 1:], 64).astype(np.float32)
    )
    assert data.extra["full_scale"] == 1.0 and "Apache" in data.extra["licence"]


def test_the_procedural_grid_has_the_official_factor_layout():
    """`sprites` (offline) and `dsprites` (the file) index one grid the same way: row i of the
    official file has latents_classes = unravel_index(i, (1, 3, 6, 40, 32, 32))."""
    from vaekit.datasets import sprites

    grid = sprites.generate(8)
    official = np.stack(np.unravel_index(np.arange(737_280), (1, 3, 6, 40, 32, 32)), axis=1)
    assert sprites.FACTOR_SIZES == (3, 6, 40, 32, 32)
    np.testing.assert_array_equal(grid.factor_indices, official[:, 1:])


def test_shapes3d_reads_images_and_ranks_its_factor_values(server, cache, registry):
    import h5py

    base, root, _ = server
    gen = np.random.default_rng(7)
    images = gen.integers(0, 256, size=(30, 64, 64, 3)).astype(np.uint8)
    values = np.stack(
        [gen.choice(np.linspace(0, 0.9, 10), 30) for _ in range(3)]
        + [gen.choice(np.linspace(0.75, 1.25, 8), 30), gen.choice(np.arange(4.0), 30)]
        + [gen.choice(np.linspace(-30, 30, 15), 30)],
        axis=1,
    )
    with h5py.File(root / "3dshapes.h5", "w") as f:
        f.create_dataset("images", data=images, chunks=(10, 64, 64, 3), compression="gzip")
        f.create_dataset("labels", data=values)
    _point("shapes3d", base, root)
    data = datasets.load("shapes3d", test_size=6)
    assert data.shape == (3, 64, 64) and data.factor_names[0] == "floor_hue"
    np.testing.assert_array_equal(np.asarray(data.x), images.transpose(0, 3, 1, 2).astype(np.float32) / 255)
    for j in range(6):
        np.testing.assert_array_equal(data.factors[:, j], np.unique(values[:, j], return_inverse=True)[1])


def test_binarized_mnist_reads_the_fixed_binarisation(server, cache, registry):
    base, root, _ = server
    gen = np.random.default_rng(8)
    parts = {
        role: gen.integers(0, 2, size=(n, 784)) for role, n in (("train", 12), ("valid", 4), ("test", 5))
    }
    for role, bits in parts.items():
        lines = "\n".join(" ".join(map(str, row)) for row in bits) + "\n"
        (root / f"binarized_mnist_{role}.amat").write_text(lines)
    _point("binarized-mnist", base, root)
    data = datasets.load("binarized-mnist")
    np.testing.assert_array_equal(data.test_idx, np.arange(16, 21))
    np.testing.assert_array_equal(np.asarray(data.x).reshape(21, 784), np.concatenate(list(parts.values())))
    # a file of anything else (a value 2, a short line) is one sentence
    for text in ("0 1 2\n", "0 1 1 0\n"):
        bad = root / "bad.amat"
        bad.write_text(text)
        with pytest.raises(VaekitError, match="not a file of binary 28x28 images"):
            downloads.read_amat_binary(bad)


def test_kmnist_is_the_idx_format_with_its_labels(server, cache, registry):
    base, root, _ = server
    gen = np.random.default_rng(9)
    arrays = {
        "train_images": gen.integers(0, 256, size=(8, 28, 28)),
        "train_labels": np.arange(8) % 10,
        "test_images": gen.integers(0, 256, size=(3, 28, 28)),
        "test_labels": np.array([7, 8, 9]),
    }
    for role, f in downloads.REMOTE["kmnist"].files.items():
        (root / f.filename).write_bytes(_idx(arrays[role]))
    _point("kmnist", base, root)
    raw = datasets.read_raw("kmnist")
    np.testing.assert_array_equal(raw.x[8:, 0], arrays["test_images"])
    assert [raw.label_names[v] for v in raw.y[-3:]] == ["ya", "re", "wo"]
    assert raw.meta["official_test"] == 3 and "CC BY-SA 4.0" in raw.meta["licence"]


def _celeba_like(root: Path, partition: dict[str, int]) -> dict[str, np.ndarray]:
    """An img_align_celeba.zip of 178x218 JPEGs and its list_eval_partition.txt."""
    import zipfile

    from PIL import Image

    gen = np.random.default_rng(10)
    faces = {}
    with zipfile.ZipFile(root / "img_align_celeba.zip", "w") as archive:
        for name in partition:
            image = Image.fromarray(gen.integers(0, 256, (218, 178, 3), dtype=np.uint8))
            buffer = io.BytesIO()
            image.save(buffer, format="JPEG")
            archive.writestr(f"img_align_celeba/{name}", buffer.getvalue())
            with Image.open(io.BytesIO(buffer.getvalue())) as decoded:  # what the file holds, decoded
                face = (
                    decoded.convert("RGB").crop((15, 35, 163, 183)).resize((64, 64), Image.Resampling.LANCZOS)
                )
            faces[name] = np.asarray(face).transpose(2, 0, 1)
    (root / "list_eval_partition.txt").write_text("".join(f"{n} {s}\n" for n, s in partition.items()))
    return faces


def test_celeba_is_placed_by_hand_verified_and_read_at_64px(server, cache, registry):
    base, root, hits = server
    partition = {"000001.jpg": 0, "000002.jpg": 2, "000003.jpg": 1, "000004.jpg": 0, "000005.jpg": 2}
    faces = _celeba_like(root, partition)
    _point("celeba", base, root)
    remote = downloads.REMOTE["celeba"]
    downloads.REMOTE["celeba"] = replace(
        remote, files={r: replace(f, urls=()) for r, f in remote.files.items()}
    )  # never downloaded
    with pytest.raises(VaekitError) as caught:
        datasets.read_raw("celeba")
    said = str(caught.value)
    assert said.count("\n") == 0 and "placed by hand" in said and "non-commercial research" in said
    for f in downloads.REMOTE["celeba"].files.values():
        assert f.filename in said and str(cache / f.filename) in said and f.sha256 in said
    assert "mmlab.ie.cuhk.edu.hk" in said and not hits  # no network touched
    for f in remote.files.values():  # placed by hand
        (cache / f.filename).write_bytes((root / f.filename).read_bytes())
    data = datasets.load("celeba")
    order = ["000001.jpg", "000003.jpg", "000004.jpg", "000002.jpg", "000005.jpg"]  # training, then test
    np.testing.assert_array_equal(data.test_idx, [3, 4])
    np.testing.assert_array_equal(
        np.asarray(data.x), np.stack([faces[n] for n in order]).astype(np.float32) / 255
    )
    assert data.shape == (3, 64, 64) and "non-commercial" in data.extra["licence"]
    # a wrong file placed by hand is named, never used
    (cache / "list_eval_partition.txt").write_text("000001.jpg 0\n")
    with pytest.raises(VaekitError, match="list_eval_partition.txt is not the expected file"):
        datasets.read_raw("celeba")


def _adc2021_like(path: Path, gen, n: int = 60) -> np.ndarray:
    """An ADC2021-like table: `Particles` (n, 19, 4) with its names and object classes."""
    import h5py

    particles = gen.normal(size=(n, 19, 4)).astype(np.float32)
    particles[:, :, 3] = np.array([1] + [2] * 4 + [3] * 4 + [4] * 10)
    with h5py.File(path, "w") as f:
        f.create_dataset("Particles", data=particles)
        f.create_dataset("Particles_Names", data=np.array([b"Pt", b"Eta", b"Phi", b"Class"]))
        f.create_dataset(
            "Particles_Classes",
            data=np.array([b"MET_class_1", b"Four_Ele_class_2", b"Four_Mu_class_3", b"Ten_Jet_class_4"]),
        )
    return particles


def _zenodo_record(root: Path, filename: str, md5: str | None = None) -> str:
    """A record's file list as Zenodo's API gives it (key, size, checksum "md5:..."), served."""
    data = (root / filename).read_bytes()
    entry = {"key": filename, "size": len(data), "checksum": f"md5:{md5 or hashlib.md5(data).hexdigest()}"}
    other = {"key": "README.txt", "size": 10, "checksum": "md5:" + "0" * 32}
    (root / "record.json").write_text(json.dumps({"id": 1, "files": [other, entry]}))
    return "record.json"


def _point_at_record(name: str, base: str, kind: str = "ok") -> None:
    remote = downloads.REMOTE[name]
    f = remote.files["file"]
    moved = replace(f, urls=(f"{base}/{kind}/{f.filename}",), record=f"{base}/ok/record.json")
    downloads.REMOTE[name] = replace(remote, files={"file": moved})


def test_adc2021_is_verified_against_its_zenodo_record(server, cache, registry, cli, tmp_path):
    """The LHC challenge's tables are checked against the size and MD5 their Zenodo record
    publishes: read once at the first download and kept beside the file, so the next use needs
    no network; the table reads as the 76 named columns; a payload that differs from the record is
    refused; a file placed by hand with the record's copy is used offline; without either, one
    sentence names the file, the record and where both go."""
    base, root, hits = server
    assert {"adc2021-background", "adc2021-ato4l", "adc2021-htautau"} <= set(downloads.REMOTE)
    f = downloads.REMOTE["adc2021-background"].files["file"]
    assert f.record == "https://zenodo.org/api/records/5046389" and f.sha256 is None and f.md5 is None
    particles = _adc2021_like(root / f.filename, np.random.default_rng(4))
    _zenodo_record(root, f.filename)
    _point_at_record("adc2021-background", base)
    raw = datasets.read_raw("adc2021-background")
    assert raw.kind == "tabular" and len(raw.column_names) == 76 and raw.column_names[4] == "ele1_pT"
    np.testing.assert_array_equal(raw.frame["jet1_pT"].to_numpy(), particles[:, 9, 0])
    assert (cache / (f.filename + ".record.json")).exists() and "CC BY 4.0" in raw.meta["licence"]
    # the next use reads neither the record nor the file from the server
    asked = dict(hits)
    downloads.REMOTE["adc2021-background"] = replace(
        downloads.REMOTE["adc2021-background"],
        files={
            "file": replace(
                downloads.REMOTE["adc2021-background"].files["file"], record="http://127.0.0.1:9/x"
            )
        },
    )
    assert len(datasets.read_raw("adc2021-background").frame) == 60 and hits == asked

    # a payload that is not what the record says: refused, nothing left that passes as complete
    s = downloads.REMOTE["adc2021-ato4l"].files["file"]
    _adc2021_like(root / s.filename, np.random.default_rng(5))
    _zenodo_record(root, s.filename, md5="1" * 32)
    _point_at_record("adc2021-ato4l", base)
    code, _, err = cli("train", "--data", "adc2021-ato4l", "--out", tmp_path / "run", *FAST)
    lines = [line for line in err.strip().splitlines() if not line.startswith("warning")]
    assert (
        code == 2
        and len(lines) == 1
        and f"its MD5 is {hashlib.md5((root / s.filename).read_bytes()).hexdigest()}" in lines[0]
    ), err
    assert not (cache / s.filename).exists() and not (tmp_path / "run").exists()

    # offline, nothing in the cache: one sentence names the file, its URL, the record and where to put them
    h = downloads.REMOTE["adc2021-htautau"]
    downloads.REMOTE["adc2021-htautau"] = replace(
        h,
        files={
            "file": replace(
                h.files["file"], urls=("http://127.0.0.1:9/gone",), record="http://127.0.0.1:9/rec"
            )
        },
    )
    code, _, err = cli("train", "--data", "adc2021-htautau", "--out", tmp_path / "run", *FAST)
    lines = [line for line in err.strip().splitlines() if not line.startswith("warning")]
    target = cache / h.files["file"].filename
    assert code == 2 and len(lines) == 1, err
    assert (
        f"put it at {target}" in lines[0]
        and f"{target.name}.record.json" in lines[0]
        and "no connection" in lines[0]
    )
    # placed by hand with the record's copy: verified against it and used, still offline
    _adc2021_like(target, np.random.default_rng(6), n=25)
    (root / target.name).write_bytes(target.read_bytes())
    _zenodo_record(root, target.name)
    target.with_name(target.name + ".record.json").write_bytes((root / "record.json").read_bytes())
    assert len(datasets.read_raw("adc2021-htautau").frame) == 25
    # a record that does not list the file is named
    (cache / "Ato4l_lepFilter_13TeV.h5.record.json").write_text(json.dumps({"files": [{"key": "other.h5"}]}))
    with pytest.raises(VaekitError, match="lists no file Ato4l_lepFilter_13TeV.h5 \\(it lists: other.h5\\)"):
        datasets.read_raw("adc2021-ato4l")
    # by name end to end: train on the background, score a signal
    run = tmp_path / "bkg-run"
    code, _, err = cli("train", "--data", "adc2021-background", "--epochs", "2", "--out", run, *FAST)
    assert code == 0, err
    code, _, err = cli(
        "anomaly", run, "--background", "adc2021-background", "--signal", "adc2021-htautau", "--samples", "2"
    )
    assert code == 0, err
    result = json.loads((run / "anomaly" / "anomaly.json").read_text())
    assert result["n_signal"] == 25 and result["n_background"] == 12  # the background's test split: 20 %
