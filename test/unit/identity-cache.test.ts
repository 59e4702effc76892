// The node agent keeps the name service's answer for a user's next jobs, for a minute.

import { IdentityCache, startIdentityLookup } from '../../src/host/nss.js';

const alice = { passwd: 'alice:x:1000:1000::/home/alice:/bin/sh', groups: ['alice:x:1000:', 'gpu:x:44:alice'] };

test("an answer serves the same user and group for the time to live, counted from when it was asked", () => {
  let clock = 0;
  const cache = new IdentityCache(60_000, () => clock);
  cache.set(1000, 1000, alice, 0);
  clock = 59_999;
  expect(cache.get(1000, 1000)).toBe(alice);
  // Another primary group (sg, newgrp, a job's --gid) is another question.
  expect(cache.get(1000, 44)).toBeUndefined();
  clock = 60_000;
  expect(cache.get(1000, 1000)).toBeUndefined();
});

test('an answer asked before a slow lookup ages from the question; stale answers of other users are not given', () => {
  let clock = 10_000;
  const cache = new IdentityCache(60_000, () => clock);
  cache.set(2000, 2000, { groups: [] }, 0);
  clock = 64_000;
  cache.set(1000, 1000, alice, 5_000);
  expect(cache.get(1000, 1000)).toBe(alice);
  clock = 65_000;
  expect(cache.get(1000, 1000)).toBeUndefined();
  expect(cache.get(2000, 2000)).toBeUndefined();
});

test('a kept answer is given without asking the mount executor', async () => {
  const previous = process.env.STRATA_MOUNT_HELPER;
  // No executor at all: asking it would throw (E_NO_HELPER).
  process.env.STRATA_MOUNT_HELPER = 'none';
  try {
    const cache = new IdentityCache(60_000, () => 0);
    cache.set(1000, 1000, alice, 0);
    await expect(startIdentityLookup(1000, 1000, cache)()).resolves.toBe(alice);
    expect(() => startIdentityLookup(1001, 1001, cache)).toThrow(/mount helper/);
  } finally {
    if (previous === undefined) delete process.env.STRATA_MOUNT_HELPER;
    else process.env.STRATA_MOUNT_HELPER = previous;
  }
});
