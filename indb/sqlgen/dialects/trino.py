"""Trino: emitted only (not executed in tests)."""

from indb.sqlgen.dialects.base import Target

# no documented expression nesting limit
TARGET = Target("trino", max_columns=10000, is_true_predicate=False)
