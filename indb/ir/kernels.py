"""Compiled kernels for the PL/Python engine's batch path (optional: numba).

numpy evaluates a tree ensemble level by level over all rows, a dozen array passes per
level and tree, and a dense layer one multiply per unit and input: several times slower
than the libraries' own compiled code. When numba is importable (Debian's
``python3-numba``, built on the same LLVM as PostgreSQL's JIT), this module compiles, per
backend and on first use, kernels with exactly the evaluator's semantics, so that
their results are bitwise those of ``indb.ir.evaluate``:

* **trees**: ``x <= threshold`` (``<`` when strict), NaN follows ``missing_left``, each
  row's sums added tree by tree in order. Every tree is laid out so that a leaf points
  to itself: a row takes exactly ``depth`` steps, without a branch to mispredict, and a
  block of 128 rows walks one tree level by level (their steps are independent, so the
  processor overlaps them). The block is copied feature-major first, and a block without
  NaN skips the missing-value test. One row alone (the single-row path) walks 16 trees
  side by side instead, for the same reason, and adds their leaves in tree order.
* **dense layers**: ``x0*w0 + x1*w1 + ... + b`` for many units over the same inputs (an
  MLP's layer), in that order, without fused multiply-adds (numba does not contract
  them unless asked to).

The kernels release the GIL, so a batch is split into contiguous parts over up to
``threads`` threads: the caller's and those of a small pool, each started with every
signal blocked (PostgreSQL's handlers then only ever run in the backend's own thread). The engine
chooses the number per call; a small batch runs on one thread. numba's own parallel
loops are not used: compiling them costs about a second per backend. Without numba,
``available()`` is False and the evaluator uses numpy.

Ensembles with categorical splits or text inputs stay on the numpy path.
"""

from __future__ import annotations

import threading

import numpy as np

try:
    from indb import ir
except ImportError:  # pragma: no cover - loaded stand-alone inside PL/Python
    import ir  # type: ignore[no-redef]

#: a batch smaller than this runs on one thread (handing work over costs more)
PARALLEL_MIN_ROWS = 4096

#: a kernel is compiled (0.5-1 s in each new process) once this process has evaluated
#: this many rows of its kind with numpy (whose answers are bitwise the same): numpy
#: takes about 20 us a row of a large tree ensemble, so a small table is scored sooner
#: without compiling, and a large one compiles on its first chunk (about 41,000 rows);
#: the engine sets ``compile_after`` from ``SET indb.engine_compile_after = N`` (0:
#: compile on first use)
COMPILE_AFTER = 25_000
compile_after: int | None = None
_rows = 0
_compiled: set[str] = set()

_numba = None
_tried = False
_kernels: dict[str, object] = {}
_pool = None
_local = threading.local()


def count(n: int) -> None:
    """Add a batch of ``n`` rows to what this process has evaluated (the engine calls it
    once per batch)."""
    global _rows
    _rows += n


def worth(kind: str) -> bool:
    """Whether to run ``kind``'s kernel ("tree" or "layers"), compiling it first if
    needed: once compiled, always; before, once the rows this process has counted
    reach ``COMPILE_AFTER`` (or ``compile_after``)."""
    if not available():
        return False
    if kind in _compiled:
        return True
    if _rows >= (COMPILE_AFTER if compile_after is None else compile_after):
        _compiled.add(kind)
        return True
    return False


def on_kernel(event) -> None:
    """Set ``event`` (a threading.Event) when this thread next enters a kernel, which
    releases the GIL (None: stop). The engine's pipelined batch path waits for it."""
    _local.entered = event


def _entering() -> None:
    event = getattr(_local, "entered", None)
    if event is not None:
        event.set()


def available() -> bool:
    """True when numba is importable (kernels are compiled on first use)."""
    global _tried, _numba
    if not _tried:
        _tried = True
        try:
            import numba

            _numba = numba
        except Exception:  # noqa: BLE001 - any failure to import means "use numpy"
            _numba = None
    return _numba is not None


def max_threads() -> int:
    import os

    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def submit_quietly(pool, fn, *args):
    """``pool.submit(fn, *args)`` with every signal blocked: a thread the pool starts now
    inherits that mask, so PostgreSQL's handlers (cancel, terminate, latch wake-ups) only
    ever run in the backend's own thread."""
    import signal

    old = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
    try:
        return pool.submit(fn, *args)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


#: the most work (tree steps, or multiply-adds) one kernel call does on one thread,
#: about 20-60 ms: a batch is split into pieces of rows, and interrupts are checked
#: between pieces (a kernel cannot be interrupted while it runs)
WORK_PER_CALL = 20_000_000


def on_interrupts(check) -> None:
    """Call ``check()`` (no arguments; it raises to stop) between pieces of work done on
    this thread (None: nothing). The engine sets its query-cancel check on the
    backend's thread and a cancel flag's check on its background thread."""
    _local.check = check


def check_interrupts() -> None:
    """Run this thread's interrupt check, if any (see ``on_interrupts``)."""
    check = getattr(_local, "check", None)
    if check is not None:
        check()


def _split(kernel, n: int, threads: int, *args, cost: int = 1) -> None:
    """Run ``kernel(*args, start, end)`` over ``n`` rows of ``cost`` work each: in
    pieces of at most WORK_PER_CALL per thread, interrupts checked between pieces;
    each piece in contiguous parts on up to ``threads`` threads, no part under
    PARALLEL_MIN_ROWS / 2 rows (the caller's thread takes the first part). Rows are
    independent, so the answers do not depend on the split."""
    cpus = max_threads()
    most = max(1, min(int(threads), cpus))
    piece = max(1, WORK_PER_CALL * most // max(1, cost))
    for start in range(0, n, piece):
        _split_piece(kernel, start, min(n, start + piece), most, cpus, args)
        if start + piece < n:
            check_interrupts()


def _split_piece(kernel, row0: int, row1: int, most: int, cpus: int, args: tuple) -> None:
    global _pool
    k = max(1, min(most, (row1 - row0) // (PARALLEL_MIN_ROWS // 2)))
    if k == 1:
        _entering()
        kernel(*args, row0, row1)
        return
    if _pool is None:
        from concurrent.futures import ThreadPoolExecutor

        _pool = ThreadPoolExecutor(max_workers=max(1, cpus - 1), thread_name_prefix="indb-kernel")
    bounds = [row0 + (row1 - row0) * i // k for i in range(k + 1)]
    futures = [submit_quietly(_pool, kernel, *args, bounds[i], bounds[i + 1]) for i in range(1, k)]
    try:
        _entering()
        kernel(*args, bounds[0], bounds[1])  # the kernels release the GIL (nogil)
    finally:
        for f in futures:
            f.result()


#: the compiled kernels, as the source of a module of their own (numba compiles it)
KERNEL_SOURCE = """\
import numpy as np
from numba import njit

BLOCK = 128
TREES = 16


@njit(nogil=True)
def tree(X, feat, thr, kids, nan_right, values, roots, depths, base, strict, out, row0, row1):
    n_features = X.shape[1]
    k = values.shape[1]
    nodes = np.empty(BLOCK, dtype=np.uint32)
    xb = np.empty((n_features, BLOCK))
    for start in range(row0, row1, BLOCK):
        m = min(row1, start + BLOCK) - start
        has_nan = False
        for q in range(m):
            for f in range(n_features):
                v = X[start + q, f]
                xb[f, q] = v
                if v != v:
                    has_nan = True
        for q in range(m):
            for j in range(k):
                out[start + q, j] = base[j]
        for t in range(roots.shape[0]):
            root = roots[t]
            for q in range(m):
                nodes[q] = root
            # unsigned indices: numba adds no negative-index wrap-around to them
            if has_nan:
                for _ in range(depths[t]):
                    for q in range(m):
                        node = nodes[q]
                        x = xb[feat[node], q]
                        right = np.uint32(x >= thr[node]) if strict else np.uint32(x > thr[node])
                        right |= np.uint32(x != x) & nan_right[node]
                        nodes[q] = kids[np.uint32(2) * node + right]
            elif strict:
                for _ in range(depths[t]):
                    for q in range(m):
                        node = nodes[q]
                        nodes[q] = kids[np.uint32(2) * node + np.uint32(xb[feat[node], q] >= thr[node])]
            else:
                for _ in range(depths[t]):
                    for q in range(m):
                        node = nodes[q]
                        nodes[q] = kids[np.uint32(2) * node + np.uint32(xb[feat[node], q] > thr[node])]
            for q in range(m):
                for j in range(k):
                    out[start + q, j] += values[nodes[q], j]


@njit(nogil=True)
def tree_row(x, feat, thr, kids, nan_right, values, roots, depths, base, strict, out):
    # tree for one row (the single-row path): the same sums in the same order. One row
    # walks each tree as a chain of dependent loads; walking TREES trees side by side
    # lets the processor overlap their chains (a leaf's children are itself, so a tree
    # shallower than the deepest of its group just stays on its leaf)
    k = values.shape[1]
    for j in range(k):
        out[j] = base[j]
    has_nan = False
    for f in range(x.shape[0]):
        if x[f] != x[f]:
            has_nan = True
    nodes = np.empty(TREES, dtype=np.uint32)
    n_trees = roots.shape[0]
    for t0 in range(0, n_trees, TREES):
        b = min(n_trees, t0 + TREES) - t0
        d = 0
        for i in range(b):
            nodes[i] = roots[t0 + i]
            d = max(d, depths[t0 + i])
        for _ in range(d):
            for i in range(b):
                node = nodes[i]
                v = x[feat[node]]
                right = np.uint32(v >= thr[node]) if strict else np.uint32(v > thr[node])
                if has_nan:
                    right |= np.uint32(v != v) & nan_right[node]
                nodes[i] = kids[np.uint32(2) * node + right]
        for i in range(b):
            for j in range(k):
                out[j] += values[nodes[i], j]


# three one-loop helpers: LLVM vectorises these across rows (it does not when the
# loops are written inline in the kernel below)
@njit(nogil=True)
def times(o, a, w):
    for i in range(o.shape[0]):
        o[i] = a[i] * w


@njit(nogil=True)
def plus_times(o, a, w):
    for i in range(o.shape[0]):
        o[i] += a[i] * w


@njit(nogil=True)
def plus(o, w):
    for i in range(o.shape[0]):
        o[i] += w


@njit(nogil=True)
def clip(r, m, act, k):
    # r[:m] = max(r, k) (act 1) or min(r, k) (act 2), as numpy's maximum/minimum give
    # it (NaN stays NaN)
    if act == 1:
        for i in range(m):
            x = r[i]
            r[i] = x if (x > k or x != x) else k
    else:
        for i in range(m):
            x = r[i]
            r[i] = x if (x < k or x != x) else k


@njit(nogil=True)
def dense(AT, W, b, has_b, out, row0, row1):
    K = AT.shape[0]
    J = W.shape[1]
    for s in range(row0, row1, 256):
        e = min(row1, s + 256)
        for j in range(J):
            o = out[j, s:e]
            times(o, AT[0, s:e], W[0, j])
            for c in range(1, K):
                plus_times(o, AT[c, s:e], W[c, j])
            if has_b:
                plus(o, b[j])


@njit(nogil=True)
def chain(AT, Wf, woff, shapes, bf, boff, has_b, acts, kconst, out, row0, row1):
    # dense layers in a row, each reading the one before through max(z, k) or min(z, k)
    # (acts[L] 1 or 2; layer 0 reads AT): a block of rows goes through every layer
    # before the next block, in scratch rows, without returning to Python
    L = shapes.shape[0]
    width = 1
    for l in range(L):
        width = max(width, shapes[l, 1])
    cur = np.empty((width, 256))
    nxt = np.empty((width, 256))
    for s in range(row0, row1, 256):
        e = min(row1, s + 256)
        m = e - s
        for l in range(L):
            K = shapes[l, 0]
            J = shapes[l, 1]
            if l > 0:
                for c in range(K):
                    clip(cur[c], m, acts[l], kconst[l])
            for j in range(J):
                o = out[j, s:e] if l == L - 1 else nxt[j, :m]
                w = woff[l] + j
                if l == 0:
                    times(o, AT[0, s:e], Wf[w])
                    for c in range(1, K):
                        plus_times(o, AT[c, s:e], Wf[w + c * J])
                else:
                    times(o, cur[0, :m], Wf[w])
                    for c in range(1, K):
                        plus_times(o, cur[c, :m], Wf[w + c * J])
                if has_b[l]:
                    plus(o, bf[boff[l] + j])
            cur, nxt = nxt, cur


@njit(nogil=True)
def chain_row(x, Wf, woff, shapes, bf, boff, has_b, acts, kconst, out):
    # chain for one row (the single-row path): the same additions in the same order.
    # Each unit's sum is a chain of dependent additions; a layer's units are summed side
    # by side (input by input, over a row of W), so the processor overlaps them and LLVM
    # vectorises across units, as dense does across rows
    L = shapes.shape[0]
    width = 1
    for l in range(L):
        width = max(width, shapes[l, 0], shapes[l, 1])
    cur = np.empty(width)
    nxt = np.empty(width)
    for c in range(shapes[0, 0]):
        cur[c] = x[c]
    for l in range(L):
        K = shapes[l, 0]
        J = shapes[l, 1]
        if l > 0:
            clip(cur, K, acts[l], kconst[l])
        o = nxt[:J]
        w = woff[l]
        times(o, Wf[w:w + J], cur[0])
        for c in range(1, K):
            plus_times(o, Wf[w + c * J:w + (c + 1) * J], cur[c])
        if has_b[l]:
            b = boff[l]
            for j in range(J):
                o[j] += bf[b + j]
        cur, nxt = nxt, cur
    for j in range(shapes[L - 1, 1]):
        out[j] = cur[j]
"""

def _module():
    """The kernels' module, executed from memory; numba compiles each kernel on its
    first call in a process (about 0.4 s). numba's on-disk cache is not used: it is
    pickle data, which the database never loads."""
    mod = _kernels.get("module")
    if mod is None:
        import types

        mod = types.ModuleType("indb_kernels_compiled")
        exec(compile(KERNEL_SOURCE, "<indb.ir.kernels.compiled>", "exec"), mod.__dict__)
        _kernels["module"] = mod
    return mod


def _tree_kernel():
    return _module().tree


def _tree_row_kernel():
    return _module().tree_row


def _dense_kernel():
    return _module().dense


def _chain_kernel():
    return _module().chain


def _chain_row_kernel():
    return _module().chain_row


class Chain:
    """Dense layers that each read the one before through ``max(z, k)`` or ``min(z, k)``
    (an MLP's hidden layers with ReLU), as flat arrays for one kernel call."""

    def __init__(self, layers: list) -> None:
        shapes, ws, bs, woff, boff, has_b, acts, consts = [], [], [], [], [], [], [], []
        wo = bo = 0
        for i, layer in enumerate(layers):
            W = np.ascontiguousarray(layer.weights, dtype=np.float64)
            shapes.append(W.shape)
            ws.append(W.ravel())
            woff.append(wo)
            wo += W.size
            b = np.zeros(W.shape[1]) if layer.bias is None else np.asarray(layer.bias, dtype=np.float64)
            bs.append(b)
            boff.append(bo)
            bo += b.size
            has_b.append(layer.bias is not None)
            if i == 0:
                acts.append(0)
                consts.append(0.0)
            else:
                _, name, (k,) = layer.source
                acts.append(1 if name == "max" else 2)
                consts.append(float(k))
        self.args = (np.concatenate(ws), np.asarray(woff, dtype=np.int64), np.asarray(shapes, dtype=np.int64),
                     np.concatenate(bs), np.asarray(boff, dtype=np.int64), np.asarray(has_b, dtype=np.bool_),
                     np.asarray(acts, dtype=np.int64), np.asarray(consts, dtype=np.float64))
        self.units = shapes[-1][1]
        self.work = sum(int(a) * int(b) for a, b in shapes) + 1  # multiply-adds per row


def chain_row(values, ch: Chain) -> list[float]:
    """The last layer of ``ch`` for one row (its first layer's inputs, as floats), by the
    compiled kernel: the single-row path's answer for an MLP's layers, the same
    additions in the same order as the row code's and :func:`chain`'s."""
    out = np.empty(ch.units)
    _chain_row_kernel()(np.array(values, dtype=np.float64), *ch.args, out)
    return out.tolist()


def chain(AT: np.ndarray, ch: Chain, threads: int = 1) -> np.ndarray:
    """The last layer of ``ch`` over the first one's inputs ``AT`` (rows), units as rows;
    bitwise the layers one after another (``dense``, then the activation)."""
    AT = np.ascontiguousarray(AT, dtype=np.float64)
    n = AT.shape[1]
    out = np.empty((ch.units, n))
    if n:
        _split(_chain_kernel(), n, threads, AT, *ch.args, out, cost=ch.work)
    return out


class Flat:
    """An ensemble's trees concatenated into flat arrays (built once per ensemble).

    Nodes keep their numbering; a leaf's two children are itself, so that every row
    takes ``depth`` steps in its tree and ends on its leaf.
    """

    def __init__(self, te: "ir.TreeEnsemble") -> None:
        feats, thrs, kids, nan_right, vals, roots, depths = [], [], [], [], [], [], []
        off = 0
        for t in te.trees:
            nn = len(t.feature)
            f = np.asarray(t.feature, dtype=np.int64)
            leaf = f < 0
            ids = np.arange(nn, dtype=np.int64)
            left = np.where(leaf, ids, np.asarray(t.left, dtype=np.int64)) + off
            right = np.where(leaf, ids, np.asarray(t.right, dtype=np.int64)) + off
            k = np.empty(2 * nn, dtype=np.uint32)
            k[0::2] = left
            k[1::2] = right
            kids.append(k)
            feats.append(np.where(leaf, 0, f).astype(np.uint32))
            thrs.append(np.where(leaf, 0.0, np.asarray(t.threshold, dtype=np.float64)))
            nan_right.append((~np.asarray(t.missing_left, dtype=np.bool_)).astype(np.uint32))
            vals.append(np.asarray(t.value, dtype=np.float64).reshape(nn, te.n_outputs))
            roots.append(off)
            depths.append(_depth(t))
            off += nn
        if off >= 2**31:
            raise ValueError("tree ensemble too large for the compiled kernel")
        self.feat = np.concatenate(feats)
        self.thr = np.concatenate(thrs)
        self.kids = np.concatenate(kids)
        self.nan_right = np.concatenate(nan_right)
        self.values = np.ascontiguousarray(np.concatenate(vals))
        self.roots = np.asarray(roots, dtype=np.uint32)
        self.depths = np.asarray(depths, dtype=np.int64)
        self.base = np.asarray(te.base, dtype=np.float64)
        self.strict = bool(te.strict)
        self.work = int(self.depths.sum()) + len(roots) + 1  # steps per row
        self.model = (self.feat, self.thr, self.kids, self.nan_right, self.values, self.roots, self.depths, self.base, self.strict)

    def args(self, X: np.ndarray, out: np.ndarray) -> tuple:
        """The tree kernel's arguments for rows ``X`` into ``out`` (the row range follows)."""
        return (X, *self.model, out)


def _depth(t: "ir.Tree") -> int:
    """The longest root-to-leaf path of a tree, in splits."""
    deepest = 0
    stack = [(0, 0)]
    while stack:
        node, d = stack.pop()
        if t.feature[node] >= 0:
            stack.append((t.left[node], d + 1))
            stack.append((t.right[node], d + 1))
        elif d > deepest:
            deepest = d
    return deepest


def supported(te: "ir.TreeEnsemble") -> bool:
    return not any(t.categories and any(c is not None for c in t.categories) for t in te.trees) and all(
        i.type == ir.FLOAT for i in te.inputs
    )


def tree_sums(te: "ir.TreeEnsemble", flat: Flat, inputs: list[np.ndarray], threads: int = 1) -> np.ndarray | None:
    """(n, n_outputs) sums, or None when the kernel cannot be used."""
    if not available() or not supported(te) or not inputs:
        return None
    X = _matrix(inputs)
    out = np.empty((X.shape[0], te.n_outputs))
    if X.shape[0] == 0:
        return out
    _split(_tree_kernel(), X.shape[0], threads, *flat.args(X, out), cost=flat.work)
    return out


def tree_row(te: "ir.TreeEnsemble", flat: Flat, values) -> tuple[float, ...]:
    """One row's sums (the ensemble's inputs as floats, NaN or None missing) by the
    compiled kernel: the single-row path's answer for a large ensemble, the same
    additions in the same order as its Python code."""
    out = np.empty(te.n_outputs)
    _tree_row_kernel()(np.array(values, dtype=np.float64), *flat.model, out)
    return tuple(out.tolist())


def _matrix(inputs: list[np.ndarray]) -> np.ndarray:
    """The inputs as the columns of a C-ordered matrix: the matrix they are the columns
    of, in order, when there is one (the engine's unpacked chunk), else a copy."""
    base = getattr(inputs[0], "base", None)
    if (isinstance(base, np.ndarray) and base.ndim == 2 and base.dtype == np.float64 and base.flags.c_contiguous
            and base.shape == (len(inputs[0]), len(inputs))):
        at = base.__array_interface__["data"][0]
        if all(
            isinstance(x, np.ndarray) and x.base is base and x.strides == (base.strides[0],)
            and x.__array_interface__["data"][0] == at + 8 * j
            for j, x in enumerate(inputs)
        ):
            return base
    return np.ascontiguousarray(np.column_stack(inputs), dtype=np.float64)


def dense(AT: np.ndarray, W: np.ndarray, b: np.ndarray | None, threads: int = 1) -> np.ndarray:
    """``(AT.T @ W + b).T``: AT holds the inputs as rows (inputs, n); the result holds
    the units as rows (units, n). Each unit's sum is taken strictly in input order (the
    evaluator's ``Sum``), the bias last."""
    AT = np.ascontiguousarray(AT, dtype=np.float64)
    n = AT.shape[1]
    if worth("layers"):
        out = np.empty((W.shape[1], n))
        if n:
            _split(_dense_kernel(), n, threads, AT, W, np.zeros(0) if b is None else b, b is not None, out, cost=W.size + 1)
        return out
    # numpy: one pass per input over every unit at once (the same additions, in order)
    out = np.multiply.outer(W[0], AT[0])
    for c in range(1, AT.shape[0]):
        out += np.multiply.outer(W[c], AT[c])
    if b is not None:
        out += b[:, None]
    return out
