"""Fitting from dask collections on a real (local, multi-process) cluster.

References: the in-memory ``fit`` on the same data computed to numpy (to
1e-8 at a tight duality gap), and the statistics recomputed by numpy.
"""
import numpy as np
import pandas as pd
import pytest

da = pytest.importorskip("dask.array")
dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")
import dask  # noqa: E402

from mtlinear import (MultiTaskClassifier, MultiTaskRegressor,  # noqa: E402
                      stack_tasks)
from mtlinear import _dask  # noqa: E402
from mtlinear._dask import dask_statistics  # noqa: E402

pytestmark = pytest.mark.filterwarnings("error::sklearn.exceptions.ConvergenceWarning")

TIGHT = dict(tol=1e-12, max_iter=100_000)


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, processes=True,
                                       threads_per_worker=1,
                                       dashboard_address=":0")
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


def assert_same_fit(model, ref, rtol=1e-8):
    assert model.coef_.shape == ref.coef_.shape
    scale = np.abs(ref.coef_).max()
    assert scale > 0
    assert np.abs(model.coef_ - ref.coef_).max() <= rtol * scale
    np.testing.assert_allclose(model.intercept_, ref.intercept_, rtol=rtol,
                               atol=rtol * scale)


def shared_data(n=900, d=6, T=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) + 2.0
    W = rng.standard_normal((d, T))
    W[4:] = 0.0
    Y = X @ W + 0.5 * rng.standard_normal((n, T)) + np.arange(T)
    return X, Y, rng.uniform(0.2, 2.0, n)


def stacked_frame(sizes=(120, 200, 90, 150), d=5, seed=1):
    """A DataFrame with a string task column, rows of tasks interleaved."""
    rng = np.random.default_rng(seed)
    X_list = [rng.standard_normal((m, d)) + 1.0 for m in sizes]
    W = rng.standard_normal((d, len(sizes)))
    y_list = [Xt @ W[:, t] + 0.5 * rng.standard_normal(len(Xt))
              for t, Xt in enumerate(X_list)]
    X, y = stack_tasks(X_list, y_list, task_labels=["north", "south", "east",
                                                   "west"])
    df = pd.DataFrame(X[:, :-1].astype(float), columns=[f"x{j}" for j in range(d)])
    df["school"] = X[:, -1].astype(str)
    df["y"] = y
    df["w"] = rng.uniform(0.2, 2.0, len(y))
    return df.iloc[rng.permutation(len(df))].reset_index(drop=True)


# ------------------------------------------------------------ shared layout
@pytest.mark.parametrize("penalty", ["l21", "l1", "trace", "l2"])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_dask_array_equals_in_memory_fit(client, penalty, fit_intercept):
    X, Y, s = shared_data()
    kw = dict(penalty=penalty, alpha=0.05, fit_intercept=fit_intercept,
              task_weights=[1.0, 2.0, 0.5], **TIGHT)
    ref = MultiTaskRegressor(**kw).fit(X, Y, sample_weight=s)
    # row chunks of X, Y and s differ, X is chunked by columns too
    model = MultiTaskRegressor(**kw).fit(
        da.from_array(X, chunks=(200, 4)), da.from_array(Y, chunks=(150, 3)),
        sample_weight=da.from_array(s, chunks=300))
    assert_same_fit(model, ref)
    # the certified gap, against the objective at W = 0 (tol is relative to it)
    Yc = Y - (s @ Y) / s.sum() if fit_intercept else Y
    null = 0.5 * np.dot([1.0, 2.0, 0.5], s @ Yc ** 2) / s.sum()
    assert -1e-12 * null <= model.dual_gap_ <= 1e-12 * null  # 0 up to rounding
    assert model.n_features_in_ == 6 and model.n_tasks_ == 3
    assert not hasattr(model, "feature_names_in_")


def test_trace_norm_on_one_large_feature_from_the_statistics(client):
    """The trace norm with a feature 1000 times larger than the others, on
    dask (the problem is known by its sufficient statistics): FISTA alone
    stalls, and "auto" finishes with ADMM on the statistics, to the
    in-memory fit with ADMM."""
    from sklearn.exceptions import ConvergenceWarning
    rng = np.random.default_rng(2)
    X = rng.standard_normal((300, 10))
    Y = X @ rng.standard_normal((10, 4)) + rng.standard_normal((300, 4))
    X[:, 0] *= 1000.0
    dX, dY = da.from_array(X, chunks=(100, 10)), da.from_array(Y, chunks=(100, 4))
    with pytest.warns(ConvergenceWarning):
        MultiTaskRegressor(penalty="trace", alpha=0.01, solver="fista").fit(dX, dY)
    model = MultiTaskRegressor(penalty="trace", alpha=0.01, tol=1e-10).fit(dX, dY)
    ref = MultiTaskRegressor(penalty="trace", alpha=0.01, tol=1e-10,
                             solver="admm").fit(X, Y)
    assert_same_fit(model, ref, rtol=1e-4)


def test_in_memory_targets_with_dask_features(client):
    X, Y, _ = shared_data()
    ref = MultiTaskRegressor(alpha=0.05, **TIGHT).fit(X, Y[:, 0])
    model = MultiTaskRegressor(alpha=0.05, **TIGHT).fit(
        da.from_array(X, chunks=(250, 6)), Y[:, 0])
    assert_same_fit(model, ref)
    assert model.predict(X[:4]).shape == (4,)  # 1-d y: 1-d predictions


# ------------------------------------------------------------ stacked layout
@pytest.mark.parametrize("penalty", ["l21", "trace", "l1"])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_dask_dataframe_with_string_tasks(client, penalty, fit_intercept):
    df = stacked_frame()
    weights = {"north": 1.0, "south": 0.5, "east": 2.0, "west": 1.0}
    kw = dict(penalty=penalty, alpha=0.03, fit_intercept=fit_intercept,
              task_col="school", task_weights=weights, **TIGHT)
    features = df.drop(columns=["y", "w"])
    ref = MultiTaskRegressor(**kw).fit(features, df["y"], sample_weight=df["w"])
    ddf = dd.from_pandas(df, npartitions=5)
    model = MultiTaskRegressor(**kw).fit(ddf.drop(columns=["y", "w"]), ddf["y"],
                                         sample_weight=ddf["w"])
    np.testing.assert_array_equal(model.tasks_, ["east", "north", "south", "west"])
    np.testing.assert_array_equal(model.feature_names_in_, ref.feature_names_in_)
    assert_same_fit(model, ref)
    np.testing.assert_allclose(model.predict(features), ref.predict(features),
                               rtol=1e-8, atol=1e-8)
    # predict takes in-memory data (the error said "'Series' object has no
    # attribute 'to_numpy'"); the documented recipe predicts each partition
    for method in (model.predict, lambda X: model.score(X, ddf["y"])):
        with pytest.raises(TypeError, match="predicts in-memory data; X is a "
                                            "dask DataFrame.*map_partitions"):
            method(ddf.drop(columns=["y", "w"]))
    per_partition = ddf.drop(columns=["y", "w"]).map_partitions(
        model.predict, meta=("y", "f8")).compute()
    np.testing.assert_allclose(per_partition, ref.predict(features),
                               rtol=1e-8, atol=1e-8)


def test_dask_array_with_a_task_column(client):
    df = stacked_frame()
    codes = df["school"].map({"north": 3, "south": 1, "east": 7, "west": 5})
    X = np.column_stack([df.filter(like="x").to_numpy(), codes.to_numpy()])
    kw = dict(penalty="l21", alpha=0.03, task_col=-1, **TIGHT)
    ref = MultiTaskRegressor(**kw).fit(X, df["y"], sample_weight=df["w"])
    model = MultiTaskRegressor(**kw).fit(
        da.from_array(X, chunks=(111, 6)),
        da.from_array(df["y"].to_numpy(), chunks=200),
        sample_weight=df["w"].to_numpy())
    np.testing.assert_array_equal(model.tasks_, [1, 3, 5, 7])
    assert_same_fit(model, ref)


def test_statistics_equal_numpy_and_come_from_one_compute(client, monkeypatch):
    """The reduction runs on the workers: nothing converts X, y or the
    weights to numpy on the client, and one ``dask.compute`` returns the
    small statistics object."""
    df = stacked_frame()
    ddf = dd.from_pandas(df, npartitions=6)

    def refuse(*args, **kwargs):
        raise AssertionError("data computed on the client")

    for cls in (dd.DataFrame, dd.Series, da.Array):
        monkeypatch.setattr(cls, "compute", refuse)
        monkeypatch.setattr(cls, "__array__", refuse, raising=False)
    calls = []
    compute = dask.compute

    def counted(*args, **kwargs):
        calls.append(args)
        return compute(*args, **kwargs)

    monkeypatch.setattr(dask, "compute", counted)
    stats = dask_statistics(ddf.drop(columns=["y", "w"]), ddf["y"],
                            sample_weight=ddf["w"], task_col="school")
    assert len(calls) == 1
    for g, label in enumerate(stats.labels):
        part = df[df["school"] == label]
        X = part.drop(columns=["school", "y", "w"]).to_numpy()
        s, y = part["w"].to_numpy(), part["y"].to_numpy()
        n = s.sum()
        xm, ym = s @ X / n, s @ y / n
        np.testing.assert_allclose(stats.weight[g], n, rtol=1e-13)
        np.testing.assert_allclose(stats.x_mean[g], xm, rtol=1e-12)
        sXc = (X - xm) * s[:, None]
        np.testing.assert_allclose(stats.xx[g], sXc.T @ (X - xm),
                                   rtol=1e-11, atol=1e-11)
        np.testing.assert_allclose(stats.xy[g][:, 0], sXc.T @ (y - ym),
                                   rtol=1e-11, atol=1e-11)
    # and the fit goes through the same single compute
    MultiTaskRegressor(alpha=0.05, task_col="school").fit(
        ddf.drop(columns=["y", "w"]), ddf["y"])
    assert len(calls) == 2


def test_partial_fit_continues_a_dask_fit(client):
    X, Y, _ = shared_data()
    kw = dict(penalty="l21", alpha=0.05, **TIGHT)
    model = MultiTaskRegressor(**kw).fit(da.from_array(X[:600], chunks=200), Y[:600])
    for lo in range(600, 900, 100):
        model.partial_fit(X[lo:lo + 100], Y[lo:lo + 100])
    assert_same_fit(model, MultiTaskRegressor(**kw).fit(X, Y))


# ------------------------------------------------------------ errors
def test_other_losses_are_refused(client):
    X, Y, _ = shared_data()
    Xd = da.from_array(X, chunks=300)
    with pytest.raises(ValueError, match="squared loss only.*compute"):
        MultiTaskRegressor(loss="huber").fit(Xd, da.from_array(Y, chunks=300))
    labels = da.from_array((Y > Y.mean(axis=0)).astype(int), chunks=300)
    model = MultiTaskClassifier()
    with pytest.raises(ValueError, match="only the squared loss.*compute"):
        model.fit(Xd, labels)
    assert not hasattr(model, "coef_")


def test_bad_partitions_are_clear_errors(client):
    df = stacked_frame()
    ddf = dd.from_pandas(df, npartitions=4)
    X = ddf.drop(columns=["y", "w"])
    model = MultiTaskRegressor(task_col="school")
    with pytest.raises(ValueError, match="partitions"):
        model.fit(X, dd.from_pandas(df["y"], npartitions=3))
    # unknown chunk sizes: in-memory targets cannot be split like X
    Xa = X.drop(columns="school").to_dask_array()
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        MultiTaskRegressor().fit(Xa, df["y"].to_numpy())
    # same number of blocks but different rows: found on the workers
    y_bad = da.from_array(df["y"].to_numpy()[:-8], chunks=len(df) // 4)
    with pytest.raises(ValueError, match="partitioned"):
        MultiTaskRegressor().fit(Xa, y_bad)
    with pytest.raises(ValueError, match="non-numeric"):
        MultiTaskRegressor().fit(ddf.drop(columns=["y", "w"]), ddf["y"])
    with pytest.raises(TypeError, match="X is in memory"):
        MultiTaskRegressor().fit(df[["x0", "x1"]].to_numpy(), ddf["y"])


def test_failed_fit_leaves_the_model_as_it_was(client):
    X, Y, _ = shared_data()
    model = MultiTaskRegressor(alpha=0.05).fit(X, Y)
    coef = model.coef_.copy()
    Y_bad = Y.copy()
    Y_bad[500, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        model.fit(da.from_array(X, chunks=300), da.from_array(Y_bad, chunks=300))
    np.testing.assert_array_equal(model.coef_, coef)
    assert not hasattr(model, "_statistics")


def test_dask_is_not_imported_by_the_package():
    import subprocess
    import sys
    code = "import sys, mtlinear; print('dask' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "False"
    assert _dask.is_dask_collection(np.ones(3)) is False


def test_grid_search_on_the_cluster_through_joblib(client):
    """In-memory data, fits on the workers (joblib's dask backend): the same
    search result as in this process."""
    import joblib
    from sklearn.model_selection import GridSearchCV, KFold
    X, Y, _ = shared_data(n=200)
    grid = {"penalty": ["l21", "trace"], "alpha": [0.01, 0.1, 1.0]}
    local = GridSearchCV(MultiTaskRegressor(), grid, cv=KFold(3)).fit(X, Y)
    search = GridSearchCV(MultiTaskRegressor(), grid, cv=KFold(3), n_jobs=-1)
    with joblib.parallel_backend("dask"):
        search.fit(X, Y)
    assert search.best_params_ == local.best_params_
    np.testing.assert_allclose(search.cv_results_["mean_test_score"],
                               local.cv_results_["mean_test_score"], rtol=1e-10)


def test_classifier_cv_refuses_dask_collections():
    from mtlinear import MultiTaskClassifierCV
    X = da.from_array(np.random.default_rng(0).standard_normal((40, 3)), chunks=20)
    Y = da.from_array(np.random.default_rng(1).standard_normal((40, 2)) > 0,
                      chunks=20)
    with pytest.raises(ValueError, match="squared loss only"):
        MultiTaskClassifierCV().fit(X, Y)


# ------------------------------------------------------------ cross-validation
def _fold_ids(groups_by_chunk, n_folds):
    """The folds the partitions deal their rows into (seed 0)."""
    from mtlinear._statistics import deal_folds
    return np.concatenate([deal_folds(g, n_folds, [0, i])
                           for i, g in enumerate(groups_by_chunk)])


def _in_memory_score_path(X, Y, folds, alphas, task_col=None, **params):
    """Minus the held-out MSE of in-memory fits on each fold's training rows
    (pooled over rows with task_col, averaged over tasks without)."""
    out = np.empty((len(alphas), folds.max() + 1))
    for k in range(folds.max() + 1):
        train, test = folds != k, folds == k
        for a, alpha in enumerate(alphas):
            model = MultiTaskRegressor(alpha=alpha, task_col=task_col, **TIGHT,
                                       **params).fit(X[train], Y[train])
            err = (model.predict(X[test]) - Y[test]) ** 2
            out[a, k] = -float(np.mean(err.mean(axis=0)))
    return out


def test_cv_on_dask_array_equals_the_in_memory_folds(client):
    from mtlinear import MultiTaskRegressorCV
    X, Y, _ = shared_data(n=600)
    Xd, Yd = da.from_array(X, chunks=(200, -1)), da.from_array(Y, chunks=(200, -1))
    model = MultiTaskRegressorCV(alphas=4, cv=3, **TIGHT).fit(Xd, Yd)
    folds = _fold_ids([np.zeros(200, dtype=np.int64)] * 3, 3)
    expected = _in_memory_score_path(X, Y, folds, model.alphas_)
    np.testing.assert_allclose(model.score_path_, expected, rtol=1e-7)
    np.testing.assert_allclose(model.mse_path_, -expected, rtol=1e-7)
    ref = MultiTaskRegressor(alpha=model.alpha_, **TIGHT).fit(X, Y)
    assert_same_fit(model, ref)


def test_cv_on_dask_dataframe_stacked(client):
    from mtlinear import MultiTaskRegressorCV
    df = stacked_frame()
    frame, y = df.drop(columns=["y", "w"]), df["y"].to_numpy()
    ddf = dd.from_pandas(df.drop(columns="w"), npartitions=2)
    model = MultiTaskRegressorCV(penalty=["l21", "l2"], alphas=3, cv=3,
                                 task_col="school", **TIGHT).fit(
        ddf.drop(columns="y"), ddf["y"])
    codes = [np.unique(part.compute()["school"].to_numpy(),
                       return_inverse=True)[1] for part in ddf.to_delayed()]
    folds = _fold_ids(codes, 3)
    g = ["l21", "l2"].index(model.penalty_)
    expected = _in_memory_score_path(frame, y, folds, model.alphas_[g],
                                     task_col="school", penalty=model.penalty_)
    np.testing.assert_allclose(model.score_path_[g], expected, rtol=1e-7)
    assert list(model.tasks_) == ["east", "north", "south", "west"]
    with pytest.raises(ValueError, match="cv must be a number of folds"):
        MultiTaskRegressorCV(cv=[(np.arange(3), np.arange(3))],
                             task_col="school").fit(ddf.drop(columns="y"), ddf["y"])


@pytest.mark.parametrize("layout", ["shared", "stacked"])
def test_ridge_cv_default_grid_equals_the_in_memory_grid(client, layout):
    # a ridge's grid starts at 10 times the largest curvature; the statistics
    # once used the trace of Q_t (a bound), up to d times too high
    from mtlinear import MultiTaskRegressorCV
    if layout == "shared":
        X, y, _ = shared_data(n=600)
        Xd, yd = da.from_array(X, chunks=(200, -1)), da.from_array(y, chunks=(200, -1))
        kw = {}
    else:
        df = stacked_frame()
        X, y = df.drop(columns=["y", "w"]), df["y"].to_numpy()
        ddf = dd.from_pandas(df.drop(columns="w"), npartitions=2)
        Xd, yd = ddf.drop(columns="y"), ddf["y"]
        kw = dict(task_col="school")
    model = MultiTaskRegressorCV(penalty="l2", alphas=3, cv=3, **kw, **TIGHT)
    ref = MultiTaskRegressorCV(penalty="l2", alphas=3, cv=3, **kw, **TIGHT)
    np.testing.assert_allclose(model.fit(Xd, yd).alphas_, ref.fit(X, y).alphas_,
                               rtol=1e-10)
