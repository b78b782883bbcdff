/**
 * The change model: the contract between the pipeline's stages. Source produces it, the bus carries
 * it, the warehouse applies it; none of them owns it. Values stay exact: PostgreSQL's text form (or
 * binary), SQL NULL, or UNCHANGED; LSNs and timestamps are bigint.
 */

/** Marker for an unchanged TOASTed value ('u' in pgoutput): distinct from SQL NULL, never written as NULL. */
export const UNCHANGED: unique symbol = Symbol('unchanged-toast');
export type Unchanged = typeof UNCHANGED;

/** One column value: text form, SQL NULL, unchanged TOAST, or binary. */
export type TupleValue = string | null | Unchanged | Uint8Array;
/** One row's values in attribute order. */
export type TupleData = TupleValue[];

/** One column of a source table. */
export interface ColumnSchema {
  /** true when the column is part of the replica identity (usually the primary key). */
  key: boolean;
  name: string;
  /** PostgreSQL type OID and type modifier (atttypmod; -1 when none). */
  typeOid: number;
  typeMod: number;
  /**
   * For a type that is not built in, what the source's catalog says it is: 'enum', 'composite',
   * 'range', 'multirange', or an array of one ('enum[]', ...). Domains never appear: the source
   * replaces them by their base type (typeOid/typeMod). Absent for built-in types.
   */
  userType?: string;
  /**
   * PostgreSQL's column number (pg_attribute.attnum) when the source knows it: unchanged by a rename,
   * so the warehouse tells a renamed column from a dropped and an added one.
   */
  attnum?: number;
  /**
   * The value rows that existed before an ADD COLUMN ... DEFAULT have (pg_attribute.attmissingval,
   * PostgreSQL text; PostgreSQL writes no row changes for it). Absent when none.
   */
  missing?: string;
  /**
   * The column has a default or is generated (pg_attribute.atthasdef, attgenerated). A column added
   * with one but without `missing` was filled by a table rewrite PostgreSQL does not decode (a
   * volatile default such as clock_timestamp(), serial, identity, a stored generated column): the
   * warehouse then copies the table again. Absent when unknown or false.
   */
  hasDefault?: boolean;
}

/** The shape of one source table as the warehouse needs it (from a pgoutput Relation or the catalog). */
export interface TableSchema {
  /** PostgreSQL schema name, e.g. "public". */
  schema: string;
  /** PostgreSQL table name, e.g. "orders". */
  table: string;
  /** Columns in attribute order; `key` marks the replica identity (primary key). */
  columns: ColumnSchema[];
}

/**
 * One row change. `op`: 'R' snapshot read, 'I' insert, 'U' update, 'D' delete, 'T' truncate.
 * For 'D', `row` holds the old key columns (others null or the whole old row with REPLICA IDENTITY FULL).
 * For 'U' whose key changed, `oldKey` holds the old key columns.
 * Values are PostgreSQL text output (exact), null, or UNCHANGED (TOAST not sent: fill from the current row).
 */
export interface Change {
  op: 'R' | 'I' | 'U' | 'D' | 'T';
  /** "schema.table", a key of `ChangeBatch.tables`. */
  table: string;
  row: TupleData;
  oldKey?: TupleData;
  /** Commit LSN (Begin.finalLsn) of the transaction; 0n for snapshot rows. */
  lsn: bigint;
  /** Position of the change inside its transaction, from 0: (lsn, seq) orders every change. */
  seq: number;
  /** Commit time, microseconds since the Unix epoch. */
  commitTimeUs: bigint;
  /** Source transaction id (pgoutput Begin.xid), when known; carried to Kafka as `source.txId`. */
  xid?: number;
  /**
   * The values of `row` and `oldKey` as pgoutput TupleData bytes, when the source kept them (the Kafka bus
   * asks for it, src/change/wire.ts): a bus may carry these bytes instead of strings. `row` and `oldKey`
   * are then the same values decoded on first read. Absent: `row` and `oldKey` are all there is.
   */
  wire?: WireRows;
}

/**
 * Where a change's values are in pgoutput TupleData form (Int16 count, then per value 'n', 'u', or 't'/'b' with an
 * Int32 length and the bytes; text is valid UTF-8): `row` at [row, rowEnd) of `bytes`, the old key at
 * [oldKey, oldKeyEnd) or oldKey = -1 when none.
 */
export interface WireRows {
  bytes: Uint8Array;
  row: number;
  rowEnd: number;
  oldKey: number;
  oldKeyEnd: number;
}

/** A run of changes in commit order, as published to the bus and applied by the warehouse in one transaction. */
export interface ChangeBatch {
  tables: Map<string, TableSchema>;
  changes: Change[];
  /**
   * End LSN of the last transaction that is complete in this batch (or in an earlier one),
   * i.e. the position the source may confirm to PostgreSQL once this batch is durable.
   * Undefined when no transaction completes here (a large transaction split in several batches).
   */
  ackLsn?: bigint;
  /**
   * Table layouts to apply without row changes (a DDL followed by no DML, sent by the source when it is
   * caught up). The inline bus carries them; the warehouse applies them like the layout of a change.
   */
  layouts?: TableSchema[];
  /** Initial-copy bookkeeping recorded in the same warehouse transaction as the batch's rows. */
  snapshot?: SnapshotMarker;
  /**
   * Set by the Kafka consumer: the next offset (and last applied change) of each partition the batch
   * consumed, stored in the same warehouse transaction as its rows. Such batches are not filtered by the
   * stream's (lsn, seq) position: partitions interleave, and the consumer dedups per partition itself.
   */
  offsets?: PartitionOffset[];
  /**
   * Consistent point of the copy whose rows (lsn 0) this batch carries: the initial copy or a re-copy of
   * some tables while streaming. The Kafka bus orders those rows at this point inside each partition.
   */
  copyPoint?: bigint;
  /**
   * A chunk of a table's initial copy as PostgreSQL's COPY output (inline bus only): the warehouse loads
   * it with DuckDB's CSV reader and records the chunk as done in the same transaction as its rows.
   */
  copyChunk?: CopyChunk;
  /** The chunks the initial copy will read (sent with its 'copying' marker), so a restart resumes at the next one. */
  copyPlan?: { slot: string; chunks: CopyChunkPlan[] };
  /**
   * Changes of a re-copied table read from its copy's own slot while the main stream went on (catch-up,
   * src/source/README.md): applied as they come, without the stream's (lsn, seq) filter and without
   * moving the stream's position, which is already past them.
   */
  catchUp?: boolean;
  /**
   * The end of a re-copy while streaming: `table`'s recorded plan under `slot` is replaced by its hand-over
   * point `at` (the main stream applies the table's changes from commit LSN `at` on), in the same transaction
   * as the catch-up's last changes.
   */
  copyHandoff?: { slot: string; table: string; at: bigint };
}

/** One planned chunk of an initial copy: a key (or ctid) range of one table. */
export interface CopyChunkPlan {
  table: string;
  /** Position of the chunk in the plan, from 0. */
  chunk: number;
  /** The SQL condition that selects the chunk's rows (e.g. `"id" >= 1 AND "id" < 100001`); '' = the whole table. */
  where: string;
}

/**
 * A copied chunk: the rows of `CopyChunkPlan.where` as `COPY (...) TO STDOUT (FORMAT csv, DELIMITER E'\t',
 * NULL '\N')` wrote them (PostgreSQL's text output of every column, in the schema's column order).
 */
export interface CopyChunk {
  slot: string;
  table: string;
  chunk: number;
  csv: Uint8Array;
  /**
   * Rows in `csv` as the source counted them (PostgreSQL's CopyData messages, one per row, or its lines): never
   * fewer than the rows. The warehouse numbers the chunk's history rows within this span (it counts the lines when absent).
   */
  rows?: number;
  /**
   * WAL position no later than the snapshot the chunk was read in (the consistent point for the slot's
   * exported snapshot; pg_current_wal_lsn() after a later snapshot when a copy resumes). Changes of the
   * table up to it are replays over newer rows: the warehouse applies them as upserts.
   */
  readAt: bigint;
  commitTimeUs: bigint;
}

/** Where the warehouse stands in one Kafka partition: the next offset to read and the last change applied. */
export interface PartitionOffset {
  topic: string;
  partition: number;
  next: bigint;
  /** (lsn, ord) of the last change applied from this partition: a replayed change at or before it is skipped. */
  lsn: bigint;
  ord: number;
}

/** Marks the start ('copying') or end ('done') of the initial copy of a slot. */
export interface SnapshotMarker {
  slot: string;
  status: 'copying' | 'done';
  consistentPoint: bigint;
  rows: number;
}

/** Where the bus delivers batches: the warehouse. Resolves once the batch is committed. */
export interface BatchSink {
  apply(batch: ChangeBatch): Promise<void>;
}
