"""Converters for scikit-learn's preprocessing transformers (and PCA).

Each converter returns ``Compiled(transform=[...])``: one IR expression per output
column, in scikit-learn's output order, mirroring its arithmetic operation by operation
(StandardScaler subtracts ``mean_`` and then divides by ``scale_``; MinMaxScaler
multiplies by ``scale_``, adds ``min_`` and then clips; PCA projects first and then
subtracts the projected mean, as ``_BasePCA._transform`` does).

Missing values (NULL and NaN are the same thing to the IR):

* StandardScaler, MinMaxScaler, MaxAbsScaler and RobustScaler keep NaN, as
  scikit-learn does (NaN in, NaN out, column by column).
* SimpleImputer replaces a missing value by its learned statistic; ``add_indicator``
  appends scikit-learn's indicator columns. The IR cannot tell None from NaN: both are
  imputed (scikit-learn with ``missing_values=np.nan`` leaves a Python ``None`` in an
  object column alone).
* OneHotEncoder and OrdinalEncoder follow their learned rules: a missing value matches
  the NaN/None category when the encoder was fitted with one (OrdinalEncoder then
  writes ``encoded_missing_value``), and is otherwise an unknown category, handled per
  ``handle_unknown``: ``'ignore'`` gives zeros, ``'infrequent_if_exist'``/``'warn'`` the
  infrequent column when there is one, ``'use_encoded_value'`` gives ``unknown_value``.
  With ``handle_unknown='error'`` scikit-learn raises on such a row; here the row's
  every output is NULL instead (or the query raises with ``on_missing="error"``).
* Normalizer, Binarizer, KBinsDiscretizer, PolynomialFeatures and PCA refuse NaN in
  scikit-learn, for the whole row. They report such rows (``Compiled.refuse``), and
  ``compile_model`` makes every output of the model missing there -- also the outputs
  that would otherwise be definite (a 0/1 from a comparison, a bin number, the bias
  column, a product not involving the missing input) and those of a later step that
  accepts NaN.

Infinite inputs, which all of these refuse in scikit-learn, are not special-cased.

    >>> import numpy as np
    >>> from sklearn.preprocessing import StandardScaler
    >>> from indb.compilers import compile_model
    >>> m = compile_model(StandardScaler().fit(np.array([[0.0], [4.0]])))
    >>> m.output("transform")
    Vector(items=(BinOp(op='/', left=BinOp(op='-', left=Feature(name='x0', kind='float'), right=Const(value=2.0, kind='float')), right=Const(value=2.0, kind='float')),))
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from sklearn.decomposition import PCA
from sklearn.impute import SimpleImputer
from sklearn.preprocessing import (
    Binarizer,
    KBinsDiscretizer,
    MaxAbsScaler,
    MinMaxScaler,
    Normalizer,
    OneHotEncoder,
    OrdinalEncoder,
    PolynomialFeatures,
    RobustScaler,
    StandardScaler,
)

from indb import ir
from indb.compilers.converters import Compiled, Context, estimator_name, python_scalar, register
from indb.errors import UnsupportedModelError


def _unsupported(est: Any, option: str, supported: str) -> UnsupportedModelError:
    return UnsupportedModelError(f"{estimator_name(est)}: {option} is not supported; supported: {supported}")


def feature_names_out(est: Any) -> list[str] | None:
    """scikit-learn's own output column names, where it can give them."""
    try:
        return [str(n) for n in est.get_feature_names_out()]
    except Exception:  # noqa: BLE001 - names are optional; values are what matter
        return None


def _floats(est: Any, inputs: Sequence[ir.Expr], ctx: Context) -> list[ir.Expr]:
    return [ctx.as_float(x, estimator_name(est)) for x in inputs]


def _is_nan(v: Any) -> bool:
    return isinstance(v, float) and math.isnan(v)


def _is_missing_category(v: Any) -> bool:
    return v is None or _is_nan(python_scalar(v))


def refuse_missing(est: Any, inputs: Sequence[ir.Expr]) -> list[tuple[ir.Expr, str]]:
    """The rows an estimator that does not accept NaN refuses: those with a missing input."""
    bad = ir.any_missing(inputs)
    if isinstance(bad, ir.Const):
        return []
    return [(bad, f"{estimator_name(est)}: an input is NULL or NaN, which scikit-learn refuses for this model")]


def _keep_nan(x: ir.Expr, e: ir.Expr) -> ir.Expr:
    # A clip keeps NaN in scikit-learn; say so explicitly rather than rely on how a
    # backend's LEAST/GREATEST treat NULL.
    return ir.Case(((ir.IsMissing(x), ir.missing(ir.FLOAT)),), e)


def _is_plus_zero(v: float) -> bool:
    return v == 0.0 and math.copysign(1.0, v) > 0


# ---------------------------------------------------------------------- scalers


def _centre_scale(x: ir.Expr, centre: float | None, scale: float | None) -> ir.Expr:
    """``(x - centre) / scale``, skipping the steps that leave every value unchanged."""
    if centre is not None and not _is_plus_zero(centre):
        x = ir.sub(x, ir.const(centre))
    if scale is not None and scale != 1.0:
        x = ir.div(x, ir.const(scale))
    return x


def _centre_scale_all(est: Any, inputs: list[ir.Expr], ctx: Context, centres: Any, scales: Any) -> Compiled:
    """Per column ``(x - centre) / scale``; ``centres``/``scales`` None when the step is off."""
    xs = _floats(est, inputs, ctx)
    cs = [None] * len(xs) if centres is None else [float(c) for c in centres]
    ss = [None] * len(xs) if scales is None else [float(v) for v in scales]
    return Compiled(transform=[_centre_scale(x, c, v) for x, c, v in zip(xs, cs, ss)], names=feature_names_out(est))


@register(StandardScaler)
def convert_standard_scaler(est: Any, inputs: list[ir.Expr], ctx: Context) -> Compiled:
    """``(x - mean_) / scale_`` per column (each step only when enabled).

    >>> from indb.compilers.converters import Context
    >>> est = StandardScaler(with_mean=False).fit(np.array([[1.0], [5.0]]))
    >>> convert_standard_scaler(est, [ir.Feature("a")], Context(["a"])).transform
    [BinOp(op='/', left=Feature(name='a', kind='float'), right=Const(value=2.0, kind='float'))]
    """
    return _centre_scale_all(est, inputs, ctx, est.mean_ if est.with_mean else None, est.scale_ if est.with_std else None)


@register(RobustScaler)
def convert_robust_scaler(est: Any, inputs: list[ir.Expr], ctx: Context) -> Compiled:
    """``(x - center_) / scale_`` per column (each step only when enabled).

    >>> from indb.compilers.converters import Context
    >>> est = RobustScaler().fit(np.array([[1.0], [3.0], [4.0]]))
    >>> convert_robust_scaler(est, [ir.Feature("a")], Context(["a"])).transform[0].op
    '/'
    """
    return _centre_scale_all(est, inputs, ctx, est.center_ if est.with_centering else None, est.scale_ if est.with_scaling else None)


@register(MaxAbsScaler)
def convert_max_abs_scaler(est: Any, inputs: list[ir.Expr], ctx: Context) -> Compiled:
    """``x / scale_`` per column.

    >>> from indb.compilers.converters import Context
    >>> est = MaxAbsScaler().fit(np.array([[-4.0], [2.0]]))
    >>> convert_max_abs_scaler(est, [ir.Feature("a")], Context(["a"])).transform
    [BinOp(op='/', left=Feature(name='a', kind='float'), right=Const(value=4.0, kind='float'))]
    """
    return _centre_scale_all(est, inputs, ctx, None, est.scale_)


@register(MinMaxScaler)
def convert_min_max_scaler(est: Any, inputs: list[ir.Expr], ctx: Context) -> Compiled:
    """``x * scale_ + min_``, then clipped to ``feature_range`` when ``clip=True``.

    >>> from indb.compilers.converters import Context
    >>> est = MinMaxScaler().fit(np.array([[0.0], [4.0]]))
    >>> convert_min_max_scaler(est, [ir.Feature("a")], Context(["a"])).transform
    [Sum(terms=(BinOp(op='*', left=Feature(name='a', kind='float'), right=Const(value=0.25, kind='float')), Const(value=0.0, kind='float')))]
    """
    xs = _floats(est, inputs, ctx)
    lo, hi = (float(v) for v in est.feature_range)
    out = []
    for x, s, m in zip(xs, est.scale_, est.min_):
        y = ir.add(ir.mul(x, ir.const(float(s))), ir.const(float(m)))
        if est.clip:
            y = _keep_nan(x, ir.func("min", ir.func("max", y, ir.const(lo)), ir.const(hi)))
        out.append(y)
    return Compiled(transform=out, names=feature_names_out(est))


@register(Normalizer)
def convert_normalizer(est: Any, inputs: list[ir.Expr], ctx: Context) -> Compiled:
    """Each value divided by the row's l1, l2 or max norm; norms below ``10 * eps`` count as 1.

    >>> from indb.compilers.converters import Context
    >>> out = convert_normalizer(Normalizer("max").fit([[1.0, 2.0]]), [ir.Feature("a"), ir.Feature("b")], Context(["a", "b"]))
    >>> out.transform[0].op
    '/'
    """
    xs = _floats(est, inputs, ctx)
    if est.norm == "l1":
        norm = ir.pairwise_sum([ir.func("abs", x) for x in xs])  # np.sum(axis=1) order
    elif est.norm == "l2":
        norm = ir.func("sqrt", ir.add(*[ir.mul(x, x) for x in xs]))
    elif est.norm == "max":
        absx = [ir.func("abs", x) for x in xs]
        norm = absx[0] if len(absx) == 1 else ir.func("max", *absx)
    else:
        raise _unsupported(est, f"norm={est.norm!r}", "'l1', 'l2', 'max'")
    # _handle_zeros_in_scale: near-zero norms are replaced by 1
    tiny = ir.const(10 * float(np.finfo(np.float64).eps))
    divisor = ir.case([(ir.Compare("<", norm, tiny), ir.const(1.0))], norm)
    return Compiled(transform=[ir.div(x, divisor) for x in xs], names=feature_names_out(est), refuse=refuse_missing(est, xs))


@register(Binarizer)
def convert_binarizer(est: Any, inputs: list[ir.Expr], ctx: Context) -> Compiled:
    """``1.0`` where ``x > threshold`` else ``0.0``; a row with a missing input is missing.

    >>> from indb.compilers.converters import Context
    >>> convert_binarizer(Binarizer(threshold=0.5).fit([[0.0]]), [ir.Feature("a")], Context(["a"])).transform[0]
    Case(whens=((Compare(op='>', left=Feature(name='a', kind='float'), right=Const(value=0.5, kind='float')), Const(value=1.0, kind='float')),), default=Const(value=0.0, kind='float'))
    """
    xs = _floats(est, inputs, ctx)
    t = ir.const(float(est.threshold))
    items = [ir.case([(ir.Compare(">", x, t), ir.const(1.0))], ir.const(0.0)) for x in xs]
    return Compiled(transform=items, names=feature_names_out(est), refuse=refuse_missing(est, xs))


# ---------------------------------------------------------------------- imputer


@register(SimpleImputer)
def convert_simple_imputer(est: Any, inputs: list[ir.Expr], ctx: Context) -> Compiled:
    """A missing value becomes the learned statistic; indicator columns follow when ``add_indicator``.

    Fitted on object data (text, or a frame mixing text and numbers), each column is
    text or number as its statistic is (so a text ``fill_value`` makes every column text).

    >>> from indb.compilers.converters import Context
    >>> est = SimpleImputer().fit(np.array([[1.0], [3.0], [np.nan]]))
    >>> convert_simple_imputer(est, [ir.Feature("a")], Context(["a"])).transform
    [Case(whens=((IsMissing(operand=Feature(name='a', kind='float')), Const(value=2.0, kind='float')),), default=Feature(name='a', kind='float'))]
    """
    mv = est.missing_values
    if not (mv is None or _is_nan(mv) or type(mv).__name__ == "NAType"):
        raise _unsupported(est, f"missing_values={mv!r}", "np.nan, None or pandas.NA (SQL NULL and NaN are the missing values)")
    if callable(est.strategy):
        raise _unsupported(est, "a callable strategy", "'mean', 'median', 'most_frequent', 'constant'")
    out: list[ir.Expr] = []
    typed: list[ir.Expr] = []  # the inputs, typed as their statistic says
    for i, (x, s) in enumerate(zip(inputs, (python_scalar(v) for v in est.statistics_))):
        if _is_missing_category(s):
            # nothing was seen: scikit-learn drops the column, or keeps it with the
            # missing statistic, which leaves every value as it is
            typed.append(x)
            if est.keep_empty_features:
                out.append(x)
            continue
        if isinstance(s, str):
            x = ctx.as_text(x, estimator_name(est))
            fill = ir.const(s, ir.TEXT)
        elif isinstance(s, (bool, int, float)):
            x = ctx.as_float(x, estimator_name(est))
            fill = ir.const(float(s))
        else:
            raise _unsupported(est, f"the statistic {s!r} of input {i}", "numbers and strings")
        typed.append(x)
        out.append(ir.case([(ir.IsMissing(x), fill)], x))
    if est.add_indicator:
        for j in est.indicator_.features_:
            out.append(ir.case([(ir.IsMissing(typed[int(j)]), ir.const(1.0))], ir.const(0.0)))
    return Compiled(transform=out, names=feature_names_out(est))


# ---------------------------------------------------------------------- encoders


@dataclass
class Categories:
    """One encoder input's categories, as IR matches."""

    x: ir.Expr
    values: list  # floats or strings, in categories_ order, with None for the missing category
    text: bool

    def matches(self, subset: Sequence) -> ir.Expr:
        """True when x is one of ``subset`` (None in it matches a missing x)."""
        present = [v for v in subset if v is not None]
        tests: list[ir.Expr] = []
        if len(present) == 1:
            tests.append(ir.Compare("==", self.x, ir.const(present[0], ir.TEXT if self.text else ir.FLOAT)))
        elif present:
            tests.append(ir.InSet(self.x, tuple(sorted(present))))
        if len(present) != len(subset):
            tests.append(ir.IsMissing(self.x))
        if not tests:
            return ir.const(False)
        return tests[0] if len(tests) == 1 else ir.Or(tuple(tests))


def encoder_categories(est: Any, i: int, x: ir.Expr, ctx: Context) -> Categories:
    """Input ``i``'s ``categories_`` of a fitted encoder, over the input ``x`` (text or numbers)."""
    cats = est.categories_[i]
    raw = [python_scalar(c) for c in cats]
    missing = [c for c in raw if _is_missing_category(c)]
    if len(missing) > 1:
        raise _unsupported(est, f"feature {i} with both None and NaN as categories", "at most one missing-value category")
    present = [c for c in raw if not _is_missing_category(c)]
    if cats.dtype.kind in "OUS" and all(isinstance(c, str) for c in present):
        return Categories(ctx.as_text(x, estimator_name(est)), [None if _is_missing_category(c) else c for c in raw], True)
    if cats.dtype.kind in "biuf" or all(isinstance(c, (bool, int, float)) for c in present):
        values = []
        for c in raw:
            if _is_missing_category(c):
                values.append(None)
                continue
            f = float(c)
            if isinstance(c, int) and not isinstance(c, bool) and int(f) != c:
                raise _unsupported(est, f"category {c!r} of feature {i} (not exactly a double)", "numbers exactly representable as double precision")
            values.append(f)
        return Categories(ctx.as_float(x, estimator_name(est)), values, False)
    kinds = sorted({type(c).__name__ for c in present})
    raise _unsupported(est, f"categories of feature {i} of types {', '.join(kinds)}", "all strings or all numbers (plus NaN/None)")


def _groups(est: Any, i: int, values: list) -> list[list]:
    """The encoder's output categories of input ``i`` after grouping infrequent ones.

    Infrequent categories form one group placed last, as scikit-learn's
    ``_default_to_infrequent_mappings`` orders them.
    """
    infrequent = None
    if getattr(est, "_infrequent_enabled", False):
        infrequent = est._infrequent_indices[i]
    if infrequent is None:
        return [[v] for v in values]
    infrequent = {int(j) for j in infrequent}
    frequent = [[v] for j, v in enumerate(values) if j not in infrequent]
    return frequent + [[v for j, v in enumerate(values) if j in infrequent]]


def _input_label(est: Any, i: int) -> str:
    names = getattr(est, "feature_names_in_", None)
    return repr(str(names[i])) if names is not None else str(i)


def _refuse_unknown(est: Any, i: int, cat: Categories, values: Sequence) -> tuple[ir.Expr, str]:
    """handle_unknown='error': scikit-learn raises on a value outside ``values`` (a missing
    value included, unless the encoder has a missing-value category)."""
    return (
        ir.Not(cat.matches(values)),
        f"{estimator_name(est)}: unknown category (or NULL) in input {_input_label(est, i)}, and handle_unknown='error'",
    )


def _onehot_columns(cat: Categories, groups: list[list], drop: int | None, unknown_to_last: bool) -> list[ir.Expr]:
    cols = []
    for k, g in enumerate(groups):
        if k == drop:
            continue
        if unknown_to_last and k == len(groups) - 1:
            # the infrequent column also takes every value no frequent column matches
            match = ir.Not(cat.matches([v for gg in groups[:-1] for v in gg]))
        else:
            match = cat.matches(g)
        cols.append(ir.case([(match, ir.const(1.0))], ir.const(0.0)))
    return cols


@register(OneHotEncoder)
def convert_one_hot_encoder(est: Any, inputs: list[ir.Expr], ctx: Context) -> Compiled:
    """One 0/1 column per (grouped, not dropped) category, input by input.

    >>> from indb.compilers.converters import Context
    >>> est = OneHotEncoder(handle_unknown="ignore").fit(np.array([["a"], ["b"]], dtype=object))
    >>> convert_one_hot_encoder(est, [ir.Feature("c")], Context(["c"])).transform[0]
    Case(whens=((Compare(op='==', left=Feature(name='c', kind='text'), right=Const(value='a', kind='text')), Const(value=1.0, kind='float')),), default=Const(value=0.0, kind='float'))
    """
    handle_unknown = est.handle_unknown
    if handle_unknown not in ("error", "ignore", "infrequent_if_exist", "warn"):
        raise _unsupported(est, f"handle_unknown={handle_unknown!r}", "'error', 'ignore', 'infrequent_if_exist', 'warn'")
    drops = getattr(est, "_drop_idx_after_grouping", None)
    out: list[ir.Expr] = []
    refuse: list[tuple[ir.Expr, str]] = []
    for i, x in enumerate(inputs):
        cat = encoder_categories(est, i, x, ctx)
        groups = _groups(est, i, cat.values)
        has_infrequent = getattr(est, "_infrequent_enabled", False) and est._infrequent_indices[i] is not None
        drop = None if drops is None or drops[i] is None else int(drops[i])
        if handle_unknown == "error":
            refuse.append(_refuse_unknown(est, i, cat, cat.values))
        unknown_to_last = handle_unknown in ("infrequent_if_exist", "warn") and has_infrequent
        out.extend(_onehot_columns(cat, groups, drop, unknown_to_last))
    return Compiled(transform=out, names=feature_names_out(est), refuse=refuse)


@register(OrdinalEncoder)
def convert_ordinal_encoder(est: Any, inputs: list[ir.Expr], ctx: Context) -> Compiled:
    """The (grouped) category index; ``encoded_missing_value`` and ``unknown_value`` as learned.

    >>> from indb.compilers.converters import Context
    >>> est = OrdinalEncoder().fit(np.array([["a"], ["b"]], dtype=object))
    >>> convert_ordinal_encoder(est, [ir.Feature("c")], Context(["c"])).transform[0].whens[1][1]
    Const(value=1.0, kind='float')
    """
    if est.handle_unknown not in ("error", "use_encoded_value"):
        raise _unsupported(est, f"handle_unknown={est.handle_unknown!r}", "'error', 'use_encoded_value'")
    missing_idx = getattr(est, "_missing_indices", {}) or {}
    out: list[ir.Expr] = []
    refuse: list[tuple[ir.Expr, str]] = []
    for i, x in enumerate(inputs):
        cat = encoder_categories(est, i, x, ctx)
        nan_category = i in missing_idx
        # the NaN category (always last) gets encoded_missing_value and is left out
        # of the infrequent grouping, whose indices then stay the same
        groups = _groups(est, i, cat.values[:-1] if nan_category else cat.values)
        whens: list[tuple[ir.Expr, ir.Expr]] = []
        if nan_category:
            whens.append((ir.IsMissing(cat.x), ir.const(float(est.encoded_missing_value))))
        whens.extend((cat.matches(g), ir.const(float(k))) for k, g in enumerate(groups))
        if est.handle_unknown == "use_encoded_value":
            default = ir.const(float(est.unknown_value))
        else:
            refuse.append(_refuse_unknown(est, i, cat, cat.values))
            default = ir.missing(ir.FLOAT)
        out.append(ir.case(whens, default))
    return Compiled(transform=out, names=feature_names_out(est), refuse=refuse)


# -------------------------------------------------------------- discretisation


@register(KBinsDiscretizer)
def convert_kbins_discretizer(est: Any, inputs: list[ir.Expr], ctx: Context) -> Compiled:
    """Bin numbers as ``np.searchsorted(bin_edges_[j][1:-1], x, side="right")``, ordinal or one-hot.

    >>> from indb.compilers.converters import Context
    >>> est = KBinsDiscretizer(n_bins=2, encode="ordinal", strategy="uniform").fit(np.array([[0.0], [2.0]]))
    >>> convert_kbins_discretizer(est, [ir.Feature("a")], Context(["a"])).transform[0]
    Case(whens=((Compare(op='<', left=Feature(name='a', kind='float'), right=Const(value=1.0, kind='float')), Const(value=0.0, kind='float')),), default=Const(value=1.0, kind='float'))
    """
    if est.dtype not in (None, np.float64):
        # transform would round the input to float32 before comparing with the edges
        raise _unsupported(est, f"dtype={getattr(est.dtype, '__name__', est.dtype)}", "dtype=None or np.float64")
    if est.encode not in ("ordinal", "onehot", "onehot-dense"):
        raise _unsupported(est, f"encode={est.encode!r}", "'ordinal', 'onehot', 'onehot-dense'")
    xs = _floats(est, inputs, ctx)
    items: list[ir.Expr] = []
    for j, x in enumerate(xs):
        inner = [float(e) for e in np.asarray(est.bin_edges_[j], dtype=np.float64)[1:-1]]
        if any(b < a for a, b in zip(inner, inner[1:])):
            raise _unsupported(est, f"unsorted bin edges for feature {j}", "ascending bin edges")
        if est.encode == "ordinal":
            # searchsorted(side="right") counts the edges <= x: bin k holds inner[k-1] <= x < inner[k]
            items.append(ir.case([(ir.Compare("<", x, ir.const(e)), ir.const(float(k))) for k, e in enumerate(inner)], ir.const(float(len(inner)))))
            continue
        for k in range(len(inner) + 1):
            tests = []
            if k > 0:
                tests.append(ir.Compare(">=", x, ir.const(inner[k - 1])))
            if k < len(inner):
                tests.append(ir.Compare("<", x, ir.const(inner[k])))
            cond = ir.const(True) if not tests else tests[0] if len(tests) == 1 else ir.And(tuple(tests))
            items.append(ir.case([(cond, ir.const(1.0))], ir.const(0.0)))
    return Compiled(transform=items, names=feature_names_out(est), refuse=refuse_missing(est, xs))


# ---------------------------------------------------------------- polynomials


@register(PolynomialFeatures)
def convert_polynomial_features(est: Any, inputs: list[ir.Expr], ctx: Context) -> Compiled:
    """Products of inputs in ``powers_`` order, multiplied in scikit-learn's order.

    scikit-learn builds a degree-d column as (the degree d-1 column of the other
    factors) times the lowest-indexed factor, so ``x0*x1*x2`` is ``(x1*x2)*x0``; the IR
    does the same so the rounding is identical.

    >>> from indb.compilers.converters import Context
    >>> est = PolynomialFeatures(degree=2, include_bias=False).fit(np.zeros((1, 2)))
    >>> [ir.features_used(e) for e in convert_polynomial_features(est, [ir.Feature("a"), ir.Feature("b")], Context(["a", "b"])).transform]
    [['a'], ['b'], ['a'], ['b', 'a'], ['b']]
    """
    xs = _floats(est, inputs, ctx)
    products: dict[tuple[int, ...], ir.Expr] = {}

    def product(factors: tuple[int, ...]) -> ir.Expr:
        if len(factors) == 1:
            return xs[factors[0]]
        if factors not in products:
            products[factors] = ir.mul(product(factors[1:]), xs[factors[0]])
        return products[factors]

    items: list[ir.Expr] = []
    for powers in np.asarray(est.powers_):
        factors = tuple(j for j, p in enumerate(powers) for _ in range(int(p)))
        if not factors:
            items.append(ir.const(1.0))
            continue
        items.append(product(factors))
    return Compiled(transform=items, names=feature_names_out(est), refuse=refuse_missing(est, xs))


# ------------------------------------------------------------------------- PCA


@register(PCA)
def convert_pca(est: Any, inputs: list[ir.Expr], ctx: Context) -> Compiled:
    """``X @ components_.T - mean_ @ components_.T``, divided by ``sqrt(explained_variance_)`` when whitening.

    >>> from indb.compilers.converters import Context
    >>> est = PCA(n_components=1).fit(np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.1]]))
    >>> len(convert_pca(est, [ir.Feature("a"), ir.Feature("b")], Context(["a", "b"])).transform)
    1
    """
    xs = _floats(est, inputs, ctx)
    components = np.asarray(est.components_)
    # the same numpy expression _BasePCA._transform evaluates, so the same rounding
    projected_mean = (np.reshape(np.asarray(est.mean_), (1, -1)) @ components.T)[0]
    scale = None
    if est.whiten:
        scale = np.sqrt(np.asarray(est.explained_variance_))
        eps = np.finfo(scale.dtype).eps
        scale[scale < eps] = eps
    out = []
    for k, row in enumerate(components):
        # X @ c - m is X @ c + (-m) exactly
        e = ir.linear(xs, [float(w) for w in row], -float(projected_mean[k]))
        if scale is not None:
            e = ir.div(e, ir.const(float(scale[k])))
        out.append(e)
    return Compiled(transform=out, names=feature_names_out(est), refuse=refuse_missing(est, xs))
