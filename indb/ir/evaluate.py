"""The numpy evaluator: the reference semantics of the IR, vectorised over rows.

It is the test oracle beside the model's own ``predict``, and the engine the PL/Python
backend runs inside the database, so it imports only the standard library, numpy,
``indb.ir`` and ``indb.ir.kernels`` (which imports numba only when a kernel is used;
numpy 1.24 and Python 3.11 are the oldest it must run on)::

    >>> import numpy as np
    >>> from indb import ir
    >>> from indb.ir.evaluate import evaluate
    >>> e = ir.add(ir.mul(ir.Feature("x"), ir.const(2.0)), ir.const(1.0))
    >>> evaluate(e, {"x": np.array([1.0, np.nan])}).tolist()
    [3.0, nan]
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

try:  # inside PL/Python the module may be loaded stand-alone, next to ir.py
    from indb import ir
    from indb.ir import kernels
except ImportError:  # pragma: no cover
    import ir  # type: ignore[no-redef]
    import kernels  # type: ignore[no-redef]


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


#: the IR's one-argument functions that are a numpy ufunc as they stand
_UFUNCS = {
    "abs": np.abs,
    "exp": np.exp,
    "log": np.log,
    "sqrt": np.sqrt,
    "tanh": np.tanh,
    "floor": np.floor,
    "ceil": np.ceil,
    "sign": np.sign,
}


def _func(name: str, args: list) -> np.ndarray:
    """A function of the IR, elementwise over arrays of any shape."""
    ufunc = _UFUNCS.get(name)
    if ufunc is not None:
        return ufunc(args[0])
    if name == "neg":
        return -args[0]
    if name == "expit":
        return 1.0 / (1.0 + np.exp(-args[0]))
    if name == "pow":
        return np.power(args[0], args[1])
    if name in ("min", "max"):
        pick = np.minimum if name == "min" else np.maximum
        out = args[0]
        for a in args[1:]:
            out = pick(out, a)
        return out
    raise ValueError(f"unknown function {name}")  # pragma: no cover


class _Evaluator:
    def __init__(self, columns: Mapping[str, np.ndarray], n: int, cache: dict | None = None) -> None:
        self.columns = columns
        self.n = n
        # per-model state kept by a caller across calls (flattened trees for the kernel)
        self.cache = cache
        self.memo: dict[int, np.ndarray] = {}
        self.env: dict[str, np.ndarray] = {}
        # with a cache: the threads the compiled kernels may use, and the dense layers
        # (see dense_layers) of the expression being evaluated
        self.threads = int(cache.get("threads", 1)) if cache is not None else 1
        self.layers: dict[int, tuple[DenseLayer, int]] = {}
        self.layer_values: dict[int, np.ndarray] = {}
        self.steps = 0

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
        self.steps += 1
        if self.steps & 63 == 0:  # a large expression: let the caller stop it now and then
            kernels.check_interrupts()
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
    def operand(self, e: ir.Expr, other: ir.Expr) -> Any:
        """``e``'s values, or the number itself when ``e`` is a numeric constant and
        ``other`` is not (numpy broadcasts it: the same IEEE results, no array to fill)."""
        if isinstance(e, ir.Const) and isinstance(e.value, float) and not isinstance(other, ir.Const):
            return e.value
        return self.ev(e)

    def ev_BinOp(self, e: ir.BinOp) -> np.ndarray:
        a, b = self.operand(e.left, e.right), self.operand(e.right, e.left)
        if e.op == "+":
            return a + b
        if e.op == "-":
            return a - b
        if e.op == "*":
            return a * b
        return a / b

    def ev_Sum(self, e: ir.Sum) -> np.ndarray:
        member = self.layers.get(id(e))
        if member is not None:
            return self.ev_layer(*member)
        first = e.terms[0]
        acc = self.ev(first)
        if acc.dtype != np.float64:  # booleans: keep numpy's own promotion
            for t in e.terms[1:]:
                acc = acc + self.ev(t)
            return acc
        for i, t in enumerate(e.terms[1:]):
            x = self.operand(t, first)
            if i == 0:
                acc = acc + x  # a new array: the rest is added in place
            else:
                acc += x
        return acc

    def ev_Func(self, e: ir.Func) -> np.ndarray:
        args = [self.ev(a) for a in e.args] if len(e.args) != 2 else [self.operand(e.args[0], e.args[1]), self.operand(e.args[1], e.args[0])]
        return _func(e.name, args)

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

    def ev_layer(self, layer: "DenseLayer", j: int) -> np.ndarray:
        """Every unit of ``layer`` at once (memoised per unit); unit ``j``'s values."""
        if layer.chain is not None and not self.env and kernels.worth("layers"):
            # the layers before it that only it reads, with their activations, in one
            # compiled call (the values in between are never kept)
            if layer.chain_flat is None:
                layer.chain_flat = kernels.Chain(layer.chain)
            out = kernels.chain(self.layer_inputs(layer.chain[0]), layer.chain_flat, self.threads)
        else:
            out = kernels.dense(self.layer_inputs(layer), layer.weights, layer.bias, self.threads)
        for unit, row in zip(layer.units, out):
            self.memo[id(unit)] = row
        if not self.env:  # outside Let bodies: the next layer may read the whole matrix
            self.layer_values[id(layer)] = out
        return out[j]

    def layer_inputs(self, layer: "DenseLayer") -> np.ndarray:
        """The inputs of ``layer`` as rows; when they are one function of every unit of
        an earlier layer (an activation), applied to that layer's matrix at once."""
        if layer.source is not None and not self.env:
            prev, name, consts = layer.source
            values = self.layer_values.get(id(prev))
            if values is None:
                self.ev(prev.units[0])
                values = self.layer_values.get(id(prev))
            if values is not None:
                if layer.in_place and name in ("max", "min"):
                    # the earlier layer's values are read by this activation alone: it
                    # overwrites them (no new matrix), and they are forgotten
                    out = (np.maximum if name == "max" else np.minimum)(values, *consts, out=values)
                    for unit in prev.units:
                        self.memo.pop(id(unit), None)
                    self.layer_values.pop(id(prev), None)
                else:
                    out = _func(name, [values, *consts])
                for x, row in zip(layer.inputs, out):
                    self.memo[id(x)] = row
                return out
        return np.stack([self.ev(x) for x in layer.inputs])

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
            if kernels.supported(e) and kernels.worth("tree"):
                flat = self.cache.get(id(e))
                if flat is None:
                    flat = self.cache[id(e)] = kernels.Flat(e)
                got = kernels.tree_sums(e, flat, inputs, self.threads)
                if got is not None:
                    return got
        out = np.empty((self.n, e.n_outputs))
        out[:] = np.asarray(e.base, dtype=np.float64)
        for t in e.trees:
            kernels.check_interrupts()
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
        kernels.check_interrupts()
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


def evaluate(
    e: ir.Expr, columns: Mapping[str, Any], n: int | None = None, *, cache: dict | None = None, state: dict | None = None
) -> np.ndarray:
    """Evaluate ``e`` over columns (feature name -> 1-D array); returns (n,) or (n, k).

    With ``cache`` (a dict the caller keeps for this ``e``; ``cache["threads"]`` says
    how many threads the kernels may use), tree ensembles run on the compiled kernel of
    ``indb.ir.kernels`` when numba is available, and groups of linear sums over the same
    inputs (dense layers) as one matrix product: the same additions in the same order,
    so the results are bitwise those of the plain evaluation. ``state`` (a dict) keeps
    the values computed for these columns: a second call with the same ``state`` and
    the same columns (another output of the same model) reuses the subtrees they share.
    """
    if n is None:
        n = len(next(iter(columns.values()))) if columns else 1
    ev = _Evaluator(columns, n, cache)
    if state is not None:
        ev.memo = state.setdefault("memo", {})
        ev.layer_values = state.setdefault("layer_values", {})
    if cache is not None:
        key = ("layers", id(e))
        if key not in cache:
            cache[key] = {id(u): (layer, j) for layer in dense_layers(e) for j, u in enumerate(layer.units)}
        ev.layers = cache[key]
    with np.errstate(all="ignore"):
        return ev.ev(e)


class DenseLayer:
    """Units ``x0*w0 + x1*w1 + ... (+ b)`` over the same inputs: one matrix product.

    ``source`` is ``(layer, name, constants)`` when the inputs are ``name(unit, *constants)``
    of every unit of an earlier layer, in order (an activation such as ``max(z, 0)``).
    """

    def __init__(self, inputs: tuple, units: list, weights: np.ndarray, bias: np.ndarray | None) -> None:
        self.inputs = inputs
        self.units = units
        self.weights = weights  # (inputs, units)
        self.bias = bias
        self.source: tuple | None = None
        self.in_place = False  # the source layer's units have no other reader
        # the layers before this one, and this one, that the compiled kernel runs in one
        # call (each reads the one before through max(z, k) or min(z, k), and nothing
        # else reads their units); set on the last layer of two or more
        self.chain: list | None = None
        self.chain_flat = None

    @property
    def fuses(self) -> bool:
        """This layer reads the one before through ``max(z, k)``/``min(z, k)`` alone."""
        return self.source is not None and self.in_place and self.source[1] in ("max", "min") and len(self.source[2]) == 1


#: the fewest units over the same inputs, or terms in one unit, worth the kernel
DENSE_MIN_UNITS = 4
DENSE_MIN_TERMS = 8


def _linear_terms(e: ir.Expr) -> tuple[tuple, list[float], float | None] | None:
    """``(inputs, weights, bias)`` when ``e`` is ``ir.linear``'s shape, else None."""
    if not isinstance(e, ir.Sum):
        return None
    terms = e.terms
    bias = None
    last = terms[-1]
    if isinstance(last, ir.Const) and isinstance(last.value, float) and last.kind in ("", ir.FLOAT):
        bias, terms = last.value, terms[:-1]
    if len(terms) < 2:
        return None
    xs, ws = [], []
    for t in terms:
        if not (isinstance(t, ir.BinOp) and t.op == "*" and isinstance(t.right, ir.Const)):
            return None
        w = t.right.value
        if not isinstance(w, float) or t.right.kind not in ("", ir.FLOAT) or t.left.type != ir.FLOAT:
            return None
        xs.append(t.left)
        ws.append(w)
    return tuple(xs), ws, bias


def dense_layers(e: ir.Expr) -> list[DenseLayer]:
    """The groups of linear sums over the same input nodes in ``e`` (an MLP's layers, a
    linear model's scores) with at least DENSE_MIN_UNITS units or DENSE_MIN_TERMS terms."""
    groups: dict[tuple, list] = {}
    readers: dict[int, int] = {}  # how many nodes read each node
    for node in ir.walk(e):
        for child in node.children():
            readers[id(child)] = readers.get(id(child), 0) + 1
        got = _linear_terms(node)
        if got is not None:
            xs, ws, bias = got
            groups.setdefault((tuple(id(x) for x in xs), bias is None), []).append((node, xs, ws, bias))
    layers = []
    for members in groups.values():
        if len(members) < DENSE_MIN_UNITS and len(members[0][1]) < DENSE_MIN_TERMS:
            continue
        xs = members[0][1]
        W = np.array([m[2] for m in members], dtype=np.float64).T.copy()
        b = None if members[0][3] is None else np.array([m[3] for m in members], dtype=np.float64)
        layers.append(DenseLayer(xs, [m[0] for m in members], W, b))
    owner = {id(u): (layer, j) for layer in layers for j, u in enumerate(layer.units)}
    for layer in layers:
        first = layer.inputs[0]
        if not (isinstance(first, ir.Func) and first.args and id(first.args[0]) in owner):
            continue
        prev = owner[id(first.args[0])][0]
        rest = first.args[1:]
        if len(layer.inputs) != len(prev.units) or not all(isinstance(r, ir.Const) and isinstance(r.value, float) for r in rest):
            continue
        if all(
            isinstance(x, ir.Func) and x.name == first.name and len(x.args) == len(first.args)
            and owner.get(id(x.args[0])) == (prev, j) and all(r is r0 for r, r0 in zip(x.args[1:], rest))
            for j, x in enumerate(layer.inputs)
        ):
            layer.source = (prev, first.name, tuple(r.value for r in rest))
            layer.in_place = len(rest) == 1 and all(readers.get(id(u), 0) == 1 for u in prev.units)
    read_on = {id(layer.source[0]) for layer in layers if layer.fuses}
    for layer in layers:
        if id(layer) in read_on:
            continue
        seq = [layer]
        while seq[0].fuses:
            seq.insert(0, seq[0].source[0])
        if len(seq) > 1:
            layer.chain = seq
    return layers


def evaluate_model(model: ir.Model, columns: Mapping[str, Any], output: str = "predict") -> np.ndarray:
    """Evaluate one output kind of a compiled model."""
    return evaluate(model.output(output), columns)


def columns_from_matrix(model: ir.Model, X: Any) -> dict[str, np.ndarray]:
    """Name the columns of a 2-D array (or a pandas DataFrame) by the model's features."""
    if hasattr(X, "columns") and hasattr(X, "iloc"):
        return {f.name: X[f.name].to_numpy() for f in model.features}
    X = np.asarray(X, dtype=object if any(f.kind == ir.TEXT for f in model.features) else np.float64)
    return {f.name: X[:, i] for i, f in enumerate(model.features)}
