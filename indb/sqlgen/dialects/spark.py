"""Spark SQL (Spark 4, ANSI mode on or off): executed in tests on a local Spark.

What Spark's DOUBLE does, and what indb writes for it:

====================  ==============================================  =================================
operation             Spark                                           indb's SQL
====================  ==============================================  =================================
NaN                   a value: ``NaN = NaN`` is true and NaN sorts    ``x < 'NaN'`` tests for a number,
                      above every number (+inf included)              as on PostgreSQL
NULL                  SQL NULL, distinct from NaN                     missing (as NaN) in the IR
``x / 0``             NULL with ANSI off; DIVIDE_BY_ZERO error with   ``CASE WHEN y = 0`` gives the IEEE
                      ANSI on (Spark's default), even for DOUBLE      value; the division reads
                                                                      ``NULLIF(y, 0)``, so no evaluation
                                                                      order can divide by zero
``LN(x)``, x <= 0     NULL                                            ``LN(0)`` is -inf by a CASE; ``LN``
                                                                      of a negative stays NULL (the IR's
                                                                      NaN: both are missing)
``EXP``, ``POWER``    ``java.lang.Math``: IEEE (inf on overflow,      as written
                      NaN for a negative base and a fractional
                      exponent); no error in either mode
overflow of + - *     IEEE inf in both modes (ANSI checks integral    as written
                      and decimal arithmetic only)
bare ``2.5``          DECIMAL: constants are cast to DOUBLE           ``CAST(2.5 AS DOUBLE)``
====================  ==============================================  =================================

A result column may hold NULL where the model gives NaN (``LN`` of a negative): indb
treats both as missing, and so do its parity tests.
"""

from indb.sqlgen.dialects.base import Target

TARGET = Target(
    "spark",
    # x / 0 and ln(0) are NULL (ANSI off): the guard pass gives them their IEEE values
    div_zero_is_null=True,
    # ... and x / 0 raises with ANSI on: divisors are written NULLIF(y, 0)
    div_zero_raises=True,
    # one projection of 100 trees of depth 8 took minutes to plan and exceeded whole-stage
    # code generation's 64 KB method limit: tree sums are split into derived columns
    max_trees_per_expression=10,
    error_function="raise_error",
    max_columns=10000,
)
