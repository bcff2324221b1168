"""ADMM on the sufficient statistics: the squared loss with any penalty that
has a prox, whatever the scales of the features.

The splitting (Boyd et al. 2011, section 6) of ``min_W F(W) + h(V)`` subject
to ``W = V``, with ``F(W) = sum_t w_t^T (omega_t Q_t) w_t / 2 - C_t^T w_t`` and
the scaled dual variable ``U``:

.. math::

    w_t &\\leftarrow (\\omega_t Q_t + \\rho I)^{-1}
          \\big(C_t + \\rho\\,(v_t - u_t)\\big), \\\\
    V &\\leftarrow \\operatorname{prox}_{h/\\rho}(W + U), \\\\
    U &\\leftarrow U + W - V.

The first step is exact whatever the conditioning of ``Q_t`` (one
eigendecomposition per distinct ``Q_t`` serves every ``rho``:
:class:`mtlinear._ridge.RidgeSpectrum`).  So a feature a thousand times
larger than the others, whose curvature sets the step of the proximal
gradient and stalls it (the trace norm: 5000 FISTA iterations at a gap
hundreds of times its target), costs ADMM nothing; that is what it is for
(``solver="auto"`` continues an unconverged FISTA with it).

``rho`` starts at the largest eigenvalue of the ``omega_t Q_t`` (the
proximal gradient's ``L``) and is then doubled or halved every ``gap_every``
iterations (``U`` rescaled with it) to keep the primal residual ``||W - V||``
and the dual one ``rho ||V - V_prev||`` within a factor 10 of each other
(residual balancing, Boyd et al. section 3.4.1).  On problems with one
feature 1000 times larger than the others this took 20 to 80 iterations to a
gap of ``1e-10 P(0)`` where starting at the geometric mean of the eigenvalues
took up to 1800 (``benchmarks/README.md``).
The start ``V_0`` comes with its optimal dual guess ``U_0 = -grad F(V_0) /
rho`` (at a solution ``grad F(W) + rho U = 0``).  Stopping: the duality gap
of the data-fit at ``V`` (where ``h`` is finite), every ``gap_every``
iterations.
"""
import numpy as np

__all__ = ["admm"]

# rho changes when one residual exceeds the other this many times
_BALANCE = 10.0


def admm(datafit, penalty, W, max_iter, tol_abs, spectrum, gap_every=10,
         callback=None):
    """Minimize ``datafit(W) + penalty(W)`` for a :class:`GramDatafit`.

    Parameters
    ----------
    datafit : GramDatafit
    penalty : Penalty
        Any penalty with a ``prox``.
    W : ndarray of shape (d, T)
        Starting point (not modified).
    max_iter : int
    tol_abs : float
        Absolute duality-gap target.
    spectrum : RidgeSpectrum
        Of the data-fit's Gram matrices, with unit factors.
    gap_every : int
        Iterations between two gap evaluations.
    callback : callable, optional
        ``callback(n_iter, primal, gap)`` at each gap evaluation.

    Returns
    -------
    W, gap, n_iter
    """
    Q, omega, C = datafit.kernel_statistics()
    rho = float(spectrum.evals.max()) * float(omega.max())
    if not rho > 0:  # F is constant (an all-zero design)
        rho = 1.0
    V = np.array(W, dtype=np.float64)
    U = -datafit.gradient(V)[0] / rho
    n_iter = 0
    primal, gap = datafit.duality_gap(V, None, penalty)
    while True:
        if callback is not None:
            callback(n_iter, primal, gap)
        if gap <= tol_abs or n_iter >= max_iter:
            break
        for _ in range(min(gap_every, max_iter - n_iter)):
            W = spectrum.solve(omega, C + rho * (V - U), rho)
            V_prev = V
            V = penalty.prox(W + U, 1.0 / rho)
            U += W - V
            n_iter += 1
        primal, gap = datafit.duality_gap(V, None, penalty)
        primal_residual = np.linalg.norm(W - V)
        dual_residual = rho * np.linalg.norm(V - V_prev)
        if primal_residual > _BALANCE * dual_residual:
            rho *= 2.0
            U *= 0.5
        elif dual_residual > _BALANCE * primal_residual:
            rho *= 0.5
            U *= 2.0
    return V, gap, n_iter
