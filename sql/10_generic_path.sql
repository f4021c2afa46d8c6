-- indb:requires superuser
-- The generic scoring path: resolving a model name, reading a row's features, calling a version's function.
--
-- A repeatable definition: indb migrate re-creates it whenever this file changes.

SET LOCAL search_path = pg_catalog, pg_temp;

CREATE OR REPLACE FUNCTION indb.fail(message text, anchor anyelement)
 RETURNS double precision
 LANGUAGE plpgsql
 IMMUTABLE PARALLEL SAFE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
    RAISE EXCEPTION '%', message USING ERRCODE = 'null_value_not_allowed';
END
$function$;
ALTER FUNCTION indb.fail(message text, anchor anyelement) OWNER TO indb_owner;
REVOKE ALL ON FUNCTION indb.fail(message text, anchor anyelement) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION indb.fail(message text, anchor anyelement) TO indb_scorer, indb_scorer_base;

CREATE OR REPLACE FUNCTION indb.function_sql_name(fn regprocedure)
 RETURNS text
 LANGUAGE sql
 STABLE PARALLEL SAFE
 SET search_path TO 'pg_catalog', 'indb', 'pg_temp'
AS $function$
    SELECT pg_catalog.format('%I.%I', n.nspname, p.proname)
    FROM pg_catalog.pg_proc AS p JOIN pg_catalog.pg_namespace AS n ON n.oid OPERATOR(pg_catalog.=) p.pronamespace
    WHERE p.oid OPERATOR(pg_catalog.=) fn::oid;
$function$;
ALTER FUNCTION indb.function_sql_name(fn regprocedure) OWNER TO indb_owner;
REVOKE ALL ON FUNCTION indb.function_sql_name(fn regprocedure) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION indb.function_sql_name(fn regprocedure) TO indb_scorer, indb_scorer_base, indb_deployer, indb_versions, indb_auditor;

CREATE OR REPLACE FUNCTION indb.resolve(ref text, OUT model text, OUT version integer)
 RETURNS record
 LANGUAGE plpgsql
 STABLE PARALLEL SAFE
 SET search_path TO 'pg_catalog', 'indb', 'pg_temp'
AS $function$
-- 'name' is the alias champion, 'name@3' version 3, 'name@staging' an alias.
DECLARE
    at_sign  integer;
    selector text;
    retired  timestamptz;
BEGIN
    IF ref IS NULL OR ref = '' THEN
        RAISE EXCEPTION 'indb: the model reference is empty' USING ERRCODE = 'invalid_parameter_value',
            HINT = 'pass a model name, name@version or name@alias';
    END IF;
    at_sign := pg_catalog.strpos(ref, '@');
    IF at_sign = 0 THEN
        model := ref;
        selector := 'champion';
    ELSE
        model := pg_catalog.left(ref, at_sign - 1);
        selector := pg_catalog.substr(ref, at_sign + 1);
    END IF;
    PERFORM FROM indb.models AS m WHERE m.name = resolve.model;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'indb: unknown model %', pg_catalog.quote_literal(model) USING ERRCODE = 'undefined_object',
            HINT = 'indb models lists the deployed models';
    END IF;
    IF selector ~ '^[0-9]+$' THEN
        version := selector::integer;
        SELECT v.retired_at INTO retired FROM indb.versions AS v WHERE v.model = resolve.model AND v.version = resolve.version;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'indb: model % has no version %', pg_catalog.quote_literal(model), version
                USING ERRCODE = 'undefined_object', HINT = 'indb models ' || model || ' lists its versions';
        END IF;
    ELSE
        SELECT a.version INTO version FROM indb.aliases AS a WHERE a.model = resolve.model AND a.alias = selector;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'indb: model % has no alias %', pg_catalog.quote_literal(model), pg_catalog.quote_literal(selector)
                USING ERRCODE = 'undefined_object', HINT = 'indb models ' || model || ' lists its aliases';
        END IF;
        SELECT v.retired_at INTO retired FROM indb.versions AS v WHERE v.model = resolve.model AND v.version = resolve.version;
    END IF;
    IF retired IS NOT NULL THEN
        RAISE EXCEPTION 'indb: version % of model % is retired and cannot be scored', version, pg_catalog.quote_literal(model)
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
END
$function$;
ALTER FUNCTION indb.resolve(ref text, OUT model text, OUT version integer) OWNER TO indb_owner;
REVOKE ALL ON FUNCTION indb.resolve(ref text, OUT model text, OUT version integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION indb.resolve(ref text, OUT model text, OUT version integer) TO indb_auditor, indb_deployer, indb_scorer, indb_scorer_base;

CREATE OR REPLACE FUNCTION indb.feature_number(row_json jsonb, feature text, what text)
 RETURNS double precision
 LANGUAGE plpgsql
 IMMUTABLE PARALLEL SAFE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    v jsonb := row_json -> feature;
    s text;
BEGIN
    IF v IS NULL THEN
        RAISE EXCEPTION 'indb: the row has no column % for model %', pg_catalog.quote_ident(feature), what
            USING ERRCODE = 'undefined_column', HINT = 'rename the column, or deploy with --features naming the row''s columns';
    END IF;
    CASE pg_catalog.jsonb_typeof(v)
        WHEN 'null' THEN RETURN NULL;
        WHEN 'number' THEN RETURN v::double precision;
        WHEN 'string' THEN
            s := v #>> '{}';
            -- to_jsonb writes NaN and the infinities of a float8 column as strings
            IF s = ANY (ARRAY['NaN', 'Infinity', '-Infinity']) THEN
                RETURN s::double precision;
            END IF;
        ELSE NULL;
    END CASE;
    RAISE EXCEPTION 'indb: feature % of model % must be a number, not %', pg_catalog.quote_ident(feature), what, v::text
        USING ERRCODE = 'datatype_mismatch';
END
$function$;
ALTER FUNCTION indb.feature_number(row_json jsonb, feature text, what text) OWNER TO indb_owner;
REVOKE ALL ON FUNCTION indb.feature_number(row_json jsonb, feature text, what text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION indb.feature_number(row_json jsonb, feature text, what text) TO indb_scorer, indb_scorer_base;

CREATE OR REPLACE FUNCTION indb.feature_text(row_json jsonb, feature text, what text)
 RETURNS text
 LANGUAGE plpgsql
 IMMUTABLE PARALLEL SAFE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    v jsonb := row_json -> feature;
BEGIN
    IF v IS NULL THEN
        RAISE EXCEPTION 'indb: the row has no column % for model %', pg_catalog.quote_ident(feature), what
            USING ERRCODE = 'undefined_column', HINT = 'rename the column, or deploy with --features naming the row''s columns';
    END IF;
    IF pg_catalog.jsonb_typeof(v) = 'null' THEN
        RETURN NULL;
    END IF;
    RETURN v #>> '{}';
END
$function$;
ALTER FUNCTION indb.feature_text(row_json jsonb, feature text, what text) OWNER TO indb_owner;
REVOKE ALL ON FUNCTION indb.feature_text(row_json jsonb, feature text, what text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION indb.feature_text(row_json jsonb, feature text, what text) TO indb_scorer, indb_scorer_base;

-- A feature of a row (as to_jsonb wrote it) as a number. Inlinable (LANGUAGE sql, no SET
-- clause, a SQL-standard body parsed once, here, with this file's search_path), so an
-- adapter's cached plan holds it as an expression instead of one PL/pgSQL call per
-- feature. Anything but a plain number or null (a missing column, text, a boolean, the
-- strings NaN, Infinity and -Infinity that to_jsonb writes for those float8 values) goes
-- to indb.feature_number, which returns the exact value or raises its one-line error.
CREATE OR REPLACE FUNCTION indb.feature_value(row_json jsonb, feature text, what text)
 RETURNS double precision
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN pg_catalog.jsonb_typeof(row_json OPERATOR(pg_catalog.->) feature) OPERATOR(pg_catalog.=) 'number'
            THEN pg_catalog.float8(row_json OPERATOR(pg_catalog.->) feature)
            WHEN pg_catalog.jsonb_typeof(row_json OPERATOR(pg_catalog.->) feature) OPERATOR(pg_catalog.=) 'null'
            THEN NULL::double precision
            ELSE indb.feature_number(row_json, feature, what) END;
ALTER FUNCTION indb.feature_value(row_json jsonb, feature text, what text) OWNER TO indb_owner;
REVOKE ALL ON FUNCTION indb.feature_value(row_json jsonb, feature text, what text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION indb.feature_value(row_json jsonb, feature text, what text) TO indb_scorer, indb_scorer_base;

-- The call of version function ``fn`` on a row's jsonb ($1), one feature extractor per
-- feature in model order: indb."m@3/predict"(indb.feature_value($1, 'a', '''m@3'''), ...).
-- The one generator of that text: the generic path runs it when a version has no adapter,
-- an adapter's body is it, and the DDL guard and indb validate compare adapters with it.
-- SECURITY DEFINER so that indb_versions (the guard runs as it) may read the registry;
-- it only returns what the registry says of one version function.
CREATE OR REPLACE FUNCTION indb.generic_call_sql(fn regprocedure)
 RETURNS text
 LANGUAGE sql
 STABLE PARALLEL SAFE SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'indb', 'pg_temp'
AS $function$
    SELECT pg_catalog.format('%s(%s)', indb.function_sql_name(vf.fn),
               pg_catalog.string_agg(
                   pg_catalog.format(CASE WHEN e.value ->> 1 = 'text' THEN 'indb.feature_text($1, %L, %L)'
                                          ELSE 'indb.feature_value($1, %L, %L)' END,
                                     e.value ->> 0, pg_catalog.quote_literal(vf.model || '@' || vf.version)),
                   ', ' ORDER BY e.ordinality))
      FROM indb.version_functions AS vf
      JOIN indb.versions AS v ON v.model = vf.model AND v.version = vf.version
     CROSS JOIN LATERAL pg_catalog.jsonb_array_elements(v.features) WITH ORDINALITY AS e
     WHERE vf.fn = generic_call_sql.fn
     GROUP BY vf.fn, vf.model, vf.version;
$function$;
ALTER FUNCTION indb.generic_call_sql(fn regprocedure) OWNER TO indb_owner;
REVOKE ALL ON FUNCTION indb.generic_call_sql(fn regprocedure) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION indb.generic_call_sql(fn regprocedure) TO indb_scorer, indb_scorer_base, indb_deployer, indb_versions, indb_auditor;

-- The generic-path adapter of a version function: indb."m@3/predict"(row_json jsonb), an
-- overload of the version function's own name taking the row as jsonb. PL/pgSQL, so it is
-- never inlined into the caller's EXECUTE (which then plans a one-function call), and its
-- one expression, the version's body inlined into it, is planned once per session.
-- SECURITY INVOKER: the caller needs EXECUTE on the version function, as on every path.
-- Its body is exactly this text, which the DDL guard and indb validate check.
CREATE OR REPLACE FUNCTION indb.generic_adapter_source(fn regprocedure)
 RETURNS text
 LANGUAGE sql
 STABLE PARALLEL SAFE
 SET search_path TO 'pg_catalog', 'indb', 'pg_temp'
AS $function$
    SELECT E'\nBEGIN\n    RETURN ' || indb.generic_call_sql(fn) || E';\nEND\n';
$function$;
ALTER FUNCTION indb.generic_adapter_source(fn regprocedure) OWNER TO indb_owner;
REVOKE ALL ON FUNCTION indb.generic_adapter_source(fn regprocedure) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION indb.generic_adapter_source(fn regprocedure) TO indb_deployer, indb_versions, indb_auditor;

-- The adapter of version function ``fn`` (NULL when it has none): same name, schema and
-- owner, one jsonb argument.
CREATE OR REPLACE FUNCTION indb.generic_adapter(fn regprocedure)
 RETURNS regprocedure
 LANGUAGE sql
 STABLE PARALLEL SAFE
 SET search_path TO 'pg_catalog', 'indb', 'pg_temp'
AS $function$
    SELECT ad.oid::regprocedure
      FROM pg_catalog.pg_proc AS fp
      JOIN pg_catalog.pg_proc AS ad
        ON ad.proname OPERATOR(pg_catalog.=) fp.proname AND ad.pronamespace OPERATOR(pg_catalog.=) fp.pronamespace
       AND ad.proargtypes OPERATOR(pg_catalog.=) '3802'::pg_catalog.oidvector AND ad.proowner OPERATOR(pg_catalog.=) fp.proowner
     WHERE fp.oid OPERATOR(pg_catalog.=) fn::oid;
$function$;
ALTER FUNCTION indb.generic_adapter(fn regprocedure) OWNER TO indb_owner;
REVOKE ALL ON FUNCTION indb.generic_adapter(fn regprocedure) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION indb.generic_adapter(fn regprocedure) TO indb_deployer, indb_versions, indb_auditor;

-- Creates the adapter of version function ``fn``; a deploy runs it as indb_versions, after
-- the version's version_functions row. Executable by every scorer: the version function
-- it calls keeps its own grants.
CREATE OR REPLACE FUNCTION indb.install_generic_adapter(fn regprocedure)
 RETURNS regprocedure
 LANGUAGE plpgsql
 VOLATILE
 SET search_path TO 'pg_catalog', 'indb', 'pg_temp'
AS $function$
DECLARE
    name text := indb.function_sql_name(fn);
    source text := indb.generic_adapter_source(fn);
    result_type text;
BEGIN
    IF source IS NULL THEN
        RAISE EXCEPTION 'indb: % is not a registered version function', fn USING ERRCODE = 'undefined_function';
    END IF;
    SELECT pg_catalog.format_type(p.prorettype, NULL) INTO result_type FROM pg_catalog.pg_proc AS p WHERE p.oid = fn::oid;
    EXECUTE pg_catalog.format('CREATE OR REPLACE FUNCTION %s(row_json jsonb) RETURNS %s LANGUAGE plpgsql STABLE PARALLEL SAFE '
                              'SET search_path = pg_catalog, indb, pg_temp AS %L', name, result_type, source);
    EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s(jsonb) FROM PUBLIC', name);
    EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s(jsonb) TO indb_scorer, indb_scorer_base', name);
    RETURN indb.generic_adapter(fn);
END
$function$;
ALTER FUNCTION indb.install_generic_adapter(fn regprocedure) OWNER TO indb_owner;
REVOKE ALL ON FUNCTION indb.install_generic_adapter(fn regprocedure) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION indb.install_generic_adapter(fn regprocedure) TO indb_deployer, indb_versions;

-- The generic path's call of a version for a reference: the statement that scores one
-- row's jsonb ($1), 'SELECT indb."m@3/predict"($1)' (the version's adapter; a version
-- deployed before adapters existed: its whole call). One query resolves the reference and
-- finds the version function and its adapter (the error cases go to indb.resolve, which
-- says what is wrong). With the PL/Python component, the answer is kept in this backend's
-- memory for the rest of the statement (as a STABLE function's may be): later rows skip
-- the query. SECURITY DEFINER so that only indb_owner writes that memory (what is kept
-- is executed by indb.call_version); the scoring itself runs as the caller, whose right
-- to execute the version function is checked there, on every path.
CREATE OR REPLACE FUNCTION indb.generic_call(ref text, output text, want text)
 RETURNS text
 LANGUAGE plpgsql
 STABLE PARALLEL SAFE SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'indb', 'pg_temp'
AS $function$
DECLARE
    at_sign  integer := pg_catalog.strpos(ref, '@');
    name     text := CASE WHEN at_sign = 0 THEN ref ELSE pg_catalog.left(ref, at_sign - 1) END;
    selector text := CASE WHEN at_sign = 0 THEN 'champion' ELSE pg_catalog.substr(ref, at_sign + 1) END;
    memo     boolean := pg_catalog.to_regprocedure('indb.engine_generic_memo(text[], text)') IS NOT NULL;
    key      text[];
    call     text;
    r        record;
    what     text;
    casts    text;
BEGIN
    IF memo THEN
        key := ARRAY[ref, output, want, pg_catalog.statement_timestamp()::text, pg_catalog.transaction_timestamp()::text];
        call := indb.engine_generic_memo(key, NULL);
        IF call IS NOT NULL THEN
            RETURN call;
        END IF;
    END IF;
    SELECT v.version, v.retired_at, vf.fn, vf.result_type,
           'SELECT indb.' || pg_catalog.quote_ident(ad.proname) || '($1)' AS adapter_call
      INTO r
      FROM indb.versions AS v
      LEFT JOIN indb.version_functions AS vf ON vf.model = v.model AND vf.version = v.version AND vf.output = generic_call.output
      LEFT JOIN pg_catalog.pg_proc AS fp ON fp.oid = vf.fn::oid
      LEFT JOIN pg_catalog.pg_proc AS ad
        ON ad.proname = fp.proname AND ad.pronamespace = fp.pronamespace
       AND ad.proargtypes = '3802'::pg_catalog.oidvector AND ad.proowner = fp.proowner
     WHERE v.model = name
       AND v.version = COALESCE(CASE WHEN selector ~ '^[0-9]{1,9}$' THEN selector::integer END,
                                (SELECT a.version FROM indb.aliases AS a WHERE a.model = name AND a.alias = selector));
    IF NOT FOUND OR r.retired_at IS NOT NULL THEN
        PERFORM indb.resolve(ref);  -- raises what is wrong: no reference, model, version or alias, or a retired version
        RAISE EXCEPTION 'indb: cannot resolve the model reference %', pg_catalog.quote_literal(ref) USING ERRCODE = 'undefined_object';
    END IF;
    what := pg_catalog.quote_literal(name || '@' || r.version);
    IF r.fn IS NULL THEN
        RAISE EXCEPTION 'indb: model % has no % output', what, output USING ERRCODE = 'feature_not_supported',
            HINT = CASE WHEN output = 'predict' THEN 'its labels are text: use indb.predict_label' ELSE 'indb models lists what each version offers' END;
    END IF;
    IF r.result_type <> want THEN
        RAISE EXCEPTION 'indb: model %''s % output is %', what, output, r.result_type USING ERRCODE = 'datatype_mismatch',
            HINT = CASE WHEN r.result_type = 'text' THEN 'its labels are text: use indb.predict_label' ELSE '' END;
    END IF;
    -- the query left the fast path: said once per statement and backend (PL/Python's
    -- memory is the only one a parallel worker may write), with the PL/Python component,
    -- naming the bound tables whose rows a subquery or CTE may cast to keep the fast path
    IF memo AND indb.engine_generic_first(pg_catalog.statement_timestamp(), ref) THEN
        SELECT pg_catalog.string_agg(pg_catalog.format('indb.%s(%L, s::%s)',
                   CASE output WHEN 'proba' THEN 'predict_proba' WHEN 'label' THEN 'predict_label'
                               WHEN 'decision' THEN 'decision_function' ELSE output END, ref, b.rowtype), ', ' ORDER BY b.rowtype::text)
          INTO casts FROM indb.bindings AS b WHERE b.model = name;
        RAISE NOTICE 'indb: % scores rows that are not of a bound table''s type (a subquery, a CTE, an unbound table) through the generic path, one planned call per row; %for many rows use indb.predict_batch(%, ''schema.table'', key => ''id''), or bind the table (indb bind % TABLE)',
            what,
            CASE WHEN casts IS NULL THEN ''
                 ELSE 'a subquery or CTE of every column of a bound table keeps the fast path when its row is cast to the table''s type: ' || casts || '; ' END,
            pg_catalog.quote_literal(ref), name;
    END IF;
    -- a version deployed before adapters existed: its whole call, planned on every row
    call := COALESCE(r.adapter_call, 'SELECT ' || indb.generic_call_sql(r.fn));
    IF memo THEN
        PERFORM indb.engine_generic_memo(key, call);
    END IF;
    RETURN call;
END
$function$;
ALTER FUNCTION indb.generic_call(ref text, output text, want text) OWNER TO indb_owner;
REVOKE ALL ON FUNCTION indb.generic_call(ref text, output text, want text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION indb.generic_call(ref text, output text, want text) TO indb_scorer, indb_scorer_base;

-- The generic path: a row of any type, as jsonb, scored by the statement indb.generic_call
-- gives (a call of the version's adapter, whose plan, the version's body inlined, is
-- cached per session), planned on every row.
CREATE OR REPLACE FUNCTION indb.call_version(ref text, output text, row_json jsonb, want anyelement)
 RETURNS anyelement
 LANGUAGE plpgsql
 STABLE PARALLEL SAFE
 SET search_path TO 'pg_catalog', 'indb', 'pg_temp'
AS $function$
DECLARE
    result want%TYPE;
BEGIN
    EXECUTE indb.generic_call(ref, output, pg_catalog.format_type(pg_catalog.pg_typeof(want), NULL)) INTO result USING row_json;
    RETURN result;
END
$function$;
ALTER FUNCTION indb.call_version(ref text, output text, row_json jsonb, want anyelement) OWNER TO indb_owner;
REVOKE ALL ON FUNCTION indb.call_version(ref text, output text, row_json jsonb, want anyelement) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION indb.call_version(ref text, output text, row_json jsonb, want anyelement) TO indb_scorer, indb_scorer_base;
