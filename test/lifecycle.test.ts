// The daemon as systemd runs it: READY/WATCHDOG/STOPPING on a real notify socket, and SIGTERM
// in the middle of a long copy (exit 0 within the deadline, snapshot failed or available, nothing
// partial, the next start serves). Real processes, real filesystems.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

import { MiB, writeDense } from './helpers/files';
import { spawnDaemon, type DaemonProcess } from './helpers/daemon-process';
import { canMake, makeFs, type TestFs } from './helpers/loopfs';

const havePython = spawnSync('python3', ['--version']).status === 0;
const ACCOUNT = { 'X-VDC-Account-UUID': 'a-lifecycle' };

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'volsnapd-life-'));
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function track(d: DaemonProcess): DaemonProcess {
  cleanups.push(() => {
    if (d.child.exitCode === null && d.child.signalCode === null) d.child.kill('SIGKILL');
  });
  return d;
}

function writeConfig(dir: string, volumes: string, destination: string, extra = ''): string {
  fs.writeFileSync(path.join(dir, 'snapshot_repository.yml'), `local: { driver: local, display_name: "Local", path: ${JSON.stringify(destination)} }\n`);
  const file = path.join(dir, 'volsnapd.yml');
  fs.writeFileSync(
    file,
    `node_id: sn-life0001\nlisten: { host: 127.0.0.1, port: 0 }\nstate_dir: ${JSON.stringify(path.join(dir, 'state'))}\n` +
      `volumes_dir: ${JSON.stringify(volumes)}\nsnapshot_repository: snapshot_repository.yml\nlog_level: info\n${extra}`,
  );
  return file;
}

/** A unix datagram socket that records what it receives (Node cannot receive datagrams on AF_UNIX). */
function notifyReceiver(socketPath: string): { messages: string[]; stop(): void; ready: Promise<void> } {
  const messages: string[] = [];
  const py = spawn('python3', [
    '-u',
    '-c',
    `import socket,sys
s=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM)
a=sys.argv[1]
s.bind("\\0"+a[1:] if a.startswith("@") else a)
print("LISTENING",flush=True)
while True:
    print(s.recv(4096).decode(),flush=True)`,
    socketPath,
  ]);
  let buffer = '';
  let resolveReady!: () => void;
  const ready = new Promise<void>((r) => (resolveReady = r));
  py.stdout.on('data', (d: Buffer) => {
    buffer += d.toString();
    const lines = buffer.split('\n');
    buffer = lines.pop()!;
    for (const line of lines) {
      if (line === 'LISTENING') resolveReady();
      else if (line) messages.push(line);
    }
  });
  return { messages, ready, stop: () => py.kill('SIGKILL') };
}

async function until<T>(what: string, fn: () => T | undefined | Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v as T;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe.skipIf(!havePython)('systemd notify', () => {
  it('sends READY=1 once serving, WATCHDOG=1 at half the period, STOPPING=1 on SIGTERM', async () => {
    const dir = tempDir();
    const socketPath = path.join(dir, 'notify.sock');
    const receiver = notifyReceiver(socketPath);
    cleanups.push(() => receiver.stop());
    await receiver.ready;
    fs.mkdirSync(path.join(dir, 'volumes'));
    const config = writeConfig(dir, path.join(dir, 'volumes'), path.join(dir, 'snapshots'));
    const daemon = track(await spawnDaemon(config, { NOTIFY_SOCKET: socketPath, WATCHDOG_USEC: '200000' }));
    const health = await fetch(`${daemon.address}/healthz`);
    expect(health.status).toBe(200);
    await until('READY=1', () => receiver.messages.includes('READY=1'));
    await until('two watchdog pings', () => receiver.messages.filter((m) => m === 'WATCHDOG=1').length >= 2);
    expect(receiver.messages.some((m) => m.startsWith('STATUS=serving on'))).toBe(true);
    expect(receiver.messages).not.toContain('STOPPING=1');
    daemon.child.kill('SIGTERM');
    expect(await daemon.exited).toBe(0);
    await until('STOPPING=1', () => receiver.messages.includes('STOPPING=1'));
    // READY came before STOPPING, and only once.
    expect(receiver.messages.filter((m) => m === 'READY=1')).toHaveLength(1);
    expect(receiver.messages.indexOf('READY=1')).toBeLessThan(receiver.messages.indexOf('STOPPING=1'));
  });

  it('reaches an abstract socket (NOTIFY_SOCKET=@name) too', async () => {
    const dir = tempDir();
    const name = `@volsnapd-test-${process.pid}-${Date.now()}`;
    const receiver = notifyReceiver(name);
    cleanups.push(() => receiver.stop());
    await receiver.ready;
    fs.mkdirSync(path.join(dir, 'volumes'));
    const daemon = track(await spawnDaemon(writeConfig(dir, path.join(dir, 'volumes'), path.join(dir, 'snapshots')), { NOTIFY_SOCKET: name }));
    await until('READY=1', () => receiver.messages.includes('READY=1'));
    daemon.child.kill('SIGTERM');
    expect(await daemon.exited).toBe(0);
    await until('STOPPING=1', () => receiver.messages.includes('STOPPING=1'));
  });
});

describe('shutdown with clients connected', () => {
  it('does not wait for idle keep-alive connections or a client stalled mid-request', async () => {
    const dir = tempDir();
    fs.mkdirSync(path.join(dir, 'volumes'));
    const daemon = track(await spawnDaemon(writeConfig(dir, path.join(dir, 'volumes'), path.join(dir, 'snapshots'))));
    const agent = new http.Agent({ keepAlive: true });
    cleanups.push(() => agent.destroy());
    const get = (p: string) =>
      new Promise<number>((resolve, reject) => {
        http.get(`${daemon.address}${p}`, { agent, headers: ACCOUNT }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        }).on('error', reject);
      });
    expect(await get('/api/volume_snapshots')).toBe(200);
    // The socket now sits idle in the agent; the server would keep it for its keep-alive timeout.
    // And a client that stalls halfway through its request holds a connection in flight.
    const stalled = net.connect(Number(new URL(daemon.address).port), '127.0.0.1');
    cleanups.push(() => stalled.destroy());
    stalled.on('error', () => undefined);
    await new Promise((r) => stalled.once('connect', r));
    stalled.write('POST /api/volume_snapshots HTTP/1.1\r\nHost: x\r\nX-VDC-Account-UUID: a-lifecycle\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"volu');
    await new Promise((r) => setTimeout(r, 100));
    const started = Date.now();
    daemon.child.kill('SIGTERM');
    expect(await daemon.exited).toBe(0);
    expect(Date.now() - started).toBeLessThan(3000);
  });
});

describe.skipIf(!canMake('ext4'))('shutdown during a long copy', () => {
  let source: TestFs;
  let target: TestFs;

  async function longCopySetup(extra: string): Promise<{ config: string; daemon: DaemonProcess; id: string; dest: string }> {
    source = makeFs('ext4', 2600);
    target = makeFs('ext4', 2600);
    cleanups.push(() => source.unmount(), () => target.unmount());
    const volumes = path.join(source.mountPoint, 'volumes');
    const dest = path.join(target.mountPoint, 'snapshots');
    fs.mkdirSync(volumes);
    writeDense(path.join(volumes, 'vol-long0001'), 2048 * MiB, 256 * MiB);
    const dir = path.join(source.mountPoint, 'etc');
    fs.mkdirSync(dir);
    const config = writeConfig(dir, volumes, dest, extra);
    const daemon = track(await spawnDaemon(config));
    const res = await fetch(`${daemon.address}/api/volume_snapshots`, {
      method: 'POST',
      headers: { ...ACCOUNT, 'content-type': 'application/json' },
      body: JSON.stringify({ volume_id: 'vol-long0001', destination: 'local' }),
    });
    expect(res.status).toBe(200);
    const id = ((await res.json()) as { id: string }).id;
    return { config, daemon, id, dest };
  }

  async function show(address: string, id: string): Promise<{ state: string; error?: string }> {
    return (await (await fetch(`${address}/api/volume_snapshots/${id}`, { headers: ACCOUNT })).json()) as { state: string; error?: string };
  }

  it('SIGTERM: exits 0 within the deadline, the snapshot failed, no temp file, next start serves', async () => {
    // A 2 GiB copy takes seconds here (about 1 GiB/s at best); the deadline is 0.3 s.
    const { config, daemon, id, dest } = await longCopySetup('jobs: { concurrency: 1, shutdown_deadline_seconds: 0.3 }\n');
    const started = Date.now();
    daemon.child.kill('SIGTERM');
    expect(await daemon.exited).toBe(0);
    const tookMs = Date.now() - started;
    expect(tookMs).toBeLessThan(300 + 4000);
    expect(fs.readdirSync(dest).filter((n) => n.endsWith('.tmp'))).toEqual([]);

    const again = track(await spawnDaemon(config));
    const doc = await show(again.address, id);
    console.log(`SIGTERM during the copy: exit 0 after ${tookMs} ms (deadline 300 ms); snapshot ${doc.state}`);
    expect(doc.state).toBe('failed');
    expect(doc.error).toMatch(/cancelled/);
    expect(fs.existsSync(path.join(dest, `${id}.snap`))).toBe(false);
    expect((await fetch(`${again.address}/readyz`)).status).toBe(200);
    again.child.kill('SIGTERM');
    expect(await again.exited).toBe(0);
  });

  it('a second signal cancels at once, still cleanly', async () => {
    const { config, daemon, id, dest } = await longCopySetup('jobs: { concurrency: 1, shutdown_deadline_seconds: 600 }\n');
    await until('the copy to start', async () => (await show(daemon.address, id)).state === 'creating' || undefined);
    daemon.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 100));
    const started = Date.now();
    daemon.child.kill('SIGTERM');
    expect(await daemon.exited).toBe(0);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(fs.readdirSync(dest).filter((n) => n.endsWith('.tmp'))).toEqual([]);
    const again = track(await spawnDaemon(config));
    expect(['failed', 'available']).toContain((await show(again.address, id)).state);
    again.child.kill('SIGTERM');
    expect(await again.exited).toBe(0);
  });
});
