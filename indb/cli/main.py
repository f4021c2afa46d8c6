"""The ``indb`` command line: parses arguments, calls the Python API, prints the result.

Every ``IndbError`` becomes one line on stderr and an exit code (2 for usage errors,
1 otherwise); ``--debug`` adds the traceback.
"""

from __future__ import annotations

import argparse
import sys
import traceback

from indb import __version__, errors
from indb.cli.argtypes import name_list, number_from_one

DSN_HELP = """\
where the database is:
  --dsn DSN, else INDB_DSN, else libpq's PGHOST/PGPORT/PGDATABASE/PGUSER/PGSERVICE.
  When none of --dsn, INDB_DSN, PGHOST, PGSERVICE, PGDATABASE is set, indb uses the
  private cluster that ./scripts/demo started (its DSN is kept in .indb/dsn).
"""

EPILOG = DSN_HELP + """
examples:
  indb migrate                          # create or upgrade the catalog (schema indb)
  indb migrate --component plpython     # install the PL/Python evaluator (superuser)
  indb status --exit-code               # what is applied and pending; 1 if not up to date
  indb validate                         # applied migrations still match their files
  indb compile model.onnx --output proba --table customers --keep id
  indb deploy churn.skops --name churn --for-table customers
  indb models churn
  indb rollback churn
"""


MODEL_HELP = """\
MODEL is a model file, read here on the client (never in the database): .skops
(scikit-learn, through skops; only scikit-learn, numpy and scipy model types load),
.onnx, XGBoost's .json/.ubj, LightGBM's .txt; or, with --allow-pickle, a
.joblib/.pkl/.pickle file. Pickle runs code when it loads: allow it only for files
you made or trust as you would a program.
"""


def model_argument(sub: argparse.ArgumentParser) -> None:
    """MODEL and --allow-pickle (compile, deploy)."""
    sub.add_argument("model", metavar="MODEL", help="a .skops, .onnx, .json/.ubj (XGBoost), .txt (LightGBM) file; "
                                                    ".joblib/.pkl with --allow-pickle")
    sub.add_argument("--allow-pickle", action="store_true",
                     help="load a .joblib/.pkl/.pickle file, which runs code from the file: only for files you trust")


def _common(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    # The same options before or after the command: `indb --dsn X status` and
    # `indb status --dsn X`. Sub-parsers must not reset what the main parser read.
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument("--dsn", default=default, help="libpq connection string or URI of the database")
    parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS if suppress else False,
                        help="show the traceback of an error")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``indb`` (also used to render the README's command table)."""
    parser = argparse.ArgumentParser(
        prog="indb",
        description="Deploy trained machine-learning models into PostgreSQL.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"indb {__version__}")
    _common(parser, suppress=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, help_: str, epilog: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_, description=help_, epilog=epilog,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
        _common(sub, suppress=True)
        return sub

    sub = command("compile", "print the SQL that computes a model's output", MODEL_HELP + """
examples:
  indb compile model.skops                             # scalar SQL expression
  indb compile model.onnx --dialect duckdb --output proba
  indb compile model.skops --table customers --keep id,region
                        # on PostgreSQL: BEGIN; SET LOCAL jit = off; SELECT ...; COMMIT;
  indb compile booster.json --output proba             # an XGBoost model file
  indb compile model.joblib --allow-pickle             # only a file you trust
""")
    model_argument(sub)
    from indb.sqlgen.dialects import TARGETS

    sub.add_argument("--dialect", default="postgres", metavar="D",
                     help=f"the SQL dialect: {', '.join(sorted(TARGETS))} (default: postgres; other sqlglot"
                          " dialects are refused with the reason)")
    sub.add_argument("--output", default="predict", choices=["predict", "proba", "decision", "transform"],
                     help="which output to compute (default: predict)")
    sub.add_argument("--features", type=name_list, help="feature column names F1,F2,... in model order")
    sub.add_argument("--table", help="print a full SELECT over this table instead of an expression, ready to run "
                     "(on PostgreSQL inside BEGIN; SET LOCAL jit = off; ... COMMIT;)")
    sub.add_argument("--keep", type=name_list, help="columns of --table to keep in front of the outputs")
    sub.add_argument("--on-missing", choices=["null", "error"], default="null",
                     help="a NULL/NaN feature the model has no rule for gives NULL (default) or raises. On PostgreSQL "
                     "with --table the script creates pg_temp.indb_fail so the error reads 'indb: model M: feature F "
                     "is NULL or NaN ...' (a read-only transaction or hot standby refuses that CREATE: use the "
                     "expression without --table there, whose error reads 'invalid input syntax for type double "
                     "precision: \"indb: model ...\"'); SQLite cannot raise and refuses it")
    sub.set_defaults(handler=_cmd_compile)

    sub = command("migrate", "create or upgrade the indb catalog in the database", """\
Each migration runs in its own transaction together with its history row in
indb.schema_migrations. Concurrent runs wait for each other (an advisory lock keyed
by the schema). The first run creates roles and needs a superuser.

examples:
  indb migrate                           # core catalog to the latest version
  indb migrate --dry-run                 # print the SQL, change nothing
  indb migrate --to 2 --lock-timeout 5
  indb migrate --component plpython      # PL/Python evaluator (superuser)
""")
    sub.add_argument("--to", type=number_from_one("migration number"), metavar="N", help="stop after migration N")
    sub.add_argument("--dry-run", action="store_true", help="print the SQL that would run and change nothing")
    sub.add_argument("--lock-timeout", type=float, default=60.0, metavar="S",
                     help="seconds to wait for a concurrent migration (default: 60)")
    sub.add_argument("--component", default="core", help="core (default) or plpython")
    sub.set_defaults(handler=_cmd_migrate)

    sub = command("status", "show applied and pending migrations and installed components", """\
examples:
  indb status
  indb status --exit-code    # exit 1 when something is pending or wrong (for CI)
""")
    sub.add_argument("--exit-code", action="store_true",
                     help="exit 1 when a migration is pending, failed or altered")
    sub.set_defaults(handler=_cmd_status)

    sub = command("validate", "check that applied migrations still match their files", """\
Exits 1 and names each problem when an applied file changed, is missing, or the
database is newer than this indb. Line-ending changes alone do not count.

example:
  indb validate
""")
    sub.set_defaults(handler=_cmd_validate)

    # Commands of the other areas register themselves, each from its own module.
    import importlib

    for module in COMMAND_MODULES:
        importlib.import_module(module).register(command)
    return parser


#: commands that run against any catalog (or none; validate and status report its version
#: themselves): every other one first checks that the
#: database's catalog is the one this indb was made for (indb.catalog.migrator.require_current)
#: ``deploy`` checks inside its own transaction, after reading the model file, so a broken
#: file is named (exit 2) before any connection is made
WITHOUT_VERSION_CHECK = frozenset({"compile", "deploy", "migrate", "status", "validate"})

#: modules with a ``register(command)`` that adds their sub-commands
COMMAND_MODULES = ("indb.cli.registry", "indb.cli.governance", "indb.cli.spark")


def _out(line: str = "") -> None:
    print(line, flush=True)


def _cmd_compile(args) -> int:
    try:
        from indb.sqlgen.compile import compile_file, runnable_script
    except ModuleNotFoundError as e:
        if e.name != "indb.sqlgen.compile":
            raise
        raise errors.IndbError("indb compile is not available in this build: the compiler (indb.sqlgen.compile) is missing") from None

    sql = compile_file(args.model, dialect=args.dialect, output=args.output, features=args.features,
                       table=args.table, keep=args.keep or (), on_missing=args.on_missing, allow_pickle=args.allow_pickle,
                       fail_function=bool(args.table))
    # a full statement is printed ready to run (on PostgreSQL: in a transaction with JIT off)
    _out(runnable_script(sql, args.dialect) if args.table else sql)
    return 0


def _cmd_migrate(args) -> int:
    from indb.catalog.migrator import migrate

    result = migrate(args.dsn, component=args.component, to=args.to, dry_run=args.dry_run,
                     lock_timeout=args.lock_timeout, progress=_out)
    if result.dry_run:
        sys.stdout.write(result.sql)
    elif result.applied or result.definitions:
        _out(f"{result.component}: now at version {result.version_after:04d}")
    else:
        _out(f"{result.component}: already at version {result.version_before:04d}, nothing to do")
    return 0


def _cmd_status(args) -> int:
    from indb.catalog.migrator import CORE, status

    st = status(args.dsn)
    _out(f"database: {st.database}, PostgreSQL {st.server_version}")
    for comp in st.components:
        if comp.installed:
            state = f"installed, version {comp.version:04d} of {comp.latest:04d}"
            waiting = len(comp.pending) + len(comp.pending_definitions)
            state += f", {waiting} pending" if waiting else " (up to date)"
        else:
            state = "not installed" + (f", {len(comp.pending)} pending" if comp.pending else "")
            if comp.component != CORE:
                state += f" (optional: indb migrate --component {comp.component}, as a superuser)"
        _out(f"component {comp.component}: {state}")
        for m in comp.migrations:
            row = comp.applied.get(m.version)
            if row is None:
                _out(f"  {m.version:04d} {m.name:<28} pending")
            elif not row.success:
                _out(f"  {m.version:04d} {m.name:<28} FAILED at {row.applied_at:%Y-%m-%d %H:%M:%S} (retried by the next migrate)")
            else:
                _out(f"  {m.version:04d} {m.name:<28} applied {row.applied_at:%Y-%m-%d %H:%M:%S} "
                     f"by {row.applied_by} in {row.execution_ms} ms")
        for d in comp.definitions:
            row = comp.definitions_applied.get(d.name)
            if row is None:
                _out(f"  definition {d.name:<17} pending")
            elif row.sha256 != d.sha256:
                _out(f"  definition {d.name:<17} changed since {row.applied_at:%Y-%m-%d %H:%M:%S}: re-created by the next migrate")
            else:
                _out(f"  definition {d.name:<17} applied {row.applied_at:%Y-%m-%d %H:%M:%S} by {row.applied_by}")
        for problem in comp.problems:
            _out(f"  PROBLEM: {problem}")
    if st.extensions:
        _out("extensions: " + ", ".join(f"{k} {v}" for k, v in sorted(st.extensions.items())))
    if args.exit_code and not st.up_to_date:
        return 1
    return 0


def _cmd_validate(args) -> int:
    from indb.catalog.migrator import validate

    report = validate(args.dsn)
    for note in report.notes:
        _out(f"note: {note}")
    for problem in report.problems:
        _out(f"PROBLEM: {problem}")
    if report.problems:
        raise errors.MigrationError(f"validate found {len(report.problems)} problem(s): " + " | ".join(report.problems))
    _out(f"ok: {len(report.checked)} check(s) passed")
    return 0


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``indb`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command not in WITHOUT_VERSION_CHECK:
            from indb.catalog.migrator import check_current

            check_current(args.dsn)  # an older or newer catalog: one line, exit 1, nothing done
        return args.handler(args)
    except errors.IndbError as e:
        if args.debug:
            traceback.print_exc()
        print(f"indb: error: {_one_line(e)}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("indb: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        # Errors from the database driver that the API did not translate still get
        # one line; anything else is a bug in indb and keeps its traceback.
        if type(e).__module__.startswith("psycopg"):
            from indb.catalog.connection import translate

            if args.debug:
                traceback.print_exc()
            error = translate(e)
            print(f"indb: error: {_one_line(error)}", file=sys.stderr)
            return error.exit_code
        raise


if __name__ == "__main__":
    sys.exit(main())
