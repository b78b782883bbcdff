import type { DuckDBConnection } from '@duckdb/node-api';
import { errorMessage } from '../errors.ts';
import { compactFiles, filesToCompact } from './compact.ts';
import { writeLakeManifests } from './lake.ts';
import { type MirrorTable, storeAgedCopies } from '../warehouse/index.ts';
import type { ColdCache } from './cache.ts';
import type { ColdStore } from './cold.ts';
import type { TieringDeps, TieringOptions } from './index.ts';
import { liveFiles, nextId, retireFile } from './manifest.ts';
import { moveFileToCold } from './move-cold.ts';
import { daysBefore, lit } from './sql.ts';
import { parkRetired, sweep, type SweepResult } from './sweep.ts';
import { copyVectorToCold, coldVectorsToCopy, flushDeletes } from './vectors.ts';
import type { ReadPath } from './views.ts';
import { DEFAULT_FILE_BYTES, monthsToArchive, moveMonthToWarm, TieringError, tierSpec } from './warm.ts';

/** One file a pass wrote. */
export interface MovedFile {
  table: string;
  kind: 'current' | 'history';
  from: 'hot' | 'warm';
  to: 'warm' | 'cold';
  month: string;
  location: string;
  rows: number;
  bytes: number;
}

/** What one archive pass did (POST /v1/admin/archive answers with it). */
export interface PassReport {
  pass: number;
  startedAt: string;
  elapsedMs: number;
  moved: MovedFile[];
  rowsToWarm: number;
  rowsToCold: number;
  /** Files removed by retention_days. */
  expired: number;
  /** Files rewritten by compaction (merged or without their superseded rows), and the files they became. */
  compacted: { from: number; into: number };
  /** Files whose inline deletes went into their deletion vector. */
  vectors: number;
  /** Deletion vectors of cold files copied to the cold store. */
  vectorsToCold: number;
  sweep: SweepResult;
  /** Problems that stopped part of the pass (retried by the next one). */
  errors: string[];
}

/** Everything a pass uses. */
export interface PassContext {
  opts: TieringOptions;
  warmDir: string;
  store: ColdStore;
  cache: ColdCache | null;
  deps: TieringDeps;
  refresh(conn: DuckDBConnection, table: string): Promise<void>;
  /** The local path DuckDB reads a live file from (cold: folder or cache). */
  readPath: ReadPath;
  mirrors(conn: DuckDBConnection): Promise<MirrorTable[]>;
  signal?: AbortSignal;
}

/** One archive pass: sweep, hot -> warm per table and history, warm -> cold, retention. */
export async function runPass(ctx: PassContext): Promise<PassReport> {
  const { opts, deps } = ctx;
  const started = performance.now();
  const now = new Date();
  const pass = await deps.exclusive(async (conn) => {
    const id = await nextId(conn, 'tier_pass_id');
    await conn.run(`INSERT INTO _ducktail.tier_passes VALUES (${id}, now(), NULL, 'running', NULL)`);
    return id;
  });
  const report: PassReport = {
    pass,
    startedAt: now.toISOString(),
    elapsedMs: 0,
    moved: [],
    rowsToWarm: 0,
    rowsToCold: 0,
    expired: 0,
    compacted: { from: 0, into: 0 },
    vectors: 0,
    vectorsToCold: 0,
    sweep: { trashDeleted: 0, orphansDeleted: 0, errors: [] },
    errors: [],
  };
  const finish = async (status: string) => {
    report.elapsedMs = Math.round(performance.now() - started);
    await deps.exclusive((conn) =>
      conn.run(`UPDATE _ducktail.tier_passes SET finished_at = now(), status = ${lit(status)}, report = ${lit(JSON.stringify(report))} WHERE id = ${pass}`),
    );
  };
  try {
    report.sweep = await deps.exclusive((conn) => sweep(conn, ctx.store, ctx.warmDir, opts.graceMinutes * 60_000));
    report.errors.push(...report.sweep.errors);
    await hotToWarm(ctx, pass, daysBefore(now, opts.hotDays), report);
    await compact(ctx, pass, report);
    await vectors(ctx, pass, report);
    await warmToCold(ctx, pass, daysBefore(now, opts.warmDays), report);
    await expire(ctx, pass, now, report);
    await coldVectors(ctx, report);
    await manifests(ctx, report);
  } catch (e) {
    report.errors.push(errorMessage(e));
    await finish('failed').catch(() => {});
    throw e;
  }
  await finish(report.errors.length > 0 ? 'partial' : 'done');
  return report;
}

async function hotToWarm(ctx: PassContext, pass: number, cutoff: string, report: PassReport): Promise<void> {
  const { deps } = ctx;
  const mirrors = await deps.exclusive((conn) => ctx.mirrors(conn));
  for (const [name, t] of Object.entries(ctx.opts.tables)) {
    const m = mirrors.find((x) => x.name === name);
    if (!m) {
      // Not mirrored (yet: still copying, or a misspelt name): nothing to move, but say so.
      deps.log.warn(
        `tiering.tables."${name}": no such table in the warehouse (mirrored: ${mirrors.slice(0, 10).map((x) => x.name).join(', ') || 'none yet'}${mirrors.length > 10 ? ', …' : ''}); nothing to move`,
      );
      continue;
    }
    if (!m.columns.some((c) => c.name === t.timeColumn)) {
      report.errors.push(
        `tiering.tables."${name}".time_column = "${t.timeColumn}": the table has no such column ` +
          `(columns: ${m.columns.map((c) => c.name).join(', ')})`,
      );
      continue;
    }
    for (const kind of ['current', 'history'] as const) {
      const spec = tierSpec(m, kind, t.timeColumn);
      // The initial copy's `R` rows still derived from the current table are stored once they are old enough
      // to move, so they are archived like stored ones (src/warehouse/lazy-copy.ts).
      if (kind === 'history') await deps.exclusive((conn) => storeAgedCopies(conn, m, cutoff));
      const months = await deps.exclusive((conn) => monthsToArchive(conn, spec, cutoff));
      for (const month of months) {
        ctx.signal?.throwIfAborted();
        const written = await deps.exclusive((conn) =>
          moveMonthToWarm(conn, spec, {
            month,
            cutoff,
            warmDir: ctx.warmDir,
            pass,
            limits: { ...(ctx.opts.maxFileRows ? { maxRows: ctx.opts.maxFileRows } : {}), ...(ctx.opts.maxFileBytes ? { maxBytes: ctx.opts.maxFileBytes } : {}) },
            refresh: () => ctx.refresh(conn, name),
          }),
        );
        for (const f of written) {
          report.rowsToWarm += f.rowCount;
          report.moved.push({ table: name, kind, from: 'hot', to: 'warm', month, location: f.location, rows: f.rowCount, bytes: f.byteSize });
        }
      }
    }
  }
}

async function compact(ctx: PassContext, pass: number, report: PassReport): Promise<void> {
  const mirrors = await ctx.deps.exclusive((conn) => ctx.mirrors(conn));
  const rules = {
    minFiles: ctx.opts.compactMinFiles,
    deletedRatio: ctx.opts.compactDeletedRatio,
    maxRows: ctx.opts.maxFileRows ?? 8_000_000,
    maxBytes: ctx.opts.maxFileBytes ?? DEFAULT_FILE_BYTES,
  };
  for (const [name, t] of Object.entries(ctx.opts.tables)) {
    const m = mirrors.find((x) => x.name === name);
    if (!m) continue;
    for (const kind of ['current', 'history'] as const) {
      const spec = tierSpec(m, kind, t.timeColumn);
      const groups = await ctx.deps.exclusive((conn) => filesToCompact(conn, spec, rules));
      for (const files of groups) {
        ctx.signal?.throwIfAborted();
        try {
          // Cold files are read from the cache: fetch them first (S3 unreachable: left as they are, retried next pass).
          const cold = files.filter((f) => f.tier === 'cold');
          if (cold.length > 0 && ctx.cache) await ctx.cache.ensure(cold.map((f) => f.location));
          await ctx.deps.exclusive((conn) =>
            compactFiles(conn, spec, files, { pass, warmDir: ctx.warmDir, readPath: ctx.readPath, refresh: () => ctx.refresh(conn, name) }),
          );
        } catch (e) {
          if (!files.some((f) => f.tier === 'cold')) throw e;
          report.errors.push(`compacting cold files of ${name}: ${e instanceof TieringError ? `${e.code}: ` : ''}${errorMessage(e)}`);
          continue;
        }
        report.compacted.from += files.length;
        report.compacted.into++;
      }
    }
  }
}

/** Files with many inline deletes get them in their deletion vector. */
async function vectors(ctx: PassContext, pass: number, report: PassReport): Promise<void> {
  for (const name of Object.keys(ctx.opts.tables)) {
    ctx.signal?.throwIfAborted();
    report.vectors += await ctx.deps.exclusive((conn) =>
      flushDeletes(conn, name, {
        warmDir: ctx.warmDir,
        pass,
        ...(ctx.opts.vectorMinRows ? { minRows: ctx.opts.vectorMinRows } : {}),
        refresh: () => ctx.refresh(conn, name),
      }),
    );
  }
}

/** Deletion vectors of cold files are copied to the cold store (new files, new vectors). */
async function coldVectors(ctx: PassContext, report: PassReport): Promise<void> {
  for (const name of Object.keys(ctx.opts.tables)) {
    const files = await ctx.deps.exclusive((conn) => coldVectorsToCopy(conn, name));
    for (const f of files) {
      ctx.signal?.throwIfAborted();
      try {
        await copyVectorToCold(ctx.store, ctx.deps.exclusive, f);
        report.vectorsToCold++;
      } catch (e) {
        report.errors.push(`copying the deletion vector of ${f.location} to the cold store: ${e instanceof TieringError ? `${e.code}: ` : ''}${errorMessage(e)}`);
        if (e instanceof TieringError && e.code === 'COLD_UNREACHABLE') return;
      }
    }
  }
}

async function manifests(ctx: PassContext, report: PassReport): Promise<void> {
  await ctx.deps.exclusive(async (conn) => {
    const mirrors = await ctx.mirrors(conn);
    for (const [name, t] of Object.entries(ctx.opts.tables)) {
      const m = mirrors.find((x) => x.name === name);
      if (!m) continue;
      await writeLakeManifests(conn, m, t.timeColumn, ctx.warmDir, ctx.store).catch((e: unknown) => {
        report.errors.push(`_manifest.json of ${name}: ${e instanceof TieringError ? `${e.code}: ` : ''}${errorMessage(e)}`);
      });
    }
  });
}

async function warmToCold(ctx: PassContext, pass: number, cutoff: string, report: PassReport): Promise<void> {
  const files = await ctx.deps.exclusive((conn) => liveFiles(conn, `tier = 'warm' AND max_time < ${lit(cutoff)}::TIMESTAMPTZ`));
  for (const f of files) {
    ctx.signal?.throwIfAborted();
    try {
      const cold = await moveFileToCold(
        { store: ctx.store, cache: ctx.cache, connect: ctx.deps.connect, exclusive: ctx.deps.exclusive, refresh: ctx.refresh, warmDir: ctx.warmDir },
        f,
        pass,
      );
      report.rowsToCold += cold.rowCount;
      report.moved.push({ table: f.tableName, kind: f.kind, from: 'warm', to: 'cold', month: f.month, location: cold.location, rows: cold.rowCount, bytes: cold.byteSize });
    } catch (e) {
      report.errors.push(e instanceof TieringError ? `${e.code}: ${e.message}` : errorMessage(e));
      // The store is unreachable or failing: leave the rest warm, the next pass retries.
      if (e instanceof TieringError && e.code === 'COLD_UNREACHABLE') break;
    }
  }
}

/** retention_days: files whose newest row is older than the retention leave the manifest (deleted after the grace). */
async function expire(ctx: PassContext, pass: number, now: Date, report: PassReport): Promise<void> {
  for (const [name, t] of Object.entries(ctx.opts.tables)) {
    if (!t.retentionDays) continue;
    const cutoff = daysBefore(now, t.retentionDays);
    await ctx.deps.exclusive(async (conn) => {
      const files = await liveFiles(conn, `table_name = ${lit(name)} AND max_time < ${lit(cutoff)}::TIMESTAMPTZ`);
      if (files.length === 0) return;
      await conn.run('BEGIN TRANSACTION');
      try {
        for (const f of files) {
          await retireFile(conn, f, pass);
          await conn.run(`DELETE FROM _ducktail.tier_locator WHERE file_id = ${f.id}`);
          await conn.run(`DELETE FROM _ducktail.tier_deletes WHERE file_id = ${f.id}`);
        }
        await ctx.refresh(conn, name);
        await conn.run('COMMIT');
        for (const f of files) await parkRetired(conn, ctx.warmDir, f.location, f.id).catch(() => {});
        report.expired += files.length;
      } catch (e) {
        await conn.run('ROLLBACK').catch(() => {});
        throw e;
      }
    });
  }
}
