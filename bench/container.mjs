// Inside the container (issue 8, part 5): a metadata-heavy start-up (python3 importing many standard
// modules), a walk of the tree (find) and a large sequential read, from strata's stack (loop
// device, read-only squashfs, overlayfs with a tmpfs upper) versus the same tree on local disk;
// cold (page cache dropped) and warm; squashfs compression gzip / zstd / lz4 / none, and loop
// direct I/O on and off. Also the layer file size of each compression.
//
//   node bench/container.mjs [--quick] [--runs N]

import { execFileSync } from 'node:child_process';
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { QUICK, option, scratch, withMountLock, sh, timed, dropCaches, stats, table, cell, sizeOf, PYTHON } from './lib.mjs';

const RUNS = Number(option('--runs', QUICK ? 2 : 3));
const LARGE_MB = QUICK ? 256 : 1024;
const root = scratch('container');
const tree = join(root, 'tree');

// The image: python3.11, the libraries it and its extension modules load, the standard library,
// and one large file.
const libs = new Set();
const lddOf = (file) => execFileSync('ldd', [file], { encoding: 'utf8' }).split('\n').map((line) => /(\/\S+) \(/.exec(line)?.[1]).filter(Boolean);
for (const file of ['/usr/bin/python3.11', ...sh(`find ${PYTHON}/lib-dynload -name '*.so'`).split('\n').filter(Boolean)]) for (const lib of lddOf(file)) libs.add(lib);
// Debian's merged /usr: /lib and /lib64 are links into /usr.
sh(`mkdir -p ${tree}/usr/bin ${tree}/usr/lib ${tree}/usr/lib64 ${tree}/tmp ${tree}/dev && ln -s usr/lib ${tree}/lib && ln -s usr/lib64 ${tree}/lib64`);
sh(`cp -a /usr/bin/python3.11 ${tree}/usr/bin/ && cp -a ${PYTHON} ${tree}/usr/lib/`);
for (const lib of libs) {
  const inUsr = lib.startsWith('/usr/') ? lib : `/usr${lib}`;
  sh(`mkdir -p ${tree}$(dirname ${inUsr}) && cp -L ${lib} ${tree}${inUsr}`);
}
sh(`head -c ${LARGE_MB}M /dev/urandom > ${tree}/large.bin`);
const MODULES = 'json email.mime.multipart http.client xml.dom.minidom xml.etree.ElementTree asyncio decimal argparse logging.handlers unittest csv concurrent.futures multiprocessing pathlib tarfile zipfile typing dataclasses inspect pydoc difflib pickle statistics fractions calendar urllib.request ctypes'.split(' ');
const WORKLOADS = {
  'python imports': ['/usr/bin/python3.11', '-c', `import ${MODULES.join(', ')}`],
  'find /usr': ['/usr/bin/python3.11', '-c', "import os\nn=0\nfor _ in os.walk('/usr'): n+=1"],
  [`read ${LARGE_MB} MiB`]: ['/usr/bin/python3.11', '-c', "f=open('/large.bin','rb',buffering=0)\nwhile f.read(1<<20): pass"],
};
const layerFiles = {};
for (const compression of ['gzip', 'zstd', 'lz4', 'none']) {
  const file = join(root, `layer-${compression}.sqfs`);
  const comp = compression === 'none' ? ['-noI', '-noD', '-noF', '-noX'] : ['-comp', compression];
  execFileSync('mksquashfs', [tree, file, '-noappend', '-quiet', '-no-progress', ...comp], { stdio: 'ignore' });
  layerFiles[compression] = file;
}

// strata's stack by hand: loop (read-only, optionally direct I/O), squashfs, overlay on tmpfs.
function stack(file, directIo) {
  const dir = join(root, 'stack');
  sh(`mkdir -p ${dir}/l ${dir}/up ${dir}/m && mount -t tmpfs tmpfs ${dir}/up && mkdir ${dir}/up/u ${dir}/up/w`);
  const loop = sh(`losetup -r -f --show ${directIo ? '--direct-io=on --sector-size 4096' : ''} ${file}`).trim();
  sh(`mount -t squashfs -o ro ${loop} ${dir}/l && losetup -d ${loop}`);
  sh(`mount -t overlay -o lowerdir=${dir}/l,upperdir=${dir}/up/u,workdir=${dir}/up/w,volatile overlay ${dir}/m`);
  return { rootfs: `${dir}/m`, release: () => sh(`umount ${dir}/m && umount ${dir}/l && umount ${dir}/up`) };
}

const variants = [
  { name: 'local disk (ext4)', open: () => ({ rootfs: tree, release: () => {} }) },
  ...['gzip', 'zstd', 'lz4', 'none'].map((compression) => ({ name: `squashfs ${compression}`, compression, open: () => stack(layerFiles[compression], false) })),
  { name: 'squashfs zstd, loop direct-io', compression: 'zstd', open: () => stack(layerFiles.zstd, true) },
  { name: 'squashfs lz4, loop direct-io', compression: 'lz4', open: () => stack(layerFiles.lz4, true) },
];

const results = await withMountLock(() => {
  const out = [];
  for (const variant of variants) {
    const row = { name: variant.name, size: variant.compression ? sizeOf(layerFiles[variant.compression]) : null };
    for (const [workload, argv] of Object.entries(WORKLOADS)) {
      const cold = [], warm = [];
      for (let run = 0; run < RUNS; run++) {
        // Cold: caches dropped and the stack mounted afresh, as for a job's first start on a node.
        dropCaches();
        const mounted = variant.open();
        try {
          cold.push(timed(['/usr/sbin/chroot', mounted.rootfs, ...argv]));
          warm.push(timed(['/usr/sbin/chroot', mounted.rootfs, ...argv]));
        } finally {
          mounted.release();
        }
      }
      row[workload] = { cold: stats(cold), warm: stats(warm) };
    }
    out.push(row);
    console.log(`${variant.name}: ${Object.keys(WORKLOADS).map((w) => `${w} cold ${cell(row[w].cold)} warm ${cell(row[w].warm)}`).join('; ')}`);
  }
  return out;
});

const local = results[0];
console.log(`\nms, median (min-max) of ${RUNS}; ratio = cold time / local disk cold time. Python ${MODULES.length} modules.`);
console.log(table(
  ['tree', 'layer file', ...Object.keys(WORKLOADS).flatMap((w) => [`${w} cold`, 'ratio', `${w} warm`])],
  results.map((row) => [
    row.name,
    row.size ? `${(row.size / 2 ** 20).toFixed(0)} MiB` : '-',
    ...Object.keys(WORKLOADS).flatMap((w) => [cell(row[w].cold), `${(row[w].cold.median / local[w].cold.median).toFixed(2)}x`, cell(row[w].warm)]),
  ]),
));
console.log('target (BRIEF): cold start-up of a metadata-heavy program within 1.2x of the same tree on local disk.');
mkdirSync(new URL('results', import.meta.url).pathname, { recursive: true });
writeFileSync(new URL(`results/container${QUICK ? '-quick' : ''}.json`, import.meta.url).pathname, `${JSON.stringify(results, null, 2)}\n`);
