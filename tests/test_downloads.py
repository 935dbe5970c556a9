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

from vaekit import datasets, downloads
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
    return sorted(p.name for p in folder.glob("*") if p.is_file() and not p.name.endswith(".lock"))


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
from vaekit import downloads
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
