// The erofs on-disk encodings strata writes (src/erofs/format.ts), against the kernel's rules:
// directory entries sorted bytewise and never split across blocks, device numbers in the
// kernel's new_encode_dev form, xattr names by prefix index.

import { BLOCK_SIZE, DIRENT_SIZE, encodeDevice, encodeXattrs, packDirectory, storableXattr, xattrCount } from '../../src/erofs/format.js';

/** The entries of packed directory blocks, read back as the kernel reads them. */
function readBack(blocks: Buffer[]): { name: string; nid: number; type: number }[] {
  return blocks.flatMap((block) => {
    const count = block.readUInt16LE(8) / DIRENT_SIZE;
    return Array.from({ length: count }, (_, i) => {
      const start = block.readUInt16LE(i * DIRENT_SIZE + 8);
      const end = i + 1 < count ? block.readUInt16LE((i + 1) * DIRENT_SIZE + 8) : block.indexOf(0, start) < 0 ? block.length : block.indexOf(0, start);
      return { name: block.toString('latin1', start, end), nid: Number(block.readBigUInt64LE(i * DIRENT_SIZE)), type: block.readUInt8(i * DIRENT_SIZE + 10) };
    });
  });
}

test('directory entries come out sorted by bytes, "." and ".." among them', () => {
  const names = ['zed', 'Zed', '-dash', '.', '..', '#hash', '\xfc', 'a'];
  const blocks = packDirectory(names.map((name, nid) => ({ name, nid, type: 1 })));
  expect(blocks).toHaveLength(1);
  expect(readBack(blocks).map((entry) => entry.name)).toEqual(['#hash', '-dash', '.', '..', 'Zed', 'a', 'zed', '\xfc']);
  expect(blocks[0].length).toBe(names.length * DIRENT_SIZE + names.join('').length);
});

test('a large directory fills whole blocks, no entry crosses one, and every entry keeps its nid', () => {
  const entries = Array.from({ length: 700 }, (_, i) => ({ name: `entry-with-a-long-name-${String(i).padStart(4, '0')}`, nid: 1000 + i, type: 2 }));
  const blocks = packDirectory(entries);
  expect(blocks.length).toBeGreaterThan(1);
  expect(blocks.slice(0, -1).every((block) => block.length === BLOCK_SIZE)).toBe(true);
  expect(readBack(blocks)).toEqual(entries);
  // Each block's first name is greater than the previous block's last: binary search over blocks works.
  const firsts = blocks.map((block) => readBack([block])[0].name);
  expect([...firsts].sort()).toEqual(firsts);
});

test('device numbers use the kernel encoding (major 12 bits, minor 20 bits split)', () => {
  expect(encodeDevice(0, 0)).toBe(0);
  expect(encodeDevice(1, 3)).toBe(0x103);
  expect(encodeDevice(300, 70000)).toBe((70000 & 0xff) | (300 << 8) | ((70000 & ~0xff) << 12));
});

test('xattrs: known namespaces by index, the rest left out; the area size gives i_xattr_icount', () => {
  expect(storableXattr('user.x', 'v')).toBe(true);
  expect(storableXattr('system.posix_acl_access', 'v')).toBe(true);
  expect(storableXattr('system.nfs4_acl', 'v')).toBe(false);
  expect(storableXattr('user.', 'v')).toBe(false);
  expect(storableXattr('user.x', 'v'.repeat(65536))).toBe(false);
  const area = encodeXattrs([
    { name: 'user.note', value: 'hello' },
    { name: 'trusted.overlay.opaque', value: 'y' },
  ]);
  // 12-byte header, then (4 + 4 + 5 -> 16) and (4 + 14 + 1 -> 20).
  expect(area.length).toBe(12 + 16 + 20);
  expect([area[12], area[13], area.readUInt16LE(14), area.toString('latin1', 16, 25)]).toEqual([4, 1, 5, 'notehello']);
  expect(area[28 + 1]).toBe(4);
  expect(xattrCount(area.length)).toBe(1 + (16 + 20) / 4);
  expect(xattrCount(0)).toBe(0);
});
