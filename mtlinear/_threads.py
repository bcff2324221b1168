"""BLAS threads for small products: one.

OpenBLAS runs a product on several threads once it passes a size threshold;
for the small matrices of an iterative solver (a ``30 x 30`` eigenproblem in
the trace-norm prox, the ``T x n`` by ``n x 64`` products of a block of
coordinate descent) the threads cost more than they bring, and when the cores
are busy with other processes (a parallel grid search, another job) they wait
for each other: measured here, a ``28 x 28`` symmetric eigendecomposition took
16 ms on default threads on a loaded 2-core machine against 0.05 ms on one.

:func:`single_blas_thread` limits BLAS to one thread for a block of code,
through threadpoolctl (a dependency of scikit-learn); the outermost of nested
blocks sets the limit (about 10 microseconds to enter and leave), inner ones
only count.
"""
import threading

from threadpoolctl import ThreadpoolController

__all__ = ["single_blas_thread", "blas_threads_for_work", "SMALL_WORK"]

# per-iteration multiply-adds below which a solve runs BLAS on one thread
SMALL_WORK = 2 ** 27

_controller = None
_lock = threading.Lock()
_depth = 0  # nested single_blas_thread blocks (the limit is process-wide)
_limiter = None


class single_blas_thread:
    """Context manager: BLAS on one thread inside, as before outside.

    Nested blocks cost next to nothing (the prox of a trace norm inside a
    limited solve): only the outermost one sets and restores the limit.
    """

    def __enter__(self):
        global _controller, _depth, _limiter
        with _lock:
            if _depth == 0:
                if _controller is None:  # inspecting the libraries: ~2 ms
                    _controller = ThreadpoolController()
                _limiter = _controller.limit(limits=1, user_api="blas")
            _depth += 1
        return self

    def __exit__(self, *exc):
        global _depth, _limiter
        with _lock:
            _depth -= 1
            if _depth == 0:
                _limiter.restore_original_limits()
                _limiter = None
        return False


class _Unlimited:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def blas_threads_for_work(work):
    """One BLAS thread when ``work`` (multiply-adds per iteration) is below
    :data:`SMALL_WORK`, else no limit."""
    return single_blas_thread() if work < SMALL_WORK else _Unlimited()
