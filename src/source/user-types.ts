import type { Sql } from 'postgres';
import type { ColumnSchema } from '../change/index.ts';

/** OIDs below this are built into PostgreSQL (FirstGenbkiObjectId); above are user and extension types. */
const FIRST_USER_OID = 10_000;

interface TypeRow {
  oid: number;
  /** After following domains: the base type, its modifier (-1 none) and kind. */
  base: number;
  base_mod: number;
  kind: string;
  /** Element type of an array base type (0 when not an array). */
  elem: number;
}

const KINDS: Record<string, string> = { e: 'enum', c: 'composite', r: 'range', m: 'multirange' };

/**
 * Resolves the non-built-in column types of relations the way the warehouse needs them: domains
 * become their base type (and the domain's type modifier), arrays of domains the array of the base
 * type, enums, composites and ranges (and arrays of them) are named in `userType`. Results are
 * cached per type OID for the connection's life; a type changed by DDL comes with a new Relation,
 * and ALTER TYPE keeps the OID and kind.
 */
export class UserTypes {
  private readonly cache = new Map<number, TypeRow>();

  constructor(private readonly sql: Sql) {}

  async resolve(columns: ColumnSchema[]): Promise<ColumnSchema[]> {
    const wanted = columns.map((c) => c.typeOid).filter((o) => o >= FIRST_USER_OID && !this.cache.has(o));
    if (wanted.length > 0) await this.load(wanted);
    const elems = [...this.cache.values()].map((r) => r.elem).filter((o) => o >= FIRST_USER_OID && !this.cache.has(o));
    if (elems.length > 0) await this.load(elems);
    return columns.map((c) => this.resolveColumn(c));
  }

  private resolveColumn(c: ColumnSchema): ColumnSchema {
    const t = c.typeOid >= FIRST_USER_OID ? this.cache.get(c.typeOid) : undefined;
    if (!t) return c;
    const out: ColumnSchema = { ...c, typeOid: t.base, typeMod: c.typeMod >= 0 ? c.typeMod : t.base_mod };
    delete out.userType;
    if (KINDS[t.kind]) out.userType = KINDS[t.kind];
    else if (t.elem >= FIRST_USER_OID) {
      const e = this.cache.get(t.elem);
      if (e && KINDS[e.kind]) out.userType = `${KINDS[e.kind]}[]`;
      else if (e && e.base < FIRST_USER_OID) {
        // An array of a domain over a built-in type: the built-in type's array.
        const arr = this.arrayOf.get(e.base);
        if (arr) out.typeOid = arr;
        out.typeMod = c.typeMod >= 0 ? c.typeMod : e.base_mod;
      }
    }
    return out;
  }

  private readonly arrayOf = new Map<number, number>();

  /**
   * Adds each column's attnum from the catalog (by name, for the relation's OID): the warehouse tells
   * a rename from a drop and an add by it. A column the catalog no longer has under that name (renamed
   * again since, while the stream lags) gets none and is matched by name.
   */
  async withAttnums(relationId: number, columns: ColumnSchema[]): Promise<ColumnSchema[]> {
    // The walsender may send a transaction a moment before its commit is visible to other sessions:
    // while a column of the Relation is missing from the catalog, look again briefly.
    let rows: { name: string; attnum: number; missing: string | null; has_default: boolean }[] = [];
    for (let attempt = 0; attempt < 20; attempt++) {
      rows = await this.sql<{ name: string; attnum: number; missing: string | null; has_default: boolean }[]>`
        SELECT attname AS name, attnum::int AS attnum,
               CASE WHEN atthasmissing THEN (attmissingval::text::text[])[1] END AS missing,
               atthasdef OR attgenerated <> '' AS has_default
          FROM pg_attribute
         WHERE attrelid = ${relationId}::oid AND attnum > 0 AND NOT attisdropped`;
      const names = new Set(rows.map((r) => r.name));
      if (columns.every((c) => names.has(c.name))) break;
      await Bun.sleep(25);
    }
    const byName = new Map(rows.map((r) => [r.name, r]));
    return columns.map((c) => {
      const r = byName.get(c.name);
      if (!r) return c;
      return {
        ...c,
        attnum: r.attnum,
        ...(r.missing !== null ? { missing: r.missing } : {}),
        ...(r.has_default ? { hasDefault: true } : {}),
      };
    });
  }

  private async load(oids: number[]): Promise<void> {
    const rows = await this.sql<(TypeRow & { base_array: number })[]>`
      WITH RECURSIVE d(oid, cur, mod, depth) AS (
        SELECT t.oid, t.oid, -1, 0 FROM pg_type t WHERE t.oid = ANY(${[...new Set(oids)]}::oid[])
        UNION ALL
        SELECT d.oid, t.typbasetype, CASE WHEN d.mod = -1 THEN t.typtypmod ELSE d.mod END, d.depth + 1
          FROM d JOIN pg_type t ON t.oid = d.cur WHERE t.typtype = 'd' AND d.depth < 20
      )
      SELECT d.oid::int AS oid, d.cur::int AS base, d.mod AS base_mod, b.typtype::text AS kind,
             CASE WHEN b.typcategory = 'A' THEN b.typelem::int ELSE 0 END AS elem, b.typarray::int AS base_array
        FROM d JOIN pg_type b ON b.oid = d.cur
       WHERE b.typtype <> 'd'`;
    for (const r of rows) {
      this.cache.set(r.oid, r);
      if (r.base < FIRST_USER_OID && r.base_array) this.arrayOf.set(r.base, r.base_array);
    }
  }
}
