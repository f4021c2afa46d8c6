"""``indb compile``: a model to SQL for any dialect, as text.

    >>> from sklearn.linear_model import LinearRegression
    >>> from indb import compile_sql
    >>> m = LinearRegression().fit([[0.0], [1.0]], [1.0, 3.0])
    >>> print(compile_sql(m, dialect="sqlite"))
    x0 * 2.0 + 1.0
"""

from __future__ import annotations

import hashlib
import os
import pickle
import time
from dataclasses import dataclass
from typing import Any, Sequence

from sqlglot import exp

from indb import ir
from indb.dialects import target as get_target
from indb.errors import CompileError, UnsupportedModelError, UsageError
from indb.lowering import lower_outputs

OUTPUTS = ("predict", "proba", "decision", "transform")


def to_ir(model: Any, features: Sequence[str] | None = None, on_missing: str = "null") -> ir.Model:
    """An ``ir.Model`` from an estimator (compiled) or an ``ir.Model`` (returned as is)."""
    if isinstance(model, ir.Model):
        if features is not None and list(features) != list(model.feature_names):
            if model.source.startswith("onnx:"):  # a graph's inputs have no column names of their own
                from indb.compilers.onnx import rename_features  # noqa: PLC0415

                return rename_features(model, features)
            raise CompileError("--features cannot rename the features of an already compiled model")
        return model
    from indb.compilers import compile_model  # noqa: PLC0415 - keeps `import indb` light

    return compile_model(model, features, on_missing=on_missing)


def load_model_file(path: str) -> tuple[Any, str]:
    """Load a trusted local model file; returns (model, sha256 of the file).

    ``.joblib``/``.pkl`` files are unpickled here, on the client, by the user who trusts
    them; the database never sees pickle data.
    """
    if not os.path.exists(path):
        raise UsageError(f"model file {path!r} does not exist")
    with open(path, "rb") as f:
        data = f.read()
    digest = hashlib.sha256(data).hexdigest()
    lower = path.lower()
    if lower.endswith(".onnx"):
        try:
            from indb.compilers import onnx as onnx_front  # noqa: PLC0415
        except ImportError:
            raise UnsupportedModelError(
                f"{path}: compiling ONNX files needs the onnx package (pip install onnx)"
            ) from None
        return onnx_front.load(data, path), digest
    if lower.endswith((".joblib", ".pkl", ".pickle")):
        try:
            import joblib  # noqa: PLC0415

            import io

            return joblib.load(io.BytesIO(data)), digest
        except (pickle.UnpicklingError, EOFError, ValueError, KeyError, IndexError, TypeError, AttributeError, ModuleNotFoundError) as e:
            raise UsageError(f"{path}: not a readable joblib/pickle model file ({type(e).__name__}: {e})") from None
    raise UsageError(f"{path}: unknown model file type; use .joblib, .pkl or .onnx")


@dataclass
class CompiledSQL:
    """The SQL of one output kind: column names and expressions, ready to render."""

    columns: list[tuple[str, exp.Expression]]
    dialect: str
    seconds: float

    def select(self, table: str, keep: Sequence[str] = ()) -> exp.Select:
        names = [n for n, _ in self.columns]
        for k in keep:
            if k in names:
                raise CompileError(f"output column {k!r} collides with a kept column; rename the kept column or drop it from --keep")
        sel = exp.select(*[exp.column(k) for k in keep], *[exp.alias_(e, n) for n, e in self.columns])
        return sel.from_(exp.to_table(table, dialect=self.dialect))

    def sql(self, table: str | None = None, keep: Sequence[str] = ()) -> str:
        if table is None:
            if len(self.columns) == 1:
                return self.columns[0][1].sql(self.dialect)
            return ",\n".join(exp.alias_(e, n).sql(self.dialect) for n, e in self.columns)
        return self.select(table, keep).sql(self.dialect)


def lower_model(
    model: Any,
    *,
    dialect: str = "postgres",
    output: str = "predict",
    features: Sequence[str] | None = None,
    on_missing: str = "null",
    columns: dict[str, exp.Expression] | None = None,
    qualify: bool = False,
    model_name: str = "model",
    fail_hook=None,
) -> CompiledSQL:
    """Compile and lower one output kind; ``columns`` maps feature names to SQL (default: columns)."""
    if output not in OUTPUTS:
        raise UsageError(f"--output must be one of {', '.join(OUTPUTS)}, not {output!r}")
    t0 = time.perf_counter()
    m = to_ir(model, features, on_missing)
    tgt = get_target(dialect)
    if columns is None:
        columns = {f.name: exp.column(f.name, quoted=_needs_quotes(f.name)) for f in m.features}
    cols = lower_outputs(m, output, tgt, columns, qualify=qualify, model_name=model_name, fail_hook=fail_hook)
    if len(cols) > tgt.max_columns:
        raise CompileError(f"{len(cols)} output columns exceed {dialect}'s limit of {tgt.max_columns}")
    return CompiledSQL(cols, dialect, time.perf_counter() - t0)


def _needs_quotes(name: str) -> bool:
    return not (name.isidentifier() and name == name.lower() and name.isascii())


def compile_sql(
    model: Any,
    dialect: str = "postgres",
    output: str = "predict",
    *,
    features: Sequence[str] | None = None,
    table: str | None = None,
    keep: Sequence[str] = (),
    on_missing: str = "null",
) -> str:
    """SQL for a model: a scalar expression over the feature columns, or with ``table``
    a full ``SELECT kept..., outputs... FROM table``.

    ``model`` is a fitted scikit-learn estimator or pipeline, or an ``ir.Model``.
    """
    if keep and table is None:
        raise UsageError("--keep needs --table")
    return lower_model(model, dialect=dialect, output=output, features=features, on_missing=on_missing).sql(table, keep)


def compile_file(
    path: str,
    *,
    dialect: str = "postgres",
    output: str = "predict",
    features: Sequence[str] | None = None,
    table: str | None = None,
    keep: Sequence[str] = (),
    on_missing: str = "null",
) -> str:
    """``indb compile MODEL``: load a model file and print its SQL."""
    model, _ = load_model_file(path)
    return compile_sql(model, dialect, output, features=features, table=table, keep=keep, on_missing=on_missing)
