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
from contextlib import contextmanager

from psycopg import sql

from indb import errors, ir
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


def grant_shared(conn, role: str) -> None:
    """Grant ``role`` the shared functions that indb_scorer may execute and indb_scorer_base
    may not (an optional component's entry points, e.g. the PL/Python engine's, when its
    migration granted them to indb_scorer only). Acting as their owner."""
    shared = conn.execute(
        "SELECT p.oid::regprocedure::text FROM pg_catalog.pg_proc AS p"
        " WHERE p.pronamespace = 'indb'::regnamespace"
        "   AND pg_catalog.has_function_privilege('indb_scorer', p.oid, 'EXECUTE')"
        "   AND NOT pg_catalog.has_function_privilege(%s, p.oid, 'EXECUTE')"
        "   AND NOT EXISTS (SELECT FROM indb.version_functions AS f WHERE f.fn::oid = p.oid)"
        "   AND pg_catalog.pg_get_userbyid(p.proowner) = 'indb_owner'", [role]).fetchall()
    for (fn,) in shared:  # regprocedure text printed by the catalog itself
        conn.execute(sql.SQL("GRANT EXECUTE ON FUNCTION {} TO {}").format(sql.SQL(fn), sql.Identifier(role)))


def after_install(conn, m: ir.Model, name: str, version: int, fns) -> None:
    """Deploy hook (same transaction, acting as indb_owner): output names, per-model grants,
    and a check of the baseline stored with the version."""
    _require_catalog(conn)
    role = model_role(name)
    has_role = conn.execute("SELECT pg_catalog.to_regrole(%s) IS NOT NULL", [role]).fetchone()[0]
    for f in fns:
        conn.execute(
            "INSERT INTO indb.version_outputs (model, version, output, columns) VALUES (%s, %s, %s, %s)",
            [name, version, f.output, output_columns(m, f.output)],
        )
        if has_role:
            conn.execute(sql.SQL("GRANT EXECUTE ON FUNCTION {} TO {}").format(f.signature(m), sql.Identifier(role)))
    if has_role:
        grant_shared(conn, role)
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

    Needs to read ``indb.versions.ir`` (a superuser, an auditor, or a deployer).
    """
    from indb.registry.functions import sql_version_functions

    if conn.execute("SELECT pg_catalog.to_regclass('indb.version_functions') IS NULL").fetchone()[0]:
        return []
    readable = conn.execute(
        "SELECT pg_catalog.has_column_privilege('indb.versions', 'ir', 'SELECT')"
        " OR pg_catalog.pg_has_role('indb_owner', 'MEMBER')").fetchone()[0]
    if not readable:
        return ["cannot compare installed scoring functions with their IR: reading indb.versions.ir needs "
                "indb_auditor, indb_deployer or a superuser"]
    with conn.transaction():
        if not conn.execute("SELECT pg_catalog.has_column_privilege('indb.versions', 'ir', 'SELECT')").fetchone()[0]:
            conn.execute("SET LOCAL ROLE indb_owner")
        rows = conn.execute(
            "SELECT v.model, v.version, v.ir, v.ir_sha256, v.engine FROM indb.versions AS v"
            " WHERE v.retired_at IS NULL ORDER BY v.model, v.version").fetchall()
        installed = {
            (m, v, out): (fn, src)
            for m, v, out, fn, src in conn.execute(
                "SELECT f.model, f.version, f.output, f.fn::text, p.prosrc FROM indb.version_functions AS f"
                " LEFT JOIN pg_catalog.pg_proc AS p ON p.oid = f.fn::oid").fetchall()
        }
    problems = []
    for model, version, text, sha, engine in rows:
        ref = f"{model}@{version}"
        if hashlib.sha256(text.encode("utf-8")).hexdigest() != sha:
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
            expected = sql_version_functions(ir.model_from_json(text), model, version)
        except Exception as e:  # noqa: BLE001 - an IR this indb cannot lower is a finding, not a crash
            problems.append(f"{ref}: cannot regenerate its SQL from the stored IR ({type(e).__name__}: {e})")
            continue
        for f in expected:
            fn, body = installed.get((model, version, f.output), (None, None))
            if body is None:
                problems.append(f"{ref}: its {f.output} function is missing; redeploy the model")
            elif body != f.body:
                problems.append(
                    f"{ref}: the installed body of {fn} no longer matches the SQL regenerated from its stored IR "
                    "(changed after deploy, or deployed by another indb version); redeploy the model")
    return problems


# --------------------------------------------------------------- sessions, errors


@contextmanager
def session(dsn, conn, purpose: str, *, read_only: bool = False):
    """The caller's connection, or a new one (closed afterwards) for ``purpose``."""
    from indb.catalog.connection import connect

    if conn is not None:
        yield conn
        return
    own = connect(dsn, purpose=purpose, autocommit=True, read_only=read_only)
    try:
        yield own
    finally:
        own.close()



def server_error(error) -> errors.IndbError:
    """An error raised by indb's own SQL functions (``indb: ...``) as the matching IndbError, with its hint."""
    import psycopg

    from indb.catalog.connection import one_line, translate

    diag = getattr(error, "diag", None)
    message = one_line(getattr(diag, "message_primary", None) or error)
    if not message.startswith("indb: "):
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
