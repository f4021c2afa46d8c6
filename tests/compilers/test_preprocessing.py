"""Preprocessing transformers: model -> IR structure, IR parity with scikit-learn, refusals."""

from __future__ import annotations

import datetime
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.decomposition import PCA
from sklearn.impute import SimpleImputer
from sklearn.preprocessing import (
    Binarizer,
    FunctionTransformer,
    KBinsDiscretizer,
    MaxAbsScaler,
    MinMaxScaler,
    Normalizer,
    OneHotEncoder,
    OrdinalEncoder,
    PolynomialFeatures,
    QuantileTransformer,
    RobustScaler,
    StandardScaler,
)

from indb import ir
from indb.compilers import compile_model
from indb.errors import CompileError, UnsupportedModelError
from indb.ir.evaluate import columns_from_matrix, evaluate
from tests.compilers.parity import check_docstring_examples, check_parity, check_zoo_case, refused_rows
from tests.zoo import preprocessing as zoo
from tests.zoo.linear import edge_rows

a, b = ir.Feature("x0"), ir.Feature("x1")


def _fit(est, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(X)


def _numeric(k=0, nan_rate=0.0, d=6):
    X = zoo._numeric(n=250, d=d, k=k, nan_rate=nan_rate)
    return X, np.vstack([X[:80], edge_rows(np.nan_to_num(X[1]).copy())])


def _transform(m, X):
    return evaluate(m.output("transform"), columns_from_matrix(m, X))


# ------------------------------------------------------------------ structure


def test_standard_scaler_subtracts_then_divides():
    est = StandardScaler().fit(np.array([[1.0, 10.0], [5.0, 30.0]]))
    m = compile_model(est)
    want = ir.vector([ir.div(ir.sub(a, ir.const(3.0)), ir.const(2.0)), ir.div(ir.sub(b, ir.const(20.0)), ir.const(10.0))])
    assert m.output("transform") == want
    # a zero-variance column: scale_ is 1 and the division is left out
    est = StandardScaler().fit(np.array([[1.0, 5.0], [3.0, 5.0]]))
    assert compile_model(est).output("transform").items[1] == ir.sub(b, ir.const(5.0))


def test_simple_imputer_and_indicator_ir():
    est = SimpleImputer(add_indicator=True).fit(np.array([[1.0, 2.0], [np.nan, 4.0], [3.0, 6.0]]))
    items = compile_model(est).output("transform").items
    assert items == (
        ir.case([(ir.IsMissing(a), ir.const(2.0))], a),
        ir.case([(ir.IsMissing(b), ir.const(4.0))], b),
        ir.case([(ir.IsMissing(a), ir.const(1.0))], ir.const(0.0)),
    )


def test_one_hot_text_ir_and_feature_typed_text():
    df = pd.DataFrame({"color": ["red", "blue", "red", "green"]})
    est = OneHotEncoder(handle_unknown="ignore").fit(df)
    m = compile_model(est)
    c = ir.Feature("color", ir.TEXT)
    assert m.features == (ir.FeatureSpec("color", ir.TEXT),)
    assert m.output("transform") == ir.vector([ir.case([(ir.Compare("==", c, ir.const(v)), ir.const(1.0))], ir.const(0.0)) for v in ("blue", "green", "red")])


def test_one_hot_error_reports_unknown_rows():
    df = pd.DataFrame({"color": ["red", "blue"]})
    m = compile_model(OneHotEncoder(handle_unknown="error").fit(df))
    c = ir.Feature("color", ir.TEXT)
    unknown = ir.Not(ir.InSet(c, ("blue", "red")))
    first = m.output("transform").items[0]
    assert first == ir.Case(((unknown, ir.missing()),), ir.case([(ir.Compare("==", c, ir.const("blue")), ir.const(1.0))], ir.const(0.0)))


def test_kbins_ordinal_matches_searchsorted_right():
    est = KBinsDiscretizer(n_bins=3, encode="ordinal", strategy="uniform").fit(np.array([[0.0], [3.0]]))
    item = compile_model(est).output("transform").items[0]
    bins = ir.case([(ir.Compare("<", a, ir.const(1.0)), ir.const(0.0)), (ir.Compare("<", a, ir.const(2.0)), ir.const(1.0))], ir.const(2.0))
    assert item == ir.Case(((ir.IsMissing(a), ir.missing()),), bins)
    x = np.array([-1.0, 0.0, np.nextafter(1.0, 0), 1.0, 2.0, 3.0, 9.0])
    assert evaluate(item, {"x0": x}).tolist() == np.searchsorted([1.0, 2.0], x, side="right").astype(float).tolist()


def test_polynomial_multiplies_in_sklearns_order():
    est = PolynomialFeatures(degree=3, include_bias=False).fit(np.zeros((1, 3)))
    items = compile_model(est).output("transform").items
    names = list(est.get_feature_names_out())
    c = ir.Feature("x2")
    # each item is guarded (sklearn refuses NaN rows); the product is its default.
    # sklearn builds a column as (the column of the other factors) * lowest factor
    assert items[names.index("x0 x1 x2")].default == ir.mul(ir.mul(c, b), a)
    assert items[names.index("x0^2 x1")].default == ir.mul(ir.mul(b, a), a)
    assert items[names.index("x1^3")].default == ir.mul(ir.mul(b, b), b)
    # the same order gives bit-identical results, not merely close ones
    X = np.random.default_rng(0).normal(size=(500, 3)) * 1e3
    assert np.array_equal(_transform(compile_model(est), X), est.transform(X))


# ------------------------------------------------------------------ parity

NAN_TOLERANT = [
    StandardScaler(),
    StandardScaler(with_mean=False),
    StandardScaler(with_std=False),
    MinMaxScaler(),
    MinMaxScaler(feature_range=(-3, 2), clip=True),
    MaxAbsScaler(),
    RobustScaler(),
    RobustScaler(with_centering=False, quantile_range=(5.0, 95.0)),
    RobustScaler(with_scaling=False),
    SimpleImputer(),
    SimpleImputer(strategy="median", add_indicator=True),
    SimpleImputer(strategy="most_frequent"),
    SimpleImputer(strategy="constant", fill_value=-1.0, add_indicator=True),
]


@pytest.mark.parametrize("est", NAN_TOLERANT, ids=repr)
def test_nan_tolerant_transformer_parity(est):
    X, Xt = _numeric(k=1, nan_rate=0.05)
    _fit(est, X)
    m = check_parity(est, Xt, ("transform",))
    assert not refused_rows(est, Xt, "transform")
    out = _transform(m, Xt)
    if not isinstance(est, SimpleImputer):
        assert np.array_equal(np.isnan(out), np.isnan(Xt))  # NaN in, NaN out, column by column


NAN_REFUSING = [
    Normalizer(),
    Normalizer(norm="l1"),
    Normalizer(norm="max"),
    Binarizer(),
    Binarizer(threshold=25.0),
    PolynomialFeatures(),
    PolynomialFeatures(degree=3, interaction_only=True, include_bias=False),
    PolynomialFeatures(degree=(2, 3)),
    PolynomialFeatures(degree=0),
    KBinsDiscretizer(n_bins=4, encode="ordinal", strategy="uniform"),
    KBinsDiscretizer(n_bins=5, encode="onehot", strategy="quantile"),
    KBinsDiscretizer(n_bins=3, encode="onehot-dense", strategy="kmeans"),
    PCA(n_components=3),
    PCA(n_components=4, whiten=True),
    PCA(n_components=2, svd_solver="covariance_eigh", whiten=True),
]


@pytest.mark.parametrize("est", NAN_REFUSING, ids=repr)
def test_nan_refusing_transformer_parity(est):
    X, Xt = _numeric(k=2)
    _fit(est, X)
    m = check_parity(est, Xt, ("transform",))
    # a NaN anywhere in the row makes the whole output row missing, as sklearn raises
    out = _transform(m, Xt)
    nan_rows = np.isnan(Xt).any(axis=1)
    assert nan_rows.any() and np.isnan(out[nan_rows]).all()
    assert not np.isnan(out[~nan_rows]).all()


def test_normalizer_near_zero_norms():
    est = Normalizer().fit(np.ones((2, 3)))
    X = np.array([[1e-300, 0, 0], [2e-16, 0, 0], [3e-16, 0, 0], [0, 0, 0], [-1e-17, 1e-17, 0], [1e300, 1e300, 0]])
    for norm in ("l1", "l2", "max"):
        est.set_params(norm=norm)
        check_parity(est, X, ("transform",))


@pytest.mark.parametrize("strategy", ["uniform", "quantile", "kmeans"])
def test_kbins_rows_on_every_edge_and_one_ulp_away(strategy):
    X, _ = _numeric(k=3)
    est = _fit(KBinsDiscretizer(n_bins=6, encode="ordinal", strategy=strategy), X)
    rows = zoo._on_bin_edges(est, X)
    m = check_parity(est, rows, ("transform",))
    assert len(np.unique(_transform(m, rows))) == 6


def test_binarizer_on_threshold():
    est = Binarizer(threshold=0.5).fit(np.zeros((1, 2)))
    X = np.array([[np.nextafter(0.5, 0), 0.5], [0.5, np.nextafter(0.5, 1)]])
    assert _transform(compile_model(est), X).tolist() == [[0.0, 0.0], [0.0, 1.0]]
    check_parity(est, X, ("transform",))


# ---- encoders

SHOP = zoo._shop()
SHOP_TEST = pd.concat([SHOP.iloc[:60], zoo._shop_edges(SHOP)], ignore_index=True)
ENCODER_OPTIONS = [
    dict(handle_unknown=hu, drop=drop, **infrequent)
    for hu in ("error", "ignore", "infrequent_if_exist", "warn")
    for drop in (None, "first", "if_binary")
    for infrequent in ({}, {"min_frequency": 30}, {"max_categories": 3}, {"min_frequency": 0.08, "max_categories": 4})
]


@pytest.mark.parametrize("options", ENCODER_OPTIONS, ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()))
@pytest.mark.parametrize("missing", ["with-nan", "no-nan"])
def test_one_hot_encoder_parity(options, missing):
    train = SHOP if missing == "with-nan" else SHOP.fillna({"color": "red", "stars": 3.0})
    est = _fit(OneHotEncoder(**options), train[["color", "size", "stars"]])
    check_parity(est, SHOP_TEST[["color", "size", "stars"]], ("transform",))


def test_one_hot_encoder_explicit_drop_and_categories():
    est = _fit(OneHotEncoder(drop=["blue", "M", 3.0], handle_unknown="ignore"), SHOP[["color", "size", "stars"]])
    check_parity(est, SHOP_TEST[["color", "size", "stars"]], ("transform",))
    est = _fit(OneHotEncoder(drop=["teal", "L", 4.0], min_frequency=25, handle_unknown="infrequent_if_exist"), SHOP[["color", "size", "stars"]])
    check_parity(est, SHOP_TEST[["color", "size", "stars"]], ("transform",))
    cats = [["red", "green", "blue", "teal", "plum", "rust", "gold"], ["S", "M", "L"]]
    est = _fit(OneHotEncoder(categories=cats, handle_unknown="ignore"), SHOP[["color", "size"]].fillna("red"))
    check_parity(est, SHOP_TEST[["color", "size"]], ("transform",))


def test_one_hot_encoder_none_category_in_object_column():
    df = pd.DataFrame({"c": np.array(["a", "b", None, "a"], dtype=object)})
    est = OneHotEncoder(handle_unknown="error").fit(df)
    test = pd.DataFrame({"c": np.array(["a", None, "b", "z"], dtype=object)})
    m = check_parity(est, test, ("transform",))
    assert _transform(m, test)[1].tolist() == [0.0, 0.0, 1.0]


@pytest.mark.parametrize("handle_unknown,unknown_value", [("error", None), ("use_encoded_value", -1), ("use_encoded_value", np.nan)])
@pytest.mark.parametrize("encoded_missing_value", [np.nan, -2])
@pytest.mark.parametrize("infrequent", [{}, {"min_frequency": 30}, {"max_categories": 3}], ids=["all", "min_frequency", "max_categories"])
@pytest.mark.parametrize("missing", ["with-nan", "no-nan"])
def test_ordinal_encoder_parity(handle_unknown, unknown_value, encoded_missing_value, infrequent, missing):
    train = SHOP if missing == "with-nan" else SHOP.fillna({"color": "red", "stars": 3.0})
    est = OrdinalEncoder(handle_unknown=handle_unknown, unknown_value=unknown_value, encoded_missing_value=encoded_missing_value, **infrequent)
    _fit(est, train[["color", "size", "stars"]])
    check_parity(est, SHOP_TEST[["color", "size", "stars"]], ("transform",))


def test_text_simple_imputer_feeds_text_on():
    df = SHOP[["color", "size"]]
    for est in (SimpleImputer(strategy="most_frequent", add_indicator=True), SimpleImputer(strategy="constant", fill_value="none")):
        _fit(est, df)
        m = check_parity(est, SHOP_TEST[["color", "size"]], ("transform",))
        assert m.features[0].kind == ir.TEXT


@pytest.mark.parametrize("keep_empty_features", [False, True])
@pytest.mark.parametrize("add_indicator", [False, True])
def test_simple_imputer_on_a_mixed_frame_types_each_column(keep_empty_features, add_indicator):
    df = pd.DataFrame({"c": pd.Series(["a", "b", np.nan, "a"], dtype=object), "n": [1.0, np.nan, 1.0, 3.0], "e": [np.nan] * 4})
    test = pd.DataFrame({"c": pd.Series([np.nan, "z", "a"], dtype=object), "n": [np.nan, 2.0, 1e300], "e": [np.nan, 1.0, np.nan]})
    est = _fit(SimpleImputer(strategy="most_frequent", keep_empty_features=keep_empty_features, add_indicator=add_indicator), df)
    assert est._fit_dtype == object  # noqa: E721 - numpy dtype equality, not a type check
    m = check_parity(est, test, ("transform",))
    assert [f.kind for f in m.features] == [ir.TEXT, ir.FLOAT, ir.FLOAT]


def test_simple_imputer_empty_features():
    X = np.array([[1.0, np.nan, 2.0], [3.0, np.nan, np.nan], [5.0, np.nan, 8.0]])
    test = np.array([[np.nan, np.nan, np.nan], [0.0, 1.0, 2.0], [1e300, -1e300, np.nan]])
    for keep in (False, True):
        for strategy in ("mean", "median", "most_frequent", "constant"):
            est = _fit(SimpleImputer(strategy=strategy, keep_empty_features=keep, add_indicator=True), X)
            check_parity(est, test, ("transform",))


# ------------------------------------------------------------------ refusals and errors


def test_on_missing_error_raises_only_on_refused_rows():
    X, Xt = _numeric(k=4)
    est = _fit(KBinsDiscretizer(n_bins=3, encode="ordinal"), X)
    m = compile_model(est, on_missing="error")
    good = X[:5]
    assert np.array_equal(_transform(m, good), est.transform(good))
    with pytest.raises(ValueError, match="KBinsDiscretizer: an input is NULL or NaN"):
        _transform(m, np.array([[1.0, np.nan, 0, 0, 0, 0]]))
    est = _fit(OneHotEncoder(handle_unknown="error"), SHOP[["size"]])
    m = compile_model(est, on_missing="error")
    with pytest.raises(ValueError, match="unknown category"):
        _transform(m, pd.DataFrame({"size": ["S", "XXL"]}))


@pytest.mark.parametrize(
    "est,data,match",
    [
        (SimpleImputer(missing_values=-1.0), np.array([[1.0], [-1.0]]), r"SimpleImputer: missing_values=-1.0 is not supported; supported: np.nan"),
        (KBinsDiscretizer(n_bins=2, dtype=np.float32), np.array([[1.0], [2.0], [3.0]]), r"KBinsDiscretizer: dtype=float32 is not supported"),
        (FunctionTransformer(np.log1p), np.array([[1.0]]), r"FunctionTransformer: func='log1p' is not supported"),
        (OneHotEncoder(), pd.DataFrame({"c": pd.Series([datetime.date(2020, 1, 1), datetime.date(2021, 1, 1)], dtype=object)}), r"OneHotEncoder: categories of feature 0 of types date"),
        (OneHotEncoder(), pd.DataFrame({"c": pd.Series(["a", None, np.nan], dtype=object)}), r"OneHotEncoder: feature 0 with both None and NaN"),
        (OrdinalEncoder(), pd.DataFrame({"c": [2**60, 2**60 + 1]}), r"OrdinalEncoder: category 1152921504606846977 of feature 0 \(not exactly a double\)"),
        (QuantileTransformer(n_quantiles=2), np.array([[1.0], [2.0]]), r"QuantileTransformer is not supported"),
    ],
    ids=["imputer-sentinel", "kbins-float32", "function", "date-categories", "none-and-nan", "huge-int-category", "unregistered"],
)
def test_unsupported_options_are_refused_by_name(est, data, match):
    _fit(est, data)
    with pytest.raises(UnsupportedModelError, match=match):
        compile_model(est)


def test_text_and_number_on_one_feature_is_an_error():
    from sklearn.compose import ColumnTransformer

    ct = ColumnTransformer([("o", OneHotEncoder(), ["c"]), ("s", StandardScaler(), ["c"])]).fit(pd.DataFrame({"c": [1.0, 2.0, 1.0]}))
    # as if the encoder had been fitted on text: the one input is then text and number
    ct.transformers_[0][1].categories_ = [np.array(["1", "2"], dtype=object)]
    with pytest.raises(CompileError, match="both as a number and as text"):
        compile_model(ct)


# ------------------------------------------------------------------ the zoo


@pytest.mark.parametrize("case", zoo.CASES, ids=lambda c: c.id)
def test_zoo_case(case):
    m = check_zoo_case(case)
    _, X = case.fitted()
    out = evaluate(m.output("transform"), columns_from_matrix(m, X))
    missing = np.array([[v is None or (isinstance(v, float) and np.isnan(v)) for v in row] for row in out])
    assert missing.all(axis=1).sum() <= len(X) // 2  # most rows are scored


def test_zoo_covers_every_preprocessing_estimator():
    names = set()
    for case in zoo.CASES:
        est, _ = case.fitted()
        names.add(type(est).__name__)
        for step in getattr(est, "steps", []):
            names.add(type(step[1]).__name__)
        for _, t, _ in getattr(est, "transformers_", []):
            names.add(type(t).__name__)
    assert {
        "StandardScaler", "MinMaxScaler", "MaxAbsScaler", "RobustScaler", "Normalizer", "Binarizer", "SimpleImputer",
        "OneHotEncoder", "OrdinalEncoder", "KBinsDiscretizer", "PolynomialFeatures", "PCA", "ColumnTransformer", "Pipeline",
    } <= names


def test_docstring_examples():
    import doctest

    from indb.compilers import preprocessing as module

    check_docstring_examples(module, optionflags=doctest.NORMALIZE_WHITESPACE)
