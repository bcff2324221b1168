"""Generic checks over everything registered: every penalty, loss and solver.

A new term or solver is covered here as soon as it is registered.  The
checks tie each term's pieces to one another through identities that hold
for any convex penalty (a wrong prox, conjugate or dual point breaks them),
and every solver that declares support for a problem to the same optimum.
The package's own penalties are checked against independent references
(cvxpy, scikit-learn) in the other test modules.
"""
import warnings

import numpy as np
import pytest

from mtlinear import MultiTaskClassifier, MultiTaskRegressor, stack_tasks
from mtlinear._solve import SOLVERS, choose_solver
from mtlinear.losses import LOSSES, make_loss
from mtlinear.penalties import PENALTIES, make_penalty

D, T = 6, 3


def _variants():
    """Every registered penalty with each option it takes switched on."""
    out = []
    for name, cls in sorted(PENALTIES.items()):
        out.append(pytest.param(name, {}, id=name))
        if "positive" in cls.options:
            out.append(pytest.param(name, {"positive": True}, id=f"{name}-positive"))
        if "penalty_factor" in cls.options:
            factor = np.linspace(0.5, 2.0, D)
            out.append(pytest.param(name, {"penalty_factor": factor},
                                    id=f"{name}-factor"))
    return out


@pytest.mark.parametrize("name,options", _variants())
@pytest.mark.parametrize("l1_ratio", [1.0, 0.6])
def test_prox_minimizes_its_objective(name, options, l1_ratio):
    # P = prox_{s h}(V) minimizes s h(Z) + ||Z - V||^2 / 2: no perturbation
    # (feasible for a sign constraint) does better
    rng = np.random.default_rng(0)
    pen = make_penalty(name, 0.7, l1_ratio, **options)
    for step in (0.3, 2.0):
        V = rng.standard_normal((D, T))
        P = pen.prox(V, step)

        def objective(Z):
            return step * pen.value(Z) + 0.5 * np.sum((Z - V) ** 2)

        best = objective(P)
        for _ in range(50):
            Z = P + 1e-3 * rng.standard_normal((D, T))
            if options.get("positive"):
                Z = np.maximum(Z, 0.0)
            assert objective(Z) >= best - 1e-12 * (1 + abs(best))


@pytest.mark.parametrize("name,options", _variants())
@pytest.mark.parametrize("l1_ratio", [1.0, 0.6])
def test_prox_and_conjugate_satisfy_fenchel_young(name, options, l1_ratio):
    # with P = prox_h(V), U = V - P is a subgradient of h at P, so
    # h(P) + h*(U) = <P, U>; the dual point of U is U itself (factor 1); and
    # any other (W, U') satisfies h(W) + h*(c U') >= <W, c U'>
    rng = np.random.default_rng(1)
    pen = make_penalty(name, 0.7, l1_ratio, **options)
    V = 2.0 * rng.standard_normal((D, T))
    P = pen.prox(V, 1.0)
    U = V - P
    c, conj = pen.feasible_dual(U)
    np.testing.assert_allclose(c, 1.0, rtol=1e-9)
    assert pen.value(P) + conj == pytest.approx(np.vdot(P, U), rel=1e-9,
                                                abs=1e-10)
    for _ in range(20):
        W, U2 = rng.standard_normal((D, T)), rng.standard_normal((D, T))
        if options.get("positive"):
            W = np.abs(W)
        c, conj = pen.feasible_dual(U2)
        assert pen.value(W) + conj >= np.vdot(W, c * U2) - 1e-10


@pytest.mark.parametrize("name,options", _variants())
def test_conjugate_is_finite_at_the_scaled_dual_point(name, options):
    # feasible_dual's factor puts c U in the dual-norm ball; recomputed on
    # c U, the norm may land a few ulps outside it: h* must still be finite
    # (an infinite W-step gap made coupled solves run to max_iter)
    rng = np.random.default_rng(2)
    pen = make_penalty(name, 0.1, 1.0, **options)
    for _ in range(200):
        U = rng.standard_normal((D, T)) * 10.0 ** rng.uniform(-3, 3)
        c, _ = pen.feasible_dual(U)
        c = float(np.min(c))
        assert np.isfinite(pen.conjugate(c * U)), (c, U)


@pytest.mark.parametrize("name,options", _variants())
@pytest.mark.parametrize("l1_ratio", [1.0, 0.6])
def test_violations_measure_the_distance_to_the_subdifferential(
        name, options, l1_ratio):
    # with P = prox_h(V), U = V - P is in dh(P): the gradient G = -U violates
    # nothing, and G = -U + E at most by ||E_j|| on each row; a separable
    # penalty's entries are its rows of one task each
    rng = np.random.default_rng(3)
    pen = make_penalty(name, 0.7, l1_ratio, **options)
    if not pen.row_separable:
        pytest.skip(f"{name} is not a sum over rows: no row violations")
    V = 2.0 * rng.standard_normal((D, T))
    V[0] = 0.1  # a row inside the threshold: zero after the prox
    P = pen.prox(V, 1.0)
    U = V - P
    np.testing.assert_allclose(pen.violations(P, -U), 0.0, atol=1e-12)
    E = 0.3 * rng.standard_normal((D, T))
    viol = pen.violations(P, -U + E)
    assert np.all(viol <= np.linalg.norm(E, axis=1) + 1e-12)
    assert np.any(viol > 0)
    if pen.task_separable:
        entries = pen.entry_violations(P, -U + E)
        for t in range(T):
            np.testing.assert_allclose(
                entries[:, t], pen.violations(P[:, [t]], -U[:, [t]] + E[:, [t]]),
                rtol=1e-14, atol=1e-15)
        np.testing.assert_allclose(entries.max(axis=1), viol, rtol=1e-14)


def _problem(loss, layout, rng):
    X = rng.standard_normal((60, D))
    W = rng.standard_normal((D, T)) * (rng.random(D) < 0.6)[:, None]
    Z = X @ W + 0.3 * rng.standard_normal((60, T))
    if make_loss(loss).classification:
        Y = (Z > 0).astype(float)
    elif loss == "poisson":  # counts, with the log link
        Y = rng.poisson(np.exp(Z)).astype(float)
    else:
        Y = Z
    if layout == "shared":
        return X, Y, None
    X_list = [X[t * 20:(t + 1) * 20] for t in range(T)]
    y_list = [Y[t * 20:(t + 1) * 20, t] for t in range(T)]
    Xs, ys = stack_tasks(X_list, y_list)
    return Xs, ys, -1


@pytest.mark.parametrize("loss", sorted(LOSSES))
@pytest.mark.parametrize("name", sorted(PENALTIES))
@pytest.mark.parametrize("layout", ["shared", "stacked"])
def test_every_supporting_solver_reaches_one_optimum(loss, name, layout):
    rng = np.random.default_rng(2)
    X, Y, task_col = _problem(loss, layout, rng)
    classification = make_loss(loss).classification
    params = dict(penalty=name, alpha=0.05, l1_ratio=0.8, task_col=task_col,
                  tol=1e-13, max_iter=50000)
    if not classification:
        params["loss"] = loss
    Estimator = MultiTaskClassifier if classification else MultiTaskRegressor
    fits = {}
    for solver in sorted(SOLVERS):
        model = Estimator(solver=solver, **params)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                model.fit(X, Y)
        except ValueError as error:  # a solver that declares no support
            assert f"solver={solver!r} does not apply" in str(error)
            continue
        fits[solver] = model
    assert "fista" in fits  # the solver of every problem
    reference = fits["fista"]
    scale = max(np.abs(reference.coef_).max(), 1.0)
    for solver, model in fits.items():  # converged: warnings are errors above
        assert model.dual_gap_ >= -1e-12, solver
        np.testing.assert_allclose(model.coef_, reference.coef_,
                                   atol=1e-5 * scale, err_msg=solver)
        np.testing.assert_allclose(model.intercept_, reference.intercept_,
                                   atol=1e-5 * scale, err_msg=solver)


def test_auto_picks_a_supporting_solver_for_every_registered_pair():
    from mtlinear._task_data import build_problem
    rng = np.random.default_rng(3)
    X = rng.standard_normal((30, D))
    for loss_name in LOSSES:
        loss = make_loss(loss_name)
        problem = build_problem(X, rng.standard_normal((30, T)),
                                fit_intercept=True, center_targets=loss.quadratic)
        for name in PENALTIES:
            pen = make_penalty(name, 0.1)
            chosen = choose_solver(problem, loss, pen)
            assert chosen.why_not(problem, loss, pen) is None


ROW_KERNELS = """
import warnings
import numpy as np
from numba.core.errors import NumbaIRAssumptionWarning
from mtlinear.penalties import PENALTIES, make_penalty
from mtlinear.penalties import _rows

warnings.simplefilter("error", NumbaIRAssumptionWarning)
rng = np.random.default_rng(0)
W, G = rng.standard_normal((2, 5, 3))
rows = np.arange(5)
for name in sorted(PENALTIES):
    pen = make_penalty(name, 0.1, 0.5)
    if not pen.row_separable:
        continue
    record = pen.record(5)
    for kernel, args in [(_rows._value_change, (W, G, rows)),
                         (_rows._violations, (W, G, rows)),
                         (_rows._slope, (W, G, rows, 1.0)),
                         (_rows._dual_norms, (W, rows)),
                         (_rows._value_rows, (W, rows)),
                         (_rows._feasible_dual_of, (W, rows)),
                         (_rows._value_of, (W,)), (_rows._prox_of, (W, 1.0))]:
        kernel(record, *args)
    if pen.task_separable:
        _rows._entry_violations(record, W, G, rows)
        make_penalty(name, 0.1, 1.0).feasible_dual(W)  # its per-task factors
print("compiled")
"""


def test_the_inlined_row_stubs_compile_without_numba_warnings(tmp_path):
    # the row stubs are inlined into their callers; Numba's inliner warns
    # (NumbaIRAssumptionWarning) where one function inlines a stub twice, so
    # the row kernels call each stub once: compiled here from an empty cache
    import os
    import subprocess
    import sys
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    done = subprocess.run([sys.executable, "-c", ROW_KERNELS], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "compiled" in done.stdout
