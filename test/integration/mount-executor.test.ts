// The mount executor (helper/strata-mount): a job start touches the shared store only a few times
// per layer (what a site's metadata servers notice), and without the helper no container is set up.

import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { importThreeLayerImage } from '../helpers/images.js';
import { jobsOn } from '../helpers/jobs.js';
import { expectNodeStateUnchanged, layerMountsOf, nodeState, type NodeState } from '../helpers/node-state.js';
import { makeSite, STRATA, type Site } from '../helpers/site.js';
import { storeOperations } from '../../bench/strace-count.mjs';

let site: Site;
let before: NodeState;
const jobs = jobsOn(() => site);
const prolog = (job: string, env: NodeJS.ProcessEnv = {}) => jobs.prolog(job, 'three:1', [], env);
const { epilog } = jobs;

beforeAll(async () => {
  before = nodeState();
  site = makeSite('executor');
  await importThreeLayerImage(site);
}, 120_000);

afterEach(async () => {
  for (const job of ['1', '2', '3']) await epilog(job);
  expectNodeStateUnchanged(before);
});

afterAll(() => site.remove());

test('a job start makes at most 3 metadata operations per layer on the store, plus one for the layer directory and a few for the image', () => {
  const trace = join(site.root, 'strace.txt');
  const traced = spawnSync('/usr/bin/strace', ['-f', '-qq', '-e', 'trace=%file', '-o', trace, process.execPath, STRATA, 'prolog', '--job', '1', '--uid', '1000', '--gid', '1000', '--image', 'three:1'], { env: site.env, encoding: 'utf8' });
  expect(traced.status).toBe(0);
  expect(layerMountsOf(site.runtime)).toHaveLength(3);
  const operations = storeOperations(readFileSync(trace, 'utf8'), site.store);
  expect(operations.length).toBeGreaterThan(0);
  // Per layer file: its check (statx), the executor's open and, for erofs (the default), the
  // mount's own lookup (mounted by its path, so that mountinfo names the file; squashfs mounts the
  // loop device instead); once per job the layer directory; per image: tag, manifest, config.
  const onLayers = operations.filter((operation) => operation.includes(`${site.store}/layers/`));
  expect(onLayers.length).toBeLessThanOrEqual(3 * 3 + 1);
  expect(operations.length - onLayers.length).toBeLessThanOrEqual(4);
});

test('without the mount helper a node cannot set up containers: the prolog fails as a node fault that says how to fix it, and leaves nothing', async () => {
  // util-linux would follow whatever a path in the job's rootfs names when it runs (docs/security.md).
  const result = await prolog('2', { STRATA_MOUNT_HELPER: 'none' });
  expect(result.code).not.toBe(0);
  expect(result.stderr).toContain('mount helper');
  expect(result.stderr).toContain('npm run build');
  expect(result.stderr).not.toMatch(/internal error|\n\s+at /);
  expect(layerMountsOf(site.runtime)).toHaveLength(0);
  expect((await epilog('2')).code).toBe(0);
});

test("the job user's name service lookup runs in the executor, beside its other requests, with a time limit that leaves it serving", () => {
  const helper = new URL('../../dist/helper/strata-mount', import.meta.url).pathname;
  const requests = [
    // Started, then other requests answered while it runs, then collected.
    'identity-start\t0\t0', 'unlock', 'identity-wait\t5000',
    // A lookup given no time is cut off (as a hung LDAP server would be); the next is answered.
    'identity-start\t0\t0', 'identity-wait\t0',
    'identity-start\t4199999\t4199999', 'identity-wait\t5000',
    // Nothing started: refused, not blocking.
    'identity-wait\t5000',
  ];
  const out = spawnSync(helper, [], { input: `${requests.join('\n')}\n`, encoding: 'utf8' }).stdout.split('\n');
  const text = (line: string) => Buffer.from(line.split('\t')[1], 'hex').toString('utf8');
  expect(out.slice(0, 2)).toEqual(['ok', 'ok']);
  // Then the whole group list, which bind sources are opened with.
  const rootGroups = spawnSync('id', ['-G', 'root'], { encoding: 'utf8' }).stdout.trim().split(' ').join(',');
  expect(text(out[2])).toBe(`${spawnSync('getent', ['passwd', '0'], { encoding: 'utf8' }).stdout}${spawnSync('getent', ['group', '0'], { encoding: 'utf8' }).stdout}@groups ${rootGroups}\n`);
  expect(out[3]).toBe('ok');
  expect(out[4]).toMatch(/^err\tETIMEDOUT\tname service lookup: /);
  // A uid and gid the node does not know: an empty passwd line, no group line, only its gid listed.
  expect(out[5]).toBe('ok');
  expect(text(out[6])).toBe('\n@groups 4199999\n');
  expect(out[7]).toMatch(/^err\tEINVAL\t/);
});

test('an executor released back to the pool keeps no lookup a failed set-up never collected: no zombie child, no lock', () => {
  const helper = new URL('../../dist/helper/strata-mount', import.meta.url).pathname;
  const lock = join(site.root, 'release.lock');
  // A run took the lock and started a lookup, then failed before collecting it; the pool releases it.
  const script = `exec 3> >(${helper}) ; pid=$!
    printf 'lock\\t${lock}\\t1000\\nidentity-start\\t0\\t0\\n' >&3; sleep 0.5
    echo "children before: $(ls /proc/$pid/task/*/children >/dev/null && cat /proc/$pid/task/*/children | wc -w)"
    printf 'release\\n' >&3; sleep 0.3
    echo "children after: $(cat /proc/$pid/task/*/children | wc -w)"
    flock -n ${lock} true && echo "lock free"
    exec 3>&-`;
  const out = spawnSync('/bin/bash', ['-c', script], { encoding: 'utf8' }).stdout;
  expect(out).toContain('children before: 1');
  expect(out).toContain('children after: 0');
  expect(out).toContain('lock free');
});

test('requests sent at once are answered in order, and a request that waits (the node lock) does not hold back the answers before it', async () => {
  const helper = new URL('../../dist/helper/strata-mount', import.meta.url).pathname;
  const lock = join(site.root, 'batch.lock');
  const holder = spawn('/usr/bin/flock', [lock, '/bin/sleep', '1.5'], { stdio: 'ignore' });
  const holderGone = new Promise((resolve) => holder.on('exit', resolve));
  await new Promise((resolve) => setTimeout(resolve, 300));
  const executor = spawn(helper, [], { stdio: ['pipe', 'pipe', 'ignore'] });
  const started = performance.now();
  const arrivals: { ms: number; text: string }[] = [];
  const answered = () => arrivals.map((arrival) => arrival.text).join('').split('\n').filter(Boolean).length;
  // stdin stays open until every answer is in: a closed stdin means "the caller is gone".
  executor.stdout.setEncoding('utf8').on('data', (text: string) => {
    arrivals.push({ ms: performance.now() - started, text });
    if (answered() === 5) executor.stdin.end();
  });
  const missing = join(site.root, 'not-mounted');
  executor.stdin.write(`${[`umount\t${missing}\t0`, `umount\t${missing}\t0`, `lock\t${lock}\t10000`, 'unlock', `umount\t${missing}\t0`].join('\n')}\n`);
  await new Promise((resolve) => executor.on('exit', resolve));
  await holderGone;
  const replies = arrivals.map((arrival) => arrival.text).join('').split('\n').filter(Boolean);
  expect(replies.map((reply) => reply.split('\t')[0])).toEqual(['err', 'err', 'ok', 'ok', 'err']);
  expect(replies[0]).toMatch(/^err\tENOENT\tumount: /);
  // The two answers before the lock arrived while another process still held it.
  expect(arrivals[0].ms).toBeLessThan(1000);
  expect(arrivals[0].text.split('\n').filter(Boolean)).toHaveLength(2);
  expect(arrivals.at(-1)!.ms).toBeGreaterThan(1000);
});

test('a bind source is opened with the group list the request carries (the job lookup\'s), else with the name service\'s', () => {
  const helper = new URL('../../dist/helper/strata-mount', import.meta.url).pathname;
  // uid/gid 4242, unknown to the node: the name service gives it no other group.
  const source = join(site.root, 'group-4343-only');
  const rootfs = join(site.root, 'groups-rootfs');
  mkdirSync(source, { recursive: true });
  mkdirSync(rootfs, { recursive: true });
  chownSync(source, 0, 4343);
  chmodSync(source, 0o750);
  const bind = (target: string, groups?: string) => ['bind', source, rootfs, target, 16, 4242, 4242, '-', '-', ...(groups ? [groups] : [])].join('\t');
  try {
    const out = spawnSync(helper, [], { input: `${[bind('/with', '4242,4343'), bind('/without'), bind('/listed-without', '4242')].join('\n')}\n`, encoding: 'utf8' }).stdout.split('\n');
    expect(out[0]).toMatch(/^ok\t\d+$/);
    expect(out[1]).toMatch(/^err\tEACCES\t/);
    expect(out[2]).toMatch(/^err\tEACCES\t/);
  } finally {
    spawnSync('/usr/bin/umount', [join(rootfs, 'with')]);
  }
  expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(rootfs);
});

test('with the group list, the executor opens a source with the user\'s filesystem identity and is root again after it; what that identity would judge unlike the user is left to a child', async () => {
  const helper = new URL('../../dist/helper/strata-mount', import.meta.url).pathname;
  const base = join(site.root, 'fs-identity');
  const rootfs = join(base, 'rootfs');
  const path = (name: string) => join(base, name);
  mkdirSync(rootfs, { recursive: true });
  mkdirSync(path('root-only'), { mode: 0o700 });
  mkdirSync(path('search-only'), { mode: 0o711 });
  chmodSync(path('search-only'), 0o711);
  writeFileSync(path('search-only/file'), 'readable\n', { mode: 0o644 });
  writeFileSync(path('secret'), 'root only\n', { mode: 0o600 });
  mkdirSync(path('group-only'), { mode: 0o750 });
  chownSync(path('group-only'), 0, 4343);
  chmodSync(path('group-only'), 0o750);
  const executor = spawn(helper, [], { stdio: ['pipe', 'pipe', 'ignore'] });
  let text = '';
  executor.stdout.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
  const ask = async (source: string, target: string, uid: number, groups?: string) => {
    const before = text.split('\n').length;
    executor.stdin.write(`${['bind', source, rootfs, target, 16, uid, uid, '-', '-', ...(groups ? [groups] : [])].join('\t')}\n`);
    while (text.split('\n').length === before) await new Promise((resolve) => setTimeout(resolve, 5));
    const [status, value] = text.split('\n').at(-2)!.split('\t');
    return status === 'ok' ? 'ok' : value;
  };
  const identity = () => readFileSync(`/proc/${executor.pid}/status`, 'utf8').split('\n').filter((line) => /^(Uid|Gid|Groups|CapEff):/.test(line));
  const rootIdentity = identity();
  try {
    // Through the user's filesystem identity: their permissions, their groups.
    expect(await ask(path('group-only'), '/group', 4242, '4242,4343')).toBe('ok');
    expect(await ask(path('group-only'), '/group-not', 4242, '4242')).toBe('EACCES');
    expect(await ask(path('root-only'), '/root-only', 4242, '4242')).toBe('EACCES');
    expect(await ask(path('secret'), '/secret', 4242, '4242')).toBe('EACCES');
    expect(await ask(path('search-only'), '/search-only', 4242, '4242')).toBe('EACCES');
    expect(await ask(path('search-only/file'), '/file', 4242, '4242')).toBe('ok');
    expect(await ask(path('missing'), '/missing', 4242, '4242')).toBe('ENOENT');
    // Root's again: root's own sources open, and the process shows root's ids, groups, capabilities.
    expect(await ask(path('root-only'), '/root-only', 0)).toBe('ok');
    expect(identity()).toEqual(rootIdentity);
    // A magic link and procfs are the child's to judge: the same answer with and without the list.
    for (const source of ['/proc/self/cwd', `/proc/${process.pid}/cwd`, `/proc/${process.pid}/task`]) {
      expect({ source, answer: await ask(source, `/m${source.replaceAll('/', '-')}`, 4242, '4242') }).toEqual({ source, answer: await ask(source, `/n${source.replaceAll('/', '-')}`, 4242) });
    }
    expect(identity()).toEqual(rootIdentity);
  } finally {
    executor.stdin.end();
    await new Promise((resolve) => executor.on('exit', resolve));
    for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((entry) => entry.split(' ')[4]).filter((point) => point?.startsWith(`${rootfs}/`)).reverse()) {
      spawnSync('/usr/bin/umount', [line]);
    }
  }
  expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(rootfs);
});
