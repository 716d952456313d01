#!/usr/bin/env node
// volsnapd: load the configuration, open the engine (start-up reconciliation runs before anything
// is served), listen, tell systemd, and close in order on SIGTERM/SIGINT: stop accepting, let
// running jobs finish up to jobs.shutdown_deadline_seconds, cancel the rest (they end failed,
// nothing partial), close the catalog. A second signal cancels the jobs at once.

import * as fs from 'node:fs';
import type * as https from 'node:https';
import { createLogger, packageVersion } from './api/server';
import { ConfigError, ensureDirectories, loadConfig, type Config } from './config';
import { createNotifier } from './sd-notify';
import type { StorageNode } from './node';

const USAGE = `Usage: volsnapd [--config FILE]

Serves the Wakame-vdc volume_snapshots API for this storage node.

  --config FILE   volsnapd.yml (without it: built-in defaults, everything under ./var)
  --help          this text
  --version       print the version

Environment: VOLSNAPD_NODE_ID, VOLSNAPD_HOST, VOLSNAPD_PORT, VOLSNAPD_STATE_DIR,
VOLSNAPD_VOLUMES_DIR, VOLSNAPD_LOG_LEVEL override the file.
`;

export type Command = { run: 'serve'; configPath?: string } | { run: 'help' } | { run: 'version' } | { run: 'usage-error'; message: string };

export function parseArgs(argv: readonly string[]): Command {
  let configPath: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--help' || arg === '-h') return { run: 'help' };
    if (arg === '--version' || arg === '-V') return { run: 'version' };
    if (arg === '--config' || arg.startsWith('--config=')) {
      const value = arg === '--config' ? argv[++i] : arg.slice('--config='.length);
      if (value === undefined || value === '') return { run: 'usage-error', message: '--config needs a FILE' };
      if (configPath !== undefined) return { run: 'usage-error', message: '--config given twice' };
      configPath = value;
      continue;
    }
    return { run: 'usage-error', message: `unknown argument: ${arg}` };
  }
  return configPath === undefined ? { run: 'serve' } : { run: 'serve', configPath };
}

function tlsOptions(tls: NonNullable<Config['tls']>): https.ServerOptions {
  const options: https.ServerOptions = { cert: fs.readFileSync(tls.cert), key: fs.readFileSync(tls.key) };
  if (tls.clientCa !== undefined) {
    options.ca = fs.readFileSync(tls.clientCa);
    options.requestCert = true;
    options.rejectUnauthorized = true;
  }
  return options;
}

export async function main(argv: readonly string[]): Promise<number> {
  const command = parseArgs(argv);
  switch (command.run) {
    case 'help':
      process.stdout.write(USAGE);
      return 0;
    case 'version':
      process.stdout.write(`volsnapd ${packageVersion()}\n`);
      return 0;
    case 'usage-error':
      process.stderr.write(`volsnapd: ${command.message}\n\n${USAGE}`);
      return 2;
    case 'serve':
      break;
  }

  let config: Config;
  try {
    config = loadConfig(command.configPath === undefined ? {} : { configPath: command.configPath });
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    for (const problem of e.problems) process.stderr.write(`volsnapd: ${problem}\n`);
    return 2;
  }

  const logger = createLogger(config.logLevel);
  let node: StorageNode;
  let https: https.ServerOptions | undefined;
  let notifier = createNotifier({ send: () => undefined });
  try {
    if (config.tls) https = tlsOptions(config.tls);
    ensureDirectories(config);
    // Loaded here, not at the top: --help, --version and config errors need no native addon.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { openNode } = require('./node') as typeof import('./node');
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { native } = require('./fs/native') as typeof import('./fs/native');
    notifier = createNotifier({
      send: native.sendNotify,
      onError: (err, message) => logger.warn({ err, message }, 'systemd notification failed'),
    });
    // Reconciliation can take a while on a big catalog: keep the watchdog fed meanwhile.
    notifier.startWatchdog();
    notifier.status('reconciling the catalog with the files');
    node = await openNode(config, { logger, ...(https ? { https } : {}) });
  } catch (e) {
    logger.fatal({ err: e }, `cannot start: ${e instanceof Error ? e.message : String(e)}`);
    notifier.stop();
    return 1;
  }

  const { app, engine } = node;
  try {
    const address = await app.listen({ host: config.listen.host, port: config.listen.port });
    logger.info({ address, node_id: config.nodeId }, `volsnapd listening on ${address}`);
    notifier.ready();
    notifier.status(`serving on ${address}`);
  } catch (e) {
    logger.fatal({ err: e }, `cannot listen on ${config.listen.host}:${config.listen.port}`);
    await engine.close();
    notifier.stop();
    return 1;
  }

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) {
        logger.warn({ signal }, 'second signal: cancelling running snapshot jobs and closing connections now');
        engine.cancelJobs();
        app.server.closeAllConnections();
        return;
      }
      stopping = true;
      notifier.stopping();
      const deadlineMs = config.jobs.shutdownDeadlineMs;
      logger.info({ signal, deadline_ms: deadlineMs, jobs: engine.stats() }, 'stopping: no new requests; running jobs get until the deadline');
      // Each step in its own try, so a failing one does not keep the others from running.
      void (async () => {
        let code = 0;
        // Stop accepting now. Requests in flight finish; the ones waiting on a job (restores)
        // finish with it, so they are bounded by the jobs' deadline below, not by idle sockets.
        const httpClosed = app.close().then(
          () => logger.info({}, 'HTTP server closed'),
          (e: unknown) => {
            logger.error({ err: e }, 'closing the HTTP server failed');
            code = 1;
          },
        );
        try {
          await engine.stopJobs(deadlineMs);
        } catch (e) {
          logger.error({ err: e }, 'stopping the jobs failed');
          code = 1;
        }
        // Every job is done or cancelled, so every answer is on its way: give the last ones a
        // moment to leave, then drop what is still connected.
        const grace = setTimeout(() => app.server.closeAllConnections(), 1000);
        await httpClosed;
        clearTimeout(grace);
        try {
          await engine.close(0);
        } catch (e) {
          logger.error({ err: e }, 'closing the engine failed');
          code = 1;
        }
        notifier.stop();
        logger.info({}, 'stopped');
        resolve(code);
      })();
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: unknown) => {
      process.stderr.write(`volsnapd: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exit(1);
    },
  );
}
