// The mark that makes a `--container-save=PATH` file usable as an image: written by the save as
// the squashfs root's `user.strata.saved-layer` attribute, read back by rdsquashfs from files
// built by the real tar2sqfs (the save's own entry, and forged ones a user could make), and the
// base it names looked up in a real store directory. The file is the user's: every forged form
// is refused by name or read as a plain file, never as another base.

import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isStrataError } from '../../src/errors.js';
import { savedMarkerEntry } from '../../src/runtime/save/oci-layer.js';
import { parseSavedMarker, SAVED_MARKER_XATTR, savedMarkerValue } from '../../src/store/import/saved-marker.js';
import { readSavedMarker } from '../../src/store/import/squashfs-file.js';
import { savedLayerBase } from '../../src/store/write/saved-file-base.js';
import { Store } from '../../src/store/store.js';
import { END_OF_ARCHIVE, encodeEntryHeader } from '../../src/tar/writer.js';
import { TYPE } from '../../src/tar/header.js';
import { prng, RUNS, SEED, mutateString } from '../hostile/fuzz.js';

const BASE = `sha256:${'ab'.repeat(32)}`;
const line = (value: string) => `${SAVED_MARKER_XATTR}=${value}\n`;
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'strata-saved-marker-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A squashfs file from a tar whose root entry carries `xattrs`, built by tar2sqfs as the save does. */
function squashfsWithRoot(name: string, xattrs: Record<string, string>, rootEntry?: Buffer): string {
  const root = rootEntry ?? encodeEntryHeader({ name: './', mode: 0o755, uid: 0, gid: 0, size: 0, mtime: 0, typeflag: TYPE.dir }, Object.entries(xattrs).map(([key, value]) => ({ key: `SCHILY.xattr.${key}`, value })));
  const file = encodeEntryHeader({ name: 'etc/.wh.gone', mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 0, typeflag: TYPE.file });
  const path = join(dir, name);
  const made = spawnSync('/usr/bin/tar2sqfs', ['--quiet', '--no-skip', '--force', '--defaults', 'uid=0,gid=0,mode=0755,mtime=0', path], { input: Buffer.concat([root, file, END_OF_ARCHIVE]) });
  expect(made.stderr.toString()).toBe('');
  return path;
}

describe('parseSavedMarker (rdsquashfs --xattr / listing)', () => {
  test('the save\'s own value round-trips; no attribute is a plain file', () => {
    expect(parseSavedMarker(line(savedMarkerValue(BASE)))).toEqual({ kind: 'saved-layer', base: BASE });
    expect(parseSavedMarker('')).toEqual({ kind: 'none' });
    expect(parseSavedMarker('user.other=1\nsecurity.selinux=x\n')).toEqual({ kind: 'none' });
    expect(parseSavedMarker(`user.strata.saved-layerX=${savedMarkerValue(BASE)}\n`)).toEqual({ kind: 'none' });
  });

  test('savedMarkerValue takes only a manifest digest', () => {
    for (const bad of ['pytorch:1', `sha256:${'A'.repeat(64)}`, `sha256:${'a'.repeat(63)}`, `~bob/x:1`, `${BASE} extra`]) expect(() => savedMarkerValue(bad)).toThrow();
  });

  test.each([
    ['another version', `strata-saved-layer/2 base=${BASE}`, /not of a format/],
    ['a tag instead of a digest', 'strata-saved-layer/1 base=~bob/secret:1', /base=sha256/],
    ['a digest of capitals', `strata-saved-layer/1 base=sha256:${'AB'.repeat(32)}`, /base=sha256/],
    ['a short digest', `strata-saved-layer/1 base=sha256:${'a'.repeat(63)}`, /base=sha256/],
    ['something after the digest', `strata-saved-layer/1 base=${BASE} base=sha256:${'c'.repeat(64)}`, /base=sha256/],
    ['two spaces', `strata-saved-layer/1  base=${BASE}`, /base=sha256/],
    ['a path', 'strata-saved-layer/1 base=../../etc/shadow', /base=sha256/],
    ['a non-printable value (rdsquashfs shows hex)', '0x7601', /not of a format/],
    ['empty', '', /not of a format/],
  ])('refused: %s', (_what, value, why) => {
    const marker = parseSavedMarker(line(value));
    expect(marker.kind).toBe('invalid');
    expect(marker.kind === 'invalid' && marker.why).toMatch(why);
  });

  test('a second line naming the attribute (as a newline inside another value can forge) is refused, not picked', () => {
    const forged = `${line(savedMarkerValue(BASE))}user.a=x\n${line(savedMarkerValue(`sha256:${'c'.repeat(64)}`))}`;
    expect(parseSavedMarker(forged)).toEqual({ kind: 'invalid', why: `${SAVED_MARKER_XATTR} appears more than once` });
  });

  test('fuzz: every listing is plain, valid with a digest base, or invalid with a reason', () => {
    const random = prng(SEED);
    const seed = line(savedMarkerValue(BASE));
    for (let run = 0; run < RUNS; run++) {
      const input = mutateString(random, seed);
      const marker = parseSavedMarker(input);
      if (marker.kind === 'saved-layer') expect(marker.base).toMatch(/^sha256:[0-9a-f]{64}$/);
      if (marker.kind === 'invalid') expect(marker.why).toMatch(/^user\.strata\.saved-layer /);
    }
  });
});

describe('the mark in real squashfs files (tar2sqfs writes, rdsquashfs reads)', () => {
  test('the save\'s root entry puts the mark on the file\'s root; sqfs2tar (an import elsewhere) does not carry it', async () => {
    const path = squashfsWithRoot('saved.sqsh', {}, savedMarkerEntry(BASE));
    expect(await readSavedMarker(path)).toEqual({ kind: 'saved-layer', base: BASE });
    const tar = execFileSync('/bin/sh', ['-c', `/usr/bin/sqfs2tar --no-skip '${path}' | /usr/bin/tar -t`], { encoding: 'utf8' });
    expect(tar).toBe('etc/\netc/.wh.gone\n');
  });

  test('a plain squashfs (mksquashfs, as enroot makes them) has no mark', async () => {
    const tree = join(dir, 'tree');
    mkdirSync(join(tree, 'etc'), { recursive: true });
    writeFileSync(join(tree, 'etc', 'hello'), 'hi\n');
    execFileSync('/usr/bin/mksquashfs', [tree, join(dir, 'plain.sqsh'), '-noappend', '-quiet', '-all-root']);
    expect(await readSavedMarker(join(dir, 'plain.sqsh'))).toEqual({ kind: 'none' });
  });

  test('forged: a value with a newline that spells a second mark, binary values, a trusted. attribute', async () => {
    const injected = squashfsWithRoot('injected.sqsh', { 'user.a': `x\n${SAVED_MARKER_XATTR}=${savedMarkerValue(BASE)}`, [SAVED_MARKER_XATTR]: savedMarkerValue(`sha256:${'c'.repeat(64)}`) });
    expect(await readSavedMarker(injected)).toMatchObject({ kind: 'invalid', why: expect.stringMatching(/more than once/) });
    const binary = squashfsWithRoot('binary.sqsh', { [SAVED_MARKER_XATTR]: `strata-saved-layer/1 base=${BASE}\x01` });
    expect(await readSavedMarker(binary)).toMatchObject({ kind: 'invalid' });
    const trusted = squashfsWithRoot('trusted.sqsh', { 'trusted.strata.saved-layer': savedMarkerValue(BASE) });
    expect(await readSavedMarker(trusted)).toEqual({ kind: 'none' });
  });

  test('a file that is not a readable squashfs: one line, the user\'s error', async () => {
    const broken = join(dir, 'broken.sqsh');
    writeFileSync(broken, Buffer.concat([Buffer.from('hsqs'), Buffer.alloc(200, 0xff)]));
    const error = await readSavedMarker(broken).catch((thrown: unknown) => thrown);
    expect(isStrataError(error) && error.kind === 'user' && error.code).toBe('E_BAD_REF');
    expect((error as Error).message).toMatch(/^cannot read squashfs file .*broken\.sqsh: [^\n]+$/);
  });
});

describe('savedLayerBase: the recorded base in a real store directory', () => {
  let store: Store;
  let manifestDigest: string;
  let configDigest: string;

  beforeAll(() => {
    const root = join(dir, 'store');
    const blob = (text: string) => {
      const digest = `sha256:${createHash('sha256').update(text).digest('hex')}`;
      mkdirSync(join(root, 'blobs', 'sha256'), { recursive: true });
      writeFileSync(join(root, 'blobs', 'sha256', digest.slice(7)), text);
      return digest;
    };
    configDigest = blob(JSON.stringify({ rootfs: { type: 'layers', diff_ids: [] }, config: {} }));
    manifestDigest = blob(JSON.stringify({ schemaVersion: 2, config: { digest: configDigest, size: 1 }, layers: [] }));
    store = new Store(root, 'alice');
  });

  const errorOf = (promise: Promise<unknown>) => promise.then(() => undefined, (error: unknown) => error);

  test('a plain file has no base; a saved one has its base when the store holds it', async () => {
    expect(await savedLayerBase(store, '/f.sqsh', { kind: 'none' })).toBeUndefined();
    expect(await savedLayerBase(store, '/f.sqsh', { kind: 'saved-layer', base: manifestDigest })).toBe(manifestDigest);
  });

  test('a base no longer in the store: one line naming the digest and what to do', async () => {
    const missing = `sha256:${'d'.repeat(64)}`;
    const error = await errorOf(savedLayerBase(store, '/home/a/f.sqsh', { kind: 'saved-layer', base: missing }));
    expect(isStrataError(error) && error.code).toBe('E_SAVED_BASE_MISSING');
    expect((error as Error).message).toBe(`squashfs file /home/a/f.sqsh holds only the changes a job made to image ${missing}, which is no longer in the store`);
    expect(isStrataError(error) && error.hint).toMatch(/strata import tar:changes.tar --base NAME:TAG/);
  });

  test('forged: a digest of something that is not an image (an image config) is refused, as is an invalid mark', async () => {
    const notImage = await errorOf(savedLayerBase(store, '/f.sqsh', { kind: 'saved-layer', base: configDigest }));
    expect(isStrataError(notImage) && notImage.code).toBe('E_BAD_REF');
    expect((notImage as Error).message).toMatch(/which is not an image$/);
    const invalid = await errorOf(savedLayerBase(store, '/f.sqsh', { kind: 'invalid', why: 'x' }));
    expect(isStrataError(invalid) && [invalid.code, invalid.message]).toEqual(['E_BAD_REF', 'squashfs file /f.sqsh carries a strata save mark that is not valid: x']);
  });
});
