"""Sparse task graphs: a graph given by its edges (``"chain"``, a dict, a
scipy sparse adjacency) keeps ``A``, ``L`` and ``K = 2 graph_alpha L``
sparse.  Every route that uses ``K`` is checked against the dense ``K`` of
the same graph (the estimators given the dense array) and against closed
forms (the normal equations of the ridge, ``Y (I + step K)^{-1}``)."""
import tracemalloc
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.linalg import solve_sylvester
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning

from mtlinear import (ClusteredMultiTaskRegressor, MultiTaskClassifier,
                      MultiTaskRegressor, MultiTaskRelationRegressor)
from mtlinear._coupling import TaskCoupling
from mtlinear._task_graph import graph_coupling, task_adjacency

TIGHT = dict(tol=1e-12, max_iter=200_000)


def _random_graph(T, seed, density=0.3):
    """A symmetric non-negative adjacency with some zero rows' pairs."""
    rng = np.random.default_rng(seed)
    A = rng.uniform(0.2, 2.0, (T, T)) * (rng.random((T, T)) < density)
    A = np.triu(A, 1)
    A = A + A.T
    A[0, 1] = A[1, 0] = 1.0  # at least one edge
    return A


def _stacked(T=6, d=4, seed=0, classes=None):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(8, 16, T)
    task = np.repeat(np.arange(T), sizes)
    X = rng.standard_normal((task.size, d))
    W = rng.standard_normal(d)[:, None] + 0.3 * rng.standard_normal((d, T))
    z = np.einsum("ij,ji->i", X, W[:, task])
    y = z + 0.3 * rng.standard_normal(task.size)
    if classes == 2:
        y = (z + rng.logistic(size=z.size) > 0).astype(int)
        y[np.searchsorted(task, np.arange(T))] = 1 - y[
            np.searchsorted(task, np.arange(T)) + 1]
    elif classes:
        y = np.arange(task.size) % classes  # every class in every task
        rng.shuffle(y)
    return np.column_stack([X, task]), y


def _shared(n=40, d=5, T=6, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    W = rng.standard_normal(d)[:, None] + 0.3 * rng.standard_normal((d, T))
    return X, X @ W + 0.5 * rng.standard_normal((n, T))


# ------------------------------------------------------------ the adjacency
def test_adjacency_forms_agree():
    T = 7
    A = _random_graph(T, seed=1)
    A[2, 2] = 5.0  # a self-loop: does not count
    expected = A.copy()
    np.fill_diagonal(expected, 0.0)
    pairs = {(s, t): A[s, t] for s in range(T) for t in range(s, T) if A[s, t]}
    forms = [sp.csr_matrix(A), sp.csr_array(A), sp.coo_array(A),
             sp.csc_matrix(A), pairs]
    dense = task_adjacency(A, np.arange(T))
    assert isinstance(dense, np.ndarray)
    np.testing.assert_array_equal(dense, expected)
    for form in forms:
        got = task_adjacency(form, np.arange(T))
        assert sp.issparse(got) and got.format == "csr"
        assert got.nnz == np.count_nonzero(expected)  # no explicit zeros
        np.testing.assert_array_equal(got.toarray(), expected)
    chain = task_adjacency("chain", np.arange(T))
    assert sp.issparse(chain)
    np.testing.assert_array_equal(chain.toarray(),
                                  np.eye(T, k=1) + np.eye(T, k=-1))
    for graph in [A, sp.csr_array(A), pairs, "chain"]:
        _, dense_coupling = graph_coupling(
            graph if not sp.issparse(graph) else graph.toarray(), 0.7,
            np.arange(T)) if not isinstance(graph, (dict, str)) else (
            None, None)
        _, coupling = graph_coupling(graph, 0.7, np.arange(T))
        adjacency = task_adjacency(graph, np.arange(T))
        adjacency = (adjacency.toarray() if sp.issparse(adjacency)
                     else adjacency)
        L = np.diag(adjacency.sum(axis=1)) - adjacency
        assert coupling.sparse == (not isinstance(graph, np.ndarray))
        np.testing.assert_allclose(coupling.dense(), 1.4 * L, rtol=0,
                                   atol=1e-15)
        if dense_coupling is not None:
            np.testing.assert_allclose(coupling.dense(), dense_coupling.K,
                                       rtol=0, atol=1e-15)


def test_a_sparse_graph_of_many_tasks_holds_its_edges_only():
    T = 100_000
    A, coupling = graph_coupling("chain", 0.5, np.arange(T))
    assert A.nnz == 2 * (T - 1) and coupling.K.nnz == 3 * T - 2
    assert coupling.lipschitz == pytest.approx(4.0)  # 2 ga (1 + 1)
    assert not coupling.invertible  # K 1 = 0, without an eigh of T x T


@pytest.mark.parametrize("graph, message", [
    (sp.csr_array(np.array([[0, 1, 0], [2, 0, 0], [0, 0, 0.]])), "symmetric"),
    (sp.csr_array(-np.ones((3, 3))), "non-negative"),
    (sp.csr_array(np.full((3, 3), np.nan)), "non-negative"),
    (sp.csr_array(np.ones((4, 4))), r"shape \(4, 4\)"),
    ({(0, 1): 1.0, (1, 0): 2.0}, "two different"),
])
def test_bad_sparse_graphs_are_clear_errors(graph, message):
    with pytest.raises(ValueError, match=message):
        task_adjacency(graph, np.arange(3))


# ------------------------------------------------------------ the coupling
def test_sparse_coupling_matches_the_dense_one_and_closed_forms():
    rng = np.random.default_rng(3)
    T, d = 9, 4
    A = _random_graph(T, seed=3)
    L = np.diag(A.sum(axis=1)) - A
    W, Y = rng.standard_normal((d, T)), rng.standard_normal((d, T))
    for K in (L, L + 0.1 * np.eye(T)):  # singular, then invertible
        dense, sparse = TaskCoupling(K), TaskCoupling(sp.csr_matrix(K))
        assert sparse.sparse and not dense.sparse
        np.testing.assert_allclose(sparse.gradient(W), W @ K, rtol=1e-14,
                                   atol=1e-14)
        assert sparse.value(W) == pytest.approx(0.5 * np.trace(W @ K @ W.T),
                                                rel=1e-13)
        assert sparse.lipschitz == pytest.approx(dense.lipschitz, rel=1e-14)
        assert sparse.invertible == dense.invertible
        for step in (0.3, 7.0, 0.3):  # a step seen again: its factorization
            expected = np.linalg.solve(np.eye(T) + step * K, Y.T).T
            np.testing.assert_allclose(sparse.prox(Y, step), expected,
                                       rtol=0, atol=1e-12)
            np.testing.assert_allclose(dense.prox(Y, step), expected,
                                       rtol=0, atol=1e-12)
        if dense.invertible:
            expected = 0.5 * np.trace(Y @ np.linalg.solve(K, Y.T))
            assert sparse.conjugate(Y) == pytest.approx(expected, rel=1e-12)
            assert dense.conjugate(Y) == pytest.approx(expected, rel=1e-12)
    assert not TaskCoupling(sp.csr_matrix(L)).invertible
    assert TaskCoupling(sp.csr_matrix(L + 0.1 * np.eye(T))).invertible


# ------------------------------------------------------------ the estimators
def _sparse_and_dense(model, X, y, A, sparse_form=sp.csr_array, **fit):
    dense = clone(model).set_params(task_graph=A).fit(X, y, **fit)
    sparse = clone(model).set_params(task_graph=sparse_form(A)).fit(X, y, **fit)
    assert sp.issparse(sparse.task_graph_)
    assert isinstance(dense.task_graph_, np.ndarray)
    np.testing.assert_array_equal(sparse.task_graph_.toarray(), dense.task_graph_)
    return sparse, dense


def _assert_same(sparse, dense, rtol=1e-10):
    scale = max(np.abs(dense.coef_).max(), 1.0)
    np.testing.assert_allclose(sparse.coef_, dense.coef_, rtol=0,
                               atol=rtol * scale)
    np.testing.assert_allclose(sparse.intercept_, dense.intercept_, rtol=0,
                               atol=rtol * scale)


@pytest.mark.parametrize("penalty, solver", [
    ("l21", "auto"), ("l1", "fista"), ("l1", "admm"), ("trace", "auto"),
    ("l2", "auto"),
])
def test_stacked_regressor_sparse_graph_matches_dense(penalty, solver):
    X, y = _stacked(seed=4)
    A = _random_graph(6, seed=4)
    model = MultiTaskRegressor(penalty=penalty, alpha=0.05, task_col=-1,
                               graph_alpha=0.8, solver=solver, **TIGHT)
    sparse, dense = _sparse_and_dense(model, X, y, A)
    # the same solver on the same iterates: equal to rounding
    _assert_same(sparse, dense, rtol=1e-9 if solver == "admm" else 1e-10)


@pytest.mark.parametrize("options", [
    {}, {"task_weights": [1.0, 2.0, 0.5, 1.0, 3.0, 1.0]},
    {"penalty_factor": [0.5, 1.0, 2.0, 1.0, 1.0]},
])
def test_shared_ridge_with_a_sparse_graph_solves_the_normal_equations(options):
    """One design: the sparse route (one sparse LU per eigenvalue of ``Q``,
    or the dense system with penalty factors) against the dense
    eigendecomposition of ``K`` and against the normal equations."""
    X, Y = _shared(seed=5)
    T, d, n = Y.shape[1], X.shape[1], X.shape[0]
    A = _random_graph(T, seed=5)
    alpha, gamma = 1e-2, 0.4
    model = MultiTaskRegressor(penalty="l2", alpha=alpha, graph_alpha=gamma,
                               fit_intercept=False, **options)
    sparse, dense = _sparse_and_dense(model, X, Y, A)
    assert sparse.n_iter_ == dense.n_iter_ == 1
    _assert_same(sparse, dense)
    omega = np.asarray(options.get("task_weights", np.ones(T)))
    f = np.asarray(options.get("penalty_factor", np.ones(d)))
    L = np.diag(A.sum(axis=1)) - A
    # X^T X / n W diag(omega) + alpha D W + 2 gamma W L = X^T Y / n diag(omega)
    # (per task: omega_t Q w_t + alpha D w_t + sum_s K_ts w_s = omega_t C_t)
    system = (np.kron(np.diag(omega), X.T @ X / n)
              + np.kron(np.eye(T), alpha * np.diag(f))
              + np.kron(2 * gamma * L, np.eye(d)))
    rhs = ((X.T @ Y / n) * omega).T.ravel()
    expected = np.linalg.solve(system, rhs).reshape(T, d)
    np.testing.assert_allclose(sparse.coef_, expected, rtol=0,
                               atol=1e-10 * np.abs(expected).max())
    if not options:  # and the Sylvester form of the same equations
        sylvester = solve_sylvester(X.T @ X / n, alpha * np.eye(T) + 2 * gamma * L,
                                    X.T @ Y / n)
        np.testing.assert_allclose(sparse.coef_.T, sylvester, rtol=0,
                                   atol=1e-10 * np.abs(sylvester).max())


def test_classifiers_with_a_sparse_graph_match_dense():
    X, y = _stacked(seed=6, classes=2)
    A = _random_graph(6, seed=6)
    model = MultiTaskClassifier(penalty="l1", alpha=0.02, task_col=-1,
                                graph_alpha=0.5, **TIGHT)
    _assert_same(*_sparse_and_dense(model, X, y, A), rtol=1e-8)
    # multinomial tasks: K kron I over the classes, sparse too
    X, y = _stacked(seed=7, classes=3)
    model = MultiTaskClassifier(penalty="l21", alpha=0.02, task_col=-1,
                                graph_alpha=0.5, **TIGHT)
    _assert_same(*_sparse_and_dense(model, X, y, A), rtol=1e-8)


def test_learned_relations_with_a_sparse_graph_match_dense():
    """The learned ``K`` is dense: a sparse graph's joins it densely, and the
    alternation follows the same iterates (a fixed number of them)."""
    X, y = _stacked(seed=8)
    A = _random_graph(6, seed=8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for model in [
                MultiTaskRelationRegressor(penalty="l21", alpha=0.02,
                                           relation_alpha=0.05, task_col=-1,
                                           relation_eps=1e-2, graph_alpha=0.3,
                                           tol=1e-12, outer_tol=0.0,
                                           max_outer=20),
                ClusteredMultiTaskRegressor(n_clusters=2, cluster_alpha=0.05,
                                            task_col=-1, graph_alpha=0.3,
                                            tol=1e-12),
                ClusteredMultiTaskRegressor(penalty="l1", alpha=0.01,
                                            n_clusters=2, cluster_alpha=0.05,
                                            task_col=-1, graph_alpha=0.3,
                                            tol=1e-12, outer_tol=0.0,
                                            max_outer=20)]:
            _assert_same(*_sparse_and_dense(model, X, y, A), rtol=1e-8)


def test_chain_and_dict_give_the_dense_graph_results():
    X, y = _stacked(seed=9)
    T = 6
    chain = np.eye(T, k=1) + np.eye(T, k=-1)
    model = MultiTaskRegressor(penalty="l21", alpha=0.05, task_col=-1,
                               **TIGHT)
    dense = clone(model).set_params(task_graph=chain).fit(X, y)
    for graph in ["chain", {(t, t + 1): 1.0 for t in range(T - 1)}]:
        sparse = clone(model).set_params(task_graph=graph).fit(X, y)
        assert sp.issparse(sparse.task_graph_)
        _assert_same(sparse, dense)


@pytest.mark.parametrize("penalty", ["l21", "l2"])
def test_a_chain_over_thousands_of_tasks_takes_no_task_by_task_matrix(penalty):
    """4,000 tasks of 10 rows: a dense ``K`` alone would take 128 MB."""
    rng = np.random.default_rng(10)
    T, rows, d = 4000, 10, 5
    task = np.repeat(np.arange(T), rows)
    X = rng.standard_normal((T * rows, d))
    W = np.cumsum(0.1 * rng.standard_normal((d, T)), axis=1)  # smooth in t
    y = np.einsum("ij,ji->i", X, W[:, task]) + rng.standard_normal(T * rows)
    model = MultiTaskRegressor(penalty=penalty, alpha=1e-2, task_col=-1,
                               task_graph="chain", graph_alpha=1.0)
    Xt = np.column_stack([X, task])
    tracemalloc.start()
    model.fit(Xt, y)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 8 * T * T / 4
    assert model.dual_gap_ >= 0 and model.n_iter_ >= 1
