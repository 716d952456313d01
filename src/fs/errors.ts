// The one error class of the file layer: what failed (syscall), on which file (path), and why
// (code: the errno name such as ENOSPC, EXDEV, or a volsnapd code such as ELEASEBROKEN).

export class NativeError extends Error {
  override name = 'NativeError';
  readonly code: string;
  readonly syscall: string;
  readonly path?: string;
  readonly errno?: number;

  constructor(message: string, code: string, syscall: string, path?: string, errno?: number) {
    super(message);
    this.code = code;
    this.syscall = syscall;
    this.path = path;
    this.errno = errno;
  }

  // Re-homes an error from the addon (thrown on a worker's completion, so its stack shows no
  // caller) onto the stack captured where the public function was called.
  static fromNative(raw: unknown, callerStack: string | undefined): NativeError {
    const e = raw as { message?: string; code?: string; syscall?: string; path?: string; errno?: number };
    const err = new NativeError(
      e.message ?? String(raw),
      e.code ?? 'EUNKNOWN',
      e.syscall ?? 'unknown',
      e.path,
      e.errno,
    );
    if (callerStack) err.stack = `${err.name}: ${err.message}\n${callerStack.split('\n').slice(1).join('\n')}`;
    return err;
  }
}

export function isNativeError(e: unknown, ...codes: string[]): e is NativeError {
  return e instanceof NativeError && (codes.length === 0 || codes.includes(e.code));
}

// Captures the caller's stack before an asynchronous native call. `above` is the public function,
// so the first frame shown is the code that called it.
export function captureCaller(above: Function): string | undefined {
  const holder: { stack?: string } = {};
  Error.captureStackTrace(holder, above);
  return holder.stack;
}
