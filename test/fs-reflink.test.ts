// Reflinks on the filesystems that have them: FIEMAP tells shared from exclusive bytes, a rewrite
// of the source leaves the snapshot as it was, and a clone taken while another process keeps
// writing is one instant of the source (no torn record).
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { cloneFile, extents, writeSnapshotFile } from '../src/fs';
import { MiB, sha256, writeDense } from './helpers/files';
import { canMake, makeFs, type TestFs } from './helpers/loopfs';

for (const kind of ['xfs', 'btrfs'] as const) {
  describe.skipIf(!canMake(kind))(`reflink on ${kind}`, () => {
    let testFs: TestFs;
    let dir: string;
    beforeEach(() => {
      testFs = makeFs(kind, 512);
      dir = testFs.mountPoint;
    });
    afterEach(() => testFs.unmount());

    it('shares every block right after the clone and tracks a rewrite exactly', async () => {
      const volume = path.join(dir, 'vol-a');
      // Four 8 MiB pieces, each its own extent, so that a rewrite of one piece frees a whole
      // extent (btrfs accounts sharing per extent, XFS per block).
      writeDense(volume, 32 * MiB, 8 * MiB);
      const before = sha256(volume);
      const snap = path.join(dir, 'snap-a.snap');
      await writeSnapshotFile(volume, snap, { method: 'reflink' });

      const fresh = await extents(snap);
      expect(fresh.allocatedBytes).toBe(32 * MiB);
      expect(fresh.sharedBytes).toBe(fresh.allocatedBytes);
      expect(fresh.exclusiveBytes).toBe(0);

      const fd = fs.openSync(volume, 'r+');
      const fresh8 = Buffer.alloc(8 * MiB, 0x5a);
      fs.writeSync(fd, fresh8, 0, fresh8.length, 8 * MiB);
      fs.fsyncSync(fd);
      fs.closeSync(fd);

      expect(sha256(snap)).toBe(before);
      expect(sha256(volume)).not.toBe(before);
      const [vol, old] = await Promise.all([extents(volume), extents(snap)]);
      expect(vol.exclusiveBytes).toBe(8 * MiB);
      expect(old.exclusiveBytes).toBe(8 * MiB);
      expect(old.sharedBytes).toBe(24 * MiB);
    });

    it('clones in slices with progress and stops between slices when aborted', async () => {
      const volume = path.join(dir, 'vol-b');
      writeDense(volume, 64 * MiB, 8 * MiB);
      const seen: number[] = [];
      const r = await cloneFile(volume, path.join(dir, 'snap-b1.snap'), {
        sliceBytes: 8 * MiB,
        onProgress: (done) => seen.push(done),
      });
      expect(r.slices).toBe(8);
      expect(seen[seen.length - 1]).toBe(64 * MiB);
      expect(sha256(path.join(dir, 'snap-b1.snap'))).toBe(sha256(volume));

      // 64 GiB logical in 1 MiB slices: 65,536 ioctls, so the abort lands long before the end.
      const big = path.join(dir, 'vol-big');
      fs.copyFileSync(volume, big);
      fs.truncateSync(big, 64 * 1024 * MiB);
      const controller = new AbortController();
      const target = path.join(dir, 'snap-b2.snap');
      const aborted = writeSnapshotFile(big, target, {
        method: 'reflink',
        sliceBytes: 1 * MiB,
        signal: controller.signal,
        onProgress: () => controller.abort(),
      });
      await expect(aborted).rejects.toMatchObject({ code: 'ECANCELED' });
      expect(fs.existsSync(target)).toBe(false);
      expect(fs.readdirSync(dir).filter((n) => n.endsWith('.tmp'))).toEqual([]);
    });

    it('takes point-in-time clones of a file another process keeps rewriting (no torn record)', async () => {
      const RECORD = 64 * 1024;
      const RECORDS = 64;
      const volume = path.join(dir, 'vol-live');
      fs.writeFileSync(volume, Buffer.alloc(RECORD * RECORDS));
      // The writer rewrites whole records, each with one pwrite, each filled with one counter value.
      const writer = spawn(
        process.execPath,
        [
          '-e',
          `const fs=require('fs');const fd=fs.openSync(${JSON.stringify(volume)},'r+');
           const buf=Buffer.alloc(${RECORD});let n=0;process.stdout.write('go\\n');
           for(;;){n++;for(let i=0;i<${RECORD};i+=8)buf.writeBigUInt64LE(BigInt(n),i);
           fs.writeSync(fd,buf,0,${RECORD},(n%${RECORDS})*${RECORD});}`,
        ],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      try {
        await new Promise<void>((resolve) => writer.stdout!.once('data', () => resolve()));
        let distinctGenerations = 0;
        for (let i = 0; i < 25; i++) {
          const snap = path.join(dir, `snap-live${i}.snap`);
          await writeSnapshotFile(volume, snap, { method: 'reflink' });
          const data = fs.readFileSync(snap);
          const generations = new Set<bigint>();
          for (let r = 0; r < RECORDS; r++) {
            const first = data.readBigUInt64LE(r * RECORD);
            for (let off = r * RECORD; off < (r + 1) * RECORD; off += 8) {
              if (data.readBigUInt64LE(off) !== first) throw new Error(`clone ${i}: record ${r} is torn at byte ${off - r * RECORD}`);
            }
            generations.add(first);
          }
          distinctGenerations = Math.max(distinctGenerations, generations.size);
          fs.rmSync(snap);
        }
        // The writer really was writing during the clones.
        expect(distinctGenerations).toBeGreaterThan(1);
      } finally {
        writer.kill('SIGKILL');
        await new Promise((resolve) => writer.once('exit', resolve));
      }
    });
  });
}
