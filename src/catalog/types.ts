// The catalog's domain types. Records are camelCase; the table is snake_case (see COLUMNS in
// catalog.ts, the one place that maps between them).

export type SnapshotState = 'creating' | 'registering' | 'available' | 'failed' | 'deleting' | 'deleted';

export const SNAPSHOT_STATES: readonly SnapshotState[] = Object.freeze([
  'creating',
  'registering',
  'available',
  'failed',
  'deleting',
  'deleted',
] as const);

export type SnapshotMethod = 'reflink' | 'copy';
export type SnapshotConsistency = 'point-in-time' | 'inconsistent';

export interface SnapshotRecord {
  seq: number;
  id: string;
  accountId: string;
  originVolumeId: string;
  destinationId: string;
  storageNodeId: string;
  displayName: string | null;
  state: SnapshotState;
  /** Logical size of the origin volume, bytes. */
  sizeBytes: number;
  method: SnapshotMethod | null;
  consistency: SnapshotConsistency | null;
  /** 0..100 */
  progress: number;
  bytesTotal: number | null;
  bytesDone: number | null;
  allocatedBytes: number | null;
  sharedBytes: number | null;
  exclusiveBytes: number | null;
  checksum: string | null;
  error: string | null;
  /** ms since the epoch */
  createdAt: number;
  updatedAt: number;
  deletedAt: number | null;
}

/** What the caller knows when a snapshot is first recorded (state 'creating'). */
export interface NewSnapshot {
  id: string;
  accountId: string;
  originVolumeId: string;
  destinationId: string;
  storageNodeId: string;
  displayName?: string | null;
  sizeBytes: number;
  method?: SnapshotMethod | null;
  consistency?: SnapshotConsistency | null;
  bytesTotal?: number | null;
  /** Defaults to the catalog's clock. */
  createdAt?: number;
}

/** Fields a state transition may set along with the new state. */
export type SnapshotPatch = Partial<
  Pick<
    SnapshotRecord,
    | 'method'
    | 'consistency'
    | 'progress'
    | 'bytesTotal'
    | 'bytesDone'
    | 'allocatedBytes'
    | 'sharedBytes'
    | 'exclusiveBytes'
    | 'checksum'
    | 'error'
  >
>;

/**
 * The edges of the snapshot state machine the catalog accepts (design: creating → registering →
 * available | failed; available/failed → deleting → deleted). A state may move to itself so that
 * a patch (method, sizes, error) can be recorded without a state change, except 'deleted', which
 * is final. available → failed is for a file found missing or damaged after the fact.
 */
export const SNAPSHOT_TRANSITIONS: Readonly<Record<SnapshotState, readonly SnapshotState[]>> = Object.freeze({
  creating: ['creating', 'registering', 'available', 'failed'],
  registering: ['registering', 'available', 'failed'],
  available: ['available', 'deleting', 'failed'],
  failed: ['failed', 'deleting'],
  deleting: ['deleting', 'deleted'],
  deleted: [],
});

/** Deleted snapshots stay visible in index this long (dcmgr's RECENT_TERMED_PERIOD, 900 s). */
export const RECENT_DELETED_MS = 900_000;

export interface SnapshotQuery {
  /** null = every account (admin). */
  accountId: string | null;
  /** The reference time for the deleted-snapshot window, ms since the epoch. */
  now: number;
  /** Default RECENT_DELETED_MS. */
  recentDeletedMs?: number;
  states?: readonly SnapshotState[];
  originVolumeId?: string;
  destinationId?: string;
  /** Inclusive, ms since the epoch. */
  createdSince?: number;
  /** Inclusive, ms since the epoch. */
  createdUntil?: number;
  /** Offset into the ordered set, >= 0. */
  start: number;
  /** null = no limit. */
  limit: number | null;
}

export interface SnapshotPage {
  /** Size of the whole filtered set, independent of start/limit (index's owner_total). */
  total: number;
  /** Newest first (seq descending). */
  rows: SnapshotRecord[];
}

export interface SnapshotByteTotals {
  /** Over 'available' snapshots. */
  allocated: number;
  exclusive: number;
}
