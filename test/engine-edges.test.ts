// The engine where things are not as they should be: a file already under a chosen id, a delete
// racing a restore, a destination the daemon cannot write, a filesystem without FIEMAP.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

import { Engine } from '../src/snapshots/engine';
import { MiB, sha256, writeDense } from './helpers/files';
import { canMake, makeFs, type TestFs } from './helpers/loopfs';
import { testConfig } from './helpers/node-config';
import { settle } from './helpers/settle';

const ACCOUNT = 'a-edges001';
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function tempBase(): string {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'volsnapd-edges-'));
  cleanups.push(() => fs.rmSync(base, { recursive: true, force: true }));
  return base;
}

async function open(config: Parameters<typeof Engine.open>[0]): Promise<Engine> {
  const engine = await Engine.open(config);
  cleanups.push(() => engine.close(1000));
  return engine;
}

describe('engine edges (any filesystem)', () => {
  it('never takes over a file already under a caller-chosen id (an orphan stays the operator\'s)', async () => {
    const config = testConfig(tempBase());
    writeDense(path.join(config.volumesDir, 'vol-e1'), 1 * MiB);
    const engine = await open(config);
    const orphan = path.join(config.destinations[0]!.path, 'snap-orphan01.snap');
    fs.writeFileSync(orphan, 'the operator keeps this');
    await expect(
      engine.createSnapshot({ accountId: ACCOUNT, volumeId: 'vol-e1', destinationId: 'local', id: 'snap-orphan01' }),
    ).rejects.toMatchObject({ kind: 'Conflict' });
    expect(engine.getSnapshot('snap-orphan01', null)).toBeUndefined();
    expect(fs.readFileSync(orphan, 'utf8')).toBe('the operator keeps this');
  });

  it('refuses to delete a snapshot while a restore reads it', async () => {
    const config = testConfig(tempBase());
    writeDense(path.join(config.volumesDir, 'vol-e2'), 64 * MiB);
    const engine = await open(config);
    const snap = await settle(engine, (await engine.createSnapshot({ accountId: ACCOUNT, volumeId: 'vol-e2', destinationId: 'local' })).id);
    const restoring = engine.restoreSnapshot({ accountId: ACCOUNT, snapshotId: snap.id, volumeId: 'vol-e2copy' });
    await expect(engine.deleteSnapshot(snap.id, ACCOUNT)).rejects.toMatchObject({ kind: 'InvalidVolumeState' });
    const restored = await restoring;
    expect(sha256(path.join(config.volumesDir, restored.id))).toBe(sha256(path.join(config.destinations[0]!.path, `${snap.id}.snap`)));
    // Once the restore is done the delete goes through.
    expect((await engine.deleteSnapshot(snap.id, ACCOUNT)).state).toBe('deleted');
  });

  it('refuses to delete a snapshot whose destination is no longer configured, leaving its file', async () => {
    const base = tempBase();
    const backup = path.join(base, 'backup');
    const config = testConfig(base, { destinations: [{ id: 'local', path: path.join(base, 'snapshots') }, { id: 'backup', path: backup }] });
    writeDense(path.join(config.volumesDir, 'vol-e3'), 1 * MiB);
    const first = await Engine.open(config);
    const snap = await settle(first, (await first.createSnapshot({ accountId: ACCOUNT, volumeId: 'vol-e3', destinationId: 'backup' })).id);
    await first.close();
    config.destinations = config.destinations.filter((d) => d.id !== 'backup');
    const engine = await open(config);
    await expect(engine.deleteSnapshot(snap.id, ACCOUNT)).rejects.toMatchObject({ kind: 'InvalidParameter' });
    expect(engine.getSnapshot(snap.id, null)!.state).toBe('available');
    expect(fs.existsSync(path.join(backup, `${snap.id}.snap`))).toBe(true);
  });
});

describe.skipIf(!canMake('ext4'))('engine edges on real mounts', () => {
  it('starts with a destination it cannot write, reporting what it could not clean up', async () => {
    const ext4: TestFs = makeFs('ext4', 64);
    cleanups.push(() => {
      execFileSync('mount', ['-o', 'remount,rw', ext4.mountPoint]);
      ext4.unmount();
    });
    const base = tempBase();
    const config = testConfig(base, { destinations: [{ id: 'local', path: path.join(base, 'snapshots') }, { id: 'backup', path: ext4.mountPoint }] });
    const leftover = path.join(ext4.mountPoint, '.snap-left0001.tmp');
    fs.writeFileSync(leftover, 'half a copy');
    // A backup disk remounted read-only after errors.
    execFileSync('mount', ['-o', 'remount,ro', ext4.mountPoint]);
    const engine = await open(config);
    expect(engine.reconcileReport.problems).toEqual([expect.stringContaining(leftover)]);
    expect(fs.existsSync(leftover)).toBe(true);
    const status = await engine.destinationStatus();
    expect(status.find((d) => d.id === 'backup')).toMatchObject({ writable: false });
    expect(status.find((d) => d.id === 'local')).toMatchObject({ writable: true });
  });

  it('records unknown sharing (null), not a guess, on a filesystem without FIEMAP', async () => {
    const base = tempBase();
    const tmpfs = path.join(base, 'tmpfs');
    fs.mkdirSync(tmpfs);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64m', 'tmpfs', tmpfs]);
    cleanups.push(() => {
      execFileSync('umount', [tmpfs]);
    });
    const config = testConfig(base, { destinations: [{ id: 'local', path: tmpfs }] });
    writeDense(path.join(config.volumesDir, 'vol-e4'), 4 * MiB);
    const engine = await open(config);
    const snap = await settle(engine, (await engine.createSnapshot({ accountId: ACCOUNT, volumeId: 'vol-e4', destinationId: 'local' })).id);
    expect(snap).toMatchObject({ state: 'available', method: 'copy', sharedBytes: null, exclusiveBytes: null, allocatedBytes: 4 * MiB });
    expect(sha256(path.join(tmpfs, `${snap.id}.snap`))).toBe(sha256(path.join(config.volumesDir, 'vol-e4')));
  });
});
