-- Values PostgreSQL holds that their DuckDB column cannot hold exactly (NaN or ±Infinity in a
-- numeric, an unconstrained numeric past DECIMAL(38,18)): the column stores NULL and the exact
-- PostgreSQL text is kept here, written in the same transaction as the row (docs/TYPES.md).
CREATE TABLE IF NOT EXISTS _ducktail.unfit_values (
  table_name  VARCHAR NOT NULL,
  column_name VARCHAR NOT NULL,
  -- The row's key as a JSON array of PostgreSQL text values, in key column order.
  key         VARCHAR NOT NULL,
  lsn         UBIGINT NOT NULL,
  seq         INTEGER NOT NULL,
  value       VARCHAR NOT NULL,
  recorded_at TIMESTAMPTZ NOT NULL
);
