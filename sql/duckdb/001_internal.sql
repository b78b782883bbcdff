-- ducktail's own bookkeeping, idempotent. Applied at every start.
CREATE SCHEMA IF NOT EXISTS _ducktail;
CREATE SCHEMA IF NOT EXISTS history;

-- Last change applied per input stream: the source slot (inline bus) or a Kafka partition.
-- Written in the same transaction as the rows it covers: a replay skips every (lsn, seq) <= this.
CREATE TABLE IF NOT EXISTS _ducktail.progress (
  stream     VARCHAR NOT NULL,
  lsn        UBIGINT NOT NULL,
  seq        BIGINT NOT NULL,
  ack_lsn    UBIGINT NOT NULL,
  updated_at TIMESTAMPTZ NOT NULL
);

-- Every mirrored source table and the column layout last applied.
CREATE TABLE IF NOT EXISTS _ducktail.tables (
  name        VARCHAR NOT NULL,
  columns     JSON NOT NULL,
  created_at  TIMESTAMPTZ NOT NULL,
  updated_at  TIMESTAMPTZ NOT NULL
);

-- The initial copy: one row per slot; status 'copying' until every table is in, then 'done'.
CREATE TABLE IF NOT EXISTS _ducktail.snapshot (
  slot             VARCHAR NOT NULL,
  status           VARCHAR NOT NULL,
  consistent_point UBIGINT NOT NULL,
  rows             BIGINT NOT NULL,
  started_at       TIMESTAMPTZ NOT NULL,
  finished_at      TIMESTAMPTZ
);

-- Kafka bus: per owned partition, the next offset to read and the last change applied from it
-- ((lsn, ord): a message the producer wrote twice is skipped). Written in the apply transaction.
CREATE TABLE IF NOT EXISTS _ducktail.kafka_offsets (
  topic       VARCHAR NOT NULL,
  "partition" INTEGER NOT NULL,
  next_offset BIGINT NOT NULL,
  lsn         UBIGINT NOT NULL,
  ord         BIGINT NOT NULL,
  updated_at  TIMESTAMPTZ NOT NULL
);

-- Initial copy by chunks (src/warehouse/copy.ts): the plan, and each chunk marked done in the transaction of its rows.
CREATE TABLE IF NOT EXISTS _ducktail.copy_chunks (
  slot       VARCHAR NOT NULL,
  "table"    VARCHAR NOT NULL,
  chunk      INTEGER NOT NULL,
  "where"    VARCHAR NOT NULL,
  done       BOOLEAN NOT NULL,
  rows       BIGINT,
  seq_base   BIGINT,
  read_at    UBIGINT,
  applied_at TIMESTAMPTZ
);

-- A copy whose rows arrive as changes (the Kafka bus, src/warehouse/copy-seq.ts): per table, the `_seq` of the present
-- copy's first 'R' row (`base`: one past the highest `_seq` at `_lsn` 0 in the table's history when the copy's reset was
-- applied) and of its next one (`next_seq`). The warehouse numbers a copy's rows itself, in the order it applies them,
-- in the transaction that applies them: a copy that starts over never repeats a (0, seq), and leaves no gap.
CREATE TABLE IF NOT EXISTS _ducktail.copy_seq_base (
  "table"    VARCHAR NOT NULL,
  base       BIGINT NOT NULL,
  set_at     TIMESTAMPTZ NOT NULL,
  next_seq   BIGINT
);
ALTER TABLE _ducktail.copy_seq_base ADD COLUMN IF NOT EXISTS next_seq BIGINT;
