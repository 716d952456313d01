import type { SnapshotState } from './types';

/** Anything the catalog cannot do: open, migrate, verify or write its file. */
export class CatalogError extends Error {
  /** SQLite's extended result code when SQLite raised it (SQLITE_CORRUPT, SQLITE_BUSY, ...). */
  readonly code: string | undefined;

  constructor(message: string, options?: { cause?: unknown; code?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CatalogError';
    this.code = options?.code ?? sqliteCode(options?.cause);
  }
}

export class DuplicateSnapshotError extends CatalogError {
  constructor(readonly snapshotId: string, cause?: unknown) {
    super(`snapshot ${snapshotId} is already in the catalog`, { cause });
    this.name = 'DuplicateSnapshotError';
  }
}

export class UnknownSnapshotError extends CatalogError {
  constructor(readonly snapshotId: string) {
    super(`snapshot ${snapshotId} is not in the catalog`);
    this.name = 'UnknownSnapshotError';
  }
}

/** The row was not in any of the states the caller expected (someone else moved it first). */
export class StateConflictError extends CatalogError {
  constructor(
    readonly snapshotId: string,
    readonly expected: readonly SnapshotState[],
    readonly actual: SnapshotState,
  ) {
    super(`snapshot ${snapshotId} is ${actual}, expected ${expected.join(' or ')}`);
    this.name = 'StateConflictError';
  }
}

export function sqliteCode(err: unknown): string | undefined {
  if (err !== null && typeof err === 'object' && 'code' in err && typeof err.code === 'string') return err.code;
  return undefined;
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
