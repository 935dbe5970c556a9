"""Encoders and decoders: an MLP for any flat data and small conv nets for images of 16 px and more.

An encoder maps x (batch, *shape) to (batch, out_dim); a decoder maps z (batch, latent_dim) to
likelihood parameters (batch, *shape). Both take an optional condition `c` (batch, cond_dim),
concatenated to the flat features (the beta-conditioned model passes log beta here).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from vaekit.errors import VaekitError

ACTIVATIONS = {"relu": nn.ReLU, "elu": nn.ELU, "gelu": nn.GELU, "tanh": nn.Tanh, "silu": nn.SiLU}


def activation(name: str) -> type[nn.Module]:
    """The activation class (not an instance) named `name`, one of ACTIVATIONS' keys. Raises
    `VaekitError` for another name, listing the choices."""
    if name not in ACTIVATIONS:
        raise VaekitError(f"Unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}.")
    return ACTIVATIONS[name]


def _mlp(sizes: list[int], act: type[nn.Module]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(act())
    return nn.Sequential(*layers)


def _cat(h: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
    return h if c is None else torch.cat([h, c], dim=1)


class MLPEncoder(nn.Module):
    """Fully connected encoder: x (batch, *in_shape) flattened, the condition c (batch, cond_dim)
    appended, through Linear layers of sizes `hidden` with `act` between them, to a linear output
    (batch, out_dim)."""

    def __init__(self, in_shape, hidden, out_dim, act="relu", cond_dim=0):
        super().__init__()
        self.net = _mlp([math.prod(in_shape) + cond_dim, *hidden, out_dim], activation(act))

    def forward(self, x, c=None):
        return self.net(_cat(x.flatten(1), c))


class MLPDecoder(nn.Module):
    """Fully connected decoder: z (batch, latent_dim) with the condition c (batch, cond_dim)
    appended, through Linear layers of sizes `hidden` with `act` between them, to a linear output
    reshaped to the likelihood's parameters (batch, *out_shape)."""

    def __init__(self, latent_dim, hidden, out_shape, act="relu", cond_dim=0):
        super().__init__()
        self.out_shape = tuple(out_shape)
        self.net = _mlp([latent_dim + cond_dim, *hidden, math.prod(out_shape)], activation(act))

    def forward(self, z, c=None):
        return self.net(_cat(z, c)).view(-1, *self.out_shape)


# Convolution weights are stored channels-last: a training step of the 28 px and 64 px nets ran
# 12-13% faster on a CPU (oneDNN's NHWC kernels), 32 px the same; the maths is unchanged.
CONV_MEMORY_FORMAT = torch.channels_last


MIN_CONV_SIDE = 16
CONV_CHANNELS = [32, 32, 64, 64, 128, 128, 256, 256]


def _conv_plan(shape) -> tuple[int, list[int]]:
    """Number of stride-2 stages and their channels for a (C, H, W) image of any size with sides
    of at least 16 px: halve while the smaller side stays at least 4 px (28 -> 7: 2 stages,
    32 -> 4: 3, 64 -> 4: 4, 128 -> 4: 5)."""
    if len(shape) != 3 or min(shape[1], shape[2]) < MIN_CONV_SIDE:
        raise VaekitError(
            f"--arch conv needs images (channels, height, width) with sides of at least {MIN_CONV_SIDE} px, "
            f"not shape {tuple(shape)}; use --arch mlp."
        )
    stages, side = 0, min(shape[1], shape[2])
    while side // 2 >= 4 and stages < len(CONV_CHANNELS):
        side //= 2
        stages += 1
    return stages, CONV_CHANNELS[:stages]


def _halved(size: int, stages: int) -> int:
    for _ in range(stages):
        size //= 2  # a 4x4 convolution with stride 2 and padding 1 gives floor(size / 2)
    return size


class ConvEncoder(nn.Module):
    """Stride-2 4x4 convolutions (28 -> 7, 32 -> 4, 64 -> 4, any size >= 16 px, square or not),
    then a hidden linear layer."""

    def __init__(self, in_shape, out_dim, act="relu", cond_dim=0, hidden=256):
        super().__init__()
        stages, channels = _conv_plan(in_shape)
        a = activation(act)
        layers, c_in = [], in_shape[0]
        for c_out in channels:
            layers += [nn.Conv2d(c_in, c_out, 4, 2, 1), a()]
            c_in = c_out
        self.conv = nn.Sequential(*layers)
        flat = c_in * _halved(in_shape[1], stages) * _halved(in_shape[2], stages)
        self.head = nn.Sequential(nn.Linear(flat + cond_dim, hidden), a(), nn.Linear(hidden, out_dim))
        self.conv.to(memory_format=CONV_MEMORY_FORMAT)

    def forward(self, x, c=None):
        return self.head(_cat(self.conv(x).flatten(1), c))


class ConvDecoder(nn.Module):
    """The mirror of `ConvEncoder` with transposed convolutions. Each doubles the size, so it
    starts from ceil(side / 2^stages) and crops the result to the image's size where that is not
    a multiple of 2^stages (e.g. 96 or 100 px; never for 28, 32 or 64)."""

    def __init__(self, latent_dim, out_shape, act="relu", cond_dim=0, hidden=256):
        super().__init__()
        stages, channels = _conv_plan(out_shape)
        a = activation(act)
        self.out_hw = (int(out_shape[1]), int(out_shape[2]))
        self.start = tuple(-(-s // 2**stages) for s in self.out_hw)
        self.c0 = channels[-1]
        self.head = nn.Sequential(
            nn.Linear(latent_dim + cond_dim, hidden),
            a(),
            nn.Linear(hidden, self.c0 * self.start[0] * self.start[1]),
            a(),
        )
        layers = []
        rev = channels[::-1][1:] + [out_shape[0]]
        c_in = self.c0
        for i, c_out in enumerate(rev):
            layers.append(nn.ConvTranspose2d(c_in, c_out, 4, 2, 1))
            if i < len(rev) - 1:
                layers.append(a())
            c_in = c_out
        self.deconv = nn.Sequential(*layers)
        self.deconv.to(memory_format=CONV_MEMORY_FORMAT)

    def forward(self, z, c=None):
        h = self.head(_cat(z, c)).view(-1, self.c0, *self.start)
        out = self.deconv(h)
        if out.shape[-2:] != self.out_hw:
            out = out[..., : self.out_hw[0], : self.out_hw[1]]
        return out


def build(arch, shape, latent_dim, enc_out, hidden=(512, 256), act="relu", cond_dim=0, out_shape=None):
    """An (encoder, decoder) pair; `arch` is 'mlp', 'conv' or 'auto' (conv for images whose sides
    are 32 px or more). The decoder's output has `out_shape` (default `shape`: one parameter per
    data value); an MLP only, where the two differ."""
    arch = resolve_arch(arch, shape)
    if arch == "conv":
        return (
            ConvEncoder(shape, enc_out, act, cond_dim),
            ConvDecoder(latent_dim, shape, act, cond_dim),
        )
    hidden = list(hidden)
    return (
        MLPEncoder(shape, hidden, enc_out, act, cond_dim),
        MLPDecoder(latent_dim, hidden[::-1], out_shape or shape, act, cond_dim),
    )


def resolve_arch(arch: str, shape) -> str:
    """The architecture `build` uses for examples of `shape`: `arch` itself for 'mlp' or 'conv';
    for 'auto', 'conv' for images (C, H, W) whose smaller side is at least 32 px, else 'mlp'.
    Raises `VaekitError` for any other `arch`."""
    if arch not in ("auto", "mlp", "conv"):
        raise VaekitError(f"--arch must be auto, mlp or conv, not {arch!r}.")
    if arch == "auto":
        # On 28 px MNIST the MLP trains faster and reaches a better ELBO than the small conv net;
        # from 32 px on, the MLP's first layer grows with the pixel count and the conv net wins.
        is_big_image = len(shape) == 3 and min(shape[1], shape[2]) >= 32
        return "conv" if is_big_image else "mlp"
    return arch
