"""Zoo cases: encoders and imputers feeding models, where an *encoded* value must stay a value.

Issue 14 item 2: an encoder writes numbers for missing, unknown and infrequent
categories (OrdinalEncoder's ``encoded_missing_value``/``unknown_value``, OneHotEncoder's
infrequent column and dropped category, TargetEncoder's target mean, SimpleImputer's
statistic and indicator, KBinsDiscretizer's bin number); the model downstream must see
those numbers, and treat as missing only what is really NaN (``unknown_value=np.nan``).
Each case is one encoder x one of HistGradientBoostingClassifier, RandomForestClassifier
and LogisticRegression, over a frame with NULL in both category columns and NaN in a
numeric one, scored on ordinary rows plus unseen categories, NULL, the empty string,
infrequent categories, and +-1e300 / NaN in the numbers.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from tests.zoo import ZooCase
from tests.zoo.linear import frame_edge_rows

SEED = 20240615


def _frame(n: int = 1200) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(SEED)
    df = pd.DataFrame(
        {
            "c": rng.choice(["a", "b", "c", "d", "e", "f"], n, p=[0.32, 0.28, 0.2, 0.12, 0.05, 0.03]),
            "d": rng.choice(["u", "v", "w"], n, p=[0.5, 0.45, 0.05]),
            "x": rng.normal(size=n) * 3.0,
            "z": rng.uniform(-5.0, 5.0, n),
        }
    )
    df.loc[rng.random(n) < 0.06, "c"] = None
    df.loc[rng.random(n) < 0.04, "d"] = None
    df.loc[rng.random(n) < 0.05, "x"] = np.nan
    score = (
        df["c"].isin(["a", "f"]) * 1.5
        + df["c"].isna() * np.where(df["z"] > 0, 2.5, -2.5)  # a missing category carries signal
        + (df["d"] == "w") * 1.0
        - df["d"].isna() * 1.5
        + df["x"].fillna(4.0) * 0.3
        + rng.normal(size=n) * 0.5
    )
    y = np.asarray(["lo", "mid", "hi"], dtype=object)[np.digitize(score, np.quantile(score, [0.4, 0.75]))]
    return df, y


def _rows(df: pd.DataFrame) -> pd.DataFrame:
    edges = frame_edge_rows(
        df,
        {
            "c": ["unseen", None, "", "e", "f"],
            "d": ["zz", None, "w"],
            "x": [np.nan, 0.0, 1e300, -1e300],
            "z": [1e300, -1e300],
        },
    )
    missing_c = df[df["c"].isna()].iloc[:40]  # the rows the issue saw differ
    return pd.concat([df.iloc[:150], missing_c, edges], ignore_index=True)


def _encoders():
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import KBinsDiscretizer, OneHotEncoder, OrdinalEncoder, TargetEncoder

    # name -> (encoder of the category columns, transformer of the numeric columns)
    imputed = lambda: SimpleImputer(add_indicator=True)  # noqa: E731
    return {
        "ordinal_encoded": lambda: (OrdinalEncoder(encoded_missing_value=-2, handle_unknown="use_encoded_value", unknown_value=-1), imputed()),
        "ordinal_infrequent": lambda: (OrdinalEncoder(encoded_missing_value=-2, handle_unknown="use_encoded_value", unknown_value=-1, min_frequency=50), imputed()),
        "ordinal_nan": lambda: (OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan), imputed()),
        "onehot_infrequent": lambda: (OneHotEncoder(handle_unknown="infrequent_if_exist", max_categories=4), imputed()),
        "onehot_drop": lambda: (OneHotEncoder(handle_unknown="ignore", drop="first", min_frequency=50), imputed()),
        "target": lambda: (TargetEncoder(random_state=0), imputed()),
        "kbins": lambda: (
            OrdinalEncoder(encoded_missing_value=-2, handle_unknown="use_encoded_value", unknown_value=-1),
            make_pipeline(SimpleImputer(strategy="median", add_indicator=True), KBinsDiscretizer(n_bins=4, encode="onehot-dense", quantile_method="averaged_inverted_cdf")),
        ),
    }


def _models():
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    return {
        "hgb": lambda categorical: HistGradientBoostingClassifier(max_iter=25, max_depth=4, random_state=0, categorical_features=categorical),
        "forest": lambda categorical: RandomForestClassifier(n_estimators=15, max_depth=6, random_state=0),
        "logistic": lambda categorical: LogisticRegression(max_iter=3000),
    }


def _case(encoder: str, model: str):
    def make():
        from sklearn.compose import ColumnTransformer
        from sklearn.pipeline import make_pipeline

        df, y = _frame()
        enc, num = _encoders()[encoder]()
        ct = ColumnTransformer([("cat", enc, ["c", "d"]), ("num", num, ["x", "z"])])
        # HistGradientBoosting also splits the ordinal codes as categories (codes -2, -1 included)
        categorical = [0, 1] if encoder.startswith("ordinal") and encoder != "ordinal_nan" else None
        est = make_pipeline(ct, _models()[model](categorical))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(df, y)
        return est, _rows(df)

    return make


_OUTPUTS = {"hgb": ("predict", "proba"), "forest": ("predict", "proba"), "logistic": ("predict", "proba", "decision")}

CASES: list[ZooCase] = [
    ZooCase(f"{encoder}_{model}", _case(encoder, model), outputs=_OUTPUTS[model], tags=frozenset({"text"}))
    for encoder in ("ordinal_encoded", "ordinal_infrequent", "ordinal_nan", "onehot_infrequent", "onehot_drop", "target", "kbins")
    for model in ("hgb", "forest", "logistic")
    if (encoder, model) != ("ordinal_nan", "logistic")  # LogisticRegression cannot be fitted on NaN
]
