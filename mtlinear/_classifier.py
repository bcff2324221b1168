"""MultiTaskClassifier: binary logistic regression per task, fitted jointly."""
import warnings
from numbers import Real

import numpy as np
import scipy.sparse as sp
from scipy.special import expit
from sklearn.base import ClassifierMixin
from sklearn.metrics import accuracy_score
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted

from ._base import PENALTY_TABLE, MultiTaskLinearModel
from ._dask import is_dask_collection, refuse_dask
from ._task_data import shared_to_stacked
from .losses import LogisticLoss

__all__ = ["MultiTaskClassifier"]


def _missing_mask(y):
    """Where ``y`` holds no label: ``NaN`` (or ``None`` in an object array)."""
    if y.dtype.kind == "f":
        return np.isnan(y)
    if y.dtype.kind == "O":
        return np.frompyfunc(
            lambda v: v is None or (isinstance(v, Real) and v != v), 1, 1)(
            y).astype(bool)
    return np.zeros(y.shape, dtype=bool)


def _binary_classes(y, where):
    """Sorted two labels of ``y`` (1-d); a clear error for anything else."""
    kind = type_of_target(y, input_name="y")
    if kind == "continuous":
        raise ValueError(
            f"Unknown label type: y{where} holds continuous values such as "
            f"{np.unique(y)[:5].tolist()}; MultiTaskClassifier needs class "
            "labels (two per task). For a numeric target use "
            "MultiTaskRegressor.")
    classes = np.unique(y)
    if classes.size < 2:
        raise ValueError(
            f"y{where} has only one class {classes.tolist()}; each task needs "
            "samples of both of its two classes to train a classifier.")
    if classes.size > 2:
        raise ValueError(
            f"y{where} has {classes.size} classes {classes[:10].tolist()}; "
            "Only binary classification is supported. MultiTaskClassifier "
            "needs exactly two classes per task. Split a multiclass target "
            "into one-vs-rest binary tasks (columns of Y).")
    return classes


def _one_class_rows(model, X, Y, task_index, weights, one_class, labels):
    """Add half a sample of the missing class to each task of ``one_class``
    (tasks whose training rows, weighted, hold a single class), at the task's
    weighted mean features and with half its mean sample weight.

    Centred on the task's mean, the pseudo-sample has no leverage on the
    task's coefficients; it keeps its intercept finite: the task's model
    predicts the base rate smoothed as a Jeffreys prior would (``n`` samples
    of one class: probability ``n / (n + 1/2)``), where the unsmoothed
    maximum-likelihood intercept is infinite.
    """
    named = [labels[t].item() for t in one_class[:10]]
    warnings.warn(
        f"{type(model).__name__}: task(s) {named} have training samples of a "
        f"single class ({len(one_class)} in all); each is given half a sample "
        "of the other class at its mean features, so that its model predicts "
        "its smoothed base rate (a finite intercept).", UserWarning)
    rows_X, rows_y, rows_w = [], [], []
    for t in one_class:
        rows = task_index == t
        w = weights[rows]
        mean = (w @ X[rows]) / w.sum()
        rows_X.append(np.asarray(mean).ravel())
        rows_y.append(-Y[rows][np.argmax(w)])  # the class the task lacks
        rows_w.append(0.5 * w[w > 0].mean())
    pseudo = np.array(rows_X)
    X = (sp.vstack([X, sp.csr_matrix(pseudo)], format="csr")
         if sp.issparse(X) else np.vstack([X, pseudo]))
    return (X, np.concatenate([Y, rows_y]),
            np.concatenate([task_index, one_class]),
            np.concatenate([weights, rows_w]))


class MultiTaskClassifier(ClassifierMixin, MultiTaskLinearModel):
    __doc__ = """Regularized multi-task logistic regression (one binary problem per task).

    Minimizes, over one weight vector ``w_t`` and intercept ``b_t`` per task,

    .. math::

        \\sum_t \\frac{\\omega_t}{n_t} \\sum_{i \\in t}
        s_i c_{t, y_i} \\log\\big(1 + e^{-\\tilde y_i (x_i^T w_t + b_t)}\\big)
        + \\alpha R(W),
        \\qquad n_t = \\sum_{i \\in t} s_i c_{t, y_i},

    with ``tilde y_i = +1`` for the task's positive class (``classes_[1]``,
    the larger label) and ``-1`` for the other, ``s_i`` the ``sample_weight``,
    ``c`` the ``class_weight`` (computed per task), ``omega_t`` the
    ``task_weights`` and ``R`` the penalty:

%(penalty_table)s
    **Relation to scikit-learn's LogisticRegression.**  With ``"l1"`` or
    ``"l2"`` the tasks are independent, and task ``t`` solves
    ``LogisticRegression(C=C_t, l1_ratio=r)`` (``r = 0`` for ``"l2"``), whose
    objective ``C sum_i s_i c_{y_i} loss_i + r ||w||_1 + (1-r)/2 ||w||^2`` is
    ours times ``C_t n_t`` when

    .. math:: C_t = \\frac{\\omega_t}{\\alpha\\, n_t},
              \\qquad \\text{i.e. } C = 1 / (\\alpha n) \\text{ for unit weights.}

    With ``class_weight="balanced"`` (or ``None``) ``n_t`` is the sum of the
    sample weights of the task (its number of samples when unweighted).

    Parameters
    ----------
    penalty : {"l21", "l1", "l2", "trace", "sparse_group"} or Penalty, default="l21"
    alpha : float or None, default=None
        Regularization strength (``>= 0``). ``mtlinear.alpha_max(...,
        loss="logistic")`` gives the smallest value for which every
        coefficient is zero.  ``None`` means ``1 / n``, with ``n`` the mean
        over tasks of their total sample weight (their number of samples):
        scikit-learn's default ``LogisticRegression(C=1)`` on a task of
        average size (see above).  A fit whose coefficients are all zero
        warns.
    l1_ratio : float in [0, 1], default=1.0
        Share of the norm in the penalty; the rest is a ridge term.  Ignored by
        ``"l2"``.
    l1_share : float in [0, 1], default=0.5
        ``s`` of ``"sparse_group"`` (ignored by the other penalties).
    penalty_factor : array-like of shape (n_features,), default=None
        ``f_j > 0`` multiplying feature ``j``'s term of the penalty (l1, l2,
        l21, sparse_group).
    positive : bool, default=False
        Constrain the coefficients to be non-negative (l1, l2, l21,
        sparse_group).
    fit_intercept : bool, default=True
        Fit one unpenalized intercept per task.
    class_weight : dict, "balanced" or None, default=None
        Weights ``c`` of the classes, multiplying the sample weights, as in
        scikit-learn; ``"balanced"`` is computed per task from the task's own
        (sample-weighted) class counts, ``n_t / (2 n_{t,c})``.  A dict maps
        labels to weights and applies to every task.
    task_col : int, str or None, default=None
        ``None``: shared design; ``y`` is (n,) for one task or (n, T) with one
        binary column per task (any two labels per column).  Otherwise the
        column of ``X`` holding each row's task label; ``y`` is (n,) with two
        classes overall, and every task must contain both.
    task_weights : None, dict or array-like of shape (T,), default=None
        ``omega_t`` (see :class:`MultiTaskRegressor`).
    task_graph : {"mean", "chain"}, array-like of shape (T, T), dict or \
None, default=None
        A graph of related tasks (see :class:`MultiTaskRegressor`); adds
        ``graph_alpha / 2 * sum_{s,t} A_st ||w_s - w_t||^2``.
    graph_alpha : float >= 0, default=1.0
        Strength of the task graph.
    unseen_task : {"error", "mean"}, default="error"
        Prediction for a task not seen in fit (see
        :class:`MultiTaskRegressor`).
    max_iter : int, default=5000
        Maximum number of iterations (Newton steps, or proximal-gradient
        iterations for FISTA).
    tol : float, default=1e-4
        Relative duality-gap tolerance: the solve stops when the gap is at
        most ``tol`` times the objective at ``W = 0`` with the best
        intercepts.
    warm_start : bool, default=False
        Start from the previous solution when refitting with the same shapes.
    solver : {"auto", "prox_newton", "fista"}, default="auto"
        ``"auto"``: working-set proximal Newton for the row-separable
        penalties (l1, l21, sparse_group; Newton-CG for a plain ``"l2"`` or
        ``l1_ratio = 0``), FISTA otherwise (``"trace"``, a penalty written
        in Python).  ``"fista"``: accelerated proximal gradient with
        adaptive restart and an adaptive step for every penalty.
    verbose : int, default=0

    Attributes
    ----------
    classes_ : ndarray of shape (2,) or list of T such arrays
        The two labels of each task: one array when ``y`` is 1-d (one task,
        or the stacked layout), a list with one array per column of ``Y``
        otherwise (scikit-learn's multi-output convention).
    coef_ : ndarray of shape (n_tasks, n_features)
    intercept_ : ndarray of shape (n_tasks,)
    n_tasks_ : int
    tasks_ : ndarray
        Sorted task labels (stacked layout only).
    n_iter_ : int
    dual_gap_ : float
        Absolute duality gap of the objective above at the solution.
    n_features_in_ : int
    feature_names_in_ : ndarray of str

    Notes
    -----
    Output shapes follow scikit-learn: for a 1-d ``y`` (one task, or the
    stacked layout) ``decision_function`` is (n,), ``predict_proba`` (n, 2)
    and ``predict`` (n,); for ``Y`` of shape (n, T), ``decision_function``
    is (n, T), ``predict`` (n, T) and ``predict_proba`` a list of T arrays
    (n, 2), as for scikit-learn's multi-output classifiers.  ``score`` is the
    mean accuracy: of all rows in the stacked layout, the average over tasks
    of the per-task accuracy for a 2-d ``Y``.

    With class weights that differ between the columns of a 2-d ``Y`` the
    tasks no longer share sample weights; the fit then stacks one copy of
    ``X`` per task (memory ``T`` times that of ``X``).

    Examples
    --------
    >>> import numpy as np
    >>> from mtlinear import MultiTaskClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((80, 6))
    >>> Y = (X[:, :2] @ rng.standard_normal((2, 3)) > 0).astype(int)
    >>> clf = MultiTaskClassifier(penalty="l21", alpha=0.01).fit(X, Y)
    >>> clf.predict(X).shape, len(clf.predict_proba(X))
    ((80, 3), 3)
    """ % dict(penalty_table=PENALTY_TABLE)

    _parameter_constraints = {
        **MultiTaskLinearModel._parameter_constraints,
        "alpha": [None, Interval(Real, 0, None, closed="left")],
        "class_weight": [None, dict, StrOptions({"balanced"})],
        "unseen_task": [StrOptions({"error", "mean"})],
    }

    _missing_targets = True  # in a 2-d y: the stacked observed entries

    def __init__(self, penalty="l21", alpha=None, l1_ratio=1.0, *,
                 l1_share=0.5, penalty_factor=None, positive=False,
                 fit_intercept=True, class_weight=None, task_col=None,
                 task_weights=None, task_graph=None, graph_alpha=1.0,
                 unseen_task="error", max_iter=5000, tol=1e-4,
                 warm_start=False, solver="auto", verbose=0):
        super().__init__(penalty=penalty, alpha=alpha, l1_ratio=l1_ratio,
                         l1_share=l1_share, penalty_factor=penalty_factor,
                         positive=positive,
                         fit_intercept=fit_intercept, task_col=task_col,
                         task_weights=task_weights, task_graph=task_graph,
                         graph_alpha=graph_alpha, max_iter=max_iter, tol=tol,
                         warm_start=warm_start, solver=solver, verbose=verbose)
        self.class_weight = class_weight
        self.unseen_task = unseen_task

    def fit(self, X, y, sample_weight=None):
        """Fit the model.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_columns)
            Features, plus the task column when ``task_col`` is set.
        y : array-like of shape (n_samples,) or (n_samples, n_tasks)
            Class labels: two per task.
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative weights ``s_i``.

        Returns
        -------
        self
        """
        # -- scale-out hook (mtlinear._dask): dask collections are refused
        if is_dask_collection(X, y, sample_weight):
            raise refuse_dask(self)
        # -- end of the scale-out hook
        return self._fit(X, y, sample_weight)

    # ------------------------------------------------------------ targets
    def _make_loss(self):
        return LogisticLoss()

    def _alpha_of(self, X, Y, task_index, sample_weight, omega):
        """``alpha``, or by default ``1 / n`` with ``n`` the mean of the
        tasks' total sample weights (``C = 1`` on an average task)."""
        if self.alpha is not None:
            return self.alpha
        s = np.ones(X.shape[0]) if sample_weight is None else sample_weight
        totals = (np.full(Y.shape[1], s.sum()) if task_index is None
                  else np.bincount(task_index, weights=s, minlength=len(omega)))
        return 1.0 / float(totals.mean())

    def _set_solution(self, problem, result, graph=None):
        super()._set_solution(problem, result, graph)
        if not np.any(self.coef_) and self.coef_.size:
            warnings.warn(
                f"{type(self).__name__}: every coefficient is zero (alpha is at "
                "least alpha_max for these data, or the features carry no "
                "signal). Lower alpha, or choose it by cross-validation "
                "(MultiTaskClassifierCV).", UserWarning)

    def _encode_targets(self, y, task_index):
        """Labels to ``{-1, +1}``; sets ``classes_``."""
        missing = _missing_mask(y)
        if task_index is None and y.ndim == 2 and y.shape[1] > 1:
            # NaN (or None) in a column: that task's label is not observed
            self._y_ndim = 2
            classes = [_binary_classes(y[~missing[:, t], t], f" column {t}")
                       for t in range(y.shape[1])]
            self.classes_ = classes
            return np.column_stack([
                np.where(missing[:, t], np.nan,
                         np.where(y[:, t] == c[1], 1.0, -1.0))
                for t, c in enumerate(classes)])
        if missing.any():
            raise ValueError("y contains NaN or missing labels; every sample "
                             "needs a class label (a missing label is "
                             "allowed in a 2-d y of several tasks only).")
        y = y.reshape(-1)
        self._y_ndim = 1
        self.classes_ = _binary_classes(y, "")
        signs = np.where(y == self.classes_[1], 1.0, -1.0)
        if task_index is None:
            return signs[:, None]
        return signs  # a task with one class: see _weight_samples

    def _weight_samples(self, X, Y, task_index, s):
        """Multiply ``s`` by the class weights (per task) and check that both
        classes of every task keep a positive weight; in the stacked layout a
        task with one class gets its pseudo-sample (:func:`_one_class_rows`)."""
        s = np.ones(X.shape[0]) if s is None else s
        labels = self.tasks_ if task_index is not None else np.arange(Y.shape[1])
        if task_index is None and np.isnan(Y).any():
            # missing labels: the observed entries in the stacked layout
            task_index, rows = np.nonzero(~np.isnan(Y).T)  # grouped by task
            X, Y, s = X[rows], Y[rows, task_index], s[rows]
        if task_index is None:  # one column of Y per task
            T = Y.shape[1]
            tasks = [(f" (column {t})" if T > 1 else "", slice(None), t)
                     for t in range(T)]
        else:
            # one task's mask at a time (a list of them: n bytes per task)
            tasks = ((f" (task {label.item()!r})", task_index == t, 0)
                     for t, label in enumerate(labels))
        weights = np.empty(Y.shape)
        one_class = []
        for t, (name, rows, col) in enumerate(tasks):
            yt, st = Y[rows, col] if Y.ndim == 2 else Y[rows], s[rows]
            c = np.ones(2)
            both = np.any(yt > 0) and np.any(yt < 0)
            if self.class_weight is not None and (
                    both or self.class_weight != "balanced"):
                classes = self.classes_ if self._y_ndim == 1 else self.classes_[t]
                c = compute_class_weight(
                    self.class_weight, classes=classes, sample_weight=st,
                    y=np.where(yt > 0, classes[1], classes[0]))
                if not np.all(np.isfinite(c)) or np.any(c < 0):
                    raise ValueError(
                        f"class_weight must give finite, non-negative weights; "
                        f"got {dict(zip(classes.tolist(), c.tolist()))}{name}.")
            wt = st * np.where(yt > 0, c[1], c[0])
            if not (np.any(wt[yt > 0] > 0) and np.any(wt[yt < 0] > 0)):
                if Y.ndim == 1 and np.any(wt > 0):
                    one_class.append(t)
                    weights[rows] = wt
                    continue
                raise ValueError(f"The samples of one class{name} all have zero "
                                 "weight (sample_weight times class_weight); "
                                 "each task needs both classes with positive "
                                 "weight.")
            if Y.ndim == 2:
                weights[rows, col] = wt
            else:
                weights[rows] = wt
        if Y.ndim == 1:
            if one_class:
                return _one_class_rows(self, X, Y, task_index, weights,
                                       one_class, labels)
            return X, Y, task_index, weights
        if np.all(weights == weights[:, :1]):  # one weight per sample
            return X, Y, None, weights[:, 0]
        return shared_to_stacked(X, Y, weights)

    # ------------------------------------------------------------ predict
    def decision_function(self, X):
        """Linear predictor ``x^T w_t + b_t``; positive means ``classes_[1]``.

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_tasks)
        """
        Z = self._linear_predictor(X)
        if self.task_col is None and self._y_ndim == 1:
            return Z[:, 0]
        return Z

    def predict_proba(self, X):
        """Class probabilities ``sigmoid(x^T w_t + b_t)`` of ``classes_[1]``.

        Returns
        -------
        ndarray of shape (n_samples, 2), or a list of n_tasks such arrays
            Columns in the order of ``classes_`` (of each task).
        """
        Z = self.decision_function(X)
        if Z.ndim == 1:
            p = expit(Z)
            return np.column_stack([1.0 - p, p])
        P = expit(Z)
        return [np.column_stack([1.0 - P[:, t], P[:, t]])
                for t in range(P.shape[1])]

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`, computed stably."""
        Z = self.decision_function(X)

        def pair(z):
            return np.column_stack([-np.logaddexp(0.0, z), -np.logaddexp(0.0, -z)])
        if Z.ndim == 1:
            return pair(Z)
        return [pair(Z[:, t]) for t in range(Z.shape[1])]

    def predict(self, X):
        """Predicted labels: ``classes_[1]`` where the decision is positive.

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_tasks)
        """
        Z = self.decision_function(X)
        if Z.ndim == 1:
            return self.classes_[(Z > 0).astype(int)]
        return np.column_stack([self.classes_[t][(Z[:, t] > 0).astype(int)]
                                for t in range(Z.shape[1])])

    def score(self, X, y, sample_weight=None):
        """Mean accuracy (per-task accuracies averaged for a 2-d ``y``; a
        missing label, ``NaN`` or ``None``, is left out of its task's).

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_columns)
        y : array-like of shape (n_samples,) or (n_samples, n_tasks)
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        float
        """
        check_is_fitted(self)
        pred = self.predict(X)
        y = np.asarray(y)
        if pred.ndim == 1:
            return accuracy_score(y.reshape(-1), pred, sample_weight=sample_weight)
        y = y.reshape(pred.shape)
        observed = ~_missing_mask(y)  # a missing label is left out
        s = None if sample_weight is None else np.asarray(sample_weight, float)
        return float(np.mean([
            accuracy_score(y[rows, t], pred[rows, t],
                           sample_weight=None if s is None else s[rows])
            for t, rows in enumerate(observed.T)]))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        tags.classifier_tags.multi_label = True
        tags.target_tags.multi_output = True
        return tags
