-- Logged scoring: a compact prediction log and the only two ways to write it,
-- indb.score(...) (a table, set-based) and indb.predict_logged(...) (one row, online).
-- Run by a superuser (a DBA): it changes tables that belong to indb_log_writer.
--
-- Who writes what (the trust model; README "The prediction log" says the same):
--
-- * indb_log_writer owns the log tables and schema indb, opens and closes scoring calls
--   (stamped with session_user, the version and its IR checksum) and never executes code
--   that a deployer or a caller controls: its functions pin search_path to pg_catalog,
--   pg_temp and read no table of indb_owner.
-- * indb_compute evaluates the model and inserts the log rows. Nobody is a member of it.
--   Row-level security lets it insert only rows of the call that log_writer opened in
--   the current transaction for the session user (committed calls are always closed).
--   It runs the version's scoring function (indb_owner's code: trusted to compute the
--   model, and checked against the stored IR by `indb validate`) on data it reads from
--   a temporary view of the caller, which it first verifies to be a plain projection of
--   one table without row-level security (so no caller code runs as indb_compute).
-- * Callers (scorers) reach both roles only through indb.log_score / indb.log_predict,
--   which recompute every logged prediction from the logged features: a caller chooses
--   what to score, never what the model answered. Deployers cannot insert, change or
--   delete log rows, drop the log (the schema is not theirs) or replace these functions.

SET LOCAL search_path = pg_catalog, pg_temp;

DO $superuser$
BEGIN
    IF NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles AS r WHERE r.rolname OPERATOR(pg_catalog.=) current_user) THEN
        RAISE EXCEPTION 'migration 0006 changes the prediction log, which belongs to indb_log_writer: run indb migrate as a superuser'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
END
$superuser$;

-- ---------------------------------------------------------------- the row table

-- 0003 stored each row's features and prediction as jsonb and repeated the model,
-- version and checksum on every row. The new rows carry numbers in model order and
-- refer to their call for the rest; old rows are converted, then the old table goes.
ALTER TABLE indb.prediction_log RENAME TO prediction_log_0003;
DO $rename$
DECLARE
    part text;
BEGIN
    FOR part IN
        SELECT c.relname FROM pg_catalog.pg_inherits AS i JOIN pg_catalog.pg_class AS c ON c.oid OPERATOR(pg_catalog.=) i.inhrelid
        WHERE i.inhparent OPERATOR(pg_catalog.=) 'indb.prediction_log_0003'::regclass
    LOOP
        EXECUTE pg_catalog.format('ALTER TABLE indb.%I RENAME TO %I', part,
            'prediction_log_0003' OPERATOR(pg_catalog.||) pg_catalog.substr(part, pg_catalog.length('prediction_log') OPERATOR(pg_catalog.+) 1));
    END LOOP;
END
$rename$;

SET LOCAL ROLE indb_log_writer;

CREATE TABLE indb.prediction_log (
    logged_at     timestamptz      NOT NULL,  -- the call's called_at: rows land in their call's day
    call_id       bigint           NOT NULL,
    row_key       text,
    features      double precision[] NOT NULL, -- numeric features in model order (NULL at text features)
    features_text text[],                      -- text features in model order; NULL when the model has none
    prediction    double precision,            -- the predict output (a numeric class label or value)
    label         text                         -- the class label, for models whose labels are text
) PARTITION BY RANGE (logged_at);
COMMENT ON TABLE indb.prediction_log IS
    'Logged rows: features and prediction per row; who, when, which version and checksum are on the row''s call (indb.scoring_calls). Read through indb.logged_predictions.';

-- Partitions for every day scoring_calls has one (the old rows go there), same bounds.
DO $parts$
DECLARE
    p record;
BEGIN
    FOR p IN
        SELECT c.relname, pg_catalog.pg_get_expr(c.relpartbound, c.oid) AS bound
        FROM pg_catalog.pg_inherits AS i JOIN pg_catalog.pg_class AS c ON c.oid OPERATOR(pg_catalog.=) i.inhrelid
        WHERE i.inhparent OPERATOR(pg_catalog.=) 'indb.scoring_calls'::regclass
    LOOP
        EXECUTE pg_catalog.format('CREATE TABLE indb.%I PARTITION OF indb.prediction_log %s',
            'prediction_log' OPERATOR(pg_catalog.||) pg_catalog.substr(p.relname, pg_catalog.length('scoring_calls') OPERATOR(pg_catalog.+) 1), p.bound);
    END LOOP;
END
$parts$;

RESET ROLE;
-- As the superuser: reads the versions' feature lists, and sees every old row.
INSERT INTO indb.prediction_log (logged_at, call_id, row_key, features, features_text, prediction, label)
SELECT c.called_at, o.call_id, o.row_key,
       ARRAY(SELECT CASE WHEN f.value ->> 1 = 'text' THEN NULL ELSE (o.features ->> (f.value ->> 0))::double precision END
             FROM pg_catalog.jsonb_array_elements(v.features) WITH ORDINALITY AS f ORDER BY f.ordinality),
       CASE WHEN EXISTS (SELECT FROM pg_catalog.jsonb_array_elements(v.features) AS f WHERE f.value ->> 1 = 'text')
            THEN ARRAY(SELECT CASE WHEN f.value ->> 1 = 'text' THEN o.features ->> (f.value ->> 0) END
                       FROM pg_catalog.jsonb_array_elements(v.features) WITH ORDINALITY AS f ORDER BY f.ordinality) END,
       CASE WHEN pg_catalog.jsonb_typeof(o.prediction) = 'number' THEN (o.prediction #>> '{}')::double precision END,
       CASE WHEN pg_catalog.jsonb_typeof(o.prediction) = 'string' THEN o.prediction #>> '{}' END
FROM indb.prediction_log_0003 AS o
JOIN indb.scoring_calls AS c ON c.call_id = o.call_id
JOIN indb.versions AS v ON v.model = o.model AND v.version = o.version;
DROP TABLE indb.prediction_log_0003;

-- The log writer reads nothing of indb_owner's (a policy on it would run as the writer).
REVOKE ALL ON indb.versions FROM indb_log_writer;

SET LOCAL ROLE indb_log_writer;

ALTER TABLE indb.prediction_log ENABLE ROW LEVEL SECURITY;
CREATE POLICY auditor_reads_all ON indb.prediction_log FOR SELECT TO indb_auditor USING (true);
CREATE POLICY scorer_reads_own ON indb.prediction_log FOR SELECT TO indb_scorer_base
    USING (call_id OPERATOR(pg_catalog.=) ANY (
        SELECT c.call_id FROM indb.scoring_calls AS c WHERE c.called_by OPERATOR(pg_catalog.=) session_user));
-- The only INSERT anyone may do: indb_compute, into the call that is open in this
-- transaction for the session user. A committed call is always finished, and an
-- uncommitted one of another transaction is invisible, so the subquery sees at most
-- the current one (two would raise, which is fail-closed too).
-- (Each subquery is uncorrelated: evaluated once per statement, not per row.)
CREATE POLICY compute_logs_the_open_call ON indb.prediction_log FOR INSERT TO indb_compute
    WITH CHECK (call_id OPERATOR(pg_catalog.=) (
                    SELECT c.call_id FROM indb.scoring_calls AS c
                    WHERE c.called_by OPERATOR(pg_catalog.=) session_user AND c.finished_at IS NULL
                      AND c.called_at OPERATOR(pg_catalog.>=) pg_catalog.now())
                AND logged_at OPERATOR(pg_catalog.=) (
                    SELECT c.called_at FROM indb.scoring_calls AS c
                    WHERE c.called_by OPERATOR(pg_catalog.=) session_user AND c.finished_at IS NULL
                      AND c.called_at OPERATOR(pg_catalog.>=) pg_catalog.now()));
GRANT SELECT ON indb.prediction_log TO indb_scorer_base, indb_auditor;
GRANT INSERT ON indb.prediction_log TO indb_compute;

CREATE INDEX scoring_calls_open ON indb.scoring_calls (called_by) WHERE finished_at IS NULL;
CREATE POLICY scorer_base_reads_own ON indb.scoring_calls FOR SELECT TO indb_scorer_base
    USING (called_by OPERATOR(pg_catalog.=) session_user);
GRANT SELECT ON indb.scoring_calls TO indb_scorer_base;

-- What `indb log prune` may drop: nothing younger than min_retention (only a superuser
-- changes it), so retention cannot be used to delete recent history.
CREATE TABLE indb.log_settings (
    singleton     boolean  PRIMARY KEY DEFAULT true CHECK (singleton),
    min_retention interval NOT NULL DEFAULT '30 days' CHECK (min_retention OPERATOR(pg_catalog.>=) '1 day'::interval),
    days_ahead    integer  NOT NULL DEFAULT 7 CHECK (days_ahead OPERATOR(pg_catalog.>=) 1 AND days_ahead OPERATOR(pg_catalog.<=) 366)
);
INSERT INTO indb.log_settings DEFAULT VALUES;
GRANT SELECT ON indb.log_settings TO indb_owner, indb_deployer, indb_auditor;

CREATE VIEW indb.logged_predictions WITH (security_invoker = true) AS
SELECT c.call_id, c.called_at, c.called_by, c.model, c.version, c.ir_sha256, c.entry_point, c.source, c.target,
       c.request_id, r.row_key, r.features, r.features_text, r.prediction, r.label
FROM indb.prediction_log AS r
JOIN indb.scoring_calls AS c ON c.call_id OPERATOR(pg_catalog.=) r.call_id AND c.called_at OPERATOR(pg_catalog.=) r.logged_at;
COMMENT ON VIEW indb.logged_predictions IS 'Logged rows with their call (who, when, version, checksum); row-level security of the reader applies.';
GRANT SELECT ON indb.logged_predictions TO indb_scorer_base, indb_auditor;

-- ------------------------------------------------------------ partitions, calls

DROP FUNCTION indb.log_rows(bigint, jsonb);
DROP FUNCTION indb.log_call(text, integer, text, text, text, double precision, text);
DROP FUNCTION indb.log_call_finish(bigint, bigint);

CREATE OR REPLACE FUNCTION indb.log_ensure_partitions(days_ahead integer DEFAULT 7)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
-- Creates the missing daily partitions (UTC) of both log tables from today through
-- today + days_ahead; returns how many it created. Concurrent callers are fine. A
-- table of the partition's name that is not that partition is an error, not "there".
DECLARE
    today   date := (pg_catalog.now() AT TIME ZONE 'UTC')::date;
    day     date;
    parent  text;
    part    text;
    found   regclass;
    created integer := 0;
BEGIN
    IF days_ahead IS NULL OR days_ahead < 0 OR days_ahead > 366 THEN
        RAISE EXCEPTION 'days_ahead must be between 0 and 366, not %', days_ahead
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR day IN SELECT d::date FROM pg_catalog.generate_series(today, today + days_ahead, interval '1 day') AS d LOOP
        FOREACH parent IN ARRAY ARRAY['scoring_calls', 'prediction_log'] LOOP
            part := parent || '_p' || pg_catalog.to_char(day, 'YYYYMMDD');
            found := pg_catalog.to_regclass(pg_catalog.format('indb.%I', part));
            IF found IS NOT NULL THEN
                IF NOT EXISTS (SELECT FROM pg_catalog.pg_inherits AS i
                               WHERE i.inhrelid = found AND i.inhparent = pg_catalog.format('indb.%I', parent)::regclass) THEN
                    RAISE EXCEPTION 'indb: % exists but is not a partition of indb.%', found, parent
                        USING ERRCODE = 'duplicate_table', HINT = 'a superuser drops or renames it; then indb log maintain';
                END IF;
                CONTINUE;
            END IF;
            BEGIN
                EXECUTE pg_catalog.format(
                    'CREATE TABLE indb.%I PARTITION OF indb.%I FOR VALUES FROM (%L) TO (%L)',
                    part, parent,
                    pg_catalog.to_char(day, 'YYYY-MM-DD') || ' 00:00:00+00',
                    pg_catalog.to_char(day + 1, 'YYYY-MM-DD') || ' 00:00:00+00');
                created := created + 1;
            EXCEPTION WHEN duplicate_table OR unique_violation THEN
                NULL;
            END;
        END LOOP;
    END LOOP;
    RETURN created;
END
$fn$;
REVOKE ALL ON FUNCTION indb.log_ensure_partitions(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION indb.log_ensure_partitions(integer) TO indb_owner, indb_deployer;

-- Internal (no grants): only indb_log_writer's own functions call these.
CREATE FUNCTION indb.log_open(model text, version integer, ir_sha256 text, entry_point text, target text,
                              sample_rate double precision, request_id text,
                              OUT call_id bigint, OUT called_at timestamptz)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    IF pg_catalog.to_regclass(pg_catalog.format('indb.%I',
            'prediction_log_p' || pg_catalog.to_char((pg_catalog.now() AT TIME ZONE 'UTC')::date + 1, 'YYYYMMDD'))) IS NULL THEN
        PERFORM indb.log_ensure_partitions((SELECT s.days_ahead FROM indb.log_settings AS s));
    END IF;
    INSERT INTO indb.scoring_calls AS c (model, version, ir_sha256, entry_point, target, sample_rate, request_id)
    VALUES (log_open.model, log_open.version, log_open.ir_sha256, log_open.entry_point, log_open.target,
            log_open.sample_rate, log_open.request_id)
    RETURNING c.call_id, c.called_at INTO call_id, called_at;
END
$fn$;
REVOKE ALL ON FUNCTION indb.log_open(text, integer, text, text, text, double precision, text) FROM PUBLIC;

CREATE FUNCTION indb.log_finish(call_id bigint, called_at timestamptz, source text, rows_scored bigint, rows_logged bigint)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    UPDATE indb.scoring_calls AS c
    SET source = log_finish.source, rows_scored = log_finish.rows_scored, rows_logged = log_finish.rows_logged,
        finished_at = pg_catalog.clock_timestamp()
    WHERE c.call_id = log_finish.call_id AND c.called_at = log_finish.called_at
      AND c.called_by = session_user AND c.finished_at IS NULL;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'indb: scoring call % is not an open call of %', log_finish.call_id, session_user
            USING ERRCODE = 'insufficient_privilege';
    END IF;
END
$fn$;
REVOKE ALL ON FUNCTION indb.log_finish(bigint, timestamptz, text, bigint, bigint) FROM PUBLIC;

-- ------------------------------------------------ the per-version call, in one place

-- The SQL that computes one output of one version from argument expressions (model
-- order). Every logged path builds its calls here, so an engine with a faster entry
-- point plugs in at this one function. Runs as its caller (never as the log writer).
CREATE FUNCTION indb.output_sql(model text, version integer, output text, args text[])
RETURNS text
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    call text;
BEGIN
    SELECT pg_catalog.format('%I.%I(%s)', n.nspname, p.proname, pg_catalog.array_to_string(args, ', '))
      INTO call
      FROM indb.version_functions AS f
      JOIN pg_catalog.pg_proc AS p ON p.oid = f.fn::oid
      JOIN pg_catalog.pg_namespace AS n ON n.oid = p.pronamespace
     WHERE f.model = output_sql.model AND f.version = output_sql.version AND f.output = output_sql.output;
    IF call IS NULL THEN
        RAISE EXCEPTION 'indb: model % has no % output', pg_catalog.quote_literal(model || '@' || version), output
            USING ERRCODE = 'feature_not_supported';
    END IF;
    RETURN call;
END
$fn$;
REVOKE ALL ON FUNCTION indb.output_sql(text, integer, text, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION indb.output_sql(text, integer, text, text[]) TO indb_scorer_base;

-- The SQL of a column as a model input: a number (numeric types only) or text
-- (built-in types only, so that no user-defined cast runs where this SQL runs).
CREATE FUNCTION indb.input_sql(rel regclass, rel_alias text, column_name text, kind text, what text)
RETURNS text
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    typ     oid;
    base    oid;
    typtype "char";
BEGIN
    SELECT a.atttypid INTO typ FROM pg_catalog.pg_attribute AS a
    WHERE a.attrelid = rel AND a.attname = column_name AND a.attnum > 0 AND NOT a.attisdropped;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'indb: table % has no column % for %', rel, pg_catalog.quote_ident(column_name), what
            USING ERRCODE = 'undefined_column', HINT = 'rename the column, or deploy with --features naming the table''s columns';
    END IF;
    base := typ;
    LOOP
        SELECT t.typtype, t.typbasetype INTO typtype, typ FROM pg_catalog.pg_type AS t WHERE t.oid = base;
        EXIT WHEN typtype <> 'd';
        base := typ;
    END LOOP;
    IF kind = 'float' THEN
        IF base <> ALL (ARRAY['pg_catalog.float8'::regtype, 'pg_catalog.float4'::regtype, 'pg_catalog.int2'::regtype,
                              'pg_catalog.int4'::regtype, 'pg_catalog.int8'::regtype, 'pg_catalog.numeric'::regtype]::oid[]) THEN
            RAISE EXCEPTION 'indb: feature % of % must be a number, but column %.% is %', pg_catalog.quote_ident(column_name),
                what, rel, pg_catalog.quote_ident(column_name), pg_catalog.format_type(base, NULL)
                USING ERRCODE = 'datatype_mismatch', HINT = 'cast the column to double precision in a table of its own first';
        END IF;
        RETURN pg_catalog.format('%I.%I::double precision', rel_alias, column_name);
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_type AS t WHERE t.oid = base AND t.typnamespace = 'pg_catalog'::regnamespace) THEN
        RAISE EXCEPTION 'indb: column %.% (% of %) has type %; logged scoring reads built-in types only', rel,
            pg_catalog.quote_ident(column_name), kind, what, pg_catalog.format_type(base, NULL)
            USING ERRCODE = 'datatype_mismatch', HINT = 'cast it to text in a table of its own first';
    END IF;
    RETURN pg_catalog.format('%I.%I::text', rel_alias, column_name);
END
$fn$;
REVOKE ALL ON FUNCTION indb.input_sql(regclass, text, text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION indb.input_sql(regclass, text, text, text, text) TO indb_scorer_base;

-- ------------------------------------------------------------ the compute sandbox
-- Created by the superuser and given to indb_compute (which cannot create in indb).

RESET ROLE;

CREATE FUNCTION indb.compute_prepare(model text, version integer, acting_role name,
                                     OUT ir_sha256 text, OUT engine text, OUT predict_output text)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
-- Checks that the caller (acting as acting_role) may score the version; returns what
-- the log writer stamps the call with.
DECLARE
    v  record;
    fn oid;
BEGIN
    IF acting_role IS NULL OR NOT pg_catalog.pg_has_role(session_user, acting_role, 'MEMBER') THEN
        RAISE EXCEPTION 'indb: % cannot act as role %', session_user, acting_role USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT x.ir_sha256, x.engine, x.retired_at INTO v FROM indb.versions AS x
    WHERE x.model = compute_prepare.model AND x.version = compute_prepare.version;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'indb: model % has no version %', pg_catalog.quote_literal(model), version
            USING ERRCODE = 'undefined_object', HINT = 'indb models lists the deployed models and versions';
    END IF;
    IF v.retired_at IS NOT NULL THEN
        RAISE EXCEPTION 'indb: version % of model % is retired and cannot be scored', version, pg_catalog.quote_literal(model)
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    SELECT f.output, f.fn::oid INTO predict_output, fn FROM indb.version_functions AS f
    WHERE f.model = compute_prepare.model AND f.version = compute_prepare.version AND f.output = ANY (ARRAY['predict', 'label'])
    ORDER BY f.output = 'predict' DESC LIMIT 1;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'indb: model % has no prediction to log (it only transforms)', pg_catalog.quote_literal(model || '@' || version)
            USING ERRCODE = 'feature_not_supported';
    END IF;
    IF NOT pg_catalog.has_function_privilege(acting_role, fn, 'EXECUTE') THEN
        RAISE EXCEPTION 'indb: permission denied to score %: role % may not', pg_catalog.quote_literal(model || '@' || version), acting_role
            USING ERRCODE = 'insufficient_privilege', HINT = 'a DBA runs: indb grant scorer <user> --model ' || model;
    END IF;
    ir_sha256 := v.ir_sha256;
    engine := v.engine;
END
$fn$;
REVOKE ALL ON FUNCTION indb.compute_prepare(text, integer, name) FROM PUBLIC;
ALTER FUNCTION indb.compute_prepare(text, integer, name) OWNER TO indb_compute;

CREATE FUNCTION indb.compute_check_view(source_view regclass)
RETURNS regclass
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
-- The table behind a caller's temporary view, after checking that reading the view runs
-- no code of the caller's: the view must be a plain projection of one table (only the
-- node types of column references in its stored query tree), owned by a role the
-- session user can act as, over a table (or partitioned table, or materialised view)
-- without row-level security whose partitions are tables too.
DECLARE
    c    record;
    tree text;
    bad  text;
    rels oid[];
    base regclass;
BEGIN
    SELECT k.relkind, k.relnamespace, k.relowner INTO c FROM pg_catalog.pg_class AS k WHERE k.oid = source_view;
    IF NOT FOUND OR c.relkind <> 'v' OR c.relnamespace IS DISTINCT FROM pg_catalog.pg_my_temp_schema() THEN
        RAISE EXCEPTION 'indb: % is not a temporary view of this session', source_view USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NOT pg_catalog.pg_has_role(session_user, c.relowner, 'MEMBER') THEN
        RAISE EXCEPTION 'indb: % does not belong to %', source_view, session_user USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT r.ev_action::text INTO tree FROM pg_catalog.pg_rewrite AS r
    WHERE r.ev_class = source_view AND r.rulename = '_RETURN';
    SELECT m[1] INTO bad FROM pg_catalog.regexp_matches(tree, '\{([A-Za-z_]+)', 'g') AS m
    WHERE m[1] <> ALL (ARRAY['QUERY', 'RANGETBLENTRY', 'RTEPERMISSIONINFO', 'ALIAS', 'FROMEXPR', 'RANGETBLREF', 'TARGETENTRY', 'VAR'])
    LIMIT 1;
    IF bad IS NOT NULL OR EXISTS (SELECT FROM pg_catalog.regexp_matches(tree, ':rtekind ([0-9]+)', 'g') AS m WHERE m[1] <> '0') THEN
        RAISE EXCEPTION 'indb: the source view % is not a plain projection of one table (%)', source_view, COALESCE(bad, 'not a table')
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    rels := ARRAY(SELECT DISTINCT m[1]::oid FROM pg_catalog.regexp_matches(tree, ':relid ([0-9]+)', 'g') AS m
                  WHERE m[1]::oid <> source_view::oid);
    IF pg_catalog.cardinality(rels) <> 1
       OR (SELECT pg_catalog.count(*) FROM pg_catalog.regexp_matches(tree, ':inFromCl true', 'g')) <> 1 THEN
        RAISE EXCEPTION 'indb: the source view % reads % relations; it must read one table', source_view, pg_catalog.cardinality(rels)
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    base := rels[1]::regclass;
    IF EXISTS (SELECT FROM pg_catalog.pg_class AS k WHERE k.oid = base AND k.relrowsecurity) THEN
        RAISE EXCEPTION 'indb: % has row-level security; logged scoring cannot read it', base
            USING ERRCODE = 'feature_not_supported', HINT = 'score a copy: CREATE TABLE ... AS SELECT ... FROM ' || base::text;
    END IF;
    IF EXISTS (SELECT FROM pg_catalog.pg_class AS k WHERE k.oid = base AND k.relkind <> ALL (ARRAY['r', 'p', 'm']))
       OR EXISTS (WITH RECURSIVE d(oid) AS (
                      SELECT i.inhrelid FROM pg_catalog.pg_inherits AS i WHERE i.inhparent = base
                      UNION SELECT i.inhrelid FROM pg_catalog.pg_inherits AS i JOIN d ON i.inhparent = d.oid)
                  SELECT FROM d JOIN pg_catalog.pg_class AS k ON k.oid = d.oid WHERE k.relkind <> ALL (ARRAY['r', 'p'])) THEN
        RAISE EXCEPTION 'indb: % is not a table; logged scoring reads tables and materialised views', base
            USING ERRCODE = 'wrong_object_type', HINT = 'score a copy: CREATE TABLE ... AS SELECT ... FROM ' || base::text;
    END IF;
    RETURN base;
END
$fn$;
REVOKE ALL ON FUNCTION indb.compute_check_view(regclass) FROM PUBLIC;
ALTER FUNCTION indb.compute_check_view(regclass) OWNER TO indb_compute;


CREATE FUNCTION indb.compute_score(call_id bigint, called_at timestamptz, model text, version integer,
                                   source_view regclass, key_column text, keep text[], sample double precision,
                                   mode text, outputs text[], acting_role name,
                                   OUT source text, OUT rows_scored bigint, OUT rows_logged bigint, OUT stage regclass)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
-- Logs the rows of a verified view into the open call, evaluating their prediction here.
-- mode 'recompute': the caller has written its target already; the prediction of the
--   logged rows is evaluated again (cheap models: the data is read, not copied).
-- mode 'stage': every output is evaluated once into a temporary table, which the
--   caller copies its target from (costly models: one evaluation).
-- The log rows are inserted in chunks of the scanned table's blocks, with a NOTICE
-- per chunk for a terminal to show.
DECLARE
    what      text := pg_catalog.quote_literal(model || '@' || version);
    base      regclass;
    f         record;
    args      text[] := '{}';
    nums      text[] := '{}';
    texts     text[] := '{}';
    has_text  boolean := false;
    pred_out  text;
    pred_at   integer;
    key_sql   text := 'NULL::text';
    pick_sql  text;
    feats_sql text;
    texts_sql text;
    cols      text[] := '{}';
    i         integer;
    rows_sql  text;
    tid_sql   text;
    scan      regclass;
    nblocks   bigint;
    step      constant bigint := 4096;
    lo        bigint := 0;
    added     bigint;
BEGIN
    IF mode IS NULL OR mode <> ALL (ARRAY['recompute', 'stage']) THEN
        RAISE EXCEPTION 'indb: unknown scoring mode %', mode USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF sample IS NULL OR NOT (sample > 0 AND sample <= 1) THEN
        RAISE EXCEPTION 'indb: sample must be in (0, 1], not %', sample USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF acting_role IS NULL OR NOT pg_catalog.pg_has_role(session_user, acting_role, 'MEMBER') THEN
        RAISE EXCEPTION 'indb: % cannot act as role %', session_user, acting_role USING ERRCODE = 'insufficient_privilege';
    END IF;
    base := indb.compute_check_view(source_view);
    source := base::text;
    FOR f IN SELECT e.value ->> 0 AS name, e.value ->> 1 AS kind
             FROM indb.versions AS v, pg_catalog.jsonb_array_elements(v.features) WITH ORDINALITY AS e
             WHERE v.model = compute_score.model AND v.version = compute_score.version
             ORDER BY e.ordinality LOOP
        args := args || indb.input_sql(source_view, 'v', f.name, f.kind, 'model ' || what);
        IF f.kind = 'text' THEN
            has_text := true;
            nums := nums || 'NULL::double precision'::text;
            texts := texts || args[pg_catalog.cardinality(args)];
        ELSE
            nums := nums || args[pg_catalog.cardinality(args)];
            texts := texts || 'NULL::text'::text;
        END IF;
    END LOOP;
    feats_sql := 'ARRAY[' || pg_catalog.array_to_string(nums, ', ') || ']::double precision[]';
    texts_sql := CASE WHEN has_text THEN 'ARRAY[' || pg_catalog.array_to_string(texts, ', ') || ']::text[]' ELSE 'NULL::text[]' END;
    SELECT vf.output INTO pred_out FROM indb.version_functions AS vf
    WHERE vf.model = compute_score.model AND vf.version = compute_score.version AND vf.output = ANY (ARRAY['predict', 'label'])
    ORDER BY vf.output = 'predict' DESC LIMIT 1;
    IF key_column IS NOT NULL THEN
        key_sql := indb.input_sql(source_view, 'v', key_column, 'key', 'model ' || what);
    END IF;
    -- Deterministic sampling: a 64-bit hash of the key (of the features, without a key)
    -- mapped to [0, 1), below the rate.
    IF sample = 1 THEN
        pick_sql := 'true';
    ELSE
        pick_sql := pg_catalog.format(
            '(pg_catalog.hashtextextended(%s, 0)::double precision / 18446744073709551616.0 + 0.5) < %L::double precision',
            CASE WHEN key_column IS NULL THEN '(' || feats_sql || ')::text || ' || pg_catalog.quote_literal('|') || ' || COALESCE((' || texts_sql || ')::text, '''')'
                 ELSE key_sql END,
            sample);
    END IF;
    IF mode = 'recompute' THEN
        scan := base;
        tid_sql := 'v."__indb_tid"';
        rows_sql := pg_catalog.format('SELECT $1, $2, %s, %s, %s, %s, %s FROM %s AS v WHERE %s',
            key_sql, feats_sql, texts_sql,
            CASE WHEN pred_out = 'predict' THEN indb.output_sql(model, version, pred_out, args) ELSE 'NULL::double precision' END,
            CASE WHEN pred_out = 'label' THEN indb.output_sql(model, version, pred_out, args) ELSE 'NULL::text' END,
            source_view, pick_sql);
        IF sample < 1 THEN
            EXECUTE pg_catalog.format('SELECT pg_catalog.count(*) FROM %s', source_view) INTO rows_scored;
        END IF;
    ELSE
        pred_at := pg_catalog.array_position(outputs, pred_out);
        IF pred_at IS NULL THEN
            RAISE EXCEPTION 'indb: the outputs of a staged call must include %', pred_out USING ERRCODE = 'invalid_parameter_value';
        END IF;
        FOR i IN 1 .. COALESCE(pg_catalog.cardinality(keep), 0) LOOP
            IF NOT EXISTS (SELECT FROM pg_catalog.pg_attribute AS a
                           WHERE a.attrelid = source_view AND a.attname = keep[i] AND a.attnum > 0 AND NOT a.attisdropped) THEN
                RAISE EXCEPTION 'indb: table % has no column % to keep', base, pg_catalog.quote_ident(keep[i])
                    USING ERRCODE = 'undefined_column';
            END IF;
            cols := cols || pg_catalog.format('v.%I AS %I', keep[i], '__k' || i);
        END LOOP;
        FOR i IN 1 .. pg_catalog.cardinality(outputs) LOOP
            cols := cols || pg_catalog.format('%s AS %I', indb.output_sql(model, version, outputs[i], args), '__o' || i);
        END LOOP;
        cols := cols || pg_catalog.format('%s AS "__indb_key"', key_sql)
                     || pg_catalog.format('%s AS "__indb_logged"', pick_sql)
                     || pg_catalog.format('CASE WHEN %s THEN %s END AS "__indb_features"', pick_sql, feats_sql)
                     || pg_catalog.format('CASE WHEN %s THEN %s END AS "__indb_features_text"', pick_sql, texts_sql);
        EXECUTE pg_catalog.format('CREATE TEMPORARY TABLE %I ON COMMIT DROP AS SELECT %s FROM %s AS v',
                                  'indb_stage_' || call_id, pg_catalog.array_to_string(cols, ', '), source_view);
        GET DIAGNOSTICS rows_scored = ROW_COUNT;
        stage := pg_catalog.format('pg_temp.%I', 'indb_stage_' || call_id)::regclass;
        scan := stage;
        tid_sql := 's.ctid';
        rows_sql := pg_catalog.format(
            'SELECT $1, $2, s."__indb_key", s."__indb_features", s."__indb_features_text", %s, %s FROM %s AS s WHERE s."__indb_logged"',
            CASE WHEN pred_out = 'predict' THEN pg_catalog.format('s.%I', '__o' || pred_at) ELSE 'NULL::double precision' END,
            CASE WHEN pred_out = 'label' THEN pg_catalog.format('s.%I', '__o' || pred_at) ELSE 'NULL::text' END,
            stage);
        EXECUTE pg_catalog.format('GRANT SELECT ON %s TO %I', stage, acting_role);
    END IF;
    SELECT COALESCE(pg_catalog.max(pg_catalog.pg_relation_size(t.relid)), pg_catalog.pg_relation_size(scan))
           / pg_catalog.current_setting('block_size')::bigint
      INTO nblocks
      FROM pg_catalog.pg_partition_tree(scan) AS t WHERE t.isleaf;
    rows_logged := 0;
    LOOP
        IF lo + step >= nblocks THEN
            EXECUTE 'INSERT INTO indb.prediction_log (logged_at, call_id, row_key, features, features_text, prediction, label) '
                    || rows_sql || ' AND ' || tid_sql || ' >= $3'
              USING called_at, call_id, pg_catalog.format('(%s,0)', lo)::tid;
            GET DIAGNOSTICS added = ROW_COUNT;
            rows_logged := rows_logged + added;
            EXIT;
        END IF;
        EXECUTE 'INSERT INTO indb.prediction_log (logged_at, call_id, row_key, features, features_text, prediction, label) '
                || rows_sql || ' AND ' || tid_sql || ' >= $3 AND ' || tid_sql || ' < $4'
          USING called_at, call_id, pg_catalog.format('(%s,0)', lo)::tid, pg_catalog.format('(%s,0)', lo + step)::tid;
        GET DIAGNOSTICS added = ROW_COUNT;
        rows_logged := rows_logged + added;
        lo := lo + step;
        RAISE NOTICE 'indb: % logged % rows (% of % blocks read)', what, rows_logged, lo, nblocks;
    END LOOP;
    IF rows_scored IS NULL THEN
        rows_scored := rows_logged;
    END IF;
END
$fn$;
REVOKE ALL ON FUNCTION indb.compute_score(bigint, timestamptz, text, integer, regclass, text, text[], double precision, text, text[], name) FROM PUBLIC;
ALTER FUNCTION indb.compute_score(bigint, timestamptz, text, integer, regclass, text, text[], double precision, text, text[], name) OWNER TO indb_compute;

CREATE FUNCTION indb.compute_row(call_id bigint, called_at timestamptz, model text, version integer,
                                 nums double precision[], texts text[], row_key text, acting_role name,
                                 OUT prediction double precision, OUT label text)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
-- Evaluates one row (features in model order: numbers in nums, texts in texts, NULL at
-- the other kind's positions) and logs it into the open call.
DECLARE
    what     text := pg_catalog.quote_literal(model || '@' || version);
    f        record;
    n        integer := 0;
    args     text[] := '{}';
    feats    double precision[] := '{}';
    txts     text[] := '{}';
    has_text boolean := false;
    pred_out text;
BEGIN
    IF acting_role IS NULL OR NOT pg_catalog.pg_has_role(session_user, acting_role, 'MEMBER') THEN
        RAISE EXCEPTION 'indb: % cannot act as role %', session_user, acting_role USING ERRCODE = 'insufficient_privilege';
    END IF;
    FOR f IN SELECT e.ordinality AS i, e.value ->> 1 AS kind
             FROM indb.versions AS v, pg_catalog.jsonb_array_elements(v.features) WITH ORDINALITY AS e
             WHERE v.model = compute_row.model AND v.version = compute_row.version
             ORDER BY e.ordinality LOOP
        n := f.i;
        IF f.kind = 'text' THEN
            has_text := true;
            args := args || pg_catalog.format('$2[%s]', f.i);
            feats := feats || NULL::double precision;
            txts := txts || texts[f.i];
        ELSE
            args := args || pg_catalog.format('$1[%s]', f.i);
            feats := feats || nums[f.i];
            txts := txts || NULL::text;
        END IF;
    END LOOP;
    IF COALESCE(pg_catalog.cardinality(nums), 0) <> n OR (has_text AND COALESCE(pg_catalog.cardinality(texts), 0) <> n) THEN
        RAISE EXCEPTION 'indb: model % takes % features', what, n USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT vf.output INTO pred_out FROM indb.version_functions AS vf
    WHERE vf.model = compute_row.model AND vf.version = compute_row.version AND vf.output = ANY (ARRAY['predict', 'label'])
    ORDER BY vf.output = 'predict' DESC LIMIT 1;
    IF pred_out = 'predict' THEN
        EXECUTE 'SELECT ' || indb.output_sql(model, version, pred_out, args) INTO prediction USING feats, txts;
    ELSE
        EXECUTE 'SELECT ' || indb.output_sql(model, version, pred_out, args) INTO label USING feats, txts;
    END IF;
    INSERT INTO indb.prediction_log (logged_at, call_id, row_key, features, features_text, prediction, label)
    VALUES (compute_row.called_at, compute_row.call_id, compute_row.row_key, feats, CASE WHEN has_text THEN txts END,
            compute_row.prediction, compute_row.label);
END
$fn$;
REVOKE ALL ON FUNCTION indb.compute_row(bigint, timestamptz, text, integer, double precision[], text[], text, name) FROM PUBLIC;
ALTER FUNCTION indb.compute_row(bigint, timestamptz, text, integer, double precision[], text[], text, name) OWNER TO indb_compute;

GRANT EXECUTE ON FUNCTION indb.compute_prepare(text, integer, name) TO indb_log_writer;
GRANT EXECUTE ON FUNCTION indb.compute_score(bigint, timestamptz, text, integer, regclass, text, text[], double precision, text, text[], name) TO indb_log_writer;
GRANT EXECUTE ON FUNCTION indb.compute_row(bigint, timestamptz, text, integer, double precision[], text[], text, name) TO indb_log_writer;

-- ------------------------------------------------------------- the log writer's side

SET LOCAL ROLE indb_log_writer;

CREATE FUNCTION indb.log_score(model text, version integer, source_view regclass, key_column text, keep text[],
                               sample double precision, mode text, outputs text[], target text, acting_role name,
                               OUT call_id bigint, OUT rows_scored bigint, OUT rows_logged bigint, OUT stage regclass)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
-- One logged scoring call over a caller's temporary view (see indb.score): opens the
-- call, has indb_compute score and log the rows, closes the call.
DECLARE
    prep   record;
    opened record;
    done   record;
BEGIN
    IF sample IS NULL OR NOT (sample > 0 AND sample <= 1) THEN
        RAISE EXCEPTION 'indb: sample must be in (0, 1], not %', sample USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT * INTO prep FROM indb.compute_prepare(log_score.model, log_score.version, log_score.acting_role);
    SELECT * INTO opened FROM indb.log_open(log_score.model, log_score.version, prep.ir_sha256, 'score',
                                            log_score.target, log_score.sample, NULL);
    SELECT * INTO done FROM indb.compute_score(opened.call_id, opened.called_at, log_score.model, log_score.version,
                                               log_score.source_view, log_score.key_column, log_score.keep, log_score.sample,
                                               log_score.mode, log_score.outputs, log_score.acting_role);
    PERFORM indb.log_finish(opened.call_id, opened.called_at, done.source, done.rows_scored, done.rows_logged);
    call_id := opened.call_id;
    rows_scored := done.rows_scored;
    rows_logged := done.rows_logged;
    stage := done.stage;
END
$fn$;
REVOKE ALL ON FUNCTION indb.log_score(text, integer, regclass, text, text[], double precision, text, text[], text, name) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION indb.log_score(text, integer, regclass, text, text[], double precision, text, text[], text, name) TO indb_scorer_base;

CREATE FUNCTION indb.log_predict(model text, version integer, nums double precision[], texts text[], row_key text,
                                 request_id text, acting_role name,
                                 OUT prediction double precision, OUT label text)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
-- One logged prediction (see indb.predict_logged): a call of one row.
DECLARE
    prep   record;
    opened record;
    done   record;
BEGIN
    SELECT * INTO prep FROM indb.compute_prepare(log_predict.model, log_predict.version, log_predict.acting_role);
    SELECT * INTO opened FROM indb.log_open(log_predict.model, log_predict.version, prep.ir_sha256, 'predict_logged',
                                            NULL, 1.0, log_predict.request_id);
    SELECT * INTO done FROM indb.compute_row(opened.call_id, opened.called_at, log_predict.model, log_predict.version,
                                             log_predict.nums, log_predict.texts, log_predict.row_key, log_predict.acting_role);
    PERFORM indb.log_finish(opened.call_id, opened.called_at, NULL, 1, 1);
    prediction := done.prediction;
    label := done.label;
END
$fn$;
REVOKE ALL ON FUNCTION indb.log_predict(text, integer, double precision[], text[], text, text, name) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION indb.log_predict(text, integer, double precision[], text[], text, text, name) TO indb_scorer_base;

CREATE FUNCTION indb.log_drop_partition(part regclass)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '200ms'
AS $fn$
-- Retention (`indb log prune`): drops one whole partition of the log whose day ended
-- more than min_retention ago. Never deletes rows. Waits at most lock_timeout for
-- writers of the log to finish, so that it never holds them up for long; the caller
-- retries.
DECLARE
    parent     regclass;
    upper      timestamptz;
    min_keep   interval;
BEGIN
    SELECT i.inhparent INTO parent FROM pg_catalog.pg_inherits AS i WHERE i.inhrelid = part;
    IF parent IS NULL OR parent <> ALL (ARRAY['indb.scoring_calls'::regclass, 'indb.prediction_log'::regclass]) THEN
        RAISE EXCEPTION 'indb: % is not a partition of the prediction log', part USING ERRCODE = 'wrong_object_type';
    END IF;
    SELECT (pg_catalog.regexp_match(pg_catalog.pg_get_expr(c.relpartbound, c.oid), 'TO \(''([^'']+)''\)'))[1]::timestamptz
      INTO upper FROM pg_catalog.pg_class AS c WHERE c.oid = part;
    SELECT s.min_retention INTO min_keep FROM indb.log_settings AS s;
    IF upper IS NULL OR upper > pg_catalog.now() - min_keep THEN
        RAISE EXCEPTION 'indb: % holds rows younger than the minimum retention of %; it stays', part, min_keep
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'a superuser changes it: UPDATE indb.log_settings SET min_retention = ...';
    END IF;
    EXECUTE pg_catalog.format('DROP TABLE %s', part);
END
$fn$;
REVOKE ALL ON FUNCTION indb.log_drop_partition(regclass) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION indb.log_drop_partition(regclass) TO indb_owner, indb_deployer;

-- ------------------------------------------------------ the entry points (invoker)
-- Owned by indb_log_writer so that a deployer cannot replace them; they run as their
-- caller, who reads the source and owns the target.

CREATE FUNCTION indb.output_columns(model text, version integer, output text)
RETURNS text[]
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
-- The column names of one output (DESIGN.md): recorded by deploy; for versions deployed
-- before that, derived from the class labels where possible.
DECLARE
    cols   text[];
    labels text[];
    name   text;
    cand   text;
    k      integer;
BEGIN
    SELECT o.columns INTO cols FROM indb.version_outputs AS o
    WHERE o.model = output_columns.model AND o.version = output_columns.version AND o.output = output_columns.output;
    IF FOUND THEN
        RETURN cols;
    END IF;
    IF output = ANY (ARRAY['predict', 'label']) THEN
        RETURN ARRAY['prediction'];
    END IF;
    IF output = 'proba' THEN
        SELECT ARRAY(SELECT CASE WHEN pg_catalog.jsonb_typeof(c.value) = 'number'
                                      AND (c.value #>> '{}')::numeric = pg_catalog.trunc((c.value #>> '{}')::numeric)
                                 THEN pg_catalog.trunc((c.value #>> '{}')::numeric)::text
                                 ELSE c.value #>> '{}' END
                     FROM pg_catalog.jsonb_array_elements(v.classes) WITH ORDINALITY AS c ORDER BY c.ordinality)
          INTO labels
          FROM indb.versions AS v WHERE v.model = output_columns.model AND v.version = output_columns.version;
        cols := '{}';
        FOREACH name IN ARRAY COALESCE(labels, '{}') LOOP
            name := 'probability_' || pg_catalog.regexp_replace(pg_catalog.lower(name), '[^a-z0-9_]', '_', 'g');
            cand := name;
            k := 1;
            WHILE cand = ANY (cols) LOOP
                k := k + 1;
                cand := name || '_' || k;
            END LOOP;
            cols := cols || cand;
        END LOOP;
        IF pg_catalog.cardinality(cols) > 0 THEN
            RETURN cols;
        END IF;
    END IF;
    RAISE EXCEPTION 'indb: model % has no recorded column names for its % output', pg_catalog.quote_literal(model || '@' || version), output
        USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'deploy it again with this version of indb';
END
$fn$;
REVOKE ALL ON FUNCTION indb.output_columns(text, integer, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION indb.output_columns(text, integer, text) TO indb_scorer_base;

CREATE FUNCTION indb.score(model text, source regclass, target text, keep text[] DEFAULT '{}', key text DEFAULT NULL,
                           sample double precision DEFAULT 1.0)
RETURNS TABLE (call_id bigint, scored text, rows_scored bigint, rows_logged bigint, target_table text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
-- Scores every row of source into a new table target (kept columns first, then
-- prediction, probability_<label>..., or decision/transform columns; DESIGN.md) and logs
-- the rows (all of them, or those whose key hashes below sample) in one scoring call.
-- Set-based: one CREATE TABLE AS (parallel where PostgreSQL allows) and chunked inserts
-- into the log. An unqualified target goes into the source's schema. Fails, changing
-- nothing, when target exists.
DECLARE
    ref        record;
    what       text;
    eng        text;
    f          record;
    args       text[] := '{}';
    keep_list  text[] := COALESCE(score.keep, '{}');
    needed     text[] := '{}';
    outs       text[];
    out_names  text[];
    o          text;
    i          integer;
    j          integer;
    inner_cols text[] := '{}';
    outer_cols text[] := '{}';
    all_names  text[] := '{}';
    parts      text[];
    target_sql text;
    mode       text;
    body_len   integer;
    view_name  constant text := 'indb_score_source';
    view_oid   regclass;
    logged     record;
    est        bigint;
BEGIN
    IF source IS NULL OR target IS NULL OR target = '' THEN
        RAISE EXCEPTION 'indb: score needs a source table and a target table name' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF sample IS NULL OR NOT (sample > 0 AND sample <= 1) THEN
        RAISE EXCEPTION 'indb: sample must be in (0, 1], not %', sample USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (SELECT FROM pg_catalog.unnest(keep_list) AS k(c) WHERE k.c IS NULL)
       OR (SELECT pg_catalog.count(DISTINCT k.c) FROM pg_catalog.unnest(keep_list) AS k(c)) <> pg_catalog.cardinality(keep_list) THEN
        RAISE EXCEPTION 'indb: keep names a column twice, or NULL' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT r.model, r.version INTO ref FROM indb.resolve(score.model) AS r;
    what := pg_catalog.quote_literal(ref.model || '@' || ref.version);
    SELECT v.engine INTO eng FROM indb.versions AS v WHERE v.model = ref.model AND v.version = ref.version;

    -- inputs: every feature a column of the source, of a usable type
    FOR f IN SELECT e.value ->> 0 AS name, e.value ->> 1 AS kind
             FROM indb.versions AS v, pg_catalog.jsonb_array_elements(v.features) WITH ORDINALITY AS e
             WHERE v.model = ref.model AND v.version = ref.version ORDER BY e.ordinality LOOP
        args := args || indb.input_sql(source, 's', f.name, f.kind, 'model ' || what);
        needed := needed || f.name;
    END LOOP;
    IF score.key IS NOT NULL THEN
        PERFORM indb.input_sql(source, 's', score.key, 'key', 'model ' || what);
        needed := needed || score.key;
    END IF;
    FOREACH o IN ARRAY keep_list LOOP
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_attribute AS a
                       WHERE a.attrelid = source AND a.attname = o AND a.attnum > 0 AND NOT a.attisdropped) THEN
            RAISE EXCEPTION 'indb: table % has no column % to keep', source, pg_catalog.quote_ident(o)
                USING ERRCODE = 'undefined_column';
        END IF;
        needed := needed || o;
    END LOOP;

    -- outputs: the prediction (numeric, else the text label), the probabilities (else the
    -- decision function), and the transform of a model that does not predict
    outs := ARRAY(SELECT u.x FROM pg_catalog.unnest(ARRAY['predict', 'label', 'proba', 'decision', 'transform']) WITH ORDINALITY AS u(x, n)
                  WHERE EXISTS (SELECT FROM indb.version_functions AS vf
                                WHERE vf.model = ref.model AND vf.version = ref.version AND vf.output = u.x)
                  ORDER BY u.n);
    IF 'predict' = ANY (outs) THEN outs := pg_catalog.array_remove(outs, 'label'); END IF;
    IF 'proba' = ANY (outs) THEN outs := pg_catalog.array_remove(outs, 'decision'); END IF;
    IF 'predict' = ANY (outs) OR 'label' = ANY (outs) THEN outs := pg_catalog.array_remove(outs, 'transform'); END IF;
    FOR i IN 1 .. pg_catalog.cardinality(outs) LOOP
        out_names := indb.output_columns(ref.model, ref.version, outs[i]);
        IF outs[i] = ANY (ARRAY['predict', 'label']) THEN
            outer_cols := outer_cols || pg_catalog.format('s.%I AS %I', '__o' || i, out_names[1]);
        ELSE
            FOR j IN 1 .. pg_catalog.cardinality(out_names) LOOP
                outer_cols := outer_cols || pg_catalog.format('s.%I[%s] AS %I', '__o' || i, j, out_names[j]);
            END LOOP;
        END IF;
        all_names := all_names || out_names;
    END LOOP;
    FOREACH o IN ARRAY all_names LOOP
        IF o = ANY (keep_list) THEN
            RAISE EXCEPTION 'indb: output column % collides with a kept column of %', pg_catalog.quote_ident(o), source
                USING ERRCODE = 'duplicate_column', HINT = 'leave it out of keep, or rename it in a table of its own';
        END IF;
    END LOOP;
    outer_cols := ARRAY(SELECT pg_catalog.format('s.%I AS %I', '__k' || k.n, k.c)
                        FROM pg_catalog.unnest(keep_list) WITH ORDINALITY AS k(c, n) ORDER BY k.n) || outer_cols;

    -- the target: a new table, in the source's schema unless qualified
    parts := pg_catalog.parse_ident(target);
    IF pg_catalog.cardinality(parts) = 1 THEN
        parts := ARRAY[(SELECT n.nspname::text FROM pg_catalog.pg_class AS c JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
                        WHERE c.oid = source)] || parts;
    ELSIF pg_catalog.cardinality(parts) <> 2 THEN
        RAISE EXCEPTION 'indb: target % must be table or schema.table', target USING ERRCODE = 'invalid_name';
    END IF;
    target_sql := pg_catalog.format('%I.%I', parts[1], parts[2]);
    IF pg_catalog.to_regclass(target_sql) IS NOT NULL THEN
        RAISE EXCEPTION 'indb: table % exists', target_sql
            USING ERRCODE = 'duplicate_table', HINT = 'drop it first, or use indb score --replace';
    END IF;

    mode := NULLIF(pg_catalog.current_setting('indb.score_mode', true), '');
    IF mode IS NULL THEN
        SELECT pg_catalog.length(p.prosrc) INTO body_len
        FROM indb.version_functions AS vf JOIN pg_catalog.pg_proc AS p ON p.oid = vf.fn::oid
        WHERE vf.model = ref.model AND vf.version = ref.version AND vf.output = outs[1];
        -- the body's size stands for the work per row: above this, evaluating twice costs
        -- more than staging the rows once
        mode := CASE WHEN eng <> 'sql' OR body_len > 20000 THEN 'stage' ELSE 'recompute' END;
    ELSIF mode <> ALL (ARRAY['recompute', 'stage']) THEN
        RAISE EXCEPTION 'indb: indb.score_mode must be recompute or stage, not %', mode USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- what indb_compute may read: these columns of this table, nothing else
    IF pg_catalog.to_regclass(pg_catalog.format('pg_temp.%I', view_name)) IS NOT NULL THEN
        EXECUTE pg_catalog.format('DROP VIEW pg_temp.%I', view_name);
    END IF;
    EXECUTE pg_catalog.format('CREATE TEMPORARY VIEW %I AS SELECT s.ctid AS "__indb_tid", %s FROM %s AS s', view_name,
        (SELECT pg_catalog.string_agg(pg_catalog.format('s.%I', d.c), ', ') FROM (SELECT DISTINCT u.c FROM pg_catalog.unnest(needed) AS u(c)) AS d),
        source);
    view_oid := pg_catalog.format('pg_temp.%I', view_name)::regclass;
    EXECUTE pg_catalog.format('GRANT SELECT ON %s TO indb_compute', view_oid);

    SELECT pg_catalog.sum(c.reltuples)::bigint INTO est
    FROM pg_catalog.pg_partition_tree(source) AS t JOIN pg_catalog.pg_class AS c ON c.oid = t.relid WHERE t.isleaf AND c.reltuples > 0;
    RAISE NOTICE 'indb: scoring % with % into %', source, what,
        target_sql || ' (' || CASE WHEN est IS NULL THEN '' ELSE 'about ' || est || ' rows, ' END
        || CASE WHEN mode = 'stage' THEN 'evaluated once into a stage' ELSE 'logged rows evaluated again' END || ')';
    IF mode = 'recompute' THEN
        inner_cols := ARRAY(SELECT pg_catalog.format('s.%I AS %I', k.c, '__k' || k.n)
                            FROM pg_catalog.unnest(keep_list) WITH ORDINALITY AS k(c, n) ORDER BY k.n);
        FOR i IN 1 .. pg_catalog.cardinality(outs) LOOP
            inner_cols := inner_cols || pg_catalog.format('%s AS %I', indb.output_sql(ref.model, ref.version, outs[i], args), '__o' || i);
        END LOOP;
        -- OFFSET 0 keeps each output evaluated once per row (in the parallel workers)
        EXECUTE pg_catalog.format('CREATE TABLE %s AS SELECT %s FROM (SELECT %s FROM %s AS s OFFSET 0) AS s',
            target_sql, pg_catalog.array_to_string(outer_cols, ', '), pg_catalog.array_to_string(inner_cols, ', '), source);
        SELECT * INTO logged FROM indb.log_score(ref.model, ref.version, view_oid, score.key, keep_list, score.sample,
                                                 'recompute', outs, target_sql, current_user);
    ELSE
        SELECT * INTO logged FROM indb.log_score(ref.model, ref.version, view_oid, score.key, keep_list, score.sample,
                                                 'stage', outs, target_sql, current_user);
        EXECUTE pg_catalog.format('CREATE TABLE %s AS SELECT %s FROM %s AS s',
            target_sql, pg_catalog.array_to_string(outer_cols, ', '), logged.stage);
    END IF;
    EXECUTE pg_catalog.format('DROP VIEW %s', view_oid);
    RAISE NOTICE 'indb: % rows scored into %, % logged (call %)', logged.rows_scored, target_sql, logged.rows_logged, logged.call_id;
    RETURN QUERY SELECT logged.call_id, ref.model || '@' || ref.version, logged.rows_scored, logged.rows_logged, target_sql;
END
$fn$;
REVOKE ALL ON FUNCTION indb.score(text, regclass, text, text[], text, double precision) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION indb.score(text, regclass, text, text[], text, double precision) TO indb_scorer_base;

CREATE FUNCTION indb.logged_row(model text, row_json jsonb, request_id text, want text,
                                OUT prediction double precision, OUT label text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
-- The shared part of predict_logged and predict_label_logged: reads the row's features
-- (as its caller, with the generic path's errors) and logs one call.
DECLARE
    ref      record;
    what     text;
    f        record;
    nums     double precision[] := '{}';
    texts    text[] := '{}';
    has_text boolean := false;
    got      record;
BEGIN
    SELECT r.model, r.version INTO ref FROM indb.resolve(logged_row.model) AS r;
    what := pg_catalog.quote_literal(ref.model || '@' || ref.version);
    IF NOT EXISTS (SELECT FROM indb.version_functions AS vf
                   WHERE vf.model = ref.model AND vf.version = ref.version AND vf.output = logged_row.want) THEN
        RAISE EXCEPTION 'indb: model % has no % output', what, want USING ERRCODE = 'feature_not_supported',
            HINT = CASE WHEN want = 'predict' THEN 'its class labels are text: use indb.predict_label_logged'
                        ELSE 'use indb.predict_logged' END;
    END IF;
    IF row_json IS NULL OR pg_catalog.jsonb_typeof(row_json) <> 'object' THEN
        RAISE EXCEPTION 'indb: a logged prediction of % takes a row', what USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR f IN SELECT e.value ->> 0 AS name, e.value ->> 1 AS kind
             FROM indb.versions AS v, pg_catalog.jsonb_array_elements(v.features) WITH ORDINALITY AS e
             WHERE v.model = ref.model AND v.version = ref.version ORDER BY e.ordinality LOOP
        IF f.kind = 'text' THEN
            has_text := true;
            nums := nums || NULL::double precision;
            texts := texts || indb.feature_text(row_json, f.name, what);
        ELSE
            nums := nums || indb.feature_number(row_json, f.name, what);
            texts := texts || NULL::text;
        END IF;
    END LOOP;
    SELECT * INTO got FROM indb.log_predict(ref.model, ref.version, nums, CASE WHEN has_text THEN texts END, NULL,
                                            logged_row.request_id, current_user);
    prediction := got.prediction;
    -- a numeric class label as text, as indb.predict_label prints it (1.0 -> 1)
    label := COALESCE(got.label, got.prediction::text);
END
$fn$;
REVOKE ALL ON FUNCTION indb.logged_row(text, jsonb, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION indb.logged_row(text, jsonb, text, text) TO indb_scorer_base;

CREATE FUNCTION indb.predict_logged(model text, row_value anyelement, request_id text DEFAULT NULL)
RETURNS double precision
LANGUAGE sql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $fn$
    SELECT (indb.logged_row(model, pg_catalog.to_jsonb(row_value), request_id, 'predict')).prediction;
$fn$;
REVOKE ALL ON FUNCTION indb.predict_logged(text, anyelement, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION indb.predict_logged(text, anyelement, text) TO indb_scorer_base;

CREATE FUNCTION indb.predict_label_logged(model text, row_value anyelement, request_id text DEFAULT NULL)
RETURNS text
LANGUAGE sql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $fn$
    SELECT (indb.logged_row(model, pg_catalog.to_jsonb(row_value), request_id, 'label')).label;
$fn$;
REVOKE ALL ON FUNCTION indb.predict_label_logged(text, anyelement, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION indb.predict_label_logged(text, anyelement, text) TO indb_scorer_base;
