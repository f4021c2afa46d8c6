"""indb grant / revoke / grants: group roles, per-model scorers, effective privileges."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg
import pytest
from psycopg import sql

import indb
from indb import errors
from tests.gov import connect, deploy, make_source, train_gb, train_lr


@pytest.fixture(autouse=True)
def _drop_model_roles(migrated_dsn):
    """Per-model roles are cluster-wide: drop the ones a test made (before its database goes)."""
    query = "SELECT rolname FROM pg_roles WHERE rolname LIKE 'indb\\_model\\_%'"
    with connect(migrated_dsn) as conn:
        before = {r[0] for r in conn.execute(query)}
    yield
    with connect(migrated_dsn) as conn:
        for role in sorted({r[0] for r in conn.execute(query)} - before):
            conn.execute(sql.SQL("DROP OWNED BY {0}; DROP ROLE {0}").format(sql.Identifier(role)))


def _login(conn, pg_role, dsn):
    role = pg_role(dsn)
    conn.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {0}; GRANT CREATE ON SCHEMA public TO {0}").format(
        sql.Identifier(role.name)))
    return role


def test_a_per_model_scorer_scores_that_model_and_no_other(migrated_dsn, migrated_conn, pg_role):
    deploy(migrated_dsn, train_lr(), "m")
    deploy(migrated_dsn, train_gb(), "g")
    make_source(migrated_conn, n=10)
    bob = _login(migrated_conn, pg_role, migrated_dsn)
    assert indb.grant("scorer", bob.name, model="m", dsn=migrated_dsn) == f"{bob.name} may now score m only (member of indb_model_m)"
    deploy(migrated_dsn, train_lr().set_params(C=0.5).fit([[0, 0, 0], [1, 1, 1]], [0, 1]), "m")  # m@2: granted by deploy
    migrated_conn.execute("CREATE TABLE bound AS SELECT * FROM src")
    migrated_conn.execute(sql.SQL("GRANT SELECT ON bound TO {}").format(sql.Identifier(bob.name)))
    indb.bind("m", "bound", dsn=migrated_dsn)
    with connect(bob.dsn) as conn:
        assert conn.execute("SELECT count(indb.predict('m', s)), count(indb.predict('m@1', s)) FROM src AS s").fetchone() == (10, 10)
        assert conn.execute("SELECT count(indb.predict('m', s)) FROM bound AS s").fetchone()[0] == 10
        assert conn.execute("SELECT indb.predict_logged('m', s) IS NOT NULL FROM src AS s WHERE id = 0").fetchone()[0]
        assert indb.score("m", "src", "bob_m", conn=conn).rows_logged == 10
        for query in ("SELECT indb.predict('g', s) FROM src AS s", "SELECT indb.predict_logged('g', s) FROM src AS s",
                      "SELECT indb.\"g@1/predict\"(a, b, c) FROM src"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(query)
        with pytest.raises(errors.PermissionError, match="permission denied to score 'g@1'"):
            indb.score("g", "src", "bob_g", conn=conn)
    listed = {a.user: a for a in indb.grants(dsn=migrated_dsn)}
    assert listed[bob.name].models == ["m"] and not listed[bob.name].deploy and "indb_model_m" in listed[bob.name].roles
    assert [a.user for a in indb.grants(model="g", dsn=migrated_dsn) if not a.superuser] == []
    assert "no longer a member of indb_model_m" in indb.revoke("scorer", bob.name, model="m", dsn=migrated_dsn)
    with connect(bob.dsn) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("SELECT indb.predict('m', s) FROM src AS s")
    assert bob.name not in {a.user for a in indb.grants(dsn=migrated_dsn)}


def test_group_grants_and_their_effect_read_from_the_catalog(migrated_dsn, migrated_conn, pg_role):
    deploy(migrated_dsn, train_lr(), "m")
    ann, cy, eve = (_login(migrated_conn, pg_role, migrated_dsn) for _ in range(3))
    indb.grant("scorer", ann.name, dsn=migrated_dsn)
    indb.grant("deployer", cy.name, dsn=migrated_dsn)
    indb.grant("auditor", eve.name, dsn=migrated_dsn)
    got = {a.user: a for a in indb.grants(dsn=migrated_dsn)}
    assert (got[ann.name].models, got[ann.name].deploy, got[ann.name].audit) == (["m"], False, False)
    assert (got[cy.name].models, got[cy.name].deploy) == ([], True)
    assert (got[eve.name].audit, got[eve.name].models) == (True, [])
    # the catalog decides, not indb: a grant made by hand shows up too
    migrated_conn.execute(sql.SQL("GRANT indb_scorer TO {}").format(sql.Identifier(cy.name)))
    assert indb.grants(user=cy.name, dsn=migrated_dsn)[0].models == ["m"]
    assert "no longer a member of indb_deployer" in indb.revoke("deployer", cy.name, dsn=migrated_dsn)
    assert "nothing to revoke" in indb.revoke("deployer", cy.name, dsn=migrated_dsn)


@pytest.mark.parametrize("args, error, message", [
    (("scorer", "nobody_here"), errors.NotFoundError, "role 'nobody_here' does not exist"),
    (("auditor", "USER", "m"), errors.UsageError, "--model goes with scorer only"),
    (("admin", "USER"), errors.UsageError, "unknown access 'admin'"),
    (("scorer", "USER", "nope"), errors.NotFoundError, "unknown model 'nope'"),
    (("scorer", "indb_owner"), errors.UsageError, "one of indb's group roles"),
])
def test_grant_errors_say_what_to_do(migrated_dsn, migrated_conn, pg_role, args, error, message):
    deploy(migrated_dsn, train_lr(), "m")
    user = pg_role(migrated_dsn).name
    kind, who, *model = args
    with pytest.raises(error, match=message):
        indb.grant(kind, user if who == "USER" else who, model=model[0] if model else None, dsn=migrated_dsn)


def test_granting_needs_the_right_to_grant_roles(migrated_dsn, migrated_conn, pg_role):
    deploy(migrated_dsn, train_lr(), "m")
    scorer = pg_role(migrated_dsn, "indb_scorer")
    other = pg_role(migrated_dsn)
    with pytest.raises(errors.PermissionError, match="needs a superuser or CREATEROLE"):
        indb.grant("deployer", other.name, dsn=scorer.dsn)


def test_the_commands(migrated_dsn, migrated_conn, pg_role):
    deploy(migrated_dsn, train_lr(), "m")
    bob = pg_role(migrated_dsn)
    env = dict(os.environ, INDB_DSN=migrated_dsn)

    def run(*args):
        return subprocess.run([sys.executable, "-m", "indb.cli", *args], env=env, capture_output=True, text=True, timeout=120)

    out = run("grant", "scorer", bob.name, "--model", "m")
    assert out.returncode == 0 and f"{bob.name} may now score m only" in out.stdout, out.stderr
    out = run("grants")
    assert out.returncode == 0 and bob.name in out.stdout and "indb_model_m" in out.stdout
    line = next(x for x in out.stdout.splitlines() if x.startswith(bob.name))
    assert line.split()[1] == "m"
    out = run("grant", "auditor", bob.name, "--model", "m")
    assert out.returncode == 2 and out.stderr.strip() == "indb: error: --model goes with scorer only (deployers and auditors act on every model)"


def test_a_per_model_scorer_of_a_plpython_version_gets_the_engine_too(migrated_dsn, migrated_conn, pg_role):
    est = train_gb()
    deploy(migrated_dsn, est, "p", engine="plpython")
    X = make_source(migrated_conn, n=8)
    bob = _login(migrated_conn, pg_role, migrated_dsn)
    indb.grant("scorer", bob.name, model="p", dsn=migrated_dsn)
    with connect(bob.dsn) as conn:
        got = [r[0] for r in conn.execute("SELECT indb.predict('p', s) FROM src AS s ORDER BY id")]
        assert got == list(est.predict(X))
        assert indb.score("p", "src", "bob_p", keep=["id"], conn=conn).rows_logged == 8
