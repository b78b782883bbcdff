// Commit-to-queryable latency under background load: single-row probe commits are timed from the
// moment PostgreSQL acknowledges their COMMIT to the moment the warehouse transaction holding them
// has committed in DuckDB (queryable from then on), while a loader commits `rate` changes/s.
import type { Sql } from 'postgres';
import type { ChangeBatch } from '../src/change/index.ts';
import type { Warehouse } from '../src/warehouse/index.ts';

/** Percentiles of the probes' commit-to-queryable latency, in ms. */
export interface Freshness {
  p50: number;
  p99: number;
  probes: number;
  /** The three slowest probes: their number in sending order (1 = first) and latency, e.g. "#1 412 ms". */
  worst: string;
}

const percentile = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))]!;

/** When a probe's batch was handed to the warehouse, when that batch's apply started (after the ones queued before it), and when it committed. */
export interface ProbeSeen {
  handedAt: number;
  startedAt: number;
  at: number;
  /** Scheduled checkpoints that finished between the hand-over and the commit (they run on the same writer). */
  checkpoints: number;
}

/** Wraps the warehouse's apply so each probe row's queryable moment is recorded, with the stages before it. */
export function watchProbes(warehouse: Warehouse): Map<number, ProbeSeen> {
  const seen = new Map<number, ProbeSeen>();
  const apply = warehouse.apply.bind(warehouse);
  let chain: Promise<unknown> = Promise.resolve();
  warehouse.apply = async (batch: ChangeBatch) => {
    const handedAt = performance.now();
    const ck = warehouse.stats.checkpoint.checkpoints;
    let startedAt = handedAt;
    // Applies run one after the other (src/warehouse/index.ts): this one starts when the one before it settled.
    const before = chain;
    const run = apply(batch);
    chain = run.catch(() => {});
    void before.then(() => {
      startedAt = Math.max(handedAt, performance.now());
    });
    await run;
    const at = performance.now();
    for (const c of batch.changes) if (c.table === 'public.probe' && c.op === 'I') seen.set(Number(c.row[0]), { handedAt, startedAt, at, checkpoints: warehouse.stats.checkpoint.checkpoints - ck });
  };
  return seen;
}

/** Runs the load and the probes for `seconds`; the pipeline must be streaming. */
export async function measureFreshness(
  load: Sql,
  probe: Sql,
  seen: Map<number, ProbeSeen>,
  opts: { rate: number; seconds: number; firstId: number },
): Promise<Freshness> {
  const tickMs = 20;
  const perTick = Math.max(1, Math.round((opts.rate * tickMs) / 1000));
  const end = performance.now() + opts.seconds * 1000;
  let next = opts.firstId;
  const loader = (async () => {
    for (let t = performance.now(); t < end; t += tickMs) {
      const from = next;
      next += perTick;
      await load.unsafe(`INSERT INTO orders SELECT g, g % 1000, g % 50, (g % 10000) / 100.0, 1 + g % 4, 'pending',
        now() FROM generate_series(${from}, ${from + perTick - 1}) g`);
      const wait = t + tickMs - performance.now();
      if (wait > 0) await Bun.sleep(wait);
    }
  })();
  const sent = new Map<number, number>();
  let id = 0;
  while (performance.now() < end) {
    id++;
    await probe`INSERT INTO probe VALUES (${id})`;
    sent.set(id, performance.now());
    await Bun.sleep(50);
  }
  await loader;
  const deadline = performance.now() + 30_000;
  while (seen.size < sent.size && performance.now() < deadline) await Bun.sleep(10);
  const probes = [...sent].flatMap(([k, t]) => (seen.has(k) ? [{ sentAt: t, ...seen.get(k)! }] : []));
  const latencies = probes.map((p) => p.at - p.sentAt);
  if (latencies.length < sent.size) throw new Error(`${sent.size - latencies.length} probes never became queryable`);
  // Each slow probe's time split: until ducktail handed its batch to the warehouse (PostgreSQL's decoding, the
  // network, ducktail's decoding and batching), waiting behind the batch before it, and its own apply (BEGIN to COMMIT).
  const worst = probes
    .map((p, i) => ({ p, ms: p.at - p.sentAt, n: i + 1 }))
    .sort((a, b) => b.ms - a.ms)
    .slice(0, 3)
    .map(({ p, ms, n }) => {
      const r = (x: number) => Math.round(x);
      return `#${n} ${r(ms)} ms (to the warehouse ${r(p.handedAt - p.sentAt)}, queued ${r(p.startedAt - p.handedAt)}, apply ${r(p.at - p.startedAt)}${p.checkpoints ? `, ${p.checkpoints} checkpoint` : ''})`;
    })
    .join(', ');
  return { p50: percentile(latencies, 50), p99: percentile(latencies, 99), probes: latencies.length, worst };
}
