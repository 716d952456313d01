// Start-up reconciliation (design: "The crash-safe write protocol"), run before anything is
// served: work a crash interrupted is settled, leftovers of the write protocol are removed, and
// files the catalog does not know are reported — never deleted.
import * as fs from 'node:fs';
import * as path from 'node:path';

import type { Catalog } from '../catalog';
import type { Destination } from '../config';
import { stagingPathFor, tempPathFor } from '../fs';
import type { Logger } from '../logger';

/** Names the write protocol leaves while it works: `.snap-x.tmp`, `.vol-x.tmp`, `.snap-x.staging`,
 *  and the reflink probe's `.volsnapd-probe-<hex>.src`/`.dst`. */
export const PROTOCOL_LEFTOVER = /^\.(?:(?:snap|vol)-[a-z0-9]+\.(?:tmp|staging)|volsnapd-probe-[0-9a-f]+\.(?:src|dst))$/;
export const SNAPSHOT_FILE = /^(snap-[a-z0-9]+)\.snap$/;

export interface ReconcileReport {
  failed: string[];
  finishedDeletes: string[];
  removedLeftovers: string[];
  /** Snapshot files with no live row: reported, kept. */
  orphans: string[];
  /** available rows whose file is gone. */
  missing: string[];
  /** What could not be done (a read-only destination, say): logged, left for the next start. */
  problems: string[];
}

export function snapshotFilePath(dest: Destination, id: string): string {
  return path.join(dest.path, `${id}.snap`);
}

// One destination that cannot be written (remounted read-only after errors, left out of the
// unit's ReadWritePaths=) must not keep the whole node from starting: each failure is recorded
// and the rest goes on.
async function removeIfPresent(file: string, report: ReconcileReport): Promise<boolean> {
  try {
    await fs.promises.unlink(file);
    report.removedLeftovers.push(file);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return true;
    report.problems.push(`cannot remove ${file}: ${(e as Error).message}`);
    return false;
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
  const report: ReconcileReport = { failed: [], finishedDeletes: [], removedLeftovers: [], orphans: [], missing: [], problems: [] };
  const byId = new Map(destinations.map((d) => [d.id, d]));

  // Interrupted creates: nothing they wrote counts. Their final file may exist (a crash between
  // link and the catalog update); it was never reported available, so it goes too.
  for (const row of catalog.snapshotsInStates(['creating', 'registering'])) {
    const dest = byId.get(row.destinationId);
    if (dest) {
      const final = snapshotFilePath(dest, row.id);
      await removeIfPresent(tempPathFor(final), report);
      await removeIfPresent(final, report);
      await removeIfPresent(stagingPathFor(opts.stagingDir, final), report);
    }
    catalog.transition(row.id, [row.state], 'failed', { error: `interrupted while ${row.state}: the daemon stopped before the snapshot was complete` });
    report.failed.push(row.id);
  }

  // Interrupted deletes: finish them.
  for (const row of catalog.snapshotsInStates(['deleting'])) {
    const dest = byId.get(row.destinationId);
    // A file that cannot be removed keeps its row 'deleting' for the next start to try again.
    if (dest && !(await removeIfPresent(snapshotFilePath(dest, row.id), report))) continue;
    catalog.transition(row.id, ['deleting'], 'deleted');
    report.finishedDeletes.push(row.id);
  }

  // Temp and staging files of the protocol: nothing runs yet, so every one is a leftover.
  for (const dir of [...new Set([...destinations.map((d) => d.path), opts.volumesDir, opts.stagingDir])]) {
    let names: string[];
    try {
      names = await fs.promises.readdir(dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') report.problems.push(`cannot read ${dir}: ${(e as Error).message}`);
      continue;
    }
    for (const name of names) {
      if (PROTOCOL_LEFTOVER.test(name)) await removeIfPresent(path.join(dir, name), report);
    }
  }

  const found = await scanSnapshotFiles(catalog, destinations);
  report.orphans = found.orphans;
  report.missing = found.missing;
  report.problems.push(...found.problems);

  logEach(logger, 'warn', report.failed, 'snapshot_id', 'snapshot interrupted by a stop; marked failed');
  logEach(logger, 'info', report.finishedDeletes, 'snapshot_id', 'finished an interrupted delete');
  logEach(logger, 'info', report.removedLeftovers, 'file', 'removed a leftover of an interrupted write');
  logEach(logger, 'warn', report.orphans, 'file', 'snapshot file with no catalog row (kept; remove it by hand if it is not needed)');
  logEach(logger, 'error', report.missing, 'snapshot_id', 'available snapshot has no file');
  logEach(logger, 'error', report.problems, 'problem', 'start-up reconciliation could not finish this; the next start tries again');
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
): Promise<{ orphans: string[]; missing: string[]; problems: string[] }> {
  const orphans: string[] = [];
  const missing: string[] = [];
  const problems: string[] = [];
  for (const dest of destinations) {
    const ids: string[] = [];
    try {
      const dir = await fs.promises.opendir(dest.path, { bufferSize: 256 });
      for await (const entry of dir) {
        const m = SNAPSHOT_FILE.exec(entry.name);
        if (m) ids.push(m[1]!);
      }
    } catch (e) {
      // A destination that cannot be read is not checked (its rows are not called missing).
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
        problems.push(`cannot read ${dest.path}: ${(e as Error).message}`);
        continue;
      }
    }
    const r = catalog.matchFiles(dest.id, ids);
    orphans.push(...r.orphans.map((id) => path.join(dest.path, `${id}.snap`)));
    missing.push(...r.missing);
  }
  return { orphans, missing, problems };
}
