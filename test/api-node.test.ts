// Beyond the seed: volumes and restore, storage_node, health, the OpenAPI document, and how the
// server answers what no route handles (404, 405, 500), against a listening daemon.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as YAML from 'yaml';

import { ERRORS, type ErrorName } from '../src/api/errors';
import { call, startDaemon, waitForState, type Daemon } from './helpers/daemon';

let d: Daemon;

function expectError(r: { status: number; json: { error?: string; code?: string; message?: string } }, name: ErrorName): void {
  expect({ status: r.status, error: r.json?.error, code: r.json?.code }).toEqual({ status: ERRORS[name].status, error: name, code: ERRORS[name].code });
  expect(Object.keys(r.json)).toEqual(['error', 'message', 'code']);
}

async function snapshot(volume: string, account?: string): Promise<string> {
  const r = await call(d, 'POST', '/api/volume_snapshots', { json: { volume_id: volume, destination: 'local' }, ...(account ? { account } : {}) });
  expect(r.status, r.text).toBe(200);
  await waitForState(d, r.json.id, ['available'], account ? { account } : {});
  return r.json.id;
}

beforeAll(async () => {
  d = await startDaemon({
    configure: (config) => {
      const base = path.dirname(config.stateDir);
      // Listed backup first: the API still answers local first.
      config.destinations = [
        { id: 'backup', driver: 'local', displayName: 'Backup disk', path: path.join(base, 'backup') },
        { id: 'local', driver: 'local', displayName: 'Local Store', path: path.join(base, 'snapshots') },
      ];
      fs.mkdirSync(path.join(base, 'backup'), { recursive: true });
    },
  });
  d.makeVolume('vol-node0001', 4 * 1024 * 1024, 1024 * 1024);
  d.makeVolume('vol-node0002', 1024 * 1024 + 1);
});
afterAll(async () => {
  await d?.close();
});

describe('volumes', () => {
  it('lists the volumes this node holds in the list shape, pages them, and shows one', async () => {
    const r = await call(d, 'GET', '/api/volumes');
    expect(r.status).toBe(200);
    expect(r.json[0]).toMatchObject({ start: 0, limit: null });
    const ids = r.json[0].results.map((v: { id: string }) => v.id);
    expect(ids).toEqual(expect.arrayContaining(['vol-node0001', 'vol-node0002']));
    expect(r.json[0].owner_total).toBe(ids.length);
    expect(r.json[0].result).toEqual(r.json[0].results);
    const one = r.json[0].results.find((v: { id: string }) => v.id === 'vol-node0002');
    expect(one).toMatchObject({ id: 'vol-node0002', uuid: 'vol-node0002', size: 2, size_bytes: 1024 * 1024 + 1, storage_node_id: d.config.nodeId, backing_store: 'raw' });
    const page = await call(d, 'GET', '/api/volumes?start=1&limit=1');
    expect(page.json[0]).toMatchObject({ owner_total: ids.length, start: 1, limit: 1 });
    expect(page.json[0].results.map((v: { id: string }) => v.id)).toEqual([ids[1]]);
    expect((await call(d, 'GET', '/api/volumes/vol-node0002')).json).toEqual(one);
    expectError(await call(d, 'GET', '/api/volumes/vol-nosuch01'), 'UnknownVolume');
    expectError(await call(d, 'GET', '/api/volumes/..%2F..%2Fetc%2Fpasswd'), 'UnknownVolume');
    expectError(await call(d, 'GET', '/api/volumes/.staging'), 'UnknownVolume');
    expectError(await call(d, 'GET', '/api/volumes?limit=5000'), 'InvalidParameter');
    expectError(await call(d, 'GET', '/api/volumes', { account: null }), 'InvalidRequestCredentials');
  });

  it('restores a snapshot into a new volume with the same bytes (POST /api/volumes with snapshot_id)', async () => {
    const snap = await snapshot('vol-node0001');
    const r = await call(d, 'POST', '/api/volumes', { form: { snapshot_id: snap } });
    expect(r.status, r.text).toBe(200);
    expect(r.json.id).toMatch(/^vol-[a-z0-9]{8}$/);
    expect(r.json).toMatchObject({ size_bytes: 4 * 1024 * 1024, size: 4 });
    const original = fs.readFileSync(path.join(d.config.volumesDir, 'vol-node0001'));
    expect(fs.readFileSync(path.join(d.config.volumesDir, r.json.id)).equals(original)).toBe(true);

    const named = await call(d, 'POST', '/api/volumes', { json: { snapshot_id: snap, volume_id: 'vol-restored1' } });
    expect(named.status, named.text).toBe(200);
    expect(named.json.id).toBe('vol-restored1');
    expect((await call(d, 'GET', '/api/volumes/vol-restored1')).status).toBe(200);

    expectError(await call(d, 'POST', '/api/volumes', { json: { snapshot_id: snap, volume_id: 'vol-restored1' } }), 'Conflict');
    expectError(await call(d, 'POST', '/api/volumes', { json: { snapshot_id: snap, volume_id: 'vol-node0002' } }), 'Conflict');
    expectError(await call(d, 'POST', '/api/volumes', { json: { snapshot_id: snap, volume_id: 'vol-../x' } }), 'InvalidParameter');
    expectError(await call(d, 'POST', '/api/volumes', { json: {} }), 'UndefindVolumeSnapshotID');
    expectError(await call(d, 'POST', '/api/volumes', { json: { snapshot_id: 'snap-nosuch01' } }), 'UnknownVolumeSnapshot');
    expectError(await call(d, 'POST', '/api/volumes', { json: { snapshot_id: '../../x' } }), 'UnknownVolumeSnapshot');
    expectError(await call(d, 'POST', '/api/volumes', { json: { snapshot_id: snap }, account: 'a-other0001' }), 'UnknownVolumeSnapshot');
    // The original volume is as it was.
    expect(fs.readFileSync(path.join(d.config.volumesDir, 'vol-node0001')).equals(original)).toBe(true);
  });

  it('refuses to restore a deleted snapshot (140)', async () => {
    const snap = await snapshot('vol-node0002');
    expect((await call(d, 'DELETE', `/api/volume_snapshots/${snap}`)).status).toBe(200);
    expectError(await call(d, 'POST', '/api/volumes', { json: { snapshot_id: snap } }), 'InvalidVolumeState');
  });
});

describe('storage_node, destinations and health', () => {
  it('describes the node: id, version, destinations with capacity and reflink', async () => {
    const r = await call(d, 'GET', '/api/storage_node');
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ id: d.config.nodeId, uuid: d.config.nodeId, version: expect.stringMatching(/^\d+\.\d+\.\d+/) });
    expect(r.json.destinations.map((x: { destination_id: string }) => x.destination_id)).toEqual(['backup', 'local']);
    for (const dest of r.json.destinations) {
      expect(dest.total_bytes).toBeGreaterThan(0);
      expect(dest.free_bytes).toBeGreaterThan(0);
      expect(typeof dest.reflink).toBe('boolean');
      expect(dest.writable).toBe(true);
    }
  });

  it('doctor lists orphan files and missing ones, each account seeing only its own missing ones', async () => {
    const local = d.config.destinations.find((x) => x.id === 'local')!.path;
    const orphan = path.join(local, 'snap-orphan01.snap');
    fs.writeFileSync(orphan, 'left behind');
    const theirs = await snapshot('vol-node0002', 'a-other0001');
    fs.rmSync(path.join(local, `${theirs}.snap`));
    try {
      const mine = await call(d, 'GET', '/api/storage_node/doctor');
      expect(mine.status).toBe(200);
      expect(mine.json).toEqual({ orphans: [orphan], missing: [] });
      const other = await call(d, 'GET', '/api/storage_node/doctor', { account: 'a-other0001' });
      // No tokens on this node: any caller may claim any account, so orphans are no secret here
      // (with tokens, only admins see them: test/cli.test.ts).
      expect(other.json).toEqual({ orphans: [orphan], missing: [theirs] });
      expectError(await call(d, 'GET', '/api/storage_node/doctor', { account: null }), 'InvalidRequestCredentials');
    } finally {
      fs.rmSync(orphan);
    }
  });

  it('upload_destination puts local first whatever the config order', async () => {
    expect((await call(d, 'GET', '/api/volume_snapshots/upload_destination')).json).toEqual([
      { results: [{ destination_id: 'local', destination_name: 'Local Store' }, { destination_id: 'backup', destination_name: 'Backup disk' }] },
    ]);
  });

  it('/healthz is ok; /readyz is 503 naming a destination that is gone, and ready again once it is back', async () => {
    expect((await call(d, 'GET', '/healthz', { account: null })).json).toEqual({ status: 'ok' });
    const ready = await call(d, 'GET', '/readyz', { account: null });
    expect(ready.status).toBe(200);
    expect(ready.json.status).toBe('ready');
    const backup = d.config.destinations.find((x) => x.id === 'backup')!.path;
    fs.rmSync(backup, { recursive: true });
    try {
      const r = await call(d, 'GET', '/readyz', { account: null });
      expectError(r, 'ServiceUnavailable');
      expect(r.json.message).toContain('backup');
      expect((await call(d, 'GET', '/healthz', { account: null })).status).toBe(200);
    } finally {
      fs.mkdirSync(backup);
    }
    expect((await call(d, 'GET', '/readyz', { account: null })).status).toBe(200);
  });
});

describe('the OpenAPI document', () => {
  it('covers every route with its parameters and schemas, and every $ref resolves', async () => {
    const r = await call(d, 'GET', '/api/openapi.json', { account: null });
    expect(r.status).toBe(200);
    const doc = r.json;
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths).sort()).toEqual(
      [
        '/api/openapi',
        '/api/storage_node',
        '/api/storage_node/doctor',
        '/api/volume_snapshots',
        '/api/volume_snapshots/upload_destination',
        '/api/volume_snapshots/{id}',
        '/api/volumes',
        '/api/volumes/{id}',
        '/healthz',
        '/metrics',
        '/readyz',
      ].sort(),
    );
    expect(Object.keys(doc.paths['/api/volume_snapshots']).sort()).toEqual(['get', 'post']);
    expect(Object.keys(doc.paths['/api/volume_snapshots/{id}']).sort()).toEqual(['delete', 'get']);
    const index = doc.paths['/api/volume_snapshots'].get;
    const limit = index.parameters.find((p: { name: string }) => p.name === 'limit');
    expect(limit).toMatchObject({ in: 'query', required: false, schema: { type: 'integer', minimum: 1, maximum: 1000 } });
    const create = doc.paths['/api/volume_snapshots'].post;
    expect(Object.keys(create.requestBody.content).sort()).toEqual(['application/json', 'application/x-www-form-urlencoded']);
    expect(create.responses['400'].description).toContain('UndefinedVolumeID');
    expect(create.responses['404'].description).toContain('UnknownVolume');
    expect(doc.paths['/api/volume_snapshots/{id}'].get.parameters[0]).toMatchObject({ name: 'id', in: 'path', required: true });
    expect(doc.components.schemas.SnapshotDocument.properties.state.enum).toHaveLength(6);
    expect(doc['x-error-codes'].UnknownVolumeSnapshot).toEqual({ code: '117', status: 404 });

    const refs: string[] = [];
    const walk = (v: unknown): void => {
      if (Array.isArray(v)) v.forEach(walk);
      else if (v && typeof v === 'object') {
        for (const [k, x] of Object.entries(v)) {
          if (k === '$ref') refs.push(String(x));
          else walk(x);
        }
      }
    };
    walk(doc.paths);
    walk(doc.components);
    expect(refs.length).toBeGreaterThan(5);
    for (const ref of refs) {
      expect(ref).toMatch(/^#\/components\/schemas\//);
      expect(doc.components.schemas[ref.split('/').pop()!], ref).toBeDefined();
    }
    const yaml = await call(d, 'GET', '/api/openapi.yml', { account: null });
    expect(YAML.parse(yaml.text)).toEqual(doc);
  });
});

describe('what no route handles', () => {
  it('404 NotFound for unknown paths; 405 MethodNotAllowed with Allow for a known path', async () => {
    expectError(await call(d, 'GET', '/api/nothing/here'), 'NotFound');
    expectError(await call(d, 'GET', '/'), 'NotFound');
    const put = await call(d, 'PUT', '/api/volume_snapshots/snap-abcd1234', { json: {} });
    expectError(put, 'MethodNotAllowed');
    expect(put.headers.get('allow')).toMatch(/GET.*DELETE|DELETE.*GET/);
    expectError(await call(d, 'DELETE', '/api/volume_snapshots'), 'MethodNotAllowed');
    expectError(await call(d, 'PATCH', '/api/11.12/volume_snapshots.json'), 'MethodNotAllowed');
    expectError(await call(d, 'OPTIONS', '/api/storage_node'), 'MethodNotAllowed');
    expectError(await call(d, 'POST', '/healthz'), 'MethodNotAllowed');
    const head = await fetch(`${d.url}/api/volume_snapshots`, { method: 'HEAD', headers: { 'x-vdc-account-uuid': 'a-test0001' } });
    expect(head.status).toBe(200);
  });

  it('echoes a plain X-Request-Id and makes one up otherwise', async () => {
    const given = await call(d, 'GET', '/api/nothing', { headers: { 'x-request-id': 'manager-42.a' } });
    expect(given.headers.get('x-request-id')).toBe('manager-42.a');
    const made = await call(d, 'GET', '/api/nothing', { headers: { 'x-request-id': 'bad id with spaces' } });
    expect(made.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('answers an unexpected fault with a generic 500 naming the request id, and logs the details with it', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        lines.push(String(chunk));
        done();
      },
    });
    const faulty = await startDaemon({ logger: { level: 'error', stream: sink } });
    try {
      // Fault injection: the engine fails in a way no route expects.
      faulty.engine.listVolumes = async () => {
        throw new Error('disk on fire at /secret/place');
      };
      const r = await call(faulty, 'GET', '/api/volumes', { headers: { 'x-request-id': 'req-fault-1' } });
      expectError(r, 'InternalError');
      expect(r.json.message).toContain('req-fault-1');
      expect(r.text).not.toContain('secret');
      expect(r.text).not.toMatch(/at .*\.ts/);
      const logged = lines.map((l) => JSON.parse(l)).find((l) => l.reqId === 'req-fault-1' && l.level >= 50);
      expect(logged?.err?.message).toBe('disk on fire at /secret/place');
      // And the server goes on serving.
      expect((await call(faulty, 'GET', '/healthz', { account: null })).status).toBe(200);
    } finally {
      await faulty.close();
    }
  });
});
