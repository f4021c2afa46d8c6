-- Roles, the schema and the migration history. Run by a superuser: roles are
-- cluster-wide, so this is the one step that needs more than the catalog owner.

-- A caller's search_path must not change what these statements mean.
SET LOCAL search_path = pg_catalog, pg_temp;

-- Roles are created only when missing (another database of this cluster may have
-- made them). Two databases migrating at the same moment race on pg_authid: the
-- loser waits for the winner's row and then gets unique_violation (or
-- duplicate_object once the winner has committed); both mean "already there".
DO $roles$
DECLARE
    group_role text;
BEGIN
    FOREACH group_role IN ARRAY ARRAY['indb_owner', 'indb_deployer', 'indb_scorer', 'indb_auditor', 'indb_log_writer']
    LOOP
        BEGIN
            IF group_role = 'indb_deployer' THEN
                -- NOINHERIT: a deployer acts as indb_owner only after SET ROLE, inside
                -- migrate and deploy transactions.
                EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN NOINHERIT', group_role);
            ELSE
                EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', group_role);
            END IF;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END LOOP;
END
$roles$;

DO $membership$
BEGIN
    GRANT indb_owner TO indb_deployer;
EXCEPTION WHEN unique_violation THEN
    NULL;  -- a concurrent migration of another database granted it first
END
$membership$;

-- Roles that existed before may have been made by hand: refuse the ones that would
-- break the security model instead of silently relying on them.
DO $check$
DECLARE
    bad record;
BEGIN
    FOR bad IN
        SELECT r.rolname FROM pg_catalog.pg_roles AS r
        WHERE r.rolname OPERATOR(pg_catalog.=) ANY (ARRAY['indb_owner', 'indb_deployer', 'indb_scorer', 'indb_auditor', 'indb_log_writer'])
          AND (r.rolcanlogin OR r.rolsuper)
    LOOP
        RAISE EXCEPTION 'role % exists with LOGIN or SUPERUSER; indb needs it to be a NOLOGIN group role', bad.rolname
            USING HINT = 'ALTER ROLE ' OPERATOR(pg_catalog.||) bad.rolname OPERATOR(pg_catalog.||) ' NOLOGIN NOSUPERUSER, and grant the group to people instead';
    END LOOP;
    IF EXISTS (SELECT FROM pg_catalog.pg_roles AS r
               WHERE r.rolname OPERATOR(pg_catalog.=) 'indb_deployer' AND r.rolinherit) THEN
        RAISE EXCEPTION 'role indb_deployer exists with INHERIT; indb needs NOINHERIT so that deployers act as indb_owner only through SET ROLE'
            USING HINT = 'ALTER ROLE indb_deployer NOINHERIT';
    END IF;
END
$check$;

CREATE SCHEMA indb AUTHORIZATION indb_owner;
COMMENT ON SCHEMA indb IS 'indb: the model registry, scoring functions and prediction log. Changed only by indb migrate.';

GRANT USAGE ON SCHEMA indb TO indb_deployer, indb_scorer, indb_auditor, indb_log_writer;

-- Functions get no EXECUTE for PUBLIC by default in this database when indb's roles
-- create them; every migration still revokes explicitly, this catches the forgotten one.
ALTER DEFAULT PRIVILEGES FOR ROLE indb_owner REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
ALTER DEFAULT PRIVILEGES FOR ROLE indb_log_writer REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;

SET LOCAL ROLE indb_owner;

CREATE TABLE indb.schema_migrations (
    component    text        NOT NULL,
    version      integer     NOT NULL CHECK (version OPERATOR(pg_catalog.>) 0),
    name         text        NOT NULL,
    sha256       text        NOT NULL CHECK (sha256 OPERATOR(pg_catalog.~) '^[0-9a-f]{64}$'),
    applied_at   timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    applied_by   text        NOT NULL DEFAULT session_user,
    execution_ms integer     NOT NULL,
    success      boolean     NOT NULL,
    PRIMARY KEY (component, version)
);
COMMENT ON TABLE indb.schema_migrations IS
    'One row per applied migration file and component; sha256 is of the file text with line endings normalised to LF.';

GRANT SELECT ON indb.schema_migrations TO indb_deployer, indb_auditor;
