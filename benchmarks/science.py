"""Science-workflow speed on whole detector samples (issue: scoring and the two-sample test).

Builds a 76-column table (correlated Gaussian features, as a detector ntuple's kinematics
roughly are), trains a VAE on 20,000 rows with vaekit's defaults for a table (a few epochs:
the speed of scoring does not depend on how well the model fits), then times, each as the
command line runs it, in this one process:

* `vaekit score RUN --data 100k.parquet --samples 100 --out scores.csv`: 100,000 rows, one-draw
  scores plus the 100-draw averages and the IS-NLL with K = 100;
* `vaekit twosample --data A --against B`: 20,000 vs 20,000 rows, gradient boosting, the
  permutation null with 1,000 permutations; and the model-vs-data form on 20,000 rows.

Usage: python benchmarks/science.py [--rows 100000] [--out benchmarks/RESULTS-science.md]
Run it on a quiet machine (no other torch or numpy job): it reports wall times.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from vaekit.cli import main


def table(n: int, columns: int, seed: int) -> pd.DataFrame:
    gen = np.random.default_rng(seed)
    w = np.random.default_rng(0).normal(size=(8, columns))
    x = gen.normal(size=(n, 8)) @ w + 0.5 * gen.normal(size=(n, columns))
    frame = pd.DataFrame(x * 30 + 100, columns=[f"f{i:02d}" for i in range(columns)])
    frame.insert(0, "event_id", np.arange(n) + seed * 10_000_000)
    return frame


def timed(args: list) -> float:
    start = time.perf_counter()
    try:
        main([str(a) for a in args])
    except SystemExit as e:
        if e.code:
            raise RuntimeError(f"vaekit {' '.join(map(str, args))} exited with {e.code}") from None
    return time.perf_counter() - start


def run(rows: int, out: Path) -> None:
    work = Path(tempfile.mkdtemp(prefix="vaekit-science-bench-"))
    table(20_000, 76, 1).to_parquet(work / "train.parquet", index=False)
    table(rows, 76, 2).to_parquet(work / "big.parquet", index=False)
    table(20_000, 76, 3).to_parquet(work / "a.parquet", index=False)
    table(20_000, 76, 4).to_parquet(work / "b.parquet", index=False)
    train = timed(["train", "--data", work / "train.parquet", "--drop-columns", "event_id",
                   "--latent-dim", "8", "--epochs", "3", "--quiet", "--nll-samples", "0",
                   "--out", work / "run"])  # fmt: skip
    score = timed(["score", work / "run", "--data", work / "big.parquet", "--samples", "100",
                   "--keep-columns", "event_id", "--out", work / "scores.csv"])  # fmt: skip
    files = timed(["twosample", "--data", work / "a.parquet", "--against", work / "b.parquet",
                   "--drop-columns", "event_id", "--out", work / "ts"])  # fmt: skip
    model_vs_data = timed(["twosample", work / "run", "--data", work / "a.parquet", "--out", work / "ts2"])
    scored = len(pd.read_csv(work / "scores.csv", usecols=["nll"]))
    lines = [
        "# Science workflows: speed on whole samples",
        "",
        f"`python benchmarks/science.py --rows {rows}`; {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads; wall seconds "
        "of each command as the command line runs it (reading, computing, writing).",
        "",
        "| command | rows | seconds | target |",
        "|---|---:|---:|---:|",
        f"| `score --samples 100` (IS-NLL, K = 100), 76 columns | {scored:,} | {score:.1f} | < 60 |",
        f"| `twosample --data A --against B` (1,000 permutations) | 20,000 vs 20,000 | {files:.1f} | < 120 |",
        f"| `twosample RUN --data A` (model draws vs data, with the real-vs-real control) | 20,000 | "
        f"{model_vs_data:.1f} | |",
        f"| (setup) `train`, 3 epochs on 20,000 rows | 20,000 | {train:.1f} | |",
        "",
    ]
    out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "RESULTS-science.md")
    args = parser.parse_args()
    run(args.rows, args.out)
