"""Snowflake: emitted only (not executed in tests)."""

from indb.sqlgen.dialects.base import Target

# no documented expression nesting limit
TARGET = Target("snowflake", max_columns=4096, is_true_predicate=False)
