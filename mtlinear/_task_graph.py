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
    ndarray or scipy.sparse.csr_array of shape (T, T)
        Symmetric, non-negative, zero diagonal.  Sparse (CSR, no explicit
        zeros) for a graph given by its edges: ``"chain"``, a dict or a
        sparse matrix; dense for ``"mean"`` (every pair), an array or a
        DataFrame.  A thousand-task chain then takes its ``2 (T - 1)``
        entries rather than ``T^2``.
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
            ones = np.ones(max(T - 1, 0))
            A = sp.diags_array([ones, ones], offsets=[1, -1], shape=(T, T),
                               format="csr")
    elif isinstance(task_graph, dict):
        A = _from_pairs(task_graph, labels)
    else:
        A = _from_matrix(task_graph, labels)
    if sp.issparse(A):
        A = sp.csr_array(A, dtype=np.float64, copy=True)
        A.setdiag(0.0)  # self-loops do not count
        A.eliminate_zeros()
        A.sort_indices()
        return A
    A = A.copy()
    np.fill_diagonal(A, 0.0)
    return A


def _from_pairs(pairs, labels):
    positions = {label: k for k, label in enumerate(labels)}
    weights = {}  # (i, j) with i <= j: the weight of the pair
    for pair, weight in pairs.items():
        if not (isinstance(pair, tuple) and len(pair) == 2):
            raise ValueError(f"task_graph as a dict maps pairs of task labels "
                             f"(s, t) to weights; got the key {pair!r}.")
        s, t = (p.item() if isinstance(p, np.generic) else p for p in pair)
        for label in (s, t):
            if label not in positions:
                raise ValueError(f"task_graph names task {label!r}, which is "
                                 f"not among the tasks {labels[:10]}.")
        weight = float(_check_weights(np.asarray(weight, dtype=float)))
        i, j = sorted((positions[s], positions[t]))
        known = weights.get((i, j), 0.0)
        if known != 0 and known != weight:
            raise ValueError(f"task_graph gives the pair {pair!r} two different "
                             f"weights ({known:g} and {weight:g}).")
        weights[i, j] = weight
    T = len(labels)
    if not weights:
        return sp.csr_array((T, T))
    (rows, cols), values = zip(*weights.keys()), list(weights.values())
    return sp.coo_array((values + values, (rows + cols, cols + rows)),
                        shape=(T, T)).tocsr()


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
    sparse = sp.issparse(task_graph)
    A = (sp.csr_array(task_graph, dtype=np.float64) if sparse
         else np.array(task_graph, dtype=float))
    if A.shape != (T, T):
        raise ValueError(f"task_graph has shape {A.shape} but there are {T} "
                         f"tasks; give a ({T}, {T}) array of weights in the "
                         "order of the sorted task labels.")
    if sparse:
        A.sum_duplicates()
        _check_weights(A.data)
        # |A - A^T| <= 1e-10 |A^T| entrywise, as np.allclose for a dense A
        symmetric = (abs(A - A.T) > 1e-10 * abs(A.T)).nnz == 0
    else:
        _check_weights(A)
        symmetric = np.allclose(A, A.T, rtol=1e-10, atol=0.0)
    if not symmetric:
        raise ValueError("task_graph must be symmetric (A[s, t] == A[t, s]); "
                         "symmetrize it, for instance (A + A.T) / 2.")
    return 0.5 * (A + A.T)


def _check_weights(A):
    if not np.all(np.isfinite(A)) or np.any(A < 0):
        raise ValueError("task_graph weights must be finite and non-negative.")
    return A


def graph_coupling(task_graph, graph_alpha, tasks):
    """``(A, coupling)``: the adjacency and the :class:`TaskCoupling` with
    ``K = 2 graph_alpha L``, ``L = diag(A 1) - A``; ``(None, None)`` without
    a graph (``(A, None)`` with ``graph_alpha = 0`` or no edge).

    ``L`` and ``K`` are sparse (CSR) when ``A`` is (:func:`task_adjacency`):
    the solvers then work with the ``T + nnz(A)`` entries of ``K``, never a
    ``T x T`` array (the solves that need a factorization of ``K`` use a
    sparse LU, see :mod:`mtlinear._coupling` and :mod:`mtlinear._ridge`).
    """
    if task_graph is None:
        return None, None
    A = task_adjacency(task_graph, tasks)
    if sp.issparse(A):
        if graph_alpha == 0 or A.nnz == 0:
            return A, None
        L = sp.diags_array(A.sum(axis=1), format="csr") - A
        return A, TaskCoupling(2.0 * graph_alpha * L)
    if graph_alpha == 0 or not np.any(A):
        return A, None
    L = np.diag(A.sum(axis=1)) - A
    return A, TaskCoupling(2.0 * graph_alpha * L)
