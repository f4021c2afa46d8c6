"""The audit trail (indb audit), the model card (indb models show), attaching a baseline
later (indb baseline), retire --force and group roles in indb grants."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import psycopg
import pytest
from psycopg import sql

import indb
from indb import errors
from indb.cli.main import main
from indb.governance.baseline import make_baseline
from tests.gov import FEATURES, connect, deploy, make_source, train_lr, train_text


def _lr2():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(9)
    X = rng.normal(size=(200, 3))
    return LogisticRegression(C=0.2).fit(X, (X[:, 1] + X[:, 2] > 0).astype(int))


def test_every_change_is_in_the_trail_which_nobody_can_rewrite(migrated_dsn, migrated_conn, pg_role, capsys):
    make_source(migrated_conn, n=20)
    deploy(migrated_dsn, train_lr(), "m")
    deploy(migrated_dsn, _lr2(), "m", for_tables=["src"])
    indb.promote("m", 1, alias="staging", dsn=migrated_dsn)
    assert indb.retire("m", 2, force=True, dsn=migrated_dsn).moved == {"champion": 1}
    same = "SELECT bool_and(indb.predict('m', s) = indb.predict('m@1', s)) FROM src AS s"
    assert migrated_conn.execute(same).fetchone()[0]  # the bound path answers the version the alias moved to
    with pytest.raises(errors.IndbError, match="--force"):
        indb.retire("m", 1, dsn=migrated_dsn)
    assert indb.retire("m", 1, force=True, dsn=migrated_dsn).moved == {"champion": None, "staging": None}
    assert migrated_conn.execute("SELECT count(*) FROM indb.aliases").fetchone()[0] == 0
    indb.unbind("m", "src", dsn=migrated_dsn)
    deployer = pg_role(migrated_dsn, "indb_deployer")
    migrated_conn.execute("CREATE ROLE audit15_group NOLOGIN")
    try:
        indb.grant("scorer", "audit15_group", dsn=migrated_dsn)
        groups = [a for a in indb.grants(dsn=migrated_dsn) if a.user == "audit15_group"]
        assert len(groups) == 1 and not groups[0].login and str(groups[0]).startswith("audit15_group (group role):")
        indb.revoke("scorer", "audit15_group", dsn=migrated_dsn)
    finally:
        migrated_conn.execute("DROP ROLE audit15_group")

    auditor = pg_role(migrated_dsn, "indb_auditor")
    events = indb.audit(model="m", dsn=auditor.dsn)
    trail = [(e.action, e.version, e.detail.get("alias")) for e in events]
    assert trail == [("deploy", 1, None), ("deploy", 1, "champion"), ("deploy", 2, None), ("deploy", 2, "champion"),
                     ("bind", None, None), ("promote", 1, "staging"), ("retire", 1, "champion"), ("retire", 2, None),
                     ("retire", None, "champion"), ("retire", None, "staging"), ("retire", 1, None), ("unbind", None, None)]
    assert {e.who for e in events} == {"postgres"}
    assert migrated_conn.execute("SELECT array_agg(retired_by) FROM indb.versions").fetchone()[0] == ["postgres", "postgres"]
    everything = indb.audit(dsn=auditor.dsn, since="1h")
    assert [(e.action, e.detail["role"]) for e in everything if e.action in ("grant", "revoke")] == [
        ("grant", "audit15_group"), ("revoke", "audit15_group")]
    assert any(e.action == "migrate" for e in indb.audit(dsn=auditor.dsn))
    assert indb.audit(model="m", since="2999-01-01", dsn=auditor.dsn) == []

    # append-only: not a deployer, not the table's owner, not even with the client's word
    with connect(deployer.dsn) as conn:
        for stmt in ("INSERT INTO indb.audit (action, model) VALUES ('deploy', 'm')", "DELETE FROM indb.audit",
                     "UPDATE indb.audit SET who = 'someone'"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(stmt)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT indb.audit_grant('grant', 'postgres', 'indb_auditor')")  # not CREATEROLE
    for stmt in ("UPDATE indb.audit SET who = 'someone'", "DELETE FROM indb.audit", "TRUNCATE indb.audit"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            migrated_conn.execute(stmt)  # a superuser: refused by the trigger

    assert main(["--dsn", auditor.dsn, "audit", "--model", "m", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == len(trail) and rows[1]["action"] == "deploy" and json.loads(rows[1]["detail"])["alias"] == "champion"
    assert main(["--dsn", auditor.dsn, "audit", "--action", "retire", "--format", "json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 5
    assert main(["--dsn", auditor.dsn, "audit", "--model", "m"]) == 0
    text = capsys.readouterr().out
    assert "promote" in text and "alias=staging" in text and "m@1" in text
    scorer = pg_role(migrated_dsn, "indb_scorer")
    for argv, expected in (([ "--dsn", scorer.dsn, "audit"], "needs indb_auditor"),
                           (["--dsn", auditor.dsn, "audit", "--since", "yesterday-ish"], "expected an age like 7d")):
        assert main(argv) in (1, 2)
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and expected in err


def test_model_card_and_a_baseline_attached_later(migrated_dsn, migrated_conn, tmp_path, capsys):
    pipe = train_text()
    deploy(migrated_dsn, pipe, "t")
    indb.promote("t", 1, alias="staging", dsn=migrated_dsn)
    card = indb.model_card("t", dsn=migrated_dsn)
    assert [(f["position"], f["name"], f["type"]) for f in card.features] == [(1, "a", "float"), (2, "b", "float"), (3, "c", "text")]
    assert card.classes == list(pipe.classes_) and card.aliases == ["champion", "staging"] and card.baseline is None
    assert card.source_uri is None and card.created_by == "postgres" and len(card.ir_sha256) == 64
    assert [(h["alias"], h["action"], h["to"]) for h in card.alias_history] == [("champion", "deploy", 1), ("staging", "promote", 1)]
    # the log names each feature, and a text label is the prediction the log shows
    label = migrated_conn.execute("SELECT indb.predict_label_logged('t', s) FROM (SELECT 2.0::float8 AS a, 0.5::float8 AS b,"
                                  " 'red'::text AS c) AS s").fetchone()[0]
    assert label == pipe.predict(__import__("pandas").DataFrame({"a": [2.0], "b": [0.5], "c": ["red"]}))[0]
    cols, rows = indb.log(model="t", dsn=migrated_dsn)
    assert rows[0][cols.index("feature_values")] == {"a": 2.0, "b": 0.5, "c": "red"}
    assert list(rows[0][cols.index("feature_values")]) == ["a", "b", "c"]  # in model order
    assert main(["--dsn", migrated_dsn, "log", "--model", "t"]) == 0
    out = capsys.readouterr().out
    assert '{"a": 2, "b": 0.5, "c": "red"}' in out and f"  {label}  " in out

    est = train_lr()
    X = np.random.default_rng(0).normal(size=(300, 3))
    first, second = tmp_path / "b1.json", tmp_path / "b2.json"
    first.write_text(json.dumps(make_baseline(X, est.predict(X), feature_names=FEATURES)))
    second.write_text(json.dumps(make_baseline(X[:100] + 1, est.predict(X[:100]), feature_names=FEATURES)))
    deploy(migrated_dsn, est, "b")
    assert main(["--dsn", migrated_dsn, "baseline", "b@1", str(first)]) == 0
    assert "b@1: baseline attached" in capsys.readouterr().out
    stored = "SELECT baseline FROM indb.versions WHERE model = 'b'"
    assert migrated_conn.execute(stored).fetchone()[0] == json.loads(first.read_text())
    # a redeploy of the identical artifact with --baseline replaces it, never drops it silently
    again = deploy(migrated_dsn, est, "b", baseline=str(second))
    assert not again.created and migrated_conn.execute(stored).fetchone()[0] == json.loads(second.read_text())
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(make_baseline(X, feature_names=["a", "b", "zz"])))
    with pytest.raises(errors.UsageError, match="features the model does not have: zz"):
        indb.attach_baseline("b@1", str(bad), dsn=migrated_dsn)
    assert [e.detail["replaced"] for e in indb.audit(model="b", action="baseline", dsn=migrated_dsn)] == [False, True]

    for fmt in ("text", "json", "markdown"):
        assert main(["--dsn", migrated_dsn, "models", "show", "b@1", "--format", fmt]) == 0
        out = capsys.readouterr().out
        if fmt == "json":
            assert json.loads(out)["baseline"]["features"] == {"a": "numeric", "b": "numeric", "c": "numeric"}
        else:
            assert ("# b@1" if fmt == "markdown" else "b@1") == out.splitlines()[0]
            assert "engine" in out and "classes" in out and "the order of predict_proba" in out
    for ref, expected in (("b@9", "has no version 9"), ("b@nope", "has no alias 'nope'"), ("zz", "unknown model 'zz'")):
        assert main(["--dsn", migrated_dsn, "models", "show", ref]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and expected in err


def test_grant_of_a_per_model_scorer_is_recorded(migrated_dsn, migrated_conn, pg_role):
    deploy(migrated_dsn, train_lr(), "g")
    bob = pg_role(migrated_dsn)
    try:
        indb.grant("scorer", bob.name, model="g", dsn=migrated_dsn)
        [event] = indb.audit(action="grant", dsn=migrated_dsn)
        assert (event.model, event.detail) == ("g", {"role": bob.name, "group": "indb_model_g"})
    finally:
        migrated_conn.execute(sql.SQL("DROP OWNED BY indb_model_g; DROP ROLE indb_model_g"))
