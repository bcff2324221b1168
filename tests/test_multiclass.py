"""Multiclass tasks: multinomial logistic regression per task.

References: scikit-learn's multinomial ``LogisticRegression`` task by task
(``l2``, independent tasks), the optimality conditions recomputed here in
numpy from the softmax (``l1``, ``l21``, ``trace``, task graphs) and a cvxpy
model of the objective (``l21``, ``trace``).
"""
import warnings

import numpy as np
import pytest
from scipy.special import logsumexp, softmax
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss

from _cvxpy_reference import _row_residual, _trace_residual
from mtlinear import (MultiTaskClassifier, MultiTaskClassifierCV,
                      MultiTaskEstimator, MultiTaskRelationClassifier)
from mtlinear.model_selection import TaskStratifiedKFold

TOL = dict(tol=1e-13, max_iter=200_000)


def _labels(X, rng, n_classes, noise=1.0):
    scores = X @ rng.standard_normal((X.shape[1], n_classes))
    return np.argmax(scores + noise * rng.standard_normal(scores.shape), axis=1)


def shared_data(seed=0, n=120, d=5, classes=(3, 3, 4)):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    Y = np.column_stack([_labels(X, rng, k) for k in classes])
    return X, Y


def stacked_data(seed=0, sizes=(40, 70, 55), d=4, n_classes=3):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((sum(sizes), d))
    task = np.repeat(np.arange(len(sizes)), sizes)
    y = _labels(X, rng, n_classes)
    return X, y, task


# ------------------------------------------------------------ references
def task_problems(X, y, task, sample_weight=None):
    """``(X_t, codes_t, s_t)`` per task, tasks sorted, codes over the union."""
    s = np.ones(len(y)) if sample_weight is None else sample_weight
    if task is None:  # shared: one column per task
        return [(X, np.searchsorted(np.unique(col), col), s) for col in y.T]
    classes = np.unique(y)
    return [(X[task == t], np.searchsorted(classes, y[task == t]), s[task == t])
            for t in np.unique(task)]


def gradients(problems, coef, intercept):
    """Gradient of ``sum_t (1/n_t) sum_i s_i CE_i`` in ``coef`` (T, K, d)
    and ``intercept`` (T, K), softmax over the classes of each task
    (finite intercepts)."""
    G, g = np.zeros_like(coef), np.zeros_like(intercept)
    for t, (Xt, codes, s) in enumerate(problems):
        present = np.isfinite(intercept[t])
        Z = Xt @ coef[t].T + np.where(present, intercept[t], 0.0)
        Z[:, ~present] = -np.inf
        R = softmax(Z, axis=1)
        R[np.arange(len(codes)), codes] -= 1.0
        R *= (s / s.sum())[:, None]
        G[t], g[t] = R.T @ Xt, np.where(present, R.sum(axis=0), 0.0)
    return G, g


def objective(problems, coef, intercept, penalty, alpha):
    value = 0.0
    for t, (Xt, codes, s) in enumerate(problems):
        Z = Xt @ coef[t].T + intercept[t]
        ce = logsumexp(Z, axis=1) - Z[np.arange(len(codes)), codes]
        value += np.dot(s, ce) / s.sum()
    W = coef.reshape(-1, coef.shape[-1]).T  # (d, T K)
    norm = {"l21": np.linalg.norm(W, axis=1).sum(),
            "trace": np.linalg.svd(W, compute_uv=False).sum(),
            "l1": np.abs(W).sum()}[penalty]
    return value + alpha * norm


def kkt(problems, model, penalty, alpha):
    """Largest violation of the optimality conditions, relative to the
    gradient at ``W = 0``."""
    coef, intercept = model.coef_, model.intercept_
    G, g = gradients(problems, coef, intercept)
    scale = np.abs(gradients(problems, 0 * coef, intercept)[0]).max()
    W, A = coef.reshape(-1, coef.shape[-1]).T, -G.reshape(-1, G.shape[-1]).T
    worst = np.abs(g).max()
    if penalty == "trace":
        return max(worst, _trace_residual(A, W, alpha, 0.0)) / scale
    share = 1.0 if penalty == "l1" else 0.0
    for j in range(W.shape[0]):
        worst = max(worst, _row_residual(A[j], W[j], alpha * share,
                                         alpha * (1 - share), False))
    return worst / scale


# ------------------------------------------------------------ scikit-learn
@pytest.mark.parametrize("layout", ["shared", "stacked"])
def test_l2_equals_multinomial_logistic_regression_per_task(layout):
    """l2: independent tasks, task t solves LogisticRegression(C = 1 /
    (alpha n_t)) (multinomial), with sample weights."""
    alpha = 0.02
    if layout == "shared":
        X, Y = shared_data()
        s = np.random.default_rng(1).uniform(0.5, 2.0, len(X))
        model = MultiTaskClassifier("l2", alpha, **TOL).fit(X, Y, sample_weight=s)
        tasks = [(X, Y[:, t], s) for t in range(Y.shape[1])]
    else:
        X, y, task = stacked_data()
        s = np.random.default_rng(1).uniform(0.5, 2.0, len(y))
        model = MultiTaskClassifier("l2", alpha, task_col=-1, **TOL).fit(
            np.column_stack([X, task]), y, sample_weight=s)
        tasks = [(X[task == t], y[task == t], s[task == t]) for t in range(3)]
    for t, (Xt, yt, st) in enumerate(tasks):
        ref = LogisticRegression(C=1.0 / (alpha * st.sum()), tol=1e-12,
                                 max_iter=10_000).fit(Xt, yt, sample_weight=st)
        K = ref.classes_.size
        np.testing.assert_allclose(model.coef_[t, :K], ref.coef_, atol=1e-6)
        np.testing.assert_allclose(model.intercept_[t, :K], ref.intercept_,
                                   atol=1e-6)
        if layout == "shared":
            np.testing.assert_allclose(model.predict_proba(X)[t],
                                       ref.predict_proba(X), atol=1e-6)


def test_default_alpha_is_logistic_regression_default():
    """alpha=None is C = 1 on a task of average size: equal tasks give
    LogisticRegression() per task."""
    X, Y = shared_data(n=90)
    model = MultiTaskClassifier("l2", tol=1e-10).fit(X, Y)
    for t in range(Y.shape[1]):
        ref = LogisticRegression(tol=1e-10, max_iter=10_000).fit(X, Y[:, t])
        np.testing.assert_allclose(model.coef_[t, :ref.classes_.size],
                                   ref.coef_, atol=1e-5)


def test_task_lacking_a_class_gets_pseudo_samples_of_it():
    """A task without training samples of a class (stacked layout) is given
    half a sample of it at its mean features, with half its mean sample
    weight: the same fit as those rows added by hand, a finite intercept
    and a small probability of the class."""
    X, y, task = stacked_data(sizes=(60, 60, 60))
    keep = ~((task == 1) & (y == 2))  # task 1 has classes 0 and 1 only
    X, y, task = X[keep], y[keep], task[keep]
    alpha = 0.05
    with pytest.warns(UserWarning, match=r"task\(s\) \[1\] lack training "
                                         "samples of some class"):
        model = MultiTaskClassifier("l21", alpha, task_col=-1, **TOL).fit(
            np.column_stack([X, task]), y)
    assert np.isfinite(model.intercept_).all()
    rows = task == 1
    proba = model.predict_proba(np.column_stack([X, task])[rows])
    assert 0 < proba[:, 2].max() < 0.05
    pseudo = X[rows].mean(axis=0)
    by_hand = MultiTaskClassifier("l21", alpha, task_col=-1, **TOL).fit(
        np.column_stack([np.vstack([X, pseudo]), np.append(task, 1)]),
        np.append(y, 2), sample_weight=np.append(np.ones(len(y)), 0.5))
    np.testing.assert_allclose(model.coef_, by_hand.coef_, atol=1e-7)
    np.testing.assert_allclose(model.intercept_, by_hand.intercept_, atol=1e-7)


def test_binary_column_among_multiclass_ones_is_a_two_class_softmax():
    """A 2-d y mixing a binary and a 3-class column: one multinomial model;
    the binary task's probabilities are LogisticRegression's at 2C."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((150, 4))
    Y = np.column_stack([_labels(X, rng, 2), _labels(X, rng, 3)])
    alpha = 0.02
    model = MultiTaskClassifier("l2", alpha, **TOL).fit(X, Y)
    assert [c.size for c in model.classes_] == [2, 3]
    proba = model.predict_proba(X)
    assert [p.shape for p in proba] == [(150, 2), (150, 3)]
    ref = LogisticRegression(C=2.0 / (alpha * 150), tol=1e-12,
                             max_iter=10_000).fit(X, Y[:, 0])
    np.testing.assert_allclose(proba[0], ref.predict_proba(X), atol=1e-6)
    scores = model.decision_function(X)
    assert [z.shape for z in scores] == [(150, 2), (150, 3)]
    np.testing.assert_array_equal(model.predict(X)[:, 1],
                                  np.argmax(proba[1], axis=1))


@pytest.mark.parametrize("layout", ["shared", "stacked"])
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("chunk", [4096, 7])
def test_exact_newton_step_solves_the_newton_system(layout, fit_intercept,
                                                    chunk, monkeypatch):
    """The multinomial's exact Newton step (each task's Hessian block formed
    and solved) satisfies ``H s = -g`` for ``H`` applied as conjugate
    gradients apply it (the softmax's curvature through the design); in
    the shared layout a binary column among multiclass ones has a class it
    lacks.  Chunks of 7 rows cut the tasks' rows anywhere."""
    from mtlinear import _multinomial
    from mtlinear._newton_cg import _NewtonModel
    monkeypatch.setattr(_multinomial, "_HESSIAN_ROWS", chunk)
    if layout == "shared":
        X, Y = shared_data(seed=5, classes=(3, 2, 4))
        model = MultiTaskClassifier("l2", 0.05, fit_intercept=fit_intercept)
        data = model._validate_fit_data(X, Y, None)
    else:
        X, y, task = stacked_data(seed=5)
        model = MultiTaskClassifier("l2", 0.05, task_col=0,
                                    fit_intercept=fit_intercept)
        data = model._validate_fit_data(np.column_stack([task, X]), y, None)
    problem = model._build_problem(*data)
    design, mu = problem.design, 0.05
    rng = np.random.default_rng(0)
    W = 0.3 * rng.standard_normal((design.n_features, design.n_tasks))
    b = 0.3 * rng.standard_normal(design.n_tasks) * fit_intercept
    z = design.matmat(W) + design.task_broadcast(b)
    hessian = _NewtonModel(design, model._make_loss(), z, problem.y, problem.v)
    D = hessian.gradient
    g = (design.rmatmat(D) + mu * W, design.task_sum(D) * fit_intercept)
    s = hessian.solve(g, mu, fit_intercept)
    _, HW, Hb = hessian(s[0], s[1])
    scale = np.abs(g[0]).max()
    np.testing.assert_allclose(HW + mu * s[0], -g[0], atol=1e-10 * scale)
    if fit_intercept:
        np.testing.assert_allclose(Hb, -g[1], atol=1e-10 * scale)
    else:
        assert not np.any(s[1])


# ------------------------------------------------------------ optimality
def alpha_max(problems, penalty):
    """The smallest alpha with W = 0 optimal: the dual norm of the gradient
    at W = 0 and the best intercepts (log class frequencies)."""
    T, d = len(problems), problems[0][0].shape[1]
    K = max(codes.max() + 1 for _, codes, _ in problems)
    b = np.full((T, K), -np.inf)
    for t, (_, codes, s) in enumerate(problems):
        counts = np.bincount(codes, weights=s, minlength=K)
        b[t] = np.where(counts > 0, np.log(np.maximum(counts, 1e-300)), -np.inf)
    G = gradients(problems, np.zeros((T, K, d)), b)[0]
    G = G.reshape(-1, d).T
    return {"l1": np.abs(G).max(), "l21": np.linalg.norm(G, axis=1).max(),
            "trace": np.linalg.norm(G, 2)}[penalty]


def _fit(layout, penalty, alpha, seed=4, **params):
    if layout == "shared":
        X, Y = shared_data(seed=seed)
        model = MultiTaskClassifier(penalty, alpha, **params).fit(X, Y)
        return model, task_problems(X, Y, None)
    X, y, task = stacked_data(seed=seed)
    model = MultiTaskClassifier(penalty, alpha, task_col=0, **params).fit(
        np.column_stack([task, X]), y)
    return model, task_problems(X, y, task)


@pytest.mark.parametrize("penalty", ["l1", "l21", "trace"])
@pytest.mark.parametrize("layout", ["shared", "stacked"])
def test_kkt_conditions(penalty, layout):
    top = alpha_max(_fit(layout, "l2", 1.0)[1], penalty)
    alpha = top / 4
    model, problems = _fit(layout, penalty, alpha, tol=1e-9)
    assert kkt(problems, model, penalty, alpha) < 1e-3
    if penalty != "trace":  # sparse at this alpha
        assert np.any(model.coef_ == 0)
    else:
        d = model.coef_.shape[-1]
        assert 0 < np.linalg.matrix_rank(model.coef_.reshape(-1, d)) < d


@pytest.mark.parametrize("penalty", ["l1", "l21", "trace"])
@pytest.mark.parametrize("layout", ["shared", "stacked", "few-rows", "one-task"])
def test_newton_admm_meets_the_kkt_conditions(penalty, layout):
    """Proximal Newton with ADMM steps on the classes' Hessian blocks: the
    optimality conditions recomputed from the softmax, and FISTA's
    objective.  The shared layout has a task with 3 classes of 4 (a padded
    class); "few-rows" gives each task fewer rows than weights (3 classes x
    4 features), so its blocks are singular beyond the classes' common
    shift, at a small alpha; "one-task" has a single block."""
    if layout in ("few-rows", "one-task"):
        X, y, task = stacked_data(seed=0, sizes=(9, 11, 10) if layout == "few-rows"
                                  else (80,))  # every class in every task
        top = alpha_max(task_problems(X, y, task), penalty)
        alpha = top / (50 if layout == "few-rows" else 20)

        def fit(solver):
            return MultiTaskClassifier(penalty, alpha, task_col=0, tol=1e-10,
                                       max_iter=100_000, solver=solver).fit(
                np.column_stack([task, X]), y)
        problems = task_problems(X, y, task)
        model, reference = fit("newton_admm"), fit("fista")
    else:
        top = alpha_max(_fit(layout, "l2", 1.0)[1], penalty)
        alpha = top / 20
        model, problems = _fit(layout, penalty, alpha, tol=1e-10,
                               solver="newton_admm")
        reference = _fit(layout, penalty, alpha, tol=1e-10, max_iter=100_000,
                         solver="fista")[0]
    assert kkt(problems, model, penalty, alpha) < 1e-5
    finite = np.isfinite(reference.intercept_)
    np.testing.assert_array_equal(np.isfinite(model.intercept_), finite)
    assert objective(problems, model.coef_, np.where(finite, model.intercept_, 0),
                     penalty, alpha) <= objective(
        problems, reference.coef_, np.where(finite, reference.intercept_, 0),
        penalty, alpha) + 1e-8


@pytest.mark.parametrize("penalty", ["l1", "l21"])
def test_newton_admm_converges_where_newton_models_overshoot(penalty):
    """Rare binary features (a handful of ones in a task) and features
    constant within a task, at a small alpha: the Newton model is nearly
    flat along them and its minimizer lies far away.  Undamped, the steps
    were cut to nothing and the solve stopped unconverged, its gap orders of
    magnitude above the target; the Levenberg-Marquardt damping converges."""
    from sklearn.exceptions import ConvergenceWarning
    rng = np.random.default_rng(0)
    T, d = 40, 15
    sizes = rng.integers(15, 120, T)
    task = np.repeat(np.arange(T), sizes)
    X = rng.standard_normal((sizes.sum(), d)) + 0.8 * rng.standard_normal(
        (sizes.sum(), 1))
    X[:, :5] = (rng.random((T, 5)) < 0.3)[task]         # constant in a task
    X[:, 5:10] = rng.random((len(task), 5)) < 0.02       # rare
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    score = (0.3 * X @ rng.standard_normal(d) + rng.standard_normal(T)[task]
             + rng.standard_normal(len(task)))
    y = np.digitize(score, np.quantile(score, [1 / 3, 2 / 3]))
    # the tasks with every class (the reference has no pseudo-samples)
    keep = np.isin(task, [t for t in range(T) if np.unique(y[task == t]).size == 3])
    X, y, task = X[keep], y[keep], task[keep]
    alpha = 1e-3
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = MultiTaskClassifier(penalty, alpha, task_col=-1, tol=1e-6,
                                    solver="newton_admm").fit(
            np.column_stack([X, task]), y)
    assert kkt(task_problems(X, y, task), model, penalty, alpha) < 1e-3


@pytest.mark.parametrize("penalty", ["l1", "l21", "trace"])
def test_alpha_max_zeroes_everything(penalty):
    """The CV grid's top: all-zero just above it, not just below."""
    top = alpha_max(_fit("stacked", "l2", 1.0)[1], penalty)
    with pytest.warns(UserWarning, match="every coefficient is zero"):
        above, _ = _fit("stacked", penalty, top * 1.01, tol=1e-8)
    below, _ = _fit("stacked", penalty, top * 0.98, tol=1e-8)
    assert not np.any(above.coef_) and np.any(below.coef_)
    cv = MultiTaskClassifierCV(penalty, alphas=3, cv=2, task_col=0)
    X, y, task = stacked_data(seed=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cv.fit(np.column_stack([task, X]), y)
    assert cv.alphas_[0] == pytest.approx(top, rel=1e-9)


def _function_args(layout, seed=4):
    """``(args, kwargs, problems, tasks)`` of the functions on the data of
    :func:`_fit`: ``tasks`` are each task's ``(X_t, labels_t)``."""
    if layout == "shared":
        X, Y = shared_data(seed=seed)
        return ((X, Y), {}, task_problems(X, Y, None),
                [(X, Y[:, t]) for t in range(Y.shape[1])])
    X, y, task = stacked_data(seed=seed)
    return ((np.column_stack([task, X]), y), dict(task_col=0),
            task_problems(X, y, task),
            [(X[task == t], y[task == t]) for t in np.unique(task)])


@pytest.mark.parametrize("penalty", ["l1", "l21", "trace"])
@pytest.mark.parametrize("layout", ["shared", "stacked"])
def test_alpha_max_function_of_multiclass_tasks(penalty, layout):
    """``mtlinear.alpha_max`` of multiclass labels: the dual norm of the
    gradient at W = 0, recomputed here from the softmax."""
    from mtlinear import alpha_max as mtlinear_alpha_max
    args, kwargs, problems, _ = _function_args(layout)
    value = mtlinear_alpha_max(*args, penalty=penalty, loss="logistic", **kwargs)
    assert value == pytest.approx(alpha_max(problems, penalty), rel=1e-9)


@pytest.mark.parametrize("layout", ["shared", "stacked"])
def test_regularization_path_of_multiclass_tasks(layout):
    """The path of multiclass labels, in the estimator's layout (coef
    (T, K, d), intercept (T, K)): zero at alpha_max and optimal at every
    alpha (l21: the recomputed optimality conditions; l2: scikit-learn's
    multinomial LogisticRegression task by task)."""
    from types import SimpleNamespace

    from mtlinear import regularization_path
    args, kwargs, problems, tasks = _function_args(layout)
    T, d = len(tasks), tasks[0][0].shape[1]
    K = 4 if layout == "shared" else 3  # the most classes of a task
    alphas, coefs, intercepts, _, _ = regularization_path(
        *args, penalty="l21", loss="logistic", n_alphas=4, eps=0.05,
        tol=1e-10, **kwargs)
    assert coefs.shape == (T, K, d, 4) and intercepts.shape == (T, K, 4)
    assert not np.any(coefs[..., 0]) and np.all(np.any(coefs[..., 1:], axis=(0, 1, 2)))
    for k in range(1, 4):
        solution = SimpleNamespace(coef_=coefs[..., k], intercept_=intercepts[..., k])
        assert kkt(problems, solution, "l21", alphas[k]) < 1e-5
    alphas, coefs, intercepts, _, _ = regularization_path(
        *args, penalty="l2", loss="logistic", alphas=[0.1, 0.01], tol=1e-12,
        max_iter=100_000, **kwargs)
    for k, alpha in enumerate(alphas):
        for t, (Xt, yt) in enumerate(tasks):
            ref = LogisticRegression(C=1.0 / (alpha * len(yt)), tol=1e-12,
                                     max_iter=10_000).fit(Xt, yt)
            n_classes = ref.classes_.size
            np.testing.assert_allclose(coefs[t, :n_classes, :, k], ref.coef_,
                                       atol=1e-6)
            np.testing.assert_allclose(intercepts[t, :n_classes, k],
                                       ref.intercept_, atol=1e-6)


@pytest.mark.parametrize("penalty", ["l21", "trace"])
def test_objective_matches_cvxpy(penalty):
    cp = pytest.importorskip("cvxpy")
    X, y, task = stacked_data(seed=5, sizes=(25, 35), d=3)
    alpha = 0.02
    model = MultiTaskClassifier(penalty, alpha, task_col=-1, **TOL).fit(
        np.column_stack([X, task]), y)
    problems = task_problems(X, y, task)
    K, d = 3, X.shape[1]
    W = [cp.Variable((d, K)) for _ in problems]
    b = [cp.Variable(K) for _ in problems]
    fit = 0
    for t, (Xt, codes, s) in enumerate(problems):
        Z = Xt @ W[t] + np.ones((len(codes), 1)) @ cp.reshape(b[t], (1, K),
                                                              order="C")
        onehot = np.eye(K)[codes]
        fit += (cp.sum(cp.log_sum_exp(Z, axis=1))
                - cp.sum(cp.multiply(onehot, Z))) / len(codes)
    stacked = cp.hstack(W)
    norm = (cp.sum(cp.norm(stacked, 2, axis=1)) if penalty == "l21"
            else cp.normNuc(stacked))
    problem = cp.Problem(cp.Minimize(fit + alpha * norm))
    problem.solve(solver=cp.CLARABEL)
    ours = objective(problems, model.coef_, model.intercept_, penalty, alpha)
    assert ours <= problem.value + 1e-7
    assert ours >= problem.value - 1e-6  # cvxpy's accuracy
    ref = np.stack([Wt.value.T for Wt in W])
    np.testing.assert_allclose(model.coef_, ref, atol=2e-4)


def test_task_graph_couples_each_class_across_tasks():
    """With a mean graph: grad F + alpha W + W (K kron I) = 0 (l2), and a
    strong graph pulls the tasks' class weights together."""
    X, Y = shared_data(seed=6, classes=(3, 3))
    alpha, graph_alpha = 0.02, 0.5
    model = MultiTaskClassifier("l2", alpha, task_graph="mean",
                                graph_alpha=graph_alpha, **TOL).fit(X, Y)
    problems = task_problems(X, Y, None)
    G, g = gradients(problems, model.coef_, model.intercept_)
    # "mean": graph_alpha sum_t ||W_t - mean_s W_s||^2, class by class
    coupling = 2 * graph_alpha * (model.coef_ - model.coef_.mean(axis=0))
    residual = G + alpha * model.coef_ + coupling
    assert np.abs(residual).max() < 1e-6 and np.abs(g).max() < 1e-6
    strong = MultiTaskClassifier("l2", alpha, task_graph="mean",
                                 graph_alpha=1e4, tol=1e-8).fit(X, Y)
    spread = np.abs(strong.coef_[0] - strong.coef_[1]).max()
    assert spread < 1e-3 * np.abs(strong.coef_).max()


# ------------------------------------------------------------ estimator API
def test_string_labels_stacked_predictions_and_score():
    X, y, task = stacked_data(seed=7)
    names = np.array(["cat", "dog", "emu"])[y]
    Xt = np.column_stack([X, task])
    model = MultiTaskClassifier("l21", 0.01, task_col=-1).fit(Xt, names)
    np.testing.assert_array_equal(model.classes_, ["cat", "dog", "emu"])
    assert model.coef_.shape == (3, 3, X.shape[1])
    assert model.intercept_.shape == (3, 3)
    proba = model.predict_proba(Xt)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_allclose(np.log(proba), model.predict_log_proba(Xt),
                               atol=1e-12)
    np.testing.assert_array_equal(model.predict(Xt),
                                  model.classes_[np.argmax(proba, axis=1)])
    assert model.score(Xt, names) == np.mean(model.predict(Xt) == names)


def test_missing_labels_equal_the_fit_of_the_observed_entries():
    X, Y = shared_data(seed=8, classes=(3, 3))
    Y = Y.astype(float)
    rng = np.random.default_rng(8)
    Y[rng.random(Y.shape) < 0.3] = np.nan
    model = MultiTaskClassifier("l21", 0.01, tol=1e-10).fit(X, Y)
    rows = [~np.isnan(Y[:, t]) for t in range(2)]
    Xs = np.vstack([X[r] for r in rows])
    task = np.concatenate([np.full(r.sum(), t) for t, r in enumerate(rows)])
    ys = np.concatenate([Y[r, t] for t, r in enumerate(rows)])
    ref = MultiTaskClassifier("l21", 0.01, task_col=-1, tol=1e-10).fit(
        np.column_stack([Xs, task]), ys)
    np.testing.assert_allclose(model.coef_, ref.coef_, atol=1e-7)
    np.testing.assert_allclose(model.intercept_, ref.intercept_, atol=1e-7)


def test_single_class_task_predicts_its_smoothed_base_rate():
    X, y, task = stacked_data(seed=9)
    y = np.where(task == 2, 1, y)
    Xt = np.column_stack([X, task])
    with pytest.warns(UserWarning, match="lack training samples"):
        model = MultiTaskClassifier("l2", 10.0, task_col=-1).fit(Xt, y)
    rows = task == 2
    np.testing.assert_array_equal(model.predict(Xt[rows]), 1)
    n = rows.sum()  # n of class 1, half a sample of each other class
    np.testing.assert_allclose(model.predict_proba(Xt[rows])[:, 1],
                               n / (n + 1.0), atol=2e-3)


def test_class_weight_balanced_equals_sample_weights():
    X, y, task = stacked_data(seed=10)
    Xt = np.column_stack([X, task])
    model = MultiTaskClassifier("l21", 0.01, task_col=-1, class_weight="balanced",
                                tol=1e-10).fit(Xt, y)
    s = np.empty(len(y))
    for t in range(3):
        rows = task == t
        counts = np.bincount(y[rows], minlength=3)
        s[rows] = rows.sum() / (3 * counts[y[rows]])
    ref = MultiTaskClassifier("l21", 0.01, task_col=-1, tol=1e-10).fit(
        Xt, y, sample_weight=s)
    np.testing.assert_allclose(model.coef_, ref.coef_, atol=1e-7)


def test_unseen_task_mean_and_warm_start():
    X, y, task = stacked_data(seed=11)
    Xt = np.column_stack([X, task])
    model = MultiTaskClassifier("l2", 0.02, task_col=-1, unseen_task="mean",
                                warm_start=True, tol=1e-8).fit(Xt, y)
    new = np.column_stack([X[:5], np.full(5, 99)])
    scores = model.decision_function(new)
    expected = X[:5] @ model.coef_.mean(axis=0).T + model.intercept_.mean(axis=0)
    np.testing.assert_allclose(scores, expected, atol=1e-12)
    first = model.n_iter_
    model.fit(Xt, y)
    assert model.n_iter_ < first


def test_refusals_name_the_alternative():
    X, y, task = stacked_data(seed=12)
    Xt = np.column_stack([X, task])
    with pytest.raises(ValueError, match="prox_newton.*multinomial"):
        MultiTaskClassifier("l21", 0.01, task_col=-1,
                            solver="prox_newton").fit(Xt, y)
    with pytest.raises(ValueError, match="multiclass"):
        MultiTaskRelationClassifier(task_col=-1).fit(Xt, y)
    with pytest.raises(ValueError, match="MultiTaskClassifier"):
        MultiTaskEstimator(loss="logistic", task_col=-1).fit(Xt, y)


# ------------------------------------------------------------ CV
def test_cv_default_score_is_the_held_out_log_loss():
    X, y, task = stacked_data(seed=13, sizes=(60, 80, 70))
    Xt = np.column_stack([X, task])
    strata = np.char.add(task.astype(str), y.astype(str))
    folds = list(TaskStratifiedKFold(3).split(Xt, y, strata))
    model = MultiTaskClassifierCV("l21", alphas=4, cv=folds, task_col=-1,
                                  tol=1e-10).fit(Xt, y)
    assert model.coef_.shape == (3, 3, X.shape[1])
    # the fold scores are minus the log-loss of each fold's model on its
    # held-out rows: recompute them with the public estimator
    for k, alpha in enumerate(model.alphas_):
        for f, (train, test) in enumerate(folds):
            fold = MultiTaskClassifier("l21", alpha, task_col=-1, tol=1e-10)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # all-zero at the top
                fold.fit(Xt[train], y[train])
            expected = -log_loss(y[test], fold.predict_proba(Xt[test]))
            assert model.score_path_[k, f] == pytest.approx(expected, rel=1e-6)


def test_cv_with_a_named_scorer_and_shared_layout():
    X, Y = shared_data(seed=14, n=150)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = MultiTaskClassifierCV(["l21", "trace"], alphas=3, cv=3,
                                      scoring="accuracy").fit(X, Y)
    assert model.penalty_ in ("l21", "trace")
    assert np.isfinite(model.best_score_)
    assert len(model.predict_proba(X)) == 3


@pytest.mark.parametrize("condition", [1.0, 1e4])
@pytest.mark.parametrize("alpha", [1e-2, 1e-4])
def test_default_accuracy_at_least_scikit_learns(condition, alpha):
    """At default settings the coefficients (l2, Newton-CG) are as close to
    the optimum as LogisticRegression's at its defaults, on an
    ill-conditioned design too."""
    rng = np.random.default_rng(0)
    n, d = 300, 10
    U = np.linalg.qr(rng.standard_normal((n, d)))[0]
    V = np.linalg.qr(rng.standard_normal((d, d)))[0]
    X = (U * np.logspace(0, -np.log10(condition), d)) @ V.T * np.sqrt(n)
    y = _labels(X, rng, 3)
    C = 1.0 / (alpha * n)
    exact = LogisticRegression(C=C, tol=1e-14, max_iter=100_000).fit(X, y).coef_
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lbfgs may stop on its iterations
        theirs = LogisticRegression(C=C).fit(X, y).coef_
    ours = MultiTaskClassifier("l2", alpha).fit(X, y).coef_[0]

    def error(coef):
        return np.linalg.norm(coef - exact) / np.linalg.norm(exact)
    assert error(ours) <= max(error(theirs), 1e-6)


def test_inspection_of_multiclass_tasks():
    """task_relatedness takes a task's classes' weights as one vector;
    sharing_gain scores accuracy, and refuses a ranking score clearly."""
    from mtlinear.inspection import sharing_gain, task_relatedness
    X, y, task = stacked_data(seed=15, sizes=(90, 90, 90))
    Xt = np.column_stack([X, task])
    model = MultiTaskClassifier("l21", 0.01, task_col=-1).fit(Xt, y)
    flat = model.coef_.reshape(3, -1)
    np.testing.assert_allclose(task_relatedness(model), np.corrcoef(flat))
    result = sharing_gain(model, Xt, y, cv=3, scoring="accuracy",
                          random_state=0)
    assert np.all(np.isfinite(result.gain))
    with pytest.raises(ValueError, match="scoring='accuracy'"):
        sharing_gain(model, Xt, y, cv=3)


@pytest.mark.parametrize("penalty", ["l2", "l21"])
@pytest.mark.parametrize("layout", ["shared", "stacked"])
def test_sparse_equals_dense(penalty, layout):
    import scipy.sparse as sp
    if layout == "shared":
        X, Y = shared_data(seed=16)
        X[np.abs(X) < 0.8] = 0.0
        params, data = {}, (X, Y)
    else:
        X, Y, task = stacked_data(seed=16)
        X[np.abs(X) < 0.8] = 0.0
        params, data = dict(task_col=-1), (np.column_stack([X, task]), Y)
    dense = MultiTaskClassifier(penalty, 0.01, tol=1e-10, **params).fit(*data)
    sparse = MultiTaskClassifier(penalty, 0.01, tol=1e-10, **params).fit(
        sp.csr_matrix(data[0]), data[1])
    np.testing.assert_allclose(sparse.coef_, dense.coef_, atol=1e-7)
    np.testing.assert_allclose(sparse.intercept_, dense.intercept_, atol=1e-7)


def test_class_weight_dict_names_any_tasks_labels():
    """A dict of weights over the labels of several columns: each column
    takes its own entries (the others weigh 1); an unknown label is an
    error."""
    rng = np.random.default_rng(17)
    X = rng.standard_normal((150, 4))
    Y = np.column_stack([np.array(["a", "b", "c"])[_labels(X, rng, 3)],
                         np.array(["x", "y"])[_labels(X, rng, 2)]])
    model = MultiTaskClassifier("l2", 0.01, class_weight={"a": 2.0, "x": 3.0},
                                tol=1e-10).fit(X, Y)
    s = np.column_stack([np.where(Y[:, 0] == "a", 2.0, 1.0),
                         np.where(Y[:, 1] == "x", 3.0, 1.0)])
    # the l2 tasks decouple: each alone with its weights (the binary column
    # is a two-class softmax: a binary model at half the alpha)
    for t, alpha in enumerate([0.01, 0.005]):
        alone = MultiTaskClassifier("l2", alpha, tol=1e-10).fit(
            X, Y[:, t], sample_weight=s[:, t])
        np.testing.assert_allclose(
            model.predict_proba(X)[t][:, :alone.classes_.size],
            alone.predict_proba(X), atol=1e-6)
    with pytest.raises(ValueError, match="no task has"):
        MultiTaskClassifier(class_weight={"z": 2.0}).fit(X, Y)
