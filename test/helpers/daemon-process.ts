// The compiled daemon (dist/src/main.js, built by the test run's global setup) as a child process.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

// From test/helpers (vitest) or dist/test/helpers (the compiled bench) up to the package root.
function packageRoot(): string {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'binding.gyp'))) dir = path.dirname(dir);
  return dir;
}

export const MAIN = path.join(packageRoot(), 'dist', 'src', 'main.js');

export interface DaemonProcess {
  child: ChildProcess;
  address: string;
  exited: Promise<number | null>;
  /** Everything the daemon wrote so far (JSON log lines). */
  output(): string;
}

/** Starts `volsnapd --config FILE` and resolves once it logs that it listens. */
export function spawnDaemon(configFile: string, env: NodeJS.ProcessEnv = {}): Promise<DaemonProcess> {
  const child = spawn(process.execPath, [MAIN, '--config', configFile], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`no listening line within 60 s:\n${out.slice(-4000)}`));
    }, 60_000);
    let listening = false;
    const onData = (chunk: Buffer): void => {
      out += String(chunk);
      if (listening) return;
      for (const line of out.split('\n')) {
        try {
          const entry = JSON.parse(line) as { address?: string; msg?: string };
          if (entry.address && entry.msg?.startsWith('volsnapd listening')) {
            listening = true;
            clearTimeout(timer);
            resolve({ child, address: entry.address, exited, output: () => out });
            return;
          }
        } catch {
          // not a whole JSON line yet
        }
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => {
      if (!listening) reject(new Error(`exited ${code} before listening:\n${out}`));
    });
  });
}
