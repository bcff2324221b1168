"""
Same objective as scikit-learn: MultiTaskLasso, ElasticNet, Lasso and Ridge
===========================================================================

With a shared design and unit weights, each task's loss in mtlinear is a mean
over the samples, exactly as in scikit-learn's linear models, so ``alpha``
means the same thing:

* ``penalty="l21"`` is ``MultiTaskLasso`` / ``MultiTaskElasticNet``;
* ``penalty="l1"`` is ``Lasso`` / ``ElasticNet`` fitted to each task;
* ``penalty="l2"`` is ``Ridge``, whose objective has no :math:`1/(2n)`, with
  ``alpha_sklearn = n * alpha``.

This example fits each pair on the same data and compares the coefficients.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.linear_model import (ElasticNet, Lasso, MultiTaskElasticNet,
                                  MultiTaskLasso, Ridge)

from mtlinear import MultiTaskRegressor, alpha_max

rng = np.random.default_rng(0)
n, d, T = 100, 30, 5
X = rng.standard_normal((n, d))
Y = X[:, :6] @ rng.standard_normal((6, T)) + 0.5 * rng.standard_normal((n, T))

alpha = alpha_max(X, Y, penalty="l21") / 20
tight = dict(tol=1e-14, max_iter=100_000)  # both sides solved to high accuracy
pairs = {
    "l21  vs MultiTaskLasso": (
        MultiTaskRegressor(penalty="l21", alpha=alpha, **tight),
        MultiTaskLasso(alpha=alpha, **tight)),
    "l21, l1_ratio=0.5  vs MultiTaskElasticNet": (
        MultiTaskRegressor(penalty="l21", alpha=alpha, l1_ratio=0.5, **tight),
        MultiTaskElasticNet(alpha=alpha, l1_ratio=0.5, **tight)),
    "l1  vs Lasso": (
        MultiTaskRegressor(penalty="l1", alpha=alpha, **tight),
        Lasso(alpha=alpha, **tight)),
    "l1, l1_ratio=0.5  vs ElasticNet": (
        MultiTaskRegressor(penalty="l1", alpha=alpha, l1_ratio=0.5, **tight),
        ElasticNet(alpha=alpha, l1_ratio=0.5, **tight)),
    "l2  vs Ridge(alpha = n * alpha)": (
        MultiTaskRegressor(penalty="l2", alpha=alpha, **tight),
        Ridge(alpha=n * alpha)),
}

fig, axes = plt.subplots(1, len(pairs), figsize=(15, 3.2), layout="constrained")
for ax, (name, (ours, theirs)) in zip(axes, pairs.items()):
    ours.fit(X, Y)
    theirs.fit(X, Y)  # Lasso, ElasticNet and Ridge fit each column of Y
    difference = np.abs(ours.coef_ - theirs.coef_).max()
    print(f"{name:<45} max |coef difference| = {difference:.1e}")
    ax.plot(theirs.coef_.ravel(), ours.coef_.ravel(), ".", ms=4)
    lim = np.abs(theirs.coef_).max() * 1.1
    ax.plot([-lim, lim], [-lim, lim], "k-", lw=0.5)
    ax.set(title=name.replace("  vs ", "\nvs "), xlabel="scikit-learn coef_",
           ylabel="mtlinear coef_" if ax is axes[0] else None)
plt.show()

# %%
# The intercepts agree as well (they are unpenalized in both), and the same
# holds with ``sample_weight``: scikit-learn's Lasso and ElasticNet normalize
# the weighted loss by the sum of the weights, as mtlinear does.  With
# heterogeneous tasks of different sizes, ``task_col`` and the per-task means
# give each task equal weight; see the user guide for MALSAR's scaling
# (``task_weights`` equal to the task sizes).
