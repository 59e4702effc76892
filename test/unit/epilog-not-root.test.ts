// The epilog started without root (Slurm 24.11's RunInJob race: see NOT_ROOT_HINT in
// src/cli/commands/epilog.ts) says so and fails, before it reads the configuration or touches
// anything; it does not call the node's first EACCES an internal error.

import { jest } from '@jest/globals';
import { epilogCommand } from '../../src/cli/commands/epilog.js';

test('an epilog running as a user fails with the reason, reading nothing', async () => {
  const getuid = jest.spyOn(process, 'getuid').mockReturnValue(65534);
  const err: string[] = [];
  try {
    // No STRATA_CONFIG: had it read the configuration, the message would be about that file.
    const code = await epilogCommand({ job: '4' }, { STRATA_CONFIG: '/nonexistent/strata.yaml' }, { out: () => undefined, err: (text) => err.push(text) });
    expect(code).toBe(1);
  } finally {
    getuid.mockRestore();
  }
  expect(err.join('')).toMatch(/^strata: epilog: job 4: runs as uid 65534, not root; nothing was torn down\. The epilog must run as root\. With PrologFlags=RunInJob, Slurm before 25\.11\.4 .*ticket 24439/);
});
