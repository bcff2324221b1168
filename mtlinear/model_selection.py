"""Cross-validation splitters for the stacked (heterogeneous-task) layout.

:class:`TaskStratifiedKFold` splits the rows of every task into ``n_splits``
parts and makes test fold ``k`` the union of the tasks' ``k``-th parts, so each
fold holds about ``1 / n_splits`` of every task: every task is present in
every training fold (a multi-task model has no weights for a task it never
saw), and the task proportions are the same in every fold.
"""
import warnings
from numbers import Integral

import numpy as np
from sklearn.model_selection import BaseCrossValidator
from sklearn.utils import check_random_state

from ._design import task_rows
from ._task_data import _normalize_labels, split_task_column

__all__ = ["TaskStratifiedKFold", "RepeatedTaskStratifiedKFold"]


def _task_labels(X, groups, task_col):
    if groups is not None:
        labels = np.asarray(groups)
        if labels.ndim != 1:
            raise ValueError(f"groups must be 1-d (one task label per row), got "
                             f"shape {labels.shape}.")
        if X is not None and labels.shape[0] != _n_rows(X):
            raise ValueError(f"groups has {labels.shape[0]} labels but X has "
                             f"{_n_rows(X)} rows; give one task label per row.")
        return _normalize_labels(labels)
    if task_col is None:
        raise ValueError("TaskStratifiedKFold needs the task of every row: pass "
                         "groups=<task labels> to split (GridSearchCV.fit "
                         "forwards groups) or set task_col to the column of X "
                         "holding them.")
    if X is None:
        raise ValueError("TaskStratifiedKFold with task_col needs X in split.")
    _, labels = split_task_column(X, task_col)
    return _normalize_labels(labels)


def _n_rows(X):
    return X.shape[0] if hasattr(X, "shape") else len(X)


def _fold_of_rows(task_index, n_splits, rng):
    """Fold number of every row: each task's rows dealt into ``n_splits`` parts.

    Parts differ in size by at most one; the larger parts of successive tasks
    go to successive folds, so fold sizes also differ by at most one overall.
    """
    fold = np.empty(task_index.shape[0], dtype=np.int64)
    offset = 0
    counts = np.bincount(task_index)
    rows_of = task_rows(task_index, counts.size)
    # the largest groups first: the small ones (a task's rare class) are
    # then dealt one after another, round the folds, instead of each
    # starting where the large group before it happened to end
    for t in np.argsort(-counts, kind="stable"):
        rows = rows_of[t]
        if rng is not None:
            rows = rng.permutation(rows)
        n_t = rows.size
        sizes = np.full(n_splits, n_t // n_splits)
        sizes[(offset + np.arange(n_t % n_splits)) % n_splits] += 1
        offset = (offset + n_t) % n_splits
        fold[rows] = np.repeat(np.arange(n_splits), sizes)
    return fold


class TaskStratifiedKFold(BaseCrossValidator):
    """K-fold that keeps every task in every fold, in the same proportions.

    For the stacked layout (``task_col``): the rows of each task are dealt
    into ``n_splits`` nearly equal parts (shuffled first if ``shuffle``), and
    test fold ``k`` is the union of every task's ``k``-th part.  Every task
    then has about ``(n_splits - 1) / n_splits`` of its rows in each training
    fold, which a multi-task model needs (it has no weights for a task it did
    not see), and each fold keeps the tasks' proportions.

    Parameters
    ----------
    n_splits : int, default=5
        Number of folds, at least 2.  A task (or group) with fewer rows than
        ``n_splits`` is spread over as many folds as it has rows, with a
        warning (a task of one row then misses a training fold).
    shuffle : bool, default=False
        Shuffle each task's rows before dealing them into folds.
    random_state : int, RandomState instance or None, default=None
        Seed of the shuffle (only with ``shuffle=True``).
    task_col : int, str or None, default=None
        Column of ``X`` with each row's task label, as for the estimators.
        Used when :meth:`split` gets no ``groups``; with it the splitter works
        in ``GridSearchCV(cv=TaskStratifiedKFold(task_col=-1))`` and
        ``cross_val_score`` without passing groups.

    Examples
    --------
    >>> import numpy as np
    >>> from mtlinear.model_selection import TaskStratifiedKFold
    >>> tasks = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
    >>> X = np.zeros((10, 2))
    >>> for train, test in TaskStratifiedKFold(n_splits=2).split(X, groups=tasks):
    ...     print(test, np.bincount(tasks[train]))
    [0 1 4 5 6] [2 3]
    [2 3 7 8 9] [2 3]
    """

    def __init__(self, n_splits=5, *, shuffle=False, random_state=None,
                 task_col=None):
        if not isinstance(n_splits, Integral) or isinstance(n_splits, bool):
            raise ValueError(f"n_splits must be an integer, got {n_splits!r}.")
        if n_splits < 2:
            raise ValueError(f"n_splits must be at least 2, got {n_splits}.")
        if not isinstance(shuffle, bool):
            raise ValueError(f"shuffle must be True or False, got {shuffle!r}.")
        if not shuffle and random_state is not None:
            raise ValueError("Setting random_state has no effect without "
                             "shuffle=True; set shuffle=True or leave "
                             "random_state=None.")
        self.n_splits = int(n_splits)
        self.shuffle = shuffle
        self.random_state = random_state
        self.task_col = task_col

    def get_n_splits(self, X=None, y=None, groups=None):
        """Number of splits (``n_splits``)."""
        return self.n_splits

    def split(self, X, y=None, groups=None):
        """Generate ``(train, test)`` row indices.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_columns)
            Only its length is used, unless the labels come from ``task_col``.
        y : ignored
        groups : array-like of shape (n_samples,), optional
            Task label of each row; takes precedence over ``task_col``.

        Yields
        ------
        train, test : ndarray of int
            Sorted row indices.
        """
        fold = self._folds(X, groups, check_random_state(self.random_state)
                           if self.shuffle else None)
        for k in range(self.n_splits):
            yield np.flatnonzero(fold != k), np.flatnonzero(fold == k)

    def _folds(self, X, groups, rng):
        labels = _task_labels(X, groups, self.task_col)
        tasks, task_index = np.unique(labels, return_inverse=True)
        counts = np.bincount(task_index)
        small = np.flatnonzero(counts < self.n_splits)
        if small.size:  # as StratifiedKFold does with a rare class
            t = small[np.argmin(counts[small])]
            warnings.warn(
                f"The least populated group {tasks[t].item()!r} has only "
                f"{counts[t]} rows, fewer than n_splits={self.n_splits} "
                f"({small.size} group(s) in all); their rows are spread over as "
                "many folds as they have rows, and the other folds test none "
                "of them.", UserWarning)
        return _fold_of_rows(task_index, self.n_splits, rng)


class RepeatedTaskStratifiedKFold(BaseCrossValidator):
    """:class:`TaskStratifiedKFold` repeated ``n_repeats`` times, shuffled differently.

    Parameters
    ----------
    n_splits : int, default=5
    n_repeats : int, default=10
    random_state : int, RandomState instance or None, default=None
        Seed of the shuffles.
    task_col : int, str or None, default=None
        As for :class:`TaskStratifiedKFold`.
    """

    def __init__(self, n_splits=5, *, n_repeats=10, random_state=None,
                 task_col=None):
        if not isinstance(n_repeats, Integral) or isinstance(n_repeats, bool) \
                or n_repeats < 1:
            raise ValueError(f"n_repeats must be a positive integer, got "
                             f"{n_repeats!r}.")
        TaskStratifiedKFold(n_splits)  # validates n_splits
        self.n_splits = int(n_splits)
        self.n_repeats = int(n_repeats)
        self.random_state = random_state
        self.task_col = task_col

    def get_n_splits(self, X=None, y=None, groups=None):
        """Number of splits (``n_splits * n_repeats``)."""
        return self.n_splits * self.n_repeats

    def split(self, X, y=None, groups=None):
        """Generate ``(train, test)`` row indices, repeat after repeat."""
        rng = check_random_state(self.random_state)
        for _ in range(self.n_repeats):
            splitter = TaskStratifiedKFold(self.n_splits, shuffle=True,
                                           random_state=rng,
                                           task_col=self.task_col)
            yield from splitter.split(X, y, groups)
