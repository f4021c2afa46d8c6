"""``indb migrate``'s last step: live SQL versions re-rendered from their stored IR.

A version's SQL functions are rendered from its IR by the indb that deployed it. When a
later indb renders the same IR differently (a guard written once instead of per term,
every output of a refused row NULL), the installed bodies are re-rendered here, by the
superuser who migrates: each function is replaced in place (``CREATE OR REPLACE`` as
``indb_versions``, so the server's guard checks it; its grants, bindings and OID are
kept), and a version without a generic-path adapter gets one. The IR itself never
changes; one whose checksum does not match, that this indb cannot read or lower, or
whose new functions the server refuses is left as deployed (``indb validate`` names
it), and the migration still succeeds. PL/Python versions need nothing: the engine reads the IR when it scores.
"""

from __future__ import annotations

from collections.abc import Callable

from indb import ir
from indb.catalog.connection import as_versions
from indb.registry.functions import installed_bodies, sql_version_functions


def refresh_sql_versions(conn, say: Callable[[str], None] = lambda _msg: None) -> list[str]:
    """Re-render every live SQL version's functions this indb renders differently; returns
    ``name@version/output`` of each function replaced (and of each adapter added)."""
    import psycopg
    from psycopg import sql

    ready = conn.execute(
        "SELECT pg_catalog.to_regprocedure('indb.install_generic_adapter(regprocedure)') IS NOT NULL"
        " AND pg_catalog.to_regclass('indb.version_functions') IS NOT NULL").fetchone()[0]
    if not ready:
        return []
    done: list[str] = []
    skipped: list[str] = []
    with conn.transaction():
        rows = conn.execute(
            "SELECT v.model, v.version, v.ir, v.ir_sha256 FROM indb.versions AS v"
            " WHERE v.retired_at IS NULL AND v.engine = 'sql' ORDER BY v.model, v.version").fetchall()
        installed = installed_bodies(conn)
        without_adapter = {fn for (fn,) in conn.execute(
            "SELECT f.fn::text FROM indb.version_functions AS f WHERE indb.generic_adapter(f.fn) IS NULL").fetchall()}
        for model, version, text, sha in rows:
            if ir.checksum(text) != sha:
                continue  # a changed IR is a finding for indb validate, never re-rendered
            try:
                m = ir.model_from_json(text)
                expected = sql_version_functions(m, model, version)
            except Exception as e:  # noqa: BLE001 - an IR this indb cannot lower stays as it is
                skipped.append(f"{model}@{version} ({type(e).__name__}: {e})")
                continue
            mine: list[str] = []
            try:
                with conn.transaction():  # one version at a time: a refusal leaves it as it was
                    for f in expected:
                        fn, body = installed.get((model, version, f.output), (None, None))
                        if body is None:
                            continue
                        if f.installed_differs(conn, m, body):
                            with as_versions(conn):
                                conn.execute(f.create(m, replace=True))
                            mine.append(f"{model}@{version}/{f.output}")
                        if fn in without_adapter:
                            with as_versions(conn):
                                conn.execute(sql.SQL("SELECT indb.install_generic_adapter({}::regprocedure)").format(sql.Literal(fn)))
                            mine.append(f"{model}@{version}/{f.output} (generic-path adapter)")
            except psycopg.Error as e:
                skipped.append(f"{model}@{version} ({e.diag.message_primary or e})")
                continue
            done += mine
    if skipped:
        say(f"core: left {len(skipped)} version(s) as deployed (indb validate says more): {'; '.join(skipped)}")
    if done:
        say(f"core: re-rendered {len(done)} function(s) of live SQL versions from their stored IR: {', '.join(done)}")
    return done
