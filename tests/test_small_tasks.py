"""Tiny, imbalanced classification tasks (as Landmine's): a task whose
training rows hold a single class, rare classes in the folds, ridge grids."""
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

from mtlinear import (MultiTaskClassifier, MultiTaskClassifierCV,
                      MultiTaskRegressor, MultiTaskRegressorCV)


def _tasks(seed=0, sizes=(40, 30, 25, 35), d=4, positive_rate=0.3):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(sizes)), sizes)
    X = rng.standard_normal((len(labels), d))
    W = rng.standard_normal((len(sizes), d)) + 1.0
    margin = np.einsum("ij,ij->i", X, W[labels]) + rng.logistic(size=len(labels))
    y = (margin > np.quantile(margin, 1 - positive_rate)).astype(int)
    return X, y, labels


@pytest.mark.parametrize("penalty", ["l2", "l21", "l1", "trace"])
@pytest.mark.parametrize("fmt", [np.asarray, sp.csr_matrix])
def test_a_single_class_task_predicts_its_smoothed_base_rate(penalty, fmt):
    X, y, labels = _tasks()
    y[labels == 2] = 0  # task 2: negatives only (25 rows)
    Xs = fmt(np.column_stack([X, labels]))
    with pytest.warns(UserWarning, match=r"task\(s\) \[2\] have training "
                                         "samples of a single class"):
        model = MultiTaskClassifier(penalty=penalty, alpha=0.05, task_col=-1,
                                    tol=1e-10, max_iter=100_000).fit(Xs, y)
    assert np.all(np.isfinite(model.coef_)) and np.all(np.isfinite(model.intercept_))
    # half a pseudo-sample of the missing class: P(positive) = 0.5 / 25.5
    np.testing.assert_allclose(model.coef_[2], 0.0, atol=1e-6)
    rows = labels == 2
    proba = model.predict_proba(fmt(np.column_stack([X[rows], labels[rows]])))
    np.testing.assert_allclose(proba[:, 1], 0.5 / 25.5, rtol=1e-5)
    # the other tasks are those of a fit without task 2
    keep = ~rows
    alone = MultiTaskClassifier(penalty=penalty, alpha=0.05, task_col=-1,
                                tol=1e-10, max_iter=100_000).fit(
        fmt(np.column_stack([X[keep], labels[keep]])), y[keep])
    if penalty in ("l1", "l2"):  # separable: exactly the same models
        np.testing.assert_allclose(model.coef_[[0, 1, 3]], alone.coef_,
                                   rtol=1e-4, atol=1e-5)


def test_single_class_task_with_balanced_class_weight():
    X, y, labels = _tasks(seed=1)
    y[labels == 0] = 1
    with pytest.warns(UserWarning, match="single class"):
        model = MultiTaskClassifier(alpha=0.05, task_col=-1,
                                    class_weight="balanced").fit(
            np.column_stack([X, labels]), y)
    assert np.all(np.isfinite(model.intercept_))
    assert model.predict_proba(np.column_stack([X[:3], [0, 0, 0]]))[:, 1].min() > 0.9


def test_cv_runs_on_tiny_imbalanced_tasks_with_defaults():
    """30 rows per task, about 2 positives: every default works (the folds
    spread the rare class and warn; a fold whose task lost its positives
    fits it with the smoothed base rate)."""
    X, y, labels = _tasks(seed=2, sizes=(30,) * 6, positive_rate=0.07)
    Xs = np.column_stack([X, labels])
    for penalty in ("l21", "l2", ["l2", "l21"]):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            model = MultiTaskClassifierCV(penalty=penalty, task_col=-1).fit(Xs, y)
        assert np.isfinite(model.alpha_)
        assert np.all(np.isfinite(model.decision_function(Xs)))


def test_ridge_grid_is_automatic_and_per_penalty():
    """A ridge has no alpha_max: its automatic grid starts where the ridge
    term shrinks the unpenalized fit at least elevenfold, and a list of
    penalties gets one grid each."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((120, 8)) * np.logspace(0, 1, 8)
    Y = X @ rng.standard_normal((8, 3)) + rng.standard_normal((120, 3))
    cv = MultiTaskRegressorCV(penalty=["l2", "l21"], alphas=20, cv=3).fit(X, Y)
    ridge_grid, l21_grid = cv.alphas_
    assert not np.allclose(ridge_grid, l21_grid)
    assert ridge_grid[0] / ridge_grid[-1] == pytest.approx(1e6)
    top = MultiTaskRegressor(penalty="l2", alpha=ridge_grid[0]).fit(X, Y)
    ols = MultiTaskRegressor(penalty="l2", alpha=0.0).fit(X, Y)
    assert np.linalg.norm(top.coef_) <= np.linalg.norm(ols.coef_) / 11


def test_default_alpha_is_logistic_regressions_default():
    """alpha=None is 1 / n on tasks of n samples: C = 1 per task, so "l2"
    equals scikit-learn's LogisticRegression() task by task."""
    from sklearn.linear_model import LogisticRegression
    X, y, labels = _tasks(seed=4, sizes=(50, 50, 50))
    model = MultiTaskClassifier(penalty="l2", task_col=-1, tol=1e-10).fit(
        np.column_stack([X, labels]), y)
    for t in range(3):
        rows = labels == t
        ref = LogisticRegression(tol=1e-10, max_iter=10_000).fit(X[rows], y[rows])
        np.testing.assert_allclose(model.coef_[t], ref.coef_[0], rtol=1e-5,
                                   atol=1e-6)
        np.testing.assert_allclose(model.intercept_[t], ref.intercept_[0],
                                   rtol=1e-5, atol=1e-6)


def test_an_all_zero_classifier_warns():
    X, y, labels = _tasks(seed=5)
    with pytest.warns(UserWarning, match="every coefficient is zero"):
        MultiTaskClassifier(alpha=100.0, task_col=-1).fit(
            np.column_stack([X, labels]), y)


def test_cv_reports_the_scorers_warnings_once_per_category():
    """Held-out rows of a rare class: roc_auc is undefined for some tasks in
    some folds.  Each category of the scorer's warnings is said once, with a
    count, instead of once per task, fold and alpha (177 warnings here)."""
    from sklearn.exceptions import UndefinedMetricWarning
    X, y, labels = _tasks(positive_rate=0.06)
    Xs = np.column_stack([X, labels])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = MultiTaskClassifierCV(penalty="l21", task_col=-1, alphas=10,
                                      scoring="roc_auc").fit(Xs, y)
    scoring = [w for w in caught if "of the scorer" in str(w.message)]
    assert {w.category for w in scoring} == {UndefinedMetricWarning, UserWarning}
    assert len(scoring) == 2
    assert all("held-out scores" in str(w.message) for w in scoring)
    assert np.isfinite(model.best_score_)
