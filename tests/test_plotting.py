"""plot_path and plot_cv draw what the path and the CV estimator hold."""
import sys

import numpy as np
import pytest

from mtlinear import MultiTaskRegressorCV, regularization_path

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from mtlinear.plotting import plot_cv, plot_path  # noqa: E402


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 7))
    Y = X[:, :2] @ rng.standard_normal((2, 4)) + 0.3 * rng.standard_normal((50, 4))
    return X, Y


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_plot_path_row_norms(data):
    alphas, coefs, *_ = regularization_path(*data, penalty="l21", n_alphas=10)
    ax = plot_path(alphas, coefs)
    lines = ax.get_lines()
    assert len(lines) == 7  # one per feature
    for j, line in enumerate(lines):
        np.testing.assert_allclose(line.get_xdata(), alphas)
        expected = [np.sqrt(np.sum(coefs[:, j, k] ** 2)) for k in range(10)]
        np.testing.assert_allclose(line.get_ydata(), expected)
    assert ax.get_xscale() == "log"
    assert ax.get_xlim()[0] > ax.get_xlim()[1]  # alpha decreasing to the right
    l1 = plot_path(alphas, coefs, penalty="l1", ax=plt.figure().gca())
    np.testing.assert_allclose(l1.get_lines()[0].get_ydata(),
                               np.abs(coefs[:, 0, :]).sum(axis=0))


def test_plot_path_singular_values(data):
    alphas, coefs, *_ = regularization_path(*data, penalty="trace", n_alphas=6)
    ax = plot_path(alphas, coefs, penalty="trace")
    lines = ax.get_lines()
    assert len(lines) == 4  # min(d, T) singular values
    for k in range(6):
        s = np.linalg.svd(coefs[..., k])[1]  # singular values of W^T = of W
        np.testing.assert_allclose([line.get_ydata()[k] for line in lines], s,
                                   atol=1e-12)
    assert "singular" in ax.get_ylabel()
    with pytest.raises(ValueError, match="coefs must have shape"):
        plot_path(alphas, coefs[0])


def test_plot_cv_curve_band_and_choice(data):
    model = MultiTaskRegressorCV(alphas=8, cv=3).fit(*data)
    fig, ax = plt.subplots()
    assert plot_cv(model, ax=ax) is ax
    curve, chosen = ax.get_lines()
    np.testing.assert_allclose(curve.get_xdata(), model.alphas_)
    np.testing.assert_allclose(curve.get_ydata(), model.mse_path_.mean(axis=1))
    assert chosen.get_xdata()[0] == model.alpha_
    band = ax.collections[0].get_paths()[0].vertices
    mean, std = model.mse_path_.mean(axis=1), model.mse_path_.std(axis=1)
    assert np.isclose(band[:, 1].max(), (mean + std).max())
    assert np.isclose(band[:, 1].min(), (mean - std).min())
    assert "squared error" in ax.get_ylabel()


def test_plot_cv_penalty_grid(data):
    model = MultiTaskRegressorCV(penalty=["l21", "trace"], alphas=5, cv=3,
                                 scoring="r2").fit(*data)
    ax = plot_cv(model, band=False)
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels[:2] == ["l21", "trace"]
    assert labels[2].startswith("alpha_ =") and model.penalty_ in labels[2]
    assert "higher is better" in ax.get_ylabel()
    assert not ax.collections


def test_plot_cv_graph_alpha_grid(data):
    model = MultiTaskRegressorCV(alphas=4, cv=3, task_graph="mean",
                                 graph_alpha=[0.1, 10.0]).fit(*data)
    ax = plot_cv(model, band=False)
    lines = ax.get_lines()
    assert [line.get_label() for line in lines[:2]] == [
        "graph_alpha=0.1", "graph_alpha=10"]
    for g, line in enumerate(lines[:2]):
        np.testing.assert_allclose(line.get_ydata(),
                                   model.mse_path_[g].mean(axis=1))
    assert f"graph_alpha={model.graph_alpha_:g}" in lines[2].get_label()


def test_clear_error_without_matplotlib(data, monkeypatch):
    alphas, coefs, *_ = regularization_path(*data, n_alphas=3)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"mtlinear\[plot\]"):
        plot_path(alphas, coefs)
