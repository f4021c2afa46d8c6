-- indb:requires superuser
-- indb.predict_batch: the set-based entry point for analysts (a relation in, key + outputs out; writes nothing).
--
-- A repeatable definition: indb migrate re-creates it whenever this file changes.

SET LOCAL search_path = pg_catalog, pg_temp;

CREATE OR REPLACE FUNCTION indb.predict_batch(model text, source regclass, key text DEFAULT NULL, proba boolean DEFAULT false)
 RETURNS TABLE(row_key text, prediction double precision, label text, probabilities double precision[])
 LANGUAGE plpgsql
 STABLE PARALLEL UNSAFE
 ROWS 10000
 SET search_path TO 'pg_catalog', 'indb', 'pg_temp'
 SET jit TO 'off'
AS $function$
-- Scores every row of a table, materialised view, partitioned table or view, and returns
-- one row per source row: the key column's value as text (NULL without key), the numeric
-- prediction (NULL when the class labels are text), the text label (only when the class
-- labels are text) and, with proba => true, the class probabilities in class order.
-- It writes nothing (a read-only transaction, a hot standby) and logs nothing, as
-- indb.predict; indb.score is the logged batch. SECURITY INVOKER: the caller reads the
-- source with their own rights, and a PL/Python version checks their right to score it.
-- A PL/Python version (or a SQL version with a large body) over a table (plain,
-- partitioned or materialised) runs the engine's pipelined batch path a range of blocks
-- at a time (chunk k is scored on a background thread while chunk k + 1 is read); other
-- SQL versions, and any version over a view, are one query over the source.
-- PARALLEL UNSAFE: the engine asks the server for a cancel with a query, which a
-- backend cannot run while a parallel query is active (in a worker, or in the leader
-- of one); the query that calls predict_batch is planned serial, and a SQL version's
-- one query inside it may still use parallel workers. jit is off: an inlined tree ensemble would be handed to LLVM (FIELD-NOTES.md).
DECLARE
    ref       record;
    what      text;
    eng       text;
    kind      "char";
    has_pred  boolean;
    has_label boolean;
    args      text[];
    numargs   text[];
    textargs  text[];
    nullargs  text[];
    key_sql   text := 'NULL::text';
    chunk_sql text;
    nblocks   bigint;
    cstep     bigint := 256;  -- blocks per chunk (SET indb.batch_chunk_blocks = N to change)
    lo        bigint := 0;
    token     bigint := (pg_catalog.random() * 4.0e18)::bigint;
    keys      text[];
    nulls     boolean[];
    nums      bytea;
    texts     text[];
    n         integer;
    prev_keys  text[];
    prev_nulls boolean[];
    prev_n     integer := 0;
    pred      double precision[];
    lab       text[];
    pr        double precision[];
BEGIN
    IF source IS NULL THEN
        RAISE EXCEPTION 'indb: predict_batch needs a source relation' USING ERRCODE = 'invalid_parameter_value',
            HINT = 'SELECT * FROM indb.predict_batch(''model'', ''schema.table'', key => ''id'')';
    END IF;
    SELECT r.model, r.version INTO ref FROM indb.resolve(predict_batch.model) AS r;
    what := pg_catalog.quote_literal(ref.model || '@' || ref.version);
    SELECT v.engine INTO eng FROM indb.versions AS v WHERE v.model = ref.model AND v.version = ref.version;
    SELECT k.relkind INTO kind FROM pg_catalog.pg_class AS k WHERE k.oid = source;
    has_pred := EXISTS (SELECT FROM indb.version_functions AS vf
                        WHERE vf.model = ref.model AND vf.version = ref.version AND vf.output = 'predict');
    has_label := NOT has_pred AND EXISTS (SELECT FROM indb.version_functions AS vf
                                          WHERE vf.model = ref.model AND vf.version = ref.version AND vf.output = 'label');
    IF NOT has_pred AND NOT has_label THEN
        RAISE EXCEPTION 'indb: model % has no prediction (it only transforms)', what USING ERRCODE = 'feature_not_supported',
            HINT = 'use indb.transform(model, row)';
    END IF;
    IF proba AND NOT EXISTS (SELECT FROM indb.version_functions AS vf
                             WHERE vf.model = ref.model AND vf.version = ref.version AND vf.output = 'proba') THEN
        RAISE EXCEPTION 'indb: model % has no probabilities (it is not a classifier)', what USING ERRCODE = 'feature_not_supported',
            HINT = 'call indb.predict_batch without proba => true';
    END IF;
    SELECT * INTO STRICT args, numargs, textargs, nullargs FROM indb.feature_inputs(source, ref.model, ref.version, what);
    IF predict_batch.key IS NOT NULL THEN
        key_sql := indb.input_sql(source, 'v', predict_batch.key, 'key', 'model ' || what);
    END IF;

    -- The engine's batch path for a PL/Python version, and for a SQL version whose body
    -- is large (a tree ensemble: numpy and the tree kernel beat PostgreSQL's expression
    -- interpreter there, as indb.score decides); SET indb.batch_engine = on | off forces it.
    IF kind <> ALL (ARRAY['r', 'p', 'm']::"char"[])
       OR pg_catalog.to_regprocedure('indb.engine_chunk_next(text, integer, text, bytea, integer, text[], bigint)') IS NULL
       OR COALESCE(pg_catalog.current_setting('indb.batch_engine', true), '') = 'off'
       OR (eng <> 'plpython' AND COALESCE(pg_catalog.current_setting('indb.batch_engine', true), '') <> 'on'
           AND (SELECT pg_catalog.max(pg_catalog.length(CASE WHEN p.prosqlbody IS NULL THEN p.prosrc ELSE pg_catalog.pg_get_function_sqlbody(p.oid) END)) <= 20000
                  FROM indb.version_functions AS vf JOIN pg_catalog.pg_proc AS p ON p.oid = vf.fn::oid
                 WHERE vf.model = ref.model AND vf.version = ref.version)) THEN
        -- one query: the version's own functions over the source
        RETURN QUERY EXECUTE pg_catalog.format('SELECT %s, %s, %s, %s FROM %s AS v', key_sql,
            CASE WHEN has_pred THEN indb.output_sql(ref.model, ref.version, 'predict', args) ELSE 'NULL::double precision' END,
            CASE WHEN has_label THEN indb.output_sql(ref.model, ref.version, 'label', args) ELSE 'NULL::text' END,
            CASE WHEN proba THEN indb.output_sql(ref.model, ref.version, 'proba', args) ELSE 'NULL::double precision[]' END,
            source);
        RETURN;
    END IF;

    -- A SQL version's missing value is NULL, and NaN too: its answer for a NaN input is
    -- NULL (the engine, as numpy, gives NaN)
    IF eng <> 'plpython' THEN
        nullargs := nullargs || ARRAY(SELECT '(' || a || ') = ''NaN''::double precision' FROM pg_catalog.unnest(numargs) AS a);
    END IF;
    -- The pipelined batch path. A chunk is the rows of a range of blocks (of every
    -- partition at once): their keys, whether a feature is NULL, the numeric features
    -- packed as big-endian float8 (NULL as NaN) and the text features row-major.
    chunk_sql := pg_catalog.format(
        'SELECT pg_catalog.array_agg(%s), pg_catalog.array_agg(%s), %s, %s, pg_catalog.count(*)::integer '
        'FROM %s AS v WHERE v.ctid >= $1 AND v.ctid < $2',
        key_sql,
        CASE WHEN pg_catalog.cardinality(nullargs) > 0 THEN pg_catalog.array_to_string(nullargs, ' OR ') ELSE 'false' END,
        indb.packed_sql(numargs),
        CASE WHEN pg_catalog.cardinality(textargs) > 0
             THEN '(SELECT pg_catalog.array_agg(e) FROM pg_catalog.unnest(pg_catalog.array_agg(ARRAY['
                  || pg_catalog.array_to_string(textargs, ', ') || ']::text[])) AS e)'
             ELSE 'NULL::text[]' END,
        source);
    SELECT COALESCE(pg_catalog.max(pg_catalog.pg_relation_size(t.relid)), pg_catalog.pg_relation_size(source))
           / pg_catalog.current_setting('block_size')::bigint
      INTO nblocks
      FROM pg_catalog.pg_partition_tree(source) AS t WHERE t.isleaf;
    IF COALESCE(pg_catalog.current_setting('indb.batch_chunk_blocks', true), '') ~ '^[0-9]{1,9}$' THEN
        cstep := GREATEST(1, pg_catalog.current_setting('indb.batch_chunk_blocks', true)::bigint);
    END IF;
    LOOP
        IF lo <= nblocks THEN
            EXECUTE chunk_sql INTO keys, nulls, nums, texts, n
              USING pg_catalog.format('(%s,0)', lo)::tid, pg_catalog.format('(%s,0)', lo + cstep)::tid;
        ELSE
            n := 0;  -- past the end: an empty chunk asks the engine for the last answers
        END IF;
        IF n > 0 OR prev_n > 0 THEN
            -- each call starts this chunk and returns the answers of the one before
            IF has_pred THEN
                pred := indb.engine_chunk_next(ref.model, ref.version, 'predict', nums, n, texts, token);
            END IF;
            IF has_label THEN
                lab := indb.engine_chunk_next_text(ref.model, ref.version, 'label', nums, n, texts, token);
            END IF;
            IF proba THEN
                pr := indb.engine_chunk_next(ref.model, ref.version, 'proba', nums, n, texts, token);
            END IF;
            IF prev_n > 0 THEN
                -- the engine's NaN for a row with a NULL feature is NULL, as the row path gives it
                RETURN QUERY
                    SELECT u.k,
                           CASE WHEN pred[u.i] = 'NaN'::double precision AND u.nul THEN NULL ELSE pred[u.i] END,
                           u.l,
                           CASE WHEN pr IS NULL THEN NULL
                                WHEN u.nul AND 'NaN'::double precision = ANY (pr[(u.i - 1) * (pg_catalog.cardinality(pr) / prev_n) + 1 : u.i * (pg_catalog.cardinality(pr) / prev_n)])
                                THEN pg_catalog.array_replace(pr[(u.i - 1) * (pg_catalog.cardinality(pr) / prev_n) + 1 : u.i * (pg_catalog.cardinality(pr) / prev_n)], 'NaN'::double precision, NULL)
                                ELSE pr[(u.i - 1) * (pg_catalog.cardinality(pr) / prev_n) + 1 : u.i * (pg_catalog.cardinality(pr) / prev_n)] END
                      FROM ROWS FROM (pg_catalog.unnest(prev_keys), pg_catalog.unnest(prev_nulls), pg_catalog.unnest(lab))
                           WITH ORDINALITY AS u(k, nul, l, i)
                     WHERE u.i <= prev_n;
            END IF;
            prev_keys := keys;
            prev_nulls := nulls;
            prev_n := n;
        END IF;
        EXIT WHEN lo > nblocks AND prev_n = 0;
        lo := lo + cstep;
    END LOOP;
END
$function$;
ALTER FUNCTION indb.predict_batch(model text, source regclass, key text, proba boolean) OWNER TO indb_owner;
REVOKE ALL ON FUNCTION indb.predict_batch(model text, source regclass, key text, proba boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION indb.predict_batch(model text, source regclass, key text, proba boolean) TO indb_scorer, indb_scorer_base;
