import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, defaultConfig, ensureDirectories, loadConfig, type Config } from '../src/config';

const TOKEN_A = 'tok-aaaaaaaaaaaaaaaa';
const TOKEN_B = 'tok-bbbbbbbbbbbbbbbb';

let tmp: string;

beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'volsnapd-config-'));
});

afterEach(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

function write(rel: string, text: string): string {
  const file = path.join(tmp, rel);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
  return file;
}

/** Every file and directory under tmp, to prove loading created nothing. */
function tree(): string[] {
  return (fs.readdirSync(tmp, { recursive: true }) as string[]).sort();
}

function problemsOf(run: () => unknown): string[] {
  try {
    run();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    const e = err as ConfigError;
    expect(e.message).toBe(e.problems.join('\n'));
    return e.problems;
  }
  throw new Error('expected a ConfigError');
}

const MINIMAL = 'state_dir: state\nvolumes_dir: volumes\n';

describe('defaults (no config file)', () => {
  it('put everything under <cwd>/var, listen on loopback, and create nothing', () => {
    const config = loadConfig({ cwd: tmp, env: {} });
    expect(config).toEqual<Config>({
      nodeId: 'sn-local0001',
      listen: { host: '127.0.0.1', port: 9001 },
      stateDir: path.join(tmp, 'var/state'),
      volumesDir: path.join(tmp, 'var/volumes'),
      destinations: [{ id: 'local', driver: 'local', displayName: 'Local Store', path: path.join(tmp, 'var/snapshots') }],
      jobs: { concurrency: 2, shutdownDeadlineMs: 30_000 },
      allowInconsistentCopy: false,
      auth: { tokens: [] },
      logLevel: 'info',
    });
    expect(config).toEqual(defaultConfig(tmp));
    expect(tree()).toEqual([]);
  });

  it('resolve a relative cwd', () => {
    const config = loadConfig({ cwd: path.relative(process.cwd(), tmp), env: {} });
    expect(config.stateDir).toBe(path.join(tmp, 'var/state'));
  });
});

describe('a config file', () => {
  it('reads every key', () => {
    write('etc/snapshot_repository.yml', [
      'local: { driver: local, display_name: "Local Store", path: /srv/volumes/.snapshots }',
      'backup: { driver: local, display_name: "Backup disk", path: /srv/backup/snapshots }',
    ].join('\n'));
    const file = write('etc/volsnapd.yml', `
node_id: sn-node42
listen: { host: 10.0.0.5, port: 19001 }
state_dir: /var/lib/volsnapd
volumes_dir: /srv/volumes
snapshot_repository: snapshot_repository.yml
jobs: { concurrency: 4, shutdown_deadline_seconds: 12.5 }
allow_inconsistent_copy: true
auth:
  tokens:
    - { token: "${TOKEN_A}", admin: true }
    - { token: "${TOKEN_B}", admin: false, account: a-tenant01 }
tls: { cert: /etc/volsnapd/tls/node.crt, key: /etc/volsnapd/tls/node.key, client_ca: /etc/volsnapd/tls/ca.crt }
log_level: debug
`);
    expect(loadConfig({ configPath: file, cwd: '/', env: {} })).toEqual<Config>({
      nodeId: 'sn-node42',
      listen: { host: '10.0.0.5', port: 19001 },
      stateDir: '/var/lib/volsnapd',
      volumesDir: '/srv/volumes',
      destinations: [
        { id: 'local', driver: 'local', displayName: 'Local Store', path: '/srv/volumes/.snapshots' },
        { id: 'backup', driver: 'local', displayName: 'Backup disk', path: '/srv/backup/snapshots' },
      ],
      jobs: { concurrency: 4, shutdownDeadlineMs: 12_500 },
      allowInconsistentCopy: true,
      auth: {
        tokens: [
          { token: TOKEN_A, admin: true },
          { token: TOKEN_B, admin: false, account: 'a-tenant01' },
        ],
      },
      tls: { cert: '/etc/volsnapd/tls/node.crt', key: '/etc/volsnapd/tls/node.key', clientCa: '/etc/volsnapd/tls/ca.crt' },
      logLevel: 'debug',
      configPath: file,
    });
    expect(tree()).toEqual(['etc', 'etc/snapshot_repository.yml', 'etc/volsnapd.yml']);
  });

  it('resolves relative paths against the config file, and repository paths against the repository file', () => {
    write('etc/repo/snapshot_repository.yml', 'local: { driver: local, display_name: L, path: ../../snaps }\nfar: { driver: local, display_name: F, path: /mnt/far }\n');
    write('etc/volsnapd.yml', [
      'state_dir: ../var/lib',
      'volumes_dir: volumes',
      'snapshot_repository: repo/snapshot_repository.yml',
      'tls: { cert: tls/c.pem, key: tls/k.pem }',
    ].join('\n'));
    const elsewhere = path.join(tmp, 'work');
    const config = loadConfig({ configPath: '../etc/volsnapd.yml', cwd: elsewhere, env: {} });
    expect(config.configPath).toBe(path.join(tmp, 'etc/volsnapd.yml'));
    expect(config.stateDir).toBe(path.join(tmp, 'var/lib'));
    expect(config.volumesDir).toBe(path.join(tmp, 'etc/volumes'));
    expect(config.destinations.map((d) => d.path)).toEqual([path.join(tmp, 'snaps'), '/mnt/far']);
    expect(config.tls).toEqual({ cert: path.join(tmp, 'etc/tls/c.pem'), key: path.join(tmp, 'etc/tls/k.pem') });
  });

  it('lists `local` first, then the file order; display_name defaults to the id', () => {
    write('repo.yml', [
      'zeta: { driver: local, path: z }',
      'backup: { driver: local, display_name: "Backup disk", path: b }',
      'local: { driver: local, display_name: "Local Store", path: l }',
      'alpha: { driver: local, display_name: "A", path: a }',
    ].join('\n'));
    const file = write('volsnapd.yml', `${MINIMAL}snapshot_repository: repo.yml\n`);
    const { destinations } = loadConfig({ configPath: file, cwd: tmp, env: {} });
    expect(destinations.map((d) => [d.id, d.displayName])).toEqual([
      ['local', 'Local Store'],
      ['zeta', 'zeta'],
      ['backup', 'Backup disk'],
      ['alpha', 'A'],
    ]);
  });

  it('without snapshot_repository, keeps one `local` destination in <volumes_dir>/.snapshots', () => {
    const file = write('volsnapd.yml', MINIMAL);
    const config = loadConfig({ configPath: file, cwd: '/', env: {} });
    expect(config.destinations).toEqual([{ id: 'local', driver: 'local', displayName: 'Local Store', path: path.join(tmp, 'volumes/.snapshots') }]);
    expect(config.nodeId).toBe('sn-local0001');
    expect(config.listen).toEqual({ host: '127.0.0.1', port: 9001 });
    expect(tree()).toEqual(['volsnapd.yml']);
  });

  it('requires state_dir and volumes_dir (from the file or the environment)', () => {
    const file = write('volsnapd.yml', 'log_level: info\n');
    expect(problemsOf(() => loadConfig({ configPath: file, env: {} }))).toEqual([
      'state_dir: required when a config file is given (or set VOLSNAPD_STATE_DIR)',
      'volumes_dir: required when a config file is given (or set VOLSNAPD_VOLUMES_DIR)',
    ]);
    const config = loadConfig({ configPath: file, cwd: tmp, env: { VOLSNAPD_STATE_DIR: '/s', VOLSNAPD_VOLUMES_DIR: 'v' } });
    expect([config.stateDir, config.volumesDir]).toEqual(['/s', path.join(tmp, 'v')]);
    expect(config.destinations[0]!.path).toBe(path.join(tmp, 'v/.snapshots'));
  });

  it('treats an empty file and keys left empty as absent', () => {
    const empty = write('empty.yml', '');
    expect(problemsOf(() => loadConfig({ configPath: empty, env: {} }))).toHaveLength(2);
    const file = write('volsnapd.yml', `${MINIMAL}auth:\ntls:\nlisten:\njobs:\n`);
    const config = loadConfig({ configPath: file, env: {} });
    expect(config.auth.tokens).toEqual([]);
    expect(config.tls).toBeUndefined();
    expect(config.jobs.concurrency).toBe(2);
  });

  it('loads the shipped production examples as they are', () => {
    const dir = path.resolve(__dirname, '../systemd');
    const config = loadConfig({ configPath: path.join(dir, 'volsnapd.yml'), cwd: tmp, env: {} });
    expect(config).toEqual<Config>({
      nodeId: 'sn-local0001',
      listen: { host: '127.0.0.1', port: 9001 },
      stateDir: '/var/lib/volsnapd',
      volumesDir: '/srv/volumes',
      destinations: [{ id: 'local', driver: 'local', displayName: 'Local Store', path: '/srv/volumes/.snapshots' }],
      jobs: { concurrency: 2, shutdownDeadlineMs: 30_000 },
      allowInconsistentCopy: false,
      auth: { tokens: [] },
      logLevel: 'info',
      configPath: path.join(dir, 'volsnapd.yml'),
    });
  });
});

describe('environment overrides', () => {
  const env = {
    VOLSNAPD_NODE_ID: 'sn-fromenv1',
    VOLSNAPD_HOST: '::1',
    VOLSNAPD_PORT: '0',
    VOLSNAPD_STATE_DIR: 'st',
    VOLSNAPD_VOLUMES_DIR: '/data/volumes',
    VOLSNAPD_LOG_LEVEL: 'trace',
  };

  it('override the defaults; relative directories resolve against the working directory', () => {
    const config = loadConfig({ cwd: tmp, env });
    expect(config.nodeId).toBe('sn-fromenv1');
    expect(config.listen).toEqual({ host: '::1', port: 0 });
    expect(config.stateDir).toBe(path.join(tmp, 'st'));
    expect(config.volumesDir).toBe('/data/volumes');
    expect(config.logLevel).toBe('trace');
    expect(config.destinations[0]!.path).toBe(path.join(tmp, 'var/snapshots'));
  });

  it('override the file, one by one', () => {
    const file = write('etc/volsnapd.yml', `node_id: sn-file\nlisten: { host: 127.0.0.2, port: 9100 }\nstate_dir: s\nvolumes_dir: v\nlog_level: warn\n`);
    const base = loadConfig({ configPath: file, cwd: tmp, env: {} });
    expect(base).toMatchObject({ nodeId: 'sn-file', listen: { host: '127.0.0.2', port: 9100 }, logLevel: 'warn' });
    const cases: [keyof typeof env, (c: Config) => unknown, unknown][] = [
      ['VOLSNAPD_NODE_ID', (c) => c.nodeId, 'sn-fromenv1'],
      ['VOLSNAPD_HOST', (c) => c.listen, { host: '::1', port: 9100 }],
      ['VOLSNAPD_PORT', (c) => c.listen, { host: '127.0.0.2', port: 0 }],
      ['VOLSNAPD_STATE_DIR', (c) => c.stateDir, path.join(tmp, 'st')],
      ['VOLSNAPD_VOLUMES_DIR', (c) => [c.volumesDir, c.destinations[0]!.path], ['/data/volumes', '/data/volumes/.snapshots']],
      ['VOLSNAPD_LOG_LEVEL', (c) => c.logLevel, 'trace'],
    ];
    for (const [name, pick, expected] of cases) {
      const config = loadConfig({ configPath: file, cwd: tmp, env: { [name]: env[name] } });
      expect(pick(config), name).toEqual(expected);
      expect(config.nodeId === base.nodeId || name === 'VOLSNAPD_NODE_ID').toBe(true);
    }
  });

  it('ignore empty variables, and name the variable when its value is wrong', () => {
    expect(loadConfig({ cwd: tmp, env: { VOLSNAPD_PORT: '', VOLSNAPD_HOST: '' } }).listen).toEqual({ host: '127.0.0.1', port: 9001 });
    expect(
      problemsOf(() =>
        loadConfig({
          cwd: tmp,
          env: {
            VOLSNAPD_NODE_ID: 'node1',
            VOLSNAPD_HOST: 'bad host',
            VOLSNAPD_PORT: 'abc',
            VOLSNAPD_STATE_DIR: 'a\0b',
            VOLSNAPD_LOG_LEVEL: 'verbose',
          },
        }),
      ),
    ).toEqual([
      'VOLSNAPD_NODE_ID: expected a node id like "sn-local0001" (sn- then lowercase letters or digits), got "node1"',
      'VOLSNAPD_HOST: expected an IP address or host name, got "bad host"',
      'VOLSNAPD_PORT: expected an integer between 0 and 65535, got "abc"',
      'VOLSNAPD_STATE_DIR: expected a path, got "a\\u0000b"',
      'VOLSNAPD_LOG_LEVEL: expected one of fatal, error, warn, info, debug, trace, silent, got "verbose"',
    ]);
    expect(problemsOf(() => loadConfig({ cwd: tmp, env: { VOLSNAPD_PORT: '65536' } }))).toEqual([
      'VOLSNAPD_PORT: expected an integer between 0 and 65535, got "65536"',
    ]);
    expect(problemsOf(() => loadConfig({ cwd: tmp, env: { VOLSNAPD_PORT: '-1' } }))).toHaveLength(1);
  });
});

describe('invalid configuration', () => {
  it('reports every problem in the file at once, one message each, naming the key', () => {
    const file = write('volsnapd.yml', `
node_id: SN-1
lisen: { port: 1 }
listen: { host: 127.0.0.1, port: 70000, ssl: true }
state_dir: ""
volumes_dir: [a]
jobs: { concurrency: abc, shutdown_deadline_seconds: -1 }
allow_inconsistent_copy: yes
auth:
  tokens:
    - { token: short, admin: true }
    - { token: "${TOKEN_A}", admin: "no" }
    - { token: "${TOKEN_A}", account: A-x }
    - "${TOKEN_B}"
    - { admin: true }
    - { token: "has space in it and more" }
tls: { key: k.pem, client_ca: 5 }
log_level: verbose
destinations: {}
`);
    expect(problemsOf(() => loadConfig({ configPath: file, env: {} }))).toEqual([
      'lisen: unknown key (did you mean "listen"?)',
      'destinations: unknown key',
      'node_id: expected a node id like "sn-local0001" (sn- then lowercase letters or digits), got "SN-1"',
      'listen.ssl: unknown key',
      'listen.port: expected an integer between 0 and 65535, got 70000',
      'jobs.concurrency: expected an integer between 1 and 64, got "abc"',
      'jobs.shutdown_deadline_seconds: expected a number of seconds between 0 and 3600, got -1',
      'allow_inconsistent_copy: expected true or false, got "yes"',
      'log_level: expected one of fatal, error, warn, info, debug, trace, silent, got "verbose"',
      'auth.tokens[0].token: expected 16 to 4096 characters, got 5',
      'auth.tokens[1].admin: expected true or false, got "no"',
      'auth.tokens[2].account: expected an account id like "a-shpoolxx" (a- then lowercase letters or digits), got "A-x"',
      'auth.tokens[2].token: same token as auth.tokens[1].token',
      'auth.tokens[3]: expected a mapping { token, admin, account }, got a string',
      'auth.tokens[4].token: required',
      'auth.tokens[5].token: may contain only letters, digits and - . _ ~ + / (then = padding), to be sent as a bearer token',
      'tls.client_ca: expected a path, got 5',
      'tls.cert: required when tls is set (with tls.key)',
      'state_dir: expected a path, got ""',
      'volumes_dir: expected a path, got a list',
    ]);
  });

  it('never quotes a token in a message', () => {
    const file = write('volsnapd.yml', `${MINIMAL}auth: { tokens: [ { token: 12345678901234567890 }, { token: sec } ] }\n`);
    const problems = problemsOf(() => loadConfig({ configPath: file, env: {} }));
    expect(problems).toEqual(['auth.tokens[0].token: expected a string, got a number', 'auth.tokens[1].token: expected 16 to 4096 characters, got 3']);
    expect(problems.join('\n')).not.toMatch(/sec|1234/);
  });

  it('reports invalid YAML once, with file, line and column', () => {
    const file = write('volsnapd.yml', 'node_id: sn-a\nlisten: { host: 127.0.0.1\nlog_level: info\n');
    const problems = problemsOf(() => loadConfig({ configPath: file, env: { VOLSNAPD_PORT: 'abc' } }));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(new RegExp(`^${file}:3:1: invalid YAML: `));
    const dup = write('dup.yml', 'state_dir: a\nstate_dir: b\n');
    expect(problemsOf(() => loadConfig({ configPath: dup, env: {} }))).toEqual([`${dup}:2:1: invalid YAML: Map keys must be unique`]);
  });

  it('reports a missing config file', () => {
    expect(problemsOf(() => loadConfig({ configPath: 'nope.yml', cwd: tmp, env: {} }))).toEqual([
      `config: cannot read ${path.join(tmp, 'nope.yml')}: no such file or directory (ENOENT)`,
    ]);
  });

  it('rejects a top level that is not a mapping', () => {
    const file = write('volsnapd.yml', '- a\n- b\n');
    expect(problemsOf(() => loadConfig({ configPath: file, env: {} }))[0]).toBe(`${file}: expected a mapping of settings at the top level, got a list`);
  });
});

describe('snapshot_repository.yml problems', () => {
  function repoProblems(repo: string | null): string[] {
    if (repo !== null) write('etc/snapshot_repository.yml', repo);
    const file = write('etc/volsnapd.yml', `${MINIMAL}snapshot_repository: snapshot_repository.yml\n`);
    return problemsOf(() => loadConfig({ configPath: file, env: {} }));
  }

  it('names the file, the destination and the key', () => {
    expect(
      repoProblems([
        'local: { driver: local, display_name: "Local Store", path: /srv/a }',
        'backup: { driver: s3, display_name: "S3", bucket: b }',
        'nodriver: { path: /srv/b }',
        'nopath: { driver: local, display_name: "No path" }',
        'typo: { driver: local, pth: /srv/c, path: /srv/d }',
        'same: { driver: local, path: /srv/a }',
        'Bad Key: { driver: local, path: /srv/e }',
        'flat: /srv/f',
        'noname: { driver: local, display_name: "", path: /srv/g }',
      ].join('\n')),
    ).toEqual([
      'snapshot_repository.yml: backup.driver: unsupported driver "s3" (only "local")',
      'snapshot_repository.yml: nodriver.driver: required',
      'snapshot_repository.yml: nopath.path: required',
      'snapshot_repository.yml: typo.pth: unknown key (did you mean "path"?)',
      'snapshot_repository.yml: same.path: same directory as local.path (/srv/a)',
      'snapshot_repository.yml: Bad Key: not a valid destination id (lowercase letters, digits, "-" and "_", at most 64; pattern ^[a-z0-9][a-z0-9_-]{0,63}$)',
      'snapshot_repository.yml: flat: expected a mapping { driver, display_name, path }, got "/srv/f"',
      'snapshot_repository.yml: noname.display_name: expected a non-empty string',
    ]);
  });

  it('needs at least one destination', () => {
    expect(repoProblems('# nothing yet\n')).toEqual([
      'snapshot_repository.yml: expected a mapping of destination id to { driver, display_name, path }, got nothing',
    ]);
    expect(repoProblems('{}\n')).toEqual(['snapshot_repository.yml: no destinations defined']);
  });

  it('reports a missing file and invalid YAML', () => {
    expect(repoProblems(null)).toEqual([
      `snapshot_repository: cannot read ${path.join(tmp, 'etc/snapshot_repository.yml')}: no such file or directory (ENOENT)`,
    ]);
    const problems = repoProblems('local: { driver: local\n');
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(new RegExp(`^${path.join(tmp, 'etc/snapshot_repository.yml')}:\\d+:\\d+: invalid YAML: `));
  });
});

describe('listening beyond loopback', () => {
  const listenOn = (host: string, extra = ''): string => write('volsnapd.yml', `${MINIMAL}listen: { host: "${host}", port: 9001 }\n${extra}`);

  it('is refused without tokens or a client CA', () => {
    for (const host of ['0.0.0.0', '::', '10.1.2.3', 'storage1.example.com']) {
      expect(problemsOf(() => loadConfig({ configPath: listenOn(host), env: {} }))).toEqual([
        `listen.host: "${host}" is not a loopback address; refusing to listen on a non-loopback address without auth.tokens or tls.client_ca`,
      ]);
    }
    expect(problemsOf(() => loadConfig({ cwd: tmp, env: { VOLSNAPD_HOST: '0.0.0.0' } }))).toEqual([
      'VOLSNAPD_HOST: "0.0.0.0" is not a loopback address; refusing to listen on a non-loopback address without auth.tokens or tls.client_ca',
    ]);
  });

  it('is allowed with tokens or with mutual TLS', () => {
    expect(loadConfig({ configPath: listenOn('0.0.0.0', `auth: { tokens: [ { token: ${TOKEN_A}, admin: true } ] }\n`), env: {} }).listen.host).toBe('0.0.0.0');
    const mtls = loadConfig({ configPath: listenOn('::', 'tls: { cert: c.pem, key: k.pem, client_ca: ca.pem }\n'), env: {} });
    expect(mtls.tls?.clientCa).toBe(path.join(tmp, 'ca.pem'));
    // TLS without a client CA authenticates nobody
    expect(problemsOf(() => loadConfig({ configPath: listenOn('::', 'tls: { cert: c.pem, key: k.pem }\n'), env: {} }))).toHaveLength(1);
  });

  it('accepts every loopback spelling without auth', () => {
    for (const host of ['127.0.0.1', '127.8.9.10', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', 'localhost', 'LOCALHOST']) {
      expect(loadConfig({ configPath: listenOn(host), env: {} }).listen.host).toBe(host);
    }
  });
});

describe('ensureDirectories', () => {
  it('creates state, volumes and destination directories with restrictive modes, once', () => {
    const config = loadConfig({ cwd: tmp, env: {} });
    expect(tree()).toEqual([]);
    const created = ensureDirectories(config);
    expect(created).toEqual([config.stateDir, config.volumesDir, config.destinations[0]!.path]);
    const mode = (d: string): number => fs.statSync(d).mode & 0o777;
    const umask = process.umask();
    expect(mode(config.stateDir)).toBe(0o700 & ~umask);
    expect(mode(config.volumesDir)).toBe(0o750 & ~umask);
    expect(mode(config.destinations[0]!.path)).toBe(0o750 & ~umask);
    expect(ensureDirectories(config)).toEqual([]);
  });

  it('leaves existing directories alone and names the directory it cannot create', () => {
    const file = write('volsnapd.yml', 'state_dir: state\nvolumes_dir: volumes\n');
    fs.mkdirSync(path.join(tmp, 'state'), { mode: 0o755 });
    fs.chmodSync(path.join(tmp, 'state'), 0o755);
    write('volumes', 'a file where a directory should be');
    const config = loadConfig({ configPath: file, env: {} });
    expect(() => ensureDirectories(config)).toThrow(`cannot create volumes_dir directory ${path.join(tmp, 'volumes')}: file already exists (EEXIST)`);
    expect(fs.statSync(path.join(tmp, 'state')).mode & 0o777).toBe(0o755);
  });
});
