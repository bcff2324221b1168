"""Regularization paths: ``alpha_max``, the alpha grid and warm-started paths.

A path solves the problem for a decreasing sequence of ``alpha`` values,
starting each solve from the previous solution (warm start).  The task data
(:class:`~mtlinear._task_data.TaskProblem`) is built once; what the solvers
derive from it (Gram statistics, Lipschitz constants, BCD state) is cached on
``problem.cache`` and reused at every alpha.
"""
import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_array
from sklearn.utils._param_validation import (Interval,
                                             validate_parameter_constraints)
from sklearn.utils.validation import _check_sample_weight

from ._datafit import GramDatafit, SampleDatafit
from ._progress import Progress
from ._solve import SOLVERS, solution_predictor, solve
from ._design import task_rows
from ._task_data import (build_problem, check_task_weights, encode_task_labels,
                         split_task_column)
from .losses import make_loss
from .penalties import make_penalty

__all__ = ["alpha_max", "alpha_max_of_problem", "alpha_grid", "ridge_alpha_top",
           "regularization_path", "path_on_problem"]

def alpha_max_of_problem(problem, loss, penalty):
    """``alpha_max`` for a built :class:`~mtlinear._task_data.TaskProblem`
    and a penalty (its ``l1_ratio`` and options; its ``alpha`` is ignored).

    ``W = 0`` is optimal iff ``0`` is in ``grad_W F(0, b*) + alpha r dN(0)``,
    i.e. ``N°(grad_W F(0, b*)) <= alpha r`` where ``b*`` are the best
    intercepts for ``W = 0`` and ``N°`` the dual norm (with penalty factors
    and sign constraints, the penalty's own zero-row test).  Hence
    ``alpha_max = N°(grad_W F(0, b*)) / r`` (``Penalty.alpha_max``).
    """
    if problem.y is None:  # known by its sufficient statistics only
        return penalty.alpha_max(problem.design.gram_statistics()[2])
    datafit = SampleDatafit(loss, problem)
    W0 = np.zeros((problem.n_features, problem.n_tasks))
    G, _ = datafit.gradient(W0, datafit.initial_intercept())
    return penalty.alpha_max(-G)


def ridge_alpha_top(problem, loss):
    """Top of an automatic grid for a penalty without a norm (a ridge, whose
    ``alpha_max`` is infinite): 10 times the data-fit's largest curvature
    at ``W = 0``, where the ridge term shrinks every direction of the
    unpenalized solution by a factor 11 or more."""
    if problem.y is None:  # known by its sufficient statistics only
        return 10.0 * GramDatafit.from_problem(problem).largest_curvature()
    return 10.0 * SampleDatafit(loss, problem).lipschitz


def alpha_grid(alpha_top, n_alphas, eps):
    """``n_alphas`` values from ``alpha_top`` down to ``eps * alpha_top``, log-spaced.

    When ``alpha_top`` is zero (constant targets) every value is the float
    resolution, as in scikit-learn: all models are then zero anyway.
    """
    if alpha_top <= np.finfo(np.float64).resolution:
        return np.full(n_alphas, np.finfo(np.float64).resolution)
    return np.geomspace(alpha_top, alpha_top * eps, num=n_alphas)


_PATH_CONSTRAINTS = {
    "l1_ratio": [Interval(Real, 0, 1, closed="both")],
    "n_alphas": [Interval(Integral, 1, None, closed="left")],
    "eps": [Interval(Real, 0, 1, closed="neither")],
    "tol": [Interval(Real, 0, None, closed="left")],
    "max_iter": [Interval(Integral, 1, None, closed="left")],
    "l1_share": [Interval(Real, 0, 1, closed="both")],
    "fit_intercept": ["boolean"],
    "positive": ["boolean"],
    "delta": [Interval(Real, 0, None, closed="neither")],
}


def check_solver(solver):
    if solver != "auto" and solver not in SOLVERS:
        raise ValueError(f"solver must be 'auto' or one of {sorted(SOLVERS)}, "
                         f"got {solver!r}.")


def _signed_labels(y, task_index, fit_intercept):
    """Labels as ``{-1, 1}``, per task: of a task's two labels the larger is
    the positive class (``classes_[1]`` in scikit-learn).

    A task with a single label needs ``fit_intercept=False`` and that label
    in ``{-1, 1}`` (there is no other to compare it with).
    """
    groups = None if task_index is None else task_rows(task_index)
    columns = y.T if task_index is None else [y[rows] for rows in groups]
    signed = np.empty_like(y)
    for t, labels in enumerate(columns):
        classes = np.unique(labels)  # at most two (else _multiclass)
        if classes.size == 1 and (fit_intercept or classes[0] not in (-1, 1)):
            raise ValueError(
                f"Task {t} has a single class ({classes[0]:g}); every task "
                "needs both labels (a single label is accepted only as -1 or 1 "
                "with fit_intercept=False).")
        values = np.where(labels == classes[-1], 1.0, -1.0) if classes.size == 2 \
            else labels
        if task_index is None:
            signed[:, t] = values
        else:
            signed[groups[t]] = values
    return signed


def prepare_problem(X, y, *, loss, task_col=None, sample_weight=None,
                    task_weights=None, fit_intercept=True, penalty=None):
    """Validate user arrays and build their :class:`TaskProblem` (inputs
    untouched); with a ``penalty``, check its options against the features
    and partial out the features it leaves unpenalized."""
    task_index, n_tasks = None, None
    if task_col is not None:
        X, labels = split_task_column(X, task_col)
        tasks, task_index = encode_task_labels(labels)
        n_tasks = len(tasks)
    X = check_array(X, accept_sparse=("csr", "csc"), dtype=np.float64, input_name="X")
    y = check_array(y, ensure_2d=False, dtype=np.float64, input_name="y",
                    ensure_all_finite="allow-nan")
    if np.isnan(y).any():
        raise ValueError(
            "Input y contains NaN. alpha_max and regularization_path need "
            "every target observed; the estimators fit missing targets (NaN "
            "in a 2-d y), and MultiTaskRegressorCV / MultiTaskClassifierCV "
            "build their alpha grid from the observed ones.")
    if y.shape[0] != X.shape[0]:
        raise ValueError(f"X has {X.shape[0]} samples but y has {y.shape[0]}; "
                         "they must match.")
    if task_col is None:
        y = y.reshape(len(y), -1)
        tasks = np.arange(y.shape[1])
    elif y.ndim != 1:
        raise ValueError(f"With task_col, y must be 1-d (one target per row), "
                         f"got shape {y.shape}.")
    if loss.classification:
        y = _signed_labels(y, task_index, fit_intercept)
    else:
        loss.check_targets(
            enumerate(y.T) if task_col is None
            else ((label.item(), y[rows]) for label, rows in
                  zip(tasks, task_rows(task_index, len(tasks)))), fit_intercept)
    if sample_weight is not None:
        sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64,
                                             ensure_non_negative=True)
    if penalty is not None:
        penalty.check_features(X.shape[1])
    return build_problem(X, y, task_index, n_tasks, sample_weight,
                         check_task_weights(task_weights, tasks), fit_intercept,
                         center_targets=loss.quadratic,
                         unpenalized=None if penalty is None
                         else penalty.unpenalized())


def _multiclass(y, task_col):
    """Whether :class:`~mtlinear.MultiTaskClassifier` fits labels ``y`` as
    multinomial tasks: three labels or more overall (a 1-d ``y``) or in a
    column of a 2-d ``y`` (shared layout)."""
    y = np.asarray(y)
    columns = y.T if task_col is None and y.ndim == 2 else [y.reshape(-1)]
    try:
        # NaN is no label (the binary checks refuse it)
        return any(np.unique(column[column == column]).size > 2
                   for column in columns)
    except TypeError:  # unorderable labels: the binary checks name them
        return False


def _lacks_a_class(X, y, task_col):
    """Whether some task's labels are of a single class (which
    :class:`~mtlinear.MultiTaskClassifier` fits with a pseudo-sample of the
    other)."""
    y = np.asarray(y)
    if task_col is None:
        columns = y.reshape(len(y), -1).T
    else:
        _, index = encode_task_labels(split_task_column(X, task_col)[1])
        y = y.reshape(-1)
        columns = [y[rows] for rows in task_rows(index)]
    try:
        return any(np.unique(c[c == c]).size == 1 for c in columns)
    except TypeError:  # unorderable labels: the binary checks name them
        return False


def _functions_problem(X, y, *, loss, penalty, l1_ratio, task_col,
                       sample_weight, task_weights, fit_intercept, l1_share,
                       penalty_factor, positive):
    """``(problem, loss, penalty, weights, shape)`` of :func:`alpha_max` and
    :func:`regularization_path`: ``weights(result)`` gives a solve's
    ``(coef, intercept)`` as the estimators store them, of leading ``shape``.

    Multiclass labels, and binary ones with a task of a single class (with
    intercepts), are built as :class:`~mtlinear.MultiTaskClassifier` builds
    them (the same classes, pseudo-samples of a class a task lacks,
    class-expanded weights) by an unfitted classifier, whose
    ``_class_blocks`` gives ``coef`` (T, K, d) and ``intercept`` (T, K).
    """
    multiclass = loss.classification and _multiclass(y, task_col)
    if not (multiclass or loss.classification and fit_intercept
            and _lacks_a_class(X, y, task_col)):
        problem = prepare_problem(X, y, loss=loss, task_col=task_col,
                                  sample_weight=sample_weight,
                                  task_weights=task_weights,
                                  fit_intercept=fit_intercept, penalty=penalty)

        def weights(result):
            W, b = problem.full_solution(result.W, result.b)
            return W.T, b
        return (problem, loss, penalty.restricted(problem.penalized), weights,
                (problem.n_tasks,))
    from ._classifier import MultiTaskClassifier
    if isinstance(task_weights, str):
        raise ValueError(f"task_weights={task_weights!r} is an estimator option; "
                         "the functions take an array of weights per task.")
    model = MultiTaskClassifier(
        penalty=penalty, l1_ratio=l1_ratio, l1_share=l1_share,
        penalty_factor=penalty_factor, positive=positive,
        fit_intercept=fit_intercept, task_col=task_col,
        task_weights=task_weights)
    model._validate_params()
    # the solutions do not depend on the rows' order: one regrouped copy
    data = model._validate_fit_data(X, y, sample_weight, task_order=True)
    problem = model._build_problem(*data)

    penalty = model._make_penalty(data[0].shape[1], problem=problem)
    if not multiclass:
        def task_weights(result):
            W, b = model._weights_of(problem, result)
            return W.T, b
        return (problem, model._make_loss(), penalty, task_weights,
                (problem.n_tasks,))

    def class_weights(result):
        return model._class_blocks(*model._weights_of(problem, result))
    return (problem, model._make_loss(), penalty, class_weights,
            (problem.n_tasks // model._n_classes, model._n_classes))


def _penalty_and_loss(penalty, l1_ratio, loss, *, l1_share, penalty_factor,
                      positive, delta):
    """The validated penalty (unit strength) and loss of the functions."""
    if not isinstance(l1_ratio, Real) or not 0 <= l1_ratio <= 1:
        raise ValueError(f"l1_ratio must be a float in [0, 1], got {l1_ratio!r}.")
    return (make_penalty(penalty, 1.0, l1_ratio, l1_share=l1_share,
                         penalty_factor=penalty_factor, positive=positive),
            make_loss(loss, delta=delta))


def alpha_max(X, y, *, penalty="l21", l1_ratio=1.0, fit_intercept=True,
              task_col=None, sample_weight=None, task_weights=None,
              loss="squared", l1_share=0.5, penalty_factor=None, positive=False,
              delta=1.0):
    """Smallest ``alpha`` for which the fitted ``coef_`` is all zero.

    Parameters
    ----------
    X, y, task_col, sample_weight, task_weights, fit_intercept
        As for :class:`~mtlinear.MultiTaskRegressor`.
    penalty : {"l1", "l21", "trace", "sparse_group"} or Penalty
    l1_ratio : float in (0, 1]
    loss : {"squared", "huber", "poisson", "logistic"}
        For ``"logistic"``, ``y`` holds two labels per task (per column in
        the shared layout), the larger being the positive class, or, as for
        :class:`~mtlinear.MultiTaskClassifier`, three or more labels (in a
        1-d ``y``, or in a column of a 2-d one), which makes every task a
        multinomial logistic regression, its penalty on the ``(d, T K)``
        matrix of all tasks' class weights.  For ``"poisson"``, counts
        ``y >= 0``.
    l1_share, penalty_factor, positive, delta
        As for :class:`~mtlinear.MultiTaskRegressor`.

    Returns
    -------
    float
        ``N°(X^T F'(b*)) / l1_ratio``: the dual norm of the data-fit gradient
        at ``W = 0`` (``max |.|`` for l1, the largest row norm for l21, the
        spectral norm for trace), divided by ``l1_ratio``.

    Examples
    --------
    >>> import numpy as np
    >>> from mtlinear import alpha_max, MultiTaskRegressor
    >>> rng = np.random.default_rng(0)
    >>> X, Y = rng.standard_normal((30, 5)), rng.standard_normal((30, 3))
    >>> a = alpha_max(X, Y, penalty="l21")
    >>> bool(np.all(MultiTaskRegressor(alpha=a).fit(X, Y).coef_ == 0))
    True
    """
    penalty, loss = _penalty_and_loss(
        penalty, l1_ratio, loss, l1_share=l1_share,
        penalty_factor=penalty_factor, positive=positive, delta=delta)
    problem, loss, penalty, _, _ = _functions_problem(
        X, y, loss=loss, penalty=penalty, l1_ratio=l1_ratio, task_col=task_col,
        sample_weight=sample_weight, task_weights=task_weights,
        fit_intercept=fit_intercept, l1_share=l1_share,
        penalty_factor=penalty_factor, positive=positive)
    return alpha_max_of_problem(problem, loss, penalty)


def path_on_problem(problem, loss, penalty, alphas, *, start=(None, None),
                    tol=1e-4, max_iter=5000, solver="auto", solver_verbose=0,
                    progress=None, coupling=None):
    """Solve ``problem`` at each of ``alphas`` in turn, warm-starting: the one
    solving loop of ``fit`` (a path of one alpha), the cross-validation and
    :func:`regularization_path`.

    ``penalty`` gives the penalty's kind, ``l1_ratio`` and options (its
    ``alpha`` is replaced); ``start = (W0, b0)`` starts the first solve.

    A generator: yields ``(k, SolveResult)`` for ``alphas[k]``, ``k = 0, 1, ...``
    (the caller may stop early).  ``progress`` (a :class:`Progress`) is told
    of every solved alpha.  ``coupling`` (a
    :class:`~mtlinear._coupling.TaskCoupling`, task graphs) is added to
    every solve.

    From the third alpha on, each solve starts from the path extrapolated
    through the last solutions (:func:`extrapolated_start`: for a ridge the
    quadratic through three in ``log(alpha)``, else the secant through two
    in ``alpha``), or from the previous solution when that has the lower
    objective.
    """
    problem.n_solves = max(problem.n_solves, len(alphas))
    # a ridge's path is smooth (a quadratic through three solutions), a
    # lasso-type one piecewise affine (the secant through two)
    ridge = penalty.lam == 0
    depth = 3 if ridge else 2
    # the last depth (W, b, X W + b or None), oldest first: the predictors,
    # where the solver computed them, extrapolate with the solutions (X is
    # linear), so a Newton solver compares its two starts without a product
    solutions = []
    start = (*start[:2], None)  # the first start's predictor is not known
    for k, alpha in enumerate(alphas):
        if k > 0:
            known = solutions[-depth:]
            start = (known[-1] if len(known) < 2 else extrapolated_start(
                alphas[k - len(known):k + 1], known, in_log=ridge))
        fallback = solutions[-1] if len(solutions) >= 2 else None
        result = solve(problem, loss,
                       penalty.with_strength(alpha, penalty.l1_ratio),
                       W0=start[0], b0=start[1],
                       fallback=None if fallback is None else fallback[:2],
                       max_iter=max_iter, tol=tol, solver=solver,
                       verbose=solver_verbose, coupling=coupling,
                       start_predictors=(start[2],
                                         None if fallback is None else fallback[2]))
        solutions = solutions[-depth + 1:] + [
            (result.W, result.b, solution_predictor(problem, result.W, result.b))]
        if progress is not None:
            progress.detail(f"{penalty.name} l1_ratio={penalty.l1_ratio:g} "
                            f"alpha[{k}]="
                            f"{alpha:.4g}: {result.n_iter} iterations, gap "
                            f"{result.gap:.2e} (target {result.tol_abs:.2e})")
            progress.update()
        yield k, result


def extrapolated_start(alphas, solutions, in_log=False):
    r"""The path extrapolated to ``alphas[-1]`` through ``solutions``
    (``(W, b)`` pairs at ``alphas[:-1]``, two or three, each possibly with
    more parts linear in them, such as ``X W + b``): the secant, or the
    quadratic, interpolating them; a part that is ``None`` in any solution
    is ``None``.

    The solution ``W(alpha)`` is piecewise smooth in ``alpha`` (affine while
    the support holds, for the lasso).  Through two solutions the secant,

    .. math:: W_2 \approx W_1 + \frac{\alpha_2 - \alpha_1}
              {\alpha_1 - \alpha_0} (W_1 - W_0),

    starts the next solve closer to its solution than ``W_1`` does: on a
    log-spaced grid this halves the epochs of a path (measured in the
    benchmarks' cross-validation).  Through three, the Lagrange quadratic
    :math:`\sum_i \ell_i(\alpha_3) W_i` follows the bend of a smooth path
    (the logistic ridge's cross-validation on Newsgroup: 85 Newton steps to
    76); a lasso-type path bends only at its kinks, where a quadratic
    extrapolates worse than the secant (a regression CV of l21: 10% more
    time), so paths use it for a ridge only.  ``b`` (or ``None``) is
    extrapolated alike.  Repeated alphas give no direction: the newest
    solution is extrapolated from fewer.

    ``in_log``: in ``log(alpha)``, for a ridge, whose solution is smooth in
    ``log(alpha)`` (it grows like ``log(1 / alpha)`` on nearly separable
    classes) and is affine in ``alpha`` on no segment: on a log-spaced grid
    the secant's factor in ``alpha`` is the grid's ratio (0.13 for ten
    alphas over eight decades) and barely extrapolates.
    """
    x = np.asarray(alphas, dtype=float)
    if in_log and x.min() > 0:
        x = np.log(x)
    while len(solutions) > 1 and len(np.unique(x[:-1])) < len(solutions):
        solutions, x = solutions[1:], x[1:]  # repeated alphas: fewer points
    if len(solutions) == 1:
        return solutions[0]
    nodes, target = x[:-1], x[-1]
    weights = [np.prod([(target - other) / (node - other)
                        for m, other in enumerate(nodes) if m != i])
               for i, node in enumerate(nodes)]
    return tuple(None if any(part is None for part in parts)
                 else sum(w * part for w, part in zip(weights, parts))
                 for parts in zip(*solutions))


def warn_unconverged(alphas, converged, what):
    """One ConvergenceWarning naming the alphas whose solve did not
    converge: above its gap target (at max_iter, or earlier without further
    progress), or at max_iter with the coefficients still moving
    (:attr:`SolveResult.converged`)."""
    bad = np.asarray(alphas)[~np.asarray(converged)]
    if bad.size:
        shown = ", ".join(f"{a:.3g}" for a in bad[:5])
        warnings.warn(f"{what}: {bad.size} solve(s) did not converge (alpha = "
                      f"{shown}{', ...' if bad.size > 5 else ''}): they ended "
                      "above the duality-gap target, having reached max_iter "
                      "or made no further progress, or reached max_iter with "
                      "coefficients still moving by more than tol. Increase "
                      "max_iter, raise tol, or scale the features.",
                      ConvergenceWarning)


def check_alphas(alphas):
    """A user's alpha grid as a float array sorted in decreasing order."""
    alphas = np.asarray(alphas, dtype=np.float64)
    if alphas.ndim != 1 or alphas.size == 0:
        raise ValueError(f"alphas must be a non-empty 1-d sequence of floats, "
                         f"got shape {alphas.shape}.")
    if not np.all(np.isfinite(alphas)) or np.any(alphas < 0):
        raise ValueError("alphas must be finite and non-negative.")
    return np.sort(alphas)[::-1]


def regularization_path(X, y, *, penalty="l21", l1_ratio=1.0, alphas=None,
                        n_alphas=100, eps=1e-3, loss="squared", task_col=None,
                        sample_weight=None, task_weights=None,
                        fit_intercept=True, tol=1e-4, max_iter=5000,
                        solver="auto", verbose=0, l1_share=0.5,
                        penalty_factor=None, positive=False, delta=1.0):
    """Solutions for a decreasing grid of ``alpha``, warm-started.

    For each ``alpha`` the function minimizes the objective of
    :class:`~mtlinear.MultiTaskRegressor` (``loss="squared"``, ``"huber"``
    or ``"poisson"``) or of the logistic multi-task model
    (``loss="logistic"``),

    .. math::

        \\sum_t \\frac{\\omega_t}{n_t} \\sum_{i \\in t} s_i\\,
        \\ell(y_i, x_i^T w_t + b_t) + \\alpha R(W),

    starting from the solution at the previous (larger) ``alpha``.  By
    default the grid runs from ``alpha_max`` (:func:`alpha_max`: the smallest
    ``alpha`` with ``W = 0``) down to ``eps * alpha_max``, log-spaced, like
    scikit-learn's ``enet_path``.

    Parameters
    ----------
    X : array-like or sparse matrix of shape (n_samples, n_columns)
        Features, plus the task column when ``task_col`` is set.
    y : array-like of shape (n_samples,) or (n_samples, n_tasks)
        Targets; with ``loss="logistic"``, two labels per task (per column
        in the shared layout), the larger being the positive class (as
        ``classes_[1]`` of a scikit-learn classifier), or multiclass labels,
        fitted as :class:`~mtlinear.MultiTaskClassifier` fits them
        (multinomial tasks, every task with the classes of
        ``MultiTaskClassifier.classes_``).
    penalty : {"l21", "l1", "l2", "trace", "sparse_group"} or Penalty, default="l21"
        A registered name or a penalty instance.
    l1_ratio : float in [0, 1], default=1.0
    alphas : array-like, optional
        The grid (sorted into decreasing order).  Required for ``"l2"`` or
        ``l1_ratio=0``, where ``alpha_max`` is infinite.
    n_alphas : int, default=100
        Size of the automatic grid.
    eps : float, default=1e-3
        ``alpha_min / alpha_max`` of the automatic grid.
    loss : {"squared", "huber", "poisson", "logistic"}, default="squared"
    task_col, sample_weight, task_weights, fit_intercept
        As for :class:`~mtlinear.MultiTaskRegressor`.
    l1_share, penalty_factor, positive, delta
        As for :class:`~mtlinear.MultiTaskRegressor`.
    tol : float, default=1e-4
        Relative duality-gap tolerance of each solve.
    max_iter : int, default=5000
        Iteration limit of each solve.
    solver : {"auto", "bcd", "prox_newton", "fista", "admm", "newton_admm"}, \
            default="auto"
    verbose : int, default=0
        1: progress over the alphas (a bar on a terminal); 2: one line per
        alpha; 3: also the solver's iterations.

    Returns
    -------
    alphas : ndarray of shape (n_alphas,)
        Decreasing.
    coefs : ndarray of shape (n_tasks, n_features, n_alphas)
        ``coefs[..., k]`` is ``coef_`` at ``alphas[k]`` (task columns
        excluded); with multiclass labels ``(n_tasks, n_classes, n_features,
        n_alphas)``, as ``MultiTaskClassifier.coef_`` (a task of the shared
        layout with fewer classes padded with zeros).
    intercepts : ndarray of shape (n_tasks, n_alphas)
        With multiclass labels ``(n_tasks, n_classes, n_alphas)``, each
        task's centred over its classes (``-inf`` for the padding).
    dual_gaps : ndarray of shape (n_alphas,)
        Absolute duality gaps at the returned solutions.
    n_iters : ndarray of shape (n_alphas,)
        Solver iterations at each alpha.

    Examples
    --------
    >>> import numpy as np
    >>> from mtlinear import regularization_path
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((40, 6))
    >>> Y = X[:, :2] @ rng.standard_normal((2, 3))
    >>> alphas, coefs, intercepts, gaps, n_iters = regularization_path(
    ...     X, Y, penalty="l21", n_alphas=5)
    >>> coefs.shape
    (3, 6, 5)
    >>> bool(np.all(coefs[..., 0] == 0))  # alphas[0] is alpha_max
    True
    """
    # the estimators' checks (scikit-learn's messages name the parameter)
    validate_parameter_constraints(_PATH_CONSTRAINTS, dict(
        l1_ratio=l1_ratio, n_alphas=n_alphas, eps=eps, tol=tol,
        max_iter=max_iter, l1_share=l1_share, fit_intercept=fit_intercept,
        positive=positive, delta=delta), caller_name="regularization_path")
    penalty, loss = _penalty_and_loss(
        penalty, l1_ratio, loss, l1_share=l1_share,
        penalty_factor=penalty_factor, positive=positive, delta=delta)
    check_solver(solver)
    problem, loss, penalty, weights, shape = _functions_problem(
        X, y, loss=loss, penalty=penalty, l1_ratio=l1_ratio, task_col=task_col,
        sample_weight=sample_weight, task_weights=task_weights,
        fit_intercept=fit_intercept, l1_share=l1_share,
        penalty_factor=penalty_factor, positive=positive)
    if alphas is None:
        alphas = alpha_grid(alpha_max_of_problem(problem, loss, penalty),
                            int(n_alphas), eps)
    else:
        alphas = check_alphas(alphas)
    coefs = np.empty(shape + (problem.n_features_in, len(alphas)))
    intercepts = np.empty(shape + (len(alphas),))
    gaps = np.empty(len(alphas))
    n_iters = np.empty(len(alphas), dtype=np.int64)
    converged = np.empty(len(alphas), dtype=bool)
    progress = Progress(len(alphas), verbose, "path") if verbose else None
    for k, result in path_on_problem(problem, loss, penalty, alphas,
                                     tol=tol, max_iter=max_iter, solver=solver,
                                     solver_verbose=max(verbose - 2, 0),
                                     progress=progress):
        coefs[..., k], intercepts[..., k] = weights(result)
        gaps[k], n_iters[k], converged[k] = result.gap, result.n_iter, result.converged
    warn_unconverged(alphas, converged, "regularization_path")
    return alphas, coefs, intercepts, gaps, n_iters
