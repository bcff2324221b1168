"""Memory of a dense stacked fit: the features are copied once.

The task column at an edge of ``X`` is dropped by a view, the rows are
regrouped by task into one Fortran-ordered array (no copy when they are
grouped already), and that array serves both the design's products and
proximal Newton's column access.  The fits here must match those on rows
grouped by hand, leave the user's arrays as they were and work on
read-only memory.
"""
import tracemalloc

import numpy as np
import pytest
from sklearn.base import clone

from mtlinear import MultiTaskClassifier, MultiTaskRegressor, stack_tasks
from mtlinear._design import stacked_matvec, stacked_rmatvec
from mtlinear._task_data import (build_problem, encode_task_labels,
                                 split_task_column)

TIGHT = dict(tol=1e-10, max_iter=100_000)


def _stacked(n, d=20, n_tasks=50, classify=True, seed=0):
    """Features, task labels in random row order, and targets."""
    rng = np.random.default_rng(seed)
    features = rng.standard_normal((n, d))
    task = rng.integers(0, n_tasks, n)
    y = np.einsum("ij,ij->i", features, rng.standard_normal((n_tasks, d))[task])
    y += rng.standard_normal(n)
    return features, task, (y > 0 if classify else y)


def _with_task_column(features, task, position):
    """``features`` with the task labels inserted as column ``position``."""
    return np.insert(features, position, task, axis=1)


# ------------------------------------------------------- peak memory
@pytest.mark.parametrize("estimator", [MultiTaskClassifier(alpha=0.01),
                                       MultiTaskRegressor(alpha=0.01)],
                         ids=["classifier", "regressor"])
@pytest.mark.parametrize("position, dtype", [(-1, np.float64), (7, np.float64),
                                             (-1, np.float32), (7, np.float32)],
                         ids=["last", "middle", "last-float32",
                              "middle-float32"])
def test_stacked_fit_copies_the_features_once(estimator, position, dtype):
    """Extra peak allocations of a fit on rows in random task order: one
    float64 copy of the features plus sample-sized vectors, at most 1.5x
    the features in float64 (the input itself, or twice a float32 input),
    wherever the task column is (before: 4.4x for the classifier, which kept
    a copy without the task column, a regrouped one and a Fortran-ordered
    one, and 2.4x for the regressor; a task column in the middle or float32
    features, validated into a copy and then regrouped, 2.2x and 4.5x the
    input)."""
    classify = isinstance(estimator, MultiTaskClassifier)
    features, task, y = _stacked(100_000, classify=classify)
    X = _with_task_column(features, task, position % 21).astype(dtype)
    model = clone(estimator).set_params(task_col=position)
    model.fit(X[:2000], y[:2000])  # the compiled kernels loaded first
    tracemalloc.start()
    try:
        model.fit(X, y)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak <= 1.5 * (features.nbytes + y.nbytes)


# ------------------------------------------------------- the regrouped design
@pytest.mark.parametrize("position", [0, 3, 8])
@pytest.mark.parametrize("order", ["C", "F"])
def test_one_gather_gives_the_regrouped_features(position, order):
    """The design holds exactly the features without the task column, rows
    stably grouped by task (what deleting the column and then regrouping
    gave), in Fortran order."""
    features, task, y = _stacked(3000, d=8, n_tasks=7, classify=False)
    X = np.asarray(_with_task_column(features, task, position), order=order)
    kept, labels = split_task_column(X, position)
    _, task_index = encode_task_labels(labels)
    problem = build_problem(kept, y, task_index, fit_intercept=True)
    expected = np.delete(X, position, axis=1)[np.argsort(task_index,
                                                         kind="stable")]
    np.testing.assert_array_equal(problem.design.X, expected)
    assert problem.design.X.flags.f_contiguous


def test_rows_grouped_by_task_are_used_in_place():
    """Grouped rows with the task column last: the design is a view of the
    user's array (no copy), which the fit leaves unchanged."""
    features, task, y = _stacked(3000, d=8, n_tasks=7, classify=False)
    order = np.argsort(task, kind="stable")
    X = _with_task_column(features[order], task[order], 8)
    before = X.copy()
    kept, labels = split_task_column(X, -1)
    problem = build_problem(kept, y[order], encode_task_labels(labels)[1])
    assert np.shares_memory(problem.design.X, X)
    MultiTaskClassifier(alpha=0.01, task_col=-1).fit(X, y[order] > 0)
    MultiTaskRegressor(alpha=0.01, task_col=-1).fit(X, y[order])
    np.testing.assert_array_equal(X, before)


def _fit_both(estimator, X, y, task, position, sample_weight):
    """Coefficients of a fit on ``X`` as given and of one on the rows
    grouped by hand (per-task arrays stacked, task column last)."""
    model = clone(estimator).set_params(task_col=position, **TIGHT)
    model.fit(X, y, sample_weight=sample_weight)
    features = np.delete(np.asarray(X), position, axis=1)
    labels = np.unique(task)
    X_ref, y_ref = stack_tasks([features[task == t] for t in labels],
                               [y[task == t] for t in labels], labels)
    s_ref = np.concatenate([sample_weight[task == t] for t in labels])
    reference = clone(estimator).set_params(task_col=-1, **TIGHT)
    reference.fit(X_ref, y_ref, sample_weight=s_ref)
    return model, reference


@pytest.mark.parametrize("estimator", [
    MultiTaskClassifier(penalty="l21", alpha=0.01),
    MultiTaskClassifier(penalty="l1", alpha=0.005, class_weight="balanced"),
    MultiTaskClassifier(penalty="trace", alpha=0.01),
    MultiTaskRegressor(penalty="l21", alpha=0.01),
    MultiTaskRegressor(penalty="trace", alpha=0.01)],
    ids=["clf-l21", "clf-l1-balanced", "clf-trace", "reg-l21", "reg-trace"])
@pytest.mark.parametrize("position", [0, 4, -1])
def test_fit_on_random_task_order_matches_rows_grouped_by_hand(estimator,
                                                               position):
    classify = isinstance(estimator, MultiTaskClassifier)
    features, task, y = _stacked(1500, d=8, n_tasks=5, classify=classify,
                                 seed=1)
    X = _with_task_column(features, task, position % 9)
    sample_weight = np.random.default_rng(2).uniform(0.5, 2.0, len(y))
    model, reference = _fit_both(estimator, X, y, task, position,
                                 sample_weight)
    np.testing.assert_allclose(model.coef_, reference.coef_, rtol=1e-6,
                               atol=1e-8)
    np.testing.assert_allclose(model.intercept_, reference.intercept_,
                               rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("estimator", [MultiTaskClassifier(alpha=0.01),
                                       MultiTaskRegressor(alpha=0.01)],
                         ids=["classifier", "regressor"])
@pytest.mark.parametrize("grouped", [False, True])
def test_read_only_memory_map(estimator, grouped, tmp_path):
    """A read-only memory map, task column last (its features are a view of
    the map): in random task order it is regrouped without being written;
    grouped and in Fortran order, the kernels read it in place."""
    classify = isinstance(estimator, MultiTaskClassifier)
    features, task, y = _stacked(2000, d=8, n_tasks=5, classify=classify)
    order = np.argsort(task, kind="stable") if grouped else np.arange(len(y))
    X = _with_task_column(features[order], task[order], 8)
    y = y[order]
    path = tmp_path / "X.npy"
    np.save(path, np.asfortranarray(X) if grouped else X)
    X = np.load(path, mmap_mode="r")
    model = clone(estimator).set_params(task_col=-1).fit(X, y)
    reference = clone(estimator).set_params(task_col=-1).fit(np.array(X), y)
    np.testing.assert_allclose(model.coef_, reference.coef_, rtol=1e-7,
                               atol=1e-10)
    np.testing.assert_array_equal(X, np.load(path))


@pytest.mark.parametrize("estimator", [MultiTaskClassifier(alpha=0.01),
                                       MultiTaskRegressor(alpha=0.01)],
                         ids=["classifier", "regressor"])
@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.float16])
def test_features_of_another_dtype_converted_once(estimator, dtype):
    """Features not in float64, task column in the middle: converted while
    they are regrouped, the fit equals the one on their float64 values and
    the user's array is left as it was."""
    classify = isinstance(estimator, MultiTaskClassifier)
    features, task, y = _stacked(1500, d=6, n_tasks=5, classify=classify)
    X = _with_task_column(np.round(4 * features), task, 3).astype(dtype)
    before = X.copy()
    model = clone(estimator).set_params(task_col=3, **TIGHT).fit(X, y)
    reference = clone(estimator).set_params(task_col=3, **TIGHT).fit(
        X.astype(np.float64), y)
    np.testing.assert_allclose(model.coef_, reference.coef_, rtol=1e-12,
                               atol=1e-14)
    np.testing.assert_array_equal(X, before)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("position", [0, 3, -1])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_features_are_refused_wherever_the_task_column(dtype,
                                                                  position,
                                                                  bad):
    features, task, y = _stacked(200, d=6, n_tasks=3, classify=False)
    features[150, 2] = bad
    X = _with_task_column(features, task, position % 7).astype(dtype)
    message = "NaN" if np.isnan(bad) else "infinity"
    with pytest.raises(ValueError, match=f"Input X contains {message}"):
        MultiTaskRegressor(task_col=position).fit(X, y)


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # np.matrix
@pytest.mark.parametrize("container", [np.asmatrix, np.asfortranarray])
def test_other_array_containers_fit_as_arrays(container):
    features, task, y = _stacked(300, d=5, n_tasks=3, classify=False)
    X = _with_task_column(features, task, 2)
    model = MultiTaskRegressor(alpha=0.01, task_col=2, **TIGHT)
    np.testing.assert_allclose(clone(model).fit(container(X), y).coef_,
                               clone(model).fit(X, y).coef_, rtol=1e-10)


def test_failed_fit_leaves_the_model_as_it_was():
    features, task, y = _stacked(600, d=4, n_tasks=3)
    X = _with_task_column(features, task, 4)
    model = MultiTaskClassifier(alpha=0.01, task_col=-1).fit(X, y)
    coef = model.coef_.copy()
    weights = np.where(task == 1, 0.0, 1.0)  # a task without weight
    with pytest.raises(ValueError, match="weight"):
        model.fit(X[::-1], y[::-1], sample_weight=weights[::-1])
    np.testing.assert_array_equal(model.coef_, coef)


# ------------------------------------------------------- stacked products
@pytest.mark.parametrize("layout", ["C", "F", "strided", "csr", "csc"])
def test_stacked_products_in_any_memory_order(layout):
    """The row kernels (C order, strided views, CSR) and the column kernels
    (Fortran order, CSC) compute the same products, empty tasks included
    (first, inside and last: a column's walk over the tasks skips them)."""
    import scipy.sparse as sp
    from mtlinear._design import (_stacked_csc_rmatvec_pair, sorted_csc,
                                  unsigned_view)
    rng = np.random.default_rng(0)
    counts = np.array([0, 5, 0, 17, 1, 9, 0])
    T = counts.size
    task_ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    X = rng.standard_normal((counts.sum(), 7)) * (rng.random((counts.sum(), 7))
                                                  < 0.6)
    W, r = rng.standard_normal((7, T)), rng.standard_normal(counts.sum())
    task = np.repeat(np.arange(T), counts)
    expected_z = np.einsum("ij,ji->i", X, W[:, task])
    expected_G = np.array([r[task == t] @ X[task == t] for t in range(T)])
    if layout == "F":
        X = np.asfortranarray(X)
    elif layout == "strided":
        X = np.column_stack([X, task])[:, :-1]
    elif layout == "csr":
        X = sp.csr_matrix(X)
    elif layout == "csc":
        X = sorted_csc(sp.csr_matrix(X))
        q = rng.standard_normal(counts.sum())
        G, H = _stacked_csc_rmatvec_pair(
            X.data, unsigned_view(X.indices), unsigned_view(X.indptr), r, q,
            unsigned_view(task_ptr))
        np.testing.assert_allclose(G.T, expected_G, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(
            H.T, [q[task == t] @ X.toarray()[task == t] for t in range(T)],
            rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(stacked_matvec(X, W, task_ptr), expected_z,
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(stacked_rmatvec(X, r, task_ptr), expected_G,
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("layout", ["shared", "stacked", "stacked_csr",
                                    "classes"])
@pytest.mark.parametrize("centred", [False, True])
def test_gap_with_data_gradient_is_the_gap_and_the_gradient(layout, centred):
    """Newton-CG's certificate from one pass over ``X``
    (``gap_and_data_gradient``, through ``rmatmat_pair``) equals the plain
    duality gap and ``X_c^T F'(Z)`` computed apart, with an intercept
    variable (a balanced dual point) and without; empty tasks included."""
    import scipy.sparse as sp
    from mtlinear._datafit import SampleDatafit
    from mtlinear._design import SharedDesign, StackedDesign
    from mtlinear._multinomial import ClassExpandedDesign, MultinomialLoss
    from mtlinear.losses import LogisticLoss
    from mtlinear.penalties import make_penalty
    rng = np.random.default_rng(3)
    counts = np.array([7, 0, 12, 5])
    n, d, T = counts.sum(), 6, counts.size
    task_ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    X = rng.standard_normal((n, d)) * (rng.random((n, d)) < 0.6)
    loss = LogisticLoss()
    if layout == "shared":
        design = SharedDesign(X, T, rng.standard_normal(d) if centred else None)
        y = (rng.random((n, T)) < 0.4).astype(float)
    else:
        base = StackedDesign(sp.csr_matrix(X) if layout == "stacked_csr" else X,
                             task_ptr,
                             rng.standard_normal((T, d)) if centred else None)
        design, y = base, (rng.random(n) < 0.4).astype(float)
        if layout == "classes":
            design, loss = ClassExpandedDesign(base, 3), MultinomialLoss(3)
            y = np.eye(3)[rng.integers(0, 3, n)]  # one-hot classes
    T_all = design.n_tasks
    v = rng.random(y.shape[0]) + 0.5
    v = v[:, None] * np.ones((1, y.shape[1])) if y.ndim == 2 else v
    for intercept in (False, True):
        problem = type("Problem", (), dict(design=design, y=y, v=v,
                                           intercept_variable=intercept))
        datafit = SampleDatafit(loss, problem)
        W = rng.standard_normal((d, T_all))
        b = rng.standard_normal(T_all) if intercept else None
        penalty = make_penalty("l2", 0.1)
        Z = datafit.linear_predictor(W, b)
        D = loss.derivative(Z, y, v)
        primal, gap, G = datafit.gap_and_data_gradient(W, b, penalty, Z, D)
        expected = datafit.gap_and_gradient(W, b, penalty)
        np.testing.assert_allclose([primal, gap], expected[:2], rtol=1e-12)
        np.testing.assert_allclose(G, design.rmatmat(D), rtol=1e-12,
                                   atol=1e-12)


@pytest.mark.parametrize("column", [0, 3, -1])
def test_sparse_task_column_split_in_csr(column):
    """The task column of a CSR matrix is split off without leaving CSR: the
    same features and labels as through CSC, with unsorted indices,
    duplicate entries, explicit zeros and label 0 (no stored entry); the
    user's arrays are left as they were."""
    import scipy.sparse as sp
    from mtlinear._task_data import split_task_column
    rng = np.random.default_rng(2)
    dense = rng.standard_normal((30, 6)) * (rng.random((30, 6)) < 0.5)
    j = column % 6
    dense[:, j] = rng.integers(0, 4, 30)
    X = sp.csr_matrix(dense)
    # scramble the rows' entries and add a duplicate of some task entries
    order = np.concatenate([rng.permutation(np.arange(lo, hi))
                            for lo, hi in zip(X.indptr[:-1], X.indptr[1:])])
    data, indices = X.data[order], X.indices[order]
    rows = np.repeat(np.arange(30), np.diff(X.indptr))
    twice = np.flatnonzero((indices == j) & (rows % 3 == 0))
    data = np.concatenate([data, np.zeros(1)] + [np.zeros(0)])
    indices = np.concatenate([indices, [(j + 1) % 6]])
    rows = np.concatenate([rows[order], [5]])
    halves = data[twice] / 2
    data[twice] = halves
    data = np.concatenate([data, halves])
    indices = np.concatenate([indices, np.full(twice.size, j)])
    rows = np.concatenate([rows, rows[twice]])
    by_row = np.argsort(rows, kind="stable")
    messy = sp.csr_matrix((data[by_row], indices[by_row],
                           np.concatenate([[0], np.cumsum(np.bincount(
                               rows, minlength=30))])), shape=(30, 6))
    before = (messy.data.copy(), messy.indices.copy(), messy.indptr.copy())
    features, labels = split_task_column(messy, column)
    assert features.format == "csr"
    np.testing.assert_allclose(labels, dense[:, j], atol=1e-15)
    np.testing.assert_allclose(features.toarray(), np.delete(dense, j, axis=1),
                               atol=1e-15)
    via_csc, labels_csc = split_task_column(messy.tocsc(), column)
    np.testing.assert_allclose(features.toarray(), via_csc.toarray(),
                               atol=1e-15)
    np.testing.assert_allclose(labels, labels_csc, atol=1e-15)
    for kept, array in zip(before, (messy.data, messy.indices, messy.indptr)):
        np.testing.assert_array_equal(kept, array)


@pytest.mark.parametrize("mix,plain", [(0.0, 0), (0.01, 0), (1.0, 0),
                                       (0.01, 3)])
@pytest.mark.parametrize("centred", [False, True])
@pytest.mark.parametrize("intercept", [False, True])
def test_compiled_conjugate_gradients_solve_the_newton_system(centred,
                                                              intercept, mix,
                                                              plain):
    """The sparse stacked design's compiled conjugate gradients
    (``curvature_cg``), plain (``mix = 0``) and preconditioned by the
    curvature's diagonal from the start or after a restart (``plain``
    iterations first), solve each task's Newton system ``(H_t + mu) s_t =
    -g_t``, formed here in numpy (the intercept last), to a tight forcing,
    and return ``X_c s_W + s_b``; empty tasks, zero curvatures and columns
    scaled over four decades included."""
    import scipy.sparse as sp
    from mtlinear._design import StackedDesign
    rng = np.random.default_rng(4)
    counts = np.array([9, 0, 14, 6])
    n, d, T = counts.sum(), 7, counts.size
    task_ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    X = (rng.standard_normal((n, d)) * (rng.random((n, d)) < 0.5)
         * np.logspace(-2, 2, d))
    x_mean = rng.standard_normal((T, d)) if centred else None
    h = rng.random(n)
    h[3] = 0.0
    mu = 0.3
    g = (rng.standard_normal((d, T)), rng.standard_normal(T) if intercept
         else np.zeros(T))
    g[1][counts == 0] = 0.0  # a task sum over no rows
    design = StackedDesign(sp.csr_matrix(X), task_ptr, x_mean)
    (sW, sb), dz = design.curvature_cg(h, g, mu, intercept,
                                       np.full(T, 1e-13), 500, mix, plain)
    for t in range(T):
        rows = slice(task_ptr[t], task_ptr[t + 1])
        A = X[rows] - (0.0 if x_mean is None else x_mean[t])
        if intercept:
            A = np.column_stack([A, np.ones(counts[t])])
        H = A.T @ (h[rows, None] * A) + mu * np.diag(
            [1.0] * d + ([0.0] if intercept else []))
        rhs = -np.concatenate([g[0][:, t], [g[1][t]] if intercept else []])
        if counts[t] == 0:
            H[:d, :d] = mu * np.eye(d)
            if intercept:  # no rows: no curvature, no gradient
                H[d, d] = 1.0
        expected = np.linalg.solve(H, rhs)
        np.testing.assert_allclose(sW[:, t], expected[:d], rtol=1e-8,
                                   atol=1e-10)
        if intercept and counts[t]:
            assert sb[t] == pytest.approx(expected[d], rel=1e-8, abs=1e-10)
        np.testing.assert_allclose(
            dz[rows], A @ np.concatenate([sW[:, t], [sb[t]]] if intercept
                                         else [sW[:, t]]), atol=1e-10)


@pytest.mark.parametrize("layout", ["shared-dense", "shared-sparse",
                                    "stacked-dense-C", "stacked-dense-F",
                                    "stacked-sparse"])
@pytest.mark.parametrize("centred", [False, True])
def test_curvature_diagonal(layout, centred):
    """``curvature_diagonal`` is the diagonal of each task's ``X_c^T
    diag(h_t) X_c``, formed here in numpy from the centred rows; a constant
    column (centred: all zero) and an empty task included."""
    import scipy.sparse as sp
    from mtlinear._design import SharedDesign, StackedDesign
    rng = np.random.default_rng(5)
    n, d = 30, 6
    X = rng.standard_normal((n, d)) * (rng.random((n, d)) < 0.5) * 1e3
    X[:, 2] = 7.0
    if layout.startswith("shared"):
        T = 3
        x_mean = X.mean(axis=0) if centred else None
        h = rng.random((n, T))
        design = SharedDesign(sp.csr_matrix(X) if layout.endswith("sparse")
                              else X, T, x_mean)
        blocks = [slice(None)] * T
        means = [x_mean] * T
    else:
        counts = np.array([9, 0, 14, 7])
        T = counts.size
        task_ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        blocks = [slice(task_ptr[t], task_ptr[t + 1]) for t in range(T)]
        means = [X[rows].mean(axis=0) if centred and counts[t] else
                 np.zeros(d) if centred else None
                 for t, rows in enumerate(blocks)]
        x_mean = np.array(means) if centred else None
        h = rng.random(n)
        Xd = (sp.csr_matrix(X) if layout.endswith("sparse") else
              np.asfortranarray(X) if layout.endswith("F") else X)
        design = StackedDesign(Xd, task_ptr, x_mean)
    D = design.curvature_diagonal(h)
    assert D.shape == (d, T)
    for t, rows in enumerate(blocks):
        A = X[rows] - (0.0 if means[t] is None else means[t])
        ht = h[:, t] if h.ndim == 2 else h[rows]
        expected = np.einsum("i,ij,ij->j", ht, A, A)
        np.testing.assert_allclose(D[:, t], expected, rtol=1e-10,
                                   atol=1e-9 * np.abs(X).max() ** 2)


@pytest.mark.parametrize("layout", ["stacked-dense", "stacked-csr",
                                    "stacked-csr-unsorted-duplicates"])
def test_curvature_blocks(layout):
    """A stacked design's ``curvature_blocks`` are each task's ``X_t^T
    diag(h_t) X_t``, formed here in numpy: an empty task, rows of zero
    curvature, and a CSR matrix with unsorted indices and a column stored
    twice in a row (its entries add up, as scipy's do)."""
    import scipy.sparse as sp
    from mtlinear._design import StackedDesign
    rng = np.random.default_rng(6)
    n, d = 30, 5
    X = rng.standard_normal((n, d)) * (rng.random((n, d)) < 0.6)
    counts = np.array([9, 0, 14, 7])
    task_ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    h = rng.random(n)
    h[::4] = 0.0
    if layout == "stacked-dense":
        Xd = X
    else:
        Xd = sp.csr_matrix(X)
        if layout.endswith("duplicates"):
            # row 3 stores column 1 twice (0.25 + (X[3, 1] - 0.25)),
            # its entries reversed
            lo, hi = Xd.indptr[3], Xd.indptr[4]
            row = dict(zip(Xd.indices[lo:hi], Xd.data[lo:hi]))
            row.pop(1, None)
            cols = [1] + list(row)[::-1] + [1]
            vals = [0.25] + list(row.values())[::-1] + [X[3, 1] - 0.25]
            indices = np.concatenate([Xd.indices[:lo], cols, Xd.indices[hi:]])
            data = np.concatenate([Xd.data[:lo], vals, Xd.data[hi:]])
            indptr = Xd.indptr.copy()
            indptr[4:] += len(cols) - (hi - lo)
            Xd = sp.csr_matrix((data, indices, indptr), shape=X.shape)
            assert not Xd.has_sorted_indices
            np.testing.assert_allclose(Xd.toarray(), X, atol=1e-15)
    Q = StackedDesign(Xd, task_ptr, None).curvature_blocks(h)
    assert Q.shape == (counts.size, d, d)
    for t in range(counts.size):
        rows = slice(task_ptr[t], task_ptr[t + 1])
        expected = X[rows].T @ (h[rows, None] * X[rows])
        np.testing.assert_allclose(Q[t], expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo-duplicates", "int-csr"])
def test_weighted_gram_of_sparse_matrices(fmt):
    """``weighted_gram`` of a sparse matrix in any format is ``X^T diag(w)
    X`` formed densely (zero weights, a COO matrix with repeated entries,
    integer values), and the shared layout's Newton blocks are those."""
    import scipy.sparse as sp
    from mtlinear._design import SharedDesign, weighted_gram
    rng = np.random.default_rng(7)
    n, d = 25, 6
    X = rng.integers(-3, 4, (n, d)) * (rng.random((n, d)) < 0.5)
    if fmt != "int-csr":
        X = X * rng.standard_normal((n, d))
    w = rng.random(n)
    w[::3] = 0.0
    if fmt == "coo-duplicates":  # every entry stored as two halves
        r, c = np.nonzero(X)
        v = X[r, c]
        S = sp.coo_matrix((np.r_[0.5 * v, 0.5 * v], (np.r_[r, r], np.r_[c, c])),
                          shape=X.shape)
    else:
        S = {"csr": sp.csr_matrix, "csc": sp.csc_matrix,
             "int-csr": sp.csr_matrix}[fmt](X)
    expected = X.T @ (w[:, None] * X)
    np.testing.assert_allclose(weighted_gram(S, w), expected, rtol=1e-12,
                               atol=1e-12)
    H = rng.random((n, 3))
    blocks = SharedDesign(sp.csr_matrix(S, dtype=float), 3).curvature_blocks(H)
    for t in range(3):
        np.testing.assert_allclose(blocks[t], X.T @ (H[:, t, None] * X),
                                   rtol=1e-12, atol=1e-12)
