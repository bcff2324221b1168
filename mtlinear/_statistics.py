"""Sufficient statistics of the squared loss, and problems built from them.

For the squared loss the objective of :mod:`mtlinear._task_data` depends on
the data only through, per task ``t`` (or once for all tasks in the shared
layout), the weighted count, means and centred cross-products

.. math::

    n_t = \\sum_{i \\in t} s_i, \\quad
    \\bar x_t = \\frac{1}{n_t} \\sum_{i \\in t} s_i x_i, \\quad
    \\bar y_t = \\frac{1}{n_t} \\sum_{i \\in t} s_i y_i,

.. math::

    S^{xx}_t = \\sum_{i \\in t} s_i (x_i - \\bar x_t)(x_i - \\bar x_t)^\\top,
    \\quad
    S^{xy}_t = \\sum_{i \\in t} s_i (x_i - \\bar x_t)(y_i - \\bar y_t),
    \\quad
    S^{yy}_t = \\sum_{i \\in t} s_i (y_i - \\bar y_t)^2 .

:class:`SufficientStatistics` holds them for any number of rows, computed
chunk by chunk (:meth:`SufficientStatistics.from_arrays`) and combined by the
parallel formula of Chan, Golub and LeVeque (:meth:`SufficientStatistics.merge`):
for two parts ``a`` and ``b`` with ``delta = xbar_b - xbar_a``,

.. math::

    S^{xx} = S^{xx}_a + S^{xx}_b + \\frac{n_a n_b}{n_a + n_b}\\,
    \\delta \\delta^\\top ,

and alike for the others.  Every part is centred on its own means, so no
step subtracts two large, nearly equal sums: the raw sums ``sum s x x^T -
n xbar xbar^T`` would lose about ``log10(|xbar|^2 / var)`` digits, all of
them for a feature whose mean is large against its spread.

:func:`statistics_problem` turns the statistics into the solvers'
:class:`~mtlinear._task_data.TaskProblem`, with a :class:`StatisticsDesign`
that offers what the squared-loss solvers read (``gram_statistics``) and no
samples: ``fit`` on dask collections and ``partial_fit`` solve from it.
"""
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from sklearn.utils import _safe_indexing, check_array

from ._design import weighted_gram
from ._task_data import TaskProblem, encode_task_labels, split_task_column
from ._unpenalized import Reduction

__all__ = ["SufficientStatistics", "merge_statistics", "chunk_statistics",
           "StatisticsDesign", "statistics_problem"]


@dataclass
class SufficientStatistics:
    """Weighted counts, means and centred cross-products per group of rows.

    A group is a task of the stacked layout, or all the rows of the shared
    layout (one group whose ``k`` targets are the tasks).

    Attributes
    ----------
    labels : ndarray of shape (G,) or None
        Sorted task labels (stacked layout); ``None`` for the shared layout
        (``G = 1``).
    rows : ndarray of int64, shape (G,)
        Number of rows of each group.
    weight : ndarray of shape (G,)
        ``n_g``, the sum of the sample weights.
    x_mean : ndarray of shape (G, d)
    y_mean : ndarray of shape (G, k)
    xx : ndarray of shape (G, d, d)
        ``S^xx``, centred on the group's means.
    xy : ndarray of shape (G, d, k)
    yy : ndarray of shape (G, k)
        The diagonal of ``S^yy`` (one sum per target).
    """

    labels: object
    rows: np.ndarray
    weight: np.ndarray
    x_mean: np.ndarray
    y_mean: np.ndarray
    xx: np.ndarray
    xy: np.ndarray
    yy: np.ndarray

    @property
    def shared(self):
        return self.labels is None

    @property
    def n_features(self):
        return self.x_mean.shape[1]

    @property
    def n_targets(self):
        return self.y_mean.shape[1]

    @classmethod
    def from_arrays(cls, X, Y, sample_weight=None, task_index=None, labels=None):
        """The statistics of validated arrays.

        Parameters
        ----------
        X : ndarray or sparse matrix of shape (n, d), float64, finite
        Y : ndarray of shape (n, k), float64, finite
        sample_weight : ndarray of shape (n,), optional
            Non-negative.
        task_index : ndarray of int, shape (n,), optional
            Each row's position in ``labels`` (stacked layout); ``None``: the
            shared layout, one group.
        labels : ndarray of shape (G,), sorted, with ``task_index``
        """
        n, d = X.shape
        Y = np.asarray(Y, dtype=np.float64).reshape(n, -1)
        s = (np.ones(n) if sample_weight is None
             else np.asarray(sample_weight, dtype=np.float64))
        if task_index is None:
            bounds = [(0, n)]
        elif len(labels) == 0:  # an empty chunk of stacked tasks
            return cls(np.asarray(labels), np.zeros(0, np.int64), np.zeros(0),
                       np.zeros((0, d)), np.zeros((0, Y.shape[1])),
                       np.zeros((0, d, d)), np.zeros((0, d, Y.shape[1])),
                       np.zeros((0, Y.shape[1])))
        else:
            # rows grouped by task: each group is one contiguous block
            order = np.argsort(task_index, kind="stable")
            counts = np.bincount(task_index, minlength=len(labels))
            ptr = np.concatenate([[0], np.cumsum(counts)])
            X, Y, s = X[order], Y[order], s[order]
            bounds = list(zip(ptr[:-1], ptr[1:]))
        if sp.issparse(X):
            X = sp.csr_matrix(X)
        parts = [_group_statistics(X[lo:hi], Y[lo:hi], s[lo:hi])
                 for lo, hi in bounds]
        return cls(None if task_index is None else np.asarray(labels),
                   np.array([hi - lo for lo, hi in bounds], dtype=np.int64),
                   *(np.stack(arrays) for arrays in zip(*parts)))

    def merge(self, other):
        """The statistics of the rows of ``self`` and ``other`` together.

        Groups are matched by task label (the label set is the union);
        parts are combined by the parallel formula of the module docstring.
        Neither input is modified.
        """
        if self.shared != other.shared:
            raise ValueError("Cannot combine statistics of the shared layout "
                             "with statistics of stacked tasks.")
        if (self.n_features, self.n_targets) != (other.n_features,
                                                 other.n_targets):
            raise ValueError(
                f"Cannot combine statistics of {self.n_features} features and "
                f"{self.n_targets} targets with statistics of "
                f"{other.n_features} features and {other.n_targets} targets.")
        if self.shared:
            return _chan(self, other, None)
        if not len(self.labels):
            return other
        if not len(other.labels):
            return self
        _check_label_kinds(self.labels, other.labels)
        labels = np.union1d(self.labels, other.labels)
        return _chan(self._spread(labels), other._spread(labels), labels)

    def _spread(self, labels):
        """``self`` on the (larger, sorted) label set ``labels``: zero
        statistics for the tasks it has no row of."""
        where = np.searchsorted(labels, self.labels)
        G = labels.size

        def place(a):
            out = np.zeros((G,) + a.shape[1:], dtype=a.dtype)
            out[where] = a
            return out

        return SufficientStatistics(
            labels, place(self.rows), place(self.weight), place(self.x_mean),
            place(self.y_mean), place(self.xx), place(self.xy), place(self.yy))


def merge_statistics(*parts):
    """All ``parts`` (:class:`SufficientStatistics`) merged into one."""
    if not parts:
        raise ValueError("No statistics to merge: the data has no rows.")
    out = parts[0]
    for part in parts[1:]:
        out = out.merge(part)
    return out


def _check_label_kinds(a, b):
    """String labels do not mix with integer labels (``np.union1d`` would
    turn the integers into strings and keep ``1`` and ``"1"`` apart)."""
    if (a.dtype.kind == "U") != (b.dtype.kind == "U"):
        raise ValueError(
            f"Task labels of different types in different chunks: "
            f"{a[:3].tolist()} and {b[:3].tolist()}; all task labels must be "
            "integers or all strings.")


def _group_statistics(X, Y, s):
    """``(n, xbar, ybar, S^xx, S^xy, diag S^yy)`` of one group of rows.

    Dense rows are centred before the products (exact centring).  Sparse
    rows stay sparse: ``S^xx = X^T S X - n xbar xbar^T`` within the chunk
    (centring would densify it); the chunks are then combined exactly.
    """
    d, k = X.shape[1], Y.shape[1]
    n = float(s.sum()) if s.size else 0.0
    if n <= 0:  # no row, or zero weights: nothing to add
        return (0.0, np.zeros(d), np.zeros(k), np.zeros((d, d)),
                np.zeros((d, k)), np.zeros(k))
    y_mean = (s @ Y) / n
    Yc = Y - y_mean
    sYc = s[:, None] * Yc
    yy = np.einsum("ij,ij->j", sYc, Yc)
    if sp.issparse(X):
        x_mean = np.asarray(X.T @ s).ravel() / n
        xx = weighted_gram(X, s) - n * np.outer(x_mean, x_mean)
        xy = np.asarray(X.T @ sYc) - np.outer(x_mean, sYc.sum(axis=0))
    else:
        x_mean = (s @ X) / n
        Xc = X - x_mean
        xx = weighted_gram(Xc, s)
        xy = Xc.T @ sYc
    return n, x_mean, y_mean, 0.5 * (xx + xx.T), xy, yy


def _chan(a, b, labels):
    """Combine two aligned sets of statistics (same groups)."""
    n = a.weight + b.weight
    f = np.divide(b.weight, n, out=np.zeros_like(n), where=n > 0)  # n_b / n
    c = a.weight * f  # n_a n_b / n
    dx = b.x_mean - a.x_mean
    dy = b.y_mean - a.y_mean
    return SufficientStatistics(
        labels, a.rows + b.rows, n,
        a.x_mean + f[:, None] * dx, a.y_mean + f[:, None] * dy,
        a.xx + b.xx + c[:, None, None] * dx[:, :, None] * dx[:, None, :],
        a.xy + b.xy + c[:, None, None] * dx[:, :, None] * dy[:, None, :],
        a.yy + b.yy + c[:, None] * dy * dy)


# ------------------------------------------------------------ the design
class StatisticsDesign:
    """The design of a squared-loss problem known by its statistics only.

    It offers what the solvers on sufficient statistics read
    (:meth:`gram_statistics`, as :class:`~mtlinear._design.SharedDesign`
    and :class:`~mtlinear._design.StackedDesign` do) and no samples.

    ``n_samples`` is the number of rows of the *equivalent design*: a
    square root ``R_t`` of each ``Q_t = R_t^T R_t`` (``d`` rows per task)
    gives the same objective, and it is also what an iteration on the
    statistics costs, so the solvers' choices (sufficient statistics rather
    than samples, no row-space reduction, BLAS threads by work) come out as
    they should.  The true number of rows is ``n_rows``.

    Parameters
    ----------
    Q : ndarray of shape (d, d) (shared) or (T, d, d)
    omega : ndarray of shape (T,) or None
        The task weights when ``Q`` is shared (scaled per task), else ``None``.
    C : ndarray of shape (d, T)
    yy : ndarray of shape (T,)
    n_rows : int
    """

    def __init__(self, Q, omega, C, yy, n_rows):
        self.Q, self.omega, self.C, self.yy = Q, omega, C, yy
        self.shared = omega is not None
        self.n_features, self.n_tasks = C.shape
        self.n_samples = self.n_features * (1 if self.shared else self.n_tasks)
        self.n_rows = int(n_rows)
        self.x_mean = None  # the centring is in the statistics

    def gram_statistics(self, y=None, v=None):
        """``(Q, omega, C, yy)`` as the sample designs return them
        (``y`` and ``v`` are not used: there are no samples)."""
        return self.Q, self.omega, self.C, self.yy

    def _no_samples(self, *args):
        raise NotImplementedError(
            "This problem was built from sufficient statistics (a fit on dask "
            "collections or partial_fit) and has no samples; only the "
            "squared-loss solvers on statistics ('bcd', 'fista') apply.")

    matmat = rmatmat = task_sum = task_broadcast = lipschitz = _no_samples

    def least_squares(self):
        """``(W, gap)``: the unpenalized (``alpha = 0``) solution from the
        normal equations ``omega_t Q_t w_t = C_t`` (minimum norm, by the
        pseudo-inverse) and its duality gap ``|<C - QW, W>|`` (the same
        certificate as :func:`mtlinear._lstsq.least_squares`; the condition
        number is that of ``Q_t``, the square of the design's)."""
        d, T = self.n_features, self.n_tasks
        W = np.zeros((d, T))
        scale = self.omega if self.shared else np.ones(T)
        groups = [(self.Q, np.arange(T))] if self.shared else [
            (self.Q[t], np.array([t])) for t in range(T)]
        for Q, tasks in groups:
            W[:, tasks] = _pinvh(Q) @ self.C[:, tasks]
        W = W / np.where(scale > 0, scale, 1.0)
        QW = (self.Q @ W) * self.omega if self.shared else np.einsum(
            "tij,jt->it", self.Q, W)
        return W, abs(float(np.vdot(self.C - QW, W)))


def _pinvh(Q, scale=0.0):
    """Pseudo-inverse of a symmetric positive semi-definite matrix of
    statistics: the eigenvalues below ``1e4 eps`` times the largest, or
    times ``scale`` (the uncentred second moments' size, of which centring
    leaves rounding), count as zero.  A task whose rows all share a dummy's
    value (School: one school observed in one year) has a centred block of
    rounding alone: inverted, it gave coefficients of 4e16 in
    ``partial_fit``."""
    values, vectors = np.linalg.eigh(Q)
    top = max(float(values[-1]), 0.0) if values.size else 0.0
    keep = values > 1e4 * np.finfo(float).eps * max(top, scale)
    inverse = np.zeros_like(values)
    inverse[keep] = 1.0 / values[keep]
    return (vectors * inverse) @ vectors.T


# ------------------------------------------------------------ the problem
def statistics_problem(stats, task_weights, fit_intercept, unpenalized=None):
    """The :class:`~mtlinear._task_data.TaskProblem` of ``stats``.

    With the per-sample weights ``v_i = omega_t s_i / n_t`` of
    :mod:`mtlinear._task_data`, the squared-loss statistics of task ``t``
    are (``fit_intercept``: centred on the task's means)

    .. math::

        Q_t = \\frac{\\omega_t}{n_t} S^{xx}_t, \\quad
        C_t = \\frac{\\omega_t}{n_t} S^{xy}_t, \\quad
        \\eta_t = \\frac{\\omega_t}{n_t} S^{yy}_t,

    and without intercept the uncentred ones, ``S^xx + n xbar xbar^T`` and
    alike.  In the shared layout ``Q = S^xx / n`` is stored once and scaled
    by ``omega_t`` in the solvers.  The intercepts follow from the means,
    ``b_t = ybar_t - xbar_t^T w_t``.

    Parameters
    ----------
    stats : SufficientStatistics
    task_weights : ndarray of shape (T,)
        ``omega_t`` in the order of the tasks of ``stats``.
    fit_intercept : bool
    unpenalized : array-like of int, optional
        Features without penalty, partialled out of the statistics
        (:func:`_partial_out`).
    """
    n = stats.weight
    if np.any(n <= 0):
        raise ValueError(
            "sample_weight sums to zero; at least one sample needs a positive "
            "weight." if stats.shared else
            "sample_weight is zero on every sample of some task; each task "
            "needs a positive total weight.")
    xx, xy, yy = stats.xx, stats.xy, stats.yy
    if not fit_intercept:  # uncentred: add back the means
        xm, ym = stats.x_mean, stats.y_mean
        xx = xx + n[:, None, None] * xm[:, :, None] * xm[:, None, :]
        xy = xy + n[:, None, None] * xm[:, :, None] * ym[:, None, :]
        yy = yy + n[:, None] * ym * ym
    # per-task means of the products (the data-fit of each task is a mean)
    Q, C, yy = xx / n[:, None, None], xy / n[:, None, None], yy / n[:, None]
    x_mean = stats.x_mean if fit_intercept else None
    y_mean = stats.y_mean if fit_intercept else None
    omega = np.asarray(task_weights, dtype=np.float64)
    if stats.shared:  # one Q; the k targets are the tasks
        Q, C, yy = Q[0], C[0], yy[0]
        T = C.shape[1]
        if x_mean is not None:
            x_mean, y_mean = np.tile(x_mean, (T, 1)), y_mean[0]
    else:
        C, yy = C[:, :, 0].T, yy[:, 0]
        if y_mean is not None:
            y_mean = y_mean[:, 0]
    reduction = None
    if unpenalized is not None and len(unpenalized):
        Q, C, yy, reduction = _partial_out(Q, C, yy, x_mean, y_mean,
                                           np.asarray(unpenalized, np.int64),
                                           stats.shared)
        x_mean = y_mean = None  # the reduction gives the intercepts
    if stats.shared:
        design = StatisticsDesign(np.ascontiguousarray(Q), omega,
                                  np.ascontiguousarray(C * omega), yy * omega,
                                  stats.rows.sum())
    else:
        # C as the stacked sample design returns it: (T, d) transposed
        design = StatisticsDesign(np.ascontiguousarray(Q * omega[:, None, None]),
                                  None, np.ascontiguousarray((C * omega).T).T,
                                  np.ascontiguousarray(yy * omega),
                                  stats.rows.sum())
    return TaskProblem(design=design, y=None, v=None,
                       fit_intercept=fit_intercept and reduction is None,
                       intercept_variable=False, x_mean=x_mean, y_mean=y_mean,
                       reduction=reduction)


def _partial_out(Q, C, yy, x_mean, y_mean, unpenalized, shared):
    """Partial the ``unpenalized`` features out of the statistics.

    The statistics version of :func:`mtlinear._unpenalized.partial_out`:
    with ``U`` the unpenalized features and ``P`` the others, the minimizer
    over ``w_U`` for fixed ``w_P`` is ``G - B w_P`` with ``B = Q_UU^+
    Q_UP`` and ``G = Q_UU^+ C_U``, and the objective there is the problem
    with

    .. math::

        Q' = Q_{PP} - Q_{PU} B, \\quad C' = C_P - Q_{PU} G, \\quad
        \\eta' = \\eta - C_U^\\top G .

    With an intercept, ``b = ybar - xbar_U^T w_U - xbar_P^T w_P`` becomes
    the first row of ``B`` and ``G`` (:class:`~mtlinear._unpenalized.Reduction`
    keeps the intercept first).  Done before the task weights scale the
    statistics (a zero-weight task keeps its reduction).
    """
    d = C.shape[0]
    if len(unpenalized) >= d:
        raise ValueError("penalty_factor is zero for every feature: nothing is "
                         "penalized. Give at least one feature a positive "
                         "factor (or use an unpenalized linear model).")
    kept = np.setdiff1d(np.arange(d), unpenalized)
    U, P = unpenalized, kept
    T = C.shape[1]
    groups = [(Q, slice(None), 0)] if shared else [
        (Q[t], slice(t, t + 1), t) for t in range(T)]
    Q_red = np.empty((d - len(U), d - len(U)) if shared else
                     (T, d - len(U), d - len(U)))
    C_red = np.empty((len(P), T))
    yy_red = np.empty(T)
    k = len(U) + (x_mean is not None)
    B_all = np.empty((T, k, len(P)))
    G_all = np.empty((T, k))
    for Qt, tasks, t in groups:
        Q_UU = Qt[np.ix_(U, U)]
        second = np.diag(Q_UU) + (0.0 if x_mean is None else x_mean[t, U] ** 2)
        inverse = _pinvh(Q_UU, float(second.max(initial=0.0)))
        Q_UP = Qt[np.ix_(U, P)]
        B = inverse @ Q_UP  # (|U|, |P|)
        G = inverse @ C[U, tasks]  # (|U|, tasks)
        reduced = Qt[np.ix_(P, P)] - Q_UP.T @ B
        if shared:
            Q_red[:] = 0.5 * (reduced + reduced.T)
        else:
            Q_red[t] = 0.5 * (reduced + reduced.T)
        C_red[:, tasks] = C[P, tasks] - Q_UP.T @ G
        yy_red[tasks] = yy[tasks] - np.einsum("ut,ut->t", C[U, tasks], G)
        if x_mean is not None:
            # x_mean rows are the same for every task in the shared layout
            xm = x_mean[t]
            B = np.vstack([xm[P] - B.T @ xm[U], B])
            G = np.vstack([y_mean[tasks] - xm[U] @ G, G])
        B_all[tasks] = B
        G_all[tasks] = G.T
    reduction = Reduction(kept=kept, unpenalized=U, n_features=d,
                          B=np.ascontiguousarray(B_all), G=G_all,
                          fit_intercept=x_mean is not None)
    return Q_red, C_red, yy_red, reduction


# ------------------------------------------------------------ chunks
def chunk_statistics(X, y, sample_weight=None, task_col=None, min_rows=1):
    """The statistics of one in-memory chunk of user data, validated.

    What a fit does to its arrays (:func:`mtlinear._task_data.split_task_column`,
    finite float features and targets, non-negative weights), on one chunk:
    a partition of a dask collection (run on a worker) or a ``partial_fit``
    call.  ``X`` is an array, a sparse matrix or a DataFrame (with the task
    column when ``task_col`` is set); ``min_rows`` is the fewest rows the chunk
    may have (a dask partition may be empty).
    """
    labels = task_index = None
    if task_col is not None:
        X, raw_labels = split_task_column(X, task_col)
        labels, task_index = encode_task_labels(raw_labels)
    X = check_array(X, accept_sparse=("csr", "csc"), dtype=np.float64,
                    ensure_all_finite=True, ensure_min_samples=min_rows,
                    input_name="X")
    y = check_array(y, ensure_2d=False, dtype=np.float64,
                    ensure_all_finite=False, ensure_min_samples=min_rows,
                    input_name="y")
    if not np.all(np.isfinite(y)):
        raise ValueError("y contains NaN or infinity; a fit from sufficient "
                         "statistics (dask collections, partial_fit) needs "
                         "every target: remove or impute those rows.")
    if y.shape[0] != X.shape[0]:
        raise ValueError(
            f"A chunk of X has {X.shape[0]} rows but its chunk of y has "
            f"{y.shape[0]}: X and y (and sample_weight) must be partitioned "
            "alike, e.g. taken from one DataFrame, or rechunked to the same "
            "row chunks.")
    if task_col is not None and y.ndim != 1 and not (
            y.ndim == 2 and y.shape[1] == 1):
        raise ValueError(f"With task_col, y must be 1-d (one target per row), "
                         f"got shape {y.shape}.")
    if sample_weight is not None:
        sample_weight = check_array(sample_weight, ensure_2d=False,
                                    dtype=np.float64, ensure_all_finite=True,
                                    ensure_min_samples=min_rows,
                                    input_name="sample_weight")
        if sample_weight.shape != (X.shape[0],):
            raise ValueError(
                f"sample_weight has shape {sample_weight.shape} but X has "
                f"{X.shape[0]} rows in this chunk; give one weight per row, "
                "partitioned like X.")
        if np.any(sample_weight < 0):
            raise ValueError("Negative values in data passed to sample_weight: "
                             "sample weights must be non-negative.")
    return SufficientStatistics.from_arrays(X, y.reshape(len(y), -1),
                                            sample_weight, task_index, labels)


def chunk_fold_statistics(X, y, sample_weight, task_col, n_folds, seed):
    """:func:`chunk_statistics` of each of ``n_folds`` folds of the chunk's
    rows (a list): each task's rows shuffled (``numpy`` generator seeded by
    ``seed``), then dealt to the folds in turn from a random first fold, so
    that every task spreads evenly over the folds, chunk after chunk."""
    if task_col is not None:
        _, raw_labels = split_task_column(X, task_col)
        groups = encode_task_labels(raw_labels)[1]
    else:
        groups = np.zeros(X.shape[0], dtype=np.int64)
    fold = deal_folds(groups, n_folds, seed)
    y = np.asarray(y)
    s = None if sample_weight is None else np.asarray(sample_weight)
    return [chunk_statistics(_safe_indexing(X, rows), y[rows],
                             None if s is None else s[rows], task_col, 0)
            for rows in (np.flatnonzero(fold == k) for k in range(n_folds))]


def deal_folds(groups, n_folds, seed):
    """Each row's fold: the rows of each group (task) shuffled, then dealt
    to the folds in turn from a random first fold (``numpy`` generator
    seeded by ``seed``)."""
    rng = np.random.default_rng(seed)
    fold = np.empty(len(groups), dtype=np.int64)
    for g in np.unique(groups):
        rows = rng.permutation(np.flatnonzero(groups == g))
        fold[rows] = (np.arange(rows.size) + rng.integers(n_folds)) % n_folds
    return fold
