/**
 * pgoutput logical replication messages, named after the protocol:
 * https://www.postgresql.org/docs/current/protocol-logicalrep-message-formats.html
 * LSNs are bigint; timestamps are microseconds since 2000-01-01 as bigint (PostgreSQL epoch).
 */

import type { ColumnSchema, TupleData } from '../change/index.ts';

export interface Begin { tag: 'Begin'; finalLsn: bigint; commitTime: bigint; xid: number }
export interface Commit { tag: 'Commit'; flags: number; commitLsn: bigint; endLsn: bigint; commitTime: bigint }
export interface Origin { tag: 'Origin'; commitLsn: bigint; name: string }
export interface Relation {
  tag: 'Relation';
  xid?: number;
  relationId: number;
  schema: string;
  table: string;
  /** 'd' default, 'n' nothing, 'f' full, 'i' index */
  replicaIdentity: string;
  columns: ColumnSchema[];
}
export interface Type { tag: 'Type'; xid?: number; typeOid: number; schema: string; name: string }
export interface Insert { tag: 'Insert'; xid?: number; relationId: number; newTuple: TupleData }
export interface Update {
  tag: 'Update';
  xid?: number;
  relationId: number;
  /** 'K': old key columns (key changed); 'O': whole old row (REPLICA IDENTITY FULL). */
  oldKind?: 'K' | 'O';
  oldTuple?: TupleData;
  newTuple: TupleData;
}
export interface Delete { tag: 'Delete'; xid?: number; relationId: number; oldKind: 'K' | 'O'; oldTuple: TupleData }
export interface Truncate { tag: 'Truncate'; xid?: number; options: number; relationIds: number[] }
export interface LogicalMessage { tag: 'Message'; xid?: number; flags: number; lsn: bigint; prefix: string; content: Uint8Array }
export interface StreamStart { tag: 'StreamStart'; xid: number; firstSegment: boolean }
export interface StreamStop { tag: 'StreamStop' }
export interface StreamCommit { tag: 'StreamCommit'; xid: number; flags: number; commitLsn: bigint; endLsn: bigint; commitTime: bigint }
export interface StreamAbort { tag: 'StreamAbort'; xid: number; subXid: number; abortLsn?: bigint; abortTime?: bigint }

/** Every pgoutput message this decoder understands. */
export type PgoutputMessage =
  | Begin | Commit | Origin | Relation | Type | Insert | Update | Delete | Truncate
  | LogicalMessage | StreamStart | StreamStop | StreamCommit | StreamAbort;

/** The CopyData messages of the streaming replication protocol (wrapping pgoutput). */
export interface XLogData { tag: 'XLogData'; walStart: bigint; walEnd: bigint; sendTime: bigint; data: Uint8Array }
export interface PrimaryKeepalive { tag: 'PrimaryKeepalive'; walEnd: bigint; sendTime: bigint; replyRequested: boolean }
export type ReplicationMessage = XLogData | PrimaryKeepalive;
