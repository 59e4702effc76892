// PrologFlags as Slurm 22.05 to 25.x read them: which settings already run the prolog on every node
// at allocation (so install-slurm and the doctor ask for nothing more).

import { prologRunsAtAllocation } from '../../src/scheduler/slurm-conf.js';

test.each([
  ['Alloc', true],
  ['Contain', true],
  ['X11', true],
  ['ForceRequeueOnFail', true], // 23.02+
  ['RunInJob', true], // 24.05+
  ['Serial, runinjob', true],
  ['Serial', false],
  ['NoHold,DeferBatch', false],
  ['', false],
  [undefined, false],
])('PrologFlags=%s runs the prolog at allocation: %s', (flags, expected) => {
  expect(prologRunsAtAllocation(flags)).toBe(expected);
});
