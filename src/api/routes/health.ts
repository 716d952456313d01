// /healthz (the process answers) and /readyz (every destination is writable). Outside /api: no
// token or account, so that a load balancer or systemd helper can probe them.

import type { FastifyInstance } from 'fastify';
import { ApiError } from '../errors';
import type { ApiContext } from './context';

export async function healthRoutes(app: FastifyInstance, ctx: ApiContext): Promise<void> {
  app.get(
    '/healthz',
    {
      schema: {
        summary: 'liveness',
        tags: ['health'],
        response: { 200: { type: 'object', required: ['status'], properties: { status: { type: 'string', enum: ['ok'] } } } },
      },
    },
    async () => ({ status: 'ok' }),
  );

  app.get(
    '/readyz',
    {
      schema: {
        summary: 'readiness: 503 ServiceUnavailable naming the destinations that are not writable',
        tags: ['health'],
        response: {
          200: {
            type: 'object',
            required: ['status', 'destinations'],
            properties: {
              status: { type: 'string', enum: ['ready'] },
              destinations: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: { destination_id: { type: 'string' }, writable: { type: 'boolean' }, reflink: { type: 'boolean' } },
                },
              },
            },
          },
        },
      },
      config: { errors: ['ServiceUnavailable'] },
    },
    async (request) => {
      if (!ctx.engine.catalogOpen) throw new ApiError('ServiceUnavailable', 'not ready: the catalog is closed');
      let status;
      try {
        status = await ctx.engine.destinationStatus();
      } catch (err) {
        request.log.warn({ err }, 'readiness check failed');
        throw new ApiError('ServiceUnavailable', 'not ready: the destinations could not be checked');
      }
      const unwritable = status.filter((d) => !d.writable);
      if (unwritable.length > 0) {
        const which = unwritable.map((d) => `${d.id} (${d.path})`).join(', ');
        throw new ApiError('ServiceUnavailable', `not ready: destination${unwritable.length > 1 ? 's' : ''} not writable: ${which}`);
      }
      return { status: 'ready', destinations: status.map((d) => ({ destination_id: d.id, writable: d.writable, reflink: d.reflink })) };
    },
  );
}
