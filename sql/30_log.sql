-- indb:requires superuser
-- The prediction log's writers (SECURITY DEFINER, owned by indb_log_writer) and its partitions.
--
-- A repeatable definition: indb migrate re-creates it whenever this file changes.

SET LOCAL search_path = pg_catalog, pg_temp;

CREATE OR REPLACE FUNCTION indb.log_ensure_partitions(days_ahead integer DEFAULT 7)
 RETURNS integer
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
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
$function$;
ALTER FUNCTION indb.log_ensure_partitions(days_ahead integer) OWNER TO indb_log_writer;
REVOKE ALL ON FUNCTION indb.log_ensure_partitions(days_ahead integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION indb.log_ensure_partitions(days_ahead integer) TO indb_deployer, indb_owner;

CREATE OR REPLACE FUNCTION indb.log_drop_partition(part regclass)
 RETURNS void
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
 SET lock_timeout TO '200ms'
AS $function$
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
    INSERT INTO indb.audit (action, detail)
    VALUES ('prune', pg_catalog.jsonb_build_object('partition', part::text, 'before', upper));
    EXECUTE pg_catalog.format('DROP TABLE %s', part);
END
$function$;
ALTER FUNCTION indb.log_drop_partition(part regclass) OWNER TO indb_log_writer;
REVOKE ALL ON FUNCTION indb.log_drop_partition(part regclass) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION indb.log_drop_partition(part regclass) TO indb_deployer, indb_owner;

CREATE OR REPLACE FUNCTION indb.log_open(model text, version integer, ir_sha256 text, entry_point text, target text, sample_rate double precision, request_id text, OUT call_id bigint, OUT called_at timestamp with time zone)
 RETURNS record
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
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
$function$;
ALTER FUNCTION indb.log_open(model text, version integer, ir_sha256 text, entry_point text, target text, sample_rate double precision, request_id text, OUT call_id bigint, OUT called_at timestamp with time zone) OWNER TO indb_log_writer;
REVOKE ALL ON FUNCTION indb.log_open(model text, version integer, ir_sha256 text, entry_point text, target text, sample_rate double precision, request_id text, OUT call_id bigint, OUT called_at timestamp with time zone) FROM PUBLIC;

CREATE OR REPLACE FUNCTION indb.log_finish(call_id bigint, called_at timestamp with time zone, source text, rows_scored bigint, rows_logged bigint)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
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
$function$;
ALTER FUNCTION indb.log_finish(call_id bigint, called_at timestamp with time zone, source text, rows_scored bigint, rows_logged bigint) OWNER TO indb_log_writer;
REVOKE ALL ON FUNCTION indb.log_finish(call_id bigint, called_at timestamp with time zone, source text, rows_scored bigint, rows_logged bigint) FROM PUBLIC;

CREATE OR REPLACE FUNCTION indb.logged_row(model text, row_json jsonb, request_id text, want text, OUT prediction double precision, OUT label text)
 RETURNS record
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
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
$function$;
ALTER FUNCTION indb.logged_row(model text, row_json jsonb, request_id text, want text, OUT prediction double precision, OUT label text) OWNER TO indb_log_writer;
REVOKE ALL ON FUNCTION indb.logged_row(model text, row_json jsonb, request_id text, want text, OUT prediction double precision, OUT label text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION indb.logged_row(model text, row_json jsonb, request_id text, want text, OUT prediction double precision, OUT label text) TO indb_scorer_base;

CREATE OR REPLACE FUNCTION indb.log_predict(model text, version integer, nums double precision[], texts text[], row_key text, request_id text, acting_role name, OUT prediction double precision, OUT label text)
 RETURNS record
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
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
$function$;
ALTER FUNCTION indb.log_predict(model text, version integer, nums double precision[], texts text[], row_key text, request_id text, acting_role name, OUT prediction double precision, OUT label text) OWNER TO indb_log_writer;
REVOKE ALL ON FUNCTION indb.log_predict(model text, version integer, nums double precision[], texts text[], row_key text, request_id text, acting_role name, OUT prediction double precision, OUT label text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION indb.log_predict(model text, version integer, nums double precision[], texts text[], row_key text, request_id text, acting_role name, OUT prediction double precision, OUT label text) TO indb_scorer_base;

CREATE OR REPLACE FUNCTION indb.predict_logged(model text, row_value anyelement, request_id text DEFAULT NULL::text)
 RETURNS double precision
 LANGUAGE sql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
    SELECT (indb.logged_row(model, pg_catalog.to_jsonb(row_value), request_id, 'predict')).prediction;
$function$;
ALTER FUNCTION indb.predict_logged(model text, row_value anyelement, request_id text) OWNER TO indb_log_writer;
REVOKE ALL ON FUNCTION indb.predict_logged(model text, row_value anyelement, request_id text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION indb.predict_logged(model text, row_value anyelement, request_id text) TO indb_scorer_base;

CREATE OR REPLACE FUNCTION indb.predict_label_logged(model text, row_value anyelement, request_id text DEFAULT NULL::text)
 RETURNS text
 LANGUAGE sql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
    SELECT (indb.logged_row(model, pg_catalog.to_jsonb(row_value), request_id, 'label')).label;
$function$;
ALTER FUNCTION indb.predict_label_logged(model text, row_value anyelement, request_id text) OWNER TO indb_log_writer;
REVOKE ALL ON FUNCTION indb.predict_label_logged(model text, row_value anyelement, request_id text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION indb.predict_label_logged(model text, row_value anyelement, request_id text) TO indb_scorer_base;

CREATE OR REPLACE VIEW indb.logged_predictions WITH (security_invoker=true) AS
 SELECT c.call_id,
    c.called_at,
    c.called_by,
    c.model,
    c.version,
    c.ir_sha256,
    c.entry_point,
    c.source,
    c.target,
    c.request_id,
    r.row_key,
    r.features,
    r.features_text,
    r.prediction,
    r.label,
    ( SELECT pg_catalog.json_object_agg(f.value ->> 0,
                CASE WHEN (f.value ->> 1) = 'text' THEN pg_catalog.to_json(r.features_text[f.ord])
                     ELSE pg_catalog.to_json(r.features[f.ord]) END ORDER BY f.ord)
           FROM indb.versions v,
            LATERAL pg_catalog.jsonb_array_elements(v.features) WITH ORDINALITY f(value, ord)
          WHERE v.model = c.model AND v.version = c.version) AS feature_values
   FROM indb.prediction_log r
     JOIN indb.scoring_calls c ON c.call_id = r.call_id AND c.called_at = r.logged_at;
COMMENT ON VIEW indb.logged_predictions IS 'Logged rows with their call (who, when, version, checksum); feature_values names each feature (in model order); row-level security of the reader applies.';
ALTER VIEW indb.logged_predictions OWNER TO indb_log_writer;
REVOKE ALL ON indb.logged_predictions FROM PUBLIC;
GRANT SELECT ON indb.logged_predictions TO indb_auditor;
GRANT SELECT ON indb.logged_predictions TO indb_scorer_base;
