// /metrics after real engine work: a create, a delete and a failed create on a real filesystem
// (the temp dir; a copy when it cannot reflink). The text must parse as Prometheus exposition and
// every counter, gauge and histogram count must have moved by exactly those operations.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';

import type { SnapshotRecord } from '../src/catalog';
import { createMetrics } from '../src/metrics';
import { Engine } from '../src/snapshots/engine';
import { MiB, writeDense } from './helpers/files';
import { testConfig } from './helpers/node-config';
import { parsePrometheus, sampleValue, samples } from './helpers/prom';
import { settle } from './helpers/settle';

const ACCOUNT = 'a-shpoolxx';
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'volsnapd-metrics-'));
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function scrape(metrics: ReturnType<typeof createMetrics>) {
  return parsePrometheus(await metrics.registry.metrics());
}

describe('metrics', () => {
  it('count a create, a delete and a failed create exactly', async () => {
    const base = tempDir();
    const config = testConfig(base);
    const vol = path.join(config.volumesDir, 'vol-m1');
    writeDense(vol, 4 * MiB, 1 * MiB);
    const metrics = createMetrics();
    const engine = await Engine.open(config, { observer: metrics.observer });
    cleanups.push(() => engine.close(1000));
    metrics.setEngine(engine);

    const before = await scrape(metrics);
    for (const op of ['create', 'delete', 'restore']) {
      for (const result of ['success', 'failure']) {
        expect(sampleValue(before, 'volsnapd_snapshot_operations_total', { op, result })).toBe(0);
      }
    }
    expect(samples(before, 'volsnapd_snapshot_duration_seconds_count')).toEqual([]);
    expect(sampleValue(before, 'volsnapd_snapshots', { state: 'available' })).toBe(0);
    expect(sampleValue(before, 'volsnapd_snapshot_allocated_bytes')).toBe(0);
    expect(sampleValue(before, 'volsnapd_jobs_running')).toBe(0);
    expect(sampleValue(before, 'volsnapd_jobs_queued')).toBe(0);
    expect(sampleValue(before, 'volsnapd_orphan_files')).toBe(0);
    expect(before.get('volsnapd_snapshot_operations_total')?.type).toBe('counter');
    expect(before.get('volsnapd_snapshot_duration_seconds')?.type).toBe('histogram');
    expect(before.get('volsnapd_snapshots')?.type).toBe('gauge');

    // 1. A create that succeeds.
    const ok = await settle(engine, (await engine.createSnapshot({ accountId: ACCOUNT, volumeId: 'vol-m1', destinationId: 'local' })).id);
    expect(ok.state, ok.error ?? '').toBe('available');
    const method = ok.method!;
    const status = await engine.destinationStatus();
    expect(method).toBe(status[0]!.reflink ? 'reflink' : 'copy');

    const mid = await scrape(metrics);
    expect(sampleValue(mid, 'volsnapd_snapshot_operations_total', { op: 'create', result: 'success' })).toBe(1);
    expect(sampleValue(mid, 'volsnapd_snapshots', { state: 'available' })).toBe(1);
    expect(sampleValue(mid, 'volsnapd_snapshot_allocated_bytes')).toBe(ok.allocatedBytes);
    expect(sampleValue(mid, 'volsnapd_snapshot_exclusive_bytes')).toBe(ok.exclusiveBytes);
    expect(sampleValue(mid, 'volsnapd_snapshot_allocated_bytes')).toBeGreaterThan(0);
    expect(sampleValue(mid, 'volsnapd_snapshot_bytes_copied_total', { method })).toBe(method === 'copy' ? ok.bytesDone : 0);

    // 2. Its delete.
    await engine.deleteSnapshot(ok.id, ACCOUNT);

    // 3. A create that fails: the volume is open for writing, so no read lease and no point-in-time copy.
    let failed: SnapshotRecord;
    const holder = fs.openSync(vol, 'r+');
    try {
      failed = await settle(engine, (await engine.createSnapshot({ accountId: ACCOUNT, volumeId: 'vol-m1', destinationId: 'local' })).id);
    } finally {
      fs.closeSync(holder);
    }
    // (On a filesystem that reflinks, a clone is point-in-time and would succeed: this test needs a copy.)
    expect(failed.state).toBe('failed');

    const after = await scrape(metrics);
    const ops = (op: string, result: string) => sampleValue(after, 'volsnapd_snapshot_operations_total', { op, result });
    expect(ops('create', 'success')).toBe(1);
    expect(ops('create', 'failure')).toBe(1);
    expect(ops('delete', 'success')).toBe(1);
    expect(ops('delete', 'failure')).toBe(0);
    expect(ops('restore', 'success')).toBe(0);
    expect(ops('restore', 'failure')).toBe(0);

    const count = (labels: Record<string, string>) =>
      samples(after, 'volsnapd_snapshot_duration_seconds_count', labels).reduce((n, s) => n + s.value, 0);
    expect(count({ op: 'create' })).toBe(2);
    expect(count({ op: 'create', method })).toBe(1);
    expect(count({ op: 'create', method: 'unknown' })).toBe(1);
    expect(count({ op: 'delete' })).toBe(1);
    expect(count({ op: 'restore' })).toBe(0);
    // Each histogram's +Inf bucket equals its count, and buckets never decrease.
    for (const c of samples(after, 'volsnapd_snapshot_duration_seconds_count')) {
      const buckets = samples(after, 'volsnapd_snapshot_duration_seconds_bucket', c.labels);
      expect(buckets.find((b) => b.labels.le === '+Inf')?.value).toBe(c.value);
      for (let i = 1; i < buckets.length; i++) expect(buckets[i]!.value).toBeGreaterThanOrEqual(buckets[i - 1]!.value);
      expect(buckets.map((b) => b.labels.le)[0]).toBe('0.001');
      expect(buckets.some((b) => b.labels.le === '600')).toBe(true);
    }

    expect(sampleValue(after, 'volsnapd_snapshots', { state: 'deleted' })).toBe(1);
    expect(sampleValue(after, 'volsnapd_snapshots', { state: 'failed' })).toBe(1);
    expect(sampleValue(after, 'volsnapd_snapshots', { state: 'available' })).toBe(0);
    expect(sampleValue(after, 'volsnapd_snapshots', { state: 'creating' })).toBe(0);
    expect(sampleValue(after, 'volsnapd_snapshot_allocated_bytes')).toBe(0);
    expect(sampleValue(after, 'volsnapd_snapshot_exclusive_bytes')).toBe(0);
    // Bytes copied did not move after the first create (a delete and a failure copy nothing counted).
    expect(sampleValue(after, 'volsnapd_snapshot_bytes_copied_total', { method })).toBe(
      sampleValue(mid, 'volsnapd_snapshot_bytes_copied_total', { method }),
    );
    expect(sampleValue(after, 'volsnapd_jobs_running')).toBe(0);
    expect(sampleValue(after, 'volsnapd_jobs_queued')).toBe(0);
    expect(sampleValue(after, 'volsnapd_orphan_files')).toBe(0);

    // Destinations from statfs and the reflink probe.
    expect(sampleValue(after, 'volsnapd_destination_free_bytes', { destination: 'local' })).toBeGreaterThan(0);
    expect(sampleValue(after, 'volsnapd_destination_reflink', { destination: 'local' })).toBe(status[0]!.reflink ? 1 : 0);

    // Default process metrics under their standard names.
    expect(after.has('process_cpu_user_seconds_total')).toBe(true);
    expect(after.has('nodejs_eventloop_lag_seconds')).toBe(true);
    // No id in any label value.
    for (const fam of after.values()) {
      for (const s of fam.samples) for (const v of Object.values(s.labels)) expect(v).not.toMatch(/^(snap|vol)-/);
    }
  });

  it('counts an orphan file after a check, and skips catalog gauges once the engine is closed', async () => {
    const base = tempDir();
    const config = testConfig(base);
    const metrics = createMetrics({ defaultMetrics: false });
    const engine = await Engine.open(config, { observer: metrics.observer });
    metrics.setEngine(engine);
    fs.writeFileSync(path.join(config.destinations[0]!.path, 'snap-orphan01.snap'), 'x');
    await engine.checkFiles();
    const m = await scrape(metrics);
    expect(sampleValue(m, 'volsnapd_orphan_files')).toBe(1);
    await engine.close(1000);
    const closed = await scrape(metrics);
    expect(samples(closed, 'volsnapd_snapshots')).toEqual([]);
    expect(closed.has('process_cpu_user_seconds_total')).toBe(false);
  });

  it('times HTTP requests by route pattern and status, never by raw url', async () => {
    const a = createMetrics({ defaultMetrics: false });
    const b = createMetrics({ defaultMetrics: false }); // a second registry in one process: no clash
    const app = Fastify();
    cleanups.push(() => app.close());
    await app.register(a.plugin);
    app.get('/api/volume_snapshots/:id', async (req, reply) => {
      const { id } = req.params as { id: string };
      if (id === 'snap-missing1') return reply.code(404).send({ error: 'UnknownVolumeSnapshot' });
      return { id };
    });
    await app.ready();
    for (const id of ['snap-aaaaaaa1', 'snap-aaaaaaa2', 'snap-missing1']) await app.inject({ method: 'GET', url: `/api/volume_snapshots/${id}` });
    await app.inject({ method: 'GET', url: '/no/such/thing' });
    await app.inject({ method: 'GET', url: '/wp-admin/../../etc/passwd' });
    const res = await app.inject({ method: 'GET', url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    const m = parsePrometheus(res.body);
    const count = (labels: Record<string, string>) => sampleValue(m, 'volsnapd_http_request_duration_seconds_count', labels);
    expect(count({ method: 'GET', route: '/api/volume_snapshots/:id', status_code: '200' })).toBe(2);
    expect(count({ method: 'GET', route: '/api/volume_snapshots/:id', status_code: '404' })).toBe(1);
    expect(count({ method: 'GET', route: 'unmatched', status_code: '404' })).toBe(2);
    const routes = new Set(samples(m, 'volsnapd_http_request_duration_seconds_count').map((s) => s.labels.route));
    expect([...routes].sort()).toEqual(['/api/volume_snapshots/:id', 'unmatched']);
    expect(parsePrometheus(await b.registry.metrics()).has('volsnapd_http_request_duration_seconds')).toBe(true);
    expect(samples(parsePrometheus(await b.registry.metrics()), 'volsnapd_http_request_duration_seconds_count')).toEqual([]);
  });
});

describe('prometheus text parser', () => {
  it('rejects malformed exposition', () => {
    expect(() => parsePrometheus('foo 1\n')).toThrow(/without HELP/);
    expect(() => parsePrometheus('# TYPE foo gauge\nfoo{a="1} 1\n')).toThrow();
    expect(() => parsePrometheus('# TYPE foo gauge\nfoo{a=1} 1\n')).toThrow(/unquoted/);
    expect(() => parsePrometheus('# TYPE foo gauge\nfoo one\n')).toThrow(/bad/);
    const ok = parsePrometheus('# HELP foo x\n# TYPE foo gauge\nfoo{a="q\\"\\n",b="2"} 1.5e3\n');
    expect(sampleValue(ok, 'foo', { b: '2', a: 'q"\n' })).toBe(1500);
  });
});
