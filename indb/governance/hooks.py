"""Governance hooks: what deploy and bind do for grants and ``indb score``, and what
``indb validate`` checks about installed scoring functions.

* :func:`after_install` runs in the deploy transaction, right after a version's
  functions are created: it records the output column names ``indb score`` writes,
  and grants the functions to the model's per-model scorer role when one exists.
* :func:`after_bind` grants a bound overload to every scorer (including per-model
  ones: the functions it calls still check their own EXECUTE privilege).
* :func:`check_installed_functions` is a check of ``indb validate``: every SQL-compiled
  version's installed function bodies must equal the SQL regenerated from its stored
  IR, and the stored IR must match its checksum.
"""

from __future__ import annotations

import hashlib

from psycopg import sql

from indb import errors, ir
from indb.catalog.connection import as_versions
from indb.ir import validate

#: a role per model: ``indb grant scorer USER --model NAME`` creates it and grants it
MODEL_ROLE_PREFIX = "indb_model_"
#: what per-model roles are members of (the shared entry points, own log rows)
SCORER_BASE = "indb_scorer_base"


def model_role(model: str) -> str:
    """The per-model scorer role of ``model``; long names keep a hash to fit 63 bytes.

    >>> model_role("churn")
    'indb_model_churn'
    >>> len(model_role("m" * 63).encode()) <= 63
    True
    """
    name = MODEL_ROLE_PREFIX + model
    if len(name.encode()) <= 63:
        return name
    digest = hashlib.sha256(model.encode()).hexdigest()[:8]
    keep = 63 - len(MODEL_ROLE_PREFIX) - 9
    return f"{MODEL_ROLE_PREFIX}{model.encode()[:keep].decode(errors='ignore')}~{digest}"


def _require_catalog(conn) -> None:
    if conn.execute("SELECT pg_catalog.to_regclass('indb.version_outputs') IS NULL").fetchone()[0]:
        raise errors.MigrationError(
            "the indb catalog is older than this indb (no indb.version_outputs): a superuser runs `indb migrate`"
        )


def output_columns(model: ir.Model, output: str) -> list[str]:
    """Column names of one output as ``indb score`` and ``compile --table`` write them."""
    from indb.sqlgen.lowering import output_names

    if output in ("predict", "label"):
        return ["prediction"]
    return output_names(model, output)


def after_install(conn, m: ir.Model, name: str, version: int, fns) -> None:
    """Deploy hook (same transaction): output names, per-model grants (as indb_versions,
    the functions' owner), and a check of the baseline stored with the version."""
    _require_catalog(conn)
    role = model_role(name)
    for f in fns:
        conn.execute(
            "INSERT INTO indb.version_outputs (model, version, output, columns) VALUES (%s, %s, %s, %s)",
            [name, version, f.output, output_columns(m, f.output)],
        )
        # decided in the database that runs it (a deploy --sql script replays this statement elsewhere)
        grant = sql.SQL("GRANT EXECUTE ON FUNCTION {} TO {}").format(f.signature(m), sql.Identifier(role)).as_string(conn)
        with as_versions(conn):
            conn.execute(sql.SQL(
                "DO $indb_grant$ BEGIN IF pg_catalog.to_regrole({role}) IS NOT NULL THEN EXECUTE {grant}; END IF; END $indb_grant$"
            ).format(role=sql.Literal(role), grant=sql.Literal(grant)))
    baseline = conn.execute("SELECT baseline FROM indb.versions WHERE model = %s AND version = %s", [name, version]).fetchone()[0]
    if baseline is not None:
        from indb.governance.baseline import validate_baseline

        problems = validate_baseline(baseline, [f.name for f in m.features])
        if problems:
            raise errors.UsageError(f"--baseline for {name}: " + "; ".join(problems)
                                    + " (indb.governance.baseline.make_baseline writes a valid one)")


def after_bind(conn, signature: sql.Composable) -> None:
    """Bind hook: a bound overload is executable by every scorer, per-model ones too."""
    _require_catalog(conn)
    conn.execute(sql.SQL("GRANT EXECUTE ON FUNCTION {} TO {}").format(signature, sql.Identifier(SCORER_BASE)))


# ---------------------------------------------------------------------- validate


def check_installed_functions(conn) -> list[str]:
    """Validation check: installed SQL scoring functions still match their stored IR.

    A SQL-standard body is compared as PostgreSQL parsed it: the SQL regenerated from the
    IR is created as a temporary function in a transaction that is rolled back, and the
    two parsed bodies must be equal. Needs to read ``indb.versions.ir`` (a superuser, an
    auditor, or a deployer).
    """
    import psycopg

    from indb.registry.functions import installed_bodies, sql_version_functions

    if conn.execute("SELECT pg_catalog.to_regclass('indb.version_functions') IS NULL").fetchone()[0]:
        return []
    if not conn.execute("SELECT pg_catalog.has_column_privilege('indb.versions', 'ir', 'SELECT')").fetchone()[0]:
        return ["cannot compare installed scoring functions with their IR: reading indb.versions.ir needs "
                "indb_auditor, indb_deployer or a superuser"]
    problems = []
    with conn.transaction(force_rollback=True):
        conn.execute("SET TRANSACTION READ WRITE")
        rows = conn.execute(
            "SELECT v.model, v.version, v.ir, v.ir_sha256, v.engine FROM indb.versions AS v"
            " WHERE v.retired_at IS NULL ORDER BY v.model, v.version").fetchall()
        installed = installed_bodies(conn)
        for model, version, text, sha, engine in rows:
            ref = f"{model}@{version}"
            if ir.checksum(text) != sha:
                problems.append(f"{ref}: the stored IR does not match its checksum {sha[:12]}: it was changed after deploy; "
                                "redeploy the model and find out who changed it")
                continue
            if engine != "sql":
                # the PL/Python engine checks the IR's checksum and validity itself on every load
                try:
                    validate.model_json(text)
                except ValueError as e:
                    problems.append(f"{ref}: the stored IR is not a valid model, the engine refuses it: {e}")
                continue
            try:
                m = ir.model_from_json(text)
                expected = sql_version_functions(m, model, version)
            except Exception as e:  # noqa: BLE001 - an IR this indb cannot lower is a finding, not a crash
                problems.append(f"{ref}: cannot regenerate its SQL from the stored IR ({type(e).__name__}: {e})")
                continue
            for f in expected:
                fn, body = installed.get((model, version, f.output), (None, None))
                if body is None:
                    problems.append(f"{ref}: its {f.output} function is missing; redeploy the model")
                    continue
                try:
                    differs = f.installed_differs(conn, m, body)
                except psycopg.Error as e:
                    problems.append(f"{ref}: cannot rebuild its {f.output} function to compare it ({e.diag.message_primary})")
                    continue
                if differs:
                    problems.append(
                        f"{ref}: the installed body of {fn} no longer matches the SQL regenerated from its stored IR "
                        "(changed after deploy, or deployed by another indb version): a superuser runs `indb migrate`, "
                        "which re-renders it from the IR, or redeploy the model")
        # the generic path's adapters: body, rights and settings exactly as the server generates them
        if conn.execute("SELECT pg_catalog.to_regprocedure('indb.generic_adapter(regprocedure)') IS NOT NULL").fetchone()[0]:
            for ref, adapter, why in conn.execute(
                    "SELECT f.model || '@' || f.version, a::text, indb.check_version_function(a::oid)"
                    " FROM indb.version_functions AS f CROSS JOIN LATERAL indb.generic_adapter(f.fn) AS a"
                    " WHERE a IS NOT NULL ORDER BY f.model, f.version, f.output").fetchall():
                if why is not None:
                    problems.append(f"{ref}: its generic-path adapter {adapter} is not what indb generates ({why}); "
                                    "redeploy the model")
    return problems


def check_catalog_security(conn) -> list[str]:
    """Validation check: who owns what in schema indb, and what version functions may reach.

    Every function in schema indb is either shared (owned by indb_owner, indb_log_writer or
    indb_compute) or made by a deployer (owned by indb_versions) and passes the server's
    own check (``indb.check_version_function``: what its body may reference) and grant
    rules; every binding names a row type that still exists.
    """
    if conn.execute("SELECT pg_catalog.to_regprocedure('indb.check_version_function(oid)') IS NULL").fetchone()[0]:
        return ["the indb catalog predates the role separation (core 0013): a superuser runs `indb migrate`"]
    problems = [f"{fn} is owned by {owner}, which is not one of indb's roles: a deployer or a DBA created it by hand; drop it"
                for fn, owner in conn.execute(
                    "SELECT p.oid::regprocedure::text, pg_catalog.pg_get_userbyid(p.proowner) FROM pg_catalog.pg_proc AS p"
                    " WHERE p.pronamespace = 'indb'::regnamespace AND pg_catalog.pg_get_userbyid(p.proowner)"
                    " <> ALL (ARRAY['indb_owner', 'indb_log_writer', 'indb_compute', 'indb_versions']) ORDER BY 1").fetchall()]
    problems += [f"role {member} is a member of {role}, which owns indb's shared objects and has no members since core 0013: "
                 f"a database of this cluster at an older catalog granted it (run indb migrate there), or REVOKE {role} FROM {member}"
                 for role, member in conn.execute(
                     "SELECT a.roleid::regrole::text, a.member::regrole::text FROM pg_catalog.pg_auth_members AS a"
                     " WHERE a.roleid::regrole::text = ANY (ARRAY['indb_owner', 'indb_log_writer', 'indb_compute'])"
                     " ORDER BY 1, 2").fetchall()]
    problems += [f"{fn}: {why}" for fn, why in conn.execute(
        "SELECT x.fn, x.why FROM (SELECT p.oid::regprocedure::text AS fn, indb.check_version_function(p.oid) AS why"
        " FROM pg_catalog.pg_proc AS p WHERE p.proowner = 'indb_versions'::regrole) AS x WHERE x.why IS NOT NULL ORDER BY 1").fetchall()]
    problems += [row[0] for row in conn.execute("SELECT indb.check_version_grants()").fetchall()]
    problems += [f"model {model} is bound to a row type that no longer exists (oid {oid}): run indb unbind {model} {oid}"
                 for model, oid in conn.execute(
                     "SELECT b.model, b.rowtype::oid FROM indb.bindings AS b"
                     " WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_type AS t WHERE t.oid = b.rowtype::oid) ORDER BY 1").fetchall()]
    return problems
