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

With a shared design the epochs run by blocks of ``_BLOCK`` rows: one BLAS
product gives a block's gradients, the block's own Gram matrix keeps them
exact while its rows are updated in turn, and one more product applies the
block's change (:func:`_epoch_blocks`, :func:`_epoch_gram_blocks`).

On the sufficient statistics the whole solve is one compiled call
(:func:`_bcd_gram`); on the residuals the loops are Python around compiled
epochs.  Both use the same compiled screening test (:func:`_screen_rows`) and
working-set choice (:func:`_next_working_set`).
"""
import numpy as np
import scipy.sparse as sp
from numba import njit

from ._datafit import _gram_gap_from, _gram_sums, gap_from_sums
from .penalties._compiled import (feasible_dual, row_dual_norm, row_prox,
                                  row_screen, value)

__all__ = ["bcd", "make_bcd_state", "ResidualState", "GramState"]

_ANDERSON_K = 3
_BLOCK = 64  # rows per block in the shared-design epochs
_GRAM_BLOCK_MAX_FLOATS = 2 ** 23  # copy of Q's working-set rows
_GROWTH = 2  # working-set growth factor per outer iteration
_FIRST_CHECK = 2  # epochs before the first inner gap check
_CHEAP_WS_RATIO = 10  # rows per working-set row below which it is solved to tol
_NO_ROWS = np.empty(0, dtype=np.int64)


# ------------------------------------------------------------ Numba kernels
@njit(cache=True)
def _row_step(W, j, g, L, p, work):
    """Proximal update of row ``j`` of ``W`` in place (the penalty's exact
    row minimizer in the metric ``diag(L)``); ``work`` is (3, T) scratch and
    ``work[0]`` receives the old row."""
    old, a, new = work[0], work[1], work[2]
    for t in range(W.shape[1]):
        old[t] = W[j, t]
        a[t] = L[t] * old[t] - g[t]
    row_prox(p, j, a, L, new)
    for t in range(W.shape[1]):
        W[j, t] = new[t]


@njit(cache=True)
def _update_row_residual(W, j, g, L, p, work, lo, hi, col, means,
                         beta, col_data, col_rows, R):
    """Prox step on row ``j``, then ``R -= x_j delta`` and ``beta += m_j delta``.

    ``col_rows`` is ``None``-like (size 0) for a dense column ``col_data``
    (all rows), else the sorted row indices of a sparse column.
    """
    _row_step(W, j, g, L, p, work)
    old = work[0]
    for t in range(W.shape[1]):
        delta = W[j, t] - old[t]
        if delta == 0.0:
            continue
        beta[t] += means[t, j] * delta
        c = col[t]
        if col_rows.size == 0:
            # 1-d views: this loop vectorizes, R[c, i] indexing would not
            r_seg = R[c, lo[t]:hi[t]]
            x_seg = col_data[lo[t]:hi[t]]
            for i in range(r_seg.size):
                r_seg[i] -= x_seg[i] * delta
        else:
            k0 = np.searchsorted(col_rows, lo[t])
            k1 = np.searchsorted(col_rows, hi[t])
            for k in range(k0, k1):
                R[c, col_rows[k]] -= col_data[k] * delta


@njit(cache=True)
def _epoch_dense(XT, R, lo, hi, col, a, seg_w, means, beta, curv, W, ws, p):
    """One pass over the rows ``ws`` of ``W``.

    ``XT`` holds the working-set columns only, as rows (``XT[l]`` is feature
    ``ws[l]``'s column, contiguous: C order).  Task ``t`` owns entries
    ``lo[t]:hi[t]`` of residual row ``R[col[t]]`` (``R`` is (T, n) for a
    shared design, (1, n) for stacked tasks), with weight ``a[t]``; ``R`` is
    the uncentred residual, the centring enters through
    ``beta[t] = m_t . w_t`` (see :class:`ResidualState`).
    """
    T = W.shape[1]
    g = np.empty(T)
    L = np.empty(T)
    work = np.empty((3, T))
    no_rows = np.empty(0, dtype=np.int64)
    dots = np.empty(T)
    shared = R.shape[0] == T and T > 1  # every task on all rows: one BLAS gemv
    for l in range(ws.size):
        j = ws[l]
        xj = XT[l]
        if shared:
            dots = np.dot(R, xj)
        for t in range(T):
            dot = dots[t] if shared else np.dot(xj[lo[t]:hi[t]],
                                                R[col[t], lo[t]:hi[t]])
            g[t] = -a[t] * (dot + seg_w[t] * means[t, j] * beta[t])
            L[t] = curv[j, t]
        _update_row_residual(W, j, g, L, p, work, lo, hi, col, means,
                             beta, xj, no_rows, R)


@njit(cache=True)
def _sweep_block(G, gram_b, Lb, rows, W, scale, p, delta):
    """Prox updates of the feature ``rows`` of ``W`` in turn, within one block.

    ``G[:, l]`` holds the gradient of row ``rows[l]`` and follows the updates:
    a change ``delta_lt`` moves the gradient of row ``i`` of the block by
    ``scale_t gram_b[l, i] delta_lt``.  ``Lb[l]`` are the row's curvatures.
    ``delta`` receives the changes; returns whether any row moved.
    """
    T = W.shape[1]
    g = np.empty(T)
    work = np.empty((3, T))
    changed = False
    for l in range(rows.size):
        j = rows[l]
        for t in range(T):
            g[t] = G[t, l]
        _row_step(W, j, g, Lb[l], p, work)
        moved = False
        for t in range(T):
            delta[l, t] = W[j, t] - work[0, t]
            moved |= delta[l, t] != 0.0
        if not moved:
            continue
        changed = True
        Qb = gram_b[l]
        for t in range(T):
            c = scale[t] * delta[l, t]
            if c != 0.0:
                for i in range(rows.size):
                    G[t, i] += c * Qb[i]
    return changed


@njit(cache=True)
def _epoch_blocks(blocks, gram, ws, R, a, seg_w, mean, beta, curv, W, p):
    """:func:`_epoch_dense` for a shared dense design, by blocks of rows.

    ``blocks[b]`` (B, n) holds the scaled columns of features
    ``ws[b B:(b + 1) B]`` (zero padded) and ``gram[b]`` their centred Gram
    matrix ``x~_l^T x~_i - S m_l m_i``.  A block's gradients come from one
    BLAS product, are kept exact inside the block through ``gram`` as its rows
    are updated in turn (the same iterates as row by row), and the residual
    takes the block's change in one more product: the O(n T) work per row
    runs at matrix-product speed.
    """
    n_blocks, B, n = blocks.shape
    T = W.shape[1]
    Lb = np.empty((B, T))
    delta = np.zeros((B, T))
    for b in range(n_blocks):
        Xb = blocks[b]
        G = np.dot(R, Xb.T)  # (T, B): R_t^T x~_l, contiguous along the block
        start = b * B
        size = min(B, ws.size - start)
        rows = ws[start:start + size]
        for t in range(T):
            for l in range(size):
                # the gradient: minus a_t (x~_l^T R_t + S m_l beta_t)
                G[t, l] = -a[t] * (G[t, l] + seg_w[0] * mean[rows[l]] * beta[t])
        for l in range(size):
            for t in range(T):
                Lb[l, t] = curv[rows[l], t]
        changed = _sweep_block(G, gram[b], Lb, rows, W, a, p, delta)
        if changed:
            for t in range(T):
                acc = 0.0
                for l in range(size):
                    acc += mean[ws[start + l]] * delta[l, t]
                beta[t] += acc
            R -= np.dot(delta.T, Xb)  # padded rows of delta stay zero
            delta[:size] = 0.0


@njit(cache=True)
def _epoch_csc(data, indices, indptr, R, lo, hi, col, a, seg_w, means, beta,
               curv, W, ws, p):
    """:func:`_epoch_dense` for a CSC block (sorted indices): O(nnz) a row."""
    T = W.shape[1]
    g = np.empty(T)
    L = np.empty(T)
    work = np.empty((3, T))
    for l in range(ws.size):
        j = ws[l]
        rows = indices[indptr[l]:indptr[l + 1]]
        vals = data[indptr[l]:indptr[l + 1]]
        for t in range(T):
            k0 = np.searchsorted(rows, lo[t])
            k1 = np.searchsorted(rows, hi[t])
            dot = 0.0
            c = col[t]
            for k in range(k0, k1):
                dot += vals[k] * R[c, rows[k]]
            g[t] = -a[t] * (dot + seg_w[t] * means[t, j] * beta[t])
            L[t] = curv[j, t]
        _update_row_residual(W, j, g, L, p, work, lo, hi, col, means,
                             beta, vals, rows, R)


@njit(cache=True)
def _epoch_gram(Q, omega, C, W, P, ws, p):
    """One pass over ``ws`` with ``P[:, t] = Q_t W[:, t]`` kept in sync.

    ``Q`` is (1, d, d) when shared by all tasks (then scaled by ``omega_t``)
    or (T, d, d).
    """
    d, T = W.shape
    shared = Q.shape[0] == 1
    g = np.empty(T)
    L = np.empty(T)
    work = np.empty((3, T))
    delta = np.empty(T)
    for j in ws:
        for t in range(T):
            q = 0 if shared else t
            g[t] = omega[t] * P[j, t] - C[j, t]
            L[t] = omega[t] * Q[q, j, j]
        _row_step(W, j, g, L, p, work)
        moved = False
        for t in range(T):
            delta[t] = W[j, t] - work[0, t]
            moved |= delta[t] != 0.0
        if not moved:
            continue
        if shared:  # P[k] += Q[j, k] delta: contiguous rows of P and Q
            Qj = Q[0, j]
            for k in range(d):
                qk = Qj[k]
                for t in range(T):
                    P[k, t] += qk * delta[t]
        else:
            for k in range(d):
                for t in range(T):
                    P[k, t] += Q[t, j, k] * delta[t]


@njit(cache=True)
def _epoch_gram_blocks(rows, gram, ws, omega, C, W, P, p):
    """:func:`_epoch_gram` for one shared ``Q``, by blocks of rows.

    ``rows[b]`` (B, d) holds the rows ``Q[ws[b B:(b + 1) B]]`` (zero padded)
    and ``gram[b]`` the block's ``Q[ws_b][:, ws_b]``.  Inside a block the
    gradients follow the updates through ``gram``; ``P`` takes the block's
    change in one BLAS product.
    """
    n_blocks, B, d = rows.shape
    T = W.shape[1]
    G = np.empty((T, B))
    Lb = np.empty((B, T))
    delta = np.zeros((B, T))
    for b in range(n_blocks):
        start = b * B
        size = min(B, ws.size - start)
        block_rows = ws[start:start + size]
        for l in range(size):
            j = block_rows[l]
            for t in range(T):
                G[t, l] = omega[t] * P[j, t] - C[j, t]
                Lb[l, t] = omega[t] * gram[b, l, l]
        changed = _sweep_block(G, gram[b], Lb, block_rows, W, omega, p, delta)
        if changed:
            P += np.dot(rows[b].T, delta)
            delta[:size] = 0.0


@njit(cache=True)
def _copy_matrix(source, target):
    """``target[:] = source`` for two (d, T) arrays, as loops: numba's array
    assignment compiles its shape-mismatch message (about 2 s of every
    first-ever compilation)."""
    for i in range(source.shape[0]):
        for t in range(source.shape[1]):
            target[i, t] = source[i, t]


@njit(cache=True)
def _gather_blocks(Q, ws, B):
    """Rows ``Q[ws]`` by blocks of ``B`` (zero padded) and each block's
    ``Q[ws_b][:, ws_b]`` (the input of :func:`_epoch_gram_blocks`)."""
    k, d = ws.size, Q.shape[1]
    n_blocks = -(-k // B)
    rows = np.empty((n_blocks, B, d))
    if n_blocks > 0:
        rows[n_blocks - 1] = 0.0  # the padding
    gram = np.zeros((n_blocks, B, B))
    for l in range(k):
        b, i = l // B, l % B
        for m in range(d):
            rows[b, i, m] = Q[ws[l], m]
        start = b * B
        for m in range(min(B, k - start)):
            gram[b, i, m] = Q[ws[l], ws[start + m]]
    return rows, gram


@njit(cache=True)
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


@njit(cache=True)
def _gram_gap(W, P, omega, C, yy, U, rows, p):
    """:func:`_gap` from the statistics: ``(primal, gap, c)`` with the dual
    factors ``c`` of ``U`` (the negative gradient on the feature ``rows``)."""
    c, conj = feasible_dual(p, U, rows)
    primal, gap = _gram_gap_from(W, P, omega, C, yy, value(p, W), c, conj)
    return primal, gap, c


@njit(cache=True)
def _gram_ws_gap(W, P, omega, C, yy, ws, p):
    """The gap of the problem restricted to the working set ``ws``."""
    U = _gram_neg_gradient(C, P, omega, ws)
    return _gram_gap(W, P, omega, C, yy, U, ws, p)[1]


@njit(cache=True)
def _inner_gram(Q, rows, gram, ws, omega, C, yy, W, P, p,
                max_epochs, inner_tol, outer_gap, check_every):
    """The working-set solve of :func:`bcd` on :class:`GramState`, in one
    compiled call: epochs, Anderson extrapolation every ``_ANDERSON_K + 1``
    epochs (kept if it lowers the objective), gap checks on the working set
    scheduled by :func:`_epochs_to_target`.  ``rows`` / ``gram`` are the
    blocks of :func:`_gather_blocks` (empty: the plain epochs on ``Q``).
    ``W`` and ``P = Q W`` are updated in place; returns the epochs run.

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
    while epochs < max_epochs:
        if blocks:
            _epoch_gram_blocks(rows, gram, ws, omega, C, W, P, p)
        else:
            _epoch_gram(Q, omega, C, W, P, ws, p)
        epochs += 1
        for l in range(k):
            for t in range(T):
                history_W[n_history, l * T + t] = W[ws[l], t]
        _copy_matrix(P, history_P[n_history].reshape(P.shape))
        n_history += 1
        if n_history == _ANDERSON_K + 1:
            n_history = 0
            c = _anderson_kernel(history_W)
            if c.size:
                current = _gram_objective(W, P, omega, C, yy, p)
                mix = np.dot(c, history_W[1:])
                for l in range(k):
                    for t in range(T):
                        W[ws[l], t] = mix[l * T + t]
                _copy_matrix(np.dot(c, history_P[1:]).reshape(P.shape), P)
                if _gram_objective(W, P, omega, C, yy, p) >= current:  # back to the epoch's
                    for l in range(k):
                        for t in range(T):
                            W[ws[l], t] = history_W[_ANDERSON_K, l * T + t]
                    _copy_matrix(history_P[_ANDERSON_K].reshape(P.shape), P)
        if epochs == next_check:
            gap = _gram_ws_gap(W, P, omega, C, yy, ws, p)
            if gap <= inner_tol:
                break
            next_check = min(epochs + _epochs_to_target(
                last_gap, gap, epochs - last_check, inner_tol, check_every),
                (epochs // check_every + 1) * check_every)
            last_gap, last_check = gap, epochs
    return epochs


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
              tol_abs, ws_start, inner_ratio, check_every, screen,
              block_max_floats, trace, top_factor):
    """:func:`bcd` on :class:`GramState`, outer loop included, in one
    compiled call: on a small problem the Python of an outer iteration
    (gradient, gap, screening, working set) cost more than its arithmetic.

    ``W`` and ``P = Q W`` are updated in place.  Row ``i`` of ``trace``
    receives ``(epochs, primal, gap)`` of the ``i``-th outer iteration while
    it has rows (for the callback).  Returns ``(gap, epochs, rows written)``.
    """
    d, T = W.shape
    active = np.ones(d, dtype=np.bool_)  # rows not screened out
    in_last_ws = np.zeros(d, dtype=np.bool_)
    ws = np.empty(0, dtype=np.int64)
    rows_b = gram_b = np.empty((0, 1, 1))  # no blocks (see _inner_gram)
    n_iter = n_trace = 0
    ws_size = ws_start
    while True:
        rows = np.flatnonzero(active)
        U = _gram_neg_gradient(C, P, omega, rows)
        primal, gap, c = _gram_gap(W, P, omega, C, yy, U, rows, p)
        if (gap <= tol_abs or n_iter >= max_iter) and rows.size < d:
            # the gap of the screened problem; certify on the full one
            rows = np.arange(d)
            U = _gram_neg_gradient(C, P, omega, rows)
            primal, gap, c = _gram_gap(W, P, omega, C, yy, U, rows, p)
            active[:] = True
        if n_trace < trace.shape[0]:
            trace[n_trace, 0], trace[n_trace, 1], trace[n_trace, 2] = (n_iter,
                                                                        primal, gap)
            n_trace += 1
        if gap <= tol_abs or n_iter >= max_iter:
            return gap, n_iter, n_trace
        if screen and p.lam > 0.0:
            zero = _screen_rows(U, c, curv, rows, gap, p, min_curv, top_factor)
            moved = False
            n_kept = 0
            for l in range(rows.size):  # drop the zero rows, compacting
                if zero[l]:
                    active[rows[l]] = False
                    for t in range(T):
                        moved |= W[rows[l], t] != 0.0
                        W[rows[l], t] = 0.0
                else:
                    rows[n_kept] = rows[l]
                    for t in range(T):
                        U[n_kept, t] = U[l, t]
                    n_kept += 1
            rows, U = rows[:n_kept], U[:n_kept]
            if moved:
                _gram_reset(Q, W, np.flatnonzero(active), P)
        new_ws, ws_size, final = _next_working_set(W, rows, U, p, ws_size, ws,
                                                   in_last_ws)
        same = new_ws.size == ws.size
        for l in range(ws.size if same else 0):
            same &= new_ws[l] == ws[l]
        if not same:
            ws = new_ws
            if Q.shape[0] == 1 and ws.size * d <= block_max_floats:
                rows_b, gram_b = _gather_blocks(Q[0], ws, _BLOCK)
            else:
                rows_b = gram_b = np.empty((0, 1, 1))
        inner_tol = tol_abs if final else max(inner_ratio * gap, tol_abs)
        n_iter += _inner_gram(Q, rows_b, gram_b, ws, omega, C, yy, W, P, p,
                              max_iter - n_iter, inner_tol, gap, check_every)
        # exact state for the outer gap (extrapolations accumulate rounding)
        _gram_reset(Q, W, ws, P)


# ------------------------------------------------------------ states
def _support_if_sparse(W):
    """The nonzero rows of ``W`` when they are at most half of them, else
    ``None``: a product with ``W`` then needs only those columns."""
    support = np.flatnonzero(np.any(W != 0, axis=1))
    return support if 2 * support.size <= W.shape[0] else None


class ResidualState:
    r"""Residuals of the design itself (dense in any order, or sparse), no
    centred or reordered copy of ``X``.

    The weights factor as ``v_i = a_t q_i^2`` (``q = 1`` when they are
    constant within each task, the usual case).  With the per-task means
    ``m_t``, the centred residual is ``r_i = q_i (R_i + beta_t)`` where
    ``R = y - X W`` is uncentred and ``beta_t = m_t . w_t``.  Because the
    targets are centred, ``sum_{i in t} q_i^2 R_i = -S_t beta_t`` with
    ``S_t = sum_{i in t} q_i^2``, which gives

    .. math:: -\partial F / \partial w_{jt}
              = a_t \big(\tilde x_j^T \tilde R_t + S_t m_{tj} \beta_t\big),
              \qquad
              L_{jt} = a_t \big(\|\tilde x_j\|_t^2 - S_t m_{tj}^2\big),

    (tildes: rows scaled by ``q``), so a row update touches only the nonzeros
    of ``x_j`` plus ``T`` scalars.  The epochs run on a copy of the working
    set's columns (Fortran order or CSC), made once per working set.
    """

    def __init__(self, problem):
        design, v, y = problem.design, problem.v, problem.y
        n, T = design.n_samples, design.n_tasks
        self.shared = design.shared
        if self.shared:
            totals = v.sum(axis=0)
            ref = int(np.argmax(totals))
            row_w, self.a = v[:, ref], totals / totals[ref]
            self.lo, self.hi = np.zeros(T, np.int64), np.full(T, n, np.int64)
            self.col = np.arange(T)
            means = design.x_mean
            self.means = np.zeros((T, design.n_features)) if means is None \
                else np.tile(means, (T, 1))
            first = row_w[:1]
            uniform = np.all(row_w == row_w[0])
        else:
            row_w, self.a = v, np.ones(T)
            self.lo, self.hi = design.task_ptr[:-1], design.task_ptr[1:]
            self.col = np.zeros(T, np.int64)
            self.means = np.zeros((T, design.n_features)) if design.x_mean is None \
                else design.x_mean
            first = row_w[self.lo]
            uniform = np.all(row_w == np.repeat(first, design.counts))
            self.task_of_row = np.repeat(np.arange(T), design.counts)
        # fold a row weight constant within each task into a_t
        self.a = self.a * first if uniform else self.a
        self.q = None if uniform else np.sqrt(row_w)
        X = design.X
        if sp.issparse(X):
            X = sp.csc_matrix(X)
            X.sort_indices()
        self.X = X
        y = y if y.ndim == 2 else y[:, None]
        self.y = y if self.q is None else y * self.q[:, None]
        q_sq = np.ones(n) if self.q is None else self.q ** 2
        self.seg_w = self._segment_sums(np.ones((n, 1)), q_sq)[0]
        curv = (self._segment_sums(X, q_sq, square=True)
                - self.seg_w * self.means.T ** 2) * self.a
        self.curv = np.ascontiguousarray(np.maximum(curv, 0.0))
        self.min_row_curvature = float(self.curv.max(axis=1).min())
        self._ws = None

    def _segment_sums(self, M, weights, square=False):
        """``sum_{i in t} w_i M_ij`` (or ``M_ij^2``) as a (d, T) array."""
        if sp.issparse(M):
            M = sp.diags(weights) @ (M.multiply(M) if square else M)
            parts = (self._indicator().T @ M).toarray() if not self.shared \
                else np.asarray(M.sum(axis=0))
        else:  # einsum: no (n, d) temporary
            spec = "ij,ij,i->j" if square else "ij,i->j"
            segments = [(0, M.shape[0])] if self.shared else zip(self.lo, self.hi)
            parts = np.array([np.einsum(spec, *([M[lo:hi]] * (1 + square)),
                                        weights[lo:hi]) for lo, hi in segments])
        if self.shared:
            return np.repeat(parts.reshape(-1, 1), len(self.a), axis=1)
        return parts.T

    def _indicator(self, values=None):
        """Sparse (n, T) matrix with ``values`` (default 1) at (i, task(i))."""
        n = len(self.task_of_row)
        values = np.ones(n) if values is None else values
        return sp.csr_matrix((values, (np.arange(n), self.task_of_row)),
                             shape=(n, len(self.a)))

    def _scaled(self, M):
        """Rows of ``M`` times ``q``."""
        if self.q is None:
            return M
        return sp.diags(self.q) @ M if sp.issparse(M) else M * self.q[:, None]

    def reset(self, W, ws=None):
        """Recompute ``R`` and ``beta`` at ``W`` (zero outside ``ws`` if given)."""
        self.beta = np.einsum("tj,jt->t", self.means, W)
        if ws is not None and ws is self._ws and self._blocks is not None:
            # the working set's scaled columns are at hand
            self.R = np.ascontiguousarray((self.y - self._Xws @ W[ws]).T)
            return
        support = _support_if_sparse(W)
        X = self.X if support is None else self.X[:, support]
        W = W if support is None else W[support]
        if self.shared:
            Z = np.asarray(X @ W)
        else:
            Z = np.zeros((self.y.shape[0], 1))
            for t in range(len(self.a)):
                rows = slice(self.lo[t], self.hi[t])
                Z[rows, 0] = X[rows] @ W[:, t]
        self.R = np.ascontiguousarray((self.y - self._scaled(Z)).T)  # (T or 1, n)

    def snapshot(self):
        """Copies of the arrays affine in ``W`` (see :func:`_try_anderson`)."""
        return self.R.copy(), self.beta.copy()

    def load(self, arrays):
        self.R, self.beta = arrays

    def _set_working_set(self, ws):
        self._ws = ws
        self._blocks = None
        if sp.issparse(self.X):
            self._Xws = sp.csc_matrix(self._scaled(self.X[:, ws]))
            return
        if not self.shared:
            self._Xws = np.asfortranarray(self._scaled(self.X[:, ws]))
            return
        # shared dense design: the columns in blocks of _BLOCK rows, (k, n)
        # C order so that the (n, k) Fortran view serves the gradients
        k, n = ws.size, self.X.shape[0]
        n_blocks = -(-k // _BLOCK)
        flat = np.zeros((n_blocks * _BLOCK, n))
        flat[:k] = self._scaled(self.X[:, ws]).T
        self._Xws = flat[:k].T
        blocks = flat.reshape(n_blocks, _BLOCK, n)
        m = np.zeros(n_blocks * _BLOCK)
        m[:k] = self.means[0][ws]
        m = m.reshape(n_blocks, _BLOCK)
        gram = blocks @ blocks.transpose(0, 2, 1)
        gram -= self.seg_w[0] * m[:, :, None] * m[:, None, :]
        self._blocks, self._gram = blocks, gram

    def epoch(self, W, ws, p):
        """One epoch over the working set ``ws`` (penalty record ``p``)."""
        if ws is not self._ws:
            self._set_working_set(ws)
        if self._blocks is not None:
            _epoch_blocks(self._blocks, self._gram, ws, self.R, self.a,
                          self.seg_w, self.means[0], self.beta, self.curv, W,
                          p)
            return
        args = (self.R, self.lo, self.hi, self.col, self.a, self.seg_w,
                self.means, self.beta, self.curv, W, ws, p)
        if sp.issparse(self._Xws):
            block = self._Xws
            _epoch_csc(block.data, block.indices, block.indptr, *args)
        else:
            _epoch_dense(self._Xws.T, *args)  # the Fortran copy's C-order view

    def neg_gradient(self, rows):
        """``-dF/dW`` on feature ``rows``: ``a_t (X_rows^T R_t + S_t m_t beta_t)``."""
        d = self.X.shape[1]
        if rows is self._ws:
            Xr, R = self._Xws, self.R.T
        else:
            # a dense column subset is a copy: unless it is small, the rows of
            # the full product are cheaper
            few = sp.issparse(self.X) or 2 * rows.size < d
            Xr = self.X[:, rows] if few and rows.size < d else self.X
            R = self._scaled(self.R.T)
        if self.shared:
            # (R^T X)^T: with X in C order this product runs 1.5 to 2.5 times
            # faster than X^T R (measured with OpenBLAS)
            XtR = (R.T @ Xr).T
        else:
            XtR = (self._indicator(R[:, 0]).T @ Xr).T
        XtR = XtR.toarray() if sp.issparse(XtR) else np.asarray(XtR)
        if XtR.shape[0] != rows.size:
            XtR = XtR[rows]
        XtR += (self.means[:, rows] * (self.seg_w * self.beta)[:, None]).T
        return XtR * self.a

    def _centred_residual(self):
        shift = self.beta if self.shared else self.beta[self.task_of_row][:, None]
        if self.q is not None:
            shift = shift * self.q[:, None]
        return self.R.T + shift

    def _task_sums(self, M):
        return M.sum(axis=0) if self.shared else np.add.reduceat(M[:, 0], self.lo)

    def null_value(self):
        """Objective at ``W = 0``: ``sum_i v_i y_i^2 / 2``."""
        return 0.5 * float(self._task_sums(self.y ** 2) @ self.a)

    def sums(self):
        """Per task, ``sum_i v_i r_i^2`` and ``sum_i v_i r_i y_i`` (for the gap)."""
        r = self._centred_residual()
        return (self._task_sums(r * r) * self.a,
                self._task_sums(r * self.y) * self.a)


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

    def solve(self, W, record, max_iter, tol_abs, ws_start, inner_ratio,
              check_every, screen, callback):
        """:func:`bcd` from ``W`` (updated in place; the state reset at it),
        in one compiled call (:func:`_bcd_gram`) with the penalty's ``record``;
        returns ``(gap, epochs)``."""
        # a gap per outer iteration, for the callback (far fewer than epochs)
        trace = np.empty((0 if callback is None else min(max_iter, 10 ** 5) + 2, 3))
        gap, n_iter, n_trace = _bcd_gram(
            self.Q, self.omega, self.C, self.yy, self.curv,
            self.min_row_curvature, W, self.P, record, max_iter, tol_abs,
            ws_start, inner_ratio, check_every, screen, _GRAM_BLOCK_MAX_FLOATS,
            trace, _top_factor(record))
        self._W = W
        if callback is not None:
            for epochs, primal, outer_gap in trace[:n_trace]:
                callback(int(epochs), primal, outer_gap)
        return gap, n_iter

    def neg_gradient(self, rows):
        return _gram_neg_gradient(self.C, self.P, self.omega, rows)

    def null_value(self):
        return 0.5 * float(self.yy.sum())

    def sums(self):
        WQW, CW = _gram_sums(self._W, self.P, self.omega, self.C)
        return self.yy - 2 * CW + WQW, self.yy - CW


def make_bcd_state(problem, use_gram):
    return GramState(problem) if use_gram else ResidualState(problem)


# ------------------------------------------------------------ outer loop
def _gap(state, W, U, rows, penalty):
    """Primal and gap with the dual point ``c V r`` (``U = X^T V r`` on the
    feature ``rows``; ``c`` one factor per task, see
    ``Penalty.feasible_dual``)."""
    c, conj = penalty.feasible_dual(U, rows)
    return gap_from_sums(*state.sums(), penalty.value(W), c, conj)


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
def _epochs_to_target(gap_before, gap, epochs, target, most):
    """Epochs until the next gap check: the linear rate seen over the last
    ``epochs`` epochs predicts when ``gap`` reaches ``target`` (from 1 to
    ``most``), so that a converging solve stops close to the target."""
    if not 0.0 < target < gap < gap_before:
        return most
    rate = np.log(gap / gap_before) / epochs  # < 0: log-gap per epoch
    return int(min(max(np.ceil(np.log(target / gap) / rate), 1), most))


def _screen(state, record, penalty, U, rows, gap):
    """Gap-safe sphere test: the rows of ``rows`` provably zero at the optimum.

    The dual objective is 1-strongly concave in the norm
    ``||Theta||^2_{V^-1} = sum_i Theta_i^2 / v_i``, so the optimal dual point
    lies within ``r = sqrt(2 gap)`` of the current feasible one ``c Theta``.
    By Cauchy-Schwarz ``|x_j^T (Theta* - c Theta)_t| <= r sqrt(L_jt)`` with
    ``L_jt = sum_i v_i x_ij^2``; the penalty's ``row_screen`` says whether a
    row is zero at the optimum for every ``U*_j`` in that box (this holds
    with a ridge part too).
    """
    c = np.broadcast_to(np.asarray(penalty.feasible_dual(U, rows)[0],
                                   dtype=np.float64), (U.shape[1],))
    return _screen_rows(U, np.ascontiguousarray(c), state.curv, rows, gap,
                        record, state.min_row_curvature, _top_factor(record))


def _top_factor(record):
    """The largest penalty factor (for :func:`_screen_rows`' shortcut)."""
    return float(record.factor.max()) if record.factor.size else 1.0


@njit(cache=True)
def _screen_rows(U, c, curv, rows, gap, p, min_curv, top_factor):
    """:func:`_screen` with the dual factors ``c`` (one per task) and the
    curvatures ``curv`` (d, T); ``min_curv`` is the smallest row maximum.

    When ``2 gap min_curv >= (lam max_j f_j)^2`` the box of every row reaches
    past its threshold: no row can pass, the test is skipped.
    """
    zero = np.zeros(rows.size, dtype=np.bool_)
    lam = p.lam * top_factor
    if 2.0 * gap * min_curv >= lam * lam:
        return zero
    radius = np.sqrt(2.0 * max(gap, 0.0))
    T = U.shape[1]
    u = np.empty(T)
    for l in range(rows.size):
        for t in range(T):
            u[t] = c[t] * U[l, t]
        zero[l] = row_screen(p, rows[l], u, radius, curv[rows[l]])
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


def bcd(state, penalty, W, max_iter, tol_abs, callback=None, fallback=None,
        ws_start=100, inner_ratio=0.3, check_every=5, screen=True):
    """Working-set block coordinate descent with gap-safe screening.

    Parameters
    ----------
    state : ResidualState or GramState
    penalty : L1 or L21 (``row_separable``)
    W : ndarray (d, T)
        Starting point (not modified).
    fallback : ndarray (d, T), optional
        A second starting point (not modified); the solve starts from the one
        with the lower objective.
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
    record = penalty.record(W.shape[0])
    W = _lower_start(state, penalty, W, fallback)
    if isinstance(state, GramState):
        gap, n_iter = state.solve(W, record, max_iter, tol_abs, ws_start,
                                  inner_ratio, check_every, screen, callback)
        return W, gap, n_iter
    d, T = W.shape
    active = np.ones(d, dtype=bool)  # rows not screened out
    n_iter = 0
    ws_size = ws_start
    ws = None
    in_last_ws = np.zeros(d, dtype=bool)
    while True:
        rows = np.flatnonzero(active)
        U = state.neg_gradient(rows)
        primal, gap = _gap(state, W, U, rows, penalty)
        if (gap <= tol_abs or n_iter >= max_iter) and rows.size < d:
            # the gap of the screened problem; certify on the full one
            rows = np.arange(d)
            U = state.neg_gradient(rows)
            primal, gap = _gap(state, W, U, rows, penalty)
            active[:] = True
        if callback is not None:
            callback(n_iter, primal, gap)
        if gap <= tol_abs or n_iter >= max_iter:
            return W, gap, n_iter
        if screen and record.lam > 0:
            zero = _screen(state, record, penalty, U, rows, gap)
            if zero.any():
                if np.any(W[rows[zero]]):
                    W[rows[zero]] = 0.0
                    state.reset(W)
                active[rows[zero]] = False
                rows, U = rows[~zero], U[~zero]
        new_ws, ws_size, final = _next_working_set(
            W, rows, U, record, ws_size, _NO_ROWS if ws is None else ws,
            in_last_ws)
        if ws is not None and np.array_equal(new_ws, ws):
            new_ws = ws  # the state keeps its copies of the working set
        ws = new_ws
        inner_tol = tol_abs if final else max(inner_ratio * gap, tol_abs)
        history = []
        epochs = 0
        # an early check first: a warm start may need only a few epochs
        next_check, last_gap, last_check = _FIRST_CHECK, gap, 0
        while n_iter < max_iter:
            state.epoch(W, ws, record)
            n_iter += 1
            epochs += 1
            history.append((W[ws].ravel(), state.snapshot()))
            if len(history) == _ANDERSON_K + 1:
                _try_anderson(state, penalty, W, ws, history)
                history = []
            if epochs == next_check:
                _, inner_gap = _gap(state, W, state.neg_gradient(ws), ws,
                                    penalty)
                if inner_gap <= inner_tol:
                    break
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


def _try_anderson(state, penalty, W, ws, history):
    """Move ``W[ws]`` to the Anderson extrapolation of the last iterates if it
    lowers the objective.

    ``history`` holds ``(W[ws], state snapshot)`` pairs.  The data-fit state
    (residual or ``Q W``) is affine in ``W`` and the weights sum to 1, so the
    same combination of the snapshots is the state at the extrapolated point:
    trying costs no product with the design.
    """
    c = _anderson_weights(np.array([h[0] for h in history]))
    if c is None:
        return
    current = _objective(state, penalty, W[ws], ws)
    W_ws = W[ws]
    W[ws] = (c @ np.array([h[0] for h in history[1:]])).reshape(W_ws.shape)
    state.load([sum(ck * h[1][i] for ck, h in zip(c, history[1:]))
                for i in range(len(history[0][1]))])
    if _objective(state, penalty, W[ws], ws) >= current:
        W[ws] = W_ws
        state.load(history[-1][1])
