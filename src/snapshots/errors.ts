// What the engine refuses, named by the Wakame error each maps to. The engine knows nothing of
// HTTP; src/api/errors.ts maps these names to Wakame codes and statuses.

export type EngineErrorName =
  | 'UnknownVolume' // the origin volume does not exist on this node
  | 'UnknownVolumeSnapshot' // no such snapshot (or another account's)
  | 'UnknownStorageNode' // storage_pool_id is not this node
  | 'InvalidParameter' // unknown destination, a bad value that passed the schema
  | 'OutOfDiskSpace' // the destination cannot hold a copy
  | 'InvalidVolumeState' // delete of a snapshot that is not available/failed
  | 'Conflict' // caller-chosen id already used for another volume; volume id taken
  | 'ServiceUnavailable'; // shutting down, queue full

export class EngineError extends Error {
  override name = 'EngineError';
  constructor(
    readonly kind: EngineErrorName,
    message: string,
  ) {
    super(message);
  }
}

export function isEngineError(e: unknown, kind?: EngineErrorName): e is EngineError {
  return e instanceof EngineError && (kind === undefined || e.kind === kind);
}
