"""The PL/Python engine: integrity of the stored IR, its cache, its generated migration."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import psycopg
import pytest
from sklearn.ensemble import GradientBoostingClassifier

from indb.registry import deploy

ROOT = Path(__file__).resolve().parent.parent
ROW = "(SELECT 0.5::float8 AS x0, -1.0::float8 AS x1, 2.0::float8 AS x2) t"


def _model():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(300, 3))
    return GradientBoostingClassifier(n_estimators=20, max_depth=3, random_state=0).fit(X, (X[:, 0] * X[:, 1] > 0).astype(int))


def test_the_engine_migration_is_generated_from_the_current_sources():
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen-engine-migration"), "--check"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


def test_a_flipped_byte_in_a_stored_ir_is_refused_before_scoring_even_when_cached(migrated_dsn, migrated_conn):
    est = _model()
    deploy(est, "gb", dsn=migrated_dsn, engine="plpython")
    query = f"SELECT indb.predict_proba('gb', t) FROM {ROW}"
    with psycopg.connect(migrated_dsn, autocommit=True) as cached:
        want = est.predict_proba(np.array([[0.5, -1.0, 2.0]]))[0]
        np.testing.assert_allclose(cached.execute(query).fetchone()[0], want, rtol=1e-9)  # loads and caches the IR
        # a superuser changes one byte of the IR (a threshold's digit), not its checksum
        migrated_conn.execute(
            "UPDATE indb.versions SET ir = overlay(ir PLACING"
            " CASE WHEN substr(ir, strpos(ir, '\"threshold\":[') + 14, 1) = '1' THEN '2' ELSE '1' END"
            " FROM strpos(ir, '\"threshold\":[') + 14 FOR 1) WHERE model = 'gb'")
        with pytest.raises(psycopg.Error, match="integrity check failed for gb@1"):
            cached.execute(query).fetchone()
        # the batch path refuses too
        with pytest.raises(psycopg.Error, match="integrity check failed for gb@1"):
            cached.execute("SELECT indb.engine_chunk('gb', 1, 'proba', %s, 1, NULL)",
                           [np.array([0.5, -1.0, 2.0], dtype=">f8").tobytes()]).fetchone()
    with psycopg.connect(migrated_dsn, autocommit=True) as fresh, pytest.raises(psycopg.Error, match="integrity check failed"):
        fresh.execute(query).fetchone()


def test_the_engine_uses_the_compiled_tree_kernel_when_numba_is_installed(migrated_conn):
    has_numba = subprocess.run(["/usr/bin/python3", "-c", "import numba"], capture_output=True).returncode == 0
    migrated_conn.execute("""
        CREATE FUNCTION pg_temp.kernel_available() RETURNS boolean LANGUAGE plpython3u AS $$
        plpy.execute("SELECT indb.engine_boot()")
        import sys
        return sys.modules["indb.kernels"].available()
        $$""")
    assert migrated_conn.execute("SELECT pg_temp.kernel_available()").fetchone()[0] is has_numba
