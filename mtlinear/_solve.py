"""One entry point for the solvers: choose the data-fit and the algorithm.

``tol`` is relative: a solve stops when the duality gap is at most
``tol * P(0)``, where ``P(0)`` is the objective at ``W = 0`` with the best
intercepts (for the squared loss with ``fit_intercept``, half the weighted
variance of the targets).  This is scikit-learn's coordinate-descent rule up
to a factor 2 (it compares the gap with ``tol * ||Y||^2 / n``).
"""
from dataclasses import dataclass

import numpy as np

from ._datafit import GramDatafit, SampleDatafit
from ._fista import fista

__all__ = ["solve", "SolveResult", "make_datafit"]

# sufficient statistics are used while they take at most this many floats
_GRAM_MAX_FLOATS = 2 ** 25  # 256 MiB


@dataclass
class SolveResult:
    W: np.ndarray          # (d, T)
    b: np.ndarray          # solver intercept variable (T,) or None
    gap: float             # absolute duality gap at W
    tol_abs: float         # the gap target
    n_iter: int

    @property
    def converged(self):
        return self.gap <= self.tol_abs


def _gram_pays_off(problem):
    """Sufficient statistics when rows outnumber features and they fit."""
    design = problem.design
    d = design.n_features
    if design.shared:
        return design.n_samples >= d and d * d <= _GRAM_MAX_FLOATS
    mean_rows = design.n_samples / design.n_tasks
    return mean_rows >= d and design.n_tasks * d * d <= _GRAM_MAX_FLOATS


def make_datafit(problem, loss, use_gram="auto"):
    """The data-fit object for ``problem`` (Gram statistics when they pay off)."""
    if use_gram == "auto":
        use_gram = (loss.name == "squared" and not problem.intercept_variable
                    and _gram_pays_off(problem))
    if use_gram:
        return GramDatafit(problem)
    return SampleDatafit(loss, problem)


def solve(problem, loss, penalty, W0=None, b0=None, max_iter=1000, tol=1e-4,
          solver="auto", verbose=0):
    """Minimize the multi-task objective of ``problem`` with ``penalty``.

    Parameters
    ----------
    problem : TaskProblem
    loss : SquaredLoss or LogisticLoss
    penalty : Penalty
    W0 : ndarray of shape (d, T), optional
        Warm start (not modified).
    b0 : ndarray of shape (T,), optional
        Warm start of the intercept variable (when the problem has one).
    max_iter : int
    tol : float
        Relative duality-gap tolerance (see the module docstring).
    solver : {"auto", "fista"}
    verbose : int

    Returns
    -------
    SolveResult
    """
    d, T = problem.n_features, problem.n_tasks
    datafit = make_datafit(problem, loss)
    W0 = np.zeros((d, T)) if W0 is None else W0
    if problem.intercept_variable and b0 is None:
        b0 = datafit.initial_intercept()
    tol_abs = tol * max(datafit.null_value(), np.finfo(float).tiny)

    callback = None
    if verbose:
        def callback(n_iter, primal, gap):
            print(f"[mtlinear] iter {n_iter:6d}  objective {primal:.8g}  "
                  f"gap {gap:.3e}  (target {tol_abs:.3e})")
    W, b, gap, n_iter = fista(datafit, penalty, W0, b0, max_iter, tol_abs,
                              callback=callback)
    return SolveResult(W=W, b=b, gap=float(gap), tol_abs=tol_abs, n_iter=n_iter)
