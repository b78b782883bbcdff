-- GET /v1/analytics/orders-by-status: orders and their amount (price x quantity) per status in [$1, $2),
-- most frequent first; cancelled orders are listed like any other status here.
SELECT {{status}} AS status,
       count(*) AS orders,
       sum({{price}} * {{quantity}}) AS amount
  FROM {{table}}
 WHERE {{time}} >= CAST($1 AS TIMESTAMPTZ) AND {{time}} < CAST($2 AS TIMESTAMPTZ)
 GROUP BY 1
 ORDER BY orders DESC, status
