import type { DuckDBConnection } from '@duckdb/node-api';
import { basename, join } from 'node:path';
import type { ColdCache } from './cache.ts';
import type { ColdStore } from './cold.ts';
import { crashPoint } from './fault.ts';
import { insertFile, type ManifestFile, nextId, retireFile } from './manifest.ts';
import { lit, PARQUET_READ } from './sql.ts';
import { parkRetired } from './sweep.ts';
import { fingerprint, TieringError } from './warm.ts';

/** What a cold move needs from the stage. */
export interface ColdMoveContext {
  store: ColdStore;
  cache: ColdCache | null;
  /** A reader connection for verification; closed by the caller's callback. */
  connect(): Promise<DuckDBConnection>;
  /** Runs on the writer between applies. */
  exclusive<T>(fn: (conn: DuckDBConnection) => Promise<T>): Promise<T>;
  /** Rewrites a table's views inside the writer's open transaction. */
  refresh(conn: DuckDBConnection, table: string): Promise<void>;
  warmDir: string;
}

/**
 * The size of an object just uploaded. s3rver (and eventually consistent stores) can answer a HEAD
 * right after the PUT with the object still 0 bytes or partial: ask again a few times while it differs
 * from `expected` before calling the upload bad.
 */
export async function uploadedSize(store: ColdStore, location: string, expected: number): Promise<number> {
  let size = await store.size(location);
  for (let attempt = 0; size !== expected && attempt < 5; attempt++) {
    await Bun.sleep(100 * 2 ** attempt);
    size = await store.size(location);
  }
  return size;
}

/** The local path DuckDB reads a cold location from. */
export function coldReadPath(ctx: Pick<ColdMoveContext, 'store' | 'cache'>, location: string): string {
  if (ctx.store.localRoot) return location.slice('file://'.length);
  return ctx.cache!.pathOf(location);
}

/**
 * Copies one warm file to the cold tier, reads it back and verifies size, count and checksum, then
 * switches the manifest in one transaction (new cold file in, warm file retired and queued for
 * deletion after the grace period, deletes and locator remapped). Failures leave the warm file live.
 */
export async function moveFileToCold(ctx: ColdMoveContext, f: ManifestFile, pass: number): Promise<ManifestFile> {
  const location = ctx.store.locationOf(join(f.kind, f.tableName, `month=${f.month}`, basename(f.location)));
  await ctx.store.put(f.location, location);
  crashPoint('cold-uploaded');
  const size = await uploadedSize(ctx.store, location, f.byteSize);
  if (size !== f.byteSize) {
    throw new TieringError('TIER_VERIFY_FAILED', `${location} has ${size} bytes, ${f.location} has ${f.byteSize}: not moved, retried next pass`);
  }
  const readPath = coldReadPath(ctx, location);
  if (ctx.cache) await ctx.cache.ensure([location]);
  const conn = await ctx.connect();
  try {
    const got = await fingerprint(conn, `SELECT * FROM read_parquet(${lit(readPath)}, ${PARQUET_READ})`);
    if (got.rows !== f.rowCount || got.checksum !== f.checksum) {
      throw new TieringError('TIER_VERIFY_FAILED', `${location} read back ${got.rows} rows (checksum ${got.checksum}), expected ${f.rowCount} (${f.checksum})`);
    }
  } finally {
    conn.closeSync();
  }
  return ctx.exclusive(async (w) => {
    await w.run('BEGIN TRANSACTION');
    try {
      const live = await w.runAndReadAll(`SELECT count(*) FROM _ducktail.tier_files WHERE id = ${f.id} AND retired_pass IS NULL`);
      if (Number(live.getRows()[0]![0]) !== 1) throw new TieringError('TIER_CONFLICT', `file ${f.location} changed during the move`);
      const cold: ManifestFile = { ...f, id: await nextId(w, 'tier_file_id'), tier: 'cold', location, addedPass: pass };
      await insertFile(w, cold);
      await retireFile(w, f, pass, true);
      await w.run(`UPDATE _ducktail.tier_deletes SET file_id = ${cold.id} WHERE file_id = ${f.id}`);
      await w.run(`UPDATE _ducktail.tier_locator SET file_id = ${cold.id} WHERE file_id = ${f.id}`);
      await ctx.refresh(w, f.tableName);
      await w.run('COMMIT');
      crashPoint('cold-committed');
      await parkRetired(w, ctx.warmDir, f.location, f.id).catch(() => {});
      return cold;
    } catch (e) {
      await w.run('ROLLBACK').catch(() => {});
      throw e;
    }
  });
}
