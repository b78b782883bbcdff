import { describe, expect, test } from 'bun:test';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../errors.ts';
import { defaultConfig, loadConfig, parseConfig } from './index.ts';

const EXAMPLE = join(import.meta.dir, '../../config/ducktail.example.toml');

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
  throw new Error('expected a ConfigError');
}

function file(text: string): string {
  const p = join(mkdtempSync(join(tmpdir(), 'ducktail-cfg-')), 'ducktail.toml');
  writeFileSync(p, text);
  return p;
}

describe('config', () => {
  test('the example file parses to exactly the defaults', () => {
    expect(loadConfig({ path: EXAMPLE })).toEqual(defaultConfig());
  });

  test('the example file documents every key', () => {
    const text = readFileSync(EXAMPLE, 'utf8');
    for (const [section, keys] of Object.entries(defaultConfig())) {
      expect(text).toContain(`[${section}]`);
      for (const key of Object.keys(keys)) expect(text).toMatch(new RegExp(`^${key} = `, 'm'));
    }
  });

  test('every problem is reported with its key path, not just the first', () => {
    const problems = problemsOf(() =>
      parseConfig(
        {
          bus: { kind: 'kafka', partitons: 3, instance: 2, instances: 2 },
          warehouse: { batch_rows: 0, memory_limit: 'lots' },
          source: { url: 'mysql://x', tables: ['orders'] },
          api: { tokens: [{ token: 'short', scope: 'root' }] },
          tiering: { schedule: 'every day', cold_url: 'ftp://x' },
          extra: {},
        },
        'test.toml',
      ),
    );
    const joined = problems.join('\n');
    expect(joined).toContain('bus.partitons: unknown key');
    expect(joined).toContain('allowed keys in [bus]: kind, brokers');
    expect(joined).toContain('extra: unknown key');
    expect(joined).toContain('bus.brokers: bus.kind = "kafka" needs at least one broker');
    expect(joined).toContain('bus.instance: must be lower than bus.instances');
    expect(joined).toContain('warehouse.batch_rows: must be >= 1');
    expect(joined).toContain('warehouse.memory_limit: must be a size');
    expect(joined).toContain('source.url: must be a URL like postgres://');
    expect(joined).toContain('source.tables.0: each table must be written "schema.table"');
    expect(joined).toContain('api.tokens.0.token: tokens must be at least 16 characters');
    expect(joined).toContain('api.tokens.0.scope: must be "read" or "admin"');
    expect(joined).toContain('tiering.schedule: must be a cron expression');
    expect(joined).toContain('tiering.cold_url: must be s3://bucket/prefix or file:///folder');
    expect(problems.length).toBe(12);
  });

  test('wrong types name the key and the file', () => {
    const p = file('[warehouse]\nthreads = "two"\n');
    const problems = problemsOf(() => loadConfig({ path: p }));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain('warehouse.threads: must be a number');
    expect(problems[0]).toContain(p);
  });

  test('environment variables override the file, coerced to the key type', () => {
    const p = file('[bus]\npartitions = 3\n');
    const c = loadConfig({
      path: p,
      env: {
        DUCKTAIL_BUS_PARTITIONS: '12',
        DUCKTAIL_BUS_KIND: 'kafka',
        DUCKTAIL_BUS_BROKERS: 'a:9092, b:9092',
        DUCKTAIL_BUS_TOPIC_PREFIX: 'shop',
        DUCKTAIL_SOURCE_ENABLED: 'false',
        DUCKTAIL_SOURCE_TABLES: '["public.orders"]',
        DUCKTAIL_API_TOKENS: '[{"token":"0123456789abcdef","scope":"read"}]',
        DUCKTAIL_CONFIG: 'ignored.toml',
        PATH: '/usr/bin',
      },
    });
    expect(c.bus).toMatchObject({ kind: 'kafka', brokers: ['a:9092', 'b:9092'], topic_prefix: 'shop', partitions: 12, instance: 0, instances: 1 });
    expect(c.source.enabled).toBe(false);
    expect(c.source.tables).toEqual(['public.orders']);
    expect(c.api.tokens).toEqual([{ token: '0123456789abcdef', scope: 'read' }]);
  });

  test('an environment variable that names no key is an error', () => {
    const problems = problemsOf(() => loadConfig({ env: { DUCKTAIL_BUS_PARTITONS: '3', DUCKTAIL_NOPE: 'x' } }));
    expect(problems.join('\n')).toContain('DUCKTAIL_BUS_PARTITONS: names no config key');
    expect(problems.join('\n')).toContain('DUCKTAIL_NOPE: names no config key');
  });

  test('a TOML syntax error names the file; a missing file says how to create it', () => {
    const p = file('[source\nurl = 1\n');
    expect(problemsOf(() => loadConfig({ path: p }))[0]).toContain(`${p}: not valid TOML`);
    expect(problemsOf(() => loadConfig({ path: '/nonexistent/ducktail.toml' }))[0]).toContain(
      'cp config/ducktail.example.toml /nonexistent/ducktail.toml',
    );
    expect(loadConfig({ path: '/nonexistent/ducktail.toml', allowMissingFile: true })).toEqual(defaultConfig());
  });
});
