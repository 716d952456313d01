// statfs(2) f_type magic numbers of the filesystems a storage host is likely to use.
const FILESYSTEMS: Record<number, string> = {
  0x58465342: 'xfs',
  0x9123683e: 'btrfs',
  0xef53: 'ext4',
  0x01021994: 'tmpfs',
  0x2fc12fc1: 'zfs',
  0x794c7630: 'overlayfs',
  0x6969: 'nfs',
  0xff534d42: 'cifs',
  0x65735546: 'fuse',
  0xf2f52010: 'f2fs',
  0x5346544e: 'ntfs',
  0x4d44: 'vfat',
};

/** xfs, btrfs, ext4, …, or "unknown (0x…)" with the magic number. */
export function filesystemName(type: number): string {
  return FILESYSTEMS[type] ?? `unknown (0x${type.toString(16)})`;
}
