"""The IR and its reference semantics.

``indb.ir`` is the node types (``indb.ir.nodes``, re-exported here, so ``from indb import
ir; ir.Feature("x0")``); ``indb.ir.evaluate`` is the numpy evaluator, the semantics every
backend must match; ``indb.ir.kernels`` holds its optional numba kernels. This package runs
inside PostgreSQL too (the PL/Python engine), so it imports only the standard library and
numpy.
"""

from indb.ir.nodes import *  # noqa: F403 - the node types are the package's API
