// `npm run bench -- scale [group ...] [--duration S] [--dry] [--no-lock]`: the workload runs docs/SCALING.md cites,
// one after the other, each under the shared benchmark lock (flock /tmp/bench.lock) so a run never
// competes with another engineer's benchmark; each writes bench/results/<label>-<time>.json, which
// `npm run bench -- plot` reads (the newest file per label). --no-lock: the caller holds the lock for the
// whole group (`flock /tmp/bench.lock npm run bench -- scale rates --no-lock`). Groups (default: all):
//   rates   the shop at 1x, 10x, 100x, 1000x, 100,000x, 1,000,000x of 100 orders/day, then flat out (inline bus)
//   kafka   flat out through the Kafka bus (mock cluster, 6 partitions) with 1 and 2 instances; then
//           ducktail catching up on a flat-out workload it did not read live (its own ceiling), as is
//           and with one edit each (batch_rows 50000, memory_limit 256MB)
//   limits  more of the same: batch_rows 1000, TOAST notes, Kafka at 1000x
import { join } from 'node:path';

/** Operations/s of the workload for a shop doing `orders` new orders a day (70% of operations are new orders). */
export const opsPerS = (orders: number) => orders / 86_400 / 0.7;

const SHOP = 100;
const rate = (x: number) => ['--rate', opsPerS(SHOP * x).toPrecision(4)];
const SEED = ['--seed', '50000'];
const PLAN: Record<string, { label: string; args: string[] }[]> = {
  rates: [
    ...[1, 10, 100, 1000, 100_000, 1_000_000].map((x) => ({ label: `scale-inline-${x}x`, args: [...rate(x), '--bus', 'inline', ...SEED] })),
    { label: 'scale-inline-max', args: ['--rate', 'max', '--bus', 'inline'] },
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
  ],
};

if (import.meta.main) {
  const argv = process.argv.slice(2);
  const di = argv.indexOf('--duration');
  const duration = di >= 0 ? argv[di + 1]! : '30';
  const groups = argv.filter((a, i) => !a.startsWith('--') && argv[i - 1] !== '--duration');
  const runs = (groups.length ? groups : Object.keys(PLAN)).flatMap((g) => {
    if (!PLAN[g]) throw new Error(`unknown group ${g}; groups: ${Object.keys(PLAN).join(', ')}`);
    return PLAN[g]!;
  });
  for (const r of runs) {
    const lock = argv.includes('--no-lock') ? [] : ['flock', '/tmp/bench.lock'];
    const cmd = [...lock, process.execPath, join(import.meta.dir, 'workload.ts'), ...r.args, '--duration', duration, '--label', r.label];
    console.log(`$ ${cmd.join(' ')}`);
    if (argv.includes('--dry')) continue;
    const code = await Bun.spawn(cmd, { stdio: ['inherit', 'inherit', 'inherit'] }).exited;
    if (code !== 0) console.error(`${r.label}: exited ${code}, going on with the next run`);
  }
}
