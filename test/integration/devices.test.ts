// CDI devices applied to real jobs on a node without a GPU: the GPU node is made (device nodes by
// mknod in a directory of the host's /dev, a gcc-built libcuda.so exporting cuInit, a fake
// nvidia-smi, an nvidia-ctk-shaped spec), a real prolog sets the job up, and the job is entered as
// its user with `strata exec` (the task-entry path: entry.json's environment). A hostile image
// plants symlinks where the device's files go and at the dynamic loader's cache; nothing outside
// the rootfs may change. Every test leaves losetup -a / findmnt as found.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildLibcuda, cudaProbeFiles, makeGpuNodes, tempDir, writeFakeNvidiaSmi, writeSpecs } from '../helpers/cdi-host.js';
import { DRIVER_VERSION, nvidiaSpecYaml } from '../helpers/cdi-specs.js';
import { jobsOn, strataExecAs } from '../helpers/jobs.js';
import { expectNodeStateUnchanged, nodeState, type NodeState } from '../helpers/node-state.js';
import { busyboxLayer, layerTar, writeLayout, type TarSpec } from '../helpers/oci.js';
import { makeSite, type RunOutput, type Site } from '../helpers/site.js';

const UID = 1000;
/** Not a directory the dynamic loader searches by itself: only the device's env can find it. */
const LIB = '/usr/local/nvidia/lib64';
const IMAGE_LIB = '/opt/image/lib';
/** A group the job's user is not in. */
const MISSING_GID = 4242;
let site: Site;
let before: NodeState;
let root: string;
let devDir: string;
/** Host files a hostile image points its symlinks at. */
let victimFile: string;
let victimDir: string;
const hostileName = `strata-hostile-${process.pid}`;

const { jobDir, prolog, epilogAll } = jobsOn(() => site, { uid: UID });
const entry = (job: string) => JSON.parse(readFileSync(join(jobDir(job), 'entry.json'), 'utf8'));

/** `strata exec` as the job's user: the environment is entry.json's over this caller's. */
const inJob = (job: string, script: string): Promise<RunOutput> =>
  strataExecAs(UID, ['--job', job, '--', 'sh', '-c', script], { env: { PATH: '/usr/bin:/bin', STRATA_CONFIG: site.configPath } });

async function mustImport(layout: string, ref: string) {
  const result = await site.run(['import', `oci:${layout}:${ref}`, '--tag', `${ref}:1`]);
  if (result.code !== 0) throw new Error(result.stderr);
}

beforeAll(async () => {
  before = nodeState();
  root = tempDir();
  devDir = `/dev/strata-cdi-test-${process.pid}`;
  makeGpuNodes(devDir, 2);
  const driverDir = join(root, 'driver');
  buildLibcuda(driverDir);
  writeFakeNvidiaSmi(driverDir, 2);
  const specDir = join(root, 'cdi');
  writeSpecs(specDir, {
    'nvidia.yaml': nvidiaSpecYaml({ devRoot: devDir, containerDevRoot: devDir, driverDir, gpus: 2, libDir: LIB }),
    // A device whose spec gives the container groups: the job user's own primary group and one it lacks.
    'groups.json': { cdiVersion: '0.7.0', kind: 'example.com/grp', devices: [{ name: 'x', containerEdits: { env: ['EXAMPLE_GRP=1'], additionalGids: [UID, MISSING_GID] } }] },
  });
  victimFile = join(root, 'victim');
  writeFileSync(victimFile, 'host file\n');
  victimDir = join(root, 'victim.d');
  mkdirSync(victimDir);
  site = makeSite('devices', `devices:\n  spec_dirs:\n    - ${specDir}\n`);

  const layout = join(root, 'layout');
  const probe = cudaProbeFiles(root);
  const env = [`PATH=/usr/bin:/bin`, `LD_LIBRARY_PATH=${IMAGE_LIB}`, 'IMAGE_ONLY=1'];
  const hostile: TarSpec[] = [
    // The library folder leads (dangling, absolute) into the host's /dev if resolved after /dev is bound.
    { name: 'usr/local', type: 'dir' },
    { name: 'usr/local/nvidia', type: 'symlink', linkname: `/dev/shm/${hostileName}` },
    // A bind target and the loader's cache point at host files by their host paths.
    { name: 'usr/bin/nvidia-smi', type: 'symlink', linkname: victimFile },
    { name: 'etc/ld.so.cache', type: 'symlink', linkname: victimFile },
    { name: 'etc/ld.so.conf.d', type: 'symlink', linkname: victimDir },
  ];
  writeLayout(layout, [
    { ref: 'cuda', layers: [{ tar: busyboxLayer(probe), compression: 'none' }], config: { Env: env } },
    { ref: 'hostile', layers: [{ tar: busyboxLayer(probe), compression: 'none' }, { tar: layerTar(hostile), compression: 'none' }], config: { Env: env } },
  ]);
  await mustImport(layout, 'cuda');
  await mustImport(layout, 'hostile');
}, 120_000);

afterEach(async () => {
  await epilogAll();
  expectNodeStateUnchanged(before);
});

afterAll(() => {
  site?.remove();
  rmSync(devDir, { recursive: true, force: true });
  rmSync(root, { recursive: true, force: true });
});

test('a job asking for a GPU sees its device node, the driver library, the links and the env', async () => {
  const ready = await prolog('1', 'cuda:1', ['--devices', 'nvidia.com/gpu=0']);
  expect(ready.code).toBe(0);
  expect(existsSync(join(jobDir('1'), 'error'))).toBe(false);
  const job = entry('1');
  expect(job.devices).toEqual(['nvidia.com/gpu=0']);
  // The image's search path first, the driver's appended (update-ldcache, done without ldconfig).
  expect(job.env).toContain(`LD_LIBRARY_PATH=${IMAGE_LIB}:${LIB}`);
  expect(job.env).toEqual(expect.arrayContaining([`NVIDIA_CTK_LIBCUDA_DIR=${LIB}`, 'IMAGE_ONLY=1']));
  // Carried apart too, for whoever enters to add after a value that wins over the image's.
  expect(job.devicePaths).toEqual([`LD_LIBRARY_PATH=${LIB}`]);

  const seen = await inJob('1', [
    `stat -c '%F %t:%T' ${devDir}/nvidia0 ${devDir}/nvidiactl`,
    `test -e ${devDir}/nvidia1 && echo nvidia1 present`,
    'cuda-probe',
    `readlink ${LIB}/libcuda.so`,
    `readlink ${LIB}/libcuda.so.1`,
    'nvidia-smi -L',
    'echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"',
    'env -u LD_LIBRARY_PATH cuda-probe || true',
    `echo x > ${LIB}/libcuda.so.${DRIVER_VERSION} || echo read-only`,
  ].join('; '));
  expect(seen.stderr).not.toMatch(/strata:/);
  const lines = seen.stdout.split('\n');
  expect(lines.slice(0, 2)).toEqual(['character special file c3:0', 'character special file c3:ff']);
  // The host's /dev is the container's: gpu=1 is there too; Slurm's device cgroup is the fence.
  expect(lines).toContain('nvidia1 present');
  expect(lines).toContain('cuInit=0');
  expect(seen.stdout).toContain(`libcuda.so.1\nlibcuda.so.${DRIVER_VERSION}\n`);
  expect(seen.stdout).toContain('GPU 0: Strata Fake GPU');
  expect(lines).toContain(`LD_LIBRARY_PATH=${IMAGE_LIB}:${LIB}`);
  // Without the device's search path the loader does not find the library (no ld.so.cache was made).
  expect(seen.stdout).toMatch(/dlopen: libcuda\.so\.1: cannot open shared object file/);
  expect(seen.stdout).toMatch(/read-only/);
  // What was deliberately not done is in the admin log.
  expect(readFileSync(site.logFile, 'utf8')).toMatch(/"job":"1".*disable-device-node-modification: not needed/);
});

test('a user\'s own LD_LIBRARY_PATH kept with --container-env still finds the driver after it', async () => {
  // Pyxis's env test runs a CUDA image with --container-env=LD_LIBRARY_PATH. Without an ld.so.cache
  // the device's folder must follow whatever value wins, as the cache would rank after it.
  expect((await prolog('6', 'cuda:1', ['--devices', 'nvidia.com/gpu=0'])).code).toBe(0);
  const kept = (value: string) =>
    strataExecAs(UID, ['--job', '6', '--', 'sh', '-c', 'echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"; cuda-probe'], {
      env: { PATH: '/usr/bin:/bin', STRATA_CONFIG: site.configPath, STRATA_CONTAINER_ENV: 'LD_LIBRARY_PATH', LD_LIBRARY_PATH: value },
    });
  const own = await kept('/home/user/lib');
  expect(own.stdout.split('\n')).toEqual([`LD_LIBRARY_PATH=/home/user/lib:${LIB}`, 'cuInit=0', '']);
  // A value that already has the folder keeps its own order; the folder is not added twice.
  const has = await kept(`${LIB}:/home/user/lib`);
  expect(has.stdout.split('\n')[0]).toBe(`LD_LIBRARY_PATH=${LIB}:/home/user/lib`);
});

test('additionalGIDs reach no process; a group the user lacks is a clear warning in the admin log', async () => {
  expect((await prolog('7', 'cuda:1', ['--devices', 'example.com/grp=x'])).code).toBe(0);
  expect(entry('7').additionalGids).toEqual([UID, MISSING_GID]);
  // Slurm sets a task's groups after the plugin's last privileged hook, and `strata exec` is
  // unprivileged: the job keeps its own groups (decisions.md). setpriv --clear-groups: none.
  const seen = await inJob('7', 'id -G; echo "EXAMPLE_GRP=$EXAMPLE_GRP"');
  expect(seen.stdout).toBe(`${UID}\nEXAMPLE_GRP=1\n`);
  const log = readFileSync(site.logFile, 'utf8').split('\n').filter((line) => line.includes('"job":"7"'));
  expect(log.join('\n')).toMatch(new RegExp(`uid ${UID} is not in group ${MISSING_GID}\\b[^"]*may be denied`));
  expect(log.join('\n')).not.toMatch(new RegExp(`not in group[^"]*\\b${UID}\\b`));
});

test('a job without a device request sees none of it, and keeps the image environment as it is', async () => {
  expect((await prolog('2', 'cuda:1')).code).toBe(0);
  const job = entry('2');
  expect(job.devices).toBeUndefined();
  expect(job.env).toEqual(['PATH=/usr/bin:/bin', `LD_LIBRARY_PATH=${IMAGE_LIB}`, 'IMAGE_ONLY=1']);
  const seen = await inJob('2', `cuda-probe; test -e ${LIB} || echo no-lib; test -e /usr/bin/nvidia-smi || echo no-smi`);
  expect(seen.stdout).toMatch(/dlopen: libcuda\.so\.1/);
  expect(seen.stdout).toContain('no-lib\nno-smi\n');
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((line) => line.includes(`${jobDir('2')}/rootfs/usr`));
  expect(mounts).toEqual([]);
});

test('a hostile image cannot make the prolog write outside the rootfs', async () => {
  const result = await prolog('3', 'hostile:1', ['--devices', 'nvidia.com/gpu=all']);
  expect(result.code).toBe(0);
  expect(readFileSync(victimFile, 'utf8')).toBe('host file\n');
  expect(readdirSync(victimDir)).toEqual([]);
  expect(existsSync(`/dev/shm/${hostileName}`)).toBe(false);
  const hostMounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((line) => line.split(' ')[4]);
  expect(hostMounts.filter((target) => target === victimFile || target?.startsWith('/dev/shm/'))).toEqual([]);
  // The job itself starts: its links resolve inside its own tree.
  expect(existsSync(join(jobDir('3'), 'error'))).toBe(false);
  // The image's own links stay what it made them; the device's files went into the image's tree.
  const link = (path: string) => execFileSync('/usr/bin/readlink', [join(jobDir('3'), 'rootfs', path)], { encoding: 'utf8' }).trim();
  expect(link('etc/ld.so.cache')).toBe(victimFile);
  expect(link('usr/local/nvidia')).toBe(`/dev/shm/${hostileName}`);
});

test('links planted at the library, its soname link and the dev link lead nowhere outside the rootfs', async () => {
  const layout = join(root, 'layout-links');
  const dirs: TarSpec[] = ['usr', 'usr/local', 'usr/local/nvidia', 'usr/local/nvidia/lib64'].map((name) => ({ name, type: 'dir' }));
  const planted: TarSpec[] = [`libcuda.so.${DRIVER_VERSION}`, 'libcuda.so.1', 'libcuda.so'].map((name) => ({ name: `usr/local/nvidia/lib64/${name}`, type: 'symlink', linkname: victimFile }));
  writeLayout(layout, [{ ref: 'planted', layers: [{ tar: busyboxLayer(cudaProbeFiles(root)), compression: 'none' }, { tar: layerTar([...dirs, ...planted]), compression: 'none' }] }]);
  await mustImport(layout, 'planted');
  expect((await prolog('5', 'planted:1', ['--devices', 'nvidia.com/gpu=0'])).code).toBe(0);
  expect(readFileSync(victimFile, 'utf8')).toBe('host file\n');
  const hostMounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((line) => line.split(' ')[4]);
  expect(hostMounts).not.toContain(victimFile);
  // The library went where the image's link leads inside the image; the links strata makes replace
  // the planted ones. (The planted target is under /tmp, which the job's own /tmp then covers, so
  // the driver is not loadable in this hostile image: what matters is that nothing left the rootfs.)
  expect(hostMounts).toContain(join(jobDir('5'), 'rootfs', victimFile));
  const seen = await inJob('5', `readlink ${LIB}/libcuda.so.1; cat ${victimFile} 2>/dev/null || true`);
  expect(seen.stdout).toBe(`libcuda.so.${DRIVER_VERSION}\n`);
});

test('an image with a directory where the driver library goes fails the job, not the node', async () => {
  const layout = join(root, 'layout-dir');
  const blocked: TarSpec[] = ['usr', 'usr/local', 'usr/local/nvidia', 'usr/local/nvidia/lib64', `usr/local/nvidia/lib64/libcuda.so.${DRIVER_VERSION}`].map((name) => ({ name, type: 'dir' }));
  writeLayout(layout, [{ ref: 'blocked', layers: [{ tar: busyboxLayer(blocked), compression: 'none' }] }]);
  await mustImport(layout, 'blocked');
  const result = await prolog('4', 'blocked:1', ['--devices', 'nvidia.com/gpu=0']);
  expect(result.code).toBe(0);
  expect(readFileSync(join(jobDir('4'), 'error'), 'utf8')).toMatch(/^strata: .*libcuda\.so\.550\.54\.15/);
});
