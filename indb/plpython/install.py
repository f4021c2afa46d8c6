"""The SQL that installs the PL/Python engine, rendered from the engine's own sources.

The plpython component's repeatable definition ``engine`` (see ``indb.catalog.migrator``)
is :func:`render`'s text: the sources of the modules in ``MODULES`` stored as data in the
body of ``indb.engine_boot()``, and the entry points that boot it. The migrator re-creates
it whenever its checksum changes, so changing the engine is a diff of its Python source
alone. (Released versions before this scheme embedded the sources in
``migrations/plpython/0002``-``0004``; those files stay as they were applied.)
"""

from __future__ import annotations

import hashlib
import importlib.resources

#: (module name inside the database, its source file in the package), in import order
MODULES = (
    ("indb.ir.nodes", "ir/nodes.py"),
    ("indb.ir", "ir/__init__.py"),
    ("indb.ir.validate", "ir/validate.py"),
    ("indb.ir.kernels", "ir/kernels.py"),
    ("indb.ir.evaluate", "ir/evaluate.py"),
    ("indb.plpython.rowcode", "plpython/rowcode.py"),
    ("indb.plpython.engine", "plpython/engine.py"),
)
#: packages the modules live in (created empty unless their __init__ is in MODULES)
PACKAGES = ("indb", "indb.ir", "indb.plpython")
TAG = "$indb_engine$"

_HEADER = """\
-- indb:requires core 5
-- The PL/Python engine (rendered by indb.plpython.install from the engine's sources).
--
-- indb.engine_boot() holds the evaluator's sources ({modules}) as data in its body;
-- a backend executes them once and keeps the engine in PL/Python's GD. Only a
-- superuser can create or replace a plpython3u function. The checked entry points are
-- SECURITY DEFINER (indb_owner) because they read versions.ir, which scorers cannot;
-- scorers may execute them, and the engine scores a version only for a session user who
-- may execute that version's own function (so per-model grants hold). A row entry
-- point's fast path scores only what its checked path admitted for the same statement
-- and session user, as the server reports them.
-- Engine sources SHA-256: {sha}

SET LOCAL search_path = pg_catalog, pg_temp;
"""

_BOOT = """
CREATE OR REPLACE FUNCTION indb.engine_boot()
RETURNS text
LANGUAGE plpython3u
SET search_path = pg_catalog, indb, pg_temp
AS {tag}
# Loads the engine into this backend (once per backend and engine version).
import sys
import types

SHA = {sha!r}
SOURCES = {sources}

if GD.get("indb_engine_sha") != SHA:
    for name in {packages!r}:
        package = types.ModuleType(name)
        package.__path__ = []
        package.__file__ = "<" + name + ">"
        sys.modules[name] = package
        if "." in name:
            parent, _, child = name.rpartition(".")
            setattr(sys.modules[parent], child, package)
    for name, source in SOURCES:
        module = sys.modules[name] if name in {packages!r} else types.ModuleType(name)
        module.__file__ = "<" + name + ">"
        sys.modules[name] = module
        parent, _, child = name.rpartition(".")
        if name not in {packages!r}:
            setattr(sys.modules[parent], child, module)
        exec(compile(source, "<" + name + ">", "exec"), module.__dict__)
    GD["indb_engine"] = sys.modules["indb.plpython.engine"].Engine(plpy)
    GD["indb_engine_sha"] = SHA
return SHA
{tag};
REVOKE ALL ON FUNCTION indb.engine_boot() FROM PUBLIC;
ALTER FUNCTION indb.engine_boot() OWNER TO indb_owner;
-- the check of a stored IR (plpython 0005) runs as the deployer who inserts the version
GRANT EXECUTE ON FUNCTION indb.engine_boot() TO indb_deployer;
"""

# The engine's own functions: no query inside (see indb.plpython.engine.Engine), owned
# by indb_owner and executable by it alone (the entry points below run as indb_owner).
_INNER = """
CREATE OR REPLACE FUNCTION indb.engine_state(model text, version integer, settings text[])
RETURNS text
LANGUAGE plpython3u
STABLE PARALLEL SAFE
AS {tag}
if GD.get("indb_engine_sha") != {sha!r}:
    return None
return GD["indb_engine"].state(model, version, settings)
{tag};
REVOKE ALL ON FUNCTION indb.engine_state(text, integer, text[]) FROM PUBLIC;
ALTER FUNCTION indb.engine_state(text, integer, text[]) OWNER TO indb_owner;

CREATE OR REPLACE FUNCTION indb.engine_load(model text, version integer, ir text, ir_sha256 text, ir_xmin text, settings text[])
RETURNS void
LANGUAGE plpython3u
STABLE PARALLEL SAFE
AS {tag}
GD["indb_engine"].load(model, version, ir, ir_sha256, ir_xmin)
GD["indb_engine"].state(model, version, settings)
{tag};
REVOKE ALL ON FUNCTION indb.engine_load(text, integer, text, text, text, text[]) FROM PUBLIC;
ALTER FUNCTION indb.engine_load(text, integer, text, text, text, text[]) OWNER TO indb_owner;

-- Whether an entry point has checked this version for this statement and session user
-- in this backend; with admit, that it just has (so that the statement's next rows skip
-- the checks).
CREATE OR REPLACE FUNCTION indb.engine_admission(model text, version integer, stmt timestamp with time zone,
                                                 xact timestamp with time zone, who name, admit boolean)
RETURNS boolean
LANGUAGE plpython3u
STABLE PARALLEL SAFE
AS {tag}
if admit:
    GD["indb_engine"].admit(model, version, (stmt, xact, who))
    return True
if GD.get("indb_engine_sha") != {sha!r}:
    return False
return GD["indb_engine"].admitted(model, version, (stmt, xact, who))
{tag};
REVOKE ALL ON FUNCTION indb.engine_admission(text, integer, timestamp with time zone, timestamp with time zone, name, boolean) FROM PUBLIC;
ALTER FUNCTION indb.engine_admission(text, integer, timestamp with time zone, timestamp with time zone, name, boolean) OWNER TO indb_owner;
"""

# The engine's own scoring functions, <entry>_run (every entry point's) and <entry>_fast
# (a row entry point's fast path, below): PL/Python that hands the call to the engine
# (``body``), owned by indb_owner.
_ENGINE_FN = """
CREATE OR REPLACE FUNCTION indb.{fn}(model text, version integer, output text, {args})
RETURNS {returns}
LANGUAGE plpython3u
{volatility}
AS {tag}
{body}
{tag};
REVOKE ALL ON FUNCTION indb.{fn}(text, integer, text, {types}) FROM PUBLIC;
ALTER FUNCTION indb.{fn}(text, integer, text, {types}) OWNER TO indb_owner;
"""
_RUN_BODY = 'return GD["indb_engine"].{method}(model, version, output, {call})'
_FAST_BODY = """if GD.get("indb_engine_sha") != {sha!r}:
    return None
return GD["indb_engine"].row_admitted(model, version, output, {call})"""

# An entry point: PL/pgSQL (its queries need no subtransaction, so it runs in parallel
# workers too) that checks the version and the session user's right to score it, gives
# this backend's engine the IR when it holds none or a stale copy (the row's xmin changes
# with any UPDATE), and calls the PL/Python function that scores. The checks run on the
# first call of each statement (and transaction, and session user) in each backend, as
# PostgreSQL checks a function's EXECUTE right once per statement: the engine remembers
# what it admitted (engine_admission), and later rows of the statement go straight to the
# scoring (measured: the checks were 70 of 125 µs a row of RandomForest 100x8).
_ENTRY = """
CREATE OR REPLACE FUNCTION indb.{entry}(model text, version integer, output text, {args})
RETURNS {returns}
LANGUAGE plpgsql
{volatility} SECURITY DEFINER
SET search_path = pg_catalog, indb, pg_temp
AS {tag}
DECLARE
    v record;
    settings text[];
BEGIN
    IF indb.engine_admission(model, version, pg_catalog.statement_timestamp(), pg_catalog.transaction_timestamp(), session_user, false) THEN
        RETURN indb.{name}_run(model, version, output, {call});
    END IF;
    SELECT r.xmin::text AS ir_xmin, r.ir_sha256, r.retired_at IS NOT NULL AS retired,
           (SELECT pg_catalog.bool_or(pg_catalog.has_function_privilege(session_user, f.fn::oid, 'EXECUTE'))
              FROM indb.version_functions AS f WHERE f.model = r.model AND f.version = r.version) AS allowed
      INTO v FROM indb.versions AS r WHERE r.model = {entry}.model AND r.version = {entry}.version;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'indb: model % has no version %', pg_catalog.quote_literal(model), version
            USING ERRCODE = 'undefined_object';
    END IF;
    IF v.retired THEN
        RAISE EXCEPTION 'indb: version % of model % is retired and cannot be scored', version, pg_catalog.quote_literal(model)
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF NOT COALESCE(v.allowed, false) THEN
        RAISE EXCEPTION 'indb: permission denied to score %@%: ask for `indb grant scorer <you> --model %`', model, version, model
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    settings := ARRAY[pg_catalog.current_setting('indb.engine_threads', true),
                      pg_catalog.current_setting('max_parallel_workers_per_gather'),
                      pg_catalog.current_setting('indb.engine_compile_after', true)];
    IF indb.engine_state(model, version, settings) IS DISTINCT FROM v.ir_xmin || ' ' || v.ir_sha256 THEN
        PERFORM indb.engine_boot();
        PERFORM indb.engine_load(model, version,
                                 (SELECT r.ir FROM indb.versions AS r WHERE r.model = {entry}.model AND r.version = {entry}.version),
                                 v.ir_sha256, v.ir_xmin, settings);
    END IF;
    PERFORM indb.engine_admission(model, version, pg_catalog.statement_timestamp(), pg_catalog.transaction_timestamp(), session_user, true);
    RETURN indb.{name}_run(model, version, output, {call});
END
{tag};
REVOKE ALL ON FUNCTION indb.{entry}(text, integer, text, {types}) FROM PUBLIC;
ALTER FUNCTION indb.{entry}(text, integer, text, {types}) OWNER TO indb_owner;
"""

# A row entry point (engine_float, engine_array, engine_text; what a version's own
# function calls for each row) puts a fast path in front of the checked one above, named
# <entry>_checked: a PL/Python function that scores the row only when this statement's
# checked entry point has admitted the version (Engine.row_admitted reads the statement,
# transaction and session user from the server: no argument can fake them), and the
# entry point itself, SQL that PostgreSQL inlines into the caller's query: the fast
# path's answer, or the checked path's when the fast path has none (the statement's
# first row in each backend; a row whose answer is NULL is simply scored again). The
# checked path's SECURITY DEFINER and pinned search_path cost about 15 µs a row around
# a PL/Python call; the fast path runs no query, so it needs neither.
_ROW_ENTRY = """GRANT EXECUTE ON FUNCTION indb.{name}_fast(text, integer, text, {types}) TO indb_scorer_base;
GRANT EXECUTE ON FUNCTION indb.{name}_checked(text, integer, text, {types}) TO indb_scorer_base;

CREATE OR REPLACE FUNCTION indb.{name}(model text, version integer, output text, {args})
RETURNS {returns}
LANGUAGE sql
{volatility}
RETURN COALESCE(indb.{name}_fast(model, version, output, {call}), indb.{name}_checked(model, version, output, {call}));
REVOKE ALL ON FUNCTION indb.{name}(text, integer, text, {types}) FROM PUBLIC;
ALTER FUNCTION indb.{name}(text, integer, text, {types}) OWNER TO indb_owner;
"""

ENTRIES = (
    # name, args, types, returns, method, call
    ("engine_float", "nums double precision[], texts text[]", "double precision[], text[]", "double precision", "row", "nums, texts"),
    ("engine_array", "nums double precision[], texts text[]", "double precision[], text[]", "double precision[]", "row", "nums, texts"),
    ("engine_text", "nums double precision[], texts text[]", "double precision[], text[]", "text", "row", "nums, texts"),
    ("engine_chunk", "nums bytea, n integer, texts text[]", "bytea, integer, text[]", "double precision[]", "chunk", "nums, n, texts"),
    ("engine_chunk_text", "nums bytea, n integer, texts text[]", "bytea, integer, text[]", "text[]", "chunk", "nums, n, texts"),
    # the pipelined batch path (Engine.chunk_next): it keeps work in flight between calls
    ("engine_chunk_next", "nums bytea, n integer, texts text[], token bigint", "bytea, integer, text[], bigint", "double precision[]",
     "chunk_next", "nums, n, texts, token"),
    ("engine_chunk_next_text", "nums bytea, n integer, texts text[], token bigint", "bytea, integer, text[], bigint", "text[]",
     "chunk_next", "nums, n, texts, token"),
)

# Said once per statement and backend (not once per row) when a query leaves the fast
# path: PL/Python's GD is the only memory a parallel worker may write (set_config is
# refused during a parallel operation), and no query runs here.
_NOTICE = """
DROP FUNCTION IF EXISTS indb.engine_notice_once(text, text);  -- its message was built on every row
DROP FUNCTION IF EXISTS indb.engine_generic_notice(timestamp with time zone, text, text);  -- the message moved to SQL

-- The generic path's once-per-statement flag (sql/10_generic_path.sql, indb.call_version):
-- called on every row with what it has anyway (~5 µs), true for the first call of a
-- statement (and reference) in this backend; the caller then says why the query left the
-- fast path, naming the tables bound to the model, which only a query can find.
CREATE OR REPLACE FUNCTION indb.engine_generic_first(at timestamp with time zone, ref text)
RETURNS boolean
LANGUAGE plpython3u
STABLE PARALLEL SAFE
AS {tag}
if GD.get("indb_generic_notice") == (at, ref):
    return False
GD["indb_generic_notice"] = (at, ref)
return True
{tag};
REVOKE ALL ON FUNCTION indb.engine_generic_first(timestamp with time zone, text) FROM PUBLIC;
ALTER FUNCTION indb.engine_generic_first(timestamp with time zone, text) OWNER TO indb_owner;
GRANT EXECUTE ON FUNCTION indb.engine_generic_first(timestamp with time zone, text) TO indb_scorer, indb_scorer_base;

-- The generic path's memory of the statement it runs for a reference (indb.generic_call):
-- with a value, keep it under key (whose last items say which statement: a new one
-- forgets the last one's); without, the value kept (NULL: none). Executable by its owner
-- alone: what it keeps is executed, so only indb.generic_call (SECURITY DEFINER) writes it.
CREATE OR REPLACE FUNCTION indb.engine_generic_memo(key text[], value text)
RETURNS text
LANGUAGE plpython3u
STABLE PARALLEL SAFE
AS {tag}
memo = GD.get("indb_generic_memo")
at = tuple(key[3:])
if memo is None or memo[0] != at:
    if value is None:
        return None
    memo = GD["indb_generic_memo"] = (at, {{}})
if value is None:
    return memo[1].get(tuple(key[:3]))
memo[1][tuple(key[:3])] = value
return value
{tag};
REVOKE ALL ON FUNCTION indb.engine_generic_memo(text[], text) FROM PUBLIC;
ALTER FUNCTION indb.engine_generic_memo(text[], text) OWNER TO indb_owner;
"""

_FOOTER = """
-- indb_scorer_base is the shared part of every scorer (indb_scorer and the per-model roles)
GRANT EXECUTE ON FUNCTION indb.engine_float(text, integer, text, double precision[], text[]) TO indb_scorer_base;
GRANT EXECUTE ON FUNCTION indb.engine_array(text, integer, text, double precision[], text[]) TO indb_scorer_base;
GRANT EXECUTE ON FUNCTION indb.engine_text(text, integer, text, double precision[], text[]) TO indb_scorer_base;
GRANT EXECUTE ON FUNCTION indb.engine_chunk(text, integer, text, bytea, integer, text[]) TO indb_scorer_base;
GRANT EXECUTE ON FUNCTION indb.engine_chunk_text(text, integer, text, bytea, integer, text[]) TO indb_scorer_base;
GRANT EXECUTE ON FUNCTION indb.engine_chunk_next(text, integer, text, bytea, integer, text[], bigint) TO indb_scorer_base;
GRANT EXECUTE ON FUNCTION indb.engine_chunk_next_text(text, integer, text, bytea, integer, text[], bigint) TO indb_scorer_base;
"""


def sources() -> dict[str, str]:
    """Each engine module's source text, read from the installed package."""
    root = importlib.resources.files("indb")
    return {name: root.joinpath(path).read_text(encoding="utf-8") for name, path in MODULES}


def sources_sha(src: dict[str, str]) -> str:
    h = hashlib.sha256()
    for name, _ in MODULES:
        h.update(name.encode() + b"\0" + src[name].encode() + b"\0")
    return h.hexdigest()


def render() -> str:
    """The engine's repeatable definition: the SQL that (re)creates every engine function."""
    src = sources()
    for name, text in src.items():
        if TAG in text:
            raise ValueError(f"{name} contains the dollar-quote tag {TAG}")
    sha = sources_sha(src)
    body = "(\n" + "".join(f"    ({name!r}, {src[name]!r}),\n" for name, _ in MODULES) + ")"
    out = [_HEADER.format(modules=", ".join(name for name, _ in MODULES), sha=sha),
           _BOOT.format(tag=TAG, sha=sha, sources=body, packages=PACKAGES),
           _INNER.format(tag=TAG, sha=sha)]
    for name, args, types, returns, method, call in ENTRIES:
        volatility = "VOLATILE PARALLEL UNSAFE" if method == "chunk_next" else "STABLE PARALLEL SAFE"
        entry = name + "_checked" if method == "row" else name
        fn = dict(args=args, types=types, returns=returns, tag=TAG, volatility=volatility)
        out.append(_ENGINE_FN.format(fn=name + "_run", body=_RUN_BODY.format(method=method, call=call), **fn))
        out.append(_ENTRY.format(name=name, entry=entry, call=call, **fn))
        if method == "row":
            out.append(_ENGINE_FN.format(fn=name + "_fast", body=_FAST_BODY.format(sha=sha, call=call), **fn))
            out.append(_ROW_ENTRY.format(name=name, call=call, **fn))
    out.append(_NOTICE.format(tag=TAG))
    out.append(_FOOTER)
    return "".join(out)
