"""vaekit's default batch size and learning rate against a grid around them, on any data.

For each (batch size, learning rate) it trains the default model for the given number of epochs
from the same initial weights and prints the seconds taken, the best and the last test ELBO
(nats per example) and the test ELBO every few epochs. One process, one configuration after the
other: read the ELBOs, and the seconds only as a rough ratio.

    python benchmarks/defaults_grid.py digits 20
    python benchmarks/defaults_grid.py my_table.csv 20 --drop-columns event_id,process

`objectives.py`'s time-to-quality table is the same grid on the mnist5k MLP, taking turns with
pythae; this script is how the grid was checked on other data before keeping the defaults.
"""

from __future__ import annotations

import argparse
import time

import torch

import vaekit
from vaekit.config import TrainConfig

GRID = [(64, 1e-3), (64, 2e-3), (64, 4e-3), (128, 2e-3), (128, 4e-3)]


class Record:
    """A `vaekit.fit` callback keeping each epoch's test ELBO."""

    def __init__(self):
        self.elbos: list[float] = []

    def on_epoch_end(self, run, row):
        self.elbos.append(row["test_elbo"])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("data", help="a bundled data set's name or a file")
    p.add_argument("epochs", type=int)
    p.add_argument("--drop-columns", default=None, help="table columns to leave out, comma separated")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    data = vaekit.datasets.load(args.data, drop_columns=args.drop_columns)
    print(
        f"defaults: batch {TrainConfig.batch_size}, lr {TrainConfig.lr:g}; {args.data}, {args.epochs} epochs"
    )
    for batch, lr in GRID:
        model = vaekit.VAE.for_data(data, seed=0)
        record = Record()
        started = time.perf_counter()
        vaekit.fit(
            model,
            data,
            epochs=args.epochs,
            batch_size=batch,
            lr=lr,
            out=None,
            progress=False,
            nll_samples=0,
            figures=False,
            callbacks=[record],
        )
        elbos = record.elbos
        every = max(1, args.epochs // 10)
        print(
            f"batch {batch:4d} lr {lr:g}: {time.perf_counter() - started:5.0f} s, test ELBO best "
            f"{max(elbos):.3f}, last {elbos[-1]:.3f}; every {every} epochs: "
            + " ".join(f"{e:.2f}" for e in elbos[every - 1 :: every]),
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
