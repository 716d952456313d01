// What an operator sees of a running node, over HTTP: /metrics moved by exactly the operations
// done (a create, a delete, a failed create), with bounded labels; and JSON log lines that carry
// the request id on every line of a request and the snapshot id on every line of a job.
import * as fs from 'node:fs';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';

import { call, startDaemon, type Daemon } from './helpers/daemon';
import { parsePrometheus, sampleValue } from './helpers/prom';

const daemons: Daemon[] = [];
afterEach(async () => {
  for (const d of daemons.splice(0)) await d.close();
});

async function waitSettled(d: Daemon, id: string): Promise<{ state: string; error?: string }> {
  for (const until = Date.now() + 60_000; Date.now() < until; ) {
    const r = await call(d, 'GET', `/api/volume_snapshots/${id}`);
    if (r.json.state === 'available' || r.json.state === 'failed') return r.json;
    await new Promise((res) => setTimeout(res, 20));
  }
  throw new Error(`${id} did not settle`);
}

describe('a node seen by its operator', () => {
  it('counts exactly what happened on /metrics and logs with request and snapshot ids', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const l of chunk.toString().split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
        done();
      },
    });
    const d = await startDaemon({ logger: { level: 'info', stream: sink } });
    daemons.push(d);
    const metricsText = async () => {
      const r = await fetch(`${d.url}/metrics`);
      expect(r.status).toBe(200);
      expect(r.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
      return parsePrometheus(await r.text());
    };
    const before = await metricsText();
    const ops = (m: typeof before, op: string, result: string) => sampleValue(m, 'volsnapd_snapshot_operations_total', { op, result }) ?? 0;

    d.makeVolume('vol-obs00001', 64 * 1024 * 1024, 2 * 1024 * 1024);
    const ok = await call(d, 'POST', '/api/volume_snapshots', { json: { volume_id: 'vol-obs00001', destination: 'local' } });
    expect(ok.status).toBe(200);
    expect((await waitSettled(d, ok.json.id)).state).toBe('available');
    expect((await call(d, 'DELETE', `/api/volume_snapshots/${ok.json.id}`)).status).toBe(200);
    // The temp directory cannot reflink, so a volume held open for writing cannot be copied
    // point-in-time: this create fails.
    const holder = fs.openSync(`${d.config.volumesDir}/vol-obs00001`, 'r+');
    const bad = await call(d, 'POST', '/api/volume_snapshots', { json: { volume_id: 'vol-obs00001', destination: 'local' } });
    const failed = await waitSettled(d, bad.json.id);
    fs.closeSync(holder);
    expect(failed.state).toBe('failed');

    const after = await metricsText();
    expect(ops(after, 'create', 'success') - ops(before, 'create', 'success')).toBe(1);
    expect(ops(after, 'create', 'failure') - ops(before, 'create', 'failure')).toBe(1);
    expect(ops(after, 'delete', 'success') - ops(before, 'delete', 'success')).toBe(1);
    expect(ops(after, 'restore', 'success') - ops(before, 'restore', 'success')).toBe(0);
    const creates = (m: typeof before) =>
      [...(m.get('volsnapd_snapshot_duration_seconds')?.samples ?? [])]
        .filter((s) => s.name === 'volsnapd_snapshot_duration_seconds_count' && s.labels.op === 'create')
        .reduce((n, s) => n + s.value, 0);
    expect(creates(after) - creates(before)).toBe(2);
    expect(sampleValue(after, 'volsnapd_snapshots', { state: 'deleted' })).toBe(1);
    expect(sampleValue(after, 'volsnapd_snapshots', { state: 'failed' })).toBe(1);
    expect(sampleValue(after, 'volsnapd_snapshots', { state: 'available' })).toBe(0);
    expect(sampleValue(after, 'volsnapd_jobs_running')).toBe(0);
    // Requests are timed by route pattern: bounded labels, never an id.
    const posts = [...(after.get('volsnapd_http_request_duration_seconds')?.samples ?? [])].filter(
      (s) => s.name.endsWith('_count') && s.labels.method === 'POST' && s.labels.route === '/api/volume_snapshots',
    );
    expect(posts.reduce((n, s) => n + s.value, 0)).toBe(2);
    for (const family of after.values()) for (const s of family.samples) for (const v of Object.values(s.labels)) expect(v).not.toMatch(/snap-|vol-/);
    expect(after.has('process_resident_memory_bytes')).toBe(true);

    // Logs: every request line has its request id; every job line has its snapshot id.
    const requestLines = lines.filter((l) => l.msg === 'incoming request' || l.msg === 'request completed');
    expect(requestLines.length).toBeGreaterThanOrEqual(8);
    for (const l of requestLines) expect(l.reqId).toEqual(expect.any(String));
    const jobLines = lines.filter((l) => typeof l.msg === 'string' && /^snapshot (started|available|failed|deleted)/.test(l.msg));
    expect(jobLines.map((l) => l.msg)).toEqual(expect.arrayContaining(['snapshot started', 'snapshot available', 'snapshot deleted']));
    for (const l of jobLines) expect(l.snapshot_id).toMatch(/^snap-[a-z0-9]{8}$/);
    expect(jobLines.filter((l) => l.snapshot_id === bad.json.id).some((l) => String(l.msg).startsWith('snapshot failed'))).toBe(true);
  });
});
