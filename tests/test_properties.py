"""Property-based tests (hypothesis) over small random problems.

Every example is a small problem (n <= 40 rows, d <= 5 features, T <= 3
tasks) in the shared layout (``X`` (n, d), ``Y`` (n, T)) or the stacked one
(``task_col=-1``, built by :func:`mtlinear.stack_tasks`), dense or CSR, with
or without intercepts, sample weights and task weights, for every registered
penalty and the squared, Huber and logistic losses.  The properties:

* the reported duality gap is non-negative and within ``tol * P(0)``;
* the optimality (KKT) conditions, recomputed by :mod:`_cvxpy_reference`;
* invariances of the objective of docs/user_guide/objective.rst (a repeated
  row is a weight of 2, task relabelling, scaling ``X``, scaling ``y``);
* ``predict`` / ``decision_function`` is the linear model of ``coef_`` and
  ``intercept_``.

The data of an example come from a numpy generator seeded by hypothesis, the
rest (sizes, layout, penalty, loss, options) is drawn directly; the runs are
derandomized, so they are reproducible.
"""
import warnings
from dataclasses import dataclass, field, replace

import numpy as np
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize_scalar
from sklearn.exceptions import ConvergenceWarning

import mtlinear
from mtlinear import MultiTaskClassifier, MultiTaskRegressor, alpha_max, stack_tasks

import _cvxpy_reference as cref
import _reference as ref

PENALTIES = sorted(mtlinear.penalties.PENALTIES)
NORM_PENALTIES = [p for p in PENALTIES if p != "l2"]
LOSSES = ("squared", "huber", "logistic")
# coefficients are pinned to about sqrt(2 gap / curvature): Huber's flat
# parts need the tighter target for the 1e-6 comparisons below
TOL = {"squared": 1e-10, "huber": 1e-13, "logistic": 1e-12}
MAX_ITER = 20_000
DELTA = 1.0


def _settings(n):
    return settings(max_examples=n, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow],
                    database=None)


# ------------------------------------------------------------ problems
@dataclass
class Problem:
    """One drawn problem; ``X``, ``y`` as given to ``fit``."""
    layout: str  # "shared" or "stacked"
    loss: str
    penalty: str
    l1_ratio: float
    fit_intercept: bool
    sparse: bool
    frac: float  # alpha as a fraction of alpha_max
    X_list: list  # per task features (stacked); [X] for shared
    y_list: list  # per task targets (stacked); [Y] for shared
    s_list: list  # per task sample weights (stacked); [s] for shared
    task_weights: object = None
    labels: object = None  # stacked: task labels, default 0..T-1
    alpha: float = field(default=None)

    @property
    def n_tasks(self):
        return self.y_list[0].shape[1] if self.layout == "shared" else len(self.y_list)

    @property
    def X(self):
        if self.layout == "shared":
            X = self.X_list[0]
            return sp.csr_matrix(X) if self.sparse else X
        fmt = sp.csr_matrix if self.sparse else np.asarray
        X, _ = stack_tasks([fmt(Xt) for Xt in self.X_list], self.y_list,
                           task_labels=self.labels)
        return X

    @property
    def y(self):
        if self.layout == "shared":
            return self.y_list[0]
        return np.concatenate(self.y_list)

    @property
    def sample_weight(self):
        if self.s_list is None:
            return None
        return np.concatenate(self.s_list)

    def tasks(self):
        """``_reference``-style ``(X_t, y_t, s_t)`` in sorted-label order,
        logistic targets in {-1, +1}."""
        sign = (lambda v: 2.0 * v - 1.0) if self.loss == "logistic" else (lambda v: v)
        if self.layout == "shared":
            out = ref.shared_tasks(self.X_list[0], sign(self.y_list[0]),
                                   None if self.s_list is None else self.s_list[0])
            return out
        labels = np.arange(self.n_tasks) if self.labels is None else np.asarray(
            self.labels)
        out = []
        for t in np.argsort(labels):
            st_ = (np.ones(len(self.y_list[t])) if self.s_list is None
                   else self.s_list[t])
            out.append((self.X_list[t], sign(self.y_list[t]), st_))
        return out

    def sorted_task_weights(self):
        """The task weights in sorted-label order (array) or None."""
        if self.task_weights is None:
            return None
        if self.layout == "shared" or self.labels is None:
            return np.asarray(self.task_weights, float)
        return np.asarray(self.task_weights, float)[np.argsort(self.labels)]

    def common(self):
        return dict(penalty=self.penalty, l1_ratio=self.l1_ratio,
                    fit_intercept=self.fit_intercept,
                    task_col=-1 if self.layout == "stacked" else None,
                    task_weights=self.sorted_task_weights())

    def alpha_max(self):
        kw = self.common()
        kw["loss"] = self.loss
        if self.loss == "huber":
            kw["delta"] = DELTA
        return alpha_max(self.X, self.y, sample_weight=self.sample_weight, **kw)

    def with_alpha(self):
        """This problem with ``alpha`` fixed (fraction of alpha_max, or 0.1
        when alpha_max is undefined)."""
        if self.alpha is not None:
            return self
        if self.penalty == "l2" or self.l1_ratio == 0:
            return replace(self, alpha=0.1)
        return replace(self, alpha=self.frac * self.alpha_max())

    def estimator(self):
        p = self.with_alpha()
        kw = p.common()
        if self.loss == "logistic":
            return MultiTaskClassifier(alpha=p.alpha, tol=TOL["logistic"],
                                       max_iter=MAX_ITER, **kw)
        return MultiTaskRegressor(alpha=p.alpha, loss=self.loss, delta=DELTA,
                                  tol=TOL[self.loss], max_iter=MAX_ITER, **kw)

    def fit(self):
        with warnings.catch_warnings():
            warnings.simplefilter("error", ConvergenceWarning)
            return self.estimator().fit(self.X, self.y,
                                        sample_weight=self.sample_weight)


def _targets(rng, X, w, loss):
    z = X @ w + rng.normal()
    if loss == "logistic":
        y = (z + rng.standard_normal(len(z)) > 0).astype(float)
        y[0], y[1] = 1.0, 0.0  # both classes in every task
        return y
    noise = rng.standard_normal(len(z))
    if loss == "huber":  # a few gross errors
        noise[rng.random(len(z)) < 0.2] *= 8.0
    return z + 0.5 * noise


@st.composite
def problems(draw, layouts=("shared", "stacked"), losses=LOSSES,
             penalties=PENALTIES, l1_ratios=(1.0, 0.5)):
    layout = draw(st.sampled_from(layouts))
    loss = draw(st.sampled_from(losses))
    penalty = draw(st.sampled_from(penalties))
    l1_ratio = 1.0 if penalty == "l2" else draw(st.sampled_from(l1_ratios))
    T = draw(st.integers(1, 3))
    d = draw(st.integers(1, 5))
    seed = draw(st.integers(0, 2**32 - 1))
    fit_intercept = draw(st.booleans())
    sparse = draw(st.booleans())
    weighted = draw(st.booleans())
    task_weighted = draw(st.booleans())
    frac = draw(st.floats(0.05, 0.5))
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((d, T))
    W[rng.random((d, T)) < 0.3] = 0.0
    if layout == "shared":
        n = draw(st.integers(6, 40))
        X = rng.standard_normal((n, d))
        if sparse:
            X[rng.random((n, d)) < 0.3] = 0.0
        Y = np.column_stack([_targets(rng, X, W[:, t], loss) for t in range(T)])
        X_list, y_list = [X], [Y]
        s_list = [rng.uniform(0.2, 3.0, n)] if weighted else None
    else:
        sizes = [draw(st.integers(4, 13)) for _ in range(T)]
        X_list = []
        for m in sizes:
            Xt = rng.standard_normal((m, d))
            if sparse:
                Xt[rng.random((m, d)) < 0.3] = 0.0
            X_list.append(Xt)
        y_list = [_targets(rng, Xt, W[:, t], loss) for t, Xt in enumerate(X_list)]
        s_list = [rng.uniform(0.2, 3.0, m) for m in sizes] if weighted else None
    task_weights = rng.uniform(0.3, 3.0, T) if task_weighted else None
    return Problem(layout=layout, loss=loss, penalty=penalty, l1_ratio=l1_ratio,
                   fit_intercept=fit_intercept, sparse=sparse, frac=frac,
                   X_list=X_list, y_list=y_list, s_list=s_list,
                   task_weights=task_weights)


# ------------------------------------------------------------ helpers
def _null_objective(p):
    """``P(0, b*)``, the objective at ``W = 0`` with the best intercepts,
    written from the formulas (1-d convex minimizations for Huber and
    logistic)."""
    tasks = p.tasks()
    omega = p.sorted_task_weights()
    if p.loss == "squared":
        return ref.null_objective(tasks, p.fit_intercept, omega)
    omega = np.ones(len(tasks)) if omega is None else omega
    total = 0.0
    for (_, yt, st_), vt in zip(tasks, cref.sample_weights(tasks, omega)):
        def f(b, yt=yt, vt=vt):
            return vt @ cref.loss_values(p.loss, yt, np.full(len(yt), b), DELTA)
        if p.fit_intercept:
            lo, hi = yt.min() - 1.0, yt.max() + 1.0
            if p.loss == "logistic":
                lo, hi = -50.0, 50.0
            total += minimize_scalar(f, bounds=(lo, hi), method="bounded",
                                     options=dict(xatol=1e-12)).fun
        else:
            total += f(0.0)
    return total


def _close(actual, expected, rtol=1e-6):
    """``actual == expected`` to ``rtol`` relative to ``max |expected|``
    (absolute when that is below 1)."""
    actual, expected = np.asarray(actual, float), np.asarray(expected, float)
    scale = max(np.abs(expected).max(initial=0.0), 1.0)
    np.testing.assert_allclose(actual, expected, rtol=0, atol=rtol * scale)


def _same_fit(a, b, coef_factor=1.0, intercept_factor=1.0):
    _close(a.coef_ * coef_factor, b.coef_)
    _close(np.asarray(a.intercept_) * intercept_factor, b.intercept_)


# ------------------------------------------------------------ 1. duality gap
@_settings(150)
@given(problems())
def test_dual_gap_nonnegative_and_below_tolerance(p):
    p = p.with_alpha()
    model = p.fit()  # raises ConvergenceWarning as an error if gap > target
    null = _null_objective(p)
    tol = TOL[p.loss]
    assert model.dual_gap_ >= -1e-12 * max(null, 1e-300)
    assert model.dual_gap_ <= tol * null * (1 + 1e-6) + 1e-300


# ------------------------------------------------------------ 2. KKT
def _gradient_scale(p, tasks, intercept):
    """The size of the data-fit gradient: the larger of ``max |G(0, b)|``
    (the scale of :func:`_cvxpy_reference.kkt_violation`) and ``max_{j,t}
    sum_i v_i |x_ij| |l'(y_i, 0)|``.  The first alone is tiny when the
    solution is close to zero (then a gap of ``tol * P(0)`` legitimately
    leaves a violation that is large relative to it)."""
    omega = p.sorted_task_weights()
    omega = np.ones(len(tasks)) if omega is None else omega
    d, T = tasks[0][0].shape[1], len(tasks)
    G0, _ = cref.data_gradient(tasks, np.zeros((d, T)), intercept, loss=p.loss,
                               delta=DELTA, fit_intercept=p.fit_intercept,
                               task_weights=omega)
    top = np.abs(G0).max(initial=0.0)
    for (Xt, yt, _), vt in zip(tasks, cref.sample_weights(tasks, omega)):
        u = np.abs(cref.loss_derivative(p.loss, yt, np.zeros(len(yt)), DELTA))
        top = max(top, (np.abs(Xt).T @ (vt * u)).max(initial=0.0))
    return top, np.abs(G0).max(initial=0.0)


@_settings(150)
@given(problems(penalties=[q for q in PENALTIES if q != "trace"]))
def test_kkt_conditions_hold(p):
    p = p.with_alpha()
    model = p.fit()
    tasks = p.tasks()
    violation = cref.kkt_violation(
        tasks, model.coef_.T, model.intercept_, loss=p.loss,
        penalty=p.penalty, alpha=p.alpha, l1_ratio=p.l1_ratio, delta=DELTA,
        fit_intercept=p.fit_intercept, task_weights=p.sorted_task_weights())
    scale, g0 = _gradient_scale(p, tasks, model.intercept_)
    g0 = g0 if g0 > 0 else 1.0  # kkt_violation's own convention
    assert violation * g0 <= 1e-5 * scale


# ------------------------------------------------------------ 3. invariances
@_settings(100)
@given(problems(), st.integers(0, 10**6))
def test_repeated_row_equals_weight_two(p, which):
    p = p.with_alpha()
    t = which % len(p.y_list) if p.layout == "stacked" else 0
    i = which % len(p.y_list[t])
    s_list = ([np.ones(len(y)) for y in p.y_list] if p.s_list is None
              else [s.copy() for s in p.s_list])
    X_rep = [X.copy() for X in p.X_list]
    y_rep = [y.copy() for y in p.y_list]
    s_rep = [s.copy() for s in s_list]
    X_rep[t] = np.vstack([X_rep[t], X_rep[t][i:i + 1]])
    y_rep[t] = np.concatenate([y_rep[t], y_rep[t][i:i + 1]])
    s_rep[t] = np.concatenate([s_rep[t], s_rep[t][i:i + 1]])
    s_list[t][i] *= 2.0
    repeated = replace(p, X_list=X_rep, y_list=y_rep, s_list=s_rep).fit()
    weighted = replace(p, s_list=s_list).fit()
    _same_fit(repeated, weighted)


@_settings(100)
@given(problems(), st.permutations(range(3)))
def test_task_relabelling_permutes_coef(p, perm3):
    p = p.with_alpha()
    T = p.n_tasks
    perm = np.array([k for k in perm3 if k < T])  # a permutation of range(T)
    base = p.fit()
    if p.layout == "stacked":
        # task t gets label perm[t]; task weights move with their task
        relabelled = replace(p, labels=perm).fit()
        # sorted label perm[t] is old task t
        _close(relabelled.coef_[perm], base.coef_)
        _close(np.asarray(relabelled.intercept_)[perm], base.intercept_)
    else:
        # new column j is old column perm[j]
        tw = p.task_weights
        permuted = replace(p, y_list=[p.y_list[0][:, perm]],
                           task_weights=None if tw is None else tw[perm]).fit()
        _close(permuted.coef_, base.coef_[perm])
        _close(permuted.intercept_, np.asarray(base.intercept_)[perm])


@_settings(100)
@given(problems(l1_ratios=(1.0,)), st.sampled_from([0.1, 10.0]))
def test_scaling_X(p, c):
    """``X' = c X``, ``W' = W / c`` gives the same data fit; ``alpha' R(W')
    = alpha R(W)`` needs ``alpha' = c alpha`` for a norm (degree 1, hence
    ``l1_ratio=1``) and ``alpha' = c^2 alpha`` for the ridge ``l2``."""
    p = p.with_alpha()
    base = p.fit()
    power = 2 if p.penalty == "l2" else 1
    scaled = replace(p, X_list=[c * X for X in p.X_list],
                     alpha=p.alpha * c ** power).fit()
    _same_fit(scaled, base, coef_factor=c)


@_settings(100)
@given(problems(losses=("squared",), l1_ratios=(1.0,)),
       st.sampled_from([0.1, 10.0]))
def test_scaling_y(p, c):
    """Squared loss, ``y' = c y``: ``(c W, c b)`` multiplies the data fit by
    ``c^2``; a norm (degree 1) then needs ``alpha' = c alpha``, the ridge
    ``l2`` (degree 2) ``alpha' = alpha``."""
    p = p.with_alpha()
    base = p.fit()
    power = 0 if p.penalty == "l2" else 1
    scaled = replace(p, y_list=[c * y for y in p.y_list],
                     alpha=p.alpha * c ** power).fit()
    _same_fit(base, scaled, coef_factor=c, intercept_factor=c)


# ------------------------------------------------------------ 4. predict
@_settings(100)
@given(problems())
def test_predict_is_the_linear_model(p):
    model = p.fit()
    X = p.X
    dense = X.toarray() if sp.issparse(X) else np.asarray(X, float)
    if p.layout == "shared":
        Z = dense @ model.coef_.T + model.intercept_
    else:
        features, labels = dense[:, :-1], dense[:, -1]
        k = np.searchsorted(model.tasks_, labels)
        assert np.array_equal(model.tasks_[k], labels)
        Z = np.einsum("ij,ij->i", features, model.coef_[k]) + model.intercept_[k]
    if p.loss == "logistic":
        out = model.decision_function(X)
        if p.layout == "shared" and p.n_tasks == 1:
            Z = Z[:, 0]
        np.testing.assert_allclose(out, Z, rtol=1e-12, atol=1e-12)
        labels_pred = model.predict(X)
        if out.ndim == 1:
            np.testing.assert_array_equal(labels_pred, model.classes_[(Z > 0) * 1])
        else:
            for t in range(out.shape[1]):
                np.testing.assert_array_equal(
                    labels_pred[:, t], model.classes_[t][(Z[:, t] > 0) * 1])
    else:
        np.testing.assert_allclose(model.predict(X), Z, rtol=1e-12, atol=1e-12)
