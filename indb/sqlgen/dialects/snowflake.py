"""Snowflake: emitted only (not executed in tests: a cloud service; nothing on PyPI or in
Debian runs the real engine — emulators such as fakesnow run DuckDB underneath, which
would test DuckDB's semantics, not Snowflake's).

What Snowflake does, and where that is written down (Snowflake's pages are not in the
stored documentation this project searches; the URLs below are the vendor's):

* NaN: FLOAT is IEEE binary64 with the special values 'NaN', 'inf' and '-inf', whose
  comparison "differs from the IEEE 754 standard": ``'NaN' = 'NaN'`` is TRUE and
  "Snowflake treats 'NaN' as greater than any other FLOAT value, including infinity"
  (https://docs.snowflake.com/en/sql-reference/data-types-numeric#special-values).
  That is PostgreSQL's order, so the same NaN tests apply (``nan_is_greatest``), with
  the NaN constant always typed: a bare ``'NaN'`` beside a FLOAT is a string.
* Division by zero is an error for every numeric type ("Division by zero"; DIV0 and
  DIV0NULL exist to avoid it: https://docs.snowflake.com/en/sql-reference/functions/div0).
  Whether ``LN(0)`` and ``EXP`` overflow raise or give IEEE values is not stated on the
  function pages, so they are guarded as on PostgreSQL (``float_errors_raise``): the
  guarded forms give the IEEE result on either behaviour and never reach the call.
* NULL: ``GREATEST`` returns NULL if any argument is NULL (GREATEST_IGNORE_NULLS exists
  to skip them: https://docs.snowflake.com/en/sql-reference/functions/greatest_ignore_nulls),
  and with NaN greatest it returns NaN for a NaN argument: the IR's strict max.
* Booleans exist, but sqlglot writes ``x IS NOT TRUE`` as ``NOT x`` for Snowflake
  (NULL for NULL): a searched CASE says IS NOT TRUE.
"""

from indb.sqlgen.dialects.base import Target

TARGET = Target(
    "snowflake",
    # no documented expression nesting limit
    max_columns=4096,
    is_true_predicate=False,
    float_errors_raise=True,
    strict_max="GREATEST",
    untyped_nan=False,
)
