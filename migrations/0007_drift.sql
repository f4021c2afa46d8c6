-- Drift: the population stability index (PSI) of every feature and of the prediction,
-- per model version and day (UTC), between the training baseline stored at deploy
-- (versions.baseline, format "indb-baseline/1": see indb/baseline.py) and the logged
-- rows. 0.1 <= PSI < 0.25 is "watch", 0.25 and above "act".
--
--   PSI = sum over bins of (actual - expected) * ln(actual / expected)
--
-- with both fractions floored at 0.0001, over the baseline's bins: for numbers, the
-- bins below, between and above its edges (width_bucket) plus "missing" (NULL or NaN);
-- for categories, each known category, "other" and "missing".
--
-- The views run with the reader's privileges (security_invoker), so row-level
-- security applies: an auditor sees every call's drift. They belong to
-- indb_log_writer, so that a deployer cannot redefine them.

SET LOCAL search_path = pg_catalog, pg_temp;

DO $superuser$
BEGIN
    IF NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles AS r WHERE r.rolname OPERATOR(pg_catalog.=) current_user) THEN
        RAISE EXCEPTION 'migration 0007 adds views over the prediction log, which belongs to indb_log_writer: run indb migrate as a superuser'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
END
$superuser$;

SET LOCAL ROLE indb_log_writer;

CREATE VIEW indb.drift_bins WITH (security_invoker = true) AS
WITH spec AS (
    -- one row per version and feature (position > 0) or prediction (position 0) with a baseline
    SELECT v.model, v.version, f.ordinality::integer AS position, 'feature' AS subject, f.value ->> 0 AS name,
           v.baseline -> 'features' -> (f.value ->> 0) AS base
    FROM indb.versions AS v, pg_catalog.jsonb_array_elements(v.features) WITH ORDINALITY AS f
    WHERE v.baseline IS NOT NULL AND (v.baseline -> 'features') ? (f.value ->> 0)
    UNION ALL
    SELECT v.model, v.version, 0, 'prediction', 'prediction', v.baseline -> 'prediction'
    FROM indb.versions AS v WHERE v.baseline ? 'prediction'
), binned AS (
    SELECT s.model, s.version, s.position, s.subject, s.name, s.base, s.base ->> 'kind' AS kind,
           ARRAY(SELECT e::text::double precision FROM pg_catalog.jsonb_array_elements(s.base -> 'edges') AS e) AS edges
    FROM spec AS s
), expected AS (
    SELECT b.model, b.version, b.subject, b.name, x.bin, x.fraction
    FROM binned AS b, LATERAL (
        SELECT (e.ordinality - 1)::text AS bin, e.value::text::double precision AS fraction
        FROM pg_catalog.jsonb_array_elements(b.base -> 'fractions') WITH ORDINALITY AS e WHERE b.kind = 'numeric'
        UNION ALL
        SELECT 'c:' || k.key, k.value::text::double precision
        FROM pg_catalog.jsonb_each(b.base -> 'categories') AS k WHERE b.kind = 'categorical'
        UNION ALL
        SELECT 'other', COALESCE((b.base ->> 'other')::double precision, 0) WHERE b.kind = 'categorical'
        UNION ALL
        SELECT 'missing', COALESCE((b.base ->> 'missing')::double precision, 0)
    ) AS x
), observed AS (
    SELECT c.model, c.version, (c.called_at AT TIME ZONE 'UTC')::date AS day, b.subject, b.name,
           CASE WHEN b.kind = 'numeric' THEN
                    CASE WHEN v.num IS NULL OR v.num = 'NaN'::double precision THEN 'missing'
                         ELSE pg_catalog.width_bucket(v.num, b.edges)::text END
                ELSE
                    CASE WHEN v.txt IS NULL THEN 'missing'
                         WHEN (b.base -> 'categories') ? v.txt THEN 'c:' || v.txt
                         ELSE 'other' END
           END AS bin,
           pg_catalog.count(*) AS n
    FROM indb.prediction_log AS r
    JOIN indb.scoring_calls AS c ON c.call_id = r.call_id AND c.called_at = r.logged_at
    JOIN binned AS b ON b.model = c.model AND b.version = c.version
    CROSS JOIN LATERAL (
        SELECT CASE WHEN b.position = 0 THEN r.prediction ELSE r.features[b.position] END AS num,
               CASE WHEN b.position = 0 THEN COALESCE(r.label, r.prediction::text) ELSE r.features_text[b.position] END AS txt
    ) AS v
    GROUP BY 1, 2, 3, 4, 5, 6
), totals AS (
    SELECT o.model, o.version, o.day, o.subject, o.name, pg_catalog.sum(o.n)::bigint AS rows
    FROM observed AS o GROUP BY 1, 2, 3, 4, 5
)
SELECT t.model, t.version, t.day, t.subject, t.name, t.rows, e.bin, e.fraction AS expected,
       COALESCE(o.n, 0)::double precision / t.rows AS actual
FROM totals AS t
JOIN expected AS e ON e.model = t.model AND e.version = t.version AND e.subject = t.subject AND e.name = t.name
LEFT JOIN observed AS o ON o.model = t.model AND o.version = t.version AND o.day = t.day AND o.subject = t.subject
                        AND o.name = t.name AND o.bin = e.bin;
COMMENT ON VIEW indb.drift_bins IS 'Expected (baseline) and actual (logged) fraction of each bin, per model version, day and feature/prediction.';

CREATE VIEW indb.drift WITH (security_invoker = true) AS
SELECT x.model, x.version, x.day, x.subject, x.name, x.rows, x.psi,
       CASE WHEN x.psi >= 0.25 THEN 'act' WHEN x.psi >= 0.1 THEN 'watch' ELSE 'ok' END AS status
FROM (SELECT b.model, b.version, b.day, b.subject, b.name, b.rows,
             pg_catalog.sum((GREATEST(b.actual, 0.0001) - GREATEST(b.expected, 0.0001))
                            * pg_catalog.ln(GREATEST(b.actual, 0.0001) / GREATEST(b.expected, 0.0001))) AS psi
      FROM indb.drift_bins AS b GROUP BY 1, 2, 3, 4, 5, 6) AS x;
COMMENT ON VIEW indb.drift IS 'PSI per model version, day (UTC) and feature or prediction; status ok < 0.1 <= watch < 0.25 <= act.';

CREATE VIEW indb.drift_features WITH (security_invoker = true) AS
SELECT d.model, d.version, d.day, d.name AS feature, d.rows, d.psi, d.status FROM indb.drift AS d WHERE d.subject = 'feature';
CREATE VIEW indb.drift_prediction WITH (security_invoker = true) AS
SELECT d.model, d.version, d.day, d.rows, d.psi, d.status FROM indb.drift AS d WHERE d.subject = 'prediction';

GRANT SELECT ON indb.drift_bins, indb.drift, indb.drift_features, indb.drift_prediction TO indb_auditor;
