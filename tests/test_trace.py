"""Trace-norm penalty: optimality conditions, cvxpy, and a closed form.

The trace-norm problem is

    min_W  F(W) + lam ||W||_* + mu/2 ||W||_F^2,   lam = alpha r, mu = alpha (1 - r).

At the optimum, with ``W = U S V^T`` (thin SVD over the nonzero singular
values) and ``G = -grad F(W) - mu W``, ``G`` is in ``lam`` times the
subdifferential of the nuclear norm:

    G = lam U V^T + G_perp,  U^T G_perp = 0,  G_perp V = 0,  ||G_perp||_2 <= lam.
"""
import numpy as np
import pytest
import scipy.sparse as sp

from mtlinear import MultiTaskRegressor, alpha_max, stack_tasks

from _reference import prox_norm

pytestmark = pytest.mark.filterwarnings("error::sklearn.exceptions.ConvergenceWarning")


def _low_rank_problem(n, d, T, seed, rank=2):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    W = rng.standard_normal((d, rank)) @ rng.standard_normal((rank, T))
    Y = X @ W + 1.0 + 0.5 * rng.standard_normal((n, T))
    return X, Y, rng.uniform(0.2, 2.0, n)


@pytest.mark.parametrize("n,d", [(80, 10), (20, 40)])  # statistics / samples
@pytest.mark.parametrize("l1_ratio", [1.0, 0.6])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_optimality_conditions_from_svd(n, d, l1_ratio, fit_intercept):
    T = 6
    X, Y, s = _low_rank_problem(n, d, T, seed=n + d)
    alpha = 0.3 * alpha_max(X, Y, penalty="trace", l1_ratio=l1_ratio,
                            fit_intercept=fit_intercept, sample_weight=s)
    lam, mu = alpha * l1_ratio, alpha * (1 - l1_ratio)
    model = MultiTaskRegressor(penalty="trace", alpha=alpha, l1_ratio=l1_ratio,
                               fit_intercept=fit_intercept, tol=1e-14,
                               max_iter=100_000).fit(X, Y, sample_weight=s)
    W = model.coef_.T
    # -grad of (1 / (2 S)) sum_i s_i ||y_i - W^T x_i - b||^2, recomputed here
    R = Y - X @ W - model.intercept_
    G = X.T @ (s[:, None] * R) / s.sum() - mu * W
    if fit_intercept:  # the intercepts are optimal too
        np.testing.assert_allclose(s @ R / s.sum(), 0.0, atol=1e-10)

    U, sv, Vt = np.linalg.svd(W, full_matrices=False)
    rank = int(np.sum(sv > 1e-9 * sv[0]))
    assert 0 < rank < min(d, T)  # a partial rank: both conditions matter
    U, V = U[:, :rank], Vt[:rank].T
    G_perp = G - lam * U @ V.T
    # a gap of 1e-14 P(0) bounds the KKT residuals by about its square root
    atol = 1e-6 * lam
    np.testing.assert_allclose(U.T @ G @ V, lam * np.eye(rank), atol=atol)
    np.testing.assert_allclose(U.T @ G_perp, 0.0, atol=atol)
    np.testing.assert_allclose(G_perp @ V, 0.0, atol=atol)
    assert np.linalg.norm(G_perp, 2) <= lam + atol
    # the discarded singular values are exactly zero, not merely small
    assert np.all(sv[rank:] < 1e-12 * sv[0])


def _in_layout(layout, X_list, y_list, s_list):
    """``(s_list, (X, y, s, task_col))``: the estimator's inputs for tasks
    given as lists (shared: the tasks share ``X_list[0]`` and the first
    task's sample weights, which ``s_list`` then repeats)."""
    if layout == "shared":
        s_list = [s_list[0]] * len(y_list)
        return s_list, (X_list[0], np.column_stack(y_list), s_list[0], None)
    X, y = stack_tasks(X_list, y_list)
    return s_list, (X, y, np.concatenate(s_list), -1)


def _cvxpy_trace(cp, tasks, alpha, l1_ratio, fit_intercept, d):
    """Solve the objective with cvxpy; ``tasks`` is a list of (X_t, y_t, s_t)."""
    T = len(tasks)
    W, b = cp.Variable((d, T)), cp.Variable(T)
    fit = 0
    for t, (Xt, yt, st) in enumerate(tasks):
        z = Xt @ W[:, t] + (b[t] if fit_intercept else 0)
        fit = fit + 0.5 * cp.sum(cp.multiply(st, cp.square(yt - z))) / st.sum()
    reg = l1_ratio * cp.normNuc(W) + 0.5 * (1 - l1_ratio) * cp.sum_squares(W)
    cp.Problem(cp.Minimize(fit + alpha * reg)).solve(
        solver=cp.CLARABEL, tol_gap_abs=1e-10, tol_gap_rel=1e-10, tol_feas=1e-10)
    return W.value.T, (b.value if fit_intercept else np.zeros(T))


@pytest.mark.parametrize("layout", ["shared", "stacked"])
@pytest.mark.parametrize("l1_ratio", [1.0, 0.5])
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("sparse", [False, True])
def test_matches_cvxpy(layout, l1_ratio, fit_intercept, sparse):
    cp = pytest.importorskip("cvxpy")
    rng = np.random.default_rng(7)
    d, T = 8, 5
    sizes = [30] * T if layout == "shared" else [12, 40, 25, 18, 33]
    X_common = rng.standard_normal((sizes[0], d))
    X_list = [X_common if layout == "shared" else rng.standard_normal((m, d))
              for m in sizes]
    W_true = rng.standard_normal((d, 2)) @ rng.standard_normal((2, T))
    y_list = [Xt @ W_true[:, t] + t + 0.3 * rng.standard_normal(len(Xt))
              for t, Xt in enumerate(X_list)]
    s_list, (X, y, s, task_col) = _in_layout(
        layout, X_list, y_list, [rng.uniform(0.5, 2.0, len(y)) for y in y_list])
    X = sp.csr_matrix(X) if sparse else X
    alpha = 0.2 * alpha_max(X, y, penalty="trace", l1_ratio=l1_ratio,
                            fit_intercept=fit_intercept, task_col=task_col,
                            sample_weight=s)
    model = MultiTaskRegressor(penalty="trace", alpha=alpha, l1_ratio=l1_ratio,
                               fit_intercept=fit_intercept, task_col=task_col,
                               tol=1e-12, max_iter=100_000)
    model.fit(X, y, sample_weight=s)
    coef, intercept = _cvxpy_trace(cp, list(zip(X_list, y_list, s_list)), alpha,
                                   l1_ratio, fit_intercept, d)
    scale = np.abs(coef).max()
    np.testing.assert_allclose(model.coef_, coef, atol=1e-5 * scale)
    np.testing.assert_allclose(model.intercept_, intercept, atol=1e-5 * scale)
    # low rank, as the penalty intends
    assert np.linalg.matrix_rank(model.coef_, tol=1e-8 * scale) < min(d, T)


def _orthogonal_design(n, d, rng, centred):
    """``X`` with ``X^T X / n = I`` (and zero column means when ``centred``)."""
    A = rng.standard_normal((n, d + 1))
    if centred:
        A[:, 0] = 1.0
        Q = np.linalg.qr(A)[0][:, 1:]  # orthogonal to the constant column
    else:
        Q = np.linalg.qr(A[:, :d])[0]
    return np.sqrt(n) * Q


@pytest.mark.parametrize("layout", ["shared", "stacked"])
@pytest.mark.parametrize("l1_ratio", [1.0, 0.7])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_orthogonal_design_closed_form(layout, l1_ratio, fit_intercept):
    """With ``X_t^T X_t / n_t = I`` the objective is, per task,
    ``||w_t||^2 / 2 - <B_t, w_t> + const`` with ``B_t = X_t^T y_t / n_t``, so
    the optimum is singular-value soft thresholding of ``B`` shrunk by the
    ridge part: ``W = SVT(B, lam) / (1 + mu)``; the intercepts are the means
    of ``y_t`` (the columns of ``X_t`` have zero mean)."""
    rng = np.random.default_rng(11)
    d, T = 6, 5
    sizes = [40] * T if layout == "shared" else [20, 35, 50, 28, 44]
    X_list = [_orthogonal_design(m, d, rng, fit_intercept) for m in sizes]
    if layout == "shared":
        X_list = [X_list[0]] * T
    y_list = [Xt @ rng.standard_normal(d) + 3.0 + rng.standard_normal(len(Xt))
              for Xt in X_list]
    B = np.column_stack([Xt.T @ yt / len(yt) for Xt, yt in zip(X_list, y_list)])
    alpha = 0.5 * np.linalg.norm(B, 2)  # thresholds some singular values
    lam, mu = alpha * l1_ratio, alpha * (1 - l1_ratio)
    expected = prox_norm(B, lam, "trace") / (1 + mu)
    assert 0 < np.linalg.matrix_rank(expected) < min(d, T)

    if layout == "shared":
        X, y, task_col = X_list[0], np.column_stack(y_list), None
    else:
        X, y = stack_tasks(X_list, y_list)
        task_col = -1
    model = MultiTaskRegressor(penalty="trace", alpha=alpha, l1_ratio=l1_ratio,
                               fit_intercept=fit_intercept, task_col=task_col,
                               tol=1e-14, max_iter=100_000).fit(X, y)
    np.testing.assert_allclose(model.coef_, expected.T, atol=1e-7)
    expected_intercept = ([yt.mean() for yt in y_list] if fit_intercept
                          else np.zeros(T))
    np.testing.assert_allclose(model.intercept_, expected_intercept, atol=1e-7)


@pytest.mark.parametrize("shape", [(60, 5), (5, 60), (30, 30), (1, 7), (7, 1)])
def test_prox_and_dual_norm_match_the_svd(shape):
    # the penalty takes the spectrum from the small Gram matrix when that is
    # accurate: compare with the SVD of the reference at several thresholds
    from mtlinear.penalties import make_penalty
    rng = np.random.default_rng(sum(shape))
    trace = make_penalty("trace", 1.0)
    W = rng.standard_normal(shape)
    s = np.linalg.svd(W, compute_uv=False)
    for tau in (0.0, 0.5 * s[-1], s[len(s) // 2], 1.1 * s[0]):
        np.testing.assert_allclose(trace.prox_norm(W, tau), prox_norm(W, tau, "trace"),
                                   atol=1e-12 * s[0])
    assert trace.dual_norm(W) == pytest.approx(s[0], rel=1e-12)


def test_prox_is_accurate_on_ill_conditioned_matrices():
    # singular values 1 .. 1e-12: kept ones below sqrt(eps) relative are out of
    # the Gram route's accuracy; the result must still match the SVD
    from mtlinear.penalties import make_penalty
    rng = np.random.default_rng(0)
    U, _ = np.linalg.qr(rng.standard_normal((40, 4)))
    V, _ = np.linalg.qr(rng.standard_normal((4, 4)))
    W = (U * [1.0, 1e-3, 1e-8, 1e-12]) @ V.T
    trace = make_penalty("trace", 1.0)
    for tau in (0.0, 1e-13, 1e-9, 1e-5):
        np.testing.assert_allclose(trace.prox_norm(W, tau), prox_norm(W, tau, "trace"),
                                   atol=1e-15)


def _one_large_feature(layout, loss, seed=11):
    """Tasks ``(X_t, y_t, s_t)`` whose first feature is 1000 times larger
    than the others, task weights, and the estimator's inputs."""
    rng = np.random.default_rng(seed)
    d, T = 6, 4
    sizes = [50] * T if layout == "shared" else [40, 65, 30, 55]
    X_common = rng.standard_normal((sizes[0], d))
    X_list = [X_common if layout == "shared" else rng.standard_normal((m, d))
              for m in sizes]
    for Xt in {id(Xt): Xt for Xt in X_list}.values():  # X_common once
        Xt[:, 0] *= 1000.0
    W_true = rng.standard_normal((d, 2)) @ rng.standard_normal((2, T))
    W_true[0] /= 1000.0
    y_list = [Xt @ W_true[:, t] + 0.3 * t + 0.3 * rng.standard_normal(len(Xt))
              for t, Xt in enumerate(X_list)]
    if loss == "logistic":  # labels in {-1, +1} for the reference
        y_list = [np.where(yt > 0.3 * t, 1.0, -1.0)
                  for t, yt in enumerate(y_list)]
    s_list, fit_data = _in_layout(
        layout, X_list, y_list, [rng.uniform(0.5, 2.0, len(y)) for y in y_list])
    omega = rng.uniform(0.5, 2.0, T)
    return list(zip(X_list, y_list, s_list)), omega, fit_data


@pytest.mark.parametrize("layout", ["shared", "stacked"])
@pytest.mark.parametrize("l1_ratio", [1.0, 0.7])
@pytest.mark.parametrize("loss", ["logistic", "huber"])
def test_newton_admm_matches_fista(layout, l1_ratio, loss):
    """Proximal Newton whose steps ADMM solves on each task's Hessian block,
    for the logistic and Huber losses with the trace norm (a feature 1000
    times larger than the others, sample and task weights): the optimality
    conditions recomputed here hold, and FISTA, which converges on these
    problems, reaches the same coefficients."""
    from _cvxpy_reference import kkt_violation
    from mtlinear import MultiTaskClassifier
    tasks, omega, (X, y, s, task_col) = _one_large_feature(layout, loss)
    Estimator = MultiTaskClassifier if loss == "logistic" else MultiTaskRegressor
    extra = {} if loss == "logistic" else {"loss": "huber"}
    target = y > 0 if loss == "logistic" else y
    alpha = 0.05 * alpha_max(X, target, penalty="trace", l1_ratio=l1_ratio,
                             loss=loss, task_col=task_col, sample_weight=s,
                             task_weights=omega)
    params = dict(penalty="trace", alpha=alpha, l1_ratio=l1_ratio,
                  task_col=task_col, task_weights=omega, **extra)
    model = Estimator(solver="newton_admm", tol=1e-10, **params).fit(
        X, target, sample_weight=s)
    assert kkt_violation(tasks, model.coef_.T, model.intercept_, loss=loss,
                         penalty="trace", alpha=alpha, l1_ratio=l1_ratio,
                         task_weights=omega, zero_tol=1e-9) < 1e-4
    fista = Estimator(solver="fista", tol=1e-12, max_iter=100_000,
                      **params).fit(X, target, sample_weight=s)
    unit = np.vstack([t[0] for t in tasks]).std(axis=0)  # standardized units
    np.testing.assert_allclose(model.coef_ * unit, fista.coef_ * unit,
                               atol=1e-5 * np.abs(fista.coef_ * unit).max())
    np.testing.assert_allclose(model.intercept_, fista.intercept_, atol=1e-5)


@pytest.mark.parametrize("layout", ["shared", "stacked"])
@pytest.mark.parametrize("loss", ["logistic", "squared"])
def test_trace_with_one_large_feature_converges(layout, loss):
    """The case FISTA alone cannot solve (5000 iterations, gaps hundreds of
    times their targets: one feature of 10 multiplied by 1000): "auto"
    finishes with proximal Newton and ADMM steps (logistic) or ADMM
    (squared), to the recomputed optimality conditions."""
    from sklearn.exceptions import ConvergenceWarning

    from _cvxpy_reference import kkt_violation
    from mtlinear import MultiTaskClassifier
    rng = np.random.default_rng(2)
    n, d, T = 300, 10, 4
    X = rng.standard_normal((n, d))
    Y = X @ rng.standard_normal((d, T)) + rng.standard_normal((n, T))
    X[:, 0] *= 1000.0
    if loss == "logistic":
        Estimator, Y, labels = MultiTaskClassifier, Y > 0, np.where(Y > 0, 1.0, -1.0)
    else:
        Estimator, labels = MultiTaskRegressor, Y
    if layout == "shared":
        tasks = [(X, labels[:, t], np.ones(n)) for t in range(T)]
        fit_X, fit_y, task_col = X, Y, None
    else:  # each task on a quarter of the rows
        parts = np.array_split(np.arange(n), T)
        tasks = [(X[rows], labels[rows, t], np.ones(rows.size))
                 for t, rows in enumerate(parts)]
        fit_X, fit_y = stack_tasks([X[rows] for rows in parts],
                                   [Y[rows, t] for t, rows in enumerate(parts)])
        task_col = -1
    params = dict(penalty="trace", alpha=0.01, task_col=task_col)
    with pytest.warns(ConvergenceWarning):
        Estimator(solver="fista", **params).fit(fit_X, fit_y)
    model = Estimator(**params).fit(fit_X, fit_y)  # no warning
    assert kkt_violation(tasks, model.coef_.T, model.intercept_, loss=loss,
                         penalty="trace", alpha=0.01, zero_tol=1e-9) < 1e-3


@pytest.mark.parametrize("layout", ["shared", "stacked"])
def test_fista_continues_where_the_finisher_stops_short(monkeypatch, layout):
    """"auto" hands FISTA's unconverged iterate to proximal Newton with ADMM
    steps; when that stops on too little progress (its stall rule, made to
    fire after one step here; on School, the Huber loss with most residuals
    beyond ``delta`` stalled it twenty times above the target) FISTA goes on
    from its iterate with the iterations left, to the recomputed optimality
    conditions and without a warning."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    import mtlinear._newton_admm as newton_admm
    from _cvxpy_reference import kkt_violation
    monkeypatch.setattr(newton_admm, "_STALL", 0)
    tasks, omega, (X, y, s, task_col) = _one_large_feature(layout, "huber")
    # alphas at which FISTA needs 316 / 339 iterations, more than its budget
    alpha = {"shared": 0.01, "stacked": 0.003}[layout] * alpha_max(
        X, y, penalty="trace", loss="huber", task_col=task_col,
        sample_weight=s, task_weights=omega)
    model = MultiTaskRegressor(loss="huber", penalty="trace", alpha=alpha,
                               task_col=task_col, task_weights=omega, tol=1e-12,
                               max_iter=100_000)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model.fit(X, y, sample_weight=s)
    assert model.n_iter_ > 202  # FISTA's budget, one Newton step, FISTA again
    assert kkt_violation(tasks, model.coef_.T, model.intercept_, loss="huber",
                         penalty="trace", alpha=alpha, task_weights=omega,
                         zero_tol=1e-9) < 1e-3


def test_fista_gives_up_only_when_the_target_is_out_of_reach():
    from mtlinear._solve import _out_of_reach
    # a gap halving every 10 iterations reaches 1e-6 in 200 more
    give_up = _out_of_reach(max_iter=1000, tol_abs=1e-6)
    assert not any(give_up(k, 0.5 ** (k / 10)) for k in range(10, 310, 10))
    # a gap that falls 1% per 100 iterations would need about 1e5 more
    give_up = _out_of_reach(max_iter=5000, tol_abs=1e-4)
    answers = [give_up(k, 1.0 - 1e-4 * k) for k in range(10, 310, 10)]
    assert not any(answers[:19]) and all(answers[19:])  # from iteration 200
    # no decrease at all
    give_up = _out_of_reach(max_iter=5000, tol_abs=1e-4)
    assert [give_up(k, 1.0) for k in range(10, 310, 10)][19]


def test_auto_leaves_fista_alone_where_it_converges():
    # many features (no short FISTA budget), well scaled: "auto" runs FISTA
    # to the target, exactly as solver="fista"
    rng = np.random.default_rng(1)
    n, d, T = 700, 500, 3
    X = rng.standard_normal((n, d))
    Y = X[:, :5] @ rng.standard_normal((5, T)) + rng.standard_normal((n, T))
    alpha = alpha_max(X, Y, penalty="trace") / 100
    auto = MultiTaskRegressor(penalty="trace", alpha=alpha, tol=1e-10).fit(X, Y)
    fista = MultiTaskRegressor(penalty="trace", alpha=alpha, tol=1e-10,
                               solver="fista").fit(X, Y)
    assert auto.n_iter_ == fista.n_iter_
    np.testing.assert_array_equal(auto.coef_, fista.coef_)


@pytest.mark.slow
def test_trace_with_one_large_feature_among_many_converges():
    """Many features (2200, one of them x1000; d^3 = 1.1e10, beyond the
    bound ADMM had): FISTA stops far from its target after max_iter, and
    "auto" finishes with ADMM, to the recomputed optimality conditions,
    handing over once FISTA's rate cannot reach the target in time."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    from _cvxpy_reference import kkt_violation
    rng = np.random.default_rng(0)
    n, d, T = 2300, 2200, 3
    X = rng.standard_normal((n, d))
    X[:, 3] *= 1000.0
    W = (rng.standard_normal((d, 2)) @ rng.standard_normal((2, T))
         * (rng.random((d, 1)) < 0.1))
    Y = X @ W / np.sqrt(d) + rng.standard_normal((n, T))
    params = dict(penalty="trace", alpha=0.01, max_iter=500)
    with pytest.warns(ConvergenceWarning):
        MultiTaskRegressor(solver="fista", **params).fit(X, Y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = MultiTaskRegressor(**params).fit(X, Y)
    # FISTA handed over after 200 of its 500 iterations (ADMM takes 340)
    assert model.n_iter_ < 700
    tasks = [(X, Y[:, t], np.ones(n)) for t in range(T)]
    assert kkt_violation(tasks, model.coef_.T, model.intercept_,
                         loss="squared", penalty="trace", alpha=0.01,
                         zero_tol=1e-9) < 1e-3


@pytest.mark.parametrize("layout", ["shared", "stacked"])
@pytest.mark.parametrize("l1_ratio", [1.0, 0.7])
@pytest.mark.parametrize("solver", ["auto", "admm"])
def test_one_feature_a_thousand_times_larger(layout, l1_ratio, solver):
    """ADMM on a feature 1000 times larger than the others ("admm" alone,
    and "auto", which may finish FISTA with it), with sample and task
    weights: cvxpy's solution and the optimality conditions recomputed
    here."""
    from _cvxpy_reference import kkt_violation, solve_reference
    pytest.importorskip("cvxpy")
    tasks, omega, (X, y, s, task_col) = _one_large_feature(layout, "squared")
    alpha = 0.1 * alpha_max(X, y, penalty="trace", l1_ratio=l1_ratio,
                            task_col=task_col, sample_weight=s,
                            task_weights=omega)
    model = MultiTaskRegressor(penalty="trace", alpha=alpha, l1_ratio=l1_ratio,
                               task_col=task_col, task_weights=omega,
                               solver=solver, tol=1e-10).fit(
        X, y, sample_weight=s)
    params = dict(loss="squared", penalty="trace", alpha=alpha,
                  l1_ratio=l1_ratio, task_weights=omega)
    W, b, _ = solve_reference(tasks, **params)
    # in standardized units: a coefficient times its feature's scale
    unit = np.vstack([t[0] for t in tasks]).std(axis=0)[:, None]
    np.testing.assert_allclose(model.coef_.T * unit, W * unit,
                               atol=1e-6 * np.abs(W * unit).max())
    np.testing.assert_allclose(model.intercept_, b, atol=1e-5 * np.abs(b).max())
    # relative to the gradient at 0, which the large feature dominates; a
    # gap of 1e-10 P(0) leaves about sqrt(2 L gap) on the stiff direction
    assert kkt_violation(tasks, model.coef_.T, model.intercept_, **params,
                         zero_tol=1e-9) < 1e-4


def test_path_on_one_large_feature_goes_on_with_admm():
    """Along a path on the problem FISTA cannot solve, "auto" goes straight
    to ADMM once FISTA stalled: every alpha's solution is certified and is
    the one of a separate fit with "admm"."""
    from mtlinear import regularization_path
    rng = np.random.default_rng(2)
    X = rng.standard_normal((300, 10))
    Y = X @ rng.standard_normal((10, 4)) + rng.standard_normal((300, 4))
    X[:, 0] *= 1000.0
    alphas = np.geomspace(0.1, 0.001, 5)
    _, coefs, intercepts, gaps, n_iters = regularization_path(
        X, Y, penalty="trace", alphas=alphas)
    for k, alpha in enumerate(alphas):
        alone = MultiTaskRegressor(penalty="trace", alpha=alpha, solver="admm",
                                   tol=1e-10).fit(X, Y)
        assert gaps[k] <= 1e-4 * 0.5 * np.sum(Y.var(axis=0)) * 1.0001
        scale = np.abs(alone.coef_).max(axis=0)  # per feature: scales differ
        np.testing.assert_allclose(coefs[..., k] / scale, alone.coef_ / scale,
                                   atol=1e-2)


def test_newton_admm_line_search_refuses_a_long_step_that_raises_the_objective():
    """A direction along which the logistic loss saturates at once (its
    derivative climbs from -1/2 to 0) while the penalty rises: ``P'(0) =
    -1e6``, then ``P' = +4e5`` (below ``|P'(0)| / 2``, so the slope test
    alone takes the step 1), whereas ``P(1) - P(0)`` is about ``+4e5``.  The
    step taken must not raise the objective."""
    from mtlinear._newton_admm import _backtrack
    from mtlinear.losses import LogisticLoss

    class Rising:  # a penalty whose value rises by 4e5 along dW = 1
        def value(self, W):
            return 4e5 * float(np.abs(W).sum())

    loss = LogisticLoss()
    z, dz = np.zeros(1), np.full(1, 2.8e6)
    y, v = np.ones(1), np.ones(1)
    W, dW = np.zeros((1, 1)), np.ones((1, 1))
    slope0 = float(dz @ loss.derivative(z, y, v)) + 4e5
    assert slope0 == pytest.approx(-1e6)
    t = _backtrack(loss, Rising(), z, dz, y, v, W, dW, slope0, 0.0)
    change = loss.value(z + t * dz, y, v) - loss.value(z, y, v) + t * 4e5
    assert change <= 0.0
