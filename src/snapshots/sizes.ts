// Keeps each snapshot's FIEMAP sizes true. What a snapshot shares changes when a sibling is made
// or deleted (and as its volume is rewritten), so the exclusive bytes recorded at creation go
// stale; a refresh re-reads the sizes of all available snapshots of one volume, in the background.
import { StateConflictError, type Catalog } from '../catalog';
import type { Destination } from '../config';
import { isNativeError, spaceUsage } from '../fs';
import type { Logger } from '../logger';
import { snapshotFilePath } from './reconcile';

export class SizeRefresher {
  // Refreshes in flight, by origin volume, and whether another was asked for meanwhile.
  private readonly running = new Map<string, { again: boolean; done: Promise<void> }>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private sweep: NodeJS.Timeout | undefined;
  private sweeping: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly catalog: Catalog,
    private readonly destinations: Destination[],
    private readonly logger: Logger,
    private readonly clock: () => number,
  ) {}

  /** Refreshes the volume's snapshots; a request during a refresh makes it run once more. */
  refresh(originVolumeId: string): Promise<void> {
    const running = this.running.get(originVolumeId);
    if (running) {
      running.again = true;
      return running.done;
    }
    const entry = { again: false, done: Promise.resolve() };
    entry.done = (async () => {
      do {
        entry.again = false;
        await this.refreshOnce(originVolumeId);
      } while (entry.again && this.catalog.isOpen);
      this.running.delete(originVolumeId);
    })();
    this.running.set(originVolumeId, entry);
    return entry.done;
  }

  /** A refresh `ms` from now: some filesystems (XFS) free an unlinked file's blocks in the
   *  background, so a look right after a delete can still see them shared. */
  refreshLater(originVolumeId: string, ms: number): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      void this.refresh(originVolumeId);
    }, ms);
    timer.unref();
    this.timers.add(timer);
  }

  /** Every `intervalMs`, refreshes every volume that has available snapshots, one volume at a
   *  time: a volume rewritten by its VM changes what its snapshots hold alone even when no
   *  snapshot of it is made or deleted. */
  sweepEvery(intervalMs: number): void {
    const tick = async (): Promise<void> => {
      this.sweep = undefined;
      for (const volume of this.catalog.isOpen ? this.catalog.volumesWithAvailableSnapshots() : []) {
        if (this.stopped) return;
        await this.refresh(volume);
      }
      if (!this.stopped) this.sweep = setTimeout(() => void (this.sweeping = tick()), intervalMs).unref();
    };
    this.sweep = setTimeout(() => void (this.sweeping = tick()), intervalMs).unref();
  }

  /** Drops the refreshes not yet due and waits for the running ones. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.sweep) clearTimeout(this.sweep);
    await this.sweeping;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    await Promise.all([...this.running.values()].map((r) => r.done));
  }

  private async refreshOnce(originVolumeId: string): Promise<void> {
    if (!this.catalog.isOpen) return;
    const rows = this.catalog.listSnapshots({ accountId: null, now: this.clock(), originVolumeId, states: ['available'], start: 0, limit: null }).rows;
    for (const row of rows) {
      const dest = this.destinations.find((d) => d.id === row.destinationId);
      if (!dest || !this.catalog.isOpen) continue;
      try {
        const e = await spaceUsage(snapshotFilePath(dest, row.id));
        if (!e.exact) continue;
        if (e.allocatedBytes === row.allocatedBytes && e.sharedBytes === row.sharedBytes) continue;
        this.catalog.transition(row.id, ['available'], 'available', {
          allocatedBytes: e.allocatedBytes,
          sharedBytes: e.sharedBytes,
          exclusiveBytes: e.exclusiveBytes,
        });
      } catch (e) {
        // Deleted meanwhile, or its file is gone (doctor reports that): nothing to refresh.
        if (!(e instanceof StateConflictError) && !isNativeError(e, 'ENOENT')) {
          this.logger.warn({ snapshot_id: row.id, err: String(e) }, 'could not refresh snapshot sizes');
        }
      }
    }
  }
}
