import type { DuckDBConnection } from '@duckdb/node-api';
import { rmSync, statSync } from 'node:fs';
import { quoteIdent } from '../warehouse/index.ts';
import { lit, PARQUET_READ, PARQUET_WRITE } from './sql.ts';
import type { TierSpec } from './warm.ts';

/** Rows written to measure a table's Parquet bytes per row when the manifest has too few yet. */
const SAMPLE_ROWS = 100_000;

/** How large the files of a month may grow. */
export interface FileLimits {
  maxRows: number;
  maxBytes: number;
}

/**
 * Parquet bytes per row of a table kind: from its live files when they hold enough rows, else by
 * writing a sample of the rows to move (sorted and compressed like the real files) to `samplePath`.
 */
export async function bytesPerRow(conn: DuckDBConnection, s: TierSpec, where: string, rows: number, samplePath: string, select: string): Promise<number> {
  const r = await conn.runAndReadAll(
    `SELECT sum(byte_size), sum(row_count) FROM _ducktail.tier_files WHERE retired_pass IS NULL AND table_name = ${lit(s.mirror.name)} AND kind = ${lit(s.kind)}`,
  );
  const [bytes, known] = r.getRows()[0]!.map((x) => Number(x ?? 0)) as [number, number];
  if (known >= SAMPLE_ROWS || known >= rows) return bytes / Math.max(known, 1);
  const n = Math.min(rows, SAMPLE_ROWS);
  try {
    await conn.run(
      `COPY (SELECT ${select} FROM ${s.hot} WHERE ${where} ORDER BY ${s.orderBy} LIMIT ${n}) TO ${lit(samplePath)} ${PARQUET_WRITE}`,
    );
    return statSync(samplePath).size / n;
  } finally {
    rmSync(samplePath, { force: true });
  }
}

/**
 * Key ranges splitting a month's `rows` into files of at most about `maxRows` rows and `maxBytes`
 * bytes (`perRow` bytes each), at quantiles of the sort key: the key columns (compared as a row when
 * composite), or `_lsn` for history. Conditions partition the key space, so every row falls in
 * exactly one range; one range (no condition) when the month fits in one file.
 */
export async function keyRanges(conn: DuckDBConnection, s: TierSpec, where: string, rows: number, perRow: number, limits: FileLimits): Promise<string[]> {
  const parts = Math.max(Math.ceil(rows / limits.maxRows), Math.ceil((rows * perRow) / limits.maxBytes));
  if (parts <= 1) return ['true'];
  const cols =
    s.kind === 'history' ? [{ name: '_lsn', duckType: 'UBIGINT' }] : s.mirror.keyIndexes.map((i) => s.mirror.columns[i]!);
  const names = cols.map((c) => quoteIdent(c.name));
  const struct = `{${names.map((n, i) => `'k${i}': ${n}`).join(', ')}}`;
  const qs = Array.from({ length: parts - 1 }, (_, i) => (i + 1) / parts).join(', ');
  const r = await conn.runAndReadAll(
    `SELECT ${cols.map((_, i) => `b.k${i}::VARCHAR`).join(', ')} FROM (SELECT unnest(list_sort(list_distinct(quantile_disc(${struct}, [${qs}])))) AS b FROM ${s.hot} WHERE ${where})`,
  );
  const bounds = r.getRows().map((b) => b.map((v, i) => `CAST(${lit(String(v))} AS ${cols[i]!.duckType})`));
  if (bounds.length === 0) return ['true'];
  // Lexicographic (key) > (bound), spelled out: DuckDB cannot plan a row comparison pair as BETWEEN.
  const after = (b: string[]) => `(${b.map((v, i) => [...names.slice(0, i).map((n, j) => `${n} = ${b[j]}`), `${names[i]} > ${v}`].join(' AND ')).join(' OR ')})`;
  return bounds.map((b, i) => (i === 0 ? `NOT ${after(b)}` : `${after(bounds[i - 1]!)} AND NOT ${after(b)}`)).concat(after(bounds.at(-1)!));
}
