"""MultiTaskClassifier inside scikit-learn's tools: scorers, cross_val_predict,
CalibratedClassifierCV, GridSearchCV, Pipeline, pickle.

Each result is compared with the metric computed directly from the model's
own outputs (or a manual fold loop), not with a stored number.
"""
import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.metrics import get_scorer, log_loss, roc_auc_score
from sklearn.model_selection import (GridSearchCV, KFold, StratifiedKFold,
                                     cross_val_predict)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from mtlinear import MultiTaskClassifier, stack_tasks


def _data(n=90, d=6, T=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    Y = (X[:, :2] @ (3 * rng.standard_normal((2, T))) + rng.logistic(size=(n, T)) > 0)
    return X, Y.astype(int)


def test_roc_auc_scorer_on_multi_output_is_mean_per_task_auc():
    X, Y = _data()
    model = MultiTaskClassifier(alpha=0.01).fit(X, Y)
    P = model.predict_proba(X)
    expected = np.mean([roc_auc_score(Y[:, t], P[t][:, 1]) for t in range(3)])
    assert get_scorer("roc_auc")(model, X, Y) == pytest.approx(expected)
    assert get_scorer("accuracy")(model, X, Y) == pytest.approx(
        np.mean(np.all(model.predict(X) == Y, axis=1)))  # subset accuracy


@pytest.mark.parametrize("layout", ["one task", "stacked"])
def test_binary_scorers(layout):
    X, Y = _data()
    if layout == "one task":
        Xf, y, model = X, Y[:, 0], MultiTaskClassifier(alpha=0.01)
    else:
        Xf, y = stack_tasks([X[:45], X[45:]], [Y[:45, 0], Y[45:, 1]])
        model = MultiTaskClassifier(alpha=0.01, task_col=-1)
    model.fit(Xf, y)
    p = model.predict_proba(Xf)[:, 1]
    assert get_scorer("neg_log_loss")(model, Xf, y) == pytest.approx(-log_loss(y, p))
    assert get_scorer("roc_auc")(model, Xf, y) == pytest.approx(roc_auc_score(y, p))


def test_cross_val_predict_proba_multi_output_matches_a_fold_loop():
    X, Y = _data()
    labels = np.where(Y == 1, "pos", "neg")
    cv = KFold(3, shuffle=True, random_state=0)
    model = MultiTaskClassifier(penalty="trace", alpha=0.02)
    P = cross_val_predict(model, X, labels, cv=cv, method="predict_proba")
    assert isinstance(P, list) and len(P) == 3
    for train, test in cv.split(X):
        fold = clone(model).fit(X[train], labels[train]).predict_proba(X[test])
        for t in range(3):
            np.testing.assert_allclose(P[t][test], fold[t])


def test_calibrated_classifier_cv():
    X, Y = _data(n=120)
    for Xf, y, model in [
            (X, Y[:, 0], MultiTaskClassifier(alpha=0.01)),
            (*stack_tasks([X[:60], X[60:]], [Y[:60, 0], Y[60:, 0]]),
             MultiTaskClassifier(alpha=0.01, task_col=-1))]:
        cv = StratifiedKFold(3, shuffle=True, random_state=0)
        calibrated = CalibratedClassifierCV(model, cv=cv).fit(Xf, y)
        P = calibrated.predict_proba(Xf)
        assert P.shape == (len(y), 2)
        np.testing.assert_allclose(P.sum(axis=1), 1.0)
        assert roc_auc_score(y, P[:, 1]) > 0.8


def test_grid_search_over_penalty_in_a_pipeline_stacked_layout():
    X, Y = _data(n=120)
    Xs, y = stack_tasks([X[:40], X[40:80], X[80:]],
                        [Y[:40, 0], Y[40:80, 1], Y[80:, 2]])
    pipe = Pipeline([
        ("scale", ColumnTransformer([("f", StandardScaler(), slice(0, -1))],
                                    remainder="passthrough")),
        ("clf", MultiTaskClassifier(task_col=-1))])
    search = GridSearchCV(pipe, {"clf__penalty": ["l1", "l21", "trace"],
                                 "clf__alpha": [0.003, 0.03]},
                          scoring="roc_auc",
                          cv=StratifiedKFold(3, shuffle=True, random_state=0))
    search.fit(Xs, y)
    best = search.best_estimator_
    assert best.predict_proba(Xs).shape == (len(y), 2)
    assert search.score(Xs, y) == pytest.approx(
        roc_auc_score(y, best.predict_proba(Xs)[:, 1]))


def test_pickle_round_trip():
    X, Y = _data()
    model = MultiTaskClassifier(penalty="l21", alpha=0.01,
                                class_weight="balanced").fit(X, Y)
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(again.predict(X), model.predict(X))
    np.testing.assert_allclose(again.decision_function(X),
                               model.decision_function(X))


def test_text_pipeline_with_a_string_task_column():
    """Text features and a string domain column, as a user builds them: the
    ColumnTransformer's output (an object array: tf-idf values, the domain
    last) fits the stacked layout and predicts per domain."""
    import pandas as pd
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_pipeline

    rng = np.random.default_rng(0)
    words = np.array(["good", "bad", "great", "awful", "fine", "poor"])
    docs = [" ".join(rng.choice(words, 6)) for _ in range(120)]
    positive = {"good", "great", "fine"}
    y = np.array([sum(w in positive for w in d.split()) >= 3 for d in docs])
    frame = pd.DataFrame({"text": docs,
                          "domain": rng.choice(["books", "dvd"], 120)})
    columns = ColumnTransformer([("words", TfidfVectorizer(), "text"),
                                 ("domain", "passthrough", ["domain"])])
    pipe = make_pipeline(columns, MultiTaskClassifier(task_col=-1, alpha=1e-3))
    pipe.fit(frame, y)
    assert pipe[-1].tasks_.tolist() == ["books", "dvd"]
    assert pipe.score(frame, y) > 0.9
