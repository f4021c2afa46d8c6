"""Converters for composition: Pipeline, ColumnTransformer, and the identity FunctionTransformer.

* Pipeline chains its steps: the transform outputs of one step are the inputs of the
  next (``'passthrough'``/None steps pass them on unchanged); the last step says what
  the pipeline produces (a prediction, probabilities, a transform...).
* ColumnTransformer gives each transformer the input columns it selected at fit time
  (by name, index, slice or boolean mask, resolved by scikit-learn into
  ``_transformer_to_input_indices``) and concatenates their outputs in scikit-learn's
  order: the fitted transformers in order, ``'drop'`` and empty selections skipped, the
  remainder last; ``transformer_weights`` multiply a transformer's outputs. A callable
  column selector is refused: scikit-learn evaluated it on the training frame, and a
  compiled model must not depend on re-running Python code against new data.
* FunctionTransformer is supported only as the identity (``func=None``), which is what
  ColumnTransformer stores for ``'passthrough'``.

A passthrough column is typed by whatever consumes it (an encoder asks for text); one
that nothing consumes is a number, as scikit-learn records no column types.

Rows a step refuses (``Compiled.refuse``) stay refused through every later step and
container, so the model's outputs are missing there. One difference remains, by the
IR's IEEE-754 rule: a value that overflows to +-inf *between* two steps (say a square
of 1e300 in PolynomialFeatures) makes scikit-learn's next step refuse the row, while
the IR carries the infinity on.

Intermediate results are shared IR subtrees (the same Python objects), not copies, so
a step's output used by several later expressions stays one node.

    >>> import numpy as np
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from sklearn.linear_model import LinearRegression
    >>> from indb.compilers import compile_model
    >>> X, y = np.array([[0.0], [2.0]]), np.array([1.0, 3.0])
    >>> m = compile_model(make_pipeline(StandardScaler(), LinearRegression()).fit(X, y))
    >>> m.output_kinds
    ('predict',)
"""

from __future__ import annotations

from typing import Any

from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from indb import ir
from indb.compilers.preprocessing import feature_names_out
from indb.compilers.converters import Compiled, Context, compile_estimator, register
from indb.errors import CompileError, UnsupportedModelError


def _is_passthrough(step: Any) -> bool:
    return step is None or (isinstance(step, str) and step == "passthrough")


@register(Pipeline)
def convert_pipeline(est: Any, inputs: list[ir.Expr], ctx: Context) -> Compiled:
    """Compile each step over the previous step's outputs; the last step's result is the pipeline's.

    >>> from sklearn.preprocessing import StandardScaler
    >>> from indb.compilers.converters import Context
    >>> p = Pipeline([("skip", "passthrough"), ("scale", StandardScaler())]).fit([[1.0], [3.0]])
    >>> len(convert_pipeline(p, [ir.Feature("a")], Context(["a"])).transform)
    1
    """
    current = list(inputs)
    names: list[str] | None = None
    refuse: list[tuple[ir.Expr, str]] = []
    for k, (name, step) in enumerate(est.steps):
        last = k == len(est.steps) - 1
        if _is_passthrough(step):
            if last:
                return Compiled(transform=current, names=names, refuse=refuse)
            continue
        res = compile_estimator(step, current, ctx)
        # a row an earlier step refuses stays refused, whatever later steps make of it
        refuse = refuse + list(res.refuse)
        if last:
            res.refuse = refuse
            return res
        if res.transform is None:
            raise CompileError(f"Pipeline step {name!r} ({type(step).__name__}) is not last but produces no transform output")
        current, names = list(res.transform), res.names
    raise CompileError("Pipeline has no steps")  # pragma: no cover - sklearn refuses to fit one


@register(ColumnTransformer)
def convert_column_transformer(est: Any, inputs: list[ir.Expr], ctx: Context) -> Compiled:
    """Each fitted transformer over its selected inputs, outputs concatenated in scikit-learn's order.

    >>> import numpy as np
    >>> from sklearn.preprocessing import StandardScaler
    >>> from indb.compilers.converters import Context
    >>> ct = ColumnTransformer([("s", StandardScaler(), [1])], remainder="drop").fit(np.array([[1.0, 2.0], [3.0, 5.0]]))
    >>> ir.features_used(ir.vector(convert_column_transformer(ct, [ir.Feature("a"), ir.Feature("b")], Context(["a", "b"])).transform))
    ['b']
    """
    for name, _, columns in est.transformers:
        if callable(columns):
            raise UnsupportedModelError(
                f"ColumnTransformer: transformer {name!r} selects its columns with a callable, which is not supported; "
                "supported: column names, indices, slices and boolean masks"
            )
    weights = est.transformer_weights or {}
    out: list[ir.Expr] = []
    refuse: list[tuple[ir.Expr, str]] = []
    for name, trans, _ in est.transformers_:
        if isinstance(trans, str) and trans == "drop":
            continue
        indices = list(est._transformer_to_input_indices[name])
        if not indices:
            continue  # scikit-learn skips empty selections
        selected = [inputs[j] for j in indices]
        if isinstance(trans, str) and trans == "passthrough":
            produced = selected
        else:
            res = compile_estimator(trans, selected, ctx)
            if res.transform is None:
                raise CompileError(f"ColumnTransformer: transformer {name!r} ({type(trans).__name__}) produces no transform output")
            produced = list(res.transform)
            refuse.extend(res.refuse)
        expected = est.output_indices_.get(name)
        if expected is not None and expected.stop - expected.start != len(produced):
            raise CompileError(
                f"ColumnTransformer: transformer {name!r} gives {len(produced)} columns, scikit-learn recorded "
                f"{expected.stop - expected.start}"
            )
        w = weights.get(name)
        if w is not None:
            if any(e.type == ir.TEXT for e in produced):
                raise UnsupportedModelError(
                    f"ColumnTransformer: a transformer_weights entry for {name!r}, whose output is text, is not supported; "
                    "supported: weights on numeric outputs"
                )
            produced = [ir.mul(e, ir.const(float(w))) for e in produced]
        out.extend(produced)
    return Compiled(transform=out, names=feature_names_out(est), refuse=refuse)


@register(FunctionTransformer)
def convert_function_transformer(est: Any, inputs: list[ir.Expr], ctx: Context) -> Compiled:
    """Only the identity (``func=None``): ColumnTransformer's fitted form of 'passthrough'.

    >>> from indb.compilers.converters import Context
    >>> convert_function_transformer(FunctionTransformer().fit([[1.0]]), [ir.Feature("a")], Context(["a"])).transform
    [Feature(name='a', kind='float')]
    """
    if est.func is not None:
        raise UnsupportedModelError(
            f"FunctionTransformer: func={getattr(est.func, '__name__', est.func)!r} is not supported; "
            "supported: func=None (the identity, as ColumnTransformer's 'passthrough')"
        )
    return Compiled(transform=list(inputs), names=feature_names_out(est))
