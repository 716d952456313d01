// One storage node assembled: the engine (reconciled), its metrics, and the HTTP app wired to
// both — without listening. main listens; tests listen on port 0. Keeping the wiring here means
// the daemon the tests talk to is the daemon that runs.
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type * as https from 'node:https';

import { buildServer } from './api/server';
import type { Config } from './config';
import type { Logger } from './logger';
import { createMetrics, type Metrics } from './metrics';
import { Engine } from './snapshots/engine';

export interface StorageNode {
  engine: Engine;
  metrics: Metrics;
  app: FastifyInstance;
}

export interface OpenNodeOptions {
  /** A pino logger (shared by engine and server), pino options, true for defaults; false: silent. */
  logger?: FastifyBaseLogger | boolean | object;
  clock?: () => number;
  https?: https.ServerOptions;
}

/** Opens the engine (start-up reconciliation runs here) and builds the app around it. */
export async function openNode(config: Config, options: OpenNodeOptions = {}): Promise<StorageNode> {
  const metrics = createMetrics();
  const logger = toLogger(options.logger ?? false);
  const engine = await Engine.open(config, {
    observer: metrics.observer,
    ...(logger ? { logger: logger as unknown as Logger } : {}),
    ...(options.clock ? { clock: options.clock } : {}),
  });
  metrics.setEngine(engine);
  const app = buildServer({
    config,
    engine,
    logger: logger ?? false,
    beforeRoutes: (a) => metrics.install(a),
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.https ? { https: options.https } : {}),
  });
  return { engine, metrics, app };
}

function isLogger(x: unknown): x is FastifyBaseLogger {
  return typeof x === 'object' && x !== null && typeof (x as FastifyBaseLogger).child === 'function';
}

// One pino instance for both layers, so a job's lines and a request's lines go to the same place.
function toLogger(option: FastifyBaseLogger | boolean | object): FastifyBaseLogger | undefined {
  if (option === false) return undefined;
  if (isLogger(option)) return option;
  return Fastify({ logger: option === true ? true : (option as object) }).log;
}
