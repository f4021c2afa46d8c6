"""A real Spark for the tests: one local[2] SparkSession per test session.

Spark needs pyspark (the ``[test]`` extra) and a Java 17+ runtime (``scripts/bootstrap``
installs one); without them the Spark tests skip, except under ``CI=true``, where that
is a failure. Rows reach Spark as an Arrow table, so a NaN stays NaN and None stays NULL
(a pandas round trip would turn NaN into NULL).
"""

from __future__ import annotations

import functools
import os
import shutil

import pytest

from indb import ir
from tests.db import missing

ANSI = "spark.sql.ansi.enabled"


@functools.lru_cache(maxsize=None)
def session():
    """The test session's SparkSession, started on first use (the ``spark`` fixture
    and the golden-SQL runners share it); stopped at exit by pyspark itself."""
    try:
        from pyspark.sql import SparkSession  # noqa: PLC0415
    except ImportError as e:
        missing(f"pyspark is not installed ({e}); pip install -e '.[test]'")
    if not (os.environ.get("JAVA_HOME") or shutil.which("java")):
        missing("no Java runtime for Spark; run scripts/bootstrap (it installs openjdk-17-jre-headless)")
    os.environ.setdefault("PYSPARK_PYTHON", os.sys.executable)
    spark = (
        SparkSession.builder.master("local[2]")
        .appName("indb-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.driver.memory", "1g")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    return spark


@pytest.fixture(scope="session")
def spark():
    return session()


def load_spark(spark, table: str, model: ir.Model, rows: list[tuple]) -> None:
    """``rows`` (id, features...) as the temporary view ``table``. They travel as one Arrow
    table (no Python worker runs, and Arrow keeps NaN apart from NULL)."""
    import pyarrow as pa  # noqa: PLC0415

    names = ["id", *model.feature_names]
    types = [pa.int64()] + [pa.string() if f.kind == ir.TEXT else pa.float64() for f in model.features]
    arrays = [pa.array([r[i] for r in rows], type=t) for i, t in enumerate(types)]
    spark.createDataFrame(pa.table(arrays, names=names)).createOrReplaceTempView(table)


def run_spark(spark, query: str, ansi: bool, codegen: bool = True) -> list[tuple]:
    """``query``'s rows with ANSI mode on or off; ``codegen=False`` evaluates interpreted
    (no whole-stage or expression code generation: Spark's fallback for generated code
    that grows too big)."""
    spark.conf.set(ANSI, "true" if ansi else "false")
    spark.conf.set("spark.sql.codegen.wholeStage", "true" if codegen else "false")
    spark.conf.set("spark.sql.codegen.factoryMode", "FALLBACK" if codegen else "NO_CODEGEN")
    return [tuple(r) for r in spark.sql(query).collect()]

