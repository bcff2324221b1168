"""Logistic-loss solvers side by side, judged by one duality gap.

``MultiTaskClassifier`` (``solver="auto"``: proximal Newton for l2 / l1 /
l21, FISTA for the trace norm; and ``solver="fista"``) against scikit-learn's
``LogisticRegression`` fitted task by task (``lbfgs``, ``liblinear``,
``saga``) at ``C_t = 1 / (alpha n_t)``, the same objective (see the
docstring of :class:`mtlinear.MultiTaskClassifier`).

Every solver is timed to a common **relative duality gap** (``--targets``),
computed here by :func:`relative_gap`, written from the maths with numpy
only: per task the mean logistic loss with intercept, the dual point
``theta_i = y_i sigmoid(-y_i z_i) / n_t`` with the heavier class shrunk so
that ``sum theta = 0`` per task, scaled into the dual-norm ball for l1 / l21
(the gap is relative to the objective at ``W = 0`` with the best
intercepts).  Each solver's own ``tol`` is tuned: starting from its default,
divided by 10 until the gap is reached; then the warm median of
``--repeats`` fits at that ``tol``.  The first fit in a fresh process (Numba
cache load included, imports excluded) is timed separately in a subprocess.

Problems: the four newsgroup tasks (stacked layout, sparse; from the path
given, skipped when missing), a dense shared design with five tasks, and a
dense stacked problem with tasks of different sizes.

Usage (from the repository root)::

    python benchmarks/classifier.py --newsgroup ../shared/data/newsgroup
    python benchmarks/classifier.py --quick     # dense problems, one target
    python benchmarks/classifier.py --solvers mtlinear-auto mtlinear-fista
"""
import argparse
import glob
import os
import subprocess
import sys
import time
import warnings

import numpy as np
import scipy.io as sio
import scipy.sparse as sp
from scipy.special import expit, xlogy

from _gap import dual_norm, penalty_value  # the squared-loss judge's norms

HERE = os.path.dirname(os.path.abspath(__file__))


# ---------------------------------------------------------------- problems
def _sublinear_tf(X):
    X = X.copy()
    X.data = 1.0 + np.log(X.data)
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
    return sp.csr_matrix(sp.diags(1.0 / np.where(norms > 0, norms, 1.0)) @ X)


def newsgroup(path):
    """Per-task ``(X_t, y_t in {-1, 1})``; the four files of ``path``."""
    files = sorted(glob.glob(os.path.join(path, "*.mat")))
    if not files:
        return None
    tasks = []
    for f in files:
        m = sio.loadmat(f)
        tasks.append((_sublinear_tf(sp.csr_matrix(m["fea"], dtype=float)),
                      np.where(m["gnd"].ravel() == 2, 1.0, -1.0)))
    return tasks


def dense_shared(n=2000, d=300, T=5, seed=0):
    """One Gaussian ``X`` (correlated columns) for every task, a shared
    support of 20 rows, logistic noise."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) + 0.5 * rng.standard_normal((n, 1))
    W = np.zeros((d, T))
    W[rng.choice(d, 20, replace=False)] = rng.standard_normal((20, T))
    Z = X @ W / np.sqrt(20) * 3 + rng.logistic(size=(n, T))
    return [(X, np.where(Z[:, t] > 0, 1.0, -1.0)) for t in range(T)]


def dense_stacked(sizes=(300, 800, 1500, 500), d=500, seed=1):
    """Tasks with their own rows and sizes, related weights."""
    rng = np.random.default_rng(seed)
    w = np.zeros(d)
    w[:30] = rng.standard_normal(30)
    tasks = []
    for n_t in sizes:
        X = rng.standard_normal((n_t, d))
        wt = w + 0.3 * rng.standard_normal(d) * (w != 0)
        z = X @ wt / np.sqrt(30) * 3 + 0.5 + rng.logistic(size=n_t)
        tasks.append((X, np.where(z > 0, 1.0, -1.0)))
    return tasks


def load_problem(name, newsgroup_path):
    if name == "newsgroup":
        return newsgroup(newsgroup_path)
    return {"dense-shared": dense_shared, "dense-stacked": dense_stacked}[name]()


LABELS = {"newsgroup": "newsgroup (4 tasks, 1545-1875 x 2000, sparse)",
          "dense-shared": "dense shared X (2000 x 300, 5 tasks)",
          "dense-stacked": "dense stacked (300-1500 x 500, 4 tasks)"}


# ---------------------------------------------------------------- the judge
def null_objective(tasks):
    """Objective at ``W = 0`` with the best intercepts (class entropies)."""
    total = 0.0
    for _, y in tasks:
        p = np.mean(y > 0)
        total -= xlogy(p, p) + xlogy(1 - p, 1 - p)
    return total


def relative_gap(tasks, coef, intercept, penalty, alpha):
    """``(P - D) / P(0)`` for ``sum_t mean_i log(1 + exp(-y z)) + alpha R(W)``."""
    W = np.asarray(coef, dtype=float).T  # (d, T)
    penalty_term = 0.5 * np.sum(W * W) if penalty == "l2" else penalty_value(W, penalty)
    primal, entropy, U = alpha * penalty_term, 0.0, np.empty_like(W)
    thetas = []
    for t, (X, y) in enumerate(tasks):
        z = np.asarray(X @ W[:, t]).ravel() + intercept[t]
        primal += np.mean(np.logaddexp(0.0, -y * z))
        s = expit(-y * z)
        pos, neg = s[y > 0].sum(), s[y < 0].sum()  # balance the classes
        s = np.where(y > 0, min(1.0, neg / pos), min(1.0, pos / neg)) * s
        U[:, t] = np.asarray(X.T @ (y * s)).ravel() / len(y)
        thetas.append(s)
    if penalty == "l2":
        scale, conj = 1.0, np.sum(U * U) / (2 * alpha)
    else:
        scale, conj = min(1.0, alpha / dual_norm(U, penalty)), 0.0
    for (_, y), s in zip(tasks, thetas):
        u = scale * s
        entropy -= np.mean(xlogy(u, u) + xlogy(1 - u, 1 - u))
    return (primal - (entropy - conj)) / null_objective(tasks)


# ---------------------------------------------------------------- solvers
# liblinear penalizes the intercept like a weight (``intercept_scaling``):
# with l2 a large scaling makes that negligible; with l1 it makes liblinear's
# coordinate descent crawl (minutes without reaching 1e-6 on newsgroup), and a
# small one solves another problem, so liblinear is left out for l1.
SK_SOLVERS = {"l2": ("lbfgs", "liblinear", "saga"), "l1": ("saga",)}


def mtlinear_data(tasks):
    """``(X, y, task_col)`` for MultiTaskClassifier: the shared layout when
    every task has the same ``X``, stacked otherwise (built once, untimed)."""
    from mtlinear import stack_tasks
    if all(X is tasks[0][0] for X, _ in tasks):
        return tasks[0][0], np.column_stack([y for _, y in tasks]), None
    X, y = stack_tasks([X for X, _ in tasks], [y for _, y in tasks])
    return X, y, -1


def fit_mtlinear(data, penalty, alpha, tol, solver):
    from mtlinear import MultiTaskClassifier
    X, y, task_col = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = MultiTaskClassifier(penalty=penalty, alpha=alpha, task_col=task_col,
                                    tol=tol, max_iter=100_000, solver=solver)
        model.fit(X, y)
    return model.coef_, model.intercept_


def fit_sklearn(tasks, penalty, alpha, tol, solver):
    from sklearn.linear_model import LogisticRegression
    coef, intercept = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for X, y in tasks:
            kw = dict(intercept_scaling=1e4) if solver == "liblinear" else {}
            model = LogisticRegression(
                C=1.0 / (alpha * len(y)), l1_ratio=1.0 if penalty == "l1" else 0.0,
                solver=solver, tol=tol, max_iter=100_000, **kw).fit(X, y)
            coef.append(model.coef_[0])
            intercept.append(model.intercept_[0])
    return np.array(coef), np.array(intercept)


def solvers_for(penalty, tasks):
    """``(name, fit(penalty, alpha, tol) -> (coef, intercept), start tol)``."""
    data = mtlinear_data(tasks)
    out = [("mtlinear-auto", lambda *a: fit_mtlinear(data, *a, "auto"), 1e-4),
           ("mtlinear-fista", lambda *a: fit_mtlinear(data, *a, "fista"), 1e-4)]
    for s in SK_SOLVERS.get(penalty, ()):
        out.append((f"sklearn-{s}", lambda *a, s=s: fit_sklearn(tasks, *a, s),
                    1e-4))
    return out


def tune_and_time(fit, tasks, penalty, alpha, start_tol, target, repeats,
                  cap):
    """Loosest ``tol = start_tol / 10^k`` reaching ``target``; warm median."""
    fit(penalty, alpha, start_tol)  # warm-up
    tol = start_tol
    while True:
        t0 = time.perf_counter()
        coef, b = fit(penalty, alpha, tol)
        elapsed = time.perf_counter() - t0
        gap = relative_gap(tasks, coef, b, penalty, alpha)
        if gap <= target or elapsed > cap or tol < 1e-15:
            break
        tol /= 10
    times = [elapsed]
    for _ in range(repeats - 1 if gap <= target else 0):
        t0 = time.perf_counter()
        fit(penalty, alpha, tol)
        times.append(time.perf_counter() - t0)
    return dict(tol=tol, gap=gap, reached=gap <= target,
                median=float(np.median(times)))


def first_call(problem, penalty, alpha, tol, newsgroup_path):
    """Time of the first mtlinear fit in a fresh process (imports excluded)."""
    code = (f"import sys, time; sys.path.insert(0, {HERE!r}); "
            "import classifier as c; import mtlinear; "
            f"tasks = c.load_problem({problem!r}, {newsgroup_path!r}); "
            "data = c.mtlinear_data(tasks); t0 = time.perf_counter(); "
            f"c.fit_mtlinear(data, {penalty!r}, {float(alpha)!r}, {float(tol)!r}, 'auto'); "
            "print(time.perf_counter() - t0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, check=True)
    return float(out.stdout.split()[-1])


def alphas_for(tasks, penalty):
    """l1 / l21: a tenth and a hundredth of the smallest alpha that zeroes
    everything (per task for l1); l2: ``C = 1`` and ``C = 100`` on an average
    task."""
    n_mean = np.mean([len(y) for _, y in tasks])
    if penalty == "l2":
        return [1.0 / n_mean, 0.01 / n_mean]
    G = []
    for X, y in tasks:
        p = np.mean(y > 0)
        r = (np.where(y > 0, 1 - p, -p)) / len(y)  # gradient at W = 0
        G.append(np.asarray(X.T @ r).ravel())
    G = np.array(G).T
    top = np.abs(G).max() if penalty == "l1" else np.linalg.norm(G, axis=1).max()
    return [top / 10, top / 100]


# ---------------------------------------------------------------- main
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--newsgroup", default=os.path.join(
        HERE, "..", "..", "shared", "data", "newsgroup"))
    parser.add_argument("--problems", nargs="+",
                        default=["newsgroup", "dense-shared", "dense-stacked"])
    parser.add_argument("--penalties", nargs="+",
                        default=["l2", "l1", "l21", "trace"])
    parser.add_argument("--targets", nargs="+", type=float, default=[1e-4, 1e-8])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cap", type=float, default=10.0,
                        help="stop tuning a solver once one fit takes longer")
    parser.add_argument("--solvers", nargs="+", default=None,
                        help="only these (e.g. mtlinear-auto mtlinear-fista)")
    parser.add_argument("--quick", action="store_true",
                        help="dense problems, l2 and l1, target 1e-6")
    args = parser.parse_args(argv)
    if args.quick:
        args.problems, args.penalties = ["dense-shared", "dense-stacked"], ["l2", "l1"]
        args.targets = [1e-6]

    header = ("| problem | penalty | alpha | target | solver | tol | rel. gap | "
              "warm median s | ratio to fastest sklearn | ratio to fista | "
              "first call s |")
    print(header)
    print("|---" * (header.count("|") - 1) + "|")
    for problem in args.problems:
        tasks = load_problem(problem, args.newsgroup)
        if tasks is None:
            print(f"| {problem} | skipped: no data at {args.newsgroup} |")
            continue
        for penalty in args.penalties:
            for alpha in alphas_for(tasks, penalty):
                for target in args.targets:
                    rows = []
                    for name, fit, start in solvers_for(penalty, tasks):
                        if args.solvers and name not in args.solvers:
                            continue
                        if name == "mtlinear-fista" and penalty != "trace" \
                                and target < 1e-6:
                            continue  # minutes at tight targets: not the point
                        r = tune_and_time(fit, tasks, penalty, alpha, start,
                                          target, args.repeats, args.cap)
                        rows.append((name, r))
                    best = min((r["median"] for n, r in rows
                                if n.startswith("sklearn") and r["reached"]),
                               default=None)
                    fista = dict(rows).get("mtlinear-fista")
                    for name, r in rows:
                        ratio = (f"{r['median'] / best:.2f}"
                                 if best and name.startswith("mtlinear") else "")
                        to_fista = (f"{r['median'] / fista['median']:.2f}"
                                    if fista and fista["reached"]
                                    and name == "mtlinear-auto" else "")
                        first = ""
                        if name == "mtlinear-auto":
                            first = f"{first_call(problem, penalty, alpha, r['tol'], args.newsgroup):.3f}"
                        status = "" if r["reached"] else " (not reached)"
                        print(f"| {LABELS[problem]} | {penalty} | {alpha:.2e} | "
                              f"{target:.0e} | {name} | {r['tol']:.0e} | "
                              f"{r['gap']:.1e}{status} | {r['median']:.4f} | "
                              f"{ratio} | {to_fista} | {first} |", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
