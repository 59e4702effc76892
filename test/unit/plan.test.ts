import { defaultConfig } from '../../src/config/validate.js';
import type { Config } from '../../src/config/types.js';
import { StrataError } from '../../src/errors.js';
import { DEFAULT_PATH_ENV, type ImageConfig } from '../../src/store/image.js';
import { LAYER_MEDIA_TYPES } from '../../src/store/layout.js';
import type { ResolvedImage, StoredLayer } from '../../src/store/store.js';
import type { BindRequest } from '../../src/runtime/job/request.js';
import { MIN_UPPER_SIZE, MOUNT_OPTIONS_MAX, planJob, type JobRequest, type Plan, type Step } from '../../src/runtime/job/plan.js';

// ---------------------------------------------------------------------------------------------
// Fixtures

/** A distinct sha256 digest per index; the first 12 hex digits (the layer id) differ too. */
const digestOf = (index: number, fill = 'a') => `sha256:${index.toString(16).padStart(12, '0')}${fill.repeat(52)}`;

function layersOf(count: number): StoredLayer[] {
  return Array.from({ length: count }, (_, i) => ({
    digest: digestOf(i + 1),
    size: 1000 + i,
    format: 'squashfs' as const,
    path: `/store/layers/sha256/${digestOf(i + 1).slice(7)}.sqfs`,
  }));
}

function image(options: { layers?: number; config?: ImageConfig['config'] | undefined } = {}): ResolvedImage {
  const layers = layersOf(options.layers ?? 3);
  return {
    ref: 'pytorch:24.05',
    manifestDigest: digestOf(0xfff, 'b'),
    manifest: {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(0xffe, 'c'), size: 10 },
      layers: layers.map((layer) => ({ mediaType: LAYER_MEDIA_TYPES.squashfs, digest: layer.digest, size: layer.size })),
    },
    config: {
      architecture: 'amd64',
      os: 'linux',
      config: 'config' in options ? (options.config as ImageConfig['config']) : { Env: ['PATH=/opt/bin:/usr/bin', 'LANG=C.UTF-8'] },
      rootfs: { type: 'layers', diff_ids: [] },
    },
    layers,
  };
}

function job(overrides: Partial<JobRequest> = {}): JobRequest {
  return { jobId: '42', uid: 1000, gid: 1000, writable: false, mounts: [], ...overrides };
}

function config(overrides: (config: Config) => void = () => undefined): Config {
  const c = defaultConfig();
  overrides(c);
  return c;
}

const userMount = (source: string, target = source, readonly = false): BindRequest => ({ source, target, readonly, optional: false, recursive: false });

/** The steps, with the automatic environment binds (host files, identity, /tmp) left out. */
const ops = (plan: Plan) => plan.steps.filter((step) => !(step.op === 'bind' && step.automatic)).map((step) => step.op);
const stepOf = <K extends Step['op']>(plan: Plan, op: K) => plan.steps.find((step) => step.op === op) as Extract<Step, { op: K }>;
/** The binds other than the automatic environment ones (tested in container-environment.test.ts). */
const bindSteps = (plan: Plan) => plan.steps.filter((step): step is Extract<Step, { op: 'bind' }> => step.op === 'bind' && !step.automatic);
const bindTargets = (plan: Plan) => bindSteps(plan).map((step) => step.target);
const entryOf = (plan: Plan) => stepOf(plan, 'entry').entry;

function thrown(fn: () => unknown): StrataError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(StrataError);
    return error as StrataError;
  }
  throw new Error('expected a StrataError, nothing was thrown');
}

// ---------------------------------------------------------------------------------------------

describe('planJob: step order', () => {
  test('read-only job: upper, rootfs dir, rootfs, binds, readonly, entry last', () => {
    const plan = planJob(job(), config(), image());
    expect(ops(plan)).toEqual(['upper-tmpfs', 'mkdir', 'rootfs', 'job-files', 'tmp-tmpfs', 'bind', 'bind', 'bind', 'readonly', 'entry']);
    expect(plan.jobId).toBe('42');
    expect(plan.jobDir).toBe('/run/strata/jobs/42');
    expect(plan.rootfs).toBe('/run/strata/jobs/42/rootfs');
  });

  test('writable job has no readonly step', () => {
    const plan = planJob(job({ writable: true }), config(), image());
    expect(ops(plan)).not.toContain('readonly');
    expect(ops(plan)).toEqual(['upper-tmpfs', 'mkdir', 'rootfs', 'job-files', 'tmp-tmpfs', 'bind', 'bind', 'bind', 'entry']);
  });

  test('readonly comes after every bind (their mount points are made while the rootfs is writable), even with many binds', () => {
    const plan = planJob(
      job({ home: '/home/alice', jobWorkDir: '/scratch/alice/run', mounts: [userMount('/lustre/proj', '/data', true)] }),
      config((c) => c.mounts.push({ source: '/apps', target: '/apps', readonly: true, optional: false })),
      image(),
    );
    const order = plan.steps.map((step) => step.op);
    const readonly = order.indexOf('readonly');
    expect(readonly).toBe(order.lastIndexOf('bind') + 1);
    expect(order.indexOf('bind')).toBe(order.indexOf('tmp-tmpfs') + 1);
    expect(order.lastIndexOf('readonly')).toBe(readonly);
    expect(order[order.length - 1]).toBe('entry');
    expect(stepOf(plan, 'readonly').target).toBe('/run/strata/jobs/42/rootfs');
  });

  test('the rootfs directory is created (0755) before the overlay is mounted on it', () => {
    const plan = planJob(job(), config(), image());
    expect(stepOf(plan, 'mkdir')).toEqual({ op: 'mkdir', path: '/run/strata/jobs/42/rootfs', mode: 0o755 });
    expect(stepOf(plan, 'rootfs').target).toBe('/run/strata/jobs/42/rootfs');
  });

  test('paths follow runtime_dir', () => {
    const plan = planJob(job({ jobId: '7.pbs01' }), config((c) => (c.runtimeDir = '/dev/shm/st')), image());
    expect(plan.rootfs).toBe('/dev/shm/st/jobs/7.pbs01/rootfs');
    expect(stepOf(plan, 'upper-tmpfs').target).toBe('/dev/shm/st/jobs/7.pbs01/upper');
    expect(stepOf(plan, 'rootfs').layerDir).toBe('/dev/shm/st/l');
    expect(stepOf(plan, 'entry').path).toBe('/dev/shm/st/jobs/7.pbs01/entry.json');
  });

  test.each(['../etc', 'a/b', '', '42 43', '.hidden'])('an invalid job id %j is a user error', (jobId) => {
    const error = thrown(() => planJob(job({ jobId }), config(), image()));
    expect(error.kind).toBe('user');
    expect(error.code).toBe('E_BAD_JOB');
  });
});

describe('planJob: upper layer', () => {
  test('tmpfs upper gets the default size and belongs to the job user', () => {
    const c = config();
    const plan = planJob(job({ uid: 1234, gid: 567 }), c, image());
    expect(stepOf(plan, 'upper-tmpfs')).toEqual({
      op: 'upper-tmpfs',
      target: '/run/strata/jobs/42/upper',
      sizeBytes: c.upper.defaultSize,
      uid: 1234,
      gid: 567,
    });
    expect(c.upper.defaultSize).toBe(2 ** 30);
  });

  test('a requested size up to max_size is honoured', () => {
    const c = config();
    expect(stepOf(planJob(job({ upperSize: 3 * 2 ** 30 }), c, image()), 'upper-tmpfs').sizeBytes).toBe(3 * 2 ** 30);
    expect(stepOf(planJob(job({ upperSize: c.upper.maxSize }), c, image()), 'upper-tmpfs').sizeBytes).toBe(c.upper.maxSize);
  });

  test('a size over max_size is a user error naming both sizes', () => {
    const c = config();
    const error = thrown(() => planJob(job({ upperSize: c.upper.maxSize + 1 }), c, image()));
    expect(error.kind).toBe('user');
    expect(error.code).toBe('E_UPPER_SIZE');
    expect(error.message).toContain('16G');
    expect(error.hint).toContain('16G');
    const big = thrown(() => planJob(job({ upperSize: 32 * 2 ** 30 }), c, image()));
    expect(big.message).toContain('32G');
    expect(big.message).not.toContain('\n');
  });

  test('a size that rounds to nothing (tmpfs reads size=0 as unlimited) is refused, not unlimited', () => {
    for (const upperSize of [0, 1, 4096, MIN_UPPER_SIZE - 1]) {
      const error = thrown(() => planJob(job({ upperSize }), config(), image()));
      expect(error.kind).toBe('user');
      expect(error.code).toBe('E_UPPER_SIZE');
      expect(error.hint).toContain('1M');
    }
    expect(stepOf(planJob(job({ upperSize: MIN_UPPER_SIZE }), config(), image()), 'upper-tmpfs').sizeBytes).toBe(MIN_UPPER_SIZE);
  });

  test('disk backing: a job that asks for a size is told it is not enforced; one that does not is told nothing', () => {
    const c = config((c) => (c.upper.backing = 'disk'));
    const entry = (plan: ReturnType<typeof planJob>) => stepOf(plan, 'entry').entry;
    expect(entry(planJob(job({ upperSize: 4 * 2 ** 30 }), c, image())).notice).toBe(
      'the writable space you asked for (4G) is not a limit on this node: its writable layers are on local disk (upper.backing: disk), without a cap',
    );
    expect(entry(planJob(job(), c, image())).notice).toBeUndefined();
    expect(entry(planJob(job({ upperSize: 4 * 2 ** 30 }), config(), image())).notice).toBeUndefined();
  });

  test('the max_size check also applies with disk backing', () => {
    const c = config((c) => (c.upper.backing = 'disk'));
    expect(thrown(() => planJob(job({ upperSize: 17 * 2 ** 30 }), c, image())).code).toBe('E_UPPER_SIZE');
  });

  test('disk backing uses an upper directory <disk_path>/<job> and no tmpfs', () => {
    const c = config((c) => {
      c.upper.backing = 'disk';
      c.upper.diskPath = '/local/strata';
    });
    const plan = planJob(job({ uid: 1001, gid: 100 }), c, image());
    expect(ops(plan)[0]).toBe('upper-dir');
    expect(ops(plan)).not.toContain('upper-tmpfs');
    expect(stepOf(plan, 'upper-dir')).toEqual({ op: 'upper-dir', path: '/local/strata/42', uid: 1001, gid: 100 });
    const options = stepOf(plan, 'rootfs').options;
    expect(options).toContain('upperdir=/local/strata/42/u,');
    expect(options).toContain('workdir=/local/strata/42/w,');
  });
});

describe('planJob: overlay', () => {
  test('layers stay in manifest order; lowerdir lists the top layer first, as 12-hex ids', () => {
    const img = image({ layers: 3 });
    const rootfs = stepOf(planJob(job(), config(), img), 'rootfs');
    expect(rootfs.layerDir).toBe('/run/strata/l');
    expect(rootfs.layers.map((layer) => layer.digest)).toEqual(img.layers.map((layer) => layer.digest));
    const ids = img.layers.map((layer) => layer.digest.slice(7, 19));
    expect(rootfs.layers.map((layer) => layer.id)).toEqual(ids);
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{12}$/);
    expect(rootfs.layers.map((layer) => layer.mountPoint)).toEqual(ids.map((id) => `/run/strata/l/${id}`));
    expect(rootfs.layers.map((layer) => layer.file)).toEqual(img.layers.map((layer) => layer.path));
    const lowerdir = /(?:^|,)lowerdir=([^,]*)/.exec(rootfs.options)![1];
    expect(lowerdir.split(':')).toEqual([...ids].reverse());
  });

  test('overlay options: relative lowerdirs, upper/work in the job upper, nosuid and nodev', () => {
    const options = stepOf(planJob(job(), config(), image({ layers: 1 })), 'rootfs').options.split(',');
    expect(options[0]).toMatch(/^lowerdir=[0-9a-f]{12}$/);
    expect(options).toContain('upperdir=/run/strata/jobs/42/upper/u');
    expect(options).toContain('workdir=/run/strata/jobs/42/upper/w');
    expect(options).toContain('nosuid');
    expect(options).toContain('nodev');
  });

  test('an image with no layers is a user error (damaged image)', () => {
    const error = thrown(() => planJob(job(), config(), image({ layers: 0 })));
    expect(error.kind).toBe('user');
    expect(error.code).toBe('E_IMAGE_BROKEN');
    expect(error.message).toContain('pytorch:24.05');
  });

  test('250 layers still fit in one page of mount options', () => {
    const rootfs = stepOf(planJob(job(), config(), image({ layers: 250 })), 'rootfs');
    expect(rootfs.layers).toHaveLength(250);
    expect(rootfs.options.length).toBeLessThanOrEqual(MOUNT_OPTIONS_MAX);
    expect(/lowerdir=([^,]*)/.exec(rootfs.options)![1].split(':')).toHaveLength(250);
  });

  test('400 layers (option string over 4095 bytes) is a user error suggesting --flatten', () => {
    const error = thrown(() => planJob(job(), config(), image({ layers: 400 })));
    expect(error.kind).toBe('user');
    expect(error.code).toBe('E_TOO_MANY_LAYERS');
    expect(error.message).toContain('400');
    expect(error.hint).toContain('--flatten');
  });

  test('the limit is exactly where the option string would pass 4095 bytes', () => {
    // Find the largest layer count the planner accepts; one more must be refused, and the accepted
    // one must really fit (the kernel silently truncates longer option strings).
    let fits = 0;
    for (let n = 200; n < 400; n++) {
      try {
        planJob(job(), config(), image({ layers: n }));
        fits = n;
      } catch (error) {
        expect((error as StrataError).code).toBe('E_TOO_MANY_LAYERS');
        break;
      }
    }
    expect(fits).toBeGreaterThanOrEqual(250);
    expect(stepOf(planJob(job(), config(), image({ layers: fits })), 'rootfs').options.length).toBeLessThanOrEqual(MOUNT_OPTIONS_MAX);
    expect(thrown(() => planJob(job(), config(), image({ layers: fits + 1 }))).code).toBe('E_TOO_MANY_LAYERS');
  });

  test('a longer runtime_dir leaves room for fewer layers', () => {
    const long = config((c) => (c.runtimeDir = `/run/${'x'.repeat(200)}`));
    expect(() => planJob(job(), config(), image({ layers: 300 }))).not.toThrow();
    expect(thrown(() => planJob(job(), long, image({ layers: 300 }))).code).toBe('E_TOO_MANY_LAYERS');
  });
});

describe('planJob: bind mounts', () => {
  test('/proc, /sys and /dev are bound recursively, read-write, first', () => {
    const binds = bindSteps(planJob(job(), config(), image()));
    expect(binds.map(({ source, target, readonly, optional, recursive }) => ({ source, target, readonly, optional, recursive }))).toEqual([
      { source: '/proc', target: '/proc', readonly: false, optional: false, recursive: true },
      { source: '/sys', target: '/sys', readonly: true, optional: false, recursive: true },
      { source: '/dev', target: '/dev', readonly: false, optional: false, recursive: true },
    ]);
    for (const bind of binds) expect(bind.rootfs).toBe('/run/strata/jobs/42/rootfs');
    // Opened as root: fixed host paths; everything a user or a site names is opened as the user.
    expect(binds.map((bind) => bind.trusted)).toEqual([true, true, true]);
    const withUser = bindSteps(planJob(job({ mounts: [{ source: '/lustre/p', target: '/data', readonly: true, optional: false, recursive: false }] }), config(), image()));
    expect(withUser.find((bind) => bind.target === '/data')?.trusted).toBeFalsy();
  });

  test('site mounts keep their readonly/optional flags and are not recursive', () => {
    const plan = planJob(
      job(),
      config((c) => c.mounts.push({ source: '/gpfs/apps', target: '/opt/apps', readonly: true, optional: true })),
      image(),
    );
    const site = bindSteps(plan).find((bind) => bind.target === '/opt/apps')!;
    expect(site).toMatchObject({ source: '/gpfs/apps', readonly: true, optional: true, recursive: false });
  });

  test('home and job working directory are bound at the same path, optional, read-write', () => {
    const plan = planJob(job({ home: '/home/alice', jobWorkDir: '/scratch/alice/run1' }), config(), image());
    const binds = bindSteps(plan);
    expect(binds.find((b) => b.target === '/home/alice')).toMatchObject({ source: '/home/alice', readonly: false, optional: true, recursive: false });
    expect(binds.find((b) => b.target === '/scratch/alice/run1')).toMatchObject({ source: '/scratch/alice/run1', readonly: false, optional: true });
  });

  test('no home bind when the home is / or unknown', () => {
    expect(bindTargets(planJob(job({ home: '/' }), config(), image()))).toEqual(['/proc', '/sys', '/dev']);
    expect(bindTargets(planJob(job({ jobWorkDir: '/' }), config(), image()))).toEqual(['/proc', '/sys', '/dev']);
  });

  test('home and job dir are skipped when a same-path site mount already covers them', () => {
    const c = config((c) => {
      c.mounts.push({ source: '/home', target: '/home', readonly: false, optional: false });
      c.mounts.push({ source: '/scratch', target: '/scratch', readonly: false, optional: false });
    });
    const targets = bindTargets(planJob(job({ home: '/home/alice', jobWorkDir: '/scratch/alice/run' }), c, image()));
    expect(targets).toEqual(['/proc', '/sys', '/dev', '/home', '/scratch']);
  });

  test('a job dir inside the home is covered by the home bind', () => {
    const targets = bindTargets(planJob(job({ home: '/home/alice', jobWorkDir: '/home/alice/proj' }), config(), image()));
    expect(targets).toEqual(['/proc', '/sys', '/dev', '/home/alice']);
  });

  test('a site mount that relocates a directory does not cover the host path of the home', () => {
    // /gpfs/home is shown as /home: the host's /home/alice is not what the container sees there.
    const c = config((c) => c.mounts.push({ source: '/gpfs/home', target: '/home', readonly: false, optional: false }));
    const targets = bindTargets(planJob(job({ home: '/home/alice' }), c, image()));
    expect(targets).toEqual(['/proc', '/sys', '/dev', '/home', '/home/alice']);
  });

  test('/home/alicex is not covered by a /home/alice bind', () => {
    const targets = bindTargets(planJob(job({ home: '/home/alice', jobWorkDir: '/home/alicex' }), config(), image()));
    expect(targets).toContain('/home/alicex');
  });

  test('--no-container-mount-home (or the site default off) leaves the home out; the job directory is still bound', () => {
    const request = { home: '/home/alice', jobWorkDir: '/home/alice/proj' };
    expect(bindTargets(planJob(job({ ...request, mountHome: false }), config(), image()))).toEqual(['/proc', '/sys', '/dev', '/home/alice/proj']);
    const siteOff = config((c) => (c.container.mountHome = false));
    expect(bindTargets(planJob(job(request), siteOff, image()))).toEqual(['/proc', '/sys', '/dev', '/home/alice/proj']);
    // --container-mount-home where the site's default is off
    expect(bindTargets(planJob(job({ ...request, mountHome: true }), siteOff, image()))).toEqual(['/proc', '/sys', '/dev', '/home/alice']);
  });

  test('parents are mounted before children, whatever order they were given in', () => {
    const plan = planJob(
      job({
        home: '/home/alice',
        mounts: [userMount('/lustre/deep', '/data/a/b/c'), userMount('/lustre/a', '/data/a'), userMount('/lustre/root', '/data'), userMount('/x', '/data/a/b')],
      }),
      config(),
      image(),
    );
    const targets = bindTargets(plan);
    const index = (t: string) => targets.indexOf(t);
    expect(index('/data')).toBeLessThan(index('/data/a'));
    expect(index('/data/a')).toBeLessThan(index('/data/a/b'));
    expect(index('/data/a/b')).toBeLessThan(index('/data/a/b/c'));
    expect(index('/dev')).toBeLessThan(index('/data'));
    // Same depth: given order is kept (system, site, home, job, user).
    expect(targets).toEqual(['/proc', '/sys', '/dev', '/data', '/home/alice', '/data/a', '/data/a/b', '/data/a/b/c']);
  });

  test('a site mount under the home comes after the home', () => {
    const c = config((c) => c.mounts.push({ source: '/gpfs/alice-cache', target: '/home/alice/.cache', readonly: false, optional: false }));
    const targets = bindTargets(planJob(job({ home: '/home/alice' }), c, image()));
    expect(targets.indexOf('/home/alice')).toBeLessThan(targets.indexOf('/home/alice/.cache'));
  });

  test('user mounts are passed through as given', () => {
    const mount = userMount('/lustre/proj', '/data', true);
    const bind = bindSteps(planJob(job({ mounts: [mount] }), config(), image())).find((b) => b.target === '/data');
    expect(bind).toEqual({ op: 'bind', rootfs: '/run/strata/jobs/42/rootfs', ...mount });
  });

  test('a user mount onto a site mount target is a user error', () => {
    const c = config((c) => c.mounts.push({ source: '/apps', target: '/opt/apps', readonly: true, optional: false }));
    const error = thrown(() => planJob(job({ mounts: [userMount('/home/alice/apps', '/opt/apps')] }), c, image()));
    expect(error.kind).toBe('user');
    expect(error.code).toBe('E_BAD_MOUNT');
    expect(error.message).toContain('/opt/apps');
  });

  test('two user mounts onto the same target is a user error', () => {
    const error = thrown(() => planJob(job({ mounts: [userMount('/a', '/data'), userMount('/b', '/data')] }), config(), image()));
    expect(error.code).toBe('E_BAD_MOUNT');
    expect(error.message).toContain('/data');
  });

  test('a user mount onto a system target is refused even if it bypassed the parser', () => {
    expect(thrown(() => planJob(job({ mounts: [userMount('/tmp/fake', '/proc')] }), config(), image())).code).toBe('E_BAD_MOUNT');
  });
});

describe('planJob: entry', () => {
  test('describes the job, the image and the rootfs', () => {
    const img = image({ config: { Env: ['PATH=/opt/bin', 'A=1'], Entrypoint: ['/bin/sh', '-c'], Cmd: ['echo hi'], WorkingDir: '/work', User: 'nobody' } });
    const plan = planJob(job({ uid: 1000, gid: 100, writable: true }), config(), img);
    expect(stepOf(plan, 'entry').path).toBe('/run/strata/jobs/42/entry.json');
    expect(entryOf(plan)).toEqual({
      jobId: '42',
      image: 'pytorch:24.05',
      manifestDigest: img.manifestDigest,
      rootfs: '/run/strata/jobs/42/rootfs',
      uid: 1000,
      gid: 100,
      env: ['PATH=/opt/bin', 'A=1'],
      workdir: '/work',
      entrypoint: ['/bin/sh', '-c'],
      cmd: ['echo hi'],
      user: 'nobody',
      writable: true,
      runEntrypoint: false,
      remapRoot: false,
    });
  });

  test.each([
    ['the site default', {}, {}, { runEntrypoint: false, remapRoot: false }],
    ['a site that turns both on', {}, { entrypoint: true, remapRoot: true }, { runEntrypoint: true, remapRoot: true }],
    ['the job\'s options over the site\'s', { entrypoint: false, remapRoot: false }, { entrypoint: true, remapRoot: true }, { runEntrypoint: false, remapRoot: false }],
    ['the job asking where the site does not', { entrypoint: true, remapRoot: true }, {}, { runEntrypoint: true, remapRoot: true }],
  ])('entrypoint and remap-root: %s', (_, request, site, expected) => {
    const plan = planJob(job(request), config((c) => Object.assign(c.container, site)), image());
    expect(entryOf(plan)).toMatchObject(expected);
    // Remap-root decides how the overlay is stacked: idmapped layer clones, and apt kept to root.
    const rootfs = plan.steps.find((step) => step.op === 'rootfs');
    const putFiles = plan.steps.filter((step) => step.op === 'put-file');
    if (expected.remapRoot) {
      expect(rootfs).toMatchObject({ idmap: { uid: 1000, gid: 1000, dir: '/run/strata/jobs/42/l' } });
      expect(putFiles).toEqual([
        { op: 'put-file', rootfs: '/run/strata/jobs/42/rootfs', dir: '/etc/apt/apt.conf.d', name: '99strata-remap-root', content: 'APT::Sandbox::User "root";\n', uid: 1000, gid: 1000 },
      ]);
      expect(plan.steps.indexOf(putFiles[0])).toBe(plan.steps.indexOf(rootfs!) + 1);
    } else {
      expect(rootfs).not.toHaveProperty('idmap');
      expect(putFiles).toEqual([]);
    }
  });

  test.each([
    ['no Env', {}],
    ['an empty Env', { Env: [] }],
    ['no config section', undefined],
  ])('an image with %s gets the default PATH', (_, imageConfig) => {
    const entry = entryOf(planJob(job(), config(), image({ config: imageConfig as ImageConfig['config'] })));
    expect(entry.env).toEqual([DEFAULT_PATH_ENV]);
    expect(entry.workdir).toBe('/');
    expect(entry.entrypoint).toEqual([]);
    expect(entry.cmd).toEqual([]);
    expect(entry.user).toBeUndefined();
  });

  test('null Entrypoint/Cmd and an empty User are treated as absent', () => {
    const entry = entryOf(planJob(job(), config(), image({ config: { Entrypoint: null, Cmd: null, User: '' } })));
    expect(entry.entrypoint).toEqual([]);
    expect(entry.cmd).toEqual([]);
    expect(entry.user).toBeUndefined();
  });

  test('workdir: the request wins over the image WorkingDir, which wins over /', () => {
    const withDir = image({ config: { WorkingDir: '/workspace' } });
    expect(entryOf(planJob(job({ workdir: '/data/run' }), config(), withDir)).workdir).toBe('/data/run');
    expect(entryOf(planJob(job(), config(), withDir)).workdir).toBe('/workspace');
    expect(entryOf(planJob(job(), config(), image({ config: { WorkingDir: '' } }))).workdir).toBe('/');
    expect(entryOf(planJob(job(), config(), image({ config: {} }))).workdir).toBe('/');
  });

  test('entry records whether the rootfs is writable', () => {
    expect(entryOf(planJob(job({ writable: false }), config(), image())).writable).toBe(false);
    expect(entryOf(planJob(job({ writable: true }), config(), image())).writable).toBe(true);
  });
});

describe('regressions', () => {
  test('a layer listed twice is stacked once, at its topmost place', () => {
    const layer = (n: string) => ({ digest: `sha256:${n.repeat(64)}`, size: 1, format: 'squashfs' as const, path: `/store/${n}.sqfs` });
    const config = defaultConfig();
    const image = { ref: 'dup:2', manifestDigest: `sha256:${'f'.repeat(64)}`, manifest: {} as never, config: { config: {} } as never, layers: [layer('a'), layer('b'), layer('a')] };
    const plan = planJob({ jobId: '1', uid: 1, gid: 1, writable: true, mounts: [] }, config, image);
    const rootfs = plan.steps.find((step) => step.op === 'rootfs');
    expect(rootfs && rootfs.op === 'rootfs' && rootfs.options).toMatch(/^lowerdir=aaaaaaaaaaaa:bbbbbbbbbbbb,/);
  });
});
