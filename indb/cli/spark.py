"""``indb spark-score``: batch scoring of files or tables on Spark with a registered version."""

from __future__ import annotations

from indb.cli.argtypes import model_ref, name_list


def register(command) -> None:
    sub = command("spark-score", "score Parquet/CSV files or a Spark table on Spark with a registered version", """\
Reads --from (a path: Parquet, or CSV/JSON/ORC by its extension; else a Spark table),
scores it with NAME as registered in PostgreSQL (the IR's checksum verified, the columns'
types checked) and writes --into as Parquet: the --keep columns, then prediction,
probability_<label>... as `indb score` writes them. The call is recorded in the
registry's scoring calls (entry point spark.score). Run it with spark-submit, or give
--master. Needs pyspark (pip install 'indb[spark]') and Java 17+.

examples:
  indb spark-score churn --from data/customers.parquet --into out/churn_scores --keep id --master 'local[2]'
  spark-submit $(which indb) spark-score churn@3 --from warehouse.customers --into s3a://b/scores --keep id --log-to s3a://b/log --key id
""")
    sub.add_argument("name", metavar="NAME", type=model_ref)
    sub.add_argument("--from", dest="source", required=True, metavar="PATH_OR_TABLE", help="the rows to score")
    sub.add_argument("--into", dest="target", required=True, metavar="PATH", help="where to write the scores (Parquet)")
    sub.add_argument("--keep", type=name_list, default=[], metavar="COL,...", help="columns to copy in front")
    sub.add_argument("--engine", choices=["auto", "sql", "python"], default="auto",
                     help="Spark SQL, or indb's IR evaluator in mapInPandas (default auto: by model size)")
    sub.add_argument("--log-to", metavar="PATH_OR_TABLE", help="also write the rows with the prediction log's columns there")
    sub.add_argument("--key", metavar="COL", help="the column logged as row_key (with --log-to)")
    sub.add_argument("--replace", action="store_true", help="overwrite an existing --into")
    sub.add_argument("--master", metavar="URL", help="Spark master, e.g. local[2] (default: Spark's own)")
    sub.set_defaults(handler=_cmd_spark_score)


def _cmd_spark_score(args) -> int:
    from indb.spark import score_files

    print(score_files(args.name, args.source, args.target, dsn=args.dsn, keep=args.keep, engine=args.engine,
                      log_to=args.log_to, key=args.key, replace=args.replace, master=args.master))
    return 0
