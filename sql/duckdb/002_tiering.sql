-- Tiering bookkeeping (src/tiering), idempotent. Applied at every start.
-- Readers set search_path = 'public,main' (tables of PostgreSQL's public schema unqualified): it must exist
-- before the first table arrives, or every reader connection of a fresh warehouse fails.
CREATE SCHEMA IF NOT EXISTS public;
CREATE SEQUENCE IF NOT EXISTS _ducktail.tier_file_id;
CREATE SEQUENCE IF NOT EXISTS _ducktail.tier_pass_id;

-- One archive pass (a snapshot of the manifest): what it moved, and whether it finished.
CREATE TABLE IF NOT EXISTS _ducktail.tier_passes (
  id          BIGINT NOT NULL,
  started_at  TIMESTAMPTZ NOT NULL,
  finished_at TIMESTAMPTZ,
  status      VARCHAR NOT NULL,   -- running | done | failed
  report      JSON
);

-- Every Parquet file of every tier. A file is live while retired_pass IS NULL.
CREATE TABLE IF NOT EXISTS _ducktail.tier_files (
  id           BIGINT NOT NULL,
  table_name   VARCHAR NOT NULL,  -- source table "schema.table"
  kind         VARCHAR NOT NULL,  -- current | history
  tier         VARCHAR NOT NULL,  -- warm | cold
  location     VARCHAR NOT NULL,  -- warm: absolute path; cold: file:///... or s3://bucket/key
  month        VARCHAR NOT NULL,  -- Hive partition value, YYYY-MM
  row_count    BIGINT NOT NULL,
  byte_size    BIGINT NOT NULL,
  checksum     VARCHAR NOT NULL,  -- sum(hash(row)) over the file's rows
  first_row_id BIGINT NOT NULL,   -- rows of a table are numbered across its files in archive order
  min_time     TIMESTAMPTZ,
  max_time     TIMESTAMPTZ,
  min_key      VARCHAR,
  max_key      VARCHAR,
  min_lsn      UBIGINT,
  max_lsn      UBIGINT,
  added_pass   BIGINT NOT NULL,
  retired_pass BIGINT,
  retired_at   TIMESTAMPTZ
);

-- The columns a file was written with (JSON: [{name, attnum}]): views map them to the current layout
-- after RENAME/DROP COLUMN (src/tiering/layout.ts). NULL for files written before it existed.
ALTER TABLE _ducktail.tier_files ADD COLUMN IF NOT EXISTS layout VARCHAR;

-- Archived current-state rows by key: key -> (file, row). Late updates/deletes find their row here.
CREATE TABLE IF NOT EXISTS _ducktail.tier_locator (
  table_name VARCHAR NOT NULL,
  key        VARCHAR NOT NULL,    -- key columns as DuckDB text, joined by chr(31)
  file_id    BIGINT NOT NULL,
  row        BIGINT NOT NULL      -- file_row_number inside the file
);

-- Rows of archived files that are no longer current (updated or deleted later): positions, not keys.
CREATE TABLE IF NOT EXISTS _ducktail.tier_deletes (
  file_id BIGINT NOT NULL,
  row     BIGINT NOT NULL,
  lsn     UBIGINT NOT NULL        -- the change that superseded the row (0 = unknown)
);

-- Files to delete once the grace period is over (their manifest row is already retired or never existed).
CREATE TABLE IF NOT EXISTS _ducktail.tier_trash (
  location  VARCHAR NOT NULL,
  queued_at TIMESTAMPTZ NOT NULL
);

-- The LSN of the archived version of each located row (its last change, from the history at archive
-- time; 0 = unknown, for entries made before it existed): a late change supersedes the row only when
-- its own LSN is higher, so replaying an old change never removes a newer archived version.
ALTER TABLE _ducktail.tier_locator ADD COLUMN IF NOT EXISTS lsn UBIGINT DEFAULT 0;

-- Deletion vectors: more than a few superseded rows of a file leave tier_deletes for one Parquet file
-- of positions per data file (row, lsn sorted by row), outside the Hive layout
-- (<warm_dir>/_deletes/<kind>/<table>/dv-<file id>-<pass>.parquet). dv_rows = its row count.
ALTER TABLE _ducktail.tier_files ADD COLUMN IF NOT EXISTS deletion_vector VARCHAR;
ALTER TABLE _ducktail.tier_files ADD COLUMN IF NOT EXISTS dv_rows BIGINT DEFAULT 0;

-- A cold file's deletion vector is also copied to the cold store, beside the data and outside its Hive
-- layout (<cold root>/_deletes/<kind>/<table>/dv-<file id>-<pass>.parquet), so the cold tier is complete
-- without the warm disk. DuckDB keeps reading the local vector (deletion_vector); NULL = not copied yet.
ALTER TABLE _ducktail.tier_files ADD COLUMN IF NOT EXISTS cold_vector VARCHAR;
