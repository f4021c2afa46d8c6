"""``indb compile``: a model to SQL for any dialect, as text.

    >>> from sklearn.linear_model import LinearRegression
    >>> from indb import compile_sql
    >>> m = LinearRegression().fit([[0.0], [1.0], [2.0]], [1.0, 3.0, 5.0])
    >>> m.coef_, m.intercept_ = [2.0], 1.0   # the fitted values, rounded for the example
    >>> print(compile_sql(m, dialect="sqlite"))
    (x0 * 2.0) + 1.0
    >>> print(compile_sql(m, dialect="duckdb"))   # a decimal literal is exact DECIMAL there: typed
    (x0 * CAST(2.0 AS DOUBLE)) + CAST(1.0 AS DOUBLE)
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any, Sequence

from sqlglot import exp
from sqlglot.tokens import Tokenizer

from indb import ir
from indb.sqlgen.dialects import target as get_target
from indb.errors import CompileError, UsageError
from indb.sqlgen.lowering import lower_outputs, lower_shared

OUTPUTS = ("predict", "proba", "decision", "transform")
#: a scalar expression (no sharing) is refused above this many IR nodes written out
INLINE_LIMIT = 500_000


def to_ir(model: Any, features: Sequence[str] | None = None, on_missing: str = "null") -> ir.Model:
    """An ``ir.Model`` from an estimator (compiled) or an ``ir.Model`` (returned as is)."""
    if isinstance(model, ir.Model):
        if features is not None and list(features) != list(model.feature_names):
            if model.source.startswith("onnx:"):  # a graph's inputs have no column names of their own
                from indb.compilers.onnx import rename_features  # noqa: PLC0415

                return rename_features(model, features)
            raise CompileError("--features cannot rename the features of an already compiled model")
        return model
    from indb.compilers import compile_model  # noqa: PLC0415 - keeps `import indb` light

    return compile_model(model, features, on_missing=on_missing)


@dataclass
class CompiledSQL:
    """The SQL of one output kind: column names and expressions, ready to render.

    With ``shared`` (a ``lowering.Shared``), a table query computes each shared
    subexpression once, as a column of a derived table per dependency level.
    """

    columns: list[tuple[str, exp.Expression]]
    dialect: str
    seconds: float
    shared: object = None
    #: the model's feature columns (carried through the binding CTEs)
    features: tuple = ()
    #: named in errors
    model_name: str = "model"
    #: id of a shared binding's or column's tree -> its SQL (``_rendered``)
    _text: dict = field(default_factory=dict, repr=False, compare=False)

    def select(self, table: str, keep: Sequence[str] = ()) -> exp.Select:
        names = [n for n, _ in self.columns]
        for k in keep:
            if k in names:
                raise CompileError(f"output column {k!r} collides with a kept column; rename the kept column or drop it from --keep")
        source: exp.Expression = exp.to_table(table, dialect=self.dialect)
        cols = self.columns
        sh = self.shared
        ctes: list[tuple[str, exp.Select]] = []
        if sh is not None and sh.worth_sharing():  # type: ignore[attr-defined]
            ctes, source = self._binding_ctes(source, keep)
            cols = [(n, self._rendered(e)) for n, e in sh.columns]  # type: ignore[attr-defined]
        # kept columns follow the feature names' identifier rule: "ID" stays "ID"
        kept = [exp.column(k, quoted=_needs_quotes(k)) for k in keep]
        sel = exp.select(*kept, *[exp.alias_(e, n, copy=False) for n, e in cols]).from_(source, copy=False)
        for name, inner in ctes:
            sel = sel.with_(name, as_=inner, copy=False)
        return sel

    def _binding_ctes(self, source: exp.Expression, keep: Sequence[str]) -> tuple[list[tuple[str, exp.Select]], exp.Expression]:
        """A chain of CTEs computing the bindings, each carrying only the columns still needed.

        One CTE per dependency level (flat: nested derived tables would nest as deep as
        the chain, past SQLite's parser stack), split where a level would exceed the
        target's column limit; on engines that merge derived tables into their parent,
        each is fenced with OFFSET 0 so a value is computed once per row.
        """
        sh = self.shared
        tgt = get_target(self.dialect)

        def refs(e: exp.Expression) -> set[str]:
            # a name inside a text label would only carry one more column along
            return set(re.findall(r"\b_indb_s\d+\b", self._rendered(e).name))

        names = [n for n, _, _ in sh.bindings]  # type: ignore[attr-defined]
        uses = {n: refs(e) for n, _, e in sh.bindings}  # type: ignore[attr-defined]
        final = set().union(*[refs(e) for _, e in sh.columns]) if sh.columns else set()  # type: ignore[attr-defined]
        base = list(dict.fromkeys([*keep, *self.features]))
        order = sorted(range(len(names)), key=lambda i: sh.levels[i])  # type: ignore[attr-defined]
        steps: list[list[int]] = []
        room = max(tgt.max_columns - len(base) - 1, 1)
        for i in order:
            lv = sh.levels[i]  # type: ignore[attr-defined]
            if steps and sh.levels[steps[-1][0]] == lv and len(steps[-1]) < room // 2:  # type: ignore[attr-defined]
                steps[-1].append(i)
            else:
                steps.append([i])
        ctes: list[tuple[str, exp.Select]] = []
        carried: list[str] = []
        # what later steps (and the final columns) read, accumulated from the end
        later_of: list[set[str]] = [set(final)]
        for step in reversed(steps[1:]):
            later_of.append(later_of[-1].union(*[uses[names[j]] for j in step]))
        later_of.reverse()
        for k, step in enumerate(steps):
            later = later_of[k]
            keep_cols = [c for c in carried if c in later]
            width = len(base) + len(keep_cols) + len(step)
            if width > tgt.max_columns:
                raise CompileError(
                    f"{self.model_name}: computing its shared subexpressions once needs {width:,} intermediate "
                    f"columns, over {self.dialect}'s limit of {tgt.max_columns:,}; score it with the "
                    "PL/Python engine instead (indb deploy --engine plpython)"
                )
            # not copied: a binding's tree is only read when rendered (a deep copy of an
            # MLP's bindings took longer than lowering them)
            here = [exp.alias_(self._rendered(sh.bindings[i][2]), names[i], copy=False) for i in step]  # type: ignore[attr-defined]
            inner = exp.select(*[exp.column(c, quoted=_needs_quotes(c)) for c in base], *[exp.column(c) for c in keep_cols], *here).from_(source, copy=False)
            if tgt.merges_subqueries:
                inner = inner.offset(0, copy=False)
            name = f"_indb_q{k}"
            ctes.append((name, inner))
            source = exp.to_table(name)
            carried = keep_cols + [names[i] for i in step]
        return ctes, source

    def _rendered(self, e: exp.Expression) -> exp.Var:
        """``e`` rendered once, as text in the tree (like lowering.TreeText's trees).

        A select of an MLP's bindings holds 100,000 sqlglot nodes: walking them for
        references, copying them (``.sql()`` copies first) and rendering them took
        seconds; rendered once, the query around them is small. The generator may
        rewrite ``e`` in place (``copy=False``): it is rendered only here.
        """
        text = self._text.get(id(e))
        if text is None:
            text = self._text[id(e)] = e.name if isinstance(e, exp.Var) else e.sql(self.dialect, copy=False)
        return exp.Var(this=text)

    def sql(self, table: str | None = None, keep: Sequence[str] = ()) -> str:
        if table is None:
            if self.shared is not None and self.shared.worth_sharing():  # type: ignore[attr-defined]
                raise CompileError("this model's outputs share subexpressions; compile it with --table to compute them once")
            if len(self.columns) == 1:
                return self.columns[0][1].sql(self.dialect)
            return ",\n".join(exp.alias_(e, n).sql(self.dialect) for n, e in self.columns)
        return self.select(table, keep).sql(self.dialect)


def lower_model(
    model: Any,
    *,
    dialect: str = "postgres",
    output: str = "predict",
    features: Sequence[str] | None = None,
    on_missing: str = "null",
    columns: dict[str, exp.Expression] | None = None,
    qualify: bool = False,
    model_name: str = "model",
    fail_hook=None,
    share: bool = False,
) -> CompiledSQL:
    """Compile and lower one output kind; ``columns`` maps feature names to SQL (default: columns).

    With ``share``, shared subexpressions are named once where that saves work (used by
    table queries); a scalar expression repeats them.
    """
    if output not in OUTPUTS:
        raise UsageError(f"--output must be one of {', '.join(OUTPUTS)}, not {output!r}")
    t0 = time.perf_counter()
    m = to_ir(model, features, on_missing)
    tgt = get_target(dialect)
    if columns is None:
        columns = {f.name: exp.column(f.name, quoted=_needs_quotes(f.name)) for f in m.features}
    if share:
        sh = lower_shared(m, output, tgt, columns, lambda name: exp.column(name), qualify=qualify, model_name=model_name, fail_hook=fail_hook)
        if sh.worth_sharing():
            if len(sh.columns) > tgt.max_columns:
                raise CompileError(f"{len(sh.columns)} output columns exceed {dialect}'s limit of {tgt.max_columns}")
            return CompiledSQL(sh.columns, dialect, time.perf_counter() - t0, sh, m.feature_names, model_name)
    inline = ir.inline_size(m.output(output)) if output in m.output_kinds else 0
    if inline > INLINE_LIMIT:
        raise CompileError(
            f"as one expression, this model's {output} output would repeat shared subexpressions "
            f"({inline:,} nodes written out); compile it with --table, which computes each once"
        )
    cols = lower_outputs(m, output, tgt, columns, qualify=qualify, model_name=model_name, fail_hook=fail_hook)
    if len(cols) > tgt.max_columns:
        raise CompileError(f"{len(cols)} output columns exceed {dialect}'s limit of {tgt.max_columns}")
    return CompiledSQL(cols, dialect, time.perf_counter() - t0)


#: every word that starts a SQL keyword sqlglot knows ("ORDER BY" gives ORDER)
_KEYWORDS = frozenset(k.split()[0] for k in Tokenizer.KEYWORDS)


def _needs_quotes(name: str) -> bool:
    """Quote mixed case, non-identifiers and SQL keywords (sqlglot quotes reserved words
    for some dialects only: ``select`` came out bare for PostgreSQL)."""
    return not (name.isidentifier() and name == name.lower() and name.isascii()) or name.upper() in _KEYWORDS


#: the temporary function ``indb compile --table``'s PostgreSQL script creates to raise
#: ``--on-missing error``'s message (``runnable_script``)
FAIL_FUNCTION = "indb_fail"
_FAIL_CALL = f"pg_temp.{FAIL_FUNCTION}("


def _temp_fail(message: str, kind: str) -> exp.Expression:
    """``pg_temp.indb_fail('indb: model ...')``: STABLE, so the planner never folds (raises) it."""
    call = exp.Dot(this=exp.to_identifier("pg_temp"), expression=exp.Anonymous(this=FAIL_FUNCTION, expressions=[exp.Literal.string(message)]))
    return call if kind == ir.FLOAT else exp.Cast(this=call, to=exp.DataType.build("text"))


def compile_sql(
    model: Any,
    dialect: str = "postgres",
    output: str = "predict",
    *,
    features: Sequence[str] | None = None,
    table: str | None = None,
    keep: Sequence[str] = (),
    on_missing: str = "null",
    fail_function: bool = False,
    model_name: str = "model",
) -> str:
    """SQL for a model: a scalar expression over the feature columns, or with ``table``
    a full ``SELECT kept..., outputs... FROM table``.

    ``model`` is a fitted scikit-learn estimator or pipeline, or an ``ir.Model``. With
    ``fail_function`` on a dialect that has ``temp_fail_function`` (PostgreSQL), a
    missing input under ``on_missing="error"`` raises through ``pg_temp.indb_fail``,
    which ``runnable_script`` creates: the statement is then meant for that script.
    """
    if keep and table is None:
        raise UsageError("--keep needs --table")
    hook = _temp_fail if fail_function and get_target(dialect).temp_fail_function else None
    compiled = lower_model(model, dialect=dialect, output=output, features=features, on_missing=on_missing, share=table is not None, fail_hook=hook, model_name=model_name)
    return compiled.sql(table, keep)


def runnable_script(statement: str, dialect: str = "postgres") -> str:
    """What ``indb compile --table`` prints: on PostgreSQL, the statement inside a
    transaction with JIT off; elsewhere the statement itself, ended with ``;``.

    PostgreSQL's JIT (on by default) compiles a scoring expression in the leader and in
    every parallel worker, for seconds to minutes on a tree ensemble, and LLVM does not
    answer a cancel meanwhile (README "JIT and the printed SQL"); ``SET LOCAL`` turns it
    off for this transaction only, and the SELECT stays a statement of its own to edit.

    >>> print(runnable_script("SELECT 1 AS prediction FROM t"))
    BEGIN;
    SET LOCAL jit = off;  -- indb: JIT would compile this expression in every process, uncancellable
    SELECT 1 AS prediction FROM t;
    COMMIT;
    >>> runnable_script("SELECT 1 FROM t", "duckdb")
    'SELECT 1 FROM t;'

    A statement that raises through ``pg_temp.indb_fail`` (``compile_sql(...,
    fail_function=True)``) gets that function created first and dropped after, in the
    same transaction: an error then reads ``indb: model ...: feature ... is NULL or
    NaN ...`` (SQLSTATE 22004), not a failed cast. A read-only transaction or a hot
    standby refuses the CREATE ("cannot execute CREATE FUNCTION in a read-only
    transaction"): there use the expression without ``--table``, whose error is the
    cast's, or a deployed version (``indb.fail``).
    """
    tgt = get_target(dialect)
    if not tgt.has_jit:
        return statement + ";"
    lines = ["BEGIN;", "SET LOCAL jit = off;  -- indb: JIT would compile this expression in every process, uncancellable"]
    fail = tgt.temp_fail_function and _FAIL_CALL in statement
    if fail:
        lines += [
            "-- indb: raises --on-missing error's message; refused in a read-only transaction or on a standby (indb compile --help)",
            f"CREATE OR REPLACE FUNCTION pg_temp.{FAIL_FUNCTION}(message text) RETURNS double precision",
            "  LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp",
            "  AS $indb$BEGIN RAISE EXCEPTION '%', message USING ERRCODE = 'null_value_not_allowed'; END$indb$;",
            f"REVOKE ALL ON FUNCTION pg_temp.{FAIL_FUNCTION}(text) FROM PUBLIC;",
        ]
    lines.append(statement + ";")
    if fail:
        lines.append(f"DROP FUNCTION pg_temp.{FAIL_FUNCTION}(text);")
    lines.append("COMMIT;")
    return "\n".join(lines)


def compile_file(
    path: str,
    *,
    dialect: str = "postgres",
    output: str = "predict",
    features: Sequence[str] | None = None,
    table: str | None = None,
    keep: Sequence[str] = (),
    on_missing: str = "null",
    allow_pickle: bool = False,
    fail_function: bool = False,
) -> str:
    """``indb compile MODEL``: load a model file (``indb.compilers.files``) and print its SQL.

    ``allow_pickle`` lets a ``.joblib``/``.pkl`` file load: pickle runs code while it loads.
    """
    from indb.compilers.files import check_storable, load_model_file  # noqa: PLC0415

    model, _ = load_model_file(path, allow_pickle=allow_pickle)
    m = to_ir(model, features, on_missing)
    check_storable(m, str(path), registry=False)
    return compile_sql(m, dialect, output, table=table, keep=keep, on_missing=on_missing, fail_function=fail_function,
                       model_name=Path(path).name)
