"""The Poisson loss (``loss="poisson"``: counts, log link).

* the loss's formulas: Fenchel-Young at the dual point, the conjugate
  against a numerical supremum, the derivatives against differences;
* ``penalty="l2"`` against scikit-learn's ``PoissonRegressor`` (same
  objective: the half mean deviance plus ``alpha / 2 ||w||^2``), its
  predictions (means) and ``score`` (``D^2``);
* ``l21`` and ``trace`` against cvxpy (:mod:`_cvxpy_reference`, exponential
  cone, polished), with the optimality conditions recomputed, for every
  solver that applies; the reported duality gap bounds the suboptimality;
* the unbounded curvature: FISTA's step without a cap and the Newton line
  searches' certificate of decrease (:func:`accepts_step`);
* errors, the mixed model, the cross-validation score, ``alpha_max`` and
  the path.
"""
import functools
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import minimize_scalar
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import PoissonRegressor
from sklearn.metrics import d2_tweedie_score, mean_poisson_deviance, r2_score
from sklearn.model_selection import KFold

from mtlinear import (MultiTaskClassifier, MultiTaskEstimator, MultiTaskRegressor,
                      MultiTaskRegressorCV, alpha_max, regularization_path,
                      stack_tasks)
from mtlinear._newton_cg import accepts_step
from mtlinear.losses import make_loss

from _cvxpy_reference import (alpha_max_reference, kkt_violation, objective,
                              solve_reference)
from _reference import shared_tasks, stacked_tasks

converged = pytest.mark.filterwarnings(
    "error::sklearn.exceptions.ConvergenceWarning")

D, T = 5, 3
SIZES = (25, 40, 30)  # stacked layout: unequal tasks
TOL = 1e-14           # relative gap of the fits compared to 1e-6
SK = dict(tol=1e-10, max_iter=10000)


def _cvxpy():
    return pytest.importorskip("cvxpy")


# ============================================================== data
def _counts(rng, Z):
    return rng.poisson(np.exp(Z)).astype(float)


@functools.lru_cache(maxsize=None)
def _data(layout, weighted, seed=0):
    """``(X, y, s, task_col, tasks)``: counts from a sparse log-linear model
    with offsets of different sizes per task; ``tasks`` the reference's
    per-task ``(X_t, y_t, s_t)``."""
    rng = np.random.default_rng(seed)
    W = np.zeros((D, T))
    W[:3] = 0.5 * rng.standard_normal((3, T))
    offsets = np.array([1.0, 0.2, 2.0])
    if layout == "shared":
        X = rng.standard_normal((60, D))
        y = _counts(rng, X @ W + offsets)
        task_col = None
    else:
        X_list = [rng.standard_normal((m, D)) for m in SIZES]
        y_list = [_counts(rng, Xt @ W[:, t] + offsets[t])
                  for t, Xt in enumerate(X_list)]
        X, y = stack_tasks(X_list, y_list)
        task_col = -1
    s = rng.uniform(0.3, 2.0, len(y)) if weighted else None
    tasks = (shared_tasks(X, y, s) if layout == "shared"
             else stacked_tasks(X[:, :-1], y, X[:, -1], s))
    return X, y, s, task_col, tasks


def _fit(layout, weighted, fit_intercept, penalty, alpha, fmt="dense",
         **kw):
    X, y, s, task_col, _ = _data(layout, weighted)
    X = sp.csr_matrix(X) if fmt == "csr" else X
    params = dict(loss="poisson", penalty=penalty, alpha=alpha,
                  fit_intercept=fit_intercept, task_col=task_col, tol=TOL,
                  max_iter=100_000)
    params.update(kw)
    return MultiTaskRegressor(**params).fit(X, y, sample_weight=s)


def _scale(W):
    return max(np.abs(W).max(initial=0.0), 1.0)


# ============================================================== the loss
def test_loss_formulas():
    rng = np.random.default_rng(0)
    n = 40
    z = rng.uniform(-2.0, 2.0, n)
    y = rng.poisson(2.0, n).astype(float)
    y[:5] = 0.0  # the conjugate's boundary, xlogy
    v = rng.uniform(0.1, 1.0, n)
    loss = make_loss("poisson")
    # the value is the half deviance: zero at the saturated fit z = log y
    positive = y > 0
    assert loss.value(np.log(y[positive]), y[positive], v[positive]) == \
        pytest.approx(0.0, abs=1e-12)
    eps = 1e-6
    fd = np.array([(loss.value(z + eps * e, y, v) - loss.value(z - eps * e, y, v))
                   / (2 * eps) for e in np.eye(n)])
    np.testing.assert_allclose(fd, loss.derivative(z, y, v), atol=1e-8)
    fd = (loss.derivative(z + eps, y, v) - loss.derivative(z - eps, y, v)) / (2 * eps)
    np.testing.assert_allclose(fd, loss.second_derivative(z, y, v), atol=1e-7)
    D_, H = loss.derivatives(z, y, v)
    np.testing.assert_array_equal(D_, loss.derivative(z, y, v))
    np.testing.assert_array_equal(H, loss.second_derivative(z, y, v))
    # Fenchel-Young with equality at the dual point theta = -F'(z)
    theta = -loss.derivative(z, y, v)
    assert loss.value(z, y, v) - loss.dual_value(theta, y, v) + theta @ z == \
        pytest.approx(0.0, abs=1e-12)
    # the conjugate against a numerical supremum, sample by sample:
    # -f*(-t) = -sup_z (-t z - f(z)), at points inside the domain t <= v y
    for i in range(8):
        t = (theta[i] * rng.uniform(0.0, 1.0) if i % 2
             else v[i] * y[i] - rng.uniform(0.05, 1.0))

        def neg(z_, i=i, t=t):
            return -(-t * z_ - loss.value(np.array([z_]), y[i:i + 1], v[i:i + 1]))

        best = minimize_scalar(neg, bounds=(-30.0, 10.0), method="bounded",
                               options=dict(xatol=1e-12))
        assert loss.dual_value(np.array([t]), y[i:i + 1], v[i:i + 1]) == \
            pytest.approx(best.fun, abs=1e-9)
    # weak duality at any scaled dual point c theta, c in [0, 1]
    for c in (0.0, 0.3, 1.0):
        assert np.isfinite(loss.dual_value(c * theta, y, v))
        assert loss.dual_value(c * theta, y, v) - c * theta @ z <= \
            loss.value(z, y, v) + 1e-12


def test_null_intercept_is_log_weighted_mean():
    loss = make_loss("poisson")
    y = np.array([0.0, 1.0, 3.0, 2.0, 0.0, 7.0])
    v = np.array([0.5, 1.0, 0.2, 0.3, 0.3, 0.4])
    task = np.array([0, 0, 0, 1, 1, 1])

    def task_sum(a):
        return np.bincount(task, weights=a, minlength=2)

    b = loss.null_intercept(y, v, task_sum, lambda b: b[task])
    expected = [np.log(np.average(y[task == t], weights=v[task == t]))
                for t in range(2)]
    np.testing.assert_allclose(b, expected, rtol=1e-14)
    with pytest.raises(ValueError, match=r"position\(s\) \[1\]"):
        loss.null_intercept(np.array([0, 1, 3, 0, 0, 0.0]), v, task_sum,
                            lambda b: b[task])


# ============================================================== scikit-learn
def _sklearn_poisson(X, y, s, alpha, fit_intercept):
    return PoissonRegressor(alpha=alpha, fit_intercept=fit_intercept, **SK).fit(
        X, y, sample_weight=s)


@converged
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("solver", ["auto", "fista"])
def test_l2_one_task_is_sklearn_poisson_regressor(fit_intercept, weighted,
                                                  solver):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((80, D))
    y = _counts(rng, X @ (0.4 * rng.standard_normal(D)) + 0.5)
    s = rng.uniform(0.2, 2.0, 80) if weighted else None
    alpha = 0.05
    ours = MultiTaskRegressor(loss="poisson", penalty="l2", alpha=alpha,
                              fit_intercept=fit_intercept, tol=TOL,
                              max_iter=100_000, solver=solver).fit(X, y, s)
    ref = _sklearn_poisson(X, y, s, alpha, fit_intercept)
    np.testing.assert_allclose(ours.coef_[0], ref.coef_, rtol=0, atol=1e-6)
    np.testing.assert_allclose(ours.intercept_[0], ref.intercept_, rtol=0,
                               atol=1e-6)
    # predict returns the means, score is D^2, as PoissonRegressor's
    assert ours.predict(X).shape == (80,)
    np.testing.assert_allclose(ours.predict(X), ref.predict(X), rtol=1e-5)
    assert ours.score(X, y, s) == pytest.approx(ref.score(X, y, s), abs=1e-7)
    assert ours.score(X, y, s) == pytest.approx(
        d2_tweedie_score(y, ref.predict(X), power=1, sample_weight=s), abs=1e-7)


@converged
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("fmt", ["dense", "csr"])
def test_l2_shared_layout_is_sklearn_per_task(fit_intercept, fmt):
    X, Y, s, _, _ = _data("shared", True)
    alpha = 0.02
    model = _fit("shared", True, fit_intercept, "l2", alpha, fmt)
    for t in range(T):
        ref = _sklearn_poisson(X, Y[:, t], s, alpha, fit_intercept)
        np.testing.assert_allclose(model.coef_[t], ref.coef_, rtol=0, atol=1e-6)
        np.testing.assert_allclose(model.intercept_[t], ref.intercept_, rtol=0,
                                   atol=1e-6)
    P = model.predict(X)
    assert P.shape == (60, T) and np.all(P > 0)
    np.testing.assert_allclose(np.log(P), X @ model.coef_.T + model.intercept_,
                               rtol=1e-12, atol=1e-12)
    expected = np.mean([d2_tweedie_score(Y[:, t], P[:, t], power=1,
                                         sample_weight=s) for t in range(T)])
    assert model.score(X, Y, s) == pytest.approx(expected, rel=1e-12)


def test_reference_poisson_is_sklearn():
    # the cvxpy reference itself, checked without mtlinear
    _cvxpy()
    rng = np.random.default_rng(3)
    X = rng.standard_normal((50, 4))
    y = _counts(rng, X @ (0.3 * rng.standard_normal(4)) + 1.0)
    s = rng.uniform(0.3, 2.0, 50)
    W, b, _ = solve_reference([(X, y, s)], loss="poisson", penalty="l2",
                              alpha=0.03)
    ref = _sklearn_poisson(X, y, s, 0.03, True)
    np.testing.assert_allclose(W[:, 0], ref.coef_, atol=1e-7)
    np.testing.assert_allclose(b[0], ref.intercept_, atol=1e-7)


# ============================================================== cvxpy
@functools.lru_cache(maxsize=None)
def _reference(layout, weighted, fit_intercept, penalty, alpha):
    _cvxpy()
    tasks = _data(layout, weighted)[-1]
    W, b, value = solve_reference(tasks, loss="poisson", penalty=penalty,
                                  alpha=alpha, fit_intercept=fit_intercept)
    return W, b, value


def _alpha(layout, weighted, fit_intercept, penalty, level=0.3):
    _cvxpy()
    tasks = _data(layout, weighted)[-1]
    return level * alpha_max_reference(tasks, loss="poisson", penalty=penalty,
                                       fit_intercept=fit_intercept)


CASES = [("shared", False, True), ("shared", True, False),
         ("stacked", True, True), ("stacked", False, False)]


@converged
@pytest.mark.parametrize("penalty,solver", [("l21", "auto"), ("l21", "fista"),
                                            ("trace", "auto")])
@pytest.mark.parametrize("layout,weighted,fit_intercept", CASES)
def test_l21_and_trace_match_cvxpy(penalty, solver, layout, weighted,
                                   fit_intercept):
    alpha = _alpha(layout, weighted, fit_intercept, penalty)
    W, b, _ = _reference(layout, weighted, fit_intercept, penalty, alpha)
    assert np.count_nonzero(np.linalg.norm(W, axis=1) > 1e-8) >= 2
    model = _fit(layout, weighted, fit_intercept, penalty, alpha, solver=solver)
    atol = 1e-6 * _scale(W)
    np.testing.assert_allclose(model.coef_, W.T, rtol=0, atol=atol)
    np.testing.assert_allclose(model.intercept_, b, rtol=0, atol=atol)
    tasks = _data(layout, weighted)[-1]
    violation = kkt_violation(tasks, model.coef_.T, model.intercept_,
                              loss="poisson", penalty=penalty, alpha=alpha,
                              fit_intercept=fit_intercept)
    assert violation <= 1e-6
    if penalty == "l21":  # exact zeros where cvxpy's rows vanish
        zero = np.linalg.norm(W, axis=1) == 0
        np.testing.assert_array_equal(model.coef_[:, zero], 0.0)


@pytest.mark.parametrize("penalty,solver", [("l21", "prox_newton"),
                                            ("l21", "fista"),
                                            ("trace", "fista")])
@pytest.mark.parametrize("layout,weighted,fit_intercept", CASES[:3])
def test_dual_gap_bounds_the_suboptimality(penalty, solver, layout, weighted,
                                           fit_intercept):
    alpha = _alpha(layout, weighted, fit_intercept, penalty)
    _, _, best = _reference(layout, weighted, fit_intercept, penalty, alpha)
    tasks = _data(layout, weighted)[-1]
    gaps = []
    for max_iter in (1, 2, 5, 20):  # stopped early: a gap to certify
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model = _fit(layout, weighted, fit_intercept, penalty, alpha,
                         solver=solver, max_iter=max_iter)
        value = objective(tasks, model.coef_.T, model.intercept_,
                          loss="poisson", penalty=penalty, alpha=alpha,
                          fit_intercept=fit_intercept)
        assert model.dual_gap_ >= -1e-13  # non-negative up to rounding
        assert value - best <= model.dual_gap_ + 1e-12
        gaps.append(model.dual_gap_)
    assert max(gaps) > 1e-6  # the bound was tested away from the optimum


# ============================================================== the solvers
@converged
@pytest.mark.parametrize("solver", ["prox_newton", "fista"])
def test_large_counts_far_from_the_null_model(solver):
    # means from 1 to ~2e4: the curvature at the solution is thousands of
    # times the null model's (FISTA doubles its step's L without a cap), and
    # full Newton steps from W = 0 overshoot (the line search's certificate)
    rng = np.random.default_rng(4)
    X = rng.standard_normal((100, 4))
    Y = _counts(rng, X @ np.array([[2.0, 0.5], [1.0, -1.5], [0.0, 0.3],
                                   [-0.5, 0.0]]) + [3.0, 1.0])
    ref = [_sklearn_poisson(X, Y[:, t], None, 0.01, True) for t in range(2)]
    model = MultiTaskRegressor(loss="poisson", penalty="l2", alpha=0.01,
                               solver=solver, tol=TOL,
                               max_iter=100_000).fit(X, Y)
    for t in range(2):
        np.testing.assert_allclose(model.coef_[t], ref[t].coef_, atol=1e-6)
        np.testing.assert_allclose(model.intercept_[t], ref[t].intercept_,
                                   atol=1e-6)


def test_fista_below_rounding_stops_doubling():
    # a target the gap cannot reach (tol = 0): FISTA runs its iterations
    # with a finite step and stays at the optimum
    alpha = _alpha("shared", False, True, "trace")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = _fit("shared", False, True, "trace", alpha, solver="fista",
                     tol=0.0, max_iter=3000)
    W, b, _ = _reference("shared", False, True, "trace", alpha)
    np.testing.assert_allclose(model.coef_, W.T, atol=1e-6 * _scale(W))
    assert abs(model.dual_gap_) < 1e-12


def test_fista_step_is_finite_when_rounding_fails_the_curvature_test():
    # At the optimum (W = 0 above alpha_max, the best intercepts) with the
    # extrapolated state off by 1e-9 (rounding of an extrapolation), the
    # curvature test fails at every L: without a cap, L must stop doubling
    # where the test holds in exact arithmetic (the datafit's bound on the
    # segment), not run to inf (a step of 0).
    from mtlinear._datafit import SampleDatafit
    from mtlinear._fista import _Iterate, _steps
    from mtlinear._task_data import build_problem
    from mtlinear.penalties import make_penalty
    X, Y, _, _, _ = _data("shared", False)
    problem = build_problem(X, Y, fit_intercept=True, center_targets=False)
    datafit = SampleDatafit(make_loss("poisson"), problem)
    penalty = make_penalty("l21", 10 * alpha_max(X, Y, loss="poisson"))
    L, cap = datafit.step_bounds()
    assert cap == np.inf and 0 < L < np.inf
    W, b = np.zeros((D, T)), datafit.initial_intercept()
    S = datafit.affine_state(W, b)
    it = _Iterate(W, b, S, L, cap, datafit)
    it.Sy = S + 1e-9
    bound = datafit.curvature_bound(S, it.Sy)
    _steps(datafit, penalty, it, 1)
    assert np.isfinite(it.L)
    assert it.L <= 2.01 * bound / datafit.curvature_factor
    np.testing.assert_array_equal(it.W, 0.0)
    np.testing.assert_allclose(it.b, b, atol=1e-8)


def test_line_search_certifies_a_decrease_without_curvature_bound():
    # P'(u) rises at once from -1 to 0.4 and stays there: the trapezoid rule
    # predicts a decrease at s = 1, but P(1) - P(0) = -0.01 + 0.99 * 0.4 > 0
    def slope(u):
        return -1.0 if u < 0.01 else 0.4

    assert accepts_step(slope, -1.0, 1.0, bounded=True)  # the old rule
    assert not accepts_step(slope, -1.0, 1.0, bounded=False)
    assert accepts_step(slope, -1.0, 0.005, bounded=False)  # P' <= 0 there
    # a quadratic along the line: the full Newton step passes either way
    assert accepts_step(lambda u: u - 1.0, -1.0, 1.0, bounded=False)


@pytest.mark.parametrize("bounded", [True, False])
def test_each_task_backtracks_on_its_own(bounded):
    """``backtrack_tasks`` gives every task the step the scalar line search
    gives it alone: a full step, a step shortened by halvings, none (no
    descent), the unbounded-curvature certificate of the first example."""
    from mtlinear._newton_cg import backtrack, backtrack_tasks
    lines = [lambda u: u - 1.0,            # minimum at the full step
             lambda u: 8.0 * u - 1.0,      # minimum at 1/8
             lambda u: 1.0 + u,            # no descent: P'(0) > 0
             lambda u: -1.0 if u < 0.01 else 0.4]

    def slopes(t):
        return np.array([line(u) for line, u in zip(lines, t)])
    start = slopes(np.zeros(len(lines)))
    alone = [backtrack(line, p, bounded, 30) if p < 0 else 0.0
             for line, p in zip(lines, start)]
    np.testing.assert_array_equal(backtrack_tasks(slopes, start, bounded, 30),
                                  alone)
    assert alone[:3] == [1.0, 0.125, 0.0]


# ============================================================== errors
def test_errors():
    X, Y, _, _, _ = _data("shared", False)
    bad = Y.copy()
    bad[3, 1] = -1.0
    with pytest.raises(ValueError, match="non-negative targets.*task 1"):
        MultiTaskRegressor(loss="poisson").fit(X, bad)
    with pytest.raises(ValueError, match="non-negative"):
        alpha_max(X, bad, loss="poisson")
    with pytest.raises(ValueError, match="non-negative"):
        regularization_path(X, bad, loss="poisson", n_alphas=3)
    zero = Y.copy()
    zero[:, 2] = 0.0
    with pytest.raises(ValueError, match="task 2 has only zeros"):
        MultiTaskRegressor(loss="poisson").fit(X, zero)
    with pytest.raises(ValueError, match="task 2 has only zeros"):
        MultiTaskEstimator(loss=["squared", "squared", "poisson"]).fit(X, zero)
    # no intercept: the all-zero task is a proper problem (a ridge keeps it finite)
    model = MultiTaskRegressor(loss="poisson", penalty="l2", alpha=0.1,
                               fit_intercept=False).fit(X, zero)
    assert np.all(np.isfinite(model.coef_))
    assert model.predict(X)[:, 2].mean() < 1  # below the mean at W = 0
    # stacked: the task is named by its label
    Xs, ys, _, _, _ = _data("stacked", False)
    ys = ys.copy()
    ys[Xs[:, -1] == 1] = 0.0
    with pytest.raises(ValueError, match="task 1 has only zeros"):
        MultiTaskRegressor(loss="poisson", task_col=-1).fit(Xs, ys)
    # positive targets on zero-weight samples only: the loss's own check
    s = np.ones(len(Y))
    s[Y[:, 0] > 0] = 0.0
    with pytest.raises(ValueError, match=r"position\(s\) \[0\]"):
        MultiTaskRegressor(loss="poisson").fit(X, Y, sample_weight=s)
    # not a classification loss; the classifier has no loss parameter
    with pytest.raises(TypeError):
        MultiTaskClassifier(loss="poisson")
    with pytest.raises(ValueError, match="loss must be one of"):
        MultiTaskRegressor(loss="poison").fit(X, Y)
    # solvers for the squared loss only refuse it by name
    for solver in ("bcd", "ridge"):
        with pytest.raises(ValueError, match="does not apply to loss='poisson'"):
            MultiTaskRegressor(loss="poisson", penalty="l2",
                               solver=solver).fit(X, Y)


# ============================================================== estimators
@converged
def test_mixed_model_equals_the_separate_fits():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((120, D))
    Z = X @ (0.5 * rng.standard_normal((D, 3)))
    Y = np.column_stack([Z[:, 0] + rng.standard_normal(120),
                         _counts(rng, Z[:, 1] + 0.5),
                         (Z[:, 2] + rng.logistic(size=120) > 0).astype(float)])
    kw = dict(penalty="l2", alpha=0.02, tol=1e-13, max_iter=100_000)
    model = MultiTaskEstimator(loss=["squared", "poisson", "logistic"],
                               **kw).fit(X, Y)
    parts = [MultiTaskRegressor(loss="squared", **kw).fit(X, Y[:, 0]),
             MultiTaskRegressor(loss="poisson", **kw).fit(X, Y[:, 1]),
             MultiTaskClassifier(**kw).fit(X, Y[:, 2])]
    np.testing.assert_allclose(model.coef_, np.vstack([p.coef_ for p in parts]),
                               rtol=0, atol=1e-6)
    np.testing.assert_allclose(model.intercept_,
                               np.concatenate([p.intercept_ for p in parts]),
                               rtol=0, atol=1e-6)
    P = model.predict(X)
    np.testing.assert_allclose(P[:, 1], parts[1].predict(X), rtol=1e-6)
    np.testing.assert_array_equal(P[:, 2], parts[2].predict(X))
    np.testing.assert_allclose(model.decision_function(X)[:, 1],
                               np.log(parts[1].predict(X)), rtol=1e-6)
    expected = np.mean([r2_score(Y[:, 0], P[:, 0]),
                        d2_tweedie_score(Y[:, 1], P[:, 1], power=1),
                        np.mean(Y[:, 2] == P[:, 2])])
    assert model.score(X, Y) == pytest.approx(expected, rel=1e-12)
    # a dict of losses, and the stacked layout with a loss per task label
    model = MultiTaskEstimator(loss={0: "squared", 1: "poisson",
                                     2: "logistic"}, **kw).fit(X, Y)
    np.testing.assert_allclose(model.coef_[1], parts[1].coef_[0], atol=1e-6)


def test_cv_scores_the_held_out_poisson_deviance():
    X, Y, _, _, _ = _data("shared", False)
    alphas = [0.2, 0.05, 0.01]
    folds = KFold(3, shuffle=True, random_state=0)
    cv = MultiTaskRegressorCV(loss="poisson", penalty="l21", alphas=alphas,
                              cv=folds, tol=1e-10).fit(X, Y)
    assert not hasattr(cv, "mse_path_")
    for f, (train, test) in enumerate(folds.split(X)):
        for k, alpha in enumerate(alphas):
            fold = MultiTaskRegressor(loss="poisson", penalty="l21", alpha=alpha,
                                      tol=1e-10).fit(X[train], Y[train])
            P = fold.predict(X[test])
            expected = np.mean([mean_poisson_deviance(Y[test, t], P[:, t])
                                for t in range(T)])
            assert cv.score_path_[k, f] == pytest.approx(-expected, rel=1e-6)
    assert cv.alpha_ == alphas[int(np.argmax(cv.score_path_.mean(axis=1)))]
    # a ridge's automatic grid starts from the curvature at the null model
    ridge = MultiTaskRegressorCV(loss="poisson", penalty="l2", alphas=4,
                                 cv=3).fit(X, Y)
    assert np.all(np.isfinite(ridge.alphas_)) and ridge.alphas_[0] > 0


@pytest.mark.parametrize("penalty", ["l21", "trace", "l1"])
def test_alpha_max_and_the_path(penalty):
    X, y, s, task_col, tasks = _data("stacked", True)
    kw = dict(loss="poisson", penalty=penalty, task_col=task_col,
              sample_weight=s)
    top = alpha_max(X, y, **kw)
    _cvxpy()
    np.testing.assert_allclose(
        top, alpha_max_reference(tasks, loss="poisson", penalty=penalty),
        rtol=1e-6)
    alphas, coefs, intercepts, gaps, _ = regularization_path(
        X, y, n_alphas=4, eps=0.1, tol=1e-8, **kw)
    assert alphas[0] == pytest.approx(top)
    np.testing.assert_array_equal(coefs[..., 0], 0.0)
    assert coefs[..., -1].any()
    # at alpha_max the intercepts are the log weighted means
    expected = [np.log(np.average(yt, weights=st)) for _, yt, st in tasks]
    np.testing.assert_allclose(intercepts[:, 0], expected, rtol=1e-10)
    assert np.all(gaps >= -1e-13)
