"""Independent re-computations for the tests: the formulas written out by hand (not through
vaekit's own code paths), so a test compares vaekit against something it did not compute."""

from __future__ import annotations

import math

import numpy as np
import torch


def gaussian_kl_to_standard_normal(mean: torch.Tensor, std: torch.Tensor) -> np.ndarray:
    """KL(N(mean, std^2) || N(0, I)) per row, summed over dimensions (Kingma & Welling 2014,
    appendix B): 0.5 * sum(mean^2 + var - 1 - log var)."""
    var = std.double() ** 2
    return (0.5 * (mean.double() ** 2 + var - 1.0 - torch.log(var)).sum(-1)).numpy()


def bernoulli_log_prob(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """sum over dims of x log sigmoid(l) + (1 - x) log sigmoid(-l), per example (leading dims kept)."""
    x, logits = x.double(), logits.double()
    ll = x * torch.nn.functional.logsigmoid(logits) + (1 - x) * torch.nn.functional.logsigmoid(-logits)
    return ll.flatten(ll.dim() - x.dim() + 1).sum(-1)


def mc_distortion(model, x: torch.Tensor, draws: int = 50, seed: int = 123) -> tuple[float, float]:
    """-E_q[log p(x|z)] for a Bernoulli-likelihood model, averaged over examples, from `draws`
    fresh draws per example (written by hand): (mean, spread), where spread is the standard
    deviation of a one-draw-per-example estimate of that mean (what vaekit's summary computes)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        h = model.encoder(x, None)
        mean, logvar = h.chunk(2, dim=1)
        std = torch.exp(0.5 * logvar)
        per_example = torch.zeros(len(x), dtype=torch.float64)
        per_draw = []
        for _ in range(draws):
            z = mean + std * torch.randn(mean.shape, generator=g)
            logits = model.decoder(z, None).reshape(x.shape)
            value = -bernoulli_log_prob(x, logits)
            per_example += value / draws
            per_draw.append(float(value.mean()))
    spread = float(np.std(per_draw, ddof=1))
    return float(per_example.mean()), spread


def standardise_stats(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and (population) standard deviations, in float64."""
    values = np.asarray(values, dtype=np.float64)
    return values.mean(0), values.std(0)


def importance_sampled_nll(model, x: torch.Tensor, samples: int, seed: int = 7) -> float:
    """-log p(x) by importance sampling with q(z|x) as proposal, for a Bernoulli-likelihood model
    with an N(0, I) prior, written by hand (Burda et al. 2016, eq. 8), averaged over examples."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        mean, logvar = model.encoder(x, None).double().chunk(2, dim=1)
        std = torch.exp(0.5 * logvar)
        z = mean + std * torch.randn((samples, *mean.shape), generator=g, dtype=torch.float64)
        log_q = (-0.5 * ((z - mean) / std) ** 2 - torch.log(std) - 0.5 * math.log(2 * math.pi)).sum(-1)
        log_prior = (-0.5 * z**2 - 0.5 * math.log(2 * math.pi)).sum(-1)
        logits = model.decoder(z.float().reshape(-1, z.shape[-1]), None).reshape(samples, *x.shape)
        log_px = bernoulli_log_prob(x, logits)
        log_w = log_px + log_prior - log_q
        return float(-(torch.logsumexp(log_w, 0) - math.log(samples)).mean())


def diagonal_mixture_log_prob(z: torch.Tensor, weights, means, stds) -> torch.Tensor:
    """log sum_k w_k prod_j N(z_j; mu_kj, s_kj^2), written out: z (..., d); weights (K,),
    means and stds (K, d). float64."""
    z = z.double().unsqueeze(-2)  # (..., 1, d)
    means, stds = torch.as_tensor(means).double(), torch.as_tensor(stds).double()
    log_n = -0.5 * (((z - means) / stds) ** 2 + 2 * torch.log(stds) + math.log(2 * math.pi)).sum(-1)
    return torch.logsumexp(log_n + torch.log(torch.as_tensor(weights).double()), dim=-1)
