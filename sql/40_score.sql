-- indb:requires superuser
-- indb.score: logged batch scoring, its helpers, and the per-row path.
--
-- A repeatable definition: indb migrate re-creates it whenever this file changes.

SET LOCAL search_path = pg_catalog, pg_temp;

CREATE OR REPLACE FUNCTION indb.output_columns(model text, version integer, output text)
 RETURNS text[]
 LANGUAGE plpgsql
 STABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
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
$function$;
ALTER FUNCTION indb.output_columns(model text, version integer, output text) OWNER TO indb_log_writer;
REVOKE ALL ON FUNCTION indb.output_columns(model text, version integer, output text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION indb.output_columns(model text, version integer, output text) TO indb_scorer_base;

CREATE OR REPLACE FUNCTION indb.output_sql(model text, version integer, output text, args text[])
 RETURNS text
 LANGUAGE plpgsql
 STABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
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
$function$;
ALTER FUNCTION indb.output_sql(model text, version integer, output text, args text[]) OWNER TO indb_log_writer;
REVOKE ALL ON FUNCTION indb.output_sql(model text, version integer, output text, args text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION indb.output_sql(model text, version integer, output text, args text[]) TO indb_scorer_base;

CREATE OR REPLACE FUNCTION indb.input_sql(rel regclass, rel_alias text, column_name text, kind text, what text)
 RETURNS text
 LANGUAGE plpgsql
 STABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
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
$function$;
ALTER FUNCTION indb.input_sql(rel regclass, rel_alias text, column_name text, kind text, what text) OWNER TO indb_log_writer;
REVOKE ALL ON FUNCTION indb.input_sql(rel regclass, rel_alias text, column_name text, kind text, what text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION indb.input_sql(rel regclass, rel_alias text, column_name text, kind text, what text) TO indb_scorer_base;

CREATE OR REPLACE FUNCTION indb.feature_inputs(source regclass, model text, version integer, what text, OUT args text[], OUT numargs text[], OUT textargs text[], OUT nullargs text[])
 RETURNS record
 LANGUAGE plpgsql
 STABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
-- A version's features read from the rows of source (alias v), in model order (indb.input_sql
-- each): all of them, the numeric ones, the text ones, and one "is NULL" test per feature.
DECLARE
    f record;
BEGIN
    args := '{}';
    numargs := '{}';
    textargs := '{}';
    nullargs := '{}';
    FOR f IN SELECT e.value ->> 0 AS name, e.value ->> 1 AS kind
             FROM indb.versions AS v, pg_catalog.jsonb_array_elements(v.features) WITH ORDINALITY AS e
             WHERE v.model = feature_inputs.model AND v.version = feature_inputs.version
             ORDER BY e.ordinality LOOP
        args := args || indb.input_sql(source, 'v', f.name, f.kind, 'model ' || what);
        nullargs := nullargs || ('(' || args[pg_catalog.cardinality(args)] || ') IS NULL');
        IF f.kind = 'text' THEN
            textargs := textargs || args[pg_catalog.cardinality(args)];
        ELSE
            numargs := numargs || args[pg_catalog.cardinality(args)];
        END IF;
    END LOOP;
END
$function$;
ALTER FUNCTION indb.feature_inputs(source regclass, model text, version integer, what text, OUT args text[], OUT numargs text[], OUT textargs text[], OUT nullargs text[]) OWNER TO indb_log_writer;
REVOKE ALL ON FUNCTION indb.feature_inputs(source regclass, model text, version integer, what text, OUT args text[], OUT numargs text[], OUT textargs text[], OUT nullargs text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION indb.feature_inputs(source regclass, model text, version integer, what text, OUT args text[], OUT numargs text[], OUT textargs text[], OUT nullargs text[]) TO indb_scorer_base;

CREATE OR REPLACE FUNCTION indb.packed_sql(numargs text[])
 RETURNS text
 LANGUAGE sql
 IMMUTABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
-- The aggregate that packs a chunk's numeric features for the engine's batch path:
-- big-endian float8, row-major, NULL as NaN (indb/plpython/engine.py reads it).
    SELECT CASE WHEN pg_catalog.cardinality(numargs) > 0
                THEN 'pg_catalog.string_agg(' || (SELECT pg_catalog.string_agg(
                         pg_catalog.format('pg_catalog.float8send(COALESCE(%s, ''NaN''::double precision))', a), ' || ' ORDER BY o)
                         FROM pg_catalog.unnest(numargs) WITH ORDINALITY AS x(a, o)) || ', ''''::bytea)'
                ELSE 'NULL::bytea' END;
$function$;
ALTER FUNCTION indb.packed_sql(numargs text[]) OWNER TO indb_log_writer;
REVOKE ALL ON FUNCTION indb.packed_sql(numargs text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION indb.packed_sql(numargs text[]) TO indb_scorer_base;

CREATE OR REPLACE FUNCTION indb.compute_check_role(acting_role name)
 RETURNS void
 LANGUAGE plpgsql
 STABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
-- The session user may act as acting_role, the role whose rights indb_compute's functions
-- check on the caller's behalf (an argument they never take on trust).
BEGIN
    IF acting_role IS NULL OR NOT pg_catalog.pg_has_role(session_user, acting_role, 'MEMBER') THEN
        RAISE EXCEPTION 'indb: % cannot act as role %', session_user, acting_role USING ERRCODE = 'insufficient_privilege';
    END IF;
END
$function$;
ALTER FUNCTION indb.compute_check_role(acting_role name) OWNER TO indb_compute;
REVOKE ALL ON FUNCTION indb.compute_check_role(acting_role name) FROM PUBLIC;

CREATE OR REPLACE FUNCTION indb.compute_prepare(model text, version integer, acting_role name, OUT ir_sha256 text, OUT engine text, OUT predict_output text)
 RETURNS record
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
-- Checks that the caller (acting as acting_role) may score the version; returns what
-- the log writer stamps the call with.
DECLARE
    v  record;
    fn oid;
BEGIN
    PERFORM indb.compute_check_role(acting_role);
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
$function$;
ALTER FUNCTION indb.compute_prepare(model text, version integer, acting_role name, OUT ir_sha256 text, OUT engine text, OUT predict_output text) OWNER TO indb_compute;
REVOKE ALL ON FUNCTION indb.compute_prepare(model text, version integer, acting_role name, OUT ir_sha256 text, OUT engine text, OUT predict_output text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION indb.compute_prepare(model text, version integer, acting_role name, OUT ir_sha256 text, OUT engine text, OUT predict_output text) TO indb_log_writer;

CREATE OR REPLACE FUNCTION indb.compute_check_view(source_view regclass)
 RETURNS regclass
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
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
$function$;
ALTER FUNCTION indb.compute_check_view(source_view regclass) OWNER TO indb_compute;
REVOKE ALL ON FUNCTION indb.compute_check_view(source_view regclass) FROM PUBLIC;

CREATE OR REPLACE FUNCTION indb.compute_row(call_id bigint, called_at timestamp with time zone, model text, version integer, nums double precision[], texts text[], row_key text, acting_role name, OUT prediction double precision, OUT label text)
 RETURNS record
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
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
    PERFORM indb.compute_check_role(acting_role);
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
$function$;
ALTER FUNCTION indb.compute_row(call_id bigint, called_at timestamp with time zone, model text, version integer, nums double precision[], texts text[], row_key text, acting_role name, OUT prediction double precision, OUT label text) OWNER TO indb_compute;
REVOKE ALL ON FUNCTION indb.compute_row(call_id bigint, called_at timestamp with time zone, model text, version integer, nums double precision[], texts text[], row_key text, acting_role name, OUT prediction double precision, OUT label text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION indb.compute_row(call_id bigint, called_at timestamp with time zone, model text, version integer, nums double precision[], texts text[], row_key text, acting_role name, OUT prediction double precision, OUT label text) TO indb_log_writer;

CREATE OR REPLACE FUNCTION indb.log_score(model text, version integer, source_view regclass, key_column text, keep text[], sample double precision, mode text, outputs text[], target text, acting_role name, OUT call_id bigint, OUT rows_scored bigint, OUT rows_logged bigint, OUT stage regclass)
 RETURNS record
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
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
$function$;
ALTER FUNCTION indb.log_score(model text, version integer, source_view regclass, key_column text, keep text[], sample double precision, mode text, outputs text[], target text, acting_role name, OUT call_id bigint, OUT rows_scored bigint, OUT rows_logged bigint, OUT stage regclass) OWNER TO indb_log_writer;
REVOKE ALL ON FUNCTION indb.log_score(model text, version integer, source_view regclass, key_column text, keep text[], sample double precision, mode text, outputs text[], target text, acting_role name, OUT call_id bigint, OUT rows_scored bigint, OUT rows_logged bigint, OUT stage regclass) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION indb.log_score(model text, version integer, source_view regclass, key_column text, keep text[], sample double precision, mode text, outputs text[], target text, acting_role name, OUT call_id bigint, OUT rows_scored bigint, OUT rows_logged bigint, OUT stage regclass) TO indb_scorer_base;

CREATE OR REPLACE FUNCTION indb.score(model text, source regclass, target text, keep text[] DEFAULT '{}'::text[], key text DEFAULT NULL::text, sample double precision DEFAULT 1.0)
 RETURNS TABLE(call_id bigint, scored text, rows_scored bigint, rows_logged bigint, target_table text)
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
 SET jit TO 'off'
AS $function$
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
    BEGIN
        parts := pg_catalog.parse_ident(target);
    EXCEPTION WHEN invalid_parameter_value THEN
        RAISE EXCEPTION 'indb: target % is not a table name: write table or schema.table (quote names with "")',
            pg_catalog.quote_literal(target) USING ERRCODE = 'invalid_name';
    END;
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
        SELECT pg_catalog.length(CASE WHEN p.prosqlbody IS NULL THEN p.prosrc ELSE pg_catalog.pg_get_function_sqlbody(p.oid) END) INTO body_len
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
$function$;
ALTER FUNCTION indb.score(model text, source regclass, target text, keep text[], key text, sample double precision) OWNER TO indb_log_writer;
REVOKE ALL ON FUNCTION indb.score(model text, source regclass, target text, keep text[], key text, sample double precision) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION indb.score(model text, source regclass, target text, keep text[], key text, sample double precision) TO indb_scorer_base;
