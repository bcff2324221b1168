"""Accelerated proximal gradient (FISTA) with adaptive restart and an
adaptive step.

Iteration ``k`` (Beck & Teboulle 2009), step ``1/L_k``:

.. math::

    W_{k+1} = \\mathrm{prox}_{h/L_k}\\big(Y_k - \\nabla F(Y_k)/L_k\\big), \\quad
    t_{k+1} = \\frac{1 + \\sqrt{1 + 4 t_k^2}}{2}, \\quad
    Y_{k+1} = W_{k+1} + \\frac{t_k - 1}{t_{k+1}} (W_{k+1} - W_k).

The momentum restarts (``t = 1``) whenever ``<Y_k - W_{k+1}, W_{k+1} - W_k> >
0`` (O'Donoghue & Candes 2015), which recovers linear convergence on strongly
convex pieces.  The intercept variable, when there is one, takes a gradient
step without a prox in its own metric: step ``1 / (kappa L_k)`` with
``kappa`` the ratio of its curvature to the coefficients' (the datafit's
``intercept_weight``, at most 1), and the norms below count it as ``kappa
||b||^2``.  A single step for both would let the intercepts crawl when a
feature of large scale sets ``L`` (a column multiplied by 1000 stopped the
trace-norm classifier at a gap 4000 times its target).

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
follow, and which is extrapolated with the iterate.  With sufficient
statistics the start needs no eigenvalue computation either (see
``step_bounds`` of the datafits).  ``L`` doubles up to a cap, twice the
global Lipschitz constant, where the test holds anyway.  A loss of unbounded
curvature (Poisson) has no such constant: ``L`` starts from the curvature at
the null model and the cap is ``inf``, since the test implies the descent
lemma whatever the curvature and holds for a small enough step.  Near the
solution rounding may fail the test at any ``L``; the doubling then ends
where the test holds in exact arithmetic, ``c L`` above the datafit's
``curvature_bound`` on the step's segment (or no move at all).

With sufficient statistics and the package's penalties the iterations
between two gap evaluations run in one compiled call (:func:`_gram_steps`).

Stopping: the duality gap of the data-fit is computed at ``W_k`` at most
every ``gap_every`` iterations, sooner when the linear rate seen since the
last check predicts the target sooner (:mod:`mtlinear._working_set`); the
solve stops when it is at most ``tol_abs``.
"""
import numpy as np
import scipy.sparse as sp
from numba import njit

from ._coupling import sparse_right_product
from ._working_set import _epochs_to_target
from .penalties._compiled import prox

__all__ = ["fista"]


def fista(datafit, penalty, W, b, max_iter, tol_abs, gap_every=10, callback=None,
          give_up=None):
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
        Most iterations between two gap evaluations.
    callback : callable, optional
        Called as ``callback(n_iter, primal, gap)`` at each gap evaluation.
    give_up : callable, optional
        Called as ``give_up(n_iter, gap)`` at each gap evaluation; the solve
        stops (unconverged) when it returns true.

    Returns
    -------
    W, b, gap, n_iter
    """
    L, L_cap = datafit.step_bounds()
    if not L_cap > 0:  # F is constant (an all-zero design)
        L = L_cap = 1.0
    W = np.array(W, dtype=np.float64, order="C")
    b = None if b is None else np.array(b, dtype=np.float64)
    S = datafit.affine_state(W, b)
    it = _Iterate(W, b, S, L, L_cap, datafit)
    primal, gap = datafit.duality_gap(W, b, penalty, state=S)
    if callback is not None:
        callback(0, primal, gap)
    record = (penalty.record(W.shape[0])
              if hasattr(datafit, "kernel_statistics") else None)
    n_iter = 0
    steps = gap_every
    while gap > tol_abs and n_iter < max_iter:
        steps = min(steps, max_iter - n_iter)
        done = (_compiled_steps(datafit, record, it, steps)
                if record is not None else 0)
        if done < steps:  # the rest here (also a step the kernel declined)
            _steps(datafit, penalty, it, steps - done)
        n_iter += steps
        last_gap, last_steps = gap, steps
        primal, gap = datafit.duality_gap(it.W, it.b, penalty, state=it.S)
        steps = _epochs_to_target(last_gap, gap, last_steps, tol_abs, gap_every)
        if callback is not None:
            callback(n_iter, primal, gap)
        if give_up is not None and gap > tol_abs and give_up(n_iter, gap):
            break
    return it.W, it.b, gap, n_iter


class _Iterate:
    """FISTA's variables: ``W``, ``b``, their affine state ``S``, the
    extrapolated ``(Wy, by, Sy)``, the momentum ``t`` and the step's ``L``."""

    def __init__(self, W, b, S, L, L_cap, datafit):
        self.W, self.b, self.S = W, b, S
        self.Wy, self.by, self.Sy = W, b, S
        self.t, self.L, self.L_cap = 1.0, L, L_cap
        # no cap (a loss of unbounded curvature): the floor is the start's,
        # and the doubling ends where the test can only fail by rounding
        self.capped = bool(np.isfinite(L_cap))
        self.L_floor = 1e-12 * (L_cap if self.capped else L)
        self.bound = getattr(datafit, "curvature_bound", None)
        self.factor, self.shrink = datafit.curvature_factor, datafit.step_shrink


def _steps(datafit, penalty, it, n_steps):
    """``n_steps`` iterations of the module docstring on ``it`` (any datafit
    and penalty; see :func:`_compiled_steps` for the compiled ones)."""
    W, b, S, Wy, by, Sy, t, L = it.W, it.b, it.S, it.Wy, it.by, it.Sy, it.t, it.L
    kappa = datafit.intercept_weight
    for _ in range(n_steps):
        GW, gb, aux = datafit.gradient_at_state(Sy)
        L = max(L * it.shrink, it.L_floor)
        while True:
            W_new = penalty.prox(Wy - GW / L, 1.0 / L)
            b_new = None if b is None else by - gb / (kappa * L)
            S_new = datafit.affine_state(W_new, b_new)
            dW = W_new - Wy
            sq = float(np.vdot(dW, dW))
            if b is not None:
                sq += kappa * float(np.vdot(b_new - by, b_new - by))
            curv = datafit.curvature(S_new, Sy, aux, dW)
            if curv <= it.factor * L * sq or L >= it.L_cap:
                break
            if not it.capped and _test_holds_exactly(it, L, sq, S_new, Sy):
                break
            L = min(2.0 * L, it.L_cap)
        t_new, beta = _momentum(t, (Wy, W_new, W), (by, b_new, b), kappa)
        if beta > 0:
            Wy = W_new + beta * (W_new - W)
            by = None if b is None else b_new + beta * (b_new - b)
            Sy = S_new + beta * (S_new - S)
        else:
            Wy, by, Sy = W_new, b_new, S_new
        W, b, S, t = W_new, b_new, S_new, t_new
    it.W, it.b, it.S, it.Wy, it.by, it.Sy, it.t, it.L = W, b, S, Wy, by, Sy, t, L


def _test_holds_exactly(it, L, sq, S_new, Sy):
    """Without a cap on ``L``: whether the failed curvature test holds in
    exact arithmetic, so that rounding alone failed it (the step does not
    move, or ``c L`` exceeds the datafit's ``curvature_bound`` on the
    segment); doubling on would shrink the step to nothing."""
    return sq == 0.0 or (it.bound is not None
                         and it.factor * L >= it.bound(S_new, Sy))


def _compiled_steps(datafit, record, it, n_steps):
    """:func:`_steps` for sufficient statistics and a penalty with a compiled
    prox, in one call (:func:`_gram_steps`); returns how many were done."""
    Q, omega, C = datafit.kernel_statistics()
    K = getattr(datafit, "coupling_matrix", _NO_COUPLING)
    csr = _NO_CSR
    if sp.issparse(K):  # a sparse coupling: its CSR arrays, no dense K
        csr = datafit.coupling._csr
        K = _NO_COUPLING
    arrays = [np.ascontiguousarray(A) for A in (C, it.W, it.Wy, it.S, it.Sy)]
    done, it.W, it.Wy, it.S, it.Sy, it.t, it.L = _gram_steps(
        np.ascontiguousarray(Q), omega, *arrays, it.t, it.L, it.L_floor,
        it.L_cap, it.shrink, n_steps, record, K, *csr)
    return done


# the coupling matrix of a problem without one, dense and sparse
# (mtlinear._coupling)
_NO_COUPLING = np.zeros((0, 0))
_NO_CSR = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64),
           np.zeros(0))


@njit(cache=True)
def _gram_product(Q, omega, W):
    """``Q_t w_t`` for every task: ``Q`` is (1, d, d) shared (then scaled by
    ``omega_t``) or (T, d, d)."""
    if Q.shape[0] == 1:
        return np.dot(Q[0], W) * omega
    d, T = W.shape
    out = np.zeros((d, T))
    for t in range(T):
        for i in range(d):
            acc = 0.0
            for j in range(d):
                acc += Q[t, i, j] * W[j, t]
            out[i, t] = acc
    return out


@njit(cache=True)
def _gram_steps(Q, omega, C, W, Wy, P, Py, t, L, L_floor, L_cap, shrink,
                n_steps, p, K, K_ptr, K_idx, K_val):
    """:func:`_steps` for sufficient statistics (``P = Q W`` the affine
    state, plus ``W K`` with a task-coupling matrix: dense ``K``, or sparse
    in the CSR arrays ``K_ptr, K_idx, K_val``, both empty without)
    and a compiled penalty (record ``p``), in one call: on small
    problems the Python of an iteration costs more than its arithmetic.
    Returns the steps done (fewer when the prox declined, see the trace
    norm's ``prox``) and
    the variables after them."""
    d, T = W.shape
    Z = np.empty((d, T))
    for step in range(n_steps):
        L = max(L * shrink, L_floor)
        while True:
            for j in range(d):  # the gradient step, gradient Py - C
                for k in range(T):
                    Z[j, k] = Wy[j, k] - (Py[j, k] - C[j, k]) / L
            W_new, ok = prox(p, Z, 1.0 / L)
            if not ok:
                return step, W, Wy, P, Py, t, L
            P_new = _gram_product(Q, omega, W_new)
            if K.shape[0] > 0:
                P_new += np.dot(W_new, K)
            elif K_ptr.shape[0] > 0:
                P_new += sparse_right_product(W_new, K_ptr, K_idx, K_val)
            sq = curv = direction = 0.0
            for j in range(d):
                for k in range(T):
                    dw = W_new[j, k] - Wy[j, k]
                    sq += dw * dw
                    curv += (P_new[j, k] - Py[j, k]) * dw
                    direction -= dw * (W_new[j, k] - W[j, k])
            if curv <= L * sq or L >= L_cap:
                break
            L = min(2.0 * L, L_cap)
        if direction > 0.0:  # <Wy - W_new, W_new - W> > 0: restart
            t = 1.0
        t_new = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t))
        beta = (t - 1.0) / t_new
        if beta > 0.0:
            Wy = W_new + beta * (W_new - W)
            Py = P_new + beta * (P_new - P)
        else:
            Wy, Py = W_new, P_new
        W, P, t = W_new, P_new, t_new
    return n_steps, W, Wy, P, Py, t, L


def _momentum(t, W_triple, b_triple, kappa):
    """FISTA's ``(t_{k+1}, beta)`` after the gradient-mapping restart test
    on ``(Y_k, W_{k+1}, W_k)`` (and the intercepts, ``None`` without, in
    their metric ``kappa``)."""
    Wy, W_new, W = W_triple
    by, b_new, b = b_triple
    direction = np.vdot(Wy - W_new, W_new - W)
    if b is not None:
        direction += kappa * np.vdot(by - b_new, b_new - b)
    if direction > 0:
        t = 1.0
    t_new = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t))
    return t_new, (t - 1.0) / t_new
