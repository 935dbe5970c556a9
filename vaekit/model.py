"""The VAE: encode -> q(z|x), decode -> p(x|z), and the two ELBO terms, rate and distortion.

    ELBO(x) = E_q(z|x)[log p(x|z)] - KL(q(z|x) || p(z))   (Kingma & Welling, 2014)
              -distortion            -rate

All methods take x in the units the likelihood sees (the data set's scaled `x`), either as a
tensor with optional `beta=`/`labels=` or as a `vaekit.batch.Batch`; the conditions become the
nets' condition vector in one place (`VAE.condition`). The scaling itself is kept as buffers
(`data_shift`, `data_scale`) so a saved model can read raw files. p(z) is `model.prior`, a
`vaekit.priors.Prior`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import distributions as D
from torch import nn

from vaekit import columns, likelihoods, nets, priors
from vaekit.batch import Batch, as_batch
from vaekit.config import ModelConfig
from vaekit.errors import VaekitError, check

MODELS = ("vae", "ae")
CONDITIONS = ("none", "labels")
LOGVAR_RANGE = (-30.0, 20.0)  # keeps exp(logvar) finite; far outside what a trained net uses


@dataclass
class Terms:
    """Per-example ELBO terms in nats, each (batch,). `rate` is NaN for a deterministic AE."""

    distortion: torch.Tensor
    rate: torch.Tensor
    z: torch.Tensor
    q: D.Distribution
    px: D.Distribution

    @property
    def elbo(self) -> torch.Tensor:
        """-(distortion + rate) per example (batch,), nats: the beta = 1 ELBO at this z sample,
        whatever beta trained the model (NaN for a deterministic AE)."""
        return -(self.distortion + self.rate)


class VAE(nn.Module):
    """A VAE with a diagonal Gaussian posterior and a prior module, or a plain autoencoder.

    `encoder(x, c)` must return (batch, 2 * latent_dim) (mean, log-variance) for `model="vae"`
    and (batch, latent_dim) for `model="ae"`; `decoder(z, c)` returns the likelihood's
    parameters (batch, *data_shape). The condition c (batch, cond_dim) is built by `condition`:
    log beta (1 column) for a beta-conditioned model (`beta_range=(lo, hi)`: one model for every
    beta in the range), then a one-hot label (n_classes columns) for a label-conditional model
    (`classes`: the label names, in the order of the one-hot columns; Sohn et al., 2015, with an
    unconditional prior p(z|y) = p(z) as in Kingma et al., 2014, M2).
    `prior` is a `vaekit.priors.Prior`, a name or config.yaml's prior entry (default N(0, I)).
    """

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        latent_dim: int,
        data_shape: tuple[int, ...],
        likelihood: str | likelihoods.Likelihood = "gaussian",
        beta: float = 1.0,
        model: str = "vae",
        beta_range: tuple[float, float] | None = None,
        config: dict | None = None,
        prior: priors.Prior | str | dict | None = None,
        classes: list[str] | None = None,
    ):
        super().__init__()
        check_latent_dim(latent_dim)
        check_beta(beta)
        check(model in MODELS, f"model must be one of {', '.join(MODELS)}, not {model!r}.")
        if beta_range is not None:
            check_beta_range(beta_range)
        check(
            classes is None or len(classes) >= 2,
            f"A label-conditional model needs at least 2 classes, not {classes!r}.",
        )
        self.encoder, self.decoder = encoder, decoder
        self.latent_dim = int(latent_dim)
        self.data_shape = tuple(int(s) for s in data_shape)
        if isinstance(likelihood, str):
            likelihood = likelihoods.make(likelihood, self.data_shape)
        self.likelihood = likelihood
        self.beta = float(beta)
        self.kind = model
        self.beta_range = tuple(float(b) for b in beta_range) if beta_range else None
        self.classes = [str(c) for c in classes] if classes else None
        self.n_classes = len(self.classes) if self.classes else None
        if not isinstance(prior, priors.Prior):
            prior = priors.make(prior, self.latent_dim, self.data_shape)
        check(
            model == "vae" or prior.name == "normal",
            f"A deterministic autoencoder has no prior; drop --prior {prior.name} or use --model vae.",
        )
        check(
            prior.name != "vamp" or (self.beta_range is None and self.n_classes is None),
            "The VampPrior encodes its pseudo-inputs without a condition, so it cannot be combined with "
            "--beta-range or --condition labels; use --prior mog.",
        )
        self.prior = prior
        if isinstance(prior, priors.VampPrior):
            prior.attach(self)
        self.config = config
        self.register_buffer("data_shift", torch.zeros(1))
        self.register_buffer("data_scale", torch.ones(1))

    # ------------------------------------------------------------------ construction
    @classmethod
    def for_data(
        cls,
        data,
        latent_dim: int = 2,
        likelihood: str = "auto",
        beta: float = 1.0,
        arch: str = "auto",
        hidden: tuple[int, ...] = (512, 256),
        activation: str = "relu",
        model: str = "vae",
        sigma: float = 1.0,
        per_dim_sigma: bool = False,
        column_spread: str = "row",
        beta_range: tuple[float, float] | None = None,
        seed: int = 0,
        prior: dict | str | None = None,
        condition: str = "none",
        config: ModelConfig | None = None,
    ) -> VAE:
        """Build the default nets for a `vaekit.datasets.Dataset` (weights seeded by `seed`).

        `config`: a `vaekit.config.ModelConfig` (the settings `vaekit train` takes), whose fields
        give every argument but `data` and `seed` (`ModelConfig.build_arguments`).

        `likelihood="auto"`: for images (and pixel arrays) bernoulli when the data lie in [0, 1],
        else gaussian; for tables a Gaussian with one learned sigma per column
        (gaussian-learned, per_dim_sigma): a fixed sigma = 1 on standardised columns calls most
        of each column noise (on probabilistic-PCA data its test NLL was 25.7 nats above the
        exact value, against 0.34 with a learned sigma per column).
        `prior`: a name (normal, mog, vamp) or config.yaml's entry {"name": ..., SETTING: value}
        (`vaekit.config.PRIOR_SETTINGS`: e.g. "components": K, "weights": "uniform"); a
        VampPrior's pseudo-inputs start at K seeded training examples.
        `column_spread` (a table file): "row", each column's spread from the decoder per row, or
        "column", one learned spread per column (`vaekit.columns.ColumnLikelihood`).
        `condition="labels"`: a label-conditional model over the data's classes (raises
        `VaekitError` when the data have no labels).
        Raises `VaekitError` for a setting outside its range, with the fix.
        """
        if config is not None:
            return cls.for_data(data, seed=seed, **config.build_arguments())
        schema = getattr(data, "schema", None)
        check(
            schema is not None or column_spread == "row",
            "--column-spread applies to table files (CSV, Parquet, HDF5); drop it for this data.",
        )
        if schema is not None:
            check(
                likelihood in ("auto", "columns"),
                f"A table file is modelled column by column, so --likelihood {likelihood} does not apply; "
                "drop it (choose a column's type with --column-types NAME=TYPE; real is a Gaussian).",
            )
            likelihood = "columns"
            check(
                (prior if isinstance(prior, str) else (prior or {}).get("name", "normal")) != "vamp",
                "The VampPrior's pseudo-inputs are rows of numbers, which a table of typed columns does not "
                "have; use --prior mog.",
            )
        elif likelihood == "auto":
            lo, hi = data.value_range
            if data.is_pixels:
                likelihood = "bernoulli" if lo >= 0 and hi <= 1 else "gaussian"
            else:
                likelihood, per_dim_sigma = "gaussian-learned", True
        check(
            condition in CONDITIONS,
            f"--condition must be one of {', '.join(CONDITIONS)}, not {condition!r}.",
        )
        classes = None
        if condition == "labels":
            check(
                data.y is not None,
                f"--condition labels needs labels, and {data.name} has none; give --label-column "
                "(tables), a y array (.npz) or class sub-folders (images).",
            )
            classes = [data.label_name(int(v)) for v in np.unique(data.y)]
            check(len(classes) >= 2, f"--condition labels needs at least 2 classes; {data.name} has one.")
        prior_settings = prior if isinstance(prior, dict) else {"name": prior or "normal"}
        config = {
            "data_shape": list(data.shape),
            "latent_dim": int(latent_dim),
            "likelihood": likelihood,
            "sigma": float(sigma),
            "per_dim_sigma": bool(per_dim_sigma),
            "beta": float(beta),
            "arch": nets.resolve_arch(arch, data.shape),
            "hidden": [int(h) for h in hidden],
            "activation": activation,
            "model": model,
            "beta_range": list(beta_range) if beta_range else None,
        }
        if schema is not None:
            config["columns"] = schema.spec()
            config["column_spread"] = column_spread
        if prior_settings.get("name", "normal") != "normal":
            config["prior"] = dict(prior_settings)
        if classes:
            config["condition"] = "labels"
            config["classes"] = classes
        vae = cls.from_config(config, seed=seed)
        vae.set_scaling(data.scaling.shift, data.scaling.scale)
        if isinstance(vae.prior, priors.VampPrior):
            gen = torch.Generator().manual_seed(seed)
            pick = torch.randperm(len(data.x_train), generator=gen)[: vae.prior.n_components]
            vae.prior.init_from(torch.as_tensor(data.x_train[pick.numpy()]))
        check_likelihood_fits(vae, data)
        return vae

    @classmethod
    def from_config(cls, config: dict, seed: int = 0) -> VAE:
        """Rebuild the architecture that `config` describes (weights freshly initialised).

        Reads run folders of every format: `beta_range` (the beta condition), and, where present,
        `prior` and `condition`/`n_classes` (absent in runs written before they existed)."""
        check_latent_dim(config["latent_dim"])
        shape = tuple(config["data_shape"])
        enc_out = config["latent_dim"] * (2 if config["model"] == "vae" else 1)
        classes = config.get("classes") if config.get("condition") == "labels" else None
        cond_dim = (1 if config.get("beta_range") else 0) + len(classes or ())
        table = columns.Schema.from_spec(config["columns"]) if config.get("columns") else None
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            if table is not None:  # typed columns: features in, each column's parameters out
                features = columns.Features(table)
                encoder, decoder = nets.build(
                    "mlp",
                    (features.n_features,),
                    config["latent_dim"],
                    enc_out,
                    config["hidden"],
                    config["activation"],
                    cond_dim,
                    out_shape=(sum(c.n_params for c in table.columns),),
                )
                encoder = columns.FeaturesEncoder(features, encoder)
            else:
                encoder, decoder = nets.build(
                    config["arch"],
                    shape,
                    config["latent_dim"],
                    enc_out,
                    config["hidden"],
                    config["activation"],
                    cond_dim,
                )
            # after the nets, so a prior that draws its initial values leaves their weights as before
            prior = priors.make(config.get("prior"), config["latent_dim"], shape)
        lik = likelihoods.make(
            config["likelihood"],
            shape,
            sigma=config.get("sigma", 1.0),
            per_dim=config.get("per_dim_sigma", False),
            columns=config.get("columns"),
            spread=config.get("column_spread", "row"),
        )
        return cls(
            encoder,
            decoder,
            config["latent_dim"],
            shape,
            lik,
            config["beta"],
            config["model"],
            config.get("beta_range"),
            dict(config),
            prior,
            classes,
        )

    def set_scaling(self, shift, scale) -> None:
        """Store the data set's scaling x_model = (x_user - shift) / scale as the float32 buffers
        `data_shift`, `data_scale` (arrays broadcast to one example's shape; new CPU tensors, so
        call it before moving the model to a device)."""
        self.data_shift = torch.as_tensor(np.asarray(shift), dtype=torch.float32).clone()
        self.data_scale = torch.as_tensor(np.asarray(scale), dtype=torch.float32).clone()

    def scale_input(self, x_user: torch.Tensor) -> torch.Tensor:
        """User units -> the units the likelihood sees."""
        return (x_user - self.data_shift) / self.data_scale

    def unscale_output(self, x: torch.Tensor) -> torch.Tensor:
        """The units the likelihood sees -> user units (x * scale + shift), the inverse of `scale_input`."""
        return x * self.data_scale + self.data_shift

    def log_jacobian(self) -> float:
        """log |dx_model/dx_user| summed over one example (nats); add to log p(x_model)."""
        return float(-torch.log(self.data_scale).expand(self.data_shape).sum())

    # ------------------------------------------------------------------ conditions
    @property
    def beta_conditioned(self) -> bool:
        """One model for every beta in `beta_range` (log beta is an input to both nets)."""
        return self.beta_range is not None

    @property
    def conditional(self) -> bool:
        """Label-conditional (Sohn et al., 2015): a one-hot label is an input to both nets."""
        return self.n_classes is not None

    def condition(self, batch: Batch) -> torch.Tensor | None:
        """The nets' condition vector (batch, cond_dim), or None for an unconditioned model: the
        one place where conditions become inputs. Raises `VaekitError` when a label-conditional
        model gets no labels or a label outside 0..n_classes-1."""
        if not (self.beta_conditioned or self.conditional):
            return None
        x = batch.x
        parts = []
        if self.beta_conditioned:
            beta = self.beta if batch.beta is None else batch.beta
            beta = torch.as_tensor(beta, dtype=x.dtype, device=x.device).reshape(-1, 1)
            parts.append(torch.log(beta.clamp_min(1e-8)))
        if self.conditional:
            check(
                batch.labels is not None,
                "This model is label-conditional: pass each example's class index as labels= "
                "(model.class_index maps label names to them).",
            )
            labels = batch.labels.long().reshape(-1)
            if labels.device.type == "cpu":  # on an accelerator this check would cost a host sync per step
                bad = (labels < 0) | (labels >= self.n_classes)
                if bool(bad.any()):
                    raise VaekitError(
                        f"This model knows the class indices 0 to {self.n_classes - 1}, not "
                        f"{int(labels[bad][0])}; map label names with model.class_index."
                    )
            parts.append(nn.functional.one_hot(labels, self.n_classes).to(x.dtype))
        rows = max(len(p) for p in parts)
        c = torch.cat([p.expand(rows, -1) if len(p) == 1 else p for p in parts], dim=1)
        return c.expand(len(x), -1) if len(c) == 1 else c

    def class_index(self, names) -> torch.Tensor:
        """Label names (or values, as text) -> the class indices (n,) the nets take. Raises
        `VaekitError` naming a label the model was not trained on."""
        check(self.conditional, "This model is not label-conditional, so it has no classes.")
        lookup = {c: i for i, c in enumerate(self.classes)}
        names = [str(n) for n in names]
        unknown = [n for n in names if n not in lookup]
        if unknown:
            known = ", ".join(self.classes[:12]) + (", ..." if len(self.classes) > 12 else "")
            raise VaekitError(f"The label {unknown[0]!r} is not one this model was trained on ({known}).")
        return torch.tensor([lookup[n] for n in names], dtype=torch.long)

    def data_classes(self, data, split: str = "test", index=None) -> torch.Tensor | None:
        """The class indices (n,) of a data set's split (or of `index` into the whole data set)
        for a label-conditional model; None for any other model."""
        if not self.conditional:
            return None
        check(
            data.y is not None,
            f"This model is label-conditional but {data.name} has no labels; give data with labels "
            "(--label-column, a y array) or use a run trained without --condition labels.",
        )
        values = data.y[index] if index is not None else data.labels(split)
        unique, inverse = np.unique(values, return_inverse=True)
        return self.class_index([data.label_name(int(v)) for v in unique])[
            torch.as_tensor(inverse.reshape(-1))
        ]

    # ------------------------------------------------------------------ the model
    def encode(self, x, beta=None, labels=None) -> D.Distribution:
        """q(z|x): an `Independent(Normal)` with batch shape (batch,), event shape (latent_dim,).

        `x` is (batch, *data_shape) or a `Batch`. For the deterministic autoencoder the scale is
        0 (a point mass at the code).
        """
        batch = as_batch(x, beta, labels)
        h = self.encoder(batch.x, self.condition(batch))
        if self.kind == "ae":
            return D.Independent(D.Normal(h, torch.zeros_like(h), validate_args=False), 1)
        mean, logvar = h.chunk(2, dim=1)
        std = torch.exp(0.5 * logvar.clamp(*LOGVAR_RANGE))
        return D.Independent(D.Normal(mean, std, validate_args=False), 1)

    def decode(self, z: torch.Tensor, beta=None, labels=None) -> D.Distribution:
        """p(x|z): a distribution with event shape `data_shape`; `.mean` is the reconstruction.

        `z` may have several leading dimensions, e.g. (samples, batch, latent_dim): the batch
        shape is then (samples, batch), and `log_prob(x)` broadcasts x (batch, ...) over the
        samples without copying it. `beta`/`labels` hold one value per example of the batch (or
        one for all); they are repeated over the leading sample dimensions.
        """
        flat = z.reshape(-1, z.shape[-1])
        c = self.condition(as_batch(flat, beta, labels))
        if c is not None and len(c) != len(flat):  # one condition per example: repeat over samples
            c = c.unsqueeze(0).expand(len(flat) // len(c), -1, -1).reshape(len(flat), -1)
        params = self.decoder(flat, c)
        return self.likelihood(params.reshape(*z.shape[:-1], *self.likelihood.param_shape))

    def terms(self, x, beta=None, noise: torch.Tensor | None = None, labels=None) -> Terms:
        """Distortion -E_q[log p(x|z)] and rate KL(q||p) per example, one sample of z (nats).

        `x` is (batch, *data_shape) or a `Batch`. `noise` (batch, latent_dim) fixes the
        reparameterisation noise (used for reproducible multi-process training); by default it
        is drawn from torch's generator. The rate is the prior's KL (closed form for N(0, I),
        Monte Carlo at this z for mixtures).
        """
        batch = as_batch(x, beta, labels)
        q = self.encode(batch)
        if noise is None:
            z = q.rsample()
        else:
            z = q.mean + q.stddev * noise
        px = self.decode(z, batch.beta, batch.labels)
        distortion = -px.log_prob(batch.x)
        if self.kind == "ae":
            rate = torch.full_like(distortion, math.nan)
        else:
            rate = self.prior.kl(q, z)
        return Terms(distortion, rate, z, q, px)

    def forward(self, x, beta=None, noise: torch.Tensor | None = None, labels=None) -> Terms:
        """Same as `terms`: training calls the model, so wrappers (DDP) see a forward pass."""
        return self.terms(x, beta, noise, labels)

    def elbo(self, x, beta=None, labels=None) -> torch.Tensor:
        """The beta = 1 evidence lower bound per example (batch,), in nats (one z sample)."""
        return self.terms(x, beta, labels=labels).elbo

    @torch.no_grad()
    def sample(self, n: int, beta=None, mean: bool = True, labels=None) -> torch.Tensor:
        """n draws from the model (n, *data_shape): z from the prior, then the decoder's mean
        (`mean=True`) or a draw of p(x|z). A label-conditional model draws class `labels` (one
        class index, or (n,)); without labels it cycles through the classes 0, 1, ..., n_classes-1."""
        z = self.prior.sample(n)
        if self.conditional and labels is None:
            labels = torch.arange(n, device=z.device) % self.n_classes
        px = self.decode(z, beta, labels)
        return px.mean if mean else px.sample()

    def reconstruct(self, x, beta=None, labels=None) -> torch.Tensor:
        """The decoder's mean at the posterior mean (batch, *data_shape)."""
        batch = as_batch(x, beta, labels)
        return self.decode(self.encode(batch).mean, batch.beta, batch.labels).mean


def check_latent_dim(latent_dim) -> None:
    """Raise `VaekitError` unless `latent_dim` is a whole number (int or numpy integer, not bool) >= 1."""
    check(
        isinstance(latent_dim, (int, np.integer)) and not isinstance(latent_dim, bool) and latent_dim >= 1,
        f"latent_dim must be a whole number of at least 1, not {latent_dim!r}.",
    )


def check_beta(beta) -> None:
    """Raise `VaekitError` unless `beta` is a finite int or float (not bool) >= 0."""
    ok = isinstance(beta, (int, float)) and not isinstance(beta, bool)
    check(
        ok and math.isfinite(beta) and beta >= 0,
        f"beta must be a number of at least 0 (0 = pure reconstruction), not {beta!r}.",
    )


def check_beta_range(beta_range) -> None:
    """Raise `VaekitError` unless `beta_range` is two numbers (low, high) with 0 < low < high."""
    try:
        low, high = (float(b) for b in beta_range)
        ok = 0 < low < high and math.isfinite(high)
    except (TypeError, ValueError):
        ok = False
    check(ok, f"beta_range must be two finite numbers 0 < low < high, not {beta_range!r}.")


def check_likelihood_fits(model: VAE, data) -> None:
    """Refuse a likelihood whose support the data (both splits) leave."""
    if model.likelihood.needs_unit_interval:
        lo, hi = data.value_range
        if lo < 0 or hi > 1:
            fix = "use --likelihood gaussian or laplace"
            if data.scaling.name != "unit":
                fix += ", or --scaling unit"
            # repr-exact digits, so 1.0000063 is not printed as 1
            raise VaekitError(
                f"The {model.likelihood.name} likelihood needs data in [0, 1] but {data.name} spans "
                f"[{lo!r}, {hi!r}] after {data.scaling.name} scaling; {fix}."
            )


def describe(model: VAE) -> str:
    """One line for the terminal: model kind, architecture, latent_dim, likelihood (with its
    sigma as config.yaml gives it), beta or beta range, prior, label condition, parameter count."""
    cfg = model.config or {}
    beta = (
        f"beta in [{model.beta_range[0]:g}, {model.beta_range[1]:g}]"
        if model.beta_conditioned
        else f"beta {model.beta:g}"
    )
    n_params = sum(p.numel() for p in model.parameters())
    sigma = ""
    if model.likelihood.name == "gaussian-learned":
        sigma = " (one learned sigma per dimension)" if cfg.get("per_dim_sigma") else " (one learned sigma)"
    elif model.likelihood.name == "gaussian":
        sigma = f" (sigma {cfg.get('sigma', 1.0):g})"
    elif model.likelihood.name == "columns":
        sigma = (
            " (each column's spread per row)"
            if model.likelihood.spread == "row"
            else " (a spread per column)"
        )
    return (
        f"{model.kind.upper()} {cfg.get('arch', 'custom')} latent_dim {model.latent_dim}, "
        f"{model.likelihood.name} likelihood{sigma}, {beta}, {describe_prior(model.prior)} prior"
        + (f", conditioned on {model.n_classes} labels" if model.conditional else "")
        + f", {n_params:,} parameters"
    )


def describe_prior(prior: priors.Prior) -> str:
    """A prior in words: "N(0, I)", or its name with its number of components ("mog (10 components)")."""
    if prior.name == "normal":
        return "N(0, I)"
    components = getattr(prior, "n_components", None)
    return f"{prior.name} ({components} components)" if components else prior.name


__all__ = ["VAE", "Terms"]
