// The index query: every snapshot that is not deleted, plus those deleted within the recent window,
// optionally filtered, newest first (seq DESC), paged by OFFSET/LIMIT, with the size of the whole
// filtered set.
//
// Filters are optional, so there are several statement shapes; each is prepared the first time it
// is needed and reused after (a few dozen shapes at most).
//
// The total is the expensive half: counting 100,000 rows takes milliseconds. When the only filters
// are account and state, the live part comes from snapshot_totals (kept by triggers) and only the
// recently deleted rows are counted, through their own small partial index.

import type Database from 'better-sqlite3';
import { SNAPSHOT_STATES, type SnapshotPage, type SnapshotQuery, type SnapshotRecord, type SnapshotState } from './types';

type Row = Record<string, unknown>;
type Statement = Database.Statement<unknown[], Row>;

const LIVE_STATES = SNAPSHOT_STATES.filter((s) => s !== 'deleted');
/** Up to this many matches, a state-filtered page is read through the state index and sorted. */
const FEW = 2000;

export class SnapshotList {
  private readonly statements = new Map<string, Statement>();

  constructor(
    private readonly db: Database.Database,
    private readonly recordColumns: string,
  ) {}

  page(q: SnapshotQuery & { recentDeletedMs: number }): SnapshotPage {
    checkQuery(q);
    const since = q.now - q.recentDeletedMs;
    const params: Record<string, unknown> = { since };
    const where = ["(state != 'deleted' OR deleted_at >= :since)"];
    if (q.accountId !== null) {
      where.push('account_id = :accountId');
      params.accountId = q.accountId;
    }
    if (q.originVolumeId !== undefined) {
      where.push('origin_volume_id = :originVolumeId');
      params.originVolumeId = q.originVolumeId;
    }
    if (q.destinationId !== undefined) {
      where.push('destination_id = :destinationId');
      params.destinationId = q.destinationId;
    }
    if (q.createdSince !== undefined) {
      where.push('created_at >= :createdSince');
      params.createdSince = q.createdSince;
    }
    if (q.createdUntil !== undefined) {
      where.push('created_at <= :createdUntil');
      params.createdUntil = q.createdUntil;
    }
    const onlyAccountAndState = where.length === (q.accountId === null ? 1 : 2);
    const total = onlyAccountAndState ? this.totalFromTotals(q.accountId, q.states, since) : undefined;

    let from = 'snapshots';
    if (q.states !== undefined) {
      params.states = JSON.stringify(q.states);
      if (total !== undefined && total <= FEW) {
        // Few matches (say, the snapshots still creating): fetch them through the state index
        // and sort them, rather than walk every row of the account looking for them.
        from = 'snapshots INDEXED BY snapshots_state_account';
        where.push('state IN (SELECT value FROM json_each(:states))');
      } else {
        // Many matches: walk seq DESC and stop after start+limit of them. The unary + keeps the
        // planner from gathering and sorting every match through the state index instead.
        where.push('+state IN (SELECT value FROM json_each(:states))');
      }
    }
    const filter = where.join(' AND ');
    const rows = this.statement(
      `SELECT ${this.recordColumns} FROM ${from} WHERE ${filter} ORDER BY seq DESC LIMIT :limit OFFSET :start`,
    ).all({ ...params, limit: q.limit ?? -1, start: q.start }) as unknown as SnapshotRecord[];
    if (total !== undefined) return { total, rows };
    const counted = this.statement(`SELECT count(*) AS n FROM snapshots WHERE ${filter}`).get(params) as { n: number };
    return { total: counted.n, rows };
  }

  private totalFromTotals(accountId: string | null, states: readonly SnapshotState[] | undefined, since: number): number {
    const live = states === undefined ? LIVE_STATES : states.filter((s) => s !== 'deleted');
    const account = accountId === null ? '' : 'account_id = :accountId AND ';
    let total = 0;
    if (live.length > 0) {
      const sql = `SELECT coalesce(sum(snapshots), 0) AS n FROM snapshot_totals
                   WHERE ${account}state IN (SELECT value FROM json_each(:states))`;
      total += (this.statement(sql).get({ accountId, states: JSON.stringify(live) }) as { n: number }).n;
    }
    if (states === undefined || states.includes('deleted')) {
      // INDEXED BY: left to itself the planner prefers the account index and counts every row of
      // the account; this partial index holds only deleted rows, recent ones in one range.
      const sql = `SELECT count(*) AS n FROM snapshots INDEXED BY snapshots_recently_deleted
                   WHERE ${account}state = 'deleted' AND deleted_at >= :since`;
      total += (this.statement(sql).get({ accountId, since }) as { n: number }).n;
    }
    return total;
  }

  private statement(sql: string): Statement {
    let stmt = this.statements.get(sql);
    if (stmt === undefined) {
      stmt = this.db.prepare<unknown[], Row>(sql);
      this.statements.set(sql, stmt);
    }
    return stmt;
  }
}

function checkQuery(q: SnapshotQuery & { recentDeletedMs: number }): void {
  if (!Number.isSafeInteger(q.start) || q.start < 0) throw new RangeError(`listSnapshots: start must be an integer >= 0, got ${q.start}`);
  if (q.limit !== null && (!Number.isSafeInteger(q.limit) || q.limit < 0)) {
    throw new RangeError(`listSnapshots: limit must be an integer >= 0 or null, got ${q.limit}`);
  }
  if (!Number.isFinite(q.now)) throw new RangeError(`listSnapshots: now must be a time in ms, got ${q.now}`);
  if (!Number.isFinite(q.recentDeletedMs) || q.recentDeletedMs < 0) {
    throw new RangeError(`listSnapshots: recentDeletedMs must be >= 0, got ${q.recentDeletedMs}`);
  }
  for (const s of q.states ?? []) {
    if (!SNAPSHOT_STATES.includes(s)) throw new RangeError(`listSnapshots: unknown state ${JSON.stringify(s)}`);
  }
}
