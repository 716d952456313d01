export { Catalog, CATALOG_FILE_NAME, type CatalogOptions } from './catalog';
export { CatalogError, DuplicateSnapshotError, StateConflictError, UnknownSnapshotError } from './errors';
export { SCHEMA_VERSION } from './migrations';
export * from './types';
