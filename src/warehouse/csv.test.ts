import { expect, test } from 'bun:test';
import { UNCHANGED } from '../change/index.ts';
import { CsvBuffer } from './csv.ts';

const line = (values: Parameters<CsvBuffer['field']>[0][]) => {
  const csv = new CsvBuffer();
  values.forEach((v, i) => {
    if (i > 0) csv.tab();
    csv.field(v);
  });
  csv.newline();
  return csv.bytes().toString('utf8');
};

test('text as is, NULL as \\N, what could be misread quoted', () => {
  expect(line(['1', null, 'plain text', 'ünï €'])).toBe('1\t\\N\tplain text\tünï €\n');
  expect(line(['', '\\N'])).toBe('""\t"\\N"\n');
  expect(line(['a\tb', 'two\nlines', 'cr\r', 'say "hi"'])).toBe('"a\tb"\t"two\nlines"\t"cr\r"\t"say ""hi"""\n');
});

test('binary values as bytea hex; unfilled TOAST refused', () => {
  expect(line([new Uint8Array([0, 255, 16])])).toBe('\\x00ff10\n');
  expect(() => line([UNCHANGED])).toThrow('unchanged TOAST');
});

test('grows past its first buffer and reuses it after reset', () => {
  const csv = new CsvBuffer();
  const big = 'x'.repeat(300_000);
  for (let i = 0; i < 5; i++) csv.field(big);
  expect(csv.bytes().length).toBe(1_500_000);
  csv.reset();
  csv.bigint(42n);
  csv.tab();
  csv.bigint(42n);
  expect(csv.bytes().toString()).toBe('42\t42');
});
