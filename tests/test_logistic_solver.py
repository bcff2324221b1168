"""The logistic solvers (proximal Newton for l1 / l21, Newton-CG for l2, FISTA)
against scikit-learn and the duality gap recomputed by :mod:`_reference`.

Every solver is run at a tight tolerance on dense and sparse data in both
layouts, with intercepts, sample weights and class weights.  Independent
tasks (l1, l2) must give scikit-learn's ``LogisticRegression`` at ``C_t =
1 / (alpha n_t)`` task by task; l21 must have a duality gap, recomputed here,
below the target.
"""
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.utils.class_weight import compute_class_weight

from mtlinear import MultiTaskClassifier, stack_tasks

from _reference import logistic_duality_gap

SOLVERS = ["auto", "fista"]


def _stacked_problem(seed, sizes=(45, 80, 60), d=12, sparse=False):
    """Tasks with their own rows (different sizes), related weights, noisy
    labels {0, 1}, positive sample weights."""
    rng = np.random.default_rng(seed)
    w = np.zeros(d)
    w[:4] = rng.standard_normal(4) * 2
    Xs, ys = [], []
    for n_t in sizes:
        X = rng.standard_normal((n_t, d)) + 0.3
        if sparse:
            X *= rng.random((n_t, d)) < 0.4
        z = X @ (w + 0.5 * rng.standard_normal(d)) + 0.4 + rng.logistic(size=n_t)
        Xs.append(sp.csr_matrix(X) if sparse else X)
        ys.append((z > 0).astype(int))
    s = [rng.uniform(0.5, 2.0, n_t) for n_t in sizes]
    return Xs, ys, s


def _class_weights(class_weight, y, s):
    if class_weight is None:
        return np.ones(2)
    return compute_class_weight(class_weight, classes=np.array([0, 1]), y=y,
                                sample_weight=s)


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("penalty,l1_ratio", [("l1", 1.0), ("l2", 0.0),
                                              ("l1", 0.5)])
@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("class_weight", [None, "balanced"])
def test_stacked_tasks_reach_logistic_regression(solver, penalty, l1_ratio,
                                                 sparse, class_weight):
    Xs, ys, s = _stacked_problem(seed=1, sparse=sparse)
    X, y = stack_tasks(Xs, ys)
    alpha = 0.01
    model = MultiTaskClassifier(penalty=penalty, alpha=alpha, l1_ratio=l1_ratio,
                                task_col=-1, class_weight=class_weight,
                                solver=solver, tol=1e-13, max_iter=200_000)
    model.fit(X, y, sample_weight=np.concatenate(s))
    tasks = []
    for t, (Xt, yt, st) in enumerate(zip(Xs, ys, s)):
        c = _class_weights(class_weight, yt, st)
        n_t = np.sum(st * c[yt])
        ref = LogisticRegression(
            C=1.0 / (alpha * n_t), l1_ratio=l1_ratio, class_weight=class_weight,
            solver="lbfgs" if l1_ratio == 0 else "saga", tol=1e-12,
            max_iter=200_000).fit(Xt, yt, sample_weight=st)
        scale = max(np.abs(ref.coef_).max(), 1.0)
        np.testing.assert_allclose(model.coef_[t], ref.coef_[0], atol=2e-6 * scale)
        np.testing.assert_allclose(model.intercept_[t], ref.intercept_[0],
                                   atol=2e-6 * scale)
        dense = Xt.toarray() if sparse else Xt
        tasks.append((dense, np.where(yt == 1, 1.0, -1.0), st * c[yt]))
    primal, dual = logistic_duality_gap(tasks, model.coef_, model.intercept_,
                                        penalty, alpha, l1_ratio)
    assert -1e-12 <= primal - dual <= 1e-10


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("l1_ratio", [1.0, 0.7])
@pytest.mark.parametrize("layout", ["shared-dense", "shared-sparse",
                                    "stacked-sparse"])
def test_l21_gap_recomputed(solver, l1_ratio, layout):
    """More features than samples per task, so the working set has to grow;
    a class-weight dict and sample weights."""
    rng = np.random.default_rng(2)
    n, d, T = 70, 120, 3
    X = rng.standard_normal((n, d))
    W = np.zeros((d, T))
    W[:5] = rng.standard_normal((5, T)) * 1.5
    Y = (X @ W + rng.logistic(size=(n, T)) > 0).astype(int)
    s = rng.uniform(0.5, 2.0, n)
    cw = {0: 1.0, 1: 2.0}
    alpha, tol = 0.02, 1e-10
    model = MultiTaskClassifier(penalty="l21", alpha=alpha, l1_ratio=l1_ratio,
                                class_weight=cw, solver=solver, tol=tol,
                                max_iter=200_000)
    if layout == "stacked-sparse":
        X = X * (rng.random((n, d)) < 0.5)
        Xs, ys = stack_tasks([sp.csr_matrix(X)] * T, list(Y.T))
        model.set_params(task_col=-1).fit(Xs, ys, sample_weight=np.tile(s, T))
    else:
        model.fit(sp.csc_matrix(X) if layout == "shared-sparse" else X, Y,
                  sample_weight=s)
    tasks = [(X, np.where(Y[:, t] == 1, 1.0, -1.0),
              s * np.where(Y[:, t] == 1, cw[1], cw[0])) for t in range(T)]
    primal, dual = logistic_duality_gap(tasks, model.coef_, model.intercept_,
                                        "l21", alpha, l1_ratio)
    null = sum(-(p * np.log(p) + (1 - p) * np.log(1 - p)) for p in (
        np.sum(st[yt > 0]) / st.sum() for _, yt, st in tasks))
    assert -1e-12 <= primal - dual <= tol * null
    assert model.dual_gap_ <= tol * null
    assert 0 < np.sum(np.any(model.coef_ != 0, axis=0)) < d  # sparse rows


@pytest.mark.parametrize("penalty", ["l1", "l2", "l21"])
def test_separable_data_warns_and_stays_finite(penalty):
    """Separable tasks, a vanishing alpha and few Newton steps: the weights
    stay finite and the fit says it did not converge."""
    rng = np.random.default_rng(17)
    X = rng.standard_normal((40, 4)) * 1e3
    Y = np.column_stack([X[:, 0] > 0, X[:, 1] + X[:, 2] > 0]).astype(int)
    model = MultiTaskClassifier(penalty=penalty, alpha=1e-12, max_iter=5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(X, Y)
    assert ConvergenceWarning in {w.category for w in caught}
    assert {w.category for w in caught} <= {ConvergenceWarning}
    assert np.all(np.isfinite(model.coef_)) and np.isfinite(model.dual_gap_)
    assert model.score(X, Y) >= 0.9


def test_warm_start_path_matches_cold_fits():
    """Warm starts go through the same solver: decreasing alphas on the same
    model end where a cold fit ends (both against the recomputed gap)."""
    Xs, ys, s = _stacked_problem(seed=3, sparse=True)
    X, y = stack_tasks(Xs, ys)
    model = MultiTaskClassifier(penalty="l1", task_col=-1, warm_start=True,
                                tol=1e-12, max_iter=10_000)
    for alpha in (0.1, 0.03, 0.01):
        model.set_params(alpha=alpha).fit(X, y)
    tasks = [(Xt.toarray(), np.where(yt == 1, 1.0, -1.0), np.ones(len(yt)))
             for Xt, yt in zip(Xs, ys)]
    primal, dual = logistic_duality_gap(tasks, model.coef_, model.intercept_,
                                        "l1", 0.01)
    assert primal - dual <= 1e-11


@pytest.mark.parametrize("penalty", ["l1", "l21"])
@pytest.mark.parametrize("layout", ["shared", "stacked"])
def test_correlated_dense_small_alpha(penalty, layout):
    """Columns sharing a common factor, alpha a hundredth of the smallest
    alpha that zeroes everything: the regime where the inner coordinate
    descent of proximal Newton converges slowly (Anderson extrapolation,
    stopping on the model's violation, dense lanes).  ``auto`` and ``fista``
    must reach the recomputed duality gap target, agree with each other and,
    for l1 (independent tasks), with ``LogisticRegression`` per task."""
    rng = np.random.default_rng(5)
    n, d, T = 160, 30, 3
    X = rng.standard_normal((n, d)) + 0.8 * rng.standard_normal((n, 1))
    W = np.zeros((d, T))
    W[:6] = rng.standard_normal((6, T)) * 1.5
    Y = (X @ W + 0.3 + rng.logistic(size=(n, T)) > 0).astype(int)
    tasks = [(X, np.where(Y[:, t] == 1, 1.0, -1.0), np.ones(n)) for t in range(T)]
    G = np.column_stack([X.T @ (yt > 0).astype(float) - X.T.sum(axis=1)
                         * np.mean(yt > 0) for _, yt, _ in tasks]) / n
    top = np.abs(G).max() if penalty == "l1" else np.linalg.norm(G, axis=1).max()
    alpha, tol = top / 100, 1e-11
    null = sum(-(p * np.log(p) + (1 - p) * np.log(1 - p))
               for p in Y.mean(axis=0))
    coefs = {}
    for solver in SOLVERS:
        model = MultiTaskClassifier(penalty=penalty, alpha=alpha, solver=solver,
                                    tol=tol, max_iter=200_000)
        if layout == "stacked":
            Xs, ys = stack_tasks([X] * T, list(Y.T))
            model.set_params(task_col=-1).fit(Xs, ys)
        else:
            model.fit(X, Y)
        primal, dual = logistic_duality_gap(tasks, model.coef_, model.intercept_,
                                            penalty, alpha)
        assert -1e-12 <= primal - dual <= tol * null
        assert np.sum(model.coef_ != 0) > d  # many active rows, not a trivial fit
        coefs[solver] = np.column_stack([model.coef_, model.intercept_])
    scale = max(np.abs(coefs["auto"]).max(), 1.0)
    np.testing.assert_allclose(coefs["auto"], coefs["fista"], atol=1e-4 * scale)
    if penalty == "l1":
        for t in range(T):
            ref = LogisticRegression(C=1.0 / (alpha * n), l1_ratio=1.0,
                                     solver="saga", tol=1e-12,
                                     max_iter=200_000).fit(X, Y[:, t])
            np.testing.assert_allclose(
                coefs["auto"][t], np.r_[ref.coef_[0], ref.intercept_],
                atol=1e-4 * scale)


@pytest.mark.parametrize("direct_max", [0, 1000])
@pytest.mark.parametrize("loss", ["logistic", "poisson", "huber"])
@pytest.mark.parametrize("layout", ["shared", "stacked-dense", "stacked-sparse"])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_newton_cg_exact_and_conjugate_gradient_steps(monkeypatch, direct_max,
                                                      loss, layout,
                                                      fit_intercept):
    """Newton-CG's two ways to a Newton step, conjugate gradients (with the
    one-pass CSR Hessian product) and the exact per-task Hessian blocks,
    reach the same ridge solution: KKT conditions recomputed with numpy,
    sample weights included."""
    import mtlinear._newton_cg as newton_cg
    from mtlinear import MultiTaskRegressor
    monkeypatch.setattr(newton_cg, "_DIRECT_MAX_FEATURES", direct_max)
    rng = np.random.default_rng(7)
    n, d, T = 90, 6, 3
    X = rng.standard_normal((n, d)) * rng.uniform(0.5, 3.0, d) + 1.0
    if layout == "stacked-sparse":
        X *= rng.random((n, d)) < 0.5
    task = np.repeat(np.arange(T), n // T)
    W_true = rng.standard_normal((d, T)) * 0.3
    if layout == "shared":
        Z = X @ W_true
    else:
        Z = np.einsum("ij,ji->i", X, W_true[:, task])
    if loss == "logistic":
        Y = (Z + rng.logistic(size=Z.shape) > 0).astype(float)
    elif loss == "poisson":
        Y = rng.poisson(np.exp(0.5 * Z)).astype(float)
    else:
        Y = Z + rng.standard_t(2, size=Z.shape)
    s = rng.uniform(0.5, 2.0, n)
    alpha = 0.05
    params = dict(penalty="l2", alpha=alpha, fit_intercept=fit_intercept,
                  solver="auto", tol=1e-10, max_iter=1000)
    shared = layout == "shared"
    Xfit = X if shared else np.column_stack([X, task])
    if layout == "stacked-sparse":
        Xfit = sp.csr_matrix(Xfit)
    if loss == "logistic":
        model = MultiTaskClassifier(task_col=None if shared else -1, **params)
    else:
        model = MultiTaskRegressor(loss=loss, task_col=None if shared else -1,
                                   **params)
    model.fit(Xfit, Y, sample_weight=s)
    assert model.n_iter_ < 1000
    coef = np.atleast_2d(model.coef_).reshape(T, d)
    b = np.ravel(model.intercept_) if fit_intercept else np.zeros(T)
    for t in range(T):
        rows = slice(None) if shared else task == t
        Xt, st = X[rows], s[rows]
        yt = Y[rows, t] if shared else Y[rows]
        z = Xt @ coef[t] + b[t]
        if loss == "logistic":
            D = -(2 * yt - 1) / (1 + np.exp((2 * yt - 1) * z))
        elif loss == "poisson":
            D = np.exp(z) - yt
        else:
            D = -np.clip(yt - z, -model.delta, model.delta)
        D = st * D / st.sum()
        np.testing.assert_allclose(Xt.T @ D + alpha * coef[t], 0.0, atol=1e-8)
        if fit_intercept:
            assert abs(D.sum()) <= 1e-8


@pytest.mark.parametrize("gram_max_rows", [0, 32])
@pytest.mark.parametrize("penalty,l1_ratio", [("l1", 1.0), ("l21", 1.0),
                                              ("l1", 0.5), ("l21", 0.5)])
@pytest.mark.parametrize("layout", ["shared", "stacked"])
def test_prox_newton_model_on_gram_or_samples(monkeypatch, gram_max_rows,
                                              penalty, l1_ratio, layout):
    """Proximal Newton solves its model by epochs over the samples or, with
    few working rows, on their Gram matrices: both reach the recomputed
    duality-gap target and the same solution, with sample weights and
    intercepts, dense correlated columns, a small alpha."""
    import mtlinear._prox_newton as prox_newton
    monkeypatch.setattr(prox_newton, "_GRAM_MAX_ROWS", gram_max_rows)
    rng = np.random.default_rng(11)
    n, d, T = 150, 12, 3
    X = rng.standard_normal((n, d)) + 0.6 * rng.standard_normal((n, 1))
    W = np.zeros((d, T))
    W[:4] = rng.standard_normal((4, T)) * 1.5
    Y = (X @ W + 0.4 + rng.logistic(size=(n, T)) > 0).astype(int)
    s = rng.uniform(0.5, 2.0, n)
    alpha, tol = 1e-3, 1e-12
    model = MultiTaskClassifier(penalty=penalty, alpha=alpha, l1_ratio=l1_ratio,
                                tol=tol, max_iter=10_000)
    if layout == "stacked":
        Xs, ys = stack_tasks([X] * T, list(Y.T))
        model.set_params(task_col=-1).fit(Xs, ys, sample_weight=np.tile(s, T))
    else:
        model.fit(X, Y, sample_weight=s)
    assert model.n_iter_ < 10_000
    tasks = [(X, np.where(Y[:, t] == 1, 1.0, -1.0), s) for t in range(T)]
    primal, dual = logistic_duality_gap(tasks, model.coef_, model.intercept_,
                                        penalty, alpha, l1_ratio)
    null = sum(-(p * np.log(p) + (1 - p) * np.log(1 - p))
               for p in (s @ Y) / s.sum())
    assert -1e-12 <= primal - dual <= 10 * tol * null
    assert np.sum(model.coef_ != 0) > T  # a model, not a trivial fit
    reference = MultiTaskClassifier(penalty=penalty, alpha=alpha,
                                    l1_ratio=l1_ratio, solver="fista",
                                    tol=1e-13, max_iter=500_000).fit(
                                        X, Y, sample_weight=s)
    np.testing.assert_allclose(model.coef_, reference.coef_, atol=1e-5)
    np.testing.assert_allclose(model.intercept_, reference.intercept_,
                               atol=1e-5)


def test_prox_newton_gram_model_on_ill_conditioned_columns():
    """Few columns of very different scales, two nearly equal, dummies;
    20 small stacked tasks, l21 at a small alpha.  The Newton models solved
    on the Gram matrices by plain epochs crawled (5000 epochs every Newton
    step, 833 steps, 26 s); with Anderson extrapolation about 20 steps.
    The recomputed gap meets the default target."""
    rng = np.random.default_rng(0)
    T, n = 20, 60
    base = rng.standard_normal((T * n, 3))
    X = np.column_stack([base, base[:, 0] + 1e-3 * rng.standard_normal(T * n),
                         100 * base[:, 1] + rng.standard_normal(T * n),
                         rng.integers(0, 2, (T * n, 3))])
    task = np.repeat(np.arange(T), n)
    w = 0.3 * rng.standard_normal(X.shape[1])
    y = (5 * X @ w / np.abs(X).mean(0).sum()
         + rng.standard_normal(T * n) > 0).astype(int)
    alpha = 1e-4
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = MultiTaskClassifier(task_col=-1, penalty="l21", alpha=alpha,
                                    max_iter=200).fit(
            np.column_stack([X, task]), y)
    assert model.n_iter_ <= 60
    tasks = [(X[task == t], np.where(y[task == t] == 1, 1.0, -1.0),
              np.ones(n)) for t in range(T)]
    primal, dual = logistic_duality_gap(tasks, model.coef_, model.intercept_,
                                        "l21", alpha)
    null = sum(-(p * np.log(p) + (1 - p) * np.log(1 - p))
               for p in (np.mean(yt > 0) for _, yt, _ in tasks))
    assert -1e-12 <= primal - dual <= model.tol * null


@pytest.mark.parametrize("scale", [0.3, 300.0])
def test_line_search_hands_on_the_loss_at_the_step_it_takes(scale):
    """The value, derivative and curvature the line search returns for its
    step (the next gap's and Newton model's) are the loss's at ``z + t dz``,
    recomputed here (the value where the search computed one): a short
    direction is taken whole, a long one that overshoots is halved."""
    from mtlinear._datafit import LossAt
    from mtlinear._prox_newton import _line_search
    from mtlinear.losses import LogisticLoss

    class Zero:  # no penalty: the data fit alone decides
        def value(self, W, rows=None):
            return 0.0

        def slope(self, W, delta, side, rows=None):
            return 0.0

    rng = np.random.default_rng(3)
    loss = LogisticLoss()
    n = 200
    z = rng.standard_normal((n, 1))
    y = np.where(rng.random((n, 1)) < 0.5, -1.0, 1.0)
    v = rng.random((n, 1)) / n
    D0 = loss.derivative(z, y, v)
    dz = rng.standard_normal((n, 1))
    dz *= -scale * np.sign(np.vdot(dz, D0))  # a descent direction
    before = z.copy()
    at = LossAt(loss, z, y, v, F=loss.value(z, y, v))
    t, (F, D, H) = _line_search(at, dz, Zero(), np.zeros((1, 1)),
                                np.zeros((1, 1)), np.arange(1),
                                float(np.vdot(dz, D0)))
    assert t > 0
    np.testing.assert_array_equal(z, before)
    reached = z + t * dz
    D_ref, H_ref = loss.derivatives(reached, y, v)
    np.testing.assert_allclose(D, D_ref, rtol=1e-14)
    np.testing.assert_allclose(H, H_ref, rtol=1e-14)
    assert (t == 1.0) == (scale < 1)
    assert F is None or F == pytest.approx(loss.value(reached, y, v),
                                           rel=1e-14)


@pytest.mark.parametrize("penalty", ["l1", "l2", "l21"])
@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_newton_models_reuse_only_the_derivatives_of_their_own_point(
        monkeypatch, penalty, sparse, fit_intercept):
    """Both Newton solvers build the next model from the derivatives their
    line search computed at the step taken: recomputed here at every model
    (proximal Newton for l1 and l21, Newton-CG for l2), they are the same,
    and the reuse does happen."""
    import mtlinear._newton_cg as newton_cg
    import mtlinear._prox_newton as prox_newton

    reused = []

    def check(z, y, v, D, H):
        D_ref, H_ref = LogisticLoss().derivatives(z, y, v)
        np.testing.assert_allclose(D, D_ref, rtol=1e-12, atol=1e-300)
        np.testing.assert_allclose(H, H_ref, rtol=1e-12, atol=1e-300)
        reused.append(True)

    model_init = newton_cg._NewtonModel.__init__

    def checked_model(self, design, loss, z, y, v, derivatives=None):
        if derivatives is not None:
            check(z, y, v, *derivatives)
        model_init(self, design, loss, z, y, v, derivatives)

    direction = prox_newton._newton_direction

    def checked_direction(at, *args):
        if at.H is not None:
            check(at.z, at.y, at.v, at.D, at.H)
        return direction(at, *args)

    monkeypatch.setattr(newton_cg._NewtonModel, "__init__", checked_model)
    monkeypatch.setattr(prox_newton, "_newton_direction", checked_direction)
    from mtlinear.losses import LogisticLoss
    Xs, ys, s = _stacked_problem(seed=7, d=40, sparse=sparse)
    X, y = stack_tasks(Xs, ys)
    MultiTaskClassifier(task_col=-1, penalty=penalty, alpha=0.002, tol=1e-8,
                        fit_intercept=fit_intercept).fit(
        X, y, sample_weight=np.concatenate(s))
    assert reused


def test_logistic_loss_in_place_passes_match_the_formulas():
    """The logistic loss's passes (in place where the shapes allow) give
    the textbook formulas, broadcast shapes included, and leave their
    inputs as they were; a derivative asked alone is not kept."""
    from scipy.special import expit

    from mtlinear._datafit import LossAt
    from mtlinear.losses import LogisticLoss

    loss = LogisticLoss()
    rng = np.random.default_rng(0)
    for z_shape, y_shape, v_shape in [((50, 3), (50, 3), (50, 3)),
                                      ((50,), (50,), (50,)),
                                      ((50, 3), (50, 1), (50, 3)),
                                      ((50, 3), (50, 3), (50, 1))]:
        z = 30 * rng.standard_normal(z_shape)
        y = np.where(rng.random(y_shape) < 0.5, -1.0, 1.0)
        v = rng.random(v_shape)
        inputs = [a.copy() for a in (z, y, v)]
        p = expit(-y * z)
        D, H = loss.derivatives(z, y, v)
        np.testing.assert_allclose(D, -v * y * p, rtol=1e-15)
        np.testing.assert_allclose(H, v * p * (1 - p), rtol=1e-15)
        np.testing.assert_allclose(loss.derivative(z, y, v), -v * y * p,
                                   rtol=1e-15)
        np.testing.assert_allclose(loss.second_derivative(z, y, v),
                                   v * p * (1 - p), rtol=1e-15)
        if v.shape == z.shape:  # (the value takes one weight per entry)
            assert loss.value(z, y, v) == pytest.approx(
                float(np.sum(v * np.logaddexp(0.0, -y * z))), rel=1e-14)
        for a, b in zip((z, y, v), inputs):
            np.testing.assert_array_equal(a, b)
    at = LossAt(loss, z, y, v)
    at.derivative()
    assert at.D is None and at.H is None
    D, H = at.take_derivatives()
    assert at.D is None and H is not None


def test_prox_newton_line_search_refuses_a_long_step_that_raises_the_objective():
    """A direction along which the logistic loss saturates at once (its
    derivative climbs from -1/2 to 0) while the penalty rises: ``P'(0) =
    -1e6``, then ``P' = +4e5`` (below ``|P'(0)| / 2``, so the slope test
    alone takes the step 1), whereas ``P(1) - P(0)`` is about ``+4e5``.  On
    School's binary classes such a step started proximal Newton's failure
    (a gap of 57.8 after 5000 steps, ``tests/test_integration.py``).  The
    step taken must not raise the objective."""
    from mtlinear._datafit import LossAt
    from mtlinear._prox_newton import _line_search
    from mtlinear.losses import LogisticLoss

    class Rising:  # a penalty whose value rises by 4e5 along delta = 1
        def value(self, W, rows=None):
            return 4e5 * float(np.abs(W).sum())

        def slope(self, W, delta, side, rows=None):
            return 4e5 * float(np.abs(delta).sum())

    loss = LogisticLoss()
    z, dz = np.zeros((1, 1)), np.full((1, 1), 2.8e6)
    y, v = np.ones((1, 1)), np.ones((1, 1))
    W, delta, ws = np.zeros((1, 1)), np.ones((1, 1)), np.arange(1)
    data_slope = float(np.vdot(dz, loss.derivative(z, y, v)))
    assert data_slope + 4e5 == pytest.approx(-1e6)
    t, _ = _line_search(LossAt(loss, z, y, v), dz, Rising(), W, delta, ws,
                        data_slope)
    change = (loss.value(z + t * dz, y, v) - loss.value(z, y, v)
              + Rising().value(W + t * delta) - Rising().value(W))
    assert change <= 0.0


def test_prox_newton_ends_on_a_repeated_zero_step_and_auto_goes_on(monkeypatch):
    """A proximal Newton that finds no descent on the same working set twice
    ends there (here every line search is made to return 0), with a warning
    that says it stopped short of max_iter; "auto" then goes on from its
    iterate (Newton-ADMM, then FISTA) to the recomputed gap target."""
    import mtlinear._prox_newton as prox_newton
    monkeypatch.setattr(prox_newton, "_line_search",
                        lambda *args: (0.0, (None, None, None)))
    Xs, ys, s = _stacked_problem(seed=4)
    X, y = stack_tasks(Xs, ys)
    alpha, tol = 0.01, 1e-8
    params = dict(penalty="l21", alpha=alpha, task_col=-1, tol=tol,
                  max_iter=1000)
    with pytest.warns(ConvergenceWarning, match="too little progress"), \
            warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*every coefficient is zero")
        stopped = MultiTaskClassifier(solver="prox_newton", **params).fit(X, y)
    assert stopped.n_iter_ < 10
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = MultiTaskClassifier(**params).fit(X, y)
    tasks = [(Xt, np.where(yt == 1, 1.0, -1.0), np.ones(len(yt)))
             for Xt, yt in zip(Xs, ys)]
    primal, dual = logistic_duality_gap(tasks, model.coef_, model.intercept_,
                                        "l21", alpha)
    null = sum(-(p * np.log(p) + (1 - p) * np.log(1 - p))
               for p in (np.mean(yt) for yt in ys))
    assert -1e-12 <= primal - dual <= tol * null
    assert np.any(model.coef_ != 0)  # a model, not the start


def test_task_segments_of_csc_columns():
    """Each working column's entries split at the task boundaries of its
    (sorted) rows, empty tasks and empty columns included."""
    from mtlinear._prox_newton import _task_segments
    rng = np.random.default_rng(3)
    task_ptr = np.array([0, 7, 7, 20, 26, 40])  # task 1 has no rows
    dense = sp.random(40, 15, density=0.3, random_state=4).toarray()
    dense[:, 4] = 0.0  # an empty column
    C = sp.csc_matrix(dense)
    ws = np.sort(rng.choice(15, 9, replace=False)).astype(np.int64)
    ws[0] = 4
    ws.sort()
    seg = _task_segments(ws, C.indices, C.indptr, task_ptr)
    for k, j in enumerate(ws):
        rows = C.indices[C.indptr[j]:C.indptr[j + 1]]
        for t in range(len(task_ptr) - 1):
            inside = rows[(rows >= task_ptr[t]) & (rows < task_ptr[t + 1])]
            part = C.indices[seg[k, t]:seg[k, t + 1]]
            np.testing.assert_array_equal(part, inside)


@pytest.mark.parametrize("sparse", [True, False])
@pytest.mark.parametrize("positive", [False, True])
@pytest.mark.parametrize("l1_ratio", [1.0, 0.6])
def test_prox_newton_working_set_of_entries(monkeypatch, positive, l1_ratio,
                                            sparse):
    """A penalty separable over tasks (l1, elastic net) gets a working set
    of (feature, task) entries: a task's entries left out must stay zero and
    the rest solve the problem.  Small first working set (it grows over
    several passes), more features than some tasks have rows, a feature
    absent from one task, per-feature factors and signs: KKT conditions
    recomputed entry by entry and scikit-learn's solutions task by task."""
    import mtlinear._prox_newton as prox_newton
    monkeypatch.setattr(prox_newton, "_FIRST_WS", 1)
    rng = np.random.default_rng(8)
    sizes, d = (40, 90, 25), 50
    Xs, ys = [], []
    for t, n_t in enumerate(sizes):
        X = rng.standard_normal((n_t, d)) * (rng.random((n_t, d)) < 0.3)
        if t == 1:
            X[:, 7] = 0.0  # feature 7 never seen by task 1
        w = np.zeros(d)
        w[t:t + 6] = 2.0 * np.abs(rng.standard_normal(6))
        ys.append((X @ w + 0.3 + rng.logistic(size=n_t) > 0).astype(int))
        Xs.append(sp.csr_matrix(X) if sparse else X)
    factor = rng.uniform(0.5, 2.0, d)
    s = [rng.uniform(0.5, 2.0, n_t) for n_t in sizes]
    X, y = stack_tasks(Xs, ys)
    alpha = 0.02
    left_out = []

    def spy(epochs):
        def run(*args):  # which entries the epochs move
            left_out.append(int(np.sum(~args[-3])))
            return epochs(*args)
        return run

    for kernel in ("_cd_epochs", "_cd_epochs_dense", "_cd_epochs_gram"):
        monkeypatch.setattr(prox_newton, kernel,
                            spy(getattr(prox_newton, kernel)))
    model = MultiTaskClassifier(
        penalty="l1", alpha=alpha, l1_ratio=l1_ratio, task_col=-1,
        penalty_factor=factor, positive=positive, tol=1e-13,
        max_iter=10_000).fit(X, y, sample_weight=np.concatenate(s))
    assert max(left_out) > 0  # entries of the working rows were left out
    assert model.n_iter_ < 10_000
    lam, mu = alpha * l1_ratio, alpha * (1 - l1_ratio)
    for t, (Xt, yt, st) in enumerate(zip(Xs, ys, s)):
        Xd, sign = sp.csr_matrix(Xt).toarray(), np.where(yt == 1, 1.0, -1.0)
        w, b = model.coef_[t], model.intercept_[t]
        v = st / st.sum()
        D = -v * sign / (1.0 + np.exp(sign * (Xd @ w + b)))
        grad = Xd.T @ D + mu * factor * w
        assert abs(D.sum()) <= 1e-8  # the intercept's condition
        on = w != 0
        np.testing.assert_allclose(grad[on], -lam * factor[on] * np.sign(w[on]),
                                   atol=1e-7)
        if positive:
            assert np.all(w >= 0)
            assert np.all(grad[~on] >= -lam * factor[~on] - 1e-7)
        else:
            assert np.all(np.abs(grad[~on]) <= lam * factor[~on] + 1e-7)
        if t == 1:
            assert w[7] == 0.0
        assert np.sum(on) >= 2  # a model, not a trivial fit
    if not positive and l1_ratio == 1.0:  # scikit-learn: no signs; with
        # features divided by their factors, the l1 term has none either
        for t, (Xt, yt, st) in enumerate(zip(Xs, ys, s)):
            # factors: rescaled features
            scaled = (Xt.multiply(1.0 / factor).tocsr() if sparse
                      else Xt / factor)
            ref = LogisticRegression(
                C=1.0 / (alpha * st.sum()), l1_ratio=l1_ratio, solver="saga",
                tol=1e-12, max_iter=500_000).fit(scaled, yt, sample_weight=st)
            np.testing.assert_allclose(model.coef_[t], ref.coef_[0] / factor,
                                       atol=2e-5)


def test_sparse_column_copy_only_when_a_newton_step_is_taken(monkeypatch):
    """A sparse design's CSC copy is built for the first Newton direction:
    a fit that its first duality gap ends (``alpha >= alpha_max``) makes
    none, and still returns the zero model."""
    import mtlinear._solve as solve
    from mtlinear import alpha_max
    built = []
    columns = solve.DesignColumns

    def counting(design):
        built.append(design)
        return columns(design)

    monkeypatch.setattr(solve, "DesignColumns", counting)
    Xs, ys, _ = _stacked_problem(seed=2, sparse=True)
    X, y = stack_tasks(Xs, ys)
    top = alpha_max(X, y, penalty="l1", loss="logistic", task_col=-1)
    model = MultiTaskClassifier(penalty="l1", alpha=top, task_col=-1)
    with pytest.warns(UserWarning, match="every coefficient is zero"):
        model.fit(X, y)
    assert not built and not np.any(model.coef_)
    model.set_params(alpha=top / 10).fit(X, y)
    assert len(built) == 1 and np.any(model.coef_)


@pytest.mark.parametrize("mix,after", [(0.0, 10), (0.01, 0), (0.01, 2)])
@pytest.mark.parametrize("layout", ["shared-dense", "stacked-dense",
                                    "stacked-sparse"])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_newton_cg_on_badly_scaled_columns(monkeypatch, mix, after, layout,
                                           fit_intercept):
    """Newton-CG's conjugate gradients, plain and preconditioned by the
    curvature's diagonal (``_PCG_MIX``) from the start or after a restart
    (``_PCG_AFTER``; the compiled ones of a sparse stacked design, the
    Python ones otherwise), on columns scaled over four decades and more
    features than the exact steps take: scikit-learn's
    ``LogisticRegression`` task by task (by exact Newton steps: lbfgs at
    ``tol=1e-10`` stops at gradients of 1e-4 on such columns)."""
    import mtlinear._newton_cg as newton_cg
    monkeypatch.setattr(newton_cg, "_PCG_MIX", mix)
    monkeypatch.setattr(newton_cg, "_PCG_AFTER", after)
    rng = np.random.default_rng(11)
    sizes, d = (70, 110, 90), 40
    scale = np.logspace(-2, 2, d)
    rng.shuffle(scale)
    w = rng.standard_normal(d) / scale
    if layout == "shared-dense":
        X = rng.standard_normal((sizes[1], d)) * scale + 0.5 * scale
        Y = np.column_stack([(X @ (w + 0.3 * rng.standard_normal(d) / scale)
                              + rng.logistic(size=sizes[1]) > 0)
                             for _ in range(3)]).astype(int)
        tasks = [(X, Y[:, t]) for t in range(3)]
        Xfit, yfit, task_col = X, Y, None
    else:
        tasks = []
        for n_t in sizes:
            X = rng.standard_normal((n_t, d)) * scale + 0.5 * scale
            if layout == "stacked-sparse":
                X *= rng.random((n_t, d)) < 0.5
            z = X @ (w + 0.3 * rng.standard_normal(d) / scale)
            tasks.append((sp.csr_matrix(X) if layout == "stacked-sparse" else X,
                          (z + rng.logistic(size=n_t) > 0).astype(int)))
        Xfit, yfit = stack_tasks([X for X, _ in tasks], [y for _, y in tasks])
        task_col = -1
    alpha = 1e-3
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = MultiTaskClassifier(penalty="l2", alpha=alpha, task_col=task_col,
                                    fit_intercept=fit_intercept, tol=1e-13,
                                    max_iter=1000).fit(Xfit, yfit)
    for t, (Xt, yt) in enumerate(tasks):
        ref = LogisticRegression(C=1.0 / (alpha * len(yt)),
                                 solver="newton-cholesky",
                                 fit_intercept=fit_intercept, tol=1e-10,
                                 max_iter=100_000).fit(
            Xt.toarray() if sp.issparse(Xt) else Xt, yt)
        # compared in the units of the columns: w_j scale_j
        np.testing.assert_allclose(model.coef_[t] * scale, ref.coef_[0] * scale,
                                   atol=1e-6 * max(np.abs(ref.coef_[0] * scale).max(), 1.0))
        if fit_intercept:
            assert model.intercept_[t] == pytest.approx(ref.intercept_[0], abs=1e-6)


def test_settling_step_is_certified_by_the_met_gaps_dual_point(monkeypatch,
                                                                capsys):
    # once the gap is met, proximal Newton takes single steps until one is
    # small (the coefficient rule); the last one's certificate is its fresh
    # primal against the best dual value so far, with no pass over X^T: it
    # must still bound the distance to the optimum
    from mtlinear._datafit import SampleDatafit
    Xs, ys, s = _stacked_problem(1, sparse=True, d=40, sizes=(60, 90, 70))
    X, y = stack_tasks(Xs, ys)
    weights = np.concatenate(s)
    evaluations = []
    full_gap = SampleDatafit.gap_and_gradient

    def counted(self, *args, **kwargs):
        evaluations.append(1)
        return full_gap(self, *args, **kwargs)

    monkeypatch.setattr(SampleDatafit, "gap_and_gradient", counted)
    alpha, tol = 0.01, 1e-4
    model = MultiTaskClassifier(penalty="l1", alpha=alpha, task_col=-1,
                                tol=tol, verbose=3).fit(X, y,
                                                        sample_weight=weights)
    certificates = [line for line in capsys.readouterr().out.splitlines()
                    if " gap " in line]
    assert len(certificates) == len(evaluations) + 1
    tight = MultiTaskClassifier(penalty="l1", alpha=alpha, task_col=-1,
                                tol=1e-13, max_iter=10_000).fit(
                                    X, y, sample_weight=weights)
    tasks = [(Xt.toarray(), np.where(yt == 1, 1.0, -1.0), st)
             for Xt, yt, st in zip(Xs, ys, s)]
    primal, _ = logistic_duality_gap(tasks, model.coef_, model.intercept_,
                                     "l1", alpha)
    optimum, _ = logistic_duality_gap(tasks, tight.coef_, tight.intercept_,
                                      "l1", alpha)
    null = float(certificates[0].split("objective")[1].split()[0])
    # the dual value it certifies with is below the optimum
    assert primal - model.dual_gap_ <= optimum + 1e-13
    assert model.dual_gap_ <= tol * null
