"""Compile the kernels of the common fits, for a build to ship them.

``python -m mtlinear._precompile DESTINATION`` runs small fits of the
estimators' usual configurations (:func:`compile_common_fits`), then
copies the compiled kernels from this process's cache directory to
``DESTINATION/mtlinear-<hash>`` with the target they were compiled for
(see :mod:`mtlinear._numba_cache`).  The package's build
runs it with ``NUMBA_CACHE_DIR`` pointing at an empty directory, so only
these kernels are shipped.  A fit the data here do not reach compiles on
first use, as it would without this step.
"""
import json
import os
import shutil
import sys
import warnings

import numpy as np
import scipy.sparse as sp

import mtlinear
from mtlinear._numba_cache import TARGET_FILE, cache_dir, compile_target

__all__ = ["compile_common_fits", "main"]


def compile_common_fits():
    """Fit each common configuration once on small generated data: the
    regressor with every built-in penalty in both layouts (dense), the
    classifier with l1, l2 and l21 (stacked, dense and sparse), and the
    cross-validated estimators."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 8))
    Y = X[:, :3] @ rng.standard_normal((3, 3)) + 0.1 * rng.standard_normal((60, 3))
    tasks = np.repeat(np.arange(3), 20)
    Xt = np.column_stack([X, tasks])
    y = Y[np.arange(60), tasks]
    labels = (y > np.median(y)).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for penalty in ("l21", "l1", "l2", "trace", "sparse_group"):
            alpha = (0.01 if penalty == "l2" else
                     mtlinear.alpha_max(X, Y, penalty=penalty) / 10)
            mtlinear.MultiTaskRegressor(penalty=penalty, alpha=alpha).fit(X, Y)
            mtlinear.MultiTaskRegressor(penalty=penalty, alpha=0.01,
                                        task_col=-1).fit(Xt, y)
        for penalty in ("l1", "l2", "l21"):
            for design in (Xt, sp.csr_matrix(Xt)):
                mtlinear.MultiTaskClassifier(penalty=penalty, alpha=0.01,
                                             task_col=-1).fit(design, labels)
        mtlinear.MultiTaskRegressorCV(penalty="l21", task_col=-1, cv=3,
                                      alphas=5).fit(Xt, y)
        mtlinear.MultiTaskClassifierCV(penalty="l2", task_col=-1, cv=3,
                                       alphas=5).fit(Xt, labels)


def main(destination):
    """Compile, then copy this process's kernels to `destination`."""
    root = cache_dir()
    if root is None:
        raise RuntimeError("the compile cache is disabled: nothing to ship")
    compile_common_fits()
    target = os.path.join(destination, os.path.basename(root))
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(root, target)
    with open(os.path.join(destination, TARGET_FILE), "w") as file:
        json.dump(compile_target(), file)


if __name__ == "__main__":
    main(sys.argv[1])
