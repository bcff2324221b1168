"""The School demonstration script (benchmarks/school.py): its metrics against
scikit-learn, its per-task split, and one split of the protocol on the
generated fallback problem, where the truth (shared support, rank 3) is known."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import r2_score

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "school.py"


@pytest.fixture(scope="module")
def school():
    spec = importlib.util.spec_from_file_location("school_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_metrics_match_r2(school):
    """Explained variance is the pooled R²; nMSE is the test-size-weighted mean
    of 1 - R² per task (R² about each task's own test mean)."""
    rng = np.random.default_rng(0)
    tasks = np.repeat([0, 1, 2], [5, 9, 14])
    y = rng.standard_normal(28) + 3 * tasks
    pred = y + rng.standard_normal(28)
    assert np.isclose(school.explained_variance(y, pred), r2_score(y, pred))
    per_task = [1 - r2_score(y[tasks == t], pred[tasks == t]) for t in range(3)]
    assert np.isclose(school.nmse(y, pred, tasks),
                      np.dot(per_task, [5, 9, 14]) / 28)


def test_per_task_split(school):
    """Every task is split within itself: a quarter of its rows to the test part."""
    tasks = np.repeat([3, 7, 8], [20, 41, 8])
    train, test = school.per_task_split(tasks, 0.25, np.random.default_rng(0))
    np.testing.assert_array_equal(np.sort(np.concatenate([train, test])),
                                  np.arange(len(tasks)))
    for label, n_t in zip([3, 7, 8], [20, 41, 8]):
        assert np.sum(tasks[test] == label) == round(0.25 * n_t)


def test_one_split_on_generated_problem(school, capsys):
    results = school.main(["--n-splits", "1", "--inner-folds", "3",
                           "--n-alphas", "6"])
    out = capsys.readouterr().out
    assert "generated heterogeneous problem" in out
    ev = {penalty: runs[0]["ev"] for penalty, runs in results.items()}
    assert set(ev) == {"l2", "l1", "l21", "trace", "mean", "mtrl", "cmtl"}
    assert all(value > 0 for value in ev.values())
    # the truth is row-sparse and low-rank: the sharing penalties beat ridge
    assert ev["l21"] > ev["l2"] and ev["trace"] > ev["l2"]
    assert results["l21"][0]["nmse"] < results["l2"][0]["nmse"]
    assert results["l21"][0]["n_features"] < 30   # 8 informative of 30
    assert results["trace"][0]["rank"] < 30       # true rank 3
