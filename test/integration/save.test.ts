// --container-save on real overlays (issue 16): the epilog saves the job's writable layer with its
// whiteouts and opaque directories in OCI form; the file, imported on top of the job's image, gives
// a job the very tree the first job left. Written as the user (never root into a user's path),
// atomically; a save that cannot read the layer fails the save, not the epilog. ~/NAME:TAG
// publishes through the store owner's writer with the real sudo rule of user imports. The saved
// file given back as an image (`--container-image=./saved.sqsh`, resolved as the user) is the
// job's image plus the layer, by the base digest the file records.

import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { importThreeLayerImage } from '../helpers/images.js';
import { expectNodeStateUnchanged, nodeState, type NodeState } from '../helpers/node-state.js';
import { makeSite, runCommand, STRATA, type Site } from '../helpers/site.js';
import { compareTrees, PER_JOB_PATHS } from '../helpers/tree-compare.js';

const OWNER = 'strata-store';
const USER = 'strata-saver';
const SUDOERS = '/etc/sudoers.d/strata-test-save';
const created: string[] = [];
let site: Site;
let before: NodeState;
let user: { uid: number; gid: number };
let out: string;

const ids = (name: string) => ({ uid: Number(execFileSync('/usr/bin/id', ['-u', name])), gid: Number(execFileSync('/usr/bin/id', ['-g', name])) });
const jobDir = (job: string) => join(site.runtime, 'jobs', job);
const rootfs = (job: string) => join(jobDir(job), 'rootfs');
const asRoot = (job: string, script: string) => spawnSync('/usr/sbin/chroot', [rootfs(job), '/bin/sh', '-c', script], { encoding: 'utf8' });
const asUser = (job: string, script: string) => spawnSync('/usr/sbin/chroot', [`--userspec=${user.uid}:${user.gid}`, rootfs(job), '/bin/sh', '-c', script], { encoding: 'utf8' });
const prolog = (job: string, image: string, extra: string[] = []) =>
  site.run(['prolog', '--job', job, '--uid', String(user.uid), '--gid', String(user.gid), '--image', image, '--job-workdir', out, ...extra]);
const epilog = (job: string, env: NodeJS.ProcessEnv = {}) => site.run(['epilog', '--job', job], { env });
/** `strata resolve` as the user from the job's directory, as the SPANK plugin runs it at submit. */
const resolveAsUser = (ref: string) =>
  runCommand('/usr/bin/setpriv', [`--reuid=${user.uid}`, `--regid=${user.gid}`, '--init-groups', '--', process.execPath, STRATA, 'resolve', ref], { env: { ...site.env, HOME: out }, cwd: out });

function ensureUser(name: string, system: boolean) {
  if (spawnSync('/usr/bin/id', [name]).status === 0) return;
  execFileSync('/usr/sbin/useradd', [...(system ? ['--system'] : []), '--no-create-home', '--shell', '/usr/sbin/nologin', name]);
  created.push(name);
}

/** The squashfs file as its tar entry names (sqfs2tar, as `strata resolve` reads such files). */
const entriesOf = (file: string) => execFileSync('/bin/sh', ['-c', `/usr/bin/sqfs2tar --no-skip '${file}' | /usr/bin/tar -t`], { encoding: 'utf8' }).split('\n').filter(Boolean);

beforeAll(async () => {
  before = nodeState();
  ensureUser(OWNER, true);
  ensureUser(USER, false);
  user = ids(USER);
  // lz4hc layers: a saved file is still one unsquashfs reads (squashfs.ts portableCompression).
  site = makeSite('save', 'import:\n  user_imports: true\n  on_demand: true\n  compression: lz4hc\n');
  await importThreeLayerImage(site);
  // The store belongs to its own account (as on a site), so that a user's image goes through sudo.
  if (!existsSync(site.logFile)) writeFileSync(site.logFile, '');
  execFileSync('/usr/bin/chown', ['-R', `${OWNER}:`, site.store, site.logFile]);
  writeFileSync(SUDOERS, `Defaults env_keep += "STRATA_CONFIG"\nALL ALL=(${OWNER}) NOPASSWD: ${STRATA} _store-write\n`, { mode: 0o440 });
  expect(spawnSync('/usr/sbin/visudo', ['-c', '-f', SUDOERS]).status).toBe(0);
  out = join(site.root, 'out');
  mkdirSync(out);
  chownSync(out, user.uid, user.gid);
}, 120_000);

afterEach(async () => {
  for (const job of existsSync(join(site.runtime, 'jobs')) ? readdirSync(join(site.runtime, 'jobs')) : []) await epilog(job);
  expectNodeStateUnchanged(before);
});

afterAll(() => {
  rmSync(SUDOERS, { force: true });
  site.remove();
  for (const name of created) spawnSync('/usr/sbin/userdel', [name]);
});

/** Changes of every kind a job makes: deletions, a replaced directory, new and changed files. */
function changeThings(job: string) {
  // As root in the chroot: deletions in the image's root-owned directories.
  expect(asRoot(job, '/bin/busybox --install -s /bin && rm /data/keep.txt && rm -r /opq && mkdir /opq && echo z > /opq/z && echo changed > /etc/top-marker').status).toBe(0);
  const long = 'd'.repeat(90);
  const made = asUser(job, [
    'mkdir -p /app/bin /app/lib',
    'echo tool > /app/bin/tool && chmod 0750 /app/bin/tool',
    'ln -s ../lib/libx.so /app/bin/link && echo lib > /app/lib/libx.so && ln /app/lib/libx.so /app/lib/hard',
    `mkdir -p /app/${long} && echo deep > /app/${long}/${long}-file`,
    'echo spaced > "/app/a name with spaces" && mkfifo /app/fifo',
  ].join(' && '));
  expect(made.stderr).toBe('');
  expect(made.status).toBe(0);
}

test('a saved layer, imported on the job\'s image, gives the same tree: whiteouts, opaque dirs, links, modes', async () => {
  expect((await prolog('s1', 'three:1', ['--save', './saved.sqsh'])).code).toBe(0);
  changeThings('s1');
  const reference = join(site.root, 'reference');
  execFileSync('/usr/bin/cp', ['-a', '--one-file-system', `${rootfs('s1')}/.`, reference]);

  const ended = await epilog('s1');
  expect(ended.code).toBe(0);
  const saved = join(out, 'saved.sqsh');
  // The user's file, made by the user; no temporary file left beside it.
  expect(statSync(saved).uid).toBe(user.uid);
  expect(readdirSync(out)).toEqual(['saved.sqsh']);
  const names = entriesOf(saved);
  expect(names).toEqual(expect.arrayContaining(['data/.wh.keep.txt', 'opq/.wh..wh..opq', 'opq/z', 'app/bin/tool']));
  // Only what the job changed: nothing of the image's own files.
  expect(names).not.toContain('bin/busybox');
  // enroot (Pyxis) unpacks a saved file with squashfs-tools' unsquashfs, which refuses tar2sqfs's lz4 tables.
  expect(execFileSync('/usr/bin/unsquashfs', ['-l', '-d', 'R', saved], { encoding: 'utf8' })).toContain('R/app/bin/tool');
  expect(readFileSync(site.logFile, 'utf8')).toMatch(/"job":"s1".*"whiteouts":1,"opaqueDirs":1.*writable layer saved/);

  const layerTar = join(site.root, 'saved.tar');
  execFileSync('/bin/sh', ['-c', `/usr/bin/sqfs2tar --no-skip '${saved}' > '${layerTar}'`]);
  const imported = await site.run(['import', `tar:${layerTar}`, '--base', 'three:1', '--tag', 'saved:1']);
  expect(imported.stderr).toMatch(/imported saved:1/);
  expect((await prolog('s2', 'saved:1')).code).toBe(0);
  expect(compareTrees(reference, rootfs('s2'), { skip: [...PER_JOB_PATHS, 'home', out.slice(1).split('/')[0]] })).toBeUndefined();
  expect(asUser('s2', 'cat /app/bin/link; ls /opq; ls /data').stdout).toBe('lib\nz\n');

  // The file itself as an image: its mark names the job's image, so it is that image plus the layer.
  const base = (await site.run(['resolve', 'three:1'])).stdout.trim();
  const resolved = await resolveAsUser('./saved.sqsh');
  expect(resolved.stderr).toMatch(new RegExp(`^strata: importing ./saved.sqsh \\(the changes a job saved, on ${base}\\) into ~${USER}/sqsh/`));
  expect(resolved.code).toBe(0);
  const digest = resolved.stdout.trim();
  const manifest = JSON.parse(readFileSync(join(site.store, 'blobs', ...digest.split(':')), 'utf8'));
  expect(manifest.layers).toHaveLength(4);
  expect((await prolog('s2f', './saved.sqsh', ['--image-digest', digest])).code).toBe(0);
  expect(compareTrees(reference, rootfs('s2f'), { skip: [...PER_JOB_PATHS, 'home', out.slice(1).split('/')[0]] })).toBeUndefined();
  expect(asUser('s2f', 'cat /etc/top-marker /app/bin/tool; ls /opq; ls /data; test -x /bin/busybox && echo base').stdout).toBe('changed\ntool\nz\nbase\n');
  // Submitted again, the same file is already there.
  expect(await resolveAsUser(join(out, 'saved.sqsh'))).toMatchObject({ code: 0, stdout: `${digest}\n`, stderr: '' });
}, 120_000);

test('~/NAME:TAG publishes the job\'s image plus its layer in the user\'s namespace, reusing every base layer', async () => {
  expect((await prolog('s3', 'three:1', ['--save', '~/mine:1'])).code).toBe(0);
  expect(asUser('s3', 'echo installed > /app-marker').status).toBe(0);
  expect((await epilog('s3')).code).toBe(0);
  const tag = join(site.store, 'tags', `~${USER}`, 'mine', '@1');
  expect(existsSync(tag)).toBe(true);
  const images = await site.run(['images']);
  expect(images.stdout).toMatch(new RegExp(`~${USER}/mine:1 +[0-9a-f]{12} +4 `));
  // The base's three layers plus one.
  const digest = readFileSync(tag, 'utf8').trim();
  const manifest = JSON.parse(readFileSync(join(site.store, 'blobs', ...digest.split(':')), 'utf8'));
  expect(manifest.layers).toHaveLength(4);
  expect((await prolog('s4', `~${USER}/mine:1`)).code).toBe(0);
  expect(asUser('s4', 'cat /app-marker /etc/top-marker').stdout).toBe('installed\ntop\n');
}, 120_000);

test('with the default layer format (uncompressed erofs) a saved file is still a zstd squashfs unsquashfs reads, and ~/NAME:TAG stores its layer as erofs', async () => {
  // The same site, as if it had turned to the default since the image was imported (its layers stay lz4hc squashfs).
  const config = join(site.root, 'strata-erofs.yaml');
  writeFileSync(config, readFileSync(site.configPath, 'utf8').replace('compression: lz4hc', 'compression: none'));
  const env = { STRATA_CONFIG: config };
  const start = (job: string, save: string) => site.run(['prolog', '--job', job, '--uid', String(user.uid), '--gid', String(user.gid), '--image', 'three:1', '--job-workdir', out, '--save', save], { env });
  expect((await start('e1', `${out}/erofs-site.sqsh`)).code).toBe(0);
  expect(asUser('e1', 'mkdir -p /app/bin && echo tool > /app/bin/tool').status).toBe(0);
  expect((await epilog('e1', env)).code).toBe(0);
  const saved = join(out, 'erofs-site.sqsh');
  expect(execFileSync('/usr/bin/unsquashfs', ['-s', saved], { encoding: 'utf8' })).toMatch(/^Compression zstd$/m);
  expect(execFileSync('/usr/bin/unsquashfs', ['-l', '-d', 'R', saved], { encoding: 'utf8' })).toContain('R/app/bin/tool');

  expect((await start('e2', '~/erofs-site:1')).code).toBe(0);
  expect(asUser('e2', 'echo installed > /app-marker').status).toBe(0);
  expect((await epilog('e2', env)).code).toBe(0);
  const inspect = JSON.parse((await site.run(['inspect', `~${USER}/erofs-site:1`], { env })).stdout);
  expect(inspect.layers.map((layer: { format: string }) => layer.format)).toEqual(['squashfs', 'squashfs', 'squashfs', 'erofs']);
  // A job of it stacks the squashfs layers and the erofs one.
  expect((await site.run(['prolog', '--job', 'e3', '--uid', String(user.uid), '--gid', String(user.gid), '--image', `~${USER}/erofs-site:1`], { env })).code).toBe(0);
  expect(asUser('e3', 'cat /app-marker /etc/top-marker').stdout).toBe('installed\ntop\n');
  expect((await epilog('e3', env)).code).toBe(0);
}, 120_000);

test('a layer the user cannot read fails the save with a line in the job\'s output, never the epilog', async () => {
  expect((await prolog('s5', 'three:1', ['--save', `${out}/never.sqsh`])).code).toBe(0);
  // A root-only file in the job's layer (the user could not have read it either).
  expect(asRoot('s5', 'echo secret > /root-only && /bin/busybox chmod 0600 /root-only').status).toBe(0);
  const output = join(out, 'slurm-s5.out');
  writeFileSync(output, 'job output\n');
  chownSync(output, user.uid, user.gid);
  const ended = await epilog('s5', { SLURM_JOB_STDOUT: output });
  expect(ended.code).toBe(0);
  expect(existsSync(jobDir('s5'))).toBe(false);
  expect(readFileSync(output, 'utf8')).toMatch(/^job output\nstrata: cannot save the container's writable layer: root-only: open: Permission denied/);
  expect(readdirSync(out).filter((name) => name.includes('never'))).toEqual([]);
  expect(readFileSync(site.logFile, 'utf8')).toMatch(/"job":"s5","code":"E_SAVE_FAILED".*--container-save failed/);
}, 60_000);

test('the file is written as the user: a directory the user cannot write fails the save, root writes nothing there', async () => {
  const rootOnly = join(site.root, 'root-only');
  mkdirSync(rootOnly, { mode: 0o755 });
  expect((await prolog('s6', 'three:1', ['--save', `${rootOnly}/x.sqsh`])).code).toBe(0);
  expect(asUser('s6', 'echo x > /x').status).toBe(0);
  expect((await epilog('s6')).code).toBe(0);
  expect(readdirSync(rootOnly)).toEqual([]);
  expect(readFileSync(site.logFile, 'utf8')).toMatch(/"job":"s6","code":"E_SAVE_FAILED".*"error":"cannot save the container to [^"]*root-only\/x.sqsh: [^"]*Permission denied.*--container-save failed/);
}, 60_000);

test('a save over the site\'s time limit is stopped: nothing written, a line in the job\'s output, the epilog ends well within Slurm\'s timeout', async () => {
  // A limit no save can meet: the save is stopped as soon as it started.
  const config = join(site.root, 'strata-save-limit.yaml');
  writeFileSync(config, `${readFileSync(site.configPath, 'utf8')}container:\n  save_time_limit: 0s\n`);
  expect((await prolog('s8', 'three:1', ['--save', `${out}/late.sqsh`])).code).toBe(0);
  expect(asUser('s8', 'dd if=/dev/zero of=/big bs=1M count=64 2>/dev/null').status).toBe(0);
  const output = join(out, 'slurm-s8.out');
  writeFileSync(output, '');
  chownSync(output, user.uid, user.gid);
  const started = Date.now();
  const ended = await epilog('s8', { SLURM_JOB_STDOUT: output, STRATA_CONFIG: config });
  expect(ended.code).toBe(0);
  expect(Date.now() - started).toBeLessThan(30_000);
  expect(existsSync(jobDir('s8'))).toBe(false);
  expect(readFileSync(output, 'utf8')).toBe(
    `strata: cannot save the container to ${out}/late.sqsh: it took longer than the site's limit of 0 s, and was stopped (nothing was saved); ` +
      'save less (remove what you do not need before the job ends, or write large results outside the container), or ask your admins about container.save_time_limit\n',
  );
  // Neither the file nor tar2sqfs's temporary file is left.
  expect(readdirSync(out).filter((name) => name.includes('late'))).toEqual([]);
  expect(spawnSync('/usr/bin/pgrep', ['-u', String(user.uid), '-f', 'tar2sqfs|strata-upper-walk']).status).toBe(1);
}, 60_000);

test('a bad --container-save fails the job at set-up with one line', async () => {
  expect((await prolog('s7', 'three:1', ['--save', 'a\tb'])).code).toBe(0);
  expect(readFileSync(join(jobDir('s7'), 'error'), 'utf8')).toMatch(/invalid --container-save/);
});
