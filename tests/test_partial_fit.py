"""Out-of-core fitting: ``MultiTaskRegressor.partial_fit`` and the sufficient
statistics behind it.

References: the in-memory ``fit`` on the concatenated chunks (to 1e-8 at a
tight duality gap), and the statistics recomputed by plain numpy two-pass
formulas on all the rows.
"""
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from mtlinear import MultiTaskRegressor, MultiTaskRegressorCV, stack_tasks
from mtlinear._statistics import (SufficientStatistics, chunk_statistics,
                                  merge_statistics)

pytestmark = pytest.mark.filterwarnings("error::sklearn.exceptions.ConvergenceWarning")

TIGHT = dict(tol=1e-12, max_iter=100_000)
PENALTIES = [("l21", {}), ("l1", {}), ("l2", {}), ("trace", {}),
             ("l21", dict(l1_ratio=0.6)), ("sparse_group", {}),
             ("l1", dict(positive=True)),
             ("l21", dict(penalty_factor=[0, 1, 1, 1, 0.5, 2, 1]))]


def assert_same_fit(model, ref, rtol=1e-8):
    """Coefficients and intercepts equal relative to their scale."""
    assert model.coef_.shape == ref.coef_.shape
    scale = max(np.abs(ref.coef_).max(), 1e-300)
    np.testing.assert_array_less(np.abs(model.coef_ - ref.coef_).max(),
                                 rtol * scale)
    np.testing.assert_allclose(model.intercept_, ref.intercept_, rtol=rtol,
                               atol=rtol * scale)


def shared_data(n=240, d=7, T=3, seed=0, offset=3.0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) + offset  # off-centre: intercepts matter
    W = np.zeros((d, T))
    W[:4] = rng.standard_normal((4, T))
    W[0] = np.abs(W[0]) + 0.5  # with positive=True some weights stay
    Y = X @ W + 0.5 * rng.standard_normal((n, T)) + np.arange(T)
    return X, Y, rng.uniform(0.2, 2.0, n)


def stacked_data(sizes=(40, 70, 55, 90), d=7, seed=1):
    rng = np.random.default_rng(seed)
    W = np.zeros((d, len(sizes)))
    W[:4] = rng.standard_normal((4, len(sizes)))
    W[0] = np.abs(W[0]) + 0.5
    X_list = [rng.standard_normal((m, d)) + 1.0 for m in sizes]
    y_list = [Xt @ W[:, t] + t + 0.5 * rng.standard_normal(len(Xt))
              for t, Xt in enumerate(X_list)]
    X, y = stack_tasks(X_list, y_list, task_labels=[10, 20, 30, 40])
    order = rng.permutation(len(y))  # tasks interleaved across chunks
    return X[order], y[order], rng.uniform(0.2, 2.0, len(y))


def chunks(n, size):
    return [slice(lo, lo + size) for lo in range(0, n, size)]


# ------------------------------------------------------------ the statistics
def two_pass(X, Y, s):
    """Numpy reference: weighted means, then centred products."""
    n = s.sum()
    xm, ym = s @ X / n, s @ Y / n
    Xc, Yc = X - xm, Y - ym
    return n, xm, ym, (Xc * s[:, None]).T @ Xc, (Xc * s[:, None]).T @ Yc, \
        s @ (Yc * Yc)


@pytest.mark.parametrize("sparse", [False, True])
def test_merged_statistics_equal_numpy_on_all_rows(sparse):
    X, Y, s = shared_data(n=500)
    X = X + 1e4  # a large mean: raw sums would lose ~8 digits here
    parts = [SufficientStatistics.from_arrays(
        sp.csr_matrix(X[c]) if sparse else X[c], Y[c], s[c])
        for c in chunks(len(X), 37)]
    stats = merge_statistics(*parts)
    n, xm, ym, xx, xy, yy = two_pass(X, Y, s)
    assert stats.rows[0] == len(X)
    np.testing.assert_allclose(stats.weight[0], n, rtol=1e-14)
    np.testing.assert_allclose(stats.x_mean[0], xm, rtol=1e-14)
    np.testing.assert_allclose(stats.y_mean[0], ym, rtol=1e-13)
    # a sparse chunk is centred by subtraction within the chunk: the
    # cancellation of its 1e8-sized raw sums costs digits there
    rtol = 1e-7 if sparse else 1e-11
    np.testing.assert_allclose(stats.xx[0], xx, rtol=rtol, atol=rtol * np.abs(xx).max())
    np.testing.assert_allclose(stats.xy[0], xy, rtol=rtol, atol=rtol * np.abs(xy).max())
    np.testing.assert_allclose(stats.yy[0], yy, rtol=1e-12)


def test_per_task_statistics_and_growing_labels():
    X, y, s = stacked_data()
    order = np.argsort(X[:, -1], kind="stable")  # tasks one after the other
    X, y, s = X[order], y[order], s[order]
    parts = [chunk_statistics(X[c], y[c], s[c], task_col=-1)
             for c in chunks(len(y), 29)]
    # chunks hold one or two tasks: the merged label set is the union
    assert max(len(p.labels) for p in parts) <= 2
    stats = merge_statistics(*parts)
    np.testing.assert_array_equal(stats.labels, [10, 20, 30, 40])
    for g, label in enumerate(stats.labels):
        rows = X[:, -1] == label
        n, xm, ym, xx, xy, yy = two_pass(X[rows, :-1].astype(float),
                                         y[rows, None], s[rows])
        assert stats.rows[g] == rows.sum()
        np.testing.assert_allclose(stats.x_mean[g], xm, rtol=1e-13)
        np.testing.assert_allclose(stats.xx[g], xx, rtol=1e-11, atol=1e-11)
        np.testing.assert_allclose(stats.xy[g], xy, rtol=1e-11, atol=1e-11)
        np.testing.assert_allclose(stats.yy[g], yy, rtol=1e-12)


def test_string_and_integer_labels_do_not_mix():
    X = np.ones((4, 2))
    a = chunk_statistics(np.column_stack([X, [1, 1, 2, 2]]), np.arange(4.),
                         task_col=-1)
    Xs = np.empty((4, 3), dtype=object)
    Xs[:, :2], Xs[:, 2] = X, ["1", "1", "2", "2"]
    b = chunk_statistics(Xs, np.arange(4.), task_col=-1)
    with pytest.raises(ValueError, match="integers or all strings"):
        a.merge(b)


# ------------------------------------------------------------ partial_fit = fit
@pytest.mark.parametrize("penalty,options", PENALTIES)
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_partial_fit_equals_fit_shared(penalty, options, fit_intercept):
    X, Y, s = shared_data()
    kw = dict(penalty=penalty, alpha=0.05, fit_intercept=fit_intercept,
              task_weights=[1.0, 2.0, 0.5], **options, **TIGHT)
    ref = MultiTaskRegressor(**kw).fit(X, Y, sample_weight=s)
    model = MultiTaskRegressor(**kw)
    for c in chunks(len(X), 70):
        model.partial_fit(X[c], Y[c], sample_weight=s[c])
    assert np.count_nonzero(ref.coef_) > 0
    assert_same_fit(model, ref)
    assert model.n_features_in_ == X.shape[1] and model.n_tasks_ == 3


@pytest.mark.parametrize("penalty,options", PENALTIES)
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_partial_fit_equals_fit_stacked(penalty, options, fit_intercept):
    X, y, s = stacked_data()
    weights = {10: 1.0, 20: 3.0, 30: 0.5, 40: 1.0}
    kw = dict(penalty=penalty, alpha=0.05, fit_intercept=fit_intercept,
              task_col=-1, task_weights=weights, **options, **TIGHT)
    ref = MultiTaskRegressor(**kw).fit(X, y, sample_weight=s)
    model = MultiTaskRegressor(**kw)
    for c in chunks(len(y), 64):
        model.partial_fit(X[c], y[c], sample_weight=s[c])
    np.testing.assert_array_equal(model.tasks_, ref.tasks_)
    assert_same_fit(model, ref)


def test_unpenalized_dummies_constant_within_a_task():
    """Year dummies without penalty, collinear with the intercept, and one
    task observed in a single year (its dummies constant, their centred
    statistics rounding alone): finite coefficients and the predictions of
    the fit in memory (the coefficients of collinear columns are not
    unique).  Inverting the rounding gave coefficients of 4e16."""
    rng = np.random.default_rng(1)
    sizes = (40, 35, 30)
    task = np.repeat([0, 1, 2], sizes)
    year = np.where(task == 2, 0, rng.integers(0, 3, len(task)))
    dummies = np.eye(3)[year]
    dummies = (dummies - dummies.mean(0)) / dummies.std(0)  # inexact floats
    X = np.column_stack([rng.standard_normal((len(task), 3)), dummies, task])
    y = X[:, :3] @ [1.0, -2.0, 0.5] + year + rng.standard_normal(len(task))
    kw = dict(penalty="l21", alpha=0.1, task_col=-1,
              penalty_factor=[1, 1, 1, 0, 0, 0], **TIGHT)
    ref = MultiTaskRegressor(**kw).fit(X, y)
    model = MultiTaskRegressor(**kw)
    for c in np.array_split(rng.permutation(len(y)), 3):
        model.partial_fit(X[c], y[c])
    assert np.abs(model.coef_).max() < 100
    np.testing.assert_allclose(model.predict(X), ref.predict(X), atol=1e-6)


def test_each_call_leaves_the_fit_of_the_rows_so_far():
    """Tasks arrive one after the other (rows sorted by task): the label set
    grows, and after every call the model is the fit of the rows seen."""
    X, y, s = stacked_data()
    order = np.argsort(X[:, -1], kind="stable")
    X, y = X[order], y[order]
    kw = dict(penalty="trace", alpha=0.05, task_col=-1, **TIGHT)
    model = MultiTaskRegressor(**kw)
    seen = []
    for c in chunks(len(y), 50):
        model.partial_fit(X[c], y[c])
        end = c.stop
        ref = MultiTaskRegressor(**kw).fit(X[:end], y[:end])
        np.testing.assert_array_equal(model.tasks_, ref.tasks_)
        assert_same_fit(model, ref)
        np.testing.assert_allclose(model.predict(X[:end]), ref.predict(X[:end]),
                                   rtol=1e-8, atol=1e-8)
        seen.append(len(model.tasks_))
    assert seen[0] < seen[-1] == 4


def test_sparse_and_dataframe_chunks():
    X, Y, s = shared_data(offset=0.0)
    X[X < 0.5] = 0.0
    ref = MultiTaskRegressor(alpha=0.05, **TIGHT).fit(X, Y)
    model = MultiTaskRegressor(alpha=0.05, **TIGHT)
    for c in chunks(len(X), 80):
        model.partial_fit(sp.csr_matrix(X[c]), Y[c])
    assert_same_fit(model, ref)

    Xs, y, _ = stacked_data()
    df = pd.DataFrame(Xs[:, :-1].astype(float), columns=list("abcdefg"))
    df["task"] = np.array(["s%d" % v for v in Xs[:, -1]])
    ref = MultiTaskRegressor(alpha=0.05, task_col="task", **TIGHT).fit(df, y)
    model = MultiTaskRegressor(alpha=0.05, task_col="task", **TIGHT)
    for c in chunks(len(y), 90):
        model.partial_fit(df.iloc[c], y[c])
    np.testing.assert_array_equal(model.feature_names_in_, ref.feature_names_in_)
    np.testing.assert_array_equal(model.tasks_, ref.tasks_)
    assert_same_fit(model, ref)
    with pytest.raises(ValueError, match="feature names"):
        model.partial_fit(df.rename(columns={"a": "z"}).iloc[:10], y[:10])


def test_unpenalized_at_alpha_zero_is_least_squares():
    X, Y, s = shared_data()
    ref = MultiTaskRegressor(alpha=0.0).fit(X, Y, sample_weight=s)
    model = MultiTaskRegressor(alpha=0.0)
    for c in chunks(len(X), 50):
        model.partial_fit(X[c], Y[c], sample_weight=s[c])
    assert_same_fit(model, ref)
    assert model.dual_gap_ < 1e-10


def test_one_dimensional_y_predicts_one_dimensional():
    X, Y, _ = shared_data()
    model = MultiTaskRegressor(alpha=0.05).partial_fit(X[:50], Y[:50, 0])
    model.partial_fit(X[50:], Y[50:, 0])
    assert model.predict(X[:3]).shape == (3,)
    assert model.coef_.shape == (1, X.shape[1])


# ------------------------------------------------------------ state and errors
def test_fit_in_memory_resets_the_statistics():
    X, Y, _ = shared_data()
    model = MultiTaskRegressor(alpha=0.05, **TIGHT).partial_fit(X[:100], Y[:100])
    model.fit(X[100:], Y[100:])
    model.partial_fit(X[:100], Y[:100])  # starts afresh: only these rows
    ref = MultiTaskRegressor(alpha=0.05, **TIGHT).fit(X[:100], Y[:100])
    assert_same_fit(model, ref)


def test_a_failed_call_changes_nothing():
    X, Y, _ = shared_data()
    model = MultiTaskRegressor(alpha=0.05, **TIGHT).partial_fit(X[:100], Y[:100])
    before = {k: np.copy(v) if isinstance(v, np.ndarray) else v
              for k, v in vars(model).items()}
    statistics = model._statistics
    bad = Y[100:150].copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        model.partial_fit(X[100:150], bad)
    with pytest.raises(ValueError, match="targets"):
        model.partial_fit(X[100:150], Y[100:150, :2])
    with pytest.raises(ValueError, match="features"):
        model.partial_fit(X[100:150, :-1], Y[100:150])
    assert model._statistics is statistics
    for k, v in before.items():
        np.testing.assert_array_equal(getattr(model, k), v)
    model.partial_fit(X[100:], Y[100:])
    assert_same_fit(model, MultiTaskRegressor(alpha=0.05, **TIGHT).fit(X, Y))


def test_only_the_squared_loss_and_statistics_solvers():
    X, Y, _ = shared_data()
    # the estimators without partial_fit say why (the cause of the error)
    assert not hasattr(MultiTaskRegressor(loss="huber"), "partial_fit")
    with pytest.raises(AttributeError, match="partial_fit") as info:
        MultiTaskRegressor(loss="huber").partial_fit(X, Y)
    assert "only the squared loss" in str(info.value.__cause__)
    assert not hasattr(MultiTaskRegressorCV(), "partial_fit")
    with pytest.raises(AttributeError, match="partial_fit") as info:
        MultiTaskRegressorCV().partial_fit(X, Y)
    assert "cross-validation" in str(info.value.__cause__)
    with pytest.raises(ValueError, match="needs the samples"):
        MultiTaskRegressor(solver="prox_newton").partial_fit(X, Y)


def test_zero_weight_task_is_refused():
    X, y, s = stacked_data()
    s[X[:, -1] == 20] = 0.0
    with pytest.raises(ValueError, match="positive total weight"):
        MultiTaskRegressor(task_col=-1).partial_fit(X, y, sample_weight=s)


def test_fista_and_warm_solves_agree():
    X, y, _ = stacked_data()
    kw = dict(penalty="l21", alpha=0.05, task_col=-1, **TIGHT)
    ref = MultiTaskRegressor(**kw).fit(X, y)
    model = MultiTaskRegressor(solver="fista", **kw)
    for c in chunks(len(y), 100):
        model.partial_fit(X[c], y[c])
    assert_same_fit(model, ref)


def test_a_task_with_one_row_so_far_is_its_intercept():
    X, y, _ = stacked_data()
    X = X[X[:, -1] != 40]
    y = y[:len(X)]
    one = np.append(X[:1, :-1], 40.0)[None, :]  # task 40: a single row
    for penalty in ["l21", "trace", "l2"]:
        model = MultiTaskRegressor(penalty=penalty, alpha=0.05, task_col=-1,
                                   **TIGHT)
        model.partial_fit(X, y).partial_fit(one, [7.5])
        np.testing.assert_array_equal(model.tasks_, [10, 20, 30, 40])
        assert not np.any(model.coef_[3])
        assert model.intercept_[3] == pytest.approx(7.5, abs=1e-12)
        # a zero column changes none of these penalties: the other tasks
        # are their fit without task 40
        ref = MultiTaskRegressor(penalty=penalty, alpha=0.05, task_col=-1,
                                 **TIGHT).fit(X, y)
        scale = np.abs(ref.coef_).max()
        assert np.abs(model.coef_[:3] - ref.coef_).max() <= 1e-8 * scale
