"""Task graphs: the estimators' ``task_graph`` and ``graph_alpha`` parameters.

A task graph with symmetric non-negative weights ``A`` (T x T) adds

.. math::

    \\frac{\\text{graph\\_alpha}}{2} \\sum_{s, t} A_{st} \\|w_s - w_t\\|^2
    = \\text{graph\\_alpha}\\, \\mathrm{tr}(W L W^T), \\qquad
    L = \\mathrm{diag}(A \\mathbf{1}) - A,

to the objective (the sum runs over ordered pairs; self-loops ``A_tt`` do not
count).  Shortcuts:

* ``"mean"``: ``A_st = 1 / T``; the term is ``graph_alpha * sum_t ||w_t -
  wbar||^2`` with ``wbar`` the mean of the tasks' weights (the regularized
  multi-task learning of Evgeniou and Pontil, 2004).
* ``"chain"``: ``A = 1`` between neighbours in the order of the sorted task
  labels; the term is ``graph_alpha * sum_t ||w_t - w_{t+1}||^2`` (temporal
  smoothness, MALSAR's TGL and SRMTL with a chain).
"""
import numpy as np
import scipy.sparse as sp

from ._coupling import TaskCoupling

__all__ = ["task_adjacency", "graph_coupling"]

_SHORTCUTS = ("mean", "chain")


def task_adjacency(task_graph, tasks):
    """The adjacency ``A`` (T, T) of ``task_graph`` over ``tasks``.

    Parameters
    ----------
    task_graph : {"mean", "chain"}, array-like of shape (T, T), sparse matrix,
        pandas DataFrame or dict
        An array is read in the order of the sorted task labels (the columns
        of ``y`` in the shared layout); a DataFrame by its index and column
        labels; a dict maps pairs of task labels ``(s, t)`` to weights (a
        pair stands for both orders).
    tasks : array-like
        The task labels, in the solver's order.

    Returns
    -------
    ndarray of shape (T, T)
        Symmetric, non-negative, zero diagonal.
    """
    labels = np.asarray(tasks).tolist()
    T = len(labels)
    if isinstance(task_graph, str):
        if task_graph not in _SHORTCUTS:
            raise ValueError(f"task_graph must be 'mean', 'chain', a (T, T) "
                             f"array or a dict of pairs; got {task_graph!r}.")
        if task_graph == "mean":
            A = np.full((T, T), 1.0 / T)
        else:
            A = np.eye(T, k=1) + np.eye(T, k=-1)
    elif isinstance(task_graph, dict):
        A = _from_pairs(task_graph, labels)
    else:
        A = _from_matrix(task_graph, labels)
    A = A.copy()
    np.fill_diagonal(A, 0.0)
    return A


def _from_pairs(pairs, labels):
    positions = {label: k for k, label in enumerate(labels)}
    A = np.zeros((len(labels), len(labels)))
    for pair, weight in pairs.items():
        if not (isinstance(pair, tuple) and len(pair) == 2):
            raise ValueError(f"task_graph as a dict maps pairs of task labels "
                             f"(s, t) to weights; got the key {pair!r}.")
        s, t = (p.item() if isinstance(p, np.generic) else p for p in pair)
        for label in (s, t):
            if label not in positions:
                raise ValueError(f"task_graph names task {label!r}, which is "
                                 f"not among the tasks {labels[:10]}.")
        weight = _check_weights(np.asarray(weight, dtype=float))
        i, j = positions[s], positions[t]
        if A[i, j] != 0 and A[i, j] != weight:
            raise ValueError(f"task_graph gives the pair {pair!r} two different "
                             f"weights ({A[i, j]:g} and {float(weight):g}).")
        A[i, j] = A[j, i] = weight
    return A


def _from_matrix(task_graph, labels):
    T = len(labels)
    if hasattr(task_graph, "index") and hasattr(task_graph, "columns"):
        # a DataFrame: by its labels, not its order
        index, columns = list(task_graph.index), list(task_graph.columns)
        if sorted(map(str, index)) != sorted(map(str, columns)) \
                or set(index) != set(labels):
            raise ValueError(
                "task_graph is a DataFrame whose index and columns are not "
                f"both the task labels {labels[:10]}; label them by task or "
                "give a plain (T, T) array in the order of the sorted labels.")
        task_graph = task_graph.loc[labels, labels].to_numpy()
    A = (task_graph.toarray() if sp.issparse(task_graph)
         else np.array(task_graph, dtype=float))
    if A.shape != (T, T):
        raise ValueError(f"task_graph has shape {A.shape} but there are {T} "
                         f"tasks; give a ({T}, {T}) array of weights in the "
                         "order of the sorted task labels.")
    _check_weights(A)
    if not np.allclose(A, A.T, rtol=1e-10, atol=0.0):
        raise ValueError("task_graph must be symmetric (A[s, t] == A[t, s]); "
                         "symmetrize it, for instance (A + A.T) / 2.")
    return 0.5 * (A + A.T)


def _check_weights(A):
    if not np.all(np.isfinite(A)) or np.any(A < 0):
        raise ValueError("task_graph weights must be finite and non-negative.")
    return A


def graph_coupling(task_graph, graph_alpha, tasks):
    """``(A, coupling)``: the adjacency and the :class:`TaskCoupling` with
    ``K = 2 graph_alpha L``; ``(None, None)`` without a graph (or with
    ``graph_alpha = 0``)."""
    if task_graph is None:
        return None, None
    A = task_adjacency(task_graph, tasks)
    if graph_alpha == 0 or not np.any(A):
        return A, None
    L = np.diag(A.sum(axis=1)) - A
    return A, TaskCoupling(2.0 * graph_alpha * L)
