"""The registry that maps an estimator class to its compiler, and the top-level entry point.

A compiler (a *converter*) is a function ``convert(estimator, inputs, ctx) -> Compiled``:
``inputs`` holds one IR expression per column the estimator receives (``ir.Feature``
nodes at the top level, the outputs of the previous step inside a pipeline), and the
result says what the estimator produces from them. Converters know nothing about SQL.

Register with the decorator; keys are exact classes (a subclass may change the
semantics, so it must be registered on its own)::

    @register(StandardScaler)
    def convert_standard_scaler(est, inputs, ctx):
        ...
        return Compiled(transform=[...])
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from indb import ir
from indb.errors import CompileError, UnsupportedModelError


@dataclass
class Compiled:
    """What one estimator produces, as IR over its inputs.

    A transformer sets ``transform`` (one expression per output column). A predictor
    sets ``predict`` and, where the estimator has them, ``proba`` (one expression per
    class, in ``classes`` order), ``decision`` (one expression, or one per class) and
    ``transform`` (an estimator with both, like KMeans).
    """

    transform: list[ir.Expr] | None = None
    predict: ir.Expr | None = None
    proba: list[ir.Expr] | None = None
    decision: ir.Expr | list[ir.Expr] | None = None
    classes: tuple | None = None
    #: names of the transform columns (``get_feature_names_out``) where known
    names: list[str] | None = None
    #: rows the estimator refuses, as ``(condition, reason)``: scikit-learn raises on them
    #: (an unknown category with ``handle_unknown='error'``, NaN where it is not
    #: accepted). Containers (Pipeline, ColumnTransformer) pass their steps' refusals
    #: on; ``compile_model`` makes every output item missing on such rows (or raises,
    #: with ``on_missing="error"``), so a later step cannot turn them into a value.
    refuse: list[tuple[ir.Expr, str]] = field(default_factory=list)


Converter = Callable[[Any, list, "Context"], Compiled]

_REGISTRY: dict[type, Converter] = {}

#: the modules whose import registers their converters (``boosters`` registers XGBoost and
#: LightGBM only when those libraries are installed)
FAMILIES = ("linear", "pipeline", "preprocessing", "tree", "ensemble", "boosters", "naive_bayes", "cluster",
            "neural", "svm", "outlier", "meta", "encoders", "feature_selection")


def load_families() -> None:
    """Import every family module once, registering its converters.

    They import scikit-learn, XGBoost, LightGBM and pandas (seconds of start-up), so this
    runs on the first compile, not when ``indb.compilers`` is imported: commands that never
    compile (``indb models``, ``indb status``) start without them.
    """
    for name in FAMILIES:
        importlib.import_module(f"indb.compilers.{name}")


def register(*classes: type) -> Callable[[Converter], Converter]:
    """Register ``fn`` as the converter of each class; registering a class twice is an error."""

    def deco(fn: Converter) -> Converter:
        for cls in classes:
            if cls in _REGISTRY:
                raise ValueError(f"{cls.__module__}.{cls.__qualname__} already has a converter ({_REGISTRY[cls].__name__})")
            _REGISTRY[cls] = fn
        return fn

    return deco


def supported() -> list[str]:
    """Names of every supported estimator class, sorted."""
    load_families()
    return sorted(cls.__name__ for cls in _REGISTRY)


def converter_for(est: Any) -> Converter:
    cls = type(est)
    if cls not in _REGISTRY:
        load_families()
    try:
        return _REGISTRY[cls]
    except KeyError:
        raise UnsupportedModelError(
            f"{cls.__module__}.{cls.__name__} is not supported by indb. Supported: {', '.join(supported())}"
        ) from None


@dataclass
class Context:
    """State shared by the converters of one model.

    ``feature_kinds`` records which top-level features must arrive as text (string
    categories); ``on_missing`` is what a model with no missing-value rule does with a
    missing input: ``"null"`` (the output is NULL) or ``"error"``.
    """

    feature_names: list[str]
    feature_kinds: dict[str, str] = field(default_factory=dict)
    on_missing: str = "null"

    def as_text(self, e: ir.Expr, what: str) -> ir.Expr:
        """``e`` as a text input (string categories); only a top-level feature can be text."""
        if isinstance(e, ir.Feature):
            if e.kind == ir.TEXT:
                return e
            prev = self.feature_kinds.get(e.name)
            if prev == ir.FLOAT:
                raise CompileError(f"feature {e.name!r} is used both as a number and as text ({what})")
            self.feature_kinds[e.name] = ir.TEXT
            return ir.Feature(e.name, ir.TEXT)
        if e.type == ir.TEXT:
            return e
        raise CompileError(f"{what} needs text input, but its input is a computed number: {type(e).__name__}")

    def missing_result(self, kind: str, what: str) -> ir.Expr:
        """What a model with no missing-value rule returns for a row with a missing input."""
        if self.on_missing == "error":
            return ir.Fail(f"{what}: an input feature is NULL or NaN and the model has no rule for missing values", kind)
        return ir.missing(kind)

    def guard_missing(self, inputs: Sequence[ir.Expr], expr: ir.Expr, what: str) -> ir.Expr:
        """``expr``, or ``missing_result`` when any of ``inputs`` is missing.

        Use it for outputs that would otherwise turn a missing input into a value (a
        label chosen by a comparison, a tree that would route NaN somewhere). Pure
        arithmetic needs no guard: NaN propagates and the output layer turns it into NULL.
        """
        return ir.Case(((ir.any_missing(inputs), self.missing_result(expr.type, what)),), expr)

    def as_float(self, e: ir.Expr, what: str) -> ir.Expr:
        if isinstance(e, ir.Feature) and e.kind == ir.FLOAT:
            if self.feature_kinds.get(e.name) == ir.TEXT:
                raise CompileError(f"feature {e.name!r} is used both as a number and as text ({what})")
        elif e.type == ir.TEXT:
            raise CompileError(f"{what} needs numeric input, but gets text")
        return e


def compile_estimator(est: Any, inputs: Sequence[ir.Expr], ctx: Context) -> Compiled:
    """Compile one (possibly composite) estimator over ``inputs``."""
    n_in = getattr(est, "n_features_in_", None)
    if n_in is not None and n_in != len(inputs):
        raise CompileError(f"{type(est).__name__} expects {n_in} input columns, the model gives it {len(inputs)}")
    return converter_for(est)(est, list(inputs), ctx)


def default_feature_names(est: Any, features: Sequence[str] | None) -> list[str]:
    """``features`` if given, else the model's ``feature_names_in_``, else ``x0 .. x{n-1}``."""
    n_in = getattr(est, "n_features_in_", None)
    if features is not None:
        features = [str(f) for f in features]
        if n_in is not None and len(features) != n_in:
            raise CompileError(f"--features names {len(features)} columns but the model takes {n_in}")
        if len(set(features)) != len(features):
            raise CompileError("--features lists a column twice")
        return features
    names = getattr(est, "feature_names_in_", None)
    if names is not None:
        return [str(n) for n in names]
    if n_in is None:
        raise CompileError(f"{type(est).__name__} does not say how many input columns it takes; pass --features")
    return [f"x{i}" for i in range(n_in)]


def python_scalar(v: Any) -> Any:
    """A plain Python float/int/str/bool for a numpy scalar (labels, categories)."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and v.is_integer() and not math.isinf(v):
        return v
    return v


def compile_model(est: Any, features: Sequence[str] | None = None, *, on_missing: str = "null") -> ir.Model:
    """Compile a fitted scikit-learn estimator (or pipeline) to an ``ir.Model``.

    >>> from sklearn.linear_model import LinearRegression
    >>> m = compile_model(LinearRegression().fit([[0.0], [1.0]], [1.0, 3.0]))
    >>> m.output_kinds
    ('predict',)
    """
    if on_missing not in ("null", "error"):
        raise CompileError(f"on_missing must be 'null' or 'error', not {on_missing!r}")
    names = default_feature_names(est, features)
    ctx = Context(feature_names=names, on_missing=on_missing)
    inputs = [ir.Feature(n) for n in names]
    res = compile_estimator(est, inputs, ctx)
    # features a converter asked to receive as text
    if ctx.feature_kinds:
        text = {n for n, k in ctx.feature_kinds.items() if k == ir.TEXT}

        def retype(node: ir.Expr) -> ir.Expr:
            if isinstance(node, ir.Feature) and node.name in text and node.kind != ir.TEXT:
                return ir.Feature(node.name, ir.TEXT)
            return node

        fix = lambda e: ir.transform(e, retype)  # noqa: E731
    else:
        text = set()
        fix = lambda e: e  # noqa: E731
    refuse = refusal_guard(res.refuse, ctx.on_missing)
    outputs: list[tuple[str, ir.Expr]] = []
    if res.predict is not None:
        outputs.append(("predict", fix(refuse(res.predict))))
    if res.proba is not None:
        outputs.append(("proba", fix(ir.vector([refuse(p) for p in res.proba]))))
    if res.decision is not None:
        d = res.decision
        outputs.append(("decision", fix(ir.vector([refuse(e) for e in d]) if isinstance(d, list) else refuse(d))))
    # a predictor may have a transform too (KMeans: distances to the centres)
    if res.transform is not None:
        outputs.append(("transform", fix(ir.vector([refuse(e) for e in res.transform]))))
    if not outputs:
        raise CompileError(f"{type(est).__name__} produced no output")
    specs = tuple(ir.FeatureSpec(n, ir.TEXT if n in text else ir.FLOAT) for n in names)
    classes = None if res.classes is None else tuple(python_scalar(c) for c in res.classes)
    return ir.Model(features=specs, outputs=tuple(outputs), classes=classes, source=f"{type(est).__module__}.{type(est).__name__}")


def estimator_name(est: Any) -> str:
    """The estimator's class name, as error messages and ``Fail`` reasons name it."""
    return type(est).__name__


def class_labels(est: Any) -> tuple:
    """The estimator's ``classes_`` as IR labels: all strings, or all numbers (as floats).

    >>> class _E: classes_ = np.array([0, 2])
    >>> class_labels(_E())
    (0.0, 2.0)
    """
    values = [python_scalar(c) for c in est.classes_]
    if all(isinstance(v, str) for v in values):
        return tuple(values)
    if all(isinstance(v, (int, float)) for v in values):  # bool is an int: True -> 1.0
        return tuple(float(v) for v in values)
    kinds = ", ".join(sorted({type(v).__name__ for v in values}))
    raise UnsupportedModelError(
        f"{type(est).__name__}: class labels of types {kinds} are not supported; refit it with all-numeric or all-string labels"
    )


def label_guard(ctx: Context, scores: Sequence[ir.Expr], label: ir.Expr, what: str) -> ir.Expr:
    """``label`` chosen by comparing ``scores``, raising on a missing score with ``on_missing="error"``.

    ``ir.binary_label`` and ``ir.ArgMax`` already give NULL for a missing score; only the
    raising mode needs an explicit guard.
    """
    if ctx.on_missing == "error":
        return ctx.guard_missing(scores, label, what)
    return label


def refusal_guard(refuse: Sequence[tuple[ir.Expr, str]], on_missing: str) -> Callable[[ir.Expr], ir.Expr]:
    """A function that makes one output item missing (``on_missing="null"``) or failing
    (``"error"``) on the rows a model refuses, given as ``(condition, reason)``.

    Both front ends use it: ``compile_model`` for what scikit-learn raises on, the ONNX
    front end for what onnxruntime fails on.
    """
    if not refuse:
        return lambda e: e
    if on_missing == "error":
        return lambda e: ir.Case(tuple((cond, ir.Fail(reason, e.type)) for cond, reason in refuse), e)
    conds = [cond for cond, _ in refuse]
    any_refused = conds[0] if len(conds) == 1 else ir.Or(tuple(conds))
    return lambda e: ir.Case(((any_refused, ir.missing(e.type)),), e)
