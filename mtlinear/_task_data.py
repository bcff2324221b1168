"""From user arrays to one internal task-data object.

Two layouts (the user guide's layouts page):

* shared design: ``X`` (n, d) and ``Y`` (n, T), every sample in every task;
* stacked tasks: ``X`` (n, d) whose rows belong to one task each, given by a
  label column (``task_col``), ``y`` (n,).

Both become a :class:`TaskProblem`: a design operator (rows grouped by task),
targets, and per-sample weights

.. math:: v_i = \\omega_t\\, s_i / n_t, \\qquad n_t = \\sum_{i \\in t} s_i,

so that the data-fit term is ``sum_i v_i loss(y_i, z_i)``.  With
``fit_intercept`` the features are centred implicitly per task with the
``s``-weighted means; for the squared loss the targets are centred too and the
intercept drops out of the solve (it is recovered afterwards); for other losses
the solver keeps one unpenalized intercept per task.
"""
import numbers
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from numba import njit

from ._design import (SharedDesign, StackedDesign, unsigned_view,
                      weighted_mean_rows)
from ._unpenalized import partial_out

__all__ = ["stack_tasks", "shared_to_stacked", "split_task_column",
           "encode_task_labels", "check_task_weights", "build_problem",
           "set_task_labels", "TaskProblem"]


def stack_tasks(X_list, y_list, task_labels=None):
    """Stack per-task arrays (MALSAR's format) into the stacked layout.

    Parameters
    ----------
    X_list : sequence of array-like or sparse matrices, each (n_t, d)
        The features of each task; all must have the same ``d``.
    y_list : sequence of array-like, each (n_t,) or (n_t, 1)
        The targets of each task.
    task_labels : sequence, optional
        One label per task; default ``0, 1, ..., T - 1``.

    Returns
    -------
    X : ndarray or scipy.sparse CSR matrix of shape (sum n_t, d + 1)
        The features with the task label appended as the **last** column, so
        estimators take it with ``task_col=-1``.  Sparse if any input is sparse.
        With string labels a dense ``X`` has ``dtype=object``.
    y : ndarray of shape (sum n_t,)

    Examples
    --------
    >>> import numpy as np
    >>> from mtlinear import stack_tasks
    >>> X, y = stack_tasks([np.ones((2, 3)), np.zeros((3, 3))], [[1, 2], [3, 4, 5]])
    >>> X.shape, y.shape, X[:, -1]
    ((5, 4), (5,), array([0., 0., 1., 1., 1.]))
    """
    if len(X_list) != len(y_list):
        raise ValueError(f"stack_tasks got {len(X_list)} feature arrays but "
                         f"{len(y_list)} target arrays; give one of each per task.")
    if len(X_list) == 0:
        raise ValueError("stack_tasks needs at least one task.")
    labels = np.arange(len(X_list)) if task_labels is None else np.asarray(task_labels)
    if labels.shape != (len(X_list),):
        raise ValueError(f"task_labels must have one label per task "
                         f"({len(X_list)}), got shape {labels.shape}.")
    if np.unique(labels).size != labels.size:
        raise ValueError("task_labels has repeated labels, which would merge "
                         "those tasks into one; give each task its own label.")
    blocks, ys = [], []
    n_features = None
    for t, (Xt, yt) in enumerate(zip(X_list, y_list)):
        Xt = Xt if sp.issparse(Xt) else np.atleast_2d(np.asarray(Xt))
        yt = np.asarray(yt).reshape(-1)
        if Xt.ndim != 2 or Xt.shape[0] != yt.shape[0]:
            raise ValueError(f"Task {t}: X has shape {Xt.shape} but y has "
                             f"{yt.shape[0]} values; each X_t must be (n_t, d) "
                             "with n_t targets.")
        if n_features is None:
            n_features = Xt.shape[1]
        elif Xt.shape[1] != n_features:
            raise ValueError(f"Task {t} has {Xt.shape[1]} features but task 0 has "
                             f"{n_features}; every task needs the same features.")
        blocks.append(Xt)
        ys.append(yt)
    counts = [b.shape[0] for b in blocks]
    label_col = np.repeat(labels, counts)
    if any(sp.issparse(b) for b in blocks):
        if label_col.dtype.kind not in "biuf":
            raise ValueError("Sparse features need numeric task labels.")
        X = sp.hstack([sp.vstack(blocks), label_col[:, None].astype(float)],
                      format="csr")
    else:
        features = np.vstack(blocks)
        if label_col.dtype.kind in "biuf":
            X = np.column_stack([features, label_col.astype(float)])
        else:
            X = np.empty((features.shape[0], n_features + 1), dtype=object)
            X[:, :-1] = features
            X[:, -1] = label_col
    return X, np.concatenate(ys)


def shared_to_stacked(X, Y, sample_weight):
    """The shared layout as stacked tasks: ``X`` repeated once per column of ``Y``.

    For per-task sample weights (``sample_weight`` of shape (n, T)), which the
    shared design, with one weight per sample, cannot hold.  Returns
    ``(X_stacked, y, task_index, sample_weight)``; costs ``T`` copies of ``X``.
    """
    n, T = Y.shape
    X_stacked = (sp.vstack([X] * T, format="csr") if sp.issparse(X)
                 else np.tile(X, (T, 1)))
    return (X_stacked, Y.T.reshape(-1), np.repeat(np.arange(T), n),
            np.asarray(sample_weight, dtype=float).T.reshape(-1))


def _is_dataframe(X):
    return hasattr(X, "columns") and hasattr(X, "iloc")


def split_task_column(X, task_col, columns=False):
    """Separate the task-label column from the features.

    Returns ``(features, labels)`` where ``features`` is what remains of ``X``
    (same container type, not yet validated) and ``labels`` a 1-d array.
    ``X`` itself is never modified.  A dense array's features are a view of
    it when the task column is the first or the last (no copy: a fit's one
    copy is :func:`build_problem`'s regrouping), a copy otherwise.  A
    sparse ``X``'s features are CSR when ``X`` is, unless ``columns``: then
    CSC with sorted indices, made from a CSR in one pass, the one copy of a
    fit whose solver reads columns (:func:`mtlinear._solve.reads_rows`); a
    CSC ``X``'s are CSC, views of it when the task column is the first or
    the last.
    """
    if _is_dataframe(X):
        columns = list(X.columns)
        if isinstance(task_col, str):
            if task_col not in columns:
                raise ValueError(f"task_col={task_col!r} is not a column of X; "
                                 f"X has columns {columns[:20]}.")
            j = columns.index(task_col)
        else:
            j = _check_column_index(task_col, len(columns))
        return X.drop(columns=X.columns[j]), X.iloc[:, j].to_numpy()
    if isinstance(task_col, str):
        raise ValueError(f"task_col={task_col!r} is a column name, but X has no "
                         "column names; pass a pandas DataFrame or an integer "
                         "column index.")
    if sp.issparse(X):
        j = _check_column_index(task_col, X.shape[1])
        if X.format == "csr":
            return (_split_csr_column_to_csc if columns
                    else _split_csr_column)(X, j)
        return _split_csc_column(X.tocsc(), j)
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"With task_col, X must be 2-d (samples x columns), "
                         f"got shape {X.shape}.")
    j = _check_column_index(task_col, X.shape[1])
    return _other_columns(X, j), X[:, j]


def _split_csr_column(X, j):
    """``(X without column j, column j)`` of a CSR matrix, staying in CSR
    (the fit's format: no round trip through CSC), in one compiled pass.
    Entries keep their order, so sorted indices stay sorted; duplicates of
    the task column's entry are summed, as scipy would."""
    data, indices, indptr, labels = _drop_csr_column(
        X.data, X.indices, unsigned_view(X.indptr), j)
    return (sp.csr_matrix((data, indices, indptr.view(X.indptr.dtype)),
                          shape=(X.shape[0], X.shape[1] - 1)), labels)


@njit(cache=True)
def _drop_csr_column(data, indices, indptr, j):
    n = indptr.size - 1
    labels = np.zeros(n, dtype=data.dtype)
    out_data = np.empty_like(data)
    out_indices = np.empty_like(indices)
    out_ptr = np.empty_like(indptr)
    out_ptr[0] = 0
    m = 0
    for i in range(n):
        for k in range(indptr[i], indptr[i + 1]):
            c = indices[k]
            if c == j:
                labels[i] += data[k]
            else:
                out_data[m] = data[k]
                out_indices[m] = c - 1 if c > j else c
                m += 1
        out_ptr[i + 1] = m
    return out_data[:m], out_indices[:m], out_ptr, labels


def _split_csc_column(X, j):
    """``(X without column j, column j)`` of a CSC matrix: the features are
    views of its arrays when ``j`` is the first or the last column (no
    copy: the solvers never write to a design's arrays), a copy otherwise;
    duplicates of the task column's entries are summed, as scipy would."""
    lo, hi = X.indptr[j], X.indptr[j + 1]
    labels = np.bincount(X.indices[lo:hi], weights=X.data[lo:hi],
                         minlength=X.shape[0]).astype(X.dtype, copy=False)
    n, width = X.shape
    if j == width - 1:
        parts = X.data[:lo], X.indices[:lo], X.indptr[:j + 1]
    elif j == 0:
        parts = X.data[hi:], X.indices[hi:], X.indptr[1:] - hi
    else:
        return X[:, np.delete(np.arange(width), j)], labels
    features = sp.csc_matrix(parts, shape=(n, width - 1))
    # whole columns kept: their order within each is X's (scipy caches the
    # flag on X, so checking it again costs a pass over the indices per fit)
    features.has_sorted_indices = X.has_sorted_indices
    return features, labels


def _split_csr_column_to_csc(X, j):
    """``(X without column j, column j)`` of a CSR matrix, the features as
    CSC with sorted indices, in one compiled pass (see
    :func:`_split_csr_column`): column ``j`` is moved last, and the features
    are the others' part of the arrays (views)."""
    width = X.shape[1]
    move = np.arange(width) - (np.arange(width) > j)
    move[j] = width - 1
    # the CSC's indices are row numbers, its offsets count the same entries
    index = np.int32 if max(X.shape[0], X.nnz) < 2 ** 31 else np.int64
    data, indices, indptr, labels = _csr_to_csc_moved(
        X.data, unsigned_view(X.indices), unsigned_view(X.indptr),
        unsigned_view(move.astype(index)))
    m = indptr[width - 1]
    C = sp.csc_matrix((data[:m], indices[:m].view(index),
                       indptr[:width].view(index)),
                      shape=(X.shape[0], width - 1))
    C.has_sorted_indices = True  # each column filled in row order
    return C, labels


@njit(cache=True)
def _csr_to_csc_moved(data, indices, indptr, move):
    """The CSC arrays of the CSR matrix ``(data, indices, indptr)`` with
    column ``c`` moved to ``move[c]``, and the last column's values summed
    per row.  Unsigned indices: no branch, no wrap-around test, per entry."""
    n, width = indptr.size - 1, move.size
    out_ptr = np.zeros(width + 1, dtype=move.dtype)
    one = np.uint64(1)  # unsigned sums: never promoted to float
    for k in range(indptr[n]):
        out_ptr[move[indices[k]] + one] += 1
    for c in range(width):
        out_ptr[c + 1] += out_ptr[c]
    out_data = np.empty(out_ptr[width], dtype=data.dtype)
    out_indices = np.empty(out_ptr[width], dtype=move.dtype)
    fill = out_ptr[:width].copy()
    for i in range(n):  # rows in order: each column's indices come sorted
        for k in range(indptr[i], indptr[i + 1]):
            c = move[indices[k]]
            at = fill[c]
            out_data[at] = data[k]
            out_indices[at] = i
            fill[c] = at + one
    last = np.zeros(n, dtype=data.dtype)
    for k in range(out_ptr[width - 1], out_ptr[width]):
        last[out_indices[k]] += out_data[k]
    return out_data, out_indices, out_ptr, last


def _other_columns(X, j):
    """The columns of the dense ``X`` but ``j``: a view when ``j`` is at an
    edge, else a copy (no view skips a middle column)."""
    if j == X.shape[1] - 1:
        return X[:, :j]
    if j == 0:
        return X[:, 1:]
    return np.delete(X, j, axis=1)


def _check_column_index(task_col, n_columns):
    if not isinstance(task_col, numbers.Integral) or isinstance(task_col, bool):
        raise ValueError(f"task_col must be an integer column index or a column "
                         f"name, got {task_col!r}.")
    if not -n_columns <= task_col < n_columns:
        raise ValueError(f"task_col={task_col} is out of range: X has "
                         f"{n_columns} columns (the task column must be one of "
                         "them).")
    return int(task_col) % n_columns


def _normalize_labels(labels):
    """Integral floats become ints; strings stay; anything else is an error."""
    labels = np.asarray(labels)
    if labels.dtype.kind == "O":
        if all(isinstance(v, str) for v in labels):
            return labels.astype(str)
        try:
            labels = labels.astype(float)
        except (TypeError, ValueError):
            raise ValueError("Task labels must be all strings or all integers; "
                             "got a mix of types in the task column.") from None
    if labels.dtype.kind == "f":
        if not np.all(np.isfinite(labels)):
            raise ValueError("The task column contains NaN or infinity; every "
                             "row needs a task label.")
        if not np.all(labels == np.round(labels)):
            bad = labels[labels != np.round(labels)][:5]
            raise ValueError(f"Task labels must be integers or strings, got "
                             f"non-integral values such as {bad.tolist()}; is "
                             "task_col pointing at a feature column?")
        if labels.size and float(np.abs(labels).max()) >= 2.0 ** 53:
            # beyond 2**53 a float no longer holds every integer, and beyond
            # 2**63 the conversion would wrap: distinct tasks would merge
            raise ValueError("Task labels stored as floats must be below 2**53 "
                             "in magnitude to be read as integers exactly; give "
                             "large labels as integers or strings.")
        return labels.astype(np.int64)
    if labels.dtype.kind in "biuU":
        return labels
    raise ValueError(f"Task labels of dtype {labels.dtype} are not supported; "
                     "use integers or strings.")


def encode_task_labels(labels, known=None, unseen_index=None):
    """Return ``(tasks, index)``: sorted distinct labels and each row's position.

    With ``known`` (the labels seen in fit), a label outside it is an error,
    or gets ``unseen_index`` when given.
    """
    labels = _normalize_labels(labels)
    if known is None:
        return np.unique(labels, return_inverse=True)
    if known.dtype.kind != labels.dtype.kind and not (
            known.dtype.kind in "iu" and labels.dtype.kind in "iu"):
        raise ValueError(f"Task labels at predict time are {labels.dtype.kind!r}-"
                         f"typed but fit saw {known.dtype.kind!r}-typed labels "
                         f"{known[:5].tolist()}.")
    index = np.searchsorted(known, labels)
    index_ok = np.minimum(index, known.size - 1)
    unseen = (index >= known.size) | (known[index_ok] != labels)
    if unseen_index is not None:
        return known, np.where(unseen, unseen_index, index)
    if np.any(unseen):
        raise ValueError(f"Task labels {np.unique(labels[unseen])[:10].tolist()} "
                         "were not seen in fit; a model exists only for the "
                         f"tasks {known[:10].tolist()}"
                         f"{'...' if known.size > 10 else ''}. Set "
                         "unseen_task='mean' to predict them with the mean "
                         "of the task models. (In cross-validation, folds "
                         "that keep every task's rows in training: "
                         "mtlinear.TaskStratifiedKFold, or KFold(shuffle=True); "
                         "KFold without shuffling holds out whole tasks when "
                         "the rows are grouped by task.)")
    return known, index


def set_task_labels(estimator, labels):
    """``estimator.tasks_``: the sorted task labels of a stacked-layout fit;
    ``labels=None`` (the shared layout) removes a previous fit's."""
    if labels is None:
        vars(estimator).pop("tasks_", None)
    else:
        estimator.tasks_ = labels


def check_task_weights(task_weights, tasks):
    """Task weights ``omega`` as an array in the order of ``tasks``.

    A mapping (a dict, or a pandas Series by its index) is read by task label;
    an array is read in the order of the sorted labels.
    """
    n_tasks = len(tasks)
    if task_weights is None:
        return np.ones(n_tasks)
    if hasattr(task_weights, "index") and hasattr(task_weights, "to_dict"):
        # a Series: its labels, not its order (value_counts() sorts by count)
        if not task_weights.index.is_unique:
            raise ValueError("task_weights is a Series with repeated labels; "
                             "give one weight per task label.")
        task_weights = task_weights.to_dict()
    if isinstance(task_weights, dict):
        omega = np.ones(n_tasks)
        positions = {label: k for k, label in enumerate(np.asarray(tasks).tolist())}
        for label, weight in task_weights.items():
            key = label.item() if isinstance(label, np.generic) else label
            if key not in positions:
                raise ValueError(f"task_weights names task {label!r}, which is "
                                 f"not among the tasks {list(positions)[:10]}.")
            omega[positions[key]] = weight
    else:
        omega = np.asarray(task_weights, dtype=float)
        if omega.shape != (n_tasks,):
            raise ValueError(f"task_weights has shape {omega.shape} but there are "
                             f"{n_tasks} tasks; give one weight per task in the "
                             "order of the sorted task labels, or a dict.")
    if not np.all(np.isfinite(omega)) or np.any(omega < 0):
        raise ValueError("task_weights must be finite and non-negative.")
    if not np.any(omega > 0):
        raise ValueError("task_weights are all zero; at least one task must "
                         "have a positive weight.")
    return omega


# magnitudes whose squares, summed over many samples, stay far from float64's
# overflow (1.8e308) and underflow (2.2e-308) thresholds
_LARGEST = 1e100
_SMALLEST = 1e-100


def _magnitudes(A, block=2 ** 18):
    """Largest and smallest nonzero ``|a|`` of a dense or sparse array: one
    compiled pass over its values when they are contiguous, else by blocks
    of rows of about ``block`` values (no copy of the whole array)."""
    A = A.data if sp.issparse(A) else np.asarray(A)
    if A.dtype.kind != "f":
        A = A.astype(float)
    if A.flags.c_contiguous or A.flags.f_contiguous:
        largest, smallest = _abs_range(A.ravel(order="K"))
    else:
        largest, smallest = 0.0, np.inf
        rows = max(1, block // max(1, int(np.prod(A.shape[1:]))))
        for start in range(0, A.shape[0], rows):
            high, low = _abs_range(A[start:start + rows].ravel())
            largest, smallest = max(largest, high), min(smallest, low)
    return float(largest), (0.0 if smallest == np.inf else float(smallest))


_LANES = 8  # independent running extremes: the loop runs in SIMD lanes


@njit(cache=True)
def _abs_range(values):
    # NaN fails both comparisons: finiteness is checked elsewhere
    high = np.zeros(_LANES)
    low = np.full(_LANES, np.inf)
    stop = values.size - values.size % _LANES
    for start in range(0, stop, _LANES):
        for lane in range(_LANES):
            a = abs(values[start + lane])
            high[lane] = a if a > high[lane] else high[lane]
            low[lane] = a if 0.0 < a < low[lane] else low[lane]
    for i in range(stop, values.size):
        a = abs(values[i])
        high[0] = a if a > high[0] else high[0]
        low[0] = a if 0.0 < a < low[0] else low[0]
    return high.max(), low.min()


def check_scales(X, Y, task_weights):
    """``ValueError`` for values whose products would overflow or underflow
    in the solvers' sums of squares (silent zeros or NaN otherwise).

    Sample weights need no check: they are rescaled to a largest weight of
    1, which leaves the objective unchanged (each task's loss is a weighted
    mean).
    """
    for name, values, remedy in [
            ("X", X, "Scale the features (for instance with "
                     "sklearn.preprocessing.StandardScaler in a Pipeline)."),
            ("y", Y, "Divide y by a constant (and multiply the predictions "
                     "back)."),
            ("task_weights", task_weights,
             "They are relative: divide them by their largest value and alpha "
             "by the same.")]:
        if values is None:
            continue
        largest, smallest = _magnitudes(values)
        if largest > _LARGEST or 0 < smallest < _SMALLEST:
            raise ValueError(
                f"{name} has values of magnitude {largest:.3g} (largest) and "
                f"{smallest:.3g} (smallest nonzero); the solvers need them "
                f"between {_SMALLEST:g} and {_LARGEST:g} to compute sums of "
                f"squares in float64 without overflow or underflow. {remedy}")


@dataclass
class TaskProblem:
    """The internal task data: everything a solver needs.

    Attributes
    ----------
    design : SharedDesign or StackedDesign
        ``W -> X W`` (implicitly centred when fitting intercepts).
    y : ndarray
        Targets in the layout's sample shape (centred for the squared loss with
        an intercept; in ``{-1, 1}`` for classification).
    v : ndarray
        Per-sample weights ``omega_t s_i / n_t``, same shape as ``y``.
    fit_intercept : bool
    intercept_variable : bool
        Whether the solver optimizes an intercept per task (non-squared
        losses with ``fit_intercept``).
    x_mean : ndarray of shape (T, d) or None
    y_mean : ndarray of shape (T,) or None
    cache : dict
        What solvers derive from the data once (Gram statistics, Lipschitz
        constants), reused across the solves of a regularization path.
    reduction : Reduction or None
        With unpenalized features, how the solvers' problem (the penalized
        features, see :mod:`mtlinear._unpenalized`) maps back to all of them.
    n_classes : int
        ``K`` of a multinomial problem, whose columns are the classes of the
        tasks (see :mod:`mtlinear._multinomial`); 0 otherwise.
    scores_only : bool
        The solutions serve held-out scores only (a cross-validation fold):
        Newton-CG stops on the duality gap alone, without the rule on
        coefficient changes that fitted models get (the gap still bounds
        the objective's error by ``tol`` times its value at zero).
    n_solves : int
        How many solves share the problem (the alphas of a path, set by
        :func:`mtlinear._path.path_on_problem`): a solver that can factor the
        data once for all of them (the direct ridge's eigendecompositions)
        weighs its cost against it.
    """

    design: object
    y: np.ndarray
    v: np.ndarray
    fit_intercept: bool
    intercept_variable: bool
    x_mean: np.ndarray = None
    y_mean: np.ndarray = None
    cache: dict = field(default_factory=dict, repr=False)
    reduction: object = None
    n_classes: int = 0
    scores_only: bool = False
    n_solves: int = 1

    @property
    def n_tasks(self):
        return self.design.n_tasks

    @property
    def n_features(self):
        return self.design.n_features

    def intercepts(self, W, b):
        """Intercepts of the original (uncentred) problem."""
        T = self.n_tasks
        out = np.zeros(T) if b is None else np.array(b, dtype=float)
        if self.y_mean is not None:
            out += self.y_mean
        if self.x_mean is not None:
            out -= np.einsum("tj,jt->t", self.x_mean, W)
        return out

    @property
    def n_features_in(self):
        """Features of the user's problem (the solvers may see fewer)."""
        return self.n_features if self.reduction is None else self.reduction.n_features

    @property
    def penalized(self):
        """Indices of the solvers' features among the user's (``None``: all)."""
        return None if self.reduction is None else self.reduction.kept

    def full_solution(self, W, b):
        """``(W (d, T), intercepts (T,))`` of the user's problem from a
        solver's ``(W, b)``."""
        if self.reduction is not None:
            return self.reduction.full_solution(W)
        return W, self.intercepts(W, b)

    def solver_start(self, W, intercept):
        """A solver's ``(W, b)`` from the user's ``W`` (d, T) and intercepts
        (a warm start)."""
        if self.reduction is not None:
            return W[self.reduction.kept], None
        return W, self.solver_intercept(W, intercept)

    def solver_intercept(self, W, intercept):
        """Inverse of :meth:`intercepts` for the solver's own variable."""
        if not self.intercept_variable:
            return None
        b = np.array(intercept, dtype=float)
        if self.x_mean is not None:
            b += np.einsum("tj,jt->t", self.x_mean, W)
        return b


def build_problem(X, Y, task_index=None, n_tasks=None, sample_weight=None,
                  task_weights=None, fit_intercept=True, center_targets=True,
                  unpenalized=None):
    """Build a :class:`TaskProblem` from validated arrays.

    Parameters
    ----------
    X : ndarray or sparse matrix, shape (n, d), float64, finite
        In the stacked layout a dense ``X`` (in any memory order, a view
        included) is used in place when its rows are grouped by task, else
        regrouped into one Fortran-ordered copy (:func:`group_rows`).
    Y : ndarray, shape (n, T) for the shared layout or (n,) with ``task_index``
    task_index : ndarray of int, shape (n,), optional
        Task of each row (stacked layout).  ``None`` means shared design.
    n_tasks : int, optional
        Number of tasks in the stacked layout (default ``task_index.max() + 1``).
    sample_weight : ndarray of shape (n,), optional
        Non-negative; each task needs a positive total.
    task_weights : ndarray of shape (T,), optional
        Non-negative ``omega_t``.
    fit_intercept : bool
    center_targets : bool
        Centre ``Y`` per task (squared loss): the intercept leaves the solve.
        Otherwise the solver keeps an intercept variable.
    unpenalized : array-like of int, optional
        Features without penalty (squared loss only): partialled out with
        the intercept (:mod:`mtlinear._unpenalized`); the solvers see the
        others.

    The inputs are not modified.
    """
    check_scales(X, Y, task_weights)
    if unpenalized is not None and len(unpenalized):
        return _build_reduced(X, Y, task_index, n_tasks, sample_weight,
                              task_weights, fit_intercept, center_targets,
                              unpenalized)
    n = X.shape[0]
    s = np.ones(n) if sample_weight is None else np.asarray(sample_weight, float)
    if task_index is None:
        if s.size and s.max() > 0:
            s = s / s.max()  # the objective is invariant; see check_scales
        T = Y.shape[1]
        omega = np.ones(T) if task_weights is None else task_weights
        total = s.sum()
        if total <= 0:
            raise ValueError("sample_weight sums to zero; at least one sample "
                             "needs a positive weight.")
        v = s[:, None] * (omega / total)[None, :]
        x_mean = weighted_mean_rows(X, s) if fit_intercept else None
        design = SharedDesign(X, T, x_mean)
        y_mean = None
        y = np.asarray(Y, dtype=float)
        if fit_intercept and center_targets:
            y_mean = (s @ y) / total
            y = y - y_mean
        x_mean_tasks = None if x_mean is None else np.tile(x_mean, (T, 1))
    else:
        T = int(task_index.max()) + 1 if n_tasks is None else n_tasks
        grouped = bool(np.all(task_index[1:] >= task_index[:-1]))
        order = slice(None) if grouped else np.argsort(task_index, kind="stable")
        counts = np.bincount(task_index, minlength=T)
        task_ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        if sp.issparse(X):
            # CSC stays CSC (for coordinate access; the design sorts its
            # indices), any other format becomes CSR
            X = X if grouped else X[order]
            X = X if X.format == "csc" else sp.csr_matrix(X)
        elif not grouped:  # rows already grouped are used in place
            X = group_rows(X, order)
        y = np.asarray(Y, dtype=float)[order]
        s = _per_task_unit_max(s[order], counts)
        del order  # sample-sized arrays count next to the one copy of X
        n_t = np.add.reduceat(s, task_ptr[:-1])
        if np.any(n_t <= 0):
            raise ValueError("sample_weight is zero on every sample of some task; "
                             "each task needs a positive total weight.")
        omega = np.ones(T) if task_weights is None else task_weights
        v = np.repeat(omega / n_t, counts)
        v *= s
        design = StackedDesign(X, task_ptr)
        x_mean_tasks = y_mean = None
        if fit_intercept:
            # the stacked products, not a sparse averaging matrix: scipy's
            # sparse @ dense copies a dense operand not in C order
            mean_weights = np.repeat(n_t, counts)
            np.divide(s, mean_weights, out=mean_weights)
            x_mean_tasks = design.rmatmat(mean_weights).T
            design.x_mean = x_mean_tasks
            if center_targets:
                y_mean = design.task_sum(mean_weights * y)
                y = y - np.repeat(y_mean, counts)
    return TaskProblem(design=design, y=y, v=v, fit_intercept=fit_intercept,
                       intercept_variable=fit_intercept and not center_targets,
                       x_mean=x_mean_tasks, y_mean=y_mean)


def _per_task_unit_max(s, counts):
    """The sample weights ``s`` (grouped by task, ``counts`` rows each)
    divided by their largest value in each task: each task's loss is a
    weighted mean, so only their ratios within a task count, and tasks
    weighted ``1e200`` and ``1e-200`` do not underflow to zero."""
    top = np.ones(counts.size)
    nonempty = counts > 0
    if s.size:
        top[nonempty] = np.maximum.reduceat(
            s, np.cumsum(counts)[nonempty] - counts[nonempty])
    top[top <= 0] = 1.0  # a task of zero weight: an error below
    return s / np.repeat(top, counts)


_GATHER_ROWS = 4096  # rows regrouped at a time


def group_rows(X, order, skip_column=None):
    """``X[order]`` (without column ``skip_column``) as a new
    Fortran-ordered float64 array, the one copy of a fit's dense stacked
    design.

    Filled by blocks of rows (a block's gather is a small temporary in
    ``X``'s dtype, converted as it is written): ``X`` may be any strided
    view, such as the features beside the user's task column, or the user's
    array itself with its task column skipped, which is thus read once and
    never copied whole before.  ``order=None`` keeps the rows in place.
    Fortran order keeps each task's block of a column contiguous, as
    proximal Newton's coordinate updates need (the design and its column
    access then share the array).
    """
    n, width = X.shape
    j = skip_column
    out = np.empty((n, width - (j is not None)), dtype=np.float64, order="F")
    for start in range(0, n, _GATHER_ROWS):
        stop = min(start + _GATHER_ROWS, n)
        block = X[start:stop] if order is None else X[order[start:stop]]
        if j is None:
            out[start:stop] = block
        else:
            out[start:stop, :j] = block[:, :j]
            out[start:stop, j:] = block[:, j + 1:]
    return out


def task_ordered_features(X, j, task_index):
    """The features of the dense ``X`` (every column but the task column
    ``j``) with the rows grouped by task: ``(features, order)``.

    A fit's objective is a sum over rows, so it may take them in any order;
    in task order they are the stacked design's own array
    (:func:`build_problem` uses grouped rows in place), made in one pass
    over the user's ``X`` however its columns lie and whatever its numeric
    dtype, instead of a validated copy and then a regrouped one.  ``order``
    is the rows' permutation (``None``: kept in place); the other per-row
    arrays of the fit must follow it.  ``X`` is not modified; finiteness is
    the caller's check.
    """
    grouped = bool(np.all(task_index[1:] >= task_index[:-1]))
    order = None if grouped else np.argsort(task_index, kind="stable")
    if grouped and X.dtype == np.float64 and j in (0, X.shape[1] - 1):
        return _other_columns(X, j), None  # a view: nothing to copy
    return group_rows(X, order, skip_column=j), order


def _build_reduced(X, Y, task_index, n_tasks, sample_weight, task_weights,
                   fit_intercept, center_targets, unpenalized):
    """:func:`build_problem` with unpenalized features partialled out."""
    if not center_targets:
        raise ValueError(
            "penalty_factor has zeros (unpenalized features), which are "
            "supported with the squared loss only; for this loss give them a "
            "small positive factor instead.")
    if len(unpenalized) >= X.shape[1]:
        raise ValueError("penalty_factor is zero for every feature: nothing is "
                         "penalized. Give at least one feature a positive "
                         "factor (or use an unpenalized linear model).")
    if task_index is not None and n_tasks is None:
        n_tasks = int(task_index.max()) + 1
    X_red, Y_red, reduction = partial_out(X, Y, task_index, n_tasks,
                                          sample_weight, unpenalized,
                                          fit_intercept)
    problem = build_problem(X_red, Y_red, task_index, n_tasks, sample_weight,
                            task_weights, fit_intercept=False,
                            center_targets=True)
    problem.reduction = reduction
    return problem
