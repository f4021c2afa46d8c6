"""T-SQL (SQL Server): emitted only (not executed in tests)."""

from indb.sqlgen.dialects.base import Target

TARGET = Target(
    "tsql",
    # FLOAT holds neither NaN nor infinity: a NaN cannot reach a table, and a model
    # that needs an infinite constant is refused
    has_nan=False,
    nan_is_greatest=False,
    inf_literal="none",
    # no boolean values: no IS TRUE / IS FALSE
    is_true_predicate=False,
    # "a maximum of 4,096 columns per SELECT statement"
    max_columns=4096,
    # "SQL Server allows for only 10 levels of nesting in CASE expressions"
    max_case_nesting=10,
    # default collations compare text case-insensitively
    text_eq_exact=False,
)
