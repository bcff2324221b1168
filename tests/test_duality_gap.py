"""The duality gap certifies every fit, recomputed here from scratch.

From ``coef_`` and ``intercept_`` alone, :mod:`_reference` evaluates the
objective of the user guide, builds a dual point from the weighted residual
(scaled into the dual-norm ball when there is no ridge part) and evaluates the
dual objective.  Their difference must be at most ``tol * P(0)``, the relative
stopping rule of ``mtlinear._solve`` (``P(0)``: the objective at ``W = 0`` with
the best intercepts).
"""
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning

from mtlinear import MultiTaskRegressor, alpha_max, stack_tasks

from _reference import (dual_norm, duality_gap, null_objective, shared_tasks,
                        stacked_tasks)

PENALTIES = [("l1", 1.0), ("l1", 0.5), ("l2", 1.0), ("l21", 1.0), ("l21", 0.5),
             ("trace", 1.0), ("trace", 0.5)]
# rows > features (sufficient statistics) and rows < features (samples)
SHAPES = {"n>d": (12, 6), "n<d": (10, 40)}


def _data(layout, shape, seed=0):
    """``(X, y, s, task_col, tasks)``: the input and its per-task reference.

    The shared layout has ``3 * rows`` samples, stacked tasks ``rows`` to
    ``rows + 15`` each.
    """
    rows, d = SHAPES[shape]
    rng = np.random.default_rng(seed)
    T = 4
    W = np.zeros((d, T))
    W[:3] = rng.standard_normal((3, T))
    if layout == "shared":
        X = rng.standard_normal((rows * 3, d))
        Y = X @ W + 1.0 + 0.5 * rng.standard_normal((len(X), T))
        s = rng.uniform(0.5, 2.0, len(X))
        return X, Y, s, None, shared_tasks(X, Y, s)
    X_list = [rng.standard_normal((rows + 5 * t, d)) for t in range(T)]
    y_list = [Xt @ W[:, t] + t + 0.5 * rng.standard_normal(len(Xt))
              for t, Xt in enumerate(X_list)]
    X, y = stack_tasks(X_list, y_list)
    s = rng.uniform(0.5, 2.0, len(y))
    return X, y, s, -1, stacked_tasks(X[:, :-1], y, X[:, -1], s)


def _independent_alpha_max(tasks, penalty, l1_ratio, fit_intercept):
    """``N°(-grad F(0, b*)) / r`` with the gradient written out per task."""
    U = np.column_stack([
        Xt.T @ (st * (yt - (np.average(yt, weights=st) if fit_intercept else 0.0)))
        / st.sum() for Xt, yt, st in tasks])
    return dual_norm(U, penalty) / l1_ratio


@pytest.mark.parametrize("penalty,l1_ratio", PENALTIES)
@pytest.mark.parametrize("layout", ["shared", "stacked"])
@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("sparse", [False, True])
def test_reported_gap_is_the_recomputed_gap(penalty, l1_ratio, layout, shape,
                                            fit_intercept, sparse):
    X, y, s, task_col, tasks = _data(layout, shape)
    alpha = (0.1 if penalty == "l2" else
             0.1 * _independent_alpha_max(tasks, penalty, l1_ratio, fit_intercept))
    tol = 1e-6
    model = MultiTaskRegressor(penalty=penalty, alpha=alpha, l1_ratio=l1_ratio,
                               fit_intercept=fit_intercept, task_col=task_col,
                               tol=tol, max_iter=100_000)
    model.fit(sp.csc_matrix(X) if sparse else X, y, sample_weight=s)
    assert np.count_nonzero(model.coef_) > 0

    primal, dual = duality_gap(tasks, model.coef_, model.intercept_, penalty,
                               alpha, l1_ratio, fit_intercept)
    p0 = null_objective(tasks, fit_intercept)
    rounding = 1e-12 * p0
    assert primal - dual >= -rounding  # weak duality
    assert primal - dual <= tol * p0 + rounding
    assert model.dual_gap_ <= tol * p0 + rounding
    assert model.dual_gap_ == pytest.approx(primal - dual, abs=1e-3 * tol * p0)
    if not fit_intercept:
        np.testing.assert_array_equal(model.intercept_, 0.0)


@pytest.mark.parametrize("penalty,l1_ratio", [p for p in PENALTIES if p[0] != "l2"])
@pytest.mark.parametrize("layout", ["shared", "stacked"])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_alpha_max_is_the_zero_threshold(penalty, l1_ratio, layout, fit_intercept):
    X, y, s, task_col, tasks = _data(layout, "n>d", seed=1)
    expected = _independent_alpha_max(tasks, penalty, l1_ratio, fit_intercept)
    a_max = alpha_max(X, y, penalty=penalty, l1_ratio=l1_ratio, task_col=task_col,
                      fit_intercept=fit_intercept, sample_weight=s)
    assert a_max == pytest.approx(expected, rel=1e-10)

    def fitted_coef(alpha):
        model = MultiTaskRegressor(penalty=penalty, alpha=alpha, l1_ratio=l1_ratio,
                                   fit_intercept=fit_intercept, task_col=task_col,
                                   tol=1e-10, max_iter=100_000)
        return model.fit(X, y, sample_weight=s).coef_

    for factor in (1.0, 1.5):
        np.testing.assert_array_equal(fitted_coef(factor * a_max), 0.0)
    assert np.any(fitted_coef(0.98 * a_max) != 0)


@pytest.mark.parametrize("penalty,l1_ratio,solver", [
    ("l21", 1.0, "bcd"), ("l1", 0.5, "bcd"), ("l21", 1.0, "fista"),
    ("trace", 1.0, "auto"), ("l2", 1.0, "fista")])
@pytest.mark.parametrize("layout", ["shared", "stacked"])
def test_convergence_warning_when_max_iter_is_too_small(penalty, l1_ratio, solver,
                                                        layout):
    X, y, s, task_col, tasks = _data(layout, "n<d", seed=2)
    model = MultiTaskRegressor(penalty=penalty, alpha=0.01, l1_ratio=l1_ratio,
                               task_col=task_col, solver=solver, tol=1e-12,
                               max_iter=1)
    with pytest.warns(ConvergenceWarning, match="max_iter=1"):
        model.fit(X, y, sample_weight=s)
    assert model.dual_gap_ > 1e-12 * null_objective(tasks, True)
    # "auto" may finish an unconverged FISTA with another solver, which has
    # its own max_iter (as FISTA after coordinate descent)
    assert model.n_iter_ in ((1, 2) if solver == "auto" else (1,))


def test_convergence_warning_says_when_the_solver_stopped_before_max_iter(
        monkeypatch):
    """A solve that stops short of max_iter on too little progress is not
    told to raise max_iter: the warning says it stopped, after how many
    iterations, and that a larger max_iter would not change it (here
    Newton-ADMM's stall rule, made to fire after one step)."""
    import mtlinear._newton_admm as newton_admm
    monkeypatch.setattr(newton_admm, "_STALL", 0)
    X, y, s, task_col, tasks = _data("stacked", "n<d", seed=2)
    model = MultiTaskRegressor(loss="huber", penalty="l21", alpha=0.01,
                               task_col=task_col, solver="newton_admm",
                               tol=1e-12, max_iter=100)
    with pytest.warns(ConvergenceWarning) as caught:
        model.fit(X, y, sample_weight=s)
    message = str(caught[0].message)
    assert model.n_iter_ == 1
    assert "stopped after 1 iterations (max_iter=100) on making too little " \
        "progress" in message
    assert "A larger max_iter would not change this" in message
    assert "Increase max_iter" not in message
