// The native Slurm Prolog/Epilog front-ends (front/strata-front.c), run the way slurmd runs them:
// no PATH, Slurm's variables only. A job with nothing for strata to do must not start Node; every
// other job must reach the Node entry point with the same arguments and environment.
// The built front-ends are copied next to a stub `slurm.js` that records being run. The layer
// cases mount (tmpfs layers, an overlay): root, under the machine-wide mount lock.

import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeSite, REPO, type Site } from '../helpers/site.js';

let site: Site;
let bin: string;
const record = () => join(site.root, 'node-ran');
const slurmEnv = (extra: Record<string, string> = {}) => ({ SLURM_JOB_ID: '77', SLURM_JOB_UID: '1000', SLURM_JOB_GID: '1000', SLURMD_NODENAME: 'n1', STRATA_CONFIG: site.configPath, ...extra });

/** Run a copied front-end; what the stub Node entry saw, if it ran. */
function front(phase: 'prolog' | 'epilog', env: Record<string, string>, args: string[] = []) {
  rmSync(record(), { force: true });
  const result = spawnSync(join(bin, phase, 'slurm'), args, { env, encoding: 'utf8' });
  const ran = existsSync(record()) ? readFileSync(record(), 'utf8') : undefined;
  return { code: result.status, ran, stderr: result.stderr };
}

beforeAll(() => {
  if (!existsSync(join(REPO, 'dist/epilog/slurm'))) execFileSync('npm', ['run', '--silent', 'build'], { cwd: REPO });
});

beforeEach(() => {
  site = makeSite('front');
  bin = join(site.root, 'lib');
  for (const phase of ['prolog', 'epilog']) {
    mkdirSync(join(bin, phase), { recursive: true });
    copyFileSync(join(REPO, `dist/${phase}/slurm`), join(bin, phase, 'slurm'));
    execFileSync('chmod', ['755', join(bin, phase, 'slurm')]);
    // Records its arguments and environment, and exits with STUB_EXIT.
    writeFileSync(join(bin, phase, 'slurm.js'), `#!/bin/sh\n{ echo "argv: $0 $*"; /usr/bin/env; } > ${record()}\nexit \${STUB_EXIT:-0}\n`, { mode: 0o755 });
  }
});

afterEach(() => site.remove());

describe('prolog', () => {
  test('no image requested: exit 0 without starting Node', () => {
    expect(front('prolog', slurmEnv({ SPANK_STRATA_MOUNTS: '/scratch:/scratch', SPANK_STRATA_IMAGE: '' }))).toEqual({ code: 0, ran: undefined, stderr: '' });
  });

  test('an image or a pinned digest: Node runs with the same arguments and environment, and its exit status is kept', () => {
    const env = slurmEnv({ SPANK_STRATA_IMAGE_DIGEST: 'sha256:abc', STUB_EXIT: '3' });
    const result = front('prolog', env, ['one', 'two']);
    expect(result.code).toBe(3);
    expect(result.ran).toContain(`argv: ${join(bin, 'prolog/slurm.js')} one two\n`);
    for (const [name, value] of Object.entries(env)) expect(result.ran).toContain(`\n${name}=${value}\n`);
    expect(result.ran).not.toMatch(/^PATH=/m);
    expect(front('prolog', slurmEnv({ SPANK_STRATA_IMAGE: 'alpine:3' })).ran).toBeDefined();
  });

  test('a missing Node entry point is reported, and only then is the exit non-zero', () => {
    rmSync(join(bin, 'prolog/slurm.js'));
    const result = front('prolog', slurmEnv({ SPANK_STRATA_IMAGE: 'alpine:3' }));
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^strata: prolog: cannot run .*prolog\/slurm\.js: No such file or directory/);
    expect(front('prolog', slurmEnv()).code).toBe(0);
  });
});

describe('epilog', () => {
  test('nothing of the job on the node: exit 0 without starting Node', () => {
    expect(front('epilog', slurmEnv())).toEqual({ code: 0, ran: undefined, stderr: '' });
    mkdirSync(join(site.runtime, 'jobs/76'), { recursive: true });
    expect(front('epilog', slurmEnv()).ran).toBeUndefined();
  });

  test('the job has a directory (journal, error file, half-done prolog): Node runs', () => {
    mkdirSync(join(site.runtime, 'jobs/77'), { recursive: true });
    expect(front('epilog', slurmEnv()).ran).toContain(`argv: ${join(bin, 'epilog/slurm.js')}`);
  });

  test('an empty layer mount point that the sweep would remove: Node runs', () => {
    mkdirSync(join(site.runtime, 'l/0123456789ab'), { recursive: true });
    expect(front('epilog', slurmEnv()).ran).toBeDefined();
  });

  test.each([
    ['a flow mapping', (runtime: string) => `{runtime_dir: ${runtime}}\n`],
    ['a quoted runtime_dir', (runtime: string) => `runtime_dir: "${runtime}"\n`],
    ['a runtime_dir continued on the next line', (runtime: string) => `runtime_dir: ${runtime}\n  /more\n`],
    ['two runtime_dir keys', (runtime: string) => `runtime_dir: ${runtime}\nruntime_dir: ${runtime}\n`],
    ['a merge key under layers', (runtime: string) => `runtime_dir: ${runtime}\nlayers:\n  <<: {cache: keep}\n`],
    ['an unknown layers.cache value', (runtime: string) => `runtime_dir: ${runtime}\nlayers:\n  cache: maybe\n`],
  ])('a configuration the front-end does not read (%s): Node decides', (_, text) => {
    writeFileSync(site.configPath, text(site.runtime));
    expect(front('epilog', slurmEnv()).ran).toBeDefined();
  });

  test('the configured runtime_dir is the one looked in (comments and other keys around it)', () => {
    const other = join(site.root, 'elsewhere');
    mkdirSync(join(other, 'jobs/77'), { recursive: true });
    writeFileSync(site.configPath, `# site\nstore:\n  path: ${site.store}   # shared\nruntime_dir: ${other}/  # tmpfs\nlayers:\n  cache: release\n  direct_io: false\nmounts: []\n`);
    expect(front('epilog', slurmEnv()).ran).toBeDefined();
    rmSync(join(other, 'jobs/77'), { recursive: true });
    expect(front('epilog', slurmEnv()).ran).toBeUndefined();
  });

  test('the shipped example configuration (every setting, comments) is read without Node', () => {
    const example = readFileSync(join(REPO, 'etc/strata.yaml'), 'utf8');
    expect(example).toContain('runtime_dir: /run/strata\n');
    writeFileSync(site.configPath, example.replace('runtime_dir: /run/strata\n', `runtime_dir: ${site.runtime}\n`));
    expect(front('epilog', slurmEnv()).ran).toBeUndefined();
    mkdirSync(join(site.runtime, 'jobs/77'), { recursive: true });
    expect(front('epilog', slurmEnv()).ran).toBeDefined();
  });

  test('a configuration file named by STRATA_CONFIG that does not exist, or an invalid job id: Node reports it', () => {
    expect(front('epilog', slurmEnv({ STRATA_CONFIG: join(site.root, 'missing.yaml') })).ran).toBeDefined();
    expect(front('epilog', slurmEnv({ SLURM_JOB_ID: '../77' })).ran).toBeDefined();
    expect(front('epilog', { SLURM_JOB_UID: '0', STRATA_CONFIG: site.configPath }).ran).toBeDefined();
  });

  test('with the real Node epilog: a job that only left an error file is cleaned up', () => {
    const dir = join(site.runtime, 'jobs/77');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'error'), 'strata: no such image\n');
    const result = spawnSync(join(REPO, 'dist/epilog/slurm'), [], { env: slurmEnv(), encoding: 'utf8' });
    expect(result.status).toBe(0);
    expect(existsSync(dir)).toBe(false);
  });

  const root = process.getuid?.() === 0 ? describe : describe.skip;
  root('layers mounted on the node (root)', () => {
    const mounted: string[] = [];
    const mount = (args: string[], target: string, cwd?: string) => {
      mkdirSync(target, { recursive: true });
      execFileSync('/usr/bin/mount', [...args, target], { cwd });
      mounted.unshift(target);
    };
    afterEach(() => {
      for (const target of mounted.splice(0)) execFileSync('/usr/bin/umount', [target]);
    });

    test('a layer that a running job overlay uses: nothing to sweep, Node does not run', () => {
      const layers = join(site.runtime, 'l');
      mount(['-t', 'tmpfs', 'layer'], join(layers, 'aaaaaaaaaaaa'));
      mount(['-t', 'tmpfs', 'layer'], join(layers, 'bbbbbbbbbbbb'));
      mkdirSync(join(site.root, 'upper/u'), { recursive: true });
      mkdirSync(join(site.root, 'upper/w'), { recursive: true });
      mount(['-t', 'overlay', 'overlay', '-o', `lowerdir=bbbbbbbbbbbb:aaaaaaaaaaaa,upperdir=${site.root}/upper/u,workdir=${site.root}/upper/w`], join(site.runtime, 'jobs/70/rootfs'), layers);
      expect(front('epilog', slurmEnv()).ran).toBeUndefined();
      // The job's own directory is there: always Node.
      expect(front('epilog', slurmEnv({ SLURM_JOB_ID: '70' })).ran).toBeDefined();
    });

    test('a mounted layer no job uses: Node releases it (cache: release), or it stays and Node is not needed (cache: keep)', () => {
      mount(['-t', 'tmpfs', 'layer'], join(site.runtime, 'l/cccccccccccc'));
      expect(front('epilog', slurmEnv()).ran).toBeDefined();
      writeFileSync(site.configPath, `runtime_dir: ${site.runtime}\nlayers:\n  cache: keep\n`);
      expect(front('epilog', slurmEnv()).ran).toBeUndefined();
    });
  });
});
