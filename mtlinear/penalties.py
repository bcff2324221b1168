"""Penalties on the weight matrix ``W`` (d features x T tasks).

Every penalty is ``alpha * R(W)`` with

.. math::

    R(W) = r\\,N(W) + \\frac{1 - r}{2}\\,\\|W\\|_F^2, \\qquad r = \\text{l1\\_ratio},

where ``N`` is a norm (the sparsity- or rank-inducing part).  Writing
``lam = alpha * r`` and ``mu = alpha * (1 - r)``, ``h(W) = lam N(W) + mu/2 ||W||^2``.

What a solver needs from a penalty
----------------------------------
* ``value(W)``: ``h(W)``.
* ``prox(W, step)``: ``argmin_U ||U - W||^2 / (2 step) + h(U)``.  Completing the
  square and using that ``N`` is positively homogeneous,

  .. math:: \\mathrm{prox}_{s h}(W) = \\mathrm{prox}_{s\\lambda N}(W) / (1 + s\\mu).

* ``conjugate(U)``: the Fenchel conjugate ``h*(U)``, used by the duality gap.
  ``h`` is the infimal-convolution dual of ``lam N`` and ``mu/2 ||.||^2``, so

  .. math::

      h^*(U) = \\min_{N^\\circ(V) \\le \\lambda} \\frac{\\|U - V\\|_F^2}{2\\mu}
             = \\frac{\\|\\mathrm{prox}_{\\lambda N}(U)\\|_F^2}{2\\mu}
      \\quad (\\mu > 0),

  by Moreau's decomposition (``U - Pi_{lam B°}(U) = prox_{lam N}(U)``), and for
  ``mu = 0`` it is the indicator of the dual-norm ball ``N°(U) <= lam``.
* ``dual_norm(U)``: ``N°(U)``, which gives ``alpha_max`` and makes a dual point
  feasible when ``mu = 0`` (see :mod:`mtlinear._datafit`).

Penalties whose norm is a sum over feature rows (``l1``, ``l21``) set
``row_separable = True``; block coordinate descent relies on it.  Penalties
with ``R(V Z) = R(Z)`` for every ``V`` with orthonormal columns (trace norm,
Frobenius) set ``orthogonally_invariant = True``: with a shared design and
fewer samples than features the solver then works in the row space of ``X``.

A new penalty is one small subclass registered with :func:`register_penalty`.
"""
import numpy as np
from numba import njit
from scipy.linalg.lapack import dsyevd as _syevd

from ._threads import single_blas_thread

__all__ = ["Penalty", "L1", "L2", "L21", "Trace", "PENALTIES", "make_penalty",
           "register_penalty"]


# ---------------------------------------------------------------- kernels
# below this ratio of a kept singular value to the largest, the Gram route
# of the trace norm's prox loses accuracy (it squares the condition number):
# take LAPACK's SVD
_GRAM_SVD_MIN_RATIO = 1e-6


@njit(cache=True)
def _soft_threshold(W, threshold, scale):
    """Elementwise ``sign(w) max(|w| - threshold, 0) * scale`` (a new array)."""
    out = np.empty_like(W)
    flat_in = W.ravel()
    flat_out = out.ravel()
    for k in range(flat_in.size):
        w = flat_in[k]
        if w > threshold:
            flat_out[k] = (w - threshold) * scale
        elif w < -threshold:
            flat_out[k] = (w + threshold) * scale
        else:
            flat_out[k] = 0.0
    return out


@njit(cache=True)
def _group_soft_threshold(W, threshold, scale):
    """Row-wise ``w_j max(1 - threshold / ||w_j||, 0) * scale`` (a new array)."""
    d, T = W.shape
    out = np.zeros_like(W)
    for j in range(d):
        sq = 0.0
        for t in range(T):
            sq += W[j, t] * W[j, t]
        norm = np.sqrt(sq)
        if norm > threshold:
            factor = (1.0 - threshold / norm) * scale
            for t in range(T):
                out[j, t] = W[j, t] * factor
    return out


@njit(cache=True)
def _row_norms(W):
    """Euclidean norm of each row of ``W``."""
    out = np.empty(W.shape[0])
    for j in range(W.shape[0]):
        sq = 0.0
        for t in range(W.shape[1]):
            sq += W[j, t] * W[j, t]
        out[j] = np.sqrt(sq)
    return out


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
    tiny matrices of a few tasks (on (200, 5): 6 us against 15 us).  The
    Gram route squares the condition number, hence the ratio check.
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


_KERNEL_L1, _KERNEL_L21, _KERNEL_TRACE, _KERNEL_RIDGE = 0, 1, 2, 3


@njit(cache=True)
def _prox_kernel(W, threshold, scale, kind):
    """``(prox_norm(W, threshold) * scale, ok)`` for the penalty ``kind``
    (``Penalty.kernel``) in compiled code; ``ok`` is False when the trace
    norm's Gram route is inaccurate (the caller then takes the SVD)."""
    W = np.ascontiguousarray(W)
    if kind == _KERNEL_L1:
        return _soft_threshold(W, threshold, scale), True
    if kind == _KERNEL_L21:
        return _group_soft_threshold(W, threshold, scale), True
    if kind == _KERNEL_TRACE:
        out, ok = _trace_shrink(W, threshold, _GRAM_SVD_MIN_RATIO)
        return out * scale, ok
    return W * scale, True


@njit(cache=True)
def _row_penalty_value(W, lam, mu, kind):
    """``h(W)`` for ``l1`` / ``l21`` (``kind``) with their ridge part."""
    norm = 0.0
    sq = 0.0
    for j in range(W.shape[0]):
        row_sq = 0.0
        for t in range(W.shape[1]):
            w = W[j, t]
            row_sq += w * w
            if kind == _KERNEL_L1:
                norm += abs(w)
        sq += row_sq
        if kind == _KERNEL_L21:
            norm += np.sqrt(row_sq)
    return (lam * norm if lam > 0.0 else 0.0) + 0.5 * mu * sq


@njit(cache=True)
def _row_feasible_dual(U, lam, mu, kind):
    """``Penalty.feasible_dual`` for ``l1`` / ``l21`` (``kind``): one factor
    per task (equal ones for ``l21``) and the conjugate there.

    With a ridge part ``h*(U) = ||prox_{lam N}(U)||^2 / (2 mu)`` (soft-
    thresholded entries or row norms), else ``c`` scales ``U`` into the
    dual-norm ball (``c = 0`` when ``lam = 0``).
    """
    d, T = U.shape
    c = np.ones(T)
    if mu > 0.0:
        conj = 0.0
        for j in range(d):
            row_sq = 0.0
            for t in range(T):
                row_sq += U[j, t] * U[j, t]
                if kind == _KERNEL_L1:
                    excess = max(abs(U[j, t]) - lam, 0.0)
                    conj += excess * excess
            if kind == _KERNEL_L21:
                excess = max(np.sqrt(row_sq) - lam, 0.0)
                conj += excess * excess
        return c, conj / (2.0 * mu)
    if lam <= 0.0:
        return np.zeros(T), 0.0
    if kind == _KERNEL_L21:  # the largest row norm, one factor
        top = 0.0
        for j in range(d):
            row_sq = 0.0
            for t in range(T):
                row_sq += U[j, t] * U[j, t]
            top = max(top, np.sqrt(row_sq))
        if top > lam:
            c[:] = lam / top
        return c, 0.0
    for t in range(T):  # l1: the largest entry of each task
        top = 0.0
        for j in range(d):
            top = max(top, abs(U[j, t]))
        if top > lam:
            c[t] = lam / top
    return c, 0.0


# ---------------------------------------------------------------- classes
class Penalty:
    """Base class: ``alpha * (r N(W) + (1 - r)/2 ||W||_F^2)``.

    Subclasses define the norm ``N`` through :meth:`norm`, :meth:`prox_norm`
    (the prox of ``threshold * N``) and :meth:`dual_norm`.

    Parameters
    ----------
    alpha : float
        Regularization strength, ``>= 0``.
    l1_ratio : float
        Mix ``r`` in ``[0, 1]`` between the norm (``r = 1``) and the ridge term.
    """

    name = None
    row_separable = False
    orthogonally_invariant = False
    kernel = None  # code of the compiled kernels (_prox_kernel, the l1 / l21
    # value and dual point, the gap on sufficient statistics), for the
    # package's penalties

    def __init__(self, alpha, l1_ratio=1.0):
        self.alpha = float(alpha)
        self.l1_ratio = float(l1_ratio)

    @property
    def lam(self):
        """Weight of the norm: ``alpha * l1_ratio``."""
        return self.alpha * self.l1_ratio

    @property
    def mu(self):
        """Weight of the ridge term: ``alpha * (1 - l1_ratio)``."""
        return self.alpha * (1.0 - self.l1_ratio)

    # -- the norm N, defined by subclasses
    def norm(self, W):
        raise NotImplementedError

    def prox_norm(self, W, threshold):
        raise NotImplementedError

    def dual_norm(self, U):
        raise NotImplementedError

    # -- generic parts
    def value(self, W):
        """``h(W) = lam N(W) + mu/2 ||W||_F^2``."""
        out = 0.5 * self.mu * float(np.vdot(W, W))
        if self.lam > 0:
            out += self.lam * self.norm(W)
        return out

    def prox(self, W, step):
        """Proximal operator of ``step * h`` at ``W`` (returns a new array)."""
        scale = 1.0 / (1.0 + step * self.mu)
        return self._prox_scaled(W, step * self.lam, scale)

    def _prox_scaled(self, W, threshold, scale):
        return self.prox_norm(W, threshold) * scale

    def conjugate(self, U):
        """Fenchel conjugate ``h*(U)`` (``inf`` outside the domain)."""
        if self.mu > 0:
            P = self.prox_norm(U, self.lam) if self.lam > 0 else U
            return float(np.vdot(P, P)) / (2.0 * self.mu)
        if self.lam == 0:  # alpha = 0: h = 0, h* = indicator of {0}
            return 0.0 if not np.any(U) else np.inf
        # indicator of the ball, with slack for rounding in the dual point
        return 0.0 if self.dual_norm(U) <= self.lam * (1 + 1e-12) else np.inf

    def dual_scaling(self, U):
        """Factor ``c`` in ``(0, 1]`` such that ``h*(c U)`` is finite: a
        float, or one per task (an array over the columns of ``U``) for a
        penalty that separates over tasks (:class:`L1`)."""
        if self.mu > 0:
            return 1.0
        if self.lam == 0:
            return 0.0
        norm = self.dual_norm(U)
        return 1.0 if norm <= self.lam else self.lam / norm

    def feasible_dual(self, U):
        """``(c, h*(c U))`` with ``c`` from :meth:`dual_scaling`: the factor
        making ``c U`` dual feasible and the conjugate there.  Without a
        ridge part ``h*`` is the indicator of the ball ``c U`` lies in by
        construction: 0, with no second dual norm to compute."""
        c = self.dual_scaling(U)
        if self.mu > 0 or self.lam <= 0:
            return c, self.conjugate(c * U)
        return c, 0.0


class _RowSeparable(Penalty):
    """Norms that are sums over feature rows: compiled value and dual point
    (the same kernels serve the compiled coordinate descent)."""

    row_separable = True

    def value(self, W):
        return _row_penalty_value(np.ascontiguousarray(W, dtype=np.float64),
                                  self.lam, self.mu, self.kernel)

    def feasible_dual(self, U):
        return _row_feasible_dual(np.ascontiguousarray(U, dtype=np.float64),
                                  self.lam, self.mu, self.kernel)


class L1(_RowSeparable):
    """``N(W) = sum_jt |W_jt|``: independent sparse models (Lasso per task)."""

    name = "l1"
    kernel = _KERNEL_L1

    def norm(self, W):
        return float(np.abs(W).sum())

    def prox_norm(self, W, threshold):
        return _soft_threshold(np.ascontiguousarray(W), threshold, 1.0)

    def _prox_scaled(self, W, threshold, scale):
        return _soft_threshold(np.ascontiguousarray(W), threshold, scale)

    def dual_norm(self, U):
        return float(np.abs(U).max()) if U.size else 0.0

    def dual_scaling(self, U):
        """One factor per task, ``c_t = min(1, lam / max_j |U_jt|)``.

        The penalty, and so its dual-norm ball, separates over tasks, so each
        task's dual variable is scaled on its own.  A single factor would let
        the slowest task shrink every task's dual point: on School (139
        tasks, ``alpha = alpha_max / 100``) the common factor left the gap 70
        times above the per-task one, and a solve stopped unconverged after
        5000 epochs where it now converges in 50.
        """
        if self.mu > 0 or self.lam == 0 or U.size == 0:
            return super().dual_scaling(U)
        top = np.abs(U).max(axis=0)
        return np.where(top <= self.lam, 1.0,
                        self.lam / np.maximum(top, np.finfo(float).tiny))


class L21(_RowSeparable):
    """``N(W) = sum_j ||W_j||_2`` over feature rows: joint feature selection."""

    name = "l21"
    kernel = _KERNEL_L21

    def norm(self, W):
        return float(_row_norms(np.ascontiguousarray(W)).sum())

    def prox_norm(self, W, threshold):
        return _group_soft_threshold(np.ascontiguousarray(W), threshold, 1.0)

    def _prox_scaled(self, W, threshold, scale):
        return _group_soft_threshold(np.ascontiguousarray(W), threshold, scale)

    def dual_norm(self, U):
        return float(_row_norms(np.ascontiguousarray(U)).max()) if U.size else 0.0


class Trace(Penalty):
    """``N(W) = ||W||_*`` (sum of singular values): tasks share a subspace.

    The prox soft-thresholds the singular values, ``W -> U diag((s - tau)_+)
    V^T = W V diag((s - tau)_+ / s) V^T``; the right singular vectors come
    from the ``k x k`` Gram matrix of the thin ``d x T`` matrix, ``k = min(d,
    T)`` (:func:`_trace_shrink`; LAPACK's SVD when a kept singular value is
    too small for that to be accurate).
    """

    name = "trace"
    kernel = _KERNEL_TRACE
    orthogonally_invariant = True

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

    def dual_norm(self, U):
        if U.size == 0:
            return 0.0
        # the largest singular value is accurate from the small Gram matrix
        gram = U @ U.T if U.shape[0] < U.shape[1] else U.T @ U
        with single_blas_thread():
            eigenvalues, _, info = _syevd(gram, compute_v=0)
        top = eigenvalues[-1] if info == 0 else np.linalg.eigvalsh(gram)[-1]
        return float(np.sqrt(max(top, 0.0)))


class L2(Penalty):
    """``R(W) = ||W||_F^2 / 2``: independent ridge models, no sharing.

    ``l1_ratio`` does not apply: the whole penalty is the ridge term.
    """

    name = "l2"
    kernel = _KERNEL_RIDGE
    orthogonally_invariant = True

    def __init__(self, alpha, l1_ratio=1.0):
        super().__init__(alpha, 0.0)

    def norm(self, W):
        return 0.0

    def prox_norm(self, W, threshold):
        return np.array(W, dtype=np.float64)

    def dual_norm(self, U):
        return 0.0


PENALTIES = {}


def register_penalty(cls):
    """Register a :class:`Penalty` subclass under its ``name``."""
    PENALTIES[cls.name] = cls
    return cls


for _cls in (L1, L2, L21, Trace):
    register_penalty(_cls)


def make_penalty(name, alpha, l1_ratio=1.0):
    """Instantiate the registered penalty ``name``."""
    try:
        cls = PENALTIES[name]
    except KeyError:
        raise ValueError(
            f"Unknown penalty {name!r}; choose one of {sorted(PENALTIES)}."
        ) from None
    return cls(alpha, l1_ratio)
