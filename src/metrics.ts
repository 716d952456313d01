// Prometheus metrics (prom-client): what the engine did (counted as it happens, through its
// observer), what the catalog and the destinations hold (read at scrape time), HTTP request
// durations by route pattern, and prom-client's default process metrics.
// Every label is bounded: operations, results, methods, states, destination ids from the config,
// route patterns and status codes. Never a snapshot or volume id.
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

import type { EngineObserver } from './snapshots/engine';
import type { DestinationStatus, EngineStats } from './snapshots/types';

/** What the metrics read from the engine at scrape time (Engine satisfies it). */
export interface MetricsSource {
  countByState(): Record<string, number>;
  byteTotals(): { allocated: number; exclusive: number };
  destinationStatus(): Promise<DestinationStatus[]>;
  stats(): EngineStats;
  /** When present and false (the catalog is closed, e.g. during shutdown), catalog gauges are skipped. */
  readonly catalogOpen?: boolean;
}

export interface MetricsOptions {
  /** May be given later with setEngine(): the engine needs the observer when it opens. */
  engine?: MetricsSource;
  /** Default process metrics (process_*, nodejs_*). Default true. */
  defaultMetrics?: boolean;
}

export interface FastifyMetricsOptions {
  /** Also serve GET <path> with the registry's text. Default '/metrics'; false for none. */
  path?: string | false;
}

export interface Metrics {
  registry: Registry;
  /** Pass to Engine.open({ observer }). */
  observer: EngineObserver;
  /** The Content-Type of registry.metrics() output. */
  contentType: string;
  setEngine(engine: MetricsSource): void;
  /** Adds the request-duration hooks (and GET /metrics) to `app` itself, not to a child context:
   *  call it as metrics.install(app) before the routes are registered, or app.register(metrics.plugin). */
  install(app: FastifyInstance, opts?: FastifyMetricsOptions): void;
  /** The same as a Fastify plugin that is not encapsulated (its hooks see every route). */
  plugin: FastifyPluginAsync<FastifyMetricsOptions>;
}

/** Label for requests that matched no route (404s, scans): one value, never the raw url. */
export const UNMATCHED_ROUTE = 'unmatched';

// 1 ms to 10 min: a reflink of a small volume is a millisecond; a copy of a large one, minutes.
export const SNAPSHOT_DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];
export const HTTP_DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

const OPS = ['create', 'delete', 'restore'] as const;
const RESULTS = ['success', 'failure'] as const;
const METHODS = ['reflink', 'copy'] as const;

export function createMetrics(opts: MetricsOptions = {}): Metrics {
  const registry = new Registry();
  let engine = opts.engine;
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry });
  const registers = [registry];

  const operations = new Counter({
    name: 'volsnapd_snapshot_operations_total',
    help: 'Snapshot operations finished, by operation and result.',
    labelNames: ['op', 'result'] as const,
    registers,
  });
  const duration = new Histogram({
    name: 'volsnapd_snapshot_duration_seconds',
    help: 'Time a snapshot operation took, by operation and method (unknown when it failed before choosing).',
    labelNames: ['op', 'method'] as const,
    buckets: SNAPSHOT_DURATION_BUCKETS,
    registers,
  });
  const bytesCopied = new Counter({
    name: 'volsnapd_snapshot_bytes_copied_total',
    help: 'Bytes written by snapshot creates and restores, by method (a reflink copies none).',
    labelNames: ['method'] as const,
    registers,
  });
  // Series that exist from the start, so rate() and increase() see the first event.
  for (const op of OPS) for (const result of RESULTS) operations.inc({ op, result }, 0);
  for (const method of METHODS) bytesCopied.inc({ method }, 0);

  const catalogReadable = (): MetricsSource | undefined => (engine && engine.catalogOpen !== false ? engine : undefined);

  new Gauge({
    name: 'volsnapd_snapshots',
    help: 'Snapshots in the catalog, by state.',
    labelNames: ['state'] as const,
    registers,
    collect() {
      this.reset();
      const src = catalogReadable();
      if (!src) return;
      for (const [state, n] of Object.entries(src.countByState())) this.set({ state }, n);
    },
  });
  new Gauge({
    name: 'volsnapd_snapshot_exclusive_bytes',
    help: 'Bytes held by available snapshots alone (not shared with their volume or other snapshots), at their creation.',
    registers,
    collect() {
      const src = catalogReadable();
      if (src) this.set(src.byteTotals().exclusive);
    },
  });
  new Gauge({
    name: 'volsnapd_snapshot_allocated_bytes',
    help: 'Bytes allocated to available snapshot files, shared or not.',
    registers,
    collect() {
      const src = catalogReadable();
      if (src) this.set(src.byteTotals().allocated);
    },
  });

  // Both destination gauges come from one statfs/probe pass per scrape.
  let pendingStatus: Promise<DestinationStatus[]> | undefined;
  const destinationStatus = (): Promise<DestinationStatus[]> => {
    if (!engine) return Promise.resolve([]);
    pendingStatus ??= engine.destinationStatus().finally(() => {
      setImmediate(() => (pendingStatus = undefined));
    });
    return pendingStatus;
  };
  new Gauge({
    name: 'volsnapd_destination_free_bytes',
    help: 'Free bytes on the filesystem of each destination (for an unprivileged writer).',
    labelNames: ['destination'] as const,
    registers,
    async collect() {
      this.reset();
      for (const d of await destinationStatus()) this.set({ destination: d.id }, d.freeBytes);
    },
  });
  new Gauge({
    name: 'volsnapd_destination_reflink',
    help: '1 when volumes reflink into the destination (snapshots are copy-on-write), 0 when they are copies.',
    labelNames: ['destination'] as const,
    registers,
    async collect() {
      this.reset();
      for (const d of await destinationStatus()) this.set({ destination: d.id }, d.reflink ? 1 : 0);
    },
  });
  const statGauge = (name: string, help: string, pick: (s: EngineStats) => number): void => {
    new Gauge({
      name,
      help,
      registers,
      collect() {
        if (engine) this.set(pick(engine.stats()));
      },
    });
  };
  statGauge('volsnapd_jobs_running', 'Snapshot and restore jobs running now.', (s) => s.jobsRunning);
  statGauge('volsnapd_jobs_queued', 'Snapshot and restore jobs waiting for a slot.', (s) => s.jobsQueued);
  statGauge('volsnapd_orphan_files', 'Files in destinations that no catalog row claims (as of the last check).', (s) => s.orphanFiles);

  const httpDuration = new Histogram({
    name: 'volsnapd_http_request_duration_seconds',
    help: 'HTTP request durations, by method, route pattern and status code.',
    labelNames: ['method', 'route', 'status_code'] as const,
    buckets: HTTP_DURATION_BUCKETS,
    registers,
  });

  const observer: EngineObserver = {
    operation(op, result, details) {
      operations.inc({ op, result });
      duration.observe({ op, method: details.method ?? 'unknown' }, details.seconds);
      if (details.method && details.bytesCopied !== undefined) bytesCopied.inc({ method: details.method }, details.bytesCopied);
    },
  };

  const install = (app: FastifyInstance, fopts: FastifyMetricsOptions = {}): void => {
    app.addHook('onResponse', async (request, reply) => {
      const route = request.routeOptions.url ?? UNMATCHED_ROUTE;
      httpDuration.observe({ method: request.method, route, status_code: String(reply.statusCode) }, reply.elapsedTime / 1000);
    });
    const path = fopts.path ?? '/metrics';
    if (path !== false) {
      app.get(path, async (_request, reply) => {
        const body = await registry.metrics();
        return reply.type(registry.contentType).send(body);
      });
    }
  };

  const plugin: FastifyPluginAsync<FastifyMetricsOptions> = async (app, fopts) => install(app, fopts);
  // The same marker fastify-plugin sets: register() then adds the hooks to the parent context.
  (plugin as unknown as Record<symbol, boolean>)[Symbol.for('skip-override')] = true;

  return {
    registry,
    observer,
    contentType: registry.contentType,
    setEngine(e) {
      engine = e;
    },
    install,
    plugin,
  };
}
