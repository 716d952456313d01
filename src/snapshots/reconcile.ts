// Start-up reconciliation (design: "The crash-safe write protocol"), run before anything is
// served: work a crash interrupted is settled, leftovers of the write protocol are removed, and
// files the catalog does not know are reported — never deleted.
import * as fs from 'node:fs';
import * as path from 'node:path';

import type { Catalog } from '../catalog';
import type { Destination } from '../config';
import { stagingPathFor, tempPathFor } from '../fs';
import type { Logger } from '../logger';

/** Names the write protocol leaves while it works: `.snap-x.tmp`, `.vol-x.tmp`, `.snap-x.staging`. */
export const PROTOCOL_LEFTOVER = /^\.(snap|vol)-[a-z0-9]+\.(tmp|staging)$/;
export const SNAPSHOT_FILE = /^(snap-[a-z0-9]+)\.snap$/;

export interface ReconcileReport {
  failed: string[];
  finishedDeletes: string[];
  removedLeftovers: string[];
  /** Snapshot files with no live row: reported, kept. */
  orphans: string[];
  /** available rows whose file is gone. */
  missing: string[];
}

export function snapshotFilePath(dest: Destination, id: string): string {
  return path.join(dest.path, `${id}.snap`);
}

async function removeIfPresent(file: string, removed: string[]): Promise<void> {
  try {
    await fs.promises.unlink(file);
    removed.push(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}

export async function reconcile(opts: {
  catalog: Catalog;
  destinations: Destination[];
  volumesDir: string;
  stagingDir: string;
  logger: Logger;
}): Promise<ReconcileReport> {
  const { catalog, destinations, logger } = opts;
  const report: ReconcileReport = { failed: [], finishedDeletes: [], removedLeftovers: [], orphans: [], missing: [] };
  const byId = new Map(destinations.map((d) => [d.id, d]));

  // Interrupted creates: nothing they wrote counts. Their final file may exist (a crash between
  // link and the catalog update); it was never reported available, so it goes too.
  for (const row of catalog.snapshotsInStates(['creating', 'registering'])) {
    const dest = byId.get(row.destinationId);
    if (dest) {
      const final = snapshotFilePath(dest, row.id);
      await removeIfPresent(tempPathFor(final), report.removedLeftovers);
      await removeIfPresent(final, report.removedLeftovers);
      await removeIfPresent(stagingPathFor(opts.stagingDir, final), report.removedLeftovers);
    }
    catalog.transition(row.id, [row.state], 'failed', { error: `interrupted while ${row.state}: the daemon stopped before the snapshot was complete` });
    report.failed.push(row.id);
  }

  // Interrupted deletes: finish them.
  for (const row of catalog.snapshotsInStates(['deleting'])) {
    const dest = byId.get(row.destinationId);
    if (dest) await removeIfPresent(snapshotFilePath(dest, row.id), report.removedLeftovers);
    catalog.transition(row.id, ['deleting'], 'deleted');
    report.finishedDeletes.push(row.id);
  }

  // Temp and staging files of the protocol: nothing runs yet, so every one is a leftover.
  for (const dir of [...new Set([...destinations.map((d) => d.path), opts.volumesDir, opts.stagingDir])]) {
    let names: string[];
    try {
      names = await fs.promises.readdir(dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw e;
    }
    for (const name of names) {
      if (PROTOCOL_LEFTOVER.test(name)) await removeIfPresent(path.join(dir, name), report.removedLeftovers);
    }
  }

  const found = await scanSnapshotFiles(catalog, destinations);
  report.orphans = found.orphans;
  report.missing = found.missing;

  logEach(logger, 'warn', report.failed, 'snapshot_id', 'snapshot interrupted by a stop; marked failed');
  logEach(logger, 'info', report.finishedDeletes, 'snapshot_id', 'finished an interrupted delete');
  logEach(logger, 'info', report.removedLeftovers, 'file', 'removed a leftover of an interrupted write');
  logEach(logger, 'warn', report.orphans, 'file', 'snapshot file with no catalog row (kept; remove it by hand if it is not needed)');
  logEach(logger, 'error', report.missing, 'snapshot_id', 'available snapshot has no file');
  return report;
}

// One line per item while they are few; past that one summary line, so a damaged destination
// does not flood the log with a line per snapshot.
const LOG_EACH_MAX = 20;

function logEach(logger: Logger, level: 'info' | 'warn' | 'error', items: string[], key: string, msg: string): void {
  if (items.length <= LOG_EACH_MAX) {
    for (const item of items) logger[level]({ [key]: item }, msg);
    return;
  }
  logger[level]({ count: items.length, first: items.slice(0, LOG_EACH_MAX) }, `${msg} (${items.length} in all; the first ${LOG_EACH_MAX} listed)`);
}

/** Matches snapshot files against the catalog: orphans (file, no live row) and missing files.
 *  Directory entries are streamed, and the matching is done by the catalog, so memory stays flat
 *  however many snapshots a node holds. */
export async function scanSnapshotFiles(
  catalog: Catalog,
  destinations: Destination[],
): Promise<{ orphans: string[]; missing: string[] }> {
  const orphans: string[] = [];
  const missing: string[] = [];
  for (const dest of destinations) {
    const ids: string[] = [];
    let dir: fs.Dir | undefined;
    try {
      dir = await fs.promises.opendir(dest.path, { bufferSize: 256 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    if (dir) {
      for await (const entry of dir) {
        const m = SNAPSHOT_FILE.exec(entry.name);
        if (m) ids.push(m[1]!);
      }
    }
    const r = catalog.matchFiles(dest.id, ids);
    orphans.push(...r.orphans.map((id) => path.join(dest.path, `${id}.snap`)));
    missing.push(...r.missing);
  }
  return { orphans, missing };
}
