/**
 * PostgreSQL type -> DuckDB type, one column at a time: the DuckDB type and two pure SQL conversions
 * (PostgreSQL text output -> DuckDB value, and back). The rules are documented in docs/TYPES.md.
 * Values arrive as PostgreSQL's text output with ducktail's session settings (ISO dates, UTC,
 * IntervalStyle postgres, bytea hex), the same in the initial copy and in the stream.
 */
import type { ColumnSchema } from '../change/index.ts';

/** How one PostgreSQL column is stored in DuckDB and converted from PostgreSQL's text output. */
export interface ColumnMapping {
  name: string;
  /** DuckDB type, e.g. DECIMAL(10,2) or INTEGER[]. */
  duckType: string;
  /** SQL expression turning the staged VARCHAR `ref` (PostgreSQL text) into duckType. */
  fromText(ref: string): string;
  /** SQL expression turning the stored column `ref` back into text that fromText reads (to refill TOAST). */
  toText(ref: string): string;
  /** Set when the type has no exact DuckDB mapping and is stored as its text in VARCHAR: why (warn once). */
  fallback?: string;
  /**
   * SQL predicate on the non-NULL staged text `ref`: true when duckType cannot hold the value exactly
   * (e.g. NaN in a DECIMAL). fromText then yields NULL and the applier keeps the text aside
   * (src/warehouse/unfit.ts). Absent when every value fits.
   */
  unfit?(ref: string): string;
}

type Conv = Omit<ColumnMapping, 'name'>;

// https://github.com/postgres/postgres/blob/master/src/include/catalog/pg_type.dat
const SIMPLE: Record<number, string> = {
  16: 'BOOLEAN', // bool
  20: 'BIGINT', // int8
  21: 'SMALLINT', // int2
  23: 'INTEGER', // int4
  26: 'UBIGINT', // oid
  700: 'FLOAT', // float4
  701: 'DOUBLE', // float8
  1083: 'TIME', // time
  2950: 'UUID', // uuid
  114: 'JSON', // json
  3802: 'JSON', // jsonb
};
/** Text types, and types kept in their text form by design (ranges, multiranges): VARCHAR without a warning. */
const TEXT = new Set([
  25, 1043, 1042, 19, 18, // text, varchar, bpchar, name, "char"
  3904, 3906, 3908, 3910, 3912, 3926, // int4range numrange tsrange tstzrange daterange int8range
  4451, 4532, 4533, 4534, 4535, 4536, // their multiranges
]);
const DATETIME: Record<number, string> = { 1082: 'DATE', 1114: 'TIMESTAMP', 1184: 'TIMESTAMPTZ' };
const BYTEA = 17;
const NUMERIC = 1700;
const INTERVAL = 1186;
const TIMETZ = 1266;
/** Built-in array type OID -> element type OID. */
const ARRAY_OF: Record<number, number> = {
  1000: 16, 1001: 17, 1002: 18, 1003: 19, 1005: 21, 1007: 23, 1009: 25, 1014: 1042, 1015: 1043, 1016: 20,
  1028: 26, 1021: 700, 1022: 701, 1182: 1082, 1183: 1083, 1115: 1114, 1185: 1184, 1187: 1186, 1270: 1266,
  2951: 2950, 199: 114, 3807: 3802, 1231: 1700, 3905: 3904, 3907: 3906, 3909: 3908, 3911: 3910, 3913: 3912,
  3927: 3926,
};

/**
 * Unconstrained `numeric` (no precision): DECIMAL(38, 18). A value with more than 18 fractional digits
 * (trailing zeros aside), more than 20 integer digits, NaN or ±Infinity is never rounded, never a
 * float: the column holds NULL and `_ducktail.unfit_values` the exact text (see `unfit`).
 */
export const UNCONSTRAINED_NUMERIC_SCALE = 18;

/** DuckDB type for a PostgreSQL type OID and modifier (VARCHAR when there is no exact mapping). */
export function duckTypeOf(typeOid: number, typeMod: number): string {
  return scalar(typeOid, typeMod, undefined).duckType;
}

const same: Conv['toText'] = (ref) => ref;
const asText = (fallback?: string): Conv => ({ duckType: 'VARCHAR', fromText: same, toText: same, ...(fallback ? { fallback } : {}) });
const cast = (duckType: string): Conv => ({
  duckType,
  fromText: (ref) => `CAST(${ref} AS ${duckType})`,
  toText: (ref) => `CAST(${ref} AS VARCHAR)`,
});

/**
 * DuckDB reads BC only as "YYYY-MM-DD (BC) hh:mm:ss"; PostgreSQL writes "YYYY-MM-DD hh:mm:ss BC".
 * PostgreSQL's timestamps go to year 294276, DuckDB's TIMESTAMP stops at 294247-01-10: a value past it
 * (a six-digit year DuckDB cannot read) is unfit. DATE reaches year 5881580 in both.
 */
function dateTime(duckType: string): Conv {
  const unfit = duckType === 'DATE' ? undefined : (ref: string) => `(strpos(${ref}, '-') > 6 AND TRY_CAST(${ref} AS ${duckType}) IS NULL)`;
  const bc = (ref: string) =>
    `CASE WHEN ends_with(${ref}, ' BC') THEN regexp_replace(${ref}, '^(\\d+-\\d+-\\d+)(.*) BC$', '\\1 (BC)\\2') ELSE ${ref} END`;
  return {
    duckType,
    ...(unfit ? { unfit } : {}),
    fromText: (ref) => `CAST(${unfit ? `CASE WHEN ${unfit(ref)} THEN NULL ELSE ${bc(ref)} END` : bc(ref)} AS ${duckType})`,
    toText: (ref) =>
      `(CASE WHEN contains(CAST(${ref} AS VARCHAR), ' (BC)') THEN replace(CAST(${ref} AS VARCHAR), ' (BC)', '') || ' BC' ELSE CAST(${ref} AS VARCHAR) END)`,
  };
}

/** NaN and ±Infinity: numeric values (PostgreSQL 14+ for the infinities) no DuckDB DECIMAL holds. */
const specialNumeric = (ref: string) => `${ref} IN ('NaN', 'Infinity', '-Infinity')`;

function numeric(typeMod: number): Conv {
  if (typeMod >= 4) {
    // typmod = ((precision << 16) | scale) + VARHDRSZ
    const precision = ((typeMod - 4) >> 16) & 0xffff;
    const scale = (typeMod - 4) & 0xffff;
    if (precision > 38) return asText(`numeric(${precision},${scale}) is wider than DuckDB's DECIMAL(38): kept exact as text`);
    const duckType = `DECIMAL(${precision},${scale})`;
    return {
      duckType,
      fromText: (ref) => `CAST(CASE WHEN ${specialNumeric(ref)} THEN NULL ELSE ${ref} END AS ${duckType})`,
      toText: (ref) => `CAST(${ref} AS VARCHAR)`,
      unfit: specialNumeric,
    };
  }
  const s = UNCONSTRAINED_NUMERIC_SCALE;
  const duckType = `DECIMAL(38,${s})`;
  const pattern = `-?\\d{1,${38 - s}}(\\.\\d{0,${s}}0*)?`;
  return {
    duckType,
    fromText: (ref) => `CAST(CASE WHEN regexp_full_match(${ref}, '${pattern}') THEN ${ref} END AS ${duckType})`,
    toText: (ref) => `CAST(${ref} AS VARCHAR)`,
    unfit: (ref) => `NOT regexp_full_match(${ref}, '${pattern}')`,
  };
}

/** The mapping of one non-array type. `userType` is what the source resolved for non-built-in types. */
function scalar(typeOid: number, typeMod: number, userType: string | undefined): Conv {
  if (userType === 'enum' || userType === 'composite' || userType === 'range' || userType === 'multirange') return asText();
  if (typeOid === BYTEA) {
    // PostgreSQL's bytea text output is hex: \x0102...
    return { duckType: 'BLOB', fromText: (ref) => `from_hex(substr(${ref}, 3))`, toText: (ref) => `'\\x' || lower(hex(${ref}))` };
  }
  if (typeOid === NUMERIC) return numeric(typeMod);
  if (typeOid === INTERVAL) {
    // IntervalStyle postgres writes "-1 days +02:03:00"; DuckDB reads the time part without the "+".
    return { duckType: 'INTERVAL', fromText: (ref) => `CAST(replace(${ref}, ' +', ' ') AS INTERVAL)`, toText: (ref) => `CAST(${ref} AS VARCHAR)` };
  }
  if (typeOid === TIMETZ) return cast('TIMETZ');
  if (DATETIME[typeOid]) return dateTime(DATETIME[typeOid]);
  if (SIMPLE[typeOid]) return cast(SIMPLE[typeOid]);
  if (TEXT.has(typeOid)) return asText();
  return asText(`type ${userType ? `${userType} ` : ''}oid ${typeOid} has no exact DuckDB type: stored as its PostgreSQL text in VARCHAR`);
}

/** Tokens of a PostgreSQL array literal: quoted elements (with their quotes) or bare ones; bounds dropped. */
function arrayTokens(ref: string): string {
  return `regexp_extract_all(regexp_replace(${ref}, '^\\[[^=]*\\]=', ''), '"(?:[^"\\\\]|\\\\.)*"|[^,{}]+')`;
}

/** An array column as a LIST of its element type; NULL elements kept; multi-dimensional values flattened (docs/TYPES.md). */
function list(elem: Conv): Conv {
  const element = `CASE WHEN x = 'NULL' THEN NULL WHEN x[1] = '"' THEN regexp_replace(x[2:-2], '\\\\(.)', '\\1', 'g') ELSE x END`;
  const quote = (t: string) =>
    `CASE WHEN ${t} = '' OR upper(${t}) = 'NULL' OR regexp_matches(${t}, '[{},"\\\\\\s]') ` +
    `THEN '"' || replace(replace(${t}, '\\', '\\\\'), '"', '\\"') || '"' ELSE ${t} END`;
  const elemUnfit = elem.unfit;
  return {
    duckType: `${elem.duckType}[]`,
    fromText: (ref) => `list_transform(${arrayTokens(ref)}, lambda x: ${elem.fromText(`(${element})`)})`,
    ...(elemUnfit
      ? { unfit: (ref: string) => `len(list_filter(${arrayTokens(ref)}, lambda x: x <> 'NULL' AND ${elemUnfit(`(${element})`)})) > 0` }
      : {}),
    toText: (ref) =>
      `(CASE WHEN ${ref} IS NULL THEN NULL ELSE '{' || array_to_string(list_transform(${ref}, lambda x: ` +
      `CASE WHEN x IS NULL THEN 'NULL' ELSE ${quote(elem.toText('x'))} END), ',') || '}' END)`,
  };
}

/** Mapping of one relation column. */
export function mapColumn(col: ColumnSchema): ColumnMapping {
  const elemOid = ARRAY_OF[col.typeOid];
  const userType = col.userType;
  let conv: Conv;
  if (elemOid !== undefined || userType?.endsWith('[]')) {
    const elem = elemOid !== undefined ? scalar(elemOid, col.typeMod, undefined) : scalar(0, -1, userType!.slice(0, -2));
    conv = elem.fallback
      ? asText(`array of a type without an exact DuckDB type (oid ${col.typeOid}): stored as its PostgreSQL text in VARCHAR`)
      : list(elem);
  } else {
    conv = scalar(col.typeOid, col.typeMod, userType);
  }
  return { name: col.name, ...conv };
}

/** Quotes an identifier for DuckDB. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
