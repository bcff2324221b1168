"""Loaders for MALSAR-format data and a generator of multi-task problems."""
import numpy as np
import scipy.io

from ._task_data import stack_tasks

__all__ = ["load_school", "make_multitask_regression"]


def load_school(path):
    """Load the School data (MALSAR's ``school.mat``) in the stacked layout.

    Parameters
    ----------
    path : str or path-like
        A MALSAR-format ``.mat`` file with cell arrays ``X`` (each (n_t, d))
        and ``Y`` (each (n_t, 1)).  The file stores ``uint8``; it is read with
        ``mat_dtype=True`` so that arithmetic does not wrap around.

    Returns
    -------
    X : ndarray of shape (n, d + 1)
        Features with the task (school) index as the last column
        (``task_col=-1``).
    y : ndarray of shape (n,)
    """
    mat = scipy.io.loadmat(path, mat_dtype=True)
    X_list = [np.asarray(x, dtype=float) for x in mat["X"].ravel()]
    y_list = [np.asarray(y, dtype=float).ravel() for y in mat["Y"].ravel()]
    return stack_tasks(X_list, y_list)


def make_multitask_regression(n_tasks=50, n_features=30, n_informative=8,
                              samples_per_task=(20, 200), rank=None, noise=1.0,
                              random_state=None):
    """A heterogeneous multi-task regression problem with shared structure.

    Every task draws its own number of samples, and its weights are supported
    on the same ``n_informative`` features (and, with ``rank``, lie in a
    common ``rank``-dimensional subspace).

    Parameters
    ----------
    n_tasks : int, default=50
    n_features : int, default=30
    n_informative : int, default=8
        Features with nonzero weights (the same for every task).
    samples_per_task : (int, int), default=(20, 200)
        Each task's number of samples is drawn uniformly in this range
        (both ends included).
    rank : int or None, default=None
        Rank of the true weights (``None``: independent Gaussian weights on
        the informative features).
    noise : float, default=1.0
        Standard deviation of the Gaussian noise added to ``y``.
    random_state : int, Generator or None, default=None

    Returns
    -------
    X : ndarray of shape (n, n_features + 1)
        Features with the task index as the last column (``task_col=-1``).
    y : ndarray of shape (n,)
        ``x^T w_t + 3 t / n_tasks`` plus noise (task ``t``'s intercept is
        ``3 t / n_tasks``).
    W : ndarray of shape (n_features, n_tasks)
        The true weights.
    """
    rng = np.random.default_rng(random_state)
    W = np.zeros((n_features, n_tasks))
    support = rng.choice(n_features, n_informative, replace=False)
    if rank is None:
        W[support] = rng.standard_normal((n_informative, n_tasks))
    else:
        W[support] = (rng.standard_normal((n_informative, rank))
                      @ rng.standard_normal((rank, n_tasks)))
    X_list, y_list = [], []
    for t in range(n_tasks):
        n_t = int(rng.integers(samples_per_task[0], samples_per_task[1] + 1))
        Xt = rng.standard_normal((n_t, n_features))
        X_list.append(Xt)
        y_list.append(Xt @ W[:, t] + 3.0 * t / n_tasks
                      + noise * rng.standard_normal(n_t))
    X, y = stack_tasks(X_list, y_list)
    return X, y, W
