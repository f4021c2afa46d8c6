"""The audit trail (``indb audit``): every deploy, promote, rollback, retire, bind, unbind,
baseline, grant, revoke, prune and migrate, as the server recorded it (core 0014,
sql/60_audit.sql): who is the ``session_user`` of the change, when the server's clock.
Nobody can change or delete a row; auditors (and superusers) read it::

    >>> import indb
    >>> indb.audit(model="churn", since="7d")                 # doctest: +SKIP
    [AuditEvent(id=8, at=..., who='ci_deploy', action='deploy', model='churn', version=3, ...)]
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from psycopg import sql

from indb import errors
from indb.catalog.connection import server_error, session
from indb.governance.log import _time_bound

COLUMNS = ("id", "at", "who", "action", "model", "version", "detail")


@dataclass
class AuditEvent:
    id: int
    at: datetime
    who: str
    action: str
    model: str | None
    version: int | None
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["at"] = self.at.isoformat()
        return d

    def detail_text(self) -> str:
        """The detail as ``key=value`` pairs (None left out; checksums shortened), for text."""
        def show(k: str, v: Any) -> str:
            if isinstance(v, (dict, list)):
                return json.dumps(v)
            return f"{v[:12]}…" if k.endswith("sha256") and isinstance(v, str) else str(v)

        return " ".join(f"{k}={show(k, v)}" for k, v in sorted(self.detail.items()) if v is not None)


def audit(*, model: str | None = None, since: str | None = None, until: str | None = None, action: str | None = None,
          dsn: str | None = None, conn=None) -> list[AuditEvent]:
    """The audit trail, oldest first: of ``model`` only, and from ``since`` (``7d`` ago, or a
    timestamp) to ``until``. Needs indb_auditor."""
    where = [sql.SQL("true")]
    if model is not None:
        where.append(sql.SQL("model = {}").format(sql.Literal(model)))
    if action is not None:
        where.append(sql.SQL("action = {}").format(sql.Literal(action)))
    for bound, op in ((_time_bound(since), "{} >= {}"), (_time_bound(until), "{} < {}")):
        if bound is not None:
            where.append(sql.SQL(op).format(sql.Identifier("at"), bound))
    query = sql.SQL("SELECT {} FROM indb.audit WHERE {} ORDER BY id").format(
        sql.SQL(", ").join(map(sql.Identifier, COLUMNS)), sql.SQL(" AND ").join(where))
    with session(dsn, conn, "audit", read_only=True) as c:
        import psycopg

        try:
            if c.execute("SELECT pg_catalog.to_regclass('indb.audit') IS NULL").fetchone()[0]:
                raise errors.MigrationError("this catalog has no audit trail yet (core 0014): a superuser runs `indb migrate`")
            rows = c.execute(query).fetchall()
        except psycopg.errors.InsufficientPrivilege:
            raise errors.PermissionError("indb audit reads the audit trail: it needs indb_auditor "
                                         "(a DBA runs `indb grant auditor <you>`)") from None
        except (psycopg.errors.InvalidDatetimeFormat, psycopg.errors.DatetimeFieldOverflow):
            given = ", ".join(repr(v) for v in (since, until) if v is not None)
            raise errors.UsageError(f"--since/--until: expected an age like 7d or a timestamp like 2026-01-31, not {given}") from None
        except psycopg.Error as e:
            raise server_error(e) from None
    return [AuditEvent(*r) for r in rows]
