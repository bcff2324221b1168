"""Landmine detection: pooled, independent and multi-task logistic models.

Usage (from the repository root)::

    python benchmarks/landmine.py ../shared/data/landmine.mat
    python benchmarks/landmine.py ../shared/data/landmine.mat --sizes 20 80 \\
        --repeats 3 --methods independent l21 --seed 1

The file is MALSAR's ``landmine.mat``, the benchmark of Xue, Liao, Carin and
Krishnapuram (JMLR 2007): 29 tasks (fields), 445 to 690 rows each, 9
features, about 6% positives (mines).

Protocol
--------
For every training size ``n`` per task (``--sizes``) and every repeat
(``--repeats``), each task's rows are split at random: ``n`` rows for
training, the rest for testing (seeded by ``--seed``, the size and the
repeat; every method sees the same split).  A task whose training rows hold a
single class is kept as drawn.  The features are standardized with the mean
and standard deviation of all tasks' training rows pooled.  The score of a
repeat is the mean over the 29 tasks of each task's test ROC AUC
(:func:`sklearn.metrics.roc_auc_score` on ``decision_function``); the table
gives its mean and standard deviation over repeats.

Methods (every regularization chosen by cross-validation with the tool's
default settings)
------------------------------------------------------------------------------
pooled
    one ``LogisticRegressionCV()`` on all tasks' training rows, no task
    information.
independent
    ``LogisticRegressionCV()`` per task.  A task whose minority class has
    fewer rows than its 5 stratified folds gets ``LogisticRegression()``
    instead, a task with a single class a constant score (AUC 0.5); both are
    counted.
l2, l21, trace
    ``MultiTaskClassifierCV(penalty=..., task_col=-1)`` on the stacked
    layout (features, then the task index).
l2-auc, l21-auc, trace-auc
    the same with ``scoring="roc_auc"`` (in the stacked layout the scorer
    ranks all tasks' validation rows together).  A search that fails is
    counted and its repeat left out of the mean.
mean
    ``MultiTaskClassifierCV(penalty="l2", task_graph="mean", task_col=-1)``:
    every task's weights pulled towards the mean task (Evgeniou and Pontil's
    regularized MTL), ``graph_alpha`` searched over :data:`GRAPH_ALPHAS` with
    ``alpha``.
mtrl, cmtl
    :class:`mtlinear.MultiTaskRelationClassifier` (a learned task
    covariance) and :class:`mtlinear.ClusteredMultiTaskClassifier` (3
    learned clusters), their strengths chosen by ``GridSearchCV`` over
    :data:`RELATION_MODELS` (task-stratified folds, the per-task held-out
    log-loss averaged).

Every method runs with BLAS on one thread (as mtlinear's solvers run small
problems anyway): on a busy 2-core machine OpenBLAS's threads made the
scikit-learn fits on 80 rows up to 50 times slower.  Times are the median
over repeats of the wall-clock seconds of one repeat (all tasks fitted and
scored); the median leaves out the first mtlinear fit's loading of its
compiled kernels.

Warnings that the protocol provokes on purpose (tasks with a single class,
classes rarer than the folds, convergence) are counted, not printed.
"""
import argparse
import sys
import time
import warnings
from collections import Counter
from contextlib import contextmanager
from functools import partial

import numpy as np
import scipy.io
from sklearn.exceptions import ConvergenceWarning, UndefinedMetricWarning
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from sklearn.model_selection import GridSearchCV

from mtlinear import (ClusteredMultiTaskClassifier, MultiTaskClassifierCV,
                      MultiTaskRelationClassifier, stack_tasks)
from mtlinear.metrics import task_scorer
from mtlinear.model_selection import TaskStratifiedKFold

LRCV_FOLDS = 5  # LogisticRegressionCV's default number of stratified folds

# (name, category, part of the message): warnings counted, not printed.
# The categories are subclasses of UserWarning: the first match wins.
COUNTED_WARNINGS = (
    ("convergence", ConvergenceWarning, ""),
    ("undefined fold AUC", UndefinedMetricWarning, ""),
    ("single-class task", UserWarning, "training samples of a single class"),
    ("rare group in folds", UserWarning, "The least populated"),
    ("all-zero model", UserWarning, "every coefficient is zero"),
    ("task score undefined in a fold", UserWarning, "The score is undefined"),
)


def load_landmine(path):
    """Per-task features ``(n_t, 9)`` and 0/1 labels ``(n_t,)`` of ``landmine.mat``."""
    data = scipy.io.loadmat(path)
    features = [np.asarray(x, dtype=np.float64) for x in data["feature"].ravel()]
    labels = [np.asarray(y).ravel().astype(int) for y in data["label"].ravel()]
    return features, labels


def draw_split(features, labels, size, rng):
    """Standardized stacked training and test sets: ``size`` training rows per task.

    Returns
    -------
    dict
        ``X_train``, ``X_test``: features (scaled with the training rows'
        pooled mean and standard deviation) and the task index as last
        column; ``y_train``, ``y_test``: 0/1 labels.
    """
    parts = {"X_train": [], "y_train": [], "X_test": [], "y_test": []}
    for X, y in zip(features, labels):
        rows = rng.permutation(len(y))
        parts["X_train"].append(X[rows[:size]])
        parts["y_train"].append(y[rows[:size]])
        parts["X_test"].append(X[rows[size:]])
        parts["y_test"].append(y[rows[size:]])
    X_train, y_train = stack_tasks(parts["X_train"], parts["y_train"])
    X_test, y_test = stack_tasks(parts["X_test"], parts["y_test"])
    scaler = StandardScaler().fit(X_train[:, :-1])
    X_train[:, :-1] = scaler.transform(X_train[:, :-1])
    X_test[:, :-1] = scaler.transform(X_test[:, :-1])
    return dict(X_train=X_train, y_train=y_train, X_test=X_test, y_test=y_test)


def single_class_tasks(X, y):
    """Number of tasks (last column of ``X``) whose labels ``y`` hold one class."""
    tasks = X[:, -1]
    return sum(np.unique(y[tasks == t]).size < 2 for t in np.unique(tasks))


def mean_task_auc(X, y, scores):
    """Mean over tasks (last column of ``X``) of each task's ROC AUC."""
    tasks = X[:, -1]
    return np.mean([roc_auc_score(y[tasks == t], scores[tasks == t])
                    for t in np.unique(tasks)])


def fit_pooled(split, notes):
    """Scores of one ``LogisticRegressionCV`` on all training rows, task column dropped."""
    model = LogisticRegressionCV().fit(split["X_train"][:, :-1], split["y_train"])
    return model.decision_function(split["X_test"][:, :-1])


def fit_independent(split, notes):
    """Scores of one logistic model per task (see the module docstring).

    Counts ``"LogisticRegression fallback"`` and ``"constant (one class)"``
    in ``notes``.
    """
    X, y, X_test = split["X_train"], split["y_train"], split["X_test"]
    scores = np.zeros(X_test.shape[0])
    for t in np.unique(X[:, -1]):
        rows, test = X[:, -1] == t, X_test[:, -1] == t
        counts = np.bincount(y[rows], minlength=2)
        if counts.min() == 0:
            notes["constant (one class)"] += 1
            continue
        if counts.min() < LRCV_FOLDS:
            notes["LogisticRegression fallback"] += 1
            model = LogisticRegression()
        else:
            model = LogisticRegressionCV()
        model.fit(X[rows, :-1], y[rows])
        scores[test] = model.decision_function(X_test[test, :-1])
    return scores


# graph_alpha searched by the "mean" method: the logistic loss's curvature
# is at most 1/4 on standardized features, so these span "ignore the graph"
# to "one model for all tasks"
GRAPH_ALPHAS = (10.0, 1.0, 0.1, 0.01, 0.001)


def fit_multitask(split, notes, penalty, scoring=None, **graph):
    """Scores of ``MultiTaskClassifierCV`` on the stacked layout; records
    the chosen alpha in ``notes["alphas"]``."""
    model = MultiTaskClassifierCV(penalty=penalty, task_col=-1, scoring=scoring,
                                  **graph)
    model.fit(split["X_train"], split["y_train"])
    notes.setdefault("alphas", []).append(model.alpha_)
    return model.decision_function(split["X_test"])


# the relation models' grids: (estimator, its grid), searched by GridSearchCV
RELATION_MODELS = {
    "mtrl": (MultiTaskRelationClassifier(task_col=-1),
             {"alpha": [1e-3, 1e-2, 1e-1],
              "relation_alpha": [1e-3, 1e-2, 1e-1, 1.0]}),
    "cmtl": (ClusteredMultiTaskClassifier(task_col=-1, n_clusters=3),
             {"alpha": [0.0, 1e-2],
              "cluster_alpha": [1e-3, 1e-2, 1e-1, 1.0]}),
}


def fit_relation_model(split, notes, name):
    """Scores of a learned-relation classifier whose strengths are chosen by
    ``GridSearchCV`` on :data:`RELATION_MODELS`' grid: task-stratified folds,
    the held-out log-loss of each task averaged (``task_scorer``)."""
    estimator, grid = RELATION_MODELS[name]
    search = GridSearchCV(estimator, grid, scoring=task_scorer("neg_log_loss"),
                          cv=TaskStratifiedKFold(LRCV_FOLDS, task_col=-1))
    search.fit(split["X_train"], split["y_train"])
    notes.setdefault("alphas", []).append(search.best_params_["alpha"])
    return search.decision_function(split["X_test"])


# each takes (split, notes) and returns the test rows' decision values
METHODS = {
    "pooled": fit_pooled,
    "independent": fit_independent,
    **{p: partial(fit_multitask, penalty=p) for p in ("l2", "l21", "trace")},
    **{f"{p}-auc": partial(fit_multitask, penalty=p, scoring="roc_auc")
       for p in ("l2", "l21", "trace")},
    "mean": partial(fit_multitask, penalty="l2", task_graph="mean",
                    graph_alpha=list(GRAPH_ALPHAS)),
    **{name: partial(fit_relation_model, name=name) for name in RELATION_MODELS},
}


@contextmanager
def counted_warnings(notes):
    """Count the warnings of :data:`COUNTED_WARNINGS` in ``notes``; pass the
    others on.  scikit-learn's notices that ``LogisticRegressionCV``'s
    defaults will change are dropped: this benchmark measures the defaults."""
    caught = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            warnings.filterwarnings("ignore", category=FutureWarning,
                                    module=r"sklearn\.")
            yield
    finally:  # also the warnings of a fit that raised
        for w in caught:
            name = next((name for name, category, part in COUNTED_WARNINGS
                         if issubclass(w.category, category)
                         and part in str(w.message)), None)
            if name is None:
                warnings.warn_explicit(w.message, w.category, w.filename,
                                       w.lineno)
            else:
                notes[name] += 1


def run_method(method, split, notes):
    """``(mean task AUC, wall seconds)`` of one method on one split.

    ``notes`` (a Counter) receives the counted warnings and the method's own
    counts.  A ``ValueError`` of the fit is counted as ``"failed"``, its
    first message kept in ``notes["error"]``; the AUC is then NaN.
    """
    start = time.perf_counter()
    try:
        with counted_warnings(notes):
            scores = METHODS[method](split, notes)
    except ValueError as error:
        notes["failed"] += 1
        notes.setdefault("error", str(error))
        return np.nan, time.perf_counter() - start
    seconds = time.perf_counter() - start
    return mean_task_auc(split["X_test"], split["y_test"], scores), seconds


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("path", help="MALSAR's landmine.mat")
    parser.add_argument("--sizes", nargs="+", type=int, default=[20, 40, 80, 160],
                        help="training rows per task")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--methods", nargs="+", choices=list(METHODS),
                        default=list(METHODS))
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def print_tables(sizes, methods, auc, seconds, notes, n_single, n_draws):
    """Markdown tables: AUC, time per repeat, and what each method counted."""
    print("\nmean over tasks of the test ROC AUC: mean ± std over repeats")
    print("| method | " + " | ".join(f"n = {s}" for s in sizes) + " |")
    print("|---" * (len(sizes) + 1) + "|")
    for m in methods:
        cells = []
        for s in sizes:
            a = np.array(auc[m, s])
            ok = a[~np.isnan(a)]
            if ok.size > 1:
                cell = f"{ok.mean():.3f} ± {ok.std():.3f}"
            else:
                cell = f"{ok[0]:.3f}" if ok.size else "-"
            if ok.size < a.size:
                cell += f" ({a.size - ok.size} of {a.size} failed)"
            cells.append(cell)
        print(f"| {m} | " + " | ".join(cells) + " |")
    print("\nwall seconds per repeat (fit on all tasks and predict), median")
    print("| method | " + " | ".join(f"n = {s}" for s in sizes) + " |")
    print("|---" * (len(sizes) + 1) + "|")
    for m in methods:
        print(f"| {m} | " + " | ".join(f"{np.median(seconds[m, s]):.2f}"
                                        for s in sizes) + " |")
    print("\ntraining sets with a single class (tasks x repeats): "
          + ", ".join(f"n = {s}: {n_single[s]}/{n_draws}" for s in sizes))
    print("counts over all repeats (warnings: one per occurrence, i.e. per "
          "fold fit and refit):")
    for m in methods:
        for s in sizes:
            counts = {k: v for k, v in notes[m, s].items()
                      if k not in ("alphas", "error")}
            line = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
            if "alphas" in notes[m, s]:
                line += (", median alpha "
                         f"{np.median(notes[m, s]['alphas']):.3g}")
            if "error" in notes[m, s]:
                line += f"; first error: {notes[m, s]['error']}"
            print(f"  {m:12} n = {s:<4} {line or '-'}")


def main(argv=None):
    """Run the protocol; return the per-repeat AUCs ``{(method, size): [...]}``."""
    args = parse_args(argv)
    features, labels = load_landmine(args.path)
    print(f"landmine: {len(features)} tasks, {sum(map(len, labels))} rows, "
          f"{features[0].shape[1]} features, "
          f"{np.mean(np.concatenate(labels)):.1%} positives; "
          f"{args.repeats} repeats, seed {args.seed}", flush=True)
    keys = [(m, s) for m in args.methods for s in args.sizes]
    auc, seconds = {k: [] for k in keys}, {k: [] for k in keys}
    notes = {k: Counter() for k in keys}
    n_single = Counter()
    start = time.perf_counter()
    with threadpool_limits(limits=1, user_api="blas"):
        for size in args.sizes:
            for repeat in range(args.repeats):
                rng = np.random.default_rng([args.seed, size, repeat])
                split = draw_split(features, labels, size, rng)
                n_single[size] += single_class_tasks(split["X_train"],
                                                     split["y_train"])
                line = []
                for method in args.methods:
                    value, elapsed = run_method(method, split,
                                                notes[method, size])
                    auc[method, size].append(value)
                    seconds[method, size].append(elapsed)
                    line.append(f"{method} {value:.3f}")
                print(f"n = {size} repeat {repeat + 1}/{args.repeats}: "
                      + ", ".join(line), flush=True)
    print_tables(args.sizes, args.methods, auc, seconds, notes, n_single,
                 len(features) * args.repeats)
    print(f"\ntotal time {time.perf_counter() - start:.0f} s")
    return auc


if __name__ == "__main__":
    main(sys.argv[1:])
