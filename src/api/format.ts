// Response formats (api.md, "Paths and formats"): a `.json`, `.yml` or `.yaml` suffix on the last
// path segment, or `Accept: application/yaml`, selects the body format. The suffix and the
// versioned prefix `/api/11.12` are taken off before routing, so one route table serves
// `/api/volume_snapshots`, `/api/volume_snapshots.yml` and `/api/11.12/volume_snapshots/snap-x.json`.

import type { FastifyReply, FastifyRequest } from 'fastify';
import type { IncomingMessage } from 'node:http';
import * as YAML from 'yaml';

export type BodyFormat = 'json' | 'yaml';

/** The dcmgr API version mussel puts in its paths. */
export const VERSIONED_PREFIX = '/api/11.12';

const SUFFIXES: ReadonlyArray<[string, BodyFormat]> = [
  ['.json', 'json'],
  ['.yml', 'yaml'],
  ['.yaml', 'yaml'],
];

const requestedFormat = new WeakMap<IncomingMessage, BodyFormat>();

export interface RoutedUrl {
  url: string;
  format: BodyFormat | null;
}

/** Strips the versioned prefix and a format suffix from a request URL (query string kept). */
export function routeUrl(rawUrl: string): RoutedUrl {
  const q = rawUrl.indexOf('?');
  let path = q === -1 ? rawUrl : rawUrl.slice(0, q);
  const query = q === -1 ? '' : rawUrl.slice(q);
  if (path === VERSIONED_PREFIX || path.startsWith(`${VERSIONED_PREFIX}/`)) {
    path = `/api${path.slice(VERSIONED_PREFIX.length)}`;
  }
  let format: BodyFormat | null = null;
  const lastSlash = path.lastIndexOf('/');
  for (const [suffix, fmt] of SUFFIXES) {
    // Only a suffix after a non-empty name: `/api/volume_snapshots/.json` stays as it is.
    if (path.endsWith(suffix) && path.length - suffix.length > lastSlash + 1) {
      path = path.slice(0, -suffix.length);
      format = fmt;
      break;
    }
  }
  return { url: path + query, format };
}

/** Fastify `rewriteUrl`: remembers the suffix's format for the reply. */
export function rewriteUrl(req: IncomingMessage): string {
  const { url, format } = routeUrl(req.url ?? '/');
  if (format) requestedFormat.set(req, format);
  return url;
}

const YAML_TYPES = /(^|[\s,])(application|text)\/(x-)?yaml\s*(;|,|$)/i;

/** The suffix wins; otherwise an Accept header naming YAML selects it; JSON by default. */
export function formatOf(req: IncomingMessage): BodyFormat {
  const bySuffix = requestedFormat.get(req);
  if (bySuffix) return bySuffix;
  const accept = req.headers.accept;
  return typeof accept === 'string' && YAML_TYPES.test(accept) ? 'yaml' : 'json';
}

/**
 * onSend hook: turns a JSON body into YAML when YAML was asked for. Working on the serialised
 * JSON (not the handler's object) covers every reply alike, errors and 404s included, and the
 * YAML parses back to exactly the data the JSON carries.
 */
export async function renderFormat(request: FastifyRequest, reply: FastifyReply, payload: unknown): Promise<unknown> {
  if (formatOf(request.raw) !== 'yaml' || typeof payload !== 'string') return payload;
  const type = String(reply.getHeader('content-type') ?? '');
  if (!type.startsWith('application/json')) return payload;
  let data: unknown;
  try {
    data = JSON.parse(payload);
  } catch {
    return payload;
  }
  reply.header('content-type', 'application/yaml; charset=utf-8');
  return YAML.stringify(data, { aliasDuplicateObjects: false });
}
