"""A sparse stacked design in either format: CSR or CSC (sorted indices).

The task column's split gives CSC when the fit's solvers read columns
(coordinate descent, proximal Newton), so that one copy of the features
serves the products and the column access; CSR when a solver walks rows
(Newton-CG).  Every product must be the same whichever the format, checked
here against dense arithmetic, and fits must not depend on it.
"""
import numpy as np
import pytest
import scipy.sparse as sp

from mtlinear import MultiTaskClassifier, MultiTaskRegressor
from mtlinear._design import StackedDesign, unsigned_view
from mtlinear._prox_newton import DesignColumns
from mtlinear._solve import reads_rows
from mtlinear._task_data import (_csr_to_csc_moved, build_problem,
                                 split_task_column)
from mtlinear.losses import LogisticLoss
from mtlinear.penalties import make_penalty


def _csr_with_task_column(n, d, position, seed, index=np.int32):
    """A random CSR matrix whose column ``position`` holds task labels 1-4
    (rows in random task order), with empty rows, explicit zeros and, in
    the first row, the label stored as two entries (summed, as scipy's)."""
    rng = np.random.default_rng(seed)
    A = sp.random(n, d, density=0.3, random_state=seed).toarray()
    A[rng.integers(n, size=3)] = 0.0  # some rows with no feature
    A = np.insert(A, position, rng.integers(1, 5, n), axis=1)
    X = sp.csr_matrix(A)
    X.data[1::7] = 0.0  # explicit zeros (task labels among them)
    first = np.flatnonzero(X.indices[:X.indptr[1]] == position)[0]
    X = sp.csr_matrix((np.insert(X.data, first, 0.5),
                       np.insert(X.indices, first, position),
                       X.indptr + (np.arange(n + 1) > 0)), shape=X.shape)
    X.data[first + 1] -= 0.5
    X.indices, X.indptr = X.indices.astype(index), X.indptr.astype(index)
    return X


@pytest.mark.parametrize("position", [0, 4, 9])
@pytest.mark.parametrize("index", [np.int32, np.int64])
def test_split_to_csc_is_the_csr_split_in_columns(position, index):
    X = _csr_with_task_column(60, 9, position, seed=position, index=index)
    before = X.copy()
    rows, labels = split_task_column(X, position)
    columns, labels_c = split_task_column(X, position, columns=True)
    assert columns.format == "csc" and rows.format == "csr"
    starts = columns.indptr[1:-1]  # rows rise within every column
    starts = starts[(starts > 0) & (starts < columns.nnz)]
    inside = np.ones(columns.nnz - 1, dtype=bool)
    inside[starts - 1] = False
    assert np.all(np.diff(columns.indices)[inside] > 0)
    assert columns.has_sorted_indices
    np.testing.assert_array_equal(labels_c, labels)
    np.testing.assert_array_equal(labels, X.toarray()[:, position])
    np.testing.assert_array_equal(columns.toarray(), rows.toarray())
    np.testing.assert_array_equal(
        columns.toarray(), np.delete(X.toarray(), position, axis=1))
    assert abs(X - before).nnz == 0  # the user's matrix untouched
    # the kernel's 64-bit indices (taken for over 2**31 rows or entries)
    move = np.arange(X.shape[1]) - (np.arange(X.shape[1]) > position)
    move[position] = X.shape[1] - 1
    data, indices, indptr, last = _csr_to_csc_moved(
        X.data, unsigned_view(X.indices), unsigned_view(X.indptr),
        move.astype(np.uint64))
    assert indices.dtype == indptr.dtype == np.uint64
    np.testing.assert_array_equal(last, labels)
    wide = sp.csc_matrix((data, indices.view(np.int64), indptr.view(np.int64)),
                         shape=X.shape)
    np.testing.assert_array_equal(wide[:, :-1].toarray(), rows.toarray())


@pytest.mark.parametrize("position", [0, 4, 9])
def test_csc_split_is_the_csr_split_and_views_an_edge_column(position):
    """A CSC ``X`` (what a user passes for a solver that reads columns)
    splits without a copy when the task column is the first or the last;
    the fit never writes to those arrays (made read-only here)."""
    X = _csr_with_task_column(60, 9, position, seed=position)
    rows, labels = split_task_column(X, position)
    C = sp.csc_matrix(X)
    for array in (C.data, C.indices, C.indptr):
        array.setflags(write=False)
    features, labels_c = split_task_column(C, position)
    assert features.format == "csc"
    np.testing.assert_array_equal(labels_c, labels)
    np.testing.assert_array_equal(features.toarray(), rows.toarray())
    assert np.shares_memory(features.data, C.data) == (position in (0, 9))
    y = np.arange(60) % 3 == 0
    for penalty in ("l1", "l2"):
        model = MultiTaskClassifier(penalty=penalty, alpha=0.01,
                                    task_col=position, tol=1e-12)
        from_csc = model.fit(C, y).coef_
        np.testing.assert_allclose(from_csc, model.fit(X, y).coef_,
                                   atol=1e-9)


@pytest.mark.parametrize("position", [0, 9])
def test_csc_views_say_whether_their_columns_are_sorted(position):
    """The views of an edge split carry X's sortedness (not recomputed per
    fit): true for sorted columns, false for unsorted ones, whose fit then
    sorts a copy and equals the sorted one."""
    X = _csr_with_task_column(60, 9, position, seed=position)
    y = np.arange(60) % 3 == 0
    fits = []
    for C in (sp.csc_matrix(X), _unsorted_csc(X)):
        features, _ = split_task_column(C, position)
        truth = sp.csc_matrix((features.data, features.indices,
                               features.indptr), shape=features.shape)
        assert features.has_sorted_indices == truth.has_sorted_indices
        model = MultiTaskClassifier(penalty="l1", alpha=0.01,
                                    task_col=position, tol=1e-12)
        fits.append(model.fit(C, y).coef_)
    np.testing.assert_allclose(fits[1], fits[0], atol=1e-10)


def _design_pair(seed, sizes, centred):
    """The same stacked design as CSR and as CSC, and its dense array."""
    rng = np.random.default_rng(seed)
    ptr = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    n, d = int(ptr[-1]), 7
    A = sp.random(n, d, density=0.4, random_state=seed, format="csr")
    mean = rng.standard_normal((len(sizes), d)) if centred else None
    return (StackedDesign(A, ptr, mean),
            StackedDesign(sp.csc_matrix(A), ptr, mean), A.toarray(), ptr, mean)


def _unsorted_csc(A):
    """``A`` as CSC with each column's entries in reverse row order."""
    C = sp.csc_matrix(A)
    order = np.concatenate([np.arange(b - 1, a - 1, -1)
                            for a, b in zip(C.indptr[:-1], C.indptr[1:])])
    C = sp.csc_matrix((C.data[order], C.indices[order], C.indptr),
                      shape=C.shape)
    C.has_sorted_indices = False
    return C


@pytest.mark.parametrize("sizes", [[5, 8, 6], [0, 9, 0, 7]],
                         ids=["tasks", "empty-tasks"])
@pytest.mark.parametrize("centred", [False, True])
def test_stacked_products_are_the_dense_ones_in_both_formats(sizes, centred):
    rows, cols, A, ptr, mean = _design_pair(1, sizes, centred)
    rng = np.random.default_rng(2)
    T, n = len(sizes), A.shape[0]
    W = rng.standard_normal((A.shape[1], T))
    r, q = rng.standard_normal(n), rng.standard_normal(n)
    h = rng.random(n)
    task = np.repeat(np.arange(T), sizes)
    Ac = A - (mean[task] if centred else 0.0)  # each row centred by its task
    expected_z = np.einsum("ij,ji->i", Ac, W[:, task])
    expected_g = np.stack([Ac[task == t].T @ r[task == t] for t in range(T)], 1)
    expected_h = np.stack([Ac[task == t].T @ q[task == t] for t in range(T)], 1)
    expected_diag = np.stack([(h[task == t] @ Ac[task == t] ** 2)
                              for t in range(T)], 1)
    unsorted = _unsorted_csc(A)
    before = unsorted.indices.copy()
    shuffled = StackedDesign(unsorted, ptr, mean)  # sorted for the kernels
    np.testing.assert_array_equal(unsorted.indices, before)  # not in place
    for design in (rows, cols, shuffled):
        np.testing.assert_allclose(design.matmat(W), expected_z, atol=1e-12)
        np.testing.assert_allclose(design.rmatmat(r), expected_g, atol=1e-12)
        g, g2 = design.rmatmat_pair(r, q)
        np.testing.assert_allclose(g, expected_g, atol=1e-12)
        np.testing.assert_allclose(g2, expected_h, atol=1e-12)
        np.testing.assert_allclose(design.curvature_diagonal(h), expected_diag,
                                   atol=1e-12)
        Q, _, C, yy = design.gram_statistics(r, h)
        for t in range(T):
            At = Ac[task == t]
            np.testing.assert_allclose(Q[t], At.T @ (h[task == t, None] * At),
                                       atol=1e-12)
        np.testing.assert_allclose(C, np.stack(
            [Ac[task == t].T @ (h * r)[task == t] for t in range(T)], 1),
            atol=1e-12)
        assert design.lipschitz(h) == pytest.approx(
            max(np.linalg.norm(np.sqrt(h[task == t, None]) * Ac[task == t], 2)
                ** 2 if (task == t).any() else 0.0 for t in range(T)),
            rel=1e-6)
    g = (rng.standard_normal((A.shape[1], T)), rng.standard_normal(T))
    forcing = np.full(T, 1e-12)
    (sW_r, sb_r), dz_r = rows.curvature_cg(h, g, 0.5, True, forcing, 200)
    (sW_c, sb_c), dz_c = cols.curvature_cg(h, g, 0.5, True, forcing, 200)
    np.testing.assert_allclose(sW_c, sW_r, atol=1e-10)
    np.testing.assert_allclose(sb_c, sb_r, atol=1e-10)
    np.testing.assert_allclose(dz_c, dz_r, atol=1e-10)
    assert sp.issparse(cols.X) and cols.X.format == "csc"  # rows on the side


def _fit_data(seed=0, n=400, d=30, position=12):
    rng = np.random.default_rng(seed)
    F = sp.random(n, d, density=0.2, random_state=seed, format="csr")
    task = rng.integers(0, 3, n)
    X = sp.hstack([F[:, :position], sp.csr_matrix(task[:, None].astype(float)),
                   F[:, position:]], format="csr")
    z = F @ rng.standard_normal(d) + 0.5 * rng.standard_normal(n)
    return X, F, task, z


@pytest.mark.parametrize("penalty, l1_ratio, reads", [
    ("l1", 1.0, False), ("l21", 0.7, False), ("l2", 1.0, True),
    ("l1", 0.0, True)])
def test_the_split_gives_the_format_the_solver_reads(penalty, l1_ratio, reads):
    """One copy of the features for one solve: CSC for proximal Newton,
    shared with its column access; CSR for Newton-CG (a ridge alone)."""
    X, F, task, z = _fit_data()
    model = MultiTaskClassifier(penalty=penalty, l1_ratio=l1_ratio, task_col=12)
    assert reads_rows(LogisticLoss(), make_penalty(penalty, 1.0, l1_ratio)) \
        == reads
    features, Y, task_index, _, omega = model._validate_fit_data(
        X, z > 0, None, task_order=True, one_solve=True)
    assert features.format == ("csr" if reads else "csc")
    # a path or a cross-validation runs many products: CSR, the faster
    assert model._validate_fit_data(X, z > 0, None)[0].format == "csr"
    problem = build_problem(features, Y, task_index, n_tasks=len(omega),
                            task_weights=omega, center_targets=False)
    if not reads:  # rows grouped by the build: its one copy, in columns
        columns = DesignColumns(problem.design)
        assert np.shares_memory(columns.data, problem.design.X.data)


@pytest.mark.parametrize("estimator", [
    MultiTaskClassifier(penalty="l1", alpha=0.01),
    MultiTaskClassifier(penalty="l21", alpha=0.01, l1_ratio=0.8),
    MultiTaskClassifier(penalty="l2", alpha=0.01),
    MultiTaskRegressor(penalty="l1", alpha=0.01),
    MultiTaskRegressor(penalty="l21", alpha=0.01)],
    ids=["logistic-l1", "logistic-l21", "logistic-l2", "squared-l1",
         "squared-l21"])
@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_sparse_fits_equal_dense_ones_whatever_the_format(estimator, fmt):
    """A CSR or CSC ``X`` with its task column fits the model of the dense
    ``X``, whose design takes no sparse path at all."""
    X, F, task, z = _fit_data(seed=3)
    y = z > 0 if isinstance(estimator, MultiTaskClassifier) else z
    params = dict(task_col=12, tol=1e-12, max_iter=100_000)
    sparse = estimator.set_params(**params).fit(X.asformat(fmt), y)
    dense = estimator.set_params(**params).fit(X.toarray(), y)
    np.testing.assert_allclose(sparse.coef_, dense.coef_, atol=1e-7)
    np.testing.assert_allclose(sparse.intercept_, dense.intercept_, atol=1e-7)


@pytest.mark.parametrize("fmt", ["csr", "csc"])
@pytest.mark.parametrize("weighted", [False, True])
def test_coordinate_descent_curvatures_of_a_sparse_design_are_the_dense_ones(
        fmt, weighted):
    """Coordinate descent's per-(feature, task) curvatures and task weights,
    and its gradient on some feature rows at a random ``W`` (``ResidualState``:
    compiled passes over a sparse design's entries) equal those of the same
    problem built on the dense array."""
    from mtlinear._bcd_residual import ResidualState
    X, F, task, z = _fit_data(seed=5)
    order = np.argsort(task, kind="stable")
    weights = (np.random.default_rng(1).random(F.shape[0]) + 0.1 if weighted
               else None)
    states = [ResidualState(build_problem(A, z[order], task[order],
                                          sample_weight=(None if weights is None
                                                         else weights[order])))
              for A in (F[order].asformat(fmt), F[order].toarray())]
    np.testing.assert_allclose(states[0].curv, states[1].curv, rtol=1e-12,
                               atol=1e-15)
    np.testing.assert_allclose(states[0].seg_w, states[1].seg_w, rtol=1e-12)
    W = np.random.default_rng(2).standard_normal((F.shape[1], 3))
    rows = np.array([0, 4, 5, 17])
    for state in states:
        state.reset(W)
    np.testing.assert_allclose(states[0].neg_gradient(rows),
                               states[1].neg_gradient(rows), rtol=1e-10,
                               atol=1e-12)
