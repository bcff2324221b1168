"""Penalties that are sums over feature rows, ``h(W) = sum_j f_j h_j(W_j)``.

``f_j`` are per-feature penalty factors (``penalty_factor``, as glmnet's
``penalty.factor`` but not rescaled; ``f_j`` multiplies the whole row term,
norm and ridge parts) and ``positive=True`` adds the constraint ``W >= 0``.
Both enter every row formula; a penalty module writes the row stubs of
:mod:`._compiled` for its record, and :func:`register_row_record` derives
the matrix-level ones (prox, value, dual point) from them.

Shared row kernels: :func:`group_shrink`, the exact minimizer of a
quadratic with a diagonal metric plus a group norm.
"""
import copy

import numpy as np
from numba import njit

from ._base import Penalty
from ._compiled import (feasible_dual, implements, prox, row_conjugate,
                        row_dual_norm, row_prox, row_slope, row_value,
                        row_violation, value)

__all__ = ["RowSeparable", "register_row_record", "group_shrink"]


@njit(cache=True)
def group_shrink(a, H, lam, mu, out):
    """``out = argmin_w sum_t (H_t w_t^2 / 2 - a_t w_t) + lam ||w|| + mu/2 ||w||^2``
    (``out`` may be ``a``: each ``a_t`` is read before ``out_t`` is written).

    With ``u = ||w||``: ``w_t = a_t u / ((H_t + mu) u + lam)`` where ``u > 0``
    solves ``phi(u) = sum_t a_t^2 / ((H_t + mu) u + lam)^2 = 1``, or ``w = 0``
    when ``||a|| <= lam``.  ``phi`` is decreasing and convex: Newton from the
    lower bound ``(||a|| - lam) / max_t (H_t + mu)`` converges monotonically;
    with equal curvatures that bound is the root.
    """
    T = a.size
    sq = 0.0
    cmin, cmax = np.inf, 0.0
    for t in range(T):
        sq += a[t] * a[t]
        cmin = min(cmin, H[t] + mu)
        cmax = max(cmax, H[t] + mu)
    norm_a = np.sqrt(sq)
    if norm_a <= lam or cmax <= 0.0:
        for t in range(T):
            out[t] = 0.0
        return
    if lam <= 0.0:  # ridge only: separable
        for t in range(T):
            den = H[t] + mu
            out[t] = a[t] / den if den > 0.0 else 0.0
        return
    u = (norm_a - lam) / cmax
    if cmin < cmax:
        for _ in range(100):
            phi = 0.0
            dphi = 0.0
            for t in range(T):
                den = (H[t] + mu) * u + lam
                r = a[t] * a[t] / (den * den)
                phi += r
                dphi -= 2.0 * r * (H[t] + mu) / den
            if phi <= 1.0 or dphi >= 0.0:
                break
            step = (phi - 1.0) / dphi
            u -= step
            if -step <= 1e-15 * u:
                break
    for t in range(T):
        out[t] = a[t] * u / ((H[t] + mu) * u + lam)


@njit(cache=True)
def shrunk_square(norm, threshold, mu):
    """``(norm - threshold)_+^2 / (2 mu)``: the conjugate of ``threshold N +
    mu/2 ||.||^2`` at a point of dual norm ``norm`` for a group norm
    (``+inf`` outside the ball when ``mu = 0``)."""
    excess = norm - threshold
    if excess <= 0.0:
        return 0.0
    return excess * excess / (2.0 * mu) if mu > 0.0 else np.inf


def register_row_record(record, task_separable=False):
    """Register the matrix-level stubs of a row-separable ``record`` from its
    row stubs (and, for ``task_separable`` records, a dual factor per task)."""

    @implements(prox, record)
    def _prox(p, W, step):
        def impl(p, W, step):
            d, T = W.shape
            out = np.empty((d, T))
            H = np.full(T, 1.0 / step)
            a = np.empty(T)
            for j in range(d):
                for t in range(T):
                    a[t] = W[j, t] / step
                row_prox(p, j, a, H, out[j])
            return out, True
        return impl

    @implements(value, record)
    def _value(p, W):
        def impl(p, W):
            out = 0.0
            for j in range(W.shape[0]):
                out += row_value(p, j, W[j])
            return out
        return impl

    @implements(feasible_dual, record)
    def _feasible_dual(p, U, rows):
        def impl(p, U, rows):
            T = U.shape[1]
            c = np.ones(T)
            if p.mu > 0.0:
                conj = 0.0
                for l in range(rows.size):
                    conj += row_conjugate(p, rows[l], U[l])
                return c, conj
            if p.lam <= 0.0:
                return np.zeros(T), 0.0
            # a task-separable record's factor is each task's own (its rows
            # of one entry), else one for all; one call site, as the row
            # stubs are inlined
            groups, width = (T, 1) if task_separable else (1, T)
            part = np.empty(width)
            for g in range(groups):
                top = 0.0
                for l in range(rows.size):
                    for t in range(width):
                        part[t] = U[l, g + t]
                    top = max(top, row_dual_norm(p, rows[l], part))
                if top > p.lam:
                    c[g:g + width] = p.lam / top
            return c, 0.0
        return impl


# ------------------------------------------------ entry points from Python
@njit(cache=True)
def _value_of(p, W):
    return value(p, W)


@njit(cache=True)
def _prox_of(p, W, step):
    return prox(p, W, step)


@njit(cache=True)
def _feasible_dual_of(p, U, rows):
    return feasible_dual(p, U, rows)


@njit(cache=True)
def _dual_norms(p, U, rows):
    out = np.empty(rows.size)
    for l in range(rows.size):
        out[l] = row_dual_norm(p, rows[l], U[l])
    return out


@njit(cache=True)
def _violations(p, W, G, rows):
    out = np.empty(rows.size)
    for l in range(rows.size):
        out[l] = row_violation(p, rows[l], W[l], G[l])
    return out


@njit(cache=True)
def _entry_violations(p, W, G, rows):
    """:func:`_violations` of every entry alone (a task-separable record's
    row formulas hold on a row of one task)."""
    out = np.empty(W.shape)
    # one-entry rows filled in place: slicing W[l, t:t + 1] for each entry
    # costs four times the formula
    w = np.empty(1)
    g = np.empty(1)
    for l in range(rows.size):
        for t in range(W.shape[1]):
            w[0] = W[l, t]
            g[0] = G[l, t]
            out[l, t] = row_violation(p, rows[l], w, g)
    return out


@njit(cache=True)
def _slope(p, W, delta, rows, side):
    out = 0.0
    for l in range(rows.size):
        out += row_slope(p, rows[l], W[l], delta[l], side)
    return out


@njit(cache=True)
def _value_rows(p, W, rows):
    """``h`` of the rows ``W`` of features ``rows`` (all others zero)."""
    out = 0.0
    for l in range(rows.size):
        out += row_value(p, rows[l], W[l])
    return out


@njit(cache=True)
def _value_change(p, W, delta, rows):
    """``h(W + delta) - h(W)`` on ``rows``, row by row (no cancellation
    between two large totals)."""
    out = 0.0
    ends = np.empty((2, W.shape[1]))  # the row after and before the move
    for l in range(rows.size):
        for t in range(W.shape[1]):
            ends[0, t] = W[l, t] + delta[l, t]
            ends[1, t] = W[l, t]
        change = 0.0
        for k in range(2):  # one call site: the row stubs are inlined
            change += (1.0 - 2.0 * k) * row_value(p, rows[l], ends[k])
        out += change
    return out


def _c64(A):
    return np.ascontiguousarray(A, dtype=np.float64)


def _all_rows(A, rows):
    return np.arange(A.shape[0]) if rows is None else np.asarray(rows, np.int64)


class RowSeparable(Penalty):
    """Base class of the compiled row-separable penalties, with per-feature
    factors and the sign constraint.

    Parameters
    ----------
    alpha, l1_ratio : float
        As for :class:`Penalty`.
    penalty_factor : array-like of shape (n_features,), optional
        ``f_j >= 0`` multiplying feature ``j``'s whole term (default 1).
    positive : bool, default=False
        Constrain the coefficients to be non-negative.

    Subclasses set ``Record`` (a ``namedtuple`` class starting with ``lam,
    mu, factor, positive``) and register its row stubs.
    """

    row_separable = True
    compiled = True
    options = {"penalty_factor": None, "positive": False}
    Record = None

    def __init__(self, alpha=1.0, l1_ratio=1.0, penalty_factor=None,
                 positive=False):
        super().__init__(alpha, l1_ratio)
        self.penalty_factor = penalty_factor
        self.positive = positive
        self._check_options()

    def _check_options(self):
        if self.penalty_factor is not None:
            factor = np.asarray(self.penalty_factor, dtype=np.float64)
            if factor.ndim != 1 or not np.all(np.isfinite(factor)) \
                    or np.any(factor < 0):
                raise ValueError(
                    "penalty_factor must be a 1-d array of finite values >= 0 "
                    f"(one per feature); got {_describe(self.penalty_factor)}.")
            if self.positive and np.any(factor == 0):
                raise ValueError(
                    "penalty_factor has zeros (unpenalized features) and "
                    "positive=True: unpenalized features are fitted "
                    "unconstrained. Give them a small positive factor instead.")
            self.penalty_factor = factor
        if not isinstance(self.positive, (bool, np.bool_)):
            raise ValueError(f"positive must be True or False; got "
                             f"{self.positive!r}.")

    def unpenalized(self):
        """Indices of the features with factor 0 (fitted without penalty)."""
        if self.penalty_factor is None:
            return np.empty(0, dtype=np.int64)
        return np.flatnonzero(self.penalty_factor == 0)

    def restricted(self, features):
        """The penalty on the given features only (their factors)."""
        if features is None or self.penalty_factor is None:
            return self
        out = copy.copy(self)
        out.penalty_factor = self.penalty_factor[features]
        return out

    def ridge_factors(self, n_features):
        if self.positive or Penalty.ridge_factors(self, n_features) is None:
            return None
        if self.penalty_factor is None:
            return np.ones(n_features)
        # zero factors are partialled out before the solvers see them
        return None if np.any(self.penalty_factor == 0) else self.penalty_factor

    def check_features(self, n_features):
        if self.penalty_factor is not None and len(self.penalty_factor) != n_features:
            raise ValueError(
                f"penalty_factor has {len(self.penalty_factor)} entries but X "
                f"has {n_features} features (task column excluded); give one "
                "factor per feature.")

    def _record_fields(self):
        """Fields of the record after ``lam, mu, factor, positive``."""
        return ()

    def record(self, n_features):
        # solvers ask for it at every gap evaluation: kept while the strength
        # is the same (without factors, one covering the most features asked)
        cached = self.__dict__.get("_record")
        if (cached is not None and cached[0] == (self.lam, self.mu)
                and (len(cached[1].factor) == n_features
                     or self.penalty_factor is None
                     and len(cached[1].factor) >= n_features)):
            return cached[1]
        self.check_features(n_features)
        factor = (np.ones(n_features) if self.penalty_factor is None
                  else self.penalty_factor)
        record = self.Record(self.lam, self.mu, factor, bool(self.positive),
                             *self._record_fields())
        self._record = ((self.lam, self.mu), record)
        return record

    # -- the Python-facing methods run the compiled row formulas
    def value(self, W, rows=None):
        """``h(W)``; ``rows``: the feature indices of ``W``'s rows (all
        nonzero rows of the full matrix), for per-feature factors."""
        if rows is None:
            return _value_of(self.record(W.shape[0]), _c64(W))
        rows = np.asarray(rows, np.int64)
        return _value_rows(self.record(self._n(rows, W)), _c64(W), rows)

    def prox(self, W, step):
        return _prox_of(self.record(W.shape[0]), _c64(W), float(step))[0]

    def prox_norm(self, W, threshold):
        return Penalty.with_strength(self, threshold, 1.0).prox(W, 1.0)

    def norm(self, W):
        return Penalty.with_strength(self, 1.0, 1.0).value(W)

    def dual_norm(self, U, rows=None):
        rows = _all_rows(U, rows)
        if rows.size == 0:
            return 0.0
        return float(_dual_norms(self.record(self._n(rows, U)), _c64(U),
                                 rows).max())

    def feasible_dual(self, U, rows=None):
        rows = _all_rows(U, rows)
        return _feasible_dual_of(self.record(self._n(rows, U)), _c64(U), rows)

    def conjugate(self, U):
        # slack for rounding: a dual point scaled into the ball by
        # feasible_dual may come out a few ulps outside it
        c, conj = self.feasible_dual(U)
        return conj if np.all(np.asarray(c) >= 1.0 - 1e-12) else np.inf

    def violations(self, W, G, rows=None):
        """Per row of ``W``: the distance of ``-G_j`` to ``dh_j(W_j)`` (the
        optimality violation; ``rows`` are the rows' feature indices)."""
        rows = _all_rows(W, rows)
        return _violations(self.record(self._n(rows, W)), _c64(W), _c64(G), rows)

    def entry_violations(self, W, G, rows=None):
        """:meth:`violations` of each entry ``W[j, t]`` alone, for a
        ``task_separable`` penalty (whose row terms are sums over tasks)."""
        if not self.task_separable:
            raise ValueError(f"{type(self).__name__} is not separable over "
                             "tasks: its violations are per row.")
        rows = _all_rows(W, rows)
        return _entry_violations(self.record(self._n(rows, W)), _c64(W),
                                 _c64(G), rows)

    def slope(self, W, delta, side, rows=None):
        """One-sided derivative of ``s -> h(W + s delta)`` at 0."""
        rows = _all_rows(W, rows)
        return _slope(self.record(self._n(rows, W)), _c64(W), _c64(delta), rows,
                      float(side))

    def value_change(self, W, delta, rows=None):
        """``h(W + delta) - h(W)``, row by row."""
        rows = _all_rows(W, rows)
        return _value_change(self.record(self._n(rows, W)), _c64(W),
                             _c64(delta), rows)

    def _n(self, rows, W):
        """Features the record must cover: all of them with factors, else
        at least the largest row index."""
        if self.penalty_factor is not None:
            return len(self.penalty_factor)
        return max(int(rows.max()) + 1 if rows.size else 0, W.shape[0])


def _describe(value):
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
