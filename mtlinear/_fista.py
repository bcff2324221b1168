"""Accelerated proximal gradient (FISTA) with adaptive restart and an
adaptive step.

Iteration ``k`` (Beck & Teboulle 2009), step ``1/L_k``:

.. math::

    W_{k+1} = \\mathrm{prox}_{h/L_k}\\big(Y_k - \\nabla F(Y_k)/L_k\\big), \\quad
    t_{k+1} = \\frac{1 + \\sqrt{1 + 4 t_k^2}}{2}, \\quad
    Y_{k+1} = W_{k+1} + \\frac{t_k - 1}{t_{k+1}} (W_{k+1} - W_k).

The momentum restarts (``t = 1``) whenever ``<Y_k - W_{k+1}, W_{k+1} - W_k> >
0`` (O'Donoghue & Candes 2015), which recovers linear convergence on strongly
convex pieces.  The intercept variable, when there is one, takes the same
gradient step without a prox.

Step size
---------
A global Lipschitz constant of ``\\nabla F`` is the largest curvature in any
direction; the iterates mostly move where the curvature is lower.  So ``L``
shrinks by the datafit's ``step_shrink`` every iteration and doubles while
the curvature test

.. math::

    \\langle \\nabla F(W_{k+1}) - \\nabla F(Y_k), W_{k+1} - Y_k\\rangle
    \\le c\\, L \\|W_{k+1} - Y_k\\|^2

fails.  For a quadratic ``F`` the left side is twice the Bregman distance
``F(W_{k+1}) - F(Y_k) - <\\nabla F(Y_k), W_{k+1} - Y_k>``, so ``c = 1`` is
exactly the descent lemma; for a convex ``F`` the left side bounds the
Bregman distance, and ``c = 1/2`` implies it.  The test involves no
difference of function values (which rounding dominates near the solution).
It costs no extra product with the design: the datafit keeps an *affine
state* of the iterate (the linear predictor ``X W + b``, or ``Q W`` for
sufficient statistics), from which both the gradient and the left side
follow, and which is extrapolated with the iterate.  The start needs no
eigenvalue computation either (see ``step_bounds`` of the datafits).

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
    L, L_cap = datafit.step_bounds()
    if not L_cap > 0:  # F is constant (an all-zero design)
        L = L_cap = 1.0
    L_floor = 1e-12 * L_cap
    factor, shrink = datafit.curvature_factor, datafit.step_shrink
    W = np.array(W, dtype=np.float64)
    b = None if b is None else np.array(b, dtype=np.float64)
    S = datafit.affine_state(W, b)
    primal, gap = datafit.duality_gap(W, b, penalty, state=S)
    if callback is not None:
        callback(0, primal, gap)
    Wy, by, Sy = W, b, S
    t = 1.0
    n_iter = 0
    while gap > tol_abs and n_iter < max_iter:
        n_iter += 1
        GW, gb, aux = datafit.gradient_at_state(Sy)
        L = max(L * shrink, L_floor)
        while True:
            W_new = penalty.prox(Wy - GW / L, 1.0 / L)
            b_new = None if b is None else by - gb / L
            S_new = datafit.affine_state(W_new, b_new)
            dW = W_new - Wy
            sq = float(np.vdot(dW, dW))
            if b is not None:
                sq += float(np.vdot(b_new - by, b_new - by))
            curv = datafit.curvature(S_new, Sy, aux, dW)
            if curv <= factor * L * sq or L >= L_cap:
                break
            L = min(2.0 * L, L_cap)
        t_new, beta = _momentum(t, (Wy, W_new, W), (by, b_new, b))
        if beta > 0:
            Wy = W_new + beta * (W_new - W)
            by = None if b is None else b_new + beta * (b_new - b)
            Sy = S_new + beta * (S_new - S)
        else:
            Wy, by, Sy = W_new, b_new, S_new
        W, b, S, t = W_new, b_new, S_new, t_new
        if n_iter % gap_every == 0 or n_iter == max_iter:
            primal, gap = datafit.duality_gap(W, b, penalty, state=S)
            if callback is not None:
                callback(n_iter, primal, gap)
    return W, b, gap, n_iter


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
