// Every sparse layout, cloned and copied on every filesystem where the operation applies:
// the result has the same bytes and size, and never more allocated space than the source.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { cloneFile, copySparse, extents, writeSnapshotFile } from '../src/fs';
import { KiB, MiB, allocated, leftovers, sha256, writeLayout, type Segment } from './helpers/files';
import { canMake, makeFs, type FsKind, type TestFs } from './helpers/loopfs';

const manyExtents: Segment[] = [];
for (let i = 0; i < 10_001; i++) manyExtents.push({ data: 4 * KiB }, { hole: 4 * KiB });

const LAYOUTS: Record<string, Segment[]> = {
  dense: [{ data: 3 * MiB }],
  'data-hole-data': [{ data: 1 * MiB }, { hole: 2 * MiB }, { data: 1 * MiB }],
  'hole first': [{ hole: 4 * MiB }, { data: 1 * MiB }],
  'hole last': [{ data: 1 * MiB }, { hole: 4 * MiB }],
  'all hole': [{ hole: 8 * MiB }],
  empty: [],
  '1 byte': [{ data: 1 }],
  'size not a multiple of the block size': [{ data: 5000 }, { hole: 8192 }, { data: 3 }],
  '10,000+ extents': manyExtents,
};

interface Target {
  name: FsKind | 'local';
  reflinks: boolean;
  available: boolean;
}

// Without root, the copy path still runs on whatever the temp directory is; with root, ext4
// covers it on a filesystem of its own and the local run is not needed (so not registered).
const TARGETS: Target[] = [
  { name: 'xfs', reflinks: true, available: canMake('xfs') },
  { name: 'btrfs', reflinks: true, available: canMake('btrfs') },
  { name: 'ext4', reflinks: false, available: canMake('ext4') },
  ...(canMake('ext4') ? [] : [{ name: 'local' as const, reflinks: false, available: true }]),
];

for (const target of TARGETS) {
  describe.skipIf(!target.available)(`sparse layouts on ${target.name}`, () => {
    let testFs: TestFs | undefined;
    let dir: string;
    const sources = new Map<string, { file: string; hash: string; size: number; blocks: number; fiemap: number }>();

    // "No more space than the source": FIEMAP's allocated bytes on every filesystem, and st_blocks
    // too where there is no copy-on-write. On XFS st_blocks of a fresh clone also counts the
    // transient copy-on-write reservation (cowextsize), which is not data and goes away by itself.
    async function expectNoMoreSpace(dst: string, src: { blocks: number; fiemap: number }): Promise<void> {
      expect((await extents(dst)).allocatedBytes).toBeLessThanOrEqual(src.fiemap);
      if (!target.reflinks) expect(allocated(dst)).toBeLessThanOrEqual(src.blocks);
    }

    beforeAll(() => {
      if (target.name === 'local') {
        dir = fs.mkdtempSync(path.join(os.tmpdir(), 'volsnapd-local-'));
      } else {
        testFs = makeFs(target.name, 512);
        dir = testFs.mountPoint;
      }
      for (const [name, layout] of Object.entries(LAYOUTS)) {
        const file = path.join(dir, `vol-${name.replace(/[^a-z0-9]/g, '')}`);
        writeLayout(file, layout);
        sources.set(name, { file, hash: sha256(file), size: fs.statSync(file).size, blocks: allocated(file), fiemap: 0 });
      }
    });

    beforeAll(async () => {
      for (const src of sources.values()) src.fiemap = (await extents(src.file)).allocatedBytes;
    });

    afterAll(() => {
      testFs?.unmount();
      if (target.name === 'local') fs.rmSync(dir, { recursive: true, force: true });
    });

    it('builds a source with 10,000+ real extents (the layout table means what it says)', async () => {
      const e = await extents(sources.get('10,000+ extents')!.file);
      expect(e.extentCount).toBeGreaterThanOrEqual(10_000);
    });

    for (const name of Object.keys(LAYOUTS)) {
      // Clones exist only where the filesystem shares blocks: elsewhere there is no such test.
      if (target.reflinks) it(`clones "${name}": same bytes, same size, no more blocks`, async () => {
        const src = sources.get(name)!;
        const dst = path.join(dir, `clone-${path.basename(src.file)}`);
        await cloneFile(src.file, dst);
        expect(sha256(dst)).toBe(src.hash);
        expect(fs.statSync(dst).size).toBe(src.size);
        await expectNoMoreSpace(dst, src);
        const e = await extents(dst);
        // Every whole block is shared with the source. A partial block at EOF may be copied
        // instead (XFS), and btrfs keeps tiny files inline in metadata, which is never shared.
        const tail = src.size % (4 * KiB) === 0 ? 0 : 4 * KiB;
        expect(e.exclusiveBytes).toBeLessThanOrEqual(tail);
        expect(e.sharedBytes).toBeGreaterThanOrEqual(e.allocatedBytes - tail);
      });

      it(`copies "${name}": same bytes, same size, holes kept`, async () => {
        const src = sources.get(name)!;
        const dst = path.join(dir, `copy-${path.basename(src.file)}`);
        const progress: number[] = [];
        const result = await copySparse(src.file, dst, { onProgress: (done) => progress.push(done) });
        expect(sha256(dst)).toBe(src.hash);
        expect(fs.statSync(dst).size).toBe(src.size);
        await expectNoMoreSpace(dst, src);
        const dataBytes = (LAYOUTS[name] ?? []).reduce((n, s) => n + ('data' in s ? s.data : 0), 0);
        // SEEK_DATA works at block granularity: data bytes round up to whole blocks, never down.
        expect(result.bytesCopied).toBeGreaterThanOrEqual(dataBytes);
        expect(result.bytesCopied).toBeLessThanOrEqual(src.blocks + 4 * KiB);
        if (progress.length > 0) expect(progress[progress.length - 1]).toBe(result.bytesCopied);
      });

      it(`writes "${name}" as a snapshot file with the ${target.reflinks ? 'reflink' : 'copy'} method`, async () => {
        const src = sources.get(name)!;
        const final = path.join(dir, `snap-${path.basename(src.file).slice(4)}.snap`);
        const result = await writeSnapshotFile(src.file, final, { lease: 'require' });
        expect(result.method).toBe(target.reflinks ? 'reflink' : 'copy');
        expect(result.pointInTime).toBe(true);
        expect(sha256(final)).toBe(src.hash);
        expect(result.extents.size).toBe(src.size);
        await expectNoMoreSpace(final, src);
        expect(leftovers(dir).filter((n) => n.endsWith('.tmp'))).toEqual([]);
      });
    }
  });
}
