"""Feature selection: model -> IR structure (a projection), IR parity with scikit-learn, refusals."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
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
    f_regression,
)
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from indb import ir
from indb.compilers import compile_model, supported
from indb.compilers.converters import Context
from indb.compilers.feature_selection import convert_selector
from indb.errors import CompileError
from indb.ir.evaluate import columns_from_matrix, evaluate
from tests.compilers.parity import check_parity, refused_rows
from tests.zoo import feature_selection as zoo
from tests.zoo.linear import _data, edge_rows


def _fit(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(X, y)


def _xy(d=8, k=0):
    X, y = _data(200, d, 300 + k)
    return X, y


def _rows(X):
    return np.vstack([X[:40], edge_rows(X[0].copy())])


# ------------------------------------------------------------------ structure


def test_every_selector_is_registered():
    names = {"SelectKBest", "SelectPercentile", "GenericUnivariateSelect", "VarianceThreshold", "SelectFromModel", "RFE", "RFECV", "SequentialFeatureSelector", "SelectFpr", "SelectFdr", "SelectFwe"}
    assert names <= set(supported())


def test_selector_output_is_the_selected_features_themselves():
    X, y = _xy()
    est = _fit(SelectKBest(f_regression, k=3), X, y)
    inputs = [ir.Feature(f"x{j}") for j in range(X.shape[1])]
    res = convert_selector(est, inputs, Context([x.name for x in inputs]))
    keep = np.flatnonzero(est.get_support()).tolist()
    assert res.transform == [inputs[j] for j in keep]
    assert res.transform[0] is inputs[keep[0]]  # shared, not copied
    # the row is refused when any input, a dropped one included, is missing
    assert res.refuse[0][0] == ir.any_missing(inputs)


def test_selector_after_a_scaler_passes_the_scaled_columns_on_unchanged():
    X, y = _xy(k=1)
    pipe = _fit(make_pipeline(StandardScaler(), SelectPercentile(f_regression, percentile=25)), X, y)
    scaled = compile_model(pipe.steps[0][1]).output("transform").items
    keep = np.flatnonzero(pipe.steps[1][1].get_support()).tolist()
    # each kept scaled column, missing on the rows the selector refuses (a NaN in any column)
    refused = ir.any_missing(scaled)
    want = ir.vector([ir.Case(((refused, ir.missing(ir.FLOAT)),), scaled[j]) for j in keep])
    assert compile_model(pipe).output("transform") == want


def test_rfe_predicts_through_its_estimator_on_the_selected_columns():
    X, y = _xy(k=2)
    est = _fit(RFE(LinearRegression(), n_features_to_select=3), X, y)
    m = compile_model(est)
    assert m.output_kinds == ("predict", "transform")
    selected = [f"x{j}" for j in np.flatnonzero(est.support_)]
    inner = compile_model(est.estimator_, selected).output("predict")
    refused = ir.any_missing([ir.Feature(f"x{j}") for j in range(X.shape[1])])
    assert m.output("predict") == ir.Case(((refused, ir.missing(ir.FLOAT)),), inner)


def test_a_selector_that_keeps_nothing_is_refused_by_name():
    X, y = _xy(k=3)
    est = _fit(SelectFwe(alpha=1e-300), X, np.random.default_rng(0).normal(size=len(X)))
    assert not est.get_support().any()
    with pytest.raises(CompileError, match="SelectFwe selects no column"):
        compile_model(est)


# ------------------------------------------------------------------ parity and refusals


@pytest.mark.parametrize(
    "make",
    [
        lambda: SelectKBest(f_regression, k=4),
        lambda: SelectPercentile(f_regression, percentile=40),
        lambda: GenericUnivariateSelect(f_regression, mode="k_best", param=2),
        lambda: SelectFpr(f_regression, alpha=0.05),
        lambda: SelectFdr(f_regression, alpha=0.05),
        lambda: SelectFwe(f_regression, alpha=0.05),
        lambda: SelectFromModel(LinearRegression(), max_features=3, threshold=-np.inf),
        lambda: SequentialFeatureSelector(LinearRegression(), n_features_to_select=2, cv=2),
    ],
    ids=["kbest", "percentile", "generic", "fpr", "fdr", "fwe", "from_model", "sequential"],
)
def test_univariate_and_model_selectors_refuse_a_nan_anywhere_in_the_row(make):
    X, y = _xy(k=4)
    est = _fit(make(), X, y)
    rows = _rows(X)
    dropped = int(np.flatnonzero(~est.get_support())[0])
    nan_in_dropped = rows.copy()[:1]
    nan_in_dropped[0, dropped] = np.nan
    rows = np.vstack([rows, nan_in_dropped])
    assert len(rows) - 1 in refused_rows(est, rows, "transform")
    m = check_parity(est, rows, ("transform",))
    got = evaluate(m.output("transform"), columns_from_matrix(m, rows))
    assert np.isnan(got[-1]).all()


def test_variance_threshold_accepts_nan_and_ignores_it_in_a_dropped_column():
    X, _ = _xy(k=5)
    X[:, 2] = 1.0  # constant: dropped
    est = _fit(VarianceThreshold(), X, None)
    rows = _rows(X)
    rows[3, 2] = np.nan
    assert len(est.transform(rows)) == len(rows)  # no row refused
    m = check_parity(est, rows, ("transform",))
    assert not np.isnan(evaluate(m.output("transform"), columns_from_matrix(m, rows))[3]).any()


def test_rfe_over_hist_gradient_boosting_follows_its_missing_value_rule():
    X, y = _xy(k=6)
    X[np.random.default_rng(1).random(X.shape) < 0.05] = np.nan
    labels = np.where(np.nan_to_num(y) > np.nanmedian(y), "hi", "lo")
    est = _fit(RFE(HistGradientBoostingClassifier(max_iter=10, random_state=0), n_features_to_select=4, importance_getter=zoo._split_counts), X, labels)
    rows = np.vstack([X[:60], edge_rows(np.nan_to_num(X[0]))])
    assert np.isnan(rows).any() and len(est.predict(rows)) == len(rows)  # no row refused
    check_parity(est, rows, ("predict", "proba", "decision", "transform"))


def test_rfecv_classifier_gives_labels_and_probabilities():
    X, y = _xy(k=7)
    labels = np.where(y > np.median(y), "yes", "no")
    est = _fit(RFECV(LogisticRegression(max_iter=500), step=2, cv=2), X, labels)
    m = check_parity(est, _rows(X), ("predict", "proba", "decision"))
    assert m.classes == ("no", "yes")


def test_selector_with_pandas_output_is_not_validated_and_passes_nan_on():
    X, y = _xy(k=8)
    df = pd.DataFrame(X, columns=[f"c{j}" for j in range(X.shape[1])])
    est = _fit(SelectKBest(f_regression, k=3).set_output(transform="pandas"), df, y)
    rows = pd.DataFrame(_rows(X), columns=df.columns)
    assert len(est.transform(rows)) == len(rows)  # no row refused
    check_parity(est, rows, ("transform",))


def test_selectors_inside_column_transformer_and_pipeline():
    X, y = _xy(d=10, k=9)
    ct = ColumnTransformer(
        [("a", SelectKBest(f_regression, k=2), [0, 1, 2, 3, 4]), ("b", make_pipeline(StandardScaler(), VarianceThreshold(0.5)), [5, 6, 7, 8, 9])]
    )
    est = _fit(Pipeline([("ct", ct), ("sel", SelectFromModel(LinearRegression(), max_features=3, threshold=-np.inf)), ("lr", LinearRegression())]), X, y)
    check_parity(est, _rows(X), ("predict",))

