"""Scores task by task: scikit-learn's scorers applied to each task alone.

scikit-learn's scorers see a multi-task model as one model.  In the shared
layout ``y`` is (n, T), which its metrics read as multilabel or
multi-output: ``"accuracy"`` becomes *subset* accuracy (every task right at
once: 0.5 where each task is right 80% of the time), ``"neg_log_loss"``
mixes the tasks' probabilities, ``"balanced_accuracy"`` and ``"f1"`` refuse.
In the stacked layout (``task_col``) the rows of all tasks are scored
together: ``"roc_auc"`` then ranks one task's scores against another's.

:func:`task_scores` scores each task on its own rows (its column of ``y``,
or its rows of the stacked layout) with the named scikit-learn scorer, and
:func:`task_scorer` averages them: the score of a multi-task model that a
user of per-task metrics expects, usable as ``scoring=`` anywhere
(``GridSearchCV``, ``cross_val_score``).  The CV estimators use it for a
scorer given by name.
"""
import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, is_classifier
from sklearn.metrics import check_scoring
from ._classifier import _missing_mask
from ._design import task_rows
from ._task_data import encode_task_labels, split_task_column

__all__ = ["task_scores", "task_scorer"]


class _PredictionFailed(Exception):
    """An error of the model's own method, not of the metric: re-raised as
    it is (a metric undefined on a task's rows is a ``ValueError`` too)."""


class _TaskView(BaseEstimator):
    """One task of a fitted multi-task model, as a single-output model: its
    column of the shared layout's outputs, at its ``rows``.

    The model's outputs on all of ``X`` are computed once per method and
    shared by the views of every task (``outputs``, a dict): a scorer calls
    a view's method, which ignores its argument and slices them.
    """

    def __init__(self, model, column, rows, X, outputs):
        self.model, self.column, self.rows = model, column, rows
        self.X, self.outputs = X, outputs

    def _pick(self, values):
        if self.column is None:  # stacked layout or a 1-d y: as it is
            return values
        return values[self.column] if isinstance(values, list) \
            else values[:, self.column]

    def _output(self, method):
        if not hasattr(self.model, method):
            raise _PredictionFailed from AttributeError(
                f"The scoring needs {type(self.model).__name__}.{method}, "
                f"which a {type(self.model).__name__} does not have (a "
                "classification metric of a regression model?); choose a "
                "metric of the model's kind.")
        if method not in self.outputs:
            try:
                self.outputs[method] = getattr(self.model, method)(self.X)
            except Exception as error:
                raise _PredictionFailed from error
        return np.asarray(self._pick(self.outputs[method]))[self.rows]

    def predict(self, X):
        return self._output("predict")

    def decision_function(self, X):
        return self._output("decision_function")

    def predict_proba(self, X):
        return self._output("predict_proba")

    def predict_log_proba(self, X):
        return self._output("predict_log_proba")


class _ClassifierTaskView(ClassifierMixin, _TaskView):
    @property
    def classes_(self):
        return self._pick(list(self.model.classes_)) \
            if self.column is not None else self.model.classes_


class _RegressorTaskView(RegressorMixin, _TaskView):
    pass


def _tasks_of(model, X, y):
    """``(label, column, rows)`` of every task: the shared layout's columns
    (``rows``: where the column is observed), or the stacked layout's row
    sets (``column`` None)."""
    if getattr(model, "task_col", None) is None:
        Y = np.asarray(y)
        if Y.ndim == 1:
            return [(0, None, np.arange(len(Y)))]
        observed = ~_missing_mask(Y)  # a missing target is not scored
        return [(t, t, np.flatnonzero(observed[:, t])) for t in range(Y.shape[1])]
    _, task_index = model._validate_X(X, reset=False)
    labels = model.tasks_
    known = len(labels)
    tasks = [(labels[t].item(), None, rows)
             for t, rows in enumerate(task_rows(task_index)) if t < known and rows.size]
    unseen = np.flatnonzero(task_index >= known)
    if unseen.size:  # one index for them all (unseen_task="mean"): by label
        names, index = encode_task_labels(
            split_task_column(X, model.task_col)[1][unseen])
        tasks += [(name.item(), None, unseen[index == k])
                  for k, name in enumerate(names)]
    return tasks


def task_scores(model, X, y, scoring, sample_weight=None):
    """Each task's score under ``scoring``, on its own rows.

    Parameters
    ----------
    model : fitted MultiTaskRegressor or MultiTaskClassifier (or their CV)
    X, y
        As for the model's ``score``: ``y`` of shape (n, T) in the shared
        layout, (n,) with ``task_col``.
    scoring : str or callable
        A scikit-learn scorer name (``"roc_auc"``, ``"accuracy"``,
        ``"neg_log_loss"``, ``"r2"``, ...) or a scorer
        ``scoring(estimator, X, y)`` of one task.
    sample_weight : array-like of shape (n,), optional

    Returns
    -------
    dict
        ``{task label: score}`` (column index in the shared layout; a task
        unseen in training, with ``unseen_task="mean"``, by its label).  A
        score the task's rows leave undefined (``"roc_auc"`` on rows of a
        single class, ``"r2"`` on one row) is ``nan``, with a warning; a
        metric's own warnings (``precision`` of a task that predicts no
        positive: 0, as scikit-learn scores it) pass through, and errors
        of the model's methods are raised.
    """
    scorer = check_scoring(model, scoring=scoring)
    view_class = (_ClassifierTaskView if is_classifier(model)
                  else _RegressorTaskView)
    out, undefined, outputs = {}, [], {}
    for label, column, rows in _tasks_of(model, X, y):
        view = view_class(model, column, rows, X, outputs)
        y_t = np.asarray(y)[rows] if column is None else np.asarray(y)[rows, column]
        kwargs = {} if sample_weight is None else {
            "sample_weight": np.asarray(sample_weight)[rows]}
        try:
            # the view ignores X: it slices the shared outputs
            out[label] = float(scorer(view, X, y_t, **kwargs))
        except _PredictionFailed as failed:
            raise failed.__cause__
        except ValueError:  # undefined on these rows
            out[label] = np.nan
        if np.isnan(out[label]):
            undefined.append(label)
    if undefined:
        warnings.warn(f"The score is undefined on the rows of task(s) "
                      f"{undefined[:10]} (for instance a single class for "
                      "roc_auc, or one row for r2); they are left out of "
                      "the average.", UserWarning)
    return out


def task_scorer(scoring):
    """A scorer averaging ``scoring`` over the tasks (see :func:`task_scores`).

    Parameters
    ----------
    scoring : str or callable
        A scikit-learn scorer name, or a single-task scorer.

    Returns
    -------
    callable
        ``scorer(model, X, y, sample_weight=None)``: the mean over tasks of
        the per-task scores (tasks where it is undefined left out), for
        ``GridSearchCV(scoring=...)`` and the like.

    Examples
    --------
    >>> import numpy as np
    >>> from mtlinear import MultiTaskClassifier
    >>> from mtlinear.metrics import task_scorer
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((100, 4))
    >>> Y = (X[:, :2] + rng.standard_normal((100, 2)) > 0).astype(int)
    >>> model = MultiTaskClassifier().fit(X, Y)
    >>> bool(task_scorer("accuracy")(model, X, Y) == model.score(X, Y))
    True
    """
    def scorer(model, X, y, sample_weight=None):
        scores = list(task_scores(model, X, y, scoring, sample_weight).values())
        return float(np.nanmean(scores)) if not np.all(np.isnan(scores)) \
            else np.nan

    scorer.__name__ = f"task_scorer({scoring!r})"
    return scorer
