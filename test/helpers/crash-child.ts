// The engine in a process of its own, for crash tests: it opens (reconciling whatever the last
// kill left), reports what it found, waits for "GO", then creates, deletes and restores snapshots
// at random until it is killed. Lines on stdout (written synchronously, so a kill cannot lose a
// line whose operation started): READY <json>, RESTORE <snapshot> <volume>.
import * as fs from 'node:fs';

import type { Config } from '../../src/config';
import { Engine } from '../../src/snapshots/engine';

const say = (line: string): void => {
  fs.writeSync(1, `${line}\n`);
};

async function main(): Promise<void> {
  const config = JSON.parse(fs.readFileSync(process.argv[2]!, 'utf8')) as Config;
  const volumes = process.argv[3]!.split(',');
  let seed = Number(process.argv[4] ?? 1);
  const random = (): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  const pick = <T>(xs: T[]): T => xs[Math.floor(random() * xs.length)]!;

  const engine = await Engine.open(config, { chunkBytes: 256 * 1024, progressIntervalMs: 5 });
  const rows = engine.listSnapshots({ accountId: null, now: Date.now(), recentDeletedMs: 1e12, start: 0, limit: null }).rows;
  say(`READY ${JSON.stringify({ report: engine.reconcileReport, integrity: engine.integrityCheck(), rows })}`);
  await new Promise<void>((resolve) => process.stdin.once('data', () => resolve()));

  let restores = 0;
  const inFlight = new Set<Promise<unknown>>();
  // Now and then a "VM" opens a volume for writing without changing a byte, so copies that
  // need a read lease fail (or are abandoned mid-way) while the kills go on.
  const holdVolumes = process.argv[5] === 'hold';
  for (;;) {
    if (holdVolumes && random() < 0.05) {
      const fd = fs.openSync(`${config.volumesDir}/${pick(volumes)}`, 'r+');
      setTimeout(() => fs.closeSync(fd), random() * 50);
    }
    const all = engine.listSnapshots({ accountId: null, now: Date.now(), start: 0, limit: null }).rows;
    const available = all.filter((r) => r.state === 'available');
    const deletable = all.filter((r) => r.state === 'available' || r.state === 'failed');
    const roll = random();
    let op: Promise<unknown>;
    if (roll < 0.55 || deletable.length === 0) {
      op = engine.createSnapshot({ accountId: 'a-crash', volumeId: pick(volumes), destinationId: pick(config.destinations).id });
    } else if (roll < 0.8 || available.length === 0 || available.length > 6) {
      op = engine.deleteSnapshot(pick(deletable).id, null);
    } else {
      const snap = pick(available);
      const volumeId = `vol-r${process.pid}x${restores++}`;
      say(`RESTORE ${snap.id} ${volumeId}`);
      op = engine.restoreSnapshot({ accountId: null, snapshotId: snap.id, volumeId });
    }
    const tracked = op.catch(() => undefined).finally(() => inFlight.delete(tracked));
    inFlight.add(tracked);
    if (inFlight.size >= 4) await Promise.race(inFlight);
    await new Promise((r) => setTimeout(r, random() * 5));
  }
}

main().catch((e) => {
  say(`ERROR ${e instanceof Error ? e.stack : String(e)}`);
  process.exit(1);
});
