"""Prediction for tasks not seen in fit (``unseen_task``)."""
import numpy as np
import pytest
from sklearn.model_selection import GroupKFold, cross_val_score

from mtlinear import MultiTaskClassifier, MultiTaskRegressor


def _tasks(T=6, n=30, d=3, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(T) * 10, n)
    X = rng.standard_normal((T * n, d))
    W = np.array([1.0, -2.0, 0.5])[:, None] + 0.2 * rng.standard_normal((d, T))
    y = np.einsum("ij,ij->i", X, W.T[labels // 10]) + 0.1 * rng.standard_normal(T * n)
    return np.column_stack([X, labels]), y, labels


def test_mean_model_predicts_new_tasks():
    Xt, y, labels = _tasks()
    model = MultiTaskRegressor(penalty="l2", alpha=0.01, task_col=-1,
                               task_graph="mean", graph_alpha=0.1,
                               unseen_task="mean").fit(Xt, y)
    X_new = np.column_stack([Xt[:5, :-1], np.full(5, 999)])
    expected = Xt[:5, :-1] @ model.coef_.mean(axis=0) + model.intercept_.mean()
    np.testing.assert_allclose(model.predict(X_new), expected, rtol=1e-12)
    # seen tasks keep their own models, in the same call
    mixed = np.vstack([Xt[:3], X_new[:2]])
    np.testing.assert_allclose(model.predict(mixed)[:3], model.predict(Xt[:3]))


def test_unseen_tasks_are_an_error_by_default():
    Xt, y, _ = _tasks()
    model = MultiTaskRegressor(alpha=0.01, task_col=-1).fit(Xt, y)
    X_new = np.column_stack([Xt[:5, :-1], np.full(5, 999)])
    with pytest.raises(ValueError, match="unseen_task='mean'"):
        model.predict(X_new)


def test_whole_tasks_held_out_give_finite_scores():
    Xt, y, labels = _tasks(seed=1)
    model = MultiTaskRegressor(penalty="l2", alpha=0.01, task_col=-1,
                               task_graph="mean", graph_alpha=1.0,
                               unseen_task="mean")
    scores = cross_val_score(model, Xt, y, groups=labels, cv=GroupKFold(3))
    assert np.all(np.isfinite(scores)) and scores.mean() > 0.8


def test_classifier_new_task():
    Xt, y, _ = _tasks(seed=2)
    yc = (y > 0).astype(int)
    model = MultiTaskClassifier(alpha=0.01, task_col=-1,
                                unseen_task="mean").fit(Xt, yc)
    X_new = np.column_stack([Xt[:40, :-1], np.full(40, -1)])
    z = Xt[:40, :-1] @ model.coef_.mean(axis=0) + model.intercept_.mean()
    np.testing.assert_allclose(model.decision_function(X_new), z, rtol=1e-12)
    assert model.predict_proba(X_new).shape == (40, 2)
    assert np.mean(model.predict(X_new) == yc[:40]) > 0.8
