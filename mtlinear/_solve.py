"""One entry point for the solvers: a registry of solvers, each declaring
which problems it supports, and the choice among them.

Solvers (registered at the end of this module; a new one is its module plus
one :func:`register_solver` call):

* ``"bcd"`` (:mod:`mtlinear._bcd`): working-set block coordinate descent;
  a quadratic loss (squared) with a compiled row-separable penalty, and no
  intercept variable (the squared loss's intercepts are handled by
  centring).  Preferred for sparse penalties (l1, l21, sparse-group).
* ``"prox_newton"`` (:mod:`mtlinear._prox_newton`): working-set proximal
  Newton; a compiled row-separable penalty.  Preferred for
  twice-differentiable non-quadratic losses (logistic, Huber, Poisson).
* ``"fista"`` (:mod:`mtlinear._fista`): accelerated proximal gradient; any
  loss and any penalty, including a penalty written in Python only (its
  adaptive step needs no curvature bound, so the Poisson loss too).
* ``"lstsq"`` (:mod:`mtlinear._lstsq`): the direct least-squares solve of the
  squared loss at ``alpha = 0`` (dense design); preferred there.
* ``"ridge"`` (:mod:`mtlinear._ridge`): the direct solve of the squared loss
  with a penalty that is the ridge term alone (``l2``, ``l1_ratio = 0``)
  from the sufficient statistics (or the row space of a wide shared
  design); preferred there.  With a task coupling too, when the coupled
  normal equations fit (else it hands the problem to FISTA).
* ``"admm"`` (:mod:`mtlinear._admm`): ADMM on the squared loss's sufficient
  statistics, any penalty with a prox; exact steps whatever the features'
  scales.
* ``"newton_admm"`` (:mod:`mtlinear._newton_admm`): proximal Newton with
  ADMM steps on each task's Hessian block, for the other twice-differentiable
  losses.  ``"auto"`` takes these two only to finish an unconverged FISTA.

A smooth task-coupling term (:mod:`mtlinear._coupling`: task graphs,
learned task covariances) is added to the data fit; only the solvers declared
``coupling=True`` (FISTA, ADMM, the direct ridge) take it.

``solver="auto"`` takes the supporting solver of highest preference; an
explicit solver that does not support the problem is a ``ValueError`` that
says why.  When coordinate descent chosen by ``"auto"`` exhausts
``max_iter`` epochs unconverged, FISTA continues from its iterate for up to
``max_iter`` iterations, and when FISTA ends unconverged, ``"admm"`` or
``"newton_admm"`` does, if one applies (after 200 FISTA iterations where
their eigendecompositions are cheap).  For the squared loss, both work on the per-task
sufficient statistics when rows outnumber features and they fit in memory.

``tol`` is relative: a solve stops when the duality gap is at most
``tol * P(0)``, where ``P(0)`` is the objective at ``W = 0`` with the best
intercepts (for the squared loss with ``fit_intercept``, half the weighted
variance of the targets).  This is scikit-learn's coordinate-descent rule up
to a factor 2 (it compares the gap with ``tol * ||Y||^2 / n``).
"""
from dataclasses import dataclass
from typing import Callable

import numpy as np
import scipy.sparse as sp

from ._admm import admm
from ._bcd import bcd, make_bcd_state
from ._coupling import with_coupling
from ._datafit import GramDatafit, SampleDatafit
from ._fista import fista
from ._lstsq import least_squares
from ._numba_cache import announce_compilation
from ._newton_admm import newton_admm
from ._newton_cg import newton_cg
from ._prox_newton import (DesignColumns, means_swamp_spreads, prox_newton,
                           smooth_ridge)
from ._ridge import RidgeSpectrum, coupled_ridge_solution, single_ridge_solution
from ._threads import blas_threads_for_work

__all__ = ["solve", "SolveResult", "make_datafit", "Solver", "SOLVERS",
           "register_solver", "choose_solver"]

# sufficient statistics are used while they take at most this many floats
_GRAM_MAX_FLOATS = 2 ** 25  # 256 MiB
# a single ridge solve of a design whose statistics do not pay off tries
# Newton-CG for this many Newton steps before factoring (see
# _certified_newton_ridge; sparse text needs 2-4), and keeps its answer when
# its gap certifies the coefficients to this relative error (scikit-learn's
# Ridge at its defaults on sparse text: 3e-5 to 6e-4)
_NEWTON_RIDGE_STEPS = 5
_RIDGE_COEF_ERROR = 1e-5
# ... when the factorizations cost more than this many Hessian products: on
# dense designs (about 200 on a 4 x 300 x 800 problem) they are cheap and
# Newton-CG's gap rarely certifies in time; sparse text: 7,000
_NEWTON_RIDGE_PRODUCTS = 1000
# proximal Newton with ADMM steps eigendecomposes every task's d x d Hessian
# block at each Newton step: at most this many flops (d^3 per block and step)
_NEWTON_ADMM_MAX_FLOPS = 1e10
# below this many, "auto" gives FISTA _FISTA_BUDGET iterations before them
_CHEAP_FLOPS = 1e8
_FISTA_BUDGET = 200


@dataclass
class SolveResult:
    W: np.ndarray          # (d, T)
    b: np.ndarray          # solver intercept variable (T,) or None
    gap: float             # absolute duality gap at W
    tol_abs: float         # the gap target
    n_iter: int
    # max_iter ended coordinate descent with the gap met but its steps still
    # above scikit-learn's coefficient rule
    unsettled: bool = False

    @property
    def converged(self):
        return self.gap <= self.tol_abs and not self.unsettled

    def unconverged_reason(self, max_iter):
        """Why the solve did not converge and what to do (for a
        ``ConvergenceWarning``): it reached ``max_iter`` above its gap target
        or with its coefficients still moving, or its solver stopped before
        on making too little progress (steps at rounding level, Newton-ADMM's
        stall rule), which a larger ``max_iter`` does not change."""
        if self.unsettled:
            return (f"did not converge in max_iter={max_iter} iterations: the "
                    f"duality gap {self.gap:.3e} meets its target "
                    f"{self.tol_abs:.3e}, but coordinate steps still move "
                    "coefficients by more than tol times their largest, so "
                    "they may be far from the optimum (strongly correlated "
                    "features). Increase max_iter, or scale the features.")
        where = f"duality gap {self.gap:.3e} > target {self.tol_abs:.3e}"
        if self.n_iter >= max_iter:
            # solver="auto" hands an unconverged solve over to another
            # solver, each with max_iter iterations
            within = ("" if self.n_iter == max_iter else
                      f" of each solver ({self.n_iter} in all)")
            return (f"did not converge in max_iter={max_iter} iterations"
                    f"{within}: {where}. Increase max_iter, raise tol, or "
                    "scale the features.")
        return (f"stopped after {self.n_iter} iterations (max_iter={max_iter}) "
                f"on making too little progress: {where}. A larger max_iter "
                "would not change this; raise tol, or scale the features (for "
                "instance with sklearn.preprocessing.StandardScaler in a "
                "Pipeline).")


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
            and loss.quadratic and not problem.intercept_variable
            and design.n_samples < design.n_features
            and design.n_samples * design.n_features <= _GRAM_MAX_FLOATS)


@dataclass(frozen=True)
class Solver:
    """A registered solver.

    ``why_not(problem, loss, penalty)`` returns ``None`` when the solver
    supports the problem, else the reason (for the error message);
    ``preference(problem, loss, penalty)`` ranks the supporting solvers for
    ``solver="auto"``; ``run(problem, loss, penalty, start, max_iter, tol,
    callback, auto)`` returns a :class:`SolveResult`; a solver declared
    ``coupling=True`` also takes a task-coupling term as ``coupling=``.
    ``reads_rows(loss, penalty)``: whether it walks a sparse stacked
    design's rows (CSR) rather than only its columns or products, so that
    the fit keeps the copy of the features it reads (see :func:`reads_rows`).
    """

    name: str
    why_not: Callable
    preference: Callable
    run: Callable
    coupling: bool = False
    reads_rows: Callable = lambda loss, penalty: False


SOLVERS = {}


def register_solver(solver):
    """Add a :class:`Solver` to the registry (estimators accept its name)."""
    SOLVERS[solver.name] = solver
    return solver


def choose_solver(problem, loss, penalty, solver="auto", coupling=None):
    """The :class:`Solver` for this problem (see the module docstring)."""
    if coupling is not None and penalty.alpha == 0 and not coupling.invertible:
        raise ValueError(
            "A task graph needs alpha > 0: without a penalty its duality gap "
            "has no certificate. Give alpha a small positive value (with "
            "penalty='l2' for a graph-only model).")
    if solver != "auto":
        try:
            chosen = SOLVERS[solver]
        except KeyError:
            raise ValueError(f"solver must be 'auto' or one of {sorted(SOLVERS)}; "
                             f"got {solver!r}.") from None
        reason = chosen.why_not(problem, loss, penalty)
        if reason is None and coupling is not None and not chosen.coupling:
            reason = "it does not take a task-coupling term (use 'fista')"
        if reason is not None:
            raise ValueError(
                f"solver={solver!r} does not apply to loss={loss.name!r} with "
                f"penalty={penalty.name!r}: {reason}. Use solver='auto'.")
        return chosen
    supported = [sv for sv in SOLVERS.values()
                 if sv.why_not(problem, loss, penalty) is None
                 and (coupling is None or sv.coupling)]
    return max(supported, key=lambda sv: sv.preference(problem, loss, penalty))


def reads_rows(loss, penalty, solver="auto"):
    """Whether ``solver`` (with ``"auto"``: any registered solver) may walk
    a sparse stacked design's rows on ``(loss, penalty)``: decided before
    the problem exists, it chooses the format of the features' one copy
    (:func:`mtlinear._task_data.split_task_column`).  Either format gives
    the same answers: a design makes the other one when a solver needs it."""
    if solver != "auto" and solver in SOLVERS:
        return SOLVERS[solver].reads_rows(loss, penalty)
    return any(sv.reads_rows(loss, penalty) for sv in SOLVERS.values())


def make_datafit(problem, loss):
    """The data-fit object for ``problem`` (Gram statistics when they pay
    off), cached on the problem: a path or a cross-validation solves one
    problem many times."""
    if (loss.quadratic and not problem.intercept_variable
            and _gram_pays_off(problem)):
        return _gram_datafit(problem)
    return _sample_datafit(problem, loss)


def _gram_datafit(problem):
    """The data-fit on the sufficient statistics, cached."""
    return _cached(problem, "gram_datafit",
                   lambda: GramDatafit.from_problem(problem))


def _ridge_spectrum(problem, statistics, Q, factors):
    """The :class:`RidgeSpectrum` of the Gram matrices ``Q`` of
    ``statistics`` (``"gram"`` or ``"row_space"``) with penalty ``factors``,
    cached: one per problem serves a path, its CV and ADMM."""
    return _cached(problem, _spectrum_key(statistics, factors),
                   lambda: RidgeSpectrum(Q, factors))


def _spectrum_key(statistics, factors):
    return ("ridge", statistics, factors.tobytes())


def _sample_datafit(problem, loss):
    """The data-fit through the design (the samples), cached."""
    return _cached(problem, "sample_datafit", lambda: SampleDatafit(loss, problem))


def solve(problem, loss, penalty, W0=None, b0=None, max_iter=1000, tol=1e-4,
          solver="auto", verbose=0, fallback=None, coupling=None,
          start_predictors=None):
    """Minimize the multi-task objective of ``problem`` with ``penalty``
    (plus ``coupling``, a task-coupling term, if given).

    BLAS runs on one thread when an iteration's products are small (see
    :mod:`mtlinear._threads`).

    Parameters
    ----------
    problem : TaskProblem
    loss : Loss
    penalty : Penalty
    W0 : ndarray of shape (d, T), optional
        Warm start (not modified).
    b0 : ndarray of shape (T,), optional
        Warm start of the intercept variable (when the problem has one).
    max_iter : int
    tol : float
        Relative duality-gap tolerance (see the module docstring).
    solver : "auto" or a registered solver's name
    verbose : int
    fallback : tuple (W, b), optional
        A second start (the previous solution of a path, when ``W0`` is a
        prediction): the solve starts from the one with the lower objective.
        ``None`` or ``(None, None)``: none.
    coupling : TaskCoupling, optional
        A smooth term ``tr(W K W^T) / 2`` added to the data fit.
    start_predictors : tuple (Z0, Z_fallback), optional
        ``X W0 + b0`` and the fallback's, where known (``None`` otherwise):
        a path's, from its solutions' (:func:`solution_predictor`), so that
        the Newton solvers choose their start without a product with ``X``.

    Returns
    -------
    SolveResult
    """
    design = problem.design
    work = design.n_samples * design.n_features * (
        design.n_tasks if design.shared else 1)
    # offered by identity for this solve only: W0 and the fallback are the
    # caller's arrays, alive and unchanged until it returns
    datafit = problem.cache.get("sample_datafit")
    if datafit is not None and start_predictors is not None:
        starts = [(W0, b0)] + ([] if fallback is None else [tuple(fallback)])
        datafit.offered = {(id(W), id(b)): Z for (W, b), Z
                           in zip(starts, start_predictors) if Z is not None}
    try:
        with blas_threads_for_work(work):
            return _solve(problem, loss, penalty, W0, b0, max_iter, tol,
                          solver, verbose, fallback, coupling)
    finally:
        if datafit is not None:
            datafit.offered = {}


def solution_predictor(problem, W, b):
    """``X W + b`` of a solution just returned by :func:`solve`, where its
    solver computed it for its certificate (the Newton solvers'
    :meth:`~mtlinear._datafit.SampleDatafit.fresh_primal`), else ``None``."""
    datafit = problem.cache.get("sample_datafit")
    return None if datafit is None else datafit.predictor_of(W, b)


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
           fallback, coupling):
    chosen = choose_solver(problem, loss, penalty, solver, coupling)
    announce_compilation()
    d, T = problem.n_features, problem.n_tasks
    W0 = np.zeros((d, T)) if W0 is None else W0
    if fallback is not None and fallback[0] is None:
        fallback = None
    # callback(tol_abs, solver): the progress printer of a solve (solver: a
    # finisher taking over from the chosen one)
    callback = ((lambda tol_abs, solver=chosen.name:
                 _progress_printer(solver, tol_abs))
                if verbose else (lambda tol_abs, solver=None: None))
    extra = {} if coupling is None else {"coupling": coupling}
    return chosen.run(problem, loss, penalty, (W0, b0, fallback), max_iter, tol,
                      callback, solver == "auto", **extra)


def _target(model, tol):
    return tol * max(model.null_value(), np.finfo(float).tiny)


def _lower_start(model, penalty, start, to_model=lambda W: W):
    """Of the start ``(W0, b0)`` and the fallback, the one with the lower
    objective (in the model's variables)."""
    W0, b0, fallback = start
    if fallback is None:
        return to_model(W0), b0
    starts = [(to_model(W), b) for W, b in ((W0, b0), fallback)]
    values = [model.value(W, b) + penalty.value(W) for W, b in starts]
    return starts[0] if values[0] <= values[1] else starts[1]


def _lower_sample_start(model, penalty, start):
    """:func:`_lower_start` through the samples: ``(W, b, Z)`` with the
    chosen start's linear predictor ``Z``, where the Newton solvers begin."""
    W0, b0, fallback = start
    best = None
    for W, b in [(W0, b0)] + ([] if fallback is None else [fallback]):
        Z = model.start_predictor(W, b)
        if fallback is None:
            return W, b, Z
        value = model.loss.value(Z, model.y, model.v) + penalty.value(W)
        if best is None or value < best[0]:
            best = (value, W, b, Z)
    return best[1:]


def _run_bcd(problem, loss, penalty, start, max_iter, tol, callback, auto):
    model = _cached(problem, "bcd", lambda: make_bcd_state(
        problem, _gram_pays_off(problem)))
    tol_abs = _target(model, tol)
    W0, _, fallback = start
    report = callback(tol_abs)
    # the coefficient rule stays in cross-validation folds too: on tiny
    # collinear tasks the gap-only working sets crawled (a 3-fold l21 CV of
    # 42 tasks: 140 s against 0.5 s)
    W, gap, n_iter, unsettled = bcd(
        model, penalty, W0, max_iter, tol_abs, coef_tol=tol, callback=report,
        fallback=None if fallback is None else fallback[0])
    b = None
    if gap > tol_abs and auto:
        # coordinate descent can crawl where FISTA does not (a tiny,
        # underdetermined, correlated task at a small alpha: 5080 epochs
        # against 830 iterations); FISTA continues from its iterate
        finisher = _finishing_solver(problem, loss, penalty)
        datafit = make_datafit(problem, loss)
        W, b, gap, more = fista(
            datafit, penalty, W, None, max_iter, tol_abs,
            callback=callback(tol_abs, "fista"),
            give_up=None if finisher is None else _out_of_reach(max_iter, tol_abs))
        n_iter += more
        if gap > tol_abs and finisher is not None:
            W, b, gap, n_iter = _finish_unconverged(
                finisher, problem, loss, penalty, W, b, tol_abs, max_iter,
                n_iter, callback, datafit)
    return SolveResult(W=W, b=b, gap=float(gap), tol_abs=tol_abs, n_iter=n_iter,
                       unsettled=unsettled)


def _run_fista(problem, loss, penalty, start, max_iter, tol, callback, auto,
               coupling=None):
    if _row_space_pays_off(problem, loss, penalty):
        return _run_fista_row_space(problem, loss, penalty, start, max_iter,
                                    tol, callback, coupling)
    model = with_coupling(make_datafit(problem, loss), coupling)
    W0, b0, fallback = start
    if problem.intercept_variable and b0 is None:
        b0 = model.initial_intercept()
    tol_abs = _target(model, tol)
    W0, b0 = _lower_start(model, penalty, (W0, b0, fallback))
    report = callback(tol_abs)
    finisher = _finishing_solver(problem, loss, penalty) if auto else None
    if coupling is not None and loss.coupled_columns > 1:
        finisher = None  # a coupling of T tasks, not of their T K columns
    # FISTA crawls when the features' scales differ: where the exact-step
    # solvers are cheap it gets a short budget before them, elsewhere it
    # hands over once it cannot reach the target within its budget; once it
    # stalled on this problem, the other solves of a path or a
    # cross-validation fold go straight to the finisher where that is cheap
    # or is ADMM (its eigendecompositions, made once, are then made)
    cheap = (finisher is not None and coupling is None
             and _exact_steps_are_cheap(problem, loss))
    budget, give_up = max_iter, None
    if finisher is not None and problem.cache.get("fista_stalls"):
        budget = 0
    elif cheap:
        budget = min(max_iter, _FISTA_BUDGET)
    elif finisher is not None:
        give_up = _out_of_reach(max_iter, tol_abs)
    W, b, gap, n_iter = fista(model, penalty, W0, b0, budget, tol_abs,
                              callback=report, give_up=give_up)
    if finisher is not None and gap > tol_abs:
        problem.cache["fista_stalls"] = cheap or finisher == "admm"
        W, b, gap, n_iter = _finish_unconverged(
            finisher, problem, loss, penalty, W, b, tol_abs, max_iter, n_iter,
            callback, model, coupling)
    return SolveResult(W=W, b=b, gap=float(gap), tol_abs=tol_abs, n_iter=n_iter)


def _exact_steps_are_cheap(problem, loss):
    """Whether the eigendecompositions of ``"admm"`` (``d x d``) and
    ``"newton_admm"`` (``d K`` square) cost less than a few hundred FISTA
    iterations."""
    if loss.coupled_columns > 1:
        return _hessian_block_sizes(problem, loss)[0] <= _CHEAP_FLOPS
    n_matrices = 1 if problem.design.shared else problem.n_tasks
    return n_matrices * float(problem.n_features) ** 3 <= _CHEAP_FLOPS


def _out_of_reach(max_iter, tol_abs, after=_FISTA_BUDGET, window=100):
    """FISTA's ``give_up(n_iter, gap)``: true once, after ``after``
    iterations, the gap's decrease over the last ``window`` iterations,
    continued at the same linear rate, would need more than twice the
    iterations left to reach ``tol_abs`` (or the gap did not decrease).

    Where it says so, FISTA would end unconverged anyway and the finisher
    would take over then; its steps are exact whatever the features'
    scales, so it takes over at once.  The factor 2 leaves FISTA the
    problems on which it accelerates as it nears the solution.
    """
    history = []

    def give_up(n_iter, gap):
        history.append((n_iter, gap))
        if n_iter < after:
            return False
        past = [(k, g) for k, g in history if k <= n_iter - window]
        if not past:
            return False
        k, g = past[-1]
        if not gap < g:
            return True
        rate = np.log(gap / g) / (n_iter - k)  # log decrease per iteration
        needed = np.log(tol_abs / gap) / rate
        return needed > 2 * (max_iter - n_iter)
    return give_up


def _finishing_solver(problem, loss, penalty):
    """``"admm"`` (squared loss) or ``"newton_admm"`` (other losses), the
    first that applies, or ``None``."""
    for name, why_not in (("admm", _admm_why_not),
                          ("newton_admm", _newton_admm_why_not)):
        if why_not(problem, loss, penalty) is None:
            return name
    return None


def _finish_unconverged(finisher, problem, loss, penalty, W, b, tol_abs,
                        max_iter, n_iter, callback, model, coupling=None):
    """Where the first solver (the proximal gradient, or proximal Newton
    stopped short) ended unconverged, the ``finisher``
    (:func:`_finishing_solver`) continues from its iterate for up to
    ``max_iter`` iterations: its exact steps do not stall on features of
    very different scales.  If the finisher stops on too little progress
    instead (a flat objective, where an accurate ``W`` is needed for a good
    dual point: the Huber loss with most residuals beyond ``delta``), FISTA
    on ``model`` continues from the finisher's iterate with the iterations
    left (at once when no finisher applies: ``finisher=None``).
    ``callback(tol_abs, solver)`` makes each solver's progress printer.
    ``coupling``: the task-coupling term in ``model``, if any.
    Returns ``(W, b, gap, n_iter)``."""
    more, gap = 0, np.inf  # no finisher: FISTA at once
    if finisher == "admm":
        W, gap, more = _run_admm_from(problem, loss, penalty, W, max_iter,
                                      tol_abs, callback(tol_abs, finisher),
                                      coupling)
    elif finisher == "newton_admm":
        W, b, gap, more = newton_admm(_sample_datafit(problem, loss), penalty,
                                      W, b, max_iter, tol_abs,
                                      callback=callback(tol_abs, finisher),
                                      coupling=coupling)
    n_iter += more
    if gap > tol_abs and more < max_iter and n_iter < max_iter:
        W, b, gap, more = fista(model, penalty, W, b, max_iter - n_iter, tol_abs,
                                callback=callback(tol_abs, "fista"))
        n_iter += more
    return W, b, gap, n_iter


def _run_admm_from(problem, loss, penalty, W0, max_iter, tol_abs, report,
                   coupling=None):
    datafit = make_datafit(problem, loss)  # the sufficient statistics
    # the ridge solver's spectrum (unit penalty factors), shared with it
    spectrum = _ridge_spectrum(problem, "gram", datafit.kernel_statistics()[0],
                               np.ones(problem.n_features))
    W, gap, n_iter, problem.cache["admm_rho"] = admm(
        with_coupling(datafit, coupling), penalty, W0, max_iter, tol_abs,
        spectrum, callback=report, rho=problem.cache.get("admm_rho"))
    return W, gap, n_iter


def _run_fista_row_space(problem, loss, penalty, start, max_iter, tol,
                         callback, coupling):
    """FISTA for ``Z`` in ``W = V Z`` (the row space of ``X``), certified and
    if need be finished on the full problem (the basis drops near-null
    directions).  A coupling term keeps its form: ``tr(V Z K Z^T V^T) =
    tr(Z K Z^T)`` for ``V`` with orthonormal columns."""
    basis, model = _cached(problem, "row_space",
                           lambda: _row_space_datafit(problem))
    model = with_coupling(model, coupling)
    tol_abs = _target(model, tol)
    report = callback(tol_abs)
    Z0, b0 = _lower_start(model, penalty, start, basis.project)
    Z, b, gap, n_iter = fista(model, penalty, Z0, b0, max_iter, tol_abs,
                              callback=report)
    W = basis.lift(Z)
    full = with_coupling(make_datafit(problem, loss), coupling)
    _, gap = full.duality_gap(W, None, penalty)
    if gap > tol_abs and n_iter < max_iter:
        W, b, gap, more = fista(full, penalty, W, None, max_iter - n_iter,
                                tol_abs, callback=report)
        n_iter += more
    return SolveResult(W=W, b=b, gap=float(gap), tol_abs=tol_abs, n_iter=n_iter)


def _newton_start(problem, loss, penalty, start, tol):
    """``(model, tol_abs, W0, b0, z0)`` for the Newton solvers: the data-fit
    through the samples (the sufficient statistics do not carry the loss's
    curvature per sample), the gap target and the start with its linear
    predictor (:func:`_lower_sample_start`)."""
    model = _sample_datafit(problem, loss)
    W0, b0, fallback = start
    if problem.intercept_variable and b0 is None:
        b0 = model.initial_intercept()
    return (model, _target(model, tol),
            *_lower_sample_start(model, penalty, (W0, b0, fallback)))


def _run_prox_newton(problem, loss, penalty, start, max_iter, tol, callback,
                     auto):
    model, tol_abs, W0, b0, z0 = _newton_start(problem, loss, penalty, start,
                                               tol)
    if smooth_ridge(penalty):  # truncated Newton with BLAS products
        W, b, gap, n_iter = newton_cg(
            model, penalty, W0, b0, max_iter, tol_abs,
            coef_tol=0.0 if problem.scores_only else tol,
            callback=callback(tol_abs), z=z0)
    else:
        def columns():
            return _cached(problem, "columns",
                           lambda: DesignColumns(problem.design))

        # a dense design's columns may be a centred copy the design takes
        # (DesignColumns): the solve starts from it; a sparse one's CSC copy
        # waits for the first Newton direction
        W, b, gap, n_iter = prox_newton(
            model, penalty, W0, b0, max_iter, tol_abs,
            columns if sp.issparse(problem.design.X) else columns(),
            coef_tol=0.0 if problem.scores_only else tol,
            callback=callback(tol_abs), z=z0)
    if auto and gap > tol_abs and n_iter < max_iter:
        # it stopped short: Newton's model of the loss entry by entry turns
        # flat where most samples saturate (small, nearly separable tasks
        # after a long step: binary School classes, l21, a gap of 57.8 after
        # 4 steps); the damped Newton steps of newton_admm, then FISTA, go
        # on from there
        W, b, gap, n_iter = _finish_unconverged(
            _finishing_solver(problem, loss, penalty), problem, loss, penalty,
            W, b, tol_abs, max_iter, n_iter, callback, model)
    return SolveResult(W=W, b=b, gap=float(gap), tol_abs=tol_abs, n_iter=n_iter)


def _compiled_rows(penalty):
    if not (penalty.row_separable and penalty.compiled):
        return ("it needs a compiled row-separable penalty (l1, l2, l21, "
                "sparse_group); a penalty written in Python only is solved by "
                "'fista'")
    return None


def _bcd_why_not(problem, loss, penalty):
    if not loss.quadratic:
        return "coordinate descent handles the squared loss only"
    if problem.intercept_variable:
        return "the problem has an intercept variable"
    return _compiled_rows(penalty)


def _prox_newton_why_not(problem, loss, penalty):
    if not loss.twice_differentiable:
        return "proximal Newton needs a twice-differentiable loss"
    if not loss.elementwise and not smooth_ridge(penalty):
        return ("proximal Newton models the loss entry by entry; this loss "
                "couples the entries of a sample (the classes of a softmax); "
                "its ridge penalty is solved by Newton-CG, the others by "
                "'fista' and 'newton_admm'")
    if (not smooth_ridge(penalty) and problem.y is not None
            and sp.issparse(problem.design.X)
            and _cached(problem, "means_swamp_spreads",
                        lambda: means_swamp_spreads(problem.design))):
        return ("a sparse design's features have means over 100 times their "
                "spreads: proximal Newton's centred curvatures would be "
                "rounding (a dense copy is centred for it); solved by 'fista'")
    return _compiled_rows(penalty)


def _prox_newton_preference(problem, loss, penalty):
    if not loss.quadratic:
        return 2.0
    # a ridge the direct solve cannot take (its statistics do not fit):
    # Newton-CG's conjugate gradients reach scikit-learn's accuracy, FISTA
    # stops on the gap with coefficients ten times further off
    return 1.5 if smooth_ridge(penalty) else 0.0


register_solver(Solver(
    "bcd", _bcd_why_not,
    lambda problem, loss, penalty: 3.0 if penalty.sparse else 0.5, _run_bcd))
register_solver(Solver(
    "prox_newton", _prox_newton_why_not, _prox_newton_preference,
    _run_prox_newton,
    # Newton-CG's compiled conjugate gradients run over each task's rows
    reads_rows=lambda loss, penalty: smooth_ridge(penalty)))
register_solver(Solver(
    "fista", lambda problem, loss, penalty: None,
    lambda problem, loss, penalty: 1.0, _run_fista, coupling=True))


def _lstsq_why_not(problem, loss, penalty):
    if not loss.quadratic or problem.intercept_variable:
        return "the direct solve is for the squared loss"
    if penalty.alpha != 0:
        return "the direct solve is for alpha = 0 (no penalty)"
    if problem.y is not None and sp.issparse(problem.design.X):
        return "the direct solve needs a dense design"
    if getattr(penalty, "positive", False) and problem.y is None:
        return "the non-negative direct solve needs the samples"
    return None


def _run_lstsq(problem, loss, penalty, start, max_iter, tol, callback, auto):
    # P(0) for the target: half the weighted sum of squares of the (centred)
    # targets, without the Gram statistics a data-fit object would build
    if problem.y is None:  # known by its sufficient statistics only
        null = 0.5 * float(np.sum(problem.design.gram_statistics()[3]))
        W, gap = problem.design.least_squares()
    else:
        null = 0.5 * float(np.vdot(problem.v * problem.y, problem.y))
        W, gap = least_squares(problem, getattr(penalty, "positive", False))
    tol_abs = tol * max(null, np.finfo(float).tiny)
    return SolveResult(W=W, b=None, gap=gap, tol_abs=tol_abs, n_iter=1)


register_solver(Solver(
    "lstsq", _lstsq_why_not, lambda problem, loss, penalty: 10.0, _run_lstsq))


def _ridge_why_not(problem, loss, penalty):
    if not loss.quadratic or problem.intercept_variable:
        return "the direct ridge solve is for the squared loss"
    if penalty.ridge_factors(problem.n_features) is None:
        return ("the direct ridge solve is for a penalty that is the ridge "
                "term alone (penalty='l2' or l1_ratio=0, positive=False)")
    if not (_gram_fits(problem) or _row_space_pays_off(problem, loss, penalty)
            or _task_by_task_ridge(problem)):
        return ("the direct ridge solve needs the d x d sufficient statistics "
                "in memory")
    return None


def _task_by_task_ridge(problem):
    """A single solve of a stacked design whose statistics serve no other
    purpose (they do not pay off as the data-fit, :func:`_gram_pays_off`):
    one task's ``Q_t`` at a time, and no other solve to share them."""
    design = problem.design
    return (problem.n_solves == 1 and not design.shared
            and not _gram_pays_off(problem)
            and 2 * design.n_features ** 2 <= _GRAM_MAX_FLOATS)


def _run_ridge(problem, loss, penalty, start, max_iter, tol, callback, auto,
               coupling=None):
    factors = penalty.ridge_factors(problem.n_features)
    if coupling is not None:
        return _run_coupled_ridge(problem, loss, penalty, start, max_iter, tol,
                                  callback, auto, coupling, factors)
    if _row_space_pays_off(problem, loss, penalty):  # factors are all 1 here
        basis, reduced = _cached(problem, "row_space",
                                 lambda: _row_space_datafit(problem))
        W = basis.lift(_ridge_solution(problem, "row_space", reduced,
                                       np.ones(reduced.C.shape[0]), penalty.mu))
        full = make_datafit(problem, loss)
    elif _task_by_task_ridge(problem):
        result = (_certified_newton_ridge(problem, loss, penalty, start, tol,
                                          callback)
                  if auto and smooth_ridge(penalty)
                  and _factorizations_in_products(problem) > _NEWTON_RIDGE_PRODUCTS
                  else None)
        if result is not None:
            return result
        design = problem.design
        W = single_ridge_solution(
            design.task_grams(problem.v), np.ones(design.n_tasks),
            design.rmatmat(problem.v * problem.y), penalty.mu, factors)
        full = make_datafit(problem, loss)
    else:
        full = _gram_datafit(problem)
        W = _ridge_solution(problem, "gram", full, factors, penalty.mu)
    return _direct_result(full, penalty, W, tol, callback)


def _factorizations_in_products(problem):
    """The flops of one Cholesky factorization per task (``d^3 / 3``) over
    those of one Hessian product (``4 nnz(X)``)."""
    design = problem.design
    X = design.X
    stored = X.nnz if sp.issparse(X) else X.size
    return design.n_tasks * design.n_features ** 3 / 3 / (4 * max(stored, 1))


def _certified_newton_ridge(problem, loss, penalty, start, tol, callback):
    """Newton-CG's answer to a single ridge solve, or ``None``.

    The objective is ``mu``-strongly convex, so the duality gap certifies the
    coefficients: ``||W - W*||_F <= sqrt(2 gap / mu)``.  The answer is kept
    when that bound is at most ``_RIDGE_COEF_ERROR ||W||_F`` (the gap target
    tightened for it if need be) within ``_NEWTON_RIDGE_STEPS`` Newton steps:
    on sparse text at usual alphas tens of milliseconds, where the direct
    solve factors a d x d system per task (half a second at d = 2000).  An
    ill-conditioned problem (a small ``mu``) runs out of steps, and the
    direct solve, whose cost does not depend on ``mu``, takes over.
    """
    model, tol_abs, W, b, z = _newton_start(problem, loss, penalty, start, tol)
    goal, steps = tol_abs, 0
    while steps < _NEWTON_RIDGE_STEPS:
        W, b, gap, n_iter = newton_cg(
            model, penalty, W, b, _NEWTON_RIDGE_STEPS - steps, goal,
            coef_tol=tol, callback=callback(goal), z=z)
        steps, z = steps + n_iter, None
        certified = 0.5 * penalty.mu * (_RIDGE_COEF_ERROR * np.linalg.norm(W)) ** 2
        if gap <= min(tol_abs, certified):
            return SolveResult(W=W, b=b, gap=float(gap), tol_abs=tol_abs,
                               n_iter=steps)
        if gap > goal or n_iter == 0:
            return None  # out of steps (or stalled) before its goal
        goal = certified
    return None


def _direct_result(full, penalty, W, tol, callback):
    """The :class:`SolveResult` of a direct solve's ``W``, certified by the
    gap of the data-fit ``full``."""
    tol_abs = _target(full, tol)
    primal, gap = full.duality_gap(W, None, penalty)
    gap = max(gap, 0.0)  # at the optimum, what is left is rounding
    report = callback(tol_abs)
    if report is not None:
        report(1, primal, gap)
    return SolveResult(W=W, b=None, gap=float(gap), tol_abs=tol_abs, n_iter=1)


def _run_coupled_ridge(problem, loss, penalty, start, max_iter, tol, callback,
                       auto, coupling, factors):
    """The ridge with a task coupling, solved directly (see
    :mod:`mtlinear._ridge`) when its statistics fit, else (or if the direct
    answer misses the target) by FISTA."""
    W = None
    if _gram_fits(problem):
        datafit = _gram_datafit(problem)
        Q, omega, C = datafit.kernel_statistics()
        spectrum = (_ridge_spectrum(problem, "gram", Q,
                                    np.ones(problem.n_features))
                    if Q.shape[0] == 1 else None)
        W = coupled_ridge_solution(Q, omega, C, penalty.mu, factors,
                                   coupling.K, spectrum)
    if W is not None:
        result = _direct_result(with_coupling(datafit, coupling), penalty, W,
                                tol, callback)
        if result.gap <= result.tol_abs:
            return result
        start = (W, start[1], None)  # FISTA from the direct answer
    return _run_fista(problem, loss, penalty, start, max_iter, tol, callback,
                      auto, coupling=coupling)


def _ridge_solution(problem, statistics, datafit, factors, mu):
    """The direct ridge: Cholesky for a single solve, else (or when the
    spectrum is already made) the cached eigendecompositions."""
    Q, omega, C = datafit.kernel_statistics()
    if (problem.n_solves == 1
            and _spectrum_key(statistics, factors) not in problem.cache):
        W = single_ridge_solution(Q, omega, C, mu, factors)
        if W is not None:
            return W
    return _ridge_spectrum(problem, statistics, Q, factors).solve(omega, C, mu)


register_solver(Solver(
    "ridge", _ridge_why_not, lambda problem, loss, penalty: 10.0, _run_ridge,
    coupling=True))


def _admm_why_not(problem, loss, penalty):
    if not loss.quadratic or problem.intercept_variable:
        return "ADMM works on the squared loss's sufficient statistics"
    if not _gram_pays_off(problem):
        return ("ADMM needs the d x d sufficient statistics (more rows per task "
                "than features, and in memory)")
    # no bound on d beyond the statistics' memory cap: the eigendecompositions
    # are made once per problem (a path shares them), each costing about as
    # much as 150-250 FISTA iterations on the same statistics (d = 300 to
    # 2200), so less than the FISTA budget they finish
    return None


def _run_admm(problem, loss, penalty, start, max_iter, tol, callback, auto,
              coupling=None):
    datafit = with_coupling(make_datafit(problem, loss), coupling)
    tol_abs = _target(datafit, tol)
    W0, _ = _lower_start(datafit, penalty, start)
    W, gap, n_iter = _run_admm_from(problem, loss, penalty, W0, max_iter,
                                    tol_abs, callback(tol_abs), coupling)
    return SolveResult(W=W, b=None, gap=float(gap), tol_abs=tol_abs,
                       n_iter=n_iter)


# "auto" takes ADMM only to finish an unconverged proximal gradient
register_solver(Solver(
    "admm", _admm_why_not, lambda problem, loss, penalty: -1.0, _run_admm,
    coupling=True))


def _newton_admm_why_not(problem, loss, penalty):
    if not loss.hessian_blocks:
        return ("proximal Newton with ADMM steps needs a twice-differentiable "
                "loss that forms its Hessian blocks (one entry per sample, or "
                "the multinomial's classes)")
    design = problem.design
    if problem.y is None:
        return "it needs the samples (the problem is known by its statistics)"
    if loss.elementwise and sp.issparse(design.X) and design.x_mean is not None:
        return ("it forms each task's Hessian block, which a sparse design "
                "centred for intercepts does not give accurately")
    flops, floats = _hessian_block_sizes(problem, loss)
    if flops > _NEWTON_ADMM_MAX_FLOPS or floats > _GRAM_MAX_FLOATS:
        return "its Hessian blocks per task would take too long"
    return None


def _hessian_block_sizes(problem, loss):
    """``(flops, floats)`` of one eigendecomposition of each task's Hessian
    block (side ``d K``, ``K`` the columns the loss couples)."""
    K = loss.coupled_columns
    blocks = problem.n_tasks // K
    side = float(problem.n_features) * K
    return blocks * side ** 3, blocks * side ** 2


def _run_newton_admm(problem, loss, penalty, start, max_iter, tol, callback,
                     auto):
    model, tol_abs, W0, b0, z0 = _newton_start(problem, loss, penalty, start,
                                               tol)
    W, b, gap, n_iter = newton_admm(model, penalty, W0, b0, max_iter, tol_abs,
                                    callback=callback(tol_abs), z=z0)
    return SolveResult(W=W, b=b, gap=float(gap), tol_abs=tol_abs, n_iter=n_iter)


# "auto" takes it only to finish an unconverged proximal gradient
register_solver(Solver(
    "newton_admm", _newton_admm_why_not, lambda problem, loss, penalty: -1.0,
    _run_newton_admm))
