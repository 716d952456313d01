// volsnapd's configuration: one YAML file (design.md, "Configuration"), the Wakame-shaped
// snapshot_repository.yml it points to, and a few per-host environment overrides.
//
// Where paths come from:
// - Without a config file, everything lives under `<cwd>/var` (state, volumes, snapshots), so a
//   fresh checkout runs without root.
// - With a config file, relative paths in it resolve against the file's directory, and relative
//   paths in snapshot_repository.yml against that file's directory. state_dir and volumes_dir are
//   then required (in the file or the environment): they locate the catalog and the volumes, and
//   a silent default could start a second, empty catalog beside the real one. When
//   snapshot_repository is absent, the single `local` destination is `<volumes_dir>/.snapshots`:
//   derived from a required key, and on the volumes' filesystem, so snapshots are reflinks.
// - VOLSNAPD_STATE_DIR / VOLSNAPD_VOLUMES_DIR, when relative, resolve against the working
//   directory, like any path typed in a shell. An empty variable counts as unset.
//
// loadConfig only reads; ensureDirectories (called by the daemon) creates what is missing.

import fs from 'node:fs';
import path from 'node:path';
import { DESTINATION_ID_PATTERN, DESTINATION_ID_RE, ACCOUNT_ID_RE, NODE_ID_RE } from './ids';
import {
  Problems,
  fsReason,
  isLoopbackHost,
  isMapping,
  keyPath,
  readBoolean,
  readChoice,
  readHost,
  readInteger,
  readMapping,
  readMatching,
  readNumber,
  readPath,
  readString,
  readYamlFile,
  describeValue,
} from './config-schema';

export interface Destination {
  id: string;
  driver: 'local';
  displayName: string;
  /** absolute */
  path: string;
}

export interface ApiToken {
  token: string;
  admin: boolean;
  account?: string;
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface Config {
  nodeId: string;
  listen: { host: string; port: number };
  /** absolute; catalog.sqlite lives here */
  stateDir: string;
  /** absolute; one raw image file per volume */
  volumesDir: string;
  /** 'local' first when present, then in file order */
  destinations: Destination[];
  jobs: { concurrency: number; shutdownDeadlineMs: number };
  allowInconsistentCopy: boolean;
  auth: { tokens: ApiToken[] };
  /** absolute paths */
  tls?: { cert: string; key: string; clientCa?: string };
  logLevel: LogLevel;
  /** absolute; absent when running on the built-in defaults */
  configPath?: string;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
    this.name = 'ConfigError';
  }
}

export const ENV = {
  nodeId: 'VOLSNAPD_NODE_ID',
  host: 'VOLSNAPD_HOST',
  port: 'VOLSNAPD_PORT',
  stateDir: 'VOLSNAPD_STATE_DIR',
  volumesDir: 'VOLSNAPD_VOLUMES_DIR',
  logLevel: 'VOLSNAPD_LOG_LEVEL',
} as const;

const MAX_CONCURRENCY = 64;
const MAX_SHUTDOWN_DEADLINE_SECONDS = 3600;
const MIN_TOKEN_LENGTH = 16;
const MAX_TOKEN_LENGTH = 4096;
/** RFC 6750 b64token: what can follow "Authorization: Bearer ". */
const BEARER_TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;
const NODE_ID_WHAT = 'a node id like "sn-local0001" (sn- then lowercase letters or digits)';
const ACCOUNT_ID_WHAT = 'an account id like "a-shpoolxx" (a- then lowercase letters or digits)';

const TOP_KEYS = [
  'node_id',
  'listen',
  'state_dir',
  'volumes_dir',
  'snapshot_repository',
  'jobs',
  'allow_inconsistent_copy',
  'auth',
  'tls',
  'log_level',
] as const;
const DESTINATION_KEYS = ['driver', 'display_name', 'path'] as const;
export const DEFAULT_DESTINATION_ID = 'local';
const DEFAULT_DISPLAY_NAME = 'Local Store';

/** The built-in configuration: everything under `<cwd>/var`, loopback only, no tokens, no TLS. */
export function defaultConfig(cwd: string): Config {
  const base = path.resolve(cwd, 'var');
  return {
    nodeId: 'sn-local0001',
    listen: { host: '127.0.0.1', port: 9001 },
    stateDir: path.join(base, 'state'),
    volumesDir: path.join(base, 'volumes'),
    destinations: [{ id: DEFAULT_DESTINATION_ID, driver: 'local', displayName: DEFAULT_DISPLAY_NAME, path: path.join(base, 'snapshots') }],
    jobs: { concurrency: 2, shutdownDeadlineMs: 30_000 },
    allowInconsistentCopy: false,
    auth: { tokens: [] },
    logLevel: 'info',
  };
}

export interface LoadConfigOptions {
  /** `--config FILE`; relative to cwd. Absent: the built-in defaults. */
  configPath?: string;
  /** Default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Default process.cwd(). */
  cwd?: string;
}

/** Reads, validates and resolves the configuration. Throws ConfigError listing every problem. */
export function loadConfig(options: LoadConfigOptions = {}): Config {
  const cwd = path.resolve(options.cwd ?? process.cwd());
  const env = options.env ?? process.env;
  const problems = new Problems();
  const config = defaultConfig(cwd);
  // Where listen.host came from, to name it in the loopback refusal.
  let hostKey = 'listen.host';

  let fromFile: FileSettings = { given: new Set() };
  if (options.configPath !== undefined) {
    const file = path.resolve(cwd, options.configPath);
    config.configPath = file;
    const parsed = readYamlFile(problems, file, 'config');
    // An unreadable file is the one problem worth reporting; keys it lacks would only be noise.
    if (!parsed.ok) throw new ConfigError(problems.list);
    fromFile = readConfigFile(problems, parsed.value, file, config);
  }

  const envValue = (name: string): string | undefined => {
    const value = env[name];
    return value === undefined || value === '' ? undefined : value;
  };
  config.nodeId = readMatching(problems, ENV.nodeId, envValue(ENV.nodeId), NODE_ID_RE, NODE_ID_WHAT) ?? config.nodeId;
  const envHost = readHost(problems, ENV.host, envValue(ENV.host));
  if (envHost !== undefined) {
    config.listen.host = envHost;
    hostKey = ENV.host;
  }
  config.listen.port = readInteger(problems, ENV.port, envValue(ENV.port), 0, 65535) ?? config.listen.port;
  const envStateDir = readPath(problems, ENV.stateDir, envValue(ENV.stateDir), cwd);
  const envVolumesDir = readPath(problems, ENV.volumesDir, envValue(ENV.volumesDir), cwd);
  config.logLevel = readChoice(problems, ENV.logLevel, envValue(ENV.logLevel), LOG_LEVELS) ?? config.logLevel;

  if (options.configPath !== undefined) {
    if (!fromFile.given.has('state_dir') && envValue(ENV.stateDir) === undefined) {
      problems.add('state_dir', `required when a config file is given (or set ${ENV.stateDir})`);
    }
    if (!fromFile.given.has('volumes_dir') && envValue(ENV.volumesDir) === undefined) {
      problems.add('volumes_dir', `required when a config file is given (or set ${ENV.volumesDir})`);
    }
  }
  config.stateDir = envStateDir ?? fromFile.stateDir ?? config.stateDir;
  config.volumesDir = envVolumesDir ?? fromFile.volumesDir ?? config.volumesDir;
  if (options.configPath !== undefined && !fromFile.given.has('snapshot_repository')) {
    config.destinations = [
      { id: DEFAULT_DESTINATION_ID, driver: 'local', displayName: DEFAULT_DISPLAY_NAME, path: path.join(config.volumesDir, '.snapshots') },
    ];
  }

  if (!isLoopbackHost(config.listen.host) && config.auth.tokens.length === 0 && config.tls?.clientCa === undefined) {
    problems.add(
      hostKey,
      `${describeValue(config.listen.host)} is not a loopback address; ` +
        'refusing to listen on a non-loopback address without auth.tokens or tls.client_ca',
    );
  }

  if (problems.count > 0) throw new ConfigError(problems.list);
  return config;
}

interface FileSettings {
  /** Top-level keys the file sets (to a value other than null). */
  given: Set<string>;
  stateDir?: string;
  volumesDir?: string;
}

/** Applies the main file's keys onto `config` (defaults already in place). */
function readConfigFile(problems: Problems, value: unknown, file: string, config: Config): FileSettings {
  const dir = path.dirname(file);
  if (value !== null && !isMapping(value)) {
    problems.add('', `${file}: expected a mapping of settings at the top level, got ${describeValue(value)}`);
    return { given: new Set() };
  }
  const top = readMapping(problems, '', value ?? {}, TOP_KEYS) ?? {};
  const given = new Set(Object.keys(top).filter((k) => top[k] !== null && top[k] !== undefined));

  config.nodeId = readMatching(problems, 'node_id', top.node_id, NODE_ID_RE, NODE_ID_WHAT) ?? config.nodeId;

  const listen = readMapping(problems, 'listen', top.listen, ['host', 'port']);
  if (listen !== undefined) {
    config.listen.host = readHost(problems, 'listen.host', listen.host) ?? config.listen.host;
    config.listen.port = readInteger(problems, 'listen.port', listen.port, 0, 65535) ?? config.listen.port;
  }

  const jobs = readMapping(problems, 'jobs', top.jobs, ['concurrency', 'shutdown_deadline_seconds']);
  if (jobs !== undefined) {
    config.jobs.concurrency = readInteger(problems, 'jobs.concurrency', jobs.concurrency, 1, MAX_CONCURRENCY) ?? config.jobs.concurrency;
    const seconds = readNumber(problems, 'jobs.shutdown_deadline_seconds', jobs.shutdown_deadline_seconds, 0, MAX_SHUTDOWN_DEADLINE_SECONDS, 'seconds');
    if (seconds !== undefined) config.jobs.shutdownDeadlineMs = Math.round(seconds * 1000);
  }

  config.allowInconsistentCopy = readBoolean(problems, 'allow_inconsistent_copy', top.allow_inconsistent_copy) ?? config.allowInconsistentCopy;
  config.logLevel = readChoice(problems, 'log_level', top.log_level, LOG_LEVELS) ?? config.logLevel;
  config.auth.tokens = readTokens(problems, top.auth);
  const tls = readTls(problems, top.tls, dir);
  if (tls !== undefined) config.tls = tls;

  const repositoryFile = readPath(problems, 'snapshot_repository', top.snapshot_repository, dir);
  if (repositoryFile !== undefined) {
    const label = String(top.snapshot_repository);
    config.destinations = readRepository(problems, repositoryFile, label) ?? config.destinations;
  }
  return {
    given,
    stateDir: readPath(problems, 'state_dir', top.state_dir, dir),
    volumesDir: readPath(problems, 'volumes_dir', top.volumes_dir, dir),
  };
}

function readTokens(problems: Problems, value: unknown): ApiToken[] {
  const auth = readMapping(problems, 'auth', value, ['tokens']);
  if (auth === undefined || auth.tokens === undefined || auth.tokens === null) return [];
  if (!Array.isArray(auth.tokens)) {
    problems.add('auth.tokens', `expected a list of { token, admin, account }, got ${describeValue(auth.tokens)}`);
    return [];
  }
  const tokens: ApiToken[] = [];
  const seen = new Map<string, string>();
  auth.tokens.forEach((entry: unknown, i: number) => {
    const key = keyPath('auth.tokens', i);
    if (!isMapping(entry)) {
      // A bare string here is most likely the token itself: do not echo it.
      problems.add(key, `expected a mapping { token, admin, account }, got ${typeof entry === 'string' ? 'a string' : describeValue(entry)}`);
      return;
    }
    readMapping(problems, key, entry, ['token', 'admin', 'account']);
    const token = readString(problems, `${key}.token`, entry.token, { secret: true });
    const admin = readBoolean(problems, `${key}.admin`, entry.admin) ?? false;
    const account = readMatching(problems, `${key}.account`, entry.account, ACCOUNT_ID_RE, ACCOUNT_ID_WHAT);
    if (token === undefined) {
      if (entry.token === undefined || entry.token === null) problems.add(`${key}.token`, 'required');
      return;
    }
    // Messages about a token never quote it: they end up in logs.
    if (token.length < MIN_TOKEN_LENGTH || token.length > MAX_TOKEN_LENGTH) {
      problems.add(`${key}.token`, `expected ${MIN_TOKEN_LENGTH} to ${MAX_TOKEN_LENGTH} characters, got ${token.length}`);
      return;
    }
    if (!BEARER_TOKEN.test(token)) {
      problems.add(`${key}.token`, 'may contain only letters, digits and - . _ ~ + / (then = padding), to be sent as a bearer token');
      return;
    }
    const first = seen.get(token);
    if (first !== undefined) {
      problems.add(`${key}.token`, `same token as ${first}.token`);
      return;
    }
    seen.set(token, key);
    tokens.push(account === undefined ? { token, admin } : { token, admin, account });
  });
  return tokens;
}

function readTls(problems: Problems, value: unknown, dir: string): Config['tls'] {
  const tls = readMapping(problems, 'tls', value, ['cert', 'key', 'client_ca']);
  if (tls === undefined) return undefined;
  const cert = readPath(problems, 'tls.cert', tls.cert, dir);
  const key = readPath(problems, 'tls.key', tls.key, dir);
  const clientCa = readPath(problems, 'tls.client_ca', tls.client_ca, dir);
  const given = (v: unknown): boolean => v !== undefined && v !== null;
  if (!given(tls.cert)) problems.add('tls.cert', 'required when tls is set (with tls.key)');
  if (!given(tls.key)) problems.add('tls.key', 'required when tls is set (with tls.cert)');
  if (cert === undefined || key === undefined) return undefined;
  return clientCa === undefined ? { cert, key } : { cert, key, clientCa };
}

/**
 * snapshot_repository.yml: destination id → { driver, display_name, path }. Problems are
 * prefixed with the file as the config names it. `local` comes first, then file order.
 */
function readRepository(problems: Problems, file: string, label: string): Destination[] | undefined {
  const parsed = readYamlFile(problems, file, 'snapshot_repository');
  if (!parsed.ok) return undefined;
  const dir = path.dirname(file);
  const at = (key: string, message: string): void => problems.add(`${label}: ${key}`, message);
  if (!isMapping(parsed.value)) {
    problems.add(label, `expected a mapping of destination id to { driver, display_name, path }, got ${describeValue(parsed.value)}`);
    return undefined;
  }
  const destinations: Destination[] = [];
  const byPath = new Map<string, string>();
  const before = problems.count;
  for (const [id, entry] of Object.entries(parsed.value)) {
    if (!DESTINATION_ID_RE.test(id)) {
      at(id, `not a valid destination id (lowercase letters, digits, "-" and "_", at most 64; pattern ${DESTINATION_ID_PATTERN})`);
      continue;
    }
    if (!isMapping(entry)) {
      at(id, `expected a mapping { driver, display_name, path }, got ${describeValue(entry)}`);
      continue;
    }
    const driver = readString(problems, `${label}: ${id}.driver`, entry.driver);
    if (driver === undefined) {
      if (entry.driver === undefined || entry.driver === null) at(`${id}.driver`, 'required');
      continue;
    }
    if (driver !== 'local') {
      at(`${id}.driver`, `unsupported driver ${describeValue(driver)} (only "local")`);
      continue;
    }
    readMapping(problems, `${label}: ${id}`, entry, DESTINATION_KEYS);
    const displayName = readString(problems, `${label}: ${id}.display_name`, entry.display_name);
    if (displayName === '') at(`${id}.display_name`, 'expected a non-empty string');
    const destPath = readPath(problems, `${label}: ${id}.path`, entry.path, dir);
    if (entry.path === undefined || entry.path === null) at(`${id}.path`, 'required');
    if (destPath === undefined) continue;
    const other = byPath.get(destPath);
    if (other !== undefined) {
      at(`${id}.path`, `same directory as ${other}.path (${destPath})`);
      continue;
    }
    byPath.set(destPath, id);
    destinations.push({ id, driver: 'local', displayName: displayName || id, path: destPath });
  }
  if (destinations.length === 0 && problems.count === before) problems.add(label, 'no destinations defined');
  const local = destinations.filter((d) => d.id === DEFAULT_DESTINATION_ID);
  return [...local, ...destinations.filter((d) => d.id !== DEFAULT_DESTINATION_ID)];
}

/**
 * Creates the state directory (0700: the catalog), the volumes directory and every destination
 * directory (0750) when missing; existing ones are left as they are. Returns the directories it
 * created. Called by the daemon at start-up, never by loadConfig.
 */
export function ensureDirectories(config: Config): string[] {
  const wanted: [string, string, number][] = [
    ['state_dir', config.stateDir, 0o700],
    ['volumes_dir', config.volumesDir, 0o750],
    ...config.destinations.map((d): [string, string, number] => [`destination ${d.id}`, d.path, 0o750]),
  ];
  const created: string[] = [];
  for (const [what, dir, mode] of wanted) {
    try {
      // Throws EEXIST when something other than a directory is in the way.
      if (fs.mkdirSync(dir, { recursive: true, mode }) !== undefined) created.push(dir);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      throw Object.assign(new Error(`cannot create ${what} directory ${dir}: ${fsReason(err)}`, { cause: err }), {
        code: e.code,
        path: dir,
      });
    }
  }
  return created;
}
