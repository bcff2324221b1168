"""MultiTaskRegressor: squared, Huber or Poisson loss with a multi-task
penalty."""
import numpy as np
from scipy.special import xlogy
from sklearn.base import RegressorMixin
from sklearn.metrics import r2_score

from numbers import Real

from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.metaestimators import available_if

from ._base import PENALTY_TABLE, MultiTaskLinearModel
from ._missing import has_missing
from ._dask import fit_dask, is_dask_collection
from ._statistics_fit import partial_fit, partial_fit_available
from ._design import task_rows
from .losses import make_loss

__all__ = ["MultiTaskRegressor", "poisson_d2"]


def poisson_d2(y, mu, sample_weight=None):
    """``D^2`` of the Poisson loss: the fraction of the (weighted) Poisson
    deviance ``2 sum_i s_i (y_i log(y_i / mu_i) - y_i + mu_i)`` explained by
    the means ``mu`` relative to the best constant (the weighted mean of
    ``y``), as scikit-learn's ``PoissonRegressor.score`` and
    ``d2_tweedie_score(power=1)``; 1 is a perfect fit."""
    y, mu = np.asarray(y, dtype=float), np.asarray(mu, dtype=float)
    s = np.ones_like(y) if sample_weight is None else np.asarray(
        sample_weight, dtype=float)

    def deviance(mean):
        with np.errstate(divide="ignore"):
            return float(np.sum(s * (xlogy(y, y) - xlogy(y, mean) - y + mean)))

    return 1.0 - deviance(mu) / deviance(np.average(y, weights=s))


class MultiTaskRegressor(RegressorMixin, MultiTaskLinearModel):
    __doc__ = """Regularized multi-task least squares (or Huber or Poisson regression).

    Minimizes, over one weight vector ``w_t`` and intercept ``b_t`` per task,

    .. math::

        \\sum_t \\frac{\\omega_t}{n_t} \\sum_{i \\in t}
        s_i\\,\\ell(y_i, x_i^T w_t + b_t) + \\alpha R(W),

    with ``n_t`` the (sample-weighted) size of task ``t``, ``omega_t`` the
    ``task_weights``, ``ell(y, z) = (y - z)^2 / 2`` (``loss="squared"``),
    Huber's ``r^2 / 2`` for ``|r| <= delta`` and ``delta |r| - delta^2 / 2``
    beyond, ``r = y - z`` (``loss="huber"``), or the Poisson loss ``exp(z)
    - y z`` (up to a constant in ``y``: half the Poisson deviance) for counts
    ``y >= 0`` with the log link, the mean being ``exp(z)``
    (``loss="poisson"``), and ``R`` the penalty:

%(penalty_table)s
    With a shared ``X`` and unit weights this is exactly scikit-learn's
    ``MultiTaskElasticNet`` objective ``||Y - XW||_F^2 / (2n) + alpha R(W)``.

    Parameters
    ----------
    penalty : {"l21", "l1", "l2", "trace", "sparse_group"} or Penalty, default="l21"
    alpha : float, default=1.0
        Regularization strength (``>= 0``). :func:`mtlinear.alpha_max` gives
        the smallest value for which every coefficient is zero.
    l1_ratio : float in [0, 1], default=1.0
        Share of the norm in the penalty; the rest is a ridge term.  Ignored by
        ``"l2"``.
    l1_share : float in [0, 1], default=0.5
        ``s`` of ``"sparse_group"``: the share of the entrywise l1 norm in it
        (ignored by the other penalties).
    penalty_factor : array-like of shape (n_features,), default=None
        ``f_j >= 0`` multiplying feature ``j``'s term of the penalty (l1, l2,
        l21, sparse_group), as glmnet's ``penalty.factor`` (not rescaled).
        ``f_j = 0`` leaves feature ``j`` unpenalized (squared loss without
        ``positive``: it is partialled out exactly).
    positive : bool, default=False
        Constrain the coefficients to be non-negative (l1, l2, l21,
        sparse_group), as scikit-learn's ``Lasso(positive=True)``.
    loss : {"squared", "huber", "poisson"}, default="squared"
        ``"poisson"``: counts or rates ``y >= 0`` (each task with a positive
        one when ``fit_intercept``), log link; ``predict`` returns the means
        ``exp(x^T w_t + b_t)`` and ``score`` the fraction of Poisson deviance
        explained, as scikit-learn's ``PoissonRegressor``.
    delta : float > 0, default=1.0
        Huber's threshold, in the units of ``y`` (``loss="huber"`` only).
    fit_intercept : bool, default=True
        Fit one unpenalized intercept per task.
    task_col : int, str or None, default=None
        ``None``: shared design, ``y`` of shape (n, T) (or (n,) for one task).
        Otherwise the column of ``X`` holding each row's task label (an index,
        negative allowed, or a DataFrame column name); ``y`` is (n,).  The task
        column is not a feature: ``coef_`` has one column fewer than ``X``.
    task_weights : None, "auto", dict or array-like of shape (T,), default=None
        ``omega_t``: a dict from task label (column index in the shared layout)
        to weight (missing tasks weigh 1), or an array in the order of the
        sorted labels.  ``task_weights = n_t`` gives MALSAR's scaling (one sum
        over all samples).  ``"auto"`` (squared loss) learns inverse noise
        variances ``1 / sigma_t^2`` by alternating minimization of the
        Gaussian likelihood, reported in ``task_weights_`` (see the
        objective page of the user guide).
    task_graph : {"mean", "chain"}, array-like or sparse matrix of shape \
(T, T), dict or None, default=None
        A graph of related tasks whose weights are pulled together: adds
        ``graph_alpha / 2 * sum_{s,t} A_st ||w_s - w_t||^2`` to the
        objective.  ``"mean"``: every pair, ``A_st = 1 / T`` (the term is
        ``graph_alpha * sum_t ||w_t - mean_s w_s||^2``); ``"chain"``:
        neighbours in the sorted task order (``graph_alpha * sum_t ||w_t -
        w_{t+1}||^2``, temporal tasks); an array of non-negative symmetric
        weights in the order of the sorted labels (a DataFrame by its
        labels), dense or ``scipy.sparse``; or a dict ``{(s, t): weight}`` of
        task-label pairs.  A graph given by its edges (``"chain"``, a dict, a
        sparse matrix) stays sparse: memory and time grow with its edges,
        not with ``T^2`` (thousands of tasks).  The fit exposes the
        adjacency as ``task_graph_``.  Needs ``alpha > 0``
        (any penalty; ``penalty="l2"`` with a small ``alpha`` for a graph
        alone); solved by the solvers that take a task coupling (FISTA,
        continued by ADMM, or by proximal Newton with ADMM steps, where it
        would not reach ``tol``).
    graph_alpha : float >= 0, default=1.0
        Strength of the task graph (ignored without ``task_graph``).
    unseen_task : {"error", "mean"}, default="error"
        Prediction for a row whose task label was not seen in fit (stacked
        layout): an error, or the mean of the fitted tasks' models (weights
        and intercepts averaged over the tasks), the natural guess for a new
        task of a family whose models are pulled together (for instance by
        ``task_graph="mean"``); holding whole tasks out (``GroupKFold``) then
        measures how the model transfers to new tasks.
    max_iter : int, default=5000
        Maximum number of iterations of the solver (epochs of coordinate
        descent).  With ``solver="auto"``, a solver that ends unconverged
        hands over to the next one (coordinate descent to FISTA, then to
        ADMM or proximal Newton with ADMM steps where they apply), each with
        up to ``max_iter`` iterations: ``n_iter_`` counts them all.
    tol : float, default=1e-4
        Relative duality-gap tolerance: the solve stops when the gap is at
        most ``tol`` times the objective at ``W = 0`` (with the best
        intercepts).
    warm_start : bool, default=False
        Start from the previous ``coef_`` when refitting with the same shapes.
    solver : {"auto", "bcd", "prox_newton", "fista", "admm", "newton_admm"}, \
            default="auto"
        ``"auto"`` picks among the solvers that support the problem (see the
        solvers' page of the user guide); ``"fista"``: accelerated proximal
        gradient, for every penalty and loss; ``"admm"`` /
        ``"newton_admm"``: exact steps whatever the features' scales (few
        features), with which ``"auto"`` finishes an unconverged FISTA.
    verbose : int, default=0
        Print the objective and duality gap at each gap evaluation (for
        coordinate descent on sufficient statistics, compiled as a whole,
        once the solve returns).

    Attributes
    ----------
    coef_ : ndarray of shape (n_tasks, n_features)
        One row of weights per task (task columns excluded).
    intercept_ : ndarray of shape (n_tasks,)
    n_tasks_ : int
    tasks_ : ndarray
        Sorted task labels (stacked layout only).
    task_graph_ : ndarray or scipy.sparse.csr_array of shape (n_tasks, n_tasks)
        The task graph's adjacency ``A`` (with ``task_graph`` only): sparse
        when ``task_graph`` is ``"chain"``, a dict or a sparse matrix.
    task_weights_ : ndarray of shape (n_tasks,)
        The learned task weights (with ``task_weights="auto"`` only).
    n_iter_ : int
    dual_gap_ : float
        Duality gap of the objective above at the solution (absolute).
    n_features_in_ : int
        Number of columns of ``X`` (including the task column).
    feature_names_in_ : ndarray of str
        Column names of ``X`` when it was a DataFrame with string names.

    Notes
    -----
    ``score`` is scikit-learn's R²: in the shared layout the average of the
    per-task R² (``multioutput="uniform_average"``); in the stacked layout the
    R² of all rows pooled, about the overall mean of ``y``.  With
    ``loss="poisson"`` it is ``D^2``, the fraction of Poisson deviance
    explained (scikit-learn's ``PoissonRegressor.score``), averaged over the
    tasks or pooled alike.  The linear predictor ``x^T w_t + b_t`` of the
    Poisson loss is ``log(predict(X))``, or ``X @ coef_.T + intercept_``.

    Examples
    --------
    >>> import numpy as np
    >>> from mtlinear import MultiTaskRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((50, 10))
    >>> Y = X[:, :3] @ rng.standard_normal((3, 4))
    >>> model = MultiTaskRegressor(penalty="l21", alpha=0.05).fit(X, Y)
    >>> model.coef_.shape
    (4, 10)
    """ % dict(penalty_table=PENALTY_TABLE)

    _parameter_constraints = {
        **MultiTaskLinearModel._parameter_constraints,
        "loss": [str],
        "unseen_task": [StrOptions({"error", "mean"})],
        "delta": [Interval(Real, 0, None, closed="neither")],
    }

    def __init__(self, penalty="l21", alpha=1.0, l1_ratio=1.0, *, l1_share=0.5,
                 penalty_factor=None, positive=False, loss="squared", delta=1.0,
                 fit_intercept=True, task_col=None, task_weights=None,
                 task_graph=None, graph_alpha=1.0, unseen_task="error",
                 max_iter=5000, tol=1e-4, warm_start=False, solver="auto",
                 verbose=0):
        super().__init__(penalty=penalty, alpha=alpha, l1_ratio=l1_ratio,
                         l1_share=l1_share, penalty_factor=penalty_factor,
                         positive=positive, fit_intercept=fit_intercept,
                         task_col=task_col, task_weights=task_weights,
                         task_graph=task_graph, graph_alpha=graph_alpha,
                         max_iter=max_iter, tol=tol, warm_start=warm_start,
                         solver=solver, verbose=verbose)
        self.loss = loss
        self.delta = delta
        self.unseen_task = unseen_task

    _missing_targets = True
    _learns_task_weights = True

    def score(self, X, y, sample_weight=None):
        """Coefficient of determination ``R^2``, averaged over tasks (the
        columns of a 2-d ``y``); ``NaN`` targets are left out of their
        task's ``R^2``.  With ``loss="poisson"``: ``D^2``, the fraction of
        Poisson deviance explained (:func:`poisson_d2`), in the same way.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_columns)
        y : array-like of shape (n_samples,) or (n_samples, n_tasks)
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        float
        """
        Y = np.asarray(y.to_numpy() if hasattr(y, "to_numpy") else y)
        poisson = self._make_loss().name == "poisson"
        if not (has_missing(np.atleast_2d(Y)) or poisson):
            return super().score(X, y, sample_weight)
        metric = poisson_d2 if poisson else r2_score
        P = self.predict(X)
        s = None if sample_weight is None else np.asarray(sample_weight, float)
        Y = Y.astype(float)
        if Y.ndim == 1 or self.task_col is not None:  # pooled, as R^2 is
            Y, P = Y.ravel(), np.ravel(P)
            rows = ~np.isnan(Y)
            return float(metric(Y[rows], P[rows],
                                sample_weight=None if s is None else s[rows]))
        P = P.reshape(len(P), -1)
        return float(np.mean([
            metric(Y[rows, t], P[rows, t],
                   sample_weight=None if s is None else s[rows])
            for t, rows in enumerate((~np.isnan(Y)).T)]))

    def _make_loss(self):
        loss = make_loss(self.loss, delta=self.delta)
        if loss.classification:
            raise ValueError(f"{type(self).__name__} takes a regression loss; "
                             f"loss={self.loss!r} is for classification (use "
                             "MultiTaskClassifier).")
        return loss

    def fit(self, X, y, sample_weight=None):
        """Fit the model.

        Parameters
        ----------
        X : array-like, sparse matrix, dask array or dask DataFrame of shape \
(n_samples, n_columns)
            Features, plus the task column when ``task_col`` is set.  A dask
            collection (with ``y`` and ``sample_weight`` partitioned alike) is
            fitted from sufficient statistics reduced on the cluster, for the
            squared loss only (see the scale-out page of the user guide).
        y : array-like of shape (n_samples,) or (n_samples, n_tasks)
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative weights ``s_i``; each task's loss stays a weighted mean.

        Returns
        -------
        self
        """
        # -- scale-out hook (mtlinear._dask): dask collections are fitted from
        # sufficient statistics reduced on the cluster
        if is_dask_collection(X, y, sample_weight):
            return fit_dask(self, X, y, sample_weight)
        self._fit(X, y, sample_weight)
        self.__dict__.pop("_statistics", None)  # a later partial_fit starts afresh
        # -- end of the scale-out hook
        return self

    # -- scale-out hook (mtlinear._statistics_fit): out-of-core fitting
    @available_if(partial_fit_available)
    def partial_fit(self, X, y, sample_weight=None):
        """Add a chunk of rows to the model (squared loss): out-of-core fitting.

        The squared loss needs only the sufficient statistics of the data:
        per task ``t`` the weighted count ``n_t = sum_i s_i``, the means
        ``xbar_t``, ``ybar_t`` and the centred cross-products

        .. math::

            S^{xx}_t = \\sum_{i \\in t} s_i (x_i - \\bar x_t)(x_i - \\bar x_t)^\\top,
            \\quad S^{xy}_t, \\quad S^{yy}_t

        (once for all tasks in the shared layout).  Each call adds the
        chunk's statistics to those of the earlier calls, combined exactly
        (Chan's parallel formula), and solves the problem on them, from the
        previous solution: after every call the model is the one ``fit``
        would give on all the rows seen so far (to the solver's ``tol``),
        and a solve costs ``O(T d^2)`` per iteration whatever the number of
        rows.

        In the stacked layout (``task_col``) a chunk may bring tasks not seen
        before: the task set grows (``tasks_``, ``coef_`` gain rows); give
        ``task_weights`` as a dict then.  A task needs a positive total
        weight as soon as it appears; with a single row so far its model is
        its intercept (``fit`` asks for two rows per task).  In the shared
        layout every chunk has the same tasks (columns of ``y``).

        ``partial_fit`` after ``fit`` on dask collections continues from the
        statistics of that fit; after ``fit`` on in-memory data it starts
        afresh (that fit keeps no statistics).  ``alpha``, the penalty and
        ``task_weights`` may change between calls (``set_params``): the next
        solve uses them on all the statistics.  Only the squared loss has
        ``partial_fit`` (with ``loss="huber"`` the attribute is absent).

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_chunk, n_columns)
            A chunk of features (plus the task column when ``task_col`` is
            set), with the columns of the first chunk.
        y : array-like of shape (n_chunk,) or (n_chunk, n_tasks)
        sample_weight : array-like of shape (n_chunk,), optional
            Non-negative weights ``s_i`` of the chunk's rows.

        Returns
        -------
        self
        """
        return partial_fit(self, X, y, sample_weight)
    # -- end of the scale-out hook

    def _encode_targets(self, y, task_index):
        y = np.asarray(y, dtype=np.float64)
        if task_index is not None and not np.all(np.isfinite(y)):
            raise ValueError("y contains NaN or infinity; with task_col every "
                             "row needs a target: remove the rows without one.")
        if task_index is None:  # NaN: not observed (mtlinear._missing)
            self._y_ndim = y.ndim
            Y = y.reshape(len(y), -1)
            targets = enumerate(Y.T)
        else:
            self._y_ndim = 1
            Y = y
            targets = ((label.item(), y[rows]) for label, rows in
                       zip(self.tasks_, task_rows(task_index, len(self.tasks_))))
        self._make_loss().check_targets(targets, self.fit_intercept)
        return Y

    def predict(self, X):
        """Predict with each row's task model.

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_tasks)
            Shared layout: one column per task (1-d if ``y`` was 1-d).  The
            means ``exp(x^T w_t + b_t)`` with ``loss="poisson"``.
        """
        Z = self._make_loss().inverse_link(self._linear_predictor(X))
        if self.task_col is None and self._y_ndim == 1:
            return Z[:, 0]
        return Z

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
