// Smoke test of dist/ducktail from an empty folder (no node_modules, fresh HOME): version, selftest,
// a bad config (exit 2), check and run against a real PostgreSQL, API answers, clean SIGTERM; then the
// same through Kafka (librdkafka's mock, test/support/kafka.ts) with the producer in its Worker thread,
// which the binary must carry built in (scripts/build.ts).
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, startEmbeddedPostgres } from '../src/demo/postgres.ts';
import { connectSql } from '../src/source/index.ts';
import { startKafkaMock } from '../test/support/kafka.ts';

const root = join(import.meta.dir, '..');
const dir = mkdtempSync(join(tmpdir(), 'ducktail-smoke-'));
const bin = join(dir, 'ducktail');
copyFileSync(join(root, 'dist/ducktail'), bin);
Bun.spawnSync(['chmod', '+x', bin]);
const env = { HOME: dir, PATH: '/usr/bin:/bin' };

function fail(msg: string): never {
  console.error(`smoke: FAIL ${msg}`);
  process.exit(1);
}

function run(args: string[], expectCode: number, expectText: string): string {
  const p = Bun.spawnSync([bin, ...args], { cwd: dir, env });
  const out = `${p.stdout.toString()}${p.stderr.toString()}`;
  if (p.exitCode !== expectCode) fail(`ducktail ${args.join(' ')} exited ${p.exitCode}, expected ${expectCode}:\n${out}`);
  if (!out.includes(expectText)) fail(`ducktail ${args.join(' ')} did not print "${expectText}":\n${out}`);
  console.log(`smoke: ok   ducktail ${args.join(' ')}`);
  return out;
}

const pgDir = mkdtempSync(join(tmpdir(), 'ducktail-smoke-pg-'));
Bun.spawnSync(['chmod', '755', pgDir]);
const pg = await startEmbeddedPostgres({ dir: join(pgDir, 'data') });
const sql = connectSql(pg.url, { max: 1 });
/** Runs `ducktail run` with `config` until `table` holds its copy and 50 streamed rows, then stops it with SIGTERM. */
async function runAndStream(config: string, port: number, table: string, what: string, more?: (api: string) => Promise<void>): Promise<void> {
  const logs: string[] = [];
  const proc = Bun.spawn([bin, 'run', '--config', config], { cwd: dir, env, stdout: 'inherit', stderr: 'pipe' });
  void (async () => {
    for await (const chunk of proc.stderr as ReadableStream<Uint8Array>) {
      const text = new TextDecoder().decode(chunk);
      logs.push(text);
      process.stderr.write(text);
    }
  })();
  const api = `http://127.0.0.1:${port}`;
  const count = async (): Promise<number> => {
    const res = await fetch(`${api}/v1/query`, { method: 'POST', body: JSON.stringify({ sql: `select count(*) from ${table}` }) });
    return res.ok ? Number(((await res.json()) as { rows: number[][] }).rows[0]![0]) : -1;
  };
  const until = async (what: string, check: () => Promise<boolean>) => {
    for (let i = 0; i < 600; i++) {
      if (await check().catch(() => false)) return;
      await Bun.sleep(100);
    }
    proc.kill();
    fail(`timed out waiting for ${what}`);
  };
  await until('/readyz', async () => (await fetch(`${api}/readyz`)).status === 200);
  await until('initial copy', async () => (await count()) === 100);
  await sql.unsafe(`INSERT INTO ${table} SELECT g, 'new' FROM generate_series(101, 150) g`);
  await until('streamed rows', async () => (await count()) === 150);
  console.log(`smoke: ok   ducktail run (${what}): initial copy and streaming through the API`);
  await more?.(api);
  proc.kill('SIGTERM');
  const code = await proc.exited;
  if (code !== 0) fail(`ducktail run (${what}) exited ${code} on SIGTERM`);
  if (logs.join('').includes('worker failed')) fail(`ducktail run (${what}) logged a failed Worker:\n${logs.join('')}`);
  console.log(`smoke: ok   clean stop on SIGTERM (${what})`);
}

try {
  run(['version'], 0, 'ducktail ');
  run(['selftest'], 0, 'duckdb v');
  writeFileSync(join(dir, 'bad.toml'), '[bus]\npartitons = 3\n');
  run(['run', '--config', 'bad.toml'], 2, 'bus.partitons: unknown key');

  await sql`CREATE TABLE smoke (id int PRIMARY KEY, note text)`;
  await sql`INSERT INTO smoke SELECT g, 'row ' || g FROM generate_series(1, 100) g`;
  const port = await freePort();
  writeFileSync(
    join(dir, 'ducktail.toml'),
    `[source]\nurl = "${pg.url}"\n[warehouse]\npath = "data/w.duckdb"\nbatch_ms = 50\n[api]\nlisten = "127.0.0.1:${port}"\n`,
  );
  run(['check', '--config', 'ducktail.toml'], 0, 'ready');

  await runAndStream('ducktail.toml', port, 'smoke', 'the inline bus');

  // Through Kafka: the producer encodes and sends in its Worker, a file of its own inside the binary.
  const kafka = await startKafkaMock();
  try {
    await sql`CREATE TABLE smoke_kafka (id int PRIMARY KEY, note text)`;
    await sql`INSERT INTO smoke_kafka SELECT g, 'row ' || g FROM generate_series(1, 100) g`;
    const kport = await freePort();
    const brokers = kafka.bootstrap.map((b) => `"${b}"`).join(', ');
    writeFileSync(
      join(dir, 'kafka.toml'),
      `[source]\nurl = "${pg.url}"\nslot = "ducktail_smoke_kafka"\npublication = "ducktail_smoke_kafka"\ntables = ["public.smoke_kafka"]\n` +
        `[warehouse]\npath = "data/k.duckdb"\nbatch_ms = 50\n[api]\nlisten = "127.0.0.1:${kport}"\n` +
        `[bus]\nkind = "kafka"\nbrokers = [${brokers}]\ntopic_prefix = "smoke"\npartitions = 3\nreplication_factor = 3\nidempotent = false\n`,
    );
    await runAndStream('kafka.toml', kport, 'smoke_kafka', 'Kafka', async (api) => {
      const status = (await (await fetch(`${api}/v1/status`)).json()) as { bus?: { producer?: { thread?: string; messages?: number } } };
      if (status.bus?.producer?.thread !== 'worker') fail(`the Kafka producer does not run in its Worker: /v1/status bus.producer = ${JSON.stringify(status.bus?.producer)}`);
      console.log(`smoke: ok   Kafka producer in its Worker thread (${status.bus.producer.messages} messages published)`);
    });
  } finally {
    await kafka.stop();
  }
} finally {
  await sql.end();
  await pg.stop();
  rmSync(dir, { recursive: true, force: true });
  rmSync(pgDir, { recursive: true, force: true });
}
console.log('smoke: passed');
