-- indb:requires superuser
-- No deployer can become the owner of shared objects (docs/security.md).
--
-- Until now indb_deployer was a NOINHERIT member of indb_owner and deployed by SET ROLE
-- indb_owner: a deployer could replace a shared entry point that superusers execute,
-- create tables in schema indb, rewrite a version's IR with its checksum and grant
-- outside `indb grant`. From here on:
--
-- * indb_owner owns the schema's shared objects and has no members at all.
-- * indb_versions owns what deployers create (per-version functions, bound overloads) and
--   nothing shared. Deployers are NOINHERIT members: they create those functions after
--   SET ROLE indb_versions. An event trigger (owned by the superuser running this, which a
--   deployer cannot drop or disable) refuses every other object indb_versions would
--   create in schema indb, a per-version function that could reach anything beyond
--   pg_catalog's immutable functions and indb's shared functions, and a grant of one to
--   anyone but indb's scorer roles (indb.check_version_function, sql/15_guard.sql).
-- * Deployers write the registry with plain table privileges: rows are added, aliases
--   move, versions retire; a version's IR, checksum and artifact never change (column
--   privileges, and a trigger that refuses it even to the tables' owner).

SET LOCAL search_path = pg_catalog, pg_temp;

DO $roles$
BEGIN
    BEGIN
        CREATE ROLE indb_versions NOLOGIN;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN
        NULL;  -- another database of this cluster made it (see 0001)
    END;
    IF EXISTS (SELECT FROM pg_catalog.pg_roles AS r WHERE r.rolname OPERATOR(pg_catalog.=) 'indb_versions'
               AND (r.rolcanlogin OR r.rolsuper OR r.rolbypassrls OR r.rolcreaterole OR r.rolcreatedb)) THEN
        RAISE EXCEPTION 'role indb_versions exists with LOGIN, SUPERUSER, BYPASSRLS, CREATEROLE or CREATEDB; indb needs a plain NOLOGIN group role';
    END IF;
END
$roles$;

-- Nobody is a member of indb_owner any more; deployers reach indb_versions only.
DO $membership$
DECLARE
    m record;
BEGIN
    FOR m IN SELECT a.member::regrole::text AS member FROM pg_catalog.pg_auth_members AS a
             WHERE a.roleid OPERATOR(pg_catalog.=) 'indb_owner'::regrole
    LOOP
        EXECUTE pg_catalog.format('REVOKE indb_owner FROM %I CASCADE', m.member);
    END LOOP;
    BEGIN
        GRANT indb_versions TO indb_deployer;
    EXCEPTION WHEN unique_violation THEN
        NULL;
    END;
END
$membership$;

GRANT USAGE, CREATE ON SCHEMA indb TO indb_versions;
ALTER DEFAULT PRIVILEGES FOR ROLE indb_versions REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
-- a PL/pgSQL version function runs as indb_versions (SECURITY DEFINER): what it may call
GRANT EXECUTE ON FUNCTION indb.fail(text, anyelement) TO indb_versions;

-- The registry, written by deployers as themselves.
GRANT SELECT, INSERT ON indb.models, indb.versions, indb.version_functions, indb.version_outputs,
    indb.bindings, indb.alias_history TO indb_deployer;
GRANT SELECT, INSERT, UPDATE, DELETE ON indb.aliases TO indb_deployer;
GRANT UPDATE (retired_at) ON indb.versions TO indb_deployer;
GRANT DELETE ON indb.version_functions, indb.bindings TO indb_deployer;

-- A version is immutable once written: only retired_at may change, and nothing is deleted.
CREATE FUNCTION indb.versions_immutable()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    IF TG_OP OPERATOR(pg_catalog.=) 'DELETE' THEN
        RAISE EXCEPTION 'indb: version %@% cannot be deleted: versions are immutable (retire it instead)', OLD.model, OLD.version
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF (NEW.model, NEW.version, NEW.ir, NEW.ir_sha256, NEW.artifact_sha256, NEW.onnx, NEW.features, NEW.classes,
        NEW.outputs, NEW.engine, NEW.created_by, NEW.created_at)
       IS DISTINCT FROM
       (OLD.model, OLD.version, OLD.ir, OLD.ir_sha256, OLD.artifact_sha256, OLD.onnx, OLD.features, OLD.classes,
        OLD.outputs, OLD.engine, OLD.created_by, OLD.created_at) THEN
        RAISE EXCEPTION 'indb: version %@% is immutable: only its retirement may change', OLD.model, OLD.version
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$fn$;
REVOKE ALL ON FUNCTION indb.versions_immutable() FROM PUBLIC;
ALTER FUNCTION indb.versions_immutable() OWNER TO indb_owner;
CREATE TRIGGER versions_immutable BEFORE UPDATE OR DELETE ON indb.versions
    FOR EACH ROW EXECUTE FUNCTION indb.versions_immutable();

CREATE FUNCTION indb.append_only()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    RAISE EXCEPTION 'indb: % is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END
$fn$;
REVOKE ALL ON FUNCTION indb.append_only() FROM PUBLIC;
ALTER FUNCTION indb.append_only() OWNER TO indb_owner;
CREATE TRIGGER alias_history_append_only BEFORE UPDATE OR DELETE ON indb.alias_history
    FOR EACH ROW EXECUTE FUNCTION indb.append_only();

-- The stored IR is the text its checksum covers (the engine re-checks it on every load).
ALTER TABLE indb.versions ADD CONSTRAINT versions_ir_checksum
    CHECK (ir_sha256 OPERATOR(pg_catalog.=) pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(ir, 'UTF8')), 'hex'));

-- The guard starts closed: until sql/15_guard.sql replaces it (in this same migrate run),
-- indb_versions may create nothing. Created by the superuser, owned by indb_owner.
CREATE FUNCTION indb.ddl_guard()
RETURNS event_trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    IF current_user OPERATOR(pg_catalog.=) 'indb_versions' THEN
        RAISE EXCEPTION 'indb: the DDL guard is not installed yet: run indb migrate' USING ERRCODE = 'insufficient_privilege';
    END IF;
END
$fn$;
REVOKE ALL ON FUNCTION indb.ddl_guard() FROM PUBLIC;
ALTER FUNCTION indb.ddl_guard() OWNER TO indb_owner;
CREATE EVENT TRIGGER indb_ddl_guard ON ddl_command_end EXECUTE FUNCTION indb.ddl_guard();

CREATE FUNCTION indb.ddl_dropped()
RETURNS event_trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    NULL;  -- replaced by sql/15_guard.sql
END
$fn$;
REVOKE ALL ON FUNCTION indb.ddl_dropped() FROM PUBLIC;
ALTER FUNCTION indb.ddl_dropped() OWNER TO indb_owner;
CREATE EVENT TRIGGER indb_ddl_dropped ON sql_drop EXECUTE FUNCTION indb.ddl_dropped();

-- What deployers made so far belongs to indb_versions now. SQL version functions become
-- SQL-standard bodies (RETURN expr): parsed once, so PostgreSQL records what they call
-- and a caller's search_path cannot change them; PL/pgSQL ones run as indb_versions.
DO $adopt$
DECLARE
    f record;
    body text;
BEGIN
    FOR f IN
        SELECT p.oid, p.oid::regprocedure::text AS sig, l.lanname, p.prosrc, p.prosqlbody IS NULL AS string_body,
               pg_catalog.format('%s(%s)', p.oid::regproc, pg_catalog.pg_get_function_arguments(p.oid)) AS named,
               pg_catalog.format_type(p.prorettype, NULL) AS rettype,
               CASE p.provolatile WHEN 'i' THEN 'IMMUTABLE' WHEN 's' THEN 'STABLE' ELSE 'VOLATILE' END AS volatility
        FROM pg_catalog.pg_proc AS p JOIN pg_catalog.pg_language AS l ON l.oid OPERATOR(pg_catalog.=) p.prolang
        WHERE p.pronamespace OPERATOR(pg_catalog.=) 'indb'::regnamespace
          AND (p.oid OPERATOR(pg_catalog.=) ANY (SELECT vf.fn::oid FROM indb.version_functions AS vf)
               OR (p.proname OPERATOR(pg_catalog.=) ANY (ARRAY['predict', 'predict_proba', 'predict_label', 'decision_function', 'transform'])
                   AND p.pronargs OPERATOR(pg_catalog.=) 2
                   AND p.proargtypes[1] OPERATOR(pg_catalog.<>) 'pg_catalog.record'::regtype))
    LOOP
        EXECUTE pg_catalog.format('ALTER FUNCTION %s OWNER TO indb_versions', f.sig);
        IF f.lanname OPERATOR(pg_catalog.=) 'plpgsql' THEN
            EXECUTE pg_catalog.format('ALTER FUNCTION %s SECURITY DEFINER', f.sig);
        ELSIF f.lanname OPERATOR(pg_catalog.=) 'sql' AND f.string_body AND f.prosrc OPERATOR(pg_catalog.~) '^SELECT ' THEN
            body := pg_catalog.substr(f.prosrc, 8);
            EXECUTE pg_catalog.format('CREATE OR REPLACE FUNCTION %s RETURNS %s LANGUAGE sql %s PARALLEL SAFE RETURN %s',
                                      f.named, f.rettype, f.volatility, body);
        END IF;
    END LOOP;
END
$adopt$;
