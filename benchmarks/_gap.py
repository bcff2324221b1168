"""The one judge of every benchmarked solver: objective and duality gap.

Written from the maths, independently of mtlinear's own gap code.  Both
layouts are covered by one formula over tasks ``t`` with samples ``I_t``
(``n_t = |I_t|``; the shared design is ``I_t = all rows`` for every task)::

    P(W) = sum_t ||yc_t - Xc_t w_t||^2 / (2 n_t) + alpha * Omega(W)

where ``Xc_t, yc_t`` are task ``t``'s rows centred by their means: the best
intercept for any ``W`` is ``b_t = mean(y_t) - mean(X_t) w_t``, so a solver is
judged on its ``W`` with the optimal intercepts (never worse than its own).

Dual.  With residuals ``r_t = yc_t - Xc_t w_t`` and any scale ``s`` with
``Omega°(G s) <= alpha``, ``G[:, t] = Xc_t^T r_t / n_t`` (``Omega°`` the dual
norm: largest row norm for l21, largest absolute entry for l1, spectral norm
for trace), the point ``theta_t = s r_t / n_t`` is dual feasible and

    D(s) = sum_t <yc_t, theta_t> - n_t ||theta_t||^2 / 2 = s A - s^2 B,
    A = sum_t <yc_t, r_t> / n_t,   B = sum_t ||r_t||^2 / (2 n_t).

We take the best ``s`` in ``[0, min(1, alpha / Omega°(G))]`` (a valid, slightly
tighter certificate than the plain rescaling).  ``gap = P(W) - D(s) >=
P(W) - P(W*)``.  Relative gap: ``gap / P(0)`` with ``P(0) = sum_t ||yc_t||^2 /
(2 n_t)``, the same normalisation as mtlinear's ``tol`` and close to
scikit-learn's (which divides by ``||Y||^2 / n``, i.e. ``2 P(0)`` when ``Y`` is
centred).

Only numpy: this module is also imported by the benchmark's worker in the
separate environments of the peers (celer, spams).
"""
import numpy as np

__all__ = ["Problem", "penalty_value", "dual_norm", "primal", "duality_gap",
           "relative_gap", "null_objective", "alpha_max", "gradient"]


class Problem:
    """Benchmark data in one of the two layouts.

    Shared design: ``X`` (n, d), ``Y`` (n, T), ``task=None``.
    Stacked: ``X`` (n, d), ``Y`` (n,), ``task`` (n,) integer labels 0..T-1
    with rows grouped by task (sorted).
    """

    def __init__(self, name, X, Y, task=None):
        self.name = name
        self.X = np.ascontiguousarray(X, dtype=np.float64)
        self.Y = np.asarray(Y, dtype=np.float64)
        self.task = None if task is None else np.asarray(task, dtype=np.int64)
        if self.task is None:
            self.Y = self.Y.reshape(len(self.Y), -1)
            self.n_tasks = self.Y.shape[1]
            self.ptr = None
        else:
            if np.any(np.diff(self.task) < 0):
                raise ValueError("stacked rows must be grouped by task (sorted)")
            self.n_tasks = int(self.task.max()) + 1
            self.ptr = np.searchsorted(self.task, np.arange(self.n_tasks + 1))

    @property
    def shared(self):
        return self.task is None

    @property
    def shape(self):
        return self.X.shape[0], self.X.shape[1], self.n_tasks

    def save(self, directory):
        """Write the arrays as ``.npy`` files (for a worker process)."""
        np.save(f"{directory}/X.npy", self.X)
        np.save(f"{directory}/Y.npy", self.Y)
        if self.task is not None:
            np.save(f"{directory}/task.npy", self.task)
        with open(f"{directory}/name.txt", "w") as f:
            f.write(self.name)

    @classmethod
    def load(cls, directory):
        import os
        task = (np.load(f"{directory}/task.npy")
                if os.path.exists(f"{directory}/task.npy") else None)
        with open(f"{directory}/name.txt") as f:
            name = f.read()
        return cls(name, np.load(f"{directory}/X.npy"),
                   np.load(f"{directory}/Y.npy"), task)


def penalty_value(W, penalty):
    """``Omega(W)`` for ``W`` of shape (d, T)."""
    if penalty == "l21":
        return np.sqrt((W ** 2).sum(axis=1)).sum()
    if penalty == "l1":
        return np.abs(W).sum()
    if penalty == "trace":
        return np.linalg.svd(W, compute_uv=False).sum()
    raise ValueError(f"unknown penalty {penalty!r}")


def dual_norm(G, penalty):
    """``Omega°(G)``: the dual norm of :func:`penalty_value`."""
    if penalty == "l21":
        return np.sqrt((G ** 2).sum(axis=1)).max()
    if penalty == "l1":
        return np.abs(G).max()
    if penalty == "trace":
        return np.linalg.svd(G, compute_uv=False)[0]
    raise ValueError(f"unknown penalty {penalty!r}")


def _centred_targets(problem):
    """``yc`` in the layout's shape and the per-task sizes."""
    Y = problem.Y
    if problem.shared:
        return Y - Y.mean(axis=0), np.full(problem.n_tasks, float(len(Y)))
    sizes = np.diff(problem.ptr).astype(float)
    means = np.add.reduceat(Y, problem.ptr[:-1]) / sizes
    return Y - means[problem.task], sizes


def _residuals(problem, W):
    """Centred residuals ``r_t = yc_t - Xc_t w_t`` (optimal intercepts)."""
    X = problem.X
    if problem.shared:
        R = problem.Y - X @ W
        return R - R.mean(axis=0)
    pred = np.einsum("ij,ij->i", X, W.T[problem.task])
    R = problem.Y - pred
    sizes = np.diff(problem.ptr)
    return R - (np.add.reduceat(R, problem.ptr[:-1]) / sizes)[problem.task]


def _scatter(problem, V):
    """``G[:, t] = X_t^T V_t``; ``V`` per row (stacked) or (n, T) (shared)."""
    if problem.shared:
        return problem.X.T @ V
    G = np.empty((problem.X.shape[1], problem.n_tasks))
    for t in range(problem.n_tasks):
        lo, hi = problem.ptr[t], problem.ptr[t + 1]
        G[:, t] = problem.X[lo:hi].T @ V[lo:hi]
    return G


def gradient(problem, W):
    """``X^T (X W - Y)`` per task, uncentred and unscaled: the time unit."""
    if problem.shared:
        return problem.X.T @ (problem.X @ W - problem.Y)
    pred = np.einsum("ij,ij->i", problem.X, W.T[problem.task])
    return _scatter(problem, pred - problem.Y)


def _terms(problem, W):
    """Loss, ``A``, ``B`` and ``G`` of the module docstring."""
    yc, sizes = _centred_targets(problem)
    R = _residuals(problem, W)
    if problem.shared:
        per_row = 1.0 / sizes[0]
        A = (yc * R).sum() * per_row
        B = (R ** 2).sum() * per_row / 2
        G = _scatter(problem, R) * per_row  # centred X: R sums to 0 per task
    else:
        inv = 1.0 / sizes[problem.task]
        A = (yc * R * inv).sum()
        B = (R ** 2 * inv).sum() / 2
        G = _scatter(problem, R * inv)
    return B, A, G


def primal(problem, W, alpha, penalty="l21"):
    """``P(W)`` with the best intercepts."""
    loss, _, _ = _terms(problem, W)
    return loss + alpha * penalty_value(W, penalty)


def duality_gap(problem, W, alpha, penalty="l21"):
    """``(P(W), gap)`` with the dual point of the module docstring."""
    B, A, G = _terms(problem, W)
    P = B + alpha * penalty_value(W, penalty)
    norm = dual_norm(G, penalty)
    s_max = 1.0 if norm <= alpha else alpha / norm
    s = min(max(A / (2 * B), 0.0), s_max) if B > 0 else s_max
    return P, P - (s * A - s * s * B)


def null_objective(problem):
    """``P(0)`` with the best intercepts: the relative gap's denominator."""
    yc, sizes = _centred_targets(problem)
    if problem.shared:
        return (yc ** 2).sum() / (2 * sizes[0])
    return (yc ** 2 / sizes[problem.task]).sum() / 2


def relative_gap(problem, W, alpha, penalty="l21"):
    """``gap / P(0)``."""
    return duality_gap(problem, W, alpha, penalty)[1] / null_objective(problem)


def alpha_max(problem, penalty="l21"):
    """Smallest ``alpha`` with ``W = 0`` optimal: ``Omega°(G(0))``."""
    W0 = np.zeros((problem.X.shape[1], problem.n_tasks))
    return float(dual_norm(_terms(problem, W0)[2], penalty))
