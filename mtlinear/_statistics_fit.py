"""Fitting the squared loss from sufficient statistics: the estimator side
of ``fit`` on dask collections (:mod:`mtlinear._dask`) and of
``partial_fit``.

Both gather :class:`~mtlinear._statistics.SufficientStatistics` (on a
cluster, or chunk by chunk), then solve on the client with the same path,
solvers and "solution -> fitted attributes" step as an in-memory ``fit``: the
problem of :func:`~mtlinear._statistics.statistics_problem` has the per-task
``Q_t``, ``C_t`` and ``eta_t`` of the squared-loss solvers and no samples.
The statistics stay on the estimator (``_statistics``), so ``partial_fit``
can add chunks to them, after earlier ``partial_fit`` calls or after a fit on
dask collections.
"""

import numpy as np
from sklearn.utils.validation import validate_data

from ._base import _param_names
from ._path import path_on_problem
from ._solve import _gram_pays_off
from ._statistics import chunk_statistics, statistics_problem
from ._task_data import check_task_weights, set_task_labels

__all__ = ["fit_from_statistics", "partial_fit", "partial_fit_available",
           "squared_loss"]

# registered solvers that read the samples themselves (the others work on
# the sufficient statistics; "lstsq", at alpha = 0, is solved here from the
# normal equations)
_SAMPLE_SOLVERS = ("prox_newton",)


def squared_loss(estimator, what):
    """The estimator's loss, which must be the squared loss for ``what``."""
    loss = estimator._make_loss()
    if not loss.quadratic:
        raise ValueError(
            f"{what} supports the squared loss only (loss='squared'): a fit "
            f"from sufficient statistics cannot represent loss="
            f"{loss.name!r}, whose solvers need the samples. Bring the data "
            "into memory (e.g. X.compute(), y.compute() for dask collections) "
            "and call fit, or use loss='squared'.")
    return loss


def fit_from_statistics(estimator, prepare, what, warm_start=None,
                        growing_tasks=False):
    """Fit ``estimator`` from statistics; its state changes only on success.

    Parameters
    ----------
    estimator : MultiTaskRegressor
    prepare : callable
        ``prepare()`` validates the input and sets the input attributes
        (``n_features_in_``, ``feature_names_in_``, ``_y_ndim``) without the
        expensive work, and returns ``(n_features, collect)``; ``collect()``
        returns the :class:`~mtlinear._statistics.SufficientStatistics` of
        the fit (so the penalty's options are checked before the data work).
    what : str
        What is fitted, for the error messages ("fit on dask collections").
    warm_start : callable, optional
        ``warm_start(estimator, problem, previous)`` returns the solver's
        start ``(W0, b0)`` from the previous fitted attributes (a dict);
        default: the estimator's ``warm_start`` rule of an in-memory fit.
    growing_tasks : bool
        The task set may still grow (``partial_fit``): ``task_weights`` given
        as a mapping may name tasks not seen yet.
    """
    estimator._validate_params()
    loss = squared_loss(estimator, what)
    fitted = estimator._fitted_state()
    try:
        n_features, collect = prepare()
        penalty = estimator._make_penalty(n_features)
        stats = collect()
        set_task_labels(estimator, None if stats.shared else stats.labels)
        tasks = np.arange(stats.n_targets) if stats.shared else stats.labels
        omega = check_task_weights(
            _seen(estimator.task_weights, tasks) if growing_tasks
            else estimator.task_weights, tasks)
        problem = statistics_problem(stats, omega, estimator.fit_intercept,
                                     penalty.unpenalized())
        if not _gram_pays_off(problem):
            raise ValueError(
                f"{what}: the per-task statistics (T d^2 = "
                f"{problem.n_tasks * problem.n_features ** 2:.3g} floats) "
                "exceed what the solvers hold in memory; use fewer features "
                "or tasks per fit.")
        penalty = penalty.restricted(problem.penalized)
        start = (warm_start or _warm_start_of_fit)(estimator, problem, fitted)
        graph, coupling = estimator._task_coupling(problem)
        result = _solve(estimator, problem, loss, penalty, start, coupling)
    except BaseException:  # leave the model as it was
        estimator._restore_fitted_state(fitted)
        raise
    estimator._warn_if_unconverged(result)
    estimator._set_solution(problem, result, graph)
    estimator._statistics = stats
    return estimator


def _seen(task_weights, tasks):
    """A mapping of ``task_weights`` restricted to the ``tasks`` seen so far
    (others may come in later chunks); other forms unchanged."""
    if hasattr(task_weights, "index") and hasattr(task_weights, "to_dict"):
        if not task_weights.index.is_unique:
            return task_weights  # refused by check_task_weights
        task_weights = task_weights.to_dict()
    if not isinstance(task_weights, dict):
        return task_weights
    seen = set(np.asarray(tasks).tolist())
    return {label: weight for label, weight in task_weights.items()
            if (label.item() if isinstance(label, np.generic) else label) in seen}


def _warm_start_of_fit(estimator, problem, previous):
    """``fit``'s rule: the previous ``coef_`` with ``warm_start`` and the same
    shapes."""
    coef = previous.get("coef_")
    if estimator.warm_start and coef is not None and coef.shape == (
            problem.n_tasks, problem.n_features_in):
        return problem.solver_start(coef.T, previous["intercept_"])
    return None, None


def _solve(estimator, problem, loss, penalty, start, coupling):
    """The path at the estimator's ``alpha`` (``alpha = 0``: the normal
    equations, through the ``lstsq`` solver)."""
    solver = estimator.solver
    if solver in _SAMPLE_SOLVERS:
        raise ValueError(
            f"solver={solver!r} needs the samples, and a fit from sufficient "
            "statistics (dask collections, partial_fit) has none; use "
            "solver='auto' (or 'bcd', 'fista').")
    _, result = next(path_on_problem(
        problem, loss, penalty, [estimator.alpha], start=start,
        tol=estimator.tol, max_iter=estimator.max_iter, solver=solver,
        solver_verbose=estimator.verbose, coupling=coupling))
    return result


# ------------------------------------------------------------ partial_fit
def partial_fit_available(estimator):
    """Whether ``estimator`` has ``partial_fit`` (for ``available_if``): an
    estimator of one ``alpha`` with the squared loss.  Otherwise raises the
    ``AttributeError`` that says why (``hasattr`` is then false)."""
    name = type(estimator).__name__
    if "alpha" not in _param_names(type(estimator)):
        raise AttributeError(
            f"{name} has no partial_fit: it chooses alpha by cross-validation "
            "on all the data. Use MultiTaskRegressor(alpha=...).partial_fit.")
    try:
        quadratic = estimator._make_loss().quadratic
    except ValueError:  # an invalid loss: partial_fit reports it
        return True
    if not quadratic:
        raise AttributeError(
            f"{name} with loss={estimator.loss!r} has no partial_fit: only the "
            "squared loss is fitted from sufficient statistics, chunk by "
            "chunk (loss='squared').")
    return True


def partial_fit(estimator, X, y, sample_weight=None):
    """:meth:`MultiTaskRegressor.partial_fit`: add a chunk to the statistics
    and solve, warm-started from the previous solution."""
    first = not hasattr(estimator, "_statistics")

    def prepare():
        if y is None:
            raise ValueError(f"{type(estimator).__name__} requires y to be "
                             "passed, but the target y is None.")
        # feature count and names against the first chunk (or set by it)
        validate_data(estimator, X, reset=first, skip_check_array=True)
        n_features = estimator.n_features_in_ - (
            estimator.task_col is not None)
        if n_features == 0:
            raise ValueError(f"{type(estimator).__name__}: X has only the task "
                             "column; it needs at least one feature column "
                             "besides it.")
        chunk = chunk_statistics(X, y, sample_weight, estimator.task_col)
        if first:
            estimator._y_ndim = 1 if estimator.task_col is not None else np.ndim(y)
            return n_features, lambda: chunk
        previous = estimator._statistics
        if chunk.shared and chunk.n_targets != previous.n_targets:
            raise ValueError(
                f"y has {chunk.n_targets} targets (tasks) but the earlier "
                f"chunks had {previous.n_targets}; every chunk needs the same "
                "tasks in the shared layout.")
        return n_features, lambda: previous.merge(chunk)

    # the first chunk starts like a fit; later ones from the last solution
    return fit_from_statistics(estimator, prepare, "partial_fit",
                               warm_start=None if first else _warm_start_of_chunks,
                               growing_tasks=True)


def _warm_start_of_chunks(estimator, problem, previous):
    """The previous solution, its tasks placed among the current ones (the
    label set may have grown; a new task starts at zero)."""
    coef = previous.get("coef_")
    if coef is None or coef.shape[1] != problem.n_features_in:
        return None, None
    W = np.zeros((problem.n_features_in, problem.n_tasks))
    intercept = np.zeros(problem.n_tasks)
    if estimator.task_col is None:
        if coef.shape[0] != problem.n_tasks:
            return None, None
        where = np.arange(problem.n_tasks)
    elif previous.get("tasks_") is None:  # the last fit was in the shared layout
        return None, None
    else:
        where = np.searchsorted(estimator.tasks_, previous["tasks_"])
    W[:, where] = coef.T
    intercept[where] = previous["intercept_"]
    return problem.solver_start(W, intercept)
