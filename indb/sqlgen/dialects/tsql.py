"""T-SQL (SQL Server): emitted only (not executed in tests: SQL Server is on neither PyPI
nor Debian, so no engine runs here).

What SQL Server does, and where that is written down (learn.microsoft.com, "Transact-SQL
reference"):

* FLOAT holds neither NaN nor infinity: its range is -1.79E+308 to -2.23E-308, 0, and
  2.23E-308 to 1.79E+308 (t-sql/data-types/float-and-real-transact-sql), and
  ``CAST('NaN' AS FLOAT)`` is a conversion error (issue 16). So a missing value is
  NULL only, and a NaN can never reach a table.
* Float errors end the query: "When ANSI_WARNINGS is ON (the default) ... Arithmetic
  errors cause the query to end ... Arithmetic errors include overflow,
  divide-by-zero, or domain errors" (t-sql/statements/set-arithabort-transact-sql).
  That covers x / 0, LOG(0) and LOG of a negative number, EXP overflow and POWER of a
  negative base. So T-SQL takes PostgreSQL's guards (``float_errors_raise``).
* Infinity: where the model's value would be +-Infinity (an overflow, x / 0, ln 0),
  T-SQL cannot hold it, and indb writes NULL instead (``inf_literal="null"``): the
  guard decides the row before the failing call runs, and NULL propagates through the
  rest of the expression. This is the one place where T-SQL's answer differs from the
  model's: rows whose computation passes through an infinity (a zero divisor, a
  feature near 1.8e308) score NULL. A model whose *own* constants are infinite (an
  infinite threshold or coefficient) is refused, since NULL there would change every
  row.
* No boolean values: a predicate cannot stand in a select list or be compared with
  ``IS TRUE``; an output that is a predicate is written ``CASE WHEN c THEN 1 WHEN NOT
  (c) THEN 0 END``, and shared predicates are not named as columns.
* ``GREATEST``/``LEAST`` exist only "from SQL Server 2022 (16.x)" and ignore NULLs
  (t-sql/functions/logical-functions-greatest-transact-sql): the IR's max/min is a
  searched CASE that every version runs.
* ``CASE`` nests at most 10 levels ("SQL Server allows for only 10 levels of nesting
  in CASE expressions", t-sql/language-elements/case-transact-sql); a SELECT has at
  most 4,096 columns; default collations compare text case-insensitively.
"""

from indb.sqlgen.dialects.base import Target

TARGET = Target(
    "tsql",
    has_nan=False,
    nan_is_greatest=False,
    float_errors_raise=True,
    inf_literal="null",
    greatest=False,
    bool_values=False,
    # no boolean values: no IS TRUE / IS FALSE
    is_true_predicate=False,
    max_columns=4096,
    max_case_nesting=10,
    text_eq_exact=False,
)
