// A generated run of bad requests (deterministic seed) against a listening daemon on the real
// engine: malformed and hostile ids, bad numbers, wrong types, unknown fields, broken and oversized
// bodies, wrong methods and content types, random paths, junk headers. Requests go over raw
// sockets so that nothing normalises them on the way (`..`, NUL, spaces, bad percent-encoding).
// Every answer must be a 4xx in the documented error shape, the server must stay up, and no file
// outside the catalog may be created or changed.
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as YAML from 'yaml';

import { ERRORS, isErrorName } from '../src/api/errors';
import { call, startDaemon, waitForState, type Daemon } from './helpers/daemon';

const SEED = 0x5eed_2012;
const RUNS = 2400;

// mulberry32: small, fast, and the same sequence everywhere.
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface RawRequest {
  kind: string;
  method: string;
  path: string;
  headers: Array<[string, string]>;
  body?: Buffer;
  /** Send exactly these bytes instead of serialising. */
  raw?: Buffer;
}

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

function serialise(r: RawRequest): Buffer {
  if (r.raw) return r.raw;
  const lines = [`${r.method} ${r.path} HTTP/1.1`, 'Host: 127.0.0.1', 'Connection: close'];
  for (const [k, v] of r.headers) lines.push(`${k}: ${v}`);
  if (r.body !== undefined && !r.headers.some(([k]) => k.toLowerCase() === 'transfer-encoding')) lines.push(`Content-Length: ${r.body.length}`);
  return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), r.body ?? Buffer.alloc(0)]);
}

function parseResponse(data: Buffer): RawResponse | undefined {
  const end = data.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const head = data.subarray(0, end).toString('latin1').split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head[0] ?? '')?.[1]);
  const headers: Record<string, string> = {};
  for (const line of head.slice(1)) {
    const i = line.indexOf(':');
    headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  let body = data.subarray(end + 4);
  if (headers['transfer-encoding'] === 'chunked') {
    const parts: Buffer[] = [];
    let at = 0;
    for (;;) {
      const lineEnd = body.indexOf('\r\n', at);
      if (lineEnd < 0) break;
      const size = parseInt(body.subarray(at, lineEnd).toString('latin1'), 16);
      if (!size) break;
      parts.push(body.subarray(lineEnd + 2, lineEnd + 2 + size));
      at = lineEnd + 2 + size + 2;
    }
    body = Buffer.concat(parts);
  } else if (headers['content-length'] !== undefined) {
    body = body.subarray(0, Number(headers['content-length']));
  }
  return { status, headers, body: body.toString('utf8') };
}

function send(port: number, request: RawRequest): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = net.connect(port, '127.0.0.1');
    let settled = false;
    const finish = (err?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      const parsed = parseResponse(Buffer.concat(chunks));
      if (parsed) resolve(parsed);
      else reject(new Error(`${request.kind}: no HTTP response to ${request.method} ${request.path.slice(0, 120)} (${err?.message ?? 'closed'})`));
    };
    const timer = setTimeout(() => finish(new Error('timeout')), 10_000);
    socket.on('data', (c) => chunks.push(c));
    socket.on('end', () => finish());
    socket.on('close', () => finish());
    // The server may answer (413) and close before it has read everything: keep what arrived.
    socket.on('error', (e) => finish(e));
    socket.write(serialise(request));
  });
}

// ---------------------------------------------------------------------------------------------
// The generator. Every request carries at least one thing that is wrong, so nothing it makes can
// succeed, even though the daemon does hold the volume and the snapshot it names most often
// (vol-abcd1234, snap-abcd1234): requests that name them reach the engine and the files.

const NASTY = ['../', '..', '%2e%2e', '%2F', '%00', '%ff', '%', '%zz', ';', '*', '\\', '"', "'", '<', '>', '$', '{', '}', '|', '~', 'é', '%C3%A9', 'A', 'Z', '.', '-', '_', ':', '@', '!', ',', '=', '+', '[', ']', '^', '`'];
const SENTINELS = ['../sentinel/victim', '../../sentinel/victim', '..%2Fsentinel%2Fvictim', '..%2F..%2Fsentinel%2Fvictim', '%2e%2e%2fvar%2fsentinel%2fvictim'];
const WORDS = ['volume_snapshots', 'volumes', 'storage_node', 'api', '11.12', 'openapi', 'upload_destination', 'metrics', 'admin', 'etc', 'passwd', 'snap-abcd1234', 'vol-abcd1234'];
const BAD_NUMBERS = ['-1', '-0.5', '1.5', 'abc', '', '1e3', '0x10', '0b1', ' 1', '1 ', 'NaN', 'Infinity', '-Infinity', 'null', 'true', '[]', '{}', '99999999999999999999999', '2147483648', '1001', '0,1', '1;2', '%00', '%2e', '１', '0.0', '+1', '--1'];
const BAD_STATES = ['availabel', 'AVAILABLE', 'available,', ',available', 'deleted;drop', 'all', '*', '', 'creating,,failed', 'available%00', 'x'.repeat(300)];
const BAD_TIMES = ['yesterday', '2012-13-01', '2012-02-30T00:00:00Z', '2012-03-01T25:00:00Z', '2012-03-01T04:00:00', '1330560000', '2012/03/01', '', 'T', '2012-03-01T04:00:00+25:00'];
const METHODS_WRONG = ['PUT', 'PATCH', 'OPTIONS', 'TRACE'];
const CONTENT_TYPES_WRONG = ['text/plain', 'application/xml', 'multipart/form-data; boundary=x', 'application/octet-stream', 'text/yaml', 'application/jsonx', 'json'];

class Generator {
  constructor(private readonly rand: () => number) {}

  int(n: number): number {
    return Math.floor(this.rand() * n);
  }

  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }

  chance(p: number): boolean {
    return this.rand() < p;
  }

  junk(maxLen: number): string {
    let s = '';
    const len = 1 + this.int(maxLen);
    while (s.length < len) s += this.chance(0.6) ? String.fromCharCode(97 + this.int(26)) : this.pick(NASTY);
    return s;
  }

  badId(prefix: 'snap-' | 'vol-'): string {
    switch (this.int(9)) {
      case 0:
        return this.pick(SENTINELS);
      case 1:
        return `${prefix}${this.pick(SENTINELS)}`;
      case 2:
        return `${prefix}${'a'.repeat(65 + this.int(12_000))}`;
      case 3:
        return `${prefix}${this.junk(20)}`;
      case 4:
        return `${prefix.toUpperCase()}ABCD1234`;
      case 5:
        return `${prefix}abcd%00`;
      case 6:
        return this.junk(40);
      case 7:
        return `${prefix}`;
      default:
        // Well-formed and unknown: a plain 404.
        return `${prefix}${this.junk(1).replace(/[^a-z]/g, 'q')}${this.int(1e8).toString(36)}`;
    }
  }

  prefix(): string {
    return this.chance(0.3) ? '/api/11.12' : '/api';
  }

  suffix(): string {
    return this.pick(['', '', '', '.json', '.yml', '.yaml', '.xml', '.JSON']);
  }

  accountHeaders(): Array<[string, string]> {
    switch (this.int(12)) {
      case 0:
        return [];
      case 1:
        return [['X-VDC-Account-UUID', this.junk(20).replace(/[^\x21-\x7e]/g, 'x')]];
      case 2:
        return [
          ['X-VDC-Account-UUID', 'a-fuzz0001'],
          ['X_VDC_ACCOUNT_UUID', 'a-fuzz0002'],
        ];
      case 3:
        return [
          ['X-VDC-Account-UUID', 'a-fuzz0001'],
          ['X-VDC-Account-UUID', 'a-fuzz0002'],
        ];
      case 4:
        return [['X_VDC_ACCOUNT_UUID', 'a-fuzz0001'], ['Authorization', `Bearer ${this.junk(30).replace(/[^\x21-\x7e]/g, 'x')}`]];
      default:
        return [[this.chance(0.5) ? 'X-VDC-Account-UUID' : 'X_VDC_ACCOUNT_UUID', 'a-fuzz0001']];
    }
  }

  accept(): Array<[string, string]> {
    return this.chance(0.2) ? [['Accept', this.pick(['application/yaml', 'text/yaml', '*/*', 'application/json', 'text/html'])]] : [];
  }

  badQueryValue(name: string): string {
    if (name === 'state') return this.pick(BAD_STATES);
    if (name === 'created_since' || name === 'created_until') return this.pick(BAD_TIMES);
    if (name === 'volume_id') return this.badId('vol-').replace(/^vol-[a-z0-9]+$/, 'vol-../x');
    if (name === 'destination') return this.pick(['backup', '../x', 'LOCAL', '', 'x'.repeat(70), '%00', 'local/..']);
    return this.pick(BAD_NUMBERS);
  }

  encode(v: string): string {
    // Sometimes raw (hostile characters as they are), mostly percent-encoded.
    return this.chance(0.3) ? v.replace(/[\s#&]/g, (c) => encodeURIComponent(c)) : encodeURIComponent(v);
  }

  createParams(): Record<string, unknown> {
    const p: Record<string, unknown> = {};
    // At least one of the required parameters is missing, malformed or unknown.
    switch (this.int(4)) {
      case 0:
        break; // no volume_id
      case 1:
        p.volume_id = this.badId('vol-');
        break;
      case 2:
        p.volume_id = this.pick<unknown>([123, -1, 1.5, true, false, [], {}, ['vol-abcd1234'], { $ne: null }, 'vol-abcd1234']);
        break;
      default:
        p.volume_id = `vol-fuzz${this.int(1e6)}`;
    }
    if (this.chance(0.7)) p.destination = this.pick<unknown>(['local', 'backup', '../x', '', 7, null, ['local'], 'x'.repeat(100)]);
    if (this.chance(0.3)) p.storage_pool_id = this.pick<unknown>(['sn-other', 'sn-local0001', '../x', 1, {}]);
    if (this.chance(0.3)) p.display_name = this.pick<unknown>(['x'.repeat(300), { a: 1 }, [], 'ok', 5, '\u0000']);
    if (this.chance(0.3)) p.id = this.pick<unknown>(['snap-ABC', 'snap-../x', 'snap-abcd1234', 12, 'snap-']);
    if (this.chance(0.5)) p[this.pick(['colour', '__proto__', 'constructor', 'account_id', 'state', 'size', this.junk(10)])] = this.pick<unknown>([1, 'x', { prototype: { polluted: true } }, null]);
    return p;
  }

  body(params: Record<string, unknown>): { type: string; body: Buffer } {
    switch (this.int(3)) {
      case 0: {
        const form = new URLSearchParams();
        for (const [k, v] of Object.entries(params)) form.append(k, typeof v === 'string' ? v : JSON.stringify(v));
        return { type: 'application/x-www-form-urlencoded', body: Buffer.from(form.toString()) };
      }
      default:
        return { type: this.pick(['application/json', 'application/json; charset=utf-8', 'Application/JSON']), body: Buffer.from(JSON.stringify(params)) };
    }
  }

  brokenJson(): Buffer {
    switch (this.int(8)) {
      case 0:
        return Buffer.from(JSON.stringify({ volume_id: 'vol-abcd1234', destination: 'local' }).slice(0, 1 + this.int(40)));
      case 1:
        return Buffer.from(`${'['.repeat(5000)}${']'.repeat(4999)}`);
      case 2:
        return Buffer.from([0xff, 0xfe, 0x00, 0x7b, 0x22]);
      case 3:
        return Buffer.from('{"volume_id": "vol-a", "volume_id": }');
      case 4:
        return Buffer.from('{"__proto__": {"polluted": true}, "volume_id": 1}');
      case 5:
        return Buffer.from('NaN');
      case 6:
        return Buffer.from(`{"destination": "local", "n": 1${'0'.repeat(400)}}`);
      default:
        return Buffer.from(this.junk(200));
    }
  }

  next(i: number): RawRequest {
    const headers = [...this.accountHeaders(), ...this.accept()];
    const kinds = ['badId', 'badQuery', 'badCreate', 'badRestore', 'brokenJson', 'oversized', 'wrongMethod', 'wrongType', 'randomPath', 'garbage'];
    const kind = kinds[i % kinds.length]!;
    switch (kind) {
      case 'badId': {
        const volumes = this.chance(0.25);
        const id = this.badId(volumes ? 'vol-' : 'snap-');
        const encoded = this.chance(0.5) ? id : encodeURIComponent(id);
        const method = volumes ? 'GET' : this.pick(['GET', 'DELETE', 'HEAD']);
        return { kind, method, path: `${this.prefix()}/${volumes ? 'volumes' : 'volume_snapshots'}/${encoded}${this.suffix()}`, headers };
      }
      case 'badQuery': {
        const names = ['start', 'limit', 'state', 'volume_id', 'destination', 'created_since', 'created_until'];
        const parts: string[] = [];
        const bad = this.pick(names);
        parts.push(`${bad}=${this.encode(this.badQueryValue(bad))}`);
        for (let n = this.int(4); n > 0; n--) {
          const k = this.chance(0.5) ? this.pick(names) : this.junk(8);
          parts.push(`${this.encode(k)}=${this.encode(this.chance(0.5) ? this.badQueryValue(k) : this.junk(10))}`);
        }
        // Shuffle so that the bad one is not always first.
        parts.sort(() => this.rand() - 0.5);
        const target = bad === 'start' || bad === 'limit' ? this.pick(['volume_snapshots', 'volumes']) : 'volume_snapshots';
        return { kind, method: this.pick(['GET', 'GET', 'HEAD']), path: `${this.prefix()}/${target}${this.suffix()}?${parts.join('&')}`, headers };
      }
      case 'badCreate': {
        const params = this.createParams();
        const where = this.int(3);
        if (where === 0) {
          const q = Object.entries(params).map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(typeof v === 'string' ? v : JSON.stringify(v))}`);
          return { kind, method: 'POST', path: `${this.prefix()}/volume_snapshots${this.suffix()}?${q.join('&')}`, headers };
        }
        const { type, body } = this.body(params);
        return { kind, method: 'POST', path: `${this.prefix()}/volume_snapshots${this.suffix()}`, headers: [...headers, ['Content-Type', type]], body };
      }
      case 'badRestore': {
        const params: Record<string, unknown> = {};
        if (this.chance(0.8)) params.snapshot_id = this.chance(0.5) ? this.badId('snap-') : this.pick<unknown>([1, [], {}, null, true]);
        if (this.chance(0.5)) params.volume_id = this.chance(0.5) ? this.badId('vol-') : `vol-new${this.int(1000)}`;
        if (this.chance(0.3)) params[this.junk(6)] = this.junk(6);
        const { type, body } = this.body(params);
        return { kind, method: 'POST', path: `${this.prefix()}/volumes${this.suffix()}`, headers: [...headers, ['Content-Type', type]], body };
      }
      case 'brokenJson':
        return {
          kind,
          method: this.pick(['POST', 'POST', 'DELETE']),
          path: this.pick([`${this.prefix()}/volume_snapshots`, `${this.prefix()}/volumes`, `${this.prefix()}/volume_snapshots/snap-abcd1234`]),
          headers: [...headers, ['Content-Type', 'application/json']],
          body: this.brokenJson(),
        };
      case 'oversized': {
        const size = 64 * 1024 + 1 + this.int(200 * 1024);
        const json = this.chance(0.5);
        const body = json ? Buffer.from(JSON.stringify({ volume_id: 'vol-abcd1234', destination: 'local', display_name: 'x'.repeat(size) })) : Buffer.from(`volume_id=vol-abcd1234&x=${'y'.repeat(size)}`);
        return {
          kind,
          method: 'POST',
          path: this.pick([`${this.prefix()}/volume_snapshots`, `${this.prefix()}/volumes`]),
          headers: [...headers, ['Content-Type', json ? 'application/json' : 'application/x-www-form-urlencoded']],
          body,
        };
      }
      case 'wrongMethod': {
        const target = this.pick(['/volume_snapshots', '/volume_snapshots/snap-abcd1234', '/volume_snapshots/upload_destination', '/volumes', '/volumes/vol-abcd1234', '/storage_node', '/openapi']);
        const method = target === '/volume_snapshots' || target === '/volumes' ? this.pick([...METHODS_WRONG, 'DELETE']) : this.pick([...METHODS_WRONG, 'POST']);
        const withBody = this.chance(0.4);
        return {
          kind,
          method,
          path: `${this.prefix()}${target}${this.suffix()}`,
          headers: withBody ? [...headers, ['Content-Type', 'application/json']] : headers,
          ...(withBody ? { body: Buffer.from('{}') } : {}),
        };
      }
      case 'wrongType':
        return {
          kind,
          method: 'POST',
          path: this.pick([`${this.prefix()}/volume_snapshots`, `${this.prefix()}/volumes`]),
          headers: [...headers, ['Content-Type', this.pick(CONTENT_TYPES_WRONG)]],
          body: Buffer.from(this.pick(['volume_id=vol-abcd1234&destination=local', '<volume_id/>', '{"volume_id":"vol-abcd1234"}', this.junk(50)])),
        };
      case 'randomPath': {
        const segments: string[] = [];
        for (let n = 1 + this.int(5); n > 0; n--) segments.push(this.chance(0.3) ? `${this.pick(WORDS)}${this.junk(3)}` : this.junk(15));
        const start = this.pick(['', '/api', '/api/11.12', '/api/volume_snapshots', '/api/volumes']);
        return { kind, method: this.pick(['GET', 'POST', 'DELETE', 'GET']), path: `${start}/${segments.join('/')}${this.suffix()}`, headers };
      }
      default: {
        // Things Node's HTTP parser refuses before routing.
        const variants = [
          `GET /api/volume_snapshots/snap-\u0000abc HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
          `GET /api/volume snapshots HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
          `FROB /api/volume_snapshots HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
          `GET /api/volume_snapshots HTTP/1.1\r\nHost: x\r\nX-Bad\u0001Header: y\r\nConnection: close\r\n\r\n`,
          `GET /api/volume_snapshots HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Long: ${'z'.repeat(20_000 + this.int(20_000))}\r\n\r\n`,
          `GET /api/volume_snapshots/${'a'.repeat(17_000 + this.int(10_000))} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
          `POST /api/volume_snapshots HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n`,
          `POST /api/volume_snapshots HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: abc\r\n\r\n{}`,
          `POST /api/volume_snapshots HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
        ];
        return { kind, method: 'RAW', path: '(raw)', headers: [], raw: Buffer.from(this.pick(variants), 'latin1') };
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------

let d: Daemon;

function listing(root: string, skip: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (full === skip) continue;
      const st = fs.lstatSync(full);
      out.set(path.relative(root, full), `${entry.isDirectory() ? 'd' : 'f'} ${st.size} ${st.mtimeMs} ${st.mode}`);
      if (entry.isDirectory()) walk(full);
    }
  };
  walk(root);
  return out;
}

beforeAll(async () => {
  d = await startDaemon();
  // Real things for the bad requests to aim at, so that they reach engine and filesystem code.
  d.makeVolume('vol-abcd1234', 4 * 1024 * 1024, 1024 * 1024);
  const made = await call(d, 'POST', '/api/volume_snapshots', { json: { volume_id: 'vol-abcd1234', destination: 'local', id: 'snap-abcd1234' } });
  expect(made.status, made.text).toBe(200);
  expect((await waitForState(d, 'snap-abcd1234')).state).toBe('available');
  // Sentinels beside the configured directories: names the generated paths aim at.
  for (const dir of [path.join(d.base, 'sentinel'), path.join(path.dirname(d.config.volumesDir), 'sentinel')]) {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'victim'), 'untouched');
  }
});
afterAll(async () => {
  await d?.close();
});

describe('a generated run of bad requests', () => {
  it(`answers ${RUNS} of them with a documented 4xx, stays up, and touches no file`, async () => {
    const before = listing(d.base, d.config.stateDir);
    const port = Number(new URL(d.url).port);
    const gen = new Generator(prng(SEED));
    const byKind = new Map<string, Map<number, number>>();
    const failures: string[] = [];

    for (let i = 0; i < RUNS; i++) {
      const req = gen.next(i);
      let res: RawResponse;
      try {
        res = await send(port, req);
      } catch (e) {
        failures.push(`#${i} ${(e as Error).message}`);
        continue;
      }
      const counts = byKind.get(req.kind) ?? new Map<number, number>();
      counts.set(res.status, (counts.get(res.status) ?? 0) + 1);
      byKind.set(req.kind, counts);
      const what = `#${i} ${req.kind} ${req.method} ${req.path.slice(0, 100)} → ${res.status}`;
      if (!(res.status >= 400 && res.status < 500)) {
        failures.push(`${what}: not a 4xx: ${res.body.slice(0, 200)}`);
        continue;
      }
      if (req.method === 'HEAD') continue;
      let body: unknown;
      try {
        body = (res.headers['content-type'] ?? '').startsWith('application/yaml') ? YAML.parse(res.body) : JSON.parse(res.body);
      } catch {
        failures.push(`${what}: body is not JSON/YAML (${res.headers['content-type']}): ${res.body.slice(0, 200)}`);
        continue;
      }
      const b = body as { error?: unknown; message?: unknown; code?: unknown };
      const shapeOk =
        body !== null &&
        typeof body === 'object' &&
        Object.keys(body).join(',') === 'error,message,code' &&
        isErrorName(b.error) &&
        typeof b.message === 'string' &&
        ERRORS[b.error].code === b.code &&
        ERRORS[b.error].status === res.status;
      if (!shapeOk) failures.push(`${what}: not the documented error body: ${res.body.slice(0, 200)}`);
      if (typeof b.message === 'string' && /\n\s+at |\.ts:\d+/.test(b.message)) failures.push(`${what}: a stack trace in the message`);
    }

    const summary = [...byKind].map(([k, m]) => `${k}: ${[...m].map(([s, n]) => `${s}×${n}`).join(' ')}`).join('\n');
    expect(failures.slice(0, 20), `${failures.length} failures\n${summary}`).toEqual([]);
    // The run did exercise the whole range it claims to.
    const statuses = new Set([...byKind.values()].flatMap((m) => [...m.keys()]));
    for (const s of [400, 404, 405, 413, 415, 431]) expect(statuses.has(s), `${s} seen\n${summary}`).toBe(true);

    // Still up, and nothing outside the catalog was created or changed.
    expect((await call(d, 'GET', '/healthz', { account: null })).status).toBe(200);
    const after = listing(d.base, d.config.stateDir);
    expect([...after.keys()].sort()).toEqual([...before.keys()].sort());
    for (const [p, meta] of before) expect(after.get(p), p).toBe(meta);
    for (const dir of [path.join(d.base, 'sentinel'), path.join(path.dirname(d.config.volumesDir), 'sentinel')]) {
      expect(fs.readdirSync(dir)).toEqual(['victim']);
      expect(fs.readFileSync(path.join(dir, 'victim'), 'utf8')).toBe('untouched');
    }
    expect((await call(d, 'GET', '/api/volume_snapshots', { account: 'a-fuzz0001' })).json[0].owner_total).toBe(0);
    // The snapshot the requests aimed at is as it was, and still the only one.
    expect((await call(d, 'GET', '/api/volume_snapshots/snap-abcd1234')).json.state).toBe('available');
    expect((await call(d, 'GET', '/api/volume_snapshots')).json[0].owner_total).toBe(1);

    // And a good request still works afterwards.
    d.makeVolume('vol-after0001', 1024 * 1024);
    const created = await call(d, 'POST', '/api/volume_snapshots', { json: { volume_id: 'vol-after0001', destination: 'local' } });
    expect(created.status, created.text).toBe(200);
    expect((await waitForState(d, created.json.id)).state).toBe('available');
  });
});
