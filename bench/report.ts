// `npm run bench -- report [--write]`: the tables of docs/SCALING.md from the newest bench JSON per label
// in bench/results/. Prints them as Markdown; with --write replaces the text between
// <!-- bench:NAME --> and <!-- /bench:NAME --> in docs/SCALING.md, so the doc shows what the JSON holds.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { opsPerS } from './scale.ts';

// biome-ignore lint: bench JSON is read loosely
type Run = Record<string, any>;
const DIR = join(import.meta.dir, 'results');
const DOC = join(import.meta.dir, '../docs/SCALING.md');
const newest = new Map<string, Run>();
for (const f of readdirSync(DIR).filter((f) => f.endsWith('.json')).sort()) {
  const r = JSON.parse(readFileSync(join(DIR, f), 'utf8')) as Run;
  if (!newest.has(r.label) || newest.get(r.label)!.at < r.at) newest.set(r.label, { ...r, file: f });
}
const n = (v: unknown) => (typeof v === 'number' ? (v > 0 && v < 10 && !Number.isInteger(v) ? v.toPrecision(2) : v.toLocaleString('en-US')) : (v ?? '-'));
const lat = (r: Run) => (r.latencyMs ? `${n(r.latencyMs.p50)} / ${n(r.latencyMs.p99)} / ${n(r.latencyMs.max)}` : '-');
const alerts = (r: Run) => Object.entries(r.alertsFirstFiredS ?? {}).map(([a, s]) => `${a} at ${Number(s).toFixed(1)} s`).join(', ') || 'none';
const scale = (r: Run) => {
  const m = /-(\d+)x$/.exec(r.label);
  return m ? `${n(Number(m[1]))}x (${n(Number(m[1]) * 100)} orders/day = ${opsPerS(Number(m[1]) * 100).toPrecision(3)} ops/s)` : 'flat out';
};

function table(head: string[], rows: string[][]): string {
  return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

const order = (r: Run) => (r.bus === 'kafka' ? 1e12 : 0) + (/-(\d+)x$/.exec(r.label) ? Number(/-(\d+)x$/.exec(r.label)![1]) : 1e11);
const rates = [...newest.values()].filter((r) => /^scale-/.test(r.label)).sort((a, b) => order(a) - order(b));
const limits = [...newest.values()].filter((r) => /^limit-|^scale-inline-max$|^scale-kafka-max$/.test(r.label));
const sections: Record<string, string> = {
  rates: table(
    ['run', 'bus', 'load', 'offered changes/s', 'end-to-end rows/s', 'commit-to-queryable p50 / p99 / max ms', 'CPU % of a core', 'RSS peak MB', 'DuckDB MB', 'alerts fired', 'commit'],
    rates.map((r) => [r.label, r.bus, scale(r), n(r.generator?.offeredChangesPerS), n(r.endToEndRowsPerS), lat(r), n(r.ducktail?.cpuPctMean), n(r.ducktail?.rssPeakMB), n(Math.round(r.duckdbBytes / 1e5) / 10), alerts(r), r.commit]),
  ),
  limits: table(
    ['run', 'config edit', 'offered changes/s', 'end-to-end rows/s', 'catch-up rows/s (from spawn / best second)', 'p50 / p99 / max ms', 'CPU %', 'RSS peak MB', 'max lag s / consumer lag', 'alerts fired'],
    limits.map((r) => [
      r.label,
      [...(r.set ?? []), r.instances > 1 ? `bus.instances=${r.instances}` : '', r.toast ? 'TOAST notes' : ''].filter(Boolean).join(', ') || '(defaults)',
      n(r.generator?.offeredChangesPerS),
      n(r.endToEndRowsPerS),
      r.catchUp ? `${n(r.catchUpRowsPerS)} / ${n(r.catchUpPeakRowsPerS)}` : '-',
      lat(r),
      n(r.ducktail?.cpuPctMean),
      n(r.ducktail?.rssPeakMB),
      `${n(r.ducktail?.maxLagS)} / ${n(r.ducktail?.maxConsumerLag)}`,
      alerts(r),
    ]),
  ),
  ceilings: table(
    ['run', 'ducktail', 'ceiling in the same run', 'ratio'],
    [...newest.values()].filter((r) => /^scale-.*max$|^limit-catch-up$/.test(r.label)).flatMap((r) => [
      ...(r.snapshotRowsPerS ? [[r.label, `initial copy ${n(r.snapshotRowsPerS)} rows/s (${n(r.seed)} rows, process start included)`, `COPY TO STDOUT ${n(r.copyToStdoutRowsPerS)} rows/s`, (r.snapshotRowsPerS / r.copyToStdoutRowsPerS).toFixed(2)]] : []),
      ...(r.pgRecvlogicalRowsPerS ? [[r.label, r.catchUp ? `catch-up ${n(r.catchUpPeakRowsPerS)} rows/s (best second)` : `live ${n(r.endToEndRowsPerS)} rows/s`, `pg_recvlogical ${n(r.pgRecvlogicalRowsPerS)} rows/s (same WAL, afterwards)`, ((r.catchUp ? r.catchUpPeakRowsPerS : r.endToEndRowsPerS) / r.pgRecvlogicalRowsPerS).toFixed(2)]] : []),
      ...(r.kcat ? [[r.label, `produced ${n(r.generator?.changes)} changes at ${n(r.endToEndRowsPerS)}/s end to end`, `kcat -P the same ${n(r.kcat.messages)} messages: ${n(r.kcat.producedPerS)} msg/s`, (r.endToEndRowsPerS / r.kcat.producedPerS).toFixed(2)]] : []),
    ]),
  ),
};
const qc = newest.get('query-cost');
if (qc) {
  sections.querycost = table(
    ['rows', 'all hot ms', '90% archived ms', 'archived / hot', 'archive pass hot -> warm rows/s', 'commit'],
    qc.sizes.map((s: Run) => [n(s.rows), n(s.hotMs), n(s.tieredMs), (s.tieredMs / s.hotMs).toFixed(2), n(s.archiveToWarmRowsPerS), qc.commit]),
  );
}
const files = [...newest.values()].filter((r) => /^(scale-|limit-|query-cost)/.test(r.label)).map((r) => `bench/results/${r.file}`).sort();
sections.files = files.map((f) => `- \`${f}\``).join('\n');

if (process.argv.includes('--write')) {
  let doc = readFileSync(DOC, 'utf8');
  for (const [name, text] of Object.entries(sections)) {
    const re = new RegExp(`<!-- bench:${name} -->[\\s\\S]*?<!-- /bench:${name} -->`);
    doc = doc.replace(re, () => `<!-- bench:${name} -->\n${text}\n<!-- /bench:${name} -->`);
  }
  writeFileSync(DOC, doc);
  console.log(`docs/SCALING.md: ${Object.keys(sections).join(', ')} written from ${files.length} files`);
} else {
  for (const [name, text] of Object.entries(sections)) console.log(`## ${name}\n\n${text}\n`);
}
