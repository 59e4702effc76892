// Importing whole images from OCI layouts, OCI archives and docker save archives: what a job sees
// equals `umoci unpack` of the same image; layers already stored are reused; a corrupt blob or a
// hostile entry publishes nothing.

import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { busyboxLayer, gzipOnly, layerTar, richImage, writeLayout, type ImageSpec } from '../helpers/oci.js';
import { expectNodeStateUnchanged, nodeState, type NodeState } from '../helpers/node-state.js';
import { makeSite, SQUASHFS_LAYERS, type Site } from '../helpers/site.js';
import { compareTrees, PER_JOB_PATHS } from '../helpers/tree-compare.js';

let site: Site;
let before: NodeState;
let layout: string;
const rich = richImage('rich');
const layersInStore = () => readdirSync(join(site.store, 'layers/sha256')).length;
const partials = () => (existsSync(join(site.store, 'tmp')) ? readdirSync(join(site.store, 'tmp')) : []);

const small = (architecture: string, marker: string, variant?: string): ImageSpec => ({
  architecture,
  variant,
  layers: [{ compression: 'gzip', tar: busyboxLayer([{ name: 'etc/arch', content: `${marker}\n` }]) }],
});

beforeAll(() => {
  before = nodeState();
  // A squashfs site: the `--compression none` test sets erofs layers of one import apart from the site's own.
  site = makeSite('import-archives', SQUASHFS_LAYERS);
  layout = join(site.root, 'layout');
  writeLayout(layout, [rich, gzipOnly(rich, 'rich-gzip')], [{ ref: 'multi', images: [small('amd64', 'amd64'), small('arm64', 'arm64', 'v8')] }]);
});

afterAll(() => {
  expectNodeStateUnchanged(before);
  site.remove();
});

test('oci: import gives the tree umoci unpacks, with the image config in the job entry', async () => {
  const result = await site.run(['import', `oci:${layout}:rich`, '--tag', 'rich:1']);
  expect(result.stderr).toMatch(/^imported rich:1 \(sha256:[0-9a-f]{64}\) from oci:.*: 3 layers \(0 already stored\), .* in [\d.]+s\n$/);
  expect(result.code).toBe(0);
  const digest = result.stdout.trim();
  expect((await site.run(['resolve', 'rich:1'])).stdout.trim()).toBe(digest);
  expect(layersInStore()).toBe(3);
  expect(partials()).toEqual([]);

  const bundle = join(site.root, 'bundle');
  execFileSync('/usr/bin/umoci', ['unpack', '--image', `${layout}:rich-gzip`, bundle], { stdio: ['ignore', 'ignore', 'pipe'] });
  const prolog = await site.run(['prolog', '--job', 'ref1', '--uid', '0', '--gid', '0', '--image', 'rich:1']);
  expect(prolog.stderr).toBe('');
  try {
    const rootfs = join(site.runtime, 'jobs/ref1/rootfs');
    // The job's own mounts (proc, sys, dev, the home directory) cover those directories.
    expect(compareTrees(join(bundle, 'rootfs'), rootfs, { skip: PER_JOB_PATHS })).toBeUndefined();
    const entry = JSON.parse(readFileSync(join(site.runtime, 'jobs/ref1/entry.json'), 'utf8'));
    expect(entry).toMatchObject({ env: ['PATH=/bin', 'FOO=bar'], workdir: '/data', entrypoint: ['/bin/sh', '-c'], cmd: ['echo hi'] });
  } finally {
    expect((await site.run(['epilog', '--job', 'ref1'])).code).toBe(0);
  }
  const inspect = JSON.parse((await site.run(['inspect', 'rich:1'])).stdout);
  expect(inspect.config.config.Labels).toEqual({ suite: 'strata' });
}, 120_000);

test('docker-archive: the same layers from docker save format (other compression, same diff_ids) are reused', async () => {
  const archive = join(site.root, 'rich-docker.tar');
  execFileSync('/usr/bin/skopeo', ['copy', '-q', `oci:${layout}:rich-gzip`, `docker-archive:${archive}:rich:2`]);
  const result = await site.run(['import', `docker-archive:${archive}`]);
  expect(result.stderr).toMatch(/^imported rich:2 .*: 3 layers \(3 already stored\)/);
  expect(result.code).toBe(0);
  expect(layersInStore()).toBe(3);
  const layersOf = async (tag: string) => JSON.parse((await site.run(['inspect', tag])).stdout).layers.map((l: { digest: string }) => l.digest);
  expect(await layersOf('rich:2')).toEqual(await layersOf('rich:1'));
});

test('oci-archive: a multi-platform index picks this machine, --platform another', async () => {
  const archive = join(site.root, 'layout.tar');
  execFileSync('/usr/bin/tar', ['-cf', archive, '-C', layout, '.']);
  expect((await site.run(['import', `oci-archive:${archive}:multi`, '--tag', 'multi:host'])).code).toBe(0);
  expect((await site.run(['import', `oci-archive:${archive}:multi`, '--tag', 'multi:arm', '--platform', 'linux/arm64'])).code).toBe(0);
  const arch = async (tag: string) => JSON.parse((await site.run(['inspect', tag])).stdout).config.architecture;
  expect(await arch('multi:host')).toBe(process.arch === 'arm64' ? 'arm64' : 'amd64');
  expect(await arch('multi:arm')).toBe('arm64');
  const none = await site.run(['import', `oci-archive:${archive}:multi`, '--tag', 'multi:s390', '--platform', 'linux/s390x']);
  expect(none.code).toBe(2);
  expect(none.stderr).toBe('strata: oci-archive:' + archive + ':multi has no image for linux/s390x (it has linux/amd64, linux/arm64/v8); pick one of those with --platform, or use an image built for this platform\n');
});

test('a corrupt layer blob is an error naming the digest, and nothing is published', async () => {
  const bad = join(site.root, 'bad-layout');
  const built = writeLayout(bad, [{ ref: 'x', layers: [{ compression: 'gzip', tar: busyboxLayer([{ name: 'etc/corrupt-me', content: 'z'.repeat(50_000) }]) }] }]);
  const blob = join(bad, 'blobs/sha256', built[0].layerDigests[0].slice(7));
  const bytes = readFileSync(blob);
  bytes[bytes.length - 12] ^= 0xff; // inside the gzip trailer's CRC neighbourhood: gunzip may even accept it
  writeFileSync(blob, bytes);
  const layers = layersInStore();
  const result = await site.run(['import', `oci:${bad}:x`, '--tag', 'bad:1']);
  expect(result.code).toBe(2);
  expect(result.stderr.split('\n').filter(Boolean)).toHaveLength(1);
  expect(result.stderr).toMatch(/strata: (layer 1 .* does not match its digest: expected sha256:|cannot read layer 1 .*gzip)/);
  expect(layersInStore()).toBe(layers);
  expect(partials()).toEqual([]);
  expect((await site.run(['resolve', 'bad:1'])).code).toBe(2);
});

test('hostile entries (absolute paths, ..) are refused with the entry named', async () => {
  const evil = join(site.root, 'evil-layout');
  writeLayout(evil, [
    { ref: 'abs', layers: [{ compression: 'none', tar: layerTar([{ name: '/etc/passwd', content: 'x' }]) }] },
    { ref: 'dots', layers: [{ compression: 'gzip', tar: layerTar([{ name: 'a/../../escape', content: 'x' }]) }] },
  ]);
  const abs = await site.run(['import', `oci:${evil}:abs`, '--tag', 'evil:abs']);
  expect(abs.stderr).toMatch(/^strata: layer tar entry '\/etc\/passwd' has an absolute path/);
  const dots = await site.run(['import', `oci:${evil}:dots`, '--tag', 'evil:dots']);
  expect(dots.stderr).toMatch(/^strata: layer tar entry 'a\/\.\.\/\.\.\/escape' has a path with a '\.\.' component/);
  expect([abs.code, dots.code]).toEqual([2, 2]);
  expect(partials()).toEqual([]);
});

test('--flatten: one layer for the whole image, the same tree; above import.flatten_above it is automatic', async () => {
  const flat = await site.run(['import', `oci:${layout}:rich`, '--tag', 'rich:flat', '--flatten']);
  expect(flat.stderr).toMatch(/^imported rich:flat .*: flattened to 1 layer \(0 already stored\)/);
  expect(flat.code).toBe(0);
  const inspect = JSON.parse((await site.run(['inspect', 'rich:flat'])).stdout);
  expect(inspect.layers).toHaveLength(1);
  const bundle = join(site.root, 'bundle-flat');
  execFileSync('/usr/bin/umoci', ['unpack', '--image', `${layout}:rich-gzip`, bundle], { stdio: ['ignore', 'ignore', 'pipe'] });
  expect((await site.run(['prolog', '--job', 'flat1', '--uid', '0', '--gid', '0', '--image', 'rich:flat'])).stderr).toBe('');
  try {
    expect(compareTrees(join(bundle, 'rootfs'), join(site.runtime, 'jobs/flat1/rootfs'), { skip: PER_JOB_PATHS })).toBeUndefined();
  } finally {
    expect((await site.run(['epilog', '--job', 'flat1'])).code).toBe(0);
  }
  // A site that flattens above 2 layers: the 3-layer image is flattened without asking, and the
  // flattened layer already stored is reused.
  const config = join(site.root, 'flatten-above.yaml');
  writeFileSync(config, readFileSync(site.configPath, 'utf8').replace(SQUASHFS_LAYERS, `${SQUASHFS_LAYERS}  flatten_above: 2\n`));
  const auto = await site.run(['import', `oci:${layout}:rich-gzip`, '--tag', 'rich:auto'], { env: { STRATA_CONFIG: config } });
  expect(auto.stderr).toMatch(/^imported rich:auto .*: flattened to 1 layer \(1 already stored\)/);
  expect(JSON.parse((await site.run(['inspect', 'rich:auto'])).stdout).layers).toEqual(inspect.layers);
}, 120_000);

test('--compression none: erofs layers for this import only, apart from the squashfs ones; a job sees the same tree; verify and gc know them', async () => {
  expect((await site.run(['import', `oci:${layout}:rich`, '--tag', 'rich:squashfs'])).code).toBe(0);
  const result = await site.run(['import', `oci:${layout}:rich`, '--tag', 'rich:erofs', '--compression', 'none']);
  // The image's squashfs layers are not reused: each format has its own.
  expect(result.stderr).toMatch(/^imported rich:erofs .*: 3 layers \(0 already stored\)/);
  const inspect = JSON.parse((await site.run(['inspect', 'rich:erofs'])).stdout);
  expect(inspect.layers.map((layer: { format: string }) => layer.format)).toEqual(['erofs', 'erofs', 'erofs']);
  const erofsFiles = readdirSync(join(site.store, 'layers/sha256')).filter((name) => name.endsWith('.erofs'));
  expect(erofsFiles).toHaveLength(3);
  // Again with erofs: reused; with the site's default: the squashfs layers, reused too.
  expect((await site.run(['import', `oci:${layout}:rich-gzip`, '--tag', 'rich:erofs2', '--compression', 'none'])).stderr).toMatch(/3 layers \(3 already stored\)/);
  expect((await site.run(['import', `oci:${layout}:rich`, '--tag', 'rich:again'])).stderr).toMatch(/3 layers \(3 already stored\)/);
  expect((await site.run(['import', `oci:${layout}:rich`, '--compression', 'lzma'])).stderr).toMatch(/Invalid values:[\s\S]*compression/);

  const verify = await site.run(['verify']);
  expect(verify.stderr).toMatch(/^verify: \d+ layers, .*all good\n$/);

  // A site that keeps layers mounted after its jobs (layers.cache: keep), and gc without grace.
  const keep = join(site.root, 'keep-layers.yaml');
  writeFileSync(keep, `${readFileSync(site.configPath, 'utf8')}layers:\n  cache: keep\n`);
  const noGrace = join(site.root, 'gc-no-grace.yaml');
  writeFileSync(noGrace, readFileSync(site.configPath, 'utf8').replace(`path: ${site.store}`, `path: ${site.store}\n  gc_grace: 0`));
  const erofsLayers = () => readdirSync(join(site.store, 'layers/sha256')).filter((name) => name.endsWith('.erofs')).sort();
  const erofsMounts = () => execFileSync('findmnt', ['-rn', '-o', 'SOURCE,FSTYPE'], { encoding: 'utf8' }).split('\n').filter((line) => line.endsWith(' erofs')).map((line) => line.split(' ')[0].split('/').pop()).sort();

  const bundle = join(site.root, 'bundle-erofs');
  execFileSync('/usr/bin/umoci', ['unpack', '--image', `${layout}:rich-gzip`, bundle], { stdio: ['ignore', 'ignore', 'pipe'] });
  expect((await site.run(['prolog', '--job', 'erofs1', '--uid', '0', '--gid', '0', '--image', 'rich:erofs'], { env: { STRATA_CONFIG: keep } })).stderr).toBe('');
  try {
    expect(compareTrees(join(bundle, 'rootfs'), join(site.runtime, 'jobs/erofs1/rootfs'), { skip: PER_JOB_PATHS })).toBeUndefined();
    // A second job of the image finds its layers mounted (on their files) and uses them.
    expect((await site.run(['prolog', '--job', 'erofs1b', '--uid', '0', '--gid', '0', '--image', 'rich:erofs'], { env: { STRATA_CONFIG: keep } })).stderr).toBe('');
    expect(readFileSync(join(site.runtime, 'jobs/erofs1b/rootfs/data/keep.txt'), 'utf8')).toBe('keep\n');
    expect((await site.run(['epilog', '--job', 'erofs1b'], { env: { STRATA_CONFIG: keep } })).code).toBe(0);
  } finally {
    expect((await site.run(['epilog', '--job', 'erofs1'], { env: { STRATA_CONFIG: keep } })).code).toBe(0);
  }
  // Kept mounted, on the files themselves (no loop device), and gc keeps what this node has mounted
  // even when no tag or job names it any more.
  expect(erofsMounts()).toEqual(erofsFiles.sort());
  await site.run(['rm', 'rich:erofs', 'rich:erofs2']);
  expect((await site.run(['gc'], { env: { STRATA_CONFIG: noGrace } })).code).toBe(0);
  expect(erofsLayers()).toEqual(erofsFiles.sort());
  // The next job's epilog on a releasing site lets them go; then gc takes them.
  expect((await site.run(['prolog', '--job', 'erofs2', '--uid', '0', '--gid', '0', '--image', 'rich:again'])).stderr).toBe('');
  expect((await site.run(['epilog', '--job', 'erofs2'])).code).toBe(0);
  expect(erofsMounts()).toEqual([]);
  expect((await site.run(['gc'], { env: { STRATA_CONFIG: noGrace } })).code).toBe(0);
  expect(erofsLayers()).toEqual([]);
}, 120_000);
