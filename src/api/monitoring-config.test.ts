import { describe, expect, test } from 'bun:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createMetrics } from '../metrics/index.ts';
import { instrumentSink, registerPipelineMetrics, registerTierMetrics } from '../pipeline-metrics.ts';
import { createQueryEngine } from '../warehouse/query.ts';
import { createAlerts, createApi } from './index.ts';

// config/prometheus-alerts.yml and config/grafana-dashboard.json name only families ducktail exports.
const CONFIG = join(import.meta.dir, '../../config');
const RULES = join(CONFIG, 'prometheus-alerts.yml');
const DASHBOARD = join(CONFIG, 'grafana-dashboard.json');

async function exportedFamilies(): Promise<Set<string>> {
  const metrics = createMetrics();
  registerPipelineMetrics(metrics, { source: () => null, dbPath: '/nonexistent' });
  instrumentSink(metrics, { apply: async () => {} });
  const alerts = createAlerts(
    { replication_lag_s: 30, consumer_lag_messages: 1000, batch_apply_s: 5, query_s: 2 },
    { replicationLagSeconds: () => 0, consumerLagMessages: () => null, lastBatchApply: () => null },
    metrics,
  );
  const instance = await DuckDBInstance.create(':memory:');
  registerTierMetrics(metrics, instance);
  createApi({ query: createQueryEngine({ instance }), tables: async () => [], readiness: () => ({}), version: 't', metrics, alerts });
  const families = await metrics.registry.getMetricsAsJSON();
  instance.closeSync();
  const names = new Set<string>();
  for (const m of families) {
    names.add(m.name);
    if (String(m.type) === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(m.name + s);
  }
  return names;
}

const referenced = (text: string) => new Set(text.match(/ducktail_[a-z_]+/g));

describe('monitoring config', () => {
  test('the alert rules parse (promtool) and use exported families only', async () => {
    const text = readFileSync(RULES, 'utf8');
    const promtool = spawnSync('promtool', ['check', 'rules', RULES]);
    if (promtool.error) {
      expect(process.env.CI, 'CI installs promtool (scripts/ci-install.sh)').toBeUndefined();
      const doc = Bun.YAML.parse(text) as { groups: { name: string; rules: { alert: string; expr: string; for?: string }[] }[] };
      for (const r of doc.groups.flatMap((g) => g.rules)) {
        expect(r.alert).toMatch(/^[A-Za-z][A-Za-z0-9]*$/);
        expect(typeof r.expr).toBe('string');
      }
    } else {
      expect(promtool.status, promtool.stdout.toString() + promtool.stderr.toString()).toBe(0);
      expect(promtool.stdout.toString()).toContain('SUCCESS: 8 rules found');
    }
    const families = await exportedFamilies();
    const unknown = [...referenced(text)].filter((n) => !families.has(n));
    expect(unknown).toEqual([]);
    // The seed's thresholds are the rules' defaults.
    expect(text).toContain('ducktail_replication_lag_seconds > 30');
    expect(text).toContain('> 5\n');
    expect(text).toContain('> 2\n');
  });

  test('the Grafana dashboard is a valid dashboard whose panels query exported families', async () => {
    const d = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as {
      title: string;
      uid: string;
      schemaVersion: number;
      panels: { id: number; type: string; title: string; gridPos: { x: number; y: number; w: number; h: number }; targets: { refId: string; expr: string }[] }[];
    };
    expect(d.title).toBe('ducktail');
    expect(d.schemaVersion).toBeGreaterThanOrEqual(36);
    const ids = new Set(d.panels.map((p) => p.id));
    expect(ids.size).toBe(d.panels.length);
    const families = await exportedFamilies();
    for (const p of d.panels) {
      expect(['timeseries', 'stat', 'state-timeline', 'table']).toContain(p.type);
      expect(p.gridPos.x + p.gridPos.w).toBeLessThanOrEqual(24);
      expect(p.targets.length).toBeGreaterThan(0);
      for (const t of p.targets) {
        const unknown = [...referenced(t.expr)].filter((n) => !families.has(n));
        expect(unknown, `${p.title}: ${t.expr}`).toEqual([]);
      }
    }
    const all = d.panels.flatMap((p) => p.targets.map((t) => t.expr)).join(' ');
    for (const f of ['ducktail_replication_lag_seconds', 'ducktail_commit_to_queryable_seconds_bucket', 'ducktail_api_request_duration_seconds_bucket']) {
      expect(all).toContain(f);
    }
  });
});
