"""MySQL 8 (and MariaDB through the same SQL): emitted only (not executed in tests: no
PyPI package runs MySQL SQL in process), pinned by golden SQL."""

from indb.sqlgen.dialects.base import Target

TARGET = Target(
    "mysql",
    # DOUBLE holds neither NaN nor infinity ("DOUBLE value is out of range"): a NaN
    # cannot reach a table, and a model that needs an infinite constant is refused
    has_nan=False,
    nan_is_greatest=False,
    inf_literal="none",
    # float overflow raises "DOUBLE value is out of range in ..."; x / 0 and LN(0) are
    # NULL with a warning (an error under strict ERROR_FOR_DIVISION_BY_ZERO inserts):
    # the raising engine's guards keep every such operation from being evaluated
    float_errors_raise=True,
    # GREATEST(x, NULL) is NULL, and there is no NaN to order: the IR's strict max
    strict_max="GREATEST",
    # no function raises an error inside an expression (SIGNAL is a statement)
    error_function=None,
    # "A table can contain a maximum of 4096 columns"; a SELECT list is bounded likewise
    max_columns=4096,
    # utf8mb4_0900_ai_ci, the default collation, compares text case-insensitively
    text_eq_exact=False,
    # no boolean type: TRUE is 1, and sqlglot writes IS TRUE; keep the searched CASE
    is_true_predicate=False,
)
