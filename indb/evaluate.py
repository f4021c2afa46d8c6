"""The numpy evaluator: the reference semantics of the IR, vectorised over rows.

It is the test oracle beside the model's own ``predict``, and the engine the PL/Python
backend runs inside the database, so it imports only the standard library, numpy and
``indb.ir`` (numpy 1.24 and Python 3.11 are the oldest it must run on)::

    >>> import numpy as np
    >>> from indb import ir
    >>> from indb.evaluate import evaluate
    >>> e = ir.add(ir.mul(ir.Feature("x"), ir.const(2.0)), ir.const(1.0))
    >>> evaluate(e, {"x": np.array([1.0, np.nan])}).tolist()
    [3.0, nan]
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

try:  # inside PL/Python the module may be loaded stand-alone, next to ir.py
    from indb import ir
except ImportError:  # pragma: no cover
    import ir  # type: ignore[no-redef]


def _is_text(a: np.ndarray) -> bool:
    return a.dtype == object


def _missing(a: np.ndarray) -> np.ndarray:
    if _is_text(a):
        return np.array([v is None or (isinstance(v, float) and v != v) for v in a], dtype=bool)
    return np.isnan(a)


def as_text_array(values: Any, n: int | None = None) -> np.ndarray:
    """An object array of str/None (NaN and None are missing; numbers are not text)."""
    arr = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        if v is None or (isinstance(v, float) and v != v):
            arr[i] = None
        else:
            arr[i] = v if isinstance(v, str) else str(v)
    return arr


def as_float_array(values: Any) -> np.ndarray:
    """A float64 array; None becomes NaN."""
    a = np.asarray(values)
    if a.dtype == object:
        a = np.array([np.nan if v is None else v for v in a], dtype=np.float64)
    return a.astype(np.float64, copy=False)


class _Evaluator:
    def __init__(self, columns: Mapping[str, np.ndarray], n: int, cache: dict | None = None) -> None:
        self.columns = columns
        self.n = n
        # per-model state kept by a caller across calls (flattened trees for the kernel)
        self.cache = cache
        self.memo: dict[int, np.ndarray] = {}
        self.env: dict[str, np.ndarray] = {}

    def full(self, value: Any, kind: str) -> np.ndarray:
        if kind == ir.TEXT:
            a = np.empty(self.n, dtype=object)
            a[:] = value
            return a
        if kind == ir.BOOL:
            return np.full(self.n, bool(value))
        return np.full(self.n, np.nan if value is None else float(value))

    def ev(self, e: ir.Expr) -> np.ndarray:
        key = id(e)
        got = self.memo.get(key)
        if got is not None and not isinstance(e, ir.Var):
            return got
        out = getattr(self, "ev_" + type(e).__name__)(e)
        if not isinstance(e, (ir.Var, ir.Let)):
            self.memo[key] = out
        return out

    # leaves
    def ev_Feature(self, e: ir.Feature) -> np.ndarray:
        try:
            col = self.columns[e.name]
        except KeyError:
            raise KeyError(f"no input column for feature {e.name!r}") from None
        return as_text_array(col) if e.kind == ir.TEXT else as_float_array(col)

    def ev_Const(self, e: ir.Const) -> np.ndarray:
        return self.full(e.value, e.kind)

    def ev_Var(self, e: ir.Var) -> np.ndarray:
        return self.env[e.name]

    def ev_Let(self, e: ir.Let) -> np.ndarray:
        saved = self.env.get(e.name)
        self.env[e.name] = self.ev(e.value)
        try:
            # the body's memo entries depend on the binding: evaluate with a private memo
            memo, self.memo = self.memo, dict(self.memo)
            return self.ev(e.body)
        finally:
            self.memo = memo
            if saved is None:
                del self.env[e.name]
            else:
                self.env[e.name] = saved

    # arithmetic
    def ev_BinOp(self, e: ir.BinOp) -> np.ndarray:
        a, b = self.ev(e.left), self.ev(e.right)
        if e.op == "+":
            return a + b
        if e.op == "-":
            return a - b
        if e.op == "*":
            return a * b
        return a / b

    def ev_Sum(self, e: ir.Sum) -> np.ndarray:
        acc = self.ev(e.terms[0])
        for t in e.terms[1:]:
            acc = acc + self.ev(t)
        return acc

    def ev_Func(self, e: ir.Func) -> np.ndarray:
        args = [self.ev(a) for a in e.args]
        name = e.name
        if name == "neg":
            return -args[0]
        if name == "abs":
            return np.abs(args[0])
        if name == "exp":
            return np.exp(args[0])
        if name == "log":
            return np.log(args[0])
        if name == "sqrt":
            return np.sqrt(args[0])
        if name == "tanh":
            return np.tanh(args[0])
        if name == "expit":
            return 1.0 / (1.0 + np.exp(-args[0]))
        if name == "floor":
            return np.floor(args[0])
        if name == "ceil":
            return np.ceil(args[0])
        if name == "sign":
            return np.sign(args[0])
        if name == "pow":
            return np.power(args[0], args[1])
        if name == "min":
            out = args[0]
            for a in args[1:]:
                out = np.minimum(out, a)
            return out
        if name == "max":
            out = args[0]
            for a in args[1:]:
                out = np.maximum(out, a)
            return out
        raise ValueError(f"unknown function {name}")  # pragma: no cover

    # logic
    def ev_Compare(self, e: ir.Compare) -> np.ndarray:
        a, b = self.ev(e.left), self.ev(e.right)
        op = e.op
        if _is_text(a) or _is_text(b):
            if op not in ("==", "!="):
                raise ValueError("text values support only == and !=")
            eq = np.array([x == y for x, y in zip(a, b)], dtype=bool)
            res = eq if op == "==" else ~eq
            return res & ~_missing(a) & ~_missing(b)
        if op == "<":
            return a < b
        if op == "<=":
            return a <= b
        if op == ">":
            return a > b
        if op == ">=":
            return a >= b
        if op == "==":
            return a == b
        return (a != b) & ~np.isnan(a) & ~np.isnan(b)

    def ev_InSet(self, e: ir.InSet) -> np.ndarray:
        a = self.ev(e.operand)
        if _is_text(a):
            s = set(e.values)
            return np.array([v is not None and v in s for v in a], dtype=bool)
        return np.isin(a, np.asarray(e.values, dtype=np.float64))

    def ev_IsMissing(self, e: ir.IsMissing) -> np.ndarray:
        return _missing(self.ev(e.operand))

    def ev_And(self, e: ir.And) -> np.ndarray:
        out = self.ev(e.terms[0])
        for t in e.terms[1:]:
            out = out & self.ev(t)
        return out

    def ev_Or(self, e: ir.Or) -> np.ndarray:
        out = self.ev(e.terms[0])
        for t in e.terms[1:]:
            out = out | self.ev(t)
        return out

    def ev_Not(self, e: ir.Not) -> np.ndarray:
        return ~self.ev(e.operand)

    def ev_Case(self, e: ir.Case) -> np.ndarray:
        # Each row takes the first true condition. A Fail branch raises only when some
        # row takes it (on_missing="error" guards must not fire on rows they do not hit).
        remaining = np.ones(self.n, dtype=bool)
        branches: list[tuple[np.ndarray, ir.Expr]] = []
        for cond, val in e.whens:
            c = self.ev(cond) & remaining
            remaining = remaining & ~c
            branches.append((c, val))
        branches.append((remaining, e.default))
        out: np.ndarray | None = None
        for sel, val in branches:
            if isinstance(val, ir.Fail):
                if sel.any():
                    raise ValueError(val.message)
                continue
            v = self.ev(val)
            if out is None:
                out = v.copy()
            else:
                if out.dtype != object and v.dtype == object:
                    out = out.astype(object)
                out = np.where(sel, v, out)
        if out is None:  # every branch is a Fail and no row takes any
            return self.full(None, e.type)
        return out

    def ev_Lazy(self, e: ir.Lazy) -> np.ndarray:
        return self.ev(e.operand)

    def ev_Fail(self, e: ir.Fail) -> np.ndarray:
        raise ValueError(e.message)

    # vectors
    def ev_Vector(self, e: ir.Vector) -> np.ndarray:
        cols = [self.ev(i) for i in e.items]
        if any(_is_text(c) for c in cols):
            out = np.empty((self.n, len(cols)), dtype=object)
            for j, c in enumerate(cols):
                out[:, j] = c
            return out
        return np.column_stack(cols) if cols else np.empty((self.n, 0))

    def ev_Index(self, e: ir.Index) -> np.ndarray:
        return self.ev(e.vector)[:, e.i]

    def ev_ArgMax(self, e: ir.ArgMax) -> np.ndarray:
        scores = np.column_stack([self.ev(i) for i in e.items])
        bad = np.isnan(scores).any(axis=1)
        idx = np.argmax(np.where(bad[:, None], 0.0, scores), axis=1)
        if any(isinstance(v, str) for v in e.labels):
            labels = np.empty(len(e.labels), dtype=object)
            labels[:] = list(e.labels)
            out = labels[idx]
            out[bad] = None
            return out
        labels = np.asarray(e.labels, dtype=np.float64)
        out = labels[idx]
        out[bad] = np.nan
        return out

    def ev_TreeEnsemble(self, e: ir.TreeEnsemble) -> np.ndarray:
        inputs = [self.ev(i) for i in e.inputs]
        if self.cache is not None:
            try:
                from indb import kernels
            except ImportError:  # pragma: no cover - stand-alone inside PL/Python
                import kernels  # type: ignore[no-redef]
            if kernels.available() and kernels.supported(e):
                flat = self.cache.get(id(e))
                if flat is None:
                    flat = self.cache[id(e)] = kernels.Flat(e)
                got = kernels.tree_sums(e, flat, inputs)
                if got is not None:
                    return got
        out = np.empty((self.n, e.n_outputs))
        out[:] = np.asarray(e.base, dtype=np.float64)
        for t in e.trees:
            leaf = _tree_leaves(t, inputs, e.strict, self.n)
            vals = np.asarray(t.value, dtype=np.float64)
            out = out + vals[leaf]
        return out


def _tree_leaves(t: ir.Tree, inputs: list[np.ndarray], strict: bool, n: int) -> np.ndarray:
    """The leaf node index each row ends in."""
    feat = np.asarray(t.feature, dtype=np.intp)
    thr = np.asarray(t.threshold, dtype=np.float64)
    left = np.asarray(t.left, dtype=np.intp)
    right = np.asarray(t.right, dtype=np.intp)
    mleft = np.asarray(t.missing_left, dtype=bool)
    node = np.zeros(n, dtype=np.intp)
    while True:
        f = feat[node]
        internal = f >= 0
        if not internal.any():
            return node
        go_left = np.zeros(n, dtype=bool)
        for j in np.unique(f[internal]):
            rows = np.nonzero(f == j)[0]
            nd = node[rows]
            x = inputs[j][rows]
            miss = _missing(x)
            res = np.zeros(len(rows), dtype=bool)
            cat_nodes = np.array([t.category_set(k) is not None for k in nd], dtype=bool) if t.categories else np.zeros(len(rows), bool)
            num = ~cat_nodes & ~miss
            if num.any():
                xv = x[num].astype(np.float64)
                res[num] = xv < thr[nd[num]] if strict else xv <= thr[nd[num]]
            for r in np.nonzero(cat_nodes & ~miss)[0]:
                res[r] = x[r] in t.category_set(nd[r])
            res[miss] = mleft[nd[miss]]
            go_left[rows] = res
        node = np.where(internal, np.where(go_left, left[node], right[node]), node)


def evaluate(e: ir.Expr, columns: Mapping[str, Any], n: int | None = None, *, cache: dict | None = None) -> np.ndarray:
    """Evaluate ``e`` over columns (feature name -> 1-D array); returns (n,) or (n, k).

    With ``cache`` (a dict the caller keeps for this ``e``), tree ensembles run on the
    compiled kernel of ``indb.kernels`` when numba is available.
    """
    if n is None:
        n = len(next(iter(columns.values()))) if columns else 1
    with np.errstate(all="ignore"):
        return _Evaluator(columns, n, cache).ev(e)


def evaluate_model(model: ir.Model, columns: Mapping[str, Any], output: str = "predict") -> np.ndarray:
    """Evaluate one output kind of a compiled model."""
    return evaluate(model.output(output), columns)


def columns_from_matrix(model: ir.Model, X: Any) -> dict[str, np.ndarray]:
    """Name the columns of a 2-D array (or a pandas DataFrame) by the model's features."""
    if hasattr(X, "columns") and hasattr(X, "iloc"):
        return {f.name: X[f.name].to_numpy() for f in model.features}
    X = np.asarray(X, dtype=object if any(f.kind == ir.TEXT for f in model.features) else np.float64)
    return {f.name: X[:, i] for i, f in enumerate(model.features)}
