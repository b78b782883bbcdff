// What `npm run bench -- workload` watches while the orders workload runs: commit-to-queryable probes
// (a row committed in PostgreSQL, then polled through ducktail's HTTP API until a query returns it), and
// once a second each ducktail process's RSS and CPU (/proc) and its /metrics (rows applied, lags, alerts).
import { readFileSync, statSync } from 'node:fs';
import type { Sql } from 'postgres';

/** One ducktail process the bench started. */
export interface Instance {
  pid: number;
  base: string;
  /** Its DuckDB WAL file: a size that drops between two samples means a checkpoint ran in that second. */
  wal?: string;
}

/** One second of the run, summed over the instances (lag: the largest). */
export interface Sample {
  t: number;
  rssMB: number;
  cpuPct: number;
  applied: number;
  lagS: number | null;
  consumerLag: number | null;
  firing: string[];
  /**
   * Stages, from ducktail's own histograms, over this second (summed over the instances): batches committed,
   * and how many took over 0.25 s to apply and commit in DuckDB (`batch_apply_duration_seconds`), or over
   * 0.25 s from the PostgreSQL commit of their oldest change until queryable (`commit_to_queryable_seconds`:
   * decoding, batching, waiting for the apply chain and the apply). A slow probe with neither slow waited in
   * the API (the query) or in the harness's polling.
   */
  batches?: number;
  slowApplies?: number;
  slowFreshness?: number;
  /** DuckDB WAL size (MB, summed): a drop from the second before = a checkpoint in this second. */
  walMB?: number;
  /**
   * The whole box's pressure stall (Linux PSI, /proc/pressure) over this second, ms: some task waiting for
   * I/O (`ioSomeMs`), every task waiting for I/O (`ioFullMs`), some task waiting for a CPU (`cpuSomeMs`).
   */
  ioSomeMs?: number;
  ioFullMs?: number;
  cpuSomeMs?: number;
}

/** Cumulative PSI stall totals (µs): [io some, io full, cpu some]; zeros where /proc/pressure is absent. */
function pressure(): number[] {
  const total = (file: string, kind: string) => {
    try {
      return Number(new RegExp(`^${kind} .*total=(\\d+)`, 'm').exec(readFileSync(file, 'utf8'))?.[1] ?? 0);
    } catch {
      return 0;
    }
  };
  return [total('/proc/pressure/io', 'some'), total('/proc/pressure/io', 'full'), total('/proc/pressure/cpu', 'some')];
}

const TICKS = 100; // USER_HZ on Linux

function procStat(pid: number): { cpuTicks: number; rssMB: number } {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const rss = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
    return { cpuTicks: Number(f[11]) + Number(f[12]), rssMB: rss / 1024 };
  } catch {
    return { cpuTicks: 0, rssMB: 0 };
  }
}

/** The ducktail_* values the bench reads from /metrics (sums over label sets). */
export async function scrape(base: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const text = await (await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
  for (const line of text.split('\n')) {
    if (!line.startsWith('ducktail_')) continue;
    const m = /^(ducktail_[a-z_]+)(\{[^}]*\})? ([^ ]+)/.exec(line);
    if (!m) continue;
    const alert = m[1] === 'ducktail_alert_firing' ? /alert="([^"]+)"/.exec(m[2] ?? '')?.[1] : undefined;
    // Histogram buckets keep their bound: `ducktail_x_bucket:0.25`.
    const le = m[1]!.endsWith('_bucket') ? /le="([^"]+)"/.exec(m[2] ?? '')?.[1] : undefined;
    const key = alert ? `alert:${alert}` : le ? `${m[1]}:${le}` : m[1]!;
    out.set(key, (out.get(key) ?? 0) + Number(m[3]));
  }
  return out;
}

/** Total rows applied (snapshot included) over the instances. */
export async function appliedRows(instances: Instance[]): Promise<number> {
  let n = 0;
  for (const i of instances) n += (await scrape(i.base)).get('ducktail_changes_applied_total') ?? 0;
  return n;
}

/** Samples every instance once a second until stopped; `firstFiring` maps an alert to the second it first fired. */
export function startSampler(instances: Instance[], t0: number) {
  const samples: Sample[] = [];
  const firstFiring = new Map<string, number>();
  let last = instances.map((i) => procStat(i.pid).cpuTicks);
  let lastT = performance.now();
  // Cumulative histogram counts at the previous sample: [batches, applies > 0.25 s, freshness > 0.25 s].
  let lastStages: number[] | null = null;
  let lastPressure = pressure();
  const stagesOf = (m: Map<string, number>) => {
    const count = m.get('ducktail_batch_apply_duration_seconds_count') ?? 0;
    const fresh = m.get('ducktail_commit_to_queryable_seconds_count') ?? 0;
    return [count, count - (m.get('ducktail_batch_apply_duration_seconds_bucket:0.25') ?? 0), fresh - (m.get('ducktail_commit_to_queryable_seconds_bucket:0.25') ?? 0)];
  };
  let stopped = false;
  const done = (async () => {
    while (!stopped) {
      await Bun.sleep(1000);
      const now = performance.now();
      const stats = instances.map((i) => procStat(i.pid));
      const cpu = stats.reduce((s, x, k) => s + x.cpuTicks - last[k]!, 0);
      last = stats.map((x) => x.cpuTicks);
      const s: Sample = { t: (now - t0) / 1000, rssMB: stats.reduce((a, x) => a + x.rssMB, 0), cpuPct: ((cpu / TICKS) * 100_000) / (now - lastT), applied: 0, lagS: null, consumerLag: null, firing: [] };
      lastT = now;
      const stages = [0, 0, 0];
      for (const i of instances) {
        const m = await scrape(i.base).catch(() => new Map<string, number>());
        stagesOf(m).forEach((v, k) => (stages[k]! += v));
        s.applied += m.get('ducktail_changes_applied_total') ?? 0;
        const lag = m.get('ducktail_replication_lag_seconds');
        if (lag !== undefined) s.lagS = Math.max(s.lagS ?? 0, lag);
        const cl = m.get('ducktail_bus_consumer_lag_messages');
        if (cl !== undefined) s.consumerLag = (s.consumerLag ?? 0) + cl;
        for (const [k, v] of m) if (k.startsWith('alert:') && v > 0 && !s.firing.includes(k.slice(6))) s.firing.push(k.slice(6));
      }
      if (lastStages) [s.batches, s.slowApplies, s.slowFreshness] = stages.map((v, k) => v - lastStages![k]!);
      const p = pressure();
      [s.ioSomeMs, s.ioFullMs, s.cpuSomeMs] = p.map((v, k) => Math.round((v - lastPressure[k]!) / 1000));
      lastPressure = p;
      s.walMB = Math.round(instances.reduce((a, i) => a + (i.wal ? (statSync(i.wal, { throwIfNoEntry: false })?.size ?? 0) : 0), 0) / 1e4) / 100;
      lastStages = stages;
      for (const a of s.firing) if (!firstFiring.has(a)) firstFiring.set(a, s.t);
      samples.push(s);
    }
  })();
  return {
    samples,
    firstFiring,
    async stop() {
      stopped = true;
      await done;
    },
  };
}

/** Commits one probe row every `everyMs` and polls the instances' APIs until each is queryable. */
export function startProbes(sql: Sql, instances: Instance[], everyMs = 100) {
  const sent = new Map<number, number>();
  const seen = new Map<number, number>();
  let id = 0;
  let stopped = false;
  let finalSent = false;
  let drainUntil = Infinity;
  const send = async () => {
    id++;
    await sql`INSERT INTO probe (id) VALUES (${id})`;
    sent.set(id, performance.now());
  };
  const sender = (async () => {
    while (!stopped) {
      await send();
      await Bun.sleep(everyMs);
    }
  })();
  const poller = (async () => {
    while (!finalSent || seen.size < sent.size) {
      const floor = Math.min(...[...sent.keys()].filter((k) => !seen.has(k)), Number.MAX_SAFE_INTEGER) - 1;
      for (const i of instances) {
        const res = await fetch(`${i.base}/v1/query`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ sql: `SELECT id FROM probe WHERE id > ${Math.max(0, floor)}` }),
        }).catch(() => null);
        if (!res?.ok) continue;
        const now = performance.now();
        for (const [k] of ((await res.json()) as { rows: [number][] }).rows) if (!seen.has(Number(k))) seen.set(Number(k), now);
      }
      if (performance.now() > drainUntil) break;
      await Bun.sleep(20);
    }
  })();
  return {
    /** Stops sending, sends one last probe and waits (up to `limitMs`) until every probe is queryable. */
    async drain(limitMs: number): Promise<{ latencies: number[]; lost: number; lastSeenMs: number; slowest: { at: number; ms: number }[]; all: { at: number; ms: number }[] }> {
      stopped = true;
      await sender;
      await send();
      drainUntil = performance.now() + limitMs;
      finalSent = true;
      await poller;
      const latencies = [...sent].flatMap(([k, t]) => (seen.has(k) ? [seen.get(k)! - t] : []));
      // The 10 slowest probes and when they were committed (performance.now(), ms): which second of the run they fell in.
      const all = [...sent].flatMap(([k, t]) => (seen.has(k) ? [{ at: t, ms: seen.get(k)! - t }] : []));
      const slowest = [...all].sort((a, b) => b.ms - a.ms).slice(0, 10);
      return { latencies, lost: sent.size - latencies.length, lastSeenMs: Math.max(...seen.values()), slowest, all };
    },
  };
}

export const percentile = (xs: number[], p: number) => (xs.length ? [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))]! : NaN);
