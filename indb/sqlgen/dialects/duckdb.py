"""DuckDB: executed in tests; fast, with an expression depth limit and slow binding of
very large expressions."""

from indb.sqlgen.dialects.base import Target

TARGET = Target(
    "duckdb",
    cast_operator=True,
    # max_expression_depth defaults to 1000
    max_depth=1000,
    error_function="error",
    # a 100-tree forest in one projection took 100 s to plan, in chunks of 10 trees 3 s
    max_trees_per_expression=10,
)
