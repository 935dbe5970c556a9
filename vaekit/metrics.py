"""Supervised disentanglement metrics, following the study of Locatello et al. (2019).

Locatello, Bauer, Lucic, Raetsch, Gelly, Schoelkopf & Bachem, "Challenging Common Assumptions in
the Unsupervised Learning of Disentangled Representations", ICML 2019, evaluated every model with
the metrics of `disentanglement_lib` under fixed settings (its `unsupervised_study_v1` configs).
This module re-implements those metrics with the same definitions and the same default settings,
written from the papers and the published formulas, on top of numpy, scipy and scikit-learn only
(the caller turns a model into a numpy function):

* :func:`mig` -- Mutual Information Gap, Chen et al. (2018); 10,000 points, 20-bin histogram.
* :func:`dci` -- Disentanglement/Completeness/Informativeness, Eastwood & Williams (2018);
  gradient-boosted trees, 10,000 train / 5,000 test points.
* :func:`sap` -- SAP score, Kumar et al. (2018); ``LinearSVC(C=0.01)``, discrete factors,
  10,000 / 5,000 points.
* :func:`modularity_explicitness` -- Ridgeway & Mozer (2018); 20-bin histogram MI, logistic
  regression ROC-AUC, 10,000 / 5,000 points.
* :func:`betavae_score` -- Higgins et al. (2017); 64 pairs per point, 10,000 train / 5,000 eval.
* :func:`factorvae_score` -- Kim & Mnih (2018); 64 points per vote, 10,000 / 5,000 votes, 10,000
  points for the global variances, dimensions with std < 0.05 pruned.

Conventions (different from disentanglement_lib, which stores arrays transposed):

* codes are ``(n_points, latent_dim)`` and factors ``(n_points, n_factors)`` whole numbers
  (discrete factors) of any sign, offset or spacing: a column's index is its value's rank;
* every matrix a metric returns is ``(latent_dim, n_factors)``: row = code dimension, column =
  factor;
* randomness comes from one ``np.random.default_rng(seed)`` per metric call (the sklearn
  estimators get integer seeds drawn from it), so the same seed and settings give the same
  numbers; :func:`compute_all` gives every metric the same seed, so its numbers equal those of
  the individual calls.

Interfaces:

* :class:`FactorData` -- the protocol a ground-truth data set implements (factor sizes and names,
  ``sample_factors``, ``sample_observations``); :class:`ArrayFactorData` wraps plain arrays;
* a *representation function* ``represent(observations) -> codes`` of shape ``(batch,
  latent_dim)`` (vaekit passes the encoder mean);
* ``<metric>(represent, data, seed, ...)`` runs the metric end to end;
  ``<metric>_from_codes(...)`` computes it from arrays of codes and factors where the metric is
  defined on such pairs (MIG, DCI, SAP, modularity/explicitness);
* :func:`compute_all` runs a preset (``"reference"`` = the defaults above, ``"fast"`` = 1/5 of
  every sample count, ``"quick"`` = 1/50) and returns a flat dict of floats plus matrices,
  timings and settings.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import scipy.spatial
import scipy.stats
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import Lasso, LogisticRegression
from sklearn.metrics import confusion_matrix, mutual_info_score, roc_auc_score
from sklearn.multiclass import OneVsRestClassifier
from sklearn.svm import LinearSVC
from sklearn.utils.parallel import Parallel, delayed

from vaekit import summary_keys

__all__ = [
    "ALL_METRICS",
    "PRESETS",
    "ArrayFactorData",
    "BetaVAEResult",
    "DCIResult",
    "FactorData",
    "FactorVAEResult",
    "MIGResult",
    "ModularityExplicitnessResult",
    "Representation",
    "SAPResult",
    "betavae_score",
    "compute_all",
    "dci",
    "dci_from_codes",
    "dci_from_importance",
    "discrete_entropy",
    "discrete_mutual_information",
    "factorvae_score",
    "histogram_discretize",
    "mig",
    "mig_from_codes",
    "modularity_explicitness",
    "modularity_explicitness_from_codes",
    "modularity_from_mutual_information",
    "sap",
    "sap_from_codes",
]

Representation = Callable[[np.ndarray], np.ndarray]
"""Maps a batch of observations ``(batch, ...)`` to codes ``(batch, latent_dim)``."""

SeedLike = int | np.random.Generator

DEFAULT_EVAL_BATCH = 1024  # observations per call of the representation function

# the metric names, declared with the scores each writes in `vaekit.summary_keys` (one registry)
ALL_METRICS: tuple[str, ...] = summary_keys.METRICS


# --------------------------------------------------------------------------------------------
# Data interface
# --------------------------------------------------------------------------------------------


@runtime_checkable
class FactorData(Protocol):
    """Ground-truth data with discrete factors of variation that can be sampled.

    Attributes:
        factor_sizes: number of values of each factor, length ``n_factors``.
        factor_names: a name per factor, length ``n_factors``.
    """

    factor_sizes: Sequence[int]
    factor_names: Sequence[str]

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Draw ``n`` factor combinations: ``(n, n_factors)`` int indices in ``[0, size)``."""
        ...

    def sample_observations(self, factors: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Observations ``(n, ...)`` whose factors are the rows of ``factors`` ``(n, n_factors)``."""
        ...


class ArrayFactorData:
    """A :class:`FactorData` over plain arrays of observations and their factors.

    The data need not be a full factor grid.

    Factors:
        * an integer (or bool) ``factors`` array is used as indices as is (must be >= 0); the
          size of factor ``j`` is ``max(factors[:, j]) + 1``;
        * a floating-point array holds factor *values* and is discretised per column: with at
          most ``num_bins`` (20) distinct values, the index is the rank of the value
          (``np.unique(..., return_inverse=True)``); with more, the column is cut into
          ``num_bins`` equal-width bins (as disentanglement_lib's ``_histogram_discretize``)
          and the non-empty bins are renumbered ``0..m-1``. ``factor_values[j]`` holds the
          value of each index (the unique value, or the mean of the values in the bin).

    Sampling:
        * :meth:`sample_factors` draws rows of the factor table at random (``"empirical"``, the
          default: for a full grid stored once per combination this is the uniform distribution
          over the grid that disentanglement_lib uses) or each factor independently and
          uniformly over ``0..size-1`` (``factor_sampling="uniform"``);
        * :meth:`sample_observations` returns, for each requested factor row, a uniformly random
          example with exactly these factors if one exists, otherwise a random example of the
          nearest existing combination (Euclidean distance between index vectors, ties broken by
          the KD-tree). Metrics then label the substitute with the *requested* factors, so keep
          the substitution rare: with empirical sampling it only happens in the BetaVAE and
          FactorVAE scores, which fix one factor of otherwise random rows.

    Args:
        x: ``(N, ...)`` observations.
        factors: ``(N, n_factors)`` (or ``(N,)`` for one factor) indices or values.
        factor_names: optional names; default ``factor_0``, ``factor_1``, ...
        num_bins: bins used for float columns with more than ``num_bins`` distinct values.
        factor_sampling: ``"empirical"`` or ``"uniform"`` (see above).
    """

    def __init__(
        self,
        x: np.ndarray,
        factors: np.ndarray,
        factor_names: Sequence[str] | None = None,
        *,
        num_bins: int = 20,
        factor_sampling: str = "empirical",
    ) -> None:
        if not getattr(x, "is_lazy_rows", False):  # rows read on demand stay so: only matches are read
            x = np.asarray(x)
        f = np.asarray(factors)
        if f.ndim == 1:
            f = f[:, None]
        if f.ndim != 2 or f.shape[1] == 0:
            raise ValueError(f"factors must have shape (N, n_factors), got {f.shape}")
        if x.ndim == 0 or x.shape[0] != f.shape[0] or x.shape[0] == 0:
            raise ValueError(
                f"x and factors need the same non-zero number of rows, got {x.shape} and {f.shape}"
            )
        if factor_sampling not in ("empirical", "uniform"):
            raise ValueError("factor_sampling must be 'empirical' or 'uniform'")
        if num_bins < 1:
            raise ValueError("num_bins must be >= 1")
        if np.issubdtype(f.dtype, np.integer) or f.dtype == bool:
            # integer factors of any sign, offset or spacing are values, ranked as float ones are
            ranked = [np.unique(c, return_inverse=True) for c in f.astype(np.int64).T]
            idx = np.stack([inverse.reshape(-1) for _, inverse in ranked], axis=1).astype(np.int64)
            values = [uniq.astype(np.float64) for uniq, _ in ranked]
            sizes = [len(v) for v in values]
        elif np.issubdtype(f.dtype, np.floating):
            if not np.all(np.isfinite(f)):
                raise ValueError("factor values must be finite")
            cols, values = zip(*(_discretize_factor(c, num_bins) for c in f.T), strict=True)
            idx = np.stack(cols, axis=1)
            values = list(values)
            sizes = [len(v) for v in values]
        else:
            raise ValueError(f"factors must be numeric, got dtype {f.dtype}")
        if factor_names is None:
            factor_names = [f"factor_{j}" for j in range(idx.shape[1])]
        if len(factor_names) != idx.shape[1]:
            raise ValueError(f"{len(factor_names)} factor names for {idx.shape[1]} factors")

        self.x = x
        self.factor_indices: np.ndarray = idx
        self.factor_sizes: tuple[int, ...] = tuple(sizes)
        self.factor_names: tuple[str, ...] = tuple(str(n) for n in factor_names)
        self.factor_values: list[np.ndarray] = values
        self.factor_sampling = factor_sampling
        self.num_factors = idx.shape[1]

        # Lookup table: examples grouped by factor combination (mixed-radix key of the indices;
        # a dict of tuples in the unlikely case that the key would overflow int64).
        self._use_radix = math.prod(sizes) < 2**62
        if self._use_radix:
            keys = np.ravel_multi_index(tuple(idx.T), self.factor_sizes).astype(np.int64)
        else:  # pragma: no cover - more than 2**62 combinations
            keys = np.unique(idx, axis=0, return_inverse=True)[1].reshape(-1).astype(np.int64)
        order = np.argsort(keys, kind="stable")
        ukeys, starts, counts = np.unique(keys[order], return_index=True, return_counts=True)
        self._order, self._ukeys, self._starts, self._counts = order, ukeys, starts, counts
        self._combos = idx[order[starts]]  # (U, n_factors) existing combinations
        self._tree: scipy.spatial.cKDTree | None = None

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def _group_of(self, factors: np.ndarray) -> np.ndarray:
        """Index into the existing combinations for each factor row (nearest if missing)."""
        if self._use_radix:
            keys = np.ravel_multi_index(tuple(factors.T), self.factor_sizes).astype(np.int64)
            group = np.minimum(np.searchsorted(self._ukeys, keys), len(self._ukeys) - 1)
            found = self._ukeys[group] == keys
        else:  # pragma: no cover - more than 2**62 combinations
            table = {tuple(r): g for g, r in enumerate(self._combos.tolist())}
            group = np.asarray([table.get(tuple(r), -1) for r in factors.tolist()], np.int64)
            found = group >= 0
        if not found.all():
            if self._tree is None:
                self._tree = scipy.spatial.cKDTree(self._combos.astype(np.float64))
            _, near = self._tree.query(factors[~found].astype(np.float64))
            group[~found] = near
        return group

    def match_examples(self, factors: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Example indices ``(n,)`` for the factor rows ``(n, n_factors)`` (see class doc)."""
        factors = self._check_factors(factors)
        group = self._group_of(factors)
        offset = np.floor(rng.random(len(group)) * self._counts[group]).astype(np.int64)
        return self._order[self._starts[group] + offset]

    def _check_factors(self, factors: np.ndarray) -> np.ndarray:
        f = np.asarray(factors)
        if f.ndim != 2 or f.shape[1] != self.num_factors:
            raise ValueError(f"factors must have shape (n, {self.num_factors}), got {f.shape}")
        if f.size and not np.issubdtype(f.dtype, np.integer):
            raise ValueError("factors must be integer indices")
        f = f.astype(np.int64)
        if f.size and ((f < 0).any() or (f >= np.asarray(self.factor_sizes)).any()):
            raise ValueError(f"factor indices out of range for sizes {self.factor_sizes}")
        return f

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Draw ``n`` factor rows: ``(n, n_factors)`` int64 (empirical or uniform, see class)."""
        if self.factor_sampling == "empirical":
            return self.factor_indices[rng.integers(0, len(self), size=n)].copy()
        return np.stack([rng.integers(0, s, size=n) for s in self.factor_sizes], axis=1)

    def sample_observations(self, factors: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Observations ``(n, ...)`` for factor rows ``(n, n_factors)`` (see class doc)."""
        return self.x[self.match_examples(factors, rng)]

    def sample_observations_from_factors(self, factors: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Alias of :meth:`sample_observations` (disentanglement_lib naming)."""
        return self.sample_observations(factors, rng)

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``n`` factor rows and observations: ``((n, n_factors), (n, ...))``."""
        factors = self.sample_factors(n, rng)
        return factors, self.sample_observations(factors, rng)


def _discretize_factor(values: np.ndarray, num_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(N,)`` and the value of each index for one column of continuous factor values."""
    uniq, inverse = np.unique(values, return_inverse=True)
    if len(uniq) <= num_bins:
        return inverse.reshape(-1).astype(np.int64), uniq.astype(np.float64)
    bins = histogram_discretize(values[:, None], num_bins)[:, 0]
    used, inverse = np.unique(bins, return_inverse=True)
    inverse = inverse.reshape(-1).astype(np.int64)
    means = np.bincount(inverse, weights=values) / np.bincount(inverse)
    return inverse, means


# --------------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------------


def _rng(seed: SeedLike) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _sk_seed(rng: np.random.Generator) -> int:
    """An integer seed for a scikit-learn estimator, drawn from ``rng``."""
    return int(rng.integers(0, 2**31 - 1))


def _n_factors(data: FactorData) -> int:
    return len(data.factor_sizes)


def _as_codes(z: Any, n: int) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2 or z.shape[0] != n:
        raise ValueError(f"the representation function must return (batch, latent_dim), got {z.shape}")
    if not np.all(np.isfinite(z)):
        raise ValueError("the representation function returned NaN or Inf")
    return z


def _represent_factors(
    represent: Representation,
    data: FactorData,
    factors: np.ndarray,
    rng: np.random.Generator,
    eval_batch_size: int,
) -> np.ndarray:
    """Codes ``(n, latent_dim)`` of observations sampled for the factor rows ``(n, n_factors)``."""
    n = len(factors)
    if n == 0:
        raise ValueError("need at least one point")
    step = max(1, int(eval_batch_size))
    out = []
    for s in range(0, n, step):
        chunk = factors[s : s + step]
        out.append(_as_codes(represent(data.sample_observations(chunk, rng)), len(chunk)))
    dims = {c.shape[1] for c in out}
    if len(dims) != 1:
        raise ValueError(f"the representation function returned varying latent sizes {dims}")
    return np.concatenate(out, axis=0)


def _sample_codes(
    represent: Representation,
    data: FactorData,
    num_points: int,
    rng: np.random.Generator,
    eval_batch_size: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Sample ``num_points`` factor rows and encode observations: ``(codes, factors)``."""
    if num_points < 1:
        raise ValueError("num_points must be >= 1")
    factors = np.asarray(data.sample_factors(num_points, rng), dtype=np.int64)
    if factors.shape != (num_points, _n_factors(data)):
        raise ValueError(f"sample_factors returned shape {factors.shape}")
    return _represent_factors(represent, data, factors, rng, eval_batch_size), factors


def _sample_train_test(
    represent: Representation,
    data: FactorData,
    num_train: int,
    num_test: int,
    rng: np.random.Generator,
    eval_batch_size: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Independent train and test samples (in that order, from one ``rng``): codes and factors."""
    z_tr, y_tr = _sample_codes(represent, data, num_train, rng, eval_batch_size)
    z_te, y_te = _sample_codes(represent, data, num_test, rng, eval_batch_size)
    return z_tr, y_tr, z_te, y_te


def _check_pair(codes: np.ndarray, factors: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    z = np.asarray(codes, dtype=np.float64)
    y = np.asarray(factors)
    if y.ndim == 1:
        y = y[:, None]
    if z.ndim != 2 or y.ndim != 2 or z.shape[0] != y.shape[0] or z.shape[0] == 0:
        raise ValueError(
            f"{what}: codes (n, latent_dim) and factors (n, n_factors) need the same non-zero n, "
            f"got {z.shape} and {y.shape}"
        )
    if not np.all(np.isfinite(z)):
        raise ValueError(f"{what}: codes contain NaN or Inf")
    if not np.issubdtype(y.dtype, np.integer):
        if not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
            raise ValueError(f"{what}: factors must be integer indices (discrete factors)")
        y = y.astype(np.int64)
    y = y.astype(np.int64)
    if y.size and y.min() < 0:  # indices: ranking here would differ between a train and a test split
        raise ValueError(
            f"{what}: factor indices must be >= 0 (pass values through ArrayFactorData, which ranks them)"
        )
    return z, y


def histogram_discretize(codes: np.ndarray, num_bins: int = 20) -> np.ndarray:
    """Discretise each column into ``num_bins`` equal-width bins over its own range.

    Same rule as disentanglement_lib's ``_histogram_discretize``: the bin edges of
    ``np.histogram(column, num_bins)`` and ``np.digitize`` against all but the last edge, so the
    labels are ``1..num_bins`` (the maximum falls in the last bin).

    Args:
        codes: ``(n, latent_dim)`` values.
        num_bins: number of bins (20 in the reference).

    Returns:
        ``(n, latent_dim)`` int64 bin labels.
    """
    z = np.asarray(codes, dtype=np.float64)
    out = np.zeros(z.shape, dtype=np.int64)
    for i in range(z.shape[1]):
        edges = np.histogram_bin_edges(z[:, i], bins=num_bins)
        out[:, i] = np.digitize(z[:, i], edges[:-1])
    return out


def discrete_mutual_information(discrete_codes: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """Mutual information (nats) of every discrete code with every factor.

    Args:
        discrete_codes: ``(n, latent_dim)`` integer labels.
        factors: ``(n, n_factors)`` integer labels.

    Returns:
        ``(latent_dim, n_factors)`` matrix of ``sklearn.metrics.mutual_info_score`` values.
    """
    d, k = discrete_codes.shape[1], factors.shape[1]
    m = np.zeros((d, k))
    for i in range(d):
        for j in range(k):
            m[i, j] = mutual_info_score(factors[:, j], discrete_codes[:, i])
    return m


def discrete_entropy(factors: np.ndarray) -> np.ndarray:
    """Empirical entropy (nats) of each factor column: ``(n, n_factors)`` -> ``(n_factors,)``."""
    return np.array([mutual_info_score(c, c) for c in np.asarray(factors).T], dtype=np.float64)


def _standardise(train: np.ndarray, test: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Centre and scale columns with the training mean and (population) std; std 0 -> 1."""
    mean = train.mean(axis=0)
    std = train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return (train - mean) / std, None if test is None else (test - mean) / std


def _top_two_gap(matrix: np.ndarray) -> np.ndarray:
    """Per column: largest minus second largest entry (second = 0 with a single row)."""
    s = np.sort(matrix, axis=0)[::-1]
    second = s[1] if s.shape[0] > 1 else np.zeros(s.shape[1])
    return s[0] - second


# --------------------------------------------------------------------------------------------
# MIG
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class MIGResult:
    """Mutual Information Gap.

    Attributes:
        score: MIG, mean over factors with non-zero entropy of ``per_factor``; in [0, 1].
        per_factor: ``(n_factors,)`` normalised gap of each factor (NaN for a constant factor).
        mutual_information: ``(latent_dim, n_factors)`` MI in nats between discretised codes and
            factors.
        factor_entropy: ``(n_factors,)`` entropy in nats of each factor.
        settings: the settings used.
        sup: MIG-sup (Li et al., 2020, "Progressive Learning and Disentanglement of Hierarchical
            Representations", ICLR, eq. 8): mean over code dimensions of the gap between the two
            largest I(z_j; v_k) / H(v_k) over factors (factors of zero entropy left out); in
            [0, 1], 1 when each code dimension holds at most one factor. MIG asks that each
            factor be in one code; MIG-sup, that each code hold one factor.
    """

    score: float
    per_factor: np.ndarray
    mutual_information: np.ndarray
    factor_entropy: np.ndarray
    settings: dict = field(default_factory=dict)
    sup: float = float("nan")


def mig_from_codes(codes: np.ndarray, factors: np.ndarray, *, num_bins: int = 20) -> MIGResult:
    """Mutual Information Gap of Chen, Li, Grosse & Duvenaud (2018), "Isolating Sources of
    Disentanglement in Variational Autoencoders", NeurIPS 2018.

    As disentanglement_lib (``discrete_mig``): each code dimension is discretised into
    ``num_bins`` = 20 equal-width bins (:func:`histogram_discretize`), ``I(z_i; v_k)`` is
    ``sklearn.metrics.mutual_info_score`` between bins and factor indices, ``H(v_k)`` the
    empirical factor entropy, and

        MIG = mean_k (I_(1)k - I_(2)k) / H(v_k),

    with ``I_(1)k >= I_(2)k`` the two largest MI values of factor k over code dimensions.
    Factors with zero entropy (constant in the sample) are left out of the mean (the reference
    would divide by zero).

    Args:
        codes: ``(n, latent_dim)``.
        factors: ``(n, n_factors)`` integer indices.
        num_bins: histogram bins per code dimension (reference: 20).

    Returns:
        :class:`MIGResult` with the ``(latent_dim, n_factors)`` MI matrix.
    """
    z, y = _check_pair(codes, factors, "mig")
    mi = discrete_mutual_information(histogram_discretize(z, num_bins), y)
    entropy = discrete_entropy(y)
    gap = _top_two_gap(mi)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_factor = np.where(entropy > 0, gap / np.where(entropy > 0, entropy, 1.0), np.nan)
    valid = entropy > 0
    score = float(np.mean(per_factor[valid])) if valid.any() else float("nan")
    # MIG-sup: the same normalised MI, the gap taken per code over factors (Li et al., 2020)
    sup = float(np.mean(_top_two_gap((mi[:, valid] / entropy[valid]).T))) if valid.any() else float("nan")
    settings = {"num_points": int(z.shape[0]), "num_bins": num_bins, "discretizer": "histogram"}
    return MIGResult(score, per_factor, mi, entropy, settings, sup)


def mig(
    represent: Representation,
    data: FactorData,
    seed: SeedLike = 0,
    *,
    num_train: int = 10_000,
    num_bins: int = 20,
    eval_batch_size: int = DEFAULT_EVAL_BATCH,
) -> MIGResult:
    """Mutual Information Gap (Chen et al. 2018) of a representation on ground-truth data.

    Samples ``num_train`` factor rows (reference: 10,000), encodes one observation per row and
    applies :func:`mig_from_codes` (20-bin histogram discretisation, as disentanglement_lib).

    Args:
        represent: observations ``(batch, ...)`` -> codes ``(batch, latent_dim)``.
        data: a :class:`FactorData`.
        seed: int seed or ``np.random.Generator``.
        num_train: number of points (reference 10,000).
        num_bins: histogram bins (reference 20).
        eval_batch_size: observations per call of ``represent`` (does not change the metric).

    Returns:
        :class:`MIGResult`; ``mutual_information`` is ``(latent_dim, n_factors)``.
    """
    rng = _rng(seed)
    z, y = _sample_codes(represent, data, num_train, rng, eval_batch_size)
    res = mig_from_codes(z, y, num_bins=num_bins)
    res.settings.update(num_train=num_train)
    return res


# --------------------------------------------------------------------------------------------
# DCI
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class DCIResult:
    """Disentanglement, Completeness and Informativeness.

    Attributes:
        disentanglement: importance-weighted mean of ``disentanglement_per_code``; in [0, 1].
        completeness: importance-weighted mean of ``completeness_per_factor``; in [0, 1].
        informativeness: mean test accuracy of the per-factor predictors.
        informativeness_train: mean training accuracy.
        importance: ``(latent_dim, n_factors)`` importance matrix.
        disentanglement_per_code: ``(latent_dim,)``.
        completeness_per_factor: ``(n_factors,)``.
        accuracy_per_factor: ``(n_factors,)`` test accuracy.
        settings: the settings used.
    """

    disentanglement: float
    completeness: float
    informativeness: float
    informativeness_train: float
    importance: np.ndarray
    disentanglement_per_code: np.ndarray
    completeness_per_factor: np.ndarray
    accuracy_per_factor: np.ndarray
    settings: dict = field(default_factory=dict)


def dci_from_importance(importance: np.ndarray) -> tuple[float, float, np.ndarray, np.ndarray]:
    """Disentanglement and completeness of an importance matrix (Eastwood & Williams 2018).

    With ``R`` the ``(latent_dim, n_factors)`` non-negative importance matrix (formulas as in
    disentanglement_lib, including its ``1e-11`` smoothing):

    * ``D_i = 1 - H_K(R_i. / sum_k R_ik)`` (entropy in base ``K = n_factors``),
      ``D = sum_i rho_i D_i`` with ``rho_i = sum_k R_ik / sum R``;
    * ``C_k = 1 - H_L(R_.k / sum_i R_ik)`` (base ``L = latent_dim``),
      ``C = sum_k w_k C_k`` with ``w_k = sum_i R_ik / sum R``. When every column sums to the
      same value (the gradient-boosted-tree importances sum to 1 per factor), ``C`` is the plain
      mean of ``C_k``.

    With ``K = 1`` (or ``L = 1``) every ``D_i`` (every ``C_k``) is 1. An all-zero matrix gets
    uniform weights.

    Returns:
        ``(D, C, D_i (latent_dim,), C_k (n_factors,))``.
    """
    r = np.abs(np.asarray(importance, dtype=np.float64))
    if r.ndim != 2:
        raise ValueError(f"importance must be (latent_dim, n_factors), got {r.shape}")
    n_codes, n_factors = r.shape
    if n_factors > 1:
        per_code = 1.0 - scipy.stats.entropy(r.T + 1e-11, base=n_factors)
    else:
        per_code = np.ones(n_codes)
    if n_codes > 1:
        per_factor = 1.0 - scipy.stats.entropy(r + 1e-11, base=n_codes)
    else:
        per_factor = np.ones(n_factors)
    w = r if r.sum() > 0 else np.ones_like(r)
    d_score = float(np.sum(per_code * w.sum(axis=1) / w.sum()))
    c_score = float(np.sum(per_factor * w.sum(axis=0) / w.sum()))
    return d_score, c_score, np.asarray(per_code), np.asarray(per_factor)


def _nearest_label(pred: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Round continuous predictions to the nearest of the sorted ``labels``."""
    if len(labels) == 1:
        return np.full(pred.shape, labels[0])
    pos = np.clip(np.searchsorted(labels, pred), 1, len(labels) - 1)
    lo, hi = labels[pos - 1], labels[pos]
    return np.where(pred - lo <= hi - pred, lo, hi)


def _dci_factor(
    z_tr: np.ndarray,
    y_tr: np.ndarray,
    z_te: np.ndarray,
    y_te: np.ndarray,
    method: str,
    lasso_alpha: float,
    state: int,
) -> tuple[np.ndarray, float, float]:
    """Importance column ``(latent_dim,)``, train and test accuracy for one factor."""
    labels = np.unique(y_tr)
    if len(labels) < 2:  # a constant factor: nothing to learn, no importance
        return np.zeros(z_tr.shape[1]), 1.0, float(np.mean(y_te == labels[0]))
    if method == "gbt":
        model = GradientBoostingClassifier(random_state=state).fit(z_tr, y_tr)
        acc_tr = float(np.mean(model.predict(z_tr) == y_tr))
        acc_te = float(np.mean(model.predict(z_te) == y_te))
        return np.abs(model.feature_importances_), acc_tr, acc_te
    mu, sd = y_tr.mean(), y_tr.std()
    reg = Lasso(alpha=lasso_alpha).fit(z_tr, (y_tr - mu) / sd)
    acc_tr = float(np.mean(_nearest_label(reg.predict(z_tr) * sd + mu, labels) == y_tr))
    acc_te = float(np.mean(_nearest_label(reg.predict(z_te) * sd + mu, labels) == y_te))
    return np.abs(reg.coef_), acc_tr, acc_te


def dci_from_codes(
    codes_train: np.ndarray,
    factors_train: np.ndarray,
    codes_test: np.ndarray,
    factors_test: np.ndarray,
    *,
    method: str = "gbt",
    lasso_alpha: float = 0.001,
    seed: SeedLike = 0,
    n_jobs: int | None = -1,
) -> DCIResult:
    """DCI of Eastwood & Williams (2018), "A Framework for the Quantitative Evaluation of
    Disentangled Representations", ICLR 2018, as computed by disentanglement_lib.

    One predictor per factor gives a column of the importance matrix ``R`` (latent_dim x
    n_factors); :func:`dci_from_importance` turns ``R`` into disentanglement and completeness;
    informativeness is the mean test accuracy of the predictors.

    * ``method="gbt"`` (reference): ``sklearn.ensemble.GradientBoostingClassifier`` with default
      settings per factor on the raw codes; ``R[:, k]`` = its ``feature_importances_`` (each
      column sums to 1, so completeness is the plain mean over factors).
    * ``method="lasso"`` (faster linear alternative, not in disentanglement_lib; the linear
      variant of Eastwood & Williams): ``sklearn.linear_model.Lasso(alpha=lasso_alpha)``
      regresses the standardised factor index on the standardised codes (train mean/std);
      ``R[:, k] = |coef|``; the accuracy counts a prediction as correct when it rounds to the
      true index (nearest training label). Suits ordinal factors; a categorical factor whose
      index order is arbitrary is under-rated. The default ``alpha = 0.001`` is a light
      penalty on purpose: a dimension unrelated to a factor has a sample correlation of order
      ``1/sqrt(n)`` with it, and an ``alpha`` above that zeroes all but a few random
      coefficients, which makes an *uninformative* code look disentangled (D and C are
      invariant to the scale of ``R``; with ``alpha = 0.02`` and 10,000 points pure noise
      scores D = C = 1). Even with the light penalty the floor of D and C for pure noise is
      ~0.1-0.2 (random dense importances), not the ~0 of the trees.

    Args:
        codes_train: ``(n_train, latent_dim)``.
        factors_train: ``(n_train, n_factors)`` integer indices.
        codes_test: ``(n_test, latent_dim)``.
        factors_test: ``(n_test, n_factors)``.
        method: ``"gbt"`` or ``"lasso"``.
        lasso_alpha: L1 strength for ``method="lasso"`` (standardised units).
        seed: seeds the estimators (``random_state``), int or Generator.
        n_jobs: factors fitted in parallel (scikit-learn/joblib convention; results do not
            depend on it). Default -1, every core: the gradient-boosted trees are the slowest
            part of :func:`compute_all`.

    Returns:
        :class:`DCIResult` with the ``(latent_dim, n_factors)`` importance matrix.
    """
    if method not in ("gbt", "lasso"):
        raise ValueError("method must be 'gbt' or 'lasso'")
    z_tr, y_tr = _check_pair(codes_train, factors_train, "dci (train)")
    z_te, y_te = _check_pair(codes_test, factors_test, "dci (test)")
    if z_tr.shape[1] != z_te.shape[1] or y_tr.shape[1] != y_te.shape[1]:
        raise ValueError("train and test arrays must have the same number of columns")
    rng = _rng(seed)
    n_codes, n_factors = z_tr.shape[1], y_tr.shape[1]
    if method == "lasso":
        z_tr, z_te = _standardise(z_tr, z_te)
    states = [_sk_seed(rng) for _ in range(n_factors)]
    per = Parallel(n_jobs=n_jobs)(
        delayed(_dci_factor)(z_tr, y_tr[:, k], z_te, y_te[:, k], method, lasso_alpha, states[k])
        for k in range(n_factors)
    )
    importance = np.stack([p[0] for p in per], axis=1) if per else np.zeros((n_codes, 0))
    acc_train = np.array([p[1] for p in per])
    acc_test = np.array([p[2] for p in per])
    d_score, c_score, per_code, per_factor = dci_from_importance(importance)
    settings: dict[str, Any] = {
        "method": method,
        "estimator": "GradientBoostingClassifier()"
        if method == "gbt"
        else f"Lasso(alpha={lasso_alpha}) on standardised codes/factors",
        "num_train": int(z_tr.shape[0]),
        "num_test": int(z_te.shape[0]),
    }
    return DCIResult(
        d_score,
        c_score,
        float(np.mean(acc_test)),
        float(np.mean(acc_train)),
        importance,
        per_code,
        per_factor,
        acc_test,
        settings,
    )


def dci(
    represent: Representation,
    data: FactorData,
    seed: SeedLike = 0,
    *,
    num_train: int = 10_000,
    num_test: int = 5_000,
    method: str = "gbt",
    lasso_alpha: float = 0.001,
    n_jobs: int | None = -1,
    eval_batch_size: int = DEFAULT_EVAL_BATCH,
) -> DCIResult:
    """DCI disentanglement/completeness/informativeness (Eastwood & Williams 2018).

    Reference settings (disentanglement_lib): gradient-boosted trees
    (``GradientBoostingClassifier()`` defaults: 100 stages, depth 3, learning rate 0.1) on
    10,000 training and 5,000 test points; informativeness = mean test accuracy. See
    :func:`dci_from_codes` for ``method="lasso"``.

    Args:
        represent: observations -> codes ``(batch, latent_dim)``.
        data: a :class:`FactorData`.
        seed: int seed or Generator.
        num_train: training points (reference 10,000).
        num_test: test points (reference 5,000).
        method: ``"gbt"`` (reference) or ``"lasso"``.
        lasso_alpha: L1 strength for the lasso method.
        n_jobs: factors fitted in parallel (default -1: every core; results do not depend on it).
        eval_batch_size: observations per call of ``represent``.

    Returns:
        :class:`DCIResult`; ``importance`` is ``(latent_dim, n_factors)``.
    """
    rng = _rng(seed)
    z_tr, y_tr, z_te, y_te = _sample_train_test(represent, data, num_train, num_test, rng, eval_batch_size)
    return dci_from_codes(
        z_tr, y_tr, z_te, y_te, method=method, lasso_alpha=lasso_alpha, seed=rng, n_jobs=n_jobs
    )


# --------------------------------------------------------------------------------------------
# SAP
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SAPResult:
    """Separated Attribute Predictability.

    Attributes:
        score: SAP, mean over factors of ``per_factor``.
        per_factor: ``(n_factors,)`` top-1 minus top-2 entry of each score-matrix column.
        score_matrix: ``(latent_dim, n_factors)`` test accuracy of a one-dimensional classifier
            (discrete factors) or squared correlation (continuous factors).
        settings: the settings used.
    """

    score: float
    per_factor: np.ndarray
    score_matrix: np.ndarray
    settings: dict = field(default_factory=dict)


def sap_from_codes(
    codes_train: np.ndarray,
    factors_train: np.ndarray,
    codes_test: np.ndarray,
    factors_test: np.ndarray,
    *,
    continuous: bool = False,
    svc_c: float = 0.01,
    seed: SeedLike = 0,
) -> SAPResult:
    """SAP score of Kumar, Sattigeri & Balakrishnan (2018), "Variational Inference of
    Disentangled Latent Concepts from Unlabeled Observations" (DIP-VAE), ICLR 2018.

    As disentanglement_lib with ``continuous_factors=False`` (the reference setting): entry
    ``(i, k)`` of the score matrix is the test accuracy of
    ``LinearSVC(C=0.01, class_weight="balanced")`` (one-vs-rest, squared hinge) trained to
    predict factor ``k`` from code dimension ``i`` alone, on the raw (unstandardised) codes; SAP
    is the mean over factors of the gap between the two largest entries of the column. With
    ``continuous=True`` the entry is ``cov(z_i, v_k)^2 / (var(z_i) var(v_k))`` on the training
    points (0 for a code variance below 1e-12), as the reference does.

    Ceiling: for a factor with more than 2 values a linear one-vs-rest classifier on a single
    number cannot carve out the middle values, and the regularisation (C=0.01) is strong, so
    even a perfect code scores well below 1 on such factors; and the second-best dimension of an
    independent code still reaches about chance level (~1/size) accuracy. SAP of a perfect code
    on discrete factors is therefore clearly below 1 (~0.35 for factor sizes 3, 6, 8, 8 with
    codes equal to the indices). The solver uses the primal (``dual=False``): it minimises the
    same strictly convex objective as the reference's dual solver.

    Args:
        codes_train: ``(n_train, latent_dim)``.
        factors_train: ``(n_train, n_factors)`` integer indices.
        codes_test: ``(n_test, latent_dim)``.
        factors_test: ``(n_test, n_factors)``.
        continuous: use the squared-correlation score (reference: False).
        svc_c: LinearSVC regularisation (reference 0.01).
        seed: seeds the classifiers.

    Returns:
        :class:`SAPResult` with the ``(latent_dim, n_factors)`` score matrix.
    """
    z_tr, y_tr = _check_pair(codes_train, factors_train, "sap (train)")
    z_te, y_te = _check_pair(codes_test, factors_test, "sap (test)")
    if z_tr.shape[1] != z_te.shape[1] or y_tr.shape[1] != y_te.shape[1]:
        raise ValueError("train and test arrays must have the same number of columns")
    rng = _rng(seed)
    n_codes, n_factors = z_tr.shape[1], y_tr.shape[1]
    scores = np.zeros((n_codes, n_factors))
    for i in range(n_codes):
        for k in range(n_factors):
            if continuous:
                cov = np.cov(z_tr[:, i], y_tr[:, k].astype(np.float64), ddof=1)
                if cov[0, 0] > 1e-12 and cov[1, 1] > 0:
                    scores[i, k] = cov[0, 1] ** 2 / (cov[0, 0] * cov[1, 1])
                continue
            labels = np.unique(y_tr[:, k])
            state = _sk_seed(rng)
            if len(labels) < 2:
                scores[i, k] = float(np.mean(y_te[:, k] == labels[0]))
                continue
            clf = LinearSVC(C=svc_c, class_weight="balanced", dual=False, random_state=state)
            clf.fit(z_tr[:, i : i + 1], y_tr[:, k])
            scores[i, k] = np.mean(clf.predict(z_te[:, i : i + 1]) == y_te[:, k])
    per_factor = _top_two_gap(scores)
    settings = {
        "continuous_factors": continuous,
        "estimator": "squared correlation"
        if continuous
        else f'LinearSVC(C={svc_c}, class_weight="balanced")',
        "num_train": int(z_tr.shape[0]),
        "num_test": int(z_te.shape[0]),
    }
    return SAPResult(float(np.mean(per_factor)), per_factor, scores, settings)


def sap(
    represent: Representation,
    data: FactorData,
    seed: SeedLike = 0,
    *,
    num_train: int = 10_000,
    num_test: int = 5_000,
    continuous: bool = False,
    svc_c: float = 0.01,
    eval_batch_size: int = DEFAULT_EVAL_BATCH,
) -> SAPResult:
    """SAP score (Kumar et al. 2018) with the reference settings: discrete factors,
    ``LinearSVC(C=0.01)``, 10,000 training and 5,000 test points (see :func:`sap_from_codes`).

    Args:
        represent: observations -> codes ``(batch, latent_dim)``.
        data: a :class:`FactorData`.
        seed: int seed or Generator.
        num_train: training points (reference 10,000).
        num_test: test points (reference 5,000).
        continuous: squared-correlation variant (reference False).
        svc_c: LinearSVC C (reference 0.01).
        eval_batch_size: observations per call of ``represent``.

    Returns:
        :class:`SAPResult`; ``score_matrix`` is ``(latent_dim, n_factors)``.
    """
    rng = _rng(seed)
    z_tr, y_tr, z_te, y_te = _sample_train_test(represent, data, num_train, num_test, rng, eval_batch_size)
    return sap_from_codes(z_tr, y_tr, z_te, y_te, continuous=continuous, svc_c=svc_c, seed=rng)


# --------------------------------------------------------------------------------------------
# Modularity and explicitness
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ModularityExplicitnessResult:
    """Modularity and explicitness.

    Attributes:
        modularity: mean of ``modularity_per_code``.
        explicitness: mean test ROC-AUC over factors (``explicitness_per_factor``).
        explicitness_train: mean training ROC-AUC.
        modularity_per_code: ``(latent_dim,)``.
        explicitness_per_factor: ``(n_factors,)`` test ROC-AUC (NaN for a constant factor).
        mutual_information: ``(latent_dim, n_factors)`` MI (nats) from 20-bin discretisation.
        settings: the settings used.
    """

    modularity: float
    explicitness: float
    explicitness_train: float
    modularity_per_code: np.ndarray
    explicitness_per_factor: np.ndarray
    mutual_information: np.ndarray
    settings: dict = field(default_factory=dict)


def modularity_from_mutual_information(mutual_information: np.ndarray) -> np.ndarray:
    """Per-code modularity of Ridgeway & Mozer (2018) from a ``(latent_dim, n_factors)`` MI matrix.

    ``delta_i = sum_{k != k*} m_ik^2 / (m_ik*^2 (K - 1))`` with ``k*`` the factor of largest
    MI, modularity ``1 - delta_i``; a code with no information (all MI 0) scores 0, as in
    disentanglement_lib. With a single factor every informative code scores 1.

    Returns:
        ``(latent_dim,)`` modularity of each code dimension.
    """
    sq = np.square(np.asarray(mutual_information, dtype=np.float64))
    top = sq.max(axis=1)
    k = sq.shape[1]
    if k == 1:
        return np.where(top > 0, 1.0, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        delta = (sq.sum(axis=1) - top) / (top * (k - 1.0))
    return np.where(top > 0, 1.0 - delta, 0.0)


def _macro_ovr_auc(y: np.ndarray, proba: np.ndarray, classes: np.ndarray) -> float:
    """Mean one-vs-rest ROC-AUC over the classes that have positives and negatives in ``y``."""
    aucs = []
    for c, cls in enumerate(classes):
        pos = y == cls
        if pos.any() and not pos.all():
            aucs.append(roc_auc_score(pos, proba[:, c]))
    return float(np.mean(aucs)) if aucs else float("nan")


def modularity_explicitness_from_codes(
    codes_train: np.ndarray,
    factors_train: np.ndarray,
    codes_test: np.ndarray,
    factors_test: np.ndarray,
    *,
    num_bins: int = 20,
    seed: SeedLike = 0,
) -> ModularityExplicitnessResult:
    """Modularity and explicitness of Ridgeway & Mozer (2018), "Learning Deep Disentangled
    Embeddings with the F-Statistic Loss", NeurIPS 2018, as computed by disentanglement_lib.

    * Modularity: MI between 20-bin histogram-discretised training codes and factors
      (as in :func:`mig_from_codes`), then :func:`modularity_from_mutual_information`, averaged
      over code dimensions.
    * Explicitness: codes standardised with the training mean/std; per factor a one-vs-rest
      logistic regression (``LogisticRegression(solver="liblinear")``, C=1, i.e. the
      scikit-learn default that disentanglement_lib ran with, wrapped in
      ``OneVsRestClassifier``); the score is the macro ROC-AUC of the predicted class
      probabilities (one column per class), averaged over factors. Classes missing from the
      test sample are skipped (the reference would fail on them).

    Floors: a code independent of the factors still has small positive MI with every factor
    (finite-sample bias), spread about evenly, so its modularity is typically 0.3-0.8, not 0;
    its explicitness is ~0.5 (chance AUC).

    Args:
        codes_train: ``(n_train, latent_dim)``.
        factors_train: ``(n_train, n_factors)`` integer indices.
        codes_test: ``(n_test, latent_dim)``.
        factors_test: ``(n_test, n_factors)``.
        num_bins: histogram bins (reference 20).
        seed: seeds the classifiers.

    Returns:
        :class:`ModularityExplicitnessResult` with the ``(latent_dim, n_factors)`` MI matrix.
    """
    z_tr, y_tr = _check_pair(codes_train, factors_train, "modularity (train)")
    z_te, y_te = _check_pair(codes_test, factors_test, "modularity (test)")
    if z_tr.shape[1] != z_te.shape[1] or y_tr.shape[1] != y_te.shape[1]:
        raise ValueError("train and test arrays must have the same number of columns")
    rng = _rng(seed)
    mi = discrete_mutual_information(histogram_discretize(z_tr, num_bins), y_tr)
    per_code = modularity_from_mutual_information(mi)
    s_tr, s_te = _standardise(z_tr, z_te)
    n_factors = y_tr.shape[1]
    auc_tr = np.full(n_factors, np.nan)
    auc_te = np.full(n_factors, np.nan)
    for k in range(n_factors):
        state = _sk_seed(rng)
        if len(np.unique(y_tr[:, k])) < 2:
            continue
        clf = OneVsRestClassifier(LogisticRegression(solver="liblinear", random_state=state))
        clf.fit(s_tr, y_tr[:, k])
        auc_tr[k] = _macro_ovr_auc(y_tr[:, k], clf.predict_proba(s_tr), clf.classes_)
        auc_te[k] = _macro_ovr_auc(y_te[:, k], clf.predict_proba(s_te), clf.classes_)
    settings = {
        "num_bins": num_bins,
        "discretizer": "histogram",
        "estimator": 'OneVsRest(LogisticRegression(solver="liblinear", C=1.0))',
        "num_train": int(z_tr.shape[0]),
        "num_test": int(z_te.shape[0]),
    }
    finite_te, finite_tr = np.isfinite(auc_te), np.isfinite(auc_tr)
    return ModularityExplicitnessResult(
        float(np.mean(per_code)),
        float(np.mean(auc_te[finite_te])) if finite_te.any() else float("nan"),
        float(np.mean(auc_tr[finite_tr])) if finite_tr.any() else float("nan"),
        per_code,
        auc_te,
        mi,
        settings,
    )


def modularity_explicitness(
    represent: Representation,
    data: FactorData,
    seed: SeedLike = 0,
    *,
    num_train: int = 10_000,
    num_test: int = 5_000,
    num_bins: int = 20,
    eval_batch_size: int = DEFAULT_EVAL_BATCH,
) -> ModularityExplicitnessResult:
    """Modularity and explicitness (Ridgeway & Mozer 2018) with the reference settings:
    10,000 training / 5,000 test points, 20-bin histogram (see
    :func:`modularity_explicitness_from_codes`).

    Args:
        represent: observations -> codes ``(batch, latent_dim)``.
        data: a :class:`FactorData`.
        seed: int seed or Generator.
        num_train: training points (reference 10,000).
        num_test: test points (reference 5,000).
        num_bins: histogram bins (reference 20).
        eval_batch_size: observations per call of ``represent``.

    Returns:
        :class:`ModularityExplicitnessResult`.
    """
    rng = _rng(seed)
    z_tr, y_tr, z_te, y_te = _sample_train_test(represent, data, num_train, num_test, rng, eval_batch_size)
    return modularity_explicitness_from_codes(z_tr, y_tr, z_te, y_te, num_bins=num_bins, seed=rng)


# --------------------------------------------------------------------------------------------
# BetaVAE score
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class BetaVAEResult:
    """BetaVAE score.

    Attributes:
        score: accuracy of the classifier on the evaluation points.
        train_accuracy: accuracy on the training points.
        mean_features: ``(latent_dim, n_factors)`` mean training feature (mean absolute code
            difference of the pairs) for each fixed factor: low = dimension invariant to the
            other factors' changes while that factor is fixed.
        confusion: ``(n_factors, n_factors)`` evaluation confusion matrix (row = true factor).
        settings: the settings used.
    """

    score: float
    train_accuracy: float
    mean_features: np.ndarray
    confusion: np.ndarray
    settings: dict = field(default_factory=dict)


def _groups_per_call(eval_batch_size: int, observations_per_group: int) -> int:
    return max(1, int(eval_batch_size) // max(1, observations_per_group))


def _betavae_points(
    represent: Representation,
    data: FactorData,
    rng: np.random.Generator,
    batch_size: int,
    num_points: int,
    eval_batch_size: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Features ``(num_points, latent_dim)`` and fixed-factor labels ``(num_points,)``."""
    n_factors = _n_factors(data)
    per_call = _groups_per_call(eval_batch_size, 2 * batch_size)
    feats, labels = [], []
    done = 0
    while done < num_points:
        m = min(per_call, num_points - done)
        fixed = rng.integers(0, n_factors, size=m)
        f1 = np.asarray(data.sample_factors(m * batch_size, rng), dtype=np.int64)
        f2 = np.asarray(data.sample_factors(m * batch_size, rng), dtype=np.int64)
        rows = np.arange(m * batch_size)
        col = np.repeat(fixed, batch_size)
        f2[rows, col] = f1[rows, col]
        obs1 = data.sample_observations(f1, rng)
        obs2 = data.sample_observations(f2, rng)
        z = _as_codes(represent(np.concatenate([obs1, obs2], axis=0)), 2 * m * batch_size)
        z1 = z[: m * batch_size].reshape(m, batch_size, -1)
        z2 = z[m * batch_size :].reshape(m, batch_size, -1)
        feats.append(np.mean(np.abs(z1 - z2), axis=1))
        labels.append(fixed)
        done += m
    return np.concatenate(feats, axis=0), np.concatenate(labels)


def betavae_score(
    represent: Representation,
    data: FactorData,
    seed: SeedLike = 0,
    *,
    batch_size: int = 64,
    num_train: int = 10_000,
    num_eval: int = 5_000,
    eval_batch_size: int = DEFAULT_EVAL_BATCH,
) -> BetaVAEResult:
    """BetaVAE disentanglement score of Higgins et al. (2017), "beta-VAE: Learning Basic Visual
    Concepts with a Constrained Variational Framework", ICLR 2017, as in disentanglement_lib
    (``beta_vae_sklearn``).

    Each point: draw a factor ``k`` uniformly; draw two batches of ``batch_size`` (64) factor
    rows, copy factor ``k`` of the first batch into the second, encode one observation of each
    row; the feature is the mean over the 64 pairs of ``|z1 - z2|`` (latent_dim,), the label is
    ``k``. A linear classifier is trained on ``num_train`` (10,000) points and the score is its
    accuracy on ``num_eval`` (5,000) fresh points. The classifier is
    ``LogisticRegression(solver="liblinear")`` one-vs-rest with C=1 (the scikit-learn default
    that disentanglement_lib ran with; recent versions default to multinomial lbfgs).

    Range: chance is about ``1 / n_factors`` for an uninformative code; a disentangled code
    approaches 1.

    Args:
        represent: observations -> codes ``(batch, latent_dim)``.
        data: a :class:`FactorData`.
        seed: int seed or Generator.
        batch_size: pairs per point (reference 64).
        num_train: training points (reference 10,000).
        num_eval: evaluation points (reference 5,000).
        eval_batch_size: maximum observations per call of ``represent`` (several points are
            encoded per call; at least one point, i.e. ``2 * batch_size`` observations).

    Returns:
        :class:`BetaVAEResult`.
    """
    rng = _rng(seed)
    x_tr, y_tr = _betavae_points(represent, data, rng, batch_size, num_train, eval_batch_size)
    x_ev, y_ev = _betavae_points(represent, data, rng, batch_size, num_eval, eval_batch_size)
    n_factors = _n_factors(data)
    state = _sk_seed(rng)
    if len(np.unique(y_tr)) < 2:
        pred_tr = np.full(len(y_tr), y_tr[0])
        pred_ev = np.full(len(y_ev), y_tr[0])
    else:
        clf = OneVsRestClassifier(LogisticRegression(solver="liblinear", random_state=state))
        clf.fit(x_tr, y_tr)
        pred_tr, pred_ev = clf.predict(x_tr), clf.predict(x_ev)
    mean_features = np.zeros((x_tr.shape[1], n_factors))
    for k in range(n_factors):
        if np.any(y_tr == k):
            mean_features[:, k] = x_tr[y_tr == k].mean(axis=0)
    confusion = confusion_matrix(y_ev, pred_ev, labels=np.arange(n_factors))
    settings = {
        "batch_size": batch_size,
        "num_train": num_train,
        "num_eval": num_eval,
        "estimator": 'OneVsRest(LogisticRegression(solver="liblinear", C=1.0))',
    }
    return BetaVAEResult(
        float(np.mean(pred_ev == y_ev)),
        float(np.mean(pred_tr == y_tr)),
        mean_features,
        confusion,
        settings,
    )


# --------------------------------------------------------------------------------------------
# FactorVAE score
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class FactorVAEResult:
    """FactorVAE score.

    Attributes:
        score: majority-vote accuracy on the evaluation votes.
        train_accuracy: accuracy on the training votes.
        votes: ``(latent_dim, n_factors)`` training votes (row = dimension of least normalised
            variance, column = the fixed factor); the classifier maps each dimension to the
            factor with most votes in its row. Pruned dimensions have no votes.
        eval_votes: ``(latent_dim, n_factors)`` evaluation votes.
        global_variances: ``(latent_dim,)`` variance of each code dimension (ddof=1).
        active_dims: ``(latent_dim,)`` bool, dimensions kept after pruning.
        num_active_dims: number of kept dimensions.
        settings: the settings used.
    """

    score: float
    train_accuracy: float
    votes: np.ndarray
    eval_votes: np.ndarray
    global_variances: np.ndarray
    active_dims: np.ndarray
    num_active_dims: int
    settings: dict = field(default_factory=dict)


def _factorvae_votes(
    represent: Representation,
    data: FactorData,
    rng: np.random.Generator,
    batch_size: int,
    num_points: int,
    global_variances: np.ndarray,
    active: np.ndarray,
    eval_batch_size: int,
) -> np.ndarray:
    """Votes ``(latent_dim, n_factors)`` from ``num_points`` fixed-factor batches."""
    n_factors = _n_factors(data)
    n_codes = len(global_variances)
    active_idx = np.flatnonzero(active)
    per_call = _groups_per_call(eval_batch_size, batch_size)
    votes = np.zeros((n_codes, n_factors), dtype=np.int64)
    done = 0
    while done < num_points:
        m = min(per_call, num_points - done)
        fixed = rng.integers(0, n_factors, size=m)
        f = np.asarray(data.sample_factors(m * batch_size, rng), dtype=np.int64)
        f = f.reshape(m, batch_size, n_factors)
        groups = np.arange(m)
        f[groups, :, fixed] = f[groups, 0, fixed][:, None]
        obs = data.sample_observations(f.reshape(m * batch_size, n_factors), rng)
        z = _as_codes(represent(obs), m * batch_size).reshape(m, batch_size, n_codes)
        local = np.var(z[:, :, active_idx], axis=1, ddof=1)
        best = active_idx[np.argmin(local / global_variances[active_idx], axis=1)]
        np.add.at(votes, (best, fixed), 1)
        done += m
    return votes


def factorvae_score(
    represent: Representation,
    data: FactorData,
    seed: SeedLike = 0,
    *,
    batch_size: int = 64,
    num_train: int = 10_000,
    num_eval: int = 5_000,
    num_variance_estimate: int = 10_000,
    prune_threshold: float = 0.05,
    eval_batch_size: int = DEFAULT_EVAL_BATCH,
) -> FactorVAEResult:
    """FactorVAE disentanglement score of Kim & Mnih (2018), "Disentangling by Factorising",
    ICML 2018, as in disentanglement_lib (``factor_vae_score``).

    1. Global variance of each code dimension (ddof=1) from ``num_variance_estimate`` (10,000)
       random observations.
    2. Pruning: a dimension is kept when its global standard deviation is
       ``>= prune_threshold`` (0.05). This is the reference semantics: disentanglement_lib's
       ``_prune_dims`` compares ``sqrt(variance) >= threshold`` and the Locatello et al. study
       config sets ``prune_dims.threshold = 0.05`` (its code default is 0.0). The threshold is
       absolute, on the scale of the codes (a VAE's latent means, prior N(0, 1)), not relative
       to the largest variance; a dimension with exactly zero variance is always pruned (it
       would give 0/0). If nothing is kept, the score is 0.
    3. Each vote: draw a factor ``k``; draw ``batch_size`` (64) factor rows sharing the value
       of factor ``k`` (that of the first row); the vote goes to the kept dimension with the
       smallest ``local variance / global variance`` (ddof=1), labelled ``k``.
    4. Majority-vote classifier from ``num_train`` (10,000) votes: each dimension predicts the
       factor that voted for it most often (ties -> lowest factor index; dimensions without
       votes -> factor 0); the score is its accuracy on ``num_eval`` (5,000) fresh votes.

    Unlike the reference, votes are stored under the original dimension index when dimensions
    are pruned (the reference indexes its vote matrix by position among kept dimensions), which
    does not change the accuracy; ``num_active_dims`` is the number of kept dimensions.

    Range: a disentangled code approaches 1; an uninformative code gets about the largest
    fraction of votes of any single factor, ~``1 / n_factors``.

    Args:
        represent: observations -> codes ``(batch, latent_dim)``.
        data: a :class:`FactorData`.
        seed: int seed or Generator.
        batch_size: observations per vote (reference 64).
        num_train: training votes (reference 10,000).
        num_eval: evaluation votes (reference 5,000).
        num_variance_estimate: points for the global variances (reference 10,000).
        prune_threshold: minimum global standard deviation of a kept dimension (reference 0.05).
        eval_batch_size: maximum observations per call of ``represent``.

    Returns:
        :class:`FactorVAEResult`; ``votes`` is ``(latent_dim, n_factors)``.
    """
    if batch_size < 2:
        raise ValueError("batch_size must be >= 2 (a variance needs two points)")
    rng = _rng(seed)
    z, _ = _sample_codes(represent, data, num_variance_estimate, rng, eval_batch_size)
    global_var = np.var(z, axis=0, ddof=1) if len(z) > 1 else np.zeros(z.shape[1])
    active = (np.sqrt(global_var) >= prune_threshold) & (global_var > 0)
    settings = {
        "batch_size": batch_size,
        "num_train": num_train,
        "num_eval": num_eval,
        "num_variance_estimate": num_variance_estimate,
        "prune_threshold": prune_threshold,
        "estimator": "majority vote",
    }
    n_codes, n_factors = z.shape[1], _n_factors(data)
    if not active.any():
        empty = np.zeros((n_codes, n_factors), dtype=np.int64)
        return FactorVAEResult(0.0, 0.0, empty, empty.copy(), global_var, active, 0, settings)
    args = (represent, data, rng, batch_size)
    train_votes = _factorvae_votes(*args, num_train, global_var, active, eval_batch_size)
    eval_votes = _factorvae_votes(*args, num_eval, global_var, active, eval_batch_size)
    classifier = np.argmax(train_votes, axis=1)  # factor predicted by each dimension
    dims = np.arange(n_codes)
    train_acc = train_votes[dims, classifier].sum() / train_votes.sum()
    eval_acc = eval_votes[dims, classifier].sum() / eval_votes.sum()
    return FactorVAEResult(
        float(eval_acc),
        float(train_acc),
        train_votes,
        eval_votes,
        global_var,
        active,
        int(active.sum()),
        settings,
    )


# --------------------------------------------------------------------------------------------
# All metrics
# --------------------------------------------------------------------------------------------

_REFERENCE: dict[str, dict[str, int]] = {
    "mig": {"num_train": 10_000},
    "dci": {"num_train": 10_000, "num_test": 5_000},
    "sap": {"num_train": 10_000, "num_test": 5_000},
    "modularity": {"num_train": 10_000, "num_test": 5_000},
    "betavae": {"batch_size": 64, "num_train": 10_000, "num_eval": 5_000},
    "factorvae": {
        "batch_size": 64,
        "num_train": 10_000,
        "num_eval": 5_000,
        "num_variance_estimate": 10_000,
    },
}

_SAMPLE_COUNTS = ("num_train", "num_test", "num_eval", "num_variance_estimate")


def _scaled_preset(divisor: int) -> dict[str, dict[str, int]]:
    # every sample count divided; the group size (batch_size=64) of BetaVAE/FactorVAE is kept
    return {
        name: {k: (v // divisor if k in _SAMPLE_COUNTS else v) for k, v in cfg.items()}
        for name, cfg in _REFERENCE.items()
    }


PRESETS: dict[str, dict[str, dict[str, int]]] = {
    "reference": _REFERENCE,
    "fast": _scaled_preset(5),
    "quick": _scaled_preset(50),
}
"""Sample counts per metric: ``"reference"`` = disentanglement_lib / Locatello et al. (2019),
``"fast"`` = one fifth of every sample count, ``"quick"`` = one fiftieth (a first look in
seconds; its scores are noisy, so compare models with ``fast`` or ``reference``). The same
estimators and group sizes throughout."""


# metric name -> (function, result -> (flat scores, named (latent_dim, n_factors) matrices))
_COMPUTE_ALL_TABLE: dict[str, tuple[Callable[..., Any], Callable[[Any], tuple[dict, dict]]]] = {
    "mig": (
        mig,
        lambda r: ({"mig": r.score, "mig_sup": r.sup}, {"mig_mutual_information": r.mutual_information}),
    ),
    "dci": (
        dci,
        lambda r: (
            {
                "dci_disentanglement": r.disentanglement,
                "dci_completeness": r.completeness,
                "dci_informativeness": r.informativeness,
            },
            {"dci_importance": r.importance},
        ),
    ),
    "sap": (sap, lambda r: ({"sap": r.score}, {"sap_scores": r.score_matrix})),
    "modularity": (
        modularity_explicitness,
        lambda r: ({"modularity": r.modularity, "explicitness": r.explicitness}, {}),
    ),
    "betavae": (betavae_score, lambda r: ({"betavae_score": r.score}, {})),
    "factorvae": (factorvae_score, lambda r: ({"factorvae_score": r.score}, {"factorvae_votes": r.votes})),
}


def compute_all(
    represent: Representation,
    data: FactorData,
    seed: int = 0,
    preset: str = "fast",
    metrics: Sequence[str] = ALL_METRICS,
    *,
    dci_method: str = "gbt",
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    eval_batch_size: int = DEFAULT_EVAL_BATCH,
) -> dict[str, Any]:
    """Run several metrics with one preset and return flat scores.

    Every metric is called with the same ``seed`` (as disentanglement_lib evaluates each metric
    with its own random state from one seed), so each number equals the one of the individual
    function with that seed and settings, and does not depend on which other metrics run.

    Args:
        represent: observations -> codes ``(batch, latent_dim)``.
        data: a :class:`FactorData`.
        seed: integer seed.
        preset: ``"reference"`` (disentanglement_lib defaults), ``"fast"`` (1/5 of every
            sample count) or ``"quick"`` (1/50), see :data:`PRESETS`.
        metrics: a subset of ``("mig", "dci", "sap", "modularity", "betavae", "factorvae")``.
        dci_method: ``"gbt"`` (reference) or ``"lasso"``, see :func:`dci_from_codes`.
        overrides: per metric, keyword arguments replacing or adding to the preset, e.g.
            ``{"dci": {"num_train": 500, "n_jobs": 2}, "factorvae": {"prune_threshold": 0.0}}``.
        eval_batch_size: observations per call of ``represent``.

    Returns:
        A dict with, for the metrics computed, float entries ``mig``, ``mig_sup``, ``dci_disentanglement``,
        ``dci_completeness``, ``dci_informativeness``, ``sap``, ``factorvae_score``,
        ``betavae_score``, ``modularity``, ``explicitness``; ``matrices``: name -> 2-D
        ``(latent_dim, n_factors)`` array (``mig_mutual_information``, ``dci_importance``,
        ``sap_scores``, ``factorvae_votes``); ``seconds``: metric -> wall-clock seconds;
        ``settings``: preset, seed and the settings each metric used.
    """
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {preset!r}")
    unknown = [m for m in metrics if m not in ALL_METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; choose from {ALL_METRICS}")
    overrides = dict(overrides or {})
    bad = [m for m in overrides if m not in ALL_METRICS]
    if bad:
        raise ValueError(f"overrides for unknown metric(s) {bad}")

    out: dict[str, Any] = {}
    matrices: dict[str, np.ndarray] = {}
    seconds: dict[str, float] = {}
    settings: dict[str, Any] = {"preset": preset, "seed": seed}
    for name in ALL_METRICS:
        if name not in metrics:
            continue
        kw: dict[str, Any] = dict(PRESETS[preset][name])
        if name == "dci":
            kw["method"] = dci_method
        kw.update(overrides.get(name, {}))
        kw["eval_batch_size"] = kw.get("eval_batch_size", eval_batch_size)
        t0 = time.perf_counter()
        function, unpack = _COMPUTE_ALL_TABLE[name]
        result = function(represent, data, seed, **kw)
        scores, named_matrices = unpack(result)
        out.update(scores)
        matrices.update(named_matrices)
        used = result.settings
        seconds[name] = time.perf_counter() - t0
        settings[name] = dict(used)
    out["matrices"] = matrices
    out["seconds"] = seconds
    out["settings"] = settings
    return out
