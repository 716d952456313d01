// The TypeScript face of the addon's byte-moving calls. Each public function validates in stages
// (defaults, then checks, then the native call), refuses cheap mistakes before touching the addon,
// and turns native failures into NativeError with the caller's stack.
import * as fs from 'node:fs';
import * as path from 'node:path';

import { NativeError, captureCaller } from './errors';
import { LEASE_MODES, native, type NativeCancellation, type ProgressCallback } from './native';

export const MiB = 1024 * 1024;
export const DEFAULT_CHUNK_BYTES = 8 * MiB;

export interface Extents {
  size: number;
  /** st_blocks * 512: what the filesystem charges for the file. */
  blockBytes: number;
  allocatedBytes: number;
  sharedBytes: number;
  /** Bytes only this file holds: what deleting it would free. */
  exclusiveBytes: number;
  unwrittenBytes: number;
  extentCount: number;
}

export interface CloneOptions {
  /** Clone in slices of this many bytes (a multiple of 1 MiB) for progress and cancellation.
   *  Each slice is atomic; the whole is point-in-time only if nobody writes the source meanwhile.
   *  Default 0: one FICLONE of the whole file, atomic against concurrent writes. */
  sliceBytes?: number;
  onProgress?: ProgressCallback;
  signal?: AbortSignal;
}

export interface CopyOptions {
  /** copy_file_range chunk size; progress and cancellation happen between chunks. */
  chunkBytes?: number;
  /** Hold a read lease on the source while copying: 'require' fails (EAGAIN) when the source is
   *  open for writing and aborts (ELEASEBROKEN) when a writer opens it; 'try' copies anyway and
   *  reports whether the lease held throughout (leaseHeld). */
  lease?: keyof typeof LEASE_MODES;
  /** The source is the caller's own file (a staging clone, a snapshot): drop its pages from the
   *  page cache as they are copied. Never for a volume a VM may be using. */
  dropSourceCache?: boolean;
  onProgress?: ProgressCallback;
  signal?: AbortSignal;
}

export interface CopyResult {
  size: number;
  dataBytes: number;
  bytesCopied: number;
  /** Bytes moved by pread/pwrite because the kernel refused copy_file_range. */
  fallbackBytes: number;
  leaseHeld: boolean;
}

function invalid(message: string, code: string, syscall: string, file?: string): NativeError {
  return new NativeError(message, code, syscall, file);
}

function checkPathArg(value: unknown, what: string): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw new TypeError(`Expected a non-empty string for ${what} but received ${typeof value}`);
  }
  if (value.includes('\0')) throw new TypeError(`Expected a path without NUL bytes for ${what}`);
  return path.resolve(value);
}

/** The source must be an existing regular file. */
export function checkSource(src: string): fs.Stats {
  let st: fs.Stats;
  try {
    st = fs.statSync(src);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw invalid(`source '${src}' cannot be read: ${err.message}`, err.code ?? 'EIO', 'stat', src);
  }
  if (st.isDirectory()) throw invalid(`source '${src}' is a directory, not a volume file`, 'EISDIR', 'stat', src);
  if (!st.isFile()) throw invalid(`source '${src}' is not a regular file`, 'EINVAL', 'stat', src);
  return st;
}

/** The destination must not exist (nothing is ever overwritten) and its directory must. */
export function checkDestination(dst: string, src?: string): void {
  if (src !== undefined && path.resolve(src) === path.resolve(dst)) {
    throw invalid(`source and destination are the same file '${dst}'`, 'EINVAL', 'validate', dst);
  }
  if (fs.existsSync(dst)) throw invalid(`destination '${dst}' already exists; it is never overwritten`, 'EEXIST', 'stat', dst);
  const dir = path.dirname(dst);
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw invalid(`destination directory '${dir}' cannot be used: ${err.message}`, err.code ?? 'EIO', 'stat', dir);
  }
  if (!st.isDirectory()) throw invalid(`destination directory '${dir}' is not a directory`, 'ENOTDIR', 'stat', dir);
}

function checkMultiple(value: number | undefined, unit: number, min: number, max: number, what: string): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isInteger(value) || value < min || value > max || value % unit !== 0) {
    throw new RangeError(`Expected a multiple of ${unit} between ${min} and ${max} for ${what} but received ${value}`);
  }
  return value;
}

// An AbortSignal drives the addon's cancel flag; the listener goes away with the call.
async function withCancellation<T>(signal: AbortSignal | undefined, run: (c: NativeCancellation) => Promise<T>): Promise<T> {
  const cancellation = new native.Cancellation();
  if (!signal) return run(cancellation);
  if (signal.aborted) cancellation.cancel();
  const onAbort = (): void => cancellation.cancel();
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    return await run(cancellation);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

/** Reflink `src` to the new file `dst` (FICLONE). Fails with EXDEV/EOPNOTSUPP where the
 *  filesystems cannot share blocks. `dst` is created exclusively and fsynced. */
export async function cloneFile(src: string, dst: string, options: CloneOptions = {}): Promise<{ bytes: number; slices: number }> {
  const caller = captureCaller(cloneFile);
  const source = checkPathArg(src, 'src');
  const target = checkPathArg(dst, 'dst');
  const slice = checkMultiple(options.sliceBytes, MiB, 0, 2 ** 50, 'sliceBytes') ?? 0;
  checkSource(source);
  checkDestination(target, source);
  if (options.signal?.aborted) throw invalid(`clone to '${target}' was cancelled before it started`, 'ECANCELED', 'clone', target);
  try {
    return await withCancellation(options.signal, (c) => native.clone(source, target, slice, options.onProgress, c));
  } catch (e) {
    throw NativeError.fromNative(e, caller);
  }
}

/** Copy `src` to the new file `dst`, data extents only: holes stay holes, size is exact. */
export async function copySparse(src: string, dst: string, options: CopyOptions = {}): Promise<CopyResult> {
  const caller = captureCaller(copySparse);
  const source = checkPathArg(src, 'src');
  const target = checkPathArg(dst, 'dst');
  const chunk = checkMultiple(options.chunkBytes, 4096, 64 * 1024, 1024 * MiB, 'chunkBytes') ?? DEFAULT_CHUNK_BYTES;
  const lease = options.lease ?? 'none';
  if (!(lease in LEASE_MODES)) throw new RangeError(`Expected one of none, try, require for lease but received ${String(lease)}`);
  checkSource(source);
  checkDestination(target, source);
  if (options.signal?.aborted) throw invalid(`copy to '${target}' was cancelled before it started`, 'ECANCELED', 'copySparse', target);
  try {
    return await withCancellation(options.signal, (c) =>
      native.copySparse(source, target, chunk, LEASE_MODES[lease], options.dropSourceCache ?? false, options.onProgress, c),
    );
  } catch (e) {
    throw NativeError.fromNative(e, caller);
  }
}

/** FIEMAP accounting of one file: allocated, shared (reflinked) and exclusive bytes. */
export async function extents(file: string): Promise<Extents> {
  const caller = captureCaller(extents);
  const target = checkPathArg(file, 'file');
  try {
    const r = await native.extents(target);
    return {
      size: r.size,
      blockBytes: r.blocks * 512,
      allocatedBytes: r.allocatedBytes,
      sharedBytes: r.sharedBytes,
      exclusiveBytes: r.allocatedBytes - r.sharedBytes,
      unwrittenBytes: r.unwrittenBytes,
      extentCount: r.extentCount,
    };
  } catch (e) {
    throw NativeError.fromNative(e, caller);
  }
}

/** What a file holds on disk where FIEMAP cannot say (tmpfs, some ZFS): st_blocks, and sharing
 *  unknown (`exact: false`). */
export interface SpaceUsage extends Extents {
  exact: boolean;
}

const NO_FIEMAP = ['EOPNOTSUPP', 'ENOTSUP', 'ENOTTY', 'EINVAL'];

export async function spaceUsage(file: string): Promise<SpaceUsage> {
  try {
    return { ...(await extents(file)), exact: true };
  } catch (e) {
    if (!(e instanceof NativeError) || !NO_FIEMAP.includes(e.code)) throw e;
    const st = await fs.promises.stat(file);
    const bytes = st.blocks * 512;
    return { size: st.size, blockBytes: bytes, allocatedBytes: bytes, sharedBytes: 0, exclusiveBytes: bytes, unwrittenBytes: 0, extentCount: 0, exact: false };
  }
}
