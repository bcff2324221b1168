"""A penalty written in Python, through the documented protocol only.

The weighted group lasso ``N(W) = sum_j c_j ||W_j||_2`` is a subclass of
:class:`mtlinear.penalties.Penalty` that defines ``norm``, ``prox_norm`` and
``dual_norm`` (and ``name``, ``row_separable``), registered for the duration
of a test.  Everything that takes a penalty must then solve it:
MultiTaskRegressor (by name and as an instance), MultiTaskClassifier,
MultiTaskRegressorCV, regularization_path and alpha_max, with every
``solver`` value.  "auto" and "fista" must work; a solver that does not
handle a penalty defined in Python only ("bcd", "prox_newton") or the
problem ("admm": the squared loss's sufficient statistics; "newton_admm":
Hessian blocks per task) may instead raise a ValueError naming itself, never
crash or silently solve another problem.

References: with ``l1_ratio=1`` this is ``"l21"`` with ``penalty_factor=c``,
solved by cvxpy (:mod:`_cvxpy_reference`), and, substituting ``V_j = c_j
W_j``, scikit-learn's MultiTaskLasso on the columns ``X_j / c_j``; with a
ridge part (``(1 - r)/2 ||W||_F^2``, not weighted by ``c``) the cvxpy
reference after the substitution ``W_j = c_j V_j`` (see :func:`_reference`).
Every fit is also certified by the optimality conditions, recomputed from
``coef_`` (:func:`_kkt`).
"""
import functools

import numpy as np
import pytest
from sklearn.linear_model import MultiTaskLasso

from mtlinear import (MultiTaskClassifier, MultiTaskRegressor,
                      MultiTaskRegressorCV, alpha_max, regularization_path,
                      stack_tasks)
from mtlinear.penalties import PENALTIES, Penalty, register_penalty

from _cvxpy_reference import (alpha_max_reference, data_gradient, null_model,
                              objective, solve_reference)
from _reference import shared_tasks, stacked_tasks

converged = pytest.mark.filterwarnings(
    "error::sklearn.exceptions.ConvergenceWarning")

NAME = "test_weighted_group"
C = np.array([0.5, 1.0, 2.0, 0.8, 1.5, 1.2])   # c_j, one per feature
D, T = C.size, 3
SOLVERS = ["auto", "fista", "bcd", "prox_newton", "admm", "newton_admm"]
MAY_REFUSE = ("bcd", "prox_newton", "admm", "newton_admm")
TOL = {"squared": 1e-14, "logistic": 1e-13}
MAX_ITER = 100_000


class WeightedGroupLasso(Penalty):
    """``N(W) = sum_j c_j ||W_j||_2`` (``c`` = :attr:`weights`)."""

    name = NAME
    row_separable = True
    weights = C

    def norm(self, W):
        return float(self.weights @ np.linalg.norm(W, axis=1))

    def prox_norm(self, W, threshold):
        """Each row shrunk by ``threshold c_j`` (group soft thresholding)."""
        norms = np.linalg.norm(W, axis=1, keepdims=True)
        cut = threshold * self.weights[:, None]
        keep = norms > cut
        return np.where(keep, W * (1.0 - cut / np.where(keep, norms, 1.0)), 0.0)

    def dual_norm(self, U):
        """``max_j ||U_j|| / c_j``."""
        return float(np.max(np.linalg.norm(U, axis=1) / self.weights))


@pytest.fixture
def weighted_group():
    register_penalty(WeightedGroupLasso)
    yield WeightedGroupLasso
    PENALTIES.pop(NAME)


def _cvxpy():
    return pytest.importorskip("cvxpy")


# ------------------------------------------------------------ data
@functools.lru_cache(maxsize=None)
def _data(layout, loss, weighted, seed=0):
    """``(X, y, s, omega, task_col, tasks)``: X (60, 6) and 3 tasks, shared or
    stacked (14, 26, 20 rows); ``tasks`` for the reference (labels +-1)."""
    rng = np.random.default_rng(seed)
    W = np.zeros((D, T))
    W[:4] = rng.standard_normal((4, T))
    offsets = np.array([1.0, -1.0, 0.5])

    def target(Z):
        if loss == "squared":
            return Z + 0.5 * rng.standard_normal(Z.shape)
        labels = (rng.random(Z.shape) < 1 / (1 + np.exp(-Z))).astype(int)
        labels[:2] = [0, 1]
        return labels

    if layout == "shared":
        X = rng.standard_normal((60, D))
        y = np.column_stack([target(X @ W[:, t] + offsets[t]) for t in range(T)])
        task_col = None
    else:
        X_list = [rng.standard_normal((m, D)) for m in (14, 26, 20)]
        X, y = stack_tasks(X_list, [target(Xt @ W[:, t] + offsets[t])
                                    for t, Xt in enumerate(X_list)])
        task_col = -1
    s = rng.uniform(0.3, 2.0, len(y)) if weighted else None
    omega = rng.uniform(0.5, 2.0, T) if weighted else None
    signed = np.where(y == 1, 1.0, -1.0) if loss == "logistic" else y
    tasks = (shared_tasks(X, signed, s) if layout == "shared"
             else stacked_tasks(X[:, :-1], signed, X[:, -1], s))
    return X, y, s, omega, task_col, tasks


def _params(loss, fit_intercept, omega, weights=C):
    """The weighted group lasso as ``l21`` with penalty factors (l1_ratio=1)."""
    return dict(loss=loss, penalty="l21", penalty_factor=weights,
                fit_intercept=fit_intercept, task_weights=omega)


@functools.lru_cache(maxsize=None)
def _alpha_max(layout, loss, weighted, fit_intercept):
    _cvxpy()
    *_, omega, _, tasks = _data(layout, loss, weighted)
    return alpha_max_reference(tasks, **_params(loss, fit_intercept, omega))


def _reference(tasks, loss, alpha, l1_ratio, fit_intercept, omega, weights=C):
    """``(W, b)`` minimizing the objective with ``alpha (r N(W) + (1 - r)/2
    ||W||_F^2)`` (the ridge part not weighted).

    ``r = 1``: ``"l21"`` with ``penalty_factor = c``.  Otherwise substitute
    ``W_j = c_j V_j``: row ``j`` becomes ``c_j^2 (r ||V_j|| + (1 - r)/2
    ||V_j||^2)`` on the columns ``c_j X_j``, i.e. ``"l21"`` with
    ``penalty_factor = c^2`` there.
    """
    _cvxpy()
    if l1_ratio == 1:
        W, b, _ = solve_reference(tasks, alpha=alpha,
                                  **_params(loss, fit_intercept, omega, weights))
        return W, b
    scaled = [(Xt * weights, yt, st) for Xt, yt, st in tasks]
    V, b, _ = solve_reference(scaled, alpha=alpha, l1_ratio=l1_ratio,
                              **_params(loss, fit_intercept, omega, weights ** 2))
    return V * weights[:, None], b


def _kkt(tasks, coef, intercept, *, loss, alpha, l1_ratio, fit_intercept, omega,
         weights=C, zero_tol=0.0):
    """Largest violation of the optimality conditions, relative to the
    largest data-fit gradient at ``W = 0``: for each row, ``a = -(G_j + mu
    W_j)`` must equal ``lam c_j W_j / ||W_j||`` (non-zero row) or have norm
    at most ``lam c_j`` (zero row); the intercept gradients vanish."""
    W = np.array(coef, dtype=float).T
    W[np.abs(W) <= zero_tol * np.abs(W).max(initial=0.0)] = 0.0
    kw = dict(loss=loss, fit_intercept=fit_intercept, task_weights=omega)
    G, g = data_gradient(tasks, W, intercept, **kw)
    G0, _ = data_gradient(tasks, np.zeros_like(W), intercept, **kw)
    lam, mu = alpha * l1_ratio, alpha * (1 - l1_ratio)
    worst = np.abs(g).max() if fit_intercept else 0.0
    for j in range(D):
        a, norm = -(G[j] + mu * W[j]), np.linalg.norm(W[j])
        worst = max(worst, np.linalg.norm(a - lam * weights[j] * W[j] / norm)
                    if norm > 0 else max(np.linalg.norm(a) - lam * weights[j], 0))
    return worst / np.abs(G0).max()


def _assert_solution(model, tasks, *, loss, alpha, l1_ratio=1.0,
                     fit_intercept=True, omega=None, weights=C):
    W, b = _reference(tasks, loss, alpha, l1_ratio, fit_intercept, omega, weights)
    assert _kkt(tasks, W.T, b, loss=loss, alpha=alpha, l1_ratio=l1_ratio,
                fit_intercept=fit_intercept, omega=omega, weights=weights,
                ) <= 1e-9  # the reference itself
    assert np.count_nonzero(W) > 0  # not a comparison between zeros
    atol = 1e-6 * max(np.abs(W).max(), 1.0)
    np.testing.assert_allclose(model.coef_, W.T, rtol=0, atol=atol)
    np.testing.assert_allclose(model.intercept_, b, rtol=0, atol=atol)
    assert _kkt(tasks, model.coef_, model.intercept_, loss=loss, alpha=alpha,
                l1_ratio=l1_ratio, fit_intercept=fit_intercept, omega=omega,
                weights=weights) <= 1e-6


def _run(solver, action):
    """``action()``; the solvers of ``MAY_REFUSE`` may refuse with a
    ValueError naming the solver (then ``None``)."""
    if solver not in MAY_REFUSE:
        return action()
    try:
        return action()
    except ValueError as exc:
        assert solver in str(exc), f"unclear refusal: {exc}"
        return None


# ------------------------------------------------------------ the protocol
def test_protocol_pieces_are_consistent():
    """The test penalty itself (no solver): prox optimality, and the dual
    norm is tight in Hoelder's inequality."""
    rng = np.random.default_rng(0)
    pen = WeightedGroupLasso()
    U = rng.standard_normal((D, T))
    P = pen.prox_norm(U, 0.7)
    for j in range(D):  # U_j - P_j in 0.7 c_j dN(P_j)
        r = U[j] - P[j]
        if np.linalg.norm(P[j]) > 0:
            np.testing.assert_allclose(
                r, 0.7 * C[j] * P[j] / np.linalg.norm(P[j]), atol=1e-12)
        else:
            assert np.linalg.norm(r) <= 0.7 * C[j] + 1e-12
    W = rng.standard_normal((D, T))
    assert np.vdot(U, W) <= pen.norm(W) * pen.dual_norm(U) + 1e-12
    j = np.argmax(np.linalg.norm(U, axis=1) / C)  # the maximizer attains it
    E = np.zeros((D, T))
    E[j] = U[j] / np.linalg.norm(U[j]) / C[j]
    assert np.vdot(U, E) == pytest.approx(pen.dual_norm(U) * pen.norm(E))


# ------------------------------------------------------------ the estimators
@converged
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("how", ["name", "instance"])
@pytest.mark.parametrize("layout,weighted,fit_intercept", [
    ("shared", False, True), ("shared", True, False),
    ("stacked", True, True), ("stacked", False, False)])
def test_regressor_matches_cvxpy(weighted_group, solver, how, layout, weighted,
                                 fit_intercept):
    X, y, s, omega, task_col, tasks = _data(layout, "squared", weighted)
    alpha = 0.3 * _alpha_max(layout, "squared", weighted, fit_intercept)
    # an instance's own strength is replaced by the estimator's
    penalty = NAME if how == "name" else weighted_group(alpha=123.0,
                                                        l1_ratio=0.25)
    model = MultiTaskRegressor(penalty=penalty, alpha=alpha, task_col=task_col,
                               task_weights=omega, fit_intercept=fit_intercept,
                               solver=solver, tol=TOL["squared"],
                               max_iter=MAX_ITER)
    if _run(solver, lambda: model.fit(X, y, sample_weight=s)) is None:
        return
    _assert_solution(model, tasks, loss="squared", alpha=alpha,
                     fit_intercept=fit_intercept, omega=omega)


@converged
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("layout", ["shared", "stacked"])
def test_regressor_with_ridge_part(weighted_group, solver, layout):
    """``l1_ratio=0.5``: ``alpha (r N(W) + (1 - r)/2 ||W||_F^2)``."""
    X, y, s, omega, task_col, tasks = _data(layout, "squared", True)
    alpha = 0.4 * _alpha_max(layout, "squared", True, True) / 0.5
    model = MultiTaskRegressor(penalty=NAME, alpha=alpha, l1_ratio=0.5,
                               task_col=task_col, task_weights=omega,
                               solver=solver, tol=TOL["squared"],
                               max_iter=MAX_ITER)
    if _run(solver, lambda: model.fit(X, y, sample_weight=s)) is None:
        return
    _assert_solution(model, tasks, loss="squared", alpha=alpha, l1_ratio=0.5,
                     omega=omega)


@converged
def test_instance_keeps_its_own_weights(weighted_group):
    """The instance is the penalty: its attributes (here other weights) are
    used, only alpha and l1_ratio come from the estimator."""
    X, y, s, omega, task_col, tasks = _data("shared", "squared", True)
    other = C[::-1].copy()
    penalty = weighted_group()
    penalty.weights = other
    alpha = 0.3 * alpha_max_reference(tasks, **_params("squared", True, omega,
                                                       other))
    model = MultiTaskRegressor(penalty=penalty, alpha=alpha, task_weights=omega,
                               tol=TOL["squared"], max_iter=MAX_ITER)
    model.fit(X, y, sample_weight=s)
    _assert_solution(model, tasks, loss="squared", alpha=alpha, omega=omega,
                     weights=other)


@converged
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_regressor_is_multitask_lasso_on_rescaled_columns(weighted_group,
                                                         fit_intercept):
    """``V_j = c_j W_j``: scikit-learn's MultiTaskLasso on ``X_j / c_j``
    (shared layout, unit weights), and the package's ``"l21"`` there."""
    X, y, *_ = _data("shared", "squared", False)
    alpha = 0.3 * _alpha_max("shared", "squared", False, fit_intercept)
    model = MultiTaskRegressor(penalty=NAME, alpha=alpha,
                               fit_intercept=fit_intercept, tol=TOL["squared"],
                               max_iter=MAX_ITER).fit(X, y)
    ref = MultiTaskLasso(alpha=alpha, fit_intercept=fit_intercept, tol=1e-14,
                         max_iter=1_000_000).fit(X / C, y)
    coef = ref.coef_ / C
    assert 0 < np.count_nonzero(np.linalg.norm(coef, axis=0)) < D
    atol = 1e-6 * max(np.abs(coef).max(), 1.0)
    np.testing.assert_allclose(model.coef_, coef, atol=atol)
    np.testing.assert_allclose(model.intercept_,
                               np.broadcast_to(ref.intercept_, (T,)), atol=atol)
    l21 = MultiTaskRegressor(penalty="l21", alpha=alpha,
                             fit_intercept=fit_intercept, tol=TOL["squared"],
                             max_iter=MAX_ITER).fit(X / C, y)
    np.testing.assert_allclose(model.coef_, l21.coef_ / C, atol=atol)


@converged
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("layout,weighted,fit_intercept", [
    ("shared", True, True), ("stacked", True, False), ("stacked", False, True)])
def test_classifier_matches_cvxpy(weighted_group, solver, layout, weighted,
                                  fit_intercept):
    X, y, s, omega, task_col, tasks = _data(layout, "logistic", weighted)
    alpha = 0.3 * _alpha_max(layout, "logistic", weighted, fit_intercept)
    model = MultiTaskClassifier(penalty=NAME, alpha=alpha, task_col=task_col,
                                task_weights=omega, fit_intercept=fit_intercept,
                                solver=solver, tol=TOL["logistic"],
                                max_iter=MAX_ITER)
    if _run(solver, lambda: model.fit(X, y, sample_weight=s)) is None:
        return
    _assert_solution(model, tasks, loss="logistic", alpha=alpha,
                     fit_intercept=fit_intercept, omega=omega)


# ------------------------------------------------------------ path, CV, alpha_max
@converged
@pytest.mark.parametrize("layout,loss,weighted", [
    ("shared", "squared", False), ("stacked", "squared", True),
    ("shared", "logistic", True), ("stacked", "logistic", False)])
def test_alpha_max(weighted_group, layout, loss, weighted):
    """``max_j ||G_j|| / c_j`` at the intercept-only model; all-zero
    ``coef_`` just above it, not below."""
    X, y, s, omega, task_col, tasks = _data(layout, loss, weighted)
    top = alpha_max(X, y, penalty=NAME, loss=loss, task_col=task_col,
                    sample_weight=s, task_weights=omega)
    np.testing.assert_allclose(top, _alpha_max(layout, loss, weighted, True),
                               rtol=1e-6)
    cls = MultiTaskClassifier if loss == "logistic" else MultiTaskRegressor
    kw = dict(penalty=NAME, task_col=task_col, task_weights=omega, tol=TOL[loss],
              max_iter=MAX_ITER)
    above = cls(alpha=top * (1 + 1e-6), **kw).fit(X, y, sample_weight=s)
    np.testing.assert_array_equal(above.coef_, 0.0)
    below = cls(alpha=0.9 * top, **kw).fit(X, y, sample_weight=s)
    assert np.any(below.coef_ != 0)


@converged
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("layout,loss", [("shared", "squared"),
                                         ("stacked", "squared"),
                                         ("stacked", "logistic")])
def test_regularization_path(weighted_group, solver, layout, loss):
    X, y, s, omega, task_col, tasks = _data(layout, loss, True)

    def path():
        return regularization_path(X, y, penalty=NAME, loss=loss, n_alphas=4,
                                   eps=0.1, task_col=task_col, sample_weight=s,
                                   task_weights=omega, solver=solver,
                                   tol=TOL[loss], max_iter=MAX_ITER)

    result = _run(solver, path)
    if result is None:
        return
    alphas, coefs, intercepts, gaps, _ = result
    np.testing.assert_allclose(alphas[0], _alpha_max(layout, loss, True, True),
                               rtol=1e-6)
    np.testing.assert_array_equal(coefs[..., 0], 0.0)
    for k in range(1, len(alphas)):
        W, b = _reference(tasks, loss, float(alphas[k]), 1.0, True, omega)
        atol = 1e-6 * max(np.abs(W).max(), 1.0)
        np.testing.assert_allclose(coefs[..., k], W.T, atol=atol)
        np.testing.assert_allclose(intercepts[:, k], b, atol=atol)


@converged
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("layout", ["shared", "stacked"])
def test_regressor_cv(weighted_group, solver, layout):
    X, y, s, omega, task_col, tasks = _data(layout, "squared", True)
    model = MultiTaskRegressorCV(penalty=NAME, alphas=4, eps=0.1, cv=3,
                                 task_col=task_col, task_weights=omega,
                                 solver=solver, tol=TOL["squared"],
                                 max_iter=MAX_ITER)
    if _run(solver, lambda: model.fit(X, y, sample_weight=s)) is None:
        return
    np.testing.assert_allclose(np.ravel(model.alphas_)[0],
                               _alpha_max(layout, "squared", True, True),
                               rtol=1e-6)
    assert model.alpha_ in np.ravel(model.alphas_)
    _assert_solution(model, tasks, loss="squared", alpha=float(model.alpha_),
                     omega=omega)


# ------------------------------------------------------------ the gap
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_reported_dual_gap_certifies_the_fit(weighted_group, solver, loss):
    """At ``tol=1e-8`` the reported gap is at most ``tol * P(0)`` (``P(0)``:
    the objective at ``W = 0`` with the best intercepts), non-negative (up
    to rounding) and an upper bound of the true suboptimality ``P(W) - P*``."""
    _cvxpy()
    X, y, s, omega, task_col, tasks = _data("stacked", loss, True)
    alpha = 0.2 * _alpha_max("stacked", loss, True, True)
    tol = 1e-8
    cls = MultiTaskClassifier if loss == "logistic" else MultiTaskRegressor
    model = cls(penalty=NAME, alpha=alpha, task_col=task_col, task_weights=omega,
                solver=solver, tol=tol, max_iter=MAX_ITER)
    if _run(solver, lambda: model.fit(X, y, sample_weight=s)) is None:
        return
    params = _params(loss, True, omega)
    W0, b0 = null_model(tasks, loss=loss, task_weights=omega)
    p0 = objective(tasks, W0, b0, alpha=alpha, **params)
    assert -1e-15 * p0 <= model.dual_gap_ <= tol * p0 * (1 + 1e-6)
    W, b, optimum = solve_reference(tasks, alpha=alpha, **params)
    value = objective(tasks, model.coef_.T, model.intercept_, alpha=alpha,
                      **params)
    assert value - optimum <= model.dual_gap_ + 1e-13 * p0


def test_unregistered_name_is_an_error():
    X, y, *_ = _data("shared", "squared", False)
    assert NAME not in PENALTIES
    with pytest.raises(ValueError, match=NAME):
        MultiTaskRegressor(penalty=NAME).fit(X, y)
