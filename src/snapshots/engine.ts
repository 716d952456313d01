// The snapshot engine: the state machine over the catalog and the file layer.
//   create:  creating → (registering) → available | failed
//   delete:  available | failed → deleting → deleted (the row stays: soft delete)
//   restore: a new volume file from an available snapshot, same write protocol
// Routes and the CLI reach files and SQL only through this class.
import * as fs from 'node:fs';
import * as path from 'node:path';

import { Catalog, CATALOG_FILE_NAME, DuplicateSnapshotError, StateConflictError, type SnapshotPage, type SnapshotQuery, type SnapshotRecord } from '../catalog';
import type { Config, Destination } from '../config';
import { canReflink, fsyncDirectory, isNativeError, lockStateDir, spaceForCopy, tempPathFor, writeSnapshotFile, type StateLock, type WriteSnapshotResult } from '../fs';
import { SNAPSHOT_ID_RE, VOLUME_ID_RE, newSnapshotId, newVolumeId } from '../ids';
import { silentLogger, type Logger } from '../logger';
import { EngineError } from './errors';
import { destinationStatus } from './destinations';
import { describeFailure, SHUTDOWN_REASON } from './failures';
import { JobQueue } from './jobs';
import { reconcile, scanSnapshotFiles, snapshotFilePath, type ReconcileReport } from './reconcile';
import { SizeRefresher } from './sizes';
import type {
  CreateSnapshotRequest,
  DestinationStatus,
  EngineStats,
  RestoreRequest,
  SnapshotEngine,
  VolumeInfo,
} from './types';
import { listVolumes, statVolume, volumePath } from './volumes';

/** What happened, for metrics: one call per finished operation. */
export interface EngineObserver {
  operation(op: 'create' | 'delete' | 'restore', result: 'success' | 'failure', details: {
    seconds: number;
    method?: 'reflink' | 'copy';
    bytesCopied?: number;
  }): void;
}

export interface EngineOptions {
  clock?: () => number;
  logger?: Logger;
  observer?: EngineObserver;
  /** Progress is written to the catalog at most this often per job. */
  progressIntervalMs?: number;
  /** How often every volume's snapshot sizes are re-read (default 15 minutes; 0: never). */
  sizeRefreshIntervalMs?: number;
  /** Testing: copy chunk size (smaller = more progress points and abort chances). */
  chunkBytes?: number;
}

export const STAGING_DIR_NAME = '.volsnapd-staging';

export class Engine implements SnapshotEngine {
  readonly nodeId: string;
  private readonly queue: JobQueue;
  private readonly clock: () => number;
  private readonly logger: Logger;
  private readonly stagingDir: string;
  private orphanCount: number;
  private readonly restoring = new Set<string>();
  // Snapshots being read by a restore, with how many restores: they cannot be deleted meanwhile.
  private readonly pinned = new Map<string, number>();
  // Size refreshes in flight, by origin volume, and whether another was asked for meanwhile.
  private readonly sizes: SizeRefresher;

  private constructor(
    private readonly config: Config,
    private readonly catalog: Catalog,
    private readonly options: EngineOptions,
    report: ReconcileReport,
    private readonly lock: StateLock,
  ) {
    this.nodeId = config.nodeId;
    this.queue = new JobQueue(config.jobs.concurrency);
    this.clock = options.clock ?? Date.now;
    this.logger = options.logger ?? silentLogger;
    this.stagingDir = path.join(config.volumesDir, STAGING_DIR_NAME);
    this.orphanCount = report.orphans.length;
    this.reconcileReport = report;
    this.sizes = new SizeRefresher(catalog, config.destinations, this.logger, this.clock);
    const every = options.sizeRefreshIntervalMs ?? 15 * 60_000;
    if (every > 0) this.sizes.sweepEvery(every);
  }

  readonly reconcileReport: ReconcileReport;

  /** Opens the catalog (refusing a damaged one), prepares the staging area, and reconciles what a
   *  previous run left before anything is served. The directories must exist (ensureDirectories). */
  static async open(config: Config, options: EngineOptions = {}): Promise<Engine> {
    const logger = options.logger ?? silentLogger;
    const lock = lockStateDir(config.stateDir);
    let catalog: Catalog | undefined;
    try {
      catalog = Catalog.open(path.join(config.stateDir, CATALOG_FILE_NAME), { clock: options.clock });
      const stagingDir = path.join(config.volumesDir, STAGING_DIR_NAME);
      await fs.promises.mkdir(stagingDir, { recursive: true, mode: 0o700 });
      const report = await reconcile({ catalog, destinations: config.destinations, volumesDir: config.volumesDir, stagingDir, logger });
      return new Engine(config, catalog, options, report, lock);
    } catch (e) {
      catalog?.close();
      lock.release();
      throw e;
    }
  }

  /** Stops taking jobs, lets running ones finish up to `deadlineMs`, cancels the rest (they end
   *  failed, nothing partial), and waits for background size refreshes. The catalog stays open
   *  for requests still being answered. */
  async stopJobs(deadlineMs = this.config.jobs.shutdownDeadlineMs): Promise<void> {
    await this.queue.close(deadlineMs, SHUTDOWN_REASON);
    await this.sizes.stop();
  }

  /** stopJobs, then closes the catalog and releases the state directory. */
  async close(deadlineMs = this.config.jobs.shutdownDeadlineMs): Promise<void> {
    if (!this.catalog.isOpen) return;
    await this.stopJobs(deadlineMs);
    this.catalog.close();
    this.lock.release();
  }

  /** Cancels every running and queued job at once (they end failed, nothing partial). */
  cancelJobs(): void {
    this.queue.abortAll(SHUTDOWN_REASON);
  }

  destinations(): Destination[] {
    return this.config.destinations;
  }

  stats(): EngineStats {
    return { jobsRunning: this.queue.running, jobsQueued: this.queue.queued, orphanFiles: this.orphanCount };
  }

  get catalogOpen(): boolean {
    return this.catalog.isOpen;
  }

  countByState(): ReturnType<Catalog['countByState']> {
    return this.catalog.countByState();
  }

  /** [] when the catalog is healthy (SQLite integrity_check and the catalog's own totals). */
  integrityCheck(): string[] {
    return this.catalog.integrityCheck();
  }

  byteTotals(): ReturnType<Catalog['sumBytes']> {
    return this.catalog.sumBytes();
  }

  /** Catalog against files, on demand (doctor); refreshes the orphan count. */
  async checkFiles(): Promise<{ orphans: string[]; missing: string[]; problems: string[] }> {
    const r = await scanSnapshotFiles(this.catalog, this.config.destinations);
    this.orphanCount = r.orphans.length;
    return r;
  }

  getSnapshot(id: string, accountId: string | null): SnapshotRecord | undefined {
    if (!SNAPSHOT_ID_RE.test(id)) return undefined;
    const row = this.catalog.getSnapshot(id);
    if (!row || (accountId !== null && row.accountId !== accountId)) return undefined;
    return row;
  }

  listSnapshots(q: SnapshotQuery): SnapshotPage {
    return this.catalog.listSnapshots(q);
  }

  private destination(id: string): Destination {
    const dest = this.config.destinations.find((d) => d.id === id);
    if (!dest) {
      const known = this.config.destinations.map((d) => d.id).join(', ');
      throw new EngineError('InvalidParameter', `unknown destination '${id}' (this node has: ${known})`);
    }
    return dest;
  }

  async createSnapshot(req: CreateSnapshotRequest): Promise<SnapshotRecord> {
    if (this.queue.isClosed) throw new EngineError('ServiceUnavailable', 'the daemon is shutting down; try again on its next start');
    if (req.storagePoolId !== undefined && req.storagePoolId !== this.nodeId) {
      throw new EngineError('UnknownStorageNode', `storage node '${req.storagePoolId}' is not this node ('${this.nodeId}')`);
    }
    if (!VOLUME_ID_RE.test(req.volumeId)) throw new EngineError('UnknownVolume', `unknown volume '${req.volumeId}'`);
    const dest = this.destination(req.destinationId);
    if (req.id !== undefined) {
      if (!SNAPSHOT_ID_RE.test(req.id)) throw new EngineError('InvalidParameter', `id must match ${SNAPSHOT_ID_RE.source}`);
      const existing = this.idempotent(req);
      if (existing) return existing;
    }
    const volume = await statVolume(this.config.volumesDir, req.volumeId);
    if (!volume) throw new EngineError('UnknownVolume', `unknown volume '${req.volumeId}'`);
    const source = volumePath(this.config.volumesDir, req.volumeId);

    const reflinks = await canReflink(this.config.volumesDir, dest.path).catch(() => false);
    if (!reflinks) {
      const { need, free } = await spaceForCopy(source, dest.path);
      if (need > free) {
        throw new EngineError('OutOfDiskSpace', `destination '${dest.id}' has ${free} bytes free; a copy of ${req.volumeId} needs ${need}`);
      }
    }

    let record: SnapshotRecord | undefined;
    for (let attempt = 0; record === undefined; attempt++) {
      const id = req.id ?? newSnapshotId();
      // A file already under this name (an orphan kept for the operator, another node's snapshot
      // on a shared destination) is never taken over: a failed or deleted row would remove it.
      if (this.fileExists(snapshotFilePath(dest, id)) || this.fileExists(tempPathFor(snapshotFilePath(dest, id)))) {
        if (req.id !== undefined) throw new EngineError('Conflict', `snapshot id '${id}' is already in use`);
        continue;
      }
      if (this.queue.isClosed) throw new EngineError('ServiceUnavailable', 'the daemon is shutting down; try again on its next start');
      try {
        record = this.catalog.insertSnapshot({
          id,
          accountId: req.accountId,
          originVolumeId: req.volumeId,
          destinationId: dest.id,
          storageNodeId: this.nodeId,
          displayName: req.displayName ?? null,
          sizeBytes: volume.sizeBytes,
          method: reflinks ? 'reflink' : 'copy',
        });
      } catch (e) {
        if (!(e instanceof DuplicateSnapshotError)) throw e;
        if (req.id !== undefined) {
          const existing = this.idempotent(req);
          if (existing) return existing;
        }
        if (attempt > 5) throw e;
      }
    }
    const id = record.id;
    try {
      void this.queue.push(id, (signal) => this.runCreate(id, source, dest, signal));
    } catch {
      // Shutdown began between the check and now: the row must not wait for a restart.
      this.catalog.transition(id, ['creating'], 'failed', { error: SHUTDOWN_REASON });
      throw new EngineError('ServiceUnavailable', 'the daemon is shutting down; try again on its next start');
    }
    return record;
  }

  // A retry with the same caller-chosen id: the same volume gets the existing snapshot back.
  private idempotent(req: CreateSnapshotRequest): SnapshotRecord | undefined {
    const existing = this.catalog.getSnapshot(req.id!);
    if (!existing) return undefined;
    // The same answer whoever holds the id, so a caller learns nothing of other accounts.
    if (existing.accountId !== req.accountId || existing.originVolumeId !== req.volumeId || existing.destinationId !== req.destinationId) {
      throw new EngineError('Conflict', `snapshot id '${req.id}' is already in use`);
    }
    return existing;
  }

  private async runCreate(id: string, source: string, dest: Destination, signal: AbortSignal): Promise<void> {
    const log = this.logger.child({ snapshot_id: id });
    const started = process.hrtime.bigint();
    const seconds = (): number => Number(process.hrtime.bigint() - started) / 1e9;
    const final = snapshotFilePath(dest, id);
    const interval = this.options.progressIntervalMs ?? 500;
    let lastWrite = 0;
    let result: WriteSnapshotResult | undefined;
    let committed = false;
    try {
      if (signal.aborted) throw signal.reason;
      log.info({ destination: dest.id }, 'snapshot started');
      result = await writeSnapshotFile(source, final, {
        stagingDir: this.stagingDir,
        lease: this.config.allowInconsistentCopy ? 'try' : 'require',
        chunkBytes: this.options.chunkBytes,
        signal,
        onStaged: () => {
          this.catalog.transition(id, ['creating'], 'registering');
          log.info({}, 'point-in-time image staged; copying to the destination');
        },
        onProgress: (done, total) => {
          const now = Date.now();
          if (now - lastWrite < interval || total === 0) return;
          lastWrite = now;
          this.catalog.updateProgress(id, done, Math.min(99, Math.floor((done / total) * 100)));
        },
      });
      const done = this.catalog.transition(id, ['creating', 'registering'], 'available', {
        method: result.method,
        consistency: result.pointInTime ? 'point-in-time' : 'inconsistent',
        bytesDone: result.bytesCopied,
        bytesTotal: result.extents.allocatedBytes,
        allocatedBytes: result.extents.allocatedBytes,
        // Unknown where the filesystem has no FIEMAP, rather than a guess.
        sharedBytes: result.extents.exact ? result.extents.sharedBytes : null,
        exclusiveBytes: result.extents.exact ? result.extents.exclusiveBytes : null,
      });
      committed = true;
      log.info({ method: result.method, ms: Math.round(result.durationMs), bytes_copied: result.bytesCopied }, 'snapshot available');
      void this.sizes.refresh(done.originVolumeId);
      this.options.observer?.operation('create', 'success', { seconds: seconds(), method: result.method, bytesCopied: result.bytesCopied });
    } catch (e) {
      // Available is final: nothing after it may take the file away.
      if (committed) {
        log.error({ err: String(e) }, 'after the snapshot became available');
        return;
      }
      // The file may have been given its final name before the catalog update failed.
      if (result) await fs.promises.rm(final, { force: true }).catch(() => undefined);
      const reason = describeFailure(e, this.config.allowInconsistentCopy);
      log.error({ err: e instanceof Error ? e.message : String(e) }, `snapshot failed: ${reason}`);
      try {
        this.catalog.transition(id, ['creating', 'registering'], 'failed', { error: reason });
      } catch (te) {
        log.error({ err: String(te) }, 'could not record the failure');
      }
      this.options.observer?.operation('create', 'failure', { seconds: seconds() });
    }
  }

  async deleteSnapshot(id: string, accountId: string | null): Promise<SnapshotRecord> {
    const started = process.hrtime.bigint();
    const row = this.getSnapshot(id, accountId);
    if (!row) throw new EngineError('UnknownVolumeSnapshot', `unknown volume snapshot '${id}'`);
    if (row.state !== 'available' && row.state !== 'failed') {
      throw new EngineError('InvalidVolumeState', `snapshot '${id}' is ${row.state}; only available or failed snapshots can be deleted`);
    }
    if (this.pinned.has(id)) throw new EngineError('InvalidVolumeState', `snapshot '${id}' is being restored; delete it when the restore is done`);
    const dest = this.config.destinations.find((d) => d.id === row.destinationId);
    if (!dest) {
      throw new EngineError('InvalidParameter', `snapshot '${id}' is in destination '${row.destinationId}', which is no longer configured; configure it again to delete the snapshot's file`);
    }
    try {
      this.catalog.transition(id, ['available', 'failed'], 'deleting');
    } catch (e) {
      if (e instanceof StateConflictError) throw new EngineError('InvalidVolumeState', `snapshot '${id}' changed state; try again`);
      throw e;
    }
    const log = this.logger.child({ snapshot_id: id });
    try {
      await fs.promises.rm(snapshotFilePath(dest, id), { force: true });
      await fsyncDirectory(dest.path);
      const deleted = this.catalog.transition(id, ['deleting'], 'deleted');
      log.info({}, 'snapshot deleted');
      void this.sizes.refresh(row.originVolumeId);
      this.sizes.refreshLater(row.originVolumeId, 2000);
      this.options.observer?.operation('delete', 'success', { seconds: Number(process.hrtime.bigint() - started) / 1e9 });
      return deleted;
    } catch (e) {
      // The row stays 'deleting'; the next start finishes the delete.
      log.error({ err: String(e) }, 'delete interrupted');
      this.options.observer?.operation('delete', 'failure', { seconds: Number(process.hrtime.bigint() - started) / 1e9 });
      throw new EngineError('ServiceUnavailable', `the snapshot file could not be removed (${e instanceof Error ? e.message : String(e)}); the delete finishes on the next start`);
    }
  }

  /** Re-reads the FIEMAP sizes of a volume's available snapshots (see SizeRefresher). */
  refreshSizes(originVolumeId: string): Promise<void> {
    return this.sizes.refresh(originVolumeId);
  }

  async restoreSnapshot(req: RestoreRequest): Promise<VolumeInfo> {
    if (this.queue.isClosed) throw new EngineError('ServiceUnavailable', 'the daemon is shutting down; try again on its next start');
    const started = process.hrtime.bigint();
    const row = this.getSnapshot(req.snapshotId, req.accountId);
    if (!row) throw new EngineError('UnknownVolumeSnapshot', `unknown volume snapshot '${req.snapshotId}'`);
    if (row.state !== 'available') {
      throw new EngineError('InvalidVolumeState', `snapshot '${row.id}' is ${row.state}; only an available snapshot can be restored`);
    }
    const volumeId = req.volumeId ?? newVolumeId();
    if (!VOLUME_ID_RE.test(volumeId)) throw new EngineError('InvalidParameter', `volume_id must match ${VOLUME_ID_RE.source}`);
    const target = volumePath(this.config.volumesDir, volumeId);
    if (this.restoring.has(volumeId) || fs.existsSync(target)) {
      throw new EngineError('Conflict', `volume '${volumeId}' already exists; a restore never overwrites a volume`);
    }
    const dest = this.destination(row.destinationId);
    const source = snapshotFilePath(dest, row.id);
    this.restoring.add(volumeId);
    this.pinned.set(row.id, (this.pinned.get(row.id) ?? 0) + 1);
    const log = this.logger.child({ snapshot_id: row.id, volume_id: volumeId });
    let failure: unknown;
    try {
      await this.queue.push(`restore:${volumeId}`, async (signal) => {
        try {
          // Snapshot files are never written after they are made, so no lease is needed. The new
          // volume belongs to whoever owns the volume it came from (the VM's user), when it exists.
          const origin = await fs.promises.stat(volumePath(this.config.volumesDir, row.originVolumeId)).catch(() => undefined);
          const r = await writeSnapshotFile(source, target, {
            signal,
            chunkBytes: this.options.chunkBytes,
            dropSourceCache: true,
            ...(origin ? { owner: { uid: origin.uid, gid: origin.gid, mode: origin.mode } } : {}),
          });
          log.info({ method: r.method, ms: Math.round(r.durationMs) }, 'volume restored');
          this.options.observer?.operation('restore', 'success', { seconds: Number(process.hrtime.bigint() - started) / 1e9, method: r.method, bytesCopied: r.bytesCopied });
        } catch (e) {
          failure = e;
        }
      });
    } catch (e) {
      // The queue closed (shutdown) before the job could be queued.
      failure = e;
    } finally {
      this.restoring.delete(volumeId);
      const pins = (this.pinned.get(row.id) ?? 1) - 1;
      if (pins > 0) this.pinned.set(row.id, pins);
      else this.pinned.delete(row.id);
    }
    if (failure !== undefined) {
      this.options.observer?.operation('restore', 'failure', { seconds: Number(process.hrtime.bigint() - started) / 1e9 });
      if (isNativeError(failure, 'ENOSPC')) throw new EngineError('OutOfDiskSpace', describeFailure(failure, false));
      if (isNativeError(failure, 'EEXIST')) throw new EngineError('Conflict', `volume '${volumeId}' already exists; a restore never overwrites a volume`);
      if (isNativeError(failure, 'ECANCELED') || this.queue.isClosed) throw new EngineError('ServiceUnavailable', 'the restore was cancelled: the daemon is shutting down');
      if (isNativeError(failure, 'ENOENT') && failure.path === source) throw new EngineError('UnknownVolumeSnapshot', `snapshot '${row.id}' has no file (see doctor)`);
      throw failure;
    }
    const info = await statVolume(this.config.volumesDir, volumeId);
    if (!info) throw new Error(`restored volume ${volumeId} vanished`);
    return info;
  }

  private fileExists(file: string): boolean {
    return fs.existsSync(file);
  }

  listVolumes(): Promise<VolumeInfo[]> {
    return listVolumes(this.config.volumesDir);
  }

  getVolume(id: string): Promise<VolumeInfo | undefined> {
    return statVolume(this.config.volumesDir, id);
  }

  destinationStatus(): Promise<DestinationStatus[]> {
    return destinationStatus(this.config);
  }

}
