"""Missing targets: hide a growing fraction of Y's entries, fit on what is left.

Usage::

    python benchmarks/missing_targets.py [--fractions 0 0.1 0.3 0.5 0.7]
                                         [--repeats 20] [--penalty l21]
                                         [--seed 0]

**Data.** scikit-learn's diabetes data, ``load_diabetes(scaled=False)``: 442
patients.  The multi-output problem is our construction, not the dataset's
intended use: the six blood-serum measurements ``s1`` .. ``s6`` are the six
*targets* (related regression tasks: correlated values measured on the same
patients, |r| up to 0.90), and the other four variables (age, sex, bmi,
bp) plus the disease-progression score (the dataset's own target) are the
five *features*.

**Protocol.** Each repeat draws a random 70/30 split of the patients (309
training, 133 test rows; ``--repeats``, seeded by ``--seed``).  In the
training part a fraction ``p`` of the target entries is hidden, missing
completely at random: entry ``(i, t)`` is hidden when ``U_it < p`` for one
uniform ``U`` drawn per repeat, so the masks of one repeat are nested as
``p`` grows and every ``p`` sees the same split.  A task left with fewer than
:data:`MIN_OBSERVED` observed rows gets hidden entries back (those with the
largest ``U``); the count of such entries is printed.  Features and targets
are standardized by a ``StandardScaler`` fitted on the training rows (the
targets on their observed entries).  The test part keeps every target.

Methods, each with its regularization chosen by 5-fold cross-validation on
the training part (``MultiTaskRegressorCV(penalty=--penalty, cv=5)``: 100
alphas from ``alpha_max`` down, held-out mean squared error over observed
entries):

* ``masked``: ``MultiTaskRegressorCV`` on the training part with NaN where an
  entry is hidden; each task is fitted on its observed rows;
* ``complete rows``: the same model on the training rows whose six targets
  are all observed; with fewer than :data:`MIN_COMPLETE` such rows it is not
  fitted (NaN in the table; the printed counts say how many rows remain);
* ``mean imputation``: hidden entries replaced by their column's observed
  mean, then the same model;
* ``iterative imputation``: ``sklearn.impute.IterativeImputer`` (its
  defaults: BayesianRidge, ``max_iter=10``, ``--imputer-iter``) on the
  standardized training features *and* targets together, so that it may use
  the features to impute the targets; then the same model on the imputed
  targets.  Its stopping rule is often not met within ``max_iter`` (a
  ConvergenceWarning, counted; 100 iterations do not meet it either, and
  50 change the test scores by at most 0.002 on 5 repeats);
* ``independent``: ``RidgeCV`` per target on its own observed rows (alpha by
  5-fold CV over :data:`RIDGE_ALPHAS`), a baseline without sharing that
  also uses every observed entry.

**Measured.** The test score of a fit is the mean over the six targets of
``R^2`` (``r2_score``, uniform average), in standardized units (``R^2`` does
not depend on them).  Printed: its mean ± std (ddof 0) over the repeats for
every method and ``p``; the paired difference of ``masked`` and each other
method on the same splits and masks (mean ± standard error); the wall time
of each method per fit (median; the first fit of the process, which compiles
or loads mtlinear's Numba code, is made and timed apart); the complete
training rows left at each ``p``; how often a chosen regularization is an
end of its grid; the ConvergenceWarnings counted (other warnings are
shown).  BLAS runs on one thread.
"""
import argparse
import sys
import time
import warnings

import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.exceptions import ConvergenceWarning
from sklearn.experimental import enable_iterative_imputer
from sklearn.impute import IterativeImputer
from sklearn.linear_model import RidgeCV
from sklearn.metrics import r2_score
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from mtlinear import MultiTaskRegressorCV

del enable_iterative_imputer  # imported for its effect: IterativeImputer

FEATURES = ["age", "sex", "bmi", "bp", "progression"]
TARGETS = ["s1", "s2", "s3", "s4", "s5", "s6"]
TEST_FRACTION = 0.3
N_FOLDS = 5
MIN_OBSERVED = 10   # observed training rows every task keeps at least
MIN_COMPLETE = 10   # complete training rows needed to fit "complete rows"
RIDGE_ALPHAS = np.logspace(-2, 4, 13)  # Ridge's alpha: on the sum of squares
METHODS = ["masked", "complete rows", "mean imputation", "iterative imputation",
           "independent"]


def load():
    """``(X, Y)``: the five features and the six serum targets, raw units."""
    data = load_diabetes(scaled=False, as_frame=True)
    frame = data.frame.rename(columns={"target": "progression"})
    return (frame[FEATURES].to_numpy(dtype=float),
            frame[TARGETS].to_numpy(dtype=float))


def hide(U, p):
    """The mask of hidden entries at fraction ``p`` (``U < p``), with
    entries given back so that every task keeps :data:`MIN_OBSERVED`
    observed rows; returns ``(hidden, n_given_back)``."""
    hidden = U < p
    given_back = 0
    for t in range(U.shape[1]):
        short = MIN_OBSERVED - np.sum(~hidden[:, t])
        if short > 0:
            rows = np.flatnonzero(hidden[:, t])
            back = rows[np.argsort(-U[rows, t])[:short]]
            hidden[back, t] = False
            given_back += short
    return hidden, given_back


# ------------------------------------------------------------ the methods
# each takes (X, Y with NaN where hidden, args, seed) and returns a fitted
# model, or None when it cannot be fitted

def fit_shared(X, Y, args):
    """``MultiTaskRegressorCV`` (NaN targets allowed)."""
    return MultiTaskRegressorCV(penalty=args.penalty, cv=N_FOLDS).fit(X, Y)


def fit_masked(X, Y, args, seed):
    return fit_shared(X, Y, args)


def fit_complete(X, Y, args, seed):
    rows = ~np.isnan(Y).any(axis=1)
    if rows.sum() < MIN_COMPLETE:
        return None
    return fit_shared(X[rows], Y[rows], args)


def fit_mean(X, Y, args, seed):
    return fit_shared(X, np.where(np.isnan(Y), np.nanmean(Y, axis=0), Y), args)


def fit_iterative(X, Y, args, seed):
    if np.isnan(Y).any():
        imputer = IterativeImputer(max_iter=args.imputer_iter,
                                   random_state=seed)
        Y = imputer.fit_transform(np.hstack([X, Y]))[:, X.shape[1]:]
    return fit_shared(X, Y, args)


class Independent:
    """One ``RidgeCV`` per target, each on its observed rows."""

    def __init__(self, X, Y):
        self.models = []
        for t in range(Y.shape[1]):
            rows = ~np.isnan(Y[:, t])
            self.models.append(RidgeCV(alphas=RIDGE_ALPHAS, cv=N_FOLDS)
                               .fit(X[rows], Y[rows, t]))

    def predict(self, X):
        return np.column_stack([m.predict(X) for m in self.models])


def fit_independent(X, Y, args, seed):
    return Independent(X, Y)


FITS = dict(zip(METHODS, [fit_masked, fit_complete, fit_mean, fit_iterative,
                          fit_independent]))


def grid_edges(model):
    """``(chosen regularizations at an end of their grid, choices)``."""
    if isinstance(model, Independent):
        ends = (RIDGE_ALPHAS[0], RIDGE_ALPHAS[-1])
        return sum(m.alpha_ in ends for m in model.models), len(model.models)
    return int(model.alpha_ in (model.alphas_[0], model.alphas_[-1])), 1


# ------------------------------------------------------------ the protocol
def one_repeat(X, Y, args, repeat, results):
    """Fit every method at every fraction on one split; add to ``results``."""
    rng = np.random.default_rng([args.seed, repeat])
    order = rng.permutation(len(X))
    n_test = int(round(TEST_FRACTION * len(X)))
    test, train = order[:n_test], order[n_test:]
    U = rng.random((len(train), Y.shape[1]))
    x_scaler = StandardScaler().fit(X[train])
    X_train, X_test = x_scaler.transform(X[train]), x_scaler.transform(X[test])
    for p in args.fractions:
        hidden, given_back = hide(U, p)
        Y_train = np.where(hidden, np.nan, Y[train])
        y_scaler = StandardScaler().fit(Y_train)  # NaN left out of the fit
        Y_train, Y_test = y_scaler.transform(Y_train), y_scaler.transform(Y[test])
        counts = results["counts"][p]
        counts["complete"].append(int((~hidden).all(axis=1).sum()))
        counts["hidden"].append(float(hidden.mean()))
        counts["given back"].append(given_back)
        for method in METHODS:
            entry = results[method, p]
            start = time.perf_counter()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                model = FITS[method](X_train, Y_train, args,
                                     args.seed * 1000 + repeat)
            seconds = time.perf_counter() - start
            for w in caught:
                if issubclass(w.category, ConvergenceWarning):
                    entry["convergence warnings"] += 1
                else:
                    warnings.warn_explicit(w.message, w.category, w.filename,
                                           w.lineno)
            if model is None:
                entry["r2"].append(np.nan)
                continue
            entry["r2"].append(r2_score(Y_test, model.predict(X_test)))
            entry["seconds"].append(seconds)
            edges, choices = grid_edges(model)
            entry["edges"] += edges
            entry["choices"] += choices


def warm_up(X, Y):
    """Seconds of a first masked fit (Numba compilation or cache load)."""
    Y = Y[:60].copy()
    Y[::7, 0] = np.nan
    start = time.perf_counter()
    MultiTaskRegressorCV(cv=N_FOLDS, alphas=5).fit(X[:60], Y)
    return time.perf_counter() - start


def cell(values):
    a = np.asarray(values, dtype=float)
    ok = a[~np.isnan(a)]
    if ok.size == 0:
        return "-"
    text = f"{ok.mean():.3f} ± {ok.std():.3f}" if ok.size > 1 else f"{ok[0]:.3f}"
    if ok.size < a.size:
        text += f" ({ok.size} of {a.size} fitted)"
    return text


def print_tables(results, args, n_train):
    fractions = args.fractions
    header = "| | " + " | ".join(f"p = {p:g}" for p in fractions) + " |"
    rule = "|---" * (len(fractions) + 1) + "|"
    print("\ntest R^2, mean over the six targets: mean ± std over repeats")
    print(header.replace("| |", "| method |", 1) + "\n" + rule)
    for m in METHODS:
        print(f"| {m} | " + " | ".join(cell(results[m, p]["r2"])
                                      for p in fractions) + " |")
    print("\nwall seconds per fit (imputation, CV search and refit), median "
          "over repeats")
    print(header.replace("| |", "| method |", 1) + "\n" + rule)
    for m in METHODS:
        print(f"| {m} | " + " | ".join(
            f"{np.median(results[m, p]['seconds']):.2f}"
            if results[m, p]["seconds"] else "-" for p in fractions) + " |")
    print("\nmasked minus each method on the same splits and masks: mean ± "
          "standard error over repeats (repeats where masked is better)")
    print(header.replace("| |", "| method |", 1) + "\n" + rule)
    for m in METHODS[1:]:
        cells = []
        for p in fractions:
            d = (np.asarray(results["masked", p]["r2"])
                 - np.asarray(results[m, p]["r2"]))
            d = d[~np.isnan(d)]
            cells.append("-" if d.size < 2 else
                         f"{d.mean():+.4f} ± {d.std(ddof=1) / np.sqrt(d.size):.4f}"
                         f" ({np.sum(d > 0)}/{d.size})")
        print(f"| {m} | " + " | ".join(cells) + " |")
    counts = results["counts"]
    print(f"\ntraining part ({n_train} rows x {len(TARGETS)} targets), "
          "over repeats")
    print(header + "\n" + rule)
    print("| hidden entries, mean | " + " | ".join(
        f"{np.mean(counts[p]['hidden']):.1%}" for p in fractions) + " |")
    print("| complete rows, median (min-max) | " + " | ".join(
        f"{np.median(c):.0f} ({min(c)}-{max(c)})"
        for c in (counts[p]["complete"] for p in fractions)) + " |")
    print(f"| repeats with >= {MIN_COMPLETE} complete rows | " + " | ".join(
        f"{sum(c >= MIN_COMPLETE for c in counts[p]['complete'])}"
        f"/{args.repeats}" for p in fractions) + " |")
    print("| entries given back, total | " + " | ".join(
        str(sum(counts[p]["given back"])) for p in fractions) + " |")
    print("\nchosen regularization at an end of its grid (choices at an "
          "end / choices), ConvergenceWarnings:")
    for m in METHODS:
        print(f"  {m:22}" + "  ".join(
            f"p={p:g}: {results[m, p]['edges']}/{results[m, p]['choices']}"
            f", {results[m, p]['convergence warnings']}" for p in fractions))


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fractions", nargs="+", type=float,
                        default=[0.0, 0.1, 0.3, 0.5, 0.7],
                        help="fractions of the training targets hidden")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--penalty", choices=["l21", "trace"], default="l21",
                        help="penalty of the MultiTaskRegressorCV methods")
    parser.add_argument("--imputer-iter", type=int, default=10,
                        help="IterativeImputer's max_iter")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if any(not 0 <= p < 1 for p in args.fractions):
        parser.error("every fraction must be in [0, 1)")
    return args


def main(argv=None):
    """Run the protocol; return ``{(method, p): {"r2": [...], ...}, ...}``."""
    args = parse_args(argv)
    X, Y = load()
    n_train = len(X) - int(round(TEST_FRACTION * len(X)))
    print(f"diabetes: {len(X)} patients ({n_train} training, "
          f"{len(X) - n_train} test); features {', '.join(FEATURES)}; "
          f"targets {', '.join(TARGETS)}", flush=True)
    print(f"penalty {args.penalty}, {args.repeats} repeats, seed {args.seed}",
          flush=True)
    results = {(m, p): {"r2": [], "seconds": [], "edges": 0, "choices": 0,
                        "convergence warnings": 0}
               for m in METHODS for p in args.fractions}
    results["counts"] = {p: {"complete": [], "hidden": [], "given back": []}
                         for p in args.fractions}
    start = time.perf_counter()
    with threadpool_limits(limits=1, user_api="blas"):
        print(f"first fit of the process (Numba compilation or cache load "
              f"included): {warm_up(X, Y):.2f} s", flush=True)
        for repeat in range(args.repeats):
            one_repeat(X, Y, args, repeat, results)
            print(f"repeat {repeat + 1}/{args.repeats}: masked R^2 "
                  + ", ".join(f"p={p:g} {results['masked', p]['r2'][-1]:.3f}"
                              for p in args.fractions), flush=True)
    print_tables(results, args, n_train)
    print(f"\ntotal time {time.perf_counter() - start:.0f} s")
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
