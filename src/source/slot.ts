import postgres, { type Sql } from 'postgres';
import { PrerequisiteError } from '../errors.ts';
import { formatLsn, parseLsn } from './lsn.ts';
import { recoverySteps } from './monitor.ts';

/** Session settings that make PostgreSQL's text output exact and unambiguous for DuckDB. */
export const TEXT_SETTINGS = {
  application_name: 'ducktail',
  DateStyle: 'ISO, MDY',
  IntervalStyle: 'postgres',
  TimeZone: 'UTC',
  extra_float_digits: '3',
  bytea_output: 'hex',
} as const;

/** A plain (SQL) connection pool with ducktail's text settings. */
export function connectSql(url: string, opts: { max?: number; connectTimeoutS?: number } = {}): Sql {
  return postgres(url, {
    max: opts.max ?? 2,
    connect_timeout: opts.connectTimeoutS ?? 30,
    idle_timeout: 60,
    onnotice: () => {},
    connection: { ...TEXT_SETTINGS },
  });
}

/** A walsender connection (replication=database) for slot commands and START_REPLICATION. */
export function connectReplication(url: string, connectTimeoutS = 30): Sql {
  return postgres(url, {
    max: 1,
    connect_timeout: connectTimeoutS,
    idle_timeout: null as unknown as undefined,
    max_lifetime: null,
    fetch_types: false,
    onnotice: () => {},
    connection: { ...TEXT_SETTINGS, replication: 'database' } as Record<string, string>,
  });
}

/** What pg_replication_slots says about the slot. */
export interface SlotInfo {
  plugin: string;
  database: string;
  temporary: boolean;
  active: boolean;
  activePid: number | null;
  confirmedFlushLsn: bigint;
  walStatus: string | null;
}

/** Reads the slot, or null when it does not exist. */
export async function readSlot(sql: Sql, slot: string): Promise<SlotInfo | null> {
  const rows = await sql<
    { plugin: string; database: string; temporary: boolean; active: boolean; active_pid: number | null; confirmed: string | null; wal_status: string | null }[]
  >`SELECT plugin, database, temporary, active, active_pid, confirmed_flush_lsn::text AS confirmed, wal_status
      FROM pg_replication_slots WHERE slot_name = ${slot}`;
  const r = rows[0];
  if (!r) return null;
  return {
    plugin: r.plugin,
    database: r.database,
    temporary: r.temporary,
    active: r.active,
    activePid: r.active_pid,
    confirmedFlushLsn: r.confirmed ? parseLsn(r.confirmed) : 0n,
    walStatus: r.wal_status,
  };
}

/** Refuses a slot that ducktail cannot resume from, saying what to do. */
export function assertUsableSlot(slot: string, info: SlotInfo, database: string): void {
  const fix = `drop it (SELECT pg_drop_replication_slot('${slot}');) or configure another [source] slot`;
  if (info.plugin !== 'pgoutput') {
    throw new PrerequisiteError('SLOT_WRONG_PLUGIN', `slot ${slot} uses plugin ${info.plugin}, not pgoutput: ${fix}`);
  }
  if (info.database !== database) {
    throw new PrerequisiteError('SLOT_WRONG_DATABASE', `slot ${slot} belongs to database ${info.database}, not ${database}: ${fix}`);
  }
  if (info.walStatus === 'lost') {
    throw new PrerequisiteError(
      'SLOT_LOST',
      `slot ${slot} was invalidated (its WAL was removed, see max_slot_wal_keep_size): ${recoverySteps(slot).join(' ')}`,
    );
  }
  if (info.active) {
    throw new PrerequisiteError(
      'SLOT_IN_USE',
      `slot ${slot} is in use by backend ${info.activePid}: another ducktail (or client) is reading it; ` +
        'stop it, or set [source] enabled = false on this instance',
    );
  }
}

/** Result of CREATE_REPLICATION_SLOT ... EXPORT_SNAPSHOT. */
export interface CreatedSlot {
  consistentPoint: bigint;
  snapshotName: string;
}

/** Creates the permanent slot with an exported snapshot; the snapshot lives until the next command on `repl`. */
export async function createSlot(repl: Sql, slot: string): Promise<CreatedSlot> {
  const rows = await repl.unsafe(`CREATE_REPLICATION_SLOT ${slot} LOGICAL pgoutput EXPORT_SNAPSHOT`);
  const r = rows[0] as { consistent_point: string; snapshot_name: string } | undefined;
  if (!r) throw new PrerequisiteError('SLOT_CREATE_FAILED', `CREATE_REPLICATION_SLOT ${slot} returned nothing`);
  return { consistentPoint: parseLsn(r.consistent_point), snapshotName: r.snapshot_name };
}

/** Drops the slot (used when an initial copy was interrupted and must start over). */
export async function dropSlot(sql: Sql, slot: string): Promise<void> {
  await sql`SELECT pg_drop_replication_slot(${slot}) FROM pg_replication_slots WHERE slot_name = ${slot}`;
}

/**
 * Where streaming of an existing slot resumes: the downstream's durable position (`durable`) when it is
 * ahead of the slot's confirmed one, else the slot's. Null when the durable position is beyond the
 * server's WAL: the warehouse then outlived a restored or replaced cluster (a backup put back, a replica
 * promoted behind it), holds changes this server never had, and this server writes new changes at
 * positions the warehouse took as applied. Only a new copy is right then.
 */
export async function resumePoint(sql: Sql, durable: bigint, confirmed: bigint): Promise<bigint | null> {
  if (durable <= confirmed) return confirmed;
  const [{ wal }] = (await sql`
    SELECT (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END)::text AS wal`) as unknown as [
    { wal: string },
  ];
  return durable > parseLsn(wal) ? null : durable;
}
