"""The conv nets: shapes for every supported size, and a conv run end to end (train, save, load)."""

import json

import numpy as np
import pytest
import torch
from conftest import FAST

import vaekit
from vaekit import nets


@pytest.mark.parametrize("side", [28, 32, 64])
@pytest.mark.parametrize("cond_dim", [0, 1])
def test_conv_nets_map_images_to_codes_and_back(side, cond_dim):
    encoder, decoder = nets.build("conv", (1, side, side), latent_dim=3, enc_out=6, cond_dim=cond_dim)
    x = torch.rand(5, 1, side, side)
    c = torch.zeros(5, 1) if cond_dim else None
    h = encoder(x, c)
    assert h.shape == (5, 6)
    out = decoder(torch.randn(5, 3), c)
    assert out.shape == (5, 1, side, side)
    # the backward pass reaches every weight
    (h.sum() + out.sum()).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in encoder.parameters())


def test_auto_picks_conv_from_32_px_and_mlp_below():
    assert nets.resolve_arch("auto", (1, 32, 32)) == "conv"
    assert nets.resolve_arch("auto", (3, 128, 96)) == "conv"
    assert nets.resolve_arch("auto", (1, 28, 28)) == "mlp"
    assert nets.resolve_arch("auto", (30,)) == "mlp"
    with pytest.raises(vaekit.errors.VaekitError, match="at least 16 px"):
        nets.build("conv", (1, 12, 30), 2, 4)


@pytest.mark.parametrize(
    "shape", [(1, 16, 16), (3, 96, 96), (1, 100, 100), (3, 128, 128), (1, 40, 24), (2, 33, 47)]
)
def test_conv_nets_take_any_image_size_of_16_px_and_more(shape):
    """Galaxy stamps are 128 px, many sets 96 or 256, some not square: the decoder's output has
    exactly the image's shape, and a reconstruction loss trains through both nets."""
    encoder, decoder = nets.build("conv", shape, latent_dim=4, enc_out=8)
    x = torch.rand(3, *shape)
    h = encoder(x)
    assert h.shape == (3, 8)
    out = decoder(h[:, :4])
    assert out.shape == (3, *shape)
    ((out - x) ** 2).mean().backward()
    assert all(p.grad is not None for p in [*encoder.parameters(), *decoder.parameters()])


def test_the_conv_plan_of_the_original_sizes_is_unchanged():
    """28, 32 and 64 px keep the stages and channels runs were trained with (old runs load)."""
    assert nets._conv_plan((1, 28, 28)) == (2, [32, 32])
    assert nets._conv_plan((1, 32, 32)) == (3, [32, 32, 64])
    assert nets._conv_plan((3, 64, 64)) == (4, [32, 32, 64, 64])
    decoder = nets.ConvDecoder(3, (1, 64, 64))
    assert decoder.start == (4, 4)


def _squares(n, side=32, seed=0):
    """Bright 8-px squares at random places: images a conv VAE learns quickly."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 1, side, side), np.float32)
    for img, (r, c) in zip(x, rng.integers(0, side - 8, size=(n, 2)), strict=True):
        img[0, r : r + 8, c : c + 8] = 1.0
    return x


def test_conv_run_end_to_end(cli, tmp_path):
    np.save(tmp_path / "squares.npy", _squares(300))
    out = tmp_path / "run"
    code, _, err = cli("train", "--data", tmp_path / "squares.npy", "--epochs", "3", "--out", out, *FAST)
    assert code == 0, err
    config = (out / "config.yaml").read_text()
    assert "arch: conv" in config
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["test_loss"] < rows[0]["test_loss"]
    # the saved weights are the trained ones: the loaded model reproduces summary.json's distortion
    model = vaekit.load(out)
    data = vaekit.datasets.load(str(tmp_path / "squares.npy"))
    summary = json.loads((out / "summary.json").read_text())
    again = vaekit.evaluate.nll(model, data.x_test, samples=summary["nll_samples"], seed=0)
    assert float(again.distortion_per_example.mean()) == pytest.approx(summary["distortion"], rel=1e-5)
