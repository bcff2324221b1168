"""Adaptive task weights: ``task_weights="auto"`` learns each task's noise
variance by alternating minimization.

With the squared loss and a Gaussian noise of variance ``sigma_t^2`` per task,
the (per-task averaged) negative log-likelihood plus the penalty is

.. math::

    J(W, b, \\sigma) = \\sum_t \\Big[\\frac{\\mathrm{mse}_t(W, b)}{2 \\sigma_t^2}
    + \\frac{1}{2} \\log \\sigma_t^2\\Big] + \\alpha R(W) \\; (+\\ \\text{task graph}),
    \\qquad \\sigma_t^2 \\ge \\epsilon_t,

with ``mse_t`` the task's (sample-weighted) mean squared residual.  For fixed
``sigma`` it is the package's objective with ``task_weights = 1 / sigma^2``
(each task's loss is ``omega_t mse_t / 2``); for fixed ``(W, b)`` its minimizer
is ``sigma_t^2 = max(mse_t, epsilon_t)``.  Alternating the two steps never
increases ``J`` (up to each solve's tolerance); it stops when no weight moves
by more than ``1e-4`` relatively, or after 100 rounds with a
``ConvergenceWarning``.  ``J`` is not jointly convex: the result is a
stationary point, from the start ``sigma = 1``.

The floor ``epsilon_t = 1e-3 var(y_t)`` keeps a task that its model fits
exactly from taking all the weight (the likelihood is unbounded there); a
task's weight is thus at most 1000 times ``1 / var(y_t)``.  The weighted
loss is free of the targets' scale, the penalty is not: rescaling ``y`` by
``c`` gives ``c W`` at ``alpha / c`` (where a fixed weighting needs ``c
alpha``).
"""
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

__all__ = ["fit_task_weights"]

_MAX_ROUNDS = 100
_WEIGHT_TOL = 1e-4
_FLOOR = 1e-3


def _task_mean_squares(Z, Y, task_index, sample_weight, n_tasks):
    """Per task, the weighted mean of ``Z**2`` over its observed targets
    (``Y`` not NaN)."""
    observed = ~np.isnan(Y)
    s = np.ones(len(Y)) if sample_weight is None else sample_weight
    squares = np.where(observed, Z, 0.0) ** 2
    if task_index is None:  # one column per task
        weights = s[:, None] * observed
        return (weights * squares).sum(axis=0) / weights.sum(axis=0)
    weights = s * observed
    return (np.bincount(task_index, weights * squares, n_tasks)
            / np.bincount(task_index, weights, n_tasks))


def _centred(Y, task_index, sample_weight, n_tasks):
    """``Y`` minus each task's weighted mean (observed entries)."""
    s = np.ones(len(Y)) if sample_weight is None else sample_weight
    if task_index is None:
        weights = s[:, None] * ~np.isnan(Y)
        return Y - np.nansum(weights * Y, axis=0) / weights.sum(axis=0)
    means = (np.bincount(task_index, s * Y, n_tasks)
             / np.bincount(task_index, s, n_tasks))
    return Y - means[task_index]


def fit_task_weights(estimator, data, loss, penalty, alpha, start, coupling,
                     predictor):
    """Alternate the solve and the noise variances (module docstring).

    Parameters
    ----------
    estimator : MultiTaskLinearModel
        Builds the problem of each round (``_build_problem``) and solves it
        (``_solve_at``).
    data : tuple
        ``(X, Y, task_index, sample_weight, omega)`` of the fit (``omega``
        is replaced).
    loss, penalty, alpha, start, coupling
        As for ``_solve_at``; ``loss`` is bound and ``penalty`` restricted
        to each round's problem.
    predictor : callable
        ``predictor(X, W, intercept, task_index)``: the linear predictor.

    Returns
    -------
    problem, result, omega
        The last round's problem, its solve and its weights (the learned
        ``1 / sigma_t^2``, settled: the next round would move none by more
        than ``1e-4`` relatively).
    """
    X, Y, task_index, sample_weight, omega = data
    T = len(omega)
    floor = _FLOOR * np.maximum(_task_mean_squares(
        _centred(Y, task_index, sample_weight, T), Y, task_index,
        sample_weight, T), np.finfo(float).tiny)
    omega = np.ones(T)  # sigma = 1
    for _ in range(_MAX_ROUNDS):
        problem = estimator._build_problem(X, Y, task_index, sample_weight,
                                           omega)
        result = estimator._solve_at(problem, estimator._bind_loss(
            loss, problem), penalty.restricted(problem.penalized), alpha, start,
            coupling)
        W, intercept = problem.full_solution(result.W, result.b)
        mse = _task_mean_squares(predictor(X, W, intercept, task_index) - Y,
                                 Y, task_index, sample_weight, T)
        new = 1.0 / np.maximum(mse, floor)
        if np.max(np.abs(new / omega - 1.0)) <= _WEIGHT_TOL:
            return problem, result, omega
        omega, start = new, (result.W, result.b)
    warnings.warn(
        f"{type(estimator).__name__}: task_weights='auto' did not settle in "
        f"{_MAX_ROUNDS} rounds of alternating minimization; the weights of "
        "the last round are used.", ConvergenceWarning)
    return problem, result, omega
