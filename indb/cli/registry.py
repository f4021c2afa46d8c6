"""Command-line commands of the registry: deploy, bind, unbind, models (and models show), promote, rollback,
retire, baseline.

Each parses its arguments, calls the function of the same name in ``indb.registry.versions``
and prints the result; errors are handled by ``indb.cli.main.main``.
"""

from __future__ import annotations

import argparse
import sys

from indb import errors
from indb.cli.argtypes import model_ref, name_list, version_number
from indb.cli.main import MODEL_HELP, model_argument


def register(command) -> None:

    sub = command("deploy", "register a new model version and install its scoring functions", MODEL_HELP + """
The new version becomes the alias `champion` (or --alias A) unless --no-promote; deploying a
file identical to an existing version registers nothing and only moves the alias.
Needs the indb_deployer role, never a superuser.

examples:
  indb deploy churn.skops --name churn
  indb deploy churn.skops --name churn --alias staging --for-table customers
  indb deploy big_forest.onnx --name risk --engine plpython
  indb deploy legacy.joblib --name churn --allow-pickle    # only a file you trust
  indb deploy churn.skops --name churn --sql --revert-sql revert.sql --verify-sql verify.sql > deploy.sql
                                          # scripts for sqitch (deploy/revert/verify) or Alembic's op.execute
""")
    model_argument(sub)
    sub.add_argument("--name", required=True, help="the model's name in the registry")
    sub.add_argument("--features", type=name_list, help="feature column names F1,F2,... in model order")
    group = sub.add_mutually_exclusive_group()
    group.add_argument("--alias", help="move this alias to the new version (default: champion)")
    group.add_argument("--no-promote", action="store_true", help="register the version without moving any alias")
    sub.add_argument("--engine", choices=["auto", "sql", "plpython"], default="auto",
                     help="how the database computes it (default: auto, which says why it chose)")
    sub.add_argument("--baseline", metavar="FILE", help="training-data statistics (JSON) for drift monitoring")
    sub.add_argument("--for-table", type=name_list, default=[], metavar="T,...", help="also bind these tables (see indb bind)")
    sub.add_argument("--on-missing", choices=["null", "error"], default="null",
                     help="a NULL feature the model has no rule for gives NULL (default) or raises")
    sub.add_argument("--sql", action="store_true",
                     help="print the deploy as a SQL script for a migration tool (sqitch, Alembic, Flyway, Liquibase) "
                          "instead of running it; rehearsed against the database and rolled back. It applies to any "
                          "database at the same catalog version, checks that first, and changes nothing when run again")
    sub.add_argument("--revert-sql", metavar="FILE",
                     help="with --sql: also write the revert script (moves the alias back to where it pointed before "
                          "the deploy, on every scoring path) to FILE")
    sub.add_argument("--verify-sql", metavar="FILE",
                     help="with --sql: also write a verify script (raises an error unless the deploy is in place) to FILE")
    sub.set_defaults(handler=_cmd_deploy)

    sub = command("bind", "make indb.predict(NAME, row) fast for rows of TABLE", """\
Creates indb.predict(text, <TABLE's row type>) (and predict_proba, predict_label, ...)
whose body the planner folds to the current version's expression. It is re-created on
every deploy, promote, rollback and retire of NAME.

example:
  indb bind churn customers
""")
    sub.add_argument("name", metavar="NAME")
    sub.add_argument("table", metavar="TABLE")
    sub.set_defaults(handler=_cmd_bind)

    sub = command("unbind", "undo indb bind: rows of TABLE take the generic path again", """\
Removes NAME's branch from the overloads of TABLE's row type (and the overloads once
nothing is bound to that type). For a binding whose table was dropped, give the row
type's oid that `indb validate` prints.

examples:
  indb unbind churn customers
  indb unbind churn 16896
""")
    sub.add_argument("name", metavar="NAME")
    sub.add_argument("table", metavar="TABLE")
    sub.set_defaults(handler=_cmd_unbind)

    sub = command("models", "list models, versions, aliases and engines; `models show` prints a model card", """\
`indb models show NAME[@VERSION|@ALIAS]` prints one version's card: its features (name,
type, order), outputs and class order, engine and why, artifact and IR checksums, source
and MLflow run, metrics, baseline summary, aliases and their history, who deployed it
when. A bare NAME is its champion. Needs indb_deployer or indb_auditor.

examples:
  indb models
  indb models churn
  indb models show churn@2
  indb models show churn@staging --format markdown > churn-card.md
""")
    sub.add_argument("name", metavar="NAME", nargs="?", help="list this model only; or `show` followed by NAME[@V|@ALIAS]")
    sub.add_argument("ref", metavar="NAME[@V|@ALIAS]", nargs="?", help=argparse.SUPPRESS)
    sub.add_argument("--format", choices=["text", "json", "markdown"], default="text", help="of `models show` (default text)")
    sub.set_defaults(handler=_cmd_models)

    sub = command("promote", "point an alias (default champion) at a version", """\
example:
  indb promote churn 3 --alias champion
""")
    sub.add_argument("name", metavar="NAME")
    sub.add_argument("version", metavar="VERSION", type=version_number)
    sub.add_argument("--alias", default="champion")
    sub.set_defaults(handler=_cmd_promote)

    sub = command("rollback", "move an alias back to its previous version", """\
A second rollback goes one step further back.

example:
  indb rollback churn
""")
    sub.add_argument("name", metavar="NAME")
    sub.add_argument("--alias", default="champion")
    sub.set_defaults(handler=_cmd_rollback)

    sub = command("retire", "stop a version from being scored (its log rows stay)", """\
A version an alias points to is refused, unless --force: then each such alias moves back
to its previous live version, or is dropped when it has none (both recorded in the alias
history and the audit trail).

examples:
  indb retire churn 1
  indb retire churn 3 --force
""")
    sub.add_argument("name", metavar="NAME")
    sub.add_argument("version", metavar="VERSION", type=version_number)
    sub.add_argument("--force", action="store_true", help="move aliases off the version (or drop them) first")
    sub.set_defaults(handler=_cmd_retire)

    sub = command("baseline", "attach (or replace) the drift baseline of a deployed version", """\
FILE is the JSON that indb.governance.baseline.make_baseline writes from the training data
(the same as deploy --baseline). It is checked against the version's features; the change
is recorded in the audit trail. Needs indb_deployer.

example:
  indb baseline churn@3 churn-baseline.json
""")
    sub.add_argument("ref", metavar="NAME@VERSION", type=model_ref)
    sub.add_argument("file", metavar="FILE")
    sub.set_defaults(handler=_cmd_baseline)


def _cmd_deploy(args) -> int:
    from indb.registry.scripts import deploy_scripts
    from indb.registry.versions import deploy

    options = dict(
        features=args.features,
        alias=args.alias,
        promote=not args.no_promote,
        engine=args.engine,
        baseline=args.baseline,
        for_tables=args.for_table,
        on_missing=args.on_missing,
        allow_pickle=args.allow_pickle,
    )
    if (args.revert_sql or args.verify_sql) and not args.sql:
        raise errors.UsageError("--revert-sql and --verify-sql go with --sql")
    if args.sql:
        scripts = deploy_scripts(args.model, args.name, dsn=args.dsn, **options)
        for path, text in ((args.revert_sql, scripts.revert), (args.verify_sql, scripts.verify)):
            if path:
                try:
                    with open(path, "w", encoding="utf-8") as f:
                        f.write(text)
                except OSError as e:
                    raise errors.UsageError(f"cannot write {path}: {e.strerror}") from None
        sys.stdout.write(scripts.deploy)
        return 0
    print(deploy(args.model, args.name, dsn=args.dsn, **options))
    return 0


def _cmd_bind(args) -> int:
    from indb.registry.versions import bind

    rowtype = bind(args.name, args.table, dsn=args.dsn)
    print(f"bound {args.name} to rows of {rowtype}: indb.predict('{args.name}', row) is now inlined for them")
    return 0


def _cmd_unbind(args) -> int:
    from indb.registry.versions import unbind

    rowtype = unbind(args.name, args.table, dsn=args.dsn)
    print(f"unbound {args.name} from rows of {rowtype}: indb.predict('{args.name}', row) takes the generic path for them")
    return 0


def _cmd_models(args) -> int:
    from indb.registry.functions import ENTRY_POINTS
    from indb.registry.versions import models

    if args.name == "show" and args.ref:
        from indb.registry.card import model_card

        sys.stdout.write(model_card(args.ref, dsn=args.dsn).render(args.format))
        return 0
    if args.ref:
        raise errors.UsageError(f"unexpected {args.ref!r}: `indb models [NAME]` or `indb models show NAME[@V|@ALIAS]`")
    entry_of = {out: entry for entry, (out, _) in ENTRY_POINTS.items()}

    rows = models(args.name, dsn=args.dsn)
    if not rows:
        print("no models deployed yet (indb deploy MODEL --name NAME)")
        return 0
    header = ("model", "version", "aliases", "engine", "why", "sql functions", "created", "by", "retired")
    table = [
        (
            v.model,
            str(v.version),
            ",".join(v.aliases),
            v.engine,
            v.engine_reason,
            ",".join(entry_of.get(o, o) for o in v.outputs),
            f"{v.created_at:%Y-%m-%d %H:%M}",
            v.created_by,
            "" if v.retired_at is None else f"{v.retired_at:%Y-%m-%d}",
        )
        for v in rows
    ]
    if any(v.source_uri or v.run_id or v.metrics for v in rows):  # where versions came from (MLflow, a file)
        header += ("source", "run", "metrics")
        table = [r + (v.source_uri or "", v.run_id or "", ",".join(f"{k}={m:g}" for k, m in sorted((v.metrics or {}).items())))
                 for r, v in zip(table, rows)]
    widths = [max(len(h), *(len(r[i]) for r in table)) for i, h in enumerate(header)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip())
    for r in table:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    return 0


def _cmd_promote(args) -> int:
    from indb.registry.versions import promote

    print(promote(args.name, args.version, alias=args.alias, dsn=args.dsn))
    return 0


def _cmd_rollback(args) -> int:
    from indb.registry.versions import rollback

    print(rollback(args.name, alias=args.alias, dsn=args.dsn))
    return 0


def _cmd_retire(args) -> int:
    from indb.registry.versions import retire

    print(retire(args.name, args.version, force=args.force, dsn=args.dsn))
    return 0


def _cmd_baseline(args) -> int:
    from indb.registry.card import attach_baseline

    if "@" not in args.ref or not args.ref.partition("@")[2]:
        raise errors.UsageError(f"{args.ref!r}: name the version or alias, as NAME@VERSION or NAME@ALIAS")
    print(attach_baseline(args.ref, args.file, dsn=args.dsn))
    return 0
