"""Working sets, gap-safe screening and extrapolation, shared by the
working-set solvers (:mod:`mtlinear._bcd`, :mod:`mtlinear._fista`'s gap
schedule).

* :func:`_next_working_set`: the support plus the worst violators of the
  penalty's zero-row condition (its ``row_dual_norm`` against ``lam``),
  growing geometrically;
* :func:`_screen_rows`: the gap-safe sphere test through the penalty's
  ``row_screen``;
* :func:`_anderson_weights`: Anderson extrapolation of linearly converging
  iterates;
* :func:`_epochs_to_target`: when to evaluate the gap next, from the linear
  rate seen since the last evaluation;
* :func:`drifting`: when a line search along the last move may help;
* :func:`settled`, :func:`steps_settled`: the coefficient-change half of
  the stopping rule.
"""
import numpy as np
from numba import njit

from .penalties._compiled import row_dual_norm, row_prox, row_screen

_GROWTH = 2  # working-set growth factor per outer iteration
_MOST_CONTRACTION = 0.999  # the largest contraction factor settled() credits
# settled() tightens the rule for contraction only down to this relative
# move: below it, moves are rounding and their ratio says nothing
_FINEST_MOVE = 1e-9
_CHEAP_WS_RATIO = 10  # rows per working-set row below which it is solved to tol
# drifting(): the last two moves differ by at most this fraction of the last
_DRIFT_SPREAD = 0.1
_DRIFT_MAX_STEP = 2.0 ** 30  # the longest jump along a drift, in epochs' moves


def _anderson_weights(iterates):
    """Weights ``c`` (summing to 1) of the Anderson extrapolation, or ``None``.

    ``iterates`` is (K + 1, m); ``c`` minimizes ``||sum_k c_k (x_{k+1} -
    x_k)||`` (regularized), and the extrapolation is ``c @ iterates[1:]``.
    """
    c = _anderson_kernel(iterates)
    return c if c.size else None


@njit(cache=True)
def _anderson_kernel(iterates):
    """:func:`_anderson_weights` (an empty array for ``None``): a Numba call
    instead of a dozen small numpy ones, since it runs every few epochs.
    Loops rather than array expressions: they compile faster."""
    K, m = iterates.shape[0] - 1, iterates.shape[1]
    diffs = np.empty((K, m))
    for i in range(K):
        for l in range(m):
            diffs[i, l] = iterates[i + 1, l] - iterates[i, l]
    gram = np.empty((K, K))
    trace = 0.0
    for i in range(K):
        for j in range(i + 1):
            acc = 0.0
            for l in range(m):
                acc += diffs[i, l] * diffs[j, l]
            gram[i, j] = gram[j, i] = acc
        trace += gram[i, i]
    if not 0.0 < trace < np.inf:  # no progress (singular) or not finite
        return np.empty(0)
    for i in range(K):
        gram[i, i] += 1e-12 * trace
    z = _cholesky_solve(gram, np.ones(K))
    total = 0.0
    for i in range(K):
        total += z[i]
    if not np.isfinite(total) or total == 0.0:  # a NaN pivot makes total NaN
        return np.empty(0)
    for i in range(K):
        z[i] /= total
    return z


@njit(cache=True)
def _cholesky_solve(A, b):
    """``A^{-1} b`` for a small symmetric positive definite ``A`` (NaNs if a
    pivot is not positive).  Written out: numba's ``np.linalg.solve`` cost
    2.5 s of first compilation for a 3 x 3 system."""
    K = A.shape[0]
    R = np.zeros((K, K))  # A = R R^T, R lower triangular
    for i in range(K):
        for j in range(i + 1):
            acc = A[i, j]
            for k in range(j):
                acc -= R[i, k] * R[j, k]
            if i == j:
                if not acc > 0.0:
                    return np.full(K, np.nan)
                R[i, i] = np.sqrt(acc)
            else:
                R[i, j] = acc / R[j, j]
    z = b.copy()
    for i in range(K):  # R y = b
        for k in range(i):
            z[i] -= R[i, k] * z[k]
        z[i] /= R[i, i]
    for i in range(K - 1, -1, -1):  # R^T x = y
        for k in range(i + 1, K):
            z[i] -= R[k, i] * z[k]
        z[i] /= R[i, i]
    return z




@njit(cache=True)
def drifting(before_last, previous, last):
    """Whether three consecutive iterates (flat arrays) move by nearly the
    same step: the two moves differ by at most ``_DRIFT_SPREAD`` times the
    last (in the largest entry).

    Coordinate descent on nearly collinear features (one-hot levels, a
    school's own attributes within a task of School) can creep along a
    valley at an almost constant pace, 1e-5 of the coefficients per epoch
    for thousands of epochs, where Anderson extrapolation (made for
    contracting iterates) does not help.  A line search along the move,
    jumping 2, 4, 8, ... epochs' worth while the objective falls, crosses
    such a valley in a few tries (:func:`mtlinear._bcd._try_drift`, and its
    compiled twin in :mod:`mtlinear._bcd_gram`).  Moves of similar size
    only (a linear rate of 0.9 or more) were not enough: on a sparse-group
    problem with unpenalized features the jumps were taken often and the
    solve took five times the epochs.
    """
    move = change = 0.0
    for i in range(last.size):
        step = last[i] - previous[i]
        move = max(move, abs(step))
        change = max(change, abs(step - (previous[i] - before_last[i])))
    return move > 0.0 and change <= _DRIFT_SPREAD * move


@njit(cache=True)
def settled(W, rows, before, coef_tol, last_change):
    """Whether the coefficients of every task are within about ``coef_tol
    max_j |W[j, t]|`` of their limit, judged from the last epoch's moves on
    the feature ``rows`` (``before``: their values before it).

    Beside the duality gap, the stopping rule of scikit-learn's coordinate
    descent (an epoch moving no coefficient by more than that): a gap bounds
    the objective, not the coefficients, which can stay far from the
    optimum on ill-conditioned designs while the gap is small.  Here the
    move is divided by ``1 - q``, ``q`` the ratio of the last two epochs'
    moves (coordinate descent converges linearly: ``move / (1 - q)`` is the
    distance left to its limit): on nearly collinear columns, where every
    epoch moves little, a small move alone had stopped the solve ten times
    further from the optimum than scikit-learn's slower epochs (an elastic
    net on raw School features).  The rule is tightened so only down to a
    relative move of ``min(coef_tol, 1e-9)``: below it moves are rounding,
    their ratio is noise, and a tight ``tol`` had waited for moves no epoch
    makes.  ``last_change`` (T,) holds each task's previous move (NaN:
    unknown, after a start or an extrapolation; negative: the first move
    after one, which the ratio does not use) and is updated in place.
    Per task, so that tasks fitted jointly under a separable penalty are as
    accurate as fitted one by one.
    """
    ok = True
    for t in range(W.shape[1]):
        largest = change = 0.0
        for l in range(rows.size):
            w = W[rows[l], t]
            largest = max(largest, abs(w))
            change = max(change, abs(w - before[l, t]))
        previous = last_change[t]
        # the first move after a start is no base for a ratio: it jumps
        # before the slow directions dominate, so the next move looks
        # contracted (0.004 for a true 0.99 on Toeplitz 0.999 features,
        # with the coefficients 250% from the optimum); marked negative
        last_change[t] = change if previous == previous else -change
        # unknown or not contracting (rounding, at the limit): q taken at
        # its cap, so a move of 1e-3 of the rule's still settles
        q = change / previous if previous > 0.0 else 1.0
        rule = max(coef_tol * (1.0 - min(q, _MOST_CONTRACTION)),
                   min(coef_tol, _FINEST_MOVE))
        if change > rule * largest:
            ok = False
    return ok


@njit(cache=True)
def steps_settled(W, rows, U, curv, p, coef_tol):
    """Whether a coordinate step on any one of the feature ``rows`` from the
    present point would move no coefficient of task ``t`` by more than
    ``max(coef_tol, 1e-9) max_j |W[j, t]|`` (``U``: the rows' negative
    gradients, ``curv`` (d, T): the curvatures of the epochs' steps).

    :func:`settled` judges the working set's epochs; rows left out of the
    working set with a small violation can still have far to go (strongly
    correlated features, fewer samples than features: 40 times further
    from the optimum than scikit-learn's defaults).  Their steps are read
    from the gradient the gap was computed with, so the check is free.
    """
    d, T = W.shape
    largest = np.zeros(T)
    for j in range(d):
        for t in range(T):
            largest[t] = max(largest[t], abs(W[j, t]))
    rule = max(coef_tol, _FINEST_MOVE)
    L, a, new = np.empty(T), np.empty(T), np.empty(T)
    for l in range(rows.size):
        j = rows[l]
        for t in range(T):
            L[t] = curv[j, t]
            a[t] = L[t] * W[j, t] + U[l, t]
        row_prox(p, j, a, L, new)
        for t in range(T):
            # a task whose coefficients are all zero is settled by its gap
            # (at alpha_max a step there is rounding)
            if largest[t] > 0.0 and abs(new[t] - W[j, t]) > rule * largest[t]:
                return False
    return True


@njit(cache=True)
def _epochs_to_target(gap_before, gap, epochs, target, most):
    """Epochs until the next gap check: the linear rate seen over the last
    ``epochs`` epochs predicts when ``gap`` reaches ``target`` (from 1 to
    ``most``), so that a converging solve stops close to the target."""
    if not 0.0 < target < gap < gap_before:
        return most
    rate = np.log(gap / gap_before) / epochs  # < 0: log-gap per epoch
    return int(min(max(np.ceil(np.log(target / gap) / rate), 1), most))




@njit(cache=True)
def _screen_rows(U, c, curv, rows, gap, p, min_curv, top_factor, W):
    """:func:`_screen` with the dual factors ``c`` (one per task) and the
    curvatures ``curv`` (d, T); ``min_curv`` is the smallest row maximum.

    When ``2 gap min_curv >= (lam max_j f_j)^2`` the box of every row reaches
    past its threshold: no row can pass, the test is skipped.  Rows nonzero
    in ``W`` are never screened: at a gap of rounding size the box shrinks
    to a point, and a support row at its threshold (``|u| = lam``) passed
    the test by rounding, was zeroed, and coordinate descent went back and
    forth between zero and the optimum until ``max_iter``.
    """
    zero = np.zeros(rows.size, dtype=np.bool_)
    lam = p.lam * top_factor
    if 2.0 * gap * min_curv >= lam * lam:
        return zero
    radius = np.sqrt(2.0 * max(gap, 0.0))
    T = U.shape[1]
    u = np.empty(T)
    for l in range(rows.size):
        j = rows[l]
        support = False
        for t in range(T):
            u[t] = c[t] * U[l, t]
            support |= W[j, t] != 0.0
        zero[l] = not support and row_screen(p, j, u, radius, curv[j])
    return zero


@njit(cache=True)
def _top_rows(rows, scores, k):
    """The ``k`` entries of ``rows`` (sorted) with the largest ``scores``, in
    their order: a bounded min-heap of the best so far (written out: numba's
    sorts cost seconds of first compilation)."""
    heap = np.empty(k, dtype=np.int64)  # positions in rows; heap[0] the worst
    for l in range(rows.size):
        if l < k:  # sift up
            i = l
            heap[i] = l
            while i > 0 and scores[heap[(i - 1) // 2]] > scores[heap[i]]:
                parent = (i - 1) // 2
                heap[i], heap[parent] = heap[parent], heap[i]
                i = parent
        elif scores[l] > scores[heap[0]]:  # replace the worst, sift down
            heap[0] = l
            i = 0
            while True:
                child = 2 * i + 1
                if child >= k:
                    break
                if child + 1 < k and scores[heap[child + 1]] < scores[heap[child]]:
                    child += 1
                if scores[heap[child]] >= scores[heap[i]]:
                    break
                heap[i], heap[child] = heap[child], heap[i]
                i = child
    chosen = np.zeros(rows.size, dtype=np.bool_)
    for i in range(k):
        chosen[heap[i]] = True
    out = np.empty(k, dtype=np.int64)
    m = 0
    for l in range(rows.size):
        if chosen[l]:
            out[m] = rows[l]
            m += 1
    return out


@njit(cache=True)
def _next_working_set(W, rows, U, p, ws_size, ws, in_last_ws):
    """The next working set of :func:`bcd`: the support plus the worst
    violators of the penalty's zero-row condition (its ``row_dual_norm``
    against ``lam``) among ``rows``, about ``ws_size`` of them.

    ``ws`` is the last working set (empty before the first) and
    ``in_last_ws`` its indicator, updated here.  Returns ``(working set,
    next size, final)``: ``final`` when it should be solved to the target
    (it holds every row, or no row the last one lacked, or it is small).
    """
    d, T = W.shape
    n = rows.size
    scores = np.empty(n)
    n_support = n_candidates = 0
    for l in range(n):
        j = rows[l]
        in_support = False
        for t in range(T):
            if W[j, t] != 0.0:
                in_support = True
                break
        if in_support:
            scores[l] = np.inf
            n_support += 1
        else:
            scores[l] = row_dual_norm(p, j, U[l]) / max(p.lam,
                                                        2.2250738585072014e-308)
        n_candidates += scores[l] > 1.0
    if ws.size > 0 and n_support >= 0.9 * ws.size:
        ws_size *= _GROWTH  # the support filled the working set: grow faster
    ws_size = min(max(ws_size, 2 * n_support), max(n_candidates, 1))
    if ws_size >= n:
        new_ws = rows.copy()
    else:
        new_ws = _top_rows(rows, scores, ws_size)
    # a working set holding every row, or no row that the last one lacked,
    # has (nearly) the full problem's gap: solve it to the target instead of
    # paying an outer iteration per gap decrease
    final = new_ws.size == n
    if ws.size > 0:
        lacked = False
        for j in new_ws:
            lacked |= not in_last_ws[j]
        final |= not lacked
    in_last_ws[:] = False
    in_last_ws[new_ws] = True
    # a small working set is solved to the final target: its epochs cost
    # little beside the full gradient of one more outer iteration
    final |= new_ws.size * _CHEAP_WS_RATIO <= n
    return new_ws, min(d, _GROWTH * ws_size), final
