-- GET /v1/analytics/daily-orders: per UTC day in [$1, $2): all orders, cancelled orders,
-- revenue (price x quantity, status $3 excluded) and average order value of the non-cancelled.
-- {{...}} are identifiers checked against the table's columns ([analytics] config), never request input.
-- Grouped by the DATE and formatted after: grouping by the VARCHAR made a string per row (2x slower).
SELECT CAST(day AS VARCHAR) AS day, orders, cancelled, revenue, avg_order_value
  FROM (SELECT CAST({{time_utc}} AS DATE) AS day,
               count(*) AS orders,
               count(*) FILTER (WHERE {{status}} = $3) AS cancelled,
               coalesce(sum({{price}} * {{quantity}}) FILTER (WHERE {{status}} IS DISTINCT FROM $3), 0) AS revenue,
               CAST(round(sum({{price}} * {{quantity}}) FILTER (WHERE {{status}} IS DISTINCT FROM $3)
                          / nullif(count(*) FILTER (WHERE {{status}} IS DISTINCT FROM $3), 0), 2) AS DECIMAL(18, 2)) AS avg_order_value
          FROM {{table}}
         WHERE {{time}} >= CAST($1 AS TIMESTAMPTZ) AND {{time}} < CAST($2 AS TIMESTAMPTZ)
         GROUP BY 1)
 ORDER BY day
