-- indb:requires core 1
-- Test-only (never shipped): a migration that is still running when the test kills
-- its client with SIGKILL.
CREATE TABLE indb.slow_migration_marker (id integer);
SELECT pg_catalog.pg_sleep(120);
