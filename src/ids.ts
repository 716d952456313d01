// Wakame-style resource ids: a prefix, a dash, lowercase letters and digits.
//
// The patterns are strings so that the HTTP layer can put them in JSON schemas unchanged; the
// RegExp objects below are built from the same strings. Anything that fails these checks is
// rejected before it can become part of a file name (no '/', '.', NUL, uppercase or empty ids).

import { randomInt } from 'node:crypto';

export const SNAPSHOT_ID_PATTERN = '^snap-[a-z0-9]{1,64}$';
export const VOLUME_ID_PATTERN = '^vol-[a-z0-9]{1,64}$';
export const NODE_ID_PATTERN = '^sn-[a-z0-9]{1,64}$';
export const ACCOUNT_ID_PATTERN = '^a-[a-z0-9]{1,64}$';
/** Keys of snapshot_repository.yml (`local`, `backup`, ...); they appear in the API as destination ids. */
export const DESTINATION_ID_PATTERN = '^[a-z0-9][a-z0-9_-]{0,63}$';

export const SNAPSHOT_ID_RE = new RegExp(SNAPSHOT_ID_PATTERN);
export const VOLUME_ID_RE = new RegExp(VOLUME_ID_PATTERN);
export const NODE_ID_RE = new RegExp(NODE_ID_PATTERN);
export const ACCOUNT_ID_RE = new RegExp(ACCOUNT_ID_PATTERN);
export const DESTINATION_ID_RE = new RegExp(DESTINATION_ID_PATTERN);

/** Length of the random part of ids this daemon generates (Wakame's `snap-xxxxxxxx`). */
export const GENERATED_ID_LENGTH = 8;

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

function matches(re: RegExp, value: unknown): value is string {
  return typeof value === 'string' && re.test(value);
}

export function isSnapshotId(value: unknown): value is string {
  return matches(SNAPSHOT_ID_RE, value);
}

export function isVolumeId(value: unknown): value is string {
  return matches(VOLUME_ID_RE, value);
}

export function isNodeId(value: unknown): value is string {
  return matches(NODE_ID_RE, value);
}

export function isAccountId(value: unknown): value is string {
  return matches(ACCOUNT_ID_RE, value);
}

export function isDestinationId(value: unknown): value is string {
  return matches(DESTINATION_ID_RE, value);
}

// randomInt draws uniformly (it rejects biased bytes internally), so every id is one of 36^8
// equally likely values; a collision is caught by the catalog's UNIQUE constraint, not here.
function randomPart(length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) out += ALPHABET[randomInt(ALPHABET.length)];
  return out;
}

export function newSnapshotId(): string {
  return `snap-${randomPart(GENERATED_ID_LENGTH)}`;
}

export function newVolumeId(): string {
  return `vol-${randomPart(GENERATED_ID_LENGTH)}`;
}
