"""Training speed by storage: the same images in memory as float32, memory-mapped as uint8,
in a contiguous HDF5 dataset (mapped), in a chunked, gzip-compressed HDF5 dataset (read in
memory as uint8 when its stored bytes fit, else decompressed per batch), and as a folder of PNG
files larger than memory allows (decoded once by worker processes into a memory-mapped array in
the cache; its one-time decoding is timed on its own).

Every variant trains the same model (same seed, same weights, same batch order) for one epoch
per turn; the variants take turns, round after round, so the machine's load hits all alike.
Reported: training examples per second (the epoch's training steps and its test pass, from the
run's `seconds`), the median over rounds, and the median over rounds of each variant's speed
relative to in-memory float32 in the same round.

    python benchmarks/storage.py --n 30000 --side 28 --rounds 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import torch

from vaekit import datasets, train
from vaekit.model import VAE


def make_files(folder: Path, n: int, side: int) -> dict[str, Path]:
    gen = np.random.default_rng(0)
    # smooth blobs, not noise: a realistic mix of dark and bright pixels
    yy, xx = np.mgrid[:side, :side] / side
    centres = gen.random((n, 2))
    x = np.exp(-(((xx - centres[:, 0, None, None]) ** 2 + (yy - centres[:, 1, None, None]) ** 2) / 0.02))
    x = (255 * x).astype(np.uint8)
    np.save(folder / "x.npy", x)
    with h5py.File(folder / "contiguous.h5", "w") as f:
        f.create_dataset("images", data=x)
    with h5py.File(folder / "gzip.h5", "w") as f:
        f.create_dataset("images", data=x, chunks=(256, side, side), compression="gzip")
    from PIL import Image

    (folder / "pngs").mkdir()
    for i, image in enumerate(x):
        Image.fromarray(image).save(folder / "pngs" / f"{i:06d}.png")
    return {
        "npy": folder / "x.npy",
        "contiguous": folder / "contiguous.h5",
        "gzip": folder / "gzip.h5",
        "folder": folder / "pngs",
    }


VARIANTS = {  # name -> (file, memory limit)
    "in-memory float32": ("npy", "64G"),
    "memory-mapped uint8 .npy": ("npy", "1"),
    "HDF5 contiguous (mapped)": ("contiguous", "1"),
    "HDF5 gzip, uint8 in memory": ("gzip", "stored"),
    "HDF5 gzip, read per batch": ("gzip", "1"),
    "PNG folder, streamed once into the cache": ("folder", "1"),
}


def load(files, variant, n, side):
    name, limit = VARIANTS[variant]
    if limit == "stored":  # the stored bytes fit, the float32 copy does not
        limit = str(2 * n * side * side)
    os.environ["VAEKIT_MEMORY_LIMIT"] = limit
    return datasets.load(files[name], test_size=0.1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=30_000)
    parser.add_argument("--side", type=int, default=28)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--out", default=str(Path(__file__).parent / "RESULTS-storage.md"))
    args = parser.parse_args()
    torch.set_num_threads(2)
    load_avg = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        files = make_files(Path(tmp), args.n, args.side)
        os.environ["VAEKIT_CACHE"] = str(Path(tmp) / "cache")  # the folder's decoded copy goes here
        data, loading = {}, {}
        for v in VARIANTS:
            t0 = time.perf_counter()
            data[v] = load(files, v, args.n, args.side)
            loading[v] = time.perf_counter() - t0
        speeds: dict[str, list[float]] = {v: [] for v in VARIANTS}
        ratios: dict[str, list[float]] = {v: [] for v in VARIANTS}
        for _ in range(args.rounds):
            this_round = {}
            for variant, d in data.items():
                model = VAE.for_data(d, latent_dim=16, arch="mlp", hidden=(512,), seed=0)
                t0 = time.perf_counter()
                run = train.fit(model, d, epochs=1, batch_size=args.batch_size, nll_samples=1, device="cpu")
                seconds = run.history[0]["seconds"]
                assert time.perf_counter() - t0 >= seconds
                this_round[variant] = len(d.train_idx) / seconds
                speeds[variant].append(this_round[variant])
            base = this_round["in-memory float32"]
            for variant, speed in this_round.items():
                ratios[variant].append(speed / base)
    lines = [
        "# Training speed by storage",
        "",
        f"`python benchmarks/storage.py --n {args.n} --side {args.side} --rounds {args.rounds}`: "
        f"{args.n:,} {args.side}x{args.side} 8-bit images, an MLP VAE (512 hidden, 16 latent), batch "
        f"{args.batch_size}, one epoch per turn, variants taking turns; 1-minute load average at the "
        f"start {load_avg:.2f} on {os.cpu_count()} cores.",
        "",
        "| storage | examples/s (median) | relative to in-memory float32 (median of per-round ratios) |",
        "|---|---:|---:|",
    ]
    for variant in VARIANTS:
        speed, ratio = statistics.median(speeds[variant]), statistics.median(ratios[variant])
        lines.append(f"| {variant} | {speed:,.0f} | {ratio:.2f} |")
    folder = "PNG folder, streamed once into the cache"
    lines += [
        "",
        "Reading the data before training (`datasets.load`): "
        f"{loading['memory-mapped uint8 .npy']:.2f} s for the .npy, {loading[folder]:.1f} s for the folder "
        f"of {args.n:,} PNG files (listed, decoded once by worker processes into the cache; a later run maps "
        "the cached array at once).",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
