// Running strata's PBS and Torque entry points exactly as the daemons do, since no PBS package is
// available here: the PBS hook through the stand-in `pbs` module (test/pbs/standin), Torque's
// prologue/epilogue with pbs_mom's argv and environment and stdin closed.

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO, type RunOutput } from './site.js';

export const HOOK = join(REPO, 'etc/pbs/strata_hook.py');
const STANDIN = join(REPO, 'test/pbs/standin');

export interface HookResult {
  outcome: 'accept' | 'reject' | 'hook-error';
  message: string | null;
  failure: string | null;
  job: { deleted: boolean; rerun: boolean; Variable_List: Record<string, string> } | null;
  vnodes: Record<string, { state: string; comment: string | null }>;
  log: string[];
}

/** A MoM (or the server): its hook configuration file, as `strata install-pbs` writes it. */
export interface PbsDaemon {
  name: string;
  hookConfig: string;
  runtime: string;
}

export function pbsDaemon(dir: string, name: string, strataConfig: string, runtime: string): PbsDaemon {
  const hookConfig = join(dir, `${name}-hook.json`);
  writeFileSync(hookConfig, JSON.stringify({ node: process.execPath, lib: join(REPO, 'dist'), config: strataConfig, runtime_dir: runtime, reconcile_grace_seconds: 120 }));
  return { name, hookConfig, runtime };
}

/** Run one hook event on `daemon`; `event` follows run_hook.py's description. */
export async function runHook(daemon: PbsDaemon, event: Record<string, unknown>, env: NodeJS.ProcessEnv = {}): Promise<HookResult> {
  const dir = mkdtempSync('/tmp/strata-hook-');
  const eventFile = join(dir, 'event.json');
  const resultFile = join(dir, 'result.json');
  writeFileSync(eventFile, JSON.stringify({ hook_config: daemon.hookConfig, local_node: daemon.name, vnodes: [daemon.name], fail_action: ['offline_vnodes'], ...event }));
  // pbs_mom's environment (pbs_environment): a PATH and little else.
  const run = await runProcess('python3', [join(STANDIN, 'run_hook.py'), HOOK, eventFile, resultFile], {
    PATH: process.env.PATH,
    PYTHONPATH: STANDIN,
    PYTHONDONTWRITEBYTECODE: '1',
    ...env,
  });
  if (run.code !== 0) throw new Error(`run_hook.py failed: ${run.stderr}`);
  return JSON.parse(readFileSync(resultFile, 'utf8')) as HookResult;
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
