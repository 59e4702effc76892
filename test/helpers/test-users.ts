// Local accounts a test needs (strata-alice, a store owner, ...): made with useradd when the
// machine lacks them, and removed again by the test that made them, so no test depends on
// another having run first.

import { execFileSync, spawnSync } from 'node:child_process';

export interface TestUsers {
  /** The account `name`, made if missing (`system`: a system account); its uid and gid. */
  ensure(name: string, options?: { system?: boolean }): { uid: number; gid: number };
  /** Removes the accounts this set made (in afterAll). */
  removeMade(): void;
}

export function testUsers(): TestUsers {
  const made: string[] = [];
  return {
    ensure(name, { system = false } = {}) {
      if (spawnSync('/usr/bin/id', [name]).status !== 0) {
        execFileSync('/usr/sbin/useradd', [...(system ? ['--system'] : []), '--no-create-home', '--shell', '/usr/sbin/nologin', name]);
        made.push(name);
      }
      return { uid: Number(execFileSync('/usr/bin/id', ['-u', name], { encoding: 'utf8' })), gid: Number(execFileSync('/usr/bin/id', ['-g', name], { encoding: 'utf8' })) };
    },
    removeMade() {
      for (const name of made.splice(0)) spawnSync('/usr/sbin/userdel', [name]);
    },
  };
}
