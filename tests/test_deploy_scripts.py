"""`indb deploy --sql` scripts in release pipelines: generated on one database ("dev"),
applied to another ("prod": other OIDs, other models bound to the same table, columns in
another order) through the real tools — sqitch (deploy, verify, revert) and Alembic
(op.execute inside its transaction, as a deployer) — and reverted. After every step each
scoring path (bound overload, generic path, logged entry point) answers the version it
should, the other model bound on prod still answers, and `indb validate` is clean.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from sklearn.linear_model import LinearRegression

import indb
from indb import errors
from indb.catalog.migrator import CORE, shipped
from indb.registry.scripts import check_portable, deploy_scripts
from tests.db import _database, missing

FEATURES = ["a", "b", "c"]


def _data(seed: int = 0, n: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.normal(size=(n, 3)), columns=FEATURES)


def _model(shift: float):
    X = _data(1, 200)
    return LinearRegression().fit(X, X.a * 2.0 - X.b + 0.5 * X.c + shift)


V1, V2, TIER, RISK = _model(0.0), _model(100.0), _model(-50.0), _model(500.0)
ROWS = _data(2)


def _customers(conn, columns_first: bool) -> None:
    """The scored table; prod has its columns in another order, an extra one, and other OIDs."""
    if columns_first:
        for i in range(3):  # other OIDs on prod: tables created before customers
            conn.execute(sql.SQL("CREATE TABLE {} (x int)").format(sql.Identifier(f"filler_{i}")))
        conn.execute("CREATE TABLE customers (note text, c float8, b float8, a float8, id int PRIMARY KEY)")
    else:
        conn.execute("CREATE TABLE customers (id int PRIMARY KEY, a float8, b float8, c float8)")
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO customers (id, a, b, c) VALUES (%s, %s, %s, %s)",
                        [(i, *map(float, r)) for i, r in enumerate(ROWS.itertuples(index=False))])


def _paths(dsn: str, name: str = "churn") -> dict[str, list[float]]:
    """What each scoring path answers for every customer."""
    with psycopg.connect(dsn, autocommit=True) as c:
        one = lambda q: [r[0] for r in c.execute(q, [name]).fetchall()]  # noqa: E731
        return {
            "bound": one("SELECT indb.predict(%s, cu) FROM customers AS cu ORDER BY id"),
            "generic": one("SELECT indb.predict(%s, t) FROM (SELECT id, a, b, c FROM customers) AS t ORDER BY id"),
            "logged": one("SELECT indb.predict_logged(%s, cu) FROM customers AS cu ORDER BY id"),
        }


def _answers(dsn: str, model, name: str = "churn") -> None:
    want = model.predict(ROWS)
    for path, got in _paths(dsn, name).items():
        np.testing.assert_allclose(got, want, rtol=1e-9, err_msg=f"{name}: the {path} path")
    assert indb.validate(dsn).ok, indb.validate(dsn).problems


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    import skops.io

    folder = tmp_path_factory.mktemp("models")
    paths = {}
    for label, model in (("v1", V1), ("v2", V2), ("tier", TIER), ("risk", RISK)):
        paths[label] = folder / f"{label}.skops"
        skops.io.dump(model, paths[label])
    return paths


@pytest.fixture(scope="module")
def scripts(pg_server, pg_migrated_template, files):
    """dev: churn@1 and tier bound to customers; the scripts of churn@2 generated there."""
    with _database(pg_server, "scripts_dev", template=pg_migrated_template) as dev:
        with psycopg.connect(dev, autocommit=True) as c:
            _customers(c, columns_first=False)
        indb.deploy(files["v1"], "churn", dsn=dev, for_tables=["customers"])
        indb.deploy(files["tier"], "tier", dsn=dev, for_tables=["customers"])
        before = _paths(dev)
        made = deploy_scripts(files["v2"], "churn", dsn=dev, for_tables=["customers"])
        assert _paths(dev) == before, "generating the scripts changes nothing"
        with psycopg.connect(dev, autocommit=True) as c:
            dev_type = c.execute("SELECT 'customers'::regtype::oid").fetchone()[0]
        yield made, dev_type


@pytest.fixture
def prod(pg_server, pg_migrated_template, files, scripts):
    """prod: churn@1 (the same artifact), and risk — not tier — bound to its customers."""
    with _database(pg_server, "scripts_prod", template=pg_migrated_template) as dsn:
        with psycopg.connect(dsn, autocommit=True) as c:
            _customers(c, columns_first=True)
            assert c.execute("SELECT 'customers'::regtype::oid").fetchone()[0] != scripts[1], "prod's OIDs differ"
        indb.deploy(files["v1"], "churn", dsn=dsn, for_tables=["customers"])
        indb.deploy(files["risk"], "risk", dsn=dsn, for_tables=["customers"])
        _answers(dsn, V1)
        yield dsn


def test_the_scripts_hold_nothing_a_tool_would_bind_or_commit(scripts):
    made, dev_type = scripts
    for text in (made.deploy, made.revert, made.verify):
        assert check_portable(text, "test") == text
        assert not re.search(r"(?i)\b(COMMIT|ROLLBACK|START TRANSACTION)\s*;|^BEGIN\s*;|EXECUTE E'(COMMIT|ROLLBACK)", text, re.M)
        # a word of its own: the digits may well occur inside the model's hex bytes
        assert not re.search(rf"\b{dev_type}\b", text), "no OID of the database it was generated on"
        assert "tier" not in text, "no other model bound on the database it was generated on"
    assert (made.version, made.alias) == (2, "champion")


def test_sqitch_deploy_verify_revert(prod, scripts, tmp_path):
    made, _ = scripts
    sqitch = shutil.which("sqitch")
    if sqitch is None:
        missing("sqitch is not installed (./scripts/bootstrap installs Debian's sqitch package)")
    params = conninfo_to_dict(prod)
    libpq = {"host": "PGHOST", "port": "PGPORT", "user": "PGUSER", "password": "PGPASSWORD", "passfile": "PGPASSFILE"}
    env = dict(os.environ, HOME=str(tmp_path), SQITCH_USER_NAME="release", SQITCH_USER_EMAIL="release@example.com",
               **{var: str(params[key]) for key, var in libpq.items() if params.get(key)})
    target = "db:pg:" + params["dbname"]
    project = tmp_path / "pipeline"

    def run(*args, ok=True):
        done = subprocess.run([sqitch, *args], cwd=project, env=env, capture_output=True, text=True, timeout=120)
        assert (done.returncode == 0) == ok, done.stdout + done.stderr
        return done

    project.mkdir()
    run("init", "pipeline", "--engine", "pg")
    run("add", "churn_v2", "-n", "churn version 2")
    for kind, text in (("deploy", made.deploy), ("revert", made.revert), ("verify", made.verify)):
        (project / kind / "churn_v2.sql").write_text(text)

    run("deploy", "--verify", target)
    run("verify", target)
    _answers(prod, V2)
    _answers(prod, RISK, "risk")
    history = psycopg.connect(prod, autocommit=True).execute("SELECT count(*) FROM indb.alias_history").fetchone()[0]
    with psycopg.connect(prod, autocommit=True) as c:  # applied again by hand: nothing changes
        c.execute(made.deploy)
        assert c.execute("SELECT count(*) FROM indb.alias_history").fetchone()[0] == history
    run("revert", "-y", target)
    _answers(prod, V1)
    _answers(prod, RISK, "risk")
    with psycopg.connect(prod, autocommit=True) as c, pytest.raises(psycopg.Error, match="does not point to 2"):
        c.execute(made.verify)
    run("deploy", target)  # after a revert, the version is there: only the alias moves again
    _answers(prod, V2)


ENV_PY = '''
from alembic import context
from sqlalchemy import create_engine

with create_engine(context.config.attributes["url"]).connect() as connection:
    context.configure(connection=connection, target_metadata=None)
    with context.begin_transaction():
        context.run_migrations()
'''

MIGRATION = '''
from pathlib import Path
from alembic import op

revision = {revision!r}
down_revision = {down!r}
branch_labels = None
depends_on = None


def upgrade():
    {upgrade}


def downgrade():
    {downgrade}
'''


def test_alembic_upgrade_and_downgrade_as_a_deployer(prod, scripts, tmp_path, pg_role):
    from alembic import command
    from alembic.config import Config

    made, _ = scripts
    deployer = pg_role(prod, "indb_deployer")
    with psycopg.connect(prod, autocommit=True) as c:  # Alembic keeps its alembic_version table in public
        c.execute(sql.SQL("GRANT CREATE ON SCHEMA public TO {}").format(sql.Identifier(deployer.name)))
    folder = tmp_path / "alembic"
    (folder / "versions").mkdir(parents=True)
    (folder / "env.py").write_text(ENV_PY)
    (folder / "deploy.sql").write_text(made.deploy)
    (folder / "revert.sql").write_text(made.revert)
    read = "op.execute((Path(__file__).parent.parent / {!r}).read_text())"
    (folder / "versions" / "r1_churn_v2.py").write_text(MIGRATION.format(
        revision="r1", down=None, upgrade=read.format("deploy.sql"), downgrade=read.format("revert.sql")))
    (folder / "versions" / "r2_fails.py").write_text(MIGRATION.format(
        revision="r2", down="r1", upgrade='op.execute("SELECT 1 / 0")', downgrade="pass"))
    params = conninfo_to_dict(deployer.dsn)
    cfg = Config()
    cfg.set_main_option("script_location", str(folder))
    from sqlalchemy.engine import URL

    cfg.attributes["url"] = URL.create("postgresql+psycopg", username=params["user"], password=params.get("password"),
                                       database=params["dbname"], query={"host": params["host"], "port": str(params["port"])})

    # one transaction for the whole upgrade: r2 fails, so r1's deploy is undone with it
    with pytest.raises(Exception, match="division by zero"):
        command.upgrade(cfg, "head")
    _answers(prod, V1)
    command.upgrade(cfg, "r1")
    _answers(prod, V2)
    _answers(prod, RISK, "risk")
    command.downgrade(cfg, "base")
    _answers(prod, V1)
    _answers(prod, RISK, "risk")


def test_preconditions_fail_first_in_one_line(pg_server, pg_migrated_template, files, scripts):
    made, _ = scripts
    with _database(pg_server, "scripts_bad", template=pg_migrated_template) as dsn:
        with psycopg.connect(dsn, autocommit=True) as c:
            with pytest.raises(psycopg.Error, match="table public.customers .--for-table. does not exist"):
                c.execute(made.deploy)
            c.execute("CREATE TABLE customers (id int, a float8, b text, c float8)")
            with pytest.raises(psycopg.Error, match=r"column of table public.customers .* is text; column b is text"):
                c.execute(made.deploy)
            c.execute("ALTER TABLE customers ALTER COLUMN b TYPE float8 USING NULL")
            with pytest.raises(psycopg.Error, match="this script creates churn@2, but the next version of churn in this database is 1"):
                c.execute(made.deploy)
            c.execute("INSERT INTO indb.schema_migrations VALUES ('core', 99, 'future', repeat('0', 64), now(), 'x', 0, true)")
            latest = shipped(CORE)[0]
            with pytest.raises(psycopg.Error, match=f"needs the indb catalog at core migration {latest:04d}; this database is at 0099"):
                c.execute(made.deploy)
            assert c.execute("SELECT count(*) FROM indb.versions").fetchone()[0] == 0


def test_cli_writes_the_three_scripts(scripts, pg_server, pg_migrated_template, files, tmp_path):
    from tests.helpers import indb as run_indb

    with _database(pg_server, "scripts_cli", template=pg_migrated_template) as dsn:
        revert, verify = tmp_path / "revert.sql", tmp_path / "verify.sql"
        done = run_indb("--dsn", dsn, "deploy", str(files["v1"]), "--name", "churn", "--sql",
                        "--revert-sql", str(revert), "--verify-sql", str(verify))
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("-- indb deploy --sql: churn@1 deployed")
        assert "revert of churn@1" in revert.read_text() and "verify of churn@1" in verify.read_text()
        lonely = run_indb("--dsn", dsn, "deploy", str(files["v1"]), "--name", "churn", "--revert-sql", str(revert))
        assert lonely.returncode == 2 and "--revert-sql and --verify-sql go with --sql" in lonely.stderr
        indb.deploy(files["v1"], "churn", dsn=dsn)
        with pytest.raises(errors.UsageError, match="already this artifact"):
            deploy_scripts(files["v1"], "churn", dsn=dsn)

