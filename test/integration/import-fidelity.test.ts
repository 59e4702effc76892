// Import fidelity: for every kind of change one layer can make to the layers below it (a file
// becoming a directory and back, directories becoming symlinks, hard links, whiteouts and opaque
// directories mixed with new entries, entries written twice, implied parents, `./` names), what a
// job sees after `strata import` + the prolog's real loop + overlayfs mounts is exactly what
// `umoci unpack` gives for the same image. Layers come from umoci itself (repack of a changed
// rootfs) and from hand-written tars (orders and shapes no single tool writes, but tar accepts).
// One image per producer, one directory per case, so a difference names its case. Each in both
// layer formats: squashfs (tar2sqfs) and uncompressed erofs (strata's own writer, mounted on the file).

import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { busyboxLayer, layerTar, writeLayout, type TarSpec } from '../helpers/oci.js';
import { expectNodeStateUnchanged, nodeState, type NodeState } from '../helpers/node-state.js';
import { makeSite, type Site } from '../helpers/site.js';
import { compareTrees, PER_JOB_PATHS } from '../helpers/tree-compare.js';

let site: Site;
let erofsSite: Site;
let before: NodeState;

beforeAll(() => {
  before = nodeState();
  site = makeSite('import-fidelity');
  erofsSite = makeSite('import-fidelity-erofs', 'import:\n  compression: none\n');
});

afterAll(() => {
  expectNodeStateUnchanged(before);
  site.remove();
  erofsSite.remove();
});

const dir = (name: string, mode = 0o755): TarSpec => ({ name, type: 'dir', mode });
const file = (name: string, content: string, mode = 0o644): TarSpec => ({ name, content, mode });
const whiteout = (name: string): TarSpec => ({ name, content: '' });

/** Hand-written cases: the lower layer's entries and the change layer's, in tar order. */
const CASES: Record<string, { lower: TarSpec[]; upper: TarSpec[] }> = {
  'file-to-dir': { lower: [dir('fd'), file('fd/x', 'file\n')], upper: [dir('fd/x', 0o750), file('fd/x/in', 'in\n')] },
  'file-to-dir-whiteout': { lower: [dir('fdw'), file('fdw/x', 'file\n')], upper: [whiteout('fdw/.wh.x'), dir('fdw/x'), file('fdw/x/in', 'in\n')] },
  'dir-to-file': {
    lower: [dir('df'), dir('df/x'), file('df/x/a', 'a\n'), dir('df/x/sub'), file('df/x/sub/b', 'b\n')],
    upper: [whiteout('df/.wh.x'), file('df/x', 'now a file\n')],
  },
  // What umoci and docker write: the file, then whiteouts of the children the directory had.
  'dir-to-file-child-whiteouts': {
    lower: [dir('dfc'), dir('dfc/x'), file('dfc/x/a', 'a\n'), dir('dfc/x/sub'), file('dfc/x/sub/b', 'b\n')],
    upper: [file('dfc/x', 'now a file\n'), whiteout('dfc/x/.wh.a'), whiteout('dfc/x/.wh.sub'), whiteout('dfc/x/sub/.wh.b')],
  },
  'dir-to-symlink': { lower: [dir('ds'), dir('ds/x'), file('ds/x/a', 'a\n')], upper: [{ name: 'ds/x', type: 'symlink', linkname: '../elsewhere' }] },
  'symlink-to-dir': {
    lower: [dir('sd'), dir('sd/real'), file('sd/real/r', 'r\n'), { name: 'sd/x', type: 'symlink', linkname: 'real' }],
    upper: [dir('sd/x'), file('sd/x/n', 'n\n')],
  },
  'file-to-symlink': { lower: [dir('fs'), file('fs/x', 'x\n')], upper: [{ name: 'fs/x', type: 'symlink', linkname: '/etc/hello' }] },
  'symlink-to-file': { lower: [dir('sf'), { name: 'sf/x', type: 'symlink', linkname: 'nowhere' }], upper: [file('sf/x', 'x\n')] },
  hardlinks: {
    lower: [dir('hl'), file('hl/c', 'lower c\n')],
    upper: [file('hl/a', 'a\n'), { name: 'hl/b', type: 'hardlink', linkname: 'hl/a' }, { name: 'hl/c', type: 'hardlink', linkname: 'hl/a' }],
  },
  'whiteout-then-recreate-dir': {
    lower: [dir('wr'), dir('wr/d'), file('wr/d/old1', '1\n'), file('wr/d/old2', '2\n')],
    upper: [whiteout('wr/.wh.d'), dir('wr/d', 0o700), file('wr/d/new', 'new\n')],
  },
  'recreate-dir-then-whiteout': {
    lower: [dir('rw'), dir('rw/d'), file('rw/d/old', 'old\n')],
    upper: [dir('rw/d', 0o700), file('rw/d/new', 'new\n'), whiteout('rw/.wh.d')],
  },
  'opaque-and-new-entries': {
    lower: [dir('op'), dir('op/d'), file('op/d/old', 'old\n'), dir('op/e'), file('op/e/old', 'old\n')],
    upper: [dir('op/d'), whiteout('op/d/.wh..wh..opq'), file('op/d/new', 'new\n'), whiteout('op/e/.wh..wh..opq'), file('op/e/new', 'new\n'), dir('op/e')],
  },
  'twice-in-one-tar': {
    lower: [dir('dup')],
    upper: [
      file('dup/f', 'first\n'),
      file('dup/f', 'second\n', 0o600),
      dir('dup/d'),
      file('dup/d/in', 'gone with the dir\n'),
      file('dup/d', 'the file wins\n'),
      file('dup/e', 'the dir wins\n'),
      dir('dup/e', 0o700),
      file('dup/e/in', 'in\n'),
      { name: 'dup/s', type: 'symlink', linkname: 'first' },
      { name: 'dup/s', type: 'symlink', linkname: 'second' },
    ],
  },
  // Replacing a directory by a file removes the lower contents too; a directory again is empty.
  'dir-to-file-to-dir-in-one-layer': {
    lower: [dir('re'), dir('re/x'), file('re/x/old', 'old\n')],
    upper: [file('re/x', 'file\n'), dir('re/x'), file('re/x/new', 'new\n')],
  },
  'hardlink-to-a-replaced-file': {
    lower: [dir('hr')],
    upper: [file('hr/d', 'v1\n'), { name: 'hr/e', type: 'hardlink', linkname: 'hr/d' }, { name: 'hr/f', type: 'hardlink', linkname: 'hr/e' }, file('hr/d', 'v2\n')],
  },
  'whiteouts-inside-a-whiteout': {
    lower: [dir('ww'), dir('ww/x'), file('ww/x/a', 'a\n'), dir('ww/y'), file('ww/y/b', 'b\n')],
    upper: [whiteout('ww/.wh.x'), whiteout('ww/x/.wh.a'), whiteout('ww/y/.wh..wh..opq'), whiteout('ww/.wh.y')],
  },
  'whiteout-and-file-same-name': {
    lower: [dir('wf'), file('wf/f', 'lower f\n'), file('wf/g', 'lower g\n')],
    upper: [whiteout('wf/.wh.f'), file('wf/f', 'upper f\n'), file('wf/g', 'upper g\n'), whiteout('wf/.wh.g')],
  },
  'implied-parents': { lower: [], upper: [file('imp/a/b/c', 'deep\n'), { name: 'imp/l', type: 'symlink', linkname: 'a/b' }] },
  'dot-slash-names': {
    lower: [dir('./dot'), file('./dot/f', 'lower\n')],
    upper: [dir('./dot'), file('./dot/f', 'upper\n'), file('dot/g', 'g\n'), file('./dot/g', 'g again\n')],
  },
};

function handWrittenImage(layout: string): void {
  writeLayout(layout, [
    {
      ref: 'hand',
      layers: [
        { compression: 'gzip', tar: busyboxLayer(Object.values(CASES).flatMap((c) => c.lower)) },
        { compression: 'gzip', tar: layerTar(Object.values(CASES).flatMap((c) => c.upper)) },
      ],
    },
  ]);
}

/** The same kinds of change, made to a real tree and committed by `umoci repack`, one layer per step. */
function umociImage(layout: string, work: string): void {
  const sh = (script: string) => execFileSync('/bin/sh', ['-euc', script], { cwd: work, stdio: ['ignore', 'ignore', 'pipe'] });
  sh(`umoci init --layout ${layout} && umoci new --image ${layout}:u && umoci unpack --image ${layout}:u b`);
  const steps = [
    // lower
    `cd b/rootfs
     mkdir -p bin fd df/x/sub ds/x sd/real wr/d op/d hl mv/a
     cp /bin/busybox bin/ && ln -s busybox bin/sh
     echo file > fd/x; echo a > df/x/a; echo b > df/x/sub/b; echo a > ds/x/a
     echo r > sd/real/r; ln -s real sd/x; echo x > fs; ln -s nowhere sf
     echo 1 > wr/d/old1; echo 2 > wr/d/old2; echo old > op/d/old; echo c > hl/c; echo m > mv/a/m
     chmod 700 wr/d`,
    // the changes
    `cd b/rootfs
     rm fd/x && mkdir fd/x && echo in > fd/x/in
     rm -r df/x && echo now a file > df/x
     rm -r ds/x && ln -s ../elsewhere ds/x
     rm sd/x && mkdir sd/x && echo n > sd/x/n
     rm fs && ln -s /etc/hello fs
     rm sf && echo sf > sf
     echo a > hl/a && ln hl/a hl/b && rm hl/c && ln hl/a hl/c
     rm -r wr/d && mkdir wr/d && echo new > wr/d/new
     rm -r op/d/old && echo new > op/d/new
     mv mv/a mv/b`,
    // and back again, on top
    `cd b/rootfs
     rm -r fd/x && echo file again > fd/x
     rm df/x && mkdir df/x && echo back > df/x/back
     rm ds/x && mkdir ds/x
     rm hl/a`,
  ];
  for (const step of steps) sh(`${step}\n cd ../.. && umoci repack --image ${layout}:u b`);
}

async function expectSameTreeAsUmoci(layout: string, ref: string, job: string, flatten = false, into: Site = site): Promise<void> {
  const bundle = join(into.root, `bundle-${ref}-${job}`);
  execFileSync('/usr/bin/umoci', ['unpack', '--image', `${layout}:${ref}`, bundle], { stdio: ['ignore', 'ignore', 'pipe'] });
  const imported = await into.run(['import', `oci:${layout}:${ref}`, '--tag', `fidelity:${job}`, ...(flatten ? ['--flatten'] : [])]);
  expect(imported.stderr).toMatch(/^imported /);
  const prolog = await into.run(['prolog', '--job', job, '--uid', '0', '--gid', '0', '--image', `fidelity:${job}`]);
  expect(prolog.stderr).toBe('');
  try {
    const rootfs = join(into.runtime, `jobs/${job}/rootfs`);
    const expected = join(bundle, 'rootfs');
    // One comparison per top-level directory (per case), so every difference is listed at once.
    // What strata mounts per job (and /etc, which it makes for them where the image has none).
    const skip = new Set([...PER_JOB_PATHS, ...(existsSync(join(expected, 'etc')) ? [] : ['etc'])]);
    const differences = readdirSync(expected)
      .filter((name) => !skip.has(name) && lstatSync(join(expected, name)).isDirectory() && readdirSync(join(expected, name)).length > 0)
      .map((name) => {
        const difference = compareTrees(join(expected, name), join(rootfs, name));
        return difference && `/${name}${difference}`;
      })
      .filter((d): d is string => d !== undefined);
    expect(differences).toEqual([]);
    expect(compareTrees(expected, rootfs, { skip: [...skip] })).toBeUndefined();
  } finally {
    expect((await into.run(['epilog', '--job', job])).code).toBe(0);
  }
}

test('hand-written layers: every kind of change gives the tree umoci unpacks', async () => {
  const layout = join(site.root, 'hand');
  handWrittenImage(layout);
  await expectSameTreeAsUmoci(layout, 'hand', 'fid1');
  await expectSameTreeAsUmoci(layout, 'hand', 'fid1flat', true);
  await expectSameTreeAsUmoci(layout, 'hand', 'fid1erofs', false, erofsSite);
  await expectSameTreeAsUmoci(layout, 'hand', 'fid1erofsflat', true, erofsSite);
  expect(readdirSync(join(erofsSite.store, 'layers/sha256')).every((name) => name.endsWith('.erofs'))).toBe(true);
}, 90_000);

test('layers written by umoci repack: every kind of change gives the tree umoci unpacks', async () => {
  const layout = join(site.root, 'umoci');
  umociImage(layout, site.root);
  await expectSameTreeAsUmoci(layout, 'u', 'fid2');
  await expectSameTreeAsUmoci(layout, 'u', 'fid2flat', true);
  await expectSameTreeAsUmoci(layout, 'u', 'fid2erofs', false, erofsSite);
}, 90_000);
