import { quoteIdent } from './pg-types.ts';
import type { MirrorTable } from './tables.ts';

/**
 * Time travel and change feed over a table's history view (every tier), as table macros beside it:
 * `history.<t>_at(ts)` and `history.<t>_at_lsn(lsn)` give the table's state at an instant or commit
 * LSN, `history.<t>_changes(from_ts, to_ts)` the changes committed in (from_ts, to_ts].
 * State is known from the initial copy on: before it, `_at` answers no rows.
 */
export function timeTravelSql(m: MirrorTable): string[] {
  const h = m.historyView;
  const base = h.slice(0, -1); // history."orders" -> history."orders
  const fn = (suffix: string) => `${base}${suffix}"`;
  const keys = m.keyIndexes.map((i) => quoteIdent(m.columns[i]!.name)).join(', ');
  const stateAt = (cond: string) =>
    `SELECT * EXCLUDE (_op, _lsn, _seq, _commit_ts, _rn) FROM (` +
    `SELECT *, row_number() OVER (PARTITION BY ${keys} ORDER BY _lsn DESC, _seq DESC) AS _rn FROM ${h} ` +
    `WHERE _op <> 'T' AND ${cond} AND (_lsn > (SELECT max(_lsn) FROM ${h} WHERE _op = 'T' AND ${cond}) ` +
    `OR (SELECT max(_lsn) FROM ${h} WHERE _op = 'T' AND ${cond}) IS NULL)) WHERE _rn = 1 AND _op <> 'D'`;
  return [
    `CREATE OR REPLACE MACRO ${fn('_at')}(_at_ts) AS TABLE ${stateAt('_commit_ts <= _at_ts::TIMESTAMPTZ')}`,
    `CREATE OR REPLACE MACRO ${fn('_at_lsn')}(_at_lsn) AS TABLE ${stateAt('_lsn <= _at_lsn::UBIGINT')}`,
    `CREATE OR REPLACE MACRO ${fn('_changes')}(_from_ts, _to_ts) AS TABLE SELECT * FROM ${h} ` +
      `WHERE _commit_ts > _from_ts::TIMESTAMPTZ AND _commit_ts <= _to_ts::TIMESTAMPTZ AND _op <> 'R' ORDER BY _lsn, _seq`,
  ];
}
