// /api/storage_node: this node's id, version and destinations with capacity and reflink ability.

import type { FastifyInstance } from 'fastify';
import { callerOf, type ApiContext } from './context';

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
                  required: ['destination_id', 'destination_name', 'path', 'free_bytes', 'total_bytes', 'reflink', 'writable'],
                  properties: {
                    destination_id: { type: 'string' },
                    destination_name: { type: 'string' },
                    path: { type: 'string', description: 'the directory on this node' },
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
}
