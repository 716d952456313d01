// The snapshot catalog: one SQLite file in WAL mode, the only SQL in the project.
//
// Durability: synchronous=FULL, so a state change that returned has reached the disk; a snapshot
// reported available stays available after a power cut. Progress updates are the exception (see
// updateProgress): losing the last few of those costs nothing, and an fsync per update would stall
// the event loop while a copy floods the same disk.

import Database from 'better-sqlite3';
import { isAccountId, isDestinationId, isNodeId, isSnapshotId, isVolumeId } from '../ids';
import {
  CatalogError,
  DuplicateSnapshotError,
  StateConflictError,
  UnknownSnapshotError,
  errorMessage,
  sqliteCode,
} from './errors';
import { migrate, schemaVersion } from './migrations';
import { SnapshotList } from './list';
import {
  RECENT_DELETED_MS,
  SNAPSHOT_STATES,
  SNAPSHOT_TRANSITIONS,
  type NewSnapshot,
  type SnapshotByteTotals,
  type SnapshotPage,
  type SnapshotPatch,
  type SnapshotQuery,
  type SnapshotRecord,
  type SnapshotState,
} from './types';

/** `<state_dir>/catalog.sqlite` (design: Files on disk). */
export const CATALOG_FILE_NAME = 'catalog.sqlite';

export interface CatalogOptions {
  /** ms since the epoch; injectable so tests control created_at/updated_at/deleted_at. */
  clock?: () => number;
  /** How long a write waits for another connection's lock before SQLITE_BUSY. */
  busyTimeoutMs?: number;
}

/** Record field → column. The single place where camelCase meets snake_case. */
const COLUMNS: Readonly<Record<keyof SnapshotRecord, string>> = {
  seq: 'seq',
  id: 'id',
  accountId: 'account_id',
  originVolumeId: 'origin_volume_id',
  destinationId: 'destination_id',
  storageNodeId: 'storage_node_id',
  displayName: 'display_name',
  state: 'state',
  sizeBytes: 'size_bytes',
  method: 'method',
  consistency: 'consistency',
  progress: 'progress',
  bytesTotal: 'bytes_total',
  bytesDone: 'bytes_done',
  allocatedBytes: 'allocated_bytes',
  sharedBytes: 'shared_bytes',
  exclusiveBytes: 'exclusive_bytes',
  checksum: 'checksum',
  error: 'error',
  createdAt: 'created_at',
  updatedAt: 'updated_at',
  deletedAt: 'deleted_at',
};

/** `SELECT` list that yields SnapshotRecord-shaped rows directly. */
export const RECORD_COLUMNS = Object.entries(COLUMNS)
  .map(([field, column]) => (field === column ? column : `${column} AS ${field}`))
  .join(', ');

const PATCH_FIELDS = [
  'method',
  'consistency',
  'progress',
  'bytesTotal',
  'bytesDone',
  'allocatedBytes',
  'sharedBytes',
  'exclusiveBytes',
  'checksum',
  'error',
] as const satisfies readonly (keyof SnapshotPatch)[];

type Row = Record<string, unknown>;
type Statement = Database.Statement<unknown[], Row>;

export class Catalog {
  private readonly db: Database.Database;
  private readonly clock: () => number;
  private readonly list: SnapshotList;
  private readonly sql: {
    insert: Statement;
    get: Statement;
    stateOf: Statement;
    transition: Statement;
    progress: Statement;
    syncNormal: Statement;
    syncFull: Statement;
    inStates: Statement;
    countByState: Statement;
    volumesWithAvailable: Statement;
    sumBytes: Statement;
    foundReset: Statement;
    foundInsert: Statement;
    orphanFiles: Statement;
    missingFiles: Statement;
    totalsDrift: Statement;
  };

  private constructor(
    readonly path: string,
    db: Database.Database,
    options: CatalogOptions,
  ) {
    this.db = db;
    this.clock = options.clock ?? Date.now;
    this.list = new SnapshotList(db, RECORD_COLUMNS);
    // Per connection, never written to the catalog file.
    db.exec('CREATE TEMP TABLE IF NOT EXISTS found_files (id TEXT PRIMARY KEY) WITHOUT ROWID');
    const prepare = (source: string): Statement => db.prepare<unknown[], Row>(source);
    const patchSets = PATCH_FIELDS.map(
      (f) => `${COLUMNS[f]} = CASE WHEN :set_${f} THEN :${f} ELSE ${COLUMNS[f]} END`,
    ).join(',\n');
    this.sql = {
      insert: prepare(`
        INSERT INTO snapshots (id, account_id, origin_volume_id, destination_id, storage_node_id, display_name,
                               state, size_bytes, method, consistency, bytes_total, created_at, updated_at)
        VALUES (:id, :accountId, :originVolumeId, :destinationId, :storageNodeId, :displayName,
                'creating', :sizeBytes, :method, :consistency, :bytesTotal, :createdAt, :createdAt)
        RETURNING ${RECORD_COLUMNS}`),
      get: prepare(`SELECT ${RECORD_COLUMNS} FROM snapshots WHERE id = ?`),
      stateOf: prepare(`SELECT state FROM snapshots WHERE id = ?`),
      transition: prepare(`
        UPDATE snapshots SET
          state = :to,
          updated_at = :now,
          deleted_at = CASE WHEN :to = 'deleted' THEN :now ELSE NULL END,
          ${patchSets}
        WHERE id = :id AND state IN (SELECT value FROM json_each(:from))
        RETURNING ${RECORD_COLUMNS}`),
      progress: prepare(`
        UPDATE snapshots SET bytes_done = ?, progress = ?, updated_at = ?
        WHERE id = ? AND state IN ('creating', 'registering')`),
      syncNormal: prepare('PRAGMA synchronous = NORMAL'),
      syncFull: prepare('PRAGMA synchronous = FULL'),
      inStates: prepare(`
        SELECT ${RECORD_COLUMNS} FROM snapshots
        WHERE state IN (SELECT value FROM json_each(?)) ORDER BY seq`),
      countByState: prepare(`SELECT state, sum(snapshots) AS n FROM snapshot_totals GROUP BY state`),
      volumesWithAvailable: prepare(`SELECT DISTINCT origin_volume_id FROM snapshots WHERE state = 'available'`),
      sumBytes: prepare(`
        SELECT coalesce(sum(allocated_bytes), 0) AS allocated, coalesce(sum(exclusive_bytes), 0) AS exclusive
        FROM snapshot_totals WHERE state = 'available'`),
      // Files found in a destination directory, loaded into a temp table so that matching them
      // against 100,000 rows happens in SQLite, not in a JavaScript heap of row objects.
      foundReset: prepare(`DELETE FROM temp.found_files`),
      foundInsert: prepare(`INSERT OR IGNORE INTO temp.found_files (id) VALUES (?)`),
      orphanFiles: prepare(`
        SELECT f.id FROM temp.found_files f
        WHERE NOT EXISTS (SELECT 1 FROM snapshots s
                          WHERE s.id = f.id AND s.destination_id = ? AND s.state NOT IN ('failed', 'deleted'))
        ORDER BY f.id`),
      missingFiles: prepare(`
        SELECT s.id FROM snapshots s
        WHERE s.destination_id = ? AND s.state = 'available'
          AND NOT EXISTS (SELECT 1 FROM temp.found_files f WHERE f.id = s.id)
        ORDER BY s.seq`),
      // Rows where the trigger-kept totals disagree with a fresh count (should never return any).
      totalsDrift: prepare(`
        WITH actual AS (
          SELECT account_id, state, count(*) AS snapshots,
                 coalesce(sum(allocated_bytes), 0) AS allocated_bytes,
                 coalesce(sum(exclusive_bytes), 0) AS exclusive_bytes
          FROM snapshots GROUP BY account_id, state),
        kept AS (SELECT * FROM snapshot_totals WHERE snapshots != 0 OR allocated_bytes != 0 OR exclusive_bytes != 0)
        SELECT account_id, state, a.snapshots AS counted, k.snapshots AS kept FROM actual AS a
          FULL JOIN kept AS k USING (account_id, state)
        WHERE a.snapshots IS NOT k.snapshots OR a.allocated_bytes IS NOT k.allocated_bytes
           OR a.exclusive_bytes IS NOT k.exclusive_bytes`),
    };
  }

  /**
   * Opens (creating if needed) the catalog at `path`; the parent directory must exist. Runs the
   * migrations and verifies the file; throws CatalogError, never leaves a half-open handle.
   */
  static open(path: string, options: CatalogOptions = {}): Catalog {
    let db: Database.Database;
    try {
      // `timeout` is SQLite's busy_timeout: a write waits this long for another connection's lock.
      db = new Database(path, { timeout: Math.max(0, Math.floor(options.busyTimeoutMs ?? 5000)) });
    } catch (err) {
      throw new CatalogError(`cannot open catalog ${path}: ${errorMessage(err)}`, { cause: err });
    }
    try {
      const mode = db.pragma('journal_mode = WAL', { simple: true });
      if (mode !== 'wal') throw new CatalogError(`catalog ${path}: cannot use WAL journal mode (got ${String(mode)})`);
      db.pragma('synchronous = FULL');
      db.pragma('foreign_keys = ON');
      db.pragma('journal_size_limit = 67108864');
      // Verify before migrating: writing into a damaged file can only make it worse.
      const damage = pragmaIntegrityCheck(db);
      if (damage.length > 0) throw new CatalogError(`catalog ${path} is damaged: ${damage.join('; ')}`, { code: 'SQLITE_CORRUPT' });
      migrate(db);
      db.pragma('optimize = 0x10002');
      const catalog = new Catalog(path, db, options);
      const drift = catalog.totalsProblems();
      if (drift.length > 0) throw new CatalogError(`catalog ${path} is inconsistent: ${drift.join('; ')}`);
      return catalog;
    } catch (err) {
      try {
        db.close();
      } catch {
        // already failing; the first error is the one worth reporting
      }
      if (err instanceof CatalogError) throw err;
      const code = sqliteCode(err);
      const what = code === 'SQLITE_CORRUPT' || code === 'SQLITE_NOTADB' ? 'is damaged' : 'cannot be opened';
      throw new CatalogError(`catalog ${path} ${what}: ${errorMessage(err)}${code ? ` (${code})` : ''}`, { cause: err });
    }
  }

  get schemaVersion(): number {
    return schemaVersion(this.db);
  }

  get isOpen(): boolean {
    return this.db.open;
  }

  /** Records a new snapshot in state 'creating' (step 1 of the write protocol, committed at once). */
  insertSnapshot(fields: NewSnapshot): SnapshotRecord {
    checkNewSnapshot(fields);
    try {
      return this.sql.insert.get({
        id: fields.id,
        accountId: fields.accountId,
        originVolumeId: fields.originVolumeId,
        destinationId: fields.destinationId,
        storageNodeId: fields.storageNodeId,
        displayName: fields.displayName ?? null,
        sizeBytes: fields.sizeBytes,
        method: fields.method ?? null,
        consistency: fields.consistency ?? null,
        bytesTotal: fields.bytesTotal ?? null,
        createdAt: fields.createdAt ?? this.clock(),
      }) as unknown as SnapshotRecord;
    } catch (err) {
      if (sqliteCode(err) === 'SQLITE_CONSTRAINT_UNIQUE' && /snapshots\.id/.test(errorMessage(err))) {
        throw new DuplicateSnapshotError(fields.id, err);
      }
      throw this.writeError(`insert snapshot ${fields.id}`, err);
    }
  }

  getSnapshot(id: string): SnapshotRecord | undefined {
    return this.sql.get.get(id) as SnapshotRecord | undefined;
  }

  /**
   * Moves a snapshot from one of `from` to `to` and applies `patch`, atomically: the UPDATE matches
   * only while the row is still in one of `from`. Throws StateConflictError when it is not,
   * UnknownSnapshotError when there is no such row. Entering 'available' sets progress to 100
   * unless the patch says otherwise; entering 'deleted' sets deleted_at.
   */
  transition(id: string, from: readonly SnapshotState[], to: SnapshotState, patch: SnapshotPatch = {}): SnapshotRecord {
    if (from.length === 0) throw new TypeError('transition: `from` must name at least one state');
    for (const state of from) {
      if (!SNAPSHOT_TRANSITIONS[state]?.includes(to)) {
        throw new TypeError(`transition: ${state} → ${to} is not a snapshot state transition`);
      }
    }
    const effective: SnapshotPatch = to === 'available' && patch.progress === undefined ? { ...patch, progress: 100 } : patch;
    const params: Record<string, unknown> = { id, to, from: JSON.stringify(from), now: this.clock() };
    for (const field of PATCH_FIELDS) {
      const value = effective[field];
      params[`set_${field}`] = value === undefined ? 0 : 1;
      params[field] = value ?? null;
    }
    let row: Row | undefined;
    try {
      row = this.sql.transition.get(params);
    } catch (err) {
      throw this.writeError(`move snapshot ${id} to ${to}`, err);
    }
    if (row !== undefined) return row as unknown as SnapshotRecord;
    const current = this.sql.stateOf.get(id) as { state: SnapshotState } | undefined;
    if (current === undefined) throw new UnknownSnapshotError(id);
    throw new StateConflictError(id, from, current.state);
  }

  /**
   * Records copy progress while the snapshot is creating or registering; returns false when it no
   * longer is (cancelled, failed). Committed without an fsync of its own: the next state change's
   * fsync covers it, and a lost progress value after a power cut is harmless.
   */
  updateProgress(id: string, bytesDone: number, progress: number): boolean {
    if (!Number.isSafeInteger(bytesDone) || bytesDone < 0) throw new RangeError(`updateProgress: bytesDone must be a non-negative integer, got ${bytesDone}`);
    if (!Number.isInteger(progress) || progress < 0 || progress > 100) throw new RangeError(`updateProgress: progress must be an integer 0..100, got ${progress}`);
    // Inside a caller's transaction the pragma would not apply to this write alone; leave it be.
    const relax = !this.db.inTransaction;
    if (relax) this.sql.syncNormal.run();
    try {
      return this.sql.progress.run(bytesDone, progress, this.clock(), id).changes === 1;
    } catch (err) {
      throw this.writeError(`record progress of snapshot ${id}`, err);
    } finally {
      if (relax) this.sql.syncFull.run();
    }
  }

  /**
   * Runs `fn` in one IMMEDIATE transaction: every catalog write inside it commits together or not
   * at all (start-up reconciliation, bulk imports). `fn` must be synchronous.
   */
  inTransaction<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  /** index: live snapshots plus those deleted within the recent window, newest first. */
  listSnapshots(query: SnapshotQuery): SnapshotPage {
    return this.list.page({ ...query, recentDeletedMs: query.recentDeletedMs ?? RECENT_DELETED_MS });
  }

  /** Oldest first; for start-up reconciliation (creating / registering / deleting). */
  snapshotsInStates(states: readonly SnapshotState[]): SnapshotRecord[] {
    return this.sql.inStates.all(JSON.stringify(states)) as unknown as SnapshotRecord[];
  }

  /** Every state, zero included. */
  /** The volumes that have at least one available snapshot (for the periodic size refresh). */
  volumesWithAvailableSnapshots(): string[] {
    return this.sql.volumesWithAvailable.pluck().all() as unknown as string[];
  }

  countByState(): Record<SnapshotState, number> {
    const counts = Object.fromEntries(SNAPSHOT_STATES.map((s) => [s, 0])) as Record<SnapshotState, number>;
    for (const row of this.sql.countByState.all() as { state: SnapshotState; n: number }[]) counts[row.state] = row.n;
    return counts;
  }

  /** Space held by available snapshots (from the FIEMAP figures recorded with each). */
  sumBytes(): SnapshotByteTotals {
    return this.sql.sumBytes.get() as unknown as SnapshotByteTotals;
  }

  /**
   * Matches the snapshot ids whose files were found in one destination against the catalog:
   * orphans are files with no row there that should have one (none, another destination, failed
   * or deleted); missing are available rows of that destination with no file.
   */
  matchFiles(destinationId: string, foundIds: Iterable<string>): { orphans: string[]; missing: string[] } {
    return this.db.transaction(() => {
      this.sql.foundReset.run();
      for (const id of foundIds) this.sql.foundInsert.run(id);
      const orphans = this.sql.orphanFiles.pluck().all(destinationId) as unknown as string[];
      const missing = this.sql.missingFiles.pluck().all(destinationId) as unknown as string[];
      this.sql.foundReset.run();
      return { orphans, missing };
    })();
  }

  /** [] when healthy; otherwise one line per problem (SQLite's integrity_check, then our totals). */
  integrityCheck(): string[] {
    const damage = pragmaIntegrityCheck(this.db);
    return damage.length > 0 ? damage : this.totalsProblems();
  }

  /** Idempotent. */
  close(): void {
    if (!this.db.open) return;
    try {
      this.db.pragma('optimize');
    } finally {
      this.db.close();
    }
  }

  private totalsProblems(): string[] {
    return (this.sql.totalsDrift.all() as { account_id: string; state: string; counted: number | null; kept: number | null }[]).map(
      (r) => `snapshot_totals for ${r.account_id}/${r.state} disagree with the snapshots table (${r.kept ?? 0} kept, ${r.counted ?? 0} counted)`,
    );
  }

  private writeError(what: string, err: unknown): Error {
    if (err instanceof CatalogError || err instanceof TypeError || err instanceof RangeError) return err;
    return new CatalogError(`catalog ${this.path}: cannot ${what}: ${errorMessage(err)}`, { cause: err });
  }
}

function pragmaIntegrityCheck(db: Database.Database): string[] {
  const rows = db.pragma('integrity_check(20)') as { integrity_check: string }[];
  const lines = rows.map((r) => r.integrity_check);
  return lines.length === 1 && lines[0] === 'ok' ? [] : lines;
}

/** The ids end up in file names and the API; refuse anything malformed before it is stored. */
function checkNewSnapshot(f: NewSnapshot): void {
  const problems: string[] = [];
  if (!isSnapshotId(f.id)) problems.push(`id ${JSON.stringify(f.id)} is not a snapshot id`);
  if (!isAccountId(f.accountId)) problems.push(`accountId ${JSON.stringify(f.accountId)} is not an account id`);
  if (!isVolumeId(f.originVolumeId)) problems.push(`originVolumeId ${JSON.stringify(f.originVolumeId)} is not a volume id`);
  if (!isDestinationId(f.destinationId)) problems.push(`destinationId ${JSON.stringify(f.destinationId)} is not a destination id`);
  if (!isNodeId(f.storageNodeId)) problems.push(`storageNodeId ${JSON.stringify(f.storageNodeId)} is not a node id`);
  if (!Number.isSafeInteger(f.sizeBytes) || f.sizeBytes < 0) problems.push(`sizeBytes must be a non-negative integer, got ${f.sizeBytes}`);
  if (problems.length > 0) throw new TypeError(`insertSnapshot: ${problems.join('; ')}`);
}
