"""Bad input gets a clear ValueError that names the culprit (and, where there
is one, the fix) -- never a Numba traceback -- and the user's arrays are never
modified."""
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.base import clone

from mtlinear import (MultiTaskClassifier, MultiTaskEstimator, MultiTaskRegressor,
                      alpha_max, stack_tasks)

RNG = np.random.default_rng(0)
X_SHARED = RNG.standard_normal((20, 4))
Y_SHARED = RNG.standard_normal((20, 3))
X_STACKED, Y_STACKED = stack_tasks([X_SHARED[:8], X_SHARED[8:]],
                                   [Y_SHARED[:8, 0], Y_SHARED[8:, 0]],
                                   task_labels=[3, 7])


def _with(array, row, col, value):
    out = np.array(array, dtype=float)
    out[row, col] = value
    return out


def _stacked(**params):
    return MultiTaskRegressor(task_col=-1, **params)


# (description, callable, exception message pattern)
FIT_ERRORS = [
    ("NaN in X", lambda: MultiTaskRegressor().fit(_with(X_SHARED, 0, 0, np.nan),
                                                  Y_SHARED), "X contains NaN"),
    ("inf in X", lambda: MultiTaskRegressor().fit(_with(X_SHARED, 1, 2, np.inf),
                                                  Y_SHARED), "X contains infinity"),
    ("NaN in sparse X", lambda: MultiTaskRegressor().fit(
        sp.csr_matrix(_with(X_SHARED, 0, 0, np.nan)), Y_SHARED), "X contains NaN"),
    ("NaN in the 1-d y of the classifier", lambda: MultiTaskClassifier().fit(
        X_SHARED, _with((Y_SHARED > 0).astype(float), 3, 1, np.nan)[:, 1]),
     "missing label"),
    ("inf in y", lambda: MultiTaskRegressor().fit(
        X_SHARED, _with(Y_SHARED, 3, 1, np.inf)), "y contains infinity"),
    ("inf in y, stacked", lambda: _stacked().fit(
        X_STACKED, np.r_[np.inf, Y_STACKED[1:]]), "y contains infinity"),
    ("NaN in a stacked feature", lambda: _stacked().fit(
        _with(X_STACKED, 0, 1, np.nan), Y_STACKED), "X contains NaN"),
    ("NaN in the task column", lambda: _stacked().fit(
        _with(X_STACKED, 0, -1, np.nan), Y_STACKED), "task column contains NaN"),
    ("too few targets", lambda: MultiTaskRegressor().fit(X_SHARED, Y_SHARED[:10]),
     "X has 20 samples but y has 10"),
    ("too few targets, stacked", lambda: _stacked().fit(X_STACKED, Y_STACKED[:-1]),
     "X has 20 samples but y has 19"),
    ("only the task column", lambda: _stacked().fit(
        X_STACKED[:, -1:], Y_STACKED), "X has only the task column"),
    ("NaN target with task_col", lambda: _stacked().fit(
        X_STACKED, _with(Y_STACKED, 0, None, np.nan)),
     "y contains NaN.*with task_col: drop the rows"),
    ("NaN target of a model without missing targets", lambda: MultiTaskEstimator(
        ).fit(X_SHARED, _with(Y_SHARED, 0, 0, np.nan)),
     "y contains NaN. MultiTaskEstimator takes no missing target.*drop the rows"),
    ("2-d y with task_col", lambda: _stacked().fit(
        X_STACKED, np.c_[Y_STACKED, Y_STACKED]), "With task_col, y must be 1-d"),
    ("one sample", lambda: MultiTaskRegressor().fit(X_SHARED[:1], Y_SHARED[:1]),
     "at least 2 samples per task.*n_samples = 1"),
    ("a task with one sample", lambda: _stacked().fit(
        _with(X_STACKED, 0, -1, 5), Y_STACKED),
     r"at least 2 samples per task.*\(task 5\).*two or more samples"),
    ("task column index out of range", lambda: MultiTaskRegressor(task_col=9).fit(
        X_STACKED, Y_STACKED), r"task_col=9 is out of range: X has 5 columns"),
    ("negative task column index out of range",
     lambda: MultiTaskRegressor(task_col=-6).fit(X_STACKED, Y_STACKED),
     r"task_col=-6 is out of range"),
    ("column name without a DataFrame", lambda: MultiTaskRegressor(
        task_col="school").fit(X_STACKED, Y_STACKED),
     "task_col='school' is a column name.*pass a pandas DataFrame"),
    ("non-integral float labels", lambda: _stacked().fit(
        X_STACKED + np.r_[np.zeros(4), 0.5], Y_STACKED),
     "non-integral values such as.*task_col pointing at a feature column"),
    ("labels mixing strings and numbers", lambda: _stacked().fit(
        np.c_[X_SHARED.astype(object), np.array(["a", 1] * 10, dtype=object)],
        Y_STACKED), "all strings or all integers"),
    ("negative alpha", lambda: MultiTaskRegressor(alpha=-1.0).fit(X_SHARED, Y_SHARED),
     "'alpha' parameter.*range \\[0.0, inf\\)"),
    ("l1_ratio above 1", lambda: MultiTaskRegressor(l1_ratio=1.5).fit(
        X_SHARED, Y_SHARED), "'l1_ratio' parameter.*range \\[0.0, 1.0\\]"),
    ("l1_ratio below 0", lambda: MultiTaskRegressor(l1_ratio=-0.1).fit(
        X_SHARED, Y_SHARED), "'l1_ratio' parameter.*range \\[0.0, 1.0\\]"),
    ("unknown penalty", lambda: MultiTaskRegressor(penalty="l0").fit(
        X_SHARED, Y_SHARED), "Unknown penalty 'l0'.*'l21'"),
    ("negative sample weight", lambda: MultiTaskRegressor().fit(
        X_SHARED, Y_SHARED, sample_weight=np.r_[-1.0, np.ones(19)]),
     "Negative values.*sample_weight"),
    ("all-zero sample weights", lambda: MultiTaskRegressor().fit(
        X_SHARED, Y_SHARED, sample_weight=np.zeros(20)),
     "[Ss]ample weights must contain at least one non-zero"),
    ("NaN sample weight", lambda: MultiTaskRegressor().fit(
        X_SHARED, Y_SHARED, sample_weight=np.r_[np.nan, np.ones(19)]),
     "sample_weight contains NaN"),
    ("sample weights of the wrong length", lambda: MultiTaskRegressor().fit(
        X_SHARED, Y_SHARED, sample_weight=np.ones(5)), r"sample_weight.shape"),
    ("a task whose sample weights are all zero", lambda: _stacked().fit(
        X_STACKED, Y_STACKED, sample_weight=np.r_[np.zeros(8), np.ones(12)]),
     "sample_weight is zero on every sample of some task"),
    ("negative task weight", lambda: MultiTaskRegressor(
        task_weights=[1.0, -1.0, 1.0]).fit(X_SHARED, Y_SHARED),
     "task_weights must be finite and non-negative"),
    ("negative task weight in a dict", lambda: _stacked(task_weights={3: -2.0}).fit(
        X_STACKED, Y_STACKED), "task_weights must be finite and non-negative"),
    ("infinite task weight", lambda: MultiTaskRegressor(
        task_weights=[1.0, np.inf, 1.0]).fit(X_SHARED, Y_SHARED),
     "task_weights must be finite"),
    ("all-zero task weights", lambda: MultiTaskRegressor(
        task_weights=np.zeros(3)).fit(X_SHARED, Y_SHARED),
     "task_weights are all zero"),
    ("task weights of the wrong length", lambda: MultiTaskRegressor(
        task_weights=[1.0, 2.0]).fit(X_SHARED, Y_SHARED),
     "task_weights has shape \\(2,\\) but there are 3 tasks"),
    ("task weight for an unknown task", lambda: _stacked(task_weights={9: 1.0}).fit(
        X_STACKED, Y_STACKED), "task_weights names task 9.*not among the tasks"),
    ("bcd with the trace norm", lambda: MultiTaskRegressor(
        penalty="trace", solver="bcd").fit(X_SHARED, Y_SHARED),
     "solver='bcd' does not apply.*'trace'.*Use solver='auto'"),
]

ALPHA_MAX_ERRORS = [
    ("pure ridge penalty", dict(penalty="l2"), "alpha_max is infinite.*'l2'"),
    ("pure ridge mix", dict(penalty="l21", l1_ratio=0.0),
     "alpha_max is infinite.*l1_ratio=0"),
    ("l1_ratio above 1", dict(l1_ratio=2.0), "l1_ratio must be a float in \\[0, 1\\]"),
    ("unknown penalty", dict(penalty="l0"), "Unknown penalty 'l0'"),
    ("negative sample weight", dict(sample_weight=-np.ones(20)),
     "Negative values.*sample_weight"),
    ("sample weights of the wrong length", dict(sample_weight=np.ones(3)),
     "sample_weight.shape"),
    ("NaN in X", dict(X=_with(X_SHARED, 0, 0, np.nan)), "X contains NaN"),
    ("NaN in y", dict(y=_with(Y_SHARED, 0, 0, np.nan)),
     "y contains NaN. alpha_max and regularization_path need every target "
     "observed; the estimators fit missing targets"),
    ("too few targets", dict(y=Y_SHARED[:10]), "X has 20 samples but y has 10"),
    ("negative task weight", dict(task_weights=[1.0, -1.0, 1.0]),
     "task_weights must be finite and non-negative"),
]


@pytest.mark.parametrize("fit, match", [case[1:] for case in FIT_ERRORS],
                         ids=[case[0] for case in FIT_ERRORS])
def test_fit_rejects_bad_input(fit, match):
    with pytest.raises(ValueError, match=match):
        fit()


@pytest.mark.parametrize("kwargs, match", [case[1:] for case in ALPHA_MAX_ERRORS],
                         ids=[case[0] for case in ALPHA_MAX_ERRORS])
def test_alpha_max_rejects_bad_input(kwargs, match):
    args = {"X": X_SHARED, "y": Y_SHARED, **kwargs}
    with pytest.raises(ValueError, match=match):
        alpha_max(args.pop("X"), args.pop("y"), **args)


def _frame():
    frame = pd.DataFrame(X_STACKED[:, :-1], columns=["a", "b", "c", "d"])
    frame["school"] = X_STACKED[:, -1].astype(int)
    return frame


def test_missing_column_name_in_dataframe():
    with pytest.raises(ValueError, match="task_col='sch' is not a column of X.*"
                                         "'school'"):
        MultiTaskRegressor(task_col="sch").fit(_frame(), Y_STACKED)
    with pytest.raises(ValueError, match="task_col='sch'"):
        alpha_max(_frame(), Y_STACKED, task_col="sch")


def test_predict_rejects_unseen_task_label():
    model = _stacked().fit(X_STACKED, Y_STACKED)
    with pytest.raises(ValueError, match=r"Task labels \[5\] were not seen in fit.*"
                                         r"tasks \[3, 7\]"):
        model.predict(_with(X_STACKED, 0, -1, 5))
    with pytest.raises(ValueError, match="not seen in fit"):
        model.predict(sp.csr_matrix(_with(X_STACKED, 0, -1, 9)))
    named = MultiTaskRegressor(task_col="school").fit(_frame(), Y_STACKED)
    unseen = _frame()
    unseen.loc[2, "school"] = 4
    with pytest.raises(ValueError, match=r"Task labels \[4\] were not seen"):
        named.predict(unseen)


def test_predict_rejects_labels_of_another_type():
    model = _stacked().fit(X_STACKED, Y_STACKED)
    text = np.c_[X_SHARED.astype(object), np.array(["a"] * 20, dtype=object)]
    with pytest.raises(ValueError, match="fit saw 'i'-typed labels"):
        model.predict(text)


def test_predict_rejects_wrong_width_and_nan():
    model = MultiTaskRegressor().fit(X_SHARED, Y_SHARED)
    with pytest.raises(ValueError, match="X has 3 features.*expecting 4"):
        model.predict(X_SHARED[:, :3])
    with pytest.raises(ValueError, match="X contains NaN"):
        model.predict(_with(X_SHARED, 0, 0, np.nan))


# ------------------------------------------------------- inputs untouched
def _snapshot(value):
    if sp.issparse(value):
        return value.copy()
    if isinstance(value, pd.DataFrame):
        return value.copy(deep=True)
    if isinstance(value, dict):
        return dict(value)
    return np.array(value, copy=True)


def _assert_same(before, after):
    if sp.issparse(before):
        assert after.format == before.format
        for name in ("data", "indices", "indptr"):
            np.testing.assert_array_equal(getattr(after, name), getattr(before, name))
    elif isinstance(before, pd.DataFrame):
        pd.testing.assert_frame_equal(after, before)
    elif isinstance(before, dict):
        assert after == before
    else:
        np.testing.assert_array_equal(after, before)
        assert after.dtype == before.dtype


FORMATS = {"dense": np.array, "csr": sp.csr_matrix, "csc": sp.csc_matrix,
           "float32": lambda a: np.asarray(a, dtype=np.float32),
           "fortran": np.asfortranarray}


LAYOUT_FORMATS = [(layout, fmt) for layout in ("shared", "stacked")
                  for fmt in FORMATS] + [("dataframe", "dense")]


@pytest.mark.parametrize("layout,fmt", LAYOUT_FORMATS)
@pytest.mark.parametrize("penalty", ["l21", "l1", "l2", "trace"])
def test_user_arrays_are_never_modified(layout, fmt, penalty):
    if layout == "shared":
        X, y, task_col = X_SHARED, Y_SHARED, None
        task_weights = np.array([1.0, 2.0, 0.5])
    elif layout == "stacked":
        X, y, task_col = X_STACKED, Y_STACKED, -1
        task_weights = {3: 2.0, 7: 0.5}
    else:
        X, y, task_col = _frame(), Y_STACKED, "school"
        task_weights = np.array([2.0, 0.5])
    X = X if layout == "dataframe" else FORMATS[fmt](X)
    sample_weight = RNG.uniform(0.5, 2.0, len(y))
    inputs = {"X": X, "y": y, "sample_weight": sample_weight,
              "task_weights": task_weights}
    before = {name: _snapshot(value) for name, value in inputs.items()}

    model = MultiTaskRegressor(penalty=penalty, alpha=0.01, task_col=task_col,
                               task_weights=task_weights, warm_start=True)
    model.fit(X, y, sample_weight=sample_weight)
    model.fit(X, y, sample_weight=sample_weight)  # from the previous coef_
    model.predict(X)
    model.score(X, y, sample_weight=sample_weight)
    alpha_max(X, y, penalty="l21", task_col=task_col, sample_weight=sample_weight,
              task_weights=task_weights)
    for name, value in inputs.items():
        _assert_same(before[name], value)
    assert model.get_params()["task_weights"] is task_weights


def _read_only(a):
    for array in ((a.data, a.indices, a.indptr) if sp.issparse(a) else (a,)):
        array.setflags(write=False)
    return a


@pytest.mark.parametrize("layout", ["shared", "stacked"])
@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("penalty,solver", [("l21", "auto"), ("l1", "fista"),
                                            ("trace", "auto"), ("l2", "auto")])
def test_read_only_inputs(layout, sparse, penalty, solver):
    """Read-only buffers (memory maps, joblib's shared arrays) are accepted."""
    X, y, task_col = ((X_SHARED, Y_SHARED, None) if layout == "shared"
                      else (X_STACKED, Y_STACKED, -1))
    X = _read_only(sp.csr_matrix(X) if sparse else X.copy())
    y, s = _read_only(y.copy()), _read_only(np.ones(len(y)))
    model = MultiTaskRegressor(penalty=penalty, alpha=0.01, task_col=task_col,
                               solver=solver).fit(X, y, sample_weight=s)
    assert np.all(np.isfinite(model.predict(X)))


@pytest.mark.parametrize("estimator", [
    MultiTaskRegressor(penalty="l21", alpha=0.01),
    MultiTaskRegressor(penalty="l1", alpha=0.01)])
def test_unsorted_read_only_csc_is_left_untouched(estimator):
    # more features than samples (the residual state reads CSC columns) and
    # for the classifier its Newton columns: the user's matrix must not be
    # sorted in place, and read-only memory must work
    rng = np.random.default_rng(0)
    dense = rng.standard_normal((15, 40)) * (rng.random((15, 40)) < 0.3)
    X = sp.csc_matrix(dense)
    for j in range(X.shape[1]):  # reverse each column's indices
        lo, hi = X.indptr[j], X.indptr[j + 1]
        X.indices[lo:hi] = X.indices[lo:hi][::-1].copy()
        X.data[lo:hi] = X.data[lo:hi][::-1].copy()
    X.has_sorted_indices = False
    indices, data = X.indices.copy(), X.data.copy()
    for array in (X.indices, X.data, X.indptr):
        array.setflags(write=False)
    Y = dense[:, :3] @ np.ones((3, 2)) + 0.1 * rng.standard_normal((15, 2))
    model = estimator.fit(X, Y)
    np.testing.assert_array_equal(X.indices, indices)
    np.testing.assert_array_equal(X.data, data)
    reference = clone(estimator).fit(dense, Y)
    np.testing.assert_allclose(model.coef_, reference.coef_, atol=1e-6)
    labels = (Y > np.median(Y, axis=0)).astype(int)
    MultiTaskClassifier(penalty="l1", alpha=0.01).fit(X, labels)
    np.testing.assert_array_equal(X.indices, indices)


def _scrambled_csr(dense):
    """``dense`` as a CSR matrix whose rows hold their entries in reverse
    order, each split into two duplicates (0.3 and 0.7 of the value)."""
    data, indices, indptr = [], [], [0]
    for row in dense:
        for j in np.flatnonzero(row)[::-1]:
            data += [0.3 * row[j], 0.7 * row[j]]
            indices += [j, j]
        indptr.append(len(data))
    X = sp.csr_matrix((np.array(data), np.array(indices), np.array(indptr)),
                      shape=dense.shape)
    assert not X.has_sorted_indices
    return X


@pytest.mark.parametrize("penalty", ["l1", "l2", "l21", "trace"])
@pytest.mark.parametrize("classifier", [False, True])
def test_stacked_csr_with_unsorted_duplicate_entries(penalty, classifier):
    # the stacked CSR kernels read rows in any order, duplicates summed: the
    # fit equals the dense one, and the user's matrix stays as it was
    rng = np.random.default_rng(3)
    features = rng.standard_normal((90, 12)) * (rng.random((90, 12)) < 0.4)
    dense = np.column_stack([features, rng.integers(0, 3, 90)])
    X = _scrambled_csr(dense)
    data, indices = X.data.copy(), X.indices.copy()
    y = features @ rng.standard_normal(12) + 0.3 * rng.standard_normal(90)
    if classifier:
        y = (y > 0).astype(int)
    Estimator = MultiTaskClassifier if classifier else MultiTaskRegressor
    estimator = Estimator(penalty=penalty, alpha=0.01, task_col=-1, tol=1e-10)
    model = clone(estimator).fit(X, y)
    reference = clone(estimator).fit(dense, y)
    np.testing.assert_allclose(model.coef_, reference.coef_, atol=1e-6)
    np.testing.assert_array_equal(X.data, data)
    np.testing.assert_array_equal(X.indices, indices)


def test_large_float_task_labels_are_an_error_not_a_merge():
    X = np.column_stack([RNG.standard_normal((6, 2)),
                         np.repeat([2.0 ** 63, 2.0 ** 64, 3.0 * 2 ** 63], 2)])
    with pytest.raises(ValueError, match="below 2\\*\\*53"):
        MultiTaskRegressor(task_col=-1).fit(X, np.arange(6.0))


@pytest.mark.parametrize("weight", [np.inf, np.nan, -1.0])
def test_class_weight_must_be_finite_and_non_negative(weight):
    from mtlinear import MultiTaskClassifier
    y = np.tile([0, 1], 10)
    with pytest.raises(ValueError, match="class_weight must give finite"):
        MultiTaskClassifier(class_weight={1: weight, 0: 1.0}).fit(X_SHARED, y)


def test_failed_refit_leaves_the_fitted_model_as_it_was():
    X = np.column_stack([RNG.standard_normal((12, 3)), np.repeat([0, 1, 2], 4)])
    y = RNG.standard_normal(12)
    model = MultiTaskRegressor(alpha=0.01, task_col=-1).fit(X, y)
    state = {k: v.copy() if isinstance(v, np.ndarray) else v
             for k, v in vars(model).items()}
    before = model.predict(X)
    X_bad = X.copy()
    X_bad[:, -1] = np.repeat([5, 6, 7], 4)
    y_bad = y.copy()
    y_bad[0] = np.nan  # fails after the task labels were read
    with pytest.raises(ValueError):
        model.fit(X_bad, y_bad)
    assert set(vars(model)) == set(state)
    for key, value in state.items():
        np.testing.assert_array_equal(getattr(model, key), value, err_msg=key)
    np.testing.assert_array_equal(model.predict(X), before)


@pytest.mark.parametrize("cls", [MultiTaskRegressor, MultiTaskClassifier])
def test_a_diverged_solve_is_an_error_and_keeps_the_model(cls, monkeypatch):
    """An iterate that overflowed (unregularized logistic fits of School's
    raw features at alpha=0 ended on NaN weights, with a ConvergenceWarning
    only) is a clear error, and the fitted model stays as it was."""
    from mtlinear._solve import SolveResult
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3))
    y = X @ [1.0, -1.0, 0.5] + 0.1 * rng.standard_normal(40)
    Y = np.column_stack([y, -y]) if cls is MultiTaskRegressor else \
        np.column_stack([y > 0, y > 0.3]).astype(int)
    model = cls(alpha=0.01).fit(X, Y)
    coef = model.coef_.copy()

    def diverged(self, problem, loss, penalty, alpha, start, coupling, tol=None):
        W = np.full((problem.n_features, problem.n_tasks), np.nan)
        return SolveResult(W=W, b=None, gap=np.nan, tol_abs=1.0, n_iter=3)

    monkeypatch.setattr(cls, "_solve_at", diverged)
    with pytest.raises(ValueError, match="solver diverged .* at alpha=0"):
        model.set_params(alpha=0.0).fit(X, Y)
    np.testing.assert_array_equal(model.coef_, coef)
