// What an admin sees of the prolog and epilog on a node: one structured log line per run (job,
// node, phase, duration, result; no secrets), the Prometheus textfile counting runs across
// processes (concurrent ones included), and syslog lines through the real logger(1).
import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { importThreeLayerImage } from '../helpers/images.js';
import { expectNodeStateUnchanged, nodeState, type NodeState } from '../helpers/node-state.js';
import { makeSite, type Site } from '../helpers/site.js';
import { SyslogWriter } from '../../src/host/syslog.js';

let site: Site;
let before: NodeState;
let textfile: string;
const value = (series: string) => Number(new RegExp(`^${series.replace(/[{}"+.]/g, '\\$&')} (\\S+)$`, 'm').exec(readFileSync(textfile, 'utf8'))?.[1] ?? NaN);
const logLines = () => readFileSync(site.logFile, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);

beforeAll(async () => {
  before = nodeState();
  site = makeSite('observe');
  textfile = join(site.root, 'textfile/strata.prom');
  appendFileSync(site.configPath, `metrics:\n  textfile: ${textfile}\n`);
  await importThreeLayerImage(site);
}, 120_000);

afterAll(() => {
  site.remove();
  expectNodeStateUnchanged(before);
});

test('a prolog and an epilog: one log line each, and the textfile counts them', async () => {
  const secret = 'hunter2-do-not-log';
  const prolog = await site.run(['prolog', '--job', '7', '--uid', '1000', '--gid', '1000', '--image', 'three:1', '--timings'], { env: { STRATA_AUTH_TOKEN: secret } });
  expect(prolog.code).toBe(0);
  // --timings shows what recording the sample cost.
  const metricsMs = Number(/^ {2}metrics +([\d.]+)$/m.exec(prolog.stderr)?.[1]);
  expect(metricsMs).toBeGreaterThanOrEqual(0);
  process.stdout.write(`metrics sample cost in the prolog: ${metricsMs} ms\n`);
  expect((await site.run(['epilog', '--job', '7'])).code).toBe(0);

  const [set, torn] = logLines().filter((line) => line.job === '7');
  expect(set).toMatchObject({ level: 'info', phase: 'prolog', job: '7', result: 'ready', layers: 3, node: expect.any(String), durationMs: expect.any(Number) });
  expect(torn).toMatchObject({ level: 'info', phase: 'epilog', job: '7', result: 'ok', durationMs: expect.any(Number) });
  expect(readFileSync(site.logFile, 'utf8')).not.toContain(secret);

  expect(value('strata_runs_total{phase="prolog",result="ready"}')).toBe(1);
  expect(value('strata_runs_total{phase="epilog",result="ok"}')).toBe(1);
  expect(value('strata_layers_total')).toBe(3);
  expect(value('strata_duration_seconds_count{phase="prolog"}')).toBe(1);
  expect(value('strata_last_duration_seconds{phase="prolog"}')).toBeCloseTo((set.durationMs as number) / 1000, 2);
});

test('a user error is counted as such, and concurrent epilogs lose no increment', async () => {
  const bad = await site.run(['prolog', '--job', '8', '--uid', '1000', '--gid', '1000', '--image', 'missing:1']);
  expect(bad.code).toBe(0);
  expect(value('strata_runs_total{phase="prolog",result="user-error"}')).toBe(1);
  const okBefore = value('strata_runs_total{phase="epilog",result="ok"}');
  const jobs = ['8', ...Array.from({ length: 11 }, (_, i) => `c${i}`)];
  const results = await Promise.all(jobs.map((job) => site.run(['epilog', '--job', job])));
  expect(results.map((r) => r.code)).toEqual(jobs.map(() => 0));
  expect(value('strata_runs_total{phase="epilog",result="ok"}')).toBe(okBefore + jobs.length);
  expect(value('strata_duration_seconds_count{phase="epilog"}')).toBe(okBefore + jobs.length);
  expect(existsSync(join(site.runtime, 'metrics.lock'))).toBe(false);
}, 60_000);

test('syslog: each line goes to the socket as one datagram with its priority, tag strata', async () => {
  const socket = join(site.root, 'log.sock');
  // A syslog daemon stand-in: a Unix datagram socket (Node has none), printing what arrives.
  const listener = spawn('python3', ['-c', `
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(sys.argv[1]); print('ready', flush=True)
for _ in range(2): print(s.recv(65536).decode(), flush=True)
`, socket], { stdio: ['ignore', 'pipe', 'inherit'] });
  let received = '';
  listener.stdout.on('data', (chunk) => (received += chunk));
  await new Promise<void>((resolve) => listener.stdout.once('data', () => resolve()));
  const writer = new SyslogWriter(socket);
  writer.write('warn', '{"message":"job set-up failed","job":"9"}');
  writer.write('info', '{"message":"two\nlines"}');
  await writer.close();
  await new Promise((resolve) => listener.once('close', resolve));
  const [first, second] = received.split('\n').slice(1);
  expect(first).toMatch(/^<28>.* strata\[\d+\]: \{"message":"job set-up failed","job":"9"\}$/);
  expect(second).toMatch(/^<30>.* strata\[\d+\]: \{"message":"two lines"\}$/);
});
