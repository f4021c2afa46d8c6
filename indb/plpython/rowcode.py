"""IR → a Python function that scores one row, for the PL/Python engine's single-row path.

A numpy call costs microseconds even on one row, so scoring one row through
``indb.ir.evaluate`` would spend most of its time in per-call overhead. This module writes
the IR out as plain Python (``if``/``else`` for trees, straight-line arithmetic
elsewhere) with the evaluator's semantics: IEEE-754 arithmetic (overflow gives
infinity, never an exception), NaN and None are missing, a comparison with a missing
value is false. Tests check it against ``indb.ir.evaluate`` on the whole zoo.

    >>> from indb import ir
    >>> fn = compile_row(ir.add(ir.mul(ir.Feature("x"), ir.const(2.0)), ir.const(1.0)), ["x"])
    >>> fn((3.0,))
    7.0

Only the standard library and ``indb.ir`` are imported: the module runs inside the
database.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

try:
    from indb import ir
    from indb.ir import evaluate as _evaluate
    from indb.ir import kernels
except ImportError:  # pragma: no cover - loaded stand-alone inside PL/Python
    import evaluate as _evaluate  # type: ignore[no-redef]
    import ir  # type: ignore[no-redef]
    import kernels  # type: ignore[no-redef]

NAN = float("nan")
INF = float("inf")

#: trees deeper than this are walked from arrays (Python caps nested blocks at 100)
MAX_CODE_DEPTH = 60
#: ensembles with more nodes than this are walked from arrays (compile time)
MAX_CODE_NODES = 40_000


# ------------------------------------------------------------ runtime helpers (IEEE)


def _exp(a: float) -> float:
    try:
        return math.exp(a)
    except OverflowError:
        return INF


def _log(a: float) -> float:
    if a != a or a < 0:
        return NAN
    if a == 0:
        return -INF
    return math.log(a)


def _sqrt(a: float) -> float:
    if a != a or a < 0:
        return NAN
    return math.sqrt(a)


def _div(a: float, b: float) -> float:
    try:
        return a / b
    except ZeroDivisionError:
        if a != a or a == 0:
            return NAN
        return math.copysign(INF, a) * math.copysign(1.0, b)


def _expit(a: float) -> float:
    return 1.0 / (1.0 + _exp(-a))


def _floor(a: float) -> float:
    return a if (a != a or a in (INF, -INF)) else float(math.floor(a))


def _ceil(a: float) -> float:
    return a if (a != a or a in (INF, -INF)) else float(math.ceil(a))


def _sign(a: float) -> float:
    if a != a:
        return NAN
    return 1.0 if a > 0 else (-1.0 if a < 0 else 0.0)


def _pow(a: float, b: float) -> float:
    try:
        r = a**b
    except OverflowError:
        return INF if a > 0 or float(b).is_integer() and int(b) % 2 == 0 else -INF
    except ZeroDivisionError:
        return INF
    return NAN if isinstance(r, complex) else float(r)


def _max(*args: float) -> float:
    out = args[0]
    for a in args:
        if a != a:
            return NAN
        if a > out:
            out = a
    return out


def _min(*args: float) -> float:
    out = args[0]
    for a in args:
        if a != a:
            return NAN
        if a < out:
            out = a
    return out


def _ne(a, b) -> bool:
    if a is None or b is None or a != a or b != b:
        return False
    return a != b


def _missing(a) -> bool:
    return a is None or a != a


def _argmax(items: Sequence[float], labels: Sequence, missing):
    best = 0
    for i, v in enumerate(items):
        if v != v:
            return missing
        if v > items[best]:
            best = i
    return labels[best]


def _fail(message: str):
    raise ValueError(message)


#: called (no arguments; it raises to stop) every 256 trees a row walks from arrays: the
#: engine sets it to its query-cancel check
check_interrupts: Callable[[], None] | None = None


def _walk_trees(inputs, trees, base, strict):
    """Sum an ensemble from its arrays (for trees too deep or too many to write as code)."""
    out = list(base)
    for i, (feat, thr, left, right, mleft, value, cats) in enumerate(trees):
        if i & 255 == 255 and check_interrupts is not None:
            check_interrupts()
        n = 0
        while feat[n] >= 0:
            x = inputs[feat[n]]
            if x is None or x != x:
                n = left[n] if mleft[n] else right[n]
            elif cats is not None and cats[n] is not None:
                n = left[n] if x in cats[n] else right[n]
            elif (x < thr[n]) if strict else (x <= thr[n]):
                n = left[n]
            else:
                n = right[n]
        v = value[n]
        for k in range(len(out)):
            out[k] = out[k] + v[k]
    return tuple(out)


class _KernelTrees:
    """A large tree ensemble of the row code: its Python code (``fallback``) until the
    rows this process has scored (``kernels.count``: the engine counts each row it
    scores, as it counts each chunk) reach ``kernels.COMPILE_AFTER``, then the compiled
    tree kernel (numba, when installed), whose additions are the code's, in the same
    order."""

    __slots__ = ("te", "flat")

    def __init__(self, te: ir.TreeEnsemble) -> None:
        self.te = te
        self.flat = None

    def __call__(self, v: tuple, fallback: Callable) -> tuple:
        if not kernels.worth("tree"):
            return fallback(v)
        if self.flat is None:
            self.flat = kernels.Flat(self.te)
        return kernels.tree_row(self.te, self.flat, v)


class _KernelChain:
    """An MLP's dense layers (``evaluate.dense_layers``: layers that each read the one
    before through ``max(z, k)`` or ``min(z, k)``) in the row code: their Python code
    (``fallback``, the last layer's units as a list) until the rows this process has
    scored reach ``kernels.COMPILE_AFTER``, then one call of the compiled chain kernel
    for the row, whose additions are the code's, in the same order."""

    __slots__ = ("layers", "flat")

    def __init__(self, layers: list) -> None:
        self.layers = layers
        self.flat = None

    def __call__(self, a: tuple, fallback: Callable) -> list:
        if not kernels.worth("layers"):
            return fallback()
        if self.flat is None:
            self.flat = kernels.Chain(self.layers)
        return kernels.chain_row(a, self.flat)


#: ensembles with fewer nodes than this stay Python code (a kernel call costs a few µs)
KERNEL_MIN_NODES = 1_000
#: layer chains with fewer multiply-adds than this stay Python code
KERNEL_MIN_MACS = 500

_RUNTIME = {
    "_exp": _exp, "_log": _log, "_sqrt": _sqrt, "_div": _div, "_expit": _expit, "_floor": _floor,
    "_ceil": _ceil, "_sign": _sign, "_pow": _pow, "_max": _max, "_min": _min, "_ne": _ne,
    "_missing": _missing, "_argmax": _argmax, "_fail": _fail, "_walk_trees": _walk_trees,
    "_NAN": NAN, "_INF": INF, "math": math,
}


# ----------------------------------------------------------------- code generation
#
# A model is data: the source below is made only of identifiers this module chose,
# numbers it formatted itself (``_num`` of a float, ``int``), and operators looked up
# in the tables here by the IR's (validated) names; text (labels, messages, category
# sets) goes into the function's constants, never into the source.

_ARITH = {"+": "+", "-": "-", "*": "*"}
_COMPARE = {"<": "<", "<=": "<=", ">": ">", ">=": ">=", "==": "==", "!=": "!="}
_SIMPLE = {"neg": "(-{0})", "abs": "abs({0})", "tanh": "math.tanh({0})"}
_CALLS = {name: "_" + name for name in ("exp", "log", "sqrt", "expit", "floor", "ceil", "sign", "pow", "min", "max")}


def _num(v: float) -> str:
    v = float(v)
    if v != v:
        return "_NAN"
    if math.isinf(v):
        return "_INF" if v > 0 else "(-_INF)"
    return repr(v)


class _Writer:
    def __init__(self, features: Sequence[str]) -> None:
        self.index = {name: i for i, name in enumerate(features)}
        self.lines: list[str] = []
        self.consts: dict[str, object] = {}
        self.names: dict[int, str] = {}
        self.counter = 0
        self.env: dict[str, str] = {}
        self.parents: dict[int, int] = {}
        # the units of the last layer of each dense chain: id(unit) -> (layer, index)
        self.chains: dict[int, tuple] = {}
        self.layers: list = []  # keeps the layers (and so the ids above) alive

    def fresh(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def const(self, value: object) -> str:
        name = self.fresh("_k")
        self.consts[name] = value
        return name

    def count_parents(self, e: ir.Expr) -> None:
        for n in ir.walk(e):
            for c in n.children():
                self.parents[id(c)] = self.parents.get(id(c), 0) + 1

    def expr(self, e: ir.Expr) -> str:
        """A Python expression for ``e``; shared non-trivial nodes become variables."""
        got = self.names.get(id(e))
        if got is not None:
            return got
        if id(e) in self.chains and not self.env:
            layer, j = self.chains[id(e)]
            return f"{self._chain(layer)}[{j}]"
        code = self._expr(e)
        if self.parents.get(id(e), 0) > 1 and e.children() and not isinstance(e, (ir.Case, ir.Fail)):
            var = self.fresh("_v")
            self.lines.append(f"    {var} = {code}")
            self.names[id(e)] = var
            return var
        return code

    def _expr(self, e: ir.Expr) -> str:
        if isinstance(e, ir.Feature):
            return f"x[{self.index[e.name]}]"
        if isinstance(e, ir.Const):
            if e.value is None:
                return "None" if e.kind == ir.TEXT else "_NAN"
            if isinstance(e.value, bool):
                return "True" if e.value else "False"
            if isinstance(e.value, str):
                return self.const(e.value)  # text never enters the source
            return _num(e.value)
        if isinstance(e, ir.Var):
            return self.env[e.name]
        if isinstance(e, ir.Let):
            var = self.fresh("_l")
            self.lines.append(f"    {var} = {self.expr(e.value)}")
            saved = self.env.get(e.name)
            self.env[e.name] = var
            try:
                return self.expr(e.body)
            finally:
                if saved is None:
                    del self.env[e.name]
                else:
                    self.env[e.name] = saved
        if isinstance(e, ir.BinOp):
            a, b = self.expr(e.left), self.expr(e.right)
            return f"_div({a}, {b})" if e.op == "/" else f"({a} {_ARITH[e.op]} {b})"
        if isinstance(e, ir.Sum):
            acc = self.expr(e.terms[0])
            for t in e.terms[1:]:
                acc = f"({acc} + {self.expr(t)})"
            return acc
        if isinstance(e, ir.Func):
            args = [self.expr(a) for a in e.args]
            if e.name in _SIMPLE:
                return _SIMPLE[e.name].format(*args)
            return f"{_CALLS[e.name]}({', '.join(args)})"
        if isinstance(e, ir.Compare):
            a, b = self.expr(e.left), self.expr(e.right)
            if e.op == "!=":
                return f"_ne({a}, {b})"
            op = _COMPARE[e.op]
            if e.left.type == ir.TEXT and op == "==":
                return f"({a} is not None and {a} == {b})"
            return f"({a} {op} {b})"
        if isinstance(e, ir.InSet):
            s = self.const(frozenset(e.values))
            a = self.expr(e.operand)
            return f"({a} == {a} and {a} in {s})" if e.operand.type != ir.TEXT else f"({a} in {s})"
        if isinstance(e, ir.IsMissing):
            return f"_missing({self.expr(e.operand)})"
        if isinstance(e, ir.And):
            return "(" + " and ".join(self.expr(t) for t in e.terms) + ")"
        if isinstance(e, ir.Or):
            return "(" + " or ".join(self.expr(t) for t in e.terms) + ")"
        if isinstance(e, ir.Not):
            return f"(not {self.expr(e.operand)})"
        if isinstance(e, ir.Case):
            # branches are written inline (lazily evaluated), so a Fail only raises when taken
            out = self._lazy(e.default)
            for c, v in reversed(e.whens):
                out = f"({self._lazy(v)} if {self.expr(c)} else {out})"
            return out
        if isinstance(e, ir.Fail):
            return f"_fail({self.const(str(e.message))})"
        if isinstance(e, ir.Lazy):
            return self.expr(e.operand)
        if isinstance(e, ir.Vector):
            return "[" + ", ".join(self.expr(i) for i in e.items) + "]"
        if isinstance(e, ir.Index):
            return f"{self.expr(e.vector)}[{int(e.i)}]"
        if isinstance(e, ir.ArgMax):
            labels = self.const(tuple(e.labels))
            missing = "None" if e.type == ir.TEXT else "_NAN"
            return f"_argmax(({', '.join(self.expr(i) for i in e.items)},), {labels}, {missing})"
        if isinstance(e, ir.TreeEnsemble):
            return self._ensemble(e)
        raise TypeError(f"rowcode: unknown IR node {type(e).__name__}")

    def find_chains(self, e: ir.Expr) -> None:
        """Note the dense chains of ``e`` worth the compiled kernel (an MLP's layers)."""
        for layer in _evaluate.dense_layers(e):
            if layer.chain is not None and sum(x.weights.size for x in layer.chain) >= KERNEL_MIN_MACS:
                self.layers.append(layer)
                for j, unit in enumerate(layer.units):
                    self.chains[id(unit)] = (layer, j)

    def _chain(self, layer) -> str:
        """A variable holding the last layer of ``layer.chain`` for the row (a list):
        the kernel's answer once it pays, until then the units' own code, written in a
        local function."""
        var = self.names.get(id(layer))
        if var is not None:
            return var
        inputs = [self.expr(x) for x in layer.chain[0].inputs]
        chains, self.chains = self.chains, {}
        try:
            _, fn = self._local(lambda: "[" + ", ".join(self.expr(u) for u in layer.units) + "]", always=True)
        finally:
            self.chains = chains
        var = self.fresh("_ch")
        self.lines.append(f"    {var} = {self.const(_KernelChain(layer.chain))}(({', '.join(inputs)},), {fn})")
        self.names[id(layer)] = var
        return var

    def _lazy(self, e: ir.Expr) -> str:
        """An expression for a Case branch, evaluated only when the branch is taken."""
        code, fn = self._local(lambda: self.expr(e))
        return code if fn is None else f"{fn}()"

    def _local(self, build: Callable[[], str], always: bool = False) -> tuple[str, str | None]:
        """``build()``'s expression and, when it needed statements (shared values) or
        ``always``, the name of a local function that runs them and returns it (None:
        the expression stands alone). The variables the statements define are local to
        the function, so they are forgotten outside."""
        saved = len(self.lines)
        known = set(self.names)
        code = build()
        if len(self.lines) == saved and not always:
            return code, None
        for key in set(self.names) - known:
            del self.names[key]
        body = self.lines[saved:]
        del self.lines[saved:]
        fn = self.fresh("_b")
        self.lines.append(f"    def {fn}():")
        self.lines.extend("    " + line for line in body)
        self.lines.append(f"        return {code}")
        return code, fn

    def _ensemble(self, te: ir.TreeEnsemble) -> str:
        inputs = [self.expr(i) for i in te.inputs]
        nodes = sum(t.n_nodes for t in te.trees)
        depth = max((t.depth() for t in te.trees), default=0)
        var = self.fresh("_te")
        # a large ensemble of numeric splits runs on the compiled kernel once it pays
        fast = self.const(_KernelTrees(te)) if nodes >= KERNEL_MIN_NODES and kernels.supported(te) else None
        if nodes > MAX_CODE_NODES or depth > MAX_CODE_DEPTH:
            trees = self.const(tuple(
                (t.feature, t.threshold, t.left, t.right, t.missing_left, t.value,
                 tuple(None if c is None else frozenset(c) for c in t.categories) if t.categories else None)
                for t in te.trees))
            base = self.const(tuple(float(b) for b in te.base))
            strict = "True" if te.strict else "False"
            walk = f"lambda v: _walk_trees(v, {trees}, {base}, {strict})"
            call = f"{fast}(({', '.join(inputs)},), {walk})" if fast else f"_walk_trees(({', '.join(inputs)},), {trees}, {base}, {strict})"
            self.lines.append(f"    {var} = {call}")
            return var
        fn = self.fresh("_ens")
        k = te.n_outputs
        code = [f"def {fn}(v):"]
        acc = [f"s{j}" for j in range(k)]
        for j in range(k):
            code.append(f"    s{j} = {_num(te.base[j])}")
        le, ge = ("<", ">=") if te.strict else ("<=", ">")
        for t in te.trees:
            def emit(n: int, ind: int) -> None:
                pad = "    " * ind
                if t.feature[n] < 0:
                    code.append(pad + "; ".join(f"s{j} = s{j} + {_num(t.value[n][j])}" for j in range(k)))
                    return
                x = f"v[{int(t.feature[n])}]"
                cats = t.category_set(n)
                if cats is not None:
                    s = self.const(frozenset(cats))
                    cond = f"({x} is None or {x} != {x} or {x} in {s})" if t.missing_left[n] else f"({x} in {s})"
                elif t.missing_left[n]:
                    cond = f"not ({x} {ge} {_num(t.threshold[n])})"
                else:
                    cond = f"{x} {le} {_num(t.threshold[n])}"
                code.append(f"{pad}if {cond}:")
                emit(t.left[n], ind + 1)
                code.append(f"{pad}else:")
                emit(t.right[n], ind + 1)

            emit(0, 1)
        code.append(f"    return ({', '.join(acc)},)")
        self.functions.append("\n".join(code))
        call = f"{fast}(({', '.join(inputs)},), {fn})" if fast else f"{fn}(({', '.join(inputs)},))"
        self.lines.append(f"    {var} = {call}")
        return var

    functions: list[str]


def compile_row(e: ir.Expr, features: Sequence[str]) -> Callable:
    """A function ``f(x)`` scoring one row; ``x`` holds the feature values in ``features`` order
    (floats with NaN or None for missing, str or None for text)."""
    w = _Writer(features)
    w.functions = []
    w.count_parents(e)
    w.find_chains(e)
    result = w.expr(e)
    src = "\n\n".join(w.functions + ["def score(x):\n" + "\n".join(w.lines + [f"    return {result}"])])
    namespace: dict[str, object] = dict(_RUNTIME)
    namespace.update(w.consts)
    exec(compile(src, "<indb row scorer>", "exec"), namespace)  # noqa: S102 - source generated from the IR above
    return namespace["score"]  # type: ignore[return-value]


def normalise_row(values: Sequence, kinds: Sequence[str]) -> tuple:
    """Feature values as the scorer expects them: floats (None -> NaN) and text (None stays)."""
    return tuple(
        (NAN if v is None else float(v)) if k == ir.FLOAT else v
        for v, k in zip(values, kinds)
    )
