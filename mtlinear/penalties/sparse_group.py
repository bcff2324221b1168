"""``sparse_group``: sparse-group lasso over tasks.

``N(W) = s ||W||_1 + (1 - s) sum_j ||W_j||_2`` with ``s = l1_share``: rows
(features) are selected jointly and, inside a kept row, single tasks may
still be zero.  ``s = 1`` is ``l1``, ``s = 0`` is ``l21``.  Row ``j`` of
``h`` is ``f_j (lam N_j(w) + mu/2 ||w||^2)``.

* prox in the metric ``diag(H)``: the soft threshold by ``s lam f`` then the
  group shrinkage by ``(1 - s) lam f`` (the optimality conditions of the row
  give ``w_t ((H_t + mu) + (1 - s) lam / ||w||) = ST(a_t, s lam)``);
* zero row iff ``||ST(u, s lam f)|| <= (1 - s) lam f``, so the dual norm is
  the root ``tau`` of ``||ST(u, s tau f)|| = (1 - s) tau f`` (convex and
  decreasing in ``tau``: Newton from 0);
* conjugate ``(||ST(u, s lam f)|| - (1 - s) lam f)_+^2 / (2 mu f)``.

With ``positive``, ``a`` and ``u`` enter through their positive parts (a
one-sided soft threshold).
"""
from collections import namedtuple

import numpy as np

from ._base import register_penalty
from ._compiled import (implements, row_conjugate, row_dual_norm, row_prox,
                        row_screen, row_slope, row_value, row_violation)
from ._rows import RowSeparable, group_shrink, register_row_record, shrunk_square

__all__ = ["SparseGroup"]

SparseGroupRecord = namedtuple("SparseGroupRecord",
                               ["lam", "mu", "factor", "positive", "share"])


@implements(row_prox, SparseGroupRecord)
def _row_prox(p, j, a, H, out):
    def impl(p, j, a, H, out):
        f = p.factor[j]
        thr = p.share * p.lam * f
        for t in range(a.size):  # the soft threshold, in place in out
            if a[t] > thr:
                out[t] = a[t] - thr
            elif a[t] < -thr and not p.positive:
                out[t] = a[t] + thr
            else:
                out[t] = 0.0
        group_shrink(out, H, (1.0 - p.share) * p.lam * f, p.mu * f, out)
    return impl


@implements(row_value, SparseGroupRecord)
def _row_value(p, j, w):
    def impl(p, j, w):
        l1 = sq = 0.0
        for t in range(w.size):
            l1 += abs(w[t])
            sq += w[t] * w[t]
        out = 0.5 * p.mu * sq
        if p.lam > 0.0:
            out += p.lam * (p.share * l1 + (1.0 - p.share) * np.sqrt(sq))
        return p.factor[j] * out
    return impl


@implements(row_dual_norm, SparseGroupRecord)
def _row_dual_norm(p, j, u):
    def impl(p, j, u):
        f, s = p.factor[j], p.share
        size = np.empty(u.size)
        top = 0.0
        for t in range(u.size):
            size[t] = max(u[t], 0.0) if p.positive else abs(u[t])
            top = max(top, size[t])
        if top == 0.0:
            return 0.0
        if f <= 0.0:
            return np.inf
        if s >= 1.0:
            return top / f
        # g(tau) = ||(size - s f tau)_+|| - (1 - s) f tau: Newton from 0
        tau = 0.0
        for _ in range(100):
            sq = lin = 0.0
            for t in range(u.size):
                excess = size[t] - s * f * tau
                if excess > 0.0:
                    sq += excess * excess
                    lin += excess
            norm = np.sqrt(sq)
            g = norm - (1.0 - s) * f * tau
            slope = -(s * f * lin / norm if norm > 0.0 else 0.0) - (1.0 - s) * f
            step = g / slope
            tau -= step
            if g <= 0.0 or -step <= 1e-15 * tau:
                break
        return tau
    return impl


@implements(row_conjugate, SparseGroupRecord)
def _row_conjugate(p, j, u):
    def impl(p, j, u):
        f = p.factor[j]
        thr = p.share * p.lam * f
        sq = 0.0
        for t in range(u.size):
            excess = (u[t] if p.positive else abs(u[t])) - thr
            if excess > 0.0:
                sq += excess * excess
        return shrunk_square(np.sqrt(sq), (1.0 - p.share) * p.lam * f, p.mu * f)
    return impl


@implements(row_violation, SparseGroupRecord)
def _row_violation(p, j, w, g):
    def impl(p, j, w, g):
        f = p.factor[j]
        lam1, lam2, mu = p.share * p.lam * f, (1.0 - p.share) * p.lam * f, p.mu * f
        sq_w = 0.0
        for t in range(w.size):
            sq_w += w[t] * w[t]
        norm_w = np.sqrt(sq_w)
        sq = 0.0
        for t in range(w.size):
            r = g[t] + mu * w[t]
            if norm_w > 0.0:
                r += lam2 * w[t] / norm_w
                if w[t] != 0.0:
                    v = abs(r + lam1 * np.sign(w[t]))
                elif p.positive:
                    v = max(-r - lam1, 0.0)
                else:
                    v = max(abs(r) - lam1, 0.0)
            else:  # what of -r the l1 ball leaves for the group ball
                v = max(-r - lam1, 0.0) if p.positive else max(abs(r) - lam1, 0.0)
            sq += v * v
        return np.sqrt(sq) if norm_w > 0.0 else max(np.sqrt(sq) - lam2, 0.0)
    return impl


@implements(row_slope, SparseGroupRecord)
def _row_slope(p, j, w, delta, side):
    def impl(p, j, w, delta, side):
        sq_w = dots = sq_d = l1 = 0.0
        for t in range(w.size):
            sq_w += w[t] * w[t]
            dots += w[t] * delta[t]
            sq_d += delta[t] * delta[t]
            l1 += (np.sign(w[t]) * delta[t] if w[t] != 0.0
                   else side * abs(delta[t]))
        group = dots / np.sqrt(sq_w) if sq_w > 0.0 else side * np.sqrt(sq_d)
        return p.factor[j] * (p.mu * dots + p.lam * (
            p.share * l1 + (1.0 - p.share) * group))
    return impl


@implements(row_screen, SparseGroupRecord)
def _row_screen(p, j, u, radius, curv):
    def impl(p, j, u, radius, curv):
        # entrywise |u*_t| <= |u_t| + radius sqrt(curv_t), and the zero test
        # ||ST(u*, s lam f)|| < (1 - s) lam f is monotone in each |u*_t|
        f = p.factor[j]
        thr = p.share * p.lam * f
        sq = top = 0.0
        for t in range(u.size):
            bound = max((u[t] if p.positive else abs(u[t]))
                        + radius * np.sqrt(curv[t]), 0.0)
            top = max(top, bound)
            if bound > thr:
                sq += (bound - thr) * (bound - thr)
        if p.share >= 1.0:
            return top < p.lam * f
        return np.sqrt(sq) < (1.0 - p.share) * p.lam * f
    return impl


register_row_record(SparseGroupRecord)


@register_penalty
class SparseGroup(RowSeparable):
    """``N(W) = s ||W||_1 + (1 - s) sum_j ||W_j||_2``: sparse-group lasso.

    Parameters
    ----------
    alpha, l1_ratio, penalty_factor, positive
        As for :class:`~mtlinear.penalties.L1`.
    l1_share : float in [0, 1], default=0.5
        ``s``, the share of the entrywise l1 norm in ``N``.
    """

    name = "sparse_group"
    options = {**RowSeparable.options, "l1_share": 0.5}
    Record = SparseGroupRecord

    def __init__(self, alpha=1.0, l1_ratio=1.0, penalty_factor=None,
                 positive=False, l1_share=0.5):
        self.l1_share = l1_share
        super().__init__(alpha, l1_ratio, penalty_factor, positive)

    def _check_options(self):
        super()._check_options()
        share = self.l1_share
        if isinstance(share, bool) or not isinstance(share, (int, float, np.number)) \
                or not 0.0 <= float(share) <= 1.0:
            raise ValueError(f"l1_share must be a float in [0, 1]; got {share!r}.")
        self.l1_share = float(share)

    def _record_fields(self):
        return (self.l1_share,)
