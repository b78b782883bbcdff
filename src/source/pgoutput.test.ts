import { describe, expect, test } from 'bun:test';
import v1 from '../../test/fixtures/pgoutput/v1.json';
import v2 from '../../test/fixtures/pgoutput/v2-streaming.json';
import { decodePgoutput, decodeReplication, decodeRowWire, encodeStandbyStatusUpdate, pgEpochUsToUnixUs } from './pgoutput.ts';
import { WireChange } from '../change/wire.ts';
import { UNCHANGED } from '../change/index.ts';
import type { PgoutputMessage } from './types.ts';

/** Decodes a recorded fixture, tracking Stream Start/Stop as the stream does. */
function decodeAll(hexes: string[]): { msg: PgoutputMessage; walStart: bigint }[] {
  let inStream = false;
  return hexes.flatMap((hex) => {
    const r = decodeReplication(Buffer.from(hex, 'hex'));
    if (r.tag !== 'XLogData') return [];
    const msg = decodePgoutput(r.data, { inStream });
    if (msg.tag === 'StreamStart') inStream = true;
    if (msg.tag === 'StreamStop') inStream = false;
    return [{ msg, walStart: r.walStart }];
  });
}

describe('pgoutput v1, recorded from PostgreSQL 18', () => {
  const msgs = decodeAll(v1.messages).map((m) => m.msg);
  const of = <T extends PgoutputMessage['tag']>(tag: T) =>
    msgs.filter((m): m is Extract<PgoutputMessage, { tag: T }> => m.tag === tag);

  test('begin and commit frame the transaction with the same LSN', () => {
    const [begin] = of('Begin');
    const [commit] = of('Commit');
    expect(msgs[0]?.tag).toBe('Begin');
    expect(begin!.finalLsn).toBe(commit!.commitLsn);
    expect(commit!.endLsn).toBeGreaterThan(commit!.commitLsn);
    expect(begin!.commitTime).toBe(commit!.commitTime);
    // 2026 in Unix microseconds once converted from PostgreSQL's 2000 epoch.
    expect(new Date(Number(pgEpochUsToUnixUs(commit!.commitTime) / 1000n)).getUTCFullYear()).toBeGreaterThanOrEqual(2026);
  });

  test('relations carry key flags, type OIDs and modifiers; custom types come as Type messages', () => {
    const items = of('Relation').find((r) => r.table === 'items')!;
    expect(items.schema).toBe('public');
    expect(items.replicaIdentity).toBe('d');
    expect(items.columns.map((c) => [c.name, c.key, c.typeOid])).toEqual([
      ['id', true, 20], ['price', false, 1700], ['note', false, 25], ['at', false, 1184], ['raw', false, 17], ['m', false, items.columns[5]!.typeOid],
    ]);
    expect(items.columns[1]!.typeMod).toBe(((10 << 16) | 2) + 4);
    const [type] = of('Type');
    expect(type).toMatchObject({ schema: 'public', name: 'mood', typeOid: items.columns[5]!.typeOid });
    const full = of('Relation').find((r) => r.table === 'full_rows')!;
    expect(full.replicaIdentity).toBe('f');
    expect(full.columns.every((c) => c.key)).toBe(true);
  });

  test('inserts, updates with old keys and deletes keep text, nulls and bytea exactly', () => {
    const [ins1, ins2] = of('Insert');
    expect(ins1!.newTuple).toEqual(['1', '10.50', 'first', '2026-11-23 23:03:16.123456+00', '\\x01ff', 'happy']);
    expect(ins2!.newTuple).toEqual(['2', null, null, null, null, null]);
    const updates = of('Update');
    expect(updates[0]).toMatchObject({ newTuple: ['1', '11.25', 'first', '2026-11-23 23:03:16.123456+00', '\\x01ff', 'happy'] });
    expect(updates[0]!.oldKind).toBeUndefined();
    expect(updates[1]).toMatchObject({ oldKind: 'K', oldTuple: ['2', null, null, null, null, null], newTuple: ['3', null, null, null, null, null] });
    expect(updates[2]).toMatchObject({ oldKind: 'O', oldTuple: ['1', 'x'], newTuple: ['1', 'y'] });
    const deletes = of('Delete');
    expect(deletes[0]).toMatchObject({ oldKind: 'K', oldTuple: ['3', null, null, null, null, null] });
    expect(deletes[1]).toMatchObject({ oldKind: 'O', oldTuple: ['1', 'y'] });
  });

  test('an unchanged TOAST value is UNCHANGED, never null', () => {
    const docs = of('Relation').find((r) => r.table === 'docs')!;
    const docUpdates = of('Update').filter((u) => u.relationId === docs.relationId);
    expect(docUpdates).toHaveLength(1);
    expect(docUpdates[0]!.newTuple[1]).toBe('big v2');
    expect(docUpdates[0]!.newTuple[2]).toBe(UNCHANGED);
    const docInsert = of('Insert').find((i) => i.relationId === docs.relationId)!;
    expect((docInsert.newTuple[2] as string).length).toBe(50_000);
  });

  test('truncate names its relations; logical messages keep prefix and content', () => {
    const full = of('Relation').find((r) => r.table === 'full_rows')!;
    expect(of('Truncate')).toEqual([{ tag: 'Truncate', options: 0, relationIds: [full.relationId] }]);
    const [hello, end] = of('Message');
    expect(hello).toMatchObject({ prefix: 'ducktail', flags: 1 });
    expect(Buffer.from(hello!.content).toString()).toBe('hello');
    expect(end).toMatchObject({ prefix: 'fixture-end', flags: 0 });
  });
});

describe('pgoutput v2 streaming, recorded from PostgreSQL 18', () => {
  const msgs = decodeAll(v2.messages).map((m) => m.msg);

  test('a large transaction arrives in stream blocks carrying its xid, then a stream commit', () => {
    const starts = msgs.filter((m) => m.tag === 'StreamStart');
    const stops = msgs.filter((m) => m.tag === 'StreamStop');
    expect(starts.length).toBeGreaterThan(1);
    expect(stops.length).toBe(starts.length);
    const xid = (starts[0] as { xid: number }).xid;
    expect(starts[0]).toMatchObject({ firstSegment: true });
    expect(starts[1]).toMatchObject({ xid, firstSegment: false });
    const inserts = msgs.filter((m) => m.tag === 'Insert');
    expect(inserts).toHaveLength(600);
    expect(inserts.every((m) => (m as { xid?: number }).xid === xid)).toBe(true);
    expect((inserts[599] as { newTuple: unknown[] }).newTuple).toEqual(['600', 'p'.repeat(100)]);
    const commit = msgs.find((m) => m.tag === 'StreamCommit');
    expect(commit).toMatchObject({ xid });
    expect((commit as { endLsn: bigint; commitLsn: bigint }).endLsn).toBeGreaterThan((commit as { commitLsn: bigint }).commitLsn);
  });
});

describe('hand-built edge cases', () => {
  test('a binary value is kept as bytes', () => {
    const msg = Buffer.concat([
      Buffer.from([0x49]), // 'I'
      Buffer.from([0, 0, 0, 7]), // relation id
      Buffer.from([0x4e, 0, 2]), // 'N', 2 columns
      Buffer.from([0x62, 0, 0, 0, 2, 0xca, 0xfe]), // 'b' length 2
      Buffer.from([0x6e]), // 'n'
    ]);
    const m = decodePgoutput(msg);
    expect(m).toEqual({ tag: 'Insert', relationId: 7, newTuple: [new Uint8Array([0xca, 0xfe]), null] });
  });

  test('values left as bytes (decodeRowWire) are checked as decodePgoutput checks them: UTF-8 across every edge', () => {
    const text = (v: Buffer) => {
      const len = Buffer.alloc(4);
      len.writeInt32BE(v.length);
      return Buffer.concat([len, v]);
    };
    const msg = (...values: Buffer[]) => Buffer.concat([Buffer.from([0x49, 0, 0, 0, 7, 0x4e, 0, values.length]), ...values.map((v) => Buffer.concat([Buffer.from([0x74]), text(v)]))]);
    const ok = [
      msg(Buffer.from('é ключ 😀'), Buffer.from('x')),
      msg(Buffer.from('a'.repeat(194) + 'é')), // length 196 (0xc4: a lead byte) before valid text
      msg(Buffer.from([0xef, 0xbf, 0xbd])), // U+FFFD itself is valid
    ];
    for (const m of ok) {
      expect(decodeRowWire(Buffer.concat([Buffer.alloc(25, 0xc3), m]), 25).count).toBe(decodeRowWire(m).count);
      const w = decodeRowWire(m);
      expect(new WireChange('I', 't', 0n, 0, 0n, undefined, w.rows).row).toEqual((decodePgoutput(m) as { newTuple: unknown }).newTuple as never);
    }
    const bad = [
      msg(Buffer.concat([Buffer.from([0xa9]), Buffer.from('a'.repeat(194))])), // length 195 (0xc3) then a continuation byte: valid only across the edge
      msg(Buffer.from('ok'), Buffer.from([0xc3])), // a lead byte cut at the value's end
      msg(Buffer.from([0xed, 0xa0, 0x80])), // a surrogate
      msg(Buffer.from([0xc0, 0xaf])), // overlong
    ];
    for (const m of bad) {
      expect(() => decodePgoutput(m)).toThrow(/is not valid UTF-8 at byte offset/);
      expect(() => decodeRowWire(m)).toThrow(/is not valid UTF-8 at byte offset/);
      expect(() => decodeRowWire(Buffer.concat([Buffer.alloc(25, 0xc3), m]), 25)).toThrow(/is not valid UTF-8 at byte offset/);
    }
  });

  test('an unknown message byte is an error that names it', () => {
    expect(() => decodePgoutput(Buffer.from([0x5a]))).toThrow(/0x5a \('Z'\)/);
    expect(() => decodeReplication(Buffer.from([0x71]))).toThrow(/0x71/);
  });

  test('a truncated message is reported as malformed, not misread', () => {
    expect(() => decodePgoutput(Buffer.from([0x49, 0, 0, 0, 7, 0x4e, 0, 1, 0x74, 0, 0, 0, 9, 0x61]))).toThrow(/malformed/);
  });

  test('keepalive and standby status update', () => {
    const k = Buffer.alloc(18);
    k[0] = 0x6b; // 'k'
    k.writeBigUInt64BE(0x16b374d848n, 1);
    k.writeBigInt64BE(5n, 9);
    k[17] = 1;
    expect(decodeReplication(k)).toEqual({ tag: 'PrimaryKeepalive', walEnd: 0x16b374d848n, sendTime: 5n, replyRequested: true });
    const r = Buffer.from(encodeStandbyStatusUpdate({ written: 3n, flushed: 2n, applied: 1n, clockUs: 9n, replyRequested: false }));
    expect(r[0]).toBe(0x72); // 'r'
    expect([r.readBigUInt64BE(1), r.readBigUInt64BE(9), r.readBigUInt64BE(17), r.readBigInt64BE(25), r[33]]).toEqual([3n, 2n, 1n, 9n, 0]);
  });
});
