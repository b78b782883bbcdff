import type { Duplex } from 'node:stream';
import type { Sql } from 'postgres';
import type { Change, ChangeBatch, ColumnSchema, TableSchema } from '../change/index.ts';
import { WireChange } from '../change/wire.ts';
import { AppError, RecopyNeeded } from '../errors.ts';
import { formatLsn } from './lsn.ts';
import { decodePgoutput, decodeReplication, decodeRowWire, encodeStandbyStatusUpdate, pgEpochUsToUnixUs, type WireRowMessage } from './pgoutput.ts';
import type { CatalogCheck } from './recopy.ts';
import type { PgoutputMessage, Relation } from './types.ts';

/** Settings of the replication stream. */
export interface StreamOptions {
  slot: string;
  publication: string;
  /** "schema.table" names to keep; changes of other tables in the publication are skipped. */
  tables: Set<string>;
  batchRows: number;
  batchMs: number;
  /** Cut a batch as soon as nothing more is waiting to be read and no batch is in flight. */
  batchAdaptive: boolean;
  statusIntervalMs: number;
  /**
   * A connection silent this long while ducktail waits to read is taken as dead (a network cut that
   * left no reset): it is dropped and the source reconnects. Half-way, a status update asks the server
   * for a reply. 0 = never (then a silent cut lasts until TCP gives up, minutes).
   */
  receiveTimeoutMs?: number;
  /** A newly durable position is confirmed to PostgreSQL at most this often (sooner than status_interval_ms). */
  confirmIntervalMs: number;
  /**
   * Batches the bus accepts before the earlier ones are durable (it keeps their order, Kafka); they are
   * still confirmed strictly in order. Unset: one publish at a time (inline: each is a warehouse apply).
   */
  publishAhead?: number;
  /**
   * Keep the values of inserts, updates and deletes as pgoutput's bytes (WireChange, src/change/wire.ts):
   * strings are made only if something reads `row`. For a bus that carries the bytes (Kafka).
   */
  wireRows?: boolean;
  /** Position the slot has confirmed already: never report less. */
  confirmedLsn: bigint;
  /** Where START_REPLICATION starts (0 = the slot's confirmed position). */
  startLsn: bigint;
  /** Ask for logical messages (PostgreSQL 14+): the heartbeat's transactions then reach the stream. */
  messages: boolean;
  /** Resolves domains to base types and names enums, composites and ranges (catalog lookups, cached). */
  resolveColumns?: (relationId: number, columns: ColumnSchema[]) => Promise<ColumnSchema[]>;
  /** Changes of a table with a commit LSN below its entry are skipped: that table was copied as of it. */
  skipBefore?: Map<string, bigint>;
  /** Following the whole publication: a change of a table not in `tables` makes it copied (RecopyNeeded). */
  follow?: boolean;
  /**
   * Run every `everyMs` while nothing is pending or in flight (caught up): tables to copy
   * (RecopyNeeded ends the stream), layouts to send to the warehouse (DDL without DML).
   */
  idleCheck?: { everyMs: number; run(): Promise<CatalogCheck> };
  /**
   * Tables to copy while the stream goes on (a table that joined the publication): returns true when it
   * took them (they are then in `tables` with a `skipBefore` entry), false to end the stream (RecopyNeeded).
   */
  onRecopy?(tables: string[]): boolean;
}

/** Observable state of the stream, for /readyz and /metrics. */
export interface StreamState {
  receivedLsn: bigint;
  flushedLsn: bigint;
  lastMessageAt: number;
  lastCommitTimeUs: bigint;
  /** Changes read from the slot and not yet handed to the bus. */
  pendingChanges: number;
  /** Batches handed to the bus and not yet durable (at most MAX_INFLIGHT while the socket is read). */
  inflightBatches: number;
  /** Commit time (µs since the Unix epoch) of the oldest transaction received and not yet confirmed; 0n when none. */
  unconfirmedSinceUs: bigint;
  /** Highest commit LSN of a transaction whose Begin was received (a re-copy hands over past it). */
  lastFinalLsn?: bigint;
}

/** A stream's state before it has read anything. */
export function emptyStreamState(): StreamState {
  return { receivedLsn: 0n, flushedLsn: 0n, lastMessageAt: 0, lastCommitTimeUs: 0n, pendingChanges: 0, inflightBatches: 0, unconfirmedSinceUs: 0n };
}

/** Bytes of an XLogData's header before its pgoutput message: 'w', WAL start, WAL end, send time. */
const XLOG_HEADER = 25;

/** Insert, Update or Delete: 'I', 'U', 'D'. */
function isRowTag(tag: number): boolean {
  return tag === 0x49 || tag === 0x55 || tag === 0x44;
}

/** Batches handed to the bus but not yet durable; beyond this the socket is not read (invariant 6). */
const MAX_INFLIGHT = 2;

/** Bytes of received messages queued before the socket is paused (the stream's readable buffer did this before). */
const RECEIVE_HIGH_WATER = 64 * 1024;

/**
 * The CopyData payloads of the replication stream, taken from postgres.js as it parses them (its
 * `stream.push`), without the Readable's buffering and one async-iterator step per message: at ~1M
 * messages per catch-up that machinery was a good part of the JS thread. Past RECEIVE_HIGH_WATER bytes
 * the push reports "full" and postgres.js pauses the socket; taking the queue empty resumes it.
 */
class Received {
  items: Buffer[] = [];
  head = 0;
  ended = false;
  /** Why the stream was destroyed, when postgres.js gave a reason (a broken connection, a server error). */
  error: unknown = null;
  private bytes = 0;
  private paused = false;
  private wake: (() => void) | null = null;

  constructor(private readonly stream: Duplex) {
    const end = stream.push.bind(stream);
    stream.push = (chunk: Buffer | null): boolean => {
      if (chunk === null) {
        this.ended = true;
        this.notify();
        const r = end(null);
        stream.read(); // lets the Readable side emit 'end' (its buffer is empty: the hook took every message)
        return r;
      }
      this.items.push(chunk);
      this.bytes += chunk.length;
      if (this.items.length - this.head === 1) this.notify();
      if (this.bytes < RECEIVE_HIGH_WATER) return true;
      this.paused = true;
      return false;
    };
    // An error or a destroy (postgres.js on a broken connection, or the loop's own) ends the reading.
    stream.on('close', () => {
      this.ended = true;
      this.notify();
    });
    stream.on('error', (e) => {
      this.error ??= e;
    });
    // What postgres.js parsed before the hook was set (the same socket read as CopyBothResponse) waits in the
    // Readable's buffer, one chunk per read(); and the socket may have been paused for it.
    for (let c = stream.read() as Buffer | null; c !== null; c = stream.read() as Buffer | null) {
      this.items.push(c);
      this.bytes += c.length;
    }
    // With nothing left there, read() has resumed the socket (postgres.js's read: socket.resume()).
    this.paused = this.items.length > 0;
  }

  /** Messages received and not yet taken. */
  waiting(): number {
    return this.items.length - this.head;
  }

  take(): Buffer {
    const chunk = this.items[this.head]!;
    this.items[this.head++] = EMPTY;
    this.bytes -= chunk.length;
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
      if (this.paused && !this.ended) {
        this.paused = false;
        (this.stream as unknown as { _read(n: number): void })._read(RECEIVE_HIGH_WATER); // postgres.js: socket.resume()
      }
    }
    return chunk;
  }

  /** Resolves when a message arrives or the stream ends. */
  next(): Promise<void> {
    if (this.waiting() > 0 || this.ended) return Promise.resolve();
    return new Promise((resolve) => {
      this.wake = resolve;
    });
  }

  private notify(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }
}

const EMPTY = Buffer.alloc(0);

interface OpenTransaction {
  finalLsn: bigint;
  commitTimeUs: bigint;
  seq: number;
  xid: number;
}

/**
 * Reads pgoutput from the slot, cuts it into batches (batchRows changes or batchMs of age),
 * publishes each batch and confirms to PostgreSQL only what the bus reported durable.
 * The acknowledgement protocol is specified in src/source/README.md.
 */
export async function streamChanges(
  repl: Sql,
  opts: StreamOptions,
  publish: (batch: ChangeBatch) => Promise<void>,
  state: StreamState,
  signal: AbortSignal,
): Promise<void> {
  const stream = await repl
    .unsafe(
      `START_REPLICATION SLOT ${opts.slot} LOGICAL ${formatLsn(opts.startLsn)} ` +
        `(proto_version '1', publication_names '${opts.publication}'${opts.messages ? ", messages 'true'" : ''})`,
    )
    .writable();
  state.flushedLsn = opts.confirmedLsn;
  const received = new Received(stream as unknown as Duplex);
  const relations = new Map<number, TableSchema & { name: string }>();
  let tx: OpenTransaction | null = null;
  let pending: Change[] = [];
  let pendingTables = new Map<string, TableSchema>();
  let pendingAck: bigint | undefined;
  let pendingSince = 0;
  let inflight: Promise<void> = Promise.resolve();
  let inflightCount = 0;
  const maxInflight = Math.max(MAX_INFLIGHT, opts.publishAhead ?? 0);
  /** Completion of each batch in flight, oldest first (batches complete in order). */
  const inflightDone: Promise<void>[] = [];
  let failure: unknown = null;
  let lastStatusAt = 0;
  let lastSentFlushed = -1n;
  /** Since when the loop waits for the socket (null while it handles a message or waits for the bus). */
  let waitingSince: number | null = null;
  let pinged = false;
  /** Commits received and not yet confirmed, oldest first: (endLsn, commit time) for the lag in seconds. */
  const unconfirmed: { endLsn: bigint; commitTimeUs: bigint }[] = [];
  state.unconfirmedSinceUs = 0n;
  const confirmed = (lsn: bigint) => {
    if (lsn > state.flushedLsn) state.flushedLsn = lsn;
    while (unconfirmed.length > 0 && unconfirmed[0]!.endLsn <= state.flushedLsn) unconfirmed.shift();
    state.unconfirmedSinceUs = unconfirmed[0]?.commitTimeUs ?? 0n;
  };

  const sendStatus = (replyRequested = false) => {
    lastStatusAt = Date.now();
    const flushed = state.flushedLsn;
    lastSentFlushed = flushed;
    const msg = encodeStandbyStatusUpdate({
      written: state.receivedLsn > flushed ? state.receivedLsn : flushed,
      flushed,
      applied: flushed,
      clockUs: (BigInt(Date.now()) - 946_684_800_000n) * 1000n,
      replyRequested,
    });
    if (!stream.destroyed) stream.write(Buffer.from(msg));
  };

  /** Hands the pending changes to the bus; batches are published strictly in order. */
  const flush = (): Promise<void> => {
    if (pending.length === 0 && pendingAck === undefined) return inflight;
    const batch: ChangeBatch = { tables: pendingTables, changes: pending };
    if (pendingAck !== undefined) batch.ackLsn = pendingAck;
    pending = [];
    state.pendingChanges = 0;
    pendingTables = new Map();
    pendingAck = undefined;
    return enqueue(batch);
  };

  /**
   * Chains one publish after the batches in flight (strictly in order); a failure ends the stream.
   * A batch carrying an ackLsn is confirmed once durable, and promptly reported to the server.
   */
  const enqueue = (batch: ChangeBatch): Promise<void> => {
    state.inflightBatches = ++inflightCount;
    const early = opts.publishAhead ? publish(batch) : undefined; // sent while the ones before are acknowledged
    early?.catch(() => {}); // awaited below, in order
    inflight = inflight.then(async () => {
      try {
        if (failure) return;
        await (early ?? publish(batch));
        if (batch.ackLsn !== undefined) confirmed(batch.ackLsn);
      } catch (e) {
        failure = e;
        stream.destroy();
      } finally {
        state.inflightBatches = --inflightCount;
        inflightDone.shift();
      }
      // Prompt confirm: a durable position reaches the server within opts.confirmIntervalMs, not status_interval_ms.
      if (!failure && state.flushedLsn > lastSentFlushed && Date.now() - lastStatusAt >= opts.confirmIntervalMs) sendStatus();
      cutIfIdle();
    });
    inflightDone.push(inflight);
    return inflight;
  };

  /**
   * Backpressure without stalling the decoder: reading goes on while fewer than MAX_INFLIGHT batches
   * are in flight, so the next batch is decoded while DuckDB (off the JS thread) applies the previous.
   */
  const room = async (): Promise<void> => {
    while (inflightCount >= maxInflight && !failure && inflightDone.length > 0) await inflightDone[0];
  };

  /**
   * Adaptive batching: complete transactions are handed over as soon as nothing more is waiting to be
   * read and no batch is in flight, so a quiet stream gets small, fresh batches and a busy one big
   * batches (what arrived while the previous one was applied); batch_rows and batch_ms stay upper bounds.
   * A bus that takes batches ahead (Kafka) gets them while one is in flight: it sends what queued together.
   */
  const cutIfIdle = () => {
    if (!opts.batchAdaptive || failure || pendingAck === undefined || inflightCount >= (opts.publishAhead ? maxInflight : 1)) return;
    if (received.waiting() > 0) return;
    void flush();
  };

  const note = () => {
    if (pending.length === 0 && pendingAck === undefined) pendingSince = Date.now();
  };

  let checking = false;
  let lastCheckAt = Date.now();
  let held: { result: CatalogCheck; startedAt: number } | null = null;
  /** Counts Relation messages; the count when each table's last one arrived. */
  let relationSeq = 0;
  const relationSeen = new Map<string, number>();
  /** Drops a connection that has been silent for receiveTimeoutMs while read; asks for a reply half-way. */
  const checkAlive = (): boolean => {
    const timeoutMs = opts.receiveTimeoutMs ?? 0;
    if (timeoutMs <= 0 || waitingSince === null) return true;
    const silentMs = Date.now() - Math.max(state.lastMessageAt, waitingSince);
    if (silentMs >= timeoutMs) {
      failure = new AppError(
        'REPLICATION_TIMEOUT',
        `nothing received from PostgreSQL for ${Math.round(silentMs / 1000)} s (source.receive_timeout_s): ` +
          'the connection is taken as cut; reconnecting',
      );
      stream.destroy();
      return false;
    }
    if (silentMs >= timeoutMs / 2 && !pinged) {
      pinged = true;
      sendStatus(true);
    }
    return true;
  };

  const ticker = setInterval(() => {
    if (failure || !checkAlive()) return;
    const due = (pending.length > 0 || pendingAck !== undefined) && Date.now() - pendingSince >= opts.batchMs;
    if (due && inflightCount < maxInflight) void flush();
    const sinceStatus = Date.now() - lastStatusAt;
    const newlyDurable = state.flushedLsn > lastSentFlushed && sinceStatus >= opts.confirmIntervalMs;
    if (sinceStatus >= opts.statusIntervalMs || newlyDurable) sendStatus();
    const idle = !tx && pending.length === 0 && pendingAck === undefined && inflightCount === 0;
    if (opts.idleCheck && idle && !checking && !held && Date.now() - lastCheckAt >= opts.idleCheck.everyMs) {
      checking = true;
      lastCheckAt = Date.now();
      const startedAt = relationSeq;
      void opts.idleCheck
        .run()
        .then((result) => {
          held = { result, startedAt };
        })
        .catch(() => {}) // a failed check is retried at the next interval
        .finally(() => {
          checking = false;
        });
    }
    // A check's result applies once the stream has received the WAL up to the check, and is still idle.
    if (held && idle && !failure && state.receivedLsn >= held.result.walLsn) {
      const { result, startedAt } = held;
      held = null;
      if (result.recopy.length > 0 && !opts.onRecopy?.(result.recopy)) {
        failure = new RecopyNeeded(result.recopy, `${result.recopy.join(', ')} joined the publication: copying`);
        stream.destroy();
        return;
      }
      // A Relation received since the check started is newer than what the check read.
      const layouts = result.layouts.filter((t) => (relationSeen.get(`${t.schema}.${t.table}`) ?? -1) <= startedAt);
      if (layouts.length === 0) return;
      result.sent(layouts.map((t) => `${t.schema}.${t.table}`));
      void enqueue({ tables: new Map(), changes: [], layouts });
    }
  }, Math.max(20, Math.min(opts.batchMs, 1000) / 2));

  // On shutdown: publish what is pending, confirm it, then end the copy stream (CopyDone).
  const onAbort = () => {
    void flush()
      .then(() => {
        if (!failure && !stream.destroyed && !stream.writableEnded) {
          sendStatus();
          stream.end();
        }
      })
      .catch(() => stream.destroy());
  };
  signal.addEventListener('abort', onAbort, { once: true });
  if (signal.aborted) onAbort(); // aborted while START_REPLICATION was being sent

  /** Handles one message; a promise only when it must be awaited (the row messages, every change, take no await). */
  const handle = (m: PgoutputMessage): Promise<void> | undefined => {
    switch (m.tag) {
      case 'Begin':
        tx = { finalLsn: m.finalLsn, commitTimeUs: pgEpochUsToUnixUs(m.commitTime), seq: 0, xid: m.xid };
        if (state.lastFinalLsn === undefined || m.finalLsn > state.lastFinalLsn) state.lastFinalLsn = m.finalLsn;
        return;
      case 'Commit':
        note();
        pendingAck = m.endLsn;
        state.lastCommitTimeUs = pgEpochUsToUnixUs(m.commitTime);
        unconfirmed.push({ endLsn: m.endLsn, commitTimeUs: state.lastCommitTimeUs });
        if (unconfirmed.length === 1) state.unconfirmedSinceUs = state.lastCommitTimeUs;
        tx = null;
        return;
      case 'Relation':
        return onRelation(m);
      case 'Insert':
        return add('I', m.relationId, m.newTuple);
      case 'Update': {
        const old = m.oldKind === 'K' || m.oldKind === 'O' ? m.oldTuple : undefined;
        return add('U', m.relationId, m.newTuple, old);
      }
      case 'Delete':
        return add('D', m.relationId, m.oldTuple);
      case 'Truncate':
        return (async () => {
          for (const id of m.relationIds) await add('T', id, []);
        })();
      case 'Origin':
      case 'Type':
      case 'Message':
        return;
      case 'StreamStart':
      case 'StreamStop':
      case 'StreamCommit':
      case 'StreamAbort':
        throw new AppError('PGOUTPUT_UNEXPECTED_STREAM', `got ${m.tag} although streaming was not requested`);
      default: {
        const never: never = m;
        throw new AppError('PGOUTPUT_UNKNOWN_MESSAGE', `unhandled message ${JSON.stringify(never)}`);
      }
    }
  };

  const onRelation = async (m: Relation): Promise<void> => {
    const name = `${m.schema}.${m.table}`;
    relationSeen.set(name, ++relationSeq);
    const columns = opts.resolveColumns ? await opts.resolveColumns(m.relationId, m.columns) : m.columns;
    const schema = { name, schema: m.schema, table: m.table, columns };
    // A layout change must not share a batch with rows of the old layout.
    if (pendingTables.has(name)) await flush();
    relations.set(m.relationId, schema);
  };

  /** A change; its values in `row` and `oldKey`, or as bytes in `wire` (then `row` is null). */
  const add = (
    op: Change['op'],
    relationId: number,
    row: Change['row'] | null,
    oldKey?: Change['row'],
    wire?: WireRowMessage,
  ): Promise<void> | undefined => {
    const rel = relations.get(relationId);
    if (!rel) throw new AppError('PGOUTPUT_UNKNOWN_RELATION', `change for relation ${relationId} before its Relation message`);
    if (!tx) throw new AppError('PGOUTPUT_NO_TRANSACTION', `change for ${rel.name} outside a transaction`);
    const n = rel.columns.length;
    const rowCount = wire ? wire.count : row!.length;
    const oldCount = wire ? wire.oldCount : oldKey === undefined ? -1 : oldKey.length;
    if (op !== 'T' && (rowCount !== n || (oldCount >= 0 && oldCount !== n))) {
      throw new AppError(
        'PGOUTPUT_MALFORMED',
        `malformed change of ${rel.name} at lsn ${tx.finalLsn}: ${rowCount !== n ? rowCount : oldCount} columns, its Relation message has ${n}`,
      );
    }
    const seq = tx.seq++;
    if (!opts.tables.has(rel.name)) {
      if (!opts.follow) return;
      if (!opts.onRecopy?.([rel.name])) throw new RecopyNeeded([rel.name], `${rel.name} joined the publication: copying its rows`);
    }
    const skip = opts.skipBefore?.get(rel.name);
    if (skip !== undefined && tx.finalLsn < skip) return; // in the copy already
    note();
    pendingTables.set(rel.name, rel);
    let change: Change;
    if (wire) change = new WireChange(op, rel.name, tx.finalLsn, seq, tx.commitTimeUs, tx.xid, wire.rows);
    else {
      change = { op, table: rel.name, row: row!, lsn: tx.finalLsn, seq, commitTimeUs: tx.commitTimeUs, xid: tx.xid };
      if (oldKey) change.oldKey = oldKey;
    }
    state.pendingChanges = pending.push(change);
    if (pending.length >= opts.batchRows) {
      void flush();
      return room(); // backpressure: stop reading while MAX_INFLIGHT batches are not durable
    }
    return undefined;
  };

  const fromWire = (m: WireRowMessage): Promise<void> | undefined => add(m.op, m.relationId, null, undefined, m);

  /**
   * Decodes and handles the pgoutput message at `at` of `data` (to its end), once there is room: with
   * MAX_INFLIGHT batches unconfirmed the socket is not read until they are durable (backpressure). Row
   * messages for a bus that takes the bytes keep their values as bytes (decodeRowWire).
   */
  const handleAt = (data: Uint8Array, at: number): Promise<void> | undefined => {
    const run = (): Promise<void> | undefined => {
      const handled =
        opts.wireRows && isRowTag(data[at]!) ? fromWire(decodeRowWire(data, at)) : handle(decodePgoutput(at === 0 ? data : data.subarray(at)));
      if (handled) return handled.then(cutIfIdle);
      cutIfIdle();
      return undefined;
    };
    return inflightCount >= maxInflight ? room().then(run) : run();
  };

  /** Handles one CopyData payload; a promise only when it must be awaited (a row message normally takes none). */
  const onChunk = (chunk: Buffer): Promise<void> | undefined => {
    if (opts.wireRows && chunk.length > XLOG_HEADER && chunk[0] === 0x77 && isRowTag(chunk[XLOG_HEADER]!)) {
      // A row message for a bus that takes the bytes: read where it is in the XLogData ('w', WAL start, WAL
      // end, send time), without decodeReplication's view of its pgoutput part.
      state.lastMessageAt = Date.now();
      pinged = false;
      const walEnd = chunk.readBigUInt64BE(9);
      if (walEnd > state.receivedLsn) state.receivedLsn = walEnd;
      return handleAt(chunk, XLOG_HEADER);
    }
    const msg = decodeReplication(chunk);
    state.lastMessageAt = Date.now();
    pinged = false;
    if (msg.tag === 'PrimaryKeepalive') {
      if (msg.walEnd > state.receivedLsn) state.receivedLsn = msg.walEnd;
      // Everything the server sent before this keepalive has been made durable: its position is safe to confirm.
      if (!tx && pending.length === 0 && pendingAck === undefined && inflightCount === 0 && msg.walEnd > state.flushedLsn) {
        confirmed(msg.walEnd);
      }
      if (msg.replyRequested) sendStatus();
      cutIfIdle();
      return;
    }
    if (msg.walEnd > state.receivedLsn) state.receivedLsn = msg.walEnd;
    return handleAt(msg.data, 0);
  };

  try {
    state.lastMessageAt = Date.now();
    waitingSince = Date.now();
    for (;;) {
      if (failure) break;
      if (received.head === received.items.length) {
        if (received.ended) break;
        waitingSince = Date.now();
        await received.next();
        waitingSince = null;
        continue;
      }
      const handled = onChunk(received.take());
      if (handled) await handled;
    }
    if (!failure && received.error) failure = received.error;
  } catch (e) {
    if (!failure) failure = e;
    stream.destroy();
  } finally {
    clearInterval(ticker);
    signal.removeEventListener('abort', onAbort);
    await inflight;
  }
  if (failure) throw failure;
  if (!signal.aborted) throw new AppError('REPLICATION_ENDED', 'the server ended the replication stream');
}
