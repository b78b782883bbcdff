import { describe, expect, test } from 'bun:test';
import { CopyTextParser, unescapeCopyField } from './copy-text.ts';

const enc = new TextEncoder();

describe('COPY text format', () => {
  test('splits rows and columns, \\N is NULL, escapes decode', () => {
    const p = new CopyTextParser(3);
    const rows = p.push(enc.encode('1\tplain\t\\N\n2\ttab\\there\\nnew\\\\line\t\n'));
    expect(rows).toEqual([
      ['1', 'plain', null],
      ['2', 'tab\there\nnew\\line', ''],
    ]);
    p.end();
  });

  test('a row split across chunks, multi-byte UTF-8 cut in the middle', () => {
    const p = new CopyTextParser(2);
    const bytes = enc.encode('7\tü€ ok\n8\tlast\n');
    expect(p.push(bytes.subarray(0, 4))).toEqual([]);
    expect(p.push(bytes.subarray(4, 12))).toEqual([['7', 'ü€ ok']]);
    expect(p.push(bytes.subarray(12))).toEqual([['8', 'last']]);
    p.end();
  });

  test('a wrong column count and a truncated stream are errors', () => {
    expect(() => new CopyTextParser(2).push(enc.encode('1\t2\t3\n'))).toThrow('expected 2');
    const p = new CopyTextParser(1);
    p.push(enc.encode('1\n2'));
    expect(() => p.end()).toThrow('inside a row');
  });

  test('octal and hex escapes', () => {
    expect(unescapeCopyField('a\\101\\x42\\v')).toBe('aAB\v');
  });
});
