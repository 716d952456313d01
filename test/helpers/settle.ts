// Waits for a snapshot's job to end: available or failed.
import type { SnapshotRecord } from '../../src/catalog';
import type { Engine } from '../../src/snapshots/engine';

export async function settle(engine: Pick<Engine, 'getSnapshot'>, id: string, timeoutMs = 60_000): Promise<SnapshotRecord> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const row = engine.getSnapshot(id, null);
    if (!row) throw new Error(`snapshot ${id} is not in the catalog`);
    if (row.state === 'available' || row.state === 'failed') return row;
    if (Date.now() > until) throw new Error(`snapshot ${id} still ${row.state}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
