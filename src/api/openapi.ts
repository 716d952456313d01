// The OpenAPI 3.1 document of the whole API, built from the JSON schemas the routes are registered
// with (collected by an onRoute hook), so the document cannot drift from what is validated.

import type { RouteOptions } from 'fastify';
import { ERROR_BODY_SCHEMA, ERRORS, type ErrorName } from './errors';

type JsonSchema = Record<string, unknown>;

interface CollectedRoute {
  method: string;
  url: string;
  schema: JsonSchema;
}

/** Per-route documentation beyond the schemas: which registry errors it can answer with. */
export interface RouteDocConfig {
  errors?: readonly ErrorName[];
}

// Route schemas refer to shared schemas as `Name#` (Fastify's addSchema ids).
function rewriteRefs(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(rewriteRefs);
  if (value === null || typeof value !== 'object') return value;
  const out: JsonSchema = {};
  for (const [k, v] of Object.entries(value)) {
    if (k === '$ref' && typeof v === 'string' && /^[A-Za-z][A-Za-z0-9]*#$/.test(v)) {
      out[k] = `#/components/schemas/${v.slice(0, -1)}`;
    } else if (k !== '$id') {
      out[k] = rewriteRefs(v);
    }
  }
  return out;
}

function parameters(where: 'path' | 'query', schema: unknown): JsonSchema[] {
  if (!schema || typeof schema !== 'object') return [];
  const s = schema as { properties?: Record<string, JsonSchema>; required?: string[] };
  return Object.entries(s.properties ?? {}).map(([name, prop]) => {
    const { description, ...rest } = prop as JsonSchema & { description?: string };
    return {
      name,
      in: where,
      required: where === 'path' || (s.required ?? []).includes(name),
      ...(description ? { description } : {}),
      schema: rewriteRefs(rest),
    };
  });
}

export class OpenApiCollector {
  private readonly routes: CollectedRoute[] = [];
  private readonly shared = new Map<string, JsonSchema>();

  /** Fastify onRoute hook. HEAD twins of GET routes and hidden routes are left out. */
  onRoute = (route: RouteOptions): void => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    const schema = (route.schema ?? {}) as JsonSchema;
    if (schema.hide) return;
    const errors = ((route.config ?? {}) as RouteDocConfig).errors ?? [];
    for (const method of methods) {
      if (method === 'HEAD' || method === 'OPTIONS') continue;
      this.routes.push({ method: method.toLowerCase(), url: route.url, schema: { ...schema, 'x-errors': errors } });
    }
  };

  addSharedSchema(schema: JsonSchema & { $id: string }): void {
    this.shared.set(schema.$id, schema);
  }

  document(info: { title: string; version: string; description?: string }): JsonSchema {
    const paths: Record<string, Record<string, JsonSchema>> = {};
    for (const r of this.routes) {
      const path = r.url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
      const s = r.schema;
      const op: JsonSchema = {};
      if (s.summary) op.summary = s.summary;
      if (s.description) op.description = s.description;
      if (s.tags) op.tags = s.tags;
      op.operationId = `${r.method}${path.replace(/[{}]/g, '').replace(/[^A-Za-z0-9]+(.)?/g, (_m, c: string | undefined) => (c ? c.toUpperCase() : ''))}`;
      const params = [...parameters('path', s.params), ...parameters('query', s.querystring)];
      if (params.length) op.parameters = params;
      if (s.body) {
        const body = rewriteRefs(s.body);
        op.requestBody = {
          required: false,
          content: { 'application/json': { schema: body }, 'application/x-www-form-urlencoded': { schema: body } },
        };
      }
      const responses: Record<string, JsonSchema> = {};
      for (const [status, schema] of Object.entries((s.response ?? {}) as Record<string, JsonSchema>)) {
        const { description, ...rest } = schema as JsonSchema & { description?: string };
        responses[status] = {
          description: description ?? 'success',
          content: { 'application/json': { schema: rewriteRefs(rest) }, 'application/yaml': { schema: rewriteRefs(rest) } },
        };
      }
      for (const name of s['x-errors'] as ErrorName[]) {
        const status = String(ERRORS[name].status);
        const prior = responses[status];
        const names = prior ? `${String(prior.description)}, ${name}` : name;
        responses[status] = { description: names, content: { 'application/json': { schema: { $ref: '#/components/schemas/ErrorBody' } } } };
      }
      responses.default = {
        description: 'error (see the registry: InvalidParameter, Unauthorized, NotFound, MethodNotAllowed, InternalError, …)',
        content: { 'application/json': { schema: { $ref: '#/components/schemas/ErrorBody' } } },
      };
      op.responses = responses;
      (paths[path] ??= {})[r.method] = op;
    }
    const schemas: Record<string, unknown> = { ErrorBody: rewriteRefs(ERROR_BODY_SCHEMA) };
    for (const [id, schema] of this.shared) schemas[id] = rewriteRefs(schema);
    return {
      openapi: '3.1.0',
      info: { title: info.title, version: info.version, ...(info.description ? { description: info.description } : {}) },
      paths: Object.fromEntries(Object.entries(paths).sort(([a], [b]) => a.localeCompare(b))),
      components: {
        schemas,
        securitySchemes: { bearer: { type: 'http', scheme: 'bearer' }, account: { type: 'apiKey', in: 'header', name: 'X-VDC-Account-UUID' } },
      },
      'x-error-codes': Object.fromEntries(Object.entries(ERRORS).map(([name, spec]) => [name, { code: spec.code, status: spec.status }])),
    };
  }
}
