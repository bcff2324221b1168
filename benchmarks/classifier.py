"""Logistic-loss solvers side by side, judged by one measure of suboptimality.

``MultiTaskClassifier`` (``solver="auto"``: proximal Newton for l1 / l21 and
their elastic nets, Newton-CG for l2, FISTA for the trace norm; and
``solver="fista"``) against the peers that solve the same objective::

    sum_t omega_t mean_{i in t} log(1 + exp(-y_i (x_i w_t + b_t))) + alpha R(W)

with ``R`` one of ``||W||_F^2 / 2`` (l2) or ``r N(W) + (1 - r)/2 ||W||_F^2``,
``N`` the l1, l21 or trace norm and ``r`` the ``l1_ratio`` (1: the norm
alone; the ``-enet`` points take ``r = 0.5``); ``omega_t = 1`` except for the
``pooled`` point.  The peers, each fitted task by task on its preferred input
format (converted once, untimed):

* scikit-learn's ``LogisticRegression`` (``lbfgs`` for l2, ``saga`` for l2 /
  l1 / elastic net) at ``C_t = 1 / (alpha n_t)``;
* skglm's ``SparseLogisticRegression`` (l1) and ``GeneralizedLinearEstimator``
  with the ``Logistic`` datafit, the ``L1_plus_L2(alpha, r)`` penalty
  (``r = 0`` for l2) and ``ProxNewton`` (skglm's objective is the mean over
  the task's samples: its ``alpha`` is ours); ``skglm-group``: the l21
  penalty as skglm's ``GroupProxNewton`` with ``LogisticGroup`` on the
  block-diagonal design of the tasks (one group per feature across tasks, one
  unpenalized group per task's intercept column): its datafit is one mean over
  all ``N`` samples, i.e. ``omega_t = n_t / N``, the ``l21-pooled`` point
  (dense designs only: ``GroupProxNewton`` refuses sparse input);
* **apart**, on their own objective without intercept (the ``-noint``
  points, ``fit_intercept=False`` for everyone): liblinear (which penalizes
  the intercept: with it, it is kept at l2 with ``intercept_scaling=1e4``
  and reported apart from the peers), celer's ``LogisticRegression`` (l1
  only, no intercept: ``C_t = 1 / (alpha n_t)``), skglm's ``L2`` penalty
  (its only solver, ``LBFGS``, fits no intercept).

l21 and trace have no per-task peer: mtlinear's two solvers are compared
with each other (and l21 with ``skglm-group`` on the pooled objective).

Every solver is timed to a common **relative suboptimality**
(``--targets``): ``(P(w) - P*) / P(0)``, ``P(0)`` the objective at ``W = 0``
with the best intercepts (without intercept: ``sum_t omega_t log 2``) and
``P*`` the objective of a reference solution certified to 1e-10 by
:func:`relative_gap` (:class:`Judge`).  That gap is written from the maths
with numpy only: per task the weighted mean logistic loss with intercept,
the dual point ``theta_i = omega_t y_i sigmoid(-y_i z_i) / n_t`` with the
heavier class shrunk so that ``sum y theta = 0`` per task (without
intercept: not shrunk), scaled into the dual-norm ball for the plain norms
(the elastic nets' conjugate is finite).  ``--judge gap`` times every solver
to that gap instead (the runs recorded before the suboptimality judge): an
upper bound of the suboptimality, often by orders of magnitude.
Each solver's own ``tol`` is tuned: from 1e-1, divided by 10 until the
target is reached, then the half step back (``sqrt(10)`` looser) if it
reaches the target too (``solvers.py``'s rule).  Then the solvers of a point
are timed side by side, in rounds of one fit each at its tuned ``tol``, so
that a drift of the machine's speed moves them alike: the warm median of
``--repeats`` fits (the tuning fit counts as one), or of as many as take
``--min-time`` seconds (at most 100) when they are faster: fits of a few
hundredths of a second are noisy on a shared machine.  Ratio: over the
fastest peer that reached the target.  The first fit in a fresh process
(Numba cache load included, imports excluded) is timed separately in a
subprocess.

Cross-validation (``--cv``): ``MultiTaskClassifierCV(penalty, task_col=-1,
alphas=grid, cv=folds)`` against ``LogisticRegressionCV`` per task (lbfgs for
l2, saga for l1, ``scoring="neg_log_loss"`` as mtlinear's default score) at
``Cs = 1 / (grid n_t)`` per task and the same folds (``StratifiedKFold`` of
each task's rows, the stacked folds their union), default tolerances and
iteration limits of both.  Grid: ``--cv-alphas`` log-spaced alphas from
``alpha_max`` to ``alpha_max / 1000`` (l1; mtlinear's default span) and
scikit-learn's default ``Cs = logspace(-4, 4)`` on an average task (l2).
Reported: the warm median of ``--cv-repeats`` fits (the two estimators
called in turn), their ratio, and the chosen alphas (mtlinear one for all
tasks, scikit-learn one per task: median and range of ``1 / (C_t n_t)``).

BLAS runs on one thread for every solver (``--blas-threads``): on a machine
shared with other jobs OpenBLAS's threads slow small products unpredictably.

Problems: the four newsgroup tasks (stacked layout, sparse), Landmine (29
tasks, 9 features, stacked, dense; the features standardized with all rows
pooled), both from the paths given (skipped when missing), a dense shared
design with five tasks, and a dense stacked problem with tasks of different
sizes.

Usage (from the repository root)::

    python benchmarks/classifier.py --newsgroup ../shared/data/newsgroup \\
        --landmine ../shared/data/landmine.mat --problems newsgroup landmine \\
        --targets 1e-6 --cv
    python benchmarks/classifier.py --quick     # dense problems, one target
    python benchmarks/classifier.py --solvers mtlinear-auto mtlinear-fista
"""
import argparse
import glob
import os
import subprocess
import sys
import time
import warnings
from collections import namedtuple

import numpy as np
import scipy.io as sio
import scipy.sparse as sp
from scipy.special import expit, xlogy

from _gap import dual_norm, penalty_value  # the squared-loss judge's norms

HERE = os.path.dirname(os.path.abspath(__file__))


# ---------------------------------------------------------------- problems
def _sublinear_tf(X):
    X = X.copy()
    X.data = 1.0 + np.log(X.data)
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
    return sp.csr_matrix(sp.diags(1.0 / np.where(norms > 0, norms, 1.0)) @ X)


def newsgroup(path):
    """Per-task ``(X_t, y_t in {-1, 1})``; the four files of ``path``."""
    files = sorted(glob.glob(os.path.join(path, "*.mat")))
    if not files:
        return None
    tasks = []
    for f in files:
        m = sio.loadmat(f)
        tasks.append((_sublinear_tf(sp.csr_matrix(m["fea"], dtype=float)),
                      np.where(m["gnd"].ravel() == 2, 1.0, -1.0)))
    return tasks


def landmine(path):
    """Per-task ``(X_t, y_t in {-1, 1})`` of ``landmine.mat`` (loaded by
    ``landmine.py``), the features standardized with all rows pooled."""
    if not os.path.exists(path):
        return None
    from landmine import load_landmine
    features, labels = load_landmine(path)
    pooled = np.vstack(features)
    mean, std = pooled.mean(axis=0), pooled.std(axis=0)
    return [((X - mean) / std, np.where(y == 1, 1.0, -1.0))
            for X, y in zip(features, labels)]


def dense_shared(n=2000, d=300, T=5, seed=0):
    """One Gaussian ``X`` (correlated columns) for every task, a shared
    support of 20 rows, logistic noise."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) + 0.5 * rng.standard_normal((n, 1))
    W = np.zeros((d, T))
    W[rng.choice(d, 20, replace=False)] = rng.standard_normal((20, T))
    Z = X @ W / np.sqrt(20) * 3 + rng.logistic(size=(n, T))
    return [(X, np.where(Z[:, t] > 0, 1.0, -1.0)) for t in range(T)]


def dense_stacked(sizes=(300, 800, 1500, 500), d=500, seed=1):
    """Tasks with their own rows and sizes, related weights."""
    rng = np.random.default_rng(seed)
    w = np.zeros(d)
    w[:30] = rng.standard_normal(30)
    tasks = []
    for n_t in sizes:
        X = rng.standard_normal((n_t, d))
        wt = w + 0.3 * rng.standard_normal(d) * (w != 0)
        z = X @ wt / np.sqrt(30) * 3 + 0.5 + rng.logistic(size=n_t)
        tasks.append((X, np.where(z > 0, 1.0, -1.0)))
    return tasks


def load_problem(name, paths):
    """Per-task ``(X_t, y_t)``; ``paths``: the data files by problem name."""
    if name == "newsgroup":
        return newsgroup(paths["newsgroup"])
    if name == "landmine":
        return landmine(paths["landmine"])
    return {"dense-shared": dense_shared, "dense-stacked": dense_stacked}[name]()


LABELS = {"newsgroup": "newsgroup (4 tasks, 1545-1875 x 2000, sparse)",
          "landmine": "landmine (29 tasks, 445-690 x 9, dense)",
          "dense-shared": "dense shared X (2000 x 300, 5 tasks)",
          "dense-stacked": "dense stacked (300-1500 x 500, 4 tasks)"}


# ---------------------------------------------------------------- objectives
class Objective(namedtuple("Objective", "penalty alpha l1_ratio fit_intercept pooled",
                           defaults=(1.0, True, False))):
    """One point: ``penalty`` the norm (``"l2"``: the ridge alone),
    ``l1_ratio`` its share, ``fit_intercept``, and ``pooled``: task weights
    ``n_t / N`` (one mean over all samples)."""

    def label(self):
        name = self.penalty
        if self.penalty != "l2" and self.l1_ratio < 1:
            name += f" enet {self.l1_ratio:g}"
        if self.pooled:
            name += " pooled"
        return name if self.fit_intercept else name + " no intercept"


# the ``--points``: an objective without its alpha
POINTS = {"l2": dict(penalty="l2"),
          "l1": dict(penalty="l1"),
          "l1-enet": dict(penalty="l1", l1_ratio=0.5),
          "l21": dict(penalty="l21"),
          "l21-enet": dict(penalty="l21", l1_ratio=0.5),
          "trace": dict(penalty="trace"),
          "trace-enet": dict(penalty="trace", l1_ratio=0.5),
          "l21-pooled": dict(penalty="l21", pooled=True),
          "l2-noint": dict(penalty="l2", fit_intercept=False),
          "l1-noint": dict(penalty="l1", fit_intercept=False)}


def task_weights(tasks, obj):
    """``omega_t``: ones, or ``n_t / N`` for a pooled objective."""
    sizes = np.array([len(y) for _, y in tasks], dtype=float)
    return sizes / sizes.sum() if obj.pooled else np.ones(len(tasks))


def alphas_for(tasks, point):
    """l2: ``C = 1`` and ``C = 100`` on an average task; the norms: a tenth
    and a hundredth of the smallest alpha that zeroes every weight (for the
    elastic nets ``alpha_max / l1_ratio``)."""
    obj = Objective(alpha=0.0, **point)
    if obj.penalty == "l2":
        n_mean = np.mean([len(y) for _, y in tasks])
        return [float(1.0 / n_mean), float(0.01 / n_mean)]
    G = []
    for (X, y), omega in zip(tasks, task_weights(tasks, obj)):
        p = np.mean(y > 0) if obj.fit_intercept else 0.5
        r = omega * (np.where(y > 0, 1 - p, -p)) / len(y)  # gradient at W = 0
        G.append(np.asarray(X.T @ r).ravel())
    top = float(dual_norm(np.array(G).T, obj.penalty)) / obj.l1_ratio
    return [top / 10, top / 100]


# ---------------------------------------------------------------- the judge
def null_objective(tasks, obj):
    """Objective at ``W = 0`` with the best intercepts (class entropies), or
    ``sum_t omega_t log 2`` without intercept."""
    total = 0.0
    for (_, y), omega in zip(tasks, task_weights(tasks, obj)):
        p = np.mean(y > 0) if obj.fit_intercept else 0.5
        total -= omega * (xlogy(p, p) + xlogy(1 - p, 1 - p))
    return total


def penalty_term(W, obj):
    """``R(W)``."""
    ridge = 0.5 * np.sum(W * W)
    if obj.penalty == "l2":
        return ridge
    return obj.l1_ratio * penalty_value(W, obj.penalty) + (1 - obj.l1_ratio) * ridge


def conjugate(U, obj):
    """``(scale, (alpha R)^*(scale U))``: the norm alone needs ``U`` scaled
    into its dual ball (conjugate 0); with a ridge part the conjugate is
    ``sum (a - alpha r)_+^2 / (2 alpha (1 - r))`` over the norm's atoms
    ``a`` (absolute entries, row norms, singular values)."""
    r = 0.0 if obj.penalty == "l2" else obj.l1_ratio
    if r == 1:
        return min(1.0, obj.alpha / dual_norm(U, obj.penalty)), 0.0
    if obj.penalty in ("l2", "l1"):
        atoms = np.abs(U)
    elif obj.penalty == "l21":
        atoms = np.linalg.norm(U, axis=1)
    else:
        atoms = np.linalg.svd(U, compute_uv=False)
    excess = np.maximum(atoms - obj.alpha * r, 0.0)
    return 1.0, np.sum(excess ** 2) / (2 * obj.alpha * (1 - r))


def primal_parts(tasks, coef, intercept, obj):
    """``(P, [(z_t, y_t, omega_t)])``: the objective of the module
    docstring and each task's linear predictor."""
    W = np.asarray(coef, dtype=float).T  # (d, T)
    primal, parts = obj.alpha * penalty_term(W, obj), []
    for t, ((X, y), omega) in enumerate(zip(tasks, task_weights(tasks, obj))):
        z = np.asarray(X @ W[:, t]).ravel() + intercept[t]
        primal += omega * np.mean(np.logaddexp(0.0, -y * z))
        parts.append((z, y, omega))
    return primal, parts


def relative_gap(tasks, coef, intercept, obj):
    """``(P - D) / P(0)`` for the objective of the module docstring."""
    primal, parts = primal_parts(tasks, coef, intercept, obj)
    U = np.empty((tasks[0][0].shape[1], len(tasks)))
    thetas, entropy = [], 0.0
    for t, ((X, _), (z, y, omega)) in enumerate(zip(tasks, parts)):
        s = expit(-y * z)
        if obj.fit_intercept:  # balance the classes
            pos, neg = s[y > 0].sum(), s[y < 0].sum()
            s = np.where(y > 0, min(1.0, neg / pos), min(1.0, pos / neg)) * s
        U[:, t] = omega * np.asarray(X.T @ (y * s)).ravel() / len(y)
        thetas.append(s)
    scale, conj = conjugate(U, obj)
    for s, (_, _, omega) in zip(thetas, parts):
        u = scale * s
        entropy -= omega * np.mean(xlogy(u, u) + xlogy(1 - u, 1 - u))
    return (primal - (entropy - conj)) / null_objective(tasks, obj)


REFERENCE_GAP = 1e-10  # the certified precision of the reference optimum


class Judge:
    """``judge(coef, intercept)``: how far a solution is from the optimum,
    relative to ``P(0)`` (:func:`null_objective`), the same for every solver.

    ``"suboptimality"`` (the default): ``(P(w) - P*) / P(0)``, with ``P*``
    the objective of a reference solution whose :func:`relative_gap` is at
    most ``REFERENCE_GAP`` (mtlinear's ``auto`` at ``tol=1e-13``, then its
    ``fista``; certified by this module's own dual point, so ``P*`` is within
    ``REFERENCE_GAP P(0)`` of the optimum whoever computed it).  ``"gap"``:
    :func:`relative_gap` itself, an upper bound of the suboptimality that is
    first order in the distance to the optimum where the suboptimality is
    second order (on newsgroup l1, a solution 2e-8 from the optimum has a
    gap of 3e-4): it asks every solver for more than the target says.
    Without a certified reference the judge falls back to the gap.
    """

    def __init__(self, tasks, obj, kind, formats):
        self.tasks, self.obj, self.kind = tasks, obj, kind
        self.null = null_objective(tasks, obj)
        self.optimum = None
        if kind == "suboptimality":
            omegas = task_weights(tasks, obj)
            for solver in ("auto", "fista"):
                coef, b = fit_mtlinear(formats.mtlinear(obj), obj, omegas, 1e-13,
                                       solver)
                if relative_gap(tasks, coef, b, obj) <= REFERENCE_GAP:
                    self.optimum = primal_parts(tasks, coef, b, obj)[0]
                    break
            if self.optimum is None:
                self.kind = "gap"

    def __call__(self, coef, intercept):
        if self.kind == "gap":
            return relative_gap(self.tasks, coef, intercept, self.obj)
        primal = primal_parts(self.tasks, coef, intercept, self.obj)[0]
        return (primal - self.optimum) / self.null


# ---------------------------------------------------------------- solvers
# liblinear penalizes the intercept like a weight (``intercept_scaling``):
# with l2 a large scaling makes that negligible (reported apart); with l1 it
# makes liblinear's coordinate descent crawl (minutes without reaching 1e-6 on
# newsgroup), and a small one solves another problem, so with an intercept
# liblinear is left out for l1.  Without intercept it solves our objective.
def quiet(fit):
    """``fit`` with the solvers' convergence warnings silenced."""
    def run(*args):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fit(*args)
    return run


def mtlinear_data(tasks):
    """``(X, y, task_col)`` for MultiTaskClassifier: the shared layout when
    every task has the same ``X``, stacked otherwise (built once, untimed)."""
    from mtlinear import stack_tasks
    if all(X is tasks[0][0] for X, _ in tasks):
        return tasks[0][0], np.column_stack([y for _, y in tasks]), None
    X, y = stack_tasks([X for X, _ in tasks], [y for _, y in tasks])
    return X, y, -1


@quiet
def fit_mtlinear(data, obj, omegas, tol, solver):
    from mtlinear import MultiTaskClassifier
    X, y, task_col = data
    model = MultiTaskClassifier(
        penalty=obj.penalty, alpha=obj.alpha, l1_ratio=obj.l1_ratio,
        fit_intercept=obj.fit_intercept,
        task_weights=omegas if obj.pooled else None, task_col=task_col,
        tol=tol, max_iter=100_000, solver=solver).fit(X, y)
    return model.coef_, model.intercept_


def per_task(fit_one):
    """``fit(tasks, obj, tol, ...)``: ``fit_one(X_t, y_t, obj, tol, ...) ->
    (w_t, b_t)`` task by task, stacked into ``(coef, intercept)``."""
    @quiet
    def fit(tasks, obj, tol, *args):
        out = [fit_one(X, y, obj, tol, *args) for X, y in tasks]
        return (np.array([w for w, _ in out]),
                np.array([float(np.ravel(b)[0]) if np.size(b) else 0.0
                          for _, b in out]))
    return fit


@per_task
def fit_sklearn(X, y, obj, tol, solver):
    from sklearn.linear_model import LogisticRegression
    kw = (dict(intercept_scaling=1e4)
          if solver == "liblinear" and obj.fit_intercept else {})
    model = LogisticRegression(
        C=1.0 / (obj.alpha * len(y)),
        l1_ratio=0.0 if obj.penalty == "l2" else obj.l1_ratio,
        fit_intercept=obj.fit_intercept, solver=solver, tol=tol,
        max_iter=100_000, **kw).fit(X, y)
    return model.coef_[0], model.intercept_


@per_task
def fit_skglm(X, y, obj, tol, solver):
    """``SparseLogisticRegression`` (l1), ``L1_plus_L2`` with ``ProxNewton``
    (elastic net; l2 as ``l1_ratio = 0``), or ``L2`` with ``LBFGS``."""
    from skglm import GeneralizedLinearEstimator, SparseLogisticRegression
    from skglm.datafits import Logistic
    from skglm.penalties import L2, L1_plus_L2
    from skglm.solvers import LBFGS, ProxNewton
    if solver == "lbfgs":
        lbfgs = LBFGS(tol=tol, max_iter=100_000)
        # skglm 0.5's estimator reads these two, which LBFGS does not set
        lbfgs.fit_intercept, lbfgs.warm_start = False, False
        model = GeneralizedLinearEstimator(Logistic(), L2(obj.alpha), lbfgs)
    elif obj.penalty == "l1" and obj.l1_ratio == 1:
        model = SparseLogisticRegression(alpha=obj.alpha, tol=tol, max_iter=1000,
                                         fit_intercept=obj.fit_intercept)
    else:
        r = 0.0 if obj.penalty == "l2" else obj.l1_ratio
        model = GeneralizedLinearEstimator(
            Logistic(), L1_plus_L2(obj.alpha, r),
            ProxNewton(tol=tol, max_iter=1000, fit_intercept=obj.fit_intercept))
    model.fit(X, y)
    return model.coef_[0], model.intercept_


@per_task
def fit_celer(X, y, obj, tol):
    from celer import LogisticRegression
    model = LogisticRegression(C=1.0 / (obj.alpha * len(y)), tol=tol,
                               max_iter=1000).fit(X, y)
    return model.coef_[0], model.intercept_


GROUP_DESIGN_MAX = 2e7  # entries of the dense block-diagonal design


def group_design(tasks):
    """skglm's layout of the multi-task l21 problem: the block-diagonal design
    (task-major columns ``t d + j``) with one indicator column per task (its
    intercept), Fortran-ordered; the groups (feature ``j`` over tasks, then
    each indicator alone); pooled labels.  ``None`` for sparse or large
    problems."""
    from scipy.linalg import block_diag
    d, T = tasks[0][0].shape[1], len(tasks)
    N = sum(len(y) for _, y in tasks)
    if any(sp.issparse(X) for X, _ in tasks) or N * (d + 1) * T > GROUP_DESIGN_MAX:
        return None
    ones = block_diag(*[np.ones((len(y), 1)) for _, y in tasks])
    Z = np.asfortranarray(np.hstack([block_diag(*[X for X, _ in tasks]), ones]))
    indices = np.concatenate([np.arange(T) * d + j for j in range(d)]
                             + [[T * d + t] for t in range(T)]).astype(np.int32)
    ptr = np.concatenate([[0], np.cumsum([T] * d + [1] * T)]).astype(np.int32)
    weights = np.concatenate([np.ones(d), np.zeros(T)])  # intercepts: free
    return Z, np.concatenate([y for _, y in tasks]), indices, ptr, weights, (d, T)


@quiet
def fit_skglm_group(design, obj, tol):
    from skglm import GeneralizedLinearEstimator
    from skglm.datafits import LogisticGroup
    from skglm.penalties import WeightedGroupL2
    from skglm.solvers import GroupProxNewton
    Z, y, indices, ptr, weights, (d, T) = design
    model = GeneralizedLinearEstimator(
        LogisticGroup(ptr, indices), WeightedGroupL2(obj.alpha, weights, ptr, indices),
        GroupProxNewton(tol=tol, max_iter=1000)).fit(Z, y)
    w = model.coef_[0]
    return w[:T * d].reshape(T, d), w[T * d:]


def importable(module):
    try:
        __import__(module)
        return True
    except ImportError:
        return False


class Formats:
    """The inputs each library prefers, built once per problem (untimed)."""

    def __init__(self, tasks):
        self.tasks = tasks
        self._cache = {}

    def get(self, name, build):
        if name not in self._cache:
            self._cache[name] = build(self.tasks)
        return self._cache[name]

    def mtlinear(self, obj):
        """Stacked, a sparse design in CSC for the penalties whose solver
        (proximal Newton) reads columns, in CSR for the ridge (Newton-CG
        reads rows): the conversion a fit would otherwise make."""
        X, y, task_col = self.get("mtlinear", mtlinear_data)
        if not sp.issparse(X) or obj.penalty == "l2":
            return X, y, task_col
        return self.get("mtlinear-csc", lambda ts: (sp.csc_matrix(X), y,
                                                    task_col))

    def csr(self):
        return self.get("csr", lambda ts: [
            (sp.csr_matrix(X) if sp.issparse(X) else X, y) for X, y in ts])

    def column_major(self):  # skglm's coordinate descent reads columns
        return self.get("column", lambda ts: [
            (sp.csc_matrix(X) if sp.issparse(X) else np.asfortranarray(X), y)
            for X, y in ts])

    def group(self):
        return self.get("group", group_design)


def solvers_for(obj, formats):
    """``(name, role, fit(tol) -> (coef, intercept))`` of the solvers of
    ``obj``; role ``"mtlinear"``, ``"peer"`` (the same objective) or
    ``"apart"`` (liblinear's penalized intercept)."""
    tasks = formats.tasks
    omegas = task_weights(tasks, obj)
    out = [(f"mtlinear-{s}", "mtlinear",
            lambda tol, s=s: fit_mtlinear(formats.mtlinear(obj), obj, omegas,
                                          tol, s))
           for s in ("auto", "fista")]
    l1_family = obj.penalty == "l1"
    plain = obj.penalty == "l2" or obj.l1_ratio == 1
    if obj.pooled:
        if obj.penalty == "l21" and obj.l1_ratio == 1 and formats.group() \
                and importable("skglm"):
            out.append(("skglm-group", "peer",
                        lambda tol: fit_skglm_group(formats.group(), obj, tol)))
        return out
    if obj.penalty not in ("l2", "l1"):
        return out
    sk = []
    if obj.penalty == "l2":
        sk.append("lbfgs")
    if obj.penalty == "l2" or (not obj.fit_intercept and l1_family and plain):
        sk.append("liblinear")
    sk.append("saga")
    for s in sk:
        role = "apart" if s == "liblinear" and obj.fit_intercept else "peer"
        out.append((f"sklearn-{s}", role,
                    lambda tol, s=s: fit_sklearn(formats.csr(), obj, tol, s)))
    if importable("skglm"):
        out.append(("skglm-prox_newton", "peer",
                    lambda tol: fit_skglm(formats.column_major(), obj, tol,
                                          "prox_newton")))
        if obj.penalty == "l2" and not obj.fit_intercept:
            out.append(("skglm-lbfgs", "peer",
                        lambda tol: fit_skglm(formats.column_major(), obj, tol,
                                              "lbfgs")))
    if l1_family and plain and not obj.fit_intercept and importable("celer"):
        out.append(("celer", "peer",
                    lambda tol: fit_celer(formats.csr(), obj, tol)))
    return out


def tune(fit, judge, target, cap, start_tol=1e-1):
    """The loosest ``tol`` reaching ``target`` by ``judge`` (a
    :class:`Judge`): ``start_tol / 10^k`` for the first ``k`` that does,
    then the half step back (``sqrt(10)`` looser) if that reaches it too,
    as ``solvers.py`` tunes; after an untimed warm-up.  The search gives up
    after a fit longer than ``cap`` seconds once it has spent ``3 cap``.
    Returns the tuned ``tol``, the gap there, whether it was reached, and
    the tuning fit's time as the first of ``times``."""
    def attempt(tol):  # (seconds, judged gap) of one fit
        t0 = time.perf_counter()
        coef, b = fit(tol)
        return time.perf_counter() - t0, judge(coef, b)

    fit(start_tol)  # warm-up
    tol, spent = start_tol, 0.0
    while True:
        elapsed, gap = attempt(tol)
        spent += elapsed
        # a slow fit ends the search once it has taken 3 caps: some solvers
        # crawl only at loose tolerances (skglm's proximal Newton on
        # newsgroup without intercept)
        if gap <= target or (elapsed > cap and spent > 3 * cap) or tol < 1e-15:
            break
        tol /= 10
    if gap <= target and tol < start_tol:
        looser = tol * np.sqrt(10.0)
        looser_elapsed, looser_gap = attempt(looser)
        if looser_gap <= target:
            tol, gap, elapsed = looser, looser_gap, looser_elapsed
    return dict(fit=fit, tol=tol, gap=gap, reached=gap <= target,
                times=[elapsed])


def time_side_by_side(tuned, repeats, min_time):
    """Time the solvers of one point that reached the target, in rounds of
    one fit each at its tuned ``tol``: a machine whose speed drifts moves
    them all alike.  A solver takes part in a round while it has fewer than
    ``repeats`` fits, or fewer than 100 that total less than ``min_time``
    seconds (fits of a few milliseconds are noisy one by one).  Sets each
    one's ``median``."""
    def wanted(r):
        n = len(r["times"])
        return r["reached"] and (n < repeats or (sum(r["times"]) < min_time
                                                 and n < 100))

    while True:
        running = [r for r in tuned if wanted(r)]
        if not running:
            break
        for r in running:
            t0 = time.perf_counter()
            r["fit"](r["tol"])
            r["times"].append(time.perf_counter() - t0)
    for r in tuned:
        r["median"] = float(np.median(r["times"]))


def first_call(problem, obj, tol, paths):
    """Time of the first mtlinear fit in a fresh process (imports excluded)."""
    code = (f"import sys, time; sys.path.insert(0, {HERE!r}); "
            "import classifier as c; import mtlinear; "
            f"tasks = c.load_problem({problem!r}, {paths!r}); "
            f"obj = c.Objective(*{tuple(obj)!r}); "
            "data = c.Formats(tasks).mtlinear(obj); "
            "w = c.task_weights(tasks, obj); "
            "t0 = time.perf_counter(); "
            f"c.fit_mtlinear(data, obj, w, {float(tol)!r}, 'auto'); "
            "print(time.perf_counter() - t0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, check=True)
    return float(out.stdout.split()[-1])


def ratio_text(value):
    """Two decimals, three below 0.1 (a ratio of 0.005 is not 0.00)."""
    return f"{value:.3f}" if value < 0.1 else f"{value:.2f}"


def fastest_peer(rows):
    """``(name, median)`` of the fastest peer that reached the target."""
    peers = [(r["median"], name) for name, role, r in rows
             if role == "peer" and r["reached"]]
    return (min(peers)[1], min(peers)[0]) if peers else (None, None)


def run_point(problem, obj, target, formats, judge, args):
    """Tune and time every solver of one point (``judge``: its
    :class:`Judge`); print its rows."""
    rows = []
    for name, role, fit in solvers_for(obj, formats):
        if args.solvers and name not in args.solvers:
            continue
        if name == "mtlinear-fista" and obj.penalty != "trace" and target < 1e-6:
            continue  # minutes at tight targets: not the point
        rows.append((name, role, tune(fit, judge, target, args.cap)))
    time_side_by_side([r for _, _, r in rows], args.repeats, args.min_time)
    best_name, best = fastest_peer(rows)
    for name, role, r in rows:
        ratio = ratio_text(r["median"] / best) if best and r["reached"] else ""
        first = ""
        if name == "mtlinear-auto" and args.first_call:
            first = f"{first_call(problem, obj, r['tol'], args.paths):.3f}"
        status = "" if r["reached"] else " (not reached)"
        if judge.kind != args.judge:  # no certified reference optimum
            status += " (gap: no reference)"
        apart = " (apart)" if role == "apart" else ""
        print(f"| {LABELS[problem]} | {obj.label()} | {obj.alpha:.2e} | "
              f"{target:.0e} | {name}{apart} | {r['tol']:.0e} | "
              f"{r['gap']:.1e}{status} | {r['median']:.4f} | {ratio} | "
              f"{first} |", flush=True)
    auto = dict((n, r) for n, _, r in rows).get("mtlinear-auto")
    return dict(problem=problem, point=obj.label(), alpha=obj.alpha,
                target=target, auto=auto, best_name=best_name, best=best,
                peers=sum(role == "peer" for _, role, _ in rows))


def print_summary(points, goal):
    """One line per point: auto against the fastest peer, and the goal."""
    print("\n| problem | point | alpha | target | auto s | fastest peer | "
          f"peer s | auto / peer | at most {goal:g} |")
    print("|---" * 9 + "|")
    for p in points:
        auto = p["auto"]
        if auto is None:
            continue
        if p["best"] is None:
            ratio = ""
            verdict = "no peer reached the target" if p["peers"] else "no peer"
        else:
            value = auto["median"] / p["best"]
            ratio = ratio_text(value) + ("" if auto["reached"] else " (not reached)")
            verdict = "yes" if auto["reached"] and value <= goal else "**no**"
        print(f"| {p['problem']} | {p['point']} | {p['alpha']:.2e} | "
              f"{p['target']:.0e} | {auto['median']:.4f} | "
              f"{p['best_name'] or ''} | "
              f"{'' if p['best'] is None else format(p['best'], '.4f')} | "
              f"{ratio} | {verdict} |", flush=True)


# ---------------------------------------------------------------- CV
def stacked_folds(tasks, n_folds, seed=0):
    """Per-task ``StratifiedKFold`` splits (local indices) and their union
    over tasks in the stacked row order."""
    from sklearn.model_selection import StratifiedKFold
    splitter = StratifiedKFold(n_folds, shuffle=True, random_state=seed)
    local = [list(splitter.split(np.zeros(len(y)), y)) for _, y in tasks]
    offsets = np.cumsum([0] + [len(y) for _, y in tasks])
    stacked = [tuple(np.concatenate([offsets[t] + local[t][k][part]
                                     for t in range(len(tasks))])
                     for part in (0, 1))
               for k in range(n_folds)]
    return local, stacked


def cv_grid(tasks, penalty, n_alphas):
    """l1: ``alpha_max`` to ``alpha_max / 1000``; l2: scikit-learn's default
    ``Cs = logspace(-4, 4)`` on an average task.  Decreasing alphas."""
    if penalty == "l2":
        n_mean = np.mean([len(y) for _, y in tasks])
        return 1.0 / (n_mean * np.logspace(-4, 4, n_alphas))
    top = alphas_for(tasks, POINTS["l1"])[0] * 10
    return np.geomspace(top, top / 1000, n_alphas)


@quiet
def fit_mtlinear_cv(data, penalty, alphas, folds):
    from mtlinear import MultiTaskClassifierCV
    X, y, _ = data
    model = MultiTaskClassifierCV(penalty=penalty, alphas=alphas, cv=folds,
                                  task_col=-1).fit(X, y)
    return [model.alpha_]


def fit_sklearn_cv(tasks, penalty, alphas, folds):
    """``LogisticRegressionCV`` per task; returns each task's chosen alpha
    and counts its convergence warnings (``fit_sklearn_cv.warned``)."""
    from sklearn.linear_model import LogisticRegressionCV
    chosen, warned = [], 0
    for (X, y), task_folds in zip(tasks, folds):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = LogisticRegressionCV(
                Cs=1.0 / (alphas * len(y)), l1_ratios=[1.0 if penalty == "l1" else 0.0],
                solver="saga" if penalty == "l1" else "lbfgs", cv=task_folds,
                scoring="neg_log_loss", use_legacy_attributes=False).fit(X, y)
        warned += sum("converge" in str(w.message) for w in caught)
        chosen.append(1.0 / (float(model.C_) * len(y)))
    fit_sklearn_cv.warned = warned
    return chosen


def time_cv(fits, repeats):
    """Median seconds of ``repeats`` calls of each of ``fits``, called in
    turn (side by side: a drift of the machine's speed moves them alike),
    and each one's last result."""
    times = [[] for _ in fits]
    out = [None] * len(fits)
    for _ in range(repeats):
        for k, fit in enumerate(fits):
            t0 = time.perf_counter()
            out[k] = fit()
            times[k].append(time.perf_counter() - t0)
    return [(float(np.median(t)), o) for t, o in zip(times, out)]


def run_cv(problem, tasks, penalty, args):
    """Time both CV estimators on one problem and penalty; print a row."""
    from mtlinear import stack_tasks
    X, y = stack_tasks([X for X, _ in tasks], [y for _, y in tasks])
    data = (X, y, -1)
    alphas = cv_grid(tasks, penalty, args.cv_alphas)
    local, stacked = stacked_folds(tasks, args.cv_folds)
    csr = [(sp.csr_matrix(X) if sp.issparse(X) else X, y) for X, y in tasks]
    fit_mtlinear_cv(data, penalty, alphas[:2], stacked[:2])  # load the kernels
    (mt_s, mt_alpha), (sk_s, sk_alpha) = time_cv(
        [lambda: fit_mtlinear_cv(data, penalty, alphas, stacked),
         lambda: fit_sklearn_cv(csr, penalty, alphas, local)], args.cv_repeats)
    index = {a: k for k, a in enumerate(alphas)}  # grid positions, 0 = largest
    position = [int(np.argmin(np.abs(np.log(alphas / a)))) for a in sk_alpha]
    ratio = mt_s / sk_s
    print(f"| {LABELS[problem]} | {penalty} | {len(alphas)} x {args.cv_folds} | "
          f"{mt_s:.3f} | {sk_s:.3f} | {ratio:.2f} | "
          f"{'yes' if ratio <= args.cv_goal else '**no**'} | "
          f"{mt_alpha[0]:.2e} ({index.get(mt_alpha[0], '?')}) | "
          f"{np.median(sk_alpha):.2e} ({min(sk_alpha):.1e} - {max(sk_alpha):.1e}; "
          f"{min(position)}-{max(position)}) | {fit_sklearn_cv.warned} |",
          flush=True)


# ---------------------------------------------------------------- main
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--newsgroup", default=os.path.join(
        HERE, "..", "..", "shared", "data", "newsgroup"))
    parser.add_argument("--landmine", default=os.path.join(
        HERE, "..", "..", "shared", "data", "landmine.mat"))
    parser.add_argument("--problems", nargs="+",
                        default=["newsgroup", "landmine", "dense-shared",
                                 "dense-stacked"])
    parser.add_argument("--points", "--penalties", nargs="+", dest="points",
                        default=list(POINTS), choices=list(POINTS))
    parser.add_argument("--targets", nargs="+", type=float, default=[1e-6])
    parser.add_argument("--judge", choices=["suboptimality", "gap"],
                        default="suboptimality",
                        help="what the targets bound: the relative "
                             "suboptimality against a certified optimum, "
                             "or the relative duality gap")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--min-time", type=float, default=0.5,
                        help="time more fits (up to 100) of a fast solver "
                             "until they take this many seconds")
    parser.add_argument("--cap", type=float, default=10.0,
                        help="stop tuning a solver once one fit takes longer "
                             "and its search three times as long")
    parser.add_argument("--solvers", nargs="+", default=None,
                        help="only these (e.g. mtlinear-auto mtlinear-fista)")
    parser.add_argument("--goal", type=float, default=0.5,
                        help="the target ratio of auto to the fastest peer")
    parser.add_argument("--no-first-call", dest="first_call",
                        action="store_false",
                        help="skip timing the first fit in a fresh process")
    parser.add_argument("--cv", action="store_true",
                        help="also compare MultiTaskClassifierCV with "
                             "LogisticRegressionCV per task")
    parser.add_argument("--cv-only", action="store_true",
                        help="only the CV comparison")
    parser.add_argument("--cv-penalties", nargs="+", default=["l2", "l1"],
                        choices=["l2", "l1"])
    parser.add_argument("--cv-alphas", type=int, default=10)
    parser.add_argument("--cv-folds", type=int, default=5)
    parser.add_argument("--cv-repeats", type=int, default=1)
    parser.add_argument("--cv-goal", type=float, default=0.33)
    parser.add_argument("--blas-threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true",
                        help="dense problems, l2 and l1, target 1e-6")
    args = parser.parse_args(argv)
    if args.quick:
        args.problems, args.points = ["dense-shared", "dense-stacked"], ["l2", "l1"]
        args.targets = [1e-6]
    args.paths = {"newsgroup": args.newsgroup, "landmine": args.landmine}

    from threadpoolctl import threadpool_limits
    with threadpool_limits(limits=args.blas_threads, user_api="blas"):
        problems = {}
        for problem in args.problems:
            problems[problem] = load_problem(problem, args.paths)
            if problems[problem] is None:
                print(f"{problem}: skipped, no data at {args.paths[problem]}")
        problems = {k: v for k, v in problems.items() if v is not None}
        if not args.cv_only:
            run_solvers(problems, args)
        if args.cv or args.cv_only:
            print("\n| problem | penalty | alphas x folds | MultiTaskClassifierCV s | "
                  f"LogisticRegressionCV s | ratio | at most {args.cv_goal:g} | "
                  "mtlinear alpha_ (grid index) | "
                  "sklearn alpha per task: median (range; grid indices) | "
                  "sklearn convergence warnings |")
            print("|---" * 10 + "|")
            for problem, tasks in problems.items():
                for penalty in args.cv_penalties:
                    run_cv(problem, tasks, penalty, args)


def run_solvers(problems, args):
    header = ("| problem | point | alpha | target | solver | tol | "
              f"rel. {'suboptimality' if args.judge != 'gap' else 'gap'} | "
              "warm median s | ratio to fastest peer | first call s |")
    print(header)
    print("|---" * (header.count("|") - 1) + "|")
    summary = []
    for problem, tasks in problems.items():
        formats = Formats(tasks)
        for point in args.points:
            if POINTS[point].get("pooled") and not formats.group():
                print(f"| {LABELS[problem]} | {point} | skipped: skglm-group "
                      "needs a dense block-diagonal design under "
                      f"{GROUP_DESIGN_MAX:.0e} entries |")
                continue
            for alpha in alphas_for(tasks, POINTS[point]):
                obj = Objective(alpha=alpha, **POINTS[point])
                judge = Judge(tasks, obj, args.judge, formats)  # one reference
                for target in args.targets:
                    summary.append(run_point(problem, obj, target, formats,
                                             judge, args))
    print_summary(summary, args.goal)


if __name__ == "__main__":
    main(sys.argv[1:])
