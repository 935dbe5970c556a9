"""Disentanglement metrics, vaekit vs disent: wall-clock time and score, side by side.

Times `vaekit.metrics` against the `disent` library's metrics (disent 0.8.0, a PyTorch port of
disentanglement_lib) for the four metrics both have: MIG, DCI (gradient-boosted trees), SAP and
the FactorVAE score. Both run in ONE process, on the same ground truth, the same representation
and the same sample counts:

* ground truth: `vaekit.datasets.sprites.SpritesFactorData` (procedural dSprites, 3 x 6 x 40 x 32 x 32
  factor grid, images rendered on demand). vaekit gets it as is (it renders a whole batch per
  call); disent gets it through a `GroundTruthData` subclass whose observation getter renders the
  single image of a grid index, which is how disent reads any data set (one observation at a
  time, then `default_collate`). Factors are drawn uniformly and independently in both.
* representation: the encoder mean of a seeded, untrained vaekit VAE (`VAE.from_config`, MLP
  res*res-128-(2 x 10), latent_dim 10), evaluated under `torch.no_grad` by
  `vaekit.evaluate.encode_means` with one torch thread. Its codes are random features of the
  image, so the scores are low; what matters is that both libraries agree.
* settings: disentanglement_lib's reference sample counts (`vaekit.metrics.PRESETS["reference"]`)
  or small ones with `--quick`; the same observations per call of the representation (1024, or
  64 with `--quick`) for MIG, DCI and SAP; DCI with sklearn `GradientBoostingClassifier`
  defaults, one factor after the other; SAP with discrete factors (`LinearSVC(C=0.01,
  class_weight="balanced")`); FactorVAE with groups of 64 and no pruning (disent hard-codes the
  prune threshold 0.0, so vaekit gets `prune_threshold=0.0` instead of its reference 0.05).

The two libraries take turns metric by metric, repeat by repeat (who goes first swaps every
repeat), so a shared machine's load hits both alike; the table gives the median seconds, their
ratio, and the mean (+- sd over repeats) of the scores. Repeat r seeds vaekit with r and disent's
global numpy RNG with r: the two draw different samples, so their scores differ by sampling
noise. A second table removes that noise: MIG, DCI and SAP of both libraries on one shared set of
codes (vaekit's `*_from_codes` against disent's internal `_compute_*` functions). MIG and SAP
should agree exactly; DCI up to the trees' random tie-breaking (vaekit's range over three seeds
is shown). A probe splits the per-observation cost of each library's path from factors to
codes, and shows how much of it is rendering (one image per call for disent).

    python benchmarks/metrics_vs_disent.py                  # reference counts, 3 repeats, 64 px
    python benchmarks/metrics_vs_disent.py --quick          # small counts, 1 repeat (smoke test)
    python benchmarks/metrics_vs_disent.py --resolution 32 --repeats 5 --out /tmp/metrics.md

Needs `disent` (`pip install disent==0.8.0`, which needs torchvision); not run by CI.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import sklearn
import torch

import vaekit
import vaekit.evaluate
from vaekit import metrics as vm
from vaekit.datasets.sprites import SpritesFactorData

with warnings.catch_warnings():
    # disent warns at import that numba (an optional JIT it does not need here) is missing.
    warnings.filterwarnings("ignore", message="failed to JIT compile")
    from disent.dataset import DisentDataset
    from disent.dataset.data import GroundTruthData
    from disent.metrics import metric_dci, metric_factor_vae, metric_mig, metric_sap
    from disent.metrics._dci import _compute_dci
    from disent.metrics._mig import _compute_mig
    from disent.metrics._sap import _compute_sap

METRICS = ("mig", "dci", "sap", "factorvae")
LABELS = {"mig": "MIG", "dci": "DCI (gbt)", "sap": "SAP", "factorvae": "FactorVAE"}
# Observations per call of the representation (MIG, DCI, SAP; vaekit's FactorVAE). --quick uses 64:
# when a whole sample fits in one call, disent 0.8.0 keeps its factors as a torch tensor and its DCI
# then fails (`np.mean` of a tensor comparison).
EVAL_BATCH = 1024
QUICK_EVAL_BATCH = 64
LATENT = 10
HIDDEN = (128,)
# One torch thread: the metrics' heavy parts (trees, SVMs, rendering) are single-threaded anyway,
# and on a shared 2-core machine two OpenMP threads make small encoder calls (disent's FactorVAE
# encodes 64 images per call) up to ~15x slower whenever another process holds a core.
TORCH_THREADS = 1

REFERENCE = {name: dict(vm.PRESETS["reference"][name]) for name in METRICS}
QUICK = {
    "mig": {"num_train": 1000},
    "dci": {"num_train": 200, "num_test": 100},
    "sap": {"num_train": 1000, "num_test": 500},
    "factorvae": {"batch_size": 64, "num_train": 100, "num_eval": 50, "num_variance_estimate": 1000},
}
# Points for the shared-codes check (capped by the run's own counts); the trees of DCI are slow
# (113 classes in all: one tree per class and boosting stage).
CHECK = {"mig": 2000, "dci": (200, 100), "sap": (2000, 1000)}

Scores = dict[str, float]
Represent = Callable[[object], np.ndarray]


# ----------------------------------------------------------------------------- shared inputs
class SpritesGroundTruth(GroundTruthData):
    """vaekit's on-demand sprites as a disent `GroundTruthData`: one rendered image per grid index.

    Observations are float32 (1, res, res), the same arrays `SpritesFactorData(flatten=False)`
    gives vaekit; disent's `default_collate` stacks them into a tensor batch.
    """

    def __init__(self, sprites: SpritesFactorData) -> None:
        self._sprites = sprites  # before super().__init__, which reads factor_sizes/names
        super().__init__(transform=None)

    @property
    def factor_names(self) -> tuple[str, ...]:
        return tuple(self._sprites.factor_names)

    @property
    def factor_sizes(self) -> tuple[int, ...]:
        return tuple(self._sprites.factor_sizes)

    @property
    def img_shape(self) -> tuple[int, ...]:
        return (self._sprites.resolution, self._sprites.resolution, 1)

    def _get_observation(self, idx):
        return self._sprites.sample_observations(self.idx_to_pos(idx)[None])[0]


def make_representation(resolution: int) -> Represent:
    """Encoder means of a seeded, untrained vaekit VAE (MLP), for numpy arrays or tensors."""
    config = {
        "data_shape": [1, resolution, resolution],
        "latent_dim": LATENT,
        "likelihood": "bernoulli",
        "sigma": 1.0,
        "per_dim_sigma": False,
        "beta": 1.0,
        "arch": "mlp",
        "hidden": list(HIDDEN),
        "activation": "relu",
        "model": "vae",
        "beta_range": None,
    }
    model = vaekit.VAE.from_config(config, seed=0).eval()

    def represent(observations) -> np.ndarray:
        x = torch.as_tensor(observations, dtype=torch.float32)
        return vaekit.evaluate.encode_means(model, x, batch_size=EVAL_BATCH)[0]

    return represent


# ----------------------------------------------------------------------------- the two libraries
def run_vaekit(
    name: str, represent: Represent, data: SpritesFactorData, counts: dict, eval_batch: int, seed: int
) -> Scores:
    kw = {**counts, "eval_batch_size": eval_batch}
    if name == "mig":
        return {"MIG": vm.mig(represent, data, seed, **kw).score}
    if name == "dci":
        r = vm.dci(represent, data, seed, method="gbt", n_jobs=1, **kw)
        return {"D": r.disentanglement, "C": r.completeness, "I": r.informativeness}
    if name == "sap":
        return {"SAP": vm.sap(represent, data, seed, continuous=False, **kw).score}
    r = vm.factorvae_score(represent, data, seed, prune_threshold=0.0, **kw)
    return {"acc": r.score}


def run_disent(
    name: str, represent: Represent, dataset: DisentDataset, counts: dict, eval_batch: int, seed: int
) -> Scores:
    np.random.seed(seed)  # disent samples from numpy's global RNG
    if name == "mig":
        out = metric_mig(dataset, represent, batch_size=eval_batch, **counts)
        return {"MIG": float(out["mig.discrete_score"])}
    if name == "dci":
        out = metric_dci(dataset, represent, batch_size=eval_batch, boost_mode="sklearn", **counts)
        return {
            "D": float(out["dci.disentanglement"]),
            "C": float(out["dci.completeness"]),
            "I": float(out["dci.informativeness_test"]),
        }
    if name == "sap":
        out = metric_sap(dataset, represent, batch_size=eval_batch, continuous_factors=False, **counts)
        return {"SAP": float(out["sap.score"])}
    # batch_size here is the FactorVAE group size (64); disent encodes one group per call.
    out = metric_factor_vae(dataset, represent, **counts)
    return {"acc": float(out["factor_vae.eval_accuracy"])}


def shared_codes_check(represent: Represent, data: SpritesFactorData, counts: dict) -> list[tuple]:
    """MIG, DCI and SAP of both libraries on one shared sample of codes.

    Rows ``(label, vaekit score, disent score, note)``. The trees of DCI break ties between
    equally good splits by a random feature order (sklearn's ``random_state``: vaekit seeds it,
    disent takes numpy's global RNG), so DCI agrees only up to that; the note gives vaekit's range
    over three seeds of it. MIG and SAP are deterministic.
    """
    rng = np.random.default_rng(12345)
    n_mig = min(CHECK["mig"], counts["mig"]["num_train"])
    n_dci = [min(c, counts["dci"][k]) for c, k in zip(CHECK["dci"], ("num_train", "num_test"), strict=True)]
    n_sap = [min(c, counts["sap"][k]) for c, k in zip(CHECK["sap"], ("num_train", "num_test"), strict=True)]
    n_train, n_test = max(n_mig, n_dci[0], n_sap[0]), max(n_dci[1], n_sap[1])
    y_tr, y_te = data.sample_factors(n_train, rng), data.sample_factors(n_test, rng)
    z_tr, z_te = (
        np.concatenate(
            [represent(data.sample_observations(y[s : s + EVAL_BATCH])) for s in range(0, len(y), EVAL_BATCH)]
        )
        for y in (y_tr, y_te)
    )

    m = n_mig
    mig_ours = vm.mig_from_codes(z_tr[:m], y_tr[:m]).score
    mig_theirs = float(_compute_mig(z_tr[:m].T, y_tr[:m].T)["mig.discrete_score"])
    rows = [(f"MIG ({m} points)", mig_ours, mig_theirs, "deterministic")]

    a, b = n_dci
    ours = [vm.dci_from_codes(z_tr[:a], y_tr[:a], z_te[:b], y_te[:b], method="gbt", seed=s) for s in range(3)]
    np.random.seed(0)
    theirs = _compute_dci(z_tr[:a].T, y_tr[:a].T, z_te[:b].T, y_te[:b].T, boost_mode="sklearn")
    for key, attr, their_key in (
        ("D", "disentanglement", "dci.disentanglement"),
        ("C", "completeness", "dci.completeness"),
        ("I", "informativeness", "dci.informativeness_test"),
    ):
        values = [getattr(r, attr) for r in ours]
        note = f"vaekit, tree seeds 0-2: {min(values):.6f} - {max(values):.6f}"
        rows.append((f"DCI {key} ({a} / {b} points)", values[0], float(theirs[their_key]), note))

    a, b = n_sap
    sap_ours = vm.sap_from_codes(z_tr[:a], y_tr[:a], z_te[:b], y_te[:b]).score
    sap_theirs = float(_compute_sap(z_tr[:a].T, y_tr[:a].T, z_te[:b].T, y_te[:b].T, False)["sap.score"])
    rows.append((f"SAP ({a} / {b} points)", sap_ours, sap_theirs, "deterministic (primal LinearSVC)"))
    return rows


def access_probe(
    represent: Represent, data: SpritesFactorData, dataset: DisentDataset, eval_batch: int
) -> list[str]:
    """Seconds per observation of each library's path from factors to codes, and of rendering alone.

    The ground truth renders on demand, and disent asks for one image per call, so part of
    disent's time is the renderer's per-call overhead, which an in-memory data set would not have.
    """
    n = 2048
    factors = data.sample_factors(n, np.random.default_rng(0))

    def per_observation(step: int, fetch: Callable) -> float:
        t0 = time.perf_counter()
        for s in range(0, n, step):
            fetch(factors[s : s + step])
        return (time.perf_counter() - t0) / n

    vaekit_path = per_observation(eval_batch, lambda f: represent(data.sample_observations(f)))
    disent_path = per_observation(
        64, lambda f: represent(dataset.dataset_batch_from_factors(f, mode="input"))
    )
    batch_render = per_observation(eval_batch, data.sample_observations)
    single_render = per_observation(1, data.sample_observations)
    us = 1e6
    return [
        f"factors -> observations -> codes, per observation: vaekit {vaekit_path * us:.0f} us "
        f"(calls of {eval_batch}), disent {disent_path * us:.0f} us (calls of 64, one getter call per image)",
        f"of which rendering: {batch_render * us:.0f} us per image in batches of {eval_batch}, "
        f"{single_render * us:.0f} us one image at a time (disent's getter); the FactorVAE score "
        "encodes num_variance_estimate + 64 x (num_train + num_eval) images",
    ]


# ----------------------------------------------------------------------------- report
def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def fmt_scores(runs: list[Scores]) -> str:
    parts = []
    for key in runs[0]:
        values = [r[key] for r in runs]
        text = f"{statistics.fmean(values):.4f}"
        if len(values) > 1:
            text += f" ± {statistics.stdev(values):.4f}"
        parts.append(text if len(runs[0]) == 1 else f"{key} {text}")
    return ", ".join(parts)


def report(
    args: argparse.Namespace,
    eval_batch: int,
    seconds: dict,
    scores: dict,
    check: list[tuple],
    probe: list[str],
    load_start: tuple[float, ...],
    wall: float,
) -> str:
    counts = QUICK if args.quick else REFERENCE
    load_end = os.getloadavg()
    loads = " ".join(f"{v:.2f}" for v in load_start), " ".join(f"{v:.2f}" for v in load_end)
    command = " ".join(["python", "benchmarks/" + Path(sys.argv[0]).name, *sys.argv[1:]])
    count_text = "; ".join(
        f"{LABELS[n]} " + ", ".join(f"{k}={v}" for k, v in counts[n].items()) for n in METRICS
    )
    lines = [
        "## Disentanglement metrics: vaekit vs disent",
        "",
        f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- command: `{command}` ({wall / 60:.1f} min)",
        f"- machine: {len(os.sched_getaffinity(0))} cores (nproc), {cpu_model()}; "
        f"load average (1, 5, 15 min) at start {loads[0]}, at end {loads[1]}",
        f"- python {platform.python_version()}, torch {torch.__version__} "
        f"({torch.get_num_threads()} thread(s)), vaekit {vaekit.__version__}, "
        f"disent {importlib.metadata.version('disent')}, "
        f"scikit-learn {sklearn.__version__}, numpy {np.__version__}",
        f"- data: `vaekit.datasets.sprites.SpritesFactorData({args.resolution})`, rendered on demand; "
        f"representation: encoder mean of a seeded, untrained vaekit VAE (MLP "
        f"{args.resolution}x{args.resolution}-{'-'.join(map(str, HIDDEN))}-{LATENT})",
        f"- sample counts, the same for both ({'quick' if args.quick else 'disentanglement_lib reference'}): "
        f"{count_text}; {eval_batch} observations per call of the representation in MIG, DCI, SAP",
        f"- {args.repeats} repeat(s), the libraries taking turns metric by metric; seconds = median "
        "over repeats; scores = mean ± sd over repeats (each library draws its own random samples)",
        "",
        "| metric | vaekit s | disent s | disent / vaekit | vaekit score | disent score |",
        "|---|---:|---:|---:|---|---|",
    ]
    for name in METRICS:
        ours = statistics.median(seconds["vaekit"][name])
        theirs = statistics.median(seconds["disent"][name])
        lines.append(
            f"| {LABELS[name]} | {ours:.2f} | {theirs:.2f} | {theirs / ours:.2f}x | "
            f"{fmt_scores(scores['vaekit'][name])} | {fmt_scores(scores['disent'][name])} |"
        )
    lines += [
        "",
        "Same codes for both, so no sampling noise (vaekit `*_from_codes` vs disent's `_compute_*`):",
        "",
        "| metric | vaekit | disent | abs. difference | note |",
        "|---|---:|---:|---:|---|",
    ]
    lines += [f"| {label} | {a:.6f} | {b:.6f} | {abs(a - b):.1e} | {note} |" for label, a, b, note in check]
    lines += [
        "",
        *(f"- {line}" for line in probe),
        "- aligned: MIG 20-bin histogram; DCI sklearn `GradientBoostingClassifier()` defaults, factors "
        "fitted one after the other (vaekit `n_jobs=1`), informativeness = mean test accuracy; SAP "
        'discrete factors, `LinearSVC(C=0.01, class_weight="balanced")`; FactorVAE groups of 64, '
        "global variances from `num_variance_estimate` points, prune threshold 0.0 in both (disent "
        "hard-codes it; vaekit's reference is 0.05)",
        "- not aligned (each library's own design): disent's FactorVAE encodes each group of 64 in a "
        f"call of its own (and its variance sample in calls of 64), vaekit packs {eval_batch // 64} "
        "group(s) per call; disent fetches every observation through its own getter call, vaekit "
        "renders a batch at once; the libraries draw different random samples",
    ]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sample counts, 1 repeat (smoke test)")
    parser.add_argument("--repeats", type=int, default=None, help="repeats (default 3; 1 with --quick)")
    parser.add_argument("--resolution", type=int, choices=(32, 64), default=64, help="image side (px)")
    parser.add_argument("--out", type=Path, default=None, help="also write the report to this file")
    args = parser.parse_args()
    args.repeats = args.repeats or (1 if args.quick else 3)
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")

    torch.set_num_threads(TORCH_THREADS)
    load_start, t_start = os.getloadavg(), time.perf_counter()
    counts = QUICK if args.quick else REFERENCE
    eval_batch = QUICK_EVAL_BATCH if args.quick else EVAL_BATCH
    data = SpritesFactorData(args.resolution, flatten=False)
    dataset = DisentDataset(SpritesGroundTruth(data))
    represent = make_representation(args.resolution)
    represent(data.sample_observations(data.sample_factors(EVAL_BATCH, np.random.default_rng(0))))  # warm-up

    # The untimed checks first: they take a minute or two, and the timed runs can take an hour.
    check = shared_codes_check(represent, data, counts)
    probe = access_probe(represent, data, dataset, eval_batch)
    print(f"checks done after {time.perf_counter() - t_start:.0f} s", file=sys.stderr, flush=True)

    runners = {
        "vaekit": lambda name, seed: run_vaekit(name, represent, data, counts[name], eval_batch, seed),
        "disent": lambda name, seed: run_disent(name, represent, dataset, counts[name], eval_batch, seed),
    }
    seconds = {lib: {name: [] for name in METRICS} for lib in runners}
    scores = {lib: {name: [] for name in METRICS} for lib in runners}
    for rep in range(args.repeats):
        order = ("vaekit", "disent") if rep % 2 == 0 else ("disent", "vaekit")
        for name in METRICS:
            for lib in order:
                t0 = time.perf_counter()
                result = runners[lib](name, rep)
                seconds[lib][name].append(time.perf_counter() - t0)
                scores[lib][name].append(result)
                print(
                    f"repeat {rep + 1}/{args.repeats} {LABELS[name]:<10} {lib:<6} "
                    f"{seconds[lib][name][-1]:8.2f} s  {fmt_scores([result])}",
                    file=sys.stderr,
                    flush=True,
                )
    text = report(args, eval_batch, seconds, scores, check, probe, load_start, time.perf_counter() - t_start)
    print(text)
    if args.out is not None:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
