// Smoke test of dist/ducktail from an empty folder (no node_modules, fresh HOME): version, selftest,
// a bad config (exit 2), check and run against a real PostgreSQL, API answers, clean SIGTERM.
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, startEmbeddedPostgres } from '../src/demo/postgres.ts';
import { connectSql } from '../src/source/index.ts';

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

  const proc = Bun.spawn([bin, 'run', '--config', 'ducktail.toml'], { cwd: dir, env, stdout: 'inherit', stderr: 'inherit' });
  const api = `http://127.0.0.1:${port}`;
  const count = async (): Promise<number> => {
    const res = await fetch(`${api}/v1/query`, { method: 'POST', body: JSON.stringify({ sql: 'select count(*) from smoke' }) });
    return res.ok ? Number(((await res.json()) as { rows: number[][] }).rows[0]![0]) : -1;
  };
  const until = async (what: string, check: () => Promise<boolean>) => {
    for (let i = 0; i < 300; i++) {
      if (await check().catch(() => false)) return;
      await Bun.sleep(100);
    }
    proc.kill();
    fail(`timed out waiting for ${what}`);
  };
  await until('/readyz', async () => (await fetch(`${api}/readyz`)).status === 200);
  await until('initial copy', async () => (await count()) === 100);
  await sql`INSERT INTO smoke SELECT g, 'new' FROM generate_series(101, 150) g`;
  await until('streamed rows', async () => (await count()) === 150);
  console.log('smoke: ok   ducktail run: initial copy and streaming through the API');
  proc.kill('SIGTERM');
  const code = await proc.exited;
  if (code !== 0) fail(`ducktail run exited ${code} on SIGTERM`);
  console.log('smoke: ok   clean stop on SIGTERM');
} finally {
  await sql.end();
  await pg.stop();
  rmSync(dir, { recursive: true, force: true });
  rmSync(pgDir, { recursive: true, force: true });
}
console.log('smoke: passed');
