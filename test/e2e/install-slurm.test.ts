// `strata install-slurm` into a throw-away prefix: what it installs, that a second run changes
// nothing, that --dry-run changes nothing, and which slurm.conf lines it asks for.

import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { installSlurm } from '../../src/cli/commands/install-slurm.js';
import { parseSlurmConf } from '../../src/scheduler/slurm-conf.js';
import { REPO } from './cluster.js';

let root: string;
let prefix: string;
let output: string[];
const options = () => ({
  packageRoot: REPO,
  sysconfdir: join(root, 'etc'),
  runtimeDir: '/run/strata',
  out: (text: string) => void output.push(text),
});

beforeAll(() => {
  execFileSync('make', ['-s', '-C', join(REPO, 'spank')]);
  if (!existsSync(join(REPO, 'dist/prolog/slurm.js'))) execFileSync('npm', ['run', '--silent', 'build'], { cwd: REPO });
});

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'strata-install-'));
  prefix = join(root, 'usr');
  output = [];
  mkdirSync(join(root, 'etc/slurm'), { recursive: true });
});

afterEach(() => rmSync(root, { recursive: true, force: true }));

test('installs the build, the plugin, the CLI link and the plugstack line, then is idempotent', async () => {
  expect(await installSlurm({ dryRun: false, prefix }, options())).toBe(0);
  const lib = join(prefix, 'lib/strata');
  for (const file of ['bin/strata.js', 'prolog/slurm.js', 'epilog/slurm.js', 'prolog/slurm', 'epilog/slurm']) {
    expect(lstatSync(join(lib, file)).mode & 0o777).toBe(0o755);
  }
  expect(readFileSync(join(lib, 'strata.so')).equals(readFileSync(join(REPO, 'spank/strata.so')))).toBe(true);
  expect(readlinkSync(join(prefix, 'bin/strata'))).toBe(join(lib, 'bin/strata.js'));
  expect(readFileSync(join(root, 'etc/slurm/plugstack.conf.d/zz-strata.conf'), 'utf8')).toContain(
    `required ${lib}/strata.so strata=${lib}/bin/strata.js runtime_dir=/run/strata`,
  );
  // The node agent's unit runs the installed CLI; enabling it is the admin's step.
  const unit = readFileSync(join(root, 'etc/systemd/system/strata-agent.service'), 'utf8');
  expect(unit).toContain(`ExecStart=${process.execPath} ${lib}/bin/strata.js node agent\n`);
  expect(unit).toMatch(/^Restart=always$/m);
  expect(lstatSync(join(lib, 'helper/strata-agent-gate')).mode & 0o777).toBe(0o755);
  const text = output.join('');
  expect(text).toContain('systemctl enable --now strata-agent.service');
  expect(text).toMatch(new RegExp(`installed ${lib}/prolog/slurm.js \\(new\\)`));
  // slurm.conf names the native front-ends, which start Node only for jobs that need it.
  expect(text).toContain(`Prolog=${lib}/prolog/slurm\n`);
  expect(text).toContain(`Epilog=${lib}/epilog/slurm\n`);
  expect(text).toContain('PrologFlags=Alloc');

  // The installed prolog runs from its new place (chunks included): with no image it is a no-op.
  execFileSync(join(lib, 'prolog/slurm.js'), { env: { SLURM_JOB_ID: '1', SLURM_JOB_UID: '0', SLURM_JOB_GID: '0' } });
  // The installed front-end finds the installed Node entry beside it: an image it cannot find is
  // the job's error (exit 0 and an error file), which only the Node prolog writes.
  const runtime = join(root, 'run');
  mkdirSync(join(root, 'store/layers/sha256'), { recursive: true });
  writeFileSync(join(root, 'strata.yaml'), `store:\n  path: ${root}/store\nruntime_dir: ${runtime}\nlog:\n  file: ""\n`);
  execFileSync(join(lib, 'prolog/slurm'), { env: { SLURM_JOB_ID: '2', SLURM_JOB_UID: '0', SLURM_JOB_GID: '0', SPANK_STRATA_IMAGE: 'missing:1', STRATA_CONFIG: join(root, 'strata.yaml') } });
  expect(readFileSync(join(runtime, 'jobs/2/error'), 'utf8')).toMatch(/^strata: /);

  output = [];
  await installSlurm({ dryRun: false, prefix }, options());
  expect(output.join('')).toMatch(/is up to date/);
});

test('a site TmpFS reaches the plugin as pmix_tmpdir (where Slurm makes the steps\' PMIx client directories)', async () => {
  writeFileSync(join(root, 'etc/slurm/slurm.conf'), 'ClusterName=x\nTmpFS=/local/scratch\n');
  expect(await installSlurm({ dryRun: false, prefix }, options())).toBe(0);
  const lib = join(prefix, 'lib/strata');
  expect(readFileSync(join(root, 'etc/slurm/plugstack.conf.d/zz-strata.conf'), 'utf8')).toContain(
    `required ${lib}/strata.so strata=${lib}/bin/strata.js runtime_dir=/run/strata pmix_tmpdir=/local/scratch\n`,
  );
});

test('--dry-run says what would change and changes nothing', async () => {
  await installSlurm({ dryRun: true, prefix }, options());
  expect(output.join('')).toMatch(/would install .*prolog\/slurm\.js/);
  expect(output.join('')).toMatch(/dry run: nothing changed/);
  expect(existsSync(prefix)).toBe(false);
  expect(existsSync(join(root, 'etc/slurm/plugstack.conf.d'))).toBe(false);
});

test('removes files of an older build and keeps an admin-edited plugstack line', async () => {
  await installSlurm({ dryRun: false, prefix }, options());
  const stale = join(prefix, 'lib/strata/chunks/old-build-XXXX.js');
  writeFileSync(stale, '');
  const snippet = join(root, 'etc/slurm/plugstack.conf.d/zz-strata.conf');
  writeFileSync(snippet, 'required /somewhere/strata.so prefix=strata\n');
  output = [];
  await installSlurm({ dryRun: false, prefix }, options());
  expect(existsSync(stale)).toBe(false);
  expect(output.join('')).toContain(`removed ${stale}`);
  expect(readFileSync(snippet, 'utf8')).toBe('required /somewhere/strata.so prefix=strata\n');
  expect(output.join('')).toMatch(/kept .*zz-strata\.conf as it is/);
});

describe('the strata.conf of an older install-slurm (it sorted before other snippets: doctor failed)', () => {
  const dir = () => join(root, 'etc/slurm/plugstack.conf.d');
  const older = (content: string) => {
    mkdirSync(dir(), { recursive: true });
    writeFileSync(join(dir(), 'strata.conf'), content);
  };

  test('is renamed to zz-strata.conf with its content kept, and --dry-run only says so', async () => {
    older('required /site/strata.so runtime_dir=/run/strata\n');
    await installSlurm({ dryRun: true, prefix }, options());
    expect(output.join('')).toContain(`would rename ${dir()}/zz-strata.conf (from ${dir()}/strata.conf)`);
    expect(existsSync(join(dir(), 'zz-strata.conf'))).toBe(false);
    output = [];
    await installSlurm({ dryRun: false, prefix }, options());
    expect(existsSync(join(dir(), 'strata.conf'))).toBe(false);
    expect(readFileSync(join(dir(), 'zz-strata.conf'), 'utf8')).toBe('required /site/strata.so runtime_dir=/run/strata\n');
    expect(output.join('')).toMatch(/renamed .*strata\.conf \(written by an older strata\) to zz-strata\.conf/);
    expect(output.join('')).toMatch(/kept .*zz-strata\.conf as it is/);
  });

  test('a copy identical to zz-strata.conf is removed; a different one is left for the admin, with a note', async () => {
    await installSlurm({ dryRun: false, prefix }, options());
    const current = readFileSync(join(dir(), 'zz-strata.conf'), 'utf8');
    older(current);
    output = [];
    await installSlurm({ dryRun: false, prefix }, options());
    expect(existsSync(join(dir(), 'strata.conf'))).toBe(false);
    older('required /elsewhere/strata.so\n');
    output = [];
    await installSlurm({ dryRun: false, prefix }, options());
    expect(readFileSync(join(dir(), 'strata.conf'), 'utf8')).toBe('required /elsewhere/strata.so\n');
    expect(readFileSync(join(dir(), 'zz-strata.conf'), 'utf8')).toBe(current);
    expect(output.join('')).toMatch(/strata\.conf \(from an older strata\) and .*zz-strata\.conf both exist: remove one/);
  });

  test('is kept where plugstack.conf includes it by name (that line orders it), and no zz-strata.conf is added', async () => {
    older('required /site/strata.so\n');
    writeFileSync(join(root, 'etc/slurm/slurm.conf'), 'ClusterName=x\n');
    writeFileSync(join(root, 'etc/slurm/plugstack.conf'), `required /other.so\ninclude ${dir()}/strata.conf\n`);
    await installSlurm({ dryRun: false, prefix }, { ...options(), slurmConf: join(root, 'etc/slurm/slurm.conf') });
    expect(readFileSync(join(dir(), 'strata.conf'), 'utf8')).toBe('required /site/strata.so\n');
    expect(existsSync(join(dir(), 'zz-strata.conf'))).toBe(false);
    expect(output.join('')).toMatch(/kept .*strata\.conf: .*plugstack\.conf includes it by name/);
    expect(output.join('')).not.toMatch(/needs the line/);
  });
});

test('a slurm.conf that is already set up needs nothing more', async () => {
  const lib = join(prefix, 'lib/strata');
  writeFileSync(join(root, 'etc/slurm/slurm.conf'), `ClusterName=x\nprolog=${lib}/prolog/slurm\nEpilog=${lib}/epilog/slurm  # strata\nPrologFlags=Contain,X11\n`);
  writeFileSync(join(root, 'etc/slurm/plugstack.conf'), `include ${root}/etc/slurm/plugstack.conf.d/*.conf\n`);
  await installSlurm({ dryRun: false, prefix }, options());
  expect(output.join('')).toMatch(/Prolog, Epilog and PrologFlags are set for strata/);
  expect(output.join('')).not.toMatch(/needs the line/);
});

test('parseSlurmConf: keys are case-insensitive, comments and node lines are ignored', () => {
  const settings = parseSlurmConf('# c\nPROLOG = /a # x\nNodeName=n1 Prolog=/no\nPrologFlags=Alloc\n');
  expect(settings.get('prolog')).toBe('/a');
  expect(settings.get('prologflags')).toBe('Alloc');
  expect(settings.has('nodename')).toBe(false);
});
