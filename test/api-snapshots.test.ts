// /api/volume_snapshots over HTTP: a real listening server, the real engine, real files.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as YAML from 'yaml';

import { ERRORS, type ErrorName } from '../src/api/errors';
import { Catalog, CATALOG_FILE_NAME, RECENT_DELETED_MS, type SnapshotState } from '../src/catalog';
import { TEST_ACCOUNT, call, startDaemon, waitForState, type Daemon } from './helpers/daemon';

const T0 = Date.UTC(2012, 2, 1, 9, 0, 0);
let now = T0;
const clock = () => now;
let d: Daemon;

function expectError(r: { status: number; json: unknown }, name: ErrorName, message?: RegExp): void {
  expect({ status: r.status, error: (r.json as { error?: string })?.error }).toEqual({ status: ERRORS[name].status, error: name });
  expect(Object.keys(r.json as object)).toEqual(['error', 'message', 'code']);
  expect((r.json as { code: string }).code).toBe(ERRORS[name].code);
  if (message) expect((r.json as { message: string }).message).toMatch(message);
}

async function create(params: Record<string, string>, account = TEST_ACCOUNT): Promise<Record<string, unknown>> {
  const r = await call(d, 'POST', '/api/volume_snapshots', { json: params, account });
  expect(r.status, r.text).toBe(200);
  return waitForState(d, r.json.id, ['available', 'failed'], { account });
}

/** Rows written straight into the catalog (a second connection), in states the API cannot hold still. */
function seed(rows: Array<{ id: string; account?: string; volume?: string; state?: SnapshotState; createdAt?: number; destination?: string }>): void {
  const catalog = Catalog.open(path.join(d.config.stateDir, CATALOG_FILE_NAME), { clock });
  try {
    for (const row of rows) {
      catalog.insertSnapshot({
        id: row.id,
        accountId: row.account ?? TEST_ACCOUNT,
        originVolumeId: row.volume ?? 'vol-seeded',
        destinationId: row.destination ?? 'local',
        storageNodeId: d.engine.nodeId,
        sizeBytes: 5 * 1024 * 1024,
        ...(row.createdAt !== undefined ? { createdAt: row.createdAt } : {}),
      });
      const state = row.state ?? 'creating';
      if (state === 'registering') catalog.transition(row.id, ['creating'], 'registering');
      if (state === 'available' || state === 'deleting' || state === 'deleted') catalog.transition(row.id, ['creating'], 'available');
      if (state === 'failed') catalog.transition(row.id, ['creating'], 'failed', { error: 'seeded failure' });
      if (state === 'deleting' || state === 'deleted') catalog.transition(row.id, ['available'], 'deleting');
      if (state === 'deleted') catalog.transition(row.id, ['deleting'], 'deleted');
    }
  } finally {
    catalog.close();
  }
}

beforeAll(async () => {
  d = await startDaemon({ clock });
  d.makeVolume('vol-aaaa0001', 10 * 1024 * 1024 + 1);
  d.makeVolume('vol-aaaa0002', 3 * 1024 * 1024);
});
afterAll(async () => {
  await d?.close();
});

describe('create', () => {
  it('answers 200 with the show document and finishes in the background; the file is at the destination', async () => {
    const r = await call(d, 'POST', '/api/volume_snapshots', { json: { volume_id: 'vol-aaaa0001', destination: 'local', display_name: 'first' } });
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({
      uuid: r.json.id,
      state: 'creating',
      size: 11,
      origin_volume_id: 'vol-aaaa0001',
      destination_id: 'local',
      destination_name: 'Local Store',
      backing_store: 'raw',
      created_at: new Date(T0).toISOString(),
      deleted_at: null,
      storage_node_id: d.config.nodeId,
      account_id: TEST_ACCOUNT,
      display_name: 'first',
    });
    expect(r.json.id).toMatch(/^snap-[a-z0-9]{8}$/);
    const done = await waitForState(d, r.json.id);
    expect(done).toMatchObject({ state: 'available', progress: 100, consistency: 'point-in-time' });
    expect(['reflink', 'copy']).toContain(done.method);
    expect(typeof done.exclusive_bytes).toBe('number');
    expect(fs.existsSync(path.join(d.config.destinations[0]!.path, `${r.json.id}.snap`))).toBe(true);
  });

  it('takes parameters from a form body, from the query string, and from both (the body wins)', async () => {
    const form = await call(d, 'POST', '/api/volume_snapshots', { form: { volume_id: 'vol-aaaa0002', destination: 'local' } });
    expect(form.status, form.text).toBe(200);
    expect(form.json.origin_volume_id).toBe('vol-aaaa0002');
    const query = await call(d, 'POST', '/api/volume_snapshots?volume_id=vol-aaaa0002&destination=local&display_name=q');
    expect(query.status, query.text).toBe(200);
    expect(query.json.display_name).toBe('q');
    const both = await call(d, 'POST', '/api/volume_snapshots?volume_id=vol-nosuch01&destination=nowhere&display_name=fromquery', {
      form: { volume_id: 'vol-aaaa0002', destination: 'local' },
    });
    expect(both.status, both.text).toBe(200);
    expect(both.json).toMatchObject({ origin_volume_id: 'vol-aaaa0002', destination_id: 'local', display_name: 'fromquery' });
    // A JSON body with an empty Content-Length counts as no parameters at all.
    const empty = await call(d, 'POST', '/api/volume_snapshots?volume_id=vol-aaaa0002&destination=local', { body: '', contentType: 'application/json' });
    expect(empty.status, empty.text).toBe(200);
    for (const r of [form, query, both, empty]) await waitForState(d, r.json.id);
  });

  it('refuses what api.md says it refuses, with its code', async () => {
    const post = (json: Record<string, unknown>) => call(d, 'POST', '/api/volume_snapshots', { json });
    expectError(await post({ destination: 'local' }), 'UndefinedVolumeID', /volume_id/);
    expectError(await call(d, 'POST', '/api/volume_snapshots', { form: { volume_id: '', destination: 'local' } }), 'UndefinedVolumeID');
    expectError(await post({ volume_id: null, destination: 'local' }), 'UndefinedVolumeID');
    expectError(await post({ volume_id: 'vol-aaaa0001' }), 'UndefinedRequiredParameter', /destination/);
    expectError(await post({ volume_id: 'vol-nosuch01', destination: 'local' }), 'UnknownVolume');
    expectError(await post({ volume_id: 'vol-../../etc/passwd', destination: 'local' }), 'UnknownVolume');
    expectError(await post({ volume_id: 'VOL-AAAA0001', destination: 'local' }), 'UnknownVolume');
    expectError(await post({ volume_id: 'vol-aaaa0001', destination: 'elsewhere' }), 'InvalidParameter', /elsewhere/);
    expectError(await post({ volume_id: 'vol-aaaa0001', destination: '../x' }), 'InvalidParameter', /destination/);
    expectError(await post({ volume_id: 'vol-aaaa0001', destination: 'local', storage_pool_id: 'sn-other0001' }), 'UnknownStorageNode');
    expectError(await post({ volume_id: 'vol-aaaa0001', destination: 'local', storage_pool_id: 'not a node' }), 'UnknownStorageNode');
    expectError(await post({ volume_id: 'vol-aaaa0001', destination: 'local', display_name: 'x'.repeat(256) }), 'InvalidParameter', /display_name/);
    expectError(await post({ volume_id: 'vol-aaaa0001', destination: 'local', id: 'snap-BAD' }), 'InvalidParameter', /id/);
    expectError(await post({ volume_id: { $gt: '' }, destination: 'local' }), 'InvalidParameter');
    expectError(await call(d, 'POST', '/api/volume_snapshots', { json: ['vol-aaaa0001', 'local'] }), 'InvalidParameter');
    expectError(await call(d, 'POST', '/api/volume_snapshots', { json: 'vol-aaaa0001' }), 'InvalidParameter');
    expectError(await call(d, 'POST', '/api/volume_snapshots', { body: '{"volume_id": "vol-aaaa0001",', contentType: 'application/json' }), 'InvalidParameter', /JSON/);
    expectError(await call(d, 'POST', '/api/volume_snapshots', { body: '{"__proto__": {"x": 1}}', contentType: 'application/json' }), 'InvalidParameter');
    expectError(await call(d, 'POST', '/api/volume_snapshots', { body: 'volume_id=vol-aaaa0001', contentType: 'text/plain' }), 'UnsupportedMediaType');
    expectError(await call(d, 'POST', '/api/volume_snapshots', { body: JSON.stringify({ volume_id: 'vol-aaaa0001', destination: 'local', display_name: 'x'.repeat(70_000) }), contentType: 'application/json' }), 'PayloadTooLarge');
    expectError(await call(d, 'POST', '/api/volume_snapshots', { json: { volume_id: 'vol-aaaa0001', destination: 'local' }, account: null }), 'InvalidRequestCredentials');
    const unchanged = await call(d, 'GET', '/api/volume_snapshots?volume_id=vol-nosuch01');
    expect(unchanged.json[0].owner_total).toBe(0);
  });

  it('refuses unknown parameters (a typo must not be dropped silently), and account_id cannot be smuggled in', async () => {
    const r = await call(d, 'POST', '/api/volume_snapshots', { json: { volume_id: 'vol-aaaa0002', destination: 'local', colour: 'blue' } });
    expectError(r, 'InvalidParameter');
    expect(r.json.message).toMatch(/colour/);
    expectError(await call(d, 'POST', '/api/volume_snapshots', { form: { volume_id: 'vol-aaaa0002', destination: 'local', account_id: 'a-other' } }), 'InvalidParameter');
    expectError(await call(d, 'GET', '/api/volume_snapshots?limt=10'), 'InvalidParameter');
  });

  it("makes a caller-chosen id idempotent for the same volume and a 409 for another", async () => {
    const first = await call(d, 'POST', '/api/volume_snapshots', { json: { volume_id: 'vol-aaaa0002', destination: 'local', id: 'snap-chosen01' } });
    expect(first.status, first.text).toBe(200);
    expect(first.json.id).toBe('snap-chosen01');
    await waitForState(d, 'snap-chosen01');
    const retry = await call(d, 'POST', '/api/volume_snapshots', { form: { volume_id: 'vol-aaaa0002', destination: 'local', id: 'snap-chosen01' } });
    expect(retry.status).toBe(200);
    expect(retry.json).toMatchObject({ id: 'snap-chosen01', state: 'available' });
    expectError(await call(d, 'POST', '/api/volume_snapshots', { json: { volume_id: 'vol-aaaa0001', destination: 'local', id: 'snap-chosen01' } }), 'Conflict');
    const list = await call(d, 'GET', '/api/volume_snapshots?volume_id=vol-aaaa0002&state=available');
    expect(list.json[0].results.filter((s: { id: string }) => s.id === 'snap-chosen01')).toHaveLength(1);
  });
});

describe('show', () => {
  it('shows its own snapshot; unknown, malformed and other accounts’ ids all answer 404 UnknownVolumeSnapshot', async () => {
    const mine = await create({ volume_id: 'vol-aaaa0001', destination: 'local' });
    const theirs = await create({ volume_id: 'vol-aaaa0001', destination: 'local' }, 'a-other0001');
    const shown = await call(d, 'GET', `/api/volume_snapshots/${mine.id}`);
    expect(shown.status).toBe(200);
    expect(shown.json).toEqual(mine);

    const unknown = await call(d, 'GET', '/api/volume_snapshots/snap-zzzzzzzz');
    const other = await call(d, 'GET', `/api/volume_snapshots/${theirs.id}`);
    expectError(unknown, 'UnknownVolumeSnapshot');
    expectError(other, 'UnknownVolumeSnapshot');
    // Exactly alike but for the id: nothing tells that the other one exists.
    expect(other.json.message.replace(String(theirs.id), 'ID')).toBe(unknown.json.message.replace('snap-zzzzzzzz', 'ID'));
    expect([...other.headers.keys()].sort()).toEqual([...unknown.headers.keys()].sort());

    for (const bad of ['SNAP-ABC', 'snap-', 'snap-a.b', 'snap-%00', '%2e%2e', 'vol-aaaa0001', `snap-${'a'.repeat(65)}`, `snap-${'a'.repeat(9000)}`]) {
      const r = await call(d, 'GET', `/api/volume_snapshots/${bad}`);
      expect(r.status, bad).toBe(404);
      expect(['UnknownVolumeSnapshot', 'NotFound'], bad).toContain(r.json.error);
    }
    expect(await call(d, 'GET', `/api/volume_snapshots/${theirs.id}`, { account: 'a-other0001' })).toMatchObject({ status: 200 });
  });

  it('accepts both spellings of the account header; refuses none or a malformed one (103)', async () => {
    const mine = await create({ volume_id: 'vol-aaaa0002', destination: 'local' });
    const underscored = await call(d, 'GET', `/api/volume_snapshots/${mine.id}`, { accountHeader: 'X_VDC_ACCOUNT_UUID' });
    expect(underscored.status).toBe(200);
    expect(underscored.json.id).toBe(mine.id);
    const created = await call(d, 'POST', '/api/volume_snapshots', { json: { volume_id: 'vol-aaaa0002', destination: 'local' }, accountHeader: 'X_VDC_ACCOUNT_UUID' });
    expect(created.json.account_id).toBe(TEST_ACCOUNT);
    await waitForState(d, created.json.id);
    expectError(await call(d, 'GET', `/api/volume_snapshots/${mine.id}`, { account: null }), 'InvalidRequestCredentials');
    expectError(await call(d, 'GET', '/api/volume_snapshots', { account: null }), 'InvalidRequestCredentials');
    expectError(await call(d, 'GET', '/api/volume_snapshots', { account: 'a-../x' }), 'InvalidRequestCredentials');
    expectError(
      await call(d, 'GET', '/api/volume_snapshots', { headers: { X_VDC_ACCOUNT_UUID: 'a-other0001' } }),
      'InvalidRequestCredentials',
      /different accounts/,
    );
  });

  it('serves the versioned alias and the .json suffix', async () => {
    const mine = await create({ volume_id: 'vol-aaaa0002', destination: 'local' });
    for (const p of [`/api/11.12/volume_snapshots/${mine.id}`, `/api/volume_snapshots/${mine.id}.json`, `/api/11.12/volume_snapshots/${mine.id}.json`]) {
      const r = await call(d, 'GET', p);
      expect(r.status, p).toBe(200);
      expect(r.json).toEqual(mine);
    }
    // A trailing slash is the same path.
    const slash = await call(d, 'GET', '/api/volume_snapshots/');
    expect(slash.status).toBe(200);
    expect(slash.json[0].owner_total).toBeGreaterThan(0);
  });
});

describe('index', () => {
  it("has dcmgr's one-element shape, results and result alike, limit null when omitted", async () => {
    const r = await call(d, 'GET', '/api/volume_snapshots');
    expect(r.status).toBe(200);
    expect(Array.isArray(r.json)).toBe(true);
    expect(r.json).toHaveLength(1);
    const page = r.json[0];
    expect(Object.keys(page)).toEqual(['owner_total', 'start', 'limit', 'results', 'result']);
    expect(page).toMatchObject({ start: 0, limit: null });
    expect(page.result).toEqual(page.results);
    expect(page.owner_total).toBe(page.results.length);
    expect(page.results.every((s: { account_id: string }) => s.account_id === TEST_ACCOUNT)).toBe(true);
  });

  it('pages newest first: owner_total is the whole set, pages tile it, a start past the end is empty', async () => {
    const account = 'a-pager0001';
    const ids = Array.from({ length: 23 }, (_, i) => `snap-page${String(i).padStart(4, '0')}`);
    seed(ids.map((id) => ({ id, account, state: 'available' as const })));
    const all = await call(d, 'GET', '/api/volume_snapshots', { account });
    expect(all.json[0].owner_total).toBe(23);
    expect(all.json[0].results.map((s: { id: string }) => s.id)).toEqual([...ids].reverse());

    const seen: string[] = [];
    for (let start = 0; start < 23; start += 5) {
      const p = await call(d, 'GET', `/api/volume_snapshots?start=${start}&limit=5`, { account });
      expect(p.status).toBe(200);
      expect(p.json[0]).toMatchObject({ owner_total: 23, start, limit: 5 });
      expect(p.json[0].results).toHaveLength(Math.min(5, 23 - start));
      seen.push(...p.json[0].results.map((s: { id: string }) => s.id));
    }
    expect(seen).toEqual([...ids].reverse());
    for (const start of [23, 24, 1000]) {
      const p = await call(d, 'GET', `/api/volume_snapshots?start=${start}&limit=10`, { account });
      expect(p.json[0]).toMatchObject({ owner_total: 23, start, limit: 10, results: [], result: [] });
    }
    const tail = await call(d, 'GET', '/api/volume_snapshots?start=20', { account });
    expect(tail.json[0]).toMatchObject({ owner_total: 23, start: 20, limit: null });
    expect(tail.json[0].results.map((s: { id: string }) => s.id)).toEqual(ids.slice(0, 3).reverse());
    // Another snapshot arriving moves the pages by one, no more.
    seed([{ id: 'snap-page9999', account, state: 'creating' }]);
    const after = await call(d, 'GET', '/api/volume_snapshots?start=0&limit=2', { account });
    expect(after.json[0].owner_total).toBe(24);
    expect(after.json[0].results.map((s: { id: string }) => s.id)).toEqual(['snap-page9999', ids[22]]);
  });

  it('refuses paging values that are not plain integers in range, naming the parameter', async () => {
    const bad: Array<[string, RegExp]> = [
      ['start=-1', /start/],
      ['start=abc', /start/],
      ['start=1.5', /start/],
      ['start=', /start/],
      ['start=0x10', /start/],
      ['start=1e3', /start/],
      ['start=%201', /start/],
      ['start=1&start=2', /start/],
      ['start=99999999999999999999', /start/],
      ['start=2147483648', /start/],
      ['limit=0', /limit/],
      ['limit=-5', /limit/],
      ['limit=1001', /limit.*1000/],
      ['limit=NaN', /limit/],
      ['limit=Infinity', /limit/],
      ['limit=true', /limit/],
      ['limit=1&limit=1', /limit/],
    ];
    for (const [q, message] of bad) {
      const r = await call(d, 'GET', `/api/volume_snapshots?${q}`);
      expect(r.status, q).toBe(400);
      expectError(r, 'InvalidParameter', message);
    }
    const ok = await call(d, 'GET', '/api/volume_snapshots?start=0&limit=1000');
    expect(ok.status).toBe(200);
  });

  it('filters by state (one or several), origin volume, destination and creation time; refuses unknown values', async () => {
    const account = 'a-filter0001';
    const states: SnapshotState[] = ['creating', 'registering', 'available', 'failed', 'deleting', 'deleted'];
    seed(states.map((state, i) => ({ id: `snap-filter0${i}`, account, state, volume: i % 2 ? 'vol-odd' : 'vol-even', createdAt: T0 - (6 - i) * 3_600_000 })));
    const ids = async (q: string) => {
      const r = await call(d, 'GET', `/api/volume_snapshots?${q}`, { account });
      expect(r.status, `${q}: ${r.text}`).toBe(200);
      expect(r.json[0].owner_total).toBe(r.json[0].results.length);
      return r.json[0].results.map((s: { id: string }) => s.id).sort();
    };
    expect(await ids('')).toHaveLength(6);
    expect(await ids('state=available')).toEqual(['snap-filter02']);
    expect(await ids('state=failed,deleted')).toEqual(['snap-filter03', 'snap-filter05']);
    expect(await ids('state=creating,%20registering')).toEqual(['snap-filter00', 'snap-filter01']);
    expect(await ids('volume_id=vol-odd')).toEqual(['snap-filter01', 'snap-filter03', 'snap-filter05']);
    expect(await ids('volume_id=vol-nosuch')).toEqual([]);
    expect(await ids('destination=local')).toHaveLength(6);
    expect(await ids(`created_since=${new Date(T0 - 2 * 3_600_000).toISOString()}`)).toEqual(['snap-filter04', 'snap-filter05']);
    // Created at 03:00, 04:00, … 08:00 UTC; both bounds inclusive.
    expect(await ids('created_until=2012-03-01T04:00:00Z')).toEqual(['snap-filter00', 'snap-filter01']);
    expect(await ids('created_since=2012-03-01T04:00:00%2B01:00&created_until=2012-03-01T05:00:00Z')).toEqual(['snap-filter00', 'snap-filter01', 'snap-filter02']);
    expect(await ids('created_since=2012-03-02')).toEqual([]);
    expect(await ids('state=available&volume_id=vol-even&destination=local')).toEqual(['snap-filter02']);

    for (const q of ['state=availabel', 'state=', 'state=available,', 'state=AVAILABLE', 'destination=backup', 'destination=../x', 'volume_id=../x', 'created_since=yesterday', 'created_since=2012-03-01T04:00:00', 'created_until=2012-13-01', 'created_until=1330560000']) {
      expectError(await call(d, 'GET', `/api/volume_snapshots?${q}`, { account }), 'InvalidParameter');
    }
  });
});

describe('destroy', () => {
  it('deletes an available snapshot: ["snap-…"], the file goes, the row stays as deleted with deleted_at', async () => {
    const snap = await create({ volume_id: 'vol-aaaa0001', destination: 'local' });
    const file = path.join(d.config.destinations[0]!.path, `${snap.id}.snap`);
    expect(fs.existsSync(file)).toBe(true);
    now = T0 + 60_000;
    const r = await call(d, 'DELETE', `/api/volume_snapshots/${snap.id}`);
    expect(r.status).toBe(200);
    expect(r.json).toEqual([snap.id]);
    expect(fs.existsSync(file)).toBe(false);
    const shown = await call(d, 'GET', `/api/volume_snapshots/${snap.id}`);
    expect(shown.json).toMatchObject({ state: 'deleted', deleted_at: new Date(T0 + 60_000).toISOString() });
    // The volume it came from is untouched.
    expect(fs.statSync(path.join(d.config.volumesDir, 'vol-aaaa0001')).size).toBe(10 * 1024 * 1024 + 1);
    expectError(await call(d, 'DELETE', `/api/volume_snapshots/${snap.id}`), 'InvalidVolumeState', /deleted/);
    now = T0;
  });

  it('deletes failed ones; refuses creating, registering and deleting ones with 140; unknown and others’ with 117', async () => {
    seed([
      { id: 'snap-dcreat01', state: 'creating' },
      { id: 'snap-dregis01', state: 'registering' },
      { id: 'snap-ddelet01', state: 'deleting' },
      { id: 'snap-dfaild01', state: 'failed' },
      { id: 'snap-dother01', state: 'available', account: 'a-other0001' },
    ]);
    for (const id of ['snap-dcreat01', 'snap-dregis01', 'snap-ddelet01']) {
      expectError(await call(d, 'DELETE', `/api/volume_snapshots/${id}`), 'InvalidVolumeState');
    }
    expect((await call(d, 'DELETE', '/api/volume_snapshots/snap-dfaild01')).json).toEqual(['snap-dfaild01']);
    expectError(await call(d, 'DELETE', '/api/volume_snapshots/snap-dother01'), 'UnknownVolumeSnapshot');
    expectError(await call(d, 'DELETE', '/api/volume_snapshots/snap-nosuch01'), 'UnknownVolumeSnapshot');
    expectError(await call(d, 'DELETE', '/api/volume_snapshots/..%2F..%2Fetc'), 'UnknownVolumeSnapshot');
    expect((await call(d, 'GET', '/api/volume_snapshots/snap-dother01', { account: 'a-other0001' })).json.state).toBe('available');
  });

  it('keeps a deleted snapshot in index for exactly 15 minutes (the clock given to server and engine)', async () => {
    const account = 'a-window0001';
    const snap = await create({ volume_id: 'vol-aaaa0002', destination: 'local' }, account);
    const keep = await create({ volume_id: 'vol-aaaa0002', destination: 'local' }, account);
    const deletedAt = T0 + 5_000;
    now = deletedAt;
    try {
      expect((await call(d, 'DELETE', `/api/volume_snapshots/${snap.id}`, { account })).status).toBe(200);
      const at = async (t: number) => {
        now = t;
        const r = await call(d, 'GET', '/api/volume_snapshots', { account });
        return { total: r.json[0].owner_total, ids: r.json[0].results.map((s: { id: string }) => s.id) };
      };
      expect(await at(deletedAt)).toEqual({ total: 2, ids: [keep.id, snap.id] });
      expect(await at(deletedAt + RECENT_DELETED_MS - 1)).toEqual({ total: 2, ids: [keep.id, snap.id] });
      expect(await at(deletedAt + RECENT_DELETED_MS)).toEqual({ total: 2, ids: [keep.id, snap.id] });
      expect(await at(deletedAt + RECENT_DELETED_MS + 1)).toEqual({ total: 1, ids: [keep.id] });
      // Gone from index, still there to show.
      expect((await call(d, 'GET', `/api/volume_snapshots/${snap.id}`, { account })).json.state).toBe('deleted');
    } finally {
      now = T0;
    }
  });
});

describe('upload_destination', () => {
  it('lists the configured destinations, local first, and is not taken for an id', async () => {
    const r = await call(d, 'GET', '/api/volume_snapshots/upload_destination');
    expect(r.status).toBe(200);
    expect(r.json).toEqual([{ results: [{ destination_id: 'local', destination_name: 'Local Store' }] }]);
    expect((await call(d, 'GET', '/api/11.12/volume_snapshots/upload_destination.json')).json).toEqual(r.json);
    expectError(await call(d, 'GET', '/api/volume_snapshots/upload_destination', { account: null }), 'InvalidRequestCredentials');
  });
});

describe('YAML', () => {
  it('.yml, .yaml and Accept: application/yaml give the same data as JSON', async () => {
    const snap = await create({ volume_id: 'vol-aaaa0002', destination: 'local' });
    const pairs: Array<[string, string, Record<string, string>]> = [
      ['/api/volume_snapshots', '/api/volume_snapshots.yml', {}],
      ['/api/volume_snapshots?limit=2', '/api/volume_snapshots.yaml?limit=2', {}],
      [`/api/volume_snapshots/${snap.id}`, `/api/11.12/volume_snapshots/${snap.id}.yml`, {}],
      [`/api/volume_snapshots/${snap.id}`, `/api/volume_snapshots/${snap.id}`, { accept: 'application/yaml' }],
      ['/api/volume_snapshots/upload_destination', '/api/volume_snapshots/upload_destination', { accept: 'text/yaml' }],
      ['/api/volume_snapshots/snap-nosuch01', '/api/volume_snapshots/snap-nosuch01.yml', {}],
      ['/api/volume_snapshots?limit=0', '/api/volume_snapshots.yml?limit=0', {}],
      ['/api/nowhere', '/api/nowhere.yml', {}],
    ];
    for (const [jsonPath, yamlPath, headers] of pairs) {
      const j = await call(d, 'GET', jsonPath);
      const y = await call(d, 'GET', yamlPath, { headers });
      expect(y.status, yamlPath).toBe(j.status);
      expect(y.headers.get('content-type'), yamlPath).toMatch(/^application\/yaml/);
      expect(YAML.parse(y.text), yamlPath).toEqual(j.json);
    }
    // .json wins over an Accept header asking for YAML.
    const forced = await call(d, 'GET', `/api/volume_snapshots/${snap.id}.json`, { headers: { accept: 'application/yaml' } });
    expect(forced.headers.get('content-type')).toMatch(/^application\/json/);
    // A create answered in YAML.
    const created = await call(d, 'POST', '/api/volume_snapshots.yml', { form: { volume_id: 'vol-aaaa0002', destination: 'local' } });
    expect(created.status).toBe(200);
    expect(YAML.parse(created.text)).toMatchObject({ origin_volume_id: 'vol-aaaa0002', state: 'creating' });
    await waitForState(d, YAML.parse(created.text).id);
  });
});
