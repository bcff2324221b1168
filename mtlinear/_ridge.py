"""Direct solve of ridge: the squared loss with a penalty that is the ridge
term alone, ``h(W) = mu/2 sum_j f_j ||W_j||^2`` (``l2``, or any penalty at
``l1_ratio = 0``; ``f``: the penalty factors).

On the sufficient statistics the objective of task ``t`` is ``w^T (omega_t
Q_t) w / 2 - C_t^T w + mu/2 w^T D w`` with ``D = diag(f)``, so ``(omega_t Q_t
+ mu D) w_t = C_t``.  With ``w = D^{-1/2} z`` and the eigendecomposition
``D^{-1/2} Q_t D^{-1/2} = V Lambda V^T``::

    w_t = D^{-1/2} V (omega_t Lambda + mu)^{-1} V^T D^{-1/2} C_t

One eigendecomposition per distinct ``Q_t`` (one for a shared design)
serves every ``alpha`` of a path.  A single solve factors each ``omega_t
Q_t + mu D`` by Cholesky instead (:func:`single_ridge_solution`), about six
times cheaper than the eigendecomposition at d = 2000, and with one ``Q_t``
per task it can make them one at a time, when together they would not fit
in memory.  An iterative solver stops on a duality gap, which bounds the
objective to about machine precision but the
coefficients only to its square root over ``mu``; the direct solve is
accurate to the conditioning of ``Q + mu D / omega_t`` (scikit-learn's
``Ridge`` solves the same normal equations by Cholesky).

A smooth task coupling ``tr(W K W^T) / 2`` (:mod:`mtlinear._coupling`: task
graphs, a task covariance) keeps the problem quadratic: the normal
equations become ``(omega_t Q_t + mu D) w_t + sum_s K_ts w_s = C_t``
(:func:`coupled_ridge_solution`).  With one ``Q`` and unit factors they
split in its eigenbasis into one ``T x T`` system per eigenvalue ``l_i``,
``(diag(omega l_i + mu) + K) y_i = V^T C`` row ``i`` (a dense ``K``: through
its eigendecomposition when the task weights are equal; a sparse ``K``, a
task graph given by its edges: one sparse LU factorization per ``l_i``, no
``T x T`` array); with one ``Q_t`` per task, conjugate gradients
preconditioned by the tasks' own blocks solve them to rounding (a sparse
``K`` costs ``d nnz(K)`` per product).
"""
import numpy as np
import scipy.linalg
import scipy.sparse as sp
import scipy.sparse.linalg

from ._coupling import csr_arrays, sparse_right_product
from ._task_blocks import task_blocks, task_columns

__all__ = ["RidgeSpectrum", "single_ridge_solution", "coupled_ridge_solution"]

# the largest side d T of the dense system of a coupled ridge (72 MB)
_DENSE_COUPLED_MAX = 3000
_COUPLED_FLOPS_MAX = 3e10  # d T^3: per-eigenvalue T x T solves, beyond: FISTA
_CHUNK_FLOATS = 4_000_000  # T x T systems solved at once (32 MB)
_CG_MAX_ITER = 2000  # conjugate-gradient iterations of a coupled ridge
_CG_PATIENCE = 20    # iterations without a smaller residual: rounding reached
_CG_REFRESH = 25     # iterations between true residuals


class RidgeSpectrum:
    """Eigendecompositions of ``D^{-1/2} Q_g D^{-1/2}`` for the (1 or T)
    Gram matrices ``Q_g`` of :meth:`GramDatafit.kernel_statistics`.

    With ``K > 1`` each ``Q_t`` spans ``K`` columns of ``W`` (side ``d K``,
    the layout of :mod:`mtlinear._task_blocks`), one per task (Newton-ADMM's
    multinomial blocks)."""

    def __init__(self, Q, factors, K=1):
        self.K = K
        self.scale = 1.0 / np.sqrt(factors)
        # eigh copies its input: unit factors need no scaled copy of Q
        M = (Q if np.all(factors == 1.0) else
             Q * self.scale[None, :, None] * self.scale[None, None, :])
        evals, self.evecs = np.linalg.eigh(M)
        # Q is positive semi-definite: negative eigenvalues are rounding
        self.evals = np.maximum(evals, 0.0)

    def solve(self, omega, C, mu):
        """``W`` (d, T K) solving ``(omega_t Q_t + mu D) w_t = C_t``."""
        if self.evecs.shape[0] == 1 and self.K == 1:
            # one Q for every column: BLAS-3 products
            V, lam = self.evecs[0], self.evals[0]
            B = self.scale[:, None] * C
            Z = V @ ((V.T @ B) / (lam[:, None] * omega[None, :] + mu))
            return self.scale[:, None] * Z
        # one Q_t per task: batched matrix-vector products
        B = task_blocks(C, self.K) * self.scale
        proj = np.matmul(B[:, None, :], self.evecs)[:, 0, :]  # V_t^T b_t
        proj /= self.evals * omega[:, None] + mu
        Z = np.matmul(self.evecs, proj[:, :, None])[:, :, 0]
        return task_columns(Z * self.scale, self.K)


def single_ridge_solution(grams, omega, C, mu, factors):
    """``W`` (d, T) solving ``(omega_t Q_t + mu D) w_t = C_t`` once, by one
    Cholesky factorization per system.

    ``grams`` holds the Gram matrices ``Q_g`` (d, d): an array (1, d, d)
    shared by every task, or one per task, as an array (T, d, d) or an
    iterable making them one at a time (then only one is in memory).
    Returns ``None`` for a shared ``Q`` with unequal task weights: one
    eigendecomposition (:class:`RidgeSpectrum`) serves them all.
    """
    if isinstance(grams, np.ndarray) and grams.shape[0] == 1:
        if np.ptp(omega) != 0.0:
            return None
        return _solve_system(grams[0], omega[0], C, mu, factors)
    W = np.empty(C.shape)
    for t, Q_t in enumerate(grams):
        W[:, t:t + 1] = _solve_system(Q_t, omega[t], C[:, t:t + 1], mu, factors)
    return W


def _solve_system(Q, weight, B, mu, factors):
    """``X`` solving ``(weight Q + mu diag(factors)) X = B`` (``Q`` positive
    semi-definite, not modified; ``mu > 0``)."""
    A = weight * Q
    features = np.arange(A.shape[0])
    A[features, features] += mu * factors
    try:
        # A is symmetric: its C order is the Fortran order LAPACK takes
        factor = scipy.linalg.cho_factor(A.T, lower=True, overwrite_a=True,
                                         check_finite=False)
        return scipy.linalg.cho_solve(factor, B, check_finite=False)
    except np.linalg.LinAlgError:
        # a non-positive pivot: mu at rounding level against Q; the
        # eigendecomposition clips Q's negative eigenvalues (rounding)
        spectrum = RidgeSpectrum((weight * Q)[None], factors)
        return spectrum.solve(np.ones(B.shape[1]), B, mu)


def coupled_ridge_solution(Q, omega, C, mu, factors, K, spectrum=None):
    """``W`` (d, T) solving ``(omega_t Q_t + mu D) w_t + sum_s K_ts w_s =
    C_t`` (module docstring), or ``None`` when these statistics are too
    large for a direct route.  ``Q`` (1 or T, d, d) as in
    :class:`RidgeSpectrum`, whose instance for unit factors ``spectrum``
    serves a shared ``Q``.

    One ``Q`` with unit factors: in its eigenbasis (:func:`_shared_spectral`).
    One ``Q`` with factors: the dense system of side ``d T`` (up to 3000).  One
    ``Q_t`` per task: conjugate gradients preconditioned by the diagonal
    blocks ``omega_t Q_t + mu D + K_tt I`` (exact for uncoupled tasks), run
    until the residual stops falling.
    """
    d, T = C.shape
    if Q.shape[0] == 1 and spectrum is not None and np.all(factors == 1.0):
        if sp.issparse(K):
            return _shared_sparse(spectrum, omega, C, mu, K)
        return _shared_spectral(spectrum, omega, C, mu, K)
    if Q.shape[0] == T and T > 1:
        return _block_preconditioned_cg(Q, C, mu, factors, K)
    if d * T > _DENSE_COUPLED_MAX:
        return None
    if sp.issparse(K):  # small here (d T <= _DENSE_COUPLED_MAX)
        K = K.toarray()
    A = np.kron(K, np.eye(d))  # entry (t d + j, s d + k)
    for t in range(T):
        block = slice(t * d, (t + 1) * d)
        A[block, block] += omega[t] * Q[0]
        A[block, block][np.diag_indices(d)] += mu * factors
    rhs = C.T.ravel()
    try:
        solution = scipy.linalg.solve(A, rhs, assume_a="pos")
    except np.linalg.LinAlgError:  # positive definite only to rounding
        solution = scipy.linalg.solve(A, rhs, assume_a="sym")
    return solution.reshape(T, d).T


def _shared_spectral(spectrum, omega, C, mu, K):
    """:func:`coupled_ridge_solution` for one ``Q = V diag(l) V^T`` and unit
    factors.  Equal task weights: with ``K = U diag(k) U^T`` too, ``W = V
    [(V^T C U)_ik / (omega l_i + mu + k_k)] U^T`` (memory ``d T``);
    otherwise one ``T x T`` system per ``l_i``, in chunks, or ``None`` past
    ``_COUPLED_FLOPS_MAX``."""
    V, lam = spectrum.evecs[0], spectrum.evals[0]
    d, T = C.shape
    B = V.T @ C
    if np.all(omega == omega[0]):
        kappa, U = np.linalg.eigh(K)
        kappa = np.maximum(kappa, 0.0)  # K is semi-definite: rounding
        return V @ ((B @ U) / (omega[0] * lam[:, None] + mu + kappa[None, :])
                    @ U.T)
    if d * T ** 3 > _COUPLED_FLOPS_MAX:
        return None
    Y = np.empty_like(B)
    diagonal = np.arange(T)
    chunk = max(1, _CHUNK_FLOATS // (T * T))
    for lo in range(0, d, chunk):
        part = slice(lo, min(d, lo + chunk))
        A = np.repeat(K[None], part.stop - lo, axis=0)
        A[:, diagonal, diagonal] += lam[part, None] * omega[None, :] + mu
        Y[part] = np.linalg.solve(A, B[part, :, None])[:, :, 0]
    return V @ Y


def _shared_sparse(spectrum, omega, C, mu, K):
    """:func:`_shared_spectral` for a sparse ``K``: the same systems
    ``(diag(omega l_i + mu) + K) y_i = (V^T C)_i``, one per eigenvalue
    ``l_i`` of ``Q``, each solved by a sparse LU factorization (``d``
    factorizations of a matrix with the pattern of ``K``: for a chain, banded,
    ``O(T)`` each) instead of the eigendecomposition of ``K`` (``T^3``, and a
    dense ``T x T`` basis)."""
    V, lam = spectrum.evecs[0], spectrum.evals[0]
    B = V.T @ C
    Y = np.empty_like(B)
    K = sp.csc_array(K)
    for i in range(B.shape[0]):
        shift = sp.diags_array(omega * lam[i] + mu, format="csc")
        Y[i] = scipy.sparse.linalg.splu(K + shift).solve(B[i])
    return V @ Y


def _block_preconditioned_cg(Q, C, mu, factors, K):
    """:func:`coupled_ridge_solution` for one ``Q_t`` per task (``omega``
    folded into them)."""
    d, T = C.shape
    ridge = mu * factors[:, None]

    if sp.issparse(K):  # W K over the nonzeros (mtlinear._coupling)
        csr = csr_arrays(K)

        def coupled(W):
            return sparse_right_product(np.ascontiguousarray(W), *csr)
    else:
        def coupled(W):
            return W @ K

    def apply(W):
        return np.matmul(Q, W.T[:, :, None])[:, :, 0].T + ridge * W + coupled(W)

    blocks = Q.copy()
    diagonal = np.arange(d)
    blocks[:, diagonal, diagonal] += (ridge[:, 0][None, :]
                                      + K.diagonal()[:, None])
    inverse = np.linalg.inv(blocks)

    def precondition(R):
        return np.matmul(inverse, R.T[:, :, None])[:, :, 0].T

    W = np.zeros((d, T))
    R = C.copy()
    best, best_W = np.linalg.norm(R), W.copy()
    Z = precondition(R)
    P, rz = Z.copy(), float(np.vdot(R, Z))
    since_best = 0
    for it in range(1, _CG_MAX_ITER + 1):
        if rz <= 0.0 or since_best >= _CG_PATIENCE:
            break
        AP = apply(P)
        step = rz / float(np.vdot(P, AP))
        W += step * P
        # the recursive residual drifts from the true one: refresh it
        R = C - apply(W) if it % _CG_REFRESH == 0 else R - step * AP
        norm = np.linalg.norm(R)
        if norm < best:
            best, best_W, since_best = norm, W.copy(), 0
        else:
            since_best += 1
        Z = precondition(R)
        rz, rz_old = float(np.vdot(R, Z)), rz
        P = Z + (rz / rz_old) * P
    return best_W
