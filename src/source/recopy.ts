/**
 * Copying some tables again while streaming (a table that joined the publication, a column type the
 * warehouse cannot convert in place), and the idle catalog check that brings DDL without DML to the
 * warehouse. See docs/SCHEMA-CHANGES.md.
 */
import type { Sql } from 'postgres';
import type { ChangeBatch, TableSchema } from '../change/index.ts';
import { describeTable, publicationTables } from './catalog.ts';
import { parseLsn } from './lsn.ts';
import { connectReplication } from './slot.ts';
import { copySnapshot } from './snapshot.ts';
import type { UserTypes } from './user-types.ts';

/** A table's layout as the catalog has it now, types resolved. */
export async function currentLayout(sql: Sql, types: UserTypes, name: string): Promise<TableSchema> {
  const dot = name.indexOf('.');
  const t = await describeTable(sql, name.slice(0, dot), name.slice(dot + 1));
  return { ...t, columns: await types.resolve(t.columns) };
}

/**
 * Copies `names` as of a temporary slot's exported snapshot and returns its consistent point L:
 * the copy holds every transaction that committed before L, so the stream must skip changes of these
 * tables whose commit LSN is below L and apply the rest.
 */
export async function recopyTables(
  url: string,
  sql: Sql,
  types: UserTypes,
  opts: {
    slot: string;
    names: string[];
    batchRows: number;
    /** Chunks as raw COPY output (inline bus), as for the initial copy. */
    rawChunks?: boolean;
    workers?: number;
    serverVersion?: number;
    connectTimeoutS: number;
    publish(batch: ChangeBatch): Promise<void>;
    log(m: string): void;
    signal: AbortSignal;
  },
): Promise<bigint> {
  const repl = connectReplication(url, opts.connectTimeoutS);
  try {
    const tmp = `${opts.slot}_copy_${process.pid}`.slice(0, 63);
    const rows = await repl.unsafe(`CREATE_REPLICATION_SLOT ${tmp} TEMPORARY LOGICAL pgoutput EXPORT_SNAPSHOT`);
    const r = rows[0] as unknown as { consistent_point: string; snapshot_name: string };
    const consistentPoint = parseLsn(r.consistent_point);
    const tables = await Promise.all(opts.names.map((n) => currentLayout(sql, types, n)));
    opts.log(`copying ${opts.names.join(', ')} again as of ${r.consistent_point}`);
    await copySnapshot(sql, {
      slot: opts.slot,
      snapshotName: r.snapshot_name,
      consistentPoint,
      tables,
      batchRows: opts.batchRows,
      rawChunks: opts.rawChunks,
      workers: opts.workers,
      serverVersion: opts.serverVersion,
      publish: opts.publish,
      log: opts.log,
      signal: opts.signal,
      markers: false,
    });
    return consistentPoint;
  } finally {
    await repl.end({ timeout: 2 }).catch(() => {}); // the temporary slot goes with its session
  }
}

/** Layout signature: what the warehouse's mapping depends on. */
function signature(t: TableSchema): string {
  return JSON.stringify(t.columns.map((c) => [c.name, c.typeOid, c.typeMod, c.key, c.userType ?? null]));
}

/**
 * Run when the stream is caught up: tables that joined the publication (when following it) are
 * returned to be copied; tables whose catalog layout differs from the last one sent are returned as
 * layouts for the warehouse (DDL with no DML since, which pgoutput does not send).
 */
export async function checkCatalog(
  sql: Sql,
  types: UserTypes,
  opts: { publication: string; follow: boolean; known: Set<string>; sent: Map<string, string> },
): Promise<CatalogCheck> {
  // The WAL position first: the result may be applied once the stream has received up to it.
  const [{ lsn }] = (await sql`SELECT pg_current_wal_lsn()::text AS lsn`) as unknown as [{ lsn: string }];
  const recopy = opts.follow ? ((await publicationTables(sql, opts.publication)) ?? []).filter((n) => !opts.known.has(n)) : [];
  const layouts: TableSchema[] = [];
  const signatures = new Map<string, string>();
  for (const name of opts.known) {
    const t = await currentLayout(sql, types, name).catch(() => null); // a dropped table: nothing to send
    if (!t) continue;
    const sig = signature(t);
    if (opts.sent.get(name) !== sig) {
      signatures.set(name, sig);
      layouts.push(t);
    }
  }
  return {
    walLsn: parseLsn(lsn),
    recopy,
    layouts,
    sent(names) {
      for (const n of names) opts.sent.set(n, signatures.get(n)!);
    },
  };
}

/** Result of checkCatalog. */
export interface CatalogCheck {
  /** pg_current_wal_lsn() before the catalog was read. */
  walLsn: bigint;
  recopy: string[];
  layouts: TableSchema[];
  /** Records that these tables' layouts went to the warehouse. */
  sent(names: string[]): void;
}
