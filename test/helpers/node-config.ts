// A daemon configuration rooted in one test directory (or spread over several mounts).
import * as fs from 'node:fs';
import * as path from 'node:path';

import { defaultConfig, ensureDirectories, type Config, type Destination } from '../../src/config';

export function testConfig(base: string, overrides: {
  volumesDir?: string;
  destinations?: Array<Pick<Destination, 'id' | 'path'> & { displayName?: string }>;
  concurrency?: number;
  allowInconsistentCopy?: boolean;
} = {}): Config {
  const config = defaultConfig(base);
  config.listen.port = 0;
  if (overrides.volumesDir) config.volumesDir = overrides.volumesDir;
  if (overrides.destinations) {
    config.destinations = overrides.destinations.map((d) => ({ id: d.id, driver: 'local', displayName: d.displayName ?? d.id, path: d.path }));
  }
  if (overrides.concurrency) config.jobs.concurrency = overrides.concurrency;
  if (overrides.allowInconsistentCopy) config.allowInconsistentCopy = true;
  ensureDirectories(config);
  return config;
}

export function writeConfigFile(config: Config, file: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(config));
}
