// Small readers that check one configuration value each and, when it is wrong, record one
// problem naming the key: `jobs.concurrency: expected an integer between 1 and 64, got "abc"`.
// Readers return undefined for an absent or invalid value; the caller keeps its default, and the
// recorded problem stops loading anyway. They never throw and never touch the disk, except
// readYamlFile, which only reads.

import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { LineCounter, parseDocument } from 'yaml';

export class Problems {
  readonly list: string[] = [];

  add(key: string, message: string): void {
    this.list.push(key === '' ? message : `${key}: ${message}`);
  }

  get count(): number {
    return this.list.length;
  }
}

export type Mapping = Record<string, unknown>;

export function isMapping(value: unknown): value is Mapping {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** `auth` + `tokens` → `auth.tokens`; `` + `node_id` → `node_id`. */
export function keyPath(parent: string, child: string | number): string {
  if (typeof child === 'number') return `${parent}[${child}]`;
  return parent === '' ? child : `${parent}.${child}`;
}

/** How a wrong value is shown after "got": strings quoted (and cut short), containers by kind. */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  if (value === null || value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'a list';
  if (value instanceof Date) return `a date (${value.toISOString()})`;
  if (typeof value === 'object') return 'a mapping';
  return String(value);
}

/** For secrets: say what kind of value it was, never the value. */
function describeKind(value: unknown): string {
  if (value === null || value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'a list';
  return typeof value === 'object' ? 'a mapping' : `a ${typeof value}`;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length]!;
}

/**
 * The value as a mapping, with every key outside `allowed` reported (typo protection). Null
 * (a key written with nothing after it) counts as absent.
 */
export function readMapping(problems: Problems, key: string, value: unknown, allowed: readonly string[]): Mapping | undefined {
  if (value === undefined || value === null) return undefined;
  if (!isMapping(value)) {
    problems.add(key, `expected a mapping, got ${describeValue(value)}`);
    return undefined;
  }
  for (const name of Object.keys(value)) {
    if (allowed.includes(name)) continue;
    const near = allowed.find((a) => editDistance(a, name) <= 2);
    problems.add(keyPath(key, name), near === undefined ? 'unknown key' : `unknown key (did you mean "${near}"?)`);
  }
  return value;
}

export function readString(problems: Problems, key: string, value: unknown, options: { secret?: boolean } = {}): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') {
    problems.add(key, `expected a string, got ${options.secret ? describeKind(value) : describeValue(value)}`);
    return undefined;
  }
  return value;
}

export function readBoolean(problems: Problems, key: string, value: unknown): boolean | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'boolean') {
    problems.add(key, `expected true or false, got ${describeValue(value)}`);
    return undefined;
  }
  return value;
}

/** Accepts a number, or (for environment variables) a string of decimal digits. */
export function readInteger(problems: Problems, key: string, value: unknown, min: number, max: number): number | undefined {
  if (value === undefined || value === null) return undefined;
  const n = typeof value === 'string' && /^[0-9]+$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
    problems.add(key, `expected an integer between ${min} and ${max}, got ${describeValue(value)}`);
    return undefined;
  }
  return n;
}

export function readNumber(problems: Problems, key: string, value: unknown, min: number, max: number, unit: string): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    problems.add(key, `expected a number of ${unit} between ${min} and ${max}, got ${describeValue(value)}`);
    return undefined;
  }
  return value;
}

export function readChoice<T extends string>(problems: Problems, key: string, value: unknown, choices: readonly T[]): T | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || !(choices as readonly string[]).includes(value)) {
    problems.add(key, `expected one of ${choices.join(', ')}, got ${describeValue(value)}`);
    return undefined;
  }
  return value as T;
}

/** `what` completes "expected ...", e.g. `a node id like "sn-local0001" (pattern ^sn-[a-z0-9]{1,64}$)`. */
export function readMatching(problems: Problems, key: string, value: unknown, pattern: RegExp, what: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || !pattern.test(value)) {
    problems.add(key, `expected ${what}, got ${describeValue(value)}`);
    return undefined;
  }
  return value;
}

/** A file or directory path; relative ones resolve against `baseDir`. */
export function readPath(problems: Problems, key: string, value: unknown, baseDir: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || value === '' || value.includes('\0')) {
    problems.add(key, `expected a path, got ${describeValue(value)}`);
    return undefined;
  }
  return path.resolve(baseDir, value);
}

const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** An IP address (v4 or v6, no brackets) or a host name. */
export function readHost(problems: Problems, key: string, value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || (net.isIP(value) === 0 && !HOSTNAME.test(value))) {
    problems.add(key, `expected an IP address or host name, got ${describeValue(value)}`);
    return undefined;
  }
  return value;
}

const LOOPBACK = new net.BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/** 127.0.0.0/8, ::1 (any spelling, IPv4-mapped included) and `localhost`. */
export function isLoopbackHost(host: string): boolean {
  if (host.toLowerCase() === 'localhost') return true;
  const family = net.isIP(host);
  if (family === 4) return LOOPBACK.check(host, 'ipv4');
  if (family === 6) return LOOPBACK.check(host, 'ipv6');
  return false;
}

/** "no such file or directory (ENOENT)" from a Node fs error. */
export function fsReason(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  const text = /^[A-Z0-9_]+: ([^,]*)/.exec(e?.message ?? '')?.[1] ?? String(e?.message ?? err);
  return e?.code ? `${text} (${e.code})` : text;
}

/**
 * Reads and parses one YAML file. Unreadable file or invalid YAML: one problem (with line and
 * column when the parser knows them) and `ok: false`. An empty file is `null`.
 */
export function readYamlFile(problems: Problems, file: string, what: string): { ok: true; value: unknown } | { ok: false } {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    problems.add(what, `cannot read ${file}: ${fsReason(err)}`);
    return { ok: false };
  }
  const lines = new LineCounter();
  const doc = parseDocument(text, { prettyErrors: false, lineCounter: lines, uniqueKeys: true });
  const error = doc.errors[0];
  if (error !== undefined) {
    const { line, col } = lines.linePos(error.pos[0]);
    problems.add('', `${file}:${line}:${col}: invalid YAML: ${error.message}`);
    return { ok: false };
  }
  try {
    return { ok: true, value: doc.toJS({ maxAliasCount: 100 }) };
  } catch (err) {
    problems.add('', `${file}: invalid YAML: ${err instanceof Error ? err.message : String(err)}`);
    return { ok: false };
  }
}
