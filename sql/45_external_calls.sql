-- indb:requires superuser
-- indb.log_external: records a scoring call made outside PostgreSQL (indb.spark.score on
-- a Spark DataFrame) in indb.scoring_calls: who, when, which version, how many rows.
--
-- A repeatable definition: indb migrate re-creates it whenever this file changes.
--
-- The caller scored elsewhere, so the database cannot recompute the rows; what it checks
-- is what it can: the caller (acting as acting_role) may score the version
-- (indb.compute_prepare: not retired, EXECUTE on its prediction function), and the IR
-- checksum the caller verified is the stored one. The call is opened and closed here, by
-- indb_log_writer, stamped with session_user; its entry point says where it ran.

SET LOCAL search_path = pg_catalog, pg_temp;

CREATE OR REPLACE FUNCTION indb.log_external(model text, version integer, ir_sha256 text, entry_point text, source text, target text, rows_scored bigint, acting_role name, OUT call_id bigint, OUT called_at timestamp with time zone)
 RETURNS record
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    prep record;
BEGIN
    IF entry_point IS NULL OR entry_point !~ '^[a-z][a-z0-9_.]{0,62}$' OR entry_point = ANY (ARRAY['score', 'predict_logged']) THEN
        RAISE EXCEPTION 'indb: % is not an entry point name for an external call', pg_catalog.quote_nullable(entry_point)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF rows_scored IS NULL OR rows_scored < 0 THEN
        RAISE EXCEPTION 'indb: rows_scored must be 0 or more' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT * INTO prep FROM indb.compute_prepare(log_external.model, log_external.version, log_external.acting_role);
    IF prep.ir_sha256 IS DISTINCT FROM log_external.ir_sha256 THEN
        RAISE EXCEPTION 'indb: the IR checksum given for % is not the stored one', pg_catalog.quote_literal(model || '@' || version)
            USING ERRCODE = 'data_corrupted';
    END IF;
    SELECT o.call_id, o.called_at INTO call_id, called_at
    FROM indb.log_open(log_external.model, log_external.version, prep.ir_sha256, log_external.entry_point,
                       log_external.target, 1.0, NULL) AS o;
    PERFORM indb.log_finish(call_id, called_at, log_external.source, log_external.rows_scored, 0);
END
$function$;
ALTER FUNCTION indb.log_external(model text, version integer, ir_sha256 text, entry_point text, source text, target text, rows_scored bigint, acting_role name, OUT call_id bigint, OUT called_at timestamp with time zone) OWNER TO indb_log_writer;
REVOKE ALL ON FUNCTION indb.log_external(model text, version integer, ir_sha256 text, entry_point text, source text, target text, rows_scored bigint, acting_role name, OUT call_id bigint, OUT called_at timestamp with time zone) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION indb.log_external(model text, version integer, ir_sha256 text, entry_point text, source text, target text, rows_scored bigint, acting_role name, OUT call_id bigint, OUT called_at timestamp with time zone) TO indb_scorer_base;
