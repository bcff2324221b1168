"""MultiTaskEstimator: a loss per task (regression and classification tasks
in one model)."""
from numbers import Integral, Real

import numpy as np
from scipy.special import expit
from sklearn.metrics import r2_score
from sklearn.utils._param_validation import Interval
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from ._base import PENALTY_TABLE, MultiTaskLinearModel
from ._classifier import (_class_labels, _missing_class_rows,
                          _pair_for_single_classes)
from ._regressor import poisson_d2
from ._design import task_rows
from ._task_data import shared_to_stacked
from .losses import TaskwiseLoss, make_loss

__all__ = ["MultiTaskEstimator"]


def _has_classification_tasks(estimator):
    return any(c is not None for c in getattr(estimator, "classes_", ()))


class MultiTaskEstimator(MultiTaskLinearModel):
    __doc__ = """Multi-task linear model with a loss per task.

    One model learns, from the same features, a regressor for some tasks and
    a classifier for others (a review's rating and its sentiment; a
    patient's lab value and diagnosis).  It minimizes

    .. math::

        \\sum_t \\frac{\\omega_t}{n_t} \\sum_{i \\in t} s_i\\,
        \\ell_t(y_i, x_i^T w_t + b_t) + \\alpha R(W),
        \\qquad n_t = \\sum_{i \\in t} s_i,

    where ``ell_t`` is task ``t``'s loss: ``"squared"`` (``(y - z)^2 / 2``),
    ``"huber"`` (with ``delta``), ``"poisson"`` (``exp(z) - y z`` up to a
    constant, counts ``y >= 0``, mean ``exp(z)``) or ``"logistic"``
    (``log(1 + e^{-y z})``, ``y`` in ``{-1, +1}`` for the task's two
    classes, the larger label positive).  Each task's term is the one of
    :class:`~mtlinear.MultiTaskRegressor` or
    :class:`~mtlinear.MultiTaskClassifier`: where the penalty decouples the
    tasks (``"l1"``, ``"l2"``) the model is their separate fits; ``"l21"``
    and ``"trace"`` share strength between regression and classification
    tasks.  Task weights ``omega_t`` balance the losses' scales.

%(penalty_table)s
    Parameters
    ----------
    loss : str, list or dict, default="squared"
        The tasks' losses (``"squared"``, ``"huber"``, ``"poisson"``,
        ``"logistic"``): one name for every task; a list in the tasks'
        order (columns of ``y``, or sorted task labels with ``task_col``);
        or a dict keyed by task (column index, ``y``'s DataFrame column
        name, or task label), every task present.
    penalty, alpha, l1_ratio, l1_share, penalty_factor, positive, \
fit_intercept, task_col, task_weights, task_graph, graph_alpha, max_iter, \
tol, warm_start, solver, verbose
        As for :class:`~mtlinear.MultiTaskRegressor` (``task_graph`` couples
        regression and classification tasks alike).
    delta : float, default=1.0
        Threshold of the Huber loss.

    Attributes
    ----------
    coef_ : ndarray of shape (n_tasks, n_features)
    intercept_ : ndarray of shape (n_tasks,)
    losses_ : list of str
        Each task's loss.
    classes_ : list
        Each task's two class labels (sorted), ``None`` for a regression task.
    target_names_ : ndarray or None
        ``y``'s column names when it was a DataFrame (shared layout): they
        name the tasks of ``loss`` and of the predictions.
    tasks_ : ndarray
        Task labels (with ``task_col``).
    n_tasks_, n_iter_, dual_gap_, n_features_in_, feature_names_in_
        As for :class:`~mtlinear.MultiTaskRegressor`.

    Examples
    --------
    >>> import numpy as np
    >>> from mtlinear import MultiTaskEstimator
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((100, 5))
    >>> rating = X @ np.ones(5) + rng.standard_normal(100)
    >>> liked = (rating > 0).astype(int)
    >>> model = MultiTaskEstimator(loss=["squared", "logistic"], alpha=0.01)
    >>> model.fit(X, np.column_stack([rating, liked])).predict(X[:2]).shape
    (2, 2)
    """ % dict(penalty_table=PENALTY_TABLE)

    _parameter_constraints = {
        **MultiTaskLinearModel._parameter_constraints,
        "loss": [str, list, tuple, dict],
        "delta": [Interval(Real, 0, None, closed="neither")],
    }

    def __init__(self, loss="squared", penalty="l21", alpha=0.01, l1_ratio=1.0,
                 *, l1_share=0.5, penalty_factor=None, positive=False,
                 delta=1.0, fit_intercept=True, task_col=None, task_weights=None,
                 task_graph=None, graph_alpha=1.0, max_iter=5000, tol=1e-4,
                 warm_start=False, solver="auto", verbose=0):
        super().__init__(penalty=penalty, alpha=alpha, l1_ratio=l1_ratio,
                         l1_share=l1_share, penalty_factor=penalty_factor,
                         positive=positive, fit_intercept=fit_intercept,
                         task_col=task_col, task_weights=task_weights,
                         task_graph=task_graph, graph_alpha=graph_alpha,
                         max_iter=max_iter, tol=tol, warm_start=warm_start,
                         solver=solver, verbose=verbose)
        self.loss = loss
        self.delta = delta

    def fit(self, X, y, sample_weight=None):
        """Fit the model.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_columns)
            Features, plus the task column when ``task_col`` is set.
        y : array-like or DataFrame of shape (n_samples, n_tasks), or \
(n_samples,) with ``task_col``
            Targets: numbers for regression tasks, two labels for each
            classification task.
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        self
        """
        names = getattr(y, "columns", None)
        self._pending_names = None if names is None else np.asarray(names)
        try:
            return self._fit(X, y, sample_weight)
        finally:
            self.__dict__.pop("_pending_names", None)

    # ------------------------------------------------------------ losses
    def _make_loss(self):
        """Validate the loss names (the per-task loss binds to a problem)."""
        names = (self.loss.values() if isinstance(self.loss, dict)
                 else [self.loss] if isinstance(self.loss, str) else self.loss)
        return [make_loss(name, delta=self.delta) for name in names]

    def _task_losses(self, tasks):
        """The loss name of each task (in the order of ``tasks``)."""
        loss = self.loss
        if isinstance(loss, str):
            return [loss] * len(tasks)
        if isinstance(loss, dict):
            given, known = {_key(k) for k in loss}, {_key(t) for t in tasks}
            missing = [t for t in tasks if _key(t) not in given]
            unknown = [k for k in loss if _key(k) not in known]
            if missing or unknown:
                raise ValueError(
                    f"loss must name every task once: tasks without a loss "
                    f"{[_key(t) for t in missing[:10]]}, unknown tasks "
                    f"{[_key(k) for k in unknown[:10]]}; the tasks are "
                    f"{[_key(t) for t in tasks[:10]]}.")
            by_key = {_key(k): v for k, v in loss.items()}
            return [by_key[_key(t)] for t in tasks]
        if len(loss) != len(tasks):
            raise ValueError(f"loss has {len(loss)} entries but there are "
                             f"{len(tasks)} tasks; give one loss per task.")
        return list(loss)

    def _bind_loss(self, loss, problem):
        # one part per distinct loss (a few), not per task: each part holds
        # a mask of the samples and is visited at every evaluation
        names = list(dict.fromkeys(self.losses_))
        code = np.array([names.index(name) for name in self.losses_])
        design = problem.design
        if design.shared:
            which = np.broadcast_to(code, problem.y.shape)
        else:
            which = np.repeat(code, np.diff(design.task_ptr))
        return TaskwiseLoss([make_loss(name, delta=self.delta) for name in names],
                            which)

    def _center_targets(self):
        # an intercept variable for every task unless all losses are squared
        return all(make_loss(n, delta=self.delta).quadratic for n in self.losses_)

    # ------------------------------------------------------------ targets
    def _encode_targets(self, y, task_index):
        """Per task: floats for regression, ``{-1, +1}`` for classification;
        sets ``losses_``, ``classes_`` and ``target_names_``."""
        if task_index is None:
            Y = y.reshape(len(y), -1)
            self._y_ndim = y.ndim
            names = self.__dict__.get("_pending_names")
            self.target_names_ = names if names is not None and len(names) == \
                Y.shape[1] else None
            tasks = (self.target_names_ if self.target_names_ is not None
                     else np.arange(Y.shape[1]))
            columns = [Y[:, t] for t in range(Y.shape[1])]
        else:
            self._y_ndim = 1
            self.target_names_ = None
            tasks = self.tasks_
            groups = task_rows(task_index, len(tasks))
            columns = [y[rows] for rows in groups]
        self.losses_ = self._task_losses(list(tasks))
        self.classes_ = self._task_classes(tasks, columns)
        encoded = []
        for t, (name, column) in enumerate(zip(self.losses_, columns)):
            label = _key(tasks[t])
            classes = self.classes_[t]
            if classes is not None:
                encoded.append(np.where(column == classes[1], 1.0, -1.0))
            else:
                try:
                    values = np.asarray(column, dtype=np.float64)
                except (TypeError, ValueError):
                    raise ValueError(f"Task {label!r} has loss {name!r} but "
                                     "non-numeric targets; give it a "
                                     "classification loss.") from None
                if not np.all(np.isfinite(values)):
                    raise ValueError(f"Task {label!r} has NaN or infinite "
                                     "targets.")
                make_loss(name).check_targets([(label, values)],
                                              self.fit_intercept)
                encoded.append(values)
        if task_index is None:
            return np.column_stack(encoded)
        out = np.empty(len(y))
        for rows, values in zip(groups, encoded):
            out[rows] = values
        return out

    def _task_classes(self, tasks, columns):
        """Each classification task's two labels (``None`` for the others).
        A task whose labels are of a single class takes the two labels of
        all the classification tasks when there are two: it is then fitted
        as a task lacking a class (:meth:`_weight_samples`)."""
        classes = [None if not make_loss(name).classification else
                   _class_labels(column, f" of task {_key(task)!r}", single=True)
                   for name, task, column in zip(self.losses_, tasks, columns)]
        for task, c in zip(tasks, classes):
            if c is not None and c.size > 2:
                raise ValueError(
                    f"Task {_key(task)!r} has {c.size} classes "
                    f"{c[:10].tolist()}; the logistic loss here is binary. Fit "
                    "multiclass tasks with MultiTaskClassifier (multinomial "
                    "per task).")
        return _pair_for_single_classes(classes, lambda t, c, n: ValueError(
            f"Task {_key(tasks[t])!r} has only one class {c.tolist()}; a "
            "classification task needs samples of two classes (a task of a "
            "single class is fitted when the classification tasks have two "
            f"labels in all; they have {n})."))

    def _weight_samples(self, X, Y, task_index, sample_weight):
        """A classification task whose training rows (of positive weight)
        are of a single class gets half a sample of the other at its mean
        features, as in :class:`MultiTaskClassifier` (see
        :func:`mtlinear._classifier._missing_class_rows`); a 2-d ``Y`` is
        then fitted in the stacked layout."""
        s = np.ones(X.shape[0]) if sample_weight is None else sample_weight
        lacking = []
        groups = (None if task_index is None
                  else task_rows(task_index, len(self.classes_)))
        for t, classes in enumerate(self.classes_):
            if classes is None:
                continue
            rows = slice(None) if task_index is None else groups[t]
            yt = Y[:, t] if task_index is None else Y[rows]
            present = yt[s[rows] > 0]
            absent = [v for v in (-1.0, 1.0) if not np.any(present == v)]
            if present.size and absent:
                lacking.append((t, absent))
        if not lacking:
            return X, Y, task_index, sample_weight
        if task_index is None:  # the stacked layout: a row per (sample, task)
            labels = np.asarray(self.target_names_ if self.target_names_
                                is not None else np.arange(Y.shape[1]))
            X, Y, task_index, s = shared_to_stacked(
                X, Y, np.broadcast_to(s[:, None], Y.shape))
        else:
            labels = self.tasks_
        return _missing_class_rows(type(self).__name__, X, Y, task_index, s,
                                   lacking, labels)

    # ------------------------------------------------------------ predict
    def decision_function(self, X):
        """Linear predictor ``x^T w_t + b_t`` of every task: (n, T), or (n,)
        with ``task_col`` (each row's task); the log of the predicted mean
        for a Poisson task."""
        return self._linear_predictor(X)

    def _outputs(self, Z, task_of):
        """Values of regression tasks (the means ``exp(z)`` of Poisson
        tasks), labels of classification tasks."""
        numeric = all(c is None or c.dtype.kind in "biuf" for c in self.classes_)
        out = np.empty(Z.shape, dtype=np.float64 if numeric else object)
        for t, (name, classes) in enumerate(zip(self.losses_, self.classes_)):
            rows = task_of(t)
            out[rows] = (make_loss(name).inverse_link(Z[rows]) if classes is None
                         else classes[(Z[rows] > 0).astype(int)])
        return out

    def predict(self, X):
        """Predictions: values for regression tasks (means for Poisson
        tasks), class labels for classification tasks; a DataFrame with
        ``y``'s columns when ``y`` was one.

        Returns
        -------
        ndarray or DataFrame of shape (n_samples, n_tasks), or (n_samples,)
        """
        Z = self.decision_function(X)
        if self.task_col is not None:
            _, task_index = self._validate_X(X, reset=False)
            groups = task_rows(task_index, len(self.classes_))
            return self._outputs(Z, lambda t: groups[t])
        out = self._outputs(Z, lambda t: (slice(None), t))
        if self.target_names_ is not None:  # each column of its own dtype
            import pandas as pd
            frame = pd.DataFrame({
                t: out[:, t].astype(float if classes is None else classes.dtype)
                for t, classes in enumerate(self.classes_)})
            frame.columns = self.target_names_
            return frame
        return out[:, 0] if self._y_ndim == 1 else out

    @available_if(_has_classification_tasks)
    def predict_proba(self, X):
        """Class probabilities of the classification tasks.

        Returns
        -------
        dict
            For each classification task (its column index, ``y``'s column
            name, or task label), an array (n_samples, 2) in the order of its
            classes (with ``task_col``: its rows only, in order).
        """
        check_is_fitted(self)
        Z = self.decision_function(X)
        out = {}
        if self.task_col is not None:
            _, task_index = self._validate_X(X, reset=False)
            groups = task_rows(task_index, len(self.classes_))
        for t, classes in enumerate(self.classes_):
            if classes is None:
                continue
            z = Z[groups[t]] if self.task_col is not None else Z[:, t]
            p = expit(z)
            key = (self.tasks_[t].item() if self.task_col is not None
                   else self.target_names_[t] if self.target_names_ is not None
                   else t)
            out[key] = np.column_stack([1.0 - p, p])
        return out

    def score(self, X, y, sample_weight=None):
        """Mean over tasks of ``R^2`` (regression tasks), ``D^2`` (the
        fraction of Poisson deviance explained, Poisson tasks) and accuracy
        (classification tasks); in the stacked layout, over the tasks that
        have rows in ``X`` (a held-out fold may lack some)."""
        P = self.predict(X)
        P = np.asarray(P.to_numpy() if hasattr(P, "to_numpy") else P)
        Y = np.asarray(y.to_numpy() if hasattr(y, "to_numpy") else y)
        s = None if sample_weight is None else np.asarray(sample_weight, float)
        if self.task_col is not None:  # each task's rows
            _, task_index = self._validate_X(X, reset=False)
            parts = [(Y[rows], P[rows], rows)
                     for rows in task_rows(task_index, len(self.classes_))]
        else:  # each task's column
            Y, P = Y.reshape(len(Y), -1), P.reshape(len(P), -1)
            parts = [(Y[:, t], P[:, t], slice(None))
                     for t in range(len(self.classes_))]
        scores = []
        for name, classes, (yt, pt, rows) in zip(self.losses_, self.classes_,
                                                 parts):
            if len(yt) == 0:
                continue
            st = None if s is None else s[rows]
            if classes is None:
                metric = poisson_d2 if name == "poisson" else r2_score
                scores.append(metric(yt.astype(float), pt.astype(float),
                                     sample_weight=st))
            else:  # labels may be objects (a DataFrame's mixed columns)
                scores.append(float(np.average(yt == pt, weights=st)))
        return float(np.mean(scores))


def _key(label):
    """Task labels compare as Python scalars (``np.int64(1) == 1``)."""
    if isinstance(label, (Integral, np.integer)):
        return int(label)
    return label.item() if hasattr(label, "item") else label
