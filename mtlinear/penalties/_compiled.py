"""The compiled side of the penalty protocol: generic stubs that solvers call,
implemented by each penalty for its own parameter record.

A penalty with compiled kernels describes itself to Numba by a small record
(a ``namedtuple`` class of its own: strengths, per-feature factors, flags).
Solvers call the stubs below with that record as first argument; each
penalty module registers its implementations with :func:`implements`
(``numba.extending.overload`` keyed on the record's class), so a solver is
compiled once per penalty type and never tests a name or a code.  Records
and overloads, unlike jitclasses or functions passed as arguments, keep
Numba's on-disk cache working across processes.

Row-level stubs (penalties that are sums over feature rows, ``h(W) =
sum_j h_j(W_j)``); ``j`` is the feature index of the row:

* ``row_prox(p, j, a, H, out)``: ``out = argmin_w sum_t (H_t w_t^2 / 2 -
  a_t w_t) + h_j(w)`` (a prox step in the diagonal metric ``H``);
* ``row_value(p, j, w)``: ``h_j(w)``;
* ``row_dual_norm(p, j, u)``: the smallest ``lam`` (norm weight) for which a
  zero row is optimal when ``-u`` is the data-fit gradient: the row is zero
  at the optimum iff this is ``<= p.lam``;
* ``row_conjugate(p, j, u)``: ``h_j^*(u)`` (finite when ``mu > 0``);
* ``row_violation(p, j, w, g)``: distance of ``-g`` to ``dh_j(w)``;
* ``row_slope(p, j, w, delta, side)``: one-sided derivative of ``s ->
  h_j(w + s delta)`` at 0 (``side = +1``: right, ``-1``: left);
* ``row_screen(p, j, u, radius, curv)``: whether the row is provably zero at
  the optimum when the optimal ``u*`` satisfies ``|u*_t - u_t| <= radius
  sqrt(curv_t)`` (gap-safe test).

Matrix-level stubs (every compiled penalty; the row-separable ones get
generic implementations over their rows from :mod:`._rows`):

* ``prox(p, W, step)``: ``(prox_{step h}(W), ok)``; ``ok`` False asks the
  caller to take its Python route (the trace norm's Gram shortcut);
* ``value(p, W)``;
* ``feasible_dual(p, U, rows)``: ``(c, h^*(c U))``, one factor ``c_t`` per
  task making ``c U`` dual feasible (``U`` holds the feature ``rows``).
"""
import inspect

from numba import types
from numba.extending import overload

__all__ = ["implements", "record_class", "row_prox", "row_value",
           "row_dual_norm", "row_conjugate", "row_violation", "row_slope",
           "row_screen", "prox", "value", "feasible_dual"]


def record_class(numba_type):
    """The Python class of a record's Numba type, else ``None``."""
    if isinstance(numba_type, (types.NamedTuple, types.NamedUniTuple)):
        return numba_type.instance_class
    return None


def implements(stub, record):
    """Decorator: the decorated function returns the implementation of
    ``stub`` for records of class ``record`` (the arguments are Numba types,
    as for ``numba.extending.overload``).

    The row stubs are inlined into their callers (in Numba's IR): a row
    formula costs a few nanoseconds, a call with its array arguments about
    thirty, which made the kernels looping over rows (a gap's conjugate, the
    violations, the line searches' slopes) five to seven times slower than
    their arithmetic.  The matrix-level stubs, called once per kernel, stay
    calls: inlining costs compilation time at every call site."""
    def register(make_impl):
        def typer(p, *args):
            if record_class(p) is record:
                return make_impl(p, *args)
            return None
        # Numba matches the typer's signature with the implementation's
        typer.__signature__ = inspect.signature(stub)
        inline = "always" if stub.__name__.startswith("row_") else "never"
        overload(stub, inline=inline, jit_options={"cache": True})(typer)
        return make_impl
    return register


def _compiled_only(*args):
    raise NotImplementedError("a compiled stub: call it from Numba code with a "
                              "penalty record")


# the stubs: their signatures are the protocol (see the module docstring)
def row_prox(p, j, a, H, out):
    _compiled_only()


def row_value(p, j, w):
    _compiled_only()


def row_dual_norm(p, j, u):
    _compiled_only()


def row_conjugate(p, j, u):
    _compiled_only()


def row_violation(p, j, w, g):
    _compiled_only()


def row_slope(p, j, w, delta, side):
    _compiled_only()


def row_screen(p, j, u, radius, curv):
    _compiled_only()


def prox(p, W, step):
    _compiled_only()


def value(p, W):
    _compiled_only()


def feasible_dual(p, U, rows):
    _compiled_only()
