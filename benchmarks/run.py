"""Side-by-side training benchmark: vaekit vs pythae vs a plain PyTorch loop on mnist5k.

All three (and the plain loop once more with fused Adam) train the same net (same initial weights,
copied from the vaekit model) with Adam 1e-3, batch 100, a Bernoulli likelihood and a 16-d latent,
in ONE process. They take turns epoch by epoch (vaekit epoch 1, pythae epoch 1, plain epoch 1, a
matmul probe, vaekit epoch 2, ...): each runs in its own worker thread and hands a baton on at
the end of every epoch, so only one computes at a time and a shared machine's load, which can
change several-fold within a minute, hits all alike.
Absolute numbers are noisy; the ratios measured in one run are what to read.

    python benchmarks/run.py                 # 20 epochs, 3 repeats, writes benchmarks/RESULTS.md
    python benchmarks/run.py --quick         # 2 epochs, 1 repeat, smoke test (writes nothing)

pythae is optional (`pip install pythae`); without it the pythae rows are skipped.
"""

from __future__ import annotations

import os

# pythae's trainer always adds a tqdm progress bar; tqdm reads TQDM_DISABLE when it is imported,
# so this must come before anything imports tqdm. vaekit runs with progress=False, the same.
os.environ.setdefault("TQDM_DISABLE", "1")

import argparse  # noqa: E402
import datetime  # noqa: E402
import importlib.metadata  # noqa: E402
import inspect  # noqa: E402
import logging  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

import vaekit  # noqa: E402
import vaekit.evaluate  # noqa: E402
import vaekit.train  # noqa: E402

LATENT = 16
BATCH = 100
LR = 1e-3
THREADS = 2
NLL_SAMPLES = 500
NLL_IMAGES = 1000
NLL_CHUNK = 100  # the IS-NLL runs interleaved in chunks of this many images
ELBO_SAMPLES = 10
PROBE_SECONDS = 0.3
FRAMEWORKS = ("vaekit", "pythae", "plain", "plain-fused")


# ----------------------------------------------------------------------------- the nets
def make_nets(arch: str) -> tuple[nn.Module, nn.Linear, nn.Module]:
    """(encoder trunk, mean/log-var head, decoder -> logits), mirroring vaekit's nets for
    `hidden=(512,)` (mlp) and its 28 px conv net, so vaekit's initial weights can be copied in."""
    if arch == "mlp":
        trunk = nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU())
        head = nn.Linear(512, 2 * LATENT)
        dec = nn.Sequential(nn.Linear(LATENT, 512), nn.ReLU(), nn.Linear(512, 784))
        return trunk, head, dec
    trunk = nn.Sequential(
        nn.Conv2d(1, 32, 4, 2, 1),
        nn.ReLU(),
        nn.Conv2d(32, 32, 4, 2, 1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(32 * 7 * 7, 256),
        nn.ReLU(),
    )
    head = nn.Linear(256, 2 * LATENT)
    dec = nn.Sequential(
        nn.Linear(LATENT, 256),
        nn.ReLU(),
        nn.Linear(256, 32 * 7 * 7),
        nn.ReLU(),
        nn.Unflatten(1, (32, 7, 7)),
        nn.ConvTranspose2d(32, 32, 4, 2, 1),
        nn.ReLU(),
        nn.ConvTranspose2d(32, 1, 4, 2, 1),
    )
    return trunk, head, dec


def vaekit_model(data, arch: str, seed: int):
    return vaekit.VAE.for_data(
        data, latent_dim=LATENT, likelihood="bernoulli", hidden=(512,), arch=arch, seed=seed
    )


def nets_like(vae_model, arch: str) -> tuple[nn.Module, nn.Linear, nn.Module]:
    """Fresh benchmark nets holding a copy of the vaekit model's (initial) weights."""
    trunk, head, dec = make_nets(arch)
    src = list(vae_model.encoder.parameters()) + list(vae_model.decoder.parameters())
    dst = list(trunk.parameters()) + list(head.parameters()) + list(dec.parameters())
    if [p.shape for p in src] != [p.shape for p in dst]:
        raise RuntimeError("the benchmark nets no longer mirror vaekit's; update make_nets")
    with torch.no_grad():
        for s, d in zip(src, dst, strict=True):
            d.copy_(s)
    return trunk, head, dec


def linear_weights(module: nn.Module) -> int:
    return sum(m.weight.numel() for m in module.modules() if isinstance(m, nn.Linear))


class Lines:
    """What a benchmark prints, kept for its results file: `log` lines (the run's log) and
    `show` lines (the results), each printed as it comes."""

    def __init__(self):
        self.logged: list[str] = []
        self.shown: list[str] = []

    def log(self, line=""):
        self.logged.append(line)
        print(line, flush=True)

    def show(self, line=""):
        self.shown.append(line)
        print(line, flush=True)


# ----------------------------------------------------------------------------- shared measures
@torch.no_grad()
def test_elbo(encode, logits, x: torch.Tensor, samples: int = ELBO_SAMPLES, seed: int = 0) -> float:
    """The same ELBO for every framework: Bernoulli log-likelihood summed over the 784 pixels
    (BCE with logits), analytic KL(q || N(0, I)) in nats, averaged over `samples` draws of z and
    over the test examples. `encode(x) -> (mean, logvar)`, `logits(z) -> decoder logits`."""
    gen = torch.Generator().manual_seed(seed)
    total = 0.0
    for xb in x.split(1000):
        mean, logvar = encode(xb)
        std = torch.exp(0.5 * logvar)
        kl = 0.5 * (mean.pow(2) + std.pow(2) - 1.0 - logvar).sum(1)
        target = xb.flatten(1)
        log_px = torch.zeros(len(xb))
        for _ in range(samples):
            z = mean + std * torch.randn(mean.shape, generator=gen)
            log_px -= F.binary_cross_entropy_with_logits(logits(z).flatten(1), target, reduction="none").sum(
                1
            )
        total += float((log_px / samples - kl).sum())
    return total / len(x)


def matmul_gflops(layers: list[tuple[int, int]], batch: int = BATCH, seconds: float = 1.0) -> float:
    """Sustained float32 GFLOP/s of the matmuls one training step of these Linear layers runs at
    `batch`: forward x @ W^T, backward grad @ W and grad^T @ x, for each (in, out)."""
    mats = []
    for fan_in, fan_out in layers:
        x, w, g = torch.randn(batch, fan_in), torch.randn(fan_out, fan_in), torch.randn(batch, fan_out)
        mats += [(x, w.t()), (g, w), (g.t(), x)]
    flops = sum(2 * a.shape[0] * a.shape[1] * b.shape[1] for a, b in mats)
    for a, b in mats * 3:  # warm up
        torch.mm(a, b)
    reps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for a, b in mats:
            torch.mm(a, b)
        reps += 1
    return flops * reps / (time.perf_counter() - start) / 1e9


# ----------------------------------------------------------------------------- taking turns
class Baton:
    """Round-robin turns between trainers, all in the main thread: each runs in a greenlet (its
    own Python stack on the same OS thread) and `pass_on(name)` switches to the next one still
    running. One OS thread means one OpenMP thread pool, as in a user's script: trainers in
    worker threads each get a pool of their own, and with more pool threads than cores libgomp
    stops spinning between kernels, which made every step about 1.6x slower here (see README).
    `active[name]` is the time `name` held the turn, i.e. its own wall time, free of the others'.
    """

    def __init__(self, names):
        self.order = list(names)
        self.greenlets: dict = {}
        self.active = dict.fromkeys(self.order, 0.0)
        self.current = None
        self.since = 0.0

    def _switch(self, name):
        """Give the turn to `name` (from the scheduler) and account the time it holds it."""
        self.current, self.since = name, time.perf_counter()
        self.greenlets[name].switch()

    def _back(self, name):
        self.active[name] += time.perf_counter() - self.since

    def pass_on(self, name):
        """Called by `name` at the end of an epoch: let the next trainer run, then continue."""
        self._back(name)
        grad = torch.is_grad_enabled()  # a thread-local: keep each trainer's own
        self.scheduler.switch()
        torch.set_grad_enabled(grad)

    def others_running(self, name) -> bool:
        return any(n != name for n in self.order)


def take_turns(jobs: dict, baton: Baton) -> dict:
    """Run each job(baton) in its own greenlet, in turn, until all have finished.
    Returns {name: result}."""
    import greenlet

    results, errors = {}, {}
    baton.scheduler = greenlet.getcurrent()

    def body(name, job):
        try:
            results[name] = job(baton)
        except BaseException as e:  # noqa: BLE001 - re-raised below
            errors[name] = e
        baton._back(name)
        baton.order.remove(name)

    for name, job in jobs.items():
        baton.greenlets[name] = greenlet.greenlet(lambda n=name, j=job: body(n, j))
    while baton.order:
        for name in list(baton.order):
            if name in baton.order:
                baton._switch(name)
            if errors:
                break
        if errors:
            break
    for name, err in errors.items():
        raise RuntimeError(f"{name} failed: {err!r}") from err
    return results


# ----------------------------------------------------------------------------- the three trainers
@dataclass
class Result:
    epoch_seconds: list[float] = field(default_factory=list)  # the training loop of each epoch
    wall: float = 0.0  # the whole call (per-epoch test evaluation included), see README
    elbo: float = math.nan
    own_elbo: float | None = None  # the framework's own figure, as a cross-check
    model: object = None


class _VaekitHooks:
    """Hand the baton on after each of vaekit.fit's epochs (after the epoch's row is taken: its
    `seconds` include the per-epoch test pass, as the other trainers' epochs include theirs) and
    time its final `evaluate.summarize`."""

    def __init__(self):
        self.baton = None
        self.summarize_seconds = 0.0
        # vaekit.fit with epoch-end callbacks: the baton passes in on_epoch_end, after the epoch's
        # row (its `seconds` included) is written; older versions: patch the per-epoch test pass
        self.callbacks = "callbacks" in inspect.signature(vaekit.train.fit).parameters
        self.epoch_hook = not self.callbacks and hasattr(vaekit.train, "_test_metrics")
        self._test_metrics = getattr(vaekit.train, "_test_metrics", None)
        self._summarize = vaekit.evaluate.summarize

    def on_epoch_end(self, run, row):
        self.baton.pass_on("vaekit")

    def test_metrics(self, *args, **kwargs):
        out = self._test_metrics(*args, **kwargs)
        self.baton.pass_on("vaekit")
        return out

    def summarize(self, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            return self._summarize(*args, **kwargs)
        finally:
            self.summarize_seconds += time.perf_counter() - t0

    def __enter__(self):
        if self.epoch_hook:
            vaekit.train._test_metrics = self.test_metrics
        vaekit.evaluate.summarize = self.summarize
        return self

    def __exit__(self, *exc):
        if self.epoch_hook:
            vaekit.train._test_metrics = self._test_metrics
        vaekit.evaluate.summarize = self._summarize


def train_vaekit(model, data, epochs: int, seed: int, baton: Baton) -> Result:
    with _VaekitHooks() as hooks:
        hooks.baton = baton
        run = vaekit.fit(
            model,
            data,
            epochs=epochs,
            batch_size=BATCH,
            lr=LR,
            seed=seed,
            out=None,
            progress=False,
            nll_samples=0,
            figures=False,
            **({"callbacks": [hooks]} if hooks.callbacks else {}),
        )
    model.eval()
    res = Result(epoch_seconds=[row["seconds"] for row in run.history], model=model)
    res.own_elbo = run.history[-1].get("test_elbo")
    # baton.active is only complete after leave(); keep what to take off
    res.wall = -hooks.summarize_seconds
    return res


def vaekit_fns(model):
    return (lambda x: model.encoder(x, None).chunk(2, 1)), (lambda z: model.decoder(z, None))


class PlainVAE(nn.Module):
    def __init__(self, trunk, head, dec):
        super().__init__()
        self.trunk, self.head, self.dec = trunk, head, dec

    def encode(self, x):
        return self.head(self.trunk(x)).chunk(2, 1)

    def logits(self, z):
        return self.dec(z)

    def loss(self, x):
        """Mean over the batch of -ELBO (one z sample), Bernoulli likelihood on the logits."""
        mean, logvar = self.encode(x)
        z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
        rec = F.binary_cross_entropy_with_logits(self.dec(z), x, reduction="none").flatten(1).sum(1)
        kl = 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).sum(1)
        return (rec + kl).mean()


def train_plain(nets, x_train, x_test, epochs: int, seed: int, baton: Baton, fused=False) -> Result:
    """What a user would write: in-memory tensors, a random permutation per epoch, Adam (torch's
    default implementation, or with `fused=True` its one-kernel CPU version)."""
    torch.manual_seed(seed)
    model = PlainVAE(*nets)
    opt = (
        torch.optim.Adam(model.parameters(), lr=LR, fused=True)
        if fused
        else torch.optim.Adam(model.parameters(), lr=LR)
    )
    result = Result()
    n = len(x_train)
    for _ in range(epochs):
        model.train()
        t0 = time.perf_counter()
        total = torch.zeros(())
        for idx in torch.randperm(n).split(BATCH):
            loss = model.loss(x_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.detach()
        float(total)
        result.epoch_seconds.append(time.perf_counter() - t0)
        model.eval()
        with torch.no_grad():  # a per-epoch test loss, like the two trainers
            float(model.loss(x_test))
        baton.pass_on("plain-fused" if fused else "plain")
    model.eval()
    result.model = model
    return result


def pythae_available() -> str | None:
    """None if pythae imports, else the reason it does not."""
    try:
        import pythae  # noqa: F401
        from pythae.models import VAE  # noqa: F401
    except Exception as e:  # noqa: BLE001 - report whatever stops the import
        return f"{type(e).__name__}: {e}"
    return None


def _pythae_classes():
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder
    from pythae.trainers.training_callbacks import TrainingCallback

    class Encoder(BaseEncoder):
        """The trunk, then separate mean and log-variance heads (split from the shared head)."""

        def __init__(self, trunk, head):
            super().__init__()
            self.trunk = trunk
            self.mean = nn.Linear(head.in_features, LATENT)
            self.log_var = nn.Linear(head.in_features, LATENT)
            with torch.no_grad():
                self.mean.weight.copy_(head.weight[:LATENT])
                self.mean.bias.copy_(head.bias[:LATENT])
                self.log_var.weight.copy_(head.weight[LATENT:])
                self.log_var.bias.copy_(head.bias[LATENT:])

        def forward(self, x):
            h = self.trunk(x)
            return ModelOutput(embedding=self.mean(h), log_covariance=self.log_var(h))

    class Decoder(BaseDecoder):
        """pythae's "bce" loss takes probabilities, so the output goes through a sigmoid."""

        def __init__(self, net):
            super().__init__()
            self.net = net

        def logits(self, z):
            return self.net(z)

        def forward(self, z):
            return ModelOutput(reconstruction=torch.sigmoid(self.net(z)))

    class EpochTimer(TrainingCallback):
        """Times the training loop of each epoch (from the train step's start to the eval's) and
        hands the baton on at each epoch's end."""

        def __init__(self, baton):
            self.seconds, self.t0, self.baton = [], None, baton

        def on_train_step_begin(self, training_config, **kwargs):
            self.t0 = time.perf_counter()

        def on_eval_step_begin(self, training_config, **kwargs):
            self.seconds.append(time.perf_counter() - self.t0)

        def on_epoch_end(self, training_config, **kwargs):
            self.baton.pass_on("pythae")

    return Encoder, Decoder, EpochTimer


def pythae_model(nets, input_dim):
    from pythae.models import VAE, VAEConfig

    Encoder, Decoder, _ = _pythae_classes()
    trunk, head, dec = nets
    config = VAEConfig(input_dim=tuple(input_dim), latent_dim=LATENT, reconstruction_loss="bce")
    return VAE(config, encoder=Encoder(trunk, head), decoder=Decoder(dec))


def train_pythae(model, x_train, x_test, epochs: int, seed: int, baton: Baton) -> Result:
    from pythae.pipelines import TrainingPipeline
    from pythae.trainers import BaseTrainerConfig

    for name in list(logging.root.manager.loggerDict):
        if name.startswith("pythae"):
            logging.getLogger(name).setLevel(logging.WARNING)
    timer = _pythae_classes()[2](baton)
    with tempfile.TemporaryDirectory(prefix="pythae-bench-") as out:
        training = BaseTrainerConfig(
            output_dir=out,
            num_epochs=epochs,
            learning_rate=LR,
            optimizer_cls="Adam",
            per_device_train_batch_size=BATCH,
            per_device_eval_batch_size=1000,
            steps_saving=None,
            steps_predict=None,
            no_cuda=True,
            seed=seed,
        )
        pipeline = TrainingPipeline(model=model, training_config=training)
        pipeline(train_data=x_train, eval_data=x_test, callbacks=[timer])
    # the trainer also keeps a deepcopy of the best model on the eval set; we evaluate the last
    # one, like the other two
    model.eval()
    return Result(epoch_seconds=timer.seconds, model=model)


def pythae_fns(model):
    def encode(x):
        out = model.encoder(x)
        return out.embedding, out.log_covariance

    return encode, model.decoder.logits


# ----------------------------------------------------------------------------- IS-NLL timing
def nll_interleaved(models: dict, x_img, x_flat, with_grad: bool, log) -> dict:
    """{label: (seconds, -log p(x))} for K = NLL_SAMPLES on NLL_IMAGES test images, the
    frameworks alternating chunk by chunk of NLL_CHUNK images so they share the machine's load."""
    calls = {}
    if "vaekit" in models:
        m = models["vaekit"]
        calls["vaekit"] = lambda s: vaekit.evaluate.nll(m, x_img[s], samples=NLL_SAMPLES).nll
    if "pythae" in models:
        p = models["pythae"]

        def pythae_nll(s, grad=False):
            # batch_size=K: one batch of K importance samples per image (pythae loops over images)
            with torch.enable_grad() if grad else torch.no_grad():
                return -float(p.get_nll(x_flat[s], n_samples=NLL_SAMPLES, batch_size=NLL_SAMPLES))

        calls["pythae"] = pythae_nll
        if with_grad:
            calls["pythae, autograd on"] = lambda s: pythae_nll(s, grad=True)
    out = {k: [0.0, 0.0] for k in calls}
    for start in range(0, NLL_IMAGES, NLL_CHUNK):
        s = slice(start, start + NLL_CHUNK)
        for label, call in calls.items():
            t0 = time.perf_counter()
            value = call(s)
            out[label][0] += time.perf_counter() - t0
            out[label][1] += value * NLL_CHUNK / NLL_IMAGES
    for label, (secs, value) in out.items():
        log(f"  {label:20s} {secs:7.2f} s, -log p(x) = {value:.2f}")
    return {k: tuple(v) for k, v in out.items()}


# ----------------------------------------------------------------------------- the run
def run_repeat(arch, data, tensors, epochs, seed, frameworks, probe_layers, log):
    """One repeat: the frameworks (and, for the MLP, a matmul probe) take turns epoch by epoch."""
    x_img, x_flat, xt_img, xt_flat = tensors
    xs, xt = (x_flat, xt_flat) if arch == "mlp" else (x_img, xt_img)
    # every model starts from this repeat's vaekit initial weights
    models = {"vaekit": vaekit_model(data, arch, seed)}
    if "pythae" in frameworks:
        models["pythae"] = pythae_model(nets_like(models["vaekit"], arch), xs.shape[1:])
    nets_plain = nets_like(models["vaekit"], arch)
    nets_fused = nets_like(models["vaekit"], arch)
    jobs = {
        "vaekit": lambda b: train_vaekit(models["vaekit"], data, epochs, seed, b),
        "pythae": lambda b: train_pythae(models["pythae"], xs, xt, epochs, seed, b),
        "plain": lambda b: train_plain(nets_plain, xs, xt, epochs, seed, b),
        "plain-fused": lambda b: train_plain(nets_fused, xs, xt, epochs, seed, b, fused=True),
    }
    jobs = {k: v for k, v in jobs.items() if k in frameworks}
    probes: list[float] = []
    if probe_layers:

        def probe(b):
            while b.others_running("probe"):
                probes.append(matmul_gflops(probe_layers, seconds=PROBE_SECONDS))
                b.pass_on("probe")

        jobs["probe"] = probe
    baton = Baton(jobs)
    results = take_turns(jobs, baton)
    results.pop("probe", None)
    for fw, res in results.items():
        res.wall += baton.active[fw]
        if fw == "vaekit":
            res.elbo = test_elbo(*vaekit_fns(res.model), xt_img)
        elif fw == "pythae":
            res.elbo = test_elbo(*pythae_fns(res.model), xt)
        else:
            res.elbo = test_elbo(res.model.encode, res.model.logits, xt)
        n = len(x_img) * epochs
        own = f" (vaekit's own 1-sample figure {res.own_elbo:.2f})" if res.own_elbo is not None else ""
        log(
            f"  [{arch} seed {seed}] {fw:11s} train loop {sum(res.epoch_seconds):7.2f} s "
            f"({n / sum(res.epoch_seconds):7.0f} ex/s), whole call {res.wall:7.2f} s, "
            f"test ELBO {res.elbo:8.2f}{own}"
        )
        log("      epoch seconds: " + " ".join(f"{t:.2f}" for t in res.epoch_seconds))
    if "vaekit" in results and not (_VaekitHooks().epoch_hook or _VaekitHooks().callbacks):
        log("  note: vaekit.train has no _test_metrics to hook; vaekit ran all its epochs in one turn")
    if probes:
        log(f"  matmul probe: median {statistics.median(probes):.1f} GFLOP/s over {len(probes)} turns")
    return results, probes


def summarize_case(results, n_train, epochs):
    rows = {}
    ref = results.get("pythae")
    for fw, runs in results.items():
        per_epoch = [n_train / s for res in runs for s in res.epoch_seconds]
        loop = sum(sum(res.epoch_seconds) for res in runs)
        wall = sum(res.wall for res in runs)
        elbos = [res.elbo for res in runs]
        paired = None
        if ref:
            # epoch e of this framework ran right next to epoch e of pythae: the ratio of the two is
            # the least disturbed by the machine's changing load
            paired = statistics.median(
                p / s
                for res, pres in zip(runs, ref, strict=True)
                for s, p in zip(res.epoch_seconds, pres.epoch_seconds, strict=True)
            )
        rows[fw] = {
            "median": statistics.median(per_epoch),
            "best": max(per_epoch),
            "loop": n_train * epochs * len(runs) / loop,
            "overall": n_train * epochs * len(runs) / wall,
            "paired": paired,
            "elbo": statistics.mean(elbos),
            "elbo_sd": statistics.stdev(elbos) if len(elbos) > 1 else 0.0,
        }
    return rows


def format_case(title, rows, limit=None):
    ref = rows.get("pythae")
    lines = [
        title,
        "",
        "| framework | ex/s median epoch | best epoch | all epochs | whole call "
        "| vs pythae: paired epochs / whole call | test ELBO (nats) | of matmul limit |",
        "|---|---:|---:|---:|---:|---|---:|---:|",
    ]
    for fw, row in rows.items():
        vs = f"{row['paired']:.2f}x / {row['overall'] / ref['overall']:.2f}x" if ref else "-"
        frac = f"{row['median'] / limit:.0%}" if limit else "-"
        elbo = f"{row['elbo']:.2f} ± {row['elbo_sd']:.2f}"
        lines.append(
            f"| {fw} | {row['median']:,.0f} | {row['best']:,.0f} | {row['loop']:,.0f} "
            f"| {row['overall']:,.0f} | {vs} | {elbo} | {frac} |"
        )
    return lines


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        pythae_version = importlib.metadata.version("pythae")
    except importlib.metadata.PackageNotFoundError:
        pythae_version = "not installed"
    try:
        load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        load = "?"
    return {
        "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "vaekit": vaekit.__version__,
        "pythae": pythae_version,
        "load": load,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=20, help="epochs of the MLP case (default 20)")
    p.add_argument("--conv-epochs", type=int, default=3, help="epochs of the conv case (default 3)")
    p.add_argument("--repeats", type=int, default=3, help="repeats, each with its own seed (default 3)")
    p.add_argument("--quick", action="store_true", help="2 epochs, 1 repeat, 1 conv epoch: a smoke test")
    p.add_argument("--no-conv", action="store_true", help="skip the conv case")
    p.add_argument("--no-nll", action="store_true", help="skip the IS-NLL timing")
    p.add_argument("--no-pythae", action="store_true", help="run vaekit and the plain loop only")
    p.add_argument(
        "--out",
        default=None,
        help="write the results here (default benchmarks/RESULTS.md; --quick writes only with --out)",
    )
    args = p.parse_args(argv)
    if args.quick:
        args.epochs, args.repeats, args.conv_epochs = 2, 1, 1
    out = args.out or (None if args.quick else str(Path(__file__).with_name("RESULTS.md")))

    torch.set_num_threads(THREADS)
    lines = Lines()
    log, show, printed, logged = lines.log, lines.show, lines.shown, lines.logged

    info = machine()
    missing = "--no-pythae given" if args.no_pythae else pythae_available()
    frameworks = tuple(fw for fw in FRAMEWORKS if fw != "pythae" or missing is None)
    log(f"machine: {info}")
    if missing:
        log(f"pythae skipped: {missing}")

    data = vaekit.datasets.load("mnist5k")
    x_img = torch.as_tensor(data.x_train)
    xt_img = torch.as_tensor(data.x_test)
    x_flat = x_img.reshape(len(x_img), -1).contiguous()
    xt_flat = xt_img.reshape(len(xt_img), -1).contiguous()
    tensors = (x_img, x_flat, xt_img, xt_flat)
    n_train = len(x_img)

    probe = vaekit_model(data, "mlp", 0)
    layers = [(m.in_features, m.out_features) for m in probe.modules() if isinstance(m, nn.Linear)]
    weights = linear_weights(probe)
    flops_per_example = 6 * weights

    # warm-up: the first vaekit.fit imports Lightning Fabric (about 2 s); pay such one-off
    # imports before anything is timed
    import lightning_fabric  # noqa: F401

    if "pythae" in frameworks:
        import pythae.pipelines  # noqa: F401
        import pythae.trainers  # noqa: F401

    t_start = time.perf_counter()
    log(f"MLP 784-512-{LATENT}: {args.epochs} epochs x {args.repeats} repeats, {frameworks} taking turns")
    mlp = {fw: [] for fw in frameworks}
    gflops: list[float] = []
    nll = {}
    for r in range(args.repeats):
        results, probes = run_repeat("mlp", data, tensors, args.epochs, r, frameworks, layers, log)
        gflops += probes
        for fw, res in results.items():
            mlp[fw].append(res)
        if not args.no_nll:
            log(f"IS-NLL, K={NLL_SAMPLES} on {NLL_IMAGES} test images, seed {r} models")
            models = {fw: res.model for fw, res in results.items() if fw != "plain"}
            timed = nll_interleaved(models, xt_img, xt_flat, r == 0, log)
            for label, value in timed.items():
                nll.setdefault(label, []).append(value)

    conv = None
    if not args.no_conv:
        log(f"conv 28 px: {args.conv_epochs} epochs x {args.repeats} repeats")
        conv = {fw: [] for fw in frameworks}
        for r in range(args.repeats):
            results, _ = run_repeat("conv", data, tensors, args.conv_epochs, r, frameworks, None, log)
            for fw, res in results.items():
                conv[fw].append(res)
    elapsed = time.perf_counter() - t_start

    # ------------------------------------------------------------------ the table
    gf = statistics.median(gflops)
    limit = gf * 1e9 / flops_per_example
    show(
        f"MLP 784-512-{LATENT} (hidden 512), Bernoulli, Adam 1e-3, batch {BATCH}, {n_train} training "
        f"images, {args.epochs} epochs x {args.repeats} repeats taking turns epoch by epoch, "
        f"{THREADS} torch threads"
    )
    show("")
    for line in format_case("### MLP", summarize_case(mlp, n_train, args.epochs), limit):
        show(line)
    show("")
    show(
        f"matmul limit: {gf:.1f} GFLOP/s sustained float32 on this net's matmuls at batch {BATCH} "
        f"(median of {len(gflops)} {PROBE_SECONDS} s probes taking turns with the training epochs; "
        f"range {min(gflops):.1f}-{max(gflops):.1f}); {weights:,} Linear weights x 6 = "
        f"{flops_per_example / 1e6:.2f} MFLOP per training example -> limit {limit:,.0f} examples/s."
    )
    if nll:
        show("")
        show(
            f"### IS-NLL, K = {NLL_SAMPLES} importance samples on {NLL_IMAGES} test images "
            f"(chunks of {NLL_CHUNK} images, the frameworks alternating)"
        )
        show("")
        show("| call | seconds (median over repeats) | -log p(x) nats (mean) |")
        show("|---|---:|---:|")
        labels = {
            "vaekit": "vaekit `evaluate.nll(model, x, samples=500)`",
            "pythae": "pythae `model.get_nll(x, n_samples=500, batch_size=500)` under no_grad",
            "pythae, autograd on": "pythae `model.get_nll(...)` called plainly (autograd on; 1st repeat)",
        }
        for label, vals in nll.items():
            show(
                f"| {labels[label]} | {statistics.median(v[0] for v in vals):.2f} "
                f"| {statistics.mean(v[1] for v in vals):.2f} |"
            )
        if "pythae" in nll and "vaekit" in nll:
            ratio = statistics.median(v[0] for v in nll["pythae"]) / statistics.median(
                v[0] for v in nll["vaekit"]
            )
            show("")
            show(f"vaekit's IS-NLL takes 1/{ratio:.1f} of pythae's time (pythae under no_grad).")
    if conv is not None:
        show("")
        title = f'### conv (vaekit `arch="conv"`, 28 px), {args.conv_epochs} epochs x {args.repeats} repeats'
        for line in format_case(title, summarize_case(conv, n_train, args.conv_epochs)):
            show(line)
    show("")
    show(
        "ex/s = training examples per second. 'median epoch' / 'best epoch': over every epoch of "
        "every repeat, the training loop alone (vaekit: run.history seconds; pythae: a callback "
        "from train-step start to eval start; plain: the loop). 'all epochs': the training loops "
        "pooled. 'whole call': each fit / pipeline call's own time while it held the turn, with its "
        "per-epoch test evaluation (vaekit minus its final summarize; pythae with its data checks, "
        "sanity check, model deep copies and final save). 'paired epochs': median over epochs of "
        "pythae's epoch time / this framework's epoch time for the same epoch, which ran next to it. "
        "Test ELBO: one shared function for all three (Bernoulli log-lik summed over 784 pixels, "
        f"analytic KL, {ELBO_SAMPLES} z samples, 1,000 test images), mean ± sd over repeats. "
        "'of matmul limit' = median epoch ex/s / the limit above."
    )
    log("")
    log(f"total benchmark time {elapsed / 60:.1f} min")

    if out:
        cmd = "python benchmarks/run.py " + " ".join(argv if argv is not None else sys.argv[1:])
        header = [
            "# Benchmark results",
            "",
            "Produced by `benchmarks/run.py` (see README.md there). Timings come from a shared, "
            f"noisy {info['nproc']}-core machine with other jobs running: read the ratios measured "
            "in this one process, not the absolute numbers.",
            "",
            f"- date: {info['date']}",
            f"- command: `{cmd.strip()}` ({elapsed / 60:.1f} min)",
            f"- machine: {info['nproc']} cores (nproc), {info['cpu']}; load average (1, 5, 15 min) "
            f"at start {info['load']}, at end {machine()['load']}",
            f"- python {info['python']}, torch {info['torch']} ({THREADS} threads), "
            f"vaekit {info['vaekit']}, pythae {info['pythae']}",
            "- pythae's progress bars off (`TQDM_DISABLE=1`), no checkpoints; every trainer in the "
            "main thread (greenlets taking turns)",
        ]
        if missing:
            header.append(f"- pythae skipped: {missing}")
        raw = ["", "## Log of the run", "", "```text", *logged, "```", ""]
        Path(out).write_text("\n".join(header + ["", *printed, *raw]))
        log(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
