// `npm run bench [-- --quick]`: the targets of issue 17 (bench/targets.mjs: ratios against
// baselines measured in the same run, met/missed; bench/inside.mjs: start-up inside the container
// against local disk, per layer format), then every benchmark of issue 8, one after the
// other, each printing its tables. Full: ~30-40 minutes on a 2-core machine (the 4 GB image and inside.mjs's layer builds dominate); --quick: a few.
// Root; each benchmark takes /tmp/strata-mounttests.lock while it mounts and cleans up after itself.
// --hold-lock takes the lock once for the whole run (fewer waits on a busy machine, but other test
// runs wait for all of it, image preparation included).
//   npm run bench -- [--quick] [--only targets,targets-erofs,inside,setup,metadata,concurrency,container] [--hold-lock]

import { spawnSync } from 'node:child_process';
import { args, flag, option, withMountLock } from './lib.mjs';

const ALL = ['targets', 'targets-erofs', 'inside', 'setup', 'metadata', 'concurrency', 'container'];
// targets-erofs: bench/targets.mjs again with the layers in the import default's format (uncompressed
// erofs mounted on their files; targets.mjs alone measures zstd squashfs through loop devices).
// --quick leaves out concurrency.mjs (targets.mjs measures 16 concurrent prologs already, and the
// 17 images concurrency.mjs imports first would take --quick past 10 minutes) and targets-erofs.
const QUICK_SKIPS = ['concurrency', 'targets-erofs'];
const only = option('--only', ALL.filter((name) => !flag('--quick') || !QUICK_SKIPS.includes(name)).join(',')).split(',');
const passed = args.filter((arg, index) => arg !== '--only' && args[index - 1] !== '--only' && arg !== '--hold-lock');
const started = performance.now();
// The node agent and the benchmarks run under this Node: a site runs a supported line.
const major = Number(process.versions.node.split('.')[0]);
console.log(`bench: Node ${process.version} (${process.execPath})${major < 22 ? ': end-of-life, not what a site runs; run the benchmarks with Node 22 or 24 (scripts/setup keeps them in /var/cache/strata/node)' : ''}`);
let failed = 0;
const runAll = () => {
  for (const name of ALL.filter((bench) => only.includes(bench))) {
    console.log(`\n=== bench/${name}.mjs ${passed.join(' ')}`);
    const env = flag('--hold-lock') ? { ...process.env, STRATA_BENCH_LOCK_HELD: '1' } : process.env;
    const [script, ...extra] = name === 'targets-erofs' ? ['targets', '--format', 'erofs'] : [name];
    const result = spawnSync(process.execPath, [new URL(`${script}.mjs`, import.meta.url).pathname, ...passed, ...extra], { stdio: 'inherit', env });
    if (result.status !== 0) failed++;
  }
};
if (flag('--hold-lock')) await withMountLock(async () => runAll());
else runAll();
console.log(`\nbench: done in ${((performance.now() - started) / 60000).toFixed(1)} min${failed ? `, ${failed} failed` : ''}`);
process.exitCode = failed ? 1 : 0;
