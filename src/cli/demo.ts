import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type Appliance, startAppliance } from '../appliance.ts';
import { type Config, loadConfig } from '../config/index.ts';
import { applyDemoSchema } from '../demo/schema.ts';
import { createWorkload } from '../demo/workload.ts';
import type { Sql } from 'postgres';
import { demoPostgresDir, type EmbeddedPostgres, postmaster, removeCluster, startEmbeddedPostgres } from '../demo/postgres.ts';
import { errorMessage } from '../errors.ts';
import { createLogger } from '../log.ts';
import { connectSql } from '../source/index.ts';
import { VERSION } from '../version.ts';
import type { Args } from './args.ts';
import { describeInFlight } from './run.ts';
import { createShutdown } from './shutdown.ts';

/**
 * `ducktail demo`: an embedded PostgreSQL with the demo schema, a synthetic order workload,
 * the inline pipeline and the API. Data persists in demo.data_dir, so a second start resumes.
 */
export async function demoCommand(args: Args): Promise<number> {
  const base = loadConfig({ path: args.config, env: process.env, allowMissingFile: true });
  const dataDir = resolve(base.demo.data_dir);
  mkdirSync(dataDir, { recursive: true });
  chmodSync(dataDir, 0o755);
  const log = createLogger(base.log.level, undefined, undefined, base.log.format);
  log.info(`ducktail ${VERSION} demo: data in ${dataDir}`);

  const fresh = !existsSync(join(dataDir, 'warehouse.duckdb'));
  const pgDir = demoPostgresDir(dataDir);
  if (pgDir.relocated) {
    log.info(`PostgreSQL data in ${pgDir.dir}: run as root, its OS user "postgres" cannot reach ${dataDir}`);
    if (fresh) await removeCluster(pgDir.dir); // left by a data dir that was deleted: start over with it
  }
  let pg: EmbeddedPostgres | null = null;
  let appliance: Appliance | null = null;
  let sql: Sql | null = null;
  const workloadStop = new AbortController();
  const shutdown = createShutdown({
    describe: () => describeInFlight(appliance),
    onAbandon: () => stopPostgresNow(pgDir.dir),
  });
  try {
    pg = await startEmbeddedPostgres({ dir: pgDir.dir, log: log.child('postgres') });
    const config: Config = {
      ...base,
      source: { ...base.source, url: pg.url },
      warehouse: { ...base.warehouse, path: join(dataDir, 'warehouse.duckdb') },
      tiering: {
        ...base.tiering,
        warm_dir: join(dataDir, 'warm'),
        cold_url: `file://${join(dataDir, 'cold')}`,
        tables: { 'public.orders': { time_column: 'order_date' }, ...base.tiering.tables },
      },
      api: { ...base.api, listen: `127.0.0.1:${base.demo.port}` },
    };
    sql = connectSql(pg.url, { max: 2 });
    await applyDemoSchema(sql);
    appliance = await startAppliance(config, { log, version: VERSION });
    const workload = createWorkload(sql, {
      rate: base.demo.rate,
      signal: workloadStop.signal,
      onError: (e) => log.child('workload').warn((e as Error).message),
    });
    const url = appliance.url;
    process.stdout.write(
      `\nducktail demo is running${fresh ? '' : ' (resumed)'}: ${base.demo.rate} operations/s on the embedded PostgreSQL\n` +
        `  dashboard  ${url}/\n` +
        `  query      curl -s ${url}/v1/query -H 'content-type: application/json' -d '{"sql":"select count(*) from orders"}'\n` +
        `  tables     curl -s ${url}/v1/tables\n` +
        `  postgres   ${pg.url}\n` +
        'Ctrl-C stops it; npm start again resumes.\n\n',
    );
    await shutdown.requested;
    log.info('stopping the workload and draining the pipeline');
    shutdown.step('stopping the workload');
    workloadStop.abort();
    await workload.done;
  } finally {
    workloadStop.abort();
    await appliance?.stop(shutdown.step).catch((e: unknown) => log.warn(`stopping the pipeline: ${errorMessage(e)}`));
    await sql?.end({ timeout: 1 }).catch(() => {});
    shutdown.step('stopping PostgreSQL');
    // The server runs in its own session (a terminal's Ctrl-C does not reach it): it is ours to stop.
    await pg?.stop({ fastMs: 3_000 });
    shutdown.done();
  }
  log.info('demo stopped');
  return 0;
}

/** Abandoning the stop: immediate shutdown of the demo's PostgreSQL (crash recovery next start, nothing lost). */
async function stopPostgresNow(dir: string): Promise<void> {
  const server = postmaster(dir); // also one still starting, or one reused from an earlier run
  if (server) process.kill(server.pid, 'SIGQUIT');
  for (const until = Date.now() + 2_000; postmaster(dir) && Date.now() < until; ) await Bun.sleep(25);
}
