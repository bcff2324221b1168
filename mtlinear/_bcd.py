"""Block coordinate descent over feature rows, with working sets and Anderson
acceleration, for the squared loss and the compiled row-separable penalties
(l1, l21, sparse-group, l2, with penalty factors and sign constraints).

The data-fit is written ``F(W) = sum_t a_t / 2 ||y~_t - X~ w_t||^2`` (shared
design: ``X~ = diag(sqrt(s)) X_c`` and ``a_t = omega_t / n``) or ``F(W) = 1/2
sum_i (y~_i - x~_i . w_t(i))^2`` (stacked tasks: rows scaled by ``sqrt(v_i)``),
or through the sufficient statistics ``Q_t``, ``C_t`` (:class:`GramState`).

Row ``j`` is minimized exactly: the data-fit is exactly ``sum_t (L_jt / 2
w_t^2 - a_t w_t)`` + const in the row, with its own curvature ``L_jt``
(``a_t ||x~_j||^2`` or ``Q_t[j, j]``) and ``a = L_j W_j - g_j``, so the
update is the penalty's ``row_prox`` in the metric ``diag(L_j)`` (see
:mod:`mtlinear.penalties._compiled`; every kernel here is compiled once per
penalty record type).

Outer loop (working sets, as in celer / skglm): compute the full gradient and
the duality gap; stop if the gap is small enough; otherwise rank the features
outside the support by how much they violate the optimality condition
(``row_dual_norm(U_j) <= lam``) and solve the problem restricted to the support plus the
worst violators (the set doubles each time), to a gap a fraction of the
outer one.  Inside, every few epochs an Anderson extrapolation of the last
iterates is tried and kept if it lowers the objective; the residual (or
``Q W``) is affine in ``W`` and is extrapolated with it, so a try costs no
product with the design.

With a shared design the epochs run by blocks of ``BLOCK`` rows: one BLAS
product gives a block's gradients, the block's own Gram matrix keeps them
exact while its rows are updated in turn, and one more product applies the
block's change (:func:`_epoch_blocks`, :func:`_epoch_gram_blocks`).

On the sufficient statistics the whole solve is one compiled call
(:mod:`mtlinear._bcd_gram`); on the residuals (:mod:`mtlinear._bcd_residual`)
the loops here are Python around the compiled epochs
(:mod:`mtlinear._bcd_epochs`).  Both use the same compiled screening test and
working-set choice (:mod:`mtlinear._working_set`).
"""
import numpy as np

from ._bcd_gram import _ANDERSON_K, _FIRST_CHECK, GramState, largest_factor
from ._bcd_residual import ResidualState
from ._datafit import gap_from_sums
from ._working_set import (_DRIFT_MAX_STEP, _anderson_weights, _epochs_to_target,
                           _next_working_set, _screen_rows, drifting, settled,
                           steps_settled)

__all__ = ["bcd", "make_bcd_state", "ResidualState", "GramState"]

_NO_ROWS = np.empty(0, dtype=np.int64)


def make_bcd_state(problem, use_gram):
    return GramState(problem) if use_gram else ResidualState(problem)



def _gap(state, W, U, rows, penalty):
    """``(primal, gap, c)`` with the dual point ``c V r`` (``U = X^T V r`` on
    the feature ``rows``; ``c`` one factor per task, see
    ``Penalty.feasible_dual``)."""
    c, conj = penalty.feasible_dual(U, rows)
    return (*gap_from_sums(*state.sums(), penalty.value(W), c, conj), c)


def _screen(state, record, U, rows, gap, c, W):
    """Gap-safe sphere test: the rows of ``rows``, zero in ``W``, provably
    zero at the optimum.

    The dual objective is 1-strongly concave in the norm
    ``||Theta||^2_{V^-1} = sum_i Theta_i^2 / v_i``, so the optimal dual point
    lies within ``r = sqrt(2 gap)`` of the current feasible one ``c Theta``.
    By Cauchy-Schwarz ``|x_j^T (Theta* - c Theta)_t| <= r sqrt(L_jt)`` with
    ``L_jt = sum_i v_i x_ij^2``; the penalty's ``row_screen`` says whether a
    row is zero at the optimum for every ``U*_j`` in that box (this holds
    with a ridge part too).
    """
    c = np.broadcast_to(np.asarray(c, dtype=np.float64), (U.shape[1],))
    return _screen_rows(U, np.ascontiguousarray(c), state.curv, rows, gap,
                        record, state.min_row_curvature, largest_factor(record),
                        W)


def bcd(state, penalty, W, max_iter, tol_abs, coef_tol=0.0, callback=None,
        fallback=None, ws_start=100, inner_ratio=0.3, check_every=5,
        screen=True):
    """Working-set block coordinate descent with gap-safe screening.

    Parameters
    ----------
    state : ResidualState or GramState
    penalty : RowSeparable
        A compiled row-separable penalty.
    W : ndarray (d, T)
        Starting point (not modified).
    fallback : ndarray (d, T), optional
        A second starting point (not modified); the solve starts from the one
        with the lower objective.
    max_iter : int
        Maximum number of epochs over working sets (all outer loops).
    tol_abs : float
        Absolute duality-gap target.
    coef_tol : float
        Besides the gap target, the solve waits (within ``max_iter``) until
        the coefficients are within about ``coef_tol max |W|`` of their limit
        (scikit-learn's rule, with the epochs' contraction; see
        :func:`mtlinear._working_set.settled`), on the working set's epochs
        and on one step of every row
        (:func:`~mtlinear._working_set.steps_settled`).
    screen : bool
        Discard rows that the gap-safe test proves zero at the optimum.

    Returns
    -------
    W, gap, n_iter (epochs), unsettled
        ``unsettled``: ``max_iter`` ended the solve with the gap target met
        but one coordinate step from ``W`` still moving a coefficient by more
        than ``coef_tol`` of its task's largest (scikit-learn's rule, without
        the contraction credit): the coefficients may be far from the
        optimum.
    """
    record = penalty.record(W.shape[0])
    W = _lower_start(state, penalty, W, fallback)
    if isinstance(state, GramState):
        gap, n_iter, unsettled = state.solve(
            W, record, max_iter, tol_abs, coef_tol, ws_start, inner_ratio,
            check_every, screen, callback)
        return W, gap, n_iter, unsettled
    d, T = W.shape
    active = np.ones(d, dtype=bool)  # rows not screened out
    n_iter = 0
    ws_size = ws_start
    ws = None
    in_last_ws = np.zeros(d, dtype=bool)
    is_settled = not np.any(W)  # a zero start needs no epoch to settle
    while True:
        rows = np.flatnonzero(active)
        U = state.neg_gradient(rows)
        primal, gap, c = _gap(state, W, U, rows, penalty)
        done = gap <= tol_abs and is_settled
        if (done or n_iter >= max_iter) and rows.size < d:
            # the gap of the screened problem; certify on the full one
            rows = np.arange(d)
            U = state.neg_gradient(rows)
            primal, gap, c = _gap(state, W, U, rows, penalty)
            active[:] = True
            done = gap <= tol_abs and is_settled
        if callback is not None:
            callback(n_iter, primal, gap)
        # where the solve would end with its gap met: one step of every row
        steps_ok = (gap > tol_abs or not (done or n_iter >= max_iter)
                    or steps_settled(W, rows, U, state.curv, record, coef_tol))
        if not steps_ok:
            done = is_settled = False  # the working set grows to them
        if done or n_iter >= max_iter:
            return W, gap, n_iter, not done and gap <= tol_abs and not steps_ok
        if screen and record.lam > 0:
            zero = _screen(state, record, U, rows, gap, c, W)
            if zero.any():
                active[rows[zero]] = False
                rows, U = rows[~zero], U[~zero]
        new_ws, ws_size, final = _next_working_set(
            W, rows, U, record, ws_size, _NO_ROWS if ws is None else ws,
            in_last_ws)
        if ws is not None and np.array_equal(new_ws, ws):
            new_ws = ws  # the state keeps its copies of the working set
        ws = new_ws
        inner_tol = tol_abs if final else max(inner_ratio * gap, tol_abs)
        need_settled = final or gap <= tol_abs
        history = []
        epochs = 0
        gap_reached = need_settled and gap <= inner_tol
        # an early check first: a warm start may need only a few epochs
        next_check, last_gap, last_check = _FIRST_CHECK, gap, 0
        last_change = np.full(T, np.nan)
        while n_iter < max_iter:
            before = W[ws]
            state.epoch(W, ws, record)
            n_iter += 1
            epochs += 1
            is_settled = settled(W, ws, before, coef_tol, last_change)
            if gap_reached and is_settled:
                break
            history.append((W[ws].ravel(), state.snapshot()))
            if len(history) == _ANDERSON_K + 1:
                current = _objective(state, penalty, W[ws], ws)
                if (not _try_anderson(state, penalty, W, ws, history, current)
                        and not record.positive):
                    _try_drift(state, penalty, W, ws, history, current)
                history = []
                last_change[:] = np.nan  # the next move is not an epoch's
            if epochs == next_check:
                inner_gap = _gap(state, W, state.neg_gradient(ws), ws,
                                 penalty)[1]
                if inner_gap <= inner_tol:
                    if is_settled or not need_settled:
                        break
                    gap_reached = True  # the coefficients are still moving
                    next_check = max_iter + 1
                    continue
                # no later than every check_every-th epoch
                next_check = min(epochs + _epochs_to_target(
                    last_gap, inner_gap, epochs - last_check, inner_tol,
                    check_every), (epochs // check_every + 1) * check_every)
                last_gap, last_check = inner_gap, epochs
        # exact state for the outer gap (extrapolations accumulate rounding)
        state.reset(W, ws)


def _objective(state, penalty, W, rows=None):
    """The objective at the state's point, ``W`` (or its feature ``rows``
    holding all nonzero ones)."""
    return 0.5 * float(state.sums()[0].sum()) + penalty.value(W, rows)


def _lower_start(state, penalty, W, fallback):
    """A C-ordered copy of ``W`` or ``fallback``, whichever has the lower
    objective, with ``state`` reset at it."""
    W = np.array(W, dtype=np.float64, order="C")
    if fallback is None:
        state.reset(W)
        return W
    starts = [np.array(fallback, dtype=np.float64, order="C"), W]
    values = []
    for S in starts:
        state.reset(S)
        values.append(_objective(state, penalty, S))
    if values[-1] > values[0]:
        state.reset(starts[0])  # rare: the last reset was at the worse one
        return starts[0]
    return starts[-1]


def _try_anderson(state, penalty, W, ws, history, current):
    """Move ``W[ws]`` to the Anderson extrapolation of the last iterates if it
    lowers the objective from ``current``, its value at ``W``.

    ``history`` holds ``(W[ws], state snapshot)`` pairs.  The data-fit state
    (residual or ``Q W``) is affine in ``W`` and the weights sum to 1, so the
    same combination of the snapshots is the state at the extrapolated point:
    trying costs no product with the design.  Returns whether ``W`` moved.
    """
    c = _anderson_weights(np.array([h[0] for h in history]))
    if c is None:
        return False
    W_ws = W[ws]
    W[ws] = (c @ np.array([h[0] for h in history[1:]])).reshape(W_ws.shape)
    state.load([sum(ck * h[1][i] for ck, h in zip(c, history[1:]))
                for i in range(len(history[0][1]))])
    if _objective(state, penalty, W[ws], ws) >= current:
        W[ws] = W_ws
        state.load(history[-1][1])
        return False
    return True


def _try_drift(state, penalty, W, ws, history, current):
    """Move ``W[ws]`` along the last epoch's move, ``2, 4, 8, ...`` times
    it, while the objective falls from ``current`` (see :func:`drifting`);
    ``W[ws]`` is the last iterate of ``history``, which Anderson
    extrapolation did not improve.  The state follows by the same affine
    combination."""
    (W0, S0), (W1, S1) = history[-2], history[-1]
    if not drifting(history[-3][0], W0, W1):
        return
    shape = W[ws].shape
    best, best_step = current, 0.0
    step = 2.0
    while step <= _DRIFT_MAX_STEP:
        W[ws] = (W1 + step * (W1 - W0)).reshape(shape)
        state.load([a1 + step * (a1 - a0) for a0, a1 in zip(S0, S1)])
        value = _objective(state, penalty, W[ws], ws)
        if not value < best:
            break
        best, best_step = value, step
        step *= 2.0
    W[ws] = (W1 + best_step * (W1 - W0)).reshape(shape)
    state.load([a1 + best_step * (a1 - a0) for a0, a1 in zip(S0, S1)])
