"""The linear operator ``W -> X W`` for the two data layouts.

* :class:`SharedDesign`: one ``X`` (n, d) for every task; sample arrays are
  ``(n, T)``, ``Z = X W``.
* :class:`StackedDesign`: each task has its own rows, stored grouped by task
  with offsets ``task_ptr`` (CSR-style); sample arrays are ``(n,)`` and row
  ``i`` of task ``t`` has ``z_i = x_i . w_t``.

Both may centre ``X`` implicitly: with per-task (weighted) means ``m_t`` the
operator is ``(X - 1 m_t^T) W`` without ever forming the centred matrix, so a
sparse ``X`` stays sparse.  Centring is how intercepts are handled (see
:mod:`mtlinear._task_data`).  Dense products go to BLAS; the per-task segments
of the stacked layout are Numba loops.
"""
import numpy as np
import scipy.sparse as sp
from numba import njit
from scipy.linalg import eigh_tridiagonal
from scipy.sparse.linalg import LinearOperator, eigsh

# largest dimension for which the Lipschitz constant is computed exactly from a
# dense Gram matrix; beyond it, Lanczos (ARPACK) on the implicit operator
_EXACT_GRAM_MAX = 2000
# largest symmetric matrix whose top eigenvalue LAPACK computes (Lanczos above)
_LAPACK_EIG_MAX = 256
# entries of the centred row blocks squared at once for a dense diagonal
_DIAGONAL_BLOCK_ENTRIES = 1 << 18


# ------------------------------------------------------------ Numba kernels
@njit(cache=True)
def _stacked_dense_matvec(X, Wt, task_ptr):
    """``z_i = x_i . w_t(i)`` by rows (a C-ordered or strided ``X``; ``Wt``
    (T, d), each task's weights contiguous), four independent sums in
    flight (a single running sum is one dependent addition per entry)."""
    n, d = X.shape
    z = np.zeros(n)
    for t in range(task_ptr.size - 1):
        w = Wt[t]
        for i in range(task_ptr[t], task_ptr[t + 1]):
            x = X[i]
            a0 = a1 = a2 = a3 = 0.0
            j = 0
            while j + 4 <= d:
                a0 += x[j] * w[j]
                a1 += x[j + 1] * w[j + 1]
                a2 += x[j + 2] * w[j + 2]
                a3 += x[j + 3] * w[j + 3]
                j += 4
            for k in range(j, d):
                a0 += x[k] * w[k]
            z[i] = (a0 + a1) + (a2 + a3)
    return z


@njit(cache=True)
def _stacked_dense_rmatvec(X, r, task_ptr):
    """``G[t] = sum_{i in t} r_i x_i`` by rows (a C-ordered or strided ``X``)."""
    n, d = X.shape
    G = np.zeros((task_ptr.size - 1, d))
    for t in range(task_ptr.size - 1):
        for i in range(task_ptr[t], task_ptr[t + 1]):
            ri = r[i]
            if ri != 0.0:
                for j in range(d):
                    G[t, j] += X[i, j] * ri
    return G


@njit(cache=True)
def _stacked_fortran_matvec(X, W, task_ptr):
    """:func:`_stacked_dense_matvec` for a Fortran-ordered ``X``: each task's
    block of a column is a contiguous vector, added to ``z`` four columns
    at a time (a quarter of the passes over ``z``)."""
    n, d = X.shape
    z = np.zeros(n)
    for t in range(task_ptr.size - 1):
        lo, hi = task_ptr[t], task_ptr[t + 1]
        j = 0
        while j + 4 <= d:
            w0, w1, w2, w3 = W[j, t], W[j + 1, t], W[j + 2, t], W[j + 3, t]
            for i in range(lo, hi):
                z[i] += (X[i, j] * w0 + X[i, j + 1] * w1
                         + X[i, j + 2] * w2 + X[i, j + 3] * w3)
            j += 4
        for k in range(j, d):
            w = W[k, t]
            for i in range(lo, hi):
                z[i] += X[i, k] * w
    return z


@njit(cache=True)
def _stacked_fortran_rmatvec(X, r, task_ptr):
    """:func:`_stacked_dense_rmatvec` for a Fortran-ordered ``X``: one dot
    product of contiguous vectors per feature and task."""
    n, d = X.shape
    G = np.zeros((task_ptr.size - 1, d))
    for t in range(task_ptr.size - 1):
        lo, hi = task_ptr[t], task_ptr[t + 1]
        if hi > lo:
            for j in range(d):
                G[t, j] = np.dot(X[lo:hi, j], r[lo:hi])
    return G


@njit(cache=True)
def _stacked_csr_matvec(data, indices, indptr, Wt, task_ptr):
    """``z_i = x_i . w_t(i)`` from the CSR arrays and ``Wt`` (T, d): each
    task's weights contiguous."""
    z = np.zeros(indptr.size - 1)
    for t in range(task_ptr.size - 1):
        w = Wt[t]
        for i in range(task_ptr[t], task_ptr[t + 1]):
            acc = 0.0
            for k in range(indptr[i], indptr[i + 1]):
                acc += data[k] * w[indices[k]]
            z[i] = acc
    return z


@njit(cache=True)
def _stacked_csr_rmatvec(data, indices, indptr, r, task_ptr, d):
    G = np.zeros((task_ptr.size - 1, d))
    for t in range(task_ptr.size - 1):
        g = G[t]
        for i in range(task_ptr[t], task_ptr[t + 1]):
            ri = r[i]
            if ri != 0.0:
                for k in range(indptr[i], indptr[i + 1]):
                    g[indices[k]] += data[k] * ri
    return G


@njit(cache=True)
def _stacked_csr_rmatvec_pair(data, indices, indptr, r, q, task_ptr, d):
    """:func:`_stacked_csr_rmatvec` of two sample vectors in one pass over
    the rows."""
    G = np.zeros((task_ptr.size - 1, d))
    H = np.zeros((task_ptr.size - 1, d))
    for t in range(task_ptr.size - 1):
        g = G[t]
        h = H[t]
        for i in range(task_ptr[t], task_ptr[t + 1]):
            ri = r[i]
            qi = q[i]
            for k in range(indptr[i], indptr[i + 1]):
                j = indices[k]
                g[j] += data[k] * ri
                h[j] += data[k] * qi
    return G, H


@njit(cache=True)
def _stacked_csc_matvec(data, indices, indptr, W, task_ptr):
    """:func:`_stacked_csr_matvec` from the arrays of a CSC matrix with
    sorted indices and ``W`` (d, T): down each column, the rows' tasks
    follow ``task_ptr`` in order (rows grouped by task)."""
    z = np.zeros(task_ptr[task_ptr.size - 1])
    for j in range(indptr.size - 1):
        w = W[j]
        t = 0
        end = task_ptr[1]  # of task t's rows, in a register
        wt = w[0]
        for k in range(indptr[j], indptr[j + 1]):
            i = indices[k]
            if i >= end:
                while i >= task_ptr[t + 1]:
                    t += 1
                end = task_ptr[t + 1]
                wt = w[t]
            z[i] += data[k] * wt
    return z


@njit(cache=True)
def _stacked_csc_rmatvec(data, indices, indptr, r, task_ptr):
    """``G[j, t] = sum_{i in t} x_ij r_i`` (d, T) from the arrays of a CSC
    matrix with sorted indices (see :func:`_stacked_csc_matvec`); each
    task's part of a column summed in a register, not through memory."""
    G = np.zeros((indptr.size - 1, task_ptr.size - 1))
    for j in range(indptr.size - 1):
        t = 0
        end = task_ptr[1]  # of task t's rows, in a register
        acc = 0.0
        for k in range(indptr[j], indptr[j + 1]):
            i = indices[k]
            if i >= end:
                G[j, t] = acc
                acc = 0.0
                while i >= task_ptr[t + 1]:
                    t += 1
                end = task_ptr[t + 1]
            acc += data[k] * r[i]
        G[j, t] = acc
    return G


@njit(cache=True)
def _stacked_csc_rmatvec_pair(data, indices, indptr, r, q, task_ptr):
    """:func:`_stacked_csc_rmatvec` of two sample vectors in one pass."""
    G = np.zeros((indptr.size - 1, task_ptr.size - 1))
    H = np.zeros((indptr.size - 1, task_ptr.size - 1))
    for j in range(indptr.size - 1):
        t = 0
        end = task_ptr[1]
        g = h = 0.0
        for k in range(indptr[j], indptr[j + 1]):
            i = indices[k]
            if i >= end:
                G[j, t] = g
                H[j, t] = h
                g = h = 0.0
                while i >= task_ptr[t + 1]:
                    t += 1
                end = task_ptr[t + 1]
            g += data[k] * r[i]
            h += data[k] * q[i]
        G[j, t] = g
        H[j, t] = h
    return G, H


@njit(cache=True, inline='always')
def _csr_task_diagonal(data, indices, indptr, lo, hi, h, x_mean, t, centred,
                       out, seen):
    """``out[j] = sum_{i in t} h_i (x_ij - m_tj)^2`` over rows ``lo:hi``
    (``seen`` is workspace) and returns ``sum_i h_i``.

    Centred, the rows where column ``j`` is zero contribute ``m_tj^2`` each:
    ``out_j = sum_{x_ij != 0} h_i (x_ij - m_tj)^2 + m_tj^2 (sum_i h_i -
    sum_{x_ij != 0} h_i)``, a sum of non-negative terms but for the last
    difference, clipped at 0 (the expansion ``sum h x^2 - 2 m sum h x +
    m^2 sum h`` would cancel where ``x`` is close to ``m``).
    """
    d = out.size
    for j in range(d):
        out[j] = 0.0
        seen[j] = 0.0
    hsum = 0.0
    for i in range(lo, hi):
        hi_ = h[i]
        hsum += hi_
        if hi_ == 0.0:
            continue
        for k in range(indptr[i], indptr[i + 1]):
            j = indices[k]
            if centred:
                c = data[k] - x_mean[t, j]
                out[j] += hi_ * c * c
                seen[j] += hi_
            else:
                out[j] += hi_ * data[k] * data[k]
    if centred:
        for j in range(d):
            m = x_mean[t, j]
            out[j] += m * m * max(hsum - seen[j], 0.0)
    return hsum


@njit(cache=True)
def _stacked_csr_curvature_diagonal(data, indices, indptr, task_ptr, h,
                                    x_mean, d):
    """The diagonals of the tasks' ``X_c^T diag(h_t) X_c``, (T, d)
    (:func:`_csr_task_diagonal`)."""
    T = task_ptr.size - 1
    centred = x_mean.shape[0] > 0
    D = np.empty((T, d))
    seen = np.empty(d)
    for t in range(T):
        _csr_task_diagonal(data, indices, indptr, task_ptr[t], task_ptr[t + 1],
                           h, x_mean, t, centred, D[t], seen)
    return D


@njit(cache=True)
def _stacked_csr_cg(data, indices, indptr, task_ptr, h, x_mean, gWt, gb, mu,
                    intercept, forcing, max_iter, mix, plain):
    """Newton-CG's conjugate gradients, task by task, on ``H s = -g`` with
    ``H`` a task's Hessian block (curvature ``h``, ridge ``mu``, the
    intercept last when ``intercept``), to ``||r_t|| <= forcing[t]`` (the
    true residual ``r_t = -g_t - H s_t``, whatever the preconditioner).

    A task still short of it after ``plain`` iterations restarts from its
    iterate preconditioned by ``M = mu I + mix diag(X_c^T diag(h_t) X_c,
    sum_i h_i)`` (:func:`mtlinear._newton_cg._conjugate_gradients` says
    why), its diagonal from one pass over the task's rows.  Each Hessian
    product is one pass over the task's rows (``z_i = x_i . p + shift``,
    then ``h_i z_i x_i`` added while the row is in cache), and the rows
    stay in cache from one iteration to the next.  Returns ``(s_W^T (T,
    d), s_b, X_c s_W + s_b)``.
    """
    T, d = gWt.shape
    centred = x_mean.shape[0] > 0
    sWt = np.zeros((T, d))
    sb = np.zeros(T)
    dz = np.zeros(indptr.size - 1)
    Xp = np.empty(indptr.size - 1)
    r = np.empty(d)
    p = np.empty(d)
    G = np.empty(d)
    M = np.empty(d)
    seen = np.empty(d)
    for t in range(T):
        lo, hi = task_ptr[t], task_ptr[t + 1]
        rr = 0.0
        for j in range(d):
            r[j] = -gWt[t, j]
            rr += r[j] * r[j]
        rb = -gb[t] if intercept else 0.0
        rr += rb * rb
        Mb = 1.0  # M = 1: plain CG; z = M^-1 r
        for j in range(d):
            M[j] = 1.0
            p[j] = r[j]
        pb = rb
        rz = rr
        preconditioned = False  # M = 1 until then: no divisions, rz = rr
        for it in range(max_iter):
            if np.sqrt(rr) <= forcing[t]:
                break
            if it == plain and mix > 0.0:  # slow: restart preconditioned
                preconditioned = True
                hsum = _csr_task_diagonal(data, indices, indptr, lo, hi, h,
                                          x_mean, t, centred, M, seen)
                for j in range(d):
                    M[j] = mu + mix * M[j]
                    if not M[j] > 0.0:  # mu = 0 and an empty column: r_j = 0
                        M[j] = 1.0
                Mb = mu + mix * hsum
                if not Mb > 0.0:
                    Mb = 1.0
                rz = 0.0
                for j in range(d):
                    p[j] = r[j] / M[j]
                    rz += r[j] * p[j]
                pb = rb / Mb
                rz += rb * pb
            shift = pb
            if centred:
                for j in range(d):
                    shift -= x_mean[t, j] * p[j]
            for j in range(d):
                G[j] = 0.0
            hsum = 0.0
            for i in range(lo, hi):
                acc = shift
                for k in range(indptr[i], indptr[i + 1]):
                    acc += data[k] * p[indices[k]]
                Xp[i] = acc
                hz = h[i] * acc
                hsum += hz
                if hz != 0.0:
                    for k in range(indptr[i], indptr[i + 1]):
                        G[indices[k]] += data[k] * hz
            pHp = 0.0
            for j in range(d):
                if centred:
                    G[j] -= x_mean[t, j] * hsum
                G[j] += mu * p[j]
                pHp += p[j] * G[j]
            Hpb = hsum if intercept else 0.0
            pHp += pb * Hpb
            if not pHp > 0.0:
                break
            step = rz / pHp
            rr_new = 0.0
            rz_new = 0.0
            for j in range(d):
                sWt[t, j] += step * p[j]
                r[j] -= step * G[j]
                rr_new += r[j] * r[j]
            sb[t] += step * pb
            rb -= step * Hpb
            rr_new += rb * rb
            if preconditioned:
                for j in range(d):
                    rz_new += r[j] * r[j] / M[j]
                rz_new += rb * rb / Mb
            else:
                rz_new = rr_new
            for i in range(lo, hi):
                dz[i] += step * Xp[i]
            beta = rz_new / rz
            if preconditioned:
                for j in range(d):
                    p[j] = r[j] / M[j] + beta * p[j]
            else:
                for j in range(d):
                    p[j] = r[j] + beta * p[j]
            pb = rb / Mb + beta * pb
            rr = rr_new
            rz = rz_new
    return sWt, sb, dz


@njit(cache=True)
def _stacked_dense_curvature_blocks(X, h, x_mean, task_ptr):
    """``Q[t] = sum_{i in t} h_i (x_i - m_t)(x_i - m_t)^T`` (``x_mean`` of
    shape (T, d), or (0, d): no centring), each row centred before it is
    multiplied (no cancellation of large means)."""
    n, d = X.shape
    T = task_ptr.size - 1
    centred = x_mean.shape[0] > 0
    Q = np.zeros((T, d, d))
    row = np.empty(d)
    for t in range(T):
        q = Q[t]
        for i in range(task_ptr[t], task_ptr[t + 1]):
            hi = h[i]
            if hi == 0.0:
                continue
            for j in range(d):
                row[j] = X[i, j] - x_mean[t, j] if centred else X[i, j]
            for j in range(d):
                a = hi * row[j]
                for k in range(j + 1):
                    q[j, k] += a * row[k]
        for j in range(d):
            for k in range(j):
                q[k, j] = q[j, k]
    return Q


@njit(cache=True)
def _csr_add_weighted_gram(data, indices, indptr, w, lo, hi, out):
    """``out += sum_{lo <= i < hi} w_i x_i x_i^T`` from the arrays of a CSR
    matrix, each row's pairs of stored entries once (duplicate entries of
    a column add up as scipy's sum would)."""
    for i in range(lo, hi):
        wi = w[i]
        if wi == 0.0:
            continue
        for k in range(indptr[i], indptr[i + 1]):
            j = indices[k]
            a = wi * data[k]
            out[j, j] += a * data[k]
            for m in range(indptr[i], k):
                c = a * data[m]
                out[j, indices[m]] += c
                out[indices[m], j] += c


@njit(cache=True)
def _stacked_csr_curvature_blocks(data, indices, indptr, h, task_ptr, d):
    """``Q[t] = sum_{i in t} h_i x_i x_i^T`` (T, d, d) from the arrays of a
    CSR matrix (:func:`_csr_add_weighted_gram` task by task)."""
    T = task_ptr.size - 1
    Q = np.zeros((T, d, d))
    for t in range(T):
        _csr_add_weighted_gram(data, indices, indptr, h, task_ptr[t],
                               task_ptr[t + 1], Q[t])
    return Q


@njit(cache=True)
def _stacked_dense_curvature_diagonal(X, h, x_mean, task_ptr):
    """The diagonals of :func:`_stacked_dense_curvature_blocks`, (T, d),
    each entry centred before it is squared; column by column for an ``X``
    in Fortran order (each task's block of a column contiguous)."""
    n, d = X.shape
    T = task_ptr.size - 1
    centred = x_mean.shape[0] > 0
    D = np.zeros((T, d))
    by_column = X.strides[0] < X.strides[1]
    for t in range(T):
        lo, hi = task_ptr[t], task_ptr[t + 1]
        if by_column:
            for j in range(d):
                m = x_mean[t, j] if centred else 0.0
                acc = 0.0
                for i in range(lo, hi):
                    c = X[i, j] - m
                    acc += h[i] * c * c
                D[t, j] = acc
        else:
            for i in range(lo, hi):
                for j in range(d):
                    c = X[i, j] - x_mean[t, j] if centred else X[i, j]
                    D[t, j] += h[i] * c * c
    return D


@njit(cache=True)
def _csr_task_rows_matvec(data, indices, indptr, Wt, task_index):
    """``z_i = x_i . w_t`` with ``t = task_index[i]`` (rows in any order),
    from the CSR arrays and ``Wt`` (tasks, d)."""
    z = np.empty(indptr.size - 1)
    for i in range(indptr.size - 1):
        w = Wt[task_index[i]]
        acc = 0.0
        for k in range(indptr[i], indptr[i + 1]):
            acc += data[k] * w[indices[k]]
        z[i] = acc
    return z


# ------------------------------------------------------------ helpers
def _is_csc(X):
    return sp.issparse(X) and X.format == "csc"


def _fortran(X):
    """Whether the stacked kernels should run down the columns of ``X``."""
    return X.flags.f_contiguous and not X.flags.c_contiguous


def task_rows(task_index, n_tasks=None):
    """Each task's row indices, ascending, from the rows' task numbers
    ``task_index``: one stable sort, where a mask per task (``task_index ==
    t`` in a loop over tasks) costs ``n T``, quadratic in the number of
    tasks."""
    task_index = np.asarray(task_index)
    if n_tasks is None:
        n_tasks = int(task_index.max()) + 1 if task_index.size else 0
    order = np.argsort(task_index, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(task_index,
                                                        minlength=n_tasks))])
    return [order[a:b] for a, b in zip(bounds[:n_tasks], bounds[1:n_tasks + 1])]


def unsigned_view(index):
    """An index or offset array (CSR ``indices``, ``indptr``, ``task_ptr``)
    seen as unsigned (no copy: its values are non-negative).  Numba tests
    every signed index for wrap-around, loop counters that start from a
    signed offset included; unsigned ones make the CSR products as fast as
    scipy's (about 1.6 times faster than with signed offsets)."""
    return index.view(np.uint32 if index.dtype == np.int32 else np.uint64)


def stacked_matvec(X, W, task_ptr):
    """``z_i = x_i . w_t(i)`` for rows grouped by task (``task_ptr``): ``X``
    dense in any memory order (never copied), CSR, or CSC with sorted
    indices; ``W`` (d, T)."""
    if sp.issparse(X):
        if _is_csc(X):
            return _stacked_csc_matvec(X.data, unsigned_view(X.indices),
                                       unsigned_view(X.indptr),
                                       np.ascontiguousarray(W),
                                       unsigned_view(task_ptr))
        return _stacked_csr_matvec(X.data, unsigned_view(X.indices),
                                   unsigned_view(X.indptr),
                                   np.ascontiguousarray(W.T),
                                   unsigned_view(task_ptr))
    W = np.ascontiguousarray(W)
    task_ptr = unsigned_view(task_ptr)
    if _fortran(X):
        return _stacked_fortran_matvec(X, W, task_ptr)
    return _stacked_dense_matvec(X, np.ascontiguousarray(W.T), task_ptr)


def stacked_rmatvec(X, r, task_ptr):
    """``G[t] = sum_{i in t} r_i x_i`` as a (T, d) array, for rows grouped
    by task (see :func:`stacked_matvec`)."""
    r = np.ascontiguousarray(r, dtype=np.float64)
    if sp.issparse(X):
        if _is_csc(X):
            return _stacked_csc_rmatvec(X.data, unsigned_view(X.indices),
                                        unsigned_view(X.indptr), r,
                                        unsigned_view(task_ptr)).T
        return _stacked_csr_rmatvec(X.data, unsigned_view(X.indices),
                                    unsigned_view(X.indptr), r,
                                    unsigned_view(task_ptr), X.shape[1])
    task_ptr = unsigned_view(task_ptr)
    if _fortran(X):
        return _stacked_fortran_rmatvec(X, r, task_ptr)
    return _stacked_dense_rmatvec(X, r, task_ptr)


def linear_predictor(X, W, intercept, task_index):
    """``x_i^T w_t + b_t``: (n, T) in the shared layout (``task_index``
    ``None``), (n,) stacked (row ``i`` with task ``task_index[i]``'s weights
    ``W[:, t]``)."""
    if task_index is None:
        return np.asarray(X @ W) + intercept
    coef = W.T
    if sp.issparse(X):  # O(nnz): never a dense (n, d) array of weights
        X = sp.csr_matrix(X)
        if task_index.size and task_index.max() >= coef.shape[0]:
            raise IndexError("a row's task has no weights")  # compiled: no check
        z = _csr_task_rows_matvec(X.data, unsigned_view(X.indices),
                                  unsigned_view(X.indptr),
                                  np.ascontiguousarray(coef, dtype=np.float64),
                                  unsigned_view(np.asarray(task_index,
                                                           dtype=np.int64)))
    else:
        z = np.einsum("ij,ij->i", X, coef[task_index])
    return z + intercept[task_index]


def weighted_mean_rows(X, w):
    """``sum_i w_i x_i / sum_i w_i`` for dense or sparse ``X``."""
    total = w.sum()
    if sp.issparse(X):
        return np.asarray(X.T @ w).ravel() / total
    return (w @ X) / total


def sorted_csc(X):
    """``X`` as CSC with sorted indices, the user's matrix untouched: a
    matrix already in CSC form is returned as is only when its indices are
    sorted (``sort_indices`` would sort it in place, and fail on read-only
    memory)."""
    C = X if isinstance(X, sp.csc_matrix) else sp.csc_matrix(X)
    return C if C.has_sorted_indices else C.sorted_indices()


def _densify(X):
    return X.toarray() if sp.issparse(X) else np.asarray(X)


def weighted_gram(X, w):
    """``X^T diag(w) X`` as a dense array: by the symmetric BLAS product, or
    for a sparse ``X`` in one compiled pass over its rows (scipy's sparse
    products cost more than a small fit's solve)."""
    if sp.issparse(X):
        X = sp.csr_matrix(X)
        gram = np.zeros((X.shape[1], X.shape[1]))
        _csr_add_weighted_gram(
            np.asarray(X.data, dtype=np.float64), unsigned_view(X.indices),
            unsigned_view(X.indptr), np.ascontiguousarray(w, dtype=np.float64),
            0, X.shape[0], gram)
        return gram
    if np.all(w == w[0]):
        gram = X.T @ X
        gram *= w[0]
        return gram
    A = X * np.sqrt(w)[:, None]
    return A.T @ A


_CENTRING_ROWS = 4096  # rows (columns) centred at a time
_DIGITS_KEPT = 1e-7  # centred / raw diagonal below this: digits were lost


def centred_gram(X, w, mean):
    """``(X - 1 m^T)^T diag(w) (X - 1 m^T)`` as a dense array (``m = None``:
    no centring; for a sparse ``X``, ``m`` must be the ``w``-weighted mean).

    A dense ``X`` is centred block by block of rows before the product.
    Subtracting ``sum(w) m m^T`` from ``X^T diag(w) X`` afterwards (cheap for
    a sparse ``X``, which is kept sparse that way) loses every digit when the
    means dwarf the spread (features such as timestamps or coordinates): the
    sparse route is checked on the diagonal and redone by dense blocks when
    the subtraction cancelled more than ``1 / _DIGITS_KEPT`` of it.
    """
    if mean is None:
        return weighted_gram(X, w)
    if sp.issparse(X):
        gram = subtract_outer(weighted_gram(X, w), mean, w.sum())
        raw = np.asarray(X.multiply(X).T @ w).ravel()
        if np.all(np.diagonal(gram) >= _DIGITS_KEPT * raw):
            return gram
    d = X.shape[1]
    gram = np.zeros((d, d))
    root = np.sqrt(w)
    for start in range(0, X.shape[0], _CENTRING_ROWS):
        rows = slice(start, start + _CENTRING_ROWS)
        A = (_densify(X[rows]) - mean) * root[rows, None]
        gram += A.T @ A
    return gram


@njit(cache=True)
def subtract_outer(A, u, scale=1.0):
    """``A -= scale * u u^T`` in place (no ``d x d`` temporary).

    A plain loop rather than BLAS's ``dger``: scipy's threaded BLAS made this
    O(d^2) update cost milliseconds on small matrices when other processes
    share the cores.
    """
    for i in range(A.shape[0]):
        c = scale * u[i]
        row = A[i]
        for j in range(A.shape[1]):
            row[j] -= c * u[j]
    return A


def _lanczos_top(S, rel_tol, max_steps):
    """Largest eigenvalue of the symmetric ``S`` by Lanczos with full
    reorthogonalization, plus the residual bound of its Ritz value (so that
    the result is at least the eigenvalue it converged to).

    The Ritz value ``theta`` of the tridiagonal ``T_k`` has an eigenvalue of
    ``S`` within ``r = b_k |y_k|`` (``y`` its unit eigenvector): the steps stop
    once ``r <= rel_tol * theta``, or the Krylov space is invariant.  A fixed
    pseudo-random start makes the result reproducible.  Every step is BLAS
    (plain numpy: a compiled version cost seconds of first compilation for
    no measurable gain).
    """
    d = S.shape[0]
    m = min(d, max_steps)
    V = np.zeros((m + 1, d))
    v = np.random.default_rng(0).standard_normal(d)
    V[0] = v / np.linalg.norm(v)
    a, b = np.zeros(m), np.zeros(m)
    check = 8
    for j in range(m):
        w = S @ V[j]
        a[j] = w @ V[j]
        for _ in range(2):  # twice is enough (Kahan)
            w -= V[:j + 1].T @ (V[:j + 1] @ w)
        b[j] = np.linalg.norm(w)
        invariant = b[j] <= 1e-14 * np.abs(a[:j + 1]).max()
        if j + 1 == check or j + 1 == m or invariant:
            check += max(4, check // 2)  # a tridiagonal eigenproblem each time
            k = j + 1
            values, vectors = eigh_tridiagonal(a[:k], b[:k - 1], select="i",
                                               select_range=(k - 1, k - 1))
            theta, r = values[-1], b[j] * abs(vectors[-1, -1])
            if invariant or k == m or r <= rel_tol * abs(theta):
                return theta + r
        V[j + 1] = w / b[j]
    raise AssertionError("unreachable: the last step returns")


def top_eigenvalue(S):
    """Largest eigenvalue of a symmetric positive semi-definite ``S``.

    LAPACK on small matrices; above ``_LAPACK_EIG_MAX`` Lanczos
    (:func:`_lanczos_top`), which needs ``O(d^2)`` per step and a few dozen
    steps instead of the ``O(d^3)`` of a full eigendecomposition.  The
    result is at most ``1e-6`` relatively above the eigenvalue (a step size
    ``1 / L`` needs no more).
    """
    if S.shape[0] <= _LAPACK_EIG_MAX:
        return float(np.linalg.eigvalsh(S)[-1])
    return float(_lanczos_top(np.ascontiguousarray(S), 1e-6, 300))


def max_sq_singular_value(X, w, mean):
    """Largest eigenvalue of ``(X - 1 m^T)^T diag(w) (X - 1 m^T)``.

    ``m`` is the ``w``-weighted row mean (or ``None`` for no centring).  Exact
    from the smaller dense Gram matrix when a side is at most
    ``_EXACT_GRAM_MAX``; otherwise Lanczos on the implicit operator, inflated by
    a small margin so that ``1 / L`` stays a safe step.
    """
    n, d = X.shape
    sqrt_w = np.sqrt(w)
    if d <= _EXACT_GRAM_MAX and d <= n:
        return top_eigenvalue(centred_gram(X, w, mean))
    if n <= _EXACT_GRAM_MAX:
        A = sp.diags(sqrt_w) @ X if sp.issparse(X) else X * sqrt_w[:, None]
        gram = A @ A.T
        gram = np.asarray(gram.todense()) if sp.issparse(gram) else gram
        if mean is not None:
            u = sqrt_w * (X @ mean)
            gram -= np.outer(u, sqrt_w) + np.outer(sqrt_w, u)
            gram += float(mean @ mean) * np.outer(sqrt_w, sqrt_w)
        return top_eigenvalue(gram)

    def matvec(v):
        u = X @ v
        if mean is not None:
            u = u - mean @ v
        u = w * u
        out = X.T @ u
        if mean is not None:
            out = out - mean * u.sum()
        return out

    op = LinearOperator((d, d), matvec=matvec, dtype=np.float64)
    top = eigsh(op, k=1, which="LA", tol=1e-6, return_eigenvectors=False)[0]
    return float(top) * (1 + 1e-5)


# ------------------------------------------------------------ layouts
class SharedDesign:
    """All tasks share ``X`` (n, d); sample arrays are ``(n, T)``.

    Parameters
    ----------
    X : ndarray or scipy.sparse matrix, shape (n, d)
    n_tasks : int
    x_mean : ndarray of shape (d,) or None
        Row mean subtracted implicitly (the same for every task because task
        weights scale whole columns of the sample weights).
    """

    shared = True

    def __init__(self, X, n_tasks, x_mean=None):
        self.X = X
        self.n_tasks = n_tasks
        self.x_mean = x_mean
        self.n_samples, self.n_features = X.shape

    def matmat(self, W):
        Z = np.asarray(self.X @ W)
        if self.x_mean is not None:
            Z -= self.x_mean @ W
        return Z

    def rmatmat(self, R):
        # (R^T X)^T: with X in C order, 1.5 to 2.5 times faster than X^T R
        G = (np.asarray(self.X.T @ R) if sp.issparse(self.X)
             else np.ascontiguousarray((R.T @ self.X).T))
        if self.x_mean is not None:
            G -= np.outer(self.x_mean, R.sum(axis=0))
        return G

    def rmatmat_pair(self, R, Q):
        """``(X_c^T R, X_c^T Q)`` in one product."""
        G = self.rmatmat(np.concatenate([R, Q], axis=1))
        return G[:, :self.n_tasks], G[:, self.n_tasks:]

    def curvature_blocks(self, h):
        """Each task's ``X_c^T diag(h_t) X_c``, (T, d, d): Newton's exact
        Hessian blocks when ``d`` is small; ``None`` for a sparse design
        centred by means other than the ``h``-weighted ones (the sparse
        route of :func:`centred_gram` needs those)."""
        if sp.issparse(self.X) and self.x_mean is not None:
            return None
        return np.stack([centred_gram(self.X, h[:, t], self.x_mean)
                         for t in range(self.n_tasks)])

    def curvature_diagonal(self, h):
        """The diagonals of :meth:`curvature_blocks`, (d, T): ``sum_i h_it
        (x_ij - m_j)^2``.  Dense, by blocks of rows centred before they are
        squared; sparse, ``sum h x^2 - 2 m sum h x + m^2 sum h`` clipped at
        0 (a preconditioner's entries: its rounding where the column is
        nearly constant does not matter)."""
        X, m = self.X, self.x_mean
        if sp.issparse(X):
            D = np.asarray(X.multiply(X).T @ h)
            if m is not None:
                D -= 2.0 * m[:, None] * np.asarray(X.T @ h)
                D += np.outer(m * m, h.sum(axis=0))
                np.maximum(D, 0.0, out=D)
            return D
        D = np.zeros((self.n_features, h.shape[1]))
        rows = max(1, _DIAGONAL_BLOCK_ENTRIES // max(1, self.n_features))
        for lo in range(0, self.n_samples, rows):
            block = X[lo:lo + rows] if m is None else X[lo:lo + rows] - m
            D += (block * block).T @ h[lo:lo + rows]
        return D

    def curvature_cg(self, h, g, mu, intercept, forcing, max_iter,
                     mix=0.0, plain=0):
        """Newton-CG's conjugate gradients in one compiled call, or ``None``
        (here: BLAS products over all tasks at once pay more)."""
        return None

    @staticmethod
    def task_sum(R):
        return R.sum(axis=0)

    @staticmethod
    def task_broadcast(b):
        return b[None, :]

    def lipschitz(self, v):
        # columns of v are proportional (task weight times sample weight), so
        # the column with the largest total gives the largest curvature
        col = v[:, np.argmax(v.sum(axis=0))]
        return max_sq_singular_value(self.X, col, self.x_mean)

    def gram_statistics(self, y, v):
        """``Q = X_c^T diag(v_t / omega_t) X_c`` (one for all tasks), ``C``, ``yy``.

        Returns ``(Q, omega, C, yy)`` with ``grad_t = omega_t Q w_t - C_t``.
        """
        X = self.X
        omega = v.sum(axis=0)
        s = v[:, np.argmax(omega)] / omega.max()
        Q = centred_gram(X, s, self.x_mean)
        C = self.rmatmat(v * y)
        yy = (v * y * y).sum(axis=0)
        return Q, omega, C, yy

    def row_space_statistics(self, y, v):
        """Sufficient statistics in the row space of ``X`` (for n < d).

        With ``A = diag(sqrt(s)) X_c`` (n x d) and the eigendecomposition of
        the small Gram matrix ``A A^T = U S^2 U^T``, the columns of ``V = A^T
        U S^{-1}`` are an orthonormal basis of the row space.  Every ``W = V Z
        + W_perp`` has ``X_c W = X_c V Z``; a penalty invariant under ``Z -> V
        Z`` (trace norm, Frobenius) is smallest at ``W_perp = 0``, so the
        problem reduces to ``Z`` (r x T) with the diagonal ``Q = S^2`` and
        ``C = V^T C_full``.  ``A A^T`` costs one symmetric product (no QR
        of the d x n matrix) and ``V`` is never formed (:class:`RowSpace`).
        Directions with ``S^2`` below ``1e-10 max S^2`` are dropped (the
        solver certifies the answer on the full problem).

        Returns
        -------
        space : RowSpace
        statistics : tuple ``(Q, omega, C, yy)`` as :meth:`gram_statistics`.
        """
        omega = v.sum(axis=0)
        s = v[:, np.argmax(omega)] / omega.max()
        A = CentredRows(self.X, self.x_mean, np.sqrt(s))
        evals, U = np.linalg.eigh(A.outer_gram())
        keep = evals > 1e-10 * max(evals[-1], np.finfo(float).tiny)
        space = RowSpace(A, U[:, keep], np.sqrt(evals[keep]))
        C = space.project(self.rmatmat(v * y))
        yy = (v * y * y).sum(axis=0)
        return space, (np.diag(evals[keep]), omega, C, yy)


class CentredRows:
    """The operator ``A = diag(r) (X - 1 m^T)`` (n x d) without forming it:
    a sparse ``X`` stays sparse, a dense one is not copied."""

    def __init__(self, X, mean, root):
        self.X, self.mean, self.root = X, mean, root

    def matmat(self, W):
        """``A W``."""
        out = np.asarray(self.X @ W)
        if self.mean is not None:
            out = out - self.mean @ W
        return self.root[:, None] * out

    def rmatmat(self, R):
        """``A^T R``."""
        R = self.root[:, None] * R
        out = np.asarray(self.X.T @ R)
        if self.mean is not None:
            out = out - np.outer(self.mean, R.sum(axis=0))
        return out

    def outer_gram(self):
        """``A A^T`` (n x n).  Dense: centred by blocks of columns (no
        cancellation, no copy of ``X``); sparse: ``X X^T`` corrected by the
        means' terms."""
        X, m = self.X, self.mean
        if sp.issparse(X):
            K = np.asarray((X @ X.T).todense())
            if m is not None:
                u = np.asarray(X @ m).ravel()
                K -= u[:, None] + u[None, :]
                K += float(m @ m)
        else:
            K = np.zeros((X.shape[0], X.shape[0]))
            for start in range(0, X.shape[1], _CENTRING_ROWS):
                cols = slice(start, start + _CENTRING_ROWS)
                B = X[:, cols] if m is None else X[:, cols] - m[cols]
                K += B @ B.T
        return K * np.outer(self.root, self.root)


class RowSpace:
    """The basis ``V = A^T U S^{-1}`` of :meth:`SharedDesign.row_space_statistics`,
    applied without forming it (``A``: a :class:`CentredRows`)."""

    def __init__(self, A, U, s):
        self.A, self.U, self.s = A, U, s

    @property
    def lipschitz_factor(self):
        """Largest eigenvalue of the reduced ``Q = S^2``."""
        return float(self.s.max() ** 2) if self.s.size else 0.0

    def project(self, W):
        """``V^T W`` (r x T)."""
        return (self.U.T @ self.A.matmat(W)) / self.s[:, None]

    def lift(self, Z):
        """``V Z`` (d x T)."""
        return self.A.rmatmat(self.U @ (Z / self.s[:, None]))


class StackedDesign:
    """Each task has its own rows, grouped; sample arrays are ``(n,)``.

    Parameters
    ----------
    X : ndarray or scipy.sparse CSR or CSC matrix, shape (n, d)
        Rows sorted by task, used in place.  Dense in any memory order:
        Fortran order (each task's block of a column contiguous) is what
        proximal Newton's column access needs too, so one array serves
        both (see :func:`mtlinear._task_data.build_problem`).  Sparse, the
        products run on either format (a CSC needs sorted indices): CSC
        serves the coordinate solvers' column access as it is; the kernels
        that walk rows (Newton-CG's) make a CSR copy once (:meth:`rows`).
    task_ptr : ndarray of shape (T + 1,)
        Task ``t`` owns rows ``task_ptr[t]:task_ptr[t + 1]``.
    x_mean : ndarray of shape (T, d) or None
        Per-task row means subtracted implicitly.
    """

    shared = False

    def __init__(self, X, task_ptr, x_mean=None):
        # the CSC kernels walk each column's rows in order
        self.X = sorted_csc(X) if _is_csc(X) else X
        self.task_ptr = task_ptr
        self.x_mean = x_mean
        self.n_tasks = task_ptr.size - 1
        self.n_samples, self.n_features = X.shape
        self.counts = np.diff(task_ptr)
        self._starts = (None if np.all(self.counts > 0)
                        else task_ptr[:-1][self.counts > 0])
        self._rows = None

    def rows(self, keep=True):
        """``X`` with fast row access (CSR if sparse): ``X`` itself unless
        it is CSC, then a copy, made once if ``keep`` (the row kernels of
        every Newton step), else for one use (one pass over the tasks)."""
        if self._rows is not None or not _is_csc(self.X):
            return self.X if self._rows is None else self._rows
        rows = sp.csr_matrix(self.X)
        if keep:
            self._rows = rows
        return rows

    def matmat(self, W):
        z = stacked_matvec(self.X, W, self.task_ptr)
        if self.x_mean is not None:
            z -= self.task_broadcast(np.einsum("tj,jt->t", self.x_mean, W))
        return z

    def rmatmat(self, r):
        return self._centred(stacked_rmatvec(self.X, r, self.task_ptr), r)

    def _centred(self, G, r):
        """``X_c^T r`` (d, T) from the uncentred ``G = X^T r`` per task (T, d)."""
        if self.x_mean is not None:
            G -= self.x_mean * self.task_sum(r)[:, None]
        return G.T

    def rmatmat_pair(self, r, q):
        """``(X_c^T r, X_c^T q)``, one pass over a sparse ``X``."""
        if not sp.issparse(self.X):
            return self.rmatmat(r), self.rmatmat(q)
        X = self.X
        if _is_csc(X):
            G, H = _stacked_csc_rmatvec_pair(
                X.data, unsigned_view(X.indices), unsigned_view(X.indptr),
                np.ascontiguousarray(r, dtype=np.float64),
                np.ascontiguousarray(q, dtype=np.float64),
                unsigned_view(self.task_ptr))
            return self._centred(G.T, r), self._centred(H.T, q)
        G, H = _stacked_csr_rmatvec_pair(
            X.data, unsigned_view(X.indices), unsigned_view(X.indptr),
            np.ascontiguousarray(r, dtype=np.float64),
            np.ascontiguousarray(q, dtype=np.float64),
            unsigned_view(self.task_ptr), X.shape[1])
        return self._centred(G, r), self._centred(H, q)

    def curvature_blocks(self, h):
        """See :meth:`SharedDesign.curvature_blocks`."""
        if sp.issparse(self.X):
            if self.x_mean is not None:
                return None
            X = self.rows()  # exact Newton steps ask at each step
            return _stacked_csr_curvature_blocks(
                X.data, unsigned_view(X.indices), unsigned_view(X.indptr),
                np.ascontiguousarray(h, dtype=np.float64),
                unsigned_view(self.task_ptr), self.n_features)
        x_mean = (np.zeros((0, self.n_features)) if self.x_mean is None
                  else self.x_mean)
        return _stacked_dense_curvature_blocks(
            self.X, np.ascontiguousarray(h, dtype=np.float64), x_mean,
            unsigned_view(self.task_ptr))

    def curvature_diagonal(self, h):
        """The diagonals of :meth:`curvature_blocks`, (d, T), each entry
        centred before it is squared (a CSR ``X``: see
        :func:`_csr_task_diagonal`)."""
        x_mean = (np.zeros((0, self.n_features)) if self.x_mean is None
                  else self.x_mean)
        h = np.ascontiguousarray(h, dtype=np.float64)
        task_ptr = unsigned_view(self.task_ptr)
        if sp.issparse(self.X):
            X = self.rows()
            D = _stacked_csr_curvature_diagonal(
                X.data, unsigned_view(X.indices), unsigned_view(X.indptr),
                task_ptr, h, x_mean, self.n_features)
        else:
            D = _stacked_dense_curvature_diagonal(self.X, h, x_mean, task_ptr)
        return D.T

    def curvature_cg(self, h, g, mu, intercept, forcing, max_iter, mix=0.0,
                     plain=0):
        """``(s, X_c s_W + s_b)``: Newton-CG's conjugate gradients on ``H s
        = -g`` (``g = (g_W, g_b)``), task by task to ``||r_t|| <=
        forcing[t]``, preconditioned by ``mu I + mix diag(H)`` after
        ``plain`` plain iterations (``mix = 0``: plain CG), in one compiled
        call for a CSR ``X`` (:func:`_stacked_csr_cg`); ``None`` for a dense
        one."""
        if not sp.issparse(self.X):
            return None
        X, d = self.rows(), self.n_features
        sWt, sb, dz = _stacked_csr_cg(
            X.data, unsigned_view(X.indices), unsigned_view(X.indptr),
            unsigned_view(self.task_ptr),
            np.ascontiguousarray(h, dtype=np.float64),
            np.zeros((0, d)) if self.x_mean is None else self.x_mean,
            np.ascontiguousarray(g[0].T), np.asarray(g[1], dtype=np.float64),
            float(mu), bool(intercept), np.asarray(forcing, dtype=np.float64),
            int(max_iter), float(mix), int(plain))
        return (sWt.T, sb), dz

    def task_sum(self, r):
        if self._starts is None:
            return np.add.reduceat(r, self.task_ptr[:-1])
        # reduceat would give an empty task its successor's first entry
        out = np.zeros((self.n_tasks,) + np.shape(r)[1:])
        out[self.counts > 0] = np.add.reduceat(r, self._starts)
        return out

    def task_broadcast(self, b):
        return np.repeat(b, self.counts)

    def task_rows(self, t):
        return slice(self.task_ptr[t], self.task_ptr[t + 1])

    def lipschitz(self, v):
        best = 0.0
        X = self.rows(keep=False)
        for t in np.flatnonzero(self.counts):
            rows = self.task_rows(t)
            mean = None if self.x_mean is None else self.x_mean[t]
            best = max(best, max_sq_singular_value(X[rows], v[rows], mean))
        return best

    def task_grams(self, v):
        """Each task's ``Q_t = X_tc^T diag(v_t) X_tc`` (d, d) in turn: one
        in memory at a time."""
        X = self.rows(keep=False)
        for t in range(self.n_tasks):
            rows = self.task_rows(t)
            yield centred_gram(X[rows], v[rows], None if self.x_mean is None
                               else self.x_mean[t])

    def gram_statistics(self, y, v):
        """Per-task ``Q_t = X_tc^T diag(v_t) X_tc`` (T, d, d), ``C``, ``yy``.

        Returns ``(Q, None, C, yy)`` with ``grad_t = Q_t w_t - C_t``.
        """
        d = self.n_features
        Q = np.empty((self.n_tasks, d, d))
        for t, Q_t in enumerate(self.task_grams(v)):
            Q[t] = Q_t
        C = self.rmatmat(v * y)
        yy = self.task_sum(v * y * y)
        return Q, None, C, yy
