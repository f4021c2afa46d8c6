"""Zoo cases: kernel SVMs (SVC/NuSVC: predict, decision_function; SVR/NuSVR: predict).

Rows: ordinary rows, all zeros, and each feature in turn at +1e300, -1e300 and NaN
(scikit-learn refuses NaN: every output NULL). +-1e300 makes the rbf kernel 0, and the
linear/poly/sigmoid kernels huge or infinite, where libsvm's sums can reach
``inf - inf = NaN`` and its vote rules (``NaN > 0`` is false) decide the label.
Infinite inputs are left out: libsvm models refuse them. The training sets are small
(150 rows) to keep the number of support vectors, and so the SQL, modest.
"""

from __future__ import annotations

from tests.zoo import ZooCase
from tests.zoo.linear import _classes, _data, _fit, _with_edges, lazy


def _svm(name: str, names: list | None, d: int, k: int, **kw):
    def make():
        X, y = _data(150, d, k)
        X = (X - X.mean(axis=0)) / X.std(axis=0)
        return _fit(lazy("sklearn.svm", name)(**kw)(), X, y if names is None else _classes(y, names)), _with_edges(X)

    return make


CLF = ("predict", "decision")

CASES: list[ZooCase] = [
    ZooCase("svc_rbf_ovr_text", _svm("SVC", ["north", "east", "south", "west"], 6, 70, C=2.0), outputs=CLF),
    ZooCase("svc_linear_ovo", _svm("SVC", [1, 2, 3], 5, 71, kernel="linear", decision_function_shape="ovo"), outputs=CLF),
    ZooCase("svc_poly_break_ties", _svm("SVC", ["a", "b", "c"], 4, 72, kernel="poly", degree=3, coef0=1.0, break_ties=True), outputs=CLF),
    ZooCase("svc_sigmoid_binary_20f", _svm("SVC", ["no", "yes"], 20, 73, kernel="sigmoid", gamma=0.01), outputs=CLF),
    ZooCase("svc_rbf_probability_binary", _svm("SVC", [0, 1], 5, 74, probability=True, random_state=0), outputs=CLF),
    ZooCase("nusvc_rbf", _svm("NuSVC", ["lo", "mid", "hi"], 5, 75, nu=0.3), outputs=CLF),
    ZooCase("svr_rbf", _svm("SVR", None, 6, 76, C=3.0)),
    ZooCase("svr_poly_degree4", _svm("SVR", None, 4, 77, kernel="poly", degree=4, gamma=0.3)),
    ZooCase("nusvr_linear_20f", _svm("NuSVR", None, 20, 78, kernel="linear", nu=0.2)),
    ZooCase("svr_sigmoid", _svm("SVR", None, 5, 79, kernel="sigmoid", gamma=0.05)),
]
