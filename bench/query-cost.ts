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
// The 1-minute load when the sizes start and when they end (the box is shared; not measured when parsing --log files).
const loadAtStart = logs.length ? null : loadavg()[0];
const list = logs.length ? logs.map(() => 0) : sizes.length ? sizes : [1_000_000, 10_000_000, 50_000_000];
for (let k = 0; k < list.length; k++) {
  const text = await tieringOutput(list[k]!, logs[k]);
  if (text === null) {
    console.error(`tiering bench at ${list[k]} rows failed; sizes after it are skipped`);
    break;
  }
  const rows = logs[k] ? num(text, /loaded (\d+) rows/)! : list[k]!;
  // bench/tiering.ts prints each comparison as "<label> vs all hot: median A ms vs B ms = Rx; CPU C vs D ms = Sx",
  // the archived (or cold) query first, its all-hot (or warm) twin second, run alternately in the same process.
  const pair = (label: string) => {
    const m = new RegExp(`${label.replace(/[()%]/g, (c) => `\\${c}`)}[^:]*: median (\\d+) ms vs (\\d+) ms = [\\d.]+x; CPU (\\d+) vs (\\d+) ms`).exec(text);
    return m ? m.slice(1, 5).map(Number) : [null, null, null, null];
  };
  const [tieredMs, hotMs, tieredCpuMs, hotCpuMs] = pair('revenue per day over a year, 90% archived');
  const [tieredLast45Ms, hotLast45Ms] = pair('revenue per day, last 45 days, 90% archived');
  const [coldReadMs, warmReadMs] = pair('100 days read from cold (cached) files');
  const [tieredUpdatedMs, hotUpdatedMs] = pair('revenue per day over a year, 1% of the archived rows updated (deletes inline)');
  const [tieredVectorsMs, hotVectorsMs] = pair('revenue per day over a year, 1% updated (deletion vectors)');
  out.push({
    rows,
    loadS: num(text, /loaded \d+ rows.* in ([\d.]+) s/) ?? -1,
    hotMs: hotMs!,
    tieredMs: tieredMs!,
    hotCpuMs: hotCpuMs!,
    tieredCpuMs: tieredCpuMs!,
    hotLast45Ms: hotLast45Ms!,
    tieredLast45Ms: tieredLast45Ms!,
    coldReadMs: coldReadMs!,
    warmReadMs: warmReadMs!,
    coldRefillMs: num(text, /cold cache refill from s3rver before the first query: (\d+) ms/)!,
    tieredUpdatedMs: tieredUpdatedMs!,
    hotUpdatedMs: hotUpdatedMs!,
    tieredVectorsMs: tieredVectorsMs!,
    hotVectorsMs: hotVectorsMs!,
    archiveToWarmRowsPerS: num(text, /hot -> warm: .* = (\d+) rows\/s/)!,
    archiveToColdRowsPerS: num(text, /warm -> cold .* = (\d+) rows\/s/)!,
    // What bench/tiering.ts printed (the per-run times and the CPU ratios are in it).
    output: text.split('\n').filter((l) => /^(loaded|archive pass|revenue|Parquet|cold cache|100 days|applied|pass after|wall ratios|CPU ratios)/.test(l)).join('\n'),
  });
  const missing = Object.entries(out.at(-1)!).filter(([, v]) => v === null).map(([key]) => key);
  if (missing.length) console.error(`${rows} rows: not found in bench/tiering.ts's output: ${missing.join(', ')} (its format changed?)`);
}
const commit = Bun.spawnSync(['git', 'rev-parse', '--short', 'HEAD']).stdout.toString().trim();
mkdirSync(join(import.meta.dir, 'results'), { recursive: true });
const file = join(import.meta.dir, 'results', `query-cost-${Date.now()}.json`);
writeFileSync(file, `${JSON.stringify({ label: 'query-cost', commit, codeCommit: code, runs: RUNS, loadAvgAtStart: loadAtStart, loadAvg: logs.length ? null : loadavg()[0], ...(logs.length ? { fromLogs: logs } : {}), at: new Date().toISOString(), query: 'revenue per day over a year (bench/tiering.ts REVENUE)', sizes: out }, null, 1)}\n`);
console.log(`\nrows        hot ms   tiered ms   (90% archived: warm Parquet + cold s3rver via cache)`);
for (const s of out) console.log(`${String(s.rows).padEnd(11)} ${String(s.hotMs).padStart(6)}   ${String(s.tieredMs).padStart(9)}`);
console.log(`json: ${file}`);
