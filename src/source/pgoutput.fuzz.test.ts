/**
 * Fuzzer of the pgoutput decoder over messages recorded from PostgreSQL 18: every truncation of every
 * message, and seeded random corruptions (flips, overwrites, insertions, deletions). Each result is
 * either a PGOUTPUT_MALFORMED / PGOUTPUT_UNKNOWN_MESSAGE error naming the message type and byte offset,
 * or a message that encodes back to exactly the bytes given (nothing dropped, guessed or replaced).
 * FUZZ_SEED and FUZZ_ITERATIONS (default 20000) replay or lengthen a run.
 */
import { expect, test } from 'bun:test';
import v1 from '../../test/fixtures/pgoutput/v1.json';
import v2 from '../../test/fixtures/pgoutput/v2-streaming.json';
import { encodePgoutput } from '../../test/support/pgoutput-encode.ts';
import { seeded } from '../../test/support/random.ts';
import { AppError } from '../errors.ts';
import { WireChange } from '../change/wire.ts';
import { decodePgoutput, decodeReplication, decodeRowWire } from './pgoutput.ts';

const SEED = Number(process.env.FUZZ_SEED ?? 20261125);
const ITERATIONS = Number(process.env.FUZZ_ITERATIONS ?? 20_000);

const rng = seeded;

/** The recorded pgoutput payloads, each with whether it sits between Stream Start and Stop. */
function corpus(): { data: Uint8Array; inStream: boolean }[] {
  const out: { data: Uint8Array; inStream: boolean }[] = [];
  for (const fixture of [v1, v2]) {
    let inStream = false;
    for (const hex of fixture.messages) {
      const r = decodeReplication(Buffer.from(hex, 'hex'));
      if (r.tag !== 'XLogData') continue;
      const data = Uint8Array.from(r.data);
      out.push({ data, inStream });
      const m = decodePgoutput(data, { inStream });
      if (m.tag === 'StreamStart') inStream = true;
      if (m.tag === 'StreamStop') inStream = false;
    }
  }
  return out;
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/**
 * An Insert, Update or Delete decoded with its values left as bytes (the Kafka bus's source) must be refused
 * exactly when `decodePgoutput` refuses it, and otherwise hold the same values.
 */
function checkWire(data: Uint8Array, decoded: ReturnType<typeof decodePgoutput> | undefined, what: string): void {
  // Also read in place after an XLogData header (as the source does): the same outcome, errors with the same offsets.
  const inPlace = Buffer.concat([Buffer.from([0x77]), Buffer.alloc(24, 0xc3), data]);
  const attempt = (f: () => ReturnType<typeof decodeRowWire>) => {
    try {
      return f();
    } catch (e) {
      return e;
    }
  };
  const there = attempt(() => decodeRowWire(inPlace, 25));
  let wire;
  try {
    wire = decodeRowWire(data);
  } catch (e) {
    if (decoded) throw new Error(`${what}: ${hex(data)} decodes, but decodeRowWire refuses it: ${String(e)}`);
    if (!(e instanceof AppError) || !/byte offset \d+/.test(e.message)) throw new Error(`${what}: unclear decodeRowWire error ${String(e)}`);
    expect(there instanceof AppError && there.message).toBe(e.message);
    return;
  }
  expect(there instanceof AppError ? there.message : '').toBe('');
  expect(new WireChange(wire.op, 't', 0n, 0, 0n, undefined, (there as typeof wire).rows).row).toEqual(new WireChange(wire.op, 't', 0n, 0, 0n, undefined, wire.rows).row);
  if (!decoded) throw new Error(`${what}: ${hex(data)} is refused, but decodeRowWire accepts it`);
  const c = new WireChange(wire.op, 't', 0n, 0, 0n, undefined, wire.rows);
  const m = decoded as { newTuple?: unknown; oldTuple?: unknown };
  expect(c.row).toEqual((wire.op === 'D' ? m.oldTuple : m.newTuple) as never);
  expect(c.oldKey).toEqual((wire.op === 'U' ? m.oldTuple : undefined) as never);
  expect(wire.count).toBe(c.row.length);
  expect(wire.oldCount).toBe(c.oldKey?.length ?? -1);
}

/** Decodes; returns 'error' for a clear decoder error, fails the test for anything else. */
function check(data: Uint8Array, inStream: boolean, what: string): 'error' | 'ok' {
  const rowMessage = !inStream && (data[0] === 0x49 || data[0] === 0x55 || data[0] === 0x44);
  let decoded;
  try {
    decoded = decodePgoutput(data, { inStream });
  } catch (e) {
    if (rowMessage) checkWire(data, undefined, what);
    if (!(e instanceof AppError) || !['PGOUTPUT_MALFORMED', 'PGOUTPUT_UNKNOWN_MESSAGE'].includes(e.code)) {
      throw new Error(`${what}: ${hex(data)} threw ${String(e)} instead of a clear decoder error`);
    }
    if (data.length > 0 && !/byte offset \d+/.test(e.message)) throw new Error(`${what}: error without byte offset: ${e.message}`);
    if (data.length > 0 && e.code === 'PGOUTPUT_MALFORMED' && !e.message.includes(`('${String.fromCharCode(data[0]!)}')`)) {
      throw new Error(`${what}: error without the message type: ${e.message}`);
    }
    return 'error';
  }
  if (rowMessage) checkWire(data, decoded, what);
  const again = encodePgoutput(decoded);
  if (hex(again) !== hex(data)) {
    throw new Error(`${what}: ${hex(data)} decoded to a message that encodes to ${hex(again)}: the decoder lost or invented bytes`);
  }
  return 'ok';
}

test('every recorded message round-trips through decoder and encoder', () => {
  const all = corpus();
  expect(all.length).toBeGreaterThan(20);
  for (const { data, inStream } of all) expect(check(data, inStream, 'recorded')).toBe('ok');
});

test('every truncation of every message is refused with its type and byte offset', () => {
  let cases = 0;
  for (const { data, inStream } of corpus()) {
    for (let n = 0; n < data.length; n++) {
      const cut = data.subarray(0, n);
      // A protocol v4 Stream Abort (25 bytes) cut to 9 bytes is a complete v2 Stream Abort.
      if (data[0] === 0x41 && n === 9) continue;
      expect(check(cut, inStream, `truncated to ${n} of ${data.length}`)).toBe('error');
      cases++;
    }
  }
  expect(cases).toBeGreaterThan(1000);
});

test(`seeded corruption (seed ${SEED}, ${ITERATIONS} cases): a clear error or an exact decoding, never a guess`, () => {
  const all = corpus();
  const random = rng(SEED);
  const pick = (n: number) => Math.floor(random() * n);
  const counts = { error: 0, ok: 0 };
  for (let i = 0; i < ITERATIONS; i++) {
    const { data, inStream } = all[pick(all.length)]!;
    const bytes = [...data];
    const edits = 1 + pick(3);
    for (let e = 0; e < edits; e++) {
      const at = pick(bytes.length);
      switch (pick(5)) {
        case 0: bytes[at] = bytes[at]! ^ (1 << pick(8)); break; // bit flip
        case 1: bytes[at] = pick(256); break; // overwrite
        case 2: bytes[at] = [0, 0xff, 0x7f, 0x80][pick(4)]!; break; // boundary values
        case 3: bytes.splice(at, 0, pick(256)); break; // insertion
        default: if (bytes.length > 1) bytes.splice(at, 1); // deletion
      }
    }
    counts[check(Uint8Array.from(bytes), inStream, `seed ${SEED} case ${i}`)]++;
  }
  // Both outcomes occur: corrupted text values still decode (exactly), broken framing is refused.
  expect(counts.error).toBeGreaterThan(ITERATIONS / 10);
  expect(counts.ok).toBeGreaterThan(0);
});

test('errors read well: type, what is wrong, where', () => {
  const insert = corpus().find((c) => c.data[0] === 0x49)!;
  expect(() => decodePgoutput(insert.data.subarray(0, insert.data.length - 1))).toThrow(
    /^malformed Insert \('I'\) message \(\d+ bytes\): truncated: .* of column \d+ needs \d+ bytes, \d+ left at byte offset \d+$/,
  );
  const extended = Uint8Array.from([...insert.data, 0]);
  expect(() => decodePgoutput(extended)).toThrow(/1 unexpected bytes after the last field at byte offset \d+/);
  const badUtf8 = Uint8Array.from(insert.data);
  const at = badUtf8.lastIndexOf(0x74); // the last 't' column: corrupt its first text byte into a lone continuation byte
  badUtf8[at + 5] = 0x80;
  expect(() => decodePgoutput(badUtf8)).toThrow(/is not valid UTF-8 at byte offset/);
  expect(() => decodeRowWire(badUtf8)).toThrow(/is not valid UTF-8 at byte offset/);
  expect(() => decodeReplication(Uint8Array.from([0x6b, 0, 0]))).toThrow(/malformed Primary keepalive \('k'\).*byte offset 1/);
});
