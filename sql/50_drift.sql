-- indb:requires superuser
-- Views over the prediction log for drift monitoring (indb drift).
--
-- A repeatable definition: indb migrate re-creates it whenever this file changes.

SET LOCAL search_path = pg_catalog, pg_temp;

CREATE OR REPLACE VIEW indb.drift_bins WITH (security_invoker=true) AS
 WITH spec AS (
         SELECT v.model,
            v.version,
            f.ordinality::integer AS "position",
            'feature'::text AS subject,
            f.value ->> 0 AS name,
            (v.baseline -> 'features'::text) -> (f.value ->> 0) AS base
           FROM indb.versions v,
            LATERAL jsonb_array_elements(v.features) WITH ORDINALITY f(value, ordinality)
          WHERE v.baseline IS NOT NULL AND (v.baseline -> 'features'::text) ? (f.value ->> 0)
        UNION ALL
         SELECT v.model,
            v.version,
            0,
            'prediction'::text,
            'prediction'::text,
            v.baseline -> 'prediction'::text
           FROM indb.versions v
          WHERE v.baseline ? 'prediction'::text
        ), binned AS (
         SELECT s.model,
            s.version,
            s."position",
            s.subject,
            s.name,
            s.base,
            s.base ->> 'kind'::text AS kind,
            ARRAY( SELECT e_1.value::text::double precision AS e
                   FROM jsonb_array_elements(s.base -> 'edges'::text) e_1(value)) AS edges
           FROM spec s
        ), expected AS (
         SELECT b.model,
            b.version,
            b.subject,
            b.name,
            x.bin,
            x.fraction
           FROM binned b,
            LATERAL ( SELECT (e_1.ordinality - 1)::text AS bin,
                    e_1.value::text::double precision AS fraction
                   FROM jsonb_array_elements(b.base -> 'fractions'::text) WITH ORDINALITY e_1(value, ordinality)
                  WHERE b.kind = 'numeric'::text
                UNION ALL
                 SELECT 'c:'::text || k.key,
                    k.value::text::double precision AS value
                   FROM jsonb_each(b.base -> 'categories'::text) k(key, value)
                  WHERE b.kind = 'categorical'::text
                UNION ALL
                 SELECT 'other'::text,
                    COALESCE((b.base ->> 'other'::text)::double precision, 0::double precision) AS "coalesce"
                  WHERE b.kind = 'categorical'::text
                UNION ALL
                 SELECT 'missing'::text,
                    COALESCE((b.base ->> 'missing'::text)::double precision, 0::double precision) AS "coalesce") x
        ), observed AS (
         SELECT c.model,
            c.version,
            (c.called_at AT TIME ZONE 'UTC'::text)::date AS day,
            b.subject,
            b.name,
            x.bin,
            count(*) AS n
           FROM indb.prediction_log r
             JOIN indb.scoring_calls c ON c.call_id = r.call_id AND c.called_at = r.logged_at
             JOIN binned b ON b.model = c.model AND b.version = c.version
             CROSS JOIN LATERAL ( SELECT
                        CASE
                            WHEN b."position" = 0 THEN r.prediction
                            ELSE r.features[b."position"]
                        END AS num,
                        CASE
                            WHEN b."position" = 0 THEN COALESCE(r.label, r.prediction::text)
                            ELSE r.features_text[b."position"]
                        END AS txt) v
             CROSS JOIN LATERAL ( SELECT
                        CASE
                            WHEN b.kind = 'numeric'::text THEN
                            CASE
                                WHEN v.num IS NULL OR v.num = 'NaN'::double precision THEN 'missing'::text
                                ELSE width_bucket(v.num, b.edges)::text
                            END
                            ELSE
                            CASE
                                WHEN v.txt IS NULL THEN 'missing'::text
                                WHEN (b.base -> 'categories'::text) ? v.txt THEN 'c:'::text || v.txt
                                ELSE 'other'::text
                            END
                        END AS bin) x
          GROUP BY c.model, c.version, ((c.called_at AT TIME ZONE 'UTC'::text)::date), b.subject, b.name, x.bin
        ), totals AS (
         SELECT o_1.model,
            o_1.version,
            o_1.day,
            o_1.subject,
            o_1.name,
            sum(o_1.n)::bigint AS rows
           FROM observed o_1
          GROUP BY o_1.model, o_1.version, o_1.day, o_1.subject, o_1.name
        )
 SELECT t.model,
    t.version,
    t.day,
    t.subject,
    t.name,
    t.rows,
    e.bin,
    e.fraction AS expected,
    COALESCE(o.n, 0::bigint)::double precision / t.rows::double precision AS actual
   FROM totals t
     JOIN expected e ON e.model = t.model AND e.version = t.version AND e.subject = t.subject AND e.name = t.name
     LEFT JOIN observed o ON o.model = t.model AND o.version = t.version AND o.day = t.day AND o.subject = t.subject AND o.name = t.name AND o.bin = e.bin;
COMMENT ON VIEW indb.drift_bins IS 'Expected (baseline) and actual (logged) fraction of each bin, per model version, day and feature/prediction.';

CREATE OR REPLACE VIEW indb.drift_features WITH (security_invoker=true) AS
 SELECT d.model,
    d.version,
    d.day,
    d.name AS feature,
    d.rows,
    d.psi,
    d.status
   FROM indb.drift d
  WHERE d.subject = 'feature'::text;

CREATE OR REPLACE VIEW indb.drift_prediction WITH (security_invoker=true) AS
 SELECT d.model,
    d.version,
    d.day,
    d.rows,
    d.psi,
    d.status
   FROM indb.drift d
  WHERE d.subject = 'prediction'::text;

CREATE OR REPLACE VIEW indb.drift WITH (security_invoker=true) AS
 SELECT x.model,
    x.version,
    x.day,
    x.subject,
    x.name,
    x.rows,
    x.psi,
        CASE
            WHEN x.psi >= 0.25::double precision THEN 'act'::text
            WHEN x.psi >= 0.1::double precision THEN 'watch'::text
            ELSE 'ok'::text
        END AS status
   FROM ( SELECT b.model,
            b.version,
            b.day,
            b.subject,
            b.name,
            b.rows,
            sum((GREATEST(b.actual, 0.0001::double precision) - GREATEST(b.expected, 0.0001::double precision)) * ln(GREATEST(b.actual, 0.0001::double precision) / GREATEST(b.expected, 0.0001::double precision))) AS psi
           FROM indb.drift_bins b
          GROUP BY b.model, b.version, b.day, b.subject, b.name, b.rows) x;
COMMENT ON VIEW indb.drift IS 'PSI per model version, day (UTC) and feature or prediction; status ok < 0.1 <= watch < 0.25 <= act.';

ALTER VIEW indb.drift_bins OWNER TO indb_log_writer;
ALTER VIEW indb.drift_features OWNER TO indb_log_writer;
ALTER VIEW indb.drift_prediction OWNER TO indb_log_writer;
ALTER VIEW indb.drift OWNER TO indb_log_writer;
REVOKE ALL ON indb.drift_bins, indb.drift_features, indb.drift_prediction, indb.drift FROM PUBLIC;
GRANT SELECT ON indb.drift_bins, indb.drift_features, indb.drift_prediction, indb.drift TO indb_auditor;
