-- Batch scoring runs without JIT compilation.
--
-- indb.score runs one CREATE TABLE AS over an expression with hundreds of operators
-- (a tree ensemble is one comparison per node). Its planner cost is far above
-- jit_above_cost, so with default settings PostgreSQL compiles the expression with
-- LLVM in the leader and in every parallel worker: measured here at 1.3-17 seconds of
-- CPU for ensembles that then score a million rows in about three (bench/README.md).
-- The function pins jit off for its own statements only; a caller's session keeps
-- its settings.

SET LOCAL search_path = pg_catalog, pg_temp;

ALTER FUNCTION indb.score(text, regclass, text, text[], text, double precision) SET jit = off;
