"""``drop_impossible_missing``: ``IsMissing`` of a float that can be neither NULL nor NaN is false."""

from __future__ import annotations

import pytest

from indb import ir
from indb.sqlgen.passes import drop_impossible_missing
from tests.passes.edges import EXPRESSIONS, TREES, C, X, assert_same_values

F = C(False)
TREE_SUM = ir.Index(TREES, 0)

CASES = {
    "tree_sum": (ir.IsMissing(TREE_SUM), F),
    "function_of_tree_sum": (ir.IsMissing(ir.Func("expit", (TREE_SUM,))), F),
    "constant": (ir.IsMissing(C(1.0)), F),
    "feature_kept": (ir.IsMissing(X), ir.IsMissing(X)),
    "product_kept": (ir.IsMissing(ir.BinOp("*", TREE_SUM, X)), ir.IsMissing(ir.BinOp("*", TREE_SUM, X))),
    # 0 * inf is NaN: a product of two never-missing values can still be NaN
    "tree_times_inf_kept": (
        ir.IsMissing(ir.BinOp("*", TREE_SUM, C(float("inf")))),
        ir.IsMissing(ir.BinOp("*", TREE_SUM, C(float("inf")))),
    ),
    "text_kept": (ir.IsMissing(ir.Feature("t", ir.TEXT)), ir.IsMissing(ir.Feature("t", ir.TEXT))),
    "inside_case": (
        ir.Case(((ir.IsMissing(TREE_SUM), C(0.0)), (ir.IsMissing(X), C(1.0))), TREE_SUM),
        ir.Case(((F, C(0.0)), (ir.IsMissing(X), C(1.0))), TREE_SUM),
    ),
}


@pytest.mark.parametrize("before, after", CASES.values(), ids=CASES.keys())
def test_drop_impossible_missing(before: ir.Expr, after: ir.Expr) -> None:
    assert drop_impossible_missing(before) == after


@pytest.mark.parametrize("name", EXPRESSIONS)
def test_drop_impossible_missing_keeps_values(name: str) -> None:
    e = EXPRESSIONS[name]
    assert_same_values(e, drop_impossible_missing(e))
