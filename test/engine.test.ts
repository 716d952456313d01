// The engine on real filesystems: reflink on XFS, copy on ext4, staging across filesystems,
// bounded concurrency, space refusals, and deletes/restores that leave every other file alone.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

import { Engine } from '../src/snapshots/engine';
import { JobQueue } from '../src/snapshots/jobs';
import { isEngineError } from '../src/snapshots/errors';
import { MiB, allocated, sha256, writeDense, writeLayout } from './helpers/files';
import { canMake, makeFs, type TestFs } from './helpers/loopfs';
import { testConfig } from './helpers/node-config';
import { settle } from './helpers/settle';

const ACCOUNT = 'a-shpoolxx';

describe('job queue', () => {
  it('never runs more than its concurrency and runs everything', async () => {
    const q = new JobQueue(3);
    let running = 0;
    let peak = 0;
    let done = 0;
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        q.push(`j${i}`, async () => {
          running++;
          peak = Math.max(peak, running);
          await new Promise((r) => setTimeout(r, 5 + (i % 4)));
          running--;
          done++;
        }),
      ),
    );
    expect(peak).toBe(3);
    expect(done).toBe(20);
  });
});

describe('one daemon per state directory', () => {
  it('refuses a second engine on the same state_dir while the first runs, and names it', async () => {
    const base = fs.mkdtempSync(path.join(os.tmpdir(), 'volsnapd-lock-'));
    try {
      const config = testConfig(base);
      const first = await Engine.open(config);
      const err = await Engine.open(config).catch((e) => e);
      expect(err.message).toMatch(new RegExp(`another volsnapd is already using state_dir ${config.stateDir} \\(held by process ${process.pid}\\)`));
      // The first one is untouched, and once it closes the directory is free again.
      expect(first.catalogOpen).toBe(true);
      await first.close();
      const second = await Engine.open(config);
      await second.close();
    } finally {
      fs.rmSync(base, { recursive: true, force: true });
    }
  });
});

const mounts: TestFs[] = [];
const engines: Engine[] = [];
afterEach(async () => {
  for (const e of engines.splice(0)) await e.close(1000);
  for (const m of mounts.splice(0)) m.unmount();
});

function mount(kind: 'xfs' | 'ext4', mib: number): TestFs {
  const m = makeFs(kind, mib);
  mounts.push(m);
  return m;
}

describe.skipIf(!canMake('xfs') || !canMake('ext4'))('engine on real filesystems', () => {
  it('snapshots by reflink on XFS: available, exclusive 0, content of the moment', async () => {
    const xfs = mount('xfs', 512);
    const config = testConfig(xfs.mountPoint);
    writeLayout(path.join(config.volumesDir, 'vol-a1'), [{ data: 4 * MiB }, { hole: 60 * MiB }, { data: 1 * MiB }]);
    const engine = await Engine.open(config);
    engines.push(engine);
    const hash = sha256(path.join(config.volumesDir, 'vol-a1'));
    const created = await engine.createSnapshot({ accountId: ACCOUNT, volumeId: 'vol-a1', destinationId: 'local', displayName: 'first' });
    expect(created.state).toBe('creating');
    expect(created.id).toMatch(/^snap-[a-z0-9]{8}$/);
    const done = await settle(engine, created.id);
    expect(done).toMatchObject({ state: 'available', method: 'reflink', consistency: 'point-in-time', exclusiveBytes: 0, progress: 100 });
    expect(done.sharedBytes).toBe(done.allocatedBytes);
    expect(done.sizeBytes).toBe(65 * MiB);
    expect(sha256(path.join(config.destinations[0]!.path, `${created.id}.snap`))).toBe(hash);
  });

  it('copies to ext4 with holes kept, and through a staging reflink when volumes are on XFS', async () => {
    const ext4 = mount('ext4', 256);
    const xfs = mount('xfs', 512);
    const config = testConfig(xfs.mountPoint, {
      destinations: [
        { id: 'local', path: path.join(xfs.mountPoint, 'snaps') },
        { id: 'backup', path: path.join(ext4.mountPoint, 'backup') },
      ],
    });
    const vol = path.join(config.volumesDir, 'vol-s1');
    writeLayout(vol, [{ data: 2 * MiB }, { hole: 30 * MiB }, { data: 2 * MiB }]);
    const engine = await Engine.open(config);
    engines.push(engine);
    const status = await engine.destinationStatus();
    expect(status.map((d) => [d.id, d.filesystem, d.reflink, d.writable])).toEqual([
      ['local', 'xfs', true, true],
      ['backup', 'ext4', false, true],
    ]);
    const states = new Set<string>();
    const created = await engine.createSnapshot({ accountId: ACCOUNT, volumeId: 'vol-s1', destinationId: 'backup' });
    const poll = setInterval(() => states.add(engine.getSnapshot(created.id, null)!.state), 1);
    const done = await settle(engine, created.id);
    clearInterval(poll);
    expect(done, done.error ?? '').toMatchObject({ state: 'available', method: 'copy', consistency: 'point-in-time' });
    expect(done.exclusiveBytes).toBe(4 * MiB);
    const file = path.join(ext4.mountPoint, 'backup', `${created.id}.snap`);
    expect(sha256(file)).toBe(sha256(vol));
    expect(allocated(file)).toBeLessThanOrEqual(allocated(vol));
    expect(fs.readdirSync(path.join(config.volumesDir, '.volsnapd-staging'))).toEqual([]);

    // An ext4-only node: a straight copy under a read lease.
    const config2 = testConfig(path.join(ext4.mountPoint, 'n2'));
    writeLayout(path.join(config2.volumesDir, 'vol-e1'), [{ hole: 1 * MiB }, { data: 3 * MiB }]);
    const engine2 = await Engine.open(config2);
    engines.push(engine2);
    const c2 = await engine2.createSnapshot({ accountId: ACCOUNT, volumeId: 'vol-e1', destinationId: 'local' });
    expect(await settle(engine2, c2.id)).toMatchObject({ state: 'available', method: 'copy', consistency: 'point-in-time' });

    // A volume open for writing cannot be copied point-in-time: failed, with the reason, nothing left.
    const holder = fs.openSync(path.join(config2.volumesDir, 'vol-e1'), 'r+');
    try {
      const c3 = await engine2.createSnapshot({ accountId: ACCOUNT, volumeId: 'vol-e1', destinationId: 'local' });
      const failed = await settle(engine2, c3.id);
      expect(failed.state).toBe('failed');
      expect(failed.error).toMatch(/open for writing/);
      expect(fs.readdirSync(config2.destinations[0]!.path).sort()).toEqual([`${c2.id}.snap`]);
    } finally {
      fs.closeSync(holder);
    }
  });

  it('with allow_inconsistent_copy, copies a volume open for writing and says it is inconsistent', async () => {
    const ext4 = mount('ext4', 256);
    const config = testConfig(ext4.mountPoint, { allowInconsistentCopy: true });
    const vol = path.join(config.volumesDir, 'vol-live1');
    writeLayout(vol, [{ data: 2 * MiB }, { hole: 2 * MiB }]);
    const engine = await Engine.open(config);
    engines.push(engine);
    const holder = fs.openSync(vol, 'r+');
    try {
      const c = await engine.createSnapshot({ accountId: ACCOUNT, volumeId: 'vol-live1', destinationId: 'local' });
      expect(await settle(engine, c.id)).toMatchObject({ state: 'available', method: 'copy', consistency: 'inconsistent' });
    } finally {
      fs.closeSync(holder);
    }
    // Nobody writing: the same copy is point-in-time again.
    const d = await engine.createSnapshot({ accountId: ACCOUNT, volumeId: 'vol-live1', destinationId: 'local' });
    expect(await settle(engine, d.id)).toMatchObject({ state: 'available', consistency: 'point-in-time' });
  });

  it('runs 50 creates at once within jobs.concurrency, all available, ids unique', async () => {
    // Copies on ext4, so each job takes long enough to overlap with others; concurrency is read
    // off the destination itself: how many temp files are being written at the same moment.
    const ext4 = mount('ext4', 512);
    const config = testConfig(ext4.mountPoint, { concurrency: 3 });
    for (const v of ['vol-c1', 'vol-c2', 'vol-c3']) writeDense(path.join(config.volumesDir, v), 4 * MiB, 1 * MiB);
    const engine = await Engine.open(config, { chunkBytes: 256 * 1024 });
    engines.push(engine);
    const dest = config.destinations[0]!.path;
    let peak = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        peak = Math.max(peak, fs.readdirSync(dest).filter((n) => n.endsWith('.tmp')).length);
        await new Promise((r) => setImmediate(r));
      }
    })();
    const created = await Promise.all(
      Array.from({ length: 50 }, (_, i) => engine.createSnapshot({ accountId: ACCOUNT, volumeId: `vol-c${(i % 3) + 1}`, destinationId: 'local' })),
    );
    const done = await Promise.all(created.map((c) => settle(engine, c.id)));
    sampling = false;
    await sampler;
    expect(new Set(created.map((c) => c.id)).size).toBe(50);
    expect(done.every((d) => d.state === 'available')).toBe(true);
    expect(fs.readdirSync(dest).filter((n) => n.endsWith('.snap'))).toHaveLength(50);
    console.log(`50 creates, jobs.concurrency 3: at most ${peak} copies in progress at once`);
    expect(peak).toBeGreaterThan(1);
    expect(peak).toBeLessThanOrEqual(3);
  });

  it('refuses a copy that cannot fit before copying', async () => {
    const xfs = mount('xfs', 512);
    const tiny = mount('ext4', 16);
    const config = testConfig(xfs.mountPoint, { destinations: [{ id: 'local', path: tiny.mountPoint }] });
    writeDense(path.join(config.volumesDir, 'vol-big'), 64 * MiB);
    const engine = await Engine.open(config);
    engines.push(engine);
    const err = await engine.createSnapshot({ accountId: ACCOUNT, volumeId: 'vol-big', destinationId: 'local' }).catch((e) => e);
    expect(isEngineError(err, 'OutOfDiskSpace')).toBe(true);
    expect(err.message).toMatch(/bytes free/);
    expect(engine.listSnapshots({ accountId: null, now: Date.now(), start: 0, limit: null }).total).toBe(0);
    expect(fs.readdirSync(tiny.mountPoint).filter((n) => n !== 'lost+found')).toEqual([]);
  });

  it('deletes and restores without touching the origin or sibling snapshots', async () => {
    const xfs = mount('xfs', 512);
    const config = testConfig(xfs.mountPoint);
    const vol = path.join(config.volumesDir, 'vol-d1');
    writeDense(vol, 16 * MiB, 4 * MiB);
    const engine = await Engine.open(config);
    engines.push(engine);
    const a = await settle(engine, (await engine.createSnapshot({ accountId: ACCOUNT, volumeId: 'vol-d1', destinationId: 'local' })).id);
    // Change the volume so the two snapshots differ and share only part of their blocks.
    const fd = fs.openSync(vol, 'r+');
    fs.writeSync(fd, Buffer.alloc(4 * MiB, 7), 0, 4 * MiB, 4 * MiB);
    fs.closeSync(fd);
    const b = await settle(engine, (await engine.createSnapshot({ accountId: ACCOUNT, volumeId: 'vol-d1', destinationId: 'local' })).id);
    const snapDir = config.destinations[0]!.path;
    const hashes = () => ({ vol: sha256(vol), a: sha256(path.join(snapDir, `${a.id}.snap`)), b: sha256(path.join(snapDir, `${b.id}.snap`)) });
    const before = hashes();
    expect(before.a).not.toBe(before.b);

    // The VM's user owns the volume; the restored volume is handed to the same owner and mode.
    fs.chownSync(vol, 4321, 4322);
    fs.chmodSync(vol, 0o640);
    const restored = await engine.restoreSnapshot({ accountId: ACCOUNT, snapshotId: a.id, volumeId: 'vol-r1' });
    expect(restored.id).toBe('vol-r1');
    const st = fs.statSync(path.join(config.volumesDir, 'vol-r1'));
    expect([st.uid, st.gid, st.mode & 0o777]).toEqual([4321, 4322, 0o640]);
    expect(sha256(path.join(config.volumesDir, 'vol-r1'))).toBe(before.a);
    expect(hashes()).toEqual(before);
    await expect(engine.restoreSnapshot({ accountId: ACCOUNT, snapshotId: a.id, volumeId: 'vol-d1' })).rejects.toMatchObject({ kind: 'Conflict' });
    expect(sha256(vol)).toBe(before.vol);

    const deleted = await engine.deleteSnapshot(a.id, ACCOUNT);
    expect(deleted.state).toBe('deleted');
    expect(deleted.deletedAt).not.toBeNull();
    expect(fs.existsSync(path.join(snapDir, `${a.id}.snap`))).toBe(false);
    expect(sha256(vol)).toBe(before.vol);
    expect(sha256(path.join(snapDir, `${b.id}.snap`))).toBe(before.b);
    expect(sha256(path.join(config.volumesDir, 'vol-r1'))).toBe(before.a);
    await expect(engine.deleteSnapshot(a.id, ACCOUNT)).rejects.toMatchObject({ kind: 'InvalidVolumeState' });
    await expect(engine.deleteSnapshot(b.id, 'a-someoneelse')).rejects.toMatchObject({ kind: 'UnknownVolumeSnapshot' });
  });

  it('keeps exclusive bytes true as the volume is rewritten and siblings come and go', async () => {
    const xfs = mount('xfs', 512);
    const config = testConfig(xfs.mountPoint);
    const vol = path.join(config.volumesDir, 'vol-x1');
    writeDense(vol, 16 * MiB, 4 * MiB);
    const engine = await Engine.open(config);
    engines.push(engine);
    const a = await settle(engine, (await engine.createSnapshot({ accountId: ACCOUNT, volumeId: 'vol-x1', destinationId: 'local' })).id);
    expect(a.exclusiveBytes).toBe(0);
    // The VM rewrites its whole disk: every block of `a` is now a's alone.
    fs.rmSync(vol);
    writeDense(vol, 16 * MiB, 4 * MiB);
    execFileSync('sync');
    const b = await settle(engine, (await engine.createSnapshot({ accountId: ACCOUNT, volumeId: 'vol-x1', destinationId: 'local' })).id);
    await engine.refreshSizes('vol-x1');
    expect(engine.getSnapshot(a.id, null)).toMatchObject({ exclusiveBytes: 16 * MiB, sharedBytes: 0 });
    expect(engine.getSnapshot(b.id, null)).toMatchObject({ exclusiveBytes: 0, sharedBytes: 16 * MiB });
    // Gone is the volume too: b's blocks are b's alone once nothing else holds them. XFS frees
    // an unlinked file's blocks in the background, so the refresh may need a moment to see it.
    fs.rmSync(vol);
    await engine.deleteSnapshot(a.id, null);
    for (const until = Date.now() + 10_000; Date.now() < until; ) {
      execFileSync('sync');
      await engine.refreshSizes('vol-x1');
      if (engine.getSnapshot(b.id, null)!.exclusiveBytes === 16 * MiB) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(engine.getSnapshot(b.id, null)).toMatchObject({ exclusiveBytes: 16 * MiB });
  });

  it('sees a volume rewritten by its VM at the next periodic refresh, with no snapshot made or deleted', async () => {
    const xfs = mount('xfs', 512);
    const config = testConfig(xfs.mountPoint);
    const vol = path.join(config.volumesDir, 'vol-p1');
    writeDense(vol, 8 * MiB, 4 * MiB);
    const engine = await Engine.open(config, { sizeRefreshIntervalMs: 200 });
    engines.push(engine);
    const a = await settle(engine, (await engine.createSnapshot({ accountId: ACCOUNT, volumeId: 'vol-p1', destinationId: 'local' })).id);
    expect(a.exclusiveBytes).toBe(0);
    // The VM overwrites half its disk in place: those 4 MiB of the snapshot are now its alone.
    const fd = fs.openSync(vol, 'r+');
    fs.writeSync(fd, Buffer.alloc(4 * MiB, 9), 0, 4 * MiB, 0);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    for (const until = Date.now() + 10_000; Date.now() < until && engine.getSnapshot(a.id, null)!.exclusiveBytes !== 4 * MiB; ) {
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(engine.getSnapshot(a.id, null)).toMatchObject({ exclusiveBytes: 4 * MiB, sharedBytes: 4 * MiB });
  });

  it('makes a retried create with the same id idempotent, and a different volume a conflict', async () => {
    const xfs = mount('xfs', 512);
    const config = testConfig(xfs.mountPoint);
    writeDense(path.join(config.volumesDir, 'vol-i1'), 1 * MiB);
    writeDense(path.join(config.volumesDir, 'vol-i2'), 1 * MiB);
    const engine = await Engine.open(config);
    engines.push(engine);
    const [x, y] = await Promise.all([
      engine.createSnapshot({ accountId: ACCOUNT, volumeId: 'vol-i1', destinationId: 'local', id: 'snap-retry001' }),
      engine.createSnapshot({ accountId: ACCOUNT, volumeId: 'vol-i1', destinationId: 'local', id: 'snap-retry001' }),
    ]);
    expect(x.id).toBe('snap-retry001');
    expect(y.id).toBe('snap-retry001');
    await settle(engine, 'snap-retry001');
    await expect(engine.createSnapshot({ accountId: ACCOUNT, volumeId: 'vol-i2', destinationId: 'local', id: 'snap-retry001' })).rejects.toMatchObject({ kind: 'Conflict' });
    await expect(engine.createSnapshot({ accountId: ACCOUNT, volumeId: 'vol-nope', destinationId: 'local' })).rejects.toMatchObject({ kind: 'UnknownVolume' });
    await expect(engine.createSnapshot({ accountId: ACCOUNT, volumeId: '../etc', destinationId: 'local' })).rejects.toMatchObject({ kind: 'UnknownVolume' });
    await expect(engine.createSnapshot({ accountId: ACCOUNT, volumeId: 'vol-i1', destinationId: 'mars' })).rejects.toMatchObject({ kind: 'InvalidParameter' });
    await expect(engine.createSnapshot({ accountId: ACCOUNT, volumeId: 'vol-i1', destinationId: 'local', storagePoolId: 'sn-other' })).rejects.toMatchObject({ kind: 'UnknownStorageNode' });
  });
});
