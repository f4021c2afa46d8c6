"""Logged batch scoring: ``indb score`` and its Python function.

A thin client of ``indb.score(model, source, target, keep, key, sample)`` (migration
0006): one transaction, REPEATABLE READ (the target and the log read the same rows),
so an interrupted or failed call leaves neither a target table nor log rows::

    >>> import indb
    >>> indb.score("churn", "customers", "churn_scores", keep=["id"], key="id")   # doctest: +SKIP
    ScoreResult(call_id=7, scored='churn@3', rows_scored=1000000, rows_logged=1000000, target='public.churn_scores')

The database's NOTICEs (one per chunk of logged rows) go to ``progress``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable, Sequence

from psycopg import sql

from indb import errors
from indb.catalog.connection import connect, server_error, user_relation, user_schema


@dataclass
class ScoreResult:
    call_id: int
    scored: str
    rows_scored: int
    rows_logged: int
    target: str
    seconds: float = 0.0

    def __str__(self) -> str:
        return (f"{self.rows_scored:,} rows scored with {self.scored} into {self.target}, "
                f"{self.rows_logged:,} logged (call {self.call_id}) in {self.seconds:.1f} s")


def _target_name(conn, target: str) -> tuple[str, str]:
    """(schema, table) of ``target``, an unqualified name going where the session creates tables."""
    import psycopg

    try:
        parts = conn.execute("SELECT pg_catalog.parse_ident(%s)", [target]).fetchone()[0]
    except psycopg.errors.InvalidParameterValue:
        raise errors.UsageError(f"--into {target!r} is not a table name: write table or schema.table "
                                '(quote names with "")') from None
    if len(parts) == 1:
        schema = user_schema(conn)
        if schema is None:
            raise errors.UsageError(f"--into {target}: no schema on the search_path to create it in; qualify it as schema.table")
        return schema, parts[0]
    if len(parts) == 2:
        return parts[0], parts[1]
    raise errors.UsageError(f"--into {target}: expected table or schema.table")


def score(
    model: str,
    source: str,
    target: str,
    *,
    keep: Sequence[str] = (),
    key: str | None = None,
    sample: float = 1.0,
    replace: bool = False,
    dsn: str | None = None,
    conn=None,
    progress: Callable[[str], None] | None = None,
) -> ScoreResult:
    """Score every row of table ``source`` with ``model`` ('name', 'name@3', 'name@alias')
    into a new table ``target``, logging the rows (those whose ``key`` hashes below
    ``sample``) in one scoring call. ``replace`` drops an existing target in the same
    transaction; without it an existing target is an error.
    """
    if not (0 < sample <= 1):
        raise errors.UsageError(f"--sample must be in (0, 1], not {sample}")
    own = conn is None
    c = connect(dsn, purpose="score", autocommit=True) if own else conn
    handler = None
    if progress is not None:
        def handler(notice):  # noqa: ANN001
            text = notice.message_primary or ""
            if text.startswith("indb: "):
                progress(text[len("indb: "):])
        c.add_notice_handler(handler)
    t0 = time.perf_counter()
    try:
        import psycopg

        previous = c.isolation_level
        c.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        try:
            with c.transaction():
                oid = user_relation(c, source)
                rel = None if oid is None else c.execute("SELECT %s::oid::regclass::text", [oid]).fetchone()[0]
                if rel is None:
                    raise errors.NotFoundError(f"--from {source}: no such table (or not on the search_path; qualify it as schema.table)")
                schema, table = _target_name(c, target)
                qualified = sql.Identifier(schema, table)
                if replace:
                    c.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(qualified))
                row = c.execute(
                    "SELECT s.call_id, s.scored, s.rows_scored, s.rows_logged, s.target_table::text"
                    " FROM indb.score(%s, %s::regclass, %s, %s::text[], %s, %s) AS s",
                    [model, rel, qualified.as_string(c), list(keep), key, sample]).fetchone()
        except psycopg.OperationalError as e:
            # Ctrl-C: psycopg cancels the statement (or closes the connection when the
            # cancel is slow); either way nothing is committed
            if isinstance(e.__context__, KeyboardInterrupt):
                raise KeyboardInterrupt from None
            raise server_error(e) from None
        except psycopg.Error as e:
            raise server_error(e, denied="indb score reads --from and creates --into with your own privileges") from None
        finally:
            if not c.closed:
                c.isolation_level = previous
        return ScoreResult(*row, seconds=time.perf_counter() - t0)
    finally:
        if handler is not None and not c.closed:
            c.remove_notice_handler(handler)
        if own:
            c.close()


class Ticker:
    """Prints the elapsed time every few seconds while a long statement runs (terminals only)."""

    def __init__(self, write: Callable[[str], None], every: float = 5.0) -> None:
        self.write = write
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.t0 = time.perf_counter()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.write(f"working... {time.perf_counter() - self.t0:.0f} s")

    def __enter__(self) -> "Ticker":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
