"""Multi-task Lasso and trace-norm solvers side by side, judged by one gap.

Every solver (mtlinear's ``bcd``, ``fista`` and ``auto``; scikit-learn,
skglm, celer and spams; a plain numpy FISTA for the trace norm) is timed to a
common relative duality gap of 1e-6 (:mod:`_gap`), with its tolerance tuned
per problem (:func:`_peers.tune_and_time`).  Reported per problem and alpha:
the warm median, the first call in a fresh process (Numba cache filled),
peak extra memory of that call, and each time in units of one gradient
evaluation ``X^T (X W - Y)`` timed in the same run; the ratio of each
mtlinear solver to the fastest peer.  Separately: the first-ever Numba
compilation (empty cache, fresh process) and the first call with the cache
filled.

celer and spams run in their own virtual environments (give their python
with ``--celer-python`` / ``--spams-python``; see benchmarks/README.md).

Examples
--------
Quick look (shared-design problems, mtlinear vs scikit-learn vs skglm)::

    python benchmarks/solvers.py --quick

Everything::

    python benchmarks/solvers.py --celer-python PATH --spams-python PATH

Against an earlier version of mtlinear, side by side in one run (each of its
solvers timed right after the current one, same data, same judge)::

    git worktree add ../mtlinear-base <commit>
    python benchmarks/solvers.py --baseline ../mtlinear-base --solvers mtlinear-auto
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from scipy.signal import lfilter

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def make_shared(n, d, T, rho=0.0, n_informative=20, snr=3.0, seed=0):
    """Gaussian design with AR(1) (Toeplitz) feature correlation ``rho^|i-j|``.

    ``Y = X W* + E`` with ``n_informative`` nonzero rows of ``W*`` (standard
    normal entries) and Gaussian noise scaled to ``||X W*|| / ||E|| = snr``.
    """
    rng = np.random.default_rng(seed)
    E = rng.standard_normal((n, d))
    if rho:
        E[:, 0] /= np.sqrt(1 - rho ** 2)  # unit variance in every column
        X = lfilter([np.sqrt(1 - rho ** 2)], [1.0, -rho], E, axis=1)
    else:
        X = E
    W = np.zeros((d, T))
    W[rng.choice(d, n_informative, replace=False)] = rng.standard_normal(
        (n_informative, T))
    signal = X @ W
    noise = rng.standard_normal((n, T))
    Y = signal + noise * np.linalg.norm(signal) / (snr * np.linalg.norm(noise))
    return np.ascontiguousarray(X), Y


PROBLEMS = {
    "corr": ("(300, 3000, 30) rho=0.5", lambda: make_shared(300, 3000, 30, 0.5)),
    "tall": ("(20000, 500, 20)", lambda: make_shared(20000, 500, 20)),
    "wide": ("(1000, 20000, 10)", lambda: make_shared(1000, 20000, 10)),
    "small": ("(200, 200, 5)", lambda: make_shared(200, 200, 5)),
    "school": ("School (15362, 28, 139)", None),
}


def load_problem(key, school_path):
    from _gap import Problem
    label, make = PROBLEMS[key]
    if key != "school":
        return Problem(label, *make())
    if not os.path.exists(school_path):
        return None
    from mtlinear import load_school
    X, y = load_school(school_path)
    task = X[:, -1].astype(np.int64)
    order = np.argsort(task, kind="stable")
    return Problem(label, X[order, :-1], y[order], task[order])


# ------------------------------------------------------------------ running
def run_worker(python, mode, data, solver, penalty, alpha, extra=(), env=None,
               timeout=None):
    """Run ``_peers.py`` in ``python``; returns its JSON or an error dict.

    A worker killed at ``timeout`` returns what it saved so far (its tuning
    calls), marked not reached.
    """
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = f.name
    cmd = [python, os.path.join(HERE, "_peers.py"), mode, data, solver, penalty,
           repr(float(alpha)), out, *extra]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env,
                              timeout=timeout, cwd=HERE)
        if proc.returncode:
            return {"error": proc.stderr.strip().splitlines()[-1][:200]}
        with open(out) as f:
            return json.load(f)
    except subprocess.TimeoutExpired:
        if os.path.getsize(out):
            with open(out) as f:
                return dict(json.load(f), reached=False,
                            note=f"killed after {timeout:.0f} s")
        return {"error": f"killed after {timeout:.0f} s"}
    finally:
        os.unlink(out)


def numba_env(cache_dir):
    env = dict(os.environ)
    env["NUMBA_CACHE_DIR"] = cache_dir
    return env


THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "NUMBA_NUM_THREADS")


def baseline_env(args, cache_dir):
    """The environment of a worker importing the baseline's mtlinear."""
    env = numba_env(os.path.join(cache_dir, "baseline"))
    env["PYTHONPATH"] = os.path.abspath(args.baseline)
    return env


def benchmark(args, pythons, cache_dir, log, save):
    from _gap import alpha_max
    from _peers import SOLVERS, time_gradient, tune_and_time

    rows = []
    with tempfile.TemporaryDirectory() as data_root:
        for key in args.problems:
            problem = load_problem(key, args.school)
            if problem is None:
                log(f"skip {key}: no School file at {args.school}")
                continue
            data = os.path.join(data_root, key)
            os.makedirs(data)
            problem.save(data)
            grad_time = time_gradient(problem)
            log(f"\n{problem.name}: one gradient X^T(XW - Y) = "
                f"{grad_time * 1e3:.2f} ms")
            big = np.prod(problem.shape) > 5e7
            for penalty in args.penalties:
                a_max = alpha_max(problem, penalty)
                failed = set()  # not reached at a larger alpha: skip smaller
                for factor in sorted(args.alphas):
                    alpha = a_max / factor
                    for name in args.solvers:
                        solver = SOLVERS[name]
                        if not solver.supports(problem, penalty):
                            continue
                        python = pythons.get(solver.env)
                        if python is None:
                            continue
                        if name in failed:
                            res = {"error": "skipped: target not reached at "
                                            "a larger alpha"}
                            rows.append(dict(problem=problem.name, key=key,
                                             penalty=penalty, factor=factor,
                                             solver=name, peer=solver.peer,
                                             **res))
                            log(format_row(rows[-1]))
                            continue
                        budget = args.budget / (3 if big else 1)
                        if solver.env == "main" and args.in_process:
                            res = tune_and_time(solver, problem, alpha, penalty,
                                                repeats=args.repeats,
                                                cap=args.cap, budget=budget)
                            res["grad_time"] = grad_time
                            res["version"] = solver.library_version()
                        else:
                            res = run_worker(
                                python, "tune", data, name, penalty, alpha,
                                ["--repeats", str(args.repeats), "--cap",
                                 str(args.cap), "--budget", str(budget)],
                                env=numba_env(cache_dir),
                                timeout=6 * args.cap + 60)
                        if args.fresh and "error" not in res and res["reached"]:
                            first = run_worker(
                                python, "first", data, name, penalty, alpha,
                                ["--tol", repr(float(res["tol"]))],
                                env=numba_env(cache_dir),
                                timeout=4 * args.cap + 120)
                            res["fresh"] = first
                        if "error" in res or not res["reached"]:
                            failed.add(name)
                        row = dict(problem=problem.name, key=key,
                                   penalty=penalty, factor=factor,
                                   solver=name, peer=solver.peer, **res)
                        rows.append(row)
                        log(format_row(row))
                        if args.baseline and not solver.peer:
                            base = run_worker(
                                python, "tune", data, name, penalty, alpha,
                                ["--repeats", str(args.repeats), "--cap",
                                 str(args.cap), "--budget", str(budget)],
                                env=baseline_env(args, cache_dir),
                                timeout=6 * args.cap + 60)
                            rows.append(dict(problem=problem.name, key=key,
                                             penalty=penalty, factor=factor,
                                             solver="baseline:" + name,
                                             peer=False, baseline=True, **base))
                            log(format_row(rows[-1]))
                        save(rows)
    return rows


def compile_times(args, pythons, log):
    """First-ever call (empty Numba cache) and first call with it filled."""
    from _gap import alpha_max
    problem = load_problem("small", args.school)
    out = []
    with tempfile.TemporaryDirectory() as root:
        data = os.path.join(root, "data")
        os.makedirs(data)
        problem.save(data)
        for name, penalty in [("mtlinear-auto", "l21"), ("mtlinear-bcd", "l21"),
                              ("mtlinear-fista", "l21"),
                              ("mtlinear-fista", "trace"), ("skglm", "l21")]:
            if name not in args.solvers or penalty not in args.penalties:
                continue
            alpha = alpha_max(problem, penalty) / 10
            cache = tempfile.mkdtemp(dir=root)
            res = {"solver": name, "penalty": penalty}
            for label in ("empty", "filled"):
                res[label] = run_worker(sys.executable, "first", data, name,
                                        penalty, alpha, ["--tol", "1e-6"],
                                        env=numba_env(cache), timeout=900)
            out.append(res)
            log(f"compile {name:15s} {penalty:5s} "
                f"empty cache: {fmt_first(res['empty'])}   "
                f"filled cache: {fmt_first(res['filled'])}")
    return out


# ------------------------------------------------------------------ output
def fmt_first(r):
    if "error" in r:
        return "error: " + r["error"]
    return f"import {r['import']:.2f} s + first call {r['first_call']:.3f} s"


def format_row(r):
    if "error" in r:
        return f"  {r['penalty']:5s} a_max/{r['factor']:<4g} {r['solver']:15s} " \
               f"error: {r['error']}"
    fresh = r.get("fresh", {})
    first = (f"first {fresh['first_call']:.3f} s, {fresh['peak_mib']:.0f} MiB"
             if "first_call" in fresh else fresh.get("error", ""))
    status = "" if r["reached"] else (f"  NOT REACHED (gap {r['rel_gap']:.1e}) "
                                      + r.get("note", ""))
    steps = len(r["tuning"])
    return (f"  {r['penalty']:5s} a_max/{r['factor']:<4g} {r['solver']:15s} "
            f"tol {r['tol']:.1e} ({steps} tried) gap {r['rel_gap']:.1e}  warm "
            f"{r['median']:.4f} s ({len(r['times'])}) = "
            f"{r['median'] / r['grad_time']:.1f} grads  {first}{status}")


def table(rows):
    """Markdown table with each mtlinear solver's ratio to the fastest peer."""
    lines = ["| problem | penalty | alpha | solver | warm s | grads | "
             "first call s | peak MiB | ratio to fastest peer |",
             "|---|---|---|---|---|---|---|---|---|"]
    groups = {}
    for r in rows:
        groups.setdefault((r["problem"], r["penalty"], r["factor"]), []).append(r)
    summary = []
    for (prob, pen, factor), group in groups.items():
        ok = [r for r in group if "error" not in r and r["reached"]]
        peers = [r for r in ok if r["peer"]]
        best = min(peers, key=lambda r: r["median"]) if peers else None
        for r in group:
            if "error" in r:
                cells = [r["error"], "", "", "", ""]
            else:
                fresh = r.get("fresh", {})
                warm = f"{r['median']:.4f}" + ("" if r["reached"] else " (not reached)")
                ratio = (f"{r['median'] / best['median']:.2f}"
                         if best and not r["peer"] and r["reached"] else "")
                if best is r:
                    ratio = "fastest peer"
                cells = [warm, f"{r['median'] / r['grad_time']:.1f}",
                         f"{fresh['first_call']:.3f}" if "first_call" in fresh else "",
                         f"{fresh['peak_mib']:.0f}" if "peak_mib" in fresh else "",
                         ratio]
            lines.append(f"| {prob} | {pen} | a_max/{factor:g} | {r['solver']} | "
                         + " | ".join(cells) + " |")
        mt = [r for r in ok if not r["peer"] and not r.get("baseline")]
        if best and mt:
            auto = [r for r in mt if r["solver"] == "mtlinear-auto"]
            summary.append(
                f"| {prob} | {pen} | a_max/{factor:g} | {best['solver']} "
                f"{best['median']:.4f} s | "
                + (f"{auto[0]['median'] / best['median']:.2f}" if auto else "")
                + f" | {min(r['median'] for r in mt) / best['median']:.2f} |")
    head = ["| problem | penalty | alpha | fastest peer | mtlinear-auto / peer | "
            "best mtlinear / peer |", "|---|---|---|---|---|---|"]
    return "\n".join(lines), "\n".join(head + summary + baseline_table(groups))


def baseline_table(groups):
    """Rows ``current / baseline`` of each mtlinear solver run against one."""
    out = []
    for (prob, pen, factor), group in groups.items():
        timed = {r["solver"]: r for r in group
                 if "error" not in r and r.get("reached")}
        for name, r in timed.items():
            base = timed.get("baseline:" + name)
            if base is not None:
                out.append(f"| {prob} | {pen} | a_max/{factor:g} | {name} | "
                           f"{r['median']:.4f} | {base['median']:.4f} | "
                           f"{r['median'] / base['median']:.2f} |")
    if not out:
        return []
    return ["", "| problem | penalty | alpha | solver | current s | baseline s | "
            "current / baseline |", "|---|---|---|---|---|---|---|"] + out


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    from _peers import SOLVERS
    parser.add_argument("--problems", nargs="+", choices=list(PROBLEMS),
                        default=list(PROBLEMS))
    parser.add_argument("--solvers", nargs="+", choices=list(SOLVERS),
                        default=list(SOLVERS))
    parser.add_argument("--penalties", nargs="+", choices=["l21", "trace"],
                        default=["l21", "trace"])
    parser.add_argument("--alphas", nargs="+", type=float,
                        help="alpha = alpha_max / each of these (default: 10 "
                             "100; --quick: 10)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed warm runs (median)")
    parser.add_argument("--budget", type=float, default=30.0,
                        help="seconds of timed runs per solver and problem; "
                             "fewer repeats (at least one) beyond it")
    parser.add_argument("--cap", type=float, default=60.0,
                        help="stop tuning a solver once one call takes longer")
    parser.add_argument("--in-process", action="store_true",
                        help="run the solvers of this environment in this "
                             "process (faster start; a runaway solve cannot "
                             "be stopped)")
    parser.add_argument("--no-fresh", dest="fresh", action="store_false",
                        help="skip the first call in a fresh process")
    parser.add_argument("--no-compile", dest="compile", action="store_false",
                        help="skip the first-ever Numba compilation timing")
    parser.add_argument("--celer-python", default=os.environ.get("CELER_PYTHON"),
                        help="python of an environment with celer "
                             "(default: $CELER_PYTHON)")
    parser.add_argument("--spams-python", default=os.environ.get("SPAMS_PYTHON"),
                        help="python of an environment with spams "
                             "(default: $SPAMS_PYTHON)")
    parser.add_argument("--threads", type=int,
                        help="limit BLAS, OpenMP and Numba threads of every "
                             "solver (default: the libraries' own)")
    parser.add_argument("--school", default=os.path.join(
        ROOT, "..", "shared", "data", "school.mat"))
    parser.add_argument("--json", help="also write all results here (updated "
                                       "after each solver)")
    parser.add_argument("--tables", nargs="+", metavar="JSON",
                        help="only print the tables of saved --json files")
    parser.add_argument("--baseline", metavar="PATH",
                        help="a checkout of an earlier mtlinear: each mtlinear "
                             "solver is timed again with it, right after the "
                             "current one (workers, not in-process)")
    parser.add_argument("--quick", action="store_true",
                        help="shared-design problems at alpha_max/10, l21, "
                             "mtlinear-auto vs scikit-learn and skglm, 3 s "
                             "of timed runs each, in this process, one "
                             "thread unless --threads, no fresh processes")
    args = parser.parse_args(argv)
    if args.tables:
        rows = []
        for name in args.tables:
            with open(name) as f:
                rows += json.load(f)["rows"]
        print("\n\n".join(table(rows)))
        return
    if args.quick:
        args.problems = [p for p in args.problems if p != "school"]
        args.solvers = [s for s in args.solvers
                        if s in ("mtlinear-auto", "sklearn", "skglm")]
        args.penalties, args.cap, args.budget = ["l21"], 20.0, 3.0
        args.in_process = True
        args.threads = args.threads or 1  # as the recorded run (README)
        args.alphas = args.alphas or [10]
        args.fresh = args.compile = False
    args.alphas = args.alphas or [10, 100]
    if args.baseline:  # both versions in workers alike
        args.in_process = False

    if args.threads:  # workers read the variables; this process is running
        os.environ.update({v: str(args.threads) for v in THREAD_VARIABLES})
        from threadpoolctl import threadpool_limits
        threadpool_limits(args.threads)
    pythons = {"main": sys.executable, "celer": args.celer_python,
               "spams": args.spams_python}
    log = lambda *a: print(*a, flush=True)  # noqa: E731
    for env, solver in (("celer", "celer"), ("spams", "spams")):
        if solver in args.solvers and not pythons[env]:
            log(f"{solver}: skipped (give --{env}-python, see benchmarks/README.md)")
    if pythons["celer"] and "celer" in args.solvers:
        log("celer runs in its own environment (it needs scikit-learn < 1.7): "
            + pythons["celer"])
    log(f"target: relative duality gap {1e-6:g} (gap / P(0)), common gap "
        f"function benchmarks/_gap.py; threads: {args.threads or 'default'}; "
        f"load average {os.getloadavg()[0]:.2f}")

    # one Numba cache for this run: filled by the in-process warm-up, reused by
    # the fresh processes ("first call with a filled cache")
    with tempfile.TemporaryDirectory() as cache_dir:
        if args.fresh:
            os.environ["NUMBA_CACHE_DIR"] = cache_dir
        start = time.perf_counter()

        def save(rows, compiled=()):
            if args.json:
                with open(args.json, "w") as f:
                    json.dump({"rows": rows, "compile": list(compiled),
                               "argv": sys.argv[1:]}, f, indent=1)

        rows = benchmark(args, pythons, cache_dir, log, save)
        compiled = compile_times(args, pythons, log) if args.compile else []
        save(rows, compiled)
    full, summary = table(rows)
    log(f"\n{full}\n\n{summary}\n")
    log(f"total {time.perf_counter() - start:.0f} s; load average "
        f"{os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
