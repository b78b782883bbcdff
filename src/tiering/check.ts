import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Sql } from 'postgres';
import type { Config } from '../config/index.ts';
import { errorMessage } from '../errors.ts';
import { createColdStore } from './cold.ts';

/** A tiering problem `ducktail check` reports (same shape as the source's). */
export interface TieringProblem {
  check: string;
  problem: string;
  fix: string;
}

const TIME_TYPES = new Set(['date', 'timestamp without time zone', 'timestamp with time zone']);

/**
 * `ducktail check` for [tiering]: each table of [tiering.tables] exists in the source (and is among
 * [source] tables when those are listed) with its time_column of a date or timestamp type; warm_dir
 * is writable; the cold store takes a small object (written and deleted again). Nothing to check
 * when no table is configured. Returns what passed and the problems with their fixes.
 */
export async function checkTiering(config: Config, sql: Sql): Promise<{ ok: string[]; problems: TieringProblem[] }> {
  const t = config.tiering;
  const ok: string[] = [];
  const problems: TieringProblem[] = [];
  const names = Object.keys(t.tables);
  if (names.length === 0) return { ok, problems };
  for (const name of names) {
    const key = `tiering.tables."${name}"`;
    const dot = name.indexOf('.');
    if (dot < 0) {
      problems.push({ check: 'tiering', problem: `${key}: not a "schema.table" name`, fix: `name it with its schema, e.g. [tiering.tables."public.${name}"]` });
      continue;
    }
    const [schema, table] = [name.slice(0, dot), name.slice(dot + 1)];
    const cols = (await sql`
      SELECT column_name, data_type FROM information_schema.columns
      WHERE table_schema = ${schema} AND table_name = ${table} ORDER BY ordinal_position`) as unknown as { column_name: string; data_type: string }[];
    if (cols.length === 0) {
      problems.push({ check: 'tiering', problem: `${key}: no such table in the source`, fix: 'name a replicated table as "schema.table", as PostgreSQL spells it' });
      continue;
    }
    if (config.source.tables.length > 0 && !config.source.tables.includes(name)) {
      problems.push({ check: 'tiering', problem: `${key}: not among [source] tables, so never mirrored`, fix: `add "${name}" to [source] tables` });
    }
    const col = cols.find((c) => c.column_name === t.tables[name]!.time_column);
    if (!col) {
      problems.push({
        check: 'tiering',
        problem: `${key}.time_column = "${t.tables[name]!.time_column}": the table has no such column (columns: ${cols.map((c) => c.column_name).join(', ')})`,
        fix: 'name the date or timestamp column that decides a row\'s age',
      });
    } else if (!TIME_TYPES.has(col.data_type)) {
      problems.push({
        check: 'tiering',
        problem: `${key}.time_column = "${col.column_name}" is ${col.data_type}, not a date or timestamp`,
        fix: 'name a date, timestamp or timestamptz column',
      });
    } else {
      ok.push(`${key} tiers by ${col.column_name} (${col.data_type})`);
    }
  }
  const warm = resolve(t.warm_dir);
  try {
    mkdirSync(warm, { recursive: true });
    const probe = join(warm, `.ducktail-check-${process.pid}`);
    writeFileSync(probe, 'ok');
    rmSync(probe);
    ok.push(`warm_dir ${warm} is writable`);
  } catch (e) {
    problems.push({ check: 'tiering', problem: `warm_dir ${warm} is not writable: ${errorMessage(e)}`, fix: 'create it, or give ducktail\'s user write access' });
  }
  const store = createColdStore(t.cold_url, {
    endpoint: t.s3_endpoint,
    region: t.s3_region,
    accessKeyId: t.s3_access_key_id,
    secretAccessKey: t.s3_secret_access_key,
  });
  const local = mkdtempSync(join(tmpdir(), 'ducktail-check-'));
  try {
    writeFileSync(join(local, 'probe'), 'ok');
    const location = store.locationOf(`_ducktail-check-${process.pid}`);
    await store.put(join(local, 'probe'), location);
    await store.delete(location);
    ok.push(`cold_url ${t.cold_url} takes files (wrote and deleted ${location})`);
  } catch (e) {
    problems.push({
      check: 'tiering',
      problem: `cold_url ${t.cold_url}: ${errorMessage(e)}`,
      fix: 's3://: check the bucket, s3_endpoint, s3_region and the credentials (or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY); file://: a folder ducktail may write',
    });
  } finally {
    rmSync(local, { recursive: true, force: true });
  }
  return { ok, problems };
}
