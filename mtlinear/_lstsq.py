"""Direct solve of the unpenalized squared loss (``alpha = 0``): least squares.

With ``alpha = 0`` the objective is ``sum_t r_t^T V_t r_t / 2`` and its
minimizer is each task's weighted least-squares fit, which LAPACK computes
from the weighted, centred design (``gelsd``: minimum-norm when the design
is rank deficient) without forming ``X^T X`` (whose condition number is the
square of the design's).  An iterative solver would stop on a gap that
cannot certify anything here: the penalty's conjugate is the indicator of
``X^T Theta = 0``.

The certificate: at the computed ``w``, ``U = X^T V r`` is zero but for
rounding, and with the dual point ``Theta = V r`` the gap is exactly
``|<U, W>|`` (``P - D = r^T V X w``), which is reported.
"""
import numpy as np

__all__ = ["least_squares"]


def _task_blocks(design, y, v):
    """Per task: ``(rows, sqrt weights, centred X rows, y rows)``."""
    X = design.X
    if design.shared:
        Xc = X if design.x_mean is None else X - design.x_mean
        for t in range(design.n_tasks):
            yield slice(None), np.sqrt(v[:, t]), Xc, y[:, t]
        return
    for t in range(design.n_tasks):
        rows = slice(design.task_ptr[t], design.task_ptr[t + 1])
        Xt = X[rows]
        if design.x_mean is not None:
            Xt = Xt - design.x_mean[t]
        yield rows, np.sqrt(v[rows]), Xt, y[rows]


def least_squares(problem):
    """``(W, gap)``: the weighted least-squares solution of every task and
    the duality gap at it (dense design, no intercept variable)."""
    design = problem.design
    W = np.zeros((design.n_features, design.n_tasks))
    gap = 0.0
    for t, (_, root, Xt, yt) in enumerate(_task_blocks(design, problem.y,
                                                       problem.v)):
        A = Xt * root[:, None]
        b = yt * root
        W[:, t] = np.linalg.lstsq(A, b, rcond=None)[0]
        residual = b - A @ W[:, t]
        gap += abs(float((A.T @ residual) @ W[:, t]))
    return W, gap
