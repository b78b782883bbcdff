import type { DuckDBConnection } from '@duckdb/node-api';
import type { PartitionOffset, SnapshotMarker } from '../change/index.ts';

/** Position of a stream: the last applied change (lsn, seq) and the source position safe to acknowledge. */
export interface Position {
  lsn: bigint;
  seq: number;
  ackLsn: bigint;
}

/** State of the initial copy of a slot, as recorded in the warehouse. */
export interface SnapshotState {
  status: 'none' | 'copying' | 'done';
  consistentPoint: bigint;
  rows: number;
}

const START: Position = { lsn: 0n, seq: -1, ackLsn: 0n };

/**
 * The stored position of one input stream (a slot, later a Kafka partition) in `_ducktail.progress`.
 * Writes happen inside the applier's transaction; `committed` updates the cache after COMMIT.
 */
export class Progress {
  private pos: Position = START;
  /** Called before a read between applies (the applier's `settle`: it may hold an early BEGIN on this connection). */
  beforeRead: () => Promise<void> = () => Promise.resolve();

  private constructor(
    private readonly conn: DuckDBConnection,
    readonly stream: string,
  ) {}

  /** Loads (creating if needed) the stored position of `stream`. */
  static async open(conn: DuckDBConnection, stream: string): Promise<Progress> {
    const p = new Progress(conn, stream);
    const reader = await conn.runAndReadAll('SELECT lsn, seq, ack_lsn FROM _ducktail.progress WHERE stream = $1', [stream]);
    const row = reader.getRows()[0] as [bigint, bigint, bigint] | undefined;
    if (row) p.pos = { lsn: row[0], seq: Number(row[1]), ackLsn: row[2] };
    else await conn.run('INSERT INTO _ducktail.progress VALUES ($1, 0, -1, 0, now())', [stream]);
    return p;
  }

  /** Last committed position. */
  get current(): Position {
    return this.pos;
  }

  /**
   * Records a new position (and the Kafka partitions' next offsets) and commits the applier's open
   * transaction, in one call to DuckDB: the statements with their values as literals, run in order,
   * stopping at the first error (the caller then rolls back).
   */
  async writeAndCommit(next: Position, offsets?: readonly PartitionOffset[]): Promise<void> {
    const sql = [
      `UPDATE _ducktail.progress SET lsn = ${int(next.lsn)}, seq = ${int(next.seq)}, ack_lsn = ${int(next.ackLsn)}, updated_at = now() ` +
        `WHERE stream = ${text(this.stream)}`,
      ...(offsets?.length ? offsetsSql(offsets) : []),
      'COMMIT',
    ];
    await this.conn.run(sql.join(';\n'));
  }

  /** Records the initial copy's state; call inside the transaction that applied the rows. */
  async writeSnapshot(m: SnapshotMarker): Promise<void> {
    if (m.status === 'copying') {
      await this.conn.run('DELETE FROM _ducktail.snapshot WHERE slot = $1', [m.slot]);
      await this.conn.run("INSERT INTO _ducktail.snapshot VALUES ($1, 'copying', $2, 0, now(), NULL)", [
        m.slot,
        m.consistentPoint,
      ]);
    } else {
      await this.conn.run(
        "UPDATE _ducktail.snapshot SET status = 'done', rows = $1, finished_at = now() WHERE slot = $2",
        [m.rows, m.slot],
      );
    }
  }

  /** Updates the cached position after the transaction committed. */
  committed(next: Position): void {
    this.pos = next;
  }

  /** The initial copy's recorded state for a slot. */
  async snapshotState(slot: string): Promise<SnapshotState> {
    await this.beforeRead();
    const reader = await this.conn.runAndReadAll(
      'SELECT status, consistent_point, rows FROM _ducktail.snapshot WHERE slot = $1',
      [slot],
    );
    const row = reader.getRows()[0] as [string, bigint, bigint] | undefined;
    if (!row) return { status: 'none', consistentPoint: 0n, rows: 0 };
    return { status: row[0] as 'copying' | 'done', consistentPoint: row[1], rows: Number(row[2]) };
  }

  /** Records where the Kafka consumer stands in each partition; call inside the transaction that applied the rows. */
  /** Every stored Kafka partition position (committed ones only: call between applies). */
  async kafkaOffsets(): Promise<PartitionOffset[]> {
    await this.beforeRead();
    const reader = await this.conn.runAndReadAll('SELECT topic, "partition", next_offset, lsn, ord FROM _ducktail.kafka_offsets');
    return (reader.getRows() as [string, number, bigint, bigint, bigint][]).map(([topic, partition, next, lsn, ord]) => ({
      topic,
      partition,
      next,
      lsn,
      ord: Number(ord),
    }));
  }
}

/** A SQL string literal. */
function text(s: string): string {
  return `'${s.replaceAll("'", "''")}'`;
}

/** A SQL integer literal (throws for a number that is not an integer). */
function int(n: bigint | number): string {
  return String(BigInt(n));
}

/** Two statements whatever the partition count: they run in every Kafka apply transaction. */
function offsetsSql(offsets: readonly PartitionOffset[]): string[] {
  const keys = offsets.map((o) => text(`${o.topic}/${o.partition}`));
  const rows = offsets.map(
    (o) => `(${text(o.topic)}, ${int(o.partition)}::INTEGER, ${int(o.next)}::BIGINT, ${int(o.lsn)}::UBIGINT, ${int(o.ord)}::BIGINT)`,
  );
  return [
    `DELETE FROM _ducktail.kafka_offsets WHERE topic || '/' || "partition" IN (${keys.join(', ')})`,
    `INSERT INTO _ducktail.kafka_offsets SELECT *, now() FROM (VALUES ${rows.join(', ')})`,
  ];
}
