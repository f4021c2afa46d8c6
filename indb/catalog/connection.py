"""Where the database is, how indb connects to it, and what its errors mean to a user.

The DSN comes from the ``dsn`` argument (``--dsn``), else ``INDB_DSN``, else libpq's own
``PG*`` variables and service file; when none of ``--dsn``, ``INDB_DSN``, ``PGHOST``,
``PGSERVICE``, ``PGDATABASE`` is set, the private cluster's DSN kept in ``.indb/dsn``
(searched in the current directory and its parents) is used.

>>> from indb.catalog.connection import connect
>>> with connect("dbname=shop", purpose="status") as conn:     # doctest: +SKIP
...     conn.execute("SELECT 1").fetchone()
(1,)
"""

from __future__ import annotations

import os
import re
import weakref
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from indb import errors

LIBPQ_ENV = ("PGHOST", "PGSERVICE", "PGDATABASE")
PRIVATE_DIR = ".indb"

# How often a backend checks, while running a statement, that its client is still
# there (PostgreSQL 14+). A client killed with SIGKILL then loses its backend within
# about this long, and with it every session-level advisory lock it held.
CLIENT_CHECK_INTERVAL_MS = 1000

# A client that vanishes without closing its socket (a dead host, a cut cable) is
# noticed through TCP keepalives within about idle + interval * count seconds.
#: what every indb connection's search_path is pinned to: nothing a stranger can create in
#: (functions and operators are never looked up in pg_temp when it is named last)
PINNED_SEARCH_PATH = "pg_catalog, pg_temp"
_USER_SEARCH_PATH: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()

KEEPALIVES = {"keepalives": "1", "keepalives_idle": "10", "keepalives_interval": "5", "keepalives_count": "3"}


@dataclass(frozen=True)
class ResolvedDsn:
    """A connection string and where it came from (for error messages)."""

    conninfo: str
    source: str
    private_root: Path | None = None


def find_private_dsn(start: str | os.PathLike | None = None) -> Path | None:
    """The nearest ``.indb/dsn`` in ``start`` (default: the current directory) or its parents."""
    here = Path(start or os.getcwd()).absolute()
    for directory in (here, *here.parents):
        candidate = directory / PRIVATE_DIR / "dsn"
        if candidate.is_file():
            return candidate
    return None


def resolve_dsn(dsn: str | None = None, *, cwd: str | os.PathLike | None = None) -> ResolvedDsn:
    """Decide which database to use, following the order described in the module docstring.

    >>> resolve_dsn("dbname=shop").source
    '--dsn'
    """
    if dsn is not None:
        return ResolvedDsn(dsn, "--dsn")
    if os.environ.get("INDB_DSN"):
        return ResolvedDsn(os.environ["INDB_DSN"], "INDB_DSN")
    libpq = [name for name in LIBPQ_ENV if os.environ.get(name)]
    if libpq:
        return ResolvedDsn("", "the libpq environment (" + ", ".join(libpq) + ")")
    found = find_private_dsn(cwd)
    if found is not None:
        return ResolvedDsn(found.read_text().strip(), str(found), found.parent)
    raise errors.UsageError(
        "no database given: pass --dsn, set INDB_DSN (or PGHOST/PGDATABASE/PGSERVICE), "
        "or run ./scripts/demo in the project folder to start a private cluster"
    )


def describe(conninfo: str) -> str:
    """The connection string without its password, for messages.

    >>> describe("host=db port=5432 dbname=shop user=ann password=secret")
    'host=db port=5432 dbname=shop user=ann'
    """
    from psycopg.conninfo import conninfo_to_dict

    try:
        params = conninfo_to_dict(conninfo)
    except Exception:
        return "<unparsable connection string>"
    keep = ("host", "hostaddr", "port", "dbname", "user", "service")
    shown = " ".join(f"{k}={params[k]}" for k in keep if params.get(k))
    return shown or "libpq defaults"


def one_line(text: str) -> str:
    """Collapse a multi-line server or libpq message into one line."""
    return re.sub(r"\s*\n\s*", "; ", str(text).strip()).replace("\t", " ")


def connect(dsn: str | ResolvedDsn | None = None, *, purpose: str, autocommit: bool = True,
            read_only: bool = False, cwd: str | os.PathLike | None = None):
    """Open a psycopg connection for an indb command, translating failures to ``IndbError``.

    ``purpose`` names the command (``"migrate"``): it becomes the connection's
    ``application_name`` unless the DSN sets one, so another session can see who holds
    a lock. The backend is told to notice a dead client while a statement runs.

    >>> conn = connect("dbname=shop", purpose="status", read_only=True)   # doctest: +SKIP
    """
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    resolved = dsn if isinstance(dsn, ResolvedDsn) else resolve_dsn(dsn, cwd=cwd)
    try:
        given = conninfo_to_dict(resolved.conninfo)
    except psycopg.ProgrammingError as e:
        raise errors.UsageError(f"invalid connection string from {resolved.source}: {one_line(e)}") from None
    extra = {"fallback_application_name": f"indb {purpose}"}
    for key, value in KEEPALIVES.items():
        if key not in given:
            extra[key] = value
    if "connect_timeout" not in given and not os.environ.get("PGCONNECT_TIMEOUT"):
        extra["connect_timeout"] = "10"
    try:
        conn = psycopg.connect(resolved.conninfo, autocommit=True, **extra)
    except psycopg.Error as e:
        raise translate(e, resolved) from None
    try:
        if conn.info.server_version >= 140000:
            try:
                conn.execute("SELECT pg_catalog.set_config('client_connection_check_interval', %s, false)",
                             [str(CLIENT_CHECK_INTERVAL_MS)])
            except psycopg.errors.InvalidParameterValue:
                pass  # platforms without the kernel support for it refuse any non-zero value
        # The session's own search_path names user tables (see user_relation); indb's own
        # statements never resolve an operator or function through it.
        _USER_SEARCH_PATH[conn] = conn.execute("SELECT pg_catalog.current_setting('search_path')").fetchone()[0]
        conn.execute("SELECT pg_catalog.set_config('search_path', %s, false)", [PINNED_SEARCH_PATH])
        if read_only:
            conn.execute("SET default_transaction_read_only = on")
        conn.autocommit = autocommit
    except psycopg.Error as e:
        conn.close()
        raise translate(e, resolved) from None
    return conn


def user_search_path(conn) -> str:
    """The search_path the session had before indb pinned it (what the user's names mean);
    for a connection the caller opened, its search_path as it is."""
    if conn in _USER_SEARCH_PATH:
        return _USER_SEARCH_PATH[conn]
    return conn.execute("SELECT pg_catalog.current_setting('search_path')").fetchone()[0]


@contextmanager
def _user_path(conn):
    """The user's search_path for one name lookup, then the session's own back."""
    now = conn.execute("SELECT pg_catalog.current_setting('search_path')").fetchone()[0]
    conn.execute("SELECT pg_catalog.set_config('search_path', %s, false)", [user_search_path(conn)])
    try:
        yield
    finally:
        conn.execute("SELECT pg_catalog.set_config('search_path', %s, false)", [now])


def user_relation(conn, name: str) -> int | None:
    """The oid of the table (view, …) ``name`` means to the user, or None.

    The name is looked up with the session's own search_path, in a statement that only
    resolves a relation name (``pg_catalog.to_regclass``: no operator or function of the
    user's schemas can run), and the pin is put back at once.
    """
    with _user_path(conn):
        return conn.execute("SELECT pg_catalog.to_regclass(%s)::oid", [name]).fetchone()[0]


def user_schema(conn) -> str | None:
    """The schema the user's unqualified new tables go to (the first existing one on their path)."""
    with _user_path(conn):
        return conn.execute("SELECT pg_catalog.current_schema()").fetchone()[0]


@contextmanager
def translating(resolved: ResolvedDsn | None = None):
    """Re-raise any psycopg error inside the block as the matching ``IndbError``."""
    import psycopg

    try:
        yield
    except psycopg.Error as e:
        raise translate(e, resolved) from None


def translate(error: Exception, resolved: ResolvedDsn | None = None) -> errors.IndbError:
    """Turn a psycopg error into the ``IndbError`` a user should see (one line, says what to do)."""
    import psycopg

    where = f"{describe(resolved.conninfo)} (from {resolved.source})" if resolved else "the database"
    message = one_line(getattr(getattr(error, "diag", None), "message_primary", None) or error)
    if isinstance(error, psycopg.errors.InsufficientPrivilege):
        return errors.PermissionError(
            f"{message}: the first `indb migrate` and `indb migrate --component plpython` "
            "need a superuser; later changes need a member of indb_deployer (GRANT indb_deployer TO <user>); "
            "reading needs indb_auditor"
        )
    if isinstance(error, psycopg.OperationalError) or isinstance(error, psycopg.errors.InvalidAuthorizationSpecification):
        text = one_line(str(error))
        hint = "check --dsn / INDB_DSN, that the server runs and accepts connections, and the user's password"
        if "does not exist" in text and "database" in text:
            hint = "create the database first (createdb) or fix dbname in the DSN"
        elif "password authentication failed" in text or "no password supplied" in text:
            hint = "fix the user or password (in the DSN, PGPASSWORD or ~/.pgpass)"
        elif resolved is not None and resolved.private_root is not None:
            hint = f"the private cluster in {resolved.private_root} is not running: start it with ./scripts/localpg start"
        return errors.ConnectionError(f"cannot connect to {where}: {text.rstrip('.')} -- {hint}")
    if isinstance(error, psycopg.ProgrammingError) and "connection" in str(error).lower():
        return errors.UsageError(f"invalid connection string from {resolved.source if resolved else 'the DSN'}: {message}")
    sqlstate = getattr(error, "sqlstate", None)
    return errors.IndbError(f"database error{f' {sqlstate}' if sqlstate else ''}: {message}")


# ---------------------------------------------------------- sessions, server errors


@contextmanager
def as_versions(conn):
    """Create, replace, grant or drop version functions as indb_versions (their owner).

    The server's DDL guard (sql/15_guard.sql) checks every function made this way. The
    role is put back only on success: a failure aborts the transaction, which undoes the
    SET LOCAL too.
    """
    conn.execute("SET LOCAL ROLE indb_versions")
    yield conn
    conn.execute("RESET ROLE")



@contextmanager
def session(dsn, conn, purpose: str, *, read_only: bool = False):
    """The caller's connection, or a new one (closed afterwards) for ``purpose``."""
    if conn is not None:
        yield conn
        return
    own = connect(dsn, purpose=purpose, autocommit=True, read_only=read_only)
    try:
        yield own
    finally:
        own.close()



def server_error(error, *, denied: str | None = None, about: str | None = None) -> errors.IndbError:
    """An error raised by indb's own SQL functions (``indb: ...``) as the matching IndbError, with its hint.

    Any other error goes through ``translate``, except that with ``denied`` a refused
    privilege becomes the PermissionError ``"{about}: {denied}"`` (``about`` defaults to
    the server's message; ``denied`` says what the caller's command needs) instead of
    ``translate``'s general advice.
    """
    import psycopg

    diag = getattr(error, "diag", None)
    message = one_line(getattr(diag, "message_primary", None) or error)
    if not message.startswith("indb: "):
        if denied is not None and isinstance(error, psycopg.errors.InsufficientPrivilege):
            return errors.PermissionError(f"{error.diag.message_primary if about is None else about}: {denied}")
        return translate(error)
    text = message[len("indb: "):]
    hint = getattr(diag, "message_hint", None)
    if hint:
        text += f" ({one_line(hint)})"
    if isinstance(error, psycopg.errors.InsufficientPrivilege):
        return errors.PermissionError(text)
    if isinstance(error, (psycopg.errors.UndefinedObject, psycopg.errors.UndefinedColumn, psycopg.errors.UndefinedTable)):
        return errors.NotFoundError(text)
    if isinstance(error, (psycopg.errors.InvalidParameterValue, psycopg.errors.DuplicateTable,
                          psycopg.errors.DuplicateColumn, psycopg.errors.InvalidName)):
        return errors.UsageError(text)
    return errors.IndbError(text)
