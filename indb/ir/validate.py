"""Checks that a stored IR is data of the shape the backends expect, before anything uses it.

A model is data, never code: the PL/Python engine reads a version's IR from
``indb.versions.ir``, which a deployer writes, and turns it into Python (``rowcode``)
and numpy calls inside the server. So every field of the JSON is checked here first:
node kinds, operators and function names from closed sets; numbers that are numbers
(not booleans, not text); indices that are integers within what they index (a
child node, a tree's feature and child numbers, a vector element); text only where a
node holds text (labels, names, messages), bounded in length; and bounded sizes and
depths, so that no tree has a cycle and no loop over one can run away. Nothing is
evaluated, and the work is linear in the size of the document.

    >>> model_data({"format": 1, "features": [["x", "float"]], "classes": None, "source": "", "extra": [],
    ...             "outputs": [["predict", {"nodes": [{"t": "Feature", "name": "x", "kind": "float"}], "root": 0}]]})
    >>> expr_data({"nodes": [{"t": "BinOp", "op": "+ 1", "left": {"n": 0}, "right": {"n": 0}}], "root": 0})
    Traceback (most recent call last):
    ...
    indb.ir.validate.InvalidIR: node 0 (BinOp) op is '+ 1', not one of '+', '-', '*', '/'

Only the standard library: it runs inside the database (``indb.plpython.install``).
"""

from __future__ import annotations

from typing import Any

try:
    from indb.ir import nodes as _ir
except ImportError:  # pragma: no cover - loaded stand-alone inside PL/Python
    import nodes as _ir  # type: ignore[no-redef]

#: the longest text a node may hold (a label, a feature or binding name, a message)
MAX_TEXT = 4096
#: expression nodes in one output
MAX_NODES = 5_000_000
#: the longest chain of nested expression nodes (the row scorer and the evaluator
#: recurse along it; Python's default limit is 1,000 frames)
MAX_EXPR_DEPTH = 250
#: trees in a model, nodes in all of its trees, and the depth of one tree
MAX_TREES = 100_000
MAX_TREE_NODES = 20_000_000
MAX_TREE_DEPTH = 10_000
#: features, outputs of one ensemble or vector, values in one set, classes
MAX_WIDTH = 1_000_000
#: nesting and size of the free-form ``extra`` values
MAX_EXTRA_DEPTH = 16
MAX_EXTRA_ITEMS = 100_000

FLOAT, TEXT, BOOL, VECTOR = _ir.FLOAT, _ir.TEXT, _ir.BOOL, "vector"
SCALAR = (FLOAT, TEXT, BOOL)
NUMERIC = (FLOAT, BOOL)

#: every node kind and its fields (besides "t"), as ``to_data`` writes them
FIELDS: dict[str, tuple[str, ...]] = {
    "Feature": ("name", "kind"),
    "Const": ("value", "kind"),
    "BinOp": ("op", "left", "right"),
    "Sum": ("terms",),
    "Func": ("name", "args"),
    "Compare": ("op", "left", "right"),
    "InSet": ("operand", "values"),
    "IsMissing": ("operand",),
    "And": ("terms",),
    "Or": ("terms",),
    "Not": ("operand",),
    "Case": ("whens", "default"),
    "Lazy": ("operand",),
    "Fail": ("message", "kind"),
    "Vector": ("items",),
    "Index": ("vector", "i"),
    "ArgMax": ("items", "labels"),
    "Let": ("name", "value", "body"),
    "Var": ("name", "kind"),
    "TreeEnsemble": ("inputs", "trees", "n_outputs", "base", "strict"),
}
TREE_FIELDS = ("feature", "threshold", "left", "right", "missing_left", "value", "categories")
MODEL_FIELDS = ("format", "features", "outputs", "classes", "source", "extra")


class InvalidIR(ValueError):
    """The IR document is not one that ``to_data`` / ``model_to_json`` could have written."""


def show(v: Any) -> str:
    """A short, escaped, one-line rendering of a (possibly hostile) value for a message.

    >>> print(show("a\\nb'" + "x" * 100))
    "a\\nb'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...
    """
    if isinstance(v, (dict, list)):
        return f"a JSON {'object' if isinstance(v, dict) else 'array'}"
    r = ascii(v) if not isinstance(v, str) or len(v) <= 200 else ascii(v[:200])
    return r if len(r) <= 40 else r[:37] + "..."


def _fail(where: str, what: str) -> InvalidIR:
    return InvalidIR(f"{where} {what}" if where else what)


def is_number(v: Any) -> bool:
    """A JSON number (not a boolean) or the encoding of an infinity."""
    return type(v) in (int, float) or (type(v) is dict and len(v) == 1 and v.get("f") in ("inf", "-inf"))


def number(v: Any, where: str) -> float:
    if type(v) is float:
        return v
    if type(v) is int:
        if abs(v) > 2**1023:
            raise _fail(where, f"is {show(v)}, beyond double precision")
        return float(v)
    if is_number(v):
        return float(v["f"])
    raise _fail(where, f"is {show(v)}, not a number")


def integer(v: Any, where: str, lo: int, hi: int) -> int:
    """An int (not a bool) with ``lo <= v < hi``."""
    if type(v) is not int:
        raise _fail(where, f"is {show(v)}, not an integer")
    if not lo <= v < hi:
        raise _fail(where, f"is {v}, outside {lo}..{hi - 1}")
    return v


def text(v: Any, where: str) -> str:
    if type(v) is not str:
        raise _fail(where, f"is {show(v)}, not text")
    if len(v) > MAX_TEXT:
        raise _fail(where, f"is {len(v)} characters long (at most {MAX_TEXT})")
    return v


def array(v: Any, where: str, most: int, least: int = 0) -> list:
    if type(v) is not list:
        raise _fail(where, f"is {show(v)}, not a list")
    if not least <= len(v) <= most:
        raise _fail(where, f"has {len(v)} entries ({least} to {most} allowed)")
    return v


def one_of(v: Any, allowed, where: str) -> Any:
    if type(v) is not str or v not in allowed:
        raise _fail(where, f"is {show(v)}, not one of {', '.join(repr(a) for a in allowed)}")
    return v


def label(v: Any, where: str) -> Any:
    """A class label or a set member: text, a number or a boolean."""
    if type(v) is str:
        return text(v, where)
    if type(v) is bool or is_number(v):
        return v
    raise _fail(where, f"is {show(v)}, not a label (text, a number or a boolean)")


# ------------------------------------------------------------------- expressions


class _Nodes:
    """The checked facts about the nodes of one expression document."""

    def __init__(self) -> None:
        self.kinds: list[str] = []  # each node's "t"
        self.types: list[str] = []
        self.width: list[int] = []  # a vector's length (0 for scalars)
        self.depth: list[int] = []
        self.kids: list[tuple[int, ...]] = []


def expr_data(data: Any, features: dict[str, str] | None = None, where: str = "", budget: list[int] | None = None) -> str:
    """Check the JSON form of one expression (``nodes.to_data``); its type. ``features``
    (name -> kind), when given, are the only features it may read; ``budget`` is
    ``[trees, tree nodes]`` still allowed across a model's outputs."""
    if type(data) is not dict or set(data) != {"nodes", "root"}:
        raise _fail(where, f"is {show(data)}, not an expression ({{'nodes': [...], 'root': N}})")
    nodes = array(data["nodes"], f"{where} nodes".strip(), MAX_NODES, 1)
    facts = _Nodes()
    budget = budget if budget is not None else [MAX_TREES, MAX_TREE_NODES]
    has_var = False
    for i, d in enumerate(nodes):
        if type(d) is not dict:
            raise _fail(where, f"node {i} is {show(d)}, not an object")
        kind = d.get("t")
        if type(kind) is not str or kind not in FIELDS:
            raise _fail(where, f"node {i} has kind {show(kind)}, not one of {', '.join(FIELDS)}")
        if set(d) != {"t", *FIELDS[kind]}:
            extra = [show(k) for k in d if k != "t" and k not in FIELDS[kind]][:5]
            raise _fail(where, f"node {i} ({kind}) has fields {', '.join(extra) or 'missing'}: expected {', '.join(FIELDS[kind])}")
        at = f"{where} node {i} ({kind})".strip()
        typ, width, kids = _CHECKS[kind](d, i, at, facts, features, budget)
        has_var = has_var or kind == "Var"
        depth = 1 + max((facts.depth[k] for k in kids), default=0)
        if depth > MAX_EXPR_DEPTH:
            raise _fail(at, f"is nested {depth} deep (at most {MAX_EXPR_DEPTH})")
        facts.kinds.append(kind)
        facts.types.append(typ)
        facts.width.append(width)
        facts.depth.append(depth)
        facts.kids.append(kids)
    root = integer(data["root"], f"{where} root".strip(), 0, len(nodes))
    if has_var:
        _check_scopes(nodes, facts, root, where)
    return facts.types[root]


def _ref(v: Any, i: int, at: str, facts: _Nodes) -> int:
    if type(v) is not dict or set(v) != {"n"} or type(v["n"]) is not int:
        raise _fail(at, f"has {show(v)} where a node reference {{'n': N}} belongs")
    k = v["n"]
    if not 0 <= k < i:  # children are written before their parents: no cycles
        raise _fail(at, f"refers to node {k}, which is not an earlier node")
    return k


def _refs(v: Any, i: int, at: str, facts: _Nodes, field: str, allowed: tuple, least: int = 0) -> tuple[int, ...]:
    out = tuple(_ref(x, i, at, facts) for x in array(v, f"{at} {field}", MAX_NODES, least))
    for k in out:
        _typed(facts, k, allowed, at, field)
    return out


def _typed(facts: _Nodes, k: int, allowed: tuple, at: str, field: str) -> str:
    if facts.types[k] not in allowed:
        raise _fail(at, f"{field} is node {k} of type {facts.types[k]}, expected {' or '.join(allowed)}")
    return facts.types[k]


def _kind(v: Any, at: str, allowed=SCALAR) -> str:
    return one_of(v, allowed, f"{at} kind")


def _feature(d, i, at, facts, features, budget):
    name = text(d["name"], f"{at} name")
    kind = _kind(d["kind"], at, (FLOAT, TEXT))
    if features is not None:
        if name not in features:
            raise _fail(at, f"reads feature {show(name)}, which is not one of the model's features")
        if features[name] != kind:
            raise _fail(at, f"reads feature {show(name)} as {kind}, but the model declares it {features[name]}")
    return kind, 0, ()


def _const(d, i, at, facts, features, budget):
    kind = one_of(d["kind"], ("",) + SCALAR, f"{at} kind")
    v = d["value"]
    if kind == "":
        kind = BOOL if type(v) is bool else TEXT if type(v) is str else FLOAT
    if v is None:
        return kind, 0, ()
    if kind == FLOAT:
        number(v, f"{at} value")
    elif kind == TEXT:
        text(v, f"{at} value")
    elif type(v) is not bool:
        raise _fail(at, f"value is {show(v)}, not a boolean")
    return kind, 0, ()


def _arith(d, i, at, facts, features, budget):
    one_of(d["op"], _ir.ARITH_OPS, f"{at} op")
    left, right = _ref(d["left"], i, at, facts), _ref(d["right"], i, at, facts)
    _typed(facts, left, NUMERIC, at, "left")
    _typed(facts, right, NUMERIC, at, "right")
    return FLOAT, 0, (left, right)


def _sum(d, i, at, facts, features, budget):
    return FLOAT, 0, _refs(d["terms"], i, at, facts, "terms", NUMERIC, 1)


def _func(d, i, at, facts, features, budget):
    name = one_of(d["name"], tuple(_ir.FUNCTIONS), f"{at} name")
    args = _refs(d["args"], i, at, facts, "args", NUMERIC, 1)
    arity = _ir.FUNCTIONS[name]
    if arity is not None and len(args) != arity:
        raise _fail(at, f"{name} takes {arity} argument(s), got {len(args)}")
    return FLOAT, 0, args


def _compare(d, i, at, facts, features, budget):
    op = one_of(d["op"], _ir.COMPARE_OPS, f"{at} op")
    left, right = _ref(d["left"], i, at, facts), _ref(d["right"], i, at, facts)
    a = _typed(facts, left, SCALAR, at, "left")
    b = _typed(facts, right, SCALAR, at, "right")
    if TEXT in (a, b) and op not in ("==", "!="):
        raise _fail(at, f"compares text with {op!r}; text supports only == and !=")
    return BOOL, 0, (left, right)


def _inset(d, i, at, facts, features, budget):
    operand = _ref(d["operand"], i, at, facts)
    kind = _typed(facts, operand, SCALAR, at, "operand")
    for j, v in enumerate(array(d["values"], f"{at} values", MAX_WIDTH)):
        if kind == TEXT:
            text(v, f"{at} values[{j}]")
        else:
            number(v, f"{at} values[{j}]")
    return BOOL, 0, (operand,)


def _operand(allowed: tuple, result: str | None):
    def check(d, i, at, facts, features, budget):
        k = _ref(d["operand"], i, at, facts)
        typ = _typed(facts, k, allowed, at, "operand")
        return (result or typ), (facts.width[k] if result is None else 0), (k,)

    return check


def _logic(d, i, at, facts, features, budget):
    return BOOL, 0, _refs(d["terms"], i, at, facts, "terms", (BOOL,), 1)


def _case(d, i, at, facts, features, budget):
    default = _ref(d["default"], i, at, facts)
    typ = _typed(facts, default, SCALAR, at, "default")
    kids: list[int] = []
    for j, pair in enumerate(array(d["whens"], f"{at} whens", MAX_NODES)):
        array(pair, f"{at} whens[{j}]", 2, 2)
        c, v = _ref(pair[0], i, at, facts), _ref(pair[1], i, at, facts)
        _typed(facts, c, (BOOL,), at, f"whens[{j}] condition")
        _typed(facts, v, (typ,), at, f"whens[{j}] value")
        kids += (c, v)
    return typ, 0, (*kids, default)


def _failnode(d, i, at, facts, features, budget):
    text(d["message"], f"{at} message")
    return _kind(d["kind"], at), 0, ()


def _vector(d, i, at, facts, features, budget):
    items = _refs(d["items"], i, at, facts, "items", SCALAR)
    return VECTOR, len(items), items


def _index(d, i, at, facts, features, budget):
    k = _ref(d["vector"], i, at, facts)
    if facts.kinds[k] not in ("Vector", "TreeEnsemble"):
        raise _fail(at, f"indexes node {k}, a {facts.kinds[k]}, not a Vector or a TreeEnsemble")
    j = integer(d["i"], f"{at} i", 0, facts.width[k])
    typ = facts.types[facts.kids[k][j]] if facts.kinds[k] == "Vector" else FLOAT
    return typ, 0, (k,)


def _argmax(d, i, at, facts, features, budget):
    items = _refs(d["items"], i, at, facts, "items", NUMERIC, 1)
    labels = array(d["labels"], f"{at} labels", len(items), len(items))
    for j, v in enumerate(labels):
        label(v, f"{at} labels[{j}]")
    return (TEXT if any(type(v) is str for v in labels) else FLOAT), 0, items


def _let(d, i, at, facts, features, budget):
    text(d["name"], f"{at} name")
    value, body = _ref(d["value"], i, at, facts), _ref(d["body"], i, at, facts)
    _typed(facts, value, SCALAR, at, "value")
    return facts.types[body], facts.width[body], (value, body)


def _var(d, i, at, facts, features, budget):
    text(d["name"], f"{at} name")
    return _kind(d["kind"], at), 0, ()


def _ensemble(d, i, at, facts, features, budget):
    inputs = _refs(d["inputs"], i, at, facts, "inputs", SCALAR)
    kinds = [facts.types[k] for k in inputs]
    n_out = integer(d["n_outputs"], f"{at} n_outputs", 1, MAX_WIDTH + 1)
    base = array(d["base"], f"{at} base", n_out, n_out)
    for j, v in enumerate(base):
        number(v, f"{at} base[{j}]")
    if type(d["strict"]) is not bool:
        raise _fail(at, f"strict is {show(d['strict'])}, not a boolean")
    trees = array(d["trees"], f"{at} trees", MAX_TREES)
    budget[0] -= len(trees)
    if budget[0] < 0:
        raise _fail(at, f"brings the model over {MAX_TREES} trees")
    for j, t in enumerate(trees):
        tree_data(t, kinds, n_out, f"{at} tree {j}", budget)
    return VECTOR, n_out, inputs


def tree_data(t: Any, inputs: list[str], n_outputs: int, at: str, budget: list[int] | None = None) -> int:
    """Check one tree of an ensemble over inputs of types ``inputs``; its depth.

    Every split's children must be node numbers of the tree, each node reached from the
    root at most once (no cycles, no shared subtrees), within MAX_TREE_DEPTH splits."""
    if type(t) is not dict or set(t) != set(TREE_FIELDS):
        raise _fail(at, f"is {show(t)}, not a tree with fields {', '.join(TREE_FIELDS)}")
    budget = budget if budget is not None else [MAX_TREES, MAX_TREE_NODES]
    feature = array(t["feature"], f"{at} feature", max(1, budget[1]), 1)
    n = len(feature)
    budget[1] -= n
    if budget[1] < 0:
        raise _fail(at, f"brings the model over {MAX_TREE_NODES} tree nodes")
    threshold = array(t["threshold"], f"{at} threshold", n, n)
    left = array(t["left"], f"{at} left", n, n)
    right = array(t["right"], f"{at} right", n, n)
    missing_left = array(t["missing_left"], f"{at} missing_left", n, n)
    value = array(t["value"], f"{at} value", n, n)
    categories = t["categories"]
    if categories != []:
        array(categories, f"{at} categories", n, n)
    for k in range(n):
        f = feature[k]
        if type(f) is not int or not -(2**31) <= f < len(inputs):
            raise _fail(at, f"node {k}: feature is {show(f)}, not an input number below {len(inputs)} (or negative for a leaf)")
        number(threshold[k], f"{at} node {k}: threshold")
        if type(missing_left[k]) is not bool:
            raise _fail(at, f"node {k}: missing_left is {show(missing_left[k])}, not a boolean")
        v = array(value[k], f"{at} node {k}: value", n_outputs, n_outputs)
        for x in v:
            number(x, f"{at} node {k}: value")
        lo = 0 if f >= 0 else -1  # a leaf's children are not read (scikit-learn writes -1)
        integer(left[k], f"{at} node {k}: left", lo, n)
        integer(right[k], f"{at} node {k}: right", lo, n)
        cats = categories[k] if categories else None
        if cats is not None:
            for j, c in enumerate(array(cats, f"{at} node {k}: categories", MAX_WIDTH)):
                if f >= 0 and inputs[f] == TEXT:
                    text(c, f"{at} node {k}: categories[{j}]")
                else:
                    number(c, f"{at} node {k}: categories[{j}]")
        elif f >= 0 and inputs[f] == TEXT:
            raise _fail(at, f"node {k}: a numeric split on text input {f}")
    seen = bytearray(n)
    deepest = 0
    stack = [(0, 0)]
    while stack:
        k, depth = stack.pop()
        if seen[k]:
            raise _fail(at, f"node {k} is reached twice from the root (a cycle or a shared node)")
        seen[k] = 1
        if depth > MAX_TREE_DEPTH:
            raise _fail(at, f"is deeper than {MAX_TREE_DEPTH} splits")
        if feature[k] >= 0:
            stack.append((left[k], depth + 1))
            stack.append((right[k], depth + 1))
        elif depth > deepest:
            deepest = depth
    return deepest


_CHECKS = {
    "Feature": _feature, "Const": _const, "BinOp": _arith, "Sum": _sum, "Func": _func, "Compare": _compare,
    "InSet": _inset, "IsMissing": _operand(SCALAR, BOOL), "And": _logic, "Or": _logic, "Not": _operand((BOOL,), BOOL),
    "Case": _case, "Lazy": _operand(SCALAR + (VECTOR,), None), "Fail": _failnode, "Vector": _vector, "Index": _index,
    "ArgMax": _argmax, "Let": _let, "Var": _var, "TreeEnsemble": _ensemble,
}


def _check_scopes(nodes: list, facts: _Nodes, root: int, where: str) -> None:
    """Every Var is read inside a Let that binds its name to a value of its kind."""
    limit = 4 * len(nodes) + 16
    seen: set[tuple[int, frozenset]] = set()
    stack: list[tuple[int, frozenset]] = [(root, frozenset())]
    while stack:
        k, env = stack.pop()
        if (k, env) in seen:
            continue
        seen.add((k, env))
        if len(seen) > limit:
            raise _fail(where, "has too many Let scopes")
        d = nodes[k]
        if d["t"] == "Var":
            bound = dict(env).get(d["name"])
            if bound is None:
                raise _fail(where, f"node {k} (Var) reads {show(d['name'])}, which no enclosing Let binds")
            if bound != d["kind"]:
                raise _fail(where, f"node {k} (Var) reads {show(d['name'])} as {d['kind']}, but it is bound to a {bound} value")
        elif d["t"] == "Let":
            value, body = facts.kids[k]
            stack.append((value, env))
            inner = frozenset({(n, t) for n, t in env if n != d["name"]} | {(d["name"], facts.types[value])})
            stack.append((body, inner))
        else:
            stack.extend((c, env) for c in facts.kids[k])


# ------------------------------------------------------------------------- models


def _extra_value(v: Any, at: str, depth: int, count: list[int]) -> None:
    count[0] += 1
    if count[0] > MAX_EXTRA_ITEMS:
        raise _fail(at, f"holds more than {MAX_EXTRA_ITEMS} values")
    if depth > MAX_EXTRA_DEPTH:
        raise _fail(at, f"is nested more than {MAX_EXTRA_DEPTH} deep")
    if v is None or type(v) in (bool, int, float):
        return
    if type(v) is str:
        text(v, at)
    elif type(v) is list:
        for x in v:
            _extra_value(x, at, depth + 1, count)
    elif type(v) is dict:
        for key, x in v.items():
            text(key, f"{at} key")
            _extra_value(x, at, depth + 1, count)
    else:
        raise _fail(at, f"holds {show(v)}, not JSON")


def model_data(data: Any) -> None:
    """Check the JSON form of a whole model (``nodes.model_to_json``, parsed)."""
    if type(data) is not dict or set(data) != set(MODEL_FIELDS):
        raise InvalidIR(f"the IR is {show(data) if type(data) is not dict else 'an object'} without exactly the fields"
                        f" {', '.join(MODEL_FIELDS)}")
    if data["format"] != 1 or type(data["format"]) is not int:
        raise InvalidIR(f"unknown IR format {show(data['format'])}")
    features: dict[str, str] = {}
    for j, spec in enumerate(array(data["features"], "features", MAX_WIDTH)):
        array(spec, f"features[{j}]", 2, 2)
        name = text(spec[0], f"features[{j}] name")
        if name in features:
            raise InvalidIR(f"feature {show(name)} is declared twice")
        features[name] = one_of(spec[1], (FLOAT, TEXT), f"features[{j}] kind")
    seen: set[str] = set()
    budget = [MAX_TREES, MAX_TREE_NODES]
    for j, pair in enumerate(array(data["outputs"], "outputs", len(_ir.OUTPUT_KINDS), 1)):
        array(pair, f"outputs[{j}]", 2, 2)
        kind = one_of(pair[0], _ir.OUTPUT_KINDS, f"outputs[{j}] kind")
        if kind in seen:
            raise InvalidIR(f"output {kind} is declared twice")
        seen.add(kind)
        typ = expr_data(pair[1], features, f"output {kind}:", budget)
        root_kind = pair[1]["nodes"][pair[1]["root"]]["t"]
        if kind == "predict" and typ not in SCALAR:
            raise InvalidIR(f"output predict: is a {typ}, not a single value")
        if kind != "predict" and typ not in SCALAR and root_kind != "Vector":
            raise InvalidIR(f"output {kind}: is a {root_kind}, not a single value or a Vector")
    if data["classes"] is not None:
        for j, c in enumerate(array(data["classes"], "classes", MAX_WIDTH)):
            label(c, f"classes[{j}]")
    text(data["source"], "source")
    for j, pair in enumerate(array(data["extra"], "extra", MAX_EXTRA_ITEMS)):
        array(pair, f"extra[{j}]", 2, 2)
        text(pair[0], f"extra[{j}] key")
        _extra_value(pair[1], f"extra[{j}] value", 0, [0])


def model_json(text_: str) -> Any:
    """Parse and check a model's JSON; the parsed data. Any failure is an ``InvalidIR``."""
    import json

    if type(text_) is not str:
        raise InvalidIR(f"the IR is {show(text_)}, not JSON text")
    try:
        data = json.loads(text_)
    except (ValueError, RecursionError) as e:
        raise InvalidIR(f"the IR is not valid JSON ({type(e).__name__} at {getattr(e, 'pos', '?')})") from None
    model_data(data)
    return data
