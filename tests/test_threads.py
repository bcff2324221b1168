"""BLAS thread limits around small iterative work (mtlinear._threads)."""
from threadpoolctl import threadpool_info

from mtlinear._threads import SMALL_WORK, blas_threads_for_work, single_blas_thread


def _blas_threads():
    import numpy  # noqa: F401  (its BLAS must be loaded to be seen)
    threads = [lib["num_threads"] for lib in threadpool_info()
               if lib["user_api"] == "blas"]
    assert threads, "no BLAS library found by threadpoolctl"
    return threads


def test_single_blas_thread_limits_inside_and_restores_after():
    before = _blas_threads()
    with single_blas_thread():
        assert all(n == 1 for n in _blas_threads())
    assert _blas_threads() == before


def test_limit_only_below_the_work_threshold():
    before = _blas_threads()
    with blas_threads_for_work(SMALL_WORK - 1):
        assert all(n == 1 for n in _blas_threads())
    with blas_threads_for_work(SMALL_WORK):
        assert _blas_threads() == before


def test_nested_limits_restore_only_at_the_outermost():
    before = _blas_threads()
    with single_blas_thread():
        with single_blas_thread():
            assert all(n == 1 for n in _blas_threads())
        assert all(n == 1 for n in _blas_threads())  # still inside the outer
    assert _blas_threads() == before
