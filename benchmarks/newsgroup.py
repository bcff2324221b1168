"""Newsgroup demonstration: independent l2 / l1 logistic models vs l21 and trace.

Usage (from the repository root)::

    python benchmarks/newsgroup.py ../shared/data/newsgroup [--n-splits 3]
        [--train-fraction 0.2] [--seed 0]

The directory holds four ``.mat`` files (``comp.vs.sci_task1/2``,
``rec.vs.talk_task1/2``), one binary task each: ``fea`` (documents x 2,000
term counts, sparse CSC) and ``gnd`` (labels 1, 2).  Each file has its own
documents, so the tasks go in the stacked layout (``task_col=-1``).

Are the 2,000 columns the same terms in every file?  The files carry no
vocabulary, so this is inferred: the per-column document frequencies of any
two files correlate at 0.87 to 0.93 (about 0 after permuting the columns of
one file), column 0 occurs in every document of every file, and the columns
are in roughly decreasing frequency in all four.  The script prints this check.
It is consistent with one shared vocabulary (as the shared ``W`` of l21 and
trace assumes); it does not prove it.

Protocol
--------
Features: sublinear term frequency ``1 + log(count)``, each document scaled
to unit Euclidean norm (per-row, no statistics learned from other rows, so no
leakage across splits).  For each of ``--n-splits`` repetitions every task
is split within itself, stratified by class: ``--train-fraction`` of its
documents for training, the rest for testing.  Inner cross-validation on the
training rows uses ``--inner-folds`` folds stratified on (task, class); the
same folds serve every method, restricted to each task's rows for the
per-task scikit-learn models.  Every method chooses its regularization by the
held-out log-loss over the same grid of ``--n-alphas`` values:
``alpha_max * geomspace(1, 1e-3)`` for l1, l21 and trace (``alpha_max`` of
the training part), ``geomspace(1e-2, 1e-7)`` for l2.

Methods
-------
mtlinear l2, l1, l21, trace
    :class:`mtlinear.MultiTaskClassifierCV` (warm-started path per fold),
    then the refit on all training rows.
sklearn l2, sklearn l1
    ``LogisticRegressionCV`` per task (``lbfgs`` / ``saga``) with
    ``Cs = 1 / (alpha * n_t)``, ``n_t`` the task's training rows in a fold
    (the same objective, see :class:`mtlinear.MultiTaskClassifier`).

Metrics on the test rows, per task then averaged over the four tasks; mean ±
std over the splits: accuracy, ROC AUC (from ``decision_function``).
Times: the whole inner search, and the refit at the chosen alpha alone.

Solver speed on one and the same problem
----------------------------------------
At the end, on all rows, ``MultiTaskClassifier(penalty, alpha)`` against
scikit-learn's ``LogisticRegression(C = 1 / (alpha n_t))`` on each task
(which is the same optimization problem for l2 and l1), at each library's
default tolerance and at a tight one: median of ``--repeats`` warm fits, the
objective each reached (ours, evaluated here), and the first fit of the
process (Numba compilation or cache load) separately.
"""
import argparse
import glob
import os
import sys
import time
import warnings

import numpy as np
import scipy.io as sio
import scipy.sparse as sp
from scipy.stats import pearsonr
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, train_test_split

from mtlinear import (MultiTaskClassifier, MultiTaskClassifierCV, alpha_max,
                      stack_tasks)

PENALTIES = ("l2", "l1", "l21", "trace")
SKLEARN = {"l2": (0.0, "lbfgs"), "l1": (1.0, "saga")}
L2_GRID = (1e-2, 1e-7)
GRID_SPAN = 1e-3


# ---------------------------------------------------------------- data
def load(directory):
    """Per-task ``(X_t, y_t)`` (CSR, labels 1 / 2) and the task names."""
    files = sorted(glob.glob(os.path.join(directory, "*.mat")))
    if not files:
        raise SystemExit(f"no .mat files in {directory!r}")
    tasks = []
    for f in files:
        m = sio.loadmat(f)
        tasks.append((sp.csr_matrix(m["fea"], dtype=float), m["gnd"].ravel()))
    return tasks, [os.path.basename(f)[:-4] for f in files]


def sublinear_tf(X):
    """``1 + log(count)`` on the nonzeros, rows scaled to unit norm."""
    X = X.copy()
    X.data = 1.0 + np.log(X.data)
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
    return sp.diags(1.0 / np.where(norms > 0, norms, 1.0)) @ X


def vocabulary_check(tasks, names, seed):
    """Correlation of the per-column document frequencies between files."""
    df = [np.diff(sp.csc_matrix(X).indptr) / X.shape[0] for X, _ in tasks]
    rng = np.random.default_rng(seed)
    print("document frequency of each column, Pearson r between files "
          "(r after permuting one file's columns):")
    for i in range(len(df)):
        for j in range(i + 1, len(df)):
            r = pearsonr(df[i], df[j])[0]
            r0 = pearsonr(df[i], rng.permutation(df[j]))[0]
            print(f"  {names[i]:18} {names[j]:18} r = {r:.3f}  ({r0:+.3f})")
    print("  columns present in every document of a file: "
          + ", ".join(f"{np.flatnonzero(d == 1).tolist()}" for d in df))


# ---------------------------------------------------------------- splits
def outer_split(tasks, fraction, seed):
    """Per task, class-stratified: (train_list, test_list) of (X_t, y_t)."""
    train, test = [], []
    for t, (X, y) in enumerate(tasks):
        Xa, Xb, ya, yb = train_test_split(X, y, train_size=fraction, stratify=y,
                                          random_state=seed * 100 + t)
        train.append((Xa, ya))
        test.append((Xb, yb))
    return train, test


def inner_folds(train, n_folds, seed):
    """(task, class)-stratified folds as stacked-row indices, and per task."""
    task = np.concatenate([np.full(len(y), t) for t, (_, y) in enumerate(train)])
    label = np.concatenate([y for _, y in train])
    key = task * 10 + label
    folds = list(StratifiedKFold(n_folds, shuffle=True, random_state=seed)
                 .split(np.zeros(len(key)), key))
    per_task = []
    for t in range(len(train)):
        rows = np.flatnonzero(task == t)
        position = np.full(len(task), -1)
        position[rows] = np.arange(rows.size)
        per_task.append([(position[np.intersect1d(a, rows)],
                          position[np.intersect1d(b, rows)]) for a, b in folds])
    return folds, per_task


# ---------------------------------------------------------------- methods
def grid(penalty, X, y, n_alphas):
    if penalty == "l2":
        return np.geomspace(*L2_GRID, n_alphas)
    top = alpha_max(X, np.where(y == 2, 1.0, -1.0), penalty=penalty, task_col=-1,
                    loss="logistic")
    return top * np.geomspace(1.0, GRID_SPAN, n_alphas)


def run_mtlinear(penalty, X, y, alphas, folds, tol):
    search = MultiTaskClassifierCV(penalty=penalty, alphas=alphas, cv=folds,
                                   task_col=-1, tol=tol)
    start = time.perf_counter()
    search.fit(X, y)
    search_time = time.perf_counter() - start
    model = MultiTaskClassifier(penalty=penalty, alpha=search.alpha_, task_col=-1,
                                tol=tol)
    start = time.perf_counter()
    model.fit(X, y)
    refit_time = time.perf_counter() - start
    return model, search.alpha_, search_time, refit_time


def run_sklearn(penalty, train, alphas, per_task_folds, n_folds, tol):
    l1_ratio, solver = SKLEARN[penalty]
    models, chosen, search_time, refit_time = [], [], 0.0, 0.0
    for (Xt, yt), folds in zip(train, per_task_folds):
        n_fit = len(yt) * (n_folds - 1) / n_folds  # rows of a training fold
        search = LogisticRegressionCV(Cs=1.0 / (alphas * n_fit),
                                      l1_ratios=[l1_ratio], cv=folds,
                                      scoring="neg_log_loss", solver=solver,
                                      tol=tol, max_iter=10_000,
                                      use_legacy_attributes=False)
        start = time.perf_counter()
        search.fit(Xt, yt)
        search_time += time.perf_counter() - start
        C = float(np.ravel(search.C_)[0])
        model = LogisticRegression(C=C, l1_ratio=l1_ratio, solver=solver, tol=tol,
                                   max_iter=10_000)
        start = time.perf_counter()
        models.append(model.fit(Xt, yt))
        refit_time += time.perf_counter() - start
        chosen.append(1.0 / (C * len(yt)))
    return models, float(np.median(chosen)), search_time, refit_time


def evaluate(decisions, test):
    acc = [np.mean((z > 0) == (y == 2)) for z, (_, y) in zip(decisions, test)]
    auc = [roc_auc_score(y == 2, z) for z, (_, y) in zip(decisions, test)]
    return float(np.mean(acc)), float(np.mean(auc))


def structure(coef):
    """Features used (nonzero columns of coef_) and numerical rank of W."""
    s = np.linalg.svd(coef, compute_uv=False)
    return (int(np.sum(np.abs(coef).max(axis=0) > 0)),
            int(np.sum(s > 1e-6 * s[0])) if s[0] > 0 else 0)


# ---------------------------------------------------------------- one problem
def objective(models_coef, intercepts, tasks, penalty, alpha):
    """Our objective, written out: per-task mean logistic loss + alpha R(W)."""
    fit = 0.0
    for (X, y), w, b in zip(tasks, models_coef, intercepts):
        z = X @ w + b
        fit += np.mean(np.logaddexp(0.0, -np.where(y == 2, 1.0, -1.0) * z))
    W = np.asarray(models_coef)
    pen = 0.5 * np.sum(W * W) if penalty == "l2" else np.abs(W).sum()
    return fit + alpha * pen


def timed(fit, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fit()
        times.append(time.perf_counter() - start)
    return out, float(np.median(times))


def same_problem(tasks, X, y, alphas, repeats):
    print("\nSame problem, all rows: MultiTaskClassifier(penalty, alpha) vs "
          "LogisticRegression(C = 1/(alpha n_t)) on each task")
    print("time: median of warm fits; objective: ours, evaluated here "
          "(lower is better)\n")
    header = (f"{'penalty':8} {'alpha':>8} {'tol':>7} {'mtlinear s':>11} "
              f"{'sklearn s':>10} {'ratio':>6} {'objective mtlinear':>19} "
              f"{'objective sklearn':>18} {'max |dcoef|':>12}")
    print(header)
    print("-" * len(header))
    for penalty, alpha in alphas.items():
        l1_ratio, solver = SKLEARN[penalty]
        for ours_tol, their_tol in ((1e-4, 1e-4), (1e-8, 1e-8)):
            model, t_ours = timed(lambda: MultiTaskClassifier(
                penalty=penalty, alpha=alpha, task_col=-1, tol=ours_tol,
                max_iter=100_000).fit(X, y), repeats)
            theirs, t_theirs = timed(lambda: [LogisticRegression(
                C=1.0 / (alpha * len(yt)), l1_ratio=l1_ratio, solver=solver,
                tol=their_tol, max_iter=100_000).fit(Xt, yt)
                for Xt, yt in tasks], repeats)
            their_coef = [m.coef_[0] for m in theirs]
            p_ours = objective(model.coef_, model.intercept_, tasks, penalty, alpha)
            p_theirs = objective(their_coef, [m.intercept_[0] for m in theirs],
                                 tasks, penalty, alpha)
            gap = np.abs(model.coef_ - np.array(their_coef)).max()
            print(f"{penalty:8} {alpha:8.1e} {ours_tol:7.0e} {t_ours:11.3f} "
                  f"{t_theirs:10.3f} {t_ours / t_theirs:6.2f} {p_ours:19.10f} "
                  f"{p_theirs:18.10f} {gap:12.2e}")
    print("\ntol: mtlinear's relative duality gap and scikit-learn's tol "
          "(different stopping rules; the objectives show where each stopped)")


# ---------------------------------------------------------------- main
def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("path", help="directory with the four newsgroup .mat files")
    parser.add_argument("--n-splits", type=int, default=3)
    parser.add_argument("--train-fraction", type=float, default=0.2)
    parser.add_argument("--inner-folds", type=int, default=3)
    parser.add_argument("--n-alphas", type=int, default=8)
    parser.add_argument("--tol", type=float, default=1e-4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    raw, names = load(args.path)
    tasks = [(sublinear_tf(X), y) for X, y in raw]
    sizes = [X.shape for X, _ in tasks]
    print(f"{len(tasks)} tasks: " + ", ".join(f"{n} {s[0]}x{s[1]}"
                                              for n, s in zip(names, sizes)))
    vocabulary_check(raw, names, args.seed)

    X_all, y_all = stack_tasks([X for X, _ in tasks], [y for _, y in tasks])
    start = time.perf_counter()
    MultiTaskClassifier(penalty="l21", alpha=1e-2, task_col=-1).fit(X_all, y_all)
    print(f"\nfirst fit of the process (Numba compilation or cache load "
          f"included): {time.perf_counter() - start:.2f} s")

    methods = [f"mtlinear {p}" for p in PENALTIES] + [f"sklearn {p}" for p in SKLEARN]
    results = {m: [] for m in methods}
    print(f"\n{args.n_splits} splits, {args.train_fraction:.0%} of each task for "
          f"training, {args.inner_folds}-fold inner search by log-loss over "
          f"{args.n_alphas} alphas", flush=True)
    for split in range(args.n_splits):
        train, test = outer_split(tasks, args.train_fraction, args.seed + split)
        X, y = stack_tasks([Xt for Xt, _ in train], [yt for _, yt in train])
        folds, per_task = inner_folds(train, args.inner_folds, args.seed + split)
        for method in methods:
            library, penalty = method.split()
            alphas = grid(penalty, X, y, args.n_alphas)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", ConvergenceWarning)
                if library == "mtlinear":
                    model, alpha, t_search, t_refit = run_mtlinear(
                        penalty, X, y, alphas, folds, args.tol)
                    decisions = [model.decision_function(stack_tasks(
                        [Xt], [yt], task_labels=[t])[0])
                        for t, (Xt, yt) in enumerate(test)]
                    n_feat, rank = structure(model.coef_)
                else:
                    models, alpha, t_search, t_refit = run_sklearn(
                        penalty, train, alphas, per_task, args.inner_folds, args.tol)
                    decisions = [m.decision_function(Xt)
                                 for m, (Xt, _) in zip(models, test)]
                    n_feat, rank = structure(np.array([m.coef_[0] for m in models]))
            unconverged = sum(issubclass(w.category, ConvergenceWarning)
                              for w in caught)
            acc, auc = evaluate(decisions, test)
            results[method].append(dict(acc=acc, auc=auc, alpha=alpha,
                                        search=t_search, refit=t_refit,
                                        features=n_feat, rank=rank,
                                        unconverged=unconverged))
            print(f"split {split + 1}/{args.n_splits} {method:15} accuracy "
                  f"{100 * acc:5.2f}%  AUC {auc:.4f}  alpha {alpha:.2e}  search "
                  f"{t_search:6.1f} s  refit {t_refit:5.2f} s"
                  + (f"  ({unconverged} ConvergenceWarnings)" if unconverged
                     else ""), flush=True)

    print("\nTest metrics per task, averaged over the 4 tasks; mean ± std over "
          "splits; alpha: median chosen (sklearn: median over tasks of "
          "1/(C n_t)); times: median per split")
    header = (f"{'method':15} {'accuracy %':>14} {'AUC':>16} {'alpha':>9} "
              f"{'search s':>9} {'refit s':>8} {'features':>9} {'rank W':>7} "
              f"{'unconv.':>8}")
    print(header)
    print("-" * len(header))
    for method, runs in results.items():
        col = {k: np.array([r[k] for r in runs]) for k in runs[0]}
        print(f"{method:15} {100 * col['acc'].mean():6.2f} ± "
              f"{100 * col['acc'].std():5.2f} {col['auc'].mean():7.4f} ± "
              f"{col['auc'].std():.4f} {np.median(col['alpha']):9.2e} "
              f"{np.median(col['search']):9.2f} {np.median(col['refit']):8.3f} "
              f"{int(np.median(col['features'])):9d} "
              f"{int(np.median(col['rank'])):7d} {int(col['unconverged'].sum()):8d}")
    print("features: columns of W not identically zero; rank W: singular values "
          "above 1e-6 of the largest; unconv.: ConvergenceWarnings, all splits")

    chosen = {p: float(np.median([r["alpha"] for r in results[f"mtlinear {p}"]]))
              for p in SKLEARN}
    same_problem(tasks, X_all, y_all, chosen, args.repeats)


if __name__ == "__main__":
    main(sys.argv[1:])
