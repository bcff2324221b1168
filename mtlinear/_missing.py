"""Missing targets: ``NaN`` in the shared layout's ``Y`` means "not observed".

Task ``t``'s loss is then a weighted mean over its observed rows ``O_t``
only, ``n_t = sum_{i in O_t} s_i``, and its intercept is centred on those
rows: the objective is exactly that of the stacked layout holding the
observed entries (row ``i`` of task ``t`` for each ``i in O_t``).

For the squared loss the problem is built from the sufficient statistics of
each task's observed rows (:mod:`mtlinear._statistics`: counts, means and
centred cross-products, computed one task at a time), so ``X`` is not copied
once per task.  When those statistics (``T d^2`` floats) would be larger
than the stacked copy of the observed rows (``d`` floats per observed
entry), as for a wide design, the stacked layout is built instead.
"""
import numpy as np

from ._statistics import SufficientStatistics, merge_statistics, statistics_problem
from ._task_data import build_problem, check_scales

__all__ = ["has_missing", "check_observed", "masked_problem"]


def has_missing(Y):
    return Y.ndim == 2 and Y.dtype.kind == "f" and bool(np.isnan(Y).any())


def check_observed(Y, estimator_name):
    """``ValueError`` unless every task has two observed targets; ``inf`` is
    an error (only ``NaN`` means "missing")."""
    if np.isinf(Y).any():
        raise ValueError(f"{estimator_name}: y contains infinity; only NaN "
                         "marks a missing target.")
    observed = (~np.isnan(Y)).sum(axis=0)
    if observed.min() < 2:
        t = int(np.argmin(observed))
        raise ValueError(
            f"{estimator_name} needs at least 2 observed targets per task; "
            f"task {t} (column {t} of y) has {observed[t]}. Drop the column "
            "or give it more observations.")


def masked_problem(X, Y, sample_weight, task_weights, fit_intercept, loss,
                   unpenalized=None):
    """The :class:`~mtlinear._task_data.TaskProblem` of the observed entries
    of ``Y`` (shared layout, ``NaN``: not observed)."""
    if not loss.quadratic:
        raise ValueError(
            f"Missing targets (NaN in y) are supported with the squared loss; "
            f"loss={loss.name!r} is not. Fit the observed entries in the "
            "stacked layout (one row per observed target, with a task column) "
            "instead.")
    n, d = X.shape
    T = Y.shape[1]
    s = np.ones(n) if sample_weight is None else np.asarray(sample_weight, float)
    observed = ~np.isnan(Y)
    check_scales(X, Y[observed], task_weights)
    if T * d <= observed.sum():
        parts = []
        for t in range(T):
            rows = np.flatnonzero(observed[:, t])
            parts.append(SufficientStatistics.from_arrays(
                X[rows], Y[rows, t][:, None], s[rows],
                task_index=np.zeros(rows.size, dtype=np.int64),
                labels=np.array([t])))
        stats = merge_statistics(*parts)
        return statistics_problem(stats, task_weights, fit_intercept,
                                  unpenalized)
    task_of, row_of = np.nonzero(observed.T)  # grouped by task
    return build_problem(X[row_of], Y[row_of, task_of], task_of, n_tasks=T,
                         sample_weight=s[row_of], task_weights=task_weights,
                         fit_intercept=fit_intercept, center_targets=True,
                         unpenalized=unpenalized)
