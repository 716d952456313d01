// The one registry of API errors: every name the API answers with, its Wakame code, its HTTP
// status and a default message. Codes below 900 are dcmgr's numbering (api.md, "Errors"); codes
// above 900 are this daemon's. src/api/ERRORS.md lists the same table, and a test fails when the
// two disagree or when api.md names a code that is missing here.
//
// Decisions recorded here so that the table stays the single answer:
// - A malformed id in the path (`/api/volume_snapshots/../x`, NUL, uppercase, too long) is answered
//   exactly like an unknown one: 404 UnknownVolumeSnapshot / UnknownVolume. It names nothing, it
//   never reaches the engine, and Wakame clients already treat 404 as "no such resource".
// - A malformed reference in a parameter (volume_id, snapshot_id, storage_pool_id) is answered
//   like an unknown one (113, 117, 108); a malformed new name or filter value (create's id,
//   restore's volume_id, filters) is a 400 InvalidParameter naming the parameter.
// - An unknown parameter is a 400 InvalidParameter naming it (a typo is not dropped silently).
// - A database fault is not the caller's fault: it is a 500 InternalError, not dcmgr's
//   DatabaseError (110, kept for completeness; this daemon does not send it).

import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { isEngineError } from '../snapshots/errors';

export interface ErrorSpec {
  readonly code: string;
  readonly status: number;
  readonly message: string;
}

export const ERRORS = {
  UnknownUUIDResource: { code: '100', status: 404, message: 'Unknown resource' },
  InvalidRequestCredentials: { code: '103', status: 400, message: 'The request has no valid account (X-VDC-Account-UUID)' },
  OperationNotPermitted: { code: '105', status: 403, message: 'This credential may not perform that operation' },
  UnknownStorageNode: { code: '108', status: 404, message: 'Unknown storage node' },
  OutOfDiskSpace: { code: '109', status: 400, message: 'Not enough free space at the destination' },
  DatabaseError: { code: '110', status: 400, message: 'Database error' },
  UndefinedVolumeID: { code: '111', status: 400, message: 'volume_id is required' },
  InvalidDeleteRequest: { code: '112', status: 400, message: 'Invalid delete request' },
  UnknownVolume: { code: '113', status: 404, message: 'Unknown volume' },
  // dcmgr's spelling, kept: clients match on it.
  UndefindVolumeSnapshotID: { code: '116', status: 400, message: 'snapshot_id is required' },
  UnknownVolumeSnapshot: { code: '117', status: 404, message: 'Unknown volume snapshot' },
  UndefinedRequiredParameter: { code: '118', status: 400, message: 'A required parameter is missing' },
  InvalidVolumeSnapshotState: { code: '131', status: 400, message: 'The volume snapshot is not in a state that allows this' },
  InvalidVolumeState: { code: '140', status: 400, message: 'The volume snapshot is not in a state that allows this' },
  InvalidParameter: { code: '901', status: 400, message: 'Invalid parameter' },
  Unauthorized: { code: '902', status: 401, message: 'A valid bearer token is required' },
  Conflict: { code: '903', status: 409, message: 'The request conflicts with an existing resource' },
  PayloadTooLarge: { code: '904', status: 413, message: 'The request body is larger than the 64 KiB limit' },
  NotFound: { code: '905', status: 404, message: 'No such path' },
  MethodNotAllowed: { code: '906', status: 405, message: 'Method not allowed on this path' },
  UnsupportedMediaType: {
    code: '907',
    status: 415,
    message: 'The request body must be application/json or application/x-www-form-urlencoded',
  },
  ServiceUnavailable: { code: '908', status: 503, message: 'The service is unavailable' },
  InternalError: { code: '909', status: 500, message: 'Internal error' },
  RequestHeaderFieldsTooLarge: { code: '910', status: 431, message: 'The request headers are too large' },
  RequestTimeout: { code: '911', status: 408, message: 'The request took too long to arrive' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorName = keyof typeof ERRORS;

export interface ErrorBody {
  error: ErrorName;
  message: string;
  code: string;
}

export function isErrorName(name: unknown): name is ErrorName {
  return typeof name === 'string' && Object.prototype.hasOwnProperty.call(ERRORS, name);
}

/** An error the API answers with as is: a registry name and a message for the caller. */
export class ApiError extends Error {
  override name = 'ApiError';
  readonly statusCode: number;
  constructor(
    readonly errorName: ErrorName,
    message: string = ERRORS[errorName].message,
    /** Extra response headers (Allow, WWW-Authenticate). */
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
    this.statusCode = ERRORS[errorName].status;
  }

  get code(): string {
    return ERRORS[this.errorName].code;
  }

  body(): ErrorBody {
    return { error: this.errorName, message: this.message, code: this.code };
  }
}

export function errorBody(name: ErrorName, message?: string): ErrorBody {
  return { error: name, message: message ?? ERRORS[name].message, code: ERRORS[name].code };
}

/** JSON schema of the error body, for the OpenAPI document. */
export const ERROR_BODY_SCHEMA = {
  type: 'object',
  required: ['error', 'message', 'code'],
  properties: {
    error: { type: 'string', enum: Object.keys(ERRORS) },
    message: { type: 'string' },
    code: { type: 'string', pattern: '^[0-9]{3}$' },
  },
} as const;

/**
 * Route config: how a route answers malformed references. A malformed `:id` in the path answers
 * `malformedIdError`; a parameter listed in `malformedFieldErrors` that fails its pattern answers
 * the error given there (a malformed volume_id is an unknown volume); anything else that fails the
 * schema is InvalidParameter.
 */
export interface RouteErrorConfig {
  malformedIdError?: ErrorName;
  malformedFieldErrors?: Readonly<Record<string, ErrorName>>;
}

interface AjvError {
  instancePath?: string;
  keyword?: string;
}

// Fastify's own 4xx errors, by code, to registry names; `own` keeps Fastify's message (it names
// the problem), otherwise the registry's default message is sent. Any other 4xx falls back on its
// status (fallbackForStatus); anything else is an internal error.
const FASTIFY_CODES: Readonly<Record<string, { name: ErrorName; own: boolean }>> = {
  FST_ERR_CTP_BODY_TOO_LARGE: { name: 'PayloadTooLarge', own: false },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { name: 'UnsupportedMediaType', own: false },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { name: 'InvalidParameter', own: true },
  FST_ERR_CTP_EMPTY_JSON_BODY: { name: 'InvalidParameter', own: true },
  FST_ERR_CTP_INVALID_JSON_BODY: { name: 'InvalidParameter', own: true },
  FST_ERR_BAD_URL: { name: 'InvalidParameter', own: true },
  FST_ERR_MAX_PARAM_LENGTH: { name: 'NotFound', own: false },
  FST_ERR_NOT_FOUND: { name: 'NotFound', own: false },
  FST_ERR_HANDLER_TIMEOUT: { name: 'ServiceUnavailable', own: false },
};

function fallbackForStatus(status: number): ErrorName | undefined {
  switch (status) {
    case 400:
      return 'InvalidParameter';
    case 401:
      return 'Unauthorized';
    case 403:
      return 'OperationNotPermitted';
    case 404:
      return 'NotFound';
    case 405:
      return 'MethodNotAllowed';
    case 408:
      return 'RequestTimeout';
    case 409:
      return 'Conflict';
    case 413:
      return 'PayloadTooLarge';
    case 415:
      return 'UnsupportedMediaType';
    case 431:
      return 'RequestHeaderFieldsTooLarge';
    case 503:
      return 'ServiceUnavailable';
    default:
      return status >= 400 && status < 500 ? 'InvalidParameter' : undefined;
  }
}

/**
 * Any thrown value → the ApiError to answer with, or null for an unexpected fault (the caller
 * logs it and answers 500 InternalError without details).
 */
export function toApiError(err: unknown, route: RouteErrorConfig = {}): ApiError | null {
  if (err instanceof ApiError) return err;
  if (isEngineError(err)) return new ApiError(err.kind, err.message);
  if (typeof err !== 'object' || err === null) return null;
  const e = err as Partial<FastifyError> & { validation?: unknown; validationContext?: string; type?: string };
  if (e.validation) {
    if (e.validationContext === 'params' && route.malformedIdError) {
      return new ApiError(route.malformedIdError, `${ERRORS[route.malformedIdError].message}: malformed id`);
    }
    const first = (Array.isArray(e.validation) ? e.validation[0] : undefined) as AjvError | undefined;
    const field = first?.instancePath?.slice(1);
    const mapped = field ? route.malformedFieldErrors?.[field] : undefined;
    if (mapped && first?.keyword === 'pattern') {
      return new ApiError(mapped, `${ERRORS[mapped].message}: ${field} is malformed`);
    }
    return new ApiError('InvalidParameter', e.message || ERRORS.InvalidParameter.message);
  }
  // The JSON body parser's SyntaxError (ours sets statusCode 400).
  const status = typeof e.statusCode === 'number' ? e.statusCode : undefined;
  const byCode = typeof e.code === 'string' ? FASTIFY_CODES[e.code] : undefined;
  if (byCode) return new ApiError(byCode.name, byCode.own && e.message ? String(e.message) : ERRORS[byCode.name].message);
  const name = status !== undefined ? fallbackForStatus(status) : undefined;
  if (!name) return null;
  return new ApiError(name, e.message ? String(e.message) : ERRORS[name].message);
}

/** Fastify error handler: the documented body for every error, a generic 500 for faults. */
export function handleError(err: unknown, request: FastifyRequest, reply: FastifyReply): void {
  const config = (request.routeOptions?.config ?? {}) as RouteErrorConfig;
  const apiError = toApiError(err, config);
  if (!apiError) {
    request.log.error({ err, reqId: request.id }, 'unexpected fault');
    sendError(reply, new ApiError('InternalError', `Internal error (request id ${request.id})`));
    return;
  }
  if (apiError.statusCode >= 500) request.log.warn({ err, reqId: request.id }, apiError.message);
  sendError(reply, apiError);
}

export function sendError(reply: FastifyReply, error: ApiError): void {
  for (const [name, value] of Object.entries(error.headers)) reply.header(name, value);
  reply.code(error.statusCode).type('application/json; charset=utf-8').send(error.body());
}

/** The raw-socket answer for errors Node raises before Fastify sees a request. */
export function rawErrorResponse(error: ApiError): string {
  const body = JSON.stringify(error.body());
  const reason =
    { 400: 'Bad Request', 408: 'Request Timeout', 413: 'Payload Too Large', 431: 'Request Header Fields Too Large' }[
      error.statusCode
    ] ?? 'Bad Request';
  return (
    `HTTP/1.1 ${error.statusCode} ${reason}\r\n` +
    'Connection: close\r\n' +
    'Content-Type: application/json; charset=utf-8\r\n' +
    `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n` +
    body
  );
}

/** Node's client-error codes (before routing) → registry names. */
export function clientErrorName(code: string | undefined): ErrorName {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return 'RequestHeaderFieldsTooLarge';
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return 'RequestTimeout';
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return 'PayloadTooLarge';
    default:
      return 'InvalidParameter';
  }
}
