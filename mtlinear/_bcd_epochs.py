"""Compiled epochs of block coordinate descent (:mod:`mtlinear._bcd`).

Row ``j`` is minimized exactly: the data-fit is exactly ``sum_t (L_jt / 2
w_t^2 - a_t w_t)`` + const in the row, with its own curvature ``L_jt`` and
``a = L_j W_j - g_j``, so the update is the penalty's ``row_prox`` in the
metric ``diag(L_j)`` (:func:`_row_step`).  The epochs keep the data-fit's
state exact as rows move: the residual (dense, blocks of a shared dense
design, CSC) or ``P = Q W`` on sufficient statistics.  Each kernel takes the
penalty's record ``p`` and is compiled once per penalty type.
"""
import numpy as np
from numba import njit

from .penalties._compiled import row_prox

BLOCK = 64  # rows per block of a shared design (the blocked epochs)

@njit(cache=True)
def _row_step(W, j, g, L, p, old, a, new):
    """Proximal update of row ``j`` of ``W`` in place (the penalty's exact
    row minimizer in the metric ``diag(L)``); ``old`` receives the old row,
    ``a`` and ``new`` are scratch (separate 1-d arrays: slicing a scratch
    matrix on every row cost as much as the prox of a small row)."""
    for t in range(W.shape[1]):
        old[t] = W[j, t]
        a[t] = L[t] * old[t] - g[t]
    row_prox(p, j, a, L, new)
    for t in range(W.shape[1]):
        W[j, t] = new[t]


@njit(cache=True)
def _update_row_residual(W, j, g, L, p, old, a, new, lo, hi, col, means,
                         beta, col_data, col_rows, R):
    """Prox step on row ``j``, then ``R -= x_j delta`` and ``beta += m_j delta``.

    ``col_rows`` is ``None``-like (size 0) for a dense column ``col_data``
    (all rows), else the sorted row indices of a sparse column.
    """
    _row_step(W, j, g, L, p, old, a, new)
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
    old, a_row, new = np.empty(T), np.empty(T), np.empty(T)
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
        _update_row_residual(W, j, g, L, p, old, a_row, new, lo, hi, col,
                             means, beta, xj, no_rows, R)


@njit(cache=True, inline='always')
def _sweep_block(G, gram_b, Lb, rows, W, scale, p, delta):
    """Prox updates of the feature ``rows`` of ``W`` in turn, within one block.

    ``G[:, l]`` holds the gradient of row ``rows[l]`` and follows the updates:
    a change ``delta_lt`` moves the gradient of row ``i`` of the block by
    ``scale_t gram_b[l, i] delta_lt``.  ``Lb[l]`` are the row's curvatures.
    ``delta`` receives the changes; returns whether any row moved.
    """
    T = W.shape[1]
    g, L = np.empty(T), np.empty(T)
    old, a, new = np.empty(T), np.empty(T), np.empty(T)
    changed = False
    for l in range(rows.size):
        j = rows[l]
        for t in range(T):
            g[t] = G[t, l]
            L[t] = Lb[l, t]
        _row_step(W, j, g, L, p, old, a, new)
        moved = False
        for t in range(T):
            delta[l, t] = W[j, t] - old[t]
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
    old, a_row, new = np.empty(T), np.empty(T), np.empty(T)
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
        _update_row_residual(W, j, g, L, p, old, a_row, new, lo, hi, col,
                             means, beta, vals, rows, R)


@njit(cache=True, inline='always')
def _epoch_gram(Q, omega, C, W, P, ws, p):
    """One pass over ``ws`` with ``P[:, t] = Q_t W[:, t]`` kept in sync.

    ``Q`` is (1, d, d) when shared by all tasks (then scaled by ``omega_t``)
    or (T, d, d).
    """
    d, T = W.shape
    shared = Q.shape[0] == 1
    g = np.empty(T)
    L = np.empty(T)
    old, a, new = np.empty(T), np.empty(T), np.empty(T)
    delta = np.empty(T)
    for j in ws:
        for t in range(T):
            q = 0 if shared else t
            g[t] = omega[t] * P[j, t] - C[j, t]
            L[t] = omega[t] * Q[q, j, j]
        _row_step(W, j, g, L, p, old, a, new)
        moved = False
        for t in range(T):
            delta[t] = W[j, t] - old[t]
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


@njit(cache=True, inline='always')
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
