"""Missing targets: NaN in the shared layout's y means "not observed"; the
fit equals the stacked layout holding the observed entries only."""
import numpy as np
import pytest
from sklearn.metrics import r2_score

from mtlinear import (MultiTaskClassifier, MultiTaskRegressor,
                      MultiTaskRegressorCV)


def _problem(n=120, d=6, T=4, missing=0.3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) + 2.0
    Y = X @ rng.standard_normal((d, T)) + rng.standard_normal((n, T))
    Y[rng.random((n, T)) < missing] = np.nan
    return X, Y, rng


def _observed_stacked(X, Y, s=None):
    """The observed entries as stacked rows: (X with task column, y, s)."""
    task_of, row_of = np.nonzero(~np.isnan(Y).T)
    Xs = np.column_stack([X[row_of], task_of])
    return Xs, Y[row_of, task_of], None if s is None else s[row_of]


@pytest.mark.parametrize("kw", [
    dict(penalty="l21", alpha=0.05), dict(penalty="l1", alpha=0.02),
    dict(penalty="trace", alpha=0.1), dict(penalty="l2", alpha=0.1),
    dict(penalty="l2", alpha=0.0),
    dict(penalty="l1", alpha=0.02, penalty_factor=[0, 1, 1, 1, 1, 2])])
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("shape", [(120, 6), (15, 40)])  # statistics / stacked
def test_masked_fit_equals_the_stacked_fit_of_the_observed_entries(
        kw, fit_intercept, shape):
    X, Y, rng = _problem(*shape)
    if "penalty_factor" in kw and shape[1] != 6:
        kw = dict(kw, penalty_factor=np.r_[0, np.ones(shape[1] - 1)])
    s = rng.uniform(0.5, 2.0, len(X))
    omega = np.array([1.0, 2.0, 0.5, 1.5])
    Y_before = Y.copy()
    params = dict(kw, fit_intercept=fit_intercept, tol=1e-12, max_iter=100_000)
    masked = MultiTaskRegressor(task_weights=omega, **params).fit(X, Y, sample_weight=s)
    np.testing.assert_array_equal(Y, Y_before)  # the input is untouched
    Xs, ys, ss = _observed_stacked(X, Y, s)
    stacked = MultiTaskRegressor(task_col=-1, task_weights=omega, **params).fit(
        Xs, ys, sample_weight=ss)
    scale = max(1.0, np.abs(stacked.coef_).max())
    np.testing.assert_allclose(masked.coef_, stacked.coef_, atol=1e-7 * scale)
    np.testing.assert_allclose(masked.intercept_, stacked.intercept_,
                               atol=1e-7 * scale)
    assert masked.predict(X).shape == Y.shape
    assert np.all(np.isfinite(masked.predict(X)))


def test_score_and_cv_leave_missing_targets_out():
    X, Y, _ = _problem(n=200)
    model = MultiTaskRegressorCV(penalty=["l21", "l2"], cv=3).fit(X, Y)
    P = model.predict(X)
    expected = np.mean([r2_score(Y[m, t], P[m, t])
                        for t, m in enumerate(~np.isnan(Y).T)])
    assert model.score(X, Y) == pytest.approx(expected)
    assert np.all(np.isfinite(model.score_path_))
    # with all targets observed, score is scikit-learn's
    full = np.where(np.isnan(Y), P, Y)
    assert model.score(X, full) == pytest.approx(r2_score(full, P))


def test_score_of_one_task_given_as_a_1d_y_with_missing_targets():
    X, Y, _ = _problem(n=200)
    y = Y[:, 0]
    model = MultiTaskRegressor(penalty="l21", alpha=0.05).fit(X, y)
    rows = ~np.isnan(y)
    s = np.linspace(0.5, 2.0, len(y))
    for weights, kept in ((None, None), (s, s[rows])):
        expected = r2_score(y[rows], model.predict(X)[rows], sample_weight=kept)
        assert model.score(X, y, sample_weight=weights) == pytest.approx(expected)
        assert model.score(X, y[:, None], weights) == pytest.approx(expected)


def test_missing_target_errors():
    X, Y, _ = _problem()
    Y[:, 2] = np.nan
    Y[0, 2] = 1.0
    with pytest.raises(ValueError, match="task 2 .column 2 of y. has 1"):
        MultiTaskRegressor().fit(X, Y)
    X, Y, _ = _problem()
    Y[0, 0] = np.inf
    with pytest.raises(ValueError, match="[Ii]nf"):
        MultiTaskRegressor().fit(X, Y)
    X, Y, _ = _problem()
    with pytest.raises(ValueError, match="squared loss; loss='huber'"):
        MultiTaskRegressor(loss="huber").fit(X, Y)
    with pytest.raises(ValueError, match="missing label"):  # one task
        MultiTaskClassifier().fit(X, np.where(np.isnan(Y), np.nan, Y > 0)[:, 0])
    Xs, ys, _ = _observed_stacked(X, np.nan_to_num(Y))
    ys[0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        MultiTaskRegressor(task_col=-1).fit(Xs, ys)


# ------------------------------------------------------------ classification
def _labels_with_gaps(seed=0, n=120, T=3):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 4))
    Y = (X @ rng.standard_normal((4, T)) + rng.standard_normal((n, T)) > 0)
    Y = np.where(Y, "yes", "no").astype(object)
    Y[rng.random((n, T)) < 0.25] = None
    return X, Y


@pytest.mark.parametrize("alpha", [0.01, None])
def test_classifier_missing_labels_equal_the_stacked_fit(alpha):
    """Also at the default alpha, ``1 / n`` with ``n`` the tasks' mean
    number of *observed* labels (it took every row of Y, a smaller alpha)."""
    from mtlinear import MultiTaskClassifier
    X, Y = _labels_with_gaps()
    masked = MultiTaskClassifier(alpha=alpha, tol=1e-10,
                                 max_iter=100_000).fit(X, Y)
    rows, cols = np.nonzero(Y != None)  # noqa: E711
    stacked = MultiTaskClassifier(alpha=alpha, task_col=-1, tol=1e-10,
                                  max_iter=100_000).fit(
        np.column_stack([X[rows], cols]), Y[rows, cols].astype(str))
    np.testing.assert_allclose(masked.coef_, stacked.coef_, atol=1e-7)
    np.testing.assert_allclose(masked.intercept_, stacked.intercept_, atol=1e-7)
    assert masked.predict(X).shape == Y.shape  # every entry predicted
    P = masked.predict(X)
    expected = np.mean([np.mean(P[Y[:, t] != None, t] == Y[Y[:, t] != None, t])  # noqa: E711
                        for t in range(3)])
    assert masked.score(X, Y) == pytest.approx(expected)


def test_classifier_missing_labels_as_pandas_na():
    """pandas' ``NA`` in a string-typed DataFrame is a missing label, as
    ``None`` is (sorting the labels raised "boolean value of NA is
    ambiguous")."""
    pd = pytest.importorskip("pandas")
    from mtlinear import MultiTaskClassifier
    X, Y = _labels_with_gaps()
    frame = pd.DataFrame(Y, columns=["a", "b", "c"]).astype("string")
    assert frame.isna().to_numpy().sum() == np.sum(Y == None)  # noqa: E711
    with_na = MultiTaskClassifier(alpha=0.01).fit(X, frame)
    with_none = MultiTaskClassifier(alpha=0.01).fit(X, Y)
    np.testing.assert_array_equal(with_na.coef_, with_none.coef_)
    np.testing.assert_array_equal(with_na.intercept_, with_none.intercept_)


def test_classifier_cv_with_missing_labels():
    from mtlinear import MultiTaskClassifierCV
    from mtlinear.metrics import task_scores
    X, Y = _labels_with_gaps(seed=1)
    Yf = np.where(Y == "yes", 1.0, np.where(Y == "no", 0.0, np.nan))
    model = MultiTaskClassifierCV(alphas=4, cv=3).fit(X, Yf)
    assert np.all(np.isfinite(model.score_path_))
    auc = MultiTaskClassifierCV(alphas=4, cv=3, scoring="roc_auc").fit(X, Yf)
    assert np.all(np.isfinite(auc.score_path_))
    scores = task_scores(auc, X, Yf, "accuracy")
    assert all(0.5 < s <= 1 for s in scores.values())


def test_classifier_missing_label_in_one_task_is_an_error():
    from mtlinear import MultiTaskClassifier
    X, Y = _labels_with_gaps()
    with pytest.raises(ValueError, match="missing label"):
        MultiTaskClassifier().fit(X, Y[:, 0])
