"""mtlinear.inspection: task relatedness, the cross-validated gain of sharing,
and the clustered relatedness heatmap (mtlinear.plotting)."""
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score
from sklearn.model_selection import GroupKFold, KFold

from mtlinear import MultiTaskClassifier, MultiTaskEstimator, MultiTaskRegressor
from mtlinear.inspection import SharingGain, sharing_gain, task_relatedness
from mtlinear.model_selection import TaskStratifiedKFold
from mtlinear.plotting import cluster_order


# ------------------------------------------------------------------ data
def _shared_weights(n_features, rng):
    """One sparse weight vector for every task: sharing can only help."""
    w = np.zeros(n_features)
    w[:3] = [2.0, -1.5, 1.0]
    return w


def related_stacked(n_tasks=12, n_per_task=12, n_features=20, seed=0):
    """Tasks with the same true weights, few rows each, noise (stacked)."""
    rng = np.random.default_rng(seed)
    w = _shared_weights(n_features, rng)
    X = rng.standard_normal((n_tasks * n_per_task, n_features))
    tasks = np.repeat(np.arange(n_tasks), n_per_task)
    y = X @ w + rng.standard_normal(len(X))
    return np.column_stack([X, tasks]), y


def related_shared(n_samples=24, n_tasks=10, n_features=20, seed=0):
    """The shared layout: one X, a column of y per task, same weights."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, n_features))
    w = _shared_weights(n_features, rng)
    Y = (X @ w)[:, None] + rng.standard_normal((n_samples, n_tasks))
    return X, Y


def unrelated_stacked(n_tasks=4, n_per_task=100, n_features=5, seed=0):
    """Unrelated dense weights and plenty of rows: nothing to share."""
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((n_tasks, n_features))
    X = rng.standard_normal((n_tasks * n_per_task, n_features))
    tasks = np.repeat(np.arange(n_tasks), n_per_task)
    y = np.einsum("ij,ij->i", X, W[tasks]) + 0.5 * rng.standard_normal(len(X))
    return np.column_stack([X, tasks]), y


def related_classification(n_tasks=8, n_per_task=30, n_features=10, seed=0):
    rng = np.random.default_rng(seed)
    w = _shared_weights(n_features, rng)
    X = rng.standard_normal((n_tasks * n_per_task, n_features))
    tasks = np.repeat(np.arange(n_tasks), n_per_task)
    y = (X @ w + 0.5 * rng.standard_normal(len(X)) > 0).astype(int)
    return np.column_stack([X, tasks]), y


# ------------------------------------------------------------------ task_relatedness
def test_coef_correlation_is_pearson_of_the_rows():
    W = np.random.default_rng(0).standard_normal((5, 8))
    W_before = W.copy()
    np.testing.assert_allclose(task_relatedness(W), np.corrcoef(W), atol=1e-12)
    np.testing.assert_array_equal(W, W_before)


def test_coef_of_a_fitted_model():
    X, Y = related_shared()
    model = MultiTaskRegressor(penalty="l2", alpha=0.05).fit(X, Y)
    expected = np.corrcoef(model.coef_)
    for kind in ("auto", "coef"):
        np.testing.assert_allclose(task_relatedness(model, kind=kind), expected,
                                   atol=1e-12)
    # a new array: changing it leaves the model alone
    coef = model.coef_.copy()
    task_relatedness(model)[:] = 0.0
    np.testing.assert_array_equal(model.coef_, coef)


def test_constant_weight_rows_give_no_nan():
    rng = np.random.default_rng(1)
    W = rng.standard_normal((5, 6))
    W[1] = 0.0     # a task switched off by the penalty
    W[3] = 0.7     # constant, non-zero: no direction either
    R = task_relatedness(W)
    assert not np.any(np.isnan(R))
    np.testing.assert_array_equal(np.diag(R), 1.0)
    for t in (1, 3):
        np.testing.assert_array_equal(np.delete(R[t], t), 0.0)
        np.testing.assert_array_equal(np.delete(R[:, t], t), 0.0)
    varying = [0, 2, 4]
    np.testing.assert_allclose(R[np.ix_(varying, varying)],
                               np.corrcoef(W[varying]), atol=1e-12)
    # all-zero model (alpha above alpha_max): the identity
    np.testing.assert_array_equal(task_relatedness(np.zeros((3, 4))), np.eye(3))


def test_learned_covariance_and_graph_attributes():
    X, Y = related_shared(n_tasks=3)
    model = MultiTaskRegressor(penalty="l2", alpha=0.05).fit(X, Y)
    covariance = np.array([[4.0, 1.0, 0.0], [1.0, 1.0, -0.5], [0.0, -0.5, 0.0]])
    model.task_covariance_ = covariance
    expected = np.array([[1.0, 0.5, 0.0], [0.5, 1.0, 0.0], [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(task_relatedness(model, "covariance"), expected)
    correlation = np.array([[1.0, 0.3, -0.2], [0.3, 1.0, 0.1], [-0.2, 0.1, 1.0]])
    model.task_correlation_ = correlation
    result = task_relatedness(model)  # auto: the learned one
    np.testing.assert_array_equal(result, correlation)
    result[0, 1] = 9.0
    assert model.task_correlation_[0, 1] == 0.3  # a copy
    model.task_graph_ = np.eye(3, k=1) + np.eye(3, k=-1)
    np.testing.assert_array_equal(task_relatedness(model, "graph"),
                                  model.task_graph_)


def test_learned_correlation_of_a_relation_model():
    import mtlinear

    relation_model = getattr(mtlinear, "MultiTaskRelationRegressor", None)
    if relation_model is None:
        pytest.skip("no MultiTaskRelationRegressor in this version")
    X, Y = related_shared(n_tasks=3)
    model = relation_model(alpha=0.01, relation_alpha=0.01).fit(X, Y)
    np.testing.assert_allclose(task_relatedness(model),
                               model.task_correlation_)
    np.testing.assert_allclose(task_relatedness(model, "covariance"),
                               model.task_correlation_)
    np.testing.assert_allclose(task_relatedness(model, "coef"),
                               np.corrcoef(model.coef_), atol=1e-12)


def test_task_graph_of_a_fit():
    if "task_graph" not in MultiTaskRegressor().get_params():
        pytest.skip("MultiTaskRegressor has no task_graph parameter")
    X, Y = related_shared(n_tasks=4)
    model = MultiTaskRegressor(penalty="l2", alpha=0.01,
                               task_graph="chain").fit(X, Y)
    np.testing.assert_allclose(task_relatedness(model, "graph"),
                               np.eye(4, k=1) + np.eye(4, k=-1))


def test_task_relatedness_errors():
    X, Y = related_shared(n_tasks=3)
    model = MultiTaskRegressor(penalty="l2", alpha=0.05).fit(X, Y)
    with pytest.raises(ValueError, match="kind must be one of"):
        task_relatedness(model, kind="pearson")
    with pytest.raises(ValueError, match="task_correlation_"):
        task_relatedness(model, kind="covariance")
    with pytest.raises(ValueError, match="task_graph_"):
        task_relatedness(model, kind="graph")
    with pytest.raises(ValueError, match="weight matrix"):
        task_relatedness(model.coef_, kind="graph")
    with pytest.raises(ValueError, match="2-d"):
        task_relatedness(np.ones(4))
    with pytest.raises(ValueError, match="NaN"):
        task_relatedness(np.array([[1.0, np.nan], [0.0, 1.0]]))
    with pytest.raises(NotFittedError):
        task_relatedness(MultiTaskRegressor())
    model.task_correlation_ = np.eye(2)
    with pytest.raises(ValueError, match="shape"):
        task_relatedness(model)


# ------------------------------------------------------------------ sharing_gain
def test_sharing_helps_related_tasks_stacked():
    X, y = related_stacked()
    X_before, y_before = X.copy(), y.copy()
    result = sharing_gain(MultiTaskRegressor(penalty="l21", alpha=0.1,
                                             task_col=-1),
                          X, y, cv=3, random_state=0)
    np.testing.assert_array_equal(X, X_before)
    np.testing.assert_array_equal(y, y_before)
    assert isinstance(result, SharingGain)
    np.testing.assert_array_equal(result.tasks, np.arange(12))
    assert result.joint_scores.shape == (12, 3)
    np.testing.assert_allclose(result.gain, result.joint - result.independent)
    assert result.gain.mean() > 0.1
    assert np.median(result.gain) > 0
    assert np.all(result.gain_se > 0)


def test_sharing_helps_related_tasks_shared():
    X, Y = related_shared()
    estimator = MultiTaskRegressor(penalty="l21", alpha=0.5)
    result = sharing_gain(estimator, X, Y, cv=3, random_state=0)
    np.testing.assert_array_equal(result.tasks, np.arange(10))
    assert result.joint_scores.shape == (10, 3)
    assert result.gain.mean() > 0.05
    # a ridge per task as the reference
    result = sharing_gain(estimator, X, Y, cv=3, random_state=0,
                          independent=Ridge())
    assert result.gain.mean() > 0.05


def test_no_gain_for_unrelated_tasks_with_many_rows():
    X, y = unrelated_stacked()
    result = sharing_gain(MultiTaskRegressor(penalty="l21", alpha=0.01,
                                             task_col=-1),
                          X, y, cv=3, random_state=0)
    assert np.all(np.isfinite(result.gain))
    assert result.gain.mean() < 0.01
    assert np.all(result.joint > 0.5)  # both fits are good ones


@pytest.mark.parametrize("stacked", [True, False])
def test_separable_penalty_gains_nothing(stacked):
    """``"l2"`` decouples the tasks: the joint fit is the per-task fits."""
    if stacked:
        X, y = related_stacked(n_tasks=4)
        estimator = MultiTaskRegressor(penalty="l2", alpha=0.1, task_col=-1,
                                       tol=1e-10)
    else:
        X, y = related_shared(n_tasks=4)
        estimator = MultiTaskRegressor(penalty="l2", alpha=0.1, tol=1e-10)
    result = sharing_gain(estimator, X, y, cv=3, random_state=0)
    np.testing.assert_allclose(result.gain, 0.0, atol=1e-6)
    assert np.all(np.isfinite(result.joint))


@pytest.mark.parametrize("task_weights", [[1.0, 4.0, 0.5, 2.0],
                                          {0: 4.0, 3: 0.25}])
def test_independent_clone_keeps_its_task_weight(task_weights):
    """With ``"l2"`` a task's weight sets its fit (``alpha / omega_t`` in
    effect): the per-task clone needs the task's own weight to match."""
    X, y = related_stacked(n_tasks=4)
    estimator = MultiTaskRegressor(penalty="l2", alpha=0.5, task_col=-1,
                                   task_weights=task_weights, tol=1e-10)
    result = sharing_gain(estimator, X, y, cv=3, random_state=0)
    np.testing.assert_allclose(result.gain, 0.0, atol=1e-6)


def test_gain_and_its_standard_error_from_the_folds():
    X, y = related_stacked(n_tasks=5, n_per_task=12, n_features=8)
    result = sharing_gain(MultiTaskRegressor(alpha=0.1, task_col=-1), X, y,
                          cv=4, random_state=0, n_repeats=2)
    gains = result.joint_scores - result.independent_scores  # (5, 8)
    np.testing.assert_allclose(result.gain, gains.mean(axis=1))
    np.testing.assert_allclose(result.joint, result.joint_scores.mean(axis=1))
    np.testing.assert_allclose(result.gain_se,
                               gains.std(axis=1, ddof=1) / np.sqrt(8))
    assert result.n_scored.tolist() == [8] * 5


def test_stacked_scores_match_a_manual_cross_validation():
    X, y = related_stacked(n_tasks=5, n_per_task=15)
    tasks, features = X[:, -1], X[:, :-1]
    estimator = MultiTaskRegressor(penalty="l21", alpha=0.1, task_col=-1)
    cv = TaskStratifiedKFold(3, shuffle=True, random_state=3)
    result = sharing_gain(estimator, X, y, cv=cv, independent=Ridge(alpha=2.0))
    for k, (train, test) in enumerate(cv.split(X, groups=tasks)):
        joint = MultiTaskRegressor(penalty="l21", alpha=0.1,
                                   task_col=-1).fit(X[train], y[train])
        prediction = joint.predict(X[test])
        for t in range(5):
            rows = test[tasks[test] == t]
            own = train[tasks[train] == t]
            assert result.joint_scores[t, k] == pytest.approx(
                r2_score(y[rows], prediction[tasks[test] == t]))
            ridge = Ridge(alpha=2.0).fit(features[own], y[own])
            assert result.independent_scores[t, k] == pytest.approx(
                r2_score(y[rows], ridge.predict(features[rows])))


def test_shared_scores_match_a_manual_cross_validation():
    X, Y = related_shared(n_samples=30, n_tasks=3)
    Y[[0, 5, 7], 1] = np.nan  # not observed: out of task 1's fits and scores
    cv = KFold(3, shuffle=True, random_state=1)
    estimator = MultiTaskRegressor(penalty="l21", alpha=0.1)
    result = sharing_gain(estimator, X, Y, cv=cv)
    for k, (train, test) in enumerate(cv.split(X)):
        prediction = MultiTaskRegressor(penalty="l21", alpha=0.1).fit(
            X[train], Y[train]).predict(X[test])
        for t in range(3):
            seen = ~np.isnan(Y[test, t])
            assert result.joint_scores[t, k] == pytest.approx(
                r2_score(Y[test, t][seen], prediction[seen, t]))
            own = train[~np.isnan(Y[train, t])]
            alone = MultiTaskRegressor(penalty="l21", alpha=0.1).fit(
                X[own], Y[own, t])
            assert result.independent_scores[t, k] == pytest.approx(
                r2_score(Y[test, t][seen], alone.predict(X[test][seen])))


def test_dataframe_with_string_tasks_and_a_sklearn_independent():
    X, y = related_stacked(n_tasks=4, n_per_task=15, n_features=5)
    frame = pd.DataFrame(X[:, :-1], columns=[f"x{j}" for j in range(5)])
    frame["school"] = np.char.add("s", X[:, -1].astype(int).astype(str))
    estimator = MultiTaskRegressor(alpha=0.05, task_col="school")
    # Ridge would fail on the string column: it must be dropped for it...
    with_ridge = sharing_gain(estimator, frame, y, cv=3, random_state=0,
                              independent=Ridge())
    # ...and kept for the clone of the mtlinear estimator
    with_clone = sharing_gain(estimator, frame, y, cv=3, random_state=0)
    for result in (with_ridge, with_clone):
        assert result.tasks.tolist() == ["s0", "s1", "s2", "s3"]
        assert np.all(np.isfinite(result.gain))
    np.testing.assert_allclose(with_ridge.joint, with_clone.joint)
    frame_out = with_ridge.to_frame()
    assert list(frame_out.columns) == ["joint", "independent", "gain",
                                       "gain_se", "n_scored"]
    assert frame_out.index.tolist() == ["s0", "s1", "s2", "s3"]
    np.testing.assert_allclose(frame_out["gain"], with_ridge.gain)


def test_classifier_stacked_roc_auc():
    X, y = related_classification()
    estimator = MultiTaskClassifier(penalty="l21", alpha=0.02, task_col=-1)
    result = sharing_gain(estimator, X, y, cv=3, random_state=0)
    assert result.scoring == "roc_auc"
    for scores in (result.joint_scores, result.independent_scores):
        assert np.all((scores >= 0) & (scores <= 1))
    assert result.joint.mean() > 0.8
    assert result.gain.mean() > 0


def test_roc_auc_folds_without_both_classes_are_left_out():
    X, y = related_classification(n_tasks=4)
    tasks = X[:, -1]
    y[tasks == 0] = 0
    y[np.flatnonzero(tasks == 0)[:2]] = 1  # two positives: two test folds
    estimator = MultiTaskClassifier(penalty="l21", alpha=0.02, task_col=-1)
    with pytest.warns(UserWarning, match="least populated group 'task 0"):
        result = sharing_gain(estimator, X, y, cv=3, random_state=0)
    assert result.n_scored.tolist() == [2, 3, 3, 3]
    assert np.sum(np.isnan(result.joint_scores[0])) == 1
    assert np.isfinite(result.gain[0])
    scored = np.isfinite(result.joint_scores[0])
    assert result.joint[0] == pytest.approx(result.joint_scores[0, scored].mean())


def test_a_task_never_scored_warns_and_gets_nan():
    X, y = related_stacked(n_tasks=4, n_per_task=15, n_features=5)
    y[X[:, -1] == 2] = 1.5  # a constant target: R^2 undefined

    def r2_or_nan(y_true, y_pred):
        return np.nan if np.ptp(y_true) == 0 else r2_score(y_true, y_pred)

    with pytest.warns(UserWarning, match=r"task\(s\) \[2\] could not be scored"):
        result = sharing_gain(MultiTaskRegressor(alpha=0.05, task_col=-1), X, y,
                              cv=3, random_state=0, scoring=r2_or_nan)
    assert np.isnan(result.gain[2]) and np.isnan(result.gain_se[2])
    assert np.all(np.isfinite(np.delete(result.gain, 2)))
    assert result.scoring == "callable"


@pytest.mark.parametrize("scoring", ["neg_mean_squared_error", "r2"])
def test_named_regression_scores(scoring):
    X, y = related_stacked(n_tasks=3, n_per_task=15, n_features=5)
    result = sharing_gain(MultiTaskRegressor(alpha=0.05, task_col=-1), X, y,
                          cv=3, random_state=0, scoring=scoring)
    assert result.scoring == scoring
    if scoring == "neg_mean_squared_error":
        assert np.all(result.joint_scores < 0)


def test_accuracy_in_the_shared_layout():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 4))
    Y = (X[:, :1] + 0.3 * rng.standard_normal((60, 3)) > 0).astype(int)
    result = sharing_gain(MultiTaskClassifier(alpha=0.01), X, Y, cv=3,
                          random_state=0, scoring="accuracy")
    assert np.all((result.joint_scores >= 0) & (result.joint_scores <= 1))
    assert result.joint.mean() > 0.7


def test_reproducible_with_random_state():
    X, y = related_stacked(n_tasks=4, n_per_task=12, n_features=5)
    estimator = MultiTaskRegressor(alpha=0.05, task_col=-1)
    first = sharing_gain(estimator, X, y, cv=3, random_state=7, n_repeats=2)
    again = sharing_gain(estimator, X, y, cv=3, random_state=7, n_repeats=2)
    other = sharing_gain(estimator, X, y, cv=3, random_state=8, n_repeats=2)
    assert first.joint_scores.shape == (4, 6)  # folds x repeats
    np.testing.assert_array_equal(first.joint_scores, again.joint_scores)
    np.testing.assert_array_equal(first.independent_scores,
                                  again.independent_scores)
    assert not np.allclose(first.joint_scores, other.joint_scores)
    # the two repeats use different shuffles
    assert not np.allclose(first.joint_scores[:, :3], first.joint_scores[:, 3:])


def test_sharing_gain_errors():
    X, y = related_stacked(n_tasks=3, n_per_task=12, n_features=5)
    estimator = MultiTaskRegressor(alpha=0.05, task_col=-1)
    with pytest.raises(ValueError, match="scoring must be"):
        sharing_gain(estimator, X, y, scoring="f1")
    with pytest.raises(ValueError, match="n_repeats"):
        sharing_gain(estimator, X, y, n_repeats=0)
    with pytest.raises(ValueError, match="groups is used only"):
        sharing_gain(estimator, X, y, groups=X[:, -1])
    with pytest.raises(ValueError, match="repeated one"):
        sharing_gain(estimator, X, y, cv=KFold(3), n_repeats=2)
    with pytest.raises(ValueError, match="1-d"):
        sharing_gain(estimator, X, np.column_stack([y, y]))
    with pytest.raises(ValueError, match="rows"):
        sharing_gain(estimator, X, y[:-1])
    with pytest.raises(ValueError, match="trains without any row of task"):
        sharing_gain(estimator, X, y, cv=GroupKFold(3), groups=X[:, -1])
    with pytest.raises(ValueError, match="no default score"):
        sharing_gain(MultiTaskEstimator(task_col=-1), X, y)


def test_to_frame_needs_pandas(monkeypatch):
    X, y = related_stacked(n_tasks=3, n_per_task=12, n_features=5)
    result = sharing_gain(MultiTaskRegressor(alpha=0.05, task_col=-1), X, y,
                          cv=3, random_state=0)
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match="pandas"):
        result.to_frame()


# ------------------------------------------------------------------ cluster_order
def _block_correlation(sizes, within=0.8, between=-0.1):
    blocks = np.repeat(np.arange(len(sizes)), sizes)
    matrix = np.where(blocks[:, None] == blocks[None, :], within, between)
    np.fill_diagonal(matrix, 1.0)
    return matrix, blocks


def _is_contiguous(labels):
    """Every label's entries next to each other."""
    changes = np.count_nonzero(labels[1:] != labels[:-1])
    return changes == np.unique(labels).size - 1


def test_cluster_order_recovers_blocks():
    matrix, blocks = _block_correlation([3, 4, 2, 5])
    rng = np.random.default_rng(0)
    permutation = rng.permutation(len(blocks))
    shuffled = matrix[np.ix_(permutation, permutation)]
    shuffled_blocks = blocks[permutation]
    assert not _is_contiguous(shuffled_blocks)
    noise = 0.02 * rng.standard_normal(shuffled.shape)
    shuffled = shuffled + (noise + noise.T) / 2
    order = cluster_order(shuffled)
    assert sorted(order.tolist()) == list(range(len(blocks)))
    assert _is_contiguous(shuffled_blocks[order])
    # a similarity outside [-1, 1] is rescaled: same order
    np.testing.assert_array_equal(cluster_order(5.0 * shuffled), order)


def test_cluster_order_small_and_invalid():
    np.testing.assert_array_equal(cluster_order(np.ones((1, 1))), [0])
    np.testing.assert_array_equal(cluster_order(np.eye(2)), [0, 1])
    with pytest.raises(ValueError, match="square"):
        cluster_order(np.ones((2, 3)))
    with pytest.raises(ValueError, match="NaN"):
        cluster_order(np.full((3, 3), np.nan))


# ------------------------------------------------------------------ plot
@pytest.fixture
def pyplot():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    yield plt
    plt.close("all")


def test_plot_task_relatedness_clustered(pyplot):
    from mtlinear.plotting import plot_task_relatedness

    matrix, blocks = _block_correlation([2, 3, 2])
    permutation = np.random.default_rng(1).permutation(len(blocks))
    matrix = matrix[np.ix_(permutation, permutation)]
    labels = np.array([f"task {t}" for t in range(len(blocks))])
    ax = plot_task_relatedness(matrix, labels=labels)
    order = cluster_order(matrix)
    image, = ax.get_images()
    np.testing.assert_array_equal(image.get_array(),
                                  matrix[np.ix_(order, order)])
    assert image.get_clim() == (-1.0, 1.0)
    assert [t.get_text() for t in ax.get_xticklabels()] == labels[order].tolist()
    assert [t.get_text() for t in ax.get_yticklabels()] == labels[order].tolist()
    assert len(ax.figure.axes) == 2  # the heatmap and its colorbar


def test_plot_task_relatedness_as_given_and_own_range(pyplot):
    from mtlinear.plotting import plot_task_relatedness

    graph = np.array([[0.0, 2.0, 0.5], [2.0, 0.0, 0.0], [0.5, 0.0, 0.0]])
    fig, ax = pyplot.subplots()
    assert plot_task_relatedness(graph, order=None, ax=ax) is ax
    image, = ax.get_images()
    np.testing.assert_array_equal(image.get_array(), graph)
    assert image.get_clim() == (0.0, 2.0)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1", "2"]
    with pytest.raises(ValueError, match="labels"):
        plot_task_relatedness(graph, labels=["a", "b"], ax=ax)
    with pytest.raises(ValueError, match="order"):
        plot_task_relatedness(graph, order="alphabetical", ax=ax)


def test_plot_of_a_fitted_model(pyplot):
    from mtlinear.plotting import plot_task_relatedness

    X, y = related_stacked(n_tasks=5, n_per_task=12, n_features=6)
    model = MultiTaskRegressor(penalty="l2", alpha=0.05, task_col=-1).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no NaN, no RuntimeWarning
        ax = plot_task_relatedness(task_relatedness(model), labels=model.tasks_)
    assert len(ax.get_xticklabels()) == 5


def test_sharing_gain_of_the_learned_relation_models():
    """The task-relation models compare with themselves on one task (a
    clustered model with one cluster, no task graph)."""
    from mtlinear import ClusteredMultiTaskRegressor

    rng = np.random.default_rng(21)
    X = rng.standard_normal((90, 4))
    Y = X @ rng.standard_normal((4, 3)) + rng.standard_normal((90, 3))
    result = sharing_gain(ClusteredMultiTaskRegressor(n_clusters=2), X, Y,
                          cv=3, random_state=0)
    assert np.all(np.isfinite(result.gain))
