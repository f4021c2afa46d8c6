"""The prediction log: ``indb log``, ``indb log maintain`` and ``indb log prune``.

The log is two tables partitioned by day (UTC), ``indb.scoring_calls`` (one row per
call: who, when, which version and checksum) and ``indb.prediction_log`` (the logged
rows: key, features, prediction), read together through ``indb.logged_predictions``.
Row-level security shows a scorer their own calls and an auditor all of them.

* :func:`log` reads rows or calls, filtered by model, version, user and time;
* :func:`maintain` creates the partitions of the coming days (run it from cron) and
  reports a DEFAULT partition, which indb never creates and which would fill silently;
* :func:`prune` drops whole partitions older than a retention, each in its own short
  transaction that waits at most 200 ms for writers (then retries), never DELETEs.

>>> import indb
>>> indb.log_prune("90d")                          # doctest: +SKIP
PruneResult(cutoff=..., dropped=['indb.prediction_log_p20260101', ...], kept_busy=[])
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Callable

from psycopg import sql

from indb import errors
from indb.catalog.connection import server_error, session

PARENTS = ("prediction_log", "scoring_calls")  # rows before their calls
ROW_COLUMNS = ("call_id", "called_at", "called_by", "model", "version", "entry_point", "request_id", "row_key",
               "prediction", "label", "feature_values", "features", "features_text", "ir_sha256")
CALL_COLUMNS = ("call_id", "called_at", "called_by", "model", "version", "entry_point", "source", "target",
                "sample_rate", "request_id", "rows_scored", "rows_logged", "finished_at", "ir_sha256")

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_age(text: str) -> str:
    """``90d`` / ``12h`` / ``2w`` as a PostgreSQL interval literal.

    >>> parse_age("90d")
    '90 days'
    """
    m = re.fullmatch(r"\s*(\d+)\s*([smhdw])\s*", text or "")
    if not m:
        raise errors.UsageError(f"expected an age like 90d, 12h or 2w, not {text!r}")
    return f"{int(m.group(1))} {_UNITS[m.group(2)]}"


def _time_bound(value: str | None) -> sql.Composable | None:
    """A --since/--until value: an age (``7d``: that long ago) or a timestamp."""
    if value is None:
        return None
    if re.fullmatch(r"\s*\d+\s*[smhdw]\s*", value):
        return sql.SQL("pg_catalog.now() - {}::interval").format(sql.Literal(parse_age(value)))
    return sql.SQL("{}::timestamptz").format(sql.Literal(value))


def log(
    *,
    model: str | None = None,
    version: int | None = None,
    user: str | None = None,
    since: str | None = None,
    until: str | None = None,
    calls: bool = False,
    limit: int | None = 1000,
    dsn: str | None = None,
    conn=None,
) -> tuple[list[str], list[tuple]]:
    """(column names, rows) of the logged rows, or of the scoring calls with ``calls``,
    newest first. ``since``/``until`` take an age (``24h``, ``7d``) or a timestamp."""
    cols = CALL_COLUMNS if calls else ROW_COLUMNS
    rel = sql.Identifier("indb", "scoring_calls" if calls else "logged_predictions")
    where = []
    if model is not None:
        where.append(sql.SQL("model = {}").format(sql.Literal(model)))
    if version is not None:
        where.append(sql.SQL("version = {}").format(sql.Literal(int(version))))
    if user is not None:
        where.append(sql.SQL("called_by = {}").format(sql.Literal(user)))
    lo, hi = _time_bound(since), _time_bound(until)
    if lo is not None:
        where.append(sql.SQL("called_at >= {}").format(lo))
    if hi is not None:
        where.append(sql.SQL("called_at < {}").format(hi))
    query = sql.SQL("SELECT {} FROM {}").format(sql.SQL(", ").join(map(sql.Identifier, cols)), rel)
    if where:
        query += sql.SQL(" WHERE ") + sql.SQL(" AND ").join(where)
    query += sql.SQL(" ORDER BY called_at DESC, call_id DESC")
    if limit is not None:
        query += sql.SQL(" LIMIT {}").format(sql.Literal(int(limit)))
    with session(dsn, conn, "log", read_only=True) as c:
        import psycopg

        try:
            return list(cols), c.execute(query).fetchall()
        except psycopg.errors.InsufficientPrivilege:
            raise errors.PermissionError(
                "reading the prediction log needs indb_scorer (your own calls) or indb_auditor (every call): "
                "a DBA runs `indb grant auditor <you>`") from None
        except psycopg.Error as e:
            raise server_error(e) from None


@dataclass
class MaintainResult:
    created: int
    through: str | None  # the last day with partitions of both tables
    problems: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        text = f"created {self.created} partition(s); the log has partitions through {self.through}"
        return text + "".join(f"\nPROBLEM: {p}" for p in self.problems)


def maintain(*, days_ahead: int | None = None, dsn: str | None = None, conn=None) -> MaintainResult:
    """Create the log's partitions from today through ``days_ahead`` days (default: the
    catalog's ``indb.log_settings``), and report anything that would fill silently."""
    with session(dsn, conn, "log maintain") as c:
        import psycopg

        try:
            days = days_ahead if days_ahead is not None else c.execute(
                "SELECT days_ahead FROM indb.log_settings").fetchone()[0]
            created = c.execute("SELECT indb.log_ensure_partitions(%s)", [days]).fetchone()[0]
            problems = []
            for parent, default, rows in c.execute(
                    "SELECT p.partrelid::regclass::text, p.partdefid::regclass::text, c.reltuples::bigint"
                    " FROM pg_catalog.pg_partitioned_table AS p JOIN pg_catalog.pg_class AS c ON c.oid = p.partdefid"
                    " WHERE p.partrelid = ANY (ARRAY['indb.scoring_calls'::regclass, 'indb.prediction_log'::regclass])"
                    " AND p.partdefid <> 0").fetchall():
                problems.append(f"{parent} has a DEFAULT partition {default} (about {max(rows, 0)} rows): indb never "
                                "makes one; rows there escape retention. A superuser moves them and drops it")
            through = c.execute(
                "SELECT pg_catalog.max(d)::text FROM (SELECT pg_catalog.to_date(pg_catalog.right(c.relname, 8), 'YYYYMMDD') AS d"
                " FROM pg_catalog.pg_inherits AS i JOIN pg_catalog.pg_class AS c ON c.oid = i.inhrelid"
                " WHERE i.inhparent = 'indb.prediction_log'::regclass AND c.relname ~ '_p[0-9]{8}$') AS x").fetchone()[0]
            return MaintainResult(created, through, problems)
        except psycopg.errors.InsufficientPrivilege:
            raise errors.PermissionError("indb log maintain needs indb_deployer (or a superuser)") from None
        except psycopg.Error as e:
            raise server_error(e) from None


@dataclass
class PruneResult:
    cutoff: str
    dropped: list[str] = field(default_factory=list)
    kept_busy: list[str] = field(default_factory=list)  # still there: writers held them through every retry
    dry_run: bool = False

    def __str__(self) -> str:
        verb = "would drop" if self.dry_run else "dropped"
        lines = [f"{verb} {len(self.dropped)} partition(s) that ended before {self.cutoff}"]
        lines += [f"  {p}" for p in self.dropped]
        if self.kept_busy:
            lines.append(f"{len(self.kept_busy)} partition(s) stayed because the log was busy; run prune again: "
                         + ", ".join(self.kept_busy))
        return "\n".join(lines)


def _expired(conn, age: str) -> tuple[str, list[str]]:
    cutoff, min_keep, too_young = conn.execute(
        "SELECT (pg_catalog.now() - %s::interval)::text, s.min_retention::text, %s::interval < s.min_retention"
        " FROM indb.log_settings AS s", [age, age]).fetchone()
    if too_young:
        raise errors.UsageError(
            f"--older-than {age} is shorter than the log's minimum retention of {min_keep}; "
            "a superuser may lower it: UPDATE indb.log_settings SET min_retention = ...")
    parts = [r[0] for r in conn.execute(
        "SELECT x.part FROM (SELECT c.oid::regclass::text AS part, p.n AS parent_order,"
        "   (pg_catalog.regexp_match(pg_catalog.pg_get_expr(c.relpartbound, c.oid), 'TO \\(''([^'']+)''\\)'))[1]::timestamptz AS upper"
        "   FROM pg_catalog.pg_inherits AS i JOIN pg_catalog.pg_class AS c ON c.oid = i.inhrelid"
        "   JOIN pg_catalog.unnest(%s::regclass[]) WITH ORDINALITY AS p(parent, n) ON p.parent = i.inhparent) AS x"
        " WHERE x.upper <= pg_catalog.now() - %s::interval ORDER BY x.upper, x.parent_order",
        [[f"indb.{p}" for p in PARENTS], age]).fetchall()]
    return cutoff, parts


def prune(
    older_than: str,
    *,
    retries: int = 50,
    dry_run: bool = False,
    dsn: str | None = None,
    conn=None,
    progress: Callable[[str], None] | None = None,
) -> PruneResult:
    """Drop the log's partitions whose day ended more than ``older_than`` (``90d``) ago.

    Each partition goes in its own transaction, waiting at most 200 ms for the lock (so
    scoring is never held up for long) and retrying with a growing pause.
    """
    age = parse_age(older_than)
    with session(dsn, conn, "log prune") as c:
        import psycopg

        try:
            cutoff, parts = _expired(c, age)
            result = PruneResult(cutoff, dry_run=dry_run)
            if dry_run:
                result.dropped = parts
                return result
            for part in parts:
                pause = 0.05
                for _attempt in range(retries):
                    try:
                        c.execute("SELECT indb.log_drop_partition(%s::regclass)", [part])
                        result.dropped.append(part)
                        if progress:
                            progress(f"dropped {part}")
                        break
                    except psycopg.errors.LockNotAvailable:
                        time.sleep(pause)
                        pause = min(pause * 2, 2.0)
                else:
                    result.kept_busy.append(part)
            return result
        except psycopg.errors.InsufficientPrivilege as e:
            if "indb:" in str(e):
                raise server_error(e) from None
            raise errors.PermissionError("indb log prune needs indb_deployer (or a superuser)") from None
        except psycopg.Error as e:
            raise server_error(e) from None


#: the names re-exported from ``indb`` (``indb.log_maintain``, ``indb.log_prune``)
log_maintain = maintain
log_prune = prune
