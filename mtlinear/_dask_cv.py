"""Cross-validation on dask collections, from per-fold sufficient statistics.

For the squared loss a fold needs only statistics: its training problem is
the exact merge of the other folds' statistics, and its held-out squared
error follows from its own.  With the fold's (weighted) count ``n``, means
``xbar``, ``ybar`` and centred cross-products, the held-out sum of squares
of task ``t``'s model ``(w, b)`` is

.. math::

    \\sum_i s_i (y_i - x_i^T w - b)^2 = S^{yy} - 2 w^T S^{xy} + w^T S^{xx} w
    + n (\\bar y - \\bar x^T w - b)^2 .

So one pass over the data on the cluster (:func:`mtlinear._dask.dask_statistics`
with ``n_folds``: each partition deals its rows into the folds where it
lives) gives every fold, and the paths run on the client in ``O(T d^2)``
per iteration, whatever the number of rows.  The default score is the
in-memory one: minus the held-out mean squared error (pooled over the rows
in the stacked layout, averaged over the tasks in the shared layout).
"""
from numbers import Integral

import numpy as np

from ._dask import check_columns, check_rows_per_task, dask_statistics
from ._fold_solutions import FoldSolutions
from ._path import path_on_problem
from ._statistics import merge_statistics, statistics_problem
from ._statistics_fit import squared_loss
from ._task_data import check_task_weights, set_task_labels

__all__ = ["fit_cv_dask"]


def fit_cv_dask(estimator, X, y, sample_weight=None):
    """``MultiTaskRegressorCV.fit`` on dask collections (module docstring)."""
    what = f"{type(estimator).__name__}.fit on dask collections"
    estimator._validate_params()
    n_folds = _n_folds(estimator, what)
    loss = squared_loss(estimator, what)
    fitted = estimator._fitted_state()
    try:
        n_features = check_columns(estimator, X, y)
        folds = dask_statistics(X, y, sample_weight, estimator.task_col,
                                n_folds=n_folds)
        total = merge_statistics(*folds)
        check_rows_per_task(estimator, total)
        set_task_labels(estimator, None if total.shared else total.labels)
        tasks = np.arange(total.n_targets) if total.shared else total.labels
        omega = check_task_weights(estimator.task_weights, tasks)
        unpenalized = estimator._unpenalized_features(n_features)
        problem = statistics_problem(total, omega, estimator.fit_intercept,
                                     unpenalized)
        grids, shape = estimator._grids(problem, loss)
        scores = np.empty((len(grids), len(grids[0][-1]), n_folds))
        converged = np.ones(scores.shape[:2], dtype=bool)
        solutions = [FoldSolutions(scores.shape[:2]) for _ in range(n_folds)]
        for k in range(n_folds):
            train = merge_statistics(*(f for j, f in enumerate(folds) if j != k))
            _check_every_task_trains(train, total, k)
            fold_problem = statistics_problem(
                train, omega, estimator.fit_intercept, unpenalized)
            for g, (penalty, l1_ratio, graph_alpha, alphas) in enumerate(grids):
                _, coupling = estimator._task_coupling(fold_problem, graph_alpha)
                for a, result in path_on_problem(
                        fold_problem, loss, estimator._make_penalty(
                            n_features, penalty, l1_ratio, fold_problem),
                        alphas, tol=estimator.tol, max_iter=estimator.max_iter,
                        solver=estimator.solver, coupling=coupling):
                    W, intercept = fold_problem.full_solution(result.W, result.b)
                    scores[g, a, k] = -held_out_mse(folds[k], total, W, intercept)
                    converged[g, a] &= result.converged
                    solutions[k].keep(g, a, W, intercept)
        g, a = estimator._choose(grids, shape, scores, converged)
        estimator._refit(problem, loss,
                         FoldSolutions.refit_start(solutions, g, a))
    except BaseException:  # leave the model as it was
        estimator._restore_fitted_state(fitted)
        raise
    return estimator


def _n_folds(estimator, what):
    cv = 5 if estimator.cv is None else estimator.cv
    if not isinstance(cv, Integral) or isinstance(cv, bool) or cv < 2:
        raise ValueError(
            f"{what}: cv must be a number of folds (an integer >= 2), got "
            f"{cv!r}; each partition deals its rows into the folds where it "
            "lives, so splitters and lists of indices do not apply.")
    if estimator.scoring is not None:
        raise ValueError(
            f"{what}: scoring must be None (the held-out mean squared error, "
            "computed from each fold's statistics); a scorer needs the "
            "held-out rows. Search with GridSearchCV under "
            "joblib.parallel_backend('dask') on in-memory data instead.")
    return int(cv)


def _check_every_task_trains(train, total, k):
    if not total.shared and (len(train.labels) != len(total.labels)):
        missing = np.setdiff1d(total.labels, train.labels)[:10].tolist()
        raise ValueError(
            f"Fold {k} trains without any row of task(s) {missing}: a task "
            "needs rows in at least two folds. Use fewer folds or give those "
            "tasks more rows.")


def held_out_mse(fold, total, W, intercept):
    """The mean squared error of ``(W, intercept)`` on the rows of ``fold``
    (statistics), as the in-memory default score computes it: pooled over
    rows in the stacked layout, averaged over the tasks in the shared one.
    ``total`` gives the task order of ``W``'s columns."""
    if fold.shared:  # one group; the targets are the tasks
        n = fold.weight[0]
        residual = fold.y_mean[0] - fold.x_mean[0] @ W - intercept
        sse = (fold.yy[0] - 2 * np.einsum("jt,jt->t", W, fold.xy[0])
               + np.einsum("jt,jk,kt->t", W, fold.xx[0], W) + n * residual ** 2)
        return float(np.mean(sse / n))
    where = np.searchsorted(total.labels, fold.labels)  # the fold's tasks
    Wf, bf = W[:, where], intercept[where]
    residual = fold.y_mean[:, 0] - np.einsum("gj,jg->g", fold.x_mean, Wf) - bf
    sse = (fold.yy[:, 0] - 2 * np.einsum("jg,gj->g", Wf, fold.xy[:, :, 0])
           + np.einsum("jg,gjk,kg->g", Wf, fold.xx, Wf)
           + fold.weight * residual ** 2)
    return float(sse.sum() / fold.weight.sum())
