// The demo behind `scripts/demo`: a throw-away site under /tmp, a busybox image with two layers,
// one job set up, entered, and torn down, with the time each took.

import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const strata = join(process.cwd(), 'dist/bin/strata.js');
const root = mkdtempSync('/tmp/strata-demo-');
const config = join(root, 'strata.yaml');
writeFileSync(config, `store:\n  path: ${root}/store\nruntime_dir: ${root}/run\nlog:\n  file: ${root}/strata.log\n`);
const env = { ...process.env, STRATA_CONFIG: config };
const run = (args, show = true) => {
  if (show) console.log(`$ strata ${args.join(' ')}`);
  const started = performance.now();
  const result = spawnSync(process.execPath, [strata, ...args], { env, encoding: 'utf8' });
  const ms = performance.now() - started;
  if (show) process.stdout.write(result.stdout + result.stderr);
  if (result.status !== 0) throw new Error(`strata ${args[0]} failed`);
  return ms;
};

try {
  const base = join(root, 'base');
  mkdirSync(join(base, 'bin'), { recursive: true });
  mkdirSync(join(base, 'etc'));
  cpSync('/bin/busybox', join(base, 'bin/busybox'));
  for (const applet of ['sh', 'ls', 'cat', 'id', 'uname']) symlinkSync('busybox', join(base, 'bin', applet));
  writeFileSync(join(base, 'etc/os-release'), 'PRETTY_NAME="strata demo (busybox)"\n');
  const app = join(root, 'app');
  mkdirSync(join(app, 'app'), { recursive: true });
  writeFileSync(join(app, 'app/hello.sh'), 'echo "hello from inside the image, running as $(id -u) on $(uname -n)"\n');

  const timings = {};
  timings['import (base layer)'] = run(['import', `dir:${base}`, '--tag', 'demo-base:1']);
  timings['import (app layer)'] = run(['import', `dir:${app}`, '--tag', 'demo:1', '--base', 'demo-base:1']);
  run(['images']);
  timings['prolog (job 1)'] = run(['prolog', '--job', '1', '--uid', '0', '--gid', '0', '--image', 'demo:1', '--timings']);
  const rootfs = join(root, 'run/jobs/1/rootfs');
  console.log(`$ chroot ${rootfs} /bin/sh -c 'cat /etc/os-release; sh /app/hello.sh'`);
  let started = performance.now();
  process.stdout.write(execFileSync('/usr/sbin/chroot', [rootfs, '/bin/sh', '-c', 'cat /etc/os-release; sh /app/hello.sh'], { encoding: 'utf8' }));
  timings['command inside the rootfs'] = performance.now() - started;
  timings['epilog (job 1)'] = run(['epilog', '--job', '1', '--timings']);
  console.log('\nwall time of each step (ms, including Node start-up):');
  for (const [step, ms] of Object.entries(timings)) console.log(`  ${step.padEnd(30)} ${ms.toFixed(0).padStart(6)}`);
  const left = execFileSync('/usr/sbin/losetup', ['-a'], { encoding: 'utf8' }).split('\n').filter((line) => line.includes(root));
  console.log(left.length ? `LEAK: ${left.join('\n')}` : 'node is clean: no loop devices or mounts left');
} finally {
  // Only once nothing is mounted below it (the epilog above removed everything).
  const mounted = execFileSync('/usr/bin/findmnt', ['-rn', '-o', 'TARGET'], { encoding: 'utf8' }).split('\n').some((target) => target.startsWith(root));
  if (!mounted) rmSync(root, { recursive: true, force: true });
}
