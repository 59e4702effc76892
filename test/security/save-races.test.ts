// Race test for --container-save: the epilog reads a job's writable layer, which a process of the
// user may still change. While the user swaps (renameat2 RENAME_EXCHANGE, as fast as one core
// allows) a directory and a file of their layer with symbolic links to host paths, the walker
// (helper/upper-walk.c, started by root) runs again and again. It must only ever record the link
// itself, never what is behind it: neither a file the user could read anyway (no following) nor a
// root-only one (the walker reads with the user's identity).

import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chownSync, chmodSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeSite, REPO, type Site } from '../helpers/site.js';
import { parseRecordLine } from '../../src/runtime/save/upper-records.js';

const USER = 1000;
const RACE_MS = 4000;
const WALKER = join(REPO, 'dist/helper/strata-upper-walk');

let site: Site;
let racer: string;
let upper: string;

/** Host content that must never appear in a saved layer. */
const READABLE_MARKER = 'host-readable-marker';
const SECRET_MARKER = 'host-secret-marker';

function userOwned(path: string) {
  execFileSync('chown', ['-h', `${USER}:${USER}`, path]);
}

beforeAll(() => {
  site = makeSite('save-races');
  racer = join(site.root, 'racer');
  execFileSync('cc', ['-O2', '-o', racer, join(REPO, 'test/security/racer.c')]);
  const host = join(site.root, 'host');
  mkdirSync(host, { mode: 0o755 });
  writeFileSync(join(host, 'readable'), `${READABLE_MARKER}\n`, { mode: 0o644 });
  writeFileSync(join(host, 'secret'), `${SECRET_MARKER}\n`, { mode: 0o600 });
  mkdirSync(join(host, 'private'), { mode: 0o700 });
  writeFileSync(join(host, 'private', 'inside'), `${SECRET_MARKER}\n`, { mode: 0o644 });
  // The user's layer: a directory and a file, and links to the host beside them to swap in.
  upper = join(site.root, 'upper');
  mkdirSync(join(upper, 'dir'), { recursive: true });
  writeFileSync(join(upper, 'dir', 'mine'), 'mine\n');
  writeFileSync(join(upper, 'file'), 'mine\n');
  symlinkSync(host, join(upper, 'dir-link'));
  symlinkSync(join(host, 'readable'), join(upper, 'file-link'));
  symlinkSync(join(host, 'secret'), join(upper, 'secret-link'));
  symlinkSync(join(host, 'private'), join(upper, 'private-link'));
  for (const path of ['', 'dir', 'dir/mine', 'file', 'dir-link', 'file-link', 'secret-link', 'private-link']) userOwned(join(upper, path));
  chmodSync(upper, 0o755);
  chownSync(upper, USER, USER);
});

afterAll(() => site.remove());

function race(a: string, b: string) {
  const child = spawn('/usr/bin/setpriv', [`--reuid=${USER}`, `--regid=${USER}`, '--clear-groups', racer, a, b, String(RACE_MS)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (chunk) => (out += chunk));
  return new Promise<number>((resolve) => child.on('close', () => resolve(Number(out.trim()) || 0)));
}

/** Walks the layer until the racers stop; returns how many walks completed and what was recorded. */
async function walkWhileRacing(racers: Promise<number>[]) {
  let running = true;
  const swaps = Promise.all(racers).then((counts) => {
    running = false;
    return counts;
  });
  let walks = 0;
  const recorded = new Set<string>();
  while (running) {
    const run = spawnSync(WALKER, [upper, String(USER), String(USER)], { maxBuffer: 1 << 24 });
    const text = run.stdout.toString('latin1');
    expect(text).not.toContain(READABLE_MARKER);
    expect(text).not.toContain(SECRET_MARKER);
    for (const line of text.split('\n').filter((l) => /^[DFSHWPXEZ]( |$)/.test(l))) {
      const record = parseRecordLine(line);
      if ('path' in record) recorded.add(`${line[0]} ${record.path}`);
    }
    walks++;
    await new Promise((resolve) => setImmediate(resolve));
  }
  return { walks, swaps: await swaps, recorded };
}

test('links swapped in for a directory and for files while the layer is read are recorded as links, never followed', async () => {
  const { walks, swaps, recorded } = await walkWhileRacing([
    race(join(upper, 'dir'), join(upper, 'dir-link')),
    race(join(upper, 'file'), join(upper, 'file-link')),
  ]);
  expect(walks).toBeGreaterThan(20);
  expect(swaps.every((count) => count > 1000)).toBe(true);
  // Whatever was at each name, the walker saw only the user's own entries or the links themselves,
  // or stopped the walk (E: the entry changed under it; the save then fails, which is the user's doing).
  for (const entry of [...recorded].filter((e) => !e.startsWith('E '))) expect(['D .', 'D dir', 'S dir', 'F dir/mine', 'F file', 'S file', 'S dir-link', 'D dir-link', 'F dir-link/mine', 'S file-link', 'F file-link', 'S secret-link', 'S private-link', 'F file-link']).toContain(entry);
}, 30_000);

test('a root-only host file is never read, even through a link the user swaps in', async () => {
  const { walks, recorded } = await walkWhileRacing([race(join(upper, 'file'), join(upper, 'secret-link')), race(join(upper, 'dir'), join(upper, 'private-link'))]);
  expect(walks).toBeGreaterThan(20);
  expect([...recorded].some((entry) => entry.startsWith('S '))).toBe(true);
}, 30_000);
