// Real filesystems for tests: an image file, mkfs, and a loop mount of its own for each test.
// Needs root and the mkfs tools; without them the caller skips and says why (see skipReason).
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { forgetReflinkProbes } from '../../src/fs';

export type FsKind = 'xfs' | 'btrfs' | 'ext4';

export interface TestFs {
  kind: FsKind;
  mountPoint: string;
  image: string;
  unmount(): void;
}

const MKFS: Record<FsKind, { tool: string; args: string[]; minMiB: number }> = {
  // reflink=1 is the default in current xfsprogs; say it anyway, it is the point of the test.
  xfs: { tool: 'mkfs.xfs', args: ['-q', '-f', '-m', 'reflink=1'], minMiB: 300 },
  btrfs: { tool: 'mkfs.btrfs', args: ['-q', '-f'], minMiB: 120 },
  ext4: { tool: 'mkfs.ext4', args: ['-q', '-F', '-E', 'lazy_itable_init=0,lazy_journal_init=0'], minMiB: 8 },
};

function which(tool: string): boolean {
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/sbin'])) {
    if (dir && fs.existsSync(path.join(dir, tool))) return true;
  }
  return false;
}

const reasons = new Map<FsKind, string | null>();

/** Why real `kind` filesystems cannot be made here, or null when they can. */
export function skipReason(kind: FsKind): string | null {
  if (reasons.has(kind)) return reasons.get(kind)!;
  let reason: string | null = null;
  if (process.getuid?.() !== 0) reason = 'needs root to mount loop devices';
  else if (!which(MKFS[kind].tool)) reason = `needs ${MKFS[kind].tool} (apt-get install ${kind === 'xfs' ? 'xfsprogs' : kind === 'btrfs' ? 'btrfs-progs' : 'e2fsprogs'})`;
  else if (!fs.existsSync('/dev/loop-control')) reason = 'needs loop devices (/dev/loop-control is missing)';
  reasons.set(kind, reason);
  // CI installs everything and runs as root: there, a skip would hide the tests that matter.
  if (reason && process.env.CI) throw new Error(`CI must run the ${kind} tests, but it cannot: ${reason}`);
  if (reason) console.warn(`[volsnapd tests] skipping ${kind} tests: ${reason}`);
  return reason;
}

export function canMake(kind: FsKind): boolean {
  return skipReason(kind) === null;
}

const mounted = new Set<TestFs>();

/** Makes and mounts a fresh filesystem of `sizeMiB` (at least the tool's minimum). */
export function makeFs(kind: FsKind, sizeMiB = 512): TestFs {
  const reason = skipReason(kind);
  if (reason) throw new Error(`cannot make ${kind}: ${reason}`);
  const base = fs.mkdtempSync(path.join(os.tmpdir(), `volsnapd-${kind}-`));
  const image = path.join(base, 'fs.img');
  const mountPoint = path.join(base, 'mnt');
  fs.mkdirSync(mountPoint);
  fs.writeFileSync(image, '');
  fs.truncateSync(image, Math.max(sizeMiB, MKFS[kind].minMiB) * 1024 * 1024);
  execFileSync(MKFS[kind].tool, [...MKFS[kind].args, image], { stdio: 'pipe' });
  execFileSync('mount', ['-o', 'loop', image, mountPoint], { stdio: 'pipe' });
  // Loop devices (and so st_dev numbers) are reused from test to test.
  forgetReflinkProbes();
  const testFs: TestFs = {
    kind,
    mountPoint,
    image,
    unmount() {
      if (!mounted.delete(testFs)) return;
      for (let attempt = 0; ; attempt++) {
        try {
          execFileSync('umount', [mountPoint], { stdio: 'pipe' });
          break;
        } catch (e) {
          // A child process killed a moment ago may still hold a file open.
          if (attempt >= 20) throw e;
          execFileSync('sleep', ['0.2']);
        }
      }
      fs.rmSync(base, { recursive: true, force: true });
    },
  };
  mounted.add(testFs);
  return testFs;
}

process.on('exit', () => {
  for (const m of [...mounted]) {
    try {
      m.unmount();
    } catch {
      // best effort at exit; the next run starts from fresh temp directories anyway
    }
  }
});
