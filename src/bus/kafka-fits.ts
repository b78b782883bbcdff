/**
 * The poison check of row values: whether PostgreSQL's text form of a value fits its column's type, for the
 * common scalar types (others pass to DuckDB). `fits` decides (kafka-decode.ts's slow path, BAD_VALUE);
 * `plainForm` is the byte walker's shortcut for the commonest forms (kafka-walk.ts).
 */

export const INT_RANGE: Record<number, bigint> = { 21: 1n << 15n, 23: 1n << 31n, 20: 1n << 63n };
/** Digits every value of the type can have (32767, 2147483647, 9223372036854775807 have 5, 10 and 19). */
export const SAFE_DIGITS: Record<number, number> = { 21: 4, 23: 9, 20: 18 };
export const FORMATS: Record<number, RegExp> = {
  16: /^(t|f|true|false)$/,
  700: /^(-?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?|NaN|-?Infinity)$/i,
  701: /^(-?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?|NaN|-?Infinity)$/i,
  1700: /^(-?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?|NaN|-?Infinity)$/i,
  1082: /^(\d{4,}-\d{2}-\d{2}( BC)?|-?infinity)$/,
  1114: /^(\d{4,}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d+)?( BC)?|-?infinity)$/,
  1184: /^(\d{4,}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d+)?[+-]\d{2}(:\d{2}){0,2}( BC)?|-?infinity)$/,
  2950: /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i,
};

/** Whether PostgreSQL text `value` fits a column of type `oid` (checked for the common scalar types; others pass to DuckDB). */
export function fits(oid: number, value: string): boolean {
  const range = INT_RANGE[oid];
  if (range !== undefined) {
    if (!/^-?\d{1,19}$/.test(value)) return false;
    if (value.length <= SAFE_DIGITS[oid]!) return true; // fewer digits than the type's bound has: no BigInt needed
    const n = BigInt(value);
    return n >= -range && n < range;
  }
  return FORMATS[oid]?.test(value) ?? true;
}

const isDigit = (b: number | undefined): boolean => b !== undefined && b >= 0x30 && b <= 0x39;
/** Whether data[at, at + pattern.length) has a digit where `pattern` has 'd' and pattern's byte elsewhere. */
function shaped(data: Uint8Array, at: number, pattern: Uint8Array): boolean {
  for (let i = 0; i < pattern.length; i++) {
    const b = data[at + i];
    if (pattern[i] === 0x64 ? !isDigit(b) : b !== pattern[i]) return false;
  }
  return true;
}
const DATE_SHAPE = Buffer.from('dddd-dd-dd');
const TIMESTAMP_SHAPE = Buffer.from('dddd-dd-dd dd:dd:dd');
/**
 * The commonest text forms of the types `fits` checks by a regular expression, checked on the bytes: a
 * subset of what `fits` accepts (a value in this form fits; one outside it is left to `fits`).
 * Numbers `-?d+(.d+)?`, dates `dddd-dd-dd`, timestamps `dddd-dd-dd dd:dd:dd(.d+)?`, with `[+-]dd` for timestamptz.
 */
export function plainForm(oid: number, data: Uint8Array, s: number, e: number): boolean {
  if (oid === 1700 || oid === 701 || oid === 700) {
    let p = s;
    if (data[p] === 0x2d) p++;
    const first = p;
    while (p < e && isDigit(data[p])) p++;
    if (p === first) return false;
    if (p < e && data[p] === 0x2e) {
      p++;
      const frac = p;
      while (p < e && isDigit(data[p])) p++;
      if (p === frac) return false;
    }
    return p === e;
  }
  if (oid === 1082) return e - s === 10 && shaped(data, s, DATE_SHAPE);
  if (oid !== 1114 && oid !== 1184) return false;
  if (e - s < 19 || !shaped(data, s, TIMESTAMP_SHAPE)) return false;
  let p = s + 19;
  if (p < e && data[p] === 0x2e) {
    p++;
    const frac = p;
    while (p < e && isDigit(data[p])) p++;
    if (p === frac) return false;
  }
  if (oid === 1114) return p === e;
  return p + 3 === e && (data[p] === 0x2b || data[p] === 0x2d) && isDigit(data[p + 1]) && isDigit(data[p + 2]);
}
