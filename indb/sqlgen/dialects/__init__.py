"""What each SQL engine can and cannot do, as flags the lowering reads.

Dialects are data, not ``if dialect == ...`` branches: ``base.Target`` lists the flags
(the engine's float type, how it treats NaN and float errors, its limits), and one
module per dialect sets the flags where that engine differs, each with the reason. What
is special about DuckDB is all in ``duckdb.py``. The lowering (``indb.sqlgen.lowering``)
and the guard pass (``indb.sqlgen.passes.guards``) read the flags; the fallback rewrites live
in those two places only.

    >>> target("SQLite").has_nan
    False
"""

from __future__ import annotations

from indb.errors import CompileError
from indb.sqlgen.dialects.base import Target
from indb.sqlgen.dialects import bigquery, duckdb, mysql, postgres, snowflake, spark, sqlite, trino, tsql

TARGETS: dict[str, Target] = {
    m.TARGET.name: m.TARGET for m in (postgres, duckdb, sqlite, mysql, snowflake, bigquery, spark, trino, tsql)
}


#: sqlglot dialects that are not offered, and why: a target is offered once its float
#: semantics (NaN, infinity, overflow, division by zero) and limits are stated as flags
REFUSED: dict[str, str] = {
    "athena": "Athena engine 3 is Trino: compile with --dialect trino",
    "presto": "Presto's float semantics are Trino's: compile with --dialect trino",
    "databricks": "Databricks SQL is Spark SQL: compile with --dialect spark",
    "spark2": "Spark 2 is not tested; compile with --dialect spark (Spark 3 and later)",
    "hive": "Hive's float errors and NaN ordering are not stated yet; compile with --dialect spark",
    "doris": "its float semantics are not stated yet (MySQL wire protocol, but not MySQL's DOUBLE errors)",
    "starrocks": "its float semantics are not stated yet (MySQL wire protocol, but not MySQL's DOUBLE errors)",
    "redshift": "Redshift's float errors and NaN ordering differ from PostgreSQL's and are not stated yet",
    "materialize": "its float semantics are not stated yet",
    "risingwave": "its float semantics are not stated yet",
    "oracle": "Oracle's BINARY_DOUBLE and NUMBER semantics (NaN, overflow, no boolean) are not stated yet",
    "clickhouse": "ClickHouse's NaN ordering and CASE typing are not stated yet",
    "teradata": "its float semantics are not stated yet",
    "exasol": "its float semantics are not stated yet",
    "fabric": "Fabric warehouses are T-SQL: compile with --dialect tsql",
    "drill": "its float semantics are not stated yet",
    "druid": "Druid SQL is a query layer without stated float semantics",
    "dremio": "its float semantics are not stated yet",
    "dune": "Dune SQL is Trino: compile with --dialect trino",
    "solr": "Solr SQL cannot compute expressions of this size",
    "tableau": "Tableau calculations are not SQL queries",
    "dax": "DAX is not SQL",
    "prql": "PRQL is compiled to another dialect's SQL: compile for that one",
}


def target(name: str) -> Target:
    """The target for a sqlglot dialect name; a dialect that is not offered says why.

    >>> target("oracle")
    Traceback (most recent call last):
    ...
    indb.errors.CompileError: SQL dialect 'oracle' is not offered: Oracle's BINARY_DOUBLE and NUMBER semantics (NaN, overflow, no boolean) are not stated yet; offered: bigquery, duckdb, mysql, postgres, snowflake, spark, sqlite, trino, tsql
    """
    try:
        return TARGETS[name.lower()]
    except KeyError:
        offered = ", ".join(sorted(TARGETS))
        why = REFUSED.get(name.lower())
        if why is not None:
            raise CompileError(f"SQL dialect {name!r} is not offered: {why}; offered: {offered}") from None
        raise CompileError(f"unknown SQL dialect {name!r}; offered: {offered}") from None


__all__ = ["REFUSED", "TARGETS", "Target", "target"]
