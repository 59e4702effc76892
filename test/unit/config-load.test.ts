import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { load } from 'js-yaml';
import { loadConfig, readConfig } from '../../src/config/load.js';
import { defaultConfig } from '../../src/config/validate.js';
import { configCheck } from '../../src/cli/commands/config-check.js';
import { StrataError } from '../../src/errors.js';

let dir: string;
let missingDefault: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'strata-config-'));
  missingDefault = join(dir, 'no-such-default.yaml');
});
afterAll(() => rm(dir, { recursive: true, force: true }));

async function file(name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

async function thrown(promise: Promise<unknown>): Promise<StrataError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(StrataError);
  return error as StrataError;
}

describe('loadConfig', () => {
  test('read for every request (the node agent): an edit of the file takes effect at the next read, and no reader changes what the next one gets', async () => {
    const path = await file('agent.yaml', 'store:\n  path: /srv/one\n');
    const env = { STRATA_CONFIG: path };
    const first = await loadConfig(env);
    expect(first.store.path).toBe('/srv/one');
    first.store.path = '/changed/by/a/caller';
    expect((await loadConfig(env)).store.path).toBe('/srv/one');
    await writeFile(path, 'store:\n  path: /srv/two\n');
    expect((await loadConfig(env)).store.path).toBe('/srv/two');
    await writeFile(path, 'store: [not, a, mapping]\n');
    await expect(loadConfig(env)).rejects.toThrow(/store/);
  });

  test('a missing file at the default path means the built-in defaults', async () => {
    const config = await loadConfig({}, { defaultPath: missingDefault });
    expect(config).toEqual(defaultConfig());
    expect(config.origin).toBe('built-in defaults');
  });

  test('the default path is read when it exists', async () => {
    const path = await file('default.yaml', 'upper:\n  backing: disk\n');
    const config = await loadConfig({}, { defaultPath: path });
    expect(config.origin).toBe(path);
    expect(config.upper.backing).toBe('disk');
  });

  test('STRATA_CONFIG overrides the default path', async () => {
    const defaultPath = await file('ignored.yaml', 'log:\n  level: error\n');
    const path = await file('override.yaml', 'store:\n  path: /lustre/strata\nupper:\n  max_size: 32G\nmounts:\n  - source: /scratch\n    readonly: no\n');
    const config = await loadConfig({ STRATA_CONFIG: path }, { defaultPath });
    expect(config.origin).toBe(path);
    expect(config.store.path).toBe('/lustre/strata');
    expect(config.upper.maxSize).toBe(32 * 2 ** 30);
    expect(config.log.level).toBe('info');
    expect(config.mounts).toEqual([{ source: '/scratch', target: '/scratch', readonly: false, optional: false }]);
  });

  test('a missing file named by STRATA_CONFIG is an error', async () => {
    const path = join(dir, 'missing.yaml');
    const error = await thrown(loadConfig({ STRATA_CONFIG: path }, { defaultPath: missingDefault }));
    expect(error).toMatchObject({ kind: 'node', code: 'E_CONFIG' });
    expect(error.message).toBe(`configuration file ${path} (named by STRATA_CONFIG) does not exist`);
    expect(error.summary).toContain('unset STRATA_CONFIG');
  });

  test('an empty STRATA_CONFIG counts as unset', async () => {
    expect((await loadConfig({ STRATA_CONFIG: '' }, { defaultPath: missingDefault })).origin).toBe('built-in defaults');
  });

  test('an empty file means all defaults, with the file as origin', async () => {
    const path = await file('empty.yaml', '# nothing here\n');
    expect(await loadConfig({ STRATA_CONFIG: path })).toEqual(defaultConfig(path));
  });

  test('a YAML syntax error is one line with line and column', async () => {
    const path = await file('broken.yaml', 'upper:\n  backing: tmpfs\n   max_size: 4G\n');
    const error = await thrown(loadConfig({ STRATA_CONFIG: path }));
    expect(error).toMatchObject({ kind: 'node', code: 'E_CONFIG' });
    expect(error.message).toMatch(new RegExp(`^YAML syntax error in ${path}:3:\\d+: \\S.*$`));
    expect(error.message).not.toContain('\n');
  });

  test('a duplicated key is a syntax error with its position', async () => {
    const path = await file('dup.yaml', 'log:\n  level: info\n  level: debug\n');
    const error = await thrown(loadConfig({ STRATA_CONFIG: path }));
    expect(error.message).toMatch(new RegExp(`^YAML syntax error in ${path}:3:\\d+: duplicated mapping key`));
  });

  test('custom YAML types are not accepted (core schema)', async () => {
    const path = await file('tag.yaml', 'store:\n  path: !!js/undefined\n');
    await thrown(loadConfig({ STRATA_CONFIG: path }));
  });

  test('validation problems are thrown as one error listing all of them', async () => {
    const path = await file('invalid.yaml', 'upper:\n  max_size: 12X\n  backing: ram\nlog:\n  levle: info\n');
    const error = await thrown(loadConfig({ STRATA_CONFIG: path }));
    expect(error).toMatchObject({ kind: 'node', code: 'E_CONFIG' });
    expect(error.message.split('\n')).toEqual([
      `invalid configuration in ${path} (3 problems):`,
      '  upper.backing: "ram" is not allowed; use one of tmpfs, disk',
      '  upper.max_size: "12X" is not a size; use a number of bytes or a size like 512M, 4G',
      '  log.levle: unknown key; did you mean log.level?',
    ]);
  });

  test('one problem is "1 problem"', async () => {
    const path = await file('one.yaml', 'runtime_dir: run\n');
    const error = await thrown(loadConfig({ STRATA_CONFIG: path }));
    expect(error.message.split('\n')[0]).toBe(`invalid configuration in ${path} (1 problem):`);
  });

  test('readConfig returns the problems instead of throwing', async () => {
    const path = await file('invalid2.yaml', 'upper:\n  default_size: 32G\n');
    const result = await readConfig({ STRATA_CONFIG: path });
    expect(result.config).toBeUndefined();
    expect(result.origin).toBe(path);
    expect(result.errors).toEqual(['upper.default_size: 32G is larger than upper.max_size (16G); use a size no larger than upper.max_size']);
  });
});

describe('configCheck', () => {
  async function run(args: { json?: boolean }, env: NodeJS.ProcessEnv) {
    let stdout = '';
    let stderr = '';
    const code = await configCheck(args, {
      env,
      loadOptions: { defaultPath: missingDefault },
      stdout: (t) => void (stdout += t),
      stderr: (t) => void (stderr += t),
    });
    return { code, stdout, stderr };
  }

  test('prints the effective config as YAML with its origin', async () => {
    const path = await file('check.yaml', 'upper:\n  max_size: 32768M\nmounts:\n  - source: /scratch\n');
    const { code, stdout, stderr } = await run({}, { STRATA_CONFIG: path });
    expect([code, stderr]).toEqual([0, '']);
    expect(stdout.split('\n')[0]).toBe(`# effective configuration, from ${path}`);
    const printed = load(stdout) as Record<string, any>;
    expect(printed.upper).toEqual({ backing: 'tmpfs', disk_path: '/var/tmp/strata', default_size: '1G', max_size: '32G' });
    expect(printed.mounts).toEqual([{ source: '/scratch', target: '/scratch', readonly: true, optional: false }]);
    // What it prints is itself a valid configuration with the same meaning.
    const again = await file('again.yaml', stdout);
    const reread = await run({ json: true }, { STRATA_CONFIG: again });
    const first = await run({ json: true }, { STRATA_CONFIG: path });
    expect({ ...JSON.parse(reread.stdout), origin: '' }).toEqual({ ...JSON.parse(first.stdout), origin: '' });
  });

  test('built-in defaults are named as such', async () => {
    const { code, stdout } = await run({}, {});
    expect(code).toBe(0);
    expect(stdout.split('\n')[0]).toBe(`# effective configuration, from built-in defaults (${missingDefault} does not exist)`);
  });

  test('--json prints the Config (bytes, camelCase, origin)', async () => {
    const { code, stdout } = await run({ json: true }, {});
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toEqual(defaultConfig());
  });

  test('problems go to stderr with exit 1', async () => {
    const path = await file('bad.yaml', 'upper:\n  max_size: 12X\nbogus: 1\n');
    const { code, stdout, stderr } = await run({}, { STRATA_CONFIG: path });
    expect([code, stdout]).toEqual([1, '']);
    expect(stderr).toBe(
      `invalid configuration in ${path} (2 problems):\n` +
        '  bogus: unknown key; known keys: store, runtime_dir, upper, layers, mounts, container, slurm_client, log, metrics, import, devices\n' +
        '  upper.max_size: "12X" is not a size; use a number of bytes or a size like 512M, 4G\n',
    );
    const json = await run({ json: true }, { STRATA_CONFIG: path });
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stderr)).toEqual({ origin: path, errors: expect.arrayContaining([expect.stringMatching(/^bogus: /)]) });
  });

  test('a missing explicit file or a syntax error is reported with exit 1', async () => {
    const missing = await run({}, { STRATA_CONFIG: join(dir, 'nope.yaml') });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^strata: configuration file .*nope\.yaml \(named by STRATA_CONFIG\) does not exist; /);
    const path = await file('syntax.yaml', 'mounts: [\n');
    const syntax = await run({ json: true }, { STRATA_CONFIG: path });
    expect(syntax.code).toBe(1);
    expect(JSON.parse(syntax.stderr).errors[0]).toMatch(/^YAML syntax error in /);
  });
});
