// Running strata's PBS and Torque entry points exactly as the daemons do, since no PBS package is
// available here: the PBS hook through the stand-in `pbs` module (test/pbs/standin), Torque's
// prologue/epilogue with pbs_mom's argv and environment and stdin closed.

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO, type RunOutput } from './site.js';

// STRATA_TEST_PBS_HOOK runs the tests against another hook file (e.g. an old one, to see them fail).
export const HOOK = process.env.STRATA_TEST_PBS_HOOK || join(REPO, 'etc/pbs/strata_hook.py');
const STANDIN = join(REPO, 'test/pbs/standin');
// The system's Python 3 (Debian python3, from scripts/setup), as a MoM's hooks get one: not a
// version manager's shim, which costs a second per start.
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

export interface HookResult {
  outcome: 'accept' | 'reject' | 'hook-error';
  message: string | null;
  failure: string | null;
  job: { deleted: boolean; rerun: boolean; Variable_List: Record<string, string> } | null;
  vnodes: Record<string, { state: string; comment: string | null }>;
  log: string[];
  /** execjob_launch: what the job's program printed and returned, as the MoM ran it after the hook. */
  launched: { status: number; stdout: string; stderr: string } | null;
}

/** A MoM (or the server): its hook configuration file, as `strata install-pbs` writes it, and its PBS_HOME. */
export interface PbsDaemon {
  name: string;
  hookConfig: string;
  runtime: string;
  home: string;
}

export function pbsDaemon(dir: string, name: string, strataConfig: string, runtime: string): PbsDaemon {
  const hookConfig = join(dir, `${name}-hook.json`);
  writeFileSync(hookConfig, JSON.stringify({ node: process.execPath, lib: join(REPO, 'dist'), config: strataConfig, runtime_dir: runtime, reconcile_grace_seconds: 120 }));
  return { name, hookConfig, runtime, home: join(dir, `pbs_home-${name}`) };
}

/**
 * The server's resourcedef as a site that followed the first docs has it: container_image
 * without flag m, so it never reaches a MoM hook. Pass `resourcedef` in an event to change it.
 */
export const RESOURCEDEF_WITHOUT_M = { container_image: '' };

/** Run one hook event on `daemon`; `event` follows run_hook.py's description. `hook`: another hook file. */
export async function runHook(daemon: PbsDaemon, event: Record<string, unknown>, env: NodeJS.ProcessEnv = {}, hook = HOOK): Promise<HookResult> {
  const dir = mkdtempSync('/tmp/strata-hook-');
  const eventFile = join(dir, 'event.json');
  const resultFile = join(dir, 'result.json');
  writeFileSync(
    eventFile,
    JSON.stringify({ hook_config: daemon.hookConfig, local_node: daemon.name, vnodes: [daemon.name], fail_action: ['offline_vnodes'], pbs_home: daemon.home, resourcedef: RESOURCEDEF_WITHOUT_M, ...event }),
  );
  // The daemon's environment, as a real MoM gave its hooks: PATH=/bin:/usr/bin and nothing of ours.
  const run = await runProcess(PYTHON, [join(STANDIN, 'run_hook.py'), hook, eventFile, resultFile], { PATH: '/bin:/usr/bin', ...env });
  if (run.code !== 0) throw new Error(`run_hook.py failed: ${run.stderr}`);
  const result = JSON.parse(readFileSync(resultFile, 'utf8')) as HookResult;
  rmSync(dir, { recursive: true, force: true });
  return result;
}

/** Run a program with exactly `env`, stdin closed. */
export function runProcess(program: string, args: string[], env: NodeJS.ProcessEnv): Promise<RunOutput> {
  return new Promise((resolve) => {
    const child = spawn(program, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/**
 * A Torque mom_priv script (a symlink to the compiled entry point), with pbs_mom's arguments
 * and environment (torque src/resmom/prolog.c setup_pelog_environment): no PATH.
 */
export function runTorque(script: 'prolog/torque' | 'prolog/torque-parallel' | 'epilog/torque', args: string[], env: NodeJS.ProcessEnv): Promise<RunOutput> {
  return runProcess(join(REPO, 'dist', `${script}.js`), args, env);
}
