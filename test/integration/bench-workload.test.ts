// The workload harness (`npm run bench -- workload`) end to end, shortened: 3 s at 100 operations/s
// through the inline bus. It must see every change applied and every probe queryable, and write its JSON.
import { expect, test } from 'bun:test';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(import.meta.dir, '../..');

test('bench workload: applies every committed change, times every probe, writes its JSON', async () => {
  const proc = Bun.spawn([process.execPath, join(ROOT, 'bench/cli.ts'), 'workload', '--rate', '100', '--duration', '3', '--seed', '500', '--label', `test-harness-${process.pid}`], {
    cwd: ROOT,
    stdout: 'pipe',
    stderr: 'pipe',
  });
  const [out, err, code] = [await new Response(proc.stdout).text(), await new Response(proc.stderr).text(), await proc.exited];
  expect(code, err).toBe(0);
  const path = /json: (.+\.json)/.exec(out)?.[1];
  expect(path, out).toBeDefined();
  const r = JSON.parse(readFileSync(path!, 'utf8'));
  rmSync(path!);
  expect(r.generator.orders).toBeGreaterThan(100);
  expect(r.generator.updates).toBeGreaterThan(0);
  expect(r.latencyMs.lost).toBe(0);
  expect(r.latencyMs.probes).toBeGreaterThan(10);
  expect(r.drainS).toBeLessThan(30);
  expect(r.ducktail.rssPeakMB).toBeGreaterThan(10);
  expect(r.duckdbBytes).toBeGreaterThan(0);
  expect(r.snapshotRowsPerS).toBeGreaterThan(0);
  expect(out).toContain('end-to-end rows/s');
}, 120_000);
