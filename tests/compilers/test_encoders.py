"""TargetEncoder: model -> IR structure, IR parity with scikit-learn's transform, in pipelines."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import TargetEncoder

from indb import ir
from indb.compilers import compile_model
from indb.errors import UnsupportedModelError
from indb.ir.evaluate import columns_from_matrix, evaluate
from tests.compilers.parity import check_docstring_examples, check_parity, check_zoo_case
from tests.zoo import encoders as zoo
from tests.zoo.preprocessing import _fit



def _frame(n=400, seed=0):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "city": rng.choice([f"c{i:02d}" for i in range(25)], n),
            "grade": rng.choice([1.0, 2.0, 3.0, 7.5], n),
            "shop": rng.choice(["a", "b", "c"], n),
        }
    )
    df.loc[rng.random(n) < 0.1, "city"] = None
    df.loc[rng.random(n) < 0.1, "grade"] = np.nan
    score = df["city"].fillna("c00").str[1:].astype(int) * 0.1 + df["grade"].fillna(0) + rng.normal(size=n)
    return df, score.to_numpy()


def _edges(df):
    extra = pd.DataFrame({"city": ["nowhere", None, "", "c03"], "grade": [4.0, np.nan, 1e300, -1e300], "shop": ["z", None, "a", "b"]})
    return pd.concat([df, extra], ignore_index=True)


# ------------------------------------------------------------------ structure


def test_ir_is_a_lookup_with_the_target_mean_for_unknown_values():
    X = np.array([["a"], ["b"], ["a"], ["b"]] * 5, dtype=object)
    est = _fit(TargetEncoder(), X, np.linspace(0.0, 1.0, 20))
    (item,) = compile_model(est).output("transform").items
    c = ir.Feature("x0", ir.TEXT)
    assert item == ir.Case(
        (
            (ir.Compare("==", c, ir.const("a")), ir.const(float(est.encodings_[0][0]))),
            (ir.Compare("==", c, ir.const("b")), ir.const(float(est.encodings_[0][1]))),
        ),
        ir.const(float(est.target_mean_)),
    )


def test_multiclass_columns_are_input_major():
    df, score = _frame()
    y = np.asarray(["lo", "mid", "hi"], dtype=object)[np.digitize(score, np.quantile(score, [1 / 3, 2 / 3]))]
    est = _fit(TargetEncoder(), df, y)
    items = compile_model(est).output("transform").items
    assert len(items) == 3 * 3
    # column 4 is input 1 (grade), class 1; unknown values get that class's mean
    assert items[4].default == ir.const(float(est.target_mean_[1]))
    assert items[4].whens[0][0].left == ir.Feature("grade")


# ------------------------------------------------------------------ parity


@pytest.mark.parametrize("target", ["continuous", "binary", "multiclass"])
@pytest.mark.parametrize("smooth", ["auto", 5.0])
def test_transform_parity(target, smooth):
    df, score = _frame()
    y = {
        "continuous": score,
        "binary": np.where(score > np.median(score), "yes", "no"),
        "multiclass": np.digitize(score, np.quantile(score, [0.25, 0.5, 0.75])),
    }[target]
    est = _fit(TargetEncoder(smooth=smooth, random_state=0), df, y)
    Xt = _edges(df)
    m = check_parity(est, Xt, ("transform",))
    got = evaluate(m.output("transform"), columns_from_matrix(m, Xt))
    assert np.isfinite(got).all()  # unknown, missing and huge values all have an encoding


def test_huge_numeric_categories_are_unknown():
    df, score = _frame()
    est = _fit(TargetEncoder(), df[["grade"]], score)
    rows = pd.DataFrame({"grade": [1e300, -1e300, 2.0, np.nan]})
    check_parity(est, rows, ("transform",))


def test_missing_category_not_seen_in_training_is_unknown():
    df, score = _frame()
    df = df.dropna()
    est = _fit(TargetEncoder(), df, score[df.index])
    rows = pd.DataFrame({"city": [None, "c01"], "grade": [np.nan, 2.0], "shop": [None, "b"]})
    m = check_parity(est, rows, ("transform",))
    assert evaluate(m.output("transform"), columns_from_matrix(m, rows))[0].tolist() == [float(est.target_mean_)] * 3


@pytest.mark.parametrize("final", [LogisticRegression(max_iter=2000), Ridge()], ids=["logistic", "ridge"])
def test_in_a_column_transformer_pipeline(final):
    df, score = _frame()
    y = np.where(score > np.median(score), "yes", "no") if isinstance(final, LogisticRegression) else score
    pre = ColumnTransformer([("te", TargetEncoder(random_state=0), ["city", "shop"])], remainder="passthrough")
    est = _fit(make_pipeline(pre, final), df.fillna({"grade": 0.0}), y)
    kinds = ("predict", "proba", "decision") if isinstance(final, LogisticRegression) else ("predict",)
    check_parity(est, _edges(df.fillna({"grade": 0.0})), kinds)


# ------------------------------------------------------------------ refusals


def test_none_and_nan_as_two_categories_are_refused():
    X = pd.DataFrame({"c": pd.Series(["a", None, np.nan, "b"] * 5, dtype=object)})
    est = _fit(TargetEncoder(), X, np.linspace(0, 1, 20))
    assert len(est.categories_[0]) == 4  # scikit-learn keeps None and NaN apart; SQL has one NULL
    with pytest.raises(UnsupportedModelError, match="TargetEncoder: feature 0 with both None and NaN as categories"):
        compile_model(est)


# ------------------------------------------------------------------ the zoo


@pytest.mark.parametrize("case", zoo.CASES, ids=lambda c: c.id)
def test_zoo_case(case):
    check_zoo_case(case)


def test_zoo_pipeline_is_not_toy():
    est, X = next(c for c in zoo.CASES if c.id == "target_encoder_customers_logistic").fitted()
    assert est.n_features_in_ >= 20 and len(est.classes_) == 3 and isinstance(est.classes_[0], str)


def test_docstring_examples():
    from indb.compilers import encoders as module

    check_docstring_examples(module)
