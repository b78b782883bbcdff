/**
 * The soak's fault schedule: a seeded shuffle of kill -9s, PostgreSQL restarts, broker outages and
 * S3 outages during archive passes (plus as many plain archive passes), with seeded pauses between.
 */
import type { KafkaMock } from '../support/kafka.ts';
import type { SoakApi } from './config.ts';
import type { DucktailProcess, SoakPostgres, SoakS3 } from './services.ts';

export interface SoakEnv {
  pg: SoakPostgres;
  s3: SoakS3;
  kafka: KafkaMock | null;
  ducktail: DucktailProcess;
  api: SoakApi;
  log: (line: string) => void;
}

export interface FaultPlan {
  kills: number;
  pgRestarts: number;
  /** pg_terminate_backend rounds (defaults to pgRestarts). */
  pgTerminations?: number;
  brokerOutages: number;
  s3Outages: number;
  gapMs: [number, number];
}

export interface FaultCounts {
  kills: number;
  pgRestarts: number;
  /** Rounds of pg_terminate_backend on every connection to the source database. */
  pgTerminations: number;
  brokerOutages: number;
  s3Outages: number;
  /** S3 outages that hit the pass's cold step (an upload failed, or cold files had moved before). */
  s3OutagesHitCold: number;
  /** Kills that hit an archive pass, a broker outage or a PostgreSQL outage (part of `kills`). */
  killsDuringFaults: number;
  archivePasses: number;
  archivePassErrors: number;
  /** Archive requests that did not answer within 2 minutes, or failed with every service up. */
  archiveHangsOrFailures: number;
}

type Fault = 'kill' | 'pg' | 'terminate' | 'broker' | 's3' | 'archive';

const ARCHIVE_LIMIT_MS = 120_000;
const API_WAIT_MS = 120_000;

export async function runFaults(env: SoakEnv, plan: FaultPlan, random: () => number): Promise<FaultCounts> {
  const between = (a: number, b: number) => Math.round(a + random() * (b - a));
  const schedule: Fault[] = [
    ...Array<Fault>(plan.kills).fill('kill'),
    ...Array<Fault>(plan.pgRestarts).fill('pg'),
    ...Array<Fault>(plan.pgTerminations ?? plan.pgRestarts).fill('terminate'),
    ...Array<Fault>(env.kafka ? plan.brokerOutages : 0).fill('broker'),
    ...Array<Fault>(plan.s3Outages).fill('s3'),
    ...Array<Fault>(plan.s3Outages).fill('archive'),
  ];
  for (let i = schedule.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [schedule[i], schedule[j]] = [schedule[j]!, schedule[i]!];
  }
  const c: FaultCounts = {
    kills: 0,
    pgRestarts: 0,
    pgTerminations: 0,
    brokerOutages: 0,
    s3Outages: 0,
    s3OutagesHitCold: 0,
    killsDuringFaults: 0,
    archivePasses: 0,
    archivePassErrors: 0,
    archiveHangsOrFailures: 0,
  };
  const t0 = Date.now();
  const at = () => `${((Date.now() - t0) / 1000).toFixed(1)}s`;

  /** One archive pass through the API; S3 stopped `stopAfterMs` into it when given. */
  async function archivePass(stopAfterMs: number | null): Promise<void> {
    await waitApi(env);
    const pass = env.api.archive(AbortSignal.timeout(ARCHIVE_LIMIT_MS)).then(
      (r) => r,
      (e: unknown) => e as Error,
    );
    if (stopAfterMs !== null) {
      await Bun.sleep(stopAfterMs);
      await env.s3.stop();
    }
    const r = await pass;
    c.archivePasses++;
    if (r instanceof Error) {
      c.archiveHangsOrFailures++;
      env.log(`${at()} archive pass did not answer: ${r.message}`);
      return;
    }
    const cold = r.moved.filter((m) => m.to === 'cold').length;
    if (r.errors.length > 0) c.archivePassErrors++;
    if (stopAfterMs !== null && (cold > 0 || r.errors.some((e) => e.includes('COLD_UNREACHABLE')))) c.s3OutagesHitCold++;
    if (stopAfterMs === null && r.errors.length > 0) c.archiveHangsOrFailures++;
    env.log(`${at()} archive pass: ${r.moved.length} files moved (${cold} cold), errors: ${r.errors.join('; ') || 'none'}`);
  }

  async function killAndRespawn(downMs: number): Promise<void> {
    await env.ducktail.kill9();
    env.log(`${at()} kill -9 ducktail, down ${downMs} ms`);
    await Bun.sleep(downMs);
    env.ducktail.spawn();
    c.kills++;
  }

  for (const fault of schedule) {
    await Bun.sleep(between(...plan.gapMs));
    if (env.ducktail.reviveIfDead()) env.log(`${at()} ducktail had exited by itself: respawned (see its log)`);
    switch (fault) {
      case 'kill': {
        if (random() < 0.25) {
          // In the middle of a tier move: the next pass must find every row exactly once.
          await waitApi(env);
          const after = between(0, 3000);
          const pass = env.api.archive().catch(() => null);
          await Bun.sleep(after);
          env.log(`${at()} kill -9 ducktail ${after} ms into an archive pass`);
          await killAndRespawn(between(0, 1500));
          await pass;
          c.killsDuringFaults++;
        } else {
          // Now and then down long enough to leave a backlog, so the next kills may land in a catch-up.
          await killAndRespawn(random() < 0.2 ? between(3000, 10_000) : between(0, 1500));
        }
        break;
      }
      case 'pg': {
        const mode = random() < 0.5 ? 'fast' : 'immediate';
        const down = between(200, 3000);
        const kill = random() < 0.3;
        env.log(`${at()} PostgreSQL ${mode} restart, down ${down} ms${kill ? ', ducktail killed meanwhile' : ''}`);
        await env.pg.restart(mode, down, kill ? () => killAndRespawn(between(0, down)) : undefined);
        if (kill) c.killsDuringFaults++;
        c.pgRestarts++;
        break;
      }
      case 'terminate': {
        const n = await env.pg.terminateOthers();
        env.log(`${at()} pg_terminate_backend: ${n} connections`);
        c.pgTerminations++;
        break;
      }
      case 'broker': {
        const kafka = env.kafka!;
        const broker = random() < 0.4 ? -1 : 1 + Math.floor(random() * kafka.brokers);
        const down = between(1000, 6000);
        env.log(`${at()} broker ${broker === -1 ? 'all' : broker} down for ${down} ms`);
        const kill = random() < 0.3;
        await kafka.brokerDown(broker);
        const until = Date.now() + down;
        if (kill) {
          await Bun.sleep(between(0, down));
          env.log(`${at()} kill -9 ducktail while the broker is down`);
          await killAndRespawn(between(0, 1000));
          c.killsDuringFaults++;
        }
        await Bun.sleep(Math.max(0, until - Date.now()));
        await kafka.brokerUp(broker);
        c.brokerOutages++;
        break;
      }
      case 's3': {
        const after = between(0, 400);
        env.log(`${at()} archive pass, S3 stopped ${after} ms into it`);
        await archivePass(after);
        await Bun.sleep(between(500, 2000));
        await env.s3.start();
        c.s3Outages++;
        break;
      }
      case 'archive':
        await archivePass(null);
        break;
      default: {
        const _: never = fault;
        throw new Error(`unknown fault ${String(_)}`);
      }
    }
  }
  return c;
}

/** Waits until ducktail's API answers (respawning it if it exited by itself). */
async function waitApi(env: SoakEnv): Promise<void> {
  const until = Date.now() + API_WAIT_MS;
  while (!(await env.api.answering())) {
    env.ducktail.reviveIfDead();
    if (Date.now() > until) throw new Error(`ducktail's API did not answer for ${API_WAIT_MS} ms (hang?); log:\n${env.ducktail.tail()}`);
    await Bun.sleep(200);
  }
}
