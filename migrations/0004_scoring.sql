-- Scoring: model references ('name', 'name@3', 'name@alias'), the table of per-version
-- scoring functions that deploy creates, row-type bindings, and the generic entry
-- points that work for any row (slower: they resolve the version and build the call
-- at run time). Bound row types get fast inlinable overloads, made by `indb bind`.

SET LOCAL search_path = pg_catalog, pg_temp;
SET LOCAL ROLE indb_owner;

-- Which function computes each output of each version. Deploy fills it in the same
-- transaction that creates the functions; retire empties it when it drops them.
CREATE TABLE indb.version_functions (
    model       text    NOT NULL,
    version     integer NOT NULL,
    output      text    NOT NULL CHECK (output OPERATOR(pg_catalog.=) ANY (ARRAY['predict', 'proba', 'decision', 'transform', 'label'])),
    fn          regprocedure NOT NULL,
    result_type text    NOT NULL CHECK (result_type OPERATOR(pg_catalog.=) ANY (ARRAY['double precision', 'double precision[]', 'text'])),
    PRIMARY KEY (model, version, output),
    FOREIGN KEY (model, version) REFERENCES indb.versions (model, version)
);

-- Row types with a fast indb.predict(name, row) overload for a model.
CREATE TABLE indb.bindings (
    model      text        NOT NULL REFERENCES indb.models (name),
    rowtype    regtype     NOT NULL,
    bound_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    bound_by   text        NOT NULL DEFAULT session_user,
    PRIMARY KEY (model, rowtype)
);

GRANT SELECT ON indb.version_functions, indb.bindings TO indb_auditor, indb_scorer;

CREATE FUNCTION indb.resolve(ref text, OUT model text, OUT version integer)
LANGUAGE plpgsql
STABLE PARALLEL SAFE
SET search_path = pg_catalog, indb, pg_temp
AS $fn$
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
$fn$;
REVOKE ALL ON FUNCTION indb.resolve(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION indb.resolve(text) TO indb_scorer, indb_deployer, indb_auditor;

-- A feature value from a row turned into JSON, with the errors a user can act on.
CREATE FUNCTION indb.feature_number(row_json jsonb, feature text, what text)
RETURNS double precision
LANGUAGE plpgsql
IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $fn$
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
$fn$;
REVOKE ALL ON FUNCTION indb.feature_number(jsonb, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION indb.feature_number(jsonb, text, text) TO indb_scorer;

CREATE FUNCTION indb.feature_text(row_json jsonb, feature text, what text)
RETURNS text
LANGUAGE plpgsql
IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $fn$
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
$fn$;
REVOKE ALL ON FUNCTION indb.feature_text(jsonb, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION indb.feature_text(jsonb, text, text) TO indb_scorer;

-- Raised from inside a compiled model (on_missing = 'error'). The second argument is a
-- feature value, so the planner cannot fold the call (and raise) while planning.
CREATE FUNCTION indb.fail(message text, anchor anyelement)
RETURNS double precision
LANGUAGE plpgsql
IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    RAISE EXCEPTION '%', message USING ERRCODE = 'null_value_not_allowed';
END
$fn$;
REVOKE ALL ON FUNCTION indb.fail(text, anyelement) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION indb.fail(text, anyelement) TO indb_scorer;

-- schema.name of a function, quoted for EXECUTE
CREATE FUNCTION indb.function_sql_name(fn regprocedure)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, indb, pg_temp
AS $fn$
    SELECT pg_catalog.format('%I.%I', n.nspname, p.proname)
    FROM pg_catalog.pg_proc AS p JOIN pg_catalog.pg_namespace AS n ON n.oid OPERATOR(pg_catalog.=) p.pronamespace
    WHERE p.oid OPERATOR(pg_catalog.=) fn::oid;
$fn$;
REVOKE ALL ON FUNCTION indb.function_sql_name(regprocedure) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION indb.function_sql_name(regprocedure) TO indb_scorer;

-- The generic path (any row, as `record`; a bound row type's own overload wins): resolve the reference, read the row's features from JSON and call
-- the version's function. `want` only carries the result type.
CREATE FUNCTION indb.call_version(ref text, output text, row_json jsonb, want anyelement)
RETURNS anyelement
LANGUAGE plpgsql
STABLE PARALLEL SAFE
SET search_path = pg_catalog, indb, pg_temp
AS $fn$
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
$fn$;
REVOKE ALL ON FUNCTION indb.call_version(text, text, jsonb, anyelement) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION indb.call_version(text, text, jsonb, anyelement) TO indb_scorer;

CREATE FUNCTION indb.predict(model text, row_value record)
RETURNS double precision
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, indb, pg_temp
AS $fn$
BEGIN
    RETURN indb.call_version(model, 'predict', pg_catalog.to_jsonb(row_value), NULL::double precision);
END
$fn$;
REVOKE ALL ON FUNCTION indb.predict(text, record) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION indb.predict(text, record) TO indb_scorer;

CREATE FUNCTION indb.predict_proba(model text, row_value record)
RETURNS double precision[]
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, indb, pg_temp
AS $fn$
BEGIN
    RETURN indb.call_version(model, 'proba', pg_catalog.to_jsonb(row_value), NULL::double precision[]);
END
$fn$;
REVOKE ALL ON FUNCTION indb.predict_proba(text, record) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION indb.predict_proba(text, record) TO indb_scorer;

CREATE FUNCTION indb.predict_label(model text, row_value record)
RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, indb, pg_temp
AS $fn$
BEGIN
    RETURN indb.call_version(model, 'label', pg_catalog.to_jsonb(row_value), NULL::text);
END
$fn$;
REVOKE ALL ON FUNCTION indb.predict_label(text, record) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION indb.predict_label(text, record) TO indb_scorer;

CREATE FUNCTION indb.decision_function(model text, row_value record)
RETURNS double precision[]
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, indb, pg_temp
AS $fn$
BEGIN
    RETURN indb.call_version(model, 'decision', pg_catalog.to_jsonb(row_value), NULL::double precision[]);
END
$fn$;
REVOKE ALL ON FUNCTION indb.decision_function(text, record) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION indb.decision_function(text, record) TO indb_scorer;

CREATE FUNCTION indb.transform(model text, row_value record)
RETURNS double precision[]
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, indb, pg_temp
AS $fn$
BEGIN
    RETURN indb.call_version(model, 'transform', pg_catalog.to_jsonb(row_value), NULL::double precision[]);
END
$fn$;
REVOKE ALL ON FUNCTION indb.transform(text, record) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION indb.transform(text, record) TO indb_scorer;

-- Features in model order, as an array (numeric features only).
CREATE FUNCTION indb.predict_array(model text, features double precision[])
RETURNS double precision
LANGUAGE plpgsql
STABLE PARALLEL SAFE
SET search_path = pg_catalog, indb, pg_temp
AS $fn$
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
    IF features IS NULL OR pg_catalog.cardinality(features) <> n THEN
        RAISE EXCEPTION 'indb: model % takes % features, the array has %', pg_catalog.quote_literal(r.model || '@' || r.version), n,
            COALESCE(pg_catalog.cardinality(features), 0) USING ERRCODE = 'invalid_parameter_value';
    END IF;
    EXECUTE pg_catalog.format('SELECT %s(%s)', indb.function_sql_name(f.fn),
        (SELECT pg_catalog.string_agg(pg_catalog.format('$1[%s]', i), ', ' ORDER BY i) FROM pg_catalog.generate_series(1, n) AS i))
        INTO result USING features;
    RETURN result;
END
$fn$;
REVOKE ALL ON FUNCTION indb.predict_array(text, double precision[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION indb.predict_array(text, double precision[]) TO indb_scorer;
