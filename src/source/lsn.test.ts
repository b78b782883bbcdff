import { expect, test } from 'bun:test';
import { formatLsn, parseLsn } from './lsn.ts';

test('LSN text round-trips through bigint', () => {
  expect(parseLsn('16/B374D848')).toBe(0x16b374d848n);
  expect(formatLsn(0x16b374d848n)).toBe('16/B374D848');
  expect(parseLsn('0/0')).toBe(0n);
  expect(formatLsn(0n)).toBe('0/0');
  expect(formatLsn(parseLsn('FFFFFFFF/FFFFFFFF'))).toBe('FFFFFFFF/FFFFFFFF');
});

test('a malformed LSN is refused with the expected form', () => {
  expect(() => parseLsn('16-B374')).toThrow(/expected e.g. 16\/B374D848/);
});
