// Crash injection: the engine runs in a child process that is SIGKILLed at random moments while
// it creates, deletes and restores; each restart must find nothing stuck, nothing partial, every
// available snapshot holding exactly what its volume held when it was taken, and planted files
// untouched.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import type { Config } from '../src/config';
import type { SnapshotRecord } from '../src/catalog';
import type { ReconcileReport } from '../src/snapshots/reconcile';
import { MiB, sha256, writeLayout } from './helpers/files';
import { canMake, makeFs, type TestFs } from './helpers/loopfs';
import { testConfig } from './helpers/node-config';

const CHILD = path.resolve(__dirname, '..', 'dist', 'test', 'helpers', 'crash-child.js');
const VOLUMES = ['vol-a', 'vol-b', 'vol-c'];
const ORPHAN = 'snap-orphan01.snap';

interface Ready {
  report: ReconcileReport;
  integrity: string[];
  rows: SnapshotRecord[];
}

interface Epoch {
  start: number;
  end: number;
  hashes: Map<string, string>;
}

function startChild(configFile: string, seed: number, hold: boolean): Promise<{ child: ChildProcess; ready: Ready; restores: Map<string, string> }> {
  const child = spawn(process.execPath, [CHILD, configFile, VOLUMES.join(','), String(seed), hold ? 'hold' : ''], { stdio: ['pipe', 'pipe', 'inherit'] });
  const restores = new Map<string, string>();
  return new Promise((resolve, reject) => {
    let buffer = '';
    child.stdout!.on('data', (d: Buffer) => {
      buffer += d.toString();
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        if (line.startsWith('READY ')) resolve({ child, ready: JSON.parse(line.slice(6)) as Ready, restores });
        else if (line.startsWith('RESTORE ')) {
          const [, snap, vol] = line.split(' ');
          restores.set(vol!, snap!);
        } else if (line.startsWith('ERROR ')) reject(new Error(line));
      }
    });
    child.once('exit', (code) => reject(new Error(`child exited early with ${code}`)));
  });
}

function kill(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

function dirtyVolume(file: string): void {
  const fd = fs.openSync(file, 'r+');
  const at = Math.floor(Math.random() * 12) * MiB;
  fs.writeSync(fd, randomBytes(1 * MiB), 0, 1 * MiB, at);
  fs.fsyncSync(fd);
  fs.closeSync(fd);
}

async function crashLoop(config: Config, configFile: string, kills: number, hold = false): Promise<{ checked: number; kinds: Set<string>; errors: Map<string, string> }> {
  for (const v of VOLUMES) writeLayout(path.join(config.volumesDir, v), [{ data: 6 * MiB }, { hole: 4 * MiB }, { data: 6 * MiB }]);
  const orphan = path.join(config.destinations[0]!.path, ORPHAN);
  fs.writeFileSync(orphan, 'planted without a row');
  const epochs: Epoch[] = [];
  const restored = new Map<string, string>(); // volume → snapshot
  let checked = 0;
  const seenStates = new Set<string>();
  const errors = new Map<string, string>(); // snapshot id → why it failed

  for (let round = 0; round <= kills; round++) {
    // The volumes change only while no engine runs, so every snapshot of an epoch saw these bytes.
    if (round > 0) for (const v of VOLUMES) if (Math.random() < 0.7) dirtyVolume(path.join(config.volumesDir, v));
    const epoch: Epoch = { start: Date.now(), end: Infinity, hashes: new Map(VOLUMES.map((v) => [v, sha256(path.join(config.volumesDir, v))])) };
    epochs.push(epoch);
    const { child, ready, restores } = await startChild(configFile, round + 1, hold);
    try {
      // What the restart found.
      expect(ready.integrity).toEqual([]);
      for (const row of ready.rows) {
        seenStates.add(row.state);
        if (row.error) errors.set(row.id, row.error);
        expect(['creating', 'registering', 'deleting']).not.toContain(row.state);
        if (row.state !== 'available') continue;
        const dest = config.destinations.find((d) => d.id === row.destinationId)!;
        const file = path.join(dest.path, `${row.id}.snap`);
        const at = epochs.find((e) => e.start <= row.createdAt && row.createdAt <= e.end);
        expect(at, `epoch of ${row.id}`).toBeDefined();
        expect(sha256(file), `content of ${row.id}`).toBe(at!.hashes.get(row.originVolumeId));
        checked++;
      }
      for (const dir of [...config.destinations.map((d) => d.path), config.volumesDir, path.join(config.volumesDir, '.volsnapd-staging')]) {
        expect(fs.readdirSync(dir).filter((n) => /\.(tmp|staging)$/.test(n))).toEqual([]);
      }
      expect(fs.readFileSync(orphan, 'utf8')).toBe('planted without a row');
      expect(ready.report.orphans).toContain(orphan);
      // A restored volume exists only whole: with its snapshot's bytes.
      for (const name of fs.readdirSync(config.volumesDir).filter((n) => n.startsWith('vol-r'))) {
        const snap = restored.get(name);
        expect(snap, `restored volume ${name} was announced`).toBeDefined();
        const row = ready.rows.find((r) => r.id === snap);
        const at = epochs.find((e) => row && e.start <= row.createdAt && row.createdAt <= e.end)!;
        expect(sha256(path.join(config.volumesDir, name))).toBe(at.hashes.get(row!.originVolumeId));
        fs.rmSync(path.join(config.volumesDir, name));
        checked++;
      }
      if (round === kills) break;
      child.stdin!.write('GO\n');
      await new Promise((r) => setTimeout(r, 20 + Math.random() * 400));
    } finally {
      await kill(child);
      for (const [vol, snap] of restores) restored.set(vol, snap);
      epoch.end = Date.now();
    }
  }
  return { checked, kinds: seenStates, errors };
}

const describeCrash = describe.skipIf(!canMake('xfs') || !canMake('ext4'));

describeCrash('SIGKILL at random moments', () => {
  const mounts: TestFs[] = [];
  afterAll(() => mounts.forEach((m) => m.unmount()));

  it('XFS volumes (reflink locally, staged copy to ext4): 30 kills, nothing lost', async () => {
    const xfs = makeFs('xfs', 512);
    const ext4 = makeFs('ext4', 512);
    mounts.push(xfs, ext4);
    const config = testConfig(xfs.mountPoint, {
      concurrency: 2,
      destinations: [
        { id: 'local', path: path.join(xfs.mountPoint, 'snapshots') },
        { id: 'backup', path: path.join(ext4.mountPoint, 'backup') },
      ],
    });
    const file = path.join(xfs.mountPoint, 'config.json');
    fs.writeFileSync(file, JSON.stringify(config));
    const { checked, kinds } = await crashLoop(config, file, 30);
    console.log(`xfs: ${checked} snapshot/volume files verified after 30 kills; states seen: ${[...kinds].join(', ')}`);
    expect(checked).toBeGreaterThan(10);
    expect(kinds).toContain('failed');
  }, 600_000);

  it('ext4 (copy under a read lease, volumes now and then held open for writing): 25 kills, nothing lost', async () => {
    const ext4 = makeFs('ext4', 512);
    mounts.push(ext4);
    const config = testConfig(ext4.mountPoint, { concurrency: 2 });
    const file = path.join(ext4.mountPoint, 'config.json');
    fs.writeFileSync(file, JSON.stringify(config));
    const { checked, kinds, errors } = await crashLoop(config, file, 25, true);
    const leaseFailures = [...errors.values()].filter((e) => /open for writing|opened for writing/.test(e)).length;
    console.log(`ext4: ${checked} snapshot/volume files verified after 25 kills; states seen: ${[...kinds].join(', ')}; ${leaseFailures} copies refused for a volume open for writing`);
    expect(checked).toBeGreaterThan(10);
    expect(leaseFailures).toBeGreaterThan(0);
  }, 600_000);
});
