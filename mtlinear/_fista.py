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
"""
import numpy as np

__all__ = ["fista"]


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
    L = datafit.lipschitz
    step = 1.0 / L if L > 0 else 1.0
    W = np.array(W, dtype=np.float64)
    b = None if b is None else np.array(b, dtype=np.float64)
    Wy, by = W, b
    t = 1.0
    primal, gap = datafit.duality_gap(W, b, penalty)
    if callback is not None:
        callback(0, primal, gap)
    n_iter = 0
    while gap > tol_abs and n_iter < max_iter:
        n_iter += 1
        GW, gb = datafit.gradient(Wy, by)
        W_new = penalty.prox(Wy - step * GW, step)
        b_new = None if b is None else by - step * gb
        # gradient-mapping restart test
        direction = np.vdot(Wy - W_new, W_new - W)
        if b is not None:
            direction += np.vdot(by - b_new, b_new - b)
        if direction > 0:
            t = 1.0
        t_new = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t))
        beta = (t - 1.0) / t_new
        Wy = W_new + beta * (W_new - W) if beta > 0 else W_new
        if b is not None:
            by = b_new + beta * (b_new - b) if beta > 0 else b_new
        W, b, t = W_new, b_new, t_new
        if n_iter % gap_every == 0 or n_iter == max_iter:
            primal, gap = datafit.duality_gap(W, b, penalty)
            if callback is not None:
                callback(n_iter, primal, gap)
    return W, b, gap, n_iter
