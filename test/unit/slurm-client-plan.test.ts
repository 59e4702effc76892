import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { defaultConfig } from '../../src/config/validate.js';
import type { Config } from '../../src/config/types.js';
import type { PathOwner, SlurmClientFacts } from '../../src/host/slurm-client.js';
import { LAYER_MEDIA_TYPES } from '../../src/store/layout.js';
import type { ResolvedImage } from '../../src/store/store.js';
import { planJob, wantsPytorchEnv, type Step } from '../../src/runtime/job/plan.js';
import { inMemory, readElfDynamic } from '../../src/runtime/slurm-client/elf-dynamic.js';
import { parsePlugstack } from '../../src/runtime/slurm-client/plugstack.js';
import { SLURM_CLIENT_BIN, planSlurmClient, unsafeReason, withSlurmPath } from '../../src/runtime/slurm-client/plan.js';

const LIB = '/usr/lib/x86_64-linux-gnu';
const PLUGINS = `${LIB}/slurm-wlm`;
const LOADER = `${LIB}/ld-linux-x86-64.so.2`;
const same = (path: string) => ({ path, real: path });
const DIR = 0o040755;
const FILE = 0o100644;

/** Root-owned, unwritable by others: every directory on the way to each path, and the path. */
function rootOwned(paths: string[], overrides: Record<string, PathOwner> = {}): Record<string, PathOwner> {
  const owners: Record<string, PathOwner> = {};
  for (const path of paths) {
    let at = path;
    owners[at] = { uid: 0, mode: /\.(so|conf|2)$|\/s[a-z]+$/.test(at) ? FILE : DIR };
    while (at !== '/') {
      at = at.slice(0, at.lastIndexOf('/')) || '/';
      owners[at] ??= { uid: 0, mode: DIR };
    }
  }
  return { ...owners, ...overrides };
}

/** A Debian node: Slurm 22.05 packages, munge in /run/munge, strata's plugin in /usr/local/lib. */
function debian(overrides: Record<string, PathOwner> = {}, change: Partial<SlurmClientFacts> = {}): SlurmClientFacts {
  const facts: SlurmClientFacts = {
    conf: same('/etc/slurm/slurm.conf'),
    confDir: same('/etc/slurm'),
    pluginDirs: [same(PLUGINS)],
    plugstack: [same('/etc/slurm/plugstack.conf'), same('/etc/slurm/plugstack.conf.d/strata.conf')],
    spankPlugins: [same('/usr/local/lib/strata/strata.so')],
    mungeSocket: same('/run/munge/munge.socket.2'),
    commands: ['srun', 'scontrol'].map((name) => ({ name, path: `/usr/bin/${name}`, loader: LOADER, runpath: [PLUGINS] })),
    libraryDirs: [],
    pluginLibraryDirs: [],
    owners: {},
    ...change,
  };
  facts.owners = rootOwned([facts.conf.real, facts.confDir.real, ...facts.pluginDirs.map((d) => d.real), ...facts.plugstack.map((f) => f.real), ...facts.spankPlugins.map((f) => f.real), facts.mungeSocket?.real ?? '/', ...facts.pluginLibraryDirs.map((d) => d.real), LOADER, '/usr/bin/srun', '/usr/bin/scontrol'], overrides);
  return facts;
}

const config = (slurmClient: Partial<Config['slurmClient']> = {}): Config => {
  const base = defaultConfig();
  return { ...base, slurmClient: { ...base.slurmClient, ...slurmClient } };
};
/** The wrappers' shared directory: in the runtime dir, named by their content. */
const WRAPPERS = expect.stringMatching(/^\/run\/strata\/slurm-client\/[0-9a-f]{16}$/);

describe('planSlurmClient', () => {
  test('a Debian node: wrappers that run the node commands through the node loader; the node directories bound read-only', () => {
    const plan = planSlurmClient(debian(), config(), 1000);
    expect(plan.notes).toEqual([]);
    const host = (path: string) => `/.strata/slurm/host${path}`;
    expect(plan.binds.map((bind) => [bind.source, bind.target])).toEqual([
      [WRAPPERS, SLURM_CLIENT_BIN],
      [PLUGINS, host(PLUGINS)],
      [LIB, host(LIB)],
      ['/usr/bin', host('/usr/bin')],
      ['/etc/slurm', '/etc/slurm'],
      [PLUGINS, PLUGINS],
      ['/usr/local/lib/strata/strata.so', '/usr/local/lib/strata/strata.so'],
      ['/run/munge', '/run/munge'],
    ]);
    // Everything is the node's own and read-only; a user's mount on the same target replaces it.
    expect(plan.binds.every((bind) => bind.readonly && bind.trusted && bind.automatic && !bind.recursive)).toBe(true);
    expect(plan.steps).toEqual([{ op: 'slurm-client', dir: WRAPPERS, wrappers: [expect.objectContaining({ name: 'srun' }), expect.objectContaining({ name: 'scontrol' })] }]);
    expect(plan.steps[0].wrappers[0].text).toBe(
      [
        '#!/bin/sh',
        "# The node's srun (strata): its own loader and libraries, whatever the image's glibc is.",
        `exec '${host(LOADER)}' --inhibit-cache --library-path '${host(PLUGINS)}:${host(LIB)}' '${host('/usr/bin/srun')}' "$@"`,
        '',
      ].join('\n'),
    );
  });

  test('jobs whose wrappers are the same share their directory; other wrappers get another', () => {
    const dirOf = (plan: ReturnType<typeof planSlurmClient>) => plan.steps[0].dir;
    expect(dirOf(planSlurmClient(debian(), config(), 1000))).toBe(dirOf(planSlurmClient(debian(), config(), 1001)));
    const other = debian({}, { libraryDirs: ['/opt/munge/lib'] });
    other.owners = { ...other.owners, ...rootOwned(['/opt/munge/lib']) };
    expect(dirOf(planSlurmClient(other, config(), 1000))).not.toBe(dirOf(planSlurmClient(debian(), config(), 1000)));
    const refused = debian({ '/usr/local/lib/strata': { uid: 1000, mode: DIR } });
    expect(dirOf(planSlurmClient(refused, config(), 1000))).not.toBe(dirOf(planSlurmClient(debian(), config(), 1000)));
  });

  test("mpi/pmix's libpmix: bound at the plugin's compiled-in path only where the image has none (its own PMIx stays), read-only", () => {
    const pmix = `${LIB}/pmix2/lib`;
    const plan = planSlurmClient(debian({}, { pluginLibraryDirs: [same(pmix)] }), config(), 1000);
    expect(plan.notes).toEqual([]);
    expect(plan.binds.filter((bind) => bind.target === pmix)).toEqual([
      { source: pmix, target: pmix, readonly: true, optional: true, recursive: false, trusted: true, automatic: true, ifAbsent: true },
    ]);
    // A directory a user could change is not opened as root: the client is refused as a whole.
    const unsafe = planSlurmClient(debian({ [pmix]: { uid: 1000, mode: DIR } }, { pluginLibraryDirs: [same(pmix)] }), config(), 1000);
    expect(unsafe.notes).toEqual([`Slurm client not available in containers: ${pmix} is owned by uid 1000, so it cannot be bound safely`]);
  });

  test('slurm.conf directly in /etc: the file is bound, never the whole of /etc; a munge socket directly in /run alone', () => {
    const facts = debian({}, { conf: same('/etc/slurm.conf'), confDir: same('/etc'), plugstack: [same('/etc/plugstack.conf')], mungeSocket: same('/run/munge.socket.2') });
    const targets = planSlurmClient(facts, config(), 1000).binds.map((bind) => bind.target);
    expect(targets).toEqual(expect.arrayContaining(['/etc/slurm.conf', '/etc/plugstack.conf', '/run/munge.socket.2']));
    expect(targets).not.toContain('/etc');
    expect(targets).not.toContain('/run');
  });

  test('configless: the directory slurmd caches the configuration in is bound at the path the job sees', () => {
    const facts = debian({}, { conf: { path: '/run/slurm/conf/slurm.conf', real: '/var/spool/slurmd/conf-cache/slurm.conf' }, confDir: { path: '/run/slurm/conf', real: '/var/spool/slurmd/conf-cache' } });
    const binds = planSlurmClient(facts, config(), 1000).binds;
    expect(binds).toContainEqual(expect.objectContaining({ source: '/var/spool/slurmd/conf-cache', target: '/run/slurm/conf' }));
  });

  test('a source its job user (or any ordinary user) could change is not bound: every command says why instead', () => {
    const facts = debian({ '/usr/local/lib/strata': { uid: 1000, mode: DIR } });
    const plan = planSlurmClient(facts, config(), 1000);
    expect(plan.binds.map((bind) => bind.target)).toEqual([SLURM_CLIENT_BIN]);
    expect(plan.notes).toEqual(['Slurm client not available in containers: /usr/local/lib/strata is owned by uid 1000, so it cannot be bound safely']);
    const srun = plan.steps[0].wrappers.find((wrapper) => wrapper.name === 'srun')!;
    const ran = spawnSync('/bin/sh', ['-s'], { input: srun.text, encoding: 'utf8' });
    expect({ status: ran.status, stderr: ran.stderr }).toEqual({
      status: 127,
      stderr: "strata: srun: the node's Slurm client is not available in this container (/usr/local/lib/strata is owned by uid 1000, so it cannot be bound safely); tell your admins, or submit with --container-batch=host\n",
    });
  });

  test('no slurm.conf on the node: the wrappers say so', () => {
    const plan = planSlurmClient({ missing: 'cannot read /etc/slurm/slurm.conf: ENOENT' }, config(), 1000);
    expect(plan.steps[0].wrappers.map((wrapper) => wrapper.name)).toContain('sbatch');
    expect(plan.notes).toEqual(['Slurm client not available in containers: cannot read /etc/slurm/slurm.conf: ENOENT']);
  });

  test('extra library directories from the config come first in the library path', () => {
    const facts = debian({}, { libraryDirs: ['/opt/munge/lib'] });
    facts.owners = { ...facts.owners, ...rootOwned(['/opt/munge/lib']) };
    const plan = planSlurmClient(facts, config(), 1000);
    expect(plan.steps[0].wrappers[0].text).toContain("--library-path '/.strata/slurm/host/opt/munge/lib:");
  });
});

describe('unsafeReason', () => {
  const owners = rootOwned(['/tmp/cluster/etc'], { '/tmp': { uid: 0, mode: 0o041777 } });
  test('root-owned all the way, and a sticky world-writable directory on the way, are safe', () => {
    expect(unsafeReason('/tmp/cluster/etc', owners, 1000)).toBeUndefined();
  });
  test('a group- or world-writable directory that is not sticky is not', () => {
    expect(unsafeReason('/tmp/cluster/etc', { ...owners, '/tmp/cluster': { uid: 0, mode: 0o040777 } }, 1000)).toBe('/tmp/cluster is writable by others');
  });
  test('a directory of the job user, or of any ordinary user, is not; a system account (munge) is', () => {
    expect(unsafeReason('/tmp/cluster/etc', { ...owners, '/tmp/cluster/etc': { uid: 1000, mode: DIR } }, 1000)).toBe('/tmp/cluster/etc is owned by uid 1000');
    expect(unsafeReason('/tmp/cluster/etc', { ...owners, '/tmp/cluster/etc': { uid: 2000, mode: DIR } }, 1000)).toBe('/tmp/cluster/etc is owned by uid 2000');
    expect(unsafeReason('/tmp/cluster/etc', { ...owners, '/tmp/cluster/etc': { uid: 105, mode: DIR } }, 1000)).toBeUndefined();
    expect(unsafeReason('/tmp/cluster/etc', { ...owners, '/tmp/cluster/etc': { uid: 105, mode: DIR } }, 105)).toBe('/tmp/cluster/etc is owned by uid 105');
    expect(unsafeReason('/tmp/cluster/etc', owners, 0)).toBeUndefined();
  });
  test('a path that could not be examined is not', () => {
    expect(unsafeReason('/nowhere/x', {}, 1000)).toBe('/nowhere/x could not be examined');
  });
});

describe('withSlurmPath', () => {
  test('first (default) or last in the image PATH; the default PATH when the image has none', () => {
    expect(withSlurmPath(['A=1', 'PATH=/opt/bin:/usr/bin'], 'first')).toEqual(['A=1', `PATH=${SLURM_CLIENT_BIN}:/opt/bin:/usr/bin`]);
    expect(withSlurmPath(['PATH=/opt/bin'], 'last')).toEqual([`PATH=/opt/bin:${SLURM_CLIENT_BIN}`]);
    expect(withSlurmPath(['A=1'], 'first')).toEqual(['A=1', `PATH=${SLURM_CLIENT_BIN}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`]);
  });
});

describe('planJob with the Slurm client', () => {
  const image: ResolvedImage = {
    ref: 'plain:1',
    manifestDigest: `sha256:${'b'.repeat(64)}`,
    manifest: { schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${'c'.repeat(64)}`, size: 1 }, layers: [{ mediaType: LAYER_MEDIA_TYPES.squashfs, digest: `sha256:${'a'.repeat(64)}`, size: 1 }] },
    config: { architecture: 'amd64', os: 'linux', config: { Env: ['PATH=/usr/bin:/bin'] }, rootfs: { type: 'layers', diff_ids: [] } },
    layers: [{ digest: `sha256:${'a'.repeat(64)}`, size: 1, format: 'squashfs', path: `/store/layers/sha256/${'a'.repeat(64)}.sqfs` }],
  };
  const job = { jobId: '42', uid: 1000, gid: 1000, writable: false, mounts: [], slurmClient: debian() };
  const entryOf = (steps: Step[]) => steps.find((step): step is Extract<Step, { op: 'entry' }> => step.op === 'entry')!.entry;

  test('the wrappers are written before any bind, bound like the other binds, and first in PATH', () => {
    const plan = planJob(job, config(), image);
    const ops = plan.steps.map((step) => step.op);
    expect(ops.indexOf('slurm-client')).toBeLessThan(ops.indexOf('bind'));
    expect(ops.indexOf('readonly')).toBeGreaterThan(ops.lastIndexOf('bind'));
    const targets = plan.steps.flatMap((step) => (step.op === 'bind' ? [step.target] : []));
    expect(targets).toEqual(expect.arrayContaining([SLURM_CLIENT_BIN, '/etc/slurm', PLUGINS, '/run/munge']));
    expect(entryOf(plan.steps).env).toEqual([`PATH=${SLURM_CLIENT_BIN}:/usr/bin:/bin`]);
    expect(entryOf(plan.steps).pytorchEnv).toBeUndefined();
    const base = config();
    expect(entryOf(planJob(job, { ...base, container: { ...base.container, pytorchEnv: 'all' } }, image).steps).pytorchEnv).toBe(true);
  });

  test('switched off by the site, or not a Slurm job: nothing of it', () => {
    for (const plan of [planJob(job, config({ enabled: false }), image), planJob({ ...job, slurmClient: undefined }, config(), image)]) {
      expect(plan.steps.some((step) => step.op === 'slurm-client' || (step.op === 'bind' && step.target.startsWith('/.strata')))).toBe(false);
      expect(entryOf(plan.steps).env).toEqual(['PATH=/usr/bin:/bin']);
    }
  });

  test('a user mount on a target of the client (the munge directory) replaces it', () => {
    const plan = planJob({ ...job, mounts: [{ source: '/home/u/munge', target: '/run/munge', readonly: true, optional: false, recursive: false }] }, config(), image);
    const munge = plan.steps.filter((step) => step.op === 'bind' && step.target === '/run/munge');
    expect(munge).toEqual([expect.objectContaining({ source: '/home/u/munge' })]);
  });
});

describe('container.pytorch_env', () => {
  test('off: never; pytorch: images whose environment sets PYTORCH_VERSION (as enroot); all: every image', () => {
    const torch = ['PATH=/usr/bin', 'PYTORCH_VERSION=2.3.0'];
    const plain = ['PATH=/usr/bin', 'PYTORCH_VERSION_X=1'];
    expect([wantsPytorchEnv('off', torch), wantsPytorchEnv('pytorch', torch), wantsPytorchEnv('pytorch', plain), wantsPytorchEnv('all', plain)]).toEqual([false, true, false, true]);
  });
});

describe('reading the node files', () => {
  test('plugstack.conf: plugins and includes, comments and blank lines skipped', () => {
    expect(parsePlugstack('# x\nrequired /usr/lib/strata.so a=b\n\noptional  rel.so\ninclude /etc/slurm/plugstack.conf.d/*.conf # more\nbogus\n')).toEqual({
      plugins: ['/usr/lib/strata.so', 'rel.so'],
      includes: ['/etc/slurm/plugstack.conf.d/*.conf'],
    });
  });

  test('ELF: the loader a dynamic executable names (this Node binary), or why a file is not one', () => {
    const node = readElfDynamic(inMemory(readFileSync(process.execPath)), process.execPath);
    expect(node).toEqual({ interpreter: expect.stringMatching(/^\/.*ld-linux.*\.so\.\d$/), runpath: expect.any(Array) });
    expect(readElfDynamic(inMemory(Buffer.from('#!/bin/sh\n'.padEnd(80))), '/x')).toEqual({ error: 'not an ELF file' });
    // Cut anywhere, a file gives a reason, never an exception.
    const bytes = readFileSync(process.execPath);
    for (const size of [64, 200, 4096, 65536]) expect(readElfDynamic(inMemory(bytes.subarray(0, size)), '/x')).toEqual({ error: expect.stringMatching(/damaged ELF file/) });
  });
});
