"""Fitting from dask collections: sufficient statistics reduced on the cluster.

For the squared loss the solvers need only the per-task statistics of
:mod:`mtlinear._statistics` (``d x d`` per task, whatever the number of
rows).  :func:`dask_statistics` computes them partition by partition on the
workers (:func:`~mtlinear._statistics.chunk_statistics`: each partition is
validated and reduced where it lives) and combines them by a tree of exact
merges (Chan's parallel formula), in a single ``dask.compute`` whose result,
the only thing sent to the client, is the small statistics object.  The solve
then runs on the client (:mod:`mtlinear._statistics_fit`).

dask is optional: this module imports it only when a dask collection is
given, and :func:`is_dask_collection` does not import it at all.
"""
import math
import sys

import numpy as np
from sklearn.utils.validation import validate_data

from ._statistics import (chunk_fold_statistics, chunk_statistics,
                          merge_statistics)
from ._statistics_fit import fit_from_statistics
from ._task_data import split_task_column

__all__ = ["is_dask_collection", "dask_statistics", "fit_dask",
           "refuse_dask"]

# partitions merged per task of the reduction tree
SPLIT_EVERY = 8


def is_dask_collection(*objects):
    """Whether any of ``objects`` is a dask collection (without importing
    dask: if it is not imported, no dask collection exists)."""
    if "dask" not in sys.modules:
        return False
    from dask import is_dask_collection as check
    return any(check(obj) for obj in objects)


def fit_dask(estimator, X, y, sample_weight=None):
    """``estimator.fit(X, y, sample_weight)`` for dask collections.

    The statistics are reduced on the cluster (:func:`dask_statistics`);
    the fitted attributes are those of an in-memory fit (``coef_``,
    ``intercept_``, ``tasks_``, ``n_features_in_``, ``feature_names_in_``,
    ``n_iter_``, ``dual_gap_``, ``n_tasks_``), and the statistics are kept
    for a later ``partial_fit``.
    """
    what = "fit on dask collections"

    def prepare():
        n_features = check_columns(estimator, X, y)

        def collect():
            stats = dask_statistics(X, y, sample_weight, estimator.task_col)
            check_rows_per_task(estimator, stats)
            return stats

        return n_features, collect

    return fit_from_statistics(estimator, prepare, what)


def check_columns(estimator, X, y):
    """Validate the columns of dask ``X`` as a fit would (without computing
    anything); set ``n_features_in_``, ``feature_names_in_`` and the
    target's dimension; return the number of features."""
    meta = _meta(X)
    validate_data(estimator, meta, reset=True, skip_check_array=True)
    n_features = estimator.n_features_in_
    if estimator.task_col is not None:
        features, _ = split_task_column(meta, estimator.task_col)
        n_features = features.shape[1]
        if n_features == 0:
            raise ValueError(f"{type(estimator).__name__}: X has only the "
                             "task column; it needs at least one feature "
                             "column besides it.")
    _check_numeric_columns(X, estimator.task_col)
    estimator._y_ndim = 1 if estimator.task_col is not None else np.ndim(y)
    return n_features


def refuse_dask(estimator):
    """The error of an estimator whose loss cannot be fitted from dask
    collections (the logistic loss needs the samples at every iteration)."""
    return ValueError(
        f"{type(estimator).__name__} does not fit dask collections: only the "
        "squared loss (MultiTaskRegressor with loss='squared') is fitted from "
        "sufficient statistics reduced on the cluster; the logistic loss needs "
        "the samples at every iteration. Bring the data into memory (e.g. "
        "fit(X.compute(), y.compute())), or fit a subsample.")


def _meta(X):
    """An empty in-memory stand-in for ``X`` (its columns), for the checks
    of the estimator's input without computing anything."""
    import dask.array as da
    import dask.dataframe as dd
    if isinstance(X, dd.DataFrame):
        return X._meta
    if isinstance(X, da.Array):
        if X.ndim != 2 or math.isnan(X.shape[1]):
            raise ValueError(f"X must be a 2-d dask array with a known number "
                             f"of columns, got shape {X.shape}.")
        return np.empty((0, X.shape[1]), dtype=X.dtype)
    if is_dask_collection(X):
        raise TypeError(f"X is a {type(X).__name__}; fit takes a dask array or "
                        "a dask DataFrame (or in-memory data).")
    raise TypeError(
        "X is in memory but y or sample_weight is a dask collection; give X "
        "as a dask array or DataFrame partitioned like them, or compute y "
        "and sample_weight (e.g. y.compute()).")


def _check_numeric_columns(X, task_col):
    """Feature columns of a dask DataFrame must be numeric (the check an
    in-memory fit makes by converting to float), caught before any work."""
    import dask.dataframe as dd
    if not isinstance(X, dd.DataFrame):
        return
    from pandas.api.types import is_bool_dtype, is_numeric_dtype
    features, _ = split_task_column(X._meta, task_col) if task_col is not None \
        else (X._meta, None)
    bad = [c for c, t in features.dtypes.items()
           if not (is_numeric_dtype(t) or is_bool_dtype(t))]
    if bad:
        raise ValueError(f"X has non-numeric feature columns {bad[:10]}; encode "
                         "them as numbers (e.g. one-hot) before fitting.")


def check_rows_per_task(estimator, stats):
    """``fit``'s rule: at least two rows per task."""
    if stats.rows.min() < 2:
        where = ("" if stats.shared
                 else f" (task {stats.labels[np.argmin(stats.rows)].item()!r})")
        raise ValueError(f"{type(estimator).__name__} needs at least 2 samples "
                         f"per task; got n_samples = {stats.rows.min()}{where}. "
                         "Give every task two or more samples.")


# ------------------------------------------------------------ the reduction
def dask_statistics(X, y, sample_weight=None, task_col=None,
                    split_every=SPLIT_EVERY, n_folds=None, seed=0):
    """The :class:`~mtlinear._statistics.SufficientStatistics` of dask data.

    Each partition's statistics are computed where the partition lives, then
    merged ``split_every`` at a time up a tree; one ``dask.compute`` brings
    the root (``O(T d^2)`` floats) to the client.

    Parameters
    ----------
    X : dask array (n, columns) or dask DataFrame
        With the task column when ``task_col`` is set.
    y : dask array, Series or DataFrame; or in-memory, when the row chunks
        of ``X`` are known
    sample_weight : like ``y``, optional
    task_col : int, str or None
    n_folds : int, optional
        Deal the rows into ``n_folds`` folds where they live (each task's
        rows of a partition shuffled, then dealt in turn from a random fold,
        seeded by ``seed`` and the partition's position) and return the
        statistics of each fold (a list): a cross-validation's folds, with
        no row moved.
    """
    import dask
    X_parts, row_chunks = _row_partitions(X)
    y_parts = _aligned(y, "y", len(X_parts), row_chunks)
    s_parts = ([None] * len(X_parts) if sample_weight is None
               else _aligned(sample_weight, "sample_weight", len(X_parts),
                             row_chunks))
    merge = dask.delayed(merge_statistics, pure=True)

    def reduce(parts):
        while len(parts) > 1:
            parts = [merge(*parts[i:i + split_every])
                     for i in range(0, len(parts), split_every)]
        return parts[0]

    if n_folds is None:
        chunk = dask.delayed(chunk_statistics, pure=True)
        (stats,) = dask.compute(reduce([
            chunk(xp, yp, sp, task_col, 0)
            for xp, yp, sp in zip(X_parts, y_parts, s_parts)]))
        return stats
    chunk = dask.delayed(chunk_fold_statistics, pure=True, nout=n_folds)
    per_chunk = [chunk(xp, yp, sp, task_col, n_folds, [seed, i])
                 for i, (xp, yp, sp) in enumerate(zip(X_parts, y_parts, s_parts))]
    return list(dask.compute(*[reduce([folds[k] for folds in per_chunk])
                               for k in range(n_folds)]))


def _row_partitions(X):
    """``(parts, row_chunks)``: one delayed object per row block of ``X``,
    and the blocks' lengths when known."""
    import dask.array as da
    import dask.dataframe as dd
    if isinstance(X, dd.DataFrame):
        return list(X.to_delayed()), None
    if not isinstance(X, da.Array) or X.ndim != 2:
        raise TypeError(f"X must be a 2-d dask array or a dask DataFrame, got "
                        f"{type(X).__name__}.")
    if X.numblocks[1] > 1:  # whole rows in each block
        X = X.rechunk({1: -1})
    # arrays unoptimized (here and in _aligned): the blocks keep the keys
    # they share with y, so that work common to both (reading or generating
    # the blocks of which X and y are slices) runs once; optimized one by
    # one, each would fuse its own copy of it
    known = not any(math.isnan(c) for c in X.chunks[0])
    return (list(X.to_delayed(optimize_graph=False)[:, 0]),
            X.chunks[0] if known else None)


def _aligned(obj, name, n_parts, row_chunks):
    """``obj`` (``y`` or ``sample_weight``) as one piece per row block of X.

    A dask DataFrame or Series must have X's partitions; a dask array is
    rechunked to X's row chunks when both are known, else must have as
    many row blocks; in-memory data is split by X's row chunks (known
    ones only).  Rows are checked partition by partition on the workers.
    """
    import dask.array as da
    import dask.dataframe as dd
    advice = (f"partition {name} like X (e.g. take both from one dask "
              f"DataFrame, or rechunk {name} to X's row chunks)")
    if isinstance(obj, (dd.DataFrame, dd.Series)):
        parts = list(obj.to_delayed())
        if len(parts) != n_parts:
            raise ValueError(f"{name} has {len(parts)} partitions but X has "
                             f"{n_parts}; {advice}.")
        return parts
    if isinstance(obj, da.Array):
        if obj.ndim not in (1, 2):
            raise ValueError(f"{name} must be 1-d or 2-d, got shape {obj.shape}.")
        if obj.ndim == 2 and obj.numblocks[1] > 1:
            obj = obj.rechunk({1: -1})
        known = not any(math.isnan(c) for c in obj.chunks[0])
        if row_chunks is not None and known and obj.chunks[0] != row_chunks:
            if obj.shape[0] != sum(row_chunks):
                raise ValueError(f"X has {sum(row_chunks)} rows but {name} has "
                                 f"{obj.shape[0]}; they must match.")
            obj = obj.rechunk({0: row_chunks})
        elif obj.numblocks[0] != n_parts:
            raise ValueError(
                f"{name} has {obj.numblocks[0]} row blocks but X has "
                f"{n_parts}, and the sizes of some blocks are unknown (NaN); "
                f"call compute_chunk_sizes() on the dask arrays, or {advice}.")
        blocks = obj.to_delayed(optimize_graph=False)
        return list(blocks if obj.ndim == 1 else blocks[:, 0])
    if is_dask_collection(obj):
        raise TypeError(f"{name} is a {type(obj).__name__}; give a dask array, "
                        "Series or DataFrame.")
    if row_chunks is None:
        raise ValueError(
            f"{name} is in memory but the row blocks of X have unknown sizes, "
            f"so it cannot be split like X; give {name} as a dask collection "
            "partitioned like X (e.g. a column of the same DataFrame), or "
            "call X.compute_chunk_sizes().")
    values = np.asarray(obj)
    if values.shape[0] != sum(row_chunks):
        raise ValueError(f"X has {sum(row_chunks)} rows but {name} has "
                         f"{values.shape[0]}; they must match.")
    return np.split(values, np.cumsum(row_chunks)[:-1])
