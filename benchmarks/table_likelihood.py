"""Do the table defaults reach a known likelihood? Probabilistic-PCA data (Tipping & Bishop,
1999), whose exact marginal log-likelihood is known, trained with the defaults (each column
`real`: a Gaussian whose mean and spread the decoder gives per row) and variants; the test NLL
in the user's units (importance-sampled, K = 500; a typed table's likelihood includes each
column's change of units) against the exact value.

    python benchmarks/table_likelihood.py [--epochs 30] [--out /tmp/table-likelihood]
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from scipy.stats import multivariate_normal

CANDIDATES = {
    "defaults (cosine lr, spread per row)": [],
    "--lr-schedule constant": ["--lr-schedule", "constant"],
    "--column-spread column": ["--column-spread", "column"],
}


def make_table(path: Path, n: int = 5000, d: int = 10, k: int = 3, seed: int = 0):
    gen = np.random.default_rng(seed)
    w = gen.normal(size=(d, k))
    noise = gen.uniform(0.1, 1.0, size=d)  # a different noise level per column
    scales = 10.0 ** gen.uniform(-2, 3, size=d)
    offsets = gen.normal(size=d) * scales
    z = gen.normal(size=(n, k))
    standard = z @ w.T + noise * gen.normal(size=(n, d))
    x = standard * scales + offsets
    cov = (w @ w.T + np.diag(noise**2)) * np.outer(scales, scales)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([f"f{j}" for j in range(d)])
        writer.writerows(x.tolist())
    return x, offsets, cov


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--out", default="/tmp/table-likelihood")
    parser.add_argument("--seeds", type=int, default=3, help="Seeds 0..N-1 per candidate.")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    x, mean, cov = make_table(out / "ppca.csv")
    from vaekit import evaluate, runs

    results = {}
    for name, extra in CANDIDATES.items():
        rows = []
        for seed in range(args.seeds):
            run = out / f"run{list(CANDIDATES).index(name)}-seed{seed}"
            cmd = [sys.executable, "-m", "vaekit.cli", "train", "--data", str(out / "ppca.csv")]
            cmd += ["--latent-dim", "3", "--epochs", str(args.epochs), "--seed", str(seed)]
            cmd += ["--nll-samples", "500", "--out", str(run), "--overwrite", "--quiet", *extra]
            subprocess.run(cmd, check=True)
            summary = json.loads((run / "summary.json").read_text())
            data = runs.load_data(run)
            exact_rows = -multivariate_normal(mean, cov).logpdf(x[data.test_idx])
            per_row = evaluate.nll(runs.load(run), data.x_test, samples=500, seed=0).per_example
            excess = per_row - exact_rows  # paired: the same rows, so their spread cancels
            rows.append(
                {
                    "seed": seed,
                    "nll": summary["nll"],
                    "exact": float(exact_rows.mean()),
                    "excess": float(excess.mean()),
                    "excess_stderr": float(excess.std(ddof=1) / np.sqrt(len(excess))),
                    "rate": summary["rate"],
                }
            )
            r = rows[-1]
            print(
                f"{name:38s} seed {seed}  nll {r['nll']:8.3f}  exact {r['exact']:8.3f}  "
                f"excess {r['excess']:6.3f} +- {r['excess_stderr']:.3f}  rate {r['rate']:.2f}",
                flush=True,
            )
        excesses = [r["excess"] for r in rows]
        results[name] = {
            "runs": rows,
            "excess_mean": float(np.mean(excesses)),
            "excess_sd": float(np.std(excesses)),
        }
        print(
            f"{name:38s} excess over seeds {np.mean(excesses):.3f} +- {np.std(excesses):.3f} (sd)", flush=True
        )
    (out / "results.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
