// What `strata gc` removes: mark from tags, recent untaggings, recent files and this node's jobs.

import { planGc, type GcInventory, type StoredFile } from '../../src/store/gc.js';
import { isStalePartial, partialName, partialWriter, PARTIAL_MAX_AGE_MS } from '../../src/store/partials.js';

const DAY = 86_400_000;
const NOW = 100 * DAY;
const d = (c: string) => `sha256:${c.repeat(64)}`;
const file = (digest: string, ageDays: number): StoredFile => ({ digest, path: `/s/${digest.slice(7, 9)}`, size: 10, mtimeMs: NOW - ageDays * DAY });

/** Two images sharing layer L1: A (tagged or not) = config CA + L1, L2; B = config CB + L1, L3. */
function inventory(overrides: Partial<GcInventory> = {}): GcInventory {
  return {
    now: NOW,
    graceMs: 7 * DAY,
    tagged: [d('a')],
    pinnedManifests: [],
    mountedLayers: [],
    blobs: [file(d('a'), 30), file(d('c'), 30), file(d('b'), 30), file(d('e'), 30)],
    layers: [file(d('1'), 30), file(d('2'), 30), file(d('3'), 30)],
    diffIds: [
      { diffId: d('7'), layer: d('1'), path: '/s/diff1' },
      { diffId: d('8'), layer: d('3'), path: '/s/diff3' },
      { diffId: d('9'), layer: d('6'), path: '/s/dangling' },
    ],
    untaggedAt: new Map(),
    manifests: new Map([
      [d('a'), { config: d('c'), layers: [d('1'), d('2')] }],
      [d('b'), { config: d('e'), layers: [d('1'), d('3')] }],
    ]),
    ...overrides,
  };
}
const digests = (files: StoredFile[]) => files.map((f) => f.digest).sort();

test('an old untagged image goes, except what a tagged image shares; dangling pointers too', () => {
  const plan = planGc(inventory());
  expect(digests(plan.removeLayers)).toEqual([d('3')]);
  expect(digests(plan.removeBlobs)).toEqual([d('b'), d('e')]);
  expect(plan.removePointers.sort()).toEqual(['/s/dangling', '/s/diff3']);
  expect(plan.keptImages).toBe(1);
});

test('an image untagged within the grace period stays, with its layers', () => {
  const plan = planGc(inventory({ untaggedAt: new Map([[d('b'), NOW - 2 * DAY]]) }));
  expect(plan.removeLayers).toEqual([]);
  expect(plan.removeBlobs).toEqual([]);
  expect(plan.keptImages).toBe(2);
  // After the grace period it goes, and so does its record.
  const later = planGc(inventory({ untaggedAt: new Map([[d('b'), NOW - 8 * DAY]]) }));
  expect(digests(later.removeBlobs)).toEqual([d('b'), d('e')]);
  expect(later.removeRecords).toEqual([d('b')]);
});

test('a job on this node pins its manifest; a mounted layer stays even if nothing names it', () => {
  const plan = planGc(inventory({ tagged: [], pinnedManifests: [d('b')], mountedLayers: [d('2')] }));
  expect(digests(plan.removeLayers)).toEqual([]);
  expect(digests(plan.removeBlobs)).toEqual([d('a'), d('c')]);
});

test('recent files nothing refers to yet (an import in progress) stay', () => {
  const plan = planGc(inventory({ tagged: [], layers: [file(d('1'), 30), file(d('2'), 0.01), file(d('3'), 30)], blobs: [file(d('a'), 30), file(d('c'), 0.01)] }));
  expect(digests(plan.removeLayers)).toEqual([d('1'), d('3')]);
  expect(digests(plan.removeBlobs)).toEqual([d('a')]);
});

test('partials: named by host and pid; stale when the writer here is gone, or when old', () => {
  const name = partialName('layer', 'node7', 4242);
  expect(name).toMatch(/^layer~node7~4242~[0-9a-f]{12}\.partial$/);
  expect(partialWriter(name)).toEqual({ host: 'node7', pid: 4242 });
  expect(partialWriter('layer-12-abc.partial')).toEqual({});
  // Another host's partial: only age tells.
  expect(isStalePartial(name, 1000, 'login1')).toBe(false);
  expect(isStalePartial(name, PARTIAL_MAX_AGE_MS + 1, 'login1')).toBe(true);
  // This host: a live writer (this very process) keeps it; a pid that cannot exist does not.
  expect(isStalePartial(partialName('layer', 'here', process.pid), 1000, 'here')).toBe(false);
  expect(isStalePartial(partialName('layer', 'here', 2 ** 22 + 7), 1000, 'here')).toBe(true);
});
