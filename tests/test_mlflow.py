"""Models from MLflow: models:/ and runs:/ URIs and model folders, against a real local
MLflow file store (one per module), deployed into a real PostgreSQL."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

import indb
from indb import errors
from indb.cli.main import main
from tests.gov import connect, make_source

mlflow = pytest.importorskip("mlflow") if os.environ.get("CI") != "true" else __import__("mlflow")
#: given, so that MLflow does not infer them (it imports the model in a subprocess: slow)
REQS = ["scikit-learn"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A file store with: lr_demo v1 (skops, alias champion, run metric auc), a run with an
    ONNX-flavoured model, and a run with a cloudpickle-flavoured one."""
    import mlflow.onnx
    import mlflow.sklearn
    from sklearn.linear_model import LogisticRegression
    from skl2onnx import to_onnx

    root = tmp_path_factory.mktemp("mlflow")
    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_ALLOW_FILE_STORE")}
    os.environ["MLFLOW_TRACKING_URI"] = (root / "store").as_uri()
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"  # MLflow 3 keeps the file store behind this switch
    mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
    rng = np.random.default_rng(5)
    X = rng.normal(size=(200, 3))
    lr = LogisticRegression().fit(X, (X[:, 0] - X[:, 2] > 0).astype(int))
    other = LogisticRegression(C=0.1).fit(X, (X[:, 1] > 0).astype(int))
    with mlflow.start_run() as run:
        mlflow.log_metric("auc", 0.875)
        mlflow.sklearn.log_model(lr, name="model", registered_model_name="lr_demo", pip_requirements=REQS)
    mlflow.MlflowClient().set_registered_model_alias("lr_demo", "champion", 1)
    with mlflow.start_run() as onnx_run:
        mlflow.onnx.log_model(to_onnx(other, X[:1].astype(np.float64), target_opset=17), name="model", pip_requirements=REQS)
    with mlflow.start_run() as pickle_run:
        mlflow.sklearn.log_model(other, name="model", serialization_format="cloudpickle", pip_requirements=REQS)
    folder = root / "saved"
    mlflow.sklearn.save_model(lr, str(folder), pip_requirements=REQS)
    yield {"run": run.info.run_id, "onnx_run": onnx_run.info.run_id, "pickle_run": pickle_run.info.run_id,
           "lr": lr, "other": other, "folder": str(folder)}
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def _proba(conn, name):
    return np.array([r[0] for r in conn.execute(
        "SELECT indb.predict_proba(%s, s) FROM src AS s ORDER BY id", [name])])


def test_registry_uris_record_source_run_and_metrics(store, migrated_dsn, capsys):
    first = indb.deploy("models:/lr_demo@champion", "churn", dsn=migrated_dsn, features=["a", "b", "c"])
    assert first.created and first.version == 1
    again = indb.deploy("models:/lr_demo/1", "churn", dsn=migrated_dsn, features=["a", "b", "c"])
    assert not again.created and again.version == 1  # the same artifact: nothing new registered
    with connect(migrated_dsn) as conn:
        X = make_source(conn, n=50)
        np.testing.assert_allclose(_proba(conn, "churn"), store["lr"].predict_proba(X), rtol=1e-9)
        row = conn.execute("SELECT source_uri, run_id, metrics FROM indb.versions WHERE model = 'churn'").fetchone()
    assert row == ("models:/lr_demo@champion", store["run"], {"auc": 0.875})
    info = indb.models("churn", dsn=migrated_dsn)[0]
    assert (info.source_uri, info.run_id, info.metrics) == row
    assert main(["--dsn", migrated_dsn, "models", "churn"]) == 0
    listed = capsys.readouterr().out
    assert "models:/lr_demo@champion" in listed and store["run"] in listed and "auc=0.875" in listed
    assert main(["--dsn", migrated_dsn, "models", "show", "churn", "--format", "json"]) == 0
    card = json.loads(capsys.readouterr().out)
    assert (card["source_uri"], card["run_id"], card["metrics"]) == row


def test_run_uri_onnx_flavour_and_pickle_opt_in(store, migrated_dsn):
    r = indb.deploy(f"runs:/{store['onnx_run']}/model", "onnx_m", dsn=migrated_dsn, features=["a", "b", "c"])
    with pytest.raises(errors.UntrustedFileError, match="--allow-pickle"):
        indb.deploy(f"runs:/{store['pickle_run']}/model", "pickled", dsn=migrated_dsn, features=["a", "b", "c"])
    p = indb.deploy(f"runs:/{store['pickle_run']}/model", "pickled", dsn=migrated_dsn, features=["a", "b", "c"], allow_pickle=True)
    with connect(migrated_dsn) as conn:
        X = make_source(conn, n=50)
        for name in ("onnx_m", "pickled"):
            np.testing.assert_allclose(_proba(conn, name), store["other"].predict_proba(X), rtol=1e-9)
        runs = dict(conn.execute("SELECT model, run_id FROM indb.versions").fetchall())
    assert runs == {"onnx_m": store["onnx_run"], "pickled": store["pickle_run"]} and r.created and p.created


def test_a_model_folder_and_bad_uris_on_the_command_line(store, migrated_dsn, capsys):
    assert main(["--dsn", migrated_dsn, "deploy", store["folder"], "--name", "folder_m", "--features", "a,b,c"]) == 0
    assert "folder_m@1 deployed" in capsys.readouterr().out
    with connect(migrated_dsn) as conn:
        assert conn.execute("SELECT source_uri FROM indb.versions WHERE model = 'folder_m'").fetchone()[0] == store["folder"]
    for ref, expected in (("models:/no_such_model@champion", "not found in the MLflow tracking store"),
                          ("models:/lr_demo@nope", "not found in the MLflow tracking store"),
                          ("models:/", "not an MLflow model URI"),
                          (os.path.dirname(store["folder"]), "is a folder")):
        assert main(["--dsn", migrated_dsn, "deploy", ref, "--name", "x"]) in (1, 2), ref
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("indb: error:") and expected in err, (ref, err)
