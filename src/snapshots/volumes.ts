// Volumes are raw image files in volumes_dir, named by their id. Only well-formed ids become paths.
import * as fs from 'node:fs';
import * as path from 'node:path';

import { VOLUME_ID_RE } from '../ids';
import type { VolumeInfo } from './types';

export function volumePath(volumesDir: string, id: string): string {
  if (!VOLUME_ID_RE.test(id)) throw new Error(`not a volume id: ${JSON.stringify(id)}`);
  return path.join(volumesDir, id);
}

export async function statVolume(volumesDir: string, id: string): Promise<VolumeInfo | undefined> {
  if (!VOLUME_ID_RE.test(id)) return undefined;
  try {
    const st = await fs.promises.stat(path.join(volumesDir, id));
    if (!st.isFile()) return undefined;
    return { id, sizeBytes: st.size, allocatedBytes: st.blocks * 512, createdAt: Math.round(st.birthtimeMs || st.mtimeMs) };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

export async function listVolumes(volumesDir: string): Promise<VolumeInfo[]> {
  const names = (await fs.promises.readdir(volumesDir)).filter((n) => VOLUME_ID_RE.test(n)).sort();
  const infos = await Promise.all(names.map((n) => statVolume(volumesDir, n)));
  return infos.filter((v): v is VolumeInfo => v !== undefined);
}
