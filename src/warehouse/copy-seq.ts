/**
 * The `_seq` of a copy's 'R' rows when they arrive as changes (the Kafka bus: a chunk travels as `r` events,
 * numbered from 0 by the source in every copy). Each copy or re-copy of a table starts with a reset (a 'T' at
 * lsn 0). At that reset the warehouse takes the table's base, one past the highest `_seq` its history holds at
 * `_lsn` 0 (every tier), stores it in `_ducktail.copy_seq_base` in the reset's transaction, and adds it to the
 * seq of every 'R' row of the table until the next reset. So a copy that starts over (a kill -9 in the middle
 * of a Kafka copy: the source drops the slot and copies again from a new one) or a re-copy never writes a
 * (0, seq) the history already holds; the earlier copy's rows stay below the base (docs/KAFKA.md, "An
 * interrupted copy in the history"). Raw chunks (the inline bus) take their `_seq` ranges the same way, in copy.ts.
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import type { Change } from '../change/index.ts';
import type { MirrorTable } from './tables.ts';

export class CopySeqBases {
  /** Per table, the base of its present copy (committed, or taken in the transaction under way). */
  private readonly known = new Map<string, bigint>();

  constructor(private readonly conn: DuckDBConnection) {}

  /** At a copy's reset, inside its transaction and before any of its rows: takes and stores the table's new base. */
  async reset(m: MirrorTable): Promise<void> {
    const r = await this.conn.runAndReadAll(`SELECT coalesce(max(_seq) + 1, 0)::BIGINT FROM ${m.historyView} WHERE _lsn = 0`);
    const base = r.getRows()[0]![0] as bigint;
    await this.conn.run('DELETE FROM _ducktail.copy_seq_base WHERE "table" = $1', [m.name]);
    await this.conn.run('INSERT INTO _ducktail.copy_seq_base VALUES ($1, $2, now())', [m.name, base]);
    this.known.set(m.name, base);
  }

  /** The table's changes with the base added to the seq of its 'R' rows (new objects: a refused batch is handed again). */
  async shift(m: MirrorTable, changes: Change[]): Promise<Change[]> {
    if (!changes.some((c) => c.op === 'R')) return changes;
    const base = Number(await this.base(m));
    if (base === 0) return changes;
    return changes.map((c) => (c.op === 'R' ? { ...c, seq: c.seq + base } : c));
  }

  /** Forgets what is cached (after a rollback: a base taken in it was never stored). */
  forget(): void {
    this.known.clear();
  }

  /** The base of the table's present copy; 0 when none is recorded (a first copy, or one begun before this existed). */
  private async base(m: MirrorTable): Promise<bigint> {
    const cached = this.known.get(m.name);
    if (cached !== undefined) return cached;
    const r = await this.conn.runAndReadAll('SELECT base FROM _ducktail.copy_seq_base WHERE "table" = $1', [m.name]);
    const base = (r.getRows()[0]?.[0] as bigint | undefined) ?? 0n;
    this.known.set(m.name, base);
    return base;
  }
}
