"""regularization_path: every point equals an independent fit at that alpha."""
import io
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import enet_path

from mtlinear import (MultiTaskClassifier, MultiTaskRegressor, alpha_max,
                      regularization_path, stack_tasks)
from mtlinear._progress import Progress

TIGHT = dict(tol=1e-12, max_iter=100000)


def _shared(rng, n=40, d=7, T=3):
    X = rng.standard_normal((n, d))
    Y = X[:, :3] @ rng.standard_normal((3, T)) + 0.5 * rng.standard_normal((n, T))
    return X, Y + 2.0


def _stacked(rng, sizes=(15, 30, 22), d=6):
    X_list = [rng.standard_normal((n, d)) for n in sizes]
    w = rng.standard_normal(d)
    y_list = [Xt @ (w + 0.3 * rng.standard_normal(d)) + rng.standard_normal(len(Xt))
              for Xt in X_list]
    return stack_tasks(X_list, y_list)


@pytest.mark.parametrize("layout", ["shared", "stacked"])
@pytest.mark.parametrize("penalty,l1_ratio", [("l21", 1.0), ("l1", 1.0),
                                              ("trace", 1.0), ("l21", 0.6)])
def test_path_equals_independent_fits(layout, penalty, l1_ratio):
    rng = np.random.default_rng(1)
    X, y = _shared(rng) if layout == "shared" else _stacked(rng)
    task_col = None if layout == "shared" else -1
    alphas, coefs, intercepts, gaps, n_iters = regularization_path(
        X, y, penalty=penalty, l1_ratio=l1_ratio, n_alphas=6, eps=1e-2,
        task_col=task_col, **TIGHT)
    assert np.all(np.diff(alphas) < 0)
    assert alphas[0] == pytest.approx(alpha_max(X, y, penalty=penalty,
                                                l1_ratio=l1_ratio,
                                                task_col=task_col))
    assert np.all(coefs[..., 0] == 0)
    assert n_iters.shape == gaps.shape == (6,)
    for k, alpha in enumerate(alphas):
        model = MultiTaskRegressor(penalty=penalty, alpha=alpha, l1_ratio=l1_ratio,
                                   task_col=task_col, **TIGHT).fit(X, y)
        np.testing.assert_allclose(coefs[..., k], model.coef_, atol=1e-5)
        np.testing.assert_allclose(intercepts[:, k], model.intercept_, atol=1e-5)


def test_matches_scikit_learn_enet_path():
    """One task, no intercept: scikit-learn's enet_path on the same grid."""
    rng = np.random.default_rng(2)
    X = rng.standard_normal((50, 8))
    y = X[:, :2] @ [1.0, -2.0] + rng.standard_normal(50)
    alphas, coefs, *_ = regularization_path(X, y, penalty="l1", l1_ratio=0.7,
                                            n_alphas=8, fit_intercept=False,
                                            **TIGHT)
    sk_alphas, sk_coefs, _ = enet_path(X, y, l1_ratio=0.7, alphas=8, tol=1e-12,
                                       max_iter=100000)
    np.testing.assert_allclose(alphas, sk_alphas, rtol=1e-12)
    np.testing.assert_allclose(coefs[0], sk_coefs, atol=1e-5)


def test_l2_and_explicit_alphas():
    rng = np.random.default_rng(3)
    X, Y = _shared(rng)
    with pytest.raises(ValueError, match="Give the alphas explicitly"):
        regularization_path(X, Y, penalty="l2")
    alphas, coefs, *_ = regularization_path(X, Y, penalty="l2",
                                            alphas=[0.1, 1.0, 0.01], **TIGHT)
    assert alphas.tolist() == [1.0, 0.1, 0.01]  # sorted decreasing
    # ridge closed form on the centred data: (X^T X / n + alpha I) W = X^T Y / n
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    n = len(X)
    for k, alpha in enumerate(alphas):
        W = np.linalg.solve(Xc.T @ Xc / n + alpha * np.eye(X.shape[1]), Xc.T @ Yc / n)
        np.testing.assert_allclose(coefs[..., k], W.T, atol=1e-5)


def test_logistic_path_equals_classifier_fits():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((60, 5))
    Y = np.where(X[:, :2] @ rng.standard_normal((2, 2))
                 + 0.5 * rng.standard_normal((60, 2)) > 0, 1.0, -1.0)
    tight = dict(tol=1e-8, max_iter=50000)
    alphas, coefs, intercepts, _, _ = regularization_path(
        X, Y, loss="logistic", n_alphas=4, eps=0.05, **tight)
    for k, alpha in enumerate(alphas):
        model = MultiTaskClassifier(alpha=alpha, **tight).fit(X, Y)
        np.testing.assert_allclose(coefs[..., k], model.coef_, atol=1e-4)
        np.testing.assert_allclose(intercepts[:, k], model.intercept_, atol=1e-4)
    # any two labels per task: the larger one is the positive class
    relabelled = np.where(Y > 0, np.array([7.0, 1.0]), np.array([2.0, 0.0]))
    _, coefs2, intercepts2, _, _ = regularization_path(
        X, relabelled, loss="logistic", alphas=alphas, **tight)
    np.testing.assert_allclose(coefs2, coefs, atol=1e-6)
    np.testing.assert_allclose(intercepts2, intercepts, atol=1e-6)


def test_bad_input_is_a_clear_error():
    rng = np.random.default_rng(5)
    X, Y = _shared(rng)
    with pytest.raises(ValueError, match="loss must be one of"):
        regularization_path(X, Y, loss="hinge")
    with pytest.raises(ValueError, match="solver must be 'auto' or one of"):
        regularization_path(X, Y, solver="newton")
    with pytest.raises(ValueError, match="Unknown penalty"):
        regularization_path(X, Y, penalty="l0")
    # the estimators' parameter checks, with scikit-learn's messages
    for bad in (dict(l1_ratio=2.0), dict(l1_ratio="0.5"), dict(eps=0.0),
                dict(n_alphas=0), dict(n_alphas=np.inf), dict(tol=-1.0),
                dict(tol=np.nan), dict(max_iter=0), dict(l1_share=1.5),
                dict(delta=0.0)):
        (name, value), = bad.items()
        with pytest.raises(ValueError, match=f"'{name}' parameter of "
                                             "regularization_path"):
            regularization_path(X, Y, **bad)
    with pytest.raises(ValueError, match="alphas must be finite and non-negative"):
        regularization_path(X, Y, alphas=[1.0, -1.0])
    with pytest.raises(ValueError, match="continuous values"):
        regularization_path(X, Y, loss="logistic")
    labels = (Y > 0).astype(float)
    labels[0, 0] = np.nan  # not a third label: binary tasks refuse it
    with pytest.raises(ValueError, match="contains NaN"):
        regularization_path(X, labels, loss="logistic")
    with pytest.raises(ValueError, match="single class"):
        regularization_path(X, np.ones_like(Y), loss="logistic")
    with pytest.raises(ValueError, match="single class"):
        regularization_path(X, np.full_like(Y, 3.0), loss="logistic",
                            fit_intercept=False)


def test_inputs_not_modified_and_convergence_warning():
    rng = np.random.default_rng(6)
    X, Y = _shared(rng)
    X0, Y0 = X.copy(), Y.copy()
    with pytest.warns(ConvergenceWarning, match="above the duality-gap target"):
        regularization_path(X, Y, n_alphas=5, max_iter=1, tol=1e-12)
    assert np.array_equal(X, X0) and np.array_equal(Y, Y0)


class _Stream(io.StringIO):
    def __init__(self, tty):
        super().__init__()
        self.tty = tty

    def isatty(self):
        return self.tty


def test_progress_reports():
    lines = _Stream(tty=False)
    progress = Progress(40, verbose=1, label="path", stream=lines)
    for _ in range(40):
        progress.update()
    out = lines.getvalue().splitlines()
    assert len(out) == 10 and out[-1].startswith("[mtlinear] path: 40/40 (100%)")

    bar = _Stream(tty=True)
    progress = Progress(4, verbose=2, label="cv", stream=bar)
    for k in range(4):
        progress.detail(f"alpha {k}")
        progress.update()
    text = bar.getvalue()
    assert text.count("\r[mtlinear] cv [") == 4 and "4/4" in text
    assert "[mtlinear] alpha 3" in text and text.endswith("\n")

    silent = _Stream(tty=True)
    progress = Progress(4, verbose=0, label="cv", stream=silent)
    progress.update()
    progress.detail("x")
    assert silent.getvalue() == ""


def test_verbose_path_prints(capsys):
    rng = np.random.default_rng(7)
    X, Y = _shared(rng)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        regularization_path(X, Y, n_alphas=3, verbose=2)
    err = capsys.readouterr().err
    assert err.count("iterations, gap") == 3 and "3/3 (100%)" in err


def test_extrapolation_is_exact_where_the_lasso_path_is_affine():
    # orthonormal design (X^T X = n I): the lasso solution is the soft-threshold
    # of z = X^T y / n, affine in alpha while the support holds, so the secant
    # through two solutions, and the quadratic through three, predict the
    # next one exactly
    from mtlinear._path import extrapolated_start
    rng = np.random.default_rng(0)
    n, d = 50, 5
    Q, _ = np.linalg.qr(rng.standard_normal((n, d)))
    X = np.sqrt(n) * Q
    z = np.array([3.0, -2.5, 2.0, 0.1, -0.05])
    y = X @ z  # X^T y / n = z: the lasso solution is ST(z, alpha)
    alphas = np.array([1.5, 1.2, 0.9, 0.7])  # the support {0, 1, 2} holds
    lasso = [(np.sign(z) * np.maximum(np.abs(z) - a, 0))[:, None]
             for a in alphas]
    fitted = MultiTaskRegressor(penalty="l1", alpha=alphas[3], fit_intercept=False,
                                **TIGHT).fit(X, y)
    np.testing.assert_allclose(fitted.coef_, lasso[3].T, atol=1e-8)
    for known in (2, 3):
        W, _ = extrapolated_start(alphas[3 - known:],
                                  [(W, None) for W in lasso[3 - known:3]])
        np.testing.assert_allclose(W, lasso[3], atol=1e-12)
    # repeated alphas give no direction: the newest solution is returned
    last = (lasso[1], None)
    assert extrapolated_start([1.0, 1.0, 0.5], [last, last]) is last
    assert extrapolated_start([1.2, 1.0, 1.0, 0.5],
                              [(lasso[0], None), last, last]) is last


def test_the_quadratic_extrapolation_follows_a_bending_path():
    # a quadratic in log(alpha) is reproduced exactly through three points,
    # where the secant misses it; intercepts are extrapolated alike
    from mtlinear._path import extrapolated_start
    rng = np.random.default_rng(2)
    A, B, C = rng.standard_normal((3, 4, 2))
    b0, b1 = rng.standard_normal((2, 2))

    def at(alpha):
        u = np.log(alpha)
        return A + u * B + u * u * C, b0 + u * b1

    alphas = np.geomspace(1.0, 1e-3, 4)
    W, b = extrapolated_start(alphas, [at(a) for a in alphas[:3]], in_log=True)
    np.testing.assert_allclose(W, at(alphas[3])[0], rtol=1e-10)
    np.testing.assert_allclose(b, at(alphas[3])[1], rtol=1e-10)
    secant, _ = extrapolated_start(alphas[1:], [at(a) for a in alphas[1:3]],
                                   in_log=True)
    assert np.linalg.norm(secant - at(alphas[3])[0]) > 1.0


def _logistic_ridge_path(alphas):
    """A logistic ridge on nearly separable classes, solved to 1e-12: its
    solution grows like log(1 / alpha)."""
    from mtlinear import regularization_path
    rng = np.random.default_rng(1)
    X = rng.standard_normal((80, 6))
    y = np.where(X @ rng.standard_normal(6) + 0.1 * rng.standard_normal(80)
                 > 0, 1.0, -1.0)
    _, coefs, *_ = regularization_path(X, y, penalty="l2", loss="logistic",
                                      alphas=alphas, tol=1e-12,
                                      max_iter=10_000)
    return X, y, [coefs[..., k] for k in range(len(alphas))]


def test_ridge_paths_extrapolate_in_log_alpha(monkeypatch):
    # on a coarse log grid the secant in log(alpha) predicts the next
    # solution far better than the one in alpha, and the quadratic in
    # log(alpha) better still
    import mtlinear._path as path
    from mtlinear import regularization_path
    alphas = np.geomspace(1e-1, 1e-5, 5)
    X, y, W = _logistic_ridge_path(alphas)
    for k in range(2, len(alphas)):
        pair = [(W[k - 2], None), (W[k - 1], None)]
        in_log, _ = path.extrapolated_start(alphas[k - 2:k + 1], pair,
                                            in_log=True)
        in_alpha, _ = path.extrapolated_start(alphas[k - 2:k + 1], pair)
        assert (np.linalg.norm(in_log - W[k])
                < 0.8 * np.linalg.norm(in_alpha - W[k]))
        if k >= 3:
            quadratic, _ = path.extrapolated_start(
                alphas[k - 3:k + 1], [(W[k - 3], None)] + pair, in_log=True)
            assert (np.linalg.norm(quadratic - W[k])
                    < np.linalg.norm(in_log - W[k]))
    # the path takes it for a ridge, through the last three solutions once
    # it has them, and the secant in alpha for a lasso
    taken = []
    extrapolate = path.extrapolated_start

    def recording(alphas, solutions, **kwargs):
        taken.append((len(solutions), kwargs.get("in_log", False)))
        return extrapolate(alphas, solutions, **kwargs)

    monkeypatch.setattr(path, "extrapolated_start", recording)
    for penalty in ("l2", "l1"):
        regularization_path(X, y, penalty=penalty, loss="logistic",
                            alphas=alphas)
    assert taken == [(2, True), (3, True), (3, True)] + [(2, False)] * 3


def test_solve_starts_from_the_lower_objective_of_start_and_fallback():
    # a solve started from a bad guess but given the optimum as fallback
    # certifies the fallback with at most one epoch (coordinate descent's
    # coefficient rule needs one to see that nothing moves)
    from mtlinear._path import prepare_problem
    from mtlinear._solve import solve
    from mtlinear.losses import make_loss
    from mtlinear.penalties import make_penalty
    rng = np.random.default_rng(3)
    X, Y = _shared(rng)
    loss = make_loss("squared")
    for penalty in ("l21", "trace"):
        problem = prepare_problem(X, Y, loss=loss, task_col=None,
                                  sample_weight=None, task_weights=None,
                                  fit_intercept=True)
        pen = make_penalty(penalty, 0.1, 1.0)
        best = solve(problem, loss, pen, tol=1e-10, max_iter=100000)
        bad = 100.0 * np.ones_like(best.W)
        again = solve(problem, loss, pen, W0=bad, tol=1e-8, max_iter=100000,
                      fallback=(best.W, best.b))
        assert again.n_iter <= 1, penalty
        np.testing.assert_allclose(again.W, best.W, rtol=0, atol=1e-8)
        # and without the fallback the bad start costs iterations
        assert solve(problem, loss, pen, W0=bad, tol=1e-8,
                     max_iter=100000).n_iter > 0


def test_logistic_alpha_max_takes_any_two_labels_per_task():
    rng = np.random.default_rng(6)
    X, y = _stacked(rng)
    signed = np.where(y > np.median(y), 1.0, -1.0)
    zero_five = np.where(signed > 0, 5.0, 0.0)
    for penalty in ("l21", "l1", "trace"):
        assert alpha_max(X, zero_five, loss="logistic", task_col=-1,
                         penalty=penalty) == pytest.approx(
            alpha_max(X, signed, loss="logistic", task_col=-1, penalty=penalty))


@pytest.mark.parametrize("penalty", ["l1", "l21"])
def test_logistic_alpha_max_and_path_with_a_task_of_one_class(penalty):
    # as MultiTaskClassifier fits it: the task gets half a sample of the
    # other class, and alpha_max is where its fits turn all zero
    rng = np.random.default_rng(24)
    X = rng.standard_normal((60, 3))
    labels = np.repeat([0, 1, 2], 20)
    y = (X[:, 0] + 0.5 * rng.standard_normal(60) > 0).astype(int)
    y[labels == 1] = 1
    A = np.column_stack([X, labels])
    with pytest.warns(UserWarning, match="single class"):
        top = alpha_max(A, y, loss="logistic", task_col=-1, penalty=penalty)
    with pytest.warns(UserWarning, match="single class"):
        zero = MultiTaskClassifier(penalty=penalty, alpha=top, task_col=-1,
                                   tol=1e-10).fit(A, y)
    assert not np.any(zero.coef_)
    with pytest.warns(UserWarning, match="single class"):
        below = MultiTaskClassifier(penalty=penalty, alpha=0.97 * top,
                                    task_col=-1, tol=1e-10).fit(A, y)
    assert np.any(below.coef_)
    with pytest.warns(UserWarning, match="single class"):
        _, coefs, intercepts, *_ = regularization_path(
            A, y, loss="logistic", task_col=-1, penalty=penalty,
            alphas=[0.5 * top], tol=1e-10)
    with pytest.warns(UserWarning, match="single class"):
        ref = MultiTaskClassifier(penalty=penalty, alpha=0.5 * top,
                                  task_col=-1, tol=1e-10).fit(A, y)
    np.testing.assert_allclose(coefs[..., 0], ref.coef_, atol=1e-7)
    np.testing.assert_allclose(intercepts[:, 0], ref.intercept_, atol=1e-7)


def test_a_path_offers_its_starts_predictors_and_they_are_exact(monkeypatch):
    # the Newton solvers' starts take X W + b from the path's solutions (the
    # extrapolated start's as the same combination of theirs); each offered
    # predictor equals a fresh product, and the path equals its own fits
    from mtlinear._datafit import SampleDatafit
    from mtlinear import regularization_path
    alphas = np.geomspace(1e-1, 1e-5, 6)
    X, y, W = _logistic_ridge_path(alphas)
    checked = []
    offered = SampleDatafit.start_predictor

    def checking(self, Wq, b):
        Z = offered(self, Wq, b)
        if (id(Wq), id(b)) in self.offered:
            np.testing.assert_allclose(Z, self.linear_predictor(Wq, b),
                                       rtol=1e-12, atol=1e-12)
            checked.append(True)
        return Z

    monkeypatch.setattr(SampleDatafit, "start_predictor", checking)
    for penalty in ("l2", "l1"):
        checked.clear()
        regularization_path(X, y, penalty=penalty, loss="logistic",
                            alphas=alphas)
        # most starts after the second alpha (extrapolated and fallback)
        # came without a product
        assert len(checked) >= 2 * (len(alphas) - 2) - 2, penalty
    _, coefs, *_ = regularization_path(X, y, penalty="l2", loss="logistic",
                                      alphas=alphas, tol=1e-12, max_iter=10_000)
    for k in range(len(alphas)):
        np.testing.assert_allclose(coefs[..., k], W[k], rtol=1e-8, atol=1e-10)


def test_a_solutions_predictor_is_forgotten_once_it_changes():
    # the predictor kept after a solve is given back for those values of
    # (W, b) only: a copy, unaffected by later changes to the solution
    from mtlinear._path import prepare_problem
    from mtlinear._solve import solution_predictor, solve
    from mtlinear.losses import make_loss
    from mtlinear.penalties import make_penalty
    rng = np.random.default_rng(4)
    X = rng.standard_normal((60, 5))
    y = np.where(X[:, 0] + 0.5 * rng.standard_normal(60) > 0, 1.0, -1.0)
    loss = make_loss("logistic")
    problem = prepare_problem(X, y, loss=loss, task_col=None)
    result = solve(problem, loss, make_penalty("l2", 0.01, 0.0), tol=1e-10)
    Z = solution_predictor(problem, result.W, result.b)
    datafit = problem.cache["sample_datafit"]
    np.testing.assert_allclose(Z, datafit.linear_predictor(result.W, result.b),
                               rtol=1e-12)
    moved = result.W.copy()
    moved[0, 0] += 1e-9
    assert solution_predictor(problem, moved, result.b) is None
    result.W[0, 0] += 1.0  # the caller's array changes: the copy does not
    assert solution_predictor(problem, result.W, result.b) is None
