"""Per-task scores (mtlinear.metrics) against the metrics computed task by
task from scratch."""
import numpy as np
import pytest
from sklearn.metrics import accuracy_score, log_loss, r2_score, roc_auc_score
from sklearn.model_selection import GridSearchCV, KFold

from mtlinear import (MultiTaskClassifier, MultiTaskClassifierCV,
                      MultiTaskRegressor)
from mtlinear.metrics import task_scorer, task_scores


def _shared(seed=0, n=150, T=3):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 5))
    Z = X @ rng.standard_normal((5, T)) + rng.standard_normal((n, T))
    return X, (Z > 0).astype(int), Z


def test_shared_classification_scores_are_per_task():
    X, Y, _ = _shared()
    model = MultiTaskClassifier(alpha=0.01).fit(X, Y)
    P, D = model.predict(X), model.decision_function(X)
    proba = model.predict_proba(X)
    for name, metric in [
            ("accuracy", lambda t: accuracy_score(Y[:, t], P[:, t])),
            ("roc_auc", lambda t: roc_auc_score(Y[:, t], D[:, t])),
            ("neg_log_loss", lambda t: -log_loss(Y[:, t], proba[t]))]:
        scores = task_scores(model, X, Y, name)
        np.testing.assert_allclose(list(scores.values()),
                                   [metric(t) for t in range(3)], rtol=1e-12)
        assert task_scorer(name)(model, X, Y) == pytest.approx(
            np.mean([metric(t) for t in range(3)]))
    # scikit-learn's own accuracy is the subset accuracy: far lower
    assert task_scorer("accuracy")(model, X, Y) == pytest.approx(model.score(X, Y))
    assert accuracy_score(Y, P) < task_scorer("accuracy")(model, X, Y) - 0.1


def test_stacked_scores_rank_each_task_alone():
    X, Y, Z = _shared(seed=1)
    labels = np.repeat(["a", "b", "c"], 50)
    Xs = np.column_stack([X, np.zeros(150)]).astype(object)
    Xs[:, -1] = labels
    y = Y[np.arange(150), np.repeat([0, 1, 2], 50)]
    model = MultiTaskClassifier(alpha=0.01, task_col=-1).fit(Xs, y)
    d = model.decision_function(Xs)
    expected = {k: roc_auc_score(y[labels == k], d[labels == k]) for k in "abc"}
    assert task_scores(model, Xs, y, "roc_auc") == pytest.approx(expected)


def test_regression_and_undefined_scores():
    X, _, Z = _shared(seed=2)
    model = MultiTaskRegressor(alpha=0.01).fit(X, Z)
    P = model.predict(X)
    assert task_scorer("r2")(model, X, Z) == pytest.approx(
        np.mean([r2_score(Z[:, t], P[:, t]) for t in range(3)]))
    X, Y, _ = _shared(seed=3)
    model = MultiTaskClassifier(alpha=0.01).fit(X, Y)
    Y_test = Y[:20].copy()
    Y_test[:, 0] = 1  # one class: AUC undefined for task 0
    with pytest.warns(UserWarning, match="undefined"):
        scores = task_scores(model, X[:20], Y_test, "roc_auc")
    assert np.isnan(scores[0]) and np.isfinite(scores[1])


def test_cv_estimator_and_gridsearch_agree_with_named_scoring():
    X, Y, _ = _shared(seed=4, n=120)
    cv = KFold(3, shuffle=True, random_state=0)
    ours = MultiTaskClassifierCV(alphas=5, cv=cv, scoring="roc_auc").fit(X, Y)
    search = GridSearchCV(MultiTaskClassifier(), {"alpha": ours.alphas_}, cv=cv,
                          scoring=task_scorer("roc_auc")).fit(X, Y)
    np.testing.assert_allclose(ours.score_path_.mean(axis=-1),
                               search.cv_results_["mean_test_score"], rtol=1e-4)


def test_metric_warnings_pass_through_and_model_errors_raise():
    # scikit-learn scores a task that predicts no positive 0 for precision
    # (with its warning); the task is not dropped from the mean as undefined
    pd = pytest.importorskip("pandas")
    from sklearn.metrics import precision_score
    rng = np.random.default_rng(26)
    X = rng.standard_normal((120, 3))
    Y = np.column_stack([X[:, 0] > 0, X[:, 1] > 2.5]).astype(int)
    model = MultiTaskClassifier(alpha=0.05).fit(X, Y)
    pred = model.predict(X)
    assert pred[:, 1].sum() == 0
    expected = [precision_score(Y[:, t], pred[:, t], zero_division=0.0)
                for t in range(2)]
    with pytest.warns(UserWarning, match="ill-defined"):
        scores = task_scores(model, X, Y, "precision")
    assert list(scores.values()) == pytest.approx(expected)
    # a fit on a DataFrame scored on an array: scikit-learn's feature-name
    # warning is no reason to call the scores undefined
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    model = MultiTaskClassifier(alpha=0.05).fit(frame, Y)
    with pytest.warns(UserWarning, match="feature names"):
        scores = task_scores(model, X, Y, "accuracy")
    assert list(scores.values()) == pytest.approx(
        [accuracy_score(Y[:, t], model.predict(frame)[:, t]) for t in range(2)])
    with pytest.raises(ValueError, match="features"):
        task_scores(model, X[:, :2], Y, "accuracy")


def test_unseen_tasks_are_scored_by_their_own_label():
    rng = np.random.default_rng(27)
    X = rng.standard_normal((200, 3))
    labels = np.repeat([1, 2, 7, 8], 50)
    y = X @ np.ones(3) + labels + 0.1 * rng.standard_normal(200)
    A = np.column_stack([X, labels])
    seen = labels < 5
    model = MultiTaskRegressor(alpha=0.01, task_col=-1, unseen_task="mean")
    model.fit(A[seen], y[seen])
    scores = task_scores(model, A, y, "r2")
    pred = model.predict(A)
    assert list(scores) == [1, 2, 7, 8]
    for label in (1, 2, 7, 8):
        rows = labels == label
        assert scores[label] == pytest.approx(r2_score(y[rows], pred[rows]))


def test_a_classification_metric_of_a_regressor_says_so():
    from mtlinear import MultiTaskRegressor, MultiTaskRegressorCV
    rng = np.random.default_rng(3)
    X = rng.standard_normal((60, 5))
    Y = X @ rng.standard_normal((5, 3))
    model = MultiTaskRegressor(alpha=0.01).fit(X, Y)
    message = r"MultiTaskRegressor.decision_function.*classification metric"
    with pytest.raises(AttributeError, match=message):
        task_scores(model, X, Y, "roc_auc")
    with pytest.raises(AttributeError, match=message):
        MultiTaskRegressorCV(scoring="roc_auc").fit(X, Y)
