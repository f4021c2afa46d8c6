"""Zoo cases: calibration, voting and stacking over supported members.

Rows: ordinary rows, all zeros, and each feature in turn at +1e300, -1e300 and NaN.
Every member here refuses NaN, so those rows come back NULL. Tree members refuse
values beyond float32 (+-1e300): for those rows the expectation is indb's documented
tree rule (see ``tests/reference.py``).
"""

from __future__ import annotations

import warnings

from tests.zoo import ZooCase
from tests.zoo.linear import _classes, _data, _labels, _with_edges
from tests.zoo.linear import _fit as _fit_quietly


def _fit(make_est, names: list | None, d: int, k: int):
    def make():
        X, y = _data(300, d, k)
        return _fit_quietly(make_est(), X, y if names is None else _classes(y, names)), _with_edges(X)

    return make


def _calibrated(method: str, base: str, **kw):
    def est():
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.linear_model import LogisticRegression
        from sklearn.svm import LinearSVC

        member = {"logistic": lambda: LogisticRegression(max_iter=1000), "linear_svc": lambda: LinearSVC()}[base]()
        return CalibratedClassifierCV(member, method=method, **kw)

    return est


def _calibrated_frozen_tree():
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.frozen import FrozenEstimator
    from sklearn.tree import DecisionTreeClassifier

    X, y = _data(300, 6, 93)
    labels = _labels(y, ["no", "yes"], [0.5])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tree = DecisionTreeClassifier(max_depth=3, random_state=0).fit(X[:150], labels[:150])
        est = CalibratedClassifierCV(FrozenEstimator(tree)).fit(X[150:], labels[150:])
    return est, _with_edges(X)


def _voting(voting: str, weights=None):
    def est():
        from sklearn.ensemble import VotingClassifier
        from sklearn.linear_model import LogisticRegression
        from sklearn.naive_bayes import GaussianNB
        from sklearn.tree import DecisionTreeClassifier

        third = DecisionTreeClassifier(max_depth=3, random_state=0) if voting == "soft" else LogisticRegression(C=0.01, max_iter=1000)
        return VotingClassifier([("lr", LogisticRegression(max_iter=1000)), ("nb", GaussianNB()), ("third", third)], voting=voting, weights=weights)

    return est


def _voting_regressor():
    from sklearn.ensemble import VotingRegressor
    from sklearn.linear_model import LinearRegression, Ridge
    from sklearn.tree import DecisionTreeRegressor

    return VotingRegressor([("ols", LinearRegression()), ("ridge", Ridge(alpha=5.0)), ("tree", DecisionTreeRegressor(max_depth=3, random_state=0))], weights=[2.0, 1.0, 0.5])


def _stacking(final: str, passthrough: bool = False, stack_method: str = "auto"):
    def est():
        from sklearn.ensemble import StackingClassifier
        from sklearn.linear_model import LogisticRegression
        from sklearn.naive_bayes import GaussianNB
        from sklearn.tree import DecisionTreeClassifier

        final_est = {"logistic": LogisticRegression(max_iter=1000), "tree": DecisionTreeClassifier(max_depth=3, random_state=0)}[final]
        members = [("lr", LogisticRegression(max_iter=1000)), ("nb", GaussianNB())]
        return StackingClassifier(members, final_estimator=final_est, passthrough=passthrough, stack_method=stack_method, cv=3)

    return est


def _stacking_regressor():
    from sklearn.ensemble import StackingRegressor
    from sklearn.linear_model import LinearRegression, Ridge
    from sklearn.tree import DecisionTreeRegressor

    members = [("ols", LinearRegression()), ("tree", DecisionTreeRegressor(max_depth=3, random_state=0))]
    return StackingRegressor(members, final_estimator=Ridge(alpha=1.0), passthrough=True, cv=3)


PROBA = ("predict", "proba")

CASES: list[ZooCase] = [
    ZooCase("calibrated_sigmoid_logistic_text", _fit(_calibrated("sigmoid", "logistic", cv=3), ["low", "mid", "high"], 6, 90), outputs=PROBA),
    ZooCase("calibrated_isotonic_logistic", _fit(_calibrated("isotonic", "logistic", cv=3), [1, 2, 3], 5, 91), outputs=PROBA),
    ZooCase("calibrated_isotonic_linear_svc_binary", _fit(_calibrated("isotonic", "linear_svc", cv=2, ensemble=False), ["no", "yes"], 8, 92), outputs=PROBA),
    ZooCase("calibrated_sigmoid_frozen_tree", _calibrated_frozen_tree, outputs=PROBA),
    ZooCase("voting_soft_weighted_text", _fit(_voting("soft", weights=[1.0, 2.0, 0.5]), ["a", "b", "c"], 6, 94), outputs=PROBA),
    ZooCase("voting_hard", _fit(_voting("hard", weights=[2, 1, 1]), ["x", "y", "z"], 5, 95)),
    ZooCase("voting_regressor_weighted", _fit(_voting_regressor, None, 6, 96)),
    ZooCase("stacking_classifier_text", _fit(_stacking("logistic"), ["red", "green", "blue"], 6, 97), outputs=("predict", "proba", "decision")),
    ZooCase("stacking_classifier_passthrough_binary", _fit(_stacking("logistic", passthrough=True), [0, 1], 5, 98), outputs=("predict", "proba", "decision")),
    ZooCase("stacking_classifier_tree_final", _fit(_stacking("tree", stack_method="predict"), ["p", "q", "r"], 5, 99), outputs=PROBA),
    ZooCase("stacking_regressor_passthrough", _fit(_stacking_regressor, None, 6, 100)),
]
