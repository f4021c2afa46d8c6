"""``Target``: the flags that say what one SQL engine can and cannot do."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    """One SQL engine, as data. The default of each flag is the common SQL behaviour; a
    dialect's module (``indb.sqlgen.dialects.<name>``) sets the flags where it differs."""

    #: sqlglot dialect name
    name: str
    #: sqlglot type name of IEEE double precision
    float_type: str = "double"
    #: the float type's short spelling, written into tree text where size matters (None:
    #: sqlglot's rendering of ``float_type``)
    float_type_short: str | None = None
    #: ``x::type`` is a cast (else ``CAST(x AS type)``)
    cast_operator: bool = False
    #: a bare decimal literal is exact numeric (PostgreSQL ``numeric``, DuckDB ``DECIMAL``):
    #: cast constants so arithmetic stays in double precision
    cast_constants: bool = True
    #: a bare literal compared with a float column takes the column's type at plan time,
    #: so the comparison needs no cast on the literal
    literal_takes_column_type: bool = False
    #: the engine has NaN values (SQLite turns NaN into NULL; T-SQL's float has none)
    has_nan: bool = True
    #: NaN compares greater than every number and equal to itself (PostgreSQL, DuckDB)
    nan_is_greatest: bool = True
    #: where NaN is not greatest: the engine's comparisons are IEEE's (every comparison
    #: with NaN is false, ``<>`` is true), and this function finds a NaN (Trino ``is_nan``,
    #: BigQuery ``IS_NAN``)
    nan_test: str | None = None
    #: an untyped string literal ``'NaN'`` beside a float takes the float's type
    #: (PostgreSQL, DuckDB); else tree text writes the NaN constant typed
    untyped_nan: bool = True
    #: float overflow/underflow, exp/ln/sqrt domain errors and division by zero raise
    #: an error instead of giving IEEE results (PostgreSQL)
    float_errors_raise: bool = False
    #: division by zero and ln(0) give NULL instead of +-Infinity (SQLite)
    div_zero_is_null: bool = False
    #: division by zero raises an error even for floats, in some mode of the engine (Spark
    #: with ANSI on): a division by anything but a non-zero constant reads its divisor
    #: through NULLIF(divisor, 0), so no evaluation order of a guard can raise
    div_zero_raises: bool = False
    #: how to write infinity (and NaN): "cast" ('Infinity' cast to the float type),
    #: "overflow" (9e999), "function" (Trino's ``infinity()`` and ``nan()``), "none" (the
    #: float type has no infinity: a model that needs one is refused), or "null" (as
    #: "none" for the model's own constants; an infinite *result* that the guards compute
    #: for an overflow, a division by zero or ln(0) is NULL: T-SQL)
    inf_literal: str = "cast"
    #: ``width_bucket(x, float8[])`` and 1-based array subscripts (PostgreSQL): a label
    #: chosen by one comparison of a score after its missing test reads the score once
    #: (``Lowering._bucket_case``)
    bucket_lookup: bool = False
    #: a strict two-argument float max (NULL in, NULL out) that orders NaN above numbers,
    #: the IR's own max: used for max/min and for clamping exp's argument
    strict_max: str | None = None
    #: GREATEST/LEAST exist for floats and may stand for the IR's max/min behind a NULL
    #: test (SQL Server has them only from 2022; Presto's raise an error on NaN): else a
    #: searched CASE does
    greatest: bool = True
    #: a select list may hold a boolean value (T-SQL's cannot: a predicate becomes 1/0)
    bool_values: bool = True
    #: scalar MAX(a, b, ...) / MIN(...) exist and give NULL when any argument is NULL
    #: (SQLite); else GREATEST/LEAST behind a NULL test
    scalar_minmax_strict: bool = False
    #: maximum nesting depth of one expression (None: no documented limit): a long sum
    #: is written balanced instead of left-deep beyond half of it
    max_depth: int | None = None
    #: CASE expressions the parser accepts inside one another (None: no documented
    #: limit): a tree is written so that its nesting does not grow with its depth
    max_case_nesting: int | None = None
    #: nesting the parser takes before its stack overflows, in IR levels: deeper
    #: expressions are split into derived columns (a CTE chain with ``--table``)
    max_nesting: int | None = None
    #: maximum number of columns in a SELECT list
    max_columns: int = 1000
    #: name of the function that raises an error with a message, if the engine has one
    error_function: str | None = None
    #: the engine raises an error when a text that is not a number is cast to a float,
    #: at run time (PostgreSQL), which raises a message without an error function
    raise_by_cast: bool = False
    #: ``c IS TRUE`` and ``c IS FALSE`` exist and survive sqlglot's generator (for Trino
    #: and Snowflake it writes ``NOT c`` for ``NOT c IS TRUE``, NULL for a NULL ``c``;
    #: T-SQL has no boolean values): else a searched CASE says what they say
    is_true_predicate: bool = True
    #: text equality is case-sensitive by default (T-SQL collations usually are not)
    text_eq_exact: bool = True
    #: the planner merges a derived table into its parent and copies its expressions into
    #: every reference (PostgreSQL, SQLite): a derived table that must compute a shared
    #: value once needs OFFSET 0 to stay a fence
    merges_subqueries: bool = False
    #: binding one expression takes time superlinear in its size: tree sums are split
    #: into running partial sums of at most this many trees
    max_trees_per_expression: int | None = None
    #: the engine's decimal-literal parser is not correctly rounded (SQLite before 3.43):
    #: literals with 16+ significant digits are written as an exact m * 2**e product
    inexact_literals: bool = False
    #: a JIT compiles big expressions per process and does not answer a cancel while it
    #: does (PostgreSQL's LLVM JIT, on by default): printed statements turn it off
    has_jit: bool = False
    #: a printed script can create a temporary function (``pg_temp``) that raises
    #: ``--on-missing error``'s message as indb's own (PostgreSQL: ``raise_by_cast`` alone
    #: reads "invalid input syntax for type double precision")
    temp_fail_function: bool = False
