-- The model registry: names, immutable numbered versions, aliases and every alias move.

SET LOCAL search_path = pg_catalog, pg_temp;
SET LOCAL ROLE indb_owner;

CREATE TABLE indb.models (
    name       text        PRIMARY KEY
               -- '@' separates a name from a version or alias in 'name@3' / 'name@staging'.
               CHECK (name OPERATOR(pg_catalog.~) '^[A-Za-z][A-Za-z0-9_.-]{0,62}$'),
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    created_by text        NOT NULL DEFAULT session_user
);

CREATE TABLE indb.versions (
    model           text        NOT NULL REFERENCES indb.models (name),
    version         integer     NOT NULL CHECK (version OPERATOR(pg_catalog.>) 0),
    -- The IR as canonical JSON text: these exact bytes are what ir_sha256 covers, so
    -- the column is text, never jsonb (which would re-serialise it).
    ir              text        NOT NULL,
    ir_sha256       text        NOT NULL CHECK (ir_sha256 OPERATOR(pg_catalog.~) '^[0-9a-f]{64}$'),
    artifact_sha256 text        NOT NULL CHECK (artifact_sha256 OPERATOR(pg_catalog.~) '^[0-9a-f]{64}$'),
    onnx            bytea,
    features        jsonb       NOT NULL,
    classes         jsonb,
    outputs         text[]      NOT NULL,
    engine          text        NOT NULL CHECK (engine OPERATOR(pg_catalog.=) ANY (ARRAY['sql', 'plpython'])),
    engine_reason   text,
    baseline        jsonb,
    metrics         jsonb,
    created_by      text        NOT NULL DEFAULT session_user,
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    retired_at      timestamptz,
    PRIMARY KEY (model, version)
);
CREATE INDEX versions_artifact ON indb.versions (model, artifact_sha256);

CREATE TABLE indb.aliases (
    model    text        NOT NULL REFERENCES indb.models (name),
    alias    text        NOT NULL CHECK (alias OPERATOR(pg_catalog.~) '^[A-Za-z][A-Za-z0-9_-]{0,62}$'),
    version  integer     NOT NULL,
    moved_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    moved_by text        NOT NULL DEFAULT session_user,
    PRIMARY KEY (model, alias),
    FOREIGN KEY (model, version) REFERENCES indb.versions (model, version)
);

CREATE TABLE indb.alias_history (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    model        text        NOT NULL REFERENCES indb.models (name),
    alias        text        NOT NULL,
    from_version integer,
    to_version   integer,
    action       text        NOT NULL CHECK (action OPERATOR(pg_catalog.=) ANY (ARRAY['deploy', 'promote', 'rollback'])),
    moved_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    moved_by     text        NOT NULL DEFAULT session_user,
    FOREIGN KEY (model, from_version) REFERENCES indb.versions (model, version),
    FOREIGN KEY (model, to_version) REFERENCES indb.versions (model, version)
);
CREATE INDEX alias_history_by_alias ON indb.alias_history (model, alias, id);

-- Auditors read the whole registry. Scorers read what they need to pick a version,
-- but not the IR or the artifact.
GRANT SELECT ON indb.models, indb.versions, indb.aliases, indb.alias_history TO indb_auditor;
GRANT SELECT ON indb.models, indb.aliases TO indb_scorer;
GRANT SELECT (model, version, ir_sha256, features, classes, outputs, engine, created_by, created_at, retired_at)
    ON indb.versions TO indb_scorer;
-- The log writer stamps each logged call with the version's checksum, read from here.
GRANT SELECT (model, version, ir_sha256) ON indb.versions TO indb_log_writer;
