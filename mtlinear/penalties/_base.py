"""The penalty protocol, its generic parts and the registry.

Every penalty is ``alpha * R(W)`` with

.. math::

    R(W) = r\\,N(W) + \\frac{1 - r}{2}\\,\\|W\\|_F^2, \\qquad r = \\text{l1\\_ratio},

where ``N`` is a norm (the sparsity- or rank-inducing part).  Writing
``lam = alpha * r`` and ``mu = alpha * (1 - r)``, ``h(W) = lam N(W) + mu/2 ||W||^2``.

What a solver needs from a penalty
----------------------------------
* ``value(W)``: ``h(W)``.
* ``prox(W, step)``: ``argmin_U ||U - W||^2 / (2 step) + h(U)``.  Completing the
  square and using that ``N`` is positively homogeneous,

  .. math:: \\mathrm{prox}_{s h}(W) = \\mathrm{prox}_{s\\lambda N}(W) / (1 + s\\mu).

* ``feasible_dual(U)``: a factor ``c`` making ``c U`` dual feasible and the
  Fenchel conjugate ``h*(c U)`` there (the duality gap).  ``h`` is the
  infimal-convolution dual of ``lam N`` and ``mu/2 ||.||^2``, so

  .. math::

      h^*(U) = \\min_{N^\\circ(V) \\le \\lambda} \\frac{\\|U - V\\|_F^2}{2\\mu}
             = \\frac{\\|\\mathrm{prox}_{\\lambda N}(U)\\|_F^2}{2\\mu}
      \\quad (\\mu > 0),

  by Moreau's decomposition, and for ``mu = 0`` it is the indicator of the
  dual-norm ball ``N°(U) <= lam``, which scaling by ``c`` reaches.
* ``dual_norm(U)``: ``N°(U)``, which gives ``alpha_max``.

A penalty written in Python defines only ``norm``, ``prox_norm`` (the prox of
``threshold * N``) and ``dual_norm``; the rest is generic here and the
accelerated proximal gradient solves it.  The package's penalties also
describe themselves to compiled solvers by a parameter record (see
:mod:`mtlinear.penalties._compiled`).

Capabilities (class attributes) tell the solver registry what applies:
``row_separable`` (``N`` is a sum over feature rows), ``task_separable``
(and over tasks: the dual may scale each task on its own),
``orthogonally_invariant`` (``R(V Z) = R(Z)`` for ``V`` with orthonormal
columns: the row-space reduction), ``sparse`` (the norm zeroes rows:
coordinate descent with working sets pays off) and ``compiled`` (a record
exists, so the compiled solvers apply).
"""
import copy

import numpy as np

__all__ = ["Penalty", "PENALTIES", "register_penalty", "make_penalty",
           "penalty_class"]


class Penalty:
    """Base class: ``alpha * (r N(W) + (1 - r)/2 ||W||_F^2)``.

    Subclasses define the norm ``N`` through :meth:`norm`, :meth:`prox_norm`
    (the prox of ``threshold * N``) and :meth:`dual_norm`.

    Parameters
    ----------
    alpha : float
        Regularization strength, ``>= 0``.
    l1_ratio : float
        Mix ``r`` in ``[0, 1]`` between the norm (``r = 1``) and the ridge term.
    """

    name = None
    row_separable = False
    task_separable = False
    orthogonally_invariant = False
    sparse = True
    compiled = False
    # estimator parameters the penalty takes besides alpha and l1_ratio, with
    # the value meaning "not used" (an estimator rejects any other value for
    # a penalty that does not take it)
    options = {}

    def __init__(self, alpha=1.0, l1_ratio=1.0):
        self.alpha = float(alpha)
        self.l1_ratio = float(l1_ratio)

    def with_strength(self, alpha, l1_ratio):
        """A copy with ``alpha`` and ``l1_ratio`` set (the estimator's)."""
        out = copy.copy(self)
        out.alpha, out.l1_ratio = float(alpha), float(l1_ratio)
        return out

    @property
    def lam(self):
        """Weight of the norm: ``alpha * l1_ratio``."""
        return self.alpha * self.l1_ratio

    @property
    def mu(self):
        """Weight of the ridge term: ``alpha * (1 - l1_ratio)``."""
        return self.alpha * (1.0 - self.l1_ratio)

    def check_features(self, n_features):
        """Raise ``ValueError`` when the penalty does not fit ``n_features``
        (per-feature options of another length)."""

    def _check_options(self):
        """Validate the options (``ValueError`` naming the parameter)."""

    def unpenalized(self):
        """Indices of the features the penalty leaves free (none here)."""
        return np.empty(0, dtype=np.int64)

    def restricted(self, features):
        """The penalty on the given features only (``None``: all)."""
        return self

    # -- the norm N, defined by subclasses
    def norm(self, W):
        raise NotImplementedError

    def prox_norm(self, W, threshold):
        raise NotImplementedError

    def dual_norm(self, U):
        raise NotImplementedError

    # -- generic parts
    def value(self, W):
        """``h(W) = lam N(W) + mu/2 ||W||_F^2``."""
        out = 0.5 * self.mu * float(np.vdot(W, W))
        if self.lam > 0:
            out += self.lam * self.norm(W)
        return out

    def prox(self, W, step):
        """Proximal operator of ``step * h`` at ``W`` (returns a new array)."""
        scale = 1.0 / (1.0 + step * self.mu)
        return self.prox_norm(W, step * self.lam) * scale

    def conjugate(self, U):
        """Fenchel conjugate ``h*(U)`` (``inf`` outside the domain)."""
        if self.mu > 0:
            P = self.prox_norm(U, self.lam) if self.lam > 0 else U
            return float(np.vdot(P, P)) / (2.0 * self.mu)
        if self.lam == 0:  # alpha = 0: h = 0, h* = indicator of {0}
            return 0.0 if not np.any(U) else np.inf
        # indicator of the ball, with slack for rounding in the dual point
        return 0.0 if self.dual_norm(U) <= self.lam * (1 + 1e-12) else np.inf

    def feasible_dual(self, U, rows=None):
        """``(c, h*(c U))``: ``c`` in ``[0, 1]`` (a float, or one per task)
        makes ``c U`` dual feasible; ``U`` holds the feature ``rows`` (all
        of them when ``None``) of ``X^T Theta``.  Without a ridge part ``h*``
        is the indicator of the ball ``c U`` lies in by construction: 0."""
        if self.mu > 0:
            return 1.0, self.conjugate(U)
        if self.lam <= 0:
            return 0.0, 0.0
        norm = self.dual_norm(U)
        return (1.0 if norm <= self.lam else self.lam / norm), 0.0

    def alpha_max(self, gradient):
        """Smallest ``alpha`` for which ``W = 0`` is optimal, given the
        data-fit gradient at ``W = 0`` (best intercepts): ``N°(G) / r``."""
        if self.l1_ratio == 0:
            raise ValueError(
                f"alpha_max is infinite for penalty={self.name!r} with "
                f"l1_ratio={self.l1_ratio}: a pure ridge penalty never sets "
                "all coefficients to zero. Give the alphas explicitly.")
        return self.dual_norm(gradient) / self.l1_ratio

    def record(self, n_features):
        """The compiled solvers' parameter record, ``None`` when the penalty
        is defined in Python only."""
        return None

    def ridge_factors(self, n_features):
        """``f`` (n_features,) when the penalty is the ridge term alone,
        ``h(W) = mu/2 sum_j f_j ||W_j||^2`` with ``mu > 0`` (a direct solve
        applies), else ``None``."""
        if self.lam == 0 and self.mu > 0:
            return np.ones(n_features)
        return None


PENALTIES = {}


def register_penalty(cls):
    """Register a :class:`Penalty` subclass under its ``name``: estimators,
    paths and cross-validation then accept that name as ``penalty``."""
    if not (isinstance(cls, type) and issubclass(cls, Penalty) and cls.name):
        raise TypeError("register_penalty takes a Penalty subclass with a name.")
    PENALTIES[cls.name] = cls
    return cls


def penalty_class(penalty):
    """The class of a penalty given by name or as an instance."""
    if isinstance(penalty, Penalty):
        return type(penalty)
    try:
        return PENALTIES[penalty]
    except (KeyError, TypeError):
        raise ValueError(
            f"Unknown penalty {penalty!r}; give one of {sorted(PENALTIES)} or a "
            "mtlinear.penalties.Penalty instance.") from None


def make_penalty(penalty, alpha, l1_ratio=1.0, **options):
    """The penalty ``penalty`` (a registered name or an instance) at strength
    ``alpha``, ``l1_ratio``, with its ``options`` (estimator parameters such
    as ``positive``).

    An option the penalty does not take must keep its "not used" value
    (``Penalty.options``): ``positive=True`` with the trace norm is an error,
    not a silently different model.
    """
    cls = penalty_class(penalty)
    instance = isinstance(penalty, Penalty)
    taken = {}
    for key, val in options.items():
        if key in cls.options:
            # an instance keeps its own options unless the estimator sets one
            if not (instance and _is_default(val, cls.options[key])):
                taken[key] = val
        elif key not in _MIXES and not _is_unused(val):
            users = sorted(name for name, c in PENALTIES.items()
                           if key in c.options)
            raise ValueError(
                f"{key}={_short(val)} does not apply to penalty={cls.name!r}; it "
                f"applies to {users}. Leave {key} at its default or choose one "
                "of those penalties.")
    if instance:
        if taken:
            penalty = copy.copy(penalty)
            for key, val in taken.items():
                setattr(penalty, key, val)
            penalty._check_options()
        return penalty.with_strength(alpha, l1_ratio)
    return cls(alpha, l1_ratio, **taken)


# mixes inside a norm are ignored by penalties without that norm, as l1_ratio
# is by l2: a grid over penalty keeps working
_MIXES = ("l1_share",)


def _is_default(value, default):
    if value is None or default is None:
        return value is default
    return np.array_equal(value, default)


def _is_unused(value):
    return value is None or value is False


def _short(value):
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
