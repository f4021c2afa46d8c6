"""``intern`` (hash-consing) and ``shared_to_bind`` (which shared values a backend names)."""

from __future__ import annotations

import pytest

from indb import ir
from indb.sqlgen.passes import intern, parent_counts, shared_to_bind
from tests.passes.edges import EXPRESSIONS, TREES, C, X, Y, assert_same_values


def _distinct(e: ir.Expr) -> int:
    return sum(1 for _ in ir.walk(e))


def _x2() -> ir.Expr:  # a fresh object each call
    return ir.BinOp("*", ir.Feature("x"), ir.Const(2.0))


#: (input, how many distinct node objects the interned tree has)
CASES = {
    "equal_subtrees": (ir.Sum((_x2(), _x2())), 4),  # Sum, BinOp, x, 2
    "equal_leaves": (ir.Sum((ir.Feature("x"), ir.Feature("x"), ir.Const(1.0), ir.Const(1.0))), 3),
    "different_ops": (ir.Sum((ir.BinOp("*", X, C(2.0)), ir.BinOp("/", X, C(2.0)))), 5),
    "different_kinds": (ir.Vector((ir.Feature("x"), ir.Feature("x", ir.TEXT))), 3),
    "in_set_values": (ir.Or((ir.InSet(X, (1.0,)), ir.InSet(X, (1.0,)), ir.InSet(X, (2.0,)))), 4),
    "case_branches": (ir.Vector((ir.Case(((ir.Compare(">", X, C(0.0)), C(1.0)),), C(0.0)),) * 2 + (ir.Case(((ir.Compare(">", X, C(0.0)), C(0.0)),), C(1.0)),)), 7),
    # ensembles are equal when they read the same inputs with the same trees object
    "tree_ensembles": (ir.Sum((ir.Index(TREES, 0), ir.Index(ir.TreeEnsemble((ir.Feature("x"),), TREES.trees, 1, (0.25,)), 0))), 4),
    "index_positions": (ir.Sum((ir.Index(ir.Vector((X, Y)), 0), ir.Index(ir.Vector((X, Y)), 1))), 6),
}


@pytest.mark.parametrize("before, distinct", CASES.values(), ids=CASES.keys())
def test_intern(before: ir.Expr, distinct: int) -> None:
    after = intern(before)
    assert after == before  # the same tree by value ...
    assert _distinct(after) == distinct  # ... with equal subtrees one object


def test_intern_shares_across_outputs() -> None:
    e = intern(ir.Vector((_x2(), ir.Sum((_x2(), C(1.0))))))
    assert e.items[0] is e.items[1].terms[0]


def test_parent_counts_counts_each_parent() -> None:
    s = intern(ir.Sum((_x2(), _x2(), ir.Func("abs", (_x2(),)))))
    counts = parent_counts(s)
    assert (counts[id(s.terms[0])], counts[id(s.terms[2])], counts.get(id(s), 0)) == (3, 1, 0)


def _big(x: ir.Expr) -> ir.Expr:  # 7 nodes: worth naming when used twice
    return ir.Sum((ir.BinOp("*", x, C(2.0)), ir.BinOp("*", x, C(3.0)), C(1.0)))


BIND = {
    # a large subtree used twice is named; a small one, or one used once, is not
    "shared_large": (lambda b: ir.BinOp("/", b, ir.Sum((b, C(1.0)))), lambda e: [e.left]),
    "shared_small": (lambda b: ir.BinOp("/", b.terms[0], ir.Sum((b.terms[0], C(1.0)))), lambda e: []),
    "used_once": (lambda b: ir.Func("exp", (b,)), lambda e: []),
    # never hoisted out of a guarded branch
    "inside_lazy": (lambda b: ir.Case(((ir.IsMissing(X), C(0.0)),), ir.Lazy(ir.BinOp("*", b, b))), lambda e: []),
}


@pytest.mark.parametrize("build, expected", BIND.values(), ids=BIND.keys())
def test_shared_to_bind(build, expected) -> None:
    e = intern(build(_big(ir.Feature("x"))))
    assert shared_to_bind(e) == expected(e)


def test_shared_to_bind_names_deep_nodes_children_first() -> None:
    """Each exp(... + i) nests two deeper; with max_nesting=4 every second one is named."""
    e: ir.Expr = X
    exps = []
    for i in range(4):
        e = ir.Func("exp", (ir.BinOp("+", e, C(float(i))),))
        exps.append(e)
    assert shared_to_bind(e, max_nesting=4) == [exps[1], exps[3]]
    assert shared_to_bind(e) == []


@pytest.mark.parametrize("name", EXPRESSIONS)
def test_intern_keeps_values(name: str) -> None:
    e = EXPRESSIONS[name]
    assert_same_values(e, intern(e))
