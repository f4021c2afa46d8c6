"""Command-line commands of governance: score, grant, revoke, grants, audit, log, drift.

Each parses its arguments, calls the Python function (``indb.governance.score``, ``indb.governance.grants``,
``indb.governance.log``, ``indb.governance.drift``) and prints the result; errors are handled by
``indb.cli.main.main``.
"""

from __future__ import annotations

import argparse
import csv
import sys

from indb.cli.argtypes import model_ref, name_list, version_number


def _rate(value: str) -> float:
    try:
        r = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a rate like 0.1, got {value!r}") from None
    if not 0 < r <= 1:
        raise argparse.ArgumentTypeError("the sampling rate must be in (0, 1]")
    return r


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dsn", default=argparse.SUPPRESS, help="libpq connection string or URI of the database")
    parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show the traceback of an error")


def _err(line: str) -> None:
    print(f"indb: {line}", file=sys.stderr, flush=True)


def _table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(header)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip())
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())


def register(command) -> None:
    sub = command("score", "score a table into a new table inside the database, logging the rows", """\
Every row of --from gets the model's outputs in the new table --into: the --keep
columns first, then prediction, probability_<label>... (or decision/transform columns).
The rows are logged in one scoring call (all of them, or with --sample R those whose
--key hashes below R: the same entities every time). One transaction: an interrupted
call leaves neither the table nor log rows. NAME is 'name' (its champion), 'name@3'
or 'name@alias'.

examples:
  indb score churn --from customers --into churn_scores --keep id --key id
  indb score churn@staging --from customers --into s --keep id --key id --sample 0.1 --replace
""")
    sub.add_argument("name", metavar="NAME", type=model_ref)
    sub.add_argument("--from", dest="source", required=True, metavar="TABLE", help="the table to score")
    sub.add_argument("--into", dest="target", required=True, metavar="TABLE", help="the new table to write")
    sub.add_argument("--keep", type=name_list, default=[], metavar="COL,...", help="columns of TABLE to copy in front")
    sub.add_argument("--key", metavar="COL", help="the column identifying an entity (logged with each row; sampling hashes it)")
    sub.add_argument("--sample", type=_rate, default=1.0, metavar="R", help="share of rows to log, by key (default: 1, all)")
    sub.add_argument("--replace", action="store_true", help="drop an existing --into table first (same transaction)")
    sub.set_defaults(handler=_cmd_score)

    for name, help_, verb in (("grant", "give a user deployer, scorer or auditor access", "GRANT"),
                              ("revoke", "take back deployer, scorer or auditor access", "REVOKE")):
        sub = command(name, help_, f"""\
deployer: deploys, promotes, rolls back and retires models (creates version functions
          as indb_versions; never acts as indb_owner, which owns indb's shared code).
scorer:   scores every model, or with --model only that one; reads their own log rows.
auditor:  reads the registry and the whole prediction log.
USER is a LOGIN role. Needs a superuser or CREATEROLE (a per-model grant also grants the
model's version functions as indb_versions, so a non-superuser must be a deployer too). This is a {verb} of indb's
group roles; `indb grants` shows the effect.

examples:
  indb {name} scorer alice
  indb {name} scorer bob --model churn
  indb {name} deployer release_bot
""")
        sub.add_argument("kind", choices=["deployer", "scorer", "auditor"], metavar="{deployer,scorer,auditor}")
        sub.add_argument("user", metavar="USER")
        sub.add_argument("--model", metavar="NAME", help="scorer of this model only")
        sub.set_defaults(handler=_cmd_grant if name == "grant" else _cmd_revoke)

    sub = command("grants", "show who may deploy, audit and score which models", """\
Read from the catalog (role membership and function privileges), not from a list kept
by indb.

examples:
  indb grants
  indb grants --user alice
  indb grants --model churn
""")
    sub.add_argument("--user", metavar="USER")
    sub.add_argument("--model", metavar="NAME", help="only those who may score this model")
    sub.set_defaults(handler=_cmd_grants)

    sub = command("audit", "read the audit trail: who deployed, promoted, rolled back, retired, bound, granted... when", """\
Every deploy, promote, rollback, retire, bind, unbind, baseline, grant, revoke, prune and
migrate, oldest first, as the server recorded it: who is the session user of the change,
when the server's clock. Nobody can change or delete the trail. Needs indb_auditor.

examples:
  indb audit
  indb audit --model churn --since 7d
  indb audit --since 2026-01-01 --until 2026-02-01 --format csv > january.csv
""")
    sub.add_argument("--model", metavar="NAME", help="only the changes of this model")
    sub.add_argument("--since", metavar="WHEN", help="an age (7d, 12h) or a timestamp")
    sub.add_argument("--until", metavar="WHEN", help="an age or a timestamp")
    sub.add_argument("--action", choices=["deploy", "promote", "rollback", "retire", "bind", "unbind", "baseline",
                                          "grant", "revoke", "prune", "migrate"])
    sub.add_argument("--format", choices=["text", "csv", "json"], default="text")
    sub.set_defaults(handler=_cmd_audit)

    sub = command("log", "read the prediction log; maintain and prune its partitions", """\
Without an action, prints logged rows (or --calls), newest first. A scorer sees their
own calls, an auditor every call.

  indb log maintain [--days-ahead N]   create the partitions of the coming days (cron)
  indb log prune --older-than 90d      drop whole partitions older than that (cron)

examples:
  indb log --model churn --since 24h
  indb log --calls --user alice --format csv > calls.csv
  indb log prune --older-than 90d --dry-run
""")
    sub.add_argument("--model", metavar="NAME")
    sub.add_argument("--version", type=int, metavar="N")
    sub.add_argument("--user", metavar="USER", help="calls made by this user")
    sub.add_argument("--since", metavar="T", help="an age (24h, 7d) or a timestamp")
    sub.add_argument("--until", metavar="T", help="an age (24h, 7d) or a timestamp")
    sub.add_argument("--calls", action="store_true", help="one line per scoring call instead of per logged row")
    sub.add_argument("--limit", type=int, default=100, metavar="N", help="at most N lines (default 100; 0: all)")
    sub.add_argument("--format", choices=["table", "csv"], default="table")
    sub.set_defaults(handler=_cmd_log)
    actions = sub.add_subparsers(dest="log_action", metavar="ACTION")
    act = actions.add_parser("maintain", help="create the log's partitions of the coming days (for cron)",
                             description="create the log's partitions of the coming days (for cron); exits 1 on a problem")
    _common(act)
    act.add_argument("--days-ahead", type=int, metavar="N", help="default: indb.log_settings.days_ahead (7)")
    act.set_defaults(handler=_cmd_log_maintain)
    act = actions.add_parser("prune", help="drop whole partitions older than --older-than (for cron)",
                             description="drop whole partitions of the log older than --older-than; never deletes rows")
    _common(act)
    act.add_argument("--older-than", required=True, metavar="AGE", help="like 90d, 12w")
    act.add_argument("--dry-run", action="store_true", help="list what would be dropped")
    act.set_defaults(handler=_cmd_log_prune)

    sub = command("drift", "daily population stability index of a model's features and prediction", """\
Compares the logged rows with the baseline stored at deploy (--baseline FILE).
PSI below 0.1 is ok, from 0.1 watch, from 0.25 act. Needs indb_auditor.
With --exit-code (for cron and CI) it exits 1 when any row of the period is at "act".

examples:
  indb drift churn
  indb drift churn --days 1 --exit-code || alert "churn drifted"
  indb drift churn --days 30 --png churn-drift.png    # needs pip install 'indb[drift]'
""")
    sub.add_argument("name", metavar="NAME", type=model_ref)
    sub.add_argument("--version", type=version_number, metavar="N")
    sub.add_argument("--days", type=int, default=30, metavar="N", help="the last N days (default 30; 0: all)")
    sub.add_argument("--png", metavar="FILE", help="also write a chart of the daily PSI per feature")
    sub.add_argument("--exit-code", action="store_true", help='exit 1 when a feature or the prediction is at "act"')
    sub.set_defaults(handler=_cmd_drift)


def _cmd_score(args) -> int:
    from indb.governance.score import Ticker, score

    tty = sys.stderr.isatty()
    progress = _err if tty else None
    if tty:
        with Ticker(_err):
            res = score(args.name, args.source, args.target, keep=args.keep, key=args.key, sample=args.sample,
                        replace=args.replace, dsn=args.dsn, progress=progress)
    else:
        res = score(args.name, args.source, args.target, keep=args.keep, key=args.key, sample=args.sample,
                    replace=args.replace, dsn=args.dsn)
    print(res)
    return 0


def _cmd_grant(args) -> int:
    from indb.governance.grants import grant

    print(grant(args.kind, args.user, model=args.model, dsn=args.dsn))
    return 0


def _cmd_revoke(args) -> int:
    from indb.governance.grants import revoke

    print(revoke(args.kind, args.user, model=args.model, dsn=args.dsn))
    return 0


def _cmd_audit(args) -> int:
    import json

    from indb.governance.audit import COLUMNS, audit

    events = audit(model=args.model, since=args.since, until=args.until, action=args.action, dsn=args.dsn)
    if args.format == "json":
        print(json.dumps([e.as_dict() for e in events], indent=1))
    elif args.format == "csv":
        out = csv.writer(sys.stdout, lineterminator="\n")
        out.writerow(COLUMNS)
        for e in events:
            d = e.as_dict()
            out.writerow([*(d[k] if d[k] is not None else "" for k in COLUMNS[:-1]), json.dumps(e.detail, sort_keys=True)])
    elif not events:
        print("nothing recorded in the period")
    else:
        _table(["at", "who", "action", "model", "what"],
               [[f"{e.at:%Y-%m-%d %H:%M:%S}", e.who, e.action,
                 "" if e.model is None else e.model + ("" if e.version is None else f"@{e.version}"), e.detail_text()]
                for e in events])
    return 0


def _cmd_grants(args) -> int:
    from indb.governance.grants import grants

    rows = grants(user=args.user, model=args.model, dsn=args.dsn)
    if not rows:
        print("nobody has indb access yet (indb grant scorer USER)")
        return 0
    _table(["user", "deploy", "audit", "scores", "through"],
           [[a.user if a.login else f"{a.user} (group)", "yes" if a.deploy else "", "yes" if a.audit else "",
             "every model (superuser)" if a.superuser else ", ".join(a.models),
             "superuser" if a.superuser else ", ".join(a.roles)] for a in rows])
    return 0


def _text(v) -> str:
    if v is None:
        return ""
    if isinstance(v, list):
        return "{" + ",".join(_text(x) for x in v) + "}"
    if isinstance(v, dict):
        import json

        return json.dumps(v)
    if hasattr(v, "isoformat"):
        return v.isoformat(sep=" ", timespec="seconds") if hasattr(v, "hour") else v.isoformat()
    return str(v)


def _cmd_log(args) -> int:
    from indb.governance.log import log

    cols, rows = log(model=args.model, version=args.version, user=args.user, since=args.since, until=args.until,
                     calls=args.calls, limit=args.limit or None, dsn=args.dsn)
    if args.format == "csv":
        w = csv.writer(sys.stdout)
        w.writerow(cols)
        w.writerows([[_text(v) for v in r] for r in rows])
        return 0
    if not rows:
        print("no logged " + ("calls" if args.calls else "rows") + " match")
        return 0
    # the text view names each feature (feature_values); a text label is the prediction
    shown = [c for c in cols if c not in ("ir_sha256", "features", "features_text", "label")]
    idx = [cols.index(c) for c in shown]
    if "label" in cols:
        p, lab = cols.index("prediction"), cols.index("label")
        rows = [tuple(r[lab] if i == p and r[i] is None else v for i, v in enumerate(r)) for r in rows]
    _table(shown, [[_text(r[i]) for i in idx] for r in rows])
    return 0


def _cmd_log_maintain(args) -> int:
    from indb.governance.log import maintain

    res = maintain(days_ahead=args.days_ahead, dsn=args.dsn)
    print(res)
    return 1 if res.problems else 0


def _cmd_log_prune(args) -> int:
    from indb.governance.log import prune

    res = prune(args.older_than, dry_run=args.dry_run, dsn=args.dsn, progress=_err if sys.stderr.isatty() else None)
    print(res)
    return 1 if res.kept_busy else 0


def _cmd_drift(args) -> int:
    from indb.governance.drift import drift, drift_chart

    rows = drift(args.name, version=args.version, days=args.days or None, dsn=args.dsn)
    if not rows:
        print(f"nothing logged for {args.name} in the period: no drift to show")
        return 0
    _table(["version", "day", "what", "rows", "psi", "status"],
           [[str(r.version), str(r.day), r.name if r.subject == "feature" else "(prediction)", str(r.rows),
             f"{r.psi:.4f}", r.status] for r in rows])
    worst = max(rows, key=lambda r: r.psi)
    print(f"worst: {worst.name} on {worst.day}, PSI {worst.psi:.3f} ({worst.status})")
    if args.png:
        print(f"chart written to {drift_chart(rows, args.png)}")
    return 1 if args.exit_code and worst.status == "act" else 0
