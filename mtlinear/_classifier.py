"""MultiTaskClassifier: logistic regression per task (binary or multinomial),
fitted jointly."""
import warnings
from numbers import Real

import numpy as np
import scipy.sparse as sp
from scipy.special import logsumexp
from sklearn.base import ClassifierMixin
from sklearn.metrics import accuracy_score
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted

from ._base import PENALTY_TABLE, MultiTaskLinearModel
from ._dask import is_dask_collection, refuse_dask
from ._multinomial import (MultinomialLoss, class_scores, expand_classes,
                           model_intercepts)
from ._design import task_rows
from ._task_data import shared_to_stacked
from .losses import LogisticLoss

__all__ = ["MultiTaskClassifier"]


def _missing_mask(y):
    """Where ``y`` holds no label: ``NaN`` (or ``None`` or pandas' ``NA`` in
    an object array)."""
    if y.dtype.kind == "f":
        return np.isnan(y)
    if y.dtype.kind == "O":
        return np.frompyfunc(_no_label, 1, 1)(y).astype(bool)
    return np.zeros(y.shape, dtype=bool)


def _no_label(value):
    """``None``, ``NaN`` or pandas' ``NA`` (which compares to ``NA``, whose
    truth value is an error)."""
    if value is None:
        return True
    try:
        return not bool(value == value)
    except TypeError:
        return True


def _class_labels(y, where, single=False):
    """Sorted labels of ``y`` (1-d), at least two (one with ``single``); a
    clear error for continuous values or a single class."""
    try:
        classes = np.unique(y)
    except TypeError:  # labels that do not compare: int and str, say
        kinds = sorted({type(v).__name__ for v in y.ravel()})
        raise ValueError(
            f"Unknown label type: y{where} mixes labels of the types {kinds}, "
            "which cannot be sorted; give every label the same type (for "
            "instance all str).") from None
    if _continuous(y, classes):
        raise ValueError(
            f"Unknown label type: y{where} holds continuous values such as "
            f"{classes[:5].tolist()}; MultiTaskClassifier needs class "
            "labels. For a numeric target use MultiTaskRegressor.")
    if classes.size < (1 if single else 2):
        raise ValueError(
            f"y{where} has only one class {classes.tolist()}; a classifier "
            "needs samples of at least two classes.")
    return classes


def _continuous(y, classes):
    """scikit-learn's ``type_of_target(y) == "continuous"``: for numbers,
    read on the sorted distinct values ``classes`` (a float that is not an
    integer, as ``type_of_target`` tests it); its full pass over ``y`` is a
    tenth of a small fit.  Other dtypes ask ``type_of_target``."""
    if classes.dtype.kind in "biu":
        return False
    if classes.dtype.kind == "f":  # beyond int64, its cast never equals
        return bool(np.any((np.abs(classes) >= 2.0 ** 63)
                           | (classes != np.trunc(classes))))
    return type_of_target(y, input_name="y") == "continuous"


def _column_classes(y, missing):
    """Each column's sorted labels (a 2-d ``y``, ``missing`` its unlabelled
    entries).  A column whose labels are of a single class takes the two
    labels of the whole ``y`` when there are two (binary tasks): it is then
    fitted as a task lacking a class (:func:`_missing_class_rows`)."""
    columns = [y[~missing[:, t], t] for t in range(y.shape[1])]
    for t, column in enumerate(columns):
        if column.size == 0:
            raise ValueError(f"y column {t} has no label (every entry is "
                             "missing); drop the column or label some of its "
                             "samples.")
    classes = [_class_labels(c, f" column {t}", single=True)
               for t, c in enumerate(columns)]
    return _pair_for_single_classes(classes, lambda t, c, n: ValueError(
        f"y column {t} has only one class {c.tolist()}; a classifier needs "
        "samples of at least two classes (a column of a single class is "
        "fitted when the tasks are binary, with two labels in all; y has "
        f"{n})."))


def _pair_for_single_classes(classes, error):
    """``classes`` (per task its sorted labels, ``None`` for a task that is
    not a classification) with each single class replaced by the two labels
    of all the tasks, when they hold two: such a task is fitted as one
    lacking a class (:func:`_missing_class_rows`).  Otherwise ``error(t,
    labels, n)`` is raised for the first task ``t`` of a single class
    (``n``: the number of labels in all)."""
    if all(c is None or c.size != 1 for c in classes):
        return classes
    labels = np.concatenate([c for c in classes if c is not None])
    try:
        every = np.unique(labels)
    except TypeError:  # objects of several types: not one pair of labels
        every = np.unique(labels.astype(str))
    if every.size != 2:
        t = next(t for t, c in enumerate(classes)
                 if c is not None and c.size == 1)
        raise error(t, classes[t], every.size)
    return [c if c is None or c.size != 1 else every for c in classes]


def _missing_class_rows(name, X, Y, task_index, weights, missing, labels,
                        what="have training samples of a single class"):
    """Add half a sample of each class a task lacks: ``missing`` holds
    ``(task, targets)`` pairs of the stacked layout's tasks whose training
    rows, weighted, miss some of the classes (``targets``: the solver's
    target values of those classes); each pseudo-sample sits at the task's
    weighted mean features, with half its mean sample weight.  ``name``:
    the estimator's, for the warning.

    Centred on the task's mean, a pseudo-sample has no leverage on the
    task's coefficients; it keeps the task's intercepts finite: the task
    predicts the class's base rate smoothed as a Jeffreys prior would (a
    binary task with ``n`` samples of one class: probability ``n / (n +
    1/2)``), where the unsmoothed maximum-likelihood intercept is infinite
    and a class unseen in a small task's training rows would have
    probability 0.
    """
    named = [labels[t].item() for t, _ in missing[:10]]
    warnings.warn(
        f"{name}: task(s) {named} {what} ({len(missing)} in "
        "all); each is given half a sample of each class it lacks at its mean "
        "features, so that its model predicts the class's smoothed base rate "
        "(a finite intercept).", UserWarning)
    rows_X, rows_y, rows_w, rows_task = [], [], [], []
    for t, targets in missing:
        rows = task_index == t
        w = weights[rows]
        mean = np.asarray((w @ X[rows]) / w.sum()).ravel()
        for target in targets:
            rows_X.append(mean)
            rows_y.append(target)
            rows_w.append(0.5 * w[w > 0].mean())
            rows_task.append(t)
    pseudo = np.array(rows_X)
    X = (sp.vstack([X, sp.csr_matrix(pseudo)], format="csr")
         if sp.issparse(X) else np.vstack([X, pseudo]))
    return (X, np.concatenate([Y, rows_y]),
            np.concatenate([task_index, rows_task]),
            np.concatenate([weights, rows_w]))


class MultiTaskClassifier(ClassifierMixin, MultiTaskLinearModel):
    __doc__ = """Regularized multi-task logistic regression (binary or multiclass tasks).

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

    **Multiclass tasks.**  When a task has more than two classes, every task
    is a multinomial logistic regression: one ``(w_tk, b_tk)`` per class,
    the softmax cross-entropy over the task's classes, and ``R`` on the
    ``(d, T K)`` matrix of all tasks' class weights (``"l21"`` selects
    features over all tasks and classes, ``"trace"`` shares a subspace).
    With ``"l1"`` / ``"l2"`` task ``t`` solves scikit-learn's multinomial
    ``LogisticRegression(C=C_t)`` on its rows.  In the stacked layout every
    task has every class: a task whose training rows lack one is given half
    a sample of it at its mean features (a smoothed base rate, with a
    warning), as a binary task with one class is.  See the user guide's
    multiclass section.

    Parameters
    ----------
    penalty : {"l21", "l1", "l2", "trace", "sparse_group"} or Penalty, default="l21"
    alpha : float or None, default=None
        Regularization strength (``>= 0``). ``mtlinear.alpha_max(...,
        loss="logistic")`` gives the smallest value for which every
        coefficient is zero.  ``None`` means ``1 / n``, with ``n`` the mean
        over tasks of their total sample weight (their number of samples;
        of labelled samples when ``y`` has missing labels):
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
        (sample-weighted) class counts, ``n_t / (K_t n_{t,c})`` with ``K_t``
        the classes it has.  A dict maps labels to weights and applies to
        every task (each task takes its own labels' entries; a label of no
        task is an error).
    task_col : int, str or None, default=None
        ``None``: shared design; ``y`` is (n,) for one task or (n, T) with one
        column of labels per task (its own labels per column).  Otherwise the
        column of ``X`` holding each row's task label; ``y`` is (n,), its
        labels shared by the tasks.
    task_weights : None, dict or array-like of shape (T,), default=None
        ``omega_t`` (see :class:`MultiTaskRegressor`).
    task_graph : {"mean", "chain"}, array-like or sparse matrix of shape \
(T, T), dict or None, default=None
        A graph of related tasks (see :class:`MultiTaskRegressor`); adds
        ``graph_alpha / 2 * sum_{s,t} A_st ||w_s - w_t||^2``.
    graph_alpha : float >= 0, default=1.0
        Strength of the task graph.
    unseen_task : {"error", "mean"}, default="error"
        Prediction for a task not seen in fit (see
        :class:`MultiTaskRegressor`).
    max_iter : int, default=5000
        Maximum number of iterations (Newton steps, or proximal-gradient
        iterations for FISTA).  With ``solver="auto"``, a solver that ends
        unconverged hands over to the next one, each with up to
        ``max_iter`` iterations: ``n_iter_`` counts them all.
    tol : float, default=1e-4
        Relative duality-gap tolerance: the solve stops when the gap is at
        most ``tol`` times the objective at ``W = 0`` with the best
        intercepts.
    warm_start : bool, default=False
        Start from the previous solution when refitting with the same shapes.
    solver : {"auto", "prox_newton", "fista", "newton_admm"}, default="auto"
        ``"auto"``: working-set proximal Newton for the row-separable
        penalties (l1, l21, sparse_group; Newton-CG for a plain ``"l2"`` or
        ``l1_ratio = 0``), FISTA otherwise (``"trace"``, a penalty written
        in Python, and every penalty but a plain ridge with multiclass
        tasks), finished by ``"newton_admm"`` (proximal Newton with ADMM
        steps, binary tasks with few features) if it ends unconverged.
        ``"fista"``: accelerated proximal gradient with adaptive restart and
        an adaptive step for every penalty.
    verbose : int, default=0

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,) or list of T such arrays
        The labels: one array when ``y`` is 1-d (one task, or the stacked
        layout), a list with one array per column of ``Y`` otherwise
        (scikit-learn's multi-output convention).
    coef_ : ndarray of shape (n_tasks, n_features), or (n_tasks, K, n_features)
        One weight vector per task (binary tasks) or per task and class
        (multiclass tasks, ``K`` the most classes of a task; a column of a
        2-d ``Y`` with fewer classes is padded with zero weights).
    intercept_ : ndarray of shape (n_tasks,), or (n_tasks, K)
        Multiclass tasks: centred over each task's classes, ``-inf`` for a
        padded class.
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
    (n, 2), as for scikit-learn's multi-output classifiers.  Multiclass
    tasks: ``decision_function`` and ``predict_proba`` have a column per
    class, (n, K) for a 1-d ``y`` and a list of T arrays (n, K_t) for a 2-d
    ``Y``.  ``score`` is the mean accuracy: of all rows in the stacked
    layout, the average over tasks of the per-task accuracy for a 2-d ``Y``.

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
            Class labels (``NaN`` or ``None`` in a 2-d ``y``: not observed).
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
        """The logistic loss for binary tasks, the multinomial for multiclass
        ones (known once the targets are encoded)."""
        K = getattr(self, "_n_classes", 2)
        return LogisticLoss() if K == 2 else MultinomialLoss(K)

    def _bind_loss(self, loss, problem):
        return self._make_loss()

    def _alpha_of(self, X, Y, task_index, sample_weight, omega):
        """``alpha``, or by default :meth:`_default_alpha`."""
        if self.alpha is not None:
            return self.alpha
        return self._default_alpha(Y, task_index, sample_weight, omega)

    @staticmethod
    def _default_alpha(Y, task_index, sample_weight, omega):
        """``1 / n`` with ``n`` the mean of the tasks' total sample weights
        (``C = 1`` on an average task)."""
        s = np.ones(Y.shape[0]) if sample_weight is None else sample_weight
        if task_index is None:  # a missing label is not one of the task's
            totals = np.isfinite(Y).T.astype(float) @ s
        else:
            totals = np.bincount(task_index, weights=s, minlength=len(omega))
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
        """Labels to the solver's targets; sets ``classes_`` and
        ``_n_classes`` (2: binary tasks, ``{-1, +1}`` targets; ``K > 2``:
        multinomial, class codes ``0..K-1`` indexing each task's
        ``classes_``, ``K`` the most classes of a task)."""
        missing = _missing_mask(y)
        if task_index is None and y.ndim == 2 and y.shape[1] > 1:
            # NaN (or None) in a column: that task's label is not observed
            self._y_ndim = 2
            self.classes_ = _column_classes(y, missing)
            self._n_classes = max(c.size for c in self.classes_)
            return np.column_stack([
                np.where(missing[:, t], np.nan, self._target_values(
                    np.searchsorted(c, np.where(missing[:, t], c[0], y[:, t]))))
                for t, c in enumerate(self.classes_)])
        if missing.any():
            raise ValueError("y contains NaN or missing labels; every sample "
                             "needs a class label (a missing label is "
                             "allowed in a 2-d y of several tasks only).")
        y = y.reshape(-1)
        self._y_ndim = 1
        self.classes_ = _class_labels(y, "")
        self._n_classes = self.classes_.size
        targets = self._target_values(np.searchsorted(self.classes_, y))
        if task_index is None:
            return targets[:, None]
        return targets  # a task with one class: see _weight_samples

    def _target_values(self, codes):
        """The solver's targets of class codes: ``+1`` / ``-1`` (the larger
        label positive) for binary tasks, the codes themselves otherwise."""
        if self._n_classes == 2:
            return np.where(codes == 1, 1.0, -1.0)
        return codes.astype(float)

    def _codes(self, targets):
        """Inverse of :meth:`_target_values` (observed targets)."""
        if self._n_classes == 2:
            return (targets > 0).astype(np.intp)
        return targets.astype(np.intp)

    def _class_weights(self, classes, codes, s, name):
        """``c`` (one per class of ``classes``) of a task with class codes
        ``codes`` and sample weights ``s``; ``"balanced"`` over the classes
        the task has."""
        c = np.ones(classes.size)
        if self.class_weight is None:
            return c
        if isinstance(self.class_weight, dict):  # this task's labels' entries
            weights = {k: w for k, w in self.class_weight.items()
                       if k in set(classes.tolist())}
            seen = np.arange(classes.size)
        else:
            weights, seen = self.class_weight, np.unique(codes)
        c[seen] = compute_class_weight(weights, classes=classes[seen],
                                       sample_weight=s, y=classes[codes])
        if not np.all(np.isfinite(c)) or np.any(c < 0):
            raise ValueError(
                f"class_weight must give finite, non-negative weights; got "
                f"{dict(zip(classes.tolist(), c.tolist()))}{name}.")
        return c

    def _check_class_weight_labels(self):
        """A ``class_weight`` dict may name any task's labels (each task takes
        its own), but a label of no task is a mistake: ``ValueError``."""
        if not isinstance(self.class_weight, dict):
            return
        known = set(np.concatenate([np.asarray(c, dtype=object) for c in (
            self.classes_ if self._y_ndim == 2 else [self.classes_])]).tolist())
        unknown = [k for k in self.class_weight if k not in known]
        if unknown:
            raise ValueError(
                f"class_weight names label(s) {unknown[:10]} that no task has; "
                f"the labels are {sorted(map(str, known))[:20]}.")

    def _weight_samples(self, X, Y, task_index, s):
        """Multiply ``s`` by the class weights (per task) and check that every
        class keeps a positive weight; a task of the stacked layout lacking
        some class gets pseudo-samples of it (:func:`_missing_class_rows`)."""
        s = np.ones(X.shape[0]) if s is None else s
        labels = self.tasks_ if task_index is not None else np.arange(Y.shape[1])
        self._check_class_weight_labels()
        if task_index is None and (np.isnan(Y).any() or (
                self._n_classes == 2 and Y.shape[1] > 1 and np.any(
                    np.nanmax(Y, axis=0) == np.nanmin(Y, axis=0)))):
            # missing labels, or a binary task of a single class (see
            # _missing_class_rows): the labelled entries in the stacked layout
            task_index, rows = np.nonzero(~np.isnan(Y).T)  # grouped by task
            X, Y, s = X[rows], Y[rows, task_index], s[rows]
        if task_index is None:  # one column of Y per task
            T = Y.shape[1]
            tasks = [(f" (column {t})" if T > 1 else "", slice(None), t)
                     for t in range(T)]
        else:
            tasks = ((f" (task {label.item()!r})", rows, 0) for label, rows
                     in zip(labels, task_rows(task_index, len(labels))))
        weights = np.empty(Y.shape)
        missing = []
        for t, (name, rows, col) in enumerate(tasks):
            yt, st = Y[rows, col] if Y.ndim == 2 else Y[rows], s[rows]
            classes = self.classes_ if self._y_ndim == 1 else self.classes_[t]
            codes = self._codes(yt)
            wt = st * self._class_weights(classes, codes, st, name)[codes]
            if Y.ndim == 2:
                weights[rows, col] = wt
            else:
                weights[rows] = wt
            kept = np.bincount(codes, weights=wt, minlength=classes.size) > 0
            if kept.all():
                continue
            if Y.ndim == 1 and kept.any():  # stacked: see _missing_class_rows
                missing.append((t, self._target_values(np.flatnonzero(~kept))))
                continue
            raise ValueError(f"The samples of a class{name} all have zero "
                             "weight (sample_weight times class_weight); "
                             "each class of a task needs a positive weight.")
        if missing:
            return _missing_class_rows(
                type(self).__name__, X, Y, task_index, weights, missing, labels,
                "have training samples of a single class" if self._n_classes == 2
                else "lack training samples of some class")
        if Y.ndim == 1:
            return X, Y, task_index, weights
        if np.all(weights == weights[:, :1]):  # one weight per sample
            return X, Y, None, weights[:, 0]
        return shared_to_stacked(X, Y, weights)

    def _build_problem(self, X, Y, task_index, sample_weight, omega):
        problem = super()._build_problem(X, Y, task_index, sample_weight, omega)
        if self._n_classes > 2:
            return expand_classes(problem, self._n_classes)
        return problem

    def _weights_of(self, problem, result):
        """With multiclass tasks, each task's intercepts are centred over its
        classes, and a class it does not have (a padded column of a 2-d
        ``Y``) has ``-inf`` (probability 0)."""
        W, intercept = super()._weights_of(problem, result)
        if problem.n_classes:
            intercept = model_intercepts(problem, intercept)
        return W, intercept

    def _class_blocks(self, W, intercept):
        """Multiclass tasks: ``(coef (T, K, d), intercept (T, K))`` of the
        class columns ``W`` (d, T K) and intercepts (T K,)."""
        K = self._n_classes
        return (np.ascontiguousarray(W.T).reshape(-1, K, W.shape[0]),
                np.reshape(intercept, (-1, K)))

    def _store_weights(self, W, intercept):
        """Multiclass tasks: ``coef_`` (T, K, d), ``intercept_`` (T, K)."""
        if self._n_classes == 2:
            return super()._store_weights(W, intercept)
        self.coef_, self.intercept_ = self._class_blocks(W, intercept)
        self.n_tasks_ = self.coef_.shape[0]

    def _scores(self, X, W, intercept, task_index):
        if self._n_classes == 2:
            return super()._scores(X, W, intercept, task_index)
        return class_scores(X, *self._class_blocks(W, intercept),
                            task_index)

    # ------------------------------------------------------------ predict
    def _class_scores(self, X):
        """Multiclass tasks: the scores of every class, (n, K) for a 1-d
        ``y`` and a list of T arrays (n, K_t) for a 2-d one."""
        X, task_index = self._validate_X(X, reset=False)
        coef, intercept = ((self.coef_, self.intercept_) if task_index is None
                           else self._task_models(task_index))
        Z = class_scores(X, coef, intercept, task_index)
        if task_index is not None:
            return Z
        if self._y_ndim == 1:
            return Z[:, 0, :self.classes_.size]
        return [Z[:, t, :c.size] for t, c in enumerate(self.classes_)]

    def _each_task(self, Z, function):
        """``function`` of the scores of one task, or of each task's."""
        return [function(z) for z in Z] if isinstance(Z, list) else function(Z)

    def decision_function(self, X):
        """Linear predictors: ``x^T w_t + b_t`` for binary tasks (positive
        means ``classes_[1]``), the class scores ``x^T w_tk + b_tk`` for
        multiclass tasks (``-inf`` for a class the task had no training
        sample of).

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_tasks) (binary);
        ndarray of shape (n_samples, n_classes) or a list of n_tasks such
        arrays (multiclass)
        """
        check_is_fitted(self)
        if self._n_classes > 2:
            return self._class_scores(X)
        Z = self._linear_predictor(X)
        if self.task_col is None and self._y_ndim == 1:
            return Z[:, 0]
        return Z

    def predict_proba(self, X):
        """Class probabilities: ``sigmoid(x^T w_t + b_t)`` of ``classes_[1]``
        for binary tasks, the softmax of the class scores for multiclass
        tasks.

        Returns
        -------
        ndarray of shape (n_samples, n_classes), or a list of n_tasks such
            arrays; columns in the order of ``classes_`` (of each task).
        """
        return self._each_task(self._scores_of(X), lambda z: np.exp(z))

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`, computed stably."""
        return self._each_task(self._scores_of(X), lambda z: z)

    def _scores_of(self, X):
        """Log-probabilities of every class, per task as :meth:`predict_proba`."""
        Z = self.decision_function(X)
        if self._n_classes > 2:
            return self._each_task(
                Z, lambda z: z - logsumexp(z, axis=1, keepdims=True))

        def pair(z):
            return np.column_stack([-np.logaddexp(0.0, z), -np.logaddexp(0.0, -z)])
        if Z.ndim == 1:
            return pair(Z)
        return [pair(Z[:, t]) for t in range(Z.shape[1])]

    def predict(self, X):
        """Predicted labels: the class of largest probability of each task.

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_tasks)
        """
        check_is_fitted(self)
        if self._n_classes > 2:
            Z = self._class_scores(X)
            if not isinstance(Z, list):
                return self.classes_[np.argmax(Z, axis=1)]
            return np.column_stack([c[np.argmax(z, axis=1)]
                                    for z, c in zip(Z, self.classes_)])
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
        # compared entry by entry: a column of a mixed-type DataFrame comes as
        # objects, whose type accuracy_score cannot tell
        return float(np.mean([
            np.average(y[rows, t] == pred[rows, t],
                       weights=None if s is None else s[rows])
            for t, rows in enumerate(observed.T)]))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        tags.target_tags.multi_output = True
        return tags
