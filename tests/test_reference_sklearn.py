"""Same optimum as scikit-learn on the same objective.

With a shared ``X`` the objective of :class:`mtlinear.MultiTaskRegressor` is

    (1 / (2 S)) sum_i s_i ||y_i - W^T x_i - b||^2 + alpha R(W),   S = sum_i s_i,

which is scikit-learn's, term for term:

* ``l21``: ``MultiTaskLasso`` (``l1_ratio = 1``) / ``MultiTaskElasticNet``;
* ``l1``: ``Lasso`` / ``ElasticNet`` on each column of ``Y``;
* ``l2``: ``Ridge`` on each column, whose objective
  ``sum_i s_i (y_i - w^T x_i - b)^2 + alpha_sk ||w||^2`` is ``2 S`` times ours,
  hence ``alpha_sk = S * alpha`` (``n * alpha`` without weights).

scikit-learn's coordinate-descent estimators rescale ``sample_weight`` to sum
to ``n``, so their weighted loss is the same weighted mean as ours.  They take
a dense ``X`` here: the reference is the optimum, our input format is what
varies.

Tolerances: a duality gap ``g`` bounds the distance to the optimum only through
strong convexity, ``||W - W*||_F^2 <= 2 g / m``; with a ridge term
``m >= alpha (1 - l1_ratio)`` is small, so a coefficient accuracy of ``1e-6``
needs a gap near ``1e-14``.  Both sides are therefore solved to (almost)
machine precision.
"""
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.linear_model import (ElasticNet, Lasso, MultiTaskElasticNet,
                                  MultiTaskLasso, Ridge)

from mtlinear import MultiTaskRegressor, alpha_max

N_TASKS = 3
# rows > features: the solvers work on the Gram (sufficient) statistics;
# rows < features: they work on the samples.
REGIMES = {"n>d": (60, 12), "n<d": (25, 50)}
FORMATS = {"dense": np.asarray, "csr": sp.csr_matrix, "csc": sp.csc_matrix}
SK_TOL = dict(tol=1e-13, max_iter=1_000_000)

pytestmark = pytest.mark.filterwarnings("error::sklearn.exceptions.ConvergenceWarning")


def _problem(regime, seed=0):
    n, d = REGIMES[regime]
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    X[rng.random((n, d)) < 0.3] = 0.0  # some sparsity for the sparse formats
    W = np.zeros((d, N_TASKS))
    W[:5] = rng.standard_normal((5, N_TASKS))
    Y = X @ W + 2.0 + 0.5 * rng.standard_normal((n, N_TASKS))
    s = rng.uniform(0.1, 3.0, n)
    return X, Y, s


def _sklearn_fit(penalty, alpha, l1_ratio, fit_intercept, X, Y, s):
    """``(coef (T, d), intercept (T,))`` from the scikit-learn peer."""
    if penalty == "l21":
        cls = MultiTaskLasso if l1_ratio == 1 else MultiTaskElasticNet
        kw = {} if l1_ratio == 1 else {"l1_ratio": l1_ratio}
        model = cls(alpha=alpha, fit_intercept=fit_intercept, **kw, **SK_TOL)
        model.fit(X, Y, sample_weight=s)
        return model.coef_, np.broadcast_to(model.intercept_, (N_TASKS,))
    if penalty == "l1":
        def make():
            if l1_ratio == 1:
                return Lasso(alpha=alpha, fit_intercept=fit_intercept, **SK_TOL)
            return ElasticNet(alpha=alpha, l1_ratio=l1_ratio,
                              fit_intercept=fit_intercept, **SK_TOL)
    else:  # l2: scikit-learn's Ridge objective is 2 S times ours
        total = len(X) if s is None else s.sum()

        def make():
            return Ridge(alpha=total * alpha, fit_intercept=fit_intercept,
                         solver="cholesky")
    models = [make().fit(X, Y[:, t], sample_weight=s) for t in range(N_TASKS)]
    return (np.array([m.coef_ for m in models]),
            np.array([m.intercept_ for m in models], dtype=float))


@pytest.mark.parametrize("penalty,l1_ratio", [("l21", 1.0), ("l21", 0.5),
                                              ("l1", 1.0), ("l1", 0.5),
                                              ("l2", 1.0)])
@pytest.mark.parametrize("regime", list(REGIMES))
@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
def test_same_optimum_as_sklearn(penalty, l1_ratio, regime, fmt, fit_intercept,
                                 weighted):
    X, Y, s = _problem(regime)
    s = s if weighted else None
    if penalty == "l2":
        alpha = 0.05
    else:
        alpha = 0.1 * alpha_max(X, Y, penalty=penalty, l1_ratio=l1_ratio,
                                fit_intercept=fit_intercept, sample_weight=s)
    ours = MultiTaskRegressor(penalty=penalty, alpha=alpha, l1_ratio=l1_ratio,
                              fit_intercept=fit_intercept, tol=1e-14,
                              max_iter=100_000)
    ours.fit(FORMATS[fmt](X), Y, sample_weight=s)
    coef, intercept = _sklearn_fit(penalty, alpha, l1_ratio, fit_intercept, X, Y, s)

    assert np.count_nonzero(coef) > 0  # the comparison is not between zeros
    scale = np.abs(coef).max()
    np.testing.assert_allclose(ours.coef_, coef, rtol=1e-6, atol=1e-6 * scale)
    np.testing.assert_allclose(ours.intercept_, intercept, rtol=1e-6,
                               atol=1e-6 * scale)
    if penalty != "l2":  # same sparsity pattern, up to entries at rounding level
        assert np.array_equal(np.abs(ours.coef_) > 1e-8 * scale,
                              np.abs(coef) > 1e-8 * scale)


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_single_task_1d_target_is_lasso(fmt):
    """``y`` of shape (n,): one task, same as ``Lasso``; predict is 1-d."""
    X, Y, _ = _problem("n>d", seed=1)
    y = Y[:, 0]
    ours = MultiTaskRegressor(penalty="l21", alpha=0.05, tol=1e-10)
    ours.fit(FORMATS[fmt](X), y)
    ref = Lasso(alpha=0.05, **SK_TOL).fit(X, y)
    np.testing.assert_allclose(ours.coef_[0], ref.coef_, rtol=1e-6, atol=1e-7)
    assert ours.predict(FORMATS[fmt](X)).shape == y.shape
    np.testing.assert_allclose(ours.predict(FORMATS[fmt](X)), ref.predict(X),
                               rtol=1e-6, atol=1e-6)


def test_alpha_zero_with_task_level_features_predicts_as_linear_regression():
    """School-like tasks: features constant within a task (school-level,
    values in the hundreds) and dummies summing to one.  Centred, a constant
    column is rounding of its own size; kept by LAPACK's default cut it
    gave weights of 5e11 and held-out R2 of -2.5e12.  Held-out predictions
    equal LinearRegression's per task (minimum norm)."""
    from sklearn.linear_model import LinearRegression
    rng = np.random.default_rng(0)
    T, n = 6, 14
    rows = []
    for t in range(T):
        level = np.full((2 * n, 2), rng.uniform(100, 900, 2))  # school level
        dummies = np.eye(3)[rng.integers(0, 3, 2 * n)]
        rows.append(np.column_stack([rng.standard_normal((2 * n, 2)) * 0.3,
                                     level, dummies, np.full(2 * n, t)]))
    X = np.vstack(rows)
    w = rng.standard_normal(X.shape[1] - 1)
    y = X[:, :-1] @ w + rng.standard_normal(len(X))
    train = np.tile(np.r_[np.ones(n, bool), np.zeros(n, bool)], T)
    model = MultiTaskRegressor(alpha=0.0, task_col=-1).fit(X[train], y[train])
    expected = np.empty(len(X))
    for t in range(T):
        mine = X[:, -1] == t
        ref = LinearRegression().fit(X[mine & train, :-1], y[mine & train])
        expected[mine] = ref.predict(X[mine, :-1])
    np.testing.assert_allclose(model.predict(X[~train]), expected[~train],
                               rtol=1e-6, atol=1e-6)
    assert np.abs(model.coef_).max() < 1e3


@pytest.mark.parametrize("layout", ["shared", "stacked"])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_alpha_zero_is_least_squares(layout, fit_intercept):
    # alpha = 0 is ordinary least squares: solved directly, as accurate as
    # LinearRegression on an ill-conditioned design, certified, no warning
    import warnings

    from sklearn.linear_model import LinearRegression

    from mtlinear import stack_tasks
    rng = np.random.default_rng(4)
    X = rng.standard_normal((60, 6))
    X[:, 5] = X[:, 3] + 1e-4 * X[:, 4]  # condition number ~1e5
    Y = X @ rng.standard_normal((6, 2)) + 0.1 * rng.standard_normal((60, 2))
    s = rng.uniform(0.5, 2.0, 60)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        if layout == "shared":
            model = MultiTaskRegressor(alpha=0.0, fit_intercept=fit_intercept)
            model.fit(X, Y, sample_weight=s)
            refs = [LinearRegression(fit_intercept=fit_intercept).fit(
                X, Y[:, t], sample_weight=s) for t in range(2)]
        else:
            Xs, ys = stack_tasks([X[:25], X[25:]], [Y[:25, 0], Y[25:, 1]])
            model = MultiTaskRegressor(alpha=0.0, task_col=-1,
                                       fit_intercept=fit_intercept)
            model.fit(Xs, ys, sample_weight=s)
            refs = [LinearRegression(fit_intercept=fit_intercept).fit(
                X[rows], Y[rows, t], sample_weight=s[rows])
                for t, rows in enumerate([slice(0, 25), slice(25, 60)])]
    for t, ref in enumerate(refs):
        np.testing.assert_allclose(model.coef_[t], ref.coef_, rtol=1e-9,
                                   atol=1e-9)
        np.testing.assert_allclose(model.intercept_[t], ref.intercept_,
                                   atol=1e-9)
    assert 0 <= model.dual_gap_ < 1e-10
