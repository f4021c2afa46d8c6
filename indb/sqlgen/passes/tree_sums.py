"""Large tree sums split into running partial sums, for engines with an expression limit."""

from __future__ import annotations

from indb import ir


def split_tree_sums(e: ir.Expr, per_chunk: int) -> tuple[ir.Expr, set[int]]:
    """Rewrite each large tree sum as running partial sums of at most ``per_chunk`` trees.

    ``Index(ensemble, k)`` becomes ``s1 = base + t0 + ... + t9``, ``s2 = s1 + t10 + ...``,
    the same additions in the same order (so bitwise the same sum); the partial sums are
    returned to be named (``shared_to_bind(force=...)``).
    """
    forced: set[int] = set()

    def fn(n: ir.Expr) -> ir.Expr:
        if not (isinstance(n, ir.Index) and isinstance(n.vector, ir.TreeEnsemble)):
            return n
        te = n.vector
        if len(te.trees) <= per_chunk:
            return n
        k = n.i

        def one(t: ir.Tree) -> ir.Expr:
            single = ir.TreeEnsemble(te.inputs, (t,), te.n_outputs, tuple(0.0 for _ in te.base), te.strict)
            return ir.Index(single, k)

        acc: ir.Expr | None = None
        for start in range(0, len(te.trees), per_chunk):
            terms = [one(t) for t in te.trees[start:start + per_chunk]]
            head: ir.Expr = ir.Const(float(te.base[k])) if acc is None else acc
            acc = ir.Sum((head, *terms))
            forced.add(id(acc))
        return acc  # type: ignore[return-value]

    out = ir.transform(e, fn)
    return out, forced
