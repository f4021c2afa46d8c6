"""The PL/Python engine: what runs inside PostgreSQL for versions deployed with ``--engine plpython``.

The plpython component's repeatable definition ``engine`` (rendered from this module,
``ir``, ``validate``, ``evaluate``, ``rowcode`` and ``kernels`` by ``indb.plpython.install``)
installs these sources in the body of ``indb.engine_boot()``, owned by a superuser; each backend executes them once and
keeps an ``Engine`` in PL/Python's ``GD``.

The engine gets a version's IR from ``indb.versions`` as data (JSON text; never pickle),
checks its SHA-256 against the stored ``ir_sha256`` whenever it loads it, and its cache
is re-validated on every call: the row's ``xmin`` changes with any UPDATE, so a flipped
byte is seen from the next statement on and refused before anything is evaluated. The
engine itself runs no query (PL/Python's queries need subtransactions, which parallel
workers cannot start): the PL/pgSQL entry points read the registry and pass it in. One row is scored by a generated Python function (``indb.plpython.rowcode``);
a chunk of rows by the numpy evaluator, with tree ensembles and dense layers on the
compiled kernels (``indb.ir.kernels``) when numba is installed, on up to
``batch_threads`` threads.

Only the standard library, numpy (and optionally numba) are imported.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time

import numpy as np

try:
    from indb import ir
    from indb.ir import evaluate as _evaluate
    from indb.ir import kernels
    from indb.ir import validate as _validate
    from indb.plpython import rowcode
except ImportError:  # pragma: no cover - stand-alone
    import evaluate as _evaluate  # type: ignore[no-redef]
    import ir  # type: ignore[no-redef]
    import kernels  # type: ignore[no-redef]
    import rowcode  # type: ignore[no-redef]
    import validate as _validate  # type: ignore[no-redef]


class IntegrityFailure(Exception):
    pass


class _ServerFlags:
    """PostgreSQL's own interrupt flags, read in place (``ctypes``; the server exports its
    symbols to the libraries it loads). PL/Python code is never interrupted: a cancel,
    ``statement_timeout`` or ``pg_terminate_backend`` only sets these flags, and the server
    acts on them at its next check. Reading them costs well under a microsecond and needs
    no query, so it works where a query cannot run: in a parallel worker and in a leader
    taking part in a parallel plan (each PL/Python query starts a subtransaction, which
    neither may start). ``available`` is False where the symbols cannot be found."""

    def __init__(self) -> None:
        self.available = False
        try:
            import ctypes

            server = ctypes.CDLL(None)
            self.pending = ctypes.c_int.in_dll(server, "InterruptPending")
            self.cancel = ctypes.c_int.in_dll(server, "QueryCancelPending")
            self.die = ctypes.c_int.in_dll(server, "ProcDiePending")
            self.parallel_mode = server.IsInParallelMode
            self.parallel_mode.restype = ctypes.c_bool
            self.parallel_mode.argtypes = []
            # what a statement's admission is keyed by (Engine.statement_key): read here,
            # they cannot be handed in by a caller; a parallel worker has its leader's
            self.statement_start = server.GetCurrentStatementStartTimestamp
            self.transaction_start = server.GetCurrentTransactionStartTimestamp
            self.session_user = server.GetSessionUserId
            for fn, restype in ((self.statement_start, ctypes.c_int64), (self.transaction_start, ctypes.c_int64),
                                (self.session_user, ctypes.c_uint32)):
                fn.restype = restype
                fn.argtypes = []
            self.available = True
        except (ImportError, OSError, ValueError, AttributeError):  # not inside a PostgreSQL server
            pass


def _in_parallel_worker() -> bool:
    """Whether this backend is a parallel worker (for its whole life): its process title
    says so (PostgreSQL names the process "parallel worker for PID n")."""
    try:
        with open("/proc/self/cmdline", "rb") as f:
            return b"parallel worker" in f.read()
    except OSError:  # no /proc: assume a plain backend
        return False


class ModelError(Exception):
    """An error PostgreSQL reports as ``indb: <message>``: PL/Python prefixes an uncaught
    exception's message with its type's name, and its module's unless that is builtins."""


ModelError.__module__ = "builtins"
ModelError.__name__ = ModelError.__qualname__ = "indb"


class Cancelled(BaseException):
    """Raised in the background thread when the query that waits for it was cancelled."""


#: the least time between two query-cancel checks (each one costs ~25 us)
CHECK_EVERY = 0.1


def label_text(v) -> str | None:
    """A class label as text, as SQL's float8-to-text cast prints it (1.0 -> '1')."""
    if v is None or (isinstance(v, float) and v != v):
        return None
    if isinstance(v, str):
        return v
    f = float(v)
    if f.is_integer() and abs(f) < 1e15:
        return str(int(f))
    return repr(f)


#: the most a version keeps of its last chunk's values (for the chunk's next output)
KEEP_BYTES = 32 << 20


def _state_bytes(state: dict) -> int:
    arrays = list(state.get("memo", {}).values()) + list(state.get("layer_values", {}).values())
    return sum(getattr(a, "nbytes", 0) for a in arrays)


def batch_threads(setting: str | None, workers: str) -> int:
    """Threads for one batch: ``indb.engine_threads`` when set, else the leader plus
    ``max_parallel_workers_per_gather`` (what one parallel query may use); the
    kernels cap it at the number of CPUs.

    >>> batch_threads(None, "2"), batch_threads("1", "2"), batch_threads("", "0"), batch_threads("x", "3")
    (3, 1, 1, 4)
    """
    try:
        if setting:
            return max(1, int(setting))
    except ValueError:
        pass
    try:
        return 1 + max(0, int(workers))
    except ValueError:
        return 1


def compile_after(setting: str | None) -> int | None:
    """``indb.engine_compile_after`` as a row count (None: the kernels' defaults).

    >>> compile_after(None), compile_after(""), compile_after("0"), compile_after("x"), compile_after("-5")
    (None, None, 0, None, 0)
    """
    try:
        return max(0, int(setting)) if setting else None
    except ValueError:
        return None


#: what one row scored by the row code counts for, in rows of a batch (kernels.count)
ROW_COST = 10


class Loaded:
    """One version, parsed and verified, with its compiled scorers."""

    def __init__(self, model: ir.Model, sha: str, xmin: str) -> None:
        self.model = model
        self.sha = sha
        self.xmin = xmin
        self.kinds = [f.kind for f in model.features]
        self.n_num = sum(1 for k in self.kinds if k == ir.FLOAT)
        self.all_float = self.n_num == len(self.kinds)
        self.rows: dict[str, object] = {}
        self.caches: dict[str, dict] = {}
        self.batch: tuple | None = None  # (n, nums, texts, evaluator state) of the last chunk
        self.layered: dict[str, bool] = {}  # output -> its dense layers take more than one kernel call

    def expr(self, output: str) -> ir.Expr:
        kind = "predict" if output == "label" else output
        return self.model.output(kind)

    def row_fn(self, output: str):
        fn = self.rows.get(output)
        if fn is None:
            fn = self.rows[output] = rowcode.compile_row(self.expr(output), self.model.feature_names)
        return fn


class Engine:
    """The engine of one backend. It never queries the database itself: PL/Python wraps
    every query in a subtransaction, which a parallel worker cannot start. The SQL entry
    points (PL/pgSQL, see ``indb.plpython.install``) read the registry, check the
    session user's right to score, and hand the IR over when :meth:`state` shows this
    backend's copy missing or stale."""

    def __init__(self, plpy) -> None:
        self.plpy = plpy
        self.loaded: dict[tuple[str, int], Loaded] = {}
        self.threads = 1
        # (model, version) -> (statement start, transaction start, session user) of the
        # last statement whose entry point checked the version (see admit)
        self.admits: dict[tuple[str, int], tuple] = {}
        self.pending: dict[tuple, object] = {}  # (token, model, version, output) -> Future
        self._background = None
        # PL/Python code is not interrupted by a cancel or statement_timeout: long loops
        # call check_interrupts between pieces. It reads the server's flags; where they
        # cannot be read, any SPI call raises once the query was cancelled, except in a
        # parallel worker, which cannot run one: there the check is off.
        self._flags = _ServerFlags()
        self._ping = None if not self._flags.available and _in_parallel_worker() else False
        self._pinged = time.monotonic()
        kernels.on_interrupts(self.check_interrupts)
        rowcode.check_interrupts = self.check_interrupts

    def check_interrupts(self) -> None:
        """Raise when this query was cancelled (or timed out, or the backend is told to
        end); at most every CHECK_EVERY seconds.

        With the server's flags readable, nothing is done unless an interrupt is pending.
        Outside parallel mode a query then lets PostgreSQL raise its own error, with its
        own message; in parallel mode (a worker, or a leader running a parallel plan) no
        query may start, and this raises the error PostgreSQL would, by its SQLSTATE."""
        if self._ping is None:
            return
        now = time.monotonic()
        if now - self._pinged < CHECK_EVERY:
            return
        self._pinged = now
        flags = self._flags
        if flags.available:
            if not flags.pending.value:
                return
            if flags.parallel_mode():
                if flags.die.value:
                    self.plpy.error("terminating connection due to administrator command", sqlstate="57P01")
                if flags.cancel.value:
                    self.plpy.error("canceling statement due to user request or statement timeout", sqlstate="57014")
                return  # another interrupt (a parallel worker's message): the server handles it
        if self._ping is False:
            self._ping = self.plpy.prepare("SELECT 1")
        self.plpy.execute(self._ping)

    def _model_error(self, model: str, version: int, e: Exception):
        """The error a version's evaluation raised (an on_missing='error' Fail node, a
        malformed chunk), naming the version; PostgreSQL's own errors (a cancel) pass."""
        if isinstance(e, (self.plpy.SPIError, self.plpy.Error, self.plpy.Fatal)):
            return e
        if isinstance(e, ValueError):
            return ModelError(f"model {model}@{version}: {e}")
        return ModelError(f"model {model}@{version}: evaluation failed ({type(e).__name__}: {_validate.show(str(e))})")

    # ----------------------------------------------------------------- loading
    def state(self, model: str, version: int, settings) -> str | None:
        """``"<xmin> <sha256>"`` of the IR this backend holds for the version (None when
        it holds none), after applying ``settings``: the values of
        ``indb.engine_threads``, ``max_parallel_workers_per_gather`` and
        ``indb.engine_compile_after``, which the caller reads on every call."""
        threads, workers, after = (list(settings or []) + [None, None, None])[:3]
        self.threads = batch_threads(threads, workers or "0")
        kernels.compile_after = compile_after(after)
        got = self.loaded.get((model, version))
        return None if got is None else f"{got.xmin} {got.sha}"

    def load(self, model: str, version: int, text: str, sha: str, xmin: str) -> None:
        """Parse and keep a version's IR, after checking its SHA-256 against the registry's."""
        self.loaded.pop((model, version), None)
        self.admits.pop((model, version), None)
        actual = hashlib.sha256(text.encode("utf-8")).hexdigest()
        if actual != sha:
            raise ModelError(
                f"integrity check failed for {model}@{version}: the stored IR's SHA-256 is {actual}, "
                f"the registry says {sha}; refusing to evaluate (redeploy the model, and find out who changed the IR)"
            )
        try:
            model_ir = ir.model_from_json(text, share=True)  # every field validated first
        except Exception as e:  # noqa: BLE001 - whatever is wrong with it, it is not scored
            raise ModelError(f"model {model}@{version}: the stored IR is not a valid model, refusing to evaluate it"
                             f" ({_validate.show(str(e)) if not isinstance(e, ValueError) else e};"
                             " redeploy the model, and find out who wrote this IR)") from None
        self.loaded[(model, version)] = Loaded(model_ir, actual, xmin)

    def statement_key(self, given: tuple | None) -> tuple | None:
        """What an admission holds for: (statement start, transaction start, session
        user), read from the server itself where its symbols can be found, else
        ``given`` (the same three, as the calling entry point read them)."""
        f = self._flags
        if f.available:
            return (f.statement_start(), f.transaction_start(), f.session_user())
        return given

    def admit(self, model: str, version: int, key: tuple) -> None:
        """Remember that an entry point checked ``(model, version)`` (the version is live,
        the session user may score it, this backend holds its current IR) for ``key``:
        (statement start, transaction start, session user)."""
        self.admits[(model, version)] = self.statement_key(key)

    def admitted(self, model: str, version: int, key: tuple | None) -> bool:
        """Whether :meth:`admit` was called for this version with this ``key``, with its
        IR still loaded."""
        key = self.statement_key(key)
        return key is not None and self.admits.get((model, version)) == key and (model, version) in self.loaded

    def row_admitted(self, model: str, version: int, output: str, nums, texts):
        """:meth:`row` for a version this statement's entry point has already checked
        (:meth:`admitted`, keyed by what the server says, which no argument can
        change; without the server's symbols, never); None when it has not (the caller
        then goes through that entry point, which answers the same)."""
        if not self.admitted(model, version, None):
            return None
        return self.row(model, version, output, nums, texts)

    def get(self, model: str, version: int) -> Loaded:
        """The version as :meth:`load` left it (the SQL entry points load it first)."""
        got = self.loaded.get((model, version))
        if got is None:
            raise ModelError(f"{model}@{version} is not loaded in this backend: score it through indb.engine_* or indb.predict")
        return got

    # ------------------------------------------------------------------ scoring
    def row(self, model: str, version: int, output: str, nums, texts):
        """Score one row; ``nums``/``texts`` hold the features in model order (NULL where
        the other array carries the value)."""
        L = self.get(model, version)
        n = len(L.kinds)
        nums = nums or [None] * n
        texts = texts or [None] * n
        if len(nums) != n or len(texts) != n:
            raise ModelError(f"{model}@{version} takes {n} features, got {len(nums)}")
        if L.all_float:  # the common case, without a look at each feature's kind
            null_in = None in nums
            values = tuple([math.nan if v is None else float(v) for v in nums] if null_in else map(float, nums))
        else:
            values = tuple(
                (math.nan if nums[i] is None else float(nums[i])) if k == ir.FLOAT else texts[i]
                for i, k in enumerate(L.kinds)
            )
            null_in = any(nums[i] is None for i, k in enumerate(L.kinds) if k == ir.FLOAT)
        # once per row, however many ensembles the row code holds; a row counts as
        # ROW_COST rows of a batch: its Python code costs about ten times what numpy
        # takes per row of a batch (RandomForest 100x8: 230 against 20 µs), so a backend
        # scoring one row at a time (a parallel worker, a new process for every query)
        # compiles its kernels after 2,500 rows, not after 25,000 (6 s of Python code)
        kernels.count(ROW_COST)
        try:
            out = L.row_fn(output)(values)
        except Exception as e:  # an on_missing='error' Fail node (ValueError), a cancel
            raise self._model_error(model, version, e) from None
        if output == "label":
            return label_text(out)
        if output != "predict" and not isinstance(out, list):
            out = [out]  # a single decision value is a one-element array, as in SQL
        # NULL in, NULL out (the SQL engine's answer): a NaN that a NULL input caused is
        # NULL; a NaN input gives NaN, as numpy, except for a classifier, whose every
        # output is NULL on a row it refuses (one row, one rule: lowering.no_nan)
        null_in = null_in or L.model.classes is not None
        if isinstance(out, list):
            return [None if v is None or (null_in and v != v) else float(v) for v in out]
        return None if out is None or (null_in and out != out) else float(out)

    def _columns(self, L: Loaded, model: str, version: int, nums: bytes | None, n: int, texts) -> dict:
        """The feature columns of a packed chunk: ``nums`` the numeric features (big-endian
        float8, row-major, model order), ``texts`` the text features (row-major)."""
        cols: dict[str, object] = {}
        num_names = [f.name for f in L.model.features if f.kind == ir.FLOAT]
        text_names = [f.name for f in L.model.features if f.kind == ir.TEXT]
        if num_names:
            arr = np.frombuffer(nums or b"", dtype=">f8")
            if arr.size != n * len(num_names):
                raise ModelError(f"{model}@{version}: expected {n} rows of {len(num_names)} numbers, got {arr.size} values")
            arr = arr.reshape(n, len(num_names)).astype(np.float64)
            for j, name in enumerate(num_names):
                cols[name] = arr[:, j]
        if text_names:
            if texts is None or len(texts) != n * len(text_names):
                raise ModelError(f"{model}@{version}: expected {n} rows of {len(text_names)} texts")
            for j, name in enumerate(text_names):
                col = np.empty(n, dtype=object)
                col[:] = texts[j :: len(text_names)]
                cols[name] = col
        return cols

    @staticmethod
    def _score(L: Loaded, output: str, cols: dict, n: int, nums, texts, threads: int) -> list:
        """The answers of a chunk as a list (no plpy here: it may run on another thread).

        indb score asks for each output of a chunk in turn, with the same packed input:
        the values of the last chunk are kept, so the subtrees the outputs share (a
        classifier's trees, an MLP's layers) are evaluated once."""
        cache = L.caches.setdefault(output, {})
        cache["threads"] = threads
        if L.batch is None or L.batch[0] != n or L.batch[1] != nums or L.batch[2] != texts:
            L.batch = (n, nums, texts, {})
            kernels.count(n)  # a new batch (not another output of the same one)
        try:
            res = _evaluate.evaluate(L.expr(output), cols, n, cache=cache, state=L.batch[3])
        except BaseException:  # an error, or a cancel: the chunk's values are incomplete
            L.batch = None
            raise
        if _state_bytes(L.batch[3]) > KEEP_BYTES:  # a wide model's layers: not kept between calls
            L.batch = None
        if output == "label":
            return [label_text(v) for v in np.asarray(res, dtype=object).ravel()]
        out = np.asarray(res, dtype=np.float64).ravel().tolist()
        if L.model.classes is not None:  # a classifier's NaN is NULL, like its label (lowering.no_nan)
            return [None if v != v else v for v in out]
        return out

    def chunk(self, model: str, version: int, output: str, nums: bytes | None, n: int, texts):
        """Score ``n`` rows packed as ``_columns`` reads them; the answers, row-major."""
        L = self.get(model, version)
        self._drain()
        cols = self._columns(L, model, version, nums, n, texts)
        try:
            return self._score(L, output, cols, n, nums, texts, self.threads)
        except Exception as e:
            raise self._model_error(model, version, e) from None

    # ------------------------------------------------------------ pipelined batches
    def chunk_next(self, model: str, version: int, output: str, nums: bytes | None, n: int, texts, token: int):
        """The pipelined batch path: start scoring this chunk (``n`` rows; none when
        ``n`` is 0) on a background thread, and return the answers of the chunk that the
        previous call with the same ``token``, model, version and output started ([] when
        there is none).

        The kernels release the GIL, so the chunk is scored while PostgreSQL packs the
        next one; this call returns once the background thread is inside a kernel (or
        done). A caller passes its chunks in order and ends with ``n = 0``; a call with
        a new token drops what an interrupted caller left behind."""
        L = self.get(model, version)
        for stale in [k for k in self.pending if k[0] != token]:
            self._drain(stale)
        key = (token, model, version, output)
        answers: list = []
        if key in self.pending:
            try:
                answers = self._wait(self.pending.pop(key))
            except Exception as e:
                raise self._model_error(model, version, e) from None
        if n > 0:
            cols = self._columns(L, model, version, nums, n, texts)
            entered = threading.Event()
            # another output of this chunk still being scored: this one waits behind it
            # (it reads the trees and layers that one evaluates), not this call
            queued = any(not f.done() for f, _ in self.pending.values())
            stop = threading.Event()
            self.pending[key] = (self._submit(self._score_in_background, entered, stop, L, output, cols, n, nums, texts,
                                              self._pipe_threads(L, output)), stop)
            if not queued:
                while not entered.wait(0.001) and not self.pending[key][0].done():
                    try:
                        self.check_interrupts()  # numpy (no kernel to enter): the whole chunk
                    except BaseException:
                        stop.set()
                        raise
                # the threads need the GIL for the few steps into their kernels, and this
                # thread keeps it while PostgreSQL runs: let them get there first
                for _ in range(3):
                    time.sleep(0.0005)
        return answers

    def _pipe_threads(self, L: Loaded, output: str) -> int:
        """Kernel threads for a pipelined chunk. The backend packs the next chunk while
        this one is scored: a kernel that does the chunk's work in one GIL-free call (a
        tree ensemble's, an MLP's ReLU layers chained) runs beside it, so it leaves the
        backend a CPU (on 2 CPUs, one thread beside the backend is 10-20% faster than
        two); separate dense layers need the GIL between them, so most of their work
        happens while the backend waits for it, and they take every thread."""
        most = max(1, min(self.threads, kernels.max_threads()))
        if output not in L.layered:
            layers = _evaluate.dense_layers(L.expr(output))
            chained = {id(x) for layer in layers if layer.chain for x in layer.chain}
            calls = sum(1 for layer in layers if layer.chain) + sum(1 for layer in layers if id(layer) not in chained)
            L.layered[output] = calls > 1
        return most if L.layered[output] else max(1, most - 1)

    @staticmethod
    def _score_in_background(entered, stop, L: Loaded, output: str, cols: dict, n: int, nums, texts, threads: int) -> list:
        def check() -> None:
            if stop.is_set():
                raise Cancelled()

        kernels.on_kernel(entered)
        kernels.on_interrupts(check)
        try:
            return Engine._score(L, output, cols, n, nums, texts, threads)
        finally:
            kernels.on_kernel(None)
            kernels.on_interrupts(None)
            entered.set()

    def _wait(self, pending: tuple):
        """The answers of a background chunk, checking for a cancel while waiting (on
        one, the background thread is told to stop at its next check)."""
        future, stop = pending
        while True:
            try:
                return future.result(timeout=CHECK_EVERY / 2)
            except TimeoutError:
                pass
            try:
                self.check_interrupts()
            except BaseException:
                stop.set()
                raise

    def _submit(self, fn, *args):
        if self._background is None:
            from concurrent.futures import ThreadPoolExecutor

            self._background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="indb-batch")
        return kernels.submit_quietly(self._background, fn, *args)

    def _drain(self, key=None) -> None:
        """Wait for (and drop) pending background work: one key's, or all of it."""
        for k in ([key] if key is not None else list(self.pending)):
            pending = self.pending.pop(k, None)
            if pending is not None:
                pending[1].set()  # nobody wants its answers: stop it at its next check
                try:
                    pending[0].result()
                except BaseException:  # noqa: BLE001 - an abandoned chunk's error has no caller left
                    pass
