"""Score a Spark DataFrame with a version registered in PostgreSQL.

``score(df, "churn@champion", dsn=...)`` reads the version's IR from the registry,
checks its SHA-256 against the stored checksum (a changed IR is refused, as the
PL/Python engine refuses it), checks the DataFrame's columns and types against the
version's features, and returns a DataFrame with the ``keep`` columns, then the
columns ``indb score`` writes: ``prediction``, one ``probability_<label>`` per class
(else ``decision...``), or ``transform_<i>`` for a model that only transforms::

    >>> from indb.spark import score
    >>> scored = score(df, "churn", dsn="dbname=shop", keep=["id"])   # doctest: +SKIP
    >>> scored.columns                                                 # doctest: +SKIP
    ['id', 'prediction', 'probability_no', 'probability_yes']

Two engines, chosen like ``indb deploy --engine auto`` chooses on PostgreSQL:

* ``sql``: the version compiled to Spark SQL (``indb.sqlgen.dialects.spark``), which
  Spark's optimiser and code generation run; fastest for linear models and small trees.
* ``python``: indb's IR evaluator (numpy; numba kernels for tree ensembles where numba
  is installed) in ``mapInPandas`` over Arrow batches; for large ensembles, whose SQL is
  slow for Spark to plan.

Each call is recorded in the registry's scoring calls (``indb.scoring_calls``: who,
when, version, IR checksum, rows; entry point ``spark.score``). Counting the rows runs
the scoring once; with ``log_to`` the scored rows are also written (Parquet path or
table) with the prediction log's columns, and counted from that write.

Reading a version's IR needs the ``indb_auditor`` or ``indb_deployer`` role (or a
superuser); recording the call needs scorer rights on the model (``indb grant scorer``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from indb import errors, ir

ENTRY_POINT = "spark.score"
ENGINES = ("auto", "sql", "python")


@dataclass(frozen=True)
class Version:
    """A registered version as read from the registry, its IR checked."""

    model: str
    version: int
    ir_sha256: str
    ir: ir.Model

    @property
    def ref(self) -> str:
        return f"{self.model}@{self.version}"


def read_version(ref: str, *, dsn: str | None = None, conn=None) -> Version:
    """The version ``ref`` ('name', 'name@3', 'name@alias') with its IR, after checking the
    IR's SHA-256 against the registry's checksum."""
    import psycopg

    from indb.catalog.connection import connect, server_error

    own = conn is None
    c = connect(dsn, purpose="spark score") if own else conn
    try:
        try:
            model, version = c.execute("SELECT r.model, r.version FROM indb.resolve(%s) AS r", [ref]).fetchone()
            row = c.execute("SELECT v.ir, v.ir_sha256, v.retired_at FROM indb.versions AS v WHERE v.model = %s AND v.version = %s",
                            [model, version]).fetchone()
        except psycopg.Error as e:
            raise server_error(e, about=ref, denied="reading a version's IR needs the indb_auditor or indb_deployer role: a DBA runs indb grant auditor <user>") from None
    finally:
        if own:
            c.close()
    text, sha, retired = row
    if retired is not None:
        raise errors.UsageError(f"{model}@{version} is retired and cannot be scored; score another version (indb models {model})")
    actual = ir.checksum(text)
    if actual != sha:
        raise errors.IntegrityError(
            f"integrity check failed for {model}@{version}: the stored IR's SHA-256 is {actual}, the registry says {sha}; "
            "refusing to score (redeploy the model, and find out who changed the IR)")
    try:
        m = ir.model_from_json(text, share=True)
    except Exception as e:  # noqa: BLE001 - whatever is wrong with it, it is not scored
        raise errors.IntegrityError(f"{model}@{version}: the stored IR is not a valid model ({e}); refusing to score it") from None
    return Version(model, version, sha, m)


def output_kinds(m: ir.Model) -> list[str]:
    """The outputs ``indb score`` writes: predict, then proba (else decision); transform
    only for a model that does not predict."""
    have = {k for k, _ in m.outputs}
    kinds = [k for k in ("predict",) if k in have]
    kinds += ["proba"] if "proba" in have else (["decision"] if "decision" in have else [])
    if not kinds and "transform" in have:
        kinds = ["transform"]
    return kinds


#: tree comparisons per row above which Spark SQL loses to the IR evaluator in mapInPandas:
#: Spark's code generation gives up on a large CASE tree (a method over 64 KB) and
#: interprets it, or runs out of heap compiling it (bench/spark.py, 1M rows: a
#: GradientBoosting 200×d4 took 7.8 s as SQL against 2.2 s for scikit-learn in
#: mapInPandas; a RandomForest 100×d8 failed); the evaluator's compiled tree kernel is
#: below scikit-learn's time
SPARK_STEPS_LIMIT = 100


def choose_engine(m: ir.Model, requested: str) -> tuple[str, str]:
    """(engine, reason): Spark SQL unless the model is large: more tree comparisons per
    row than ``SPARK_STEPS_LIMIT``, or more operations than ``indb deploy --engine auto``
    puts in SQL."""
    from indb.registry.versions import SQL_OPS_LIMIT, arithmetic_ops, tree_steps

    if requested not in ENGINES:
        raise errors.UsageError(f"engine must be one of {', '.join(ENGINES)}, not {requested!r}")
    if requested != "auto":
        return requested, "asked for"
    steps = max(tree_steps(e) for _, e in m.outputs)
    ops = max(arithmetic_ops(e) for _, e in m.outputs)
    if steps > SPARK_STEPS_LIMIT:
        return "python", (f"{steps:,} tree comparisons per row (above {SPARK_STEPS_LIMIT:,}, Spark's code generation "
                          "gives up on the SQL; the evaluator's tree kernel is faster)")
    if ops > SQL_OPS_LIMIT:
        return "python", f"{ops:,} operations per row; numpy's matrix products beat SQL above {SQL_OPS_LIMIT:,}"
    return "sql", f"{steps:,} tree comparisons and {ops:,} operations per row"


_NUMERIC = ("DoubleType", "FloatType", "IntegerType", "LongType", "ShortType", "ByteType", "DecimalType")


def check_columns(df, v: Version, keep: Sequence[str]) -> None:
    """The DataFrame has every feature, numeric for a numeric feature and string for a text
    one, and every ``keep`` column; a clear error names the first that is not so."""
    types = {f.name: f.dataType for f in df.schema.fields}
    missing = [f.name for f in v.ir.features if f.name not in types]
    if missing:
        raise errors.UsageError(f"{v.ref} needs column(s) {', '.join(missing)}, which the DataFrame lacks (it has {', '.join(types)})")
    for f in v.ir.features:
        t = type(types[f.name]).__name__
        if f.kind == ir.TEXT and t != "StringType":
            raise errors.UsageError(f"column {f.name!r} is {types[f.name].simpleString()}, but feature {f.name!r} of {v.ref} is text: "
                                    f"cast it, e.g. df.withColumn({f.name!r}, df[{f.name!r}].cast('string'))")
        if f.kind != ir.TEXT and t not in _NUMERIC:
            raise errors.UsageError(f"column {f.name!r} is {types[f.name].simpleString()}, but feature {f.name!r} of {v.ref} is numeric: "
                                    f"cast it, e.g. df.withColumn({f.name!r}, df[{f.name!r}].cast('double'))")
    absent = [k for k in keep if k not in types]
    if absent:
        raise errors.UsageError(f"--keep column(s) {', '.join(absent)} are not in the DataFrame")


def _output_names(m: ir.Model, kinds: Sequence[str], keep: Sequence[str]) -> list[tuple[str, str, int]]:
    """(kind, column name, index within the kind) of every output column."""
    from indb.sqlgen.lowering import output_names

    out = [(k, name, j) for k in kinds for j, name in enumerate(output_names(m, k))]
    clash = [name for _, name, _ in out if name in keep]
    if clash:
        raise errors.UsageError(f"output column(s) {', '.join(clash)} collide with kept columns; rename the kept columns or drop them from keep")
    return out


def _col(name: str):
    """Column ``name`` exactly as written: quoted, so a dot, a space or a backtick in a
    user's column name is part of the name, never a nested field or a syntax error."""
    from pyspark.sql import functions as F

    return F.col("`" + name.replace("`", "``") + "`")


def _cols(names: Sequence[str]) -> list:
    return [_col(n) for n in dict.fromkeys(names)]


def _score_sql(df, v: Version, kinds: Sequence[str], keep: Sequence[str]):
    """Each output kind's Spark SQL as projections of ``df`` (``selectExpr``): one per
    step of shared subexpressions (the query's CTEs), then the outputs, each kind over the
    previous one's result. No temporary view is created: a view in the caller's catalog
    costs nothing to read but about a second to plan around (measured with a cached frame,
    bench/spark.py), and its name could collide with theirs."""
    from indb.sqlgen.compile import lower_model

    needed = list(dict.fromkeys([*keep, *v.ir.feature_names]))
    current = df.select(*_cols(needed))
    done: list[str] = []
    for kind in kinds:
        compiled = lower_model(v.ir, dialect="spark", output=kind, share=True, model_name=v.ref)
        carry = list(dict.fromkeys([*needed, *done]))
        query = compiled.select("indb_source", keep=carry)
        # the CTE chain reads the source, each step the one before: the same projections in order
        steps = [cte.this for cte in query.ctes] + [query]
        for step in steps:
            extra = [k for k, a in step.args.items() if a and k not in ("expressions", "from_", "with_")]
            if extra:  # a projection is all Spark is handed: anything more would be lost
                raise errors.CompileError(f"{v.ref}: its Spark query has a {extra[0]} clause indb cannot run as a projection")
            current = current.selectExpr(*[e.sql("spark") for e in step.expressions])
        done += [name for name, _ in compiled.columns]
    return current.select(*_cols([*keep, *done]))


def _score_python(df, v: Version, names: list[tuple[str, str, int]], keep: Sequence[str]):
    """The IR evaluator over Arrow batches (``mapInPandas``)."""
    from pyspark.sql import types as T

    fields = {f.name: f for f in df.schema.fields}
    schema = [fields[k] for k in keep]
    for kind, name, _ in names:
        text = kind == "predict" and v.ir.output("predict").type == ir.TEXT
        schema.append(T.StructField(name, T.StringType() if text else T.DoubleType()))
    model_json = ir.model_to_json(v.ir)
    # the columns travel under names indb makes (pyspark's mapInPandas looks every input
    # column up by its bare name, which a backtick in a user's column name breaks)
    inputs = list(dict.fromkeys([*keep, *v.ir.feature_names]))
    alias = {name: f"_indb_in{i}" for i, name in enumerate(inputs)}

    def run(batches):
        import numpy as np
        import pandas as pd

        from indb.ir import kernels
        from indb.ir.evaluate import evaluate

        m = ir.model_from_json(model_json, share=True)
        # one cache per output for the whole partition, as the PL/Python engine keeps one
        # per backend: tree ensembles and dense layers run on the compiled kernels (numba,
        # when installed) once the rows counted pass kernels.COMPILE_AFTER, one thread per
        # Python worker (Spark runs one per core)
        caches = {kind: {"threads": 1} for kind in dict.fromkeys(k for k, _, _ in names)}
        for pdf in batches:
            kernels.count(len(pdf))
            cols = {}
            for f in m.features:
                s = pdf[alias[f.name]]
                cols[f.name] = s.to_numpy(dtype=object) if f.kind == ir.TEXT else s.to_numpy(dtype=np.float64, na_value=np.nan)
            out = {k: pdf[alias[k]] for k in keep}
            state: dict = {}  # subtrees the outputs of one batch share
            for kind, cache in caches.items():
                with np.errstate(all="ignore"):
                    res = np.asarray(evaluate(m.output(kind), cols, len(pdf), cache=cache, state=state))
                res = res.reshape(len(pdf), -1)
                for k2, name, j in names:
                    if k2 == kind:
                        col = res[:, j]
                        out[name] = [None if x is None or (isinstance(x, float) and x != x) else str(x) for x in col] \
                            if col.dtype == object else col.astype(np.float64)
            yield pd.DataFrame(out)

    return df.select(*[_col(n).alias(alias[n]) for n in inputs]).mapInPandas(run, T.StructType(schema))


def score(
    df,
    model: str,
    *,
    dsn: str | None = None,
    keep: Sequence[str] = (),
    engine: str = "auto",
    log_to: str | None = None,
    key: str | None = None,
    conn=None,
) -> Any:
    """Score Spark DataFrame ``df`` with registered version ``model`` ('name', 'name@3',
    'name@alias'): a DataFrame of the ``keep`` columns and the outputs ``indb score``
    writes. The call is recorded in the registry (rows counted by running the scoring
    once). With ``log_to`` (a path ending in ``.parquet`` or a directory path, else a table
    name), the scored rows are written there with the prediction log's columns
    (``logged_at, call_id, row_key, features, features_text, prediction, label``;
    ``row_key`` from column ``key``).
    """
    v = read_version(model, dsn=dsn, conn=conn)
    keep = list(keep)
    check_columns(df, v, [*keep, *([key] if key else [])])
    kinds = output_kinds(v.ir)
    names = _output_names(v.ir, kinds, keep)
    chosen, _why = choose_engine(v.ir, engine)
    extra = [c for c in [*v.ir.feature_names, *([key] if key else [])] if c not in keep] if log_to else []
    scored = _score_sql(df, v, kinds, [*keep, *extra]) if chosen == "sql" else _score_python(df, v, names, [*keep, *extra])
    if not log_to:
        _record(v, scored.count(), None, dsn, conn)
        return scored.select(*_cols([*keep, *[n for _, n, _ in names]]))
    log = _log_rows(scored, v, names, key).cache()
    try:
        call_id = _record(v, log.count(), log_to, dsn, conn)
        from pyspark.sql import functions as F

        writer = log.withColumn("call_id", F.lit(call_id).cast("bigint")).write.mode("append")
        if "/" in log_to or log_to.endswith(".parquet"):
            writer.parquet(log_to)
        else:
            writer.saveAsTable(log_to)
    finally:
        log.unpersist()
    return scored.select(*_cols([*keep, *[n for _, n, _ in names]]))


def _log_rows(scored, v: Version, names, key):
    """The prediction log's columns for every scored row (call_id filled in once recorded)."""
    from pyspark.sql import functions as F

    feats = v.ir.features
    nums = F.array(*[F.lit(None).cast("double") if f.kind == ir.TEXT else _col(f.name).cast("double") for f in feats])
    texts = F.array(*[_col(f.name) if f.kind == ir.TEXT else F.lit(None).cast("string") for f in feats]) \
        if any(f.kind == ir.TEXT for f in feats) else F.lit(None).cast("array<string>")
    pred = [n for k, n, _ in names if k == "predict"]
    text_label = bool(pred) and v.ir.output("predict").type == ir.TEXT
    prediction = F.lit(None).cast("double") if not pred or text_label else _col(pred[0]).cast("double")
    label = _col(pred[0]).cast("string") if pred else F.lit(None).cast("string")
    return scored.select(
        F.current_timestamp().alias("logged_at"),
        F.lit(None).cast("bigint").alias("call_id"),
        (_col(key).cast("string") if key else F.lit(None).cast("string")).alias("row_key"),
        nums.alias("features"), texts.alias("features_text"), prediction.alias("prediction"), label.alias("label"),
    )


def _record(v: Version, rows: int, target: str | None, dsn, conn) -> int:
    """Record the call in indb.scoring_calls; returns its call_id."""
    import psycopg

    from indb.catalog.connection import connect, server_error

    own = conn is None
    c = connect(dsn, purpose="spark score") if own else conn
    try:
        return c.execute(
            "SELECT o.call_id FROM indb.log_external(%s, %s, %s, %s, %s, %s, %s, current_user) AS o",
            [v.model, v.version, v.ir_sha256, ENTRY_POINT, "spark DataFrame", target, rows]).fetchone()[0]
    except psycopg.Error as e:
        raise server_error(e) from None
    finally:
        if own:
            c.close()


def score_files(model: str, source: str, target: str, *, dsn: str | None = None, keep: Sequence[str] = (), engine: str = "auto",
                log_to: str | None = None, key: str | None = None, replace: bool = False, master: str | None = None) -> str:
    """``indb spark-score``: read ``source`` (a path: Parquet, or CSV/JSON/ORC by extension;
    else a table name), score it with ``model`` and write ``target`` as Parquet. Starts (or
    joins) a SparkSession on ``master`` (default: Spark's own, e.g. from spark-submit)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise errors.UsageError("indb spark-score needs pyspark: pip install 'indb[spark]' (and a Java 17+ runtime)") from None
    builder = SparkSession.builder.appName(f"indb spark-score {model}")
    if master:
        builder = builder.master(master)
    spark = builder.getOrCreate()
    fmt = next((f for f in ("parquet", "csv", "json", "orc") if source.lower().rstrip("/").endswith("." + f)), None)
    if "/" in source or fmt:
        reader = spark.read.format(fmt or "parquet")
        if fmt == "csv":
            reader = reader.option("header", "true").option("inferSchema", "true")
        df = reader.load(source)
    else:
        df = spark.table(source)
    scored = score(df, model, dsn=dsn, keep=keep, engine=engine, log_to=log_to, key=key)
    from pyspark.errors import AnalysisException

    try:
        scored.write.mode("overwrite" if replace else "errorifexists").parquet(target)
    except AnalysisException as e:
        first = str(e).strip().splitlines()[0]
        raise errors.UsageError(f"--into {target}: {first} (--replace overwrites it)") from None
    return f"{source} scored with {model} into {target} ({', '.join(scored.columns)})"
