"""
How tasks relate: a task graph, learned clusters and a learned task covariance
==============================================================================

Twelve regression tasks fall into three clusters: the four tasks of a cluster
have noisy copies of the cluster's weight vector, and the three clusters'
weight vectors are unrelated.  Each task has only 25 training rows for 20
features, too few to estimate its weights well alone.  The data are in the
stacked layout (the task label in the last column, ``task_col=-1``), the
layout of the School data.

Four models are compared, from no sharing to learned structure:

* independent ridge, ``penalty="l2"``: every task on its own;
* a fixed task graph, ``task_graph="mean"``: every task is pulled towards
  the mean of all the tasks' weights, as if all tasks were related alike;
* clustered MTL (:class:`~mtlinear.ClusteredMultiTaskRegressor`): learns
  which tasks form a cluster and pulls them together;
* MTRL (:class:`~mtlinear.MultiTaskRelationRegressor`): learns a task
  covariance, with positive, negative or no correlation between tasks.

We check what the two learned relations recover, then how well each model
predicts held-out rows.  An optional last section looks at the School data.
"""

import os

import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import adjusted_rand_score
from sklearn.model_selection import GridSearchCV
from sklearn.preprocessing import StandardScaler

from mtlinear import (ClusteredMultiTaskRegressor, MultiTaskRegressor,
                      MultiTaskRelationRegressor, load_school, stack_tasks)
from mtlinear.inspection import sharing_gain, task_relatedness
from mtlinear.metrics import task_scorer, task_scores
from mtlinear.model_selection import TaskStratifiedKFold
from mtlinear.plotting import cluster_order, plot_task_relatedness

rng = np.random.default_rng(0)
n_tasks, n_features, n_clusters = 12, 20, 3
cluster_of = rng.permutation(np.repeat(np.arange(n_clusters), n_tasks // n_clusters))
centers = rng.standard_normal((n_features, n_clusters))
W_true = centers[:, cluster_of] + 0.2 * rng.standard_normal((n_features, n_tasks))
offsets = rng.standard_normal(n_tasks)  # every task has its own intercept


def draw_rows(n_rows):
    """``n_rows`` new rows of every task, stacked with the task label last."""
    X_list = [rng.standard_normal((n_rows, n_features)) for _ in range(n_tasks)]
    y_list = [X_t @ W_true[:, t] + offsets[t] + rng.standard_normal(n_rows)
              for t, X_t in enumerate(X_list)]
    return stack_tasks(X_list, y_list)


X_train, y_train = draw_rows(25)  # per task: 25 rows to fit on,
X_test, y_test = draw_rows(100)   # 100 held-out rows to score on
names = np.array([f"{t}{'ABC'[c]}" for t, c in enumerate(cluster_of)])
print("task (cluster):", " ".join(names))
print(f"training rows {X_train.shape[0]}, test rows {X_test.shape[0]}, "
      f"{n_features} features")

# %%
# Learned clusters
# ----------------
# Clustered MTL learns a matrix :math:`M` (``cluster_matrix_``,
# :math:`T \times T`, trace ``n_clusters``), the convex relaxation of the
# projection onto the cluster indicators, and labels the tasks by k-means on
# its top eigenvectors (``task_clusters_``).  The labels match the planted
# clusters up to their numbering: an adjusted Rand index of 1.
#
# In the heatmap the tasks are ordered by :func:`~mtlinear.plotting.cluster_order`
# of the true weights' correlation (the same order in every figure below), and
# each label gives the task and its planted cluster.  :math:`M` is nearly
# block-diagonal: about 0.2 within each cluster of four tasks (:math:`1/4` for
# an exact projection), near 0 between clusters.

cmtl = ClusteredMultiTaskRegressor(n_clusters=3, cluster_alpha=0.01, eta=0.1,
                                   task_col=-1).fit(X_train, y_train)
print("planted clusters:", cluster_of)
print("learned clusters:", cmtl.task_clusters_)
ari = adjusted_rand_score(cluster_of, cmtl.task_clusters_)
print(f"adjusted Rand index: {ari:.2f}")

R_true = task_relatedness(W_true.T)  # correlation of the true weight vectors
order = cluster_order(R_true)
M = cmtl.cluster_matrix_
fig, ax = plt.subplots(figsize=(5.5, 4.5), layout="constrained")
plot_task_relatedness(M, labels=names, order=order, ax=ax,
                      vmin=-np.abs(M).max(), vmax=np.abs(M).max())
ax.set_title("Clustered MTL: cluster matrix M")
plt.show()

# %%
# Learned task covariance
# -----------------------
# MTRL learns a task covariance :math:`\Omega` with the weights;
# ``task_correlation_`` is its correlation matrix.  Next to it, the correlation
# of the planted weight vectors.  The learned matrix shows the same three
# blocks, but weaker: :math:`\Omega` is proportional to :math:`(W^\top
# W)^{1/2}`, and the matrix square root shrinks correlations: applied to the
# *true* weights, this covariance step turns their correlation of 0.96 within
# a cluster into about 0.7.  That is the strength to expect, and the learned
# blocks, from 25 rows per task, reach it.

mtrl = MultiTaskRelationRegressor(alpha=1e-3, relation_alpha=0.01,
                                  task_col=-1).fit(X_train, y_train)

# MTRL's covariance step on the true weights: (W^T W)^{1/2}, as a correlation
s, V = np.linalg.eigh(W_true.T @ W_true)
root = (V * np.sqrt(np.clip(s, 0, None))) @ V.T
R_root = root / np.sqrt(np.outer(np.diag(root), np.diag(root)))

same = (cluster_of[:, None] == cluster_of[None, :]) & ~np.eye(n_tasks, dtype=bool)
between = cluster_of[:, None] != cluster_of[None, :]
for label, R in [("true weights", R_true),
                 ("covariance step on the true weights", R_root),
                 ("MTRL, learned", mtrl.task_correlation_)]:
    print(f"{label:<36} mean correlation within clusters {R[same].mean():5.2f}, "
          f"between {R[between].mean():5.2f}")

fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), layout="constrained")
plot_task_relatedness(R_true, labels=names, order=order, ax=axes[0])
axes[0].set_title("Correlation of the planted weights")
plot_task_relatedness(mtrl.task_correlation_, labels=names, order=order, ax=axes[1])
axes[1].set_title("MTRL: learned task correlation")
plt.show()

# %%
# Which model predicts best
# -------------------------
# Each model's parameters are chosen by a small grid search, 3-fold
# cross-validation on the training rows with
# :class:`~mtlinear.model_selection.TaskStratifiedKFold` (every task in every
# fold) and the mean of the tasks' :math:`R^2` as the score
# (:func:`~mtlinear.metrics.task_scorer`).  The mean graph gets a weak ridge
# (``alpha=1e-3``) and a searched ``graph_alpha``.  Then every model is scored
# on each task's 100 held-out rows.
#
# Pulling all tasks towards their common mean barely helps: only a third of
# the tasks share any given task's weights, and the mean of three unrelated
# cluster weights is close to zero.  The two models that learn which tasks go
# together predict better, for almost every task.

searches = {
    "independent ridge": (
        MultiTaskRegressor(penalty="l2", task_col=-1),
        {"alpha": np.logspace(-3, 0, 7)}),
    'task_graph="mean"': (
        MultiTaskRegressor(penalty="l2", alpha=1e-3, task_graph="mean", task_col=-1),
        {"graph_alpha": np.logspace(-3, 0, 7)}),
    "clustered MTL": (
        ClusteredMultiTaskRegressor(n_clusters=3, task_col=-1),
        {"cluster_alpha": np.logspace(-3, 0, 4), "eta": [0.1, 0.5]}),
    "MTRL": (
        MultiTaskRelationRegressor(task_col=-1),
        {"alpha": [1e-3, 1e-2], "relation_alpha": np.logspace(-3, 0, 4)}),
}
cv = TaskStratifiedKFold(n_splits=3, shuffle=True, random_state=0, task_col=-1)
held_out = {}
for name, (model, grid) in searches.items():
    search = GridSearchCV(model, grid, cv=cv, scoring=task_scorer("r2"))
    search.fit(X_train, y_train)
    held_out[name] = np.array(list(task_scores(search.best_estimator_, X_test,
                                               y_test, "r2").values()))
    chosen = ", ".join(f"{key}={value:.3g}"
                       for key, value in search.best_params_.items())
    print(f"{name:<18} {chosen:<34} held-out R^2: mean {held_out[name].mean():.3f}, "
          f"worst task {held_out[name].min():.3f}")

ridge = held_out["independent ridge"]
for name, r2 in held_out.items():
    if name != "independent ridge":
        print(f"{name:<18} beats independent ridge on "
              f"{np.sum(r2 > ridge)} of {n_tasks} tasks")

# %%
# Real data: School
# -----------------
# The School data (MALSAR's ``school.mat``: exam scores of 15,362 students in
# 139 schools, a task per school) are not shipped with mtlinear.  Set the
# environment variable ``MTLINEAR_SCHOOL`` to the path of the file to run this
# section.  The last feature is MALSAR's constant bias column: it is dropped
# (the models fit intercepts) and the other features are standardized.

school_path = os.environ.get("MTLINEAR_SCHOOL")
have_school = school_path is not None and os.path.isfile(school_path)
if have_school:
    X_school, y_school = load_school(school_path)
    features = StandardScaler().fit_transform(X_school[:, :-2])
    X_school = np.column_stack([features, X_school[:, -1]])  # task label last
    print(f"School: {X_school.shape[0]} students, {features.shape[1]} features, "
          f"{np.unique(X_school[:, -1]).size} schools")
else:
    print("MTLINEAR_SCHOOL is not set to an existing file: the School "
          "sections are skipped.")

# %%
# MTRL's view of the schools.  ``alpha=0.03`` and ``relation_alpha=0.1``
# come from a small 3-fold search on the School rows (not rerun here); a
# stronger relation scores about as well but collapses the weights to nearly
# one direction.  Most schools weigh the features alike: the correlations are
# almost all positive, and one eigenvalue of :math:`\Omega` holds most of its
# trace.  The clustered heatmap (139 schools, no tick labels) shows groups of
# schools that are more alike than the rest.

if have_school:
    school_mtrl = MultiTaskRelationRegressor(alpha=0.03, relation_alpha=0.1,
                                             task_col=-1).fit(X_school, y_school)
    C = school_mtrl.task_correlation_
    pairs = C[~np.eye(C.shape[0], dtype=bool)]
    low, median, high = np.percentile(pairs, [5, 50, 95])
    top = np.linalg.eigvalsh(school_mtrl.task_covariance_)[-1]
    print(f"correlation between schools: median {median:.2f}, 5%-95% "
          f"[{low:.2f}, {high:.2f}], negative for {np.mean(pairs < 0):.1%} of pairs")
    print(f"largest eigenvalue of Omega: {top:.2f} of its trace (1)")

    fig, ax = plt.subplots(figsize=(6, 5), layout="constrained")
    plot_task_relatedness(C, ax=ax)
    ax.set_title("School: MTRL's learned correlation of the schools")
    plt.show()

# %%
# Does sharing help each school?  :func:`~mtlinear.inspection.sharing_gain`
# compares, by 5-fold cross-validation, the mean-regularized model fitted on
# all schools with the same model fitted on each school alone, school by
# school (:math:`R^2` on the school's held-out students).  ``alpha=0.1`` and
# ``graph_alpha=3`` also come from a small search.  Most schools gain, and
# the mean gain is many standard errors above zero: a school has 22 to 251
# students, and its own rows determine its 27 weights only roughly.  (The
# folds share training rows, so ``gain_se`` of a single school understates
# its uncertainty; read it as a yardstick.)

if have_school:
    mean_model = MultiTaskRegressor(penalty="l2", alpha=0.1, task_graph="mean",
                                    graph_alpha=3.0, task_col=-1)
    gain = sharing_gain(mean_model, X_school, y_school, cv=5, random_state=0)
    n_schools = gain.gain.size
    se = gain.gain.std(ddof=1) / np.sqrt(n_schools)
    print(f"held-out R^2 per school, mean: joint {gain.joint.mean():.3f}, "
          f"alone {gain.independent.mean():.3f}")
    print(f"schools that gain: {np.sum(gain.gain > 0)} of {n_schools} "
          f"({np.mean(gain.gain > 0):.0%}); by more than 2 gain_se: "
          f"{np.sum(gain.gain > 2 * gain.gain_se)}")
    print(f"mean gain {gain.gain.mean():.3f} +- {se:.3f} (standard error over schools)")
