#!/usr/bin/env node
// volsnap: the operator's command line over the HTTP API of one storage node or several.
import * as fs from 'node:fs';

import { arg, exitCodeOf, noMore, parse, positiveNumber, print, printError, printJson, reportErrors, type Ctx, type Io, type ParsedValues } from './context';
import { cmdDoctor } from './doctor';
import { ApiCallError, EXIT, UsageError, call, locate, normaliseNode, onEach } from './http';
import { ProgressReporter, bytes, printable, shortTime, table } from './output';

export const DEFAULT_NODE = 'http://127.0.0.1:9001';

export const HELP = `volsnap: snapshots of raw volume files on volsnapd storage nodes

Usage: volsnap [options] <command> [arguments]

Commands:
  ls                         list snapshots (merged over all nodes, with a NODE column when several)
      [--state S] [--volume-id V] [--destination D]   filters
  show ID                    one snapshot's document
  create VOLUME --destination D [--name N] [--wait] [--poll-ms MS] [--wait-timeout SECONDS]
                             snapshot a volume (on the node that holds it); --wait follows it
                             until it is available or failed (a progress bar on a terminal)
  rm ID                      delete a snapshot
  restore SNAPSHOT [--volume-id V]
                             a new volume from an available snapshot (on the snapshot's node)
  doctor                     per node: destinations (filesystem, reflink, writable, free space)
                             and the catalog checked against the files (orphans, missing)

Options:
  --node URL                 a node's API (repeatable); default $VOLSNAP_NODE or ${DEFAULT_NODE}
  --nodes FILE               node URLs, one a line ('#' comments and blank lines ignored)
  --token T                  API token (Authorization: Bearer); default $VOLSNAP_TOKEN
  --account A                account id (X-VDC-Account-UUID); default $VOLSNAP_ACCOUNT
  --json                     machine-readable JSON on stdout (errors as JSON on stderr)
  --timeout SECONDS          per HTTP request (default 10; restore: 300, it waits for the copy)
  -h, --help                 this help

Exit codes:
  0  ok
  1  the API answered with an error (its name, code and message are printed)
  2  usage error (unknown command or option, missing argument)
  3  a node could not be reached
  4  create --wait: the snapshot ended failed (or was deleted, or --wait-timeout passed)
  5  doctor: a problem was found (orphan or missing files, a destination not writable)
`;

type Doc = Record<string, unknown> & { id: string; state: string };

function resolveNodes(values: ParsedValues, env: NodeJS.ProcessEnv): string[] {
  let raw: string[];
  if (values.node && values.node.length > 0) raw = values.node;
  else if (values.nodes !== undefined) {
    let text: string;
    try {
      text = fs.readFileSync(values.nodes, 'utf8');
    } catch (e) {
      throw new UsageError(`cannot read the nodes file '${values.nodes}': ${(e as Error).message}`);
    }
    raw = text
      .split('\n')
      .map((l) => l.replace(/#.*/, '').trim())
      .filter((l) => l !== '');
    if (raw.length === 0) throw new UsageError(`the nodes file '${values.nodes}' names no node`);
  } else if (env.VOLSNAP_NODE) raw = env.VOLSNAP_NODE.split(/[\s,]+/).filter((s) => s !== '');
  else raw = [DEFAULT_NODE];
  return [...new Set(raw.map(normaliseNode))];
}

const enc = encodeURIComponent;
function showText(doc: Record<string, unknown>, node?: string): string {
  const entries = Object.entries(doc);
  if (node) entries.unshift(['node', node]);
  const width = Math.max(...entries.map(([k]) => k.length));
  return entries.map(([k, v]) => `${k.padEnd(width)}  ${v === null || v === undefined ? '-' : typeof v === 'object' ? JSON.stringify(v) : String(v)}`).join('\n') + '\n';
}

// Index pages: [{owner_total, start, limit, results: [...]}] (dcmgr 11.12's one-element array).
interface IndexPage {
  owner_total: number;
  start: number;
  limit: number | null;
  results: Doc[];
}

async function cmdLs(ctx: Ctx, positionals: string[]): Promise<number> {
  noMore(positionals, 0, 'ls');
  const q = new URLSearchParams();
  if (ctx.values.state) q.set('state', ctx.values.state);
  if (ctx.values['volume-id']) q.set('volume_id', ctx.values['volume-id']);
  if (ctx.values.destination) q.set('destination', ctx.values.destination);
  const qs = q.size > 0 ? `?${q}` : '';
  const pages = await onEach(ctx.nodes, async (node) => {
    const body = await call<IndexPage[]>(node, 'GET', `/api/volume_snapshots${qs}`, ctx);
    const page = Array.isArray(body) ? body[0] : undefined;
    if (!page || !Array.isArray(page.results)) throw new ApiCallError(node, 200, 'BadResponse', undefined, 'the index is not [{owner_total, start, limit, results}]');
    return page;
  });
  const code = reportErrors(ctx, pages.map((p) => p.error).filter((e): e is Error => e !== undefined));
  const ok = pages.filter((p) => p.value !== undefined) as Array<{ node: string; value: IndexPage }>;
  if (ctx.json) {
    printJson(ctx, ok.map((p) => ({ node: p.node, ...p.value })));
    return code;
  }
  if (ok.length === 0) return code;
  const several = ctx.nodes.length > 1;
  const rows = ok
    .flatMap((p) => p.value.results.map((d) => ({ node: p.node, d })))
    .sort((a, b) => String(b.d.created_at ?? '').localeCompare(String(a.d.created_at ?? '')) || a.d.id.localeCompare(b.d.id))
    .map(({ node, d }) => [
      ...(several ? [node] : []),
      d.id,
      d.state,
      String(d.origin_volume_id ?? '-'),
      String(d.destination_id ?? '-'),
      typeof d.size === 'number' ? bytes(d.size * 1024 * 1024) : '-',
      String(d.method ?? '-'),
      bytes(d.exclusive_bytes as number | null),
      shortTime(d.created_at as string),
    ]);
  print(ctx, table([...(several ? ['NODE'] : []), 'ID', 'STATE', 'VOLUME', 'DEST', 'SIZE', 'METHOD', 'EXCLUSIVE', 'CREATED'], rows));
  return code;
}

function findSnapshot(ctx: Ctx, id: string): Promise<{ node: string; value: Doc }> {
  return locate(ctx.nodes, (node) => call<Doc>(node, 'GET', `/api/volume_snapshots/${enc(id)}`, ctx));
}

async function cmdShow(ctx: Ctx, positionals: string[]): Promise<number> {
  const id = arg(positionals, 0, 'the snapshot id', 'show ID');
  noMore(positionals, 1, 'show ID');
  const { node, value } = await findSnapshot(ctx, id);
  if (ctx.json) printJson(ctx, value);
  else print(ctx, showText(value, ctx.nodes.length > 1 ? node : undefined));
  return EXIT.ok;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function cmdCreate(ctx: Ctx, positionals: string[]): Promise<number> {
  const usage = 'create VOLUME --destination D [--name N] [--wait]';
  const volume = arg(positionals, 0, 'the volume id', usage);
  noMore(positionals, 1, usage);
  const destination = ctx.values.destination;
  if (!destination) throw new UsageError(`missing --destination; usage: volsnap ${usage}`);
  const pollMs = positiveNumber(ctx.values['poll-ms'], '--poll-ms', 500);
  const waitTimeoutMs = positiveNumber(ctx.values['wait-timeout'], '--wait-timeout', Infinity) * 1000;
  // The snapshot is taken on the node that holds the volume.
  const node = ctx.nodes.length === 1 ? ctx.nodes[0]! : (await locate(ctx.nodes, (n) => call(n, 'GET', `/api/volumes/${enc(volume)}`, ctx))).node;
  const body: Record<string, unknown> = { volume_id: volume, destination };
  if (ctx.values.name !== undefined) body.display_name = ctx.values.name;
  let doc = await call<Doc>(node, 'POST', '/api/volume_snapshots', ctx, body);
  if (!ctx.values.wait) {
    if (ctx.json) printJson(ctx, doc);
    else print(ctx, showText(doc, ctx.nodes.length > 1 ? node : undefined));
    return EXIT.ok;
  }
  const progress = new ProgressReporter(ctx.io.stderr);
  const until = Date.now() + waitTimeoutMs;
  let timedOut = false;
  try {
    for (;;) {
      progress.update(doc.id, doc.state, doc.state === 'available' ? 100 : Number(doc.progress ?? 0));
      if (doc.state !== 'creating' && doc.state !== 'registering') break;
      if (Date.now() >= until) {
        timedOut = true;
        break;
      }
      await sleep(pollMs);
      doc = await call<Doc>(node, 'GET', `/api/volume_snapshots/${enc(doc.id)}`, ctx);
    }
  } finally {
    progress.done();
  }
  if (ctx.json) printJson(ctx, doc);
  else print(ctx, showText(doc, ctx.nodes.length > 1 ? node : undefined));
  if (doc.state === 'available') return EXIT.ok;
  const why = timedOut ? `still ${doc.state} after --wait-timeout` : doc.state === 'failed' ? `failed: ${String(doc.error ?? 'no reason given')}` : `is ${doc.state}`;
  if (!ctx.json) ctx.io.stderr.write(printable(`volsnap: snapshot ${doc.id} ${why}`) + '\n');
  else ctx.io.stderr.write(JSON.stringify({ node, error: 'SnapshotNotAvailable', id: doc.id, state: doc.state, message: why }) + '\n');
  return EXIT.createFailed;
}

async function cmdRm(ctx: Ctx, positionals: string[]): Promise<number> {
  const id = arg(positionals, 0, 'the snapshot id', 'rm ID');
  noMore(positionals, 1, 'rm ID');
  const node = ctx.nodes.length === 1 ? ctx.nodes[0]! : (await findSnapshot(ctx, id)).node;
  const res = await call<string[]>(node, 'DELETE', `/api/volume_snapshots/${enc(id)}`, ctx);
  if (ctx.json) printJson(ctx, res);
  else print(ctx, `deleted ${Array.isArray(res) ? res.join(' ') : id}\n`);
  return EXIT.ok;
}

async function cmdRestore(ctx: Ctx, positionals: string[]): Promise<number> {
  const usage = 'restore SNAPSHOT [--volume-id V]';
  const id = arg(positionals, 0, 'the snapshot id', usage);
  noMore(positionals, 1, usage);
  const node = ctx.nodes.length === 1 ? ctx.nodes[0]! : (await findSnapshot(ctx, id)).node;
  const body: Record<string, unknown> = { snapshot_id: id };
  if (ctx.values['volume-id'] !== undefined) body.volume_id = ctx.values['volume-id'];
  // A restore answers when the volume is written: instant for a reflink, as long as the copy
  // otherwise. Without an explicit --timeout, wait as long as Node's fetch allows (5 minutes).
  const timeoutMs = ctx.values.timeout === undefined ? 300_000 : ctx.timeoutMs;
  const vol = await call<Record<string, unknown>>(node, 'POST', '/api/volumes', { ...ctx, timeoutMs }, body);
  if (ctx.json) printJson(ctx, vol);
  else print(ctx, showText(vol, ctx.nodes.length > 1 ? node : undefined));
  return EXIT.ok;
}

const COMMANDS: Record<string, (ctx: Ctx, positionals: string[]) => Promise<number>> = {
  ls: cmdLs,
  list: cmdLs,
  show: cmdShow,
  create: cmdCreate,
  rm: cmdRm,
  delete: cmdRm,
  restore: cmdRestore,
  doctor: cmdDoctor,
};

/** Runs one command line; resolves with the exit code (never throws). */
export async function run(argv: string[], io: Io = { stdout: process.stdout, stderr: process.stderr, env: process.env }): Promise<number> {
  const wantsJson = argv.includes('--json');
  try {
    let parsed: ReturnType<typeof parse>;
    try {
      parsed = parse(argv);
    } catch (e) {
      throw new UsageError(e instanceof Error ? e.message : String(e));
    }
    const { values, positionals } = parsed;
    if (values.help || positionals[0] === 'help') {
      io.stdout.write(HELP);
      return EXIT.ok;
    }
    const command = positionals[0];
    if (command === undefined) throw new UsageError('missing command (ls, show, create, rm, restore, doctor)');
    const fn = COMMANDS[command];
    if (!fn) throw new UsageError(`unknown command '${command}'`);
    const ctx: Ctx = {
      nodes: resolveNodes(values, io.env),
      token: values.token ?? (io.env.VOLSNAP_TOKEN || undefined),
      account: values.account ?? (io.env.VOLSNAP_ACCOUNT || undefined),
      timeoutMs: positiveNumber(values.timeout, '--timeout', 10) * 1000,
      json: Boolean(values.json),
      io,
      values,
    };
    return await fn(ctx, positionals.slice(1));
  } catch (e) {
    printError({ json: wantsJson, io }, e);
    return exitCodeOf(e);
  }
}

if (require.main === module) {
  void run(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
