// Some tests run compiled code in child processes (crash injection, the daemon, the CLI):
// compile once before the run so dist/ matches the sources.
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';

export default function setup(): void {
  // For a developer who just compiled (npm run build) and reruns one file.
  if (process.env.VOLSNAPD_TEST_NO_BUILD === '1') return;
  const root = path.resolve(__dirname, '..', '..');
  execFileSync(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', root], { stdio: 'inherit' });
}
