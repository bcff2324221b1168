"""TaskStratifiedKFold: every task in every training fold, proportions kept."""
import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import GridSearchCV, cross_val_score

from mtlinear import MultiTaskRegressor, stack_tasks
from mtlinear.model_selection import (RepeatedTaskStratifiedKFold,
                                      TaskStratifiedKFold)


def _labels(sizes):
    return np.repeat(np.arange(len(sizes)), sizes)


def _check_partition(splits, tasks, n_splits):
    """Test folds partition the rows; every task trains in every fold and its
    held-out share differs by at most one row between folds."""
    n = len(tasks)
    seen = np.zeros(n, dtype=int)
    per_fold = []
    for train, test in splits:
        assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(n))
        assert np.intersect1d(train, test).size == 0
        assert set(tasks[train]) == set(tasks)
        seen[test] += 1
        per_fold.append([np.sum(tasks[test] == t) for t in np.unique(tasks)])
    assert np.all(seen == 1)
    per_fold = np.array(per_fold)  # (folds, tasks)
    assert len(per_fold) == n_splits
    assert np.all(per_fold.max(axis=0) - per_fold.min(axis=0) <= 1)
    sizes = per_fold.sum(axis=1)
    assert sizes.max() - sizes.min() <= 1


@pytest.mark.parametrize("shuffle", [False, True])
def test_every_task_in_every_training_fold(shuffle):
    sizes = [5, 7, 23, 11, 6, 40]
    tasks = np.random.default_rng(0).permutation(_labels(sizes))
    X = np.zeros((len(tasks), 2))
    cv = TaskStratifiedKFold(5, shuffle=shuffle,
                             random_state=0 if shuffle else None)
    _check_partition(list(cv.split(X, groups=tasks)), tasks, 5)
    assert cv.get_n_splits() == 5


def test_shuffle_is_seeded():
    tasks = _labels([20, 30])
    X = np.zeros((50, 1))

    def tests(cv):
        return [t.tolist() for _, t in cv.split(X, groups=tasks)]

    assert tests(TaskStratifiedKFold(3, shuffle=True, random_state=1)) == \
        tests(TaskStratifiedKFold(3, shuffle=True, random_state=1))
    assert tests(TaskStratifiedKFold(3, shuffle=True, random_state=1)) != \
        tests(TaskStratifiedKFold(3))


def test_labels_from_task_col_or_groups():
    tasks = np.array(["a", "b"] * 6 + ["c"] * 4)
    X = pd.DataFrame({"x": np.arange(16.0), "school": tasks})
    from_col = list(TaskStratifiedKFold(3, task_col="school").split(X))
    from_groups = list(TaskStratifiedKFold(3).split(X, groups=tasks))
    for (a, b), (c, d) in zip(from_col, from_groups):
        assert np.array_equal(a, c) and np.array_equal(b, d)
    _check_partition(from_col, tasks, 3)
    # integer column index, on a numeric array
    Xn = np.column_stack([np.arange(16.0), np.unique(tasks, return_inverse=True)[1]])
    _check_partition(list(TaskStratifiedKFold(3, task_col=-1).split(Xn)), tasks, 3)


def test_small_groups_are_spread_with_a_warning():
    """As StratifiedKFold does with a rare class: a group with fewer rows than
    n_splits has each row in a different test fold (and in every other
    training fold), with a warning; the other groups stay balanced."""
    tasks = np.array([0] * 10 + [1] * 2 + [2] * 3)
    with pytest.warns(UserWarning, match="group 1 has only 2 rows"):
        splits = list(TaskStratifiedKFold(4).split(np.zeros((15, 1)),
                                                   groups=tasks))
    tested = np.concatenate([test for _, test in splits])
    np.testing.assert_array_equal(np.sort(tested), np.arange(15))
    for t, n_t in [(1, 2), (2, 3)]:
        folds = [k for k, (_, test) in enumerate(splits) if np.any(tasks[test] == t)]
        assert len(folds) == n_t  # one row per test fold
    per_fold = [np.sum(tasks[test] == 0) for _, test in splits]
    assert max(per_fold) - min(per_fold) <= 1


def test_bad_parameters_and_missing_labels():
    with pytest.raises(ValueError, match="n_splits must be at least 2"):
        TaskStratifiedKFold(1)
    with pytest.raises(ValueError, match="n_splits must be an integer"):
        TaskStratifiedKFold(2.5)
    with pytest.raises(ValueError, match="random_state has no effect"):
        TaskStratifiedKFold(3, random_state=0)
    with pytest.raises(ValueError, match="pass groups=<task labels>"):
        list(TaskStratifiedKFold(3).split(np.zeros((9, 2))))
    with pytest.raises(ValueError, match="one task label per row"):
        list(TaskStratifiedKFold(3).split(np.zeros((9, 2)), groups=np.zeros(8)))
    with pytest.raises(ValueError, match="n_repeats must be a positive integer"):
        RepeatedTaskStratifiedKFold(3, n_repeats=0)


def test_repeated_variant():
    tasks = _labels([9, 14, 6])
    X = np.zeros((len(tasks), 1))
    cv = RepeatedTaskStratifiedKFold(3, n_repeats=4, random_state=0)
    splits = list(cv.split(X, groups=tasks))
    assert len(splits) == cv.get_n_splits() == 12
    for r in range(4):
        _check_partition(splits[3 * r:3 * r + 3], tasks, 3)
    assert splits[0][1].tolist() != splits[3][1].tolist()


def test_usable_by_gridsearchcv_and_cross_val_score():
    rng = np.random.default_rng(0)
    sizes = [12, 30, 8]
    X_list = [rng.standard_normal((n, 4)) for n in sizes]
    y_list = [Xt[:, 0] + 0.1 * rng.standard_normal(len(Xt)) for Xt in X_list]
    X, y = stack_tasks(X_list, y_list)
    model = MultiTaskRegressor(task_col=-1)
    # KFold without shuffling would train without task 2 in the last fold
    search = GridSearchCV(model, {"alpha": [0.01, 0.1]}, error_score="raise",
                          cv=TaskStratifiedKFold(4, task_col=-1)).fit(X, y)
    assert search.n_splits_ == 4
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
    scores = cross_val_score(model.set_params(alpha=0.01), X, y,
                             groups=X[:, -1], cv=TaskStratifiedKFold(4))
    assert scores.shape == (4,) and np.all(scores > 0.9)


def test_rare_groups_spread_evenly_over_the_folds():
    """(task, class) strata of equal tasks, one positive each: the positives
    go round the folds (they all landed in the same fold when each started
    where the task's negatives ended)."""
    groups = np.array([f"{t}, class {c}" for t in range(29)
                       for c in [0] * 19 + [1]])
    positive = np.char.endswith(groups, "class 1")
    with pytest.warns(UserWarning, match="fewer than n_splits"):
        splits = list(TaskStratifiedKFold(5).split(np.zeros((len(groups), 1)),
                                                   groups=groups))
    per_fold = [positive[test].sum() for _, test in splits]
    assert max(per_fold) - min(per_fold) <= 1


def test_task_rows_are_the_masks_rows():
    """``task_rows`` (one sort) gives each task's rows as its mask would,
    ascending, empty tasks and an index past the known tasks included."""
    from mtlinear._design import task_rows
    rng = np.random.default_rng(0)
    task_index = rng.integers(0, 7, size=200)
    task_index[task_index == 3] = 9  # 3 empty; 7-9 past n_tasks=7
    for n_tasks in (None, 7):
        groups = task_rows(task_index, n_tasks)
        assert len(groups) == (10 if n_tasks is None else 7)
        for t, rows in enumerate(groups):
            np.testing.assert_array_equal(rows, np.flatnonzero(task_index == t))
