// `npm run bench -- scale [group ...] [--repeat N] [--only LABEL,...] [--duration S] [--series NAME] [--dry] [--no-lock]`: the workload runs docs/SCALING.md cites,
// one after the other, each under the shared benchmark lock (flock /tmp/bench.lock) so a run never
// competes with another engineer's benchmark; each writes bench/results/<label>-<time>.json, which
// `npm run bench -- plot` reads (the newest file per label). --no-lock: the caller holds the lock for the
// whole group (`flock /tmp/bench.lock npm run bench -- scale rates --no-lock`). --repeat N: the group N times over
// (round after round, so the repeats of one run are minutes apart), for the medians of 3 that bench/report.ts
// takes (default 1). Groups (default: all):
//   rates   the shop at 1x, 10x, 100x, 1000x, 100,000x, 1,000,000x of 100 orders/day, then flat out (inline bus)
//   kafka   flat out through the Kafka bus (mock cluster, 6 partitions) with 1 and 2 instances; then
//           ducktail catching up on a flat-out workload it did not read live (its own ceiling), as is
//           and with one edit each (batch_rows 50000, memory_limit 256MB)
//   analytics  the API under 1..100 concurrent clients while ingesting (bench/api.ts)
//   limits  more of the same: batch_rows 1000, TOAST notes flat out, Kafka at 1000x, Kafka with TOAST notes
//           (against the mock's 5 MB of retention per partition)
import { join } from 'node:path';

/** Operations/s of the workload for a shop doing `orders` new orders a day (70% of operations are new orders). */
export const opsPerS = (orders: number) => orders / 86_400 / 0.7;

const SHOP = 100;
const rate = (x: number) => ['--rate', opsPerS(SHOP * x).toPrecision(4)];
const SEED = ['--seed', '50000'];
/** One run: bench/workload.ts with `args` (and --duration, --label), or another bench script with its own args. */
const PLAN: Record<string, { label: string; args: string[]; script?: string }[]> = {
  rates: [
    ...[1, 10, 100, 1000, 100_000, 1_000_000].map((x) => ({ label: `scale-inline-${x}x`, args: [...rate(x), '--bus', 'inline', ...SEED] })),
    { label: 'scale-inline-max', args: ['--rate', 'max', '--bus', 'inline', ...SEED] },
  ],
  kafka: [
    { label: 'scale-kafka-max', args: ['--rate', 'max', '--bus', 'kafka', ...SEED] },
    { label: 'limit-kafka-2-instances', args: ['--rate', 'max', '--bus', 'kafka', '--instances', '2', ...SEED] },
    // ducktail's own ceiling on this workload (live, the source is the limit): catching up, then with one edit each.
    { label: 'limit-catch-up', args: ['--rate', 'max', '--catch-up', ...SEED] },
    { label: 'limit-catch-up-batch-50000', args: ['--rate', 'max', '--catch-up', '--set', 'warehouse.batch_rows=50000', ...SEED] },
    { label: 'limit-catch-up-memory-256MB', args: ['--rate', 'max', '--catch-up', '--set', 'warehouse.memory_limit=256MB', ...SEED] },
  ],
  limits: [
    { label: 'limit-catch-up-batch-1000', args: ['--rate', 'max', '--catch-up', '--set', 'warehouse.batch_rows=1000', ...SEED] },
    { label: 'limit-toast', args: ['--rate', 'max', '--toast', ...SEED] },
    { label: 'scale-kafka-1000x', args: [...rate(1000), '--bus', 'kafka', ...SEED] },
    // 4 kB notes through the mock (5 MB per partition): as is, and with max_lag small enough that the producer
    // cannot run 5 MB ahead of the consumer (docs/KAFKA.md). A smaller seed: its copy goes through Kafka too.
    { label: 'limit-kafka-toast', args: ['--rate', 'max', '--bus', 'kafka', '--toast', '--seed', '5000'] },
    { label: 'limit-kafka-toast-max-lag-1000', args: ['--rate', 'max', '--bus', 'kafka', '--toast', '--seed', '5000', '--set', 'bus.max_lag=1000'] },
  ],
  // The seed's "~50 concurrent analytical queries": every analytics endpoint and an ad-hoc /v1/query under 1, 16,
  // 50 and 100 clients, 10M orders, 8 s each, while 1,000 changes/s are ingested (bench/api.ts).
  analytics: [{ label: 'analytics-concurrency', script: 'api.ts', args: ['10000000', '1,16,50,100', '8', '1000'] }],
};

if (import.meta.main) {
  const argv = process.argv.slice(2);
  const value = (name: string, dflt: string) => (argv.includes(name) ? argv[argv.indexOf(name) + 1]! : dflt);
  const duration = value('--duration', '30');
  const repeat = Number(value('--repeat', '1'));
  if (!Number.isInteger(repeat) || repeat < 1) throw new Error(`--repeat must be a whole number >= 1, got ${value('--repeat', '1')}`);
  const groups = argv.filter((a, i) => !a.startsWith('--') && !['--duration', '--repeat', '--only', '--series'].includes(argv[i - 1]!));
  // --series NAME: the runs form one measurement series (bench/results.ts: a row's median is over its newest series).
  const series = argv.includes('--series') ? ['--series', value('--series', '')] : [];
  const round = (groups.length ? groups : Object.keys(PLAN)).flatMap((g) => {
    if (!PLAN[g]) throw new Error(`unknown group ${g}; groups: ${Object.keys(PLAN).join(', ')}`);
    return PLAN[g]!;
  });
  // --only label,label: just those runs of the groups (e.g. the flat-out rows docs/SCALING.md quotes most).
  const only = argv.includes('--only') ? value('--only', '').split(',') : null;
  const runs = Array.from({ length: repeat }, () => round.filter((r) => !only || only.includes(r.label))).flat();
  for (const r of runs) {
    const lock = argv.includes('--no-lock') ? [] : ['flock', '/tmp/bench.lock'];
    const args = r.script ? r.args : [...r.args, '--duration', duration, '--label', r.label, ...series];
    const cmd = [...lock, process.execPath, join(import.meta.dir, r.script ?? 'workload.ts'), ...args];
    console.log(`$ ${r.script ? `BENCH_LABEL=${r.label} ${series.length ? `BENCH_SERIES=${series[1]} ` : ''}` : ''}${cmd.join(' ')}`);
    if (argv.includes('--dry')) continue;
    const env = { ...process.env, ...(r.script ? { BENCH_LABEL: r.label, ...(series.length ? { BENCH_SERIES: series[1] } : {}) } : {}) };
    const code = await Bun.spawn(cmd, { stdio: ['inherit', 'inherit', 'inherit'], env }).exited;
    if (code !== 0) console.error(`${r.label}: exited ${code}, going on with the next run`);
  }
}
