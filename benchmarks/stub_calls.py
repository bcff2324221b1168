"""What a call through a penalty's compiled stub costs per feature row.

The compiled solvers reach each penalty's row formulas through the
overloaded stubs of ``mtlinear.penalties._compiled`` (one call per row and
epoch for ``row_prox``; one per row and gap evaluation for the others).  This
script times one l21 row update, ``T = 5`` tasks, three ways in one process:

* ``direct``: the shared kernel ``group_shrink`` called with scalars (what a
  penalty-specific solver would do);
* ``stub``: through the ``row_prox`` stub with the penalty's record (what the
  solvers do, see ``mtlinear._bcd_epochs._row_step``);
* ``stub, work views``: the same with the scratch rows as views of one (3, T)
  array sliced per row, as ``_row_step`` took them before it was given three
  separate rows (the difference is what that change saved).

Usage::

    python benchmarks/stub_calls.py
"""
import time

import numpy as np
from numba import njit

from mtlinear.penalties import make_penalty
from mtlinear.penalties._compiled import row_prox
from mtlinear.penalties._rows import group_shrink

N_ROWS = 10
N_CALLS = 10 ** 6


@njit
def _direct(W, g, L, n, p):
    old, a, new = np.empty(W.shape[1]), np.empty(W.shape[1]), np.empty(W.shape[1])
    for k in range(n):
        j = k % W.shape[0]
        for t in range(W.shape[1]):
            old[t] = W[j, t]
            a[t] = L[t] * old[t] - g[t]
        group_shrink(a, L, p.lam * p.factor[j], p.mu * p.factor[j], new)
        for t in range(W.shape[1]):
            W[j, t] = new[t]


@njit
def _stub(W, g, L, n, p):
    old, a, new = np.empty(W.shape[1]), np.empty(W.shape[1]), np.empty(W.shape[1])
    for k in range(n):
        j = k % W.shape[0]
        for t in range(W.shape[1]):
            old[t] = W[j, t]
            a[t] = L[t] * old[t] - g[t]
        row_prox(p, j, a, L, new)
        for t in range(W.shape[1]):
            W[j, t] = new[t]


@njit
def _stub_work_views(W, g, L, n, p):
    work = np.empty((3, W.shape[1]))
    for k in range(n):
        j = k % W.shape[0]
        old, a, new = work[0], work[1], work[2]
        for t in range(W.shape[1]):
            old[t] = W[j, t]
            a[t] = L[t] * old[t] - g[t]
        row_prox(p, j, a, L, new)
        for t in range(W.shape[1]):
            W[j, t] = new[t]


def main():
    T = 5
    W = np.random.default_rng(0).standard_normal((N_ROWS, T))
    g, L = np.full(T, 0.3), np.full(T, 2.0)
    record = make_penalty("l21", 0.05).record(N_ROWS)
    for name, kernel in [("direct", _direct), ("stub", _stub),
                         ("stub, work views", _stub_work_views)]:
        kernel(W, g, L, 10, record)  # compile
        best = np.inf
        for _ in range(3):
            start = time.perf_counter()
            kernel(W, g, L, N_CALLS, record)
            best = min(best, time.perf_counter() - start)
        print(f"{name:18s} {best / N_CALLS * 1e9:6.1f} ns per row")


if __name__ == "__main__":
    main()
