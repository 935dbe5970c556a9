"""Tests of vaekit.metrics on a synthetic factor grid with hand-made representations.

Data: 4 independent discrete factors of sizes (3, 6, 8, 8) on a full grid, every combination
stored twice (so sampling picks among matching examples); an observation is the vector of factor
indices as floats. What varies is the representation function: the factors themselves (possibly
permuted, rescaled, sign-flipped and monotonically warped), independent noise, or a code that
mixes two factors into one dimension. Sample counts are far below the reference ones to keep
the file fast; the bounds below were checked over several seeds with margin.
"""

from __future__ import annotations

import numpy as np
import pytest

from vaekit import metrics as M

SIZES = (3, 6, 8, 8)
SMALL_SIZES = (2, 3, 4, 4)  # fewer classes: gradient-boosted trees (one per class) run faster
N_FACTORS = len(SIZES)

FLOAT_KEYS = {
    "mig",
    "mig_sup",
    "dci_disentanglement",
    "dci_completeness",
    "dci_informativeness",
    "sap",
    "factorvae_score",
    "betavae_score",
    "modularity",
    "explicitness",
}
MATRIX_KEYS = {"mig_mutual_information", "dci_importance", "sap_scores", "factorvae_votes"}

# Small sample counts for compute_all (GBT trees are the slow part).
TINY = {
    "mig": {"num_train": 400},
    "dci": {"num_train": 150, "num_test": 100},
    "sap": {"num_train": 300, "num_test": 150},
    "modularity": {"num_train": 300, "num_test": 150},
    "betavae": {"batch_size": 16, "num_train": 60, "num_eval": 40},
    "factorvae": {"batch_size": 16, "num_train": 60, "num_eval": 40, "num_variance_estimate": 300},
}


def grid_data(sizes: tuple[int, ...], copies: int) -> M.ArrayFactorData:
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in sizes], indexing="ij"), -1)
    factors = np.repeat(grid.reshape(-1, len(sizes)), copies, axis=0)
    return M.ArrayFactorData(factors.astype(np.float64), factors, ["a", "b", "c", "d"])


@pytest.fixture(scope="module")
def data() -> M.ArrayFactorData:
    return grid_data(SIZES, 2)


@pytest.fixture(scope="module")
def small_data() -> M.ArrayFactorData:
    return grid_data(SMALL_SIZES, 4)


def identity(x: np.ndarray) -> np.ndarray:
    return x.copy()


def warped(x: np.ndarray) -> np.ndarray:
    """Factors permuted (2, 0, 3, 1), rescaled, one sign flip and one monotone warp.

    exp(0.2 f) keeps consecutive values more than one histogram bin apart, so the 20-bin MI
    estimate still separates all 8 values (a steep warp such as exp(f) would merge them and
    lower MIG/modularity: those metrics are not invariant to warps).
    """
    return np.stack([3.0 * x[:, 2], -x[:, 0], np.exp(0.2 * x[:, 3]), 0.5 * x[:, 1]], axis=1)


def mixed(x: np.ndarray) -> np.ndarray:
    """z0 = f0/2 + f1/5 mixes two factors (not invertibly); z1, z2 = f2, f3 are clean."""
    return np.stack([x[:, 0] / 2 + x[:, 1] / 5, x[:, 2], x[:, 3]], axis=1)


def make_noise(dim: int = 10, seed: int = 1):
    """Codes independent of the observations (fresh Gaussian noise on every call)."""
    gen = np.random.default_rng(seed)
    return lambda x: gen.normal(size=(len(x), dim))


def scores(represent, data: M.ArrayFactorData, seed: int = 0) -> dict[str, float]:
    """All metrics except GBT-DCI (tested separately) with small sample counts."""
    out = {"mig": M.mig(represent, data, seed, num_train=1000).score}
    d = M.dci(represent, data, seed, num_train=600, num_test=300, method="lasso")
    out.update(D=d.disentanglement, C=d.completeness, I=d.informativeness)
    out["sap"] = M.sap(represent, data, seed, num_train=600, num_test=300).score
    me = M.modularity_explicitness(represent, data, seed, num_train=600, num_test=300)
    out.update(modularity=me.modularity, explicitness=me.explicitness)
    out["betavae"] = M.betavae_score(represent, data, seed, num_train=200, num_eval=200).score
    out["factorvae"] = M.factorvae_score(
        represent, data, seed, num_train=200, num_eval=200, num_variance_estimate=600
    ).score
    return out


@pytest.fixture(scope="module")
def noise_scores(data) -> dict[str, float]:
    return scores(make_noise(), data)


@pytest.fixture(scope="module")
def identity_scores(data) -> dict[str, float]:
    return scores(identity, data)


# --------------------------------------------------------------------------------------------
# Data wrapper
# --------------------------------------------------------------------------------------------


def test_array_factor_data_matches_exactly_or_nearest() -> None:
    factors = np.array([[0, 0], [0, 1], [0, 1], [2, 2]])
    x = np.arange(4)[:, None] * 10.0  # observation = example id * 10
    d = M.ArrayFactorData(x, factors)
    # integer factors are values, ranked: column 0 holds 0 and 2 (indices 0, 1), column 1 0, 1, 2
    assert d.factor_sizes == (2, 3)
    np.testing.assert_array_equal(d.factor_values[0], [0.0, 2.0])
    assert isinstance(d, M.FactorData)
    rng = np.random.default_rng(0)
    # Existing combination (0, 1): examples 1 and 2, both get picked over many draws.
    picks = d.match_examples(np.array([[0, 1]] * 200), rng)
    assert set(picks.tolist()) == {1, 2}
    # (1, 2) is example 3; the missing (1, 0) -> nearest (0, 0).
    obs = d.sample_observations(np.array([[1, 2], [1, 0], [0, 0]]), rng)
    np.testing.assert_array_equal(obs[:, 0], [30.0, 0.0, 0.0])
    # Empirical factor sampling only yields stored combinations.
    drawn = d.sample_factors(300, rng)
    assert drawn.shape == (300, 2)
    assert {tuple(r) for r in drawn.tolist()} <= {(0, 0), (0, 1), (1, 2)}
    with pytest.raises(ValueError):
        d.sample_observations(np.array([[2, 0]]), rng)  # index out of range


def test_array_factor_data_discretises_continuous_values() -> None:
    gen = np.random.default_rng(0)
    few = gen.choice([0.5, -1.0, 2.0], size=300)  # 3 distinct values -> ranks 0..2
    many = gen.uniform(0, 1, size=300)  # > 20 distinct values -> 20 equal-width bins
    d = M.ArrayFactorData(np.zeros((300, 1)), np.stack([few, many], axis=1))
    assert d.factor_sizes[0] == 3
    np.testing.assert_array_equal(d.factor_values[0], [-1.0, 0.5, 2.0])
    np.testing.assert_array_equal(d.factor_indices[:, 0], np.searchsorted([-1.0, 0.5, 2.0], few))
    assert 15 <= d.factor_sizes[1] <= 20
    order = np.argsort(many)
    assert np.all(np.diff(d.factor_indices[order, 1]) >= 0)  # bins preserve the order
    assert d.factor_indices[:, 1].max() == d.factor_sizes[1] - 1  # empty bins renumbered away


# --------------------------------------------------------------------------------------------
# Formulas on known inputs
# --------------------------------------------------------------------------------------------


def test_dci_and_modularity_formulas_on_known_matrices() -> None:
    d, c, _, _ = M.dci_from_importance(np.eye(3))
    assert d == pytest.approx(1.0) and c == pytest.approx(1.0)
    d, c, _, _ = M.dci_from_importance(np.ones((3, 3)))
    assert d == pytest.approx(0.0, abs=1e-9) and c == pytest.approx(0.0, abs=1e-9)
    # One code explains every factor: not disentangled, but complete.
    d, c, _, _ = M.dci_from_importance(np.array([[1.0, 1.0, 1.0], [0, 0, 0], [0, 0, 0]]))
    assert d == pytest.approx(0.0, abs=1e-6) and c == pytest.approx(1.0, abs=1e-6)
    mod = M.modularity_from_mutual_information(np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]]))
    np.testing.assert_allclose(mod, [1.0, 0.0, 0.0])


def test_mig_is_zero_for_a_duplicated_factor() -> None:
    gen = np.random.default_rng(0)
    f = np.stack([gen.integers(0, 4, 2000), gen.integers(0, 5, 2000)], axis=1)
    # z0 = z1 = f0 (no gap for f0); z2 = f1 (full gap for f1).
    res = M.mig_from_codes(np.stack([f[:, 0], f[:, 0], f[:, 1]], axis=1).astype(float), f)
    assert res.mutual_information.shape == (3, 2)
    assert res.per_factor[0] == pytest.approx(0.0, abs=1e-12)
    assert res.per_factor[1] > 0.99


def _mutual_information_by_hand(a: np.ndarray, b: np.ndarray) -> float:
    """I(a; b) in nats from the joint histogram of two integer arrays."""
    joint = np.zeros((a.max() + 1, b.max() + 1))
    np.add.at(joint, (a, b), 1.0)
    joint /= joint.sum()
    outer = joint.sum(1, keepdims=True) @ joint.sum(0, keepdims=True)
    nz = joint > 0
    return float((joint[nz] * np.log(joint[nz] / outer[nz])).sum())


def test_mig_equals_the_gap_formula_computed_by_hand() -> None:
    """MIG (Chen et al., 2018, eq. 6): the mean over factors of (top MI - second MI) / H(factor),
    each MI and entropy computed here from joint histograms, on codes with partial information."""
    gen = np.random.default_rng(3)
    n = 3000
    f = np.stack([gen.integers(0, 4, n), gen.integers(0, 5, n)], axis=1)
    noisy0 = np.where(gen.random(n) < 0.3, gen.integers(0, 4, n), f[:, 0])
    noisy1 = np.where(gen.random(n) < 0.1, gen.integers(0, 5, n), f[:, 1])
    codes = np.stack([f[:, 0], noisy0, noisy1], axis=1)
    mi = np.array([[_mutual_information_by_hand(codes[:, i], f[:, j]) for j in range(2)] for i in range(3)])
    entropy = np.array([_mutual_information_by_hand(f[:, j], f[:, j]) for j in range(2)])
    top = np.sort(mi, axis=0)[::-1]
    expected = (top[0] - top[1]) / entropy
    res = M.mig_from_codes(codes.astype(float), f)
    np.testing.assert_allclose(res.mutual_information, mi, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(res.per_factor, expected, rtol=1e-9)
    assert res.score == pytest.approx(float(expected.mean()), rel=1e-9)
    assert 0.2 < expected[0] < 0.8 and 0.6 < expected[1] < 0.95  # a case with real gaps


def test_mig_sup_sees_what_mig_misses() -> None:
    """MIG-sup (Li et al., 2020, eq. 8): per code, the gap between its two largest normalised MIs
    over factors. Two codes copying one factor: MIG 0 for that factor, MIG-sup 1 (each code holds
    one factor). One code holding two factors at once: MIG-sup drops, by the hand-computed gap."""
    gen = np.random.default_rng(5)
    n = 4000
    f = np.stack([gen.integers(0, 4, n), gen.integers(0, 4, n)], axis=1)
    copies = M.mig_from_codes(np.stack([f[:, 0], f[:, 0], f[:, 1]], axis=1).astype(float), f)
    assert copies.per_factor[0] == pytest.approx(0.0, abs=1e-12) and copies.sup > 0.99
    mixed_code = f[:, 0] * 4 + f[:, 1]  # one code that holds both factors exactly
    codes = np.stack([mixed_code, f[:, 1]], axis=1)
    mixed = M.mig_from_codes(codes.astype(float), f, num_bins=16)
    mi = np.array([[_mutual_information_by_hand(codes[:, i], f[:, j]) for j in range(2)] for i in range(2)])
    entropy = np.array([_mutual_information_by_hand(f[:, j], f[:, j]) for j in range(2)])
    normalised = np.sort(mi / entropy, axis=1)[:, ::-1]
    assert mixed.sup == pytest.approx(float((normalised[:, 0] - normalised[:, 1]).mean()), rel=1e-9)
    assert mixed.sup < 0.6  # the first code's gap is about 0: it holds both factors


def test_every_metric_score_is_registered() -> None:
    """The metric names and the scores each writes are one registry (vaekit.summary_keys): a
    metric of compute_all without its rows, or a score without one, fails here."""
    from vaekit import summary_keys

    assert M.ALL_METRICS == summary_keys.METRICS and set(M._COMPUTE_ALL_TABLE) == set(M.ALL_METRICS)
    registered = {k for m in M.ALL_METRICS for k in summary_keys.scores_of(m)}
    assert registered == FLOAT_KEYS, "register the new score in vaekit/summary_keys.py with its metric"


# --------------------------------------------------------------------------------------------
# Perfect, noisy and mixed representations
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("represent", [identity, warped], ids=["identity", "warped"])
def test_factor_codes_score_near_the_top(represent, data, identity_scores) -> None:
    s = identity_scores if represent is identity else scores(represent, data)
    assert s["mig"] > 0.95
    assert s["D"] > 0.9 and s["C"] > 0.9
    assert s["I"] > 0.9
    # SAP ceiling: a 1-D one-vs-rest LinearSVC (C=0.01) cannot single out the middle values of
    # a factor with 6 or 8 values and the second-best (independent) dimension still reaches
    # about chance accuracy, so even the factors themselves score only ~0.3-0.4 here
    # (~0.38 with the reference 10,000 points), far above noise (< 0.05).
    assert s["sap"] > 0.2
    assert s["modularity"] > 0.95
    # Explicitness: one-vs-rest logistic regression ranks middle values less well: ~0.95.
    assert s["explicitness"] > 0.9
    assert s["betavae"] > 0.95
    assert s["factorvae"] > 0.95


def test_noise_codes_score_near_the_bottom(noise_scores) -> None:
    s = noise_scores
    assert s["mig"] < 0.05
    # Lasso-DCI floor for noise is not 0: the importances are random but dense, so the rows are
    # not uniform (observed 0.09-0.20 over seeds). GBT-DCI of noise is tested below (~0.01).
    assert s["D"] < 0.3 and s["C"] < 0.3
    # Informativeness: the rounding regressor predicts the middle index, i.e. ~chance (~0.19).
    assert s["I"] < 0.3
    assert s["sap"] < 0.05
    # Modularity floor is not 0: the finite-sample MI of a noise dimension is small but spread
    # about evenly over factors, giving 1 - delta ~ 0.5 (0.51-0.58 observed).
    assert 0.3 < s["modularity"] < 0.75
    assert abs(s["explicitness"] - 0.5) < 0.06  # chance AUC
    # BetaVAE / FactorVAE floor is chance, ~1/n_factors = 0.25 (0.19-0.31 observed).
    assert s["betavae"] < 0.4
    assert s["factorvae"] < 0.4


def test_mixing_two_factors_scores_between(data, noise_scores, identity_scores) -> None:
    s = scores(mixed, data)
    lo, hi = noise_scores, identity_scores
    # Observed: MIG ~0.87, lasso D ~0.67-0.78 (ident 1.0, noise <0.2).
    assert lo["mig"] + 0.3 < s["mig"] < hi["mig"] - 0.05
    assert lo["D"] + 0.3 < s["D"] < hi["D"] - 0.1
    assert s["betavae"] < hi["betavae"] and s["factorvae"] < hi["factorvae"]


def test_gbt_dci_reference_estimator(small_data) -> None:
    kw = {"num_train": 200, "num_test": 150, "method": "gbt"}
    good = M.dci(identity, small_data, 0, **kw)
    noise = M.dci(make_noise(dim=4), small_data, 0, **kw)
    mix = M.dci(mixed, small_data, 0, **kw)
    assert good.importance.shape == (4, N_FACTORS)
    np.testing.assert_allclose(good.importance.sum(axis=0), 1.0)  # GBT importances sum to 1
    assert good.disentanglement > 0.95 and good.completeness > 0.95
    assert good.informativeness > 0.95
    # Trees spread the importance of noise evenly: D, C ~ 0.01. Accuracy ~ chance, the mean of
    # 1/size over factors of sizes (2, 3, 4, 4) = 0.33 (0.30-0.35 observed).
    assert noise.disentanglement < 0.2 and noise.completeness < 0.2
    assert noise.informativeness < 0.45
    # z0 splits its importance between f0 and f1 (observed D ~0.6-0.75).
    assert noise.disentanglement + 0.3 < mix.disentanglement < good.disentanglement - 0.1
    assert mix.settings["estimator"] == "GradientBoostingClassifier()"
    # the factors are fitted on every core by default; one process gives the same numbers
    serial = M.dci(mixed, small_data, 0, **kw, n_jobs=1)
    np.testing.assert_array_equal(serial.importance, mix.importance)
    assert serial.informativeness == mix.informativeness


def test_sap_continuous_variant_and_from_codes() -> None:
    gen = np.random.default_rng(0)
    f = gen.integers(0, 5, size=(500, 2))
    z = np.concatenate([f.astype(float), gen.normal(size=(500, 1))], axis=1)
    res = M.sap_from_codes(z, f, z, f, continuous=True)
    assert res.score_matrix.shape == (3, 2)
    # Squared correlation: 1 on the matching dimension, ~0 elsewhere.
    np.testing.assert_allclose(np.diag(res.score_matrix[:2]), 1.0)
    assert res.score > 0.95


def test_factorvae_prunes_collapsed_dimensions(data) -> None:
    def with_dead_dims(x: np.ndarray) -> np.ndarray:
        tiny = 1e-3 * np.sin(x.sum(axis=1, keepdims=True))  # std << 0.05
        return np.concatenate([x, np.zeros((len(x), 1)), tiny], axis=1)

    kw = {"batch_size": 32, "num_train": 100, "num_eval": 100, "num_variance_estimate": 500}
    res = M.factorvae_score(with_dead_dims, data, 0, **kw)
    np.testing.assert_array_equal(res.active_dims, [True] * 4 + [False, False])
    assert res.num_active_dims == 4
    assert res.votes.shape == (6, N_FACTORS)
    assert res.votes[4:].sum() == 0 and res.votes.sum() == 100
    assert res.score > 0.95
    # Threshold 0 keeps the tiny dimension; the constant one (0/0) is always pruned.
    res0 = M.factorvae_score(with_dead_dims, data, 0, prune_threshold=0.0, **kw)
    np.testing.assert_array_equal(res0.active_dims, [True] * 4 + [False, True])


# --------------------------------------------------------------------------------------------
# compute_all: keys, shapes, determinism
# --------------------------------------------------------------------------------------------


def warped_plus_noise_dim(x: np.ndarray) -> np.ndarray:
    """Deterministic 5-dim code: the warped factors and a hash-like (pseudo-random) dimension."""
    extra = np.sin(12.9898 * x[:, :1] + 78.233 * x[:, 1:2] + 3.7 * x[:, 2:3] + 1.1 * x[:, 3:4])
    return np.concatenate([warped(x), extra], axis=1)


def test_compute_all_keys_shapes_and_determinism(small_data) -> None:
    data = small_data
    run = M.compute_all(warped_plus_noise_dim, data, seed=3, preset="fast", overrides=TINY)
    assert FLOAT_KEYS <= set(run)
    assert set(run) == FLOAT_KEYS | {"matrices", "seconds", "settings"}
    assert all(isinstance(run[k], float) and np.isfinite(run[k]) for k in FLOAT_KEYS)
    assert set(run["matrices"]) == MATRIX_KEYS
    for name, mat in run["matrices"].items():
        assert mat.shape == (5, N_FACTORS), name
    assert set(run["seconds"]) == set(M.ALL_METRICS)
    assert run["settings"]["dci"]["num_train"] == 150
    assert run["settings"]["dci"]["estimator"] == "GradientBoostingClassifier()"
    assert run["settings"]["betavae"]["batch_size"] == 16

    again = M.compute_all(warped_plus_noise_dim, data, seed=3, preset="fast", overrides=TINY)
    for k in FLOAT_KEYS:
        assert again[k] == run[k], k
    for k in MATRIX_KEYS:
        np.testing.assert_array_equal(again["matrices"][k], run["matrices"][k])

    cheap = [m for m in M.ALL_METRICS if m != "dci"]
    other = M.compute_all(warped_plus_noise_dim, data, 4, "fast", cheap, overrides=TINY)
    assert any(other[k] != run[k] for k in other if k in FLOAT_KEYS)  # the seed matters

    # compute_all gives each metric the same seed: its numbers equal the individual calls.
    assert run["mig"] == M.mig(warped_plus_noise_dim, data, 3, num_train=400).score
    fv = M.factorvae_score(warped_plus_noise_dim, data, 3, **TINY["factorvae"])
    assert run["factorvae_score"] == fv.score


def test_compute_all_subset_presets_and_errors(small_data) -> None:
    data = small_data
    run = M.compute_all(identity, data, seed=0, metrics=("mig", "sap"), overrides=TINY)
    assert set(run) == {"mig", "mig_sup", "sap", "matrices", "seconds", "settings"}
    assert set(run["matrices"]) == {"mig_mutual_information", "sap_scores"}
    assert M.PRESETS["reference"]["dci"] == {"num_train": 10_000, "num_test": 5_000}
    assert M.PRESETS["fast"]["factorvae"] == {
        "batch_size": 64,
        "num_train": 2_000,
        "num_eval": 1_000,
        "num_variance_estimate": 2_000,
    }
    with pytest.raises(ValueError):
        M.compute_all(identity, data, metrics=("mig", "irs"))
    with pytest.raises(ValueError):
        M.compute_all(identity, data, preset="slow")
    with pytest.raises(ValueError):  # wrong number of rows from the representation
        M.mig(lambda x: x[:-1], data, 0, num_train=50)


def test_from_codes_entry_points_shapes() -> None:
    gen = np.random.default_rng(0)
    f_tr, f_te = gen.integers(0, 4, size=(300, 3)), gen.integers(0, 4, size=(200, 3))
    z_tr = np.concatenate([f_tr, gen.normal(size=(300, 2))], axis=1).astype(float)
    z_te = np.concatenate([f_te, gen.normal(size=(200, 2))], axis=1).astype(float)
    assert M.mig_from_codes(z_tr, f_tr).mutual_information.shape == (5, 3)
    d = M.dci_from_codes(z_tr, f_tr, z_te, f_te, method="lasso")
    assert d.importance.shape == (5, 3) and d.disentanglement_per_code.shape == (5,)
    assert d.importance[3:].max() < 0.1 * d.importance[:3].max()  # noise dims unimportant
    s = M.sap_from_codes(z_tr, f_tr, z_te, f_te)
    assert s.score_matrix.shape == (5, 3) and s.per_factor.shape == (3,)
    me = M.modularity_explicitness_from_codes(z_tr, f_tr, z_te, f_te)
    assert me.mutual_information.shape == (5, 3) and me.explicitness_per_factor.shape == (3,)
    with pytest.raises(ValueError):
        M.mig_from_codes(z_tr, f_tr[:10])
