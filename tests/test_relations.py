"""Learned task relations (mtlinear._relations): MTRL's task covariance and
clustered MTL, against cvxpy (independent convex formulations), their
certificates, the closed-form relation steps and the recovered structure."""
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import adjusted_rand_score
from sklearn.model_selection import GridSearchCV, KFold

from _cvxpy_reference import objective, sample_weights
from _reference import shared_tasks, stacked_tasks
from mtlinear import (ClusteredMultiTaskClassifier, ClusteredMultiTaskRegressor,
                      MultiTaskRelationClassifier, MultiTaskRelationRegressor)
from mtlinear._relations import (cluster_conjugate, cluster_step,
                                 nuclear_square_conjugate)

cp = pytest.importorskip("cvxpy")

TIGHT = dict(tol=1e-12, max_iter=100_000, outer_tol=1e-13, max_outer=2000)


# ------------------------------------------------------------ references
def _solve(problem):
    with warnings.catch_warnings():  # "inaccurate" at these tolerances
        warnings.simplefilter("ignore", UserWarning)
        problem.solve(solver=cp.CLARABEL, tol_gap_abs=1e-12, tol_gap_rel=1e-12,
                      tol_feas=1e-12, max_iter=500)
    assert problem.status in ("optimal", "optimal_inaccurate"), problem.status


def _data_fit(tasks, W, b, task_weights=None):
    """``sum_t omega_t / n_t sum_i s_i (y_i - x_i^T w_t - b_t)^2 / 2`` (cvxpy)."""
    omega = np.ones(len(tasks)) if task_weights is None else task_weights
    fit = 0
    for t, ((Xt, yt, _), vt) in enumerate(zip(tasks, sample_weights(tasks, omega))):
        fit = fit + 0.5 * cp.sum(cp.multiply(vt, cp.square(yt - Xt @ W[:, t] - b[t])))
    return fit


def _graph_term(W, graph):
    if graph is None:
        return 0
    A, strength = graph
    T = A.shape[0]
    return 0.5 * strength * sum(A[s, t] * cp.sum_squares(W[:, s] - W[:, t])
                                for s in range(T) for t in range(T) if A[s, t])


def mtrl_reference(tasks, *, alpha, beta, penalty="l2", l1_ratio=0.0,
                   task_weights=None, graph=None):
    """``min F + alpha R(W) + beta/2 t^2, t >= ||W||_*``: MTRL at eps = 0 with
    Omega minimized out (DCP, unlike ``normNuc(W)**2``)."""
    d, T = tasks[0][0].shape[1], len(tasks)
    W, b, t = cp.Variable((d, T)), cp.Variable(T), cp.Variable()
    lam, mu = (0.0, alpha) if penalty == "l2" else (alpha * l1_ratio,
                                                    alpha * (1 - l1_ratio))
    reg = 0.5 * mu * cp.sum_squares(W) + 0.5 * beta * cp.square(t)
    if lam:
        reg = reg + lam * cp.normNuc(W)
    _solve(cp.Problem(cp.Minimize(_data_fit(tasks, W, b, task_weights) + reg
                                  + _graph_term(W, graph)),
                      [cp.normNuc(W) <= t]))
    return W.value, b.value


def mtrl_objective(tasks, W, b, *, alpha, beta, penalty="l2", l1_ratio=0.0,
                   task_weights=None, graph=None, eps=0.0):
    """The joint objective with Omega minimized out, in numpy: ``F + alpha R
    + beta/2 (sum_i (sigma_i^2 + eps)^{1/2})^2``."""
    sigma = np.linalg.svd(W, compute_uv=False)
    roots = np.sqrt(np.concatenate([sigma, np.zeros(W.shape[1] - sigma.size)])
                    ** 2 + eps).sum()
    return objective(tasks, W, b, loss="squared", penalty=penalty, alpha=alpha,
                     l1_ratio=l1_ratio, task_weights=task_weights,
                     graph=graph) + 0.5 * beta * roots ** 2


def cmtl_reference(tasks, *, c, eta, k, alpha=0.0, task_weights=None,
                   graph=None, trace=0.0):
    """The clustered objective jointly in ``(W, b, M)``: ``matrix_frac(W^T, eta
    I + M) = tr(W (eta I + M)^{-1} W^T)`` is jointly convex (DCP); ``trace``
    the weight of a trace norm, ``alpha`` that of the ridge."""
    d, T = tasks[0][0].shape[1], len(tasks)
    W, b = cp.Variable((d, T)), cp.Variable(T)
    M = cp.Variable((T, T), symmetric=True)
    value = (_data_fit(tasks, W, b, task_weights)
             + c * cp.matrix_frac(W.T, eta * np.eye(T) + M)
             + 0.5 * alpha * cp.sum_squares(W) + _graph_term(W, graph))
    if trace:
        value = value + trace * cp.normNuc(W)
    _solve(cp.Problem(cp.Minimize(value), [M >> 0, np.eye(T) - M >> 0,
                                           cp.trace(M) == k]))
    return W.value, b.value, M.value


def cluster_term(W, eta, k):
    """``min_M tr(W (eta I + M)^{-1} W^T)`` over the constraint set, by cvxpy."""
    T = W.shape[1]
    M = cp.Variable((T, T), symmetric=True)
    problem = cp.Problem(cp.Minimize(cp.matrix_frac(W.T, eta * np.eye(T) + M)),
                         [M >> 0, np.eye(T) - M >> 0, cp.trace(M) == k])
    _solve(problem)
    return problem.value, M.value


def cmtl_objective(tasks, W, b, *, c, eta, k, alpha=0.0, task_weights=None,
                   graph=None):
    """The joint objective with ``M`` minimized out (:func:`cluster_step`'s
    ``M``, itself checked against cvxpy below), in numpy."""
    M = cluster_step(W, eta, k)[0]
    T = W.shape[1]
    term = np.trace(W @ np.linalg.solve(eta * np.eye(T) + M, W.T))
    return objective(tasks, W, b, loss="squared", penalty="l2", alpha=alpha,
                     task_weights=task_weights, graph=graph) + c * term


def _non_increasing(path):
    path = np.asarray(path)
    assert path.ndim == 1 and path.size >= 1
    assert np.all(np.diff(path) <= 1e-12 * np.abs(path[1:])), np.diff(path)


def _psd_trace(A, trace):
    np.testing.assert_allclose(A, A.T, atol=1e-14)
    assert np.linalg.eigvalsh(A)[0] >= -1e-12
    assert abs(np.trace(A) - trace) <= 1e-10 * trace


# ------------------------------------------------------------ data
def _shared(n=40, d=6, T=4, seed=3):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    W = rng.standard_normal((d, T))
    Y = X @ W + 0.5 * rng.standard_normal((n, T)) + 1.0
    return X, Y, rng.uniform(0.5, 2.0, n)


def _stacked(T=3, d=5, seed=4, classification=False):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(15, 30, T)
    labels = np.repeat([f"t{k}" for k in range(T)], sizes)
    rng.shuffle(labels)
    X = rng.standard_normal((len(labels), d))
    W = rng.standard_normal((d, T))
    task = np.searchsorted(np.unique(labels), labels)
    y = np.einsum("ij,ij->i", X, W.T[task]) + 0.3 * rng.standard_normal(len(X))
    if classification:
        y = (y > 0).astype(int)
    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(d)])
    frame["task"] = labels
    return frame, y, labels


def _clustered(n=100, d=8, sizes=(3, 3, 3), seed=7, noise=0.1):
    """Tasks in planted clusters: a cluster's tasks share its centre's weights
    up to ``noise``."""
    rng = np.random.default_rng(seed)
    truth = np.repeat(np.arange(len(sizes)), sizes)
    centers = 2.0 * rng.standard_normal((d, len(sizes)))
    W = centers[:, truth] + noise * rng.standard_normal((d, truth.size))
    X = rng.standard_normal((n, d))
    perm = rng.permutation(truth.size)  # clusters not in column order
    return X, X @ W[:, perm] + 0.3 * rng.standard_normal((n, truth.size)), truth[perm]


# ------------------------------------------------------------ conjugates
def _trace_gradient(W, lam, mu, beta):
    """``h(W)`` and its gradient for ``h = lam ||W||_* + mu/2 ||W||^2 +
    beta/2 ||W||_*^2`` at a ``W`` of full column rank."""
    U, sigma, Vt = np.linalg.svd(W, full_matrices=False)
    nuclear = sigma.sum()
    value = lam * nuclear + 0.5 * mu * np.sum(W * W) + 0.5 * beta * nuclear ** 2
    return value, (lam + beta * nuclear) * U @ Vt + mu * W


def _cluster_gradient(W, eta, k, c, mu):
    """``h(W) = mu/2 ||W||^2 + c min_M tr(W (eta I + M)^{-1} W^T)`` and its
    gradient ``mu W + 2c W (eta I + M(W))^{-1}`` (Danskin: ``M(W)`` unique)."""
    M = cluster_step(W, eta, k)[0]
    inverse = np.linalg.inv(eta * np.eye(W.shape[1]) + M)
    value = 0.5 * mu * np.sum(W * W) + c * np.trace(W @ inverse @ W.T)
    return value, mu * W + 2 * c * W @ inverse


@pytest.mark.parametrize("lam, mu", [(0.0, 0.3), (0.2, 0.3), (0.2, 0.0),
                                     (0.0, 0.0)])
def test_spectral_conjugate_fenchel_young(lam, mu):
    """``h*(G) = <G, W> - h(W)`` at ``G`` the gradient of ``h`` at ``W``
    (Fenchel-Young's equality), and ``h*(G) >= <G, V> - h(V)`` elsewhere:
    a conjugate off by any factor fails one of the two."""
    rng = np.random.default_rng(int(10 * lam + 100 * mu))
    beta = 0.7
    W = rng.standard_normal((6, 4))
    value, G = _trace_gradient(W, lam, mu, beta)
    conj = nuclear_square_conjugate(np.linalg.svd(G, compute_uv=False), lam,
                                    mu, beta)
    assert abs(conj - (np.vdot(G, W) - value)) <= 1e-10 * abs(conj)
    for _ in range(20):
        V = W + rng.standard_normal(W.shape)
        assert conj >= np.vdot(G, V) - _trace_gradient(V, lam, mu, beta)[0] - 1e-12


@pytest.mark.parametrize("mu, k", [(0.0, 1), (0.0, 2), (0.3, 2), (0.3, 3)])
def test_cluster_conjugate_fenchel_young(mu, k):
    rng = np.random.default_rng(k + int(10 * mu))
    eta, c = 0.4, 0.6
    W = rng.standard_normal((7, 5))
    value, G = _cluster_gradient(W, eta, k, c, mu)
    conj = cluster_conjugate(G, eta, k, c, mu)
    assert abs(conj - (np.vdot(G, W) - value)) <= 1e-10 * abs(conj)
    for _ in range(20):
        V = W + rng.standard_normal(W.shape)
        assert conj >= np.vdot(G, V) - _cluster_gradient(V, eta, k, c, mu)[0] - 1e-12


# ------------------------------------------------------------ MTRL
def test_mtrl_shared_matches_cvxpy():
    X, Y, s = _shared()
    omega = np.array([1.0, 2.0, 0.5, 1.0])
    alpha, beta = 0.05, 0.03
    model = MultiTaskRelationRegressor(alpha=alpha, relation_alpha=beta,
                                       relation_eps=1e-14, task_weights=omega,
                                       **TIGHT).fit(X, Y, sample_weight=s)
    tasks = shared_tasks(X, Y, s)
    W_ref, b_ref = mtrl_reference(tasks, alpha=alpha, beta=beta,
                                  task_weights=omega)
    scale = np.abs(W_ref).max()
    np.testing.assert_allclose(model.coef_.T, W_ref, atol=1e-5 * scale)
    np.testing.assert_allclose(model.intercept_, b_ref, atol=1e-5 * scale)
    kw = dict(alpha=alpha, beta=beta, task_weights=omega)
    best = mtrl_objective(tasks, W_ref, b_ref, **kw)
    value = mtrl_objective(tasks, model.coef_.T, model.intercept_, **kw)
    # the path ends at the objective (eps = 1e-14: no visible difference)
    assert abs(model.objective_path_[-1] - value) <= 1e-10 * value
    _non_increasing(model.objective_path_)
    # a spectral penalty: the covariance minimized out, one convex solve
    assert model.n_outer_ == model.objective_path_.size == 1
    # the certificate bounds the suboptimality, and is small at the optimum
    assert value - best <= model.outer_gap_ + 1e-12 * value
    assert 0 <= model.outer_gap_ <= 1e-9 * value
    assert 0 <= model.dual_gap_ <= 1e-9 * value
    _psd_trace(model.task_covariance_, 1.0)
    assert np.allclose(np.diag(model.task_correlation_), 1.0)


def test_mtrl_stacked_matches_cvxpy():
    frame, y, labels = _stacked()
    alpha, beta = 0.02, 0.02
    model = MultiTaskRelationRegressor(alpha=alpha, relation_alpha=beta,
                                       relation_eps=1e-14, task_col="task",
                                       **TIGHT).fit(frame, y)
    assert model.tasks_.tolist() == ["t0", "t1", "t2"]
    tasks = stacked_tasks(frame.drop(columns="task").to_numpy(), y, labels)
    W_ref, b_ref = mtrl_reference(tasks, alpha=alpha, beta=beta)
    scale = np.abs(W_ref).max()
    np.testing.assert_allclose(model.coef_.T, W_ref, atol=1e-5 * scale)
    np.testing.assert_allclose(model.intercept_, b_ref, atol=1e-5 * scale)
    value = mtrl_objective(tasks, model.coef_.T, model.intercept_, alpha=alpha,
                           beta=beta)
    best = mtrl_objective(tasks, W_ref, b_ref, alpha=alpha, beta=beta)
    assert value - best <= model.outer_gap_ + 1e-12 * value
    assert model.outer_gap_ <= 1e-9 * value
    _non_increasing(model.objective_path_)
    _psd_trace(model.task_covariance_, 1.0)


@pytest.mark.parametrize("case", ["l2", "trace", "graph"])
def test_mtrl_certificate_bounds_the_suboptimality(case):
    """Stopped early, the model is clearly suboptimal: ``outer_gap_`` must
    still bound ``P(W) - P*`` (a too small conjugate would not), for the
    spectral penalties and with a task graph."""
    X, Y, _ = _shared(seed=11)
    tasks = shared_tasks(X, Y)
    kw = dict(alpha=0.05, beta=0.03)
    params = dict(alpha=0.05, relation_alpha=0.03)
    if case == "trace":
        kw.update(penalty="trace", l1_ratio=0.5)
        params.update(penalty="trace", l1_ratio=0.5)
    if case == "graph":
        A = np.eye(4, k=1) + np.eye(4, k=-1)  # "chain"
        kw.update(graph=(A, 0.2))
        params.update(task_graph="chain", graph_alpha=0.2)
    W_ref, b_ref = mtrl_reference(tasks, **kw)
    best = mtrl_objective(tasks, W_ref, b_ref, **kw)
    model = MultiTaskRelationRegressor(relation_eps=1e-14, **params, **TIGHT)
    loose = clone(model).set_params(max_iter=3)
    with pytest.warns(ConvergenceWarning, match="max_iter"):
        loose.fit(X, Y)
    for fitted in (loose, model.fit(X, Y)):
        value = mtrl_objective(tasks, fitted.coef_.T, fitted.intercept_, **kw)
        assert abs(fitted.objective_path_[-1] - value) <= 1e-10 * value
        assert value - best <= fitted.outer_gap_ * (1 + 1e-9) + 1e-12 * value
    assert loose.outer_gap_ >= 1e-6 * value  # the early stop shows in it


def test_mtrl_other_penalties_report_no_outer_gap():
    X, Y, _ = _shared(seed=5)
    model = MultiTaskRelationRegressor(penalty="l21", alpha=0.01,
                                       relation_alpha=0.03).fit(X, Y)
    assert np.isnan(model.outer_gap_)
    assert np.isfinite(model.dual_gap_)
    _non_increasing(model.objective_path_)
    # alpha = 0: no penalty besides the relation term, certified whatever
    # the penalty's name
    model.set_params(alpha=0.0).fit(X, Y)
    assert np.isfinite(model.outer_gap_)


def test_mtrl_correlation_recovers_sign_structure():
    """Two groups of tasks: same weights inside a group, negated weights in
    the other; the learned correlation has the sign pattern of the groups."""
    rng = np.random.default_rng(8)
    n, d = 80, 6
    group = np.array([0, 1, 0, 0, 1, 1])
    w = rng.standard_normal(d)
    W = np.where(group == 0, 1.0, -1.0) * w[:, None]
    W += 0.05 * rng.standard_normal(W.shape)
    X = rng.standard_normal((n, d))
    Y = X @ W + 0.3 * rng.standard_normal((n, group.size))
    model = MultiTaskRelationRegressor(alpha=0.01,
                                       relation_alpha=0.05).fit(X, Y)
    expected = np.where(group[:, None] == group[None, :], 1.0, -1.0)
    np.testing.assert_array_equal(np.sign(model.task_correlation_), expected)
    assert np.all(np.abs(model.task_correlation_) > 0.9)
    _non_increasing(model.objective_path_)
    _psd_trace(model.task_covariance_, 1.0)


# ------------------------------------------------------------ CMTL
@pytest.mark.parametrize("rank, k", [(6, 2), (6, 3), (1, 2)])
def test_cluster_step_matches_cvxpy(rank, k):
    """The closed-form M-step is the minimizer of ``tr(W (eta I + M)^{-1}
    W^T)`` over ``tr M = k, 0 <= M <= I``; also when ``W`` has fewer nonzero
    singular values than ``k`` (the minimizer is then not unique)."""
    rng = np.random.default_rng(rank + k)
    d, T, eta = 7, 6, 0.4
    W = rng.standard_normal((d, rank)) @ rng.standard_normal((rank, T))
    M, m, _ = cluster_step(W, eta, k)
    value = np.trace(W @ np.linalg.solve(eta * np.eye(T) + M, W.T))
    best, M_ref = cluster_term(W, eta, k)
    assert abs(value - best) <= 1e-7 * best
    _psd_trace(M, k)
    assert np.all((m >= 0) & (m <= 1))
    assert np.linalg.eigvalsh(np.eye(T) - M)[0] >= -1e-12
    if rank >= T:  # unique: the same matrix
        np.testing.assert_allclose(M, M_ref, atol=1e-5)


@pytest.mark.parametrize("alpha", [0.0, 0.05])
def test_cmtl_shared_matches_cvxpy_jointly(alpha):
    X, Y, truth = _clustered(n=50, d=5, sizes=(3, 3), seed=5, noise=0.3)
    s = np.random.default_rng(1).uniform(0.5, 2.0, len(X))
    c, eta, k = 0.3, 0.5, 2
    model = ClusteredMultiTaskRegressor(alpha=alpha, cluster_alpha=c, eta=eta,
                                        n_clusters=k, **TIGHT)
    model.fit(X, Y, sample_weight=s)
    tasks = shared_tasks(X, Y, s)
    W_ref, b_ref, M_ref = cmtl_reference(tasks, c=c, eta=eta, k=k, alpha=alpha)
    scale = np.abs(W_ref).max()
    np.testing.assert_allclose(model.coef_.T, W_ref, atol=1e-5 * scale)
    np.testing.assert_allclose(model.intercept_, b_ref, atol=1e-5 * scale)
    np.testing.assert_allclose(model.cluster_matrix_, M_ref, atol=1e-4)
    kw = dict(c=c, eta=eta, k=k, alpha=alpha)
    value = cmtl_objective(tasks, model.coef_.T, model.intercept_, **kw)
    best = cmtl_objective(tasks, W_ref, b_ref, **kw)
    assert abs(model.objective_path_[-1] - value) <= 1e-10 * value
    assert value - best <= model.outer_gap_ + 1e-12 * value
    assert 0 <= model.outer_gap_ <= 1e-9 * value
    _non_increasing(model.objective_path_)
    _psd_trace(model.cluster_matrix_, k)
    assert np.linalg.eigvalsh(np.eye(6) - model.cluster_matrix_)[0] >= -1e-12
    assert adjusted_rand_score(truth, model.task_clusters_) == 1.0


def test_cmtl_stacked_with_graph_matches_cvxpy():
    """Stacked layout, task weights and a fixed task graph added to the
    learned coupling."""
    frame, y, labels = _stacked(T=4, seed=9)
    omega = np.array([1.0, 0.5, 2.0, 1.0])
    c, eta, k = 0.2, 0.3, 2
    model = ClusteredMultiTaskRegressor(
        alpha=0.01, cluster_alpha=c, eta=eta, n_clusters=k, task_col="task",
        task_weights=omega, task_graph="chain", graph_alpha=0.1, **TIGHT)
    model.fit(frame, y)
    tasks = stacked_tasks(frame.drop(columns="task").to_numpy(), y, labels)
    graph = (model.task_graph_, 0.1)
    W_ref, b_ref, _ = cmtl_reference(tasks, c=c, eta=eta, k=k, alpha=0.01,
                                     task_weights=omega, graph=graph)
    scale = np.abs(W_ref).max()
    np.testing.assert_allclose(model.coef_.T, W_ref, atol=1e-5 * scale)
    kw = dict(c=c, eta=eta, k=k, alpha=0.01, task_weights=omega, graph=graph)
    value = cmtl_objective(tasks, model.coef_.T, model.intercept_, **kw)
    best = cmtl_objective(tasks, W_ref, b_ref, **kw)
    assert value - best <= model.outer_gap_ + 1e-12 * value
    assert model.outer_gap_ <= 1e-9 * value
    _non_increasing(model.objective_path_)


def test_cmtl_certificate_bounds_an_early_stop():
    X, Y, _ = _clustered(n=50, d=5, sizes=(3, 3), seed=6, noise=0.3)
    tasks = shared_tasks(X, Y)
    kw = dict(c=0.3, eta=0.5, k=2, alpha=0.02)
    W_ref, b_ref, _ = cmtl_reference(tasks, **kw)
    best = cmtl_objective(tasks, W_ref, b_ref, **kw)
    model = ClusteredMultiTaskRegressor(alpha=0.02, cluster_alpha=0.3, eta=0.5,
                                        solver="fista", max_iter=3)
    with pytest.warns(ConvergenceWarning, match="max_iter=3"):
        model.fit(X, Y)
    value = cmtl_objective(tasks, model.coef_.T, model.intercept_, **kw)
    assert value - best > 1e-6 * value  # clearly suboptimal
    assert value - best <= model.outer_gap_ * (1 + 1e-9)


@pytest.mark.parametrize("eta", [0.1, 0.02])
def test_cmtl_defaults_reach_the_joint_target(eta):
    """At the default tol the joint objective is within ``tol`` times the
    null objective of cvxpy's optimum (or the fit warns).  A W-step already
    certified for the new cluster matrix used to leave ``W`` unchanged, and
    the alternation stopped, silently, 5 and 13 times that far from the
    optimum here."""
    X, Y, _ = _clustered(n=30, d=6, sizes=(4, 4, 4), seed=2, noise=1.0)
    X = X * np.logspace(0, 1, X.shape[1])  # features of different scales
    tasks = shared_tasks(X, Y)
    kw = dict(c=1.0, eta=eta, k=3)
    model = ClusteredMultiTaskRegressor(eta=eta, n_clusters=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model.fit(X, Y)
    W_ref, b_ref, _ = cmtl_reference(tasks, **kw)
    value = cmtl_objective(tasks, model.coef_.T, model.intercept_, **kw)
    best = cmtl_objective(tasks, W_ref, b_ref, **kw)
    null = 0.5 * np.sum(np.var(Y, axis=0))  # W = 0, the best intercepts
    assert value - best <= model.outer_gap_ * (1 + 1e-9) + 1e-12 * value
    assert model.outer_gap_ <= model.tol * null


@pytest.mark.parametrize("d, T", [(6, 4), (3, 5)])
@pytest.mark.parametrize("lam, mu", [(0.0, 0.2), (0.3, 0.2), (0.3, 0.0),
                                     (0.0, 0.0)])
def test_cluster_penalty_prox_matches_cvxpy(d, T, lam, mu):
    """The prox of the regularizer with ``M`` minimized out, against cvxpy
    jointly in ``(X, M)``; fewer features than tasks too (the zero singular
    values take their share of ``tr M``)."""
    from mtlinear._relations import ClusterPenalty
    rng = np.random.default_rng(d + 10 * T)
    A = rng.standard_normal((d, T)) * np.logspace(0, 1, T)
    c, eta, k, step = 0.7, 0.05, 2, 0.8
    penalty = ClusterPenalty(lam, mu, c, eta, k)
    P = penalty.prox(A, step)
    Z = cp.Variable((d, T))
    M = cp.Variable((T, T), symmetric=True)
    value = (cp.sum_squares(Z - A) / (2 * step) + lam * cp.normNuc(Z)
             + 0.5 * mu * cp.sum_squares(Z)
             + c * cp.matrix_frac(Z.T, eta * np.eye(T) + M))
    _solve(cp.Problem(cp.Minimize(value), [M >> 0, np.eye(T) - M >> 0,
                                           cp.trace(M) == k]))
    np.testing.assert_allclose(P, Z.value, atol=2e-5 * np.abs(A).max())
    # and it is the minimizer: no lower value at cvxpy's point
    ours = np.sum((P - A) ** 2) / (2 * step) + penalty.value(P)
    theirs = np.sum((Z.value - A) ** 2) / (2 * step) + penalty.value(Z.value)
    assert ours <= theirs + 1e-9 * abs(theirs)


@pytest.mark.parametrize("lam, mu", [(0.2, 0.3), (0.2, 0.0)])
def test_cluster_conjugate_with_a_trace_norm_fenchel_young(lam, mu):
    """``h = lam ||.||_* + mu/2 ||.||^2 + c min_M tr(...)``: Fenchel-Young's
    equality at a subgradient ``G = lam A B^T + grad`` of ``W`` (full rank)
    and the inequality elsewhere."""
    rng = np.random.default_rng(int(10 * lam + 100 * mu))
    eta, c, k = 0.4, 0.6, 2
    W = rng.standard_normal((7, 5))
    value, G = _cluster_gradient(W, eta, k, c, mu)
    A, sigma, Bt = np.linalg.svd(W, full_matrices=False)
    value, G = value + lam * sigma.sum(), G + lam * A @ Bt

    def h(V):
        return (_cluster_gradient(V, eta, k, c, mu)[0]
                + lam * np.linalg.svd(V, compute_uv=False).sum())

    conj = cluster_conjugate(G, eta, k, c, mu, lam)
    assert abs(conj - (np.vdot(G, W) - value)) <= 1e-10 * abs(conj)
    for _ in range(20):
        V = W + rng.standard_normal(W.shape)
        assert conj >= np.vdot(G, V) - h(V) - 1e-12


def test_cmtl_with_a_trace_norm_matches_cvxpy():
    X, Y, _ = _clustered(n=50, d=5, sizes=(3, 3), seed=5, noise=0.3)
    c, eta, k, alpha = 0.3, 0.05, 2, 0.02
    model = ClusteredMultiTaskRegressor(
        penalty="trace", alpha=alpha, l1_ratio=0.5, cluster_alpha=c, eta=eta,
        n_clusters=k, **TIGHT).fit(X, Y)
    tasks = shared_tasks(X, Y)
    W_ref, b_ref, _ = cmtl_reference(tasks, c=c, eta=eta, k=k,
                                     alpha=alpha / 2, trace=alpha / 2)
    scale = np.abs(W_ref).max()
    np.testing.assert_allclose(model.coef_.T, W_ref, atol=1e-5 * scale)
    assert model.n_outer_ == 1 and 0 <= model.outer_gap_ <= 1e-9 * np.sum(
        np.var(Y, axis=0))


@pytest.mark.parametrize("eta", [0.01, 1e-3])
def test_cmtl_small_eta_converges_at_defaults_on_school(eta):
    """MALSAR's usual regime (``eta = rho2 / rho1`` small): alternating the
    W-step and the M-step ran 100 outer iterations unconverged (7-12 s)."""
    from sklearn.preprocessing import StandardScaler

    from mtlinear import load_school
    path = Path(__file__).resolve().parents[2] / "shared" / "data" / "school.mat"
    if not path.exists():
        pytest.skip("School data not available")
    X, y = load_school(path)
    X = np.asarray(X, dtype=float)
    X[:, :-1] = StandardScaler().fit_transform(X[:, :-1])
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = ClusteredMultiTaskRegressor(n_clusters=3, eta=eta,
                                            task_col=-1).fit(X, y)
    assert model.n_outer_ == 1
    assert model.outer_gap_ <= model.tol * 0.5 * np.var(y) * 139


def test_cmtl_recovers_three_planted_clusters():
    X, Y, truth = _clustered(sizes=(3, 3, 3))
    model = ClusteredMultiTaskRegressor(n_clusters=3, cluster_alpha=0.05,
                                        eta=0.5).fit(X, Y)
    assert adjusted_rand_score(truth, model.task_clusters_) == 1.0
    assert model.task_clusters_[0] == 0  # numbered by first task
    _psd_trace(model.cluster_matrix_, 3)
    _non_increasing(model.objective_path_)
    assert np.isfinite(model.outer_gap_)


def test_cmtl_non_ridge_penalty_reports_no_outer_gap():
    X, Y, _ = _clustered(n=50, d=5, sizes=(2, 2), seed=2)
    model = ClusteredMultiTaskRegressor(penalty="l1", alpha=0.01).fit(X, Y)
    assert np.isnan(model.outer_gap_)
    assert np.isfinite(model.dual_gap_)
    _non_increasing(model.objective_path_)


# ------------------------------------------------------------ both
def test_grid_search_over_relation_strengths():
    X, Y, _ = _clustered(n=60, d=5, sizes=(2, 2), seed=3)
    folds = KFold(3, shuffle=True, random_state=0)
    for model, grid in [
            (MultiTaskRelationRegressor(alpha=0.01),
             {"relation_alpha": [0.01, 0.1]}),
            (ClusteredMultiTaskRegressor(n_clusters=2),
             {"cluster_alpha": [0.01, 0.1], "eta": [0.5, 1.0]})]:
        search = GridSearchCV(model, grid, cv=folds).fit(X, Y)
        assert set(search.best_params_) == set(grid)
        assert search.best_estimator_.coef_.shape == (4, 5)
        assert search.best_score_ > 0.5


def test_parameters_are_seen_and_checked():
    X, Y, _ = _clustered(n=40, d=4, sizes=(2, 1), seed=4)
    for cls, new in [(MultiTaskRelationRegressor,
                      ["relation_alpha", "relation_eps", "max_outer",
                       "outer_tol"]),
                     (ClusteredMultiTaskClassifier,
                      ["n_clusters", "cluster_alpha", "eta", "max_outer",
                       "outer_tol", "class_weight"])]:
        params = cls().get_params()
        assert set(new) <= set(params)
        assert {"task_graph", "task_weights", "alpha", "penalty"} <= set(params)
    model = ClusteredMultiTaskRegressor(n_clusters=2).fit(X, Y)
    coef = model.coef_.copy()
    with pytest.raises(ValueError, match="n_clusters=4 exceeds the number of "
                                         "tasks T=3"):
        model.set_params(n_clusters=4).fit(X, Y)
    np.testing.assert_array_equal(model.coef_, coef)  # left as it was
    assert model.cluster_matrix_.shape == (3, 3)
    for bad in (0.0, -1.0):
        with pytest.raises(ValueError, match="'eta' parameter"):
            ClusteredMultiTaskRegressor(eta=bad).fit(X, Y)
    with pytest.raises(ValueError, match="'n_clusters' parameter"):
        ClusteredMultiTaskRegressor(n_clusters=0).fit(X, Y)
    with pytest.raises(ValueError, match="'relation_alpha' parameter"):
        MultiTaskRelationRegressor(relation_alpha=0.0).fit(X, Y)
    with pytest.raises(ValueError, match="unpenalized features"):
        MultiTaskRelationRegressor(penalty_factor=[0, 1, 1, 1]).fit(X, Y)
    assert not hasattr(MultiTaskRelationRegressor(), "partial_fit")
    assert not hasattr(ClusteredMultiTaskRegressor(), "partial_fit")


@pytest.mark.parametrize("cls,strength", [
    (MultiTaskRelationClassifier, "relation_alpha"),
    (ClusteredMultiTaskClassifier, "cluster_alpha")])
def test_classifier_default_strength_is_one_over_n(cls, strength):
    """``None`` is ``1 / n`` (n the mean task size, stacked tasks of 60 and
    140 rows), as the classifiers' ``alpha``; the former default 1.0 fitted
    models close to constant (on newsgroup: every task's majority class)."""
    rng = np.random.default_rng(3)
    sizes = (60, 140)
    X = rng.standard_normal((sum(sizes), 4))
    task = np.repeat([0, 1], sizes)
    y = (X @ np.array([2.0, -1.0, 1.0, 0.5]) + 0.5 * rng.standard_normal(
        len(task)) > 0).astype(int)
    Xs = np.column_stack([X, task])
    default = cls(task_col=-1).fit(Xs, y)
    explicit = cls(task_col=-1, **{strength: 1.0 / np.mean(sizes)}).fit(Xs, y)
    np.testing.assert_array_equal(default.coef_, explicit.coef_)
    assert default.score(Xs, y) > 0.85
    strong = cls(task_col=-1, **{strength: 1.0}).fit(Xs, y)
    assert np.abs(strong.coef_).max() < 0.2 * np.abs(default.coef_).max()


def test_classifiers_learn_the_relations():
    rng = np.random.default_rng(12)
    n, d = 300, 5
    w = rng.standard_normal(d)
    X = rng.standard_normal((n, d))
    W = np.column_stack([w, w, -w, 2 * w])
    Y = (X @ W + 0.3 * rng.standard_normal((n, 4)) > 0).astype(int)
    train, test = slice(0, 200), slice(200, None)
    clf = MultiTaskRelationClassifier(relation_alpha=0.01)
    clf.fit(X[train], Y[train])
    assert clf.score(X[test], Y[test]) > 0.85
    assert np.all(np.sign(clf.task_correlation_[0]) == [1, 1, -1, 1])
    assert np.isfinite(clf.outer_gap_) and clf.outer_gap_ >= 0
    _non_increasing(clf.objective_path_)
    cmtl = ClusteredMultiTaskClassifier(n_clusters=2, cluster_alpha=0.01)
    cmtl.fit(X[train], Y[train])
    assert cmtl.score(X[test], Y[test]) > 0.85
    assert cmtl.task_clusters_[0] == cmtl.task_clusters_[1] == cmtl.task_clusters_[3]
    assert cmtl.task_clusters_[2] != cmtl.task_clusters_[0]
    _non_increasing(cmtl.objective_path_)
    # stacked layout, string labels
    frame, y, _ = _stacked(T=3, seed=13, classification=True)
    for model in (MultiTaskRelationClassifier(relation_alpha=0.01,
                                              task_col="task"),
                  ClusteredMultiTaskClassifier(n_clusters=2, cluster_alpha=0.01,
                                               task_col="task")):
        model.fit(frame, y)
        assert model.score(frame, y) > 0.8
        assert model.coef_.shape == (3, 5)


def test_warm_start_continues_the_alternation():
    """A refit with ``warm_start`` starts from the previous ``coef_`` and its
    relation step: it stops at once, at the same model."""
    shared, clustered = _shared(seed=11)[:2], _clustered(n=60, d=5,
                                                         sizes=(2, 2))[:2]
    for model, (X, Y) in [
            (MultiTaskRelationRegressor(penalty="l21", alpha=0.05,
                                        relation_alpha=0.03, tol=1e-8,
                                        outer_tol=1e-10), shared),
            (ClusteredMultiTaskRegressor(penalty="l21", alpha=0.01, tol=1e-8,
                                         outer_tol=1e-10), clustered)]:
        cold = clone(model).fit(X, Y)
        warm = clone(model).set_params(warm_start=True).fit(X, Y).fit(X, Y)
        assert warm.n_outer_ <= 2 < cold.n_outer_
        np.testing.assert_allclose(warm.coef_, cold.coef_, atol=1e-5)


@pytest.mark.parametrize("d, T", [(4, 12), (8, 5), (3, 30), (5, 5)])
def test_thin_svd_relation_steps_match_the_full_basis(d, T):
    """The relation steps from the thin SVD (identity plus low rank) against
    the formulas in the full basis of ``W^T W`` (its ``eigh``, ``inv``)."""
    from mtlinear._coupling import TaskCoupling
    from mtlinear._relations import (_cluster_parts, covariance_step,
                                     capped_fill, cluster_labels,
                                     identity_plus_low_rank)
    rng = np.random.default_rng(d * T)
    W = rng.standard_normal((d, T))
    W[:, 1] = W[:, 0]  # rank below min(d, T) when d >= T
    s2, V = np.linalg.eigh(W.T @ W)
    s2 = np.maximum(s2, 0.0)
    eps = 1e-3
    roots = np.sqrt(s2 + eps)
    Omega, inverse, s, parts = covariance_step(W, eps)
    assert s == pytest.approx(roots.sum(), rel=1e-13)
    np.testing.assert_allclose(Omega, (V * roots) @ V.T / roots.sum(),
                               rtol=0, atol=1e-13)
    np.testing.assert_allclose(inverse, np.linalg.inv(Omega), rtol=1e-9)
    np.testing.assert_allclose(identity_plus_low_rank(*parts), inverse,
                               rtol=0, atol=1e-12 * np.abs(inverse).max())
    for k in (2, 3):
        M, m, sigma, (base, Vr, e) = _cluster_parts(W, 1.0, k)
        m_full = capped_fill(np.sqrt(s2), 1.0, k)
        np.testing.assert_allclose(M, (V * m_full) @ V.T, rtol=0, atol=1e-12)
        assert np.trace(M) == pytest.approx(k, rel=1e-12)
        K = identity_plus_low_rank(1 / (1 + base), Vr,
                                   1 / (1 + base + e) - 1 / (1 + base))
        np.testing.assert_allclose(K, np.linalg.inv(np.eye(T) + M), rtol=0,
                                   atol=1e-12)
        np.testing.assert_array_equal(cluster_labels(M, k, (base, Vr, e)),
                                      cluster_labels(M, k))
        # the coupling in that form: prox and conjugate without eigh of K
        structured = TaskCoupling(K, identity_plus_low_rank=(
            1 / (1 + base), Vr, 1 / (1 + base + e) - 1 / (1 + base)))
        dense = TaskCoupling(K)
        Y = rng.standard_normal((d, T))
        assert structured.invertible and dense.invertible
        for step in (0.1, 10.0):
            np.testing.assert_allclose(structured.prox(Y, step),
                                       np.linalg.solve(np.eye(T) + step * K,
                                                       Y.T).T,
                                       rtol=0, atol=1e-12)
        assert structured.conjugate(Y) == pytest.approx(dense.conjugate(Y),
                                                        rel=1e-12)
