"""Composition: Pipeline and ColumnTransformer -> IR structure and parity, refusals."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.decomposition import PCA
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, KBinsDiscretizer, MinMaxScaler, OneHotEncoder, OrdinalEncoder, PolynomialFeatures, StandardScaler

from indb import ir
from indb.compilers import compile_model
from indb.errors import UnsupportedModelError
from indb.ir.evaluate import columns_from_matrix, evaluate
from tests.compilers.parity import check_docstring_examples, check_parity, refused_rows
from tests.zoo import linear as zoo_linear
from tests.zoo import preprocessing as zoo_pre


def _fit(est, X, y=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(X, y)


def _missing(values) -> np.ndarray:
    return np.array([v is None or (isinstance(v, float) and np.isnan(v)) for v in np.asarray(values, dtype=object).ravel()])


SHOP = zoo_pre._shop()
SHOP_TEST = pd.concat([SHOP.iloc[:60], zoo_pre._shop_edges(SHOP)], ignore_index=True)
SHOP_Y = np.where(SHOP["price"] > SHOP["price"].median(), "dear", "cheap")


# ------------------------------------------------------------------ structure


def test_pipeline_substitutes_step_outputs_into_the_next_step():
    X = np.array([[1.0, 10.0], [5.0, 30.0], [3.0, 20.0]])
    est = make_pipeline(StandardScaler(), LinearRegression()).fit(X, [1.0, 2.0, 4.0])
    scaler, lr = est[0], est[1]
    scaled = [ir.div(ir.sub(ir.Feature(f"x{j}"), ir.const(float(scaler.mean_[j]))), ir.const(float(scaler.scale_[j]))) for j in range(2)]
    assert compile_model(est).output("predict") == ir.linear(scaled, lr.coef_, float(lr.intercept_))


def test_passthrough_steps_and_transform_only_pipelines():
    X = np.array([[1.0, 10.0], [5.0, 30.0], [3.0, 20.0]])
    est = Pipeline([("scale", MinMaxScaler()), ("skip", "passthrough"), ("none", None), ("last", "passthrough")]).fit(X)
    m = compile_model(est)
    assert m.output_kinds == ("transform",)
    assert m.output("transform") == compile_model(est[0]).output("transform")
    check_parity(est, X, ("transform",))


def test_column_transformer_selects_and_orders_like_sklearn():
    df = SHOP[["color", "size", "stars", "price"]]
    ct = ColumnTransformer(
        [("price", StandardScaler(), ["price"]), ("gone", "drop", ["size"]), ("kept", "passthrough", [2]), ("color", OneHotEncoder(handle_unknown="ignore"), [0])],
        remainder="drop",
    ).fit(df)
    m = compile_model(ct)
    items = m.output("transform").items
    assert len(items) == len(ct.get_feature_names_out())
    assert items[0] == compile_model(ct.named_transformers_["price"], ["price"]).output("transform").items[0]
    assert items[1] == ir.Feature("stars")
    assert m.features == (ir.FeatureSpec("color", ir.TEXT), ir.FeatureSpec("size"), ir.FeatureSpec("stars"), ir.FeatureSpec("price"))
    check_parity(ct, SHOP_TEST[df.columns], ("transform",))


NUMERIC = pd.DataFrame(zoo_pre._numeric(d=5, k=21, nan_rate=0.05), columns=["a", "b", "c", "d", "e"])
NUMERIC_TEST = pd.concat([NUMERIC.iloc[:40], pd.DataFrame(zoo_linear.edge_rows(NUMERIC.iloc[0].fillna(0).to_numpy()), columns=NUMERIC.columns)], ignore_index=True)


@pytest.mark.parametrize(
    "columns",
    [["c", "e"], [2, 4], slice(2, 5), [False, False, True, False, True], np.array([2, 4]), ["e", "c"]],
    ids=["names", "indices", "slice", "mask", "array", "names-reordered"],
)
@pytest.mark.parametrize("remainder", ["drop", "passthrough", "estimator"])
def test_column_selection_forms(columns, remainder):
    rem = MinMaxScaler(clip=True) if remainder == "estimator" else remainder
    ct = _fit(ColumnTransformer([("num", make_pipeline(SimpleImputer(), StandardScaler()), columns)], remainder=rem), NUMERIC)
    m = check_parity(ct, NUMERIC_TEST, ("transform",))
    assert len(m.output("transform").items) == len(ct.get_feature_names_out())


def test_column_selector_by_dtype_is_resolved_at_fit():
    df = SHOP[["color", "size", "stars", "price"]]
    ct = _fit(ColumnTransformer([("num", StandardScaler(), make_column_selector(dtype_include="number"))]), df)
    # make_column_selector is a callable: scikit-learn evaluated it on the training frame
    with pytest.raises(UnsupportedModelError, match=r"ColumnTransformer: transformer 'num' selects its columns with a callable"):
        compile_model(ct)


def test_transformer_weights():
    df = SHOP[["color", "stars", "price"]]
    ct = _fit(
        ColumnTransformer([("c", OneHotEncoder(handle_unknown="ignore"), ["color"]), ("p", StandardScaler(), ["price"])], remainder=MinMaxScaler(), transformer_weights={"c": 3.0, "remainder": 0.25}),
        df,
    )
    check_parity(ct, SHOP_TEST[df.columns], ("transform",))


def test_nested_compositions():
    df = SHOP[["color", "size", "stars", "price"]]
    # the +-1e300 stars rows overflow in PolynomialFeatures: see test_intermediate_overflow_follows_ieee
    test = SHOP_TEST[df.columns][~(SHOP_TEST["stars"].abs() >= 1e300)]
    inner = ColumnTransformer([("ord", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1), ["size"]), ("imp", SimpleImputer(), ["stars"])])
    outer = ColumnTransformer(
        [("nested", make_pipeline(inner, PolynomialFeatures(2)), ["size", "stars"]), ("color", OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["color"])],
        remainder=make_pipeline(StandardScaler(), PCA(1)),
    )
    est = _fit(make_pipeline(outer, LogisticRegression(max_iter=2000)), df, SHOP_Y)
    check_parity(est, test, ("predict", "proba", "decision"))


def test_intermediate_overflow_follows_ieee():
    """A known difference: when a value overflows to inf between two steps, scikit-learn's
    next step refuses the row; the IR follows IEEE-754 and carries inf on."""
    X = np.array([[1.0], [2.0], [4.0]])
    est = make_pipeline(PolynomialFeatures(2), LinearRegression()).fit(X, [1.0, 3.0, 9.0])
    row = np.array([[1e300]])
    with pytest.raises(ValueError, match="infinity"), np.errstate(over="ignore"):
        est.predict(row)
    m = compile_model(est)
    assert np.isinf(evaluate(m.output("predict"), columns_from_matrix(m, row))[0])


# ------------------------------------------------------------------ refused rows stay refused


def test_unknown_category_refused_early_is_missing_at_the_end():
    df = SHOP[["color", "size", "price"]]
    ct = ColumnTransformer([("c", OneHotEncoder(handle_unknown="error"), ["color", "size"])], remainder="passthrough")
    est = _fit(make_pipeline(ct, SimpleImputer(), LogisticRegression(max_iter=2000)), df, SHOP_Y)
    test = SHOP_TEST[df.columns]
    m = check_parity(est, test, ("predict", "proba", "decision"))
    refused = refused_rows(est, test, "predict")
    assert refused
    got = evaluate(m.output("predict"), columns_from_matrix(m, test))
    assert _missing(got[refused]).all() and not _missing(np.delete(got, refused)).any()
    # the encoder's own columns for such a row are plain 0/1; only the refusal makes it missing
    from indb.compilers.converters import Context, compile_estimator

    cols = compile_estimator(ct, [ir.Feature(c) for c in df.columns], Context(list(df.columns)))
    assert cols.refuse and all(isinstance(e, ir.Case) for e in cols.transform[:3])


def test_nan_refused_by_a_step_even_if_a_later_step_accepts_it():
    X = zoo_pre._numeric(d=3, k=9)
    # KBinsDiscretizer refuses NaN; its bins would otherwise turn NaN into a definite bin
    est = _fit(make_pipeline(KBinsDiscretizer(n_bins=3, encode="ordinal"), SimpleImputer(), Ridge()), X, X[:, 0])
    test = np.vstack([X[:10], [[np.nan, 1.0, 2.0]]])
    m = check_parity(est, test, ("predict",))
    assert np.isnan(evaluate(m.output("predict"), columns_from_matrix(m, test))[-1])


def test_on_missing_error_names_the_refusing_step():
    df = SHOP[["size", "price"]]
    est = _fit(make_pipeline(ColumnTransformer([("c", OneHotEncoder(handle_unknown="error"), ["size"])], remainder="passthrough"), Ridge()), df, SHOP["price"])
    m = compile_model(est, on_missing="error")
    ok = df.iloc[:5]
    assert np.allclose(evaluate(m.output("predict"), columns_from_matrix(m, ok)), est.predict(ok), rtol=1e-9)
    with pytest.raises(ValueError, match=r"OneHotEncoder: unknown category \(or NULL\) in input 'size'"):
        evaluate(m.output("predict"), columns_from_matrix(m, pd.DataFrame({"size": ["XXL"], "price": [1.0]})))


def test_non_identity_function_transformer_is_refused():
    ct = _fit(ColumnTransformer([("log", FunctionTransformer(np.log1p), ["price"])]), SHOP[["price"]])
    with pytest.raises(UnsupportedModelError, match="FunctionTransformer: func='log1p' is not supported; supported: func=None"):
        compile_model(ct)


# ------------------------------------------------------------------ realistic pipelines


@pytest.mark.parametrize("case_id", ["customers_onehot_scaler_logistic", "customers_onehot_error_linear_svc"])
def test_customer_pipelines(case_id):
    case = next(c for c in zoo_linear.CASES if c.id == case_id)
    est, X = case.fitted()
    m = check_parity(est, X, case.outputs)
    assert est.n_features_in_ == 25 and len(est.classes_) >= 3
    kinds = {f.name: f.kind for f in m.features}
    assert kinds["plan"] == kinds["region"] == kinds["channel"] == ir.TEXT
    assert all(kinds[f"m{j}"] == ir.FLOAT for j in range(22))


def test_pipeline_json_round_trip_keeps_results():
    case = next(c for c in zoo_linear.CASES if c.id == "customers_onehot_scaler_logistic")
    est, X = case.fitted()
    m = compile_model(est)
    back = ir.model_from_json(ir.model_to_json(m))
    assert back == m
    cols = columns_from_matrix(m, X)
    assert np.array_equal(evaluate(back.output("proba"), cols), evaluate(m.output("proba"), cols), equal_nan=True)


def test_docstring_examples():
    import doctest

    from indb.compilers import pipeline as module

    check_docstring_examples(module, optionflags=doctest.NORMALIZE_WHITESPACE)
