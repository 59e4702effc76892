// A throw-away strata site for one test file: its own store, runtime dir and config, and the
// compiled CLI run against it exactly as an admin or the scheduler would run it.

import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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

export function makeSite(name: string, extraConfig = ''): Site {
  const root = mkdtempSync(join(tmpdir(), `strata-${name}-`));
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
    remove: () => rmSync(root, { recursive: true, force: true }),
  };
}

export function runNode(args: string[], env: NodeJS.ProcessEnv): Promise<RunOutput> {
  return new Promise((resolvePromise) => {
    const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
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
