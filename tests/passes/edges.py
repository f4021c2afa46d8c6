"""Edge rows and edge expressions the pass tests share: a pass must not change the values.

Each property test rewrites every expression of ``EXPRESSIONS`` (every node type, every
guarded operation, sharing, tree sums) with one pass and evaluates both with the numpy
evaluator (``indb.ir.evaluate``) on ``edge_columns()``: every combination of NaN, +-inf,
0, -0, +-1, +-1e300, +-1e-300 and values around the limits of ``exp``, square and sum.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from indb import ir
from indb.ir.evaluate import evaluate

X, Y, Z = ir.Feature("x"), ir.Feature("y"), ir.Feature("z")
C = ir.Const

EDGE_VALUES = (
    math.nan, math.inf, -math.inf, 0.0, -0.0, 1.0, -1.0, 0.5, 3.0,
    1e300, -1e300, 1e-300, -1e-300, 1e160, -1e-170, 709.5, 710.0, -745.5, -746.0,
)  # fmt: skip


def edge_columns(names: tuple[str, ...] = ("x", "y", "z")) -> dict[str, np.ndarray]:
    """Every combination of ``EDGE_VALUES`` over the features ``names`` (19**3 rows for three)."""
    rows = np.array(list(itertools.product(EDGE_VALUES, repeat=len(names))), dtype=np.float64)
    return {name: rows[:, i] for i, name in enumerate(names)}


def _tree(values: tuple[float, float, float]) -> ir.Tree:
    """A stump on input 0 at 0.5: NaN goes left."""
    return ir.Tree((0, -1, -1), (0.5, 0.0, 0.0), (1, -1, -1), (2, -1, -1), (True, False, False), ((0.0,), (values[0],), (values[1],)))


TREES = ir.TreeEnsemble((X,), tuple(_tree((float(i), -2.0 * i, 0.0)) for i in range(1, 6)), 1, (0.25,))
SQUARE = ir.BinOp("*", X, X)
EXPIT = ir.Func("expit", (X,))
ONE_HOT = ir.Sum(
    (
        ir.Case(((ir.Compare("==", Y, C(1.0)), C(2.0)),), C(0.0)),
        ir.Case(((ir.Compare("==", Y, C(3.0)), C(-5.0)),), C(0.0)),
        ir.BinOp("*", X, C(1.0)),
        C(0.0),
    )
)

#: one of each node type and each operation a pass rewrites, named for the test ids
EXPRESSIONS: dict[str, ir.Expr] = {
    "constants": ir.Sum((C(1.0), C(2.0), ir.BinOp("*", X, C(1.0)), C(0.0), ir.BinOp("/", Y, C(1.0)))),
    "one_hot": ONE_HOT,
    "case_times_const": ir.BinOp("*", ir.Case(((ir.Compare(">", X, C(0.0)), C(2.0)),), C(-3.0)), C(1e300)),
    "logic": ir.Case(
        (
            (ir.And((ir.Not(ir.Not(ir.Compare("<", X, Y))), C(True))), X),
            (ir.Or((ir.IsMissing(Z), C(False), ir.InSet(C(2.0), (1.0, 2.0)))), Y),
        ),
        Z,
    ),
    "index_vector": ir.Index(ir.Vector((X, ir.BinOp("-", Y, C(0.0)))), 1),
    "exp": ir.Func("exp", (X,)),
    "log_sqrt": ir.Sum((ir.Func("log", (X,)), ir.Func("sqrt", (Y,)))),
    "scaled": ir.Sum((ir.BinOp("*", X, C(1e10)), ir.BinOp("/", Y, C(1e-10)), ir.BinOp("*", Z, C(1e-30)))),
    "product": ir.BinOp("*", X, Y),
    "quotient": ir.BinOp("/", X, Y),
    "square": SQUARE,
    "sum_of_squares": ir.Sum((SQUARE, ir.BinOp("*", Y, Y), ir.BinOp("*", Z, Z))),
    "sum_any_sign": ir.Sum((X, Y, ir.BinOp("*", Z, C(-1.0)))),
    "softmax": ir.Vector(tuple(ir.softmax([X, ir.BinOp("*", Y, C(2.0)), Z]))),
    "shared_expit": ir.BinOp("/", EXPIT, ir.Sum((EXPIT, ir.Func("expit", (Y,))))),
    "tree_sum": ir.Sum((ir.Index(TREES, 0), ir.Index(TREES, 0))),
    "missing_tree_sum": ir.Case(((ir.IsMissing(ir.Index(TREES, 0)), C(-1.0)), (ir.IsMissing(X), C(-2.0))), ir.Index(TREES, 0)),
    "argmax": ir.ArgMax((X, Y, Z), (0.0, 1.0, 2.0)),
    "min_max_abs_sign": ir.Sum((ir.Func("min", (X, Y)), ir.Func("max", (Y, Z)), ir.Func("abs", (X,)), ir.Func("sign", (Z,)))),
    "tanh_floor_ceil": ir.Sum((ir.Func("tanh", (X,)), ir.Func("floor", (Y,)), ir.Func("ceil", (Z,)), ir.Func("neg", (X,)))),
}


def values(e: ir.Expr, columns: dict[str, np.ndarray]) -> np.ndarray:
    """The numpy evaluator's values of ``e`` on ``columns`` (IEEE: no warnings)."""
    with np.errstate(all="ignore"):
        return np.asarray(evaluate(e, columns, n=len(next(iter(columns.values())))), dtype=np.float64)


def assert_same_values(before: ir.Expr, after: ir.Expr, atol: float = 0.0) -> None:
    """``after`` gives ``before``'s values on every edge row: equal (NaN where NaN, the
    same signed infinity), or within ``atol`` (for a guard that clamps an underflow to
    the smallest subnormal instead of 0)."""
    cols = edge_columns()
    want, got = values(before, cols), values(after, cols)
    assert want.shape == got.shape
    same = (want == got) | (np.isnan(want) & np.isnan(got))
    if atol:
        with np.errstate(invalid="ignore"):  # inf - inf
            same |= np.abs(want - got) <= atol
    if not same.all():
        bad = np.flatnonzero(~same.reshape(len(want), -1).all(axis=1))[:5]
        rows = [{k: float(v[i]) for k, v in cols.items()} for i in bad]
        raise AssertionError(f"values changed on {int((~same).sum())} entries, e.g. rows {rows}: {want[bad]} -> {got[bad]}")
