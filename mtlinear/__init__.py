"""mtlinear: regularized linear multi-task learning, scikit-learn style.

Public names
------------
MultiTaskRegressor
    Squared or Huber loss with the ``l1``, ``l2``, ``l21``, ``trace`` or
    ``sparse_group`` penalty (or any registered one).
MultiTaskClassifier
    Logistic loss (one binary problem per task), the same penalties.
alpha_max
    Smallest ``alpha`` giving an all-zero model.
MultiTaskRegressorCV, MultiTaskClassifierCV
    ``alpha`` (and ``l1_ratio``, penalty) chosen by cross-validation.
regularization_path
    Warm-started solutions over a decreasing grid of ``alpha``.
MultiTaskEstimator
    A loss per task: regression and classification tasks in one model.
TaskStratifiedKFold
    Cross-validation folds that keep every task in every training fold.
stack_tasks
    Per-task arrays (MALSAR's format) to the stacked layout (``task_col=-1``).
load_school
    The School data (MALSAR ``.mat`` file) in the stacked layout.
"""
from ._numba_cache import ensure_writable_cache

ensure_writable_cache()  # before any @njit(cache=True) kernel is defined

from ._classifier import MultiTaskClassifier  # noqa: E402
from ._cv import MultiTaskClassifierCV, MultiTaskRegressorCV  # noqa: E402
from ._mixed import MultiTaskEstimator  # noqa: E402
from ._path import alpha_max, regularization_path  # noqa: E402
from ._regressor import MultiTaskRegressor  # noqa: E402
from ._relations import (ClusteredMultiTaskClassifier,  # noqa: E402
                         ClusteredMultiTaskRegressor,
                         MultiTaskRelationClassifier,
                         MultiTaskRelationRegressor)
from ._task_data import stack_tasks  # noqa: E402
from .datasets import load_school  # noqa: E402
from .model_selection import TaskStratifiedKFold  # noqa: E402

__all__ = ["MultiTaskRegressor", "MultiTaskClassifier", "MultiTaskEstimator",
           "MultiTaskRegressorCV",
           "MultiTaskClassifierCV", "MultiTaskRelationRegressor",
           "MultiTaskRelationClassifier", "ClusteredMultiTaskRegressor",
           "ClusteredMultiTaskClassifier", "alpha_max", "regularization_path",
           "TaskStratifiedKFold", "stack_tasks", "load_school"]
__version__ = "0.1.0"
