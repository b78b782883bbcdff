import { expect, test } from 'bun:test';
import type { Change, TableSchema } from '../change/index.ts';
import { decodeEvent, EventEncoder } from './kafka-codec.ts';

test('the schema block carries every column fact the warehouse needs to rebuild the layout', () => {
  const table: TableSchema = {
    schema: 'public',
    table: 'evo',
    columns: [
      { name: 'id', key: true, typeOid: 23, typeMod: -1, attnum: 1 },
      { name: 'e', key: false, typeOid: 23, typeMod: -1, attnum: 2, missing: '7', hasDefault: true },
      { name: 'f', key: false, typeOid: 1184, typeMod: -1, attnum: 3, hasDefault: true },
      { name: 'm', key: false, typeOid: 99999, typeMod: -1, userType: 'enum' },
    ],
  };
  const change: Change = { op: 'I', table: 'public.evo', row: ['1', '7', null, 'happy'], lsn: 100n, seq: 0, commitTimeUs: 0n, xid: 5 };
  const [event] = new EventEncoder('t', 'test').encode(change, table, 3, () => 0, 0n);
  const decoded = decodeEvent(event!.value);
  expect(decoded.table.columns).toEqual(table.columns);
  expect(decoded.change.row).toEqual(['1', '7', null, 'happy']);
});
