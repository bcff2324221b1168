"""Block coordinate descent on sufficient statistics, compiled as a whole
(:func:`_bcd_gram`: gradient, gap, screening, working sets and the epochs in
one call; on a small problem the Python of an outer iteration cost more than
its arithmetic), and its state :class:`GramState`.
"""
import numpy as np
from numba import njit

from ._bcd_epochs import (BLOCK, _copy_matrix, _epoch_gram, _epoch_gram_blocks,
                          _gather_blocks)
from ._datafit import _gram_gap_from, _gram_sums
from ._working_set import (_DRIFT_MAX_STEP, _anderson_kernel, _epochs_to_target,
                           _next_working_set, _screen_rows, drifting, settled,
                           steps_settled)
from .penalties._compiled import feasible_dual, value

_ANDERSON_K = 3  # epochs between Anderson extrapolations, minus one
_GRAM_BLOCK_MAX_FLOATS = 2 ** 23  # copy of Q's working-set rows
_FIRST_CHECK = 2  # epochs before the first inner gap check


@njit(cache=True, inline='always')
def _gram_objective(W, P, omega, C, yy, p):
    """The primal objective from the statistics."""
    return _gram_gap_from(W, P, omega, C, yy, value(p, W),
                          np.zeros(W.shape[1]), 0.0)[0]


@njit(cache=True)
def _gram_neg_gradient(C, P, omega, rows):
    """``-dF/dW = C - omega P`` on the feature ``rows``."""
    U = np.empty((rows.size, C.shape[1]))
    for l in range(rows.size):
        for t in range(C.shape[1]):
            U[l, t] = C[rows[l], t] - P[rows[l], t] * omega[t]
    return U


@njit(cache=True, inline='always')
def _gram_gap(W, P, omega, C, yy, U, rows, p):
    """:func:`_gap` from the statistics: ``(primal, gap, c)`` with the dual
    factors ``c`` of ``U`` (the negative gradient on the feature ``rows``)."""
    c, conj = feasible_dual(p, U, rows)
    primal, gap = _gram_gap_from(W, P, omega, C, yy, value(p, W), c, conj)
    return primal, gap, c


@njit(cache=True, inline='always')
def _gram_ws_gap(W, P, omega, C, yy, ws, p):
    """The gap of the problem restricted to the working set ``ws``."""
    U = _gram_neg_gradient(C, P, omega, ws)
    return _gram_gap(W, P, omega, C, yy, U, ws, p)[1]


@njit(cache=True, inline='always')
def _inner_gram(Q, rows, gram, ws, omega, C, yy, W, P, p,
                max_epochs, inner_tol, outer_gap, check_every, need_settled,
                coef_tol):
    """The working-set solve of :func:`bcd` on :class:`GramState`, in one
    compiled call: epochs, Anderson extrapolation every ``_ANDERSON_K + 1``
    epochs (kept if it lowers the objective; if not, a line search along the
    last move when the iterates drift, :func:`drifting`), gap checks on the
    working set scheduled by :func:`_epochs_to_target`.  ``rows`` / ``gram``
    are the blocks of :func:`_gather_blocks` (empty: the plain epochs on
    ``Q``).
    ``W`` and ``P = Q W`` are updated in place.  With ``need_settled`` the
    solve also waits until the coefficients are within about ``coef_tol
    max |W|`` of their limit (:func:`settled`).  Returns the epochs run and
    whether the last epoch was settled.

    The same steps as the Python loop of :func:`bcd` (which serves the
    residual states); on small problems its overhead per epoch had cost more
    than the epoch.
    """
    k, T = ws.size, W.shape[1]
    history_W = np.empty((_ANDERSON_K + 1, k * T))
    history_P = np.empty((_ANDERSON_K + 1, P.size))  # P's, flattened
    n_history = 0
    epochs = 0
    next_check, last_gap, last_check = _FIRST_CHECK, outer_gap, 0
    blocks = rows.shape[0] > 0
    before = np.empty((k, T))
    last_change = np.full(T, np.nan)
    is_settled = False
    gap_reached = need_settled and outer_gap <= inner_tol
    while epochs < max_epochs:
        for l in range(k):
            for t in range(T):
                before[l, t] = W[ws[l], t]
        if blocks:
            _epoch_gram_blocks(rows, gram, ws, omega, C, W, P, p)
        else:
            _epoch_gram(Q, omega, C, W, P, ws, p)
        epochs += 1
        is_settled = settled(W, ws, before, coef_tol, last_change)
        if gap_reached and is_settled:
            break
        for l in range(k):
            for t in range(T):
                history_W[n_history, l * T + t] = W[ws[l], t]
        _copy_matrix(P, history_P[n_history].reshape(P.shape))
        n_history += 1
        if n_history == _ANDERSON_K + 1:
            n_history = 0
            last_change[:] = np.nan  # the next move is not an epoch's
            c = _anderson_kernel(history_W)
            moved = False
            current = _gram_objective(W, P, omega, C, yy, p)
            if c.size:
                mix = np.dot(c, history_W[1:])
                for l in range(k):
                    for t in range(T):
                        W[ws[l], t] = mix[l * T + t]
                _copy_matrix(np.dot(c, history_P[1:]).reshape(P.shape), P)
                moved = _gram_objective(W, P, omega, C, yy, p) < current
                if not moved:  # back to the epoch's
                    _drift_point(history_W, history_P, 0.0, ws, W, P)
            if not moved and not p.positive and drifting(
                    history_W[_ANDERSON_K - 2], history_W[_ANDERSON_K - 1],
                    history_W[_ANDERSON_K]):
                # the compiled _try_drift (mtlinear._bcd)
                best, best_step, step = current, 0.0, 2.0
                while step <= _DRIFT_MAX_STEP:
                    _drift_point(history_W, history_P, step, ws, W, P)
                    value = _gram_objective(W, P, omega, C, yy, p)
                    if not value < best:
                        break
                    best, best_step = value, step
                    step *= 2.0
                _drift_point(history_W, history_P, best_step, ws, W, P)
        if epochs == next_check:
            gap = _gram_ws_gap(W, P, omega, C, yy, ws, p)
            if gap <= inner_tol:
                if is_settled or not need_settled:
                    break
                gap_reached = True  # the coefficients are still moving
                next_check = max_epochs + 1
                continue
            next_check = min(epochs + _epochs_to_target(
                last_gap, gap, epochs - last_check, inner_tol, check_every),
                (epochs // check_every + 1) * check_every)
            last_gap, last_check = gap, epochs
    return epochs, is_settled


@njit(cache=True)
def _drift_point(history_W, history_P, step, ws, W, P):
    """``W[ws]`` and ``P`` at the last iterate of the histories plus
    ``step`` times its move from the one before (``step = 0``: the last)."""
    last, previous = history_W.shape[0] - 1, history_W.shape[0] - 2
    T = W.shape[1]
    for l in range(ws.size):
        for t in range(T):
            i = l * T + t
            W[ws[l], t] = history_W[last, i] + step * (
                history_W[last, i] - history_W[previous, i])
    flat = P.reshape(P.size)
    for i in range(P.size):
        flat[i] = history_P[last, i] + step * (history_P[last, i]
                                               - history_P[previous, i])


@njit(cache=True)
def _gram_reset(Q, W, rows, P):
    """``P = Q W`` exactly, for ``W`` zero outside the feature ``rows``."""
    d, T = W.shape
    k = rows.size
    if Q.shape[0] == 1:  # one BLAS product with the gathered rows (Q symmetric)
        Q_rows = np.empty((k, d))
        W_rows = np.empty((k, T))
        for l in range(k):
            for i in range(d):
                Q_rows[l, i] = Q[0, rows[l], i]
            for t in range(T):
                W_rows[l, t] = W[rows[l], t]
        product = np.dot(Q_rows.T, W_rows)
        _copy_matrix(product, P)
        return
    for i in range(d):
        for t in range(T):
            P[i, t] = 0.0
    for t in range(T):
        for l in range(k):
            w = W[rows[l], t]
            if w != 0.0:
                Q_row = Q[t, rows[l]]
                for i in range(d):
                    P[i, t] += Q_row[i] * w


@njit(cache=True)
def _bcd_gram(Q, omega, C, yy, curv, min_curv, W, P, p, max_iter,
              tol_abs, coef_tol, ws_start, inner_ratio, check_every, screen,
              block_max_floats, trace, top_factor):
    """:func:`bcd` on :class:`GramState`, outer loop included, in one
    compiled call: on a small problem the Python of an outer iteration
    (gradient, gap, screening, working set) cost more than its arithmetic.

    ``W`` and ``P = Q W`` are updated in place.  Row ``i`` of ``trace``
    receives ``(epochs, primal, gap)`` of the ``i``-th outer iteration while
    it has rows (for the callback).  Returns ``(gap, epochs, rows written,
    unsettled)``, ``unsettled``: ``max_iter`` ended the solve with its gap
    met and one step still moving a coefficient by more than ``coef_tol``
    of its task's largest (:func:`steps_settled`).
    """
    d, T = W.shape
    active = np.ones(d, dtype=np.bool_)  # rows not screened out
    in_last_ws = np.zeros(d, dtype=np.bool_)
    ws = np.empty(0, dtype=np.int64)
    rows_b = gram_b = np.empty((0, 1, 1))  # no blocks (see _inner_gram)
    n_iter = n_trace = 0
    ws_size = ws_start
    is_settled = not np.any(W != 0.0)  # a zero start needs no epoch to settle
    while True:
        rows = np.flatnonzero(active)
        U = _gram_neg_gradient(C, P, omega, rows)
        primal, gap, c = _gram_gap(W, P, omega, C, yy, U, rows, p)
        done = gap <= tol_abs and is_settled
        if (done or n_iter >= max_iter) and rows.size < d:
            # the gap of the screened problem; certify on the full one
            rows = np.arange(d)
            U = _gram_neg_gradient(C, P, omega, rows)
            primal, gap, c = _gram_gap(W, P, omega, C, yy, U, rows, p)
            active[:] = True
            done = gap <= tol_abs and is_settled
        if n_trace < trace.shape[0]:
            trace[n_trace, 0], trace[n_trace, 1], trace[n_trace, 2] = (n_iter,
                                                                        primal, gap)
            n_trace += 1
        # where the solve would end with its gap met: one step of every row
        steps_ok = (gap > tol_abs or not (done or n_iter >= max_iter)
                    or steps_settled(W, rows, U, curv, p, coef_tol))
        if not steps_ok:
            done = is_settled = False  # the working set grows to them (bcd)
        if done or n_iter >= max_iter:
            # unsettled: max_iter with the gap met but a step above
            # scikit-learn's rule, for a warning
            return (gap, n_iter, n_trace,
                    not done and gap <= tol_abs and not steps_ok)
        if screen and p.lam > 0.0:
            zero = _screen_rows(U, c, curv, rows, gap, p, min_curv, top_factor,
                                W)
            n_kept = 0
            for l in range(rows.size):  # drop the zero rows, compacting
                if zero[l]:
                    active[rows[l]] = False
                else:
                    rows[n_kept] = rows[l]
                    for t in range(T):
                        U[n_kept, t] = U[l, t]
                    n_kept += 1
            rows, U = rows[:n_kept], U[:n_kept]
        new_ws, ws_size, final = _next_working_set(W, rows, U, p, ws_size, ws,
                                                   in_last_ws)
        same = new_ws.size == ws.size
        for l in range(ws.size if same else 0):
            same &= new_ws[l] == ws[l]
        if not same:
            ws = new_ws
            if Q.shape[0] == 1 and ws.size * d <= block_max_floats:
                rows_b, gram_b = _gather_blocks(Q[0], ws, BLOCK)
            else:
                rows_b = gram_b = np.empty((0, 1, 1))
        inner_tol = tol_abs if final else max(inner_ratio * gap, tol_abs)
        epochs, is_settled = _inner_gram(
            Q, rows_b, gram_b, ws, omega, C, yy, W, P, p, max_iter - n_iter,
            inner_tol, gap, check_every, final or gap <= tol_abs, coef_tol)
        n_iter += epochs
        # exact state for the outer gap (extrapolations accumulate rounding)
        _gram_reset(Q, W, ws, P)




def largest_factor(record):
    """The largest penalty factor (for :func:`_screen_rows`' shortcut)."""
    return float(record.factor.max()) if record.factor.size else 1.0


class GramState:
    """Sufficient statistics ``Q``, ``C``, ``yy`` and ``P = Q W``."""

    def __init__(self, problem):
        Q, omega, self.C, yy = problem.design.gram_statistics(problem.y, problem.v)
        shared = omega is not None
        self.Q = Q[None] if shared else Q
        self.omega = omega if shared else np.ones(problem.n_tasks)
        self.yy = np.ascontiguousarray(yy, dtype=np.float64)  # per task
        diag = np.diagonal(self.Q, axis1=1, axis2=2).T  # (d, 1 or T)
        self.curv = np.maximum(diag, 0.0) * self.omega  # centred: >= -eps
        self.min_row_curvature = float(self.curv.max(axis=1).min())

    def reset(self, W):
        """Recompute ``P = Q W``."""
        self.P = np.empty(W.shape)
        _gram_reset(self.Q, W, np.flatnonzero(np.any(W != 0, axis=1)), self.P)
        self._W = W

    def solve(self, W, record, max_iter, tol_abs, coef_tol, ws_start,
              inner_ratio, check_every, screen, callback):
        """:func:`bcd` from ``W`` (updated in place; the state reset at it),
        in one compiled call (:func:`_bcd_gram`) with the penalty's ``record``;
        returns ``(gap, epochs, unsettled)``."""
        # a gap per outer iteration, for the callback (far fewer than epochs)
        trace = np.empty((0 if callback is None else min(max_iter, 10 ** 5) + 2, 3))
        gap, n_iter, n_trace, unsettled = _bcd_gram(
            self.Q, self.omega, self.C, self.yy, self.curv,
            self.min_row_curvature, W, self.P, record, max_iter, tol_abs,
            coef_tol, ws_start, inner_ratio, check_every, screen, _GRAM_BLOCK_MAX_FLOATS,
            trace, largest_factor(record))
        self._W = W
        if callback is not None:
            for epochs, primal, outer_gap in trace[:n_trace]:
                callback(int(epochs), primal, outer_gap)
        return gap, n_iter, unsettled

    def neg_gradient(self, rows):
        return _gram_neg_gradient(self.C, self.P, self.omega, rows)

    def null_value(self):
        return 0.5 * float(self.yy.sum())

    def sums(self):
        WQW, CW = _gram_sums(self._W, self.P, self.omega, self.C)
        return self.yy - 2 * CW + WQW, self.yy - CW
