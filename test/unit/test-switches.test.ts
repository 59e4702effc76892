// The test switches (src/test-switches.ts) read as the tests that set them expect.

import { mountHelperOverride } from '../../src/test-switches.js';

test('STRATA_MOUNT_HELPER: none disables the helper, a path replaces it, unset or empty keeps the built one', () => {
  expect(mountHelperOverride({ STRATA_MOUNT_HELPER: 'none' })).toBeNull();
  expect(mountHelperOverride({ STRATA_MOUNT_HELPER: '/opt/strata-mount' })).toBe('/opt/strata-mount');
  expect(mountHelperOverride({ STRATA_MOUNT_HELPER: '' })).toBeUndefined();
  expect(mountHelperOverride({})).toBeUndefined();
});
