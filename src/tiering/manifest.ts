import type { DuckDBConnection } from '@duckdb/node-api';
import { lit } from './sql.ts';

/** Whether a file holds current-state rows or history rows of its table. */
export type FileKind = 'current' | 'history';
/** Where a file lives. */
export type Tier = 'warm' | 'cold';

/** One row of `_ducktail.tier_files`. */
export interface ManifestFile {
  id: number;
  tableName: string;
  kind: FileKind;
  tier: Tier;
  location: string;
  month: string;
  rowCount: number;
  byteSize: number;
  checksum: string;
  firstRowId: number;
  minTime: string | null;
  maxTime: string | null;
  minKey: string | null;
  maxKey: string | null;
  minLsn: string | null;
  maxLsn: string | null;
  addedPass: number;
  /** The file's columns as written (JSON of LayoutColumn[], src/tiering/layout.ts); null for files written before layouts were kept. */
  layout: string | null;
  /** Location of the file's deletion vector (Parquet of superseded positions), and its row count. */
  deletionVector?: string | null;
  dvRows?: number;
  /** Cold files: the copy of the deletion vector in the cold store (outside ducktail's reads), or null. */
  coldVector?: string | null;
  /** min/max of the time column as epoch milliseconds (view guards). */
  minTimeMs?: number | null;
  maxTimeMs?: number | null;
}

const COLUMNS =
  'id, table_name, kind, tier, location, month, row_count, byte_size, checksum, first_row_id, ' +
  'min_time::VARCHAR, max_time::VARCHAR, min_key, max_key, min_lsn::VARCHAR, max_lsn::VARCHAR, added_pass, layout, epoch_ms(min_time), epoch_ms(max_time), deletion_vector, coalesce(dv_rows, 0), cold_vector';

function toFile(r: unknown[]): ManifestFile {
  return {
    id: Number(r[0]),
    tableName: r[1] as string,
    kind: r[2] as FileKind,
    tier: r[3] as Tier,
    location: r[4] as string,
    month: r[5] as string,
    rowCount: Number(r[6]),
    byteSize: Number(r[7]),
    checksum: r[8] as string,
    firstRowId: Number(r[9]),
    minTime: r[10] as string | null,
    maxTime: r[11] as string | null,
    minKey: r[12] as string | null,
    maxKey: r[13] as string | null,
    minLsn: r[14] as string | null,
    maxLsn: r[15] as string | null,
    addedPass: Number(r[16]),
    layout: (r[17] as string | null) ?? null,
    minTimeMs: r[18] === null ? null : Number(r[18]),
    maxTimeMs: r[19] === null ? null : Number(r[19]),
    deletionVector: (r[20] as string | null) ?? null,
    dvRows: Number(r[21]),
    coldVector: (r[22] as string | null) ?? null,
  };
}

/** Live files (not retired) matching an optional SQL condition, in row-id order. */
export async function liveFiles(conn: DuckDBConnection, where = 'true'): Promise<ManifestFile[]> {
  const r = await conn.runAndReadAll(
    `SELECT ${COLUMNS} FROM _ducktail.tier_files WHERE retired_pass IS NULL AND (${where}) ORDER BY table_name, kind, first_row_id`,
  );
  return r.getRows().map(toFile);
}

/** Every location the manifest knows (live or retired) and every queued for deletion. */
export async function knownLocations(conn: DuckDBConnection): Promise<Set<string>> {
  const r = await conn.runAndReadAll(
    'SELECT location FROM _ducktail.tier_files UNION SELECT location FROM _ducktail.tier_trash ' +
      'UNION SELECT deletion_vector FROM _ducktail.tier_files WHERE deletion_vector IS NOT NULL ' +
      'UNION SELECT cold_vector FROM _ducktail.tier_files WHERE cold_vector IS NOT NULL',
  );
  return new Set(r.getRows().map((x) => x[0] as string));
}

/** The next value of a manifest sequence. */
export async function nextId(conn: DuckDBConnection, seq: 'tier_file_id' | 'tier_pass_id'): Promise<number> {
  const r = await conn.runAndReadAll(`SELECT nextval('_ducktail.${seq}')`);
  return Number(r.getRows()[0]![0]);
}

/** The row id the next file of a table/kind starts at. */
export async function nextRowId(conn: DuckDBConnection, table: string, kind: FileKind): Promise<number> {
  const r = await conn.runAndReadAll(
    `SELECT coalesce(max(first_row_id + row_count), 0) FROM _ducktail.tier_files WHERE table_name = ${lit(table)} AND kind = ${lit(kind)}`,
  );
  return Number(r.getRows()[0]![0]);
}

/** Adds a file to the manifest (inside the caller's transaction). */
export async function insertFile(conn: DuckDBConnection, f: ManifestFile): Promise<void> {
  const n = (v: string | null, cast: string) => (v === null ? 'NULL' : `${lit(v)}::${cast}`);
  await conn.run(
    'INSERT INTO _ducktail.tier_files (id, table_name, kind, tier, location, month, row_count, byte_size, checksum, first_row_id, ' +
      'min_time, max_time, min_key, max_key, min_lsn, max_lsn, added_pass, retired_pass, retired_at, layout, deletion_vector, dv_rows, cold_vector) ' +
      `VALUES (${f.id}, ${lit(f.tableName)}, ${lit(f.kind)}, ${lit(f.tier)}, ` +
      `${lit(f.location)}, ${lit(f.month)}, ${f.rowCount}, ${f.byteSize}, ${lit(f.checksum)}, ${f.firstRowId}, ` +
      `${n(f.minTime, 'TIMESTAMPTZ')}, ${n(f.maxTime, 'TIMESTAMPTZ')}, ${n(f.minKey, 'VARCHAR')}, ${n(f.maxKey, 'VARCHAR')}, ` +
      `${n(f.minLsn, 'UBIGINT')}, ${n(f.maxLsn, 'UBIGINT')}, ${f.addedPass}, NULL, NULL, ${f.layout === null ? 'NULL' : lit(f.layout)}, ` +
      `${f.deletionVector ? lit(f.deletionVector) : 'NULL'}, ${f.dvRows ?? 0}, ${f.coldVector ? lit(f.coldVector) : 'NULL'})`,
  );
}

/**
 * Retires a file and queues its bytes for deletion after the grace period (caller's transaction),
 * with its deletion vector unless the file's copy in another tier keeps using it, and the vector's cold copy.
 */
export async function retireFile(conn: DuckDBConnection, f: ManifestFile, pass: number, keepVector = false): Promise<void> {
  await conn.run(`UPDATE _ducktail.tier_files SET retired_pass = ${pass}, retired_at = now() WHERE id = ${f.id}`);
  await conn.run(`INSERT INTO _ducktail.tier_trash VALUES (${lit(f.location)}, now())`);
  if (f.deletionVector && !keepVector) await conn.run(`INSERT INTO _ducktail.tier_trash VALUES (${lit(f.deletionVector)}, now())`);
  if (f.coldVector) await conn.run(`INSERT INTO _ducktail.tier_trash VALUES (${lit(f.coldVector)}, now())`);
}
