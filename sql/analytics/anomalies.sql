-- GET /v1/analytics/anomalies: per {{unit}} bucket, revenue (status $3 excluded) and order count, each
-- scored against the previous {{window}} buckets (rolling mean and sample standard deviation, empty
-- buckets as 0). Buckets from $4 to $2 whose |z| >= $5 are returned, one row per bucket and metric.
-- $1 is $4 minus the window, so the first reported bucket already has a full window.
WITH buckets AS (
  SELECT generate_series AS bucket
    FROM generate_series(date_trunc('{{unit}}', CAST(CAST($1 AS TIMESTAMPTZ) AT TIME ZONE 'UTC' AS TIMESTAMP)),
                         CAST(CAST($2 AS TIMESTAMPTZ) AT TIME ZONE 'UTC' AS TIMESTAMP) - INTERVAL 1 MICROSECOND,
                         INTERVAL 1 {{unit}})
), agg AS (
  SELECT date_trunc('{{unit}}', {{time_utc}}) AS bucket,
         count(*) AS orders,
         sum({{price}} * {{quantity}}) FILTER (WHERE {{status}} IS DISTINCT FROM $3) AS revenue
    FROM {{table}}
   WHERE {{time}} >= CAST($1 AS TIMESTAMPTZ) AND {{time}} < CAST($2 AS TIMESTAMPTZ)
   GROUP BY 1
), series AS (
  SELECT b.bucket, CAST(coalesce(a.revenue, 0) AS DOUBLE) AS revenue, CAST(coalesce(a.orders, 0) AS DOUBLE) AS orders
    FROM buckets b LEFT JOIN agg a USING (bucket)
), scored AS (
  SELECT bucket, revenue, orders,
         avg(revenue) OVER w AS revenue_mean, stddev_samp(revenue) OVER w AS revenue_sd,
         avg(orders) OVER w AS orders_mean, stddev_samp(orders) OVER w AS orders_sd,
         count(*) OVER w AS n
    FROM series
  WINDOW w AS (ORDER BY bucket ROWS BETWEEN {{window}} PRECEDING AND 1 PRECEDING)
), metrics AS (
  SELECT bucket, 'revenue' AS metric, revenue AS value, revenue_mean AS mean, revenue_sd AS stddev, n FROM scored
  UNION ALL
  SELECT bucket, 'orders', orders, orders_mean, orders_sd, n FROM scored
)
SELECT strftime(bucket, '%Y-%m-%dT%H:%M:%SZ') AS bucket, metric, value,
       round(mean, 4) AS mean, round(stddev, 4) AS stddev, round((value - mean) / stddev, 4) AS score
  FROM metrics
 WHERE n = {{window}} AND stddev > 0
   AND bucket >= CAST(CAST($4 AS TIMESTAMPTZ) AT TIME ZONE 'UTC' AS TIMESTAMP)
   AND abs((value - mean) / stddev) >= $5
 ORDER BY bucket, metric
