"""A catalog made by the previous release upgrades to this one with nothing lost.

The previous release (the commit below: core 0011, plpython 0004, deployers acting as
indb_owner, engine sources embedded in migrations) is built as a wheel from this
repository's own history and installed in a virtual environment of its own; it creates
the catalog and puts models of both engines, a bound table, a per-model grant and log
rows in it. Then this indb migrates it: repeatable definitions (issue 11) and the role
separation (issue 12). Every old model must answer exactly as before, on every path, and
nothing of the registry, the grants or the log may be lost.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import textwrap

import pytest
from psycopg import sql

import indb
from tests.gov import connect
from tests.helpers import REPO

PREVIOUS_RELEASE = "4508aeb"  # main before the layout and trust-model changes

OLD_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import psycopg
    import indb
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    dsn, scorer = sys.argv[1], sys.argv[2]
    indb.migrate(dsn)
    indb.migrate(dsn, component="plpython")
    rng = np.random.default_rng(7)
    X = rng.normal(size=(300, 3))
    y = (X[:, 0] - X[:, 1] > 0).astype(int)
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("CREATE TABLE src (id int, a float8, b float8, c float8)")
        with c.cursor().copy("COPY src FROM STDIN") as cp:
            for i, r in enumerate(rng.normal(size=(40, 3))):
                cp.write_row([i, *r])
    indb.deploy(LogisticRegression().fit(X, y), "lr", dsn=dsn, features=["a", "b", "c"], for_tables=["src"])
    indb.deploy(GradientBoostingClassifier(n_estimators=20, random_state=0).fit(X, y), "gb", dsn=dsn,
                features=["a", "b", "c"], engine="plpython", for_tables=["src"])
    indb.deploy(LogisticRegression(C=0.1).fit(X, y), "lr", dsn=dsn, features=["a", "b", "c"], alias="staging")
    indb.grant("scorer", scorer, model="lr", dsn=dsn)
    indb.score("lr", "src", "scored_lr", key="id", dsn=dsn)
    indb.score("gb", "src", "scored_gb", key="id", dsn=dsn)
    print(indb.__file__)
""")

QUERIES = {
    "bound": "SELECT id, indb.predict('{m}', s), indb.predict_proba('{m}', s) FROM src AS s ORDER BY id",
    "generic": "SELECT id, indb.predict('{m}', s), indb.predict_label('{m}', s) FROM (SELECT * FROM src) AS s ORDER BY id",
    "array": "SELECT id, indb.predict_array('{m}', ARRAY[a, b, c]) FROM src ORDER BY id",
    "staging": "SELECT id, indb.predict('{m}@staging', s) FROM src AS s ORDER BY id",
}


@pytest.fixture(scope="module")
def previous_release(tmp_path_factory):
    """A python with the previous release installed (and this environment's dependencies)."""
    root = tmp_path_factory.mktemp("previous")
    clone, dist, venv = root / "clone", root / "dist", root / "venv"
    run = lambda *a, **k: subprocess.run([str(x) for x in a], check=True, capture_output=True, text=True, timeout=600, **k)  # noqa: E731
    run("git", "clone", "--quiet", "--no-hardlinks", REPO, clone)
    run("git", "-C", clone, "checkout", "--quiet", PREVIOUS_RELEASE)
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", dist, clone)
    [wheel] = dist.glob("indb-*.whl")
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    site = run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip()
    (venv / site.split(str(venv) + "/", 1)[1] / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run(sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps", "--ignore-installed", wheel)
    return python


def _answers(conn):
    out = {}
    for model in ("lr", "gb"):
        for name, query in QUERIES.items():
            if name == "staging" and model == "gb":
                continue
            out[model, name] = conn.execute(query.format(m=model)).fetchall()
    return out


def _state(conn):
    return {
        "versions": conn.execute("SELECT model, version, ir_sha256, artifact_sha256, engine, retired_at FROM indb.versions"
                                 " ORDER BY 1, 2").fetchall(),
        "aliases": conn.execute("SELECT model, alias, version FROM indb.aliases ORDER BY 1, 2").fetchall(),
        "history": conn.execute("SELECT count(*) FROM indb.alias_history").fetchone(),
        "bindings": conn.execute("SELECT model, rowtype::text FROM indb.bindings ORDER BY 1, 2").fetchall(),
        "calls": conn.execute("SELECT call_id, called_by, model, version, rows_scored, rows_logged FROM indb.scoring_calls"
                              " ORDER BY 1").fetchall(),
        "rows": conn.execute("SELECT call_id, row_key, prediction FROM indb.prediction_log ORDER BY 1, 2").fetchall(),
        "migrations": conn.execute("SELECT component, version, sha256 FROM indb.schema_migrations ORDER BY 1, 2").fetchall(),
    }


@pytest.mark.slow
def test_a_catalog_of_the_previous_release_upgrades_with_nothing_lost(previous_release, pg_dsn, pg_conn, pg_role):
    scorer = pg_role(pg_dsn)
    made = subprocess.run([str(previous_release), "-c", OLD_SCRIPT, pg_dsn, scorer.name], capture_output=True, text=True,
                          timeout=600, cwd=previous_release.parent)
    assert made.returncode == 0, made.stderr[-3000:]
    assert "/work" not in made.stdout or "venv" in made.stdout  # the old release ran, not this checkout
    assert pg_conn.execute("SELECT max(version) FROM indb.schema_migrations WHERE component = 'core'").fetchone()[0] == 11
    pg_conn.execute(sql.SQL("GRANT SELECT ON src TO {}").format(sql.Identifier(scorer.name)))
    before, state = _answers(pg_conn), _state(pg_conn)
    with connect(scorer.dsn) as conn:
        scorer_before = conn.execute("SELECT indb.predict('lr', s) FROM src AS s ORDER BY id").fetchall()

    upgraded = indb.migrate(pg_dsn)
    indb.migrate(pg_dsn, component="plpython")
    # the old SQL versions' functions are re-rendered from their IR where this indb renders
    # them differently, and each gets the generic path's adapter it never had
    assert {r.split("/")[0] for r in upgraded.refreshed} == {"lr@1", "lr@2"}
    lr_functions = pg_conn.execute("SELECT count(*) FROM indb.version_functions WHERE model = 'lr'").fetchone()[0]
    assert sum("adapter" in r for r in upgraded.refreshed) == lr_functions > 0

    after = _state(pg_conn)
    assert set(state.pop("migrations")) < set(after.pop("migrations"))  # the old history, and the new files after it
    assert after == state
    assert _answers(pg_conn) == before
    with connect(scorer.dsn) as conn:
        assert conn.execute("SELECT indb.predict('lr', s) FROM src AS s ORDER BY id").fetchall() == scorer_before
    # what the old deployers made now belongs to indb_versions and passes the server's check
    report = indb.validate(pg_dsn)
    assert report.ok, report.problems
    owners = {r[0] for r in pg_conn.execute(
        "SELECT pg_get_userbyid(p.proowner) FROM pg_proc AS p JOIN indb.version_functions AS f ON f.fn::oid = p.oid")}
    assert owners == {"indb_versions"}
    # and the registry keeps working on the old models
    indb.promote("lr", 2, dsn=pg_dsn)
    indb.score("gb", "src", "scored_gb_again", key="id", dsn=pg_dsn)
    assert pg_conn.execute("SELECT count(*) FROM scored_gb_again").fetchone()[0] == 40
