"""IR-level parity with scikit-learn: the model's own outputs, row by row where it refuses some rows.

``expected(est, X, kind)`` calls the estimator's own method; when scikit-learn raises
on the batch (a NaN it does not accept, an unknown category with
``handle_unknown='error'``), it scores row by row and marks the refused rows missing,
which is what the compiled model must return for them. ``check_parity`` compiles,
evaluates the IR with numpy and compares: labels exactly, numbers within ``rtol``
relative or ``atol`` absolute, missing where scikit-learn has no answer.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from indb import ir
from indb.compilers import compile_model
from indb.ir.evaluate import columns_from_matrix, evaluate

METHODS = {"predict": "predict", "proba": "predict_proba", "decision": "decision_function", "transform": "transform"}


def _rows(X: Any, i: int) -> Any:
    return X.iloc[i : i + 1] if hasattr(X, "iloc") else X[i : i + 1]


def _dense(a: Any) -> np.ndarray:
    if hasattr(a, "toarray"):
        a = a.toarray()
    if hasattr(a, "to_numpy"):
        a = a.to_numpy()
    return np.asarray(a)


def _call(est: Any, kind: str, X: Any) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _dense(getattr(est, METHODS[kind])(X))


def expected(est: Any, X: Any, kind: str) -> np.ndarray:
    """scikit-learn's output; rows it refuses are NaN (numbers) or None (labels)."""
    try:
        return _call(est, kind, X)
    except ValueError:
        pass
    per_row: list[np.ndarray | None] = []
    for i in range(len(X)):
        try:
            per_row.append(_call(est, kind, _rows(X, i))[0])
        except ValueError:
            per_row.append(None)
    good = [r for r in per_row if r is not None]
    assert good, f"{type(est).__name__}.{METHODS[kind]} refuses every row"
    shape = np.shape(good[0])
    if any(np.asarray(r).dtype.kind in "OUS" for r in good):
        out = np.empty((len(per_row),) + shape, dtype=object)
        for i, r in enumerate(per_row):
            out[i] = None if r is None else r
        return out
    out = np.full((len(per_row),) + shape, np.nan)
    for i, r in enumerate(per_row):
        if r is not None:
            out[i] = r
    return out


def refused_rows(est: Any, X: Any, kind: str) -> list[int]:
    """Indices of the rows scikit-learn refuses to score."""
    out = []
    for i in range(len(X)):
        try:
            _call(est, kind, _rows(X, i))
        except ValueError:
            out.append(i)
    return out


def _is_missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v))


def assert_close(got: np.ndarray, want: np.ndarray, *, rtol: float = 1e-9, atol: float = 1e-12, what: str = "") -> None:
    """Labels equal, numbers close, missing where missing; reports the first bad rows."""
    got = np.asarray(got)
    want = np.asarray(want)
    if want.ndim == 2 and want.shape[1] == 1 and got.ndim == 1:
        want = want[:, 0]
    assert got.shape == want.shape, f"{what}: shape {got.shape} != expected {want.shape}"
    if want.dtype.kind in "OUSb" or got.dtype.kind == "O":
        bad = []
        for idx in np.ndindex(want.shape):
            g, w = got[idx], want[idx]
            if _is_missing(w) or _is_missing(g):
                ok = _is_missing(w) and _is_missing(g)
            elif isinstance(w, str) or isinstance(g, str):
                ok = isinstance(g, str) and isinstance(w, str) and g == w
            else:
                ok = float(g) == float(w)
            if not ok:
                bad.append((idx, g, w))
        assert not bad, f"{what}: {len(bad)} mismatches, first {bad[:5]}"
        return
    g = got.astype(np.float64)
    w = want.astype(np.float64)
    both_nan = np.isnan(g) & np.isnan(w)
    same_inf = np.isinf(w) & (g == w)
    with np.errstate(invalid="ignore"):
        close = np.abs(g - w) <= atol + rtol * np.abs(w)
    ok = both_nan | same_inf | close
    if not ok.all():
        rows = np.argwhere(~ok)[:5]
        detail = [(tuple(r), g[tuple(r)], w[tuple(r)]) for r in rows]
        raise AssertionError(f"{what}: {int((~ok).sum())} mismatches (rtol={rtol}, atol={atol}), first {detail}")


def check_parity(est: Any, X: Any, kinds: tuple[str, ...] = ("predict",), *, rtol: float = 1e-9, atol: float = 1e-12, model: ir.Model | None = None) -> ir.Model:
    """Compile ``est``, evaluate every output kind in ``kinds`` on ``X`` and compare with scikit-learn."""
    m = model if model is not None else compile_model(est)
    cols = columns_from_matrix(m, X)
    for kind in kinds:
        got = evaluate(m.output(kind), cols, n=len(X))
        assert_close(got, expected(est, X, kind), rtol=rtol, atol=atol, what=f"{type(est).__name__}.{kind}")
    return m


def check_zoo_case(case: Any) -> ir.Model:
    """``check_parity`` for a zoo case (``tests.zoo.ZooCase``): its model on its rows, its output kinds, its tolerances."""
    est, X = case.fitted()
    return check_parity(est, X, case.outputs, rtol=case.rtol, atol=case.atol)


def check_docstring_examples(module: Any, *, optionflags: int = 0, ignore_warnings: bool = False) -> None:
    """Every docstring example of ``module`` holds, with ``optionflags`` (default: none,
    stricter than tests/test_docs.py's ELLIPSIS)."""
    import doctest  # noqa: PLC0415

    with warnings.catch_warnings():
        if ignore_warnings:
            warnings.simplefilter("ignore")
        result = doctest.testmod(module, optionflags=optionflags)
    assert result.failed == 0, f"{module.__name__}: {result.failed} of {result.attempted} examples failed"
