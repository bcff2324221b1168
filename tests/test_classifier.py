"""MultiTaskClassifier against scikit-learn and optimality conditions.

* Independent tasks (``l1``, ``l2``, elastic net): each task is scikit-learn's
  LogisticRegression at ``C_t = 1 / (alpha n_t)``, ``n_t`` the task's sum of
  sample weights times class weights.
* ``l21`` and ``trace``: the optimality conditions, from the gradient of the
  logistic data fit computed here; the duality gap recomputed by
  :mod:`_reference`.
* Layouts: the stacked layout equals the shared one when tasks share ``X``.
"""
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.special import expit
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.utils.class_weight import compute_class_weight

from mtlinear import MultiTaskClassifier, alpha_max, stack_tasks

from _reference import logistic_duality_gap, logistic_objective

TIGHT = dict(tol=1e-13, max_iter=200_000)


def _shared_data(n=60, d=8, T=3, seed=0, imbalance=0.0):
    """Labels {0, 1} from a shared sparse ``W`` with noise (not separable)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    X[:, 1] *= 3.0
    W = np.zeros((d, T))
    W[:3] = rng.standard_normal((3, T))
    Z = X @ W + 0.3 + imbalance + rng.logistic(size=(n, T))
    return X, (Z > 0).astype(int)


def _signs(y, positive=1):
    return np.where(y == positive, 1.0, -1.0)


def _task_lists(X, Y, s, classes_weights=None):
    """Per-task ``(X, y in {-1, 1}, s * c)`` for the reference."""
    out = []
    for t in range(Y.shape[1]):
        c = (np.ones(2) if classes_weights is None else classes_weights[t])
        out.append((X, _signs(Y[:, t]), s * np.where(Y[:, t] == 1, c[1], c[0])))
    return out


def _logistic_gradient(tasks, coef, intercept):
    """``dF/dW`` (d, T) and ``dF/db`` (T,) of the mean logistic loss."""
    G = np.zeros((tasks[0][0].shape[1], len(tasks)))
    gb = np.zeros(len(tasks))
    for t, (Xt, yt, st) in enumerate(tasks):
        r = -(st / st.sum()) * yt * expit(-yt * (Xt @ coef[t] + intercept[t]))
        G[:, t], gb[t] = Xt.T @ r, r.sum()
    return G, gb


# ---------------------------------------------------------------- scikit-learn
@pytest.mark.parametrize("penalty,l1_ratio", [("l2", 0.0), ("l1", 1.0),
                                              ("l1", 0.5)])
@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("class_weight", [None, "balanced", {0: 1.0, 1: 3.0}])
def test_independent_tasks_match_logistic_regression(penalty, l1_ratio, sparse,
                                                      fit_intercept, class_weight):
    X, Y = _shared_data(imbalance=0.8)
    s = np.random.default_rng(1).uniform(0.5, 2.0, len(X))
    Xf = sp.csr_matrix(X) if sparse else X
    alpha = 0.02
    model = MultiTaskClassifier(penalty=penalty, alpha=alpha, l1_ratio=l1_ratio,
                                fit_intercept=fit_intercept,
                                class_weight=class_weight, **TIGHT)
    model.fit(Xf, Y, sample_weight=s)
    for t in range(Y.shape[1]):
        c = (np.ones(2) if class_weight is None else compute_class_weight(
            class_weight, classes=np.array([0, 1]), y=Y[:, t], sample_weight=s))
        n_t = np.sum(s * c[Y[:, t]])
        reference = LogisticRegression(
            C=1.0 / (alpha * n_t), l1_ratio=l1_ratio,
            solver="lbfgs" if l1_ratio == 0 else "saga", tol=1e-12,
            max_iter=100_000, fit_intercept=fit_intercept,
            class_weight=class_weight).fit(Xf, Y[:, t], sample_weight=s)
        scale = np.abs(reference.coef_).max()
        np.testing.assert_allclose(model.coef_[t], reference.coef_[0],
                                   atol=2e-6 * scale)
        np.testing.assert_allclose(model.intercept_[t], reference.intercept_[0],
                                   atol=2e-6 * max(scale, 1.0))
    if penalty == "l1" and l1_ratio == 1:
        assert np.any(model.coef_ == 0)  # the l1 part is active


def test_stacked_tasks_match_logistic_regression_per_task():
    """Heterogeneous tasks (own samples, sizes 40, 70, 55), sparse CSR."""
    rng = np.random.default_rng(3)
    Xs, ys = [], []
    w = rng.standard_normal(6)
    for n_t in (40, 70, 55):
        Xt = rng.standard_normal((n_t, 6)) * (rng.random((n_t, 6)) < 0.5)
        Xs.append(sp.csr_matrix(Xt))
        ys.append(np.where(Xt @ (w + 0.5 * rng.standard_normal(6))
                           + rng.logistic(size=n_t) > 0, "spam", "ham"))
    X, y = stack_tasks(Xs, ys)
    alpha = 0.01
    model = MultiTaskClassifier(penalty="l1", alpha=alpha, task_col=-1,
                                **TIGHT).fit(X, y)
    assert list(model.classes_) == ["ham", "spam"]
    z = model.decision_function(X)
    np.testing.assert_allclose(z, model.decision_function(X.toarray()))
    np.testing.assert_allclose(z, model.decision_function(X.tocsc()))
    for t, (Xt, yt) in enumerate(zip(Xs, ys)):
        ref = LogisticRegression(C=1 / (alpha * len(yt)), l1_ratio=1.0,
                                 solver="saga", tol=1e-12,
                                 max_iter=100_000).fit(Xt, yt)
        np.testing.assert_allclose(model.coef_[t], ref.coef_[0], atol=2e-6)
        np.testing.assert_allclose(model.intercept_[t], ref.intercept_[0],
                                   atol=2e-6)
        rows = slice(sum(len(v) for v in ys[:t]), sum(len(v) for v in ys[:t + 1]))
        np.testing.assert_allclose(z[rows], ref.decision_function(Xt), atol=1e-5)


# ---------------------------------------------------------------- l21, trace
def _structured_fit(penalty, l1_ratio, fit_intercept, fraction=0.3):
    X, Y = _shared_data(n=80, d=10, T=4, seed=5)
    s = np.random.default_rng(2).uniform(0.5, 2.0, len(X))
    a_max = alpha_max(X, _signs(Y), penalty=penalty, l1_ratio=l1_ratio,
                      fit_intercept=fit_intercept, sample_weight=s,
                      loss="logistic")
    alpha = fraction * a_max
    model = MultiTaskClassifier(penalty=penalty, alpha=alpha, l1_ratio=l1_ratio,
                                fit_intercept=fit_intercept, **TIGHT)
    model.fit(X, Y, sample_weight=s)
    tasks = _task_lists(X, Y, s)
    lam, mu = alpha * l1_ratio, alpha * (1 - l1_ratio)
    G, gb = _logistic_gradient(tasks, model.coef_, model.intercept_)
    if fit_intercept:
        np.testing.assert_allclose(gb, 0.0, atol=1e-6)
    return model.coef_.T, -G - mu * model.coef_.T, lam


@pytest.mark.parametrize("l1_ratio", [1.0, 0.6])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_l21_optimality_conditions(l1_ratio, fit_intercept):
    """``-grad_j = lam W_j / ||W_j||`` on nonzero rows, ``||grad_j|| <= lam``
    on zero rows (ridge part moved to the gradient)."""
    W, G, lam = _structured_fit("l21", l1_ratio, fit_intercept)
    norms = np.linalg.norm(W, axis=1)
    active = norms > 0
    assert 0 < active.sum() < len(W)
    atol = 1e-6 * lam
    np.testing.assert_allclose(G[active], lam * W[active] / norms[active, None],
                               atol=atol)
    assert np.linalg.norm(G[~active], axis=1).max() <= lam + atol


@pytest.mark.parametrize("l1_ratio", [1.0, 0.6])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_trace_optimality_conditions(l1_ratio, fit_intercept):
    """``-grad = lam U V^T + G_perp``, ``G_perp`` orthogonal to ``U`` and
    ``V``, ``||G_perp||_2 <= lam``."""
    W, G, lam = _structured_fit("trace", l1_ratio, fit_intercept, fraction=0.4)
    U, sv, Vt = np.linalg.svd(W, full_matrices=False)
    rank = int(np.sum(sv > 1e-9 * sv[0]))
    assert 0 < rank < min(W.shape)
    U, V = U[:, :rank], Vt[:rank].T
    G_perp = G - lam * U @ V.T
    atol = 1e-6 * lam
    np.testing.assert_allclose(U.T @ G @ V, lam * np.eye(rank), atol=atol)
    np.testing.assert_allclose(U.T @ G_perp, 0.0, atol=atol)
    np.testing.assert_allclose(G_perp @ V, 0.0, atol=atol)
    assert np.linalg.norm(G_perp, 2) <= lam + atol


def _null_objective(tasks, fit_intercept):
    """``P(0, b*)``: weighted binary entropy of each task's classes."""
    total = 0.0
    for _, yt, st in tasks:
        p = np.sum(st[yt > 0]) / st.sum()
        total += (-(p * np.log(p) + (1 - p) * np.log(1 - p)) if fit_intercept
                  else np.log(2.0))
    return total


@pytest.mark.parametrize("penalty,l1_ratio", [("l1", 1.0), ("l2", 0.0),
                                              ("l21", 1.0), ("l21", 0.5),
                                              ("trace", 1.0), ("trace", 0.5)])
@pytest.mark.parametrize("layout", ["shared", "stacked-sparse"])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_duality_gap_recomputed(penalty, l1_ratio, layout, fit_intercept):
    X, Y = _shared_data(n=50, d=12, T=3, seed=7)
    s = np.random.default_rng(4).uniform(0.5, 2.0, len(X))
    tol = 1e-6
    model = MultiTaskClassifier(penalty=penalty, alpha=0.02, l1_ratio=l1_ratio,
                                fit_intercept=fit_intercept, tol=tol,
                                max_iter=50_000)
    if layout == "shared":
        model.fit(X, Y, sample_weight=s)
        tasks = _task_lists(X, Y, s)
    else:  # each task keeps a different half of the rows
        rng = np.random.default_rng(8)
        keep = [rng.permutation(len(X))[:35] for _ in range(Y.shape[1])]
        Xs, ys = stack_tasks([sp.csr_matrix(X[k]) for k in keep],
                             [Y[k, t] for t, k in enumerate(keep)])
        model.set_params(task_col=-1).fit(Xs, ys, sample_weight=np.concatenate(
            [s[k] for k in keep]))
        tasks = [(X[k], _signs(Y[k, t]), s[k]) for t, k in enumerate(keep)]
    primal, dual = logistic_duality_gap(tasks, model.coef_, model.intercept_,
                                        penalty, 0.02, l1_ratio, fit_intercept)
    assert primal - dual <= tol * _null_objective(tasks, fit_intercept)
    assert primal - dual >= -1e-12
    assert model.dual_gap_ <= tol * _null_objective(tasks, fit_intercept)
    np.testing.assert_allclose(
        primal, logistic_objective(tasks, model.coef_, model.intercept_,
                                   penalty, 0.02, l1_ratio))


# ---------------------------------------------------------------- layouts
@pytest.mark.parametrize("penalty", ["l21", "trace", "l1"])
@pytest.mark.parametrize("class_weight", [None, "balanced"])
def test_stacked_layout_equals_shared_when_tasks_share_X(penalty, class_weight):
    X, Y = _shared_data(n=40, d=6, T=3, seed=11, imbalance=0.7)
    shared = MultiTaskClassifier(penalty=penalty, alpha=0.03,
                                 class_weight=class_weight, **TIGHT).fit(X, Y)
    Xs, ys = stack_tasks([X] * 3, list(Y.T))
    stacked = MultiTaskClassifier(penalty=penalty, alpha=0.03, task_col=-1,
                                  class_weight=class_weight, **TIGHT).fit(Xs, ys)
    np.testing.assert_allclose(stacked.coef_, shared.coef_, atol=1e-7)
    np.testing.assert_allclose(stacked.intercept_, shared.intercept_, atol=1e-7)
    Z = shared.decision_function(X)
    np.testing.assert_allclose(stacked.decision_function(Xs), Z.T.ravel(),
                               atol=1e-6)


@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_sparse_equals_dense(fmt):
    X, Y = _shared_data(n=50, d=10, T=3, seed=12)
    X[np.abs(X) < 0.8] = 0.0
    dense = MultiTaskClassifier(penalty="trace", alpha=0.02, **TIGHT).fit(X, Y)
    sparse = MultiTaskClassifier(penalty="trace", alpha=0.02,
                                 **TIGHT).fit(sp.csr_matrix(X).asformat(fmt), Y)
    np.testing.assert_allclose(sparse.coef_, dense.coef_, atol=1e-8)
    np.testing.assert_allclose(sparse.intercept_, dense.intercept_, atol=1e-8)


def test_class_weight_is_sample_weight_per_class():
    """A class-weight dict equals sample weights ``c_{y_i}`` (shared layout,
    T = 1, where both are one weight per sample)."""
    X, Y = _shared_data(seed=13)
    y = Y[:, 0]
    a = MultiTaskClassifier(penalty="l21", alpha=0.02, class_weight={0: 0.5, 1: 2.0},
                            **TIGHT).fit(X, y)
    b = MultiTaskClassifier(penalty="l21", alpha=0.02, **TIGHT).fit(
        X, y, sample_weight=np.where(y == 1, 2.0, 0.5))
    np.testing.assert_allclose(a.coef_, b.coef_, atol=1e-9)


# ---------------------------------------------------------------- outputs
def test_output_shapes_and_labels():
    X, Y = _shared_data(T=3, seed=14)
    labels = np.where(Y == 1, "yes", "no")
    model = MultiTaskClassifier(alpha=0.01).fit(X, labels)
    assert len(model.classes_) == 3
    assert all(list(c) == ["no", "yes"] for c in model.classes_)
    Z = model.decision_function(X)
    assert Z.shape == (60, 3)
    P = model.predict_proba(X)
    assert len(P) == 3 and all(p.shape == (60, 2) for p in P)
    np.testing.assert_allclose(P[1][:, 1], expit(Z[:, 1]))
    np.testing.assert_allclose(np.exp(model.predict_log_proba(X)[2]), P[2])
    np.testing.assert_array_equal(model.predict(X), np.where(Z > 0, "yes", "no"))
    expected = np.mean([np.mean(model.predict(X)[:, t] == labels[:, t])
                        for t in range(3)])
    assert model.score(X, labels) == pytest.approx(expected)

    one = MultiTaskClassifier(alpha=0.01).fit(X, labels[:, 0])
    assert one.classes_.tolist() == ["no", "yes"]
    assert one.decision_function(X).shape == (60,)
    assert one.predict_proba(X).shape == (60, 2)
    np.testing.assert_allclose(one.predict_proba(X).sum(axis=1), 1.0)
    # a column vector is one task, as in scikit-learn
    column = MultiTaskClassifier(alpha=0.01).fit(X, labels[:, :1])
    np.testing.assert_allclose(column.coef_, one.coef_)
    assert column.predict(X).shape == (60,)


def test_alpha_max_zeroes_the_model():
    X, Y = _shared_data(seed=15)
    a = alpha_max(X, _signs(Y), penalty="l21", loss="logistic")
    assert not np.any(MultiTaskClassifier(alpha=a * 1.0001).fit(X, Y).coef_)
    assert np.any(MultiTaskClassifier(alpha=a * 0.95).fit(X, Y).coef_)


def test_warm_start_reaches_the_same_solution():
    X, Y = _shared_data(seed=16)
    cold = MultiTaskClassifier(penalty="trace", alpha=0.02, **TIGHT).fit(X, Y)
    warm = MultiTaskClassifier(penalty="trace", alpha=0.05, warm_start=True,
                               **TIGHT).fit(X, Y)
    warm.set_params(alpha=0.02).fit(X, Y)
    np.testing.assert_allclose(warm.coef_, cold.coef_, atol=1e-7)


# ---------------------------------------------------------------- stability
@pytest.mark.parametrize("penalty", ["l1", "l2", "l21", "trace"])
def test_separable_data_with_tiny_alpha_stays_finite(penalty):
    """Separable tasks: the weights grow without bound as alpha -> 0; the fit
    must stay finite and warn instead of overflowing (RuntimeWarnings from
    mtlinear are errors in the test configuration)."""
    rng = np.random.default_rng(17)
    X = rng.standard_normal((40, 4)) * 1e3
    Y = np.column_stack([X[:, 0] > 0, X[:, 1] + X[:, 2] > 0]).astype(int)
    model = MultiTaskClassifier(penalty=penalty, alpha=1e-10, max_iter=300)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(X, Y)
    assert np.all(np.isfinite(model.coef_)) and np.all(np.isfinite(model.intercept_))
    assert np.isfinite(model.dual_gap_)
    assert np.all(np.isfinite(model.decision_function(X)))
    assert {w.category for w in caught} <= {ConvergenceWarning}
    assert model.score(X, Y) >= 0.9
    with np.errstate(over="raise"):
        P = model.predict_proba(X * 1e6)
    assert all(np.all(np.isfinite(p)) for p in P)


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize("y,message", [
    (np.r_[np.zeros(30), np.ones(30)] * 0 + 1, "only one class"),
    (np.linspace(0.0, 1.0, 60), "continuous"),
    (np.r_[np.zeros(30), np.ones(29), np.nan], "NaN"),
    (np.array(["a", "b"] * 29 + [None, "a"], dtype=object), "missing"),
])
def test_bad_targets_shared(y, message):
    X = np.random.default_rng(0).standard_normal((60, 3))
    with pytest.raises(ValueError, match=message):
        MultiTaskClassifier().fit(X, y)


def test_bad_targets_per_task():
    X = np.random.default_rng(0).standard_normal((60, 3))
    Y = np.column_stack([np.arange(60) % 3, np.ones(60)])
    with pytest.raises(ValueError, match="column 1 has only one class"):
        MultiTaskClassifier().fit(X, Y)  # of three labels: which is the other?
    # binary tasks: a column of a single class is the stacked layout's task
    # lacking a class (half a sample of the other: test_small_tasks)
    Y[:, 0] = np.arange(60) % 2
    with pytest.warns(UserWarning, match=r"task\(s\) \[1\] have training "
                                         "samples of a single class"):
        shared = MultiTaskClassifier().fit(X, Y)
    stacked = MultiTaskClassifier(task_col=-1).fit(
        np.column_stack([np.vstack([X, X]), np.repeat([0, 1], 60)]),
        np.r_[Y[:, 0], Y[:, 1]])
    np.testing.assert_allclose(shared.coef_, stacked.coef_, atol=1e-12)
    np.testing.assert_allclose(shared.intercept_, stacked.intercept_, atol=1e-12)
    assert [list(c) for c in shared.classes_] == [[0, 1], [0, 1]]
    Y[:, 1] = np.nan
    with pytest.raises(ValueError, match="column 1 has no label"):
        MultiTaskClassifier().fit(X, Y)
    Y[:, 1] = np.arange(60) % 3  # a multiclass task: see test_multiclass
    assert len(MultiTaskClassifier().fit(X, Y).predict_proba(X)[1].T) == 3
    # stacked: a task whose rows all carry one class
    Xs = np.column_stack([X, np.repeat([0, 1], 30)])
    y = np.r_[np.arange(30) % 2, np.ones(30)]
    with pytest.warns(UserWarning, match=r"task\(s\) \[1\] have training "
                                         "samples of a single class"):
        MultiTaskClassifier(task_col=-1).fit(Xs, y)  # see test_small_tasks
    assert MultiTaskClassifier(task_col=-1).fit(
        Xs, np.arange(60) % 3).coef_.shape == (2, 3, 3)
    # a class present but with zero total weight
    y = np.arange(60) % 2
    with pytest.raises(ValueError, match="zero weight"):
        MultiTaskClassifier().fit(X, y, sample_weight=(y == 0).astype(float))
    with pytest.raises(ValueError, match="class_weight"):
        MultiTaskClassifier(class_weight="balance").fit(X, y)


# ---------------------------------------------------------------- step size
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_lanczos_step_bound_on_large_problems(monkeypatch, fit_intercept):
    """Past a size threshold the logistic Lipschitz constant comes from
    Lanczos; it must bound ``1/4 lam_max([X_c 1]^T V [X_c 1])`` per task
    (computed densely here) within its small safety margin, and the fit must
    not change."""
    import mtlinear._datafit as datafit
    from mtlinear._task_data import build_problem
    from mtlinear.losses import LogisticLoss

    X, Y = _shared_data(n=90, d=15, T=3, seed=18)
    Xs = sp.csr_matrix(X * (np.abs(X) > 0.5))
    s = np.random.default_rng(3).uniform(0.5, 2.0, len(X))
    problem = build_problem(Xs, _signs(Y), sample_weight=s,
                            fit_intercept=fit_intercept, center_targets=False)
    A = X * (np.abs(X) > 0.5)
    if fit_intercept:
        A = np.column_stack([A - s @ A / s.sum(), np.ones(len(A))])
    exact = 0.25 * np.linalg.eigvalsh(A.T @ (A * (s / s.sum())[:, None]))[-1]
    monkeypatch.setattr(datafit, "_DENSE_EIG_MAX", 5)
    lanczos = datafit.SampleDatafit(LogisticLoss(), problem).lipschitz
    assert exact <= lanczos <= exact * (1 + 2e-4)

    model = MultiTaskClassifier(penalty="l21", alpha=0.02,
                                fit_intercept=fit_intercept, **TIGHT)
    fast = model.fit(Xs, Y, sample_weight=s).coef_
    monkeypatch.setattr(datafit, "_DENSE_EIG_MAX", 10 ** 9)
    np.testing.assert_allclose(model.fit(Xs, Y, sample_weight=s).coef_, fast,
                               atol=1e-8)


# ---------------------------------------------------------------- real data
NEWSGROUP = Path(__file__).resolve().parents[2] / "shared" / "data" / "newsgroup"


@pytest.mark.skipif(not NEWSGROUP.is_dir(), reason="newsgroup data not present")
@pytest.mark.parametrize("penalty", ["l21", "trace"])
def test_newsgroup_sparse_text_gap(penalty):
    """Sparse text (150 random documents of each newsgroup task, 2,000 term
    counts, CSC as stored): the duality gap recomputed from scratch."""
    import scipy.io as sio
    Xs, ys = [], []
    for f in sorted(NEWSGROUP.glob("*.mat"))[:4]:
        m = sio.loadmat(f)
        rows = np.random.default_rng(0).choice(m["fea"].shape[0], 150,
                                               replace=False)
        Xs.append(sp.csc_matrix(m["fea"])[rows])
        ys.append(m["gnd"].ravel()[rows])
    X, y = stack_tasks(Xs, ys)
    tol = 1e-5
    model = MultiTaskClassifier(penalty=penalty, alpha=3e-3, task_col=-1, tol=tol,
                                max_iter=50_000).fit(X, y)
    tasks = [(Xt.toarray(), _signs(yt, 2), np.ones(len(yt)))
             for Xt, yt in zip(Xs, ys)]
    primal, dual = logistic_duality_gap(tasks, model.coef_, model.intercept_,
                                        penalty, 3e-3)
    assert 0 <= primal - dual <= tol * _null_objective(tasks, True)
    assert np.any(model.coef_) and not np.all(model.coef_)


def test_score_with_label_types_differing_by_column():
    # a DataFrame's columns of str and int labels come as one object array
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(22)
    X = rng.standard_normal((60, 4))
    Y = pd.DataFrame({"colour": np.where(X[:, 0] > 0, "red", "blue"),
                      "flag": (X[:, 1] + 0.5 * rng.standard_normal(60) > 0)
                      .astype(int)})
    model = MultiTaskClassifier(alpha=0.01).fit(X, Y)
    pred = model.predict(X)
    expected = np.mean([np.mean(pred[:, 0] == Y["colour"].to_numpy()),
                        np.mean(pred[:, 1].astype(int) == Y["flag"].to_numpy())])
    assert model.score(X, Y) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("task_col", [None, -1])
def test_labels_of_types_that_do_not_sort_are_a_clear_error(task_col):
    rng = np.random.default_rng(23)
    X = rng.standard_normal((60, 4))
    if task_col is not None:
        X = np.column_stack([X, np.repeat([0, 1, 2], 20)])
    y = np.array([1, "a"] * 30, dtype=object)
    with pytest.raises(ValueError, match=r"mixes labels of the types \['int', "
                                         r"'str'\].*same type"):
        MultiTaskClassifier(task_col=task_col).fit(X, y)
    # scikit-learn's type_of_target fails on these first: ours is checked before
    y_mixed = np.array(["yes" if v > 0 else 0 for v in X[:, 0]], dtype=object)
    with pytest.raises(ValueError, match="mixes labels"):
        MultiTaskClassifier(task_col=task_col).fit(X, y_mixed)
    with pytest.raises(ValueError, match="mixes labels"):  # within a column
        MultiTaskClassifier().fit(X, np.column_stack([y, y[::-1]]))


@pytest.mark.parametrize("y", [
    np.arange(60) % 2, (np.arange(60) % 2).astype(bool),
    (np.arange(60) % 3).astype(np.uint8), (np.arange(60) % 2) * 1.0,
    np.r_[-1.0, 1.0] [np.arange(60) % 2], np.linspace(0.0, 1.0, 60),
    np.r_[-0.5, 1.0][np.arange(60) % 2], np.r_[0.0, 1e20][np.arange(60) % 2],
    np.r_[2.0, 3.0, 7.25][np.arange(60) % 3],
    np.array(["a", "b"] * 30), np.array(["a", "b"] * 30, dtype=object),
    np.array([0.5, 1.5] * 30, dtype=object),
])
def test_continuous_labels_are_sklearns(y):
    # the check reads the distinct values, not every label: it must say
    # what scikit-learn's type_of_target says of y
    from sklearn.utils.multiclass import type_of_target
    from mtlinear._classifier import _continuous
    assert _continuous(y, np.unique(y)) == (type_of_target(y) == "continuous")
