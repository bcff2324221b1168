"""Which tasks help each other: task relatedness and the gain of sharing.

:func:`task_relatedness` reads a fitted model's view of how its tasks
relate (the correlation of their weight vectors, a learned task
correlation, or the task graph it was given); :func:`sharing_gain` measures,
by cross-validation, what fitting the tasks jointly buys each task over
fitting it alone.  :func:`mtlinear.plotting.plot_task_relatedness` draws
the first as a clustered heatmap.
"""
import warnings
from dataclasses import dataclass
from numbers import Integral

import numpy as np
from sklearn.base import clone, is_classifier, is_regressor
from sklearn.metrics import (accuracy_score, mean_squared_error, r2_score,
                             roc_auc_score)
from sklearn.model_selection import KFold
from sklearn.utils import _safe_indexing, check_random_state
from sklearn.utils.validation import check_is_fitted

from ._task_data import _normalize_labels, check_task_weights, split_task_column
from .model_selection import RepeatedTaskStratifiedKFold, TaskStratifiedKFold

__all__ = ["task_relatedness", "sharing_gain", "SharingGain"]

_KINDS = ("auto", "coef", "covariance", "graph")


# ====================================================================
# task_relatedness
# ====================================================================
def task_relatedness(model, kind="auto"):
    r"""Task-by-task relatedness of a fitted multi-task model.

    Parameters
    ----------
    model : fitted mtlinear estimator or array-like of shape (n_tasks, n_features)
        A fitted estimator with ``coef_`` (one row of weights per task, in
        the order of ``tasks_`` in the stacked layout, of the columns of
        ``y`` in the shared layout; multiclass tasks, ``coef_`` of shape
        (n_tasks, n_classes, n_features): a task's classes' weights taken
        as one vector), or such a weight matrix itself (then only
        ``kind="coef"`` applies).
    kind : {"auto", "coef", "covariance", "graph"}, default="auto"
        ``"coef"``: the Pearson correlation of the tasks' weight vectors
        (rows of ``coef_``),

        .. math::

            \rho_{st} = \frac{\sum_j (w_{sj} - \bar w_s)(w_{tj} - \bar w_t)}
            {\|w_s - \bar w_s \mathbf 1\|_2 \, \|w_t - \bar w_t \mathbf 1\|_2},
            \qquad \bar w_t = \frac1d \sum_j w_{tj}.

        A task whose weights are constant (all zero, typically: a task the
        penalty switched off) has no direction to compare; it gets
        correlation 0 with every other task and 1 with itself, so the
        result never holds NaN.

        ``"covariance"``: the task correlation the model learned, its
        ``task_correlation_`` attribute (or, when it exposes only
        ``task_covariance_`` ``Sigma``, ``Sigma_st / sqrt(Sigma_ss
        Sigma_tt)``).

        ``"graph"``: the adjacency weights ``A`` of the task graph the model
        was fitted with (its ``task_graph_``, from the ``task_graph``
        parameter): symmetric, non-negative, zero diagonal, and in the
        graph's own scale rather than in ``[-1, 1]``.

        ``"auto"``: ``"covariance"`` when the model learned one, else
        ``"coef"``.

    Returns
    -------
    ndarray of shape (n_tasks, n_tasks)
        A new array (changing it leaves the model unchanged).

    Raises
    ------
    ValueError
        For an unknown ``kind``, a model without the attribute ``kind``
        asks for, or a weight matrix that is not 2-d and finite.

    Examples
    --------
    >>> import numpy as np
    >>> from mtlinear.inspection import task_relatedness
    >>> W = np.array([[1.0, 2.0, 3.0],    # three tasks' weights, and a
    ...               [2.0, 4.0, 5.0],    # fourth task switched off
    ...               [3.0, 2.0, 1.0],
    ...               [0.0, 0.0, 0.0]])
    >>> np.round(task_relatedness(W), 2)
    array([[ 1.  ,  0.98, -1.  ,  0.  ],
           [ 0.98,  1.  , -0.98,  0.  ],
           [-1.  , -0.98,  1.  ,  0.  ],
           [ 0.  ,  0.  ,  0.  ,  1.  ]])
    """
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {list(_KINDS)}, got {kind!r}.")
    if not _is_model(model):
        if kind not in ("auto", "coef"):
            raise ValueError(f"kind={kind!r} reads an attribute of a fitted "
                             "model; a weight matrix gives only kind='coef'.")
        return _weight_correlation(_check_weights(model, "model"))
    check_is_fitted(model, "coef_")
    coef = _check_weights(model.coef_, "model.coef_")
    if kind == "auto":
        kind = "covariance" if _has_learned_covariance(model) else "coef"
    if kind == "coef":
        return _weight_correlation(coef)
    if kind == "covariance":
        return _learned_correlation(model, coef.shape[0])
    return _task_graph(model, coef.shape[0])


def _is_model(obj):
    """An estimator (fitted or not), as opposed to a weight matrix."""
    return hasattr(obj, "get_params") or hasattr(obj, "coef_")


def _check_weights(W, name):
    W = np.asarray(W.toarray() if hasattr(W, "toarray") else W, dtype=float)
    if W.ndim == 3:  # multiclass tasks: a task's classes' weights, one vector
        W = W.reshape(W.shape[0], -1)
    if W.ndim != 2:
        raise ValueError(f"{name} must be 2-d, (n_tasks, n_features); got "
                         f"shape {W.shape}.")
    if W.shape[0] == 0:
        raise ValueError(f"{name} has no task (shape {W.shape}).")
    if not np.all(np.isfinite(W)):
        raise ValueError(f"{name} holds NaN or infinite weights.")
    return W


def _weight_correlation(W):
    """Pearson correlation of the rows of ``W``; a constant row is
    uncorrelated with the others (0) and correlated with itself (1)."""
    centred = W - W.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(centred, axis=1)
    # the mean of a constant row may differ from its entries in the last
    # bit: a norm at rounding level relative to the row's size is zero
    scale = np.sqrt(W.shape[1]) * np.abs(W).max(axis=1)
    constant = norms <= 64 * np.finfo(float).eps * scale
    return _normalized(centred @ centred.T, norms, constant)


def _normalized(gram, scales, degenerate):
    """``gram_st / (scale_s scale_t)`` clipped to [-1, 1], with the rows and
    columns of the ``degenerate`` tasks set to those of the identity."""
    safe = np.where(degenerate, 1.0, scales)
    corr = np.clip(gram / np.outer(safe, safe), -1.0, 1.0)
    corr[degenerate, :] = 0.0
    corr[:, degenerate] = 0.0
    np.fill_diagonal(corr, 1.0)
    return corr


def _has_learned_covariance(model):
    return (getattr(model, "task_correlation_", None) is not None
            or getattr(model, "task_covariance_", None) is not None)


def _learned_correlation(model, n_tasks):
    correlation = getattr(model, "task_correlation_", None)
    if correlation is not None:
        return _check_task_matrix(correlation, "task_correlation_", n_tasks)
    covariance = getattr(model, "task_covariance_", None)
    if covariance is None:
        raise ValueError(
            f"kind='covariance' needs a model that learns a task covariance; "
            f"{type(model).__name__} has no attribute 'task_correlation_' (nor "
            "'task_covariance_'). Use kind='coef' for the correlation of its "
            "weight vectors.")
    covariance = _check_task_matrix(covariance, "task_covariance_", n_tasks)
    variances = np.diag(covariance)
    return _normalized(covariance, np.sqrt(np.clip(variances, 0.0, None)),
                       variances <= 0)


def _task_graph(model, n_tasks):
    graph = getattr(model, "task_graph_", None)
    if graph is None:
        raise ValueError(
            f"kind='graph' needs a model fitted with a task graph; "
            f"{type(model).__name__} has no attribute 'task_graph_' (set its "
            "task_graph parameter). Use kind='coef' for the correlation of its "
            "weight vectors.")
    return _check_task_matrix(graph, "task_graph_", n_tasks)


def _check_task_matrix(matrix, name, n_tasks):
    matrix = np.array(matrix.toarray() if hasattr(matrix, "toarray") else matrix,
                      dtype=float)  # a copy: the model's attribute stays as is
    if matrix.shape != (n_tasks, n_tasks):
        raise ValueError(f"The model's {name} has shape {matrix.shape}, but its "
                         f"coef_ has {n_tasks} tasks; expected ({n_tasks}, "
                         f"{n_tasks}).")
    if not np.all(np.isfinite(matrix)):
        raise ValueError(f"The model's {name} holds NaN or infinite values.")
    return matrix


# ====================================================================
# sharing_gain
# ====================================================================
@dataclass(eq=False)
class SharingGain:
    """Result of :func:`sharing_gain`: per-task cross-validated scores.

    Attributes
    ----------
    tasks : ndarray of shape (n_tasks,)
        Task labels: the sorted labels of the task column (stacked layout),
        the column names of a DataFrame ``y`` or ``0, ..., T - 1`` (shared
        layout).
    joint, independent : ndarray of shape (n_tasks,)
        Mean held-out score of the task under the joint model and under its
        own model, over the folds (and repeats) where it could be scored.
    gain : ndarray of shape (n_tasks,)
        ``joint - independent``: positive where sharing helps the task.
    gain_se : ndarray of shape (n_tasks,)
        Standard error of ``gain`` over the folds (NaN with fewer than two).
    joint_scores, independent_scores : ndarray of shape (n_tasks, n_splits)
        Every fold's score (NaN where the task could not be scored), folds
        of all repeats in order.
    scoring : str
        Name of the score (``"callable"`` for a function).
    """

    tasks: np.ndarray
    joint: np.ndarray
    independent: np.ndarray
    gain: np.ndarray
    gain_se: np.ndarray
    joint_scores: np.ndarray
    independent_scores: np.ndarray
    scoring: str

    @property
    def n_scored(self):
        """Number of folds in which each task was scored, (n_tasks,)."""
        return np.sum(np.isfinite(self.joint_scores - self.independent_scores),
                      axis=1)

    def to_frame(self):
        """The per-task results as a pandas DataFrame indexed by task.

        Returns
        -------
        pandas.DataFrame
            Columns ``joint``, ``independent``, ``gain``, ``gain_se`` and
            ``n_scored`` (the folds that count).

        Raises
        ------
        ImportError
            When pandas is not installed.
        """
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("SharingGain.to_frame needs pandas, an optional "
                              "dependency: install it with `pip install "
                              "pandas`.") from None
        return pd.DataFrame(
            {"joint": self.joint, "independent": self.independent,
             "gain": self.gain, "gain_se": self.gain_se,
             "n_scored": self.n_scored},
            index=pd.Index(self.tasks, name="task"))


@dataclass(frozen=True)
class _Scorer:
    name: str
    func: object  # score(y_true, output) -> float, NaN when undefined
    needs_decision: bool  # continuous scores rather than predictions


@dataclass(frozen=True)
class _Layout:
    """The tasks of the data: ``Y`` (n, T) one column per task (shared), or
    ``y`` (n,) with ``task_index`` the position of each row's task."""
    tasks: np.ndarray
    Y: np.ndarray
    task_index: object  # ndarray (n,) or None (shared layout)
    features: object  # X without the task column (stacked layout), else X

    @property
    def stacked(self):
        return self.task_index is not None

    def target(self, rows, t):
        """Task ``t``'s targets on ``rows``, and those rows."""
        if self.stacked:
            rows = rows[self.task_index[rows] == t]
            return self.Y[rows], rows
        y = self.Y[rows, t]
        if y.dtype.kind == "f":  # NaN: a target not observed
            keep = ~np.isnan(y)
            return y[keep], rows[keep]
        return y, rows


def sharing_gain(estimator, X, y, *, cv=5, independent=None, scoring=None,
                 n_repeats=1, random_state=None, groups=None):
    r"""Cross-validated gain of each task from fitting the tasks jointly.

    For every split ``k`` of the rows into a training and a test part,

    * the joint model, a clone of ``estimator``, is fitted on the training
      rows of all tasks;
    * each task ``t`` gets its own model (a clone of ``estimator``, or of
      ``independent``) fitted on the task's training rows alone;

    and both are scored on the task's test rows: :math:`J_{tk}` and
    :math:`I_{tk}`.  With :math:`K_t` the splits in which task ``t`` could be
    scored (``m_t`` of them),

    .. math::

        g_{tk} = J_{tk} - I_{tk}, \qquad
        \text{gain}_t = \bar g_t = \frac{1}{m_t} \sum_{k \in K_t} g_{tk},
        \qquad
        \text{gain\_se}_t = \sqrt{\frac{1}{m_t (m_t - 1)}
        \sum_{k \in K_t} (g_{tk} - \bar g_t)^2}.

    A positive gain means the other tasks' data improved the task's
    held-out score.  The folds share training rows, so the folds' gains are
    positively correlated and ``gain_se`` understates the uncertainty; read
    it as a yardstick (a gain within one or two ``gain_se`` of zero is no
    evidence either way), and use ``n_repeats`` to average out the choice of
    folds.

    Parameters
    ----------
    estimator : mtlinear estimator (unfitted)
        The multi-task model, e.g. ``MultiTaskRegressor(penalty="l21",
        alpha=0.05, task_col=-1)``.  Its ``task_col`` sets the layout.
    X : array-like, sparse matrix or DataFrame of shape (n_samples, n_columns)
        Features, plus the task column when ``estimator.task_col`` is set.
    y : array-like of shape (n_samples,) or (n_samples, n_tasks)
        Stacked layout (``task_col`` set): one target per row.  Shared layout:
        one column per task (a regressor's NaN marks a target not observed;
        it is left out of that task's fits and scores).
    cv : int or cross-validation splitter, default=5
        An integer is a number of folds: in the shared layout
        ``KFold(cv, shuffle=True)`` over the rows (every task gets the same
        folds); in the stacked layout
        :class:`~mtlinear.model_selection.TaskStratifiedKFold` ``(cv,
        shuffle=True)`` on the task labels (on the task and class for a
        classifier, so that every fold tests both classes of each task
        when it can), so that every task is in every training fold.  A
        splitter is used as given; in the stacked layout a
        ``TaskStratifiedKFold`` without ``task_col`` is given the task labels
        as ``groups``, and every task must keep a training row in every
        fold.
    independent : scikit-learn estimator, optional
        The per-task model, cloned for every task and fold (e.g.
        ``RidgeCV()``, ``LogisticRegression()``).  Default: a clone of
        ``estimator`` fitted on the task alone (with that task's
        ``task_weights`` entry and without a ``task_graph``, which need
        other tasks).  In the stacked layout the task column is dropped from
        ``X`` for an estimator without a ``task_col`` parameter set (a plain
        scikit-learn estimator) and kept for one with it (an mtlinear
        estimator).
    scoring : str or callable, optional
        ``"r2"``, ``"neg_mean_squared_error"``, ``"roc_auc"``,
        ``"accuracy"`` or a callable; higher is better.  Default: ``"r2"``
        for a regressor, ``"roc_auc"`` for a classifier.  ``"roc_auc"``
        ranks the ``decision_function`` values (``predict_proba`` of the
        larger label for an estimator without one) and is NaN for a task
        whose test rows in a fold hold a single class; ``"accuracy"``
        compares ``predict``'s labels.  A callable ``score(y_true, output)``
        gets the task's test targets and the model's outputs on them:
        predictions for a regressor, decision values (positive: the larger
        label) for a classifier; it may return NaN to leave a fold out.
        Estimators that are neither (a :class:`~mtlinear.MultiTaskEstimator`
        with mixed losses) need ``scoring``.
    n_repeats : int, default=1
        Repeats of the cross-validation with different shuffles (integer
        ``cv`` only; for a splitter use a repeated one, such as
        :class:`~mtlinear.model_selection.RepeatedTaskStratifiedKFold`).
    random_state : int, RandomState instance or None, default=None
        Seed of the shuffles of an integer ``cv``; an int makes the result
        reproducible.
    groups : array-like of shape (n_samples,), optional
        Passed to ``cv.split`` (a splitter ``cv`` only, e.g. ``GroupKFold``
        in the shared layout).

    Returns
    -------
    SharingGain
        Per-task ``joint``, ``independent``, ``gain``, ``gain_se`` and
        ``tasks``, the scores of every fold, and ``to_frame()``.

    Warns
    -----
    UserWarning
        When some task could not be scored in any fold (its gain is NaN).

    Raises
    ------
    ValueError
        For inconsistent shapes or options, and for a split whose training
        part has no row of some task.

    Examples
    --------
    >>> import numpy as np
    >>> from mtlinear import MultiTaskRegressor
    >>> from mtlinear.inspection import sharing_gain
    >>> rng = np.random.default_rng(0)
    >>> w = rng.standard_normal(20) * (np.arange(20) < 3)  # shared weights
    >>> X = rng.standard_normal((15 * 8, 20))
    >>> tasks = np.repeat(np.arange(8), 15)
    >>> y = X @ w + rng.standard_normal(len(X))
    >>> model = MultiTaskRegressor(penalty="l21", alpha=0.1, task_col=-1)
    >>> result = sharing_gain(model, np.column_stack([X, tasks]), y, cv=3,
    ...                       random_state=0)
    >>> bool(result.gain.mean() > 0)
    True
    """
    task_col = getattr(estimator, "task_col", None)
    layout = _layout(X, y, task_col)
    scorer = _resolve_scoring(scoring, estimator)
    splits = _splits(cv, n_repeats, random_state, groups, X, layout,
                     classifier=is_classifier(estimator))
    independent_X = _independent_input(X, layout, independent)
    n_tasks, n_splits = len(layout.tasks), len(splits)
    joint = np.full((n_tasks, n_splits), np.nan)
    alone = np.full((n_tasks, n_splits), np.nan)
    for k, (train, test) in enumerate(splits):
        joint[:, k] = _joint_scores(estimator, X, y, train, test, layout, scorer)
        alone[:, k] = _independent_scores(estimator, independent, independent_X,
                                          train, test, layout, scorer)
    return _summarize(layout.tasks, joint, alone, scorer.name)


# -------------------------------------------------------------- inputs
def _layout(X, y, task_col):
    n_rows = X.shape[0] if hasattr(X, "shape") else len(X)
    Y = np.asarray(y.to_numpy() if hasattr(y, "to_numpy") else y)
    if Y.ndim == 0 or Y.shape[0] != n_rows:
        raise ValueError(f"X has {n_rows} rows but y has shape {Y.shape}; give "
                         "one target (stacked layout) or one row of targets "
                         "(shared layout) per row of X.")
    if task_col is None:
        if Y.ndim > 2:
            raise ValueError(f"y must be (n_samples,) or (n_samples, n_tasks), "
                             f"got shape {Y.shape}.")
        Y = Y.reshape(n_rows, -1)
        tasks = (np.asarray(y.columns) if hasattr(y, "columns")
                 else np.arange(Y.shape[1]))
        return _Layout(tasks, Y, None, X)
    if Y.ndim != 1 and Y.shape[1:] != (1,):
        raise ValueError(f"With task_col the estimator takes one target per "
                         f"row: y must be 1-d, got shape {Y.shape}.")
    features, labels = split_task_column(X, task_col)
    tasks, task_index = np.unique(_normalize_labels(labels), return_inverse=True)
    return _Layout(tasks, Y.reshape(-1), task_index, features)


def _r2(y_true, y_pred):
    """R^2, undefined (NaN) on fewer than two rows."""
    return r2_score(y_true, y_pred) if len(y_true) >= 2 else np.nan


def _neg_mean_squared_error(y_true, y_pred):
    return -mean_squared_error(y_true, y_pred)


def _roc_auc(y_true, decision):
    """ROC AUC, undefined (NaN) unless both classes are present."""
    return (roc_auc_score(y_true, decision) if np.unique(y_true).size == 2
            else np.nan)


# name: (score(y_true, output), whether output is a continuous score)
_NAMED_SCORES = {
    "r2": (_r2, False),
    "neg_mean_squared_error": (_neg_mean_squared_error, False),
    "roc_auc": (_roc_auc, True),
    "accuracy": (accuracy_score, False),
}


def _resolve_scoring(scoring, estimator):
    if scoring is None:
        if is_regressor(estimator):
            scoring = "r2"
        elif is_classifier(estimator):
            scoring = "roc_auc"
        else:
            raise ValueError(
                f"{type(estimator).__name__} is neither a regressor nor a "
                "classifier, so sharing_gain has no default score; pass "
                f"scoring= one of {sorted(_NAMED_SCORES)} or a callable.")
    if callable(scoring):
        return _Scorer("callable", scoring, is_classifier(estimator))
    if scoring not in _NAMED_SCORES:
        raise ValueError(f"scoring must be a callable or one of "
                         f"{sorted(_NAMED_SCORES)}, got {scoring!r}.")
    func, needs_decision = _NAMED_SCORES[scoring]
    return _Scorer(scoring, func, needs_decision)


def _splits(cv, n_repeats, random_state, groups, X, layout, classifier):
    """The ``(train, test)`` pairs of every repeat, checked to train every
    task in every split (stacked layout)."""
    if not isinstance(n_repeats, Integral) or isinstance(n_repeats, bool) \
            or n_repeats < 1:
        raise ValueError(f"n_repeats must be a positive integer, got "
                         f"{n_repeats!r}.")
    if isinstance(cv, Integral) and not isinstance(cv, bool):
        if groups is not None:
            raise ValueError("groups is used only with a splitter cv (such as "
                             "GroupKFold); an integer cv builds its own folds.")
        rng = check_random_state(random_state)
        splits = []
        for seed in rng.randint(np.iinfo(np.int32).max, size=n_repeats):
            splits += _integer_cv_splits(cv, int(seed), X, layout, classifier)
    else:
        if not hasattr(cv, "split"):
            raise ValueError(f"cv must be an integer or a cross-validation "
                             f"splitter with a split method, got {cv!r}.")
        if n_repeats != 1:
            raise ValueError("n_repeats repeats an integer cv; for a splitter, "
                             "pass a repeated one (RepeatedKFold, "
                             "RepeatedTaskStratifiedKFold) with n_repeats=1.")
        if groups is None and layout.stacked and isinstance(
                cv, (TaskStratifiedKFold, RepeatedTaskStratifiedKFold)) \
                and cv.task_col is None:
            groups = layout.task_index
        splits = list(cv.split(X, layout.Y, groups))
    if layout.stacked:
        _check_every_task_trains(splits, layout)
    return splits


def _integer_cv_splits(n_splits, seed, X, layout, classifier):
    if not layout.stacked:
        return list(KFold(n_splits, shuffle=True, random_state=seed).split(X))
    # readable labels: the splitter names a stratum smaller than n_splits
    strata = np.char.add("task ", layout.tasks[layout.task_index].astype(str))
    if classifier:  # both classes of each task in each test fold, if possible
        strata = np.char.add(strata, np.char.add(", class ",
                                                 layout.Y.astype(str)))
    splitter = TaskStratifiedKFold(n_splits, shuffle=True, random_state=seed)
    return list(splitter.split(X, groups=strata))


def _check_every_task_trains(splits, layout):
    n_tasks = len(layout.tasks)
    for k, (train, _) in enumerate(splits):
        present = np.bincount(layout.task_index[train], minlength=n_tasks) > 0
        if not np.all(present):
            raise ValueError(
                f"Split {k} trains without any row of task(s) "
                f"{layout.tasks[~present][:10].tolist()}; the joint model has "
                "no weights for a task it did not see. Use an integer cv or "
                "cv=TaskStratifiedKFold(...).")


def _independent_input(X, layout, independent):
    """What the per-task models see: ``X`` with its task column for an
    mtlinear estimator in the stacked layout, the features alone for a
    plain scikit-learn one."""
    keeps_task_column = independent is None or getattr(
        independent, "task_col", None) is not None
    return X if keeps_task_column or not layout.stacked else layout.features


# -------------------------------------------------------------- scores
def _joint_scores(estimator, X, y, train, test, layout, scorer):
    """The joint model's score of every task on the test rows of a split."""
    model = clone(estimator).fit(_safe_indexing(X, train),
                                 _safe_indexing(y, train))
    output = _outputs(model, _safe_indexing(X, test), scorer.needs_decision)
    output = output if layout.stacked else output.reshape(len(test), -1)
    position = np.empty(layout.Y.shape[0], dtype=np.int64)
    position[test] = np.arange(len(test))  # a test row's place in output
    scores = np.full(len(layout.tasks), np.nan)
    for t in range(len(layout.tasks)):
        y_true, rows = layout.target(test, t)
        task_output = (output[position[rows]] if layout.stacked
                       else output[position[rows], t])
        scores[t] = _score(scorer, y_true, task_output)
    return scores


def _independent_scores(estimator, independent, X, train, test, layout, scorer):
    """Each task's own model, fitted on its training rows, scored on its
    test rows."""
    scores = np.full(len(layout.tasks), np.nan)
    for t in range(len(layout.tasks)):
        y_train, train_rows = layout.target(train, t)
        y_test, test_rows = layout.target(test, t)
        if len(y_test) == 0:
            continue
        model = (_single_task_clone(estimator, t, layout) if independent is None
                 else clone(independent))
        model.fit(_safe_indexing(X, train_rows), y_train)
        output = _outputs(model, _safe_indexing(X, test_rows),
                          scorer.needs_decision)
        scores[t] = _score(scorer, y_test, output.reshape(len(test_rows)))
    return scores


def _single_task_clone(estimator, t, layout):
    """``estimator`` for task ``t`` alone: its weight kept, no task graph
    and one cluster of tasks (the options that name other tasks would not
    fit one task)."""
    model = clone(estimator)
    params = model.get_params(deep=False)
    updates = {}
    if params.get("task_weights") is not None:
        omega = check_task_weights(params["task_weights"], layout.tasks
                                   if layout.stacked
                                   else np.arange(len(layout.tasks)))
        updates["task_weights"] = omega[t:t + 1]
    if params.get("task_graph") is not None:
        updates["task_graph"] = None
    if "n_clusters" in params:
        updates["n_clusters"] = 1
    return model.set_params(**updates)


def _outputs(model, X, needs_decision):
    """Predictions, or continuous scores (decision values, else the
    probability of the larger label) when the score ranks."""
    if not needs_decision:
        return np.asarray(model.predict(X))
    if getattr(model, "_n_classes", 2) > 2:
        raise ValueError(
            "sharing_gain ranks decision values for binary tasks only; these "
            "tasks are multiclass. Pass scoring='accuracy', or a callable "
            "score(y_true, predicted_labels).")
    if hasattr(model, "decision_function"):
        return np.asarray(model.decision_function(X))
    if hasattr(model, "predict_proba"):
        proba = model.predict_proba(X)
        if isinstance(proba, list):  # multi-output: one (n, 2) per task
            return np.column_stack([p[:, 1] for p in proba])
        return np.asarray(proba)[:, 1]
    return np.asarray(model.predict(X))


def _score(scorer, y_true, output):
    if len(y_true) == 0:
        return np.nan
    return float(scorer.func(y_true, output))


def _summarize(tasks, joint, alone, scoring):
    with np.errstate(invalid="ignore"):  # inf - inf: not scored
        gains = joint - alone
    scored = np.isfinite(gains)
    n_scored = scored.sum(axis=1)
    never = n_scored == 0
    if np.any(never):
        warnings.warn(
            f"sharing_gain: task(s) {tasks[never][:10].tolist()} could not be "
            f"scored in any fold ({int(never.sum())} in all; e.g. a single "
            "class in every test fold for roc_auc, or one test row per fold "
            "for r2); their gain is NaN.",
            UserWarning)
    with warnings.catch_warnings():  # all-NaN rows: NaN, warned about above
        warnings.simplefilter("ignore", RuntimeWarning)
        masked = np.where(scored, gains, np.nan)
        gain = np.nanmean(masked, axis=1)
        spread = np.nanstd(masked, axis=1, ddof=1)
    gain_se = np.where(n_scored >= 2, spread / np.sqrt(np.maximum(n_scored, 1)),
                       np.nan)
    return SharingGain(
        tasks=tasks,
        joint=_masked_mean(joint, scored), independent=_masked_mean(alone, scored),
        gain=gain, gain_se=gain_se, joint_scores=joint,
        independent_scores=alone, scoring=scoring)


def _masked_mean(scores, scored):
    """Mean over the folds where both models were scored (so that ``gain``
    is ``joint - independent``)."""
    total = np.where(scored, scores, 0.0).sum(axis=1)
    count = scored.sum(axis=1)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)
