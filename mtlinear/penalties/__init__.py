"""Penalties on the weight matrix ``W`` (d features x T tasks).

One module per penalty: :mod:`.l1` (``l1``, ``l2``), :mod:`.l21`,
:mod:`.sparse_group`, :mod:`.trace`.  The protocol and the registry are in
:mod:`._base`, the compiled stubs in :mod:`._compiled`, the row-separable
machinery (penalty factors, sign constraints) in :mod:`._rows`.  A new
penalty is one module: a :class:`Penalty` subclass registered with
:func:`register_penalty` (and, for the compiled solvers, a record with its
stubs).
"""
from ._base import PENALTIES, Penalty, make_penalty, penalty_class, register_penalty
from ._rows import RowSeparable
from .l1 import L1, L2
from .l21 import L21
from .sparse_group import SparseGroup
from .trace import Trace

__all__ = ["Penalty", "RowSeparable", "L1", "L2", "L21", "SparseGroup", "Trace",
           "PENALTIES", "make_penalty", "penalty_class", "register_penalty"]
