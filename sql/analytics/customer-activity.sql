-- GET /v1/analytics/customer-activity: per UTC day in [$1, $2): active customers, new ones (first order
-- ever that day, over the whole table), returning ones, orders and orders per active customer.
-- Cancelled orders (status $3) are not activity.
WITH o AS (
  SELECT {{customer}} AS customer, CAST({{time_utc}} AS DATE) AS day, {{time}} AS t FROM {{table}}
   WHERE {{status}} IS DISTINCT FROM $3
), firsts AS (
  SELECT customer, min(day) AS first_day FROM o GROUP BY customer
), daily AS (
  SELECT day, customer, count(*) AS n
    FROM o WHERE t >= CAST($1 AS TIMESTAMPTZ) AND t < CAST($2 AS TIMESTAMPTZ)
   GROUP BY day, customer
)
SELECT CAST(d.day AS VARCHAR) AS day,
       count(*) AS active_customers,
       count(*) FILTER (WHERE f.first_day = d.day) AS new_customers,
       count(*) FILTER (WHERE f.first_day < d.day) AS returning_customers,
       sum(d.n) AS orders,
       CAST(round(sum(d.n) / count(*), 2) AS DECIMAL(18, 2)) AS orders_per_customer
  FROM daily d JOIN firsts f USING (customer)
 GROUP BY d.day
 ORDER BY d.day
