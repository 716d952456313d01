// /api/volumes: the volumes this node holds, and restore (dcmgr created a volume from a snapshot by
// POSTing snapshot_id to volumes). Same conventions as volume_snapshots.

import type { FastifyInstance } from 'fastify';
import { SNAPSHOT_ID_PATTERN, VOLUME_ID_PATTERN } from '../../ids';
import { listDocument, listSchema, volumeDocument } from '../document';
import { ApiError } from '../errors';
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

interface RestoreParams {
  snapshot_id: string;
  volume_id: string;
}

const restoreSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    snapshot_id: { type: 'string', pattern: SNAPSHOT_ID_PATTERN, description: 'the available snapshot to restore (required)' },
    volume_id: { type: 'string', pattern: VOLUME_ID_PATTERN, description: "the new volume's id; generated when absent; never an existing volume" },
  },
} as const;

export async function volumeRoutes(app: FastifyInstance, ctx: ApiContext): Promise<void> {
  const { engine } = ctx;

  app.get(
    '/api/volumes',
    {
      schema: {
        summary: 'the volumes this node holds, by id',
        tags: ['volumes'],
        querystring: { type: 'object', additionalProperties: false, properties: { ...PAGING_QUERY_PROPERTIES } },
        response: { 200: listSchema('VolumeDocument') },
      },
      preValidation: strictPaging,
      config: { errors: ['InvalidParameter', 'InvalidRequestCredentials'] },
    },
    async (request) => {
      callerOf(request);
      const { start = 0, limit = null } = request.query as Paging;
      const all = await engine.listVolumes();
      const page = all.slice(start, limit === null ? undefined : start + limit);
      return listDocument(all.length, start, limit, page.map((v) => volumeDocument(v, engine.nodeId)));
    },
  );

  app.get(
    '/api/volumes/:id',
    {
      schema: {
        summary: 'one volume',
        tags: ['volumes'],
        params: { type: 'object', required: ['id'], properties: { id: { type: 'string', pattern: VOLUME_ID_PATTERN } } },
        response: { 200: { $ref: 'VolumeDocument#' } },
      },
      config: { malformedIdError: 'UnknownVolume', errors: ['UnknownVolume', 'InvalidRequestCredentials'] },
    },
    async (request) => {
      const { id } = request.params as { id: string };
      callerOf(request);
      const volume = await engine.getVolume(id);
      if (!volume) throw new ApiError('UnknownVolume', `Unknown volume: ${id}`);
      return volumeDocument(volume, engine.nodeId);
    },
  );

  app.post(
    '/api/volumes',
    {
      schema: {
        summary: 'restore: a new volume from an available snapshot (a reflink where the filesystem allows)',
        description: 'Answers when the new volume is complete.',
        tags: ['volumes'],
        querystring: restoreSchema,
        body: restoreSchema,
        response: { 200: { $ref: 'VolumeDocument#' } },
      },
      preValidation: [requireObjectBody, dropEmptyParams],
      config: {
        malformedFieldErrors: { snapshot_id: 'UnknownVolumeSnapshot' },
        errors: [
          'UndefindVolumeSnapshotID',
          'UnknownVolumeSnapshot',
          'InvalidVolumeState',
          'InvalidParameter',
          'Conflict',
          'OutOfDiskSpace',
          'InvalidRequestCredentials',
          'ServiceUnavailable',
        ],
      },
    },
    async (request) => {
      const caller = callerOf(request);
      const p = mergedParams<RestoreParams>(request);
      if (p.snapshot_id === undefined) throw new ApiError('UndefindVolumeSnapshotID', 'snapshot_id is required');
      const volume = await engine.restoreSnapshot({
        accountId: caller.accountId,
        snapshotId: p.snapshot_id,
        ...(p.volume_id !== undefined ? { volumeId: p.volume_id } : {}),
      });
      return volumeDocument(volume, engine.nodeId);
    },
  );
}
