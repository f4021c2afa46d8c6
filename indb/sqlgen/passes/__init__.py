"""IR → IR passes, run in the order of ``RULES`` before the SQL lowering.

One module per pass (sqlglot's ``optimizer/`` layout), each tested alone in
``tests/passes/``:

* ``fold`` (``fold.py``): constant folding with the evaluator's own arithmetic, exact
  for every input;
* ``guard`` (``guards.py``): guarded IEEE forms of the operations that would raise on a
  target with ``float_errors_raise`` (or give NULL where ``div_zero_is_null``), decided
  by the range analysis of ``ranges.py``;
* ``intern`` (``sharing.py``): structurally equal subtrees become one object, so every
  backend computes a shared subexpression once;
* ``drop_impossible_missing`` (``missing.py``): ``IsMissing`` of a value that can be
  neither NULL nor NaN is false;
* ``exact_shared_expit`` (``expit.py``): a shared ``expit`` reads its argument twice to
  keep its exact tail on engines that raise.

A rule takes the expression and, if it has a ``target`` parameter, the target; adding or
reordering a pass is one line of ``RULES``. The lowering also reads ``analyse`` (ranges),
``shared_to_bind`` (which shared values to name) and ``split_tree_sums`` (for targets
with ``max_trees_per_expression``), which are analyses and rewrites it asks for, not
rules.

``balance`` is not here on purpose: sums are added left to right like the libraries do,
and the lowering switches to a balanced shape only where a dialect's depth limit
requires it (``indb.sqlgen.lowering``).

    >>> from indb import ir
    >>> from indb.sqlgen.dialects import target
    >>> x = ir.Feature("x")
    >>> optimise(ir.BinOp("*", ir.Sum((x, ir.Const(0.0))), ir.Const(1.0)), target("duckdb"))
    Feature(name='x', kind='float')
"""

from __future__ import annotations

import functools
import inspect
from typing import Callable

from indb import ir
from indb.sqlgen.dialects import Target
from indb.sqlgen.passes.expit import exact_shared_expit
from indb.sqlgen.passes.fold import fold
from indb.sqlgen.passes.guards import guard
from indb.sqlgen.passes.limits import EXP_MAX_ARG, EXP_MIN_ARG
from indb.sqlgen.passes.missing import drop_impossible_missing
from indb.sqlgen.passes.ranges import Range, analyse
from indb.sqlgen.passes.sharing import intern, parent_counts, shared_to_bind
from indb.sqlgen.passes.tree_sums import split_tree_sums

__all__ = [
    "RULES",
    "EXP_MAX_ARG",
    "EXP_MIN_ARG",
    "Range",
    "analyse",
    "drop_impossible_missing",
    "exact_shared_expit",
    "fold",
    "guard",
    "intern",
    "optimise",
    "parent_counts",
    "shared_to_bind",
    "split_tree_sums",
]

#: the pipeline the SQL lowering runs, in order. Folding runs again after every pass
#: that rewrites (a guard's constants, a dropped test), and interning after every fold,
#: so the next pass and the lowering see each shared subexpression as one node.
RULES: tuple[Callable[..., ir.Expr], ...] = (
    fold,
    guard,
    fold,
    intern,
    drop_impossible_missing,
    fold,
    intern,
    exact_shared_expit,
    intern,
)


#: passes whose output is its own fixed point (``rule(rule(e)) is rule(e)``): run again
#: on a tree that is still their own output, they are skipped (an MLP's tree of 17,000
#: nodes took a third of its lowering time in passes that changed nothing)
IDEMPOTENT: frozenset[Callable[..., ir.Expr]] = frozenset({fold, intern})


def optimise(e: ir.Expr, target: Target, rules: tuple[Callable[..., ir.Expr], ...] = RULES) -> ir.Expr:
    """``e`` rewritten by each of ``rules`` in turn; a rule gets ``target`` if it takes one."""
    fixed: dict[Callable[..., ir.Expr], ir.Expr] = {}
    for rule in rules:
        if fixed.get(rule) is e:
            continue
        before = e
        e = rule(e, target=target) if _takes_target(rule) else rule(e)
        if rule is intern:
            # interning changes no structure: what was a fixed point stays one
            fixed = {r: e if got is before else got for r, got in fixed.items()}
        if rule in IDEMPOTENT:
            fixed[rule] = e
    return e


@functools.lru_cache(maxsize=None)
def _takes_target(rule: Callable[..., ir.Expr]) -> bool:
    return "target" in inspect.signature(rule).parameters
