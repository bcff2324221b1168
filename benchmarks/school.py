"""School demonstration: independent ridge and lasso vs l21, trace norm and
models of how the tasks relate (a mean-regularized task graph, a learned
task covariance, learned task clusters).

Usage (from the repository root)::

    python benchmarks/school.py ../shared/data/school.mat [--n-splits 10] [--seed 0]

The file is MALSAR's ``school.mat`` (139 schools, 15,362 students, 28
features, exam score as target).  Without a path the script runs on a
generated heterogeneous problem (:func:`mtlinear.datasets.make_multitask_regression`,
shared support and low-rank true weights) and says so.

Protocol
--------
For each of ``--n-splits`` repetitions, every task (school) is split within
itself at random: 75% of its rows for training, 25% for testing.  On the
training part, ``alpha`` is chosen by ``GridSearchCV`` with inner folds that
keep every task in every training fold
(:class:`mtlinear.model_selection.TaskStratifiedKFold`), scored by the pooled
R² of the validation rows.  The grid is
``alpha_max * geomspace(1, 1e-3)`` for l1, l21 and trace
(:func:`mtlinear.alpha_max` on the scaled training part) and
``geomspace(10, 1e-2)`` times the mean feature variance for l2, three alphas
per decade.  The task-relation models add a second strength, searched with
``alpha`` in the units of the l2 grid (3 values from its top down 2 decades,
times 5 alphas, every 1.5 decades from a hundredth of its top):

* ``mean``: Evgeniou and Pontil's regularized multi-task learning,
  ``penalty="l2"`` plus ``task_graph="mean"`` (each task pulled towards the
  mean task), ``graph_alpha``;
* ``mtrl``: :class:`mtlinear.MultiTaskRelationRegressor` (a learned task
  covariance), ``relation_alpha``;
* ``cmtl``: :class:`mtlinear.ClusteredMultiTaskRegressor` with 5 clusters,
  ``cluster_alpha``.

Each model is ``MultiTaskRegressor(task_col=-1, penalty=...)`` (or the
relation model) after a
``StandardScaler`` of every feature column (``--no-scale`` drops it).  The
last School feature is a constant 1: with ``fit_intercept`` (one unpenalized
intercept per task) the features are centred per task, so that column is
zero in the solve and its coefficient is 0; it is harmless.

Metrics (on the test rows of each split, then mean ± std over splits)
---------------------------------------------------------------------
explained variance
    ``1 - sum_i (y_i - yhat_i)^2 / sum_i (y_i - ybar)^2`` over all tasks'
    test rows pooled, ``ybar`` the mean of all test targets (the measure of
    Argyriou, Evgeniou and Pontil on School).
nMSE
    normalized MSE: for each task ``t`` with ``m_t`` test rows, its test MSE
    divided by the (population) variance of its test targets, then averaged
    over tasks with weights ``m_t``:
    ``sum_t m_t MSE_t / var_t / sum_t m_t``.  This is the nMSE of the MALSAR
    authors' papers; MALSAR's own example evaluators (``eval_MTL_mse``,
    ``eval_MTL_rmse``) report unnormalized per-task errors weighted by ``m_t``.
"""
import argparse
import sys
import time
import warnings

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from mtlinear import (ClusteredMultiTaskRegressor, MultiTaskRegressor,
                      MultiTaskRelationRegressor, alpha_max, load_school)
from mtlinear.datasets import make_multitask_regression
from mtlinear.model_selection import TaskStratifiedKFold

# name -> (estimator class, parameters)
MODELS = {
    "l2": (MultiTaskRegressor, dict(penalty="l2")),
    "l1": (MultiTaskRegressor, dict(penalty="l1")),
    "l21": (MultiTaskRegressor, dict(penalty="l21")),
    "trace": (MultiTaskRegressor, dict(penalty="trace")),
    "mean": (MultiTaskRegressor, dict(penalty="l2", task_graph="mean")),
    "mtrl": (MultiTaskRelationRegressor, dict(penalty="l2")),
    "cmtl": (ClusteredMultiTaskRegressor, dict(penalty="l2", n_clusters=5)),
}
# the task-relation models' second strength (searched with alpha), and the
# span of their alpha grid, in the l2 grid's units: with related tasks pulled
# together a task needs less ridge than alone
SECOND_PARAMETER = {"mean": "graph_alpha", "mtrl": "relation_alpha",
                    "cmtl": "cluster_alpha"}
RELATION_ALPHA_SPAN = (1e-2, 1e-8)
GRID_SPAN = 1e-3     # smallest alpha / largest alpha on every grid
L2_GRID_TOP = 1e1    # largest l2 alpha, in units of the mean feature variance


def per_task_split(tasks, test_size, rng):
    """Row indices (train, test): every task split at random within itself."""
    train, test = [], []
    for label in np.unique(tasks):
        rows = rng.permutation(np.flatnonzero(tasks == label))
        n_test = int(round(test_size * len(rows)))
        test.append(rows[:n_test])
        train.append(rows[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def explained_variance(y, pred):
    """``1 - SSE / SST`` pooled over all rows, SST about the mean of ``y``."""
    return 1.0 - np.sum((y - pred) ** 2) / np.sum((y - y.mean()) ** 2)


def nmse(y, pred, tasks):
    """Per-task MSE / per-task target variance, averaged with weights ``m_t``."""
    ratios, sizes = [], []
    for label in np.unique(tasks):
        rows = tasks == label
        ratios.append(np.mean((y[rows] - pred[rows]) ** 2) / np.var(y[rows]))
        sizes.append(rows.sum())
    return np.average(ratios, weights=sizes)


def make_pipeline(model, scale, task_weights):
    """Scaler on every feature column (the task column passes through, last)."""
    steps = []
    if scale:
        steps.append(("scale", ColumnTransformer(
            [("features", StandardScaler(), slice(0, -1))], remainder="passthrough")))
    cls, params = MODELS[model]
    steps.append(("model", cls(task_col=-1, task_weights=task_weights, **params)))
    return Pipeline(steps)


def parameter_grid(pipe, X, y, n_alphas, name):
    """The search grid: decreasing alphas relative to ``alpha_max`` (l1, l21,
    trace) or to the mean feature variance (l2), computed on the transformed
    training part; for the task-relation models, their strength in the l2
    units too."""
    Xt = pipe[:-1].fit_transform(X) if len(pipe) > 1 else X
    model = pipe[-1]
    if model.penalty == "l2":
        top = L2_GRID_TOP * np.mean(np.var(Xt[:, :-1], axis=0))
    else:
        top = alpha_max(Xt, y, penalty=model.penalty, task_col=-1,
                        task_weights=model.task_weights)
    if name not in SECOND_PARAMETER:
        return {"model__alpha": top * np.geomspace(1.0, GRID_SPAN, n_alphas)}
    return {"model__alpha": top * np.geomspace(*RELATION_ALPHA_SPAN, 5),
            f"model__{SECOND_PARAMETER[name]}":
                top * np.geomspace(1.0, 1e-2, 3)}


def structure(coef, rtol=1e-8):
    """Numerical rank of ``W`` and the number of features it uses (rows of
    ``W`` above ``rtol`` times the largest, which drops the round-off left on
    columns that per-task centring makes zero)."""
    s = np.linalg.svd(coef, compute_uv=False)
    norms = np.linalg.norm(coef, axis=0)
    if s[0] == 0:
        return 0, 0
    return int(np.sum(s > rtol * s[0])), int(np.sum(norms > rtol * norms.max()))


def load(path, seed):
    """``X`` (task label last), ``y`` and a one-line description."""
    if path is None:
        X, y, _ = make_multitask_regression(
            n_tasks=60, n_features=30, n_informative=8, samples_per_task=(20, 120),
            rank=3, noise=4.0, random_state=seed)
        return X, y, ("generated heterogeneous problem (no School file given): "
                      "60 tasks, 30 features, true W on 8 rows with rank 3")
    X, y = load_school(path)
    return X, y, f"School data from {path}"


def task_weights_for(option, tasks):
    """``None`` (each task's loss a mean, the package default) or ``n_t``
    normalized to mean 1 (one sum over all rows: MALSAR's scaling)."""
    if option == "mean":
        return None
    sizes = np.unique(tasks, return_counts=True)[1].astype(float)
    return sizes / sizes.mean()


def run_split(X, y, tasks, model, args, split_seed, rng):
    train, test = per_task_split(tasks, 0.25, rng)
    pipe = make_pipeline(model, not args.no_scale,
                         task_weights_for(args.task_weights, tasks[train]))
    grid = parameter_grid(pipe, X[train], y[train], args.n_alphas, model)
    alphas = grid["model__alpha"]
    search = GridSearchCV(pipe, grid, scoring="r2",
                          cv=TaskStratifiedKFold(args.inner_folds, shuffle=True,
                                                 random_state=split_seed, task_col=-1),
                          n_jobs=args.n_jobs)
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        search.fit(X[train], y[train])
    search_time = time.perf_counter() - start
    n_unconverged = 0
    for w in caught:  # count ConvergenceWarnings, pass the others on
        if issubclass(w.category, ConvergenceWarning):
            n_unconverged += 1
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    pred = search.predict(X[test])
    best = int(np.flatnonzero(alphas == search.best_params_["model__alpha"])[0])
    # a chosen value at an end of its grid (any searched parameter)
    edge = any(int(np.flatnonzero(values == search.best_params_[name])[0])
               in (0, len(values) - 1) for name, values in grid.items())
    rank, n_features = structure(search.best_estimator_[-1].coef_)
    return dict(ev=explained_variance(y[test], pred),
                nmse=nmse(y[test], pred, tasks[test]),
                alpha=alphas[best], alpha_rel=alphas[best] / alphas[0],
                edge=edge,
                refit_time=search.refit_time_, search_time=search_time,
                rank=rank, n_features=n_features, n_unconverged=n_unconverged)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("path", nargs="?", default=None,
                        help="MALSAR-format school.mat (default: generated problem)")
    parser.add_argument("--n-splits", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-jobs", type=int, default=1,
                        help="parallel search fits (unconverged fits are only "
                             "counted with 1)")
    parser.add_argument("--n-alphas", type=int, default=10)
    parser.add_argument("--inner-folds", type=int, default=5)
    parser.add_argument("--models", nargs="+", choices=list(MODELS),
                        default=list(MODELS))
    parser.add_argument("--task-weights", choices=("mean", "size"), default="mean",
                        help="mean: each task's loss is a mean (package default); "
                             "size: task_weights = n_t (MALSAR's plain sum)")
    parser.add_argument("--no-scale", action="store_true",
                        help="no StandardScaler on the features")
    return parser.parse_args(argv)


def print_table(results, n_features):
    print("\nexplained variance = 1 - SSE / SST over all test rows pooled "
          "(SST about the test mean)")
    print("nMSE = sum_t m_t * MSE_t / var_t / sum_t m_t (m_t test rows of task t)")
    print("mean ± std over splits; alpha: median chosen (and / grid top); "
          "times: median refit on the training part, median search per split\n")
    header = (f"{'model':8} {'expl. var. %':>14} {'nMSE':>15} {'alpha':>9} "
              f"{'/top':>8} {'edge':>5} {'refit s':>8} {'search s':>9} "
              f"{'rank W':>7} {'features':>9} {'unconv.':>8}")
    print(header)
    print("-" * len(header))
    for model, runs in results.items():
        col = {k: np.array([r[k] for r in runs]) for k in runs[0]}
        ev = 100 * col["ev"]
        print(f"{model:8} {ev.mean():7.2f} ± {ev.std():4.2f} "
              f"{col['nmse'].mean():7.4f} ± {col['nmse'].std():.4f} "
              f"{np.median(col['alpha']):9.3g} {np.median(col['alpha_rel']):8.1e} "
              f"{int(col['edge'].sum()):5d} {np.median(col['refit_time']):8.3f} "
              f"{np.median(col['search_time']):9.2f} "
              f"{int(np.median(col['rank'])):7d} "
              f"{int(np.median(col['n_features'])):>4d}/{n_features} "
              f"{int(col['n_unconverged'].sum()):8d}")
    if "l2" in results and len(results) > 1:
        # the models see the same splits: their differences are paired
        base = np.array([r["ev"] for r in results["l2"]])
        gains = [f"{p} {100 * d.mean():+.2f} ± {100 * d.std():.2f} "
                 f"({int(np.sum(d > 0))}/{len(d)} splits better)"
                 for p, runs in results.items() if p != "l2"
                 for d in [np.array([r["ev"] for r in runs]) - base]]
        print("\ngain in explained variance over l2 on the same splits (points): "
              + "; ".join(gains))
    print("\nedge: splits whose chosen alpha is an end of the grid; rank W and "
          "features (nonzero columns of coef_) are medians over splits;\n"
          "unconv.: fits of the searches that stopped at max_iter "
          "(ConvergenceWarning), all splits")


def main(argv=None):
    """Run the protocol; return ``{model: [per-split result dicts]}``."""
    args = parse_args(argv)
    X, y, description = load(args.path, args.seed)
    tasks = X[:, -1]
    print(f"{description}: {X.shape[0]} rows, {len(np.unique(tasks))} tasks, "
          f"{X.shape[1] - 1} features")
    print(f"{args.n_splits} per-task 75/25 splits, {args.inner_folds}-fold inner "
          f"search over {args.n_alphas} alphas, features "
          f"{'not scaled' if args.no_scale else 'standardized'}, task weights: "
          f"{args.task_weights}", flush=True)
    results = {m: [] for m in args.models}
    start = time.perf_counter()
    for split in range(args.n_splits):
        for model in args.models:
            # the same outer split for every model
            rng = np.random.default_rng([args.seed, split])
            res = run_split(X, y, tasks, model, args, args.seed + split, rng)
            results[model].append(res)
            print(f"split {split + 1}/{args.n_splits} {model:5}: "
                  f"expl. var. {100 * res['ev']:5.2f}%  nMSE {res['nmse']:.4f}  "
                  f"alpha {res['alpha']:.3g}{' (grid edge)' if res['edge'] else ''}  "
                  f"search {res['search_time']:.1f} s"
                  + (f"  ({res['n_unconverged']} fits hit max_iter)"
                     if res["n_unconverged"] else ""), flush=True)
    print_table(results, X.shape[1] - 1)
    print(f"\ntotal time {time.perf_counter() - start:.0f} s")
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
