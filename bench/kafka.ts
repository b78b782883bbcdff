// Kafka bus benchmark against a real embedded PostgreSQL and the librdkafka mock cluster (3 brokers,
// co-located), on the demo's 7-column orders table. Per run, ROWS rows are written in 10k-row
// transactions while nothing reads; then, on the same WAL, each from its own slot and one after the
// other (order rotating between runs): ducktail through Kafka (pgoutput -> producer -> 3 brokers ->
// consumer -> DuckDB, end to end), ducktail through the inline bus, and pg_recvlogical (raw decoding
// into /dev/null). Then commit-to-queryable latency through Kafka at RATE changes/s for 10 s: per
// transaction, its PostgreSQL commit time to the DuckDB COMMIT of the batch holding its last change (its
// changes are spread over the partitions and may be applied in several batches), after one warm-up
// transaction that pays the restart on the slot (reported apart).
// Usage: bun bench/kafka.ts [rows=200000] [runs=3] [rate=5000]
import { closeSync, fsyncSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Sql } from 'postgres';
import { type Bus, createInlineBus, createKafkaBus } from '../src/bus/index.ts';
import type { BatchSink, ChangeBatch } from '../src/change/index.ts';
import { startPipeline } from '../src/pipeline.ts';
import { connectSql } from '../src/source/index.ts';
import { createWarehouse, type Warehouse } from '../src/warehouse/index.ts';
import { startKafkaMock, type KafkaMock } from '../test/support/kafka.ts';
import { kafkaOptions } from '../test/support/kafka-bus.ts';
import { startPostgres, stopPostgres } from '../test/support/postgres.ts';
import { account as accountCpu, describe as describeCpu, Sampler } from './proc-cpu.ts';

const ROWS = Number(process.argv[2] ?? 200_000);
const RUNS = Number(process.argv[3] ?? 3);
const RATE = Number(process.argv[4] ?? 5000);
const TXN_ROWS = 10_000;
const PARTITIONS = 6;
// BENCH_EVENT_SCHEMA=topic: payload-only events, layouts on the schema topic (bus option eventSchema; default embedded).
const EVENT_SCHEMA = (process.env.BENCH_EVENT_SCHEMA ?? 'embedded') as 'embedded' | 'topic';
// Compression: the config default is none, but the mock keeps at most 5 MB per partition and drops the
// oldest data beyond it; uncompressed, ~1,400 events of 3.6 KB (schema block embedded) fill that, so a
// consumer max_lag behind would lose its place: embedded events are gzipped here (gzip's compression runs
// in libuv's pool). Payload-only events (~0.5 KB, ~11k per 5 MB) run the default, none, with a max_lag of
// 40k (~6.7k per partition). BENCH_COMPRESSION and BENCH_MAX_LAG override.
const COMPRESSION = (process.env.BENCH_COMPRESSION ?? (EVENT_SCHEMA === 'topic' ? 'none' : 'gzip')) as 'none' | 'gzip' | 'snappy' | 'lz4' | 'zstd';
// The producer's lead over the local consumer, in messages (all partitions): the mock's 5 MB per
// partition hold ~90k gzip-compressed events of this table, so 6 x 20k keeps a wide margin.
const MAX_LAG = Number(process.env.BENCH_MAX_LAG ?? (COMPRESSION === 'none' ? 40_000 : 6 * 20_000));
// BENCH_FETCH_WORKER=1 fetches and decodes in a Worker thread (bus option fetchWorker; off by default).
const FETCH_WORKER = process.env.BENCH_FETCH_WORKER === '1';
// BENCH_IDEMPOTENT=1: the idempotent producer (bus.idempotent's default: producer id and sequences in ducktail's record batches), not producer id -1.
const IDEMPOTENT = process.env.BENCH_IDEMPOTENT === '1';
// BENCH_PRODUCER_WORKER=0 encodes and sends on the main thread (bus option producerWorker; on by default).
const PRODUCER_WORKER = process.env.BENCH_PRODUCER_WORKER !== '0';
// BENCH_FIRST_RUN=k numbers the runs from k: a series split into runs of 1 (one per quiet turn) still rotates the order.
const FIRST_RUN = Number(process.env.BENCH_FIRST_RUN ?? 0);
// BENCH_CPU=1: CPU seconds of every process and thread on the box per leg (bench/proc-cpu.ts), printed to stderr;
// with BENCH_FAULTS=1 also the minor page faults of each of our threads (fresh pages touched).
const CPU = process.env.BENCH_CPU === '1' ? new Sampler(1000) : undefined;
// After the fill the page cache is written back (`sync`) and the disk given time to absorb it, before any leg. The
// test harness's PostgreSQL runs with fsync=off (test/support/postgres.ts): the 1M-row fill leaves ~290 MB dirty on
// the DuckDB files' disk, which the kernel would write back 30 s later (vm.dirty_expire_centisecs), i.e. at the
// end of the latency phase when the legs are fast. For a while after such a burst (0-12 s measured, nothing of it
// visible in the guest) this VM's disk takes 30-400 ms for some small writes, and a DuckDB COMMIT waits for its
// WAL write (docs/PERFORMANCE.md, "Kafka latency: the p99 spikes after the 1M-row legs"). So: sync right after the
// fill, then wait until 4 KB written + fsync has taken under 10 ms every time for 5 s; the phase starts ~20 s
// later. BENCH_SYNC=0 leaves the writeback to the kernel, as before; BENCH_PHASE_DELAY_S=n waits n s before the
// phase (n = 5 puts the kernel's writeback inside the phase without the sync).
const SYNC = process.env.BENCH_SYNC !== '0';
const PHASE_DELAY_S = Number(process.env.BENCH_PHASE_DELAY_S ?? 0);
const PG_RECVLOGICAL = Bun.which('pg_recvlogical');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;
const rate = (rows: number, ms: number) => (rows / ms) * 1000;
const fmt = (n: number) => `${Math.round(n)} rows/s`;

function fill(sql: Sql, from: number, to: number) {
  return sql.unsafe(`INSERT INTO orders SELECT g, g % 1000, g % 50, (g % 10000) / 100.0, 1 + g % 4, 'pending',
    '2026-11-23 00:00:00+00'::timestamptz + g * interval '1 second' FROM generate_series(${from}, ${to}) g`);
}

/** Wall time inside the warehouse's apply, and batches applied (a leg's figures printed with BENCH_CPU). */
const applied = { ms: 0, batches: 0 };

const nowUs = () => (performance.timeOrigin + performance.now()) * 1000;

/**
 * Per transaction of the latency phase, the moment its last change was acknowledged by the brokers, reached
 * the start of a DuckDB apply, and was committed in DuckDB (queryable): one sample per transaction, taken when
 * all of its `rowsPerTx` changes got there. A transaction is spread over the partitions, so its changes may
 * reach the warehouse in several batches; it is queryable only once the last of them is committed. Counts
 * only transactions committed at or after `fromUs` (the slot may replay older ones, skipped as duplicates).
 */
class TxTimes {
  fromUs = Number.POSITIVE_INFINITY;
  readonly acked: number[] = [];
  readonly reached: number[] = [];
  readonly queryable: number[] = [];
  /** DuckDB apply time of each batch holding a measured transaction: tells a slow apply from a slow bus at p99. */
  readonly applyMs: number[] = [];
  private readonly counts = new Map<bigint, { commitUs: number; acked: number; reached: number; applied: number }>();

  constructor(private readonly rowsPerTx: number) {}

  /** Per measured transaction of the batch, its changes in it. */
  private perTx(batch: ChangeBatch) {
    const out = new Map<bigint, number>();
    for (const c of batch.changes) {
      if (c.lsn === 0n || Number(c.commitTimeUs) < this.fromUs) continue;
      out.set(c.lsn, (out.get(c.lsn) ?? 0) + 1);
      if (!this.counts.has(c.lsn)) this.counts.set(c.lsn, { commitUs: Number(c.commitTimeUs), acked: 0, reached: 0, applied: 0 });
    }
    return out;
  }

  private step(batch: ChangeBatch, field: 'acked' | 'reached' | 'applied', out: number[], atUs: number): boolean {
    let any = false;
    for (const [lsn, n] of this.perTx(batch)) {
      const t = this.counts.get(lsn)!;
      any = true;
      t[field] += n;
      if (t[field] === this.rowsPerTx) out.push((atUs - t.commitUs) / 1000);
    }
    return any;
  }

  onAcked(batch: ChangeBatch) {
    this.step(batch, 'acked', this.acked, nowUs());
  }
  onApplyStart(batch: ChangeBatch) {
    this.step(batch, 'reached', this.reached, nowUs());
  }
  onApplied(batch: ChangeBatch, ms: number) {
    if (this.step(batch, 'applied', this.queryable, nowUs())) this.applyMs.push(ms);
  }
}

/** The JS thread's longest stall (a timer's lateness) since the last call: tells a blocked thread from a slow DuckDB. */
const stalls = (() => {
  let last = 0;
  let worst = 0;
  let timer: ReturnType<typeof setInterval> | undefined;
  return {
    /** Watches during the latency phase only (a 2 ms timer). */
    watch(on: boolean) {
      clearInterval(timer);
      timer = undefined;
      if (!on) return;
      last = performance.now();
      timer = setInterval(() => {
        const now = performance.now();
        worst = Math.max(worst, now - last - 2);
        last = now;
      }, 2);
    },
    take() {
      const w = worst;
      worst = 0;
      return w;
    },
  };
})();

/** Applies in the latency phase slower than this are printed with where the warehouse spent the time. */
const SLOW_APPLY_MS = 100;

function timedSink(warehouse: Warehouse, times: TxTimes | null): BatchSink {
  return {
    async apply(batch: ChangeBatch) {
      const started = performance.now();
      times?.onApplyStart(batch);
      const before = times ? { ...warehouse.stats.stageMs } : undefined;
      if (times) stalls.take();
      await warehouse.apply(batch);
      const ms = performance.now() - started;
      applied.ms += ms;
      applied.batches++;
      times?.onApplied(batch, ms);
      if (before && ms > SLOW_APPLY_MS) {
        const after = warehouse.stats.stageMs as unknown as Record<string, number>;
        const parts = Object.entries(before).flatMap(([k, v]) => (k.endsWith('Ms') && after[k]! - v >= 1 ? [`${k} ${Math.round(after[k]! - v)}`] : []));
        console.error(`[${new Date().toISOString().slice(11, 23)}] slow apply in the latency phase: ${Math.round(ms)} ms, ${batch.changes.length} changes (${parts.join(', ')}; the JS thread's longest stall meanwhile ${Math.round(stalls.take())} ms)`);
      }
    },
  };
}

/** Runs the pipeline from `slot` until `rows` more rows are applied (0 = until streaming); returns ms and a stop. */
async function ducktail(url: string, slot: string, warehouse: Warehouse, bus: Bus, rows: number, times: TxTimes | null = null, batchMs = 200) {
  const started = performance.now();
  const before = warehouse.stats.rowsApplied;
  const busStop = new AbortController();
  const sink = timedSink(warehouse, times);
  const proxy = { ...warehouse, apply: sink.apply } as Warehouse;
  // Commit-to-acknowledged (source + producer) next to commit-to-queryable, to see where time goes.
  const publish = bus.publish.bind(bus);
  const timedBus: Bus = {
    ...bus,
    run: bus.run.bind(bus),
    close: bus.close.bind(bus),
    async publish(batch, signal) {
      await publish(batch, signal);
      times?.onAcked(batch);
    },
  };
  const pipeline = startPipeline({
    warehouse: proxy,
    bus: timedBus,
    source: { url, slot, publication: 'bench', tables: [], batchRows: 10_000, batchMs, statusIntervalMs: 1000, connectTimeoutS: 10 },
    log: (m) => {
      if (process.env.BENCH_VERBOSE) console.error(m);
    },
  });
  const status = pipeline.source!.status;
  const step = async () => {
    if (status.phase === 'retrying') throw new Error(`source failed: ${status.error}`);
    await Bun.sleep(5);
  };
  // BENCH_VERBOSE: the bus's status every 5 s (a stalled leg shows which partition stopped, and why).
  const watch = process.env.BENCH_VERBOSE
    ? setInterval(() => {
        const json = JSON.stringify({ applied: warehouse.stats.rowsApplied - before, source: status.phase, bus: bus.status?.() }, (_k, v) =>
          typeof v === 'bigint' ? String(v) : v);
        console.error(`[${new Date().toISOString()}] ${slot} ${json}`);
      }, 5_000)
    : undefined;
  const cpuFrom = rows > 0 ? CPU?.mark() : undefined;
  const appliedFrom = { ...applied };
  const stagesFrom = { ...warehouse.stats.stageMs } as unknown as Record<string, number>;
  try {
    if (rows === 0) while (status.phase !== 'streaming') await step();
    else while (warehouse.stats.rowsApplied - before < rows) await step();
  } finally {
    clearInterval(watch);
  }
  if (cpuFrom) {
    console.error(describeCpu(`cpu ${slot}, ${rows} rows`, accountCpu(cpuFrom, CPU!.mark())));
    console.error(`  (inside the warehouse's apply: ${Math.round(applied.ms - appliedFrom.ms)} ms of the leg, ${applied.batches - appliedFrom.batches} batches)`);
    // Where the apply's wall time went, by the warehouse's own stage timings (ms summed over the leg's batches).
    const stages = warehouse.stats.stageMs as unknown as Record<string, number>;
    const parts = Object.entries(stagesFrom).flatMap(([k, v]) => (k.endsWith('Ms') ? [`${k.slice(0, -2)} ${Math.round(stages[k]! - v)}`] : []));
    console.error(`  (its stages, ms: ${parts.join(', ')})`);
  }
  busStop.abort();
  return { ms: performance.now() - started, stop: () => pipeline.stop() };
}

async function rawDecoding(url: string, slot: string, endLsn: string): Promise<number> {
  const started = performance.now();
  const proc = Bun.spawn(
    [PG_RECVLOGICAL!, '-d', url, '--slot', slot, '--start', '--endpos', endLsn, '--no-loop', '-f', '/dev/null',
      '-o', 'proto_version=1', '-o', 'publication_names=bench'],
    { stderr: 'pipe' },
  );
  const cpuFrom = CPU?.mark();
  const code = await (CPU ? CPU.closely(proc.exited) : proc.exited);
  if (cpuFrom) console.error(describeCpu(`cpu ${slot} (pg_recvlogical)`, accountCpu(cpuFrom, CPU!.mark())));
  if (code !== 0) throw new Error(`pg_recvlogical exited ${code}: ${await new Response(proc.stderr).text()}`);
  return performance.now() - started;
}

interface RunResult {
  kafka: number;
  inline: number;
  raw: number | null;
  p50: number;
  p99: number;
  ackedP50: number;
  ackedP99: number;
  applyP99: number;
  applyMax: number;
  reachedP50: number;
  reachedP99: number;
  /** Transactions of the phase not queryable within 30 s of its end. */
  missing: number;
  /** The warm-up transaction's commit-to-queryable (right after the pipeline started), and the WAL decoded again first. */
  startupMs: number;
  redecodeMb: number;
  replayMb: number;
  /** DuckDB checkpoints during the phase (the warehouse's own, between applies) and the WAL when it started. */
  checkpoints: number;
  checkpointMs: number;
  walMb: number;
  /** Dirty page cache after the fill (MB, /proc/meminfo), and the sync that wrote it back (ms; null: not synced). */
  dirtyMb: number;
  /** Dirty page cache when the latency phase starts (MB). */
  phaseDirtyMb: number;
  syncMs: number | null;
  /** After the sync, until the disk answered fsyncs in milliseconds again: ms, and its slowest fsync meanwhile. */
  settleMs: number;
  settleWorstMs: number;
}

/** Waits until 4 KB written + fsync in `dir` has taken under 10 ms every time for 5 s (at most 30 s): ms waited, worst fsync. */
async function diskSettled(dir: string): Promise<{ ms: number; worst: number }> {
  const t0 = performance.now();
  const fd = openSync(join(dir, 'fsync-probe'), 'a');
  let fastSince = t0;
  let worst = 0;
  try {
    while (performance.now() - fastSince < 5_000 && performance.now() - t0 < 30_000) {
      const t = performance.now();
      writeSync(fd, Buffer.alloc(4096));
      fsyncSync(fd);
      const ms = performance.now() - t;
      worst = Math.max(worst, ms);
      if (ms >= 10) fastSince = performance.now();
      await Bun.sleep(20);
    }
  } finally {
    closeSync(fd);
    rmSync(join(dir, 'fsync-probe'), { force: true });
  }
  return { ms: performance.now() - t0, worst };
}

/** Dirty page cache of the box, MB (/proc/meminfo's Dirty). */
function dirtyMb(): number {
  const m = /^Dirty:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
}

async function once(run: number, kafka: KafkaMock): Promise<RunResult> {
  const pg = await startPostgres();
  const url = await pg.createDatabase(`kbench_${run}`);
  const sql = connectSql(url, { max: 2 });
  await sql.unsafe(`CREATE TABLE orders (order_id bigint PRIMARY KEY, customer_id bigint, product_id bigint,
    price numeric(10,2), quantity int, status text, order_date timestamptz)`);
  await fill(sql, 0, 0); // a table with a row: the empty-copy case would make the source copy it again live
  const prefix = `bench${run}`;
  await kafka.createTopic(`${prefix}.public.orders`, PARTITIONS, 3);
  const dir = mkdtempSync(join(tmpdir(), 'ducktail-kbench-'));
  const open = (name: string, slot: string) =>
    createWarehouse({ path: join(dir, `${name}.duckdb`), memoryLimit: '1GB', threads: 1, stream: slot });
  const [wk, wi] = [await open('kafka', `kb_k_${run}`), await open('inline', `kb_i_${run}`)];
  const kafkaBus = () =>
    createKafkaBus(kafkaOptions(kafka.bootstrap, prefix, { partitions: PARTITIONS, batchRows: 10_000, lingerMs: 5, maxLag: MAX_LAG, compression: COMPRESSION, eventSchema: EVENT_SCHEMA, fetchWorker: FETCH_WORKER, idempotent: IDEMPOTENT, producerWorker: PRODUCER_WORKER }), {
      loadOffsets: () => wk.progress.kafkaOffsets(),
      log: (m) => {
        if (process.env.BENCH_VERBOSE) console.error(m);
      },
    });
  try {
    // Slots first (empty copies), then the WAL every reader catches up on.
    await (await ducktail(url, `kb_k_${run}`, wk, kafkaBus(), 0)).stop();
    await (await ducktail(url, `kb_i_${run}`, wi, createInlineBus(), 0)).stop();
    if (PG_RECVLOGICAL) await sql`SELECT pg_create_logical_replication_slot(${`kb_r_${run}`}, 'pgoutput')`;
    for (let from = 1; from <= ROWS; from += TXN_ROWS) await fill(sql, from, Math.min(from + TXN_ROWS - 1, ROWS));
    const [{ end }] = (await sql`SELECT pg_current_wal_insert_lsn()::text AS end`) as unknown as [{ end: string }];
    const dirtyAfterFill = dirtyMb();
    let synced: { syncMs: number; settleMs: number; settleWorstMs: number } | null = null;
    if (SYNC) {
      const ts = performance.now();
      Bun.spawnSync(['sync']);
      const syncMs = performance.now() - ts;
      const settled = await diskSettled(dir);
      synced = { syncMs, settleMs: settled.ms, settleWorstMs: settled.worst };
    }
    const r: RunResult = { kafka: 0, inline: 0, raw: null, p50: 0, p99: 0, ackedP50: 0, ackedP99: 0, applyP99: 0, applyMax: 0, reachedP50: 0, reachedP99: 0, missing: 0, startupMs: 0, redecodeMb: 0, replayMb: 0, checkpoints: 0, checkpointMs: 0, walMb: 0, dirtyMb: dirtyAfterFill, phaseDirtyMb: 0, syncMs: synced?.syncMs ?? null, settleMs: synced?.settleMs ?? 0, settleWorstMs: synced?.settleWorstMs ?? 0 };
    const readers = [
      async () => {
        const k = await ducktail(url, `kb_k_${run}`, wk, kafkaBus(), ROWS);
        r.kafka = rate(ROWS, k.ms);
        await k.stop();
      },
      async () => {
        const i = await ducktail(url, `kb_i_${run}`, wi, createInlineBus(), ROWS);
        r.inline = rate(ROWS, i.ms);
        await i.stop();
      },
      async () => {
        if (PG_RECVLOGICAL) r.raw = rate(ROWS, await rawDecoding(url, `kb_r_${run}`, end));
      },
    ];
    for (let i = 0; i < readers.length; i++) await readers[(i + run) % readers.length]!();
    if (PHASE_DELAY_S > 0) await Bun.sleep(PHASE_DELAY_S * 1000);
    r.phaseDirtyMb = dirtyMb();

    // Latency at RATE changes/s through Kafka: 50-row transactions every 50/RATE s for 10 s, after a warm-up.
    const perTx = 50;
    const times = new TxTimes(perTx);
    // What PostgreSQL decodes again before it sends anything new: the slot's restart_lsn to its confirmed position.
    // And what it may send again: the WAL past the slot's confirmed position (the leg's tail, skipped as duplicates;
    // an upper bound: the source asks to start at the position ducktail stored, which may be later).
    const [slotAt] = (await sql`SELECT pg_wal_lsn_diff(confirmed_flush_lsn, restart_lsn)::float8 AS redecode,
      pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::float8 AS replay
      FROM pg_replication_slots WHERE slot_name = ${`kb_k_${run}`}`) as unknown as [{ redecode: number; replay: number }];
    stalls.watch(true);
    const live = await ducktail(url, `kb_k_${run}`, wk, kafkaBus(), 0, times, 50);
    // Warm-up: one transaction right after the start, measured apart. Before it, PostgreSQL decodes the slot's
    // WAL again from restart_lsn (the throughput leg's, when no checkpoint moved it) and the slot may replay
    // the leg's tail: a restart's cost, not the steady state at RATE this phase measures.
    const deadline = (ms: number) => Date.now() + ms;
    let next = ROWS + 1;
    times.fromUs = nowUs();
    await fill(sql, next, next + perTx - 1);
    next += perTx;
    for (const until = deadline(60_000); times.queryable.length === 0 && Date.now() < until; ) await Bun.sleep(5);
    r.startupMs = times.queryable[0] ?? Number.POSITIVE_INFINITY;
    r.redecodeMb = slotAt.redecode / 1e6;
    r.replayMb = slotAt.replay / 1e6;
    times.queryable.length = times.acked.length = times.reached.length = times.applyMs.length = 0;
    times.fromUs = nowUs();
    const ckpt0 = { ...wk.stats.checkpoint };
    const txs = (RATE / perTx) * 10;
    const stamp = () => new Date().toISOString().slice(11, 23);
    console.error(`[${stamp()}] latency phase: the measured ${txs} transactions start (DuckDB WAL ${(ckpt0.walBytes / 1e6).toFixed(1)} MB)`);
    const t0 = performance.now();
    for (let i = 0; i < txs; i++) {
      await fill(sql, next, next + perTx - 1);
      next += perTx;
      const due = t0 + ((i + 1) * perTx * 1000) / RATE;
      const wait = due - performance.now();
      if (wait > 0) await Bun.sleep(wait);
    }
    for (const until = deadline(30_000); times.queryable.length < txs && Date.now() < until; ) await Bun.sleep(20);
    console.error(`[${stamp()}] latency phase: ends, ${times.queryable.length} of ${txs} transactions queryable, ${Math.round(performance.now() - t0)} ms after the first was written`);
    await live.stop();
    stalls.watch(false);
    r.checkpoints = wk.stats.checkpoint.checkpoints - ckpt0.checkpoints;
    r.checkpointMs = wk.stats.checkpoint.checkpointMs - ckpt0.checkpointMs;
    r.walMb = ckpt0.walBytes / 1e6;
    // A transaction not queryable within 30 s counts as infinitely late (it is not left out of the percentiles).
    r.missing = txs - times.queryable.length;
    const all = (xs: number[]) => [...xs, ...Array<number>(Math.max(0, txs - xs.length)).fill(Number.POSITIVE_INFINITY)];
    r.p50 = pct(all(times.queryable), 0.5);
    r.p99 = pct(all(times.queryable), 0.99);
    r.ackedP50 = pct(all(times.acked), 0.5);
    r.ackedP99 = pct(all(times.acked), 0.99);
    r.reachedP50 = pct(all(times.reached), 0.5);
    r.reachedP99 = pct(all(times.reached), 0.99);
    r.applyP99 = pct(times.applyMs, 0.99);
    r.applyMax = Math.max(...times.applyMs);
    // The phase starts a new pipeline (and a new producer Worker): the warm-up above pays the restart, and the
    // first second of the measured transactions is shown apart as well.
    const firstSecond = RATE / perTx;
    if (times.queryable.length > firstSecond) {
      console.error(
        `latency phase: p99 without the first second's ${firstSecond} transactions ${Math.round(pct(all(times.queryable.slice(firstSecond)).slice(0, txs - firstSecond), 0.99))} ms; ` +
          `the first second's max ${Math.round(Math.max(...times.queryable.slice(0, firstSecond)))} ms`,
      );
    }
    return r;
  } finally {
    await wk.close();
    await wi.close();
    await sql`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name LIKE ${`kb_%_${run}`}`;
    await sql.end();
    rmSync(dir, { recursive: true, force: true });
  }
}

const kafka = await startKafkaMock({ brokers: 3 });
const results: RunResult[] = [];
try {
  for (let i = 0; i < RUNS; i++) {
    const r = await once(FIRST_RUN + i, kafka);
    results.push(r);
    const raw = r.raw === null ? '' : `, pg_recvlogical ${fmt(r.raw)} (kafka/raw ${(r.kafka / r.raw).toFixed(2)})`;
    console.log(`run ${FIRST_RUN + i + 1}: kafka ${fmt(r.kafka)}, inline ${fmt(r.inline)}${raw}; latency through kafka at ${RATE}/s p50 ${Math.round(r.p50)} ms, p99 ${Math.round(r.p99)} ms (commit to acked by the brokers: p50 ${Math.round(r.ackedP50)} ms, p99 ${Math.round(r.ackedP99)} ms; commit to apply start: p50 ${Math.round(r.reachedP50)} ms, p99 ${Math.round(r.reachedP99)} ms; DuckDB apply per batch p99 ${Math.round(r.applyP99)} ms, max ${Math.round(r.applyMax)} ms${r.missing ? `; ${r.missing} transactions not queryable within 30 s` : ''}); after the restart on the slot (${r.redecodeMb.toFixed(1)} MB of WAL decoded again, ${r.replayMb.toFixed(1)} MB sent again) the first transaction took ${Math.round(r.startupMs)} ms; DuckDB checkpoints in the phase ${r.checkpoints} (${Math.round(r.checkpointMs)} ms, WAL at its start ${r.walMb.toFixed(1)} MB); after the fill ${Math.round(r.dirtyMb)} MB dirty in the page cache, ${r.syncMs === null ? 'not synced' : `written back by sync in ${Math.round(r.syncMs)} ms, then ${Math.round(r.settleMs)} ms until fsyncs had taken under 10 ms for 5 s (the slowest ${Math.round(r.settleWorstMs)} ms)`}; ${Math.round(r.phaseDirtyMb)} MB dirty when the phase started`);
  }
} finally {
  CPU?.stop();
  await kafka.stop();
  await stopPostgres();
}
const raws = results.flatMap((r) => (r.raw === null ? [] : [r.raw]));
console.log(
  `median of ${RUNS} runs, ${ROWS} rows, ${TXN_ROWS}-row transactions, ${PARTITIONS} partitions, 3 mock brokers: ` +
    `kafka ${fmt(median(results.map((r) => r.kafka)))}, inline ${fmt(median(results.map((r) => r.inline)))}` +
    (raws.length ? `, pg_recvlogical ${fmt(median(raws))}, kafka/raw ${median(results.map((r) => r.kafka / (r.raw ?? 1))).toFixed(2)}` : '') +
    `, kafka/inline ${median(results.map((r) => r.kafka / r.inline)).toFixed(2)}; ` +
    `commit-to-queryable through kafka at ${RATE}/s: p50 ${Math.round(median(results.map((r) => r.p50)))} ms, p99 ${Math.round(median(results.map((r) => r.p99)))} ms ` +
    `(p99 per run: ${results.map((r) => Math.round(r.p99)).join(' / ')} ms)`,
);
