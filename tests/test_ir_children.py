"""IR nodes declare their child fields once; ``children``/``with_children`` and every walker read it."""

from __future__ import annotations

import dataclasses

import pytest

from indb import ir
from tests.passes.edges import TREES, C, X, Y

B = ir.Compare(">", X, C(0.0))
ONE_OF_EACH = [
    X, C(1.0), ir.Var("v"), ir.Fail("no"), ir.BinOp("+", X, Y), ir.Sum((X, Y, C(1.0))), ir.Func("max", (X, Y)), B,
    ir.InSet(X, (1.0,)), ir.IsMissing(X), ir.And((B, B)), ir.Or((B,)), ir.Not(B), ir.Case(((B, X), (B, Y)), C(2.0)),
    ir.Lazy(X), ir.Vector((X, Y)), ir.Index(ir.Vector((X, Y)), 1), ir.ArgMax((X, Y), ("a", "b")),
    ir.Let("v", X, ir.Var("v")), TREES,
]  # fmt: skip


def test_every_node_type_is_covered() -> None:
    assert {type(n).__name__ for n in ONE_OF_EACH} == set(ir.nodes._NODE_TYPES)


def _holds_nodes(v: object) -> bool:
    if isinstance(v, ir.Expr):
        return True
    return isinstance(v, tuple) and any(_holds_nodes(x) for x in v)


@pytest.mark.parametrize("node", ONE_OF_EACH, ids=lambda n: type(n).__name__)
def test_child_fields_are_the_fields_holding_nodes(node: ir.Expr) -> None:
    assert tuple(f.name for f in dataclasses.fields(node) if _holds_nodes(getattr(node, f.name))) == node.child_fields


@pytest.mark.parametrize("node", ONE_OF_EACH, ids=lambda n: type(n).__name__)
def test_with_children_round_trip(node: ir.Expr) -> None:
    kids = node.children()
    assert node.with_children(kids) == node
    if kids:  # each child replaced in its place
        new = tuple(ir.Feature(f"c{i}", k.type if k.type in (ir.FLOAT, ir.TEXT) else ir.FLOAT) if not k.type == ir.BOOL else ir.IsMissing(ir.Feature(f"c{i}")) for i, k in enumerate(kids))
        assert node.with_children(new).children() == new
        with pytest.raises(ValueError, match="children"):
            node.with_children(new + (X,))


def test_case_children_order() -> None:
    e = ir.Case(((B, X), (ir.IsMissing(Y), Y)), C(2.0))
    assert e.children() == (B, X, ir.IsMissing(Y), Y, C(2.0))
    assert ir.replace_children(e, (B, Y, B, X, C(3.0))) == ir.Case(((B, Y), (B, X)), C(3.0))
