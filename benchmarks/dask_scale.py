"""Scale-out on dask: MultiTaskRegressor fitted from dask collections.

Stacked tasks (``task_col=-1``): ``--rows`` rows, ``--features`` features
(50), ``--tasks`` tasks (100), each row of a task drawn uniformly at random.
The data is generated **block by block on the workers**: block ``i`` of
``--chunk-rows`` rows comes from its own seeded generator
(``np.random.default_rng([seed, i])``), so no process ever holds more than
a few blocks and every run sees the same data.  The model is ``y = x . w_t +
b_t + noise`` with ``W`` nonzero on 10 features, and the fit is the group
lasso (``penalty="l21"``, ``--alpha``) at ``tol=1e-8``.

For each worker count (``--workers 1 2``) a LocalCluster is started with one
thread per worker and ``--memory-limit`` per worker; for each size
(``--rows 1e6 1e7``) the workers are restarted (so their peak memory is that
run's) and one fit is timed:

* ``reduce s``: the reduction of the per-task sufficient statistics on the
  workers (generation of the data included: it is part of reading it);
* ``solve s``: the rest of ``fit``: the solve on the client from the
  ``T d^2`` statistics, and the fitted attributes;
* ``worker peak``: the largest peak resident memory of a worker process
  (``resource.getrusage`` run on the workers), and ``client peak`` the
  client's;
* ``Mrows/s``: rows per second of the whole fit.

``--in-memory ROWS`` also fits ROWS rows of the same data in memory
(generated in a separate process, whose peak memory is reported): the ratio
of times to the dask fits of that size, and the largest difference of
coefficients.  It needs about four times the size of the data in memory
(52 columns of float64: 4.2 GB at 1e7 rows, so about 17 GB): it warns
first.

``--scheduler ADDRESS`` fits on an existing cluster (``--workers`` and
``--memory-limit`` are then the cluster's own; the workers are not
restarted, so their peak memory is since they started).

Examples
--------
A minute on two cores::

    python benchmarks/dask_scale.py

Growth with rows and workers, and the in-memory comparison at 1e7 rows::

    python benchmarks/dask_scale.py --rows 1e6 1e7 --workers 1 2 --in-memory 1e7

The full size::

    python benchmarks/dask_scale.py --rows 1e8 --memory-limit 2GiB
"""
import argparse
import resource
import sys
import time
import warnings

import numpy as np

SEED = 0


# ------------------------------------------------------------ data
def true_model(d, T):
    """``W`` (d, T) nonzero on 10 features, and the intercepts (T,)."""
    rng = np.random.default_rng([SEED, 2 ** 31])
    W = np.zeros((d, T))
    informative = min(10, d)
    W[:informative] = rng.standard_normal((informative, T))
    return W, rng.standard_normal(T)


def make_block(i, rows, d, T):
    """Block ``i``: features, then the task label, then the target (one
    array, so that X and y are slices of the same generated block)."""
    rng = np.random.default_rng([SEED, i])
    W, b = true_model(d, T)
    out = np.empty((rows, d + 2))
    out[:, :d] = rng.standard_normal((rows, d))
    task = rng.integers(0, T, rows)
    out[:, d] = task
    out[:, d + 1] = (np.einsum("ij,ji->i", out[:, :d], W[:, task]) + b[task]
                     + rng.standard_normal(rows))
    return out


def block_sizes(n_rows, chunk_rows):
    sizes = [chunk_rows] * (n_rows // chunk_rows)
    if n_rows % chunk_rows:
        sizes.append(n_rows % chunk_rows)
    return sizes


def dask_data(n_rows, d, T, chunk_rows):
    """``(X, y)`` as dask arrays whose blocks are generated where they run."""
    import dask
    import dask.array as da
    blocks = [da.from_delayed(dask.delayed(make_block, pure=True)(i, m, d, T),
                              shape=(m, d + 2), dtype=np.float64)
              for i, m in enumerate(block_sizes(n_rows, chunk_rows))]
    A = da.concatenate(blocks, axis=0)
    return A[:, :d + 1], A[:, d + 1]


def memory_data(n_rows, d, T, chunk_rows):
    """The same data as :func:`dask_data`, in one process."""
    sizes = block_sizes(n_rows, chunk_rows)
    A = np.empty((n_rows, d + 2))
    lo = 0
    for i, m in enumerate(sizes):
        A[lo:lo + m] = make_block(i, m, d, T)
        lo += m
    return A[:, :d + 1], A[:, d + 1].copy()


# ------------------------------------------------------------ measures
def peak_rss_mb():
    """Peak resident memory of this process, in MB (Linux: ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def estimator(args):
    from mtlinear import MultiTaskRegressor
    return MultiTaskRegressor(penalty="l21", alpha=args.alpha, task_col=-1,
                              tol=args.tol, max_iter=100_000)


def timed_fit(model, X, y):
    """``(total s, reduction s)`` of ``model.fit(X, y)``: the reduction timed
    by wrapping the function that fit calls for it."""
    from mtlinear import _dask
    inner = _dask.dask_statistics
    spent = []

    def wrapper(*a, **k):
        start = time.perf_counter()
        try:
            return inner(*a, **k)
        finally:
            spent.append(time.perf_counter() - start)

    _dask.dask_statistics = wrapper
    try:
        start = time.perf_counter()
        model.fit(X, y)
        total = time.perf_counter() - start
    finally:
        _dask.dask_statistics = inner
    return total, spent[0]


def warm_workers(client):
    """Import mtlinear on the workers (and load its compiled cache), so that
    a timed fit does not include it."""
    client.run(lambda: __import__("mtlinear") and None)


def in_memory_run(n_rows, d, T, chunk_rows, alpha, tol):
    """In a fresh process: generate, then time the in-memory fit."""
    from mtlinear import MultiTaskRegressor
    warm = MultiTaskRegressor(penalty="l21", alpha=alpha, task_col=-1)
    warm.fit(*memory_data(200 * T, d, T, 1000))  # compiled code loaded
    X, y = memory_data(n_rows, d, T, chunk_rows)
    before = peak_rss_mb()
    model = MultiTaskRegressor(penalty="l21", alpha=alpha, task_col=-1,
                               tol=tol, max_iter=100_000)
    start = time.perf_counter()
    model.fit(X, y)
    return (time.perf_counter() - start, before, peak_rss_mb(), model.coef_)


# ------------------------------------------------------------ runs
def run(args):
    from distributed import Client, LocalCluster

    sizes = sorted(int(float(r)) for r in args.rows)
    results = []
    worker_counts = [None] if args.scheduler else args.workers
    first_model = {}
    for n_workers in worker_counts:
        if args.scheduler:
            client = Client(args.scheduler)
            cluster = None
        else:
            cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1,
                                   processes=True,
                                   memory_limit=args.memory_limit,
                                   dashboard_address=":0")
            client = Client(cluster)
        n_seen = len(client.scheduler_info()["workers"])
        print(f"\n{n_seen} worker(s) at {client.scheduler.address} "
              f"(memory limit per worker: "
              f"{'cluster' if args.scheduler else args.memory_limit})",
              flush=True)
        warm_workers(client)
        # the client's compiled code, loaded once
        estimator(args).fit(*dask_data(200 * args.tasks, args.features,
                                       args.tasks, 1000))
        for n_rows in sizes:
            if cluster is not None:
                client.restart()
                warm_workers(client)
            X, y = dask_data(n_rows, args.features, args.tasks,
                             args.chunk_rows)
            model = estimator(args)
            total, reduce_s = timed_fit(model, X, y)
            peaks = client.run(peak_rss_mb)
            results.append(dict(
                workers=n_seen, rows=n_rows, total=total, reduce=reduce_s,
                solve=total - reduce_s, worker_peak=max(peaks.values()),
                client_peak=peak_rss_mb(), n_iter=model.n_iter_,
                support=int(np.count_nonzero(np.linalg.norm(model.coef_, axis=0)))))
            first_model.setdefault(n_rows, model.coef_)
            r = results[-1]
            print(f"  {n_rows:>11,d} rows: {total:8.1f} s (reduce "
                  f"{reduce_s:.1f} s, solve {r['solve']:.2f} s, "
                  f"{r['n_iter']} epochs), worker peak {r['worker_peak']:,.0f} MB",
                  flush=True)
        client.close()
        if cluster is not None:
            cluster.close()
    report(results)
    if args.in_memory:
        n_rows = int(float(args.in_memory))
        compare_in_memory(args, n_rows, first_model.get(n_rows),
                          [r for r in results if r["rows"] == n_rows])


def report(results):
    print("\nworkers        rows   total s  reduce s  solve s  Mrows/s  "
          "worker peak MB  client peak MB  support")
    print("-" * 100)
    for r in results:
        print(f"{r['workers']:>7d} {r['rows']:>11,d} {r['total']:9.1f} "
              f"{r['reduce']:9.1f} {r['solve']:8.2f} "
              f"{r['rows'] / r['total'] / 1e6:8.2f} {r['worker_peak']:15,.0f} "
              f"{r['client_peak']:15,.0f} {r['support']:8d}")
    by_workers = {}
    for r in results:
        by_workers.setdefault(r["workers"], []).append(r)
    for w, rs in by_workers.items():
        for a, b in zip(rs, rs[1:]):
            print(f"{w} worker(s): {a['rows']:.0e} -> {b['rows']:.0e} rows "
                  f"(x{b['rows'] / a['rows']:.0f}): "
                  f"time x{b['total'] / a['total']:.2f}")
    counts = sorted(by_workers)
    for n_rows in sorted({r["rows"] for r in results}):
        times = {w: r["total"] for w in counts for r in by_workers[w]
                 if r["rows"] == n_rows}
        if len(times) > 1:
            lo, hi = min(times), max(times)
            print(f"{n_rows:.0e} rows: {lo} -> {hi} workers: time "
                  f"x{times[hi] / times[lo]:.2f} "
                  f"(speed-up {times[lo] / times[hi]:.2f})")


def compare_in_memory(args, n_rows, coef, dask_runs):
    from concurrent.futures import ProcessPoolExecutor
    import multiprocessing
    need_gb = 4 * n_rows * (args.features + 2) * 8 / 1e9
    warnings.warn(f"--in-memory fits {n_rows:,d} rows in one process: about "
                  f"{need_gb:.0f} GB of memory.", stacklevel=1)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context(
            "spawn")) as pool:
        seconds, data_mb, peak_mb, ref = pool.submit(
            in_memory_run, n_rows, args.features, args.tasks, args.chunk_rows,
            args.alpha, args.tol).result()
    print(f"\nin memory, {n_rows:,d} rows: fit {seconds:.1f} s, peak "
          f"{peak_mb:,.0f} MB ({data_mb:,.0f} MB with the data alone)")
    if coef is not None:
        diff = np.abs(coef - ref).max() / np.abs(ref).max()
        print(f"  largest coefficient difference from the dask fit: "
              f"{diff:.1e} (relative to the largest coefficient)")
    for r in dask_runs:
        print(f"  dask with {r['workers']} worker(s): {r['total']:.1f} s, "
              f"x{r['total'] / seconds:.2f} the in-memory fit")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", nargs="+", default=["1e6"],
                        help="numbers of rows, e.g. 1e6 1e7 1e8")
    parser.add_argument("--features", type=int, default=50)
    parser.add_argument("--tasks", type=int, default=100)
    parser.add_argument("--workers", type=int, nargs="+", default=[2])
    parser.add_argument("--memory-limit", default="2GiB",
                        help="per worker (LocalCluster's memory_limit)")
    parser.add_argument("--chunk-rows", type=int, default=200_000)
    parser.add_argument("--alpha", type=float, default=0.2)
    parser.add_argument("--tol", type=float, default=1e-8)
    parser.add_argument("--scheduler", default=None,
                        help="address of an existing scheduler, e.g. "
                             "tcp://scheduler:8786")
    parser.add_argument("--in-memory", metavar="ROWS", default=None,
                        help="also fit ROWS rows in memory (e.g. 1e7; needs "
                             "about 4 times the data's size in memory)")
    args = parser.parse_args(argv)
    print(f"mtlinear dask scale-out: {args.features} features, {args.tasks} "
          f"tasks, blocks of {args.chunk_rows:,d} rows, l21 alpha={args.alpha}, "
          f"tol={args.tol}; python {sys.version.split()[0]}")
    run(args)


if __name__ == "__main__":
    main()
