-- GET /v1/analytics/customer-activity: per UTC day in [$1, $2): active customers, new ones (first order
-- ever that day, over the whole table), returning ones (active, first order on an earlier day), orders and
-- orders per active customer. Cancelled orders (status $3) and orders without a customer are not activity.
-- Two plain aggregates, no join of (day, customer) pairs: each customer's first order time (rows before $2
-- decide it), counted per day when it falls in the range; and distinct customers and orders per day.
-- A customer active on a day had the first order that day or before, so returning = active - new.
WITH firsts AS (
  SELECT min({{time}}) AS {{time}}
    FROM {{table}}
   WHERE {{time}} < CAST($2 AS TIMESTAMPTZ) AND {{status}} IS DISTINCT FROM $3 AND {{customer}} IS NOT NULL
   GROUP BY {{customer}}
), new_per_day AS (
  SELECT CAST({{time_utc}} AS DATE) AS day, count(*) AS new_customers
    FROM firsts
   WHERE {{time}} >= CAST($1 AS TIMESTAMPTZ)
   GROUP BY 1
), active AS (
  SELECT CAST({{time_utc}} AS DATE) AS day, count(DISTINCT {{customer}}) AS active_customers, count(*) AS orders
    FROM {{table}}
   WHERE {{time}} >= CAST($1 AS TIMESTAMPTZ) AND {{time}} < CAST($2 AS TIMESTAMPTZ)
     AND {{status}} IS DISTINCT FROM $3 AND {{customer}} IS NOT NULL
   GROUP BY 1
)
SELECT CAST(a.day AS VARCHAR) AS day,
       a.active_customers,
       coalesce(n.new_customers, 0) AS new_customers,
       a.active_customers - coalesce(n.new_customers, 0) AS returning_customers,
       a.orders,
       CAST(round(a.orders / a.active_customers, 2) AS DECIMAL(18, 2)) AS orders_per_customer
  FROM active a LEFT JOIN new_per_day n USING (day)
 ORDER BY a.day
