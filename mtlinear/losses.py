"""Per-sample losses: value, derivatives, conjugate, dual feasibility.

The data-fit term is ``F(z) = sum_i v_i loss(y_i, z_i)`` where the weight
``v_i = omega_t s_i / n_t`` folds the task weight, the sample weight and the
per-task mean together (``n_t = sum of s_i over task t``).  Arrays may have any
shape (``(n, T)`` in the shared layout, ``(n,)`` for stacked tasks); every
method works elementwise and sums.

For the duality gap a loss gives the dual objective's loss part,

.. math:: -F^*(-\\theta) = -\\sum_i f_i^*(-\\theta_i),
          \\qquad f_i(z) = v_i\\,\\ell(y_i, z),

evaluated at the dual point ``theta = -F'(z)`` (see :mod:`mtlinear._datafit`),
and, with an intercept variable, makes ``theta`` sum to zero in each task
(:meth:`Loss.balance`).

Capabilities: ``quadratic`` (the squared loss: intercepts by centring,
sufficient statistics, coordinate descent), ``twice_differentiable``
(proximal Newton applies), ``curvature`` (a bound on ``loss''``, ``inf``
when there is none, as for the Poisson loss).
A new loss is one subclass registered with :func:`register_loss`.
"""
import numpy as np
from scipy.special import expit, xlogy

__all__ = ["Loss", "SquaredLoss", "LogisticLoss", "HuberLoss", "PoissonLoss",
           "TaskwiseLoss", "LOSSES", "register_loss", "make_loss"]


class Loss:
    """Base class.  Subclasses define ``value``, ``derivative``,
    ``second_derivative``, ``dual_value`` and ``null_intercept``."""

    name = None
    quadratic = False
    twice_differentiable = True
    elementwise = True    # a sum over the arrays' entries (diagonal Hessian)
    classification = False
    curvature = 1.0       # bound on loss''(z); inf: unbounded
    curvature_factor = 1.0  # FISTA's curvature test (1: exact for a quadratic)
    step_shrink = 0.9     # FISTA's per-iteration decrease of L
    options = {}          # estimator parameters the loss takes

    def balance(self, theta, y, v, task_sum, task_broadcast):
        """Make ``sum_i theta_i = 0`` within each task (the intercept's dual
        constraint) while keeping ``theta`` in the conjugate's domain.

        Every loss here has a domain that is an interval containing 0 for
        each ``theta_i``: shrinking the heavier sign towards 0 stays inside.
        ``theta`` may be overwritten (the data fit passes its own array).
        """
        pos = np.maximum(theta, 0.0)
        neg = np.subtract(theta, pos, out=theta)
        p_sum, n_sum = task_sum(pos), -task_sum(neg)
        with np.errstate(divide="ignore", invalid="ignore"):
            p_scale = np.where(p_sum > n_sum, n_sum / p_sum, 1.0)
            n_scale = np.where(n_sum > p_sum, p_sum / n_sum, 1.0)
        # in place: sample-sized temporaries count on a tall stacked problem
        pos *= task_broadcast(p_scale)
        neg *= task_broadcast(n_scale)
        pos += neg
        return pos

    def common_factor(self, c):
        """Dual factors, one per task (column), that keep the dual point in
        the conjugate's domain: any factors for an elementwise loss."""
        return c

    def block_sum(self, a):
        """Per-column values summed over the columns the loss couples (none
        for an elementwise loss: ``a`` itself); Newton-CG's inner products
        are per block."""
        return a

    def newton_step_cost(self, design):
        """For a loss that couples columns (not elementwise): what its
        :meth:`newton_step` costs, in Hessian products of conjugate
        gradients, or ``None`` where it forms no Hessian blocks."""
        return None

    def newton_step(self, design, z, y, v, g, mu, intercept):
        """The exact Newton step ``-H^-1 g`` at ``z`` of a loss that couples
        columns (``g = (g_W, g_b)``, ``mu`` the ridge), from each task's
        Hessian block, or ``None`` (a singular block); see
        :meth:`newton_step_cost`.  An elementwise loss's blocks are formed
        by Newton-CG itself, from :meth:`derivatives`."""
        return None

    coupled_columns = 1   # columns of W one task's Hessian block couples

    @property
    def hessian_blocks(self):
        """Whether :meth:`newton_blocks` forms Newton's exact Hessian blocks
        (proximal Newton with ADMM steps): an elementwise loss does, from
        :meth:`derivatives`; a loss that couples columns, where it says so."""
        return self.elementwise and self.twice_differentiable

    def newton_blocks(self, design, z, y, v):
        """The data fit's Newton model at ``z`` by tasks: ``(D, A, a,
        S_inv)``.

        ``D = F'(z)`` (sample shape); per task, for its ``K =
        coupled_columns`` columns of ``W``, the Hessian in the weights
        ``A`` (T, d K, d K) (index ``j K + k``: feature ``j``, column
        ``k``), the cross terms of weights and intercepts ``a`` (T, d K, K),
        both of the centred design, and ``S_inv`` (T, K, K), the
        intercepts' block ``S`` inverted on the directions the model's
        gradients span (a pseudo-inverse: ``S`` may be singular where the
        loss ignores a direction); ``None`` where the design does not form
        them.  An elementwise loss (``K = 1``): ``A_t = X_c^T diag(h_t)
        X_c``, ``a_t = X_c^T h_t``, ``S_t = sum h_t`` with ``h = F''``."""
        D, h = self.derivatives(z, y, v)
        A = design.curvature_blocks(h)
        if A is None:
            return None
        s = design.task_sum(h)
        s_inv = np.where(s > 0, 1.0 / np.where(s > 0, s, 1.0), 0.0)
        return (D, A, design.rmatmat(h).T[:, :, None],
                np.reshape(s_inv, (-1, 1, 1)))

    def derivatives(self, z, y, v):
        """``(F'(z), H(z))`` elementwise: the derivative and the curvature of
        Newton models (``F''`` where it is positive)."""
        return self.derivative(z, y, v), self.second_derivative(z, y, v)

    def segment_curvature(self, z1, z2, y, v):
        """A bound on ``F''`` elementwise over the segments ``[z1_i, z2_i]``:
        ``v * curvature`` for a loss with a curvature bound."""
        return np.broadcast_to(v * self.curvature, np.shape(z1))

    @property
    def bounded_curvature(self):
        """Whether ``curvature`` bounds ``loss''`` (a global Lipschitz
        constant of ``F'`` exists)."""
        return bool(np.isfinite(self.curvature))

    def inverse_link(self, z):
        """The prediction at the linear predictor ``z`` (regression losses):
        ``z`` itself, or the mean ``exp(z)`` of the Poisson loss."""
        return z

    def check_targets(self, targets, fit_intercept):
        """``ValueError`` for targets outside the loss's domain.

        ``targets``: ``(task label, y_t)`` pairs, one per task (``NaN``
        marks a missing target and is not checked here).  Every value is
        valid for the squared and Huber losses.
        """


class SquaredLoss(Loss):
    """``loss(y, z) = (y - z)**2 / 2``.

    ``f_i^*(u) = u y_i + u^2 / (2 v_i)``, hence
    ``-F^*(-theta) = sum_i theta_i y_i - theta_i^2 / (2 v_i)`` (rows with
    ``v_i = 0`` have ``theta_i = 0`` and contribute nothing).
    """

    name = "squared"
    quadratic = True

    def value(self, z, y, v):
        r = y - z
        return 0.5 * float(np.vdot(v * r, r))

    def derivative(self, z, y, v):
        """``dF/dz``, elementwise."""
        return v * (z - y)

    def second_derivative(self, z, y, v):
        return np.broadcast_to(v, np.shape(z))

    def dual_value(self, theta, y, v):
        safe_v = np.where(v > 0, v, 1.0)
        return float(np.vdot(theta, y) - 0.5 * np.vdot(theta, theta / safe_v))

    def null_intercept(self, y, v, task_sum, task_broadcast):
        total = task_sum(v)
        return task_sum(v * y) / np.where(total > 0, total, 1.0)


class HuberLoss(Loss):
    """``loss(y, z) = r^2 / 2`` if ``|r| <= delta`` else ``delta |r| - delta^2 / 2``,
    ``r = y - z``: squared near the fit, absolute (robust to outliers) beyond.

    ``f_i^*(u) = u y_i + u^2 / (2 v_i)`` on ``|u| <= v_i delta`` (``+inf``
    outside), so the dual is the squared loss's on that box; the dual point
    ``theta_i = v_i clip(r_i, -delta, delta)`` lies in it.

    Parameters
    ----------
    delta : float > 0
        Residual size where the loss turns from quadratic to linear, in the
        units of ``y``.
    """

    name = "huber"
    options = {"delta": 1.0}
    curvature_factor = 0.5  # not quadratic: the test that holds for any convex F

    def __init__(self, delta=1.0):
        if isinstance(delta, bool) or not isinstance(delta, (int, float, np.number)) \
                or not np.isfinite(delta) or delta <= 0:
            raise ValueError(f"delta must be a finite float > 0 (the residual "
                             f"size where the Huber loss turns linear); got "
                             f"{delta!r}.")
        self.delta = float(delta)

    def value(self, z, y, v):
        a = np.abs(y - z)
        inner = np.minimum(a, self.delta)
        return float(np.vdot(v, inner * (a - 0.5 * inner)))

    def derivative(self, z, y, v):
        return -v * np.clip(y - z, -self.delta, self.delta)

    def second_derivative(self, z, y, v):
        return v * (np.abs(y - z) <= self.delta)

    def derivatives(self, z, y, v):
        """The curvature of Newton models is floored at ``NEWTON_FLOOR v``:
        ``F''`` vanishes on the residuals beyond ``delta``, and a task whose
        residuals are mostly there gives a flat, unbounded model (steps of
        thousands that the line search cuts to nothing)."""
        inside = np.abs(y - z) <= self.delta
        return (-v * np.clip(y - z, -self.delta, self.delta),
                v * np.where(inside, 1.0, self.NEWTON_FLOOR))

    NEWTON_FLOOR = 0.01

    def dual_value(self, theta, y, v):
        safe_v = np.where(v > 0, v, 1.0)
        # clip rounding out of the box |theta| <= v delta
        theta = np.clip(theta, -v * self.delta, v * self.delta)
        return float(np.vdot(theta, y) - 0.5 * np.vdot(theta, theta / safe_v))

    def null_intercept(self, y, v, task_sum, task_broadcast):
        """Per task, the weighted Huber location of ``y``: the root of the
        decreasing ``m -> sum_i v_i clip(y_i - m, -delta, delta)``, bracketed
        around the weighted mean then bisected."""
        total = task_sum(v)
        safe = np.where(total > 0, total, 1.0)

        def slope(m):  # the derivative's sum, decreasing in m
            return task_sum(v * np.clip(y - task_broadcast(m), -self.delta,
                                        self.delta))

        mean = task_sum(v * y) / safe
        width = np.full_like(mean, self.delta)
        lo, hi = mean - width, mean + width
        for _ in range(64):  # widen until the root is inside
            low_out, high_out = slope(lo) < 0, slope(hi) > 0
            if not (low_out.any() or high_out.any()):
                break
            width *= 2.0
            lo = np.where(low_out, mean - width, lo)
            hi = np.where(high_out, mean + width, hi)
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            above = slope(mid) > 0
            lo, hi = np.where(above, mid, lo), np.where(above, hi, mid)
            if np.all(hi - lo <= 4 * np.finfo(float).eps * np.maximum(
                    np.abs(mid), self.delta)):
                break
        return np.where(total > 0, 0.5 * (lo + hi), 0.0)


def _negative_margin(z, y):
    """``-y z``, a new array."""
    u = np.multiply(y, z)
    return np.negative(u, out=u)


def _times(a, b):
    """``a * b``, in place in ``a`` when that is the product's shape."""
    shape = np.shape(b)
    if shape == a.shape or a.shape == np.broadcast_shapes(a.shape, shape):
        return np.multiply(a, b, out=a)
    return a * b


class LogisticLoss(Loss):
    """``loss(y, z) = log(1 + exp(-y z))`` with ``y`` in ``{-1, +1}``.

    With ``u = -v_i y_i s``, ``f_i^*(u) = v_i (s log s + (1 - s) log(1 - s))``
    for ``s`` in ``[0, 1]`` (``+inf`` otherwise).  The dual point
    ``theta_i = v_i y_i sigmoid(-y_i z_i)`` gives ``s_i = sigmoid(-y_i z_i)``.
    """

    name = "logistic"
    classification = True
    curvature = 0.25
    curvature_factor = 0.5  # the global bound is loose: test half of it
    step_shrink = 0.8

    # in place where the shapes allow: Newton solvers hold several
    # sample-sized arrays already, and these passes set their peak memory
    def value(self, z, y, v):
        u = _negative_margin(z, y)
        return float(np.vdot(v, np.logaddexp(0.0, u, out=u)))

    def derivative(self, z, y, v):
        u = _negative_margin(z, y)
        D = _times(_times(expit(u, out=u), y), v)
        return np.negative(D, out=D)

    def second_derivative(self, z, y, v):
        u = _negative_margin(z, y)
        p = expit(u, out=u)
        return _times(_times(p, 1.0 - p), v)

    def derivatives(self, z, y, v):
        u = _negative_margin(z, y)
        p = expit(u, out=u)
        D = _times(p * y, v)
        np.negative(D, out=D)
        return D, _times(_times(p, 1.0 - p), v)

    def dual_value(self, theta, y, v):
        # in place, as few sample-sized temporaries as possible
        s = theta * y
        np.divide(s, v, out=s, where=v > 0)
        np.clip(s, 0.0, 1.0, out=s)
        entropy = xlogy(s, s)
        np.subtract(1.0, s, out=s)
        entropy += xlogy(s, s, out=s)
        return -float(np.vdot(v, entropy))

    def null_intercept(self, y, v, task_sum, task_broadcast):
        """Best constant per task: the weighted log-odds of the positive class."""
        total = task_sum(v)
        p = task_sum(v * (y > 0)) / np.where(total > 0, total, 1.0)
        with np.errstate(divide="ignore"):
            return np.where(total > 0, np.log(p) - np.log1p(-p), 0.0)


class PoissonLoss(Loss):
    """Poisson regression (log link): ``loss(y, z) = exp(z) - y z + y log y - y``
    for counts or rates ``y >= 0``, the mean being ``exp(z)``.

    The loss is half the Poisson unit deviance, the negative log-likelihood
    ``exp(z) - y z`` (up to ``log y!``) shifted by its minimum over ``z``
    (reached at ``z = log y``), so that ``F >= 0`` as for the other losses
    and ``F`` at ``W = 0`` (the scale of ``tol``) is half the mean deviance
    of the best constant model.  The shift changes no solution.

    ``F'(z) = v (exp(z) - y)`` and ``F''(z) = v exp(z)``, unbounded
    (``curvature = inf``): FISTA's step starts from the curvature at the
    null model and doubles without a cap, and the Newton line searches
    accept a step on a certified decrease (see :mod:`mtlinear._datafit` and
    :mod:`mtlinear._prox_newton`).

    Conjugate: with ``a = u + v_i y_i``, ``f_i^*(u) = a log(a / v_i) - a -
    v_i (y_i log y_i - y_i)`` for ``a >= 0`` (``+inf`` otherwise), so that

    .. math:: -F^*(-\\theta) = \\sum_i v_i (y_i \\log y_i - y_i)
              - a_i \\log(a_i / v_i) + a_i, \\qquad a_i = v_i y_i - \\theta_i,

    on ``theta_i <= v_i y_i``, an interval containing 0 (the default
    :meth:`Loss.balance` applies).  The dual point ``theta_i = v_i (y_i -
    exp(z_i))`` gives ``a_i = v_i exp(z_i) > 0``, and ``c theta`` stays in
    the domain for ``c`` in ``[0, 1]`` (``y_i >= 0``).
    """

    name = "poisson"
    curvature = np.inf
    curvature_factor = 0.5  # the test that holds for any convex F

    @staticmethod
    def _exp(z):
        with np.errstate(over="ignore"):  # inf: a trial step rejected
            return np.exp(z)

    def value(self, z, y, v):
        return float(np.vdot(v, self._exp(z) - y * z + xlogy(y, y) - y))

    def derivative(self, z, y, v):
        return v * (self._exp(z) - y)

    def second_derivative(self, z, y, v):
        return v * self._exp(z)

    def derivatives(self, z, y, v):
        mu = self._exp(z)
        return v * (mu - y), v * mu

    def segment_curvature(self, z1, z2, y, v):
        """``F''`` is increasing in ``z``: its value at the larger end."""
        return v * self._exp(np.maximum(z1, z2))

    def dual_value(self, theta, y, v):
        safe_v = np.where(v > 0, v, 1.0)
        a = np.maximum(v * y - theta, 0.0)  # clip rounding into the domain
        return float(np.vdot(v, xlogy(y, y) - y)
                     - np.sum(xlogy(a, a / safe_v) - a))

    def inverse_link(self, z):
        return self._exp(z)

    def null_intercept(self, y, v, task_sum, task_broadcast):
        """Per task, the log of the weighted mean of ``y``: the root of
        ``sum_i v_i (exp(b) - y_i)``.  A task whose weighted targets are all
        zero has none (the loss decreases as ``b`` goes to ``-inf``)."""
        total = task_sum(v)
        counts = task_sum(v * y)
        empty = (total > 0) & (counts <= 0)
        if np.any(empty):
            raise ValueError(
                f"loss='poisson' with an intercept needs a positive target in "
                f"every task; the task(s) at position(s) "
                f"{np.flatnonzero(empty)[:10].tolist()} (in the order of the "
                "tasks) have only zero targets on the samples of positive "
                "weight, whose best intercept is -infinity. Drop such tasks "
                "or fit with fit_intercept=False.")
        safe = np.where(total > 0, total, 1.0)
        with np.errstate(divide="ignore"):
            return np.where(total > 0, np.log(np.where(total > 0, counts, 1.0)
                                              / safe), 0.0)

    def check_targets(self, targets, fit_intercept):
        """Targets must be non-negative; with an intercept, each task needs a
        positive one (see :meth:`null_intercept`)."""
        for label, y in targets:
            y = np.asarray(y, dtype=np.float64)
            y = y[~np.isnan(y)]
            if np.any(y < 0):
                raise ValueError(
                    f"loss='poisson' needs non-negative targets (counts or "
                    f"rates); task {label!r} has {int(np.sum(y < 0))} negative "
                    f"value(s), e.g. {float(y[y < 0][0]):g}.")
            if fit_intercept and y.size and not np.any(y > 0):
                raise ValueError(
                    f"loss='poisson' with an intercept needs a positive target "
                    f"in every task; task {label!r} has only zeros, whose best "
                    "intercept is -infinity (a predicted mean of 0). Drop the "
                    "task or fit with fit_intercept=False.")


class TaskwiseLoss(Loss):
    """A loss per task: ``losses[k]`` on the samples where ``which == k``.

    ``F(z) = sum_k sum_{i: which_i = k} v_i loss_k(y_i, z_i)`` is separable
    over samples, so its derivatives, its conjugate (the dual value) and the
    intercepts' dual balance are those of each part on its samples; the
    best intercepts at ``W = 0`` are each task's own loss's.

    Parameters
    ----------
    losses : list of Loss
    which : ndarray of int, the samples' shape
        Index in ``losses`` of each sample's loss (by its task).
    """

    name = "mixed"
    twice_differentiable = True

    def __init__(self, losses, which):
        self.losses = list(losses)
        self.which = np.asarray(which)
        self.masks = [self.which == k for k in range(len(self.losses))]
        self.quadratic = all(loss.quadratic for loss in self.losses)
        self.twice_differentiable = all(loss.twice_differentiable
                                        for loss in self.losses)
        self.classification = any(loss.classification for loss in self.losses)
        self.curvature = max(loss.curvature for loss in self.losses)
        self.curvature_factor = min(loss.curvature_factor for loss in self.losses)
        self.step_shrink = max(loss.step_shrink for loss in self.losses)

    def _sum(self, method, *arrays):
        return sum(getattr(loss, method)(*(a[m] for a in arrays))
                   for loss, m in zip(self.losses, self.masks) if m.any())

    def _pieces(self, method, z, y, v):
        out = np.empty(np.shape(z))
        for loss, m in zip(self.losses, self.masks):
            if m.any():
                out[m] = getattr(loss, method)(z[m], y[m], v[m])
        return out

    def value(self, z, y, v):
        return float(self._sum("value", z, y, v))

    def derivative(self, z, y, v):
        return self._pieces("derivative", z, y, v)

    def second_derivative(self, z, y, v):
        return self._pieces("second_derivative", z, y, v)

    def derivatives(self, z, y, v):
        return self.derivative(z, y, v), self.second_derivative(z, y, v)

    def segment_curvature(self, z1, z2, y, v):
        out = np.empty(np.shape(z1))
        for loss, m in zip(self.losses, self.masks):
            if m.any():
                out[m] = loss.segment_curvature(z1[m], z2[m], y[m], v[m])
        return out

    def dual_value(self, theta, y, v):
        return float(self._sum("dual_value", theta, y, v))

    def null_intercept(self, y, v, task_sum, task_broadcast):
        out = None
        for loss, m in zip(self.losses, self.masks):
            owned = task_sum(m.astype(float)) > 0  # the tasks of this loss
            if not owned.any():
                continue
            with np.errstate(divide="ignore", invalid="ignore"):
                b = loss.null_intercept(y, np.where(m, v, 0.0), task_sum,
                                        task_broadcast)
            out = np.where(owned, b, 0.0 if out is None else out)
        return out


LOSSES = {}


def register_loss(cls):
    """Register a :class:`Loss` subclass under its ``name``."""
    LOSSES[cls.name] = cls
    return cls


for _cls in (SquaredLoss, LogisticLoss, HuberLoss, PoissonLoss):
    register_loss(_cls)


def make_loss(name, **options):
    """The registered loss ``name`` with its ``options`` (``delta`` for
    Huber); options a loss does not take are ignored."""
    try:
        cls = LOSSES[name]
    except (KeyError, TypeError):
        raise ValueError(f"loss must be one of {sorted(LOSSES)}, got "
                         f"{name!r}.") from None
    return cls(**{k: v for k, v in options.items() if k in cls.options})
