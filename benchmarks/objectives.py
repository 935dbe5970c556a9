"""The objectives vaekit and pythae both have, side by side, model by model; and time to quality.

Part 1, per objective (beta-TCVAE, FactorVAE, IWAE, VampPrior, the capacity beta-VAE): vaekit
and pythae train the same MLP (784-512-16, Bernoulli, the net of `run.py`, the same initial
weights) with the same objective settings, Adam 1e-3, batch 100, in ONE process, taking turns
epoch by epoch (`run.py`'s greenlet baton). Reported: training examples per second, the paired
epoch ratio, and each model's test ELBO and IWAE bound by one shared function.

Part 2, time to quality: pythae's VAE with pythae's defaults (Adam 1e-4, batch 64) for 20 epochs,
and vaekit with its own defaults (and a grid of batch sizes and learning rates, to choose those
defaults by measurement), all taking turns epoch by epoch; the wall time each needs until its
test ELBO first reaches pythae's 20-epoch test ELBO.

    python benchmarks/objectives.py            # writes benchmarks/RESULTS-objectives.md
    python benchmarks/objectives.py --quick    # 2 epochs, smoke test (writes nothing)

Needs pythae and greenlet (`pip install -e ".[bench]"`); see README.md.
"""

from __future__ import annotations

import os

os.environ.setdefault("TQDM_DISABLE", "1")

import argparse  # noqa: E402
import logging  # noqa: E402
import math  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))

from run import (  # noqa: E402
    BATCH,
    LATENT,
    LR,
    THREADS,
    Baton,
    Lines,
    _pythae_classes,
    machine,
    nets_like,
    pythae_available,
    take_turns,
)

import vaekit  # noqa: E402
from vaekit import objectives  # noqa: E402
from vaekit.config import TrainConfig  # noqa: E402

ELBO_SAMPLES = 10  # draws of z per test image for the shared bounds
IWAE_K = 5  # the shared IWAE bound uses groups of this many of those draws
DISC_LR = 1e-4
DISC_BETAS = (0.5, 0.9)


@dataclass
class Case:
    """One objective, set up the same way in both frameworks."""

    vaekit_objective: str
    vaekit_settings: dict
    pythae_model: str  # a class in pythae.models
    pythae_settings: dict
    prior: dict | None = None
    note: str = ""


CASES = {
    "beta-TCVAE": Case(
        "beta-tcvae",
        {"mi_weight": 1.0, "tc_weight": 6.0, "dimwise_weight": 1.0, "estimator": "mss"},
        "BetaTCVAE",
        {"alpha": 1.0, "beta": 6.0, "gamma": 1.0, "use_mss": True},
        note="alpha 1, TC weight 6, gamma 1, minibatch-stratified sampling, N = 4,000",
    ),
    "FactorVAE": Case(
        "factorvae",
        {"gamma": 40.0, "disc_units": 1000, "disc_layers": 5, "disc_lr": DISC_LR},
        "FactorVAE",
        {"gamma": 40.0},
        note="gamma 40; discriminator 5 x 1000 leaky ReLU (pythae's), Adam 1e-4 (0.5, 0.9); pythae "
        "gives the VAE half of each batch and the discriminator the other half, vaekit the whole batch "
        "to the VAE",
    ),
    "IWAE": Case("iwae", {"iwae_samples": 5}, "IWAE", {"number_samples": 5}, note="K = 5"),
    "VampPrior": Case(
        "beta-elbo",
        {},
        "VAMP",
        {"number_components": 50},
        prior={"name": "vamp", "components": 50},
        note="50 pseudo-inputs (vaekit's start at training images, pythae's at its own init)",
    ),
    "capacity": Case(
        "capacity",
        {"capacity_weight": 10.0, "capacity_max": 50.0, "capacity_epochs": 25.0, "capacity_over": "example"},
        "DisentangledBetaVAE",
        {"beta": 10.0, "C": 50.0, "warmup_epoch": 25},
        note="gamma 10, C_max 50 nats reached at epoch 25 (pythae's defaults), |KL - C| per example "
        "(pythae's form; vaekit's default is the batch mean)",
    ),
}


# ----------------------------------------------------------------------------- shared measures
def log_mixture(z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log (1/K) sum_k N(z; mean_k, diag exp(logvar_k)) in nats: z (B, d), mean/logvar (K, d) -> (B,)."""
    comp = torch.distributions.Normal(mean, torch.exp(0.5 * logvar))
    return torch.logsumexp(comp.log_prob(z[:, None, :]).sum(-1), dim=1) - math.log(len(mean))


@torch.no_grad()
def test_bounds(encode, logits, log_prior, x, samples=ELBO_SAMPLES, k=IWAE_K, seed=0) -> tuple[float, float]:
    """(ELBO, IWAE_k bound) in nats per test image, the same for every framework: log weights
    log p(x|z) + log p(z) - log q(z|x) with z ~ q(z|x) (Bernoulli log-likelihood summed over the
    784 pixels; the prior's log density from `log_prior(z)`, so the KL is estimated the same way for
    the standard normal and the VampPrior). ELBO: the mean of `samples` log weights; IWAE_k (Burda
    et al., 2016, eq. 8): log of the mean of k weights, averaged over samples // k groups."""
    gen = torch.Generator().manual_seed(seed)
    elbo = iwae = 0.0
    for xb in x.split(500):
        mean, logvar = encode(xb)
        q = torch.distributions.Normal(mean, torch.exp(0.5 * logvar))
        target = xb.flatten(1)
        logw = []
        for _ in range(samples):
            z = mean + q.scale * torch.randn(mean.shape, generator=gen)
            log_px = -F.binary_cross_entropy_with_logits(logits(z).flatten(1), target, reduction="none").sum(
                1
            )
            logw.append(log_px + log_prior(z) - q.log_prob(z).sum(1))
        w = torch.stack(logw)  # (samples, batch)
        elbo += float(w.mean(0).sum())
        groups = w[: samples // k * k].reshape(samples // k, k, -1)
        iwae += float((torch.logsumexp(groups, 1) - math.log(k)).mean(0).sum())
    return elbo / len(x), iwae / len(x)


def standard_normal(z):
    return torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)


def vaekit_measures(model):
    def encode(x):
        return model.encoder(x, None).chunk(2, 1)

    if model.prior.name == "vamp":

        def log_prior(z):
            return log_mixture(z, *encode(model.prior.pseudo_inputs))

    else:
        log_prior = standard_normal
    return encode, (lambda z: model.decoder(z, None)), log_prior


def pythae_measures(model):
    def encode(x):
        out = model.encoder(x)
        return out.embedding, out.log_covariance

    if model.model_name == "VAMP":

        def log_prior(z):
            u = model.pseudo_inputs(model.idle_input).reshape(
                (model.number_components,) + tuple(model.model_config.input_dim)
            )
            return log_mixture(z, *encode(u))

    else:
        log_prior = standard_normal
    return encode, model.decoder.logits, log_prior


# ----------------------------------------------------------------------------- trainers
@dataclass
class Trace:
    """What one trainer did: its training loop's time per epoch, its wall time per epoch as a user
    feels it (from the call's start; setup, the per-epoch test pass and the framework's own
    bookkeeping included; the shared measurements below taken off), and the shared test ELBO
    after each epoch (only with `measure_each_epoch`)."""

    epoch_seconds: list[float] = field(default_factory=list)
    wall: list[float] = field(default_factory=list)
    elbo: list[float] = field(default_factory=list)
    model: object = None


class Turns:
    """An epoch-end hook: note the wall time since the last mark, optionally measure the test
    ELBO (not timed), hand the baton on, and mark again when the turn comes back."""

    def __init__(self, name, baton, trace, measure=None):
        self.name, self.baton, self.trace, self.measure = name, baton, trace, measure
        self.mark = time.perf_counter()

    def epoch_end(self):
        self.trace.wall.append(time.perf_counter() - self.mark)
        if self.measure is not None:
            grad = torch.is_grad_enabled()
            self.trace.elbo.append(self.measure()[0])
            torch.set_grad_enabled(grad)
        self.baton.pass_on(self.name)
        self.mark = time.perf_counter()

    # vaekit.fit's callback
    def on_epoch_end(self, run, row):
        self.trace.epoch_seconds.append(row["seconds"])
        self.epoch_end()


def epoch_measure(model, fns, x_test):
    """A function giving `test_bounds` of `model` (in eval mode, then back to training), for
    `Turns` to call after each epoch; `fns`: `vaekit_measures` or `pythae_measures` of it."""

    def measure():
        model.eval()
        out = test_bounds(*fns, x_test)
        model.train()
        return out

    return measure


def vaekit_model(data, seed, prior=None):
    return vaekit.VAE.for_data(
        data, latent_dim=LATENT, likelihood="bernoulli", hidden=(512,), arch="mlp", seed=seed, prior=prior
    )


def train_vaekit(
    name, model, objective, data, x_test, epochs, seed, baton, *, batch=BATCH, lr=LR, each_epoch=False
):
    trace = Trace(model=model)
    measure = epoch_measure(model, vaekit_measures(model), x_test) if each_epoch else None
    turns = Turns(name, baton, trace, measure)
    vaekit.fit(
        model,
        data,
        objective=objective,
        epochs=epochs,
        batch_size=batch,
        lr=lr,
        seed=seed,
        out=None,
        progress=False,
        nll_samples=0,
        figures=False,
        callbacks=[turns],
    )
    model.eval()
    return trace


def pythae_model(case: Case | None, nets, input_dim, factor_disc=None):
    import pythae.models as pm

    Encoder, Decoder, _ = _pythae_classes()
    trunk, head, dec = nets
    cls_name, settings = ("VAE", {}) if case is None else (case.pythae_model, case.pythae_settings)
    config = getattr(pm, cls_name + "Config")(
        input_dim=tuple(input_dim), latent_dim=LATENT, reconstruction_loss="bce", **settings
    )
    model = getattr(pm, cls_name)(config, encoder=Encoder(trunk, head), decoder=Decoder(dec))
    if factor_disc is not None:  # start pythae's discriminator at vaekit's weights
        model.discriminator.layers.load_state_dict(factor_disc.net.state_dict())
    return model


def train_pythae(name, model, x_train, x_test, epochs, seed, baton, *, trainer=None, each_epoch=False):
    """pythae's TrainingPipeline; `trainer`: the trainer config's settings (None: the benchmark's
    Adam 1e-3, batch 100; {} : pythae's defaults)."""
    from pythae.pipelines import TrainingPipeline
    from pythae.trainers import AdversarialTrainerConfig, BaseTrainerConfig
    from pythae.trainers.training_callbacks import TrainingCallback

    for logger in list(logging.root.manager.loggerDict):
        if logger.startswith("pythae"):
            logging.getLogger(logger).setLevel(logging.WARNING)
    trace = Trace(model=model)
    measure = epoch_measure(model, pythae_measures(model), x_test) if each_epoch else None
    turns = Turns(name, baton, trace, measure)

    class Hook(TrainingCallback):
        def on_train_step_begin(self, training_config, **kwargs):
            self.t0 = time.perf_counter()

        def on_eval_step_begin(self, training_config, **kwargs):
            trace.epoch_seconds.append(time.perf_counter() - self.t0)

        def on_epoch_end(self, training_config, **kwargs):
            turns.epoch_end()

    if trainer is None:
        if model.model_name == "FactorVAE":
            trainer = {
                "autoencoder_learning_rate": LR,
                "discriminator_learning_rate": DISC_LR,
                "discriminator_optimizer_params": {"betas": DISC_BETAS},
            }
        else:
            trainer = {"learning_rate": LR}
        trainer["per_device_train_batch_size"] = BATCH
    cls = AdversarialTrainerConfig if model.model_name == "FactorVAE" else BaseTrainerConfig
    with tempfile.TemporaryDirectory(prefix="pythae-bench-") as out:
        config = cls(
            output_dir=out,
            num_epochs=epochs,
            per_device_eval_batch_size=1000,
            steps_saving=None,
            steps_predict=None,
            no_cuda=True,
            seed=seed,
            **trainer,
        )
        turns.mark = time.perf_counter()
        TrainingPipeline(model=model, training_config=config)(
            train_data=x_train, eval_data=x_test, callbacks=[Hook()]
        )
    model.eval()
    return trace


# ----------------------------------------------------------------------------- part 1
def run_case(title, case, data, x_train, x_test, epochs, seed, log):
    model = vaekit_model(data, seed, case.prior)
    objective = objectives.make(case.vaekit_objective, model, **case.vaekit_settings)
    objective.bind(n_train=len(x_train), epochs=epochs, seed=seed)
    disc = getattr(objective, "discriminator", None)
    p_model = pythae_model(case, nets_like(model, "mlp"), x_train.shape[1:], disc)
    baton = Baton(["vaekit", "pythae"])
    jobs = {
        "vaekit": lambda b: train_vaekit("vaekit", model, objective, data, x_test, epochs, seed, b),
        "pythae": lambda b: train_pythae("pythae", p_model, x_train, x_test, epochs, seed, b),
    }
    traces = take_turns(jobs, baton)
    n = len(x_train)
    rows = {}
    for fw, tr in traces.items():
        fns = vaekit_measures(tr.model) if fw == "vaekit" else pythae_measures(tr.model)
        elbo, iwae = test_bounds(*fns, x_test)
        rows[fw] = {
            "median": n / statistics.median(tr.epoch_seconds),
            "whole": n * epochs / sum(tr.wall),
            "elbo": elbo,
            "iwae": iwae,
            "epoch_seconds": tr.epoch_seconds,
        }
        log(
            f"  [{title} seed {seed}] {fw:7s} loop {sum(tr.epoch_seconds):6.2f} s, "
            f"whole {sum(tr.wall):6.2f} s, test ELBO {elbo:8.2f}, IWAE-{IWAE_K} {iwae:8.2f}"
        )
        log("      epoch seconds: " + " ".join(f"{s:.2f}" for s in tr.epoch_seconds))
    # paired: the same epoch of the two, which ran next to each other, whole (each framework's
    # per-epoch test pass included); the first epoch (setup) left out when there are others
    v, p = traces["vaekit"].wall, traces["pythae"].wall
    pairs = list(zip(v, p, strict=True))[1 if epochs > 1 else 0 :]
    rows["vaekit"]["paired"] = statistics.median(b / a for a, b in pairs)
    return rows


# ----------------------------------------------------------------------------- part 2
def first_reach(trace: Trace, target: float) -> float | None:
    total = 0.0
    for wall, elbo in zip(trace.wall, trace.elbo, strict=True):
        total += wall
        if elbo >= target:
            return total
    return None


def time_to_quality(data, x_train, x_test, epochs, grid, seed, log):
    """pythae's VAE with its defaults and vaekit at each (batch, lr) of `grid` (the first is
    vaekit's default), taking turns epoch by epoch, measured after every epoch."""
    jobs, names = {}, []
    base = vaekit_model(data, seed)
    p_model = pythae_model(None, nets_like(base, "mlp"), x_train.shape[1:])
    jobs["pythae"] = lambda b: train_pythae(
        "pythae", p_model, x_train, x_test, epochs, seed, b, trainer={}, each_epoch=True
    )
    for batch, lr in grid:
        name = f"vaekit b{batch} lr{lr:g}"
        names.append(name)
        model = vaekit_model(data, seed)

        def job(b, name=name, model=model, batch=batch, lr=lr):
            return train_vaekit(
                name, model, None, data, x_test, epochs, seed, b, batch=batch, lr=lr, each_epoch=True
            )

        jobs[name] = job
    traces = take_turns(jobs, Baton(list(jobs)))
    target = traces["pythae"].elbo[-1]
    out = []
    for name, tr in traces.items():
        reach = first_reach(tr, target)
        log(
            f"  {name:22s} ELBO by epoch: "
            + " ".join(f"{e:.1f}" for e in tr.elbo)
            + f"; wall by epoch: {' '.join(f'{w:.2f}' for w in tr.wall)}"
        )
        out.append({"name": name, "reach": reach, "final": tr.elbo[-1], "wall": sum(tr.wall), "trace": tr})
    return target, out


# ----------------------------------------------------------------------------- main
def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=10, help="epochs per objective (default 10)")
    p.add_argument("--repeats", type=int, default=2, help="repeats per objective, seeds 0.. (default 2)")
    p.add_argument("--ttq-epochs", type=int, default=20, help="epochs of the time-to-quality part")
    p.add_argument("--cases", default=",".join(CASES), help="objectives to run, comma separated")
    p.add_argument("--no-ttq", action="store_true", help="skip the time-to-quality part")
    p.add_argument("--quick", action="store_true", help="2 epochs, 1 repeat: a smoke test")
    p.add_argument("--out", default=None, help="default benchmarks/RESULTS-objectives.md")
    args = p.parse_args(argv)
    if args.quick:
        args.epochs, args.repeats, args.ttq_epochs = 2, 1, 2
    out = args.out or (None if args.quick else str(Path(__file__).with_name("RESULTS-objectives.md")))
    missing = pythae_available()
    if missing:
        print(f"pythae does not import ({missing}); this benchmark compares against it.", file=sys.stderr)
        return 2
    torch.set_num_threads(THREADS)
    import lightning_fabric  # noqa: F401  (one-off imports before anything is timed)
    import pythae.pipelines  # noqa: F401

    lines = Lines()
    log, show, logged, shown = lines.log, lines.show, lines.logged, lines.shown

    info = machine()
    log(f"machine: {info}")
    data = vaekit.datasets.load("mnist5k")
    x_train = torch.as_tensor(data.x_train).flatten(1).contiguous()
    x_test = torch.as_tensor(data.x_test).flatten(1).contiguous()
    started = time.perf_counter()

    results = {}
    for title in args.cases.split(","):
        case = CASES[title]
        for r in range(args.repeats):
            rows = run_case(title, case, data, x_train, x_test, args.epochs, r, log)
            for fw, row in rows.items():
                results.setdefault(title, {}).setdefault(fw, []).append(row)

    ttq = None
    if not args.no_ttq:
        defaults = (TrainConfig.batch_size, TrainConfig.lr)
        grid = [defaults] + [
            (b, lr) for b in (64, 128, 256) for lr in (1e-3, 2e-3, 4e-3) if (b, lr) != defaults
        ]
        log(f"time to quality: pythae's defaults vs vaekit at {grid}, {args.ttq_epochs} epochs")
        ttq = time_to_quality(data, x_train, x_test, args.ttq_epochs, grid, 0, log)
    elapsed = time.perf_counter() - started

    def mean_sd(values):
        return f"{statistics.mean(values):.2f}" + (
            f" ± {statistics.stdev(values):.2f}" if len(values) > 1 else ""
        )

    show(
        f"MLP 784-512-{LATENT}, Bernoulli, Adam {LR:g}, batch {BATCH}, {len(x_train):,} training images "
        f"(mnist5k), {args.epochs} epochs x {args.repeats} repeats per objective, vaekit and pythae taking "
        f"turns epoch by epoch, {THREADS} torch threads."
    )
    show("")
    show(
        "| objective | framework | ex/s median epoch | ex/s whole call "
        f"| vaekit vs pythae (paired whole epochs) | test ELBO (nats) | test IWAE-{IWAE_K} bound (nats) |"
    )
    show("|---|---|---:|---:|---:|---:|---:|")
    for title, by_fw in results.items():
        for fw, rows in by_fw.items():
            paired = f"{statistics.median(r['paired'] for r in rows):.2f}x" if fw == "vaekit" else "1.00x"
            show(
                f"| {title} | {fw} | {statistics.median(r['median'] for r in rows):,.0f} "
                f"| {statistics.median(r['whole'] for r in rows):,.0f} | {paired} "
                f"| {mean_sd([r['elbo'] for r in rows])} | {mean_sd([r['iwae'] for r in rows])} |"
            )
    show("")
    show(
        "ex/s = training examples per second. 'median epoch': the training loop of each epoch (vaekit: "
        "its epoch row's seconds, its per-epoch test pass included; pythae: a callback from the train "
        "step's start to the eval step's start). 'whole call': the examples of all epochs over the "
        "call's own time while it held the turn (setup, per-epoch test passes and bookkeeping "
        "included, the shared measurements taken off). 'paired': the median over epochs 2 and on of "
        "pythae's whole epoch over vaekit's, the two having run next to each other. Test ELBO and "
        f"IWAE-{IWAE_K} bound: one shared function for both (Bernoulli log-likelihood summed over the "
        f"784 pixels, log p(z) - log q(z|x) by Monte Carlo so the VampPrior is measured the same way, "
        f"{ELBO_SAMPLES} draws of z per image, the 1,000 test images), mean ± sd over repeats."
    )
    show("")
    show("Settings, the same in both frameworks:")
    show("")
    for title in results:
        show(f"- {title}: {CASES[title].note}.")
    if ttq is not None:
        target, rows = ttq
        show("")
        show(
            f"### Time to quality: wall time until the test ELBO first reaches pythae's "
            f"{args.ttq_epochs}-epoch test ELBO ({target:.2f} nats), pythae with its defaults "
            f"(Adam 1e-4, batch 64)"
        )
        show("")
        show(
            "| trainer | batch | lr | seconds to reach | vs pythae | test ELBO at the end "
            "| seconds, all epochs |"
        )
        show("|---|---:|---:|---:|---:|---:|---:|")
        p_time = next(r["reach"] for r in rows if r["name"] == "pythae")
        for r in rows:
            batch, lr = ("64", "1e-4") if r["name"] == "pythae" else r["name"].split()[1:]
            reach = "not reached" if r["reach"] is None else f"{r['reach']:.2f}"
            ratio = "" if r["reach"] is None else f"{r['reach'] / p_time:.2f}"
            show(
                f"| {r['name'].split()[0]} | {batch.lstrip('b')} | {lr.lstrip('lr')} | {reach} | {ratio} "
                f"| {r['final']:.2f} | {sum(r['trace'].wall):.1f} |"
            )
    show("")
    show(f"Total {elapsed / 60:.1f} min; load average at the end {os.getloadavg()}.")
    if out:
        text = [
            "# Objectives side by side: vaekit vs pythae",
            "",
            "Produced by `benchmarks/objectives.py` (see README.md there). Compare the ratios measured in "
            "this one process, not the absolute numbers.",
            "",
            f"- machine: {info}",
            f"- command: `python benchmarks/{Path(__file__).name} {' '.join(argv or sys.argv[1:])}`",
            "",
            *shown,
            "",
            "## Log",
            "",
            "```text",
            *logged,
            "```",
            "",
        ]
        Path(out).write_text("\n".join(text))
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
