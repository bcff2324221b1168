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

With ``positive=True`` each task is a non-negative least-squares problem,
solved exactly by SciPy's active-set ``nnls`` (as scikit-learn's
``LinearRegression(positive=True)``).  The gap is the same expression:
``U_j`` is zero on the positive coefficients and the dual point is feasible
(``U <= 0``) on the zero ones.
"""
import numpy as np
import scipy.optimize

__all__ = ["least_squares"]


def _task_blocks(design, y, v):
    """Per task: ``(sqrt weights, uncentred X rows, centred X rows, y
    rows)``."""
    X = design.X
    if design.shared:
        Xc = X if design.x_mean is None else X - design.x_mean
        for t in range(design.n_tasks):
            yield np.sqrt(v[:, t]), X, Xc, y[:, t]
        return
    for t in range(design.n_tasks):
        rows = slice(design.task_ptr[t], design.task_ptr[t + 1])
        Xt = X[rows]
        yield (np.sqrt(v[rows]), Xt,
               Xt if design.x_mean is None else Xt - design.x_mean[t], y[rows])


def _lstsq(A, b, scale):
    """Minimum-norm least squares, the singular values of ``A`` at the
    rounding level of a matrix of norm ``scale`` counting as zero.

    ``A`` is centred: a column constant within the task (a school-level
    feature of School) centres to rounding of its own size, ``eps |x|``,
    not of ``A``'s.  LAPACK's cut, ``eps max(n, d)`` times ``A``'s largest
    singular value, kept such columns and returned weights of 5e11.
    """
    x, _, _, s = np.linalg.lstsq(A, b, rcond=None)
    floor = np.finfo(float).eps * max(A.shape) * scale
    if s.size and s[0] > 0 and np.any((s > 0) & (s <= floor)):
        x = np.linalg.lstsq(A, b, rcond=floor / s[0])[0]
    return x


def _nnls(A, b):
    """Non-negative least squares; the bounded solver if the active set
    does not settle within SciPy's iteration limit."""
    try:
        return scipy.optimize.nnls(A, b)[0]
    except RuntimeError:
        return scipy.optimize.lsq_linear(A, b, bounds=(0.0, np.inf),
                                         method="bvls").x


def least_squares(problem, positive=False):
    """``(W, gap)``: the weighted least-squares solution of every task
    (non-negative with ``positive``) and the duality gap at it (dense
    design, no intercept variable)."""
    design = problem.design
    W = np.zeros((design.n_features, design.n_tasks))
    gap = 0.0
    for t, (root, X_raw, Xt, yt) in enumerate(_task_blocks(
            design, problem.y, problem.v)):
        A = Xt * root[:, None]
        b = yt * root
        W[:, t] = (_nnls(A, b) if positive else
                   _lstsq(A, b, np.linalg.norm(X_raw * root[:, None])))
        residual = b - A @ W[:, t]
        gap += abs(float((A.T @ residual) @ W[:, t]))
    return W, gap
