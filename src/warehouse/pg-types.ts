import type { ColumnSchema } from '../change/index.ts';

/** How one PostgreSQL column is stored in DuckDB and converted from PostgreSQL's text output. */
export interface ColumnMapping {
  name: string;
  /** DuckDB type, e.g. DECIMAL(10,2). */
  duckType: string;
  /** SQL expression turning the staged VARCHAR `ref` into duckType. */
  fromText(ref: string): string;
  /** SQL expression turning the stored column `ref` back into PostgreSQL's text form (to refill TOAST). */
  toText(ref: string): string;
}

// https://github.com/postgres/postgres/blob/master/src/include/catalog/pg_type.dat
const SIMPLE: Record<number, string> = {
  16: 'BOOLEAN', // bool
  20: 'BIGINT', // int8
  21: 'SMALLINT', // int2
  23: 'INTEGER', // int4
  26: 'UBIGINT', // oid
  700: 'FLOAT', // float4
  701: 'DOUBLE', // float8
  25: 'VARCHAR', // text
  1043: 'VARCHAR', // varchar
  1042: 'VARCHAR', // bpchar
  19: 'VARCHAR', // name
  1082: 'DATE', // date
  1083: 'TIME', // time
  1114: 'TIMESTAMP', // timestamp
  1184: 'TIMESTAMPTZ', // timestamptz
  1186: 'INTERVAL', // interval (IntervalStyle postgres)
  2950: 'UUID', // uuid
  114: 'JSON', // json
  3802: 'JSON', // jsonb
};
const BYTEA = 17;
const NUMERIC = 1700;

/** DuckDB type for a PostgreSQL type OID and modifier. Unknown types (arrays, enums, ranges) stay VARCHAR. */
export function duckTypeOf(typeOid: number, typeMod: number): string {
  if (typeOid === BYTEA) return 'BLOB';
  if (typeOid === NUMERIC) {
    // typmod = ((precision << 16) | scale) + VARHDRSZ; unconstrained numeric (-1) has no exact DECIMAL.
    if (typeMod < 4) return 'VARCHAR';
    const precision = ((typeMod - 4) >> 16) & 0xffff;
    const scale = (typeMod - 4) & 0xffff;
    return precision <= 38 ? `DECIMAL(${precision},${scale})` : 'VARCHAR';
  }
  return SIMPLE[typeOid] ?? 'VARCHAR';
}

/** Quotes an identifier for DuckDB. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** Mapping of one relation column. */
export function mapColumn(col: ColumnSchema): ColumnMapping {
  const duckType = duckTypeOf(col.typeOid, col.typeMod);
  if (duckType === 'BLOB') {
    // PostgreSQL's bytea text output is hex: \x0102...
    return {
      name: col.name,
      duckType,
      fromText: (ref) => `from_hex(substr(${ref}, 3))`,
      toText: (ref) => `'\\x' || lower(hex(${ref}))`,
    };
  }
  if (duckType === 'VARCHAR') {
    return { name: col.name, duckType, fromText: (ref) => ref, toText: (ref) => ref };
  }
  return {
    name: col.name,
    duckType,
    fromText: (ref) => `CAST(${ref} AS ${duckType})`,
    toText: (ref) => `CAST(${ref} AS VARCHAR)`,
  };
}
