"""Two CPU processes (DDP over gloo) give the same model as one process with the same global batch."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

VAEKIT = str(Path(sys.executable).parent / "vaekit")
ARGS = [
    "train",
    "--data",
    "digits",
    "--epochs",
    "2",
    "--hidden",
    "64",
    "--batch-size",
    "64",
    "--nll-samples",
    "10",
    "--quiet",
    "--device",
    "cpu",
]


def _train(out, *extra):
    done = subprocess.run(
        [VAEKIT, *ARGS, "--out", str(out), *extra], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_two_processes_match_one(tmp_path):
    _train(tmp_path / "one")
    _train(tmp_path / "two", "--devices", "2", "--strategy", "ddp")
    a = load_file(tmp_path / "one" / "model.safetensors")
    b = load_file(tmp_path / "two" / "model.safetensors")
    assert a.keys() == b.keys()
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-5
    rows = [
        [json.loads(line) for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]
        for run in ("one", "two")
    ]
    for r1, r2 in zip(*rows, strict=True):
        for key in ("train_loss", "train_rate", "test_loss", "test_elbo"):
            assert r1[key] == pytest.approx(r2[key], rel=1e-5)
    # only rank 0 wrote the run folder: one set of files, no stray copies
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(
        p.name for p in (tmp_path / "one").iterdir()
    )


def test_batch_must_split_evenly(tmp_path):
    done = subprocess.run(
        [
            VAEKIT,
            *ARGS,
            "--batch-size",
            "63",
            "--devices",
            "2",
            "--strategy",
            "ddp",
            "--out",
            str(tmp_path / "x"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 2
    assert "must be a multiple of the 2 processes" in done.stderr


@pytest.mark.parametrize("clip_grad", [None, 0.05])
def test_one_process_without_fabric_wrappers_matches_fabric(monkeypatch, clip_grad):
    """One process at 32-bit trains without Fabric's wrappers (vaekit.train._direct); the result
    is the same model as through Fabric, gradient clipping included."""
    import torch

    from vaekit import datasets, train
    from vaekit.model import VAE

    data = datasets.load("digits")

    def weights(direct: bool):
        monkeypatch.setattr(train, "_direct", lambda *a: direct)
        model = VAE.for_data(data, latent_dim=2, hidden=(32,), seed=0)
        train.fit(model, data, epochs=2, batch_size=64, nll_samples=0, progress=False, clip_grad=clip_grad)
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    direct, fabric = weights(True), weights(False)
    assert torch.allclose(direct, fabric, atol=1e-6), (direct - fabric).abs().max()
    if clip_grad:  # clipping took effect: unclipped training ends elsewhere
        monkeypatch.setattr(train, "_direct", lambda *a: True)
        model = VAE.for_data(data, latent_dim=2, hidden=(32,), seed=0)
        train.fit(model, data, epochs=2, batch_size=64, nll_samples=0, progress=False)
        free = torch.cat([p.detach().flatten() for p in model.parameters()])
        assert (free - direct).abs().max() > 1e-3
