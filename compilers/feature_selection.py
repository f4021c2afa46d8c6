"""Converters for ``sklearn.feature_selection``: a fitted selector is a column projection.

Every selector's ``transform`` keeps the input columns its ``get_support()`` mask marks,
in input order (``SelectorMixin._transform``), so the IR is the selected inputs
themselves, shared and unchanged: SelectKBest, SelectPercentile,
GenericUnivariateSelect, SelectFpr, SelectFdr, SelectFwe, VarianceThreshold,
SelectFromModel, RFE, RFECV and SequentialFeatureSelector. ``RFE`` and ``RFECV`` also
``predict`` (and ``predict_proba``/``decision_function`` where their ``estimator_`` has
them) through the fitted ``estimator_`` over the selected columns, compiled by its own
converter.

Missing values: ``SelectorMixin.transform`` validates the *whole* row first, with NaN
refused unless the selector's ``allow_nan`` tag says otherwise (VarianceThreshold
always accepts NaN; SelectFromModel, RFE, RFECV and SequentialFeatureSelector accept it
when their estimator does, e.g. HistGradientBoosting; the univariate filters never
do). So where NaN is refused, a row with a missing value in any input -- a dropped
column included -- is refused (``Compiled.refuse``), and every output of the model is
missing there. A selector whose transform output is configured as pandas/polars
(``set_output``) skips that validation for a DataFrame, which is what a table row is:
then nothing is refused. Infinite inputs, which the validation also refuses, are not
special-cased (as for the preprocessing transformers).

A selector that keeps no column is refused at compile time (scikit-learn warns and
returns an empty array, which no later step accepts).

    >>> import numpy as np
    >>> from sklearn.feature_selection import VarianceThreshold
    >>> from indb.compilers import compile_model
    >>> m = compile_model(VarianceThreshold().fit(np.array([[0.0, 1.0], [0.0, 2.0]])))
    >>> m.output("transform").items
    (Feature(name='x1', kind='float'),)
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.feature_selection import (
    RFE,
    RFECV,
    GenericUnivariateSelect,
    SelectFdr,
    SelectFpr,
    SelectFromModel,
    SelectFwe,
    SelectKBest,
    SelectPercentile,
    SequentialFeatureSelector,
    VarianceThreshold,
)
from sklearn.utils import get_tags
from sklearn.utils._set_output import _get_output_config

from indb import ir
from indb.compilers.converters import Compiled, Context, compile_estimator, register
from indb.compilers.preprocessing import refuse_missing, feature_names_out
from indb.errors import CompileError


def _refusals(est: Any, inputs: list[ir.Expr]) -> list[tuple[ir.Expr, str]]:
    """The rows ``SelectorMixin.transform``'s validation refuses: any missing input, unless NaN is allowed."""
    if get_tags(est).input_tags.allow_nan:
        return []
    if _get_output_config("transform", estimator=est)["dense"] != "default":
        return []  # a DataFrame is passed on unvalidated
    return refuse_missing(est, inputs)


def _select(est: Any, inputs: list[ir.Expr]) -> Compiled:
    mask = np.asarray(est.get_support(), dtype=bool)
    if mask.shape != (len(inputs),):
        raise CompileError(f"{type(est).__name__}: get_support() has {mask.size} entries for {len(inputs)} input columns")
    if not mask.any():
        raise CompileError(f"{type(est).__name__} selects no column; refit it with a looser selection (k, percentile, threshold)")
    return Compiled(
        transform=[x for x, keep in zip(inputs, mask.tolist()) if keep],
        names=feature_names_out(est),
        refuse=_refusals(est, inputs),
    )


@register(
    SelectKBest,
    SelectPercentile,
    GenericUnivariateSelect,
    SelectFpr,
    SelectFdr,
    SelectFwe,
    VarianceThreshold,
    SelectFromModel,
    SequentialFeatureSelector,
)
def convert_selector(est: Any, inputs: list[ir.Expr], ctx: Context) -> Compiled:
    """The inputs ``get_support()`` keeps, in input order.

    >>> from sklearn.feature_selection import SelectKBest, f_regression
    >>> from indb.compilers.converters import Context
    >>> s = SelectKBest(f_regression, k=1).fit(np.array([[0.0, 1.0], [1.0, 1.5], [2.0, 0.0]]), [0.0, 1.0, 2.0])
    >>> convert_selector(s, [ir.Feature("a"), ir.Feature("b")], Context(["a", "b"])).transform
    [Feature(name='a', kind='float')]
    """
    return _select(est, inputs)


@register(RFE, RFECV)
def convert_rfe(est: Any, inputs: list[ir.Expr], ctx: Context) -> Compiled:
    """The selected inputs, and ``estimator_``'s outputs over them (``RFE.predict`` and friends).

    >>> from sklearn.linear_model import LinearRegression
    >>> from indb.compilers.converters import Context
    >>> r = RFE(LinearRegression(), n_features_to_select=1).fit(np.array([[0.0, 1.0], [1.0, 1.0], [2.0, 0.0]]), [0.0, 1.0, 2.0])
    >>> res = convert_rfe(r, [ir.Feature("a"), ir.Feature("b")], Context(["a", "b"]))
    >>> ir.features_used(res.predict)
    ['a']
    """
    sel = _select(est, inputs)
    res = compile_estimator(est.estimator_, sel.transform, ctx)
    return Compiled(
        transform=sel.transform,
        predict=res.predict,
        proba=res.proba,
        decision=res.decision,
        classes=res.classes,
        names=sel.names,
        refuse=sel.refuse + list(res.refuse),
    )
