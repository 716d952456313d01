// /api/storage_node: this node's id, version and destinations with capacity and reflink ability.

import type { FastifyInstance } from 'fastify';
import * as path from 'node:path';
import type { SnapshotEngine } from '../../snapshots/types';
import { ApiError } from '../errors';
import { callerOf, type ApiContext } from './context';

/** The catalog-against-files check (Engine has it; the SnapshotEngine interface does not require it). */
interface FileChecker {
  checkFiles(): Promise<{ orphans: string[]; missing: string[] }>;
}

function canCheckFiles(engine: SnapshotEngine): engine is SnapshotEngine & FileChecker {
  return typeof (engine as Partial<FileChecker>).checkFiles === 'function';
}

const SNAPSHOT_FILE = /^(snap-[a-z0-9]+)\.snap$/;

export async function storageNodeRoutes(app: FastifyInstance, ctx: ApiContext): Promise<void> {
  const { engine } = ctx;
  app.get(
    '/api/storage_node',
    {
      schema: {
        summary: 'this storage node',
        tags: ['storage_node'],
        response: {
          200: {
            type: 'object',
            required: ['id', 'uuid', 'version', 'destinations'],
            properties: {
              id: { type: 'string', description: 'sn-…' },
              uuid: { type: 'string' },
              version: { type: 'string', description: 'volsnapd version' },
              destinations: {
                type: 'array',
                items: {
                  type: 'object',
                  required: ['destination_id', 'destination_name', 'path', 'filesystem', 'free_bytes', 'total_bytes', 'reflink', 'writable'],
                  properties: {
                    destination_id: { type: 'string' },
                    destination_name: { type: 'string' },
                    path: { type: 'string', description: 'the directory on this node' },
                    filesystem: { type: 'string', description: 'its filesystem type (xfs, btrfs, ext4, …)' },
                    free_bytes: { type: 'integer' },
                    total_bytes: { type: 'integer' },
                    reflink: { type: 'boolean', description: 'volumes reflink into it (false: snapshots there are copies)' },
                    writable: { type: 'boolean' },
                  },
                },
              },
              jobs_running: { type: 'integer' },
              jobs_queued: { type: 'integer' },
            },
          },
        },
      },
      // Node facts, not an account's: any authenticated caller may read them.
      config: { account: 'optional' },
    },
    async (request) => {
      callerOf(request);
      const status = await engine.destinationStatus();
      const stats = engine.stats();
      return {
        id: engine.nodeId,
        uuid: engine.nodeId,
        version: ctx.version,
        destinations: status.map((d) => ({
          destination_id: d.id,
          destination_name: d.displayName,
          path: d.path,
          filesystem: d.filesystem,
          free_bytes: d.freeBytes,
          total_bytes: d.totalBytes,
          reflink: d.reflink,
          writable: d.writable,
        })),
        jobs_running: stats.jobsRunning,
        jobs_queued: stats.jobsQueued,
      };
    },
  );

  app.get(
    '/api/storage_node/doctor',
    {
      schema: {
        summary: 'the catalog checked against the files: snapshot files with no row (orphans), available rows with no file (missing)',
        description:
          'Node facts for operators. Orphan files belong to no account: their names go to admin tokens, and to every caller on a node without tokens (where any caller may name any account anyway). Missing snapshots: an admin without an account sees all, any other caller its own.',
        tags: ['storage_node'],
        response: {
          200: {
            type: 'object',
            required: ['orphans', 'missing'],
            properties: {
              orphans: { type: 'array', items: { type: 'string' }, description: 'paths of snapshot files no live row accounts for' },
              missing: { type: 'array', items: { type: 'string' }, description: 'ids of available snapshots whose file is gone' },
            },
          },
        },
      },
      config: { errors: ['InvalidRequestCredentials', 'NotFound'] },
    },
    async (request) => {
      const caller = callerOf(request);
      if (!canCheckFiles(engine)) throw new ApiError('NotFound', 'this node does not offer the file check');
      const report = await engine.checkFiles();
      if (caller.accountId === null) return { orphans: report.orphans, missing: report.missing };
      // An orphan is nobody's: with tokens configured only the node's operators (admin tokens)
      // see them. Another account's snapshots stay invisible, here as everywhere.
      const operator = caller.admin || ctx.config.auth.tokens.length === 0;
      return {
        orphans: operator ? report.orphans : [],
        missing: report.missing.filter((id) => engine.getSnapshot(id, caller.accountId) !== undefined),
      };
    },
  );
}
