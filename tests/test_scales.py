"""Extreme scales: the right answer or a clear error, never NaN, zeros or a
false certificate."""
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning

from mtlinear import MultiTaskClassifier, MultiTaskRegressor


def _shared(seed=0, n=80, d=6, T=3):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    Y = X @ rng.standard_normal((d, T)) + 0.1 * rng.standard_normal((n, T))
    return X, Y


def _stacked(seed=0, sizes=(30, 45, 25), d=5):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((sum(sizes), d))
    labels = np.repeat(np.arange(len(sizes)), sizes)
    y = np.einsum("ij,ij->i", X, rng.standard_normal((len(sizes), d))[labels])
    return X, y + 0.1 * rng.standard_normal(len(y)), labels


@pytest.mark.parametrize("penalty", ["l21", "l1", "l2", "trace"])
@pytest.mark.parametrize("layout", ["shared", "stacked"])
@pytest.mark.parametrize("fmt", [np.asarray, sp.csr_matrix])
def test_features_with_huge_means_give_the_centred_answer(penalty, layout, fmt):
    """Features like timestamps (mean 1e8, spread 1): with intercepts the
    answer is that of the centred features.  Centring the sufficient
    statistics after the fact (``X^T X - n m m^T``) lost every digit."""
    if layout == "shared":
        X, Y = _shared()
        fit = lambda Z, **kw: MultiTaskRegressor(**kw).fit(fmt(Z), Y)
    else:
        X, Y, labels = _stacked()
        fit = lambda Z, **kw: MultiTaskRegressor(task_col=-1, **kw).fit(
            fmt(np.column_stack([Z, labels])), Y)
    kw = dict(penalty=penalty, alpha=0.01, tol=1e-10)
    ref = fit(X - X.mean(axis=0), **kw)
    shifted = fit(X + 1e8, **kw)
    np.testing.assert_allclose(shifted.coef_, ref.coef_, rtol=1e-5, atol=1e-6)
    assert np.isfinite(shifted.dual_gap_) and shifted.dual_gap_ >= 0


@pytest.mark.parametrize("make", [
    lambda: MultiTaskRegressor(loss="huber", penalty="l1", alpha=0.05),
    lambda: MultiTaskRegressor(loss="huber", penalty="l21", alpha=0.05),
    lambda: MultiTaskClassifier(penalty="l1", alpha=0.02),
    lambda: MultiTaskClassifier(penalty="sparse_group", alpha=0.02)])
@pytest.mark.parametrize("layout", ["shared", "stacked"])
@pytest.mark.parametrize("fmt", [np.asarray, sp.csr_matrix])
def test_intercept_variable_losses_with_huge_means_give_the_centred_answer(
        make, layout, fmt):
    """The same for the losses whose intercepts are variables (proximal
    Newton): its curvatures of centred columns, ``sum h x^2 - (sum h
    x)^2 / sum h``, were rounding from a mean of 1e6 and the fit stopped
    at its zero start."""
    model = make()
    if layout == "shared":
        X, Y = _shared(seed=3)
        task = {}
    else:
        X, Y, labels = _stacked(seed=3)
        task = dict(task_col=-1)
    if isinstance(model, MultiTaskClassifier):
        Y = Y > np.median(Y)

    def fit(Z):
        if layout == "stacked":
            Z = np.column_stack([Z, labels])
        return make().set_params(tol=1e-10, **task).fit(fmt(Z), Y)

    ref = fit(X - X.mean(axis=0))
    assert np.abs(ref.coef_).max() > 0.1
    for offset in (1e6, 1e8):
        shifted = fit(X + offset)
        np.testing.assert_allclose(shifted.coef_, ref.coef_, rtol=1e-5,
                                   atol=1e-6)


@pytest.mark.parametrize("scale", [1e-300, 1e300])
def test_sample_weight_scale_does_not_matter(scale):
    X, Y = _shared()
    s = np.random.default_rng(1).uniform(0.5, 2.0, len(X))
    ref = MultiTaskRegressor(penalty="l21", alpha=0.01).fit(X, Y, sample_weight=s)
    big = MultiTaskRegressor(penalty="l21", alpha=0.01).fit(
        X, Y, sample_weight=s * scale)
    np.testing.assert_allclose(big.coef_, ref.coef_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(big.intercept_, ref.intercept_, rtol=1e-10)


@pytest.mark.parametrize("make", [
    lambda: MultiTaskRegressor(penalty="l21", alpha=0.01),
    lambda: MultiTaskClassifier(penalty="l1", alpha=0.01)])
def test_task_scales_of_sample_weight_do_not_matter(make):
    """Each task's loss is a weighted mean: weights of ``1e200`` in one
    task and ``1e-200`` in the others change nothing (they were divided by
    the largest of all and underflowed to "zero on every sample")."""
    X, y, labels = _stacked(seed=4)
    if isinstance(make(), MultiTaskClassifier):
        y = y > np.median(y)
    Z = np.column_stack([X, labels])
    s = np.random.default_rng(5).uniform(0.5, 2.0, len(y))
    ref = make().set_params(task_col=-1).fit(Z, y, sample_weight=s)
    scaled = make().set_params(task_col=-1).fit(
        Z, y, sample_weight=s * np.where(labels == 0, 1e200, 1e-200))
    np.testing.assert_allclose(scaled.coef_, ref.coef_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(scaled.intercept_, ref.intercept_, rtol=1e-10,
                               atol=1e-12)


@pytest.mark.parametrize("what,scale", [
    ("X", 1e-200), ("X", 1e160), ("X", 1e307), ("y", 1e200),
    ("task_weights", 1e308), ("task_weights", 1e-200)])
@pytest.mark.parametrize("penalty", ["l21", "trace"])
def test_extreme_scales_are_a_clear_error_and_keep_the_model(what, scale,
                                                             penalty):
    X, Y = _shared()
    model = MultiTaskRegressor(penalty=penalty, alpha=0.01).fit(X, Y)
    coef = model.coef_.copy()
    weights = np.ones(Y.shape[1])
    if what == "X":
        X = X * scale
    elif what == "y":
        Y = Y * scale
    else:
        weights[0] = scale
    model.set_params(task_weights=weights)
    with pytest.raises(ValueError, match=f"{what} has values of magnitude"):
        model.fit(X, Y)
    np.testing.assert_array_equal(model.coef_, coef)


@pytest.mark.parametrize("make", [
    lambda A: A, np.asfortranarray, lambda A: A[:, ::2],
    lambda A: A.astype(np.float32), lambda A: sp.csr_matrix(A),
    lambda A: np.round(A).astype(int), lambda A: np.zeros_like(A)],
    ids=["C", "F", "strided", "float32", "csr", "int", "zeros"])
def test_scale_check_reads_every_layout(make):
    """The scale check's largest and smallest nonzero magnitudes, recomputed
    with numpy, on every memory layout it reads (contiguous in one pass,
    strided by blocks of rows)."""
    from mtlinear._task_data import _magnitudes
    rng = np.random.default_rng(0)
    A = rng.standard_normal((300, 9)) * np.logspace(-3, 3, 9)
    A[rng.random(A.shape) < 0.3] = 0.0
    B = make(A)
    values = np.abs(B.toarray() if sp.issparse(B) else np.asarray(B, float))
    nonzero = values[values > 0]
    expected = (values.max(), nonzero.min() if nonzero.size else 0.0)
    np.testing.assert_allclose(_magnitudes(B, block=50), expected, rtol=1e-7)


def test_scale_check_finds_the_extremes_wherever_they_are():
    """The compiled pass keeps running extremes in lanes and a tail: the
    largest and the smallest nonzero magnitude are found at every position
    of arrays of every length up to three times the lanes."""
    from mtlinear._task_data import _magnitudes
    for n in range(1, 25):
        for at in range(n):
            values = np.full(n, 2.0)
            values[(at + 1) % n] = 0.0
            values[at] = -7.0
            assert _magnitudes(values) == (7.0, 2.0 if n > 2 else 7.0)
            values[at] = -1e-3
            assert _magnitudes(values) == ((2.0, 1e-3) if n > 2 else
                                           (1e-3, 1e-3))


def test_classifier_with_huge_features_is_a_clear_error():
    X, Y = _shared()
    with pytest.raises(ValueError, match="X has values of magnitude"):
        MultiTaskClassifier(penalty="l21", alpha=0.01).fit(X * 1e200, Y > 0)


@pytest.mark.parametrize("penalty", ["trace", "l21"])
def test_classifier_on_large_scale_features_converges_to_the_scaled_answer(
        penalty):
    """``X * c`` with ``alpha * c`` has the optimum ``W / c`` (same
    intercepts).  The intercepts take steps in their own metric: with one
    step for both, FISTA's intercepts crawled (5000 iterations unconverged at
    c = 1000)."""
    X, Y = _shared(seed=2, n=300, d=10, T=4)
    Y = Y > 0
    ref = MultiTaskClassifier(penalty=penalty, alpha=0.01, tol=1e-8).fit(X, Y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        big = MultiTaskClassifier(penalty=penalty, alpha=10.0, tol=1e-8).fit(
            X * 1000, Y)
    np.testing.assert_allclose(big.coef_ * 1000, ref.coef_, rtol=1e-3,
                               atol=1e-4)
    np.testing.assert_allclose(big.intercept_, ref.intercept_, rtol=1e-3,
                               atol=1e-4)


def test_sparse_mean_check_is_per_task():
    """A sparse column stored in every row of one task only (zero in the
    others) with a mean there 1e6 times its spread is caught, as in a dense
    design: proximal Newton's curvature of it would be rounding."""
    from types import SimpleNamespace

    from mtlinear._prox_newton import means_swamp_spreads
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 3))
    X[:20, 0] += 1e6
    X[20:, 0] = 0.0
    ptr = np.array([0, 20, 50])
    means = np.array([X[:20].mean(axis=0), X[20:].mean(axis=0)])
    for fmt in (np.asarray, sp.csr_matrix, sp.csc_matrix):
        design = SimpleNamespace(X=fmt(X), x_mean=means, shared=False,
                                 task_ptr=ptr)
        assert means_swamp_spreads(design)
        design.x_mean = means - means  # centred: nothing to catch
        assert not means_swamp_spreads(design)
    # shared design: every task's mean against the spread over all rows
    X[20:, 0] = 1e6 + rng.standard_normal(30)
    means = np.array([np.zeros(3), X.mean(axis=0)])
    for fmt in (np.asarray, sp.csr_matrix):
        assert means_swamp_spreads(SimpleNamespace(
            X=fmt(X), x_mean=means, shared=True, task_ptr=None))


def test_sparse_mean_check_matches_its_definition():
    """The compiled sparse checks (CSR and CSC) against the definition, on
    random designs with columns stored in every row of some tasks (empty
    tasks and a shared design included): a column qualifies in a task when
    it is stored in each of the task's rows and some checked mean exceeds
    ``ratio`` times its spread there."""
    from types import SimpleNamespace

    from mtlinear._prox_newton import means_swamp_spreads

    def expected(X, means, ptr, ratio):
        for t in range(len(ptr) - 1):
            part = X[ptr[t]:ptr[t + 1]]
            if part.shape[0] == 0:
                continue
            full = part.getnnz(axis=0) == part.shape[0]
            dense = part.toarray()[:, full]
            if not full.any():
                continue
            spread = dense.max(axis=0) - dense.min(axis=0)
            checked = means if len(ptr) == 2 else means[t:t + 1]
            if np.any(np.abs(checked[:, full]) > ratio * spread):
                return True
        return False

    rng = np.random.default_rng(3)
    outcomes = set()
    for trial in range(60):
        sizes = rng.integers(0, 6, size=3)
        ptr = np.concatenate([[0], np.cumsum(sizes)])
        n, d = ptr[-1], 5
        X = sp.random(n, d, density=0.5, random_state=trial, format="csr")
        X = X.tolil()
        for t in range(3):  # a column stored in every row of some tasks
            if rng.random() < 0.7:
                j = rng.integers(d)
                for i in range(ptr[t], ptr[t + 1]):
                    X[i, j] = 1.0 + 0.01 * rng.random()
        X = X.tocsr()
        shared = trial % 4 == 0
        if shared:
            ptr = np.array([0, n])
        means = rng.standard_normal((1 if shared else 3, d)) * 10
        ratio = float(rng.choice([1.0, 100.0, 1000.0]))
        want = expected(X, means, ptr, ratio)
        for fmt in (sp.csr_matrix, sp.csc_matrix):  # CSC: its own kernel
            design = SimpleNamespace(X=fmt(X), x_mean=means, shared=shared,
                                     task_ptr=None if shared else ptr)
            assert means_swamp_spreads(design, ratio) == want, (trial, fmt)
        outcomes.add(want)
    assert outcomes == {True, False}
