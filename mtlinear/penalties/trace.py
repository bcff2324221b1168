"""``trace``: the nuclear norm, tasks share a low-dimensional subspace.

``N(W) = ||W||_*`` (sum of singular values).  The prox soft-thresholds the
singular values, ``W -> U diag((s - tau)_+) V^T = W V diag((s - tau)_+ / s)
V^T``; the right singular vectors come from the ``k x k`` Gram matrix of the
thin ``d x T`` matrix, ``k = min(d, T)`` (:func:`_trace_shrink`; LAPACK's
SVD when a kept singular value is too small for that to be accurate).  The
dual norm is the spectral norm; the conjugate with a ridge part is
``sum_i (s_i(U) - lam)_+^2 / (2 mu)``.
"""
from collections import namedtuple

import numpy as np
from numba import njit
from scipy.linalg.lapack import dsyevd as _syevd

from .._threads import single_blas_thread
from ._base import Penalty, register_penalty
from ._compiled import feasible_dual, implements, prox, value

__all__ = ["Trace"]

# below this ratio of a kept singular value to the largest, the Gram route
# of the prox loses accuracy (it squares the condition number): take LAPACK's SVD
_GRAM_SVD_MIN_RATIO = 1e-6

TraceRecord = namedtuple("TraceRecord", ["lam", "mu"])


@njit(cache=True)
def _trace_shrink(W, threshold, min_ratio):
    """``(prox, ok)``: the singular values of ``W`` soft-thresholded, through
    the eigendecomposition of the small ``k x k`` Gram matrix, ``k = min(d,
    T)``; ``ok`` is False (and ``prox`` meaningless) when a kept singular
    value is below ``min_ratio`` times the largest.

    With ``W^T W = V diag(s^2) V^T`` (tall ``W``), ``prox = W V diag(1 -
    threshold / s) V^T`` over the kept ``s > threshold``; for a wide ``W``
    the same from the left.  On a tall thin ``W`` this is several times
    cheaper than an SVD, and compiled it avoids a dozen numpy calls on the
    tiny matrices of a few tasks.
    """
    d, T = W.shape
    transposed = d < T
    gram = np.dot(W, W.T) if transposed else np.dot(W.T, W)
    eigenvalues, V = np.linalg.eigh(gram)  # ascending
    k = eigenvalues.size
    s = np.sqrt(np.maximum(eigenvalues, 0.0))
    first = k
    for i in range(k):
        if s[i] > threshold:
            first = i
            break
    if first == k:
        return np.zeros_like(W), True
    if s[first] < min_ratio * s[k - 1]:
        return W, False
    kept = np.ascontiguousarray(V[:, first:])
    factor = 1.0 - threshold / s[first:]
    if transposed:  # V spans W's columns: W -> V diag(f) V^T W
        return np.dot(kept * factor, np.dot(kept.T, W)), True
    return np.dot(np.dot(W, kept) * factor, kept.T), True


@implements(prox, TraceRecord)
def _prox(p, W, step):
    def impl(p, W, step):
        W = np.ascontiguousarray(W)
        scale = 1.0 / (1.0 + step * p.mu)
        if p.lam <= 0.0:
            return W * scale, True
        out, ok = _trace_shrink(W, step * p.lam, _GRAM_SVD_MIN_RATIO)
        return out * scale, ok
    return impl


@implements(value, TraceRecord)
def _value(p, W):
    def impl(p, W):
        sq = 0.0
        for j in range(W.shape[0]):
            for t in range(W.shape[1]):
                sq += W[j, t] * W[j, t]
        out = 0.5 * p.mu * sq
        if p.lam > 0.0 and W.size:
            out += p.lam * np.linalg.svd(W, full_matrices=False)[1].sum()
        return out
    return impl


@implements(feasible_dual, TraceRecord)
def _feasible_dual(p, U, rows):
    # the largest singular value is accurate from the small Gram matrix; with
    # a ridge part all of them are needed (LAPACK's SVD)
    def impl(p, U, rows):
        d, T = U.shape
        c = np.ones(T)
        if p.mu > 0.0:
            conj = 0.0
            if p.lam > 0.0 and U.size:
                for s in np.linalg.svd(U, full_matrices=False)[1]:
                    conj += max(s - p.lam, 0.0) ** 2
            elif p.lam <= 0.0:
                for j in range(d):
                    for t in range(T):
                        conj += U[j, t] * U[j, t]
            return c, conj / (2.0 * p.mu)
        if p.lam <= 0.0:
            return np.zeros(T), 0.0
        if U.size:
            gram = np.dot(U.T, U) if d >= T else np.dot(U, U.T)
            top = np.sqrt(max(np.linalg.eigh(gram)[0][-1], 0.0))
            if top > p.lam:
                c[:] = p.lam / top
        return c, 0.0
    return impl


@register_penalty
class Trace(Penalty):
    """``N(W) = ||W||_*`` (sum of singular values): tasks share a subspace."""

    name = "trace"
    orthogonally_invariant = True
    compiled = True

    def record(self, n_features):
        return TraceRecord(self.lam, self.mu)

    def norm(self, W):
        with single_blas_thread():
            return float(np.linalg.svd(W, compute_uv=False).sum())

    def prox_norm(self, W, threshold):
        if W.size == 0:
            return np.array(W, dtype=np.float64)
        W = np.ascontiguousarray(W, dtype=np.float64)
        with single_blas_thread():  # small products (see mtlinear._threads)
            out, ok = _trace_shrink(W, threshold, _GRAM_SVD_MIN_RATIO)
            if ok:
                return out
            U, s, Vt = np.linalg.svd(W, full_matrices=False)
        s = np.maximum(s - threshold, 0.0)
        keep = s > 0
        return (U[:, keep] * s[keep]) @ Vt[keep]

    def dual_norm(self, U, rows=None):
        if U.size == 0:
            return 0.0
        gram = U @ U.T if U.shape[0] < U.shape[1] else U.T @ U
        with single_blas_thread():
            eigenvalues, _, info = _syevd(gram, compute_v=0)
        top = eigenvalues[-1] if info == 0 else np.linalg.eigvalsh(gram)[-1]
        return float(np.sqrt(max(top, 0.0)))
