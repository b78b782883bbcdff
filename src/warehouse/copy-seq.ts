/**
 * The `_seq` of a copy's 'R' rows when they arrive as changes (the Kafka bus: a chunk travels as `r` events,
 * numbered from 0 by the source in every copy). Each copy or re-copy of a table starts with a reset (a 'T' at
 * lsn 0). At that reset the warehouse takes the table's base, one past the highest `_seq` its history holds at
 * `_lsn` 0 (every tier), and from there numbers the copy's rows itself, in the order it applies them, keeping
 * the next number in `_ducktail.copy_seq_base` in the transaction of the rows. So a copy that starts over (a
 * kill -9 in the middle of a Kafka copy: the source drops the slot and copies again from a new one) or a
 * re-copy never writes a (0, seq) the history already holds, and leaves no gap: the interrupted copy's rows
 * (what reached Kafka before the kill, which may be any subset of its last send's, across partitions) are
 * numbered as they were applied, not by the source's seq. The event's `source.seq` is therefore not kept
 * (docs/KAFKA.md, "An interrupted copy in the history"). Raw chunks (the inline bus) take their `_seq` ranges
 * in copy.ts.
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import type { Change } from '../change/index.ts';
import type { MirrorTable } from './tables.ts';

export class CopySeqBases {
  /** Per table, the next `_seq` of its present copy (committed, or moved in the transaction under way). */
  private readonly next = new Map<string, number>();

  constructor(private readonly conn: DuckDBConnection) {}

  /** At a copy's reset, inside its transaction and before any of its rows: takes and stores the table's new base. */
  async reset(m: MirrorTable): Promise<void> {
    const base = await this.highest(m);
    await this.conn.run('DELETE FROM _ducktail.copy_seq_base WHERE "table" = $1', [m.name]);
    await this.conn.run('INSERT INTO _ducktail.copy_seq_base VALUES ($1, $2, now(), $2)', [m.name, base]);
    this.next.set(m.name, base);
  }

  /**
   * The table's changes with its 'R' rows numbered from the copy's next `_seq` (new objects: a refused batch is
   * handed again), the next one stored; call inside the apply's transaction.
   */
  async shift(m: MirrorTable, changes: Change[]): Promise<Change[]> {
    const copied = changes.reduce((n, c) => (c.op === 'R' ? n + 1 : n), 0);
    if (copied === 0) return changes;
    let seq = this.next.get(m.name) ?? (await this.stored(m));
    const out = changes.map((c) => (c.op === 'R' ? { ...c, seq: seq++ } : c));
    await this.conn.run('UPDATE _ducktail.copy_seq_base SET next_seq = $2 WHERE "table" = $1', [m.name, seq]);
    this.next.set(m.name, seq);
    return out;
  }

  /** Forgets what is cached (after a rollback: numbers taken in it were never stored). */
  forget(): void {
    this.next.clear();
  }

  /**
   * The next `_seq` stored for the table; with none (a copy begun before this existed, or R rows without a
   * reset), one past the history's highest at `_lsn` 0, recorded as the base.
   */
  private async stored(m: MirrorTable): Promise<number> {
    const r = await this.conn.runAndReadAll('SELECT coalesce(next_seq, base) FROM _ducktail.copy_seq_base WHERE "table" = $1', [m.name]);
    const row = r.getRows()[0] as [bigint] | undefined;
    if (row) return Number(row[0]);
    const base = await this.highest(m);
    await this.conn.run('INSERT INTO _ducktail.copy_seq_base VALUES ($1, $2, now(), $2)', [m.name, base]);
    return base;
  }

  /** One past the highest `_seq` the table's history holds at `_lsn` 0 (every tier). */
  private async highest(m: MirrorTable): Promise<number> {
    const r = await this.conn.runAndReadAll(`SELECT coalesce(max(_seq) + 1, 0)::BIGINT FROM ${m.historyView} WHERE _lsn = 0`);
    return Number(r.getRows()[0]![0] as bigint);
  }
}
