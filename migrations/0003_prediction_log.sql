-- The prediction log: one row per scoring call and one per logged row, partitioned by
-- day (UTC). The tables belong to indb_log_writer, a NOLOGIN role reachable only
-- through its own SECURITY DEFINER functions below, so neither a deployer nor the
-- catalog owner can insert, change or delete history. Callers are stamped from
-- session_user, never from an argument.

SET LOCAL search_path = pg_catalog, pg_temp;

SET LOCAL ROLE indb_owner;
-- The log writer creates the daily partitions at run time.
GRANT CREATE ON SCHEMA indb TO indb_log_writer;

SET LOCAL ROLE indb_log_writer;

CREATE TABLE indb.scoring_calls (
    call_id     bigint           GENERATED ALWAYS AS IDENTITY,
    called_at   timestamptz      NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    called_by   text             NOT NULL DEFAULT session_user,
    model       text             NOT NULL,
    version     integer          NOT NULL,
    ir_sha256   text             NOT NULL,
    entry_point text             NOT NULL,
    source      text,
    target      text,
    sample_rate double precision NOT NULL DEFAULT 1.0
                CHECK (sample_rate OPERATOR(pg_catalog.>) 0 AND sample_rate OPERATOR(pg_catalog.<=) 1),
    request_id  text,
    rows_scored bigint,
    rows_logged bigint           NOT NULL DEFAULT 0,
    finished_at timestamptz,
    PRIMARY KEY (called_at, call_id)
) PARTITION BY RANGE (called_at);
CREATE INDEX scoring_calls_by_id ON indb.scoring_calls (call_id);
CREATE INDEX scoring_calls_by_version ON indb.scoring_calls (model, version, called_at);

CREATE TABLE indb.prediction_log (
    logged_at  timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    call_id    bigint      NOT NULL,
    called_by  text        NOT NULL DEFAULT session_user,
    model      text        NOT NULL,
    version    integer     NOT NULL,
    ir_sha256  text        NOT NULL,
    row_key    text,
    features   jsonb       NOT NULL,
    prediction jsonb       NOT NULL
) PARTITION BY RANGE (logged_at);
CREATE INDEX prediction_log_by_version ON indb.prediction_log (model, version, logged_at);

-- No DEFAULT partition: a row for a day without a partition is an error that the
-- writer prevents by creating partitions ahead, never a partition that silently fills.

ALTER TABLE indb.scoring_calls ENABLE ROW LEVEL SECURITY;
ALTER TABLE indb.prediction_log ENABLE ROW LEVEL SECURITY;
CREATE POLICY scorer_reads_own ON indb.scoring_calls FOR SELECT TO indb_scorer
    USING (called_by OPERATOR(pg_catalog.=) session_user);
CREATE POLICY auditor_reads_all ON indb.scoring_calls FOR SELECT TO indb_auditor USING (true);
CREATE POLICY scorer_reads_own ON indb.prediction_log FOR SELECT TO indb_scorer
    USING (called_by OPERATOR(pg_catalog.=) session_user);
CREATE POLICY auditor_reads_all ON indb.prediction_log FOR SELECT TO indb_auditor USING (true);
GRANT SELECT ON indb.scoring_calls, indb.prediction_log TO indb_scorer, indb_auditor;

CREATE FUNCTION indb.log_ensure_partitions(days_ahead integer DEFAULT 7)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, indb, pg_temp
AS $fn$
-- Creates the daily partitions (UTC) of both log tables from today through
-- today + days_ahead that are missing; returns how many it created. Safe to call
-- concurrently: a partition another session created first counts as there.
DECLARE
    today   date := (pg_catalog.now() AT TIME ZONE 'UTC')::date;
    day     date;
    parent  text;
    part    text;
    created integer := 0;
BEGIN
    IF days_ahead IS NULL OR days_ahead < 0 OR days_ahead > 366 THEN
        RAISE EXCEPTION 'days_ahead must be between 0 and 366, not %', days_ahead
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR day IN SELECT d::date FROM pg_catalog.generate_series(today, today + days_ahead, interval '1 day') AS d LOOP
        FOREACH parent IN ARRAY ARRAY['scoring_calls', 'prediction_log'] LOOP
            part := parent || '_p' || pg_catalog.to_char(day, 'YYYYMMDD');
            CONTINUE WHEN pg_catalog.to_regclass(pg_catalog.format('indb.%I', part)) IS NOT NULL;
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

CREATE FUNCTION indb.log_call(model text, version integer, entry_point text,
                              source text DEFAULT NULL, target text DEFAULT NULL,
                              sample_rate double precision DEFAULT 1.0, request_id text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, indb, pg_temp
AS $fn$
-- Opens a scoring call for the session user and returns its call_id. The version's
-- checksum is read from the registry, so a caller cannot stamp a call with another.
DECLARE
    checksum text;
    new_id   bigint;
BEGIN
    SELECT v.ir_sha256 INTO checksum FROM indb.versions AS v
    WHERE v.model = log_call.model AND v.version = log_call.version;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'model % has no version %', log_call.model, log_call.version
            USING ERRCODE = 'no_data_found';
    END IF;
    -- Partitions are made ahead; checking tomorrow's keeps a call near midnight safe.
    IF pg_catalog.to_regclass(pg_catalog.format('indb.%I',
            'scoring_calls_p' || pg_catalog.to_char((pg_catalog.now() AT TIME ZONE 'UTC')::date + 1, 'YYYYMMDD'))) IS NULL THEN
        PERFORM indb.log_ensure_partitions(7);
    END IF;
    INSERT INTO indb.scoring_calls AS c (model, version, ir_sha256, entry_point, source, target, sample_rate, request_id)
    VALUES (log_call.model, log_call.version, checksum, log_call.entry_point, log_call.source, log_call.target,
            log_call.sample_rate, log_call.request_id)
    RETURNING c.call_id INTO new_id;
    RETURN new_id;
END
$fn$;
REVOKE ALL ON FUNCTION indb.log_call(text, integer, text, text, text, double precision, text) FROM PUBLIC;

CREATE FUNCTION indb.log_rows(call_id bigint, rows jsonb)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, indb, pg_temp
AS $fn$
-- Appends rows to an open call of the session user. rows is a JSON array of
-- {"key": ..., "features": {...}, "prediction": ...}; returns how many were added.
DECLARE
    call  record;
    added bigint;
BEGIN
    SELECT c.model, c.version, c.ir_sha256, c.called_by, c.finished_at INTO call
    FROM indb.scoring_calls AS c WHERE c.call_id = log_rows.call_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no scoring call %', log_rows.call_id USING ERRCODE = 'no_data_found';
    END IF;
    IF call.called_by <> session_user OR call.finished_at IS NOT NULL THEN
        RAISE EXCEPTION 'scoring call % is not an open call of %', log_rows.call_id, session_user
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF pg_catalog.jsonb_typeof(log_rows.rows) <> 'array' THEN
        RAISE EXCEPTION 'rows must be a JSON array' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO indb.prediction_log (call_id, model, version, ir_sha256, row_key, features, prediction)
    SELECT log_rows.call_id, call.model, call.version, call.ir_sha256, r ->> 'key',
           COALESCE(r -> 'features', '{}'::jsonb), COALESCE(r -> 'prediction', 'null'::jsonb)
    FROM pg_catalog.jsonb_array_elements(log_rows.rows) AS r;
    GET DIAGNOSTICS added = ROW_COUNT;
    UPDATE indb.scoring_calls AS c SET rows_logged = c.rows_logged + added WHERE c.call_id = log_rows.call_id;
    RETURN added;
END
$fn$;
REVOKE ALL ON FUNCTION indb.log_rows(bigint, jsonb) FROM PUBLIC;

CREATE FUNCTION indb.log_call_finish(call_id bigint, rows_scored bigint)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, indb, pg_temp
AS $fn$
-- Closes an open call of the session user; a closed call takes no more rows.
BEGIN
    UPDATE indb.scoring_calls AS c
    SET rows_scored = log_call_finish.rows_scored, finished_at = pg_catalog.clock_timestamp()
    WHERE c.call_id = log_call_finish.call_id AND c.called_by = session_user AND c.finished_at IS NULL;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'scoring call % is not an open call of %', log_call_finish.call_id, session_user
            USING ERRCODE = 'insufficient_privilege';
    END IF;
END
$fn$;
REVOKE ALL ON FUNCTION indb.log_call_finish(bigint, bigint) FROM PUBLIC;

-- The logged entry points (indb.score, indb.predict_logged) belong to indb_owner and
-- call these; `indb log maintain` runs log_ensure_partitions as a deployer.
GRANT EXECUTE ON FUNCTION indb.log_ensure_partitions(integer) TO indb_owner;
GRANT EXECUTE ON FUNCTION indb.log_call(text, integer, text, text, text, double precision, text) TO indb_owner;
GRANT EXECUTE ON FUNCTION indb.log_rows(bigint, jsonb) TO indb_owner;
GRANT EXECUTE ON FUNCTION indb.log_call_finish(bigint, bigint) TO indb_owner;

SELECT indb.log_ensure_partitions(7);
