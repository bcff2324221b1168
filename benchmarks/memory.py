"""Extra peak memory of a fit, relative to the size of its input.

Each case runs in a fresh process: the data are made, a small warm-up fit
of the same kind loads the compiled kernels, then the fit's peak of
allocations is traced (``tracemalloc``, which sees numpy's buffers; the
process's peak resident set size cannot, as importing and compiling reach a
higher peak than a small fit).
The goal is at most 1.5x the input plus the sufficient statistics.

Usage::

    python benchmarks/memory.py            # every case (about 2 GiB, 1-2 min)
    python benchmarks/memory.py --quick    # smaller stacked problems
"""
import argparse
import json
import subprocess
import sys

CASES = {
    "stacked regressor l21": dict(kind="stacked", estimator="regressor",
                                  penalty="l21"),
    "stacked regressor l21, rows grouped by task": dict(
        kind="stacked", estimator="regressor", penalty="l21", grouped=True),
    "stacked regressor l21, task column in the middle": dict(
        kind="stacked", estimator="regressor", penalty="l21", task_col=10),
    "stacked regressor l21, float32": dict(
        kind="stacked", estimator="regressor", penalty="l21", dtype="float32"),
    "stacked classifier l21": dict(kind="stacked", estimator="classifier",
                                   penalty="l21"),
    "stacked classifier l21, float32, task column in the middle": dict(
        kind="stacked", estimator="classifier", penalty="l21", task_col=10,
        dtype="float32"),
    "sparse 300 x 100000 trace": dict(kind="sparse", estimator="regressor",
                                      penalty="trace"),
    "sparse 300 x 100000 l2": dict(kind="sparse", estimator="regressor",
                                   penalty="l2"),
}

WORKER = r"""
import json, sys, tracemalloc
import numpy as np
import scipy.sparse as sp
from mtlinear import MultiTaskClassifier, MultiTaskRegressor

case = json.loads(sys.argv[1])
rng = np.random.default_rng(0)

def data(n_rows):
    if case["kind"] == "stacked":
        d, T = 20, 100
        X = rng.standard_normal((n_rows, d))
        task = rng.integers(0, T, n_rows)
        if case.get("grouped"):
            task.sort()
        y = np.einsum("ij,ij->i", X, rng.standard_normal((T, d))[task])
        y += rng.standard_normal(n_rows)
        if case["estimator"] == "classifier":
            y = y > 0
        col = case.get("task_col", d)
        X = np.insert(X, col, task, axis=1).astype(case.get("dtype", "float64"))
        features = X.nbytes // (d + 1) * d  # the input, task column apart
        return X, y, features + y.nbytes, col
    n, d = (300, 100_000) if n_rows else (30, 1000)  # n_rows 0: the warm-up
    X = sp.random(n, d, density=1e-3, format="csr", random_state=0)
    Y = np.asarray(X @ rng.standard_normal((d, 5))) + rng.standard_normal((n, 5))
    size = X.data.nbytes + X.indices.nbytes + X.indptr.nbytes + Y.nbytes
    return X, Y, size, None

def fit(X, y, task_col):
    cls = MultiTaskClassifier if case["estimator"] == "classifier" else MultiTaskRegressor
    return cls(penalty=case["penalty"], alpha=case.get("alpha", 0.01),
               task_col=task_col).fit(X, y)

small = data(5000) if case["kind"] == "stacked" else data(0)
fit(small[0], small[1], small[3])  # compile / load the kernels first
del small
X, y, size, task_col = data(case["rows"])
tracemalloc.start()
fit(X, y, task_col)
extra = tracemalloc.get_traced_memory()[1] / 2 ** 20
print(json.dumps({"input_mib": size / 2 ** 20, "extra_mib": extra}))
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="2e5 stacked rows instead of 2e6")
    args = parser.parse_args()
    rows = 200_000 if args.quick else 2_000_000
    print("| case | input MiB | extra peak MiB | extra / input |")
    print("|---|---|---|---|")
    for name, case in CASES.items():
        case = dict(case, rows=rows)
        out = subprocess.run([sys.executable, "-c", WORKER, json.dumps(case)],
                             capture_output=True, text=True, check=True)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        label = name if case["kind"] != "stacked" else f"{name} ({rows:.0e} x 20, 100 tasks)"
        print(f"| {label} | {result['input_mib']:.1f} | {result['extra_mib']:.1f} | "
              f"{result['extra_mib'] / result['input_mib']:.2f} |")


if __name__ == "__main__":
    main()
