// Inside the container (issue 17): cold start-up of `python3 -c 'import numpy'`, of an MPI hello
// world in C (built with the image's mpicc) and of mpi4py's MPI_Init, all singleton (no launcher),
// from the Debian MPI test image (test/images/mpi-rootfs.sh: python3, numpy, Open MPI, mpi4py)
// versus the same tree on local disk, as a ratio with met/missed against 1.2x.
//
// Layer files: the tree as one layer, built the way `strata import` builds layers (a tar on
// tar2sqfs's stdin, strata's flags from src/store/import/squashfs.ts) with zstd / lz4hc / lz4 / gzip at
// 128 KiB (tar2sqfs's and so strata's block size) and 1 MiB blocks; uncompressed erofs as `strata
// import` writes it with import.compression: none (the default); and erofs by mkfs.erofs from the directory
// (erofs-utils 1.5 in Debian 12 has no tar input) uncompressed / lz4 / lz4hc, mounted
// backed by the file itself (Linux 6.12+) and, once, through a loop device. Each is mounted as strata
// mounts a job (bench/floor.c issues the system calls): read-only autoclear loop device, the layer
// ro,nosuid,nodev, overlay with strata's options over a tmpfs upper, /proc /sys /dev recursive binds,
// the node's /etc/hosts and /etc/resolv.conf, a tmpfs /tmp. The local tree gets the same binds.
//
// One sample = page cache dropped, the stack mounted afresh, the host's chroot run once (so only the
// image's files are read cold), then the workload timed as user nobody with floor's fork+execve
// timer, then everything unmounted. Rounds interleave the variants, so load that comes and goes
// on this shared machine spreads over all of them.
//
//   node bench/inside.mjs [--quick] [--runs N] [--layers REGEX]

import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { QUICK, option, repo, scratch, strataSite, withMountLock, sh, dropCaches, stats, table, cell, fmt, sizeOf, releaseMounts } from './lib.mjs';

const RUNS = Number(option('--runs', QUICK ? 3 : 5));
const LIMIT = 1.2;
const root = scratch('inside');
const floorBin = join(root, 'floor');
execFileSync('cc', ['-std=gnu11', '-O2', '-Wall', '-Wextra', '-o', floorBin, join(repo, 'bench/floor.c')], { stdio: 'inherit' });
const loadavg = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

// ---- the image tree ----------------------------------------------------------------------------
const cached = execFileSync(join(repo, 'test/images/mpi-rootfs.sh'), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
const tree = join(root, 'tree');
sh(`cp -a ${cached} ${tree}`);
const HELLO = `#include <mpi.h>
#include <stdio.h>
int main(int argc, char **argv) {
  int rank, size;
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  printf("hello from rank %d of %d\\n", rank, size);
  MPI_Finalize();
  return 0;
}
`;
writeFileSync(join(tree, 'tmp/mpi-hello.c'), HELLO);
execFileSync('/usr/sbin/chroot', [tree, '/usr/bin/mpicc', '-O2', '-o', '/usr/local/bin/mpi-hello', '/tmp/mpi-hello.c'], { stdio: 'inherit' });
rmSync(join(tree, 'tmp/mpi-hello.c'));
// Bind targets strata's job environment uses (a minbase tree has neither): without the node's
// /etc/hosts, Open MPI's start-up waits ~5 s on a DNS lookup of the node's name.
for (const file of ['etc/hosts', 'etc/resolv.conf']) writeFileSync(join(tree, file), '', { flag: 'a' });

const WORKLOADS = {
  'import numpy': ['/usr/bin/python3', '-c', 'import numpy'],
  'MPI hello (C)': ['/usr/local/bin/mpi-hello'],
  'mpi4py init': ['/usr/bin/python3', '-c', 'from mpi4py import MPI; MPI.COMM_WORLD.Get_rank()'],
};

// ---- layer files -------------------------------------------------------------------------------
const KIB = 1024;
const squashfs = (QUICK ? [['zstd', 128], ['lz4hc', 128]] : [['zstd', 128], ['zstd', 1024], ['lz4hc', 128], ['lz4', 128], ['lz4', 1024], ['gzip', 128], ['gzip', 1024]]).map(([compression, blockKib]) => ({
  name: `squashfs ${compression} ${blockKib === 1024 ? '1 MiB' : `${blockKib} KiB`}`,
  file: join(root, `layer-${compression}-${blockKib}.sqfs`),
  fstype: 'squashfs',
  // src/store/import/squashfs.ts's arguments (lz4hc: lz4 with its hc option), plus the block size.
  build: (file) => sh(`tar -C ${tree} -cf - . | tar2sqfs --quiet --no-skip --force --compressor ${compression === 'lz4hc' ? 'lz4 --comp-extra hc' : compression} --defaults uid=0,gid=0,mode=0755,mtime=0 --block-size ${blockKib * KIB} ${file}`),
}));
// Uncompressed squashfs, which tar2sqfs cannot write (strata writes erofs for import.compression none):
// sqfstar (squashfs-tools) reads the same tar; it tells the format's cost from the compression's.
// (It says "Empty tar filename ... ignoring" for the tar's ./ entry: the root gets its defaults.)
const plainSquashfs = QUICK ? [] : [{
  name: 'squashfs uncompressed (sqfstar)',
  file: join(root, 'layer-none.sqfs'),
  fstype: 'squashfs',
  build: (file) => sh(`tar -C ${tree} -cf - . | sqfstar -quiet -no-progress -noI -noD -noF -noX -force ${file} >/dev/null`),
}];
const erofs = (QUICK ? [] : ['none', 'lz4', 'lz4hc']).map((compression) => ({
  name: `erofs ${compression}`,
  file: join(root, `layer-${compression}.erofs`),
  fstype: 'erofs',
  build: (file) => execFileSync('mkfs.erofs', ['--quiet', ...(compression === 'none' ? [] : [`-z${compression}`]), file, tree], { stdio: ['ignore', 'ignore', 'inherit'] }),
}));
// What `strata import` writes with import.compression: none (strata's own erofs writer, from the
// tree's tar): the layer file taken from a scratch store.
const strataErofs = [{
  name: 'erofs none (strata, compression: none) (default)',
  file: join(root, 'layer-strata.erofs'),
  fstype: 'erofs',
  build: (file) => {
    const site = strataSite(root, { compression: 'none' });
    site.cli(['import', `dir:${tree}`, '--tag', 'inside:erofs']);
    sh(`mv ${site.store}/layers/sha256/*.erofs ${file} && rm -rf ${site.store}`);
  },
}];
// --layers REGEX: only the layer variants whose names match (the local tree is always measured).
const only = new RegExp(option('--layers', '.'));
const layers = [...squashfs, ...plainSquashfs, ...strataErofs, ...erofs].filter((layer) => only.test(layer.name));
const built = performance.now();
for (const layer of layers) {
  const started = performance.now();
  layer.build(layer.file);
  layer.buildMs = performance.now() - started;
  layer.size = sizeOf(layer.file);
  console.log(`${layer.name}: ${(layer.size / 2 ** 20).toFixed(0)} MiB in ${fmt(layer.buildMs)} (load ${loadavg()})`);
}
console.log(`tree ${(Number(sh(`du -sb ${tree}`).split('\t')[0]) / 2 ** 20).toFixed(0)} MiB; layer files built in ${fmt(performance.now() - built)}`);

// ---- mounting ----------------------------------------------------------------------------------
const stackDir = join(root, 'stack');
// The job's user: nobody (Open MPI will not start as root without being told to).
const JOB_USER = 65534;
const rootfs = join(stackDir, 'm');
const ops = (name, lines) => {
  const path = join(root, `ops-${name}`);
  writeFileSync(path, `${lines.map((line) => line.join('\t')).join('\n')}\n`);
  return path;
};
/** strata's job environment (plan.ts bindList, environment.ts) in rootfs `dir`. */
const environment = (dir) => [
  ...['proc', 'sys', 'dev'].map((path) => ['bind', `/${path}`, `${dir}/${path}`, 'rec']),
  ...['etc/hosts', 'etc/resolv.conf'].map((path) => ['bind', `/${path}`, `${dir}/${path}`, 'one']),
  ['tmpfs', `${dir}/tmp`, 'size=1g,mode=1777'],
];
/** Ops that mount the layer and the job's overlay (plan.ts overlayOptions). */
const stackOps = (layer, mount) => [
  ['mkdir', stackDir],
  mount === 'file' ? ['filefs', layer.file, `${stackDir}/l`, layer.fstype] : ['loop', layer.file, `${stackDir}/l`, layer.fstype],
  ['tmpfs', `${stackDir}/up`, 'size=1g,mode=0700'],
  ['chown', `${stackDir}/up/u`, JOB_USER, JOB_USER],
  ['overlay', rootfs, stackDir, 'lowerdir=l,upperdir=up/u,workdir=up/w,volatile,index=off,xino=off'],
  ...environment(rootfs),
];
const variants = [
  { name: 'local disk (ext4)', rootfs: tree, mount: ops('local', environment(tree)), unmount: ops('local-off', [['umountr', tree]]) },
  ...layers.map((layer) => {
    // erofs backed by its file where the kernel has it (6.12+, EROFS_FS_BACKED_BY_FILE), else a loop device.
    const mount = layer.fstype === 'erofs' ? 'file' : 'loop';
    return { ...layer, name: `${layer.name}${layer.fstype === 'erofs' ? ', file-backed' : ''}`, rootfs, mount: ops(`${layer.file.split("/").pop()}-${mount}`, stackOps(layer, mount)) };
  }),
  ...layers.filter((layer) => layer.name === 'erofs lz4hc').map((layer) => ({ ...layer, name: `${layer.name}, loop`, rootfs, mount: ops('erofs-loop', stackOps(layer, 'loop')) })),
];
const unmountStack = ops('stack-off', [['umountr', stackDir]]);
const floor = (opsFile) => execFileSync(floorBin, ['run', opsFile], { stdio: ['ignore', 'ignore', 'inherit'] });
// What a job sees: its user (nobody here), HOME, a plain PATH; not the bench's environment.
const JOB_ENV = { PATH: '/usr/local/bin:/usr/bin:/bin', HOME: '/tmp', LANG: 'C.UTF-8' };
const timeOnce = (argv) => Number(execFileSync(floorBin, ['time', '1', ...argv], { env: JOB_ENV, encoding: 'utf8' }).trim()) / 1000;

/** One cold sample of `argv` in `variant`: ms. */
function coldSample(variant, argv) {
  dropCaches();
  floor(variant.mount);
  try {
    timeOnce(['/usr/sbin/chroot', '/', '/bin/true']);
    return timeOnce(['/usr/sbin/chroot', `--userspec=${JOB_USER}:${JOB_USER}`, variant.rootfs, ...argv]);
  } finally {
    try {
      floor(variant.unmount ?? unmountStack);
    } catch {
      // A process of the workload still holds a mount: detach what is left (lib.mjs's clean-up).
      releaseMounts(variant.unmount ? tree : stackDir);
    }
  }
}

const results = await withMountLock(async () => {
  const load = loadavg();
  console.log(`\ninside bench: ${RUNS} cold samples per cell, rounds interleave the variants${QUICK ? ', quick' : ''}; load average at start ${load}`);
  const samples = variants.map(() => Object.fromEntries(Object.keys(WORKLOADS).map((workload) => [workload, []])));
  const loads = [load];
  for (let run = 0; run < RUNS; run++) {
    for (const [index, variant] of variants.entries()) {
      for (const [workload, argv] of Object.entries(WORKLOADS)) samples[index][workload].push(coldSample(variant, argv));
    }
    loads.push(loadavg());
    console.log(`  round ${run + 1}/${RUNS} done (load ${loads.at(-1)})`);
  }
  return {
    loads,
    rows: variants.map((variant, index) => ({
      name: variant.name,
      size: variant.size,
      buildMs: variant.buildMs,
      ...Object.fromEntries(Object.entries(samples[index]).map(([workload, values]) => [workload, { ...stats(values), samples: values }])),
    })),
  };
});

const local = results.rows[0];
const ratio = (row, workload) => row[workload].median / local[workload].median;
const verdict = (value) => `${value.toFixed(2)}x ${value <= LIMIT ? 'met' : 'MISSED'}`;
console.log(`\ncold start-up inside the container vs the same tree on local disk: ms, median (min-max) of ${RUNS}; target <= ${LIMIT}x`);
console.log(table(
  ['tree', 'layer file', 'build', ...Object.keys(WORKLOADS).flatMap((workload) => [workload, 'ratio'])],
  results.rows.map((row) => [
    row.name,
    row.size ? `${(row.size / 2 ** 20).toFixed(0)} MiB` : '-',
    row.buildMs ? `${(row.buildMs / 1000).toFixed(0)} s` : '-',
    ...Object.keys(WORKLOADS).flatMap((workload) => [cell(row[workload]), verdict(ratio(row, workload))]),
  ]),
));
console.log(`load average: ${results.loads.join(' | ')} (start, after each round; 2 cores)`);
mkdirSync(join(repo, 'bench/results'), { recursive: true });
writeFileSync(join(repo, `bench/results/inside${QUICK ? '-quick' : ''}.json`), `${JSON.stringify(results, null, 2)}\n`);
