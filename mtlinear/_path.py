"""Regularization-path utilities: ``alpha_max``."""
import numpy as np
from sklearn.utils import check_array
from sklearn.utils.validation import _check_sample_weight

from ._datafit import SampleDatafit
from ._task_data import (build_problem, check_task_weights, encode_task_labels,
                         split_task_column)
from .losses import LOSSES
from .penalties import make_penalty

__all__ = ["alpha_max", "alpha_max_of_problem"]


def alpha_max_of_problem(problem, loss, penalty, l1_ratio=1.0):
    """``alpha_max`` for a built :class:`~mtlinear._task_data.TaskProblem`.

    ``W = 0`` is optimal iff ``0`` is in ``grad_W F(0, b*) + alpha r dN(0)``,
    i.e. ``N°(grad_W F(0, b*)) <= alpha r`` where ``b*`` are the best
    intercepts for ``W = 0`` and ``N°`` the dual norm.  Hence
    ``alpha_max = N°(grad_W F(0, b*)) / r``.
    """
    pen = make_penalty(penalty, 1.0, l1_ratio)
    if pen.lam == 0:
        raise ValueError(f"alpha_max is infinite for penalty={penalty!r} with "
                         f"l1_ratio={l1_ratio}: a pure ridge penalty never sets "
                         "all coefficients to zero.")
    datafit = SampleDatafit(loss, problem)
    W0 = np.zeros((problem.n_features, problem.n_tasks))
    G, _ = datafit.gradient(W0, datafit.initial_intercept())
    return pen.dual_norm(G) / pen.lam


def alpha_max(X, y, *, penalty="l21", l1_ratio=1.0, fit_intercept=True,
              task_col=None, sample_weight=None, task_weights=None,
              loss="squared"):
    """Smallest ``alpha`` for which the fitted ``coef_`` is all zero.

    Parameters
    ----------
    X, y, task_col, sample_weight, task_weights, fit_intercept
        As for :class:`~mtlinear.MultiTaskRegressor`.
    penalty : {"l1", "l21", "trace"}
    l1_ratio : float in (0, 1]
    loss : {"squared", "logistic"}
        For ``"logistic"``, ``y`` holds labels in ``{-1, 1}`` (per column in
        the shared layout).

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
    loss = LOSSES[loss]
    if not 0 <= l1_ratio <= 1:
        raise ValueError(f"l1_ratio must be in [0, 1], got {l1_ratio!r}.")
    task_index, n_tasks = None, None
    if task_col is not None:
        X, labels = split_task_column(X, task_col)
        tasks, task_index = encode_task_labels(labels)
        n_tasks = len(tasks)
    X = check_array(X, accept_sparse=("csr", "csc"), dtype=np.float64, input_name="X")
    y = check_array(y, ensure_2d=False, dtype=np.float64, input_name="y")
    if y.shape[0] != X.shape[0]:
        raise ValueError(f"X has {X.shape[0]} samples but y has {y.shape[0]}; "
                         "they must match.")
    if task_col is None:
        y = y.reshape(len(y), -1)
        tasks = np.arange(y.shape[1])
    if sample_weight is not None:
        sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64,
                                             ensure_non_negative=True)
    problem = build_problem(X, y, task_index, n_tasks, sample_weight,
                            check_task_weights(task_weights, tasks), fit_intercept,
                            center_targets=loss.name == "squared")
    return alpha_max_of_problem(problem, loss, penalty, l1_ratio)
