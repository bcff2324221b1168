"""Multiclass tasks on real data: School exam scores in three bands.

Usage (from the repository root)::

    python benchmarks/multiclass.py ../shared/data/school.mat [--n-splits 5]
    python benchmarks/multiclass.py ../shared/data/school.mat --timing

Data: MALSAR's ``school.mat`` (139 schools, 15,362 students, 28 features).
Each student's exam score becomes a class, ``low`` / ``mid`` / ``high``, by
the tertiles of the training scores of all schools, so the classes mean the
same everywhere; a school may lack one (a strong school with no ``low``
student in its training rows), which the multinomial model handles by giving
that class probability 0 for the school.

Protocol (``--n-splits`` repetitions): every school is split within itself,
75% of its rows for training and 25% for testing; features are standardized
on the training rows.  Models, each with its strength chosen on the training
rows by 5-fold cross-validation of the held-out log-loss:

* ``pooled``: one ``LogisticRegressionCV`` on all schools' rows (no task);
* ``independent``: ``LogisticRegression()`` (``C = 1``) on each school, the
  scikit-learn user's default; a school with a single training class
  predicts it;
* ``l2``, ``l21``, ``trace``: :class:`mtlinear.MultiTaskClassifierCV` with
  ``task_col`` (multinomial per school, one penalty on the ``(28, 139 x 3)``
  class weights), 10 alphas;
* ``mean``: ``l2`` plus ``task_graph="mean"`` (each school's class weights
  pulled towards the mean school's), ``graph_alpha`` searched too.

Metrics on the test rows: the mean over schools of the per-school log-loss
(probabilities clipped at 1e-15) and accuracy, and the fit time (search
included).

``--timing``: on one training split, :class:`mtlinear.MultiTaskClassifier`
(``l2``, Newton-CG) against ``LogisticRegression`` fitted school by school
(lbfgs, newton-cg; saga did not reach the target at ``tol=1e-14``) at
``C_t = 1 / (alpha n_t)``, the same objective,
judged by one numpy function (:func:`objective`), on the schools that have
every band in their training rows (elsewhere the two objectives differ):
every solver's ``tol`` is
divided by 10 from its default until its relative suboptimality is at most
1e-6, then the median of 3 fits at that ``tol``.  The first fit in a fresh
process (compiled kernels loaded) is timed separately.
"""
import argparse
import subprocess
import sys
import time
import warnings

import numpy as np
from scipy.special import logsumexp
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
from sklearn.preprocessing import StandardScaler

from mtlinear import MultiTaskClassifier, MultiTaskClassifierCV
from mtlinear.datasets import load_school
from school import per_task_split

BANDS = np.array(["high", "low", "mid"])  # sorted, as classes_


def banded(y, edges):
    return np.select([y < edges[0], y < edges[1]], ["low", "mid"], "high")


def task_log_loss(y, proba, classes):
    """Log-loss of one school's rows, probabilities clipped at 1e-15."""
    p = proba[np.arange(len(y)), np.searchsorted(classes, y)]
    return -np.mean(np.log(np.clip(p, 1e-15, 1.0)))


def scores(y, proba, tasks, classes):
    """Mean over schools of the log-loss and the accuracy."""
    losses, accuracies = [], []
    for t in np.unique(tasks):
        rows = tasks == t
        losses.append(task_log_loss(y[rows], proba[rows], classes))
        accuracies.append(np.mean(classes[np.argmax(proba[rows], axis=1)]
                                  == y[rows]))
    return float(np.mean(losses)), float(np.mean(accuracies))


def independent_proba(X_train, y_train, t_train, X_test, t_test):
    """``LogisticRegression()`` per school, probabilities over all bands."""
    proba = np.zeros((len(X_test), BANDS.size))
    for t in np.unique(t_test):
        train, test = t_train == t, t_test == t
        labels = np.unique(y_train[train])
        if labels.size == 1:
            proba[np.ix_(test, np.searchsorted(BANDS, labels))] = 1.0
            continue
        model = LogisticRegression(max_iter=1000).fit(X_train[train], y_train[train])
        proba[np.ix_(test, np.searchsorted(BANDS, model.classes_))] = (
            model.predict_proba(X_test[test]))
    return proba


MODELS = {
    "l2": dict(penalty="l2"),
    "l21": dict(penalty="l21"),
    "trace": dict(penalty="trace"),
    "mean": dict(penalty="l2", task_graph="mean",
                 graph_alpha=[0.01, 0.1, 1.0]),
}


def run_split(X, scores_raw, tasks, seed):
    rng = np.random.default_rng(seed)
    train, test = per_task_split(tasks, 0.25, rng)
    edges = np.quantile(scores_raw[train], [1 / 3, 2 / 3])
    y = banded(scores_raw, edges)
    scaler = StandardScaler().fit(X[train])
    Xs = scaler.transform(X)
    Xt = np.column_stack([Xs, tasks])
    out = {}
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pooled = LogisticRegressionCV(Cs=10, cv=5, scoring="neg_log_loss",
                                      max_iter=1000).fit(Xs[train], y[train])
    out["pooled"] = scores(y[test], pooled.predict_proba(Xs[test]), tasks[test],
                           BANDS) + (time.perf_counter() - start,)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        proba = independent_proba(Xs[train], y[train], tasks[train], Xs[test],
                                  tasks[test])
    out["independent"] = scores(y[test], proba, tasks[test], BANDS) + (
        time.perf_counter() - start,)
    for name, params in MODELS.items():
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = MultiTaskClassifierCV(task_col=-1, cv=5, alphas=10,
                                          **params).fit(Xt[train], y[train])
        out[name] = scores(y[test], model.predict_proba(Xt[test]), tasks[test],
                           model.classes_) + (time.perf_counter() - start,)
    return out


# ------------------------------------------------------------ timing
def objective(coef, intercept, X, y_codes, tasks, alpha):
    """``sum_t mean_i CE_i + alpha / 2 ||W||^2`` with ``coef`` (T, K, d) and
    ``intercept`` (T, K) (``-inf``: a class the school lacks)."""
    value = 0.0
    for t in range(coef.shape[0]):
        rows = tasks == t
        Z = X[rows] @ coef[t].T + intercept[t]
        value += np.mean(logsumexp(Z, axis=1)
                         - Z[np.arange(rows.sum()), y_codes[rows]])
    return value + 0.5 * alpha * float(np.sum(coef * coef))


def sklearn_fit(solver, tol, X, y_codes, tasks, alpha, K):
    """``LogisticRegression`` school by school (every school has all K
    bands here), as ``(coef (T, K, d), intercept (T, K))``."""
    T, d = tasks.max() + 1, X.shape[1]
    coef, intercept = np.zeros((T, K, d)), np.zeros((T, K))
    for t in range(T):
        rows = tasks == t
        model = LogisticRegression(C=1.0 / (alpha * rows.sum()), solver=solver,
                                   tol=tol, max_iter=100_000).fit(
            X[rows], y_codes[rows])
        coef[t], intercept[t] = model.coef_, model.intercept_
    return coef, intercept


def timed(fit, repeats=3):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fit()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), result


def tuned(fit, judge, start_tol, target=1e-6):
    """``(tol, seconds, suboptimality)`` at the first tol reaching target."""
    tol = start_tol
    for _ in range(10):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = fit(tol)
        gap = judge(*result)
        if gap <= target:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                seconds, _ = timed(lambda: fit(tol))
            return tol, seconds, gap
        tol /= 10
    return tol, np.nan, gap


FIRST_CALL = r"""
import sys, time, numpy as np
from mtlinear import MultiTaskClassifier
X = np.load(sys.argv[1]); y = np.load(sys.argv[2])
start = time.perf_counter()
MultiTaskClassifier("l2", float(sys.argv[3]), task_col=-1).fit(X, y)
print(time.perf_counter() - start)
"""


def timing(X, scores_raw, tasks, seed):
    rng = np.random.default_rng(seed)
    train, _ = per_task_split(tasks, 0.25, rng)
    X, tasks = StandardScaler().fit_transform(X[train]), tasks[train]
    codes = np.searchsorted(np.quantile(scores_raw[train], [1 / 3, 2 / 3]),
                            scores_raw[train], side="right")
    # the schools with every band: elsewhere scikit-learn fits fewer classes
    # and mtlinear adds pseudo-samples, two different objectives
    full = np.array([np.unique(codes[tasks == t]).size == 3
                     for t in range(tasks.max() + 1)])
    keep = full[tasks]
    X, codes = X[keep], codes[keep]
    tasks = np.unique(tasks[keep], return_inverse=True)[1]
    print(f"{full.sum()} of {full.size} schools (those with every band in "
          f"their training rows), {keep.sum()} rows\n")
    Xt = np.column_stack([X, tasks])
    n_mean = np.bincount(tasks).mean()
    print("| alpha | solver | tol | seconds | suboptimality | mtlinear / solver |")
    print("|---|---|---|---|---|---|")
    for alpha in (1.0 / n_mean, 0.01 / n_mean):
        best = MultiTaskClassifier("l2", alpha, task_col=-1, tol=1e-14,
                                   max_iter=1000).fit(Xt, codes)
        optimum = objective(best.coef_, best.intercept_, X, codes, tasks, alpha)

        def judge(coef, intercept):
            value = objective(coef, intercept, X, codes, tasks, alpha)
            return (value - optimum) / abs(optimum)

        def ours(tol):
            model = MultiTaskClassifier("l2", alpha, task_col=-1, tol=tol).fit(
                Xt, codes)
            return model.coef_, model.intercept_
        rows = [("mtlinear", tuned(ours, judge, 1e-4))]
        for solver in ("lbfgs", "newton-cg"):  # saga: 1e-6 not reached
            rows.append((solver, tuned(
                lambda tol, s=solver: sklearn_fit(s, tol, X, codes, tasks, alpha, 3),
                judge, 1e-4)))
        mine = rows[0][1][1]
        for name, (tol, seconds, gap) in rows:
            print(f"| {alpha:.2e} | {name} | {tol:.0e} | {seconds:.3f} | "
                  f"{gap:.1e} | {mine / seconds:.2f} |")
    import os
    import tempfile
    with tempfile.TemporaryDirectory() as folder:
        np.save(os.path.join(folder, "X.npy"), Xt)
        np.save(os.path.join(folder, "y.npy"), codes)
        first = subprocess.run(
            [sys.executable, "-c", FIRST_CALL, os.path.join(folder, "X.npy"),
             os.path.join(folder, "y.npy"), str(1.0 / n_mean)],
            capture_output=True, text=True, check=True).stdout.split()[-1]
    print(f"\nfirst fit in a fresh process (l2, alpha = 1 / mean n_t): "
          f"{float(first):.2f} s")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", help="MALSAR's school.mat")
    parser.add_argument("--n-splits", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timing", action="store_true",
                        help="solver times at equal objective instead")
    args = parser.parse_args(argv)
    X, y = load_school(args.path)
    tasks, X = X[:, -1].astype(int), X[:, :-1]
    tasks = np.unique(tasks, return_inverse=True)[1]
    if args.timing:
        timing(X, y, tasks, args.seed)
        return
    results = [run_split(X, y, tasks, args.seed + k) for k in range(args.n_splits)]
    print(f"School, exam score in tertile bands, {args.n_splits} splits "
          "(75/25 within each school); mean over schools of the test log-loss "
          "and accuracy, mean ± std over splits\n")
    print("| model | log-loss | accuracy | fit s |")
    print("|---|---|---|---|")
    for name in results[0]:
        values = np.array([r[name] for r in results])
        mean, std = values.mean(axis=0), values.std(axis=0)
        print(f"| {name} | {mean[0]:.4f} ± {std[0]:.4f} | "
              f"{mean[1]:.4f} ± {std[1]:.4f} | {mean[2]:.1f} |")


if __name__ == "__main__":
    main()
