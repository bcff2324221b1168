"""Working-set proximal Newton for a twice-differentiable loss (logistic,
Huber, Poisson) with a compiled row-separable penalty (l1, l21,
sparse-group, l2, with penalty factors and sign constraints).

Outer loop (working sets, as in celer / skglm): at ``(W, b)`` compute the
duality gap of :mod:`mtlinear._datafit` and stop when it is small enough;
otherwise score every feature row by its violation of the optimality
condition (distance of ``-G_j`` to ``lam d||W_j|| + mu W_j``, with ``G`` the
data-fit gradient) and solve the problem restricted to the support plus the
worst violators.  The working set at least doubles each time.  A penalty
separable over tasks (l1, elastic net) on a stacked design (sparse, or dense
with more than ``_GRAM_MAX_ROWS`` features) gets a working set of entries
instead: each task its own features, as a solver run task by task would
have, and the epochs skip the other tasks' parts of a working column
(:func:`_task_segments`).

Inner loop: proximal Newton steps on the working set.  With ``D`` the
derivative and ``h`` the second derivative of the weighted loss at the
current linear predictor ``z``, the step minimizes the quadratic model

.. math::

    \\sum_t \\big(G_t^\\top \\delta_t + g_t c_t\\big)
    + \\frac12 \\sum_i h_i \\big(x_i^\\top \\delta_{t(i)} + c_{t(i)}\\big)^2
    + h(W + \\delta)

by coordinate descent over the working rows (``c`` is the change of the
intercept), with Anderson extrapolation of its iterates (see
:func:`_accelerated_cd`), until the model's optimality violation is a tenth
of the objective's.  The design is used uncentred: the intercept is free, so
``x_c^T delta + db = x^T delta + c`` with ``c = db - m^T delta``.  The
intercept is kept at its optimum given ``delta`` throughout (``c_t = -(g_t +
sum_i h_i q_i) / sum_i h_i``, ``q = X delta``), which makes every coordinate
update exact for the model with the curvature of the weighted-centred column
(its Schur complement), i.e. weighted centring for free on sparse data.

Line search without function-value differences (which rounding dominates
near the solution): on directional derivatives of the objective, see
:func:`_line_search` (with a certificate of decrease for a loss of unbounded
curvature).

A plain ridge penalty (``lam = 0``, no factors or signs) goes to
:mod:`mtlinear._newton_cg`.  The loss enters through its ``derivatives``, the
penalty through its compiled ``row_prox`` and ``row_violation`` and its
``violations``, ``value_change`` and ``slope``.

Kernels are plain Numba functions over the columns of ``X``: a CSC matrix, or
a Fortran-ordered dense array whose columns meet each task's samples as
contiguous vectors (:func:`_cd_epochs_dense`).
"""
import functools

import numpy as np
import scipy.sparse as sp
from numba import njit

from ._datafit import LossAt
from ._design import sorted_csc, unsigned_view
from ._newton_cg import TrialDerivatives, backtrack, refuse_rise
from .penalties._compiled import row_prox, row_violation

__all__ = ["prox_newton", "DesignColumns", "means_swamp_spreads"]

_FIRST_WS = 32         # smallest working set: an outer iteration (a gap) costs
                       # more than a Newton step on 32 rows
_MAX_BACKTRACK = 20
_MAX_EPOCHS = 200      # coordinate-descent epochs per Newton step
_INNER_FRACTION = 0.3  # working-set subproblem solved to this share of the violation
_FORCING = 0.1         # Newton model solved to this share of the violation
_ANDERSON = 8          # epochs between Anderson extrapolations
_FINEST_STEP = 1e-6    # relative step that always settles the coefficient rule
_SETTLING_STEPS = 5    # most steps taken for it once the gap is met
# up to this many working rows (dense design) the Newton model is solved on
# their Gram matrices: building them costs about K / 4 sample passes, and
# epochs are then free of the samples
_GRAM_MAX_ROWS = 32
_MAX_GRAM_EPOCHS = 5000
_GRAM_BLOCK = 4        # Gram epochs per call, between Anderson's records
# a feature mean this many times its spread: the columns are centred
_MEAN_SPREAD_RATIO = 100.0


def smooth_ridge(penalty):
    """A ridge alone, without factors or signs: a smooth objective,
    Newton-CG's domain (see :mod:`mtlinear._newton_cg`)."""
    return (penalty.lam == 0 and getattr(penalty, "penalty_factor", None) is None
            and not getattr(penalty, "positive", False))


# ------------------------------------------------------------ Numba kernels
@njit(cache=True)
def _column(j, data, indices, indptr):
    """Row indices and values of column ``j`` of a CSC matrix."""
    return indices[indptr[j]:indptr[j + 1]], data[indptr[j]:indptr[j + 1]]


@njit(cache=True)
def _newton_stats(ws, data, indices, indptr, seg, active, n_tasks, D, Hw):
    """Per working row ``k`` and task: ``G = sum_i D_i x_ij``, ``HX = sum_i
    h_i x_ij`` and ``HXX = sum_i h_i x_ij^2`` (uncentred columns); on a
    stacked design (``seg``, see :func:`_cd_epochs`) for the ``active``
    entries only (zero elsewhere); and those entries weighted by their
    sample's curvature, ``weighted[start[k, t] + p - seg[k, t]] = h_i
    x_ij`` for ``p`` in the segment (empty arrays for a shared design)."""
    K = ws.size
    G = np.zeros((K, n_tasks))
    HX = np.zeros((K, n_tasks))
    HXX = np.zeros((K, n_tasks))
    stacked = seg.shape[0] > 0
    start = np.zeros((K if stacked else 0, n_tasks), dtype=np.int64)
    size = 0
    for k in range(start.shape[0]):
        for t in range(n_tasks):
            start[k, t] = size
            if active[k, t]:
                size += seg[k, t + 1] - seg[k, t]
    weighted = np.empty(size)
    for k in range(K):
        if not stacked:  # shared: each sample is every task's
            rows, vals = _column(ws[k], data, indices, indptr)
            for p in range(rows.size):
                i, x = rows[p], vals[p]
                for t in range(n_tasks):
                    G[k, t] += D[i, t] * x
                    hx = Hw[i, t] * x
                    HX[k, t] += hx
                    HXX[k, t] += hx * x
            continue
        for t in range(n_tasks):
            if not active[k, t]:
                continue
            g = hx_sum = hxx = 0.0
            shift = start[k, t] - seg[k, t]
            for p in range(seg[k, t], seg[k, t + 1]):
                i, x = indices[p], data[p]
                g += D[i, 0] * x
                hx = Hw[i, 0] * x
                weighted[shift + p] = hx
                hx_sum += hx
                hxx += hx * x
            G[k, t], HX[k, t], HXX[k, t] = g, hx_sum, hxx
    return G, HX, HXX, weighted, start


@njit(cache=True)
def _newton_stats_dense(ws, Xf, lane, lo, hi, DT, HwT):
    """:func:`_newton_stats` for a dense design, on the contiguous per-task
    sample lanes of :func:`_cd_epochs_dense` (dot products)."""
    K, T = ws.size, lane.size
    G = np.zeros((K, T))
    HX = np.zeros((K, T))
    HXX = np.zeros((K, T))
    sq = np.empty(Xf.shape[0])
    for k in range(K):
        col = Xf[:, ws[k]]
        for i in range(col.size):
            sq[i] = col[i] * col[i]
        for t in range(T):
            a, b = lo[t], hi[t]
            G[k, t] = np.dot(DT[lane[t], a:b], col[a:b])
            HX[k, t] = np.dot(HwT[lane[t], a:b], col[a:b])
            HXX[k, t] = np.dot(HwT[lane[t], a:b], sq[a:b])
    return G, HX, HXX


@njit(cache=True)
def _row_model(k, G, HX, HXX, hs, c, intercept, gr, H):
    """Model gradient at ``delta = 0`` moved by the intercept change ``c``
    (``gr``, the sample part is added by the caller) and curvature of the
    weighted-centred column (``H``, the Schur complement of the intercept)
    of working row ``k``."""
    for t in range(gr.size):
        gr[t] = G[k, t] + c[t] * HX[k, t]
        H[t] = HXX[k, t]
        if intercept and hs[t] > 0.0:
            H[t] -= HX[k, t] * HX[k, t] / hs[t]
        if H[t] <= 1e-12 * HXX[k, t]:
            H[t] = 0.0


@njit(cache=True)
def _row_update(k, j, gr, H, W_ws, delta, c, HX, hs, pen, intercept, act, a,
                new):
    """Exact minimization of the model over working row ``k`` (feature
    ``j``): the penalty's ``row_prox`` in the metric ``diag(H)``;
    ``delta[k]`` and ``c`` updated in place, the steps left in ``new``.
    Only the entries ``act`` move (all of them but for a task-separable
    penalty's working entries, see :func:`prox_newton`): the others are
    zero and stay so, their gradient ``gr`` unknown (set to zero).

    Returns the row's violation of the model's optimality condition before
    the move (the penalty's ``row_violation``, as the objective's is
    measured) and whether it moved.  The violation, not the move in
    gradient units ``H |step|``, decides convergence: with l21 a row of
    small norm has the penalty's curvature ``lam / ||w||`` on top of ``H``,
    so its moves stay small while its violation does not.
    """
    T = gr.size
    for t in range(T):
        new[t] = W_ws[k, t] + delta[k, t]  # the current row
        if not act[t]:  # a zero entry left out: no violation, no move
            gr[t] = 0.0
    viol = row_violation(pen, j, new, gr)
    for t in range(T):
        a[t] = H[t] * new[t] - gr[t]
    row_prox(pen, j, a, H, new)
    for t in range(T):
        if not act[t]:
            new[t] = W_ws[k, t] + delta[k, t]
    moved = False
    for t in range(T):
        step = new[t] - W_ws[k, t] - delta[k, t]
        new[t] = step
        if step == 0.0:
            continue
        moved = True
        delta[k, t] += step
        if intercept and hs[t] > 0.0:
            c[t] -= step * HX[k, t] / hs[t]
    return viol, moved


@njit(cache=True)
def _cd_epochs(ws, data, indices, indptr, seg, weighted, start, Hw, W_ws,
               delta, q, c, hs, G, HX, HXX, pen, intercept, active,
               max_epochs, tol):
    """Coordinate descent on the quadratic model, in place on ``delta``
    (working rows x tasks), ``q = X delta`` (sample layout) and ``c``, on
    CSC columns (:func:`_cd_epochs_dense` for a dense design).

    ``seg`` (stacked designs; empty for a shared one): the task ``t`` part
    of working column ``k`` is ``seg[k, t]:seg[k, t + 1]`` of ``indices``
    (:func:`_task_segments`), so the entries left out of the working set
    (``active`` false) cost nothing; ``weighted`` and ``start``: those
    entries times their sample's curvature (:func:`_newton_stats`), so
    that a gradient reads one sample vector, not two.  Stops when an
    epoch's largest violation of the model's optimality condition (each
    row's, just before its update; see :func:`_row_update`) is at most
    ``tol``.  Returns the number of epochs and the last epoch's largest
    violation.
    """
    K, T = delta.shape
    shared = seg.shape[0] == 0
    gr = np.empty(T)
    H = np.empty(T)
    a = np.empty(T)
    new = np.empty(T)
    epoch = 0
    largest = np.inf
    for epoch in range(1, max_epochs + 1):
        largest = 0.0
        for k in range(K):
            act = active[k]
            _row_model(k, G, HX, HXX, hs, c, intercept, gr, H)
            if shared:
                rows, vals = _column(ws[k], data, indices, indptr)
                for p in range(rows.size):
                    i, x = rows[p], vals[p]
                    for t in range(T):
                        gr[t] += Hw[i, t] * x * q[i, t]
            else:
                for t in range(T):
                    if act[t]:
                        acc = 0.0
                        shift = start[k, t] - seg[k, t]
                        for p in range(seg[k, t], seg[k, t + 1]):
                            acc += weighted[shift + p] * q[indices[p], 0]
                        gr[t] += acc
            viol, moved = _row_update(k, ws[k], gr, H, W_ws, delta, c, HX, hs,
                                      pen, intercept, act, a, new)
            largest = max(largest, viol)
            if not moved:
                continue
            if shared:
                rows, vals = _column(ws[k], data, indices, indptr)
                for p in range(rows.size):
                    i, x = rows[p], vals[p]
                    for t in range(T):
                        q[i, t] += new[t] * x
            else:
                for t in range(T):
                    step = new[t]
                    if step != 0.0:
                        for p in range(seg[k, t], seg[k, t + 1]):
                            q[indices[p], 0] += step * data[p]
        if largest <= tol:
            break
    return epoch, largest


@njit(cache=True)
def _task_segments(ws, indices, indptr, task_ptr):
    """``seg[k, t]:seg[k, t + 1]``: the entries of CSC column ``ws[k]`` in
    task ``t``'s rows ``task_ptr[t]:task_ptr[t + 1]`` (sorted row indices)."""
    T = task_ptr.size - 1
    seg = np.empty((ws.size, T + 1), dtype=np.int64)
    for k in range(ws.size):
        p, stop = indptr[ws[k]], indptr[ws[k] + 1]
        seg[k, 0] = p
        for t in range(T):
            while p < stop and indices[p] < task_ptr[t + 1]:
                p += 1
            seg[k, t + 1] = p
    return seg


@njit(cache=True)
def _cd_epochs_dense(ws, Xf, lane, lo, hi, HwT, W_ws, delta, qT, HqT, c, hs,
                     G, HX, HXX, pen, intercept, active, max_epochs, tol):
    """:func:`_cd_epochs` for a dense design, on contiguous sample vectors.

    Task ``t`` owns the samples ``lo[t]:hi[t]`` of lane ``lane[t]`` of the
    ``(lanes, n)`` arrays ``HwT`` (curvatures), ``qT = X delta`` and ``HqT
    = HwT * qT`` (kept up to date, so that a row's gradient is one dot
    product per task): the shared layout has a lane per task over every
    sample, the stacked one a single lane cut in task blocks.  The loops
    then run over contiguous memory (BLAS dot products and vectorized
    updates) instead of gathering ``T`` entries per sample.
    """
    K, T = delta.shape
    gr = np.empty(T)
    H = np.empty(T)
    a = np.empty(T)
    new = np.empty(T)
    epoch = 0
    largest = np.inf
    for epoch in range(1, max_epochs + 1):
        largest = 0.0
        for k in range(K):
            col = Xf[:, ws[k]]
            act = active[k]
            _row_model(k, G, HX, HXX, hs, c, intercept, gr, H)
            for t in range(T):
                if act[t]:
                    gr[t] += np.dot(HqT[lane[t], lo[t]:hi[t]],
                                    col[lo[t]:hi[t]])
            viol, moved = _row_update(k, ws[k], gr, H, W_ws, delta, c, HX, hs,
                                      pen, intercept, act, a, new)
            largest = max(largest, viol)
            if not moved:
                continue
            for t in range(T):
                step = new[t]
                if step == 0.0:
                    continue
                qt = qT[lane[t], lo[t]:hi[t]]
                hqt = HqT[lane[t], lo[t]:hi[t]]
                hwt = HwT[lane[t], lo[t]:hi[t]]
                xt = col[lo[t]:hi[t]]
                for i in range(xt.size):  # one store per loop: vectorized
                    qt[i] += step * xt[i]
                for i in range(xt.size):
                    hqt[i] += step * hwt[i] * xt[i]
        if largest <= tol:
            break
    return epoch, largest


@njit(cache=True)
def _predictor_csc(ws, data, indices, indptr, seg, delta, q):
    """``q = X delta`` in the sample layout (``q`` overwritten), on CSC
    columns (``seg`` as for :func:`_cd_epochs`): the Newton model's
    predictor of an extrapolated ``delta``."""
    q[:] = 0.0
    for k in range(ws.size):
        if seg.shape[0] == 0:
            rows, vals = _column(ws[k], data, indices, indptr)
            for p in range(rows.size):
                i, x = rows[p], vals[p]
                for t in range(q.shape[1]):
                    q[i, t] += delta[k, t] * x
            continue
        for t in range(delta.shape[1]):
            step = delta[k, t]
            if step != 0.0:
                for p in range(seg[k, t], seg[k, t + 1]):
                    q[indices[p], 0] += step * data[p]


@njit(cache=True)
def _predictor_dense(ws, Xf, lane, lo, hi, delta, qT):
    """:func:`_predictor_csc` on the lanes of :func:`_cd_epochs_dense`
    (``qT`` overwritten)."""
    qT[:] = 0.0
    for k in range(ws.size):
        col = Xf[:, ws[k]]
        for t in range(lane.size):
            step = delta[k, t]
            if step == 0.0:
                continue
            qt = qT[lane[t], lo[t]:hi[t]]
            xt = col[lo[t]:hi[t]]
            for i in range(xt.size):
                qt[i] += step * xt[i]


@njit(cache=True)
def _newton_gram_dense(ws, Xf, lane, lo, hi, HwT):
    """Each task's curvature-weighted Gram matrix of the working columns,
    ``Hb[t] = X_ws,t^T diag(h_t) X_ws,t`` (uncentred), on the lanes of
    :func:`_cd_epochs_dense`."""
    K, T = ws.size, lane.size
    Hb = np.zeros((T, K, K))
    hx = np.empty(Xf.shape[0])
    for t in range(T):
        h = HwT[lane[t], lo[t]:hi[t]]
        for k in range(K):
            xk = Xf[lo[t]:hi[t], ws[k]]
            for i in range(xk.size):
                hx[i] = h[i] * xk[i]
            l = 0
            while l + 4 <= k + 1:  # four independent sums in flight
                x0, x1 = Xf[lo[t]:hi[t], ws[l]], Xf[lo[t]:hi[t], ws[l + 1]]
                x2, x3 = Xf[lo[t]:hi[t], ws[l + 2]], Xf[lo[t]:hi[t], ws[l + 3]]
                a0 = a1 = a2 = a3 = 0.0
                for i in range(xk.size):
                    v = hx[i]
                    a0 += v * x0[i]
                    a1 += v * x1[i]
                    a2 += v * x2[i]
                    a3 += v * x3[i]
                Hb[t, k, l], Hb[t, k, l + 1] = a0, a1
                Hb[t, k, l + 2], Hb[t, k, l + 3] = a2, a3
                l += 4
            for m in range(l, k + 1):
                x = Xf[lo[t]:hi[t], ws[m]]
                a0 = 0.0
                for i in range(xk.size):
                    a0 += hx[i] * x[i]
                Hb[t, k, m] = a0
        for k in range(K):
            for l in range(k):
                Hb[t, l, k] = Hb[t, k, l]
    return Hb


@njit(cache=True)
def _cd_epochs_gram(ws, Hb, W_ws, delta, P, c, hs, G, HX, HXX, pen,
                    intercept, active, max_epochs, tol):
    """:func:`_cd_epochs` on the working rows' Gram matrices ``Hb`` (few
    working rows): the sample part of a row's model gradient is ``(Hb_t
    delta_t)_k``, kept up to date in ``P`` (T, K), so an epoch costs ``K^2
    T`` instead of a pass over the samples."""
    K, T = delta.shape
    gr = np.empty(T)
    H = np.empty(T)
    a = np.empty(T)
    new = np.empty(T)
    epoch = 0
    largest = np.inf
    for epoch in range(1, max_epochs + 1):
        largest = 0.0
        for k in range(K):
            _row_model(k, G, HX, HXX, hs, c, intercept, gr, H)
            for t in range(T):
                gr[t] += P[t, k]
            viol, moved = _row_update(k, ws[k], gr, H, W_ws, delta, c, HX, hs,
                                      pen, intercept, active[k], a, new)
            largest = max(largest, viol)
            if not moved:
                continue
            for t in range(T):
                step = new[t]
                if step != 0.0:
                    for l in range(K):
                        P[t, l] += Hb[t, l, k] * step
        if largest <= tol:
            break
    return epoch, largest


@njit(cache=True)
def _curvature_term_dense(HwT, qT, lane, lo, hi, dc):
    """``sum_i h_i (q_i + dc_t(i))^2`` on the lanes of
    :func:`_cd_epochs_dense`: the Newton model's quadratic term without
    sample-sized temporaries."""
    total = 0.0
    for t in range(lane.size):
        c, h, q = dc[t], HwT[lane[t]], qT[lane[t]]
        for i in range(lo[t], hi[t]):
            r = q[i] + c
            total += h[i] * r * r
    return total


# ------------------------------------------------------------ helpers
def means_swamp_spreads(design, ratio=_MEAN_SPREAD_RATIO):
    """Whether some feature's mean within a task exceeds ``ratio`` times its
    spread (max - min) there: the kernels' centred curvature ``sum h x^2 -
    (sum h x)^2 / sum h`` then loses ``2 log10`` of that ratio in digits
    (all of them from ``1e6``: a Huber or logistic fit with features
    offset by ``1e6`` stopped at its zero start).

    Cheap where the answer is no: a sparse column with an implicit zero in
    a task has a spread there of at least its largest value, and a dense
    one at least any row's distance to the mean (the first row of each task
    is tried first).
    """
    if design.x_mean is None:
        return False
    X, means = design.X, np.atleast_2d(design.x_mean)  # (1 or T, d)
    ptr = (np.array([0, X.shape[0]]) if design.shared else design.task_ptr)
    if sp.issparse(X):
        return _sparse_means_swamp_spreads(X, means, ptr, ratio)
    tasks = np.flatnonzero(np.diff(ptr) > 0)
    starts = ptr[:-1][tasks]
    if not design.shared:  # a shared design's rows are every task's
        means = means[np.minimum(tasks, len(means) - 1)]
    suspect = np.abs(means) > ratio * np.abs(X[starts] - means)
    if not suspect.any():
        return False
    columns = np.flatnonzero(suspect.any(axis=0))
    part = X[:, columns]
    spread = (np.maximum.reduceat(part, starts, axis=0)
              - np.minimum.reduceat(part, starts, axis=0))
    return bool(np.any(np.abs(means[:, columns]) > ratio * spread))


def _sparse_means_swamp_spreads(X, means, ptr, ratio):
    """:func:`means_swamp_spreads` of a sparse ``X`` whose tasks are the row
    ranges ``ptr``: only a column stored in every row of a task can
    qualify there, and its spread comes from the stored values (no copy of
    a CSR ``X`` or of a CSC one with sorted indices; one compiled pass over
    it)."""
    ptr = unsigned_view(np.asarray(ptr, dtype=np.int64))
    means = np.ascontiguousarray(means, dtype=np.float64)
    if X.format == "csc" and X.has_sorted_indices:
        return _csc_means_swamp_spreads(
            X.data, unsigned_view(X.indices), unsigned_view(X.indptr), ptr,
            means, ratio)
    X = X if X.format == "csr" else sp.csr_matrix(X)
    return _csr_means_swamp_spreads(
        X.data, unsigned_view(X.indices), unsigned_view(X.indptr), ptr,
        means, ratio)


@njit(cache=True)
def _csr_means_swamp_spreads(data, indices, indptr, ptr, means, ratio):
    """:func:`_sparse_means_swamp_spreads` on the CSR arrays: per task, the
    count, largest and smallest stored value of every column; ``means``
    (T, d), or (1 or T, d) for one range of rows (a shared design, whose
    every task mean is checked)."""
    d = means.shape[1]
    count = np.empty(d, dtype=np.int64)
    high, low = np.empty(d), np.empty(d)
    for t in range(ptr.size - 1):
        rows = ptr[t + 1] - ptr[t]
        start, stop = indptr[ptr[t]], indptr[ptr[t + 1]]
        if rows == 0 or stop - start < rows:  # no column stored in every row
            continue
        for j in range(d):
            count[j] = 0
            high[j], low[j] = -np.inf, np.inf
        for k in range(start, stop):
            j = indices[k]
            count[j] += 1
            high[j] = max(high[j], data[k])
            low[j] = min(low[j], data[k])
        for j in range(d):
            if _swamped(means, j, t, ptr, count[j], high[j] - low[j], ratio):
                return True
    return False


@njit(cache=True)
def _csc_means_swamp_spreads(data, indices, indptr, ptr, means, ratio):
    """:func:`_csr_means_swamp_spreads` on the arrays of a CSC matrix with
    sorted indices: down each column, task by task (a task's entries of a
    column are consecutive)."""
    sizes = ptr[1:] - ptr[:-1]
    fewest = sizes[sizes > 0].min() if np.any(sizes > 0) else 1
    for j in range(indptr.size - 1):
        if indptr[j + 1] - indptr[j] < fewest:  # stored in no task's every row
            continue
        t = -1
        count = 0
        high, low = -np.inf, np.inf
        for k in range(indptr[j], indptr[j + 1]):
            i = indices[k]
            if t < 0 or i >= ptr[t + 1]:  # the first entry of a task
                if t >= 0 and _swamped(means, j, t, ptr, count, high - low,
                                       ratio):
                    return True
                t = max(t, 0)
                while i >= ptr[t + 1]:
                    t += 1
                count = 0
                high, low = -np.inf, np.inf
            count += 1
            high = max(high, data[k])
            low = min(low, data[k])
        if t >= 0 and _swamped(means, j, t, ptr, count, high - low, ratio):
            return True
    return False


@njit(cache=True, inline='always')
def _swamped(means, j, t, ptr, count, spread, ratio):
    """Column ``j`` stored in every row of task ``t`` (``count`` entries
    there) with a mean over ``ratio`` times its ``spread``."""
    if count < ptr[t + 1] - ptr[t]:
        return False
    first, last = (0, means.shape[0]) if ptr.size == 2 else (t, t + 1)
    for m in range(first, last):
        if abs(means[m, j]) > ratio * spread:
            return True
    return False


class DesignColumns:
    """Column access to the uncentred ``X`` for the kernels (cached per
    problem): CSC arrays, or a Fortran-ordered dense array with each task's
    samples as a contiguous range (``lane``, ``lo``, ``hi``, see
    :func:`_cd_epochs_dense`): the design's own when it is in that order
    (a regrouped stacked design is), else a copy, which a stacked design
    then uses too.

    Where the features' means swamp their spreads
    (:func:`means_swamp_spreads`, dense designs), the copy is centred
    instead, task by task, and the design takes it with zero means (the
    same products, without the cancellation): ``centred`` is then true and
    the kernels' intercept is the design's."""

    def __init__(self, design):
        X = design.X
        self.dense = not sp.issparse(X)
        self.centred = self.dense and means_swamp_spreads(design)
        if self.centred:
            self.Xf = np.array(X, dtype=np.float64, order="F")
            if design.shared:
                self.Xf -= design.x_mean
            else:
                for t, (a, b) in enumerate(zip(design.task_ptr[:-1],
                                               design.task_ptr[1:])):
                    self.Xf[a:b] -= design.x_mean[t]
            design.X = self.Xf
            design.x_mean = np.zeros_like(design.x_mean)
        elif self.dense:
            self.Xf = np.asfortranarray(X, dtype=np.float64)
            if not design.shared and self.Xf is not X:
                # a stacked design's products run as fast on the columns
                # (:func:`mtlinear._design.stacked_matvec`): one array for
                # both, the other freed unless the caller holds it
                design.X = self.Xf
        else:
            C = sorted_csc(X)
            self.data = np.asarray(C.data, dtype=np.float64)
            self.indices = unsigned_view(C.indices)
            self.indptr = unsigned_view(C.indptr)
        T = design.n_tasks
        # the CSC kernels' task boundaries (a dense design has lanes)
        self.task_ptr = None
        if design.shared:
            # dense kernel: a lane of samples per task
            self.lane = np.arange(T, dtype=np.int64)
            self.lo = np.zeros(T, dtype=np.int64)
            self.hi = np.full(T, X.shape[0], dtype=np.int64)
        else:
            if not self.dense:
                self.task_ptr = np.asarray(design.task_ptr, dtype=np.int64)
            # dense kernel: one lane cut in task blocks (rows sorted by task)
            self.lane = np.zeros(T, dtype=np.int64)
            self.hi = np.cumsum(design.counts).astype(np.int64)
            self.lo = self.hi - np.asarray(design.counts, dtype=np.int64)

    def csc(self):
        return self.data, self.indices, self.indptr

    def segments(self, ws):
        """:func:`_task_segments` of the working columns (stacked), or an
        empty array (shared: a column's every entry is every task's)."""
        if self.task_ptr is None:
            return np.empty((0, 0), dtype=np.int64)
        return _task_segments(ws, self.indices, self.indptr, self.task_ptr)


def _intercept_shift(design, W):
    """``m_t^T w_t`` per task: centred intercept minus uncentred one."""
    if design.x_mean is None:
        return np.zeros(design.n_tasks)
    if design.shared:
        return design.x_mean @ W
    return np.einsum("tj,jt->t", design.x_mean, W)


# ------------------------------------------------------------ solver
def prox_newton(datafit, penalty, W, b, max_iter, tol_abs, columns,
                coef_tol=0.0, callback=None, z=None):
    """Minimize ``datafit(W, b) + penalty(W)`` (a twice-differentiable loss).

    Parameters
    ----------
    datafit : SampleDatafit
        With the logistic loss.
    penalty : Penalty
        Row separable (see :func:`applies`).
    W : ndarray of shape (d, T)
        Starting point (not modified).
    b : ndarray of shape (T,) or None
        Starting (centred) intercept variable, ``None`` without intercept.
    max_iter : int
        Maximum number of proximal Newton steps.
    tol_abs : float
        Absolute duality-gap target.
    columns : DesignColumns or callable
        Column access to the design, or a function that builds it, called
        for the first Newton direction (a solve that its first gap ends,
        at ``alpha >= alpha_max``, never builds a sparse design's CSC copy).
    coef_tol : float, optional
        The solve also waits for a proximal Newton step that moves no
        coefficient by more than ``coef_tol**0.75`` times the largest (as
        :func:`mtlinear._newton_cg.newton_cg` does): the gap bounds the
        objective, and on ill-conditioned designs the coefficients can
        still be far from the optimum (Landmine, l1 without intercept: 40
        times further than liblinear's at its defaults).  Each working-set
        pass takes at least one step, so this costs a step or two, and
        at most five once the gap is met.  Steps below ``1e-6`` of the
        largest coefficient always settle.
    callback : callable, optional
        ``callback(n_iter, primal, gap)`` at each gap evaluation.
    z : ndarray, optional
        The linear predictor of the start, if at hand.

    Returns
    -------
    W, b, gap, n_iter
    """
    design, loss = datafit.design, datafit.loss
    d, T = design.n_features, design.n_tasks
    intercept = b is not None
    W = np.array(W, dtype=np.float64)
    # uncentred intercept: z = X W + c
    c = (np.array(b, dtype=np.float64) - _intercept_shift(design, W)
         if intercept else np.zeros(T))
    y2 = datafit.y.reshape(design.n_samples, -1)
    v2 = datafit.v.reshape(design.n_samples, -1)
    shared = design.shared
    record = penalty.record(d)

    def centred(W, c):
        return (c + _intercept_shift(design, W)) if intercept else None

    def task_sum(A):
        return A.sum(axis=0) if shared else design.task_sum(A[:, 0])

    def spread(c):
        return c[None, :] if shared else design.task_broadcast(c)[:, None]

    n_iter = 0
    # a penalty separable over tasks too, on a stacked design: a working set
    # of entries (each task's own features, as task-by-task solvers have),
    # the epochs skipping the other tasks' parts of a column; otherwise of
    # feature rows (with few features, a dense design's models are on the
    # rows' Gram matrices, which cost the same with fewer entries, and a
    # row brings its non-violating entries along, saving outer passes)
    by_entry = (penalty.task_separable and T > 1 and not shared
                and (sp.issparse(design.X) or d > _GRAM_MAX_ROWS))
    first_ws = _FIRST_WS * (T if by_entry else 1)
    ws_size = 0
    last_ws, stalled = None, False
    # the last pass's steps were small (a zero start needs none, as in
    # bcd: from alpha_max up it is the exact answer, a step only rounding)
    settled = coef_tol <= 0 or not np.any(W)
    settling = 0  # steps taken for the coefficient rule alone
    Z = z  # the linear predictor, carried along the steps
    # the steps move z = X W + c on the uncentred columns: that is the
    # design's X_c W + b only with an intercept variable or no centring
    carry = intercept or design.x_mean is None
    # the loss at Z (samples in rows), its parts computed once: by the last
    # line search, the gap, the next Newton model
    at = None
    dual = -np.inf  # the best dual value so far: any dual point bounds
    while True:
        stops = settled or settling == _SETTLING_STEPS  # once the gap is met
        # a settling step follows a met gap, whose dual point certifies the
        # descent's primal without another pass over X^T
        fresh = stops and settling > 0 and n_iter > 0
        b = centred(W, c)
        if fresh:
            primal, Z = datafit.fresh_primal(W, b, penalty)
            gap, at = primal - dual, None
        if not fresh or gap > tol_abs:
            if at is None and Z is not None:
                at = LossAt(loss, Z.reshape(design.n_samples, -1), y2, v2)
            primal, gap, U, Z = datafit.gap_and_gradient(W, b, penalty, Z, at)
            dual = max(dual, primal - gap)
            if gap <= tol_abs and stops and n_iter > 0 and not fresh:
                # it would end the solve: on a fresh predictor
                primal, Z = datafit.fresh_primal(W, b, penalty)
                gap, at = primal - dual, None
        if callback is not None:
            callback(n_iter, primal, gap)
        if gap <= tol_abs and stops:
            break
        if n_iter >= max_iter or stalled:
            break
        # once the gap is met, single steps until one is small: a full pass
        # could run on rounding (Huber's curvature flips at the kinks)
        steps = 1 if gap <= tol_abs else max_iter - n_iter
        settling += gap <= tol_abs
        z = Z.reshape(design.n_samples, -1)
        if at is None:
            at = LossAt(loss, z, y2, v2)
        if callable(columns):
            columns = columns()
        # -U is the gradient at the dual point (equal to G at the optimum)
        if by_entry:
            scores = penalty.entry_violations(W, -U)
            support = W != 0
            limit = d * T
        else:
            scores = penalty.violations(W, -U)
            support = np.any(W != 0, axis=1)
            limit = d
        ws_size = min(limit, max(first_ws, 2 * int(support.sum()), 2 * ws_size))
        ranked = scores.ravel().copy()
        ranked[support.ravel()] = np.inf
        candidates = np.flatnonzero(ranked > 0)
        chosen = candidates
        if candidates.size > ws_size:  # the worst ws_size (ties: any)
            chosen = candidates[np.argpartition(-ranked[candidates],
                                                ws_size - 1)[:ws_size]]
        if by_entry:  # the rows of the chosen entries, and which they are
            ws = np.unique(chosen // T)
            picked = np.zeros(d * T, dtype=np.bool_)
            picked[chosen] = True
            active = picked.reshape(d, T)[ws]
        else:
            ws = np.sort(chosen)
            active = None
        if ws.size == 0:  # nothing violates: only the intercept is off
            ws, active = np.arange(min(d, 1)), None
        if active is None:
            active = np.ones((ws.size, T), dtype=np.bool_)
        tol_in = _INNER_FRACTION * float(scores.max()) if scores.size else 0.0
        W_ws = np.ascontiguousarray(W[ws])
        seg = None if columns.dense else columns.segments(ws)
        moved, largest_move = False, 0.0
        for newton in range(steps):
            direction = _newton_direction(
                at, penalty, record, W_ws, ws, active, by_entry,
                seg, columns, intercept, task_sum, spread,
                tol_in if newton > 0 else -np.inf)
            if direction is None:
                break
            delta, dc, dz, data_slope = direction
            n_iter += 1
            step, at_step = _line_search(at, dz, penalty, W_ws, delta, ws,
                                         data_slope)
            W_new, c_new = W_ws + step * delta, c + step * dc
            if np.array_equal(W_new, W_ws) and np.array_equal(c_new, c):
                # no step, or one below rounding: with every row's violation
                # zero (tol_in = 0), an intercept gradient of rounding size
                # had taken such steps until max_iter
                break
            moved = True
            largest_move = max(largest_move, step * float(np.abs(delta).max()))
            W_ws, c = W_new, c_new
            dz *= step  # in place: no sample-sized temporary
            z += dz
            at, at_step = LossAt(loss, z, y2, v2, *at_step), None
            W[ws] = W_ws
            direction = dz = None  # not held through the next direction
        # no descent on the same working set twice: none left at this
        # precision (the working set grows otherwise)
        stalled = (not moved and last_ws is not None
                   and np.array_equal(ws, last_ws[0])
                   and np.array_equal(active, last_ws[1]))
        last_ws = ws, active
        # after a step of relative size coef_tol**0.75, Newton's (super)linear
        # convergence leaves an error below coef_tol; a tighter rule than
        # _FINEST_STEP would wait on steps of the order of the line search's
        # and the inner solver's rounding
        settled = coef_tol <= 0 or largest_move <= max(
            coef_tol ** 0.75, _FINEST_STEP) * float(np.abs(W).max(initial=0.0))
        # sample-sized arrays not held through the next gap evaluation
        direction = delta = dz = z = None
        if not carry:
            Z = at = None
    return W, b, gap, n_iter


def _newton_direction(at, penalty, record, W_ws, ws, active, by_entry, seg,
                      columns, intercept, task_sum, spread, tol_in):
    """One proximal Newton direction on the working rows ``ws`` at the
    linear predictor ``at.z`` (``at``: the loss there, a
    :class:`mtlinear._datafit.LossAt`), moving their entries ``active``
    (``by_entry``: the working set is of entries, the others are zero and
    stay so);
    ``seg``: the working columns' task segments (sparse designs,
    :meth:`DesignColumns.segments`).

    Returns ``(delta, dc, dz, data_slope)`` (the moves of the working rows,
    of the uncentred intercepts and of ``z``, and the data fit's directional
    derivative along them), or ``None`` when the working set's
    violation is at most ``tol_in``.  The sample-sized arrays of the model
    (derivatives, curvatures, predictors) are released on return.
    """
    T = W_ws.shape[1]
    z = at.z
    D, Hw = at.take_derivatives()  # released as soon as the model has them
    if columns.dense:  # sample vectors as contiguous lanes
        HwT = np.ascontiguousarray(Hw.T)
        G, HX, HXX = _newton_stats_dense(
            ws, columns.Xf, columns.lane, columns.lo, columns.hi,
            np.ascontiguousarray(D.T), HwT)
    else:
        G, HX, HXX, weighted, start = _newton_stats(ws, *columns.csc(), seg,
                                                    active, T, D, Hw)
    gc = task_sum(D) if intercept else np.zeros(T)
    del D

    def data_slope(delta, dc):  # F'(z) . dz for dz = X delta + dc
        return float(np.vdot(G, delta)) + float(np.vdot(gc, dc))

    viol = (penalty.entry_violations(W_ws, G, ws)[active].max() if by_entry
            else penalty.violations(W_ws, G, ws).max())
    if intercept:
        viol = max(viol, float(np.abs(gc).max()))
    if viol <= tol_in:
        return None
    hs = task_sum(Hw)
    dc = np.where(hs > 0, -gc / np.where(hs > 0, hs, 1.0), 0.0) \
        if intercept else np.zeros(T)
    delta = np.zeros_like(W_ws)
    tol_cd = _FORCING * viol
    # each branch: epoch(), predict(delta) and adopt(q) of _accelerated_cd on
    # the followers ``current`` of delta, the model's curvature term and
    # samples(), X delta in the sample layout
    max_calls = _MAX_EPOCHS
    if columns.dense and ws.size <= _GRAM_MAX_ROWS:
        # few working rows: epochs on their Gram matrices, no sample passes;
        # the followers of delta are P = (Hb_t delta_t)_t
        Hb = _newton_gram_dense(ws, columns.Xf, columns.lane, columns.lo,
                                columns.hi, HwT)
        current = np.zeros((T, ws.size))
        max_calls = _MAX_GRAM_EPOCHS // _GRAM_BLOCK

        def epoch():
            return _cd_epochs_gram(ws, Hb, W_ws, delta, current, dc, hs, G, HX,
                                   HXX, record, intercept, active, _GRAM_BLOCK,
                                   tol_cd)[1]

        def predict(delta):
            return np.einsum("tlk,kt->tl", Hb, delta)

        def adopt(q):
            current[...] = q

        def curvature_term(delta, q, dc):
            return (np.einsum("kt,tk->", delta, q)
                    + 2.0 * float(np.vdot(dc, np.einsum("kt,kt->t", HX, delta)))
                    + float(np.vdot(hs, dc * dc)))

        def samples():
            qT = np.empty_like(HwT)
            _predictor_dense(ws, columns.Xf, columns.lane, columns.lo,
                             columns.hi, delta, qT)
            return qT.T
    elif columns.dense:
        qT, HqT = np.zeros_like(HwT), np.zeros_like(HwT)
        current = qT

        def epoch():
            return _cd_epochs_dense(
                ws, columns.Xf, columns.lane, columns.lo, columns.hi, HwT,
                W_ws, delta, qT, HqT, dc, hs, G, HX, HXX, record, intercept,
                active, 1, tol_cd)[1]

        def predict(delta):
            out = np.empty_like(qT)
            _predictor_dense(ws, columns.Xf, columns.lane, columns.lo,
                             columns.hi, delta, out)
            return out

        def adopt(q):
            qT[...] = q
            np.multiply(HwT, qT, out=HqT)

        def curvature_term(delta, q, dc):
            return _curvature_term_dense(HwT, q, columns.lane, columns.lo,
                                         columns.hi, dc)

        def samples():
            return qT.T
    else:
        current = np.zeros_like(z)

        def epoch():
            return _cd_epochs(ws, *columns.csc(), seg, weighted, start, Hw,
                              W_ws, delta, current, dc, hs, G, HX, HXX, record,
                              intercept, active, 1, tol_cd)[1]

        def predict(delta):
            out = np.empty_like(current)
            _predictor_csc(ws, *columns.csc(), seg, delta, out)
            return out

        def adopt(q):
            current[...] = q

        def curvature_term(delta, q, dc):
            r = q + spread(dc)
            r *= r
            return float(np.vdot(Hw, r))

        def samples():
            return current

    def model(delta, dc, q=None):
        return (data_slope(delta, dc)
                + 0.5 * curvature_term(delta, current if q is None else q, dc)
                + penalty.value_change(W_ws, delta, ws))

    _accelerated_cd(epoch, model, tol_cd, (delta, dc), predict, adopt,
                    max_calls)
    return delta, dc, samples() + spread(dc), data_slope(delta, dc)


def _accelerated_cd(epoch, model, tol, state, predict, adopt,
                    max_calls=_MAX_EPOCHS):
    """Coordinate descent on the Newton model with Anderson extrapolation
    every ``_ANDERSON`` epochs, in place on ``state = (delta, dc)``.

    On correlated columns the epochs converge linearly with a rate close to
    one: each epoch moves little while the iterate is still far from the
    model's minimizer, so the step-size stopping rule stops early on a poor
    direction (line-search halvings, many Newton steps).  The iterates of
    such a linear fixed-point map are well extrapolated from their last
    differences: with ``R`` the ``K x p`` matrix of successive differences
    of ``(delta, dc)``, the combination ``sum_k a_k x_k`` with ``a = (R
    R^T)^{-1} 1 / 1^T (R R^T)^{-1} 1`` (Anderson); it is kept when it lowers
    the model.

    The epochs also keep sample-sized followers of ``delta`` (``X delta``
    and the like).  Their history would cost ``_ANDERSON + 1`` copies of
    them, more than the design itself on a tall stacked problem; being
    linear in ``delta``, a guess's are recomputed instead, by one pass over
    the working columns.

    ``epoch()`` runs one epoch (or a block of them) and returns its (last
    one's) largest violation, at most ``max_calls`` times;
    ``predict(delta)`` is the followers' source ``X delta`` of a guess,
    ``model(delta, dc, q)`` the model's value with it (``q=None``: at the
    current iterate) and ``adopt(q)`` makes it the followers' of the
    iterate.  Stops when an epoch's violation is at most ``tol``; returns
    the number of calls.
    """
    history = []
    done = 0
    while done < max_calls:
        done += 1
        if epoch() <= tol:
            break
        history.append(tuple(x.copy() for x in state))
        if len(history) <= _ANDERSON:
            continue
        flat = [np.concatenate((h[0].ravel(), h[1])) for h in history]
        R = np.diff(np.array(flat), axis=0)
        iterates, history = history[1:], []
        C = R @ R.T
        scale = np.trace(C)
        if not scale > 0:
            continue
        try:
            a = np.linalg.solve(C / scale + 1e-12 * np.eye(len(C)),
                                np.ones(len(C)))
        except np.linalg.LinAlgError:
            continue
        if not (np.isfinite(a).all() and a.sum() != 0):
            continue
        a /= a.sum()
        guess = [sum(w * it[k] for w, it in zip(a, iterates))
                 for k in range(len(state))]
        q = predict(guess[0])
        if model(*guess, q) < model(*state):
            for x, g in zip(state, guess):
                x[...] = g
            adopt(q)
        q = None
    return done


def _line_search(at, dz, penalty, W_ws, delta, ws, data_slope):
    """Step along ``(delta, dz)`` from the linear predictor ``at.z`` (``at``:
    the loss there); 0 when the direction does not descend.

    ``P'(s)`` is the left derivative of the objective along the line at step
    ``s`` (data-fit part an inner product in sample space, penalty part from
    the penalty's ``slope``; the right derivative at 0).  ``P`` is convex along
    the line, so ``P'(s) <= 0`` means ``P(s) <= P(0)``; a step with ``0 < P'(s) <= |P'(0)| / 2`` is
    taken too (the trapezoid rule then predicts a decrease of at least ``s
    |P'(0)| / 4``), which keeps the full Newton step near the solution, where
    ``P'(1)`` is a third-order term of either sign.  Otherwise the step halves.
    See :func:`mtlinear._newton_cg.accepts_step` for a loss of unbounded
    curvature.  ``data_slope`` is the data fit's part of ``P'(0)``, known
    from the Newton model's gradient.

    Returns the step and the loss at its point as far as the search
    evaluated it, ``(F, D, H)`` (:class:`mtlinear._datafit.LossAt`'s
    fields, ``None`` where not evaluated): the slopes take the curvature
    along with the derivative (one pass, the next model's).
    """
    loss, z, y, v = at.loss, at.z, at.y, at.v
    values = {0.0: at.F} if at.F is not None else {}
    trials = TrialDerivatives(loss, y, v)

    @functools.lru_cache(maxsize=None)
    def slope(s):  # right derivative at 0, left derivative after
        data = (data_slope if s == 0 else
                float(np.vdot(dz, trials.derivative(s, z + s * dz))))
        return data + penalty.slope(W_ws + s * delta, delta,
                                    -1.0 if s > 0 else 1.0, ws)

    def objective(s):
        if s not in values:
            values[s] = loss.value(z + s * dz, y, v)
        return values[s], penalty.value(W_ws + s * delta, ws)

    start = slope(0.0)
    if not start < 0:
        return 0.0, (None, None, None)
    t = backtrack(slope, start, loss.bounded_curvature, _MAX_BACKTRACK)
    t = refuse_rise(t, slope, objective, _MAX_BACKTRACK)
    D, H = trials.at(t) or (None, None)
    return t, (values.get(t), D, H)
