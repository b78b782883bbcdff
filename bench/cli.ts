// `npm run bench -- <mode> [args]`: one entry point for the benchmarks, each a script of its own.
//   ingest   bench/run.ts       catch-up vs pg_recvlogical, initial copy vs COPY TO STDOUT, freshness
//   kafka    bench/kafka.ts     the Kafka bus vs inline vs pg_recvlogical, latency through Kafka
//   api      bench/api.ts       API latency under concurrent clients while ingesting
//   tiering  bench/tiering.ts   archive pass rows/s, queries hot vs tiered
//   workload bench/workload.ts  the orders workload end to end, with its ceilings in the same run
//   scale    bench/scale.ts     the series docs/SCALING.md cites (workload at 1x..flat out, limits moved)
//   plot     bench/plot.ts      docs/*.png from bench/results/*.json
// Any other bench/<mode>.ts runs as `npm run bench -- <mode>`.
// A first argument that is a number keeps the old `npm run bench -- 1000000 stream` meaning (ingest).
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const MODES: Record<string, string> = {
  ingest: 'run.ts',
  kafka: 'kafka.ts',
  api: 'api.ts',
  tiering: 'tiering.ts',
  workload: 'workload.ts',
  scale: 'scale.ts',
};

const [first, ...rest] = process.argv.slice(2);
const mode = first === undefined || /^\d/.test(first) || first.startsWith('--') ? 'ingest' : first;
const args = mode === first ? rest : process.argv.slice(2);
const script = MODES[mode] ?? (/^[a-z-]+$/.test(mode) && existsSync(join(import.meta.dir, `${mode}.ts`)) ? `${mode}.ts` : undefined);
if (!script) {
  console.error(`unknown bench mode "${mode}"; use one of: ${Object.keys(MODES).join(', ')}\n` +
    'e.g. npm run bench -- workload --rate 100 --bus inline --duration 60');
  process.exit(2);
}
const proc = Bun.spawn([process.execPath, join(import.meta.dir, script), ...args], { stdio: ['inherit', 'inherit', 'inherit'] });
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => proc.kill(sig));
process.exit(await proc.exited);
