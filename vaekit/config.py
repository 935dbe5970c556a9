"""Typed settings, one dataclass per stage: which data (`DataConfig`), which model
(`ModelConfig`) and how to train it (`TrainConfig`). Each field is written once, here, with its
type, default and meaning; the command line's options and the config-file keys are generated from
these fields (`options()`), `vaekit.train.fit` takes a `TrainConfig`, and config.yaml stores them.

An objective's own settings (e.g. `tc_weight`) are declared here too, as data
(`OBJECTIVE_SETTINGS`, read by each objective class as its `SETTINGS`), so the command line and
config files know them without importing the objectives (and torch); they join the options the
same way (`objective_options()`).
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from typing import Any


def setting(default, meaning: str, *, kind: type | None = None, nargs: int = 1, flag: bool = False):
    """A field with its meaning (the `--help` text) and, where the annotation is not a plain type,
    its kind (`int`, `float`, `str`, `bool`); `nargs=2` for a pair; `flag` for an on/off switch."""
    return field(default=default, metadata={"help": meaning, "kind": kind, "nargs": nargs, "flag": flag})


@dataclass
class DataConfig:
    """Where the examples come from and how they are read and split."""

    data: str = setting(
        "mnist5k", "Built-in data set name, a file (`vaekit datasets` lists the formats), or an image folder."
    )
    test_size: float = setting(0.2, "Test split: a fraction, or a count of examples.", kind=float)
    test_data: str | None = setting(
        None, "A separate file whose examples form the test split (no random split).", kind=str
    )
    scaling: str = setting("auto", "auto, unit (images to [0, 1]), standard (tables) or none.")
    label_column: str | None = setting(None, "Tables: the column that holds labels.", kind=str)
    columns: str | None = setting(
        None, "Tables: the feature columns to use, comma separated [default: all].", kind=str
    )
    drop_columns: str | None = setting(
        None, "Tables: feature columns to leave out, comma separated.", kind=str
    )
    alpha: str = setting(
        "composite", "Images with transparency: composite onto --background, or keep alpha as a channel."
    )
    background: float = setting(
        1.0, "Grey level (0 = black, 1 = white) that transparent pixels show.", kind=float
    )
    discrete_columns: str | None = setting(
        None,
        "Columns that hold a few whole values (e.g. a charge), comma separated: a table file models each "
        "as categorical (unless its type is already discrete); for arrays, the figures show them as bars.",
        kind=str,
    )
    column_types: str | None = setting(
        None,
        "Tables: each column's type, NAME=TYPE comma separated (real, positive, bounded, integer, binary, "
        "categorical, count) [default: chosen from the values].",
        kind=str,
    )
    binarize: str = setting(
        "none",
        "Images in [0, 1]: dynamic draws each training pixel as a Bernoulli of its grey level afresh every "
        "epoch, and the test split once (seeded): the binarised-MNIST protocol of published likelihoods.",
    )
    missing: str = setting(
        "refuse",
        "Tables with missing cells: refuse, drop-rows (leave those rows out) or model (train on the "
        "observed cells).",
    )
    id_column: str | None = setting(
        None, "Tables: the column of row identifiers (carried into outputs, not modelled).", kind=str
    )
    sep: str | None = setting(None, "Text tables: the field separator [default: detected].", kind=str)
    decimal: str | None = setting(
        None, "Text tables: the decimal mark, . or , [default: detected].", kind=str
    )
    key: str | None = setting(None, "HDF5: the dataset or group that holds the table.", kind=str)
    x_key: str | None = setting(None, ".npz: the array of observations [default: x].", kind=str)
    y_key: str | None = setting(None, ".npz: the array of labels [default: y].", kind=str)
    factors_key: str | None = setting(
        None, ".npz: the array of ground-truth factors [default: factors].", kind=str
    )


@dataclass
class ModelConfig:
    """The model: latent size, likelihood, nets, prior and conditions."""

    latent_dim: int = setting(2, "Number of latent dimensions.")
    beta: float = setting(1.0, "KL weight: 0 = pure reconstruction, 1 = the ELBO, >1 more regularisation.")
    beta_range: tuple[float, float] | None = setting(
        None, "Train one beta-conditioned model over [LOW, HIGH].", kind=float, nargs=2
    )
    likelihood: str = setting(
        "auto",
        "gaussian, gaussian-learned, bernoulli, continuous-bernoulli, laplace "
        "(auto: bernoulli for [0, 1] data, else gaussian).",
    )
    sigma: float = setting(1.0, "Fixed sigma of the gaussian likelihood (sigma^2 x c acts like beta x c).")
    per_dim_sigma: bool = setting(False, "gaussian-learned: one sigma per data dimension.", flag=True)
    column_spread: str = setting(
        "row",
        "Tables: each column's spread (sigma, a count's dispersion) from the decoder per row, or one "
        "learned value per column.",
    )
    model: str = setting("vae", "vae, or ae for a deterministic autoencoder (no KL).")
    prior: str = setting(
        "normal", "p(z): normal (N(0, I)), mog (a learned mixture of Gaussians) or vamp (VampPrior)."
    )
    prior_components: int | None = setting(
        None, "Mixture components K of the mog or vamp prior [mog 10, vamp 50 pseudo-inputs].", kind=int
    )
    prior_weights: str | None = setting(None, "mog: learned or uniform mixture weights [learned].", kind=str)
    condition: str = setting(
        "none", "none, or labels: a label-conditional VAE (the data's labels go into encoder and decoder)."
    )
    arch: str = setting("auto", "mlp, conv (images of 16 px and more) or auto (conv from 32 px).")
    hidden: str = setting("512,256", "MLP hidden layer sizes, comma separated.")
    activation: str = setting("relu", "relu, elu, gelu, tanh or silu.")


@dataclass
class TrainConfig:
    """How the model is trained and measured at the end."""

    objective: str = setting(
        "auto",
        "What training minimises: beta-elbo, beta-elbo-conditioned, reconstruction, beta-tcvae, factorvae, "
        "dip-vae, capacity, iwae, free-bits "
        "(auto: reconstruction for --model ae, beta-elbo-conditioned with --beta-range, else beta-elbo).",
    )
    epochs: int = setting(30, "Training epochs.")
    batch_size: int = setting(64, "Examples per step.")
    lr: float = setting(1e-3, "Adam learning rate (the starting one with --lr-schedule cosine).")
    lr_schedule: str = setting(
        "auto",
        "constant, or cosine: anneal the learning rate from --lr to --lr-min over the epochs (auto: cosine "
        "for table files, constant otherwise).",
    )
    lr_min: float = setting(0.0, "The learning rate at the end of a cosine schedule.")
    seed: int = setting(0, "Seed for weights, batch order and noise.")
    clip_grad: float | None = setting(None, "Clip the gradient norm to this value.", kind=float)
    skip_nonfinite: bool = setting(
        False,
        "Skip a batch whose loss or gradient is NaN or Inf, with a warning (one host sync per step).",
        flag=True,
    )
    nll_samples: int = setting(100, "Importance samples K for the final NLL estimate.")
    device: str = setting("auto", "auto, cpu or cuda.")
    devices: int = setting(1, "Number of processes/devices (with --strategy ddp).")
    num_nodes: int = setting(1, "Number of machines (with --strategy ddp, e.g. under SLURM).")
    strategy: str = setting("auto", "Fabric strategy: auto or ddp.")
    precision: str = setting("32-true", "Fabric precision: 32-true, bf16-mixed, 16-mixed.")
    warmup_epochs: float = setting(
        0.0, "Linear KL warm-up over this many epochs (objectives with a KL schedule: --kl-schedule linear)."
    )


SECTIONS = (DataConfig, ModelConfig, TrainConfig)

# Resuming (`vaekit.train.fit(resume=True)`, `vaekit train --resume`): which settings may change,
# and what a change means.
# The loop's settings (SEGMENT_KEYS) may change at an epoch boundary: each change starts a new
# segment, recorded in config.yaml's train.segments (from_epoch and the settings that held from
# there) and in each metrics.jsonl row ("segment"). A segment's learning-rate schedule runs over
# the segment alone. --epochs may grow: without new loop settings, the run's plan for its first
# epochs stands and the added epochs are a segment like the last (a constant rate simply goes
# on; a cosine schedule runs again over the added epochs, a warm restart, said in a note). How
# the run is measured or where it runs (nll_samples, device, devices, num_nodes, strategy,
# precision) may change freely. What defines the model, its data or its objective (objective,
# seed, warmup_epochs; the model and data options) may not: a new run is a new folder.
SEGMENT_KEYS = ("batch_size", "lr", "lr_schedule", "lr_min", "clip_grad", "skip_nonfinite")
FREE_KEYS = ("epochs", "nll_samples", "device", "devices", "num_nodes", "strategy", "precision")
RESUMABLE = SEGMENT_KEYS + FREE_KEYS


@dataclass(frozen=True)
class Option:
    """One command-line option / config-file key, generated from a field."""

    name: str  # config key; the flag is --name-with-dashes
    type: Any
    default: Any
    help: str
    nargs: int = 1
    is_flag: bool = False


def options() -> list[Option]:
    """Every field of every section as an Option, in section order."""
    out = []
    for section in SECTIONS:
        for f in fields(section):
            meta = f.metadata
            kind = meta.get("kind") or (f.type if isinstance(f.type, type) else _annotation_kind(f.type))
            default = None if f.default is MISSING else f.default
            out.append(
                Option(f.name, kind, default, meta["help"], meta.get("nargs", 1), meta.get("flag", False))
            )
    return out


def _annotation_kind(annotation) -> type:
    # `from __future__ import annotations` leaves annotations as text: read the leading type name
    text = str(annotation).split("|")[0].split("[")[0].strip()
    return {"int": int, "float": float, "str": str, "bool": bool}.get(text, str)


def section(cls, settings: dict):
    """The `cls` (DataConfig, ModelConfig or TrainConfig) holding the matching keys of a flat
    settings dict (keys it does not know are left for the other sections)."""
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in settings.items() if k in names})


# ----------------------------------------------------------------------------- objectives' settings
# name -> (type, default, meaning) of each setting an objective takes; `vaekit.objectives` reads
# its classes' SETTINGS from here (a test checks that every registered objective has its row).

KL_SCHEDULE_SETTINGS: dict[str, tuple[type, object, str]] = {
    "kl_schedule": (
        str,
        None,
        "KL weight schedule: constant, linear (warm-up over --warmup-epochs) or cyclical "
        "(Fu et al., 2019) [default: linear with --warmup-epochs, else constant]",
    ),
    "warmup_epochs": (float, 0.0, "linear KL warm-up over this many epochs"),
    "cycles": (int, 4, "cyclical KL schedule: number of cycles M (Fu et al., 2019)"),
    "cycle_ratio": (
        float,
        0.5,
        "cyclical KL schedule: fraction R of each cycle over which the weight rises from 0 to 1",
    ),
}

OBJECTIVE_SETTINGS: dict[str, dict[str, tuple[type, object, str]]] = {
    "beta-elbo": KL_SCHEDULE_SETTINGS,
    "beta-elbo-conditioned": KL_SCHEDULE_SETTINGS,
    "reconstruction": {},
    "beta-tcvae": {
        **KL_SCHEDULE_SETTINGS,
        "mi_weight": (
            float,
            1.0,
            "alpha, the weight of the index-code mutual information (Chen et al., 2018)",
        ),
        "tc_weight": (float, 6.0, "beta, the weight of the total correlation"),
        "dimwise_weight": (float, 1.0, "gamma, the weight of the dimension-wise KL"),
        "estimator": (str, "mss", "minibatch estimator of q(z): mss (stratified) or mws (weighted)"),
        "dataset_size": (int, 0, "data set size N in the estimator (0: the training split's size)"),
    },
    "factorvae": {
        **KL_SCHEDULE_SETTINGS,
        "gamma": (float, 40.0, "the weight of the total correlation (Kim & Mnih, 2018)"),
        "disc_units": (int, 1000, "units in each hidden layer of the discriminator"),
        "disc_layers": (int, 6, "hidden layers of the discriminator"),
        "disc_lr": (float, 1e-4, "Adam learning rate of the discriminator (betas 0.5, 0.9)"),
    },
    "dip-vae": {
        **KL_SCHEDULE_SETTINGS,
        "dip_type": (
            str,
            "i",
            "DIP-VAE type: i (covariance of the means) or ii (of the aggregate posterior)",
        ),
        "lambda_od": (float, 10.0, "weight of the off-diagonal covariance penalty (Kumar et al., 2018)"),
        "lambda_d": (
            float,
            None,
            "weight of the diagonal covariance penalty "
            "[default: 10 x lambda_od for type i, lambda_od for ii]",
        ),
    },
    "capacity": {
        "capacity_weight": (float, 1000.0, "gamma, the weight of |KL - C| (Burgess et al., 2018)"),
        "capacity_max": (float, 25.0, "C_max, the capacity reached at the end of the ramp, nats"),
        "capacity_epochs": (
            float,
            None,
            "epochs over which C rises linearly from 0 to C_max [default: all training epochs]",
        ),
        "capacity_over": (str, "batch", "where |KL - C| is taken: batch (the batch-mean KL) or example"),
    },
    "iwae": {"iwae_samples": (int, 5, "importance samples K per example (Burda et al., 2016; 1 = the ELBO)")},
    "free-bits": {
        **KL_SCHEDULE_SETTINGS,
        "free_bits": (float, 0.5, "lambda, the KL in nats per latent dimension below which it is free"),
    },
}


def objective_options(taken=()) -> list[Option]:
    """One option per objective setting (`OBJECTIVE_SETTINGS`) whose name is not in `taken` (the
    typed configs' own), its help naming the objectives that have it."""
    declared: dict[str, tuple] = {}  # setting -> (kind, default, meaning, the objectives that have it)
    for name, settings in OBJECTIVE_SETTINGS.items():
        for key, (kind, default, meaning) in settings.items():
            if key not in taken:
                declared.setdefault(key, (kind, default, meaning, []))[3].append(name)
    extra = []
    for key, (kind, default, meaning, owners) in declared.items():
        where = owners[0] if len(owners) == 1 else f"{len(owners)} objectives ({', '.join(owners)})"
        extra.append(Option(key, kind, default, f"{where}: {meaning}."))
    return extra


def training_options() -> list[Option]:
    """Every training setting as an Option: the typed configs' fields, then the objectives' own
    settings (what `vaekit train` takes and config files hold)."""
    typed = options()
    return typed + objective_options({o.name for o in typed})


def defaults() -> dict:
    """name -> default of every training setting (`training_options`): what a run uses for a
    setting nobody gave."""
    return {o.name: o.default for o in training_options()}


__all__ = [
    "DataConfig",
    "ModelConfig",
    "TrainConfig",
    "Option",
    "options",
    "section",
    "KL_SCHEDULE_SETTINGS",
    "OBJECTIVE_SETTINGS",
    "objective_options",
    "training_options",
    "defaults",
]
