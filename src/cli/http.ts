// The CLI's HTTP side: one request to one node, and the three ways it can end badly, each with
// its exit code (the API said no; the arguments were wrong; the node could not be reached).

export const EXIT = {
  ok: 0,
  api: 1,
  usage: 2,
  unreachable: 3,
  createFailed: 4,
  doctorProblems: 5,
} as const;

export class UsageError extends Error {
  readonly exitCode = EXIT.usage;
}

/** The node answered with an error body ({error, message, code}) or something that is not the API. */
export class ApiCallError extends Error {
  readonly exitCode = EXIT.api;
  constructor(
    readonly node: string,
    readonly status: number,
    readonly error: string,
    readonly code: string | undefined,
    message: string,
  ) {
    super(message);
  }
  toJSON(): Record<string, unknown> {
    return { node: this.node, status: this.status, error: this.error, code: this.code ?? null, message: this.message };
  }
}

export class UnreachableError extends Error {
  readonly exitCode = EXIT.unreachable;
  constructor(
    readonly node: string,
    message: string,
  ) {
    super(message);
  }
  toJSON(): Record<string, unknown> {
    return { node: this.node, error: 'Unreachable', message: this.message };
  }
}

export interface ClientOptions {
  token?: string;
  account?: string;
  timeoutMs: number;
}

/** One node's base URL without a trailing slash; refuses what is not http(s). */
export function normaliseNode(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new UsageError(`not a URL: '${url}'`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new UsageError(`not an http(s) URL: '${url}'`);
  return u.toString().replace(/\/+$/, '');
}

export async function call<T = unknown>(
  node: string,
  method: 'GET' | 'POST' | 'DELETE',
  path: string,
  opts: ClientOptions,
  body?: Record<string, unknown>,
): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  if (opts.account) headers['x-vdc-account-uuid'] = opts.account;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res: Response;
  let text: string;
  try {
    res = await fetch(node + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(opts.timeoutMs),
    });
    text = await res.text();
  } catch (e) {
    const cause = e instanceof Error && e.cause instanceof Error ? e.cause : e;
    const code = cause instanceof Error ? (cause as { code?: unknown }).code : undefined;
    const why =
      cause instanceof Error && (cause.name === 'TimeoutError' || cause.name === 'AbortError')
        ? `no answer within ${opts.timeoutMs / 1000} s`
        : cause instanceof Error
          ? `${typeof code === 'string' ? code : cause.name}: ${cause.message}`
          : String(cause);
    throw new UnreachableError(node, `${node} is unreachable (${why})`);
  }
  let parsed: unknown;
  try {
    parsed = text === '' ? undefined : JSON.parse(text);
  } catch {
    throw new ApiCallError(node, res.status, 'BadResponse', undefined, `${method} ${path}: HTTP ${res.status}, not JSON: ${text.slice(0, 200)}`);
  }
  if (!res.ok) {
    const b = (parsed ?? {}) as { error?: unknown; message?: unknown; code?: unknown };
    throw new ApiCallError(
      node,
      res.status,
      typeof b.error === 'string' ? b.error : `HTTP${res.status}`,
      b.code === undefined || b.code === null ? undefined : String(b.code),
      typeof b.message === 'string' ? b.message : `${method} ${path}: HTTP ${res.status}`,
    );
  }
  return parsed as T;
}

/** Runs `fn` on every node at once; results in node order, each a value or the error. */
export async function onEach<T>(nodes: string[], fn: (node: string) => Promise<T>): Promise<Array<{ node: string; value?: T; error?: Error }>> {
  return Promise.all(
    nodes.map(async (node) => {
      try {
        return { node, value: await fn(node) };
      } catch (e) {
        return { node, error: e instanceof Error ? e : new Error(String(e)) };
      }
    }),
  );
}

/** Finds the node that knows a resource: the first node that answers 2xx. When none does, the
 *  most telling error: another API error over a not-found, an unreachable node over a not-found
 *  (the resource may be there), and a not-found when every node said so. */
export async function locate<T>(nodes: string[], get: (node: string) => Promise<T>): Promise<{ node: string; value: T }> {
  const all = await onEach(nodes, get);
  const found = all.find((r) => r.error === undefined);
  if (found) return { node: found.node, value: found.value as T };
  const errors = all.map((r) => r.error!);
  const other = errors.find((e) => e instanceof ApiCallError && e.status !== 404) ?? errors.find((e) => !(e instanceof ApiCallError));
  throw other ?? errors[0]!;
}
