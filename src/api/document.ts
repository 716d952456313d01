// Catalog records → the documents the API sends (api.md, "show"). The field order is part of the
// contract: dcmgr's fields first, in the seed's order, then this daemon's extensions. The JSON
// schemas below serialise the replies (in this order) and feed the OpenAPI document.

import type { SnapshotRecord } from '../catalog';
import { SNAPSHOT_STATES } from '../catalog';
import type { VolumeInfo } from '../snapshots/types';

const MIB = 1024 * 1024;

/** dcmgr stored sizes in MB: MiB, integer, rounded up. */
export function mebibytes(bytes: number): number {
  return Math.ceil(bytes / MIB);
}

export function isoTime(ms: number): string {
  return new Date(ms).toISOString();
}

export interface SnapshotDocument {
  id: string;
  uuid: string;
  state: string;
  size: number;
  origin_volume_id: string;
  destination_id: string;
  destination_name: string;
  backing_store: 'raw';
  created_at: string;
  deleted_at: string | null;
  storage_node_id: string;
  account_id: string;
  display_name: string | null;
  updated_at: string;
  progress: number;
  method: string | null;
  consistency: string | null;
  allocated_bytes: number | null;
  shared_bytes: number | null;
  exclusive_bytes: number | null;
  checksum?: string;
  error?: string;
}

/** `destinationName` maps a destination id to its display_name (the id itself when unknown). */
export function snapshotDocument(r: SnapshotRecord, destinationName: (id: string) => string | undefined): SnapshotDocument {
  const doc: SnapshotDocument = {
    id: r.id,
    uuid: r.id,
    state: r.state,
    size: mebibytes(r.sizeBytes),
    origin_volume_id: r.originVolumeId,
    destination_id: r.destinationId,
    // A destination removed from the repository config since keeps its id as its name.
    destination_name: destinationName(r.destinationId) ?? r.destinationId,
    backing_store: 'raw',
    created_at: isoTime(r.createdAt),
    deleted_at: r.deletedAt === null ? null : isoTime(r.deletedAt),
    storage_node_id: r.storageNodeId,
    account_id: r.accountId,
    display_name: r.displayName,
    updated_at: isoTime(r.updatedAt),
    progress: r.progress,
    method: r.method,
    consistency: r.consistency,
    allocated_bytes: r.allocatedBytes,
    shared_bytes: r.sharedBytes,
    exclusive_bytes: r.exclusiveBytes,
  };
  if (r.checksum !== null) doc.checksum = r.checksum;
  if (r.state === 'failed') doc.error = r.error ?? 'unknown failure';
  return doc;
}

export interface VolumeDocument {
  id: string;
  uuid: string;
  size: number;
  storage_node_id: string;
  backing_store: 'raw';
  created_at: string;
  size_bytes: number;
  allocated_bytes: number;
}

export function volumeDocument(v: VolumeInfo, nodeId: string): VolumeDocument {
  return {
    id: v.id,
    uuid: v.id,
    size: mebibytes(v.sizeBytes),
    storage_node_id: nodeId,
    backing_store: 'raw',
    created_at: isoTime(v.createdAt),
    size_bytes: v.sizeBytes,
    allocated_bytes: v.allocatedBytes,
  };
}

const nullable = (type: string) => ({ type: [type, 'null'] });
const time = { type: 'string', format: 'date-time' };

export const SNAPSHOT_DOCUMENT_SCHEMA = {
  $id: 'SnapshotDocument',
  type: 'object',
  required: ['id', 'uuid', 'state', 'size', 'origin_volume_id', 'destination_id', 'destination_name', 'backing_store', 'created_at', 'deleted_at'],
  properties: {
    id: { type: 'string', description: 'canonical id, snap-…' },
    uuid: { type: 'string', description: 'the same canonical id' },
    state: { type: 'string', enum: [...SNAPSHOT_STATES] },
    size: { type: 'integer', description: 'size of the origin volume, MiB rounded up' },
    origin_volume_id: { type: 'string' },
    destination_id: { type: 'string' },
    destination_name: { type: 'string' },
    backing_store: { type: 'string', enum: ['raw'] },
    created_at: time,
    deleted_at: { ...nullable('string'), format: 'date-time' },
    storage_node_id: { type: 'string' },
    account_id: { type: 'string' },
    display_name: nullable('string'),
    updated_at: time,
    progress: { type: 'integer', minimum: 0, maximum: 100 },
    method: { type: ['string', 'null'], enum: ['reflink', 'copy', null] },
    consistency: { type: ['string', 'null'], enum: ['point-in-time', 'inconsistent', null] },
    allocated_bytes: nullable('integer'),
    shared_bytes: nullable('integer'),
    exclusive_bytes: { ...nullable('integer'), description: 'space only this snapshot holds: what deleting it frees' },
    checksum: { type: 'string' },
    error: { type: 'string', description: 'why it failed (state failed only)' },
  },
} as const;

export const VOLUME_DOCUMENT_SCHEMA = {
  $id: 'VolumeDocument',
  type: 'object',
  required: ['id', 'uuid', 'size', 'storage_node_id', 'backing_store', 'created_at', 'size_bytes', 'allocated_bytes'],
  properties: {
    id: { type: 'string', description: 'vol-…' },
    uuid: { type: 'string' },
    size: { type: 'integer', description: 'MiB rounded up' },
    storage_node_id: { type: 'string' },
    backing_store: { type: 'string', enum: ['raw'] },
    created_at: time,
    size_bytes: { type: 'integer' },
    allocated_bytes: { type: 'integer' },
  },
} as const;

/** dcmgr's list shape: a one-element array; `results` is what clients read, `result` the seed's name. */
export function listSchema(itemRef: string) {
  return {
    type: 'array',
    minItems: 1,
    maxItems: 1,
    items: {
      type: 'object',
      required: ['owner_total', 'start', 'limit', 'results', 'result'],
      properties: {
        owner_total: { type: 'integer' },
        start: { type: 'integer' },
        limit: nullable('integer'),
        results: { type: 'array', items: { $ref: `${itemRef}#` } },
        result: { type: 'array', items: { $ref: `${itemRef}#` } },
      },
    },
  };
}

export interface ListDocument<T> {
  owner_total: number;
  start: number;
  limit: number | null;
  results: T[];
  result: T[];
}

export function listDocument<T>(total: number, start: number, limit: number | null, items: T[]): [ListDocument<T>] {
  return [{ owner_total: total, start, limit, results: items, result: items }];
}
