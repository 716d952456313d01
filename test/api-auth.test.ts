// Bearer tokens and accounts against a listening daemon with tokens configured.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { ERRORS, type ErrorName } from '../src/api/errors';
import { call, startDaemon, waitForState, type Daemon } from './helpers/daemon';

const ADMIN = 'admin-token-abcdefghijklmnop';
const BOUND = 'bound-token-abcdefghijklmnop';
const FREE = 'free--token-abcdefghijklmnop';
let d: Daemon;

function expectError(r: { status: number; json: { error?: string; code?: string } }, name: ErrorName): void {
  expect({ status: r.status, error: r.json?.error, code: r.json?.code }).toEqual({ status: ERRORS[name].status, error: name, code: ERRORS[name].code });
}

async function create(token: string, account: string): Promise<string> {
  const r = await call(d, 'POST', '/api/volume_snapshots', { token, account, json: { volume_id: 'vol-auth0001', destination: 'local' } });
  expect(r.status, r.text).toBe(200);
  await waitForState(d, r.json.id, ['available'], { token, account });
  return r.json.id;
}

beforeAll(async () => {
  d = await startDaemon({
    tokens: [
      { token: ADMIN, admin: true },
      { token: BOUND, admin: false, account: 'a-bound0001' },
      { token: FREE, admin: false },
    ],
  });
  d.makeVolume('vol-auth0001', 2 * 1024 * 1024);
});
afterAll(async () => {
  await d?.close();
});

describe('tokens', () => {
  it('401 Unauthorized without a token or with a wrong one, before anything else is looked at', async () => {
    for (const path of ['/api/volume_snapshots', '/api/volume_snapshots/snap-nosuch01', '/api/volume_snapshots/..%2Fx', '/api/volumes', '/api/storage_node', '/api/openapi.json']) {
      const none = await call(d, 'GET', path);
      expectError(none, 'Unauthorized');
      expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
      expectError(await call(d, 'GET', path, { token: `${ADMIN}x` }), 'Unauthorized');
      expectError(await call(d, 'GET', path, { token: ADMIN.slice(0, -1) }), 'Unauthorized');
      expectError(await call(d, 'GET', path, { headers: { authorization: `Basic ${ADMIN}` } }), 'Unauthorized');
    }
    expectError(await call(d, 'POST', '/api/volume_snapshots', { json: { volume_id: 'vol-auth0001', destination: 'local' } }), 'Unauthorized');
    expectError(await call(d, 'DELETE', '/api/volume_snapshots/snap-nosuch01'), 'Unauthorized');
  });

  it('leaves /healthz and /readyz open', async () => {
    expect((await call(d, 'GET', '/healthz', { account: null })).status).toBe(200);
    expect((await call(d, 'GET', '/readyz', { account: null })).status).toBe(200);
  });

  it('a non-admin token must name an account; a bound one only its own (403 OperationNotPermitted otherwise)', async () => {
    expectError(await call(d, 'GET', '/api/volume_snapshots', { token: FREE, account: null }), 'InvalidRequestCredentials');
    expectError(await call(d, 'GET', '/api/volume_snapshots', { token: BOUND, account: null }), 'InvalidRequestCredentials');
    expectError(await call(d, 'GET', '/api/volume_snapshots', { token: BOUND, account: 'a-other0001' }), 'OperationNotPermitted');
    expectError(
      await call(d, 'POST', '/api/volume_snapshots', { token: BOUND, account: 'a-other0001', json: { volume_id: 'vol-auth0001', destination: 'local' } }),
      'OperationNotPermitted',
    );
    expect((await call(d, 'GET', '/api/volume_snapshots', { token: BOUND, account: 'a-bound0001' })).status).toBe(200);
    expect((await call(d, 'GET', '/api/volume_snapshots', { token: BOUND, accountHeader: 'X_VDC_ACCOUNT_UUID', account: 'a-bound0001' })).status).toBe(200);
    expect((await call(d, 'GET', '/api/volume_snapshots', { token: FREE, account: 'a-anyone01' })).status).toBe(200);
    // Node facts need no account.
    expect((await call(d, 'GET', '/api/storage_node', { token: FREE, account: null })).status).toBe(200);
  });

  it('an admin token without an account sees every account; with one, only that account', async () => {
    const a = await create(FREE, 'a-alpha0001');
    const b = await create(BOUND, 'a-bound0001');
    const c = await create(ADMIN, 'a-gamma0001');

    const all = await call(d, 'GET', '/api/volume_snapshots', { token: ADMIN, account: null });
    expect(all.status).toBe(200);
    expect(all.json[0].owner_total).toBe(3);
    expect(all.json[0].results.map((s: { id: string }) => s.id)).toEqual([c, b, a]);
    expect(new Set(all.json[0].results.map((s: { account_id: string }) => s.account_id))).toEqual(new Set(['a-alpha0001', 'a-bound0001', 'a-gamma0001']));

    const one = await call(d, 'GET', '/api/volume_snapshots', { token: ADMIN, account: 'a-alpha0001' });
    expect(one.json[0].results.map((s: { id: string }) => s.id)).toEqual([a]);

    // The others see only their own.
    expect((await call(d, 'GET', '/api/volume_snapshots', { token: FREE, account: 'a-alpha0001' })).json[0].owner_total).toBe(1);
    expectError(await call(d, 'GET', `/api/volume_snapshots/${a}`, { token: BOUND, account: 'a-bound0001' }), 'UnknownVolumeSnapshot');
    expect((await call(d, 'GET', `/api/volume_snapshots/${a}`, { token: ADMIN, account: null })).json.account_id).toBe('a-alpha0001');
    expectError(await call(d, 'GET', `/api/volume_snapshots/${a}`, { token: ADMIN, account: 'a-gamma0001' }), 'UnknownVolumeSnapshot');
  });

  it('an admin must name the account a new snapshot belongs to; it may delete any', async () => {
    expectError(
      await call(d, 'POST', '/api/volume_snapshots', { token: ADMIN, account: null, json: { volume_id: 'vol-auth0001', destination: 'local' } }),
      'InvalidRequestCredentials',
    );
    const id = await create(FREE, 'a-delta0001');
    expectError(await call(d, 'DELETE', `/api/volume_snapshots/${id}`, { token: BOUND, account: 'a-bound0001' }), 'UnknownVolumeSnapshot');
    const r = await call(d, 'DELETE', `/api/volume_snapshots/${id}`, { token: ADMIN, account: null });
    expect(r.status).toBe(200);
    expect(r.json).toEqual([id]);
  });
});
