-- GET /v1/analytics/top-customers: customers by revenue (status $3 excluded) in [$1, $2), best $4.
SELECT {{customer}} AS customer,
       count(*) AS orders,
       sum({{price}} * {{quantity}}) AS revenue,
       strftime(min({{time_utc}}), '%Y-%m-%dT%H:%M:%SZ') AS first_order,
       strftime(max({{time_utc}}), '%Y-%m-%dT%H:%M:%SZ') AS last_order
  FROM {{table}}
 WHERE {{time}} >= CAST($1 AS TIMESTAMPTZ) AND {{time}} < CAST($2 AS TIMESTAMPTZ)
   AND {{status}} IS DISTINCT FROM $3
 GROUP BY 1
 ORDER BY revenue DESC, customer
 LIMIT $4
