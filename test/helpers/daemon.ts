// A real daemon for tests: the real engine on real files and the HTTP server listening on port 0.
// `base` puts everything in a given directory (a loop mount from loopfs.ts, say); by default a
// fresh temporary directory, removed on close.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { FastifyInstance } from 'fastify';

import type { ApiToken, Config } from '../../src/config';
import type { Metrics } from '../../src/metrics';
import { openNode } from '../../src/node';
import type { Engine } from '../../src/snapshots/engine';
import { testConfig } from './node-config';

export interface DaemonOptions {
  /** Directory to put state, volumes and destinations in; default a fresh temp dir (removed on close). */
  base?: string;
  volumesDir?: string;
  destinations?: Array<{ id: string; path: string; displayName?: string }>;
  tokens?: ApiToken[];
  /** Shared by the engine and the server (the 15-minute window, created_at). */
  clock?: () => number;
  concurrency?: number;
  allowInconsistentCopy?: boolean;
  /** Changes to the config before anything opens. */
  configure?: (config: Config) => void;
  logger?: boolean | object;
}

export interface Daemon {
  url: string;
  config: Config;
  engine: Engine;
  metrics: Metrics;
  app: FastifyInstance;
  base: string;
  /** Writes a raw volume file of `bytes` (sparse, with `dataBytes` of data at the start). */
  makeVolume(id: string, bytes: number, dataBytes?: number): string;
  close(): Promise<void>;
}

export async function startDaemon(options: DaemonOptions = {}): Promise<Daemon> {
  const ownBase = options.base === undefined;
  const base = options.base ?? fs.mkdtempSync(path.join(os.tmpdir(), 'volsnapd-api-'));
  const config = testConfig(base, {
    ...(options.volumesDir ? { volumesDir: options.volumesDir } : {}),
    ...(options.destinations ? { destinations: options.destinations } : {}),
    ...(options.concurrency ? { concurrency: options.concurrency } : {}),
    ...(options.allowInconsistentCopy ? { allowInconsistentCopy: true } : {}),
  });
  config.listen = { host: '127.0.0.1', port: 0 };
  if (options.tokens) config.auth.tokens = options.tokens;
  options.configure?.(config);
  const { engine, app, metrics } = await openNode(config, {
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.logger !== undefined ? { logger: options.logger } : {}),
  });
  let url: string;
  try {
    url = await app.listen({ host: config.listen.host, port: 0 });
  } catch (e) {
    await engine.close();
    throw e;
  }
  let closed = false;
  return {
    url,
    config,
    engine,
    metrics,
    app,
    base,
    makeVolume(id, bytes, dataBytes = Math.min(bytes, 64 * 1024)) {
      const file = path.join(config.volumesDir, id);
      const fd = fs.openSync(file, 'wx', 0o600);
      try {
        fs.ftruncateSync(fd, bytes);
        if (dataBytes > 0) fs.writeSync(fd, Buffer.alloc(dataBytes, 0x5a), 0, dataBytes, 0);
      } finally {
        fs.closeSync(fd);
      }
      return file;
    },
    async close() {
      if (closed) return;
      closed = true;
      await app.close();
      await engine.close(5_000);
      if (ownBase) fs.rmSync(base, { recursive: true, force: true });
    },
  };
}

export const TEST_ACCOUNT = 'a-test0001';

export interface CallOptions {
  /** Default TEST_ACCOUNT; null sends no account header. */
  account?: string | null;
  /** Which spelling of the account header to send. */
  accountHeader?: 'X-VDC-Account-UUID' | 'X_VDC_ACCOUNT_UUID';
  token?: string;
  json?: unknown;
  form?: Record<string, string>;
  /** A raw body (with contentType). */
  body?: string;
  contentType?: string;
  headers?: Record<string, string>;
}

export interface CallResult {
  status: number;
  headers: Headers;
  text: string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any;
}

/** One HTTP request to the daemon, with the account header by default. */
export async function call(d: { url: string }, method: string, urlPath: string, opts: CallOptions = {}): Promise<CallResult> {
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  const account = opts.account === undefined ? TEST_ACCOUNT : opts.account;
  if (account !== null) headers[opts.accountHeader ?? 'X-VDC-Account-UUID'] = account;
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  let body: string | undefined;
  if (opts.json !== undefined) {
    body = JSON.stringify(opts.json);
    headers['content-type'] = 'application/json';
  } else if (opts.form !== undefined) {
    body = new URLSearchParams(opts.form).toString();
    headers['content-type'] = 'application/x-www-form-urlencoded';
  } else if (opts.body !== undefined) {
    body = opts.body;
    if (opts.contentType) headers['content-type'] = opts.contentType;
  }
  const res = await fetch(d.url + urlPath, { method, headers, ...(body !== undefined ? { body } : {}) });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

/** Polls show until the snapshot reaches one of `states`. */
export async function waitForState(
  d: { url: string },
  id: string,
  states: readonly string[] = ['available', 'failed'],
  opts: CallOptions = {},
  timeoutMs = 30_000,
): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await call(d, 'GET', `/api/volume_snapshots/${id}`, opts);
    if (r.status === 200 && states.includes(r.json.state)) return r.json;
    if (Date.now() > deadline) throw new Error(`snapshot ${id} did not reach ${states.join('/')}: ${r.status} ${r.text}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
