"""The model registry: deploy, promote, rollback, retire, bind, and listing.

Every operation is one transaction run as the deployer itself (plain table privileges on
the registry; version functions are created after ``SET LOCAL ROLE indb_versions``; nobody
acts as ``indb_owner``), takes a transaction-level advisory lock on the model name (so
concurrent deploys of one name get consecutive versions), and leaves nothing behind
when it fails or the client dies::

    >>> from indb import deploy
    >>> deploy("churn.skops", name="churn")                   # doctest: +SKIP
    DeployResult(model='churn', version=1, created=True, alias='champion', ...)
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from psycopg import sql

from indb import errors, ir
from indb.catalog.connection import as_versions, connect, server_error, translate, user_relation
from indb.compilers.files import check_storable, load_model_file
from indb.sqlgen.compile import to_ir
from indb.registry.functions import (
    ENTRY_POINTS,
    VersionFunction,
    function_name,
    plpython_version_functions,
    sql_version_functions,
)

DEFAULT_ALIAS = "champion"

#: above this many bytes of function bodies, PostgreSQL spends too long (and too much
#: memory) planning a version's SQL: auto picks the PL/Python engine, and an explicit
#: --engine sql is refused. SQL repeats a shared subexpression at every use (a
#: multiclass ensemble's softmax reads every class score K times), so this is
#: measured on the rendered SQL, not on the IR.
SQL_BYTES_LIMIT = 2_000_000
#: above this many comparisons per row (tree ensembles), the PL/Python engine's
#: compiled kernel beats PostgreSQL's expression interpreter (see bench/README.md:
#: XGBoost 200x6, 1,183 comparisons, bound sum over 1M rows 29 s as SQL, 14.5 s on the
#: engine; one row 47 against 19 us). Below it the SQL stays: a parallel worker starts
#: no engine, which a statement of some thousand rows would wait for
SQL_STEPS_LIMIT = 1_000
#: above this many arithmetic operations per row (an MLP's layers, a kernel machine's
#: support vectors), numpy's matrix products beat one operation at a time
SQL_OPS_LIMIT = 5_000


# ---------------------------------------------------------------------- results


@dataclass
class DeployResult:
    model: str
    version: int
    created: bool
    alias: str | None
    previous: int | None
    engine: str
    engine_reason: str

    def __str__(self) -> str:
        what = "deployed" if self.created else "unchanged (identical artifact)"
        moved = f"; {self.alias} -> {self.version}" if self.alias else ""
        if self.alias and self.previous is not None and self.previous != self.version:
            moved += f" (was {self.previous})"
        return f"{self.model}@{self.version} {what}, engine {self.engine} ({self.engine_reason}){moved}"


@dataclass(frozen=True)
class PromoteResult:
    """What :func:`promote` did: ``alias`` of ``model`` now points at ``version``
    (``previous`` is where it pointed before; None for a new alias)."""

    model: str
    alias: str
    version: int
    previous: int | None

    @property
    def changed(self) -> bool:
        return self.previous != self.version

    def __str__(self) -> str:
        if not self.changed:
            return f"{self.model}@{self.alias} already points to {self.version}: nothing to do"
        return f"{self.model}@{self.alias} -> {self.version}" + (f" (was {self.previous})" if self.previous is not None else "")


@dataclass(frozen=True)
class RollbackResult:
    """What :func:`rollback` did: ``alias`` of ``model`` moved from ``from_version`` back to ``to_version``."""

    model: str
    alias: str
    from_version: int
    to_version: int

    def __str__(self) -> str:
        return f"{self.model}@{self.alias} -> {self.to_version} (was {self.from_version})"


@dataclass(frozen=True)
class RetireResult:
    """What :func:`retire` did: ``model@version`` can no longer be scored; ``functions``
    is how many of its SQL functions were dropped."""

    model: str
    version: int
    functions: int
    #: with ``force``: each alias that pointed to the version -> its new version (None: dropped)
    moved: dict = field(default_factory=dict)

    def __str__(self) -> str:
        notes = [f"{self.model}@{a} -> {v}" if v is not None else f"alias {a} dropped" for a, v in self.moved.items()]
        return (f"{self.model}@{self.version} retired ({self.functions} scoring function(s) dropped; its registry entry and log rows stay"
                + "".join(f"; {n}" for n in notes) + ")")


@dataclass
class VersionInfo:
    model: str
    version: int
    engine: str
    engine_reason: str
    created_at: Any
    created_by: str
    retired_at: Any
    aliases: list[str] = field(default_factory=list)
    #: outputs served by an installed function (predict, label, proba, ...): what works
    outputs: list[str] = field(default_factory=list)
    ir_sha256: str = ""
    source_uri: str | None = None
    run_id: str | None = None
    metrics: dict | None = None
    retired_by: str | None = None


# ---------------------------------------------------------------- engine choice


def tree_steps(e: ir.Expr) -> int:
    """Comparisons per row a SQL CASE evaluation needs (average leaf depth per tree, summed)."""
    total = 0.0
    for node in ir.walk(e):
        if isinstance(node, ir.TreeEnsemble):
            for t in node.trees:
                depths: list[int] = []
                stack = [(0, 0)]
                while stack:
                    n, d = stack.pop()
                    if t.feature[n] < 0:
                        depths.append(d)
                    else:
                        stack.append((t.left[n], d + 1))
                        stack.append((t.right[n], d + 1))
                total += sum(depths) / len(depths)
    return int(total)


def arithmetic_ops(e: ir.Expr) -> int:
    """IR operations per row outside tree ensembles (shared subtrees counted once)."""
    total = 0
    for n in ir.walk(e):
        if not isinstance(n, ir.TreeEnsemble):
            total += 1
    return total


def sql_bytes(fns: Sequence[VersionFunction]) -> int:
    return sum(len(f.body.encode()) for f in fns)


def choose_engine(model: ir.Model, requested: str, plpython_available: bool, sql_fns: Sequence[VersionFunction] | None) -> tuple[str, str]:
    """(engine, reason) for ``--engine auto|sql|plpython``; ``sql_fns`` is the SQL the version
    would get (None when it could not be rendered)."""
    if requested not in ("auto", "sql", "plpython"):
        raise errors.UsageError(f"--engine must be auto, sql or plpython, not {requested!r}")
    if requested == "plpython":
        if not plpython_available:
            raise errors.IndbError(
                "the PL/Python engine is not installed in this database: a superuser runs `indb migrate --component plpython`"
            )
        return "plpython", "asked for"
    size = sql_bytes(sql_fns) if sql_fns is not None else None
    too_big = size is None or size > SQL_BYTES_LIMIT
    big_why = "its SQL cannot be written" if size is None else f"its SQL would be {size / 1e6:.1f} MB (limit {SQL_BYTES_LIMIT / 1e6:.0f} MB)"
    if requested == "sql":
        if too_big:
            refused = errors.CompileError(f"the SQL engine cannot take this model: {big_why}; deploy it with --engine plpython (or auto)")
            refused.sql_bytes = size  # what was measured (None: the SQL could not be written)
            raise refused
        return "sql", "asked for"
    steps = max(tree_steps(e) for _, e in model.outputs)
    if too_big:
        if plpython_available:
            return "plpython", big_why
        raise errors.CompileError(f"{big_why}, and the PL/Python engine is not installed: a superuser runs `indb migrate --component plpython`")
    ops = max(arithmetic_ops(e) for _, e in model.outputs)
    if ops > SQL_OPS_LIMIT:
        why = f"{ops:,} operations per row; numpy's matrix products beat SQL above {SQL_OPS_LIMIT:,}"
        if plpython_available:
            return "plpython", why
        return "sql", why + ", but the PL/Python engine is not installed"
    if steps > SQL_STEPS_LIMIT:
        why = f"{steps:,} tree comparisons per row; the PL/Python kernel is faster above {SQL_STEPS_LIMIT:,}"
        if plpython_available:
            return "plpython", why
        return "sql", why + ", but the PL/Python engine is not installed"
    return "sql", f"inlinable SQL ({size / 1e3:,.0f} kB, {steps:,} tree comparisons per row)"


# ------------------------------------------------------------------ connections


def _as_deployer(conn) -> None:
    """Refuse a session that may not deploy, before anything is written.

    Deployers write the registry as themselves (table privileges of indb_deployer) and
    create functions as indb_versions (:func:`as_versions`); nobody acts as indb_owner.
    """
    row = conn.execute(
        "SELECT r.rolsuper OR pg_catalog.pg_has_role(session_user, 'indb_deployer', 'MEMBER')"
        " FROM pg_catalog.pg_roles AS r WHERE r.rolname = session_user").fetchone()
    if not row[0]:
        raise errors.PermissionError(
            "this needs the indb_deployer role (a DBA runs `indb grant deployer <you>`, or GRANT indb_deployer TO <you>)")


#: how long a registry command waits for another one on the same model (INDB_LOCK_TIMEOUT, seconds)
LOCK_TIMEOUT_S = 30.0


def _lock_key(name: str) -> str:
    return "indb.model:" + name


def _lock_timeout() -> float:
    import os

    return float(os.environ.get("INDB_LOCK_TIMEOUT", LOCK_TIMEOUT_S))


def _lock_model(conn, name: str) -> None:
    """Serialise registry changes of one model; waits at most ``INDB_LOCK_TIMEOUT`` seconds.

    Anyone may take an advisory lock, so a stranger can hold this one: the wait is bounded
    and its failure names the holder (:func:`_lock_holder`)."""
    timeout = _lock_timeout()
    previous = conn.execute("SELECT pg_catalog.current_setting('lock_timeout')").fetchone()[0]
    conn.execute("SELECT pg_catalog.set_config('lock_timeout', %s, true)", [f"{max(1, int(timeout * 1000))}ms"])
    conn.execute("SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended(%s, 0))", [_lock_key(name)])
    conn.execute("SELECT pg_catalog.set_config('lock_timeout', %s, true)", [previous])


def _lock_holder(conn, name: str) -> errors.LockTimeout:
    """The error for a registry lock that did not come: who holds it (pid, role, application)."""
    row = conn.execute(
        "SELECT a.pid, a.usename, a.application_name, a.state FROM pg_catalog.pg_locks AS l"
        " JOIN pg_catalog.pg_stat_activity AS a ON a.pid OPERATOR(pg_catalog.=) l.pid"
        " WHERE l.locktype OPERATOR(pg_catalog.=) 'advisory' AND l.granted"
        " AND l.database OPERATOR(pg_catalog.=) (SELECT d.oid FROM pg_catalog.pg_database AS d"
        "     WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database())"
        " AND ((l.classid::bigint OPERATOR(pg_catalog.<<) 32) OPERATOR(pg_catalog.|) l.objid::bigint)"
        "     OPERATOR(pg_catalog.=) pg_catalog.hashtextextended(%s, 0) LIMIT 1", [_lock_key(name)]).fetchone()
    waited = f"waited {_lock_timeout():g} s for the registry lock of model {name!r}"
    if row is None:
        return errors.LockTimeout(f"{waited}; its holder has just let go: run the command again")
    pid, user, app, state = row
    return errors.LockTimeout(
        f"{waited}: pid {pid} (role {user}, application_name {app!r}, {state}) holds it. Wait for it, raise "
        f"INDB_LOCK_TIMEOUT, or end it with SELECT pg_terminate_backend({pid})")


def _plpython_installed(conn) -> bool:
    return conn.execute(
        "SELECT pg_catalog.to_regprocedure('indb.engine_float(text, integer, text, double precision[], text[])') IS NOT NULL"
    ).fetchone()[0]


def _check_catalog(conn) -> None:
    from indb.catalog.migrator import require_current

    require_current(conn)


def _validate_name(name: str) -> None:
    import re

    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_.-]{0,62}", name or ""):
        raise errors.UsageError(
            f"invalid model name {name!r}: start with a letter; letters, digits, _ . - only; at most 63 characters"
        )


def _validate_alias(alias: str) -> None:
    import re

    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]{0,62}", alias or ""):
        raise errors.UsageError(f"invalid alias {alias!r}: start with a letter; letters, digits, _ - only")


# ------------------------------------------------------------------------ deploy


def _features_json(model: ir.Model) -> str:
    return json.dumps([[f.name, f.kind] for f in model.features])


def _classes_json(model: ir.Model) -> str | None:
    return None if model.classes is None else json.dumps(list(model.classes))


def _onnx_export(estimator: Any, model: ir.Model) -> bytes | None:
    """An ONNX export of a scikit-learn estimator where skl2onnx can make one (else None)."""
    if estimator is None or isinstance(estimator, ir.Model) or any(f.kind == ir.TEXT for f in model.features):
        return None
    try:
        from skl2onnx import to_onnx
        from skl2onnx.common.data_types import DoubleTensorType

        onx = to_onnx(estimator, initial_types=[("X", DoubleTensorType([None, len(model.features)]))], target_opset=17)
        return canonical_onnx(onx)
    except Exception:  # noqa: BLE001 - an export is a convenience; its absence is recorded as NULL
        return None


def canonical_onnx(onx: Any) -> bytes:
    """The model's bytes with its opset imports sorted by domain: skl2onnx lists them in
    the order of a set of strings, which changes with Python's hash seed, so the same
    deploy would otherwise print a different `indb deploy --sql` script in another process."""
    from onnx import helper

    opsets = sorted((o.domain, o.version) for o in onx.opset_import)
    del onx.opset_import[:]
    onx.opset_import.extend(helper.make_opsetid(d, v) for d, v in opsets)
    return onx.SerializeToString()


def _read_baseline(baseline: Any) -> str | None:
    """Training-data statistics for drift monitoring, from a JSON file or a dict."""
    if baseline is None:
        return None
    if isinstance(baseline, dict):
        return json.dumps(baseline)
    try:
        with open(baseline) as f:
            data = json.load(f)
    except OSError as e:
        raise errors.UsageError(f"--baseline {baseline}: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise errors.UsageError(f"--baseline {baseline}: not JSON ({e})") from None
    return json.dumps(data)


def model_origin(model: Any):
    """Where a model file came from (``mlflow_models.Origin``: URI, run, metrics), or None
    for an estimator or an IR given as an object."""
    if not (isinstance(model, str) or hasattr(model, "__fspath__")):
        return None
    import os

    from indb.compilers import mlflow_models

    ref = os.fspath(model)
    if mlflow_models.is_mlflow_ref(ref):
        return mlflow_models.describe(ref)
    return mlflow_models.Origin(os.path.abspath(ref))


def _origin_row(origin) -> list:
    """(source_uri, run_id, metrics) of a version."""
    if origin is None:
        return [None, None, None]
    return [origin.uri, origin.run_id, None if origin.metrics is None else json.dumps(origin.metrics)]


def prepare(model: Any, features: Sequence[str] | None = None, on_missing: str = "null",
            allow_pickle: bool = False) -> tuple[ir.Model, Any, str]:
    """(IR, the estimator or None, artifact sha256) for a model file, an estimator or an IR."""
    estimator = None
    artifact = None
    what = "the model"
    if isinstance(model, (str, bytes)) or hasattr(model, "__fspath__"):
        what = str(model)
        estimator, artifact = load_model_file(what, allow_pickle=allow_pickle)
    else:
        estimator = model
    m = to_ir(estimator, features, on_missing)
    check_storable(m, what)  # what PostgreSQL cannot store (NaN leaves, NUL bytes), named first
    try:
        ir.validate_model(m)  # what the engine and the server-side check would refuse
    except ValueError as e:
        raise errors.CompileError(f"the model's IR is not valid, nothing was deployed: {e}") from None
    if artifact is None:
        artifact = ir.checksum(ir.model_to_json(m))
    return m, estimator, artifact


def deploy(
    model: Any,
    name: str,
    *,
    dsn: str | None = None,
    features: Sequence[str] | None = None,
    alias: str | None = None,
    promote: bool = True,
    engine: str = "auto",
    baseline: Any = None,
    for_tables: Iterable[str] = (),
    on_missing: str = "null",
    allow_pickle: bool = False,
    conn=None,
    _rehearse: bool = False,
) -> DeployResult:
    """Register a new version of ``name`` and install its functions, in one transaction.

    ``model`` is a model file (``indb.compilers.files``: ``.skops``, ``.onnx``, XGBoost
    ``.json``/``.ubj``, LightGBM ``.txt``; ``.joblib``/``.pkl`` only with ``allow_pickle``,
    since pickle runs code while it loads), a fitted estimator or an ``ir.Model``. The
    alias ``champion`` (or ``alias``) moves to the new version unless ``promote=False``. An artifact identical to an existing version registers nothing
    and only moves the alias.
    """
    _validate_name(name)
    target_alias = alias or DEFAULT_ALIAS
    _validate_alias(target_alias)
    origin = model_origin(model)
    m, estimator, artifact = prepare(origin.folder or model if origin else model, features, on_missing, allow_pickle)
    # rendered before any connection: the SQL engine's functions, and their size
    try:
        sql_fns = sql_version_functions(m, name, 0) if engine != "plpython" else None
    except errors.CompileError:
        if engine == "sql":
            raise
        sql_fns = None
    model_json = ir.model_to_json(m)
    ir_sha = ir.checksum(model_json)
    baseline_json = _read_baseline(baseline)
    own = conn is None
    if own:
        conn = connect(dsn, purpose="deploy", autocommit=True)
    try:
        import psycopg

        try:
            # tables are named as the user sees them, before search_path is pinned
            table_types = [_rowtype_of(conn, t) for t in for_tables]
            with conn.transaction():
                _check_catalog(conn)
                _as_deployer(conn)
                _lock_model(conn, name)
                _section(conn, "create")
                conn.execute("INSERT INTO indb.models (name) VALUES (%s) ON CONFLICT DO NOTHING", [name])
                row = conn.execute(
                    "SELECT version, engine, engine_reason FROM indb.versions WHERE model = %s AND artifact_sha256 = %s"
                    " AND ir_sha256 = %s AND retired_at IS NULL ORDER BY version DESC LIMIT 1",
                    [name, artifact, ir_sha],
                ).fetchone()
                if row is not None:
                    version, eng, reason = row
                    created = False
                    if baseline_json is not None:  # attached to the version it found, never dropped silently
                        conn.execute("UPDATE indb.versions SET baseline = %s WHERE model = %s AND version = %s"
                                     " AND baseline IS DISTINCT FROM %s::jsonb", [baseline_json, name, version, baseline_json])
                else:
                    eng, reason = choose_engine(m, engine, _plpython_installed(conn), sql_fns)
                    version = conn.execute(
                        "SELECT COALESCE(pg_catalog.max(version), 0) + 1 FROM indb.versions WHERE model = %s", [name]
                    ).fetchone()[0]
                    onnx_bytes = _onnx_export(estimator, m)
                    conn.execute(
                        "INSERT INTO indb.versions (model, version, ir, ir_sha256, artifact_sha256, onnx, features, classes,"
                        " outputs, engine, engine_reason, baseline, source_uri, run_id, metrics)"
                        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                        [name, version, model_json, ir_sha, artifact, onnx_bytes, _features_json(m), _classes_json(m),
                         list(m.output_kinds), eng, reason, baseline_json, *_origin_row(origin)],
                    )
                    install_functions(conn, m, name, version, eng, sql_fns)
                    created = True
                _section(conn, "aliases")
                previous = None
                moved_alias = None
                if promote:
                    previous = _move_alias(conn, name, target_alias, version, "deploy")
                    moved_alias = target_alias
                for _, nsp, typ in table_types:
                    _add_binding(conn, name, nsp, typ)
                refresh_bindings(conn, name)
                result = DeployResult(name, version, created, moved_alias, previous, eng, reason)
                if _rehearse:
                    raise _Rehearsed(result)
        except psycopg.errors.LockNotAvailable:
            raise _lock_holder(conn, name) from None
        except psycopg.Error as e:
            raise server_error(e) from None
        return result
    finally:
        if own:
            conn.close()


def _section(conn, name: str) -> None:
    """Tells a ``deploy --sql`` rehearsal (indb.registry.scripts) which part of the deploy the next statements are."""
    mark = getattr(conn, "section", None)
    if callable(mark):
        mark(name)


class _Rehearsed(Exception):
    """Rolls a rehearsed deploy back, carrying what it would have done."""

    def __init__(self, result: DeployResult) -> None:
        super().__init__("rehearsal")
        self.result = result


def install_functions(conn, m: ir.Model, name: str, version: int, engine: str, sql_fns=None) -> list[VersionFunction]:
    """Create a version's functions (revoked from PUBLIC in the same transaction)."""
    if engine == "sql":
        # bodies rendered earlier (for version 0) only need their names
        fns = [dataclasses.replace(f, name=function_name(name, version, f.output)) for f in sql_fns] \
            if sql_fns is not None else sql_version_functions(m, name, version)
    else:
        fns = plpython_version_functions(m, name, version)
    for f in fns:
        sig = f.signature(m)
        with as_versions(conn):
            conn.execute(f.create(m))
            conn.execute(sql.SQL("REVOKE ALL ON FUNCTION {} FROM PUBLIC").format(sig))
            conn.execute(sql.SQL("GRANT EXECUTE ON FUNCTION {} TO indb_scorer").format(sig))
        conn.execute(
            "INSERT INTO indb.version_functions (model, version, output, fn, result_type)"
            " VALUES (%s, %s, %s, %s::regprocedure, %s)",
            [name, version, f.output, sig.as_string(conn), f.result_type],
        )
        # the generic path's adapter (sql/10_generic_path.sql): generated by the server from the row just written
        with as_versions(conn):
            conn.execute(sql.SQL("SELECT indb.install_generic_adapter({}::regprocedure)").format(sql.Literal(sig.as_string(conn))))
    # governance: output column names for `indb score`, grants to a per-model scorer role
    from indb.governance.hooks import after_install

    after_install(conn, m, name, version, fns)
    return fns


# ---------------------------------------------------------------------- aliases


def _alias_stack(conn, name: str, alias: str) -> tuple[int | None, list[int]]:
    """(current target, previous targets as a stack) replayed from the alias history."""
    rows = conn.execute(
        "SELECT action, from_version, to_version FROM indb.alias_history WHERE model = %s AND alias = %s ORDER BY id",
        [name, alias],
    ).fetchall()
    stack: list[int] = []
    current = None
    for action, frm, to in rows:
        if action == "rollback":
            if stack:
                stack.pop()
        elif action == "retire":  # retire --force: back to the stack's latest other target, or the alias is gone
            while stack and stack[-1] != to:
                stack.pop()
            if stack:
                stack.pop()
        elif frm is not None and frm != to:
            stack.append(frm)
        current = to
    return current, stack


def _move_alias(conn, name: str, alias: str, version: int, action: str) -> int | None:
    """Point ``alias`` at ``version`` and record the move; returns where it pointed before.

    The two writes read the alias's current target themselves (no value read here goes
    into them), so a ``deploy --sql`` script that replays them is right in any database."""
    current = conn.execute("SELECT version FROM indb.aliases WHERE model = %s AND alias = %s FOR UPDATE", [name, alias]).fetchone()
    previous = current[0] if current else None
    conn.execute(
        "INSERT INTO indb.alias_history (model, alias, from_version, to_version, action)"
        " SELECT %(m)s, %(a)s, (SELECT version FROM indb.aliases WHERE model = %(m)s AND alias = %(a)s), %(v)s, %(act)s"
        " WHERE (SELECT version FROM indb.aliases WHERE model = %(m)s AND alias = %(a)s) IS DISTINCT FROM %(v)s",
        {"m": name, "a": alias, "v": version, "act": action},
    )
    conn.execute(
        "INSERT INTO indb.aliases (model, alias, version) VALUES (%s, %s, %s)"
        " ON CONFLICT (model, alias) DO UPDATE SET version = EXCLUDED.version, moved_at = pg_catalog.now(), moved_by = session_user"
        " WHERE indb.aliases.version IS DISTINCT FROM EXCLUDED.version",
        [name, alias, version],
    )
    return previous


def _registry_txn(dsn, purpose: str, conn=None, before=None, model: str | None = None):
    """A registry transaction of a deployer; with ``before``, yields (conn, before(conn)),
    where ``before`` runs first. ``model`` names the model whose lock a timeout reports."""
    from contextlib import contextmanager

    @contextmanager
    def ctx():
        import psycopg

        own = conn is None
        c = connect(dsn, purpose=purpose, autocommit=True) if own else conn
        try:
            pre = before(c) if before is not None else None
            with c.transaction():
                _check_catalog(c)
                _as_deployer(c)
                yield (c, pre) if before is not None else c
        except psycopg.errors.LockNotAvailable:
            raise _lock_holder(c, model or "?") from None
        except psycopg.Error as e:
            raise server_error(e) from None
        finally:
            if own:
                c.close()

    return ctx()


def _require_model(conn, name: str) -> None:
    if conn.execute("SELECT 1 FROM indb.models WHERE name = %s", [name]).fetchone() is None:
        raise errors.NotFoundError(f"unknown model {name!r}: `indb models` lists the deployed models")


def _require_version(conn, name: str, version: int) -> None:
    _require_model(conn, name)
    row = conn.execute("SELECT retired_at FROM indb.versions WHERE model = %s AND version = %s", [name, version]).fetchone()
    if row is None:
        raise errors.NotFoundError(f"model {name!r} has no version {version}: `indb models {name}` lists its versions")
    if row[0] is not None:
        raise errors.IndbError(f"{name}@{version} is retired and cannot be promoted or scored")


def promote(name: str, version: int, *, alias: str = DEFAULT_ALIAS, dsn: str | None = None, conn=None) -> PromoteResult:
    """Point ``alias`` of ``name`` at ``version``::

        >>> promote("churn", 3)                                    # doctest: +SKIP
        PromoteResult(model='churn', alias='champion', version=3, previous=2)
    """
    _validate_alias(alias)
    with _registry_txn(dsn, "promote", conn, model=name) as c:
        _lock_model(c, name)
        _require_version(c, name, int(version))
        prev = _move_alias(c, name, alias, int(version), "promote")
        refresh_bindings(c, name)
        return PromoteResult(name, alias, int(version), prev)


def rollback(name: str, *, alias: str = DEFAULT_ALIAS, dsn: str | None = None, conn=None) -> RollbackResult:
    """Move ``alias`` back to its previous target; a second rollback goes one step further back::

        >>> rollback("churn")                                      # doctest: +SKIP
        RollbackResult(model='churn', alias='champion', from_version=3, to_version=2)
    """
    _validate_alias(alias)
    with _registry_txn(dsn, "rollback", conn, model=name) as c:
        _lock_model(c, name)
        _require_model(c, name)
        current, stack = _alias_stack(c, name, alias)
        if current is None:
            raise errors.NotFoundError(f"model {name!r} has no alias {alias!r}")
        while stack:
            target = stack[-1]
            retired = c.execute("SELECT retired_at FROM indb.versions WHERE model = %s AND version = %s", [name, target]).fetchone()[0]
            if retired is None:
                break
            raise errors.IndbError(f"cannot roll {name}@{alias} back to version {target}: it is retired")
        if not stack:
            raise errors.IndbError(f"{name}@{alias} has no earlier version to roll back to")
        target = stack[-1]
        c.execute("UPDATE indb.aliases SET version = %s, moved_at = pg_catalog.now(), moved_by = session_user WHERE model = %s AND alias = %s",
                  [target, name, alias])
        c.execute("INSERT INTO indb.alias_history (model, alias, from_version, to_version, action) VALUES (%s, %s, %s, %s, 'rollback')",
                  [name, alias, current, target])
        refresh_bindings(c, name)
        return RollbackResult(name, alias, current, target)


def retire(name: str, version: int, *, force: bool = False, dsn: str | None = None, conn=None) -> RetireResult:
    """Retire a version: it can no longer be scored; its registry entry and log rows stay::

        >>> retire("churn", 1)                                     # doctest: +SKIP
        RetireResult(model='churn', version=1, functions=3, moved={})

    A version an alias points to is refused, unless ``force``: then each such alias moves
    back to its previous live target (as :func:`rollback` would), or is dropped when it has
    none; both are recorded in the alias history (``RetireResult.moved``: {alias: its new
    version or None}).
    """
    with _registry_txn(dsn, "retire", conn, model=name) as c:
        _lock_model(c, name)
        _require_version(c, name, int(version))
        pointing = [r[0] for r in c.execute("SELECT alias FROM indb.aliases WHERE model = %s AND version = %s ORDER BY alias", [name, version])]
        if pointing and not force:
            raise errors.IndbError(
                f"{name}@{version} cannot be retired: alias {', '.join(pointing)} points to it (promote another version "
                "first, or pass --force to move each alias back to its previous version or drop it)"
            )
        moved = {alias: _retire_alias(c, name, alias, int(version)) for alias in pointing}
        c.execute("UPDATE indb.versions SET retired_at = pg_catalog.now() WHERE model = %s AND version = %s", [name, version])
        refresh_bindings(c, name)  # first: the bound overloads call the functions dropped next
        fns = c.execute("SELECT fn::text, indb.generic_adapter(fn)::text FROM indb.version_functions WHERE model = %s AND version = %s",
                        [name, version]).fetchall()
        with as_versions(c):
            for fn, adapter in fns:
                # regprocedure texts from the catalog itself; the adapter first (it calls the function)
                if adapter is not None:
                    c.execute(sql.SQL("DROP FUNCTION {}").format(sql.SQL(adapter)))
                c.execute(sql.SQL("DROP FUNCTION {}").format(sql.SQL(fn)))
        c.execute("DELETE FROM indb.version_functions WHERE model = %s AND version = %s", [name, version])
        return RetireResult(name, int(version), len(fns), moved)


def _retire_alias(c, name: str, alias: str, version: int) -> int | None:
    """Move ``alias`` off ``version`` (being retired) to its latest earlier live target, or drop it."""
    _, stack = _alias_stack(c, name, alias)
    live = {r[0] for r in c.execute("SELECT version FROM indb.versions WHERE model = %s AND retired_at IS NULL", [name])}
    target = next((v for v in reversed(stack) if v != version and v in live), None)
    if target is not None:
        c.execute("UPDATE indb.aliases SET version = %s, moved_at = pg_catalog.now(), moved_by = session_user WHERE model = %s AND alias = %s",
                  [target, name, alias])
    else:
        c.execute("DELETE FROM indb.aliases WHERE model = %s AND alias = %s", [name, alias])
    c.execute("INSERT INTO indb.alias_history (model, alias, from_version, to_version, action) VALUES (%s, %s, %s, %s, 'retire')",
              [name, alias, version, target])
    return target


# ---------------------------------------------------------------------- bindings


def _rowtype_of(conn, table: str) -> tuple[int, str, str]:
    row = conn.execute(
        "SELECT c.reltype::oid, n.nspname, t.typname FROM pg_catalog.pg_class c"
        " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace JOIN pg_catalog.pg_type t ON t.oid = c.reltype"
        " WHERE c.oid = %s",
        [user_relation(conn, table)],
    ).fetchone()
    if row is None:
        raise errors.NotFoundError(f"table {table!r} does not exist (or is not on the search_path; qualify it as schema.table)")
    return row


def _add_binding(conn, name: str, nsp: str, typ: str) -> None:
    """Bind by the row type's name (never its oid), so a ``deploy --sql`` script binds the table of the database it runs in."""
    conn.execute("INSERT INTO indb.bindings (model, rowtype) VALUES (%s, %s::regtype) ON CONFLICT DO NOTHING",
                 [name, sql.Identifier(nsp, typ).as_string(conn)])


def bind(name: str, table: str, *, dsn: str | None = None, conn=None) -> str:
    """Make ``indb.predict(name, row)`` fast for rows of ``table``'s type; returns the type's name."""
    with _registry_txn(dsn, "bind", conn, before=lambda c: _rowtype_of(c, table), model=name) as (c, (oid, nsp, typ)):
        _lock_model(c, name)
        _require_model(c, name)
        _add_binding(c, name, nsp, typ)
        refresh_bindings(c, name)
        return f"{nsp}.{typ}"


def unbind(name: str, table: str, *, dsn: str | None = None, conn=None) -> str:
    """Undo :func:`bind`: rows of ``table``'s type take the generic path again.

    ``table`` may also be the row type's oid, as ``indb validate`` prints it for a binding
    whose table is gone. Returns the row type's name (or its oid).
    """
    def target(c):
        if table.isdigit():
            return int(table), table
        oid, nsp, typ = _rowtype_of(c, table)
        return oid, f"{nsp}.{typ}"

    with _registry_txn(dsn, "unbind", conn, before=target, model=name) as (c, (oid, shown)):
        _lock_model(c, name)
        _require_model(c, name)
        gone = c.execute("DELETE FROM indb.bindings WHERE model = %s AND rowtype::oid = %s", [name, oid]).rowcount
        if not gone:
            raise errors.NotFoundError(f"model {name!r} is not bound to {shown}: `indb models {name}` lists its bindings")
        if c.execute("SELECT 1 FROM pg_catalog.pg_type WHERE oid = %s", [oid]).fetchone() is not None:
            _refresh_rowtype(c, oid)
        return shown


def refresh_bindings(conn, name: str) -> None:
    """Re-create the overloads of every row type bound to ``name`` (after any registry change).

    The server rebuilds them from the registry (``indb.refresh_bindings``, sql/25_bindings.sql),
    so a ``deploy --sql`` script gets the overloads of the database it runs in. A binding
    whose table is gone is skipped; ``indb validate`` reports it."""
    conn.execute("SELECT indb.refresh_bindings(%s)", [name])


def _refresh_rowtype(conn, type_oid: int) -> None:
    conn.execute("SELECT indb.refresh_rowtype(%s)", [type_oid])


# ------------------------------------------------------------------------ listing


def models(name: str | None = None, *, dsn: str | None = None, conn=None) -> list[VersionInfo]:
    """Every version (of ``name``, or of every model) with its aliases and engine."""
    own = conn is None
    c = connect(dsn, purpose="models", autocommit=True) if own else conn
    try:
        import psycopg

        try:
            _check_catalog(c)
            if name is not None and c.execute("SELECT 1 FROM indb.models WHERE name = %s", [name]).fetchone() is None:
                raise errors.NotFoundError(f"unknown model {name!r}: `indb models` lists the deployed models")
            rows = c.execute(
                "SELECT v.model, v.version, v.engine, COALESCE(v.engine_reason, ''), v.created_at, v.created_by, v.retired_at,"
                " COALESCE((SELECT pg_catalog.array_agg(a.alias ORDER BY a.alias) FROM indb.aliases a"
                "   WHERE a.model = v.model AND a.version = v.version), '{}'),"
                # the outputs that have an installed function (a text-labelled classifier
                # has `label`, not `predict`), in the order of the entry points
                " COALESCE((SELECT pg_catalog.array_agg(f.output ORDER BY pg_catalog.array_position(%s::text[], f.output))"
                "   FROM indb.version_functions f WHERE f.model = v.model AND f.version = v.version), v.outputs), v.ir_sha256,"
                " v.source_uri, v.run_id, v.metrics, v.retired_by"
                " FROM indb.versions v WHERE (%s::text IS NULL OR v.model = %s) ORDER BY v.model, v.version",
                [[out for out, _ in ENTRY_POINTS.values()], name, name],
            ).fetchall()
        except psycopg.Error as e:
            raise translate(e) from None
        return [VersionInfo(*r[:7], aliases=list(r[7]), outputs=list(r[8]), ir_sha256=r[9], source_uri=r[10], run_id=r[11],
                            metrics=r[12], retired_by=r[13]) for r in rows]
    finally:
        if own:
            c.close()
