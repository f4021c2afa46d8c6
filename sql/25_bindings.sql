-- indb:requires superuser
-- Bound overloads, rebuilt from the registry inside the database: indb.refresh_bindings(model)
-- re-creates indb.predict(text, <row type>) (and predict_proba, predict_label,
-- decision_function, transform) for every row type bound to a model, with one CASE branch
-- per reference ('name', 'name@alias', 'name@3') of every model bound to that type.
-- Every deploy, promote, rollback, retire, bind and unbind calls it in its own
-- transaction, and `indb deploy --sql` scripts call it too: what the overloads hold comes
-- from the database the script runs in (its OIDs, its other bound models), never from
-- the database the script was generated on.
--
-- SECURITY INVOKER on purpose: the caller (a deployer) reads the registry with its own
-- privileges, and the DDL runs as indb_versions (the owner of what deployers create, which
-- owns nothing shared), so the server's DDL guard checks every overload as before. A
-- SECURITY DEFINER function could not switch to indb_versions.
--
-- A repeatable definition: indb migrate re-creates it whenever this file changes.

SET LOCAL search_path = pg_catalog, pg_temp;

CREATE OR REPLACE FUNCTION indb.refresh_rowtype(rowtype_oid oid)
 RETURNS void
 LANGUAGE plpgsql
 VOLATILE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    nsp name;
    typ name;
    relid oid;
    shown text;
    e record;
    br record;
    f record;
    col record;
    args text[];
    whens text[];
    body text;
    ddl text[] := '{}';
    stmt text;
    caller_role text := pg_catalog.current_setting('role');
BEGIN
    SELECT n.nspname, t.typname, t.typrelid INTO nsp, typ, relid
      FROM pg_catalog.pg_type AS t JOIN pg_catalog.pg_namespace AS n ON n.oid OPERATOR(pg_catalog.=) t.typnamespace
     WHERE t.oid OPERATOR(pg_catalog.=) rowtype_oid;
    IF NOT FOUND THEN
        RETURN;  -- the table is gone; indb validate reports the binding
    END IF;
    shown := pg_catalog.format('%I.%I', nsp, typ);
    FOR e IN SELECT * FROM (VALUES ('predict', 'predict', 'double precision'),
                                   ('predict_proba', 'proba', 'double precision[]'),
                                   ('predict_label', 'label', 'text'),
                                   ('decision_function', 'decision', 'double precision[]'),
                                   ('transform', 'transform', 'double precision[]')) AS x(entry, output, result_type) LOOP
        IF NOT EXISTS (SELECT FROM indb.bindings AS b WHERE b.rowtype::oid OPERATOR(pg_catalog.=) rowtype_oid) THEN
            ddl := ddl OPERATOR(pg_catalog.||) pg_catalog.format('DROP FUNCTION IF EXISTS indb.%I(text, %s)', e.entry, shown);
            CONTINUE;
        END IF;
        whens := '{}';
        -- per bound model: its aliases (and bare 'name' for champion), then its versions, newest first
        FOR br IN
            SELECT r.ref, vf.model, vf.version, p.proname, v.features
              FROM indb.bindings AS b
              JOIN indb.version_functions AS vf ON vf.model OPERATOR(pg_catalog.=) b.model AND vf.output OPERATOR(pg_catalog.=) e.output
              JOIN indb.versions AS v ON v.model OPERATOR(pg_catalog.=) vf.model AND v.version OPERATOR(pg_catalog.=) vf.version
              JOIN pg_catalog.pg_proc AS p ON p.oid OPERATOR(pg_catalog.=) vf.fn::oid
             CROSS JOIN LATERAL (
                   SELECT 0 AS grp, a.alias AS sort_key, 0 AS sub, vf.model OPERATOR(pg_catalog.||) '@' OPERATOR(pg_catalog.||) a.alias AS ref
                     FROM indb.aliases AS a WHERE a.model OPERATOR(pg_catalog.=) vf.model AND a.version OPERATOR(pg_catalog.=) vf.version
                   UNION ALL
                   SELECT 0, a.alias, 1, vf.model
                     FROM indb.aliases AS a WHERE a.model OPERATOR(pg_catalog.=) vf.model AND a.version OPERATOR(pg_catalog.=) vf.version
                      AND a.alias OPERATOR(pg_catalog.=) 'champion'
                   UNION ALL
                   SELECT 1, '', 0, vf.model OPERATOR(pg_catalog.||) '@' OPERATOR(pg_catalog.||) vf.version::text) AS r
             WHERE b.rowtype::oid OPERATOR(pg_catalog.=) rowtype_oid AND v.retired_at IS NULL
             ORDER BY vf.model, r.grp, r.sort_key, vf.version DESC, r.sub
        LOOP
            args := '{}';
            FOR f IN SELECT x.item OPERATOR(pg_catalog.->>) 0 AS name, x.item OPERATOR(pg_catalog.->>) 1 AS kind
                       FROM pg_catalog.jsonb_array_elements(br.features) WITH ORDINALITY AS x(item, n) ORDER BY x.n LOOP
                SELECT pg_catalog.format_type(a.atttypid, a.atttypmod) AS coltype, t.typcategory INTO col
                  FROM pg_catalog.pg_attribute AS a JOIN pg_catalog.pg_type AS t ON t.oid OPERATOR(pg_catalog.=) a.atttypid
                 WHERE a.attrelid OPERATOR(pg_catalog.=) relid AND a.attname OPERATOR(pg_catalog.=) f.name
                   AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped;
                IF NOT FOUND THEN
                    RAISE EXCEPTION 'indb: cannot bind %: it has no column %, which %@% needs', shown, pg_catalog.quote_ident(f.name), br.model, br.version
                        USING ERRCODE = 'undefined_column', HINT = 'add the column, or unbind the table (indb unbind)';
                END IF;
                IF f.kind OPERATOR(pg_catalog.<>) 'text' AND col.typcategory OPERATOR(pg_catalog.=) 'S' THEN
                    RAISE EXCEPTION 'indb: cannot bind %: column % is %, and %@% needs a number there', shown,
                        pg_catalog.quote_ident(f.name), col.coltype, br.model, br.version USING ERRCODE = 'datatype_mismatch';
                END IF;
                IF col.coltype OPERATOR(pg_catalog.=) (CASE WHEN f.kind OPERATOR(pg_catalog.=) 'text' THEN 'text' ELSE 'double precision' END) THEN
                    args := args OPERATOR(pg_catalog.||) pg_catalog.format('($2).%I', f.name);
                ELSE
                    args := args OPERATOR(pg_catalog.||) pg_catalog.format('CAST(($2).%I AS %s)', f.name,
                        CASE WHEN f.kind OPERATOR(pg_catalog.=) 'text' THEN 'TEXT' ELSE 'DOUBLE PRECISION' END);
                END IF;
            END LOOP;
            whens := whens OPERATOR(pg_catalog.||) pg_catalog.format('WHEN $1 OPERATOR(pg_catalog.=) %L THEN indb.%I(%s)',
                br.ref, br.proname, pg_catalog.array_to_string(args, ', '));
        END LOOP;
        body := pg_catalog.format('indb.call_version($1, %L, pg_catalog.to_jsonb($2), CAST(NULL AS %s))', e.output, e.result_type);
        IF pg_catalog.cardinality(whens) OPERATOR(pg_catalog.>) 0 THEN
            body := 'CASE ' OPERATOR(pg_catalog.||) pg_catalog.array_to_string(whens, ' ') OPERATOR(pg_catalog.||) ' ELSE '
                    OPERATOR(pg_catalog.||) body OPERATOR(pg_catalog.||) ' END';
        END IF;
        ddl := ddl
            OPERATOR(pg_catalog.||) pg_catalog.format('CREATE OR REPLACE FUNCTION indb.%I(model text, row_value %s) RETURNS %s'
                                                     ' LANGUAGE sql STABLE PARALLEL SAFE RETURN %s', e.entry, shown, e.result_type, body)
            OPERATOR(pg_catalog.||) pg_catalog.format('REVOKE ALL ON FUNCTION indb.%I(text, %s) FROM PUBLIC', e.entry, shown)
            OPERATOR(pg_catalog.||) pg_catalog.format('GRANT EXECUTE ON FUNCTION indb.%I(text, %s) TO indb_scorer, indb_scorer_base',
                                                     e.entry, shown);
    END LOOP;
    -- what deployers create is owned by indb_versions (the DDL guard checks each overload)
    PERFORM pg_catalog.set_config('role', 'indb_versions', true);
    FOREACH stmt IN ARRAY ddl LOOP
        EXECUTE stmt;
    END LOOP;
    PERFORM pg_catalog.set_config('role', caller_role, true);
END
$function$;
ALTER FUNCTION indb.refresh_rowtype(rowtype_oid oid) OWNER TO indb_owner;
REVOKE ALL ON FUNCTION indb.refresh_rowtype(rowtype_oid oid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION indb.refresh_rowtype(rowtype_oid oid) TO indb_deployer;

CREATE OR REPLACE FUNCTION indb.refresh_bindings(model text)
 RETURNS integer
 LANGUAGE plpgsql
 VOLATILE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    t oid;
    n integer := 0;
BEGIN
    FOR t IN SELECT DISTINCT b.rowtype::oid FROM indb.bindings AS b
              WHERE b.model OPERATOR(pg_catalog.=) refresh_bindings.model
                AND EXISTS (SELECT FROM pg_catalog.pg_type AS ty WHERE ty.oid OPERATOR(pg_catalog.=) b.rowtype::oid)
              ORDER BY 1 LOOP
        PERFORM indb.refresh_rowtype(t);
        n := n OPERATOR(pg_catalog.+) 1;
    END LOOP;
    RETURN n;
END
$function$;
ALTER FUNCTION indb.refresh_bindings(model text) OWNER TO indb_owner;
REVOKE ALL ON FUNCTION indb.refresh_bindings(model text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION indb.refresh_bindings(model text) TO indb_deployer;
