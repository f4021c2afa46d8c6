"""``indb deploy --sql``: a deploy as SQL scripts for a release pipeline (sqitch, Alembic,
Flyway, Liquibase): the deploy itself, its revert and a verify query.

The deploy is rehearsed against a database (a transaction that is rolled back), recording
every statement that changes something. The scripts apply to any database whose catalog
is at the same version, whatever its OIDs and whatever other models are bound there:

* every recorded statement reads the state it depends on in the database that runs it
  (the alias's previous target, a per-model role, a table's row type by name), and the
  bound overloads are rebuilt there from its own registry (``indb.refresh_bindings``);
* preconditions come first, each a one-line error that names what is wrong and the fix:
  the catalog version and definitions, the deployer role, the tables given with
  ``--for-table`` and their columns, and the version number the script creates;
* each script is one ``DO`` statement: atomic on its own (psql, sqitch), and inside a
  caller's transaction it neither commits nor leaves a setting behind (Alembic);
* no ``%`` and no ``:name`` anywhere (``:`` and ``%`` inside strings are written
  ``\\x3a`` and ``\\x25`` in ``E''`` constants), so SQLAlchemy's ``text()`` and DB-API
  drivers pass the text through unchanged;
* run again, the deploy changes nothing; the revert moves the alias back to where it
  pointed before the deploy in that database (or drops it if the deploy created it),
  which every scoring path (bound, generic, logged) reads, and rebuilds the overloads.

>>> s = deploy_scripts("churn.skops", "churn", dsn="dbname=dev")    # doctest: +SKIP
>>> s.version, s.alias                                               # doctest: +SKIP
(2, 'champion')
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from psycopg import sql

from indb import errors
from indb.catalog.connection import connect, server_error
from indb.registry.versions import DEFAULT_ALIAS, DeployResult, _Rehearsed, _lock_key, _rowtype_of, deploy, prepare


@dataclass(frozen=True)
class DeployScripts:
    """The three scripts of one deploy; ``result`` is what the rehearsal did."""

    deploy: str
    revert: str
    verify: str
    result: DeployResult

    @property
    def model(self) -> str:
        return self.result.model

    @property
    def version(self) -> int:
        return self.result.version

    @property
    def alias(self) -> str | None:
        return self.result.alias


class _Recorder:
    """A connection that records every statement that changes something, as literal SQL, by section."""

    #: SELECTs that change something: the registry lock, the server-side rebuild of bound
    #: overloads and the server-generated generic-path adapters
    WRITING_SELECTS = ("pg_advisory_xact_lock", "indb.refresh_bindings(", "indb.refresh_rowtype(", "indb.install_generic_adapter(")

    def __init__(self, conn) -> None:
        self.conn = conn
        self.current = "lock"
        self.statements: dict[str, list[str]] = {"lock": [], "create": [], "aliases": []}

    def section(self, name: str) -> None:
        self.current = name

    def execute(self, query, params=None):
        import psycopg

        text = psycopg.ClientCursor(self.conn).mogrify(query, params)
        head = text.lstrip().split(None, 1)[0].upper()
        if head != "SELECT" or any(w in text for w in self.WRITING_SELECTS):
            if not text.upper().startswith("SET LOCAL SEARCH_PATH"):
                self.statements[self.current].append(text)
        return self.conn.execute(query, params)

    def transaction(self):
        return self.conn.transaction()

    def __getattr__(self, name):
        return getattr(self.conn, name)


# ------------------------------------------------------------------ portable text


def literal(text: str) -> sql.SQL:
    """A string constant that every tool passes through unchanged: ``E'...'`` with ``:`` and
    ``%`` written as escapes (``::`` casts stay as they are: SQLAlchemy does not bind them).

    >>> literal("a:b 50% it's").as_string(None)
    "E'a\\\\x3ab 50\\\\x25 it''s'"
    """
    out = text.replace("\\", "\\\\").replace("'", "''").replace("%", "\\x25")
    out = re.sub(r"(?<!:):(?!:)", r"\\x3a", out)
    return sql.SQL("E'" + out + "'")  # the text is escaped above; nothing in it ends the constant


#: what SQLAlchemy's text() would take for a bind parameter (its own pattern), and '%'
_BINDABLE = re.compile(r"(?<![:\w\\]):\w|%")


def check_portable(script: str, what: str) -> str:
    """The script, after making sure no tool would see a placeholder in it."""
    found = _BINDABLE.search(script)
    if found:
        raise errors.IndbError(f"internal error: the {what} script holds {found.group()!r}, which SQLAlchemy or a "
                               "DB-API driver would take for a placeholder; please report it")
    return script


def _raise(message: sql.Composable, errcode: str = "raise_exception") -> sql.Composed:
    return sql.SQL("RAISE EXCEPTION USING ERRCODE = {}, MESSAGE = {};").format(literal(errcode), message)


def _text(s: str) -> sql.SQL:
    return literal(s)


def _join(lines) -> sql.Composed:
    return sql.SQL("\n").join(lines)


# ------------------------------------------------------------------ preconditions


def _catalog_checks(conn, needs_plpython: bool) -> list[sql.Composable]:
    """The catalog this script was generated for: core migration, core definitions (and the
    PL/Python component when the version runs on it)."""
    from indb.catalog.migrator import CORE, shipped

    out: list[sql.Composable] = [sql.SQL(
        "    IF pg_catalog.to_regclass('indb.schema_migrations') IS NULL THEN\n        {}\n    END IF;").format(
        _raise(_text("indb: this database has no indb catalog; a superuser runs `indb migrate` first"), "undefined_table"))]
    components = [CORE] + (["plpython"] if needs_plpython else [])
    for component in components:
        latest, definitions = shipped(component)
        defs = sql.SQL(", ").join(_text(f"{n}={h}") for n, h in definitions)
        out.append(sql.SQL(
            "    SELECT pg_catalog.max(m.version) INTO at FROM indb.schema_migrations AS m WHERE m.component = {c} AND m.success;\n"
            "    IF at IS DISTINCT FROM {v} THEN\n"
            "        {fail}\n"
            "    END IF;\n"
            "    IF ARRAY(SELECT d.name OPERATOR(pg_catalog.||) '=' OPERATOR(pg_catalog.||) d.sha256 FROM (\n"
            "             SELECT DISTINCT ON (x.name) x.name, x.sha256 FROM indb.schema_definitions AS x\n"
            "              WHERE x.component = {c} ORDER BY x.name, x.id DESC) AS d ORDER BY d.name)\n"
            "       IS DISTINCT FROM ARRAY[{defs}]::text[] THEN\n"
            "        {fail_defs}\n"
            "    END IF;").format(
            c=_text(component), v=sql.Literal(latest), defs=defs,
            fail=_raise(sql.SQL("{} OPERATOR(pg_catalog.||) COALESCE(pg_catalog.lpad(at::text, 4, '0'), 'not installed') "
                                "OPERATOR(pg_catalog.||) {}").format(
                _text(f"indb: this script needs the indb catalog at {component} migration {latest:04d}; this database is at "),
                _text(f"; bring it to {latest:04d} with `indb migrate{'' if component == CORE else ' --component ' + component}` "
                      "of the indb release that generated the script")), "object_not_in_prerequisite_state"),
            fail_defs=_raise(_text(
                f"indb: the {component} definitions (functions) of this database's catalog are not those this script was "
                "generated for; run `indb migrate` with the indb release that generated it"), "object_not_in_prerequisite_state")))
    out.append(sql.SQL(
        "    IF NOT (SELECT r.rolsuper OR pg_catalog.pg_has_role(session_user, 'indb_deployer', 'MEMBER')\n"
        "              FROM pg_catalog.pg_roles AS r WHERE r.rolname = session_user) THEN\n"
        "        {}\n"
        "    END IF;").format(_raise(_text(
            "indb: this script needs the indb_deployer role (a DBA runs `indb grant deployer <user>`)"), "insufficient_privilege")))
    return out


def _table_checks(model_name: str, features, tables: list[tuple[str, str]]) -> list[sql.Composable]:
    """Each --for-table table exists here and has the model's feature columns, numbers where it needs numbers."""
    out: list[sql.Composable] = []
    for nsp, typ in tables:
        qualified = sql.Identifier(nsp, typ).as_string(None)
        shown = f"{nsp}.{typ}"
        names = sql.SQL(", ").join(_text(f.name) for f in features)
        numeric = sql.SQL(", ").join(sql.SQL("true" if f.kind != "text" else "false") for f in features)
        out.append(sql.SQL(
            "    IF pg_catalog.to_regclass({t}) IS NULL THEN\n"
            "        {missing}\n"
            "    END IF;\n"
            "    SELECT CASE WHEN a.attname IS NULL THEN {nocol} OPERATOR(pg_catalog.||) pg_catalog.quote_ident(f.name)\n"
            "                ELSE {notnum} OPERATOR(pg_catalog.||) pg_catalog.quote_ident(f.name) OPERATOR(pg_catalog.||) ' is '\n"
            "                     OPERATOR(pg_catalog.||) pg_catalog.format_type(a.atttypid, a.atttypmod) END\n"
            "      INTO problem\n"
            "      FROM ROWS FROM (pg_catalog.unnest(ARRAY[{names}]::text[]), pg_catalog.unnest(ARRAY[{numeric}]::boolean[]))\n"
            "           AS f(name, needs_number)\n"
            "      LEFT JOIN pg_catalog.pg_attribute AS a ON a.attrelid = pg_catalog.to_regclass({t})::oid AND a.attname = f.name\n"
            "           AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped\n"
            "      LEFT JOIN pg_catalog.pg_type AS ty ON ty.oid = a.atttypid\n"
            "     WHERE a.attname IS NULL OR (f.needs_number AND ty.typcategory = 'S')\n"
            "     LIMIT 1;\n"
            "    IF problem IS NOT NULL THEN\n"
            "        {fail}\n"
            "    END IF;").format(
            t=_text(qualified), names=names, numeric=numeric,
            missing=_raise(_text(f"indb: table {shown} (--for-table) does not exist in this database; create it before "
                                 f"deploying {model_name}"), "undefined_table"),
            nocol=_text(f"indb: table {shown} has no column "),
            notnum=_text(f"indb: a column of table {shown} that {model_name} reads as a number is text; column "),
            fail=_raise(sql.SQL("problem OPERATOR(pg_catalog.||) {}").format(_text(f" (needed by {model_name})")),
                        "datatype_mismatch")))
    return out


def _version_checks(name: str, version: int, ir_sha: str, artifact: str) -> sql.Composed:
    """The version number: this artifact already there (a re-run), or the next free number."""
    ref = f"{name}@{version}"
    return sql.SQL(
        "    IF EXISTS (SELECT FROM indb.versions AS v WHERE v.model = {n} AND v.version = {v}) THEN\n"
        "        IF NOT EXISTS (SELECT FROM indb.versions AS v WHERE v.model = {n} AND v.version = {v}\n"
        "                          AND v.ir_sha256 = {s} AND v.artifact_sha256 = {a} AND v.retired_at IS NULL) THEN\n"
        "            {other}\n"
        "        END IF;\n"
        "        already := true;\n"
        "    ELSE\n"
        "        SELECT COALESCE(pg_catalog.max(v.version), 0) OPERATOR(pg_catalog.+) 1 INTO at FROM indb.versions AS v WHERE v.model = {n};\n"
        "        IF at OPERATOR(pg_catalog.<>) {v} THEN\n"
        "            {next}\n"
        "        END IF;\n"
        "    END IF;").format(
        n=_text(name), v=sql.Literal(version), s=_text(ir_sha), a=_text(artifact),
        other=_raise(_text(f"indb: {ref} already exists in this database and is another model (or is retired); "
                           "generate the script against a registry in the same state as this one"), "unique_violation"),
        next=_raise(sql.SQL("{} OPERATOR(pg_catalog.||) at::text OPERATOR(pg_catalog.||) {}").format(
            _text(f"indb: this script creates {ref}, but the next version of {name} in this database is "),
            _text("; generate the script against a registry in the same state as this one (or run indb deploy)")),
            "object_not_in_prerequisite_state"))


# ------------------------------------------------------------------ the scripts


def _do(tag: str, declare: list[str], body: list[sql.Composable]) -> sql.Composed:
    """One DO statement that pins search_path for itself and puts the caller's back."""
    dollar = sql.SQL("$" + tag + "$")  # a fixed tag of this module
    return _join([
        sql.SQL("DO {}").format(dollar),
        sql.SQL("DECLARE"),
        sql.SQL("    saved_path text := pg_catalog.current_setting('search_path');"),
        *[sql.SQL("    " + d) for d in declare],
        sql.SQL("BEGIN"),
        sql.SQL("    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);"),
        *body,
        sql.SQL("    PERFORM pg_catalog.set_config('search_path', saved_path, true);"),
        sql.SQL("END"),
        sql.SQL("{};").format(dollar),
    ])


def _execute(statements: list[str], indent: str = "    ") -> list[sql.Composable]:
    return [sql.SQL(indent + "EXECUTE {};").format(literal(s)) for s in statements]


def deploy_scripts(model: Any, name: str, *, dsn: str | None = None, **options) -> DeployScripts:
    """The deploy, revert and verify scripts of ``indb deploy MODEL --name NAME [options] --sql``.

    Rehearsed against ``dsn`` and rolled back. The database it is generated against must
    not have this artifact yet (generate the scripts before deploying it, as a release
    pipeline does): the rehearsal records what a deploy creates, and an identical artifact
    creates nothing.
    """
    import psycopg

    conn = connect(dsn, purpose="deploy --sql", autocommit=True)
    try:
        # tables named as the user sees them (their search_path), then passed on qualified
        tables = [(nsp, typ) for _, nsp, typ in (_rowtype_of(conn, t) for t in options.get("for_tables", ()))]
        options = dict(options, for_tables=[sql.Identifier(nsp, typ).as_string(conn) for nsp, typ in tables])
        rec = _Recorder(conn)
        try:
            deploy(model, name, conn=rec, _rehearse=True, **options)
        except _Rehearsed as r:
            result = r.result
        if not result.created:
            raise errors.UsageError(
                f"{name}@{result.version} in this database is already this artifact, so a deploy here creates nothing and "
                "the script could not create it elsewhere: generate the script against a database that does not have it "
                "yet (before deploying it there)")
        m, _, artifact = prepare(model, options.get("features"), options.get("on_missing", "null"), options.get("allow_pickle", False))
        from indb import ir

        ir_sha = ir.checksum(ir.model_to_json(m))
        n_functions = sum(1 for s in rec.statements["create"] if s.startswith("INSERT INTO indb.version_functions"))
        header = [
            f"-- indb deploy --sql: {result}",
            f"-- model IR sha256 {ir_sha}, artifact sha256 {artifact}",
        ]
        preconditions = [sql.SQL("    -- preconditions, before anything changes"),
                         *_catalog_checks(conn, result.engine == "plpython"),
                         *_table_checks(name, m.features, tables)]
        deploy_sql_text = _join([
            *[sql.SQL(h.replace("%", " percent")) for h in header],
            sql.SQL("-- One statement, atomic on its own and inside a migration tool's transaction (it commits nothing);"),
            sql.SQL("-- run again, it changes nothing. Needs the indb_deployer role and the catalog version it checks first."),
            _do("indb_deploy", ["at integer;", "problem text;", "already boolean := false;"], [
                *preconditions,
                *_execute(rec.statements["lock"]),
                _version_checks(name, result.version, ir_sha, artifact),
                sql.SQL("    -- the version and its functions (skipped when it is already here)"),
                sql.SQL("    IF NOT already THEN"),
                *_execute(rec.statements["create"], "        "),
                sql.SQL("    END IF;"),
                sql.SQL("    -- the alias and the bindings; the bound overloads are rebuilt from this database's registry"),
                *_execute(rec.statements["aliases"]),
            ]),
        ]).as_string(conn) + "\n"
        revert_text = _revert(conn, name, result, ir_sha).as_string(conn) + "\n"
        verify_text = _verify(name, result, ir_sha, n_functions).as_string(conn) + "\n"
        return DeployScripts(check_portable(deploy_sql_text, "deploy"), check_portable(revert_text, "revert"),
                             check_portable(verify_text, "verify"), result)
    except psycopg.Error as e:
        raise server_error(e) from None
    finally:
        conn.close()


def _revert(conn, name: str, result: DeployResult, ir_sha: str) -> sql.Composed:
    ref = f"{name}@{result.version}"
    head = [sql.SQL(f"-- indb deploy --sql, revert of {ref}: moves {name}@{result.alias or DEFAULT_ALIAS} back to where it pointed"),
            sql.SQL("-- before the deploy in this database (drops it if the deploy created it), and rebuilds the bound"),
            sql.SQL("-- overloads. The version stays registered (versions are immutable; indb retire removes its functions).")]
    if result.alias is None:
        return _join([*head, sql.SQL("-- The deploy moved no alias (--no-promote): there is nothing to revert."), sql.SQL("SELECT 1;")])
    n, a, v = _text(name), _text(result.alias), sql.Literal(result.version)
    body = [
        sql.SQL("    IF pg_catalog.to_regclass('indb.aliases') IS NULL THEN\n        {}\n    END IF;").format(
            _raise(_text("indb: this database has no indb catalog; there is nothing to revert"), "undefined_table")),
        sql.SQL("    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended({}, 0));").format(_text(_lock_key(name))),
        sql.SQL("    SELECT al.version INTO now_at FROM indb.aliases AS al WHERE al.model = {n} AND al.alias = {a} FOR UPDATE;").format(n=n, a=a),
        sql.SQL("    IF now_at IS DISTINCT FROM {v} THEN\n"
                "        RAISE NOTICE USING MESSAGE = {msg};\n"
                "        PERFORM pg_catalog.set_config('search_path', saved_path, true);\n"
                "        RETURN;\n"
                "    END IF;").format(v=v, msg=_text(f"indb - {name}@{result.alias} does not point to {result.version} here; nothing to revert")),
        sql.SQL("    SELECT h.from_version INTO before FROM indb.alias_history AS h\n"
                "     WHERE h.model = {n} AND h.alias = {a} AND h.to_version = {v} AND h.action = ANY (ARRAY['deploy', 'promote'])\n"
                "     ORDER BY h.id DESC LIMIT 1;").format(n=n, a=a, v=v),
        sql.SQL("    INSERT INTO indb.alias_history (model, alias, from_version, to_version, action) VALUES ({n}, {a}, {v}, before, 'rollback');").format(
            n=n, a=a, v=v),
        sql.SQL("    IF before IS NULL THEN\n"
                "        DELETE FROM indb.aliases AS al WHERE al.model = {n} AND al.alias = {a};\n"
                "    ELSE\n"
                "        UPDATE indb.aliases AS al SET version = before, moved_at = pg_catalog.now(), moved_by = session_user\n"
                "         WHERE al.model = {n} AND al.alias = {a};\n"
                "    END IF;").format(n=n, a=a),
        sql.SQL("    PERFORM indb.refresh_bindings({});").format(n),
    ]
    return _join([*head, _do("indb_revert", ["now_at integer;", "before integer;"], body)])


def _verify(name: str, result: DeployResult, ir_sha: str, n_functions: int) -> sql.Composed:
    ref = f"{name}@{result.version}"
    n, v = _text(name), sql.Literal(result.version)
    body = [
        sql.SQL("    IF NOT EXISTS (SELECT FROM indb.versions AS ve WHERE ve.model = {n} AND ve.version = {v} AND ve.ir_sha256 = {s}\n"
                "                      AND ve.retired_at IS NULL) THEN\n        {fail}\n    END IF;").format(
            n=n, v=v, s=_text(ir_sha), fail=_raise(_text(f"indb: {ref} (IR sha256 {ir_sha[:12]}) is not deployed in this database"),
                                                  "undefined_object")),
        sql.SQL("    IF (SELECT pg_catalog.count(*) FROM indb.version_functions AS f WHERE f.model = {n} AND f.version = {v}\n"
                "           AND pg_catalog.to_regprocedure(f.fn::text) IS NOT NULL) OPERATOR(pg_catalog.<>) {k} THEN\n"
                "        {fail}\n    END IF;").format(
            n=n, v=v, k=sql.Literal(n_functions),
            fail=_raise(_text(f"indb: {ref} does not have its {n_functions} scoring function(s)"), "undefined_function")),
        sql.SQL("    IF EXISTS (SELECT FROM indb.bindings AS b JOIN pg_catalog.pg_type AS t ON t.oid = b.rowtype::oid\n"
                "                WHERE b.model = {n} AND pg_catalog.to_regprocedure(\n"
                "                      'indb.predict(text, ' OPERATOR(pg_catalog.||) b.rowtype::text OPERATOR(pg_catalog.||) ')') IS NULL) THEN\n"
                "        {fail}\n    END IF;").format(
            n=n, fail=_raise(_text(f"indb: a table bound to {name} has no bound overload; run indb bind again"), "undefined_function")),
    ]
    if result.alias is not None:
        body.append(sql.SQL(
            "    IF (SELECT al.version FROM indb.aliases AS al WHERE al.model = {n} AND al.alias = {a}) IS DISTINCT FROM {v} THEN\n"
            "        {fail}\n    END IF;").format(
            n=n, a=_text(result.alias), v=v,
            fail=_raise(_text(f"indb: {name}@{result.alias} does not point to {result.version}"), "object_not_in_prerequisite_state")))
    return _join([sql.SQL(f"-- indb deploy --sql, verify of {ref}: raises an error unless it is deployed as the deploy script left it."),
                  _do("indb_verify", [], body)])


def deploy_sql(model: Any, name: str, *, dsn: str | None = None, **options) -> str:
    """The deploy script alone (:func:`deploy_scripts`)."""
    return deploy_scripts(model, name, dsn=dsn, **options).deploy

