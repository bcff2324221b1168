"""Solvers under benchmark, the timing protocol, and the worker process.

Every solver is a :class:`Solver`: ``prepare(problem)`` converts the data to
the form the library takes (untimed: the array a user would already hold),
``fit(prepared, alpha, tol, penalty)`` is the timed call and returns ``W``
(d, T).  Each is judged by :mod:`_gap`, never by its own criterion.

Protocol (:func:`tune_and_time`), the same for every solver: tolerances
``start_tol * 10**-k``, k = 0, 1, ..., are tried in turn until the common
relative gap of the returned ``W`` is at most ``target``, then the half step
back (``sqrt(10)`` looser) is tried too; the loosest passing tolerance is
then timed ``repeats`` times (the passing run counts as one), or more
often for a fast solve (until the runs total ``min_time``, 1 s, at most
1000 of them: a median of three millisecond solves is noise), and the median
kept.  An untimed warm-up call at the starting tolerance comes first, so
that Numba compilation or cache loading is never timed as warm.

Run as a script, this module is the worker that the benchmark starts in a
fresh process or in a peer's own environment (celer needs scikit-learn < 1.7;
spams comes as a separate binary package); it imports only numpy and the one
library it runs::

    python _peers.py tune  DIR SOLVER PENALTY ALPHA OUT.json [--repeats ...]
    python _peers.py first DIR SOLVER PENALTY ALPHA OUT.json --tol TOL
"""
import argparse
import json
import time
import warnings

import numpy as np

from _gap import Problem, gradient, relative_gap

TARGET = 1e-6
STEP = 10 ** -0.5
MAX_ITER = 100_000


class Solver:
    """One solver: a name, the environment it runs in, what it supports."""

    env = "main"           # "main", "celer" or "spams": where it is imported
    penalties = ("l21",)
    stacked = False         # handles the stacked (heterogeneous) layout
    start_tol = 1e-1
    peer = True             # False for mtlinear itself

    def __init__(self, name):
        self.name = name

    def supports(self, problem, penalty):
        return penalty in self.penalties and (problem.shared or self.stacked)

    def prepare(self, problem):
        return problem

    def fit(self, prepared, alpha, tol, penalty):
        raise NotImplementedError

    def library_version(self):
        return ""


# ----------------------------------------------------------------- mtlinear
class MtlinearSolver(Solver):
    penalties = ("l21", "trace")
    stacked = True
    peer = False

    def __init__(self, name, solver):
        super().__init__(name)
        self.solver = solver
        if solver == "bcd":
            self.penalties = ("l21",)

    def prepare(self, problem):
        if problem.shared:
            return problem.X, problem.Y, None
        return np.column_stack([problem.X, problem.task]), problem.Y, -1

    def fit(self, prepared, alpha, tol, penalty):
        from mtlinear import MultiTaskRegressor
        X, Y, task_col = prepared
        model = MultiTaskRegressor(penalty=penalty, alpha=alpha, tol=tol,
                                   solver=self.solver, task_col=task_col,
                                   max_iter=MAX_ITER)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(X, Y)
        return model.coef_.T

    def library_version(self):
        import mtlinear
        return f"mtlinear {mtlinear.__version__}"


# ----------------------------------------------------------- multi-task Lasso
class MultiTaskLassoPeer(Solver):
    """A library's scikit-learn-style ``MultiTaskLasso`` (same objective)."""

    def __init__(self, name, module, env="main", **options):
        super().__init__(name)
        self.module, self.env, self.options = module, env, options

    def fit(self, problem, alpha, tol, penalty):
        import importlib
        estimator = importlib.import_module(self.module).MultiTaskLasso
        model = estimator(alpha=alpha, tol=tol, **self.options)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(problem.X, problem.Y)
        return model.coef_.T

    def library_version(self):
        import importlib
        import sklearn
        top = self.module.split(".")[0]
        version = importlib.import_module(top).__version__
        if top == "sklearn":
            return f"scikit-learn {version}"
        if top == "celer":  # in its own environment, with an older scikit-learn
            return f"celer {version} (scikit-learn {sklearn.__version__})"
        return f"{top} {version}"


class SpamsFista(Solver):
    """spams.fistaFlat, square loss, ``l1l2`` (rows) or ``trace-norm``.

    spams minimizes ``0.5 ||Y - X W||_F^2 + lambda1 psi(W)`` without an
    intercept and without ``1/n``: we centre X and Y inside the timed call and
    pass ``lambda1 = n * alpha``, which is our objective times ``n``.  X is
    given in Fortran order (untimed), which spams requires.
    """

    env = "spams"
    penalties = ("l21", "trace")

    def prepare(self, problem):
        return (np.asfortranarray(problem.X), np.asfortranarray(problem.Y))

    def fit(self, prepared, alpha, tol, penalty):
        import spams
        X, Y = prepared
        Xc = np.asfortranarray(X - X.mean(axis=0))
        Yc = np.asfortranarray(Y - Y.mean(axis=0))
        W0 = np.zeros((X.shape[1], Y.shape[1]), order="F")
        regul = {"l21": "l1l2", "trace": "trace-norm"}[penalty]
        return spams.fistaFlat(Yc, Xc, W0, loss="square", regul=regul,
                               lambda1=X.shape[0] * alpha, tol=tol,
                               max_it=MAX_ITER, it0=10, numThreads=-1)

    def library_version(self):
        from importlib.metadata import version
        import spams  # noqa: F401
        return f"spams-bin {version('spams-bin')}"


# --------------------------------------------------- trace-norm numpy baseline
class NumpyFistaTrace(Solver):
    """Plain FISTA with an SVD prox for the trace norm, in numpy.

    Centred data, step ``1 / L`` with ``L`` the largest eigenvalue of the
    per-task ``Xc_t^T Xc_t / n_t`` (power iteration, 5% margin), gradient
    restart (O'Donoghue & Candes), stops when the common relative gap
    (checked every 10 iterations) is at most ``tol``.  No Gram statistics, no
    active subspace: the baseline the issue names.
    """

    penalties = ("trace",)
    stacked = True
    start_tol = TARGET  # its stopping rule is the common gap itself

    def fit(self, problem, alpha, tol, penalty):
        centred, inv_n = _centred_problem(problem)
        L = 1.05 * _lipschitz(centred, inv_n)
        d, T = problem.X.shape[1], problem.n_tasks
        W = np.zeros((d, T))
        V, t_k = W.copy(), 1.0
        for it in range(MAX_ITER):
            G = gradient(centred, V) * inv_n
            U, s, Vt = np.linalg.svd(V - G / L, full_matrices=False)
            W_new = (U * np.maximum(s - alpha / L, 0.0)) @ Vt
            if np.vdot(V - W_new, W_new - W) > 0:  # restart
                t_k = 1.0
            t_next = (1 + np.sqrt(1 + 4 * t_k * t_k)) / 2
            V = W_new + (t_k - 1) / t_next * (W_new - W)
            W, t_k = W_new, t_next
            if it % 10 == 9 and relative_gap(problem, W, alpha, "trace") <= tol:
                break
        return W

    def library_version(self):
        return f"numpy {np.__version__}"


def _centred_problem(problem):
    """Task-wise centred copy and the per-column factor ``1 / n_t``."""
    if problem.shared:
        n = problem.X.shape[0]
        return (Problem(problem.name, problem.X - problem.X.mean(axis=0),
                        problem.Y - problem.Y.mean(axis=0)),
                np.full(problem.n_tasks, 1.0 / n))
    ptr, task = problem.ptr, problem.task
    sizes = np.diff(ptr).astype(float)
    Xc = problem.X - (np.add.reduceat(problem.X, ptr[:-1]) / sizes[:, None])[task]
    yc = problem.Y - (np.add.reduceat(problem.Y, ptr[:-1]) / sizes)[task]
    return Problem(problem.name, Xc, yc, task), 1.0 / sizes


def _lipschitz(centred, inv_n, n_iter=30):
    """Largest eigenvalue of ``Xc_t^T Xc_t / n_t`` over tasks (power method)."""
    rng = np.random.default_rng(0)
    V = rng.standard_normal((centred.X.shape[1], centred.n_tasks))
    saved, centred.Y = centred.Y, np.zeros_like(centred.Y)
    try:
        for _ in range(n_iter):
            V /= np.linalg.norm(V, axis=0)
            V = gradient(centred, V) * inv_n
        return np.linalg.norm(V, axis=0).max()
    finally:
        centred.Y = saved


SOLVERS = {s.name: s for s in [
    MtlinearSolver("mtlinear-bcd", "bcd"),
    MtlinearSolver("mtlinear-fista", "fista"),
    MtlinearSolver("mtlinear-auto", "auto"),
    MultiTaskLassoPeer("sklearn", "sklearn.linear_model", max_iter=MAX_ITER),
    MultiTaskLassoPeer("skglm", "skglm", max_iter=1000, max_epochs=MAX_ITER),
    MultiTaskLassoPeer("celer", "celer", env="celer", max_iter=1000,
                       max_epochs=MAX_ITER),
    SpamsFista("spams"),
    NumpyFistaTrace("numpy-fista"),
]}


# ------------------------------------------------------------------ protocol
def time_gradient(problem, repeats=7):
    """Median time of one ``X^T (X W - Y)`` (dense random ``W``)."""
    W = np.random.default_rng(0).standard_normal((problem.X.shape[1],
                                                  problem.n_tasks))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        gradient(problem, W)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def tune_and_time(solver, problem, alpha, penalty, target=TARGET, repeats=3,
                  cap=60.0, budget=None, min_tol=1e-14, progress=None,
                  min_time=1.0):
    """Loosest tolerance reaching ``target``, and its warm median time.

    ``cap``: give up tuning once one call takes longer (``reached`` False).
    ``budget``: fewer timed repeats (at least one) when ``repeats`` calls at
    the chosen tolerance would exceed it.  ``min_time``: more repeats (at
    most 1000) when ``repeats`` calls would take less.
    ``progress(partial_result)`` is called after each tuning call (the worker
    saves it, in case it is killed).
    """
    prepared = solver.prepare(problem)
    solver.fit(prepared, alpha, solver.start_tol, penalty)  # warm-up
    tuning = []

    def attempt(tol):
        t0 = time.perf_counter()
        W = solver.fit(prepared, alpha, tol, penalty)
        elapsed = time.perf_counter() - t0
        gap = float(relative_gap(problem, W, alpha, penalty))
        tuning.append({"tol": tol, "time": elapsed, "rel_gap": gap})
        if progress is not None:
            progress({"tol": tol, "rel_gap": gap, "reached": False,
                      "tuning": tuning, "times": [elapsed], "median": elapsed})
        return W, elapsed, gap

    tol = solver.start_tol
    W, elapsed, gap = attempt(tol)
    while gap > target and elapsed <= cap and tol * STEP ** 2 >= min_tol:
        tol *= STEP ** 2
        W, elapsed, gap = attempt(tol)
    if gap <= target and len(tuning) > 1:  # the half step in between
        looser = attempt(tol / STEP)
        if looser[2] <= target:
            tol = tol / STEP
            W, elapsed, gap = looser
    result = {"tol": tol, "rel_gap": gap, "reached": gap <= target,
              "tuning": tuning, "nnz_rows": int((np.abs(W).sum(axis=1) > 0).sum())}
    if not result["reached"]:
        result.update(times=[elapsed], median=elapsed)
        return result
    times = [elapsed]
    n_runs = repeats
    if budget is not None:
        n_runs = max(1, min(repeats, int(budget / max(elapsed, 1e-9))))
    n_runs = max(n_runs, min(int(min_time / max(elapsed, 1e-9)), 1000))
    while len(times) < n_runs:
        t0 = time.perf_counter()
        solver.fit(prepared, alpha, tol, penalty)
        times.append(time.perf_counter() - t0)
    result.update(times=times, median=float(np.median(times)))
    return result


def _rss_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def first_call(solver, problem, alpha, penalty, tol):
    """Time the first call in this (fresh) process and its peak extra memory.

    Memory: resident set size high-water mark during the call minus the
    resident size before it (Linux ``/proc``; the mark is reset through
    ``clear_refs`` so that loading the data does not count).
    """
    t0 = time.perf_counter()
    solver.library_version()  # imports the library
    import_time = time.perf_counter() - t0
    prepared = solver.prepare(problem)
    before = _rss_kib("VmRSS")
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    t0 = time.perf_counter()
    W = solver.fit(prepared, alpha, tol, penalty)
    elapsed = time.perf_counter() - t0
    peak = _rss_kib("VmHWM")
    return {"first_call": elapsed, "import": import_time,
            "peak_mib": max(peak - before, 0) / 1024,
            "rel_gap": float(relative_gap(problem, W, alpha, penalty))}


def _main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["tune", "first"])
    parser.add_argument("data")
    parser.add_argument("solver", choices=sorted(SOLVERS))
    parser.add_argument("penalty")
    parser.add_argument("alpha", type=float)
    parser.add_argument("out")
    parser.add_argument("--tol", type=float)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cap", type=float, default=60.0)
    parser.add_argument("--budget", type=float)
    args = parser.parse_args(argv)
    solver = SOLVERS[args.solver]
    problem = Problem.load(args.data)

    def save(result):
        with open(args.out, "w") as f:
            json.dump(result, f)

    if args.mode == "first":
        result = first_call(solver, problem, args.alpha, args.penalty, args.tol)
        save(dict(result, version=solver.library_version()))
        return
    base = {"grad_time": time_gradient(problem),
            "version": solver.library_version()}
    result = tune_and_time(solver, problem, args.alpha, args.penalty,
                           repeats=args.repeats, cap=args.cap,
                           budget=args.budget,
                           progress=lambda partial: save(dict(base, **partial)))
    save(dict(base, **result))


if __name__ == "__main__":
    _main()
