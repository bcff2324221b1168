"""The two data layouts, sample weights, task weights and task labels.

References: scikit-learn fitted on each task's own rows (``l1`` and ``l2``
are separable over tasks), scikit-learn's MultiTaskLasso and cvxpy for the
coupled penalties, and the duality gap recomputed in :mod:`_reference`.
"""
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.linear_model import Lasso, MultiTaskLasso, Ridge

from mtlinear import MultiTaskRegressor, alpha_max, stack_tasks

from _reference import duality_gap, null_objective, stacked_tasks

pytestmark = pytest.mark.filterwarnings("error::sklearn.exceptions.ConvergenceWarning")

PENALTIES = [("l1", 1.0), ("l1", 0.5), ("l2", 1.0), ("l21", 1.0), ("l21", 0.5),
             ("trace", 1.0), ("trace", 0.5)]
TIGHT = dict(tol=1e-13, max_iter=200_000)


def _task_arrays(sizes, d=6, seed=0):
    """Per-task ``X_t``, ``y_t`` with a shared sparse support, unequal n_t."""
    rng = np.random.default_rng(seed)
    W = np.zeros((d, len(sizes)))
    W[:3] = rng.standard_normal((3, len(sizes)))
    X_list = [rng.standard_normal((m, d)) for m in sizes]
    y_list = [Xt @ W[:, t] + 2.0 * t + 0.5 * rng.standard_normal(len(Xt))
              for t, Xt in enumerate(X_list)]
    return X_list, y_list


def _fit_penalty(penalty, alpha, l1_ratio, **kw):
    return MultiTaskRegressor(penalty=penalty, alpha=alpha, l1_ratio=l1_ratio,
                              **TIGHT, **kw)


# ------------------------------------------------------- layouts agree
@pytest.mark.parametrize("penalty,l1_ratio", PENALTIES)
@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_stacked_copies_of_one_X_equal_shared_layout(penalty, l1_ratio, sparse,
                                                     fit_intercept):
    rng = np.random.default_rng(1)
    n, d, T = 30, 5, 4
    X = rng.standard_normal((n, d))
    Y = X @ rng.standard_normal((d, T)) + rng.standard_normal((n, T))
    s = rng.uniform(0.5, 2.0, n)
    X_stacked, y_stacked = stack_tasks([X] * T, list(Y.T))
    fmt = sp.csr_matrix if sparse else np.asarray
    alpha = 0.1
    shared = _fit_penalty(penalty, alpha, l1_ratio, fit_intercept=fit_intercept)
    shared.fit(fmt(X), Y, sample_weight=s)
    stacked = _fit_penalty(penalty, alpha, l1_ratio, fit_intercept=fit_intercept,
                           task_col=-1)
    stacked.fit(fmt(X_stacked), y_stacked, sample_weight=np.tile(s, T))
    assert np.count_nonzero(shared.coef_) > 0
    np.testing.assert_allclose(stacked.coef_, shared.coef_, atol=1e-6)
    np.testing.assert_allclose(stacked.intercept_, shared.intercept_, atol=1e-6)
    np.testing.assert_array_equal(stacked.tasks_, np.arange(T))
    # predict: the stacked rows of task t are column t of the shared predictions
    np.testing.assert_allclose(stacked.predict(fmt(X_stacked)),
                               shared.predict(fmt(X)).T.ravel(), atol=1e-5)


@pytest.mark.parametrize("penalty,l1_ratio", PENALTIES)
@pytest.mark.parametrize("layout", ["shared", "stacked"])
@pytest.mark.parametrize("sparse", [False, True])
def test_integer_sample_weights_equal_repeated_rows(penalty, l1_ratio, layout,
                                                    sparse):
    rng = np.random.default_rng(2)
    fmt = sp.csr_matrix if sparse else np.asarray
    if layout == "shared":
        X = rng.standard_normal((40, 5))
        y = X @ rng.standard_normal((5, 3)) + rng.standard_normal((40, 3))
        task_col = None
    else:
        X, y = stack_tasks(*_task_arrays([15, 25, 20], d=5, seed=2))
        task_col = -1
    k = rng.integers(0, 4, len(X))
    k[:2] = 1  # every task keeps at least two rows
    k[-2:] = 1
    model = _fit_penalty(penalty, 0.05, l1_ratio, task_col=task_col)
    weighted = model.fit(fmt(X), y, sample_weight=k)
    coef, intercept = weighted.coef_, weighted.intercept_
    repeated = model.fit(fmt(np.repeat(X, k, axis=0)), np.repeat(y, k, axis=0))
    assert np.count_nonzero(coef) > 0
    np.testing.assert_allclose(repeated.coef_, coef, atol=1e-6)
    np.testing.assert_allclose(repeated.intercept_, intercept, atol=1e-6)


# ------------------------------------------------------- separable: sklearn per task
def _labelled_input(X_list, y_list, s_list, labels, kind, rng):
    """The stacked input in one of several forms, rows shuffled across tasks.

    Returns ``(X, y, s, task_col, row_task, features)`` with ``row_task`` the
    position of each row's task in ``X_list`` and ``features`` the rows'
    features as floats.
    """
    X, y = stack_tasks(X_list, y_list, task_labels=labels)
    row_task = np.repeat(np.arange(len(X_list)), [len(v) for v in y_list])
    order = rng.permutation(len(y))
    X, y, row_task = X[order], y[order], row_task[order]
    s = np.concatenate(s_list)[order]
    features = X[:, :-1].astype(float)
    if kind == "sparse":
        return sp.csr_matrix(X), y, s, -1, row_task, features
    if kind == "dataframe":  # the task column first, by name
        frame = pd.concat([pd.Series(X[:, -1], name="school"),
                           pd.DataFrame(features, columns=[
                               f"f{j}" for j in range(features.shape[1])])], axis=1)
        return frame, y, s, "school", row_task, features
    return X, y, s, -1, row_task, features


@pytest.mark.parametrize("penalty", ["l1", "l2"])
@pytest.mark.parametrize("labels,kind", [
    ([0, 1, 2, 3], "dense"),
    ([7.0, 3.0, 11.0, 5.0], "dense"),        # integral floats
    ([7.0, 3.0, 11.0, 5.0], "sparse"),
    (["north", "east", "west", "south"], "dense"),
    (["north", "east", "west", "south"], "dataframe"),
    ([12, 4, 9, 30], "dataframe"),
])
@pytest.mark.parametrize("weighted", [False, True])
def test_separable_penalties_fit_each_task_alone(penalty, labels, kind, weighted):
    """l1 and l2 do not couple tasks: each task is scikit-learn's Lasso /
    Ridge on its own rows (Ridge's alpha is ``alpha * sum_t s_i``, see
    test_reference_sklearn), whatever the labels, their order and the rows'
    order."""
    rng = np.random.default_rng(3)
    sizes = [12, 40, 25, 60]
    X_list, y_list = _task_arrays(sizes, seed=3)
    s_list = [rng.uniform(0.2, 3.0, m) if weighted else np.ones(m) for m in sizes]
    X, y, s, task_col, row_task, features = _labelled_input(
        X_list, y_list, s_list, labels, kind, rng)
    alpha = 0.05
    model = MultiTaskRegressor(penalty=penalty, alpha=alpha, task_col=task_col,
                               **TIGHT).fit(X, y, sample_weight=s)

    # a gap g bounds the error by sqrt(2 g / m): looser for ridge's small m
    atol = 1e-7 if penalty == "l1" else 1e-5
    order = np.argsort(labels)  # coef_ rows follow the sorted labels
    np.testing.assert_array_equal(model.tasks_, np.sort(labels))
    if isinstance(labels[0], float):
        assert model.tasks_.dtype.kind == "i"
    for row, t in enumerate(order):
        if penalty == "l1":
            ref = Lasso(alpha=alpha, tol=1e-13, max_iter=10 ** 6)
        else:
            ref = Ridge(alpha=alpha * s_list[t].sum(), solver="cholesky")
        ref.fit(X_list[t], y_list[t], sample_weight=s_list[t])
        np.testing.assert_allclose(model.coef_[row], ref.coef_, atol=atol)
        np.testing.assert_allclose(model.intercept_[row], ref.intercept_, atol=atol)
        # predict routes each (shuffled) row to its own task's model
        rows = row_task == t
        X_rows = X.iloc[rows] if kind == "dataframe" else X[rows]
        np.testing.assert_allclose(model.predict(X_rows), ref.predict(features[rows]),
                                   atol=10 * atol)
    # all rows at once: row i uses the model of its task
    position = np.argsort(order)[row_task]  # row of coef_ for each sample
    expected = (np.einsum("ij,ij->i", features, model.coef_[position])
                + model.intercept_[position])
    np.testing.assert_allclose(model.predict(X), expected, atol=1e-10)
    if kind == "dataframe":
        assert list(model.feature_names_in_) == list(X.columns)


# ------------------------------------------------------- task weights
@pytest.mark.parametrize("as_dict", [False, True])
def test_task_weights_rescale_each_tasks_alpha_for_l1(as_dict):
    """``omega_t (1/(2 n_t)) ||y_t - X_t w_t||^2 + alpha |w_t|_1`` is
    ``omega_t`` times a Lasso with ``alpha / omega_t``; a task of weight 0
    does not count at all, so its coefficients are zero."""
    sizes = [20, 45, 30, 25]
    X_list, y_list = _task_arrays(sizes, seed=4)
    labels = ["a", "b", "c", "d"]
    X, y = stack_tasks(X_list, y_list, task_labels=labels)
    omega = np.array([0.5, 2.0, 1.0, 0.0])
    task_weights = dict(zip(labels, omega)) if as_dict else omega
    alpha = 0.05
    model = MultiTaskRegressor(penalty="l1", alpha=alpha, task_col=-1,
                               task_weights=task_weights, **TIGHT).fit(X, y)
    for t in range(3):
        ref = Lasso(alpha=alpha / omega[t], tol=1e-13, max_iter=10 ** 6)
        ref.fit(X_list[t], y_list[t])
        np.testing.assert_allclose(model.coef_[t], ref.coef_, atol=1e-7)
        np.testing.assert_allclose(model.intercept_[t], ref.intercept_, atol=1e-7)
    np.testing.assert_array_equal(model.coef_[3], 0.0)
    assert model.intercept_[3] == pytest.approx(y_list[3].mean())


def test_task_weights_dict_fills_missing_tasks_with_one():
    X_list, y_list = _task_arrays([20, 30, 25], seed=5)
    X, y = stack_tasks(X_list, y_list, task_labels=[10, 20, 30])
    partial = MultiTaskRegressor(penalty="l1", alpha=0.05, task_col=-1,
                                 task_weights={20: 2.0}, **TIGHT).fit(X, y)
    ref = Lasso(alpha=0.05 / 2.0, tol=1e-13, max_iter=10 ** 6)
    np.testing.assert_allclose(partial.coef_[1], ref.fit(X_list[1], y_list[1]).coef_,
                               atol=1e-7)
    ref = Lasso(alpha=0.05, tol=1e-13, max_iter=10 ** 6)
    np.testing.assert_allclose(partial.coef_[0], ref.fit(X_list[0], y_list[0]).coef_,
                               atol=1e-7)


@pytest.mark.parametrize("penalty,l1_ratio", [("l21", 1.0), ("l21", 0.5),
                                              ("trace", 1.0), ("l1", 0.7)])
@pytest.mark.parametrize("sparse", [False, True])
def test_task_weights_certified_by_recomputed_gap(penalty, l1_ratio, sparse):
    """The fit is optimal for the weighted objective: its duality gap, computed
    independently with those weights, is at the requested tolerance."""
    sizes = [15, 50, 30, 22, 41]
    X_list, y_list = _task_arrays(sizes, seed=6)
    X, y = stack_tasks(X_list, y_list)
    rng = np.random.default_rng(6)
    omega = rng.uniform(0.1, 5.0, len(sizes))
    s = rng.uniform(0.5, 2.0, len(y))
    alpha = 0.2 * alpha_max(X, y, penalty=penalty, l1_ratio=l1_ratio, task_col=-1,
                            sample_weight=s, task_weights=omega)
    tol = 1e-8
    model = MultiTaskRegressor(penalty=penalty, alpha=alpha, l1_ratio=l1_ratio,
                               task_col=-1, task_weights=omega, tol=tol,
                               max_iter=100_000)
    model.fit(sp.csr_matrix(X) if sparse else X, y, sample_weight=s)
    tasks = stacked_tasks(X[:, :-1], y, X[:, -1], s)
    primal, dual = duality_gap(tasks, model.coef_, model.intercept_, penalty, alpha,
                               l1_ratio, task_weights=omega)
    p0 = null_objective(tasks, True, omega)
    assert -1e-12 * p0 <= primal - dual <= tol * p0 * (1 + 1e-6)
    # with unit weights instead, the same coefficients are not optimal
    primal1, dual1 = duality_gap(tasks, model.coef_, model.intercept_, penalty,
                                 alpha, l1_ratio)
    assert primal1 - dual1 > 100 * tol * null_objective(tasks, True)


def test_task_weights_n_t_is_malsar_plain_sum_sklearn():
    """Every task sees the same ``X`` (n rows): with ``task_weights = n`` the
    objective is ``1/2 ||Y - XW||_F^2 + alpha R(W)``, i.e. n times
    scikit-learn's MultiTaskLasso objective with ``alpha / n``."""
    rng = np.random.default_rng(8)
    n, d, T = 40, 7, 4
    X = rng.standard_normal((n, d))
    Y = X[:, :3] @ rng.standard_normal((3, T)) + rng.standard_normal((n, T))
    alpha = 10.0
    X_stacked, y_stacked = stack_tasks([X] * T, list(Y.T))
    model = MultiTaskRegressor(penalty="l21", alpha=alpha, task_col=-1,
                               task_weights=np.full(T, n), **TIGHT)
    model.fit(X_stacked, y_stacked)
    ref = MultiTaskLasso(alpha=alpha / n, tol=1e-13, max_iter=10 ** 6).fit(X, Y)
    assert 0 < np.count_nonzero(ref.coef_) < ref.coef_.size
    np.testing.assert_allclose(model.coef_, ref.coef_, atol=1e-7)
    np.testing.assert_allclose(model.intercept_, ref.intercept_, atol=1e-7)


@pytest.mark.parametrize("penalty", ["l21", "trace"])
def test_task_weights_n_t_is_malsar_plain_sum_cvxpy(penalty):
    """Unequal n_t: ``task_weights = n_t`` gives MALSAR's
    ``1/2 sum_i (y_i - x_i w_t - b_t)^2 + alpha R(W)``, solved by cvxpy."""
    cp = pytest.importorskip("cvxpy")
    sizes = [10, 35, 22, 16]
    X_list, y_list = _task_arrays(sizes, d=5, seed=9)
    X, y = stack_tasks(X_list, y_list)
    alpha = 3.0
    model = MultiTaskRegressor(penalty=penalty, alpha=alpha, task_col=-1,
                               task_weights=np.array(sizes, float), tol=1e-12,
                               max_iter=200_000).fit(X, y)
    W, b = cp.Variable((5, len(sizes))), cp.Variable(len(sizes))
    loss = sum(0.5 * cp.sum_squares(yt - Xt @ W[:, t] - b[t])
               for t, (Xt, yt) in enumerate(zip(X_list, y_list)))
    norm = (cp.sum(cp.norm(W, 2, axis=1)) if penalty == "l21" else cp.normNuc(W))
    cp.Problem(cp.Minimize(loss + alpha * norm)).solve(
        solver=cp.CLARABEL, tol_gap_abs=1e-9, tol_gap_rel=1e-9, tol_feas=1e-9)
    scale = np.abs(W.value).max()
    np.testing.assert_allclose(model.coef_, W.value.T, atol=1e-5 * scale)
    np.testing.assert_allclose(model.intercept_, b.value, atol=1e-5 * scale)


def test_task_weights_series_is_read_by_label():
    # a Series is read by its index (value_counts() sorts by count, not by
    # label): the same weights as the dict of the same pairs
    rng = np.random.default_rng(0)
    X_list = [rng.standard_normal((n, 4)) for n in (30, 12, 20)]
    y_list = [Xt @ rng.standard_normal(4) + rng.standard_normal(len(Xt))
              for Xt in X_list]
    X, y = stack_tasks(X_list, y_list, task_labels=["b", "c", "a"])
    counts = pd.Series(X[:, -1]).value_counts()  # order: b, a, c
    by_series = MultiTaskRegressor(alpha=0.1, task_col=-1,
                                   task_weights=counts).fit(X, y)
    by_dict = MultiTaskRegressor(alpha=0.1, task_col=-1,
                                 task_weights=counts.to_dict()).fit(X, y)
    np.testing.assert_array_equal(by_series.coef_, by_dict.coef_)
    positional = MultiTaskRegressor(alpha=0.1, task_col=-1,
                                    task_weights=counts.to_numpy()).fit(X, y)
    assert not np.allclose(positional.coef_, by_dict.coef_)
    with pytest.raises(ValueError, match="repeated labels"):
        MultiTaskRegressor(task_col=-1, task_weights=pd.Series(
            [1.0, 2.0, 3.0], index=["a", "a", "b"])).fit(X, y)


def test_stack_tasks_rejects_repeated_labels():
    with pytest.raises(ValueError, match="repeated labels"):
        stack_tasks([np.ones((2, 3)), np.ones((3, 3))], [[1, 2], [3, 4, 5]],
                    task_labels=[1, 1])


def test_refit_in_the_shared_layout_drops_the_task_labels():
    """A model refitted in the shared layout after a stacked fit keeps no
    ``tasks_`` of the old fit (its ``coef_`` has other tasks); a failed
    refit keeps them all."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 4))
    labels = np.repeat([7, 8, 9], 20)
    model = MultiTaskRegressor(alpha=0.01, task_col=-1).fit(
        np.column_stack([X, labels]), rng.standard_normal(60))
    np.testing.assert_array_equal(model.tasks_, [7, 8, 9])
    with pytest.raises(ValueError):
        model.fit(np.column_stack([X, labels]), np.full(59, 1.0))
    np.testing.assert_array_equal(model.tasks_, [7, 8, 9])
    model.set_params(task_col=None).fit(X, rng.standard_normal((60, 2)))
    assert model.coef_.shape == (2, 4)
    assert not hasattr(model, "tasks_")
