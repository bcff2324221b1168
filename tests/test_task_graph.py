"""Task graphs (``task_graph``, ``graph_alpha``): against cvxpy, the
optimality conditions and the shortcuts' closed forms, in both layouts."""
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, KFold

from _cvxpy_reference import graph_value, kkt_violation, objective, solve_reference
from _reference import shared_tasks, stacked_tasks
from mtlinear import (MultiTaskClassifier, MultiTaskRegressor,
                      MultiTaskRegressorCV)

pytest.importorskip("cvxpy")

TIGHT = dict(tol=1e-12, max_iter=200_000)


def _shared(n=40, d=4, T=4, seed=0, classification=False):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    base = rng.standard_normal(d)
    W = base[:, None] + 0.3 * rng.standard_normal((d, T))
    Y = X @ W + 0.5 * rng.standard_normal((n, T)) + 1.0
    if classification:
        Y = (Y > np.median(Y, axis=0)).astype(int)
    return X, Y


def _stacked(T=4, d=3, seed=0, classification=False):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(8, 20, T)
    labels = np.repeat([f"t{k}" for k in range(T)], sizes)
    rng.shuffle(labels)
    X = rng.standard_normal((len(labels), d))
    W = rng.standard_normal(d)[:, None] + 0.3 * rng.standard_normal((d, T))
    task = np.searchsorted(np.unique(labels), labels)
    y = np.einsum("ij,ij->i", X, W.T[task]) + 0.3 * rng.standard_normal(len(X))
    if classification:
        y = (y > np.median(y)).astype(int)
    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(d)])
    frame["task"] = labels
    return frame, y, labels


def _signed(tasks):
    """``y`` in {-1, +1} per task, as the reference takes it."""
    return [(Xt, np.where(yt == yt.max(), 1.0, -1.0), st) for Xt, yt, st in tasks]


@pytest.mark.parametrize("penalty", ["l1", "l21", "l2", "trace", "sparse_group"])
@pytest.mark.parametrize("graph", ["mean", "chain"])
def test_shared_squared_matches_cvxpy(penalty, graph):
    X, Y = _shared(seed=1)
    w = np.random.default_rng(1).uniform(0.5, 2.0, len(X))
    omega = np.array([1.0, 2.0, 0.5, 1.0])
    model = MultiTaskRegressor(penalty=penalty, alpha=0.05, l1_ratio=0.8,
                               task_graph=graph, graph_alpha=0.7,
                               task_weights=omega, **TIGHT)
    model.fit(X, Y, sample_weight=w)
    Xc = X - np.average(X, axis=0, weights=w)  # centring = fitted intercepts
    Yc = Y - np.average(Y, axis=0, weights=w)
    W_ref, _, _ = solve_reference(shared_tasks(Xc, Yc, w), loss="squared",
                                  penalty=penalty, alpha=0.05, l1_ratio=0.8,
                                  task_weights=omega, fit_intercept=False,
                                  graph=(model.task_graph_, 0.7))
    scale = max(np.abs(W_ref).max(), 1.0)
    np.testing.assert_allclose(model.coef_.T, W_ref, atol=1e-6 * scale)
    assert model.task_graph_.shape == (4, 4)


@pytest.mark.parametrize("penalty", ["l1", "l21", "trace"])
def test_stacked_logistic_matches_cvxpy(penalty):
    frame, y, labels = _stacked(seed=2, classification=True)
    A = np.array([[0, 1, 0, 2], [1, 0, 1, 0], [0, 1, 0, 0], [2, 0, 0, 0.]])
    model = MultiTaskClassifier(penalty=penalty, alpha=0.02, task_col="task",
                                task_graph=A, graph_alpha=0.3, **TIGHT)
    model.fit(frame, y)
    tasks = _signed(stacked_tasks(frame.drop(columns="task"), y, labels))
    W_ref, b_ref, _ = solve_reference(tasks, loss="logistic", penalty=penalty,
                                      alpha=0.02, graph=(A, 0.3))
    scale = max(np.abs(W_ref).max(), 1.0)
    np.testing.assert_allclose(model.coef_.T, W_ref, atol=1e-6 * scale)
    np.testing.assert_allclose(model.intercept_, b_ref, atol=1e-6 * scale)


def test_stacked_squared_with_penalty_factors_is_optimal():
    frame, y, labels = _stacked(seed=3)
    pairs = {("t0", "t1"): 1.0, ("t2", "t3"): 0.5}
    factor = np.array([0.1, 1.0, 2.0])
    model = MultiTaskRegressor(penalty="l21", alpha=0.05, task_col="task",
                               penalty_factor=factor, task_graph=pairs,
                               graph_alpha=1.0, fit_intercept=False, **TIGHT)
    model.fit(frame, y)
    tasks = stacked_tasks(frame.drop(columns="task"), y, labels)
    A = model.task_graph_
    assert A[0, 1] == A[1, 0] == 1.0 and A[2, 3] == 0.5 and A[0, 2] == 0.0
    violation = kkt_violation(tasks, model.coef_.T, None, loss="squared",
                              penalty="l21", alpha=0.05, penalty_factor=factor,
                              fit_intercept=False, graph=(A, 1.0))
    assert violation < 1e-7
    with pytest.raises(ValueError, match="small positive factor"):
        clone(model).set_params(penalty_factor=[0.0, 1.0, 1.0]).fit(frame, y)


def _toeplitz_design(n, d, rho, seed):
    rng = np.random.default_rng(seed)
    cov = rho ** np.abs(np.subtract.outer(np.arange(d), np.arange(d)))
    return rng.standard_normal((n, d)) @ np.linalg.cholesky(cov).T, rng


def test_ridge_with_a_graph_is_exact_at_default_settings():
    """The squared loss, ``l2`` and a graph stay quadratic: solved directly,
    as ridge alone is.  An iterative solve had stopped on its gap 10 to 25%
    away from the optimum on correlated features (rho = 0.99)."""
    from scipy.linalg import solve_sylvester
    X, rng = _toeplitz_design(40, 8, 0.99, seed=3)
    T, alpha, gamma = 4, 1e-3, 0.1
    W = rng.standard_normal(8)[:, None] + 0.3 * rng.standard_normal((8, T))
    Y = X @ W + 0.5 * rng.standard_normal((40, T))
    s = rng.uniform(0.2, 3.0, 40)
    model = MultiTaskRegressor(penalty="l2", alpha=alpha, task_graph="mean",
                               graph_alpha=gamma).fit(X, Y, sample_weight=s)
    # the normal equations X_c^T V X_c W + W (alpha I + 2 gamma L) =
    # X_c^T V Y_c, V the normalized weights, L the mean graph's Laplacian
    v = s / s.sum()
    Xc, Yc = X - v @ X, Y - v @ Y
    L = np.eye(T) - np.full((T, T), 1.0 / T)
    expected = solve_sylvester(Xc.T @ (v[:, None] * Xc),
                               alpha * np.eye(T) + 2 * gamma * L,
                               Xc.T @ (v[:, None] * Yc))
    assert model.n_iter_ == 1
    np.testing.assert_allclose(model.coef_.T, expected, rtol=0,
                               atol=1e-9 * np.abs(expected).max())
    assert 0.0 <= model.dual_gap_ <= 1e-10


@pytest.mark.parametrize("layout", ["shared", "stacked"])
def test_ridge_with_a_graph_is_optimal_with_weights_and_factors(layout):
    """Task weights, sample weights, a chain graph; penalty factors (the
    dense system of side d T) in the stacked layout: the optimality
    conditions recomputed from the data hold to rounding at the defaults."""
    X, rng = _toeplitz_design(60, 5, 0.99, seed=4)
    T = 4
    s = rng.uniform(0.2, 3.0, 60)
    omega = np.array([1.0, 2.0, 0.5, 1.5])
    kw = dict(penalty="l2", alpha=1e-3, task_graph="chain", graph_alpha=0.3,
              task_weights=omega)
    if layout == "shared":
        Y = X @ rng.standard_normal((5, T)) + rng.standard_normal((60, T))
        model = MultiTaskRegressor(**kw).fit(X, Y, sample_weight=s)
        tasks, factor = shared_tasks(X, Y, s), None
    else:
        labels = np.repeat([f"t{k}" for k in range(T)], 15)
        y = X @ rng.standard_normal(5) + rng.standard_normal(60)
        frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(5)])
        frame["task"] = labels
        factor = np.array([0.5, 1.0, 2.0, 1.0, 3.0])
        model = MultiTaskRegressor(task_col="task", penalty_factor=factor,
                                   **kw).fit(frame, y, sample_weight=s)
        tasks = stacked_tasks(X, y, labels, s)
    assert model.n_iter_ == 1
    violation = kkt_violation(tasks, model.coef_.T, model.intercept_,
                              loss="squared", penalty="l2", alpha=1e-3,
                              penalty_factor=factor, task_weights=omega,
                              graph=(model.task_graph_, 0.3))
    assert violation < 1e-9


@pytest.mark.parametrize("graph_alpha", [0.01, 10.0])
def test_ridge_with_a_graph_per_task_designs_matches_a_dense_solve(graph_alpha):
    """Per-task designs (Toeplitz 0.999, raw scales): conjugate gradients
    preconditioned by the tasks' blocks against the dense normal equations
    of side d T, built here from each task's centred data."""
    rng = np.random.default_rng(6)
    T, d, n_t, alpha = 6, 7, 25, 1e-4
    cov = 0.999 ** np.abs(np.subtract.outer(np.arange(d), np.arange(d)))
    blocks, targets = [], []
    for t in range(T):
        X_t = rng.standard_normal((n_t, d)) @ np.linalg.cholesky(cov).T
        X_t *= np.logspace(0, 2, d)
        blocks.append(X_t)
        targets.append(X_t @ rng.standard_normal(d) + rng.standard_normal(n_t))
    A = np.diag(np.ones(T - 1), 1)
    A = A + A.T  # a chain
    X = np.column_stack([np.vstack(blocks), np.repeat(np.arange(T), n_t)])
    model = MultiTaskRegressor(penalty="l2", alpha=alpha, task_col=-1,
                               task_graph=A, graph_alpha=graph_alpha)
    model.fit(X, np.concatenate(targets))
    # each task's loss a mean: Q_t = X_tc^T X_tc / n_t; K = 2 graph_alpha L
    K = 2 * graph_alpha * (np.diag(A.sum(axis=1)) - A)
    system = np.kron(K, np.eye(d)) + alpha * np.eye(d * T)
    rhs = []
    for t, (X_t, y_t) in enumerate(zip(blocks, targets)):
        Xc, yc = X_t - X_t.mean(axis=0), y_t - y_t.mean()
        system[t * d:(t + 1) * d, t * d:(t + 1) * d] += Xc.T @ Xc / n_t
        rhs.append(Xc.T @ yc / n_t)
    expected = np.linalg.solve(system, np.concatenate(rhs)).reshape(T, d)
    assert model.n_iter_ == 1
    np.testing.assert_allclose(model.coef_, expected, rtol=0,
                               atol=1e-8 * np.abs(expected).max())


def test_ridge_with_a_graph_too_large_to_solve_directly_goes_to_fista():
    """A shared design with penalty factors whose dense system would exceed
    side 3000: FISTA, converged at the defaults."""
    rng = np.random.default_rng(5)
    n, d, T = 500, 310, 10
    X = rng.standard_normal((n, d))
    Y = X @ rng.standard_normal((d, T)) + rng.standard_normal((n, T))
    model = MultiTaskRegressor(penalty="l2", alpha=0.1, task_graph="mean",
                               graph_alpha=0.1,
                               penalty_factor=rng.uniform(0.5, 2.0, d))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model.fit(X, Y)
    assert model.n_iter_ > 1


def test_wide_design_trace_row_space_route():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((12, 30))
    Y = X[:, :3] @ rng.standard_normal((3, 3)) + 0.1 * rng.standard_normal((12, 3))
    model = MultiTaskRegressor(penalty="trace", alpha=0.1, task_graph="mean",
                               graph_alpha=0.5, fit_intercept=False, **TIGHT)
    model.fit(X, Y)
    W_ref, _, _ = solve_reference(shared_tasks(X, Y), loss="squared",
                                  penalty="trace", alpha=0.1,
                                  fit_intercept=False,
                                  graph=(model.task_graph_, 0.5))
    np.testing.assert_allclose(model.coef_.T, W_ref,
                               atol=1e-6 * np.abs(W_ref).max())


def test_shortcut_terms_have_their_closed_forms():
    rng = np.random.default_rng(5)
    W = rng.standard_normal((3, 5))
    X, Y = _shared(T=5, d=3)
    for graph, closed in [
            ("mean", np.sum((W - W.mean(axis=1, keepdims=True)) ** 2)),
            ("chain", np.sum((W[:, 1:] - W[:, :-1]) ** 2))]:
        model = MultiTaskRegressor(penalty="l2", alpha=0.1, task_graph=graph,
                                   graph_alpha=2.0).fit(X, Y)
        assert graph_value(W, (model.task_graph_, 2.0)) == pytest.approx(
            2.0 * closed, rel=1e-12)


def test_strong_mean_graph_fuses_the_tasks():
    X, Y = _shared(seed=6)
    weak = MultiTaskRegressor(penalty="l2", alpha=1e-3, task_graph="mean",
                              graph_alpha=1e-6).fit(X, Y)
    strong = clone(weak).set_params(graph_alpha=1e4).fit(X, Y)
    spread = lambda m: np.ptp(m.coef_, axis=0).max()  # noqa: E731
    assert spread(strong) < 1e-3 * spread(weak)
    # fused: one weight vector for every task, the pooled ridge fit (the
    # T = 4 ridge terms and data-fit means add up to 4 times its objective)
    pooled = MultiTaskRegressor(penalty="l2", alpha=1e-3).fit(
        np.tile(X, (4, 1)), (Y - Y.mean(axis=0)).T.ravel())
    np.testing.assert_allclose(strong.coef_.mean(axis=0), pooled.coef_[0],
                               atol=1e-5)


def test_graph_labels_and_orders():
    frame, y, labels = _stacked(seed=7)
    names = np.unique(labels)
    A = np.zeros((4, 4))
    A[0, 3] = A[3, 0] = 1.0
    A[1, 2] = A[2, 1] = 2.0
    by_array = MultiTaskRegressor(alpha=0.05, task_col="task", task_graph=A,
                                  **TIGHT).fit(frame, y)
    order = [3, 1, 0, 2]
    table = pd.DataFrame(A[np.ix_(order, order)], index=names[order],
                         columns=names[order])
    by_frame = clone(by_array).set_params(task_graph=table).fit(frame, y)
    by_dict = clone(by_array).set_params(task_graph={
        ("t0", "t3"): 1.0, ("t2", "t1"): 2.0}).fit(frame, y)
    # a dict is a graph by its edges: kept sparse
    assert sp.issparse(by_dict.task_graph_)
    np.testing.assert_array_equal(by_dict.task_graph_.toarray(), A)
    np.testing.assert_array_equal(by_frame.task_graph_, A)
    for other in (by_frame, by_dict):
        np.testing.assert_allclose(other.coef_, by_array.coef_, atol=1e-10)


def test_missing_targets_match_the_stacked_layout():
    X, Y = _shared(n=50, seed=8)
    Y = Y.astype(float)
    Y[np.random.default_rng(8).random(Y.shape) < 0.3] = np.nan
    masked = MultiTaskRegressor(penalty="l21", alpha=0.05, task_graph="chain",
                                **TIGHT).fit(X, Y)
    rows, cols = np.nonzero(~np.isnan(Y))
    stacked = MultiTaskRegressor(penalty="l21", alpha=0.05, task_col=-1,
                                 task_graph="chain", **TIGHT).fit(
        np.column_stack([X[rows], cols]), Y[rows, cols])
    np.testing.assert_allclose(masked.coef_, stacked.coef_, atol=1e-7)
    np.testing.assert_allclose(masked.intercept_, stacked.intercept_, atol=1e-7)


def test_graph_alpha_is_searched():
    X, Y = _shared(seed=9)
    grid = [0.0, 0.1, 10.0]
    # tight: the refit starts from the folds' mean solution, a standalone
    # fit from zero, and both are within tol of the optimum
    cv = MultiTaskRegressorCV(penalty="l21", alphas=5, task_graph="mean",
                              graph_alpha=grid, cv=KFold(3), tol=1e-10).fit(X, Y)
    assert cv.graph_alpha_ in grid
    assert cv.score_path_.shape == (3, 5, 3) and cv.alphas_.shape == (3, 5)
    refit = MultiTaskRegressor(penalty="l21", alpha=cv.alpha_,
                               task_graph="mean", graph_alpha=cv.graph_alpha_,
                               tol=cv.tol).fit(X, Y)
    np.testing.assert_allclose(cv.coef_, refit.coef_, atol=1e-6)
    search = GridSearchCV(MultiTaskRegressor(alpha=0.05, task_graph="mean"),
                          {"graph_alpha": grid}, cv=KFold(3)).fit(X, Y)
    assert search.best_params_["graph_alpha"] in grid


def test_no_graph_changes_nothing_and_zero_strength_is_no_graph():
    X, Y = _shared(seed=10)
    plain = MultiTaskRegressor(alpha=0.05, **TIGHT).fit(X, Y)
    zero = MultiTaskRegressor(alpha=0.05, task_graph="chain", graph_alpha=0.0,
                              **TIGHT).fit(X, Y)
    np.testing.assert_allclose(zero.coef_, plain.coef_, atol=1e-9)
    assert not hasattr(plain, "task_graph_") and hasattr(zero, "task_graph_")


@pytest.mark.parametrize("graph, message", [
    ("ring", "task_graph"),
    (np.ones((3, 3)), r"shape \(3, 3\)"),
    (np.array([[0, 1, 0, 0], [2, 0, 0, 0], [0] * 4, [0] * 4]), "symmetric"),
    (-np.ones((4, 4)), "non-negative"),
    ({(0, 9): 1.0}, "task 9"),
    ({0: 1.0}, "pairs"),
])
def test_bad_graphs_are_clear_errors_and_keep_the_fit(graph, message):
    X, Y = _shared(seed=11)
    model = MultiTaskRegressor(alpha=0.05).fit(X, Y)
    coef = model.coef_.copy()
    with pytest.raises(ValueError, match=message):
        model.set_params(task_graph=graph).fit(X, Y)
    np.testing.assert_array_equal(model.coef_, coef)
    assert not hasattr(model, "task_graph_")


def test_graph_needs_a_penalty_and_a_coupling_solver():
    X, Y = _shared(seed=12)
    with pytest.raises(ValueError, match="alpha > 0"):
        MultiTaskRegressor(alpha=0.0, task_graph="mean").fit(X, Y)
    with pytest.raises(ValueError, match="task-coupling"):
        MultiTaskRegressor(alpha=0.1, task_graph="mean", solver="bcd").fit(X, Y)


def test_reported_gap_bounds_the_suboptimality():
    X, Y = _shared(seed=13, classification=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = MultiTaskClassifier(penalty="l1", alpha=0.01, task_graph="mean",
                                    graph_alpha=0.5, tol=1e-3).fit(X, Y)
    tasks = _signed(shared_tasks(X, Y))
    graph = (model.task_graph_, 0.5)
    _, _, best = solve_reference(tasks, loss="logistic", penalty="l1",
                                 alpha=0.01, graph=graph)
    value = objective(tasks, model.coef_.T, model.intercept_, loss="logistic",
                      penalty="l1", alpha=0.01, graph=graph)
    assert 0 <= value - best <= model.dual_gap_ * (1 + 1e-9) + 1e-12


def test_invertible_coupling_without_penalty_is_certified():
    """A positive-definite ``K`` (a task covariance) needs no penalty: the
    solve matches the normal equations ``X^T X W / n + W K = X^T Y / n``."""
    from mtlinear._coupling import TaskCoupling
    from mtlinear._solve import solve
    from mtlinear._task_data import build_problem
    from mtlinear.losses import make_loss
    from mtlinear.penalties import make_penalty

    rng = np.random.default_rng(14)
    n, d, T = 30, 4, 3
    X, Y = rng.standard_normal((n, d)), rng.standard_normal((n, T))
    B = rng.standard_normal((T, T))
    K = B @ B.T + 0.1 * np.eye(T)
    problem = build_problem(X, Y, fit_intercept=False)
    result = solve(problem, make_loss("squared"), make_penalty("l2", 0.0),
                   tol=1e-12, max_iter=100_000, coupling=TaskCoupling(K))
    system = np.kron(np.eye(T), X.T @ X / n) + np.kron(K, np.eye(d))
    expected = np.linalg.solve(system, (X.T @ Y / n).T.ravel()).reshape(T, d).T
    assert 0 <= result.gap <= result.tol_abs
    # the gap bounds the distance to the optimum by strong convexity
    mu = np.linalg.eigvalsh(system)[0]
    error = np.linalg.norm(result.W - expected)
    assert error <= np.sqrt(2 * result.gap / mu) + 1e-12
    assert error < 1e-5


def _badly_scaled(seed=15, T=6, d=5, classification=False):
    """Stacked tasks whose features' scales span six decades (as School's raw
    exam percentages beside its dummies)."""
    frame, y, labels = _stacked(T=T, d=d, seed=seed,
                                classification=classification)
    scales = np.logspace(-3, 3, d)
    frame[[f"x{j}" for j in range(d)]] *= scales
    return frame, y, labels


@pytest.mark.parametrize("penalty", ["l21", "trace", "l1"])
@pytest.mark.parametrize("graph", ["mean", "chain"])
def test_badly_scaled_features_converge_at_defaults(penalty, graph):
    # FISTA's step is set by the largest feature and crawls on the others;
    # ADMM with the coupling split off finishes with exact steps
    frame, y, labels = _badly_scaled()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = MultiTaskRegressor(penalty=penalty, alpha=0.05, task_col="task",
                                   task_graph=graph).fit(frame, y)
    # 1e-12 is below the gap's rounding on these scales
    tight = clone(model).set_params(solver="admm", tol=1e-10).fit(frame, y)
    tasks = stacked_tasks(frame.drop(columns="task"), y, labels)
    Xc = [(Xt - Xt.mean(axis=0), yt - yt.mean(), st) for Xt, yt, st in tasks]
    W_ref, _, _ = solve_reference(Xc, loss="squared", penalty=penalty,
                                  alpha=0.05, fit_intercept=False,
                                  graph=(tight.task_graph_, 1.0))
    scale = np.abs(W_ref).max(axis=1, keepdims=True)  # per feature's size
    assert np.all(np.abs(tight.coef_.T - W_ref) <= 1e-5 * scale + 1e-12)


@pytest.mark.parametrize("penalty", ["l21", "trace"])
def test_badly_scaled_classifier_converges_at_defaults(penalty):
    # FISTA crawls; proximal Newton with ADMM steps keeps the coupling exact
    frame, y, labels = _badly_scaled(seed=16, classification=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = MultiTaskClassifier(penalty=penalty, alpha=0.01,
                                    task_col="task", task_graph="chain",
                                    graph_alpha=0.3).fit(frame, y)
    tight = clone(model).set_params(tol=1e-10).fit(frame, y)
    tasks = _signed(stacked_tasks(frame.drop(columns="task"), y, labels))
    graph = (tight.task_graph_, 0.3)
    W_ref, b_ref, best = solve_reference(tasks, loss="logistic",
                                         penalty=penalty, alpha=0.01,
                                         graph=graph)
    scale = np.abs(W_ref).max(axis=1, keepdims=True)
    assert np.all(np.abs(tight.coef_.T - W_ref) <= 1e-5 * scale + 1e-10)
    value = objective(tasks, model.coef_.T, model.intercept_, loss="logistic",
                      penalty=penalty, alpha=0.01, graph=graph)
    assert 0 <= value - best <= model.dual_gap_ * (1 + 1e-9) + 1e-12


def test_ridge_with_a_graph_hands_a_missed_target_to_fista():
    """Tasks of 8 rows on 30 features scaled up to 1e3, alpha 1e-6: the
    conjugate-gradient answer misses the gap target and FISTA finishes from
    it (the hand-over had raised a ValueError); the answer is certified."""
    rng = np.random.default_rng(1)
    T, d, n_t = 10, 30, 8
    cov = 0.99 ** np.abs(np.subtract.outer(np.arange(d), np.arange(d)))
    scale = np.logspace(0, 3, d)
    X = rng.standard_normal((T * n_t, d)) @ np.linalg.cholesky(cov).T * scale
    y = X @ rng.standard_normal(d) / scale.mean() + rng.standard_normal(T * n_t)
    model = MultiTaskRegressor(penalty="l2", alpha=1e-6, task_graph="mean",
                               graph_alpha=1.0, task_col=-1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model.fit(np.column_stack([X, np.repeat(np.arange(T), n_t)]), y)
    assert model.n_iter_ > 1
    tasks = [(X[t * n_t:(t + 1) * n_t], y[t * n_t:(t + 1) * n_t],
              np.ones(n_t)) for t in range(T)]
    value = objective(tasks, model.coef_.T, model.intercept_, loss="squared",
                      penalty="l2", alpha=1e-6, graph=(model.task_graph_, 1.0))
    _, _, best = solve_reference(tasks, loss="squared", penalty="l2",
                                 alpha=1e-6, graph=(model.task_graph_, 1.0))
    assert value - best <= model.dual_gap_ * (1 + 1e-6) + 1e-9 * abs(best)


def test_ridge_with_a_graph_of_many_tasks_stays_small():
    """One design, a thousand tasks: the closed form in the eigenbases of Q
    and K (memory d T), not d systems of T x T."""
    import tracemalloc
    rng = np.random.default_rng(7)
    n, d, T = 100, 20, 1000
    X = rng.standard_normal((n, d))
    Y = X @ rng.standard_normal((d, T)) + rng.standard_normal((n, T))
    model = MultiTaskRegressor(penalty="l2", alpha=1e-2, task_graph="mean",
                               graph_alpha=0.5)
    tracemalloc.start()
    model.fit(X, Y)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert model.n_iter_ == 1 and model.dual_gap_ <= 1e-10
    assert peak < 30 * 8 * T * T  # a few T x T matrices, not d of them
    # the normal equations X_c^T X_c W / n + W (alpha I + 2 gamma L) = ...
    Xc, Yc = X - X.mean(axis=0), Y - Y.mean(axis=0)
    residual = (Xc.T @ Xc @ model.coef_.T / n + 1e-2 * model.coef_.T
                + model.coef_.T @ (2 * 0.5 * (np.eye(T) - 1.0 / T))
                - Xc.T @ Yc / n)
    assert np.abs(residual).max() <= 1e-10 * np.abs(Xc.T @ Yc / n).max()
