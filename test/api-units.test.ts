// The parts of the API layer that are plain functions: URL rewriting and format choice, account and
// token checks, and the show document. Everything that needs a server is in the other api-* tests,
// against the real engine.
import type { FastifyRequest } from 'fastify';
import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';

import { Authenticator } from '../src/api/auth';
import { mebibytes, snapshotDocument, volumeDocument } from '../src/api/document';
import { ApiError } from '../src/api/errors';
import { formatOf, rewriteUrl, routeUrl } from '../src/api/format';
import type { SnapshotRecord } from '../src/catalog';

describe('routeUrl', () => {
  it.each([
    ['/api/volume_snapshots', '/api/volume_snapshots', null],
    ['/api/volume_snapshots.json', '/api/volume_snapshots', 'json'],
    ['/api/volume_snapshots.yml?start=1', '/api/volume_snapshots?start=1', 'yaml'],
    ['/api/volume_snapshots/snap-abcd1234.yaml', '/api/volume_snapshots/snap-abcd1234', 'yaml'],
    ['/api/11.12/volume_snapshots/snap-abcd1234.json', '/api/volume_snapshots/snap-abcd1234', 'json'],
    ['/api/11.12', '/api', null],
    ['/api/11.12.yml', '/api/11.12', 'yaml'],
    ['/api/openapi.json', '/api/openapi', 'json'],
    // Only the last segment, only after a name, only one suffix.
    ['/api/volume_snapshots/.json', '/api/volume_snapshots/.json', null],
    ['/api/x.json/y', '/api/x.json/y', null],
    ['/api/snap.yml.json', '/api/snap.yml', 'json'],
    ['/api/volume_snapshots?x=.json', '/api/volume_snapshots?x=.json', null],
    ['/api/11.123/x', '/api/11.123/x', null],
  ])('%s → %s (%s)', (raw, url, format) => {
    expect(routeUrl(raw)).toEqual({ url, format });
  });

  it('remembers the suffix for the reply; otherwise Accept decides; the suffix wins', () => {
    const req = (url: string, accept?: string) => ({ url, headers: accept ? { accept } : {} }) as IncomingMessage;
    const a = req('/api/volume_snapshots.yml');
    rewriteUrl(a);
    expect(formatOf(a)).toBe('yaml');
    const b = req('/api/volume_snapshots.json', 'application/yaml');
    rewriteUrl(b);
    expect(formatOf(b)).toBe('json');
    for (const accept of ['application/yaml', 'text/yaml', 'application/x-yaml', 'text/html, application/yaml;q=0.9']) {
      const c = req('/api/volume_snapshots', accept);
      rewriteUrl(c);
      expect(formatOf(c), accept).toBe('yaml');
    }
    for (const accept of ['application/json', '*/*', 'application/yamlx', 'application/json, text/plain']) {
      const c = req('/api/volume_snapshots', accept);
      rewriteUrl(c);
      expect(formatOf(c), accept).toBe('json');
    }
  });
});

describe('Authenticator', () => {
  const request = (headers: Record<string, string | string[]>) => ({ headers }) as unknown as FastifyRequest;
  const refusal = (f: () => unknown): string | undefined => {
    try {
      f();
      return undefined;
    } catch (e) {
      expect(e).toBeInstanceOf(ApiError);
      return (e as ApiError).errorName;
    }
  };

  it('without tokens: takes the account from either header spelling; refuses none, a malformed one, or two that differ', () => {
    const auth = new Authenticator([]);
    expect(auth.identify(request({ 'x-vdc-account-uuid': 'a-shpoolxx' }))).toEqual({ accountId: 'a-shpoolxx', admin: false });
    expect(auth.identify(request({ x_vdc_account_uuid: 'a-shpoolxx' }))).toEqual({ accountId: 'a-shpoolxx', admin: false });
    expect(auth.identify(request({ 'x-vdc-account-uuid': 'a-one', x_vdc_account_uuid: 'a-one' })).accountId).toBe('a-one');
    expect(refusal(() => auth.identify(request({})))).toBe('InvalidRequestCredentials');
    expect(refusal(() => auth.identify(request({ 'x-vdc-account-uuid': 'a-one', x_vdc_account_uuid: 'a-two' })))).toBe('InvalidRequestCredentials');
    for (const bad of ['', 'A-SHPOOL', 'a-', 'a-../x', 'shpoolxx', 'a-one, a-two', `a-${'x'.repeat(65)}`]) {
      expect(refusal(() => auth.identify(request({ 'x-vdc-account-uuid': bad }))), bad).toBe('InvalidRequestCredentials');
    }
    // An Authorization header is ignored when no tokens are configured; nobody is admin.
    expect(auth.identify(request({ authorization: 'Bearer whatever', 'x-vdc-account-uuid': 'a-one' }))).toEqual({ accountId: 'a-one', admin: false });
    expect(auth.identify(request({}), 'optional')).toEqual({ accountId: null, admin: false });
  });

  it('with tokens: 401 without or with a wrong token; admin may omit the account; a bound token acts only as its account', () => {
    const admin = 'admin-token-0123456789';
    const bound = 'bound-token-0123456789';
    const free = 'free--token-0123456789';
    const auth = new Authenticator([
      { token: admin, admin: true },
      { token: bound, admin: false, account: 'a-bound' },
      { token: free, admin: false },
    ]);
    expect(refusal(() => auth.identify(request({ 'x-vdc-account-uuid': 'a-one' })))).toBe('Unauthorized');
    expect(refusal(() => auth.identify(request({ authorization: `Bearer ${admin}x` })))).toBe('Unauthorized');
    expect(refusal(() => auth.identify(request({ authorization: `Basic ${admin}` })))).toBe('Unauthorized');
    expect(refusal(() => auth.identify(request({ authorization: admin })))).toBe('Unauthorized');
    expect(refusal(() => auth.identify(request({ authorization: 'Bearer ' })))).toBe('Unauthorized');
    expect(auth.identify(request({ authorization: `Bearer ${admin}` }))).toEqual({ accountId: null, admin: true });
    expect(auth.identify(request({ authorization: `bearer  ${admin}`, 'x-vdc-account-uuid': 'a-one' }))).toEqual({ accountId: 'a-one', admin: true });
    expect(auth.identify(request({ authorization: `Bearer ${bound}`, 'x-vdc-account-uuid': 'a-bound' }))).toEqual({ accountId: 'a-bound', admin: false });
    expect(refusal(() => auth.identify(request({ authorization: `Bearer ${bound}`, 'x-vdc-account-uuid': 'a-other' })))).toBe('OperationNotPermitted');
    expect(refusal(() => auth.identify(request({ authorization: `Bearer ${bound}` })))).toBe('InvalidRequestCredentials');
    expect(refusal(() => auth.identify(request({ authorization: `Bearer ${free}` })))).toBe('InvalidRequestCredentials');
    expect(auth.identify(request({ authorization: `Bearer ${free}`, x_vdc_account_uuid: 'a-any' })).accountId).toBe('a-any');
  });
});

describe('documents', () => {
  const record: SnapshotRecord = {
    seq: 7,
    id: 'snap-abcd1234',
    accountId: 'a-shpoolxx',
    originVolumeId: 'vol-abcd1234',
    destinationId: 'local',
    storageNodeId: 'sn-local0001',
    displayName: 'nightly',
    state: 'available',
    sizeBytes: 1024 * 1024 * 10 + 1,
    method: 'reflink',
    consistency: 'point-in-time',
    progress: 100,
    bytesTotal: 4096,
    bytesDone: 0,
    allocatedBytes: 4096,
    sharedBytes: 4096,
    exclusiveBytes: 0,
    checksum: null,
    error: null,
    createdAt: Date.UTC(2012, 2, 1, 12, 0, 0),
    updatedAt: Date.UTC(2012, 2, 1, 12, 0, 1),
    deletedAt: null,
  };

  it("lists the seed's fields in order, then the extensions", () => {
    const doc = snapshotDocument(record, () => 'Local Store');
    expect(Object.keys(doc)).toEqual([
      'id', 'uuid', 'state', 'size', 'origin_volume_id', 'destination_id', 'destination_name', 'backing_store', 'created_at', 'deleted_at',
      'storage_node_id', 'account_id', 'display_name', 'updated_at', 'progress', 'method', 'consistency', 'allocated_bytes', 'shared_bytes', 'exclusive_bytes',
    ]);
    expect(doc).toMatchObject({
      id: 'snap-abcd1234',
      uuid: 'snap-abcd1234',
      size: 11,
      destination_name: 'Local Store',
      backing_store: 'raw',
      created_at: '2012-03-01T12:00:00.000Z',
      deleted_at: null,
    });
  });

  it('adds checksum when set and error when failed; a destination gone from the config keeps its id as name', () => {
    const failed = snapshotDocument({ ...record, state: 'failed', error: 'out of disk space', checksum: 'sha256:00' }, () => undefined);
    expect(Object.keys(failed).slice(-2)).toEqual(['checksum', 'error']);
    expect(failed.error).toBe('out of disk space');
    expect(failed.destination_name).toBe('local');
    const deleted = snapshotDocument({ ...record, state: 'deleted', deletedAt: Date.UTC(2012, 2, 2) }, () => 'x');
    expect(deleted.deleted_at).toBe('2012-03-02T00:00:00.000Z');
    expect('error' in deleted).toBe(false);
  });

  it('gives sizes in MiB rounded up, as dcmgr stored them', () => {
    expect([0, 1, 1024 * 1024, 1024 * 1024 + 1, 64 * 1024 ** 3].map(mebibytes)).toEqual([0, 1, 1, 2, 65536]);
    expect(volumeDocument({ id: 'vol-a', sizeBytes: 3 * 1024 * 1024, allocatedBytes: 4096, createdAt: 0 }, 'sn-x')).toEqual({
      id: 'vol-a',
      uuid: 'vol-a',
      size: 3,
      storage_node_id: 'sn-x',
      backing_store: 'raw',
      created_at: '1970-01-01T00:00:00.000Z',
      size_bytes: 3 * 1024 * 1024,
      allocated_bytes: 4096,
    });
  });
});
