import {
  type API,
  type Consumer,
  compressionsAlgorithmsByBitmask,
  createAPI,
  fetchV12,
  fetchV13,
  fetchV14,
  fetchV15,
  fetchV16,
  fetchV17,
  kGetApi,
  type Reader,
  ResponseError,
  readKnownTaggedFields,
} from '@platformatic/kafka';

/**
 * The consumer's Fetch responses read with ducktail's own record-batch reader. The client's
 * `readRecordsBatch` reads every field through its DynamicBuffer (a tuple per varint), and builds an
 * object with seven fields and a headers array per record: ~1.1 µs a row of the JS thread
 * (docs/PERFORMANCE.md, sixth pass). Here the records section of each partition is one contiguous
 * Buffer, read with plain byte loops; a record is `{ offsetDelta, key, value }` with key and value as
 * subarrays of it (no copies), headers and timestamps skipped (nothing reads them). Everything else of
 * the response (topics, partitions, error codes, watermarks, tagged fields) is read as the client's
 * parser for the same version reads it, and the response has the client's shape, so the client's
 * fetch (sessions, retries, metadata refresh) runs unchanged: it is given this parser through its own
 * API lookup (`useOwnRecordReader`). Batches are read as the client reads them: complete ones only
 * (a broker may cut the last one at the byte limit), compressed ones through the client's codecs, the
 * CRC not checked (the client does not either; TCP and the brokers' own checks cover transport).
 * Record format: https://kafka.apache.org/documentation/#recordbatch.
 */

/**
 * One record, its key and value where they lie in `data` (the batch's records, in the section or
 * decompressed): `key` and `value` make their subarrays only when asked for. The consumer decodes the
 * value straight from `data` (decodeEventIn): two Buffer objects a record less to allocate and collect.
 */
export class FetchedRecord {
  constructor(
    readonly data: Buffer,
    readonly offsetDelta: number,
    /** -1: a null key. */
    private readonly keyAt: number,
    private readonly keyEnd: number,
    /** -1: a null value. */
    readonly valueAt: number,
    readonly valueEnd: number,
  ) {}

  get key(): Buffer | null {
    return this.keyAt < 0 ? null : this.data.subarray(this.keyAt, this.keyEnd);
  }

  get value(): Buffer | null {
    return this.valueAt < 0 ? null : this.data.subarray(this.valueAt, this.valueEnd);
  }
}

export interface FetchedBatch {
  firstOffset: bigint;
  records: FetchedRecord[];
}

/** FirstOffset (8) + Length (4): a batch's length counts from after these. */
const BATCH_HEAD = 12;
/** Bytes of a v2 batch before its first record (header through the records count). */
const RECORDS_AT = 61;
const COMPRESSION_MASK = 0x07;

/** A cursor over one contiguous buffer. */
class Bytes {
  pos = 0;
  constructor(readonly buf: Buffer) {}

  /** A zigzag varint (Kafka's signed varint), up to 32 bits. */
  varint(): number {
    const buf = this.buf;
    let shift = 0;
    let n = 0;
    for (;;) {
      if (this.pos >= buf.length) throw new RangeError('record batch: a varint runs past the end of its batch');
      const b = buf[this.pos++]!;
      n |= (b & 0x7f) << shift;
      if ((b & 0x80) === 0) break;
      shift += 7;
      if (shift > 28) throw new RangeError('record batch: a varint longer than 5 bytes');
    }
    return (n >>> 1) ^ -(n & 1);
  }

  /** Skips a varlong (a record's timestamp delta). */
  skipVarlong(): void {
    const buf = this.buf;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= buf.length) throw new RangeError('record batch: a varint runs past the end of its batch');
      if ((buf[this.pos++]! & 0x80) === 0) return;
    }
    throw new RangeError('record batch: a varlong longer than 10 bytes');
  }

  /** Skips varint-length-prefixed bytes; where they start (-1 = null). They end at `pos`. */
  bytes(): number {
    const n = this.varint();
    if (n < 0) return -1;
    const from = this.pos;
    this.pos += n;
    if (this.pos > this.buf.length) throw new RangeError('record batch: bytes run past the end of their batch');
    return from;
  }
}

/** The complete record batches of one partition's records section. */
export function readBatches(section: Buffer): FetchedBatch[] {
  const out: FetchedBatch[] = [];
  let at = 0;
  while (section.length - at >= BATCH_HEAD && section.length - at - BATCH_HEAD >= section.readInt32BE(at + 8)) {
    const length = section.readInt32BE(at + 8);
    out.push(readBatch(section, at, BATCH_HEAD + length));
    at += BATCH_HEAD + length;
  }
  return out;
}

function readBatch(section: Buffer, at: number, size: number): FetchedBatch {
  if (size < RECORDS_AT) throw new RangeError(`record batch: ${size} bytes, shorter than its header`);
  const firstOffset = section.readBigInt64BE(at);
  const attributes = section.readInt16BE(at + 21);
  const count = section.readInt32BE(at + 57);
  let records = section.subarray(at + RECORDS_AT, at + size);
  const compression = attributes & COMPRESSION_MASK;
  if (compression !== 0) {
    const codec = compressionsAlgorithmsByBitmask[compression];
    if (!codec) throw new Error(`record batch: unsupported compression (attributes ${attributes})`);
    const plain = codec.decompressSync(records) as Buffer | { buffer: Buffer };
    records = Buffer.isBuffer(plain) ? plain : plain.buffer;
  }
  const r = new Bytes(records);
  const list: FetchedRecord[] = new Array(Math.max(0, count));
  for (let i = 0; i < count; i++) {
    const length = r.varint();
    const end = r.pos + length;
    r.pos++; // attributes
    r.skipVarlong(); // timestamp delta
    const offsetDelta = r.varint();
    const keyAt = r.bytes();
    const keyEnd = r.pos;
    const valueAt = r.bytes();
    const valueEnd = r.pos;
    if (end > records.length || r.pos > end) throw new RangeError('record batch: a record runs past its length');
    r.pos = end; // headers: nothing reads them
    list[i] = new FetchedRecord(records, offsetDelta, keyAt, keyEnd, valueAt, valueEnd);
  }
  return { firstOffset, records: list };
}

type FetchResponse = Awaited<ReturnType<Consumer['fetch']>>;

/**
 * Scratch memory for the records sections that span socket chunks (most of them: a section is up to 1 MB,
 * the socket delivers 64 kB chunks). A fresh Buffer per section cost ~0.3 µs a row for its copy, mostly page
 * faults of new memory; sections are copied into an arena that is reused once the response's records are
 * decoded (`releaseRecords`). A response never released (an error on the way) leaves its arena to the GC.
 */
const ARENA_BYTES = 10 << 20; // a whole response's sections: the consumer asks for at most 8 MB
const MAX_FREE_ARENAS = 4;
const freeArenas: Buffer[] = [];
const arenas = new WeakMap<object, { buf: Buffer; used: number }>();

/** Chunk list of a DynamicBuffer (the response as it arrived), or the one Buffer. */
type Chunks = Buffer | { buffers: Buffer[]; slice(start: number, end: number): Buffer };

/**
 * Bytes [start, end) of `data` as one Buffer: a subarray when they lie in one chunk, else a copy in the
 * arena of `owner` (the response object), or in fresh memory when the arena is full.
 */
export function sectionOf(data: Chunks, start: number, end: number, owner: object): Buffer {
  if (Buffer.isBuffer(data)) return data.subarray(start, end);
  const chunks = data.buffers;
  let i = 0;
  let base = 0;
  while (i < chunks.length && base + chunks[i]!.length <= start) base += chunks[i++]!.length;
  if (i >= chunks.length) return data.slice(start, end); // out of bounds: the client's error
  if (end - base <= chunks[i]!.length) return chunks[i]!.subarray(start - base, end - base);
  const size = end - start;
  let arena = arenas.get(owner);
  if (!arena) arenas.set(owner, (arena = { buf: freeArenas.pop() ?? Buffer.allocUnsafe(ARENA_BYTES), used: 0 }));
  if (arena.used + size > arena.buf.length) return data.slice(start, end);
  const out = arena.buf.subarray(arena.used, arena.used + size);
  arena.used += size;
  for (let at = 0, pos = start; at < size; i++) {
    const c = chunks[i]!;
    const from = pos - base;
    const n = Math.min(c.length - from, size - at);
    c.copy(out, at, from, from + n);
    at += n;
    pos += n;
    base += c.length;
  }
  return out;
}

/**
 * Gives the memory of `response`'s records back for the next responses: call once nothing reads its
 * records any more (values decoded into strings, poison values copied).
 */
export function releaseRecords(response: object): void {
  const arena = arenas.get(response);
  if (!arena) return;
  arenas.delete(response);
  if (freeArenas.length < MAX_FREE_ARENAS && arena.buf.length === ARENA_BYTES) freeArenas.push(arena.buf);
}

/**
 * The client's Fetch response parser for `version` (12-17, read as in its fetch-vNN.js) with the
 * records read by `readBatches`.
 */
function parser(version: number) {
  return (_correlationId: number, apiKey: number, apiVersion: number, reader: Reader): FetchResponse => {
    const errors: [string, [number, null]][] = [];
    /** Holds the arena of this response's sections until the response object exists. */
    const owner = {};
    const throttleTimeMs = reader.readInt32();
    const errorCode = reader.readInt16();
    if (errorCode !== 0) errors.push([version >= 15 ? '' : '/', [errorCode, null]]);
    const response = {
      throttleTimeMs,
      errorCode,
      sessionId: reader.readInt32(),
      ...(version >= 16 ? { nodeEndpoints: [] as unknown[] } : {}),
      responses: reader.readArray((r: Reader, i: number) => ({
        topicId: version === 12 ? r.readString() : r.readUUID(),
        partitions: r.readArray((r: Reader, j: number) => {
          const partition = {
            partitionIndex: r.readInt32(),
            errorCode: r.readInt16(),
            highWatermark: r.readInt64(),
            lastStableOffset: r.readInt64(),
            logStartOffset: r.readInt64(),
            divergingEpoch: { epoch: -1, endOffset: -1n },
            currentLeader: { leaderId: -1, leaderEpoch: -1 },
            snapshotId: { endOffset: -1n, epoch: -1 },
            abortedTransactions: r.readNullableArray((r: Reader) => ({ producerId: r.readInt64(), firstOffset: r.readInt64() })),
            preferredReadReplica: r.readInt32(),
            records: [] as FetchedBatch[] | null,
          };
          if (partition.errorCode !== 0) errors.push([`/responses/${i}/partitions/${j}`, [partition.errorCode, null]]);
          // COMPACT_RECORDS: the size plus one, 0 = null.
          let size = r.readUnsignedVarInt();
          if (size === 0) partition.records = null;
          if (size > 1) {
            size--;
            partition.records = readBatches(sectionOf(r.buffer as unknown as Chunks, r.position, r.position + size, owner));
            r.skip(size);
          }
          readKnownTaggedFields(r, {
            0: (r: Reader) => {
              partition.divergingEpoch = { epoch: r.readInt32(), endOffset: r.readInt64() };
            },
            1: (r: Reader) => {
              partition.currentLeader = { leaderId: r.readInt32(), leaderEpoch: r.readInt32() };
            },
            2: (r: Reader) => {
              partition.snapshotId = { endOffset: r.readInt64(), epoch: r.readInt32() };
            },
          });
          return partition;
        }, true, false),
      })),
    };
    readKnownTaggedFields(
      reader,
      version >= 16
        ? {
            0: (r: Reader) => {
              (response as { nodeEndpoints?: unknown[] }).nodeEndpoints = r.readArray((r: Reader) => ({
                nodeId: r.readInt32(), host: r.readString(), port: r.readInt32(), rack: r.readNullableString(),
              }));
            },
          }
        : {},
    );
    const arena = arenas.get(owner);
    if (arena) arenas.set(response, arena); // released with the response (the caller's releaseRecords)
    if (errors.length) throw new ResponseError(apiKey, apiVersion, Object.fromEntries(errors), response);
    return response as unknown as FetchResponse;
  };
}

const REQUESTS: Record<number, { createRequest: (...args: never[]) => unknown }> = {
  12: fetchV12, 13: fetchV13, 14: fetchV14, 15: fetchV15, 16: fetchV16, 17: fetchV17,
};
const apis = new Map<number, API<unknown[], FetchResponse>>();

/** The Fetch API at `version` with this module's record reader; undefined for a version it does not read (the client's then). */
export function ownFetchApi(version: number): API<unknown[], FetchResponse> | undefined {
  let api = apis.get(version);
  if (!api) {
    const request = REQUESTS[version];
    if (!request) return undefined;
    api = createAPI(1, version, request.createRequest as never, parser(version) as never) as unknown as API<unknown[], FetchResponse>;
    apis.set(version, api);
  }
  return api;
}

/** Makes `consumer` read its Fetch responses with `readBatches` (at the version it negotiated, when it is one of 12-17). */
export function useOwnRecordReader(consumer: Consumer): void {
  const client = consumer as unknown as Record<typeof kGetApi, (name: string, cb: (e: Error | null, api?: API<unknown[], unknown>) => void) => void>;
  const lookup = client[kGetApi].bind(consumer);
  client[kGetApi] = (name, cb) =>
    lookup(name, (e, api) => {
      if (e || name !== 'Fetch' || !api) return cb(e, api);
      cb(null, (ownFetchApi(api.version) as API<unknown[], unknown> | undefined) ?? api);
    });
}
