-- GET /v1/analytics/revenue: revenue (status $3 excluded) and orders per {{unit}} bucket (UTC) in [$1, $2);
-- every bucket of the range is present, empty ones as 0.
WITH buckets AS (
  SELECT generate_series AS bucket
    FROM generate_series(date_trunc('{{unit}}', CAST(CAST($1 AS TIMESTAMPTZ) AT TIME ZONE 'UTC' AS TIMESTAMP)),
                         CAST(CAST($2 AS TIMESTAMPTZ) AT TIME ZONE 'UTC' AS TIMESTAMP) - INTERVAL 1 MICROSECOND,
                         INTERVAL 1 {{unit}})
), agg AS (
  SELECT date_trunc('{{unit}}', {{time_utc}}) AS bucket,
         count(*) AS orders,
         sum({{price}} * {{quantity}}) AS revenue
    FROM {{table}}
   WHERE {{time}} >= CAST($1 AS TIMESTAMPTZ) AND {{time}} < CAST($2 AS TIMESTAMPTZ)
     AND {{status}} IS DISTINCT FROM $3
   GROUP BY 1
)
SELECT strftime(b.bucket, '%Y-%m-%dT%H:%M:%SZ') AS bucket,
       coalesce(a.orders, 0) AS orders,
       coalesce(a.revenue, 0) AS revenue
  FROM buckets b LEFT JOIN agg a USING (bucket)
 ORDER BY b.bucket
