"""Cross-validation speed: MultiTaskRegressorCV against MultiTaskLassoCV peers.

5-fold CV of the l21 (multi-task Lasso) path over 50 alphas, side by side in
one run, on generated problems with correlated Gaussian features:

* ``wide``: n=300, d=3000, T=30 (AR(1) features, rho=0.5);
* ``tall``: n=20000, d=500, T=20 (same generator).

Every library gets the same data, the same alphas (``alpha_max`` down to
``eps * alpha_max``, scikit-learn's grid) and the same folds (``KFold(5)``),
``n_jobs=1``, and the same duality-gap target: mtlinear's ``tol`` is relative
to ``P(0) = ||Y_c||^2 / (2n)``, scikit-learn's and celer's to
``||Y_c||^2 / n = 2 P(0)``, so they get ``tol / 2``.  Agreement is reported, not
assumed: the chosen ``alpha_`` and the largest relative difference of the mse
path against mtlinear's.

Timings: the median of ``--repeats`` warm runs (fewer, at least one, once a
library has used ``--budget`` seconds); mtlinear's first call in a
fresh process (Numba's cache already filled by this run) is timed apart.
BLAS runs single-threaded for every library by default (``--blas-threads``):
the comparison is per core, and on a machine shared with other jobs
OpenBLAS's spinning threads can slow numpy-heavy code several-fold.

celer (its MultiTaskLassoCV) needs scikit-learn < 1.7: it runs in its own
environment, given by ``--celer-python`` or ``$CELER_PYTHON``, as a worker
process of this script; without one, or when it cannot import celer, it is
skipped with a message.  Run::

    python benchmarks/cv.py [--problems wide tall] [--repeats 3]
                            [--celer-python PATH] [--blas-threads 1] [--quick]

Worker mode (used internally; imports only numpy, scikit-learn and the one
library it times)::

    python benchmarks/cv.py --worker {celer,mtlinear-first} DATA.npz OUT.json
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

N_FOLDS = 5
PROBLEMS = {"wide": (300, 3000, 30), "tall": (20000, 500, 20)}


def make_problem(n, d, T, rho=0.5, n_informative=20, seed=0):
    """AR(1)-correlated features; 20 shared informative rows; SNR 4."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    for j in range(1, d):
        X[:, j] = rho * X[:, j - 1] + np.sqrt(1 - rho ** 2) * X[:, j]
    W = np.zeros((d, T))
    W[rng.choice(d, n_informative, replace=False)] = rng.standard_normal(
        (n_informative, T))
    Z = X @ W
    return X, Z + 0.5 * Z.std() * rng.standard_normal((n, T))


def alpha_grid(X, Y, n_alphas, eps):
    """scikit-learn's multi-task grid: max_j ||X_cj^T Y_c||_2 / n, log-spaced."""
    Xc, Yc = X - X.mean(axis=0), Y - Y.mean(axis=0)
    top = np.sqrt(((Xc.T @ Yc) ** 2).sum(axis=1)).max() / X.shape[0]
    return np.geomspace(top, top * eps, n_alphas)


def folds(n):
    from sklearn.model_selection import KFold
    return list(KFold(N_FOLDS).split(np.zeros(n)))


# ------------------------------------------------------------ the libraries
def run_mtlinear(X, Y, alphas, tol):
    from mtlinear import MultiTaskRegressorCV
    model = MultiTaskRegressorCV(alphas=alphas, cv=folds(len(X)), tol=tol,
                                 max_iter=100_000).fit(X, Y)
    return model.alpha_, model.mse_path_


def run_sklearn(X, Y, alphas, tol):
    from sklearn.linear_model import MultiTaskLassoCV
    model = MultiTaskLassoCV(alphas=alphas, cv=folds(len(X)), tol=tol / 2,
                             max_iter=100_000).fit(X, Y)
    return model.alpha_, model.mse_path_


def run_celer(X, Y, alphas, tol):
    from celer import MultiTaskLassoCV
    model = MultiTaskLassoCV(alphas=alphas, cv=folds(len(X)), tol=tol / 2,
                             max_iter=100).fit(X, Y)
    return model.alpha_, model.mse_path_


RUNNERS = {"mtlinear": run_mtlinear, "sklearn": run_sklearn, "celer": run_celer}


def timed(runner, X, Y, alphas, tol, repeats, budget):
    """Median of ``repeats`` runs; fewer (at least one) past ``budget`` seconds."""
    times, result = [], None
    while len(times) < repeats and (not times or sum(times) < budget):
        start = time.perf_counter()
        result = runner(X, Y, alphas, tol)
        times.append(time.perf_counter() - start)
    return float(np.median(times)), len(times), result


# ------------------------------------------------------------ worker
def worker(kind, data_path, out_path, repeats, budget):
    from threadpoolctl import threadpool_limits
    threads = os.environ.get("CV_BENCH_BLAS_THREADS")
    threadpool_limits(int(threads) if threads else None)
    data = np.load(data_path)
    X, Y, alphas, tol = data["X"], data["Y"], data["alphas"], float(data["tol"])
    if kind == "mtlinear-first":
        start = time.perf_counter()
        import mtlinear  # noqa: F401  (import and cache loading count too)
        alpha, mse = run_mtlinear(X, Y, alphas, tol)
        out = dict(seconds=time.perf_counter() - start)
    else:
        import celer  # noqa: F401
        run_celer(X[:100], Y[:100], alphas[:3], tol)  # warm-up
        seconds, runs, (alpha, mse) = timed(run_celer, X, Y, alphas, tol,
                                            repeats, budget)
        out = dict(seconds=seconds, runs=runs, version=celer.__version__)
    out.update(alpha=float(alpha), mse_path=np.asarray(mse).tolist())
    with open(out_path, "w") as f:
        json.dump(out, f)


def in_worker(python, kind, X, Y, alphas, tol, repeats, budget, tmp, env):
    data_path = os.path.join(tmp, "data.npz")
    out_path = os.path.join(tmp, f"{kind}.json")
    np.savez(data_path, X=X, Y=Y, alphas=alphas, tol=tol)
    proc = subprocess.run([python, os.path.abspath(__file__), "--worker", kind,
                           data_path, out_path, "--repeats", str(repeats),
                           "--budget", str(budget)],
                          capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        return None, proc.stderr.strip().splitlines()[-1:]
    with open(out_path) as f:
        return json.load(f), None


# ------------------------------------------------------------ main
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--problems", nargs="+", default=list(PROBLEMS),
                        choices=list(PROBLEMS))
    parser.add_argument("--n-alphas", type=int, default=50)
    parser.add_argument("--eps", type=float, default=1e-3)
    parser.add_argument("--tol", type=float, default=1e-4,
                        help="mtlinear's relative gap tol (peers get half, the "
                             "same absolute gap)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--budget", type=float, default=60.0,
                        help="no further repeat once a library has run this "
                             "many seconds")
    parser.add_argument("--celer-python", default=os.environ.get("CELER_PYTHON"))
    parser.add_argument("--blas-threads", type=int, default=1,
                        help="BLAS threads of every library (0: the default)")
    parser.add_argument("--no-fresh", dest="fresh", action="store_false",
                        help="skip mtlinear's first call in a fresh process")
    parser.add_argument("--quick", action="store_true",
                        help="one repeat, 20 alphas down to 1e-2 alpha_max")
    parser.add_argument("--worker", nargs=3, metavar=("KIND", "DATA", "OUT"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(*args.worker, args.repeats, args.budget)
    if args.quick:
        args.repeats, args.n_alphas, args.eps = 1, 20, 1e-2
    env = dict(os.environ)
    if args.blas_threads:
        from threadpoolctl import threadpool_limits
        threadpool_limits(args.blas_threads)
        env["CV_BENCH_BLAS_THREADS"] = str(args.blas_threads)

    log = lambda *a: print(*a, flush=True)  # noqa: E731
    libraries = ["mtlinear", "sklearn"]
    celer_python = None
    try:
        import celer  # noqa: F401
        libraries.append("celer")
    except ImportError:
        if args.celer_python:
            celer_python = args.celer_python
            libraries.append("celer")
            log(f"celer: in its own environment ({celer_python})")
        else:
            log("celer: skipped (not importable here; give --celer-python or "
                "$CELER_PYTHON, an environment with celer and scikit-learn < 1.7)")

    import sklearn

    import mtlinear
    log(f"mtlinear {mtlinear.__version__}, scikit-learn {sklearn.__version__}; "
        f"{N_FOLDS}-fold CV, {args.n_alphas} alphas, eps={args.eps:g}, "
        f"tol={args.tol:g}, BLAS threads {args.blas_threads or 'default'}; "
        f"load average {os.getloadavg()[0]:.2f}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.problems:
            n, d, T = PROBLEMS[name]
            X, Y = make_problem(n, d, T)
            alphas = alpha_grid(X, Y, args.n_alphas, args.eps)
            # warm-up: compile / load every kernel, untimed
            run_mtlinear(X[:60], Y[:60], alphas[:3], args.tol)
            run_sklearn(X[:60], Y[:60], alphas[:3], args.tol)
            results = {}
            for lib in libraries:
                if lib == "celer" and celer_python:
                    out, error = in_worker(celer_python, "celer", X, Y, alphas,
                                           args.tol, args.repeats, args.budget,
                                           tmp, env)
                    if out is None:
                        log(f"celer: skipped ({' '.join(error)})")
                        continue
                    results[lib] = (out["seconds"], out["runs"], out["alpha"],
                                    np.array(out["mse_path"]))
                else:
                    seconds, runs, (alpha, mse) = timed(
                        RUNNERS[lib], X, Y, alphas, args.tol, args.repeats,
                        args.budget)
                    results[lib] = (seconds, runs, alpha, np.asarray(mse))
                log(f"  {name} {lib}: {results[lib][0]:.2f} s "
                    f"(median of {results[lib][1]})")
            first = None
            if args.fresh:
                out, _ = in_worker(sys.executable, "mtlinear-first", X, Y,
                                   alphas, args.tol, 1, 0.0, tmp, env)
                first = None if out is None else out["seconds"]
            ours_s, _, ours_alpha, ours_mse = results["mtlinear"]
            for lib, (seconds, _, alpha, mse) in results.items():
                rows.append(dict(
                    problem=f"{name} ({n}, {d}, {T})", library=lib,
                    seconds=seconds, ratio=ours_s / seconds,
                    same_alpha=bool(np.isclose(alpha, ours_alpha, rtol=1e-9)),
                    mse_diff=float(np.max(np.abs(mse / ours_mse - 1))),
                    first=first if lib == "mtlinear" else None))
    log("\n| problem | library | warm median (s) | mtlinear / library | "
        "same alpha_ | max rel. mse-path diff | first call, fresh process (s) |")
    log("|---|---|---|---|---|---|---|")
    for r in rows:
        log(f"| {r['problem']} | {r['library']} | {r['seconds']:.2f} | "
            f"{r['ratio']:.2f}x | {'yes' if r['same_alpha'] else 'NO'} | "
            f"{r['mse_diff']:.1e} | "
            f"{'' if r['first'] is None else format(r['first'], '.2f')} |")
    log(f"\nload average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
