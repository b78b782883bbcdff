export type { BatchSink, Bus, Change, ChangeBatch, SnapshotMarker, TableSchema } from './bus.ts';
export { createInlineBus } from './inline.ts';
