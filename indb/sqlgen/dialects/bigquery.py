"""BigQuery: emitted only (not executed in tests)."""

from indb.sqlgen.dialects.base import Target

# no documented expression nesting limit (a resolved query is limited to 12 MB)
TARGET = Target("bigquery", max_columns=10000)
