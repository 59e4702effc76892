// Import throughput: `strata import oci:` of a one-layer image (gzip layer, by default 512 MiB of
// tar from a real tree: the first files of /usr) versus raw `gzip -dc | tar2sqfs` on the same
// layer, same compressor (zstd), same run. Also the uncompressed-tar case (`strata import tar:`
// vs `tar2sqfs < layer.tar`). Prints MB/s and the ratios (target: strata within 20% of raw).
// No root or mounts needed.
//
//   node bench/import.mjs [--size MIB] [--runs N] [--source DIR]

import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const args = process.argv.slice(2);
const option = (name, fallback) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
const SIZE = Number(option('--size', 512)) * 2 ** 20;
const RUNS = Number(option('--runs', 3));
const SOURCE = option('--source', '/usr');
const repo = new URL('..', import.meta.url).pathname;
const root = mkdtempSync('/tmp/strata-bench-import-');

try {
  // A layer tar of about SIZE bytes: the first files of the source tree (with their directories,
  // symlinks and hard links), in find order, up to SIZE.
  const tar = join(root, 'layer.tar');
  const listing = execFileSync('/usr/bin/find', ['.', '-xdev', '-printf', '%s %p\\n'], { cwd: SOURCE, encoding: 'utf8', maxBuffer: 1 << 30 });
  const chosen = [];
  let total = 0;
  for (const line of listing.split('\n')) {
    const space = line.indexOf(' ');
    if (space < 0 || total >= SIZE) continue;
    total += Number(line.slice(0, space));
    chosen.push(line.slice(space + 1));
  }
  writeFileSync(join(root, 'files'), chosen.join('\n'));
  execFileSync('/usr/bin/tar', ['--format=posix', '--no-recursion', '-cf', tar, '-C', SOURCE, '-T', join(root, 'files')], { stdio: ['ignore', 'ignore', 'ignore'] });
  const tarBytes = statSync(tar).size;
  execFileSync('/bin/sh', ['-c', `gzip -1 -c ${tar} > ${tar}.gz`]);

  // The OCI layout around it.
  const layout = join(root, 'layout');
  const blobs = join(layout, 'blobs/sha256');
  mkdirSync(blobs, { recursive: true });
  const digestOfFile = (path) => `sha256:${execFileSync('/usr/bin/sha256sum', [path], { encoding: 'utf8' }).split(' ')[0]}`;
  const put = (bytes) => {
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    writeFileSync(join(blobs, digest.slice(7)), bytes);
    return { digest, size: bytes.length };
  };
  const layerDigest = digestOfFile(`${tar}.gz`);
  execFileSync('/bin/mv', [`${tar}.gz`, join(blobs, layerDigest.slice(7))]);
  const gz = join(blobs, layerDigest.slice(7));
  const config = put(Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [digestOfFile(tar)] } })));
  const manifest = put(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layerDigest, size: statSync(gz).size }],
      }),
    ),
  );
  writeFileSync(join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  writeFileSync(join(layout, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest, annotations: { 'org.opencontainers.image.ref.name': 'bench' } }] }));

  const time = (fn) => {
    const started = performance.now();
    fn();
    return (performance.now() - started) / 1000;
  };
  const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
  const out = join(root, 'raw.sqfs');
  const rawGzip = () => execFileSync('/bin/sh', ['-c', `gzip -dc ${gz} | /usr/bin/tar2sqfs --quiet --no-skip --force --compressor zstd --defaults uid=0,gid=0,mode=0755,mtime=0 ${out}`]);
  const rawPlain = () => execFileSync('/bin/sh', ['-c', `/usr/bin/tar2sqfs --quiet --no-skip --force --compressor zstd --defaults uid=0,gid=0,mode=0755,mtime=0 ${out} < ${tar}`]);
  const strata = (source) => {
    const site = join(root, `site-${Math.random().toString(36).slice(2)}`);
    mkdirSync(join(site, 'store'), { recursive: true });
    writeFileSync(join(site, 'strata.yaml'), `store:\n  path: ${site}/store\nlog:\n  file: ""\n`);
    const result = spawnSync(process.execPath, [join(repo, 'dist/bin/strata.js'), 'import', source, '--tag', 'bench:1'], { env: { STRATA_CONFIG: join(site, 'strata.yaml') }, encoding: 'utf8' });
    if (result.status !== 0) throw new Error(`strata import failed: ${result.stderr}`);
    return site;
  };
  const sites = [];
  const rows = [];
  for (const [name, raw, source] of [
    ['gzip layer (oci:)', rawGzip, `oci:${layout}:bench`],
    ['plain tar (tar:)', rawPlain, `tar:${tar}`],
  ]) {
    const rawTimes = [];
    const strataTimes = [];
    for (let i = 0; i < RUNS; i++) {
      rawTimes.push(time(raw));
      strataTimes.push(time(() => sites.push(strata(source))));
      for (const site of sites.splice(0)) rmSync(site, { recursive: true, force: true });
    }
    rows.push({ name, raw: median(rawTimes), strata: median(strataTimes) });
  }
  const mbs = (seconds) => (tarBytes / 2 ** 20 / seconds).toFixed(0);
  console.log(`import throughput, ${(tarBytes / 2 ** 20).toFixed(0)} MiB layer tar (${chosen.length} entries of ${SOURCE}), median of ${RUNS}, zstd squashfs, ${readFileSync('/proc/cpuinfo', 'utf8').split('\n').filter((l) => l.startsWith('processor')).length} CPUs`);
  for (const row of rows) {
    console.log(`  ${row.name.padEnd(18)} raw tar2sqfs ${row.raw.toFixed(2)}s (${mbs(row.raw)} MiB/s)   strata import ${row.strata.toFixed(2)}s (${mbs(row.strata)} MiB/s)   strata/raw = ${(row.strata / row.raw).toFixed(2)}`);
  }
} finally {
  rmSync(root, { recursive: true, force: true });
}
