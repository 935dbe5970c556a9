"""FactorVAE: the ELBO minus gamma times the total correlation, estimated by a discriminator
(Kim & Mnih, 2018, eq. 2)."""

from __future__ import annotations

import math

import torch
from torch import nn

from vaekit import config
from vaekit.errors import VaekitError, check
from vaekit.objectives.base import (
    KLScheduled,
    LossOutput,
    elbo_terms,
    noise_generator,
    register,
    require_plain_beta,
)

# ============================================================================ FactorVAE


def permute_dims(z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Kim & Mnih (2018, Algorithm 1): each column of z (batch, latent_dim) shuffled by its own
    random permutation over the batch, so every column keeps its values but the rows pair them
    at random: samples of prod_j q(z_j) from samples of q(z). `generator`: a CPU generator
    (None: torch's global one). Returns a new (batch, latent_dim) tensor."""
    keys = torch.rand(z.shape, generator=generator).to(z.device)
    return torch.gather(z, 0, keys.argsort(dim=0))


class Discriminator(nn.Module):
    """FactorVAE's discriminator (Kim & Mnih, 2018, appendix A): an MLP of `layers` hidden layers
    of `units` units with leaky ReLU (slope 0.2), z (batch, latent_dim) -> 2 logits (batch, 2):
    column 0 for "a sample of q(z)", column 1 for "a sample of prod_j q(z_j)"."""

    def __init__(self, latent_dim: int, units: int = 1000, layers: int = 6):
        super().__init__()
        sizes = [latent_dim] + [units] * layers
        parts: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:], strict=True):
            parts += [nn.Linear(a, b), nn.LeakyReLU(0.2)]
        parts.append(nn.Linear(sizes[-1], 2))
        self.net = nn.Sequential(*parts)

    def forward(self, z):
        return self.net(z)


@register("factorvae")
class FactorVAE(KLScheduled):
    """FactorVAE (Kim & Mnih, 2018, eq. 2): the ELBO plus gamma times the total correlation
    TC = KL(q(z) || prod_j q(z_j)), the TC estimated by the density-ratio trick with a
    discriminator D trained to tell samples of q(z) from permuted ones (eq. 3):

        loss_i = distortion_i + w(t) rate_i + gamma tc_i,   tc_i = log D(z_i) / (1 - D(z_i))
               = logit_0(z_i) - logit_1(z_i)    (D's softmax over its two logits)

    D is trained with its own Adam (lr `disc_lr` 1e-4, betas (0.5, 0.9), the paper's appendix A)
    on the cross-entropy of telling the batch's first half (samples of q(z)) from `permute_dims`
    of its second half (samples of prod_j q(z_j)); the paper draws a second batch, and the two
    disjoint halves of one random batch are such a pair. D's loss sees z detached, so it never
    reaches the encoder; the VAE's gamma tc term does move the encoder (and only the encoder:
    the loop's optimiser holds the model's parameters, and D's own step zeroes D's gradients
    first). D steps in `after_step`, after each VAE step, as in the paper's Algorithm 1.

    Terms per example (nats unless said): distortion, rate, tc (the density-ratio estimate at
    the example's z), disc_loss (D's cross-entropy on the example's half: real for the first
    half, permuted for the second), disc_accuracy (1 when D classifies it right, else 0; unitless).
    Settings: gamma (40; the paper reports a range of gamma for dSprites, and good disentangling
    at 40), disc_units (1000) and disc_layers (6) as in the paper's appendix, disc_lr, and the KL
    schedule. D's weights start from the training seed (`bind(seed=...)`). Needs beta = 1.
    Raises `VaekitError` for a bad setting.
    """

    batch_dependent = True

    SETTINGS = config.OBJECTIVE_SETTINGS["factorvae"]
    BETAS = (0.5, 0.9)

    def __init__(self, **settings):
        super().__init__(**settings)
        check(math.isfinite(self.gamma), f"gamma must be a finite number, not {self.gamma!r}.")
        check(
            self.disc_units >= 1, f"disc_units must be a whole number of at least 1, not {self.disc_units}."
        )
        check(
            self.disc_layers >= 1,
            f"disc_layers must be a whole number of at least 1, not {self.disc_layers}.",
        )
        check(
            self.disc_lr > 0 and math.isfinite(self.disc_lr),
            f"disc_lr must be a positive number, not {self.disc_lr!r}.",
        )
        self.discriminator: Discriminator | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self._pending: torch.Tensor | None = None
        self._built_with: tuple | None = None

    def check_model(self, model):
        require_plain_beta(model, self.name, "--gamma")

    def bind(self, **context):
        super().bind(**context)
        model = self.bound.get("model")
        if model is not None:
            key = (model.latent_dim, int(self.bound.get("seed", 0)))
            if key != self._built_with:
                self._build(*key)
        return self

    def _build(self, latent_dim: int, seed: int) -> None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.discriminator = Discriminator(latent_dim, self.disc_units, self.disc_layers)
        self.optimizer = torch.optim.Adam(self.discriminator.parameters(), lr=self.disc_lr, betas=self.BETAS)
        self._built_with = (latent_dim, seed)

    def _d(self, device) -> Discriminator:
        check(
            self.discriminator is not None,
            "The factorvae objective has no discriminator yet; make it with objectives.make(..., model) or "
            "call objective.bind(model=...).",
        )
        if next(self.discriminator.parameters()).device != device:
            self.to(device)
        return self.discriminator

    def to(self, device):
        if self.discriminator is not None:
            self.discriminator.to(device)
            for state in self.optimizer.state.values():
                for k, v in state.items():
                    if torch.is_tensor(v) and k != "step":
                        state[k] = v.to(device)
        return self

    def __call__(self, model, batch, noise=None, progress=math.inf):
        self._generator = noise_generator(noise)
        return super().__call__(model, batch, noise, progress)

    def loss(self, terms, batch, progress, beta):
        disc = self._d(terms.z.device)
        z = terms.z.to(next(disc.parameters()).dtype)  # D is outside any mixed-precision wrapper
        logits = disc(z)
        tc = logits[:, 0] - logits[:, 1]
        d_loss, d_acc = self.discriminator_terms(z.detach(), getattr(self, "_generator", None))
        if torch.is_grad_enabled():
            self._pending = d_loss.mean()
        out = elbo_terms(terms)
        out.update(tc=tc, disc_loss=d_loss, disc_accuracy=d_acc)
        loss = terms.distortion + self.kl_weight(progress) * terms.rate + self.gamma * tc
        return LossOutput(loss, out, terms)

    def discriminator_terms(self, z: torch.Tensor, generator=None) -> tuple[torch.Tensor, torch.Tensor]:
        """D's per-example cross-entropy (nats) and accuracy (0/1), both (batch,), on z (batch,
        latent_dim), which the caller detaches: the first ceil(batch/2) rows are samples of q(z)
        (label 0), the rest are permuted (`permute_dims`) into samples of prod_j q(z_j) (label 1)."""
        disc = self._d(z.device)
        half = len(z) - len(z) // 2
        inputs = torch.cat([z[:half], permute_dims(z[half:], generator)])
        labels = torch.cat(
            [torch.zeros(half, dtype=torch.long), torch.ones(len(z) - half, dtype=torch.long)]
        ).to(z.device)
        logits = disc(inputs)
        d_loss = nn.functional.cross_entropy(logits, labels, reduction="none")
        d_acc = (logits.argmax(1) == labels).to(z.dtype)
        return d_loss, d_acc

    def after_step(self, reduce=None):
        pending, self._pending = self._pending, None
        if pending is None:
            return
        self.optimizer.zero_grad(set_to_none=True)  # the VAE's backward left gradients in D
        pending.backward()
        if reduce is not None:
            for p in self.discriminator.parameters():
                if p.grad is not None:
                    p.grad = reduce(p.grad)
        self.optimizer.step()

    def state(self):
        if self.discriminator is None:
            return None
        return {
            "discriminator": {k: v.detach().cpu() for k, v in self.discriminator.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
        }

    def load_state(self, state):
        check(
            self.discriminator is not None,
            "The factorvae objective is not bound to a model; call bind(model=...).",
        )
        self.discriminator.load_state_dict(state["discriminator"])
        self.optimizer.load_state_dict(state["optimizer"])

    def weights(self):
        if self.discriminator is None:
            return None
        return {f"discriminator.{k}": v for k, v in self.discriminator.state_dict().items()}

    def load_weights(self, state):
        disc = self._d(torch.device("cpu"))
        prefix = "discriminator."
        try:
            disc.load_state_dict({k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)})
        except RuntimeError as err:
            raise VaekitError(
                f"The saved discriminator does not fit this factorvae objective "
                f"({str(err).splitlines()[-1].strip()}); the run's files come from different runs."
            ) from None
