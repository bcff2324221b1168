"""Task graphs on raw (unscaled) features: FISTA alone against ``"auto"``.

Usage::

    python benchmarks/task_graphs.py ../shared/data/school.mat
        [--alpha 0.01] [--graphs mean chain] [--penalties l21 trace l1]
        [--classifier]

School's raw features mix exam percentages with 0/1 dummies, so the data
fit's curvatures span several decades and the proximal gradient (FISTA),
whose step the largest curvature sets, crawls on the rest.  A task graph
adds the coupling ``graph_alpha tr(W L W^T)``; ``solver="auto"`` finishes an
unconverged FISTA with ADMM, which splits the coupling off as a third term
(``mtlinear/_admm.py``).  ``--classifier`` fits ``y > 20`` with the logistic
loss instead, which ``"auto"`` finishes with proximal Newton with ADMM
steps (``mtlinear/_newton_admm.py``), the coupling split off in the same way.

Each fit runs once to load the compiled kernels, then is timed once; the
table gives time, iterations, the final duality gap and whether the fit
reached its target ``tol * P(0)`` (default ``tol=1e-4``, ``max_iter=5000``;
no ConvergenceWarning).
"""
import argparse
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from mtlinear import MultiTaskClassifier, MultiTaskRegressor, load_school


def fit(estimator, X, y):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        start = time.perf_counter()
        estimator.fit(X, y)
        seconds = time.perf_counter() - start
    converged = not any(issubclass(w.category, ConvergenceWarning)
                        for w in caught)
    return seconds, converged


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path")
    parser.add_argument("--alpha", type=float, default=0.01)
    parser.add_argument("--graphs", nargs="+", default=["mean", "chain"])
    parser.add_argument("--penalties", nargs="+", default=["l21", "trace", "l1"])
    parser.add_argument("--classifier", action="store_true")
    args = parser.parse_args()
    X, y = load_school(args.path)
    X, y = np.asarray(X, dtype=float), np.asarray(y, dtype=float)
    Estimator = MultiTaskRegressor
    if args.classifier:
        Estimator, y = MultiTaskClassifier, (y > 20).astype(int)
    print(f"{Estimator.__name__} on raw School features, alpha={args.alpha}")
    print(f"{'graph':6} {'penalty':7} {'solver':6} {'s':>7} {'iter':>6} "
          f"{'gap':>10}  converged")
    for graph in args.graphs:
        for penalty in args.penalties:
            for solver in ("fista", "auto"):
                model = Estimator(penalty=penalty, alpha=args.alpha,
                                  task_col=-1, task_graph=graph, solver=solver)
                fit(model, X, y)  # the compiled kernels loaded
                seconds, converged = fit(model, X, y)
                print(f"{graph:6} {penalty:7} {solver:6} {seconds:7.2f} "
                      f"{model.n_iter_:6d} {model.dual_gap_:10.3g}  "
                      f"{converged}", flush=True)


if __name__ == "__main__":
    main()
