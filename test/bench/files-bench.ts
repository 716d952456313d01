// Snapshot methods side by side with Wakame's `cp --sparse=always`, on real loop-mounted
// filesystems, interleaved run by run so that machine noise falls on both alike.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { extents, writeSnapshotFile } from '../../src/fs';
import { MiB, sha256, writeDense } from '../helpers/files';
import { makeFs } from '../helpers/loopfs';
import { median, timed } from './stats';

export interface Row {
  what: string;
  ours: string;
  theirs: string;
  ratio: string;
  target: string;
}

const GiB = 1024 * MiB;

/** 64 GiB logical, 1 GiB of data in 1 MiB pieces every 64 MiB (1024 data extents). */
function sparseVolume(file: string): void {
  const fd = fs.openSync(file, 'wx', 0o600);
  const buf = Buffer.alloc(MiB);
  for (let i = 0; i < 1024; i++) {
    buf.fill(i & 0xff);
    buf.writeUInt32LE(i, 0);
    fs.writeSync(fd, buf, 0, MiB, i * 64 * MiB);
  }
  fs.ftruncateSync(fd, 64 * GiB);
  fs.fsyncSync(fd);
  fs.closeSync(fd);
}

// Each timed run starts with nothing dirty, so neither side pays for the other's writeback.
function settle(): void {
  execFileSync('sync');
}

// A volume snapshot in real life reads data that is not in the page cache.
function dropCaches(): boolean {
  try {
    fs.writeFileSync('/proc/sys/vm/drop_caches', '3');
    return true;
  } catch {
    return false;
  }
}

function cp(src: string, dst: string): void {
  // Wakame's agent: cp --sparse=always. coreutils 9 reflinks by default, which the old agent did
  // not; --reflink=never measures what it really did.
  execFileSync('cp', ['--sparse=always', '--reflink=never', src, dst]);
}

export async function reflinkVsCp(runs: number): Promise<Row[]> {
  const xfs = makeFs('xfs', 3 * 1024);
  try {
    const vol = path.join(xfs.mountPoint, 'vol-bench');
    sparseVolume(vol);
    const ours: number[] = [];
    const theirs: number[] = [];
    const theirsCold: number[] = [];
    let cold = true;
    for (let i = 0; i < runs; i++) {
      const snap = path.join(xfs.mountPoint, `snap-r${i}.snap`);
      settle();
      const [t, r] = await timed(() => writeSnapshotFile(vol, snap));
      if (r.method !== 'reflink') throw new Error(`expected a reflink, got ${r.method}`);
      ours.push(t);
      const copy = path.join(xfs.mountPoint, `cp-${i}`);
      settle();
      theirs.push((await timed(() => cp(vol, copy)))[0]);
      fs.rmSync(copy);
      settle();
      cold = dropCaches() && cold;
      theirsCold.push((await timed(() => (cp(vol, copy), settle())))[0]);
      fs.rmSync(copy);
      fs.rmSync(snap);
    }
    const [o, c, cc] = [median(ours), median(theirs), median(theirsCold)];
    return [
      {
        what: 'snapshot of a 64 GiB sparse volume with 1 GiB data (XFS), median ms',
        ours: `${o.toFixed(2)} (reflink, durable)`,
        theirs: `${cc.toFixed(0)} (cp --sparse=always ${cold ? 'cold cache' : 'warm cache'} + sync)`,
        ratio: `${(cc / o).toFixed(0)}x faster`,
        target: '>= 100x, <= 50 ms',
      },
      {
        what: 'snapshot of a 64 GiB sparse volume with 1 GiB data (XFS), median ms',
        ours: `${o.toFixed(2)} (reflink, durable)`,
        theirs: `${c.toFixed(0)} (cp --sparse=always, warm cache, no sync)`,
        ratio: `${(c / o).toFixed(0)}x faster`,
        target: '>= 100x, <= 50 ms',
      },
    ];
  } finally {
    xfs.unmount();
  }
}

export async function copyVsCp(runs: number): Promise<Row[]> {
  const xfs = makeFs('xfs', 1400);
  const ext4 = makeFs('ext4', 3 * 1024);
  try {
    const vol = path.join(xfs.mountPoint, 'vol-copy');
    // 1 GiB of data with holes between 64 MiB runs, so both data and hole handling count.
    writeDense(vol, GiB, 64 * MiB);
    for (let off = 32 * MiB; off < GiB; off += 128 * MiB) execFileSync('fallocate', ['-p', '-o', String(off), '-l', String(32 * MiB), vol]);
    const data = (await extents(vol)).allocatedBytes;
    const hash = sha256(vol);
    const ours: number[] = [];
    const theirs: number[] = [];
    let peakRss = 0;
    let oursBlocks = 0;
    let theirBlocks = 0;
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 5);
    const rssBefore = process.memoryUsage().rss;
    // The same job on both sides: source not in the page cache, copy durable on disk at the end
    // (volsnapd fsyncs; cp is followed by sync).
    let cold = true;
    for (let i = 0; i < runs; i++) {
      const snap = path.join(ext4.mountPoint, `snap-c${i}.snap`);
      settle();
      cold = dropCaches() && cold;
      const [t, r] = await timed(() => writeSnapshotFile(vol, snap, { lease: 'require' }));
      if (r.method !== 'copy') throw new Error(`expected a copy, got ${r.method}`);
      ours.push(t);
      if (i === 0 && sha256(snap) !== hash) throw new Error('copy differs from the volume');
      oursBlocks = fs.statSync(snap).blocks * 512;
      const copy = path.join(ext4.mountPoint, `cp-${i}`);
      settle();
      cold = dropCaches() && cold;
      theirs.push((await timed(() => (cp(vol, copy), settle())))[0]);
      theirBlocks = fs.statSync(copy).blocks * 512;
      fs.rmSync(copy);
      fs.rmSync(snap);
    }
    clearInterval(sampler);
    const [o, c] = [median(ours), median(theirs)];
    const mbps = (t: number): string => ((data / MiB) / (t / 1000)).toFixed(0);
    return [
      {
        what: `durable copy XFS -> ext4, ${(data / MiB).toFixed(0)} MiB data in 1 GiB, median MiB/s`,
        ours: mbps(o),
        theirs: `${mbps(c)} (cp --sparse=always --reflink=never + sync${cold ? ', cold cache' : ''})`,
        ratio: `${(c / o).toFixed(2)}x throughput`,
        target: '>= 0.95x',
      },
      {
        what: 'allocated bytes of the copy (source: FIEMAP data)',
        ours: String(oursBlocks),
        theirs: String(theirBlocks),
        ratio: `source ${data}`,
        target: '<= source',
      },
      {
        what: 'RSS growth during the copies, MiB',
        ours: ((peakRss - rssBefore) / MiB).toFixed(1),
        theirs: '-',
        ratio: '-',
        target: 'flat in file size',
      },
    ];
  } finally {
    xfs.unmount();
    ext4.unmount();
  }
}
