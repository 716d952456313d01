// Can files in one directory be reflinked into another? Answered by trying it on two small temp
// files, once per pair of filesystems (st_dev), since only the kernel knows for sure.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { isNativeError } from './errors';
import { cloneFile } from './operations';

const cache = new Map<string, Promise<boolean>>();

// The errors that mean "these filesystems cannot share blocks", as opposed to a real fault.
export const REFLINK_REFUSALS = ['EXDEV', 'EOPNOTSUPP', 'ENOTSUP', 'EINVAL', 'ENOTTY', 'ENOSYS'];

export async function canReflink(srcDir: string, dstDir: string): Promise<boolean> {
  const [a, b] = await Promise.all([fs.promises.stat(srcDir), fs.promises.stat(dstDir)]);
  const key = `${a.dev}:${b.dev}`;
  let answer = cache.get(key);
  if (!answer) {
    answer = probe(srcDir, dstDir);
    cache.set(key, answer);
    // A probe that failed for another reason (permissions, a full disk) is not remembered.
    answer.catch(() => cache.delete(key));
  }
  return answer;
}

/** Forget what was learnt about one pair, after the kernel refused a clone the probe allowed
 *  (a filesystem was replaced under the same device number). */
export async function forgetReflink(srcDir: string, dstDir: string): Promise<void> {
  const [a, b] = await Promise.all([fs.promises.stat(srcDir), fs.promises.stat(dstDir)]);
  cache.delete(`${a.dev}:${b.dev}`);
}

/** Forget everything learnt (filesystems were remounted or replaced; tests). */
export function forgetReflinkProbes(): void {
  cache.clear();
}

async function probe(srcDir: string, dstDir: string): Promise<boolean> {
  const tag = randomBytes(6).toString('hex');
  const src = path.join(srcDir, `.volsnapd-probe-${tag}.src`);
  const dst = path.join(dstDir, `.volsnapd-probe-${tag}.dst`);
  try {
    await fs.promises.writeFile(src, randomBytes(4096), { flag: 'wx', mode: 0o600 });
    await cloneFile(src, dst);
    return true;
  } catch (e) {
    if (isNativeError(e, ...REFLINK_REFUSALS)) return false;
    throw e;
  } finally {
    await Promise.all([fs.promises.rm(src, { force: true }), fs.promises.rm(dst, { force: true })]);
  }
}
