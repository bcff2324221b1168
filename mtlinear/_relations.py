"""Learned task relations: a task covariance (MTRL) and task clusters (CMTL).

Both models add to the package's objective (:ref:`objective`) a term
``c tr(W A^{-1} W^T)`` whose ``T x T`` matrix ``A`` is learned with ``W``
(MTRL: ``A = Omega``, ``c = beta / 2``; CMTL: ``A = eta I + M``), and both
are convex jointly in ``W`` and ``A``.  They are fitted by alternating
exact block minimizations:

* the **W-step** is the package's solve with the task-coupling term
  ``tr(W K W^T) / 2`` of :mod:`mtlinear._coupling`, ``K = 2 c A^{-1}`` (plus a
  task graph's ``K``, when ``task_graph`` is given), warm-started from the
  previous ``W`` and certified by its duality gap;
* the **relation step** minimizes over ``A`` in closed form, from the
  eigendecomposition of ``W^T W``: the thin SVD of ``W`` (``d^2 T``) gives
  its nonzero part, and ``A`` (and ``K``) is the identity plus a matrix of
  rank ``min(d, T)`` (:func:`thin_right_spectrum`), formed in ``T^2 d``
  operations without a ``T x T`` eigendecomposition or inverse.

Each step lowers the joint objective; the value after each outer iteration is
kept in ``objective_path_`` (non-increasing: a W-step that would not lower
the objective keeps the previous ``W``).  The loop stops when the relative
decrease is at most ``outer_tol`` *and* the current ``W`` is certified, for
the current ``A``, to the solvers' ``tol``.

Minimizing over ``A`` first leaves a convex function of ``W`` alone whose
regularizer depends on the singular values of ``W`` only, for a spectral
penalty (ridge, trace norm, none): its prox and its Fenchel conjugate have
closed forms (:class:`NuclearSquarePenalty`, :class:`ClusterPenalty`), so
that case is solved directly, without alternating, and certified by its own
duality gap (``outer_gap_``).  See the estimators' docstrings for the
formulas.
"""
import warnings
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval
from sklearn.utils.metaestimators import available_if

from ._classifier import MultiTaskClassifier
from ._coupling import TaskCoupling, with_coupling
from ._dask import is_dask_collection
from ._regressor import MultiTaskRegressor
from ._solve import SolveResult, make_datafit
from .penalties import L2, Penalty, Trace

__all__ = ["MultiTaskRelationRegressor", "MultiTaskRelationClassifier",
           "ClusteredMultiTaskRegressor", "ClusteredMultiTaskClassifier"]


# a rise of the joint objective within this share of it is rounding
_ROUNDING = 1e-13


# ------------------------------------------------------------ linear algebra
def _symmetric(A):
    return 0.5 * (A + A.T)


def thin_right_spectrum(W):
    """``(sigma, V)``: the thin SVD's singular values ``sigma`` (r,) and right
    singular vectors ``V`` (T, r), ``r = min(d, T)``: ``W^T W = V
    diag(sigma^2) V^T``, and ``W^T W`` is zero on the orthogonal complement
    of ``V`` (cost ``d^2 T``, no ``T x T`` basis).  From the SVD of ``W``,
    not the eigendecomposition of ``W^T W``: small singular values keep
    their relative accuracy (squaring would lose it).

    A function ``f`` of ``W^T W`` whose value at 0 is ``f_0`` is then

    .. math:: f(W^\\top W) = f_0 I + V \\operatorname{diag}(f(\\sigma^2)
              - f_0) V^\\top,

    whatever basis completes ``V`` (``f_0`` on all of the complement): the
    relation steps form their ``T x T`` matrices so in ``T^2 r``
    operations, and their inverses in the same form, where the full
    basis and ``V diag V^T`` cost ``T^3`` (:func:`identity_plus_low_rank`).
    """
    _, sigma, Vt = np.linalg.svd(W, full_matrices=False)
    return sigma, Vt.T


def identity_plus_low_rank(a, V, b):
    """``a I + V diag(b) V^T`` (T, T), symmetric to rounding."""
    return _symmetric((V * b) @ V.T + a * np.eye(V.shape[0]))


def singular_values(W):
    """The singular values of ``W`` (d, T), decreasing, zero-padded to ``T``
    when ``d < T``."""
    sigma = np.linalg.svd(W, compute_uv=False)
    return np.concatenate([sigma, np.zeros(W.shape[1] - sigma.size)])


def capped_fill(a, shift, total):
    """``m`` with ``m_i = clip(r a_i - shift, 0, 1)`` and ``sum m = total``.

    ``a >= 0``, ``shift > 0`` and ``0 <= total <= a.size``; ``r >= 0`` is
    found exactly: ``sum_i clip(r a_i - shift, 0, 1)`` is continuous,
    non-decreasing and linear between the sorted breakpoints ``shift / a_i``
    and ``(1 + shift) / a_i``, so the crossing is an interpolation between
    two of them.  When fewer than ``total`` of the ``a_i`` are positive
    (``r`` infinite) those are set to 1 and the rest of the sum is spread
    evenly over the others.

    This is the minimizer over the capped simplex ``{0 <= m <= 1, sum m =
    total}`` of a separable convex function whose optimality condition
    reads ``m_i = r a_i - shift`` between the bounds (the M-step of
    :class:`ClusteredMultiTaskRegressor` and its conjugate).
    """
    a = np.asarray(a, dtype=np.float64)
    positive = a > 0
    p = int(positive.sum())
    if p <= total:
        m = positive.astype(np.float64)
        if a.size > p:
            m[~positive] = (total - p) / (a.size - p)
        return m
    ap = a[positive]
    knots = np.sort(np.concatenate([shift / ap, (1.0 + shift) / ap]))
    sums = np.clip(np.multiply.outer(knots, ap) - shift, 0.0, 1.0).sum(axis=1)
    j = int(np.searchsorted(sums, total))  # sums[0] = 0 < total <= sums[-1]
    j = min(max(j, 1), knots.size - 1)
    r0, r1, s0, s1 = knots[j - 1], knots[j], sums[j - 1], sums[j]
    r = r1 if s1 <= s0 else r0 + (total - s0) * (r1 - r0) / (s1 - s0)
    return np.clip(r * a - shift, 0.0, 1.0)


def _spectral_parts(penalty):
    """``(lam, mu)`` when ``alpha R(W) = lam ||W||_* + mu/2 ||W||_F^2`` (a
    function of the singular values of ``W``), else ``None``.

    That is the ridge (``"l2"`` without penalty factors or sign constraint),
    the trace norm, and any penalty at ``alpha = 0`` without a sign
    constraint.
    """
    if getattr(penalty, "positive", False):
        return None
    if penalty.alpha == 0:
        return 0.0, 0.0
    if type(penalty) is L2 and penalty.orthogonally_invariant:
        return 0.0, penalty.alpha
    if type(penalty) is Trace:
        return penalty.lam, penalty.mu
    return None


# ------------------------------------------------------------ MTRL
def covariance_step(W, eps):
    """``(Omega, Omega^{-1}, s, parts)``: the minimizer of ``tr(Omega^{-1}
    (W^T W + eps I))`` over ``Omega`` positive definite with unit trace,

    .. math:: \\Omega = (W^T W + \\epsilon I)^{1/2} / s, \\qquad
              s = \\mathrm{tr}\\,(W^T W + \\epsilon I)^{1/2},

    whose minimum is ``s^2`` (Cauchy-Schwarz on the eigenvalues), and
    ``Omega^{-1}`` as ``parts = (a, V, b)``, ``a I + V diag(b) V^T``.  With
    the thin SVD (:func:`thin_right_spectrum`), roots
    ``rho_i = (sigma_i^2 + eps)^{1/2}`` and ``rho_0 = eps^{1/2}`` on the
    complement of ``V``:

    .. math:: s\\,\\Omega = \\rho_0 I + V \\operatorname{diag}(\\rho - \\rho_0)
              V^\\top, \\quad
              \\Omega^{-1} / s = I / \\rho_0 + V \\operatorname{diag}(1/\\rho
              - 1/\\rho_0) V^\\top, \\quad
              s = \\textstyle\\sum_i \\rho_i + (T - r) \\rho_0.
    """
    T = W.shape[1]
    sigma, V = thin_right_spectrum(W)
    roots, base = np.sqrt(sigma * sigma + eps), np.sqrt(eps)
    s = float(roots.sum() + (T - sigma.size) * base)
    inverse = (s / base, V, s / roots - s / base)
    return (identity_plus_low_rank(base / s, V, (roots - base) / s),
            identity_plus_low_rank(*inverse), s, inverse)


def nuclear_square_maximizer(a, mu, beta):
    """``argmax_{s >= 0} <a, s> - mu/2 ||s||^2 - beta/2 (sum s)^2`` for
    ``mu > 0``, in the order of ``a``.

    The maximizer is ``s_i = (a_i - beta tau)_+ / mu``, ``tau = sum s`` the
    root of an increasing piecewise-linear equation: with the ``m`` largest
    ``a_i`` active, ``tau = (a_1 + ... + a_m) / (mu + m beta)``, for the
    ``m`` whose active set is consistent (``a_m > beta tau >= a_{m+1}``).
    """
    a = np.asarray(a, dtype=np.float64)
    ranked = np.sort(a)[::-1]
    if ranked.size == 0 or ranked[0] <= 0:
        return np.zeros_like(a)
    m = np.arange(1, ranked.size + 1)
    tau = np.cumsum(ranked) / (mu + beta * m)
    following = np.append(ranked[1:], -np.inf)
    consistent = np.flatnonzero((ranked > beta * tau)
                                & (following <= beta * tau))
    t = tau[consistent[0]] if consistent.size else tau[0]
    return np.maximum(a - beta * t, 0.0) / mu


def nuclear_square_conjugate(sigma, lam, mu, beta):
    """``phi*(sigma)`` for ``phi(s) = lam sum s + mu/2 ||s||^2 + beta/2 (sum
    s)^2`` on singular values (``s >= 0``).

    ``phi*(sigma) = sup_{s >= 0} <sigma - lam, s> - mu/2 ||s||^2 - beta/2
    tau^2``, ``tau = sum s``: with ``mu > 0`` at
    :func:`nuclear_square_maximizer`; with ``mu = 0`` only the largest
    counts, ``max(a_1, 0)^2 / (2 beta)``.
    """
    a = np.asarray(sigma, dtype=np.float64) - lam
    if a.size == 0 or a.max() <= 0:
        return 0.0
    if mu == 0:
        return float(a.max() ** 2 / (2.0 * beta))
    s = nuclear_square_maximizer(a, mu, beta)
    total = float(s.sum())
    return float(a @ s - 0.5 * mu * (s @ s) - 0.5 * beta * total * total)


class NuclearSquarePenalty(Penalty):
    """``h(W) = lam ||W||_* + mu/2 ||W||_F^2 + beta/2 ||W||_*^2``: MTRL's
    regularizer once the task covariance is minimized out (the estimators'
    docstring), a function of the singular values ``s`` of ``W``.

    Its prox at step ``t`` is ``A diag(s) B^T`` for the SVD ``A diag(sigma)
    B^T`` of the point, with ``s`` the maximizer of ``<sigma - t lam, s> -
    (1 + t mu)/2 ||s||^2 - t beta/2 (sum s)^2`` (the same piecewise-linear
    search as the conjugate); ``h*`` is finite everywhere (``beta > 0``), so
    the dual point needs no scaling.  The strength is fixed at
    construction: ``alpha`` and ``l1_ratio`` are nominal (1).
    """

    orthogonally_invariant = True
    sparse = False

    def __init__(self, lam, mu, beta):
        super().__init__(1.0, 1.0)
        self.weights = (float(lam), float(mu), float(beta))

    def value(self, W):
        lam, mu, beta = self.weights
        s = np.linalg.svd(W, compute_uv=False)
        total = float(s.sum())
        return lam * total + 0.5 * mu * float(s @ s) + 0.5 * beta * total * total

    def prox(self, W, step):
        lam, mu, beta = self.weights
        A, sigma, Bt = np.linalg.svd(W, full_matrices=False)
        s = nuclear_square_maximizer(sigma - step * lam, 1.0 + step * mu,
                                     step * beta)
        return (A * s) @ Bt

    def conjugate(self, U):
        lam, mu, beta = self.weights
        return nuclear_square_conjugate(np.linalg.svd(U, compute_uv=False),
                                        lam, mu, beta)

    def feasible_dual(self, U, rows=None):
        return 1.0, self.conjugate(U)

    def ridge_factors(self, n_features):
        return None


# ------------------------------------------------------------ CMTL
def cluster_step(W, eta, n_clusters):
    """``(M, m, sigma)``: the minimizer of ``tr(W (eta I + M)^{-1} W^T)``
    over ``{M : tr M = k, 0 <= M <= I}``, its eigenvalues ``m`` (in the basis
    of the right singular vectors of ``W``) and the singular values
    ``sigma`` of ``W``: the minimum is ``sum_i sigma_i^2 / (eta + m_i)``.

    With ``W^T W = V diag(sigma^2) V^T`` the optimal ``M`` shares ``V``, and
    ``m`` minimizes ``sum_i sigma_i^2 / (eta + m_i)`` over the capped
    simplex: ``m_i = clip(sigma_i / sqrt(lam) - eta, 0, 1)`` with ``lam``
    setting ``sum m = k`` (:func:`capped_fill`).
    """
    return _cluster_parts(W, eta, n_clusters)[:3]


def _cluster_parts(W, eta, n_clusters):
    """:func:`cluster_step` and ``M`` as ``(m_0, V, m_r - m_0)``, ``M = m_0 I +
    V diag(m_r - m_0) V^T`` (:func:`thin_right_spectrum`): the zero singular
    values of the complement of ``V`` share one weight ``m_0`` of the fill
    (:func:`capped_fill` gives equal ``a_i`` equal ``m_i``)."""
    T = W.shape[1]
    sigma_r, V = thin_right_spectrum(W)
    sigma = np.concatenate([sigma_r, np.zeros(T - sigma_r.size)])
    m = capped_fill(sigma, eta, n_clusters)
    base = float(m[sigma_r.size]) if T > sigma_r.size else 0.0
    parts = (base, V, m[:sigma_r.size] - base)
    return identity_plus_low_rank(*parts), m, sigma, parts


def _cluster_weights(sigma, eta, n_clusters, c, mu):
    """``m`` maximizing ``sum_i sigma_i^2 f(m_i)``, ``f(m) = (eta + m) /
    (mu (eta + m) + 2c)``, over the capped simplex (``mu > 0``): the
    eigenvalues of ``M`` in :func:`cluster_conjugate` and in the prox of
    :class:`ClusterPenalty`.  ``f`` is concave and increasing; its
    optimality condition ``sigma_i^2 f'(m_i) = const`` reads ``m_i = r
    sqrt(2c) sigma_i / mu - 2c / mu - eta`` between the bounds."""
    return capped_fill(np.sqrt(2.0 * c) * sigma / mu, 2.0 * c / mu + eta,
                       n_clusters)


def cluster_conjugate(U, eta, n_clusters, c, mu, lam=0.0):
    """``h*(U)`` for ``h(W) = lam ||W||_* + mu/2 ||W||_F^2 + c min_M tr(W
    (eta I + M)^{-1} W^T)`` (``M`` in the set of :func:`cluster_step`).

    ``h`` is spectral, so ``h*(U) = sup_{s >= 0} sum_i (sigma_i - lam) s_i
    - mu/2 s_i^2 - c s_i^2 / (eta + m_i)`` over the singular values
    ``sigma`` of ``U`` aligned with those of ``W`` (von Neumann's trace
    inequality) and ``m`` over the capped simplex: ``max_m sum_i b_i
    f(m_i) / 2``, ``b = (sigma - lam)_+^2``, ``f(m) = (eta + m) / (mu (eta
    + m) + 2c)``, concave and increasing, maximized by water-filling
    (:func:`_cluster_weights`).  With ``mu = 0``: ``(eta sum b + the k
    largest b_i) / (4c)`` (Ky Fan).
    """
    a = np.maximum(singular_values(U) - lam, 0.0)
    b = a * a
    if mu == 0:
        top = np.sort(b)[::-1][:n_clusters].sum()
        return float((eta * b.sum() + top) / (4.0 * c))
    m = _cluster_weights(a, eta, n_clusters, c, mu)
    return float(0.5 * np.sum(b * (eta + m) / (mu * (eta + m) + 2.0 * c)))


class ClusterPenalty(Penalty):
    """``h(W) = lam ||W||_* + mu/2 ||W||_F^2 + c min_M tr(W (eta I + M)^{-1}
    W^T)`` (``M`` in the set of :func:`cluster_step`): clustered MTL's
    regularizer once the cluster matrix is minimized out, ``sum_i lam
    sigma_i + mu/2 sigma_i^2 + c sigma_i^2 / (eta + m_i)`` in the singular
    values ``sigma`` of ``W``.

    Convex (``sigma^2 / (eta + m)`` is jointly convex, and its minimum over
    a convex set of ``m`` stays convex) and orthogonally invariant.  Its
    prox at step ``s`` is spectral: with the SVD ``A diag(a) B^T`` of the
    point and ``a' = (a - s lam)_+``, for a fixed ``m`` each singular value
    becomes ``x_i = a'_i (eta + m_i) / ((1 + s mu)(eta + m_i) + 2 s c)``, and
    the best ``m`` maximizes ``sum_i a'^2_i (eta + m_i) / ((1 + s mu)(eta +
    m_i) + 2 s c)``: the water-filling of :func:`cluster_conjugate` with
    ``mu -> 1 + s mu``, ``c -> s c``.  ``h*`` is :func:`cluster_conjugate`,
    finite everywhere.  The strength is fixed at construction: ``alpha``
    and ``l1_ratio`` are nominal (1).
    """

    orthogonally_invariant = True
    sparse = False

    def __init__(self, lam, mu, c, eta, n_clusters):
        super().__init__(1.0, 1.0)
        self.weights = (float(lam), float(mu), float(c), float(eta),
                        int(n_clusters))

    def value(self, W):
        lam, mu, c, eta, k = self.weights
        sigma = singular_values(W)
        m = capped_fill(sigma, eta, k)
        return float(lam * sigma.sum() + 0.5 * mu * (sigma @ sigma)
                     + c * np.sum(sigma * sigma / (eta + m)))

    def prox(self, W, step):
        lam, mu, c, eta, k = self.weights
        A, a, Bt = np.linalg.svd(W, full_matrices=False)
        # every eigenvalue of M counts in the fill: W's zero singular values
        # too when d < T
        a = np.maximum(np.concatenate([a, np.zeros(W.shape[1] - a.size)])
                       - step * lam, 0.0)
        shrink = 1.0 + step * mu
        m = _cluster_weights(a, eta, k, step * c, shrink)
        x = a * (eta + m) / (shrink * (eta + m) + 2.0 * step * c)
        return (A * x[:Bt.shape[0]]) @ Bt

    def conjugate(self, U):
        lam, mu, c, eta, k = self.weights
        return cluster_conjugate(U, eta, k, c, mu, lam)

    def feasible_dual(self, U, rows=None):
        return 1.0, self.conjugate(U)

    def ridge_factors(self, n_features):
        return None


def cluster_labels(M, n_clusters, parts=None):
    """Integer labels of the tasks: k-means on the rows of ``Q_k diag(m_k)``,
    the top ``k`` eigenvectors of ``M`` scaled by their eigenvalues (for the
    projection onto the span of ``k`` cluster indicators, the rows of one
    cluster coincide).  Labels are numbered in the order of their first
    task; ``k = T`` gives every task its own cluster (``M = I``).

    ``parts``: ``M`` as ``(m_0, V, e)``, ``m_0 I + V diag(e) V^T``
    (:func:`_cluster_parts`).  When the ``k`` largest eigenvalues ``m_0 +
    e`` lie strictly above ``m_0`` and the next one, their eigenvectors are
    columns of ``V``, without an ``eigh`` of ``M`` (``T^3``); otherwise
    (a tie: the top ``k`` eigenvectors are not unique) ``M`` is decomposed
    as before.
    """
    T = M.shape[0]
    if n_clusters == 1:
        return np.zeros(T, dtype=np.int64)
    if n_clusters >= T:
        return np.arange(T, dtype=np.int64)
    from sklearn.cluster import KMeans
    top = None
    if parts is not None:
        base, V, e = parts
        values = base + e
        if V.shape[1] < T:  # the complement's eigenvalue, once is enough
            values = np.append(values, base)
        order = np.argsort(values, kind="stable")
        if (order[-n_clusters:] < V.shape[1]).all() and \
                values[order[-n_clusters]] > values[order[-n_clusters - 1]]:
            top = order[-n_clusters:]  # ascending, as eigh's
            embedding = V[:, top] * np.maximum(values[top], 0.0)
    if top is None:
        m, Q = np.linalg.eigh(_symmetric(M))
        embedding = Q[:, -n_clusters:] * np.maximum(m[-n_clusters:], 0.0)
    with warnings.catch_warnings():  # fewer distinct rows than clusters
        warnings.simplefilter("ignore", ConvergenceWarning)
        raw = KMeans(n_clusters=n_clusters, n_init=10,
                     random_state=0).fit(embedding).labels_
    _, first = np.unique(raw, return_index=True)
    order = np.argsort(np.argsort(first))  # cluster -> rank of first task
    return order[np.searchsorted(np.unique(raw), raw)].astype(np.int64)


# ------------------------------------------------------------ the outer loop
@dataclass
class AlternatingResult(SolveResult):
    """A :class:`~mtlinear._solve.SolveResult` of the alternation: ``gap``
    is the W-step's duality gap at the final relation matrix."""

    outer_converged: bool = True
    message: str = ""


def _no_partial_fit(estimator):
    raise AttributeError(
        f"{type(estimator).__name__} has no partial_fit: the learned task "
        "relation is refitted with the weights at every outer iteration, "
        "from all the samples. Use fit.")


def _check_not_dask(estimator, *arrays):
    if is_dask_collection(*arrays):
        raise ValueError(
            f"{type(estimator).__name__} does not fit dask collections: the "
            "learned task relation alternates with the weights on in-memory "
            "data. Bring the data into memory (e.g. fit(X.compute(), "
            "y.compute())).")


class _LearnedRelation:
    """Alternation of the W-step (the package's solve with a coupling term)
    and a closed-form relation step; see the module docstring.

    Subclasses define ``_joint_penalty(penalty)``, ``_relation_start(T)``,
    ``_relation_K(state)`` (the learned coupling matrix ``K``, and ``K`` as
    ``(a, V, b)``, ``a I + V diag(b) V^T``),
    ``_relation_step(W)`` (returns ``(state, term)``, the term's value at its
    minimum) and ``_set_relation(state)``.
    """

    _relation_constraints = {
        "max_outer": [Interval(Integral, 1, None, closed="left")],
        "outer_tol": [Interval(Real, 0, None, closed="left")],
    }

    def _check_relation(self, n_tasks):
        """Checks of the parameters against the number of tasks."""

    def _alpha_of(self, X, Y, task_index, sample_weight, omega):
        """``alpha``; also resolves the relation term's strength
        (``_strength_name``): a classifier's ``None`` is ``1 / n`` as its
        ``alpha``'s (``C = 1`` on an average task)."""
        strength = getattr(self, self._strength_name)
        self._resolved_strength = (
            strength if strength is not None
            else self._default_alpha(Y, task_index, sample_weight, omega))
        return super()._alpha_of(X, Y, task_index, sample_weight, omega)

    def _strength(self):
        return self._resolved_strength

    def _refuse_unsupported(self, problem):
        """``ValueError`` for partialled-out features and multiclass tasks."""
        name = type(self).__name__
        self._refuse_partialled_out(problem, name)
        if problem.n_classes:
            raise ValueError(
                f"Only binary classification is supported. {name} learns "
                "relations between binary tasks; these tasks are multiclass. "
                "Use MultiTaskClassifier (multinomial per "
                "task, with a task_graph to tie the tasks), or split each "
                "task into one-vs-rest binary tasks.")

    def _joint_penalty(self, penalty):
        """The regularizer of the joint problem in ``W`` alone (the relation
        minimized out) as a penalty with a prox, for a spectral ``penalty``
        (at its strength); ``None`` otherwise (the fit alternates)."""
        raise NotImplementedError

    def _solve_at(self, problem, loss, penalty, alpha, start, coupling):
        self._refuse_unsupported(problem)
        self._check_relation(problem.n_tasks)
        joint = self._joint_penalty(penalty.with_strength(alpha,
                                                          penalty.l1_ratio))
        if joint is None:
            return self._alternate(problem, loss, penalty, alpha, start,
                                   coupling)
        # solved at once, certified by its own gap; the relation follows
        result = super()._solve_at(problem, loss, joint, 1.0, start, coupling)
        self._set_relation(self._relation_step(result.W)[0])
        datafit = with_coupling(make_datafit(problem, loss), coupling)
        self.objective_path_ = np.array(
            [datafit.value(result.W, result.b) + joint.value(result.W)])
        self.n_outer_ = 1
        self.outer_gap_ = float(max(result.gap, 0.0))
        return result

    def _alternate(self, problem, loss, penalty, alpha, start, coupling):
        name = type(self).__name__
        T = problem.n_tasks
        datafit = make_datafit(problem, loss)
        scaled = penalty.with_strength(alpha, penalty.l1_ratio)
        def coupling_of(state):
            # the learned K is dense: a sparse graph's K joins it densely
            # (and then without the learned K's identity-plus-low-rank form)
            K, parts = self._relation_K(state)
            if coupling is None:
                return TaskCoupling(K, identity_plus_low_rank=parts)
            return TaskCoupling(K + coupling.dense())

        W, b = start
        comparable = W is not None and (b is not None
                                        or not datafit.intercept_variable)
        # a warm start starts the relation from its step at the start's W
        state = (self._relation_start(T) if W is None
                 else self._relation_step(W)[0])
        inner = coupling_of(state)
        path, n_iter, converged = [], 0, False
        for outer in range(1, self.max_outer + 1):
            result = super()._solve_at(problem, loss, penalty, alpha, (W, b),
                                       inner)
            n_iter += result.n_iter
            W_new, b_new = result.W, result.b
            if comparable:  # keep the previous W if the step did not lower
                model = with_coupling(datafit, inner)  # the objective
                before = model.value(W, b) + scaled.value(W)
                after = model.value(W_new, b_new) + scaled.value(W_new)
                # by more than rounding: a W-step that only lowered its gap
                # near the optimum, refused on the last bits, left the next
                # relation step and W-step where they were, up to max_outer
                if after - before > _ROUNDING * abs(before):
                    W_new, b_new = W, b
            W, b, comparable = W_new, b_new, True
            state, term = self._relation_step(W)
            path.append(datafit.value(W, b) + scaled.value(W)
                        + (0.0 if coupling is None else coupling.value(W))
                        + term)
            inner = coupling_of(state)
            # the W-step's gap, F + tr(W K W^T) / 2 + h at the new K
            gap = with_coupling(datafit, inner).duality_gap(W, b, scaled)[1]
            if self.verbose:
                print(f"[mtlinear] {name} outer {outer:4d}  objective "
                      f"{path[-1]:.10g}  W-step gap {gap:.3e} (target "
                      f"{result.tol_abs:.3e})")
            if (outer > 1 and path[-2] - path[-1] <= self.outer_tol
                    * abs(path[-1]) and gap <= result.tol_abs):
                converged = True
                break
        decrease = ((path[-2] - path[-1]) / max(abs(path[-1]), 1e-300)
                    if len(path) > 1 else np.inf)
        self._set_relation(state)
        self.objective_path_ = np.array(path)
        self.n_outer_ = len(path)
        self.outer_gap_ = np.nan  # the joint regularizer has no closed form
        unmet = [what for what, met in [
            (f"relative decrease of the objective {decrease:.3e} "
             f"(outer_tol={self.outer_tol:.3e})", decrease <= self.outer_tol),
            (f"W-step duality gap {gap:.3e} (target {result.tol_abs:.3e})",
             gap <= result.tol_abs)] if not met]
        message = (f"{name} did not converge in max_outer={self.max_outer} "
                   f"outer iterations: unmet {' and '.join(unmet)}. Increase "
                   "max_outer (or max_iter), or raise outer_tol or tol.")
        return AlternatingResult(
            W=W, b=b, gap=float(gap), tol_abs=result.tol_abs, n_iter=n_iter,
            outer_converged=converged, message=message)

    def _warn_if_unconverged(self, result):
        if not getattr(result, "outer_converged", True):
            warnings.warn(result.message, ConvergenceWarning)
        else:
            super()._warn_if_unconverged(result)


class _RelationMixin(_LearnedRelation):
    """MTRL: the task covariance ``Omega`` (see the estimators)."""

    _strength_name = "relation_alpha"

    _extra_constraints = {
        "relation_alpha": [Interval(Real, 0, None, closed="neither")],
        "relation_eps": [Interval(Real, 0, None, closed="neither")],
        **_LearnedRelation._relation_constraints,
    }

    def _joint_penalty(self, penalty):
        """:class:`NuclearSquarePenalty` for a spectral penalty."""
        parts = _spectral_parts(penalty)
        return (None if parts is None
                else NuclearSquarePenalty(*parts, self._strength()))

    def _relation_start(self, T):
        return np.eye(T) / T, np.eye(T) * T, (float(T), np.zeros((T, 0)),
                                              np.zeros(0))

    def _relation_K(self, state):
        beta = self._strength()
        a, V, b = state[2]
        return beta * state[1], (beta * a, V, beta * b)

    def _relation_step(self, W):
        Omega, inverse, s, parts = covariance_step(W, self.relation_eps)
        return (Omega, inverse, parts), 0.5 * self._strength() * s * s

    def _set_relation(self, state):
        Omega = state[0]
        self.task_covariance_ = Omega
        scale = 1.0 / np.sqrt(np.diag(Omega))
        self.task_correlation_ = _symmetric(Omega * np.outer(scale, scale))


class _ClusterMixin(_LearnedRelation):
    """Clustered MTL: the relaxed cluster matrix ``M`` (see the estimators)."""

    _strength_name = "cluster_alpha"

    _extra_constraints = {
        "n_clusters": [Interval(Integral, 1, None, closed="left")],
        "cluster_alpha": [Interval(Real, 0, None, closed="neither")],
        "eta": [Interval(Real, 0, None, closed="neither")],
        **_LearnedRelation._relation_constraints,
    }

    def _check_relation(self, n_tasks):
        if self.n_clusters > n_tasks:
            raise ValueError(
                f"n_clusters={self.n_clusters} exceeds the number of tasks "
                f"T={n_tasks}; {type(self).__name__} needs 1 <= n_clusters "
                "<= T (clusters of tasks).")

    def _joint_penalty(self, penalty):
        """:class:`ClusterPenalty` for a spectral penalty (alternating the
        W-step and the M-step crawls when ``eta`` is small, MALSAR's usual
        regime: 100 outer iterations unconverged on School)."""
        parts = _spectral_parts(penalty)
        return (None if parts is None else ClusterPenalty(
            *parts, self._strength(), self.eta, self.n_clusters))

    def _relation_start(self, T):
        base = self.n_clusters / T
        return np.eye(T) * base, (base, np.zeros((T, 0)), np.zeros(0))

    def _relation_K(self, state):
        # M = m_0 I + V diag(e) V^T: (eta I + M)^{-1} = I / (eta + m_0) +
        # V diag(1 / (eta + m_0 + e) - 1 / (eta + m_0)) V^T, no inverse of
        # T x T
        base, V, e = state[1]
        c = 2.0 * self._strength()
        shift = self.eta + base
        parts = (c / shift, V, c / (shift + e) - c / shift)
        return identity_plus_low_rank(*parts), parts

    def _relation_step(self, W):
        M, m, sigma, parts = _cluster_parts(W, self.eta, self.n_clusters)
        return (M, parts), self._strength() * float(np.sum(sigma * sigma
                                                            / (self.eta + m)))

    def _set_relation(self, state):
        M, parts = state
        self.cluster_matrix_ = M
        self.task_clusters_ = cluster_labels(M, self.n_clusters, parts)


# ------------------------------------------------------------ docstrings
_SHARED = r"""    l1_share : float in [0, 1], default=0.5
        ``s`` of ``"sparse_group"`` (see :class:`%(base)s`).
    penalty_factor : array-like of shape (n_features,), default=None
        Per-feature factors of the penalty (see :class:`%(base)s`); they
        must be positive: unpenalized features are not supported (the
        relation couples every feature).
    positive : bool, default=False
        Constrain the coefficients to be non-negative (row penalties).
%(loss)s    fit_intercept : bool, default=True
        Fit one unpenalized intercept per task.
%(class_weight)s    task_col : int, str or None, default=None
        ``None``: shared design, one column of ``y`` per task; otherwise the
        column of ``X`` holding each row's task label (stacked layout).
    task_weights : None, dict or array-like of shape (T,), default=None
        ``omega_t`` (see :class:`%(base)s`); ``task_weights = n_t``
        (the tasks' sizes) with ``fit_intercept=False`` sums the loss over
        all samples, as MALSAR's least-squares solvers do.
    task_graph : {"mean", "chain"}, array-like or sparse matrix of shape (T, T), dict or None
        An additional, fixed task graph (see :class:`%(base)s`):
        its term ``graph_alpha tr(W L W^T)`` is added to the learned one in
        every W-step and in the objective.
    graph_alpha : float >= 0, default=1.0
        Strength of the fixed task graph.
    unseen_task : {"error", "mean"}, default="error"
        Prediction for a task not seen in fit (stacked layout); see
        :class:`%(base)s`.
    max_iter : int, default=5000
        Iteration limit of each W-step (FISTA).
    tol : float, default=1e-4
        Relative duality-gap tolerance of each W-step (and of the final
        ``W`` for the final relation matrix).
    warm_start : bool, default=False
        Start from the previous ``coef_`` (and the relation matrix of its
        relation step) when refitting with the same shapes.
    solver : str, default="auto"
        A solver that takes a coupling term (W-steps) or a penalty given by
        its prox (the direct solve): ``"auto"`` chooses FISTA, continued by
        ADMM on badly scaled features (proximal Newton with ADMM steps for
        a classifier's W-steps).
    verbose : int, default=0
        Print the objective and the W-step gap at each outer iteration (and,
        from 2 on, the W-steps' iterations).
"""

_LOSS_DOC = r"""    loss : str, default="squared"
        A regression loss of :class:`MultiTaskRegressor` (``"squared"``,
        ``"huber"``, ...).
    delta : float > 0, default=1.0
        Huber's threshold (``loss="huber"``).
"""

_CLASS_WEIGHT_DOC = r"""    class_weight : dict, "balanced" or None, default=None
        Weights of the classes, per task (see :class:`MultiTaskClassifier`).
"""

_COMMON_ATTRIBUTES = r"""    coef_ : ndarray of shape (n_tasks, n_features)
    intercept_ : ndarray of shape (n_tasks,)
    n_tasks_ : int
    tasks_ : ndarray
        Sorted task labels (stacked layout only).
    task_graph_ : ndarray or scipy.sparse.csr_array of shape (n_tasks, n_tasks)
        The fixed task graph's adjacency (with ``task_graph`` only; sparse
        for ``"chain"``, a dict or a sparse matrix).
    n_outer_ : int
        Outer iterations (W-step and relation step) performed.
    objective_path_ : ndarray of shape (n_outer,)
        The joint objective after each outer iteration (non-increasing).
    n_iter_ : int
        Total iterations of the W-steps.
    dual_gap_ : float
        Duality gap of the W-step problem (the relation matrix fixed at its
        final value) at the final ``coef_``.
    n_features_in_ : int
    feature_names_in_ : ndarray of str"""

_MTRL_DOC = r"""Multi-task relationship learning (MTRL): a learned task covariance.

    %(what)s

    Zhang and Yeung's MTRL (UAI 2010) learns, with the weights, a task
    covariance ``Omega`` (``T x T``, trace one) that says which tasks are
    positively, negatively or not correlated, and regularizes the weights by
    it.  The objective is

    .. math::

        \min_{W, b, \Omega \succ 0,\ \mathrm{tr}\,\Omega = 1}\;
        F(W, b) + \alpha R(W) + \frac{\beta}{2}\Big(
        \mathrm{tr}(W \Omega^{-1} W^\top)
        + \epsilon\, \mathrm{tr}(\Omega^{-1})\Big),

    with ``F`` the package's data fit (%(fit)s, see
    :ref:`objective`),
    ``R`` the penalty
    (``penalty``, default the ridge ``||W||_F^2 / 2``), ``beta`` =
    ``relation_alpha`` and ``epsilon`` = ``relation_eps``.  The small
    ``epsilon`` term keeps ``Omega`` invertible: the covariance step

    .. math::

        \Omega = \frac{(W^\top W + \epsilon I)^{1/2}}
                      {\mathrm{tr}\,(W^\top W + \epsilon I)^{1/2}}

    is its exact minimizer over ``Omega``, and the minimum is
    ``beta/2 (tr (W^T W + eps I)^{1/2})^2``.  At ``epsilon = 0`` this is
    ``beta/2 ||W||_*^2`` (the squared trace norm): the joint problem is the
    convex problem ``min_W F + alpha R(W) + beta/2 ||W||_*^2``, which the
    ``epsilon`` term perturbs by at most ``beta/2 ((sum_i (sigma_i^2 +
    eps)^{1/2})^2 - ||W||_*^2)``.

    **Spectral penalties: one convex solve.**  When ``alpha R(W)`` is a
    function of the singular values of ``W`` (``"l2"`` without
    ``penalty_factor`` or ``positive`` -- the default --, ``"trace"``, or
    ``alpha = 0``), so is the whole regularizer once ``Omega`` is minimized
    out at ``epsilon = 0``, ``phi(s) = lam sum s + mu/2 ||s||^2 + beta/2
    (sum s)^2`` (``lam``, ``mu``: the penalty's norm and ridge weights).
    The model then solves ``min_W F + phi(s(W))`` directly (FISTA; the prox
    and the conjugate of ``phi`` act on the singular values: the maximizer
    of ``<a, s> - m/2 ||s||^2 - beta/2 (sum s)^2`` is ``s_i = (a_i - beta
    tau)_+ / m``, ``tau = sum s`` found by sorting), certified by that
    problem's duality gap (``dual_gap_ = outer_gap_``), and reports
    ``Omega`` as the covariance step of the solution, ``epsilon`` keeping
    it invertible.  The alternation below stalls on exactly these problems
    when the optimal ``W`` is close to low rank (``Omega`` nearly
    singular); the direct solve does not.

    **Other penalties: alternation.**  For l1, l21, sparse_group, penalty
    factors or ``positive`` the regularizer ``alpha R(W) + beta/2
    ||W||_*^2`` is not spectral.  From ``Omega = I / T`` (with
    ``warm_start``, the covariance step of the previous ``coef_``), the fit
    alternates the W-step, the package's solve with the coupling term
    ``tr(W K W^T) / 2``, ``K = beta Omega^{-1}`` (plus a task graph's, if
    given; FISTA, warm-started), and the covariance step above (the
    ``epsilon``-regularized problem), until the relative decrease of the
    objective is at most ``outer_tol`` and the final ``W`` is certified to
    ``tol`` for the final ``Omega`` (``dual_gap_``).  The joint problem has
    no closed-form conjugate there (an infimal convolution): ``outer_gap_``
    is NaN (the alternation still converges: the problem is convex).

%(scaling)s    Parameters
    ----------
    penalty : {"l2", "trace", "l1", "l21", "sparse_group"} or Penalty, default="l2"
        ``R(W)``; see :class:`%(base)s`.
    alpha : %(alpha_type)s
        Strength of the penalty; %(alpha_doc)s
        ``alpha = 0`` (no penalty besides the relation term) is allowed.
    l1_ratio : float in [0, 1], default=1.0
        Share of the norm in the penalty (see :class:`%(base)s`).
    relation_alpha : %(strength_type)s
        ``beta``: strength of the relation term%(strength_doc)s
    relation_eps : float > 0, default=1e-8
        ``epsilon``: keeps the reported ``Omega`` invertible; with a
        non-spectral penalty, it also regularizes the alternation (see
        above), and a larger value conditions its W-steps better when ``W``
        is close to low rank.
    max_outer : int, default=100
        Maximum number of outer iterations (non-spectral penalties).
    outer_tol : float, default=1e-6
        Stop when the relative decrease of the joint objective in an outer
        iteration is at most ``outer_tol`` (and the W-step is certified);
        non-spectral penalties.
%(shared)s
    Attributes
    ----------
    task_covariance_ : ndarray of shape (n_tasks, n_tasks)
        ``Omega``: symmetric positive definite, trace one, the covariance
        step of the final ``coef_``.
    task_correlation_ : ndarray of shape (n_tasks, n_tasks)
        ``Omega`` scaled to a unit diagonal: the learned correlation of the
        tasks (negative for tasks with opposite weights).
    outer_gap_ : float
        Upper bound on the suboptimality of the joint objective (see above);
        NaN for penalties that are not spectral.
%(attributes)s

    Notes
    -----
    The alternation (non-spectral penalties) converges fast when the
    optimal ``W`` has full rank ``min(d, T)`` well above
    ``sqrt(relation_eps)``.  When it is (nearly) low-rank -- tasks that are
    combinations of fewer others, more tasks than features, a large
    ``relation_alpha`` -- ``Omega`` approaches singularity: the coupling
    ``beta Omega^{-1}`` becomes ill-conditioned, the null space of ``Omega``
    moves only slowly from one outer iteration to the next, and the
    alternation may stall above the optimum (Zhang and Yeung's alternating
    algorithm shares this); a larger ``relation_eps`` speeds it up (at the
    price of a larger perturbation of the objective).  The spectral
    penalties' direct solve has no such stall.

    Examples
    --------
    >>> import numpy as np
    >>> from mtlinear import %(name)s
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((60, 5))
%(example)s
"""

_CMTL_DOC = r"""Clustered multi-task learning (convex relaxation).

    %(what)s

    Tasks in ``k`` clusters have weights close to their cluster's mean.
    Clustered MTL (Jacob, Bach and Vert, NIPS 2008) relaxes the unknown
    cluster assignment to a convex set; the form here is the one of MALSAR's
    ``Least_CMTL`` / ``Logistic_CMTL`` (Zhou, Chen and Ye, NIPS 2011):

    .. math::

        \min_{W, b, M}\; F(W, b) + c\, \mathrm{tr}\big(W (\eta I + M)^{-1}
        W^\top\big) + \alpha R(W)
        \quad \text{s.t.} \quad \mathrm{tr}\, M = k,\ 0 \preceq M \preceq I,

    with ``F`` the package's data fit (%(fit)s, see
    :ref:`objective`),
    ``c`` = ``cluster_alpha``, ``eta`` = ``eta``, ``k`` = ``n_clusters`` and
    ``alpha R(W)`` an optional penalty (default none: ``alpha = 0``, allowed
    because ``(eta I + M)^{-1}`` is invertible).  ``M`` relaxes ``E (E^T
    E)^{-1} E^T`` for the ``T x k`` cluster indicator matrix ``E``; the
    matrix-fractional term is jointly convex in ``(W, M)``, so the problem
    is convex.

    **Spectral penalties (ridge, trace norm, none): one convex problem in
    ``W``.**  The M-step is exact: with ``W^T W = Q diag(s) Q^T``, ``M = Q
    diag(m) Q^T`` where ``m`` minimizes ``sum_i s_i / (eta + m_i)`` subject
    to ``sum m = k``, ``0 <= m_i <= 1``, i.e. ``m_i = clip(sqrt(s_i / lam) -
    eta, 0, 1)`` with ``lam`` such that ``sum m = k`` (found exactly: the
    sum is piecewise linear in ``1 / sqrt(lam)``).  Minimizing over ``M``
    leaves ``P(W) = F + h(W)``, ``h(W) = lam ||W||_* + mu/2 ||W||^2 + c
    min_M tr(W (eta I + M)^{-1} W^T)`` (``lam``, ``mu`` the trace norm's and
    ridge's weights in ``alpha R``), convex and a function of the singular
    values of ``W``.  Its prox has a closed form (for a fixed ``m`` each
    singular value shrinks on its own; the best ``m`` is a water-filling),
    so ``P`` is minimized directly by the package's solvers (FISTA, or ADMM
    on badly scaled features), and ``M`` is the M-step of the result.  Its
    conjugate has one too, ``h*(U) = max_M tr(V (mu I + 2c (eta I +
    M)^{-1})^{-1} V^T) / 2`` with ``V`` having the singular values
    ``(sigma_i(U) - lam)_+`` of ``U``: a water-filling of ``sum_i b_i (eta
    + m_i) / (mu (eta + m_i) + 2c)`` over the same set, ``b_i`` the squared
    shifted singular values (for ``mu = 0``, ``(eta sum b + the k largest
    b_i) / (4c)``, Ky Fan).  With the data fit's dual point ``Theta`` (``U
    = X^T Theta``), ``outer_gap_ = dual_gap_ = P(W) - D(Theta)`` bounds the
    suboptimality of the returned ``(W, M)`` for the joint problem, and
    meets ``tol``.  MALSAR instead runs accelerated projected gradient on
    ``(W, M)`` jointly; both reach the optimum of the same convex problem.
    Alternating the two steps, as for the other penalties, crawled where
    ``eta`` is small (MALSAR's usual regime).

    **Other penalties (l1, l21, sparse_group, penalty factors,
    ``positive``): alternation.**  From ``M = (k / T) I`` (MALSAR's start;
    with ``warm_start``, the M-step of the previous ``coef_``), alternate
    the W-step, the package's solve with the coupling term ``tr(W K W^T) /
    2``, ``K = 2 c (eta I + M)^{-1}`` (plus a task graph's, if given;
    warm-started), and the M-step, until the relative decrease of the
    objective is at most ``outer_tol`` and the final ``W`` is certified to
    ``tol`` for the final ``M`` (``dual_gap_``).  ``h*`` is then an infimal
    convolution without closed form: ``outer_gap_`` is NaN.

    **MALSAR.**  ``Least_CMTL(X, Y, rho1, rho2, k)`` minimizes
    ``sum_t ||Y_t - X_t w_t||^2 / 2 + rho1 eta (1 + eta) tr(W (eta I +
    M)^{-1} W^T)`` with ``eta = rho2 / rho1`` (``Least_CMTL.m``): it is
    the regressor with ``n_clusters=k``, ``eta=rho2 / rho1``,
    ``cluster_alpha=rho2 * (1 + rho2 / rho1)``, ``alpha=0``,
    ``task_weights=n_t`` and ``fit_intercept=False``, with ``n_t`` the
    tasks' sizes (MALSAR sums the losses over all samples).
    ``Logistic_CMTL`` takes each task's mean logistic loss with an
    intercept: the classifier with the same parameters, the default
    ``task_weights`` and ``fit_intercept=True``.

    Parameters
    ----------
    penalty : {"l2", "l1", "l21", "trace", "sparse_group"} or Penalty, default="l2"
        ``R(W)`` (see :class:`%(base)s`); it matters only when
        ``alpha > 0``.
    alpha : float >= 0, default=0.0
        Strength of the optional penalty.
    l1_ratio : float in [0, 1], default=1.0
        Share of the norm in the penalty (see :class:`%(base)s`).
    n_clusters : int, default=2
        ``k``, the number of clusters of tasks, ``1 <= k <= T`` (checked at
        fit: a ``ValueError`` otherwise).
    cluster_alpha : %(strength_type)s
        ``c``: strength of the cluster term%(strength_doc)s
    eta : float > 0, default=1.0
        ``eta``: the larger, the weaker the cluster structure relative to a
        plain ridge (``(eta I + M)^{-1}`` has eigenvalues between ``1 / (eta
        + 1)`` and ``1 / eta``).
    max_outer : int, default=100
        Maximum number of outer iterations (non-spectral penalties).
    outer_tol : float, default=1e-6
        Stop when the relative decrease of the joint objective in an outer
        iteration is at most ``outer_tol`` (and the W-step is certified);
        non-spectral penalties.
%(shared)s
    Attributes
    ----------
    cluster_matrix_ : ndarray of shape (n_tasks, n_tasks)
        ``M``: symmetric, eigenvalues in ``[0, 1]``, trace ``k``; the M-step
        of the final ``coef_``.
    task_clusters_ : ndarray of int of shape (n_tasks,)
        A cluster label per task (in the order of ``tasks_`` or of the
        columns of ``y``): k-means (``KMeans(n_clusters, n_init=10,
        random_state=0)``) on the rows of the top ``k`` eigenvectors of ``M``
        scaled by their eigenvalues; labels numbered by first task.
    outer_gap_ : float
        Upper bound on the suboptimality of the joint objective (see
        above); NaN for a non-spectral penalty at ``alpha > 0``.
%(attributes)s

    Notes
    -----
    The model needs ``n_clusters`` tasks or more; in the shared layout,
    ``y`` has one column per task.

    Examples
    --------
    >>> import numpy as np
    >>> from mtlinear import %(name)s
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((60, 5))
%(example)s
"""

_REGRESSOR_FIT = "a regression loss"
_CLASSIFIER_FIT = "logistic loss"

_MTRL_SCALING = """\
    **Scaling.**  Written with the squared loss ``(y - z)^2`` averaged per
    task and the regularizer ``lambda_1 / 2 tr(W W^T) + lambda_2 / 2 tr(W
    Omega^{-1} W^T)`` (the form of Zhang and Yeung's paper), MTRL's
    objective is twice ours with ``alpha = lambda_1 / 2`` and
    ``relation_alpha = lambda_2 / 2`` (``penalty="l2"``).

"""


def _doc(template, name, base, *, classifier, example, regressor=None,
         classifier_name=None):
    shared = _SHARED % dict(
        base=base, loss="" if classifier else _LOSS_DOC,
        class_weight=_CLASS_WEIGHT_DOC if classifier else "")
    extra = ("    classes_ : ndarray of shape (2,) or list of such arrays\n"
             "        As for :class:`MultiTaskClassifier`.\n" if classifier
             else "")
    return template % dict(
        what=("Multi-task logistic regression (binary tasks)." if classifier
              else "Multi-task regression."),
        fit=_CLASSIFIER_FIT if classifier else _REGRESSOR_FIT, base=base,
        name=name, shared=shared, attributes=extra + _COMMON_ATTRIBUTES,
        example=example,
        scaling="" if classifier else _MTRL_SCALING,
        alpha_type=("float or None, default=None" if classifier
                    else "float >= 0, default=1.0"),
        alpha_doc=("``None`` means ``1 / n`` (as for\n        "
                   ":class:`MultiTaskClassifier`)." if classifier
                   else "as for :class:`MultiTaskRegressor`."),
        strength_type=("float > 0 or None, default=None" if classifier
                       else "float > 0, default=1.0"),
        strength_doc=("; ``None`` means ``1 / n``, as\n        for ``alpha`` "
                      "(``1.0``, the regressors' default, gives models close\n"
                      "        to constant on tasks of hundreds of samples)."
                      if classifier else "."),
        regressor=regressor or "ClusteredMultiTaskRegressor",
        classifier=classifier_name or "ClusteredMultiTaskClassifier")


# ------------------------------------------------------------ estimators
_MTRL_REGRESSOR_EXAMPLE = """\
    >>> w = rng.standard_normal(5)
    >>> W = np.column_stack([w, w, -w])
    >>> Y = X @ W + 0.1 * rng.standard_normal((60, 3))
    >>> model = MultiTaskRelationRegressor(alpha=0.01, relation_alpha=0.01)
    >>> model = model.fit(X, Y)
    >>> np.sign(model.task_correlation_[0]).astype(int).tolist()
    [1, 1, -1]"""

_MTRL_CLASSIFIER_EXAMPLE = """\
    >>> w = rng.standard_normal(5)
    >>> Y = (X @ np.column_stack([w, w, -w]) > 0).astype(int)
    >>> clf = MultiTaskRelationClassifier(relation_alpha=0.01).fit(X, Y)
    >>> clf.task_covariance_.shape
    (3, 3)"""

_CMTL_REGRESSOR_EXAMPLE = """\
    >>> centers = rng.standard_normal((5, 2))
    >>> W = centers[:, [0, 0, 0, 1, 1, 1]]
    >>> Y = X @ W + 0.1 * rng.standard_normal((60, 6))
    >>> model = ClusteredMultiTaskRegressor(n_clusters=2, cluster_alpha=0.01)
    >>> model.fit(X, Y).task_clusters_.tolist()
    [0, 0, 0, 1, 1, 1]"""

_CMTL_CLASSIFIER_EXAMPLE = """\
    >>> centers = rng.standard_normal((5, 2))
    >>> Y = (X @ centers[:, [0, 0, 1, 1]] > 0).astype(int)
    >>> clf = ClusteredMultiTaskClassifier(n_clusters=2, cluster_alpha=0.01)
    >>> clf.fit(X, Y).cluster_matrix_.shape
    (4, 4)"""


class _RegressorFit:
    """``fit`` of the relation regressors: in memory only (no dask, no
    ``partial_fit``: the statistics fits do not alternate)."""

    def fit(self, X, y, sample_weight=None):
        """Fit the model (alternating W-steps and relation steps).

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_columns)
            Features, plus the task column when ``task_col`` is set.
        y : array-like of shape (n_samples,) or (n_samples, n_tasks)
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative weights ``s_i``; each task's loss stays a weighted
            mean.

        Returns
        -------
        self
        """
        _check_not_dask(self, X, y, sample_weight)
        self._fit(X, y, sample_weight)
        self.__dict__.pop("_statistics", None)
        return self

    @available_if(_no_partial_fit)
    def partial_fit(self, X, y, sample_weight=None):  # pragma: no cover
        """Not available (see ``fit``)."""
        raise AttributeError("partial_fit")


class _ClassifierFit:
    """``fit`` of the relation classifiers (in memory)."""

    def fit(self, X, y, sample_weight=None):
        """Fit the model (alternating W-steps and relation steps).

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_columns)
            Features, plus the task column when ``task_col`` is set.
        y : array-like of shape (n_samples,) or (n_samples, n_tasks)
            Class labels: two per task.
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative weights ``s_i``.

        Returns
        -------
        self
        """
        _check_not_dask(self, X, y, sample_weight)
        return self._fit(X, y, sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False  # binary tasks only
        return tags


class MultiTaskRelationRegressor(_RelationMixin, _RegressorFit,
                                 MultiTaskRegressor):
    __doc__ = _doc(_MTRL_DOC, "MultiTaskRelationRegressor", "MultiTaskRegressor",
                   classifier=False, example=_MTRL_REGRESSOR_EXAMPLE)

    _parameter_constraints = {**MultiTaskRegressor._parameter_constraints,
                              **_RelationMixin._extra_constraints}

    def __init__(self, penalty="l2", alpha=1.0, l1_ratio=1.0, *,
                 relation_alpha=1.0, relation_eps=1e-8, max_outer=100,
                 outer_tol=1e-6, l1_share=0.5, penalty_factor=None,
                 positive=False, loss="squared", delta=1.0,
                 fit_intercept=True, task_col=None, task_weights=None,
                 task_graph=None, graph_alpha=1.0, unseen_task="error",
                 max_iter=5000, tol=1e-4, warm_start=False, solver="auto",
                 verbose=0):
        super().__init__(penalty=penalty, alpha=alpha, l1_ratio=l1_ratio,
                         l1_share=l1_share, penalty_factor=penalty_factor,
                         positive=positive, loss=loss, delta=delta,
                         fit_intercept=fit_intercept, task_col=task_col,
                         task_weights=task_weights, task_graph=task_graph,
                         graph_alpha=graph_alpha, unseen_task=unseen_task,
                         max_iter=max_iter, tol=tol, warm_start=warm_start,
                         solver=solver, verbose=verbose)
        self.relation_alpha = relation_alpha
        self.relation_eps = relation_eps
        self.max_outer = max_outer
        self.outer_tol = outer_tol


class MultiTaskRelationClassifier(_RelationMixin, _ClassifierFit,
                                  MultiTaskClassifier):
    __doc__ = _doc(_MTRL_DOC, "MultiTaskRelationClassifier", "MultiTaskClassifier",
                   classifier=True, example=_MTRL_CLASSIFIER_EXAMPLE)

    _parameter_constraints = {**MultiTaskClassifier._parameter_constraints,
                              **_RelationMixin._extra_constraints,
                              "relation_alpha": [Interval(Real, 0, None,
                                                          closed="neither"),
                                                 None]}

    def __init__(self, penalty="l2", alpha=None, l1_ratio=1.0, *,
                 relation_alpha=None, relation_eps=1e-8, max_outer=100,
                 outer_tol=1e-6, l1_share=0.5, penalty_factor=None,
                 positive=False, fit_intercept=True, class_weight=None,
                 task_col=None, task_weights=None, task_graph=None,
                 graph_alpha=1.0, unseen_task="error", max_iter=5000,
                 tol=1e-4, warm_start=False, solver="auto", verbose=0):
        super().__init__(penalty=penalty, alpha=alpha, l1_ratio=l1_ratio,
                         l1_share=l1_share, penalty_factor=penalty_factor,
                         positive=positive, fit_intercept=fit_intercept,
                         class_weight=class_weight, task_col=task_col,
                         task_weights=task_weights, task_graph=task_graph,
                         graph_alpha=graph_alpha, unseen_task=unseen_task,
                         max_iter=max_iter, tol=tol, warm_start=warm_start,
                         solver=solver, verbose=verbose)
        self.relation_alpha = relation_alpha
        self.relation_eps = relation_eps
        self.max_outer = max_outer
        self.outer_tol = outer_tol


class ClusteredMultiTaskRegressor(_ClusterMixin, _RegressorFit,
                                  MultiTaskRegressor):
    __doc__ = _doc(_CMTL_DOC, "ClusteredMultiTaskRegressor", "MultiTaskRegressor",
                   classifier=False, example=_CMTL_REGRESSOR_EXAMPLE)

    _parameter_constraints = {**MultiTaskRegressor._parameter_constraints,
                              **_ClusterMixin._extra_constraints}

    def __init__(self, penalty="l2", alpha=0.0, l1_ratio=1.0, *,
                 n_clusters=2, cluster_alpha=1.0, eta=1.0, max_outer=100,
                 outer_tol=1e-6, l1_share=0.5, penalty_factor=None,
                 positive=False, loss="squared", delta=1.0,
                 fit_intercept=True, task_col=None, task_weights=None,
                 task_graph=None, graph_alpha=1.0, unseen_task="error",
                 max_iter=5000, tol=1e-4, warm_start=False, solver="auto",
                 verbose=0):
        super().__init__(penalty=penalty, alpha=alpha, l1_ratio=l1_ratio,
                         l1_share=l1_share, penalty_factor=penalty_factor,
                         positive=positive, loss=loss, delta=delta,
                         fit_intercept=fit_intercept, task_col=task_col,
                         task_weights=task_weights, task_graph=task_graph,
                         graph_alpha=graph_alpha, unseen_task=unseen_task,
                         max_iter=max_iter, tol=tol, warm_start=warm_start,
                         solver=solver, verbose=verbose)
        self.n_clusters = n_clusters
        self.cluster_alpha = cluster_alpha
        self.eta = eta
        self.max_outer = max_outer
        self.outer_tol = outer_tol


class ClusteredMultiTaskClassifier(_ClusterMixin, _ClassifierFit,
                                   MultiTaskClassifier):
    __doc__ = _doc(_CMTL_DOC, "ClusteredMultiTaskClassifier", "MultiTaskClassifier",
                   classifier=True, example=_CMTL_CLASSIFIER_EXAMPLE)

    _parameter_constraints = {**MultiTaskClassifier._parameter_constraints,
                              **_ClusterMixin._extra_constraints,
                              "cluster_alpha": [Interval(Real, 0, None,
                                                         closed="neither"),
                                                None]}

    def __init__(self, penalty="l2", alpha=0.0, l1_ratio=1.0, *,
                 n_clusters=2, cluster_alpha=None, eta=1.0, max_outer=100,
                 outer_tol=1e-6, l1_share=0.5, penalty_factor=None,
                 positive=False, fit_intercept=True, class_weight=None,
                 task_col=None, task_weights=None, task_graph=None,
                 graph_alpha=1.0, unseen_task="error", max_iter=5000,
                 tol=1e-4, warm_start=False, solver="auto", verbose=0):
        super().__init__(penalty=penalty, alpha=alpha, l1_ratio=l1_ratio,
                         l1_share=l1_share, penalty_factor=penalty_factor,
                         positive=positive, fit_intercept=fit_intercept,
                         class_weight=class_weight, task_col=task_col,
                         task_weights=task_weights, task_graph=task_graph,
                         graph_alpha=graph_alpha, unseen_task=unseen_task,
                         max_iter=max_iter, tol=tol, warm_start=warm_start,
                         solver=solver, verbose=verbose)
        self.n_clusters = n_clusters
        self.cluster_alpha = cluster_alpha
        self.eta = eta
        self.max_outer = max_outer
        self.outer_tol = outer_tol
