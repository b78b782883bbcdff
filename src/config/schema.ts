import * as v from 'valibot';
import { validateCronExpression } from 'cron';

const IDENT = /^[a-z_][a-z0-9_]{0,62}$/;
const TABLE = /^[A-Za-z_][A-Za-z0-9_$]*\.[A-Za-z_][A-Za-z0-9_$]*$/;
const HOST_PORT = /^[A-Za-z0-9.\-_[\]:]+:\d{1,5}$/;
const SIZE = /^\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$/i;

const int = (min: number, what: string) =>
  v.pipe(v.number(`must be a number (${what})`), v.integer(`must be a whole number (${what})`), v.minValue(min, `must be >= ${min} (${what})`));

/** [source]: the PostgreSQL to replicate. */
const Source = v.object({
  url: v.optional(v.pipe(v.string(), v.regex(/^postgres(ql)?:\/\/./, 'must be a URL like postgres://user:password@host:5432/dbname')), 'postgres://postgres@127.0.0.1:5432/postgres'),
  slot: v.optional(v.pipe(v.string(), v.regex(IDENT, 'must be a slot name: lower-case letters, digits and _ (at most 63)')), 'ducktail'),
  publication: v.optional(v.pipe(v.string(), v.regex(IDENT, 'must be an identifier: lower-case letters, digits and _ (at most 63)')), 'ducktail'),
  tables: v.optional(v.array(v.pipe(v.string(), v.regex(TABLE, 'each table must be written "schema.table"'))), []),
  enabled: v.optional(v.boolean('must be true or false'), true),
  status_interval_ms: v.optional(int(100, 'milliseconds between status updates to PostgreSQL'), 10_000),
  receive_timeout_s: v.optional(
    int(0, 'seconds without a message from PostgreSQL after which the replication connection is taken as cut and reopened; 0 = never'),
    60,
  ),
  heartbeat_interval_s: v.optional(int(0, 'seconds between heartbeats that keep the slot advancing on a quiet database; 0 = off'), 30),
  connect_timeout_s: v.optional(int(1, 'seconds'), 30),
  copy_workers: v.optional(v.pipe(int(1, 'connections reading the initial copy at once'), v.maxValue(64, 'must be <= 64 (connections reading the initial copy at once)')), 2),
  copy_chunk_rows: v.optional(int(1000, 'rows per chunk of the initial copy'), 250_000),
});

/** [bus]: inline (embedded) or Kafka. */
const Bus = v.pipe(
  v.object({
    kind: v.optional(v.picklist(['inline', 'kafka'], 'must be "inline" or "kafka"'), 'inline'),
    brokers: v.optional(v.array(v.pipe(v.string(), v.regex(HOST_PORT, 'each broker must be host:port'))), []),
    topic_prefix: v.optional(v.pipe(v.string(), v.regex(/^[A-Za-z0-9._-]{1,200}$/, 'letters, digits, ".", "_" and "-" only')), 'ducktail'),
    partitions: v.optional(int(1, 'partitions per topic'), 6),
    instance: v.optional(int(0, 'this instance number, from 0'), 0),
    instances: v.optional(int(1, 'number of instances'), 1),
    replication_factor: v.optional(int(-1, 'replicas of topics ducktail creates; -1 = the broker default'), -1),
    idempotent: v.optional(v.boolean('must be true or false'), true),
    compression: v.optional(v.picklist(['none', 'gzip', 'snappy', 'lz4', 'zstd'], 'must be one of none, gzip, snappy, lz4, zstd'), 'none'),
    event_schema: v.optional(v.picklist(['embedded', 'topic'], 'must be "embedded" (a schema block in every event) or "topic" (payload only, layouts on <topic_prefix>-schemas)'), 'embedded'),
    max_lag: v.optional(int(0, 'messages the local consumer may lag before publishing waits; 0 = no limit'), 20_000),
    max_partition_lag: v.optional(int(0, 'messages one partition of the local consumer may lag before publishing waits; 0 = no limit'), 20_000),
    linger_ms: v.optional(int(0, 'milliseconds a publish waits to send with the next'), 5),
    max_batch_bytes: v.optional(int(1024, "bytes of one partition's record batch per send (keys + values, uncompressed); keep below the brokers' message.max.bytes"), 1_000_000),
    dead_letter_topic: v.optional(v.pipe(v.string(), v.regex(/^[A-Za-z0-9._-]{0,249}$/, 'letters, digits, ".", "_" and "-" only')), ''),
  }),
  v.forward(v.check((b) => b.kind !== 'kafka' || b.brokers.length > 0, 'bus.kind = "kafka" needs at least one broker, e.g. brokers = ["127.0.0.1:9092"]'), ['brokers']),
  v.forward(v.check((b) => b.instance < b.instances, 'must be lower than bus.instances (instances are numbered from 0)'), ['instance']),
);

/** [warehouse]: the embedded DuckDB. */
const Warehouse = v.object({
  path: v.optional(v.pipe(v.string(), v.minLength(1, 'must be a file path')), 'data/ducktail.duckdb'),
  memory_limit: v.optional(v.pipe(v.string(), v.regex(SIZE, 'must be a size like "512MB" or "2GB"')), '2GB'),
  threads: v.optional(int(1, 'DuckDB worker threads'), 2),
  batch_rows: v.optional(int(1, 'changes per warehouse transaction'), 10_000),
  batch_ms: v.optional(int(1, 'milliseconds a batch may wait'), 200),
  batch_adaptive: v.optional(v.boolean(), true),
  checkpoint_wal_mb: v.optional(int(1, 'MB of DuckDB WAL between checkpoints'), 64),
});

/** [tiering]: hot DuckDB, warm local Parquet, cold Parquet in S3 or a folder. */
const Tiering = v.object({
  hot_days: v.optional(int(0, 'days'), 7),
  warm_days: v.optional(int(0, 'days'), 30),
  warm_dir: v.optional(v.pipe(v.string(), v.minLength(1, 'must be a folder path')), 'data/warm'),
  cold_url: v.optional(v.pipe(v.string(), v.regex(/^(s3:\/\/[a-z0-9.-]{3,63}(\/.*)?|file:\/\/.+)$/, 'must be s3://bucket/prefix or file:///folder')), 'file://data/cold'),
  s3_endpoint: v.optional(v.string(), ''),
  s3_region: v.optional(v.string(), 'us-east-1'),
  s3_access_key_id: v.optional(v.string(), ''),
  s3_secret_access_key: v.optional(v.string(), ''),
  schedule: v.optional(
    v.pipe(v.string(), v.check((s) => validateCronExpression(s).valid, 'must be a cron expression like "0 3 * * *"')),
    '0 3 * * *',
  ),
  grace_minutes: v.optional(int(0, 'minutes a replaced file is kept before deletion'), 60),
  cold_cache_dir: v.optional(v.pipe(v.string(), v.minLength(1, 'must be a folder path')), 'data/cold-cache'),
  cold_cache_size: v.optional(v.pipe(v.string(), v.regex(SIZE, 'must be a size like "512MB" or "2GB"')), '2GB'),
  compact_min_files: v.optional(int(2, 'files of one month that trigger compaction'), 8),
  compact_deleted_ratio: v.optional(v.pipe(v.number(), v.minValue(0.01), v.maxValue(1, 'a ratio between 0.01 and 1')), 0.3),
  max_file_rows: v.optional(int(1, 'rows of one Parquet file; a larger month is split by key'), 8_000_000),
  max_file_size: v.optional(v.pipe(v.string(), v.regex(SIZE, 'must be a size like "256MB"')), '256MB'),
  deletion_vector_min_rows: v.optional(int(1, 'inline deletes of a file that go to its deletion vector'), 64),
  tables: v.optional(
    v.record(
      v.pipe(v.string(), v.regex(TABLE, 'table keys must be "schema.table"')),
      v.object({
        time_column: v.pipe(v.string(), v.minLength(1, 'must name a timestamp column')),
        retention_days: v.optional(int(1, 'days archived data is kept; absent = forever')),
      }),
    ),
    {},
  ),
});

/** [api]: the HTTP API. */
const Api = v.object({
  listen: v.optional(v.pipe(v.string(), v.regex(HOST_PORT, 'must be host:port, e.g. "127.0.0.1:8080"')), '127.0.0.1:8080'),
  tokens: v.optional(
    v.array(
      v.object({
        token: v.pipe(v.string(), v.minLength(16, 'tokens must be at least 16 characters')),
        scope: v.picklist(['read', 'admin'], 'must be "read" or "admin"'),
      }),
    ),
    [],
  ),
  /** Listening beyond loopback without tokens is refused unless this is true. */
  allow_unauthenticated_remote: v.optional(v.boolean('must be true or false'), false),
  body_limit_bytes: v.optional(int(1024, 'largest accepted request body in bytes'), 1_048_576),
  query_timeout_ms: v.optional(int(100, 'milliseconds before a query is cancelled'), 30_000),
});

/** [log] */
const Log = v.object({
  level: v.optional(v.picklist(['debug', 'info', 'warn', 'error'], 'must be debug, info, warn or error'), 'info'),
  format: v.optional(v.picklist(['text', 'json'], 'must be "text" or "json"'), 'text'),
});

const COLUMN = v.pipe(v.string(), v.regex(/^[A-Za-z_][A-Za-z0-9_$]*$/, 'must be a column name (letters, digits, _)'));

/** [analytics]: which table and columns the business endpoints read (defaults: the demo shop). */
const Analytics = v.object({
  table: v.optional(v.pipe(v.string(), v.regex(TABLE, 'must be written "schema.table"')), 'public.orders'),
  time_column: v.optional(COLUMN, 'order_date'),
  price_column: v.optional(COLUMN, 'price'),
  quantity_column: v.optional(COLUMN, 'quantity'),
  status_column: v.optional(COLUMN, 'status'),
  customer_column: v.optional(COLUMN, 'customer_id'),
  cancelled_status: v.optional(v.string(), 'cancelled'),
  anomaly_bucket: v.optional(v.picklist(['1m', '1h', '1d'], 'must be "1m", "1h" or "1d"'), '1m'),
  anomaly_window: v.optional(int(2, 'buckets in the rolling window'), 30),
  anomaly_threshold: v.optional(v.pipe(v.number('must be a number'), v.minValue(0.1, 'must be > 0 (|z-score|)')), 3),
});

/** [alerts]: thresholds reflected in /readyz (degraded) and /metrics; defaults from the original pipeline's analysis. */
const Alerts = v.object({
  replication_lag_s: v.optional(v.pipe(v.number('must be a number'), v.minValue(0)), 30),
  consumer_lag_messages: v.optional(int(0, 'messages'), 1000),
  batch_apply_s: v.optional(v.pipe(v.number('must be a number'), v.minValue(0)), 5),
  query_s: v.optional(v.pipe(v.number('must be a number'), v.minValue(0)), 2),
});

/** [demo]: only for `ducktail demo`. */
const Demo = v.object({
  rate: v.optional(v.pipe(v.number('must be a number'), v.minValue(0.1, 'must be > 0 (operations per second)')), 20),
  data_dir: v.optional(v.pipe(v.string(), v.minLength(1)), '.ducktail-demo'),
  port: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(65535, 'must be a TCP port')), 8080),
});

/** The whole file. */
export const ConfigSchema = v.object({
  source: v.optional(Source, {}),
  bus: v.optional(Bus, {}),
  warehouse: v.optional(Warehouse, {}),
  tiering: v.optional(Tiering, {}),
  api: v.optional(Api, {}),
  log: v.optional(Log, {}),
  analytics: v.optional(Analytics, {}),
  alerts: v.optional(Alerts, {}),
  demo: v.optional(Demo, {}),
});

/** The validated configuration with every default applied. */
export type Config = v.InferOutput<typeof ConfigSchema>;
