"""How fits grow with the number of tasks: many small tasks (patients,
sensors), stacked layout.

Each task has ``--rows`` rows of ``--features`` Gaussian features and its
own weights around a shared one; every timing doubles the number of tasks
``T`` and reports the seconds (best of ``--repeats``, the first, compiling
call excluded) and the growth exponent of the last doubling (1: linear in
``T``).  What is timed:

* ``TaskStratifiedKFold.split`` (5 folds);
* ``alpha_max`` of the logistic loss, l1;
* ``MultiTaskClassifier(penalty="l2")`` (class weights, labels per task);
* ``MultiTaskEstimator`` with a squared loss on even tasks and a logistic
  loss on odd ones, l21;
* ``MultiTaskRegressor(penalty="l1")``, against scikit-learn's ``Lasso``
  fitted task by task (the same problem: l1 is separable over tasks);
* ``MultiTaskRegressor(penalty="l21")`` and ``(penalty="l2")`` with
  ``task_graph="chain"`` (a sparse graph: memory and time grow with its
  edges).

Usage::

    python benchmarks/many_tasks.py
    python benchmarks/many_tasks.py --tasks 400 800 1600 3200 6400
"""
import argparse
import time
import warnings

import numpy as np


def problem(T, rows, d, seed=0):
    rng = np.random.default_rng(seed)
    shared = rng.standard_normal(d) * (rng.random(d) < 0.3)
    W = shared[:, None] + 0.3 * rng.standard_normal((d, T))
    task = np.repeat(np.arange(T), rows)
    X = rng.standard_normal((T * rows, d))
    z = np.einsum("ij,ji->i", X, W[:, task])
    y = z + rng.standard_normal(z.size)
    labels = np.where(z + rng.logistic(size=z.size) > 0, 1, 0)
    labels[::rows] = 1 - labels[1::rows]  # both classes in every task
    return np.column_stack([X, task]), y, labels, task


def best_of(repeats, fit):
    fit()  # compiles on the first call
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fit()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", nargs="+", type=int,
                        default=[800, 1600, 3200, 6400])
    parser.add_argument("--rows", type=int, default=20)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)

    from sklearn.linear_model import Lasso

    from mtlinear import (MultiTaskClassifier, MultiTaskEstimator,
                          MultiTaskRegressor, TaskStratifiedKFold, alpha_max)
    warnings.simplefilter("ignore")
    timings = {}
    for T in args.tasks:
        X, y, labels, task = problem(T, args.rows, args.features)
        losses = {t: "squared" if t % 2 == 0 else "logistic" for t in range(T)}
        mixed = np.where(task % 2 == 0, y, labels).astype(float)
        a_l1 = alpha_max(X, y, penalty="l1", task_col=-1) / 10
        # each task's rows for the peer, outside its timing
        per_task = [(X[rows, :-1], y[rows])
                    for rows in np.split(np.arange(T * args.rows), T)]
        cases = {
            "TaskStratifiedKFold.split": lambda: list(
                TaskStratifiedKFold(5).split(X, groups=task)),
            "alpha_max logistic l1": lambda: alpha_max(
                X, labels, penalty="l1", loss="logistic", task_col=-1),
            "MultiTaskClassifier l2": lambda: MultiTaskClassifier(
                penalty="l2", alpha=1e-2, task_col=-1).fit(X, labels),
            "MultiTaskEstimator mixed l21": lambda: MultiTaskEstimator(
                loss=losses, penalty="l21", alpha=1e-2, task_col=-1).fit(X, mixed),
            "MultiTaskRegressor l1": lambda: MultiTaskRegressor(
                penalty="l1", alpha=a_l1, task_col=-1).fit(X, y),
            "Lasso per task (scikit-learn)": lambda: [
                Lasso(alpha=a_l1).fit(Xt, yt) for Xt, yt in per_task],
            "MultiTaskRegressor l21, chain graph": lambda: MultiTaskRegressor(
                penalty="l21", alpha=1e-2, task_col=-1, task_graph="chain",
                graph_alpha=1.0).fit(X, y),
            "MultiTaskRegressor l2, chain graph": lambda: MultiTaskRegressor(
                penalty="l2", alpha=1e-2, task_col=-1, task_graph="chain",
                graph_alpha=1.0).fit(X, y),
        }
        for name, fit in cases.items():
            timings.setdefault(name, []).append(best_of(args.repeats, fit))
        print(f"T = {T} done", flush=True)

    print(f"\n{args.rows} rows x {args.features} features per task; seconds, "
          f"best of {args.repeats}; last column: growth exponent of the last "
          "doubling\n")
    print("| | " + " | ".join(f"T = {T}" for T in args.tasks) + " | exponent |")
    print("|---" * (len(args.tasks) + 2) + "|")
    for name, seconds in timings.items():
        exponent = np.log(seconds[-1] / seconds[-2]) / np.log(
            args.tasks[-1] / args.tasks[-2]) if len(seconds) > 1 else np.nan
        print(f"| {name} | " + " | ".join(f"{s:.3f}" for s in seconds)
              + f" | {exponent:.2f} |")


if __name__ == "__main__":
    main()
