import type { Sql } from 'postgres';
import { AppError, errorMessage } from '../errors.ts';
import { formatLsn, parseLsn } from './lsn.ts';

/** Prefix of ducktail's heartbeat messages in the WAL (pg_logical_emit_message). */
export const HEARTBEAT_PREFIX = 'ducktail_heartbeat';

/** What PostgreSQL says about the slot, refreshed every status interval (for /v1/status). */
export interface SlotHealth {
  /** pg_current_wal_lsn() - confirmed_flush_lsn: WAL the slot still holds back for ducktail. */
  lagBytes: number | null;
  confirmedFlushLsn: string | null;
  restartLsn: string | null;
  /** reserved | extended | unreserved | lost (pg_replication_slots.wal_status). */
  walStatus: string | null;
  /** Bytes of WAL that can still be written before the slot is invalidated (null: no max_slot_wal_keep_size). */
  safeWalSize: number | null;
  /** Set when the slot is invalidated or gone: what happened and the steps to recover. */
  invalidated: { reason: string; recovery: string[] } | null;
  checkedAt: string | null;
  error: string | null;
}

/** Heartbeat state for /v1/status. */
export interface HeartbeatState {
  intervalS: number;
  lastLsn: string | null;
  lastAt: string | null;
  error: string | null;
}

export function emptySlotHealth(): SlotHealth {
  return {
    lagBytes: null,
    confirmedFlushLsn: null,
    restartLsn: null,
    walStatus: null,
    safeWalSize: null,
    invalidated: null,
    checkedAt: null,
    error: null,
  };
}

/** The steps that recover from an invalidated (or vanished) slot. */
export function recoverySteps(slot: string): string[] {
  return [
    'Changes made since the slot was invalidated are no longer in the WAL: the mirrors must be copied again.',
    `Drop the slot: SELECT pg_drop_replication_slot('${slot}');`,
    'ducktail then creates a new slot and copies every table again on its next retry (no restart needed); ' +
      'the mirrors are replaced, history keeps the rows it already has.',
    'To prevent it: keep ducktail running, or raise max_slot_wal_keep_size (ALTER SYSTEM SET max_slot_wal_keep_size = ...; SELECT pg_reload_conf();).',
  ];
}

/**
 * Emits one heartbeat: a transactional logical message in the source database. Its transaction
 * travels through pgoutput (messages 'true') like any other, so the slot's confirmed position moves
 * past it even when no published table changes (quiet or filtered database).
 */
export async function emitHeartbeat(sql: Sql): Promise<bigint> {
  const [row] = await sql<{ lsn: string }[]>`
    SELECT pg_logical_emit_message(true, ${HEARTBEAT_PREFIX}, now()::text)::text AS lsn`;
  return parseLsn(row!.lsn);
}

/** Reads the slot's lag and WAL reservation; notes an invalidated or missing slot with recovery steps. */
export async function readSlotHealth(sql: Sql, slot: string, into: SlotHealth): Promise<void> {
  const rows = await sql<
    { confirmed: string | null; restart: string | null; wal_status: string | null; safe: string | null; lag: string | null; reason: string | null }[]
  >`SELECT confirmed_flush_lsn::text AS confirmed, restart_lsn::text AS restart, wal_status,
           safe_wal_size::text AS safe,
           (pg_current_wal_lsn() - confirmed_flush_lsn)::text AS lag,
           to_jsonb(s) ->> 'invalidation_reason' AS reason
      FROM pg_replication_slots s WHERE slot_name = ${slot}`;
  into.checkedAt = new Date().toISOString();
  into.error = null;
  const r = rows[0];
  if (!r) {
    Object.assign(into, emptySlotHealth(), { checkedAt: into.checkedAt });
    return;
  }
  into.confirmedFlushLsn = r.confirmed;
  into.restartLsn = r.restart;
  into.walStatus = r.wal_status;
  into.safeWalSize = r.safe === null ? null : Number(r.safe);
  into.lagBytes = r.lag === null ? null : Math.max(0, Number(r.lag));
  const lost = r.wal_status === 'lost' || (r.reason !== null && r.reason !== '');
  into.invalidated = lost
    ? { reason: r.reason || 'wal_removed (the WAL the slot needed was removed, see max_slot_wal_keep_size)', recovery: recoverySteps(slot) }
    : null;
}

/**
 * Every `statusIntervalMs` reads the slot's health; every `heartbeatS` seconds (0 = never) emits a
 * heartbeat. Runs until the signal aborts; errors are recorded, never thrown (the stream has its own).
 * Its connection comes from `connect`: a query unanswered for `timeoutMs` (a silent network cut)
 * drops that connection and the next tick opens a new one; an abort closes it (2 s limit), so a
 * query stuck on a frozen server never holds a stop.
 */
export async function runMonitor(
  connect: () => Sql,
  opts: { slot: string; heartbeatS: number; statusIntervalMs: number; timeoutMs?: number; log(m: string): void },
  slot: SlotHealth,
  heartbeat: HeartbeatState,
  signal: AbortSignal,
): Promise<void> {
  let sql = connect();
  const closeOnAbort = () => void sql.end({ timeout: 2 }).catch(() => {});
  signal.addEventListener('abort', closeOnAbort, { once: true });
  const timeoutMs = opts.timeoutMs ?? 15_000;
  /** `run` on the current connection; past timeoutMs the connection is dropped and replaced. */
  const answered = async <T>(run: (sql: Sql) => Promise<T>): Promise<T> => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const current = sql;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        if (sql === current && !signal.aborted) sql = connect();
        void current.end({ timeout: 0 }).catch(() => {});
        reject(new AppError('PG_NO_ANSWER', `PostgreSQL did not answer within ${timeoutMs / 1000} s: reconnecting`));
      }, timeoutMs);
    });
    try {
      return await Promise.race([run(current), timeout]);
    } finally {
      clearTimeout(timer);
    }
  };
  let lastBeat = 0;
  let warned = false;
  const tickMs = Math.max(100, Math.min(opts.statusIntervalMs, opts.heartbeatS > 0 ? opts.heartbeatS * 1000 : Infinity));
  while (!signal.aborted) {
    if (opts.heartbeatS > 0 && Date.now() - lastBeat >= opts.heartbeatS * 1000) {
      lastBeat = Date.now();
      try {
        heartbeat.lastLsn = formatLsn(await answered(emitHeartbeat));
        heartbeat.lastAt = new Date().toISOString();
        heartbeat.error = null;
        warned = false;
      } catch (e) {
        heartbeat.error = errorMessage(e);
        const denied = (e as { code?: string }).code === '42501';
        if (denied && !warned) {
          opts.log(
            `heartbeat failed (${heartbeat.error}): the slot may stop advancing while the published tables are quiet; ` +
              'grant EXECUTE ON FUNCTION pg_logical_emit_message(boolean, text, text) to the ducktail role, or set [source] heartbeat_interval_s = 0',
          );
          warned = true;
        }
      }
    }
    try {
      await answered((q) => readSlotHealth(q, opts.slot, slot));
    } catch (e) {
      slot.error = errorMessage(e);
    }
    await sleep(tickMs, signal);
  }
  signal.removeEventListener('abort', closeOnAbort);
  await sql.end({ timeout: 2 }).catch(() => {});
}

/** Resolves after `ms` or at once when the signal aborts. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
  });
}
