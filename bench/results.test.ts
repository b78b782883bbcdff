// The medians docs/SCALING.md quotes: per label the newest runs, numbers by median, alerts counted per run.
import { expect, test } from 'bun:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { concurrencyCells, loadRuns, median, medianOf, range } from './results.ts';

test('median of odd and even counts', () => {
  expect(median([3, 1, 2])).toBe(2);
  expect(median([4, 1, 3, 2])).toBe(2.5);
});

test('medianOf: newest 3 runs of a label, field by field; alerts with the runs they fired in', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ducktail-results-'));
  try {
    const run = (i: number, rate: number, p99: number, alerts: Record<string, number>) =>
      writeFileSync(
        join(dir, `x-${i}.json`),
        JSON.stringify({ label: 'x', at: `2026-11-25T10:0${i}:00Z`, commit: `c${i}`, endToEndRowsPerS: rate, latencyMs: { p50: 10 * i, p99 }, alertsFirstFiredS: alerts, samples: [{ t: i }] }),
      );
    run(1, 9999, 9999, { slow_query: 1 }); // oldest: left out of a median of 3
    run(2, 100, 50, { consumer_lag: 4 });
    run(3, 300, 70, {});
    run(4, 200, 60, { consumer_lag: 6 });
    writeFileSync(join(dir, 'other.json'), JSON.stringify({ label: 'y', at: '2026-11-25T10:00:00Z', sizes: [] }));
    const runs = loadRuns(dir);
    expect(runs.get('x')!.map((r) => r.commit)).toEqual(['c4', 'c3', 'c2', 'c1']); // newest first
    const m = medianOf(runs.get('x')!, 3);
    expect(m.endToEndRowsPerS).toBe(200);
    expect(m.latencyMs).toEqual({ p50: 30, p99: 60 });
    expect(m.alerts).toEqual([{ name: 'consumer_lag', runs: 2, medianS: 5 }]);
    expect(m.samples).toEqual([{ t: 4 }]); // from the run whose rows/s is the median
    expect(m.commits).toEqual(['c4', 'c3', 'c2']);
    expect(range(m, (r) => r.endToEndRowsPerS)).toEqual([100, 300]);
    expect(medianOf(runs.get('y')!, 3).of).toHaveLength(1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('medianOf: runs from more than a day before the newest (older code) are left out', () => {
  const run = (at: string, rate: number) => ({ label: 'x', at, endToEndRowsPerS: rate });
  const runs = [run('2026-12-06T21:30:00Z', 100), run('2026-12-06T10:00:00Z', 120), run('2026-11-25T10:00:00Z', 9999)];
  const m = medianOf(runs, 3);
  expect(m.of).toHaveLength(2);
  expect(m.endToEndRowsPerS).toBe(110);
  expect(medianOf(runs.slice(2), 3).endToEndRowsPerS).toBe(9999);
});

test('a series: the median is over the newest series only; within noise = medians apart by no more than the larger spread', async () => {
  const { spreadOf, withinNoise } = await import('./results.ts');
  const run = (at: string, rate: number, series?: string) => ({ label: 'x', at, endToEndRowsPerS: rate, ...(series ? { series } : {}) });
  const runs = [run('2026-12-07T01:00:00Z', 110, 's2'), run('2026-12-07T00:50:00Z', 90, 's2'), run('2026-12-06T22:00:00Z', 100), run('2026-12-06T21:50:00Z', 80), run('2026-12-06T21:40:00Z', 120)];
  const now = medianOf(runs, 3);
  expect(now.of).toHaveLength(2); // the series only, not the earlier runs within the day
  expect(now.endToEndRowsPerS).toBe(100);
  const before = medianOf(runs.slice(2), 3);
  expect(before.endToEndRowsPerS).toBe(100);
  const pick = (r: Record<string, number>) => r.endToEndRowsPerS;
  expect(spreadOf(before, pick)).toBeCloseTo(0.4); // (120 - 80) / 100
  expect(spreadOf(now, pick)).toBeCloseTo(0.2);
  expect(withinNoise(before, now, pick)).toEqual({ diff: 0, band: 0.4, within: true });
  const far = medianOf([run('2026-12-07T01:00:00Z', 150, 's3'), run('2026-12-07T00:59:00Z', 160, 's3')], 3);
  expect(withinNoise(before, far, pick)!.within).toBe(false); // +55% against ±40%
  expect(withinNoise(medianOf([run('2026-12-06T21:00:00Z', 100)], 3), medianOf([run('2026-12-07T21:00:00Z', 100)], 3), pick)).toBeNull(); // single runs: no band
});

test('concurrencyCells: each endpoint and client count is the median over the runs (not the newest run alone), with its range and the queries run', () => {
  const cell = (p50: number, requests: number, queries?: number) => ({ endpoint: 'GET x', clients: 1, requests, perS: requests / 8, p50, p99: p50 * 2, errors: 0, ingestPerS: 1000, ...(queries === undefined ? {} : { queries, queryP50: 100, positionMovesPerS: 10 }) });
  const runs = [
    { label: 'analytics-concurrency', at: '2026-12-07T03:00:00Z', seconds: 8, results: [cell(0.1, 400, 80)] },
    { label: 'analytics-concurrency', at: '2026-12-07T02:50:00Z', seconds: 8, results: [cell(110, 72, 72)] },
    { label: 'analytics-concurrency', at: '2026-12-07T02:40:00Z', seconds: 8, results: [cell(120, 64)] }, // before the queries were counted
  ];
  const m = medianOf(runs, 3);
  expect(m.results).toHaveLength(1); // merge keeps the newest run's array: the cells are what the table shows
  const [c] = concurrencyCells(m);
  expect(c).toMatchObject({ endpoint: 'GET x', clients: 1, runs: 3, p50: 110, p50Range: [0.1, 120], p99: 220, perS: 9, errors: 0, queryP50: 100 });
  expect(c!.queriesPerS).toBe(9.5); // 80 and 72 queries in 8 s
  expect(c!.shared).toBeCloseTo(0.4, 5); // 80% and 0% of the answers shared
});
