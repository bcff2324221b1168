"""Smooth task-coupling terms ``g(W) = tr(W K W^T) / 2`` added to the data fit.

``K`` is a symmetric positive semi-definite ``T x T`` matrix; the term couples
the tasks' weights feature by feature (``g(W) = sum_j W_j K W_j^T / 2`` over
the rows ``W_j`` of ``W``).  A task graph with adjacency ``A`` and strength
``graph_alpha`` gives ``K = 2 graph_alpha L``, ``L = diag(A 1) - A``, so that

.. math::

    g(W) = \\text{graph\\_alpha}\\, \\mathrm{tr}(W L W^T)
         = \\frac{\\text{graph\\_alpha}}{2} \\sum_{s, t} A_{st}\\,
           \\|w_s - w_t\\|^2;

a learned task covariance ``Omega`` gives ``K = beta Omega^{-1}``.

``K`` is a dense array or a ``scipy.sparse`` matrix (a graph given by its
edges: ``"chain"``, a dict of pairs, a sparse adjacency).  A sparse ``K``
stays sparse: ``W K`` is a compiled product over its nonzeros
(:func:`sparse_right_product`, ``d nnz(K)`` operations where the dense
product takes ``d T^2``), the Lipschitz bound is Gershgorin's (the largest
absolute row sum), and the prox ``Y (I + step K)^{-1}`` and the conjugate
solve with a sparse LU factorization instead of an eigendecomposition of
``K``.  Nothing of size ``T x T`` is formed: a chain over 6,400 tasks holds
19,198 nonzeros where the dense ``K`` took 330 MB.

Duality gap with a coupling term
--------------------------------
The primal is ``P(W, b) = F(X W + b) + g(W) + h(W)``.  For any ``Theta`` and
``V``, Fenchel-Young on each of the three terms gives

.. math::

    P(W, b) \\ge D(\\Theta, V) = -F^*(-\\Theta) - g^*(-V) - h^*(X^T\\Theta + V).

The dual point is the gradient map, ``Theta = -F'(XW + b)`` and ``V = -W K``,
scaled by one factor ``c``: ``X^T Theta + V = -\\nabla_W (F + g)`` then plays
the part of ``U`` in the data-fit's own gap, and ``g^*(c W K) = c^2 g(W)``
because ``g^*(Z) = tr(Z K^+ Z^T) / 2`` on the range of ``K``, which the rows
of ``W K`` lie in whatever ``W`` (a singular ``K``, as a graph Laplacian is,
needs no special care).  The factor must be one for all tasks: scaling the
columns of ``W K`` one by one would leave the range of ``K``.

Without a penalty (``h = 0``, ``h*`` the indicator of ``{0}``) the dual needs
``V = -X^T Theta`` exactly; when ``K`` is invertible ``g^*`` is finite
everywhere, ``g^*(U) = tr(U K^{-1} U^T) / 2``, and that point certifies the
solve (a task covariance, a cluster term).  A singular ``K`` (a graph)
without a penalty has no such certificate: the solvers refuse it.
"""
from functools import cached_property

import numpy as np
import scipy.sparse as sp
from numba import njit
from scipy.sparse.linalg import splu

__all__ = ["TaskCoupling", "CoupledDatafit", "CoupledGramDatafit", "with_coupling",
           "csr_arrays", "sparse_right_product"]

# factorizations of I + step K kept per step (ADMM's rho moves by factors of
# two, so few distinct steps recur)
_FACTORS_KEPT = 8


class TaskCoupling:
    """``g(W) = tr(W K W^T) / 2`` for a symmetric PSD ``K`` (T, T).

    Parameters
    ----------
    K : ndarray or scipy.sparse matrix of shape (n_tasks, n_tasks)
        Symmetric positive semi-definite (checked by the builders of ``K``;
        see :func:`mtlinear._task_graph.graph_coupling`).  A sparse ``K`` is
        kept sparse (CSR, see the module docstring).
    identity_plus_low_rank : tuple (a, V, b), optional
        ``K = a I + V diag(b) V^T`` with ``V`` (T, r) orthonormal columns (a
        learned relation, :mod:`mtlinear._relations`): the prox and the
        conjugate then follow in ``d T r`` operations,

        .. math:: (I + tK)^{-1} = \\frac{I}{1 + ta} + V \\operatorname{diag}
                  \\Big(\\frac{1}{1 + t(a + b)} - \\frac{1}{1 + ta}\\Big) V^\\top,

        (``K^{-1}`` likewise), without the eigendecomposition of ``K``.
    """

    def __init__(self, K, identity_plus_low_rank=None):
        self._parts = identity_plus_low_rank
        self.sparse = sp.issparse(K)
        if self.sparse:
            K = sp.csr_array(K, dtype=np.float64)
            K.sum_duplicates()  # canonical: sorted indices, no duplicates
            self.K = K
            self._csr = csr_arrays(K)
            self._factors = {}
        else:
            self.K = np.ascontiguousarray(K, dtype=np.float64)
        # a bound on lambda_max(K), the gradient W K's Lipschitz constant,
        # without an eigendecomposition (Gershgorin's discs)
        self.lipschitz = float(np.max(abs(self.K).sum(axis=1), initial=0.0))

    @cached_property
    def _spectrum(self):
        return np.linalg.eigh(self.dense())

    def dense(self):
        """``K`` as a dense array (a copy when sparse)."""
        return self.K.toarray() if self.sparse else self.K

    @property
    def invertible(self):
        """Whether ``K`` is positive definite (to rounding).

        A sparse ``K`` whose rows sum to zero (a graph's Laplacian, or its
        expansion over classes) is singular, ``K 1 = 0``, without an
        eigendecomposition; another sparse ``K`` is decomposed densely (no
        builder makes one)."""
        if self._parts is not None:
            a, _, b = self._parts
            values = np.append(a + b, a)
            return bool(values.min() > 1e-12 * max(values.max(), 0.0)
                        and values.min() > 0)
        if self.sparse:
            sums = np.abs(self.K.sum(axis=1))
            if np.all(sums <= 1e-12 * max(self.lipschitz, np.finfo(float).tiny)):
                return False
        spectrum = self._spectrum[0]
        return bool(spectrum[0] > 1e-12 * max(spectrum[-1], 0.0)
                    and spectrum[0] > 0)

    @property
    def n_tasks(self):
        return self.K.shape[0]

    def value(self, W):
        return 0.5 * float(np.vdot(self.gradient(W), W))

    def gradient(self, W):
        """``W K`` (d, T)."""
        if self.sparse:
            return sparse_right_product(
                np.ascontiguousarray(W, dtype=np.float64), *self._csr)
        return W @ self.K

    def prox(self, Y, step):
        """``argmin_Z step g(Z) + ||Z - Y||^2 / 2 = Y (I + step K)^{-1}``.

        Dense ``K``: through its eigendecomposition (made once, every
        ``step`` uses it).  Sparse ``K``: ``(I + step K) Z^T = Y^T`` solved
        with a sparse LU factorization of ``I + step K`` (kept for the last
        few steps), symmetric positive definite, so no pivoting trouble.
        """
        if self._parts is not None:
            a, V, b = self._parts
            plain = 1.0 / (1.0 + step * a)
            shrink = 1.0 / (1.0 + step * np.maximum(a + b, 0.0)) - plain
            return plain * Y + ((Y @ V) * shrink) @ V.T
        if self.sparse:
            factor = self._factors.get(step)
            if factor is None:
                if len(self._factors) >= _FACTORS_KEPT:
                    self._factors.pop(next(iter(self._factors)))
                factor = self._factors[step] = splu(
                    (sp.eye_array(self.n_tasks, format="csc")
                     + step * self.K).tocsc())
            return np.ascontiguousarray(factor.solve(
                np.asfortranarray(Y.T, dtype=np.float64)).T)
        spectrum, basis = self._spectrum
        return ((Y @ basis) / (1.0 + step * np.maximum(spectrum, 0.0))) @ basis.T

    def conjugate(self, U):
        """``g*(U) = tr(U K^{-1} U^T) / 2`` (``K`` invertible)."""
        if self._parts is not None:
            a, V, b = self._parts
            UV = U @ V
            return 0.5 * float(np.vdot(U, U) / a
                               + np.sum(UV * UV * (1.0 / (a + b) - 1.0 / a)))
        if self.sparse:
            V = splu(self.K.tocsc()).solve(np.asfortranarray(U.T, dtype=np.float64))
            return 0.5 * float(np.vdot(U.T, V))
        spectrum, basis = self._spectrum
        V = U @ basis
        return 0.5 * float(np.sum(V * V / spectrum))


def csr_arrays(K):
    """``(indptr, indices, data)`` of a sparse ``K`` for
    :func:`sparse_right_product` (int64 indices: one compiled version)."""
    K = sp.csr_array(K)
    return (K.indptr.astype(np.int64), K.indices.astype(np.int64),
            np.asarray(K.data, dtype=np.float64))


@njit(cache=True)
def sparse_right_product(W, indptr, indices, data):
    """``W K`` (d, T) for a symmetric ``K`` in CSR form: column ``t`` is
    ``sum_s W[:, s] K_ts`` over row ``t``'s nonzeros (``K_st = K_ts``), so
    each output entry is one pass over a row of ``W`` and a row of ``K``."""
    d, T = W.shape
    out = np.zeros((d, T))
    for j in range(d):
        for t in range(T):
            acc = 0.0
            for p in range(indptr[t], indptr[t + 1]):
                acc += data[p] * W[j, indices[p]]
            out[j, t] = acc
    return out


def with_coupling(datafit, coupling):
    """``datafit`` plus the coupling term (``datafit`` itself when ``None``)."""
    if coupling is None:
        return datafit
    if hasattr(datafit, "kernel_statistics"):
        return CoupledGramDatafit(datafit, coupling)
    return CoupledDatafit(datafit, coupling)


class CoupledDatafit:
    """``F(W, b) + g(W)``: a data-fit (the datafit protocol of
    :mod:`mtlinear._datafit`) plus a :class:`TaskCoupling`.

    FISTA's affine state is the inner one's with ``W K`` appended (flat), so
    that the gradient at the extrapolated point needs no product with ``K``
    beyond the one of each new iterate.
    """

    def __init__(self, datafit, coupling):
        self.inner = datafit
        self.coupling = coupling
        self.intercept_variable = datafit.intercept_variable
        self.intercept_weight = datafit.intercept_weight
        self.curvature_factor = datafit.curvature_factor  # g is quadratic
        self.step_shrink = datafit.step_shrink
        inner_bound = getattr(datafit, "curvature_bound", None)
        if inner_bound is not None:  # a loss of unbounded curvature
            def curvature_bound(S_new, S):
                return (inner_bound(self._inner_state(S_new, None),
                                    self._inner_state(S, None))
                        + coupling.lipschitz)
            self.curvature_bound = curvature_bound

    def step_bounds(self):
        start, cap = self.inner.step_bounds()
        top = self.coupling.lipschitz
        return start + top, cap + top

    # -- the affine state: (inner state, W K), flattened into one array
    def affine_state(self, W, b):
        inner = np.asarray(self.inner.affine_state(W, b))
        self._inner_shape = inner.shape
        return np.concatenate([inner.ravel(), self.coupling.gradient(W).ravel()])

    def _inner_state(self, S, W):
        return self._split(S)[0]

    def _split(self, S):
        size = int(np.prod(self._inner_shape))
        return (S[:size].reshape(self._inner_shape),
                S[size:].reshape(-1, self.coupling.n_tasks))

    def gradient_at_state(self, S):
        inner, WK = self._split(S)
        GW, gb, aux = self.inner.gradient_at_state(inner)
        return GW + WK, gb, aux

    def curvature(self, S_new, S, aux, dW):
        inner_new, WK_new = self._split(S_new)
        inner, WK = self._split(S)
        return (self.inner.curvature(inner_new, inner, aux, dW)
                + float(np.vdot(WK_new - WK, dW)))

    def value(self, W, b):
        return self.inner.value(W, b) + self.coupling.value(W)

    def gradient(self, W, b=None):
        GW, gb = self.inner.gradient(W, b)
        return GW + self.coupling.gradient(W), gb

    def initial_intercept(self):
        return self.inner.initial_intercept()

    def null_value(self):
        """``P(0)``: the coupling term vanishes at ``W = 0``."""
        return self.inner.null_value()

    def duality_gap(self, W, b, penalty, state=None):
        """``(primal, gap)`` with the dual point of the module docstring."""
        inner_state = None if state is None else self._inner_state(state, W)
        return self.gap_at(W, b, penalty, inner_state)

    def gap_at(self, W, b, penalty, inner_state=None):
        """:meth:`duality_gap` given the inner data-fit's state (the linear
        predictor of a sample data-fit, as proximal Newton carries it)."""
        value, U, dual, _ = self.inner.dual_parts(W, b, inner_state)
        g = self.coupling.value(W)
        if penalty.alpha == 0:  # V = -X^T Theta (module docstring)
            primal = value + g
            return primal, primal - (dual(1.0) - self.coupling.conjugate(U))
        U = U - self.coupling.gradient(W)
        c, conj = penalty.feasible_dual(U)
        if np.ndim(c):  # one factor for all tasks (module docstring)
            c = float(np.min(c))
            conj = penalty.conjugate(c * U)
        primal = value + g + penalty.value(W)
        return primal, primal - (dual(c) - c * c * g - conj)


class CoupledGramDatafit(CoupledDatafit):
    """:class:`CoupledDatafit` of sufficient statistics: the state is ``Q W +
    W K`` (both terms are quadratic, the gradient is the state minus ``C``),
    so FISTA's compiled steps take the coupling as one more matrix
    (``coupling_matrix``)."""

    def affine_state(self, W, b=None):
        return self.inner.affine_state(W) + self.coupling.gradient(W)

    def _inner_state(self, S, W):
        return S - self.coupling.gradient(W)

    def gradient_at_state(self, S):
        return self.inner.gradient_at_state(S)

    def curvature(self, S_new, S, aux, dW):
        return self.inner.curvature(S_new, S, aux, dW)

    def kernel_statistics(self):
        return self.inner.kernel_statistics()

    @property
    def coupling_matrix(self):
        """``K``: a dense array, or a CSR matrix (FISTA's compiled steps
        then take its arrays)."""
        return self.coupling.K
