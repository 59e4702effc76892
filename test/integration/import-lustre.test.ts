// Lustre striping of new layer files (import.lustre_stripe_count) through a stand-in lfs that
// follows lfs-setstripe(1) (test/fixtures/fake-lfs; this machine has no Lustre client). The layout
// must still be on the published layer file: tar2sqfs must write into the file lfs created, not
// replace it. Without lfs, or when lfs fails, the import works the same.

import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { REPO, makeSite, type Site } from '../helpers/site.js';
import { richImage, writeLayout } from '../helpers/oci.js';
import { expectNodeStateUnchanged, nodeState, type NodeState } from '../helpers/node-state.js';

let site: Site;
let before: NodeState;
let layout: string;
const FAKE_LFS = join(REPO, 'test/fixtures/fake-lfs');
const stripeOf = (file: string) =>
  execFileSync('/usr/bin/getfattr', ['--only-values', '-n', 'user.fake_lustre.stripe_count', file], { stdio: ['ignore', 'pipe', 'ignore'] }).toString();

beforeAll(() => {
  before = nodeState();
  site = makeSite('import-lustre', 'import:\n  lustre_stripe_count: 4\n');
  layout = join(site.root, 'layout');
  writeLayout(layout, [richImage('rich')]);
});

afterAll(() => {
  expectNodeStateUnchanged(before);
  site.remove();
});

test('every new layer file is created by lfs setstripe -c 4 and keeps that layout once published', async () => {
  const result = await site.run(['import', `oci:${layout}:rich`, '--tag', 'rich:1'], { env: { STRATA_TEST_LFS: FAKE_LFS } });
  expect(result.stderr).toMatch(/^imported rich:1 .*3 layers \(0 already stored\)/);
  // Only lfs setstripe sets this attribute: each layer file is the very inode lfs created.
  const layers = readdirSync(join(site.store, 'layers/sha256'));
  expect(layers).toHaveLength(3);
  for (const layer of layers) expect({ layer, stripes: stripeOf(join(site.store, 'layers/sha256', layer)) }).toEqual({ layer, stripes: '4' });
  // And the job sees the image.
  expect((await site.run(['prolog', '--job', 'lfs1', '--uid', '0', '--gid', '0', '--image', 'rich:1'])).stderr).toBe('');
  try {
    expect(existsSync(join(site.runtime, 'jobs/lfs1/rootfs/bin/busybox'))).toBe(true);
  } finally {
    expect((await site.run(['epilog', '--job', 'lfs1'])).code).toBe(0);
  }
});

test('an lfs that fails (or none at all) changes nothing but the layout', async () => {
  const failing = join(site.root, 'failing-lfs');
  execFileSync('/bin/sh', ['-c', `printf '#!/bin/sh\\necho "lfs: Operation not supported" >&2\\nexit 95\\n' > ${failing} && chmod +x ${failing}`]);
  expect((await site.run(['import', `oci:${layout}:rich`, '--tag', 'rich:2', '--flatten'], { env: { STRATA_TEST_LFS: failing } })).code).toBe(0);
  expect((await site.run(['import', `oci:${layout}:rich`, '--tag', 'rich:3', '--flatten'], { env: { STRATA_TEST_LFS: join(site.root, 'no-such-lfs') } })).stderr).toMatch(/flattened to 1 layer \(1 already stored\)/);
  expect(readdirSync(join(site.store, 'layers/sha256'))).toHaveLength(4);
});
