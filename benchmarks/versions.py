"""Training throughput of vaekit at several git revisions, paired round by round.

Each round trains the same model (mnist5k, a 784-512-16 MLP VAE with a Bernoulli likelihood, batch
100, Adam 1e-3, 12 epochs, seed 0, 2 threads) once per revision, each in its own process with the
revision's checkout first on PYTHONPATH, in turn (the order reversed every other round); the
ratio of each revision's median epoch speed to the last revision's is taken within a round, and
the median over rounds is printed. The final training loss is printed too: a refactor that keeps
the numbers keeps it to the last digit. Run it on a quiet machine.

    python benchmarks/versions.py 526ab88 HEAD --rounds 7
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ONE = """
import json, statistics, time
import torch
torch.set_num_threads(2)
import vaekit
data = vaekit.datasets.load("mnist5k")
model = vaekit.VAE.for_data(data, latent_dim=16, likelihood="bernoulli", hidden=(512,), arch="mlp", seed=0)
run = vaekit.fit(model, data, epochs=12, batch_size=100, lr=1e-3, out=None, progress=False,
                 nll_samples=0, figures=False)
seconds = [r["seconds"] for r in run.history][1:]  # the first epoch warms up
print(json.dumps({"ex_s": len(data.x_train) / statistics.median(seconds),
                  "loss": run.history[-1]["train_loss"]}))
"""


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("revisions", nargs="+", help="git revisions; ratios are to the last one")
    p.add_argument("--rounds", type=int, default=7)
    args = p.parse_args(argv)
    repo = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as tmp:
        trees = {}
        for rev in args.revisions:
            tree = Path(tmp) / rev.replace("/", "_")
            subprocess.run(
                ["git", "-C", str(repo), "worktree", "add", "-q", "--detach", str(tree), rev], check=True
            )
            trees[rev] = tree
        try:
            rows: dict[str, list[dict]] = {rev: [] for rev in trees}
            for r in range(args.rounds):
                order = list(trees) if r % 2 == 0 else list(reversed(trees))
                for rev in order:
                    env = dict(os.environ, PYTHONPATH=str(trees[rev]))
                    done = subprocess.run(
                        [sys.executable, "-c", ONE],
                        env=env,
                        capture_output=True,
                        text=True,
                        cwd=tmp,
                        check=True,
                    )
                    rows[rev].append(json.loads(done.stdout.strip().splitlines()[-1]))
                print(f"round {r + 1}: " + ", ".join(f"{v} {rows[v][-1]['ex_s']:.0f} ex/s" for v in trees))
            last = args.revisions[-1]
            print(f"\n| revision | median ex/s | ratio to {last} (median over rounds) | final train loss |")
            print("|---|---:|---:|---:|")
            for rev in trees:
                ratios = [a["ex_s"] / b["ex_s"] for a, b in zip(rows[rev], rows[last], strict=True)]
                speed = statistics.median(x["ex_s"] for x in rows[rev])
                print(
                    f"| {rev} | {speed:.0f} | {statistics.median(ratios):.3f} | {rows[rev][0]['loss']:.6f} |"
                )
        finally:
            for tree in trees.values():
                subprocess.run(
                    ["git", "-C", str(repo), "worktree", "remove", "--force", str(tree)], check=False
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
