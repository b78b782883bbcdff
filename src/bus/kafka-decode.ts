import { isAscii } from 'node:buffer';
import * as v from 'valibot';
import { type Change, type ColumnSchema, type TableSchema, type TupleValue, UNCHANGED } from '../change/index.ts';
import { PAYLOAD_AT, SCHEMA_START } from './kafka-encode.ts';
import { fits } from './kafka-fits.ts';
import { Walker, walkLayout } from './kafka-walk.ts';

export { fits };

/**
 * Reading events back (ours, or any producer's in the same envelope): the payload is validated with
 * valibot and the layout rebuilt from the schema block, cached by the block's bytes since it repeats in
 * every event of a table. A payload-only event (`eventSchema = "topic"`) names its layout in
 * `source.layout`, looked up among the blocks read from the schema topic (`registerLayout`); an id not
 * read yet throws LayoutMissing, so the caller reads the schema topic and decodes again.
 * Anything that does not fit is a PoisonError for the dead-letter topic.
 */

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
    layout: v.optional(v.string()),
  }),
});
const SchemaSchema = v.object({
  fields: v.pipe(v.array(v.object({ field: v.string(), fields: v.optional(v.array(v.unknown())) })), v.minLength(2)),
});
/** The whole envelope (for documentation and other readers; `decodeEvent` checks its two parts separately). */
export const EventSchema = v.object({ schema: SchemaSchema, payload: PayloadSchema });

const MAX_CACHED_LAYOUTS = 1000;
/** Column layouts by the exact text of their schema block: it repeats in every event of a table. */
const layouts = new Map<string, ColumnSchema[]>();
/** Column layouts by id, read from the schema topic (payload-only events name theirs in `source.layout`). */
const layoutsById = new Map<string, ColumnSchema[]>();

/** A payload-only event whose layout id has not been read from the schema topic (yet). */
export class LayoutMissing extends Error {
  constructor(readonly id: string) {
    super(`layout ${id} is not on the schema topic`);
  }
}

/** Takes one record of the schema topic (key = layout id, value = `{"topic", "schema"}`); false when it is not one. */
export function registerLayout(id: string, value: string): boolean {
  if (layoutsById.has(id)) return true;
  try {
    const json = JSON.parse(value) as { schema?: unknown };
    layoutsById.set(id, layoutOf(json.schema));
    return true;
  } catch {
    return false;
  }
}

/** Whether `id` was read from the schema topic. */
export function hasLayout(id: string): boolean {
  return layoutsById.has(id);
}

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

/** ducktail's own embedded events: the schema prefix (recently seen, or found by its bytes; the payload follows it); undefined for another shape. */
function splitOwn(value: Buffer): { bytes: Buffer; text: string } | undefined {
  if (value.length < 2 || value[value.length - 1] !== 0x7d) return undefined;
  let prefix = knownPrefix(value);
  if (!prefix) {
    if (value.compare(SCHEMA_START_BYTES, 0, SCHEMA_START_BYTES.length, 0, SCHEMA_START_BYTES.length) !== 0) return undefined;
    const at = value.indexOf(PAYLOAD_AT_BYTES);
    if (at <= 0) return undefined;
    const end = at + PAYLOAD_AT_BYTES.length;
    prefix = { bytes: Buffer.from(value.subarray(0, end)), text: value.toString('utf8', SCHEMA_START_BYTES.length, at) };
  }
  return prefix;
}

/** Keeps `prefix` first among the recently seen ones. */
function notePrefix(prefix: { bytes: Buffer; text: string }): void {
  if (recentPrefixes[0] !== prefix) {
    recentPrefixes.unshift(prefix);
    if (recentPrefixes.length > MAX_RECENT_PREFIXES) recentPrefixes.pop();
  }
}

const BEFORE_AT = Buffer.from('{"before":');
/** Whether the value starts as a payload-only event of ducktail's encoder (a byte loop: cheaper than a native compare here). */
function startsWithBefore(value: Buffer): boolean {
  if (value.length <= BEFORE_AT.length) return false;
  for (let i = 0; i < BEFORE_AT.length; i++) if (value[i] !== BEFORE_AT[i]) return false;
  return true;
}
function startsWithBeforeAt(data: Buffer, at: number): boolean {
  for (let i = 0; i < BEFORE_AT.length; i++) if (data[at + i] !== BEFORE_AT[i]) return false;
  return true;
}
let walked = 0;
/** Events read by the byte walker (the fast path) since the process started. */
export function fastDecodes(): number {
  return walked;
}
/** The layout of the last payload-only event the walker read, and its id's bytes: events come in runs of one table. */
let lastById: ColumnSchema[] | undefined;
let lastIdBytes: Buffer | undefined;
const walker = new Walker();

/**
 * The fast path for ducktail's own events (kafka-walk.ts): the payload at [start, end) of `data` walked
 * against its layout's shape, the row taken value by value. Undefined whenever the shape differs, and for
 * every case that is poison: the caller then decodes the value with JSON.parse and valibot, which decide
 * (and name the error) exactly as before. `columns` undefined: a payload-only event, its layout named by
 * `source.layout` (tried first with the last one's layout).
 */
function decodeWalked(data: Buffer, start: number, end: number, columns: ColumnSchema[] | undefined): Decoded | undefined {
  const d = walk(data, start, end, columns);
  walker.release(); // the fetched bytes are not kept past their event
  return d;
}
function walk(data: Buffer, start: number, end: number, columns: ColumnSchema[] | undefined): Decoded | undefined {
  let cols = columns ?? lastById;
  let l = cols && walkLayout(cols);
  let ok = l !== undefined && walker.scan(data, start, end, l);
  if (columns === undefined && !(ok && walker.layoutIs(lastIdBytes))) {
    // Another layout than the last one's: its id read from the event (a guess the walk confirms).
    const id = ok ? walker.layoutId() : layoutIdIn(data, start, end);
    cols = id === undefined ? undefined : layoutsById.get(id);
    if (!cols) return undefined; // not read from the schema topic (yet): the slow path says LayoutMissing or poison
    l = walkLayout(cols);
    if (!l || !walker.scan(data, start, end, l) || walker.layoutId() !== id) return undefined;
    lastIdBytes = Buffer.from(id!);
    lastById = cols;
    ok = true;
  }
  if (!ok) return undefined;
  const row = walker.take();
  if (!row) return undefined;
  const table = tableOf(walker.schema, walker.table, cols!);
  const change: Change = {
    op: OP_BY_CODE[walker.op]!, table: lastTableName!, row, lsn: big(walker.lsn, 1), seq: walker.seq, commitTimeUs: big(walker.tsUs, 0),
  };
  if (walker.txId !== null) change.xid = walker.txId;
  walked++;
  return { change, table, pos: big(walker.posLsn, 2), ord: walker.posOrd };
}

const LAYOUT_AT = Buffer.from(',"layout":"');
/** The layout id a payload-only event names, found from its end (a guess: the walk confirms it). */
function layoutIdIn(data: Buffer, start: number, end: number): string | undefined {
  const at = data.lastIndexOf(LAYOUT_AT, end - LAYOUT_AT.length);
  if (at < start) return undefined;
  const from = at + LAYOUT_AT.length;
  const to = data.indexOf(0x22, from);
  return to < 0 || to >= end ? undefined : data.toString('utf8', from, to);
}

const OP_OF = { r: 'R', c: 'I', u: 'U', d: 'D', t: 'T' } as const;
/** OP_OF by the op letter's character code. */
const OP_BY_CODE: Change['op'][] = [];
for (const [k, op] of Object.entries(OP_OF)) OP_BY_CODE[k.charCodeAt(0)] = op;

/**
 * `decodeEvent` of the value at [start, end) of `data` (a fetched batch's records): a payload-only
 * event of ducktail's encoder is read from there without a subarray; anything else as `decodeEvent` reads it.
 */
export function decodeEventIn(data: Buffer, start: number, end: number): Decoded {
  let tried = false;
  if (end - start > BEFORE_AT.length && startsWithBeforeAt(data, start)) {
    const d = decodeWalked(data, start, end, undefined);
    if (d) return d;
    tried = true;
  }
  // The fast path for payload-only events was tried (and only applies to them): the general way decides, as in decodeEvent.
  return decodeEvent(data.subarray(start, end), !tried);
}

/** Parses and validates one value; throws a message for the dead-letter headers when it is not a ducktail event. */
export function decodeEvent(raw: Buffer | string, fast = true): Decoded {
  const value = typeof raw === 'string' ? Buffer.from(raw) : raw;
  // ducktail's own payload-only events: the strict scanner, else JSON.parse below.
  if (fast && startsWithBefore(value)) {
    const d = decodeWalked(value, 0, value.length, undefined);
    if (d) return d;
  }
  // ducktail's own embedded events: read only the payload and look the layout up by the schema block (its bytes, then its text).
  const own = splitOwn(value);
  let schemaText: string | undefined;
  let payloadJson: unknown;
  if (own) {
    const columns = fast ? layouts.get(own.text) : undefined;
    const d = columns ? decodeWalked(value, own.bytes.length, value.length - 1, columns) : undefined;
    if (d) {
      notePrefix(own);
      return d;
    }
    try {
      payloadJson = JSON.parse(value.toString('utf8', own.bytes.length, value.length - 1));
      schemaText = own.text;
      notePrefix(own);
    } catch {
      // not our layout after all: read it whole
    }
  }
  let schemaJson: unknown;
  let byId: string | undefined;
  if (schemaText === undefined) {
    let json: unknown;
    try {
      // ASCII (nearly every event): read the bytes as Latin-1, a plain copy, instead of decoding UTF-8.
      json = JSON.parse(isAscii(value) ? (value as unknown as Latin1).latin1Slice(0, value.length) : value.toString());
    } catch (e) {
      throw new PoisonError('NOT_JSON', `value is not JSON: ${(e as Error).message}`);
    }
    if (typeof json !== 'object' || json === null) throw new PoisonError('NOT_ENVELOPE', 'not a Debezium envelope: not an object');
    const j = json as { schema?: unknown; payload?: unknown; source?: { layout?: unknown } };
    if (j.payload === undefined && j.schema === undefined && typeof j.source?.layout === 'string') {
      payloadJson = json; // payload only (schemas.enable=false), its layout on the schema topic
      byId = j.source.layout;
    } else ({ schema: schemaJson, payload: payloadJson } = j);
  }
  const payload = quickPayload(payloadJson) ?? validPayload(payloadJson);
  const s = payload.source;
  let columns = schemaText === undefined ? undefined : layouts.get(schemaText);
  if (byId !== undefined) {
    columns = layoutsById.get(byId);
    if (!columns) throw new LayoutMissing(byId);
  }
  if (!columns) {
    if (schemaText !== undefined) schemaJson = JSON.parse(schemaText);
    columns = layoutOf(schemaJson);
    if (schemaText !== undefined) {
      if (layouts.size >= MAX_CACHED_LAYOUTS) layouts.clear();
      layouts.set(schemaText, columns);
    }
  }
  const table = tableOf(s.schema, s.table, columns);
  const unchanged = s.unchanged && s.unchanged.length > 0 ? new Set(s.unchanged) : undefined;
  const image = payload.op === 'd' ? payload.before : payload.after;
  if (!image && payload.op !== 't') throw new PoisonError('NOT_ENVELOPE', `op "${payload.op}" without its row image`);
  const row: TupleValue[] = [];
  if (payload.op !== 't') {
    for (let i = 0; i < columns.length; i++) {
      const c = columns[i]!;
      if (unchanged?.has(c.name)) {
        row.push(UNCHANGED);
        continue;
      }
      const value = image![c.name] ?? null;
      if (value !== null && !fits(c.typeOid, value)) {
        throw new PoisonError('BAD_VALUE', `${change0(s)}: column ${c.name} (type oid ${c.typeOid}) cannot hold ${JSON.stringify(value.slice(0, 80))}`);
      }
      row.push(value);
    }
  }
  const op = OP_OF[payload.op];
  const commitTimeUs = s.ts_us !== undefined ? big(s.ts_us, 0) : BigInt(s.ts_ms) * 1000n;
  const change: Change = { op, table: tableNames.get(table)!, row, lsn: big(s.lsn, 1), seq: s.seq, commitTimeUs };
  if (s.txId !== undefined && s.txId !== null) change.xid = s.txId;
  return { change, table, pos: big(s.pos_lsn, 2), ord: s.pos_ord };
}

type Payload = v.InferOutput<typeof PayloadSchema>;

/** Bun's (and Node's) undocumented Buffer method behind toString('latin1'), without its argument handling. */
type Latin1 = { latin1Slice(start: number, end: number): string };

/** One TableSchema per layout and table name (events of a table share it; nothing downstream changes it). */
const tables = new WeakMap<ColumnSchema[], Map<string, TableSchema>>();
const tableNames = new WeakMap<TableSchema, string>();
let lastTable: TableSchema | undefined;
/** lastTable's "schema.table". */
let lastTableName: string | undefined;
function tableOf(schema: string, table: string, columns: ColumnSchema[]): TableSchema {
  // Events come in runs of one table: the last one answers most calls without building its name.
  if (lastTable && lastTable.columns === columns && lastTable.table === table && lastTable.schema === schema) return lastTable;
  lastTable = tableOfNamed(schema, table, columns);
  lastTableName = tableNames.get(lastTable)!;
  return lastTable;
}

function tableOfNamed(schema: string, table: string, columns: ColumnSchema[]): TableSchema {
  let byName = tables.get(columns);
  if (!byName) tables.set(columns, (byName = new Map()));
  const name = `${schema}.${table}`;
  let t = byName.get(name);
  if (!t) {
    if (byName.size >= MAX_CACHED_LAYOUTS) byName.clear();
    byName.set(name, (t = { schema, table, columns }));
    tableNames.set(t, name);
  }
  return t;
}

/** The last number converted in each of three slots (commit time, lsn, order lsn): events of one transaction repeat them. */
const lastNumber = [Number.NaN, Number.NaN, Number.NaN];
const lastBig = [0n, 0n, 0n];
function big(n: number, slot: number): bigint {
  if (lastNumber[slot] !== n) {
    lastNumber[slot] = n;
    lastBig[slot] = BigInt(n);
  }
  return lastBig[slot]!;
}

/** The payload checked by valibot; a poison error naming the first issue. */
function validPayload(json: unknown): Payload {
  const parsed = v.safeParse(PayloadSchema, json);
  if (!parsed.success) {
    const issue = parsed.issues[0];
    throw new PoisonError('NOT_ENVELOPE', `not a Debezium envelope: payload.${v.getDotPath(issue) ?? ''}: ${issue.message}`);
  }
  return parsed.output;
}

const OP_CODES = new Set(['r', 'c', 'u', 'd', 't']);
const isCount = (x: unknown): boolean => typeof x === 'number' && Number.isInteger(x) && x >= 0;
function isRow(x: unknown): boolean {
  if (x === null) return true;
  if (typeof x !== 'object' || Array.isArray(x)) return false;
  for (const key in x) {
    const value = (x as Record<string, unknown>)[key];
    if (value !== null && typeof value !== 'string') return false;
  }
  return true;
}

/**
 * The same checks as PayloadSchema (or stricter), without valibot's per-call cost: it runs for every
 * event. Undefined when anything differs; valibot then decides, and names the issue.
 */
function quickPayload(json: unknown): Payload | undefined {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return undefined;
  const p = json as Record<string, unknown>;
  const src = p.source as Record<string, unknown> | null | undefined;
  if (!isRow(p.before) || !isRow(p.after) || typeof p.op !== 'string' || !OP_CODES.has(p.op)) return undefined;
  if (typeof src !== 'object' || src === null || Array.isArray(src)) return undefined;
  if (typeof src.schema !== 'string' || typeof src.table !== 'string') return undefined;
  if (!isCount(src.lsn) || !isCount(src.seq) || !isCount(src.pos_lsn) || !isCount(src.pos_ord) || !isCount(src.ts_ms)) return undefined;
  if (src.ts_us !== undefined && !isCount(src.ts_us)) return undefined;
  if (src.txId !== undefined && src.txId !== null && !isCount(src.txId)) return undefined;
  if (src.unchanged !== undefined && !(Array.isArray(src.unchanged) && src.unchanged.every((u) => typeof u === 'string'))) return undefined;
  if (src.layout !== undefined && typeof src.layout !== 'string') return undefined;
  return json as Payload;
}

function change0(s: { schema: string; table: string; lsn: number }): string {
  return `${s.schema}.${s.table} at lsn ${s.lsn}`;
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
