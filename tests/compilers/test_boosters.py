"""XGBoost and LightGBM from their own dumps: IR parity with the boosters, their numeric
corner cases, and the refusals.

End-to-end parity on PostgreSQL, DuckDB and SQLite runs the same zoo cases
(tests/zoo/boosters.py) through tests/test_parity.py.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

xgb = pytest.importorskip("xgboost")
lgb = pytest.importorskip("lightgbm")

from indb import ir  # noqa: E402
from indb.compilers import boosters, compile_model, supported  # noqa: E402
from indb.compilers.trees_shared import float32_lt_bound  # noqa: E402
from indb.errors import UnsupportedModelError  # noqa: E402
from indb.ir.evaluate import columns_from_matrix, evaluate  # noqa: E402
from tests.sql_engines import mismatches  # noqa: E402
from tests.reference import evaluator_output, reference  # noqa: E402
from tests.zoo import boosters as zoo  # noqa: E402


def _fit(est, X, y, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(X, y, **kw)


def _eval(est, X, kind="predict"):
    m = compile_model(est)
    return np.asarray(evaluate(m.output(kind), columns_from_matrix(m, X)))


@pytest.mark.parametrize("case", zoo.CASES, ids=[c.id for c in zoo.CASES])
def test_evaluator_matches_booster(case):
    """Every output on ordinary, missing, extreme and threshold rows equals the booster's own."""
    est, X = case.fitted()
    model = case.compiled()
    for kind in case.outputs:
        ref = reference(est, model, X, kind)
        assert not ref.rejected.any()
        for j, (want, got) in enumerate(zip(ref.columns, evaluator_output(model, X, kind))):
            bad = mismatches(want, got, case.rtol, case.atol)
            assert not bad, f"{case.id} {kind}[{j}]: {len(bad)} rows differ, e.g. {bad[:3]}"


def test_boosters_are_registered():
    names = supported()
    for cls in ("XGBClassifier", "XGBRegressor", "LGBMClassifier", "LGBMRegressor"):
        assert cls in names


# --------------------------------------------------------------------------- XGBoost semantics


def test_probe_rows_catch_a_float64_comparison(monkeypatch):
    """The threshold rows would expose a compiler that compared x < t without rounding x to float32."""
    est, X = zoo.fit_booster("xgb_regression")
    rows = zoo.booster_rows(est, X)
    real = boosters.build_tree
    monkeypatch.setattr(boosters, "build_tree", lambda table, f32, n, root=None: real(table, False, n, root))
    got = _eval(est, rows)
    assert np.abs(got - est.predict(rows)).max() > 1e-3


def test_xgboost_split_is_float32_less_than():
    X = np.array([[0.0], [1.0], [2.0], [3.0]] * 5)
    y = np.array([0.0, 0.0, 10.0, 10.0] * 5)
    est = _fit(xgb.XGBRegressor(n_estimators=1, max_depth=1, learning_rate=1.0, base_score=0.0, n_jobs=1), X, y)
    (split,) = {n for _, _, n in zoo.xgb_splits(est, X)}
    t = float(np.float32(split))
    probes = np.array([[t], [float(np.nextafter(np.float32(t), np.float32(-1)))], [float32_lt_bound(t)], [float(np.nextafter(float32_lt_bound(t), 9))], [np.nan], [1e300], [-1e300], [np.inf]])
    assert _eval(est, probes).tolist() == est.predict(probes).tolist()
    assert len(set(est.predict(probes[:4]).tolist())) == 2  # the probes straddle the split


def test_xgb_half_margin_is_where_float32_sigmoid_passes_one_half():
    m = np.float32(boosters.xgb_half_margin())
    sig = lambda v: np.float32(1) / (np.exp(-v) + np.float32(1))  # noqa: E731
    assert sig(m) <= np.float32(0.5) < sig(np.nextafter(m, np.float32(1)))
    assert m > 0  # a tiny positive margin still gives the negative class


def test_xgboost_uses_best_iteration_only():
    est, X = zoo.fit_booster("xgb_early")
    best = est.get_booster().best_iteration
    assert 0 < best + 1 < 60
    (ens,) = [n for n in ir.walk(compile_model(est).output("predict")) if isinstance(n, ir.TreeEnsemble)]
    assert len(ens.trees) == best + 1


def test_xgboost_base_score_is_a_logit_margin():
    est, X = zoo.fit_booster("xgb_basescore")
    (ens,) = [n for n in ir.walk(compile_model(est).output("predict")) if isinstance(n, ir.TreeEnsemble)]
    assert ens.base[0] == pytest.approx(np.log(0.3 / 0.7), rel=1e-6)


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda X, y: xgb.XGBRegressor(n_estimators=2, booster="dart", n_jobs=1).fit(X, y), "booster='dart'"),
        (lambda X, y: xgb.XGBRegressor(n_estimators=2, booster="gblinear", n_jobs=1).fit(X, y), "booster='gblinear'"),
        (lambda X, y: xgb.XGBRegressor(n_estimators=2, objective="reg:squaredlogerror", n_jobs=1).fit(X, np.abs(y)), "reg:squaredlogerror"),
        (lambda X, y: xgb.XGBClassifier(n_estimators=2, objective="binary:logitraw", n_jobs=1).fit(X, y > 0), "binary:logitraw"),
        (lambda X, y: xgb.XGBRegressor(n_estimators=2, n_jobs=1).fit(X, np.c_[y, -y]), "several targets"),
    ],
)
def test_xgboost_refusals(make, match):
    X, y = zoo._data(100, 3, 1)
    est = _fit_quiet(make, X, y)
    with pytest.raises(UnsupportedModelError, match=match):
        compile_model(est)


def test_xgboost_categorical_split_is_refused():
    import pandas as pd

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.normal(size=200), "c": pd.Categorical(rng.choice(list("pqrs"), 200))})
    y = (df["c"] == "q").astype(float) + df["a"]
    est = _fit(xgb.XGBRegressor(n_estimators=3, enable_categorical=True, tree_method="hist", n_jobs=1), df, y)
    with pytest.raises(UnsupportedModelError, match="categorical"):
        compile_model(est)


def _fit_quiet(make, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return make(X, y)


# --------------------------------------------------------------------------- LightGBM semantics


def test_lightgbm_is_exact_in_float64():
    est, X = zoo.fit_booster("lgb_regression")
    rows = zoo.booster_rows(est, X)
    assert np.array_equal(_eval(est, rows), est.predict(rows))


def test_lightgbm_reads_the_zero_band_as_zero():
    """|x| <= 1e-35 is 0.0 to LightGBM's predictor, even at a threshold of -1e-35."""
    est, X = zoo.fit_booster("lgb_binary")
    rows = np.repeat(X[:20], len(zoo.ZERO_BAND), axis=0)
    rows[:, 0] = np.tile(zoo.ZERO_BAND, 20)
    rows[:, 1] = np.tile(zoo.ZERO_BAND[::-1], 20)
    got, want = _eval(est, rows, "proba"), est.predict_proba(rows)
    assert len({tuple(r) for r in want}) > 1  # the band sits on splits of this model
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)  # exact but for exp's last bit


def test_lightgbm_categorical_truncates_like_lightgbm():
    est, X = zoo.fit_booster("lgb_categorical")
    values = [v for c in range(-2, 14) for v in (c, c + 0.25, c + 0.75)] + [np.nan, 2.0**31, 2.0**31 - 1, -1e300, 1e300, -0.0]
    rows = np.repeat(X[:3], len(values), axis=0)
    rows[:, 5] = np.tile(values, 3)
    assert np.array_equal(_eval(est, rows), est.predict(rows))
    assert len(set(est.predict(rows).tolist())) > 3  # the categorical split matters here


def test_lightgbm_pandas_categorical_is_refused():
    import pandas as pd

    rng = np.random.default_rng(1)
    df = pd.DataFrame({"a": rng.normal(size=300), "c": pd.Categorical(rng.choice(list("pqrs"), 300))})
    y = (df["c"] == "q").astype(float) * 3 + df["a"]
    est = _fit(lgb.LGBMRegressor(n_estimators=3, min_child_samples=5, min_data_per_group=5, verbose=-1, n_jobs=1), df, y)
    with pytest.raises(UnsupportedModelError, match="pandas categorical"):
        compile_model(est)


@pytest.mark.parametrize(
    "params,match",
    [
        ({"linear_tree": True}, "linear trees"),
        ({"objective": "regression", "reg_sqrt": True}, "reg_sqrt"),
        ({"objective": "cross_entropy_lambda"}, "cross_entropy_lambda"),
    ],
)
def test_lightgbm_refusals(params, match):
    X, y = zoo._data(200, 3, 2)
    y = (y > 0).astype(float) if "cross_entropy" in params.get("objective", "") else y
    est = _fit(lgb.LGBMRegressor(n_estimators=3, min_child_samples=5, verbose=-1, n_jobs=1, **params), X, y)
    with pytest.raises(UnsupportedModelError, match=match):
        compile_model(est)


def test_lightgbm_custom_objective_is_refused():
    X, y = zoo._data(200, 3, 3)

    def l2(y_true, y_pred):
        return y_pred - y_true, np.ones_like(y_true)

    est = _fit(lgb.LGBMRegressor(n_estimators=3, objective=l2, verbose=-1, n_jobs=1), X, y)
    with pytest.raises(UnsupportedModelError, match="objective"):
        compile_model(est)


@pytest.mark.slow
def test_bench_xgboost_factory():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(600, 20))
    est = zoo.bench_xgboost(X, X @ rng.normal(size=20))
    (ens,) = [n for n in ir.walk(compile_model(est).output("predict")) if isinstance(n, ir.TreeEnsemble)]
    assert len(ens.trees) == 200 and max(t.depth() for t in ens.trees) == 6
    got = _eval(est, X[:200])
    np.testing.assert_allclose(got, est.predict(X[:200]), rtol=1e-6, atol=1e-5)


def test_xgboost_missing_parameter_and_dataframe_names():
    import pandas as pd

    X, y = zoo._data(300, 4, 5)
    X = np.where(np.isnan(X), -999.0, X)
    df = pd.DataFrame(X, columns=["age", "income", "score", "tenure"])
    est = _fit(xgb.XGBRegressor(n_estimators=8, max_depth=3, missing=-999.0, n_jobs=1), df, y)
    m = compile_model(est)
    assert m.feature_names == ("age", "income", "score", "tenure")
    rows = df.iloc[:60].copy()
    rows.iloc[::3, 2] = -999.0
    rows.iloc[1::3, 0] = float(np.float32(-999.0)) + 1e-5  # rounds to -999 in float32: missing too
    rows.iloc[2::3, 1] = np.nan
    got = evaluate(m.output("predict"), columns_from_matrix(m, rows))
    np.testing.assert_allclose(got, est.predict(rows), rtol=1e-6, atol=1e-6)
