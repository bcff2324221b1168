"""Block coordinate descent over feature rows, with working sets and Anderson
acceleration, for the squared loss and the row-separable penalties (l1, l21 and
their ridge mixes).

The data-fit is written ``F(W) = sum_t a_t / 2 ||y~_t - X~ w_t||^2`` (shared
design: ``X~ = diag(sqrt(s)) X_c`` and ``a_t = omega_t / n``) or ``F(W) = 1/2
sum_i (y~_i - x~_i . w_t(i))^2`` (stacked tasks: rows scaled by ``sqrt(v_i)``),
or through the sufficient statistics ``Q_t``, ``C_t`` (:class:`GramState`).

Row ``j`` is updated by one proximal step on the block ``W_j`` with the
block's own curvature ``L_jt`` (``a_t ||x~_j||^2`` or ``Q_t[j, j]``):

* l1: each entry is minimized exactly,
  ``w_jt <- ST(w_jt - g_t / L_jt, lam / L_jt) / (1 + mu / L_jt)``;
* l21: one step with ``L_j = max_t L_jt`` (exact when the ``L_jt`` are equal),
  ``W_j <- GST(W_j - g / L_j, lam / L_j) / (1 + mu / L_j)``.

Outer loop (working sets, as in celer / skglm): compute the full gradient and
the duality gap; stop if the gap is small enough; otherwise rank the features
outside the support by how much they violate the optimality condition
``N°(G_j) <= lam`` and solve the problem restricted to the support plus the
worst violators (the set doubles each time), to a gap a fraction of the
outer one.  Inside, every few epochs an Anderson extrapolation of the last
iterates is tried and kept if it lowers the objective.
"""
import numpy as np
from numba import njit


__all__ = ["bcd", "make_bcd_state", "ResidualState", "GramState"]

_L1, _L21 = 0, 1
_ANDERSON_K = 5


# ------------------------------------------------------------ Numba kernels
@njit(cache=True)
def _row_prox(W, j, g, L, lam, mu, kind, old):
    """Proximal update of row ``j`` of ``W`` in place; ``old`` gets the row."""
    T = W.shape[1]
    for t in range(T):
        old[t] = W[j, t]
    if kind == _L1:
        for t in range(T):
            if L[t] <= 0.0:
                W[j, t] = 0.0
                continue
            z = old[t] - g[t] / L[t]
            thr = lam / L[t]
            if z > thr:
                W[j, t] = (z - thr) / (1.0 + mu / L[t])
            elif z < -thr:
                W[j, t] = (z + thr) / (1.0 + mu / L[t])
            else:
                W[j, t] = 0.0
    else:
        Lmax = 0.0
        for t in range(T):
            Lmax = max(Lmax, L[t])
        if Lmax <= 0.0:
            for t in range(T):
                W[j, t] = 0.0
            return
        sq = 0.0
        for t in range(T):
            z = old[t] - g[t] / Lmax
            W[j, t] = z
            sq += z * z
        norm = np.sqrt(sq)
        thr = lam / Lmax
        scale = 0.0 if norm <= thr else (1.0 - thr / norm) / (1.0 + mu / Lmax)
        for t in range(T):
            W[j, t] *= scale


@njit(cache=True)
def _epoch_shared(X, R, W, ws, a, col_sq, lam, mu, kind):
    """One pass over the rows ``ws``; ``R = Y~ - X~ W`` (n, T) kept in sync."""
    n = X.shape[0]
    T = W.shape[1]
    g = np.empty(T)
    L = np.empty(T)
    old = np.empty(T)
    for j in ws:
        xj = X[:, j]
        XtR = np.dot(xj, R)  # BLAS: the reduction the loop could not vectorize
        for t in range(T):
            g[t] = -a[t] * XtR[t]
            L[t] = a[t] * col_sq[j]
        _row_prox(W, j, g, L, lam, mu, kind, old)
        for t in range(T):
            delta = W[j, t] - old[t]
            if delta != 0.0:
                for i in range(n):
                    R[i, t] -= xj[i] * delta


@njit(cache=True)
def _epoch_stacked(X, r, task_ptr, W, ws, col_sq, lam, mu, kind):
    """One pass over ``ws``; task ``t`` owns rows ``task_ptr[t]:task_ptr[t+1]``."""
    T = W.shape[1]
    g = np.empty(T)
    L = np.empty(T)
    old = np.empty(T)
    for j in ws:
        for t in range(T):
            lo, hi = task_ptr[t], task_ptr[t + 1]
            g[t] = -np.dot(X[lo:hi, j], r[lo:hi])
            L[t] = col_sq[j, t]
        _row_prox(W, j, g, L, lam, mu, kind, old)
        for t in range(T):
            delta = W[j, t] - old[t]
            if delta != 0.0:
                for i in range(task_ptr[t], task_ptr[t + 1]):
                    r[i] -= X[i, j] * delta


@njit(cache=True)
def _epoch_gram(Q, omega, C, W, P, ws, lam, mu, kind):
    """One pass over ``ws`` with ``P[:, t] = Q_t W[:, t]`` kept in sync.

    ``Q`` is (1, d, d) when shared by all tasks (then scaled by ``omega_t``)
    or (T, d, d).
    """
    d, T = W.shape
    shared = Q.shape[0] == 1
    g = np.empty(T)
    L = np.empty(T)
    old = np.empty(T)
    for j in ws:
        for t in range(T):
            q = 0 if shared else t
            g[t] = omega[t] * P[j, t] - C[j, t]
            L[t] = omega[t] * Q[q, j, j]
        _row_prox(W, j, g, L, lam, mu, kind, old)
        for t in range(T):
            delta = W[j, t] - old[t]
            if delta != 0.0:
                q = 0 if shared else t
                for k in range(d):
                    P[k, t] += Q[q, j, k] * delta


# ------------------------------------------------------------ states
class ResidualState:
    """Scaled dense design and residuals for both layouts.

    Holds ``X~`` (Fortran order, so a feature is contiguous), ``y~`` and the
    residual ``R~ = y~ - X~ W``.  Memory: one dense copy of ``X``.
    """

    def __init__(self, problem):
        design = problem.design
        X = design.X
        X = X.toarray() if hasattr(X, "toarray") else np.asarray(X)
        self.shared = design.shared
        if self.shared:
            totals = problem.v.sum(axis=0)
            ref = int(np.argmax(totals))
            row_w = problem.v[:, ref]
            self.a = totals / totals[ref]
            self.task_ptr = None
        else:
            row_w = problem.v
            self.a = np.ones(design.n_tasks)
            self.task_ptr = design.task_ptr
        sqrt_w = np.sqrt(row_w)
        if design.x_mean is not None:
            if self.shared:
                X = X - design.x_mean
            else:
                X = X - np.repeat(design.x_mean, design.counts, axis=0)
        self.X = np.asfortranarray(X * sqrt_w[:, None])
        if self.shared:
            self.y = np.asfortranarray(problem.y * sqrt_w[:, None])
            self.col_sq = (self.X ** 2).sum(axis=0)
        else:
            self.y = problem.y * sqrt_w
            self.col_sq = np.add.reduceat(self.X ** 2, self.task_ptr[:-1], axis=0).T
            self.col_sq = np.ascontiguousarray(self.col_sq)

    def reset(self, W):
        if self.shared:
            self.R = np.asfortranarray(self.y - self.X @ W)
        else:
            z = np.einsum("ij,ij->i", self.X,
                          np.repeat(W.T, np.diff(self.task_ptr), axis=0))
            self.R = self.y - z

    def epoch(self, W, ws, lam, mu, kind):
        if self.shared:
            _epoch_shared(self.X, self.R, W, ws, self.a, self.col_sq, lam, mu, kind)
        else:
            _epoch_stacked(self.X, self.R, self.task_ptr, W, ws, self.col_sq,
                           lam, mu, kind)

    def neg_gradient(self, rows):
        """``-dF/dW`` restricted to feature ``rows`` (``X^T Theta`` there)."""
        Xr = self.X[:, rows]
        if self.shared:
            return (Xr.T @ self.R) * self.a
        prod = Xr * self.R[:, None]
        return np.add.reduceat(prod, self.task_ptr[:-1], axis=0).T

    def curvatures(self, rows):
        """``L_jt = sum_{i in t} v_i x_ij^2`` for the feature ``rows``."""
        if self.shared:
            return np.outer(self.col_sq[rows], self.a)
        return self.col_sq[rows]

    def null_value(self):
        """Objective at ``W = 0``: ``sum_i v_i y_i^2 / 2``."""
        if self.shared:
            return 0.5 * float(((self.y ** 2).sum(axis=0) * self.a).sum())
        return 0.5 * float(self.y @ self.y)

    def sums(self):
        """``(sum_i v_i r_i^2, sum_i v_i r_i y_i)`` for the gap."""
        if self.shared:
            return (float(((self.R ** 2).sum(axis=0) * self.a).sum()),
                    float(((self.R * self.y).sum(axis=0) * self.a).sum()))
        return float(self.R @ self.R), float(self.R @ self.y)


class GramState:
    """Sufficient statistics ``Q``, ``C``, ``yy`` and ``P = Q W``."""

    def __init__(self, problem):
        Q, omega, self.C, yy = problem.design.gram_statistics(problem.y, problem.v)
        shared = omega is not None
        self.Q = Q[None] if shared else Q
        self.omega = omega if shared else np.ones(problem.n_tasks)
        self.yy = float(yy.sum())

    def reset(self, W):
        if self.Q.shape[0] == 1:
            self.P = self.Q[0] @ W
        else:
            self.P = np.einsum("tij,jt->it", self.Q, W)
        self.P = np.ascontiguousarray(self.P)
        self._W = W

    def epoch(self, W, ws, lam, mu, kind):
        _epoch_gram(self.Q, self.omega, self.C, W, self.P, ws, lam, mu, kind)
        self._W = W

    def neg_gradient(self, rows):
        return self.C[rows] - self.P[rows] * self.omega

    def curvatures(self, rows):
        diag = np.diagonal(self.Q, axis1=1, axis2=2)  # (1 or T, d)
        return diag.T[rows] * self.omega

    def null_value(self):
        return 0.5 * self.yy

    def sums(self):
        W = self._W
        WQW = float(np.vdot(W, self.P * self.omega))
        CW = float(np.vdot(self.C, W))
        return self.yy - 2 * CW + WQW, self.yy - CW


def make_bcd_state(problem, use_gram):
    return GramState(problem) if use_gram else ResidualState(problem)


# ------------------------------------------------------------ outer loop
def _gap(state, W, U, penalty):
    """Primal and gap with the dual point ``c V r`` (``U = X^T V r`` on rows)."""
    sum_vr2, sum_vry = state.sums()
    primal = 0.5 * sum_vr2 + penalty.value(W)
    c = penalty.dual_scaling(U)
    dual = c * sum_vry - 0.5 * c * c * sum_vr2 - penalty.conjugate(c * U)
    return primal, primal - dual


def _row_dual_norms(U, kind):
    return np.abs(U).max(axis=1) if kind == _L1 else np.sqrt((U ** 2).sum(axis=1))


def _anderson(history):
    """Extrapolate from iterates ``history`` (list of flat arrays)."""
    diffs = np.diff(np.array(history), axis=0)  # (K, m)
    gram = diffs @ diffs.T
    try:
        z = np.linalg.solve(gram + 1e-12 * np.trace(gram) * np.eye(len(gram)),
                            np.ones(len(gram)))
    except np.linalg.LinAlgError:
        return None
    if not np.all(np.isfinite(z)) or z.sum() == 0:
        return None
    c = z / z.sum()
    return c @ np.array(history[1:])


def _screen(state, penalty, kind, U, rows, gap):
    """Gap-safe sphere test: the rows of ``rows`` provably zero at the optimum.

    The dual objective is 1-strongly concave in the norm
    ``||Theta||^2_{V^-1} = sum_i Theta_i^2 / v_i``, so the optimal dual point
    lies within ``r = sqrt(2 gap)`` of the current feasible one ``c Theta``.
    By Cauchy-Schwarz ``|x_j^T (Theta* - c Theta)_t| <= r sqrt(L_jt)`` with
    ``L_jt = sum_i v_i x_ij^2``; a row whose bound on ``N°(U*_j)`` stays below
    ``lam`` is zero at the optimum (this holds with a ridge part too).
    """
    c = penalty.dual_scaling(U)
    radius = np.sqrt(2.0 * max(gap, 0.0)) * np.sqrt(state.curvatures(rows))
    if kind == _L1:
        return np.all(np.abs(c * U) + radius < penalty.lam, axis=1)
    return (np.sqrt(((c * U) ** 2).sum(axis=1)) + radius.max(axis=1)
            < penalty.lam)


def bcd(state, penalty, W, max_iter, tol_abs, callback=None, ws_start=10,
        inner_ratio=0.3, check_every=5, screen=True):
    """Working-set block coordinate descent with gap-safe screening.

    Parameters
    ----------
    state : ResidualState or GramState
    penalty : L1 or L21 (``row_separable``)
    W : ndarray (d, T)
        Starting point (not modified).
    max_iter : int
        Maximum number of epochs over working sets (all outer loops).
    tol_abs : float
        Absolute duality-gap target.
    screen : bool
        Discard rows that the gap-safe test proves zero at the optimum.

    Returns
    -------
    W, gap, n_iter (epochs)
    """
    kind = _L1 if penalty.name == "l1" else _L21
    lam, mu = penalty.lam, penalty.mu
    W = np.array(W, dtype=np.float64, order="C")
    d, T = W.shape
    active = np.ones(d, dtype=bool)  # rows not screened out
    state.reset(W)
    n_iter = 0
    ws_size = ws_start
    while True:
        rows = np.flatnonzero(active)
        U = state.neg_gradient(rows)
        primal, gap = _gap(state, W, U, penalty)
        if (gap <= tol_abs or n_iter >= max_iter) and rows.size < d:
            # the gap of the screened problem; certify on the full one
            rows = np.arange(d)
            U = state.neg_gradient(rows)
            primal, gap = _gap(state, W, U, penalty)
            active[:] = True
        if callback is not None:
            callback(n_iter, primal, gap)
        if gap <= tol_abs or n_iter >= max_iter:
            return W, gap, n_iter
        if screen and lam > 0:
            zero = _screen(state, penalty, kind, U, rows, gap)
            if np.any(W[rows[zero]]):
                W[rows[zero]] = 0.0
                state.reset(W)
            active[rows[zero]] = False
            rows, U = rows[~zero], U[~zero]
        # working set: the support plus the worst violators of N°(U_j) <= lam
        in_support = np.any(W[rows] != 0, axis=1)
        scores = _row_dual_norms(U, kind) / max(lam, np.finfo(float).tiny)
        scores[in_support] = np.inf
        n_candidates = int(np.count_nonzero(scores > 1.0))
        ws_size = min(max(ws_size, 2 * int(in_support.sum())), max(n_candidates, 1))
        ws = rows if ws_size >= rows.size else np.sort(
            rows[np.argpartition(-scores, ws_size - 1)[:ws_size]])
        ws_size = min(d, 2 * ws_size)
        inner_tol = max(inner_ratio * gap, tol_abs)
        history = []
        while n_iter < max_iter:
            state.epoch(W, ws, lam, mu, kind)
            n_iter += 1
            history.append(W[ws].ravel().copy())
            if len(history) == _ANDERSON_K + 1:
                W = _try_anderson(state, penalty, W, ws, history)
                history = []
            if n_iter % check_every == 0:
                _, inner_gap = _gap(state, W, state.neg_gradient(ws), penalty)
                if inner_gap <= inner_tol:
                    break


def _try_anderson(state, penalty, W, ws, history):
    """Keep the Anderson extrapolation of the last iterates if it is better."""
    extrapolated = _anderson(history)
    if extrapolated is None:
        return W
    sum_vr2, _ = state.sums()
    current = 0.5 * sum_vr2 + penalty.value(W)
    W_new = W.copy()
    W_new[ws] = extrapolated.reshape(len(ws), -1)
    state.reset(W_new)
    sum_vr2, _ = state.sums()
    if 0.5 * sum_vr2 + penalty.value(W_new) < current:
        return W_new
    state.reset(W)
    return W
