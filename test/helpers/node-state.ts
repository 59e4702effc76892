// The machine-wide state a test must leave as it found it: loop devices and mounts are global to
// the kernel (loops) or the mount namespace, so a leak here outlives the test run.

import { execFileSync } from 'node:child_process';

export interface NodeState {
  loops: string;
  mounts: string;
}

export function nodeState(): NodeState {
  return {
    loops: execFileSync('/usr/sbin/losetup', ['-a'], { encoding: 'utf8' }).split('\n').filter(Boolean).sort().join('\n'),
    mounts: execFileSync('/usr/bin/findmnt', ['-rn', '-o', 'TARGET,SOURCE,FSTYPE'], { encoding: 'utf8' }).split('\n').filter(Boolean).sort().join('\n'),
  };
}

/** Throws (failing the test) if loops or mounts differ from `before`, saying what changed. */
export function expectNodeStateUnchanged(before: NodeState): void {
  const after = nodeState();
  const diff = (a: string, b: string) => {
    const left = new Set(a.split('\n'));
    const right = new Set(b.split('\n'));
    return [...[...right].filter((line) => !left.has(line)).map((line) => `+ ${line}`), ...[...left].filter((line) => !right.has(line)).map((line) => `- ${line}`)];
  };
  const changes = [...diff(before.loops, after.loops), ...diff(before.mounts, after.mounts)];
  if (changes.length) throw new Error(`node state changed (losetup -a / findmnt):\n${changes.join('\n')}`);
}

/** Loop devices bound to files under `dir`. */
export function loopsFor(dir: string): string[] {
  return execFileSync('/usr/sbin/losetup', ['-a'], { encoding: 'utf8' }).split('\n').filter((line) => line.includes(dir));
}

/** Mounts at a node's layer mount points (`<runtime>/l/*`): one per layer in use, whatever its format. */
export function layerMountsOf(runtime: string): string[] {
  return execFileSync('/usr/bin/findmnt', ['-rn', '-o', 'TARGET,SOURCE,FSTYPE'], { encoding: 'utf8' }).split('\n').filter((line) => line.startsWith(`${runtime}/l/`));
}
