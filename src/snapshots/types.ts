// The engine's face to the layers above (the HTTP API, the CLI via HTTP, metrics).
import type { SnapshotPage, SnapshotQuery, SnapshotRecord } from '../catalog';
import type { Destination } from '../config';

export interface CreateSnapshotRequest {
  /** Every snapshot belongs to an account; even an admin caller names one to create. */
  accountId: string;
  volumeId: string;
  destinationId: string;
  /** Must equal this node's id when given (else UnknownStorageNode). */
  storagePoolId?: string;
  displayName?: string;
  /** Caller-chosen id: a retry with the same id and volume returns the existing snapshot. */
  id?: string;
}

export interface RestoreRequest {
  accountId: string | null;
  snapshotId: string;
  /** The new volume's id; generated when absent. Never an existing volume. */
  volumeId?: string;
}

export interface VolumeInfo {
  id: string;
  sizeBytes: number;
  allocatedBytes: number;
  createdAt: number;
}

export interface DestinationStatus {
  id: string;
  displayName: string;
  path: string;
  freeBytes: number;
  totalBytes: number;
  /** The filesystem type: xfs, btrfs, ext4, …, or "unknown (0x…)" with the statfs magic number. */
  filesystem: string;
  /** Whether volumes reflink into it (false: snapshots there are copies). */
  reflink: boolean;
  writable: boolean;
}

export interface EngineStats {
  jobsRunning: number;
  jobsQueued: number;
  orphanFiles: number;
}

export interface SnapshotEngine {
  readonly nodeId: string;
  /** False once the catalog is closed (shutdown): the node is no longer ready. */
  readonly catalogOpen: boolean;
  /** Records the snapshot ('creating') and queues the work; resolves with the new record. */
  createSnapshot(req: CreateSnapshotRequest): Promise<SnapshotRecord>;
  /** undefined when unknown or another account's (accountId null = any account). */
  getSnapshot(id: string, accountId: string | null): SnapshotRecord | undefined;
  listSnapshots(q: SnapshotQuery): SnapshotPage;
  /** Marks 'deleting', removes the file, then 'deleted'. Resolves when it is deleted. */
  deleteSnapshot(id: string, accountId: string | null): Promise<SnapshotRecord>;
  restoreSnapshot(req: RestoreRequest): Promise<VolumeInfo>;
  listVolumes(): Promise<VolumeInfo[]>;
  getVolume(id: string): Promise<VolumeInfo | undefined>;
  destinations(): Destination[];
  destinationStatus(): Promise<DestinationStatus[]>;
  stats(): EngineStats;
}
