-- indb:requires core 1
-- The PL/Python component: the untrusted language and a probe of the Python runtime
-- that the shared evaluator will use (the system Python, not a virtual environment).
-- Needs a superuser; the core catalog never waits on this track.

SET LOCAL search_path = pg_catalog, pg_temp;

CREATE EXTENSION IF NOT EXISTS plpython3u;

CREATE FUNCTION indb.plpython_runtime()
RETURNS jsonb
LANGUAGE plpython3u
STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
# What the evaluator will run on: the interpreter PostgreSQL embeds and its numpy.
import json
import sys

import numpy

return json.dumps({"python": sys.version.split()[0], "numpy": numpy.__version__})
$fn$;
REVOKE ALL ON FUNCTION indb.plpython_runtime() FROM PUBLIC;
ALTER FUNCTION indb.plpython_runtime() OWNER TO indb_owner;
GRANT EXECUTE ON FUNCTION indb.plpython_runtime() TO indb_deployer, indb_auditor;
