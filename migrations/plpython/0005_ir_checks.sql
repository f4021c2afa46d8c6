-- indb:requires core 13
-- indb:requires superuser
-- A version's IR is checked in the server before it is stored: a version the PL/Python
-- engine evaluates is refused unless its IR passes the engine's own validator
-- (indb.ir.validate: node kinds, operators, numbers, indices, trees without cycles,
-- bounded sizes), whoever writes it and however (indb deploy, a raw INSERT).
--
-- The trigger function belongs to indb_owner, which nobody can act as (core 0013). It
-- runs as whoever inserts (a deployer or a superuser), who may execute indb.engine_boot;
-- it only reads the new row. Should the table's owner drop or disable the trigger, an
-- event trigger (only a superuser creates, alters or drops those) refuses any DDL that
-- leaves it missing or disabled. The engine validates every IR
-- again when it loads one, so an IR written around both is still never evaluated.

SET LOCAL search_path = pg_catalog, pg_temp;

CREATE FUNCTION indb.versions_check_ir()
RETURNS trigger
LANGUAGE plpython3u
SET search_path = pg_catalog, indb, pg_temp
AS $check$
import sys


class Refused(Exception):
    pass


# PostgreSQL then reports "indb: <message>" (no exception type before it)
Refused.__module__ = "builtins"
Refused.__name__ = Refused.__qualname__ = "indb"

plpy.execute("SELECT indb.engine_boot()")
validate = sys.modules.get("indb.ir.validate")
if validate is None:
    raise Refused("the PL/Python engine installed here cannot check IRs: a superuser runs `indb migrate --component plpython`")
new = TD["new"]
try:
    validate.model_json(new["ir"])
except validate.InvalidIR as e:
    raise Refused(f"model {validate.show(new['model'])} version {new['version']} refused:"
                  f" its IR is not a valid model: {e}") from None
return None
$check$;
REVOKE ALL ON FUNCTION indb.versions_check_ir() FROM PUBLIC;
ALTER FUNCTION indb.versions_check_ir() OWNER TO indb_owner;

CREATE TRIGGER versions_check_ir
    BEFORE INSERT OR UPDATE OF ir, engine ON indb.versions
    FOR EACH ROW
    WHEN (NEW.engine = 'plpython')
    EXECUTE FUNCTION indb.versions_check_ir();

CREATE FUNCTION indb.versions_check_ir_kept()
RETURNS event_trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $kept$
BEGIN
    IF pg_catalog.to_regclass('indb.versions') IS NOT NULL AND NOT EXISTS (
        SELECT FROM pg_catalog.pg_trigger AS t
        WHERE t.tgrelid = 'indb.versions'::pg_catalog.regclass AND t.tgname = 'versions_check_ir'
          AND t.tgenabled OPERATOR(pg_catalog.=) ANY (ARRAY['O', 'A']::"char"[]))
    THEN
        RAISE EXCEPTION 'indb: the check of stored IRs (trigger versions_check_ir on indb.versions) cannot be dropped, renamed or disabled'
            USING HINT = 'a superuser who means it drops the event trigger indb_versions_check_ir_kept first';
    END IF;
END
$kept$;
REVOKE ALL ON FUNCTION indb.versions_check_ir_kept() FROM PUBLIC;
ALTER FUNCTION indb.versions_check_ir_kept() OWNER TO indb_owner;

CREATE EVENT TRIGGER indb_versions_check_ir_kept ON ddl_command_end
    WHEN TAG IN ('ALTER TABLE', 'DROP TRIGGER', 'ALTER TRIGGER')
    EXECUTE FUNCTION indb.versions_check_ir_kept();
