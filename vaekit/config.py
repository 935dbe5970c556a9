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

from vaekit.errors import VaekitError, check


def setting(default, meaning: str, *, kind: type | None = None, nargs: int = 1, flag: bool = False):
    """A field with its meaning (the `--help` text) and, where the annotation is not a plain type,
    its kind (`int`, `float`, `str`, `bool`); `nargs=2` for a pair; `flag` for an on/off switch."""
    return field(default=default, metadata={"help": meaning, "kind": kind, "nargs": nargs, "flag": flag})


def hidden_sizes(value) -> list[int]:
    """Hidden layer sizes as ints, from text like "512,256" (spaces ignored) or a list or tuple
    (its entries go through `int`, so a float is truncated). Raises `VaekitError` for an entry
    `int` refuses (e.g. "512.0", "a") or a size below 1."""
    if isinstance(value, (list, tuple)):
        parts = list(value)
    else:
        parts = [p for p in str(value).replace(" ", "").split(",") if p]
    try:
        sizes = [int(p) for p in parts]
    except (TypeError, ValueError):
        raise VaekitError(f"hidden must be layer sizes like 512,256, not {value!r}.") from None
    check(all(s >= 1 for s in sizes), f"hidden layer sizes must be positive, not {value!r}.")
    return sizes


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


# the DataConfig fields that say how a table file is read and modelled (`datasets.load`'s table_options)
TABLE_OPTIONS = ("sep", "decimal", "id_column", "column_types", "missing")


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

    def load_arguments(self) -> dict:
        """`vaekit.datasets.load`'s keyword arguments for these settings: the one place the
        fields become the reader's options (.npz keys, image and table options)."""
        keys = {
            role: getattr(self, f"{role}_key")
            for role in ("x", "y", "factors")
            if getattr(self, f"{role}_key")
        }
        if self.key:
            keys["table"] = self.key
        table = {k: getattr(self, k) for k in TABLE_OPTIONS if getattr(self, k) is not None}
        if table.get("missing") == "refuse":
            del table["missing"]
        return dict(
            source=self.data,
            test_size=self.test_size,
            scaling=self.scaling,
            label_column=self.label_column,
            keys=keys,
            columns=self.columns,
            drop_columns=self.drop_columns,
            test_data=self.test_data,
            image_options={"alpha": self.alpha or "composite", "background": self.background},
            discrete_columns=self.discrete_columns,
            table_options=table,
            binarize=self.binarize or "none",
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
    condition: str = setting(
        "none", "none, or labels: a label-conditional VAE (the data's labels go into encoder and decoder)."
    )
    arch: str = setting("auto", "mlp, conv (images of 16 px and more) or auto (conv from 32 px).")
    hidden: str = setting("512,256", "MLP hidden layer sizes, comma separated.")
    activation: str = setting("relu", "relu, elu, gelu, tanh or silu.")

    def build_arguments(self) -> dict:
        """`vaekit.model.VAE.for_data`'s keyword arguments for these settings: the one place the
        fields become the model's (hidden sizes parsed; `prior` a name, or config.yaml's prior
        entry with its settings, as `model_config` sets it)."""
        return dict(
            latent_dim=self.latent_dim,
            likelihood=self.likelihood,
            beta=self.beta,
            arch=self.arch,
            hidden=tuple(hidden_sizes(self.hidden)),
            activation=self.activation,
            model=self.model,
            sigma=self.sigma,
            per_dim_sigma=bool(self.per_dim_sigma),
            column_spread=self.column_spread or "row",
            beta_range=tuple(self.beta_range) if self.beta_range else None,
            prior=self.prior if isinstance(self.prior, dict) else prior_entry({"prior": self.prior}),
            condition=self.condition or "none",
        )


@dataclass
class TrainConfig:
    """How the model is trained and measured at the end."""

    objective: str = setting(
        "auto",
        f"What training minimises: {', '.join(OBJECTIVE_SETTINGS)} "
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
    logger: str | None = setting(
        None,
        "Experiment trackers that mirror metrics.jsonl, comma separated: tensorboard, csv, wandb, mlflow "
        "(offline, under RUN/logs); none turns them off on --resume.",
        kind=str,
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
FREE_KEYS = ("epochs", "nll_samples", "device", "devices", "num_nodes", "strategy", "precision", "logger")
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


def model_config(settings: dict) -> ModelConfig:
    """The `ModelConfig` of flat settings (what `vaekit train` takes), its `prior` the prior's
    entry with the `prior_*` settings given (`prior_entry`)."""
    model = section(ModelConfig, settings)
    model.prior = prior_entry(settings)
    return model


# ----------------------------------------------------------------------------- priors' settings
# prior -> {setting: (type, default, meaning)}; each setting is the option --prior-SETTING and the
# key SETTING of config.yaml's prior entry. `vaekit.priors` reads its classes' SETTINGS from here
# (a test checks that every registered prior has its row).

PRIOR_SETTINGS: dict[str, dict[str, tuple[type, object, str]]] = {
    "normal": {},
    "mog": {
        "components": (int, 10, "mixture components K"),
        "weights": (str, "learned", "learned or uniform (1/K) mixture weights"),
    },
    "vamp": {
        "components": (int, 50, "pseudo-inputs K (500 in Tomczak & Welling, 2018)"),
        "pseudo_inputs": (
            str,
            "learned",
            "learned, or data: fixed at K random training examples (the 'VampPrior data' of Tomczak & "
            "Welling, 2018, Table 2)",
        ),
    },
}


def _owners(table: dict, key: str) -> list[str]:
    return [name for name, settings in table.items() if key in settings]


def prior_options() -> list[Option]:
    """One option --prior-SETTING per prior setting (`PRIOR_SETTINGS`), its help giving each
    prior that has it, with its meaning there and its default (the option's own default is None:
    the prior's)."""
    kinds: dict[str, type] = {}
    for settings in PRIOR_SETTINGS.values():
        for key, (kind, _, _) in settings.items():
            kinds.setdefault(key, kind)
    out = []
    for key, kind in kinds.items():
        parts = [
            f"{o} prior: {PRIOR_SETTINGS[o][key][2]} [{PRIOR_SETTINGS[o][key][1]}]"
            for o in _owners(PRIOR_SETTINGS, key)
        ]
        out.append(Option(f"prior_{key}", kind, None, "; ".join(parts) + "."))
    return out


def prior_entry(settings: dict) -> dict:
    """config.yaml's prior entry, {"name": ..., SETTING: value, ...}, from flat settings holding
    `prior` and the `prior_SETTING` options given (None: the prior's default). Raises
    `VaekitError` for an unknown prior or a setting given for a prior that does not have it."""
    name = settings.get("prior") or "normal"
    check(name in PRIOR_SETTINGS, f"Unknown prior {name!r}; choose one of {', '.join(PRIOR_SETTINGS)}.")
    entry: dict = {"name": name}
    for option in prior_options():
        key = option.name.removeprefix("prior_")
        value = settings.get(option.name)
        if value is None:
            continue
        owners = _owners(PRIOR_SETTINGS, key)
        plural = "s" if len(owners) > 1 else ""
        check(
            key in PRIOR_SETTINGS[name],
            f"--prior-{key.replace('_', '-')} applies to the {' and '.join(owners)} prior{plural}, "
            f"not {name}; add {' or '.join(f'--prior {o}' for o in owners)}, or drop it.",
        )
        entry[key] = value
    return entry


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
    typed = options() + prior_options()
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
    "PRIOR_SETTINGS",
    "TABLE_OPTIONS",
    "hidden_sizes",
    "prior_entry",
    "model_config",
    "prior_options",
    "objective_options",
    "training_options",
    "defaults",
]
