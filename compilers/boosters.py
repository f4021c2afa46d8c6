"""XGBoost and LightGBM models, compiled from the boosters' own dumps.

Registered for ``xgboost.XGBClassifier``/``XGBRegressor`` and
``lightgbm.LGBMClassifier``/``LGBMRegressor`` when those libraries are installed (indb
works without them). Each model becomes one ``ir.TreeEnsemble`` (one output per class
for multiclass models), built with the same tree builder as the ONNX front end
(``indb.compilers.trees_shared.build_tree``)::

    >>> import numpy as np, xgboost
    >>> from indb.compilers import compile_model
    >>> X = np.arange(20.0).reshape(10, 2)
    >>> m = compile_model(xgboost.XGBRegressor(n_estimators=2, max_depth=2).fit(X, X[:, 0]))
    >>> m.output_kinds
    ('predict',)

XGBoost (``Booster.get_dump(dump_format="json")`` for the trees, ``save_config()`` for
the objective and the intercept):

* **Splits** go to ``yes`` when ``float32(x) < split_condition`` (XGBoost stores the
  data as float32 and thresholds as float32); the IR folds the cast into a float64 bound
  (``onnx.float32_lt_bound``), so it is exact for every float64 input, +-inf and values
  beyond the float32 range included (they round to +-inf, as XGBoost's cast does).
* **Missing values** (NULL, NaN, and values equal in float32 to the estimator's
  ``missing`` parameter when it is not NaN) go to the node's learned ``missing`` child.
* **The margin** is ``base_margin + leaf_1 + leaf_2 + ...`` per output group (tree ``i``
  belongs to class ``(i // num_parallel_tree) % num_class``), where ``base_margin`` is the
  model's ``base_score`` through the objective's inverse link (logit for
  ``binary:logistic``/``reg:logistic``, log for ``count:poisson``/``reg:gamma``/
  ``reg:tweedie``, identity otherwise). Only the rounds ``predict`` uses are compiled
  (``best_iteration + 1`` after early stopping).
* **Outputs**: ``binary:logistic`` gives ``predict_proba = [1 - p, p]`` with ``p =
  expit(margin)`` and ``predict = 1`` when XGBoost's float32 ``p > 0.5``, i.e. when the
  margin is above the float32 value where its float32 sigmoid first exceeds 0.5
  (:func:`xgb_half_margin`, about 6e-8 rather than 0); ``multi:softprob`` and
  ``multi:softmax`` give softmax probabilities and the class of the largest margin;
  ``reg:squarederror``, ``reg:absoluteerror``, ``reg:pseudohubererror`` the margin;
  ``reg:logistic`` its expit; ``count:poisson``, ``reg:gamma``, ``reg:tweedie`` its exp.
  Other objectives, ``dart`` and ``gblinear`` boosters, categorical splits, vector leaves
  and multi-target models are refused by name.
* **Precision**: XGBoost adds the leaves and applies the link in float32; the IR does it
  in float64 from the same float32 leaves, so numbers agree to about 1e-6 relative
  (1e-7 per addition), and labels agree except for rows whose float32 margins tie
  between classes or fall within float32 rounding of the binary decision margin.

LightGBM (``Booster.dump_model()``): LightGBM predicts in float64 with float64
thresholds, so the IR reproduces it to the last bit but for ``exp`` rounding:

* **Numeric splits** go left when ``x <= threshold``, where LightGBM's predictor first
  reads every ``|x| <= kZeroThreshold`` (1e-35 as a float, widened) as 0.0: a
  threshold inside that band splits it as 0.0 would go. Missing values follow the
  node's ``missing_type``: ``None`` treats NaN as 0.0; ``NaN`` sends NaN to the
  ``default_left`` side; ``Zero`` sends NaN and the zero band to the default side,
  which can cut the axis into four intervals: the builder writes those as up to three
  tests with copied subtrees.
* **Categorical splits** (``decision_type == "=="``, categories ``"1||3||5"`` going
  left): LightGBM truncates the value to ``int``; NaN, negative results and values from
  2**31 up (which the x86 conversion turns negative) go right. The IR splits on the code
  ``floor(max(x, 0))`` for ``-1 < x < 2**31`` (else -1, outside every set), so 3.7 is
  category 3 and -0.5 category 0, as in LightGBM. Models trained on pandas categorical
  columns (``pandas_categorical``) are refused: their string-to-code mapping lives in
  Python, outside the booster.
* **Outputs**: raw scores per class are sums of the class's trees in order (divided by
  the number of iterations for ``average_output``, the random-forest mode); ``binary``
  gives ``p = expit(sigmoid * raw)``, ``[1 - p, p]``; ``multiclass`` the softmax;
  ``multiclassova`` one sigmoid per class; ``predict`` is the class of the largest
  probability (``classes_[argmax]``, the first on ties), for ``multiclass`` taken from
  the raw scores (the softmax keeps their order; LightGBM's label can differ only where
  two float64 probabilities round to the same value while the raw scores differ, i.e.
  raw scores within about 1e-16 relative of each other). Regression objectives give the
  raw score (``regression``, ``regression_l1``, ``huber``, ``fair``, ``quantile``,
  ``mape``), ``exp`` of it (``poisson``, ``gamma``, ``tweedie``) or ``expit``
  (``cross_entropy``). Other objectives (ranking, ``regression`` with ``sqrt``, custom
  ones) and linear trees are refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from indb import ir
from indb.compilers.trees_shared import SplitTable, build_tree, compare_const, ensemble, softmax_exprs
from indb.compilers.converters import Compiled, Context, python_scalar, register
from indb.errors import UnsupportedModelError

try:
    import xgboost
except ImportError:  # optional: indb works without it
    xgboost = None  # type: ignore[assignment]

try:
    import lightgbm
except ImportError:  # optional: indb works without it
    lightgbm = None  # type: ignore[assignment]


def _labels(est: Any) -> tuple:
    values = [python_scalar(c) for c in est.classes_]
    if all(isinstance(v, str) for v in values):
        return tuple(values)
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        raise UnsupportedModelError(f"{type(est).__name__} has class labels of mixed or unsupported types; indb supports all-numeric or all-string labels")
    return tuple(float(v) for v in values)


def _float_inputs(inputs: Sequence[ir.Expr], ctx: Context, what: str) -> list[ir.Expr]:
    return [ctx.as_float(x, what) for x in inputs]


# --------------------------------------------------------------------------- XGBoost

XGB_IDENTITY = ("reg:squarederror", "reg:absoluteerror", "reg:pseudohubererror")
XGB_EXP = ("count:poisson", "reg:gamma", "reg:tweedie")
XGB_LOGISTIC = ("binary:logistic", "reg:logistic")
XGB_MULTI = ("multi:softprob", "multi:softmax")
XGB_OBJECTIVES = XGB_IDENTITY + XGB_EXP + XGB_LOGISTIC + XGB_MULTI


def xgb_half_margin() -> float:
    """The largest float32 margin ``m`` whose XGBoost sigmoid is not above 0.5.

    XGBoost computes ``1 / (1 + expf(-m))`` in float32 and labels a row 1 when that is
    ``> 0.5``; for tiny positive ``m`` ``expf(-m)`` rounds to 1 and the probability to
    exactly 0.5.

    >>> 0 < xgb_half_margin() < 1e-6
    True
    """
    one = np.float32(1.0)

    def above(m: np.float32) -> bool:
        with np.errstate(over="ignore"):
            return bool(one / (np.exp(-m) + one) > np.float32(0.5))

    lo, hi = np.float32(0.0), np.float32(1e-3)  # above(hi) holds, above(lo) does not
    lo_i, hi_i = int(lo.view(np.int32)), int(hi.view(np.int32))
    while hi_i - lo_i > 1:
        mid = (lo_i + hi_i) // 2
        if above(np.int32(mid).view(np.float32)):
            hi_i = mid
        else:
            lo_i = mid
    return float(np.int32(lo_i).view(np.float32))


def _xgb_config(booster: Any) -> dict:
    cfg = json.loads(booster.save_config())
    learner = cfg["learner"]
    gb = learner["gradient_booster"]
    if gb.get("name") != "gbtree":
        raise UnsupportedModelError(f"XGBoost booster={gb.get('name')!r} is not supported; indb compiles booster='gbtree'")
    strategy = learner.get("learner_train_param", {}).get("multi_strategy", "one_output_per_tree")
    if strategy != "one_output_per_tree":
        raise UnsupportedModelError(f"XGBoost multi_strategy={strategy!r} (vector leaves) is not supported")
    lmp = learner["learner_model_param"]
    if int(lmp.get("num_target", "1")) > 1:
        raise UnsupportedModelError("XGBoost models with several targets are not supported; fit one model per target")
    objective = learner["objective"]["name"]
    if objective not in XGB_OBJECTIVES:
        raise UnsupportedModelError(f"XGBoost objective {objective!r} is not supported; supported: {', '.join(XGB_OBJECTIVES)}")
    base = np.asarray(json.loads(lmp["base_score"].replace("E", "e")) if lmp["base_score"].startswith("[") else [float(lmp["base_score"])], dtype=np.float32)
    return {
        "objective": objective,
        "base_score": base,
        "num_class": int(lmp.get("num_class", "0")),
        "num_parallel_tree": int(gb.get("gbtree_model_param", {}).get("num_parallel_tree", "1")),
    }


def xgb_base_margin(objective: str, base_score: float) -> float:
    """``base_score`` through the objective's inverse link, in float32 like XGBoost."""
    b = np.float32(base_score)
    with np.errstate(divide="ignore"):
        if objective in XGB_LOGISTIC:
            return float(-np.log(np.float32(1.0) / b - np.float32(1.0)))
        if objective in XGB_EXP:
            return float(np.log(b))
    return float(b)


def _xgb_table(tree: dict, feature_index: dict[str, int]) -> SplitTable:
    """One tree of ``get_dump(dump_format="json")`` as a split table (``x < t``, learned missing child)."""
    table = SplitTable()
    ids: dict[int, int] = {}
    nodes: dict[int, dict] = {}
    stack = [tree]
    while stack:
        n = stack.pop()
        nodes[n["nodeid"]] = n
        stack.extend(n.get("children", []))
    for nid, n in nodes.items():
        if "leaf" in n:
            ids[nid] = table.add_leaf((float(np.float32(n["leaf"])),))
        elif "split_condition" not in n:
            raise UnsupportedModelError("XGBoost categorical splits are not supported; train with numeric features (enable_categorical=False)")
    # internal nodes are added in this order, so their table indices are known up front
    pending = [nid for nid, n in nodes.items() if "leaf" not in n]
    for i, nid in enumerate(pending):
        ids[nid] = i
    for nid in pending:
        n = nodes[nid]
        name = n["split"]
        if name not in feature_index:
            raise UnsupportedModelError(f"XGBoost tree splits on unknown feature {name!r}")
        yes, no, missing = n["yes"], n["no"], n["missing"]
        if missing not in (yes, no):
            raise UnsupportedModelError(f"XGBoost node {nid}: missing child {missing} is neither the yes nor the no child")
        table.add_node(feature_index[name], "LT", float(np.float32(n["split_condition"])), ids[yes], ids[no], missing == yes)
    table.root = ids[tree["nodeid"]]
    return table


def xgboost_ensemble(booster: Any, inputs: Sequence[ir.Expr]) -> tuple[ir.TreeEnsemble, dict]:
    """The margins of an XGBoost booster as one tree ensemble (one output per class group)."""
    cfg = _xgb_config(booster)
    n_groups = cfg["num_class"] if cfg["num_class"] > 1 else 1
    per_round = n_groups * cfg["num_parallel_tree"]
    dumps = booster.get_dump(dump_format="json")
    best = booster.attr("best_iteration")
    if best is not None:
        dumps = dumps[: (int(best) + 1) * per_round]
    names = booster.feature_names or [f"f{i}" for i in range(len(inputs))]
    if len(names) != len(inputs):
        raise UnsupportedModelError(f"the XGBoost booster has {len(names)} features, the model gives it {len(inputs)} columns")
    if booster.feature_types and any(t == "c" for t in booster.feature_types):
        raise UnsupportedModelError("XGBoost categorical features are not supported; train with numeric features (enable_categorical=False)")
    index = {n: i for i, n in enumerate(names)}
    trees = []
    for i, text in enumerate(dumps):
        table = _xgb_table(json.loads(text), index)
        group = (i // cfg["num_parallel_tree"]) % n_groups
        # each tree adds its leaf to its own group's output only
        table.leaves = [tuple(v[0] if k == group else 0.0 for k in range(n_groups)) for v in table.leaves]
        trees.append(build_tree(table, True, n_groups))
    base = cfg["base_score"]
    if base.size == 1:
        base = np.repeat(base, n_groups)
    if base.size != n_groups:
        raise UnsupportedModelError(f"XGBoost base_score has {base.size} values for {n_groups} outputs")
    margins = [xgb_base_margin(cfg["objective"], float(b)) for b in base]
    return ensemble(trees, list(inputs), n_groups, margins), cfg


def _xgb_inputs(est: Any, inputs: Sequence[ir.Expr], ctx: Context) -> list[ir.Expr]:
    """The features as XGBoost sees them: its ``missing`` value (NaN by default) reads as missing."""
    xs = _float_inputs(inputs, ctx, type(est).__name__)
    missing = getattr(est, "missing", np.nan)
    m = np.nan if missing is None else float(missing)
    if np.isnan(m):
        return xs
    # the data is float32 to XGBoost: a value that rounds to ``missing`` is missing too
    return [ir.Case(((compare_const("==", x, float(np.float32(m)), True), ir.missing()),), x) for x in xs]


def _xgb_classifier(est: Any, inputs: list, ctx: Context) -> Compiled:
    xs = _xgb_inputs(est, inputs, ctx)
    ens, cfg = xgboost_ensemble(est.get_booster(), xs)
    labels = _labels(est)
    obj = cfg["objective"]
    if obj == "binary:logistic":
        if len(labels) != 2:
            raise UnsupportedModelError(f"XGBClassifier with binary:logistic has {len(labels)} classes")
        m = ir.Index(ens, 0)
        p = ir.func("expit", m)
        proba = [ir.sub(ir.const(1.0), p), p]
        predict = ir.binary_label(m, ">", xgb_half_margin(), labels[0], labels[1])
    elif obj in XGB_MULTI:
        margins = [ir.Index(ens, k) for k in range(ens.n_outputs)]
        if len(margins) != len(labels):
            raise UnsupportedModelError(f"XGBClassifier has {len(margins)} margins for {len(labels)} classes")
        proba = softmax_exprs(margins)
        predict = ir.ArgMax(tuple(margins), labels)
    else:
        raise UnsupportedModelError(f"XGBClassifier with objective {obj!r} is not supported; supported: binary:logistic, multi:softprob, multi:softmax")
    return Compiled(predict=predict, proba=proba, classes=tuple(est.classes_))


def _xgb_regressor(est: Any, inputs: list, ctx: Context) -> Compiled:
    xs = _xgb_inputs(est, inputs, ctx)
    ens, cfg = xgboost_ensemble(est.get_booster(), xs)
    obj = cfg["objective"]
    if ens.n_outputs != 1:
        raise UnsupportedModelError(f"XGBRegressor with objective {obj!r} has {ens.n_outputs} outputs")
    m = ir.Index(ens, 0)
    if obj in XGB_IDENTITY:
        return Compiled(predict=m)
    if obj in XGB_EXP:
        return Compiled(predict=ir.func("exp", m))
    if obj == "reg:logistic":
        return Compiled(predict=ir.func("expit", m))
    raise UnsupportedModelError(f"XGBRegressor with objective {obj!r} is not supported; supported: {', '.join(XGB_IDENTITY + XGB_EXP)}, reg:logistic")


if xgboost is not None:
    register(xgboost.XGBClassifier)(_xgb_classifier)
    register(xgboost.XGBRegressor)(_xgb_regressor)


# --------------------------------------------------------------------------- LightGBM

#: LightGBM's kZeroThreshold (a float constant, 1e-35f, widened to double)
LGB_ZERO = float(np.float32(1e-35))
LGB_IDENTITY = ("regression", "regression_l1", "huber", "fair", "quantile", "mape")
LGB_EXP = ("poisson", "gamma", "tweedie")
LGB_CLASSIFIERS = ("binary", "multiclass", "multiclassova")
LGB_OBJECTIVES = LGB_IDENTITY + LGB_EXP + ("cross_entropy",) + LGB_CLASSIFIERS
_INT_LIMIT = 2.0**31


def _lgb_objective(text: str) -> tuple[str, dict[str, str]]:
    parts = text.split()
    if not parts:
        raise UnsupportedModelError("the LightGBM model names no objective (a custom objective?); indb needs a built-in one")
    name, params = parts[0], {}
    for p in parts[1:]:
        k, _, v = p.partition(":")
        params[k] = v
    aliases = {"xentropy": "cross_entropy", "mean_squared_error": "regression", "l2": "regression", "l1": "regression_l1", "softmax": "multiclass", "ova": "multiclassova"}
    name = aliases.get(name, name)
    if name not in LGB_OBJECTIVES:
        raise UnsupportedModelError(f"LightGBM objective {name!r} is not supported; supported: {', '.join(LGB_OBJECTIVES)}")
    if "sqrt" in params or "sqrt" in parts[1:]:
        raise UnsupportedModelError(f"LightGBM objective {name!r} with reg_sqrt is not supported")
    return name, params


class _LgbInputs:
    """The inputs LightGBM trees split on: the features, and integer codes for categorical splits."""

    def __init__(self, inputs: Sequence[ir.Expr]) -> None:
        self.inputs = list(inputs)
        self.codes: dict[int, int] = {}

    def code(self, j: int) -> int:
        if j not in self.codes:
            x = self.inputs[j]
            valid = ir.And((ir.Compare(">", x, ir.const(-1.0)), ir.Compare("<", x, ir.const(_INT_LIMIT))))
            code = ir.Case(((valid, ir.func("floor", ir.Func("max", (x, ir.const(0.0))))),), ir.const(-1.0))
            self.codes[j] = len(self.inputs)
            self.inputs.append(code)
        return self.codes[j]


def _lgb_numeric(table: SplitTable, f: int, t: float, default_left: bool, missing: str, left: int, right: int) -> int:
    """A LightGBM numeric split (``x <= t``, its missing type) as one or more table nodes."""
    z = LGB_ZERO
    # LightGBM's predictor reads every |x| <= z as 0.0 before any split
    mode, bound = ("LEQ", t) if not -z <= t < z else (("LEQ", z) if t >= 0 else ("LT", -z))
    if missing == "None":  # NaN is treated as 0.0
        return table.add_node(f, mode, bound, left, right, 0.0 <= t)
    if missing == "NaN":
        return table.add_node(f, mode, bound, left, right, default_left)
    if missing != "Zero":
        raise UnsupportedModelError(f"LightGBM missing_type {missing!r} is not supported")
    # values in [-z, z] and NaN take the default side
    if default_left:
        if t >= z:
            return table.add_node(f, "LEQ", t, left, right, True)
        if t >= -z:
            return table.add_node(f, "LEQ", z, left, right, True)
        c = table.add_node(f, "LEQ", z, left, right, True)
        b = table.add_node(f, "LT", -z, right, c, False)
        return table.add_node(f, "LEQ", t, left, b, True)
    if t < -z:
        return table.add_node(f, "LEQ", t, left, right, False)
    if t < z:
        return table.add_node(f, "LT", -z, left, right, False)
    c = table.add_node(f, "LEQ", t, left, right, False)
    b = table.add_node(f, "LEQ", z, right, c, True)
    return table.add_node(f, "LT", -z, left, b, False)


def _lgb_table(structure: dict, k_out: int, n_out: int, ins: _LgbInputs) -> SplitTable:
    table = SplitTable()

    def leaf(v: float) -> int:
        return table.add_leaf(tuple(float(v) if k == k_out else 0.0 for k in range(n_out)))

    # post-order: children are added before the node that points to them
    refs: dict[int, int] = {}
    stack: list[tuple[dict, bool]] = [(structure, False)]
    while stack:
        n, ready = stack.pop()
        if "leaf_coeff" in n:
            raise UnsupportedModelError("LightGBM linear trees (linear_tree=True) are not supported")
        if "leaf_value" in n:
            refs[id(n)] = leaf(n["leaf_value"])
            continue
        if not ready:
            stack.append((n, True))
            stack.append((n["right_child"], False))
            stack.append((n["left_child"], False))
            continue
        left, right = refs[id(n["left_child"])], refs[id(n["right_child"])]
        f = int(n["split_feature"])
        if n["decision_type"] == "<=":
            refs[id(n)] = _lgb_numeric(table, f, float(n["threshold"]), bool(n["default_left"]), str(n["missing_type"]), left, right)
        elif n["decision_type"] == "==":
            cats = tuple(float(int(c)) for c in str(n["threshold"]).split("||"))
            refs[id(n)] = table.add_node(ins.code(f), "MEMBER", cats, left, right, False)
        else:
            raise UnsupportedModelError(f"LightGBM decision_type {n['decision_type']!r} is not supported")
    table.root = refs[id(structure)]
    return table


def lightgbm_raw(booster: Any, inputs: Sequence[ir.Expr]) -> tuple[list[ir.Expr], str, dict[str, str]]:
    """The raw scores of a LightGBM booster (one per class) and its objective."""
    d = booster.dump_model()
    if d.get("pandas_categorical"):
        raise UnsupportedModelError(
            "LightGBM model trained on pandas categorical columns: their category-to-code mapping is not part of the trees; "
            "encode the categories as integer codes before training"
        )
    name, params = _lgb_objective(str(d.get("objective", "")))
    n_out = int(d["num_tree_per_iteration"])
    if int(d["max_feature_idx"]) + 1 != len(inputs):
        raise UnsupportedModelError(f"the LightGBM booster has {int(d['max_feature_idx']) + 1} features, the model gives it {len(inputs)} columns")
    ins = _LgbInputs(inputs)
    trees = []
    for info in d["tree_info"]:
        k = int(info["tree_index"]) % n_out
        trees.append(build_tree(_lgb_table(info["tree_structure"], k, n_out, ins), False, n_out))
    ens = ensemble(trees, ins.inputs, n_out, [0.0] * n_out)
    raw: list[ir.Expr] = [ir.Index(ens, k) for k in range(n_out)]
    if d.get("average_output"):
        n_iter = float(len(trees) // n_out)
        raw = [ir.div(r, ir.const(n_iter)) for r in raw]
    return raw, name, params


def _sigmoid(raw: ir.Expr, params: dict[str, str]) -> ir.Expr:
    s = float(params.get("sigmoid", "1"))
    return ir.func("expit", raw if s == 1.0 else ir.mul(ir.const(s), raw))


def _lgb_classifier(est: Any, inputs: list, ctx: Context) -> Compiled:
    xs = _float_inputs(inputs, ctx, type(est).__name__)
    raw, name, params = lightgbm_raw(est.booster_, xs)
    labels = _labels(est)
    if name == "binary":
        p = _sigmoid(raw[0], params)
        proba = [ir.sub(ir.const(1.0), p), p]
    elif name == "multiclass":
        proba = softmax_exprs(raw)
    elif name == "multiclassova":
        proba = [_sigmoid(r, params) for r in raw]
    else:
        raise UnsupportedModelError(f"LGBMClassifier with objective {name!r} is not supported; supported: {', '.join(LGB_CLASSIFIERS)}")
    if len(proba) != len(labels):
        raise UnsupportedModelError(f"LGBMClassifier gives {len(proba)} probabilities for {len(labels)} classes")
    # the softmax keeps the order of the raw scores, and SQL without shared subexpressions
    # would write the whole softmax into every comparison of the label
    scores = raw if name == "multiclass" else proba
    return Compiled(predict=ir.ArgMax(tuple(scores), labels), proba=proba, classes=tuple(est.classes_))


def _lgb_regressor(est: Any, inputs: list, ctx: Context) -> Compiled:
    xs = _float_inputs(inputs, ctx, type(est).__name__)
    raw, name, params = lightgbm_raw(est.booster_, xs)
    if len(raw) != 1:
        raise UnsupportedModelError(f"LGBMRegressor with objective {name!r} has {len(raw)} outputs")
    if name in LGB_IDENTITY:
        return Compiled(predict=raw[0])
    if name in LGB_EXP:
        return Compiled(predict=ir.func("exp", raw[0]))
    if name == "cross_entropy":
        return Compiled(predict=_sigmoid(raw[0], {}))
    raise UnsupportedModelError(f"LGBMRegressor with objective {name!r} is not supported; supported: {', '.join(LGB_IDENTITY + LGB_EXP)}, cross_entropy")


@dataclass
class LightGBMFile:
    """A LightGBM booster read from its own ``.txt`` file (``indb.compilers.files``), with
    what the converters ask of an ``LGBMClassifier``/``LGBMRegressor``."""

    booster_: Any
    n_features_in_: int
    #: the booster's column names, or None when it was trained on an array (Column_0, ...)
    feature_names_in_: Any
    #: ``0 .. k-1`` for a classification objective (what the booster's argmax means), else None
    classes_: Any


def _lgb_file(est: LightGBMFile, inputs: list, ctx: Context) -> Compiled:
    return (_lgb_regressor if est.classes_ is None else _lgb_classifier)(est, inputs, ctx)


if lightgbm is not None:
    register(lightgbm.LGBMClassifier)(_lgb_classifier)
    register(lightgbm.LGBMRegressor)(_lgb_regressor)
    register(LightGBMFile)(_lgb_file)

