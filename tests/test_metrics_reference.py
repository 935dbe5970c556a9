"""vaekit.metrics against outside references, so that a wrong formula fails here.

Two kinds of reference, both from google-research/disentanglement_lib (the library of the
Locatello et al. 2019 study that vaekit.metrics re-implements), commit
86a644d4ed35c771560dc3360756363d35477357 (2020-08-27):

1. The expectations of its own unit tests, ``disentanglement_lib/evaluation/metrics/*_test.py``
   (mig_test.py, dci_test.py, sap_score_test.py, modularity_explicitness_test.py,
   beta_vae_test.py, factor_vae_test.py), reproduced case by case with vaekit's API: the same
   hand-made matrices, the same representations (identity, all zeros, duplicated ``[x, x]``,
   row-wise shuffled codes), the same sample counts where affordable and the same expected
   ranges. Only the facts (inputs, settings, expected values) are taken over, not their code.
2. Scores that disentanglement_lib's own functions give on a small frozen set of codes made
   here (:func:`frozen_set`), hard-coded below with the way they were computed, compared with
   vaekit's numbers at a tight tolerance.

Their tests use ``dummy_data.IdentityObservationsData``: 10 factors, each uniform over 10 values
(1..10), observation = factor vector. Here the factor values are 0..9 (no metric below changes
when the codes are shifted by a constant and the factor labels renamed), and the data are an
:class:`~vaekit.metrics.ArrayFactorData`:

* ``identity10``: a table of 50,000 random draws of that form (10 factors x 10 values, no full
  grid: it would have 10**10 rows); sampling rows of the table draws factors as the dummy data
  does. Used for MIG, SAP and modularity, which only encode sampled rows.
* full grids of 10 factors with fewer values, for the metrics that need an example for any
  factor combination or whose estimator is slow: BetaVAE and FactorVAE fix one factor of random
  rows, which needs every combination (3 values: 59,049 rows); gradient-boosted-tree DCI fits
  one tree per class and stage, ~30 s per run with 10 values (2 values: 1,024 rows, and 3 values
  for the duplicated code, see that test).

Their MIG and modularity tests bind the identity discretizer with 10 bins; vaekit only has the
equal-width histogram, and a 10-bin histogram of integer codes spanning 0..9 puts every value in
its own bin, which gives the same partition and hence the same mutual information.
"""

from __future__ import annotations

import numpy as np
import pytest

from vaekit import metrics as M

N_FACTORS = 10  # IdentityObservationsData.num_factors


def _identity_table(n_rows: int = 50_000, seed: int = 0) -> M.ArrayFactorData:
    factors = np.random.default_rng(seed).integers(0, 10, size=(n_rows, N_FACTORS))
    return M.ArrayFactorData(factors.astype(np.float64), factors)


def _identity_grid(n_values: int) -> M.ArrayFactorData:
    axes = [np.arange(n_values)] * N_FACTORS
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, N_FACTORS)
    return M.ArrayFactorData(grid.astype(np.float64), grid)


@pytest.fixture(scope="module")
def identity10() -> M.ArrayFactorData:
    return _identity_table()


@pytest.fixture(scope="module")
def grid2() -> M.ArrayFactorData:
    return _identity_grid(2)


@pytest.fixture(scope="module")
def grid3() -> M.ArrayFactorData:
    return _identity_grid(3)


def identity(x: np.ndarray) -> np.ndarray:
    return np.array(x, dtype=np.float64)


def zeros(x: np.ndarray) -> np.ndarray:
    return np.zeros_like(x, dtype=np.float64)


def duplicated(x: np.ndarray) -> np.ndarray:
    x = np.array(x, dtype=np.float64)
    return np.hstack([x, x])


def make_row_shuffle(seed: int = 0):
    """Each row's code is a fresh random permutation of its factor vector (their "bad metric")."""
    gen = np.random.default_rng(seed)
    return lambda x: gen.permuted(np.array(x, dtype=np.float64), axis=1)


def _between(value: float, low: float, high: float) -> None:
    """``absltest.assertBetween(value, low, high)``: ``low <= value <= high``."""
    assert low <= value <= high, f"{value!r} not in [{low}, {high}]"


# --------------------------------------------------------------------------------------------
# 1. disentanglement_lib's unit-test expectations: hand-made matrices
# --------------------------------------------------------------------------------------------

_D5 = np.diag(5.0 * np.ones(5))
LOG2_LOG10 = 1.0 - np.log(2) / np.log(10)

# case (= their test name) -> (matrix, disentanglement, completeness, modularity)
MATRIX_CASES = {
    "test_diagonal": (_D5, 1.0, 1.0, 1.0),
    "test_diagonal_empty_codes": (np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]), 1.0, 1.0, 2.0 / 3.0),
    "test_zero": (np.zeros((10, 10)), 0.0, 0.0, 0.0),
    "test_redundant_codes": (np.vstack([_D5, _D5]), 1.0, LOG2_LOG10, 1.0),
    "test_missed_factors": (_D5[:2, :], 1.0, 1.0, 1.0),
    "test_one_code_two_factors": (np.hstack([_D5, _D5]), LOG2_LOG10, 1.0, 1.0 - 1.0 / 9.0),
}


@pytest.mark.parametrize("case", list(MATRIX_CASES))
def test_dci_importance_matrices_as_disentanglement_lib(case: str) -> None:
    """dci_test.py, DisentanglementTest and CompletenessTest, each ``case``:

    importance ``(codes, factors)`` -> (disentanglement, completeness):
    test_diagonal diag(5)x5 -> (1, 1); test_diagonal_empty_codes [[1,0],[0,1],[0,0]] -> (1, 1);
    test_zero zeros(10, 10) -> (0, 0 [atol 1e-7]); test_redundant_codes [diag; diag] (10x5) ->
    (1, 1 - log 2 / log 10); test_missed_factors diag[:2] -> (1, 1); test_one_code_two_factors
    [diag, diag] (5x10) -> (1 - log 2 / log 10, 1). Their tolerance: ``assert_allclose`` defaults
    (rtol 1e-7).
    """
    importance, want_d, want_c, _ = MATRIX_CASES[case]
    d, c, per_code, per_factor = M.dci_from_importance(importance)
    assert per_code.shape == (importance.shape[0],) and per_factor.shape == (importance.shape[1],)
    np.testing.assert_allclose(d, want_d)
    np.testing.assert_allclose(c, want_c, atol=1e-7 if case == "test_zero" else 0)


@pytest.mark.parametrize("case", list(MATRIX_CASES))
def test_modularity_matrices_as_disentanglement_lib(case: str) -> None:
    """modularity_explicitness_test.py, ModularityTest, each ``case`` (mutual information
    ``(codes, factors)`` -> modularity, the mean over codes): test_diagonal -> 1;
    test_diagonal_empty_codes -> 2/3 (a code without information scores 0);
    test_zero -> 0; test_redundant_codes -> 1; test_missed_factors -> 1;
    test_one_code_two_factors -> 1 - 1/9. Tolerance: ``assert_allclose`` defaults (rtol 1e-7).
    """
    mutual_information, _, _, want = MATRIX_CASES[case]
    per_code = M.modularity_from_mutual_information(mutual_information)
    assert per_code.shape == (mutual_information.shape[0],)
    np.testing.assert_allclose(per_code.mean(), want)


# --------------------------------------------------------------------------------------------
# 1. disentanglement_lib's unit-test expectations: representations of IdentityObservationsData
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("represent", "low", "high"),
    [(identity, 0.9, 1.0), (zeros, 0.0, 0.2), (duplicated, 0.0, 0.1)],
    ids=["test_metric", "test_bad_metric", "test_duplicated_latent_space"],
)
def test_mig_as_disentanglement_lib(identity10, represent, low, high) -> None:
    """mig_test.py, MIGTest: compute_mig with 3,000 points, identity discretizer (10 bins).

    test_metric (identity) -> discrete_mig in [0.9, 1.0]; test_bad_metric (np.zeros_like) ->
    [0.0, 0.2]; test_duplicated_latent_space ([x, x]) -> [0.0, 0.1].
    """
    res = M.mig(represent, identity10, 0, num_train=3000, num_bins=10)
    _between(res.score, low, high)


@pytest.mark.parametrize(
    ("represent", "low", "high"),
    [(identity, 0.9, 1.0), (zeros, 0.0, 0.2), (duplicated, 0.0, 0.2)],
    ids=["test_metric", "test_bad_metric", "test_duplicated_latent_space"],
)
def test_sap_continuous_as_disentanglement_lib(identity10, represent, low, high) -> None:
    """sap_score_test.py, SapScoreTest: compute_sap with 3,000 train / 3,000 test points and
    ``continuous_factors=True``.

    test_metric (identity) -> SAP_score in [0.9, 1.0]; test_bad_metric (zeros) -> [0.0, 0.2];
    test_duplicated_latent_space ([x, x], no gap between the two copies) -> [0.0, 0.2].
    """
    res = M.sap(represent, identity10, 0, num_train=3000, num_test=3000, continuous=True)
    _between(res.score, low, high)


def test_modularity_identity_as_disentanglement_lib(identity10) -> None:
    """modularity_explicitness_test.py, ModularityExplicitnessTest.test_metric: identity codes,
    3,000 train / 3,000 test points, identity discretizer -> modularity_score in [0.9, 1.0]."""
    res = M.modularity_explicitness(identity, identity10, 0, num_train=3000, num_test=3000, num_bins=10)
    _between(res.modularity, 0.9, 1.0)


@pytest.mark.parametrize(
    ("shuffle", "num_train", "low", "high"),
    [(False, 3000, 0.9, 1.0), (True, 20_000, 0.0, 0.2)],
    ids=["test_duplicated_latent_space", "test_bad_metric"],
)
def test_modularity_codes_as_disentanglement_lib(identity10, shuffle, num_train, low, high) -> None:
    """modularity_explicitness_test.py, ModularityExplicitnessTest (modularity part only):

    test_duplicated_latent_space ([x, x], 3,000 points) -> modularity_score in [0.9, 1.0];
    test_bad_metric (every row's code randomly permuted, 20,000 points: the MI of every code is
    spread evenly over the factors) -> [0.0, 0.2].

    The modularity is computed from the ``num_train`` sampled codes with vaekit's own steps
    (:func:`histogram_discretize` -> :func:`discrete_mutual_information` ->
    :func:`modularity_from_mutual_information`, which is what
    :func:`modularity_explicitness_from_codes` does), skipping the explicitness classifiers that
    make the full call take ~4 s at 20,000 points; the full call is exercised by the identity case
    above and by the frozen-set test below.
    """
    gen = np.random.default_rng(0)
    factors, observations = identity10.sample(num_train, gen)
    codes = make_row_shuffle(0)(observations) if shuffle else duplicated(observations)
    mi = M.discrete_mutual_information(M.histogram_discretize(codes, 10), factors)
    assert mi.shape == (codes.shape[1], N_FACTORS)
    _between(M.modularity_from_mutual_information(mi).mean(), low, high)


def test_dci_identity_as_disentanglement_lib(grid2) -> None:
    """dci_test.py, DCITest.test_metric: identity codes -> disentanglement and completeness in
    [0.9, 1.0] (theirs: 1,000 train / 1,000 test points; here 500 / 500 on the 10-factor binary
    grid, see the module docstring)."""
    res = M.dci(identity, grid2, 0, num_train=500, num_test=500, n_jobs=1)
    _between(res.disentanglement, 0.9, 1.0)
    _between(res.completeness, 0.9, 1.0)


def test_dci_row_shuffled_codes_as_disentanglement_lib(grid2) -> None:
    """dci_test.py, DCITest.test_bad_metric: every row's code is a random permutation of its
    factors, so the trees spread the importance evenly -> disentanglement and completeness in
    [0.0, 0.2] (300 / 300 points on the binary grid instead of their 1,000 / 1,000)."""
    res = M.dci(make_row_shuffle(0), grid2, 0, num_train=300, num_test=300, n_jobs=1)
    _between(res.disentanglement, 0.0, 0.2)
    _between(res.completeness, 0.0, 0.2)


def test_dci_duplicated_latent_space_as_disentanglement_lib(grid3) -> None:
    """dci_test.py, DCITest.test_duplicated_latent_space: codes ``[x, x]`` -> disentanglement in
    [0.9, 1.0] and completeness within 0.1 of their target ``1 - log 2 / log 10`` (~0.699).

    Note on the target: with 10 factors the code has 20 dimensions and completeness uses entropy
    base 20, so an even split of each factor's importance over its two copies gives
    ``1 - log 2 / log 20`` (~0.769), inside their window [0.599, 0.799]; an uneven split (the
    trees pick one of two equal features at random at each split) gives more. On the binary grid
    the gradient-boosted trees split unevenly enough to give 0.780-0.804 over seeds 0-5 with
    500 / 500 points (seed 5 falls outside the window); with 3 values per factor (3 trees per
    stage) the split evens out: 0.770-0.778 over seeds 0-3 with 300 / 100 points (theirs: 1,000 /
    1,000 with 10 values).
    """
    res = M.dci(duplicated, grid3, 0, num_train=300, num_test=100, n_jobs=1)
    _between(res.disentanglement, 0.9, 1.0)
    target = 1.0 - np.log(2) / np.log(10)
    _between(res.completeness, target - 0.1, target + 0.1)


def test_betavae_identity_as_disentanglement_lib(grid3) -> None:
    """beta_vae_test.py, BetaVaeTest.test_metric: compute_beta_vae_sklearn with batch_size 5,
    2,000 train / 2,000 eval points, identity codes -> train_accuracy and eval_accuracy in
    [0.9, 1.0]. On the 3-value grid (their factors have 10 values) a non-fixed dimension is
    constant over all 5 pairs with probability 1/81, which leaves ~0.98."""
    res = M.betavae_score(identity, grid3, 0, batch_size=5, num_train=2000, num_eval=2000)
    _between(res.train_accuracy, 0.9, 1.0)
    _between(res.score, 0.9, 1.0)


@pytest.mark.parametrize(
    ("represent", "low", "high"),
    [(identity, 0.9, 1.0), (zeros, 0.0, 0.2)],
    ids=["test_metric", "test_bad_metric"],
)
def test_factorvae_as_disentanglement_lib(grid3, represent, low, high) -> None:
    """factor_vae_test.py, FactorVaeTest: compute_factor_vae with batch_size 5, 3,000 train /
    2,000 eval votes, 2,500 points for the variances, ``_prune_dims`` threshold 0 (the code
    default their test runs with).

    test_metric (identity) -> train_accuracy and eval_accuracy in [0.9, 1.0] (~0.95 on the 3-value
    grid, where another dimension is constant over the 5 points with probability 1/81 and ties go
    to the lowest index); test_bad_metric (np.zeros_like) -> both in [0.0, 0.2] (vaekit prunes
    zero-variance dimensions and returns 0; disentanglement_lib keeps them at threshold 0 and
    gets ~0.1 from NaN variance ratios).
    """
    kw = {"batch_size": 5, "num_train": 3000, "num_eval": 2000, "num_variance_estimate": 2500}
    res = M.factorvae_score(represent, grid3, 0, prune_threshold=0.0, **kw)
    _between(res.train_accuracy, low, high)
    _between(res.score, low, high)


# --------------------------------------------------------------------------------------------
# 2. Scores of disentanglement_lib's own functions on a frozen set of codes
# --------------------------------------------------------------------------------------------
#
# How the REF_* constants below were computed: google-research/disentanglement_lib at commit
# 86a644d4ed35c771560dc3360756363d35477357, the modules disentanglement_lib/evaluation/metrics/
# {utils,mig,sap_score,dci,modularity_explicitness}.py loaded unchanged in a scratch folder outside
# this repository with stub modules for their gin / absl.logging / six imports (gin.configurable
# -> no-op decorator), run on exactly the arrays of frozen_set() (transposed to their
# (dims, points) layout) with scikit-learn 1.9.1, numpy 2.4.6, scipy 1.17.1:
#
# * MIG: mig._compute_mig(codes_train.T, factors_train.T) with the gin-bound discretizer set to
#   utils._histogram_discretize with 20 bins (the unsupervised_study_v1 mig.gin setting);
#   per factor: (sorted MI[0] - sorted MI[1]) / utils.discrete_entropy on the same matrix.
# * SAP: sap_score.compute_score_matrix(train.T, ..., test.T, ..., continuous_factors)
#   and sap_score.compute_avg_diff_top_two. Discrete: svm.LinearSVC(C=0.01,
#   class_weight="balanced") at this scikit-learn's default dual="auto", which picks the primal
#   for one feature (vaekit's dual=False); forcing dual=True (the old default the study ran with)
#   gave the identical score matrix.
# * DCI: dci.disentanglement / dci.completeness / dci.disentanglement_per_code /
#   dci.completeness_per_factor on IMPORTANCE.
# * Modularity: modularity_explicitness.modularity on MUTUAL_INFO, and on
#   utils.discrete_mutual_info(utils._histogram_discretize(codes_train.T, 20), factors_train.T).
# * Explicitness: utils.normalize_data and modularity_explicitness.explicitness_per_factor, with
#   their ``linear_model.LogisticRegression()`` replaced by
#   OneVsRestClassifier(LogisticRegression(solver="liblinear")): that is what
#   LogisticRegression() was in scikit-learn 0.20/0.21 (liblinear, one-vs-rest, C=1), the
#   classifier vaekit documents, and this scikit-learn no longer has ``multi_class``. So this
#   reference checks the standardisation and the ROC-AUC aggregation, not the classifier choice.
#
# vaekit runs the same deterministic computations (same sklearn calls on the same numbers), so
# the tolerance is 1e-9 (absolute), far below any formula change (e.g. MIG without the entropy
# normalisation, an unweighted DCI mean or a swapped top-two gap move the scores by > 0.01).
# The frozen set depends on numpy's PCG64 streams of Generator.integers / standard_normal, which
# numpy keeps stable across versions.

FROZEN_SEED = 20240611
FROZEN_SIZES = (3, 4, 5, 6)
# Mixing weights: rows = factors, columns = code dimensions; code 4 is pure noise.
FROZEN_MIX = np.array(
    [
        [1.0, 0.0, 0.0, 0.3, 0.0],
        [0.0, 1.0, 0.4, 0.0, 0.0],
        [0.25, 0.0, 1.0, 0.0, 0.0],
        [0.0, 0.5, 0.0, 1.0, 0.0],
    ]
)


def frozen_set() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """600 examples of 4 discrete factors (sizes 3, 4, 5, 6) and 5 codes = each factor scaled to
    [0, 1], mixed by FROZEN_MIX, plus Gaussian noise (sd 0.2): (codes, factors) for the first 400
    (train) and the last 200 (test)."""
    rng = np.random.default_rng(FROZEN_SEED)
    n = 600
    factors = np.stack([rng.integers(0, s, size=n) for s in FROZEN_SIZES], axis=1)
    scaled = factors / (np.asarray(FROZEN_SIZES) - 1.0)
    codes = scaled @ FROZEN_MIX + 0.2 * rng.standard_normal((n, FROZEN_MIX.shape[1]))
    return codes[:400], factors[:400], codes[400:], factors[400:]


# Hand-made importance (codes x factors): uneven column sums, an empty code, a uniform code.
IMPORTANCE = np.array(
    [
        [0.50, 0.05, 0.00, 0.10],
        [0.02, 0.30, 0.20, 0.00],
        [0.00, 0.10, 0.40, 0.05],
        [0.10, 0.00, 0.05, 0.60],
        [0.00, 0.00, 0.00, 0.00],
        [0.03, 0.03, 0.03, 0.03],
    ]
)
# Hand-made mutual information (codes x factors): a code without information, a uniform one.
MUTUAL_INFO = np.array(
    [
        [0.90, 0.10, 0.00, 0.20],
        [0.05, 0.60, 0.30, 0.00],
        [0.00, 0.00, 0.00, 0.00],
        [0.20, 0.20, 0.20, 0.20],
        [0.00, 0.00, 0.70, 0.35],
    ]
)

REF_MIG = 0.32813275208459847
REF_MIG_PER_FACTOR = [0.5553468841313437, 0.3013541572628676, 0.2520608012405199, 0.20376916570366266]
REF_SAP_DISCRETE = 0.15625
REF_SAP_DISCRETE_MATRIX = [  # test accuracies on the 200 test points (multiples of 1/200)
    [0.675, 0.25, 0.24, 0.12],
    [0.325, 0.515, 0.205, 0.325],
    [0.375, 0.36, 0.415, 0.185],
    [0.44, 0.245, 0.21, 0.42],
    [0.385, 0.21, 0.275, 0.115],
]
REF_SAP_CONTINUOUS = 0.5797583057547782
REF_DCI_D = 0.4644835013046891
REF_DCI_C = 0.5144086277058255
REF_DCI_D_PER_CODE = [0.5043678694232336, 0.41560013830219444, 0.45210237214392845, 0.5472063688769883, 0, 0]
REF_DCI_C_PER_FACTOR = [0.5876331789153952, 0.425461738676566, 0.4409563935263038, 0.5721599965390294]
REF_MODULARITY_MI = 0.5620884773662551
REF_MODULARITY_CODES = 0.8924148735072162
REF_EXPLICITNESS_TEST = 0.8691507817930962
REF_EXPLICITNESS_TRAIN = 0.8730888111885654

TIGHT = 1e-9


def test_mig_matches_disentanglement_lib_on_frozen_codes() -> None:
    """MIG of the frozen training codes = disentanglement_lib's mig._compute_mig (20-bin
    histogram): REF_MIG, and each factor's normalised gap."""
    z_tr, y_tr, _, _ = frozen_set()
    res = M.mig_from_codes(z_tr, y_tr)
    assert res.score == pytest.approx(REF_MIG, abs=TIGHT)
    np.testing.assert_allclose(res.per_factor, REF_MIG_PER_FACTOR, rtol=0, atol=TIGHT)


def test_sap_matches_disentanglement_lib_on_frozen_codes() -> None:
    """SAP of the frozen codes (400 train / 200 test) = disentanglement_lib's
    sap_score.compute_score_matrix + compute_avg_diff_top_two, discrete factors (LinearSVC
    accuracies, the whole score matrix) and ``continuous_factors=True`` (squared correlations)."""
    z_tr, y_tr, z_te, y_te = frozen_set()
    res = M.sap_from_codes(z_tr, y_tr, z_te, y_te)
    np.testing.assert_allclose(res.score_matrix, REF_SAP_DISCRETE_MATRIX, rtol=0, atol=TIGHT)
    assert res.score == pytest.approx(REF_SAP_DISCRETE, abs=TIGHT)
    cont = M.sap_from_codes(z_tr, y_tr, z_te, y_te, continuous=True)
    assert cont.score == pytest.approx(REF_SAP_CONTINUOUS, abs=TIGHT)


def test_dci_matches_disentanglement_lib_on_importance_matrix() -> None:
    """Disentanglement and completeness of IMPORTANCE (uneven row and column sums, so the
    importance weighting matters) = disentanglement_lib's dci.disentanglement / completeness, and
    the per-code / per-factor scores = disentanglement_per_code / completeness_per_factor."""
    d, c, per_code, per_factor = M.dci_from_importance(IMPORTANCE)
    assert d == pytest.approx(REF_DCI_D, abs=TIGHT)
    assert c == pytest.approx(REF_DCI_C, abs=TIGHT)
    np.testing.assert_allclose(per_code, REF_DCI_D_PER_CODE, rtol=0, atol=TIGHT)
    np.testing.assert_allclose(per_factor, REF_DCI_C_PER_FACTOR, rtol=0, atol=TIGHT)


def test_modularity_explicitness_match_disentanglement_lib() -> None:
    """Modularity of MUTUAL_INFO = modularity_explicitness.modularity (REF_MODULARITY_MI); on the
    frozen codes, modularity (20-bin histogram MI) and explicitness (test and train ROC-AUC) =
    disentanglement_lib's pipeline with the classifier noted above."""
    mod = M.modularity_from_mutual_information(MUTUAL_INFO)
    assert mod.mean() == pytest.approx(REF_MODULARITY_MI, abs=TIGHT)
    z_tr, y_tr, z_te, y_te = frozen_set()
    res = M.modularity_explicitness_from_codes(z_tr, y_tr, z_te, y_te)
    assert res.modularity == pytest.approx(REF_MODULARITY_CODES, abs=TIGHT)
    assert res.explicitness == pytest.approx(REF_EXPLICITNESS_TEST, abs=TIGHT)
    assert res.explicitness_train == pytest.approx(REF_EXPLICITNESS_TRAIN, abs=TIGHT)
