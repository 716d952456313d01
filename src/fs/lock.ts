// One daemon per state directory: two engines on one catalog would each reconcile the other's
// work in progress as "interrupted" and delete its files.
import * as fs from 'node:fs';
import * as path from 'node:path';

import { NativeError, captureCaller } from './errors';
import { native } from './native';

export const LOCK_FILE_NAME = 'volsnapd.lock';

export interface StateLock {
  readonly path: string;
  release(): void;
}

/** Takes `<stateDir>/volsnapd.lock` (flock, released by the kernel if the process dies). */
export function lockStateDir(stateDir: string): StateLock {
  const caller = captureCaller(lockStateDir);
  const file = path.join(stateDir, LOCK_FILE_NAME);
  let fd: number;
  try {
    fd = native.lockFile(file);
  } catch (e) {
    const err = NativeError.fromNative(e, caller);
    if (err.code === 'EWOULDBLOCK' || err.code === 'EAGAIN') {
      throw new NativeError(`another volsnapd is already using state_dir ${stateDir} (${err.message.replace(/^.*\((held by process [^)]*)\).*$/, '$1')})`, err.code, 'flock', file);
    }
    throw err;
  }
  let held = true;
  return {
    path: file,
    release() {
      if (!held) return;
      held = false;
      fs.closeSync(fd);
    },
  };
}
