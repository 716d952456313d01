// The README's "A first session" works as written: its shell block, taken from README.md, is run
// with bash against the compiled daemon started as `npm start` starts it (no --config, built-in
// defaults, `var/` under the working directory). The only change to the script: 127.0.0.1:9001
// becomes the port chosen here, since 9001 may be taken on a shared machine. Twice per daemon
// (the second run sees the first, deleted, snapshot in the index), on XFS, btrfs and ext4, and in
// a plain temporary directory where loop mounts cannot be made.
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import * as YAML from 'yaml';

import { canMake, makeFs, type FsKind } from './helpers/loopfs';

const ROOT = path.resolve(__dirname, '..');
const MAIN = path.join(ROOT, 'dist', 'src', 'main.js');
const README_PORT = '127.0.0.1:9001';
const ACCOUNT = 'a-demo0001';
const MiB = 1024 * 1024;

/** The first ```sh block after the "## A first session" heading. */
function sessionScript(readme: string): string {
  const heading = readme.search(/^## A first session$/m);
  if (heading < 0) throw new Error('README.md has no "## A first session" section');
  const block = /^```sh\n([\s\S]*?)^```$/m.exec(readme.slice(heading));
  if (!block) throw new Error('no ```sh block after "## A first session"');
  const next = readme.slice(heading + 1).search(/^## /m);
  if (next >= 0 && block.index > next) throw new Error('the first ```sh block after "## A first session" is in another section');
  return block[1]!;
}

function hasCurl(): boolean {
  try {
    execFileSync('sh', ['-c', 'command -v curl'], { stdio: 'pipe' });
    return true;
  } catch {
    if (process.env.CI) throw new Error('CI must run the README session test, but curl is not installed (apt-get install -y curl)');
    console.warn('[volsnapd tests] skipping the README session: needs curl');
    return false;
  }
}

/** The environment of a newcomer's shell: nothing of ours but the port. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('VOLSNAPD_')) env[k] = v;
  return { ...env, ...extra };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

interface Daemon {
  child: ChildProcess;
  port: number;
  log: string;
  exited: Promise<number | null>;
}

/** `node dist/src/main.js` in `cwd`, as after `npm start`'s build, on a free port; resolves when it answers. */
async function startDaemon(cwd: string, logDir: string): Promise<Daemon> {
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const log = path.join(logDir, `daemon-${attempt}.log`);
    const out = fs.openSync(log, 'w');
    const child = spawn(process.execPath, [MAIN], { cwd, env: cleanEnv({ VOLSNAPD_PORT: String(port) }), stdio: ['ignore', out, out] });
    fs.closeSync(out);
    let code: number | null | undefined;
    const exited = new Promise<number | null>((resolve) => child.once('exit', (c) => resolve((code = c))));
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (code !== undefined) break;
      try {
        const r = await fetch(`http://127.0.0.1:${port}/healthz`);
        if (r.status === 200) return { child, port, log, exited };
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`the daemon did not answer within 30 s:\n${fs.readFileSync(log, 'utf8')}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    // Someone took the port between our probe and the daemon's listen: try another one.
    const text = fs.readFileSync(log, 'utf8');
    if (attempt < 3 && /EADDRINUSE/.test(text)) continue;
    throw new Error(`the daemon exited with ${code}:\n${text}`);
  }
}

async function stopDaemon(d: Daemon): Promise<void> {
  d.child.kill('SIGTERM');
  expect(await d.exited, fs.readFileSync(d.log, 'utf8')).toBe(0);
}

function runScript(script: string, cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      'bash',
      ['-c', `set -euo pipefail\n${script}`],
      { cwd, env: cleanEnv(), timeout: 60_000, killSignal: 'SIGKILL', maxBuffer: 16 * MiB },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ code, stdout, stderr: err && err.killed ? `${stderr}\n(killed after 60 s)` : stderr });
      },
    );
  });
}

/** What the README says the session prints, checked line by line; returns the snapshot id. */
function checkOutput(out: string, run: number, kind: FsKind | 'tmp'): string {
  const lines = out.replace(/\n$/, '').split('\n');
  // echo "$snap"
  const snap = lines[0]!;
  expect(snap).toMatch(/^snap-[a-z0-9]{8}$/);
  // Index: [{"owner_total":1,"start":0,"limit":null,"results":[{…}],"result":[{…}]}], newest first.
  const index = JSON.parse(lines[1]!);
  expect(index).toHaveLength(1);
  expect(Object.keys(index[0])).toEqual(['owner_total', 'start', 'limit', 'results', 'result']);
  expect(index[0]).toMatchObject({ owner_total: run, start: 0, limit: null });
  expect(index[0].results[0]).toMatchObject({ id: snap, state: 'available' });
  if (run > 1) expect(index[0].results[1]).toMatchObject({ state: 'deleted' });
  expect(index[0].result).toEqual(index[0].results);
  // Show: "state":"available","size":10240, then the method and the byte counts.
  expect(lines[2]).toContain('"state":"available","size":10240');
  const show = JSON.parse(lines[2]!);
  expect(show).toMatchObject({ id: snap, state: 'available', size: 10240, origin_volume_id: 'vol-demo0001', account_id: ACCOUNT, allocated_bytes: 64 * MiB });
  const reflink = { method: 'reflink', shared_bytes: 64 * MiB, exclusive_bytes: 0 };
  const copy = { method: 'copy', shared_bytes: 0, exclusive_bytes: 64 * MiB };
  if (kind === 'xfs' || kind === 'btrfs') expect(show).toMatchObject(reflink);
  else if (kind === 'ext4') expect(show).toMatchObject(copy);
  else expect(show).toMatchObject(show.method === 'reflink' ? reflink : copy);
  // The same document as YAML, one "key: value" a line.
  const yaml = lines.slice(3, -1);
  expect(yaml.length).toBe(Object.keys(show).length);
  expect(yaml[0]).toBe(`id: ${snap}`);
  expect(yaml).toContain('state: available');
  expect(YAML.parse(yaml.join('\n'))).toEqual(show);
  // Delete: ["snap-…"].
  expect(lines.at(-1)).toBe(JSON.stringify([snap]));
  return snap;
}

async function session(kind: FsKind | 'tmp'): Promise<void> {
  const script = sessionScript(fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8'));
  expect(script).toContain(README_PORT);
  const mount = kind === 'tmp' ? null : makeFs(kind, kind === 'ext4' ? 320 : 512);
  const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'volsnapd-readme-'));
  // A fresh directory, as a fresh checkout is: the daemon creates var/ in it.
  const cwd = mount ? path.join(mount.mountPoint, 'checkout') : path.join(logDir, 'checkout');
  fs.mkdirSync(cwd);
  let daemon: Daemon | undefined;
  try {
    daemon = await startDaemon(cwd, logDir);
    const body = script.split(README_PORT).join(`127.0.0.1:${daemon.port}`);
    const seen: string[] = [];
    for (let run = 1; run <= 2; run++) {
      const r = await runScript(body, cwd);
      const context = `run ${run} on ${kind}: exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}\n--- daemon\n${fs.readFileSync(daemon.log, 'utf8')}`;
      expect(r.code, context).toBe(0);
      expect(r.stderr, context).toBe('');
      const snap = checkOutput(r.stdout, run, kind);
      expect(seen).not.toContain(snap);
      seen.push(snap);

      // After the delete: show says deleted with deleted_at set, the file is gone, the volume stays.
      const show = await fetch(`http://127.0.0.1:${daemon.port}/api/volume_snapshots/${snap}`, { headers: { 'X-VDC-Account-UUID': ACCOUNT } });
      const doc = (await show.json()) as Record<string, unknown>;
      expect(doc).toMatchObject({ id: snap, state: 'deleted', deleted_at: expect.any(String) });
      expect(fs.readdirSync(path.join(cwd, 'var', 'snapshots'))).toEqual([]);
      const volume = fs.statSync(path.join(cwd, 'var', 'volumes', 'vol-demo0001'));
      expect(volume.size).toBe(10 * 1024 * MiB);
      expect(volume.blocks * 512).toBeLessThan(1024 * MiB);
    }
  } finally {
    if (daemon) await stopDaemon(daemon);
    mount?.unmount();
    fs.rmSync(logDir, { recursive: true, force: true });
  }
}

describe.skipIf(!hasCurl())('the README first session, run as written', () => {
  it('finds the shell block and the port to change in it', () => {
    const script = sessionScript(fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8'));
    expect(script).toMatch(/^truncate -s 10G var\/volumes\/vol-demo0001$/m);
    expect(script).toContain(`curl -s -X POST -H 'X-VDC-Account-UUID: ${ACCOUNT}' -d volume_id=vol-demo0001 -d destination=local http://${README_PORT}/api/volume_snapshots`);
    expect(fs.existsSync(MAIN)).toBe(true);
  });

  it('in a temporary directory', () => session('tmp'));
  it.skipIf(!canMake('xfs'))('on XFS: a reflink, all 64 MiB shared', () => session('xfs'));
  it.skipIf(!canMake('btrfs'))('on btrfs: a reflink, all 64 MiB shared', () => session('btrfs'));
  it.skipIf(!canMake('ext4'))('on ext4: a sparse copy of the 64 MiB of data', () => session('ext4'));
});
