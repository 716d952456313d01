// Sparse test files from a layout table, and the facts tests assert on: content hash, size, and
// what the kernel says is allocated.
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';

export type Segment = { data: number } | { hole: number };

/** Writes a file of data and holes (data is random, so no two runs share content). Segments are
 *  written last to first with the size set up front, so the file never grows while being written
 *  and no filesystem preallocates into the holes. */
export function writeLayout(file: string, layout: Segment[]): void {
  const fd = fs.openSync(file, 'wx', 0o600);
  try {
    const size = layout.reduce((n, seg) => n + ('data' in seg ? seg.data : seg.hole), 0);
    fs.ftruncateSync(fd, size);
    let end = size;
    for (const seg of [...layout].reverse()) {
      const len = 'data' in seg ? seg.data : seg.hole;
      const start = end - len;
      if ('data' in seg) {
        const chunk = 1024 * 1024;
        for (let done = 0; done < len; done += chunk) {
          const n = Math.min(chunk, len - done);
          fs.writeSync(fd, randomBytes(n), 0, n, start + done);
        }
      }
      end = start;
    }
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

export function sha256(file: string): string {
  const hash = createHash('sha256');
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(4 * 1024 * 1024);
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      hash.update(buf.subarray(0, n));
    }
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest('hex');
}

/** Bytes the filesystem charges for the file (st_blocks * 512). */
export function allocated(file: string): number {
  return fs.statSync(file).blocks * 512;
}

/** Entries of a directory that are not in `except` (leftover temp or staging files). */
export function leftovers(dir: string, except: string[] = []): string[] {
  return fs.readdirSync(dir).filter((n) => !except.includes(n) && n !== 'lost+found');
}

export const KiB = 1024;
export const MiB = 1024 * 1024;

/** A dense file of `bytes`, written in `pieceBytes` pieces each fsynced on its own, so that most
 *  filesystems give each piece its own extent. */
export function writeDense(file: string, bytes: number, pieceBytes = 8 * MiB): void {
  const fd = fs.openSync(file, 'wx', 0o600);
  try {
    const buf = randomBytes(Math.min(pieceBytes, 4 * MiB));
    for (let pos = 0; pos < bytes; ) {
      const pieceEnd = Math.min(bytes, pos + pieceBytes);
      while (pos < pieceEnd) {
        const n = Math.min(buf.length, pieceEnd - pos);
        fs.writeSync(fd, buf, 0, n, pos);
        pos += n;
      }
      fs.fsyncSync(fd);
    }
  } finally {
    fs.closeSync(fd);
  }
}
