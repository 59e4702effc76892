// Shared-filesystem load of a job start (issue 8, part 3): the metadata operations (path-based
// system calls, strace -e trace=%file) that strata's prolog makes on the store, per layer, versus
// an image kept as a directory tree on the same filesystem and copied to the node (cp -a) or
// walked (ls -lR), as tree-based image tools do.
//
//   node bench/metadata.mjs [--quick]

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { QUICK, scratch, strataSite, makeContent, layerTars, importLayers, layerFiles, withMountLock, sh, table, dist } from './lib.mjs';
import { storeOperations } from './strace-count.mjs';

const COUNTS = QUICK ? [1, 10] : [1, 5, 10, 20, 40];
const root = scratch('metadata');
const site = strataSite(root);
const content = join(root, 'content');
const files = makeContent(content, 0.1 * 2 ** 30, { smallFiles: 5000 });
const trace = join(root, 'trace.txt');
const traced = (command, env = '') => {
  sh(`${env} strace -f -qq -e trace=%file -o ${trace} ${command} >/dev/null`);
  return readFileSync(trace, 'utf8');
};

const rows = [];
for (const count of COUNTS) {
  const tars = layerTars(content, files, count, join(root, `tars-${count}`), { gzip: false });
  const ref = importLayers(site, `m${count}`, tars);
  const env = Object.entries(site.slurmEnv(1, ref)).map(([key, value]) => `${key}=${value}`).join(' ');
  const { prolog, epilog } = await withMountLock(() => {
    const prologOps = storeOperations(traced(dist('prolog/slurm.js'), `env -i ${env}`), site.store);
    const epilogOps = storeOperations(traced(dist('epilog/slurm.js'), `env -i ${env}`), site.store);
    return { prolog: prologOps, epilog: epilogOps };
  });
  // The same image as a directory tree on the "shared filesystem" (here: the same disk).
  const tree = join(site.store, `tree-${count}`);
  for (const file of layerFiles(site, ref)) sh(`unsquashfs -q -n -f -d ${tree} ${file} >/dev/null`);
  const copy = storeOperations(traced(`cp -a ${tree} ${root}/copy-${count}`), site.store).length;
  const walk = storeOperations(traced(`ls -lR ${tree}`), site.store).length;
  sh(`rm -rf ${tree} ${root}/copy-${count} ${root}/tars-${count}`);
  const layerOps = prolog.filter((op) => op.includes('/layers/')).length;
  rows.push([count, prolog.length, layerOps, (prolog.length / count).toFixed(1), epilog.length, copy, walk]);
  console.log(`${count} layers: prolog ${prolog.length} store operations (${[...new Set(prolog.map((op) => op.split(' ')[0]))].join(', ')}), epilog ${epilog.length}; tree: cp -a ${copy}, ls -lR ${walk}`);
}
console.log(`\nimage: ${files.length} files; metadata operations on the store per job start (strace -f -e trace=%file):`);
console.log(table(['layers', 'strata prolog', 'of which on layer files', 'per layer', 'strata epilog', 'directory tree: cp -a', 'directory tree: ls -lR'], rows));
console.log('target (BRIEF): <= 3 per layer (open/stat of the layer files).');
