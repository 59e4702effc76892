// Hostile text inputs: image references, mount specs and configuration files. A corpus of known
// nasty cases plus a seeded fuzz run (bounded; see fuzz.ts). Each input gives a correct result or
// a one-line error of the right kind (user for references and mounts, node for config files);
// never another exception, and a result never names a path outside where it belongs.

import { posix } from 'node:path';
import { parseYaml } from '../../src/config/load.js';
import { validateConfig } from '../../src/config/validate.js';
import { parseMountRequests } from '../../src/runtime/job/request.js';
import { StoreLayout } from '../../src/store/layout.js';
import { parseImageRef } from '../../src/store/ref.js';
import { RUNS, SEED, expectCleanOutcome, mutateString, pick, prng, thrownBy } from './fuzz.js';

const REFS = [
  'pytorch:24.05', 'nvidia/cuda:12.4-devel', 'a/b/c/d:e', `sha256:${'a'.repeat(64)}`, `x@sha256:${'b'.repeat(64)}`,
  '../../etc:passwd', '/etc/passwd', 'a/../../b:c', 'a//b:c', './a:b', 'a:../b', 'a:b/c', 'A:B', 'a:' + 't'.repeat(200),
  'n'.repeat(5000), 'a\0b:c', 'a\nb:c', 'a b:c', ':tag', 'name:', '@', 'a@sha256:xyz', 'a@@b', 'sha256:' + 'g'.repeat(64),
  'a:b:c', 'é:1', 'a;rm -rf /:1', '$(id):1', '-rf:1', '.hidden:1', 'a..b:1', 'a/./b:1',
];

test('image references: a valid reference names a tag file inside the store, all else is a one-line user error', () => {
  const layout = new StoreLayout('/store');
  const random = prng(SEED);
  const inputs = [...REFS, ...Array.from({ length: RUNS }, () => mutateString(random, pick(random, REFS)))];
  let accepted = 0;
  for (const input of inputs) {
    let ref: ReturnType<typeof parseImageRef> | undefined;
    expectCleanOutcome('user', input, thrownBy(() => (ref = parseImageRef(input))));
    if (!ref) continue;
    accepted++;
    if (ref.name) {
      const path = layout.tagPath(ref.name, ref.tag ?? 'latest');
      expect({ input, path: posix.normalize(path) }).toEqual({ input, path });
      expect({ input, inside: path.startsWith('/store/tags/') && !ref.name.split('/').some((part) => part === '' || part === '.' || part === '..') }).toEqual({ input, inside: true });
    }
    if (ref.digest) expect(ref.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
  }
  // The corpus has valid references too: the fuzzer is not only testing the error path.
  expect(accepted).toBeGreaterThanOrEqual(5);
});

const MOUNTS = [
  '/lustre/proj:/data:ro', '/scratch', '/a:/b:rw,/c:/d', '/a:/etc', '/a:/', '/a:/proc/1', '/a:/sys', '/a:/dev/shm', '/a:/var',
  '/a:/run', '/a:/usr/lib', 'relative:/x', '/a:relative', '/a/../etc:/x', '/a:/x/../etc', '/a:/b:rx', '/a:/b:ro:extra', ',', '/a,,/b',
  '/a:/b/', '/a//b:/c//d/', '/a:/lib64', '/a:/' + 'x'.repeat(5000), '/a\0:/b', '/a\n:/b', '/a :/b', '/a:/b:RO', ':/b', '/a:',
];
const PROTECTED = ['/', '/proc', '/sys', '/dev', '/etc', '/usr', '/bin', '/sbin', '/lib', '/lib64', '/var', '/run'];

test('mount specs: results are absolute, normalised, never cover system paths; all else is a one-line user error', () => {
  const random = prng(SEED + 1);
  const inputs = [...MOUNTS, ...Array.from({ length: RUNS }, () => mutateString(random, pick(random, MOUNTS)))];
  let accepted = 0;
  for (const input of inputs) {
    let binds: ReturnType<typeof parseMountRequests> = [];
    expectCleanOutcome('user', input, thrownBy(() => (binds = parseMountRequests(input))));
    for (const bind of binds) {
      accepted++;
      for (const path of [bind.source, bind.target]) {
        expect({ input, path, ok: path.startsWith('/') && posix.normalize(path) === path && !path.split('/').includes('..') }).toEqual({ input, path, ok: true });
      }
      expect({ input, target: bind.target, covered: PROTECTED.includes(bind.target) || /^\/(proc|sys|dev)\//.test(bind.target) }).toEqual({ input, target: bind.target, covered: false });
    }
  }
  expect(accepted).toBeGreaterThanOrEqual(5);
});

const CONFIGS = [
  'store:\n  path: /lustre/strata\n',
  'upper:\n  max_size: 4G\n  default_size: 1G\n',
  'mounts:\n  - source: /scratch\n    readonly: no\n',
  'store: [1, 2]\n', 'upper:\n  max_size: -1\n', 'upper:\n  max_size: 99999999999999999999T\n', 'runtime_dir: relative\n',
  'runtime_dir: /run/a,b\n', 'mounts:\n  - target: /x\n', 'mounts: {a: 1}\n', 'unknown_key: 1\n', 'log:\n  level: loud\n',
  '- just\n- a list\n', '"a string"\n', 'a: &x [*x]\n', 'x: !!js/function "function(){}"\n', '{{{{', 'key: "unterminated\n',
  'store:\n  path: /s\nstore:\n  path: /t\n', `${'a:\n  '.repeat(200)}b: 1\n`, '\0\0\0', 'layers:\n  cache: 1\n', 'upper:\n  backing: [tmpfs]\n',
];

test('config files: YAML errors are one-line node errors; invalid settings are listed one per line; nothing throws', () => {
  const random = prng(SEED + 2);
  const inputs = [...CONFIGS, ...Array.from({ length: RUNS }, () => mutateString(random, pick(random, CONFIGS)))];
  let valid = 0;
  for (const text of inputs) {
    let raw: unknown;
    const error = thrownBy(() => (raw = parseYaml(text, '/etc/strata/strata.yaml')));
    expectCleanOutcome('node', text, error);
    if (error) continue;
    let result: ReturnType<typeof validateConfig> | undefined;
    expectCleanOutcome('node', text, thrownBy(() => (result = validateConfig(raw, '/etc/strata/strata.yaml'))));
    expect({ text, oneLineEach: result!.errors.every((line) => line.length > 0 && !line.includes('\n')) }).toEqual({ text, oneLineEach: true });
    expect({ text, either: Boolean(result!.config) !== result!.errors.length > 0 }).toEqual({ text, either: true });
    if (result!.config) {
      valid++;
      const config = result!.config;
      for (const path of [config.store.path, config.runtimeDir, config.upper.diskPath]) expect(path.startsWith('/')).toBe(true);
      expect(config.upper.defaultSize).toBeLessThanOrEqual(config.upper.maxSize);
    }
  }
  expect(valid).toBeGreaterThanOrEqual(3);
});
