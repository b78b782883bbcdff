// The bench JSON in bench/results/, read the way docs/SCALING.md quotes it: per label, the newest `n`
// runs (default 3) and their median, field by field. bench/report.ts (tables) and bench/plot.ts (PNGs)
// both read through here, so a table and its plot always show the same runs.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

// biome-ignore lint: bench JSON is read loosely
export type Run = Record<string, any>;

export const RESULTS_DIR = join(import.meta.dir, 'results');

/** Every run in `dir`, by label, newest first; `file` is the JSON's name. */
export function loadRuns(dir = RESULTS_DIR): Map<string, Run[]> {
  const by = new Map<string, Run[]>();
  for (const f of readdirSync(dir).filter((f) => f.endsWith('.json'))) {
    const r = JSON.parse(readFileSync(join(dir, f), 'utf8')) as Run;
    if (typeof r.label !== 'string') continue;
    by.set(r.label, [...(by.get(r.label) ?? []), { ...r, file: f }]);
  }
  for (const runs of by.values()) runs.sort((a, b) => String(b.at).localeCompare(String(a.at)));
  return by;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Numbers replaced by their median over `runs` (where present), objects merged the same way; arrays and strings from the first (newest) run. */
function merge(runs: Run[]): Run {
  const first = runs[0]!;
  const out: Run = {};
  for (const [k, v] of Object.entries(first)) {
    const vs = runs.map((r) => r?.[k]);
    if (typeof v === 'number') out[k] = median(vs.filter((x): x is number => typeof x === 'number'));
    else if (v && typeof v === 'object' && !Array.isArray(v)) out[k] = merge(vs.filter((x) => x && typeof x === 'object'));
    else out[k] = v;
  }
  return out;
}

/** Runs of one label this long before its newest are another session's code: not mixed into its median. */
export const SESSION_MS = 24 * 3600_000;

/**
 * The runs a label's median is taken of (`runs` newest first): when the newest run belongs to a series
 * (`--series NAME`), its newest `n` runs of that series; otherwise its newest `n` runs without a series, all
 * from within SESSION_MS of the newest.
 */
export function newestSession(runs: Run[], n = 3): Run[] {
  const series = runs[0]?.series;
  if (series) return runs.filter((r) => r.series === series).slice(0, n);
  const newest = Date.parse(String(runs[0]?.at));
  return runs.filter((r) => !r.series && !(newest - Date.parse(String(r.at)) > SESSION_MS)).slice(0, n);
}

/** (max - min) / median of `pick` over the runs a median was taken of; null under 2 runs. The noise of one row. */
export function spreadOf(m: Run, pick: (r: Run) => number | null | undefined): number | null {
  const xs = (m.of as Run[]).map(pick).filter((x): x is number => typeof x === 'number');
  if (xs.length < 2) return null;
  const mid = median(xs);
  return mid > 0 ? (Math.max(...xs) - Math.min(...xs)) / mid : null;
}

/**
 * Whether a second measurement of a row reproduces the first "within noise": the two medians differ by no
 * more than the larger spread of the two (spreadOf: the (max - min) / median of each one's runs). A row
 * measured once has no spread of its own; the other's stands for both. Null when neither has 2 runs.
 */
export function withinNoise(before: Run, now: Run, pick: (r: Run) => number | null | undefined): { diff: number; band: number; within: boolean } | null {
  const a = pick(before);
  const b = pick(now);
  if (typeof a !== 'number' || typeof b !== 'number' || a <= 0) return null;
  const spreads = [spreadOf(before, pick), spreadOf(now, pick)].filter((x): x is number => x !== null);
  if (spreads.length === 0) return null;
  const band = Math.max(...spreads);
  const diff = b / a - 1;
  return { diff, band, within: Math.abs(diff) <= band };
}

/**
 * The median of the newest `n` runs of one label, from the newest run's session (a run from days before, of
 * older code, is not averaged with today's: see `newestSession`). `of` = the runs it was taken over; `range(pick)` =
 * [min, max] of a figure over them; `alerts`: each alert that fired in any run, in how many, and the
 * median second it first fired; `samples` (the timeline) from the run whose end-to-end rows/s is the median.
 */
export function medianOf(runs: Run[], n = 3): Run {
  const of = newestSession(runs, n);
  const out = merge(of);
  const byRate = [...of].sort((a, b) => (a.endToEndRowsPerS ?? 0) - (b.endToEndRowsPerS ?? 0));
  out.samples = byRate[Math.floor(byRate.length / 2)]?.samples ?? of[0]!.samples;
  const names = new Set(of.flatMap((r) => Object.keys(r.alertsFirstFiredS ?? {})));
  out.alerts = [...names].sort().map((name) => {
    const at = of.map((r) => r.alertsFirstFiredS?.[name]).filter((x): x is number => typeof x === 'number');
    return { name, runs: at.length, medianS: median(at) };
  });
  out.of = of;
  out.commits = [...new Set(of.map((r) => r.codeCommit ?? r.commit))];
  return out;
}

/** [min, max] of `pick` over the runs a median was taken of (nulls skipped). */
export function range(m: Run, pick: (r: Run) => number | null | undefined): [number, number] | null {
  const xs = (m.of as Run[]).map(pick).filter((x): x is number => typeof x === 'number');
  return xs.length ? [Math.min(...xs), Math.max(...xs)] : null;
}

/** Per label, the median of its newest `n` runs. */
export function medians(dir = RESULTS_DIR, n = 3): Map<string, Run> {
  return new Map([...loadRuns(dir)].map(([label, runs]) => [label, medianOf(runs, n)]));
}

/**
 * The newest commit that changed what runs (src/, patches/, package-lock.json): the code a run measured, a
 * commit of main even when HEAD is a bench-only commit of a branch that is rebased later. Taken at the start.
 */
export function codeCommit(): string {
  const r = Bun.spawnSync(['git', 'log', '-1', '--format=%h', '--', 'src', 'patches', 'package-lock.json'], { cwd: join(import.meta.dir, '..') });
  return r.stdout.toString().trim();
}

/** One endpoint at one client count of the analytics concurrency bench (bench/api.ts), over the runs of a median. */
export interface ConcurrencyCell {
  endpoint: string;
  clients: number;
  runs: number;
  /** Median and [min, max] over the runs of: answers' p50 and p99 (ms), answers/s. */
  p50: number;
  p50Range: [number, number];
  p99: number;
  p99Range: [number, number];
  perS: number;
  perSRange: [number, number];
  /** DuckDB queries run per second and their median time (runs that recorded them; null before 2026-12-07 02:30). */
  queriesPerS: number | null;
  queryP50: number | null;
  queryP50Range: [number, number] | null;
  /** Share of the answers served by another request's query (the analytics result cache). */
  shared: number | null;
  positionMovesPerS: number | null;
  ingestPerS: number;
  errors: number;
}

/**
 * The analytics concurrency table from a median's runs (`medianOf`): per endpoint and client count, every
 * figure's median over the runs (`merge` would keep only the newest run's `results` array), with its range.
 */
export function concurrencyCells(m: Run): ConcurrencyCell[] {
  const of = (m.of as Run[] | undefined) ?? [m];
  type R = { endpoint: string; clients: number; requests: number; perS: number; p50: number; p99: number; errors: number; ingestPerS: number; queries?: number; queryP50?: number; positionMovesPerS?: number };
  const rows = of.flatMap((r) => (r.results as R[]).map((x) => ({ ...x, seconds: Number(r.seconds) })));
  const keys = [...new Map(rows.map((x) => [`${x.endpoint}\u0000${x.clients}`, x])).values()];
  const lo = (xs: number[]): [number, number] => [Math.min(...xs), Math.max(...xs)];
  return keys.map(({ endpoint, clients }) => {
    const xs = rows.filter((x) => x.endpoint === endpoint && x.clients === clients);
    const q = xs.filter((x) => typeof x.queries === 'number' && x.requests > 0);
    const qp = q.map((x) => x.queryP50!).filter((v) => Number.isFinite(v));
    return {
      endpoint,
      clients,
      runs: xs.length,
      p50: median(xs.map((x) => x.p50)),
      p50Range: lo(xs.map((x) => x.p50)),
      p99: median(xs.map((x) => x.p99)),
      p99Range: lo(xs.map((x) => x.p99)),
      perS: median(xs.map((x) => x.perS)),
      perSRange: lo(xs.map((x) => x.perS)),
      queriesPerS: q.length ? median(q.map((x) => (x.queries! / x.requests) * x.perS)) : null,
      queryP50: qp.length ? median(qp) : null,
      queryP50Range: qp.length ? lo(qp) : null,
      shared: q.length ? median(q.map((x) => 1 - Math.min(1, x.queries! / x.requests))) : null,
      positionMovesPerS: q.length ? median(q.map((x) => x.positionMovesPerS ?? 0)) : null,
      ingestPerS: median(xs.map((x) => x.ingestPerS)),
      errors: xs.reduce((s, x) => s + x.errors, 0),
    };
  });
}
