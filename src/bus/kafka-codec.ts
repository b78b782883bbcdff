import * as v from 'valibot';
import { type Change, type ColumnSchema, type TableSchema, type TupleValue, UNCHANGED } from '../change/index.ts';

/**
 * Debezium's JSON envelope with schemas enabled (JsonConverter `schemas.enable=true`): every value is
 * `{"schema": ..., "payload": {before, after, source, op, ts_ms}}`. The schema block is how a consumer
 * (ours included) rebuilds the table's layout from Kafka alone: each column is a field in attribute
 * order, with its PostgreSQL type OID, type modifier and key flag as field parameters. Values are
 * PostgreSQL's exact text form (a Kafka Connect "string"), never converted through a float.
 */

/** Debezium's placeholder for an unchanged TOASTed value; `source.unchanged` names those columns exactly. */
export const UNAVAILABLE = '__debezium_unavailable_value';
const OPS = { R: 'r', I: 'c', U: 'u', D: 'd', T: 't' } as const;
const SLAB_BYTES = 1 << 20;
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** One message ready for the producer: explicit partition, key as JSON text, value as UTF-8 JSON bytes. */
export interface Encoded {
  topic: string;
  partition: number;
  key: string | undefined;
  value: Buffer;
}

/** `<prefix>.<schema>.<table>`. */
export function topicName(prefix: string, table: TableSchema): string {
  return `${prefix}.${table.schema}.${table.table}`;
}

function text(value: TupleValue | undefined): string | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string') return value;
  if (value === UNCHANGED) return UNAVAILABLE;
  let s = '\\x';
  for (const b of value) s += HEX[b];
  return s;
}

/**
 * Caches the per-table schema block as bytes (`{"schema":...,"payload":`): it is the same ~3.4 KB in
 * every message of a table, so it is serialized and UTF-8 encoded once per layout and only copied.
 */
export class EventEncoder {
  private readonly schemas = new Map<TableSchema, Buffer>();
  private point = 0n;
  /** Values are written into shared slabs (one allocation per ~1 MB instead of one per event). */
  private slab = Buffer.allocUnsafe(0);
  private used = 0;

  constructor(
    private readonly prefix: string,
    private readonly version: string,
  ) {}

  private schemaPrefix(t: TableSchema): Buffer {
    const known = this.schemas.get(t);
    if (known) return known;
    const name = topicName(this.prefix, t);
    const row = {
      type: 'struct',
      optional: true,
      name: `${name}.Value`,
      fields: t.columns.map((c) => ({
        field: c.name,
        type: 'string',
        optional: !c.key,
        parameters: {
          'pg.type_oid': String(c.typeOid), 'pg.type_mod': String(c.typeMod), 'pg.key': String(c.key),
          ...(c.userType ? { 'pg.user_type': c.userType } : {}),
          ...(c.attnum !== undefined ? { 'pg.attnum': String(c.attnum) } : {}),
          ...(c.missing !== undefined ? { 'pg.missing': c.missing } : {}),
          ...(c.hasDefault ? { 'pg.has_default': 'true' } : {}),
        },
      })),
    };
    const s = JSON.stringify({
      type: 'struct',
      optional: false,
      name: `${name}.Envelope`,
      fields: [
        { ...row, field: 'before' },
        { ...row, field: 'after' },
        { type: 'struct', optional: false, name: 'io.debezium.connector.postgresql.Source', field: 'source', fields: SOURCE_FIELDS },
        { type: 'string', optional: false, field: 'op' },
        { type: 'int64', optional: true, field: 'ts_ms' },
      ],
    });
    const prefix = Buffer.from(`${SCHEMA_START}${s}${PAYLOAD_AT}`);
    this.schemas.set(t, prefix);
    return prefix;
  }

  private record(t: TableSchema, row: readonly TupleValue[] | null): Record<string, string | null> | null {
    if (!row) return null;
    const out: Record<string, string | null> = {};
    t.columns.forEach((c, i) => (out[c.name] = text(row[i])));
    return out;
  }

  private keyOf(t: TableSchema, row: readonly TupleValue[]): string {
    const out: Record<string, string | null> = {};
    t.columns.forEach((c, i) => {
      if (c.key) out[c.name] = text(row[i]);
    });
    return JSON.stringify(out);
  }

  /** One change as Debezium events: an update that moved the primary key becomes a delete and a create, as Debezium does. */
  encode(c: Change, t: TableSchema, partitions: number, partitionOf: (key: string) => number, snapshotPoint: bigint): Encoded[] {
    const topic = topicName(this.prefix, t);
    this.point = snapshotPoint;
    if (c.op === 'T') {
      // A truncate covers every key: one event per partition, applied once all owned partitions reach it.
      const value = this.value(t, c, 't', null, null, 0);
      return Array.from({ length: partitions }, (_, partition) => ({ topic, partition, key: undefined, value }));
    }
    if (c.op === 'U' && c.oldKey) {
      const oldKey = this.keyOf(t, c.oldKey);
      const newKey = this.keyOf(t, c.row);
      if (oldKey !== newKey) {
        return [
          { topic, partition: partitionOf(oldKey), key: oldKey, value: this.value(t, c, 'd', c.oldKey, null, 0) },
          { topic, partition: partitionOf(newKey), key: newKey, value: this.value(t, c, 'c', null, c.row, 1) },
        ];
      }
    }
    const key = this.keyOf(t, c.row);
    const op = OPS[c.op];
    const value = c.op === 'D' ? this.value(t, c, op, c.row, null, 0) : this.value(t, c, op, null, c.row, 0);
    return [{ topic, partition: partitionOf(key), key, value }];
  }

  private value(
    t: TableSchema,
    c: Change,
    op: string,
    before: readonly TupleValue[] | null,
    after: readonly TupleValue[] | null,
    sub: number,
  ): Buffer {
    const tsMs = Number(c.commitTimeUs / 1000n);
    const unchanged = after ? t.columns.filter((_, i) => after[i] === UNCHANGED).map((col) => col.name) : [];
    const source = {
      version: this.version,
      connector: 'postgresql',
      name: this.prefix,
      ts_ms: tsMs,
      ts_us: Number(c.commitTimeUs),
      snapshot: c.op === 'R' ? 'true' : 'false',
      db: '',
      schema: t.schema,
      table: t.table,
      txId: c.xid ?? null,
      lsn: Number(c.lsn),
      seq: c.seq,
      // ducktail's order key inside a partition (dedup of a producer's retries): snapshot events sort at
      // their slot's consistent point (a reset first), streamed ones at their commit LSN.
      pos_lsn: Number(c.lsn === 0n ? this.point : c.lsn),
      pos_ord: c.lsn === 0n ? (c.op === 'T' ? 0 : c.seq * 2 + 2) : c.seq * 2 + sub,
      unchanged,
    };
    const payload = { before: this.record(t, before), after: this.record(t, after), source, op, ts_ms: Date.now() };
    const prefix = this.schemaPrefix(t);
    const json = JSON.stringify(payload);
    const size = prefix.length + json.length * 3 + 1; // at most 3 UTF-8 bytes per UTF-16 unit
    if (this.slab.length - this.used < size) {
      this.slab = Buffer.allocUnsafe(Math.max(SLAB_BYTES, size));
      this.used = 0;
    }
    const start = this.used;
    prefix.copy(this.slab, start);
    const end = start + prefix.length + this.slab.write(json, start + prefix.length);
    this.slab[end] = 0x7d; // the envelope's closing brace
    this.used = end + 1;
    return this.slab.subarray(start, end + 1);
  }
}

const SOURCE_FIELDS = [
  { type: 'string', optional: false, field: 'version' },
  { type: 'string', optional: false, field: 'connector' },
  { type: 'string', optional: false, field: 'name' },
  { type: 'int64', optional: false, field: 'ts_ms' },
  { type: 'int64', optional: true, field: 'ts_us' },
  { type: 'string', optional: true, field: 'snapshot' },
  { type: 'string', optional: false, field: 'db' },
  { type: 'string', optional: false, field: 'schema' },
  { type: 'string', optional: false, field: 'table' },
  { type: 'int64', optional: true, field: 'txId' },
  { type: 'int64', optional: true, field: 'lsn' },
  { type: 'int64', optional: false, field: 'seq' },
  { type: 'int64', optional: false, field: 'pos_lsn' },
  { type: 'int64', optional: false, field: 'pos_ord' },
  { type: 'array', optional: true, field: 'unchanged', items: { type: 'string', optional: false } },
];

const Int = v.pipe(v.number(), v.integer(), v.minValue(0));
const Row = v.nullable(v.record(v.string(), v.nullable(v.string())));
const Field = v.object({
  field: v.string(),
  parameters: v.object({
    'pg.type_oid': v.pipe(v.string(), v.digits()), 'pg.type_mod': v.string(), 'pg.key': v.picklist(['true', 'false']),
    'pg.user_type': v.optional(v.string()),
    'pg.attnum': v.optional(v.pipe(v.string(), v.digits())),
    'pg.missing': v.optional(v.string()),
    'pg.has_default': v.optional(v.picklist(['true', 'false'])),
  }),
});
/** The payload as ducktail reads it back (valibot): anything else is a poison message. */
const PayloadSchema = v.object({
  before: Row,
  after: Row,
  op: v.picklist(['r', 'c', 'u', 'd', 't']),
  source: v.object({
    schema: v.string(),
    table: v.string(),
    lsn: Int,
    seq: Int,
    pos_lsn: Int,
    pos_ord: Int,
    ts_us: v.optional(Int),
    ts_ms: Int,
    txId: v.optional(v.nullable(Int)),
    unchanged: v.optional(v.array(v.string()), []),
  }),
});
const SchemaSchema = v.object({
  fields: v.pipe(v.array(v.object({ field: v.string(), fields: v.optional(v.array(v.unknown())) })), v.minLength(2)),
});
/** The whole envelope (for documentation and other readers; `decodeEvent` checks its two parts separately). */
export const EventSchema = v.object({ schema: SchemaSchema, payload: PayloadSchema });

const SCHEMA_START = '{"schema":';
const PAYLOAD_AT = ',"payload":';
const MAX_CACHED_LAYOUTS = 1000;
/** Column layouts by the exact text of their schema block: it repeats in every event of a table. */
const layouts = new Map<string, ColumnSchema[]>();

/** A decoded event: the change, its table's layout, and its order key (pos, ord) inside the partition. */
export interface Decoded {
  change: Change;
  table: TableSchema;
  pos: bigint;
  ord: number;
}

const SCHEMA_START_BYTES = Buffer.from(SCHEMA_START);
const PAYLOAD_AT_BYTES = Buffer.from(PAYLOAD_AT);
const MAX_RECENT_PREFIXES = 16;
/** Schema prefixes (`{"schema":...,"payload":` bytes) seen last, newest first, with their layout text. */
const recentPrefixes: { bytes: Buffer; text: string }[] = [];

/** The schema block's text when `value` starts with a recently seen prefix (a byte compare, no UTF-8 decoding). */
function knownPrefix(value: Buffer): { bytes: Buffer; text: string } | undefined {
  for (let i = 0; i < recentPrefixes.length; i++) {
    const p = recentPrefixes[i]!;
    if (value.length > p.bytes.length && value.compare(p.bytes, 0, p.bytes.length, 0, p.bytes.length) === 0) {
      if (i > 0) recentPrefixes.unshift(...recentPrefixes.splice(i, 1));
      return p;
    }
  }
  return undefined;
}

/** Splits ducktail's own events into schema text and parsed payload; undefined when the value has another shape. */
function splitOwn(value: Buffer): { schemaText: string; payloadJson: unknown } | undefined {
  if (value.length < 2 || value[value.length - 1] !== 0x7d) return undefined;
  let prefix = knownPrefix(value);
  if (!prefix) {
    if (value.compare(SCHEMA_START_BYTES, 0, SCHEMA_START_BYTES.length, 0, SCHEMA_START_BYTES.length) !== 0) return undefined;
    const at = value.indexOf(PAYLOAD_AT_BYTES);
    if (at <= 0) return undefined;
    const end = at + PAYLOAD_AT_BYTES.length;
    prefix = { bytes: Buffer.from(value.subarray(0, end)), text: value.toString('utf8', SCHEMA_START_BYTES.length, at) };
  }
  let payloadJson: unknown;
  try {
    payloadJson = JSON.parse(value.toString('utf8', prefix.bytes.length, value.length - 1));
  } catch {
    return undefined; // not our layout after all: read it whole
  }
  if (recentPrefixes[0] !== prefix) {
    recentPrefixes.unshift(prefix);
    if (recentPrefixes.length > MAX_RECENT_PREFIXES) recentPrefixes.pop();
  }
  return { schemaText: prefix.text, payloadJson };
}

/** Parses and validates one value; throws a message for the dead-letter headers when it is not a ducktail event. */
export function decodeEvent(raw: Buffer | string): Decoded {
  // ducktail's own events: parse only the payload and look the layout up by the schema block (its bytes, then its text).
  const value = typeof raw === 'string' ? Buffer.from(raw) : raw;
  const own = splitOwn(value);
  const schemaText = own?.schemaText;
  let payloadJson = own?.payloadJson;
  let schemaJson: unknown;
  if (schemaText === undefined) {
    let json: unknown;
    try {
      json = JSON.parse(value.toString());
    } catch (e) {
      throw new PoisonError('NOT_JSON', `value is not JSON: ${(e as Error).message}`);
    }
    if (typeof json !== 'object' || json === null) throw new PoisonError('NOT_ENVELOPE', 'not a Debezium envelope: not an object');
    ({ schema: schemaJson, payload: payloadJson } = json as { schema?: unknown; payload?: unknown });
  }
  const parsed = v.safeParse(PayloadSchema, payloadJson);
  if (!parsed.success) {
    const issue = parsed.issues[0];
    throw new PoisonError('NOT_ENVELOPE', `not a Debezium envelope: payload.${v.getDotPath(issue) ?? ''}: ${issue.message}`);
  }
  const payload = parsed.output;
  const s = payload.source;
  let columns = schemaText === undefined ? undefined : layouts.get(schemaText);
  if (!columns) {
    if (schemaText !== undefined) schemaJson = JSON.parse(schemaText);
    columns = layoutOf(schemaJson);
    if (schemaText !== undefined) {
      if (layouts.size >= MAX_CACHED_LAYOUTS) layouts.clear();
      layouts.set(schemaText, columns);
    }
  }
  const table: TableSchema = { schema: s.schema, table: s.table, columns };
  const unchanged = new Set(s.unchanged);
  const image = payload.op === 'd' ? payload.before : payload.after;
  if (!image && payload.op !== 't') throw new PoisonError('NOT_ENVELOPE', `op "${payload.op}" without its row image`);
  const row: TupleValue[] = payload.op === 't' ? [] : table.columns.map((c) => (unchanged.has(c.name) ? UNCHANGED : (image![c.name] ?? null)));
  table.columns.forEach((c, i) => {
    const value = row[i];
    if (typeof value === 'string' && !fits(c.typeOid, value)) {
      throw new PoisonError('BAD_VALUE', `${change0(s)}: column ${c.name} (type oid ${c.typeOid}) cannot hold ${JSON.stringify(value.slice(0, 80))}`);
    }
  });
  const op = ({ r: 'R', c: 'I', u: 'U', d: 'D', t: 'T' } as const)[payload.op];
  const commitTimeUs = s.ts_us !== undefined ? BigInt(s.ts_us) : BigInt(s.ts_ms) * 1000n;
  const change: Change = { op, table: `${s.schema}.${s.table}`, row, lsn: BigInt(s.lsn), seq: s.seq, commitTimeUs };
  if (s.txId !== undefined && s.txId !== null) change.xid = s.txId;
  return { change, table, pos: BigInt(s.pos_lsn), ord: s.pos_ord };
}

function change0(s: { schema: string; table: string; lsn: number }): string {
  return `${s.schema}.${s.table} at lsn ${s.lsn}`;
}

const INT_RANGE: Record<number, bigint> = { 21: 1n << 15n, 23: 1n << 31n, 20: 1n << 63n };
const FORMATS: Record<number, RegExp> = {
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
    const n = BigInt(value);
    return n >= -range && n < range;
  }
  return FORMATS[oid]?.test(value) ?? true;
}

/** The columns described by a schema block's `after` fields; a poison error when it has none usable. */
function layoutOf(schemaJson: unknown): ColumnSchema[] {
  const schema = v.safeParse(SchemaSchema, schemaJson);
  if (!schema.success) {
    const issue = schema.issues[0];
    throw new PoisonError('NOT_ENVELOPE', `not a Debezium envelope: schema.${v.getDotPath(issue) ?? ''}: ${issue.message}`);
  }
  const fieldsOf = schema.output.fields.find((f) => f.field === 'after')?.fields ?? [];
  const fields = v.safeParse(v.pipe(v.array(Field), v.minLength(1)), fieldsOf);
  if (!fields.success) throw new PoisonError('NOT_ENVELOPE', `schema.after has no usable column fields: ${fields.issues[0].message}`);
  return fields.output.map((f) => ({
    name: f.field,
    key: f.parameters['pg.key'] === 'true',
    typeOid: Number(f.parameters['pg.type_oid']),
    typeMod: Number(f.parameters['pg.type_mod']),
    ...(f.parameters['pg.user_type'] ? { userType: f.parameters['pg.user_type'] } : {}),
    ...(f.parameters['pg.attnum'] ? { attnum: Number(f.parameters['pg.attnum']) } : {}),
    ...(f.parameters['pg.missing'] !== undefined ? { missing: f.parameters['pg.missing'] } : {}),
    ...(f.parameters['pg.has_default'] === 'true' ? { hasDefault: true } : {}),
  }));
}

/** A message ducktail cannot apply: goes to the dead-letter topic with `code` and `message` in its headers. */
export class PoisonError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}
