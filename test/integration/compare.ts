import { expect } from 'bun:test';
import type { DuckDBConnection } from '@duckdb/node-api';
import type { Sql } from 'postgres';
import { mapColumn, quoteIdent } from '../../src/warehouse/pg-types.ts';
import { describeTable } from '../../src/source/catalog.ts';

/** Every row of a source table and of its mirror, as PostgreSQL text, ordered by key: equal means in sync. */
export async function snapshotBoth(
  sql: Sql,
  duck: DuckDBConnection,
  schema: string,
  table: string,
): Promise<{ source: (string | null)[][]; mirror: (string | null)[][] }> {
  const t = await describeTable(sql, schema, table);
  // Qualified, so ORDER BY sorts by the typed column and not by the ::text output column of that name.
  const keys = t.columns.filter((c) => c.key).map((c) => `t.${quoteIdent(c.name)}`);
  const pgCols = t.columns.map((c) => `${quoteIdent(c.name)}::text`).join(', ');
  const source = (await sql
    .unsafe(`SELECT ${pgCols} FROM ${quoteIdent(schema)}.${quoteIdent(table)} t ORDER BY ${keys.join(', ')}`)
    .values()) as unknown as (string | null)[][];
  const duckCols = t.columns.map((c) => mapColumn(c).toText(`t.${quoteIdent(c.name)}`)).join(', ');
  const reader = await duck.runAndReadAll(
    `SELECT ${duckCols} FROM ${quoteIdent(schema)}.${quoteIdent(table)} t ORDER BY ${keys.join(', ')}`,
  );
  const mirror = reader.getRows().map((r) => r.map((v) => (v === null ? null : String(v))));
  return { source: source.map((r) => [...r]), mirror };
}

/** Polls `check` until it returns true or the time is up. */
export async function waitFor(check: () => Promise<boolean>, timeoutMs = 30_000, what = 'condition'): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await check()) return;
    await Bun.sleep(100);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/**
 * Waits (up to 30 s) until the warehouse's `public.<table>` equals the source row for row, then asserts
 * it and that history holds no streamed change twice; returns the source's row count.
 */
export async function expectMirrorEqual(w: { connect(): Promise<DuckDBConnection> }, sql: Sql, table: string): Promise<number> {
  const both = async () => {
    const duck = await w.connect();
    try {
      return await snapshotBoth(sql, duck, 'public', table);
    } finally {
      duck.closeSync();
    }
  };
  await waitFor(async () => {
    const { source, mirror } = await both();
    return JSON.stringify(source) === JSON.stringify(mirror);
  }, 30_000, `${table} in sync`).catch(() => {});
  const { source, mirror } = await both();
  expect(mirror.length).toBe(source.length);
  expect(mirror).toEqual(source);
  const duck = await w.connect();
  try {
    const dupes = await duck.runAndReadAll(
      `SELECT count(*) FROM (SELECT _lsn, _seq FROM history.${table} WHERE _op <> 'R' GROUP BY ALL HAVING count(*) > 1)`,
    );
    expect(Number(dupes.getRows()[0]![0])).toBe(0);
  } finally {
    duck.closeSync();
  }
  return source.length;
}
