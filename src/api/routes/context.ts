// What every route plugin is given, and the parts of request handling the routes share.

import type { FastifyRequest } from 'fastify';
import type { Config } from '../../config';
import type { SnapshotEngine } from '../../snapshots/types';
import type { Caller } from '../auth';
import { ApiError } from '../errors';

export interface ApiContext {
  config: Config;
  engine: SnapshotEngine;
  /** ms since the epoch: the reference time for index's recently-deleted window. */
  clock: () => number;
  version: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the auth hook on every /api route; null elsewhere. */
    caller: Caller | null;
  }
}

export function callerOf(request: FastifyRequest): Caller {
  // Routes under /api always run the auth hook first; this guards against wiring mistakes.
  if (!request.caller) throw new Error('route reached without authentication');
  return request.caller;
}

/** The largest page index and volume lists serve (api.md: omitted limit = no limit). */
export const MAX_LIMIT = 1000;
/** Offsets beyond any plausible catalog; larger values are refused, not clamped. */
export const MAX_START = 2_147_483_647;

export const PAGING_QUERY_PROPERTIES = {
  start: { type: 'integer', minimum: 0, maximum: MAX_START, description: 'offset into the ordered list (default 0)' },
  limit: {
    type: 'integer',
    minimum: 1,
    maximum: MAX_LIMIT,
    description: `at most this many results (1..${MAX_LIMIT}); omitted: no limit, reported as null`,
  },
} as const;

/**
 * preValidation for start/limit: only plain decimal digits, given once. The schema's coercion alone
 * would read "0x10", "1e3" or " 7" as numbers; api.md wants anything but an integer refused.
 * Range checks (>= 0, >= 1, <= MAX_LIMIT) stay in the schema.
 */
export async function strictPaging(request: FastifyRequest): Promise<void> {
  const q = (request.query ?? {}) as Record<string, unknown>;
  for (const name of ['start', 'limit']) {
    const v = q[name];
    if (v === undefined) continue;
    if (typeof v !== 'string') throw new ApiError('InvalidParameter', `${name} must be given once, as a decimal integer`);
    if (/^[0-9]{1,16}$/.test(v)) continue;
    const shown = JSON.stringify(v.length > 32 ? `${v.slice(0, 32)}…` : v);
    throw new ApiError(
      'InvalidParameter',
      /^-[0-9]+$/.test(v)
        ? `${name} must be ${name === 'start' ? '>= 0' : '>= 1'}, got ${shown}`
        : `${name} must be a decimal integer, got ${shown}`,
    );
  }
}

export interface Paging {
  start?: number;
  limit?: number;
}

/** Parameters from the query string and the body, the body winning (api.md: all three work). */
export function mergedParams<T extends object>(request: FastifyRequest): Partial<T> {
  const query = (request.query ?? {}) as Partial<T>;
  const body = request.body && typeof request.body === 'object' && !Array.isArray(request.body) ? (request.body as Partial<T>) : {};
  return { ...query, ...body };
}

/**
 * preValidation: an empty or null parameter counts as absent, so `volume_id=` from a form is the
 * documented "volume_id is required" rather than a malformed id.
 */
export async function dropEmptyParams(request: FastifyRequest): Promise<void> {
  for (const part of [request.query, request.body]) {
    if (!part || typeof part !== 'object' || Array.isArray(part)) continue;
    const record = part as Record<string, unknown>;
    for (const key of Object.keys(record)) {
      if (record[key] === '' || record[key] === null) delete record[key];
    }
  }
}

/**
 * preValidation: no body is no parameters (they may all be in the query string); a body that is not
 * an object (a JSON array, string or number) is refused with a clear message.
 */
export async function requireObjectBody(request: FastifyRequest): Promise<void> {
  const body = request.body;
  if (body === undefined) {
    request.body = {};
    return;
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new ApiError('InvalidParameter', 'the request body must be an object of parameters');
  }
}
