// A throw-away strata site for one test file: its own store, runtime dir and config, and the
// compiled CLI run against it exactly as an admin or the scheduler would run it.

import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const REPO = resolve(new URL('../..', import.meta.url).pathname);
export const STRATA = join(REPO, 'dist/bin/strata.js');

export interface Site {
  root: string;
  store: string;
  runtime: string;
  configPath: string;
  logFile: string;
  env: NodeJS.ProcessEnv;
  run(args: string[], options?: { env?: NodeJS.ProcessEnv }): Promise<RunOutput>;
  remove(): void;
}

export interface RunOutput {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Site configuration for tests about squashfs layers and the loop devices they are mounted
 * through: the default layer format is uncompressed erofs, mounted from its file without a loop
 * device (import.compression: none), so such tests ask for zstd squashfs, which stays supported.
 */
export const SQUASHFS_LAYERS = 'import:\n  compression: zstd\n';

export function makeSite(name: string, extraConfig = ''): Site {
  const root = mkdtempSync(join(tmpdir(), `strata-${name}-`));
  // Like /run and a shared filesystem: other users may traverse it (job users' mount sources are
  // checked as those users).
  chmodSync(root, 0o755);
  const store = join(root, 'store');
  const runtime = join(root, 'run');
  const logFile = join(root, 'strata.log');
  mkdirSync(store);
  const configPath = join(root, 'strata.yaml');
  writeFileSync(configPath, `store:\n  path: ${store}\nruntime_dir: ${runtime}\nlog:\n  file: ${logFile}\n  level: debug\n${extraConfig}`);
  const env = { PATH: process.env.PATH, STRATA_CONFIG: configPath };
  return {
    root,
    store,
    runtime,
    configPath,
    logFile,
    env,
    run: (args, options = {}) => runNode([STRATA, ...args], { ...env, ...options.env }),
    remove: () => removeSite(root),
  };
}

export function runNode(args: string[], env: NodeJS.ProcessEnv): Promise<RunOutput> {
  return runCommand(process.execPath, args, { env });
}

/** Runs a command to its end, collecting its output (stdin is /dev/null). */
export function runCommand(command: string, args: string[], options: { env: NodeJS.ProcessEnv; cwd?: string }): Promise<RunOutput> {
  return new Promise((resolvePromise) => {
    const child = spawn(command, args, { env: options.env, cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('close', (code, signal) => resolvePromise({ code, signal, stdout, stderr }));
  });
}

/** Build a small root filesystem tree (busybox plus the given files) for importing. */
export function makeTree(dir: string, files: Record<string, string>, busybox = true): string {
  mkdirSync(dir, { recursive: true });
  if (busybox) {
    mkdirSync(join(dir, 'bin'), { recursive: true });
    spawnSync('cp', ['/bin/busybox', join(dir, 'bin/busybox')]);
    for (const applet of ['sh', 'cat', 'ls', 'echo', 'dd', 'id', 'touch', 'stat']) spawnSync('ln', ['-sf', 'busybox', join(dir, 'bin', applet)]);
    mkdirSync(join(dir, 'etc'), { recursive: true });
  }
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
  return dir;
}

/**
 * Delete a site, but never through a mount: a recursive delete that crossed a job's bind mount
 * would delete the host's files. Anything still mounted below is unmounted first; if that fails,
 * nothing is deleted and the test run fails loudly.
 */
function removeSite(root: string) {
  const mounted = () => readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((line) => line.split(' ')[4]).filter((target) => target?.startsWith(`${root}/`));
  for (const target of mounted().sort((a, b) => b.length - a.length)) spawnSync('/usr/bin/umount', ['--recursive', target]);
  const left = mounted();
  if (left.length) throw new Error(`not deleting ${root}: still mounted below it:\n${left.join('\n')}`);
  rmSync(root, { recursive: true, force: true });
}
