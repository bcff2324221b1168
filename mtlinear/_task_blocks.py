"""The weights ``W`` (d, T K) by tasks of ``K`` coupled columns (the classes
of a multinomial task; ``K = 1`` otherwise): ``(T, d K)``, entry ``j K + k``
for feature ``j`` and column ``k``, the layout of each task's Hessian block
(:meth:`mtlinear.losses.Loss.newton_blocks`)."""

__all__ = ["task_blocks", "task_columns"]


def task_blocks(M, K):
    """``(d, T K)`` to ``(T, d K)``."""
    d, columns = M.shape
    T = columns // K
    return M.reshape(d, T, K).transpose(1, 0, 2).reshape(T, d * K)


def task_columns(B, K):
    """``(T, d K)`` to ``(d, T K)``, the inverse of :func:`task_blocks`."""
    T, m = B.shape
    d = m // K
    return B.reshape(T, d, K).transpose(1, 0, 2).reshape(d, T * K)
