-- indb:requires superuser
-- Where a version came from (MLflow: its source URI and run), who retired it, and an
-- append-only audit trail of every change to the registry, the grants, the log's
-- retention and the catalog itself.
--
-- indb.audit belongs to indb_log_writer (NOLOGIN, no members), like the prediction log:
-- rows are written only by triggers on the registry tables and by SECURITY DEFINER
-- functions (sql/60_audit.sql), stamped with session_user and the server's clock, so
-- neither a deployer nor the catalog owner can write, rewrite or delete the trail.
-- Auditors read it. The trigger functions and the triggers themselves are repeatable
-- definitions (sql/60_audit.sql), installed in this same migrate run.

SET LOCAL search_path = pg_catalog, pg_temp;

ALTER TABLE indb.versions ADD COLUMN source_uri text, ADD COLUMN run_id text, ADD COLUMN retired_by text;
COMMENT ON COLUMN indb.versions.source_uri IS 'where the artifact came from: a file path, models:/NAME/VERSION, runs:/RUN/PATH';
COMMENT ON COLUMN indb.versions.run_id IS 'the MLflow run that logged the model, if any; metrics holds that run''s metrics';
COMMENT ON COLUMN indb.versions.retired_by IS 'session_user of the retire (set by the server, never by the client)';
-- a version's baseline may be attached after its deploy (`indb baseline NAME@V FILE`)
GRANT UPDATE (baseline) ON indb.versions TO indb_deployer;

-- `indb retire --force` drops an alias no earlier version can take: to_version NULL.
ALTER TABLE indb.alias_history DROP CONSTRAINT alias_history_action_check;
ALTER TABLE indb.alias_history ADD CONSTRAINT alias_history_action_check
    CHECK (action OPERATOR(pg_catalog.=) ANY (ARRAY['deploy', 'promote', 'rollback', 'retire']));

SET LOCAL ROLE indb_log_writer;

CREATE TABLE indb.audit (
    id      bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at      timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    who     text        NOT NULL DEFAULT session_user,
    action  text        NOT NULL CHECK (action OPERATOR(pg_catalog.=) ANY (ARRAY[
                'deploy', 'promote', 'rollback', 'retire', 'bind', 'unbind', 'baseline',
                'grant', 'revoke', 'prune', 'migrate'])),
    model   text,
    version integer,
    detail  jsonb       NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_by_model ON indb.audit (model, id);
CREATE INDEX audit_by_time ON indb.audit (at);
COMMENT ON TABLE indb.audit IS
    'Append-only audit trail (indb audit): who (session_user) did what, when (server clock); written by triggers and SECURITY DEFINER functions only.';

RESET ROLE;
REVOKE ALL ON indb.audit FROM PUBLIC;
GRANT SELECT ON indb.audit TO indb_auditor;
CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON indb.audit
    FOR EACH ROW EXECUTE FUNCTION indb.append_only();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON indb.audit
    FOR EACH STATEMENT EXECUTE FUNCTION indb.append_only();
