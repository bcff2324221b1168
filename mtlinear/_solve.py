"""One entry point for the solvers: choose the data-fit and the algorithm.

``solver="auto"`` takes block coordinate descent (:mod:`mtlinear._bcd`) for
the squared loss with a row-separable penalty (l1, l21 and their ridge mixes),
working-set proximal Newton (:mod:`mtlinear._prox_newton`) for the logistic
loss with l1, l21 or l2, and accelerated proximal gradient
(:mod:`mtlinear._fista`) otherwise (trace norm, squared l2); when coordinate
descent chosen by ``"auto"`` exhausts ``max_iter`` epochs unconverged, FISTA
continues from its iterate for up to ``max_iter`` iterations.  For the squared
loss, both work on the per-task sufficient statistics when rows outnumber
features and they fit in memory.

``tol`` is relative: a solve stops when the duality gap is at most
``tol * P(0)``, where ``P(0)`` is the objective at ``W = 0`` with the best
intercepts (for the squared loss with ``fit_intercept``, half the weighted
variance of the targets).  This is scikit-learn's coordinate-descent rule up
to a factor 2 (it compares the gap with ``tol * ||Y||^2 / n``).
"""
from dataclasses import dataclass

import numpy as np

from ._bcd import bcd, make_bcd_state
from ._datafit import GramDatafit, SampleDatafit
from ._fista import fista
from ._prox_newton import DesignColumns, prox_newton, applies as _newton_applies
from ._threads import blas_threads_for_work

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


def _gram_fits(problem):
    design = problem.design
    n_matrices = 1 if design.shared else design.n_tasks
    return n_matrices * design.n_features ** 2 <= _GRAM_MAX_FLOATS


def _gram_pays_off(problem):
    """Sufficient statistics when rows outnumber features and they fit."""
    design = problem.design
    rows_per_task = design.n_samples / (1 if design.shared else design.n_tasks)
    return rows_per_task >= design.n_features and _gram_fits(problem)


def _row_space_pays_off(problem, loss, penalty):
    """Shared design, fewer samples than features, an invariant penalty.

    The reduction costs one ``n x n`` Gram matrix and its eigendecomposition,
    which the full-space solve would pay anyway for its step size when
    ``n <= 2000``; every iteration then avoids two products with ``X``.
    """
    design = problem.design
    return (design.shared and penalty.orthogonally_invariant
            and loss.name == "squared" and not problem.intercept_variable
            and design.n_samples < design.n_features
            and design.n_samples * design.n_features <= _GRAM_MAX_FLOATS)


def choose_solver(problem, loss, penalty, solver="auto"):
    """``"bcd"`` or ``"fista"`` for this problem (see the module docstring)."""
    # coordinate descent runs the compiled l1 / l21 row updates
    bcd_applies = (loss.name == "squared" and penalty.row_separable
                   and penalty.kernel is not None
                   and not problem.intercept_variable)
    if solver == "bcd":
        if not bcd_applies:
            raise ValueError(
                f"solver='bcd' handles the squared loss with a row-separable "
                f"penalty ('l1', 'l21'); got loss={loss.name!r}, "
                f"penalty={penalty.name!r}. Use solver='fista' or 'auto'.")
        return "bcd"
    if solver == "auto" and loss.name == "logistic" and _newton_applies(penalty):
        return "prox_newton"
    return "bcd" if solver == "auto" and bcd_applies else "fista"


def make_datafit(problem, loss):
    """The data-fit object for ``problem`` (Gram statistics when they pay off)."""
    if (loss.name == "squared" and not problem.intercept_variable
            and _gram_pays_off(problem)):
        return GramDatafit.from_problem(problem)
    return SampleDatafit(loss, problem)


def solve(problem, loss, penalty, W0=None, b0=None, max_iter=1000, tol=1e-4,
          solver="auto", verbose=0, fallback=None):
    """Minimize the multi-task objective of ``problem`` with ``penalty``.

    BLAS runs on one thread when an iteration's products are small (see
    :mod:`mtlinear._threads`).

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
    solver : {"auto", "fista", "bcd"}
    verbose : int
    fallback : tuple (W, b), optional
        A second start (the previous solution of a path, when ``W0`` is a
        prediction): the solve starts from the one with the lower objective.
        ``None`` or ``(None, None)``: none.

    Returns
    -------
    SolveResult
    """
    design = problem.design
    work = design.n_samples * design.n_features * (
        design.n_tasks if design.shared else 1)
    with blas_threads_for_work(work):
        return _solve(problem, loss, penalty, W0, b0, max_iter, tol, solver,
                      verbose, fallback)


def _cached(problem, key, build):
    """``problem.cache[key]``, made by ``build()`` on first use: a path or a
    cross-validation solves one problem many times."""
    if key not in problem.cache:
        problem.cache[key] = build()
    return problem.cache[key]


def _row_space_datafit(problem):
    """``(basis, datafit)`` of the reduction to the row space of ``X``."""
    basis, statistics = problem.design.row_space_statistics(problem.y, problem.v)
    reduced = GramDatafit(*statistics)
    reduced.lipschitz = basis.lipschitz_factor * float(reduced.omega.max())
    return basis, reduced


def _progress_printer(solver, tol_abs):
    """The ``verbose`` callback: one line per gap evaluation."""
    def callback(n_iter, primal, gap):
        print(f"[mtlinear] {solver} iter {n_iter:6d}  objective {primal:.8g}  "
              f"gap {gap:.3e}  (target {tol_abs:.3e})")
    return callback


def _solve(problem, loss, penalty, W0, b0, max_iter, tol, solver, verbose,
           fallback):
    d, T = problem.n_features, problem.n_tasks
    requested, solver = solver, choose_solver(problem, loss, penalty, solver)
    W0 = np.zeros((d, T)) if W0 is None else W0
    basis = None

    def full_datafit():  # on all of X (also to certify or continue a solve)
        return _cached(problem, "datafit", lambda: make_datafit(problem, loss))

    if solver == "bcd":
        model = _cached(problem, "bcd", lambda: make_bcd_state(
            problem, _gram_pays_off(problem)))
    elif _row_space_pays_off(problem, loss, penalty):
        basis, model = _cached(problem, "row_space",
                               lambda: _row_space_datafit(problem))
    else:
        model = full_datafit()
        if problem.intercept_variable and b0 is None:
            b0 = model.initial_intercept()
    tol_abs = tol * max(model.null_value(), np.finfo(float).tiny)
    if fallback is None or fallback[0] is None:
        fallback = None
    elif solver != "bcd":  # bcd compares the two on its own residuals
        to_model = (lambda W: W) if basis is None else basis.project
        starts = [(to_model(W), b) for W, b in ((W0, b0), fallback)]
        values = [model.value(W, b) + penalty.value(W) for W, b in starts]
        W0, b0 = (W0, b0) if values[0] <= values[1] else fallback

    callback = _progress_printer(solver, tol_abs) if verbose else None
    if solver == "bcd":
        W, gap, n_iter = bcd(model, penalty, W0, max_iter, tol_abs,
                             callback=callback,
                             fallback=None if fallback is None else fallback[0])
        b = None
        if gap > tol_abs and requested == "auto":
            # coordinate descent can crawl where FISTA does not (a tiny,
            # underdetermined, correlated task at a small alpha: 5080 epochs
            # against 830 iterations); FISTA continues from its iterate
            W, b, gap, more = fista(full_datafit(), penalty, W, None, max_iter,
                                    tol_abs, callback=callback)
            n_iter += more
    elif basis is not None:  # solve for Z in W = V Z (row space of X)
        Z, b, gap, n_iter = fista(model, penalty, basis.project(W0), b0,
                                  max_iter, tol_abs, callback=callback)
        W = basis.lift(Z)
        # certify on the full problem (the basis drops near-null directions)
        full = full_datafit()
        _, gap = full.duality_gap(W, None, penalty)
        if gap > tol_abs and n_iter < max_iter:
            W, b, gap, more = fista(full, penalty, W, None, max_iter - n_iter,
                                    tol_abs, callback=callback)
            n_iter += more
    elif solver == "prox_newton":
        columns = _cached(problem, "columns",
                          lambda: DesignColumns(problem.design))
        W, b, gap, n_iter = prox_newton(model, penalty, W0, b0, max_iter, tol_abs,
                                        columns, callback=callback)
    else:
        W, b, gap, n_iter = fista(model, penalty, W0, b0, max_iter, tol_abs,
                                  callback=callback)
    return SolveResult(W=W, b=b, gap=float(gap), tol_abs=tol_abs, n_iter=n_iter)
