// `npm run bench -- query-cost [rows ...]`: how query cost grows with data size, hot vs tiered. Runs
// bench/tiering.ts (orders built directly in DuckDB, then a real archive pass: 90% of the rows to warm
// Parquet and cold s3rver) once per size, each under the shared benchmark lock, and collects its medians
// into bench/results/query-cost-<time>.json for docs/SCALING.md and bench/plot.ts.
// Usage: bun bench/query-cost.ts [rows... = 1000000 10000000 50000000] [--runs N: query runs per median, default 5]
//        [--no-lock: the caller holds flock /tmp/bench.lock for all sizes]
//        [--log FILE ...: parse saved bench/tiering.ts output instead of running it, one file per size]
// One size per lock turn: at 50M rows a turn takes about 8 min with --runs 3 on the 2-core box.
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { codeCommit } from './results.ts';

const argv = process.argv.slice(2);
const logs = argv.flatMap((a, i) => (argv[i - 1] === '--log' ? [a] : []));
const RUNS = argv.includes('--runs') ? Number(argv[argv.indexOf('--runs') + 1]) : 5;
if (!Number.isInteger(RUNS) || RUNS < 1) throw new Error('--runs must be a whole number >= 1');
const sizes = argv.filter((a, i) => !a.startsWith('--') && argv[i - 1] !== '--log' && argv[i - 1] !== '--runs').map(Number).filter((n) => n > 0);
const out: Record<string, number | string>[] = [];
const num = (text: string, re: RegExp) => {
  const m = re.exec(text);
  return m ? Number(m[1]) : null;
};
async function tieringOutput(rows: number, log: string | undefined): Promise<string | null> {
  if (log) return Bun.file(log).text();
  const cmd = [...(argv.includes('--no-lock') ? [] : ['flock', '/tmp/bench.lock']), process.execPath, join(import.meta.dir, 'tiering.ts'), String(rows), String(RUNS)];
  console.log(`$ ${cmd.join(' ')}`);
  const proc = Bun.spawn(cmd, { stdout: 'pipe', stderr: 'inherit' });
  const text = await new Response(proc.stdout).text();
  process.stdout.write(text);
  return (await proc.exited) === 0 ? text : null;
}

const code = codeCommit();
const list = logs.length ? logs.map(() => 0) : sizes.length ? sizes : [1_000_000, 10_000_000, 50_000_000];
for (let k = 0; k < list.length; k++) {
  const text = await tieringOutput(list[k]!, logs[k]);
  if (text === null) {
    console.error(`tiering bench at ${list[k]} rows failed; sizes after it are skipped`);
    break;
  }
  const rows = logs[k] ? num(text, /loaded (\d+) rows/)! : list[k]!;
  out.push({
    rows,
    loadS: num(text, /loaded \d+ rows in ([\d.]+) s/) ?? -1,
    hotMs: num(text, /revenue per day, all hot: median (\d+) ms/)!,
    tieredMs: num(text, /revenue per day, 90% archived: median (\d+) ms/)!,
    tieredRefilledMs: num(text, /after the refill: median (\d+) ms/)!,
    tieredUpdatedMs: num(text, /1% of it updated: median (\d+) ms/)!,
    archiveToWarmRowsPerS: num(text, /hot -> warm: .* = (\d+) rows\/s/)!,
    archiveToColdRowsPerS: num(text, /warm -> cold .* = (\d+) rows\/s/)!,
    coldReadMs: num(text, /from cold \(cached\) files: median (\d+) ms/)!,
    warmReadMs: num(text, /from warm files: median (\d+) ms/)!,
    hotLast45Ms: num(text, /last 45 days, all hot: median (\d+) ms/)!,
    tieredLast45Ms: num(text, /last 45 days, 90% archived: median (\d+) ms/)!,
  });
}
const commit = Bun.spawnSync(['git', 'rev-parse', '--short', 'HEAD']).stdout.toString().trim();
mkdirSync(join(import.meta.dir, 'results'), { recursive: true });
const file = join(import.meta.dir, 'results', `query-cost-${Date.now()}.json`);
writeFileSync(file, `${JSON.stringify({ label: 'query-cost', commit, codeCommit: code, runs: RUNS, loadAvg: loadavg()[0], at: new Date().toISOString(), query: 'revenue per day over a year (bench/tiering.ts REVENUE)', sizes: out }, null, 1)}\n`);
console.log(`\nrows        hot ms   tiered ms   (90% archived: warm Parquet + cold s3rver via cache)`);
for (const s of out) console.log(`${String(s.rows).padEnd(11)} ${String(s.hotMs).padStart(6)}   ${String(s.tieredMs).padStart(9)}`);
console.log(`json: ${file}`);
