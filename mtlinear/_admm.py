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
rho`` (at a solution ``grad F(W) + rho U = 0``).  Without a coupling, with
a compiled penalty, the iterations between two residual checks run compiled
(:func:`_admm_steps`): proximal Newton's steps (:mod:`mtlinear._newton_admm`)
take hundreds of them on tiny matrices, where numpy's calls cost three times
the arithmetic.  Stopping: the duality gap
of the data-fit at ``V`` (where ``h`` is finite), every ``gap_every``
iterations.

A task coupling ``g(W) = tr(W K W^T) / 2`` (:mod:`mtlinear._coupling`: task
graphs, learned relations) is split off as a third term: ``min F(W) + g(G) +
h(V)`` subject to ``W = G`` and ``W = V`` (consensus form, Boyd et al. section
7.1), so that no step solves a system tied across tasks:

.. math::

    w_t &\\leftarrow (\\omega_t Q_t + 2 \\rho I)^{-1}
          \\big(C_t + \\rho\\,(v_t - u_t + g_t - u^G_t)\\big), \\\\
    G &\\leftarrow (W + U^G) (I + K / \\rho)^{-1}, \\quad
    V \\leftarrow \\operatorname{prox}_{h/\\rho}(W + U),

then both scaled duals move by ``W - G`` and ``W - V``.  The first step is
the exact solve above, the second goes through one eigendecomposition of
``K`` for every ``rho`` (a sparse ``K``, a task graph given by its edges:
a sparse LU factorization of ``I + K / rho`` per value of ``rho``; a learned
relation's identity plus low rank: a closed form; see
:meth:`mtlinear._coupling.TaskCoupling.prox`): each step is exact, which
FISTA (the other solver taking a coupling) is not on badly scaled
features.
"""
import numpy as np
from numba import njit

from .penalties._compiled import prox

__all__ = ["admm", "AdmmSplit"]

# rho changes when one residual exceeds the other this many times (with a
# task coupling 3: on raw School with task graphs, 10 took about twice the
# iterations, 1.5 to 3 the same; a rho per constraint did not do better)
_BALANCE = 10.0
_BALANCE_COUPLED = 3.0


class AdmmSplit:
    """ADMM's iterates ``(V, U, rho)`` on ``sum_t w_t^T (omega_t Q_t) w_t / 2
    - C_t^T w_t + h(W)`` (module docstring).

    Parameters
    ----------
    spectrum : RidgeSpectrum
        Of the ``Q_t``, with unit factors.
    omega, C : ndarray of shape (T,) and (d, T)
    V : ndarray of shape (d, T)
        The start (copied).
    gradient : ndarray of shape (d, T)
        Of the smooth part at ``V``: the dual variable starts at ``-gradient
        / rho``.
    rho : float, optional
        The start of ``rho`` (by default the largest eigenvalue of the
        ``omega_t Q_t``; a path passes on its last balanced value).
    coupling : TaskCoupling, optional
        A task coupling ``g(W) = tr(W K W^T) / 2`` in the smooth part, split
        off as a third term (module docstring); ``gradient`` then includes
        its ``V K``.
    """

    def __init__(self, spectrum, omega, C, V, gradient, rho=None,
                 coupling=None):
        self.spectrum, self.coupling = spectrum, coupling
        # contiguous float64 for the compiled iterations
        self.omega = np.ascontiguousarray(omega, dtype=np.float64)
        self.C = np.ascontiguousarray(C, dtype=np.float64)
        if rho is None:
            rho = float(spectrum.evals.max()) * float(self.omega.max())
        self.rho = rho if rho > 0 else 1.0  # F constant: an all-zero design
        self.V = np.array(V, dtype=np.float64, order="C")
        self.U = np.ascontiguousarray(-gradient / self.rho)
        if coupling is not None:  # its copy G of W and scaled dual UG
            self.G = self.V.copy()
            self.UG = coupling.gradient(self.V) / self.rho
        self.primal_residual = self.dual_residual = np.inf

    def run(self, penalty, n_steps):
        """``n_steps`` iterations, then the residuals and the balance of
        ``rho``."""
        rho = self.rho
        coupled = self.coupling is not None
        record = (None if coupled or self.spectrum.K != 1
                  else penalty.record(self.V.shape[0]))
        if record is not None:
            # compiled: on a few features an iteration's numpy calls on
            # tiny matrices cost several times its arithmetic
            spectrum = self.spectrum
            self.V = np.ascontiguousarray(self.V)  # after a Python prox
            done, W, V_prev = _admm_steps(
                spectrum.evecs, spectrum.evals, spectrum.scale, self.omega,
                self.C, self.V, self.U, rho, n_steps, record)
            n_steps -= done  # the rest here: a step the compiled prox declined
        for _ in range(n_steps):
            V_prev = self.V
            if coupled:
                G_prev = self.G
                W = self.spectrum.solve(self.omega, self.C + rho * (
                    self.V - self.U + self.G - self.UG), 2.0 * rho)
                self.G = self.coupling.prox(W + self.UG, 1.0 / rho)
                self.UG += W - self.G
            else:
                W = self.spectrum.solve(self.omega,
                                        self.C + rho * (self.V - self.U), rho)
            self.V = penalty.prox(W + self.U, 1.0 / rho)
            self.U += W - self.V
        primal = np.linalg.norm(W - self.V)
        dual = np.linalg.norm(self.V - V_prev)
        self._size = max(float(np.linalg.norm(W)),
                         float(np.linalg.norm(self.V)))
        if coupled:
            primal = np.hypot(primal, np.linalg.norm(W - self.G))
            dual = np.hypot(dual, np.linalg.norm(self.G - G_prev))
        self.primal_residual, self.dual_residual = float(primal), rho * float(dual)
        balance = _BALANCE_COUPLED if coupled else _BALANCE
        if self.primal_residual > balance * self.dual_residual:
            self._rescale(2.0)
        elif self.dual_residual > balance * self.primal_residual:
            self._rescale(0.5)

    def _rescale(self, factor):
        """``rho`` times ``factor``; the scaled duals (``rho U`` fixed)."""
        self.rho *= factor
        self.U = self.U / factor
        if self.coupling is not None:
            self.UG = self.UG / factor

    def settled(self, rel_tol):
        """Boyd et al.'s relative stopping rule: both residuals at most
        ``rel_tol`` times the size of what they are residuals of (``W`` and
        ``V``, the dual variable ``rho U``)."""
        tiny = np.finfo(float).tiny
        return (self.primal_residual <= rel_tol * max(self._size, tiny)
                and self.dual_residual
                <= rel_tol * max(self.rho * float(np.linalg.norm(self.U)),
                                 tiny))


@njit(cache=True)
def _admm_steps(evecs, evals, scale, omega, C, V, U, rho, n_steps, p):
    """Up to ``n_steps`` of :meth:`AdmmSplit.run`'s uncoupled iteration,
    ``V`` and ``U`` updated in place, with the penalty's compiled ``prox``;
    ``evecs``, ``evals``, ``scale``: a :class:`RidgeSpectrum` of one ``Q``
    or one per task.  Returns ``(steps done, last W, V before the last
    step)``; fewer steps than asked when the prox declines (its Python
    route takes over)."""
    d, T = C.shape
    shared = evecs.shape[0] == 1
    W = np.empty((d, T))
    V_prev = V.copy()
    b = np.empty(d)
    proj = np.empty(d)
    for step in range(n_steps):
        for t in range(T):  # W = (omega_t Q_t + rho I)^{-1} (C + rho (V - U))
            g = 0 if shared else t
            for j in range(d):
                b[j] = scale[j] * (C[j, t] + rho * (V[j, t] - U[j, t]))
            for i in range(d):
                acc = 0.0
                for j in range(d):
                    acc += evecs[g, j, i] * b[j]
                proj[i] = acc / (evals[g, i] * omega[t] + rho)
            for j in range(d):
                acc = 0.0
                for i in range(d):
                    acc += evecs[g, j, i] * proj[i]
                W[j, t] = scale[j] * acc
        new, ok = prox(p, W + U, 1.0 / rho)
        if not ok:
            return step, W, V_prev
        for j in range(d):
            for t in range(T):
                V_prev[j, t] = V[j, t]
                V[j, t] = new[j, t]
                U[j, t] += W[j, t] - new[j, t]
    return n_steps, W, V_prev


def admm(datafit, penalty, W, max_iter, tol_abs, spectrum, gap_every=10,
         callback=None, rho=None):
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
    rho : float, optional
        See :class:`AdmmSplit`.

    Returns
    -------
    W, gap, n_iter, rho
        ``rho``: its last balanced value, a good start for the next solve of
        a path.
    """
    _, omega, C = datafit.kernel_statistics()
    split = AdmmSplit(spectrum, omega, C, W, datafit.gradient(W)[0], rho,
                      getattr(datafit, "coupling", None))
    n_iter = 0
    primal, gap = datafit.duality_gap(split.V, None, penalty)
    while True:
        if callback is not None:
            callback(n_iter, primal, gap)
        if gap <= tol_abs or n_iter >= max_iter:
            break
        steps = min(gap_every, max_iter - n_iter)
        split.run(penalty, steps)
        n_iter += steps
        primal, gap = datafit.duality_gap(split.V, None, penalty)
    return split.V, gap, n_iter, split.rho
