-- indb:requires superuser
-- indb.compute_score: the body of indb.score (the chunked batch path and the per-row path).
--
-- A repeatable definition: indb migrate re-creates it whenever this file changes.

SET LOCAL search_path = pg_catalog, pg_temp;

CREATE OR REPLACE FUNCTION indb.compute_score(call_id bigint, called_at timestamp with time zone, model text, version integer, source_view regclass, key_column text, keep text[], sample double precision, mode text, outputs text[], acting_role name, OUT source text, OUT rows_scored bigint, OUT rows_logged bigint, OUT stage regclass)
 RETURNS record
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
 SET enable_memoize TO 'off'
AS $function$
-- Logs the rows of a verified view into the open call, evaluating their prediction here.
-- mode 'recompute': the caller has written its target already; the prediction of the
--   logged rows is evaluated again (cheap models: the data is read, not copied).
-- mode 'stage': every output is evaluated once into a temporary table, which the
--   caller copies its target from (costly models: one evaluation).
-- The log rows are inserted in chunks of the scanned table's blocks, with a NOTICE
-- per chunk for a terminal to show.
DECLARE
    what      text := pg_catalog.quote_literal(model || '@' || version);
    base      regclass;
    args      text[] := '{}';
    nums      text[] := '{}';
    texts     text[] := '{}';
    has_text  boolean := false;
    pred_out  text;
    pred_at   integer;
    key_sql   text := 'NULL::text';
    pick_sql  text;
    feats_sql text;
    texts_sql text;
    cols      text[] := '{}';
    i         integer;
    rows_sql  text;
    tid_sql   text;
    scan      regclass;
    nblocks   bigint;
    step      constant bigint := 4096;
    lo        bigint := 0;
    added     bigint;
    -- the PL/Python engine's batch path (stage mode, one table, engine installed)
    chunked   boolean := false;
    numargs   text[] := '{}';
    textargs  text[] := '{}';
    nullargs  text[] := '{}';
    calls     text[] := '{}';
    unnests   text[] := '{}';
    ucols     text[] := '{}';
    picks     text[] := '{}';
    nanargs   text[] := '{}';
    has_null  text;
    chunk_sql text;
    prev_tids tid[];
    prev_n    integer := 0;
    prev_lo   bigint := 0;
    got       bigint;
    got_log   bigint;
    k         integer;
    ctype     text;
    cstep     bigint := 1024;  -- blocks per chunk (SET indb.score_chunk_blocks = N to change)
    log_into  constant text := 'INSERT INTO indb.prediction_log (logged_at, call_id, row_key, features, features_text, prediction, label) ';
BEGIN
    IF mode IS NULL OR mode <> ALL (ARRAY['recompute', 'stage']) THEN
        RAISE EXCEPTION 'indb: unknown scoring mode %', mode USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF sample IS NULL OR NOT (sample > 0 AND sample <= 1) THEN
        RAISE EXCEPTION 'indb: sample must be in (0, 1], not %', sample USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM indb.compute_check_role(acting_role);
    base := indb.compute_check_view(source_view);
    source := base::text;
    SELECT * INTO STRICT args, numargs, textargs, nullargs FROM indb.feature_inputs(source_view, model, version, what);
    FOR i IN 1 .. pg_catalog.cardinality(args) LOOP
        IF args[i] = ANY (textargs) THEN
            has_text := true;
            nums := nums || 'NULL::double precision'::text;
            texts := texts || args[i];
        ELSE
            nums := nums || args[i];
            texts := texts || 'NULL::text'::text;
            nanargs := nanargs || ('(' || args[i] || ') = ''NaN''::double precision');
        END IF;
    END LOOP;
    feats_sql := 'ARRAY[' || pg_catalog.array_to_string(nums, ', ') || ']::double precision[]';
    texts_sql := CASE WHEN has_text THEN 'ARRAY[' || pg_catalog.array_to_string(texts, ', ') || ']::text[]' ELSE 'NULL::text[]' END;
    SELECT vf.output INTO pred_out FROM indb.version_functions AS vf
    WHERE vf.model = compute_score.model AND vf.version = compute_score.version AND vf.output = ANY (ARRAY['predict', 'label'])
    ORDER BY vf.output = 'predict' DESC LIMIT 1;
    IF key_column IS NOT NULL THEN
        key_sql := indb.input_sql(source_view, 'v', key_column, 'key', 'model ' || what);
    END IF;
    -- Deterministic sampling: a 64-bit hash of the key (of the features, without a key)
    -- mapped to [0, 1), below the rate.
    IF sample = 1 THEN
        pick_sql := 'true';
    ELSE
        pick_sql := pg_catalog.format(
            '(pg_catalog.hashtextextended(%s, 0)::double precision / 18446744073709551616.0 + 0.5) < %L::double precision',
            CASE WHEN key_column IS NULL THEN '(' || feats_sql || ')::text || ' || pg_catalog.quote_literal('|') || ' || COALESCE((' || texts_sql || ')::text, '''')'
                 ELSE key_sql END,
            sample);
    END IF;
    IF mode = 'recompute' THEN
        scan := base;
        tid_sql := 'v."__indb_tid"';
        rows_sql := pg_catalog.format('SELECT $1, $2, %s, %s, %s, %s, %s FROM %s AS v WHERE %s',
            key_sql, feats_sql, texts_sql,
            CASE WHEN pred_out = 'predict' THEN indb.output_sql(model, version, pred_out, args) ELSE 'NULL::double precision' END,
            CASE WHEN pred_out = 'label' THEN indb.output_sql(model, version, pred_out, args) ELSE 'NULL::text' END,
            source_view, pick_sql);
        IF sample < 1 THEN
            EXECUTE pg_catalog.format('SELECT pg_catalog.count(*) FROM %s', source_view) INTO rows_scored;
        END IF;
    ELSE
        pred_at := pg_catalog.array_position(outputs, pred_out);
        IF pred_at IS NULL THEN
            RAISE EXCEPTION 'indb: the outputs of a staged call must include %', pred_out USING ERRCODE = 'invalid_parameter_value';
        END IF;
        FOR i IN 1 .. COALESCE(pg_catalog.cardinality(keep), 0) LOOP
            IF NOT EXISTS (SELECT FROM pg_catalog.pg_attribute AS a
                           WHERE a.attrelid = source_view AND a.attname = keep[i] AND a.attnum > 0 AND NOT a.attisdropped) THEN
                RAISE EXCEPTION 'indb: table % has no column % to keep', base, pg_catalog.quote_ident(keep[i])
                    USING ERRCODE = 'undefined_column';
            END IF;
            cols := cols || pg_catalog.format('v.%I AS %I', keep[i], '__k' || i);
        END LOOP;
        -- A PL/Python version over one table is evaluated a chunk of blocks at a time
        -- through the engine's batch entry point (numpy over packed float8 columns; one
        -- call per chunk instead of one per row); the chunk statements write the stage
        -- and the log rows. A partitioned table (tids repeat across partitions) or an
        -- engine without indb.engine_chunk_next takes the per-row path. A SQL version
        -- whose function body is large (a tree ensemble: stage mode's own criterion) is
        -- evaluated this way too when the engine is installed: numpy and the tree kernel
        -- beat PostgreSQL's expression interpreter there (bench/README.md)
        chunked := ((SELECT v.engine = 'plpython' FROM indb.versions AS v
                     WHERE v.model = compute_score.model AND v.version = compute_score.version)
                    OR (SELECT pg_catalog.max(pg_catalog.length(CASE WHEN p.prosqlbody IS NULL THEN p.prosrc ELSE pg_catalog.pg_get_function_sqlbody(p.oid) END)) > 20000
                        FROM indb.version_functions AS vf JOIN pg_catalog.pg_proc AS p ON p.oid = vf.fn::oid
                        WHERE vf.model = compute_score.model AND vf.version = compute_score.version))
                   AND (SELECT k.relkind <> 'p' FROM pg_catalog.pg_class AS k WHERE k.oid = base)
                   AND pg_catalog.to_regprocedure('indb.engine_chunk_next(text, integer, text, bytea, integer, text[], bigint)') IS NOT NULL
                   AND COALESCE(pg_catalog.current_setting('indb.score_chunks', true), '') <> 'off';
        IF chunked THEN
            -- the stage holds the kept columns and the outputs; the log rows are written
            -- by the chunk statements.
            -- A NaN answer is NULL where the version's own function gives NULL: for a
            -- row with a NULL input, and for the SQL engine (whose missing value is NULL)
            -- a NaN input too; the PL/Python engine gives NaN for NaN in, as numpy
            IF (SELECT v.engine FROM indb.versions AS v WHERE v.model = compute_score.model AND v.version = compute_score.version) = 'sql' THEN
                nullargs := nullargs || nanargs;
            END IF;
            has_null := CASE WHEN pg_catalog.cardinality(nullargs) > 0 THEN '(' || pg_catalog.array_to_string(nullargs, ' OR ') || ')' ELSE 'false' END;
            FOR i IN 1 .. pg_catalog.cardinality(outputs) LOOP
                SELECT pg_catalog.format_type(p.prorettype, NULL) INTO ctype
                  FROM indb.version_functions AS vf JOIN pg_catalog.pg_proc AS p ON p.oid = vf.fn::oid
                 WHERE vf.model = compute_score.model AND vf.version = compute_score.version AND vf.output = outputs[i];
                IF ctype IS NULL THEN
                    RAISE EXCEPTION 'indb: model % has no % output', what, outputs[i] USING ERRCODE = 'feature_not_supported';
                END IF;
                cols := cols || pg_catalog.format('NULL::%s AS %I', ctype, '__o' || i);
                calls := calls || pg_catalog.format('indb.%I(%L, %s, %L, c.nums, c.n, %s, %s) AS %I',
                    CASE WHEN ctype = 'text' THEN 'engine_chunk_next_text' ELSE 'engine_chunk_next' END,
                    model, version, outputs[i],
                    CASE WHEN pg_catalog.cardinality(textargs) > 0
                         THEN '(SELECT pg_catalog.array_agg(e) FROM pg_catalog.unnest(c.texts) AS e)' ELSE 'NULL::text[]' END,
                    call_id, 'r' || i);
                -- the engine's numpy evaluator has NaN for NULL: a NaN answer of a row with a
                -- NULL input is NULL, as the SQL and the row path give it
                -- a text[] element is found by walking the array from its start: text
                -- answers are unnested beside the tids (one pass), not subscripted
                IF ctype = 'text' THEN
                    unnests := unnests || pg_catalog.format('pg_catalog.unnest(r.%I)', 'r' || i);
                    ucols := ucols || pg_catalog.format('%I', 't' || i);
                END IF;
                picks := picks || ((CASE
                    WHEN ctype = 'text' THEN pg_catalog.format('u.%I', 't' || i)
                    WHEN ctype = 'double precision' THEN pg_catalog.format(
                        'CASE WHEN r.%1$I[u.i] = ''NaN''::double precision AND %2$s THEN NULL ELSE r.%1$I[u.i] END', 'r' || i, has_null)
                    ELSE pg_catalog.format(
                        'CASE WHEN ''NaN''::double precision = ANY (r.%1$I[(u.i - 1) * r.%3$I + 1 : u.i * r.%3$I]) AND %2$s'
                        ' THEN pg_catalog.array_replace(r.%1$I[(u.i - 1) * r.%3$I + 1 : u.i * r.%3$I], ''NaN''::double precision, NULL)'
                        ' ELSE r.%1$I[(u.i - 1) * r.%3$I + 1 : u.i * r.%3$I] END', 'r' || i, has_null, 'k' || i)
                    END) || pg_catalog.format(' AS %I', '__o' || i));
            END LOOP;
            EXECUTE pg_catalog.format('CREATE TEMPORARY TABLE %I ON COMMIT DROP AS SELECT %s FROM %s AS v WITH NO DATA',
                                      'indb_stage_' || call_id, pg_catalog.array_to_string(cols, ', '), source_view);
            stage := pg_catalog.format('pg_temp.%I', 'indb_stage_' || call_id)::regclass;
            -- The engine's pipelined batch path (indb.engine_chunk_next): each call starts
            -- scoring its chunk on a background thread (the kernels release the GIL) and
            -- returns the answers of the chunk before, so a chunk is scored while the
            -- next one is read and packed. One statement per chunk: the CTE c packs chunk
            -- k and receives the answers of chunk k - 1; j reads chunk k - 1's rows again
            -- ($5, $6: its blocks) and pairs each with its answers by tid ($3: kept in a
            -- variable from the statement before, with the row count $4); the stage rows
            -- and the log rows are written from j. The statement returns chunk k's tids
            -- and what it wrote. A last call with no rows returns the last chunk's answers.
            chunk_sql := pg_catalog.format(
                'WITH c AS MATERIALIZED (SELECT c.tids, c.n, %s FROM ('
                || 'SELECT pg_catalog.array_agg(v."__indb_tid") AS tids, pg_catalog.count(*)::integer AS n, '
                || '%s AS nums, %s AS texts FROM %s AS v WHERE v."__indb_tid" >= $1 AND v."__indb_tid" < $2) AS c), '
                || 'j AS MATERIALIZED (SELECT %s, %s AS "__indb_key", %s AS "__indb_logged", '
                || 'CASE WHEN %s THEN %s END AS "__indb_features", CASE WHEN %s THEN %s END AS "__indb_features_text" '
                || 'FROM (SELECT $3::tid[] AS tids, %s FROM c WHERE $4::integer > 0) AS r '
                || 'CROSS JOIN LATERAL ROWS FROM (pg_catalog.unnest(r.tids)%s) WITH ORDINALITY AS u(tid%s, i) '
                || 'CROSS JOIN LATERAL (SELECT * FROM %s AS v WHERE v."__indb_tid" = u.tid AND v."__indb_tid" >= $5 AND v."__indb_tid" < $6 OFFSET 0) AS v), '
                || 's AS (INSERT INTO %s SELECT %s FROM j), '
                || 'l AS (' || log_into
                || 'SELECT $7, $8, j."__indb_key", j."__indb_features", j."__indb_features_text", %s, %s FROM j WHERE j."__indb_logged") '
                || 'SELECT c.tids, c.n, (SELECT pg_catalog.count(*) FROM j), (SELECT pg_catalog.count(*) FROM j WHERE j."__indb_logged") FROM c',
                pg_catalog.array_to_string(calls, ', '),
                indb.packed_sql(numargs),
                CASE WHEN pg_catalog.cardinality(textargs) > 0
                     THEN 'pg_catalog.array_agg(ARRAY[' || pg_catalog.array_to_string(textargs, ', ') || ']::text[])'
                     ELSE 'NULL::text[]' END,
                source_view,
                pg_catalog.array_to_string(
                    ARRAY(SELECT pg_catalog.format('v.%I AS %I', k.c, '__k' || k.o)
                            FROM pg_catalog.unnest(keep) WITH ORDINALITY AS k(c, o) ORDER BY k.o) || picks, ', '),
                key_sql, pick_sql, pick_sql, feats_sql, pick_sql, texts_sql,
                -- each output's answers, and how many values a row has in them
                (SELECT pg_catalog.string_agg(pg_catalog.format('c.%1$I, pg_catalog.cardinality(c.%1$I) / $4::integer AS %2$I', 'r' || o, 'k' || o), ', ' ORDER BY o)
                   FROM pg_catalog.generate_series(1, pg_catalog.cardinality(outputs)) AS g(o)),
                (SELECT pg_catalog.string_agg(', ' || x, '' ORDER BY o) FROM pg_catalog.unnest(unnests) WITH ORDINALITY AS z(x, o)),
                (SELECT pg_catalog.string_agg(', ' || x, '' ORDER BY o) FROM pg_catalog.unnest(ucols) WITH ORDINALITY AS z(x, o)),
                source_view,
                stage,
                (SELECT pg_catalog.string_agg(pg_catalog.format('j.%I', c), ', ' ORDER BY o)
                   FROM (SELECT '__k' || g.o, g.o FROM pg_catalog.generate_series(1, COALESCE(pg_catalog.cardinality(keep), 0)) AS g(o)
                         UNION ALL
                         SELECT '__o' || g.o, 1000000 + g.o FROM pg_catalog.generate_series(1, pg_catalog.cardinality(outputs)) AS g(o)) AS x(c, o)),
                CASE WHEN pred_out = 'predict' THEN pg_catalog.format('j.%I', '__o' || pred_at) ELSE 'NULL::double precision' END,
                CASE WHEN pred_out = 'label' THEN pg_catalog.format('j.%I', '__o' || pred_at) ELSE 'NULL::text' END);
            SELECT pg_catalog.pg_relation_size(base) / pg_catalog.current_setting('block_size')::bigint INTO nblocks;
            IF COALESCE(pg_catalog.current_setting('indb.score_chunk_blocks', true), '') ~ '^[0-9]{1,9}$' THEN
                cstep := GREATEST(1, pg_catalog.current_setting('indb.score_chunk_blocks', true)::bigint);
            END IF;
            rows_scored := 0;
            rows_logged := 0;
            lo := 0;
            LOOP
                -- past the last block, an empty range: no rows, and the engine returns
                -- the last chunk's answers
                EXECUTE chunk_sql INTO prev_tids, prev_n, got, got_log
                  USING pg_catalog.format('(%s,0)', lo)::tid,
                        pg_catalog.format('(%s,0)', CASE WHEN lo <= nblocks THEN lo + cstep ELSE lo END)::tid, prev_tids, prev_n,
                        pg_catalog.format('(%s,0)', prev_lo)::tid, pg_catalog.format('(%s,0)', prev_lo + cstep)::tid, called_at, call_id;
                rows_scored := rows_scored + got;
                rows_logged := rows_logged + got_log;
                EXIT WHEN lo > nblocks;
                prev_lo := lo;
                lo := lo + cstep;
                IF lo % (cstep * 4) = 0 AND lo < nblocks THEN
                    RAISE NOTICE 'indb: % scored and logged % of % blocks (% rows logged)', what, lo, nblocks, rows_logged;
                END IF;
            END LOOP;
            EXECUTE pg_catalog.format('GRANT SELECT ON %s TO %I', stage, acting_role);
            RETURN;
        END IF;
        FOR i IN 1 .. pg_catalog.cardinality(outputs) LOOP
            cols := cols || pg_catalog.format('%s AS %I', indb.output_sql(model, version, outputs[i], args), '__o' || i);
        END LOOP;
        cols := cols || pg_catalog.format('%s AS "__indb_key"', key_sql)
                     || pg_catalog.format('%s AS "__indb_logged"', pick_sql)
                     || pg_catalog.format('CASE WHEN %s THEN %s END AS "__indb_features"', pick_sql, feats_sql)
                     || pg_catalog.format('CASE WHEN %s THEN %s END AS "__indb_features_text"', pick_sql, texts_sql);
        EXECUTE pg_catalog.format('CREATE TEMPORARY TABLE %I ON COMMIT DROP AS SELECT %s FROM %s AS v',
                                  'indb_stage_' || call_id, pg_catalog.array_to_string(cols, ', '), source_view);
        GET DIAGNOSTICS rows_scored = ROW_COUNT;
        stage := pg_catalog.format('pg_temp.%I', 'indb_stage_' || call_id)::regclass;
        scan := stage;
        tid_sql := 's.ctid';
        rows_sql := pg_catalog.format(
            'SELECT $1, $2, s."__indb_key", s."__indb_features", s."__indb_features_text", %s, %s FROM %s AS s WHERE s."__indb_logged"',
            CASE WHEN pred_out = 'predict' THEN pg_catalog.format('s.%I', '__o' || pred_at) ELSE 'NULL::double precision' END,
            CASE WHEN pred_out = 'label' THEN pg_catalog.format('s.%I', '__o' || pred_at) ELSE 'NULL::text' END,
            stage);
        EXECUTE pg_catalog.format('GRANT SELECT ON %s TO %I', stage, acting_role);
    END IF;
    SELECT COALESCE(pg_catalog.max(pg_catalog.pg_relation_size(t.relid)), pg_catalog.pg_relation_size(scan))
           / pg_catalog.current_setting('block_size')::bigint
      INTO nblocks
      FROM pg_catalog.pg_partition_tree(scan) AS t WHERE t.isleaf;
    rows_logged := 0;
    LOOP
        IF lo + step >= nblocks THEN
            EXECUTE log_into || rows_sql || ' AND ' || tid_sql || ' >= $3'
              USING called_at, call_id, pg_catalog.format('(%s,0)', lo)::tid;
            GET DIAGNOSTICS added = ROW_COUNT;
            rows_logged := rows_logged + added;
            EXIT;
        END IF;
        EXECUTE log_into || rows_sql || ' AND ' || tid_sql || ' >= $3 AND ' || tid_sql || ' < $4'
          USING called_at, call_id, pg_catalog.format('(%s,0)', lo)::tid, pg_catalog.format('(%s,0)', lo + step)::tid;
        GET DIAGNOSTICS added = ROW_COUNT;
        rows_logged := rows_logged + added;
        lo := lo + step;
        RAISE NOTICE 'indb: % logged % rows (% of % blocks read)', what, rows_logged, lo, nblocks;
    END LOOP;
    IF rows_scored IS NULL THEN
        rows_scored := rows_logged;
    END IF;
END
$function$;
ALTER FUNCTION indb.compute_score(call_id bigint, called_at timestamp with time zone, model text, version integer, source_view regclass, key_column text, keep text[], sample double precision, mode text, outputs text[], acting_role name, OUT source text, OUT rows_scored bigint, OUT rows_logged bigint, OUT stage regclass) OWNER TO indb_compute;
REVOKE ALL ON FUNCTION indb.compute_score(call_id bigint, called_at timestamp with time zone, model text, version integer, source_view regclass, key_column text, keep text[], sample double precision, mode text, outputs text[], acting_role name, OUT source text, OUT rows_scored bigint, OUT rows_logged bigint, OUT stage regclass) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION indb.compute_score(call_id bigint, called_at timestamp with time zone, model text, version integer, source_view regclass, key_column text, keep text[], sample double precision, mode text, outputs text[], acting_role name, OUT source text, OUT rows_scored bigint, OUT rows_logged bigint, OUT stage regclass) TO indb_log_writer;
