-- Governance roles and ownership. Run by a superuser (a DBA): it creates roles and
-- changes who owns schema indb, which a deployer cannot do.
--
-- * indb_scorer_base: what every scorer needs except access to models (the shared entry
--   points, the registry columns a scorer may read, their own log rows). indb_scorer is
--   a member of it and also executes every model's functions; a per-model scorer is a
--   member of indb_model_<name> (made by `indb grant scorer USER --model NAME`), which
--   is a member of indb_scorer_base and executes that model's functions only.
-- * indb_compute: the role that evaluates the predictions written to the prediction log
--   (see 0006). Nobody is a member of it; it reaches the scoring functions through
--   indb_scorer.
-- * Schema indb now belongs to indb_log_writer. In PostgreSQL the owner of a schema may
--   drop any object in it, so while indb_owner owned the schema a deployer could drop
--   the log's tables and functions. indb_owner keeps USAGE and CREATE (with grant
--   option) and still owns the registry and every scoring function.

SET LOCAL search_path = pg_catalog, pg_temp;

DO $superuser$
BEGIN
    IF NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles AS r WHERE r.rolname OPERATOR(pg_catalog.=) current_user) THEN
        RAISE EXCEPTION 'migration 0005 creates roles and changes the owner of schema indb: run indb migrate as a superuser'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
END
$superuser$;

-- Idempotent and safe when two databases of the cluster migrate at once (see 0001).
DO $roles$
DECLARE
    group_role text;
BEGIN
    FOREACH group_role IN ARRAY ARRAY['indb_scorer_base', 'indb_compute']
    LOOP
        BEGIN
            EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', group_role);
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END LOOP;
END
$roles$;

DO $check$
DECLARE
    bad record;
BEGIN
    FOR bad IN
        SELECT r.rolname FROM pg_catalog.pg_roles AS r
        WHERE r.rolname OPERATOR(pg_catalog.=) ANY (ARRAY['indb_scorer_base', 'indb_compute'])
          AND (r.rolcanlogin OR r.rolsuper OR r.rolbypassrls OR r.rolcreaterole OR r.rolcreatedb)
    LOOP
        RAISE EXCEPTION 'role % exists with LOGIN, SUPERUSER, BYPASSRLS, CREATEROLE or CREATEDB; indb needs a plain NOLOGIN group role', bad.rolname;
    END LOOP;
    -- indb_compute must have no members: whoever could act as it could write log rows.
    FOR bad IN
        SELECT m.member::regrole::text AS rolname FROM pg_catalog.pg_auth_members AS m
        WHERE m.roleid OPERATOR(pg_catalog.=) 'indb_compute'::regrole
    LOOP
        RAISE EXCEPTION 'role % is a member of indb_compute; nobody may be', bad.rolname
            USING HINT = 'REVOKE indb_compute FROM ' OPERATOR(pg_catalog.||) bad.rolname;
    END LOOP;
END
$check$;

DO $membership$
BEGIN
    BEGIN
        GRANT indb_scorer_base TO indb_scorer;
    EXCEPTION WHEN unique_violation THEN
        NULL;
    END;
    BEGIN
        GRANT indb_scorer TO indb_compute;
    EXCEPTION WHEN unique_violation THEN
        NULL;
    END;
END
$membership$;

ALTER SCHEMA indb OWNER TO indb_log_writer;
GRANT USAGE, CREATE ON SCHEMA indb TO indb_owner WITH GRANT OPTION;
GRANT USAGE ON SCHEMA indb TO indb_scorer_base, indb_compute;

ALTER DEFAULT PRIVILEGES FOR ROLE indb_compute REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;

-- indb_compute stages large scoring calls in temporary tables.
DO $temp$
BEGIN
    EXECUTE pg_catalog.format('GRANT TEMPORARY ON DATABASE %I TO indb_compute', pg_catalog.current_database());
END
$temp$;

-- The shared scoring surface, for per-model scorers too.
GRANT SELECT ON indb.models, indb.aliases, indb.version_functions, indb.bindings TO indb_scorer_base;
GRANT SELECT (model, version, ir_sha256, features, classes, outputs, engine, created_by, created_at, retired_at)
    ON indb.versions TO indb_scorer_base;
GRANT EXECUTE ON FUNCTION indb.resolve(text) TO indb_scorer_base;
GRANT EXECUTE ON FUNCTION indb.feature_number(jsonb, text, text) TO indb_scorer_base;
GRANT EXECUTE ON FUNCTION indb.feature_text(jsonb, text, text) TO indb_scorer_base;
GRANT EXECUTE ON FUNCTION indb.fail(text, anyelement) TO indb_scorer_base;
GRANT EXECUTE ON FUNCTION indb.function_sql_name(regprocedure) TO indb_scorer_base;
GRANT EXECUTE ON FUNCTION indb.call_version(text, text, jsonb, anyelement) TO indb_scorer_base;
GRANT EXECUTE ON FUNCTION indb.predict(text, record) TO indb_scorer_base;
GRANT EXECUTE ON FUNCTION indb.predict_proba(text, record) TO indb_scorer_base;
GRANT EXECUTE ON FUNCTION indb.predict_label(text, record) TO indb_scorer_base;
GRANT EXECUTE ON FUNCTION indb.decision_function(text, record) TO indb_scorer_base;
GRANT EXECUTE ON FUNCTION indb.transform(text, record) TO indb_scorer_base;
GRANT EXECUTE ON FUNCTION indb.predict_array(text, double precision[]) TO indb_scorer_base;

-- Shared functions that exist only in some databases: the bound overloads made by
-- earlier binds, and the PL/Python engine's entry points when that component is
-- installed (its own migrations grant them to indb_scorer_base when installed later).
DO $shared$
DECLARE
    fn regprocedure;
BEGIN
    FOR fn IN
        SELECT p.oid::regprocedure FROM pg_catalog.pg_proc AS p
        WHERE p.pronamespace OPERATOR(pg_catalog.=) 'indb'::regnamespace
          AND (p.proname OPERATOR(pg_catalog.=) ANY (ARRAY['engine_float', 'engine_array', 'engine_text', 'engine_chunk', 'engine_chunk_text'])
               OR (p.proname OPERATOR(pg_catalog.=) ANY (ARRAY['predict', 'predict_proba', 'predict_label', 'decision_function', 'transform'])
                   AND p.pronargs OPERATOR(pg_catalog.=) 2
                   AND p.proargtypes[1] OPERATOR(pg_catalog.<>) 'pg_catalog.record'::regtype))
    LOOP
        EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO indb_scorer_base', fn);
    END LOOP;
END
$shared$;

SET LOCAL ROLE indb_owner;

-- The output columns of each version as `indb score` and `compile --table` name them
-- (prediction, probability_<label>, decision_<label>, transform_<i>): deploy writes them
-- from the IR, where the class labels and vector lengths are known.
CREATE TABLE indb.version_outputs (
    model   text    NOT NULL,
    version integer NOT NULL,
    output  text    NOT NULL CHECK (output OPERATOR(pg_catalog.=) ANY (ARRAY['predict', 'proba', 'decision', 'transform', 'label'])),
    columns text[]  NOT NULL CHECK (pg_catalog.cardinality(columns) OPERATOR(pg_catalog.>) 0),
    PRIMARY KEY (model, version, output),
    FOREIGN KEY (model, version) REFERENCES indb.versions (model, version)
);
GRANT SELECT ON indb.version_outputs TO indb_scorer_base, indb_auditor;
