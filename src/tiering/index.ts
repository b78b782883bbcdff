import type { DuckDBConnection } from '@duckdb/node-api';
import { CronJob } from 'cron';
import { resolve } from 'node:path';
import { errorMessage } from '../errors.ts';
import type { Logger } from '../log.ts';
import { MirrorCatalog, type MirrorTable } from '../warehouse/index.ts';
import { type ColdCache, createColdCache, parseSize } from './cache.ts';
import { type ColdStore, createColdStore, type S3Settings } from './cold.ts';
import type { Metrics } from '../metrics/index.ts';
import { liveFiles, type ManifestFile } from './manifest.ts';
import { registerTieringMetrics } from './metrics.ts';
import { type PassReport, runPass } from './pass.ts';
import { lit } from './sql.ts';
import { refreshViews } from './views.ts';

export { TieringError } from './warm.ts';
export { createTieringFromConfig, tieringOptions } from './config.ts';
export type { PassReport } from './pass.ts';
export { checkTiering, type TieringProblem } from './check.ts';

/** Per-table tiering settings. */
export interface TableTiering {
  timeColumn: string;
  retentionDays?: number;
}

/** Settings of the tiering stage (from [tiering]). */
export interface TieringOptions {
  hotDays: number;
  warmDays: number;
  warmDir: string;
  coldUrl: string;
  s3: S3Settings;
  schedule: string;
  graceMinutes: number;
  coldCacheDir: string;
  coldCacheSize: string;
  compactMinFiles: number;
  compactDeletedRatio: number;
  /** Rows per file: a month with more is split by key into several files (absent: 8M). */
  maxFileRows?: number;
  /** Bytes per file (max_file_size): a month whose rows would make a larger file is split by key (absent: 256 MiB). */
  maxFileBytes?: number;
  /** A file with this many inline deletes gets them in its deletion vector (absent: 64). */
  vectorMinRows?: number;
  tables: Record<string, TableTiering>;
}

/** What the stage needs from the warehouse. */
export interface TieringDeps {
  /** Runs on the writer connection between two applies. */
  exclusive<T>(fn: (conn: DuckDBConnection) => Promise<T>): Promise<T>;
  /** A new reader connection; caller closes it. */
  connect(): Promise<DuckDBConnection>;
  log: Logger;
  /** The appliance's Prometheus registry (tier sizes, passes). */
  metrics?: Metrics;
  /** Registers a callback run in the apply transaction of a schema change (views follow renames and drops). */
  onLayoutChange?(fn: (conn: DuckDBConnection, m: MirrorTable) => Promise<void>): void;
}

/** Counters for /v1/status and /readyz. */
export interface TieringStatus {
  passes: number;
  failures: number;
  running: boolean;
  lastPass: PassReport | null;
  lastError: string | null;
  coldCacheBytes: number;
  /** Live files per tier after the last pass: files, rows and bytes (for /v1/status). */
  tiers: Record<string, { files: number; rows: number; bytes: number }>;
}

/** The tiering stage: archive passes (on demand and by cron) and cold reads for queries. */
export interface Tiering {
  readonly status: TieringStatus;
  /** Folders DuckDB must be allowed to read (warm dir, cold folder or cache). */
  readonly readDirs: string[];
  /** Rewrites every table's views from the manifest (at start-up). */
  init(): Promise<void>;
  /** Runs one pass now (one at a time: a second call waits for the first and runs again). */
  archive(signal?: AbortSignal): Promise<PassReport>;
  /**
   * Makes the cold files a query may read present in the local cache (every cold file without `sql`)
   * and keeps them there until the returned release is called (when the query is done).
   */
  prepareQuery(sql?: string): Promise<() => void>;
  /** Resolves when no pass is running. */
  idle(): Promise<void>;
  /** Starts the cron schedule; stops with the signal. */
  schedule(signal: AbortSignal): void;
}

/** Builds the tiering stage from its settings and the warehouse's connections. */
export function createTiering(opts: TieringOptions, deps: TieringDeps): Tiering {
  const warmDir = resolve(opts.warmDir);
  const store: ColdStore = createColdStore(opts.coldUrl, opts.s3);
  const cache: ColdCache | null = store.localRoot ? null : createColdCache(store, resolve(opts.coldCacheDir), parseSize(opts.coldCacheSize));
  const readPath = (f: ManifestFile) =>
    f.tier === 'warm' ? f.location : store.localRoot ? f.location.slice('file://'.length) : cache!.pathOf(f.location);
  const status: TieringStatus = { passes: 0, failures: 0, running: false, lastPass: null, lastError: null, coldCacheBytes: 0, tiers: {} };
  const log = deps.log;
  const recorder = deps.metrics ? registerTieringMetrics(deps.metrics, status) : null;

  async function mirrors(conn: DuckDBConnection): Promise<MirrorTable[]> {
    return new MirrorCatalog(conn).load();
  }
  /** Rewrites a table's views; DuckDB binds a view when it is created, so its cold files must be cached. */
  async function refresh(conn: DuckDBConnection, table: string, known?: MirrorTable): Promise<void> {
    const m = known ?? (await mirrors(conn)).find((t) => t.name === table);
    if (!m) return;
    if (cache) {
      const cold = await liveFiles(conn, `tier = 'cold' AND table_name = ${lit(table)}`);
      await cache.ensure(cold.map((f) => f.location));
    }
    await refreshViews(conn, m, readPath, opts.tables[table]?.timeColumn);
  }
  // A RENAME or DROP COLUMN: the views map archived files to the new layout in the same transaction.
  // A failure (e.g. S3 unreachable for an uncached cold file) must not stop the apply: the next pass repairs.
  deps.onLayoutChange?.((conn, m) =>
    refresh(conn, m.name, m).catch((e: unknown) => log.warn(`views of ${m.name} not rewritten after its schema change: ${errorMessage(e)}; the next archive pass does`)),
  );

  async function tierSizes(): Promise<TieringStatus['tiers']> {
    const conn = await deps.connect();
    try {
      const r = await conn.runAndReadAll(
        'SELECT tier, count(*), sum(row_count), sum(byte_size) FROM _ducktail.tier_files WHERE retired_pass IS NULL GROUP BY tier',
      );
      return Object.fromEntries(r.getRows().map(([tier, files, rows, bytes]) => [tier as string, { files: Number(files), rows: Number(rows), bytes: Number(bytes) }]));
    } finally {
      conn.closeSync();
    }
  }

  let chain: Promise<unknown> = Promise.resolve();
  const archive = (signal?: AbortSignal): Promise<PassReport> => {
    const run = chain.then(async () => {
      status.running = true;
      const started = performance.now();
      let result = 'failed';
      try {
        const report = await runPass(
          { opts, warmDir, store, cache, deps, refresh, readPath, mirrors, signal },
        );
        status.passes++;
        status.lastPass = report;
        log.info(passSummary(report));
        if (report.errors.length > 0) log.warn(`archive pass ${report.pass} left work for the next pass: ${report.errors.join('; ')}`);
        status.lastError = report.errors.length > 0 ? report.errors.join('; ') : null;
        if (report.errors.length > 0) status.failures++;
        result = report.errors.length > 0 ? 'partial' : 'done';
        return report;
      } catch (e) {
        status.failures++;
        status.lastError = errorMessage(e);
        log.error(`archive pass failed: ${errorMessage(e)}`);
        throw e;
      } finally {
        recorder?.passDone(result, (performance.now() - started) / 1000);
        status.running = false;
        status.coldCacheBytes = cache?.bytes() ?? 0;
        status.tiers = await tierSizes().catch(() => status.tiers);
      }
    });
    chain = run.catch(() => {});
    return run;
  };

  return {
    status,
    readDirs: [warmDir, store.localRoot ?? cache!.dir],
    async init() {
      await deps.exclusive(async (conn) => {
        for (const m of await mirrors(conn)) {
          // The views persist with the manifest; this only repairs them (e.g. after a cache_dir change).
          await refresh(conn, m.name).catch((e: unknown) => log.warn(`views of ${m.name} kept as they were: ${errorMessage(e)}`));
        }
      });
      status.tiers = await tierSizes().catch(() => ({}));
    },
    archive,
    idle: () => chain.then(() => {}),
    async prepareQuery(sql) {
      const none = () => {};
      if (!cache) return none;
      const conn = await deps.connect();
      let files: ManifestFile[];
      try {
        files = await liveFiles(conn, "tier = 'cold'");
      } finally {
        conn.closeSync();
      }
      const text = sql?.toLowerCase();
      const needed = files.filter((f) => !text || text.includes(f.tableName.slice(f.tableName.indexOf('.') + 1).toLowerCase()));
      const release = needed.length > 0 ? await cache.acquire(needed.map((f) => f.location)) : none;
      status.coldCacheBytes = cache.bytes();
      return release;
    },
    schedule(signal) {
      const job = CronJob.from({
        cronTime: opts.schedule,
        start: true,
        onTick: () => {
          archive(signal).catch(() => {}); // logged by archive()
        },
      });
      signal.addEventListener('abort', () => job.stop(), { once: true });
    },
  };
}

/** One log line per pass, whoever started it (cron, CLI, API). */
export function passSummary(r: PassReport): string {
  const parts = [`${r.rowsToWarm} rows hot -> warm`, `${r.rowsToCold} rows warm -> cold`, `${r.moved.length} files written`];
  if (r.compacted.from > 0) parts.push(`${r.compacted.from} files compacted into ${r.compacted.into}`);
  if (r.vectors > 0) parts.push(`${r.vectors} deletion vectors`);
  if (r.vectorsToCold > 0) parts.push(`${r.vectorsToCold} copied to cold`);
  if (r.expired > 0) parts.push(`${r.expired} files expired`);
  if (r.sweep.trashDeleted + r.sweep.orphansDeleted > 0) parts.push(`${r.sweep.trashDeleted + r.sweep.orphansDeleted} old files deleted`);
  return `archive pass ${r.pass} ${r.errors.length > 0 ? 'partial' : 'done'} in ${r.elapsedMs} ms: ${parts.join(', ')}`;
}
