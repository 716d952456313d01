import { describe, it, expect } from 'vitest';
import {
  ACCOUNT_ID_PATTERN,
  DESTINATION_ID_PATTERN,
  NODE_ID_PATTERN,
  SNAPSHOT_ID_PATTERN,
  VOLUME_ID_PATTERN,
  isAccountId,
  isDestinationId,
  isNodeId,
  isSnapshotId,
  isVolumeId,
  newSnapshotId,
  newVolumeId,
} from '../src/ids';

// Values that must never pass as any id: path tricks, NUL, case, whitespace, empty, non-strings.
const hostile: unknown[] = [
  '',
  '../',
  '../../etc/passwd',
  'snap-../x',
  'snap-abc/def',
  'snap-abc\0',
  'snap-abc\n',
  'snap-abc ',
  ' snap-abc',
  'snap-ABCD1234',
  'SNAP-abcd1234',
  'snap-',
  'snap',
  'snap-abc.snap',
  'snap-' + 'a'.repeat(65),
  undefined,
  null,
  42,
  ['snap-abcd1234'],
];

describe('id patterns', () => {
  it('are the documented strings', () => {
    expect(SNAPSHOT_ID_PATTERN).toBe('^snap-[a-z0-9]{1,64}$');
    expect(VOLUME_ID_PATTERN).toBe('^vol-[a-z0-9]{1,64}$');
    expect(NODE_ID_PATTERN).toBe('^sn-[a-z0-9]{1,64}$');
    expect(ACCOUNT_ID_PATTERN).toBe('^a-[a-z0-9]{1,64}$');
    expect(DESTINATION_ID_PATTERN).toBe('^[a-z0-9][a-z0-9_-]{0,63}$');
  });

  it('accept well-formed ids', () => {
    expect(isSnapshotId('snap-abcd1234')).toBe(true);
    expect(isSnapshotId('snap-' + 'z'.repeat(64))).toBe(true);
    expect(isSnapshotId('snap-0')).toBe(true);
    expect(isVolumeId('vol-abcd1234')).toBe(true);
    expect(isNodeId('sn-local0001')).toBe(true);
    expect(isAccountId('a-shpoolxx')).toBe(true);
    expect(isDestinationId('local')).toBe(true);
    expect(isDestinationId('backup_2-disk')).toBe(true);
  });

  it('reject path tricks, NUL, uppercase, empty and non-strings', () => {
    for (const check of [isSnapshotId, isVolumeId, isNodeId, isAccountId]) {
      for (const value of hostile) expect(check(value), `${check.name}(${JSON.stringify(value)})`).toBe(false);
    }
    // 'snap' and 'snap-' are fine destination keys; every other hostile value is not.
    for (const value of hostile.filter((v) => v !== 'snap' && v !== 'snap-')) {
      expect(isDestinationId(value), `isDestinationId(${JSON.stringify(value)})`).toBe(false);
    }
    expect(isVolumeId('vol-../x')).toBe(false);
    expect(isVolumeId('snap-abcd1234')).toBe(false);
    expect(isSnapshotId('vol-abcd1234')).toBe(false);
    expect(isNodeId('sn-Local')).toBe(false);
    expect(isAccountId('a-')).toBe(false);
    expect(isDestinationId('-local')).toBe(false);
    expect(isDestinationId('_local')).toBe(false);
    expect(isDestinationId('.snapshots')).toBe(false);
    expect(isDestinationId('Local')).toBe(false);
    expect(isDestinationId('a'.repeat(65))).toBe(false);
  });

  it('work as JSON-schema patterns (plain strings compiled with the u flag)', () => {
    expect(new RegExp(SNAPSHOT_ID_PATTERN, 'u').test('snap-abcd1234')).toBe(true);
    expect(new RegExp(SNAPSHOT_ID_PATTERN, 'u').test('snap-abcd1234\n')).toBe(false);
  });
});

describe('generated ids', () => {
  it('have the Wakame shape: prefix and 8 lowercase letters or digits', () => {
    for (let i = 0; i < 100; i++) {
      expect(newSnapshotId()).toMatch(/^snap-[a-z0-9]{8}$/);
      expect(newVolumeId()).toMatch(/^vol-[a-z0-9]{8}$/);
    }
    expect(isSnapshotId(newSnapshotId())).toBe(true);
    expect(isVolumeId(newVolumeId())).toBe(true);
  });

  it('are unique over 10,000', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 10_000; i++) seen.add(newSnapshotId());
    expect(seen.size).toBe(10_000);
  });

  it('use the whole alphabet', () => {
    const chars = new Set<string>();
    for (let i = 0; i < 2_000; i++) for (const c of newSnapshotId().slice(5)) chars.add(c);
    expect(chars.size).toBe(36);
  });
});
