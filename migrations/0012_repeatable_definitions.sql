-- Repeatable definitions (indb/sql/, and the PL/Python engine rendered from its
-- sources): functions and views re-created whenever their checksum changes, after the
-- versioned migrations. Each re-creation is one row here, so the history is kept.

SET LOCAL search_path = pg_catalog, pg_temp;

CREATE TABLE indb.schema_definitions (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    component    text        NOT NULL,
    name         text        NOT NULL,
    sha256       text        NOT NULL CHECK (sha256 OPERATOR(pg_catalog.~) '^[0-9a-f]{64}$'),
    applied_at   timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    applied_by   text        NOT NULL DEFAULT session_user,
    execution_ms integer     NOT NULL
);
CREATE INDEX ON indb.schema_definitions (component, name, id);
COMMENT ON TABLE indb.schema_definitions IS
    'One row each time indb migrate (re-)created a repeatable definition; the latest row per (component, name) is what is installed.';
ALTER TABLE indb.schema_definitions OWNER TO indb_owner;
GRANT SELECT ON indb.schema_definitions TO indb_deployer, indb_auditor;
