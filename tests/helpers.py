"""Helpers for tests that run the ``indb`` command line and inspect the catalog.

``python -m tests.helpers COMPONENT DIR ARGS...`` runs the real command line with one
component's migration files read from DIR instead of the package: the way tests feed
migrations that must never ship (a slow one, a broken one) through ``indb migrate``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
INDB = Path(sys.executable).parent / "indb"


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any PG*/INDB_* variable (so only --dsn counts)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "INDB_"))}
    env.update(extra)
    return env


def indb(*args: str, env: dict | None = None, cwd: str | os.PathLike | None = None,
         timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the installed ``indb`` console script."""
    return subprocess.run([str(INDB), *args], env=env or clean_env(), cwd=cwd or REPO,
                          capture_output=True, text=True, timeout=timeout)


def indb_with_source(component: str, directory: str | os.PathLike, *args: str,
                     timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the command line with ``component``'s migrations read from ``directory``."""
    return subprocess.run([sys.executable, "-m", "tests.helpers", component, str(directory), *args],
                          env=clean_env(), cwd=REPO, capture_output=True, text=True, timeout=timeout)


def popen_with_source(component: str, directory: str | os.PathLike, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tests.helpers", component, str(directory), *args],
                            env=clean_env(), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def copy_track(dest: Path, component: str = "core", *, crlf: bool = False,
               edit: dict[str, str] | None = None) -> Path:
    """A copy of a shipped track in ``dest``; ``edit`` adds or replaces files by name."""
    from indb.catalog.migrator import migrations_source

    dest.mkdir(parents=True, exist_ok=True)
    for entry in migrations_source(component).iterdir():
        if entry.name.endswith(".sql") and entry.is_file():
            text = entry.read_text(encoding="utf-8")
            (dest / entry.name).write_bytes((text.replace("\n", "\r\n") if crlf else text).encode())
    for name, text in (edit or {}).items():
        (dest / name).write_text(text)
    return dest


def one_line_error(run: subprocess.CompletedProcess) -> str:
    """The single stderr line of a failed run; fails the test when there is more or a traceback."""
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert run.returncode != 0, (run.stdout, run.stderr)
    assert "Traceback" not in run.stderr, run.stderr
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("indb: error: "), lines[0]
    return lines[0]


FINGERPRINT_SQL = """
SELECT md5(string_agg(x, E'\\n' ORDER BY x)) FROM (
    SELECT concat_ws(':', 'class', c.oid, c.relname, c.relnamespace, c.relkind, c.relowner, c.relacl, c.relrowsecurity)
    FROM pg_class c
    UNION ALL
    SELECT concat_ws(':', 'proc', p.oid, p.proname, p.pronamespace, p.proowner, p.proacl, md5(p.prosrc), md5(pg_get_function_sqlbody(p.oid)), p.proconfig)
    FROM pg_proc p
    UNION ALL
    SELECT concat_ws(':', 'namespace', n.oid, n.nspname, n.nspowner, n.nspacl) FROM pg_namespace n
    UNION ALL
    SELECT concat_ws(':', 'role', r.rolname, r.rolcanlogin, r.rolinherit) FROM pg_roles r
    UNION ALL
    SELECT concat_ws(':', 'extension', e.extname, e.extversion) FROM pg_extension e
) AS catalog(x)
"""


def fingerprint(conn) -> tuple[str, list]:
    """A digest of pg_class, pg_proc, pg_namespace, roles and extensions, plus the history rows."""
    digest = conn.execute(FINGERPRINT_SQL).fetchone()[0]
    history = []
    if conn.execute("SELECT to_regclass('indb.schema_migrations')").fetchone()[0]:
        history = conn.execute("SELECT * FROM indb.schema_migrations ORDER BY component, version").fetchall()
    return digest, history


def advisory_locks(conn) -> list:
    """Advisory locks held or awaited in the connection's database: (pid, classid, objid, granted)."""
    return conn.execute(
        "SELECT pid, classid, objid, granted FROM pg_locks WHERE locktype = 'advisory'"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())").fetchall()


def history(conn, component: str = "core") -> list[tuple[int, bool]]:
    return conn.execute("SELECT version, success FROM indb.schema_migrations WHERE component = %s ORDER BY version",
                        [component]).fetchall()


def _main(argv: list[str]) -> int:
    import indb.catalog.migrator
    from indb.cli.main import main

    component, directory, rest = argv[0], Path(argv[1]), argv[2:]
    shipped = indb.catalog.migrator.migrations_source
    indb.catalog.migrator.COMPONENTS.setdefault(component, "")

    def source(name: str = indb.catalog.migrator.CORE):
        return directory if name == component else shipped(name)

    indb.catalog.migrator.migrations_source = source
    return main(rest)


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
