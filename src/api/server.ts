// The HTTP application: Fastify with the Wakame routes, formats, auth and error registry wired in.
// buildServer never listens (tests use it with port 0 or inject; main listens).

import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifySchema, type FastifyRequest, type RouteOptions } from 'fastify';
import type { IncomingMessage } from 'node:http';
import type * as https from 'node:https';
import type { Socket } from 'node:net';
import type { Config } from '../config';
import type { SnapshotEngine } from '../snapshots/types';
import { Authenticator, type RouteAuthConfig } from './auth';
import { SNAPSHOT_DOCUMENT_SCHEMA, VOLUME_DOCUMENT_SCHEMA } from './document';
import {
  ApiError,
  clientErrorName,
  handleError,
  rawErrorResponse,
  sendError,
  toApiError,
  type RouteErrorConfig,
} from './errors';
import { renderFormat, rewriteUrl } from './format';
import { OpenApiCollector, type RouteDocConfig } from './openapi';
import { healthRoutes } from './routes/health';
import { storageNodeRoutes } from './routes/storage-node';
import { volumeRoutes } from './routes/volumes';
import { volumeSnapshotRoutes } from './routes/volume-snapshots';
import type { ApiContext } from './routes/context';

declare module 'fastify' {
  interface FastifyContextConfig extends RouteErrorConfig, RouteDocConfig, RouteAuthConfig {}
}

/** Largest request body accepted (413 PayloadTooLarge beyond). Every parameter fits in far less. */
export const BODY_LIMIT = 64 * 1024;
/** Path parameters up to this length reach validation (and answer 404 like any unknown id). */
const MAX_PARAM_LENGTH = 8192;

export interface BuildServerOptions {
  config: Config;
  engine: SnapshotEngine;
  /** false (default): silent; true or pino options: Fastify's pino; or a ready pino-like logger. */
  logger?: boolean | object;
  clock?: () => number;
  version?: string;
  /** TLS for main's listener (cert, key; ca with requestCert for mutual TLS). */
  https?: https.ServerOptions;
  /** Runs on the bare app before any route exists: where metrics.install(app) goes. */
  beforeRoutes?: (app: FastifyInstance) => void;
}

/** volsnapd's version, from the nearest package.json named volsnapd above this file. */
export function packageVersion(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'volsnapd' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // not here; go up
    }
    if (path.dirname(dir) === dir) return '0.0.0';
  }
}

/** Fastify's pino, made once so that the engine and the server log through the same logger. */
export function createLogger(level: string): FastifyBaseLogger {
  return Fastify({ logger: { level } }).log;
}

function isLoggerInstance(x: unknown): x is FastifyBaseLogger {
  return typeof x === 'object' && x !== null && typeof (x as FastifyBaseLogger).child === 'function' && typeof (x as FastifyBaseLogger).info === 'function';
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;

// A caller's X-Request-Id is kept when it is a plain token, so a central manager can follow its
// request into this node's log; otherwise a fresh one.
function genReqId(req: IncomingMessage): string {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
}

const WHERE: Record<string, string> = { querystring: 'query parameter', body: 'parameter', params: 'path parameter', headers: 'header' };

// "query parameter limit must be <= 1000" rather than Fastify's "querystring/limit must be <= 1000".
function schemaErrorFormatter(errors: Array<{ instancePath?: string; message?: string; params?: Record<string, unknown> }>, dataVar: string): Error {
  const e = errors[0];
  const field = e?.instancePath ? e.instancePath.slice(1).replace(/\//g, '.') : String(e?.params?.missingProperty ?? '');
  const what = field ? `${WHERE[dataVar] ?? dataVar} ${field}` : dataVar === 'body' ? 'the request body' : dataVar;
  const unknown = e?.params?.additionalProperty;
  // Name the unknown parameter: "colour" is more use than "must NOT have additional properties".
  if (typeof unknown === 'string') {
    const printable = unknown.length > 64 ? `${unknown.slice(0, 64)}…` : unknown;
    return new Error(`${what} has an unknown parameter ${JSON.stringify(printable)}`);
  }
  return new Error(`${what} ${e?.message ?? 'is invalid'}`);
}

function parseJsonBody(_req: FastifyRequest, body: string | Buffer, done: (err: Error | null, body?: unknown) => void): void {
  const text = typeof body === 'string' ? body : body.toString('utf8');
  if (text.trim() === '') return done(null, undefined);
  try {
    done(
      null,
      JSON.parse(text, (key, value: unknown) => {
        // Keys that could reach an object's prototype if anyone ever merged with Object.assign.
        if (key === '__proto__' || (key === 'constructor' && value !== null && typeof value === 'object' && 'prototype' in value)) {
          throw new SyntaxError(`forbidden key "${key}"`);
        }
        return value;
      }),
    );
  } catch (err) {
    done(Object.assign(new Error(`the request body is not valid JSON: ${(err as Error).message}`), { statusCode: 400 }));
  }
}

function parseFormBody(_req: FastifyRequest, body: string | Buffer, done: (err: Error | null, body?: unknown) => void): void {
  const text = typeof body === 'string' ? body : body.toString('utf8');
  done(null, Object.fromEntries(new URLSearchParams(text)));
}

interface RouteShape {
  method: string;
  pattern: RegExp;
}

function routePattern(url: string): RegExp {
  const parts = url.split('/').map((seg) => (seg.startsWith(':') ? '[^/]+' : seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
  return new RegExp(`^${parts.join('/')}/?$`);
}

export function buildServer(opts: BuildServerOptions): FastifyInstance {
  const clock = opts.clock ?? Date.now;
  const ctx: ApiContext = { config: opts.config, engine: opts.engine, clock, version: opts.version ?? packageVersion() };
  const logger = opts.logger ?? false;

  const app = Fastify({
    ...(isLoggerInstance(logger) ? { loggerInstance: logger } : { logger }),
    ...(opts.https ? { https: opts.https } : {}),
    genReqId,
    requestIdHeader: false,
    bodyLimit: BODY_LIMIT,
    rewriteUrl,
    return503OnClosing: false,
    // An unknown parameter is a mistake to report (400 InvalidParameter), not to drop silently:
    // the schemas say additionalProperties: false and mean it.
    ajv: { customOptions: { removeAdditional: false } },
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: MAX_PARAM_LENGTH },
    schemaErrorFormatter,
    frameworkErrors: (error, _req, reply) => {
      sendError(reply, toApiError(error) ?? new ApiError('InvalidParameter'));
    },
    clientErrorHandler: (err: Error & { code?: string }, socket: Socket) => {
      if (err.code === 'ECONNRESET' || !socket.writable) {
        socket.destroy();
        return;
      }
      socket.end(rawErrorResponse(new ApiError(clientErrorName(err.code))));
    },
  }) as unknown as FastifyInstance;

  // Which paths exist under which methods: 405 rather than 404 for a wrong method.
  const routes: RouteShape[] = [];
  const openapi = new OpenApiCollector();
  app.addHook('onRoute', (route: RouteOptions) => {
    for (const method of Array.isArray(route.method) ? route.method : [route.method]) {
      routes.push({ method, pattern: routePattern(route.url) });
    }
    openapi.onRoute(route);
  });

  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, parseJsonBody);
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, parseFormBody);

  app.addSchema(SNAPSHOT_DOCUMENT_SCHEMA);
  app.addSchema(VOLUME_DOCUMENT_SCHEMA);
  openapi.addSharedSchema(SNAPSHOT_DOCUMENT_SCHEMA);
  openapi.addSharedSchema(VOLUME_DOCUMENT_SCHEMA);

  app.decorateRequest('caller', null);
  app.setErrorHandler(handleError);
  app.setNotFoundHandler((request, reply) => {
    const pathOnly = request.url.split('?')[0] ?? '/';
    const allowed = [...new Set(routes.filter((r) => r.pattern.test(pathOnly)).map((r) => r.method))];
    if (allowed.length > 0) {
      sendError(reply, new ApiError('MethodNotAllowed', `${request.method} is not allowed here; allowed: ${allowed.join(', ')}`, { allow: allowed.join(', ') }));
      return;
    }
    sendError(reply, new ApiError('NotFound', `No such path: ${pathOnly.length > 200 ? `${pathOnly.slice(0, 200)}…` : pathOnly}`));
  });

  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onRequest', async () => {
    if (closing) throw new ApiError('ServiceUnavailable', 'the daemon is shutting down');
  });
  app.addHook('onSend', async (request, reply, payload) => {
    reply.header('x-request-id', request.id);
    // While shutting down, no connection is kept alive for a next request that would be refused.
    if (closing) reply.header('connection', 'close');
    return renderFormat(request, reply, payload);
  });

  opts.beforeRoutes?.(app);
  app.register(async (root) => {
    await healthRoutes(root, ctx);
  });

  const auth = new Authenticator(opts.config.auth.tokens);
  app.register(async (api) => {
    api.addHook('onRequest', async (request) => {
      request.caller = auth.identify(request, request.routeOptions.config.account ?? 'required');
    });
    await volumeSnapshotRoutes(api, ctx);
    await volumeRoutes(api, ctx);
    await storageNodeRoutes(api, ctx);
    let document: unknown;
    api.get(
      '/api/openapi',
      {
        schema: { summary: 'this OpenAPI document (/api/openapi.json, or .yml for YAML)', tags: ['meta'] } as FastifySchema,
        config: { account: 'optional' },
      },
      async () => {
        document ??= openapi.document({
          title: 'volsnapd: Wakame-vdc volume_snapshots API of one storage node',
          version: ctx.version,
          description:
            'Every path under /api is also served under /api/11.12. A .json, .yml or .yaml suffix, or Accept: application/yaml, ' +
            'selects the body format. Requests name their account with X-VDC-Account-UUID (or X_VDC_ACCOUNT_UUID) and, ' +
            'when tokens are configured, carry Authorization: Bearer <token>. Errors are {"error", "message", "code"}.',
        });
        return document;
      },
    );
  });

  return app;
}
