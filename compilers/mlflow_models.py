"""Models from MLflow: ``models:/NAME@ALIAS``, ``models:/NAME/VERSION``, ``runs:/RUN/PATH``
and MLflow model directories (a folder holding an ``MLmodel`` file).

A registry or run URI is resolved through MLflow's own client (``pip install indb[mlflow]``)
against its tracking URI (``MLFLOW_TRACKING_URI``; ``file:`` and ``sqlite:`` stores, or a
tracking server) and its artifacts are downloaded to a temporary folder. The folder's
``MLmodel`` names the flavours; the first usable one is read by ``indb.compilers.files``:

* ``sklearn`` saved as skops (MLflow 3's default): the ``.skops`` loader and its trusted types;
* ``onnx``: the ONNX front end;
* ``sklearn`` saved as pickle or cloudpickle: only with ``allow_pickle`` (``--allow-pickle``),
  since unpickling runs code.

:func:`describe` says where a model came from, for the registry: the URI, the run that
logged it and that run's metrics::

    >>> is_mlflow_ref("models:/churn@champion"), is_mlflow_ref("churn.skops")
    (True, False)
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass, field
from typing import Any

from indb.errors import NotFoundError, UnsupportedModelError, UsageError

_MODELS = re.compile(r"models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))/?")
_RUNS = re.compile(r"runs:/(?P<run>[0-9A-Za-z_-]+)/(?P<path>.+)")
MLMODEL = "MLmodel"


@dataclass
class Origin:
    """Where a model came from: what the registry records with its version."""

    uri: str
    run_id: str | None = None
    metrics: dict[str, float] | None = None
    #: the local MLflow model folder (downloaded, or the one given)
    folder: str | None = None
    _tmp: Any = field(default=None, repr=False)  # keeps a downloaded folder alive


def is_mlflow_ref(ref: str) -> bool:
    """A ``models:/`` or ``runs:/`` URI, or a folder holding an ``MLmodel`` file."""
    return ref.startswith(("models:/", "runs:/")) or os.path.isfile(os.path.join(ref, MLMODEL))


def _mlflow(ref: str):
    try:
        import mlflow  # noqa: PLC0415
    except ImportError:
        raise UnsupportedModelError(f"{ref}: reading MLflow models needs the mlflow client (pip install 'indb[mlflow]')") from None
    return mlflow


def _client_error(ref: str, e: Exception) -> Exception:
    mlflow = _mlflow(ref)
    where = mlflow.get_tracking_uri()
    message = " ".join(str(getattr(e, "message", e)).split())[:300]
    if getattr(e, "error_code", "") in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND", "INVALID_PARAMETER_VALUE"):
        return NotFoundError(f"{ref}: not found in the MLflow tracking store {where} ({message}); set MLFLOW_TRACKING_URI to the right store")
    return UsageError(f"{ref}: MLflow could not read it from {where}: {message}")


def describe(ref: str) -> Origin:
    """Resolve ``ref`` (URI or folder) to a local MLflow model folder, with its run and metrics."""
    models = _MODELS.fullmatch(ref)
    runs = _RUNS.fullmatch(ref)
    if ref.startswith(("models:/", "runs:/")) and not (models or runs):
        raise UsageError(f"{ref}: not an MLflow model URI; use models:/NAME@ALIAS, models:/NAME/VERSION or runs:/RUN_ID/PATH")
    if not (models or runs):
        return Origin(os.path.abspath(ref), run_id=_mlmodel(ref, ref).get("run_id"), folder=ref)
    mlflow = _mlflow(ref)
    from mlflow.exceptions import MlflowException  # noqa: PLC0415

    client = mlflow.MlflowClient()
    try:
        if models:
            name = models["name"]
            mv = (client.get_model_version_by_alias(name, models["alias"]) if models["alias"]
                  else client.get_model_version(name, models["version"]))
            run_id = mv.run_id or None
        else:
            run_id = runs["run"]
        metrics = dict(client.get_run(run_id).data.metrics) if run_id else None
        tmp = tempfile.TemporaryDirectory(prefix="indb-mlflow-")
        folder = mlflow.artifacts.download_artifacts(artifact_uri=ref, dst_path=tmp.name)
    except MlflowException as e:
        raise _client_error(ref, e) from None
    if not os.path.isfile(os.path.join(folder, MLMODEL)):
        raise UsageError(f"{ref}: holds no MLmodel file, so it is not an MLflow model (runs:/RUN/PATH names the model's folder)")
    return Origin(ref, run_id=run_id, metrics=metrics, folder=folder, _tmp=tmp)


def _mlmodel(folder: str, ref: str) -> dict:
    import yaml  # noqa: PLC0415 - a dependency of mlflow; MLflow writes MLmodel in YAML

    path = os.path.join(folder, MLMODEL)
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as e:
        raise UsageError(f"{ref}: its MLmodel file is not readable ({type(e).__name__}: {e})") from None
    if not isinstance(data, dict) or not isinstance(data.get("flavors"), dict):
        raise UsageError(f"{ref}: its MLmodel file names no flavors; log the model with mlflow.sklearn or mlflow.onnx")
    return data


def model_file(folder: str, ref: str, *, allow_pickle: bool = False) -> str:
    """The model file of an MLflow model folder to load, by its flavours (see the module doc)."""
    flavors = _mlmodel(folder, ref)["flavors"]
    sk = flavors.get("sklearn") or {}
    candidates: list[tuple[str, str | None]] = []  # (what, file)
    fmt = str(sk.get("serialization_format", "")).lower()
    if sk and fmt == "skops":
        candidates.append(("sklearn (skops)", sk.get("pickled_model")))
    if "onnx" in flavors:
        candidates.append(("onnx", (flavors["onnx"] or {}).get("data")))
    if sk and fmt != "skops":
        candidates.append((f"sklearn ({fmt or 'pickle'})", sk.get("pickled_model")))
    for what, name in candidates:
        if not isinstance(name, str) or os.path.isabs(name) or ".." in name.split("/"):
            raise UsageError(f"{ref}: its MLmodel names no usable file for the {what} flavour")
        path = os.path.join(folder, name)
        if what.startswith("sklearn (") and what != "sklearn (skops)":
            if not allow_pickle:
                from indb.errors import UntrustedFileError  # noqa: PLC0415

                raise UntrustedFileError(
                    f"{ref}: its sklearn flavour is a {fmt or 'pickle'} file, and unpickling runs code: pass --allow-pickle "
                    "(allow_pickle=True) if you trust it as you would a program, or log the model with "
                    "serialization_format='skops' (MLflow 3's default)")
            if not path.endswith((".pkl", ".pickle", ".joblib")):
                raise UsageError(f"{ref}: its pickled model {name!r} has an unknown extension")
        return path
    raise UnsupportedModelError(
        f"{ref}: an MLflow model of flavours {', '.join(sorted(flavors))}; indb reads the sklearn and onnx flavours")
