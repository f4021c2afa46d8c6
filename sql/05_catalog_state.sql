-- indb:requires superuser
-- What this database's catalog is at, for the version check every indb command makes
-- before it does anything (indb.catalog.migrator.require_current): the applied migrations
-- of each component and the checksum of each repeatable definition. SECURITY DEFINER so
-- that scorers, who may not read the history tables, get the same check (and the same
-- one-line "run `indb migrate`") as deployers and auditors.
--
-- A repeatable definition: indb migrate re-creates it whenever this file changes.

SET LOCAL search_path = pg_catalog, pg_temp;

CREATE OR REPLACE FUNCTION indb.catalog_state()
 RETURNS TABLE (kind text, component text, name text, version integer, sha256 text)
 LANGUAGE sql
 STABLE
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'indb', 'pg_temp'
AS $function$
    SELECT 'migration', m.component, m.name, m.version, m.sha256
      FROM indb.schema_migrations AS m WHERE m.success
    UNION ALL
    SELECT 'definition', d.component, d.name, NULL::integer, d.sha256
      FROM (SELECT DISTINCT ON (x.component, x.name) x.component, x.name, x.sha256
              FROM indb.schema_definitions AS x ORDER BY x.component, x.name, x.id DESC) AS d;
$function$;
ALTER FUNCTION indb.catalog_state() OWNER TO indb_owner;
REVOKE ALL ON FUNCTION indb.catalog_state() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION indb.catalog_state() TO indb_deployer, indb_auditor, indb_scorer, indb_scorer_base;
