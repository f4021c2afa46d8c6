"""The SQL functions a deploy installs: one per version and output, and the bound overloads.

Per-version functions of SQL-compiled models are inlinable: ``LANGUAGE sql``,
``IMMUTABLE``, ``PARALLEL SAFE``, no ``SET`` clause (which would stop inlining), so
their bodies qualify every operator and function (``indb.sqlgen.lowering`` with
``qualify=True``) and a caller's ``search_path`` cannot change them. Versions on the
PL/Python engine get functions of the same signature that call the shared evaluator.

A bound overload ``indb.predict(text, <table row type>)`` holds one ``CASE`` branch per
reference (``'name'``, ``'name@alias'``, ``'name@3'``) that calls the version's
function on the row's columns; with a constant reference the planner keeps only the
matching branch and inlines the version's expression into the query. The server builds
those from the registry (``indb.refresh_bindings``, sql/25_bindings.sql).

Everything here is built with sqlglot (expressions) and psycopg.sql (DDL).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from psycopg import sql
from sqlglot import exp

from indb import ir
from indb.sqlgen.compile import lower_model

SCHEMA = "indb"
FLOAT, FLOAT_ARRAY, TEXT = "double precision", "double precision[]", "text"

#: SQL entry point -> (output kind in version_functions, result type)
ENTRY_POINTS = {
    "predict": ("predict", FLOAT),
    "predict_proba": ("proba", FLOAT_ARRAY),
    "predict_label": ("label", TEXT),
    "decision_function": ("decision", FLOAT_ARRAY),
    "transform": ("transform", FLOAT_ARRAY),
}


def function_name(model: str, version: int, output: str) -> str:
    """``name@3/predict``; long names keep a hash so the identifier fits in 63 bytes."""
    name = f"{model}@{version}/{output}"
    if len(name.encode()) <= 63:
        return name
    digest = hashlib.sha256(model.encode()).hexdigest()[:8]
    keep = 63 - len(f"~{digest}@{version}/{output}".encode())
    return f"{model.encode()[:keep].decode(errors='ignore')}~{digest}@{version}/{output}"


def _sql_type(t: str) -> sql.Composable:
    return {FLOAT: sql.SQL("double precision"), FLOAT_ARRAY: sql.SQL("double precision[]"), TEXT: sql.SQL("text")}[t]


def _param_types(model: ir.Model) -> list[sql.Composable]:
    return [sql.SQL("text") if f.kind == ir.TEXT else sql.SQL("double precision") for f in model.features]


@dataclass
class VersionFunction:
    output: str  # predict | label | proba | decision | transform
    name: str
    result_type: str
    #: the body: an expression (``sql``: the function is ``RETURN <expression>``) or a
    #: PL/pgSQL block (``plpgsql``)
    body: str
    volatility: str = "IMMUTABLE"
    #: "sql" (inlinable) or "plpgsql" (shared values in variables: computed once per row)
    language: str = "sql"

    def create(self, model: ir.Model, schema: str = SCHEMA, replace: bool = False) -> sql.Composed:
        """The DDL, as the server's guard requires it (sql/15_guard.sql): a SQL body is
        SQL-standard (``RETURN expr``: parsed once, its references recorded, inlinable); a
        PL/pgSQL body runs as indb_versions with a pinned search_path. ``replace``: CREATE
        OR REPLACE (the same function, its grants and bindings kept)."""
        verb = sql.SQL("CREATE OR REPLACE FUNCTION" if replace else "CREATE FUNCTION")
        head = sql.SQL("{verb} {fn}({params}) RETURNS {rt} LANGUAGE {lang} {vol} PARALLEL SAFE").format(
            verb=verb,
            fn=sql.Identifier(schema, self.name),
            params=sql.SQL(", ").join(_param_types(model)),
            rt=_sql_type(self.result_type),
            lang=sql.SQL(self.language),
            vol=sql.SQL(self.volatility),
        )
        if self.language == "plpgsql":
            return head + sql.SQL(" SECURITY DEFINER SET search_path = pg_catalog, indb, pg_temp AS {}").format(sql.Literal(self.body))
        # the expression is sqlglot's rendering of the IR, never text from elsewhere
        return head + sql.SQL(" RETURN ") + sql.SQL(self.body)

    def installed_differs(self, conn, model: ir.Model, body: str) -> bool:
        """Whether ``body`` (the installed function's, as ``pg_get_function_sqlbody`` or
        ``prosrc`` gives it) differs from this function's. A SQL-standard body is compared
        as PostgreSQL parsed it: this one is created as a temporary function in a
        savepoint that is rolled back (the caller's transaction must allow writes)."""
        if self.language != "sql":
            return body != self.body

        with conn.transaction(force_rollback=True):
            conn.execute(self.create(model, schema="pg_temp"))
            want = conn.execute(
                "SELECT pg_catalog.pg_get_function_sqlbody(p.oid) FROM pg_catalog.pg_proc AS p"
                " WHERE p.pronamespace = pg_catalog.pg_my_temp_schema() AND p.proname = %s", [self.name]).fetchone()[0]
        return body != want

    def signature(self, model: ir.Model) -> sql.Composed:
        return sql.SQL("{fn}({params})").format(fn=sql.Identifier(SCHEMA, self.name), params=sql.SQL(", ").join(_param_types(model)))


def installed_bodies(conn) -> dict[tuple[str, int, str], tuple[str, str | None]]:
    """``(model, version, output) -> (function, body)`` of every registered version
    function: the body as ``installed_differs`` compares it (PostgreSQL's parsed
    SQL-standard body, else the source), None when the function is gone."""
    return {
        (m, v, out): (fn, src)
        for m, v, out, fn, src in conn.execute(
            "SELECT f.model, f.version, f.output, f.fn::text,"
            " CASE WHEN p.prosqlbody IS NULL THEN p.prosrc ELSE pg_catalog.pg_get_function_sqlbody(p.oid) END"
            " FROM indb.version_functions AS f LEFT JOIN pg_catalog.pg_proc AS p ON p.oid = f.fn::oid").fetchall()
    }


def _params(model: ir.Model) -> dict[str, exp.Expression]:
    return {f.name: exp.Parameter(this=exp.Literal.number(i + 1)) for i, f in enumerate(model.features)}


def _fail_call(message: str, kind: str) -> exp.Expression:  # noqa: D401
    """``indb.fail(message, $1)``: raises at run time; the parameter keeps the planner from folding it."""
    call = exp.Dot(
        this=exp.to_identifier(SCHEMA),
        expression=exp.Anonymous(this="fail", expressions=[exp.Literal.string(message), exp.Parameter(this=exp.Literal.number(1))]),
    )
    return call if kind == ir.FLOAT else exp.Cast(this=call, to=exp.DataType.build("text"))


_PL_TYPES = {ir.FLOAT: "double precision", ir.TEXT: "text", ir.BOOL: "boolean"}


def sql_version_functions(model: ir.Model, name: str, version: int) -> list[VersionFunction]:
    """The SQL functions of a SQL-compiled version, one per output.

    A function is an inlinable ``SELECT <expression>`` unless its outputs share large
    subexpressions (a softmax over class scores, a normaliser's norm): then it is
    PL/pgSQL with one variable per shared value, computed once per row.
    """
    out: list[VersionFunction] = []
    params = _params(model)
    for kind in servable_outputs(model):
        # bodies do not depend on the version (deploy renders them before it knows it)
        shared = lower_shared(model, "postgres", kind, params, name)
        predict_text = kind == "predict" and model.output("predict").type == ir.TEXT
        variants: list[tuple[str, str, callable]] = []
        if kind == "predict":
            if predict_text:
                variants.append(("label", TEXT, lambda es: es[0]))
            else:
                variants.append(("predict", FLOAT, lambda es: es[0]))
                if model.classes is not None:
                    # labels as text: the same expression, cast (1.0 prints as 1)
                    variants.append(("label", TEXT, lambda es: exp.Cast(this=es[0], to=exp.DataType.build("text"))))
        else:
            variants.append((kind, FLOAT_ARRAY, lambda es: exp.Array(expressions=es)))
        # one lowering per output kind, one rendering per function (the label variant casts
        # the predict expression): deploys spent most of their time rendering the same SQL
        compiled, decls = None, None
        if not shared.worth_sharing():
            compiled = lower_model(model, dialect="postgres", output=kind, columns=params, qualify=True, model_name=name, fail_hook=_fail_call)
        for output, rtype, shape in variants:
            fname = function_name(name, version, output)
            rendered = None if compiled is None else _expression(shape([e for _, e in compiled.columns]))
            if rendered is None or too_big_to_inline(rendered):
                decls = _declarations(shared) if decls is None else decls
                body = _plpgsql(shared, shape, decls)
                out.append(VersionFunction(output, fname, rtype, body, language="plpgsql"))
            else:
                out.append(VersionFunction(output, fname, rtype, rendered))
    return out


#: the longest rendered expression (characters) a version function may have and still be inlined
INLINE_CHARS = 20_000


def too_big_to_inline(rendered: str) -> bool:
    """Whether an expression (rendered for PostgreSQL) is too big to inline into the caller's query.

    PostgreSQL estimates an inlined expression at one operator cost per operator, per
    row: a tree ensemble's thousands of comparisons push an ordinary scan over
    ``jit_above_cost`` (and the inlining and optimisation thresholds), and LLVM then
    spends seconds to minutes per process compiling it (RandomForest 20x6 over 300k rows:
    20.5 s with JIT, 1.2 s without). A PL/pgSQL function is neither inlined nor
    JIT-compiled: its body runs on the expression interpreter, as the inlined expression
    does with ``jit = off``, and the caller's query holds only the call. Small models
    (linear ones, a few trees) stay inlined. The size is the rendered SQL's (the lowering
    may hand over large parts as pre-rendered nodes, so a node count would miss them).

    >>> too_big_to_inline("x + 1"), too_big_to_inline(" + ".join(["x"] * 12000))
    (False, True)
    """
    return len(rendered) > INLINE_CHARS


def servable_outputs(model: ir.Model) -> list[str]:
    """Output kinds the SQL entry points can return: ``predict`` (a number or a label) and
    the array outputs whose items are all numbers (``indb.transform`` returns
    double precision[]; a transform that passes text through is not offered)."""
    out = []
    for kind in model.output_kinds:
        e = model.output(kind)
        if kind != "predict" and isinstance(e, ir.Vector) and any(i.type != ir.FLOAT for i in e.items):
            continue
        out.append(kind)
    return out


def lower_shared(model: ir.Model, dialect: str, kind: str, params, name: str):
    from indb.sqlgen.dialects import target
    from indb.sqlgen.lowering import lower_shared as _lower

    return _lower(model, kind, target(dialect), params, lambda v: exp.column(v), qualify=True, model_name=name, fail_hook=_fail_call)


def _plpgsql(shared, shape, decls: list) -> str:
    """A PL/pgSQL body: the shared values in variables (``decls``, as :func:`_declarations`
    rendered them once for every function of one output kind), then the outputs."""
    ret = sql.SQL(shape([e for _, e in shared.columns]).sql("postgres"))
    body = sql.SQL("\n").join([sql.SQL("DECLARE"), *decls, sql.SQL("BEGIN"), sql.SQL("    RETURN {};").format(ret), sql.SQL("END")])
    return body.as_string(None)


def _declarations(shared) -> list[sql.Composable]:
    return [
        sql.SQL("    {} {} := {};").format(sql.Identifier(vname), sql.SQL(_PL_TYPES[vtype]), sql.SQL(e.sql("postgres")))
        for vname, vtype, e in shared.bindings
    ]


def _expression(e: exp.Expression) -> str:
    return e.sql("postgres")


def plpython_version_functions(model: ir.Model, name: str, version: int) -> list[VersionFunction]:
    """Functions of the same signature that call the shared PL/Python evaluator."""
    out: list[VersionFunction] = []
    nums = [exp.Parameter(this=exp.Literal.number(i + 1)) if f.kind == ir.FLOAT else exp.Null() for i, f in enumerate(model.features)]
    texts = [exp.Parameter(this=exp.Literal.number(i + 1)) if f.kind == ir.TEXT else exp.Null() for i, f in enumerate(model.features)]
    kinds: list[tuple[str, str]] = []
    for kind in servable_outputs(model):
        if kind == "predict":
            if model.output("predict").type == ir.TEXT:
                kinds.append(("label", TEXT))
            else:
                kinds.append(("predict", FLOAT))
                if model.classes is not None:
                    kinds.append(("label", TEXT))
        else:
            kinds.append((kind, FLOAT_ARRAY))
    for kind, rt in kinds:
        fn = {FLOAT: "engine_float", FLOAT_ARRAY: "engine_array", TEXT: "engine_text"}[rt]
        call = exp.Dot(
            this=exp.to_identifier(SCHEMA),
            expression=exp.Anonymous(
                this=fn,
                expressions=[
                    exp.Literal.string(name),
                    exp.Literal.number(version),
                    exp.Literal.string(kind),
                    exp.Cast(this=exp.Array(expressions=nums), to=exp.DataType.build("double precision[]", dialect="postgres")),
                    exp.Cast(this=exp.Array(expressions=texts), to=exp.DataType.build("text[]", dialect="postgres")),
                ],
            ),
        )
        # inlinable, so the call lands in the query directly; the engine checks that the
        # session user may execute this wrapper before it scores
        out.append(VersionFunction(kind, function_name(name, version, kind), rt, _expression(call), volatility="STABLE"))
    return out
