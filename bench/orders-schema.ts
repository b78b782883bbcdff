// The demo's orders table as pgoutput describes it (bigint, numeric(10,2), int, text, timestamptz), for the
// benchmarks that drive the bus or the warehouse without PostgreSQL.
import type { TableSchema } from '../src/change/index.ts';

export const ORDERS: TableSchema = {
  schema: 'public',
  table: 'orders',
  columns: [
    { name: 'order_id', key: true, typeOid: 20, typeMod: -1 },
    { name: 'customer_id', key: false, typeOid: 20, typeMod: -1 },
    { name: 'product_id', key: false, typeOid: 20, typeMod: -1 },
    { name: 'price', key: false, typeOid: 1700, typeMod: 655366 },
    { name: 'quantity', key: false, typeOid: 23, typeMod: -1 },
    { name: 'status', key: false, typeOid: 25, typeMod: -1 },
    { name: 'order_date', key: false, typeOid: 1184, typeMod: -1 },
  ],
};
