-- indb:requires superuser
-- The DDL guard: what a deployer (acting as indb_versions) may create in schema indb, and
-- the check that every version function and bound overload passes at deploy (the event
-- trigger of core 0013) and again in `indb validate`. Owned by indb_owner, which no
-- deployer can become; the event triggers belong to the superuser who migrated.
--
-- A repeatable definition: indb migrate re-creates it whenever this file changes.

SET LOCAL search_path = pg_catalog, pg_temp;

-- NULL when ``fn`` is a function a deployer may have made; otherwise why not (one line).
-- A SQL body must be SQL-standard (RETURN expr): PostgreSQL then records everything it
-- references, and parses it once, so neither its text nor a caller's search_path can
-- smuggle in anything else. What it may reference: pg_catalog's immutable functions (and
-- the few stable ones the generic path needs), operators and types; indb's shared
-- functions (owned by indb_owner) and other version functions; the row types of tables.
-- A PL/pgSQL body (one variable per shared value) cannot be analysed that way: it runs
-- as indb_versions (SECURITY DEFINER), which may do nothing a deployer cannot already.
CREATE OR REPLACE FUNCTION indb.check_version_function(fn oid)
RETURNS text
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    p record;
    d record;
    stable_ok CONSTANT text[] := ARRAY['to_jsonb'];
BEGIN
    SELECT pr.proname, pr.pronamespace, pr.proowner, pr.prosecdef, pr.proconfig, pr.prokind, l.lanname,
           pr.prosqlbody IS NOT NULL AS standard
      INTO p
      FROM pg_catalog.pg_proc AS pr JOIN pg_catalog.pg_language AS l ON l.oid OPERATOR(pg_catalog.=) pr.prolang
     WHERE pr.oid OPERATOR(pg_catalog.=) fn;
    IF NOT FOUND THEN
        RETURN 'no such function';
    END IF;
    IF p.pronamespace OPERATOR(pg_catalog.<>) 'indb'::regnamespace THEN
        RETURN 'it is not in schema indb';
    END IF;
    IF p.proowner OPERATOR(pg_catalog.<>) 'indb_versions'::regrole THEN
        RETURN 'it is not owned by indb_versions';
    END IF;
    IF p.prokind OPERATOR(pg_catalog.<>) 'f' THEN
        RETURN 'it is not a plain function';
    END IF;
    IF NOT (p.proname OPERATOR(pg_catalog.~) '@[0-9]+/(predict|label|proba|decision|transform)$'
            OR p.proname OPERATOR(pg_catalog.=) ANY (ARRAY['predict', 'predict_proba', 'predict_label', 'decision_function', 'transform'])) THEN
        RETURN 'its name is neither a version''s function (model@version/output) nor an indb entry point';
    END IF;
    IF p.lanname OPERATOR(pg_catalog.=) 'plpgsql' THEN
        IF NOT p.prosecdef THEN
            RETURN 'a PL/pgSQL body must run as indb_versions (SECURITY DEFINER)';
        END IF;
        IF p.proconfig IS DISTINCT FROM ARRAY['search_path=pg_catalog, indb, pg_temp'] THEN
            RETURN 'a PL/pgSQL body must pin search_path = pg_catalog, indb, pg_temp and set nothing else';
        END IF;
        RETURN NULL;
    END IF;
    IF p.lanname OPERATOR(pg_catalog.<>) 'sql' THEN
        RETURN pg_catalog.format('language %s is not allowed (sql or plpgsql only)', p.lanname);
    END IF;
    IF NOT p.standard THEN
        RETURN 'a SQL body must be SQL-standard (RETURN expression), not a string';
    END IF;
    IF p.prosecdef OR p.proconfig IS NOT NULL THEN
        RETURN 'a SQL body carries no SECURITY DEFINER and no SET clause';
    END IF;
    FOR d IN
        SELECT dep.refclassid, dep.refobjid, dep.refobjsubid FROM pg_catalog.pg_depend AS dep
         WHERE dep.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::regclass
           AND dep.objid OPERATOR(pg_catalog.=) fn AND dep.deptype OPERATOR(pg_catalog.=) 'n'
    LOOP
        IF d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::regclass THEN
            IF NOT EXISTS (
                SELECT FROM pg_catalog.pg_proc AS r
                 WHERE r.oid OPERATOR(pg_catalog.=) d.refobjid
                   AND ((r.pronamespace OPERATOR(pg_catalog.=) 'pg_catalog'::regnamespace
                         AND (r.provolatile OPERATOR(pg_catalog.=) 'i' OR r.proname OPERATOR(pg_catalog.=) ANY (stable_ok)))
                        OR (r.pronamespace OPERATOR(pg_catalog.=) 'indb'::regnamespace
                            AND r.proowner OPERATOR(pg_catalog.=) ANY (ARRAY['indb_owner'::regrole::oid, 'indb_versions'::regrole::oid])))) THEN
                RETURN pg_catalog.format('it calls %s, which is neither an immutable pg_catalog function nor indb''s own',
                                         d.refobjid::regprocedure);
            END IF;
        ELSIF d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_operator'::regclass THEN
            IF NOT EXISTS (
                SELECT FROM pg_catalog.pg_operator AS o JOIN pg_catalog.pg_proc AS r ON r.oid OPERATOR(pg_catalog.=) o.oprcode
                 WHERE o.oid OPERATOR(pg_catalog.=) d.refobjid
                   AND o.oprnamespace OPERATOR(pg_catalog.=) 'pg_catalog'::regnamespace
                   AND r.pronamespace OPERATOR(pg_catalog.=) 'pg_catalog'::regnamespace
                   AND r.provolatile OPERATOR(pg_catalog.=) 'i') THEN
                RETURN pg_catalog.format('it uses operator %s, which is not an immutable pg_catalog operator', d.refobjid::regoperator);
            END IF;
        ELSIF d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_type'::regclass THEN
            IF NOT EXISTS (
                SELECT FROM pg_catalog.pg_type AS t
                 WHERE t.oid OPERATOR(pg_catalog.=) d.refobjid
                   AND (t.typnamespace OPERATOR(pg_catalog.=) 'pg_catalog'::regnamespace
                        OR (t.typtype OPERATOR(pg_catalog.=) 'c' AND EXISTS (
                            SELECT FROM pg_catalog.pg_class AS c WHERE c.oid OPERATOR(pg_catalog.=) t.typrelid
                               AND c.relkind OPERATOR(pg_catalog.=) ANY (ARRAY['r', 'p', 'v', 'm', 'f']))))) THEN
                RETURN pg_catalog.format('it uses type %s (only pg_catalog types and table row types)', d.refobjid::regtype);
            END IF;
        ELSIF d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::regclass THEN
            IF NOT EXISTS (SELECT FROM pg_catalog.pg_class AS c WHERE c.oid OPERATOR(pg_catalog.=) d.refobjid
                              AND c.relkind OPERATOR(pg_catalog.=) ANY (ARRAY['r', 'p', 'v', 'm', 'f'])) THEN
                RETURN pg_catalog.format('it references %s', d.refobjid::regclass);
            END IF;
        ELSIF d.refclassid OPERATOR(pg_catalog.=) ANY (ARRAY['pg_catalog.pg_namespace'::regclass, 'pg_catalog.pg_language'::regclass,
                                                            'pg_catalog.pg_collation'::regclass]) THEN
            NULL;
        ELSE
            RETURN pg_catalog.format('it references a %s object', d.refclassid::regclass);
        END IF;
    END LOOP;
    RETURN NULL;
END
$fn$;
ALTER FUNCTION indb.check_version_function(oid) OWNER TO indb_owner;
REVOKE ALL ON FUNCTION indb.check_version_function(oid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION indb.check_version_function(oid) TO indb_deployer, indb_versions, indb_auditor;

-- Problems with the execute grants of indb_versions' functions: only indb's scorer roles
-- (indb_scorer, indb_scorer_base, per-model indb_model_*) may hold them; never PUBLIC.
CREATE OR REPLACE FUNCTION indb.check_version_grants()
RETURNS SETOF text
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
    SELECT pg_catalog.format('%s is executable by %s: version functions go to indb''s scorer roles only (indb grant)',
                             p.oid::regprocedure,
                             CASE WHEN a.grantee OPERATOR(pg_catalog.=) 0 THEN 'PUBLIC' ELSE pg_catalog.quote_ident(r.rolname) END)
      FROM pg_catalog.pg_proc AS p
     CROSS JOIN LATERAL pg_catalog.aclexplode(COALESCE(p.proacl, pg_catalog.acldefault('f', p.proowner))) AS a
      LEFT JOIN pg_catalog.pg_roles AS r ON r.oid OPERATOR(pg_catalog.=) a.grantee
     WHERE p.proowner OPERATOR(pg_catalog.=) 'indb_versions'::regrole
       AND a.grantee OPERATOR(pg_catalog.<>) p.proowner
       AND NOT COALESCE(r.rolname OPERATOR(pg_catalog.=) ANY (ARRAY['indb_scorer', 'indb_scorer_base', 'indb_compute'])
                        OR r.rolname OPERATOR(pg_catalog.~~) 'indb\_model\_%', false);
$fn$;
ALTER FUNCTION indb.check_version_grants() OWNER TO indb_owner;
REVOKE ALL ON FUNCTION indb.check_version_grants() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION indb.check_version_grants() TO indb_deployer, indb_versions, indb_auditor;

-- ddl_command_end: indb_versions may create, alter and comment on version functions and
-- bound overloads that pass the check, and grant them to scorer roles; nothing else.
-- Other roles without superuser rights may not create anything in schema indb.
CREATE OR REPLACE FUNCTION indb.ddl_guard()
RETURNS event_trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    cmd record;
    why text;
    privileged boolean;
BEGIN
    privileged := current_user OPERATOR(pg_catalog.=) ANY (ARRAY['indb_owner', 'indb_log_writer', 'indb_compute'])
                  OR (SELECT r.rolsuper FROM pg_catalog.pg_roles AS r WHERE r.rolname OPERATOR(pg_catalog.=) current_user);
    IF privileged THEN
        RETURN;
    END IF;
    FOR cmd IN SELECT * FROM pg_catalog.pg_event_trigger_ddl_commands() LOOP
        IF current_user OPERATOR(pg_catalog.<>) 'indb_versions' THEN
            IF cmd.schema_name OPERATOR(pg_catalog.=) 'indb' THEN
                RAISE EXCEPTION 'indb: % % is not allowed in schema indb for role %', cmd.command_tag, cmd.object_identity, current_user
                    USING ERRCODE = 'insufficient_privilege';
            END IF;
            CONTINUE;
        END IF;
        IF cmd.command_tag OPERATOR(pg_catalog.=) ANY (ARRAY['GRANT', 'REVOKE']) THEN
            CONTINUE;  -- checked below, on the resulting privileges
        END IF;
        IF cmd.object_type OPERATOR(pg_catalog.=) 'function'
           AND cmd.command_tag OPERATOR(pg_catalog.=) ANY (ARRAY['CREATE FUNCTION', 'ALTER FUNCTION', 'COMMENT']) THEN
            why := indb.check_version_function(cmd.objid);
            IF why IS NOT NULL THEN
                RAISE EXCEPTION 'indb: refused %: %', cmd.object_identity, why USING ERRCODE = 'insufficient_privilege',
                    HINT = 'deployers install version functions through indb deploy, which generates them from the model';
            END IF;
            CONTINUE;
        END IF;
        RAISE EXCEPTION 'indb: % % is not allowed for indb_versions: deployers create version functions and bound overloads only',
            cmd.command_tag, COALESCE(cmd.object_identity, '') USING ERRCODE = 'insufficient_privilege';
    END LOOP;
    IF current_user OPERATOR(pg_catalog.=) 'indb_versions' THEN
        FOR why IN SELECT indb.check_version_grants() LOOP
            RAISE EXCEPTION 'indb: refused grant: %', why USING ERRCODE = 'insufficient_privilege';
        END LOOP;
    END IF;
END
$fn$;
ALTER FUNCTION indb.ddl_guard() OWNER TO indb_owner;
REVOKE ALL ON FUNCTION indb.ddl_guard() FROM PUBLIC;

-- sql_drop: a dropped table (or type) takes its bindings along, so no binding dangles.
CREATE OR REPLACE FUNCTION indb.ddl_dropped()
RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    DELETE FROM indb.bindings AS b
     USING pg_catalog.pg_event_trigger_dropped_objects() AS d
     WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_type'::regclass
       AND b.rowtype::oid OPERATOR(pg_catalog.=) d.objid;
END
$fn$;
ALTER FUNCTION indb.ddl_dropped() OWNER TO indb_owner;
REVOKE ALL ON FUNCTION indb.ddl_dropped() FROM PUBLIC;
