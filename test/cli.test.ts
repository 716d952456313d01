// volsnap, the compiled CLI, run as a child process against two real daemons on two ports
// (real engines on real files in temp directories): merged ls, create --wait, show, rm, restore,
// doctor, --json everywhere, and the exit codes.
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { startDaemon, type Daemon } from './helpers/daemon';
import { settle } from './helpers/settle';

const ROOT = path.resolve(__dirname, '..');
const CLI = path.join(ROOT, 'dist/src/cli/volsnap.js');
const ACCOUNT = 'a-cliuser1';
const TOKEN = 'cli-test-token-0123456789abcdef';
// The operator's token: doctor's orphan files are shown to admins only.
const ADMIN_TOKEN = 'cli-admin-token-0123456789abcdef';

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function volsnap(args: string[], env: Record<string, string> = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { PATH: process.env.PATH ?? '', VOLSNAP_TOKEN: TOKEN, VOLSNAP_ACCOUNT: ACCOUNT, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** The compiled CLI must be at least as new as its sources. */
function ensureBuilt(): void {
  const sources = fs.readdirSync(path.join(ROOT, 'src/cli')).map((f) => fs.statSync(path.join(ROOT, 'src/cli', f)).mtimeMs);
  const built = fs.existsSync(CLI) ? fs.statSync(CLI).mtimeMs : 0;
  if (built < Math.max(...sources)) execFileSync('npx', ['tsc', '-p', '.'], { cwd: ROOT, stdio: 'inherit' });
}

/** A port on which nothing listens (bound, then released). */
async function closedPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

async function settled(d: Daemon, id: string): Promise<string> {
  return (await settle(d.engine, id, 30_000)).state;
}

let a: Daemon;
let b: Daemon;
let both: string[];
let snapA: string;
let snapB: string;

beforeAll(async () => {
  ensureBuilt();
  const tokens = [{ token: TOKEN, admin: false }, { token: ADMIN_TOKEN, admin: true }];
  a = await startDaemon({ tokens });
  b = await startDaemon({ tokens });
  a.makeVolume('vol-clia1', 8 * 1024 * 1024, 1024 * 1024);
  b.makeVolume('vol-clib1', 8 * 1024 * 1024, 1024 * 1024);
  b.makeVolume('vol-clib2', 4 * 1024 * 1024, 512 * 1024);
  snapA = (await a.engine.createSnapshot({ accountId: ACCOUNT, volumeId: 'vol-clia1', destinationId: 'local', displayName: 'on a' })).id;
  snapB = (await b.engine.createSnapshot({ accountId: ACCOUNT, volumeId: 'vol-clib1', destinationId: 'local' })).id;
  expect(await settled(a, snapA)).toBe('available');
  expect(await settled(b, snapB)).toBe('available');
  both = ['--node', a.url, '--node', b.url];
});

afterAll(async () => {
  await a?.close();
  await b?.close();
});

describe('volsnap against two daemons', () => {
  it('ls merges both nodes into one table with a NODE column', async () => {
    const r = await volsnap(['ls', ...both]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^NODE\s+ID\s+STATE\s+VOLUME\s+DEST\s+SIZE\s+METHOD\s+EXCLUSIVE\s+CREATED$/);
    const rowA = lines.find((l) => l.includes(snapA))!;
    const rowB = lines.find((l) => l.includes(snapB))!;
    expect(rowA.startsWith(a.url)).toBe(true);
    expect(rowB.startsWith(b.url)).toBe(true);
    expect(rowA).toMatch(/available\s+vol-clia1\s+local\s+8\.0 MiB\s+(copy|reflink)/);
    expect(rowB).toMatch(/available\s+vol-clib1\s+local/);

    // One node: no NODE column.
    const one = await volsnap(['ls', '--node', a.url]);
    expect(one.code).toBe(0);
    expect(one.stdout.split('\n')[0]).toMatch(/^ID\s+STATE/);
    expect(one.stdout).toContain(snapA);
    expect(one.stdout).not.toContain(snapB);

    // A nodes file and VOLSNAP_NODE name nodes too.
    const file = path.join(a.base, 'nodes.txt');
    fs.writeFileSync(file, `# storage nodes\n${a.url}\n\n${b.url}/\n`);
    const viaFile = await volsnap(['ls', '--nodes', file]);
    expect(viaFile.code).toBe(0);
    expect(viaFile.stdout).toContain(snapA);
    expect(viaFile.stdout).toContain(snapB);
    const viaEnv = await volsnap(['ls'], { VOLSNAP_NODE: b.url });
    expect(viaEnv.code).toBe(0);
    expect(viaEnv.stdout).toContain(snapB);
  });

  it('ls --json keeps the index shape per node, with the node added', async () => {
    const r = await volsnap(['--json', 'ls', ...both]);
    expect(r.code).toBe(0);
    const pages = JSON.parse(r.stdout) as Array<{ node: string; owner_total: number; start: number; limit: number | null; results: Array<{ id: string }> }>;
    expect(pages.map((p) => p.node)).toEqual([a.url, b.url]);
    expect(pages[0]).toMatchObject({ owner_total: 1, start: 0, limit: null });
    expect(pages[0]!.results.map((d) => d.id)).toEqual([snapA]);
    expect(pages[1]!.results.map((d) => d.id)).toContain(snapB);
  });

  it('create --wait ends with the snapshot available, on the node that holds the volume', async () => {
    const r = await volsnap(['create', 'vol-clib2', '--destination', 'local', '--name', 'nightly', '--wait', '--poll-ms', '20', ...both]);
    expect(r.code, r.stderr).toBe(0);
    const id = /^id\s+(snap-[a-z0-9]+)$/m.exec(r.stdout)![1]!;
    expect(r.stdout).toMatch(/^state\s+available$/m);
    expect(r.stdout).toMatch(new RegExp(`^node\\s+${b.url.replace(/[.]/g, '\\.')}$`, 'm'));
    // Not a terminal: plain progress lines on stderr, the last one at 100%.
    expect(r.stderr.trimEnd().split('\n').at(-1)).toBe(`${id} available 100%`);
    expect(r.stderr).not.toContain('\r');
    expect(b.engine.getSnapshot(id, null)).toMatchObject({ state: 'available', displayName: 'nightly', originVolumeId: 'vol-clib2' });

    const j = await volsnap(['--json', 'create', 'vol-clia1', '--destination', 'local', '--wait', '--poll-ms', '20', ...both]);
    expect(j.code, j.stderr).toBe(0);
    const doc = JSON.parse(j.stdout) as { id: string; state: string; origin_volume_id: string; progress: number };
    expect(doc).toMatchObject({ state: 'available', origin_volume_id: 'vol-clia1', progress: 100 });
    expect(a.engine.getSnapshot(doc.id, null)?.state).toBe('available');

    // Without --wait: the document as created.
    const nowait = await volsnap(['--json', 'create', 'vol-clia1', '--destination', 'local', '--node', a.url]);
    expect(nowait.code).toBe(0);
    const created = JSON.parse(nowait.stdout) as { id: string; state: string };
    expect(['creating', 'registering', 'available']).toContain(created.state);
    await settled(a, created.id);
  });

  it('create --wait exits 4 when the snapshot ends failed', async (ctx) => {
    b.makeVolume('vol-busy1', 4 * 1024 * 1024, 1024 * 1024);
    const holder = fs.openSync(path.join(b.config.volumesDir, 'vol-busy1'), 'r+');
    try {
      const status = await b.engine.destinationStatus();
      // On a filesystem that reflinks, a clone of an open volume is still point-in-time and
      // succeeds, so there is no failure to wait for: say so rather than pass.
      if (status[0]!.reflink) ctx.skip('the temp directory reflinks: an open volume snapshots fine there');
      const r = await volsnap(['create', 'vol-busy1', '--destination', 'local', '--wait', '--poll-ms', '20', '--node', b.url]);
      expect(r.code).toBe(4);
      expect(r.stdout).toMatch(/^state\s+failed$/m);
      expect(r.stderr).toMatch(/failed: .*open for writing/);
    } finally {
      fs.closeSync(holder);
    }
  });

  it('show finds a snapshot on whichever node has it; an unknown id exits 1 with the API error', async () => {
    const r = await volsnap(['show', snapB, ...both]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^id\\s+${snapB}$`, 'm'));
    expect(r.stdout).toMatch(/^origin_volume_id\s+vol-clib1$/m);

    const j = await volsnap(['--json', 'show', snapA, ...both]);
    expect(j.code).toBe(0);
    const doc = JSON.parse(j.stdout) as Record<string, unknown>;
    expect(Object.keys(doc).slice(0, 4)).toEqual(['id', 'uuid', 'state', 'size']);
    expect(doc).toMatchObject({ id: snapA, display_name: 'on a', backing_store: 'raw' });

    const missing = await volsnap(['show', 'snap-nothere1', ...both]);
    expect(missing.code).toBe(1);
    expect(missing.stdout).toBe('');
    expect(missing.stderr).toMatch(/UnknownVolumeSnapshot \(117\): /);

    const mj = await volsnap(['--json', 'show', 'snap-nothere1', '--node', a.url]);
    expect(mj.code).toBe(1);
    expect(JSON.parse(mj.stderr)).toMatchObject({ error: 'UnknownVolumeSnapshot', code: '117', status: 404, node: a.url });
  });

  it('rm deletes on the right node; restore makes a new volume from a snapshot', async () => {
    const restored = await volsnap(['restore', snapB, '--volume-id', 'vol-clirest1', ...both]);
    expect(restored.code, restored.stderr).toBe(0);
    expect(restored.stdout).toMatch(/^id\s+vol-clirest1$/m);
    expect(fs.existsSync(path.join(b.config.volumesDir, 'vol-clirest1'))).toBe(true);
    expect(fs.existsSync(path.join(a.config.volumesDir, 'vol-clirest1'))).toBe(false);

    const rj = await volsnap(['--json', 'restore', snapA, '--node', a.url]);
    expect(rj.code, rj.stderr).toBe(0);
    const vol = JSON.parse(rj.stdout) as { id: string; size_bytes: number };
    expect(vol.id).toMatch(/^vol-/);
    expect(vol.size_bytes).toBe(8 * 1024 * 1024);

    // Restoring onto an existing volume is the API's Conflict: exit 1.
    const conflict = await volsnap(['restore', snapB, '--volume-id', 'vol-clirest1', ...both]);
    expect(conflict.code).toBe(1);
    expect(conflict.stderr).toMatch(/Conflict/);

    const snap = (await b.engine.createSnapshot({ accountId: ACCOUNT, volumeId: 'vol-clib1', destinationId: 'local' })).id;
    await settled(b, snap);
    const rm = await volsnap(['--json', 'rm', snap, ...both]);
    expect(rm.code, rm.stderr).toBe(0);
    expect(JSON.parse(rm.stdout)).toEqual([snap]);
    expect(b.engine.getSnapshot(snap, null)?.state).toBe('deleted');
    const again = await volsnap(['rm', snap, '--node', b.url]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/InvalidVolumeState \(140\)/);
  });

  it('an unreachable node exits 3, after printing what the others answered', async () => {
    const dead = `http://127.0.0.1:${await closedPort()}`;
    const r = await volsnap(['ls', '--node', a.url, '--node', dead]);
    expect(r.code).toBe(3);
    expect(r.stdout).toContain(snapA);
    expect(r.stderr).toContain(`${dead} is unreachable`);
    const j = await volsnap(['--json', 'show', snapA, '--node', dead]);
    expect(j.code).toBe(3);
    expect(JSON.parse(j.stderr)).toMatchObject({ error: 'Unreachable', node: dead });
  });

  it('takes the token and account from flags or the environment', async () => {
    const noToken = await volsnap(['ls', '--node', a.url], { VOLSNAP_TOKEN: '' });
    expect(noToken.code).toBe(1);
    expect(noToken.stderr).toMatch(/Unauthorized/);
    const flag = await volsnap(['ls', '--node', a.url, '--token', TOKEN], { VOLSNAP_TOKEN: '' });
    expect(flag.code).toBe(0);
    const other = await volsnap(['--json', 'ls', '--node', a.url, '--account', 'a-someone2']);
    expect(other.code).toBe(0);
    expect((JSON.parse(other.stdout) as Array<{ results: unknown[] }>)[0]!.results).toEqual([]);
  });

  it('exits 2 on usage errors and documents its exit codes', async () => {
    for (const args of [[], ['frobnicate'], ['ls', '--frob'], ['show'], ['create', 'vol-clia1'], ['ls', '--timeout', 'soon'], ['ls', '--node', 'ftp://x']]) {
      const r = await volsnap(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/^volsnap: /);
    }
    const help = await volsnap(['--help']);
    expect(help.code).toBe(0);
    for (const line of [/^ {2}0 {2}ok$/m, /^ {2}1 /m, /^ {2}2 {2}usage/m, /^ {2}3 /m, /^ {2}4 {2}create --wait/m]) expect(help.stdout).toMatch(line);
  });

  it('doctor reports destinations and an orphan file planted in a destination', async () => {
    const orphan = path.join(b.config.destinations[0]!.path, 'snap-orphan99.snap');
    fs.writeFileSync(orphan, 'left behind');
    try {
      const asOperator = { VOLSNAP_TOKEN: ADMIN_TOKEN, VOLSNAP_ACCOUNT: '' };
      // An account's token sees no orphan file (it belongs to no account).
      const user = await volsnap(['--json', 'doctor', ...both]);
      expect((JSON.parse(user.stdout) as Array<{ check: { orphans: string[] } }>).every((x) => x.check.orphans.length === 0)).toBe(true);
      const r = await volsnap(['doctor', ...both], asOperator);
      expect(r.stdout).toContain(`node ${a.url}`);
      expect(r.stdout).toContain(`node ${b.url}`);
      expect(r.stdout).toMatch(/^\s+local\s+\S.*\s+(yes|NO)\s+yes\s+[\d.]+ [KMGTP]iB/m);
      expect(r.stdout).toMatch(/snap-orphan99/);
      expect(r.code).toBe(5);

      const j = await volsnap(['--json', 'doctor', ...both], asOperator);
      const reports = JSON.parse(j.stdout) as Array<{ node: string; check: { orphans: string[]; missing: string[] } | null; storage_node: { destinations: unknown[] } }>;
      expect(reports.map((x) => x.node)).toEqual([a.url, b.url]);
      expect(reports[0]!.check).toEqual({ orphans: [], missing: [] });
      expect(reports[1]!.check!.orphans.some((o) => o.includes('snap-orphan99'))).toBe(true);
      expect(reports[1]!.storage_node.destinations).toHaveLength(1);
      expect(j.code).toBe(5);
    } finally {
      fs.rmSync(orphan, { force: true });
    }
  });
});
