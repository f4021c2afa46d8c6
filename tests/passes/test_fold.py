"""``fold``: constant folding, exact for every input."""

from __future__ import annotations

import math

import pytest

from indb import ir
from indb.sqlgen.passes import fold
from tests.passes.edges import EXPRESSIONS, C, X, Y, Z, assert_same_values

T, F = C(True), C(False)
X_POS = ir.Compare(">", X, C(0.0))


def _onehot(v: float, w: float) -> ir.Case:
    return ir.Case(((ir.Compare("==", Y, C(v)), C(w)),), C(0.0))


CASES = {
    # leading constants add first anyway; neutral operations go
    "leading_constants": (ir.Sum((C(1.0), C(2.0), X)), ir.Sum((C(3.0), X))),
    "times_one": (ir.BinOp("*", X, C(1.0)), X),
    "divided_by_one": (ir.BinOp("/", X, C(1.0)), X),
    "plus_zero": (ir.BinOp("+", X, C(0.0)), X),
    "minus_zero": (ir.BinOp("-", X, C(0.0)), X),
    "zero_term": (ir.Sum((X, C(0.0), Y)), ir.Sum((X, Y))),
    # not neutral for every input: 0 * inf is NaN, 0 + -0 is 0
    "times_zero_kept": (ir.BinOp("*", X, C(0.0)), ir.BinOp("*", X, C(0.0))),
    "leading_zero_kept": (ir.Sum((C(0.0), X)), ir.Sum((C(0.0), X))),
    "inner_constants_kept": (ir.Sum((X, C(1.0), C(2.0))), ir.Sum((X, C(1.0), C(2.0)))),
    # constant subtrees take the evaluator's value
    "function": (ir.Func("exp", (C(1.0),)), C(math.exp(1.0))),
    "nested": (ir.BinOp("/", ir.Func("sqrt", (C(2.0),)), C(3.0)), C(math.sqrt(2.0) / 3.0)),
    "compare": (ir.Compare("<", C(1.0), C(2.0)), T),
    "compare_null": (ir.Compare("!=", C(None), C(2.0)), F),
    "compare_of_two_kinds_kept": (ir.Compare("==", C("a"), C(1.0)), ir.Compare("==", C("a"), C(1.0))),
    "is_missing_null": (ir.IsMissing(C(None)), T),
    "is_missing_value": (ir.IsMissing(C(1.0)), F),
    "in_set": (ir.InSet(C("b"), ("a", "b")), T),
    "in_set_null": (ir.InSet(C(None, ir.TEXT), ("a",)), F),
    "not_constant": (ir.Not(T), F),
    "double_not": (ir.Not(ir.Not(X_POS)), X_POS),
    "and_true": (ir.And((X_POS, T)), X_POS),
    "and_false": (ir.And((X_POS, F)), F),
    "or_true": (ir.Or((X_POS, T)), T),
    "or_all_false": (ir.Or((F, F)), F),
    "and_kept": (ir.And((X_POS, T, ir.IsMissing(Y))), ir.And((X_POS, ir.IsMissing(Y)))),
    "case_false_branch": (ir.Case(((F, X), (X_POS, Y)), Z), ir.Case(((X_POS, Y),), Z)),
    "case_true_branch": (ir.Case(((X_POS, Y), (T, X)), Z), ir.Case(((X_POS, Y),), X)),
    "case_first_true": (ir.Case(((T, X), (X_POS, Y)), Z), X),
    "case_all_false": (ir.Case(((F, X),), Z), Z),
    "case_same_values": (ir.Case(((X_POS, Z),), Z), Z),
    "index_of_vector": (ir.Index(ir.Vector((X, Y)), 1), Y),
    # a CASE of constants times a constant: each branch's product
    "case_times_constant": (
        ir.BinOp("*", ir.Case(((X_POS, C(2.0)),), C(-3.0)), C(4.0)),
        ir.Case(((X_POS, C(8.0)),), C(-12.0)),
    ),
    # adjacent one-hot terms of one input: one CASE (at most one is non-zero)
    "one_hot_merged": (ir.Sum((_onehot(1.0, 2.0), _onehot(3.0, -5.0), X)), ir.Sum((ir.Case(((ir.Compare("==", Y, C(1.0)), C(2.0)), (ir.Compare("==", Y, C(3.0)), C(-5.0))), C(0.0)), X))),
    "one_hot_same_value_kept": (ir.Sum((_onehot(1.0, 2.0), _onehot(1.0, 3.0))), ir.Sum((_onehot(1.0, 2.0), _onehot(1.0, 3.0)))),
    "one_hot_other_input_kept": (
        ir.Sum((_onehot(1.0, 2.0), ir.Case(((ir.Compare("==", X, C(3.0)), C(1.0)),), C(0.0)))),
        ir.Sum((_onehot(1.0, 2.0), ir.Case(((ir.Compare("==", X, C(3.0)), C(1.0)),), C(0.0)))),
    ),
    "leaves_unchanged": (X, X),
}


@pytest.mark.parametrize("before, after", CASES.values(), ids=CASES.keys())
def test_fold(before: ir.Expr, after: ir.Expr) -> None:
    assert fold(before) == after


def test_fold_is_bottom_up() -> None:
    """A folded child lets its parent fold in the same pass."""
    e = ir.Sum((ir.BinOp("*", ir.Func("abs", (C(-2.0),)), C(3.0)), ir.Index(ir.Vector((C(1.0), X)), 0), X))
    assert fold(e) == ir.Sum((C(7.0), X))


@pytest.mark.parametrize("name", EXPRESSIONS)
def test_fold_keeps_values(name: str) -> None:
    e = EXPRESSIONS[name]
    assert_same_values(e, fold(e))
