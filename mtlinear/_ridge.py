"""Direct solve of ridge: the squared loss with a penalty that is the ridge
term alone, ``h(W) = mu/2 sum_j f_j ||W_j||^2`` (``l2``, or any penalty at
``l1_ratio = 0``; ``f``: the penalty factors).

On the sufficient statistics the objective of task ``t`` is ``w^T (omega_t
Q_t) w / 2 - C_t^T w + mu/2 w^T D w`` with ``D = diag(f)``, so ``(omega_t Q_t
+ mu D) w_t = C_t``.  With ``w = D^{-1/2} z`` and the eigendecomposition
``D^{-1/2} Q_t D^{-1/2} = V Lambda V^T``::

    w_t = D^{-1/2} V (omega_t Lambda + mu)^{-1} V^T D^{-1/2} C_t

One eigendecomposition per distinct ``Q_t`` (one for a shared design)
serves every ``alpha`` of a path.  An iterative solver stops on a duality
gap, which bounds the objective to about machine precision but the
coefficients only to its square root over ``mu``; the direct solve is
accurate to the conditioning of ``Q + mu D / omega_t`` (scikit-learn's
``Ridge`` solves the same normal equations by Cholesky).

A smooth task coupling ``tr(W K W^T) / 2`` (:mod:`mtlinear._coupling`: task
graphs, a task covariance) keeps the problem quadratic: the normal
equations become ``(omega_t Q_t + mu D) w_t + sum_s K_ts w_s = C_t``
(:func:`coupled_ridge_solution`).  With one ``Q`` and unit factors they
split in its eigenbasis into one ``T x T`` system per eigenvalue ``l_i``,
``(diag(omega l_i + mu) + K) y_i = V^T C`` row ``i``; otherwise they are
one dense system of side ``d T``.
"""
import numpy as np
import scipy.linalg

from ._task_blocks import task_blocks, task_columns

__all__ = ["RidgeSpectrum", "coupled_ridge_solvable", "coupled_ridge_solution"]

# the largest side d T of the dense system of a coupled ridge (72 MB)
_DENSE_COUPLED_MAX = 3000


class RidgeSpectrum:
    """Eigendecompositions of ``D^{-1/2} Q_g D^{-1/2}`` for the (1 or T)
    Gram matrices ``Q_g`` of :meth:`GramDatafit.kernel_statistics`.

    With ``K > 1`` each ``Q_t`` spans ``K`` columns of ``W`` (side ``d K``,
    the layout of :mod:`mtlinear._task_blocks`), one per task (Newton-ADMM's
    multinomial blocks)."""

    def __init__(self, Q, factors, K=1):
        self.K = K
        self.scale = 1.0 / np.sqrt(factors)
        M = Q * self.scale[None, :, None] * self.scale[None, None, :]
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


def coupled_ridge_solvable(Q, factors, n_tasks):
    """Whether :func:`coupled_ridge_solution` takes these statistics: one
    ``Q`` with unit factors, or a dense system of side at most 3000."""
    return ((Q.shape[0] == 1 and bool(np.all(factors == 1.0)))
            or Q.shape[-1] * n_tasks <= _DENSE_COUPLED_MAX)


def coupled_ridge_solution(Q, omega, C, mu, factors, K, spectrum=None):
    """``W`` (d, T) solving ``(omega_t Q_t + mu D) w_t + sum_s K_ts w_s =
    C_t`` (module docstring); ``Q`` (1 or T, d, d) as in
    :class:`RidgeSpectrum`, whose instance for unit factors ``spectrum``
    serves the shared case."""
    d, T = C.shape
    if Q.shape[0] == 1 and spectrum is not None and np.all(factors == 1.0):
        V, lam = spectrum.evecs[0], spectrum.evals[0]
        A = np.repeat(K[None], d, axis=0)
        diagonal = np.arange(T)
        A[:, diagonal, diagonal] += lam[:, None] * omega[None, :] + mu
        Y = np.linalg.solve(A, (V.T @ C)[:, :, None])[:, :, 0]
        return V @ Y
    A = np.kron(K, np.eye(d))  # entry (t d + j, s d + k)
    for t in range(T):
        block = slice(t * d, (t + 1) * d)
        A[block, block] += omega[t] * Q[0 if Q.shape[0] == 1 else t]
        A[block, block][np.diag_indices(d)] += mu * factors
    rhs = C.T.ravel()
    try:
        solution = scipy.linalg.solve(A, rhs, assume_a="pos")
    except np.linalg.LinAlgError:  # positive definite only to rounding
        solution = scipy.linalg.solve(A, rhs, assume_a="sym")
    return solution.reshape(T, d).T
