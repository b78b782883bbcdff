/**
 * The initial copy's chunks in the warehouse: the plan, each chunk's rows loaded from PostgreSQL's COPY
 * output by DuckDB's CSV reader and marked done in the same transaction, and the replay windows of a
 * resumed copy (src/source/README.md, "Initial copy").
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CopyChunk, CopyChunkPlan } from '../change/index.ts';
import { COPY_SEQ, COPY_TS } from './lazy-copy.ts';
import { quoteIdent } from './pg-types.ts';
import type { MirrorTable } from './tables.ts';
import { recordUnfit } from './unfit.ts';

/** Newlines in a chunk of COPY output. */
function lineCount(buf: Uint8Array): number {
  let n = 0;
  for (let i = buf.indexOf(10); i !== -1; i = buf.indexOf(10, i + 1)) n++;
  return n;
}

/** A planned chunk and whether the warehouse holds it. */
export interface ChunkState extends CopyChunkPlan {
  done: boolean;
  rows: number;
  /** WAL position the chunk was read at (0 when not done); for a re-copy's hand-over row (chunk -1), the hand-over point. */
  readAt: bigint;
}

/**
 * What the CopyChunks of the writer and of the copy lane (a second connection loading another chunk at the
 * same time: src/warehouse/index.ts) share: the `_seq` ranges handed out and the replay windows.
 */
export interface CopyShared {
  /** Next free `_seq` of copied rows (lsn 0) per table, as a promise taken synchronously: two chunks never get the same range. */
  nextSeq: Map<string, Promise<bigint>>;
  /** Per table, the end of every range ever handed out: never forgotten (a rolled-back range is a gap, not reused). */
  floor: Map<string, bigint>;
  /** Per table: changes at or before this LSN replay over rows a resumed copy read later. */
  windows: Map<string, bigint>;
  /**
   * Tables whose current rows may still have copy positions (lazy-copy.ts): set when a raw chunk loads (before its
   * COMMIT), found when the warehouse opens, removed only by the backfill once none remain. The apply path skips
   * storing `R` rows for the others.
   */
  copied: Set<string>;
}

/** Reads and writes `_ducktail.copy_chunks` and loads chunks; call its writers inside the applier's transaction. */
export class CopyChunks {
  private readonly file: string;

  constructor(
    private readonly conn: DuckDBConnection,
    stageDir: string,
    readonly shared: CopyShared = { nextSeq: new Map(), floor: new Map(), windows: new Map(), copied: new Set() },
    lane = '',
  ) {
    this.file = join(stageDir, `copy-chunk${lane}.csv`);
  }

  /** Loads the replay windows of resumed copies (call once at start, between applies). */
  async load(): Promise<void> {
    const r = await this.conn.runAndReadAll(
      `SELECT c."table", max(c.read_at) FROM _ducktail.copy_chunks c JOIN _ducktail.snapshot s USING (slot)
        WHERE c.done AND c.read_at > s.consistent_point GROUP BY c."table"`,
    );
    this.shared.windows = new Map(r.getRows() as [string, bigint][]);
  }

  /** LSN up to which the table's changes replay over later copied rows (0n: none). */
  window(table: string): bigint {
    return this.shared.windows.get(table) ?? 0n;
  }

  /** Records a copy's plan, replacing what the slot recorded for its tables. */
  async plan(slot: string, chunks: readonly CopyChunkPlan[]): Promise<void> {
    if (chunks.length === 0) return;
    const tables = [...new Set(chunks.map((c) => c.table))];
    await this.conn.run(
      `DELETE FROM _ducktail.copy_chunks WHERE slot = $1 AND "table" IN (${tables.map((_, i) => `$${i + 2}`).join(', ')})`,
      [slot, ...tables],
    );
    const app = await this.conn.createAppender('copy_chunks', '_ducktail');
    for (const c of chunks) {
      app.appendVarchar(slot);
      app.appendVarchar(c.table);
      app.appendInteger(c.chunk);
      app.appendVarchar(c.where);
      app.appendBoolean(false);
      for (let i = 0; i < 4; i++) app.appendNull();
      app.endRow();
    }
    app.flushSync();
    app.closeSync();
  }

  /** Replaces a re-copied table's plan under `slot` by its hand-over point (chunk -1, `read_at` = the point). */
  async handoff(h: { slot: string; table: string; at: bigint }): Promise<void> {
    await this.conn.run('DELETE FROM _ducktail.copy_chunks WHERE slot = $1 AND "table" = $2', [h.slot, h.table]);
    await this.conn.run(
      `INSERT INTO _ducktail.copy_chunks VALUES ($1, $2, -1, '', true, 0, NULL, $3::UBIGINT, now())`,
      [h.slot, h.table, h.at],
    );
  }

  /** The slot's plan with what is done, in plan order (empty when none was recorded). */
  async state(slot: string): Promise<ChunkState[]> {
    const r = await this.conn.runAndReadAll(
      'SELECT "table", chunk, "where", done, coalesce(rows, 0), coalesce(read_at, 0) FROM _ducktail.copy_chunks WHERE slot = $1 ORDER BY "table", chunk',
      [slot],
    );
    return (r.getRows() as [string, number, string, boolean, bigint, bigint][]).map(([table, chunk, where, done, rows, readAt]) => ({
      table,
      chunk,
      where,
      done,
      rows: Number(rows),
      readAt,
    }));
  }

  /**
   * Loads one chunk into the mirror, its history rows (op 'R', lsn 0, seq continuing the table's copied
   * rows) derived from it (lazy-copy.ts), and marks it done; a chunk already done is skipped. Returns the
   * rows loaded and how many values did not fit their column (NULL there, kept in `_ducktail.unfit_values`).
   *
   * DuckDB's CSV reader parses and converts the chunk once, numbered in file order, into the current table
   * with each row's `_seq` in its hidden column. A table created before the hidden columns existed gets its
   * `R` rows stored: into the history, and the mirror copies those typed rows back (the transaction's own
   * rows: `_lsn` 0, `_seq` from the base). Only when a column that may hold unfit values got a NULL is the
   * file read again for their text.
   */
  async apply(mirror: MirrorTable, chunk: CopyChunk): Promise<{ rows: number; unfit: number }> {
    const key = [chunk.slot, chunk.table, chunk.chunk] as const;
    const r = await this.conn.runAndReadAll(
      'SELECT done FROM _ducktail.copy_chunks WHERE slot = $1 AND "table" = $2 AND chunk = $3',
      [...key],
    );
    if ((r.getRows()[0]?.[0] as boolean | undefined) === true) return { rows: 0, unfit: 0 };
    writeFileSync(this.file, chunk.csv);
    try {
      const columns = mirror.columns.map((_, i) => `'c${i}': 'VARCHAR'`).join(', ');
      const path = this.file.replaceAll("'", "''");
      const csv =
        `read_csv('${path}', delim = '\t', quote = '"', escape = '"', header = false, auto_detect = false, nullstr = '\\N', ` +
        `allow_quoted_nulls = false, strict_mode = true, columns = {${columns}}) WITH ORDINALITY`;
      const names = mirror.columns.map((c) => quoteIdent(c.name)).join(', ');
      const casts = mirror.columns.map((c, i) => c.fromText(`s.c${i}`)).join(', ');
      // The source's count of the rows (its CopyData messages), else the lines: every row ends with a newline
      // (a quoted value may hold more), so the lines bound the rows from above.
      const span = BigInt(chunk.rows ?? lineCount(chunk.csv));
      const base = await this.reserve(mirror, span);
      let n: bigint;
      let unfit: number;
      if (mirror.lazyCopy) {
        // Only the current table: each row keeps its `R` row's `_seq` and time in the hidden columns, and the
        // history view derives the `R` row until a writer step stores it (lazy-copy.ts).
        this.shared.copied.add(mirror.name);
        const loaded = await this.conn.run(
          `INSERT INTO ${mirror.current} (${names}, ${COPY_SEQ}, ${COPY_TS}) ` +
            `SELECT ${casts}, $1::BIGINT + s.ordinality - 1, make_timestamptz($2::BIGINT) FROM ${csv} s`,
          [base, chunk.commitTimeUs],
        );
        n = BigInt(loaded.rowsChanged);
        if (n > span) throw new Error(`copied chunk ${chunk.table} #${chunk.chunk} has ${n} rows in ${span} lines`);
        const mine = `${COPY_SEQ} >= $1::BIGINT AND ${COPY_SEQ} < $1::BIGINT + ${span}`;
        unfit = await this.recordUnfit(mirror, mirror.current, csv, base, mine);
      } else {
        const mine = `_lsn = 0 AND _seq >= $1::BIGINT AND _seq < $1::BIGINT + ${span}`;
        const loaded = await this.conn.run(
          `INSERT INTO ${mirror.history} (${names}, _op, _lsn, _seq, _commit_ts) ` +
            `SELECT ${casts}, 'R', 0, $1::BIGINT + s.ordinality - 1, make_timestamptz($2::BIGINT) FROM ${csv} s`,
          [base, chunk.commitTimeUs],
        );
        n = BigInt(loaded.rowsChanged);
        if (n > span) throw new Error(`copied chunk ${chunk.table} #${chunk.chunk} has ${n} rows in ${span} lines`);
        await this.conn.run(`INSERT INTO ${mirror.current} (${names}) SELECT ${names} FROM ${mirror.history} WHERE ${mine}`, [base]);
        unfit = await this.recordUnfit(mirror, mirror.history, csv, base, mine);
      }
      await this.conn.run(
        `UPDATE _ducktail.copy_chunks SET done = true, rows = $4, seq_base = $5, read_at = $6, applied_at = now()
          WHERE slot = $1 AND "table" = $2 AND chunk = $3`,
        [...key, n, base, chunk.readAt],
      );
      return { rows: Number(n), unfit };
    } finally {
      rmSync(this.file, { force: true });
    }
  }

  /** Unfit values of the chunk: none unless a column that may hold them got a NULL (then its text is read again). */
  private async recordUnfit(mirror: MirrorTable, table: string, csv: string, base: bigint, mine: string): Promise<number> {
    const nullable = mirror.columns.flatMap((c) => (c.unfit ? [`${quoteIdent(c.name)} IS NULL`] : []));
    if (nullable.length === 0) return 0;
    const r = await this.conn.runAndReadAll(
      `SELECT count(*) FROM ${table} WHERE ${mine} AND (${nullable.join(' OR ')})`,
      [base],
    );
    if (Number(r.getRows()[0]![0]) === 0) return 0;
    return recordUnfit(this.conn, mirror, `(SELECT * FROM ${csv})`, 0, (i) => `s.c${i}`, {
      filter: 'true',
      lsn: '0',
      seq: `${base}::BIGINT + s.ordinality - 1`,
    });
  }

  /** Forgets the cached next sequence numbers (after a rollback); the ranges handed out stay taken. */
  reset(): void {
    this.shared.nextSeq.clear();
  }

  /**
   * The first of `span` consecutive `_seq` numbers no other chunk of the table got: taken synchronously from
   * the shared counter (the history is read only for a table's first chunk since start or a rollback; a chunk
   * loading on the other connection is counted through `floor`, its rows being invisible here until COMMIT).
   */
  private reserve(mirror: MirrorTable, span: bigint): Promise<bigint> {
    const { nextSeq, floor } = this.shared;
    const name = mirror.name;
    const base =
      nextSeq.get(name) ??
      this.conn
        // Every tier: an earlier copy's history rows may have been archived (a re-copy must not reuse their numbers).
        .runAndReadAll(`SELECT coalesce(max(_seq) + 1, 0)::BIGINT FROM ${mirror.historyView} WHERE _lsn = 0`)
        .then((r) => {
          const stored = r.getRows()[0]![0] as bigint;
          const taken = floor.get(name) ?? 0n;
          return stored > taken ? stored : taken;
        });
    const next = base.then((b) => {
      floor.set(name, (floor.get(name) ?? 0n) > b + span ? floor.get(name)! : b + span);
      return b + span;
    });
    next.catch(() => {});
    nextSeq.set(name, next);
    return base;
  }
}
