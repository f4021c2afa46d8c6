-- indb:requires superuser
-- The DDL guard: what a deployer (acting as indb_versions) may create in schema indb, and
-- the check that every version function and bound overload passes at deploy (the event
-- trigger of core 0013) and again in `indb validate`. Owned by indb_owner, which no
-- deployer can become; the event triggers belong to the superuser who migrated.
--
-- A repeatable definition: indb migrate re-creates it whenever this file changes.

SET LOCAL search_path = pg_catalog, pg_temp;

-- NULL when ``fn`` is a function a deployer may have made; otherwise why not (one line).
-- A SQL body must be SQL-standard and one expression (RETURN expr): PostgreSQL stores it
-- parsed (prosqlbody), inlines exactly that tree and never re-parses it, so neither a
-- string body's extra statements nor a caller's search_path can change it. The check
-- reads that tree: no subquery, no table, and every function it calls (directly, or
-- through an operator) is an immutable pg_catalog function (or one of the few stable
-- ones the generic path needs) or one of indb's own; every type is a pg_catalog type or
-- a table's row type (a domain's CHECK would run code). (pg_depend cannot say this:
-- PostgreSQL records no dependency on built-in objects.)
-- A PL/pgSQL body (one variable per shared value) cannot be read that way: it must run
-- as indb_versions (SECURITY DEFINER), which may do nothing a deployer cannot already.
CREATE OR REPLACE FUNCTION indb.check_version_function(fn oid)
RETURNS text
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    p record;
    target record;
    tree text;
    bad oid;
    stable_ok CONSTANT text[] := ARRAY['to_jsonb'];
BEGIN
    SELECT pr.proname, pr.pronamespace, pr.proowner, pr.prosecdef, pr.proconfig, pr.prokind, l.lanname,
           pr.prosqlbody::text AS tree, pr.prosrc, pr.proargtypes::text AS args, pr.prorettype, pr.provolatile, pr.proparallel
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
            -- a version function's generic-path adapter runs with its caller's rights: its
            -- body must be exactly the one the server generates from the registry
            SELECT f.oid, f.prorettype INTO target
              FROM pg_catalog.pg_proc AS f
             WHERE f.proname OPERATOR(pg_catalog.=) p.proname AND f.pronamespace OPERATOR(pg_catalog.=) p.pronamespace
               AND f.oid OPERATOR(pg_catalog.<>) fn AND indb.generic_call_sql(f.oid::regprocedure) IS NOT NULL;
            IF target.oid IS NULL OR p.args OPERATOR(pg_catalog.<>) '3802'
               OR p.proname OPERATOR(pg_catalog.!~) '@[0-9]+/(predict|label|proba|decision|transform)$' THEN
                RETURN 'a PL/pgSQL body must run as indb_versions (SECURITY DEFINER), unless it is a version''s generic-path adapter';
            END IF;
            IF p.prosrc IS DISTINCT FROM indb.generic_adapter_source(target.oid::regprocedure)
               OR p.prorettype OPERATOR(pg_catalog.<>) target.prorettype
               OR p.provolatile OPERATOR(pg_catalog.<>) 's' OR p.proparallel OPERATOR(pg_catalog.<>) 's'
               OR p.proconfig IS DISTINCT FROM ARRAY['search_path=pg_catalog, indb, pg_temp'] THEN
                RETURN 'a generic-path adapter must be exactly what indb.install_generic_adapter creates (its body generated from the registry)';
            END IF;
            RETURN NULL;
        END IF;
        IF p.proconfig IS DISTINCT FROM ARRAY['search_path=pg_catalog, indb, pg_temp'] THEN
            RETURN 'a PL/pgSQL body must pin search_path = pg_catalog, indb, pg_temp and set nothing else';
        END IF;
        RETURN NULL;
    END IF;
    IF p.lanname OPERATOR(pg_catalog.<>) 'sql' THEN
        RETURN pg_catalog.format('language %s is not allowed (sql or plpgsql only)', p.lanname);
    END IF;
    tree := p.tree;
    IF tree IS NULL THEN
        RETURN 'a SQL body must be SQL-standard (RETURN expression), not a string';
    END IF;
    IF p.prosecdef OR p.proconfig IS NOT NULL THEN
        RETURN 'a SQL body carries no SECURITY DEFINER and no SET clause';
    END IF;
    IF tree OPERATOR(pg_catalog.!~) '^\{QUERY :commandType 1 ' OR tree OPERATOR(pg_catalog.!~) ' :isReturn true '
       OR tree OPERATOR(pg_catalog.!~) ' :cteList <> :rtable <> '
       OR (SELECT pg_catalog.count(*) FROM pg_catalog.regexp_matches(tree, '\{QUERY ', 'g')) OPERATOR(pg_catalog.<>) 1
       OR tree OPERATOR(pg_catalog.~) '\{(SUBLINK|RANGETBLENTRY|RTE|SUBPLAN) ' THEN
        RETURN 'a SQL body is one expression (RETURN expr) reading no table and no subquery';
    END IF;
    SELECT f.oid INTO bad
      FROM (SELECT DISTINCT m[1]::oid AS oid
              FROM pg_catalog.regexp_matches(tree, ':(?:funcid|opfuncid|aggfnoid|winfnoid) ([0-9]+)', 'g') AS m
            UNION
            SELECT o.oprcode::oid
              FROM pg_catalog.regexp_matches(tree, ':opno ([0-9]+)', 'g') AS m
              JOIN pg_catalog.pg_operator AS o ON o.oid OPERATOR(pg_catalog.=) m[1]::oid) AS f
     WHERE f.oid OPERATOR(pg_catalog.<>) 0
       AND NOT EXISTS (
           SELECT FROM pg_catalog.pg_proc AS r
            WHERE r.oid OPERATOR(pg_catalog.=) f.oid
              AND ((r.pronamespace OPERATOR(pg_catalog.=) 'pg_catalog'::regnamespace
                    AND (r.provolatile OPERATOR(pg_catalog.=) 'i' OR r.proname OPERATOR(pg_catalog.=) ANY (stable_ok)))
                   OR (r.pronamespace OPERATOR(pg_catalog.=) 'indb'::regnamespace
                       AND r.proowner OPERATOR(pg_catalog.=) ANY (ARRAY['indb_owner'::regrole::oid, 'indb_versions'::regrole::oid]))))
     LIMIT 1;
    IF bad IS NOT NULL THEN
        RETURN pg_catalog.format('it calls %s, which is neither an immutable pg_catalog function nor indb''s own',
                                 COALESCE(pg_catalog.to_regprocedure(bad::regprocedure::text)::text, bad::text));
    END IF;
    SELECT t.oid INTO bad
      FROM (SELECT DISTINCT m[1]::oid AS oid
              FROM pg_catalog.regexp_matches(tree, ':[a-z_]*(?:type|typeid|typid) ([0-9]+)', 'g') AS m) AS t
     WHERE t.oid OPERATOR(pg_catalog.<>) 0
       AND NOT EXISTS (
           SELECT FROM pg_catalog.pg_type AS ty
            WHERE ty.oid OPERATOR(pg_catalog.=) t.oid
              AND (ty.typnamespace OPERATOR(pg_catalog.=) 'pg_catalog'::regnamespace
                   OR (ty.typtype OPERATOR(pg_catalog.=) 'c' AND EXISTS (
                       SELECT FROM pg_catalog.pg_class AS c WHERE c.oid OPERATOR(pg_catalog.=) ty.typrelid
                          AND c.relkind OPERATOR(pg_catalog.=) ANY (ARRAY['r', 'p', 'v', 'm', 'f'])))))
     LIMIT 1;
    IF bad IS NOT NULL THEN
        RETURN pg_catalog.format('it uses type %s (only pg_catalog types and table row types)', bad::regtype);
    END IF;
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
    -- The roles owning shared objects have no members (core 0013). Roles are cluster-wide, so a
    -- database of this cluster at an older catalog (or a DBA by hand) may have made one: such a
    -- member reaches the shared role by SET ROLE, and changes nothing here. Functions owned by
    -- those roles (SECURITY DEFINER) still run: their callers are not members.
    IF privileged AND current_user OPERATOR(pg_catalog.<>) session_user
       AND current_user OPERATOR(pg_catalog.=) ANY (ARRAY['indb_owner', 'indb_log_writer', 'indb_compute'])
       AND NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles AS r WHERE r.rolname OPERATOR(pg_catalog.=) session_user)
       AND pg_catalog.pg_has_role(session_user, current_user, 'MEMBER') THEN
        RAISE EXCEPTION 'indb: role % is a member of %, which owns indb''s shared objects and has no members since core 0013: it may not change schema indb', session_user, current_user
            USING ERRCODE = 'insufficient_privilege',
                  HINT = pg_catalog.format('a database of this cluster at a catalog older than core 0013 granted it: run indb migrate there, or REVOKE %I FROM %I', current_user, session_user);
    END IF;
    IF privileged THEN
        RETURN;
    END IF;
    FOR cmd IN SELECT * FROM pg_catalog.pg_event_trigger_ddl_commands() LOOP
        -- functions indb's roles create are executable by nobody until granted (a default ACL
        -- equal to PostgreSQL's built-in one, which lets PUBLIC execute, has no row at all)
        IF cmd.command_tag OPERATOR(pg_catalog.=) 'ALTER DEFAULT PRIVILEGES' AND EXISTS (
               SELECT FROM pg_catalog.unnest(ARRAY['indb_versions'::regrole::oid, 'indb_owner'::regrole::oid]) AS r(role)
                WHERE NOT EXISTS (
                          SELECT FROM pg_catalog.pg_default_acl AS d
                           WHERE d.defaclrole OPERATOR(pg_catalog.=) r.role AND d.defaclobjtype OPERATOR(pg_catalog.=) 'f'
                             AND d.defaclnamespace OPERATOR(pg_catalog.=) 0::oid)
                   OR EXISTS (
                          SELECT FROM pg_catalog.pg_default_acl AS d CROSS JOIN LATERAL pg_catalog.aclexplode(d.defaclacl) AS a
                           WHERE d.defaclrole OPERATOR(pg_catalog.=) r.role AND a.grantee OPERATOR(pg_catalog.<>) d.defaclrole)) THEN
            RAISE EXCEPTION 'indb: default privileges of indb''s roles grant nothing: indb grant decides who may execute'
                USING ERRCODE = 'insufficient_privilege';
        END IF;
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
    IF current_user OPERATOR(pg_catalog.=) 'indb_versions' THEN  -- after any command: a new function's default ACL too
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
