"""What each SQL engine can and cannot do, as flags the lowering reads.

Dialects are data, not ``if dialect == ...`` branches: a target lists the engine's
float type, how it treats NaN and float errors, and its limits. The lowering
(``indb.sqlgen.lowering``) and the guard pass (``indb.sqlgen.passes.guards``) read these flags; fallback
rewrites live in those two places only.
"""

from __future__ import annotations

from dataclasses import dataclass

from indb.errors import CompileError


@dataclass(frozen=True)
class Target:
    #: sqlglot dialect name
    name: str
    #: sqlglot type name of IEEE double precision
    float_type: str = "double"
    #: a bare decimal literal is exact numeric (PostgreSQL ``numeric``, DuckDB ``DECIMAL``):
    #: cast constants so arithmetic stays in double precision
    cast_constants: bool = True
    #: the engine has NaN values (SQLite turns NaN into NULL)
    has_nan: bool = True
    #: NaN compares greater than every number and equal to itself (PostgreSQL, DuckDB)
    nan_is_greatest: bool = True
    #: float overflow/underflow, exp/ln/sqrt domain errors and division by zero raise
    #: an error instead of giving IEEE results (PostgreSQL)
    float_errors_raise: bool = False
    #: division by zero and ln(0) give NULL instead of +-Infinity (SQLite)
    div_zero_is_null: bool = False
    #: how to write infinity: "cast" ('Infinity' cast to the float type) or "overflow" (9e999)
    inf_literal: str = "cast"
    #: maximum nesting depth of one expression (None: no documented limit)
    max_depth: int | None = None
    #: maximum number of columns in a SELECT list
    max_columns: int = 1000
    #: the engine can run the SQL in tests (others are emitted and parsed back)
    executable: bool = False
    #: name of the function that raises an error with a message, if the engine has one
    error_function: str | None = None
    #: GREATEST/LEAST exist (SQLite spells them as scalar MAX/MIN; sqlglot translates)
    has_greatest: bool = True
    #: text equality is case-sensitive by default (T-SQL collations usually are not)
    text_eq_exact: bool = True
    #: the planner merges a derived table into its parent and copies its expressions into
    #: every reference (PostgreSQL, SQLite): a derived table that must compute a shared
    #: value once needs OFFSET 0 to stay a fence
    merges_subqueries: bool = False
    #: binding one expression takes time superlinear in its size (DuckDB: a 100-tree
    #: forest in one projection took 100 s to plan, in chunks of 10 trees 3 s): tree
    #: sums are split into running partial sums of at most this many trees
    max_trees_per_expression: int | None = None
    #: nesting the parser takes before its stack overflows, in IR levels (SQLite's LALR
    #: stack holds about 100 states): deeper expressions are split into derived columns
    max_nesting: int | None = None
    #: the engine's decimal-literal parser is not correctly rounded (SQLite before 3.43):
    #: literals with 16+ significant digits are written as an exact m * 2**e product
    inexact_literals: bool = False


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target("postgres", float_errors_raise=True, max_depth=None, max_columns=1664, executable=True, merges_subqueries=True),
        Target("duckdb", max_depth=1000, executable=True, error_function="error", max_trees_per_expression=10),
        Target(
            "sqlite",
            cast_constants=False,
            has_nan=False,
            nan_is_greatest=False,
            div_zero_is_null=True,
            inf_literal="overflow",
            max_depth=1000,
            max_columns=2000,
            executable=True,
            inexact_literals=True,
            merges_subqueries=True,
            max_nesting=8,
        ),
        Target("snowflake", max_columns=4096),
        Target("bigquery", max_columns=10000),
        Target("spark", max_columns=10000),
        Target("trino", max_columns=10000),
        Target("tsql", max_columns=4096, text_eq_exact=False),
    )
}


def target(name: str) -> Target:
    """The target for a sqlglot dialect name; an unknown name lists the supported ones."""
    try:
        return TARGETS[name.lower()]
    except KeyError:
        raise CompileError(f"unknown SQL dialect {name!r}; supported: {', '.join(sorted(TARGETS))}") from None
