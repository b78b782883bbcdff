// `npm run bench -- report [--write] [--runs N]`: the tables of docs/SCALING.md from bench/results/: per label,
// the median of its newest N runs (default 3, bench/results.ts), with the range where a figure is quoted.
// Prints them as Markdown; with --write replaces the text between <!-- bench:NAME --> and
// <!-- /bench:NAME --> in docs/SCALING.md, so the doc shows what the JSON holds.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { concurrencyCells, loadRuns, medianOf, range, RESULTS_DIR, type Run, SESSION_MS, spreadOf, withinNoise } from './results.ts';
import { formatResult, type SoakResult } from '../test/soak/soak.ts';
import { opsPerS } from './scale.ts';

const DOC = join(import.meta.dir, '../docs/SCALING.md');
const ri = process.argv.indexOf('--runs');
const N = ri >= 0 ? Number(process.argv[ri + 1]) : 3;
const all = loadRuns(RESULTS_DIR);
const med = new Map([...all].map(([label, runs]) => [label, medianOf(runs, N)]));

const n = (v: unknown): string => (typeof v === 'number' ? (v > 0 && v < 10 && !Number.isInteger(v) ? v.toPrecision(2) : (v >= 100 ? Math.round(v) : Math.round(v * 10) / 10).toLocaleString('en-US')) : String(v ?? '-'));
const k = (v: number) => (v >= 10_000 ? `${Math.round(v / 1000)}k` : n(Math.round(v)));
/** "median (min-max)" when more than one run, the figure alone otherwise. */
const spread = (r: Run, pick: (r: Run) => number | null | undefined) => {
  const v = pick(r);
  if (typeof v !== 'number') return '-';
  const g = range(r, pick);
  return r.of.length > 1 && g && g[0] !== g[1] ? `${n(Math.round(v))} (${k(g[0])}-${k(g[1])})` : n(Math.round(v));
};
const lat = (r: Run) => (r.latencyMs ? `${n(r.latencyMs.p50)} / ${n(r.latencyMs.p99)} / ${n(r.latencyMs.max)}` : '-');
/** p99 of the probes committed from 2 s into the run (without the workload's first seconds; runs since 2026-12-07). */
const steady = (r: Run) => (typeof r.latencyMs?.p99After2s === 'number' ? n(r.latencyMs.p99After2s) : '-');
const alerts = (r: Run) => (r.alerts as { name: string; runs: number; medianS: number }[]).map((a) => `${a.name} at ${a.medianS.toFixed(1)} s (${a.runs}/${r.of.length})`).join(', ') || 'none';
/** How many runs, the code they measured, and the day of the newest (rows of older sessions stay until measured again). */
const runsCol = (r: Run) => `${r.of.length}, ${r.commits.join(' ')}, ${String(r.of[0].at).slice(0, 10)}`;
/** The whole box's CPU during the runs (median, cores busy of 2) and the 1-minute load when they started. */
const box = (r: Run) =>
  typeof r.machineBusyCores === 'number'
    ? `${n(r.machineBusyCores)} / ${n(r.loadAvgAtStart)}${(r.of as Run[]).some((x) => typeof x.ioFullMsMax === 'number') ? ` / ${(r.of as Run[]).map((x) => (typeof x.ioFullMsMax === 'number' ? n(x.ioFullMsMax) : '-')).join(', ')}` : ''}`
    : '-';
const scale = (r: Run) => {
  const m = /-(\d+)x$/.exec(r.label);
  return m ? `${n(Number(m[1]))}x (${n(Number(m[1]) * 100)} orders/day = ${opsPerS(Number(m[1]) * 100).toPrecision(3)} ops/s)` : 'flat out';
};

function table(head: string[], rows: string[][]): string {
  return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

const order = (r: Run) => (r.bus === 'kafka' ? 1e12 : 0) + (/-(\d+)x$/.exec(r.label) ? Number(/-(\d+)x$/.exec(r.label)![1]) : 1e11);
const rates = [...med.values()].filter((r) => /^scale-/.test(r.label)).sort((a, b) => order(a) - order(b));
const limits = [...med.values()].filter((r) => /^limit-|^scale-inline-max$|^scale-kafka-max$/.test(r.label)).sort((a, b) => String(a.label).localeCompare(b.label));
const e2e = (r: Run) => r.endToEndRowsPerS;
const sections: Record<string, string> = {
  rates: table(
    ['run', 'bus', 'load', 'offered changes/s', 'end-to-end rows/s (min-max)', 'commit-to-queryable p50 / p99 / max ms', 'p99 from 2 s in, ms', 'CPU % of a core', 'RSS peak MB', 'DuckDB MB', 'alerts fired (in how many runs)', 'box busy cores / load at start / worst second of I/O stall, ms, per run', 'runs, commits, day'],
    rates.map((r) => [r.label, r.bus, scale(r), n(r.generator?.offeredChangesPerS), spread(r, e2e), lat(r), steady(r), n(r.ducktail?.cpuPctMean), n(r.ducktail?.rssPeakMB), n(Math.round(r.duckdbBytes / 1e5) / 10), alerts(r), box(r), runsCol(r)]),
  ),
  limits: table(
    ['run', 'config edit', 'offered changes/s', 'end-to-end rows/s (min-max)', 'catch-up rows/s from spawn (min-max) / best second', 'p50 / p99 / max ms', 'CPU %', 'RSS peak MB', 'max lag s / consumer lag', 'alerts fired', 'box busy cores / load at start / worst second of I/O stall, ms, per run', 'runs, commits, day'],
    limits.map((r) => [
      r.label,
      [...(r.set ?? []), r.instances > 1 ? `bus.instances=${r.instances}` : '', r.toast ? 'TOAST notes' : ''].filter(Boolean).join(', ') || '(defaults)',
      n(r.generator?.offeredChangesPerS),
      spread(r, e2e),
      r.catchUp ? `${spread(r, (x) => x.catchUpRowsPerS)} / ${n(r.catchUpPeakRowsPerS)}` : '-',
      lat(r),
      n(r.ducktail?.cpuPctMean),
      n(r.ducktail?.rssPeakMB),
      `${n(r.ducktail?.maxLagS)} / ${n(r.ducktail?.maxConsumerLag)}`,
      alerts(r),
      box(r),
      runsCol(r),
    ]),
  ),
  ceilings: table(
    ['run', 'ducktail', 'ceiling in the same run', 'ratio (median of the per-run ratios)'],
    [...med.values()].filter((r) => /^scale-.*max$|^limit-catch-up$/.test(r.label)).flatMap((r) => {
      const ratio = (pick: (x: Run) => number | null) => {
        const xs = (r.of as Run[]).map(pick).filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
        return xs.length ? [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!.toFixed(2) : '-';
      };
      const live = (x: Run) => (x.catchUp ? x.catchUpPeakRowsPerS : x.endToEndRowsPerS);
      return [
        ...(r.snapshotRowsPerS ? [[r.label, `initial copy ${n(r.snapshotRowsPerS)} rows/s (${n(r.seed)} rows, process start included)`, `COPY TO STDOUT ${n(r.copyToStdoutRowsPerS)} rows/s`, ratio((x) => x.snapshotRowsPerS / x.copyToStdoutRowsPerS)]] : []),
        ...(r.pgRecvlogicalRowsPerS ? [[r.label, r.catchUp ? `catch-up ${n(r.catchUpPeakRowsPerS)} rows/s (best second)` : `live ${n(r.endToEndRowsPerS)} rows/s`, `pg_recvlogical ${n(r.pgRecvlogicalRowsPerS)} rows/s (same WAL, afterwards)`, ratio((x) => live(x) / x.pgRecvlogicalRowsPerS)]] : []),
        ...(r.kcat ? [[r.label, `produced ${n(r.generator?.changes)} changes at ${n(r.endToEndRowsPerS)}/s end to end`, `kcat -P the same ${n(r.kcat.messages)} messages: ${n(r.kcat.producedPerS)} msg/s`, ratio((x) => x.endToEndRowsPerS / x.kcat?.producedPerS)]] : []),
      ];
    }),
  ),
};

// Query cost: per size, the newest measurement of it (sizes are run in separate invocations).
const qcRuns = all.get('query-cost') ?? [];
const bySize = new Map<number, Run>();
for (const r of qcRuns) for (const s of r.sizes) if (!bySize.has(s.rows)) bySize.set(s.rows, { ...s, commit: r.commit, codeCommit: r.codeCommit, at: r.at, loadAvgAtStart: r.loadAvgAtStart, runs: r.runs ?? 5, file: r.file });
const sizes = [...bySize.values()].sort((a, b) => a.rows - b.rows);
if (sizes.length) {
  const x = (a: number | undefined, b: number | undefined) => (a && b ? (a / b).toFixed(2) : '-');
  sections.querycost = table(
    ['rows', 'year, all hot ms', 'year, 90% archived ms (x hot; CPU x hot)', 'last 45 days, hot ms', 'last 45 days, archived ms (x hot)', '100 days from cold / warm ms', 'year, 1% of archived rows updated: deletes inline / deletion vectors ms (x hot)', 'archive pass hot -> warm rows/s', 'medians of', 'commit, when (UTC), load at start'],
    sizes.map((s) => [
      n(s.rows),
      n(s.hotMs),
      `${n(s.tieredMs)} (${x(s.tieredMs, s.hotMs)}${s.tieredCpuMs ? `; ${x(s.tieredCpuMs, s.hotCpuMs)}` : ''})`,
      n(s.hotLast45Ms),
      s.tieredLast45Ms ? `${n(s.tieredLast45Ms)} (${x(s.tieredLast45Ms, s.hotLast45Ms)})` : '-',
      `${n(s.coldReadMs)} / ${n(s.warmReadMs)}`,
      s.tieredVectorsMs ? `${n(s.tieredUpdatedMs)} (${x(s.tieredUpdatedMs, s.hotUpdatedMs)}) / ${n(s.tieredVectorsMs)} (${x(s.tieredVectorsMs, s.hotVectorsMs)})` : n(s.tieredUpdatedMs),
      n(s.archiveToWarmRowsPerS),
      `${s.runs} runs`,
      `${s.codeCommit ?? s.commit}, ${String(s.at).slice(0, 16).replace('T', ' ')}, ${typeof s.loadAvgAtStart === 'number' ? s.loadAvgAtStart.toFixed(1) : '-'}`,
    ]),
  );
}

// Analytics under concurrent clients (bench/api.ts with a list of client counts): per endpoint and client
// count the median over the runs (bench/results.ts concurrencyCells), the range beside it; the DuckDB queries
// the answers took (the rest were shared through the result cache) where the runs recorded them.
const conc = med.get('analytics-concurrency');
if (conc) {
  const mr = (v: number, g: [number, number] | null, many: boolean) => {
    const f = (x: number) => (x < 10 ? n(Math.round(x * 10) / 10) : n(Math.round(x)));
    return many && g && f(g[0]) !== f(g[1]) ? `${f(v)} (${f(g[0])}-${f(g[1])})` : f(v);
  };
  sections.concurrency = table(
    ['endpoint', 'clients', 'answer p50 ms (min-max)', 'answer p99 ms (min-max)', 'answers/s (min-max)', 'DuckDB queries run/s; their p50 ms (min-max)', 'answers shared (cache)', 'errors', 'changes applied/s meanwhile'],
    concurrencyCells(conc).map((c) => {
      const many = c.runs > 1;
      return [
        c.endpoint,
        String(c.clients),
        mr(c.p50, c.p50Range, many),
        mr(c.p99, c.p99Range, many),
        mr(c.perS, c.perSRange, many),
        c.queriesPerS === null ? '-' : `${n(Math.round(c.queriesPerS))}; ${mr(c.queryP50 ?? NaN, c.queryP50Range, many)}`,
        c.shared === null ? '-' : `${Math.floor(c.shared * 1000) / 10}%`, // floored: 100% only when every answer was shared
        String(c.errors),
        n(Math.round(c.ingestPerS)),
      ];
    }),
  );
  sections.concurrencyruns = `${conc.of.length} run${conc.of.length > 1 ? 's' : ''}${conc.series ? ` of the series \`${conc.series}\`` : ''}, code ${conc.commits.join(' ')}: ${(conc.of as Run[])
    .map((r) => `${String(r.at).slice(0, 16).replace('T', ' ')} UTC (finished; load at its start ${typeof r.loadAvgAtStart === 'number' ? r.loadAvgAtStart.toFixed(1) : '-'})`)
    .join(', ')}.`;
}

// The soak's long form: every run, newest first, as it printed its counts, with the command.
const soaks = all.get('soak-long') ?? [];
if (soaks.length) {
  sections.soak = soaks
    .map((r) => {
      const cmd = `bun bench/soak.ts ${(r.args as string[]).filter((a, i, xs) => a !== '--save' && a !== '--json' && xs[i - 1] !== '--json').join(' ')}`;
      const when = `${String(r.at).slice(0, 16).replace('T', ' ')} UTC, commit ${r.commit}${r.note ? ` (${r.note})` : ''}`;
      return `${when}:\n\n\`\`\`\n$ ${cmd}\n${formatResult(r as SoakResult).trimEnd()}\n  soak process:         ${r.ownUncaught} uncaught errors in its own PostgreSQL client\n\`\`\``;
    })
    .join('\n\n');
}

// Rows measured again in a later session: the earlier session's median next to the newest, so the doc says
// how far a table moved and whether that is within noise.
const again = [...all].flatMap(([label, runs]) => {
  if (!/^(scale-|limit-)/.test(label)) return [];
  const now = medianOf(runs, N);
  const before = runs.filter((r) => !now.of.includes(r) && Date.parse(String(r.at)) < Date.parse(String(now.of.at(-1)!.at)));
  return before.length ? [[now, medianOf(before, N)] as const] : [];
});
if (again.length) {
  const main = (r: Run) => (r.catchUp ? r.catchUpRowsPerS : r.endToEndRowsPerS);
  const what = (r: Run) => (r.catchUp ? 'catch-up rows/s from spawn' : 'end-to-end rows/s');
  const was = (a: Run, b: Run, pick: (r: Run) => number | undefined) => {
    const x = pick(a);
    const y = pick(b);
    return typeof x === 'number' && typeof y === 'number' ? `${n(Math.round(y))} -> ${n(Math.round(x))}${y > 0 ? ` (${(x / y).toFixed(2)}x)` : ''}` : '-';
  };
  const pct = (x: number | null) => (x === null ? '-' : `${Math.round(x * 100)}%`);
  /** "within noise" or not: now vs before against the larger spread of the two (bench/results.ts, withinNoise). */
  const verdict = (before: Run, now: Run, pick: (r: Run) => number | null | undefined) => {
    const w = withinNoise(before, now, pick);
    const sp = `spread ${pct(spreadOf(before, pick))} / ${pct(spreadOf(now, pick))}`;
    if (!w) return `${sp}: no band (single runs)`;
    return `${sp}: ${w.diff >= 0 ? '+' : ''}${Math.round(w.diff * 100)}%, ${w.within ? '**within**' : 'outside'} ±${Math.round(w.band * 100)}%`;
  };
  const p99 = (r: Run) => r.latencyMs?.p99;
  sections.remeasured = table(
    ['run', 'figure', 'before -> now (now / before)', 'figure: spread of the runs before / now; now vs before, within noise?', 'p99: within noise?', 'commit-to-queryable p50 / p99 ms before -> now', 'CPU % before -> now', 'offered changes/s before -> now', 'pg_recvlogical on the same WAL, rows/s before -> now', 'ducktail / pg_recvlogical before -> now', 'before: runs, commits, day', 'now: runs, commits, day'],
    again
      .sort(([a], [b]) => String(a.label).localeCompare(b.label))
      .map(([now, before]) => [
        now.label,
        what(now),
        was(now, before, main),
        verdict(before, now, main),
        now.latencyMs && before.latencyMs ? verdict(before, now, p99) : '-',
        now.latencyMs && before.latencyMs ? `${n(before.latencyMs.p50)} / ${n(before.latencyMs.p99)} -> ${n(now.latencyMs.p50)} / ${n(now.latencyMs.p99)}` : '-',
        was(now, before, (r) => r.ducktail?.cpuPctMean),
        was(now, before, (r) => r.generator?.offeredChangesPerS),
        was(now, before, (r) => r.pgRecvlogicalRowsPerS),
        [before, now].map((r) => (r.pgRecvlogicalRowsPerS ? ((r.catchUp ? r.catchUpPeakRowsPerS : main(r)) / r.pgRecvlogicalRowsPerS).toFixed(2) : '-')).join(' -> '),
        runsCol(before),
        runsCol(now),
      ]),
  );
}

const cited = [...med.values()].filter((r) => /^(scale-|limit-|analytics-|soak-)/.test(r.label)).flatMap((r) => (r.of as Run[]).map((x) => x.file));
const citedBefore = again.flatMap(([, before]) => (before.of as Run[]).map((x) => x.file));
// The analytics runs before the newest series are compared in the text: every one stays cited.
const citedAnalytics = (all.get('analytics-concurrency') ?? []).map((x) => x.file);
// The query-cost measurement a size's newest was compared with (its day before) stays cited too.
const citedQc = qcRuns.filter((r) => sizes.some((z) => z.file !== r.file && Date.parse(z.at) - Date.parse(r.at) < SESSION_MS && (r.sizes as { rows: number }[]).some((x) => x.rows === z.rows))).map((r) => r.file);
const files = [...new Set([...cited, ...citedBefore, ...citedAnalytics, ...citedQc]), ...new Set(sizes.map((s) => s.file))].map((f) => `bench/results/${f}`).sort();
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
