// The API benchmarks' orders table (the demo's schema) generated inside DuckDB: `rows` rows over 90 days
// ending 2026-11-25 UTC; 'ordered': order_date rising with order_id, as a real table is written (DuckDB's
// zone maps skip row groups outside a range), 'random': shuffled (every query scans the whole table).
export const BENCH_DAYS = 90;

/** CREATE TABLE `table` AS ... for the given size and layout. */
export function benchOrdersSql(table: string, rows: number, layout: 'ordered' | 'random' = 'ordered'): string {
  const spanUs = BENCH_DAYS * 86_400_000_000;
  const offset = layout === 'random' ? `CAST(hash(g * 31) % ${spanUs} AS BIGINT)` : `CAST((${rows} - g) * ${spanUs / rows} AS BIGINT)`;
  return `CREATE TABLE ${table} AS
  SELECT g AS order_id, CAST(1 + hash(g) % 100000 AS BIGINT) AS customer_id, 1 + g % 50 AS product_id,
         CAST(5 + CAST(hash(g * 7) % 20000 AS BIGINT) / 100.0 AS DECIMAL(10,2)) AS price, CAST(1 + g % 5 AS INTEGER) AS quantity,
         ['pending', 'paid', 'shipped', 'delivered', 'cancelled'][CAST(1 + hash(g * 13) % 5 AS BIGINT)] AS status,
         TIMESTAMPTZ '2026-11-25 00:00:00+00' - to_microseconds(${offset}) AS order_date
    FROM range(${rows}) t(g)`;
}
