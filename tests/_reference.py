"""Independent numpy references for the tests: the objective of the user guide
section 1 and its duality gap, written out from the formulas (no mtlinear
code).

The data are handled task by task, as lists of ``(X_t, y_t, s_t)`` with
``X_t`` dense.  For the squared loss the objective is

.. math::

    P(W, b) = \\sum_t \\frac{\\omega_t}{n_t} \\sum_{i \\in t}
              \\frac{s_i}{2} (y_i - x_i^T w_t - b_t)^2 + h(W),
    \\qquad h(W) = \\lambda N(W) + \\frac{\\mu}{2} \\|W\\|_F^2,

with ``n_t = sum_{i in t} s_i``, ``lam = alpha r`` and ``mu = alpha (1 - r)``.
Writing ``v_i = omega_t s_i / n_t``, its Fenchel dual is

.. math::

    D(\\theta) = \\sum_i \\Big(\\theta_i y_i - \\frac{\\theta_i^2}{2 v_i}\\Big)
                 - h^*(U), \\qquad U_{:, t} = \\sum_{i \\in t} \\theta_i x_i,

subject to ``sum_{i in t} theta_i = 0`` for every task when intercepts are
fitted.  ``h*(U)`` is the indicator of ``N°(U) <= lam`` when ``mu = 0`` and
``||prox_{lam N}(U)||^2 / (2 mu)`` otherwise.
"""
import numpy as np
import scipy.sparse as sp


def _dense(X):
    return X.toarray() if sp.issparse(X) else np.asarray(X, dtype=float)


def shared_tasks(X, Y, sample_weight=None):
    """Per-task lists for the shared layout: every task sees all of ``X``."""
    X = _dense(X)
    Y = np.asarray(Y, dtype=float).reshape(len(X), -1)
    s = np.ones(len(X)) if sample_weight is None else np.asarray(sample_weight, float)
    return [(X, Y[:, t], s) for t in range(Y.shape[1])]


def stacked_tasks(features, y, labels, sample_weight=None):
    """Per-task lists for the stacked layout, tasks in sorted-label order."""
    features = _dense(features)
    y = np.asarray(y, dtype=float)
    labels = np.asarray(labels)
    s = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, float)
    return [(features[labels == t], y[labels == t], s[labels == t])
            for t in np.unique(labels)]


# ------------------------------------------------------------ penalties
def norm(W, penalty):
    """``N(W)`` of each penalty (zero for the pure ridge ``l2``)."""
    if penalty == "l1":
        return np.abs(W).sum()
    if penalty == "l21":
        return np.linalg.norm(W, axis=1).sum()
    if penalty == "trace":
        return np.linalg.svd(W, compute_uv=False).sum()
    return 0.0


def dual_norm(U, penalty):
    """``N°(U)``: max abs (l1), max row norm (l21), spectral norm (trace)."""
    if penalty == "l1":
        return np.abs(U).max()
    if penalty == "l21":
        return np.linalg.norm(U, axis=1).max()
    return np.linalg.norm(U, 2)


def prox_norm(U, threshold, penalty):
    """``prox_{threshold N}(U)``: soft thresholding of entries, rows, or
    singular values."""
    if penalty == "l1":
        return np.sign(U) * np.maximum(np.abs(U) - threshold, 0.0)
    if penalty == "l21":
        norms = np.linalg.norm(U, axis=1, keepdims=True)
        return U * np.maximum(1.0 - threshold / np.maximum(norms, 1e-300), 0.0)
    if penalty == "trace":
        A, s, Bt = np.linalg.svd(U, full_matrices=False)
        return (A * np.maximum(s - threshold, 0.0)) @ Bt
    return U


def split_alpha(penalty, alpha, l1_ratio):
    """``(lam, mu)``: weights of the norm and of the ridge term."""
    r = 0.0 if penalty == "l2" else l1_ratio
    return alpha * r, alpha * (1.0 - r)


# ------------------------------------------------------------ objective, gap
def _task_weights(tasks, task_weights):
    return np.ones(len(tasks)) if task_weights is None else np.asarray(
        task_weights, float)


def objective(tasks, coef, intercept, penalty, alpha, l1_ratio=1.0,
              task_weights=None):
    """``P(W, b)`` with ``coef`` of shape (T, d) and ``intercept`` (T,)."""
    omega = _task_weights(tasks, task_weights)
    lam, mu = split_alpha(penalty, alpha, l1_ratio)
    fit = 0.0
    for t, (Xt, yt, st) in enumerate(tasks):
        r = yt - Xt @ coef[t] - intercept[t]
        fit += omega[t] * 0.5 * np.sum(st * r * r) / st.sum()
    W = coef.T
    return fit + lam * norm(W, penalty) + 0.5 * mu * np.sum(W * W)


def null_objective(tasks, fit_intercept, task_weights=None):
    """``P(0, b*)``: the objective at ``W = 0`` with the best intercepts."""
    omega = _task_weights(tasks, task_weights)
    total = 0.0
    for t, (_, yt, st) in enumerate(tasks):
        r = yt - (np.average(yt, weights=st) if fit_intercept else 0.0)
        total += omega[t] * 0.5 * np.sum(st * r * r) / st.sum()
    return total


def dual_scaling(U, lam, mu, penalty):
    """``(c, h*(c U))``: per-task factors ``c`` (an array over the columns of
    ``U``) that make the dual point feasible.

    With a ridge part (``mu > 0``) no scaling is needed.  Otherwise ``c U``
    must lie in the dual-norm ball of radius ``lam``: one common factor for
    l21 and trace, whose balls couple the tasks; for l1 the ball is a box,
    a constraint per task, so each task gets its own (largest) factor.
    """
    T = U.shape[1]
    if mu > 0:
        return np.ones(T), np.sum(prox_norm(U, lam, penalty) ** 2) / (2 * mu)
    if penalty == "l1":
        top = np.abs(U).max(axis=0)
        return np.array([1.0 if m <= lam else lam / m for m in top]), 0.0
    size = dual_norm(U, penalty)
    return np.full(T, 1.0 if size <= lam else lam / size), 0.0


def duality_gap(tasks, coef, intercept, penalty, alpha, l1_ratio=1.0,
                fit_intercept=True, task_weights=None):
    """``(primal, dual)`` at ``(coef, intercept)``.

    The dual point is the weighted residual ``theta_i = v_i r_i``, centred per
    task when intercepts are fitted (so that it is feasible whatever the
    intercept), and scaled into the dual-norm ball when ``mu = 0`` (see
    :func:`dual_scaling`).
    """
    omega = _task_weights(tasks, task_weights)
    lam, mu = split_alpha(penalty, alpha, l1_ratio)
    primal = objective(tasks, coef, intercept, penalty, alpha, l1_ratio, omega)
    thetas, U = [], np.zeros((tasks[0][0].shape[1], len(tasks)))
    for t, (Xt, yt, st) in enumerate(tasks):
        v = omega[t] * st / st.sum()
        r = yt - Xt @ coef[t] - intercept[t]
        if fit_intercept:
            r = r - np.average(r, weights=st)
        thetas.append(v * r)
        U[:, t] = Xt.T @ thetas[-1]
    c, conjugate = dual_scaling(U, lam, mu, penalty)
    dual = -conjugate
    for t, (_, yt, st) in enumerate(tasks):
        v, theta = omega[t] * st / st.sum(), c[t] * thetas[t]
        positive = v > 0
        dual += theta @ yt - 0.5 * np.sum(theta[positive] ** 2 / v[positive])
    return primal, dual


# ------------------------------------------------------------ logistic loss
def logistic_objective(tasks, coef, intercept, penalty, alpha, l1_ratio=1.0):
    """``P(W, b)`` for the logistic loss, labels ``y_t`` in {-1, +1}:
    ``sum_t (1 / n_t) sum_i s_i log(1 + exp(-y_i z_i)) + h(W)``."""
    lam, mu = split_alpha(penalty, alpha, l1_ratio)
    fit = 0.0
    for t, (Xt, yt, st) in enumerate(tasks):
        z = Xt @ coef[t] + intercept[t]
        fit += np.sum(st * np.logaddexp(0.0, -yt * z)) / st.sum()
    W = coef.T
    return fit + lam * norm(W, penalty) + 0.5 * mu * np.sum(W * W)


def logistic_duality_gap(tasks, coef, intercept, penalty, alpha, l1_ratio=1.0,
                         fit_intercept=True):
    """``(primal, dual)`` for the logistic loss.

    With ``v_i = s_i / n_t`` the dual is ``D(theta) = sum_i v_i H(u_i) -
    h*(U)``, ``theta_i = v_i y_i u_i``, ``u_i`` in [0, 1], ``H`` the binary
    entropy (in nats) and ``U_{:, t} = sum_{i in t} theta_i x_i``.  The dual
    point takes ``u_i = sigmoid(-y_i z_i)``; with intercepts, ``sum_{i in t}
    theta_i = 0`` is enforced by multiplying the ``u`` of the heavier class by
    the ratio of the two class totals.
    """
    lam, mu = split_alpha(penalty, alpha, l1_ratio)
    primal = logistic_objective(tasks, coef, intercept, penalty, alpha, l1_ratio)
    us, U = [], np.zeros((tasks[0][0].shape[1], len(tasks)))
    for t, (Xt, yt, st) in enumerate(tasks):
        v = st / st.sum()
        u = 1.0 / (1.0 + np.exp(yt * (Xt @ coef[t] + intercept[t])))
        if fit_intercept:
            pos, neg = np.sum((v * u)[yt > 0]), np.sum((v * u)[yt < 0])
            u = np.where(yt > 0, u * min(1.0, neg / pos), u * min(1.0, pos / neg))
        us.append(u)
        U[:, t] = Xt.T @ (v * yt * u)
    c, conjugate = dual_scaling(U, lam, mu, penalty)
    dual = -conjugate
    for t, (_, _, st) in enumerate(tasks):
        u = c[t] * us[t]
        entropy = -(u * np.log(np.where(u > 0, u, 1.0))
                    + (1 - u) * np.log(np.where(u < 1, 1 - u, 1.0)))
        dual += np.sum(st * entropy) / st.sum()
    return primal, dual
