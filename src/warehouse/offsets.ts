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

  /** Records a new position; call inside the transaction that applied the rows. */
  async write(next: Position): Promise<void> {
    await this.conn.run('UPDATE _ducktail.progress SET lsn = $1, seq = $2, ack_lsn = $3, updated_at = now() WHERE stream = $4', [
      next.lsn,
      next.seq,
      next.ackLsn,
      this.stream,
    ]);
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
    const reader = await this.conn.runAndReadAll(
      'SELECT status, consistent_point, rows FROM _ducktail.snapshot WHERE slot = $1',
      [slot],
    );
    const row = reader.getRows()[0] as [string, bigint, bigint] | undefined;
    if (!row) return { status: 'none', consistentPoint: 0n, rows: 0 };
    return { status: row[0] as 'copying' | 'done', consistentPoint: row[1], rows: Number(row[2]) };
  }

  /** Records where the Kafka consumer stands in each partition; call inside the transaction that applied the rows. */
  async writeOffsets(offsets: readonly PartitionOffset[]): Promise<void> {
    if (offsets.length === 0) return;
    // Two statements whatever the partition count: this runs in every Kafka apply transaction.
    const params = offsets.flatMap((o) => [o.topic, o.partition, o.next, o.lsn, o.ord]);
    const rows = offsets.map((_, i) => `($${i * 5 + 1}, $${i * 5 + 2}::INTEGER, $${i * 5 + 3}::BIGINT, $${i * 5 + 4}::UBIGINT, $${i * 5 + 5}::BIGINT)`);
    const keys = offsets.map((_, i) => `$${i + 1}`);
    await this.conn.run(
      `DELETE FROM _ducktail.kafka_offsets WHERE topic || '/' || "partition" IN (${keys.join(', ')})`,
      offsets.map((o) => `${o.topic}/${o.partition}`),
    );
    await this.conn.run(`INSERT INTO _ducktail.kafka_offsets SELECT *, now() FROM (VALUES ${rows.join(', ')})`, params);
  }

  /** Every stored Kafka partition position (committed ones only: call between applies). */
  async kafkaOffsets(): Promise<PartitionOffset[]> {
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
