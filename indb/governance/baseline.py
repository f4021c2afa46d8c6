"""Training-data baselines for drift monitoring (``indb deploy --baseline FILE``).

:func:`make_baseline` summarises the training features and the model's predictions;
the database compares the logged rows with it (views ``indb.drift*``, ``indb drift``)::

    >>> import numpy as np
    >>> from indb.governance.baseline import make_baseline, psi
    >>> X = np.random.default_rng(0).normal(size=(1000, 2))
    >>> b = make_baseline(X, predictions=X[:, 0] > 0, feature_names=["a", "b"])
    >>> b["format"], sorted(b["features"]), b["prediction"]["kind"]
    ('indb-baseline/1', ['a', 'b'], 'categorical')
    >>> round(psi(b["features"]["a"], X[:, 0]), 6)
    0.0

The JSON format, ``"indb-baseline/1"``::

    {
      "format": "indb-baseline/1",
      "rows": 20000,                         # training rows summarised
      "features": {
        "x0": {"kind": "numeric",
               "edges": [e1, ..., ek],       # increasing; bin 0 is x < e1, bin i is
                                             # e_i <= x < e_(i+1), bin k is x >= ek
               "fractions": [f0, ..., fk],   # share of rows per bin (k + 1 values)
               "missing": 0.0},              # share of NULL/NaN
        "c0": {"kind": "categorical",
               "categories": {"a": 0.25, "b": 0.75},   # share of rows per category
               "other": 0.0,                 # categories not listed (0 in training)
               "missing": 0.0}
      },
      "prediction": {...}                    # the same for the model's predictions
    }

Per feature, fractions (or category shares), ``other`` and ``missing`` sum to 1.
Numeric edges are the deciles of the training values; a feature with at most ``bins``
distinct values gets one bin per value. Categories are written as text (class label
``1.0`` as ``"1"``, as SQL prints it).
"""

from __future__ import annotations

import json
import math
from typing import Any, Iterable, Sequence

import numpy as np

FORMAT = "indb-baseline/1"
#: fractions are floored at this before the PSI's logarithm (an empty bin is not infinite drift)
EPSILON = 1e-4
WATCH, ACT = 0.1, 0.25


def _label(v: Any) -> str:
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v)).lower()
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    if isinstance(v, (np.integer,)):
        return str(int(v))
    return str(v)


def _is_numeric(values: np.ndarray) -> bool:
    if values.dtype.kind in "iuf":
        return True
    if values.dtype.kind == "b":
        return False
    try:
        np.asarray([v for v in values if v is not None], dtype=float)
    except (TypeError, ValueError):
        return False
    return not any(isinstance(v, str) for v in values)


def numeric_spec(values: Iterable[float], bins: int = 10) -> dict:
    """Edges and fractions of numbers (NaN/None count as missing)."""
    x = np.asarray([np.nan if v is None else v for v in values], dtype=float)
    present = x[~np.isnan(x)]
    n = len(x)
    if n == 0:
        raise ValueError("a baseline needs at least one training row")
    distinct = np.unique(present)
    if len(distinct) <= bins:
        edges = distinct[1:]
    else:
        edges = np.unique(np.quantile(present, np.linspace(0, 1, bins + 1)[1:-1], method="linear"))
    counts = np.bincount(np.searchsorted(edges, present, side="right"), minlength=len(edges) + 1)
    return {
        "kind": "numeric",
        "edges": [float(e) for e in edges],
        "fractions": [float(c) / n for c in counts],
        "missing": float(n - len(present)) / n,
    }


def categorical_spec(values: Iterable[Any]) -> dict:
    """Category shares of labels or text (None/NaN count as missing)."""
    vals = list(values)
    n = len(vals)
    if n == 0:
        raise ValueError("a baseline needs at least one training row")
    counts: dict[str, int] = {}
    missing = 0
    for v in vals:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            missing += 1
            continue
        key = _label(v)
        counts[key] = counts.get(key, 0) + 1
    return {"kind": "categorical", "categories": {k: c / n for k, c in sorted(counts.items())},
            "other": 0.0, "missing": missing / n}


def make_baseline(X: Any, predictions: Any = None, *, feature_names: Sequence[str] | None = None,
                  categorical: Sequence[str] = (), prediction_kind: str | None = None, bins: int = 10) -> dict:
    """The baseline of training data ``X`` (a DataFrame, or an array with ``feature_names``)
    and, optionally, the model's ``predictions`` on it.

    Text columns (and those named in ``categorical``) get category shares, the others
    bins. Predictions are categorical when they are labels (integers, booleans, text) or
    ``prediction_kind="categorical"``, numeric otherwise.
    """
    if hasattr(X, "columns"):
        names = [str(c) for c in X.columns]
        columns = [np.asarray(X[c].to_numpy(dtype=object) if X[c].dtype == object else X[c].to_numpy()) for c in X.columns]
    else:
        arr = np.asarray(X, dtype=object if np.asarray(X).dtype == object else None)
        if arr.ndim != 2:
            raise ValueError("X must be 2-dimensional (rows x features)")
        names = list(feature_names) if feature_names is not None else [f"x{i}" for i in range(arr.shape[1])]
        columns = [arr[:, i] for i in range(arr.shape[1])]
    if feature_names is not None and list(feature_names) != names:
        names = list(feature_names)
    if len(names) != len(columns):
        raise ValueError(f"{len(columns)} columns but {len(names)} feature names")
    out: dict[str, Any] = {"format": FORMAT, "rows": int(len(columns[0])) if columns else 0, "features": {}}
    for name, col in zip(names, columns):
        if name in categorical or not _is_numeric(col):
            out["features"][name] = categorical_spec(col)
        else:
            out["features"][name] = numeric_spec(col, bins)
    if predictions is not None:
        p = np.asarray(predictions)
        kind = prediction_kind or ("numeric" if p.dtype.kind == "f" and not np.all(np.mod(p[~np.isnan(p)], 1) == 0) else "categorical")
        out["prediction"] = numeric_spec(p, bins) if kind == "numeric" else categorical_spec(p.tolist())
    return out


def validate_baseline(baseline: dict, features: Sequence[str] | None = None) -> list[str]:
    """Problems with a baseline (empty when it is fine); ``features`` checks the names."""
    problems = []
    if baseline.get("format") != FORMAT:
        problems.append(f"format must be {FORMAT!r}, not {baseline.get('format')!r}")
    specs = dict(baseline.get("features") or {})
    if "prediction" in baseline:
        specs["(prediction)"] = baseline["prediction"]
    for name, spec in specs.items():
        kind = spec.get("kind")
        if kind == "numeric":
            edges, fr = spec.get("edges", []), spec.get("fractions", [])
            if len(fr) != len(edges) + 1:
                problems.append(f"{name}: {len(edges)} edges need {len(edges) + 1} fractions, not {len(fr)}")
            if any(b <= a for a, b in zip(edges, edges[1:])):
                problems.append(f"{name}: edges must increase")
            total = sum(fr) + spec.get("missing", 0.0)
        elif kind == "categorical":
            total = sum(spec.get("categories", {}).values()) + spec.get("other", 0.0) + spec.get("missing", 0.0)
        else:
            problems.append(f"{name}: kind must be numeric or categorical, not {kind!r}")
            continue
        if abs(total - 1.0) > 1e-6:
            problems.append(f"{name}: shares sum to {total:.6f}, not 1")
    if features is not None:
        unknown = sorted(set(baseline.get("features") or {}) - set(features))
        if unknown:
            problems.append("features the model does not have: " + ", ".join(unknown))
    return problems


def write_baseline(baseline: dict, path: str) -> None:
    problems = validate_baseline(baseline)
    if problems:
        raise ValueError("; ".join(problems))
    with open(path, "w") as f:
        json.dump(baseline, f, indent=1, sort_keys=True)


def bin_fractions(spec: dict, values: Iterable[Any]) -> tuple[list[float], list[float]]:
    """(expected, actual) fractions over the spec's bins, the way the SQL views bin."""
    vals = list(values)
    n = len(vals)
    if spec["kind"] == "numeric":
        edges = np.asarray(spec["edges"], dtype=float)
        x = np.asarray([np.nan if v is None else v for v in vals], dtype=float)
        present = x[~np.isnan(x)]
        counts = np.bincount(np.searchsorted(edges, present, side="right"), minlength=len(edges) + 1)
        actual = [c / n for c in counts] + [(n - len(present)) / n]
        expected = list(spec["fractions"]) + [spec.get("missing", 0.0)]
        return expected, actual
    cats = spec["categories"]
    counts = dict.fromkeys(cats, 0)
    other = missing = 0
    for v in vals:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            missing += 1
        elif _label(v) in counts:
            counts[_label(v)] += 1
        else:
            other += 1
    expected = [cats[k] for k in cats] + [spec.get("other", 0.0), spec.get("missing", 0.0)]
    actual = [counts[k] / n for k in cats] + [other / n, missing / n]
    return expected, actual


def psi(spec: dict, values: Iterable[Any]) -> float:
    """The population stability index of ``values`` against one baseline spec (the
    same number the database's views compute)."""
    expected, actual = bin_fractions(spec, values)
    return float(sum((max(a, EPSILON) - max(e, EPSILON)) * math.log(max(a, EPSILON) / max(e, EPSILON))
                     for e, a in zip(expected, actual)))


def status(value: float) -> str:
    """ok below 0.1, watch below 0.25, act from 0.25 on."""
    return "act" if value >= ACT else "watch" if value >= WATCH else "ok"
