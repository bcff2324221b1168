"""Every solver reaches the same optimum; screening is safe."""
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning

from mtlinear import MultiTaskRegressor, alpha_max, stack_tasks
from mtlinear._bcd import _gap, _screen, make_bcd_state
from mtlinear._datafit import GramDatafit
from mtlinear._solve import solve
from mtlinear._task_data import build_problem
from mtlinear.losses import SquaredLoss
from mtlinear.penalties import Penalty, make_penalty

import _reference as ref


def _objective(X_list, y_list, coef, intercept, penalty, alpha, l1_ratio,
               sample_weights, task_weights):
    """The objective of the user guide, written out directly."""
    total = 0.0
    for t, (Xt, yt) in enumerate(zip(X_list, y_list)):
        s = sample_weights[t]
        r = yt - Xt @ coef[t] - intercept[t]
        total += task_weights[t] * 0.5 * np.sum(s * r * r) / s.sum()
    W = coef.T
    ridge = 0.5 * (1 - l1_ratio) * np.sum(W * W)
    norm = {"l1": np.abs(W).sum(),
            "l21": np.linalg.norm(W, axis=1).sum()}[penalty]
    return total + alpha * (l1_ratio * norm + ridge)


def _tasks(rng, n_tasks, d, shared):
    sizes = [40] * n_tasks if shared else rng.integers(15, 60, n_tasks)
    X_common = rng.standard_normal((sizes[0], d))
    X_list = [X_common if shared else rng.standard_normal((n, d)) for n in sizes]
    W = np.zeros((d, n_tasks))
    W[:4] = rng.standard_normal((4, n_tasks))
    y_list = [Xt @ W[:, t] + 1.5 + 0.3 * rng.standard_normal(len(Xt))
              for t, Xt in enumerate(X_list)]
    return X_list, y_list


@pytest.mark.parametrize("layout", ["shared", "stacked"])
@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("penalty,l1_ratio", [("l21", 1.0), ("l21", 0.6),
                                              ("l1", 1.0), ("l1", 0.5)])
@pytest.mark.parametrize("d", [8, 70])  # rows > features (Gram) and the reverse
@pytest.mark.parametrize("weighted", [False, True])
def test_solvers_agree(layout, sparse, penalty, l1_ratio, d, weighted):
    rng = np.random.default_rng(d + len(penalty))
    n_tasks = 4
    X_list, y_list = _tasks(rng, n_tasks, d, shared=layout == "shared")
    s_list = [rng.uniform(0.2, 2.0, len(y)) if weighted else np.ones(len(y))
              for y in y_list]
    omega = rng.uniform(0.5, 2.0, n_tasks) if weighted else np.ones(n_tasks)
    if layout == "shared":
        X, y = X_list[0], np.column_stack(y_list)
        sample_weight = s_list[0]
        s_list = [s_list[0]] * n_tasks
        task_col = None
    else:
        X, y = stack_tasks(X_list, y_list)
        sample_weight = np.concatenate(s_list)
        task_col = -1
    if sparse:
        X = sp.csr_matrix(X)
    a = 0.1 * alpha_max(X, y, penalty=penalty, l1_ratio=l1_ratio, task_col=task_col,
                        sample_weight=sample_weight, task_weights=omega)
    fits = {}
    # ADMM works on the sufficient statistics (rows outnumber features)
    for solver in ("fista", "bcd") + (("admm",) if d == 8 else ()):
        fits[solver] = MultiTaskRegressor(
            penalty=penalty, alpha=a, l1_ratio=l1_ratio, task_col=task_col,
            task_weights=omega, solver=solver, tol=1e-11, max_iter=200000,
        ).fit(X, y, sample_weight=sample_weight)
    objectives = {name: _objective(X_list, y_list, m.coef_, m.intercept_, penalty,
                                   a, l1_ratio, s_list, omega)
                  for name, m in fits.items()}
    for other in set(fits) - {"bcd"}:
        assert objectives[other] == pytest.approx(objectives["bcd"], rel=1e-9)
        np.testing.assert_allclose(fits[other].coef_, fits["bcd"].coef_,
                                   atol=1e-5 * np.abs(fits["bcd"].coef_).max())
        np.testing.assert_allclose(fits[other].intercept_,
                                   fits["bcd"].intercept_, atol=1e-5)


@pytest.mark.parametrize("penalty", ["l21", "l1"])
@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("use_gram", [False, True])
def test_screening_keeps_every_nonzero_row(penalty, shared, use_gram):
    """Rows the gap-safe test discards are zero at the optimum (many points)."""
    rng = np.random.default_rng(3)
    d, n_tasks = 60, 3
    X_list, y_list = _tasks(rng, n_tasks, d, shared)
    if shared:
        X, Y, index = X_list[0], np.column_stack(y_list), None
    else:
        X, Y = np.vstack(X_list), np.concatenate(y_list)
        index = np.repeat(np.arange(n_tasks), [len(y) for y in y_list])
    problem = build_problem(X, Y, index, n_tasks=n_tasks)
    lam = 0.05 * max(
        np.abs(problem.design.rmatmat(problem.v * problem.y)).max(), 1e-12)
    pen = make_penalty(penalty, lam)
    optimum = solve(problem, SquaredLoss(), pen, tol=1e-13, max_iter=100000,
                    solver="fista").W
    nonzero = np.any(optimum != 0, axis=1)
    record = pen.record(d)
    state = make_bcd_state(problem, use_gram)
    rows = np.arange(d)
    screened_any = False
    for W in (np.zeros((d, n_tasks)), 0.5 * optimum, optimum + 1e-3, optimum,
              optimum * 0.99):
        state.reset(W)
        U = state.neg_gradient(rows)
        _, gap, c = _gap(state, W, U, rows, pen)
        zero = _screen(state, record, U, rows, gap, c, W)
        assert not np.any(zero & nonzero)
        screened_any |= zero.any()
    assert screened_any  # the test must exercise the rule


def test_bcd_rejects_what_it_cannot_solve():
    X, Y = np.random.default_rng(0).standard_normal((20, 5)), np.ones((20, 2))
    with pytest.raises(ValueError, match="solver='bcd'"):
        MultiTaskRegressor(penalty="trace", solver="bcd").fit(X, Y)


@pytest.mark.parametrize("l1_ratio", [1.0, 0.7])
def test_row_space_reduction_trace_matches_cvxpy(l1_ratio):
    """Fewer samples than features, shared design: the solve runs in the row
    space of X; the answer is the full problem's (checked with cvxpy)."""
    cp = pytest.importorskip("cvxpy")
    rng = np.random.default_rng(0)
    n, d, T = 15, 40, 4
    X = rng.standard_normal((n, d))
    Y = X[:, :3] @ rng.standard_normal((3, T)) + 0.1 * rng.standard_normal((n, T))
    s = rng.uniform(0.5, 2.0, n)
    alpha = 0.2 * alpha_max(X, Y, penalty="trace", l1_ratio=l1_ratio,
                            sample_weight=s)
    model = MultiTaskRegressor(penalty="trace", alpha=alpha, l1_ratio=l1_ratio,
                               tol=1e-12, max_iter=100000).fit(X, Y, sample_weight=s)
    W, b = cp.Variable((d, T)), cp.Variable(T)
    resid = Y - X @ W - np.ones((n, 1)) @ cp.reshape(b, (1, T), order="C")
    loss = 0.5 * cp.sum(cp.multiply(s[:, None], cp.square(resid))) / s.sum()
    reg = alpha * (l1_ratio * cp.normNuc(W) + 0.5 * (1 - l1_ratio) * cp.sum_squares(W))
    cp.Problem(cp.Minimize(loss + reg)).solve(solver=cp.CLARABEL)
    np.testing.assert_allclose(model.coef_, W.value.T, atol=2e-5)
    np.testing.assert_allclose(model.intercept_, b.value, atol=2e-5)


def test_row_space_reduction_l2_matches_ridge():
    from sklearn.linear_model import Ridge
    rng = np.random.default_rng(1)
    n, d, T = 20, 60, 3
    X, Y = rng.standard_normal((n, d)), rng.standard_normal((n, T))
    alpha = 0.3
    model = MultiTaskRegressor(penalty="l2", alpha=alpha, tol=1e-13).fit(X, Y)
    # ours: ||Y - XW||^2 / (2n) + alpha/2 ||W||^2, i.e. Ridge with n * alpha
    ridge = Ridge(alpha=n * alpha).fit(X, Y)
    # strong convexity: ||W - W*||^2 <= 2 gap / alpha
    np.testing.assert_allclose(model.coef_, ridge.coef_, atol=1e-6)
    np.testing.assert_allclose(model.intercept_, ridge.intercept_, atol=1e-6)


@pytest.mark.parametrize("penalty,l1_ratio", [("trace", 1.0), ("trace", 0.5),
                                              ("l2", 1.0)])
def test_row_space_reduction_rank_deficient(penalty, l1_ratio):
    """Repeated rows and columns (rank 6 < n < d): the reduced solve drops the
    null directions; the duality gap recomputed from scratch on the full
    problem meets the tolerance."""
    from _reference import duality_gap, null_objective, shared_tasks
    rng = np.random.default_rng(4)
    base = rng.standard_normal((6, 20))
    X = np.hstack([np.vstack([base, base, base[:3]])] * 2)  # (15, 40)
    Y = X[:, :3] @ rng.standard_normal((3, 4)) + 0.3 * rng.standard_normal((15, 4))
    s = rng.uniform(0.5, 2.0, 15)
    alpha = 0.05 * alpha_max(X, Y, penalty="trace", l1_ratio=1.0, sample_weight=s)
    model = MultiTaskRegressor(penalty=penalty, alpha=alpha, l1_ratio=l1_ratio,
                               tol=1e-10, max_iter=100000).fit(X, Y, sample_weight=s)
    tasks = shared_tasks(X, Y, s)
    primal, dual = duality_gap(tasks, model.coef_, model.intercept_, penalty,
                               alpha, l1_ratio)
    assert primal - dual <= 1e-9 * null_objective(tasks, True)


@pytest.mark.parametrize("n", [60, 200])  # residual blocks (n < d), Gram blocks
@pytest.mark.parametrize("penalty,l1_ratio", [("l21", 1.0), ("l1", 0.7)])
def test_bcd_blocks_certified_by_recomputed_gap(n, penalty, l1_ratio):
    """Working sets spanning several row blocks, sample and task weights:
    the duality gap recomputed from scratch meets a tight tolerance."""
    from _reference import duality_gap, null_objective, shared_tasks
    rng = np.random.default_rng(5)
    d, T = 150, 3
    X = rng.standard_normal((n, d)) + 0.5 * rng.standard_normal((n, 1))
    W = np.zeros((d, T))
    W[:40] = rng.standard_normal((40, T))
    Y = X @ W + 2.0 + rng.standard_normal((n, T))
    s = rng.uniform(0.3, 2.0, n)
    omega = rng.uniform(0.5, 2.0, T)
    alpha = 0.02 * alpha_max(X, Y, penalty=penalty, l1_ratio=l1_ratio,
                             sample_weight=s, task_weights=omega)
    model = MultiTaskRegressor(penalty=penalty, alpha=alpha, l1_ratio=l1_ratio,
                               task_weights=omega, solver="bcd", tol=1e-10,
                               max_iter=100000).fit(X, Y, sample_weight=s)
    assert np.count_nonzero(np.any(model.coef_ != 0, axis=0)) > 64
    tasks = shared_tasks(X, Y, s)
    primal, dual = duality_gap(tasks, model.coef_, model.intercept_, penalty,
                               alpha, l1_ratio, task_weights=omega)
    assert primal - dual <= (1e-10 + 1e-12) * null_objective(tasks, True, omega)


@pytest.mark.parametrize("mu", [0.0, 0.3])
def test_l21_row_update_is_exact_with_unequal_curvatures(mu):
    """The l21 row update minimizes sum_t L_t/2 (w_t - z_t)^2 + lam ||w|| +
    mu/2 ||w||^2 exactly: its optimality conditions hold, or ||L z|| <= lam
    at w = 0."""
    from mtlinear._bcd_epochs import _row_step
    rng = np.random.default_rng(6)
    for trial in range(20):
        T = 7
        L = rng.uniform(0.01, 5.0, T)
        L[0] = 0.0 if trial % 5 == 0 else L[0]  # a feature constant in a task
        old_row, g = rng.standard_normal(T), rng.standard_normal(T)
        g[0] = 0.0 if L[0] == 0 else g[0]
        lam = rng.uniform(0.1, 3.0)
        W = old_row[None, :].copy()
        pen = make_penalty("l21", lam + mu, lam / (lam + mu))
        _row_step(W, 0, g, L, pen.record(1), np.empty(T), np.empty(T), np.empty(T))
        w = W[0]
        z_scaled = L * old_row - g  # L_t z_t
        if not np.any(w):
            assert np.linalg.norm(z_scaled) <= lam * (1 + 1e-12)
            continue
        residual = L * w - z_scaled + lam * w / np.linalg.norm(w) + mu * w
        np.testing.assert_allclose(residual, 0.0, atol=1e-10 * (1 + np.abs(z_scaled).max()))


@pytest.mark.parametrize("kind", ["wishart", "low_rank", "repeated_top", "spread"])
@pytest.mark.parametrize("d", [65, 300])
def test_top_eigenvalue_bounds_the_spectrum_tightly(kind, d):
    # the step size 1/L of FISTA needs L >= the largest eigenvalue, and no
    # more than a hair above it (Lanczos above _LAPACK_EIG_MAX, LAPACK below)
    from mtlinear._design import top_eigenvalue
    rng = np.random.default_rng(d)
    if kind == "wishart":
        A = rng.standard_normal((d + 5, d))
        S = A.T @ A
    elif kind == "low_rank":
        A = rng.standard_normal((3, d))
        S = A.T @ A
    else:
        Q, _ = np.linalg.qr(rng.standard_normal((d, d)))
        values = np.linspace(0.0, 1.0, d) if kind == "repeated_top" \
            else np.geomspace(1e-8, 1.0, d)
        values[-3:] = 2.0 if kind == "repeated_top" else values[-3:]
        S = (Q * values) @ Q.T
        S = (S + S.T) / 2
    exact = np.linalg.eigvalsh(S)[-1]
    estimate = top_eigenvalue(S)
    assert exact * (1 - 1e-12) <= estimate <= exact * (1 + 2e-6)


def _gram_datafit(rng, shared, n=50, d=12, T=4):
    from mtlinear._datafit import GramDatafit
    X = rng.standard_normal((n, d))
    Y = X @ rng.standard_normal((d, T)) + rng.standard_normal((n, T))
    if shared:
        return GramDatafit(X.T @ X / n, np.full(T, 1.0), X.T @ Y / n,
                           (Y * Y).sum(axis=0) / n)
    Xs = [X + 0.3 * rng.standard_normal((n, d)) for _ in range(T)]
    return GramDatafit(np.array([Xt.T @ Xt / n for Xt in Xs]), None,
                       np.column_stack([Xt.T @ Y[:, t] / n for t, Xt in enumerate(Xs)]),
                       (Y * Y).sum(axis=0) / n)


@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("penalty,l1_ratio", [("l1", 1.0), ("l21", 0.7),
                                              ("trace", 1.0), ("l2", 1.0)])
def test_compiled_fista_steps_equal_the_python_ones(shared, penalty, l1_ratio,
                                                    monkeypatch):
    # the compiled iterations on sufficient statistics are the Python loop's:
    # same iterates (up to rounding) from a warm start in Fortran order
    from mtlinear import _fista
    rng = np.random.default_rng(3)
    datafit = _gram_datafit(rng, shared)
    pen = make_penalty(penalty, 0.05, l1_ratio)
    W0 = np.asfortranarray(0.1 * rng.standard_normal(datafit.C.shape))
    compiled = _fista.fista(datafit, pen, W0, None, 37, -np.inf)  # all 37
    monkeypatch.setattr(_fista, "_compiled_steps", lambda *args: 0)  # Python
    plain = _fista.fista(datafit, pen, W0, None, 37, -np.inf)
    assert compiled[3] == plain[3] == 37
    np.testing.assert_allclose(compiled[0], plain[0], rtol=1e-10, atol=1e-12)
    assert compiled[2] == pytest.approx(plain[2], abs=1e-12)  # a difference


def test_compiled_fista_hands_an_inaccurate_trace_prox_back():
    # a kept singular value below 1e-6 of the largest: the compiled prox
    # declines and the step is left to Python (which takes the SVD)
    from mtlinear._fista import _NO_CSR, _gram_steps
    from mtlinear.penalties._rows import _prox_of
    from mtlinear.penalties.trace import TraceRecord
    rng = np.random.default_rng(0)
    U, _ = np.linalg.qr(rng.standard_normal((20, 3)))
    W = (U * [1.0, 1e-3, 1e-8]) @ np.eye(3)
    _, ok = _prox_of(TraceRecord(1e-10, 0.0), W, 1.0)
    assert not ok
    Q = np.eye(20)[None]
    C = np.zeros_like(W)  # the gradient step from W leaves W
    done, W_out, *_ = _gram_steps(Q, np.ones(3), C, W, W, W, W, 1.0, 1.0, 1e-12,
                                  1.0, 0.9, 5, TraceRecord(1e-10, 0.0),
                                  np.zeros((0, 0)), *_NO_CSR)  # no coupling
    assert done == 0 and W_out is W


def _admm_runs(spectrum, omega, C, W0, gradient, pen, monkeypatch):
    """``(V, U, rho, residuals)`` after 6 runs of 10 ADMM iterations: with
    the compiled steps, then with the Python loop alone."""
    from mtlinear import _admm
    runs = []
    for python in (False, True):
        if python:
            monkeypatch.setattr(_admm, "_admm_steps", lambda *args: (0, None, None))
        split = _admm.AdmmSplit(spectrum, omega, C, W0, gradient)
        for _ in range(6):
            split.run(pen, 10)
        runs.append((split.V, split.U, split.rho, split.primal_residual,
                     split.dual_residual))
    return runs


@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("penalty,l1_ratio", [("l1", 1.0), ("l21", 0.7),
                                              ("trace", 1.0)])
def test_compiled_admm_steps_equal_the_python_ones(shared, penalty, l1_ratio,
                                                   monkeypatch):
    # ADMM's compiled iterations are the Python loop's: same iterates (up to
    # rounding), rho balanced alike
    from mtlinear._ridge import RidgeSpectrum
    rng = np.random.default_rng(3)
    datafit = _gram_datafit(rng, shared)
    Q, omega, C = datafit.kernel_statistics()
    W0 = 0.1 * rng.standard_normal(C.shape)
    (V1, U1, rho1, p1, d1), (V2, U2, rho2, p2, d2) = _admm_runs(
        RidgeSpectrum(Q, np.ones(Q.shape[1])), omega, C, W0,
        datafit.gradient(W0)[0], make_penalty(penalty, 0.05, l1_ratio),
        monkeypatch)
    assert rho1 == rho2
    np.testing.assert_allclose(V1, V2, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(U1, U2, rtol=1e-9, atol=1e-12)
    assert p1 == pytest.approx(p2, rel=1e-6, abs=1e-12)
    assert d1 == pytest.approx(d2, rel=1e-6, abs=1e-12)


def test_compiled_admm_hands_an_inaccurate_trace_prox_back(monkeypatch):
    # singular values 1, 1e-3, 1e-8: the compiled trace prox declines at the
    # first step and the Python loop (LAPACK's SVD) takes the run over
    from mtlinear import _admm
    from mtlinear._ridge import RidgeSpectrum
    from mtlinear.penalties import make_penalty as penalty_of
    rng = np.random.default_rng(0)
    U, _ = np.linalg.qr(rng.standard_normal((20, 3)))
    W0 = U * [1.0, 1e-3, 1e-8]
    spectrum = RidgeSpectrum(np.eye(20)[None], np.ones(20))
    steps = []
    compiled = _admm._admm_steps

    def counted(*args):
        out = compiled(*args)
        steps.append(out[0])
        return out
    monkeypatch.setattr(_admm, "_admm_steps", counted)
    pen = penalty_of("trace", 1e-10, 1.0)
    split = _admm.AdmmSplit(spectrum, np.ones(3), W0, W0, np.zeros_like(W0))
    split.run(pen, 10)
    assert steps == [0]
    monkeypatch.setattr(_admm, "_admm_steps", lambda *args: (0, None, None))
    plain = _admm.AdmmSplit(spectrum, np.ones(3), W0, W0, np.zeros_like(W0))
    plain.run(pen, 10)
    np.testing.assert_allclose(split.V, plain.V, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("shared", [True, False])
def test_adaptive_step_reaches_the_optimum_from_a_poor_start_of_L(shared):
    # the step starts from the largest diagonal entry (below the Lipschitz
    # constant) and must still converge: certify with the gap recomputed here
    from mtlinear._datafit import GramDatafit
    from mtlinear._fista import fista
    rng = np.random.default_rng(1)
    datafit = _gram_datafit(rng, shared, n=30, d=25)
    start, cap = datafit.step_bounds()
    Q = datafit.Q  # omega = 1 when shared
    top = np.linalg.eigvalsh(Q).max()
    assert start <= top <= cap
    lam = 0.3 * np.linalg.norm(datafit.C, axis=1).max()  # some rows zero
    pen = make_penalty("l21", lam)
    W, _, gap, n_iter = fista(datafit, pen, np.zeros(datafit.C.shape), None,
                              20000, 1e-11)
    assert gap <= 1e-11 and n_iter < 20000
    # optimality: -grad F(W) in the subdifferential of lam ||.||_21
    QW = (Q @ W) if datafit.shared else np.einsum("tij,jt->it", Q, W)
    G = datafit.C - QW
    norms = np.linalg.norm(W, axis=1)
    on = norms > 0
    assert 0 < on.sum() < len(on)
    np.testing.assert_allclose(G[on], lam * W[on] / norms[on, None], atol=1e-5)
    assert np.linalg.norm(G[~on], axis=1).max() <= lam * (1 + 1e-4)
    assert isinstance(datafit, GramDatafit)


@pytest.mark.parametrize("layout", ["shared", "shared-no-blocks", "stacked"])
@pytest.mark.parametrize("penalty,l1_ratio", [("l21", 1.0), ("l1", 1.0), ("l21", 0.6),
                                              ("l1", 0.6)])
def test_compiled_bcd_on_statistics_equals_the_python_loop(layout, penalty, l1_ratio,
                                                           monkeypatch):
    # on sufficient statistics the whole coordinate descent (outer loop,
    # screening, working sets, epochs, Anderson) is one compiled call; the
    # Python loop on the residuals must give the same iterates
    from mtlinear import _bcd, _bcd_gram
    rng = np.random.default_rng(5)
    X_list, y_list = _tasks(rng, 3, 12, layout != "stacked")
    if layout == "stacked":
        X, Y = np.vstack(X_list), np.concatenate(y_list)
        index = np.repeat(np.arange(3), [len(y) for y in y_list])
    else:
        X, Y, index = X_list[0], np.column_stack(y_list), None
    problem = build_problem(X, Y, index, n_tasks=3)
    if layout == "shared-no-blocks":
        monkeypatch.setattr(_bcd_gram, "_GRAM_BLOCK_MAX_FLOATS", 0)
    lam = 0.2 * np.abs(problem.design.rmatmat(problem.v * problem.y)).max()
    pen = make_penalty(penalty, lam, l1_ratio)
    state = make_bcd_state(problem, use_gram=True)
    tol = 1e-12 * state.null_value()
    W, gap, _, _ = _bcd.bcd(state, pen, np.zeros((12, 3)), 500, tol)
    assert gap <= tol
    # the same iterates and gaps over the first 14 epochs (later, an Anderson
    # try that changes the objective by a rounding error may go either way)
    runs = []
    for use_gram in (True, False):
        trace = []
        state = make_bcd_state(problem, use_gram)
        # small working sets: several outer iterations
        W, _, n_iter, _ = _bcd.bcd(
            state, pen, np.zeros((12, 3)), 14, -np.inf,
            callback=lambda *values: trace.append(values), ws_start=2)
        runs.append((W, n_iter, np.array(trace)))
    (W1, it1, trace1), (W2, it2, trace2) = runs
    assert it1 == it2 == 14
    # Anderson's small solves amplify rounding: equal to 1e-6, not to 1e-15
    np.testing.assert_allclose(W1, W2, rtol=1e-6, atol=1e-9)
    assert len(trace1) == len(trace2) >= 3
    np.testing.assert_array_equal(trace1[:, 0], trace2[:, 0])  # their epochs
    np.testing.assert_allclose(trace1[:, 1:], trace2[:, 1:], rtol=1e-6,
                               atol=1e-9 * trace1[0, 1])


class _ReferencePenalty(Penalty):
    """A package penalty recomputed by the test's numpy reference: Python
    only (no record), so the solvers take their generic paths."""

    def __init__(self, name, alpha, l1_ratio):
        super().__init__(alpha, 0.0 if name == "l2" else l1_ratio)
        self.name = name

    def value(self, W, rows=None):
        return (self.lam * ref.norm(W, self.name)
                + 0.5 * self.mu * float(np.sum(W * W)))

    def feasible_dual(self, U, rows=None):
        return ref.dual_scaling(U, self.lam, self.mu, self.name)


@pytest.mark.parametrize("penalty", ["l1", "l21", "l2"])
@pytest.mark.parametrize("alpha,l1_ratio", [(0.3, 1.0), (0.3, 0.4), (0.3, 0.0),
                                            (0.0, 1.0)])
def test_row_penalty_kernels_match_the_reference(penalty, alpha, l1_ratio):
    # value and dual point of the row-separable penalties are compiled from
    # their row formulas; the test's reference writes them out with numpy
    rng = np.random.default_rng(2)
    pen = make_penalty(penalty, alpha, l1_ratio)
    expected = _ReferencePenalty(penalty, alpha, l1_ratio)
    W, U = rng.standard_normal((9, 4)), 0.5 * rng.standard_normal((9, 4))
    assert pen.value(W) == pytest.approx(expected.value(W), rel=1e-13)
    c, conj = pen.feasible_dual(U)
    c_ref, conj_ref = expected.feasible_dual(U)
    np.testing.assert_allclose(c, np.broadcast_to(c_ref, c.shape), rtol=1e-13)
    assert conj == pytest.approx(conj_ref, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("penalty", ["l1", "l21", "trace", "l2"])
@pytest.mark.parametrize("alpha,l1_ratio", [(0.3, 1.0), (0.3, 0.4), (0.0, 1.0),
                                            (5.0, 1.0)])
@pytest.mark.parametrize("shared", [True, False])
def test_compiled_gram_gap_equals_the_generic_one(penalty, alpha, l1_ratio,
                                                  shared):
    # the gap on sufficient statistics is compiled for the package's
    # penalties; a Python-only penalty takes the generic numpy path, here
    # with the test's reference formulas
    from mtlinear._datafit import GramDatafit
    rng = np.random.default_rng(3)
    d, T = 7, 4
    A = rng.standard_normal((2 * d, d)) / np.sqrt(2 * d)
    Q = A.T @ A if shared else np.stack([B.T @ B for B in
                                         rng.standard_normal((T, 2 * d, d)) / 4])
    omega = rng.uniform(0.5, 2.0, T) if shared else None
    C, yy = rng.standard_normal((d, T)), rng.uniform(5.0, 9.0, T)
    datafit = GramDatafit(Q, omega, C, yy)
    pen = make_penalty(penalty, alpha, l1_ratio)
    generic = _ReferencePenalty(penalty, alpha, l1_ratio)
    for W in (np.zeros((d, T)), rng.standard_normal((d, T)),
              np.outer(rng.standard_normal(d), rng.standard_normal(T))):
        expected = datafit.duality_gap(W, None, generic)
        got = datafit.duality_gap(W, None, pen)
        np.testing.assert_allclose(got, expected, rtol=1e-12,
                                   atol=1e-12 * datafit.null_value())


def test_auto_continues_an_exhausted_coordinate_descent_with_fista():
    # a tiny underdetermined task with strongly correlated features at a
    # small alpha: coordinate descent needs 4931 epochs, FISTA 690 iterations
    import warnings
    from scipy.signal import lfilter
    from sklearn.exceptions import ConvergenceWarning
    rng = np.random.default_rng(2)
    n, d, rho = 13, 28, 0.99
    X = lfilter([np.sqrt(1 - rho ** 2)], [1.0, -rho], rng.standard_normal((n, d)),
                axis=1)
    Y = X @ rng.standard_normal((d, 2)) + 0.3 * rng.standard_normal((n, 2))
    alpha = alpha_max(X, Y, penalty="l1") / 1000
    params = dict(alpha=alpha, penalty="l1", max_iter=1000, tol=1e-4)
    with pytest.warns(ConvergenceWarning):
        MultiTaskRegressor(solver="bcd", **params).fit(X, Y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        auto = MultiTaskRegressor(solver="auto", **params).fit(X, Y)
    assert auto.n_iter_ > 1000
    reference = MultiTaskRegressor(solver="fista", **dict(params, max_iter=100000,
                                                          tol=1e-12)).fit(X, Y)
    objective = 0.5 * ((Y - Y.mean(0)) ** 2).sum() / n  # P(0), both tasks
    assert auto.dual_gap_ <= 1e-4 * objective
    np.testing.assert_allclose(auto.predict(X), reference.predict(X),
                               atol=np.sqrt(2 * 1e-4 * objective) * 3)


@pytest.mark.parametrize("k", [1, 3, 17, 39, 40])
def test_working_set_takes_the_top_scores(k):
    # the working set's rows: the k best scores (support rows score inf), in
    # increasing row order, as a full sort would give
    from mtlinear._working_set import _top_rows
    rng = np.random.default_rng(k)
    rows = np.sort(rng.choice(100, size=40, replace=False))
    scores = rng.random(40)
    scores[rng.choice(40, size=5, replace=False)] = np.inf
    expected = np.sort(rows[np.argsort(-scores, kind="stable")[:k]])
    np.testing.assert_array_equal(_top_rows(rows, scores, k), expected)


def test_unconverged_solve_without_a_finisher_goes_on_with_fista():
    # proximal Newton stopped short where no exact-step finisher applies
    # (a sparse design for the Newton-ADMM blocks): FISTA continues; the
    # missing finisher once raised UnboundLocalError ('gap')
    from mtlinear._datafit import SampleDatafit
    from mtlinear._solve import _finish_unconverged
    from mtlinear.losses import make_loss
    rng = np.random.default_rng(25)
    X = sp.csr_matrix(rng.standard_normal((80, 5)))
    y = np.where(rng.standard_normal((80, 2)) > 0, 1.0, -1.0)
    problem = build_problem(X, y, None, 2, None, None, True,
                            center_targets=False)
    loss, penalty = make_loss("logistic"), make_penalty("l1", 0.01)
    model = SampleDatafit(loss, problem)
    W, b = np.zeros((5, 2)), model.initial_intercept()
    tol_abs = 1e-8 * model.null_value()
    W, b, gap, n_iter = _finish_unconverged(
        None, problem, loss, penalty, W, b, tol_abs, 5000, 3,
        lambda tol, name: None, model)
    assert gap <= tol_abs and n_iter > 3
    _, gap_again = model.duality_gap(W, b, penalty)
    assert gap_again <= 1.01 * tol_abs


def test_proximal_newton_stops_when_its_steps_are_below_rounding():
    """One task, Huber, every row's violation zero and an intercept gradient
    of rounding size: the Newton steps changed nothing in floating point and
    had run until max_iter (20000 steps) with a gap of -2e-16."""
    X = np.array([[1.6637239913911968, 0.0], [0.0, 0.0],
                  [-1.6413972945846467, 0.0], [-0.00520326417193198, 0.0]])
    y = np.array([-0.06120664352340277, 0.39370342697340577,
                  1.5605024841173114, -5.733694379567509])
    s = np.array([1.904784527164733, 2.173621287581279, 2.8398503015616683,
                  2.0638407675041095])
    model = MultiTaskRegressor(loss="huber", penalty="l1",
                               alpha=0.3352163866235598, task_col=-1,
                               tol=1e-13, max_iter=20_000,
                               solver="prox_newton")
    model.fit(sp.csr_matrix(X), y, sample_weight=s)
    assert model.n_iter_ < 50
    assert model.dual_gap_ <= 1e-13 * 1.0
    fista = clone(model).set_params(solver="fista").fit(sp.csr_matrix(X), y,
                                                       sample_weight=s)
    np.testing.assert_allclose(model.coef_, fista.coef_, atol=1e-8)
    np.testing.assert_allclose(model.intercept_, fista.intercept_, atol=1e-8)


def test_screening_never_drops_a_row_of_the_support():
    """Two stacked tasks, one nonzero row: at a gap of rounding size the
    gap-safe box is a point, the support row sits at its threshold and had
    passed the test by rounding; zeroed, it sent coordinate descent back to
    zero every three epochs until max_iter (20000 epochs; FISTA finishes in
    16 iterations)."""
    X = np.array([
         [0.3724003442590311, 0.0, 0.7317298167406779, 0.0, 0.0, 0.0],
         [0.5083843638306877, 0.0, 0.6027344412930294, -0.895588583181195, 0.8402497568389145, 0.0],
         [-2.010788465917967, 1.5325122452350919, -0.6711886358672282, -0.5910757412154274, 0.2591475578479211, 0.0],
         [0.13951820389012048, 0.0, -0.28738582143062175, 1.060394137453504, -0.4327078982790454, 0.0],
         [-0.4843306806964445, 0.0, 0.0, 0.1110558296241913, 0.1187585040115043, 0.0],
         [-1.0111366521261103, 0.0, 1.5012438301575304, 0.18153883934285253, -0.3749832665565704, 0.0],
         [0.0, -0.8484952382813125, 0.0, 0.8116620308436526, 0.6591042155304956, 0.0],
         [0.0, -0.5218591939929025, 0.0, 0.2781624261820627, 1.2166614083230254, 0.0],
         [0.0, -0.9014691634536846, 0.0, 0.0, 0.0, 0.0],
         [-1.1554053959912274, -1.030286827445265, 0.0, 1.0237062832689503, 0.8589471470983223, 0.0],
         [0.8457761603546559, 1.4774700482853487, 1.788300992470729, 0.0, 0.0, 1.0],
         [0.40402273974082664, 0.0895550894866842, 0.12877552835283243, 0.0, 0.0, 1.0],
         [-0.4069190647106289, -1.7244871241500235, 0.0, 0.0, -0.3408175086815436, 1.0],
         [-0.510140215494298, -1.2982682384940898, 0.4442747711401243, 0.0, 0.3445622494477242, 1.0]])
    y = np.array([0.00966021172391961, 0.29317934472000834, 0.008042594745638232, 0.03490808395407601, -0.035303273578656084, -0.35057864119311744, 0.17276942018163657, 0.2586953342239657, 0.13345039932498012, -0.06669325659109453, 0.43844388047266175, -0.011839641148177767, -0.6184241891748464, -0.38317672270515246])
    model = MultiTaskRegressor(penalty="l1", alpha=0.11506261769150049,
                               fit_intercept=False, task_col=-1,
                               task_weights=[np.float64(1.5108842913034373),
                                             np.float64(0.4070481825270626)],
                               tol=1e-10, max_iter=20_000)
    model.fit(sp.csr_matrix(X), y)
    assert model.n_iter_ < 100
    fista = clone(model).set_params(solver="fista", tol=1e-13).fit(X, y)
    np.testing.assert_allclose(model.coef_, fista.coef_, atol=1e-9)


def test_handed_over_iterations_are_told_in_the_warning():
    """With ``solver="auto"`` each solver of the hand-over gets ``max_iter``
    iterations: ``n_iter_`` counts them all, and the warning says so rather
    than claiming ``max_iter`` iterations in all."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 4))
    X[:, 1] = X[:, 0] + 1e-3 * X[:, 1]
    Y = X[:, :2] @ rng.standard_normal((2, 3)) + 0.3 * rng.standard_normal((120, 3))
    with pytest.warns(ConvergenceWarning) as caught:
        model = MultiTaskRegressor(alpha=1e-5, max_iter=10, tol=1e-12).fit(X, Y)
    assert model.n_iter_ > 10
    assert f"of each solver ({model.n_iter_} in all)" in str(caught[0].message)


def _per_task_ridge(X, y, tasks, s, omega, alpha, factors):
    """scikit-learn's Ridge per task on our scaling: task ``t`` minimizes
    ``omega_t / n_t sum s_i r_i^2 / 2 + alpha / 2 sum_j f_j w_j^2``, which
    is Ridge(alpha n_t / omega_t) with weights ``s`` on ``X / sqrt(f)``."""
    from sklearn.linear_model import Ridge
    scale = 1.0 / np.sqrt(factors)
    coef, intercept = [], []
    for t in range(len(omega)):
        rows = tasks == t
        Xt = X[rows].multiply(scale).tocsr() if sp.issparse(X) else X[rows] * scale
        ridge = Ridge(alpha=alpha * s[rows].sum() / omega[t], tol=1e-12,
                      solver="sparse_cg" if sp.issparse(X) else "cholesky",
                      max_iter=100000)
        ridge.fit(Xt, y[rows], sample_weight=s[rows])
        coef.append(ridge.coef_ * scale)
        intercept.append(ridge.intercept_)
    return np.array(coef), np.array(intercept)


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("route", ["statistics", "wide", "beyond_memory"])
def test_single_ridge_solve_factors_by_cholesky(sparse, route, monkeypatch):
    # a fit is one solve: Cholesky factorizations, no eigendecomposition
    # (of all tasks' statistics, or task by task: with fewer rows per task
    # than features, or when only one task's fit in memory); a path of
    # several alphas takes the eigendecompositions and agrees
    from mtlinear import _ridge, regularization_path
    rng = np.random.default_rng(5)
    T, d = 3, 12
    n_t = 8 if route == "wide" else 40
    if route == "beyond_memory":
        monkeypatch.setattr("mtlinear._solve._GRAM_MAX_FLOATS", 2 * d * d)
    statistics = []
    from_problem = GramDatafit.from_problem
    monkeypatch.setattr(GramDatafit, "from_problem", classmethod(
        lambda cls, problem: statistics.append(1) or from_problem(problem)))
    tasks = np.repeat(np.arange(T), n_t)
    X = rng.standard_normal((T * n_t, d)) * rng.uniform(0.1, 10, d)
    X[rng.random(X.shape) < 0.3] = 0.0
    y = X @ rng.standard_normal(d) + rng.standard_normal(T * n_t)
    s = rng.uniform(0.5, 2.0, T * n_t)
    omega = np.array([1.0, 2.0, 0.5])
    factors = rng.uniform(0.5, 3.0, d)
    alpha = 0.05
    Xt = np.column_stack([X, tasks])
    Xt = sp.csr_matrix(Xt) if sparse else Xt

    class NoSpectrum(_ridge.RidgeSpectrum):
        def __init__(self, *args, **kwargs):
            raise AssertionError("a single solve made an eigendecomposition")
    monkeypatch.setattr("mtlinear._solve.RidgeSpectrum", NoSpectrum)
    model = MultiTaskRegressor(penalty="l2", alpha=alpha, task_col=-1,
                               penalty_factor=factors, task_weights=omega,
                               solver="ridge").fit(Xt, y, sample_weight=s)
    # task by task, or through all the tasks' statistics
    assert statistics == ([1] if route == "statistics" else [])
    coef, intercept = _per_task_ridge(sp.csr_matrix(X) if sparse else X, y,
                                      tasks, s, omega, alpha, factors)
    np.testing.assert_allclose(model.coef_, coef, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(model.intercept_, intercept, rtol=1e-7, atol=1e-9)

    if route == "beyond_memory":
        return  # no path: its eigendecompositions would not fit either
    monkeypatch.undo()
    monkeypatch.setattr("mtlinear._solve.single_ridge_solution", None)
    coefs = regularization_path(
        Xt, y, penalty="l2", alphas=[4 * alpha, alpha], task_col=-1,
        penalty_factor=factors, task_weights=omega, sample_weight=s,
        solver="ridge")[1]
    np.testing.assert_allclose(coefs[..., -1], model.coef_, rtol=1e-9, atol=1e-11)


def test_single_ridge_solution_solves_the_normal_equations(monkeypatch):
    from mtlinear._ridge import single_ridge_solution
    rng = np.random.default_rng(6)
    d, T, mu = 7, 3, 0.2
    A = rng.standard_normal((T, 15, d))
    Q = np.einsum("tni,tnj->tij", A, A) / 15
    omega, C = rng.uniform(0.5, 2, T), rng.standard_normal((d, T))
    factors = rng.uniform(0.5, 2, d)
    expected = np.column_stack([
        np.linalg.solve(omega[t] * Q[t] + mu * np.diag(factors), C[:, t])
        for t in range(T)])
    Q_before = Q.copy()
    np.testing.assert_allclose(single_ridge_solution(Q, omega, C, mu, factors),
                               expected, rtol=1e-10)
    # one task's Gram matrix at a time, from a generator
    np.testing.assert_allclose(
        single_ridge_solution((Q_t for Q_t in Q), omega, C, mu, factors),
        expected, rtol=1e-10)
    shared = single_ridge_solution(Q[:1], np.full(T, 0.7), C, mu, factors)
    np.testing.assert_allclose(
        shared, np.linalg.solve(0.7 * Q[0] + mu * np.diag(factors), C), rtol=1e-10)
    # one eigendecomposition serves a shared Q with unequal task weights
    assert single_ridge_solution(Q[:1], omega, C, mu, factors) is None
    np.testing.assert_array_equal(Q, Q_before)

    def no_pivot(*args, **kwargs):
        raise np.linalg.LinAlgError("not positive definite")
    # a failed factorization (rounding) falls back on the eigendecomposition
    monkeypatch.setattr("scipy.linalg.cho_factor", no_pivot)
    np.testing.assert_allclose(single_ridge_solution(Q, omega, C, mu, factors),
                               expected, rtol=1e-9)


def test_ridge_beyond_the_statistics_is_solved_to_sklearn_accuracy(monkeypatch):
    # where not even one task's Gram matrix fits, "auto" solves a ridge by
    # Newton-CG: at the defaults, as close to the optimum as scikit-learn's
    # Ridge at its defaults on the sparse design
    from scipy.linalg import toeplitz
    from sklearn.linear_model import Ridge
    monkeypatch.setattr("mtlinear._solve._GRAM_MAX_FLOATS", 10)
    rng = np.random.default_rng(7)
    T, n_t, d = 3, 60, 40
    L = np.linalg.cholesky(toeplitz(0.95 ** np.arange(d)))
    X = rng.standard_normal((T * n_t, d)) @ L.T
    tasks = np.repeat(np.arange(T), n_t)
    y = X @ rng.standard_normal(d) + rng.standard_normal(T * n_t)
    Xt = sp.csr_matrix(np.column_stack([X, tasks]))
    alpha = 1e-3
    model = MultiTaskRegressor(penalty="l2", alpha=alpha, task_col=-1).fit(Xt, y)
    exact, default = [], []
    for t in range(T):
        rows = tasks == t
        exact.append(Ridge(alpha=alpha * n_t, solver="svd").fit(X[rows], y[rows]).coef_)
        default.append(Ridge(alpha=alpha * n_t).fit(sp.csr_matrix(X[rows]),
                                                     y[rows]).coef_)
    exact = np.array(exact)
    scale = np.abs(exact).max()
    ours = np.abs(model.coef_ - exact).max() / scale
    theirs = np.abs(np.array(default) - exact).max() / scale
    # here 2e-5 against scikit-learn's 5e-2 (FISTA's: 5e-2)
    assert ours <= min(theirs, 1e-4)


@pytest.mark.parametrize("alpha,newton", [(1e-1, True), (1e-9, False)])
def test_single_sparse_ridge_newton_answer_is_certified(alpha, newton, monkeypatch):
    # a single ridge solve of a wide sparse stacked design tries Newton-CG
    # and keeps its answer only when the gap certifies the coefficients to
    # 1e-5 relative (sqrt(2 gap / mu)); an ill-conditioned one (tiny alpha)
    # runs out of Newton steps and is factored
    from sklearn.linear_model import Ridge
    monkeypatch.setattr("mtlinear._solve._NEWTON_RIDGE_PRODUCTS", 0)
    rng = np.random.default_rng(8)
    T, n_t, d = 3, 100, 300
    X = sp.random(T * n_t, d, density=0.02, random_state=8, format="csr")
    X.data = rng.exponential(1.0, X.data.size)
    tasks = np.repeat(np.arange(T), n_t)
    y = X @ rng.standard_normal(d) + 0.1 * rng.standard_normal(T * n_t)
    Xt = sp.hstack([X, sp.csr_matrix(tasks[:, None].astype(float))]).tocsr()
    model = MultiTaskRegressor(penalty="l2", alpha=alpha, task_col=-1).fit(Xt, y)
    assert (model.n_iter_ > 1) == newton  # Newton steps, or the direct solve
    dense = X.toarray()
    exact = np.array([Ridge(alpha=alpha * n_t, solver="svd").fit(
        dense[tasks == t], y[tasks == t]).coef_ for t in range(T)])
    error = np.linalg.norm(model.coef_ - exact) / np.linalg.norm(exact)
    assert error <= (1e-5 if newton else 1e-7)
