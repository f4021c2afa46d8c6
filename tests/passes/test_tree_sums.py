"""``split_tree_sums``: a large tree sum as running partial sums, the same additions in order."""

from __future__ import annotations

import pytest

from indb import ir
from indb.sqlgen.passes import split_tree_sums
from tests.passes.edges import TREES, C, X, assert_same_values


def _one(k: int) -> ir.Expr:
    return ir.Index(ir.TreeEnsemble((X,), (TREES.trees[k],), 1, (0.0,)), 0)


S1 = ir.Sum((C(0.25), _one(0), _one(1)))
S2 = ir.Sum((S1, _one(2), _one(3)))
S3 = ir.Sum((S2, _one(4)))

CASES = {
    "chunks_of_two": (2, ir.Index(TREES, 0), S3, 3),
    "chunks_of_five": (5, ir.Index(TREES, 0), ir.Index(TREES, 0), 0),
    "inside_an_expression": (4, ir.Func("expit", (ir.Index(TREES, 0),)), ir.Func("expit", (ir.Sum((ir.Sum((C(0.25), *map(_one, range(4)))), _one(4))),)), 2),
}


@pytest.mark.parametrize("per_chunk, before, after, n_partial", CASES.values(), ids=CASES.keys())
def test_split_tree_sums(per_chunk: int, before: ir.Expr, after: ir.Expr, n_partial: int) -> None:
    out, partial = split_tree_sums(before, per_chunk)
    assert out == after
    assert len(partial) == n_partial
    assert all(id(n) in partial for n in ir.walk(out) if isinstance(n, ir.Sum))


@pytest.mark.parametrize("per_chunk", [1, 2, 3, 4])
def test_split_tree_sums_keeps_values(per_chunk: int) -> None:
    e = ir.Vector((ir.Index(TREES, 0), ir.BinOp("*", ir.Index(TREES, 0), X)))
    assert_same_values(e, split_tree_sums(e, per_chunk)[0])
