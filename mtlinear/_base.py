"""Shared shell of the multi-task estimators: parameters, validation, fit."""
import functools
import warnings
from numbers import Integral, Real

import numpy as np
from scipy.sparse import issparse
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import assert_all_finite, check_array
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import (_check_sample_weight, check_is_fitted,
                                      validate_data)

from ._adaptive import fit_task_weights
from ._design import linear_predictor
from ._missing import check_observed, has_missing, masked_problem
from ._multinomial import expand_coupling
from ._path import path_on_problem
from ._solve import reads_rows
from ._task_graph import graph_coupling
from ._task_data import (_check_column_index, build_problem, check_task_weights,
                         encode_task_labels, set_task_labels, split_task_column,
                         task_ordered_features)
from .penalties import Penalty, make_penalty

__all__ = ["MultiTaskLinearModel"]


@functools.lru_cache(maxsize=None)
def _param_names(cls):
    """The constructor's parameters (scikit-learn inspects the signature at
    each call: a fifth of a small fit)."""
    return frozenset(cls._get_param_names())


def check_features(X, *, estimator_name):
    """Validate the numeric feature block: finite floats, dense or CSR/CSC."""
    return check_array(X, accept_sparse=("csr", "csc"), dtype=np.float64,
                       ensure_all_finite=True, estimator=estimator_name,
                       input_name="X")


# the penalties' table of the estimators' docstrings
PENALTY_TABLE = """\
    ============  ============================================  ===============
    ``penalty``   ``R(W)`` (``r = l1_ratio``)                   effect
    ============  ============================================  ===============
    ``"l1"``      ``r ||W||_1 + (1-r)/2 ||W||_F^2``             sparse, per task
    ``"l2"``      ``||W||_F^2 / 2``                             ridge, per task
    ``"l21"``     ``r sum_j ||W_j||_2 + (1-r)/2 ||W||_F^2``     shared features
    ``"trace"``   ``r ||W||_* + (1-r)/2 ||W||_F^2``             shared subspace
    ``"sparse_``  ``r (s ||W||_1 + (1-s) sum_j ||W_j||_2)``     shared features,
    ``group"``    ``+ (1-r)/2 ||W||_F^2``, ``s = l1_share``     sparse inside
    ============  ============================================  ===============

    ``penalty_factor`` multiplies each feature's whole row term (l1, l2,
    l21, sparse_group) and ``positive=True`` constrains ``W >= 0`` (same
    penalties).  Any penalty registered with
    :func:`mtlinear.penalties.register_penalty`, or a penalty instance, is
    accepted too; ``alpha`` and ``l1_ratio`` set its strength.
"""


def _check_finite(estimator, result, alpha):
    """``ValueError`` for a solve whose iterate overflowed: with ``alpha``
    at or near 0 a loss may have no minimizer (weights sent to infinity)."""
    if np.all(np.isfinite(result.W)) and (
            result.b is None or np.all(np.isfinite(result.b))):
        return
    raise ValueError(
        f"{type(estimator).__name__}: the solver diverged (coefficients not "
        f"finite) at alpha={alpha:g}. The objective may have no minimizer: "
        "near alpha = 0, classes a linear model separates (logistic loss) or "
        "counts it fits exactly (Poisson loss) send the weights to infinity. "
        "Use a larger alpha (the CV estimators choose one), or scale the "
        "features.")


def _some_features(features, name):
    """``features`` (``X`` without its task column), unless there are none."""
    if len(features.shape) == 2 and features.shape[1] == 0:
        raise ValueError(f"{name}: X has only the task column; it needs at "
                         "least one feature column besides it.")
    return features


class MultiTaskLinearModel(BaseEstimator):
    """Base class of the regularized multi-task linear estimators.

    Subclasses set ``_loss`` and implement ``_encode_targets`` (user targets
    to the solver's in the layout's shape) and the prediction methods.
    """

    _missing_targets = False  # NaN in the shared layout's y: not observed
    _learns_task_weights = False  # task_weights="auto" (mtlinear._adaptive)

    # penalty and solver names are checked at fit time against the
    # registries, so that a penalty or solver registered later is accepted
    _parameter_constraints = {
        "penalty": [str, Penalty],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "l1_ratio": [Interval(Real, 0, 1, closed="both")],
        "l1_share": [Interval(Real, 0, 1, closed="both")],
        "penalty_factor": [None, "array-like"],
        "positive": ["boolean"],
        "fit_intercept": ["boolean"],
        "task_col": [None, Integral, str],
        "task_weights": [None, dict, "array-like", StrOptions({"auto"})],
        "task_graph": [None, StrOptions({"mean", "chain"}), dict, "array-like",
                       "sparse matrix"],
        "graph_alpha": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "warm_start": ["boolean"],
        "solver": [str],
        "verbose": ["verbose"],
    }

    def __init__(self, penalty="l21", alpha=1.0, l1_ratio=1.0, *, l1_share=0.5,
                 penalty_factor=None, positive=False, fit_intercept=True,
                 task_col=None, task_weights=None, task_graph=None,
                 graph_alpha=1.0, max_iter=5000, tol=1e-4,
                 warm_start=False, solver="auto", verbose=0):
        self.penalty = penalty
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.l1_share = l1_share
        self.penalty_factor = penalty_factor
        self.positive = positive
        self.fit_intercept = fit_intercept
        self.task_col = task_col
        self.task_weights = task_weights
        self.task_graph = task_graph
        self.graph_alpha = graph_alpha
        self.max_iter = max_iter
        self.tol = tol
        self.warm_start = warm_start
        self.solver = solver
        self.verbose = verbose

    # ------------------------------------------------------------ inputs
    def _validate_X(self, X, reset):
        """Return ``(features, task_index or None)``; sets tasks_ on reset."""
        features, task_index, _ = self._validate_task_rows(X, reset)
        return features, task_index

    def _validate_task_rows(self, X, reset, task_order=False, one_solve=False):
        """:meth:`_validate_X`, and with ``task_order`` (a fit, whose
        objective does not depend on the rows' order) a dense array's rows
        may come back grouped by task: ``(features, task_index, order)``,
        ``order`` the permutation applied (``None``: rows as given).
        ``one_solve``: the features serve a single solve, whose sparse copy
        takes the format its solver reads (:meth:`_reads_rows`); a path or
        a cross-validation keeps CSR, whose products, run many times, are
        the faster ones."""
        name = type(self).__name__
        if self.task_col is None:
            X = validate_data(self, X, reset=reset, accept_sparse=("csr", "csc"),
                              dtype=np.float64, ensure_all_finite=True)
            if reset:  # a refit in the shared layout: no task labels
                set_task_labels(self, None)
            return X, None, None
        validate_data(self, X, reset=reset, skip_check_array=True)
        # a NumPy array or memory map (not np.matrix, whose rows stay 2-d)
        in_place = (task_order and isinstance(X, np.ndarray)
                    and not isinstance(X, np.matrix) and X.ndim == 2
                    and X.dtype.kind in "biuf" and not isinstance(self.task_col, str))
        if in_place:
            # the features are checked on one row (shape, dtype), then taken
            # from X in task order, converted, in one copy, and checked finite
            j = _check_column_index(self.task_col, X.shape[1])
            features, labels = split_task_column(X[:1], j)
            check_features(_some_features(features, name), estimator_name=name)
            labels = X[:, j]
        else:
            features, labels = split_task_column(
                X, self.task_col,
                columns=one_solve and issparse(X) and not self._reads_rows(X))
            features = check_features(_some_features(features, name),
                                      estimator_name=name)
        if reset:
            self.tasks_, task_index = encode_task_labels(labels)
        else:  # a task not seen in fit: index T (see _task_models)
            mean = getattr(self, "unseen_task", "error") == "mean"
            _, task_index = encode_task_labels(
                labels, known=self.tasks_,
                unseen_index=len(self.tasks_) if mean else None)
        order = None
        if in_place:
            features, order = task_ordered_features(X, j, task_index)
            assert_all_finite(features, input_name="X", estimator_name=name)
            if order is not None:
                task_index = task_index[order]
        return features, task_index, order

    def _reads_rows(self, X):
        """Whether a solver of the fit of ``X`` (task column included) may
        walk a sparse design's rows (:func:`mtlinear._solve.reads_rows`):
        the task column's split then keeps CSR, else it makes the CSC the
        coordinate solvers read.  Either is correct; this saves a copy."""
        loss = self._make_loss()
        try:
            penalties = [self._make_penalty(X.shape[1] - 1, penalty, l1_ratio)
                         for penalty in self._fit_penalties()
                         for l1_ratio in np.atleast_1d(self.l1_ratio)]
        except ValueError:  # reported by the fit's own checks
            return True
        return any(reads_rows(loss, penalty, self.solver) for penalty in penalties)

    def _check_samples_per_task(self, n_samples, task_index):
        name = type(self).__name__
        counts = (np.array([n_samples]) if task_index is None
                  else np.bincount(task_index))
        if counts.min() < 2:
            where = ("" if task_index is None
                     else f" (task {self.tasks_[np.argmin(counts)].item()!r})")
            raise ValueError(f"{name} needs at least 2 samples per task; got "
                             f"n_samples = {counts.min()}{where}. Give every "
                             "task two or more samples.")

    def _validate_sample_weight(self, sample_weight, X):
        if sample_weight is None:
            return None
        return _check_sample_weight(sample_weight, X, dtype=np.float64,
                                    ensure_non_negative=True)

    def _weight_samples(self, X, Y, task_index, sample_weight):
        """Hook for target-dependent sample weights (class weights)."""
        return X, Y, task_index, sample_weight

    # ------------------------------------------------------------ fit
    def _validate_fit_data(self, X, y, sample_weight, task_order=False,
                           one_solve=False):
        """Validate the arrays of a fit; set ``n_features_in_``, ``tasks_`` and
        what ``_encode_targets`` records.  ``task_order``: the rows may be
        put in task order (see :meth:`_validate_task_rows`), ``y`` and
        ``sample_weight`` with them; ``one_solve``: see there.

        Returns
        -------
        X, Y, task_index, sample_weight, omega
            Features, solver targets (layout's shape), each row's task (or
            ``None`` for the shared design), sample weights and task weights.
        """
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, "
                             "but the target y is None.")
        X, task_index, order = self._validate_task_rows(
            X, reset=True, task_order=task_order, one_solve=one_solve)
        # targets validated once X's feature names are recorded
        y = check_array(y, ensure_2d=False, dtype=None, input_name="y",
                        ensure_all_finite="allow-nan")
        if (y.dtype.kind == "f" and not (task_index is None and self._missing_targets)
                and np.isnan(y).any()):
            raise ValueError(
                f"Input y contains NaN. {type(self).__name__} takes no missing "
                "target " + ("with task_col: drop the rows whose target is "
                             "missing." if task_index is not None else
                             "(NaN in y); drop the rows whose targets are "
                             "missing, or fit those tasks apart."))
        if task_index is not None:
            if y.ndim != 1 and not (y.ndim == 2 and y.shape[1] == 1):
                raise ValueError(f"With task_col, y must be 1-d (one target per "
                                 f"row), got shape {y.shape}.")
            y = y.reshape(-1)
        if y.shape[0] != X.shape[0]:
            raise ValueError(f"X has {X.shape[0]} samples but y has {y.shape[0]}; "
                             "they must match.")
        if order is not None:
            y = y[order]
        Y = self._encode_targets(y, task_index)
        if has_missing(Y):
            check_observed(Y, type(self).__name__)
        self._check_samples_per_task(X.shape[0], task_index)
        sample_weight = self._validate_sample_weight(sample_weight, X)
        if order is not None and sample_weight is not None:
            sample_weight = sample_weight[order]
        tasks = (self._column_labels(Y.shape[1]) if task_index is None
                 else self.tasks_)
        omega = check_task_weights(
            None if self._auto_task_weights() else self.task_weights, tasks)
        return X, Y, task_index, sample_weight, omega

    def _column_labels(self, n_tasks):
        """The labels ``task_weights`` names the shared layout's tasks by:
        ``y``'s DataFrame column names when the model keeps them
        (``target_names_``) and the weights are keyed by them, else the
        column indices."""
        names = getattr(self, "target_names_", None)
        weights = self.task_weights
        keys = (weights.keys() if isinstance(weights, dict)
                else weights.index if hasattr(weights, "to_dict") else ())
        if names is not None and len(keys) and all(
                key in set(np.asarray(names).tolist()) for key in keys):
            return np.asarray(names)
        return np.arange(n_tasks)

    def _auto_task_weights(self):
        """Whether the task weights are learned (``task_weights="auto"``)."""
        if not (isinstance(self.task_weights, str) and self.task_weights == "auto"):
            return False
        if not (self._learns_task_weights and self._make_loss().quadratic):
            raise ValueError(
                f"task_weights='auto' (noise variances learned per task) is "
                f"for MultiTaskRegressor with the squared loss; "
                f"{type(self).__name__} needs the weights given (or None).")
        return True

    def _build_problem(self, X, Y, task_index, sample_weight, omega):
        """The solver's :class:`~mtlinear._task_data.TaskProblem` of a fit."""
        X, Y, task_index, sample_weight = self._weight_samples(
            X, Y, task_index, sample_weight)
        unpenalized = self._unpenalized_features(X.shape[1])
        if task_index is None and has_missing(Y):
            return masked_problem(X, Y, sample_weight, omega,
                                  self.fit_intercept, self._make_loss(),
                                  unpenalized)
        return build_problem(X, Y, task_index, n_tasks=len(omega),
                             sample_weight=sample_weight, task_weights=omega,
                             fit_intercept=self.fit_intercept,
                             center_targets=self._center_targets(),
                             unpenalized=unpenalized)

    def _fit_penalties(self):
        """The penalties the fit solves with (a CV estimator: its grid's)."""
        return [self.penalty]

    def _unpenalized_features(self, n_features):
        """The features the fit's penalties leave unpenalized (factor 0:
        the estimator's ``penalty_factor`` or a penalty instance's own),
        partialled out of the problem with the intercepts; ``None`` if none.
        One problem serves a whole CV grid, so its penalties must agree."""
        found = {tuple(self._make_penalty(n_features, penalty, 1.0)
                       .unpenalized().tolist())
                 for penalty in self._fit_penalties()}
        if len(found) > 1:
            raise ValueError(
                "The penalties searched leave different features "
                f"unpenalized (zero penalty_factor: {sorted(found)}); one "
                "cross-validation partials out one set of features. Give "
                "them the same zero factors (or search them apart).")
        features = found.pop()
        return np.array(features, dtype=np.int64) if features else None

    def _alpha_of(self, X, Y, task_index, sample_weight, omega):
        """The ``alpha`` of a fit on these data (subclasses may derive a
        default from them)."""
        return self.alpha

    def _make_loss(self):
        """The loss object of the fit (set by subclasses)."""
        raise NotImplementedError

    def _center_targets(self):
        """Whether the intercepts leave the solve by centring (a quadratic
        loss), else the solvers keep an intercept variable."""
        return self._make_loss().quadratic

    def _bind_loss(self, loss, problem):
        """The loss of the solve of ``problem`` (a loss per task binds to
        the problem's samples)."""
        return loss

    def _make_penalty(self, n_features, penalty=None, l1_ratio=None,
                      problem=None):
        """The penalty of the fit (``penalty``, ``l1_ratio``: the estimator's
        unless given, as a CV grid does) at unit strength, with its options,
        checked against ``n_features``; restricted to the features the
        solvers see in ``problem`` (the penalized ones), if given."""
        penalty = make_penalty(
            self.penalty if penalty is None else penalty, 1.0,
            self.l1_ratio if l1_ratio is None else l1_ratio,
            l1_share=self.l1_share, penalty_factor=self.penalty_factor,
            positive=self.positive)
        penalty.check_features(n_features)
        return penalty if problem is None else penalty.restricted(
            problem.penalized)

    def _task_coupling(self, problem, graph_alpha=None):
        """``(A, coupling)``: the task graph's adjacency and coupling term
        for ``problem`` at ``graph_alpha`` (the estimator's unless given);
        ``(None, None)`` without a graph."""
        tasks = (self.tasks_ if self.task_col is not None
                 else np.arange(problem.n_tasks // max(problem.n_classes, 1)))
        A, coupling = graph_coupling(
            self.task_graph,
            self.graph_alpha if graph_alpha is None else graph_alpha, tasks)
        if coupling is not None:
            self._refuse_partialled_out(problem, "a task_graph")
            if problem.n_classes:  # one weight column per task and class
                coupling = expand_coupling(coupling, problem.n_classes)
        return A, coupling

    @staticmethod
    def _refuse_partialled_out(problem, coupled):
        """``ValueError`` when ``problem`` partialled out unpenalized
        features: a term coupling the tasks (``coupled`` names it) couples
        those features too, and left in the solve their rows have no dual
        certificate."""
        if problem.reduction is not None:
            raise ValueError(
                f"penalty_factor has zeros (unpenalized features), which "
                f"{coupled} does not support (it couples every feature); give "
                "those features a small positive factor instead.")

    def _fit(self, X, y, sample_weight):
        """``fit``: the path at the single ``alpha``; fitted state changes
        only once the solve has succeeded."""
        self._validate_params()
        loss = self._make_loss()
        fitted = self._fitted_state()
        try:
            data = self._validate_fit_data(X, y, sample_weight, task_order=True,
                                           one_solve=True)
            n_features = data[0].shape[1]
            # the options are checked before the data work
            penalty = self._make_penalty(n_features)
            problem = self._build_problem(*data)
            alpha = self._alpha_of(*data)
            if not self._auto_task_weights():
                # the problem holds the solve's arrays (regrouped copies):
                # the validated ones are not kept through it
                data = None
            loss = self._bind_loss(loss, problem)
            penalty = penalty.restricted(problem.penalized)
            graph, coupling = self._task_coupling(problem)
            W0 = b0 = None
            coef = fitted.get("coef_")
            if self.warm_start and coef is not None \
                    and coef.size == problem.n_tasks * n_features:
                # one row per linear predictor (task, or task and class); an
                # infinite intercept (a class a task lacks) starts at 0
                b = np.ravel(fitted["intercept_"])
                W0, b0 = problem.solver_start(
                    coef.reshape(-1, n_features).T,
                    np.where(np.isfinite(b), b, 0.0))
            if self._auto_task_weights():
                problem, result, self.task_weights_ = fit_task_weights(
                    self, data, self._make_loss(), self._make_penalty(n_features),
                    alpha, (W0, b0), coupling, linear_predictor)
            else:
                vars(self).pop("task_weights_", None)
                result = self._solve_at(problem, loss, penalty, alpha,
                                        (W0, b0), coupling)
            _check_finite(self, result, alpha)
        except BaseException:  # leave the model as it was
            self._restore_fitted_state(fitted)
            raise
        self._warn_if_unconverged(result)
        self._set_solution(problem, result, graph)
        return self

    def _solve_at(self, problem, loss, penalty, alpha, start, coupling,
                  tol=None):
        """The solve of ``fit`` (a path of one ``alpha``) with the task
        graph's ``coupling`` (or ``None``), to ``tol`` (default
        ``self.tol``); models that learn a coupling alternate around it."""
        _, result = next(path_on_problem(
            problem, loss, penalty, [alpha], start=start,
            tol=self.tol if tol is None else tol,
            max_iter=self.max_iter, solver=self.solver,
            solver_verbose=self.verbose, coupling=coupling))
        return result

    def _fitted_state(self):
        """The fitted attributes (everything but the parameters), to restore
        after a failed fit."""
        params = _param_names(type(self))
        return {k: v for k, v in vars(self).items() if k not in params}

    def _restore_fitted_state(self, fitted):
        """Put back the fitted attributes ``fitted`` (a failed fit)."""
        params = _param_names(type(self))
        for name in [k for k in vars(self) if k not in params]:
            delattr(self, name)
        vars(self).update(fitted)

    def _warn_if_unconverged(self, result):
        if not result.converged:
            warnings.warn(f"{type(self).__name__} "
                          f"{result.unconverged_reason(self.max_iter)}",
                          ConvergenceWarning)

    def _set_solution(self, problem, result, graph=None):
        """The fitted attributes of a solve (fit and the CV refit); ``graph``:
        the task graph's adjacency, if any."""
        if graph is None:
            vars(self).pop("task_graph_", None)
        else:
            self.task_graph_ = graph
        self._store_weights(*self._weights_of(problem, result))
        # one gap evaluation at least (scikit-learn expects n_iter_ >= 1)
        self.n_iter_ = max(result.n_iter, 1)
        self.dual_gap_ = result.gap

    @staticmethod
    def _weights_of(problem, result):
        """``(W, intercepts)`` of the user's problem from a solve: (d, M) and
        (M,), one column per linear predictor."""
        return problem.full_solution(result.W, result.b)

    def _store_weights(self, W, intercept):
        """``coef_``, ``intercept_`` and ``n_tasks_`` from
        :meth:`_weights_of`'s weights."""
        self.coef_ = np.ascontiguousarray(W.T)
        self.intercept_ = intercept
        self.n_tasks_ = W.shape[1]

    @staticmethod
    def _scores(X, W, intercept, task_index):
        """The linear predictors of the weights of :meth:`_weights_of` on
        validated features (the held-out rows of a cross-validation)."""
        return linear_predictor(X, W, intercept, task_index)

    # ------------------------------------------------------------ predict
    def _linear_predictor(self, X):
        """``X w_t + b_t``: (n, T) in the shared layout, (n,) stacked."""
        check_is_fitted(self)
        from ._dask import is_dask_collection  # _dask imports this module
        if is_dask_collection(X):
            raise TypeError(
                f"{type(self).__name__} predicts in-memory data; X is a dask "
                f"{type(X).__name__}. Predict each partition: "
                "X.map_partitions(model.predict, meta=...) for a dask "
                "DataFrame, X.map_blocks(model.predict, ...) for a dask "
                "array, or X.compute().")
        X, task_index = self._validate_X(X, reset=False)
        if task_index is None:
            return linear_predictor(X, self.coef_.T, self.intercept_, None)
        coef, intercept = self._task_models(task_index)
        return linear_predictor(X, coef.T, intercept, task_index)

    def _task_models(self, task_index):
        """``(coef, intercept)`` indexed by ``task_index``: the fitted tasks'
        and, at index ``T`` (a task not seen in fit, with
        ``unseen_task="mean"``), the mean of the tasks' models."""
        if task_index.size == 0 or task_index.max() < len(self.coef_):
            return self.coef_, self.intercept_
        # a class some tasks lack (intercept -inf): the mean of the others
        finite = np.isfinite(self.intercept_)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = (np.where(finite, self.intercept_, 0.0).sum(axis=0)
                    / finite.sum(axis=0))
        mean = np.where(finite.any(axis=0), mean, -np.inf)
        return (np.concatenate([self.coef_, self.coef_.mean(axis=0)[None]]),
                np.concatenate([self.intercept_, mean[None]]))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags
