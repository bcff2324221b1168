"""Proximal Newton with steps solved by ADMM on each task's Hessian block: a
twice-differentiable elementwise loss (logistic, Huber, Poisson) with any
penalty that has a prox, whatever the scales of the features (for few
features: the blocks are ``d x d``).

At ``(W, b)``, with ``D`` and ``h`` the derivative and the second derivative
of the weighted loss at the linear predictor, the data fit's quadratic model
in the step ``(delta_t, beta_t)`` of task ``t`` has the gradient ``(g_t,
gb_t) = (X_{c,t}^T D_t, sum D_t)`` and the Hessian
``[[A_t, a_t], [a_t^T, s_t]]`` with ``A_t = X_{c,t}^T diag(h_t) X_{c,t}``,
``a_t = X_{c,t}^T h_t`` and ``s_t = sum h_t``.  The intercept's step is
optimal given ``delta_t`` (``beta_t = -(gb_t + a_t^T delta_t) / s_t``), which
leaves for ``x_t = w_t + delta_t`` the Gram problem

.. math::

    \\min_X \\sum_t \\tfrac12 x_t^\\top Q_t x_t - c_t^\\top x_t + h(X),
    \\quad Q_t = A_t - a_t a_t^\\top / s_t, \\quad
    c_t = Q_t w_t - (g_t - a_t\\, gb_t / s_t),

solved by ADMM (:class:`mtlinear._admm.AdmmSplit`, exact steps through the
eigendecomposition of each ``Q_t``) to a relative residual that tightens
with the gap (inexact Newton).  The step along ``(X - W, beta)`` is chosen by
backtracking on slopes (:func:`_backtrack`), starting from the model's
decrease ``g.delta + gb.beta + h(X) - h(W)``.  Stopping: the duality gap of
:mod:`mtlinear._datafit`, on the linear predictor carried along the steps and,
once that passes, on a fresh ``X W``.

A step cut to a tenth or less turns on a Levenberg-Marquardt damping
(:func:`_newton_step`'s ``damping``), raised tenfold at each such step and
lowered tenfold at each full one: a task with rare binary features, or
features constant within it, has nearly flat directions along which the
model's minimizer lies far from where the model holds.

``solver="auto"`` continues an unconverged proximal gradient (FISTA) with it
where it applies: a feature a thousand times larger than the others stalls
FISTA (its step is set by that feature's curvature), not Newton's steps.
"""
import functools

import numpy as np

from ._admm import AdmmSplit
from ._coupling import CoupledDatafit
from ._newton_cg import backtrack, refuse_rise
from ._ridge import RidgeSpectrum
from ._task_blocks import task_blocks, task_columns

__all__ = ["newton_admm"]

_MAX_BACKTRACK = 30
# a model decrease this small relative to the objective is rounding
_ROUNDING = 1e-13
# Newton steps without a 10% fall of the gap before the solve stops
_STALL = 5
# ADMM iterations per Newton step, at most, and between residual checks
_INNER_MAX = 2000
_INNER_CHECK = 10
# the model's damping, relative to each block's largest eigenvalue: where
# it starts once a step is cut short, below what it stops, its cap
_DAMPING_START, _DAMPING_MIN, _DAMPING_MAX = 1e-4, 1e-10, 1.0


def newton_admm(datafit, penalty, W, b, max_iter, tol_abs, callback=None,
                z=None, coupling=None):
    """Minimize ``datafit(W, b) + penalty(W)`` (a :class:`SampleDatafit`
    whose loss forms its Hessian blocks: :meth:`Loss.newton_blocks`), plus
    ``coupling(W)`` if given.

    Same parameters and returns as :func:`mtlinear._prox_newton.prox_newton`
    without ``columns``; ``max_iter`` counts Newton steps.  ``coupling``: a
    :class:`~mtlinear._coupling.TaskCoupling` (a loss of one column per
    task), kept exact in each Newton model and split off in its ADMM
    (:class:`mtlinear._admm.AdmmSplit`).
    """
    design, loss = datafit.design, datafit.loss
    y, v = datafit.y, datafit.v
    intercept = b is not None
    W = np.array(W, dtype=np.float64)
    b = np.array(b, dtype=np.float64) if intercept else None
    null = max(datafit.null_value(), np.finfo(float).tiny)
    n_iter = 0
    fresh, stalled = True, False
    best, since_best, last_primal = np.inf, 0, np.inf
    damping, damping_exhausted = 0.0, False
    z = datafit.linear_predictor(W, b) if z is None else np.array(z)
    coupled = None if coupling is None else CoupledDatafit(datafit, coupling)
    while True:
        primal, gap = (datafit.gap_and_gradient(W, b, penalty, z)[:2]
                       if coupled is None else
                       coupled.gap_at(W, b, penalty, z))
        done = gap <= tol_abs or n_iter >= max_iter or stalled
        if done and not fresh:
            # the certificate is of W itself: a fresh X W
            z, fresh = datafit.linear_predictor(W, b), True
            continue
        if callback is not None:
            callback(n_iter, primal, gap)
        if done:
            break
        # the gap stops falling once the steps are at rounding level (far
        # from the solution the objective falls while a poor dual point
        # keeps the gap up: progress too, at a pace at which max_iter steps
        # would move it by a tenth of the target at least; on a flat
        # objective, the Huber loss with most residuals beyond delta, it
        # crawled thousands of steps at a tenth of that)
        rounding = _ROUNDING * abs(primal)
        progress = gap < 0.9 * best or primal < last_primal - max(
            1e3 * rounding, 0.1 * tol_abs / max_iter)
        best, since_best = ((min(gap, best), 0) if progress
                            else (best, since_best + 1))
        last_primal = primal
        step = _newton_step(design, loss, penalty, W, z, y, v, intercept,
                            min(1e-2, gap / null), rounding, damping, coupling)
        t = (0.0 if step is None else
             _backtrack(loss, penalty, z, step[2], y, v, W, step[0], step[3],
                        rounding, coupling))
        # Levenberg-Marquardt: a step cut to a tenth or less turns damping
        # on or raises it, a full one lowers it (to none: the exact Newton
        # step where the model is trustworthy)
        if t < 0.1:
            damping = min(max(10.0 * damping, _DAMPING_START), _DAMPING_MAX)
        elif t == 1.0:
            damping = 0.1 * damping if damping > _DAMPING_MIN else 0.0
        if t == 0.0:
            stalled = damping_exhausted
            damping_exhausted = damping == _DAMPING_MAX
            continue
        stalled, damping_exhausted = since_best >= _STALL, False
        dW, db, dz, _ = step
        n_iter += 1
        W += t * dW
        if intercept:
            b += t * db
        z += t * dz
        fresh = False
    return W, b, gap, n_iter


def _newton_step(design, loss, penalty, W, z, y, v, intercept, rel_tol,
                 rounding, damping, coupling=None):
    """``(dW, db, dz, decrease)``: the proximal Newton step, its move of the
    linear predictor and the model's decrease; ``None`` if it increases the
    model by more than ``rounding``.  ``damping``: the proximal term
    ``lambda_t / 2 ||x_t - w_t||^2`` added to each task's model, ``lambda_t``
    that share of the largest eigenvalue of its block.  A ``coupling`` (a
    quadratic) enters the model as it is."""
    D, A, a, S_inv = loss.newton_blocks(design, z, y, v)
    K = loss.coupled_columns
    G = design.rmatmat(D)
    gb = design.task_sum(D) if intercept else np.zeros(np.size(W, 1))
    G_model = G
    if intercept:
        aS = a @ S_inv
        A = A - aS @ a.transpose(0, 2, 1)
        G_model = G - task_columns((aS @ gb.reshape(-1, K, 1))[:, :, 0], K)
    C = task_columns((A @ task_blocks(W, K)[:, :, None])[:, :, 0], K) - G_model
    spectrum = RidgeSpectrum(A, np.ones(A.shape[1]), K)
    # a task with fewer samples than weights (or features constant within
    # it) has a singular block: along its flat directions only the penalty
    # bounds the model, weakly, and its minimizer may lie far away
    lam = damping * spectrum.evals.max(axis=1, keepdims=True)
    spectrum.evals = spectrum.evals + lam
    C += task_columns(lam * task_blocks(W, K), K)
    split = AdmmSplit(spectrum, np.ones(A.shape[0]), C, W, G_model if
                      coupling is None else G_model + coupling.gradient(W),
                      coupling=coupling)
    for _ in range(_INNER_MAX // _INNER_CHECK):
        split.run(penalty, _INNER_CHECK)
        if split.settled(rel_tol):
            break
    dW = split.V - W
    db = None
    if intercept:
        cross = a.transpose(0, 2, 1) @ task_blocks(dW, K)[:, :, None]
        db = -(S_inv @ (gb.reshape(-1, K, 1) + cross)).ravel()
    decrease = (float(np.vdot(G, dW)) + penalty.value(split.V)
                - penalty.value(W))
    if coupling is not None:
        decrease += float(np.vdot(coupling.gradient(W), dW))
    if intercept:
        decrease += float(np.vdot(gb, db))
    if not decrease <= rounding:
        return None
    dz = design.matmat(dW)
    if intercept:
        dz += design.task_broadcast(db)
    return dW, db, dz, decrease


def _backtrack(loss, penalty, z, dz, y, v, W, dW, decrease, rounding,
               coupling=None):
    """The step along the direction: ``1, 1/2, ...`` until
    :func:`mtlinear._newton_cg.accepts_step` takes it on the slope of the
    convex bound ``phi(t) = F(z + t dz) + (1 - t) h(W) + t h(W + dW) >= P(t)``
    (``phi(0) = P(0)``, ``phi'(0) = decrease``); 0 when none passes.  A
    decrease within ``rounding`` of 0 (which the difference of penalty
    values in it cannot resolve) takes the model's minimizer, ``t = 1``.

    Slopes, not differences of objective values: near the solution those are
    rounding, and a test on them accepted only steps of ``1e-8``; values
    only refuse a clear rise (far above rounding) that the slopes missed.
    """
    if decrease >= -rounding:
        return 1.0
    h_W = penalty.value(W)
    jump = penalty.value(W + dW) - h_W
    # a coupling g along the line: g(W) + t g_1 + t^2 g_2 / 2
    g_0, g_1, g_2 = (0.0, 0.0, 0.0) if coupling is None else (
        coupling.value(W), float(np.vdot(coupling.gradient(W), dW)),
        float(np.vdot(coupling.gradient(dW), dW)))

    @functools.lru_cache(maxsize=None)
    def slope(t):
        return (float(np.vdot(dz, loss.derivative(z + t * dz, y, v))) + jump
                + g_1 + t * g_2)

    def objective(t):
        return (loss.value(z + t * dz, y, v) + g_0 + t * g_1 + 0.5 * t * t * g_2,
                h_W + t * jump)

    t = backtrack(slope, decrease, loss.bounded_curvature, _MAX_BACKTRACK)
    return refuse_rise(t, slope, objective, _MAX_BACKTRACK)
