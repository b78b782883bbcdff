// `npm run bench -- workload`: the orders workload against ducktail run as a user runs it (`bun
// src/main.ts run`, one process per instance), on an embedded PostgreSQL 18 and, with --bus kafka, the
// librdkafka mock cluster (3 brokers). Measures end-to-end rows/s, commit-to-queryable p50/p99/max
// (probe rows polled through the HTTP API), ducktail's RSS and CPU, the DuckDB file size and the first
// alert to fire, and in the same run the ceilings: COPY TO STDOUT of the seeded table (vs ducktail's
// initial copy), pg_recvlogical on the same WAL (after ducktail stopped), kcat producing the messages
// ducktail produced (kafka bus). Prints a table; writes JSON to bench/results/.
// Usage: bun bench/workload.ts [--rate OPS/S|max] [--bus inline|kafka] [--duration S] [--toast] [--seed ROWS]
//        [--catch-up (ducktail down during the workload, then timed catching up)] [--writers N] [--partitions N] [--instances N] [--set section.key=value ...] [--label NAME]
//        [--series NAME (runs measured together as one series: docs/SCALING.md compares a row's series side by side)]
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyDemoSchema } from '../src/demo/schema.ts';
import { freePort } from '../src/demo/postgres.ts';
import { connectSql } from '../src/source/index.ts';
import { startKafkaMock } from '../test/support/kafka.ts';
import { spawnDucktail } from '../test/support/ducktail-process.ts';
import { startPostgres, stopPostgres } from '../test/support/postgres.ts';
import { changesOf, prepareToast, seedOrders, startGenerator } from './workload-gen.ts';
import { codeCommit } from './results.ts';
import { appliedRows, type Instance, percentile, startProbes, startSampler } from './workload-watch.ts';

const argv = process.argv.slice(2);
const opt = (name: string, dflt: string) => {
  const i = argv.indexOf(name);
  return i < 0 ? dflt : (argv[i + 1] ?? dflt);
};
const sets = argv.flatMap((a, i) => (argv[i - 1] === '--set' ? [a] : []));
const RATE = opt('--rate', 'max') === 'max' ? 0 : Number(opt('--rate', '0'));
const BUS = opt('--bus', 'inline');
const DURATION = Number(opt('--duration', '60'));
const TOAST = argv.includes('--toast');
const SEED = Number(opt('--seed', '200000'));
const PARTITIONS = Number(opt('--partitions', '6'));
const CATCH_UP = argv.includes('--catch-up');
const WRITERS = Number(opt('--writers', '2'));
const INSTANCES = BUS === 'kafka' ? Number(opt('--instances', '1')) : 1;
const LABEL = opt('--label', `${BUS}-${RATE || 'max'}${TOAST ? '-toast' : ''}`);
/** A measurement series (e.g. `reproduce-2026-12-07`): bench/results.ts takes a row's median over its newest series only. */
const SERIES = opt('--series', '') || null;
if (!['inline', 'kafka'].includes(BUS) || !(DURATION > 0) || !(RATE >= 0) || !(SEED >= 0)) {
  console.error('usage: bench workload [--rate OPS/S|max] [--bus inline|kafka] [--duration S] [--toast] [--seed ROWS] [--writers N] [--partitions N] [--instances N] [--set section.key=value]');
  process.exit(2);
}
const PREFIX = 'bench';
const PG_RECVLOGICAL = Bun.which('pg_recvlogical');
const PSQL = Bun.which('psql');
const KCAT = Bun.which('kcat') ?? Bun.which('kafkacat');
const round = (n: number, d = 0) => (Number.isFinite(n) ? Math.round(n * 10 ** d) / 10 ** d : null);

/** /proc/stat's first line: busy and total jiffies of the whole machine. */
function machineTicks(): { busy: number; total: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - f[3]! - (f[4] ?? 0), total };
}

async function timed(cmd: string[], stdin?: string): Promise<number> {
  const started = performance.now();
  const proc = Bun.spawn(cmd, { stdin: stdin ? Bun.file(stdin) : 'ignore', stdout: 'ignore', stderr: 'pipe' });
  const code = await proc.exited;
  if (code !== 0) throw new Error(`${cmd[0]} exited ${code}: ${await new Response(proc.stderr).text()}`);
  return performance.now() - started;
}

/** `[section] key = value` lines from --set section.key=value (values kept as TOML literals). */
function overrides(): Map<string, string[]> {
  const by = new Map<string, string[]>();
  for (const s of sets) {
    const m = /^([a-z_]+)\.([a-z_]+)=(.+)$/.exec(s);
    if (!m) throw new Error(`--set ${s}: expected section.key=value, e.g. warehouse.batch_rows=50000`);
    by.set(m[1]!, [...(by.get(m[1]!) ?? []), `${m[2]} = ${/^[\d.]+$|^true$|^false$|^["[]/.test(m[3]!) ? m[3] : JSON.stringify(m[3])}`]);
  }
  return by;
}

function configFile(dir: string, n: number, url: string, port: number, brokers: string[]): string {
  const extra = overrides();
  const sections: [string, string[]][] = [
    ['source', [`url = "${url}"`, 'slot = "bench"', 'publication = "bench"', 'tables = ["public.orders", "public.probe"]', `enabled = ${n === 0}`]],
    ['bus', BUS === 'kafka'
      ? ['kind = "kafka"', `brokers = ${JSON.stringify(brokers)}`, `topic_prefix = "${PREFIX}"`, `partitions = ${PARTITIONS}`, `instances = ${INSTANCES}`, `instance = ${n}`, 'idempotent = false', 'compression = "gzip"']
      : ['kind = "inline"']],
    ['warehouse', [`path = "${join(dir, `w${n}.duckdb`)}"`]],
    ['tiering', [`warm_dir = "${join(dir, `warm${n}`)}"`, `cold_url = "file://${join(dir, `cold${n}`)}"`, `cold_cache_dir = "${join(dir, `cache${n}`)}"`]],
    ['api', [`listen = "127.0.0.1:${port}"`]],
    ['log', ['level = "warn"']],
  ];
  for (const [name] of extra) if (!sections.some(([s]) => s === name)) sections.push([name, []]);
  // A --set key replaces the bench's own line for that key.
  const text = sections.map(([name, lines]) => {
    const more = extra.get(name) ?? [];
    const keys = new Set(more.map((l) => l.split(' = ')[0]));
    return `[${name}]\n${[...lines.filter((l) => !keys.has(l.split(' = ')[0]!)), ...more].join('\n')}\n`;
  });
  const path = join(dir, `ducktail-${n}.toml`);
  writeFileSync(path, text.join(''));
  return path;
}

/** Waits for /readyz 200; fails with its last answer after 3 minutes or when the process exits. */
async function waitReady(proc: Bun.Subprocess, base: string): Promise<void> {
  let last = 'no answer';
  for (const until = Date.now() + 180_000; Date.now() < until; await Bun.sleep(100)) {
    if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`ducktail exited (${proc.exitCode ?? proc.signalCode}) before it was ready`);
    const res = await fetch(`${base}/readyz`).catch(() => null);
    if (res?.status === 200) return;
    if (res) last = await res.text();
  }
  throw new Error(`ducktail at ${base} not ready after 3 min: ${last}`);
}

const began = performance.now();
const step = (what: string) => console.error(`[${((performance.now() - began) / 1000).toFixed(1)} s] ${what}`);
const dir = mkdtempSync(join(tmpdir(), 'ducktail-workload-'));
const pg = await startPostgres();
const kafka = BUS === 'kafka' ? await startKafkaMock({ brokers: 3 }) : null;
const procs: Bun.Subprocess[] = [];
// Interrupted (Ctrl-C, timeout): take ducktail, PostgreSQL and the temporary files down with us.
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    for (const p of procs) p.kill('SIGKILL');
    void Promise.allSettled([kafka?.stop(), stopPostgres()]).finally(() => {
      rmSync(dir, { recursive: true, force: true });
      process.exit(130);
    });
  });
}
const result: Record<string, unknown> = { codeCommit: codeCommit(), label: LABEL, ...(SERIES ? { series: SERIES } : {}), args: argv, bus: BUS, rate: RATE || 'max', duration: DURATION, toast: TOAST, seed: SEED, partitions: BUS === 'kafka' ? PARTITIONS : null, instances: INSTANCES, catchUp: CATCH_UP, writers: RATE ? 1 : WRITERS, set: sets };
try {
  step('PostgreSQL up');
  const url = await pg.createDatabase('bench_workload');
  const sql = connectSql(url, { max: Math.max(2, WRITERS) });
  const probeSql = connectSql(url, { max: 1 });
  await applyDemoSchema(sql);
  await sql.unsafe('CREATE TABLE probe (id bigint PRIMARY KEY)');
  if (TOAST) await prepareToast(sql);
  await seedOrders(sql, SEED, TOAST);
  if (PSQL && SEED > 0) result.copyToStdoutRowsPerS = round(SEED / ((await timed([PSQL, '-X', '-q', '-d', url, '-c', 'COPY orders TO STDOUT'])) / 1000));
  if (kafka) {
    for (const t of ['orders', 'probe']) await kafka.createTopic(`${PREFIX}.public.${t}`, PARTITIONS, 3);
    await kafka.createTopic(`${PREFIX}-dead-letter`, 1, 3);
  }

  step(`seeded ${SEED} orders`);
  // Start ducktail; the initial copy of the seeded rows is timed from the spawn (process start included).
  const instances: Instance[] = [];
  const configs: string[] = [];
  for (let n = 0; n < INSTANCES; n++) {
    const port = await freePort();
    configs.push(configFile(dir, n, url, port, kafka?.bootstrap ?? []));
    instances.push({ pid: 0, base: `http://127.0.0.1:${port}`, wal: join(dir, `w${n}.duckdb.wal`) });
  }
  const spawnAll = async () => {
    procs.length = 0;
    for (let n = 0; n < INSTANCES; n++) {
      procs.push(spawnDucktail(['run', '--config', configs[n]!], { cwd: dir }));
      instances[n]!.pid = procs[n]!.pid;
    }
    for (let n = 0; n < INSTANCES; n++) await waitReady(procs[n]!, instances[n]!.base);
  };
  const stopAll = async () => {
    for (const p of procs) p.kill('SIGTERM');
    await Promise.all(procs.map((p) => p.exited));
  };
  const spawnT = performance.now();
  await spawnAll();
  // Rows of the copy are counted through the API (the copy may bypass the changes_applied_total counter).
  const copied = async () => {
    let n = 0;
    for (const i of instances) {
      const res = await fetch(`${i.base}/v1/query`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sql: 'SELECT count(*) FROM orders' }) }).catch(() => null);
      if (res?.ok) n += Number(((await res.json()) as { rows: [number][] }).rows[0]![0]);
    }
    return n;
  };
  while ((await copied()) < SEED) {
    if (performance.now() - spawnT > 600_000) throw new Error('initial copy not done after 10 min');
    await Bun.sleep(50);
  }
  step('ducktail ready, initial copy applied');
  if (SEED > 0) result.snapshotRowsPerS = round(SEED / ((performance.now() - spawnT) / 1000));
  if (PG_RECVLOGICAL) await sql`SELECT pg_create_logical_replication_slot('bench_raw', 'pgoutput')`;
  if (CATCH_UP) await stopAll();
  const appliedBefore = CATCH_UP ? 0 : await appliedRows(instances);

  // The workload, the probes and the sampler (with --catch-up: ducktail is down while the workload runs,
  // then started on the WAL it left, and timed until it has applied everything).
  const stop = new AbortController();
  // Write back the box's dirty pages first (this run's seed and copy, and whatever the lock's previous holder
  // left): otherwise the kernel flushes them during the run, and DuckDB's commit waits behind that for its
  // fsync (a 1.7 s stall in one run on 2026-12-07: docs/SCALING.md, "The p99 at 1,000,000x").
  Bun.spawnSync(['sync']);
  const t0 = performance.now();
  const machine0 = machineTicks();
  result.loadAvgAtStart = round(loadavg()[0]!, 2);
  const gen = startGenerator(sql, { rate: RATE, toast: TOAST, signal: stop.signal, writers: WRITERS });
  const probes = CATCH_UP ? null : startProbes(probeSql, instances);
  let sampler = CATCH_UP ? null : startSampler(instances, t0);
  await Bun.sleep(DURATION * 1000);
  stop.abort();
  await gen.done;
  const genMs = performance.now() - t0;
  const [{ end }] = (await sql`SELECT pg_current_wal_insert_lsn()::text AS end`) as unknown as [{ end: string }];
  step('workload stopped');
  const catchUpT = performance.now();
  if (CATCH_UP) {
    await spawnAll();
    sampler = startSampler(instances, catchUpT);
  }
  const probe = probes ? await probes.drain(120_000) : { latencies: [], lost: 0, slowest: [], all: [] };
  // Probes committed from 2 s into the run on: the steady state, without the workload's first seconds.
  const steady = probe.all.filter((p) => p.at - t0 >= 2000).map((p) => p.ms);
  const stats = gen.stats();
  const changes = changesOf(stats);
  // Everything committed is applied: the rows applied since the workload started reach changes + probes.
  const want = appliedBefore + changes + probe.latencies.length + probe.lost;
  const until = performance.now() + 120_000;
  while ((await appliedRows(instances)) < want && performance.now() < until) await Bun.sleep(50);
  const appliedMs = performance.now() - t0;
  // The whole box's CPU over the run, in cores busy (of navigator.hardwareConcurrency): ducktail, PostgreSQL,
  // the generator, and whatever else ran meanwhile (the box is shared; compare with ducktail's own CPU).
  const machine1 = machineTicks();
  result.machineBusyCores = round((machine1.busy - machine0.busy) / Math.max(1, machine1.total - machine0.total) * navigator.hardwareConcurrency, 2);
  const appliedAll = (await appliedRows(instances)) >= want;
  if (!appliedAll) {
    console.error(`not every committed change was applied within 2 min of the end (${await appliedRows(instances)} of ${want} rows)`);
    // Why, in ducktail's words (e.g. the Kafka consumer stopped on OFFSET_OUT_OF_RANGE): each instance's status then.
    result.statusWhenBehind = await Promise.all(instances.map((i) => fetch(`${i.base}/v1/status`).then((r) => r.json(), (e: unknown) => String(e))));
    result.appliedWhenGivenUp = await appliedRows(instances);
  }
  const watched = sampler!;
  await watched.stop();
  if (CATCH_UP) {
    result.catchUpRowsPerS = round(changes / ((performance.now() - catchUpT) / 1000));
    // The best second, without the process start that the figure above includes.
    const ss = watched.samples;
    result.catchUpPeakRowsPerS = round(Math.max(0, ...ss.slice(1).map((x, i) => (x.applied - ss[i]!.applied) / (x.t - ss[i]!.t))));
  }
  const samples = watched.samples;
  const during = CATCH_UP ? samples : samples.filter((s) => s.t <= genMs / 1000);
  Object.assign(result, {
    generator: { ...stats, changes, offeredChangesPerS: round(changes / (genMs / 1000)), opsPerS: RATE || null },
    endToEndRowsPerS: round(changes / (appliedMs / 1000)),
    drainS: round((appliedMs - genMs) / 1000, 1),
    appliedAll,
    latencyMs: CATCH_UP ? null : { p50: round(percentile(probe.latencies, 50)), p99: round(percentile(probe.latencies, 99)), max: round(Math.max(...probe.latencies)), probes: probe.latencies.length, lost: probe.lost,
      // The slowest probes: seconds into the run (as the samples' t) and ms, to line up with the samples' stages.
      slowest: probe.slowest.map((p) => ({ t: round((p.at - t0) / 1000, 1), ms: round(p.ms) })),
      p99After2s: round(percentile(steady, 99)), maxAfter2s: round(Math.max(...steady)) },
    ducktail: {
      rssPeakMB: round(Math.max(...samples.map((s) => s.rssMB)), 1),
      rssMeanMB: round(during.reduce((a, s) => a + s.rssMB, 0) / Math.max(1, during.length), 1),
      cpuPctMean: round(during.reduce((a, s) => a + s.cpuPct, 0) / Math.max(1, during.length), 1),
      maxLagS: round(Math.max(0, ...samples.map((s) => s.lagS ?? 0)), 1),
      maxConsumerLag: samples.some((s) => s.consumerLag !== null) ? Math.max(...samples.map((s) => s.consumerLag ?? 0)) : null,
    },
    alertsFirstFiredS: Object.fromEntries(watched.firstFiring),
    // The worst second of the box's I/O stall during the run (PSI io full, ms): a run with hundreds here waited on the disk.
    ioFullMsMax: samples.some((s) => typeof s.ioFullMs === 'number') ? Math.max(...during.map((s) => s.ioFullMs ?? 0)) : null,
    samples,
  });

  step('everything applied; stopping ducktail, then the ceilings');
  await stopAll();
  let bytes = 0;
  for (let n = 0; n < INSTANCES; n++) for (const f of [`w${n}.duckdb`, `w${n}.duckdb.wal`]) bytes += statSync(join(dir, f), { throwIfNoEntry: false })?.size ?? 0;
  result.duckdbBytes = bytes;

  // Ceilings on the same data, ducktail stopped: raw decoding of the workload's WAL, kcat re-producing its messages.
  if (PG_RECVLOGICAL) {
    const cmd = [PG_RECVLOGICAL, '-d', url, '--slot', 'bench_raw', '--start', '--endpos', end, '--no-loop', '-f', '/dev/null', '-o', 'proto_version=1', '-o', 'publication_names=bench'];
    result.pgRecvlogicalRowsPerS = round(changes / ((await timed(cmd)) / 1000));
  }
  if (kafka && KCAT) {
    const file = join(dir, 'messages.txt');
    const dump = Bun.spawn([KCAT, '-C', '-b', kafka.bootstrap.join(','), '-t', `${PREFIX}.public.orders`, '-o', 'beginning', '-e', '-q', '-f', '%k\t%s\n'], { stdout: Bun.file(file), stderr: 'pipe' });
    if ((await dump.exited) !== 0) throw new Error(`kcat -C failed: ${await new Response(dump.stderr).text()}`);
    const messages = (await Bun.file(file).text()).split('\n').length - 1;
    await kafka.createTopic('bench-kcat', PARTITIONS, 3);
    const ms = await timed([KCAT, '-P', '-b', kafka.bootstrap.join(','), '-t', 'bench-kcat', '-K', '\t', '-z', 'gzip', '-X', 'linger.ms=5'], file);
    result.kcat = { messages, producedPerS: round(messages / (ms / 1000)) };
  }
  await sql.end();
  await probeSql.end();
} finally {
  for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
  await kafka?.stop();
  await stopPostgres();
  rmSync(dir, { recursive: true, force: true });
}

const commit = Bun.spawnSync(['git', 'rev-parse', '--short', 'HEAD']).stdout.toString().trim();
Object.assign(result, { commit, at: new Date().toISOString(), cores: navigator.hardwareConcurrency });
const r = result as Record<string, any>;
const rows: [string, unknown][] = [
  ['offered changes/s', r.generator.offeredChangesPerS],
  ['end-to-end rows/s', r.endToEndRowsPerS],
  ['drain after stop (s)', r.drainS],
  ['commit-to-queryable p50/p99/max (ms)', r.latencyMs ? `${r.latencyMs.p50} / ${r.latencyMs.p99} / ${r.latencyMs.max} (${r.latencyMs.probes} probes, ${r.latencyMs.lost} lost)` : '-'],
  ['p99 / max of the probes from 2 s in (ms)', r.latencyMs ? `${r.latencyMs.p99After2s} / ${r.latencyMs.maxAfter2s}` : '-'],
  ['slowest probes (s into run: ms)', r.latencyMs?.slowest ? r.latencyMs.slowest.slice(0, 5).map((p: { t: number; ms: number }) => `${p.t}: ${p.ms}`).join(', ') : '-'],
  ['seconds with a batch > 0.25 s: apply | commit-to-queryable', r.samples?.length ? `${r.samples.filter((s: any) => s.slowApplies > 0).map((s: any) => Math.round(s.t)).join(' ') || 'none'} | ${r.samples.filter((s: any) => s.slowFreshness > 0).map((s: any) => Math.round(s.t)).join(' ') || 'none'}` : '-'],
  ['seconds with a DuckDB checkpoint (WAL dropped)', r.samples?.length ? r.samples.filter((s: any, i: number) => i > 0 && typeof s.walMB === 'number' && s.walMB < r.samples[i - 1].walMB).map((s: any) => Math.round(s.t)).join(' ') || 'none' : '-'],
  ['box I/O stall (PSI io full, ms) in the worst seconds', r.samples?.some((s: any) => typeof s.ioFullMs === 'number') ? [...r.samples].sort((a: any, b: any) => b.ioFullMs - a.ioFullMs).slice(0, 4).map((s: any) => `${Math.round(s.t)}: ${s.ioFullMs}`).join(', ') : '-'],
  ['catch-up rows/s from spawn | best second', r.catchUp ? `${r.catchUpRowsPerS} | ${r.catchUpPeakRowsPerS}` : '-'],
  ['ducktail RSS peak/mean (MB)', `${r.ducktail.rssPeakMB} / ${r.ducktail.rssMeanMB}`],
  ['ducktail CPU mean (% of a core)', r.ducktail.cpuPctMean],
  ['max replication lag (s)', r.ducktail.maxLagS],
  ['max consumer lag (messages)', r.ducktail.maxConsumerLag ?? '-'],
  ['DuckDB file (MB)', round(r.duckdbBytes / 1e6, 1)],
  ['machine: cores busy during the run | load at start', `${r.machineBusyCores} of ${r.cores} | ${r.loadAvgAtStart}`],
  ['alerts first fired (s into run)', JSON.stringify(r.alertsFirstFiredS)],
  ['initial copy rows/s | COPY TO STDOUT', `${r.snapshotRowsPerS ?? '-'} | ${r.copyToStdoutRowsPerS ?? '-'}`],
  ['pg_recvlogical on the same WAL (rows/s)', r.pgRecvlogicalRowsPerS ?? '-'],
  ['kcat producing the same messages (msg/s)', r.kcat ? `${r.kcat.producedPerS} (${r.kcat.messages} messages)` : '-'],
];
console.log(`\nworkload ${LABEL}: ${BUS} bus${kafka ? ` (${PARTITIONS} partitions, ${INSTANCES} instance(s))` : ''}, rate ${RATE ? `${RATE} ops/s` : `flat out (${WRITERS} writers)`}, ${DURATION} s, seed ${SEED}${TOAST ? ', TOAST notes' : ''}${sets.length ? `, ${sets.join(' ')}` : ''}, commit ${commit} (code ${r.codeCommit})`);
for (const [k, v] of rows) console.log(`  ${k.padEnd(42)} ${v}`);
mkdirSync(join(import.meta.dir, 'results'), { recursive: true });
const out = join(import.meta.dir, 'results', `${LABEL}-${Date.now()}.json`);
writeFileSync(out, `${JSON.stringify(result, null, 1)}\n`);
console.log(`  json: ${out}`);
