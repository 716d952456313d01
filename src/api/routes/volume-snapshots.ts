// /api/volume_snapshots: index, show, create, destroy, upload_destination (api.md).

import type { FastifyInstance } from 'fastify';
import { SNAPSHOT_STATES, type SnapshotQuery, type SnapshotState } from '../../catalog';
import { DESTINATION_ID_PATTERN, NODE_ID_PATTERN, SNAPSHOT_ID_PATTERN, VOLUME_ID_PATTERN } from '../../ids';
import { listDocument, listSchema, snapshotDocument } from '../document';
import { ApiError, type ErrorName } from '../errors';
import {
  PAGING_QUERY_PROPERTIES,
  callerOf,
  dropEmptyParams,
  mergedParams,
  requireObjectBody,
  strictPaging,
  type ApiContext,
  type Paging,
} from './context';

const STATE_LIST = SNAPSHOT_STATES.join(', ');

const idParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', pattern: SNAPSHOT_ID_PATTERN, description: 'snap-…' } },
} as const;

interface IndexQuery extends Paging {
  state?: string;
  volume_id?: string;
  destination?: string;
  created_since?: string;
  created_until?: string;
}

interface CreateParams {
  volume_id: string;
  destination: string;
  storage_pool_id: string;
  display_name: string;
  id: string;
}

const CREATE_PROPERTIES = {
  volume_id: { type: 'string', pattern: VOLUME_ID_PATTERN, description: 'the volume to snapshot (required)' },
  destination: { type: 'string', pattern: DESTINATION_ID_PATTERN, description: 'a key of snapshot_repository.yml (required)' },
  storage_pool_id: { type: 'string', pattern: NODE_ID_PATTERN, description: "this node's id, when given" },
  display_name: { type: 'string', maxLength: 255 },
  id: { type: 'string', pattern: SNAPSHOT_ID_PATTERN, description: 'caller-chosen snap-… id; a retry with the same id and volume returns the existing snapshot' },
} as const;

const createSchema = { type: 'object', additionalProperties: false, properties: CREATE_PROPERTIES } as const;

// A malformed reference names nothing, like an unknown one; a malformed new name is a bad value.
const CREATE_FIELD_ERRORS: Record<string, ErrorName> = {
  volume_id: 'UnknownVolume',
  storage_pool_id: 'UnknownStorageNode',
};

const ISO_8601 = /^\d{4}-\d{2}-\d{2}(?:[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:[Zz]|[+-]\d{2}:?\d{2}))?$/;

/** ISO 8601 date or date-time with a zone (a zone-less time would be read in local time). */
export function parseIsoTime(name: string, value: string): number {
  const ms = ISO_8601.test(value) ? Date.parse(value.replace(' ', 'T')) : NaN;
  if (!Number.isFinite(ms)) {
    throw new ApiError('InvalidParameter', `${name} must be an ISO 8601 date or date-time with a zone, e.g. 2012-03-01T12:00:00Z`);
  }
  return ms;
}

export function parseStates(value: string): SnapshotState[] {
  const states = value.split(',').map((s) => s.trim());
  for (const s of states) {
    if (!(SNAPSHOT_STATES as readonly string[]).includes(s)) {
      throw new ApiError('InvalidParameter', `state must be one or more of ${STATE_LIST}, comma-separated`);
    }
  }
  return [...new Set(states)] as SnapshotState[];
}

export async function volumeSnapshotRoutes(app: FastifyInstance, ctx: ApiContext): Promise<void> {
  const { engine } = ctx;
  const names = () => new Map(engine.destinations().map((d) => [d.id, d.displayName]));
  const toDocument = (r: Parameters<typeof snapshotDocument>[0]) => {
    const byId = names();
    return snapshotDocument(r, (id) => byId.get(id));
  };

  app.get(
    '/api/volume_snapshots',
    {
      schema: {
        summary: 'index: the volume snapshots of the account, newest first',
        description:
          'Live snapshots and those deleted within the last 15 minutes. owner_total counts that set after the filters, ' +
          'independent of start/limit.',
        tags: ['volume_snapshots'],
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            ...PAGING_QUERY_PROPERTIES,
            state: { type: 'string', maxLength: 200, description: `one or more of ${STATE_LIST}, comma-separated` },
            volume_id: { type: 'string', pattern: VOLUME_ID_PATTERN, description: 'origin volume' },
            destination: { type: 'string', pattern: DESTINATION_ID_PATTERN },
            created_since: { type: 'string', maxLength: 64, description: 'ISO 8601, inclusive' },
            created_until: { type: 'string', maxLength: 64, description: 'ISO 8601, inclusive' },
          },
        },
        response: { 200: listSchema('SnapshotDocument') },
      },
      preValidation: strictPaging,
      config: { errors: ['InvalidParameter', 'InvalidRequestCredentials'] },
    },
    async (request) => {
      const caller = callerOf(request);
      const q = request.query as IndexQuery;
      const query: SnapshotQuery = { accountId: caller.accountId, now: ctx.clock(), start: q.start ?? 0, limit: q.limit ?? null };
      if (q.state !== undefined) query.states = parseStates(q.state);
      if (q.volume_id !== undefined) query.originVolumeId = q.volume_id;
      if (q.destination !== undefined) {
        if (!names().has(q.destination)) {
          const known = engine.destinations().map((d) => d.id).join(', ');
          throw new ApiError('InvalidParameter', `destination '${q.destination}' is not configured on this node (known: ${known})`);
        }
        query.destinationId = q.destination;
      }
      if (q.created_since !== undefined) query.createdSince = parseIsoTime('created_since', q.created_since);
      if (q.created_until !== undefined) query.createdUntil = parseIsoTime('created_until', q.created_until);
      const page = engine.listSnapshots(query);
      return listDocument(page.total, query.start, query.limit, page.rows.map(toDocument));
    },
  );

  app.get(
    '/api/volume_snapshots/upload_destination',
    {
      schema: {
        summary: 'the destinations snapshots can be stored at, local first',
        tags: ['volume_snapshots'],
        response: {
          200: {
            type: 'array',
            minItems: 1,
            maxItems: 1,
            items: {
              type: 'object',
              required: ['results'],
              properties: {
                results: {
                  type: 'array',
                  items: {
                    type: 'object',
                    required: ['destination_id', 'destination_name'],
                    properties: { destination_id: { type: 'string' }, destination_name: { type: 'string' } },
                  },
                },
              },
            },
          },
        },
      },
      config: { errors: ['InvalidRequestCredentials'] },
    },
    async (request) => {
      callerOf(request);
      const all = engine.destinations();
      const ordered = [...all.filter((d) => d.id === 'local'), ...all.filter((d) => d.id !== 'local')];
      return [{ results: ordered.map((d) => ({ destination_id: d.id, destination_name: d.displayName })) }];
    },
  );

  app.get(
    '/api/volume_snapshots/:id',
    {
      schema: {
        summary: 'show: one volume snapshot',
        tags: ['volume_snapshots'],
        params: idParams,
        response: { 200: { $ref: 'SnapshotDocument#' } },
      },
      config: { malformedIdError: 'UnknownVolumeSnapshot', errors: ['UnknownVolumeSnapshot', 'InvalidRequestCredentials'] },
    },
    async (request) => {
      const { id } = request.params as { id: string };
      const caller = callerOf(request);
      const record = engine.getSnapshot(id, caller.accountId);
      if (!record) throw new ApiError('UnknownVolumeSnapshot', `Unknown volume snapshot: ${id}`);
      return toDocument(record);
    },
  );

  app.post(
    '/api/volume_snapshots',
    {
      schema: {
        summary: 'create: snapshot a volume; the copy continues in the background',
        description: 'Parameters from a JSON body, a form body or the query string (the body wins).',
        tags: ['volume_snapshots'],
        querystring: createSchema,
        body: createSchema,
        response: { 200: { $ref: 'SnapshotDocument#' } },
      },
      preValidation: [requireObjectBody, dropEmptyParams],
      config: {
        malformedFieldErrors: CREATE_FIELD_ERRORS,
        errors: [
          'UndefinedVolumeID',
          'UndefinedRequiredParameter',
          'UnknownVolume',
          'UnknownStorageNode',
          'InvalidParameter',
          'OutOfDiskSpace',
          'Conflict',
          'InvalidRequestCredentials',
          'ServiceUnavailable',
        ],
      },
    },
    async (request) => {
      const caller = callerOf(request);
      const p = mergedParams<CreateParams>(request);
      if (p.volume_id === undefined) throw new ApiError('UndefinedVolumeID', 'volume_id is required');
      if (p.destination === undefined) throw new ApiError('UndefinedRequiredParameter', 'destination is required');
      if (caller.accountId === null) {
        throw new ApiError('InvalidRequestCredentials', 'Every snapshot belongs to an account: send X-VDC-Account-UUID to create one');
      }
      const record = await engine.createSnapshot({
        accountId: caller.accountId,
        volumeId: p.volume_id,
        destinationId: p.destination,
        ...(p.storage_pool_id !== undefined ? { storagePoolId: p.storage_pool_id } : {}),
        ...(p.display_name !== undefined ? { displayName: p.display_name } : {}),
        ...(p.id !== undefined ? { id: p.id } : {}),
      });
      return toDocument(record);
    },
  );

  app.delete(
    '/api/volume_snapshots/:id',
    {
      schema: {
        summary: 'destroy: delete an available or failed snapshot (soft delete: it shows in index for 15 minutes)',
        tags: ['volume_snapshots'],
        params: idParams,
        response: { 200: { type: 'array', minItems: 1, maxItems: 1, items: { type: 'string' } } },
      },
      config: {
        malformedIdError: 'UnknownVolumeSnapshot',
        errors: ['UnknownVolumeSnapshot', 'InvalidVolumeState', 'InvalidRequestCredentials'],
      },
    },
    async (request) => {
      const { id } = request.params as { id: string };
      const caller = callerOf(request);
      const record = await engine.deleteSnapshot(id, caller.accountId);
      return [record.id];
    },
  );
}
