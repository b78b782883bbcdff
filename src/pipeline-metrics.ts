import { statSync } from 'node:fs';
import type { DuckDBInstance } from '@duckdb/node-api';
import type { BatchSink, ChangeBatch } from './change/index.ts';
import type { Metrics } from './metrics/index.ts';
import type { SourceStatus } from './source/index.ts';
import type { BackfillStats } from './warehouse/index.ts';

/** What the pipeline metrics read at scrape time. */
export interface PipelineProbes {
  source: () => SourceStatus | null;
  /** The DuckDB file (its .wal beside it counts too). */
  dbPath: string;
  /** The warehouse's backfill of the initial copy's `R` rows (absent: its families are not registered). */
  backfill?: () => BackfillStats;
  now?: () => number;
}

/** Seconds the oldest received-but-unconfirmed transaction has waited (0 when everything is confirmed). */
export function replicationLagSeconds(s: SourceStatus | null, nowMs: number): number {
  if (!s || s.unconfirmedSinceUs === 0n) return 0;
  return Math.max(0, (nowMs - Number(s.unconfirmedSinceUs / 1000n)) / 1000);
}

function fileBytes(path: string): number {
  let total = 0;
  for (const p of [path, `${path}.wal`]) {
    try {
      total += statSync(p).size;
    } catch {
      // not there (yet): counts as 0
    }
  }
  return total;
}

/** Registers the source, warehouse file and process families; values are read from status at each scrape. */
export function registerPipelineMetrics(m: Metrics, p: PipelineProbes): void {
  const now = p.now ?? Date.now;
  const withSource = (f: (s: SourceStatus) => number | null) => (g: { set(v: number): void; reset(): void }) => {
    const s = p.source();
    const v = s ? f(s) : null;
    if (v === null) g.reset();
    else g.set(v);
  };
  m.gauge('replication_lag_bytes', {
    help: 'WAL bytes PostgreSQL holds for the slot (pg_current_wal_lsn - confirmed_flush_lsn), as last checked.',
    collect: withSource((s) => s.slot.lagBytes),
  });
  m.gauge('replication_lag_seconds', {
    help: 'Age of the oldest transaction received from PostgreSQL and not yet confirmed (0 when caught up).',
    collect: (g) => g.set(replicationLagSeconds(p.source(), now())),
  });
  m.gauge('received_lsn', { help: 'Last WAL position received from the slot (as a number).', collect: withSource((s) => Number(s.receivedLsn)) });
  m.gauge('confirmed_lsn', { help: 'Last WAL position confirmed to PostgreSQL as durable (as a number).', collect: withSource((s) => Number(s.flushedLsn)) });
  m.gauge('snapshot_in_progress', {
    help: '1 while the initial copy runs.',
    collect: withSource((s) => (s.phase === 'snapshot' ? 1 : 0)),
  });
  const snapshotTable = (name: string, help: string, pick: (p: NonNullable<SourceStatus['snapshot']>) => number | null) =>
    m.gauge<'table'>(name, {
      help,
      labelNames: ['table'],
      collect: (g) => {
        g.reset();
        const snap = p.source()?.snapshot;
        const v = snap ? pick(snap) : null;
        if (snap && v !== null) g.set({ table: snap.table }, v);
      },
    });
  snapshotTable('snapshot_table_rows_copied', 'Rows of the table being copied so far (initial copy).', (s) => s.rows);
  snapshotTable('snapshot_table_rows_estimated', "PostgreSQL's estimate of the copied table's rows (pg_class.reltuples).", (s) => s.total);
  snapshotTable('snapshot_table_eta_seconds', 'Seconds left for the table being copied, at the present rate.', (s) => s.etaS);
  m.gauge<'phase'>('source_phase', {
    help: 'The source phase (1 for the current one).',
    labelNames: ['phase'],
    collect: (g) => {
      g.reset();
      const s = p.source();
      if (s) g.set({ phase: s.phase }, 1);
    },
  });
  const backfill = p.backfill;
  if (backfill) {
    m.gauge('copy_backfill_running', {
      help: "1 while the warehouse stores the initial copy's R history rows in the background (after a copy).",
      collect: (g) => g.set(backfill().running ? 1 : 0),
    });
    m.gauge('copy_backfill_tables_pending', {
      help: "Tables whose copied rows may still lack a stored R history row (history derives them meanwhile).",
      collect: (g) => g.set(backfill().tables),
    });
    m.counter('copy_backfill_rows_total', {
      help: "R history rows of initial copies stored by the background backfill since start.",
      collect: (c) => {
        c.reset();
        c.inc(backfill().rows);
      },
    });
    m.gauge('copy_backfill_failed', {
      help: "1 when the backfill's last run failed (the error is in /v1/status warehouse.backfill.error; retried after the next copy or restart).",
      collect: (g) => g.set(backfill().error === null ? 0 : 1),
    });
  }
  m.gauge('duckdb_file_bytes', { help: 'Size of the DuckDB file and its WAL.', collect: (g) => g.set(fileBytes(p.dbPath)) });
  m.gauge('process_resident_memory_bytes', { help: 'Resident set size of the process.', collect: (g) => g.set(process.memoryUsage.rss()) });
}

/** Wraps the warehouse sink: batches and changes applied, apply duration, commit-to-queryable latency, snapshot rows. */
export function instrumentSink(m: Metrics, sink: BatchSink, now: () => number = Date.now): BatchSink {
  const batches = m.counter('batches_applied_total', { help: 'Batches committed in DuckDB.' });
  const changes = m.counter('changes_applied_total', { help: 'Changes (rows) in committed batches, snapshot rows included.' });
  const snapshotRows = m.counter('snapshot_rows_applied_total', { help: 'Rows of the initial copy committed in DuckDB.' });
  const failures = m.counter('batch_apply_failures_total', { help: 'Batches whose apply failed (retried by the bus).' });
  const duration = m.histogram('batch_apply_duration_seconds', { help: 'Time to apply and commit one batch in DuckDB.' });
  const latency = m.histogram('commit_to_queryable_seconds', {
    help: 'From the PostgreSQL commit of a batch\'s oldest streamed change to the batch being queryable in DuckDB.',
  });
  return {
    async apply(batch: ChangeBatch) {
      const started = performance.now();
      try {
        await sink.apply(batch);
      } catch (e) {
        failures.inc();
        throw e;
      }
      duration.observe((performance.now() - started) / 1000);
      batches.inc();
      changes.inc(batch.changes.length);
      let oldestUs = 0n;
      let snapshot = 0;
      for (const c of batch.changes) {
        if (c.lsn === 0n) snapshot++;
        else if (c.commitTimeUs > 0n && (oldestUs === 0n || c.commitTimeUs < oldestUs)) oldestUs = c.commitTimeUs;
      }
      snapshot += batch.copyChunk?.rows ?? 0; // a raw chunk of the initial copy (inline bus)
      if (batch.copyChunk) changes.inc(batch.copyChunk.rows ?? 0);
      if (snapshot > 0) snapshotRows.inc(snapshot);
      if (oldestUs > 0n) latency.observe(Math.max(0, now() - Number(oldestUs / 1000n)) / 1000);
    },
  };
}

/** ducktail_tier_files / ducktail_tier_bytes / ducktail_tier_rows by tier (warm, cold), from the tiering catalog. */
export function registerTierMetrics(m: Metrics, instance: DuckDBInstance): void {
  let last: Promise<Map<string, number[]>> | null = null;
  const read = () =>
    (last ??= (async () => {
      setTimeout(() => (last = null), 1000); // one catalog read serves the three families of a scrape
      let conn: Awaited<ReturnType<DuckDBInstance['connect']>> | null = null;
      try {
        conn = await instance.connect();
        const r = await conn.runAndReadAll(
          'SELECT tier, count(*), sum(byte_size), sum(row_count) FROM _ducktail.tier_files WHERE retired_pass IS NULL GROUP BY tier',
        );
        return new Map(r.getRows().map((row) => [String(row[0]), [Number(row[1]), Number(row[2] ?? 0), Number(row[3] ?? 0)]]));
      } catch {
        return new Map<string, number[]>(); // no tiering catalog in this database (yet), or closing
      } finally {
        conn?.closeSync();
      }
    })());
  const family = (name: string, help: string, index: number) =>
    m.gauge<'tier'>(name, {
      help,
      labelNames: ['tier'],
      collect: async (g) => {
        const tiers = await read();
        for (const tier of ['warm', 'cold']) g.set({ tier }, tiers.get(tier)?.[index] ?? 0);
      },
    });
  family('tier_files', 'Live Parquet files per tier.', 0);
  family('tier_bytes', 'Bytes of live Parquet files per tier.', 1);
  family('tier_rows', 'Rows in live Parquet files per tier.', 2);
}
