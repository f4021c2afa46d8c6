"""Model files: one loader per format, chosen by the file's extension (``FORMATS``).

``indb compile MODEL`` and ``indb deploy MODEL`` read the file here, on the client; the
database never sees it. Formats that cannot run code when read load as they are:

* ``.onnx`` (compiled by ``indb.compilers.onnx``),
* ``.skops`` (scikit-learn through skops, ``pip install indb[skops]``), only when every
  type it names is trusted: skops' own defaults plus the scikit-learn, numpy and scipy
  internals of fitted models (``skops_trusted``); a file naming anything else is refused
  and the types are listed,
* XGBoost's own ``.json`` / ``.ubj`` (``Booster.save_model``), loaded as an
  ``XGBClassifier`` or ``XGBRegressor`` by the booster's objective,
* LightGBM's own ``.txt`` (``Booster.save_model``).

Pickle-based files (``.joblib``, ``.pkl``, ``.pickle``) run code while they load: a
crafted file runs whatever it wants on the machine that opens it. They load only with an
explicit opt-in (``allow_pickle=True``, ``--allow-pickle``)::

    >>> load_model_file("model.joblib")                       # doctest: +SKIP
    Traceback (most recent call last):
    indb.errors.UntrustedFileError: model.joblib: refused to unpickle ...
"""

from __future__ import annotations

import hashlib
import importlib
import io
import math
import os
import re
import stat
import zipfile
from dataclasses import dataclass, fields
from typing import Any, Callable

from indb import ir
from indb.errors import CompileError, UnsupportedModelError, UntrustedFileError, UsageError

SAFE_FORMATS = ".skops, .onnx, XGBoost .json/.ubj, LightGBM .txt"


@dataclass(frozen=True)
class Format:
    """A model file format: its extensions and the loader of its bytes."""

    suffixes: tuple[str, ...]
    name: str
    #: ``load(data, path) -> model`` (an estimator, or an ``ir.Model``)
    load: Callable[[bytes, str], Any]
    #: reading it runs code from the file (pickle): needs ``allow_pickle``
    runs_code: bool = False


def _need(package: str, extra: str, path: str) -> Any:
    try:
        return importlib.import_module(package)
    except ImportError:
        raise UnsupportedModelError(f"{path}: reading this file needs the {package} package (pip install {extra})") from None


def _unreadable(path: str, what: str, e: BaseException) -> UsageError:
    # C++ libraries put a timestamp, their source line and a stack trace in the message
    detail = str(e).split("Stack trace:")[0]
    detail = re.sub(r"^\s*\[[\d:]+\]\s*\S+:\d+:\s*", "", detail)
    detail = " ".join(detail.split())[:200]
    return UsageError(f"{path}: not a readable {what} file, truncated or corrupt? ({type(e).__name__}: {detail}); save the model again")


# ------------------------------------------------------------------------- loaders


def _load_onnx(data: bytes, path: str) -> Any:
    try:
        from indb.compilers import onnx as onnx_front  # noqa: PLC0415
    except ImportError:
        raise UnsupportedModelError(f"{path}: compiling ONNX files needs the onnx package (pip install onnx)") from None
    return onnx_front.load(data, path)


#: types skops does not trust by default that fitted scikit-learn models hold
SKOPS_INTERNALS = frozenset({
    "numpy.dtype",
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
})
_DOTTED = re.compile(r"(sklearn|numpy|scipy)(\.[A-Za-z_][A-Za-z0-9_]*)+")


def _resolve(name: str) -> Any:
    """The class a skops type name refers to, importing only scikit-learn/numpy/scipy modules."""
    if not _DOTTED.fullmatch(name):
        return None
    module, _, attr = name.rpartition(".")
    try:
        return getattr(importlib.import_module(module), attr, None)
    except ImportError:
        return None


def skops_trusted(name: str) -> bool:
    """Whether a type a ``.skops`` file names may be built while loading it.

    Classes only (a function could be stored and called later): the named internals of
    fitted models, scikit-learn estimators, numpy scalar and dtype classes, scipy sparse
    matrices. Anything else, from any other package, is refused.

    >>> skops_trusted("sklearn.tree._tree.Tree"), skops_trusted("builtins.eval")
    (True, False)
    >>> skops_trusted("numpy.float64"), skops_trusted("numpy.load")
    (True, False)
    """
    if name in SKOPS_INTERNALS:
        return True
    obj = _resolve(name)
    if not isinstance(obj, type):
        return False
    import numpy as np  # noqa: PLC0415

    top = name.split(".")[0]
    if top == "sklearn":
        from sklearn.base import BaseEstimator  # noqa: PLC0415

        return issubclass(obj, BaseEstimator)
    if top == "numpy":
        return issubclass(obj, (np.generic, np.dtype))
    from scipy import sparse  # noqa: PLC0415

    return issubclass(obj, (sparse.spmatrix, sparse.sparray))


def _load_skops(data: bytes, path: str) -> Any:
    sio = _need("skops.io", "indb[skops]", path)
    try:
        names = sio.get_untrusted_types(data=data)
    except (zipfile.BadZipFile, ValueError, KeyError, TypeError, OSError, EOFError) as e:
        raise _unreadable(path, "skops", e) from None
    refused = sorted(n for n in names if not skops_trusted(n))
    if refused:
        raise UntrustedFileError(
            f"{path}: refused to load: it names types outside scikit-learn, numpy and scipy's model classes "
            f"({', '.join(refused)}); loading them could run code. Save the model with plain scikit-learn "
            "estimators, or export it to ONNX"
        )
    try:
        return sio.loads(data, trusted=list(names))
    except (zipfile.BadZipFile, ValueError, KeyError, TypeError, AttributeError, OSError, EOFError) as e:
        raise _unreadable(path, "skops", e) from None


def _load_xgboost(data: bytes, path: str) -> Any:
    xgboost = _need("xgboost", "xgboost", path)
    import json  # noqa: PLC0415

    try:
        booster = xgboost.Booster()
        booster.load_model(bytearray(data))
        objective = json.loads(booster.save_config())["learner"]["objective"]["name"]
    except (xgboost.core.XGBoostError, ValueError, KeyError) as e:
        raise _unreadable(path, "XGBoost model", e) from None
    # the scikit-learn wrappers record what they were; a plain booster says it by its objective
    kind = json.loads(booster.attr("scikit_learn") or "{}").get("_estimator_type")
    if kind is None:
        kind = "classifier" if objective.startswith(("binary:", "multi:")) else "regressor"
    model = xgboost.XGBClassifier() if kind == "classifier" else xgboost.XGBRegressor()
    model.load_model(bytearray(data))
    return model


#: LightGBM's parser aborts or crashes the process on a malformed file (a truncated
#: one included), so a child process reads the file first
_LIGHTGBM_PROBE = "import sys, lightgbm; lightgbm.Booster(model_str=sys.stdin.buffer.read().decode('utf-8'))"


#: digests of the files a probe read cleanly in this process (a child costs ~2 s of imports)
_PROBED: set[str] = set()


def _probe_lightgbm(data: bytes, path: str) -> None:
    import hashlib  # noqa: PLC0415
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    if not data.startswith(b"tree") or b"end of trees" not in data:
        raise UsageError(f"{path}: not a readable LightGBM model file, truncated or corrupt? (no 'tree' header or "
                         "'end of trees' line); save the model again with Booster.save_model")
    digest = hashlib.sha256(data).hexdigest()
    if digest in _PROBED:
        return  # these very bytes were read without harm already
    try:
        run = subprocess.run([sys.executable, "-c", _LIGHTGBM_PROBE], input=data, capture_output=True, timeout=300)
    except subprocess.TimeoutExpired:
        raise UsageError(f"{path}: LightGBM did not finish reading the file in 300 s; save the model again") from None
    if run.returncode != 0:
        said = [ln for ln in run.stderr.decode("utf-8", "replace").splitlines() if "[Fatal]" in ln or "Error" in ln]
        detail = said[-1].strip() if said else f"the reader exited with code {run.returncode}"
        raise UsageError(f"{path}: not a readable LightGBM model file, truncated or corrupt? ({detail[:200]}); save the model again")
    _PROBED.add(digest)


def _load_lightgbm(data: bytes, path: str) -> Any:
    lightgbm = _need("lightgbm", "lightgbm", path)
    import numpy as np  # noqa: PLC0415

    from indb.compilers.boosters import LightGBMFile  # noqa: PLC0415

    _probe_lightgbm(data, path)
    try:
        booster = lightgbm.Booster(model_str=data.decode("utf-8"))
        objective = str(booster.dump_model().get("objective", "")).split(" ")[0]
    except (lightgbm.basic.LightGBMError, UnicodeDecodeError, ValueError, KeyError) as e:
        raise _unreadable(path, "LightGBM model", e) from None
    names = booster.feature_name()
    # a booster trained on an array names its columns Column_0, Column_1, ...
    if names == [f"Column_{i}" for i in range(len(names))]:
        names = None
    classes = None
    if objective in ("binary", "multiclass", "softmax", "multiclassova", "ova"):
        classes = np.arange(max(booster.num_model_per_iteration(), 2))
    return LightGBMFile(booster, booster.num_feature(), None if names is None else np.array(names, dtype=object), classes)


def _load_pickle(data: bytes, path: str) -> Any:
    joblib = _need("joblib", "joblib", path)
    import pickle  # noqa: PLC0415

    try:
        return joblib.load(io.BytesIO(data))
    except (pickle.UnpicklingError, EOFError, ValueError, KeyError, IndexError, TypeError, AttributeError, ImportError) as e:
        raise UsageError(f"{path}: not a readable joblib/pickle model file ({type(e).__name__}: {e})") from None


FORMATS: tuple[Format, ...] = (
    Format((".onnx",), "ONNX", _load_onnx),
    Format((".skops",), "skops", _load_skops),
    Format((".json", ".ubj"), "XGBoost", _load_xgboost),
    Format((".txt",), "LightGBM", _load_lightgbm),
    Format((".joblib", ".pkl", ".pickle"), "pickle", _load_pickle, runs_code=True),
)


def format_of(path: str) -> Format:
    """The format of a model file, by its extension."""
    lower = path.lower()
    for f in FORMATS:
        if lower.endswith(f.suffixes):
            return f
    known = ", ".join(s for f in FORMATS for s in f.suffixes)
    raise UsageError(f"{path}: unknown model file type; MODEL must end in one of {known}")


def read_model_file(path: str) -> bytes:
    """The bytes of a model file, or a one-line error naming it (missing, a folder, empty)."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise UsageError(f"model file {path!r} does not exist") from None
    except OSError as e:
        raise UsageError(f"model file {path!r}: {e.strerror}") from None
    if stat.S_ISDIR(info.st_mode):
        raise UsageError(f"{path} is a folder; MODEL is one model file ({SAFE_FORMATS})")
    if not stat.S_ISREG(info.st_mode):
        raise UsageError(f"{path} is not a regular file; MODEL is one model file ({SAFE_FORMATS})")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise UsageError(f"model file {path!r}: {e.strerror}") from None
    if not data:
        raise UsageError(f"{path} is empty (0 bytes); save the model again")
    return data


def load_model_file(path: str, *, allow_pickle: bool = False) -> tuple[Any, str]:
    """Load a local model file, or an MLflow model (``indb.compilers.mlflow_models``: a
    ``models:/`` or ``runs:/`` URI, or a folder with an ``MLmodel``); returns (model,
    sha256 of the file read).

    ``allow_pickle`` lets ``.joblib``/``.pkl``/``.pickle`` files load: pickle runs code
    while it loads, so pass it only for files you made or trust as you trust a program.
    """
    path = os.fspath(path)
    from indb.compilers import mlflow_models  # noqa: PLC0415

    if mlflow_models.is_mlflow_ref(path):
        origin = mlflow_models.describe(path)
        return load_model_file(mlflow_models.model_file(origin.folder, path, allow_pickle=allow_pickle), allow_pickle=allow_pickle)
    if os.path.isdir(path):
        raise UsageError(f"{path} is a folder without an MLmodel file; MODEL is one model file ({SAFE_FORMATS}) or an MLflow model")
    fmt = format_of(path)
    if fmt.runs_code and not allow_pickle:
        raise UntrustedFileError(
            f"{path}: refused to unpickle: a pickle/joblib file runs code when it is loaded, so a crafted file "
            f"can take over this machine. If you made this file or trust it as you would a program, pass "
            f"--allow-pickle (allow_pickle=True); otherwise save the model as {SAFE_FORMATS}"
        )
    data = read_model_file(path)
    return fmt.load(data, path), hashlib.sha256(data).hexdigest()


# ------------------------------------------------------------------------- storable IR


def check_storable(m: ir.Model, what: str, *, registry: bool = True) -> None:
    """Refuse a compiled model that SQL text or the registry cannot hold: a NUL character
    in a label, feature name or text constant (PostgreSQL text has none); with
    ``registry``, a NaN number where the IR keeps numbers as such (the registry stores
    the IR as JSON, which has no NaN; +-inf is kept)."""
    for label in m.classes or ():
        if isinstance(label, str) and "\x00" in label:
            raise UnsupportedModelError(f"{what}: class label {label!r} holds a NUL character, which PostgreSQL text cannot store; rename the class")
    for name in m.feature_names:
        if "\x00" in name:
            raise UnsupportedModelError(f"{what}: feature name {name!r} holds a NUL character; rename the column (or pass --features)")
    seen: set[int] = set()
    for kind, out in m.outputs:
        for node in ir.walk(out):
            if id(node) in seen:
                continue
            seen.add(id(node))
            if isinstance(node, ir.TreeEnsemble):
                if registry:
                    _check_trees(node, what, kind)
                continue
            for f in fields(node):  # type: ignore[arg-type]
                v = getattr(node, f.name)
                for x in v if isinstance(v, tuple) else (v,):
                    if isinstance(x, str) and "\x00" in x:
                        raise UnsupportedModelError(f"{what}: the {kind} output uses the text {x!r}, which holds a NUL character PostgreSQL text cannot store")
                    if registry and isinstance(x, float) and math.isnan(x):
                        raise CompileError(f"{what}: the {kind} output holds a NaN constant ({type(node).__name__}.{f.name}), which cannot be stored; fix the model")


def _check_trees(node: Any, what: str, kind: str) -> None:
    if any(math.isnan(b) for b in node.base):
        raise CompileError(f"{what}: the tree ensemble of its {kind} output has a NaN base value, which cannot be stored; fix the model")
    for t, tree in enumerate(node.trees):
        for i, value in enumerate(tree.value):
            if any(math.isnan(v) for v in value):
                where = "leaf weight" if tree.left[i] < 0 else "node value"
                raise CompileError(
                    f"{what}: tree {t} of its {kind} output has a NaN {where} (node {i}); every row reaching it would "
                    "score NaN and the registry cannot store it (its IR is JSON): fix or retrain the model"
                )
        if any(math.isnan(x) for x in tree.threshold):
            raise CompileError(f"{what}: tree {t} of its {kind} output has a NaN split threshold, which cannot be stored; fix the model")
