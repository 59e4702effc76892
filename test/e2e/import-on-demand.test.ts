// Import on first use through the real cluster (issue 16): an ordinary user submits with an image
// in Pyxis's syntax (`REGISTRY#NAME:TAG`) that the store does not have; the SPANK plugin's
// `strata resolve` on the login host (head) imports it into the user's ~USER/ namespace from a real
// registry with token auth, with the user's enroot credentials, and the job runs in it. Two submits
// at once import it once; progress is drawn on the submitter's terminal only; with
// import.on_demand off the submission is refused with one line.
//
// The registry and its token server (test/helpers/registry.ts, as in the integration tests) run on
// this machine's 127.0.0.1 and are forwarded to head's own 127.0.0.1 at the same ports, so one
// reference (and one token realm) works for skopeo here and for strata on head.

import { chownSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { markerImage, writeLayout } from '../helpers/oci.js';
import { push, startRegistry, startTokenServer, type Registry, type TokenServer } from '../helpers/registry.js';
import { DIR, forwardToHost, importImage, on, readOutput, sbatch, STORE, strata, USER, useCleanCluster, waitForJob, withUserImports, workDir, type Run } from './cluster.js';

const ROOT = join(DIR, 'on-demand-registry');
/** The user's home: their enroot credentials file (the plugin runs `strata resolve` with the submitter's environment). */
const HOME = join(DIR, 'work', 'on-demand-home');
const ON_DEMAND = '  user_imports: true\n  on_demand: true\n';

let tokens: TokenServer;
let registry: Registry;
let reg: string;
const forwards: (() => Promise<void>)[] = [];

useCleanCluster(async () => {
  // A store with a site image in it, as on any site (an empty store reads as "not mounted").
  await importImage('on-demand-base:1');
  rmSync(ROOT, { recursive: true, force: true });
  mkdirSync(ROOT, { recursive: true });
  const layout = join(ROOT, 'layout');
  writeLayout(layout, ['first', 'race', 'refused'].map(markerImage));
  tokens = await startTokenServer(ROOT, { alice: 'wonderland' });
  registry = await startRegistry(join(ROOT, 'reg'), { kind: 'token', realm: tokens.realm, service: tokens.service, issuer: tokens.issuer, certPath: tokens.certPath });
  reg = registry.host;
  for (const name of ['first', 'race', 'refused']) await push(`oci:${layout}:${name}`, `docker://${reg}/e2e/${name}:1`, ['--dest-creds', 'alice:wonderland']);
  for (const port of [Number(reg.split(':')[1]), Number(new URL(tokens.realm).port)]) forwards.push(await forwardToHost('head', port));
  rmSync(HOME, { recursive: true, force: true });
  mkdirSync(join(HOME, '.config/enroot'), { recursive: true, mode: 0o700 });
  writeFileSync(join(HOME, '.config/enroot/.credentials'), 'machine 127.0.0.1 login alice password wonderland\n', { mode: 0o600 });
  for (const path of [HOME, join(HOME, '.config'), join(HOME, '.config/enroot'), join(HOME, '.config/enroot/.credentials')]) chownSync(path, USER.uid, USER.gid);
  tokens.requests.length = 0; // the pushes'
}, 300_000);

afterAll(async () => {
  for (const stop of forwards) await stop();
  await registry?.stop();
  await tokens?.stop();
  // The user's images go again (their files at the next `strata gc`).
  const imported = reg ? ['first', 'race'].filter((name) => existsSync(tagFile(name))) : [];
  if (imported.length) expect(await strata(['rm', ...imported.map((name) => `~${USER.name}/${reg}/e2e/${name}:1`)])).toMatchObject({ code: 0 });
  // The user's import lock directory on head (its own /tmp).
  await on('head', ['rm', '-rf', `/tmp/strata-${USER.uid}`]);
  rmSync(ROOT, { recursive: true, force: true });
  rmSync(HOME, { recursive: true, force: true });
}, 60_000);

/** A command on head as the test user, with their HOME (and so their credentials). */
const asUser = (dir: string, args: string[], timeoutMs?: number): Promise<Run> => on('head', ['env', `HOME=${HOME}`, ...args], { user: true, cwd: dir, timeoutMs });
const tagFile = (name: string) => join(STORE, 'tags', `~${USER.name}/${reg}/e2e/${name}`, '@1');
const pulls = (name: string) => tokens.requests.filter((request) => request.scope === `repository:e2e/${name}:pull`);
/** What a terminal showed, line by line (carriage returns split the redrawn progress line). */
const terminalLines = (text: string) =>
  text
    .split(/\r?\n|\r/)
    .map((line) => line.replace(/\x1b\[K/g, ''))
    .filter(Boolean);
const escape = (text: string) => text.replace(/[.#]/g, '\\$&');

test('srun with a registry image not in the store: imported on first use as the user, quietly in a pipe; the job runs; later submits use it', () =>
  withUserImports(ON_DEMAND, async () => {
    const dir = workDir('on-demand-first');
    const ref = `${reg}#e2e/first:1`;
    // srun's stderr is a pipe here: nothing of the import is shown, only the job's output.
    expect(await asUser(dir, ['srun', '-N1', `--container-image=${ref}`, 'cat', '/etc/marker'])).toEqual({ code: 0, stdout: 'first\n', stderr: '' });
    expect(pulls('first')).toEqual([{ scope: 'repository:e2e/first:pull', user: 'alice' }]);
    expect(existsSync(tagFile('first'))).toBe(true);
    expect(existsSync(join(STORE, 'tags', `${reg}/e2e/first`, '@1'))).toBe(false); // not a site image

    // Now in the store: pinned from it, the registry not asked (sbatch, docker:// form this time).
    tokens.requests.length = 0;
    const out = join(dir, 'out.txt');
    const submitted = await sbatch(dir, ['-N1', '-o', out, `--container-image=docker://${reg}/e2e/first:1`, '--wrap', 'cat /etc/marker']);
    expect({ code: submitted.code, stderr: submitted.stderr }).toEqual({ code: 0, stderr: '' });
    expect((await waitForJob(submitted.jobId!)).state).toBe('COMPLETED');
    expect(readOutput(out)).toBe('first\n');
    expect(tokens.requests).toEqual([]);
  }), 180_000);

test("two submits at once import the image once, each showing progress on the submitter's terminal; both jobs run", () =>
  withUserImports(ON_DEMAND, async () => {
    const dir = workDir('on-demand-race');
    const ref = `${reg}#e2e/race:1`;
    // Each srun on a terminal of its own (script(1)'s pty): the plugin hands it to `strata resolve`.
    const onTerminal = () => asUser(dir, ['script', '-qefc', `srun -N1 --container-image='${ref}' cat /etc/marker`, '/dev/null'], 180_000);
    const [a, b] = await Promise.all([onTerminal(), onTerminal()]);
    expect([a.code, b.code]).toEqual([0, 0]);
    const [linesA, linesB] = [terminalLines(a.stdout), terminalLines(b.stdout)];
    const importing = `strata: importing ${ref} (docker://${reg}/e2e/race:1) into ~${USER.name}/${reg}/e2e/race:1`;
    const imported = new RegExp(`^strata: imported ${escape(ref)} as ~${USER.name}/${escape(reg)}/e2e/race:1 \\(sha256:[0-9a-f]{64}\\)$`);
    for (const lines of [linesA, linesB]) {
      expect(lines).toContainEqual(importing); // the second waits for the first's import, and says so
      expect(lines[lines.length - 1]).toBe('race'); // the job's output, after the import
    }
    // One of them imported: its terminal shows the progress line redrawn (layers, bytes) and the summary.
    expect([...linesA, ...linesB].filter((line) => imported.test(line))).toHaveLength(1);
    const progress = new RegExp(`^importing docker://${escape(reg)}/e2e/race:1: layers [0-2]/2, `);
    expect([linesA, linesB].filter((lines) => lines.some((line) => progress.test(line)))).toHaveLength(1);
    expect(pulls('race')).toHaveLength(1); // one import asked the registry, the other found it in the store
    expect(existsSync(tagFile('race'))).toBe(true);
  }), 240_000);

test('import.on_demand off: sbatch is refused with one line saying how to get the image; nothing is fetched', () =>
  withUserImports('  user_imports: true\n', async () => {
    const dir = workDir('on-demand-off');
    const submitted = await sbatch(dir, ['-N1', `--container-image=${reg}#e2e/refused:1`, '--wrap', 'cat /etc/marker']);
    expect(submitted.code).not.toBe(0);
    expect(submitted.jobId).toBeUndefined();
    // Exactly one line, the store's "unknown image" and how to get it (the plugin adds nothing).
    const source = escape(`docker://${reg}/e2e/refused:1`);
    const name = escape(`${reg}/e2e/refused:1`);
    expect(submitted.stderr).toMatch(
      new RegExp(`^sbatch: error: strata: [^\\n]*"${escape(`${reg}#e2e/refused:1`)}"[^\\n]*; this site does not import images on first use; ask your admin to import it \\(strata import ${source} --tag ${name}\\) or import it yourself: strata import ${source} --tag ~/${name}\\n$`),
    );
    expect(pulls('refused')).toEqual([]);
    expect(existsSync(tagFile('refused'))).toBe(false);
  }), 60_000);
