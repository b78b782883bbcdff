import type { DuckDBConnection } from '@duckdb/node-api';
import { existsSync, mkdirSync, readdirSync, renameSync, rmdirSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { ColdStore } from './cold.ts';
import { knownLocations } from './manifest.ts';
import { lit } from './sql.ts';

/** What a sweep removed. */
export interface SweepResult {
  trashDeleted: number;
  orphansDeleted: number;
  errors: string[];
}

function deleteLocation(store: ColdStore, location: string): Promise<void> {
  if (location.startsWith('s3://') || location.startsWith('file://')) return store.delete(location);
  rmSync(location, { force: true });
  return Promise.resolve();
}

/** Local files under the warm tier's folders, with their age. */
function warmFiles(warmDir: string): { location: string; ageMs: number }[] {
  const now = Date.now();
  const out: { location: string; ageMs: number }[] = [];
  for (const kind of ['current', 'history', '_retired', '_deletes', '_tmp']) {
    const root = join(warmDir, kind);
    if (!existsSync(root)) continue;
    for (const rel of readdirSync(root, { recursive: true }) as string[]) {
      const p = join(root, rel);
      const st = statSync(p, { throwIfNoEntry: false });
      if (st?.isFile() && !rel.endsWith('_manifest.json') && !rel.endsWith('_manifest.json.tmp')) out.push({ location: p, ageMs: now - st.mtimeMs });
    }
  }
  return out;
}

/**
 * Takes a retired warm file out of the Hive layout (into `<warm_dir>/_retired`) once its manifest
 * switch has committed, so engines reading the folders directly never count it twice; it is deleted
 * from there after the grace period. Best effort: a crash leaves it for the sweep.
 */
export async function parkRetired(conn: DuckDBConnection, warmDir: string, location: string, id: number): Promise<void> {
  if (!location.startsWith(warmDir) || !existsSync(location)) return;
  const parked = join(warmDir, '_retired', `${id}-${basename(location)}`);
  mkdirSync(dirname(parked), { recursive: true });
  renameSync(location, parked);
  // The month folder it leaves empty goes too (an empty month=YYYY-MM misleads whoever lists the lake).
  try {
    if (readdirSync(dirname(location)).length === 0) rmdirSync(dirname(location));
  } catch {
    // a new file arrived meanwhile, or already gone
  }
  await conn.run(`UPDATE _ducktail.tier_trash SET location = ${lit(parked)} WHERE location = ${lit(location)}`);
}

/**
 * Deletes files queued in `_ducktail.tier_trash` for longer than the grace period, then orphans:
 * files in the warm folder or the cold store that the manifest does not know, older than the grace
 * (leftovers of a move interrupted before its COMMIT). Runs on the writer between applies.
 */
export async function sweep(conn: DuckDBConnection, store: ColdStore, warmDir: string, graceMs: number): Promise<SweepResult> {
  const result: SweepResult = { trashDeleted: 0, orphansDeleted: 0, errors: [] };
  const due = await conn.runAndReadAll(
    `SELECT location FROM _ducktail.tier_trash WHERE queued_at <= now() - to_milliseconds(${graceMs})`,
  );
  for (const [location] of due.getRows() as [string][]) {
    try {
      await deleteLocation(store, location);
      await conn.run(`DELETE FROM _ducktail.tier_trash WHERE location = ${lit(location)}`);
      result.trashDeleted++;
    } catch (e) {
      result.errors.push((e as Error).message);
    }
  }
  const known = await knownLocations(conn);
  let cold: { location: string; ageMs: number }[] = [];
  try {
    cold = await store.list();
  } catch (e) {
    result.errors.push((e as Error).message);
  }
  for (const f of [...warmFiles(warmDir), ...cold]) {
    if (known.has(f.location) || f.ageMs < graceMs || f.location.endsWith('_manifest.json')) continue;
    try {
      await deleteLocation(store, f.location);
      result.orphansDeleted++;
    } catch (e) {
      result.errors.push((e as Error).message);
    }
  }
  return result;
}
