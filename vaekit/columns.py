"""Typed table columns: each column of a table is modelled as what it is.

A column type is one small class with three jobs:

- **units**: `to_model` maps the user's values (a pandas Series, missing cells as NA) to one
  float per row in the units the nets see (NaN for a missing cell), and `to_user` maps model
  values back (float64, whole numbers for integer types, the labels for categories);
- **likelihood**: `log_prob(params, v)` is log p(x | z) of the user's value x, in nats, from
  the decoder's `n_params` outputs per row, through `torch.distributions`. Discrete columns
  (binary, categorical, count, integer) give probabilities; continuous ones (real, positive,
  bounded) give densities in the user's units, the Jacobian of the change of units included;
  a non-negative column gives the probability of an exact 0 and a density above it (a hurdle
  model's measure). A row's log-likelihood, the sum over its columns, does not depend on how
  vaekit scales;
- **support**: `sample` and `point` return values inside the column's support (no negative
  counts, proportions inside their bounds, categories among those seen, integers whole).

The types (`COLUMN_TYPES`, chosen by name with --column-types NAME=TYPE):

    real         Gaussian on (x - m) / s, mean and spread per row from the decoder
    positive     log-normal: Gaussian on (log x - m) / s
    bounded      logit-normal on (lo, hi): Gaussian on the standardised logit of the position
    integer      discretised Gaussian: P(k) = Phi((k + 1/2 - mu) / sigma) - Phi((k - 1/2 - mu) / sigma)
    binary       Bernoulli over the two values seen
    categorical  a softmax over the values seen (text categories included)
    count        negative binomial (mean and dispersion per row) from the smallest value seen
    nonnegative  hurdle log-normal: a probability of exactly 0, a log-normal density above it

Each column's spread (sigma; a count's dispersion) comes from the decoder per row, or is one
learned value per column (`ColumnLikelihood`'s `spread`).

A `Schema` is the list of a table's typed columns, fitted on the training split; it is stored
in config.yaml (`spec`), so a run reads and writes the user's columns without its data.
Missing cells (Nazabal et al., 2020, HI-VAE; Mattei & Frellsen, 2019, MIWAE): the
log-likelihood sums over the observed cells only, and the encoder sees each column's value (0
where missing) beside a 0/1 mask of the missing cells (`Features`).
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
import torch
from torch import distributions as D
from torch import nn
from torch.nn import functional as F

from vaekit import likelihoods
from vaekit.datasets.tables import is_number
from vaekit.errors import VaekitError, check
from vaekit.registry import registrar

COLUMN_TYPES: dict[str, type[ColumnType]] = {}
register = registrar(COLUMN_TYPES)  # @register(name) adds a class to COLUMN_TYPES

LOG_SIGMA_RANGE = (-7.0, 5.0)  # keeps sigma finite; far outside what a trained net uses
MAX_CATEGORIES = 50  # a text column with more distinct values is not modelled as categorical
CONTINUOUS = ("real", "positive", "nonnegative", "bounded")  # the types of densities
MAX_LEVELS = 10  # a numeric column with at most this many values, each seen often, is categorical


def _series(values):
    import pandas as pd

    return values if isinstance(values, pd.Series) else pd.Series(values)


def _observed(values) -> np.ndarray:
    """The non-missing values of a Series as a numpy array."""
    s = _series(values)
    return s[s.notna()].to_numpy()


def _numbers(values, column: str) -> np.ndarray:
    """A Series' values as float64 (NaN for missing); refuses text, naming the column."""
    import pandas as pd

    s = _series(values)
    try:
        return pd.to_numeric(s, errors="raise").astype("float64").to_numpy(na_value=np.nan)
    except (TypeError, ValueError):
        bad = next(v for v in s[s.notna()] if not is_number(v))
        raise VaekitError(
            f"column {column!r} holds {bad!r}, which is not a number; give it another type with "
            f"--column-types {column}=categorical, or drop it with --drop-columns {column}."
        ) from None


def _standardise(values: np.ndarray) -> tuple[float, float]:
    m, s = float(np.mean(values)), float(np.std(values))
    return m, (s if s > 1e-12 * max(1.0, abs(m)) else 1.0)


def _gaussian(params: torch.Tensor) -> D.Normal:
    mu, log_sigma = params[..., 0], params[..., 1]
    return D.Normal(mu, log_sigma.clamp(*LOG_SIGMA_RANGE).exp(), validate_args=False)


class ColumnType:
    """One typed column: its name, its fitted constants and its likelihood (see the module
    docstring). Subclasses set `n_params` (decoder outputs per row), `n_inputs` (encoder
    inputs per row, the missing mask aside) and `discrete`."""

    name: ClassVar[str] = "base"
    n_params: int = 1
    n_inputs: int = 1
    discrete: ClassVar[bool] = False
    summary: ClassVar[str] = ""

    def __init__(self, column: str, **constants):
        self.column = str(column)
        self.constants = constants

    # ---------------------------------------------------------------- user units
    @classmethod
    def fit(cls, column: str, values) -> ColumnType:
        """This type's constants fitted on `values` (the training rows, NA for missing). Raises
        `VaekitError` when the values cannot have this type."""
        raise NotImplementedError

    def to_model(self, values) -> np.ndarray:
        """User values (n,) -> model values (n,) float64, NaN where missing. Raises `VaekitError`
        naming the first value outside the support the model was trained on (`outside`)."""
        bad, support, fix = self.outside(values)
        if bad.any():
            row = int(np.argmax(bad))
            raise VaekitError(
                f"column {self.column!r} holds {plain(_series(values).iloc[row])!r} at row {row}, outside "
                f"what the model was trained on ({support}); drop that row, or {fix}."
            )
        return self._model_values(values)

    def outside(self, values) -> tuple[np.ndarray, str, str]:
        """Which values (n,) the model gives probability zero: (mask (n,) bool, the support in
        words, how to retrain so that they fit). Missing cells are never outside."""
        return np.zeros(len(values), dtype=bool), "", ""

    def _model_values(self, values) -> np.ndarray:
        """`to_model` for values inside the support."""
        raise NotImplementedError

    def to_user(self, v: np.ndarray):
        """Model values (n,) -> user values (n,): float64, whole numbers, or labels."""
        raise NotImplementedError

    def spec(self) -> dict:
        """What config.yaml stores: {"name", "type", constants...}; `from_spec` reads it back."""
        return {"name": self.column, "type": self.name, **self.constants}

    def describe(self) -> str:
        """One phrase for the terminal: the type, its likelihood and its constants."""
        return self.summary

    # ---------------------------------------------------------------- the model
    def features(self, v: torch.Tensor) -> torch.Tensor:
        """Encoder inputs (n, n_inputs) for model values v (n,) (missing cells already 0)."""
        return v.unsqueeze(-1)

    def log_prob(self, params: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """log p(x | params) in nats (...,), for decoder outputs params (..., n_params) and
        model values v broadcasting against (...,)."""
        raise NotImplementedError

    def point(self, params: torch.Tensor) -> torch.Tensor:
        """A typical value (...,) in model units: the mean of real columns, the median of
        positive and bounded ones, the mode of binary and categorical ones, the mean of counts
        (whole numbers once `to_user` rounds it)."""
        return params[..., 0]

    def sample(self, params: torch.Tensor) -> torch.Tensor:
        """One draw of x (...,) in model units."""
        raise NotImplementedError


class _Continuous(ColumnType):
    """A Gaussian on a standardised transform t(x): v = (t(x) - m) / s. The density of x in the
    user's units is N(v; mu, sigma) |dv/dx| (the change of variables)."""

    n_params = 2

    def _m_s(self) -> tuple[float, float]:
        return float(self.constants["mean"]), float(self.constants["std"])

    def log_jacobian(self, v: torch.Tensor) -> torch.Tensor:
        """log |dv/dx| at model value v, nats."""
        raise NotImplementedError

    def log_prob(self, params, v):
        return _gaussian(params).log_prob(v) + self.log_jacobian(v)

    def sample(self, params):
        return _gaussian(params).sample()


@register("real")
class Real(_Continuous):
    summary = "Gaussian"

    @classmethod
    def fit(cls, column, values):
        x = _numbers(values, column)
        m, s = _standardise(x[~np.isnan(x)])
        return cls(column, mean=m, std=s)

    def _model_values(self, values):
        m, s = self._m_s()
        return (_numbers(values, self.column) - m) / s

    def to_user(self, v):
        m, s = self._m_s()
        return np.asarray(v, np.float64) * s + m

    def log_jacobian(self, v):
        return torch.full_like(v, -math.log(self._m_s()[1]))

    def describe(self):
        m, s = self._m_s()
        return f"Gaussian (standardised: mean {m:.4g}, sd {s:.4g})"


@register("positive")
class Positive(_Continuous):
    summary = "log-normal"

    @classmethod
    def fit(cls, column, values):
        x = _numbers(values, column)
        x = x[~np.isnan(x)]
        if not (bool(np.all(x > 0))):
            raise VaekitError(
                f"column {column!r} holds {x[x <= 0].min():g}, so it cannot be positive (log-normal); "
                f"use --column-types {column}=real."
            )
        m, s = _standardise(np.log(x))
        return cls(column, mean=m, std=s)

    def outside(self, values):
        x = _numbers(values, self.column)
        return x <= 0, "values > 0, log-normal", f"retrain with --column-types {self.column}=real"

    def _model_values(self, values):
        x = _numbers(values, self.column)
        m, s = self._m_s()
        with np.errstate(invalid="ignore", divide="ignore"):
            return (np.log(x) - m) / s

    def to_user(self, v):
        m, s = self._m_s()
        return np.exp(np.asarray(v, np.float64) * s + m)

    def log_jacobian(self, v):
        m, s = self._m_s()
        return -math.log(s) - (v * s + m)  # dv/dx = 1 / (s x), log x = v s + m

    def describe(self):
        return "log-normal (x > 0)"


@register("bounded")
class Bounded(_Continuous):
    """x in [lo, hi] (a proportion or a percentage): u = eps + (1 - 2 eps)(x - lo)/(hi - lo) lies
    strictly inside (0, 1), so values on the bounds keep a finite density; v is the
    standardised logit of u."""

    summary = "logit-normal"
    EPS = 1e-3

    @classmethod
    def fit(cls, column, values, lo: float | None = None, hi: float | None = None):
        x = _numbers(values, column)
        x = x[~np.isnan(x)]
        if lo is None or hi is None:
            lo, hi = natural_bounds(column, x)
        if not (hi > lo and bool(np.all((x >= lo) & (x <= hi)))):
            raise VaekitError(
                f"column {column!r} spans [{x.min():g}, {x.max():g}], outside the bounds [{lo:g}, {hi:g}]; "
                f"use --column-types {column}=real."
            )
        probe = cls(column, lo=float(lo), hi=float(hi), mean=0.0, std=1.0)
        m, s = _standardise(probe._logit(x))
        return cls(column, lo=float(lo), hi=float(hi), mean=m, std=s)

    def _logit(self, x):
        lo, hi = self.constants["lo"], self.constants["hi"]
        u = self.EPS + (1 - 2 * self.EPS) * (x - lo) / (hi - lo)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(u) - np.log1p(-u)

    def outside(self, values):
        x = _numbers(values, self.column)
        lo, hi = self.constants["lo"], self.constants["hi"]
        return (
            (x < lo) | (x > hi),
            f"values in [{lo:g}, {hi:g}]",
            f"retrain with --column-types {self.column}=real",
        )

    def _model_values(self, values):
        x = _numbers(values, self.column)
        m, s = self._m_s()
        return (self._logit(x) - m) / s

    def to_user(self, v):
        m, s = self._m_s()
        lo, hi = self.constants["lo"], self.constants["hi"]
        u = 1 / (1 + np.exp(-(np.asarray(v, np.float64) * s + m)))
        x = lo + (hi - lo) * (u - self.EPS) / (1 - 2 * self.EPS)
        return np.clip(x, lo, hi)

    def log_jacobian(self, v):
        m, s = self._m_s()
        lo, hi = self.constants["lo"], self.constants["hi"]
        w = v * s + m  # the logit of u
        # dv/dx = (1 / s) (1 / (u (1 - u))) (1 - 2 eps) / (hi - lo)
        return (
            -math.log(s) - F.logsigmoid(w) - F.logsigmoid(-w) + math.log(1 - 2 * self.EPS) - math.log(hi - lo)
        )

    def describe(self):
        return f"logit-normal on [{self.constants['lo']:g}, {self.constants['hi']:g}]"


def natural_bounds(column: str, x: np.ndarray) -> tuple[float, float]:
    """The bounds a proportion column lives in: [0, 1] for values in [0, 1], [0, 100] for a
    percentage (values in [0, 100] and a name that says so), else the observed range."""
    lo, hi = float(np.min(x)), float(np.max(x))
    if lo >= 0 and hi <= 1:
        return 0.0, 1.0
    if lo >= 0 and hi <= 100 and _says_percent(column):
        return 0.0, 100.0
    return lo, hi


def _says_percent(column: str) -> bool:
    name = column.lower()
    return "%" in name or any(w in name for w in ("percent", "pct", "perc_", "_perc", "percentage"))


def _log_ndtr_diff(b: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """log(Phi(b) - Phi(a)) for b > a, accurate in both tails (the upper tail by symmetry)."""
    upper = a > 0
    hi = torch.where(upper, -a, b)
    lo = torch.where(upper, -b, a)
    log_hi, log_lo = torch.special.log_ndtr(hi), torch.special.log_ndtr(lo)
    return log_hi + torch.log1p(-torch.exp((log_lo - log_hi).clamp(max=-1e-12)))


@register("integer")
class Integer(ColumnType):
    """Whole numbers of any sign (a year, an age, a score): a Gaussian on the standardised value,
    discretised to the integers, so P(x = k) sums to 1 over k (a probability, in nats)."""

    n_params = 2
    discrete = True
    summary = "discretised Gaussian"

    @classmethod
    def fit(cls, column, values):
        x = _numbers(values, column)
        x = x[~np.isnan(x)]
        if not (bool(np.all(x == np.round(x)))):
            raise VaekitError(
                f"column {column!r} holds {x[x != np.round(x)][0]:g}, not a whole number; "
                f"use --column-types {column}=real."
            )
        m, s = _standardise(x)
        return cls(column, mean=m, std=s)

    def outside(self, values):
        x = _numbers(values, self.column)
        return (
            ~np.isnan(x) & (x != np.round(x)),
            "whole numbers",
            f"retrain with --column-types {self.column}=real",
        )

    def _model_values(self, values):
        return (_numbers(values, self.column) - self.constants["mean"]) / self.constants["std"]

    def to_user(self, v):
        return np.round(np.asarray(v, np.float64) * self.constants["std"] + self.constants["mean"])

    def log_prob(self, params, v):
        normal = _gaussian(params)
        half = 0.5 / self.constants["std"]
        return _log_ndtr_diff((v + half - normal.loc) / normal.scale, (v - half - normal.loc) / normal.scale)

    def sample(self, params):
        return _gaussian(params).sample()  # to_user rounds: P(round(X) = k) is the mass above

    def describe(self):
        return "discretised Gaussian (whole numbers)"


class _Labelled(ColumnType):
    """A column of a few values (numbers or text), coded 0..K-1 in the order `values` lists."""

    discrete = True

    @classmethod
    def _values_of(cls, column, values) -> list:
        seen = _observed(values)
        distinct = sorted(set(seen.tolist()), key=lambda v: (not is_number(v), _sort_key(v)))
        return [plain(v) for v in distinct]

    def _codes(self, values) -> list:
        """Each value's code, None where missing, -1 for a value never seen in training."""
        s = _series(values)
        lookup = {label_key(v): i for i, v in enumerate(self.constants["values"])}
        missing = s.isna().to_numpy()
        return [
            None if m else lookup.get(label_key(plain(v)), -1)
            for v, m in zip(s.tolist(), missing, strict=True)
        ]

    def outside(self, values):
        bad = np.array([k == -1 for k in self._codes(values)], dtype=bool)
        known = ", ".join(map(str, self.constants["values"][:12]))
        more = ", ..." if len(self.constants["values"]) > 12 else ""
        return bad, f"the values seen in training: {known}{more}", "retrain on data that has that value"

    def _model_values(self, values):
        return np.array([np.nan if k is None else k for k in self._codes(values)], dtype=np.float64)

    def to_user(self, v):
        labels = self.constants["values"]
        codes = np.asarray(v, np.float64)
        out = np.empty(len(codes), dtype=object)
        for i, c in enumerate(codes):
            out[i] = None if np.isnan(c) else labels[int(c)]
        if all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in labels):
            return np.array([np.nan if x is None else x for x in out], dtype=np.float64)
        return out

    def describe(self):
        shown = ", ".join(map(str, self.constants["values"][:6]))
        more = ", ..." if len(self.constants["values"]) > 6 else ""
        return f"{self.summary} over {len(self.constants['values'])} values ({shown}{more})"


def plain(v):
    """numpy scalars as Python ones (for config.yaml), whole floats as ints."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def label_key(v) -> str:
    """A category's value as one key: a number whatever its type (1, 1.0 and numpy's alike), text
    stripped (text "01" stays apart from the number 1)."""
    v = plain(v)
    return repr(float(v)) if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v).strip()


def _sort_key(v):
    return float(v) if is_number(v) else str(v)


@register("binary")
class Binary(_Labelled):
    summary = "Bernoulli"

    @classmethod
    def fit(cls, column, values):
        distinct = cls._values_of(column, values)
        check(
            len(distinct) <= 2,
            f"column {column!r} holds {len(distinct)} distinct values, so it cannot be binary; "
            f"use --column-types {column}=categorical.",
        )
        return cls(column, values=distinct)

    @property
    def constant(self) -> bool:
        """A column that took one value in training: that value has probability 1 (code 0)."""
        return len(self.constants["values"]) == 1

    def log_prob(self, params, v):
        if self.constant:  # log 1 for the one value; the code 1 names no value at all
            return torch.where(v == 0, 0.0, -math.inf).to(params.dtype).expand(params.shape[:-1])
        return D.Bernoulli(logits=params[..., 0], validate_args=False).log_prob(v)

    def point(self, params):
        if self.constant:
            return torch.zeros(params.shape[:-1], dtype=params.dtype, device=params.device)
        return (params[..., 0] > 0).to(params.dtype)

    def sample(self, params):
        if self.constant:
            return self.point(params)
        return D.Bernoulli(logits=params[..., 0], validate_args=False).sample()

    def describe(self):
        if self.constant:
            return f"constant ({self.constants['values'][0]}, probability 1)"
        return super().describe()


@register("categorical")
class Categorical(_Labelled):
    summary = "categorical"

    def __init__(self, column, **constants):
        super().__init__(column, **constants)
        self.n_params = self.n_inputs = len(constants["values"])

    @classmethod
    def fit(cls, column, values):
        distinct = cls._values_of(column, values)
        check(
            len(distinct) >= 1,
            f"column {column!r} has no observed values; drop it with --drop-columns {column}.",
        )
        return cls(column, values=distinct)

    def features(self, v):
        return F.one_hot(v.long(), self.n_inputs).to(v.dtype)

    def log_prob(self, params, v):
        return D.Categorical(logits=params, validate_args=False).log_prob(v.long())

    def point(self, params):
        return params.argmax(-1).to(params.dtype)

    def sample(self, params):
        return D.Categorical(logits=params, validate_args=False).sample().to(params.dtype)


@register("count")
class Count(ColumnType):
    """Whole numbers from the smallest value seen, lo (events, visits, household sizes from 1,
    years): x - lo follows a negative binomial with mean mu = exp(a + log m) and dispersion
    r = exp(b) per row, where m is the training mean of x - lo (so an untrained decoder starts
    at it). Var = mu + mu^2 / r: r -> inf is Poisson. lo comes from every row (no split decides
    the support); a value below it is outside the support."""

    n_params = 2
    discrete = True
    summary = "negative binomial"

    @classmethod
    def fit(cls, column, values, lo: float | None = None):
        x = _numbers(values, column)
        x = x[~np.isnan(x)]
        if not bool(np.all((x >= 0) & (x == np.round(x)))):
            raise VaekitError(
                f"column {column!r} holds {x[(x < 0) | (x != np.round(x))][0]:g}, not a count "
                f"(a whole number >= 0); use --column-types {column}=integer or real."
            )
        lo = float(np.min(x)) if lo is None else float(lo)
        v = x - lo
        m, s = _standardise(np.log1p(v))
        return cls(column, lo=lo, mean=float(np.mean(v)), log1p_mean=m, log1p_std=s)

    def _lo(self) -> float:
        return float(self.constants.get("lo", 0.0))  # runs written before lo existed count from 0

    def outside(self, values):
        x = _numbers(values, self.column)
        lo = self._lo()
        bad = ~np.isnan(x) & ((x < lo) | (x != np.round(x)))
        return (
            bad,
            f"whole numbers >= {lo:g}, the smallest in training",
            "retrain on data that has that value",
        )

    def _model_values(self, values):
        return _numbers(values, self.column) - self._lo()

    def to_user(self, v):
        return np.round(np.asarray(v, np.float64)) + self._lo()

    def features(self, v):
        c = self.constants
        return ((torch.log1p(v) - c["log1p_mean"]) / c["log1p_std"]).unsqueeze(-1)

    def _nb(self, params) -> D.NegativeBinomial:
        log_mu = params[..., 0].clamp(-20.0, 20.0) + math.log(self.constants["mean"] + 1e-3)
        log_r = params[..., 1].clamp(-7.0, 10.0)
        # torch's parameterisation: mean = r p / (1 - p), so logits = log mu - log r
        return D.NegativeBinomial(total_count=log_r.exp(), logits=log_mu - log_r, validate_args=False)

    def log_prob(self, params, v):
        return self._nb(params).log_prob(v)

    def point(self, params):
        return self._nb(params).mean

    def sample(self, params):
        return self._nb(params).sample()

    def describe(self):
        lo = self._lo()
        return f"negative binomial (whole numbers >= {lo:g}, mean {self.constants['mean'] + lo:.4g})"


@register("nonnegative")
class NonNegative(ColumnType):
    """Numbers >= 0 with exact zeros (rainfall, spending, hours of an activity): a hurdle
    log-normal. P(x = 0) = pi (a probability) and, for x > 0, the density (1 - pi) LogNormal(x)
    in the user's units; pi, mu and sigma per row from the decoder. In the model's units a zero
    is the code `ZERO` (far below any positive value's standardised log) and the encoder sees
    whether x is zero beside log x."""

    n_params = 3
    n_inputs = 2
    summary = "hurdle log-normal"
    ZERO = -1e6  # exact in float32; a positive value is never coded below ZERO / 2

    @classmethod
    def fit(cls, column, values):
        x = _numbers(values, column)
        x = x[~np.isnan(x)]
        if not bool(np.all(x >= 0)):
            raise VaekitError(
                f"column {column!r} holds {x[x < 0].min():g}, so it cannot be non-negative; "
                f"use --column-types {column}=real."
            )
        positive = x[x > 0]
        m, s = _standardise(np.log(positive)) if len(positive) else (0.0, 1.0)
        return cls(column, mean=m, std=s, zeros=float(np.mean(x == 0)))

    def outside(self, values):
        x = _numbers(values, self.column)
        m, s = self.constants["mean"], self.constants["std"]
        with np.errstate(divide="ignore", invalid="ignore"):
            tiny = (x > 0) & ((np.log(x) - m) / s <= self.ZERO / 2)  # beyond what the zero code allows
        return (x < 0) | tiny, "values >= 0", f"retrain with --column-types {self.column}=real"

    def _model_values(self, values):
        x = _numbers(values, self.column)
        m, s = self.constants["mean"], self.constants["std"]
        with np.errstate(divide="ignore", invalid="ignore"):
            v = (np.log(x) - m) / s
        v = np.where(x == 0, self.ZERO, v)
        return np.where(np.isnan(x), np.nan, v)

    def to_user(self, v):
        v = np.asarray(v, np.float64)
        m, s = self.constants["mean"], self.constants["std"]
        return np.where(v <= self.ZERO / 2, 0.0, np.exp(v * s + m))

    def features(self, v):
        zero = (v <= self.ZERO / 2).to(v.dtype)
        return torch.stack([zero, torch.where(zero > 0, torch.zeros_like(v), v)], dim=-1)

    def _parts(self, params):
        return params[..., 0], _gaussian(params[..., 1:])

    def log_prob(self, params, v):
        logit_zero, normal = self._parts(params)
        zero = v <= self.ZERO / 2
        m, s = self.constants["mean"], self.constants["std"]
        safe = torch.where(zero, torch.zeros_like(v), v)
        # log (1 - pi) + log N(v) + log |dv/dx| with dv/dx = 1 / (s x), log x = v s + m
        positive = F.logsigmoid(-logit_zero) + normal.log_prob(safe) - math.log(s) - (safe * s + m)
        return torch.where(zero, F.logsigmoid(logit_zero), positive)

    def point(self, params):
        logit_zero, normal = self._parts(params)
        return torch.where(logit_zero > 0, torch.full_like(normal.loc, self.ZERO), normal.loc)

    def sample(self, params):
        logit_zero, normal = self._parts(params)
        zero = D.Bernoulli(logits=logit_zero, validate_args=False).sample() > 0
        return torch.where(zero, torch.full_like(normal.loc, self.ZERO), normal.sample())

    def describe(self):
        return f"hurdle log-normal (x >= 0, {100 * self.constants['zeros']:.3g}% zeros in training)"


def from_spec(spec: dict) -> ColumnType:
    """A typed column from its config.yaml entry ({"name", "type", constants...})."""
    spec = dict(spec)
    kind = spec.pop("type")
    check(kind in COLUMN_TYPES, f"Unknown column type {kind!r}; choose one of {', '.join(COLUMN_TYPES)}.")
    return COLUMN_TYPES[kind](spec.pop("name"), **spec)


# ----------------------------------------------------------------------------- the table


class Schema:
    """A table's typed columns, in the order of the model's inputs. `missing` says whether the
    model takes missing cells (--missing model): then the encoder sees a mask beside the values."""

    def __init__(self, columns: list[ColumnType], missing: bool = False):
        self.columns = list(columns)
        self.missing = bool(missing)

    @property
    def names(self) -> list[str]:
        """The column names, in order."""
        return [c.column for c in self.columns]

    @property
    def types(self) -> dict[str, str]:
        """column name -> type name."""
        return {c.column: c.name for c in self.columns}

    def to_model(self, frame) -> np.ndarray:
        """A DataFrame with (at least) these columns -> model values (n, d) float64, NaN where a
        cell is missing. Raises `VaekitError` for a value outside a column's support."""
        if len(self.columns) == 0:
            return np.zeros((len(frame), 0))
        cells, said = self.outside(frame)
        if said:
            raise VaekitError(
                f"{int(cells.any(axis=1).sum())} of {len(frame)} rows hold a value outside what the model "
                f"was trained on ({'; '.join(said)}); drop those rows (`vaekit score` scores them as "
                "impossible), or retrain on data that has them."
            )
        return np.stack([c._model_values(frame[c.column]) for c in self.columns], axis=1)

    def outside(self, frame) -> tuple[np.ndarray, list[str]]:
        """The cells the model gives probability zero (an unseen category, a count below the
        smallest seen, a value past a bound): (mask (n, d) bool, one sentence per column that
        has any, naming its first such value and the support)."""
        masks, said = [], []
        for c in self.columns:
            bad, support, _ = c.outside(frame[c.column])
            if not isinstance(c, _Labelled):  # an infinite number is in no column's support
                with np.errstate(invalid="ignore"):
                    infinite = np.isinf(_numbers(frame[c.column], c.column))
                if infinite.any():
                    bad, support = np.asarray(bad, dtype=bool) | infinite, support or "finite values"
            masks.append(np.asarray(bad, dtype=bool))
            if bad.any():
                row = int(np.argmax(bad))
                value = plain(frame[c.column].iloc[row])
                cells = f"{int(bad.sum())} cell{'s' if bad.sum() > 1 else ''}"
                said.append(f"{c.column!r}: {cells}, the first {value!r} at row {row} ({support})")
        return (np.stack(masks, axis=1) if masks else np.zeros((len(frame), 0), bool)), said

    def to_user(self, v: np.ndarray):
        """Model values (n, d) -> a DataFrame in the user's units (float64 numbers, whole numbers,
        labels), one column per typed column."""
        import pandas as pd

        v = np.asarray(v, np.float64).reshape(len(v), -1)
        out = {}
        for j, c in enumerate(self.columns):
            values = c.to_user(v[:, j])
            if values.dtype == np.float64 and c.discrete and np.all(values[~np.isnan(values)] % 1 == 0):
                values = pd.array(np.where(np.isnan(values), 0, values).astype(np.int64), dtype="Int64")
                values[np.isnan(c.to_user(v[:, j]))] = pd.NA
            out[c.column] = values
        return pd.DataFrame(out)

    def spec(self) -> dict:
        """config.yaml's entry: {"missing": bool, "columns": [column specs]}."""
        return {"missing": self.missing, "columns": [_yaml_safe(c.spec()) for c in self.columns]}

    @classmethod
    def from_spec(cls, spec: dict) -> Schema:
        """The schema `spec()` wrote."""
        return cls([from_spec(c) for c in spec["columns"]], spec.get("missing", False))

    def all_real(self) -> bool:
        """Whether every column is `real` (a plain Gaussian on standardised values)."""
        return all(c.name == "real" for c in self.columns)

    def describe_lines(self) -> list[str]:
        """One line per column: name, type and how it is modelled."""
        width = max([len(n) for n in self.names] + [4])
        return [f"  {c.column:<{width}}  {c.name:<11}  {c.describe()}" for c in self.columns]


def _yaml_safe(obj):
    if isinstance(obj, dict):
        return {k: _yaml_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_yaml_safe(v) for v in obj]
    return plain(obj)


# ----------------------------------------------------------------------------- torch modules


class Features(nn.Module):
    """The encoder's view of a row: each column's inputs (`ColumnType.features`; one-hot for
    categories), missing cells as 0, then (when the schema takes missing cells) a 0/1 mask of
    the missing cells. (batch, d) model values with NaN -> (batch, n_features)."""

    def __init__(self, schema: Schema):
        super().__init__()
        self.schema = schema
        self.n_features = sum(c.n_inputs for c in schema.columns) + (len(schema.columns) * schema.missing)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        missing = torch.isnan(x)
        v = torch.where(missing, torch.zeros_like(x), x)
        parts = [c.features(v[:, j]) for j, c in enumerate(self.schema.columns)]
        if self.schema.missing:
            parts.append(missing.to(x.dtype))
        return torch.cat(parts, dim=1)


def squared_error(schema: Schema, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The squared distance (batch,) between rows x (with NaN for missing cells) and y in the
    encoder's feature units (`ColumnType.features`: standardised values, one-hot categories,
    standardised log counts, a zero flag beside a non-negative column's log), over the observed
    cells of x: a reconstruction error that means the same for every column type."""
    missing = torch.isnan(x)
    out = torch.zeros(x.shape[:-1], dtype=y.dtype, device=y.device)
    for j, column in enumerate(schema.columns):
        seen = ~missing[..., j]
        a = column.features(torch.where(seen, x[..., j], torch.zeros_like(y[..., j])))
        b = column.features(torch.where(seen, y[..., j], torch.zeros_like(y[..., j])))
        out = out + torch.where(seen, (a - b).pow(2).sum(-1), torch.zeros_like(out))
    return out


class FeaturesEncoder(nn.Module):
    """`Features` in front of an encoder net: encoder(features(x), c)."""

    def __init__(self, features: Features, net: nn.Module):
        super().__init__()
        self.features, self.net = features, net

    def forward(self, x, c=None):
        return self.net(self.features(x), c)


class TableDistribution:
    """p(x | z) of a table row: the product of its columns' distributions. Batch shape is the
    decoder output's leading shape; `log_prob(x)` sums the observed cells' log-likelihoods (nats;
    a missing cell, NaN in x, adds 0)."""

    def __init__(self, schema: Schema, params: torch.Tensor):
        self.schema = schema
        self.params = params
        self.batch_shape = params.shape[:-1]
        offsets = np.cumsum([0] + [c.n_params for c in schema.columns])
        self._slices = [slice(int(a), int(b)) for a, b in zip(offsets[:-1], offsets[1:], strict=True)]

    def _column_params(self, j: int) -> torch.Tensor:
        return self.params[..., self._slices[j]]

    def log_prob_columns(self, x: torch.Tensor) -> torch.Tensor:
        """Per-cell log-likelihoods (..., d) in nats, 0 for missing cells."""
        missing = torch.isnan(x)
        v = torch.where(missing, torch.zeros_like(x), x)
        out = [c.log_prob(self._column_params(j), v[..., j]) for j, c in enumerate(self.schema.columns)]
        logp = torch.stack(torch.broadcast_tensors(*out), dim=-1)
        return torch.where(missing, torch.zeros_like(logp), logp)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x | z) per row (...,): the sum over observed cells, nats."""
        return self.log_prob_columns(x).sum(-1)

    @property
    def mean(self) -> torch.Tensor:
        """Each column's typical value (..., d) in model units (`ColumnType.point`)."""
        return torch.stack(
            [c.point(self._column_params(j)) for j, c in enumerate(self.schema.columns)], dim=-1
        )

    def sample(self) -> torch.Tensor:
        """One draw of each cell (..., d) in model units."""
        with torch.no_grad():
            return torch.stack(
                [c.sample(self._column_params(j)) for j, c in enumerate(self.schema.columns)], dim=-1
            )


@likelihoods.register("columns")
class ColumnLikelihood(likelihoods.Likelihood):
    """A table's likelihood: one typed distribution per column (`vaekit.columns`), the decoder
    emitting each column's parameters. Built from `columns`, config.yaml's schema entry.
    `spread`: "row" (the decoder gives each column's spread, log sigma or a count's log
    dispersion, per row: heteroscedastic, e.g. a class with its own spread) or "column" (one
    learned spread per column, the same for every row)."""

    SPREADS = ("row", "column")

    def __init__(self, shape, columns: dict | None = None, spread: str = "row", **_):
        super().__init__(shape)
        if columns is None:
            raise VaekitError(
                "The columns likelihood models a table's typed columns; it is chosen for tables "
                "automatically (--likelihood auto)."
            )
        self.schema = Schema.from_spec(columns)
        check(
            len(self.schema.columns) == math.prod(self.shape),
            f"The columns likelihood has {len(self.schema.columns)} columns but the data has "
            f"{math.prod(self.shape)} values per example.",
        )
        self.param_shape = (sum(c.n_params for c in self.schema.columns),)
        check(
            spread in self.SPREADS,
            f"--column-spread must be one of {', '.join(self.SPREADS)}, not {spread!r}.",
        )
        self.spread = spread
        # each column's spread (log sigma; a count's log dispersion) is its second parameter
        offsets = np.cumsum([0] + [c.n_params for c in self.schema.columns])[:-1]
        slots = [int(o) + 1 for o, c in zip(offsets, self.schema.columns, strict=True) if c.n_params == 2]
        self.register_buffer("spread_slots", torch.tensor(slots, dtype=torch.long), persistent=False)
        if spread == "column":  # one learned value per column instead of the decoder's per row
            self.log_spread = nn.Parameter(torch.zeros(len(slots)))

    def forward(self, params):
        if self.spread == "column" and len(self.spread_slots):
            shared = self.log_spread.expand(*params.shape[:-1], len(self.spread_slots))
            params = params.index_copy(-1, self.spread_slots, shared.to(params.dtype))
        return TableDistribution(self.schema, params)

    def settings(self):
        return {"columns": self.schema.spec(), "spread": self.spread}


# ----------------------------------------------------------------------------- choosing types


def float_profiles(frame, names: list[str], chunk: int = 1 << 16) -> dict[str, tuple[int, float, float]]:
    """(missing cells, smallest, largest value) of each float64 column of `frame` in `names`, from
    one pass over the rows in chunks. A table read as one row-major block (an HDF5 dataset) is
    then never walked column by column, which reads every memory page once per column."""
    floats = [n for n in names if frame[n].dtype == np.float64]
    if not floats:
        return {}
    block = frame[floats].to_numpy(dtype=np.float64)  # no copy when the columns are one block
    missing = np.zeros(len(floats), dtype=np.int64)
    lo, hi = np.full(len(floats), np.inf), np.full(len(floats), -np.inf)
    for start in range(0, len(block), chunk):
        rows = block[start : start + chunk]
        missing += np.isnan(rows).sum(axis=0)
        lo, hi = np.fmin(lo, np.fmin.reduce(rows, axis=0)), np.fmax(hi, np.fmax.reduce(rows, axis=0))
    return {n: (int(m), float(a), float(b)) for n, m, a, b in zip(floats, missing, lo, hi, strict=True)}


def infer(column: str, values, profile: tuple[int, float, float] | None = None) -> tuple[str | None, str]:
    """The type a column's values call for, or (None, why not) for a column that cannot be
    modelled as it is (dates, free text, a text column whose every value is distinct).

    Numbers: two values -> binary; at most `MAX_LEVELS` values each seen at least 5 times
    (levels, codes, years; not a count starting at 0 or 1) -> categorical; whole numbers >= 0 ->
    count (from the smallest value seen); other whole numbers -> integer; values in [0, 1] (or a
    percentage in [0, 100]) -> bounded;
    other values >= 0 with exact zeros -> nonnegative; positive values whose logarithm is less
    skewed than they are -> positive; else real. Booleans ->
    binary. Text: two values -> binary; up to `MAX_CATEGORIES` values that repeat ->
    categorical. `profile`: the column's (missing cells, min, max) when already known
    (`float_profiles`), which spares a pass over it."""
    import pandas as pd

    s = _series(values)
    seen = s if profile is not None and profile[0] == 0 else s[s.notna()]  # (the profile counted them)
    if len(seen) == 0:
        return None, "every cell is missing"
    dtype = seen.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "binary", ""
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return None, "dates"
    if pd.api.types.is_numeric_dtype(dtype):
        x = seen.to_numpy(dtype=np.float64)
        lo, hi = profile[1:] if profile is not None else (float(x.min()), float(x.max()))
        if not (np.isfinite(lo) and np.isfinite(hi)):
            return None, "infinite values"
        # a long column is first judged on its first rows: more than MAX_LEVELS values there, or a
        # fraction there, spares sorting or rounding the whole column
        head = x[:1000]
        head_levels = np.unique(head)
        distinct = head_levels if len(head_levels) > MAX_LEVELS else np.unique(x)
        if len(distinct) <= 2:
            return "binary", ""
        # a few values, each seen often: levels, codes or years, modelled over the values seen
        few = len(distinct) <= MAX_LEVELS and len(x) >= 5 * len(distinct)
        if np.all(head == np.round(head)) and np.all(x == np.round(x)):
            if lo >= 0:  # a count starts at 0 or 1; a few whole values far from 0 are levels
                return ("categorical", "") if few and lo > 1 else ("count", "")
            return ("categorical", "") if few else ("integer", "")
        if few:
            return "categorical", ""
        if lo >= 0 and (hi <= 1 or (hi <= 100 and _says_percent(column))):
            return "bounded", ""
        if lo == 0:
            return "nonnegative", ""
        sample = x[:: max(1, len(x) // 20_000)]  # the skewness of 20,000 evenly spaced rows
        if lo > 0 and abs(_skew(np.log(sample))) < abs(_skew(sample)):
            return "positive", ""
        return "real", ""
    text = seen.astype(str)
    numbers = text.map(is_number)
    if numbers.mean() >= 0.5 and not numbers.all():
        return None, f"numbers, but holds {text[~numbers].iloc[0]!r}"
    n_distinct = text.nunique()
    if n_distinct <= 2:
        return "binary", ""
    if n_distinct == len(text):
        return None, "text, every value distinct"
    if n_distinct > MAX_CATEGORIES or n_distinct > len(text) / 2:
        return None, f"text with {n_distinct} distinct values"
    return "categorical", ""


def _skew(x: np.ndarray) -> float:
    s = np.std(x)
    return float(np.mean((x - np.mean(x)) ** 3) / s**3) if s > 0 else 0.0


def fit_schema(frame, types: dict[str, str], train, missing: bool = False) -> Schema:
    """Each column of `frame` typed as `types` says, its constants fitted on the rows `train`
    (an index or mask); the values a labelled column can take come from every row (no split
    decides which categories exist), as do a bounded column's natural bounds."""
    import pandas as pd

    cols = []
    for name, kind in types.items():
        cls = COLUMN_TYPES[kind]
        if issubclass(cls, _Labelled):
            cols.append(cls.fit(name, frame[name]))
        elif cls is Count:
            x = pd.to_numeric(frame[name]).astype("float64").to_numpy(na_value=np.nan)
            cols.append(cls.fit(name, frame[name].iloc[train], lo=float(np.nanmin(x))))
        elif cls is Bounded:
            x = pd.to_numeric(frame[name]).astype("float64").to_numpy(na_value=np.nan)
            lo, hi = natural_bounds(name, x[~np.isnan(x)])
            cols.append(cls.fit(name, frame[name].iloc[train], lo=lo, hi=hi))
        else:
            cols.append(cls.fit(name, frame[name].iloc[train]))
    return Schema(cols, missing)


def parse_types(text) -> dict[str, str]:
    """--column-types "price=positive,cut=categorical" (or a config mapping) -> {column: type}.
    Raises `VaekitError` for a malformed entry or an unknown type."""
    if text is None or text == "":
        return {}
    if isinstance(text, dict):
        pairs = [(str(k), str(v)) for k, v in text.items()]
    else:
        pairs = []
        for part in str(text).split(","):
            if not part.strip():
                continue
            check(
                "=" in part,
                f"--column-types takes NAME=TYPE pairs, comma separated (e.g. visits=count), not {part!r}.",
            )
            name, kind = part.rsplit("=", 1)
            pairs.append((name.strip(), kind.strip()))
    for name, kind in pairs:
        check(
            kind in COLUMN_TYPES,
            f"--column-types gives {name!r} the type {kind!r}; the types are {', '.join(COLUMN_TYPES)}.",
        )
    return dict(pairs)
