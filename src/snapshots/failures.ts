// Why a snapshot failed, in words an operator can act on (the snapshot's `error` field).
import { isNativeError } from '../fs';

export const SHUTDOWN_REASON = 'cancelled: the daemon is shutting down';

export function describeFailure(e: unknown, allowInconsistent: boolean): string {
  if (isNativeError(e, 'ECANCELED')) return SHUTDOWN_REASON;
  if (isNativeError(e, 'EAGAIN') && e.syscall.startsWith('fcntl')) {
    return 'the volume is open for writing (a running VM?) and this destination cannot reflink, so a copy would not be point-in-time; stop the VM, use a destination on the volume filesystem, or set allow_inconsistent_copy';
  }
  if (isNativeError(e, 'ELEASEBROKEN')) {
    return 'the volume was opened for writing during the copy, so the copy would not be point-in-time; it was abandoned' + (allowInconsistent ? '' : ' (allow_inconsistent_copy is off)');
  }
  if (isNativeError(e, 'ENOSPC')) return `out of disk space: ${e.message}`;
  return e instanceof Error ? e.message : String(e);
}
