"""Smooth data-fit terms ``F(W, b)`` and the duality gap.

Two implementations share one interface (``gradient``, ``value``,
``duality_gap``, ``null_value``, and for :func:`mtlinear._fista.fista` the
affine state of an iterate with ``step_bounds``, ``gradient_at_state`` and
``curvature``):

* :class:`SampleDatafit`: any loss, through the design operator ``X W``.
* :class:`GramDatafit`: the squared loss through the per-task sufficient
  statistics ``Q_t = X_t^T V_t X_t``, ``C_t = X_t^T V_t y_t``,
  ``yy_t = y_t^T V_t y_t``; an iteration costs ``O(d^2 T)`` instead of
  ``O(n d T)``.

Duality gap
-----------
The primal is ``P(W, b) = F(XW + b) + h(W)`` (``h`` the penalty, see
:mod:`mtlinear.penalties`).  Its Fenchel dual is

.. math::

    D(\\Theta) = -F^*(-\\Theta) - h^*(X^T \\Theta)
    \\quad \\text{s.t.} \\quad \\sum_{i \\in t} \\Theta_i = 0
    \\text{ for each task (only with an intercept variable)},

and ``P(W, b) >= D(Theta)`` for every feasible ``Theta`` (weak duality).  The
dual point is built from the residual, ``Theta = -F'(XW + b)``, which is
optimal when ``(W, b)`` is; it is made feasible by (i) balancing the classes
per task when there is an intercept variable (logistic loss) and (ii) scaling
by ``c = min(1, lam / N°(X^T Theta))`` when the penalty has no ridge part
(``h*`` is then the indicator of the dual-norm ball).  With a ridge part
``h*`` is finite everywhere and no scaling is needed.
"""
from functools import cached_property

import numpy as np
import scipy.sparse as sp
from numba import njit
from scipy.sparse.linalg import LinearOperator, eigsh

from .penalties._compiled import feasible_dual, value

__all__ = ["SampleDatafit", "GramDatafit", "gap_from_sums"]

# above this side, the Lipschitz constant of a non-quadratic loss comes from
# Lanczos on the implicit operator rather than a dense eigendecomposition
_DENSE_EIG_MAX = 500


def _rows_per_task(design):
    return design.n_samples if design.shared else int(design.counts.max())


class LossAt:
    """The loss at one linear predictor ``z``: its value ``F``, derivative
    ``D`` and curvature ``H`` (``loss.derivatives``), computed once when
    first asked (``None`` until then, or given; a derivative asked alone is
    not kept).  A Newton solver's gap, model and line search meet at the
    same points, and a logistic loss's pass over the samples can cost more
    than a sparse design's product.
    """

    __slots__ = ("loss", "z", "y", "v", "F", "D", "H")

    def __init__(self, loss, z, y, v, F=None, D=None, H=None):
        self.loss, self.z, self.y, self.v = loss, z, y, v
        self.F, self.D, self.H = F, D, H

    def value(self):
        if self.F is None:
            self.F = self.loss.value(self.z, self.y, self.v)
        return self.F

    def derivative(self):
        # kept only along with the curvature: alone, the next model would
        # compute both anyway, and it would cost a sample-sized array
        if self.D is None:
            return self.loss.derivative(self.z, self.y, self.v)
        return self.D

    def derivatives(self):
        if self.H is None:
            self.D, self.H = self.loss.derivatives(self.z, self.y, self.v)
        return self.D, self.H

    def take_derivatives(self):
        """:meth:`derivatives`, no longer held here (the caller's to free)."""
        D, H = self.derivatives()
        self.D = self.H = None
        return D, H


_SMALL_PREDICTOR = 2 ** 16  # floats: a predictor copy this small is always kept


class SampleDatafit:
    """``F(W, b) = sum_i v_i loss(y_i, (X W)_i + b_t)`` through the design.

    Parameters
    ----------
    loss : Loss
    problem : TaskProblem
    """

    def __init__(self, loss, problem):
        self.loss = loss
        self.design = problem.design
        self.y = problem.y
        self.v = problem.v
        self.intercept_variable = problem.intercept_variable
        # the predictor of the last fresh_primal, and those a path offers
        # for a solve's starts (see start_predictor)
        self._fresh = None
        self.offered = {}
        # the copy kept, at most: an eighth of the design, or small anyway
        stored = (self.design.X.nnz if sp.issparse(self.design.X)
                  else self.design.X.size)
        self._predictor_budget = max(stored // 8, _SMALL_PREDICTOR)

    @cached_property
    def lipschitz(self):
        """Lipschitz constant of the gradient in ``(W, b)``.

        Tasks are independent in ``F``, so it is the largest per-task
        curvature; the design is centred, so the intercept block decouples
        and contributes ``curvature * sum_i v_i`` per task.  For a
        non-quadratic loss on a large problem, see :meth:`_lanczos_lipschitz`.

        A loss of unbounded curvature (Poisson) has no such constant: this is
        then the same quantity for the Hessian at the null model (``W = 0``,
        the best intercepts), the local curvature where the solvers start
        and the scale of a ridge's alpha grid; FISTA doubles its ``L`` from
        there as the curvature test requires (:meth:`step_bounds`).
        """
        weights, factor = self._curvature_weights
        if (not self.loss.quadratic
                and min(self.design.n_features, _rows_per_task(self.design))
                > _DENSE_EIG_MAX):
            return factor * self._lanczos_lipschitz(weights)
        L = self.design.lipschitz(weights)
        if self.intercept_variable:
            L = max(L, float(self.design.task_sum(weights).max()))
        return factor * L

    @cached_property
    def _curvature_weights(self):
        """``(h, factor)``: ``factor * h_i`` bounds the curvature of sample
        ``i``: ``(v, curvature)`` for a loss with a curvature bound, else
        ``(F''(z_0), 1)`` at the null model's linear predictor ``z_0``
        (constant per task, so the columns stay proportional in the shared
        layout, as :meth:`Design.lipschitz` assumes)."""
        if self.loss.bounded_curvature:
            return self.v, self.loss.curvature
        W0 = np.zeros((self.design.n_features, self.design.n_tasks))
        Z0 = self.linear_predictor(W0, self.initial_intercept())
        return self.loss.second_derivative(Z0, self.y, self.v), 1.0

    @cached_property
    def intercept_weight(self):
        """``kappa``: the intercepts' curvature over the global ``L`` (at most
        1), their metric weight in FISTA's step (see :mod:`mtlinear._fista`);
        the design is centred, so the intercept block's curvature is
        ``curvature * sum_i v_i`` per task (at the null model for a loss of
        unbounded curvature: any fixed ``kappa > 0`` is a valid metric)."""
        if not self.intercept_variable:
            return 1.0
        weights, factor = self._curvature_weights
        intercepts = factor * float(self.design.task_sum(weights).max())
        return min(1.0, intercepts / self.lipschitz) if self.lipschitz > 0 else 1.0

    def _lanczos_lipschitz(self, v):
        """Largest eigenvalue of ``[X_c 1]^T V [X_c 1]`` over tasks, by Lanczos
        (``V = diag(v)``).

        The exact route (a dense eigendecomposition of a Gram matrix of side
        ``min(n_t, d)``) costs cubic time; on large sparse problems (text) it
        dominated the whole fit.  The operator in ``(W, b)`` is
        block-diagonal over tasks, so one Lanczos run on it gives the largest
        task's value, with products through the design only.  Ritz values
        approach from below: a small margin keeps ``1 / L`` a safe step
        (the logistic curvature bound 1/4 is itself loose).
        """
        design = self.design
        d, T = design.n_features, design.n_tasks
        size = d * T + (T if self.intercept_variable else 0)

        def matvec(x):
            x = np.asarray(x).ravel()
            W = x[:d * T].reshape(d, T)
            b = x[d * T:] if self.intercept_variable else None
            R = v * self.linear_predictor(W, b)
            parts = [design.rmatmat(R).ravel()]
            if self.intercept_variable:
                parts.append(design.task_sum(R))
            return np.concatenate(parts)

        op = LinearOperator((size, size), matvec=matvec, dtype=np.float64)
        top = eigsh(op, k=1, which="LA", tol=1e-6, return_eigenvectors=False,
                    v0=np.ones(size))[0]
        return float(top) * (1 + 1e-4)

    # -- the affine state of FISTA's adaptive step: the linear predictor
    @property
    def curvature_factor(self):
        """``c`` of the curvature test (the loss's: exact for a quadratic)."""
        return self.loss.curvature_factor

    @property
    def step_shrink(self):
        """Per-iteration decrease of ``L`` (the loss's)."""
        return self.loss.step_shrink

    def step_bounds(self):
        """Start and cap of ``L``: the global Lipschitz constant, twice it.

        For a loss of unbounded curvature: the constant at the null model
        and no cap (``inf``).  FISTA's curvature test (``c = 1/2``) implies
        the descent lemma for any convex ``F``, so it decides alone; it holds
        once ``L`` is twice the largest curvature on the segment of the
        step, which shrinks with the step: the doubling ends."""
        if not self.loss.bounded_curvature:
            return self.lipschitz, np.inf
        return self.lipschitz, 2.0 * self.lipschitz

    def curvature_bound(self, Z_new, Z):
        """A bound on the curvature of ``F`` over the segment between the
        iterates of linear predictors ``Z`` and ``Z_new``, in FISTA's metric
        ``||dW||^2 + kappa ||db||^2``: by Cauchy-Schwarz on each sample's
        ``(x_ci . dw_t + db_t)^2``, ``max_t sum_{i in t} h_i (||x_ci||^2 +
        1 / kappa)`` (no ``1 / kappa`` without intercepts), with ``h_i`` the
        loss's bound on ``F''_i`` over the segment.  FISTA's curvature test
        holds in exact arithmetic once ``c L`` exceeds it, so for a loss
        without a global bound it ends the doubling where rounding alone
        would fail the test."""
        h = self.loss.segment_curvature(Z_new, Z, self.y, self.v)
        rows = self._centred_row_norms
        if self.design.shared:
            rows = rows[:, None]
        if self.intercept_variable:
            rows = rows + 1.0 / self.intercept_weight
        return float(self.design.task_sum(h * rows).max())

    @cached_property
    def _centred_row_norms(self):
        """``||x_i - m_t||^2`` of every sample (``m_t`` its task's row mean,
        if the design is centred)."""
        design, X = self.design, self.design.X
        # einsum: no (n, d) temporary of squares
        rows = (np.asarray(X.multiply(X).sum(axis=1)).ravel() if sp.issparse(X)
                else np.einsum("ij,ij->i", X, X))
        if design.x_mean is None:
            return rows
        # X_c m = X m - ||m||^2 per task, so ||x - m||^2 = ||x||^2 - 2 (X_c m) - ||m||^2
        if design.shared:
            m = design.x_mean
            rows = rows - 2.0 * design.matmat(m[:, None])[:, 0] - float(m @ m)
        else:
            m = design.x_mean  # (T, d)
            rows = (rows - 2.0 * design.matmat(np.ascontiguousarray(m.T))
                    - design.task_broadcast(np.einsum("tj,tj->t", m, m)))
        return np.maximum(rows, 0.0)

    def affine_state(self, W, b):
        return self.linear_predictor(W, b)

    def gradient_at_state(self, Z):
        """``(dF/dW, dF/db, F'(Z))`` at the linear predictor ``Z``."""
        D = self.loss.derivative(Z, self.y, self.v)
        gb = self.design.task_sum(D) if self.intercept_variable else None
        return self.design.rmatmat(D), gb, D

    def curvature(self, Z_new, Z, D, dW):
        """``<grad F(new) - grad F(old), new - old>``, in sample space."""
        return float(np.vdot(self.loss.derivative(Z_new, self.y, self.v) - D,
                             Z_new - Z))

    def linear_predictor(self, W, b):
        # a start or the null model at W = 0: no pass over X
        Z = self.design.matmat(W) if W.any() else np.zeros(self.y.shape)
        if b is not None:
            Z += self.design.task_broadcast(b)
        return Z

    def value(self, W, b):
        return self.loss.value(self.linear_predictor(W, b), self.y, self.v)

    def fresh_primal(self, W, b, penalty):
        """``(primal, Z)`` at ``(W, b)`` on a fresh ``Z = X W + b``: a
        solver's predictor carried along its steps differs by rounding, and
        a certificate is of ``W`` itself (set against a dual value already
        computed: any dual point bounds the optimum)."""
        Z = self.fresh_predictor(W, b)
        return self.loss.value(Z, self.y, self.v) + penalty.value(W), Z

    def fresh_predictor(self, W, b):
        """``X W + b`` by a product, a copy of it kept with ``(W, b)``'s
        (:meth:`predictor_of`): a solver's last one is its solution's, which
        a path may start from again."""
        Z = self.linear_predictor(W, b)
        if Z.size <= self._predictor_budget:
            self._fresh = (np.array(W), None if b is None else np.array(b),
                           Z.copy())
        return Z

    def predictor_of(self, W, b):
        """``X W + b`` as the last :meth:`fresh_predictor` computed it, if
        that was at these values of ``(W, b)`` (a solver's solution), else
        ``None``."""
        if self._fresh is None:
            return None
        W1, b1, Z = self._fresh
        same = (np.array_equal(W1, W) and (b1 is None) == (b is None)
                and (b is None or np.array_equal(b1, b)))
        return Z if same else None

    def start_predictor(self, W, b):
        """``X W + b`` of a solve's start: offered by the path
        (``offered[(id(W), id(b))]``, from its solutions' predictors, for
        the duration of the solve), else by a product."""
        Z = self.offered.get((id(W), id(b)))
        return self.linear_predictor(W, b) if Z is None else np.array(Z)

    def gradient(self, W, b):
        """``(dF/dW, dF/db)``; the second is ``None`` without an intercept."""
        D = self.loss.derivative(self.linear_predictor(W, b), self.y, self.v)
        gb = self.design.task_sum(D) if self.intercept_variable else None
        return self.design.rmatmat(D), gb

    def initial_intercept(self):
        if not self.intercept_variable:
            return None
        return self.loss.null_intercept(self.y, self.v, self.design.task_sum,
                                        self.design.task_broadcast)

    @cached_property
    def _null_value(self):
        W0 = np.zeros((self.design.n_features, self.design.n_tasks))
        return self.value(W0, self.initial_intercept())

    def null_value(self):
        """Objective at ``W = 0`` with the best intercept (once per data-fit:
        a path or a cross-validation asks at every alpha)."""
        return self._null_value

    def duality_gap(self, W, b, penalty, state=None):
        """Return ``(primal, gap)`` at ``(W, b)`` (``state``: its linear
        predictor, if at hand)."""
        return self.gap_and_gradient(W, b, penalty, state)[:2]

    def gap_and_gradient(self, W, b, penalty, Z=None, at=None):
        """``(primal, gap, U, Z)``: also ``U = X_c^T Theta`` before the dual
        scaling (``-U`` is the data-fit gradient at the optimum; working-set
        solvers rank features by it) and the linear predictor ``Z``.
        ``at``: the :class:`LossAt` of ``Z``, if at hand."""
        value, U, dual, Z = self.dual_parts(W, b, Z, at)
        return (*_penalized_gap(value, U, dual, W, penalty), U, Z)

    def gap_and_data_gradient(self, W, b, penalty, Z, D):
        """``(primal, gap, G)`` at ``(W, b)`` with linear predictor ``Z`` and
        ``D = F'(Z)``: also the data fit's gradient ``G = X_c^T D`` (Newton's
        next gradient), from the same pass over ``X`` as the gap's
        ``X_c^T Theta``."""
        theta = self._dual_point(D)
        if self.intercept_variable:
            U, G = self.design.rmatmat_pair(theta, D)
        else:  # Theta = -D: one product
            G = self.design.rmatmat(D)
            U = -G
        return (*_penalized_gap(self.loss.value(Z, self.y, self.v), U,
                                self._dual_function(theta), W, penalty), G)

    def _dual_point(self, D):
        """``Theta = -D``, balanced per task with an intercept variable."""
        if not self.intercept_variable:
            return -D
        return self.loss.balance(-D, self.y, self.v, self.design.task_sum,
                                 self.design.task_broadcast)

    def dual_parts(self, W, b, Z=None, at=None):
        """The data-fit's share of the duality gap at ``(W, b)``.

        Returns ``(F(W, b), U, dual, Z)``: ``U = X_c^T Theta`` for the dual
        point ``Theta = -F'(Z)`` (balanced per task when there is an
        intercept variable), ``dual(c) = -F*(-c Theta)`` for a factor ``c``
        (a float or one per task) and the linear predictor ``Z``.  ``at``:
        the :class:`LossAt` of ``Z`` (its samples in any shape): the value
        and derivative it knows are used, a value it lacks is kept there.
        """
        if Z is None:
            Z = self.linear_predictor(W, b)
        if at is None:
            at = LossAt(self.loss, Z, self.y, self.v)
        theta = self._dual_point(at.derivative().reshape(Z.shape))
        return (at.value(), self.design.rmatmat(theta),
                self._dual_function(theta), Z)

    def _dual_function(self, theta):
        """``c -> -F*(-c Theta)`` (``c`` a float or one factor per task)."""

        def dual(c):
            if np.ndim(c):  # one factor per task (not held through the loss)
                return self.loss.dual_value(
                    self.design.task_broadcast(self.loss.common_factor(c))
                    * theta, self.y, self.v)
            return self.loss.dual_value(c * theta, self.y, self.v)

        return dual


class GramDatafit:
    """Squared loss from sufficient statistics (no intercept variable).

    ``F(W) = sum_t w_t^T Q_t w_t / 2 - C_t^T w_t + yy_t / 2``.  In the shared
    layout ``Q_t = omega_t Q`` is stored once.
    """

    intercept_variable = False
    intercept_weight = 1.0  # no intercepts (see SampleDatafit.intercept_weight)
    curvature_factor = 1.0  # F is quadratic: the curvature test is exact
    step_shrink = 0.9
    lipschitz = None  # set when known for free (the row-space reduction)

    def __init__(self, Q, omega, C, yy):
        self.Q, self.omega, self.C = Q, omega, C
        self.yy_t = np.asarray(yy, dtype=np.float64)  # per task
        self.yy = float(self.yy_t.sum())
        self.shared = omega is not None

    @classmethod
    def from_problem(cls, problem):
        return cls(*problem.design.gram_statistics(problem.y, problem.v))

    def _QW(self, W):
        if self.shared:
            return (self.Q @ W) * self.omega
        return np.einsum("tij,jt->it", self.Q, W)

    def step_bounds(self):
        """Start and cap of FISTA's ``L`` without an eigenvalue computation:
        the largest diagonal entry of the ``omega_t Q_t`` (at most their
        largest eigenvalue) and the largest trace (at least it, ``Q_t`` being
        positive semi-definite); or the exact value when known."""
        if self.lipschitz is not None:
            return self.lipschitz, self.lipschitz
        diagonal = np.diagonal(self.Q, axis1=-2, axis2=-1)  # (d,) or (T, d)
        if self.shared:
            scale = float(self.omega.max())
            return scale * float(diagonal.max()), scale * float(diagonal.sum())
        return float(diagonal.max()), float(diagonal.sum(axis=1).max())

    def largest_curvature(self):
        """The exact Lipschitz constant: the largest eigenvalue of the
        ``omega_t Q_t`` (what :attr:`SampleDatafit.lipschitz` gives for the
        squared loss)."""
        if self.lipschitz is not None:
            return self.lipschitz
        if self.Q.shape[-1] == 0:
            return 0.0
        tops = np.linalg.eigvalsh(self.Q)[..., -1]  # the Q_t are small (d, d)
        if self.shared:
            tops = self.omega.max() * tops
        return max(float(np.max(tops)), 0.0)

    def affine_state(self, W, b=None):
        return self._QW(W)

    def kernel_statistics(self):
        """``(Q, omega, C)`` for compiled code: ``Q`` as (1, d, d) when shared
        by the tasks (scaled by ``omega_t``), else (T, d, d) with ``omega = 1``."""
        if self.shared:
            return self.Q[None], self.omega, self.C
        return self.Q, np.ones(self.C.shape[1]), self.C

    def gradient_at_state(self, QW):
        return QW - self.C, None, None

    def curvature(self, QW_new, QW, aux, dW):
        return float(np.vdot(QW_new - QW, dW))

    def value(self, W, b=None):
        return 0.5 * np.vdot(W, self._QW(W)) - np.vdot(self.C, W) + 0.5 * self.yy

    def gradient(self, W, b=None):
        return self._QW(W) - self.C, None

    def initial_intercept(self):
        return None

    def null_value(self):
        return 0.5 * self.yy

    def duality_gap(self, W, b, penalty, state=None):
        """``(primal, gap)`` with the dual point ``Theta = c V (y - X W)``
        (``state``: ``QW``, if at hand).

        ``-F*(-Theta) = c (yy - <C, W>) - c^2 (yy - 2 <C, W> + <W, QW>) / 2``
        and ``X^T Theta = c (C - QW)``, all from the statistics; in one
        compiled call for the package's penalties (:func:`_gram_duality_gap`).
        """
        QW = self._QW(W) if state is None else state
        record = penalty.record(W.shape[0])
        if record is not None:  # compiled: a gap of a small problem cost
            # more in numpy calls than in arithmetic
            primal, gap = _gram_duality_gap(
                np.ascontiguousarray(W), np.ascontiguousarray(QW), self.C,
                self.yy_t, record)
            return float(primal), float(gap)
        return _penalized_gap(*self.dual_parts(W, None, QW)[:3], W, penalty)

    def dual_parts(self, W, b=None, QW=None):
        """As :meth:`SampleDatafit.dual_parts`, from the statistics: with
        ``Theta = V (y - X W)``, ``X^T Theta = C - QW`` and ``-F*(-c Theta)
        = sum_t c_t (yy_t - C_t . w_t) - c_t^2 r2_t / 2``, ``r2_t = yy_t - 2
        C_t . w_t + w_t . Q_t w_t`` (the weighted squared residual)."""
        if QW is None:
            QW = self._QW(W)
        WQW = np.einsum("jt,jt->t", W, QW)  # per task, as the dual may scale
        CW = np.einsum("jt,jt->t", self.C, W)  # each task on its own
        residual_sq = self.yy_t - 2 * CW + WQW

        def dual(c):
            return float(np.sum(c * (self.yy_t - CW) - 0.5 * c * c * residual_sq))

        return 0.5 * float(np.sum(residual_sq)), self.C - QW, dual, QW


def _penalized_gap(value, U, dual, W, penalty):
    """``(primal, gap)`` from a data-fit's :meth:`SampleDatafit.dual_parts`
    (its value, ``U = X_c^T Theta`` and ``dual``) and the penalty at
    ``W``, the dual point scaled into the penalty's dual ball."""
    primal = value + penalty.value(W)
    c, conj = penalty.feasible_dual(U)
    return primal, primal - (dual(c) - conj)


def gap_from_sums(residual_sq, residual_y, value, c, conj):
    """``(primal, gap)`` of the squared loss with the dual point ``Theta = c
    V r`` (``r = y - X W``), from per-task sums: ``residual_sq_t = r_t^T V_t
    r_t``, ``residual_y_t = r_t^T V_t y_t``, the penalty's ``value = h(W)``
    and ``conj = h*(c X^T V r)``.

    ``P = sum_t residual_sq_t / 2 + h(W)`` and ``D = sum_t c_t residual_y_t
    - c_t^2 residual_sq_t / 2 - h*`` (:func:`_gram_gap_from` compiled).
    """
    primal = 0.5 * float(np.sum(residual_sq)) + value
    dual = float(np.sum(c * residual_y - 0.5 * c * c * residual_sq)) - conj
    return primal, primal - dual


@njit(cache=True)
def _gram_sums(W, P, omega, C):
    """Per task, ``omega_t w_t . P_t`` and ``C_t . w_t``, in one pass."""
    T = W.shape[1]
    WQW = np.zeros(T)
    CW = np.zeros(T)
    for j in range(W.shape[0]):
        for t in range(T):
            WQW[t] += omega[t] * W[j, t] * P[j, t]
            CW[t] += C[j, t] * W[j, t]
    return WQW, CW


@njit(cache=True)
def _gram_gap_from(W, P, omega, C, yy, value, c, conj):
    """``(primal, gap)`` from the statistics (``P = Q W``, scaled by
    ``omega_t`` per task), the penalty's value ``h(W)`` and the dual point's
    factors ``c`` and conjugate ``h*(c U)``: with ``r2_t = yy_t - 2 C_t . w_t
    + omega_t w_t . P_t`` (the weighted squared residual), the primal is
    ``sum_t r2_t / 2 + h(W)`` and the dual ``sum_t c_t (yy_t - C_t . w_t) -
    c_t^2 r2_t / 2 - h*`` (see :meth:`GramDatafit.duality_gap`)."""
    WQW, CW = _gram_sums(W, P, omega, C)
    primal, dual = value, -conj
    for t in range(W.shape[1]):
        residual_sq = yy[t] - 2.0 * CW[t] + WQW[t]
        primal += 0.5 * residual_sq
        dual += c[t] * (yy[t] - CW[t]) - 0.5 * c[t] * c[t] * residual_sq
    return primal, primal - dual


@njit(cache=True)
def _gram_duality_gap(W, QW, C, yy, p):
    """:meth:`GramDatafit.duality_gap` for a compiled penalty (record ``p``)
    in one compiled call; ``yy`` per task."""
    d, T = W.shape
    U = np.empty((d, T))
    for j in range(d):
        for t in range(T):
            U[j, t] = C[j, t] - QW[j, t]
    c, conj = feasible_dual(p, U, np.arange(d))
    return _gram_gap_from(W, QW, np.ones(T), C, yy, value(p, W), c, conj)
