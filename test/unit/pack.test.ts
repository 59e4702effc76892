// `npm pack` makes the tarball an admin installs from: the bundled entry points (with the mount
// helper and the Slurm front-ends, and their sources for other architectures), the SPANK plugin's source and Makefile (built
// on site, against the site's Slurm), etc/ and the man pages; no object files or sources of the
// library. Unpacked, it runs and the plugin builds.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('../..', import.meta.url).pathname;

interface PackEntry {
  filename: string;
  files: { path: string; mode: number }[];
}

const packed = (): PackEntry => JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json', '--loglevel=error'], { cwd: root, encoding: 'utf8' }))[0];

test('the tarball has dist/, the plugin source, etc/, man pages and docs, and no build products', () => {
  const files = packed().files.map((f) => f.path);
  for (const path of ['dist/bin/strata.js', 'dist/prolog/slurm.js', 'dist/epilog/slurm.js', 'dist/prolog/slurm', 'dist/epilog/slurm', 'front/strata-front.c', 'spank/Makefile', 'spank/plugin.c', 'helper/strata-mount.c', 'spank/strata.lds', 'etc/strata.yaml',
    'etc/slurm/slurm.conf.strata', 'etc/slurm/strata-healthcheck.sh', 'etc/systemd/strata-doctor.service', 'etc/systemd/strata-doctor.timer', 'man/strata.1', 'man/strata.yaml.5', 'docs/install.md', 'package.json']) {
    expect(files).toContain(path);
  }
  expect(files.some((f) => f.startsWith('dist/chunks/'))).toBe(true);
  expect(files.filter((f) => /\.(o|d|so)$/.test(f) || f.startsWith('src/') || f.startsWith('test/') || f.startsWith('node_modules/'))).toEqual([]);
});

test('unpacked, the CLI runs from it and the plugin builds from it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'strata-pack-'));
  try {
    const name = execFileSync('npm', ['pack', '--loglevel=error', '--pack-destination', dir], { cwd: root, encoding: 'utf8' }).trim().split('\n').pop()!;
    execFileSync('tar', ['-xzf', join(dir, name), '-C', dir]);
    const cli = spawnSync(join(dir, 'package/dist/bin/strata.js'), ['config', 'check'], { encoding: 'utf8', env: { PATH: '/usr/bin:/bin', STRATA_CONFIG: join(dir, 'package/etc/strata.yaml') } });
    expect(cli.stderr).toBe('');
    expect(cli.stdout).toMatch(/^# effective configuration/);
    if (spawnSync('make', ['-s', '-C', join(dir, 'package/spank'), 'check-headers']).status === 0) {
      execFileSync('make', ['-s', '-C', join(dir, 'package/spank')]);
      expect(existsSync(join(dir, 'package/spank/strata.so'))).toBe(true);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 60_000);
