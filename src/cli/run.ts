import { resolve } from 'node:path';
import { type Appliance, startAppliance } from '../appliance.ts';
import { loadConfig } from '../config/index.ts';
import { createLogger } from '../log.ts';
import { formatLsn } from '../source/lsn.ts';
import { loadDuckDb } from '../warehouse/duckdb-native.ts';
import { VERSION } from '../version.ts';
import type { Args } from './args.ts';
import { formatCheck, runCheck } from './check.ts';
import { createShutdown } from './shutdown.ts';

const DEFAULT_CONFIG = 'config/ducktail.toml';

/** `ducktail run`: the appliance until SIGINT/SIGTERM. */
export async function runCommand(args: Args): Promise<number> {
  const configPath = args.config ?? process.env.DUCKTAIL_CONFIG ?? DEFAULT_CONFIG;
  const config = loadConfig({ path: configPath, env: process.env });
  const log = createLogger(config.log.level, undefined, undefined, config.log.format);
  let appliance: Appliance | null = null;
  const shutdown = createShutdown({ describe: () => describeInFlight(appliance) });
  try {
    log.info(`ducktail ${VERSION} starting`);
    // Relative paths in the config are relative to the working directory: say where things go.
    log.info(
      `config ${resolve(configPath)}; warehouse ${resolve(config.warehouse.path)}; warm tier ${resolve(config.tiering.warm_dir)}; ` +
        `cold tier ${config.tiering.cold_url}; bus ${config.bus.kind}`,
    );
    appliance = await startAppliance(config, { log, version: VERSION });
    await shutdown.requested;
    log.info('stopping: draining the pipeline');
    await appliance.stop(shutdown.step);
  } finally {
    shutdown.done();
  }
  log.info('stopped');
  return 0;
}

/** What a stop would abandon right now: the source's pending work and positions. */
export function describeInFlight(appliance: Appliance | null): string {
  const s = appliance?.source?.status;
  if (!s) return '';
  return (
    `source ${s.phase}: ${s.pendingChanges} changes not handed on, ${s.inflightBatches} batches not committed; ` +
    `slot confirmed up to ${formatLsn(s.flushedLsn)}, received up to ${formatLsn(s.receivedLsn)}`
  );
}

/** `ducktail check`: config and PostgreSQL prerequisites; exit 0 when ready, 1 with problems. */
export async function checkCommand(args: Args): Promise<number> {
  const configPath = args.config ?? process.env.DUCKTAIL_CONFIG ?? DEFAULT_CONFIG;
  const config = loadConfig({ path: configPath, env: process.env });
  const report = await runCheck(config);
  console.log(formatCheck(report));
  return report.problems.length === 0 ? 0 : 1;
}

/** Hidden `ducktail selftest`: proves the embedded DuckDB library loads (binary smoke test). */
export async function selftestCommand(): Promise<number> {
  const duck = await loadDuckDb();
  const instance = await duck.DuckDBInstance.create(':memory:');
  const conn = await instance.connect();
  const reader = await conn.runAndReadAll('SELECT version()');
  console.log(`duckdb ${String(reader.getRows()[0]?.[0])}`);
  conn.closeSync();
  instance.closeSync();
  return 0;
}
