"""Truncated Newton (Newton-CG) for a twice-differentiable loss (logistic,
Huber, Poisson, and the squared loss where the direct ridge solve does not
serve) with a pure ridge penalty (``"l2"``, or ``l1_ratio = 0``).

The objective is smooth and strongly convex; its Hessian in ``(W, b)`` is
block diagonal over tasks,

.. math::

    \\nabla^2 P\\,[P_W, p_b] = \\big(X_c^\\top (h \\circ \\Delta z) + \\mu P_W,\\
    \\textstyle\\sum_{i \\in t} h_i \\Delta z_i\\big),
    \\qquad \\Delta z = X_c P_W + p_b,

with ``h`` the weighted second derivative of the loss, so a Hessian-vector
product costs one product with ``X`` and one with ``X^T`` (BLAS for a dense
shared design), for all tasks at once.  The Newton system is solved by
conjugate gradients run **per task** (each task has its own step sizes,
which is CG on each block, not on the stacked vector; a task's block is its
column, or its classes' columns for the multinomial loss, whose Hessian
couples them: ``Loss.newton_model`` and ``Loss.block_sum``), to a relative
residual ``min(0.5, sqrt(||g||))`` (inexact Newton, superlinear; for the
squared loss, whose Hessian is constant, ``_QUADRATIC_FORCING``); with at
most ``_DIRECT_MAX_FEATURES`` features and an elementwise loss each task's
Hessian block is formed and the Newton system solved exactly instead (a
loss coupling columns forms its own blocks, ``Loss.newton_step``, once
conjugate gradients cost more).  Each task's step is chosen on its own
directional derivatives only, as in :mod:`mtlinear._prox_newton` (the
objective is a sum over tasks and smooth, so ``P_t'(s) <= |P_t'(0)| / 2``
accepts the Newton step near the solution; for a loss of unbounded
curvature, with a certified decrease: :func:`accepts_step`,
:func:`backtrack_tasks`).  Stopping: the duality gap of
:mod:`mtlinear._datafit`.
"""
import numpy as np

__all__ = ["newton_cg", "accepts_step", "backtrack", "backtrack_tasks",
           "refuse_rise", "solve_blocks"]

_MAX_CG = 200
_QUADRATIC_FORCING = 1e-3  # relative CG residual of a step, squared loss
# up to this many features Newton systems are solved exactly on each task's
# Hessian block (n d^2 / 2 flops, about d / 4 conjugate-gradient iterations)
_DIRECT_MAX_FEATURES = 32
_MAX_BACKTRACK = 30
# weight a of the curvature's diagonal D in the conjugate gradients'
# preconditioner mu I + a D, liblinear's 0.01; see _conjugate_gradients.
# It is built for a task still unsolved after _PCG_AFTER plain iterations:
# where plain CG is quick (Newsgroup: 3.5 products a step) the diagonal's
# pass cost more than it saved (10%)
_PCG_MIX = 0.01
_PCG_AFTER = 25


def newton_cg(datafit, penalty, W, b, max_iter, tol_abs, coef_tol=0.0,
              callback=None, z=None):
    """Minimize ``datafit(W, b) + mu/2 ||W||^2``.

    Same parameters and returns as :func:`mtlinear._prox_newton.prox_newton`
    (``max_iter`` counts Newton steps), and ``coef_tol``: the solve also
    waits for a Newton step that moves no coefficient by more than
    ``coef_tol**0.75`` times the largest, after which the error of
    (super)quadratic convergence is below ``coef_tol`` (scikit-learn's rule
    is on coefficient changes; the gap bounds the objective, not the
    coefficients; on ill-conditioned designs the coefficients come out
    ten times closer to the optimum than LogisticRegression's at its
    defaults, or more: ``tests/test_multiclass.py``).  ``z``: the linear
    predictor of the start, if at hand.
    """
    design, loss = datafit.design, datafit.loss
    y, v, mu = datafit.y, datafit.v, penalty.mu
    intercept = b is not None
    T = design.n_tasks
    W = np.array(W, dtype=np.float64)
    b = np.array(b, dtype=np.float64) if intercept else None
    no_intercept = np.zeros(T)

    def per_task(A, B):  # per-task inner products of (W-part, b-part) pairs
        out = np.einsum("jt,jt->t", A[0], B[0])
        return loss.block_sum(out + A[1] * B[1] if intercept else out)

    n_iter = 0
    # exact steps on each task's Hessian block: an elementwise loss's (few
    # features) from the start; a loss coupling columns forms its own, once
    # conjugate gradients have needed more Hessian products than that costs
    block_cost = None if loss.elementwise else loss.newton_step_cost(design)
    exact = loss.elementwise
    settled = coef_tol <= 0
    # z is carried along the steps (fresh: it is X W + b as computed)
    fresh = True
    z = datafit.linear_predictor(W, b) if z is None else np.array(z)
    # the loss's derivatives at z, when the last line search computed them
    # at the step it took (the next Newton model's)
    known = None
    while True:
        hessian = G = None
        # the gap is only evaluated once the coefficient rule holds (the
        # solve stops on both); its product with X^T gives the next
        # gradient too
        if settled or n_iter >= max_iter:
            hessian = _NewtonModel(design, loss, z, y, v, known)
            primal, gap, G = datafit.gap_and_data_gradient(
                W, b, penalty, z, hessian.gradient)
            if (gap <= tol_abs or n_iter >= max_iter) and not fresh:
                # the certificate is of W itself: against the same dual point
                dual = primal - gap
                primal, z = datafit.fresh_primal(W, b, penalty)
                gap = primal - dual
                fresh, known, hessian, G = True, None, None, None
            if callback is not None:
                callback(n_iter, primal, gap)
            if gap <= tol_abs or n_iter >= max_iter:
                break
        if hessian is None:
            hessian = _NewtonModel(design, loss, z, y, v, known)
        known = None
        D = hessian.gradient
        if G is None:
            G = design.rmatmat(D)
        n_iter += 1
        g = (G + mu * W, design.task_sum(D) if intercept else no_intercept)
        s = (hessian.solve(g, mu, intercept)
             if exact and design.n_features <= _DIRECT_MAX_FEATURES else None)
        if s is not None:
            dz = design.matmat(s[0]) + design.task_broadcast(s[1])
        else:
            # capped at the blocks' cost until an exact step is due (one
            # that failed, a singular block, leaves them uncapped)
            s, dz, converged = _conjugate_gradients(
                hessian, g, mu, intercept, per_task, design, z,
                _MAX_CG if block_cost is None or exact else block_cost,
                loss.quadratic)
            # the truncated step serves; the next ones are exact
            exact = exact or not converged

        trials = TrialDerivatives(loss, y, v)

        def slopes(t):  # each task's P_t'(t_t), per column
            moved = z + design.task_broadcast(t) * dz
            derivative = (trials.derivative(t, moved) if loss.elementwise
                          else loss.derivative(moved, y, v))
            return loss.block_sum(
                design.task_sum(dz * derivative)
                + mu * np.einsum("jt,jt->t", W + t * s[0], s[0]))

        # the objective is a sum over tasks (a ridge, no coupling): each
        # task takes its own step, so one far from its solution (nearly
        # separable) does not shorten every other task's; P_t'(0) = g_t . s_t
        t = backtrack_tasks(slopes, per_task(g, s), loss.bounded_curvature,
                            _MAX_BACKTRACK)
        if not np.any(t):  # no descent left at this precision
            z = datafit.fresh_predictor(W, b)
            primal, gap, _, _ = datafit.gap_and_gradient(W, b, penalty, z)
            if callback is not None:
                callback(n_iter, primal, gap)
            break
        W += t * s[0]
        if intercept:
            b += t * s[1]
        known, trials = trials.at(t), None
        # near the solution Newton converges (super)quadratically: after a
        # step of relative size coef_tol**0.75 the error is below coef_tol
        settled = settled or (np.abs(t * s[0]).max(initial=0.0) <= np.power(
            coef_tol, 0.75) * np.abs(W).max(initial=0.0))
        # a gap expected to be final is computed at a fresh z
        fresh = settled and coef_tol > 0
        if fresh:
            z, known = datafit.fresh_predictor(W, b), None
        else:
            z += design.task_broadcast(t) * dz
    return W, b, gap, n_iter


def _conjugate_gradients(hessian, g, mu, intercept, per_task, design, z,
                         max_products=_MAX_CG, quadratic=False):
    r"""Conjugate gradients per task on ``H s = -g`` to a relative residual
    ``min(0.5, sqrt(||g||))``, in at most ``max_products`` Hessian
    products; returns ``s``, ``X_c s_W + s_b`` (tracked along) and whether
    the residual was reached (the products ran out: a truncated, still
    descending step).  A design that runs them compiled (``curvature_cg``, a
    sparse stacked one) does, task by task; otherwise all tasks advance
    together through ``hessian``'s products.

    Preconditioned (an elementwise loss) by the diagonal

    .. math::

        M_t = \mu I + a\, \mathrm{diag}\big(D_t,\ \textstyle\sum_{i \in t}
        h_i\big), \qquad D_{tj} = \sum_{i \in t} h_i (x_{ij} - m_{tj})^2,

    the diagonal of the data part of the task's Hessian block (the
    intercept last), ``a = _PCG_MIX``: in liblinear's scaling (ridge
    ``I``, Hessian ``I + C X^T D X``) this is its ``(1 - a) I + a
    diag(H)`` (Hsia, Chiang and Lin, ACML 2018; liblinear 2.20 on, ``a =
    0.01``), which keeps a wide task's ridge cluster (``mu`` on the null
    space of ``X_t``, one iteration for plain CG) nearly intact while
    columns of very different scales no longer set the iteration count
    (columns over four decades: 60,000 Hessian products to 250).  Each
    iteration takes ``z = M^{-1} r`` and ``beta = r_+^T z_+ / r^T z``; the
    stopping rule stays on the true residual ``||r_t|| <= forcing[t]``, so
    the inexact-Newton forcing and the duality-gap stopping are unchanged.
    Plain CG is often done in a few products (text data: 3.5 a step), fewer
    than the diagonal's pass is worth: the preconditioner is built only
    after ``_PCG_AFTER`` plain iterations, and CG restarts from its
    iterate (it keeps the progress, not the search directions)."""
    T = g[1].size
    g_norm = np.sqrt(per_task(g, g))
    # a quadratic loss's Hessian does not change with the step: one long
    # CG run keeps its Krylov space, where restarting it every Newton step
    # (the forcing of a changing Hessian) would not
    forcing = (_QUADRATIC_FORCING if quadratic else
               np.minimum(0.5, np.sqrt(np.sqrt(g_norm.sum())))) * g_norm
    if hessian.h is not None:  # elementwise: the design may run them
        compiled = design.curvature_cg(hessian.h, g, mu, intercept, forcing,
                                       _MAX_CG, _PCG_MIX, _PCG_AFTER)
        if compiled is not None:
            return (*compiled, True)
    no_intercept = np.zeros(T)
    s = (np.zeros_like(g[0]), np.zeros(T))
    dz = np.zeros_like(z)
    r = (-g[0], -g[1])
    rr = per_task(r, r)
    M = None  # plain CG until _PCG_AFTER

    def precondition(r):
        return r if M is None else (r[0] / M[0], r[1] / M[1])

    ru, d = rr, r
    for k in range(max_products):
        if np.all(np.sqrt(rr) <= forcing):
            break
        if k == _PCG_AFTER:
            M = hessian.preconditioner(mu, intercept, _PCG_MIX)
            if M is not None:  # slow: restart preconditioned from the iterate
                d = precondition(r)
                ru = per_task(r, d)
        Xd, HdW, Hdb = hessian(d[0], d[1])
        Hd = (HdW + mu * d[0], Hdb if intercept else no_intercept)
        dHd = per_task(d, Hd)
        step = np.where(dHd > 0, ru / np.where(dHd > 0, dHd, 1.0), 0.0)
        s = (s[0] + step * d[0], s[1] + step * d[1])
        dz += design.task_broadcast(step) * Xd
        r = (r[0] - step * Hd[0], r[1] - step * Hd[1])
        rr = per_task(r, r)
        u = precondition(r)
        ru_new = per_task(r, u)
        beta = np.where(ru > 0, ru_new / np.where(ru > 0, ru, 1.0), 0.0)
        d = (u[0] + beta * d[0], u[1] + beta * d[1])
        ru = ru_new
    return s, dz, bool(np.all(np.sqrt(rr) <= forcing))


class _NewtonModel:
    """The Newton model at ``z``: ``gradient`` (``F'(z)``), ``h`` (the
    curvature of an elementwise loss, else ``None``) and, called on a
    direction ``(P, p_b)``, ``(dz, X_c^T H dz, task sums of H dz)`` for
    ``dz = X_c P + p_b`` and the curvature ``H`` (``h`` elementwise, or the
    action of a loss's ``newton_model`` coupling a sample's columns);
    ``derivatives``: an elementwise loss's ``(F'(z), h)``, if at hand."""

    def __init__(self, design, loss, z, y, v, derivatives=None):
        self.design, self.loss, self.point = design, loss, (z, y, v)
        if loss.elementwise:
            self.gradient, self.h = (loss.derivatives(z, y, v)
                                     if derivatives is None else derivatives)
            self.curvature = lambda dz: self.h * dz
        else:
            self.h = None
            self.gradient, self.curvature = loss.newton_model(z, y, v)

    def preconditioner(self, mu, intercept, mix):
        """The diagonal preconditioner ``(M_W (d, T), M_b (T,))`` of
        :func:`_conjugate_gradients`, ``mu + mix D`` with ``D`` the
        diagonal of the data part of each task's Hessian block (see
        there), or ``None`` (plain CG): ``mix = 0``, or a loss that couples
        columns (the multinomial's blocks are left unpreconditioned)."""
        if mix <= 0.0 or self.h is None:
            return None
        design, h = self.design, self.h
        D = design.curvature_diagonal(h)
        MW = mu + mix * D
        Mb = mu + mix * design.task_sum(h) if intercept else np.ones(D.shape[1])
        # a zero entry (mu = 0, an empty column) has a zero residual too
        return (np.where(MW > 0, MW, 1.0), np.where(Mb > 0, Mb, 1.0))

    def solve(self, g, mu, intercept):
        """The exact Newton step ``-H^-1 g`` from each task's Hessian block
        (``d`` or ``d + 1`` square, the intercept last; a loss coupling
        columns forms its own, ``Loss.newton_step``), or ``None`` where a
        block is singular."""
        if self.h is None:
            return self.loss.newton_step(self.design, *self.point, g, mu,
                                         intercept)
        design, h = self.design, self.h
        d, T = g[0].shape
        blocks = design.curvature_blocks(h)
        if blocks is None:
            return None
        blocks[:, np.arange(d), np.arange(d)] += mu
        rhs = -g[0].T
        if intercept:
            cross = design.rmatmat(h).T  # X_c^T h per task, (T, d)
            full = np.empty((T, d + 1, d + 1))
            full[:, :d, :d] = blocks
            full[:, :d, d] = full[:, d, :d] = cross
            full[:, d, d] = design.task_sum(h)
            blocks, rhs = full, np.column_stack([rhs, -g[1]])
        step = solve_blocks(blocks, rhs)
        if step is None:
            return None
        return (np.ascontiguousarray(step[:, :d].T),
                step[:, d].copy() if intercept else np.zeros(T))

    def __call__(self, P, p_b):
        design = self.design
        dz = design.matmat(P) + design.task_broadcast(p_b)
        hdz = self.curvature(dz)
        return dz, design.rmatmat(hdz), design.task_sum(hdz)


def solve_blocks(blocks, rhs):
    """``blocks[t]^-1 rhs[t]`` for every task ``t`` (one batched LAPACK
    call), or ``None`` where a block is singular."""
    try:
        step = np.linalg.solve(blocks, rhs[:, :, None])[:, :, 0]
    except np.linalg.LinAlgError:
        return None
    return step if np.all(np.isfinite(step)) else None


class TrialDerivatives:
    """A line search's loss derivatives at its trial points, the last
    trial's kept: where the search takes that step they are the next Newton
    model's (its ``loss.derivatives``, one pass with the slope's
    derivative).  A trial's are released before the next are computed."""

    def __init__(self, loss, y, v):
        self.loss, self.y, self.v = loss, y, v
        self.step = self.pair = None

    def derivative(self, step, z):
        """``F'(z)`` at the trial ``step`` (whose linear predictor is
        ``z``), the curvature kept along."""
        self.step = self.pair = None
        self.pair = self.loss.derivatives(z, self.y, self.v)
        self.step = np.copy(step)
        return self.pair[0]

    def at(self, step):
        """``(F', curvature)`` of the last trial if it was at ``step``, else
        ``None``."""
        if self.step is not None and np.array_equal(self.step, step):
            return self.pair
        return None


def backtrack(slope, start, bounded, max_halvings):
    """The first step of ``1, 1/2, 1/4, ...`` (at most ``max_halvings``
    halvings) that :func:`accepts_step` takes, or 0 (``start = P'(0) <
    0``): :func:`backtrack_tasks` for one task."""
    steps = backtrack_tasks(lambda t: np.array([slope(float(t[0]))]),
                            np.array([start], dtype=np.float64), bounded,
                            max_halvings)
    return float(steps[0])


def refuse_rise(t, slope, objective, max_halvings):
    """The step ``t`` of a line search, halved while it raises the
    objective by more than a millionth of its size: at most
    ``max_halvings`` times, then 0.

    ``slope(s)`` is the objective's left derivative along the line (the line
    search's own, cached: asked again at ``t`` it costs nothing) and
    ``objective(s)`` its value there as ``(data fit, penalty)``.  The line
    searches accept on slopes (:func:`accepts_step`), whose trapezoid rule a
    derivative that saturates (logistic, softmax) breaks on a very long step:
    the slope climbs from ``P'(0)`` to a value below ``|P'(0)| / 2`` and
    stays there while ``P`` rises.  Where ``slope(t) <= 0`` the objective,
    convex along the line, fell all the way to ``t`` and no value is
    computed; otherwise values refuse only a clear rise, far above the
    rounding of their difference.
    """
    if t == 0.0 or slope(t) <= 0.0:
        return t
    data_0, penalty_0 = objective(0.0)
    rise = 1e-6 * (abs(data_0) + abs(penalty_0))
    for _ in range(max_halvings):
        data, penalty = objective(t)
        if (data - data_0) + (penalty - penalty_0) <= rise:
            return t
        t *= 0.5
    return 0.0


def backtrack_tasks(slopes, start, bounded, max_halvings):
    """:func:`backtrack` for every task at once: ``slopes(t)`` gives each
    task's ``P_t'(t_t)`` for the steps ``t`` (one per task, as ``start``,
    the tasks' ``P_t'(0)``); each task halves its own step until
    :func:`accepts_step`'s test passes, and gets 0 where ``P_t'(0) >= 0``
    or no step passed."""
    t = np.where(start < 0, 1.0, 0.0)
    pending = start < 0
    for _ in range(max_halvings):
        if not pending.any():
            break
        passed = _passes(slopes(t), lambda: slopes(0.5 * t), start, bounded)
        pending &= ~passed
        t = np.where(pending, 0.5 * t, t)
    return np.where(pending, 0.0, t)


def _passes(end, half, start, bounded):
    """:func:`accepts_step`'s test, entrywise: ``end = P'(s)``, and
    ``half()`` gives ``P'(s / 2)``, asked for only where the certificate of
    a loss without a curvature bound is needed."""
    end = np.asarray(end)
    passed = end <= -0.5 * start
    if bounded:
        return passed
    uncertain = passed & ~(end <= 0.0)
    if np.any(uncertain):
        passed = passed & ((end <= 0.0) | (half() + end <= 0.25 * start))
    return passed


def accepts_step(slope, start, s, bounded):
    """Whether the Newton line searches take the step ``s`` (``slope(u)``:
    the objective's left derivative ``P'(u)`` along the line, ``start =
    P'(0) < 0``).

    Always ``P'(s) <= |P'(0)| / 2``, where the trapezoid rule predicts a
    decrease (see :func:`mtlinear._prox_newton._line_search`).  That rule is
    exact for a quadratic and an upper bound where ``P'`` is convex; with a
    curvature bound the loss stays close enough to its model for it to hold
    in practice.  Without one (Poisson: ``P'`` grows
    like ``exp``) a step with ``P'(s) > 0`` must also pass a certificate:
    ``P'`` is non-decreasing, so the right Riemann sum over two halves bounds
    the change, ``P(s) - P(0) <= s (P'(s/2) + P'(s)) / 2``, and the step is
    taken when that bound is at most ``s P'(0) / 8`` (a decrease).  Near the
    solution ``P'(s/2)`` is close to ``P'(0) / 2`` and the full Newton step
    still passes; no difference of objective values is involved.
    """
    return bool(_passes(slope(s), lambda: slope(0.5 * s), start, bounded))
