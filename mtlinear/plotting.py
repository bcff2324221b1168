"""Plots of regularization paths, cross-validation curves and task
relatedness (matplotlib).

matplotlib is an optional dependency (the ``plot`` extra:
``pip install mtlinear[plot]``); it is imported only when a function here is
called.  Every function draws on ``ax`` (or the current axes) and returns it.
"""
import numpy as np
from sklearn.utils.validation import check_is_fitted

__all__ = ["plot_path", "plot_cv", "plot_task_relatedness",
           "cluster_order"]


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("mtlinear.plotting needs matplotlib, an optional "
                          "dependency: install it with `pip install "
                          "mtlinear[plot]` (or `pip install matplotlib`).") from None
    return plt


def _axes(ax):
    return _pyplot().gca() if ax is None else ax


def path_curves(coefs, penalty):
    """What :func:`plot_path` draws: one curve per row of the result.

    ``coefs`` is (n_tasks, n_features, n_alphas).  For ``"trace"`` the rows
    are the singular values of ``W = coef.T`` at each alpha (largest first);
    otherwise the norm of each feature row ``W_j`` across the tasks:
    ``||W_j||_1`` for ``"l1"``, ``||W_j||_2`` for ``"l21"`` and ``"l2"``.
    """
    coefs = np.asarray(coefs, dtype=float)
    if coefs.ndim != 3:
        raise ValueError(f"coefs must have shape (n_tasks, n_features, n_alphas) "
                         f"as returned by regularization_path, got {coefs.shape}.")
    if penalty == "trace":
        return np.linalg.svd(np.moveaxis(coefs, -1, 0), compute_uv=False).T
    order = 1 if penalty == "l1" else 2
    return np.linalg.norm(coefs, ord=order, axis=0)


def plot_path(alphas, coefs, *, penalty="l21", ax=None, **line_kwargs):
    """Draw a regularization path against ``alpha`` (log scale, decreasing).

    Parameters
    ----------
    alphas : array-like of shape (n_alphas,)
    coefs : array-like of shape (n_tasks, n_features, n_alphas)
        As returned by :func:`mtlinear.regularization_path`.
    penalty : {"l21", "l1", "l2", "trace"}, default="l21"
        What to draw: the row norms ``||W_j||`` of the features (``||.||_1``
        for ``"l1"``, ``||.||_2`` otherwise), or for ``"trace"`` the singular
        values of ``W``, whose count above zero is the rank.
    ax : matplotlib Axes, optional
        Default: the current axes.
    **line_kwargs
        Passed to ``ax.plot``.

    Returns
    -------
    matplotlib.axes.Axes
    """
    ax = _axes(ax)
    alphas = np.asarray(alphas, dtype=float)
    curves = path_curves(coefs, penalty)
    if curves.shape[1] != alphas.shape[0]:
        raise ValueError(f"coefs has {curves.shape[1]} alphas but alphas has "
                         f"{alphas.shape[0]}.")
    ax.plot(alphas, curves.T, **line_kwargs)
    ax.set_xscale("log")
    ax.set_xlim(alphas.max(), alphas.min())  # strong to weak regularization
    ax.set_xlabel("alpha")
    ax.set_ylabel({"trace": "singular values of W",
                   "l1": "feature row norms ||W_j||_1"}.get(
                       penalty, "feature row norms ||W_j||_2"))
    return ax


def plot_cv(estimator, *, ax=None, band=True):
    """Draw the cross-validation curve of a fitted CV estimator.

    The mean held-out score over the folds against ``alpha`` (log scale), a
    band of plus or minus one standard deviation across the folds, one curve
    per ``(penalty, l1_ratio, graph_alpha)`` searched, and a vertical line at
    the chosen ``alpha_``.  For :class:`~mtlinear.MultiTaskRegressorCV` with the default
    scoring the curve is the mean squared error (``mse_path_``); otherwise it
    is ``score_path_`` (higher is better).

    Parameters
    ----------
    estimator : MultiTaskRegressorCV or MultiTaskClassifierCV, fitted
    ax : matplotlib Axes, optional
    band : bool, default=True
        Draw the standard-deviation band.

    Returns
    -------
    matplotlib.axes.Axes
    """
    from ._cv import _check_penalties, _grid_values

    check_is_fitted(estimator, "score_path_")
    ax = _axes(ax)
    penalties = _check_penalties(estimator.penalty)
    ratios = _grid_values(estimator.l1_ratio, "l1_ratio", upper=1.0)
    graphs = _grid_values(estimator.graph_alpha, "graph_alpha")
    is_mse = hasattr(estimator, "mse_path_")
    path = estimator.mse_path_ if is_mse else estimator.score_path_
    n_alphas, n_folds = path.shape[-2:]
    shape = (len(penalties), len(ratios), len(graphs))
    path = path.reshape(shape + (n_alphas, n_folds))
    alphas = np.asarray(estimator.alphas_).reshape(shape + (n_alphas,))
    for index in np.ndindex(*shape):
        penalty, ratio, graph = (penalties[index[0]], ratios[index[1]],
                                 graphs[index[2]])
        mean, std = path[index].mean(axis=1), path[index].std(axis=1)
        label = ", ".join(
            ([penalty] if len(penalties) > 1 else [])
            + ([f"l1_ratio={ratio:g}"] if len(ratios) > 1 else [])
            + ([f"graph_alpha={graph:g}"] if len(graphs) > 1 else [])) or None
        line, = ax.plot(alphas[index], mean, label=label)
        if band:
            ax.fill_between(alphas[index], mean - std, mean + std,
                            color=line.get_color(), alpha=0.2, linewidth=0)
    chosen = ([estimator.penalty_] if len(penalties) > 1 else []) + (
        [f"l1_ratio={estimator.l1_ratio_:g}"] if len(ratios) > 1 else []) + (
        [f"graph_alpha={estimator.graph_alpha_:g}"] if len(graphs) > 1 else [])
    ax.axvline(estimator.alpha_, color="k", linestyle="--",
               label=f"alpha_ = {estimator.alpha_:.3g}"
               + (f" ({', '.join(chosen)})" if chosen else ""))
    ax.set_xscale("log")
    ax.set_xlim(alphas.max(), alphas.min())
    ax.set_xlabel("alpha")
    ax.set_ylabel("held-out mean squared error" if is_mse
                  else "held-out score (higher is better)")
    ax.legend()
    return ax


def _check_task_matrix(matrix):
    matrix = np.asarray(matrix, dtype=float)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] \
            or matrix.shape[0] == 0:
        raise ValueError(f"matrix must be square, (n_tasks, n_tasks), with at "
                         f"least one task; got shape {matrix.shape}.")
    if not np.all(np.isfinite(matrix)):
        raise ValueError("matrix holds NaN or infinite values.")
    return matrix


def _is_correlation(matrix):
    """Values in [-1, 1] (up to rounding): a correlation's scale."""
    return bool(np.all(np.abs(matrix) <= 1.0 + 1e-12))


def cluster_order(matrix):
    r"""Order of the tasks that puts related tasks next to each other.

    Average-linkage hierarchical clustering of the tasks on the distance
    ``1 - S``, where ``S`` is ``matrix`` made symmetric,
    :math:`(M + M^\top) / 2`, and, when its values leave ``[-1, 1]``,
    divided by its largest absolute value; the order is that of the leaves
    of the dendrogram (:func:`scipy.cluster.hierarchy.leaves_list`, with
    the optimal leaf ordering, so that neighbours are as similar as the
    tree allows).

    Parameters
    ----------
    matrix : array-like of shape (n_tasks, n_tasks)
        A similarity of the tasks, such as
        :func:`mtlinear.inspection.task_relatedness` returns.

    Returns
    -------
    ndarray of int of shape (n_tasks,)
        A permutation: ``matrix[order][:, order]`` is the reordered matrix.
    """
    from scipy.cluster.hierarchy import leaves_list, linkage
    from scipy.spatial.distance import squareform

    similarity = _check_task_matrix(matrix)
    n_tasks = similarity.shape[0]
    if n_tasks < 3:  # nothing to reorder
        return np.arange(n_tasks)
    similarity = (similarity + similarity.T) / 2
    if not _is_correlation(similarity):
        similarity = similarity / np.abs(similarity).max()
    distance = np.clip(1.0 - similarity, 0.0, None)
    np.fill_diagonal(distance, 0.0)
    tree = linkage(squareform(distance, checks=False), method="average",
                   optimal_ordering=True)
    return leaves_list(tree)


def _check_order(order, matrix):
    n_tasks = matrix.shape[0]
    if isinstance(order, str) and order == "cluster":
        return cluster_order(matrix)
    if order is None:
        return np.arange(n_tasks)
    if isinstance(order, str):
        raise ValueError(f"order must be 'cluster', None or a permutation of "
                         f"the tasks, got {order!r}.")
    order = np.asarray(order)
    if order.dtype.kind not in "iu" or not np.array_equal(np.sort(order),
                                                          np.arange(n_tasks)):
        raise ValueError(f"order must be a permutation of 0, ..., "
                         f"{n_tasks - 1} (or 'cluster', None).")
    return order


def plot_task_relatedness(matrix, *, labels=None, order="cluster", ax=None,
                          cmap="RdBu_r", **imshow_kwargs):
    """Draw a task-by-task relatedness matrix as a heatmap.

    Parameters
    ----------
    matrix : array-like of shape (n_tasks, n_tasks)
        Typically :func:`mtlinear.inspection.task_relatedness`.  A matrix
        whose values lie in ``[-1, 1]`` (a correlation) is drawn on the
        fixed scale ``[-1, 1]``, so that white is 0 with the default
        diverging colormap; any other on its own range.
    labels : array-like of shape (n_tasks,), optional
        Task names for the ticks (e.g. the model's ``tasks_``), in the
        order of ``matrix``.  Default: the task positions ``0, ..., T - 1``
        when there are at most 40 tasks, no tick labels beyond.
    order : "cluster", None or array-like of int, default="cluster"
        ``"cluster"``: related tasks next to each other
        (:func:`cluster_order`); ``None``: as given; or a permutation.
    ax : matplotlib Axes, optional
        Default: the current axes.
    cmap : str or Colormap, default="RdBu_r"
    **imshow_kwargs
        Passed to ``ax.imshow`` (``vmin`` and ``vmax`` override the scale).

    Returns
    -------
    matplotlib.axes.Axes
        With the heatmap as its image and a colorbar beside it.
    """
    matrix = _check_task_matrix(matrix)
    n_tasks = matrix.shape[0]
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (n_tasks,):
            raise ValueError(f"labels must have one entry per task ({n_tasks}), "
                             f"got shape {labels.shape}.")
    permutation = _check_order(order, matrix)
    ax = _axes(ax)
    if _is_correlation(matrix):
        imshow_kwargs = {"vmin": -1.0, "vmax": 1.0, **imshow_kwargs}
    image = ax.imshow(matrix[np.ix_(permutation, permutation)], cmap=cmap,
                      interpolation="nearest", **imshow_kwargs)
    ax.figure.colorbar(image, ax=ax)
    if labels is None and n_tasks > 40:  # unreadable: leave the ticks out
        ax.set_xticks([])
        ax.set_yticks([])
    else:
        names = (permutation if labels is None else labels[permutation])
        ticks = np.arange(n_tasks)
        ax.set_xticks(ticks, [str(name) for name in names], rotation=90)
        ax.set_yticks(ticks, [str(name) for name in names])
    ax.set_xlabel("task")
    ax.set_ylabel("task")
    return ax
