import type { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import internalSql from '../../sql/duckdb/001_internal.sql' with { type: 'text' };
import tieringSql from '../../sql/duckdb/002_tiering.sql' with { type: 'text' };
import unfitSql from '../../sql/duckdb/003_unfit.sql' with { type: 'text' };
import { AppError } from '../errors.ts';
import { loadDuckDb } from './duckdb-native.ts';

/** Options to open the warehouse database file. */
export interface OpenOptions {
  path: string;
  memoryLimit: string;
  threads: number;
}

/** An open warehouse: the instance (shared by every connection) and the pipeline's writer connection. */
export interface WarehouseDb {
  instance: DuckDBInstance;
  writer: DuckDBConnection;
  close(): void;
}

/** Opens (creating if needed) the DuckDB file and applies ducktail's internal schema. */
export async function openWarehouseDb(opts: OpenOptions): Promise<WarehouseDb> {
  const duck = await loadDuckDb();
  if (opts.path !== ':memory:') mkdirSync(dirname(opts.path), { recursive: true });
  let instance: DuckDBInstance;
  try {
    instance = await duck.DuckDBInstance.create(opts.path, {
      memory_limit: opts.memoryLimit,
      threads: String(opts.threads),
    });
  } catch (e) {
    throw new AppError(
      'WAREHOUSE_OPEN_FAILED',
      `cannot open the DuckDB file ${opts.path}: ${(e as Error).message}. ` +
        'Check that the folder is writable and that no other ducktail process holds the file.',
      { cause: e },
    );
  }
  const writer = await instance.connect();
  // Timestamps render in UTC whatever the host's zone (a global setting: every connection shares it).
  await writer.run("SET GLOBAL TimeZone = 'UTC'");
  // Tiering's views list every archived file and DuckDB reads each footer when it binds them: keep
  // footers in memory (checked against the file's modification time; archived files never change).
  await writer.run('SET GLOBAL parquet_metadata_cache = true');
  await writer.run(internalSql);
  await writer.run(tieringSql);
  await writer.run(unfitSql);
  return {
    instance,
    writer,
    close() {
      writer.closeSync();
      instance.closeSync();
    },
  };
}
