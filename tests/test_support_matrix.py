"""scripts/support_matrix.py: JUnit results and zoo cases become the support matrix."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def sm():
    spec = importlib.util.spec_from_file_location("support_matrix", ROOT / "scripts" / "support_matrix.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest">
  <testcase classname="tests.test_parity" name="test_evaluator_matches_model[case_a]"/>
  <testcase classname="tests.test_parity" name="test_sql_matches_model[case_a-postgres]"><failure message="x"/></testcase>
  <testcase classname="tests.test_parity" name="test_sql_matches_model[case_a-duckdb]"/>
  <testcase classname="tests.test_parity" name="test_sql_matches_model[case-b-sqlite]"><skipped message="no"/></testcase>
  <testcase classname="tests.test_parity" name="test_sql_matches_model[case_c-sqlite]"><error message="boom"/></testcase>
  <testcase classname="tests.test_deploy_parity" name="test_deployed_model_matches_its_own_answer[case_a-plpython]"/>
  <testcase classname="tests.test_other" name="test_something_else"/>
</testsuite></testsuites>
"""


def test_read_results_maps_test_ids_to_columns(sm, tmp_path):
    path = tmp_path / "r.xml"
    path.write_text(JUNIT)
    got = sm.read_results([path])
    assert got == {
        ("ir", "case_a"): "passed",
        ("postgres", "case_a"): "failed",
        ("duckdb", "case_a"): "passed",
        ("sqlite", "case-b"): "skipped",
        ("sqlite", "case_c"): "failed",
        ("plpython", "case_a"): "passed",
    }


def test_build_counts_cases_per_estimator_output_and_column(sm):
    results = {("ir", "a"): "passed", ("ir", "b"): "passed", ("postgres", "a"): "failed", ("postgres", "b"): "passed", ("duckdb", "b"): "passed"}
    uses = {
        "a": ([("Pipeline", True), ("GaussianNB", False), ("StandardScaler", False)], ("predict",)),
        "b": ([("GaussianNB", True)], ("predict", "proba")),
    }
    text = sm.build(results, uses, ["GaussianNB", "KMeans", "Pipeline", "StandardScaler"])
    rows = {tuple(c.strip() for c in line.strip("|").split("|")[:2]): line for line in text.splitlines() if line.startswith("| ") and "---" not in line}
    assert "| ✓ 1 | ✓ 1 | ✓ 1 | – | – | – |" in rows[("GaussianNB", "predict")]
    assert "| ✓ 1 | ✗ 1/1 | – | – | – | – |" in rows[("GaussianNB", "as a step or member")]
    assert "| ✓ 1 | ✗ 1/1 |" in rows[("Pipeline", "predict")]
    assert "- PostgreSQL SQL: `a`" in text
    assert "## Registered but not exercised by any zoo case\n\nKMeans\n" in text  # registered, exercised by no case


def test_exercised_walks_composites(sm):
    from sklearn.ensemble import VotingRegressor
    from sklearn.linear_model import LinearRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    est = VotingRegressor([("a", make_pipeline(StandardScaler(), Ridge())), ("b", LinearRegression())]).fit([[0.0], [1.0], [2.0]], [0.0, 1.0, 2.0])
    assert list(sm.exercised(est)) == [("VotingRegressor", True), ("Pipeline", False), ("StandardScaler", False), ("Ridge", False), ("LinearRegression", False)]


def test_limits_section_states_each_dialects_flags(sm):
    from indb.sqlgen.dialects import REFUSED, TARGETS

    lines = sm.limits_section()
    text = "\n".join(lines)
    header = next(line for line in lines if line.startswith("| limit |"))
    assert [c.strip() for c in header.strip("|").split("|")[1:]] == list(TARGETS)
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.strip("|").split("|")[1:]] for line in lines if line.startswith("| ") and "---" not in line}
    col = list(TARGETS).index
    assert rows["CASE nesting (trees written as WHEN chains)"][col("sqlite")] == "18"
    assert rows["CASE nesting (trees written as WHEN chains)"][col("tsql")] == "10"
    assert rows["expression depth (long sums balanced beyond half)"][col("duckdb")] == "1,000"
    assert rows["columns in one SELECT"][col("postgres")] == "1,664"
    assert rows["NaN"][col("mysql")] == "none (missing is NULL)"
    assert rows["on_missing='error'"][col("duckdb")] == "error()"
    assert rows["on_missing='error'"][col("mysql")] == "refused (no way to raise)"
    assert rows["infinity"][col("tsql")].startswith("none")
    for name, why in REFUSED.items():
        assert f"- {name}: {why}" in text


def test_build_ends_with_the_limits_section(sm):
    text = sm.build({}, {}, [])
    assert "## Per-dialect limits designed around" in text
    assert text.index("## Registered but not exercised") < text.index("## Per-dialect limits")
