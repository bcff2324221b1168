"""Per-sample losses and their Fenchel conjugates.

The data-fit term is ``F(z) = sum_i v_i loss(y_i, z_i)`` where the weight
``v_i = omega_t s_i / n_t`` folds the task weight, the sample weight and the
per-task mean together (``n_t = sum of s_i over task t``).  Arrays may have any
shape (``(n, T)`` in the shared layout, ``(n,)`` for stacked tasks); every
method works elementwise and sums.

For the duality gap a loss gives the dual objective's loss part,

.. math:: -F^*(-\\theta) = -\\sum_i f_i^*(-\\theta_i),
          \\qquad f_i(z) = v_i\\,\\ell(y_i, z),

evaluated at the dual point ``theta = -F'(z)`` (see :mod:`mtlinear._datafit`).
"""
import numpy as np
from scipy.special import expit, xlogy

__all__ = ["SquaredLoss", "LogisticLoss", "LOSSES"]


class SquaredLoss:
    """``loss(y, z) = (y - z)**2 / 2``.

    ``f_i^*(u) = u y_i + u^2 / (2 v_i)``, hence
    ``-F^*(-theta) = sum_i theta_i y_i - theta_i^2 / (2 v_i)`` (rows with
    ``v_i = 0`` have ``theta_i = 0`` and contribute nothing).
    """

    name = "squared"
    curvature = 1.0  # bound on loss''(z)

    @staticmethod
    def value(z, y, v):
        r = y - z
        return 0.5 * float(np.vdot(v * r, r))

    @staticmethod
    def derivative(z, y, v):
        """``dF/dz``, elementwise."""
        return v * (z - y)

    @staticmethod
    def dual_value(theta, y, v):
        safe_v = np.where(v > 0, v, 1.0)
        return float(np.vdot(theta, y) - 0.5 * np.vdot(theta, theta / safe_v))



class LogisticLoss:
    """``loss(y, z) = log(1 + exp(-y z))`` with ``y`` in ``{-1, +1}``.

    With ``u = -v_i y_i s``, ``f_i^*(u) = v_i (s log s + (1 - s) log(1 - s))``
    for ``s`` in ``[0, 1]`` (``+inf`` otherwise).  The dual point
    ``theta_i = v_i y_i sigmoid(-y_i z_i)`` gives ``s_i = sigmoid(-y_i z_i)``.
    """

    name = "logistic"
    curvature = 0.25

    @staticmethod
    def value(z, y, v):
        return float(np.vdot(v, np.logaddexp(0.0, -y * z)))

    @staticmethod
    def derivative(z, y, v):
        return -v * y * expit(-y * z)

    @staticmethod
    def dual_value(theta, y, v):
        safe_v = np.where(v > 0, v, 1.0)
        s = np.clip(theta * y / safe_v, 0.0, 1.0)
        return -float(np.vdot(v, xlogy(s, s) + xlogy(1.0 - s, 1.0 - s)))

    @staticmethod
    def balance_classes(theta, y, task_sum, task_broadcast):
        """Make ``sum_i theta_i = 0`` within each task (dual of the intercept).

        ``theta_i = v_i y_i s_i`` with ``s_i`` in ``[0, 1]``; shrinking the
        ``s_i`` of the heavier class keeps them in ``[0, 1]``.  ``task_sum``
        sums an array per task; ``task_broadcast`` spreads a per-task value
        over the task's samples.
        """
        pos = np.where(y > 0, theta, 0.0)
        neg = theta - pos
        p_sum, n_sum = task_sum(pos), -task_sum(neg)
        with np.errstate(divide="ignore", invalid="ignore"):
            p_scale = np.where(p_sum > n_sum, n_sum / p_sum, 1.0)
            n_scale = np.where(n_sum > p_sum, p_sum / n_sum, 1.0)
        return pos * task_broadcast(p_scale) + neg * task_broadcast(n_scale)

    @staticmethod
    def null_intercept(y, v, task_sum):
        """Best constant per task: the weighted log-odds of the positive class."""
        total = task_sum(v)
        p = task_sum(v * (y > 0)) / np.where(total > 0, total, 1.0)
        with np.errstate(divide="ignore"):
            return np.where(total > 0, np.log(p) - np.log1p(-p), 0.0)


LOSSES = {"squared": SquaredLoss, "logistic": LogisticLoss}
