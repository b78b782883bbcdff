import { loadConfig } from '../config/index.ts';
import { AppError } from '../errors.ts';
import { createLogger } from '../log.ts';
import { createTieringFromConfig, type PassReport, passSummary } from '../tiering/index.ts';
import { createWarehouse } from '../warehouse/index.ts';
import type { Args } from './args.ts';

const DEFAULT_CONFIG = 'config/ducktail.toml';

/**
 * `ducktail archive`: one tiering pass now. Asks the instance running with this config
 * (POST /v1/admin/archive on [api] listen); when none answers, opens the warehouse and runs alone.
 */
export async function archiveCommand(args: Args): Promise<number> {
  const config = loadConfig({ path: args.config ?? process.env.DUCKTAIL_CONFIG ?? DEFAULT_CONFIG, env: process.env });
  const log = createLogger(config.log.level, undefined, undefined, config.log.format);
  const admin = config.api.tokens.find((t) => t.scope === 'admin');
  const host = config.api.listen.replace(/^0\.0\.0\.0:/, '127.0.0.1:');
  let response: Response | null = null;
  try {
    response = await fetch(`http://${host}/v1/admin/archive`, {
      method: 'POST',
      headers: admin ? { authorization: `Bearer ${admin.token}` } : {},
    });
  } catch {
    response = null; // nothing listening: run alone
  }
  if (response) {
    const body = await response.text();
    if (!response.ok) {
      throw new AppError('ARCHIVE_FAILED', `the running instance at ${host} answered ${response.status}: ${body}`);
    }
    console.log(body);
    // Same exit status as a pass run alone: 1 when part of it failed (the report's errors).
    const report = JSON.parse(body) as PassReport;
    log.info(`${host}: ${passSummary(report)}`);
    if (report.errors.length > 0) log.warn(`left for the next pass: ${report.errors.join('; ')}`);
    return report.errors.length === 0 ? 0 : 1;
  }
  log.info(`no instance answers on ${host}: running the pass in this process`);
  const warehouse = await createWarehouse({
    path: config.warehouse.path,
    memoryLimit: config.warehouse.memory_limit,
    threads: config.warehouse.threads,
    stream: config.source.slot,
  }).catch((e: unknown) => {
    // A running instance holds the file but did not answer at this config's [api] listen.
    if (e instanceof AppError && /lock/i.test(e.message)) {
      throw new AppError(
        'ARCHIVE_FAILED',
        `${e.message}\nA ducktail process holds the warehouse but nothing answered POST /v1/admin/archive on ${host}: ` +
          'give this command the config that process runs with ([api] listen, and an admin token when tokens are set), or stop it',
        { cause: e },
      );
    }
    throw e;
  });
  try {
    const tiering = createTieringFromConfig(config, warehouse, log.child('tiering'));
    await tiering.init();
    const report = await tiering.archive();
    console.log(JSON.stringify(report));
    return report.errors.length === 0 ? 0 : 1;
  } finally {
    await warehouse.close();
  }
}
