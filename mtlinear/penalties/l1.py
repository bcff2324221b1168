"""``l1`` and ``l2``: independent models per task (Lasso / ElasticNet / Ridge).

Row ``j`` of ``h`` is ``f_j (lam ||w||_1 + mu/2 ||w||^2)`` (``l2`` is the same
with ``lam = 0``); with ``positive`` the entries are constrained ``>= 0``.
Every formula separates over entries:

* prox in the metric ``diag(H)``: ``w_t = ST(a_t, lam f) / (H_t + mu f)``
  (``ST`` the soft threshold, one-sided when positive);
* dual norm ``max_t |u_t| / f`` (``max_t u_t^+ / f`` when positive);
* conjugate ``sum_t (|u_t| - lam f)_+^2 / (2 mu f)`` (``u_t - lam f`` when
  positive);
* the dual point may be scaled task by task (``task_separable``).
"""
from collections import namedtuple

import numpy as np

from ._base import register_penalty
from ._compiled import (implements, row_conjugate, row_dual_norm, row_prox,
                        row_screen, row_slope, row_value, row_violation)
from ._rows import RowSeparable, register_row_record

__all__ = ["L1", "L2"]

L1Record = namedtuple("L1Record", ["lam", "mu", "factor", "positive"])


@implements(row_prox, L1Record)
def _row_prox(p, j, a, H, out):
    def impl(p, j, a, H, out):
        lam, mu = p.lam * p.factor[j], p.mu * p.factor[j]
        for t in range(a.size):
            den = H[t] + mu
            z = a[t]
            if den <= 0.0:
                out[t] = 0.0
            elif z > lam:
                out[t] = (z - lam) / den
            elif z < -lam and not p.positive:
                out[t] = (z + lam) / den
            else:
                out[t] = 0.0
    return impl


@implements(row_value, L1Record)
def _row_value(p, j, w):
    def impl(p, j, w):
        norm = sq = 0.0
        for t in range(w.size):
            norm += abs(w[t])
            sq += w[t] * w[t]
        out = 0.5 * p.mu * sq
        if p.lam > 0.0:
            out += p.lam * norm
        return p.factor[j] * out
    return impl


@implements(row_dual_norm, L1Record)
def _row_dual_norm(p, j, u):
    def impl(p, j, u):
        top = 0.0
        for t in range(u.size):
            top = max(top, max(u[t], 0.0) if p.positive else abs(u[t]))
        if p.factor[j] > 0.0:
            return top / p.factor[j]
        return 0.0 if top == 0.0 else np.inf
    return impl


@implements(row_conjugate, L1Record)
def _row_conjugate(p, j, u):
    def impl(p, j, u):
        f = p.factor[j]
        lam = p.lam * f
        sq = 0.0
        for t in range(u.size):
            excess = (u[t] if p.positive else abs(u[t])) - lam
            if excess > 0.0:
                sq += excess * excess
        if sq == 0.0:
            return 0.0
        return sq / (2.0 * p.mu * f) if p.mu * f > 0.0 else np.inf
    return impl


@implements(row_violation, L1Record)
def _row_violation(p, j, w, g):
    def impl(p, j, w, g):
        lam, mu = p.lam * p.factor[j], p.mu * p.factor[j]
        out = 0.0
        for t in range(w.size):
            r = g[t] + mu * w[t]
            if w[t] != 0.0:
                v = abs(r + lam * np.sign(w[t]))
            elif p.positive:
                v = max(-r - lam, 0.0)
            else:
                v = max(abs(r) - lam, 0.0)
            out = max(out, v)
        return out
    return impl


@implements(row_slope, L1Record)
def _row_slope(p, j, w, delta, side):
    def impl(p, j, w, delta, side):
        lin = part = 0.0
        for t in range(w.size):
            lin += w[t] * delta[t]
            part += (np.sign(w[t]) * delta[t] if w[t] != 0.0
                     else side * abs(delta[t]))
        return p.factor[j] * (p.mu * lin + p.lam * part)
    return impl


@implements(row_screen, L1Record)
def _row_screen(p, j, u, radius, curv):
    def impl(p, j, u, radius, curv):
        lam = p.lam * p.factor[j]
        for t in range(u.size):
            bound = (u[t] if p.positive else abs(u[t])) + radius * np.sqrt(curv[t])
            if not bound < lam:
                return False
        return True
    return impl


register_row_record(L1Record, task_separable=True)


@register_penalty
class L1(RowSeparable):
    """``N(W) = sum_jt |W_jt|``: independent sparse models (Lasso per task).

    The dual point is scaled task by task: the penalty, and so its dual-norm
    ball, separates over tasks, and a single factor would let the slowest
    task shrink every task's dual point (on School at ``alpha_max / 100`` a
    common factor left the gap 70 times above the per-task one).
    """

    name = "l1"
    task_separable = True
    Record = L1Record


@register_penalty
class L2(L1):
    """``R(W) = ||W||_F^2 / 2``: independent ridge models, no sharing.

    ``l1_ratio`` does not apply: the whole penalty is the ridge term.
    """

    name = "l2"
    sparse = False
    orthogonally_invariant = True

    def __init__(self, alpha=1.0, l1_ratio=1.0, penalty_factor=None,
                 positive=False):
        super().__init__(alpha, 0.0, penalty_factor, positive)
        # rotations keep ||W||_F, not factors or signs
        self.orthogonally_invariant = penalty_factor is None and not positive

    def with_strength(self, alpha, l1_ratio):
        return super().with_strength(alpha, 0.0)

    def norm(self, W):
        return 0.0

    def prox_norm(self, W, threshold):
        return np.maximum(W, 0.0) if self.positive else np.array(W, np.float64)
