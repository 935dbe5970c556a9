"""MIG of one sprites32 configuration after every few epochs: the experiments behind the
disentanglement demo's settings.

    python benchmarks/mig_curve.py '{"beta": 16}' --epochs 20 --every 5
    python benchmarks/mig_curve.py '{"beta": 16, "latent": 5, "seed": 1}' --epochs 10
    python benchmarks/mig_curve.py '{"objective": "capacity", "capacity_max": 6, "capacity_weight": 100}'

The JSON holds the model's settings (beta, latent (10), arch ("mlp"), hidden ([512, 256]), seed
(0, the initial weights)), the training's (batch (64), lr (1e-3), lr_schedule ("constant"),
lr_min (0)) and any objective setting (objective, tc_weight, capacity_over, ...). Each line
printed: the epoch, the training seconds, MIG on disentanglement_lib's 10,000 points, the test
ELBO and rate (nats), the largest mutual information of each factor with any latent (nats) and
MIG's gap per factor; with --units, each unit's KL from the prior and the sd of its mean on
5,000 test images, and the (unit x factor) mutual information matrix. Use --threads 1 to run two
side by side on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

import vaekit
from vaekit import evaluate, objectives
from vaekit import metrics as m


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("spec", help="JSON of settings, e.g. '{\"beta\": 16}'")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--every", type=int, default=5, help="MIG after every this many epochs")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--units", action="store_true", help="also each unit's KL, sd of its mean and MI matrix")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    spec = json.loads(args.spec)
    data = vaekit.datasets.load("sprites32")
    source = data.factor_source()
    model = vaekit.VAE.for_data(
        data,
        latent_dim=spec.pop("latent", 10),
        arch=spec.pop("arch", "mlp"),
        hidden=tuple(spec.pop("hidden", (512, 256))),
        beta=float(spec.pop("beta", 1.0)),
        seed=spec.pop("seed", 0),
    )
    batch, lr = spec.pop("batch", 64), spec.pop("lr", 1e-3)
    schedule = {"lr_schedule": spec.pop("lr_schedule", "constant"), "lr_min": spec.pop("lr_min", 0.0)}
    objective = objectives.make(spec.pop("objective", "beta-elbo"), model, **spec)
    factors = source.factor_names
    seconds = 0.0

    class Curve:
        def on_epoch_end(self, run, row):
            nonlocal seconds
            seconds += row["seconds"]
            if row["epoch"] % args.every and row["epoch"] != args.epochs:
                return
            model.eval()

            def represent(obs):
                return evaluate.encode_means(
                    model, np.asarray(obs, np.float32).reshape(-1, *model.data_shape)
                )[0]

            result = m.mig(represent, source, seed=0)
            mu, var = evaluate.encode_means(model, data.x_test[:5000])
            unit_kl = 0.5 * (mu**2 + var - 1 - np.log(var)).mean(0)  # KL(q(z_j|x) || N(0, 1)), nats
            model.train()
            top = dict(zip(factors, np.round(result.mutual_information.max(0), 2).tolist(), strict=True))
            gaps = dict(zip(factors, np.round(result.per_factor, 2).tolist(), strict=True))
            print(
                f"epoch {row['epoch']:3d} {seconds:7.0f} s  MIG {result.score:.3f}  test ELBO "
                f"{row['test_elbo']:.2f}  rate {row.get('test_rate', float('nan')):.2f}  "
                f"max MI {top}  gap {gaps}",
                flush=True,
            )
            if args.units:
                spread = np.round(mu.std(0).astype(float), 3).tolist()
                print(f"  unit KL {np.round(unit_kl.astype(float), 2).tolist()}  unit sd(mean) {spread}")
                print(f"  mutual information (unit x {', '.join(factors)}):")
                print(np.array2string(result.mutual_information, precision=2, suppress_small=True))

    started = time.perf_counter()
    vaekit.fit(
        model,
        data,
        objective=objective,
        epochs=args.epochs,
        batch_size=batch,
        lr=lr,
        **schedule,
        seed=0,
        out=None,
        progress=False,
        nll_samples=0,
        figures=False,
        callbacks=[Curve()],
    )
    print(f"done in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
