-- indb:requires superuser
-- indb:requires core 14
-- The audit trail's writers (core 0014): triggers on the registry and catalog tables, and
-- indb.audit_grant for role grants (which no trigger sees). Every function is SECURITY
-- DEFINER owned by indb_log_writer, the owner of indb.audit; who and when come from the
-- server (session_user, its clock), what from the row the trigger sees.
--
-- A repeatable definition: indb migrate re-creates it whenever this file changes.

SET LOCAL search_path = pg_catalog, pg_temp;

-- A version is immutable once written: only its retirement (retired_at, stamped with
-- retired_by) and its drift baseline may change, and nothing is deleted.
CREATE OR REPLACE FUNCTION indb.versions_immutable()
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
        NEW.outputs, NEW.engine, NEW.created_by, NEW.created_at, NEW.source_uri, NEW.run_id, NEW.metrics, NEW.retired_by)
       IS DISTINCT FROM
       (OLD.model, OLD.version, OLD.ir, OLD.ir_sha256, OLD.artifact_sha256, OLD.onnx, OLD.features, OLD.classes,
        OLD.outputs, OLD.engine, OLD.created_by, OLD.created_at, OLD.source_uri, OLD.run_id, OLD.metrics, OLD.retired_by) THEN
        RAISE EXCEPTION 'indb: version %@% is immutable: only its retirement and its baseline may change', OLD.model, OLD.version
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$fn$;
REVOKE ALL ON FUNCTION indb.versions_immutable() FROM PUBLIC;

-- Fires after versions_immutable (name order), so retired_by is the server's word only.
CREATE OR REPLACE FUNCTION indb.versions_stamp()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    IF OLD.retired_at IS NULL AND NEW.retired_at IS NOT NULL THEN
        NEW.retired_by := session_user;
    ELSIF NEW.retired_at IS NULL THEN
        NEW.retired_by := NULL;
    END IF;
    RETURN NEW;
END
$fn$;
REVOKE ALL ON FUNCTION indb.versions_stamp() FROM PUBLIC;
ALTER FUNCTION indb.versions_stamp() OWNER TO indb_owner;
CREATE OR REPLACE TRIGGER versions_stamp BEFORE UPDATE ON indb.versions
    FOR EACH ROW EXECUTE FUNCTION indb.versions_stamp();

-- One trigger function for every audited table: the row the trigger sees, as the audit
-- row of its table's change (TG_TABLE_NAME says which).
CREATE OR REPLACE FUNCTION indb.audit_row()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    IF TG_TABLE_NAME OPERATOR(pg_catalog.=) 'alias_history' THEN
        INSERT INTO indb.audit (action, model, version, detail)
        VALUES (NEW.action, NEW.model, NEW.to_version,
                pg_catalog.jsonb_build_object('alias', NEW.alias, 'from', NEW.from_version, 'to', NEW.to_version));
    ELSIF TG_TABLE_NAME OPERATOR(pg_catalog.=) 'versions' AND TG_OP OPERATOR(pg_catalog.=) 'INSERT' THEN
        INSERT INTO indb.audit (action, model, version, detail)
        VALUES ('deploy', NEW.model, NEW.version, pg_catalog.jsonb_build_object(
            'created', true, 'engine', NEW.engine, 'ir_sha256', NEW.ir_sha256, 'artifact_sha256', NEW.artifact_sha256,
            'source_uri', NEW.source_uri, 'run_id', NEW.run_id));
    ELSIF TG_TABLE_NAME OPERATOR(pg_catalog.=) 'versions' THEN
        IF OLD.retired_at IS NULL AND NEW.retired_at IS NOT NULL THEN
            INSERT INTO indb.audit (action, model, version, detail)
            VALUES ('retire', NEW.model, NEW.version, '{}');
        END IF;
        IF NEW.baseline IS DISTINCT FROM OLD.baseline THEN
            INSERT INTO indb.audit (action, model, version, detail)
            VALUES ('baseline', NEW.model, NEW.version, pg_catalog.jsonb_build_object(
                'replaced', OLD.baseline IS NOT NULL,
                'sha256', pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(NEW.baseline::text, 'UTF8')), 'hex')));
        END IF;
    ELSIF TG_TABLE_NAME OPERATOR(pg_catalog.=) 'bindings' AND TG_OP OPERATOR(pg_catalog.=) 'INSERT' THEN
        INSERT INTO indb.audit (action, model, detail)
        VALUES ('bind', NEW.model, pg_catalog.jsonb_build_object('rowtype', NEW.rowtype::text));
    ELSIF TG_TABLE_NAME OPERATOR(pg_catalog.=) 'bindings' THEN
        INSERT INTO indb.audit (action, model, detail)
        VALUES ('unbind', OLD.model, pg_catalog.jsonb_build_object('rowtype', OLD.rowtype::oid::text));
    ELSIF TG_TABLE_NAME OPERATOR(pg_catalog.=) 'schema_definitions' THEN
        INSERT INTO indb.audit (action, detail)
        VALUES ('migrate', pg_catalog.jsonb_build_object('component', NEW.component, 'definition', NEW.name, 'sha256', NEW.sha256));
    ELSIF TG_TABLE_NAME OPERATOR(pg_catalog.=) 'schema_migrations' THEN
        INSERT INTO indb.audit (action, detail)
        VALUES ('migrate', pg_catalog.jsonb_build_object('component', NEW.component, 'version', NEW.version, 'name', NEW.name,
                                                         'success', NEW.success));
    ELSE
        RAISE EXCEPTION 'indb: indb.audit_row has no audit record for table %.%', TG_TABLE_SCHEMA, TG_TABLE_NAME
            USING ERRCODE = 'feature_not_supported';
    END IF;
    RETURN NULL;
END
$fn$;

-- Role grants are cluster-wide and fire no trigger: `indb grant` / `indb revoke` call this
-- in the transaction that changed the membership. It records only what the catalog shows
-- happened (the membership is there after a grant, gone after a revoke), for a caller who
-- could have done it (a superuser, or a role with CREATEROLE).
CREATE OR REPLACE FUNCTION indb.audit_grant(action text, grantee text, group_role text, model text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    is_member boolean;
BEGIN
    IF action OPERATOR(pg_catalog.<>) ALL (ARRAY['grant', 'revoke']) THEN
        RAISE EXCEPTION 'indb: audit_grant records grant or revoke, not %', action USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles AS r WHERE r.rolname OPERATOR(pg_catalog.=) session_user
                   AND (r.rolsuper OR r.rolcreaterole)) THEN
        RAISE EXCEPTION 'indb: only a superuser or a role with CREATEROLE grants indb roles' USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT EXISTS (SELECT FROM pg_catalog.pg_auth_members AS m
                   WHERE m.roleid OPERATOR(pg_catalog.=) pg_catalog.to_regrole(group_role)
                     AND m.member OPERATOR(pg_catalog.=) pg_catalog.to_regrole(grantee))
      INTO is_member;
    IF is_member IS DISTINCT FROM (action OPERATOR(pg_catalog.=) 'grant') THEN
        RAISE EXCEPTION 'indb: % is % a member of %: nothing to record', grantee,
            CASE WHEN is_member THEN 'still' ELSE 'not' END, group_role USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    INSERT INTO indb.audit (action, model, detail)
    VALUES (action, model, pg_catalog.jsonb_build_object('role', grantee, 'group', group_role));
END
$fn$;

DO $owners$
DECLARE
    fn text;
BEGIN
    FOREACH fn IN ARRAY ARRAY['indb.audit_row()', 'indb.audit_grant(text, text, text, text)']
    LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', fn);
        EXECUTE pg_catalog.format('ALTER FUNCTION %s OWNER TO indb_log_writer', fn);
    END LOOP;
END
$owners$;
-- deployers may give per-model grants (grants.py); superusers need no grant
GRANT EXECUTE ON FUNCTION indb.audit_grant(text, text, text, text) TO indb_deployer;

CREATE OR REPLACE TRIGGER audit_alias_history AFTER INSERT ON indb.alias_history
    FOR EACH ROW EXECUTE FUNCTION indb.audit_row();
CREATE OR REPLACE TRIGGER audit_versions AFTER INSERT OR UPDATE ON indb.versions
    FOR EACH ROW EXECUTE FUNCTION indb.audit_row();
CREATE OR REPLACE TRIGGER audit_bindings AFTER INSERT OR DELETE ON indb.bindings
    FOR EACH ROW EXECUTE FUNCTION indb.audit_row();
CREATE OR REPLACE TRIGGER audit_migrations AFTER INSERT OR UPDATE ON indb.schema_migrations
    FOR EACH ROW EXECUTE FUNCTION indb.audit_row();
CREATE OR REPLACE TRIGGER audit_definitions AFTER INSERT ON indb.schema_definitions
    FOR EACH ROW EXECUTE FUNCTION indb.audit_row();
-- the per-table trigger functions audit_row replaced
DROP FUNCTION IF EXISTS indb.audit_alias_history(), indb.audit_versions(), indb.audit_bindings(), indb.audit_migrations();
