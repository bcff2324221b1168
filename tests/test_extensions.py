"""The four extensions of the objective against an independent reference.

* ``penalty="sparse_group"`` (``l1_share``), the Huber loss (``loss="huber"``,
  ``delta``), per-feature ``penalty_factor`` and ``positive=True``;
* reference: cvxpy (:mod:`_cvxpy_reference`, CLARABEL polished by proximal
  gradient), whose own correctness is checked first against scikit-learn
  (``Lasso``, ``ElasticNet``, ``MultiTaskLasso``, ``LogisticRegression``,
  positive ``Lasso``) and, where scikit-learn has no peer, against scipy's
  L-BFGS and the estimators that exist already;
* each fit is also certified by its optimality conditions, recomputed here
  from the returned ``coef_`` and ``intercept_`` (:func:`kkt_violation`).

Tolerances: a duality gap ``g`` bounds the coefficient error only through
strong convexity, ``||W - W*||^2 <= 2 g / m``; for a coefficient accuracy of
``1e-6`` (relative to ``max |W|``, absolute when that is below 1) the
estimators are run at a relative gap of ``1e-14`` (``1e-13`` for the
logistic loss, as in test_classifier), not ``1e-10``: with a ridge term or a
task of few samples ``1e-10`` leaves errors near ``1e-5``.
"""
import functools
from typing import NamedTuple

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import minimize
from sklearn.linear_model import (ElasticNet, Lasso, LogisticRegression,
                                  MultiTaskElasticNet, MultiTaskLasso)
from sklearn.utils.estimator_checks import parametrize_with_checks

from mtlinear import (MultiTaskClassifier, MultiTaskClassifierCV,
                      MultiTaskRegressor, MultiTaskRegressorCV, alpha_max,
                      regularization_path, stack_tasks)

from _cvxpy_reference import (alpha_max_reference, data_gradient, kkt_violation,
                              null_model, objective, solve_reference)
from _reference import shared_tasks, stacked_tasks

converged = pytest.mark.filterwarnings(
    "error::sklearn.exceptions.ConvergenceWarning")

D, T = 6, 3
N_SHARED = 60
SIZES = (14, 26, 20)           # stacked layout: unequal n_t, 60 rows
TOL = {"squared": 1e-14, "huber": 1e-14, "logistic": 1e-13}
MAX_ITER = 100_000
KKT_TOL = 1e-6
FACTORS = {                    # penalty_factor, one per feature (D = 6)
    None: None,
    "zeros": (0.0, 1.0, 2.0, 0.0, 0.5, 1.0),     # features 0, 3 unpenalized
    "spread": (0.5, 1.0, 2.0, 0.3, 1.5, 1.0),    # positive, non-uniform
}
SK_TOL = dict(tol=1e-14, max_iter=1_000_000)


def _cvxpy():
    return pytest.importorskip("cvxpy")


# ============================================================== data
class Data(NamedTuple):
    X: np.ndarray          # dense; stacked: the task labels as last column
    y: np.ndarray          # estimator targets (labels {0, 1} to classify)
    s: object              # sample weights or None
    omega: object          # task weights (sorted-label order) or None
    task_col: object
    tasks: list            # reference per-task (X_t, y_t, s_t), y_t in +-1
                           # for classification


def _features(rng, n):
    X = rng.standard_normal((n, D))
    X[rng.random((n, D)) < 0.25] = 0.0  # zeros, for the CSR format
    return X


def _true_coef(rng):
    W = np.zeros((D, T))
    W[:4] = rng.standard_normal((4, T))   # both signs: positivity binds
    return W


@functools.lru_cache(maxsize=None)
def _data(layout, kind, weighted, seed=0):
    """Shared: X (60, 6), Y (60, 3).  Stacked: tasks of 14, 26, 20 rows.
    ``kind`` is "regression" (noise 0.5, so Huber's delta=0.3 sees many
    residuals in its linear zone, and a few outliers) or "classification"
    (labels {0, 1} drawn from the logistic model, both in every task)."""
    rng = np.random.default_rng(seed)
    W = _true_coef(rng)
    offsets = (np.array([1.0, -2.0, 0.5]) if kind == "regression"
               else np.array([0.4, -0.4, 0.0]))  # both classes well present
    if layout == "shared":
        X = _features(rng, N_SHARED)
        Z = X @ W + offsets
    else:
        X_list = [_features(rng, m) for m in SIZES]
        Z_list = [Xt @ W[:, t] + offsets[t] for t, Xt in enumerate(X_list)]
    if kind == "regression":
        if layout == "shared":
            Y = Z + 0.5 * rng.standard_normal(Z.shape)
            Y[rng.random(Y.shape) < 0.05] += 8.0
        else:
            y_list = [z + 0.5 * rng.standard_normal(z.shape) for z in Z_list]
            for yt in y_list:
                yt[rng.random(yt.shape) < 0.05] += 8.0
    else:
        def draw(z):
            labels = (rng.random(z.shape) < 1.0 / (1.0 + np.exp(-z))).astype(int)
            labels[:2] = [0, 1]  # both classes in every task
            return labels
        if layout == "shared":
            Y = np.column_stack([draw(Z[:, t]) for t in range(T)])
        else:
            y_list = [draw(z) for z in Z_list]
    if layout == "shared":
        n, task_col = N_SHARED, None
        Xfit, yfit = X, Y
    else:
        Xfit, yfit = stack_tasks(X_list, y_list)
        n, task_col = len(yfit), -1
    s = rng.uniform(0.3, 2.0, n) if weighted else None
    omega = rng.uniform(0.5, 2.0, T) if weighted else None
    signed = (np.where(yfit == 1, 1.0, -1.0) if kind == "classification"
              else np.asarray(yfit, float))
    tasks = (shared_tasks(Xfit, signed, s) if layout == "shared"
             else stacked_tasks(Xfit[:, :-1], signed, Xfit[:, -1], s))
    return Data(Xfit, yfit, s, omega, task_col, tasks)


def _format(X, fmt):
    return sp.csr_matrix(X) if fmt == "csr" else X


# ============================================================== problems
class Case(NamedTuple):
    """One problem; hashable, so its reference solution is cached."""
    layout: str = "shared"
    weighted: bool = False
    fit_intercept: bool = True
    loss: str = "squared"
    penalty: str = "l21"
    l1_ratio: float = 1.0
    l1_share: float = 0.5
    factors: object = None       # key of FACTORS
    positive: bool = False
    delta: float = 1.0
    level: float = 0.3           # alpha = level * alpha_max (l2: alpha = level)

    @property
    def kind(self):
        return "classification" if self.loss == "logistic" else "regression"

    @property
    def data(self):
        return _data(self.layout, self.kind, self.weighted)

    @property
    def factor(self):
        f = FACTORS[self.factors]
        return None if f is None else np.array(f)

    def params(self):
        """Keyword arguments of the reference functions."""
        return dict(loss=self.loss, penalty=self.penalty, l1_ratio=self.l1_ratio,
                    l1_share=self.l1_share, penalty_factor=self.factor,
                    positive=self.positive, delta=self.delta,
                    fit_intercept=self.fit_intercept,
                    task_weights=self.data.omega)

    def alpha_max(self):
        return _reference_alpha_max(self)

    @property
    def alpha(self):
        if self.penalty == "l2" or self.l1_ratio == 0:
            return self.level
        return self.level * self.alpha_max()

    def estimator(self, solver="auto", alpha=None, **extra):
        """The estimator of this problem, passing the new parameters only
        when they differ from their defaults."""
        kw = dict(penalty=self.penalty, alpha=self.alpha if alpha is None else alpha,
                  l1_ratio=self.l1_ratio, fit_intercept=self.fit_intercept,
                  task_col=self.data.task_col, task_weights=self.data.omega,
                  solver=solver, tol=TOL[self.loss], max_iter=MAX_ITER)
        if self.penalty == "sparse_group":
            kw["l1_share"] = self.l1_share
        if self.factors is not None:
            kw["penalty_factor"] = self.factor
        if self.positive:
            kw["positive"] = True
        if self.loss == "huber":
            kw.update(loss="huber", delta=self.delta)
        kw.update(extra)
        if self.loss == "logistic":
            return MultiTaskClassifier(**kw)
        return MultiTaskRegressor(**kw)

    def fit(self, solver="auto", fmt="dense", alpha=None, **extra):
        data = self.data
        return self.estimator(solver, alpha, **extra).fit(
            _format(data.X, fmt), data.y, sample_weight=data.s)


@functools.lru_cache(maxsize=None)
def _reference_alpha_max(case):
    _cvxpy()
    return alpha_max_reference(case.data.tasks, **case.params())


@functools.lru_cache(maxsize=None)
def _reference_solution(case, alpha=None):
    """``(W (d, T), b (T,))`` by cvxpy at ``case.alpha`` (or ``alpha``)."""
    _cvxpy()
    W, b, _ = solve_reference(case.data.tasks, alpha=case.alpha if alpha is None
                              else alpha, **case.params())
    return W, b


def _scale(W):
    """Relative to ``max |W|``, absolute when that is below 1."""
    return max(np.abs(W).max(initial=0.0), 1.0)


def _assert_matches_reference(model, case, alpha=None):
    """``coef_`` and ``intercept_`` equal cvxpy's to 1e-6, and the optimality
    conditions recomputed at the estimator's solution hold."""
    alpha = case.alpha if alpha is None else alpha
    W, b = _reference_solution(case, alpha)
    assert np.count_nonzero(W) > 0  # not a comparison between zeros
    atol = 1e-6 * _scale(W)
    np.testing.assert_allclose(model.coef_, W.T, rtol=0, atol=atol)
    if case.fit_intercept:
        np.testing.assert_allclose(model.intercept_, b, rtol=0, atol=atol)
    else:
        np.testing.assert_array_equal(model.intercept_, 0.0)
    if case.positive:
        assert np.all(model.coef_ >= 0)
    violation = kkt_violation(case.data.tasks, model.coef_.T, model.intercept_,
                              alpha=alpha, **case.params())
    assert violation <= KKT_TOL


def _penalized_rows(case):
    f = case.factor
    return np.ones(D, bool) if f is None else f > 0


def _check_alpha_max(case, solver="auto"):
    """``alpha_max`` equals the reference; the fit at ``alpha_max (1 + 1e-6)``
    has zero penalized rows (and the unpenalized ones fitted), the fit at
    ``0.9 alpha_max`` has not."""
    data = case.data
    kw = dict(penalty=case.penalty, l1_ratio=case.l1_ratio,
              fit_intercept=case.fit_intercept, task_col=data.task_col,
              sample_weight=data.s, task_weights=data.omega,
              loss=case.loss)
    if case.penalty == "sparse_group":
        kw["l1_share"] = case.l1_share
    if case.factors is not None:
        kw["penalty_factor"] = case.factor
    if case.positive:
        kw["positive"] = True
    if case.loss == "huber":
        kw["delta"] = case.delta
    y = data.y
    top = alpha_max(data.X, y, **kw)
    np.testing.assert_allclose(top, case.alpha_max(), rtol=1e-6)
    rows = _penalized_rows(case)
    above = case.fit(solver, alpha=top * (1 + 1e-6))
    np.testing.assert_array_equal(above.coef_[:, rows], 0.0)
    if not rows.all():  # the unpenalized features are fitted
        _cvxpy()
        W0, _ = null_model(data.tasks, **{k: v for k, v in case.params().items()
                                          if k not in ("penalty", "l1_ratio",
                                                       "l1_share")})
        np.testing.assert_allclose(above.coef_, W0.T, rtol=0,
                                   atol=1e-6 * _scale(W0))
    below = case.fit(solver, alpha=0.9 * top)
    assert np.any(below.coef_[:, rows] != 0)


# ============================================================== the reference
# The cvxpy reference checked against independent solvers (no mtlinear).
def _lasso_data(seed=0, n=50, d=8, n_tasks=1):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    W = np.zeros((d, n_tasks))
    W[:4] = rng.standard_normal((4, n_tasks))
    Y = X @ W + 1.5 + 0.5 * rng.standard_normal((n, n_tasks))
    return X, (Y[:, 0] if n_tasks == 1 else Y), rng.uniform(0.3, 2.0, n)


def _sk_linear(l1_ratio, alpha, fit_intercept, positive=False):
    if l1_ratio == 1:
        return Lasso(alpha=alpha, fit_intercept=fit_intercept, positive=positive,
                     **SK_TOL)
    return ElasticNet(alpha=alpha, l1_ratio=l1_ratio, fit_intercept=fit_intercept,
                      positive=positive, **SK_TOL)


@pytest.mark.parametrize("l1_ratio", [1.0, 0.5])
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("positive", [False, True])
def test_reference_l1_is_sklearn_lasso_elasticnet(l1_ratio, fit_intercept,
                                                  weighted, positive):
    """One task, shared layout: our alpha (task-mean scaling) is sklearn's.
    Both the raw interior-point answer (to 1e-6) and the polished one (to
    1e-9) agree with scikit-learn."""
    _cvxpy()
    X, y, s = _lasso_data()
    s = s if weighted else None
    tasks = shared_tasks(X, y, s)
    kw = dict(loss="squared", penalty="l1", l1_ratio=l1_ratio,
              positive=positive, fit_intercept=fit_intercept)
    alpha = kw["alpha"] = 0.2 * alpha_max_reference(tasks, **kw)
    ref = _sk_linear(l1_ratio, alpha, fit_intercept, positive).fit(
        X, y, sample_weight=s)
    assert 0 < np.count_nonzero(ref.coef_) < X.shape[1]  # some thresholded
    for polish, tol in [(False, 1e-6), (True, 1e-9)]:
        W, b, value = solve_reference(tasks, polish=polish, **kw)
        np.testing.assert_allclose(W[:, 0], ref.coef_, atol=tol)
        np.testing.assert_allclose(b[0], ref.intercept_ if fit_intercept else 0.0,
                                   atol=tol)
    # the numpy objective is sklearn's at the same point
    total = len(y) if s is None else s.sum()
    w = np.ones(len(y)) if s is None else s
    r = y - X @ ref.coef_ - ref.intercept_
    sk_value = (0.5 * np.sum(w * r * r) / total + alpha * l1_ratio * np.abs(
        ref.coef_).sum() + 0.5 * alpha * (1 - l1_ratio) * ref.coef_ @ ref.coef_)
    assert objective(tasks, ref.coef_[:, None], [ref.intercept_], **kw) \
        == pytest.approx(sk_value, rel=1e-12)
    assert value <= sk_value * (1 + 1e-12)
    assert kkt_violation(tasks, W, b, **kw) <= 1e-9
    # and sklearn's answer satisfies our optimality conditions
    assert kkt_violation(tasks, ref.coef_[:, None], [ref.intercept_], **kw) <= 1e-9


@pytest.mark.parametrize("l1_ratio", [1.0, 0.5])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_reference_l21_is_sklearn_multitask_lasso(l1_ratio, fit_intercept):
    _cvxpy()
    X, Y, s = _lasso_data(seed=1, n_tasks=3)
    tasks = shared_tasks(X, Y, s)
    params = dict(loss="squared", penalty="l21", l1_ratio=l1_ratio,
                  fit_intercept=fit_intercept)
    alpha = params["alpha"] = 0.2 * alpha_max_reference(tasks, **params)
    cls = MultiTaskLasso if l1_ratio == 1 else MultiTaskElasticNet
    kw = {} if l1_ratio == 1 else {"l1_ratio": l1_ratio}
    ref = cls(alpha=alpha, fit_intercept=fit_intercept, **kw, **SK_TOL).fit(
        X, Y, sample_weight=s)
    assert 0 < np.count_nonzero(np.linalg.norm(ref.coef_, axis=0)) < X.shape[1]
    for polish, tol in [(False, 1e-6), (True, 1e-9)]:
        W, b, _ = solve_reference(tasks, polish=polish, **params)
        np.testing.assert_allclose(W, ref.coef_.T, atol=tol)
        np.testing.assert_allclose(b, np.broadcast_to(ref.intercept_, (3,)),
                                   atol=tol)
    assert kkt_violation(tasks, W, b, **params) <= 1e-9


@pytest.mark.parametrize("l1_ratio", [1.0, 0.5])
def test_reference_logistic_is_sklearn_logistic_regression(l1_ratio):
    """``C = 1 / (alpha sum_i s_i)`` (see MultiTaskClassifier's docstring)."""
    _cvxpy()
    rng = np.random.default_rng(2)
    X = rng.standard_normal((60, 6))
    z = X[:, :3] @ rng.standard_normal(3) + 0.3
    y = np.where(rng.random(60) < 1 / (1 + np.exp(-z)), 1.0, -1.0)
    s = rng.uniform(0.5, 2.0, 60)
    alpha = 0.02
    ref = LogisticRegression(C=1.0 / (alpha * s.sum()), l1_ratio=l1_ratio,
                             solver="saga", tol=1e-13, max_iter=1_000_000).fit(
        X, y, sample_weight=s)
    tasks = shared_tasks(X, y, s)
    params = dict(loss="logistic", penalty="l1", alpha=alpha, l1_ratio=l1_ratio)
    W, b, _ = solve_reference(tasks, **params)
    np.testing.assert_allclose(W[:, 0], ref.coef_[0], atol=1e-8)
    np.testing.assert_allclose(b[0], ref.intercept_[0], atol=1e-8)
    assert kkt_violation(tasks, W, b, **params) <= 1e-9


def test_reference_huber_large_delta_is_squared():
    """No residual reaches delta: Huber is the squared loss (sklearn Lasso)."""
    _cvxpy()
    X, y, s = _lasso_data(seed=3)
    tasks = shared_tasks(X, y, s)
    ref = Lasso(alpha=0.05, **SK_TOL).fit(X, y, sample_weight=s)
    W, b, value = solve_reference(tasks, loss="huber", delta=1e3, penalty="l1",
                                  alpha=0.05)
    np.testing.assert_allclose(W[:, 0], ref.coef_, atol=1e-9)
    np.testing.assert_allclose(b[0], ref.intercept_, atol=1e-9)
    assert value == pytest.approx(objective(
        tasks, W, b, loss="squared", penalty="l1", alpha=0.05), rel=1e-14)


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_reference_huber_is_scipy_lbfgs(fit_intercept):
    """Huber with a ridge penalty is smooth: scipy's L-BFGS on the numpy
    objective finds the cvxpy optimum (checks cvxpy's ``huber`` scaling, our
    half of it, and the weights), with residuals on both sides of delta."""
    _cvxpy()
    data = _data("stacked", "regression", True)
    params = dict(loss="huber", penalty="l2", alpha=0.05, delta=0.3,
                  fit_intercept=fit_intercept, task_weights=data.omega)
    W, b, value = solve_reference(data.tasks, **params)

    def fun(x):
        return objective(data.tasks, x[:D * T].reshape(D, T), x[D * T:], **params)

    def grad(x):
        G, g = data_gradient(data.tasks, x[:D * T].reshape(D, T), x[D * T:],
                             loss="huber", delta=0.3, fit_intercept=fit_intercept,
                             task_weights=data.omega)
        return np.concatenate([(G + 0.05 * x[:D * T].reshape(D, T)).ravel(),
                               g if fit_intercept else np.zeros(T)])

    res = minimize(fun, np.zeros(D * T + T), jac=grad, method="L-BFGS-B",
                   options=dict(ftol=1e-15, gtol=1e-12, maxiter=10_000))
    np.testing.assert_allclose(res.x[:D * T].reshape(D, T), W, atol=1e-6)
    assert value <= res.fun + 1e-12
    residuals = np.concatenate([yt - Xt @ W[:, t] - b[t] for t, (Xt, yt, _)
                                in enumerate(data.tasks)])
    assert 0.2 < np.mean(np.abs(residuals) > 0.3) < 0.9


def test_reference_kkt_detects_a_perturbation():
    _cvxpy()
    data = _data("shared", "regression", True)
    params = dict(loss="huber", penalty="sparse_group", alpha=0.05,
                  l1_share=0.3, delta=0.3, positive=True,
                  penalty_factor=np.array(FACTORS["zeros"]),
                  task_weights=data.omega)
    W, b, value = solve_reference(data.tasks, **params)
    assert kkt_violation(data.tasks, W, b, **params) <= 1e-12
    rng = np.random.default_rng(0)
    for _ in range(5):
        W2 = np.maximum(W + 1e-3 * rng.standard_normal(W.shape), 0.0)
        assert objective(data.tasks, W2, b, **params) > value
        assert kkt_violation(data.tasks, W2, b, **params) > 1e-5
    assert objective(data.tasks, -np.abs(W) - 1.0, b, **params) == np.inf


@converged
@pytest.mark.parametrize("penalty,l1_ratio", [("l1", 1.0), ("l1", 0.5),
                                              ("l21", 1.0), ("l21", 0.5),
                                              ("trace", 1.0), ("trace", 0.5),
                                              ("l2", 1.0)])
@pytest.mark.parametrize("layout", ["shared", "stacked"])
@pytest.mark.parametrize("weighted", [False, True])
def test_reference_matches_existing_estimator(penalty, l1_ratio, layout,
                                              weighted):
    """What the package solved before the extensions (squared loss, the four
    penalties, both layouts, sample and task weights): the reference agrees."""
    case = Case(layout=layout, weighted=weighted, penalty=penalty,
                l1_ratio=l1_ratio, level=0.05 if penalty == "l2" else 0.3)
    _assert_matches_reference(case.fit(), case)


# ============================================================== sparse-group
# the default run takes a covering subset of the layout grid (each layout with
# each format, each intercept setting with each weighting); the rest is slow
_COVERING = {("shared", "dense", True, True), ("shared", "csr", False, False),
             ("stacked", "dense", False, True), ("stacked", "csr", True, False)}
LAYOUT_GRID = [
    pytest.param(layout, fmt, fit_intercept, weighted,
                 id=f"{layout}-{fmt}-{'b' if fit_intercept else 'nob'}-"
                    f"{'w' if weighted else 'now'}",
                 marks=() if (layout, fmt, fit_intercept, weighted) in _COVERING
                 else pytest.mark.slow)
    for layout in ("shared", "stacked") for fmt in ("dense", "csr")
    for fit_intercept in (True, False) for weighted in (False, True)]
# intercept and weights: both, neither in the default run
INTERCEPT_WEIGHTS = [
    pytest.param(fit_intercept, weighted,
                 marks=() if fit_intercept == weighted else pytest.mark.slow)
    for fit_intercept in (True, False) for weighted in (False, True)]
SOLVERS = {"squared": ["auto", "fista", "bcd"],
           "logistic": ["auto", "fista", "prox_newton"]}


@converged
@pytest.mark.parametrize("layout,fmt,fit_intercept,weighted", LAYOUT_GRID)
@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_sparse_group_matches_cvxpy(layout, fmt, fit_intercept, weighted, loss):
    case = Case(layout=layout, weighted=weighted, fit_intercept=fit_intercept,
                loss=loss, penalty="sparse_group", l1_ratio=0.8, l1_share=0.3)
    model = case.fit("auto", fmt)
    _assert_matches_reference(model, case)
    W, _ = _reference_solution(case)
    assert np.any(W == 0)  # the norm is active


@converged
@pytest.mark.parametrize("loss,solver", [(loss, solver) for loss in SOLVERS
                                         for solver in SOLVERS[loss]])
@pytest.mark.parametrize("l1_share", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("l1_ratio", [1.0, 0.5])
@pytest.mark.parametrize("layout", ["shared", "stacked"])
def test_sparse_group_shares_ratios_solvers(loss, solver, l1_share, l1_ratio,
                                            layout):
    case = Case(layout=layout, weighted=True, loss=loss, penalty="sparse_group",
                l1_ratio=l1_ratio, l1_share=l1_share)
    _assert_matches_reference(case.fit(solver), case)


@converged
@pytest.mark.parametrize("l1_share", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("loss", ["squared", "logistic"])
@pytest.mark.parametrize("layout,weighted", [("shared", False),
                                             ("stacked", True)])
def test_sparse_group_alpha_max(l1_share, loss, layout, weighted):
    case = Case(layout=layout, weighted=weighted, loss=loss,
                penalty="sparse_group", l1_ratio=0.7, l1_share=l1_share)
    _check_alpha_max(case)


@converged
def test_sparse_group_share_limits_are_l1_and_l21():
    """``l1_share=1`` is ``"l1"``, ``l1_share=0`` is ``"l21"`` (the package's
    existing penalties, checked above against scikit-learn)."""
    for share, other in [(1.0, "l1"), (0.0, "l21")]:
        case = Case(penalty="sparse_group", l1_share=share, weighted=True)
        plain = Case(penalty=other, weighted=True)
        assert case.alpha == pytest.approx(plain.alpha, rel=1e-10)
        a = case.fit(alpha=case.alpha)
        b = plain.fit(alpha=case.alpha)
        np.testing.assert_allclose(a.coef_, b.coef_, atol=1e-6 * _scale(a.coef_))


# ============================================================== Huber
@converged
@pytest.mark.parametrize("layout,fmt,fit_intercept,weighted", LAYOUT_GRID)
@pytest.mark.parametrize("penalty,l1_ratio", [("l1", 1.0), ("l21", 0.7),
                                              ("trace", 1.0), ("l2", 1.0)])
@pytest.mark.parametrize("solver", ["auto", "fista"])
def test_huber_matches_cvxpy(layout, fmt, fit_intercept, weighted, penalty,
                             l1_ratio, solver):
    case = Case(layout=layout, weighted=weighted, fit_intercept=fit_intercept,
                loss="huber", delta=0.3, penalty=penalty, l1_ratio=l1_ratio,
                level=0.05 if penalty == "l2" else 0.2)
    _assert_matches_reference(case.fit(solver, fmt), case)
    # delta is small: many residuals are in the linear zone
    W, b = _reference_solution(case)
    residuals = np.concatenate([yt - Xt @ W[:, t] - b[t] for t, (Xt, yt, _)
                                in enumerate(case.data.tasks)])
    assert np.mean(np.abs(residuals) > case.delta) > 0.2


@converged
@pytest.mark.parametrize("penalty", ["l1", "l21", "trace"])
@pytest.mark.parametrize("layout,weighted", [("shared", True), ("stacked", False)])
def test_huber_alpha_max(penalty, layout, weighted):
    _check_alpha_max(Case(layout=layout, weighted=weighted, loss="huber",
                          delta=0.3, penalty=penalty, l1_ratio=0.8))


@converged
@pytest.mark.parametrize("penalty", ["l1", "l21"])
def test_huber_large_delta_is_squared(penalty):
    """With ``delta`` above every residual the Huber loss is the squared
    loss: the same model as the squared-loss reference."""
    huber = Case(loss="huber", delta=1e3, penalty=penalty, weighted=True)
    squared = huber._replace(loss="squared", delta=1.0)
    model = huber.fit(alpha=squared.alpha)
    _assert_matches_reference(model, squared)


def test_huber_resists_outliers():
    """Targets with gross outliers: Huber's coefficients stay close to the
    clean truth, the squared loss's do not."""
    rng = np.random.default_rng(5)
    n, d, n_tasks = 60, 5, 2
    X = rng.standard_normal((n, d))
    W = rng.standard_normal((d, n_tasks))
    Y = X @ W + 1.0 + 0.1 * rng.standard_normal((n, n_tasks))
    bad = rng.random((n, n_tasks)) < 0.1
    Y[bad] += rng.choice([-1.0, 1.0], bad.sum()) * rng.uniform(10, 30, bad.sum())
    kw = dict(penalty="l2", alpha=1e-4, tol=1e-10, max_iter=MAX_ITER)
    huber = MultiTaskRegressor(loss="huber", delta=0.5, **kw).fit(X, Y)
    squared = MultiTaskRegressor(**kw).fit(X, Y)
    err_huber = np.abs(huber.coef_ - W.T).max()
    err_squared = np.abs(squared.coef_ - W.T).max()
    assert err_huber < 0.1
    assert err_huber < 0.2 * err_squared


# ============================================================== penalty_factor
@converged
@pytest.mark.parametrize("penalty", ["l1", "l21", "sparse_group"])
@pytest.mark.parametrize("loss,factors", [("squared", "zeros"),
                                          ("squared", "spread"),
                                          ("logistic", "spread")])
@pytest.mark.parametrize("layout", ["shared", "stacked"])
@pytest.mark.parametrize("fit_intercept,weighted", INTERCEPT_WEIGHTS)
def test_penalty_factor_matches_cvxpy(penalty, loss, factors, layout,
                                      fit_intercept, weighted):
    case = Case(layout=layout, weighted=weighted, fit_intercept=fit_intercept,
                loss=loss, penalty=penalty, factors=factors, l1_share=0.3,
                l1_ratio=0.6 if weighted else 1.0)
    model = case.fit("auto", "csr" if weighted else "dense")
    _assert_matches_reference(model, case)
    if factors == "zeros":  # unpenalized features are never thresholded
        assert np.all(model.coef_[:, ~_penalized_rows(case)] != 0)


@converged
@pytest.mark.parametrize("factors", ["zeros", "spread"])
@pytest.mark.parametrize("layout", ["shared", "stacked"])
def test_penalty_factor_l2(factors, layout):
    """l2 is row separable too: ``sum_j f_j ||W_j||^2 / 2``."""
    case = Case(layout=layout, weighted=True, penalty="l2", factors=factors,
                level=0.1)
    _assert_matches_reference(case.fit(), case)


@converged
@pytest.mark.parametrize("penalty", ["l1", "l21", "sparse_group"])
@pytest.mark.parametrize("loss,factors", [("squared", "zeros"),
                                          ("squared", "spread"),
                                          ("logistic", "spread")])
@pytest.mark.parametrize("layout", ["shared", "stacked"])
def test_penalty_factor_alpha_max(penalty, loss, factors, layout):
    """Rows with ``f_j = 0`` are ignored (and fitted first); the others'
    dual norms are divided by ``f_j``."""
    _check_alpha_max(Case(layout=layout, weighted=layout == "stacked",
                          loss=loss, penalty=penalty, factors=factors,
                          l1_share=0.3))


@converged
@pytest.mark.parametrize("penalty", ["l1", "l21"])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_penalty_factor_is_column_rescaling_sklearn(penalty, fit_intercept):
    """``f_j N_j(w_j)`` with ``l1_ratio=1``: substituting ``v_j = f_j w_j``
    gives the plain penalty on the columns ``X_j / f_j``, i.e.
    scikit-learn's Lasso (per task) / MultiTaskLasso there, scaled back."""
    case = Case(penalty=penalty, factors="spread", fit_intercept=fit_intercept)
    data, f, alpha = case.data, case.factor, case.alpha
    model = MultiTaskRegressor(penalty=penalty, alpha=alpha, penalty_factor=f,
                               fit_intercept=fit_intercept, tol=1e-14,
                               max_iter=MAX_ITER).fit(data.X, data.y)
    Xs = data.X / f
    if penalty == "l21":
        ref = MultiTaskLasso(alpha=alpha, fit_intercept=fit_intercept,
                             **SK_TOL).fit(Xs, data.y)
        coef, intercept = ref.coef_, np.broadcast_to(ref.intercept_, (T,))
    else:
        fits = [Lasso(alpha=alpha, fit_intercept=fit_intercept, **SK_TOL).fit(
            Xs, data.y[:, t]) for t in range(T)]
        coef = np.array([m.coef_ for m in fits])
        intercept = np.array([m.intercept_ for m in fits], float)
    coef = coef / f
    assert 0 < np.count_nonzero(coef) < coef.size
    atol = 1e-6 * _scale(coef)
    np.testing.assert_allclose(model.coef_, coef, atol=atol)
    np.testing.assert_allclose(model.intercept_, intercept, atol=atol)


@converged
@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_penalty_factor_sparse_group_is_column_rescaling(loss):
    """The same substitution for sparse_group (homogeneous of degree 1 per
    row), against the package's own sparse_group without factors."""
    case = Case(loss=loss, penalty="sparse_group", l1_share=0.3,
                factors="spread", weighted=True)
    f = case.factor
    data = case.data
    model = case.fit()
    plain = case._replace(factors=None).estimator(alpha=case.alpha)
    plain.fit(data.X / f, data.y, sample_weight=data.s)
    np.testing.assert_allclose(model.coef_, plain.coef_ / f,
                               atol=1e-6 * _scale(model.coef_))
    np.testing.assert_allclose(model.intercept_, plain.intercept_,
                               atol=1e-6 * _scale(model.coef_))


@converged
@pytest.mark.parametrize("penalty", ["l1", "l21", "sparse_group", "l2"])
def test_penalty_factor_is_not_rescaled(penalty):
    """A uniform factor c multiplies the penalty (glmnet would rescale the
    factors to sum to d): the model of ``alpha * c`` without factors."""
    case = Case(penalty=penalty, l1_ratio=0.6, weighted=True, level=0.1
                if penalty == "l2" else 0.3)
    c = 2.5
    uniform = case.fit(alpha=case.alpha, penalty_factor=np.full(D, c))
    scaled = case.fit(alpha=c * case.alpha)
    np.testing.assert_allclose(uniform.coef_, scaled.coef_,
                               atol=1e-6 * _scale(scaled.coef_))
    _assert_matches_reference(scaled, case, alpha=c * case.alpha)


# ============================================================== positive
@converged
@pytest.mark.parametrize("penalty", ["l1", "l21", "l2", "sparse_group"])
@pytest.mark.parametrize("loss", ["squared", "logistic"])
@pytest.mark.parametrize("layout", ["shared", "stacked"])
@pytest.mark.parametrize("fit_intercept,weighted", INTERCEPT_WEIGHTS)
def test_positive_matches_cvxpy(penalty, loss, layout, fit_intercept, weighted):
    case = Case(layout=layout, weighted=weighted, fit_intercept=fit_intercept,
                loss=loss, penalty=penalty, positive=True, l1_share=0.3,
                l1_ratio=0.7 if weighted else 1.0,
                level=0.02 if penalty == "l2" else 0.2)
    model = case.fit("auto", "csr" if fit_intercept == weighted else "dense")
    _assert_matches_reference(model, case)
    # the constraint binds: the unconstrained optimum has negative entries
    W_free, _ = _reference_solution(case._replace(positive=False), case.alpha)
    assert W_free.min() < -1e-3


@converged
@pytest.mark.parametrize("l1_ratio", [1.0, 0.5])
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("fmt", ["dense", "csr"])
def test_positive_l1_is_sklearn_positive_lasso(l1_ratio, fit_intercept, fmt):
    """Shared layout, no weights: each task is ``Lasso(positive=True)``
    (``ElasticNet(positive=True)`` with a ridge part)."""
    data = _data("shared", "regression", False)
    alpha = 0.02
    model = MultiTaskRegressor(penalty="l1", alpha=alpha, l1_ratio=l1_ratio,
                               positive=True, fit_intercept=fit_intercept,
                               tol=1e-14, max_iter=MAX_ITER)
    model.fit(_format(data.X, fmt), data.y)
    for t in range(T):
        ref = _sk_linear(l1_ratio, alpha, fit_intercept, positive=True).fit(
            data.X, data.y[:, t])
        assert np.any(ref.coef_ == 0) and np.any(ref.coef_ > 0)
        np.testing.assert_allclose(model.coef_[t], ref.coef_,
                                   atol=1e-6 * _scale(ref.coef_))
        np.testing.assert_allclose(model.intercept_[t], ref.intercept_,
                                   atol=1e-6 * _scale(ref.coef_))


@converged
@pytest.mark.parametrize("penalty", ["l1", "l21", "sparse_group"])
@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_positive_alpha_max(penalty, loss):
    """Only the positive part of the negative gradient counts."""
    _check_alpha_max(Case(weighted=True, loss=loss, penalty=penalty,
                          positive=True, l1_share=0.3))


# ============================================================== combined
@converged
@pytest.mark.parametrize("loss,factors", [
    ("squared", "spread"), ("squared", "zeros"), ("huber", "spread"),
    ("logistic", "spread")])
@pytest.mark.parametrize("layout", ["shared", "stacked"])
def test_all_extensions_together(loss, factors, layout):
    """sparse_group + factors + positive, both layouts, weights: fit, the
    path and CV's refit.  Zero factors (unpenalized features, squared loss
    only) go without positive: unpenalized features are fitted unconstrained
    (both combinations are errors, see INVALID)."""
    positive = factors != "zeros"
    case = Case(layout=layout, weighted=True, loss=loss, delta=0.3,
                penalty="sparse_group", l1_share=0.3, l1_ratio=0.8,
                factors=factors, positive=positive)
    _assert_matches_reference(case.fit(), case)

    data = case.data
    kw = dict(penalty="sparse_group", l1_ratio=0.8, l1_share=0.3,
              penalty_factor=case.factor, positive=positive, loss=loss,
              task_col=data.task_col, sample_weight=data.s,
              task_weights=data.omega, tol=TOL[loss], max_iter=MAX_ITER)
    if loss == "huber":
        kw["delta"] = case.delta
    alphas, coefs, intercepts, gaps, _ = regularization_path(
        data.X, data.y, n_alphas=4, eps=0.1, **kw)
    np.testing.assert_allclose(alphas[0], case.alpha_max(), rtol=1e-6)
    rows = _penalized_rows(case)
    np.testing.assert_array_equal(coefs[:, rows, 0], 0.0)
    for k in (1, 3):
        W, b = _reference_solution(case, float(alphas[k]))
        atol = 1e-6 * _scale(W)
        np.testing.assert_allclose(coefs[..., k], W.T, atol=atol)
        np.testing.assert_allclose(intercepts[:, k], b, atol=atol)

    cv_kw = dict(penalty="sparse_group", l1_ratio=0.8, l1_share=0.3,
                 penalty_factor=case.factor, positive=positive,
                 task_col=data.task_col, task_weights=data.omega, alphas=4,
                 eps=0.1, cv=3, tol=TOL[loss], max_iter=MAX_ITER)
    if loss == "logistic":
        cv = MultiTaskClassifierCV(**cv_kw)
    else:
        cv = MultiTaskRegressorCV(loss=loss, **cv_kw,
                                  **({"delta": case.delta} if loss == "huber"
                                     else {}))
    cv.fit(data.X, data.y, sample_weight=data.s)
    np.testing.assert_allclose(cv.alphas_.ravel()[0], case.alpha_max(), rtol=1e-6)
    _assert_matches_reference(cv, case, alpha=float(cv.alpha_))


# ============================================================== validation
def _small():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 4))
    return X, X @ rng.standard_normal((4, 2)) + rng.standard_normal((20, 2))


INVALID = [
    # (estimator class, parameters, word the message must contain)
    (MultiTaskRegressor, dict(penalty="trace", positive=True), "positive"),
    (MultiTaskClassifier, dict(penalty="trace", positive=True), "positive"),
    (MultiTaskRegressor, dict(penalty="trace", penalty_factor=np.ones(4)),
     "penalty_factor"),
    (MultiTaskRegressor, dict(penalty="l1", penalty_factor=np.ones(5)),
     "penalty_factor"),
    (MultiTaskRegressor, dict(penalty="l21", penalty_factor=np.ones(3)),
     "penalty_factor"),
    (MultiTaskRegressor, dict(penalty="l1", penalty_factor=[1.0, -1.0, 1.0, 1.0]),
     "penalty_factor"),
    (MultiTaskRegressor,
     dict(penalty="sparse_group", penalty_factor=[1.0, np.nan, 1.0, 1.0]),
     "penalty_factor"),
    (MultiTaskClassifier, dict(penalty="l21", penalty_factor=np.ones(5)),
     "penalty_factor"),
    (MultiTaskRegressor, dict(penalty="sparse_group", l1_share=-0.1), "l1_share"),
    (MultiTaskRegressor, dict(penalty="sparse_group", l1_share=1.5), "l1_share"),
    (MultiTaskClassifier, dict(penalty="sparse_group", l1_share=2.0), "l1_share"),
    (MultiTaskRegressor, dict(loss="huber", delta=0.0), "delta"),
    (MultiTaskRegressor, dict(loss="huber", delta=-1.0), "delta"),
    (MultiTaskRegressor, dict(loss="hinge"), "loss"),
    (MultiTaskRegressor, dict(loss="logistic"), "loss"),
    (MultiTaskClassifier, dict(solver="bcd"), "bcd"),
    (MultiTaskClassifier, dict(penalty="sparse_group", solver="bcd"), "bcd"),
    # unpenalized features: partialled out in closed form, which needs the
    # squared loss and no sign constraint
    (MultiTaskRegressor, dict(penalty="l1", penalty_factor=[0.0, 1.0, 1.0, 1.0],
                              positive=True), "penalty_factor"),
    (MultiTaskRegressor, dict(penalty="l21", penalty_factor=[0.0, 1.0, 1.0, 1.0],
                              loss="huber"), "penalty_factor"),
    (MultiTaskClassifier, dict(penalty="l1", penalty_factor=[0.0, 1.0, 1.0, 1.0]),
     "penalty_factor"),
    (MultiTaskRegressor, dict(penalty="l1", penalty_factor=np.zeros(4)),
     "penalty_factor"),
]


def _id(cls, params):
    shown = ",".join(f"{k}={np.asarray(v).tolist() if isinstance(v, np.ndarray) else v}"
                     for k, v in params.items())
    return f"{cls.__name__}({shown})"


@pytest.mark.parametrize("cls,params,word", INVALID,
                         ids=[_id(c, p) for c, p, _ in INVALID])
def test_invalid_combination_raises(cls, params, word):
    X, Y = _small()
    y = (Y > 0).astype(int) if cls is MultiTaskClassifier else Y
    with pytest.raises(ValueError, match=word):
        cls(**params).fit(X, y)


@pytest.mark.parametrize("params,word", [
    (dict(penalty="trace", positive=True), "positive"),
    (dict(penalty="trace", penalty_factor=np.ones(4)), "penalty_factor"),
    (dict(penalty="l1", penalty_factor=np.ones(3)), "penalty_factor"),
    (dict(penalty="l1", penalty_factor=[1.0, -2.0, 1.0, 1.0]), "penalty_factor"),
    (dict(penalty="sparse_group", l1_share=1.5), "l1_share"),
    (dict(penalty="l1", loss="huber", delta=0.0), "delta"),
    (dict(penalty="l1", loss="hinge"), "loss"),
])
def test_invalid_combination_raises_in_functions(params, word):
    X, Y = _small()
    with pytest.raises(ValueError, match=word):
        alpha_max(X, Y, **params)
    with pytest.raises(ValueError, match=word):
        regularization_path(X, Y, n_alphas=3, **params)


def test_invalid_combination_raises_in_cv():
    X, Y = _small()
    with pytest.raises(ValueError, match="positive"):
        MultiTaskRegressorCV(penalty="trace", positive=True, alphas=3,
                             cv=2).fit(X, Y)
    with pytest.raises(ValueError, match="penalty_factor"):
        MultiTaskRegressorCV(penalty="l1", penalty_factor=np.ones(7), alphas=3,
                             cv=2).fit(X, Y)
    with pytest.raises(ValueError, match="delta"):
        MultiTaskRegressorCV(loss="huber", delta=-1.0, alphas=3, cv=2).fit(X, Y)


def test_cv_checks_the_factors_length_before_using_them():
    X, Y = _small()
    for cv in (MultiTaskRegressorCV, MultiTaskClassifierCV):
        with pytest.raises(ValueError, match="has 6 entries but X has 4"):
            cv(penalty="l1", penalty_factor=[1, 1, 1, 1, 1, 0], alphas=3,
               cv=2).fit(X, Y if cv is MultiTaskRegressorCV else Y > 0)


def test_zero_factors_of_a_penalty_instance_act_as_the_parameter():
    """Zero factors held by a penalty instance (the estimator's own
    ``penalty_factor`` unset) leave their features unpenalized as the
    parameter's do: partialled out in fit and CV.  They reached the solvers:
    CV's grid started at inf (an all-zero model), fits reported gaps of 0.05
    to 0.9 and ran to max_iter, and losses without partialling out took
    them."""
    from mtlinear.penalties import L1, L21
    rng = np.random.default_rng(11)
    X = rng.standard_normal((120, 6))
    Y = (X[:, :3] @ rng.standard_normal((3, 3))
         + 0.5 * rng.standard_normal((120, 3)) + 1)
    factors = np.array([0.0, 1, 2, 0, 1.5, 0.8])
    for name, Penalty in (("l1", L1), ("l21", L21)):
        by_parameter = dict(penalty=name, penalty_factor=factors)
        by_instance = dict(penalty=Penalty(penalty_factor=factors))
        for solver in ("auto", "bcd", "fista"):
            fits = [MultiTaskRegressor(alpha=0.2, tol=1e-10, solver=solver,
                                       **kw).fit(X, Y)
                    for kw in (by_parameter, by_instance)]
            np.testing.assert_allclose(fits[1].coef_, fits[0].coef_, atol=1e-9)
            assert fits[1].dual_gap_ <= 1e-10 * np.var(Y) * 10
        cvs = [MultiTaskRegressorCV(alphas=5, cv=3, **kw).fit(X, Y)
               for kw in (by_parameter, by_instance)]
        np.testing.assert_array_equal(cvs[1].alphas_, cvs[0].alphas_)
        assert np.isfinite(cvs[1].alphas_).all()
        np.testing.assert_array_equal(cvs[1].coef_, cvs[0].coef_)
        assert cvs[1].alphas_[0] == pytest.approx(
            alpha_max(X, Y, **by_instance))
    with pytest.raises(ValueError, match="squared loss only"):
        MultiTaskRegressor(loss="huber", penalty=L1(penalty_factor=factors)
                           ).fit(X, Y)
    with pytest.raises(ValueError, match="leave different features unpenalized"):
        MultiTaskRegressorCV(penalty=[L1(penalty_factor=factors), "l21"],
                             alphas=3, cv=2).fit(X, Y)


# ============================================================== scikit-learn
def _expected_failed_checks(estimator):
    """The checks the package documents as expected to fail, by class."""
    try:
        from test_estimator_checks import EXPECTED_FAILED_CHECKS
    except ImportError:  # pragma: no cover
        EXPECTED_FAILED_CHECKS = {}
    return EXPECTED_FAILED_CHECKS.get(type(estimator).__name__, {})


def _extension_estimators():
    # (penalty_factor=None is the default estimator, checked in
    # test_estimator_checks)
    return [MultiTaskRegressor(penalty="sparse_group"),
            MultiTaskRegressor(loss="huber"),
            MultiTaskRegressor(positive=True),
            MultiTaskClassifier(penalty="sparse_group")]


try:  # a missing parameter fails one test below, not the module's collection
    EXTENSION_ESTIMATORS, CONSTRUCTION_ERROR = _extension_estimators(), None
except TypeError as exc:  # pragma: no cover
    EXTENSION_ESTIMATORS, CONSTRUCTION_ERROR = [], exc


def test_extension_estimators_construct():
    if CONSTRUCTION_ERROR is not None:
        raise CONSTRUCTION_ERROR
    assert len(EXTENSION_ESTIMATORS) == 4


@parametrize_with_checks(EXTENSION_ESTIMATORS,
                         expected_failed_checks=_expected_failed_checks)
def test_sklearn_compatible_with_extensions(estimator, check):
    check(estimator)
