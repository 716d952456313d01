// Snapshots over HTTP on real filesystems: a listening daemon whose volumes and destinations are
// loop-mounted XFS (reflink) and ext4 (no block sharing). What the API reports (method, FIEMAP
// byte counts) is checked against the files themselves.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

import { ERRORS } from '../src/api/errors';
import { call, startDaemon, waitForState, type Daemon } from './helpers/daemon';
import { MiB, allocated, leftovers, sha256, writeLayout } from './helpers/files';
import { canMake, makeFs, type TestFs } from './helpers/loopfs';

const ACCOUNT = 'a-realfs01';
let daemons: Daemon[] = [];
let mounts: TestFs[] = [];

afterEach(async () => {
  for (const d of daemons) await d.close();
  for (const m of mounts.reverse()) m.unmount();
  daemons = [];
  mounts = [];
});

function mount(kind: 'xfs' | 'ext4', sizeMiB: number): TestFs {
  const m = makeFs(kind, sizeMiB);
  mounts.push(m);
  return m;
}

async function daemonOn(base: string, destinations?: Array<{ id: string; path: string }>): Promise<Daemon> {
  for (const dest of destinations ?? []) fs.mkdirSync(dest.path, { recursive: true });
  const d = await startDaemon({ base, ...(destinations ? { destinations } : {}) });
  daemons.push(d);
  return d;
}

/** POST /api/volume_snapshots as curl -d sends it (a form), and the answer. */
function postSnapshot(d: Daemon, volume: string, destination: string) {
  return call(d, 'POST', '/api/volume_snapshots', { form: { volume_id: volume, destination }, account: ACCOUNT });
}

async function snapshotOverHttp(d: Daemon, volume: string, destination = 'local'): Promise<Record<string, unknown>> {
  const r = await postSnapshot(d, volume, destination);
  expect(r.status, r.text).toBe(200);
  expect(r.json.state).toBe('creating');
  return waitForState(d, r.json.id, ['available', 'failed'], { account: ACCOUNT });
}

function snapshotFile(d: Daemon, doc: Record<string, unknown>): string {
  const dest = d.config.destinations.find((x) => x.id === doc.destination_id)!;
  return path.join(dest.path, `${String(doc.id)}.snap`);
}

describe.skipIf(!canMake('xfs') || !canMake('ext4'))('snapshots over HTTP on real filesystems', () => {
  it('XFS: reflink, nothing exclusive, every allocated byte shared, same content; restore gives the same bytes', async () => {
    const xfs = mount('xfs', 512);
    const d = await daemonOn(xfs.mountPoint);
    const volume = path.join(d.config.volumesDir, 'vol-xfs00001');
    writeLayout(volume, [{ data: 4 * MiB }, { hole: 100 * MiB }, { data: 3 * MiB }, { hole: 9 * MiB }]);
    const before = sha256(volume);

    const doc = await snapshotOverHttp(d, 'vol-xfs00001');
    expect(doc, JSON.stringify(doc)).toMatchObject({
      state: 'available',
      method: 'reflink',
      consistency: 'point-in-time',
      origin_volume_id: 'vol-xfs00001',
      account_id: ACCOUNT,
      size: 116,
      allocated_bytes: 7 * MiB,
      exclusive_bytes: 0,
    });
    expect(doc.shared_bytes).toBe(doc.allocated_bytes);
    const file = snapshotFile(d, doc);
    expect(fs.statSync(file).size).toBe(fs.statSync(volume).size);
    expect(sha256(file)).toBe(before);

    // Copy-on-write: the volume moves on, the snapshot keeps the point in time.
    const fd = fs.openSync(volume, 'r+');
    try {
      fs.writeSync(fd, Buffer.alloc(MiB, 0xee), 0, MiB, 0);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    expect(sha256(volume)).not.toBe(before);
    expect(sha256(file)).toBe(before);
    const after = (await call(d, 'GET', `/api/volume_snapshots/${String(doc.id)}`, { account: ACCOUNT })).json;
    expect(after.state).toBe('available');

    // Restore over HTTP: a new volume with the snapshot's bytes, not the volume's current ones.
    const r = await call(d, 'POST', '/api/volumes', { form: { snapshot_id: String(doc.id) }, account: ACCOUNT });
    expect(r.status, r.text).toBe(200);
    expect(r.json.id).toMatch(/^vol-[a-z0-9]{8}$/);
    expect(r.json).toMatchObject({ size_bytes: 116 * MiB, allocated_bytes: 7 * MiB });
    const restored = path.join(d.config.volumesDir, r.json.id);
    expect(fs.statSync(restored).size).toBe(116 * MiB);
    expect(sha256(restored)).toBe(before);
    expect(allocated(restored)).toBeLessThan(16 * MiB);
    expect((await call(d, 'GET', `/api/volumes/${r.json.id}`, { account: ACCOUNT })).json).toEqual(r.json);
    // No temp or staging file left beside the volumes (the staging directory itself may stay).
    expect(leftovers(d.config.volumesDir, ['vol-xfs00001', r.json.id, '.volsnapd-staging'])).toEqual([]);
    const staging = path.join(d.config.volumesDir, '.volsnapd-staging');
    if (fs.existsSync(staging)) expect(fs.readdirSync(staging)).toEqual([]);
  });

  it('ext4: a copy that keeps the holes, same size and content', async () => {
    const ext4 = mount('ext4', 256);
    const d = await daemonOn(ext4.mountPoint);
    const volume = path.join(d.config.volumesDir, 'vol-ext40001');
    writeLayout(volume, [{ data: 2 * MiB }, { hole: 60 * MiB }, { data: 1 * MiB }]);

    const doc = await snapshotOverHttp(d, 'vol-ext40001');
    expect(doc, JSON.stringify(doc)).toMatchObject({
      state: 'available',
      method: 'copy',
      consistency: 'point-in-time',
      size: 63,
      allocated_bytes: 3 * MiB,
      shared_bytes: 0,
      exclusive_bytes: 3 * MiB,
    });
    const file = snapshotFile(d, doc);
    expect(fs.statSync(file).size).toBe(fs.statSync(volume).size);
    expect(sha256(file)).toBe(sha256(volume));
    expect(allocated(file)).toBeLessThanOrEqual(allocated(volume));
    // The 60 MiB hole stayed a hole (a dense copy would charge 63 MiB).
    expect(allocated(file)).toBeLessThan(4 * MiB);
    expect(leftovers(path.dirname(file), [path.basename(file)])).toEqual([]);
  });

  it('OutOfDiskSpace (400, code 109) when a copy cannot fit: volumes on XFS, the destination a 16 MiB ext4', async () => {
    const xfs = mount('xfs', 512);
    const tiny = mount('ext4', 16);
    const d = await daemonOn(xfs.mountPoint, [
      { id: 'local', path: path.join(xfs.mountPoint, 'snapshots') },
      { id: 'tiny', path: tiny.mountPoint },
    ]);
    writeLayout(path.join(d.config.volumesDir, 'vol-big00001'), [{ data: 64 * MiB }]);

    const r = await postSnapshot(d, 'vol-big00001', 'tiny');
    expect(r.status, r.text).toBe(ERRORS.OutOfDiskSpace.status);
    expect(r.status).toBe(400);
    expect(Object.keys(r.json)).toEqual(['error', 'message', 'code']);
    expect(r.json).toMatchObject({ error: 'OutOfDiskSpace', code: '109' });
    expect(r.json.message).toMatch(/tiny/);
    // Nothing written, nothing recorded.
    expect(leftovers(tiny.mountPoint)).toEqual([]);
    const index = await call(d, 'GET', '/api/volume_snapshots', { account: ACCOUNT });
    expect(index.json[0].owner_total).toBe(0);

    // The same volume to a destination on its own XFS: a clone needs no free space for the data.
    const doc = await snapshotOverHttp(d, 'vol-big00001', 'local');
    expect(doc).toMatchObject({ state: 'available', method: 'reflink', exclusive_bytes: 0, allocated_bytes: 64 * MiB, shared_bytes: 64 * MiB });
    expect((await call(d, 'GET', '/api/volume_snapshots', { account: ACCOUNT })).json[0].owner_total).toBe(1);
  });
});
