// `npm run bench [-- --quick]`: every benchmark of issue 8, one after the other, each printing its
// tables. Full: ~20-30 minutes on a 2-core machine (the 4 GB image dominates); --quick: a few.
// Root; each benchmark takes /tmp/strata-mounttests.lock while it mounts and cleans up after itself.
//   npm run bench -- [--quick] [--only setup,metadata,concurrency,container]

import { spawnSync } from 'node:child_process';
import { args, option } from './lib.mjs';

const ALL = ['setup', 'metadata', 'concurrency', 'container'];
const only = option('--only', ALL.join(',')).split(',');
const passed = args.filter((arg, index) => arg !== '--only' && args[index - 1] !== '--only');
const started = performance.now();
let failed = 0;
for (const name of ALL.filter((bench) => only.includes(bench))) {
  console.log(`\n=== bench/${name}.mjs ${passed.join(' ')}`);
  const result = spawnSync(process.execPath, [new URL(`${name}.mjs`, import.meta.url).pathname, ...passed], { stdio: 'inherit' });
  if (result.status !== 0) failed++;
}
console.log(`\nbench: done in ${((performance.now() - started) / 60000).toFixed(1)} min${failed ? `, ${failed} failed` : ''}`);
process.exitCode = failed ? 1 : 0;
