"""JIT: what indb prints or documents runs with PostgreSQL's JIT off.

PostgreSQL's JIT (on by default) compiles a scoring expression in every process for
seconds to minutes, and LLVM does not answer a cancel meanwhile. Here JIT is made to
fire on everything (jit_above_cost = 0), and the plan's JIT section is read from
EXPLAIN (ANALYZE): the statement `indb compile --table` prints has none, the bare SELECT
in it has one (so the check can fail), and the entry points carry `SET jit = off`.
"""

from __future__ import annotations

import json

import joblib
import pytest

from indb.cli.main import main
from tests.gov import make_source, train_gb

ALWAYS_JIT = "SET jit = on; SET jit_above_cost = 0; SET jit_inline_above_cost = 0; SET jit_optimize_above_cost = 0"


def _jit(conn, statement: str) -> dict | None:
    plan = conn.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + statement).fetchone()[0]
    return (json.loads(plan) if isinstance(plan, str) else plan)[0].get("JIT")


@pytest.fixture(scope="module")
def printed(tmp_path_factory):
    """What `indb compile MODEL --table src --keep id` prints, for a small GradientBoosting."""
    path = tmp_path_factory.mktemp("jit") / "gb.joblib"
    gb = train_gb()
    joblib.dump(gb, path)
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["compile", str(path), "--allow-pickle", "--features", "a,b,c", "--table", "src", "--keep", "id"]) == 0
    return gb, out.getvalue()


def test_compile_table_prints_a_transaction_with_jit_off_that_runs_as_printed(printed, pg_conn):
    gb, script = printed
    X = make_source(pg_conn, n=50)
    if not pg_conn.execute("SELECT pg_jit_available()").fetchone()[0]:
        pytest.skip("this server has no JIT provider: nothing to turn off")
    pg_conn.execute(ALWAYS_JIT)
    lines = script.strip().split("\n")
    assert lines[0] == "BEGIN;" and lines[1].startswith("SET LOCAL jit = off;") and lines[-1] == "COMMIT;"
    select = "\n".join(lines[2:-1]).rstrip(";")
    assert _jit(pg_conn, select) is not None  # bare, under these settings, JIT compiles it
    pg_conn.execute("BEGIN")
    pg_conn.execute(lines[1])
    assert _jit(pg_conn, select) is None
    pg_conn.execute("COMMIT")
    assert pg_conn.execute("SHOW jit").fetchone()[0] == "on"  # SET LOCAL: the session keeps its setting
    cur = pg_conn.execute(script)
    cur.nextset()
    cur.nextset()
    got = sorted(cur.fetchall())
    assert [r[0] for r in got] == list(range(50))
    assert [r[1] for r in got] == [float(v) for v in gb.predict(X)]


def test_compile_elsewhere_prints_the_statement(printed, tmp_path, capsys):
    path = tmp_path / "gb.joblib"
    joblib.dump(printed[0], path)
    assert main(["compile", str(path), "--allow-pickle", "--features", "a,b,c", "--dialect", "duckdb", "--table", "src"]) == 0
    out = capsys.readouterr().out.strip()
    assert out.endswith(";") and "BEGIN" not in out and "jit" not in out


@pytest.mark.parametrize("entry", ["indb.score(text, regclass, text, text[], text, double precision)",
                                   "indb.predict_batch(text, regclass, text, boolean)"])
def test_set_based_entry_points_turn_jit_off(migrated_conn, entry):
    config = migrated_conn.execute("SELECT proconfig FROM pg_proc WHERE oid = %s::regprocedure", (entry,)).fetchone()[0]
    assert "jit=off" in config
