"""Accelerated proximal gradient (FISTA) with adaptive restart.

Iteration ``k`` (Beck & Teboulle 2009), step ``1/L`` with ``L`` the Lipschitz
constant of the data-fit gradient (exact, from :mod:`mtlinear._design`):

.. math::

    W_{k+1} = \\mathrm{prox}_{h/L}\\big(Y_k - \\nabla F(Y_k)/L\\big), \\quad
    t_{k+1} = \\frac{1 + \\sqrt{1 + 4 t_k^2}}{2}, \\quad
    Y_{k+1} = W_{k+1} + \\frac{t_k - 1}{t_{k+1}} (W_{k+1} - W_k).

The momentum restarts (``t = 1``) whenever ``<Y_k - W_{k+1}, W_{k+1} - W_k> >
0`` (O'Donoghue & Candes 2015), which recovers linear convergence on strongly
convex pieces.  The intercept variable, when there is one, takes the same
gradient step without a prox.

Stopping: every ``gap_every`` iterations the duality gap of the data-fit is
computed at ``W_k``; the solve stops when it is at most ``tol_abs``.

Non-quadratic losses (logistic): the global ``L`` uses the largest curvature
of the loss (1/4), far above the curvature near a solution where most
samples are well classified.  The step is then adapted (:func:`_fista_adaptive`):
``L`` shrinks by ``_SHRINK`` every iteration and doubles while

.. math::

    \\langle \\nabla F(W_{k+1}) - \\nabla F(Y_k), W_{k+1} - Y_k\\rangle
    \\le \\frac{L}{2} \\|W_{k+1} - Y_k\\|^2

fails.  For a convex ``F`` this implies the descent lemma, since
``F(W_{k+1}) - F(Y_k) - <\\nabla F(Y_k), W_{k+1} - Y_k>`` is at most the left
side; it involves no difference of function values (which rounding dominates
near the solution), and the left side is an inner product in sample space,
``<F'(z_{k+1}) - F'(z_Y), z_{k+1} - z_Y>``, so it costs no product with ``X``.
The linear predictor of the extrapolated point is extrapolated the same way.
"""
import numpy as np

__all__ = ["fista"]

_SHRINK = 0.8  # per-iteration decrease of the adaptive L


def fista(datafit, penalty, W, b, max_iter, tol_abs, gap_every=10, callback=None):
    """Minimize ``datafit(W, b) + penalty(W)``.

    Parameters
    ----------
    datafit : SampleDatafit or GramDatafit
    penalty : Penalty
    W : ndarray of shape (d, T)
        Starting point (not modified).
    b : ndarray of shape (T,) or None
        Starting intercept variable (``None`` when the datafit has none).
    max_iter : int
    tol_abs : float
        Absolute duality-gap target.
    gap_every : int
        Iterations between two gap evaluations.
    callback : callable, optional
        Called as ``callback(n_iter, primal, gap)`` at each gap evaluation.

    Returns
    -------
    W, b, gap, n_iter
    """
    if getattr(getattr(datafit, "loss", None), "name", "squared") != "squared":
        return _fista_adaptive(datafit, penalty, W, b, max_iter, tol_abs,
                               gap_every, callback)
    L = datafit.lipschitz
    step = 1.0 / L if L > 0 else 1.0
    W, b, gap = _start(datafit, penalty, W, b, callback)
    Wy, by = W, b
    t = 1.0
    n_iter = 0
    while gap > tol_abs and n_iter < max_iter:
        n_iter += 1
        GW, gb = datafit.gradient(Wy, by)
        W_new = penalty.prox(Wy - step * GW, step)
        b_new = None if b is None else by - step * gb
        t_new, beta = _momentum(t, (Wy, W_new, W), (by, b_new, b))
        Wy = W_new + beta * (W_new - W) if beta > 0 else W_new
        if b is not None:
            by = b_new + beta * (b_new - b) if beta > 0 else b_new
        W, b, t = W_new, b_new, t_new
        if n_iter % gap_every == 0 or n_iter == max_iter:
            primal, gap = datafit.duality_gap(W, b, penalty)
            if callback is not None:
                callback(n_iter, primal, gap)
    return W, b, gap, n_iter


def _start(datafit, penalty, W, b, callback):
    """Copies of the starting point and its duality gap (reported)."""
    W = np.array(W, dtype=np.float64)
    b = None if b is None else np.array(b, dtype=np.float64)
    primal, gap = datafit.duality_gap(W, b, penalty)
    if callback is not None:
        callback(0, primal, gap)
    return W, b, gap


def _momentum(t, W_triple, b_triple):
    """FISTA's ``(t_{k+1}, beta)`` after the gradient-mapping restart test
    on ``(Y_k, W_{k+1}, W_k)`` (and the intercepts, ``None`` without)."""
    Wy, W_new, W = W_triple
    by, b_new, b = b_triple
    direction = np.vdot(Wy - W_new, W_new - W)
    if b is not None:
        direction += np.vdot(by - b_new, b_new - b)
    if direction > 0:
        t = 1.0
    t_new = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t))
    return t_new, (t - 1.0) / t_new


def _fista_adaptive(datafit, penalty, W, b, max_iter, tol_abs, gap_every,
                    callback):
    """:func:`fista` with the adaptive step of the module docstring
    (``SampleDatafit`` only: it needs the linear predictor)."""
    design, loss, y, v = datafit.design, datafit.loss, datafit.y, datafit.v
    L_max = datafit.lipschitz
    L = L_max
    W, b, gap = _start(datafit, penalty, W, b, callback)
    Z = datafit.linear_predictor(W, b)
    Wy, by, Zy = W, b, Z
    t = 1.0
    n_iter = 0
    while gap > tol_abs and n_iter < max_iter:
        n_iter += 1
        Dy = loss.derivative(Zy, y, v)
        GW = design.rmatmat(Dy)
        gb = None if b is None else design.task_sum(Dy)
        L = max(L * _SHRINK, 1e-12 * L_max)
        while True:
            W_new = penalty.prox(Wy - GW / L, 1.0 / L)
            b_new = None if b is None else by - gb / L
            Z_new = datafit.linear_predictor(W_new, b_new)
            dz = Z_new - Zy
            sq = float(np.vdot(W_new - Wy, W_new - Wy))
            if b is not None:
                sq += float(np.vdot(b_new - by, b_new - by))
            curv = float(np.vdot(loss.derivative(Z_new, y, v) - Dy, dz))
            if curv <= 0.5 * L * sq or L >= 2 * L_max:
                break
            L *= 2.0
        t_new, beta = _momentum(t, (Wy, W_new, W), (by, b_new, b))
        if beta > 0:
            Wy = W_new + beta * (W_new - W)
            by = None if b is None else b_new + beta * (b_new - b)
            Zy = Z_new + beta * (Z_new - Z)
        else:
            Wy, by, Zy = W_new, b_new, Z_new
        W, b, Z, t = W_new, b_new, Z_new, t_new
        if n_iter % gap_every == 0 or n_iter == max_iter:
            primal, gap = datafit.duality_gap(W, b, penalty)
            if callback is not None:
                callback(n_iter, primal, gap)
    return W, b, gap, n_iter
