// The file layer: everything above it moves volume data only through these functions.
export { NativeError, isNativeError } from './errors';
export { native } from './native';
export { cloneFile, copySparse, extents, spaceUsage, checkSource, checkDestination, MiB, DEFAULT_CHUNK_BYTES } from './operations';
export type { Extents, SpaceUsage, CloneOptions, CopyOptions, CopyResult } from './operations';
export { canReflink, forgetReflink, forgetReflinkProbes, REFLINK_REFUSALS } from './probe';
export { writeSnapshotFile, tempPathFor, stagingPathFor, fsyncDirectory, freeBytes, spaceForCopy } from './snapshot-file';
export type { WriteMethod, WriteSnapshotOptions, WriteSnapshotResult } from './snapshot-file';
export { lockStateDir, LOCK_FILE_NAME } from './lock';
export type { StateLock } from './lock';
export { filesystemName } from './filesystems';
