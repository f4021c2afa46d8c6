"""Zoo cases: TargetEncoder (transform), alone and feeding a classifier.

Rows: ordinary rows, and per categorical column an unseen category, NULL and the empty
string; per numeric category column an unseen number, +-1e300 and NaN. The encoders
were fitted on data with missing values, so NULL/NaN has an encoding of its own; an
unseen value gets the target mean. In the pipeline case (25 input columns, three
classes), the numeric columns also get +-1e300 and NaN (imputed by the pipeline).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from tests.zoo import ZooCase
from tests.zoo.linear import _rng, customer_edge_rows, customers, frame_edge_rows


def _frame(n: int, k: int) -> pd.DataFrame:
    rng = _rng(k)
    df = pd.DataFrame(
        {
            "city": rng.choice(["oslo", "lima", "pune", "kobe", "nice", "york"], n),
            "tier": rng.choice([1.0, 2.0, 3.0, 5.0], n),
            "brand": rng.choice(["acme", "globex", "initech"], n, p=[0.5, 0.3, 0.2]),
        }
    )
    df.loc[rng.random(n) < 0.08, "city"] = None
    df.loc[rng.random(n) < 0.08, "tier"] = np.nan
    return df


def _edges(df: pd.DataFrame) -> pd.DataFrame:
    variants = {"city": ["atlantis", None, ""], "brand": ["unknown", None], "tier": [4.0, 1e300, -1e300, np.nan]}
    return pd.concat([df.iloc[:60], frame_edge_rows(df, variants)], ignore_index=True)


def _target_encoder(target_type: str, k: int):
    def make():
        from sklearn.preprocessing import TargetEncoder

        df = _frame(300, k)
        rng = _rng(k + 1)
        score = (df["city"] == "oslo") * 1.5 + df["tier"].fillna(2.0) * 0.4 + rng.normal(size=len(df))
        if target_type == "continuous":
            y = score.to_numpy()
        elif target_type == "binary":
            y = np.where(score > score.median(), "churn", "stay")
        else:
            y = np.asarray(["low", "mid", "high"], dtype=object)[np.digitize(score, np.quantile(score, [1 / 3, 2 / 3]))]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est = TargetEncoder(target_type=target_type, random_state=0).fit(df, y)
        return est, _edges(df)

    return make


def _customers_pipeline():
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler, TargetEncoder

    from tests.zoo.linear import _churn_target

    df = customers(400, k=7)
    y = _churn_target(df, ["stay", "downgrade", "churn"])
    numeric = [c for c in df.columns if c.startswith("m")]
    pre = ColumnTransformer([("te", TargetEncoder(random_state=0), ["plan", "region", "channel"]), ("num", make_pipeline(SimpleImputer(), StandardScaler()), numeric)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = make_pipeline(pre, LogisticRegression(max_iter=2000)).fit(df, y)
    return est, pd.concat([df.iloc[:60], customer_edge_rows(df)], ignore_index=True)


CASES: list[ZooCase] = [
    ZooCase("target_encoder_continuous", _target_encoder("continuous", 110), outputs=("transform",)),
    ZooCase("target_encoder_binary_text", _target_encoder("binary", 111), outputs=("transform",)),
    ZooCase("target_encoder_multiclass", _target_encoder("multiclass", 112), outputs=("transform",)),
    ZooCase("target_encoder_customers_logistic", _customers_pipeline, outputs=("predict", "proba", "decision")),
]
