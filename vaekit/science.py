"""What scientists do with per-example scores: anomaly detection against labelled signal, and a
classifier two-sample test. Arrays in, numbers out: no model here (the scores come from
`vaekit.evaluate.sampled_scores`, the one loss path), so every function is testable on scores
with a known answer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from vaekit.errors import VaekitError, check

CUT_QUANTILES = (0.9, 0.99, 0.999)
ROC_POINTS = 200  # points kept of each ROC curve in the JSON table


def _scores(values, what: str) -> np.ndarray:
    out = np.asarray(values, dtype=np.float64).reshape(-1)
    check(len(out) >= 1, f"The {what} sample is empty; give at least one example.")
    check(bool(np.isfinite(out).all()), f"The {what} scores hold NaN or infinite values; check the run.")
    return out


def auc(background, signal) -> tuple[float, float]:
    """The ROC AUC of a score that should be higher for signal, and its standard error.

    Args:
        background: (n_b,) scores of background examples (any units; higher = more signal-like).
        signal: (n_s,) scores of signal examples, in the same units.
    Returns (AUC, s.e.): AUC = P(score_signal > score_background) + P(tie) / 2 (scikit-learn's
    `roc_auc_score`); s.e. from Hanley & McNeil (1982, eq. 2), the binormal-free approximation.
    Raises `VaekitError` for an empty sample or non-finite scores.
    """
    from sklearn.metrics import roc_auc_score

    b, s = _scores(background, "background"), _scores(signal, "signal")
    y = np.r_[np.zeros(len(b)), np.ones(len(s))]
    a = float(roc_auc_score(y, np.r_[b, s]))
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    var = (a * (1 - a) + (len(s) - 1) * (q1 - a * a) + (len(b) - 1) * (q2 - a * a)) / (len(s) * len(b))
    return a, float(math.sqrt(max(var, 0.0)))


def roc(background, signal, points: int = ROC_POINTS) -> dict[str, list[float]]:
    """The ROC curve (scikit-learn's `roc_curve`), thinned to about `points` points: background
    efficiency (false-positive rate) and signal efficiency (true-positive rate) of the cut
    `score > threshold`, as lists for a JSON table."""
    from sklearn.metrics import roc_curve

    b, s = _scores(background, "background"), _scores(signal, "signal")
    fpr, tpr, thresholds = roc_curve(np.r_[np.zeros(len(b)), np.ones(len(s))], np.r_[b, s])
    keep = np.unique(np.linspace(0, len(fpr) - 1, min(points, len(fpr))).round().astype(int))
    return {
        "background_efficiency": fpr[keep].tolist(),
        "signal_efficiency": tpr[keep].tolist(),
        "threshold": [float(t) if np.isfinite(t) else None for t in thresholds[keep]],
    }


def efficiency_at_cuts(background, signal, quantiles=CUT_QUANTILES) -> list[dict]:
    """Signal efficiency of the cut `score > c`, with c the background's q-quantile.

    Args:
        background: (n_b,) scores of background examples; higher = more signal-like.
        signal: (n_s,) scores of signal examples, in the same units.
        quantiles: each in (0, 1), e.g. 0.99 keeps 1 % of the background.
    Returns one dict per quantile: `quantile`, `cut` (the score value), `background_efficiency`
    (fraction of the background above the cut, about 1 - q), `signal_efficiency` (fraction of
    the signal above it) and `background_events` (how many background events fix the cut: fewer
    than about 10 make it noise). Raises `VaekitError` for a quantile outside (0, 1).
    """
    b, s = _scores(background, "background"), _scores(signal, "signal")
    out = []
    for q in quantiles:
        check(0 < q < 1, f"A background quantile must be between 0 and 1 (e.g. 0.99), not {q}.")
        cut = float(np.quantile(b, q))
        out.append(
            {
                "quantile": float(q),
                "cut": cut,
                "background_efficiency": float((b > cut).mean()),
                "signal_efficiency": float((s > cut).mean()),
                "background_events": int((b > cut).sum()),
            }
        )
    return out


def anomaly_table(background: dict, signal: dict, quantiles=CUT_QUANTILES) -> dict:
    """For each score name in both dicts (name -> (n,) array): AUC with its standard error, the
    efficiencies at background-quantile cuts and the ROC curve. A score for which signal scores
    LOWER than background (AUC < 0.5) is reported as it is: the AUC says so."""
    out = {}
    for name in background:
        if name not in signal:
            continue
        a, se = auc(background[name], signal[name])
        out[name] = {
            "auc": a,
            "auc_stderr": se,
            "cuts": efficiency_at_cuts(background[name], signal[name], quantiles),
            "roc": roc(background[name], signal[name]),
        }
    return out


# ------------------------------------------------------------------ classifier two-sample test
CLASSIFIERS = ("gbt", "logistic")


@dataclass
class TwoSample:
    """The result of a classifier two-sample test (Lopez-Paz & Oquab, 2017).

    `accuracy`: balanced accuracy on the held-out side (0.5 = indistinguishable); `null`: its
    values under H0 (test labels permuted); `p_value` = (1 + #(null >= accuracy)) / (1 + P);
    `n_train`, `n_test`: examples on each side; `test_index` (m,) indices into the stacked
    [a; b]; `test_prob_b` (m,) the classifier's P(from b) for them; `duplicates`: rows that occur
    more than once (all copies kept on one side)."""

    accuracy: float
    null: np.ndarray
    p_value: float
    n_train: int
    n_test: int
    test_index: np.ndarray
    test_prob_b: np.ndarray
    duplicates: int
    classifier: str
    extra: dict = field(default_factory=dict)

    def summary(self) -> dict:
        """The JSON-able figures: accuracy, null mean/sd/95th percentile, p-value (with
        `p_value_text`, the way to print it, and `p_value_at_floor`), sizes."""
        return {
            "balanced_accuracy": self.accuracy,
            "p_value": self.p_value,
            "p_value_text": p_value_text(self.p_value, len(self.null)),
            "p_value_at_floor": bool(self.p_value <= 1 / (1 + len(self.null)) + 1e-15),
            "null_mean": float(self.null.mean()),
            "null_sd": float(self.null.std()),
            "null_95": float(np.quantile(self.null, 0.95)),
            "permutations": len(self.null),
            "n_train": self.n_train,
            "n_test": self.n_test,
            "duplicated_rows": self.duplicates,
            "classifier": self.classifier,
            **self.extra,
        }


def p_value_text(p: float, permutations: int) -> str:
    """A permutation p-value as it should be printed: "0.0312", or, at its floor 1 / (1 + P)
    (no permutation reached the observed value), "< 0.001 (1,000 permutations)": the test
    cannot resolve smaller p-values, and 0.000999 would read as a measured value."""
    if p <= 1 / (1 + permutations) + 1e-15:
        return f"< {1 / permutations:.2g} ({permutations:,} permutations)"
    return f"{p:.3g}"


def p_value_phrase(p: float, permutations: int) -> str:
    """ "p = 0.0312", or "p < 0.001 (1,000 permutations)" at the floor (`p_value_text`)."""
    text = p_value_text(p, permutations)
    return f"p {text}" if text.startswith("<") else f"p = {text}"


def row_keys(x: np.ndarray) -> np.ndarray:
    """One hashable key per row (n,): its bytes, so rows with identical values (NaN included)
    have equal keys."""
    flat = np.ascontiguousarray(np.asarray(x).reshape(len(x), -1))
    return flat.view(np.dtype((np.void, flat.dtype.itemsize * flat.shape[1]))).ravel()


def row_groups(x: np.ndarray) -> tuple[np.ndarray, int]:
    """One group id per row (n,), equal for rows with identical values, and the number of rows
    that have a copy elsewhere."""
    _, inverse, counts = np.unique(row_keys(x), return_inverse=True, return_counts=True)
    return inverse.reshape(-1), int((counts[inverse] > 1).sum())


GBT_MIN_ROWS = 40  # HistGradientBoosting's min_samples_leaf (20) on each side of its first split


def _classifier(name: str, seed: int):
    if name == "gbt":
        from sklearn.ensemble import HistGradientBoostingClassifier

        return HistGradientBoostingClassifier(random_state=seed)
    if name == "logistic":
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    raise VaekitError(f"Unknown classifier {name!r}; choose one of {', '.join(CLASSIFIERS)}.")


def two_sample_test(
    a,
    b,
    classifier: str = "gbt",
    test_fraction: float = 0.5,
    permutations: int = 1000,
    seed: int = 0,
) -> TwoSample:
    """Classifier two-sample test (Lopez-Paz & Oquab, 2017, sec. 2): train a classifier to tell
    sample `a` from sample `b` on one part of the data, and measure its balanced accuracy on the
    rest; under H0 (same distribution) it is 0.5 up to noise.

    The split is by row content: every copy of a repeated row lands on the same side (repeated
    rows straddling the split let a classifier memorise them and look separable when a and b
    are the same). The null distribution permutes the held-out labels: the classifier was fit
    on the other side, so under H0 the held-out labels are exchangeable given its predictions,
    and the permutation p-value is exact (no retraining needed).

    Args:
        a: (n_a, ...) examples of the first sample.
        b: (n_b, ...) examples of the second, with as many values per example (flattened).
        classifier: "gbt" (scikit-learn's histogram gradient boosting, for tables and images) or
            "logistic" (standardised logistic regression: a linear test).
        test_fraction: share of the row groups held out, in (0, 1).
        permutations: P >= 19 label permutations for the null (19 resolve p = 0.05).
    Gradient boosting cannot split fewer than `GBT_MIN_ROWS` training rows: the test then uses
    logistic regression and says so (`extra["classifier_note"]`).
    A classifier that gives every held-out example the same answer has accuracy exactly 0.5
    with a null of spread 0: said in `extra["classifier_note"]`, and refused when the training
    half has fewer than 2 x `GBT_MIN_ROWS` rows (then it is no test at all).
    Raises `VaekitError` for samples of different widths, fewer than 4 examples each, or an
    out-of-range setting.
    """
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.model_selection import GroupShuffleSplit

    a = np.asarray(a, dtype=np.float32).reshape(len(a), -1)
    b = np.asarray(b, dtype=np.float32).reshape(len(b), -1)
    check(
        a.shape[1] == b.shape[1],
        f"The two samples have {a.shape[1]} and {b.shape[1]} values per example; "
        "give samples of the same kind.",
    )
    check(min(len(a), len(b)) >= 4, "Each sample needs at least 4 examples for a two-sample test.")
    check(0 < test_fraction < 1, f"The test fraction must be between 0 and 1, not {test_fraction}.")
    check(
        permutations >= 19,
        f"--permutations must be at least 19, not {permutations}: P permutations cannot show a p-value below "
        "1/(P+1), and 19 resolve p = 0.05.",
    )
    x = np.concatenate([a, b])
    y = np.r_[np.zeros(len(a), dtype=int), np.ones(len(b), dtype=int)]
    groups, duplicates = row_groups(x)
    distinct = len(np.unique(groups))
    check(
        distinct >= 4,
        f"The two samples hold only {distinct} distinct row{'s' if distinct != 1 else ''} between them "
        f"({len(x)} rows, copies kept together), too few to split for a two-sample test; give samples with "
        "more distinct examples.",
    )
    splitter = GroupShuffleSplit(n_splits=1, test_size=test_fraction, random_state=seed)
    train, test = next(splitter.split(x, y, groups))
    check(
        len(np.unique(y[train])) == 2 and len(np.unique(y[test])) == 2,
        "After keeping repeated rows together, one side of the split lacks one of the samples; "
        "give more distinct examples.",
    )
    extra = {}
    if classifier == "gbt" and len(train) < GBT_MIN_ROWS:
        classifier = "logistic"
        extra["classifier_note"] = (
            f"The training half has {len(train)} rows, too few for gradient boosting to make one split "
            f"(it needs {GBT_MIN_ROWS}); the test used logistic regression instead."
        )
    model = _classifier(classifier, seed).fit(x[train], y[train])
    prob = model.predict_proba(x[test])[:, 1]
    predicted = (prob > 0.5).astype(int)
    if len(np.unique(predicted)) == 1:
        if len(train) < 2 * GBT_MIN_ROWS:  # too few rows to learn anything: no test at all
            raise VaekitError(
                f"The {classifier} classifier gave all {len(test)} held-out examples the same answer, so the "
                "test measures nothing (it would read as balanced accuracy 0.5 with p = 1); give more "
                f"examples (the training half has {len(train)} rows)."
            )
        extra["classifier_note"] = (
            f"The {classifier} classifier gave all {len(test)} held-out examples the same answer: it found "
            "nothing to tell the samples apart by (balanced accuracy 0.5, a null of spread 0, p = 1)."
        )
    accuracy = float(balanced_accuracy_score(y[test], predicted))
    null = permutation_null(y[test], predicted, permutations, seed)
    p = float((1 + (null >= accuracy - 1e-12).sum()) / (1 + permutations))
    return TwoSample(accuracy, null, p, len(train), len(test), test, prob, duplicates, classifier, extra)


def balanced_accuracy(labels: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Balanced accuracy (TPR + TNR) / 2 of 0/1 `predicted` (m,) against 0/1 `labels` (m,) or a
    stack of label vectors (P, m), vectorised over the stack: (P,) or a scalar array."""
    labels = np.asarray(labels, dtype=bool)
    hit = labels == np.asarray(predicted, dtype=bool)
    pos = labels.sum(-1)
    tpr = (hit & labels).sum(-1) / np.maximum(pos, 1)
    tnr = (hit & ~labels).sum(-1) / np.maximum(labels.shape[-1] - pos, 1)
    return (tpr + tnr) / 2


def permutation_null(labels, predicted, permutations: int, seed: int = 0, chunk: int = 100) -> np.ndarray:
    """Balanced accuracy of fixed predictions under `permutations` random permutations of the
    0/1 labels (m,): the null distribution of the held-out accuracy, (permutations,)."""
    gen = np.random.default_rng(seed)
    labels = np.asarray(labels, dtype=bool)
    out = []
    for start in range(0, permutations, chunk):
        k = min(chunk, permutations - start)
        shuffled = gen.permuted(np.broadcast_to(labels, (k, len(labels))), axis=1)
        out.append(balanced_accuracy(shuffled, predicted))
    return np.concatenate(out)


def extremes(result: TwoSample, n_a: int, k: int = 8) -> dict[str, np.ndarray]:
    """Indices (into a or b) of the held-out examples the classifier is surest about:
    `b_most_b` (b's examples it finds most b-like: for a model's samples, the most fake),
    `b_most_a` (b's examples it takes for a: the most realistic) and `a_most_b` (a's examples
    it takes for b: real data the model does not cover)."""
    idx, prob = result.test_index, result.test_prob_b
    from_b = idx >= n_a
    b_idx, b_prob = idx[from_b] - n_a, prob[from_b]
    a_idx, a_prob = idx[~from_b], prob[~from_b]
    return {
        "b_most_b": b_idx[np.argsort(-b_prob)][:k],
        "b_most_a": b_idx[np.argsort(b_prob)][:k],
        "a_most_b": a_idx[np.argsort(-a_prob)][:k],
    }


def rare_and_typical(scores, k: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the k highest scores (rarest, highest first) and the k lowest (most typical,
    lowest first) of (n,) scores such as the IS-NLL."""
    s = _scores(scores, "score")
    check(k >= 1, f"-k must be at least 1, not {k}.")
    order = np.argsort(s, kind="stable")
    return order[::-1][:k], order[:k]
