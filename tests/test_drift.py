"""Baselines, the PSI views and `indb drift`."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from psycopg import sql

import indb
from indb import errors
from indb.cli.main import main
from indb.governance.baseline import make_baseline, psi, status, validate_baseline
from tests.gov import FEATURES, connect, deploy, train_lr


def test_a_baseline_summarises_numbers_categories_and_predictions():
    import pandas as pd

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=1000), "k": rng.choice(["a", "b"], size=1000, p=[0.25, 0.75]),
                          "d": rng.integers(0, 3, size=1000).astype(float)})
    frame.loc[:9, "x"] = np.nan
    b = make_baseline(frame, predictions=rng.integers(0, 2, size=1000))
    assert validate_baseline(b, ["x", "k", "d"]) == []
    x = b["features"]["x"]
    assert x["kind"] == "numeric" and len(x["edges"]) == 9 and x["missing"] == 0.01
    assert b["features"]["d"]["edges"] == [1.0, 2.0]  # few values: one bin each
    assert b["features"]["k"]["kind"] == "categorical" and abs(b["features"]["k"]["categories"]["a"] - 0.25) < 0.03
    assert b["prediction"]["kind"] == "categorical" and set(b["prediction"]["categories"]) == {"0", "1"}
    assert psi(x, frame["x"]) == 0.0
    shifted = psi(x, frame["x"] + 1.0)
    assert status(shifted) == "act" and status(0.05) == "ok" and status(0.1) == "watch"
    assert "edges must increase" in validate_baseline({**b, "features": {"x": {**x, "edges": x["edges"][::-1]}}})[0]
    assert validate_baseline(b, ["x"]) == ["features the model does not have: d, k"]


def _log(dsn, conn, name, X):
    conn.execute(sql.SQL("CREATE TABLE {} (id int, a float8, b float8, c float8)").format(sql.Identifier(name)))
    with conn.cursor().copy(sql.SQL("COPY {} FROM STDIN").format(sql.Identifier(name))) as cp:
        for i, row in enumerate(X):
            cp.write_row((i, *map(float, row)))
    return indb.score(name, name, name + "_out", key="id", dsn=dsn)


def test_the_views_compute_psi_per_feature_and_prediction_and_flag_a_shift(migrated_dsn, migrated_conn, pg_role, tmp_path):
    est = train_lr()
    rng = np.random.default_rng(4)
    train = rng.normal(size=(2000, 3))
    baseline = make_baseline(train, est.predict(train), feature_names=FEATURES)
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps(baseline))
    for name in ("calm", "drifting"):
        deploy(migrated_dsn, est, name, baseline=str(path))
    calm = rng.normal(size=(600, 3))
    drifting = rng.normal(size=(600, 3))
    drifting[:, 0] += 1.5
    _log(migrated_dsn, migrated_conn, "calm", calm)
    _log(migrated_dsn, migrated_conn, "drifting", drifting)
    auditor = pg_role(migrated_dsn, "indb_auditor")
    for name, X in (("calm", calm), ("drifting", drifting)):
        rows = indb.drift(name, dsn=auditor.dsn)
        got = {r.name: (r.psi, r.status, r.rows) for r in rows}
        for i, f in enumerate(FEATURES):
            assert got[f][0] == pytest.approx(psi(baseline["features"][f], X[:, i]), abs=1e-9)
            assert got[f][2] == 600
        assert got["prediction"][0] == pytest.approx(psi(baseline["prediction"], est.predict(X).tolist()), abs=1e-9)
        if name == "calm":
            assert {s for _, s, _ in got.values()} == {"ok"}
        else:
            assert got["a"][1] == "act" and got["b"][1] == "ok" and got["prediction"][1] in ("watch", "act")
    with connect(auditor.dsn) as conn:
        assert conn.execute("SELECT count(*) FROM indb.drift_features WHERE model = 'drifting' AND status = 'act'").fetchone()[0] == 1
        assert conn.execute("SELECT status FROM indb.drift_prediction WHERE model = 'calm'").fetchone()[0] == "ok"
    env = dict(os.environ, INDB_DSN=auditor.dsn)
    png = tmp_path / "drift.png"
    out = subprocess.run([sys.executable, "-m", "indb.cli", "drift", "drifting", "--png", str(png), "--exit-code"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1, out.stderr  # --exit-code: a feature is at "act"
    assert main(["--dsn", auditor.dsn, "drift", "calm", "--exit-code"]) == 0
    assert main(["--dsn", auditor.dsn, "drift", "drifting"]) == 0  # without --exit-code, "act" is only reported
    assert "worst: a on" in out.stdout and " act" in out.stdout and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    scorer = pg_role(migrated_dsn, "indb_scorer")
    with pytest.raises(errors.PermissionError, match="needs indb_auditor"):
        indb.drift("calm", dsn=scorer.dsn)


def test_drift_says_what_is_missing(migrated_dsn, migrated_conn, monkeypatch):
    deploy(migrated_dsn, train_lr(), "plain")
    with pytest.raises(errors.NotFoundError, match="no version of 'plain' has a baseline"):
        indb.drift("plain", dsn=migrated_dsn)
    with pytest.raises(errors.NotFoundError, match="unknown model 'nope'"):
        indb.drift("nope", dsn=migrated_dsn)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(errors.UsageError, match=r"pip install 'indb\[drift\]'"):
        indb.drift_chart([object()], "x.png")


def test_deploy_refuses_a_baseline_that_does_not_fit_the_model(migrated_dsn, migrated_conn, tmp_path):
    est = train_lr()
    X = np.random.default_rng(0).normal(size=(100, 3))
    bad = make_baseline(X, est.predict(X), feature_names=["a", "b", "zz"])
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(errors.UsageError, match="--baseline for m: features the model does not have: zz"):
        deploy(migrated_dsn, est, "m", baseline=str(path))
    assert migrated_conn.execute("SELECT count(*) FROM indb.versions").fetchone()[0] == 0
