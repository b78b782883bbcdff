/**
 * Fast parsers of PostgreSQL's text output (ISO dates, UTC, the formats ducktail's sessions produce) for
 * typed staging (columns.ts). Each accepts only what it converts exactly like DuckDB's cast of the same
 * text (src/warehouse/pg-types.ts `fromText`) and returns NaN for anything else, which then takes that path.
 */

/** Digits of a two-digit field at `at` (NaN when not two digits). */
export function two(s: string, at: number): number {
  const a = s.charCodeAt(at) - 48;
  const b = s.charCodeAt(at + 1) - 48;
  return a >= 0 && a <= 9 && b >= 0 && b <= 9 ? a * 10 + b : NaN;
}

/** A decimal integer of at most 15 digits (exact in a double), else NaN. */
export function integer(s: string): number {
  let i = s.charCodeAt(0) === 45 ? 1 : 0;
  const len = s.length - i;
  if (len === 0 || len > 15) return NaN;
  let n = 0;
  for (; i < s.length; i++) {
    const d = s.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return NaN;
    n = n * 10 + d;
  }
  return s.charCodeAt(0) === 45 ? -n : n;
}

/** '[-]digits[.digits]' scaled by 10^scale, at most `scale` fractional digits and 15 digits in all, else NaN. */
export function decimal(s: string, scale: number): number {
  let i = s.charCodeAt(0) === 45 ? 1 : 0;
  let n = 0;
  let digits = 0;
  let frac = -1;
  for (; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 46 && frac < 0) {
      frac = 0;
      continue;
    }
    const d = c - 48;
    if (d < 0 || d > 9) return NaN;
    n = n * 10 + d;
    digits++;
    if (frac >= 0) frac++;
  }
  if (digits === 0 || frac === 0 || frac > scale || digits + scale - Math.max(frac, 0) > 15) return NaN;
  n *= 10 ** (scale - Math.max(frac, 0));
  return s.charCodeAt(0) === 45 ? -n : n;
}

/** Days since 1970-01-01 of the 'YYYY-MM-DD' at the start of `s` (years 1-9999), else NaN. */
export function civilDays(s: string): number {
  if (s.charCodeAt(4) !== 45 || s.charCodeAt(7) !== 45) return NaN;
  const y = two(s, 0) * 100 + two(s, 2);
  const m = two(s, 5);
  const d = two(s, 8);
  if (!(y >= 1 && m >= 1 && m <= 12 && d >= 1 && d <= 31)) return NaN;
  // Howard Hinnant's days_from_civil.
  const yy = m <= 2 ? y - 1 : y;
  const era = Math.floor(yy / 400);
  const yoe = yy - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  return era * 146097 + yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy - 719468;
}

/**
 * Microseconds since the epoch of 'YYYY-MM-DD HH:MM:SS[.ffffff]' followed, when `tz`, by '+HH[:MM[:SS]]'
 * (PostgreSQL's ISO output); a BigInt past about year 2255 (beyond a double's exact integers); NaN otherwise.
 */
export function timestampMicros(s: string, tz: boolean): number | bigint {
  if (s.length < 19 || s.charCodeAt(10) !== 32 || s.charCodeAt(13) !== 58 || s.charCodeAt(16) !== 58) return NaN;
  const days = civilDays(s);
  const h = two(s, 11);
  const mi = two(s, 14);
  const se = two(s, 17);
  if (Number.isNaN(days) || !(h < 24 && mi < 60 && se < 60)) return NaN;
  let i = 19;
  let micros = 0;
  if (s.charCodeAt(i) === 46) {
    let digits = 0;
    for (i++; i < s.length && digits < 7; i++, digits++) {
      const d = s.charCodeAt(i) - 48;
      if (d < 0 || d > 9) break;
      micros = micros * 10 + d;
    }
    if (digits === 0 || digits > 6) return NaN;
    micros *= 10 ** (6 - digits);
  }
  let offset = 0;
  if (tz) {
    const sign = s.charCodeAt(i);
    if (sign !== 43 && sign !== 45) return NaN;
    let secs = two(s, i + 1) * 3600;
    i += 3;
    if (s.charCodeAt(i) === 58) {
      secs += two(s, i + 1) * 60;
      i += 3;
      if (s.charCodeAt(i) === 58) {
        secs += two(s, i + 1);
        i += 3;
      }
    }
    if (Number.isNaN(secs)) return NaN;
    offset = sign === 43 ? secs : -secs;
  }
  if (i !== s.length) return NaN;
  const seconds = days * 86400 + h * 3600 + mi * 60 + se - offset;
  // Exact in a double below 2^53 µs (about year 2255); later ones through a BigInt.
  return Math.abs(seconds) < 9_000_000_000 ? seconds * 1_000_000 + micros : BigInt(seconds) * 1_000_000n + BigInt(micros);
}

