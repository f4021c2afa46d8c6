"""Database fixtures: a real PostgreSQL (with PL/Python and numpy), DuckDB and SQLite.

Where PostgreSQL comes from, in order:

1. ``INDB_TEST_DSN`` (a superuser DSN; each test gets its own database on that server);
2. a throwaway cluster started from the local binaries (``indb.catalog.localpg``: a temporary
   directory, a free port, settings tuned for tests), once per session;
3. testcontainers, when it is installed and a Docker engine is reachable.

With none of them the PostgreSQL tests are skipped, except under ``CI=true``, where a
missing database is a failure.

Fixtures:

``pg_server``      the session's server (``.dsn(dbname)``, ``.connect()``, ``.version_num``)
``pg_dsn``         superuser DSN of a fresh, empty database for this test
``pg_conn``        an autocommit psycopg connection to it
``migrated_dsn``   superuser DSN of a fresh database with the catalog (core and plpython)
``migrated_conn``  an autocommit psycopg connection to it
``pg_schema_conn`` cheaper: a connection to a shared database, search_path set to a fresh schema
``fresh_cluster``  a whole cluster of the test's own (indb.catalog.localpg.Cluster), e.g. for roles
``pg_role``        factory: ``pg_role(dsn, "indb_scorer", ...)`` -> Role(name, password, dsn), LOGIN
``duckdb_conn``, ``sqlite_conn``  in-memory connections
"""

from __future__ import annotations

import itertools
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")
TOKEN = secrets.token_hex(3)  # keeps names unique when sessions share an INDB_TEST_DSN server
_counter = itertools.count(1)


class PgServer:
    """A PostgreSQL server the tests may create databases and roles on."""

    def __init__(self, admin_dsn: str, origin: str, stop=None):
        import psycopg

        self.admin_dsn = admin_dsn
        self.origin = origin
        self._stop = stop
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            self.version = conn.execute("SHOW server_version").fetchone()[0]
            self.version_num = conn.info.server_version
            self.full_version = conn.execute("SELECT version()").fetchone()[0]
            if not conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[0]:
                raise RuntimeError(f"the test server's DSN ({origin}) must log in as a superuser")

    def dsn(self, dbname: str = "postgres", **params) -> str:
        from psycopg.conninfo import make_conninfo

        return make_conninfo(self.admin_dsn, dbname=dbname, **params)

    def connect(self, dbname: str = "postgres", **params):
        import psycopg

        return psycopg.connect(self.dsn(dbname, **params), autocommit=True)

    def new_name(self, hint: str = "", prefix: str = "t") -> str:
        clean = re.sub(r"[^a-z0-9_]+", "_", hint.lower()).strip("_")
        return f"{prefix}_{TOKEN}_{next(_counter)}_{clean}"[:63]

    def create_database(self, name: str, template: str | None = None) -> None:
        from psycopg import sql

        query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            query += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        if self.version_num >= 150000:
            # FILE_COPY is several times faster than WAL_LOG for small databases.
            query += sql.SQL(" STRATEGY FILE_COPY")
        with self.connect() as conn:
            conn.execute(query)

    def drop_database(self, name: str) -> None:
        from psycopg import sql

        with self.connect() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def close(self) -> None:
        if self._stop is not None:
            self._stop()


CLUSTER_PREFIX = "indb-test-pg-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _reap_stale_clusters() -> None:
    """Destroy throwaway clusters whose test process died without tearing them down."""
    from indb.catalog.localpg import Cluster, ClusterError

    for root in Path(tempfile.gettempdir()).glob(CLUSTER_PREFIX + "*"):
        try:
            owner = int((root / "owner.pid").read_text())
        except (OSError, ValueError):
            continue
        if not _alive(owner):
            try:
                Cluster(root).destroy()
            except (ClusterError, OSError):  # half gone already, or another worker reaps it now
                shutil.rmtree(root, ignore_errors=True)


def throwaway_cluster(bindir=None):
    """A started cluster in a new temporary directory, tuned for tests; ``.destroy()`` it after use."""
    from indb.catalog.localpg import TEST_SETTINGS, Cluster

    _reap_stale_clusters()
    root = Path(tempfile.mkdtemp(prefix=CLUSTER_PREFIX))
    (root / "owner.pid").write_text(f"{os.getpid()}\n")
    cluster = Cluster(root, bindir=bindir, settings=TEST_SETTINGS)
    try:
        cluster.ensure_started(database="postgres")
    except BaseException:
        cluster.destroy()
        raise
    return cluster


def _local_cluster() -> tuple[PgServer | None, str]:
    from indb.catalog.localpg import ClusterError, find_bindir

    try:
        bindir = find_bindir()
    except ClusterError as e:
        return None, str(e)
    cluster = throwaway_cluster(bindir)
    return PgServer(cluster.dsn("postgres"), f"throwaway cluster from {bindir}", stop=cluster.destroy), ""


def _container() -> tuple[PgServer | None, str]:
    try:
        from testcontainers.postgres import PostgresContainer
    except ImportError:
        return None, "testcontainers is not installed"
    try:
        import docker

        docker.from_env().ping()
    except Exception as e:  # no engine, no socket, no permission: all mean "not reachable"
        return None, f"no Docker engine is reachable ({type(e).__name__})"
    from psycopg.conninfo import make_conninfo

    image = os.environ.get("INDB_TEST_IMAGE", "postgres:15-bookworm")
    password = secrets.token_hex(16)
    container = PostgresContainer(image, username="postgres", password=password, dbname="postgres")
    container.start()
    # The official images lack PL/Python; their Debian variants carry the PGDG apt source.
    code, output = container.exec(["sh", "-c", "apt-get update -qq && apt-get install -y -qq "
                                   "postgresql-plpython3-$PG_MAJOR python3-numpy"])
    if code != 0:
        container.stop()
        raise RuntimeError(f"could not install PL/Python in {image}: {output[-500:]!r}")
    dsn = make_conninfo("", host=container.get_container_host_ip(), port=str(container.get_exposed_port(5432)),
                        user="postgres", password=password, dbname="postgres")
    return PgServer(dsn, f"testcontainers ({image})", stop=container.stop), ""


def start_server() -> tuple[PgServer | None, str]:
    """The server for this session, or (None, why there is none)."""
    if os.environ.get("INDB_TEST_DSN"):
        return PgServer(os.environ["INDB_TEST_DSN"], "INDB_TEST_DSN"), ""
    server, local_reason = _local_cluster()
    if server is not None:
        return server, ""
    server, container_reason = _container()
    if server is not None:
        return server, ""
    return None, f"INDB_TEST_DSN is not set; {local_reason}; {container_reason}"


def missing(reason: str):
    """Skip, or under CI=true fail: a test environment without something it must have."""
    if CI:
        pytest.fail(f"{reason} (CI=true: this is a failure, not a skip)", pytrace=False)
    pytest.skip(reason)


_session_server: list[PgServer] = []


@pytest.fixture(scope="session")
def pg_server():
    server, reason = start_server()
    if server is None:
        missing(f"no PostgreSQL for the tests: {reason}. Set INDB_TEST_DSN, or install the server "
                "(./scripts/bootstrap --server), or start a Docker engine")
    _session_server.append(server)
    yield server
    server.close()


@pytest.fixture
def fresh_cluster():
    """A cluster of this test's own (where indb's roles do not exist yet), from the local binaries."""
    from indb.catalog.localpg import ClusterError, find_bindir

    try:
        bindir = find_bindir()
    except ClusterError as e:
        missing(f"a cluster of its own needs local PostgreSQL binaries: {e}")
    cluster = throwaway_cluster(bindir)
    try:
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture(scope="session")
def pg_migrated_template(pg_server):
    """A database with the catalog (core and plpython) that per-test databases copy."""
    from indb.catalog.migrator import migrate

    name = pg_server.new_name("migrated_template", prefix="tmpl")
    pg_server.create_database(name)
    dsn = pg_server.dsn(name)
    migrate(dsn)
    migrate(dsn, component="plpython")
    yield name
    pg_server.drop_database(name)


@contextmanager
def _database(pg_server: PgServer, hint: str, template: str | None = None):
    name = pg_server.new_name(hint)
    pg_server.create_database(name, template=template)
    try:
        yield pg_server.dsn(name)
    finally:
        pg_server.drop_database(name)


def _autocommit(dsn: str):
    import psycopg

    return psycopg.connect(dsn, autocommit=True)


@pytest.fixture
def pg_dsn(pg_server, request):
    with _database(pg_server, request.node.name) as dsn:
        yield dsn
    _forget_old_catalog_grants(pg_server)


def _forget_old_catalog_grants(pg_server: PgServer) -> None:
    """Undo what an empty database migrated short of core 0013 granted to the whole cluster.

    Core 0001 makes indb_deployer a member of indb_owner, and roles are cluster-wide: a test
    that stops at an older catalog would leave every deployer of every later test's database
    a member (``indb validate`` names it; the server refuses it). 0013 revokes it; so does this.
    """
    from psycopg import sql

    with pg_server.connect() as conn:
        for (member,) in conn.execute(
                "SELECT m.rolname FROM pg_catalog.pg_auth_members AS a JOIN pg_catalog.pg_roles AS r ON r.oid = a.roleid"
                " JOIN pg_catalog.pg_roles AS m ON m.oid = a.member WHERE r.rolname = 'indb_owner'").fetchall():
            conn.execute(sql.SQL("REVOKE indb_owner FROM {} CASCADE").format(sql.Identifier(member)))


@pytest.fixture
def pg_conn(pg_dsn):
    with _autocommit(pg_dsn) as conn:
        yield conn


@pytest.fixture
def migrated_dsn(pg_server, pg_migrated_template, request):
    with _database(pg_server, request.node.name, template=pg_migrated_template) as dsn:
        yield dsn


@pytest.fixture
def migrated_conn(migrated_dsn):
    with _autocommit(migrated_dsn) as conn:
        yield conn


@pytest.fixture(scope="session")
def _shared_database(pg_server):
    name = pg_server.new_name("shared", prefix="shared")
    pg_server.create_database(name)
    yield name
    pg_server.drop_database(name)


@pytest.fixture
def pg_schema_conn(pg_server, _shared_database, request):
    """A connection whose search_path is a fresh schema in a database shared by the session."""
    from psycopg import sql

    schema = pg_server.new_name(request.node.name, prefix="s")
    with pg_server.connect(_shared_database) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        conn.execute(sql.SQL("SET search_path = {}, public").format(sql.Identifier(schema)))
        yield conn
        conn.execute("RESET search_path")
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


@dataclass(frozen=True)
class Role:
    name: str
    password: str
    dsn: str


@pytest.fixture
def pg_role(pg_server):
    """Factory of LOGIN roles (cluster-wide; dropped after the test).

    >>> alice = pg_role(migrated_dsn, "indb_scorer")      # doctest: +SKIP
    >>> psycopg.connect(alice.dsn)                          # doctest: +SKIP
    """
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    made: list[tuple[str, str]] = []

    def make(dsn: str, *groups: str) -> Role:
        name = pg_server.new_name("role", prefix="r")
        password = secrets.token_hex(12)
        dbname = conninfo_to_dict(dsn).get("dbname", "postgres")
        with pg_server.connect(dbname) as conn:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(name), sql.Literal(password)))
            for group in groups:
                conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(group), sql.Identifier(name)))
        made.append((name, dbname))
        return Role(name, password, make_conninfo(dsn, user=name, password=password, passfile=None))

    yield make
    import psycopg

    for name, dbname in made:
        try:
            with pg_server.connect(dbname) as conn:
                conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)))
        except psycopg.OperationalError:
            pass  # the test's database is already gone, and the role's privileges with it
        with pg_server.connect() as conn:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


@pytest.fixture
def duckdb_conn():
    import duckdb

    conn = duckdb.connect(":memory:")
    yield conn
    conn.close()


@pytest.fixture
def sqlite_conn():
    import sqlite3

    conn = sqlite3.connect(":memory:")
    yield conn
    conn.close()


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config):
    # `timeout` and CI runners stop a run with SIGTERM, which would skip the fixtures'
    # teardown and leave the throwaway cluster running: treat it like Ctrl-C, after
    # which pytest still tears the session down.
    if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _interrupt)


def pytest_report_header(config):
    """Name the PostgreSQL the PostgreSQL tests will run on, before any of them starts."""
    if os.environ.get("INDB_TEST_DSN"):
        try:
            import psycopg

            with psycopg.connect(os.environ["INDB_TEST_DSN"], connect_timeout=5) as conn:
                version = conn.execute("SHOW server_version").fetchone()[0]
            return [f"postgresql: {version} (INDB_TEST_DSN)"]
        except Exception as e:
            return [f"postgresql: INDB_TEST_DSN is set but unreachable ({type(e).__name__})"]
    from indb.catalog.localpg import ClusterError, find_bindir, server_version

    try:
        bindir = find_bindir()
        return [f"postgresql: {server_version(bindir)} (throwaway cluster from {bindir})"]
    except (ClusterError, OSError, subprocess.CalledProcessError) as e:
        return [f"postgresql: no local binaries ({e}); testcontainers will be tried"]


def pytest_terminal_summary(terminalreporter):
    for server in _session_server:
        terminalreporter.write_line(f"postgresql used: {server.full_version} [{server.origin}]")
