// The addon's raw face: loaded once, typed here, called only from src/fs/.
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface NativeCancellation {
  cancel(): void;
  cancelled(): boolean;
}

export type ProgressCallback = (done: number, total: number) => void;

export interface NativeCloneResult {
  bytes: number;
  slices: number;
}

export interface NativeCopyResult {
  size: number;
  dataBytes: number;
  bytesCopied: number;
  fallbackBytes: number;
  leaseHeld: boolean;
}

export interface NativeExtents {
  size: number;
  blocks: number;
  allocatedBytes: number;
  sharedBytes: number;
  unwrittenBytes: number;
  extentCount: number;
}

export const LEASE_MODES = { none: 0, try: 1, require: 2 } as const;

export interface NativeBinding {
  Cancellation: new () => NativeCancellation;
  clone(
    src: string,
    dst: string,
    sliceBytes: number,
    onProgress?: ProgressCallback,
    cancel?: NativeCancellation,
  ): Promise<NativeCloneResult>;
  copySparse(
    src: string,
    dst: string,
    chunkBytes: number,
    leaseMode: number,
    dropSourceCache: boolean,
    onProgress?: ProgressCallback,
    cancel?: NativeCancellation,
  ): Promise<NativeCopyResult>;
  extents(file: string): Promise<NativeExtents>;
  sendNotify(socketPath: string, message: string): void;
  lockFile(file: string): number;
}

// The package root is the nearest directory above this file holding package.json; the same code
// runs from src/ (tests) and dist/src/ (the daemon).
function packageRoot(): string {
  let dir = __dirname;
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'binding.gyp'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`volsnapd: cannot find the package root above ${__dirname}`);
    dir = up;
  }
}

function load(): NativeBinding {
  const file = path.join(packageRoot(), 'build', 'Release', 'volsnap_native.node');
  if (!fs.existsSync(file)) {
    throw new Error(`volsnapd: the native addon is not built (${file} is missing); run "npm install" or "npm run build:native"`);
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(file) as NativeBinding;
}

export const native: NativeBinding = load();
