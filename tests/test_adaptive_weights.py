"""``task_weights="auto"``: inverse noise variances learned per task."""
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from mtlinear import MultiTaskClassifier, MultiTaskRegressor, MultiTaskRegressorCV


def _noisy_tasks(seed=0, n=200, d=4, noise=(0.1, 0.3, 1.0, 3.0)):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    W = rng.standard_normal(d)[:, None] + 0.1 * rng.standard_normal((d, len(noise)))
    Y = X @ W + rng.standard_normal((n, len(noise))) * np.array(noise)
    return X, Y


def _objective(model, X, Y, alpha):
    """``J`` of mtlinear._adaptive written out: the weighted fit at the
    learned weights plus ``-1/2 sum log omega``; the penalty is l21."""
    mse = np.mean((X @ model.coef_.T + model.intercept_ - Y) ** 2, axis=0)
    omega = model.task_weights_
    return (0.5 * np.sum(omega * mse) - 0.5 * np.sum(np.log(omega))
            + alpha * np.linalg.norm(model.coef_, axis=0).sum())


def test_weights_are_the_inverse_residual_variances():
    X, Y = _noisy_tasks()
    model = MultiTaskRegressor(alpha=0.01, task_weights="auto",
                               tol=1e-10).fit(X, Y)
    mse = np.mean((model.predict(X) - Y) ** 2, axis=0)
    np.testing.assert_allclose(model.task_weights_, 1 / mse, rtol=1e-3)
    # the learned variances follow the planted noise levels
    assert np.all(np.diff(1 / model.task_weights_) > 0)
    # the model is the weighted fit at the learned weights
    fixed = MultiTaskRegressor(alpha=0.01, task_weights=model.task_weights_,
                               tol=1e-10).fit(X, Y)
    np.testing.assert_allclose(model.coef_, fixed.coef_, atol=1e-8)


def test_a_stationary_point_of_the_likelihood():
    X, Y = _noisy_tasks(seed=1)
    model = MultiTaskRegressor(alpha=0.02, task_weights="auto",
                               tol=1e-10).fit(X, Y)
    best = _objective(model, X, Y, 0.02)
    for factor in (0.9, 1.1):  # moving any task's weight raises J
        for t in range(Y.shape[1]):
            omega = model.task_weights_.copy()
            omega[t] *= factor
            other = MultiTaskRegressor(alpha=0.02, task_weights=omega,
                                       tol=1e-10).fit(X, Y)
            other.task_weights_ = omega
            assert _objective(other, X, Y, 0.02) > best - 1e-9


def test_target_scale():
    """``y -> c y`` maps the objective at ``alpha / c`` onto the one at
    ``alpha`` (the weighted loss is scale-free, the penalty scales by c)."""
    X, Y = _noisy_tasks(seed=2)
    base = MultiTaskRegressor(alpha=0.02, task_weights="auto", tol=1e-10).fit(X, Y)
    scaled = MultiTaskRegressor(alpha=0.0002, task_weights="auto",
                                tol=1e-10).fit(X, 100 * Y)
    np.testing.assert_allclose(scaled.coef_, 100 * base.coef_, rtol=1e-5,
                               atol=1e-8)


def test_stacked_layout_and_missing_targets():
    X, Y = _noisy_tasks(seed=3, n=120)
    Y[np.random.default_rng(3).random(Y.shape) < 0.2] = np.nan
    masked = MultiTaskRegressor(alpha=0.02, task_weights="auto",
                                tol=1e-10).fit(X, Y)
    rows, cols = np.nonzero(~np.isnan(Y))
    stacked = MultiTaskRegressor(alpha=0.02, task_weights="auto", task_col=-1,
                                 tol=1e-10).fit(np.column_stack([X[rows], cols]),
                                                Y[rows, cols])
    np.testing.assert_allclose(masked.task_weights_, stacked.task_weights_,
                               rtol=1e-6)
    np.testing.assert_allclose(masked.coef_, stacked.coef_, atol=1e-7)


def test_only_for_the_squared_loss_regressor():
    X, Y = _noisy_tasks()
    for model, y in [(MultiTaskRegressor(loss="huber", task_weights="auto"), Y),
                     (MultiTaskClassifier(task_weights="auto"), Y > 0),
                     (MultiTaskRegressorCV(task_weights="auto", alphas=3), Y)]:
        with pytest.raises(ValueError, match="task_weights='auto'"):
            model.fit(X, y)


def test_exact_fit_is_floored_not_infinite():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((30, 3))
    Y = np.column_stack([X @ [1.0, 2.0, 3.0], X @ [1.0, 2.0, 3.0]
                         + rng.standard_normal(30)])
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = MultiTaskRegressor(penalty="l2", alpha=1e-8,
                                   task_weights="auto").fit(X, Y)
    assert np.all(np.isfinite(model.task_weights_))
    # the noiseless task's weight is capped at 1000 / var(y_t)
    assert model.task_weights_[0] == pytest.approx(1000 / Y[:, 0].var(), rel=1e-6)
