"""Measure a trained model: the ELBO terms, an importance-sampled likelihood, and latent probes.

All log-likelihood figures are in nats per example, for data in the units the likelihood sees,
unless a function says `user_units`.
"""

from __future__ import annotations

import math
import platform
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from vaekit import objectives, summary_keys
from vaekit._version import __version__
from vaekit.batch import Batch, as_batch
from vaekit.datasets.rows import chunks
from vaekit.errors import VaekitError
from vaekit.model import VAE

EVAL_BATCH = 1000
# fewer test codes than this make a variance (active units) or a covariance (aggregate KL) noise
MIN_TEST_FOR_STATISTICS = 10
# floats per intermediate (samples x batch x data_dim) tensor in `nll`: 2^21 (8 MB) keeps each
# chunk in cache; 2^24 ran 1.8x slower on a 2-core CPU (benchmarks/RESULTS.md)
CHUNK_FLOATS = 2**21


@dataclass
class NLL:
    """-log p(x) estimated by importance sampling with K samples from q (nats per example).

    `nll` is the mean over examples; `stderr` its standard error over examples; `per_example`
    (n,). With finite K the estimate is biased upward (it is -IWAE_K, Burda et al. 2016), and the
    bias shrinks as K grows; `iwae_bound` = -nll is a lower bound on log p(x) >= the ELBO.
    """

    nll: float
    stderr: float
    samples: int
    per_example: np.ndarray
    # from the same K draws: the ELBO (mean over draws of the log weight) and the distortion
    # (mean of -log p(x|z_k)) per example, (n,); elbo_per_example <= -per_example always
    elbo_per_example: np.ndarray | None = None
    distortion_per_example: np.ndarray | None = None

    @property
    def iwae_bound(self) -> float:
        """The IWAE_K bound (Burda et al., 2016, eq. 8) on the mean log p(x): -nll, nats per example."""
        return -self.nll


def _device(model: VAE) -> torch.device:
    return model.data_scale.device


def _as_batch(x, beta=None, labels=None) -> Batch:
    """Any x (numpy, tensor or Batch) with its conditions as one float32 CPU-or-device Batch."""
    if not isinstance(x, Batch) and not torch.is_tensor(x) and not getattr(x, "is_lazy_rows", False):
        x = torch.as_tensor(np.asarray(x, dtype=np.float32))
    if labels is not None and not torch.is_tensor(labels):
        labels = torch.as_tensor(np.asarray(labels)).long()
    return as_batch(x, beta, labels, lazy=True)


def _through_objective(model: VAE, x, objective, beta, labels, gen: torch.Generator, progress, batch_size):
    """The one loss path over a whole data set: for each batch of
    `objective.eval_batch_size(batch_size)` examples of x, yields (batch, the `LossOutput` of the
    objective (default: the model's own), the draw-1 noise (batch, latent_dim) from `gen` it was
    called with), the model in eval mode meanwhile. A caller may draw more noise from `gen`
    before asking for the next batch (`sampled_scores` does); `loss_terms` draws nothing else, so
    both see the same draw 1."""
    objective = objective or objectives.for_model(model)
    batch_size = objective.eval_batch_size(batch_size)  # a minibatch estimate: training's batches
    device = _device(model)
    batch = _as_batch(x, beta, labels)
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(batch), batch_size):
            b = batch[start : start + batch_size].to(device)
            noise = torch.randn(len(b), model.latent_dim, generator=gen).to(device)
            yield b, objective(model, b, noise, progress), noise
    finally:
        model.train(was_training)


def _squared_error(model: VAE, b: Batch, out) -> torch.Tensor:
    """The summed squared error (batch,) of the reconstruction at q's mean, in the likelihood's
    units; for a typed table, in the encoder's feature units over the observed cells."""
    mean = out.outputs.q.mean if out.outputs is not None else model.encode(b).mean
    recon = model.decode(mean, b.beta, b.labels).mean
    schema = getattr(model.likelihood, "schema", None)
    if schema is not None:  # a typed table: in the encoder's feature units (`columns.squared_error`)
        from vaekit import columns

        return columns.squared_error(schema, b.x, recon)
    return (recon - b.x).pow(2).flatten(1).sum(1)


@torch.no_grad()
def loss_terms(
    model: VAE,
    x,
    objective: objectives.Objective | None = None,
    beta=None,
    labels=None,
    seed: int = 0,
    generator: torch.Generator | None = None,
    progress: float = math.inf,
    squared_error: bool = False,
    batch_size: int = EVAL_BATCH,
) -> dict[str, np.ndarray]:
    """The objective's per-example terms over a whole data set, through the same call that
    training makes (the one loss path).

    Args:
        x: (n, *data_shape) in the likelihood's units, or a `Batch`.
        objective: default: the model's own (`objectives.for_model`).
        beta: the condition of a beta-conditioned model, (n,) or one value for all (see
            `vaekit.batch.as_batch`).
        labels: the class condition of a label-conditional model, (n,) or one for all.
        seed: seeds the generator of the reparameterisation noise when `generator` is None.
        generator: draws the reparameterisation noise, (batch, latent_dim) per batch of
            `batch_size`.
        progress: the training position schedules read (default: the end of training).
        squared_error: also return the summed squared error of the reconstruction at q's mean.
    Returns name -> (n,) float64 arrays: "loss", each of the objective's terms, "elbo" (beta = 1,
    one z draw) where the objective has both distortion and rate, and "squared_error" if asked.
    Raises `VaekitError` when a label-conditional model gets no labels or unknown ones.
    """
    gen = generator if generator is not None else torch.Generator().manual_seed(seed)
    parts: dict[str, list[torch.Tensor]] = {}
    for b, out, _ in _through_objective(model, x, objective, beta, labels, gen, progress, batch_size):
        values = {"loss": out.loss, **out.terms}
        if squared_error:
            values["squared_error"] = _squared_error(model, b, out)
        for name, value in values.items():
            parts.setdefault(name, []).append(value.detach().double().cpu())
    result = {name: torch.cat(chunks).numpy() for name, chunks in parts.items()}
    if "distortion" in result and "rate" in result:
        result["elbo"] = -(result["distortion"] + result["rate"])
    return result


@torch.no_grad()
def log_weights(model: VAE, x, samples: int, beta=None, labels=None) -> torch.Tensor:
    """log p(x|z_k) + log p(z_k) - log q(z_k|x) for K draws z_k ~ q(z|x): (samples, batch)."""
    return _draws(model, x, samples, beta, labels)[1]


def _draws(model: VAE, x, samples: int, beta=None, labels=None) -> tuple[torch.Tensor, torch.Tensor]:
    """(log p(x|z_k), log weights), each (samples, batch), for K draws z_k ~ q(z|x)."""
    batch = as_batch(x, beta, labels)
    q = model.encode(batch)
    z = q.sample((samples,))  # (K, B, latent)
    return _log_px_and_weights(model, batch, q, z)


def _log_px_and_weights(model: VAE, batch: Batch, q, z: torch.Tensor):
    """log p(x|z) and the importance weight log p(x|z) + log p(z) - log q(z|x), each (K, B), for
    draws z (K, B, latent_dim) of q; x is broadcast over the draws, not copied, and the
    conditions are repeated over them in decode."""
    log_px = model.decode(z, batch.beta, batch.labels).log_prob(batch.x)
    return log_px, log_px + model.prior.log_prob(z) - q.log_prob(z)


@torch.no_grad()
def nll(
    model: VAE,
    x,
    samples: int = 100,
    batch_size: int | None = None,
    beta=None,
    user_units: bool = False,
    seed: int = 0,
    labels=None,
) -> NLL:
    """Importance-sampled -log p(x) (Rezende et al., 2014; Burda et al., 2016, eq. 8), chunked so
    memory stays bounded; p(z) is the model's prior (any `vaekit.priors.Prior`).

    Args:
        x: (n, *data_shape) in the likelihood's units, or the user's units with `user_units`:
            then it is scaled as in training and the scaling's log-Jacobian is included, so the
            figure is a density of the user's data.
        samples: K >= 1 importance samples per example.
        beta: the condition of a beta-conditioned model, (n,) or one value for all.
        labels: the class condition of a label-conditional model, (n,) or one for all.
    Raises `VaekitError` for a deterministic autoencoder or K < 1."""
    if model.kind == "ae":
        raise VaekitError("A deterministic autoencoder has no likelihood; train a VAE for nll.")
    samples = int(samples)
    if samples < 1:
        raise VaekitError(f"samples must be at least 1, not {samples}.")
    was_training = model.training
    model.eval()
    device = _device(model)
    batch = _as_batch(x, beta, labels)
    if user_units:
        batch = Batch(model.scale_input(batch.x.to(device)), batch.labels, batch.beta)
    # floats per importance sample: the data's and, for a mixture prior, one density per component
    data_dim = max(math.prod(model.data_shape), getattr(model.prior, "n_components", 0) * model.latent_dim)
    if batch_size is None:
        batch_size = max(1, min(EVAL_BATCH, CHUNK_FLOATS // max(1, samples * data_dim)))
    k_chunk = max(1, min(samples, CHUNK_FLOATS // max(1, batch_size * data_dim)))
    out, elbos, distortions = [], [], []
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for start in range(0, len(batch), batch_size):
                xb = batch[start : start + batch_size].to(device)
                parts = [_draws(model, xb, min(k_chunk, samples - k0)) for k0 in range(0, samples, k_chunk)]
                log_px = torch.cat([p[0] for p in parts], 0).double()
                lw = torch.cat([p[1] for p in parts], 0).double()
                out.append(-(torch.logsumexp(lw, 0) - math.log(samples)))
                elbos.append(lw.mean(0))
                distortions.append(-log_px.mean(0))
    finally:
        model.train(was_training)
    per_example = torch.cat(out).cpu().numpy()
    elbo, distortion = torch.cat(elbos).cpu().numpy(), torch.cat(distortions).cpu().numpy()
    if user_units:
        per_example = per_example - model.log_jacobian()
        elbo, distortion = elbo + model.log_jacobian(), distortion - model.log_jacobian()
    return NLL(float(per_example.mean()), _stderr(per_example), samples, per_example, elbo, distortion)


def _stderr(values: np.ndarray) -> float:
    """The standard error of the mean of `values` (n,); NaN for fewer than 2."""
    n = len(values)
    return float(np.std(values, ddof=1) / math.sqrt(n)) if n > 1 else float("nan")


@torch.no_grad()
def encode_means(model: VAE, x, beta=None, batch_size: int = EVAL_BATCH, labels=None):
    """Posterior means and variances (n, latent_dim) as numpy arrays; x (n, *data_shape)."""
    means, variances = [], []
    device = _device(model)
    batch = _as_batch(x, beta, labels)
    for start in range(0, len(batch), batch_size):
        q = model.encode(batch[start : start + batch_size].to(device))
        means.append(q.mean.cpu())
        variances.append(q.variance.cpu())
    return torch.cat(means).numpy(), torch.cat(variances).numpy()


def per_example_terms(
    model: VAE, x, beta=None, seed: int = 0, batch_size: int = EVAL_BATCH, labels=None, objective=None
):
    """Per-example scores (n,) each: the objective's (default: the model's own) loss and terms
    (distortion, rate: one z draw each, nats), "elbo", and the squared error of the reconstruction
    at the posterior mean (summed over dimensions); a deterministic autoencoder's rate is NaN.
    See `loss_terms`."""
    out = loss_terms(model, x, objective, beta, labels, seed, squared_error=True, batch_size=batch_size)
    out.setdefault("rate", np.full(len(out["loss"]), np.nan))
    return out


SCORE_MEANINGS = {
    "loss": "the training objective's value for this example (one draw), nats",
    "neg_elbo": "-ELBO = distortion + rate (one draw of z), nats; higher = more anomalous",
    "distortion": "-log p(x|z) at one draw z ~ q(z|x) (a deterministic autoencoder: at its code), nats",
    "rate": "KL(q(z|x) || p(z)) (closed form for N(0, I), else at the draw), nats",
    "squared_error": "sum over features of the squared error of the reconstruction at q's mean, "
    "(model units)^2 (a typed table: the encoder's feature units, observed cells)",
    "neg_elbo_avg": "-ELBO averaged over K draws of z, nats",
    "distortion_avg": "-log p(x|z) averaged over K draws of z, nats",
    "rate_avg": "KL(q(z|x) || p(z)) averaged over K draws (equal to rate where it is closed form), nats",
    "nll": "importance-sampled -log p(x) with K samples (Burda et al., 2016), nats; the best anomaly score",
}


# the scores that are -log of a probability of x: infinite for a value the model cannot produce
NEG_LOG_SCORES = ("loss", "neg_elbo", "distortion", "neg_elbo_avg", "distortion_avg", "nll")


def score_columns(model: VAE, samples: int = 1) -> list[str]:
    """The score columns `vaekit score` writes for this model and K, in order."""
    if model.kind == "ae":
        return ["distortion", "squared_error"]
    one = ["neg_elbo", "distortion", "rate", "squared_error"]
    return one + (["neg_elbo_avg", "distortion_avg", "rate_avg", "nll"] if samples > 1 else [])


@torch.no_grad()
def sampled_scores(
    model: VAE,
    x,
    samples: int = 1,
    beta=None,
    labels=None,
    seed: int = 0,
    objective: objectives.Objective | None = None,
    batch_size: int = EVAL_BATCH,
) -> dict[str, np.ndarray]:
    """Per-example anomaly scores from K draws z_k ~ q(z|x), each (n,) float64, nats.

    One-draw values (the first draw, through the objective: the one loss path) sit next to the
    K-draw averages, which have a K-times smaller variance over seeds:
    - "loss", the objective's terms ("distortion", "rate", ...), "squared_error" (summed squared
      error of the reconstruction at q's mean): from draw 1, exactly `per_example_terms`;
    - "distortion_avg" = -(1/K) sum_k log p(x|z_k); "rate_avg" = (1/K) sum_k KL_k (the closed-form
      KL for N(0, I), else log q(z_k|x) - log p(z_k)); "neg_elbo" (draw 1) and "neg_elbo_avg";
    - "nll": -log (1/K) sum_k p(x|z_k) p(z_k) / q(z_k|x), the importance-sampled -log p(x)
      (Burda et al., 2016, eq. 8: -IWAE_K; biased upward, less so as K grows), the better anomaly
      score; it uses the same K draws.
    A deterministic autoencoder has one code per example: it gets "loss", "distortion" and
    "squared_error" only, and K must be 1.

    Args:
        x: (n, *data_shape) in the likelihood's units, or a `Batch`.
        samples: K >= 1.
        beta: the condition of a beta-conditioned model, (n,) or one value for all.
        labels: the class condition of a label-conditional model, (n,) or one for all.
        seed: the draws; per batch of `batch_size`, draw 1's noise (batch, latent_dim) and then the
            other K - 1 from one generator, so draw 1 is the noise `loss_terms` uses and its
            one-draw scores are reproduced for every K. The next batch's draws follow, so the
            same seed and batch size give the same numbers (but K changes later batches' draws).
    Raises `VaekitError` for K < 1, or K > 1 on a deterministic autoencoder.
    """
    samples = int(samples)
    if samples < 1:
        raise VaekitError(f"The number of samples K must be at least 1, not {samples}.")
    if model.kind == "ae" and samples > 1:
        raise VaekitError(
            "A deterministic autoencoder has one code per example, so there is nothing to average: "
            "use --samples 1 (or train a VAE)."
        )
    gen = torch.Generator().manual_seed(seed)
    data_dim = max(math.prod(model.data_shape), getattr(model.prior, "n_components", 0) * model.latent_dim)
    parts: dict[str, list[torch.Tensor]] = {}
    for b, out, first in _through_objective(model, x, objective, beta, labels, gen, math.inf, batch_size):
        values = {"loss": out.loss, **out.terms, "squared_error": _squared_error(model, b, out)}
        if model.kind == "vae":
            q = out.outputs.q
            # draws 2..K follow draw 1 (the objective's, from the same generator) for this batch
            rest = torch.randn(samples - 1, len(b), model.latent_dim, generator=gen).to(first.device)
            noise = torch.cat([first[None], rest])
            values["neg_elbo"] = out.outputs.distortion + out.outputs.rate
            k_chunk = max(1, min(samples, CHUNK_FLOATS // max(1, len(b) * data_dim)))
            log_px, rate, log_w = [], [], []
            for k0 in range(0, samples, k_chunk):
                z = q.mean + q.stddev * noise[k0 : k0 + k_chunk]  # (k, batch, latent)
                lp, lw = _log_px_and_weights(model, b, q, z)
                log_px.append(lp)
                rate.append(model.prior.kl(q, z).expand_as(lp))
                log_w.append(lw)
            log_px, rate, log_w = torch.cat(log_px), torch.cat(rate), torch.cat(log_w)
            values["distortion_avg"] = -log_px.mean(0)
            values["rate_avg"] = rate.mean(0)
            values["neg_elbo_avg"] = values["distortion_avg"] + values["rate_avg"]
            values["nll"] = -(torch.logsumexp(log_w, 0) - math.log(samples))
        for name, value in values.items():
            parts.setdefault(name, []).append(value.detach().double().cpu())
    return {name: torch.cat(chunks).numpy() for name, chunks in parts.items()}


def nearest_neighbors(codes: np.ndarray, index: int, k: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest codes to codes[index] (Euclidean), excluding itself: (indices, distances)."""
    from sklearn.neighbors import NearestNeighbors

    k = min(k, len(codes) - 1)
    nn = NearestNeighbors(n_neighbors=k + 1).fit(codes)
    dist, idx = nn.kneighbors(codes[index : index + 1])
    keep = idx[0] != index
    return idx[0][keep][:k], dist[0][keep][:k]


def active_units(means: np.ndarray, threshold: float = 0.01) -> int:
    """Dimensions whose posterior mean varies over x: Cov_x(E_q[z_j]) > 0.01 (Burda et al., 2016)."""
    return int((np.var(means, axis=0) > threshold).sum())


def knn_accuracy(train_codes, train_y, test_codes, test_y, k: int = 5) -> float:
    """Test accuracy of a k-nearest-neighbour classifier on the latent means."""
    from sklearn.neighbors import KNeighborsClassifier

    clf = KNeighborsClassifier(n_neighbors=min(k, len(train_codes)))
    return float(clf.fit(train_codes, train_y).score(test_codes, test_y))


def logistic_accuracy(train_codes, train_y, test_codes, test_y) -> float:
    """Test accuracy of a logistic-regression probe on the standardised latent means."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if len(np.unique(train_y)) < 2:
        return float("nan")
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    return float(clf.fit(train_codes, train_y).score(test_codes, test_y))


def factor_probes(data, train_means: np.ndarray, test_means: np.ndarray, max_train: int = 5000) -> dict:
    """k-NN and logistic-regression accuracy of each ground-truth factor from the latent means
    (factor values discretised to at most 20 classes; up to `max_train` training examples)."""
    out = {}
    names = data.factor_names or [f"factor_{i}" for i in range(data.factors.shape[1])]
    train_f, test_f = data.factors[data.train_idx], data.factors[data.test_idx]
    for j, name in enumerate(names):
        column = np.concatenate([train_f[:, j], test_f[:, j]])
        values = np.unique(column)
        if len(values) > 20:
            edges = np.quantile(column, np.linspace(0, 1, 21)[1:-1])
            classes = np.digitize(column, edges)
        else:
            classes = np.searchsorted(values, column)
        y_train, y_test = classes[: len(train_f)][:max_train], classes[len(train_f) :]
        out[name] = {
            "knn_accuracy": knn_accuracy(train_means[:max_train], y_train, test_means, y_test),
            "logistic_accuracy": logistic_accuracy(train_means[:max_train], y_train, test_means, y_test),
            "chance": float(np.bincount(y_test).max() / len(y_test)),
        }
    return out


def aggregate_posterior_kl(means: np.ndarray, variances: np.ndarray, prior=None) -> float:
    """KL(N(m, S) || p(z)) in nats, where N(m, S) moment-matches the aggregate posterior
    q(z) = E_x q(z|x): m = mean of the means (n, latent_dim), S = Cov(means) + mean of the
    posterior variances (n, latent_dim). `prior`: a `vaekit.priors.Prior` (default N(0, I), in
    closed form; a mixture prior by Monte Carlo). Lower is better: 0 when q(z) matches N(0, I)
    in its first two moments; for a mixture prior even a perfect fit stays above 0 (no Gaussian
    is a mixture); large for an unregularised code."""
    from vaekit import priors

    m = torch.as_tensor(means, dtype=torch.float64)
    centred = m - m.mean(0)
    cov = centred.T @ centred / max(1, len(m) - 1)
    cov = cov + torch.diag(torch.as_tensor(variances, dtype=torch.float64).mean(0))
    cov = cov + 1e-9 * torch.eye(len(cov), dtype=torch.float64)
    prior = prior if prior is not None else priors.StandardNormal(len(cov))
    return prior.kl_from_gaussian(m.mean(0), cov)


MI_EXAMPLES = 5000  # examples behind the mutual-information estimate (its cost grows as their square)


def mutual_information(means: np.ndarray, variances: np.ndarray, seed: int = 0) -> float:
    """I_q(x; z) in nats: the mutual information between an example and its code under the
    encoder's joint q(x, z) = p_data(x) q(z|x), for Gaussian posteriors with means and variances
    (n, latent_dim): E[log q(z|x) - log q(z)] with q(z) = (1/n) sum_m q(z|x_m), the aggregate
    posterior of the n examples, at one seeded draw z ~ q(z|x) per example (the estimator of
    Hoffman & Johnson, 2016, "ELBO surgery", whose decomposition it follows: the rate is
    I_q(x; z) plus KL(q(z) || p(z))). Between 0 (every code the same whatever x) and log n (codes
    that tell every example apart); above MI_EXAMPLES examples a seeded subset of that size is
    used."""
    means = torch.as_tensor(np.asarray(means), dtype=torch.float64)
    std = torch.as_tensor(np.asarray(variances), dtype=torch.float64).sqrt()
    gen = torch.Generator().manual_seed(seed)
    if len(means) > MI_EXAMPLES:
        keep = torch.randperm(len(means), generator=gen)[:MI_EXAMPLES]
        means, std = means[keep], std[keep]
    n = len(means)
    z = means + std * torch.randn(means.shape, generator=gen, dtype=torch.float64)
    log_q_given_own = torch.distributions.Normal(means, std).log_prob(z).sum(1)
    # log q(z_i | x_m) for every pair as matrix products: with w = 1 / s_m^2,
    # sum_j (z_ij - m_mj)^2 w_mj = z_i^2 . w_m - 2 z_i . (m_m w_m) + m_m^2 . w_m
    w = std.pow(-2)
    centre = means.mean(0)  # the quadratic does not change; centred, it cancels less
    zc, mc = z - centre, means - centre
    quadratic = (zc**2) @ w.T - 2 * zc @ (mc * w).T + ((mc**2) * w).sum(1)  # (n, n)
    log_norm = -torch.log(std).sum(1) - 0.5 * means.shape[1] * math.log(2 * math.pi)  # (n,)
    log_q_marginal = torch.logsumexp(log_norm - 0.5 * quadratic, dim=1) - math.log(n)
    return float((log_q_given_own - log_q_marginal).mean())


def per_dim_kl(means: np.ndarray, variances: np.ndarray, prior=None) -> np.ndarray:
    """Average KL(q(z_j|x) || p(z_j)) per latent dimension (latent_dim,), nats; means and
    variances (n, latent_dim). p(z_j) is the prior's marginal (default N(0, 1), closed form)."""
    from vaekit import priors

    means, variances = torch.as_tensor(means), torch.as_tensor(variances)
    prior = prior if prior is not None else priors.StandardNormal(means.shape[1])
    with torch.no_grad():
        return prior.marginal_kl(means, variances).double().numpy()


METRIC_NAMES = summary_keys.METRICS  # the disentanglement metrics, from their one registry


def disentanglement(
    model: VAE,
    data,
    metrics=METRIC_NAMES,
    preset: str = "fast",
    seed: int = 0,
    dci_method: str = "gbt",
    overrides: dict | None = None,
) -> dict:
    """The disentanglement metrics of `vaekit.metrics` on the model's latent means, following
    disentanglement_lib's definitions (Locatello et al., 2019). `overrides`: per metric, settings
    replacing the preset's (`metrics.compute_all`), e.g. {"mig": {"num_train": 10_000}}. Returns
    the flat scores plus `matrices` (latent_dim x n_factors), `seconds` and `settings` (preset,
    sample counts)."""
    from vaekit import metrics as m

    if model.conditional:
        raise VaekitError(
            "Disentanglement metrics need codes of x alone, and a label-conditional run's codes depend on "
            "its labels; evaluate a run trained without --condition labels."
        )
    shape = model.data_shape

    def represent(observations: np.ndarray) -> np.ndarray:
        x = np.asarray(observations, dtype=np.float32).reshape(-1, *shape)
        return encode_means(model, x)[0]

    source = data.factor_source()
    result = m.compute_all(
        represent,
        source,
        seed=seed,
        preset=preset,
        metrics=tuple(metrics),
        dci_method=dci_method,
        overrides=overrides,
    )
    result["matrices"] = {k: np.asarray(v).tolist() for k, v in result["matrices"].items()}
    result["factor_names"] = list(source.factor_names)
    return _jsonable(result)


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return obj


def versions() -> dict:
    """The versions of vaekit, torch, scikit-learn, numpy and Python (summary.json's `versions`)."""
    import sklearn

    return {
        "vaekit": __version__,
        "torch": str(torch.__version__),
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def bits_per_dim(model: VAE, data, nll_nats) -> tuple[float | None, str]:
    """-log2 p(x) per data dimension, in the convention that applies to the data, from `nll_nats`
    (-log p(x) per example of the data as the model sees it, nats): (bits/dim or None, the
    convention in words).

    - Integer data 0..M scaled to [0, 1] (pixels, `full_scale` M = 2^k - 1) with a density
      (gaussian, laplace, continuous-bernoulli): the discrete data's bits/dim as papers report
      it, the density of the [0, 1]-scaled values plus D log 2^k (bins of width 2^-k; uniform
      dequantisation, Theis et al. 2016, section 3.1), so a uniform density gives exactly k.
    - Binary data (0/1) with a Bernoulli likelihood: a probability already; nll / (D ln 2).
    - A Bernoulli likelihood on data that are not binary: not a probability of the data, so None.
    - Other data (floats, typed tables): the density (tables: per-column probabilities and
      densities) in the data's own units, nll_user / (D ln 2), comparable only between models of
      the same data.
    """
    if nll_nats is None or nll_nats is False or not math.isfinite(nll_nats):
        return None, "no finite nll"
    dims = data.data_dim
    name = getattr(model.likelihood, "name", "")
    binary = all(bool(np.isin(part, (0.0, 1.0)).all()) for part in chunks(data.x_test))
    if name == "bernoulli":
        if not binary:
            return None, (
                "none: a Bernoulli likelihood on data that are not all 0 or 1 (grey levels) is not a "
                "probability of the data; train with continuous-bernoulli or gaussian for a density"
            )
        return nll_nats / (dims * math.log(2)), "discrete: the Bernoulli probability of binary data"
    if binary and name != "columns":  # 0/1 values (as the model sees them, e.g. --binarize): 1-bit data
        return _finite((nll_nats + dims * math.log(2)) / (dims * math.log(2))), (
            "discrete: binary data, the density of the 0/1 values plus D log 2 (uniform dequantisation, "
            "Theis et al. 2016)"
        )
    user_nll = nll_nats - model.log_jacobian()  # the density in the user's units
    full_scale = data.extra.get("full_scale")
    if full_scale is not None and name != "columns":
        levels = float(full_scale) + 1.0
        # density of the [0, 1]-scaled values (x / M), then D log 2^k for the bins of width 1 / 2^k
        unit_nll = user_nll - dims * math.log(float(full_scale))
        bits = (unit_nll + dims * math.log(levels)) / (dims * math.log(2))
        k = math.log2(levels)
        what = f"{k:g}-bit" if k.is_integer() else f"{levels:g}-level"
        return _finite(bits), (
            f"discrete: {what} integer data, the density of the values scaled to [0, 1] plus "
            f"D log {levels:g} (uniform dequantisation, Theis et al. 2016)"
        )
    return _finite(user_nll / (dims * math.log(2))), (
        "density: -log2 p(x) per dimension of the data in its own units (continuous data; comparable "
        "only between models of the same data)"
    )


def _finite(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def summarize(model: VAE, data, nll_samples: int = 100, beta=None, seed: int = 0, objective=None) -> dict:
    """The final evaluation on the test split: the keys of `summary.json`. `loss` is the
    objective's (default: the model's own) at the end of training, from the same loss path as
    training; every other term the objective names is stored as `<name>` too, and their names
    as `objective_terms`."""
    beta_value = model.beta if beta is None else float(beta)
    x_test, x_train = data.x_test, data.x_train
    labels_test, labels_train = model.data_classes(data, "test"), model.data_classes(data, "train")
    terms = loss_terms(model, x_test, objective, beta, labels_test, seed, squared_error=True)
    distortion = float(terms["distortion"].mean())
    rate = float(terms["rate"].mean()) if "rate" in terms else math.nan
    loss = float(terms["loss"].mean())
    out: dict = {
        "beta": beta_value,
        "n_test": len(x_test),
        "elbo": _finite(-(distortion + rate)),
        "rate": _finite(rate),
        "distortion": distortion,
        "loss": loss,
    }
    own = [n for n in terms if n not in ("distortion", "rate", "loss", "elbo", "squared_error")]
    for name in own:  # the objective's own further terms (e.g. a TC estimate)
        out[name] = float(terms[name].mean())
    if own:
        out["objective_terms"] = own
    d = np.asarray(terms["distortion"], np.float64)
    out.update(distortion_stderr=_stderr(d), elbo_samples=1)
    if "rate" in terms:
        r = np.asarray(terms["rate"], np.float64)
        out.update(rate_stderr=_stderr(r), elbo_stderr=_stderr(d + r))
    if model.kind == "vae" and nll_samples > 0:
        result = nll(model, x_test, samples=nll_samples, beta=beta, seed=seed, labels=labels_test)
        out.update(
            nll=result.nll, nll_stderr=result.stderr, nll_samples=nll_samples, iwae_bound=result.iwae_bound
        )
        # the ELBO, distortion and rate over the same K draws: elbo <= iwae_bound for every example
        elbo, d = result.elbo_per_example, result.distortion_per_example
        out.update(
            elbo=_finite(float(elbo.mean())),
            elbo_stderr=_stderr(elbo),
            distortion=float(d.mean()),
            distortion_stderr=_stderr(d),
            rate=_finite(float((-elbo - d).mean())),
            rate_stderr=_stderr(-elbo - d),
            elbo_samples=nll_samples,
        )
        if data.scaling.name == "standard":
            out["nll_user_units"] = result.nll - model.log_jacobian()
    figure = out.get("nll", out["elbo"] is not None and -out["elbo"])
    out["bits_per_dim"], out["bits_per_dim_convention"] = bits_per_dim(model, data, figure)
    out["mse"] = float(terms["squared_error"].mean() / data.data_dim)
    train_means, _ = encode_means(model, x_train, beta, labels=labels_train)
    means, variances = encode_means(model, x_test, beta, labels=labels_test)
    notes = []
    # a variance over test codes, and a covariance of latent_dim dimensions, need enough codes
    enough = len(x_test) >= max(MIN_TEST_FOR_STATISTICS, 2 * model.latent_dim)
    out["active_units"] = active_units(means) if enough else None
    if model.kind == "vae":
        out["aggregate_posterior_kl"] = (
            aggregate_posterior_kl(means, variances, model.prior) if enough else None
        )
        out["per_dim_kl"] = [float(v) for v in per_dim_kl(means, variances, model.prior)]
        out["mutual_information"] = mutual_information(means, variances, seed) if enough else None
    if not enough:
        notes.append(
            f"active_units, aggregate_posterior_kl and mutual_information need at least "
            f"{max(MIN_TEST_FOR_STATISTICS, 2 * model.latent_dim)} test examples (there are {len(x_test)}); "
            "they are null. Use a larger --test-size."
        )
    if data.y is not None:
        train_y, test_y = data.labels("train"), data.labels("test")
        if len(np.unique(train_y)) < 2:
            out["knn_accuracy"] = out["logistic_accuracy"] = None
            notes.append("The labels have one class in the training split, so label accuracies are null.")
        else:
            out["knn_accuracy"] = knn_accuracy(train_means, train_y, means, test_y)
            out["logistic_accuracy"] = logistic_accuracy(train_means, train_y, means, test_y)
    if data.factors is not None:
        out["factor_probes"] = factor_probes(data, train_means, means)
    if notes:
        out["notes"] = notes
        for note in notes:
            warnings.warn(note, stacklevel=2)
    out["versions"] = versions()
    return out


IMPUTE_METHODS = ("mean", "draw")


@torch.no_grad()
def impute(
    model: VAE,
    x,
    method: str = "mean",
    samples: int = 100,
    seed: int = 0,
    batch_size: int = EVAL_BATCH,
    labels=None,
) -> np.ndarray:
    """Fill the missing cells (NaN) of rows `x` (n, d), in the model's units, from
    p(x_missing | x_observed), by self-normalised importance sampling over K = `samples` draws
    z_k ~ q(z | x_observed) with weights w_k proportional to p(x_observed | z_k) p(z_k) / q(z_k | x_observed)
    (Mattei & Frellsen, 2019, MIWAE, section 4):

    - `mean`: each missing cell's conditional expectation sum_k w_k E[x | z_k] (for a binary or
      categorical column, the value of largest sum_k w_k p(x | z_k); for a count, rounded by
      `to_user`); for positive and bounded columns the weighted location on the model scale
      (the median in the user's units);
    - `draw`: one z_k resampled by its weight, then x ~ p(x | z_k): a draw from the model's
      conditional, for multiple imputation (call with several seeds).

    Observed cells are returned unchanged. Returns (n, d) float64. Raises `VaekitError` for an
    unknown method, K < 1, or a model whose likelihood is not a typed table's."""
    from vaekit import columns as typed

    if method not in IMPUTE_METHODS:
        raise VaekitError(
            f"The imputation method must be one of {', '.join(IMPUTE_METHODS)}, not {method!r}."
        )
    if int(samples) < 1:
        raise VaekitError(f"samples must be at least 1, not {samples}.")
    schema = getattr(model.likelihood, "schema", None)
    if schema is None:
        raise VaekitError("Imputation fills the missing cells of a table; this run was not trained on one.")
    was_training = model.training
    model.eval()
    device = _device(model)
    batch = _as_batch(x, None, labels)
    out = []
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for start in range(0, len(batch), batch_size):
                b = batch[start : start + batch_size].to(device)
                q = model.encode(b)
                z = q.sample((int(samples),))  # (K, B, latent)
                px = model.decode(z, b.beta, b.labels)
                log_w = px.log_prob(b.x) + model.prior.log_prob(z) - q.log_prob(z)
                w = torch.softmax(log_w, dim=0)  # (K, B)
                filled = torch.empty_like(b.x)
                for j, column in enumerate(schema.columns):
                    params = px._column_params(j)  # (K, B, n_params)
                    if method == "draw":
                        pick = torch.multinomial(w.T, 1).squeeze(1)  # one z_k per row
                        chosen = params[pick, torch.arange(len(pick), device=device)]
                        filled[:, j] = column.sample(chosen)
                    elif isinstance(column, typed.Categorical):
                        probs = (w.unsqueeze(-1) * torch.softmax(params, -1)).sum(0)
                        filled[:, j] = probs.argmax(-1).to(filled.dtype)
                    elif isinstance(column, typed.Binary):
                        p = (w * torch.sigmoid(params[..., 0])).sum(0)
                        filled[:, j] = (p > 0.5).to(filled.dtype)
                    elif isinstance(
                        column, typed.NonNegative
                    ):  # the likelier branch: zero, or the positive part
                        zero = (w * torch.sigmoid(params[..., 0])).sum(0) > 0.5
                        positive = (
                            w
                            * column.point(
                                params.clone().index_fill_(-1, torch.tensor([0], device=params.device), -1e4)
                            )
                        ).sum(0)
                        filled[:, j] = torch.where(zero, torch.full_like(positive, column.ZERO), positive)
                    else:
                        filled[:, j] = (w * column.point(params)).sum(0)
                out.append(torch.where(torch.isnan(b.x), filled, b.x).double().cpu())
    finally:
        model.train(was_training)
    return torch.cat(out).numpy()
