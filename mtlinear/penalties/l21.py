"""``l21``: joint feature selection (group lasso over tasks, MultiTaskLasso).

Row ``j`` of ``h`` is ``f_j (lam ||w||_2 + mu/2 ||w||^2)``; with ``positive``
the entries are constrained ``>= 0``, which amounts to replacing ``a`` (prox)
or ``u`` (dual) by its positive part:

* prox in the metric ``diag(H)``: :func:`~._rows.group_shrink`;
* dual norm ``||u|| / f``; conjugate ``(||u|| - lam f)_+^2 / (2 mu f)``.
"""
from collections import namedtuple

import numpy as np

from ._base import register_penalty
from ._compiled import (implements, row_conjugate, row_dual_norm, row_prox,
                        row_screen, row_slope, row_value, row_violation)
from ._rows import RowSeparable, group_shrink, register_row_record, shrunk_square

__all__ = ["L21"]

L21Record = namedtuple("L21Record", ["lam", "mu", "factor", "positive"])


@implements(row_prox, L21Record)
def _row_prox(p, j, a, H, out):
    def impl(p, j, a, H, out):
        f = p.factor[j]
        if p.positive:  # the positive part, in place in out (no allocation)
            for t in range(a.size):
                out[t] = max(a[t], 0.0)
            group_shrink(out, H, p.lam * f, p.mu * f, out)
        else:
            group_shrink(a, H, p.lam * f, p.mu * f, out)
    return impl


@implements(row_value, L21Record)
def _row_value(p, j, w):
    def impl(p, j, w):
        sq = 0.0
        for t in range(w.size):
            sq += w[t] * w[t]
        out = 0.5 * p.mu * sq
        if p.lam > 0.0:
            out += p.lam * np.sqrt(sq)
        return p.factor[j] * out
    return impl


@implements(row_dual_norm, L21Record)
def _row_dual_norm(p, j, u):
    def impl(p, j, u):
        sq = 0.0
        for t in range(u.size):
            v = max(u[t], 0.0) if p.positive else u[t]
            sq += v * v
        if p.factor[j] > 0.0:
            return np.sqrt(sq) / p.factor[j]
        return 0.0 if sq == 0.0 else np.inf
    return impl


@implements(row_conjugate, L21Record)
def _row_conjugate(p, j, u):
    def impl(p, j, u):
        f = p.factor[j]
        sq = 0.0
        for t in range(u.size):
            v = max(u[t], 0.0) if p.positive else u[t]
            sq += v * v
        return shrunk_square(np.sqrt(sq), p.lam * f, p.mu * f)
    return impl


@implements(row_violation, L21Record)
def _row_violation(p, j, w, g):
    def impl(p, j, w, g):
        lam, mu = p.lam * p.factor[j], p.mu * p.factor[j]
        sq_w = 0.0
        for t in range(w.size):
            sq_w += w[t] * w[t]
        norm_w = np.sqrt(sq_w)
        sq = 0.0
        for t in range(w.size):
            r = g[t] + mu * w[t]
            if norm_w > 0.0:
                r += lam * w[t] / norm_w
                if p.positive and w[t] == 0.0:
                    r = min(r, 0.0)  # the normal cone absorbs r >= 0
            elif p.positive:
                r = min(r, 0.0)
            sq += r * r
        return np.sqrt(sq) if norm_w > 0.0 else max(np.sqrt(sq) - lam, 0.0)
    return impl


@implements(row_slope, L21Record)
def _row_slope(p, j, w, delta, side):
    def impl(p, j, w, delta, side):
        sq_w = dots = sq_d = 0.0
        for t in range(w.size):
            sq_w += w[t] * w[t]
            dots += w[t] * delta[t]
            sq_d += delta[t] * delta[t]
        part = dots / np.sqrt(sq_w) if sq_w > 0.0 else side * np.sqrt(sq_d)
        return p.factor[j] * (p.mu * dots + p.lam * part)
    return impl


@implements(row_screen, L21Record)
def _row_screen(p, j, u, radius, curv):
    def impl(p, j, u, radius, curv):
        # ||u* - u|| <= radius sqrt(max_t curv_t); the positive part is
        # 1-Lipschitz, so the bound holds for it as well
        sq = top = 0.0
        for t in range(u.size):
            v = max(u[t], 0.0) if p.positive else u[t]
            sq += v * v
            top = max(top, curv[t])
        return np.sqrt(sq) + radius * np.sqrt(top) < p.lam * p.factor[j]
    return impl


register_row_record(L21Record)


@register_penalty
class L21(RowSeparable):
    """``N(W) = sum_j ||W_j||_2`` over feature rows: joint feature selection."""

    name = "l21"
    Record = L21Record
