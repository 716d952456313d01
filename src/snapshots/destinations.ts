// What each destination looks like right now: filesystem, space, writable, and whether volumes
// reflink into it (storage_node, readyz, doctor, metrics).
import * as fs from 'node:fs';

import type { Config } from '../config';
import { canReflink, filesystemName } from '../fs';
import type { DestinationStatus } from './types';

export function destinationStatus(config: Config): Promise<DestinationStatus[]> {
  return Promise.all(
    config.destinations.map(async (d) => {
      let freeBytes = 0;
      let totalBytes = 0;
      let filesystem = 'unknown';
      let writable = true;
      try {
        const s = await fs.promises.statfs(d.path);
        freeBytes = s.bavail * s.bsize;
        totalBytes = s.blocks * s.bsize;
        filesystem = filesystemName(s.type);
        await fs.promises.access(d.path, fs.constants.W_OK);
      } catch {
        writable = false;
      }
      const reflink = writable ? await canReflink(config.volumesDir, d.path).catch(() => false) : false;
      return { id: d.id, displayName: d.displayName, path: d.path, freeBytes, totalBytes, filesystem, reflink, writable };
    }),
  );
}
