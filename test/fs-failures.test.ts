// Across filesystems, out of space, aborted, refused: every failure is a clear NativeError and
// leaves neither a temp nor a final file behind. All caused for real, on real filesystems.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { NativeError, canReflink, cloneFile, copySparse, extents, writeSnapshotFile } from '../src/fs';
import { MiB, allocated, leftovers, sha256, writeDense, writeLayout } from './helpers/files';
import { canMake, makeFs, type TestFs } from './helpers/loopfs';

function noTempFiles(dir: string): void {
  expect(leftovers(dir).filter((n) => n.endsWith('.tmp') || n.endsWith('.staging'))).toEqual([]);
}

describe('argument checks (any filesystem)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'volsnapd-args-'));
  const volume = path.join(dir, 'vol-a');
  writeLayout(volume, [{ data: 4096 }]);
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('names a missing source', async () => {
    const err = await writeSnapshotFile(path.join(dir, 'vol-missing'), path.join(dir, 'x.snap')).catch((e) => e);
    expect(err).toBeInstanceOf(NativeError);
    expect(err).toMatchObject({ code: 'ENOENT', path: path.join(dir, 'vol-missing') });
    expect(err.message).toContain('vol-missing');
  });

  it('refuses a directory as source', async () => {
    await expect(copySparse(dir, path.join(dir, 'x.snap'))).rejects.toMatchObject({ code: 'EISDIR' });
  });

  it('never overwrites an existing destination', async () => {
    fs.writeFileSync(path.join(dir, 'taken.snap'), 'keep me');
    await expect(writeSnapshotFile(volume, path.join(dir, 'taken.snap'))).rejects.toMatchObject({ code: 'EEXIST' });
    expect(fs.readFileSync(path.join(dir, 'taken.snap'), 'utf8')).toBe('keep me');
  });

  it('refuses the same file in and out, and a destination directory that does not exist', async () => {
    await expect(cloneFile(volume, volume)).rejects.toMatchObject({ code: 'EINVAL' });
    await expect(copySparse(volume, path.join(dir, 'nope', 'x'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('rejects bad option values before any native call', async () => {
    await expect(copySparse(volume, path.join(dir, 'c1'), { chunkBytes: 1000 })).rejects.toBeInstanceOf(RangeError);
    await expect(cloneFile(volume, path.join(dir, 'c2'), { sliceBytes: 4096 })).rejects.toBeInstanceOf(RangeError);
    await expect(writeSnapshotFile(volume, path.join(dir, 'c3'), { method: 'teleport' as never })).rejects.toBeInstanceOf(RangeError);
    expect(fs.existsSync(path.join(dir, 'c1'))).toBe(false);
  });
});

describe.skipIf(!canMake('xfs') || !canMake('ext4'))('XFS volumes, ext4 destinations', () => {
  let xfs: TestFs;
  let ext4: TestFs;
  let small: TestFs;
  beforeAll(() => {
    xfs = makeFs('xfs', 1024);
    ext4 = makeFs('ext4', 512);
    small = makeFs('ext4', 64);
  });
  afterAll(() => {
    xfs.unmount();
    ext4.unmount();
    small.unmount();
  });

  it('cannot reflink across filesystems, so auto copies and keeps holes', async () => {
    expect(await canReflink(xfs.mountPoint, ext4.mountPoint)).toBe(false);
    expect(await canReflink(xfs.mountPoint, xfs.mountPoint)).toBe(true);
    const volume = path.join(xfs.mountPoint, 'vol-sparse');
    writeLayout(volume, [{ data: 2 * MiB }, { hole: 60 * MiB }, { data: 1 * MiB }, { hole: 1 * MiB }]);
    const snap = path.join(ext4.mountPoint, 'snap-sparse.snap');
    const r = await writeSnapshotFile(volume, snap, { lease: 'require' });
    expect(r.method).toBe('copy');
    expect(r.pointInTime).toBe(true);
    expect(sha256(snap)).toBe(sha256(volume));
    expect(fs.statSync(snap).size).toBe(64 * MiB);
    expect(allocated(snap)).toBeLessThanOrEqual(allocated(volume));
    expect(allocated(snap)).toBeLessThan(4 * MiB);
    noTempFiles(ext4.mountPoint);
  });

  it('reflinks into a staging area on the volume filesystem first, then copies that stable image', async () => {
    const volume = path.join(xfs.mountPoint, 'vol-staged');
    writeLayout(volume, [{ data: 3 * MiB }, { hole: 5 * MiB }]);
    const staging = path.join(xfs.mountPoint, '.staging');
    fs.mkdirSync(staging, { recursive: true });
    let stagedSeen = false;
    const snap = path.join(ext4.mountPoint, 'snap-staged.snap');
    const r = await writeSnapshotFile(volume, snap, {
      stagingDir: staging,
      onStaged: () => {
        stagedSeen = fs.readdirSync(staging).length === 1;
      },
    });
    expect(r).toMatchObject({ method: 'copy', staged: true, pointInTime: true });
    expect(stagedSeen).toBe(true);
    expect(fs.readdirSync(staging)).toEqual([]);
    expect(sha256(snap)).toBe(sha256(volume));
  });

  it('gives the caller\'s stack to an error from the addon', async () => {
    const volume = path.join(xfs.mountPoint, 'vol-stack');
    writeLayout(volume, [{ data: 4096 }]);
    const err = await cloneFile(volume, path.join(ext4.mountPoint, 'snap-stack.snap')).catch((e) => e);
    expect(err).toBeInstanceOf(NativeError);
    expect(err.code).toBe('EXDEV');
    expect(err.syscall).toBe('ioctl(FICLONE)');
    expect(err.stack).toContain('fs-failures.test.ts');
  });

  it('refuses a copy that cannot fit before writing anything (ENOSPC)', async () => {
    const volume = path.join(xfs.mountPoint, 'vol-big');
    writeDense(volume, 96 * MiB);
    const snap = path.join(small.mountPoint, 'snap-big.snap');
    const err = await writeSnapshotFile(volume, snap).catch((e) => e);
    expect(err).toMatchObject({ code: 'ENOSPC', syscall: 'statfs' });
    expect(fs.existsSync(snap)).toBe(false);
    noTempFiles(small.mountPoint);
  });

  it('reports the kernel\'s ENOSPC from the copy itself, and the protocol leaves nothing behind', async () => {
    const volume = path.join(xfs.mountPoint, 'vol-40m');
    writeDense(volume, 40 * MiB);
    // Straight to the addon: the kernel's own ENOSPC.
    const raw = path.join(small.mountPoint, 'raw-copy');
    const err = await copySparse(volume, raw, { lease: 'none' })
      .then(() => copySparse(volume, path.join(small.mountPoint, 'raw-copy2')))
      .catch((e) => e);
    expect(err).toMatchObject({ code: 'ENOSPC' });
    fs.rmSync(raw, { force: true });
    fs.rmSync(path.join(small.mountPoint, 'raw-copy2'), { force: true });

    // Two copies that each fit alone but not together: each one either completes whole or fails
    // with ENOSPC leaving no file of its own.
    const targets = ['snap-e1.snap', 'snap-e2.snap'].map((n) => path.join(small.mountPoint, n));
    const results = await Promise.allSettled(targets.map((t) => writeSnapshotFile(volume, t)));
    expect(results.some((r) => r.status === 'rejected')).toBe(true);
    results.forEach((r, i) => {
      if (r.status === 'rejected') {
        expect(r.reason).toMatchObject({ code: 'ENOSPC' });
        expect(fs.existsSync(targets[i]!)).toBe(false);
      } else {
        expect(sha256(targets[i]!)).toBe(sha256(volume));
      }
    });
    noTempFiles(small.mountPoint);
  });

  it('stops an aborted copy between chunks and removes what it wrote', async () => {
    const volume = path.join(xfs.mountPoint, 'vol-abort');
    writeDense(volume, 256 * MiB, 64 * MiB);
    const controller = new AbortController();
    const snap = path.join(ext4.mountPoint, 'snap-abort.snap');
    let calls = 0;
    const err = await writeSnapshotFile(volume, snap, {
      method: 'copy',
      chunkBytes: 1 * MiB,
      signal: controller.signal,
      onProgress: (done) => {
        calls++;
        if (done > 0) controller.abort();
      },
    }).catch((e) => e);
    expect(err).toMatchObject({ code: 'ECANCELED' });
    expect(calls).toBeGreaterThan(0);
    expect(fs.existsSync(snap)).toBe(false);
    noTempFiles(ext4.mountPoint);
  });

  it('will not copy a volume open for writing as point-in-time (read lease)', async () => {
    const volume = path.join(xfs.mountPoint, 'vol-open');
    writeDense(volume, 8 * MiB);
    const holder = fs.openSync(volume, 'r+');
    try {
      const snap = path.join(ext4.mountPoint, 'snap-open.snap');
      await expect(writeSnapshotFile(volume, snap, { lease: 'require' })).rejects.toMatchObject({ code: 'EAGAIN' });
      expect(fs.existsSync(snap)).toBe(false);
      const r = await writeSnapshotFile(volume, snap, { lease: 'try' });
      expect(r.pointInTime).toBe(false);
    } finally {
      fs.closeSync(holder);
    }
  });

  it('aborts when a writer opens the volume mid-copy, and lets the writer in at once', async () => {
    const volume = path.join(xfs.mountPoint, 'vol-lease');
    writeDense(volume, 200 * MiB, 64 * MiB);
    const snap = path.join(ext4.mountPoint, 'snap-lease.snap');
    // The writer is started first and opens the volume for writing when told, so a slow process
    // start cannot let the copy finish before the writer arrives.
    const writer = spawn(process.execPath, [
      '-e',
      `process.stdin.once('data',()=>{const fs=require('fs');const t=Date.now();fs.closeSync(fs.openSync(${JSON.stringify(volume)},'r+'));console.log(Date.now()-t);process.exit(0)})`,
    ]);
    let writerMs = -1;
    writer.stdout!.on('data', (d: Buffer) => (writerMs = Number(d.toString())));
    const exited = new Promise((resolve) => writer.once('exit', resolve));
    let told = false;
    const err = await writeSnapshotFile(volume, snap, {
      method: 'copy',
      lease: 'require',
      chunkBytes: 64 * 1024,
      onProgress: (done) => {
        if (done === 0 || told) return;
        told = true;
        writer.stdin!.write('open\n');
      },
    }).catch((e) => e);
    if (!told) writer.stdin!.write('open\n');
    await exited;
    expect(told).toBe(true);
    expect(err).toMatchObject({ code: 'ELEASEBROKEN' });
    expect(fs.existsSync(snap)).toBe(false);
    noTempFiles(ext4.mountPoint);
    // The kernel would make the writer wait up to lease-break-time (45 s) if we held on.
    expect(writerMs).toBeGreaterThanOrEqual(0);
    expect(writerMs).toBeLessThan(5000);
  });

  it('reports exact FIEMAP sizes for a copy on a filesystem without sharing', async () => {
    const volume = path.join(xfs.mountPoint, 'vol-acct');
    writeLayout(volume, [{ data: 1 * MiB }, { hole: 3 * MiB }, { data: 2 * MiB }]);
    const snap = path.join(ext4.mountPoint, 'snap-acct.snap');
    const r = await writeSnapshotFile(volume, snap, { lease: 'require' });
    expect(r.extents.allocatedBytes).toBe(3 * MiB);
    expect(r.extents.sharedBytes).toBe(0);
    expect(r.extents.exclusiveBytes).toBe(3 * MiB);
    expect((await extents(snap)).size).toBe(6 * MiB);
  });
});
