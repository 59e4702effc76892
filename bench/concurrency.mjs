// Concurrent job starts on one node (issue 8, part 4): 16 and 64 prologs of different jobs started
// at once, all on the same image or spread over different images; then their epilogs at once.
// Reports the total time, each prolog's time, the node-lock wait (from the prolog's log line),
// the loop devices in use (must be one per layer file) and whether every job came up.
//
//   node bench/concurrency.mjs [--quick]

import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { QUICK, scratch, strataSite, makeContent, layerTars, importLayers, layerFiles, withMountLock, mountNodeRun, stats, table, fmt, slurmEntry } from './lib.mjs';

const CONCURRENCY = QUICK ? [16] : [16, 64];
const DIFFERENT_IMAGES = 16;
const LAYERS = 5;
const root = scratch('concurrency');
// Info level: the prolog's "rootfs ready" line carries its lock wait.
const site = strataSite(root, { logLevel: 'info' });
const content = join(root, 'content');
const files = makeContent(content, 30 * 2 ** 20, { smallFiles: 2000 });

// One shared image, and DIFFERENT_IMAGES images with layers of their own (each file in one image).
const shared = importLayers(site, 'shared', layerTars(content, files, LAYERS, join(root, 'tars-shared'), { gzip: false }));
const images = [];
for (let i = 0; i < DIFFERENT_IMAGES; i++) {
  const own = files.filter((_, index) => index % DIFFERENT_IMAGES === i);
  images.push(importLayers(site, `img${i}`, layerTars(content, own, LAYERS, join(root, `tars-${i}`), { gzip: false })));
}
const layerCount = (refs) => new Set(refs.flatMap((ref) => layerFiles(site, ref))).size;

const run = (script, job, ref) =>
  new Promise((resolve) => {
    const started = performance.now();
    const child = spawn(slurmEntry(script), [], { env: { ...site.slurmEnv(job, ref), STRATA_CONFIG: site.config }, stdio: 'ignore' });
    child.on('exit', (code) => resolve({ code, ms: performance.now() - started }));
  });
const loopsInUse = () =>
  readdirSync('/sys/block').filter((name) => {
    try {
      return readFileSync(`/sys/block/${name}/loop/backing_file`, 'utf8').startsWith(site.store);
    } catch {
      return false;
    }
  }).length;
const logLines = () => (existsSync(join(root, 'strata.log')) ? readFileSync(join(root, 'strata.log'), 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line)) : []);

let job = 5000;
const rows = [];
await withMountLock(async () => {
  mountNodeRun(root);
  for (const count of CONCURRENCY) {
    for (const kind of ['same image', 'different images']) {
      const refs = Array.from({ length: count }, (_, i) => (kind === 'same image' ? shared : images[i % DIFFERENT_IMAGES]));
      const jobs = refs.map(() => job++);
      const seen = logLines().length;
      let started = performance.now();
      const prologs = await Promise.all(jobs.map((id, i) => run('prolog', id, refs[i])));
      const prologTotal = performance.now() - started;
      const ready = jobs.filter((id) => existsSync(join(site.runtime, 'jobs', String(id), 'entry.json'))).length;
      const loops = loopsInUse();
      const expected = layerCount([...new Set(refs)]);
      const waits = logLines().slice(seen).filter((line) => line.message === 'rootfs ready').map((line) => line.lockWaitMs ?? 0);
      started = performance.now();
      const epilogs = await Promise.all(jobs.map((id, i) => run('epilog', id, refs[i])));
      const epilogTotal = performance.now() - started;
      const failed = [...prologs, ...epilogs].filter((result) => result.code !== 0).length;
      const each = stats(prologs.map((result) => result.ms));
      const wait = stats(waits.length ? waits : [0]);
      rows.push([count, kind, `${ready}/${count}`, failed, fmt(prologTotal), `${fmt(each.median)} (${fmt(each.min)}-${fmt(each.max)})`, `${fmt(wait.median)} (max ${fmt(wait.max)})`, `${loops} / ${expected}`, fmt(epilogTotal), loopsInUse()]);
      console.log(rows.at(-1).join(' | '));
    }
  }
});
console.log(`\n${LAYERS}-layer images; "different images": ${DIFFERENT_IMAGES} images with layers of their own, jobs spread over them. ms unless marked s.`);
console.log(table(['prologs at once', 'image', 'jobs ready', 'failed', 'all prologs done', 'each prolog, median (min-max)', 'lock wait, median (max)', 'loop devices / layer files', 'all epilogs done', 'loops left'], rows));
console.log('target (BRIEF): 16 concurrent prologs all correct, one loop device per layer file, done within 2 s.');
