import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pluginsAfterStrata } from '../../src/doctor/gather.js';
import { OLD_PLUGSTACK_SNIPPET, PLUGSTACK_SNIPPET } from '../../src/scheduler/slurm-conf.js';
// The verdicts of `strata doctor`, from hand-written facts: each broken fact gives a failing or
// warning line that names the problem and its fix, and only failures make the node unfit.
import { runChecks, isFit, fsName, type Check } from '../../src/doctor/checks.js';
import type { Facts } from '../../src/doctor/facts.js';
import { defaultConfig } from '../../src/config/validate.js';
import { renderChecks } from '../../src/cli/commands/doctor.js';

const TMPFS = 0x01021994;
const EXT4 = 0xef53;
const LUSTRE = 0x0bd00bd0;

/** A healthy Slurm compute node. */
function healthy(): Facts {
  const defaults = defaultConfig('/etc/strata/strata.yaml');
  const effective = { ...defaults, store: { ...defaults.store, path: '/lustre/strata' } };
  return {
    nodeVersion: '20.18.0',
    root: true,
    config: { origin: '/etc/strata/strata.yaml', errors: [], effective },
    kernel: {
      release: '6.1.0',
      filesystems: ['ext4', 'tmpfs', 'squashfs', 'overlay'],
      modules: ['loop', 'squashfs', 'erofs', 'overlay'],
      loopControl: true,
      maxLoop: 0,
      loopNodes: 8,
      loopsBound: 2,
      overlay: { overlay: true, volatile: true },
      userns: { maxUserNamespaces: 15000 },
    },
    store: {
      path: '/lustre/strata', exists: true, isDirectory: true, uid: 0, gid: 0, mode: 0o755,
      layers: { path: '/lustre/strata/layers', exists: true, isDirectory: true, mode: 0o755 },
      fs: { path: '/lustre/strata', type: LUSTRE },
    },
    runtime: { path: '/run/strata', configured: '/run/strata', type: TMPFS },
    upper: { memAvailableBytes: 64 * 2 ** 30 },
    slurm: {
      confPath: '/etc/slurm/slurm.conf',
      readable: true,
      settings: { prolog: '/usr/local/lib/strata/prolog/slurm.js', epilog: '/usr/local/lib/strata/epilog/slurm.js', prologflags: 'Alloc' },
      prolog: { path: '/usr/local/lib/strata/prolog/slurm.js', exists: true, executable: true, mentionsStrata: true },
      epilog: { path: '/usr/local/lib/strata/epilog/slurm.js', exists: true, executable: true, mentionsStrata: true },
      plugstackPath: '/etc/slurm/plugstack.conf',
      plugstackReadable: true,
      plugin: { file: '/etc/slurm/plugstack.conf.d/zz-strata.conf', line: 2, required: true, plugin: '/usr/local/lib/strata/strata.so', args: { runtime_dir: '/run/strata' } },
      pluginFile: { path: '/usr/local/lib/strata/strata.so', exists: true },
      pluginElf: { bits: 64, type: 3, machine: 62, exports: ['slurm_spank_init', 'slurm_spank_task_init'], pluginVersion: 0x180b05 },
      version: '24.11.2',
    },
  };
}

const check = (facts: Facts, name: string): Check => {
  const found = runChecks(facts).find((c) => c.name === name);
  if (!found) throw new Error(`no check ${name}`);
  return found;
};

test('a healthy node passes every check and is fit', () => {
  const checks = runChecks(healthy());
  expect(checks.filter((c) => c.status !== 'ok')).toEqual([]);
  expect(isFit(checks)).toBe(true);
  expect(renderChecks(checks)).toMatch(/this node is fit for jobs\n$/);
});

type Case = [string, (f: Facts) => void, string, 'fail' | 'warn', RegExp, string[]?];
const cases: Case[] = [
  ['old Node', (f) => (f.nodeVersion = '18.19.0'), 'node', 'fail', /older than 20/],
  ['invalid config', (f) => (f.config.errors = ['upper.max_size: "lots" is not a size; use a number of bytes or a size like 512M, 4G']), 'config', 'fail', /upper\.max_size/],
  ['no loop driver', (f) => { f.kernel.loopControl = false; f.kernel.modules = []; f.kernel.loopNodes = 0; f.kernel.loopsBound = 0; }, 'kernel.loop', 'fail', /modprobe loop/, ['kernel.erofs', 'loop.devices']],
  ['no squashfs', (f) => { f.kernel.filesystems = ['ext4']; f.kernel.modules = ['loop', 'erofs']; }, 'kernel.squashfs', 'fail', /CONFIG_SQUASHFS/],
  // erofs is the default layer format (import.compression: none): without it most of the site's images cannot start here.
  ['no erofs', (f) => { f.kernel.modules = ['loop', 'squashfs', 'overlay']; }, 'kernel.erofs', 'fail', /this site's import\.compression \(none.*cannot start.*CONFIG_EROFS_FS.*import\.compression: zstd/],
  // A site importing squashfs needs erofs only for images imported with --compression none: the node stays fit.
  ['no erofs, site imports zstd squashfs', (f) => { f.kernel.modules = ['loop', 'squashfs', 'overlay']; f.config.effective.import.compression = 'zstd'; }, 'kernel.erofs', 'warn', /--compression none cannot start.*CONFIG_EROFS_FS/],
  ['overlay without volatile', (f) => (f.kernel.overlay = { overlay: true, volatile: false, error: 'wrong fs type' }), 'kernel.overlay', 'fail', /5\.10/],
  ['overlay refused', (f) => (f.kernel.overlay = { overlay: false, volatile: false, error: 'permission denied' }), 'kernel.overlay', 'fail', /permission denied/],
  ['overlay not probed as non-root', (f) => (f.kernel.overlay = { skipped: 'not root' }), 'kernel.overlay', 'warn', /as root/],
  ['user namespaces off', (f) => (f.kernel.userns = { maxUserNamespaces: 0 }), 'kernel.userns', 'warn', /max_user_namespaces/],
  ['all loops used (max_loop)', (f) => { f.kernel.maxLoop = 8; f.kernel.loopsBound = 8; }, 'loop.devices', 'fail', /max_loop/],
  ['few loops left', (f) => { f.kernel.maxLoop = 8; f.kernel.loopsBound = 3; }, 'loop.devices', 'warn', /only 5 of 8/],
  ['no loop-control, none free', (f) => { f.kernel.loopControl = false; f.kernel.loopsBound = 8; }, 'loop.devices', 'fail', /no free loop device/],
  ['store missing', (f) => (f.store = { path: '/lustre/strata', exists: false }), 'store', 'fail', /does not exist.*mount the shared filesystem/],
  ['store hung', (f) => (f.store = { path: '/lustre/strata', exists: true, error: 'no answer within 10s (stat)' }), 'store', 'fail', /no answer/],
  ['world-writable store', (f) => (f.store.mode = 0o1777), 'store', 'fail', /world-writable.*chmod o-w \/lustre\/strata$/],
  ['world-writable layers', (f) => (f.store.layers!.mode = 0o777), 'store', 'fail', /\/lustre\/strata\/layers is world-writable/],
  ['empty store', (f) => (f.store.layers = { path: '/lustre/strata/layers', exists: false }), 'store', 'warn', /strata import/],
  ['runtime on Lustre', (f) => (f.runtime.type = LUSTRE), 'runtime_dir', 'fail', /lustre, a shared filesystem/],
  ['runtime on disk', (f) => (f.runtime.type = EXT4), 'runtime_dir', 'warn', /ext4, not tmpfs/],
  ['little memory for tmpfs uppers', (f) => (f.upper.memAvailableBytes = 2 ** 29), 'upper', 'warn', /more than the 512M/],
  ['disk uppers full', (f) => { f.config.effective.upper.backing = 'disk'; f.upper.fs = { path: '/var/tmp', type: EXT4, freeBytes: 2 ** 20 }; }, 'upper', 'fail', /1M free/],
  ['no Prolog', (f) => { delete f.slurm!.prolog; }, 'slurm.prolog', 'fail', /sets no Prolog.*Prolog=\/usr\/local\/lib\/strata\/prolog\/slurm /],
  ['Epilog missing', (f) => (f.slurm!.epilog!.exists = false), 'slurm.epilog', 'fail', /does not exist.*install-slurm/],
  ['Prolog not executable', (f) => (f.slurm!.prolog!.executable = false), 'slurm.prolog', 'fail', /chmod 755/],
  ['Prolog of someone else', (f) => (f.slurm!.prolog!.mentionsStrata = false), 'slurm.prolog', 'warn', /does not look like strata/],
  ['PrologFlags without Alloc', (f) => (f.slurm!.settings.prologflags = 'Serial'), 'slurm.prologflags', 'fail', /PrologFlags=Alloc/],
  ['PrologFlags=RunInJob before Slurm 25.11.4 (the epilog may run as the job\'s user)', (f) => (f.slurm!.settings.prologflags = 'Contain,RunInJob'), 'slurm.prologflags', 'warn', /RunInJob.*Slurm 24\.11\.2.*runs as the job's user.*drains the node; fix: use PrologFlags=Alloc \(without RunInJob\) until .*25\.11\.4/],
  ['PrologFlags=RunInJob with an unknown Slurm version', (f) => { f.slurm!.settings.prologflags = 'RunInJob'; f.slurm!.version = undefined; }, 'slurm.prologflags', 'warn', /version unknown/],
  ['no plugstack line', (f) => { delete f.slurm!.plugin; }, 'slurm.plugin', 'fail', /no strata\.so line/],
  ['plugin not ELF', (f) => (f.slurm!.pluginElf = { error: 'not an ELF file' }), 'slurm.plugin', 'fail', /not an ELF file.*make -C spank/],
  ['plugin without slurm_spank_init', (f) => (f.slurm!.pluginElf = { bits: 64, type: 3, machine: 62, exports: ['x'] }), 'slurm.plugin', 'fail', /slurm_spank_init/],
  ['plugin built for another Slurm release (22.05.8 on 24.11)', (f) => ((f.slurm!.pluginElf as { pluginVersion?: number }).pluginVersion = 0x160508), 'slurm.plugin', 'fail', /built for Slurm 22\.05, this node runs Slurm 24\.11\.2.*Incompatible plugin version.*libslurm-dev/],
  ['plugin runtime_dir differs', (f) => (f.slurm!.plugin!.args.runtime_dir = '/run/other'), 'slurm.plugin', 'fail', /runtime_dir=\/run\/strata on the plugstack line/],
  ['optional plugin', (f) => (f.slurm!.plugin!.required = false), 'slurm.plugin', 'warn', /run on the host/],
  ['a plugin loads after strata (it would run as root in the image)', (f) => (f.slurm!.pluginsAfter = [{ file: '/etc/slurm/plugstack.conf.d/z.conf', line: 1, required: true, plugin: '/usr/lib/slurm/other.so', args: {} }]), 'slurm.plugin', 'fail', /other\.so.*as root inside container images.*last.*install-slurm writes it as plugstack\.conf\.d\/zz-strata\.conf/],
  ['strata\'s plugin loaded twice (an older strata.conf next to zz-strata.conf)', (f) => (f.slurm!.pluginsAfter = [{ file: '/etc/slurm/plugstack.conf.d/zz-strata.conf', line: 2, required: true, plugin: '/usr/local/lib/strata/strata.so', args: { runtime_dir: '/run/strata' } }]), 'slurm.plugin', 'fail', /loaded twice.*zz-strata\.conf:2.*remove one/],
  ['plugstack.conf unreadable', (f) => (f.slurm!.plugstackReadable = false), 'slurm.plugin', 'fail', /cannot read .*writes zz-strata\.conf there/],
];

test.each(cases)('%s', (_, breakIt, name, status, text, also = []) => {
  const facts = healthy();
  breakIt(facts);
  const result = check(facts, name);
  expect(result.status).toBe(status);
  expect(result.fix).toBeTruthy();
  expect(`${result.message}; fix: ${result.fix}`).toMatch(text);
  const checks = runChecks(facts);
  expect(isFit(checks)).toBe(status !== 'fail');
  // Only the broken part complains.
  expect(checks.filter((c) => c.status !== 'ok').map((c) => c.name)).toEqual([name, ...also]);
});

test('erofs before Linux 6.12 is fine but said to go through loop devices; from 6.12 on it is mounted from the file', () => {
  const facts = healthy();
  facts.kernel.release = '5.14.0-427.el9.x86_64';
  expect(check(facts, 'kernel.erofs')).toMatchObject({ status: 'ok', message: expect.stringMatching(/import\.compression: none.*5\.14\.0-427\.el9\.x86_64 likely mounts it through a loop device/) });
  facts.kernel.release = '6.12.3';
  expect(check(facts, 'kernel.erofs').message).not.toMatch(/loop/);
});

test('PBS: a MoM without the strata hook, or with it disabled, unimported or without execjob_end, fails; partial set-ups warn; no scheduler at all is a warning', () => {
  const facts = healthy();
  delete facts.slurm;
  const hook = { name: 'strata_mom', enabled: true, events: ['execjob_begin', 'execjob_launch', 'execjob_end', 'exechost_startup', 'exechost_periodic'], failAction: 'offline_vnodes', hasScript: true };
  facts.pbs = { home: '/var/spool/pbs', hooks: [], resourceFlags: 'm' };
  const pbs = facts.pbs;
  expect(check(facts, 'pbs.hooks')).toMatchObject({ status: 'fail', message: expect.stringContaining('/var/spool/pbs/mom_priv/hooks') });
  pbs.hooks = [hook];
  expect(check(facts, 'pbs.hooks').status).toBe('ok');
  expect(check(facts, 'pbs.resource').status).toBe('ok');
  pbs.hooks = [{ ...hook, enabled: false }];
  expect(check(facts, 'pbs.hooks')).toMatchObject({ status: 'fail', fix: "qmgr -c 'set hook strata_mom enabled = true'" });
  pbs.hooks = [{ ...hook, hasScript: false }];
  expect(check(facts, 'pbs.hooks')).toMatchObject({ status: 'fail', message: expect.stringContaining('never imported') });
  pbs.hooks = [{ ...hook, events: ['execjob_begin'] }];
  expect(check(facts, 'pbs.hooks')).toMatchObject({ status: 'fail', message: expect.stringContaining('execjob_end') });
  // The events of the first strata release: set-up works, but users would not see set-up errors.
  pbs.hooks = [{ ...hook, events: ['execjob_begin', 'execjob_end', 'exechost_startup', 'exechost_periodic'] }];
  expect(check(facts, 'pbs.hooks')).toMatchObject({ status: 'warn', message: expect.stringContaining('execjob_launch: a job whose container could not be set up would not be told why') });
  pbs.hooks = [{ ...hook, failAction: 'none' }];
  expect(check(facts, 'pbs.hooks')).toMatchObject({ status: 'warn', fix: "qmgr -c 'set hook strata_mom fail_action = offline_vnodes'" });
  pbs.resourceFlags = '';
  expect(check(facts, 'pbs.resource')).toMatchObject({ status: 'warn', fix: "qmgr -c 'set resource container_image flag = m'" });
  delete pbs.resourceFlags;
  expect(check(facts, 'pbs.resource')).toMatchObject({ status: 'warn', fix: "qmgr -c 'create resource container_image type=string, flag=m'" });
  delete facts.pbs;
  expect(check(facts, 'scheduler').status).toBe('warn');
});

test('the human form has one line per check, problems with their fix, and the verdict last', () => {
  const facts = healthy();
  facts.store = { path: '/lustre/strata', exists: false };
  const text = renderChecks(runChecks(facts));
  const lines = text.trimEnd().split('\n');
  expect(lines).toHaveLength(runChecks(facts).length + 1);
  expect(lines).toContain('FAIL  store              /lustre/strata does not exist; fix: mount the shared filesystem on this node, or set store.path in /etc/strata/strata.yaml');
  expect(lines.at(-1)).toBe('strata doctor: this node is NOT fit for jobs: 1 check failed');
});

test('filesystem names from statfs types', () => {
  expect(fsName(TMPFS)).toBe('tmpfs');
  expect(fsName(0x1234)).toBe('0x1234');
});

test('the snippet install-slurm writes loads after the snippets sites and packages name theirs', () => {
  const dir = mkdtempSync(join(tmpdir(), 'strata-plugstack-'));
  try {
    for (const name of ['00-site.conf', 'Site.conf', 'nvidia.conf', 'pyxis.conf', 'x11.conf', 'z.conf', 'zfs.conf']) writeFileSync(join(dir, name), `required /usr/lib/slurm/${name}.so\n`);
    writeFileSync(join(dir, PLUGSTACK_SNIPPET), 'required /usr/local/lib/strata/strata.so runtime_dir=/run/strata\n');
    expect(pluginsAfterStrata('/etc/slurm/plugstack.conf', `include ${dir}/*.conf\n`)).toEqual([]);
    // The name an older install-slurm used does not: doctor failed right after such an install.
    writeFileSync(join(dir, OLD_PLUGSTACK_SNIPPET), readFileSync(join(dir, PLUGSTACK_SNIPPET)));
    rmSync(join(dir, PLUGSTACK_SNIPPET));
    expect(pluginsAfterStrata('/etc/slurm/plugstack.conf', `include ${dir}/*.conf\n`).length).toBeGreaterThan(0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('plugins after strata in plugstack.conf are found in load order, includes followed', () => {
  const dir = mkdtempSync(join(tmpdir(), 'strata-plugstack-'));
  try {
    writeFileSync(join(dir, 'a.conf'), 'required /usr/lib/slurm/a.so\n');
    writeFileSync(join(dir, 'strata.conf'), 'required /usr/local/lib/strata/strata.so runtime_dir=/run/strata\n');
    writeFileSync(join(dir, 'z.conf'), '# later\noptional /usr/lib/slurm/z.so\n');
    const stack = `include ${dir}/*.conf\nrequired /usr/lib/slurm/last.so\n`;
    expect(pluginsAfterStrata('/etc/slurm/plugstack.conf', stack).map((entry) => entry.plugin)).toEqual(['/usr/lib/slurm/z.so', '/usr/lib/slurm/last.so']);
    expect(pluginsAfterStrata('/etc/slurm/plugstack.conf', `required /usr/lib/slurm/first.so\ninclude ${dir}/strata.conf\n`)).toEqual([]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('PrologFlags=RunInJob is fine from Slurm 25.11.4 on', () => {
  for (const version of ['25.11.4', '25.11.10', '26.05.0']) {
    const facts = healthy();
    facts.slurm!.settings.prologflags = 'Alloc,RunInJob';
    facts.slurm!.version = version;
    expect(check(facts, 'slurm.prologflags').status).toBe('ok');
  }
  const facts = healthy();
  facts.slurm!.settings.prologflags = 'RunInJob';
  facts.slurm!.version = '25.11.3';
  expect(check(facts, 'slurm.prologflags').status).toBe('warn');
});
