"""Sharing: equal subtrees made one object, and which shared values a backend names.

``intern`` (the pass) hash-conses the tree so every backend can compute a shared
subexpression once (the numpy evaluator memoises by identity; the SQL lowering sees the
sharing and decides how to express it). ``shared_to_bind`` is what the lowering reads to
name values once (a PL/pgSQL variable, a column of a derived table).
"""

from __future__ import annotations

import sys

from indb import ir


def intern(e: ir.Expr) -> ir.Expr:
    """Make structurally equal subtrees the same object (hash-consing, linear time)."""
    table: dict[tuple, ir.Expr] = {}

    def fn(n: ir.Expr) -> ir.Expr:
        kids = n.children()
        if isinstance(n, ir.TreeEnsemble):
            key = ("TreeEnsemble", tuple(id(k) for k in kids), id(n.trees), n.n_outputs, n.base, n.strict)
        elif kids:
            attrs = tuple(getattr(n, f) for f in n.__dataclass_fields__ if f not in n.child_fields)
            key = (type(n).__name__, attrs, tuple(id(k) for k in kids))
        else:
            key = (type(n).__name__, n)
        got = table.get(key)
        if got is None:
            table[key] = n
            got = n
        return got

    return ir.transform(e, fn)


def parent_counts(e: ir.Expr) -> dict[int, int]:
    """How many parents each node has in the DAG (shared subtrees counted once)."""
    counts: dict[int, int] = {}
    for n in ir.walk(e):
        for c in n.children():
            counts[id(c)] = counts.get(id(c), 0) + 1
    return counts


def shared_to_bind(e: ir.Expr, min_size: int = 6, max_nesting: int | None = None, force: set[int] | None = None) -> list[ir.Expr]:
    """Non-trivial scalar nodes used more than once, children before parents.

    A backend that can name a value (a PL/pgSQL variable, a column of a derived
    table) computes these once instead of at every use. With ``max_nesting``, a node
    is also named where the expression below it (down to named values) would nest
    deeper than that, so that no single SQL expression nests beyond the engine's limit.
    """
    counts = parent_counts(e)
    sizes: dict[int, int] = {}
    order: list[ir.Expr] = []
    seen: set[int] = set()

    def visit(n: ir.Expr) -> int:
        if id(n) in seen:
            return sizes[id(n)]
        seen.add(id(n))
        total = 1 + sum(visit(c) for c in n.children())
        if isinstance(n, ir.TreeEnsemble):
            total += sum(t.n_nodes for t in n.trees)
        sizes[id(n)] = total
        order.append(n)
        return total

    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, 20000))
    try:
        visit(e)
    finally:
        sys.setrecursionlimit(old)
    # nodes reached from the root without passing through a Lazy marker: computing them
    # ahead of time cannot raise where the original would not have
    eager: set[int] = set()
    stack = [e]
    while stack:
        n = stack.pop()
        if id(n) in eager or isinstance(n, ir.Lazy):
            continue
        eager.add(id(n))
        stack.extend(n.children())
    out = []
    height: dict[int, int] = {}
    for n in order:  # children come before parents
        kids = n.children()
        h = 1 + max((height[id(c)] for c in kids), default=0) if kids else 0
        if isinstance(n, ir.TreeEnsemble):
            h += max((t.depth() for t in n.trees), default=0)
        bindable = (
            id(n) in eager
            and not isinstance(n, (ir.Feature, ir.Const, ir.Var, ir.Fail, ir.Vector, ir.TreeEnsemble))
            and n.type in (ir.FLOAT, ir.TEXT, ir.BOOL)
        )
        shared = counts.get(id(n), 0) >= 2 and (sizes[id(n)] >= min_size or (isinstance(n, ir.Index) and isinstance(n.vector, ir.TreeEnsemble)))
        deep = max_nesting is not None and h >= max_nesting
        if bindable and (shared or deep or (force is not None and id(n) in force)):
            out.append(n)
            h = 0
        height[id(n)] = h
    return out
