import { expect, test } from 'bun:test';
import { createLogger } from './log.ts';

test('json format: one object per line with time, level, component, message and fields', () => {
  const lines: string[] = [];
  const log = createLogger('info', 'ducktail', (l) => lines.push(l), 'json').child('source');
  log.debug('dropped');
  log.warn('slot lag high', { lagBytes: 123n, slot: 'ducktail' });
  log.info('plain');
  expect(lines.length).toBe(2);
  for (const l of lines) expect(l.endsWith('\n')).toBe(true);
  const first = JSON.parse(lines[0]!) as Record<string, unknown>;
  expect(first).toEqual({ time: first.time, level: 'warn', component: 'source', message: 'slot lag high', fields: { lagBytes: '123', slot: 'ducktail' } });
  expect(new Date(first.time as string).toISOString()).toBe(first.time as string);
  expect(JSON.parse(lines[1]!)).not.toHaveProperty('fields');
});

test('text format stays the default: readable line, fields as key=value', () => {
  const lines: string[] = [];
  const log = createLogger('debug', 'api', (l) => lines.push(l));
  log.info('listening', { url: 'http://127.0.0.1:8080', note: 'two words' });
  expect(lines[0]).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z info  api: listening url=http:\/\/127\.0\.0\.1:8080 note="two words"\n$/);
});
