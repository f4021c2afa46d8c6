"""The catalog migrations runner behind ``indb migrate``, ``indb status`` and ``indb validate``.

Migrations are numbered SQL files ``NNNN_name.sql`` shipped in the package
``indb.migrations`` (the core track) and in its sub-directories (optional components
such as ``plpython``, which need a superuser). Each file runs in its own transaction
together with its row in ``indb.schema_migrations``; the whole run holds a
session-level advisory lock keyed by the target schema, taken with a polled try-lock
and followed by a fresh read of the history.

A file may start with header comments that change how it runs::

    -- indb:no-transaction      run in autocommit; the file must hold exactly one
                                statement, and should be idempotent (it is retried
                                when it failed, or when the run died before its
                                history row was written)
    -- indb:requires core 2     refuse to run before core migration 2 is applied
    -- indb:requires superuser  refuse to run unless the session user is a superuser

Repeatable definitions (Flyway's ``R__`` files) hold what is re-created rather than
migrated: functions and views. They live in ``indb/sql/`` (``NN_name.sql``, one
sub-directory per optional component, like the migrations) and, for the PL/Python
engine, are rendered from its Python sources (``GENERATED``). After a component's
versioned migrations, every definition whose checksum differs from the one last
recorded in ``indb.schema_definitions`` is re-created, in file order, in one
transaction with its history rows; ``status``, ``validate`` and ``--dry-run`` show them.
A definition must be idempotent (``CREATE OR REPLACE``; drop what it renames).

Example::

    >>> import indb
    >>> indb.migrate("dbname=shop")                         # doctest: +SKIP
    MigrateResult(component='core', version_before=0, version_after=3, ...)
    >>> indb.migrate("dbname=shop", component="plpython")   # doctest: +SKIP
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.resources
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from indb import errors
from indb.catalog import connection as db

SCHEMA = "indb"
CORE = "core"
# component -> sub-directory of the package indb.migrations holding its files
COMPONENTS = {CORE: "", "plpython": "plpython"}
OWNER_ROLE = "indb_owner"

# Checks run by `indb validate`, as "module:function"; each takes an open connection
# and returns a list of problems (one line each). Later parts of indb add theirs here
# (e.g. that installed scoring functions still match their stored IR).
#: repeatable definitions rendered by code, per component: name -> "module:function" returning SQL text
GENERATED = {"plpython": {"engine": "indb.plpython.install:render"}}
#: the core migration that creates indb.schema_definitions (definitions wait for it)
DEFINITIONS_SINCE = 12

VALIDATION_CHECKS = ["indb.catalog.migrator:check_migrations", "indb.governance.hooks:check_installed_functions",
                     "indb.governance.hooks:check_catalog_security"]

_DEFINITION = re.compile(r"^(\d{2}_)?([a-z0-9][a-z0-9_]*)\.sql$")
_FILENAME = re.compile(r"^(\d{4})_([a-z0-9][a-z0-9_]*)\.sql$")
_DIRECTIVE = re.compile(r"^--\s*indb:(\S+)\s*(.*?)\s*$")
_DOLLAR = re.compile(r"\$(?:[A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$")
_IDENT_CHAR = re.compile(r"[A-Za-z0-9_$\u0080-\uffff]")


# -- files -------------------------------------------------------------------------


def normalise(text: str) -> str:
    """The text with CRLF and CR line endings turned into LF (what the checksum covers)."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def sha256_of(text: str) -> str:
    """sha256 (hex) of ``text`` after :func:`normalise`.

    >>> sha256_of("SELECT 1;\\r\\n") == sha256_of("SELECT 1;\\n")
    True
    """
    return hashlib.sha256(normalise(text).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Statement:
    """One SQL statement of a migration file, with where it starts."""

    number: int
    line: int
    text: str

    @property
    def summary(self) -> str:
        first = self.text.strip().splitlines()[0] if self.text.strip() else ""
        return first if len(first) <= 80 else first[:77] + "..."


class SplitError(ValueError):
    pass


def split_statements(text: str) -> list[Statement]:
    """Split SQL text at top-level semicolons, respecting quotes, comments and $tag$ bodies.

    SQL-standard function bodies (``BEGIN ATOMIC ... END``) are not supported: use a
    dollar-quoted body in migrations.

    >>> [s.text for s in split_statements("SELECT ';'; -- x;\\nSELECT $a$;$a$")]
    ["SELECT ';'", 'SELECT $a$;$a$']
    """
    chunks: list[tuple[int, int]] = []
    i, n, start = 0, len(text), 0
    while i < n:
        c = text[i]
        if c == "-" and text.startswith("--", i):
            end = text.find("\n", i)
            i = n if end < 0 else end + 1
        elif c == "/" and text.startswith("/*", i):
            i = _skip_block_comment(text, i)
        elif c == "'":
            escapes = i > 0 and text[i - 1] in "eE" and (i < 2 or not _IDENT_CHAR.match(text[i - 2]))
            i = _skip_quoted(text, i, "'", backslash=escapes)
        elif c == '"':
            i = _skip_quoted(text, i, '"', backslash=False)
        elif c == "$" and (i == 0 or not _IDENT_CHAR.match(text[i - 1])) and _DOLLAR.match(text, i):
            tag = _DOLLAR.match(text, i).group(0)
            end = text.find(tag, i + len(tag))
            if end < 0:
                raise SplitError(f"unterminated {tag} quote starting at line {text.count(chr(10), 0, i) + 1}")
            i = end + len(tag)
        elif c == ";":
            chunks.append((start, i))
            start = i = i + 1
        else:
            i += 1
    chunks.append((start, n))
    statements = []
    for begin, end in chunks:
        offset = _code_start(text, begin, end)
        if offset is None:
            continue
        body = text[offset:end].rstrip()
        statements.append(Statement(len(statements) + 1, text.count("\n", 0, offset) + 1, body))
    return statements


def _skip_block_comment(text: str, i: int) -> int:
    depth, i = 0, i
    while i < len(text):
        if text.startswith("/*", i):
            depth, i = depth + 1, i + 2
        elif text.startswith("*/", i):
            depth, i = depth - 1, i + 2
            if depth == 0:
                return i
        else:
            i += 1
    raise SplitError("unterminated /* comment")


def _skip_quoted(text: str, i: int, quote: str, *, backslash: bool) -> int:
    j = i + 1
    while j < len(text):
        c = text[j]
        if backslash and c == "\\":
            j += 2
            continue
        if c == quote:
            if text.startswith(quote * 2, j):
                j += 2
                continue
            return j + 1
        j += 1
    raise SplitError(f"unterminated {quote} quote starting at line {text.count(chr(10), 0, i) + 1}")


def _code_start(text: str, begin: int, end: int) -> int | None:
    """Offset of the first character in text[begin:end] that is neither space nor comment."""
    i = begin
    while i < end:
        if text[i].isspace():
            i += 1
        elif text.startswith("--", i):
            nl = text.find("\n", i)
            i = end if nl < 0 else nl + 1
        elif text.startswith("/*", i):
            i = _skip_block_comment(text, i)
        else:
            return i
    return None


@dataclass(frozen=True)
class Migration:
    """One migration file of one component."""

    component: str
    version: int
    name: str
    filename: str
    text: str
    sha256: str
    transactional: bool
    requires: tuple[tuple[str, int], ...]
    statements: tuple[Statement, ...]
    superuser: bool = False

    @property
    def label(self) -> str:
        return f"{self.component} migration {self.version:04d} ({self.filename})"


def parse_migration(component: str, filename: str, raw: str) -> Migration:
    """Build a :class:`Migration` from a file's name and text; errors name the file."""
    match = _FILENAME.match(filename)
    if not match:
        raise errors.MigrationError(f"{component} migration file {filename!r} is not named NNNN_name.sql (lower case)")
    text = normalise(raw)
    where = f"{component} migration {filename}"
    transactional, requires, superuser = _directives(text, where)
    statements = _statements(text, where)
    if not transactional and len(statements) != 1:
        raise errors.MigrationError(
            f"{component} migration {filename} is marked indb:no-transaction but holds {len(statements)} statements: "
            "a non-transactional migration must hold exactly one; split it into several files"
        )
    return Migration(component, int(match.group(1)), match.group(2), filename, text, sha256_of(text),
                     transactional, tuple(requires), statements, superuser)


def _statements(text: str, where: str) -> tuple[Statement, ...]:
    """The file's statements; a text that cannot be split is an error naming ``where``."""
    try:
        return tuple(split_statements(text))
    except SplitError as e:
        raise errors.MigrationError(f"{where}: {e}") from None


def _directives(text: str, where: str) -> tuple[bool, list[tuple[str, int]], bool]:
    """(transactional, requires, superuser) from the header comments of a file."""
    transactional, requires, superuser = True, [], False
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if not stripped.startswith("--"):
            break
        directive = _DIRECTIVE.match(stripped)
        if not directive:
            continue
        key, value = directive.group(1), directive.group(2)
        if key == "no-transaction" and not value:
            transactional = False
        elif key == "requires" and value == "superuser":
            superuser = True
        elif key == "requires" and re.fullmatch(r"[a-z0-9_]+ \d+", value):
            other, version = value.split()
            requires.append((other, int(version)))
        else:
            raise errors.MigrationError(
                f"{where}: unknown header directive '-- indb:{key} {value}'. "
                "Known: '-- indb:no-transaction', '-- indb:requires <component> <version>', "
                "'-- indb:requires superuser'"
            )
    return transactional, requires, superuser


def migrations_source(component: str = CORE):
    """The directory (an importlib.resources Traversable) holding a component's files."""
    if component not in COMPONENTS:
        raise errors.UsageError(f"unknown component {component!r}: known components are {', '.join(COMPONENTS)}")
    root = importlib.resources.files("indb.migrations")
    return root / COMPONENTS[component] if COMPONENTS[component] else root


def load_migrations(component: str = CORE, source=None) -> list[Migration]:
    """The component's migrations in version order.

    ``source`` is a directory (path or Traversable) to read instead of the shipped
    files; tests use it for migrations that must never ship.

    >>> [m.filename for m in load_migrations()][:1]
    ['0001_roles_and_schema.sql']
    """
    if source is None:
        source = migrations_source(component)
    elif isinstance(source, (str, os.PathLike)):
        source = Path(source)
    found: dict[int, Migration] = {}
    for entry in sorted(source.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".sql") or not entry.is_file():
            continue
        migration = parse_migration(component, entry.name, entry.read_text(encoding="utf-8"))
        if migration.version in found:
            raise errors.MigrationError(
                f"{component} migrations {found[migration.version].filename} and {entry.name} share version "
                f"{migration.version:04d}: renumber one of them"
            )
        found[migration.version] = migration
    return [found[v] for v in sorted(found)]


@dataclass(frozen=True)
class Definition:
    """One repeatable definition of one component: re-created whenever its checksum changes."""

    component: str
    name: str
    filename: str
    text: str
    sha256: str
    requires: tuple[tuple[str, int], ...]
    statements: tuple[Statement, ...]
    superuser: bool = False

    transactional = True  # always: a definition runs with the others of its component in one transaction

    @property
    def label(self) -> str:
        return f"{self.component} definition {self.name} ({self.filename})"


def parse_definition(component: str, filename: str, raw: str) -> Definition:
    """Build a :class:`Definition` from a file's name and text; errors name the file."""
    match = _DEFINITION.match(filename)
    if not match:
        raise errors.MigrationError(
            f"{component} definition file {filename!r} is not named NN_name.sql or name.sql (lower case)")
    text = normalise(raw)
    where = f"{component} definition {filename}"
    transactional, requires, superuser = _directives(text, where)
    if not transactional:
        raise errors.MigrationError(f"{where}: definitions always run in one transaction; remove '-- indb:no-transaction'")
    statements = _statements(text, where)
    return Definition(component, match.group(2), filename, text, sha256_of(text), tuple(requires), statements, superuser)


def definitions_source(component: str = CORE):
    """The directory (an importlib.resources Traversable) holding a component's definition files."""
    if component not in COMPONENTS:
        raise errors.UsageError(f"unknown component {component!r}: known components are {', '.join(COMPONENTS)}")
    root = importlib.resources.files("indb.sql")
    return root / COMPONENTS[component] if COMPONENTS[component] else root


def load_definitions(component: str = CORE) -> list[Definition]:
    """The component's repeatable definitions in the order they are applied (by file name).

    >>> [d.name for d in load_definitions("plpython")]
    ['engine']
    """
    source = definitions_source(component)
    found: dict[str, Definition] = {}
    entries = sorted((e for e in source.iterdir() if e.name.endswith(".sql") and e.is_file()), key=lambda e: e.name) \
        if source.is_dir() else []
    texts = [(e.name, e.read_text(encoding="utf-8")) for e in entries]
    for name, spec in GENERATED.get(component, {}).items():
        module, _, function = spec.partition(":")
        texts.append((f"{name}.sql", getattr(importlib.import_module(module), function)()))
    for filename, text in texts:
        d = parse_definition(component, filename, text)
        if d.name in found:
            raise errors.MigrationError(
                f"{component} definitions {found[d.name].filename} and {filename} share the name {d.name!r}: rename one")
        found[d.name] = d
    return list(found.values())


# -- the database side -------------------------------------------------------------


@dataclass(frozen=True)
class Applied:
    """A row of ``indb.schema_migrations``."""

    component: str
    version: int
    name: str
    sha256: str
    applied_at: object
    applied_by: str
    execution_ms: int
    success: bool


@dataclass(frozen=True)
class AppliedDefinition:
    """The latest row of ``indb.schema_definitions`` for one definition."""

    component: str
    name: str
    sha256: str
    applied_at: object
    applied_by: str
    execution_ms: int


@dataclass
class ComponentStatus:
    """What is applied and pending for one component, and what is wrong with it."""

    component: str
    migrations: list[Migration]
    applied: dict[int, Applied]
    problems: list[str] = field(default_factory=list)
    definitions: list[Definition] = field(default_factory=list)
    definitions_applied: dict[str, AppliedDefinition] = field(default_factory=dict)

    @property
    def pending_definitions(self) -> list[Definition]:
        """Definitions never applied, or changed since they were last applied."""
        return [d for d in self.definitions
                if d.name not in self.definitions_applied or self.definitions_applied[d.name].sha256 != d.sha256]

    @property
    def installed(self) -> bool:
        return any(a.success for a in self.applied.values())

    @property
    def version(self) -> int:
        return max((v for v, a in self.applied.items() if a.success), default=0)

    @property
    def latest(self) -> int:
        return max((m.version for m in self.migrations), default=0)

    @property
    def pending(self) -> list[Migration]:
        return [m for m in self.migrations if m.version not in self.applied or not self.applied[m.version].success]

    @property
    def failed(self) -> list[Applied]:
        return [a for a in self.applied.values() if not a.success]


@dataclass
class CatalogStatus:
    """The result of :func:`status`."""

    database: str
    server_version: str
    catalog_installed: bool
    components: list[ComponentStatus]
    extensions: dict[str, str]

    @property
    def up_to_date(self) -> bool:
        """True when every installed component (and core) has nothing pending and no problem."""
        for comp in self.components:
            if comp.problems or comp.failed:
                return False
            if (comp.component == CORE or comp.installed) and (comp.pending or comp.pending_definitions):
                return False
        return True


@dataclass
class MigrateResult:
    """The result of :func:`migrate`; ``sql`` holds the script a dry run would execute."""

    component: str
    dry_run: bool
    version_before: int
    version_after: int
    planned: list[Migration]
    applied: list[tuple[Migration, int]] = field(default_factory=list)
    sql: str | None = None
    #: the repeatable definitions (re-)created, and the planned ones of a dry run
    definitions: list[Definition] = field(default_factory=list)
    #: functions of live SQL versions re-rendered from their IR (``name@version/output``)
    refreshed: list[str] = field(default_factory=list)


@dataclass
class ValidationReport:
    """The result of :func:`validate`: ``ok`` when ``problems`` is empty."""

    checked: list[str]
    problems: list[str]
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def lock_key(schema: str = SCHEMA) -> int:
    """The advisory lock key (signed 64-bit) that serialises migrations of ``schema``."""
    digest = hashlib.sha256(f"indb.migrate:{schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _has_table(conn, name: str) -> bool:
    """Whether the catalog schema has table ``name``."""
    # pg_class is readable by everyone; to_regclass would need USAGE on the schema.
    row = conn.execute(
        "SELECT EXISTS (SELECT FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relname = %s)", [SCHEMA, name]).fetchone()
    return bool(row[0])


def _catalog_installed(conn) -> bool:
    return _has_table(conn, "schema_migrations")


def read_history(conn) -> dict[str, dict[int, Applied]]:
    """Every history row by component and version ({} when the catalog is not installed)."""
    if not _catalog_installed(conn):
        return {}
    rows = conn.execute(
        "SELECT component, version, name, sha256, applied_at, applied_by, execution_ms, success"
        " FROM indb.schema_migrations ORDER BY component, version").fetchall()
    history: dict[str, dict[int, Applied]] = {}
    for row in rows:
        history.setdefault(row[0], {})[row[1]] = Applied(*row)
    return history


def read_definitions(conn) -> dict[str, dict[str, AppliedDefinition]]:
    """The latest history row of every repeatable definition, by component and name."""
    if not _has_table(conn, "schema_definitions"):
        return {}
    rows = conn.execute(
        "SELECT DISTINCT ON (component, name) component, name, sha256, applied_at, applied_by, execution_ms"
        " FROM indb.schema_definitions ORDER BY component, name, id DESC").fetchall()
    found: dict[str, dict[str, AppliedDefinition]] = {}
    for row in rows:
        found.setdefault(row[0], {})[row[1]] = AppliedDefinition(*row)
    return found


def check_component(migrations: list[Migration], applied: dict[int, Applied], component: str) -> list[tuple[str, str]]:
    """(kind, message) for every way the history and the files disagree."""
    problems = []
    files = {m.version: m for m in migrations}
    latest = max(files, default=0)
    done = {v: a for v, a in applied.items() if a.success}
    for version, row in sorted(done.items()):
        m = files.get(version)
        if m is None:
            if version > latest:
                problems.append(("newer", (
                    f"the database has {component} migration {version:04d} ({row.name}) applied but this indb only "
                    f"knows {component} migrations up to {latest:04d}: the database is newer than the code; "
                    "use the indb release that applied it (pip install -U indb) and never migrate with an older one")))
            else:
                problems.append(("missing", (
                    f"{component} migration {version:04d} ({row.name}) is applied but its file is missing from this "
                    f"indb: restore {version:04d}_{row.name}.sql")))
        elif m.sha256 != row.sha256:
            problems.append(("checksum", (
                f"{m.label} was changed after it was applied (sha256 applied {row.sha256[:12]}, file "
                f"{m.sha256[:12]}): restore the applied text and put the change in a new migration")))
        elif m.name != row.name:
            problems.append(("renamed", (
                f"{m.label} was applied as {version:04d}_{row.name}.sql: restore the file's original name")))
    top = max(done, default=0)
    for m in migrations:
        if m.version < top and m.version not in done:
            problems.append(("order", (
                f"{m.label} is not applied but {component} migration {top:04d} is: migrations run forward only; "
                f"renumber it after {top:04d}")))
    return problems


def check_migrations(conn) -> list[str]:
    """Validation check: every component's history matches its files."""
    history = read_history(conn)
    problems = []
    for component in COMPONENTS:
        problems += [msg for _, msg in check_component(load_migrations(component), history.get(component, {}), component)]
    return problems


def _acting_role(conn) -> str | None:
    """indb_owner when the session user reaches it only through SET ROLE (a deployer)."""
    row = conn.execute(
        "SELECT r.rolsuper, CASE WHEN EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = %s)"
        " THEN pg_catalog.pg_has_role(session_user, %s, 'MEMBER') ELSE false END"
        " FROM pg_catalog.pg_roles r WHERE r.rolname = session_user", [OWNER_ROLE, OWNER_ROLE]).fetchone()
    superuser, member = row
    return OWNER_ROLE if (member and not superuser) else None


#: the core migration after which nobody acts as indb_owner (0013_role_separation.sql)
ROLE_SEPARATION = 13


def _role_separated(history: dict[str, dict[int, Applied]]) -> bool:
    """True once core 0013 is applied: from then on only a superuser changes the catalog."""
    applied = history.get(CORE, {}).get(ROLE_SEPARATION)
    return bool(applied and applied.success)


def _require_superuser(conn, steps, *, every: bool = False) -> None:
    """Refuse, before anything runs, a plan holding a step marked ``-- indb:requires superuser``
    (``every``: a plan holding any step at all, once the catalog is role-separated)."""
    needs = list(steps) if every else [s for s in steps if s.superuser]
    if needs and not conn.execute("SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = session_user").fetchone()[0]:
        why = ("since core 0013 nobody acts as indb_owner, so changing the catalog is a DBA's job" if every else
               "it creates or replaces objects owned by indb's roles")
        raise errors.PermissionError(
            f"permission denied to apply {needs[0].label}: indb migrate must be run by a superuser (a DBA), since "
            f"{why}; nothing was applied")


def _acquire_lock(conn, key: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        if conn.execute("SELECT pg_catalog.pg_try_advisory_lock(%s)", [key]).fetchone()[0]:
            return
        if time.monotonic() >= deadline:
            raise errors.LockTimeout(_lock_holder_message(conn, key, timeout))
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, 0.5)


def _lock_holder_message(conn, key: int, timeout: float) -> str:
    row = conn.execute(
        "SELECT a.pid, a.application_name, a.usename, a.client_addr::text, a.backend_start, a.state"
        " FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid"
        " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
        " AND l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())"
        " AND l.classid::bigint = %s AND l.objid::bigint = %s LIMIT 1",
        [(key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF]).fetchone()
    waited = f"waited {timeout:g} s for the migration lock on schema {SCHEMA}"
    if row is None:
        return f"{waited}; its holder has just let go: run the command again"
    pid, app, user, addr, started, state = row
    since = started.strftime("%Y-%m-%d %H:%M:%S") if started else "?"
    return (f"{waited}: it is held by pid {pid} (application_name {app!r}, user {user}, from {addr or 'local socket'}, "
            f"connected since {since}, {state}). Wait for that migration to finish, raise --lock-timeout, or if it is "
            f"stuck end it with SELECT pg_terminate_backend({pid})")


def _execute(conn, m: Migration, st: Statement) -> None:
    import psycopg

    try:
        conn.execute(st.text)
    except psycopg.Error as e:
        where = f"{m.label} failed at statement {st.number} (line {st.line}): {st.summary}"
        message = db.one_line(getattr(e.diag, "message_primary", None) or e)
        if isinstance(e, psycopg.OperationalError) and conn.closed:
            raise errors.ConnectionError(f"{where}: the connection was lost ({message})") from None
        undo = "rolled back; nothing of it was applied" if m.transactional else "it ran outside a transaction: check what it left"
        hint = getattr(e.diag, "message_hint", None)
        if isinstance(e, psycopg.errors.InsufficientPrivilege):
            raise errors.PermissionError(
                f"{where}: {message} ({undo}). Hint: the first `indb migrate` and every `--component plpython` "
                "migration must be run by a superuser") from None
        if m.component == "plpython" and e.sqlstate == "58P01":
            hint = "install PL/Python on the database server: apt-get install postgresql-plpython3-<major> python3-numpy"
        raise errors.MigrationError(f"{where}: {message} ({undo})" + (f". Hint: {db.one_line(hint)}" if hint else "")) from None


def _record(conn, m: Migration, elapsed_ms: int, success: bool, acting_role: str | None) -> None:
    """Write the history row: inside the migration's transaction, or alone for an autocommit file."""
    from psycopg import sql

    in_transaction = m.transactional and success
    conn.execute("RESET ROLE")
    if acting_role:
        conn.execute(sql.SQL("SET LOCAL ROLE {}" if in_transaction else "SET ROLE {}").format(sql.Identifier(acting_role)))
    try:
        cur = conn.execute(
            "INSERT INTO indb.schema_migrations AS h (component, version, name, sha256, execution_ms, success)"
            " VALUES (%s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (component, version) DO UPDATE SET name = EXCLUDED.name, sha256 = EXCLUDED.sha256,"
            " applied_at = pg_catalog.clock_timestamp(), applied_by = session_user,"
            " execution_ms = EXCLUDED.execution_ms, success = EXCLUDED.success"
            " WHERE NOT h.success",
            [m.component, m.version, m.name, m.sha256, elapsed_ms, success])
    finally:
        if acting_role and not in_transaction:
            conn.execute("RESET ROLE")
    if cur.rowcount != 1:
        raise errors.MigrationError(f"{m.label} is already recorded as applied by another process; run indb status")


def _apply(conn, m: Migration, acting_role: str | None) -> int:
    from psycopg import sql

    started = time.monotonic()
    if m.transactional:
        with conn.transaction():
            if acting_role:
                conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(acting_role)))
            for st in m.statements:
                _execute(conn, m, st)
            elapsed = int((time.monotonic() - started) * 1000)
            _record(conn, m, elapsed, True, acting_role)
        return elapsed
    if acting_role:
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(acting_role)))
    try:
        _execute(conn, m, m.statements[0])
    except errors.MigrationError:
        if not conn.closed:
            _record(conn, m, int((time.monotonic() - started) * 1000), False, acting_role)
        raise
    finally:
        if not conn.closed:
            conn.execute("RESET ROLE")
    elapsed = int((time.monotonic() - started) * 1000)
    _record(conn, m, elapsed, True, acting_role)
    return elapsed


def _apply_definitions(conn, pending: list[Definition], acting_role: str | None,
                       say: Callable[[str], None]) -> None:
    """Re-create ``pending`` in one transaction, each with its history row."""
    from psycopg import sql

    with conn.transaction():
        if acting_role:
            conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(acting_role)))
        for d in pending:
            started = time.monotonic()
            for st in d.statements:
                _execute(conn, d, st)
            elapsed = int((time.monotonic() - started) * 1000)
            conn.execute(
                "INSERT INTO indb.schema_definitions (component, name, sha256, execution_ms) VALUES (%s, %s, %s, %s)",
                [d.component, d.name, d.sha256, elapsed])
            say(f"{d.component}: re-created definition {d.filename} in {elapsed} ms")


def _definitions_plan(status: ComponentStatus, history: dict[str, dict[int, Applied]], to: int | None,
                      plan: list[Migration]) -> list[Definition]:
    """The definitions to re-create after ``plan``: none while versioned migrations stay pending."""
    if to is not None and to < status.latest:
        return []
    core = max((v for v, a in history.get(CORE, {}).items() if a.success), default=0)
    if status.component == CORE:
        core = max([core] + [m.version for m in plan])
    pending = status.pending_definitions
    if pending and core < DEFINITIONS_SINCE:
        return []  # they wait for the core migration that records them; status shows them pending
    versions = _versions(history)
    versions[status.component] = max([versions.get(status.component, 0)] + [m.version for m in plan])
    versions[CORE] = core
    _check_requires(pending, versions)
    return pending


def _versions(history: dict[str, dict[int, Applied]]) -> dict[str, int]:
    """The applied version of every component in ``history``."""
    return {c: max((v for v, a in rows.items() if a.success), default=0) for c, rows in history.items()}


def _check_requires(steps, versions: dict[str, int]) -> None:
    """Refuse a migration or definition whose ``-- indb:requires <component> N`` is not met."""
    for step in steps:
        for other, needed in step.requires:
            already = versions.get(other, 0)
            if already < needed:
                raise errors.MigrationError(
                    f"{step.label} needs {other} migration {needed:04d}, but the database has {other} at "
                    f"{already:04d}: run `indb migrate" + ("" if other == CORE else f" --component {other}") + "` first")


def _plan(status: ComponentStatus, history: dict[str, dict[int, Applied]], to: int | None,
          catalog_installed: bool) -> list[Migration]:
    problems = check_component(status.migrations, status.applied, status.component)
    for kind, message in problems:
        raise (errors.ChecksumMismatch if kind == "checksum" else errors.MigrationError)(message)
    if status.component != CORE and not catalog_installed:
        raise errors.MigrationError(
            f"the indb catalog is not installed in this database: run `indb migrate` (as a superuser) before "
            f"`indb migrate --component {status.component}`")
    known = [m.version for m in status.migrations]
    if to is not None:
        if to not in known:
            raise errors.UsageError(
                f"there is no {status.component} migration {to:04d}; known versions: "
                + (", ".join(f"{v:04d}" for v in known) or "none"))
        if to < status.version:
            raise errors.MigrationError(
                f"{status.component} is already at version {status.version:04d}, past --to {to:04d}: "
                "migrations run forward only")
    plan = [m for m in status.pending if to is None or m.version <= to]
    _check_requires(plan, _versions(history))
    return plan


def _dry_run_sql(conn, status: ComponentStatus, plan: list[Migration], acting_role: str | None,
                 definitions: list[Definition] = ()) -> str:
    from psycopg import sql

    todo = [m.filename for m in plan] + [f"definition {d.filename}" for d in definitions]
    head = (f"-- indb migrate --dry-run: {status.component} is at version {status.version:04d}; "
            + (f"this would apply {', '.join(todo)}" if todo else "nothing to apply"))
    parts = [head]
    for m in plan:
        if m.transactional:
            parts.append(f"\n-- {m.label}, sha256 {m.sha256}: one transaction with its history row\nBEGIN;")
            if acting_role:
                parts.append(sql.SQL("SET LOCAL ROLE {};").format(sql.Identifier(acting_role)).as_string(conn))
        else:
            parts.append(f"\n-- {m.label}, sha256 {m.sha256}: runs in autocommit (indb:no-transaction)")
        parts += [st.text.rstrip() + ";" for st in m.statements]
        parts.append(f"-- then records {m.component} {m.version:04d} ({m.name}) in indb.schema_migrations")
        if m.transactional:
            parts.append("COMMIT;")
    if definitions:
        parts.append("\n-- repeatable definitions whose checksum changed: one transaction with their history rows\nBEGIN;")
        if acting_role:
            parts.append(sql.SQL("SET LOCAL ROLE {};").format(sql.Identifier(acting_role)).as_string(conn))
        for d in definitions:
            parts.append(f"-- {d.label}, sha256 {d.sha256}")
            parts += [st.text.rstrip() + ";" for st in d.statements]
            parts.append(f"-- then records {d.component} definition {d.name} in indb.schema_definitions")
        parts.append("COMMIT;")
    return "\n".join(parts) + "\n"


# -- the version check every command makes -------------------------------------------


@functools.lru_cache(maxsize=None)
def shipped(component: str) -> tuple[int, tuple[tuple[str, str], ...]]:
    """(latest migration, (definition name, sha256)…) this indb ships for a component."""
    latest = max((m.version for m in load_migrations(component)), default=0)
    return latest, tuple(sorted((d.name, d.sha256) for d in load_definitions(component)))


def _catalog_rows(conn) -> list[tuple] | None:
    """What :sql:`indb.catalog_state()` returns; without it, the history read directly (None when unreadable)."""
    if conn.execute("SELECT pg_catalog.to_regprocedure('indb.catalog_state()') IS NOT NULL").fetchone()[0]:
        return conn.execute("SELECT kind, component, name, version, sha256 FROM indb.catalog_state()").fetchall()
    if not conn.execute("SELECT pg_catalog.has_table_privilege('indb.schema_migrations', 'SELECT')").fetchone()[0]:
        return None
    return [("migration", c, n, v, sha) for c, n, v, sha in conn.execute(
        "SELECT component, name, version, sha256 FROM indb.schema_migrations WHERE success").fetchall()]


def require_current(conn) -> None:
    """Refuse, in one line, a catalog that is not the one this indb was made for.

    Older (a migration or a definition of this indb not applied): "run `indb migrate`",
    before anything is done. Newer (a migration this indb does not know): refused with
    both versions named, since an older indb could break what a newer one set up.
    ``migrate``, ``status``, ``validate`` (which report the version themselves) and ``compile``
    are the commands that do not make this check.
    """
    if not _catalog_installed(conn):
        raise errors.MigrationError("this database has no indb catalog (schema indb): a superuser runs `indb migrate` first")
    rows = _catalog_rows(conn)
    latest_core = shipped(CORE)[0]
    if rows is None:
        raise errors.MigrationError(
            f"the indb catalog in this database is older than this indb (which needs core migration {latest_core:04d}): "
            "a superuser runs `indb migrate`")
    for component in COMPONENTS:
        latest, definitions = shipped(component)
        versions = [v for kind, c, _, v, _ in rows if kind == "migration" and c == component]
        if not versions and component != CORE:
            continue  # an optional component that is not installed
        at = max(versions, default=0)
        how = "`indb migrate`" if component == CORE else f"`indb migrate --component {component}`"
        if at > latest:
            raise errors.MigrationError(
                f"the indb catalog is newer than this indb: {component} migration {at:04d} is applied, this indb knows "
                f"up to {latest:04d}; use the indb release that migrated it (pip install -U indb)")
        if at < latest:
            raise errors.MigrationError(
                f"the indb catalog is older than this indb: {component} migration {at:04d} is applied, this indb needs "
                f"{latest:04d}; a superuser runs {how}")
        applied = {n: sha for kind, c, n, _, sha in rows if kind == "definition" and c == component}
        stale = [n for n, sha in definitions if applied.get(n) != sha]
        if stale:
            raise errors.MigrationError(
                f"the indb catalog's {component} definitions ({', '.join(stale)}) are not this indb's: "
                f"a superuser runs {how}")


def check_current(dsn: str | None = None) -> None:
    """:func:`require_current` on a connection of its own (the command line's check before a command)."""
    resolved = db.resolve_dsn(dsn)
    with db.connect(resolved, purpose="version check", read_only=True) as conn, db.translating(resolved):
        require_current(conn)


def _component_status(component: str, history: dict[str, dict[int, Applied]], source=None,
                      definitions: dict[str, dict[str, AppliedDefinition]] | None = None) -> ComponentStatus:
    migrations = load_migrations(component, source)
    applied = history.get(component, {})
    status = ComponentStatus(component, migrations, applied)
    if component in COMPONENTS:  # a track read from ``source`` still gets the shipped definitions
        status.definitions = load_definitions(component)
        status.definitions_applied = (definitions or {}).get(component, {})
    status.problems = [msg for _, msg in check_component(migrations, applied, component)]
    return status


def migrate(dsn: str | None = None, *, component: str = CORE, to: int | None = None, dry_run: bool = False,
            lock_timeout: float = 60.0, source=None,
            progress: Callable[[str], None] | None = None) -> MigrateResult:
    """Bring one component of the catalog to its latest version (or to version ``to``).

    ``dry_run`` returns the SQL it would run in ``result.sql`` and changes nothing.
    ``lock_timeout`` is how long to wait, in seconds, for another migration of this
    database to finish. ``source`` reads the files from a directory instead of the
    package (for components that never ship, such as tests' own).

    >>> result = migrate("dbname=shop", progress=print)          # doctest: +SKIP
    core: applied 0001_roles_and_schema.sql in 41 ms
    >>> result.version_after                                     # doctest: +SKIP
    3
    """
    import psycopg

    if lock_timeout < 0:
        raise errors.UsageError("--lock-timeout must be zero or more seconds")
    if source is None and component not in COMPONENTS:
        raise errors.UsageError(f"unknown component {component!r}: known components are {', '.join(COMPONENTS)}")
    load_migrations(component, source)  # a broken file fails before any connection is made
    resolved = db.resolve_dsn(dsn)
    say = progress or (lambda _msg: None)
    conn = db.connect(resolved, purpose="migrate", read_only=dry_run)
    try:
        with db.translating(resolved):
            if not dry_run:
                conn.execute("SET idle_in_transaction_session_timeout = '60s'")
            acting_role = _acting_role(conn)
            if dry_run:
                history = read_history(conn)
                if _role_separated(history):
                    acting_role = None
                status = _component_status(component, history, source, read_definitions(conn))
                plan = _plan(status, history, to, _catalog_installed(conn))
                todo = _definitions_plan(status, history, to, plan)
                return MigrateResult(component, True, status.version, status.version, plan,
                                     sql=_dry_run_sql(conn, status, plan, acting_role, todo), definitions=todo)
            key = lock_key()
            _acquire_lock(conn, key, lock_timeout)
            try:
                history = read_history(conn)  # re-read: another process may have migrated meanwhile
                status = _component_status(component, history, source, read_definitions(conn))
                plan = _plan(status, history, to, _catalog_installed(conn))
                todo = _definitions_plan(status, history, to, plan)
                result = MigrateResult(component, False, status.version, status.version, plan)
                separated = _role_separated(history)
                if separated:
                    # a deployer may still be a member of indb_owner through another database of
                    # this cluster whose catalog predates 0013 (roles are cluster-wide): not here
                    acting_role = None
                _require_superuser(conn, [*plan, *todo], every=separated)
                for m in plan:
                    elapsed = _apply(conn, m, acting_role)
                    result.applied.append((m, elapsed))
                    result.version_after = m.version
                    say(f"{component}: applied {m.filename} in {elapsed} ms")
                if todo:
                    _apply_definitions(conn, todo, acting_role, say)
                    result.definitions = todo
                if component == CORE and source is None and (separated or any(m.version == ROLE_SEPARATION for m in plan)):
                    # versions this indb renders differently (indb.registry.refresh)
                    from indb.registry.refresh import refresh_sql_versions  # noqa: PLC0415

                    result.refreshed = refresh_sql_versions(conn, say)
                return result
            finally:
                if not conn.closed:
                    try:
                        conn.execute("SELECT pg_catalog.pg_advisory_unlock(%s)", [key])
                    except psycopg.Error:
                        pass  # the lock goes with the session anyway
    finally:
        conn.close()


def status(dsn: str | None = None) -> CatalogStatus:
    """Applied and pending migrations of every component, and which components are installed.

    >>> s = status("dbname=shop")                               # doctest: +SKIP
    >>> [(c.component, c.version, len(c.pending)) for c in s.components]   # doctest: +SKIP
    [('core', 3, 0), ('plpython', 0, 1)]
    """
    resolved = db.resolve_dsn(dsn)
    with db.connect(resolved, purpose="status", read_only=True) as conn, db.translating(resolved):
        history = read_history(conn)
        definitions = read_definitions(conn)
        extensions = dict(conn.execute(
            "SELECT extname, extversion FROM pg_catalog.pg_extension WHERE extname = ANY(%s)",
            [["plpython3u"]]).fetchall())
        return CatalogStatus(
            database=db.describe(resolved.conninfo) + f" (from {resolved.source})",
            server_version=conn.execute("SHOW server_version").fetchone()[0],
            catalog_installed=_catalog_installed(conn),
            components=[_component_status(c, history, definitions=definitions) for c in COMPONENTS],
            extensions=extensions,
        )


def validate(dsn: str | None = None, *, checks: Iterable[str] | None = None) -> ValidationReport:
    """Run every validation check (see ``VALIDATION_CHECKS``) and report what is wrong.

    >>> report = validate("dbname=shop")                        # doctest: +SKIP
    >>> report.ok, report.problems                              # doctest: +SKIP
    (True, [])
    """
    resolved = db.resolve_dsn(dsn)
    report = ValidationReport([], [])
    with db.connect(resolved, purpose="validate", read_only=True) as conn, db.translating(resolved):
        if not _catalog_installed(conn):
            report.notes.append("the indb catalog is not installed in this database (run indb migrate)")
        for spec in (VALIDATION_CHECKS if checks is None else checks):
            module, _, name = spec.partition(":")
            check = getattr(importlib.import_module(module), name)
            report.checked.append(spec)
            report.problems += check(conn)
        history = read_history(conn)
        definitions = read_definitions(conn)
        for component in COMPONENTS:
            comp = _component_status(component, history, definitions=definitions)
            if not (component == CORE or history.get(component)):
                continue
            run = "(run indb migrate" + ("" if component == CORE else f" --component {component}") + ")"
            if comp.pending:
                report.notes.append(f"{component}: {len(comp.pending)} migration(s) pending {run}")
            if comp.pending_definitions:
                report.notes.append(f"{component}: definition(s) {', '.join(d.name for d in comp.pending_definitions)} "
                                    f"changed since they were applied {run}")
    return report
