import type { ColumnSchema } from '../change/index.ts';

/**
 * A strict reader of the payload exactly as ducktail's encoder writes it (kafka-encode.ts), one regular
 * expression per layout: keys in the encoder's order with the layout's columns in attribute order, no
 * whitespace, row values that are JSON strings without escapes (in the form `fits` accepts for the
 * types it checks) or null, integers in plain digits. One
 * `exec` reads the row values and the source fields without building the objects `JSON.parse` would
 * (measured: ~0.4 µs against ~1.0 for the `orders` payload). Anything else does not match: another
 * key order, whitespace, an escape or a control character in a string, a number with a sign, fraction
 * or exponent, a missing or extra field or column, invalid JSON. The caller then decodes the value with
 * `JSON.parse` and valibot as before (events of other producers, poison messages). What matches is
 * valid JSON that `JSON.parse` reads to the same values and that the payload's valibot schema accepts.
 */

/** A JSON string's contents without escapes or control characters: the text between its quotes is its value. */
const STR = '[^"\\\\\\x00-\\x1f]*';
/**
 * A column's text: JSON string contents with JSON's escapes allowed (bytea's `\\x...` is one), in the
 * unrolled form that runs over plain text without alternation; its capture is unescaped when it holds a backslash.
 */
const TEXT = `${STR}(?:\\\\(?:["\\\\/bfnrt]|u[0-9a-fA-F]{4})${STR})*`;
/** A non-negative JSON integer (no sign, fraction, exponent or leading zero). */
const INT = '(?:0|[1-9][0-9]*)';
const NUMBER = '-?(?:[0-9]+\\.?[0-9]*|\\.[0-9]+)(?:[eE][+-]?[0-9]+)?|NaN|-?Infinity';
const DATE = '[0-9]{4,}-[0-9]{2}-[0-9]{2}';
const TIME = '[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\\.[0-9]+)?';
const HEX = '[0-9a-fA-F]';
/**
 * Values of the types `fits` (kafka-decode.ts) checks, as a subset of what it accepts: a value in this
 * form fits its column without another check; one outside it (an integer with as many digits as the
 * type's bound, `nan` in lower case, ...) does not match and goes the slow way, where `fits` decides.
 */
const FORMATS: Record<number, string> = {
  16: 't|f|true|false',
  21: '-?[0-9]{1,4}',
  23: '-?[0-9]{1,9}',
  20: '-?[0-9]{1,18}',
  700: NUMBER,
  701: NUMBER,
  1700: NUMBER,
  1082: `${DATE}(?: BC)?|-?infinity`,
  1114: `${DATE} ${TIME}(?: BC)?|-?infinity`,
  1184: `${DATE} ${TIME}[+-][0-9]{2}(?::[0-9]{2}){0,2}(?: BC)?|-?infinity`,
  2950: `${HEX}{8}-${HEX}{4}-${HEX}{4}-${HEX}{4}-${HEX}{12}`,
};
/** Layouts with more columns are left to JSON.parse (the expression grows with the columns). */
const MAX_COLUMNS = 256;

/** Capture groups of a payload match, for a layout of `n` columns. */
export interface Groups {
  /** Defined when `before` is null; before's values are groups beforeAt .. beforeAt + n - 1 (undefined = JSON null). */
  beforeNull: number;
  beforeAt: number;
  afterNull: number;
  afterAt: number;
  tsUs: number;
  schema: number;
  table: number;
  /** "null" or digits. */
  txId: number;
  lsn: number;
  seq: number;
  posLsn: number;
  posOrd: number;
  /** The unchanged list's inside (`"a","b"`), '' when empty. */
  unchanged: number;
  /** Undefined when the source block has no `layout`. */
  layout: number;
  op: number;
}

export interface PayloadPattern {
  re: RegExp;
  groups: Groups;
  /** Per column: its values may hold escapes (a column of a type without a format of its own). */
  escapes: boolean[];
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');

/** The pattern of payloads of `columns` as the encoder writes them; undefined when two columns share a name or there are too many. */
export function payloadPattern(columns: readonly ColumnSchema[]): PayloadPattern | undefined {
  const n = columns.length;
  if (n === 0 || n > MAX_COLUMNS || new Set(columns.map((c) => c.name)).size !== n) return undefined;
  const value = (c: ColumnSchema) => `(?:null|"(${FORMATS[c.typeOid] === undefined ? TEXT : `(?:${FORMATS[c.typeOid]})`})")`;
  const record = `(?:(null)|\\{${columns.map((c, i) => `${i > 0 ? ',' : ''}${escapeRe(JSON.stringify(c.name))}:${value(c)}`).join('')}\\})`;
  const source =
    `"source":\\{"version":"${STR}","connector":"${STR}","name":"${STR}","ts_ms":${INT},"ts_us":(${INT}),` +
    `"snapshot":"${STR}","db":"${STR}","schema":"(${STR})","table":"(${STR})","txId":(null|${INT}),` +
    `"lsn":(${INT}),"seq":(${INT}),"pos_lsn":(${INT}),"pos_ord":(${INT}),` +
    `"unchanged":\\[((?:"${STR}"(?:,"${STR}")*)?)\\](?:,"layout":"(${STR})")?\\}`;
  const re = new RegExp(`^\\{"before":${record},"after":${record},${source},"op":"([rcudt])","ts_ms":${INT}\\}$`);
  const at = 2 * n + 3;
  return {
    re,
    escapes: columns.map((c) => FORMATS[c.typeOid] === undefined),
    groups: {
      beforeNull: 1, beforeAt: 2, afterNull: n + 2, afterAt: n + 3,
      tsUs: at, schema: at + 1, table: at + 2, txId: at + 3, lsn: at + 4, seq: at + 5, posLsn: at + 6, posOrd: at + 7,
      unchanged: at + 8, layout: at + 9, op: at + 10,
    },
  };
}

const LAYOUT_AT = ',"layout":"';

/** The layout id a payload-only event names, found from its end (a guess: the pattern's match confirms it). */
export function layoutIdIn(text: string): string | undefined {
  const at = text.lastIndexOf(LAYOUT_AT);
  if (at < 0) return undefined;
  const from = at + LAYOUT_AT.length;
  const to = text.indexOf('"', from);
  return to < 0 ? undefined : text.slice(from, to);
}
