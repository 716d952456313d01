// The volsnapd entry: arguments, configuration problems (exit 2, nothing touched), serving and a
// clean SIGTERM, and TLS with client certificates. Runs the compiled daemon (dist/, built by the
// test run's global setup) in child processes.
import { execFileSync, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

import { parseArgs } from '../src/main';
import { MAIN, spawnDaemon } from './helpers/daemon-process';

const haveMain = fs.existsSync(MAIN);
if (!haveMain) console.warn(`[volsnapd tests] skipping the daemon process tests: ${MAIN} is not built (run npm run build)`);
const haveOpenssl = spawnSync('openssl', ['version']).status === 0;
if (!haveOpenssl) console.warn('[volsnapd tests] skipping the TLS test: needs the openssl command');

const children: ChildProcess[] = [];
const dirs: string[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'volsnapd-main-'));
  dirs.push(dir);
  return dir;
}

function run(args: string[], cwd = tempDir()) {
  return spawnSync(process.execPath, [MAIN, ...args], { cwd, encoding: 'utf8', env: { ...process.env, VOLSNAPD_PORT: '' } });
}

async function serve(configFile: string) {
  const d = await spawnDaemon(configFile);
  children.push(d.child);
  return d;
}

describe('parseArgs', () => {
  it('reads --config FILE and --config=FILE, --help, --version; refuses anything else', () => {
    expect(parseArgs([])).toEqual({ run: 'serve' });
    expect(parseArgs(['--config', 'a.yml'])).toEqual({ run: 'serve', configPath: 'a.yml' });
    expect(parseArgs(['--config=a.yml'])).toEqual({ run: 'serve', configPath: 'a.yml' });
    expect(parseArgs(['--config', 'a.yml', '--help'])).toEqual({ run: 'help' });
    expect(parseArgs(['--version'])).toEqual({ run: 'version' });
    expect(parseArgs(['--config'])).toMatchObject({ run: 'usage-error' });
    expect(parseArgs(['--config', 'a', '--config', 'b'])).toMatchObject({ run: 'usage-error' });
    expect(parseArgs(['serve'])).toMatchObject({ run: 'usage-error', message: expect.stringContaining('serve') });
  });
});

describe.skipIf(!haveMain)('the volsnapd process', () => {
  it('prints help and version; a wrong argument is exit 2', () => {
    expect(run(['--help'])).toMatchObject({ status: 0, stdout: expect.stringContaining('Usage: volsnapd') });
    expect(run(['--version']).stdout).toMatch(/^volsnapd \d+\.\d+\.\d+\n$/);
    const bad = run(['--frobnicate']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('unknown argument: --frobnicate');
  });

  it('reports every configuration problem on its own line and exits 2 before creating anything', () => {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, 'volsnapd.yml'), 'node_id: BAD\nlisten: { port: 70000 }\nstate_dir: ./state\nvolumes_dir: ./volumes\nlog_level: loud\n');
    const r = run(['--config', path.join(dir, 'volsnapd.yml')], dir);
    expect(r.status).toBe(2);
    const lines = r.stderr.trim().split('\n');
    expect(lines.length).toBe(3);
    for (const line of lines) expect(line).toMatch(/^volsnapd: (node_id|listen\.port|log_level): /);
    expect(fs.readdirSync(dir)).toEqual(['volsnapd.yml']);
    const missing = run(['--config', path.join(dir, 'nope.yml')], dir);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain('nope.yml');
  });

  it('serves, and on SIGTERM closes the server and the engine and exits 0', async () => {
    const dir = tempDir();
    const config = path.join(dir, 'volsnapd.yml');
    fs.writeFileSync(config, 'node_id: sn-main0001\nlisten: { host: 127.0.0.1, port: 0 }\nstate_dir: ./state\nvolumes_dir: ./volumes\n');
    const { child, address, exited } = await serve(config);
    expect(address).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const node = await fetch(`${address}/api/storage_node`, { headers: { 'x-vdc-account-uuid': 'a-main0001' } });
    expect(node.status).toBe(200);
    expect(((await node.json()) as { id: string }).id).toBe('sn-main0001');
    expect(fs.existsSync(path.join(dir, 'state', 'catalog.sqlite'))).toBe(true);
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });

  it.skipIf(!haveOpenssl)('serves HTTPS and, with client_ca, only to clients with a certificate from that CA', async () => {
    const dir = tempDir();
    const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
    ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=test-ca', '-keyout', 'ca.key', '-out', 'ca.crt');
    fs.writeFileSync(path.join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1\n');
    for (const who of ['server', 'client']) {
      ssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${who}`, '-keyout', `${who}.key`, '-out', `${who}.csr`);
      ssl('x509', '-req', '-in', `${who}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-out', `${who}.crt`, ...(who === 'server' ? ['-extfile', 'san.ext'] : []));
    }
    const config = path.join(dir, 'volsnapd.yml');
    fs.writeFileSync(
      config,
      'listen: { host: 127.0.0.1, port: 0 }\nstate_dir: ./state\nvolumes_dir: ./volumes\n' +
        'tls: { cert: server.crt, key: server.key, client_ca: ca.crt }\n',
    );
    const { child, address, exited } = await serve(config);
    expect(address).toMatch(/^https:\/\//);
    const get = (withClientCert: boolean) =>
      new Promise<number>((resolve, reject) => {
        const req = https.get(
          `${address}/healthz`,
          {
            ca: fs.readFileSync(path.join(dir, 'ca.crt')),
            ...(withClientCert ? { cert: fs.readFileSync(path.join(dir, 'client.crt')), key: fs.readFileSync(path.join(dir, 'client.key')) } : {}),
          },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        );
        req.on('error', reject);
      });
    expect(await get(true)).toBe(200);
    await expect(get(false)).rejects.toThrow();
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
