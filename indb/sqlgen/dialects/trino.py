"""Trino: emitted only (not executed in tests: Trino is a Java server shipped neither on
PyPI nor in Debian, so no engine runs here; the golden SQL is checked against the
documented semantics below, and shapes that can run on DuckDB are executed there).

What Trino does, and where that is written down:

* DOUBLE is IEEE 754 binary64 ("A double is a 64-bit inexact, variable-precision
  implementing the IEEE Standard 754", docs/src/main/sphinx/language/types.md,
  https://trino.io/docs/current/language/types.html#double). So x / 0 is +-Infinity
  (0 / 0 NaN), ``ln(0)`` is -Infinity, ``exp`` overflows to Infinity and
  ``power(-1, 0.5)`` is NaN: IEEE results, no error, nothing to guard.
* NaN: comparisons follow IEEE, not PostgreSQL: ``NaN > x`` and ``NaN = NaN`` are false
  (trinodb/trino#21922: "PostgreSQL treats NaN values as equal, and greater than all
  non-NaN values which is different from how Trino treats NaN"). So no ``x < 'NaN'``
  present test: a split ``x <= t`` is already false for NaN, and a missing value is
  found with ``is_nan(x)`` (functions/math.md, "Floating point functions"). NaN and
  infinity are written ``nan()`` and ``infinity()`` (same page), not cast from text.
* NULL: ``greatest``/``least`` "return null if any argument is null"
  (functions/comparison.md); but on NaN they raise "Invalid argument to greatest():
  NaN" (prestodb/presto wiki "Presto NaN behavior"; reported for Trino in issue 16),
  so the IR's max/min is a searched CASE.
* Booleans exist (BOOLEAN, language/types.md), but sqlglot writes Trino's ``x IS NOT
  TRUE`` as ``NOT x``, which is NULL for NULL: a searched CASE says IS NOT TRUE.
* A bare ``2.5`` is DECIMAL (language/types.md, "Exact numeric"): constants are cast.
"""

from indb.sqlgen.dialects.base import Target

TARGET = Target(
    "trino",
    # no documented expression nesting limit
    max_columns=10000,
    is_true_predicate=False,
    nan_is_greatest=False,
    nan_test="is_nan",
    inf_literal="function",
    greatest=False,
)
