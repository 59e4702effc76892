// End to end through real Slurm (22.05): sbatch/srun/salloc with --container-* options on the
// 3-node cluster of test/cluster (started here if it is not up), with the real prolog, epilog and
// SPANK plugin. Jobs run as an unprivileged user. After every test, every node must be idle (never
// drained) and clean: no mounts under /run/strata in its namespace, no job directories, and
// `losetup -a` and this machine's `findmnt` exactly as before the test.
//
// Runs as root, under the mount-test lock (scripts/test holds /tmp/strata-mounttests.lock).

import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  DIR,
  NODES,
  STORE,
  USER,
  importImage,
  jobInfo,
  nodeLeftovers,
  on,
  readOutput,
  removeImageFromStore,
  sbatch,
  useCleanCluster,
  waitForJob,
  waitForQuietCluster,
  workDir,
} from './cluster.js';

useCleanCluster(() => importImage('e2e:1', { 'etc/strata-marker': 'e2e-image-v1\n' }));

/** Submit, wait for the end (epilogs included), return the job's final record and its output. */
async function runBatch(name: string, args: string[], script: string, expectState = 'COMPLETED') {
  const dir = workDir(name);
  const submitted = await sbatch(dir, ['-o', join(dir, 'out.txt'), ...args, '--wrap', script]);
  expect({ code: submitted.code, stderr: submitted.stderr }).toEqual({ code: 0, stderr: '' });
  const info = await waitForJob(submitted.jobId!);
  const output = readOutput(join(dir, 'out.txt'));
  expect({ state: info.state, output }).toEqual({ state: expectState, output: expect.any(String) });
  return { dir, jobId: submitted.jobId!, info, output };
}

const lines = (text: string) => text.split('\n').filter(Boolean);

test('a batch script runs inside the image, as the user, in its working directory', async () => {
  const { dir, output } = await runBatch('single', ['-N1', '--container-image=e2e:1'], 'cat /etc/strata-marker; id -u; pwd; echo data > result.txt');
  expect(lines(output)).toEqual(['e2e-image-v1', String(USER.uid), dir]);
  expect(readFileSync(join(dir, 'result.txt'), 'utf8')).toBe('data\n');
});

test('a -N3 job: the batch script and srun steps on all three nodes see the image', async () => {
  // The batch script runs on the host here (the image has no Slurm); its steps enter the container.
  const { output } = await runBatch(
    'three-nodes',
    ['-N3', '--container-image=e2e:1', '--container-batch=host'],
    'grep -c ^ID=debian /etc/os-release; srun -l sh -c \'echo "$(hostname) $(cat /etc/strata-marker)"\' | sort',
  );
  expect(lines(output)).toEqual(['1', '0: n1 e2e-image-v1', '1: n2 e2e-image-v1', '2: n3 e2e-image-v1']);
});

test('a -N3 batch script itself runs in the container on the first node', async () => {
  const { output, info } = await runBatch('three-nodes-batch', ['-N3', '--container-image=e2e:1'], 'cat /etc/strata-marker; hostname');
  expect(lines(output)).toEqual(['e2e-image-v1', info.nodes.replace(/^n\[?(\d).*$/, 'n$1')]);
});

test('srun --container-image and salloc --container-image', async () => {
  const dir = workDir('srun-salloc');
  const srun = await on('head', ['srun', '-N3', '-l', '--container-image=e2e:1', 'cat', '/etc/strata-marker'], { user: true, cwd: dir });
  expect(srun.code).toBe(0);
  expect(lines(srun.stdout).sort()).toEqual(['0: e2e-image-v1', '1: e2e-image-v1', '2: e2e-image-v1']);
  await waitForQuietCluster();
  // salloc runs its command on the submit host; the steps it starts run in the container.
  const salloc = await on('head', ['salloc', '-N2', '--container-image=e2e:1', 'srun', '-l', 'cat', '/etc/strata-marker'], { user: true, cwd: dir });
  expect(salloc.code).toBe(0);
  expect(lines(salloc.stdout).sort()).toEqual(['0: e2e-image-v1', '1: e2e-image-v1']);
});

test("~/NAME:TAG is the submitting user's own namespace, resolved and pinned at submit", async () => {
  await importImage(`~${USER.name}/own:1`, { 'etc/strata-marker': 'own-image\n' });
  const dir = workDir('own-namespace');
  const srun = await on('head', ['srun', '-N2', '-l', '--container-image=~/own:1', 'cat', '/etc/strata-marker'], { user: true, cwd: dir });
  expect({ code: srun.code, stderr: srun.stderr }).toEqual({ code: 0, stderr: '' });
  expect(lines(srun.stdout).sort()).toEqual(['0: own-image', '1: own-image']);
  await waitForQuietCluster();
  // Someone else's ~/ is their own: root has no ~root/own:1.
  const theirs = await on('head', ['srun', '-N1', '--container-image=~/own:1', 'true'], { cwd: dir });
  expect(theirs.code).not.toBe(0);
  expect(theirs.stderr).toMatch(/unknown image "~\/own:1"/);
});

test('an unknown image is rejected by sbatch at once, with close matches, and no job is created', async () => {
  const dir = workDir('unknown');
  const queued = (await on('head', ['squeue', '-h'])).stdout;
  const result = await sbatch(dir, ['--container-image=e2e:2', '--wrap', 'true']);
  expect(result.code).not.toBe(0);
  expect(result.jobId).toBeUndefined();
  expect(result.stderr).toMatch(/sbatch: error: strata: unknown image "e2e:2"/);
  expect(result.stderr).toMatch(/e2e:1/); // the close match
  expect((await on('head', ['squeue', '-h'])).stdout).toBe(queued);
});

test('a job is pinned at submit time: it runs the old image after the tag moves', async () => {
  const v1 = await importImage('pin:1', { 'etc/strata-marker': 'pin-v1\n' });
  const dir = workDir('pinned');
  const submitted = await sbatch(dir, ['-N1', '--hold', '--container-image=pin:1', '-o', join(dir, 'out.txt'), '--wrap', 'cat /etc/strata-marker']);
  expect(submitted.code).toBe(0);
  const v2 = await importImage('pin:1', { 'etc/strata-marker': 'pin-v2\n' });
  expect(v2).not.toBe(v1);
  await on('head', ['scontrol', 'release', submitted.jobId!]);
  const info = await waitForJob(submitted.jobId!);
  expect({ state: info.state, output: readOutput(join(dir, 'out.txt')) }).toEqual({ state: 'COMPLETED', output: 'pin-v1\n' });
});

test('a user error at prolog time fails the job with a readable message; no node is drained', async () => {
  const { output, info } = await runBatch(
    'bad-mount',
    ['-N2', '--container-image=e2e:1', '--container-mounts=/nonexistent/source:/data'],
    'echo the script must not run',
    'FAILED',
  );
  expect(output).not.toMatch(/must not run/);
  expect(output).toMatch(/^strata: n\d: .*\/nonexistent\/source/m);
  expect(info.exitCode).toBe('1:0');
  // afterEach checks that every node is idle (not drained) and clean.
});

test('an image removed between submit and start fails the job with a message; nodes stay idle', async () => {
  await importImage('doomed:1', { 'etc/strata-marker': `doomed-${Date.now()}\n` });
  const dir = workDir('removed');
  const submitted = await sbatch(dir, ['-N2', '--hold', '--container-image=doomed:1', '-o', join(dir, 'out.txt'), '--wrap', 'echo the script must not run']);
  expect(submitted.code).toBe(0);
  removeImageFromStore('doomed:1');
  await on('head', ['scontrol', 'release', submitted.jobId!]);
  const info = await waitForJob(submitted.jobId!);
  const output = readOutput(join(dir, 'out.txt'));
  expect({ state: info.state, message: /^strata: n\d: .+/m.test(output), ran: /must not run/.test(output) }).toEqual({ state: 'FAILED', message: true, ran: false });
});

test('two jobs share a node and an image: one mount per layer, both run', async () => {
  const dirs = [workDir('share-a'), workDir('share-b')];
  const jobs = [];
  for (const dir of dirs) {
    const submitted = await sbatch(dir, ['-w', 'n1', '-n1', '--container-image=e2e:1', '-o', join(dir, 'out.txt'), '--wrap', 'sleep 3; cat /etc/strata-marker']);
    expect(submitted.code).toBe(0);
    jobs.push(submitted.jobId!);
  }
  for (const job of jobs) await waitForJob(job, ['RUNNING']);
  const layers = readdirSync(join(STORE, 'layers/sha256'));
  // The layers are erofs (the default), mounted on their files: one mount per layer file, none twice.
  // (Slurm may show a job RUNNING while its prolog still runs: wait for the layers.)
  const layerSources = async () => lines((await on('n1', ['findmnt', '-rn', '-o', 'TARGET,SOURCE'])).stdout).filter((line) => line.startsWith('/run/strata/l/')).map((line) => line.split(' ')[1]);
  let sources = await layerSources();
  for (let i = 0; i < 50 && sources.length === 0; i++) sources = await new Promise((r) => setTimeout(r, 200)).then(layerSources);
  expect(sources.length).toBeGreaterThan(0);
  expect(sources.length).toBe(new Set(sources).size);
  expect(sources.every((source) => layers.some((layer) => source === join(STORE, 'layers/sha256', layer)))).toBe(true);
  for (const [i, job] of jobs.entries()) {
    const info = await waitForJob(job);
    expect({ state: info.state, output: readOutput(join(dirs[i], 'out.txt')) }).toEqual({ state: 'COMPLETED', output: 'e2e-image-v1\n' });
  }
});

test('scancel of a running container job: the epilog cleans every node', async () => {
  const dir = workDir('cancel');
  const submitted = await sbatch(dir, ['-N3', '--container-image=e2e:1', '--container-batch=host', '-o', join(dir, 'out.txt'), '--wrap', 'srun sleep 300']);
  expect(submitted.code).toBe(0);
  await waitForJob(submitted.jobId!, ['RUNNING']);
  // wait until the step's tasks are running in the containers
  for (let i = 0; i < 50 && !(await on('head', ['squeue', '-h', '-s', '-j', submitted.jobId!])).stdout.includes('sleep'); i++) await new Promise((r) => setTimeout(r, 200));
  const busy = await Promise.all(NODES.map((node) => nodeLeftovers(node)));
  expect(busy.every((left) => left.some((item) => item === `mount /run/strata/jobs/${submitted.jobId}/rootfs`))).toBe(true);
  // ... each in its node's own mount namespace, none on this machine's
  expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(`/run/strata/jobs/${submitted.jobId}/`);
  const namespaces = await Promise.all(NODES.map(async (node) => (await on(node, ['readlink', '/proc/self/ns/mnt'])).stdout.trim()));
  expect(new Set([...namespaces, `${(await on('head', ['readlink', '/proc/self/ns/mnt'])).stdout.trim()}`]).size).toBe(NODES.length + 1);
  await on('head', ['scancel', submitted.jobId!]);
  expect((await waitForJob(submitted.jobId!)).state).toBe('CANCELLED');
  // afterEach: every node idle and clean
});

test('user mounts (read-only honoured) and --container-workdir', async () => {
  const data = workDir('mounts-data');
  writeFileSync(join(data, 'input.txt'), 'from the host\n');
  const { output } = await runBatch(
    'mounts',
    ['-N1', '--container-image=e2e:1', `--container-mounts=${data}:/data:ro`, '--container-workdir=/data'],
    'pwd; cat input.txt; touch /data/new 2>&1 | grep -o "Read-only file system"; true',
  );
  expect(lines(output)).toEqual(['/data', 'from the host', 'Read-only file system']);
  expect(existsSync(join(data, 'new'))).toBe(false);
});

test('the image stays intact: read-only rootfs, writes discarded, setuid binaries give no privileges', async () => {
  const layerHashes = () =>
    readdirSync(join(STORE, 'layers/sha256')).map((file) => createHash('sha256').update(readFileSync(join(STORE, 'layers/sha256', file))).digest('hex'));
  const hashesBefore = layerHashes();

  // The root seen inside the container (the last mount on "/" in its mountinfo) must be nosuid,nodev.
  const rootOptions = "awk '$5 == \"/\" { o = $6 } END { print o }' /proc/self/mountinfo | tr , '\\n' | grep -E '^(ro|rw|nosuid|nodev)$' | sort | tr '\\n' ' '; echo";
  const readonly = await runBatch('readonly', ['-N1', '--container-image=e2e:1', '--container-readonly'], `touch /probe 2>&1 | grep -o "Read-only file system"; /bin/euid; ${rootOptions}`);
  expect(lines(readonly.output)).toEqual(['Read-only file system', `euid=${USER.uid}`, 'nodev nosuid ro ']);

  const writable = await runBatch('writable', ['-N1', '-w', 'n1', '--container-image=e2e:1', '--container-writable'], `echo scratch > /probe && cat /probe; /bin/euid; ${rootOptions}`);
  expect(lines(writable.output)).toEqual(['scratch', `euid=${USER.uid}`, 'nodev nosuid rw ']);
  await waitForQuietCluster();
  const next = await runBatch('writable-next', ['-N1', '-w', 'n1', '--container-image=e2e:1'], 'ls /probe 2>&1 | grep -c "No such file"');
  expect(next.output).toBe('1\n');

  expect(layerHashes()).toEqual(hashesBefore);
});

test('srun --container-image=OTHER in a job with another image, or in an allocation without one, is refused with one line; nodes stay idle', async () => {
  await importImage('other:1', { 'etc/strata-marker': 'other-image\n' });
  const dir = workDir('step-other-image');
  const another = 'srun: error: strata: this job runs in image e2e:1; its steps cannot use another image (--container-image=other:1)';
  // An allocation with an image: salloc's command runs on the submit host.
  const salloc = await on('head', ['salloc', '-N1', '--container-image=e2e:1', 'srun', '--container-image=other:1', 'cat', '/etc/strata-marker'], { user: true, cwd: dir });
  expect({ code: salloc.code === 0, stdout: salloc.stdout, stderr: lines(salloc.stderr).filter((line) => !/^salloc: /.test(line)) }).toEqual({ code: false, stdout: '', stderr: [another] });
  await waitForQuietCluster();
  // A batch job with an image: its script runs in the container, srun is the node's client there.
  const batch = await runBatch('step-other-image-batch', ['-N1', '--container-image=e2e:1'], 'srun --container-image=other:1 cat /etc/strata-marker; echo "status=$?"');
  expect(lines(batch.output)).toEqual([another, 'status=1']);
  // An allocation without an image.
  const bare = await on('head', ['salloc', '-N1', 'srun', '--container-image=e2e:1', 'cat', '/etc/strata-marker'], { user: true, cwd: dir });
  expect({ code: bare.code === 0, stdout: bare.stdout, stderr: lines(bare.stderr).filter((line) => !/^salloc: /.test(line)) }).toEqual({
    code: false,
    stdout: '',
    stderr: [
      'srun: error: strata: --container-image on srun inside an allocation without an image is not supported: give the image to sbatch or salloc (e.g. #SBATCH --container-image=e2e:1); job steps then run in it',
    ],
  });
  // No node drained by any of them (afterEach checks again, with every node clean).
  expect(await waitForQuietCluster()).toEqual(Object.fromEntries(NODES.map((node) => [node, 'idle'])));
});

test('a job without --container-image is unaffected', async () => {
  const { output, jobId } = await runBatch('plain', ['-N2'], 'grep -c ^ID=debian /etc/os-release; srun -l hostname | sort');
  expect(lines(output)).toEqual(['1', '0: n1', '1: n2']);
  expect((await jobInfo(jobId)).state).toBe('COMPLETED');
});

test('the job environment: the image env wins, Slurm variables are kept, the pin is visible', async () => {
  const { output } = await runBatch(
    'env',
    ['-N1', '--container-image=e2e:1', '--export=ALL,PATH=/host/only/bin,MY_SETTING=kept'],
    'echo "PATH=$PATH"; echo "MY_SETTING=$MY_SETTING"; echo "SLURM_JOB_NUM_NODES=$SLURM_JOB_NUM_NODES"; echo "$SLURM_SPANK_STRATA_IMAGE_DIGEST" | grep -c "^sha256:"',
  );
  const env = lines(output);
  expect(env[0]).not.toContain('/host/only/bin');
  expect(env.slice(1)).toEqual(['MY_SETTING=kept', 'SLURM_JOB_NUM_NODES=1', '1']);
});

test('environment variables work instead of options (e.g. for slurmrestd), options win', async () => {
  const dir = workDir('env-fallback');
  const submitted = await on(
    'head',
    ['env', 'STRATA_CONTAINER_IMAGE=e2e:1', 'STRATA_CONTAINER_WORKDIR=/etc', 'sbatch', '-N1', '-o', join(dir, 'out.txt'), '--container-workdir=/bin', '--wrap', 'pwd; cat /etc/strata-marker'],
    { user: true, cwd: dir },
  );
  expect(submitted.code).toBe(0);
  const info = await waitForJob(/Submitted batch job (\d+)/.exec(submitted.stdout)![1]);
  expect({ state: info.state, output: lines(readOutput(join(dir, 'out.txt'))) }).toEqual({ state: 'COMPLETED', output: ['/bin', 'e2e-image-v1'] });

  const unknown = await on('head', ['env', 'STRATA_CONTAINER_IMAGE=nope:1', 'sbatch', '--wrap', 'true'], { user: true, cwd: dir });
  expect(unknown.code).not.toBe(0);
  expect(unknown.stderr).toMatch(/strata: unknown image "nope:1"/);
});

test('plugstack prefix=strata renames the options (for sites that also run pyxis)', async () => {
  const alt = join(DIR, 'etc-prefix');
  mkdirSync(alt, { recursive: true });
  const plugstack = readFileSync(join(DIR, 'etc/plugstack.conf'), 'utf8').replace(/\n?$/, ' prefix=strata\n');
  writeFileSync(join(alt, 'plugstack.conf'), plugstack);
  writeFileSync(join(alt, 'slurm.conf'), readFileSync(join(DIR, 'etc/slurm.conf'), 'utf8').replace(/^PlugStackConfig=.*$/m, `PlugStackConfig=${join(alt, 'plugstack.conf')}`));
  const help = await on('head', ['env', `SLURM_CONF=${join(alt, 'slurm.conf')}`, 'sbatch', '--help']);
  expect(help.stdout).toMatch(/--strata-image=/);
  expect(help.stdout).toMatch(/--strata-mounts=/);
  expect(help.stdout).not.toMatch(/--container-image/);
  const bad = await on('head', ['env', `SLURM_CONF=${join(alt, 'slurm.conf')}`, 'sbatch', '--strata-image=nope:1', '--wrap', 'true'], { user: true, cwd: workDir('prefix') });
  expect(bad.stderr).toMatch(/strata: unknown image "nope:1"/);
});

test('--container-upper-size caps what a job can write; bad option values are refused at submit', async () => {
  const { output } = await runBatch(
    'upper-size',
    ['-N1', '--container-image=e2e:1', '--container-upper-size=8M'],
    // Into the writable layer (the job's /tmp is its own tmpfs, see container-env.test.ts).
    'dd if=/dev/zero of=/big bs=1M count=32 2>&1 | grep -o "No space left on device" | head -1',
  );
  expect(output).toBe('No space left on device\n');

  const dir = workDir('bad-values');
  const cases: [string[], RegExp][] = [
    [['--container-image=e2e:1', '--container-upper-size=lots'], /strata: --container-upper-size: "lots" is not a size/],
    // 0 bytes after rounding (tmpfs would read size=0 as no limit): refused at submit, not at job start
    [['--container-image=e2e:1', '--container-upper-size=0.0001K'], /strata: --container-upper-size: "0.0001K" is less than the smallest writable layer strata makes \(1M\); ask for at least 1M/],
    [['--container-image=e2e:1', '--container-mounts=data:/data'], /strata: invalid mount "data:\/data" in --container-mounts: "data" is not an absolute path/],
    [['--container-image=e2e:1', '--container-mounts=/a:/b:rx'], /strata: invalid mount "\/a:\/b:rx" in --container-mounts: unknown flag "rx"/],
    // Pyxis's syntax: flags strata's binds cannot have are refused by name
    [['--container-image=e2e:1', '--container-mounts=/tmp:/mnt:unbindable+ro'], /strata: invalid mount .* strata does not support the mount flag "unbindable"/],
    [['--container-image=e2e:1', '--container-mounts=tmpfs:/mytmpfs'], /strata: invalid mount .* "tmpfs" mounts are not supported by strata/],
    // Pyxis's options strata does not honour: one line each, saying what to do instead
    [['--container-image=e2e:1', '--container-env=A,'], /strata: --container-env: "A," is not a list of variable names/],
    [['--container-image=e2e:1', '--container-name=args-test:sometimes'], /strata: --container-name: "args-test:sometimes" is not NAME\[:auto\|create\|exec\|no_exec\]/],
    [['--container-name=args-test'], /strata: --container-name needs --container-image: strata keeps no container after its job/],
    [['--container-image=e2e:1', '--container-entrypoint', '--no-container-entrypoint'], /--container-entrypoint and --no-container-entrypoint exclude each other/],
    [['--container-image=e2e:1', '--container-writable', '--container-readonly'], /--container-writable and --container-readonly exclude each other/],
    [['--container-image=e2e:1', '--container-workdir=rel'], /--container-workdir must be an absolute path/],
    [['--container-image=e2e:1', '--container-batch=elsewhere'], /--container-batch must be "container" or "host"/],
    [['--container-mounts=/a:/b'], /strata: --container-mounts needs --container-image/],
  ];
  for (const [args, message] of cases) {
    const result = await sbatch(dir, [...args, '--wrap', 'true']);
    expect({ args, code: result.code, jobId: result.jobId, stderr: result.stderr }).toEqual({ args, code: 1, jobId: undefined, stderr: expect.stringMatching(message) });
  }
});

test('--export=NONE: the job still gets its container, batch placement and working directory', async () => {
  const hostBatch = await runBatch(
    'export-none-host',
    ['-N2', '--export=NONE', '--container-image=e2e:1', '--container-batch=host'],
    'grep -c ^ID=debian /etc/os-release; srun -l cat /etc/strata-marker | sort',
  );
  expect(lines(hostBatch.output)).toEqual(['1', '0: e2e-image-v1', '1: e2e-image-v1']);
  const inside = await runBatch('export-none-inside', ['-N1', '--export=NONE', '--container-image=e2e:1', '--container-workdir=/etc'], 'pwd; cat strata-marker');
  expect(lines(inside.output)).toEqual(['/etc', 'e2e-image-v1']);
});
