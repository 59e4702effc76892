// Fault injection for the kill tests (test/faults, test/integration/kill.test.ts): an environment
// variable names a step of a journal-driven phase and the instant at which this process SIGKILLs
// itself, as a scheduler's timeout would. Unset (always, outside tests), it costs one env lookup.

export interface FaultPoint {
  /** 1-based step number. */
  index: number;
  when: 'before' | 'after';
}

/** `N:before|after` from the named variable, or undefined. */
export function faultPoint(variable: string, env: NodeJS.ProcessEnv = process.env): FaultPoint | undefined {
  const match = /^(\d+):(before|after)$/.exec(env[variable] ?? '');
  return match ? { index: Number(match[1]), when: match[2] as FaultPoint['when'] } : undefined;
}

/** SIGKILL this process if `fault` names step `index` at instant `when`. */
export function killIfFault(fault: FaultPoint | undefined, index: number, when: FaultPoint['when']): void {
  if (fault && fault.index === index && fault.when === when) process.kill(process.pid, 'SIGKILL');
}
