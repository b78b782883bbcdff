import { startAppliance } from '../appliance.ts';
import { loadConfig } from '../config/index.ts';
import { createLogger } from '../log.ts';
import { loadDuckDb } from '../warehouse/duckdb-native.ts';
import { VERSION } from '../version.ts';
import type { Args } from './args.ts';
import { formatCheck, runCheck } from './check.ts';

const DEFAULT_CONFIG = 'config/ducktail.toml';

/** `ducktail run`: the appliance until SIGINT/SIGTERM. */
export async function runCommand(args: Args): Promise<number> {
  const config = loadConfig({ path: args.config ?? process.env.DUCKTAIL_CONFIG ?? DEFAULT_CONFIG, env: process.env });
  const log = createLogger(config.log.level);
  log.info(`ducktail ${VERSION} starting`);
  const appliance = await startAppliance(config, { log, version: VERSION });
  await untilSignal();
  log.info('stopping: draining the pipeline');
  await appliance.stop();
  log.info('stopped');
  return 0;
}

/** `ducktail check`: config and PostgreSQL prerequisites; exit 0 when ready, 1 with problems. */
export async function checkCommand(args: Args): Promise<number> {
  const config = loadConfig({ path: args.config ?? process.env.DUCKTAIL_CONFIG ?? DEFAULT_CONFIG, env: process.env });
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

/** Resolves on the first SIGINT or SIGTERM. */
export function untilSignal(): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      resolve();
    };
    process.on('SIGINT', done);
    process.on('SIGTERM', done);
  });
}
