import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import {
  Catalog,
  CatalogError,
  CATALOG_FILE_NAME,
  DuplicateSnapshotError,
  SCHEMA_VERSION,
  StateConflictError,
  UnknownSnapshotError,
  type NewSnapshot,
  type SnapshotQuery,
  type SnapshotRecord,
} from '../src/catalog';

const T0 = Date.UTC(2024, 0, 1);
const MIN = 60_000;

let dir: string;
let dbPath: string;
let now: number;
let catalog: Catalog | undefined;

const clock = (): number => now;

function open(): Catalog {
  catalog = Catalog.open(dbPath, { clock });
  return catalog;
}

function snapshot(n: number, over: Partial<NewSnapshot> = {}): NewSnapshot {
  return {
    id: `snap-${n.toString(36).padStart(8, '0')}`,
    accountId: 'a-alice',
    originVolumeId: 'vol-0001',
    destinationId: 'local',
    storageNodeId: 'sn-local0001',
    sizeBytes: 1 << 30,
    ...over,
  };
}

function query(over: Partial<SnapshotQuery> = {}): SnapshotQuery {
  return { accountId: 'a-alice', now, start: 0, limit: null, ...over };
}

const ids = (rows: SnapshotRecord[]): string[] => rows.map((r) => r.id);

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'volsnapd-catalog-'));
  dbPath = path.join(dir, CATALOG_FILE_NAME);
  now = T0;
});

afterEach(() => {
  catalog?.close();
  catalog = undefined;
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('opening', () => {
  it('creates the file, migrates to the current schema, and reopens idempotently', () => {
    const c = open();
    expect(fs.existsSync(dbPath)).toBe(true);
    expect(c.schemaVersion).toBe(SCHEMA_VERSION);
    c.insertSnapshot(snapshot(1));
    expect(fs.existsSync(`${dbPath}-wal`)).toBe(true); // WAL mode
    c.close();
    c.close(); // idempotent

    const again = open();
    expect(again.schemaVersion).toBe(SCHEMA_VERSION);
    expect(again.getSnapshot(snapshot(1).id)?.state).toBe('creating');
    expect(again.integrityCheck()).toEqual([]);
  });

  it('refuses a missing parent directory with a CatalogError', () => {
    expect(() => Catalog.open(path.join(dir, 'nope', CATALOG_FILE_NAME))).toThrow(CatalogError);
    expect(() => Catalog.open(path.join(dir, 'nope', CATALOG_FILE_NAME))).toThrow(/cannot open catalog .*nope/);
  });

  it('refuses a catalog written by a newer schema', () => {
    open().close();
    const raw = new Database(dbPath);
    raw.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    raw.close();
    expect(() => open()).toThrow(/schema version \d+ is newer than this volsnapd understands/);
  });

  it('refuses a damaged file with a clear CatalogError, not a crash', () => {
    const c = open();
    c.inTransaction(() => {
      for (let i = 0; i < 3000; i++) {
        c.insertSnapshot(snapshot(i, { displayName: `snapshot number ${i} `.repeat(4), originVolumeId: `vol-${i % 50}` }));
      }
    });
    c.close();
    catalog = undefined;
    expect(fs.existsSync(`${dbPath}-wal`)).toBe(false); // checkpointed on close: the pages are in the main file

    const size = fs.statSync(dbPath).size;
    const pageSize = 4096;
    expect(size / pageSize).toBeGreaterThan(40);
    const fd = fs.openSync(dbPath, 'r+');
    // Garbage over eight pages in the middle of the file: table and index b-tree pages alike.
    const middle = Math.floor(size / pageSize / 2) * pageSize;
    const garbage = Buffer.alloc(8 * pageSize);
    for (let i = 0; i < garbage.length; i++) garbage[i] = (i * 7919 + 13) & 0xff;
    fs.writeSync(fd, garbage, 0, garbage.length, middle);
    fs.closeSync(fd);

    let error: unknown;
    try {
      open();
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(CatalogError);
    expect((error as CatalogError).message).toMatch(new RegExp(`^catalog ${dbPath} is damaged: `));
    expect((error as CatalogError).code).toBe('SQLITE_CORRUPT');
  });

  it('refuses a file that is not a database at all', () => {
    fs.writeFileSync(dbPath, Buffer.alloc(16384, 0x5a));
    expect(() => open()).toThrow(CatalogError);
    expect(() => open()).toThrow(/is damaged: .*SQLITE_NOTADB/);
  });
});

describe('records and transitions', () => {
  it('inserts as creating and reads back every field', () => {
    const c = open();
    const rec = c.insertSnapshot(snapshot(1, { displayName: 'before upgrade', bytesTotal: 4096, method: 'copy' }));
    expect(rec).toEqual({
      seq: 1,
      id: 'snap-00000001',
      accountId: 'a-alice',
      originVolumeId: 'vol-0001',
      destinationId: 'local',
      storageNodeId: 'sn-local0001',
      displayName: 'before upgrade',
      state: 'creating',
      sizeBytes: 1 << 30,
      method: 'copy',
      consistency: null,
      progress: 0,
      bytesTotal: 4096,
      bytesDone: null,
      allocatedBytes: null,
      sharedBytes: null,
      exclusiveBytes: null,
      checksum: null,
      error: null,
      createdAt: T0,
      updatedAt: T0,
      deletedAt: null,
    });
    expect(c.getSnapshot('snap-00000001')).toEqual(rec);
    expect(c.getSnapshot('snap-missing')).toBeUndefined();
  });

  it('throws DuplicateSnapshotError for a second row with the same id', () => {
    const c = open();
    c.insertSnapshot(snapshot(1));
    expect(() => c.insertSnapshot(snapshot(1, { originVolumeId: 'vol-0002' }))).toThrow(DuplicateSnapshotError);
    expect(c.countByState().creating).toBe(1);
  });

  it('refuses malformed ids before storing them', () => {
    const c = open();
    expect(() => c.insertSnapshot(snapshot(1, { id: '../etc' }))).toThrow(/id "..\/etc" is not a snapshot id/);
    expect(() => c.insertSnapshot(snapshot(1, { originVolumeId: 'vol-A' }))).toThrow(TypeError);
    expect(() => c.insertSnapshot(snapshot(1, { accountId: '' }))).toThrow(TypeError);
    expect(() => c.insertSnapshot(snapshot(1, { sizeBytes: -1 }))).toThrow(TypeError);
    expect(c.matchFiles('local', [])).toEqual({ orphans: [], missing: [] });
  });

  it('walks creating → registering → available → deleting → deleted', () => {
    const c = open();
    const id = c.insertSnapshot(snapshot(1)).id;
    now += 1000;
    const reg = c.transition(id, ['creating'], 'registering', { method: 'copy', consistency: 'point-in-time', bytesTotal: 100 });
    expect(reg).toMatchObject({ state: 'registering', method: 'copy', consistency: 'point-in-time', bytesTotal: 100, updatedAt: T0 + 1000 });
    now += 1000;
    const avail = c.transition(id, ['creating', 'registering'], 'available', {
      allocatedBytes: 80,
      sharedBytes: 0,
      exclusiveBytes: 80,
      checksum: 'sha256:abc',
    });
    expect(avail).toMatchObject({ state: 'available', progress: 100, allocatedBytes: 80, exclusiveBytes: 80, method: 'copy', checksum: 'sha256:abc' });
    expect(avail.deletedAt).toBeNull();
    now += 1000;
    expect(c.transition(id, ['available', 'failed'], 'deleting').deletedAt).toBeNull();
    now += 1000;
    const gone = c.transition(id, ['deleting'], 'deleted');
    expect(gone).toMatchObject({ state: 'deleted', deletedAt: T0 + 4000, updatedAt: T0 + 4000, createdAt: T0 });
    expect(c.getSnapshot(id)).toEqual(gone); // soft delete: the row stays
  });

  it('records failure with the reason, and a patch can clear a field to null', () => {
    const c = open();
    const id = c.insertSnapshot(snapshot(1, { method: 'copy' })).id;
    const failed = c.transition(id, ['creating', 'registering'], 'failed', { error: 'ENOSPC: no space left on device', method: null });
    expect(failed).toMatchObject({ state: 'failed', error: 'ENOSPC: no space left on device', method: null, progress: 0 });
  });

  it('throws StateConflictError when the row is not in an expected state, and changes nothing', () => {
    const c = open();
    const id = c.insertSnapshot(snapshot(1)).id;
    c.transition(id, ['creating'], 'available');
    let error: unknown;
    try {
      c.transition(id, ['creating', 'registering'], 'failed', { error: 'late' });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(StateConflictError);
    expect(error).toMatchObject({ snapshotId: id, expected: ['creating', 'registering'], actual: 'available' });
    expect((error as Error).message).toBe(`snapshot ${id} is available, expected creating or registering`);
    expect(c.getSnapshot(id)).toMatchObject({ state: 'available', error: null });
  });

  it('throws UnknownSnapshotError for a missing row, TypeError for an edge the state machine lacks', () => {
    const c = open();
    expect(() => c.transition('snap-nothere', ['creating'], 'failed')).toThrow(UnknownSnapshotError);
    const id = c.insertSnapshot(snapshot(1)).id;
    expect(() => c.transition(id, ['creating'], 'deleted')).toThrow(/creating → deleted is not a snapshot state transition/);
    expect(() => c.transition(id, [], 'failed')).toThrow(TypeError);
    c.transition(id, ['creating'], 'failed');
    c.transition(id, ['failed'], 'deleting');
    c.transition(id, ['deleting'], 'deleted');
    expect(() => c.transition(id, ['deleted'], 'deleted')).toThrow(TypeError); // final
  });

  it('records progress only while creating or registering', () => {
    const c = open();
    const id = c.insertSnapshot(snapshot(1, { bytesTotal: 1000 })).id;
    now += 5;
    expect(c.updateProgress(id, 250, 25)).toBe(true);
    expect(c.getSnapshot(id)).toMatchObject({ bytesDone: 250, progress: 25, updatedAt: T0 + 5 });
    c.transition(id, ['creating'], 'registering');
    expect(c.updateProgress(id, 500, 50)).toBe(true);
    c.transition(id, ['registering'], 'available');
    expect(c.updateProgress(id, 750, 75)).toBe(false);
    expect(c.getSnapshot(id)).toMatchObject({ bytesDone: 500, progress: 100 });
    expect(c.updateProgress('snap-nothere', 1, 1)).toBe(false);
    expect(() => c.updateProgress(id, 1, 101)).toThrow(RangeError);
    expect(() => c.updateProgress(id, -1, 1)).toThrow(RangeError);
    expect(() => c.updateProgress(id, 1, 1.5)).toThrow(RangeError);
  });

  it('keeps per-state counts, byte sums and the list of files to expect', () => {
    const c = open();
    for (let i = 1; i <= 6; i++) c.insertSnapshot(snapshot(i, { accountId: i % 2 ? 'a-alice' : 'a-bob', destinationId: i <= 3 ? 'local' : 'backup' }));
    c.transition(snapshot(1).id, ['creating'], 'available', { allocatedBytes: 100, exclusiveBytes: 40 });
    c.transition(snapshot(2).id, ['creating'], 'available', { allocatedBytes: 200, exclusiveBytes: 50 });
    c.transition(snapshot(3).id, ['creating'], 'registering');
    c.transition(snapshot(4).id, ['creating'], 'failed', { error: 'EIO' });
    c.transition(snapshot(5).id, ['creating'], 'available', { allocatedBytes: 1, exclusiveBytes: 1 });
    c.transition(snapshot(5).id, ['available'], 'deleting');
    c.transition(snapshot(5).id, ['deleting'], 'deleted');
    // exclusive bytes of a sibling change when another snapshot goes: refresh in place
    c.transition(snapshot(2).id, ['available'], 'available', { exclusiveBytes: 200 });

    expect(c.countByState()).toEqual({ creating: 1, registering: 1, available: 2, failed: 1, deleting: 0, deleted: 1 });
    expect(c.sumBytes()).toEqual({ allocated: 300, exclusive: 240 });
    // Files found per destination against the rows: a failed or deleted row's file, another
    // destination's id and an unknown id are orphans; an available row with no file is missing.
    expect(c.matchFiles('local', [snapshot(1).id, snapshot(3).id, snapshot(4).id, snapshot(5).id, 'snap-nobody00'])).toEqual({
      orphans: [snapshot(4).id, snapshot(5).id, 'snap-nobody00'].sort(),
      missing: [snapshot(2).id],
    });
    expect(c.matchFiles('backup', [snapshot(4).id, snapshot(6).id])).toEqual({ orphans: [snapshot(4).id], missing: [] });
    expect(ids(c.snapshotsInStates(['creating', 'registering', 'deleting']))).toEqual([snapshot(3).id, snapshot(6).id]);
    expect(c.integrityCheck()).toEqual([]);
  });

  it('commits a transaction as a whole or not at all', () => {
    const c = open();
    expect(() =>
      c.inTransaction(() => {
        c.insertSnapshot(snapshot(1));
        c.insertSnapshot(snapshot(1));
      }),
    ).toThrow(DuplicateSnapshotError);
    expect(c.getSnapshot(snapshot(1).id)).toBeUndefined();
    expect(c.countByState().creating).toBe(0);
  });
});

describe('listSnapshots', () => {
  function fill(c: Catalog, n: number, over: (i: number) => Partial<NewSnapshot> = () => ({})): void {
    c.inTransaction(() => {
      for (let i = 1; i <= n; i++) c.insertSnapshot(snapshot(i, { createdAt: T0 + i * MIN, ...over(i) }));
    });
  }

  it('pages newest first: total is the whole set, rows the page; past the end is empty', () => {
    const c = open();
    fill(c, 25);
    const all = c.listSnapshots(query());
    expect(all.total).toBe(25);
    expect(all.rows.map((r) => r.seq)).toEqual(Array.from({ length: 25 }, (_, i) => 25 - i));

    const pages = [0, 10, 20].map((start) => c.listSnapshots(query({ start, limit: 10 })));
    expect(pages.map((p) => p.total)).toEqual([25, 25, 25]);
    expect(pages.map((p) => p.rows.length)).toEqual([10, 10, 5]);
    expect(pages.flatMap((p) => ids(p.rows))).toEqual(ids(all.rows));

    expect(c.listSnapshots(query({ start: 25, limit: 10 }))).toEqual({ total: 25, rows: [] });
    expect(c.listSnapshots(query({ start: 1000, limit: null }))).toEqual({ total: 25, rows: [] });
    expect(c.listSnapshots(query({ start: 24, limit: 10 })).rows.map((r) => r.seq)).toEqual([1]);
    expect(c.listSnapshots(query({ limit: 0 }))).toEqual({ total: 25, rows: [] });
    expect(c.listSnapshots(query({ start: 5, limit: 3 }))).toEqual(c.listSnapshots(query({ start: 5, limit: 3 })));
    expect(() => c.listSnapshots(query({ start: -1 }))).toThrow(RangeError);
    expect(() => c.listSnapshots(query({ limit: 1.5 }))).toThrow(RangeError);
  });

  it('orders by insertion, not by created_at, so equal or out-of-order timestamps stay stable', () => {
    const c = open();
    fill(c, 6, (i) => ({ createdAt: T0 + (i % 2) * MIN }));
    expect(c.listSnapshots(query()).rows.map((r) => r.seq)).toEqual([6, 5, 4, 3, 2, 1]);
    expect(ids(c.listSnapshots(query({ start: 2, limit: 2 })).rows)).toEqual([snapshot(4).id, snapshot(3).id]);
  });

  it('shows an account only its own snapshots; null means every account', () => {
    const c = open();
    fill(c, 9, (i) => ({ accountId: i % 3 === 0 ? 'a-bob' : 'a-alice' }));
    const alice = c.listSnapshots(query({ accountId: 'a-alice' }));
    const bob = c.listSnapshots(query({ accountId: 'a-bob' }));
    expect(alice.total).toBe(6);
    expect(alice.rows.every((r) => r.accountId === 'a-alice')).toBe(true);
    expect(ids(bob.rows)).toEqual([snapshot(9).id, snapshot(6).id, snapshot(3).id]);
    expect(c.listSnapshots(query({ accountId: 'a-carol' }))).toEqual({ total: 0, rows: [] });
    const everyone = c.listSnapshots(query({ accountId: null, limit: 4 }));
    expect(everyone.total).toBe(9);
    expect(everyone.rows.map((r) => r.seq)).toEqual([9, 8, 7, 6]);
  });

  it('keeps deleted snapshots for 15 minutes after deletion, measured from `now`', () => {
    const c = open();
    fill(c, 4);
    const deleteAt = (id: string, t: number): void => {
      now = t;
      c.transition(id, ['creating'], 'failed');
      c.transition(id, ['failed'], 'deleting');
      c.transition(id, ['deleting'], 'deleted');
    };
    const tDel = T0 + 60 * MIN;
    deleteAt(snapshot(2).id, tDel);
    deleteAt(snapshot(3).id, tDel - 20 * MIN);

    const at = (t: number, over: Partial<SnapshotQuery> = {}) => c.listSnapshots(query({ now: t, ...over }));
    expect(ids(at(tDel).rows)).toEqual([snapshot(4).id, snapshot(2).id, snapshot(1).id]);
    expect(at(tDel + 15 * MIN).total).toBe(3); // exactly 900 s: still shown
    const later = at(tDel + 15 * MIN + 1);
    expect(later.total).toBe(2);
    expect(ids(later.rows)).toEqual([snapshot(4).id, snapshot(1).id]);
    expect(at(tDel + 15 * MIN + 1, { accountId: null }).total).toBe(2);
    expect(at(tDel + 30 * MIN, { recentDeletedMs: 31 * MIN, accountId: null }).total).toBe(3);
    expect(at(tDel, { states: ['deleted'] })).toMatchObject({ total: 1, rows: [{ id: snapshot(2).id, deletedAt: tDel }] });
    expect(at(tDel, { accountId: 'a-bob' }).total).toBe(0);
  });

  it('filters by state, origin volume, destination and creation time; total follows the filters', () => {
    const c = open();
    fill(c, 12, (i) => ({
      originVolumeId: i % 2 ? 'vol-odd' : 'vol-even',
      destinationId: i <= 4 ? 'backup' : 'local',
      accountId: i === 12 ? 'a-bob' : 'a-alice',
    }));
    for (const i of [1, 2, 3, 5, 8]) c.transition(snapshot(i).id, ['creating'], 'available');
    c.transition(snapshot(4).id, ['creating'], 'failed');

    const seqs = (over: Partial<SnapshotQuery>) => {
      const page = c.listSnapshots(query(over));
      expect(page.rows.length).toBe(page.total); // no limit: the page is the whole set
      return page.rows.map((r) => r.seq);
    };
    expect(seqs({ states: ['available'] })).toEqual([8, 5, 3, 2, 1]);
    expect(seqs({ states: ['available', 'failed'] })).toEqual([8, 5, 4, 3, 2, 1]);
    expect(seqs({ states: ['creating'] })).toEqual([11, 10, 9, 7, 6]);
    expect(seqs({ states: ['creating'], accountId: null })).toEqual([12, 11, 10, 9, 7, 6]);
    expect(seqs({ states: [] })).toEqual([]);
    expect(seqs({ originVolumeId: 'vol-odd' })).toEqual([11, 9, 7, 5, 3, 1]);
    expect(seqs({ destinationId: 'backup' })).toEqual([4, 3, 2, 1]);
    expect(seqs({ destinationId: 'backup', states: ['available'], originVolumeId: 'vol-even' })).toEqual([2]);
    expect(seqs({ createdSince: T0 + 3 * MIN, createdUntil: T0 + 6 * MIN })).toEqual([6, 5, 4, 3]);
    expect(seqs({ createdSince: T0 + 10 * MIN, accountId: null })).toEqual([12, 11, 10]);
    expect(seqs({ originVolumeId: 'vol-none' })).toEqual([]);

    const page = c.listSnapshots(query({ originVolumeId: 'vol-odd', start: 2, limit: 2 }));
    expect(page).toMatchObject({ total: 6 });
    expect(page.rows.map((r) => r.seq)).toEqual([7, 5]);
    expect(() => c.listSnapshots(query({ states: ['gone' as never] }))).toThrow(/unknown state "gone"/);
  });
});

describe('performance', () => {
  it('lists 100 of 100,000 rows with total, p99 well under the bound', () => {
    const c = open();
    const N = 100_000;
    let t = performance.now();
    c.inTransaction(() => {
      for (let i = 0; i < N; i++) {
        // 95% in one big account (the worst case for counting), the rest spread over 50 small ones
        const rec = c.insertSnapshot(
          snapshot(i, {
            accountId: i % 20 === 0 ? `a-small${i % 50}` : 'a-big',
            originVolumeId: `vol-${i % 700}`,
            destinationId: i % 3 === 0 ? 'backup' : 'local',
            createdAt: T0 + i * 1000,
          }),
        );
        if (i % 100 === 7) continue; // a few still creating
        c.transition(rec.id, ['creating'], 'available', { method: 'reflink', allocatedBytes: 4096, exclusiveBytes: 0 });
        if (i % 10 === 3) {
          now = T0 + i * 1000 + 1000;
          c.transition(rec.id, ['available'], 'deleting');
          c.transition(rec.id, ['deleting'], 'deleted');
        }
      }
    });
    const insertMs = performance.now() - t;
    now = T0 + N * 1000;
    const counts = c.countByState();
    expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(N);

    const measure = (name: string, run: (i: number) => void): { p50: number; p99: number } => {
      for (let i = 0; i < 20; i++) run(i); // warm the page cache and the statement cache
      const times: number[] = [];
      for (let i = 0; i < 200; i++) {
        const start = performance.now();
        run(i);
        times.push(performance.now() - start);
      }
      times.sort((a, b) => a - b);
      const p50 = times[99]!;
      const p99 = times[197]!;
      console.log(`list ${name}: p50 ${p50.toFixed(2)} ms, p99 ${p99.toFixed(2)} ms`);
      return { p50, p99 };
    };

    // Totals come from trigger-kept counters when only account/state filter; a creation-time
    // filter that matches everything forces a real count. Both must agree.
    for (const over of [{ accountId: 'a-big' }, { accountId: null }, { accountId: 'a-small7' }, { states: ['available' as const] }, { states: ['creating' as const, 'deleted' as const] }]) {
      const fast = c.listSnapshots(query({ ...over, limit: 100 }));
      const counted = c.listSnapshots(query({ ...over, limit: 100, createdSince: 0 }));
      expect(fast.total).toBe(counted.total);
      expect(ids(fast.rows)).toEqual(ids(counted.rows));
    }
    const big = c.listSnapshots(query({ accountId: 'a-big', limit: 100 }));
    expect(big.rows.length).toBe(100);
    // 95,000 rows in a-big; all 10,000 deleted ones are there, the last 90 within the window
    expect(big.total).toBe(95_000 - 10_000 + 90);
    expect(big.rows[0]!.seq).toBeGreaterThan(big.rows[99]!.seq);

    console.log(`inserted ${N} rows in ${insertMs.toFixed(0)} ms`);
    const first = measure('limit=100 first page, account with 95k rows', () => {
      c.listSnapshots(query({ accountId: 'a-big', limit: 100 }));
    });
    const admin = measure('limit=100 first page, all accounts', () => {
      c.listSnapshots(query({ accountId: null, limit: 100 }));
    });
    const deep = measure('limit=100 at a random start', (i) => {
      c.listSnapshots(query({ accountId: 'a-big', limit: 100, start: (i * 7919) % 80_000 }));
    });
    const filtered = measure('limit=100, state=creating', () => {
      c.listSnapshots(query({ accountId: 'a-big', limit: 100, states: ['creating'] }));
    });
    // Design target: p99 < 5 ms. The asserted bound is generous so a busy shared machine does not
    // flake; the printed figures are the ones to compare with the target.
    for (const m of [first, admin, filtered]) expect(m.p99).toBeLessThan(25);
    expect(deep.p99).toBeLessThan(50);
    expect(c.integrityCheck()).toEqual([]);
  });
});
