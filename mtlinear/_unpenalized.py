"""Unpenalized features (``penalty_factor`` 0) for the squared loss, by
partialling them out (Frisch-Waugh-Lovell).

With ``Z_t = [1, X_U]`` (the intercept's column and the unpenalized features)
on task ``t``'s rows and the weights ``S_t`` (sample weights), the objective
is quadratic in ``(b_t, w_{U,t})``; its minimizer for fixed penalized weights
``w_{P,t}`` is ``G_t - B_t w_{P,t}`` with

.. math::

    B_t = (Z_t^T S_t Z_t)^+ Z_t^T S_t X_{P,t}, \\qquad
    G_t = (Z_t^T S_t Z_t)^+ Z_t^T S_t y_t,

and the objective at that minimizer is the objective of the **reduced**
problem on the residualized data ``X_P - Z_t B_t``, ``y_t - Z_t G_t``
(without intercept: the residuals are centred).  The solvers see only the
reduced problem with the penalized features; its duality gap certifies the
full solution, which :meth:`Reduction.full_solution` recovers exactly.  In
the shared layout the weights are the same for every task up to the task
weight, so one ``B`` serves all tasks.

The residualized design is dense (a sparse ``X`` is densified).
"""
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ._design import task_rows

__all__ = ["Reduction", "partial_out"]


@dataclass
class Reduction:
    """How the reduced problem's solution maps back to all features.

    ``kept``: the penalized features (the reduced problem's), ``unpenalized``
    the others; ``B`` (T, k, d_P) and ``G`` (T, k) per task, ``k`` the basis
    size (the intercept first when fitted).
    """

    kept: np.ndarray
    unpenalized: np.ndarray
    n_features: int
    B: np.ndarray
    G: np.ndarray
    fit_intercept: bool

    def full_solution(self, W):
        """``(W_full (d, T), intercepts (T,))`` from the reduced ``W``."""
        T = W.shape[1]
        coefs = self.G - np.einsum("tkj,jt->tk", self.B, W)  # (T, k)
        W_full = np.zeros((self.n_features, T))
        W_full[self.kept] = W
        first = 1 if self.fit_intercept else 0
        W_full[self.unpenalized] = coefs[:, first:].T
        intercepts = coefs[:, 0] if self.fit_intercept else np.zeros(T)
        return W_full, intercepts


def _basis(X_U, fit_intercept):
    if fit_intercept:
        return np.column_stack([np.ones(X_U.shape[0]), X_U])
    return X_U


def _projection(Z, s, A):
    """``(Z^T S Z)^+ Z^T S A``: weighted least squares, minimum norm when
    the basis is collinear."""
    root = np.sqrt(s)[:, None]
    return np.linalg.lstsq(Z * root, A * root, rcond=None)[0]


def partial_out(X, Y, task_index, n_tasks, sample_weight, unpenalized,
                fit_intercept):
    """The reduced data ``(X_P', Y')`` and the :class:`Reduction`.

    ``X`` (n, d) dense or sparse; ``Y`` (n, T) shared or (n,) with
    ``task_index``; the inputs are not modified.
    """
    n, d = X.shape
    X = X.toarray() if sp.issparse(X) else np.asarray(X, dtype=np.float64)
    s = np.ones(n) if sample_weight is None else np.asarray(sample_weight, float)
    unpenalized = np.asarray(unpenalized, dtype=np.int64)
    kept = np.setdiff1d(np.arange(d), unpenalized)
    X_P = X[:, kept]
    Z = _basis(X[:, unpenalized], fit_intercept)
    if task_index is None:
        T = Y.shape[1]
        B = _projection(Z, s, X_P)
        G = _projection(Z, s, Y)  # (k, T)
        X_red = X_P - Z @ B
        Y_red = Y - Z @ G
        B_tasks = np.broadcast_to(B, (T,) + B.shape)
        G_tasks = G.T
    else:
        T = n_tasks
        X_red = np.empty_like(X_P)
        Y_red = np.empty(n)
        B_tasks = np.zeros((T, Z.shape[1], kept.size))
        G_tasks = np.zeros((T, Z.shape[1]))
        for t, rows in enumerate(task_rows(task_index, T)):
            Zt, st = Z[rows], s[rows]
            B_tasks[t] = _projection(Zt, st, X_P[rows])
            G_tasks[t] = _projection(Zt, st, Y[rows][:, None])[:, 0]
            X_red[rows] = X_P[rows] - Zt @ B_tasks[t]
            Y_red[rows] = Y[rows] - Zt @ G_tasks[t]
    reduction = Reduction(kept=kept, unpenalized=unpenalized, n_features=d,
                          B=np.ascontiguousarray(B_tasks), G=G_tasks,
                          fit_intercept=fit_intercept)
    return X_red, Y_red, reduction
