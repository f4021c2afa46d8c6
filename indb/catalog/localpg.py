"""A private PostgreSQL cluster run from the local binaries, in a directory of its own.

The main job (``scripts/demo``) keeps one under the project folder in ``.indb/``; the
test fixtures start a throwaway one in a temporary directory. PostgreSQL refuses to run
as root, so when the caller is root the server runs as the ``postgres`` system user
(``INDB_PG_OS_USER`` to choose another) and owns the ``pg/`` sub-directory.

Layout under the root directory::

    dsn          the connection string (no secret in it: it names the passfile)
    pgpass       the superuser's password, mode 0600, in libpq's passfile format
    pg/          owned by the server's OS user, mode 0700
      data/      the cluster (indb.conf holds indb's settings, included by postgresql.conf)
      postgres.log
      .s.PGSQL.<port>   the unix socket (local connections are trusted; only the
                        server's OS user and root can open this directory)

Example::

    >>> from indb.catalog.localpg import Cluster
    >>> cluster = Cluster(".indb")
    >>> dsn = cluster.ensure_started(database="indb")   # doctest: +SKIP
    >>> cluster.stop()                                   # doctest: +SKIP

From a shell: ``python -m indb.catalog.localpg start|stop|status|dsn|destroy [--dir .indb]``.
"""

from __future__ import annotations

import argparse
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from indb.errors import IndbError, UsageError

SUPERUSER = "postgres"

# Settings for a throwaway test cluster: durability traded for speed, since the data
# dies with the test session anyway.
TEST_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "max_wal_size": "2GB",
    "checkpoint_timeout": "30min",
    "shared_buffers": "128MB",
    "max_connections": "200",
    "max_locks_per_transaction": "256",
    "log_min_messages": "warning",
    "log_checkpoints": "off",
}

# The Debian/Ubuntu packages the server side needs. The bootstrap script installs the
# same list; the messages below quote it so a user can run it by hand.
APT_PACKAGES = "postgresql postgresql-plpython3-{major} python3-numpy"

_SOCKET_PATH_MAX = 107  # sun_path is 108 bytes on Linux, including the NUL


class ClusterError(IndbError):
    """The local cluster could not be created, started or stopped."""


def find_bindir(bindir: str | os.PathLike | None = None) -> Path:
    """The directory holding ``initdb``, ``pg_ctl`` and ``postgres``.

    Looked up in order: the argument, ``INDB_PG_BINDIR``, the newest
    ``/usr/lib/postgresql/<major>/bin`` (Debian/Ubuntu), ``pg_config --bindir``, ``PATH``.

    >>> find_bindir()                       # doctest: +SKIP
    PosixPath('/usr/lib/postgresql/15/bin')
    """
    explicit = bindir or os.environ.get("INDB_PG_BINDIR")
    if explicit:
        path = Path(explicit)
        if not (path / "initdb").exists():
            raise ClusterError(f"no initdb in {path} (from INDB_PG_BINDIR or --bindir): point it at PostgreSQL's bin directory")
        return path
    candidates = []
    debian = Path("/usr/lib/postgresql")
    if debian.is_dir():
        majors = sorted((p for p in debian.iterdir() if p.name.isdigit()), key=lambda p: int(p.name), reverse=True)
        candidates += [p / "bin" for p in majors]
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=True).stdout.strip()
            candidates.append(Path(out))
        except (OSError, subprocess.CalledProcessError):
            pass
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    for path in candidates:
        if (path / "initdb").exists() and (path / "pg_ctl").exists():
            return path
    raise ClusterError(
        "no PostgreSQL server binaries (initdb, pg_ctl) found: install them with "
        f"`sudo apt-get install -y {APT_PACKAGES.format(major='<version>')}` (or run ./scripts/bootstrap --server), "
        "or set INDB_PG_BINDIR"
    )


def server_version(bindir: Path) -> str:
    """``postgres --version`` of these binaries, e.g. ``'15.18'``."""
    out = subprocess.run([str(bindir / "postgres"), "--version"], capture_output=True, text=True, check=True).stdout
    match = re.search(r"\(PostgreSQL\)\s+(\d+(?:\.\d+)?)", out)
    if not match:
        raise ClusterError(f"cannot read the version of {bindir / 'postgres'} from {out.strip()!r}")
    return match.group(1)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@dataclass(frozen=True)
class _OsUser:
    uid: int
    gid: int
    name: str


def _server_os_user() -> _OsUser | None:
    """None when the server can run as the current user; else the user to switch to."""
    if os.geteuid() != 0:
        return None
    name = os.environ.get("INDB_PG_OS_USER", "postgres")
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise ClusterError(
            f"PostgreSQL refuses to run as root and there is no {name!r} system user: "
            "install the postgresql package (it creates one), set INDB_PG_OS_USER, or run as a normal user"
        ) from None
    return _OsUser(entry.pw_uid, entry.pw_gid, name)


def _conf_value(value: str) -> str:
    return "'" + str(value).replace("\\", "\\\\").replace("'", "''") + "'"


class Cluster:
    """A PostgreSQL cluster in ``root`` (see the module docstring for the layout).

    >>> c = Cluster("/tmp/pg-demo", settings=TEST_SETTINGS)
    >>> c.ensure_started(database="app")                 # doctest: +SKIP
    'host=127.0.0.1 port=41234 dbname=app user=postgres passfile=/tmp/pg-demo/pgpass'
    """

    def __init__(self, root: str | os.PathLike, *, bindir: str | os.PathLike | None = None,
                 settings: dict[str, str] | None = None):
        self.root = Path(root).absolute()
        self.pgdir = self.root / "pg"
        self.datadir = self.pgdir / "data"
        self.logfile = self.pgdir / "postgres.log"
        self.passfile = self.root / "pgpass"
        self.dsnfile = self.root / "dsn"
        self.portfile = self.root / "port"
        self.settings = dict(settings or {})
        self._bindir = Path(bindir) if bindir else None
        self._os_user = _server_os_user()

    # -- paths and processes -------------------------------------------------------

    @property
    def bindir(self) -> Path:
        if self._bindir is None:
            self._bindir = find_bindir()
        return self._bindir

    def _run(self, args: list[str], **kwargs) -> subprocess.CompletedProcess:
        extra = {}
        if self._os_user is not None:
            extra = {"user": self._os_user.uid, "group": self._os_user.gid, "extra_groups": []}
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        return subprocess.run(args, cwd=self.pgdir, env=env, capture_output=True, text=True, **extra, **kwargs)

    def _give_to_server_user(self, path: Path) -> None:
        if self._os_user is not None:
            os.chown(path, self._os_user.uid, self._os_user.gid)

    def _check_reachable(self) -> None:
        if self._os_user is None:
            return
        probe = self._run(["test", "-x", str(self.root)]) if self.pgdir.exists() else None
        if probe is not None and probe.returncode != 0:
            raise ClusterError(
                f"the {self._os_user.name} user cannot reach {self.root}: make every parent directory "
                "traversable (chmod o+x), or put the project somewhere it can reach"
            )

    @property
    def initialised(self) -> bool:
        return (self.datadir / "PG_VERSION").exists()

    @property
    def port(self) -> int | None:
        try:
            return int(self.portfile.read_text().strip())
        except (OSError, ValueError):
            return None

    def dsn(self, database: str = "postgres", user: str = SUPERUSER) -> str:
        """The connection string for ``database`` over TCP on 127.0.0.1 (password from the passfile)."""
        from psycopg.conninfo import make_conninfo

        if self.port is None:
            raise ClusterError(f"the cluster in {self.root} has never been started")
        return make_conninfo("", host="127.0.0.1", port=str(self.port), dbname=database, user=user,
                             passfile=str(self.passfile))

    def is_running(self) -> bool:
        if not self.initialised:
            return False
        return self._run([str(self.bindir / "pg_ctl"), "status", "-D", str(self.datadir)]).returncode == 0

    # -- lifecycle -----------------------------------------------------------------

    def init(self) -> None:
        """Create the cluster (``initdb``). Refuses a root that already holds one."""
        if self.initialised:
            raise ClusterError(f"{self.datadir} already holds a cluster")
        self.root.mkdir(parents=True, exist_ok=True)
        if self._os_user is not None:
            # The server's user must traverse the root (not list it) to reach pg/.
            self.root.chmod(self.root.stat().st_mode | 0o011)
        self.pgdir.mkdir(mode=0o700, exist_ok=True)
        self._give_to_server_user(self.pgdir)
        self._check_reachable()
        password = secrets.token_urlsafe(24)
        pwfile = self.pgdir / "initdb.pw"
        pwfile.write_text(password + "\n")
        self._give_to_server_user(pwfile)
        try:
            result = self._run([
                str(self.bindir / "initdb"), "-D", str(self.datadir), "-U", SUPERUSER, f"--pwfile={pwfile}",
                "-E", "UTF8", "--no-locale", "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync",
            ])
        finally:
            pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            raise ClusterError(f"initdb failed in {self.datadir}: {result.stderr.strip() or result.stdout.strip()}")
        with open(self.datadir / "postgresql.conf", "a") as conf:
            conf.write("\n# Settings managed by indb (rewritten on every start)\ninclude_if_exists = 'indb.conf'\n")
        # libpq ignores a passfile that others can read, so create it 0600 from the start.
        fd = os.open(self.passfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(f"127.0.0.1:*:*:{SUPERUSER}:{password}\n")

    def _write_settings(self, port: int) -> None:
        sockdir = str(self.pgdir)
        settings = {
            "port": str(port),
            "listen_addresses": "127.0.0.1",
            # A socket path longer than sun_path cannot be created; TCP still works then.
            "unix_socket_directories": sockdir if len(f"{sockdir}/.s.PGSQL.{port}") <= _SOCKET_PATH_MAX else "",
            "unix_socket_permissions": "0700",
            **self.settings,
        }
        lines = ["# Written by indb.catalog.localpg on every start; edit Cluster settings instead."]
        lines += [f"{key} = {_conf_value(value)}" for key, value in settings.items()]
        conf = self.datadir / "indb.conf"
        conf.write_text("\n".join(lines) + "\n")
        self._give_to_server_user(conf)

    def start(self, *, attempts: int = 3) -> None:
        """Start the server (no-op when running), on its previous port when that is still free."""
        if not self.initialised:
            raise ClusterError(f"no cluster in {self.datadir}: run `python -m indb.catalog.localpg start` to create one")
        if self.is_running():
            return
        self._check_reachable()
        port = self.port
        for attempt in range(attempts):
            if port is None or not _port_is_free(port):
                port = free_port()
            self._write_settings(port)
            result = self._run([str(self.bindir / "pg_ctl"), "start", "-D", str(self.datadir), "-l", str(self.logfile),
                                "-w", "-t", "60", "-s"])
            if result.returncode == 0:
                self.portfile.write_text(f"{port}\n")
                return
            log_tail = self._log_tail()
            if "already in use" not in log_tail or attempt == attempts - 1:
                raise ClusterError(f"PostgreSQL did not start in {self.datadir}: {log_tail or result.stderr.strip()}")
            port = None

    def _log_tail(self, lines: int = 5) -> str:
        try:
            text = self._run(["tail", "-n", str(lines), str(self.logfile)]).stdout
        except OSError:
            return ""
        return " | ".join(line.strip() for line in text.splitlines() if line.strip())

    def stop(self) -> None:
        """Stop the server (fast shutdown); no-op when it is not running."""
        if not self.is_running():
            return
        result = self._run([str(self.bindir / "pg_ctl"), "stop", "-D", str(self.datadir), "-m", "fast", "-w", "-s"])
        if result.returncode != 0:
            raise ClusterError(f"pg_ctl stop failed for {self.datadir}: {result.stderr.strip()}")

    def destroy(self) -> None:
        """Stop the server and delete the whole root directory."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def ensure_database(self, database: str) -> None:
        """Create ``database`` when it does not exist."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))

    def ensure_started(self, database: str = "indb") -> str:
        """Create the cluster if needed, start it if needed, create ``database``; return its DSN.

        The DSN is also written to ``<root>/dsn``, where ``indb`` finds it when no DSN is given.
        """
        if not self.initialised:
            if self.datadir.exists() and any(self.datadir.iterdir()):
                raise ClusterError(f"{self.datadir} is not empty but holds no cluster: move it away or delete it")
            self.init()
        else:
            self._check_version()
        self.start()
        self.ensure_database(database)
        dsn = self.dsn(database)
        self.dsnfile.write_text(dsn + "\n")
        return dsn

    def _check_version(self) -> None:
        try:
            data_major = (self.datadir / "PG_VERSION").read_text().strip()
        except PermissionError:
            return
        bin_major = server_version(self.bindir).split(".")[0]
        if data_major != bin_major:
            raise ClusterError(
                f"the cluster in {self.datadir} was made by PostgreSQL {data_major} but the binaries in "
                f"{self.bindir} are version {bin_major}: set INDB_PG_BINDIR to the {data_major} binaries, "
                f"or delete {self.root} to start afresh"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m indb.catalog.localpg",
        description="Manage the private PostgreSQL cluster that the main job keeps under the project folder.",
        epilog="examples:\n  python -m indb.catalog.localpg start          # create/start .indb/, print its DSN\n"
               "  psql \"$(python -m indb.catalog.localpg dsn)\"\n  python -m indb.catalog.localpg stop",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=["start", "stop", "status", "dsn", "destroy"])
    parser.add_argument("--dir", default=".indb", help="the cluster's root directory (default: ./.indb)")
    parser.add_argument("--database", default="indb", help="database to create and name in the DSN (start only)")
    args = parser.parse_args(argv)
    cluster = Cluster(args.dir)
    try:
        if args.command == "start":
            print(cluster.ensure_started(database=args.database))
        elif args.command == "stop":
            cluster.stop()
        elif args.command == "destroy":
            cluster.destroy()
        elif args.command == "dsn":
            if not cluster.dsnfile.exists():
                raise UsageError(f"no cluster in {cluster.root}: run `python -m indb.catalog.localpg start` first")
            print(cluster.dsnfile.read_text().strip())
        else:
            running = cluster.is_running()
            print(f"cluster {cluster.root}: {'running' if running else 'stopped' if cluster.initialised else 'absent'}"
                  + (f" on port {cluster.port}" if running else ""))
            return 0 if running else 3
    except IndbError as e:
        print(f"indb.catalog.localpg: error: {e}", file=sys.stderr)
        return e.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
