// The crash-safe write protocol for every snapshot and restore (design: "The crash-safe write
// protocol"): write under a temp name in the target directory, reflink or copy, fsync, give it its
// final name without ever replacing a file, fsync the directory. On any failure or abort the temp
// (and any staging clone) is removed, so a final file exists only when it is complete and durable.
import * as fs from 'node:fs';
import * as path from 'node:path';

import { NativeError, isNativeError } from './errors';
import { type ProgressCallback } from './native';
import { checkDestination, checkSource, cloneFile, copySparse, spaceUsage, type SpaceUsage } from './operations';
import { REFLINK_REFUSALS, canReflink, forgetReflink } from './probe';

export type WriteMethod = 'auto' | 'reflink' | 'copy';

export interface WriteSnapshotOptions {
  method?: WriteMethod;
  /** A directory on the source's filesystem. When the target cannot reflink but this can, the
   *  source is first reflinked here (instant, point-in-time) and the copy is made from that clone. */
  stagingDir?: string;
  /** For a copy made straight from the source: hold a read lease ('require' refuses a source open
   *  for writing; 'try' copies anyway and reports pointInTime=false if the lease did not hold). */
  lease?: 'none' | 'try' | 'require';
  chunkBytes?: number;
  sliceBytes?: number;
  onProgress?: ProgressCallback;
  /** Owner and permission bits for the new file (a restored volume gets its origin volume's), set
   *  before it takes its final name. Default: the daemon's user, mode 0600. */
  owner?: { uid: number; gid: number; mode: number };
  /** The source is the caller's own file (a snapshot being restored): its pages may be dropped
   *  from the page cache as they are copied. A staging clone always is. */
  dropSourceCache?: boolean;
  /** Called when the point-in-time image is taken and only its copy remains ("registering"). */
  onStaged?: () => void;
  signal?: AbortSignal;
}

export interface WriteSnapshotResult {
  method: 'reflink' | 'copy';
  /** The copy was made from a staging reflink of the source. */
  staged: boolean;
  /** The file is the source as it was at one instant. */
  pointInTime: boolean;
  bytesCopied: number;
  durationMs: number;
  /** FIEMAP sizes of the file (`exact: false` where the filesystem has no FIEMAP). */
  extents: SpaceUsage;
}

/** `.<name>.tmp` beside the final file: `snap-ab12cd34.snap` → `.snap-ab12cd34.tmp`. */
export function tempPathFor(finalPath: string): string {
  const base = path.basename(finalPath).replace(/\.snap$/, '');
  return path.join(path.dirname(finalPath), `.${base}.tmp`);
}

export function stagingPathFor(stagingDir: string, finalPath: string): string {
  const base = path.basename(finalPath).replace(/\.snap$/, '');
  return path.join(stagingDir, `.${base}.staging`);
}

export async function fsyncDirectory(dir: string): Promise<void> {
  const handle = await fs.promises.open(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function applyOwner(file: string, owner: { uid: number; gid: number; mode: number }): Promise<void> {
  const handle = await fs.promises.open(file, fs.constants.O_RDONLY);
  try {
    await handle.chown(owner.uid, owner.gid);
    await handle.chmod(owner.mode & 0o777);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export async function freeBytes(dir: string): Promise<number> {
  const s = await fs.promises.statfs(dir);
  return s.bavail * s.bsize;
}

/** Refuse a copy before it starts when the target's filesystem cannot hold the source's data. */
/** What a copy of `src` into `dir` needs (its allocated bytes) against what `dir` has free. */
export async function spaceForCopy(src: string, dir: string): Promise<{ need: number; free: number }> {
  const [need, free] = await Promise.all([spaceUsage(src).then((e) => e.allocatedBytes), freeBytes(dir)]);
  return { need, free };
}

async function checkSpaceForCopy(src: string, dir: string): Promise<void> {
  const { need, free } = await spaceForCopy(src, dir);
  if (need > free) {
    throw new NativeError(
      `not enough space in '${dir}' for a copy of '${src}': need ${need} bytes, ${free} free`,
      'ENOSPC',
      'statfs',
      dir,
    );
  }
}

export async function writeSnapshotFile(
  src: string,
  finalPath: string,
  options: WriteSnapshotOptions = {},
): Promise<WriteSnapshotResult> {
  const started = process.hrtime.bigint();
  const method = options.method ?? 'auto';
  if (!['auto', 'reflink', 'copy'].includes(method)) {
    throw new RangeError(`Expected one of auto, reflink, copy for method but received ${String(method)}`);
  }
  const source = path.resolve(src);
  const target = path.resolve(finalPath);
  checkSource(source);
  checkDestination(target, source);
  const dir = path.dirname(target);
  const temp = tempPathFor(target);
  const staging = options.stagingDir ? stagingPathFor(path.resolve(options.stagingDir), target) : undefined;
  const common = { signal: options.signal, onProgress: options.onProgress };

  let used: 'reflink' | 'copy' = 'reflink';
  let linked = false;
  let ext: SpaceUsage;
  let staged = false;
  let pointInTime = true;
  let bytesCopied = 0;
  try {
    let reflinked = false;
    if (method === 'reflink' || (method === 'auto' && (await canReflink(path.dirname(source), dir)))) {
      try {
        await cloneFile(source, temp, { ...common, sliceBytes: options.sliceBytes });
        reflinked = true;
      } catch (e) {
        if (method === 'reflink' || !isNativeError(e, ...REFLINK_REFUSALS)) throw e;
        await fs.promises.rm(temp, { force: true });
        await forgetReflink(path.dirname(source), dir);
      }
    }
    if (!reflinked) {
      used = 'copy';
      let from = source;
      if (method === 'auto' && staging && (await canReflink(path.dirname(source), path.dirname(staging)))) {
        try {
          await cloneFile(source, staging, { signal: options.signal });
          from = staging;
          staged = true;
        } catch (e) {
          if (!isNativeError(e, ...REFLINK_REFUSALS)) throw e;
          await fs.promises.rm(staging, { force: true });
          await forgetReflink(path.dirname(source), path.dirname(staging));
        }
      }
      await checkSpaceForCopy(from, dir);
      if (staged) options.onStaged?.();
      const copied = await copySparse(from, temp, {
        ...common,
        chunkBytes: options.chunkBytes,
        lease: staged ? 'none' : (options.lease ?? 'none'),
        dropSourceCache: staged || (options.dropSourceCache ?? false),
      });
      bytesCopied = copied.bytesCopied;
      pointInTime = staged || copied.leaseHeld;
    }
    if (options.owner) await applyOwner(temp, options.owner);
    // Measured before the final name: a failure here leaves no final file behind.
    ext = await spaceUsage(temp);
    // link() refuses an existing name where rename() would replace it: nothing is overwritten.
    await fs.promises.link(temp, target);
    linked = true;
    await fs.promises.unlink(temp);
    await fsyncDirectory(dir);
  } catch (e) {
    await fs.promises.rm(temp, { force: true });
    // Failed after taking its final name: the name goes too, or a complete-looking file would
    // stand beside a failed snapshot.
    if (linked) {
      await fs.promises.rm(target, { force: true });
      await fsyncDirectory(dir).catch(() => undefined);
    }
    throw e;
  } finally {
    if (staging) await fs.promises.rm(staging, { force: true });
  }
  return {
    method: used,
    staged,
    pointInTime,
    bytesCopied,
    durationMs: Number(process.hrtime.bigint() - started) / 1e6,
    extents: ext,
  };
}
