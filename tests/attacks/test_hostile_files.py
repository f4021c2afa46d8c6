"""Hostile model files, written as the one who would send them.

The attacker's goal: run code on the release engineer's machine by getting them to
`indb compile` or `indb deploy` a model file from a ticket, a shared drive or a model hub.
A pickle does it by itself when loaded; a skops file can name a function or class that
skops would import and build. Each attack below must fail without an explicit opt-in,
and leave no trace (the canary file stays absent).
"""

from __future__ import annotations

import io
import json
import pickle
import subprocess
import sys
import zipfile

import pytest

from indb import errors
from indb.compilers.files import load_model_file, skops_trusted
from indb.sqlgen.compile import compile_file
from tests.helpers import one_line_error

sio = pytest.importorskip("skops.io")


class _Payload:
    """What the attacker pickles: unpickling calls ``open(canary, "w")``, i.e. any function
    of the victim's Python with arguments of the attacker's choosing."""

    def __init__(self, canary: str) -> None:
        self.canary = canary

    def __reduce__(self):
        return (open, (self.canary, "w"))


def _hostile_pickle(tmp_path, name: str):
    canary = tmp_path / "pwned"
    path = tmp_path / name
    path.write_bytes(pickle.dumps(_Payload(str(canary))))
    return path, canary


def _indb(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "indb.cli", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("name", ["model.joblib", "model.pkl", "model.pickle", "MODEL.PKL"])
def test_a_pickle_does_not_run_without_the_opt_in(tmp_path, name):
    path, canary = _hostile_pickle(tmp_path, name)
    with pytest.raises(errors.UntrustedFileError, match="runs code when it is loaded"):
        compile_file(str(path))
    with pytest.raises(errors.UntrustedFileError):
        load_model_file(str(path))
    from indb.registry.versions import deploy

    with pytest.raises(errors.UntrustedFileError):
        deploy(str(path), "victim", dsn="host=/nonexistent")  # refused before any connection
    assert not canary.exists()


def test_the_command_line_refuses_a_pickle_in_one_line(tmp_path):
    path, canary = _hostile_pickle(tmp_path, "churn.joblib")
    for argv in (["compile", str(path)], ["--dsn", "host=/nonexistent", "deploy", str(path), "--name", "churn"]):
        run = _indb(*argv)
        line = one_line_error(run)
        assert run.returncode == 2 and "churn.joblib" in line and "--allow-pickle" in line and ".skops" in line, line
        assert not canary.exists()


def test_the_opt_in_really_unpickles(tmp_path):
    """The refusal above is what stands between the file and the machine: with the
    opt-in, the payload runs (and then is no model)."""
    path, canary = _hostile_pickle(tmp_path, "model.pkl")
    with pytest.raises(errors.IndbError):
        compile_file(str(path), allow_pickle=True)
    assert canary.exists()


def _skops_with(tmp_path, name: str, module: str, cls: str):
    """A real skops file whose FunctionTransformer's ``func`` is replaced, in its
    schema, by ``module.cls``: what an attacker edits by hand."""
    import os

    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    pipe = make_pipeline(FunctionTransformer(func=os.getcwd), LinearRegression())
    pipe.steps[1][1].fit([[0.0], [1.0]], [0.0, 1.0])
    src = zipfile.ZipFile(io.BytesIO(sio.dumps(pipe)))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for item in src.namelist():
            data = src.read(item)
            if item == "schema.json":
                text = data.decode()
                func_module = os.getcwd.__module__
                assert f'"__module__": "{func_module}"' in text
                text = text.replace(f'"__module__": "{func_module}"', f'"__module__": "{module}"')
                text = text.replace('"__class__": "getcwd"', f'"__class__": "{cls}"')
                json.loads(text)
                data = text.encode()
            z.writestr(item, data)
    path = tmp_path / name
    path.write_bytes(out.getvalue())
    return path


@pytest.mark.parametrize("module, cls", [
    ("posix", "system"),            # a function the model would call on its input
    ("builtins", "eval"),
    ("subprocess", "Popen"),        # a class outside scikit-learn, numpy, scipy
    ("numpy", "load"),              # a function inside an allowed package
    ("sklearn.base", "clone"),
    ("numpy.lib.npyio", "DataSource"),  # a class, but no model's
])
def test_a_skops_file_naming_a_dangerous_type_is_refused_and_names_it(tmp_path, module, cls):
    path = _skops_with(tmp_path, "evil.skops", module, cls)
    assert f"{module}.{cls}" in sio.get_untrusted_types(file=path)
    with pytest.raises(errors.UntrustedFileError, match="evil.skops: refused to load") as refused:
        load_model_file(str(path))
    assert f"{module}.{cls}" in str(refused.value)
    run = _indb("compile", str(path))
    assert f"{module}.{cls}" in one_line_error(run) and run.returncode == 2


def test_skops_type_names_cannot_smuggle_an_import():
    for name in ("sklearn_evil.Model", "os.system", "sklearn.__import__('os').system", "numpy..x", "sklearnx.base.X",
                 "scipy.sparse._base.os", "numpy.ctypeslib.ctypes"):
        assert not skops_trusted(name), name
    for name in ("sklearn.linear_model._logistic.LogisticRegression", "numpy.float64", "numpy.dtype",
                 "scipy.sparse._csr.csr_matrix", "sklearn.tree._tree.Tree"):
        assert skops_trusted(name), name


def test_an_honest_skops_file_loads_without_any_opt_in(tmp_path):
    from sklearn.ensemble import GradientBoostingClassifier

    est = GradientBoostingClassifier(n_estimators=3, max_depth=2).fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
    path = tmp_path / "honest.skops"
    sio.dump(est, path)
    model, _ = load_model_file(str(path))
    assert type(model) is GradientBoostingClassifier and list(model.predict([[0.5], [2.5]])) == [0, 1]
