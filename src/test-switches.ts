// Every test-only switch strata reads from its environment, in one place, so that production code
// names what it does rather than how the tests steer it. None is ever set in production; unset,
// each costs one environment lookup.
//   STRATA_FAULT_KILL, STRATA_FAULT_KILL_EPILOG  SIGKILL around a journalled step (kill tests)
//   STRATA_AGENT_FAULT_KILL                      the same, in the node agent only (its kill test)
//   STRATA_TEST_MAX_LOOPS                        pretend loop devices run out (fault tests)
//   STRATA_TEST_LFS                              a stand-in for lfs(1) (no Lustre client here)
//   STRATA_MOUNT_HELPER                          `none`: as if the mount helper were not built;
//                                                a path: that helper instead of the built one
// The mount helper (root's, started with an empty environment) reads none: its one test switch is
// compile-time, in a test build named by STRATA_MOUNT_HELPER (-DSTRATA_TEST_EROFS_ENOTBLK: erofs is
// refused from a file as before Linux 6.12; scripts/helper-build.mjs).

import { currentEnv } from './host/job-context.js';

// Fault injection for the kill tests (test/faults, test/integration/kill.test.ts): the variable
// names a step of a journal-driven phase and the instant at which this process SIGKILLs itself, as
// a scheduler's timeout would.

export interface FaultPoint {
  /** 1-based step number. */
  index: number;
  when: 'before' | 'after';
}

/** `N:before|after` from the named variable, or undefined. */
export function faultPoint(variable: string, env: NodeJS.ProcessEnv = currentEnv()): FaultPoint | undefined {
  const match = /^(\d+):(before|after)$/.exec(env[variable] ?? '');
  return match ? { index: Number(match[1]), when: match[2] as FaultPoint['when'] } : undefined;
}

/** SIGKILL this process if `fault` names step `index` at instant `when`. */
export function killIfFault(fault: FaultPoint | undefined, index: number, when: FaultPoint['when']): void {
  if (fault && fault.index === index && fault.when === when) process.kill(process.pid, 'SIGKILL');
}

/**
 * STRATA_TEST_MAX_LOOPS=N makes a layer mount fail, exactly as util-linux reports running out of
 * loop devices, once N loop devices are bound to files in the layer's store directory: the fault
 * tests run out of loop devices without exhausting the machine's real ones (which others share).
 */
export function simulatedLoopShortage(file: string, target: string, boundInDir: () => number): string | undefined {
  const max = currentEnv().STRATA_TEST_MAX_LOOPS;
  if (max === undefined || !/^\d+$/.test(max) || boundInDir() < Number(max)) return undefined;
  return `mount: ${target}: failed to setup loop device for ${file}.\n`;
}

/** STRATA_TEST_LFS: this machine has no Lustre client; the tests name a stand-in that follows lfs-setstripe(1). */
export const lfsOverride = (): string | undefined => currentEnv().STRATA_TEST_LFS;

/**
 * STRATA_MOUNT_HELPER: null for `none` (strata behaves as on a machine where the helper could not
 * be built: util-linux where there is a fallback, E_NO_HELPER where there is none), a path to run
 * that helper instead of the built one, undefined when unset. Read from the process's own
 * environment, not a request's: the helper is found once per process and shared by its requests.
 */
export function mountHelperOverride(env: NodeJS.ProcessEnv = process.env): string | null | undefined {
  const chosen = env.STRATA_MOUNT_HELPER;
  return chosen === 'none' ? null : chosen || undefined;
}

/**
 * The environment a node-agent request runs with: STRATA_AGENT_FAULT_KILL becomes the run's
 * STRATA_FAULT_KILL and the front-end's own fault switches are dropped, so that the agent's kill
 * test kills the agent only and the front-end's fallback then runs to the end.
 */
export function agentRunEnv(env: Record<string, string>): Record<string, string> {
  const { STRATA_AGENT_FAULT_KILL: agentFault, STRATA_FAULT_KILL: _prolog, STRATA_FAULT_KILL_EPILOG: _epilog, ...rest } = env;
  return agentFault ? { ...rest, STRATA_FAULT_KILL: agentFault } : rest;
}
