"""BigQuery (GoogleSQL): emitted only (not executed in tests: a Google Cloud service;
nothing on PyPI or in Debian runs it locally). The golden SQL is checked against the
documented semantics below.

The references are GoogleSQL's own reference pages (the language of BigQuery), at
https://cloud.google.com/bigquery/docs/reference/standard-sql/ and in google/zetasql's
``docs/``:

* Errors where IEEE gives a special value: "Function calls and operators return an
  overflow error if the input is finite but the output would be non-finite"; ``1.0 /
  0.0`` is a "Divide by zero" error (data-types.md, "Floating point semantics"); ``LN``
  "Generates an error if X is less than or equal to zero"; ``EXP`` "Generates an error
  if the result overflows" (and returns 0 on underflow); ``POW`` of a negative base
  and a non-integer exponent, or of 0 and a negative exponent, is an error
  (mathematical_functions.md). So BigQuery takes PostgreSQL's guards
  (``float_errors_raise``): the guarded forms give the IEEE result without reaching
  the failing call. They rely on CASE evaluating only the branch chosen: conditional
  expressions "are evaluated left to right, with short-circuiting, and only evaluate
  the output value that was chosen" (conditional_expressions.md).
* NaN: "Comparison operators provide standard IEEE-754 behavior": ``NaN = x`` and
  ``NaN < x`` are FALSE (data-types.md), while ORDER BY sorts NaN *below* -inf
  ("Ordering floating points"). So a missing value is found with ``IS_NAN(x)``
  (mathematical_functions.md), and splits need no NaN test.
* NULL: ``GREATEST``/``LEAST``: "If any argument is NULL, returns NULL. Otherwise, in
  the case of floating-point arguments, if any argument is NaN, returns NaN" — the IR's
  own max/min, so ``GREATEST`` is the strict max the guards clamp with.
* ``CAST('Infinity' AS FLOAT64)`` and ``CAST('NaN' AS FLOAT64)`` are valid casts
  ("[+,-]infinity" and "[+,-]nan", conversion_functions.md); booleans exist (BOOL) and
  ``IS TRUE`` survives sqlglot's generator.
"""

from indb.sqlgen.dialects.base import Target

TARGET = Target(
    "bigquery",
    # no documented expression nesting limit (a resolved query is limited to 12 MB)
    max_columns=10000,
    float_errors_raise=True,
    nan_is_greatest=False,
    nan_test="IS_NAN",
    strict_max="GREATEST",
)
