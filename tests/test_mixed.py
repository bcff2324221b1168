"""MultiTaskEstimator: regression and classification tasks in one model.

Where the penalty decouples the tasks (l1, l2) the model equals the separate
MultiTaskRegressor / MultiTaskClassifier fits (themselves tested against
scikit-learn); for l21 and the trace norm the optimality (KKT) conditions
are recomputed in numpy from the objective (tests/_cvxpy_reference.py).
"""
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import GridSearchCV

from _cvxpy_reference import kkt_violation
from mtlinear import MultiTaskClassifier, MultiTaskEstimator, MultiTaskRegressor

pd = pytest.importorskip("pandas")

LOSSES = ["squared", "logistic", "huber", "logistic"]


def _data(n=160, d=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    W = rng.standard_normal((d, 4))
    Z = X @ W
    Y = np.column_stack([Z[:, 0] + rng.standard_normal(n),
                         Z[:, 1] + rng.logistic(size=n) > 0,
                         Z[:, 2] + rng.standard_t(2, size=n),
                         Z[:, 3] + rng.logistic(size=n) > 0]).astype(object)
    Y[:, 1] = np.where(Y[:, 1].astype(bool), "yes", "no")
    Y[:, 3] = Y[:, 3].astype(bool).astype(int)
    return X, pd.DataFrame(Y, columns=["rating", "liked", "price", "bought"])


def _separate(penalty, X, Y, **kw):
    """coef_, intercept_ of each task fitted alone by its own estimator."""
    coefs, intercepts = [], []
    for name, loss in zip(Y.columns, LOSSES):
        if loss == "logistic":
            model = MultiTaskClassifier(penalty=penalty, **kw)
            y = Y[name].to_numpy()
        else:
            model = MultiTaskRegressor(penalty=penalty, loss=loss, **kw)
            y = Y[name].to_numpy(dtype=float)
        model.fit(X, y)
        coefs.append(model.coef_[0])
        intercepts.append(model.intercept_[0])
    return np.array(coefs), np.array(intercepts)


@pytest.mark.parametrize("penalty", ["l1", "l2"])
@pytest.mark.parametrize("fmt", [np.asarray, sp.csr_matrix])
def test_separable_penalties_equal_the_separate_fits(penalty, fmt):
    X, Y = _data()
    kw = dict(alpha=0.02, tol=1e-12, max_iter=100_000)
    model = MultiTaskEstimator(loss=dict(zip(Y.columns, LOSSES)),
                               penalty=penalty, **kw).fit(fmt(X), Y)
    coef, intercept = _separate(penalty, fmt(X), Y, **kw)
    np.testing.assert_allclose(model.coef_, coef, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(model.intercept_, intercept, rtol=1e-4, atol=1e-5)
    assert model.losses_ == LOSSES
    assert model.classes_[1].tolist() == ["no", "yes"] and model.classes_[0] is None


def _reference_tasks(X, Y):
    """Per task ``(X, y, s)`` with ``y`` in {-1, +1} for classification."""
    tasks = []
    for name, loss in zip(Y.columns, LOSSES):
        y = Y[name].to_numpy()
        if loss == "logistic":
            y = np.where(y == np.unique(y)[1], 1.0, -1.0)
        tasks.append((X, y.astype(float), np.ones(len(X))))
    return tasks


@pytest.mark.parametrize("penalty", ["l21", "trace"])
def test_coupled_penalties_are_optimal(penalty):
    X, Y = _data(seed=1)
    omega = np.array([1.0, 2.0, 0.5, 1.0])
    model = MultiTaskEstimator(loss=LOSSES, penalty=penalty, alpha=0.03,
                               task_weights=omega, tol=1e-12,
                               max_iter=100_000).fit(X, Y)
    violation = kkt_violation(_reference_tasks(X, Y), model.coef_.T,
                              model.intercept_ - 0.0, loss=LOSSES,
                              penalty=penalty, alpha=0.03, task_weights=omega)
    assert violation < 1e-6
    assert np.count_nonzero(np.linalg.norm(model.coef_, axis=0)) > 0


def test_stacked_layout_with_a_loss_per_task_label():
    X, Y = _data(seed=2)
    rng = np.random.default_rng(2)
    task = rng.choice(["a", "b"], len(X))
    y = np.where(task == "a", Y["rating"].to_numpy(dtype=float),
                 Y["bought"].to_numpy(dtype=float))
    Xs = np.column_stack([X, task]).astype(object)
    model = MultiTaskEstimator(loss={"a": "squared", "b": "logistic"},
                               penalty="l1", alpha=0.02, task_col=-1,
                               tol=1e-12).fit(Xs, y)
    reg = MultiTaskRegressor(penalty="l1", alpha=0.02, tol=1e-12).fit(
        X[task == "a"], y[task == "a"])
    clf = MultiTaskClassifier(penalty="l1", alpha=0.02, tol=1e-12).fit(
        X[task == "b"], y[task == "b"])
    np.testing.assert_allclose(model.coef_, np.vstack([reg.coef_, clf.coef_]),
                               rtol=1e-4, atol=1e-6)
    pred = model.predict(Xs)
    np.testing.assert_allclose(pred[task == "a"].astype(float),
                               reg.predict(X[task == "a"]), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(pred[task == "b"], clf.predict(X[task == "b"]))
    assert set(model.predict_proba(Xs)) == {"b"}


def test_predictions_scores_and_grid_search():
    X, Y = _data(seed=3)
    model = MultiTaskEstimator(loss=dict(zip(Y.columns, LOSSES)), alpha=0.01)
    model.fit(X, Y)
    P = model.predict(X)
    assert list(P.columns) == list(Y.columns)
    # the regression columns numeric, as a DataFrame user selects them
    assert list(P.select_dtypes("number").columns)[:2] == ["rating", "price"]
    expected = np.mean([r2_score(Y["rating"].astype(float), P["rating"].astype(float)),
                        accuracy_score(Y["liked"], P["liked"]),
                        r2_score(Y["price"].astype(float), P["price"].astype(float)),
                        accuracy_score(Y["bought"].astype(int), P["bought"].astype(int))])
    assert model.score(X, Y) == pytest.approx(expected)
    proba = model.predict_proba(X)
    assert set(proba) == {"liked", "bought"}
    np.testing.assert_allclose(proba["liked"].sum(axis=1), 1.0)
    search = GridSearchCV(clone(model), {"alpha": [0.01, 0.1]}, cv=3).fit(X, Y)
    assert search.best_params_["alpha"] in (0.01, 0.1)


def test_bad_losses_are_clear_errors():
    X, Y = _data()
    with pytest.raises(ValueError, match="tasks without a loss"):
        MultiTaskEstimator(loss={"rating": "squared"}).fit(X, Y)
    with pytest.raises(ValueError, match="loss has 2 entries but there are 4"):
        MultiTaskEstimator(loss=["squared", "logistic"]).fit(X, Y)
    with pytest.raises(ValueError, match="loss must be one of"):
        MultiTaskEstimator(loss=["squared", "hinge", "squared", "logistic"]).fit(X, Y)
    with pytest.raises(ValueError, match="non-numeric targets"):
        MultiTaskEstimator(loss="squared").fit(X, Y)


def test_task_weights_keyed_by_target_names():
    X, Y = _data(seed=5)
    names = list(Y.columns)
    by_name = MultiTaskEstimator(loss=LOSSES, alpha=0.03, task_weights={
        names[0]: 2.0, names[2]: 0.5}).fit(X, Y)
    by_index = MultiTaskEstimator(loss=LOSSES, alpha=0.03,
                                  task_weights={0: 2.0, 2: 0.5}).fit(X, Y)
    np.testing.assert_allclose(by_name.coef_, by_index.coef_, atol=1e-12)
    with pytest.raises(ValueError, match="not among the tasks"):
        MultiTaskEstimator(loss=LOSSES, task_weights={"nope": 1.0}).fit(X, Y)


def test_score_on_rows_of_some_tasks_only():
    # a held-out fold may lack a task: the mean is over the tasks it has
    rng = np.random.default_rng(21)
    X = rng.standard_normal((100, 5))
    labels = np.repeat([0, 1, 2], [30, 30, 40])
    y = np.where(labels == 1, (X[:, 0] > 0).astype(float), X[:, 1] + labels)
    Xs = np.column_stack([X, labels])
    model = MultiTaskEstimator(["squared", "logistic", "squared"], "l21", 0.01,
                               task_col=-1).fit(Xs, y)
    rows = labels < 2
    pred = model.predict(Xs[rows])
    expected = np.mean([r2_score(y[rows][:30], pred[:30]),
                        accuracy_score(y[rows][30:], pred[30:])])
    assert model.score(Xs[rows], y[rows]) == pytest.approx(expected, rel=1e-12)


def test_a_logistic_task_of_one_class_gets_half_a_sample_of_the_other():
    # as MultiTaskClassifier: the same fit as with that pseudo-sample given
    rng = np.random.default_rng(23)
    X = rng.standard_normal((90, 4))
    labels = np.repeat([0, 1, 2], 30)
    y = np.where(labels == 0, X[:, 0] + 0.1 * rng.standard_normal(90),
                 (X[:, 1] > 0).astype(float))
    y[labels == 2] = 1.0
    Xs = np.column_stack([X, labels])
    losses = ["squared", "logistic", "logistic"]
    model = MultiTaskEstimator(losses, "l21", 0.01, task_col=-1, tol=1e-10)
    with pytest.warns(UserWarning, match=r"task\(s\) \[2\] have training "
                      "samples of a single class"):
        model.fit(Xs, y)
    assert [list(c) for c in model.classes_[1:]] == [[0.0, 1.0]] * 2
    pseudo = np.append(X[labels == 2].mean(axis=0), 2)
    weights = np.append(np.ones(90), 0.5)
    explicit = MultiTaskEstimator(losses, "l21", 0.01, task_col=-1, tol=1e-10)
    explicit.fit(np.vstack([Xs, pseudo]), np.append(y, 0.0),
                 sample_weight=weights)
    np.testing.assert_allclose(model.coef_, explicit.coef_, atol=1e-8)
    np.testing.assert_allclose(model.intercept_, explicit.intercept_, atol=1e-8)
    # the shared layout: fitted as its stacked rows
    Y = np.column_stack([X[:, 0], (X[:, 1] > 0).astype(float), np.ones(90)])
    with pytest.warns(UserWarning, match="single class"):
        shared = MultiTaskEstimator(losses, "l21", 0.01, tol=1e-10).fit(X, Y)
    stacked = MultiTaskEstimator(losses, "l21", 0.01, task_col=-1, tol=1e-10)
    with pytest.warns(UserWarning, match="single class"):
        stacked.fit(np.column_stack([np.tile(X, (3, 1)), np.repeat([0, 1, 2], 90)]),
                    Y.T.ravel())
    np.testing.assert_allclose(shared.coef_, stacked.coef_, atol=1e-8)
    with pytest.raises(ValueError, match="two labels in all; they have 3"):
        MultiTaskEstimator(losses, "l21", 0.01).fit(
            X, np.column_stack([Y[:, :2], np.full(90, 5.0)]))
