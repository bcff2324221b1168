"""Cross-validated estimators against scikit-learn's CV and GridSearchCV."""
import numpy as np
import pytest
from sklearn.linear_model import MultiTaskElasticNetCV, MultiTaskLassoCV
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold

from mtlinear.metrics import task_scorer
from mtlinear import (MultiTaskClassifier, MultiTaskClassifierCV,
                      MultiTaskRegressor, MultiTaskRegressorCV, stack_tasks)
from mtlinear.model_selection import TaskStratifiedKFold

TIGHT = dict(tol=1e-10, max_iter=100000)


def _shared(seed=0, n=60, d=10, T=3, noise=1.0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    Y = X[:, :3] @ rng.standard_normal((3, T)) + noise * rng.standard_normal((n, T))
    return X, Y


def _stacked(seed=0, sizes=(25, 40, 18, 30), d=8):
    rng = np.random.default_rng(seed)
    X_list = [rng.standard_normal((n, d)) for n in sizes]
    w = np.zeros(d)
    w[:3] = rng.standard_normal(3)
    y_list = [Xt @ (w + 0.3 * rng.standard_normal(d)) + rng.standard_normal(len(Xt))
              for Xt in X_list]
    return stack_tasks(X_list, y_list)


def test_matches_multitask_lasso_cv():
    X, Y = _shared()
    cv = KFold(5, shuffle=True, random_state=0)
    ours = MultiTaskRegressorCV(alphas=20, cv=cv, **TIGHT).fit(X, Y)
    ref = MultiTaskLassoCV(alphas=20, cv=cv, tol=1e-12, max_iter=100000).fit(X, Y)
    np.testing.assert_allclose(ours.alphas_, ref.alphas_, rtol=1e-12)
    assert ours.mse_path_.shape == ref.mse_path_.shape == (20, 5)
    np.testing.assert_allclose(ours.mse_path_, ref.mse_path_, rtol=1e-6)
    assert ours.alpha_ == pytest.approx(ref.alpha_, rel=1e-12)
    np.testing.assert_allclose(ours.coef_, ref.coef_, atol=1e-6)
    np.testing.assert_allclose(ours.intercept_, ref.intercept_, atol=1e-6)
    assert ours.penalty_ == "l21" and ours.l1_ratio_ == 1.0


def test_matches_multitask_elastic_net_cv_over_l1_ratios():
    X, Y = _shared(seed=1, noise=2.0)
    cv = KFold(4, shuffle=True, random_state=1)
    ratios = [0.2, 0.6, 1.0]
    # the ridge part converges more slowly: a tighter relative gap
    ours = MultiTaskRegressorCV(l1_ratio=ratios, alphas=12, eps=1e-2, cv=cv,
                                tol=1e-13, max_iter=100000).fit(X, Y)
    ref = MultiTaskElasticNetCV(l1_ratio=ratios, alphas=12, eps=1e-2, cv=cv,
                                tol=1e-12, max_iter=100000).fit(X, Y)
    np.testing.assert_allclose(ours.alphas_, ref.alphas_, rtol=1e-12)
    assert ours.mse_path_.shape == ref.mse_path_.shape == (3, 12, 4)
    np.testing.assert_allclose(ours.mse_path_, ref.mse_path_, rtol=1e-6)
    assert ours.l1_ratio_ == ref.l1_ratio_
    assert ours.alpha_ == pytest.approx(ref.alpha_, rel=1e-12)
    np.testing.assert_allclose(ours.coef_, ref.coef_, atol=1e-6)


@pytest.mark.parametrize("scoring", [None, "neg_mean_absolute_error"])
def test_same_choice_as_gridsearchcv_stacked(scoring):
    X, y = _stacked()
    alphas = np.geomspace(0.5, 0.005, 8)
    splits = list(TaskStratifiedKFold(4, shuffle=True, random_state=0)
                  .split(X, groups=X[:, -1]))
    ours = MultiTaskRegressorCV(penalty=["l21", "trace"], alphas=alphas,
                                cv=splits, scoring=scoring, task_col=-1,
                                **TIGHT).fit(X, y)
    search = GridSearchCV(MultiTaskRegressor(task_col=-1, **TIGHT),
                          {"penalty": ["l21", "trace"], "alpha": alphas},
                          cv=splits, error_score="raise",
                          scoring=task_scorer(scoring) if scoring
                          else "neg_mean_squared_error").fit(X, y)
    assert search.best_params_ == {"penalty": ours.penalty_, "alpha": ours.alpha_}
    # GridSearchCV's candidates: penalty varies fastest, alphas in given order
    grid_means = search.cv_results_["mean_test_score"].reshape(8, 2).T
    np.testing.assert_allclose(ours.score_path_.mean(axis=-1), grid_means,
                               rtol=1e-6)
    assert ours.best_score_ == pytest.approx(search.best_score_, rel=1e-6)
    if scoring is None:
        np.testing.assert_allclose(ours.mse_path_, -ours.score_path_)
    else:
        assert not hasattr(ours, "mse_path_")
    refit = MultiTaskRegressor(penalty=ours.penalty_, alpha=ours.alpha_,
                               task_col=-1, **TIGHT).fit(X, y)
    np.testing.assert_allclose(ours.coef_, refit.coef_, atol=1e-6)
    np.testing.assert_allclose(ours.predict(X), refit.predict(X), atol=1e-6)


@pytest.mark.parametrize("scoring", [None, "accuracy"])
def test_classifier_same_choice_as_gridsearchcv(scoring):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((120, 6))
    y = np.where(X[:, 0] - X[:, 1] + rng.standard_normal(120) > 0, "yes", "no")
    cv = StratifiedKFold(4, shuffle=True, random_state=0)
    ours = MultiTaskClassifierCV(alphas=8, cv=cv, scoring=scoring,
                                 tol=1e-7, max_iter=100000).fit(X, y)
    search = GridSearchCV(MultiTaskClassifier(tol=1e-7, max_iter=100000),
                          {"alpha": ours.alphas_}, cv=cv,
                          scoring=task_scorer(scoring) if scoring
                          else "neg_log_loss").fit(X, y)
    np.testing.assert_allclose(ours.score_path_.mean(axis=-1),
                               search.cv_results_["mean_test_score"], rtol=1e-4)
    assert ours.alpha_ == search.best_params_["alpha"]
    assert set(ours.predict(X)) <= {"yes", "no"}


def test_classifier_stacked_folds_keep_both_classes():
    rng = np.random.default_rng(4)
    X_list = [rng.standard_normal((n, 4)) for n in (30, 12, 20)]
    # task 1 has only 3 positives: plain task stratification could leave a
    # training fold without them
    y_list = [(Xt[:, 0] > 0).astype(int) for Xt in X_list]
    y_list[1] = np.array([1, 1, 1] + [0] * 9)
    X, y = stack_tasks(X_list, y_list)
    model = MultiTaskClassifierCV(alphas=5, cv=3, task_col=-1).fit(X, y)
    assert model.coef_.shape == (3, 4)
    with pytest.warns(UserWarning, match="group '1, class 1' has only 3 rows"):
        MultiTaskClassifierCV(alphas=5, cv=4, task_col=-1).fit(X, y)


def test_sample_weight_equals_repeated_rows():
    """Integer weights = repeated rows, with the same folds (rows follow their
    copies) and a tight tolerance."""
    X, Y = _shared(seed=5, n=30)
    sw = np.random.default_rng(5).integers(0, 4, 30)
    fold = np.arange(30) % 3
    Xr, Yr, fold_r = X.repeat(sw, axis=0), Y.repeat(sw, axis=0), fold.repeat(sw)
    cv_w = [(np.flatnonzero(fold != k), np.flatnonzero(fold == k)) for k in range(3)]
    cv_r = [(np.flatnonzero(fold_r != k), np.flatnonzero(fold_r == k))
            for k in range(3)]
    weighted = MultiTaskRegressorCV(alphas=10, cv=cv_w, **TIGHT).fit(X, Y, sw)
    repeated = MultiTaskRegressorCV(alphas=10, cv=cv_r, **TIGHT).fit(Xr, Yr)
    np.testing.assert_allclose(weighted.alphas_, repeated.alphas_, rtol=1e-10)
    np.testing.assert_allclose(weighted.mse_path_, repeated.mse_path_, rtol=1e-6)
    np.testing.assert_allclose(weighted.coef_, repeated.coef_, atol=1e-6)


def test_default_cv_is_task_stratified_and_missing_tasks_are_an_error():
    X, y = _stacked(sizes=(10, 40, 12))
    model = MultiTaskRegressorCV(alphas=5, task_col=-1).fit(X, y)
    assert model.score_path_.shape == (5, 5)
    with pytest.raises(ValueError, match=r"Fold 0 trains without any row of "
                                         r"task\(s\) \[0\]"):
        MultiTaskRegressorCV(alphas=5, task_col=-1, cv=KFold(5)).fit(X, y)
    with pytest.warns(UserWarning, match="group 0 has only 10 rows"):
        MultiTaskRegressorCV(alphas=5, task_col=-1, cv=11).fit(X, y)


def test_parameter_lists_are_validated():
    X, Y = _shared()
    with pytest.raises(ValueError, match="got an empty list"):
        MultiTaskRegressorCV(penalty=[]).fit(X, Y)
    with pytest.raises(ValueError, match="Unknown penalty 'lasso'"):
        MultiTaskRegressorCV(penalty=["l21", "lasso"]).fit(X, Y)
    with pytest.raises(ValueError, match=r"Every l1_ratio must be in \[0, 1\]"):
        MultiTaskRegressorCV(l1_ratio=[0.5, 1.5]).fit(X, Y)
    with pytest.raises(ValueError, match="alphas must be finite"):
        MultiTaskRegressorCV(alphas=[1.0, np.nan]).fit(X, Y)
    with pytest.raises(ValueError, match="'eps' parameter"):
        MultiTaskRegressorCV(eps=2.0).fit(X, Y)


def test_grid_shapes_parallel_and_progress(capsys):
    X, Y = _shared(seed=6)
    # tight tol: the workers' single-threaded BLAS rounds differently, which
    # must not move a solve's stopping point by more than the tolerance
    model = MultiTaskRegressorCV(penalty=["l21", "l1", "l2"], l1_ratio=[0.5, 1.0],
                                 alphas=[1.0, 0.1, 0.01], cv=3, verbose=1, **TIGHT)
    model.fit(X, Y)
    assert model.alphas_.shape == (3, 2, 3)
    assert model.score_path_.shape == (3, 2, 3, 3)
    # l2 ignores l1_ratio: both rows of its grid are the same model
    np.testing.assert_allclose(model.score_path_[2, 0], model.score_path_[2, 1])
    assert "cross-validation: 54/54 (100%)" in capsys.readouterr().err
    parallel = MultiTaskRegressorCV(penalty=["l21", "l1", "l2"],
                                    l1_ratio=[0.5, 1.0], alphas=[1.0, 0.1, 0.01],
                                    cv=3, n_jobs=2, **TIGHT).fit(X, Y)
    np.testing.assert_allclose(parallel.score_path_, model.score_path_, rtol=1e-8)
    assert (parallel.penalty_, parallel.l1_ratio_, parallel.alpha_) == \
        (model.penalty_, model.l1_ratio_, model.alpha_)


def test_repeated_task_splitter_gets_the_task_labels():
    from mtlinear.model_selection import RepeatedTaskStratifiedKFold
    rng = np.random.default_rng(28)
    X = np.column_stack([rng.standard_normal((90, 3)), np.repeat([0, 1, 2], 30)])
    y = X[:, 0] + rng.standard_normal(90)
    cv = RepeatedTaskStratifiedKFold(3, n_repeats=2, random_state=0)
    model = MultiTaskRegressorCV(task_col=-1, alphas=4, cv=cv).fit(X, y)
    assert model.score_path_.shape == (4, 6)
    splits = list(cv.split(X[:, :-1], y, groups=X[:, -1]))
    for k, (train, test) in enumerate(splits):  # the same folds, by hand
        fold = MultiTaskRegressor(task_col=-1, alpha=model.alphas_[0]).fit(
            X[train], y[train])
        assert model.mse_path_[0, k] == pytest.approx(
            np.mean((fold.predict(X[test]) - y[test]) ** 2), rel=1e-4)


def test_group_splitters_get_the_groups():
    """``groups`` reaches a group splitter, as in ``GridSearchCV``: the same
    paths as with the splitter's folds given explicitly, in both layouts;
    the task splitter takes none, and a wrong length is an error."""
    from sklearn.model_selection import GroupKFold
    X, Y = _shared(n=90)
    groups = np.repeat(np.arange(9), 10)
    folds = list(GroupKFold(3).split(X, Y, groups))
    by_groups = MultiTaskRegressorCV(alphas=6, cv=GroupKFold(3)).fit(
        X, Y, groups=groups)
    by_folds = MultiTaskRegressorCV(alphas=6, cv=folds).fit(X, Y)
    np.testing.assert_allclose(by_groups.score_path_, by_folds.score_path_)
    assert by_groups.alpha_ == by_folds.alpha_

    Xs, y = _stacked()
    rng = np.random.default_rng(1)
    groups = rng.integers(0, 4, size=len(y))  # each task in every group
    folds = list(GroupKFold(4).split(Xs, y, groups))
    by_groups = MultiTaskRegressorCV(alphas=5, cv=GroupKFold(4), task_col=-1
                                     ).fit(Xs, y, groups=groups)
    by_folds = MultiTaskRegressorCV(alphas=5, cv=folds, task_col=-1).fit(Xs, y)
    np.testing.assert_allclose(by_groups.score_path_, by_folds.score_path_)

    with pytest.raises(ValueError, match="takes no groups"):
        MultiTaskRegressorCV(alphas=3, task_col=-1).fit(Xs, y, groups=groups)
    with pytest.raises(ValueError, match="one group label per row"):
        MultiTaskRegressorCV(alphas=3, cv=GroupKFold(3)).fit(
            X, Y, groups=np.arange(10))


def _capture_refit_start(monkeypatch, estimator_class):
    """Record the start ``_refit`` receives."""
    seen = []
    refit = estimator_class._refit

    def recording(self, problem, loss, start=None):
        seen.append(start)
        return refit(self, problem, loss, start)

    monkeypatch.setattr(estimator_class, "_refit", recording)
    return seen


@pytest.mark.parametrize("layout", ["shared", "stacked"])
def test_refit_starts_from_the_folds_mean_solution(monkeypatch, layout):
    # as LogisticRegressionCV: the refit starts from the mean of the folds'
    # solutions at the chosen alpha, each recomputed here by its own fit
    if layout == "shared":
        X, Y = _shared(seed=3)
        splits, task_col = KFold(4, shuffle=True, random_state=0).split(X), None
    else:
        X, Y = _stacked(seed=3)
        splits = TaskStratifiedKFold(4, shuffle=True, random_state=0).split(
            X, Y, X[:, -1])
        task_col = -1
    Y = np.where(Y > 0, 1, 0)
    splits = list(splits)
    seen = _capture_refit_start(monkeypatch, MultiTaskClassifierCV)
    model = MultiTaskClassifierCV(penalty="l21", alphas=6, cv=splits,
                                  task_col=task_col, tol=1e-12,
                                  max_iter=100000).fit(X, Y)
    (start,) = seen
    folds = [MultiTaskClassifier(penalty="l21", alpha=model.alpha_,
                                 task_col=task_col, tol=1e-12, max_iter=100000)
             .fit(X[train], Y[train]) for train, _ in splits]
    np.testing.assert_allclose(start[0], np.mean([f.coef_.T for f in folds],
                                                 axis=0), atol=1e-6)
    np.testing.assert_allclose(start[1], np.mean([f.intercept_ for f in folds],
                                                 axis=0), atol=1e-6)
    alone = MultiTaskClassifier(penalty="l21", alpha=model.alpha_,
                                task_col=task_col, tol=1e-12,
                                max_iter=100000).fit(X, Y)
    np.testing.assert_allclose(model.coef_, alone.coef_, atol=1e-7)
    np.testing.assert_allclose(model.intercept_, alone.intercept_, atol=1e-7)


def test_refit_start_needs_fewer_steps_and_is_capped(monkeypatch):
    import mtlinear._fold_solutions as kept
    X, Y = _shared(seed=4, d=30)
    ours = MultiTaskRegressorCV(alphas=8, cv=4).fit(X, Y)
    seen = _capture_refit_start(monkeypatch, MultiTaskRegressorCV)
    monkeypatch.setattr(kept, "_KEPT_SOLUTION_FLOATS", 10)
    cold = MultiTaskRegressorCV(alphas=8, cv=4).fit(X, Y)
    assert seen == [None]  # beyond the cap: from zero, as before
    assert ours.alpha_ == cold.alpha_
    np.testing.assert_allclose(ours.coef_, cold.coef_, atol=1e-3)
    assert ours.n_iter_ < cold.n_iter_
