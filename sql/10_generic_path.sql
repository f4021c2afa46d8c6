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
GRANT EXECUTE ON FUNCTION indb.function_sql_name(fn regprocedure) TO indb_scorer, indb_scorer_base;

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

CREATE OR REPLACE FUNCTION indb.call_version(ref text, output text, row_json jsonb, want anyelement)
 RETURNS anyelement
 LANGUAGE plpgsql
 STABLE PARALLEL SAFE
 SET search_path TO 'pg_catalog', 'indb', 'pg_temp'
AS $function$
DECLARE
    r       record;
    f       record;
    feats   jsonb;
    args    text[] := ARRAY[]::text[];
    what    text;
    result  want%TYPE;
BEGIN
    SELECT * INTO r FROM indb.resolve(ref);
    what := pg_catalog.quote_literal(r.model || '@' || r.version);
    -- the query left the fast path: say so once per statement (per backend, with the
    -- PL/Python component installed; it is the only memory a parallel worker may keep)
    IF pg_catalog.to_regprocedure('indb.engine_notice_once(text, text)') IS NOT NULL THEN
        PERFORM indb.engine_notice_once(pg_catalog.statement_timestamp()::text || ' ' || ref,
            pg_catalog.format('indb: %s scores rows that are not of a bound table''s type (a subquery, a CTE, an unbound table) '
                              'through the generic path, one planned call per row; for many rows use '
                              'indb.predict_batch(%L, ''schema.table'', key => ''id''), or a bound table''s own rows (indb bind)',
                              what, ref));
    END IF;
    SELECT vf.fn, vf.result_type INTO f FROM indb.version_functions AS vf
    WHERE vf.model = r.model AND vf.version = r.version AND vf.output = call_version.output;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'indb: model % has no % output', what, output USING ERRCODE = 'feature_not_supported',
            HINT = CASE WHEN output = 'predict' THEN 'its labels are text: use indb.predict_label' ELSE 'indb models lists what each version offers' END;
    END IF;
    IF f.result_type <> pg_catalog.format_type(pg_catalog.pg_typeof(want), NULL) THEN
        RAISE EXCEPTION 'indb: model %''s % output is %', what, output, f.result_type USING ERRCODE = 'datatype_mismatch',
            HINT = CASE WHEN f.result_type = 'text' THEN 'its labels are text: use indb.predict_label' ELSE '' END;
    END IF;
    SELECT v.features INTO feats FROM indb.versions AS v WHERE v.model = r.model AND v.version = r.version;
    SELECT pg_catalog.array_agg(
               pg_catalog.format(CASE WHEN e.value ->> 1 = 'text' THEN 'indb.feature_text($1, %L, %L)'
                                      ELSE 'indb.feature_number($1, %L, %L)' END, e.value ->> 0, what)
               ORDER BY e.ordinality)
      INTO args
      FROM pg_catalog.jsonb_array_elements(feats) WITH ORDINALITY AS e;
    EXECUTE pg_catalog.format('SELECT %s(%s)', indb.function_sql_name(f.fn), pg_catalog.array_to_string(args, ', '))
        INTO result USING row_json;
    RETURN result;
END
$function$;
ALTER FUNCTION indb.call_version(ref text, output text, row_json jsonb, want anyelement) OWNER TO indb_owner;
REVOKE ALL ON FUNCTION indb.call_version(ref text, output text, row_json jsonb, want anyelement) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION indb.call_version(ref text, output text, row_json jsonb, want anyelement) TO indb_scorer, indb_scorer_base;
