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
"""
import numpy as np

from ._task_blocks import task_blocks, task_columns

__all__ = ["RidgeSpectrum"]


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
