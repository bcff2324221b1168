"""Independent references for the extensions of the objective: a cvxpy model
of the objective (docs/user_guide/objective.rst, with the Huber loss, the
sparse-group penalty, penalty factors and the positivity constraint), the
objective written out in numpy, the optimality (KKT) conditions recomputed
from scratch, and ``alpha_max`` from them.

:func:`solve_reference` solves with CLARABEL (interior point) at tight
tolerances, then polishes the answer by proximal gradient in numpy (an
interior-point solution is accurate to ~1e-8 with second-order cones and is
never exactly sparse), and certifies the result by its KKT conditions
(violation at most 1e-9 relative to the data-fit gradient at ``W = 0``, else
RuntimeError).  test_extensions.py checks it against scikit-learn.

No mtlinear code is used here.  The data come task by task, as the lists of
``(X_t, y_t, s_t)`` of :mod:`_reference` (``y_t`` in {-1, +1} for the
logistic loss), tasks in sorted-label order.  The objective is

.. math::

    P(W, b) = \\sum_t \\frac{\\omega_t}{n_t} \\sum_{i \\in t}
              s_i\\, \\ell(y_i, x_i^T w_t + b_t) + \\alpha R(W),
    \\qquad n_t = \\sum_{i \\in t} s_i,

with ``W`` of shape (d, T) (``coef_`` is its transpose) and

* ``squared``: ``(y - z)^2 / 2``;
* ``huber``: with ``r = y - z``, ``r^2 / 2`` if ``|r| <= delta`` else
  ``delta |r| - delta^2 / 2`` (cvxpy's ``huber(r, M)`` is twice this);
* ``logistic``: ``log(1 + exp(-y z))``;
* ``poisson``: ``exp(z) - y z`` (``y >= 0``; the negative log-likelihood up
  to a constant in ``y``, so objectives compare by differences only).

The penalty, with ``r`` = ``l1_ratio``, ``s`` = ``l1_share``, ``f`` the
``penalty_factor`` (ones by default) and ``W_j`` the rows (features):

* ``l1``: ``sum_j f_j (r ||W_j||_1 + (1-r)/2 ||W_j||^2)``;
* ``l2``: ``sum_j f_j ||W_j||^2 / 2`` (``l1_ratio`` ignored);
* ``l21``: ``sum_j f_j (r ||W_j||_2 + (1-r)/2 ||W_j||^2)``;
* ``sparse_group``: ``sum_j f_j (r (s ||W_j||_1 + (1-s) ||W_j||_2)
  + (1-r)/2 ||W_j||^2)``;
* ``trace``: ``r ||W||_* + (1-r)/2 ||W||_F^2`` (no factors, no positivity).

``positive=True`` adds the constraint ``W >= 0`` (intercepts stay free).

``graph=(A, graph_alpha)`` adds the task-graph term, written pair by pair:
``graph_alpha / 2 * sum_{s,t} A_st ||w_s - w_t||^2`` (ordered pairs).
"""
import warnings

import numpy as np
from scipy.special import expit

ROW_PENALTIES = ("l1", "l2", "l21", "sparse_group")
PENALTIES = ROW_PENALTIES + ("trace",)
LOSSES = ("squared", "huber", "logistic", "poisson")


# ------------------------------------------------------------ parameters
def task_loss(loss, t):
    """Task ``t``'s loss: ``loss`` is one name, or a list of one per task
    (:func:`data_gradient` and :func:`kkt_violation` take both)."""
    return loss if isinstance(loss, str) else loss[t]


def _check(tasks, loss, penalty, penalty_factor, positive, task_weights):
    for t in range(len(tasks)):
        if task_loss(loss, t) not in LOSSES:
            raise ValueError(f"unknown loss {task_loss(loss, t)!r}")
    if penalty not in PENALTIES:
        raise ValueError(f"unknown penalty {penalty!r}")
    d = tasks[0][0].shape[1]
    if penalty == "trace" and (penalty_factor is not None or positive):
        raise ValueError("trace: no penalty_factor, no positive")
    f = np.ones(d) if penalty_factor is None else np.asarray(penalty_factor, float)
    assert f.shape == (d,) and np.all(f >= 0)
    omega = (np.ones(len(tasks)) if task_weights is None
             else np.asarray(task_weights, float))
    assert omega.shape == (len(tasks),)
    return d, f, omega


def split_alpha(penalty, alpha, l1_ratio):
    """``(lam, mu)``: weights of the norm and of the ridge term."""
    r = 0.0 if penalty == "l2" else float(l1_ratio)
    return alpha * r, alpha * (1.0 - r)


def sample_weights(tasks, omega):
    """``v_i = omega_t s_i / n_t`` of each task (a list of arrays)."""
    return [omega[t] * st / st.sum() for t, (_, _, st) in enumerate(tasks)]


# ------------------------------------------------------------ task graph
def graph_value(W, graph):
    """``graph_alpha / 2 * sum_{s,t} A_st ||w_s - w_t||^2`` (0 without)."""
    if graph is None:
        return 0.0
    A, strength = graph
    T = W.shape[1]
    return 0.5 * strength * sum(A[s, t] * np.sum((W[:, s] - W[:, t]) ** 2)
                                for s in range(T) for t in range(T))


def graph_gradient(W, graph):
    """Its gradient: ``2 graph_alpha sum_s A_ts (w_t - w_s)`` in column t."""
    G = np.zeros_like(W)
    if graph is None:
        return G
    A, strength = graph
    for t in range(W.shape[1]):
        for s in range(W.shape[1]):
            G[:, t] += 2.0 * strength * A[t, s] * (W[:, t] - W[:, s])
    return G


# ------------------------------------------------------------ losses (numpy)
def loss_values(loss, y, z, delta):
    if loss == "squared":
        return 0.5 * (y - z) ** 2
    if loss == "huber":
        a = np.abs(y - z)
        return np.where(a <= delta, 0.5 * a * a, delta * a - 0.5 * delta ** 2)
    if loss == "poisson":
        return np.exp(z) - y * z
    return np.logaddexp(0.0, -y * z)


def loss_derivative(loss, y, z, delta):
    """``d loss / d z``."""
    if loss == "squared":
        return z - y
    if loss == "huber":
        return -np.clip(y - z, -delta, delta)
    if loss == "poisson":
        return np.exp(z) - y
    return -y * expit(-y * z)


def curvature_bound(loss, z):
    """A bound on ``loss''`` near the linear predictors ``z`` (a task's):
    global for the squared, Huber and logistic losses; for the Poisson loss
    (``exp(z)``, unbounded) the largest value within ``z + 1``, for
    :func:`_polish`, which starts at a solution and moves little."""
    if loss == "logistic":
        return 0.25
    if loss == "poisson":
        return float(np.exp(np.max(z) + 1.0))
    return 1.0


# ------------------------------------------------------------ penalty (numpy)
def row_norms(W, penalty, l1_share):
    """``N(W_j)`` of each row for the row-separable penalties."""
    l1 = np.abs(W).sum(axis=1)
    l2 = np.linalg.norm(W, axis=1)
    if penalty == "l1":
        return l1
    if penalty == "l21":
        return l2
    if penalty == "sparse_group":
        return l1_share * l1 + (1.0 - l1_share) * l2
    return np.zeros(W.shape[0])


def penalty_value(W, *, penalty, l1_ratio=1.0, l1_share=0.5,
                  penalty_factor=None):
    """``R(W)`` (without ``alpha``)."""
    lam, mu = split_alpha(penalty, 1.0, l1_ratio)
    if penalty == "trace":
        return (lam * np.linalg.svd(W, compute_uv=False).sum()
                + 0.5 * mu * np.sum(W * W))
    f = np.ones(W.shape[0]) if penalty_factor is None else np.asarray(
        penalty_factor, float)
    rows = lam * row_norms(W, penalty, l1_share) + 0.5 * mu * np.sum(W * W, axis=1)
    return float(f @ rows)


def objective(tasks, W, b, *, loss, penalty, alpha, l1_ratio=1.0, l1_share=0.5,
              penalty_factor=None, positive=False, delta=1.0, fit_intercept=True,
              task_weights=None, graph=None):
    """``P(W, b)`` written from the formulas; ``W`` (d, T), ``b`` (T,) (ignored
    when ``fit_intercept=False``).  ``+inf`` if ``positive`` and ``W`` has a
    negative entry."""
    _, _, omega = _check(tasks, loss, penalty, penalty_factor, positive,
                         task_weights)
    W = np.asarray(W, float)
    b = np.zeros(len(tasks)) if (b is None or not fit_intercept) else np.asarray(
        b, float)
    if positive and np.any(W < 0):
        return np.inf
    fit = 0.0
    for t, ((Xt, yt, _), vt) in enumerate(zip(tasks, sample_weights(tasks, omega))):
        fit += vt @ loss_values(task_loss(loss, t), yt, Xt @ W[:, t] + b[t],
                                delta)
    return fit + graph_value(W, graph) + alpha * penalty_value(W, penalty=penalty, l1_ratio=l1_ratio,
                                       l1_share=l1_share,
                                       penalty_factor=penalty_factor)


# ------------------------------------------------------------ cvxpy
def solve_reference(tasks, *, loss, penalty, alpha, l1_ratio=1.0, l1_share=0.5,
                    penalty_factor=None, positive=False, delta=1.0,
                    fit_intercept=True, task_weights=None, polish=True,
                    graph=None):
    """``(W (d, T), b (T,), objective)`` of the problem, solved by cvxpy.

    CLARABEL (interior point, second-order and exponential cones) at tight
    tolerances for every loss, then (``polish=True``) refined by proximal
    gradient in numpy (see :func:`_polish`).  ``b`` is zero without
    intercepts.
    """
    import cvxpy as cp

    d, f, omega = _check(tasks, loss, penalty, penalty_factor, positive,
                         task_weights)
    T = len(tasks)
    lam, mu = split_alpha(penalty, alpha, l1_ratio)
    W = cp.Variable((d, T), nonneg=bool(positive))
    b = cp.Variable(T) if fit_intercept else None
    fit = 0
    for t, ((Xt, yt, _), vt) in enumerate(zip(tasks, sample_weights(tasks, omega))):
        z = Xt @ W[:, t] + (b[t] if fit_intercept else 0)
        if loss == "squared":
            fit = fit + 0.5 * cp.sum_squares(cp.multiply(np.sqrt(vt), yt - z))
        elif loss == "huber":
            fit = fit + 0.5 * cp.sum(cp.multiply(vt, cp.huber(yt - z, delta)))
        elif loss == "poisson":  # the exponential cone
            fit = fit + cp.sum(cp.multiply(vt, cp.exp(z) - cp.multiply(yt, z)))
        else:
            fit = fit + cp.sum(cp.multiply(vt, cp.logistic(cp.multiply(-yt, z))))
    reg = 0
    if penalty == "trace":
        if lam > 0:
            reg = lam * cp.normNuc(W)
        if mu > 0:
            reg = reg + 0.5 * mu * cp.sum_squares(W)
    else:
        if lam > 0 and penalty in ("l1", "sparse_group"):
            share = 1.0 if penalty == "l1" else l1_share
            if share > 0:
                reg = reg + lam * share * (f @ cp.sum(cp.abs(W), axis=1))
        if lam > 0 and penalty in ("l21", "sparse_group"):
            share = 1.0 if penalty == "l21" else 1.0 - l1_share
            if share > 0:
                reg = reg + lam * share * (f @ cp.norm(W, 2, axis=1))
        if mu > 0:
            reg = reg + 0.5 * mu * cp.sum_squares(
                cp.multiply(np.sqrt(f)[:, None], W))
    if graph is not None:
        A, strength = graph
        reg = reg + 0.5 * strength * sum(
            A[s, t] * cp.sum_squares(W[:, s] - W[:, t])
            for s in range(T) for t in range(T) if A[s, t] > 0)
    problem = cp.Problem(cp.Minimize(fit + reg))
    tight = dict(tol_gap_abs=1e-12, tol_gap_rel=1e-12, tol_feas=1e-12,
                 tol_ktratio=1e-10, max_iter=500)
    with warnings.catch_warnings():  # "inaccurate" at these tolerances: the
        warnings.filterwarnings(     # polish and the KKT check below decide
            "ignore", message="Solution may be inaccurate", category=UserWarning)
        problem.solve(solver=cp.CLARABEL, **tight)
    if problem.status not in ("optimal", "optimal_inaccurate"):
        raise RuntimeError(f"cvxpy: {problem.status}")
    W_value = np.asarray(W.value, float)
    if positive:
        W_value = np.maximum(W_value, 0.0)
    b_value = np.asarray(b.value, float) if fit_intercept else np.zeros(T)
    params = dict(loss=loss, penalty=penalty, alpha=alpha, l1_ratio=l1_ratio,
                  l1_share=l1_share, penalty_factor=penalty_factor,
                  positive=positive, delta=delta, fit_intercept=fit_intercept,
                  task_weights=task_weights, graph=graph)
    if polish:
        W_value, b_value = _polish(tasks, W_value, b_value, params)
    # the answer certifies itself: optimality conditions recomputed
    violation = kkt_violation(tasks, W_value, b_value,
                              zero_tol=0.0 if polish else 1e-7, **params)
    if violation > (1e-9 if polish else 1e-5):
        raise RuntimeError(f"reference solution not optimal: KKT violation "
                           f"{violation:.2e} (cvxpy status {problem.status})")
    return W_value, b_value, objective(tasks, W_value, b_value, **params)


# ------------------------------------------------------------ polishing
def _prox(V, step, *, penalty, alpha, l1_ratio, l1_share, f, positive):
    """``argmin_U ||U - V||^2 / (2 step) + alpha R(U)`` (+ ``U >= 0``)."""
    lam, mu = split_alpha(penalty, alpha, l1_ratio)
    if penalty == "trace":
        A, s, Bt = np.linalg.svd(V, full_matrices=False)
        return (A * np.maximum(s - step * lam, 0.0)) @ Bt / (1.0 + step * mu)
    share = {"l1": 1.0, "l21": 0.0, "sparse_group": l1_share, "l2": 0.0}[penalty]
    t1 = (step * lam * share * f)[:, None]
    t2 = (step * lam * (1.0 - share) * f)[:, None]
    U = np.maximum(V - t1, 0.0) if positive else np.sign(V) * np.maximum(
        np.abs(V) - t1, 0.0)
    norms = np.linalg.norm(U, axis=1, keepdims=True)
    U = U * np.maximum(1.0 - t2 / np.maximum(norms, 1e-300), 0.0)
    return U / (1.0 + step * mu * f)[:, None]


def _polish(tasks, W, b, params, n_iter=5000):
    """Refine an interior-point solution by accelerated proximal gradient
    from it (momentum restarted when it points uphill, O'Donoghue and
    Candes' gradient test); keep the result only if it has a lower objective
    (up to rounding) and a smaller KKT violation.  An interior-point solution
    is accurate to ~1e-8 with second-order cones and is never exactly
    sparse; the prox gives exact zeros and machine accuracy."""
    _, f, omega = _check(tasks, params["loss"], params["penalty"],
                         params["penalty_factor"], params["positive"],
                         params["task_weights"])
    fit_b = params["fit_intercept"]
    lip = max(curvature_bound(task_loss(params["loss"], t),
                              Xt @ W[:, t] + (b[t] if fit_b else 0.0))
              * np.linalg.norm(np.sqrt(vt)[:, None]
                               * np.column_stack([Xt, np.ones(len(Xt))]), 2) ** 2
              for t, ((Xt, _, _), vt) in enumerate(
                  zip(tasks, sample_weights(tasks, omega))))
    if params["graph"] is not None:  # 2 graph_alpha lambda_max(L) <= 4 ga deg
        A, strength = params["graph"]
        lip += 4.0 * strength * A.sum(axis=1).max()
    step = 1.0 / lip
    prox_kw = dict(penalty=params["penalty"], alpha=params["alpha"],
                   l1_ratio=params["l1_ratio"], l1_share=params["l1_share"],
                   f=f, positive=params["positive"])
    grad_kw = dict(loss=params["loss"], delta=params["delta"],
                   fit_intercept=fit_b, task_weights=params["task_weights"])
    x, xb = W.copy(), b.copy()
    y, yb, k = x.copy(), xb.copy(), 1.0
    for _ in range(n_iter):
        G, g = data_gradient(tasks, y, yb, **grad_kw)
        G = G + graph_gradient(y, params["graph"])
        x_new = _prox(y - step * G, step, **prox_kw)
        xb_new = yb - step * g if fit_b else yb
        dx, dxb = x_new - x, xb_new - xb
        if np.vdot(y - x_new, dx) + np.vdot(yb - xb_new, dxb) > 0:
            k = 1.0  # restart the momentum
        k_new = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * k * k))
        beta = (k - 1.0) / k_new
        y, yb = x_new + beta * dx, xb_new + beta * dxb
        x, xb, k = x_new, xb_new, k_new
        size = max(np.abs(x).max(initial=0.0), np.abs(xb).max(initial=0.0), 1.0)
        if max(np.abs(dx).max(initial=0.0), np.abs(dxb).max(initial=0.0)) \
                <= 1e-15 * size:
            break
    old_value, value = (objective(tasks, W, b, **params),
                        objective(tasks, x, xb, **params))
    before = kkt_violation(tasks, W, b, zero_tol=1e-7, **params)
    after = kkt_violation(tasks, x, xb, **params)
    if value <= old_value + 1e-13 * abs(old_value) and after <= before:
        return x, xb
    return W, b


# ------------------------------------------------------------ optimality
def data_gradient(tasks, W, b, *, loss, delta=1.0, fit_intercept=True,
                  task_weights=None):
    """``(G, g)``: gradient of the data fit in ``W`` (d, T) and in ``b`` (T,)."""
    omega = (np.ones(len(tasks)) if task_weights is None
             else np.asarray(task_weights, float))
    W = np.asarray(W, float)
    b = np.zeros(len(tasks)) if (b is None or not fit_intercept) else np.asarray(
        b, float)
    G, g = np.zeros_like(W), np.zeros(len(tasks))
    for t, ((Xt, yt, _), vt) in enumerate(zip(tasks, sample_weights(tasks, omega))):
        u = vt * loss_derivative(task_loss(loss, t), yt, Xt @ W[:, t] + b[t],
                                 delta)
        G[:, t], g[t] = Xt.T @ u, u.sum()
    return G, g


def _row_residual(a, w, lam1, lam2, positive):
    """Distance from ``a`` to ``lam1 d||w||_1 + lam2 d||w||_2`` (plus the
    normal cone of ``w >= 0`` when ``positive``), for one row."""
    nrm = np.linalg.norm(w)
    if nrm == 0:
        excess = np.maximum(a - lam1, 0.0) if positive else np.maximum(
            np.abs(a) - lam1, 0.0)
        return max(np.linalg.norm(excess) - lam2, 0.0)
    a = a - lam2 * w / nrm
    zero = w == 0
    res = np.where(w > 0, a - lam1, a + lam1)
    res[zero] = (np.maximum(a[zero] - lam1, 0.0) if positive
                 else np.maximum(np.abs(a[zero]) - lam1, 0.0))
    return np.linalg.norm(res)


def _trace_residual(A, W, lam, zero_tol):
    """A measure of ``A`` not in ``lam d||W||_*`` (zero iff it is)."""
    U, s, Vt = np.linalg.svd(W, full_matrices=False)
    k = int(np.sum(s > max(zero_tol, 1e-10) * max(s.max(initial=0.0), 1e-300)))
    U, V = U[:, :k], Vt[:k].T
    PU = np.eye(W.shape[0]) - U @ U.T
    PV = np.eye(W.shape[1]) - V @ V.T
    on = np.linalg.norm(U.T @ A @ V - lam * np.eye(k))
    cross = np.linalg.norm(U.T @ A @ PV) + np.linalg.norm(PU @ A @ V)
    rest = PU @ A @ PV
    off = max(np.linalg.norm(rest, 2) - lam, 0.0) if rest.size else 0.0
    return on + cross + off


def kkt_violation(tasks, W, b, *, loss, penalty, alpha, l1_ratio=1.0,
                  l1_share=0.5, penalty_factor=None, positive=False, delta=1.0,
                  fit_intercept=True, task_weights=None, zero_tol=0.0,
                  graph=None):
    """Largest violation of the optimality conditions at ``(W, b)``, relative
    to the largest absolute gradient of the data fit at ``(0, b)``.

    Row ``j`` (``f_j`` its factor, ``lam = alpha r``, ``mu = alpha (1 - r)``)
    is optimal iff ``-(G_j + f_j mu W_j)`` lies in ``f_j lam dN(W_j)`` plus,
    with ``positive``, the normal cone of ``W_j >= 0`` (entries at zero may
    have any non-positive excess).  ``f_j = 0`` rows and the intercepts need
    a zero gradient (rows: up to that cone).  The trace norm uses its
    subdifferential ``U V^T + M`` (``M`` orthogonal to ``U`` and ``V``,
    ``||M||_2 <= 1``).  Entries with ``|W_jt| <= zero_tol * max|W|`` count as
    zero (for an interior-point solution, which is never exactly sparse);
    for the trace norm, singular values below that relative level.
    """
    d, f, _ = _check(tasks, loss, penalty, penalty_factor, positive, task_weights)
    W = np.array(W, dtype=float)
    top = np.abs(W).max(initial=0.0)
    if positive and np.any(W < -zero_tol * top):
        return np.inf
    if penalty != "trace":
        W[np.abs(W) <= zero_tol * top] = 0.0
    kw = dict(loss=loss, delta=delta, fit_intercept=fit_intercept,
              task_weights=task_weights)
    G, g = data_gradient(tasks, W, b, **kw)
    G = G + graph_gradient(W, graph)
    G0, _ = data_gradient(tasks, np.zeros_like(W), b, **kw)
    scale = np.abs(G0).max(initial=0.0)
    scale = scale if scale > 0 else 1.0  # X = 0: the data fit ignores W
    lam, mu = split_alpha(penalty, alpha, l1_ratio)
    worst = np.abs(g).max() if fit_intercept else 0.0
    if penalty == "trace":
        return max(worst, _trace_residual(-(G + mu * W), W, lam, zero_tol)) / scale
    share = {"l1": 1.0, "l21": 0.0, "sparse_group": l1_share, "l2": 0.0}[penalty]
    for j in range(d):
        a = -(G[j] + f[j] * mu * W[j])
        lam1, lam2 = f[j] * lam * share, f[j] * lam * (1.0 - share)
        worst = max(worst, _row_residual(a, W[j], lam1, lam2, positive))
    return worst / scale


# ------------------------------------------------------------ alpha_max
def null_model(tasks, *, loss, penalty_factor=None, positive=False, delta=1.0,
               fit_intercept=True, task_weights=None):
    """``(W, b)`` optimal for every ``alpha >= alpha_max``: the penalized
    rows (``f_j > 0``) are zero, the unpenalized ones (``f_j = 0``) and the
    intercepts are fitted (with ``W >= 0`` when ``positive``)."""
    d, T = tasks[0][0].shape[1], len(tasks)
    f = np.ones(d) if penalty_factor is None else np.asarray(penalty_factor, float)
    free = f == 0
    W, b = np.zeros((d, T)), np.zeros(T)
    if not free.any() and not fit_intercept:
        return W, b
    if free.any():  # the free features, unpenalized
        reduced = [(Xt[:, free], yt, st) for Xt, yt, st in tasks]
        ridge = 0.0
    else:  # intercepts only: one zero column that a ridge keeps at zero
        reduced = [(np.zeros((len(yt), 1)), yt, st) for _, yt, st in tasks]
        ridge = 1.0
    W_free, b, _ = solve_reference(
        reduced, loss=loss, penalty="l2", alpha=ridge, positive=positive,
        delta=delta, fit_intercept=fit_intercept, task_weights=task_weights)
    if free.any():
        W[free] = W_free
    return W, b


def _row_dual_norm(u, share):
    """Smallest ``tau`` with ``||(u - share tau)_+|| <= (1 - share) tau``
    for ``u >= 0``: the dual norm of ``share ||.||_1 + (1 - share) ||.||_2``,
    by bisection (the left side minus the right is decreasing in ``tau``)."""
    if u.max(initial=0.0) <= 0:
        return 0.0
    if share >= 1.0:
        return float(u.max())
    if share <= 0.0:
        return float(np.linalg.norm(u))
    lo, hi = 0.0, float(np.linalg.norm(u)) / (1.0 - share)
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if np.linalg.norm(np.maximum(u - share * mid, 0.0)) > (1.0 - share) * mid:
            lo = mid
        else:
            hi = mid
    return hi


def alpha_max_reference(tasks, *, loss, penalty, l1_ratio=1.0, l1_share=0.5,
                        penalty_factor=None, positive=False, delta=1.0,
                        fit_intercept=True, task_weights=None):
    """Smallest ``alpha`` for which the penalized rows are zero.

    At the null model (:func:`null_model`) with data-fit gradient ``G``, row
    ``j`` with ``f_j > 0`` stays zero iff ``-G_j`` lies in ``alpha r f_j
    dN(0)`` (plus the non-positive orthant with ``positive``, so only the
    positive part of ``-G_j`` counts): ``alpha >= N°(-G_j) / (r f_j)``.
    The trace norm: ``||G||_2 / r``.  Rows with ``f_j = 0`` do not count.
    """
    d, f, _ = _check(tasks, loss, penalty, penalty_factor, positive, task_weights)
    kw = dict(loss=loss, delta=delta, fit_intercept=fit_intercept,
              task_weights=task_weights)
    W0, b0 = null_model(tasks, penalty_factor=penalty_factor, positive=positive,
                        **kw)
    G, _ = data_gradient(tasks, W0, b0, **kw)
    if penalty == "trace":
        return np.linalg.norm(G, 2) / l1_ratio
    share = {"l1": 1.0, "l21": 0.0, "sparse_group": l1_share}[penalty]
    top = 0.0
    for j in np.flatnonzero(f > 0):
        u = np.maximum(-G[j], 0.0) if positive else np.abs(G[j])
        top = max(top, _row_dual_norm(u, share) / f[j])
    return top / l1_ratio
