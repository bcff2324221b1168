"""Cross-validated multi-task estimators: the path on every fold, in parallel.

For each fold the training rows become one
:class:`~mtlinear._task_data.TaskProblem`, built once; for each
``(penalty, l1_ratio)`` of the grid the fold runs the warm-started path
(:func:`mtlinear._path.path_on_problem`) down the alpha grid and scores the
held-out rows after every alpha.  The best mean score over the folds chooses
``(penalty_, l1_ratio_, alpha_)``, and the model is refitted on all the data,
starting from the mean of the folds' solutions there.
The alpha grids come from the full data (``alpha_max`` of each
``(penalty, l1_ratio)``), so every fold uses the same alphas, as in
scikit-learn's ``MultiTaskLassoCV``.
"""
import warnings
from numbers import Integral, Real
from types import SimpleNamespace

import numpy as np
from joblib import Parallel, delayed, effective_n_jobs
from scipy.special import logsumexp, xlogy
from sklearn.base import is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import check_scoring, get_scorer_names
from sklearn.model_selection import check_cv
from sklearn.utils import _safe_indexing
from sklearn.utils.validation import column_or_1d
from sklearn.utils._param_validation import Interval, StrOptions

from ._classifier import MultiTaskClassifier
from ._dask import is_dask_collection
from ._dask_cv import fit_cv_dask
from ._fold_solutions import FoldSolutions
from ._path import (alpha_grid, alpha_max_of_problem, check_alphas,
                    path_on_problem, ridge_alpha_top, warn_unconverged)
from ._progress import Progress
from ._regressor import MultiTaskRegressor
from .metrics import task_scorer
from .model_selection import RepeatedTaskStratifiedKFold, TaskStratifiedKFold
from .penalties import Penalty, penalty_class

__all__ = ["MultiTaskRegressorCV", "MultiTaskClassifierCV"]

# fitted attributes that a scoring model copies from the CV estimator
_VALIDATION_ATTRIBUTES = ("n_features_in_", "feature_names_in_", "tasks_",
                          "classes_", "_y_ndim", "_n_classes")


def _check_penalties(penalty):
    """The list of penalties (names or instances) a CV estimator searches."""
    single = isinstance(penalty, (str, Penalty))
    penalties = [penalty] if single else list(penalty)
    if not penalties:
        raise ValueError("penalty must be a penalty (a registered name or a "
                         "Penalty) or a non-empty list of them; got an empty "
                         "list.")
    for entry in penalties:
        penalty_class(entry)  # unknown names fail here, with the known ones
    return penalties


def _grid_values(value, name, upper=np.inf):
    """A searched parameter (a float or a list of them) as a list of floats,
    each finite and in ``[0, upper]``."""
    values = np.atleast_1d(np.asarray(value, dtype=np.float64))
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"{name} must be a float or a non-empty 1-d list of "
                         f"floats, got {value!r}.")
    if not np.all(np.isfinite(values) & (values >= 0) & (values <= upper)):
        bounds = f"in [0, {upper:g}]" if np.isfinite(upper) else "finite and >= 0"
        raise ValueError(f"Every {name} must be {bounds}; got {value!r}.")
    return values.tolist()


def neg_mean_of(values, Y, sample_weight):
    """Minus the (weighted) mean of ``values`` over rows, averaged over
    tasks, leaving out the entries whose target ``Y`` is ``NaN``."""
    observed = ~np.isnan(Y)
    s = np.ones(Y.shape[0]) if sample_weight is None else sample_weight
    s = s.reshape(-1, *([1] * (Y.ndim - 1))) * observed
    values = np.where(observed, values, 0.0)
    return -float(np.mean((s * values).sum(axis=0) / s.sum(axis=0)))


def neg_mean_squared_error(Z, Y, sample_weight):
    """Minus the (weighted) mean squared error over rows, averaged over tasks
    (``NaN`` targets left out of their task's mean)."""
    return neg_mean_of((Z - np.nan_to_num(Y)) ** 2, Y, sample_weight)


def neg_mean_poisson_deviance(Z, Y, sample_weight):
    """Minus the (weighted) mean Poisson deviance ``2 (y log(y / mu) - y +
    mu)`` of the means ``mu = exp(Z)``, as :func:`neg_mean_squared_error`:
    scikit-learn's ``mean_poisson_deviance``, computed from the linear
    predictor ``Z = log mu`` (no logarithm of an underflowed mean)."""
    with np.errstate(over="ignore", invalid="ignore"):
        deviance = 2.0 * (xlogy(Y, Y) - Y * Z - Y + np.exp(Z))
    return neg_mean_of(deviance, Y, sample_weight)


def _fold_path(estimator, data, train, test, grids, progress=None):
    """Scores (n_grids, n_alphas) on ``test`` of the paths fitted on ``train``.

    Returns ``(scores, converged, caught, solutions)``: both of shape
    (n_grids, n_alphas), the warnings of the scorer as ``(category,
    message)`` pairs (:func:`_warn_scoring` reports them once per category)
    and the fold's :class:`FoldSolutions`.
    """
    task_index = data.task_index
    ti_train = None if task_index is None else task_index[train]
    sw_train = None if data.sample_weight is None else data.sample_weight[train]
    problem = estimator._build_problem(data.X[train], data.Y[train], ti_train,
                                       sw_train, data.omega)
    problem.scores_only = True
    X_test = data.X[test]
    ti_test = None if task_index is None else task_index[test]
    sw_test = None if data.sample_weight is None else data.sample_weight[test]
    if data.scorer is not None:
        X_raw_test = _safe_indexing(data.X_raw, test)
        y_raw_test = _safe_indexing(data.y_raw, test)
    shape = (len(grids), len(grids[0][-1]))  # every grid has as many alphas
    scores = np.empty(shape)
    converged = np.empty(shape, dtype=bool)
    caught = []
    solutions = FoldSolutions(shape)
    for g, (penalty, l1_ratio, graph_alpha, alphas) in enumerate(grids):
        _, coupling = estimator._task_coupling(problem, graph_alpha)
        for k, result in path_on_problem(
                problem, data.loss,
                estimator._make_penalty(data.X.shape[1], penalty, l1_ratio,
                                        problem),
                alphas, tol=data.tol, max_iter=data.max_iter,
                solver=data.solver, progress=progress, coupling=coupling):
            W, intercept = estimator._weights_of(problem, result)
            converged[g, k] = result.converged
            solutions.keep(g, k, *problem.full_solution(result.W, result.b))
            if data.scorer is None:
                Z = estimator._scores(X_test, W, intercept, ti_test)
                scores[g, k] = estimator._default_score(Z, data.Y[test], sw_test)
            else:
                model = estimator._scoring_model(penalty, l1_ratio, graph_alpha,
                                                 alphas[k], W, intercept)
                with warnings.catch_warnings(record=True) as records:
                    warnings.simplefilter("always")
                    scores[g, k] = data.scorer(model, X_raw_test, y_raw_test)
                caught += [(w.category, str(w.message)) for w in records]
    return scores, converged, caught, solutions


def _warn_scoring(name, caught, n_scores):
    """One warning per category for the scorer's warnings over every fold
    and alpha (tiny tasks whose test rows hold one class made an
    ``roc_auc`` search emit up to a thousand)."""
    first = {}
    for category, message in caught:
        first.setdefault(category, []).append(message)
    for category, messages in first.items():
        warnings.warn(f"{name}: {len(messages)} warning(s) of the scorer over "
                      f"{n_scores} held-out scores; the first: {messages[0]}",
                      category)


def _numbered_fold_path(i, *args):
    return i, _fold_path(*args)


class MultiTaskCVMixin:
    """Cross-validation over alpha (and l1_ratio, penalty) for an estimator class.

    A subclass lists the mixin first and the estimator class second
    (``class MultiTaskRegressorCV(MultiTaskCVMixin, MultiTaskRegressor)``); it
    inherits validation, target encoding and prediction from the estimator and
    sets ``_estimator_class`` and ``_default_score`` (a function of the
    held-out linear predictor, targets and sample weights, higher is better).
    """

    @staticmethod
    def _cv_constraints(estimator_class):
        """The estimator's parameter constraints with the CV parameters: a grid
        (``alphas``) instead of ``alpha``, no ``warm_start``."""
        kept = {k: v for k, v in estimator_class._parameter_constraints.items()
                if k not in ("alpha", "warm_start")}
        return {**kept, **MultiTaskCVMixin._cv_parameter_constraints}

    _cv_parameter_constraints = {
        "penalty": [str, Penalty, list, tuple],
        "l1_ratio": [Interval(Real, 0, 1, closed="both"), "array-like"],
        "alphas": [Interval(Integral, 1, None, closed="left"), "array-like"],
        "eps": [Interval(Real, 0, 1, closed="neither")],
        "cv": ["cv_object"],
        "scoring": [None, StrOptions(set(get_scorer_names())), callable],
        "n_jobs": [None, Integral],
        "graph_alpha": [Interval(Real, 0, None, closed="left"), "array-like"],
    }

    _estimator_class = None
    _learns_task_weights = False  # the folds would each learn their own

    def fit(self, X, y, sample_weight=None, groups=None):
        """Choose the hyper-parameters by cross-validation, then refit.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_columns)
            Features, plus the task column when ``task_col`` is set.
        y : array-like of shape (n_samples,) or (n_samples, n_tasks)
        sample_weight : array-like of shape (n_samples,), optional
            Weights of the fits and of the default held-out score (a custom
            ``scoring`` is called without them, as in ``GridSearchCV``).
        groups : array-like of shape (n_samples,), optional
            Group labels of the rows for a group splitter ``cv`` (such as
            ``GroupKFold``), passed to its ``split`` as in ``GridSearchCV``.
            :class:`TaskStratifiedKFold`, the default with ``task_col``,
            splits by task itself and takes none.

        Returns
        -------
        self
        """
        if is_dask_collection(X, y, sample_weight):
            if groups is not None:
                raise ValueError(
                    f"{type(self).__name__}.fit on dask collections makes its "
                    "folds from the collections' blocks and takes no groups; "
                    "fit in memory to split by groups.")
            return fit_cv_dask(self, X, y, sample_weight)
        self._validate_params()
        fitted = self._fitted_state()
        try:
            self._fit_in_memory(X, y, sample_weight, groups)
        except BaseException:  # leave the model as it was
            self._restore_fitted_state(fitted)
            raise
        return self

    def _fit_penalties(self):
        return _check_penalties(self.penalty)

    def _grids(self, problem, loss):
        """``(grids, shape)``: the ``(penalty, l1_ratio, graph_alpha,
        alphas)`` searched, and the shape of the parameters' product."""
        penalties = _check_penalties(self.penalty)
        l1_ratios = _grid_values(self.l1_ratio, "l1_ratio", upper=1.0)
        graph_alphas = _grid_values(self.graph_alpha, "graph_alpha")
        # alpha_max does not depend on the graph (its gradient is 0 at W = 0)
        grids = [(p, r, a, alphas) for p in penalties for r in l1_ratios
                 for alphas in [self._alpha_grid(problem, loss, p, r)]
                 for a in graph_alphas]
        return grids, (len(penalties), len(l1_ratios), len(graph_alphas))

    def _fit_in_memory(self, X, y, sample_weight, groups=None):
        data, problem = self._prepare(X, y, sample_weight)
        grids, shape = self._grids(problem, data.loss)
        splits = self._splits(data, groups)

        n_units = len(splits) * sum(len(g[-1]) for g in grids)
        progress = Progress(n_units, self.verbose, "cross-validation")
        if effective_n_jobs(self.n_jobs) == 1:
            results = [_fold_path(self, data, train, test, grids, progress)
                       for train, test in splits]
        else:
            results = [None] * len(splits)
            jobs = Parallel(n_jobs=self.n_jobs, return_as="generator_unordered")(
                delayed(_numbered_fold_path)(i, self, data, train, test, grids)
                for i, (train, test) in enumerate(splits))
            for i, result in jobs:
                results[i] = result
                progress.update(n_units // len(splits))
        scores = np.stack([r[0] for r in results], axis=-1)  # (G, A, folds)
        converged = np.all([r[1] for r in results], axis=0)
        _warn_scoring(f"{type(self).__name__} cross-validation",
                      [w for r in results for w in r[2]], scores.size)
        g, k = self._choose(grids, shape, scores, converged)
        self._refit(problem, data.loss, FoldSolutions.refit_start(
            [r[3] for r in results], g, k))

    def _choose(self, grids, shape, scores, converged):
        """Set the chosen parameters and the paths' attributes from the
        held-out ``scores`` (n_grids, n_alphas, n_folds); returns the chosen
        ``(grid, alpha)`` indices."""
        for g, grid in enumerate(grids):
            warn_unconverged(grid[-1], converged[g],
                             f"{type(self).__name__} cross-validation")
        mean = np.mean(scores, axis=-1)
        if np.all(np.isnan(mean)):
            raise ValueError("Every cross-validation score is NaN; check the "
                             "scoring function and the folds.")
        best = int(np.argmax(np.where(np.isnan(mean), -np.inf, mean)))
        g, k = np.unravel_index(best, mean.shape)
        penalty, l1_ratio, graph_alpha, alphas = grids[g]
        self.penalty_, self.l1_ratio_, self.alpha_ = penalty, l1_ratio, alphas[k]
        self.graph_alpha_ = graph_alpha
        self.best_score_ = float(mean[g, k])
        squeeze = tuple(a for a, n in enumerate(shape) if n == 1)
        self.alphas_ = np.stack([grid[-1] for grid in grids]).reshape(
            shape + (-1,)).squeeze(axis=squeeze)
        self.score_path_ = scores.reshape(shape + scores.shape[1:]).squeeze(
            axis=squeeze)
        return g, k

    # ------------------------------------------------------------ pieces
    def _prepare(self, X, y, sample_weight):
        """Validate the inputs; return the fold data and the full problem."""
        X_raw, y_raw = X, y
        X, Y, task_index, sample_weight, omega = self._validate_fit_data(
            X, y, sample_weight)
        # a scorer named: each task scored on its own rows, then averaged
        scorer = (None if self.scoring is None
                  else task_scorer(self.scoring) if isinstance(self.scoring, str)
                  else check_scoring(self, scoring=self.scoring))
        # what every fold needs: validated arrays and settings (picklable)
        data = SimpleNamespace(
            X=X, Y=Y, task_index=task_index, sample_weight=sample_weight,
            n_tasks=len(omega), omega=omega, loss=self._make_loss(), tol=self.tol,
            max_iter=self.max_iter, solver=self.solver, scorer=scorer,
            X_raw=X_raw if scorer is not None else None,
            y_raw=y_raw if scorer is not None else None)
        problem = self._build_problem(X, Y, task_index, sample_weight, omega)
        return data, problem

    def _alpha_grid(self, problem, loss, penalty, l1_ratio):
        if not isinstance(self.alphas, Integral):
            return check_alphas(self.alphas)
        penalty = self._make_penalty(problem.n_features_in, penalty, l1_ratio,
                                     problem)
        if penalty.lam == 0:  # a ridge: twice the decades, from its scale
            return alpha_grid(ridge_alpha_top(problem, loss), self.alphas,
                              self.eps ** 2)
        return alpha_grid(alpha_max_of_problem(problem, loss, penalty),
                          self.alphas, self.eps)

    def _cv_strata(self, data):
        """Labels the default stacked-layout splitter stratifies on."""
        return data.task_index

    def _splits(self, data, groups=None):
        """``(train, test)`` index pairs; every task must train in every fold.
        ``groups``: the user's, for a group splitter."""
        cv = 5 if self.cv is None else self.cv
        if groups is not None:
            groups = column_or_1d(groups)
            if groups.shape[0] != data.X.shape[0]:
                raise ValueError(f"groups has {groups.shape[0]} entries but X "
                                 f"has {data.X.shape[0]} rows; give one group "
                                 "label per row.")
        if data.task_index is None:
            y = data.Y[:, 0] if data.Y.shape[1] == 1 else data.Y
            if np.isnan(y).any():  # missing targets: nothing to stratify on
                y = None
            splits = list(check_cv(cv, y, classifier=is_classifier(self))
                          .split(data.X, y, groups))
        else:
            if isinstance(cv, Integral):
                cv = TaskStratifiedKFold(cv)
            if isinstance(cv, (TaskStratifiedKFold, RepeatedTaskStratifiedKFold)):
                if groups is not None:
                    raise ValueError(
                        f"{type(cv).__name__} splits the rows of every task "
                        "itself and takes no groups; pass a group splitter "
                        "as cv (for instance cv=GroupKFold()) to split by "
                        "groups.")
                groups = self._cv_strata(data)
            splits = list(check_cv(cv).split(data.X, data.Y, groups))
            for k, (train, _) in enumerate(splits):
                present = np.bincount(data.task_index[train],
                                      minlength=data.n_tasks) > 0
                if not np.all(present):
                    missing = self.tasks_[~present][:10].tolist()
                    raise ValueError(
                        f"Fold {k} trains without any row of task(s) {missing}; "
                        "a multi-task model needs every task in every training "
                        "fold. Use cv=TaskStratifiedKFold(...) (the default for "
                        "an integer cv with task_col).")
        return splits

    def _estimator_params(self, penalty, l1_ratio, graph_alpha, alpha):
        names = self._estimator_class._get_param_names()
        params = {k: v for k, v in self.get_params(deep=False).items()
                  if k in names}
        params.update(penalty=penalty, l1_ratio=l1_ratio,
                      graph_alpha=graph_alpha, alpha=alpha)
        return params

    def _scoring_model(self, penalty, l1_ratio, graph_alpha, alpha, W,
                       intercept):
        """A fitted ``_estimator_class`` with weights ``W`` (for a scorer)."""
        model = self._estimator_class(**self._estimator_params(
            penalty, l1_ratio, graph_alpha, alpha))
        for name in _VALIDATION_ATTRIBUTES:
            if hasattr(self, name):
                setattr(model, name, getattr(self, name))
        model._store_weights(W, intercept)
        return model

    def _refit(self, problem, loss, start=None):
        """Fit ``problem`` at the chosen parameters, from ``start`` (the
        user's ``(W, intercepts)``, :meth:`FoldSolutions.refit_start`) if
        given."""
        penalty = self._make_penalty(problem.n_features_in, self.penalty_,
                                     self.l1_ratio_, problem)
        graph, coupling = self._task_coupling(problem, self.graph_alpha_)
        start = (None, None) if start is None else problem.solver_start(*start)
        _, result = next(path_on_problem(
            problem, loss, penalty, [self.alpha_], start=start, tol=self.tol,
            max_iter=self.max_iter, solver=self.solver,
            solver_verbose=max(self.verbose - 2, 0), coupling=coupling))
        if not result.converged:
            warnings.warn(f"{type(self).__name__} refit "
                          f"{result.unconverged_reason(self.max_iter)}",
                          ConvergenceWarning)
        self._set_solution(problem, result, graph)


_SHARED_DOC_PARAMETERS = """    penalty : str or list of str, default="l21"
        One of ``"l21"``, ``"l1"``, ``"trace"``, ``"l2"``, or a list of them:
        cross-validation then also chooses the penalty (``penalty_``).
    l1_ratio : float or list of float in [0, 1], default=1.0
        Share of the norm in the penalty (the rest is a ridge term); a list is
        searched like scikit-learn's ``MultiTaskElasticNetCV``.  ``0`` (and
        ``penalty="l2"``) is a ridge: see ``alphas`` for its grid.
    alphas : int or array-like, default=100 (regressor), 10 (classifier)
        An integer ``n`` gives ``n`` log-spaced values from ``alpha_max`` (of
        the full data, per penalty and ``l1_ratio``) down to
        ``eps * alpha_max``; an array is used as given (sorted decreasing)
        for every penalty and ``l1_ratio``.  A ridge (``"l2"``, or
        ``l1_ratio=0``) has no ``alpha_max``: its grid starts at 10 times the
        data-fit's largest curvature and spans ``eps ** 2``.
    eps : float in (0, 1), default=1e-3
        ``alpha_min / alpha_max`` of the automatic grid.
    cv : int, cross-validation generator or iterable, default=None
        ``None`` means 5 folds.  An integer ``k`` means ``k`` folds:
        :class:`~mtlinear.model_selection.TaskStratifiedKFold` with
        ``task_col`` (every task in every fold), otherwise scikit-learn's
        default (``KFold``, or ``StratifiedKFold`` for one binary task).
        Splitters and iterables of ``(train, test)`` indices are used as given
        (a group splitter gets ``fit``'s ``groups``); with ``task_col`` every
        training fold must contain every task.
    fit_intercept, task_col, task_weights, task_graph, unseen_task
        As for the estimator.
    graph_alpha : float or list of float, default=1.0
        Strength of ``task_graph``; a list is searched (``graph_alpha_``).
    max_iter : int, default=5000
        Iteration limit of each solve.
    tol : float, default=1e-4
        Relative duality-gap tolerance of each solve.
    solver : {"auto", "bcd", "prox_newton", "fista", "admm", "newton_admm"}, \
            default="auto"
    l1_share, penalty_factor, positive
        As for the estimator (fixed, not searched; in a grid, use
        ``GridSearchCV``).
    n_jobs : int, default=None
        Folds computed in parallel (joblib); ``-1`` uses every core.
    verbose : int, default=0
        1: progress over the folds and alphas (a bar on a terminal); 2: one
        line per solved alpha; 3: also the solver's iterations.
"""

_SHARED_DOC_ATTRIBUTES = """    alpha_ : float
        The chosen ``alpha``.
    l1_ratio_ : float
        The chosen ``l1_ratio``.
    penalty_ : str
        The chosen penalty.
    graph_alpha_ : float
        The chosen ``graph_alpha``.
    alphas_ : ndarray of shape ([n_penalties,] [n_l1_ratios,] [n_graph_alphas,] \
n_alphas)
        The alpha grid of each penalty, ``l1_ratio`` and ``graph_alpha`` (an
        axis is dropped when it has length 1, as in scikit-learn).
    score_path_ : ndarray of shape ([n_penalties,] [n_l1_ratios,] \
[n_graph_alphas,] n_alphas, n_folds)
        The held-out score of every fold at every alpha (higher is better).
    best_score_ : float
        Mean of ``score_path_`` over the folds at the chosen point.
    coef_ : ndarray of shape (n_tasks, n_features)
        Refitted on all the data at the chosen point.
    intercept_ : ndarray of shape (n_tasks,)
    n_iter_ : int
        Solver iterations of the refit.
    dual_gap_ : float
        Duality gap of the refit.
    n_tasks_ : int
    tasks_ : ndarray
        Sorted task labels (stacked layout only).
    n_features_in_ : int
    feature_names_in_ : ndarray of str
"""


class MultiTaskRegressorCV(MultiTaskCVMixin, MultiTaskRegressor):
    __doc__ = """Multi-task regressor with alpha chosen by cross-validation.

    For every fold, the warm-started regularization path of
    :class:`~mtlinear.MultiTaskRegressor` is computed on the training rows
    and scored on the held-out rows after every alpha; the ``(penalty,
    l1_ratio, alpha)`` with the best mean score is refitted on all the data,
    from the mean of the folds' solutions there (as ``LogisticRegressionCV``).
    The default score is the mean squared error of the held-out rows
    (weighted by ``sample_weight``; in the shared layout averaged over the
    tasks), as in scikit-learn's ``MultiTaskLassoCV``: with the same alphas
    and folds, ``mse_path_`` and ``alpha_`` are the same.  With
    ``loss="poisson"`` it is the mean Poisson deviance of the held-out rows
    (scikit-learn's ``mean_poisson_deviance`` of the predicted means), in
    the same way.

    Parameters
    ----------
%(parameters)s    loss : {"squared", "huber", "poisson"}, default="squared"
    delta : float > 0, default=1.0
        As for :class:`~mtlinear.MultiTaskRegressor`.  With ``"poisson"`` a
        training fold whose targets of a task are all zero is an error (the
        task's intercept would be ``-inf``).
    scoring : str or callable, default=None
        ``None``: the held-out mean squared error (``mse_path_``), or with
        ``loss="poisson"`` the mean Poisson deviance (minus ``score_path_``;
        no ``mse_path_``).  A
        scikit-learn scorer's name: that score of each task on its own
        held-out rows, averaged over the tasks
        (:func:`mtlinear.metrics.task_scorer`); a callable: called as given
        on a :class:`~mtlinear.MultiTaskRegressor` holding each alpha's
        weights.  ``GridSearchCV`` with the same folds, grid and scoring
        (``task_scorer(name)`` for a name) chooses the same alpha.

    Attributes
    ----------
%(attributes)s    mse_path_ : ndarray, shape of ``score_path_``
        Held-out mean squared errors (only with ``scoring=None``, and not
        with ``loss="poisson"``): ``-score_path_``.

    See Also
    --------
    mtlinear.regularization_path : the path on one data set.
    mtlinear.model_selection.TaskStratifiedKFold : the stacked-layout folds.

    Examples
    --------
    >>> import numpy as np
    >>> from mtlinear import MultiTaskRegressorCV
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((60, 8))
    >>> Y = X[:, :2] @ rng.standard_normal((2, 3)) + 0.1 * rng.standard_normal((60, 3))
    >>> model = MultiTaskRegressorCV(alphas=20).fit(X, Y)
    >>> model.mse_path_.shape
    (20, 5)
    >>> np.flatnonzero(np.linalg.norm(model.coef_, axis=0) > 0.1)  # features kept
    array([0, 1])
    """ % dict(parameters=_SHARED_DOC_PARAMETERS, attributes=_SHARED_DOC_ATTRIBUTES)

    _parameter_constraints = MultiTaskCVMixin._cv_constraints(MultiTaskRegressor)
    _estimator_class = MultiTaskRegressor

    def _default_score(self, Z, Y, sample_weight):
        """Minus the held-out mean squared error, or mean Poisson deviance
        with ``loss="poisson"`` (higher is better)."""
        if self._make_loss().name == "poisson":
            return neg_mean_poisson_deviance(Z, Y, sample_weight)
        return neg_mean_squared_error(Z, Y, sample_weight)

    def __init__(self, penalty="l21", l1_ratio=1.0, *, alphas=100, eps=1e-3,
                 l1_share=0.5, penalty_factor=None, positive=False,
                 loss="squared", delta=1.0, cv=None, scoring=None,
                 fit_intercept=True, task_col=None, task_weights=None,
                 task_graph=None, graph_alpha=1.0, unseen_task="error",
                 max_iter=5000, tol=1e-4, solver="auto", n_jobs=None,
                 verbose=0):
        self.penalty = penalty
        self.l1_ratio = l1_ratio
        self.l1_share = l1_share
        self.penalty_factor = penalty_factor
        self.positive = positive
        self.loss = loss
        self.delta = delta
        self.alphas = alphas
        self.eps = eps
        self.cv = cv
        self.scoring = scoring
        self.fit_intercept = fit_intercept
        self.task_col = task_col
        self.task_weights = task_weights
        self.task_graph = task_graph
        self.graph_alpha = graph_alpha
        self.unseen_task = unseen_task
        self.max_iter = max_iter
        self.tol = tol
        self.solver = solver
        self.n_jobs = n_jobs
        self.verbose = verbose

    def fit(self, X, y, sample_weight=None, groups=None):
        super().fit(X, y, sample_weight, groups)
        if self.scoring is None and self._make_loss().name != "poisson":
            self.mse_path_ = -self.score_path_  # squared errors
        elif hasattr(self, "mse_path_"):
            del self.mse_path_
        return self

    fit.__doc__ = MultiTaskCVMixin.fit.__doc__


def neg_log_loss(Z, Y, sample_weight):
    """Minus the (weighted) mean logistic loss ``log(1 + exp(-y z))``, y in {-1, 1}.

    Over rows, averaged over tasks (``NaN`` labels left out of their task's
    mean); it is scikit-learn's ``log_loss`` of the probabilities
    ``sigmoid(z)``.
    """
    return neg_mean_of(np.logaddexp(0.0, -np.nan_to_num(Y) * Z), Y,
                       sample_weight)


def neg_multinomial_log_loss(Z, Y, sample_weight):
    """Minus the (weighted) mean cross-entropy of the softmax of the class
    scores ``Z`` ((n, K) stacked, (n, T K) shared) at the class codes ``Y``
    ((n,) or (n, T)), as :func:`neg_log_loss`.

    A class its task had no training sample of has probability 0; as in
    scikit-learn's ``log_loss``, probabilities are clipped at the machine
    epsilon, so such a sample costs ``-log(eps)`` (about 36), not infinity.
    """
    codes = np.nan_to_num(Y).astype(np.intp)
    scores = Z.reshape(codes.shape + (-1,))
    observed = np.take_along_axis(scores, codes[..., None], axis=-1)[..., 0]
    with np.errstate(invalid="ignore"):  # -inf - (-inf) is NaN: clipped
        loss = logsumexp(scores, axis=-1) - observed
    return neg_mean_of(np.minimum(np.nan_to_num(loss, nan=np.inf),
                                  -np.log(np.finfo(float).eps)), Y, sample_weight)



class MultiTaskClassifierCV(MultiTaskCVMixin, MultiTaskClassifier):
    __doc__ = """Multi-task logistic classifier with alpha chosen by cross-validation.

    For every fold, the warm-started regularization path of
    :class:`~mtlinear.MultiTaskClassifier` is computed on the training rows
    and scored on the held-out rows after every alpha; the ``(penalty,
    l1_ratio, alpha)`` with the best mean score is refitted on all the data,
    from the mean of the folds' solutions there (as ``LogisticRegressionCV``).
    The default score is the held-out **log-loss** (mean of
    ``log(1 + exp(-y z))``, the softmax cross-entropy for multiclass tasks,
    weighted by ``sample_weight``, averaged over the tasks in the shared
    layout): unlike accuracy it is smooth in alpha and
    rewards calibrated probabilities, so the choice is stable from fold to
    fold.  Pass ``scoring="accuracy"`` (or any scorer) to choose otherwise.

    With ``task_col`` an integer ``cv`` stratifies on (task, class) pairs,
    so every training fold has both classes of every task.

    The default grid is shorter than the regressor's (``alphas=10``, like
    ``LogisticRegressionCV``'s ``Cs=10``): each logistic solve costs many
    proximal-gradient iterations, and the log-loss curve is smooth enough
    for a coarse grid.

    Parameters
    ----------
%(parameters)s    class_weight : None, "balanced" or dict, default=None
        As for :class:`~mtlinear.MultiTaskClassifier`; recomputed on each
        training fold.
    scoring : str or callable, default=None
        ``None``: minus the held-out log-loss.  A scikit-learn scorer's
        name: that score of each task on its own held-out rows, averaged
        over the tasks (:func:`mtlinear.metrics.task_scorer`: ``"roc_auc"``
        is then the mean per-task AUC, not one ranking of all tasks' rows); a
        callable: called as given on a :class:`~mtlinear.MultiTaskClassifier`
        holding each alpha's weights.

    Attributes
    ----------
%(attributes)s    classes_ : ndarray of shape (n_classes,) or list of such arrays

    Examples
    --------
    >>> import numpy as np
    >>> from mtlinear import MultiTaskClassifierCV
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((100, 6))
    >>> y = (X[:, 0] + 0.5 * rng.standard_normal(100) > 0).astype(int)
    >>> model = MultiTaskClassifierCV(alphas=10).fit(X, y)
    >>> model.score_path_.shape
    (10, 5)
    """ % dict(parameters=_SHARED_DOC_PARAMETERS, attributes=_SHARED_DOC_ATTRIBUTES)

    _parameter_constraints = MultiTaskCVMixin._cv_constraints(MultiTaskClassifier)
    _estimator_class = MultiTaskClassifier

    def _default_score(self, Z, Y, sample_weight):
        """Minus the held-out log-loss (binary or multinomial)."""
        score = neg_log_loss if self._n_classes == 2 else neg_multinomial_log_loss
        return score(Z, Y, sample_weight)

    def __init__(self, penalty="l21", l1_ratio=1.0, *, alphas=10, eps=1e-3,
                 l1_share=0.5, penalty_factor=None, positive=False, cv=None,
                 scoring=None, fit_intercept=True, class_weight=None,
                 task_col=None, task_weights=None, task_graph=None,
                 graph_alpha=1.0, unseen_task="error", max_iter=5000, tol=1e-4,
                 solver="auto", n_jobs=None, verbose=0):
        self.penalty = penalty
        self.l1_ratio = l1_ratio
        self.l1_share = l1_share
        self.penalty_factor = penalty_factor
        self.positive = positive
        self.alphas = alphas
        self.eps = eps
        self.cv = cv
        self.scoring = scoring
        self.fit_intercept = fit_intercept
        self.class_weight = class_weight
        self.task_col = task_col
        self.task_weights = task_weights
        self.task_graph = task_graph
        self.graph_alpha = graph_alpha
        self.unseen_task = unseen_task
        self.max_iter = max_iter
        self.tol = tol
        self.solver = solver
        self.n_jobs = n_jobs
        self.verbose = verbose

    def _cv_strata(self, data):
        """(task, class) pairs: both classes of every task in every fold."""
        task = self.tasks_[data.task_index].astype(str)
        label = self.classes_[self._codes(data.Y)].astype(str)
        return np.char.add(np.char.add(task, ", class "), label)
