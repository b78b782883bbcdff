// Ctrl-C as a terminal sends it: to the whole foreground process group, not to one pid (issue 6).
// Each stop must end within 10 s with nothing left running, with PostgreSQL up and with it
// stopped first; an abandoned stop (second Ctrl-C) loses nothing: the next start replays it.
import { afterAll, beforeAll, expect, test } from 'bun:test';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Sql } from 'postgres';
import { applyDemoSchema } from '../../src/demo/schema.ts';
import { createWorkload } from '../../src/demo/workload.ts';
import { type EmbeddedPostgres, freePort, postmaster, startEmbeddedPostgres } from '../../src/demo/postgres.ts';
import { connectSql } from '../../src/source/index.ts';
import { apiClient, exitWithin, signalGroup, sourceOrders, spawnDucktail, waitReady } from '../support/ducktail-process.ts';
import { startPostgres } from '../support/postgres.ts';
import { openTerminal, type Terminal, tmuxPath } from '../support/terminal.ts';
import { waitFor } from './compare.ts';

const ROOT = join(import.meta.dir, '../..');
const LIMIT_MS = 10_000;

let dir: string;
const spawned: Bun.Subprocess[] = [];
const servers: EmbeddedPostgres[] = [];
let terminal: Terminal | null = null;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ducktail-ctrlc-'));
  chmodSync(dir, 0o755); // run as root, the embedded PostgreSQL's OS user must reach it
});

afterAll(async () => {
  for (const p of spawned) if (p.exitCode === null && p.signalCode === null) signalGroup(p.pid, 'SIGKILL');
  await terminal?.close();
  for (const s of servers) s.killNow();
  const demoPg = postmaster(join(dir, 'demo/postgres'));
  if (demoPg) process.kill(demoPg.pid, 'SIGQUIT');
  rmSync(dir, { recursive: true, force: true });
});

/** Pids of the processes in session `sid` (what a terminal's session still runs). */
function sessionMembers(sid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // state ppid pgrp session ...
      if (Number(fields[3]) === sid && Number(name) !== sid) out.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** The postmaster of the cluster in `pgDir` and its children (each leads its own session, so no group signal reaches them all). */
function postgresProcesses(pgDir: string): number[] {
  const pm = postmaster(pgDir)!.pid;
  const children = readdirSync('/proc').filter((n) => /^\d+$/.test(n)).filter((n) => {
    try {
      const stat = readFileSync(`/proc/${n}/stat`, 'utf8');
      return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pm;
    } catch {
      return false;
    }
  });
  return [pm, ...children.map(Number)];
}

/** The process group of `pid` (field 5 of /proc/<pid>/stat). */
function processGroup(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
}

/** Sends SIGINT to the group led by `proc`; returns its exit code and time, and asserts the group is empty. */
async function ctrlC(proc: Bun.Subprocess, label: string, times = 1): Promise<{ code: number | null; seconds: number }> {
  const since = Date.now();
  for (let i = 0; i < times; i++) {
    if (i > 0) await Bun.sleep(30);
    signalGroup(proc.pid, 'SIGINT');
  }
  const r = await exitWithin(proc, since, LIMIT_MS);
  console.log(`${label}: exit ${r.code} ${r.seconds.toFixed(2)} s after Ctrl-C`);
  expect(signalGroup(proc.pid, 0)).toBe(false); // nothing of its process group is left
  return r;
}

test.skipIf(!tmuxPath)(
  'demo: Ctrl-C typed in a terminal, prompt back within 10 s and nothing running; resumed, a second Ctrl-C ' +
    'abandons and the next start replays; with PostgreSQL stopped first it still exits; closing the terminal stops all',
  async () => {
    const port = await freePort();
    const api = apiClient(`http://127.0.0.1:${port}`);
    const dataDir = join(dir, 'demo');
    const env = {
      DUCKTAIL_DEMO_DATA_DIR: dataDir,
      DUCKTAIL_DEMO_PORT: String(port),
      DUCKTAIL_DEMO_RATE: '100',
      DUCKTAIL_LOG_LEVEL: 'warn',
    };
    const pgDir = join(dataDir, 'postgres');

    // 1. `npm start` in a terminal, Ctrl-C as keys.
    terminal = await openTerminal({ cwd: ROOT, env });
    await terminal.keys('npm start', 'Enter');
    await terminal.waitFor(/Ctrl-C stops it/, 90_000);
    await waitFor(async () => (await api.ready()) && (await api.count('orders')) > 0, 60_000, 'orders flowing');
    const had = await api.count('orders');
    const since = Date.now();
    await terminal.keys('C-c');
    while (!(await terminal.atPrompt()) && Date.now() - since < LIMIT_MS) await Bun.sleep(50);
    const seconds = (Date.now() - since) / 1000;
    expect(await terminal.atPrompt()).toBe(true);
    expect(seconds).toBeLessThan(LIMIT_MS / 1000);
    expect(sessionMembers(await terminal.shellPid())).toEqual([]); // no bun, no npm left in the terminal
    expect(postmaster(pgDir)).toBeNull(); // ...and the demo's PostgreSQL (its own session) was stopped
    console.log(`demo in a terminal: prompt back ${seconds.toFixed(2)} s after Ctrl-C`);
    await terminal.close();
    terminal = null;

    // 2. Started again it resumes with the orders it had; Ctrl-C twice abandons the stop at once.
    let demo = spawnDucktail(['demo'], { cwd: dir, env, detached: true, stderr: 'pipe' });
    spawned.push(demo);
    await waitReady(demo, api);
    expect(await api.count('orders')).toBeGreaterThanOrEqual(had);
    expect(processGroup(postmaster(pgDir)!.pid)).not.toBe(processGroup(demo.pid)); // out of reach of the terminal's signal
    await Bun.sleep(300); // changes in flight
    const twice = await ctrlC(demo, 'demo, Ctrl-C twice', 2);
    expect(twice.code).toBe(130);
    expect(twice.seconds).toBeLessThan(3);
    expect(await new Response(demo.stderr as ReadableStream).text()).toContain('abandoned');
    expect(postmaster(pgDir)).toBeNull();

    // 3. The next start replays what was abandoned: the warehouse equals the source, nothing twice.
    demo = spawnDucktail(['demo'], { cwd: dir, env: { ...env, DUCKTAIL_DEMO_RATE: '0.1' }, detached: true });
    spawned.push(demo);
    await waitReady(demo, api);
    const server = postmaster(pgDir)!;
    const sql = connectSql(`postgres://postgres:ducktail@127.0.0.1:${server.port}/postgres`, { max: 1 });
    try {
      const same = async () => JSON.stringify(await sourceOrders(sql)) === JSON.stringify(await api.orders());
      await waitFor(same, 30_000, 'warehouse equal to source').catch(() => {});
      expect(await api.orders()).toEqual(await sourceOrders(sql));
      expect(await api.duplicateChanges('orders')).toBe(0);
    } finally {
      await sql.end();
    }

    // 4. PostgreSQL stopped first (as the terminal's signal used to do), then Ctrl-C: still a prompt stop.
    process.kill(server.pid, 'SIGINT');
    await waitFor(async () => postmaster(pgDir) === null, 10_000, 'PostgreSQL stopped');
    const pgGone = await ctrlC(demo, 'demo, PostgreSQL stopped first');
    expect(pgGone.code).toBe(0);
    expect(pgGone.seconds).toBeLessThan(LIMIT_MS / 1000);

    // 5. Closing the terminal (SIGHUP) stops it as cleanly: nothing left, not even its PostgreSQL.
    terminal = await openTerminal({ cwd: ROOT, env });
    await terminal.keys('npm start', 'Enter');
    await terminal.waitFor(/Ctrl-C stops it/, 90_000);
    const shell = await terminal.shellPid();
    const closedAt = Date.now();
    await terminal.close();
    terminal = null;
    await waitFor(async () => postmaster(pgDir) === null && sessionMembers(shell).length === 0, LIMIT_MS, 'demo stopped');
    console.log(`demo, terminal closed: all stopped within ${((Date.now() - closedAt) / 1000).toFixed(2)} s`);
  },
  240_000,
);

/** A config file for `ducktail run` against `url`, in its own folder. */
async function runConfig(name: string, url: string): Promise<{ path: string; api: ReturnType<typeof apiClient> }> {
  const port = await freePort();
  const path = join(dir, `${name}.toml`);
  writeFileSync(
    path,
    `[source]\nurl = "${url}"\nslot = "${name}_slot"\npublication = "${name}_pub"\nstatus_interval_ms = 500\n` +
      `[warehouse]\npath = "${join(dir, `${name}.duckdb`)}"\nbatch_rows = 200\nbatch_ms = 50\nmemory_limit = "512MB"\n` +
      `[tiering]\nwarm_dir = "${join(dir, `${name}-warm`)}"\n[api]\nlisten = "127.0.0.1:${port}"\n[log]\nlevel = "warn"\n`,
  );
  return { path, api: apiClient(`http://127.0.0.1:${port}`) };
}

function spawnRun(configPath: string): Bun.Subprocess {
  const proc = spawnDucktail(['run', '--config', configPath], { cwd: dir, detached: true, stderr: 'pipe' });
  spawned.push(proc);
  return proc;
}

test('run: Ctrl-C to its process group with PostgreSQL up stops it within 10 s, nothing left', async () => {
  const pg = await startPostgres();
  const url = await pg.createDatabase(`it_ctrlc_${process.pid}`);
  const sql = connectSql(url, { max: 2 });
  const stopLoad = new AbortController();
  try {
    await applyDemoSchema(sql);
    const load = createWorkload(sql, { rate: 300, signal: stopLoad.signal });
    const { path, api } = await runConfig('up', url);
    const proc = spawnRun(path);
    await waitReady(proc, api);
    await waitFor(async () => (await api.count('orders')) > 50, 30_000, 'rows flowing');
    const r = await ctrlC(proc, 'run, PostgreSQL up');
    stopLoad.abort();
    await load.done;
    expect(r.code).toBe(0);
    expect(r.seconds).toBeLessThan(LIMIT_MS / 1000);
  } finally {
    stopLoad.abort();
    await sql.end();
  }
}, 60_000);

test('run: PostgreSQL stopped first or hung, then Ctrl-C: exits within 10 s; the next start loses nothing', async () => {
  const pgDir = join(dir, 'run-pg');
  let pg = await startEmbeddedPostgres({ dir: pgDir });
  servers.push(pg);
  let sql = connectSql(pg.url, { max: 2 });
  await applyDemoSchema(sql);
  const stopLoad = new AbortController();
  const load = createWorkload(sql, { rate: 300, signal: stopLoad.signal });
  const { path, api } = await runConfig('down', pg.url);
  let proc = spawnRun(path);
  await waitReady(proc, api);
  await waitFor(async () => (await api.count('orders')) > 50, 30_000, 'rows flowing');
  stopLoad.abort();
  await load.done;
  await sql.end();
  await pg.stop(); // what a terminal's Ctrl-C used to do to a PostgreSQL in the same process group
  const r = await ctrlC(proc, 'run, PostgreSQL stopped first');
  expect(r.seconds).toBeLessThan(LIMIT_MS / 1000);
  expect(r.code).toBe(0);

  pg = await startEmbeddedPostgres({ dir: pgDir, port: pg.port });
  servers.push(pg);
  sql = connectSql(pg.url, { max: 1 });
  try {
    proc = spawnRun(path);
    await waitReady(proc, api);
    const expected = await sourceOrders(sql);
    await waitFor(async () => JSON.stringify(await api.orders()) === JSON.stringify(expected), 30_000, 'mirror equal').catch(() => {});
    expect(await api.orders()).toEqual(expected);
    expect(await api.duplicateChanges('orders')).toBe(0);

    // PostgreSQL hung (every process stopped, sockets open): the source's last status update cannot be
    // answered and the slot monitor's query never returns; its connection is cut after 2 s, so the stop
    // completes well within the limit, confirming nothing new to the frozen server.
    await sql`INSERT INTO orders (customer_id, product_id, price, quantity) VALUES (1, 1, 9.99, 1)`;
    await waitFor(async () => (await api.count('orders')) === expected.length + 1, 10_000, 'new order applied');
    const frozen = postgresProcesses(pgDir);
    for (const pid of frozen) process.kill(pid, 'SIGSTOP');
    let stderr = '';
    try {
      const hung = await ctrlC(proc, 'run, PostgreSQL hung');
      stderr = await new Response(proc.stderr as ReadableStream).text();
      expect(hung.code).toBe(0);
      expect(hung.seconds).toBeLessThan(LIMIT_MS / 1000);
    } finally {
      for (const pid of frozen) process.kill(pid, 'SIGCONT');
    }
    console.log(stderr.trim());
    expect(stderr).not.toContain('abandoned: ');

    proc = spawnRun(path);
    await waitReady(proc, api);
    const after = await sourceOrders(sql);
    await waitFor(async () => JSON.stringify(await api.orders()) === JSON.stringify(after), 30_000, 'mirror equal').catch(() => {});
    expect(await api.orders()).toEqual(after);
    expect(await api.duplicateChanges('orders')).toBe(0);
    const again = await ctrlC(proc, 'run, after the stop against a hung server');
    expect(again.code).toBe(0);
    expect(again.seconds).toBeLessThan(LIMIT_MS / 1000);
  } finally {
    await sql.end({ timeout: 1 });
    await pg.stop();
  }
}, 90_000);
