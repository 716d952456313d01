// What every volsnap command shares: the parsed command line, the nodes and client options,
// output on stdout/stderr (human or JSON), and how errors map to exit codes.
import { parseArgs } from 'node:util';

import { ApiCallError, EXIT, UnreachableError, UsageError, type ClientOptions } from './http';
import { printable } from './output';

export function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      node: { type: 'string', multiple: true },
      nodes: { type: 'string' },
      token: { type: 'string' },
      account: { type: 'string' },
      json: { type: 'boolean' },
      timeout: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      destination: { type: 'string' },
      name: { type: 'string' },
      wait: { type: 'boolean' },
      'poll-ms': { type: 'string' },
      'wait-timeout': { type: 'string' },
      'volume-id': { type: 'string' },
      state: { type: 'string' },
    },
  });
}

export type ParsedValues = ReturnType<typeof parse>['values'];

export interface Io {
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
  env: NodeJS.ProcessEnv;
}

export interface Ctx extends ClientOptions {
  nodes: string[];
  json: boolean;
  io: Io;
  values: ParsedValues;
}

export function positiveNumber(value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`${flag} must be a positive number, not '${value}'`);
  return n;
}

export function arg(positionals: string[], i: number, what: string, usage: string): string {
  const v = positionals[i];
  if (v === undefined || v === '') throw new UsageError(`missing ${what}; usage: volsnap ${usage}`);
  return v;
}

export function noMore(positionals: string[], n: number, usage: string): void {
  if (positionals.length > n) throw new UsageError(`unexpected argument '${positionals[n]}'; usage: volsnap ${usage}`);
}

export const print = (ctx: Ctx, text: string) => ctx.io.stdout.write(printable(text));
export const printJson = (ctx: Ctx, value: unknown) => ctx.io.stdout.write(JSON.stringify(value, null, 2) + '\n');

/** Prints per-node errors on stderr; the exit code they call for (unreachable over API errors). */
export function reportErrors(ctx: Ctx, errors: Error[]): number {
  let code: number = EXIT.ok;
  for (const e of errors) {
    printError(ctx, e);
    const c = exitCodeOf(e);
    if (c === EXIT.unreachable || code === EXIT.ok) code = c;
  }
  return code;
}

export function exitCodeOf(e: unknown): number {
  if (e instanceof UsageError || e instanceof ApiCallError || e instanceof UnreachableError) return e.exitCode;
  return EXIT.api;
}

export function printError(ctx: Ctx | { json: boolean; io: Io }, e: unknown): void {
  if (ctx.json) {
    const body =
      e instanceof ApiCallError || e instanceof UnreachableError
        ? e.toJSON()
        : { error: e instanceof UsageError ? 'UsageError' : 'Error', message: e instanceof Error ? e.message : String(e) };
    ctx.io.stderr.write(JSON.stringify(body) + '\n');
    return;
  }
  if (e instanceof ApiCallError) {
    ctx.io.stderr.write(printable(`volsnap: ${e.node}: ${e.error}${e.code ? ` (${e.code})` : ''}: ${e.message}`) + '\n');
  } else if (e instanceof UsageError) {
    ctx.io.stderr.write(`volsnap: ${e.message}\nTry 'volsnap --help'.\n`);
  } else {
    ctx.io.stderr.write(printable(`volsnap: ${e instanceof Error ? e.message : String(e)}`) + '\n');
  }
}
