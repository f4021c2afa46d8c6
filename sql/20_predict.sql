-- indb:requires superuser
-- The analyst's entry points: indb.predict and friends for any row (the generic path; bound row types get inlinable overloads at deploy).
--
-- A repeatable definition: indb migrate re-creates it whenever this file changes.

SET LOCAL search_path = pg_catalog, pg_temp;

CREATE OR REPLACE FUNCTION indb.predict(model text, row_value record)
 RETURNS double precision
 LANGUAGE plpgsql
 STABLE PARALLEL SAFE
 SET search_path TO 'pg_catalog', 'indb', 'pg_temp'
AS $function$
BEGIN
    RETURN indb.call_version(model, 'predict', pg_catalog.to_jsonb(row_value), NULL::double precision);
END
$function$;
ALTER FUNCTION indb.predict(model text, row_value record) OWNER TO indb_owner;
REVOKE ALL ON FUNCTION indb.predict(model text, row_value record) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION indb.predict(model text, row_value record) TO indb_scorer, indb_scorer_base;

CREATE OR REPLACE FUNCTION indb.predict_proba(model text, row_value record)
 RETURNS double precision[]
 LANGUAGE plpgsql
 STABLE PARALLEL SAFE
 SET search_path TO 'pg_catalog', 'indb', 'pg_temp'
AS $function$
BEGIN
    RETURN indb.call_version(model, 'proba', pg_catalog.to_jsonb(row_value), NULL::double precision[]);
END
$function$;
ALTER FUNCTION indb.predict_proba(model text, row_value record) OWNER TO indb_owner;
REVOKE ALL ON FUNCTION indb.predict_proba(model text, row_value record) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION indb.predict_proba(model text, row_value record) TO indb_scorer, indb_scorer_base;

CREATE OR REPLACE FUNCTION indb.predict_label(model text, row_value record)
 RETURNS text
 LANGUAGE plpgsql
 STABLE PARALLEL SAFE
 SET search_path TO 'pg_catalog', 'indb', 'pg_temp'
AS $function$
BEGIN
    RETURN indb.call_version(model, 'label', pg_catalog.to_jsonb(row_value), NULL::text);
END
$function$;
ALTER FUNCTION indb.predict_label(model text, row_value record) OWNER TO indb_owner;
REVOKE ALL ON FUNCTION indb.predict_label(model text, row_value record) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION indb.predict_label(model text, row_value record) TO indb_scorer, indb_scorer_base;

CREATE OR REPLACE FUNCTION indb.decision_function(model text, row_value record)
 RETURNS double precision[]
 LANGUAGE plpgsql
 STABLE PARALLEL SAFE
 SET search_path TO 'pg_catalog', 'indb', 'pg_temp'
AS $function$
BEGIN
    RETURN indb.call_version(model, 'decision', pg_catalog.to_jsonb(row_value), NULL::double precision[]);
END
$function$;
ALTER FUNCTION indb.decision_function(model text, row_value record) OWNER TO indb_owner;
REVOKE ALL ON FUNCTION indb.decision_function(model text, row_value record) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION indb.decision_function(model text, row_value record) TO indb_scorer, indb_scorer_base;

CREATE OR REPLACE FUNCTION indb.transform(model text, row_value record)
 RETURNS double precision[]
 LANGUAGE plpgsql
 STABLE PARALLEL SAFE
 SET search_path TO 'pg_catalog', 'indb', 'pg_temp'
AS $function$
BEGIN
    RETURN indb.call_version(model, 'transform', pg_catalog.to_jsonb(row_value), NULL::double precision[]);
END
$function$;
ALTER FUNCTION indb.transform(model text, row_value record) OWNER TO indb_owner;
REVOKE ALL ON FUNCTION indb.transform(model text, row_value record) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION indb.transform(model text, row_value record) TO indb_scorer, indb_scorer_base;

CREATE OR REPLACE FUNCTION indb.predict_array(model text, features double precision[])
 RETURNS double precision
 LANGUAGE plpgsql
 STABLE PARALLEL SAFE
 SET search_path TO 'pg_catalog', 'indb', 'pg_temp'
AS $function$
DECLARE
    r      record;
    f      record;
    n      integer;
    result double precision;
BEGIN
    SELECT * INTO r FROM indb.resolve(model);
    SELECT vf.fn, vf.result_type INTO f FROM indb.version_functions AS vf
    WHERE vf.model = r.model AND vf.version = r.version AND vf.output = 'predict';
    IF NOT FOUND OR f.result_type <> 'double precision' THEN
        RAISE EXCEPTION 'indb: model % has no numeric predict output', pg_catalog.quote_literal(r.model || '@' || r.version)
            USING ERRCODE = 'feature_not_supported', HINT = 'use indb.predict_label for text labels';
    END IF;
    SELECT pg_catalog.jsonb_array_length(v.features) INTO n FROM indb.versions AS v WHERE v.model = r.model AND v.version = r.version;
    IF EXISTS (SELECT FROM indb.versions AS v, pg_catalog.jsonb_array_elements(v.features) AS e
               WHERE v.model = r.model AND v.version = r.version AND e.value ->> 1 = 'text') THEN
        RAISE EXCEPTION 'indb: model % has text features; use indb.predict(model, row)', pg_catalog.quote_literal(r.model || '@' || r.version)
            USING ERRCODE = 'feature_not_supported';
    END IF;
    IF pg_catalog.array_ndims(features) > 1 THEN
        RAISE EXCEPTION 'indb: predict_array takes one row: a one-dimensional array of % features, not a %-dimensional array',
            n, pg_catalog.array_ndims(features) USING ERRCODE = 'invalid_parameter_value',
            HINT = 'for many rows, call it once per row (… FROM t) or use indb.predict(model, row)';
    END IF;
    IF features IS NULL OR pg_catalog.cardinality(features) <> n THEN
        RAISE EXCEPTION 'indb: model % takes % features, the array has %', pg_catalog.quote_literal(r.model || '@' || r.version), n,
            COALESCE(pg_catalog.cardinality(features), 0) USING ERRCODE = 'invalid_parameter_value';
    END IF;
    EXECUTE pg_catalog.format('SELECT %s(%s)', indb.function_sql_name(f.fn),
        (SELECT pg_catalog.string_agg(pg_catalog.format('$1[%s]', i), ', ' ORDER BY i) FROM pg_catalog.generate_series(1, n) AS i))
        INTO result USING features;
    RETURN result;
END
$function$;
ALTER FUNCTION indb.predict_array(model text, features double precision[]) OWNER TO indb_owner;
REVOKE ALL ON FUNCTION indb.predict_array(model text, features double precision[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION indb.predict_array(model text, features double precision[]) TO indb_scorer, indb_scorer_base;
