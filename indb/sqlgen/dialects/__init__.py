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
from indb.sqlgen.dialects import bigquery, duckdb, postgres, snowflake, spark, sqlite, trino, tsql

TARGETS: dict[str, Target] = {
    m.TARGET.name: m.TARGET for m in (postgres, duckdb, sqlite, snowflake, bigquery, spark, trino, tsql)
}


def target(name: str) -> Target:
    """The target for a sqlglot dialect name; an unknown name lists the supported ones."""
    try:
        return TARGETS[name.lower()]
    except KeyError:
        raise CompileError(f"unknown SQL dialect {name!r}; supported: {', '.join(sorted(TARGETS))}") from None


__all__ = ["TARGETS", "Target", "target"]
