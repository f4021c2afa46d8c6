"""Spark SQL: emitted only (not executed in tests)."""

from indb.sqlgen.dialects.base import Target

# no documented expression nesting limit
TARGET = Target("spark", max_columns=10000)
