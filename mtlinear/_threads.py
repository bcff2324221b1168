"""BLAS threads for small products: one.

OpenBLAS runs a product on several threads once it passes a size threshold;
for the small matrices of an iterative solver (a ``30 x 30`` eigenproblem in
the trace-norm prox, the ``T x n`` by ``n x 64`` products of a block of
coordinate descent) the threads cost more than they bring, and when the cores
are busy with other processes (a parallel grid search, another job) they wait
for each other: measured here, a ``28 x 28`` symmetric eigendecomposition took
16 ms on default threads on a loaded 2-core machine against 0.05 ms on one.

:func:`single_blas_thread` limits BLAS to one thread for a block of code,
through threadpoolctl (a dependency of scikit-learn); a limit costs about
10 microseconds to enter and leave.
"""
from threadpoolctl import ThreadpoolController

__all__ = ["single_blas_thread", "blas_threads_for_work", "SMALL_WORK"]

# per-iteration multiply-adds below which a solve runs BLAS on one thread
SMALL_WORK = 2 ** 27

_controller = None


def single_blas_thread():
    """Context manager: BLAS on one thread inside, as before outside."""
    global _controller
    if _controller is None:  # inspecting the loaded libraries takes ~2 ms
        _controller = ThreadpoolController()
    return _controller.limit(limits=1, user_api="blas")


class _Unlimited:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def blas_threads_for_work(work):
    """One BLAS thread when ``work`` (multiply-adds per iteration) is below
    :data:`SMALL_WORK`, else no limit."""
    return single_blas_thread() if work < SMALL_WORK else _Unlimited()
