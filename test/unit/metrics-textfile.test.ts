// The Prometheus textfile: counters add up across runs through the file itself, the histogram is
// cumulative, and a stale lock of a killed run does not stop the next one.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addRun, parseSamples, render, BUCKETS } from '../../src/metrics/textfile.js';
import { recordRun } from '../../src/metrics/record.js';

const run = (text: string, sample: Parameters<typeof addRun>[1]) => render(addRun(parseSamples(text), sample));
const value = (text: string, series: string) => Number(new RegExp(`^${series.replace(/[{}"+.]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1]);

test('counters, histogram and gauges after a few runs', () => {
  let text = run('', { phase: 'prolog', result: 'ready', durationMs: 80, layers: 3, now: 1000 });
  text = run(text, { phase: 'prolog', result: 'ready', durationMs: 400, layers: 5, now: 1001 });
  text = run(text, { phase: 'prolog', result: 'user-error', durationMs: 20, now: 1002 });
  text = run(text, { phase: 'epilog', result: 'ok', durationMs: 30, now: 1003 });
  const expected: Record<string, number> = {
    'strata_runs_total{phase="prolog",result="ready"}': 2,
    'strata_runs_total{phase="prolog",result="user-error"}': 1,
    'strata_runs_total{phase="epilog",result="ok"}': 1,
    'strata_duration_seconds_bucket{phase="prolog",le="0.025"}': 1,
    'strata_duration_seconds_bucket{phase="prolog",le="0.1"}': 2,
    'strata_duration_seconds_bucket{phase="prolog",le="0.5"}': 3,
    'strata_duration_seconds_bucket{phase="prolog",le="+Inf"}': 3,
    'strata_duration_seconds_count{phase="prolog"}': 3,
    'strata_layers_total': 8,
    'strata_last_layers': 5,
    'strata_last_run_timestamp_seconds{phase="prolog"}': 1002,
    'strata_last_duration_seconds{phase="epilog"}': 0.03,
  };
  for (const [series, want] of Object.entries(expected)) expect([series, value(text, series)]).toEqual([series, want]);
  expect(value(text, 'strata_duration_seconds_sum{phase="prolog"}')).toBeCloseTo(0.5);
});

test('text format: HELP and TYPE once per family, buckets in order, a stable file', () => {
  const text = run('', { phase: 'prolog', result: 'ready', durationMs: 80, layers: 1, now: 1 });
  const lines = text.trimEnd().split('\n');
  expect(lines.filter((l) => l === '# TYPE strata_duration_seconds histogram')).toHaveLength(1);
  const les = lines.filter((l) => l.startsWith('strata_duration_seconds_bucket')).map((l) => /le="([^"]+)"/.exec(l)![1]);
  expect(les).toEqual([...BUCKETS.map(String), '+Inf']);
  for (const line of lines) expect(line).toMatch(/^(# (HELP|TYPE) strata_\w+ .+|strata_\w+(\{[^}]*\})? [\d.e+-]+)$/);
  expect(render(parseSamples(text))).toBe(text);
});

describe('recordRun', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'strata-metrics-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const config = () => ({ runtimeDir: join(dir, 'run'), metrics: { textfile: join(dir, 'prom/strata.prom') } });

  test('does nothing when not configured', () => {
    expect(recordRun({ runtimeDir: join(dir, 'run'), metrics: { textfile: '' } }, { phase: 'epilog', result: 'ok', durationMs: 1 })).toBeUndefined();
    expect(existsSync(join(dir, 'run'))).toBe(false);
  });

  test('creates the file, adds to it, and leaves no lock or temporary file', () => {
    expect(recordRun(config(), { phase: 'epilog', result: 'ok', durationMs: 1 })).toBeUndefined();
    expect(recordRun(config(), { phase: 'epilog', result: 'ok', durationMs: 1 })).toBeUndefined();
    expect(value(readFileSync(config().metrics.textfile, 'utf8'), 'strata_runs_total{phase="epilog",result="ok"}')).toBe(2);
    expect(existsSync(join(dir, 'run/metrics.lock'))).toBe(false);
    expect(readdirSync(join(dir, 'prom'))).toEqual(['strata.prom']);
  });

  test('takes over the lock of a dead holder; gives up (and says so) on a live one', () => {
    mkdirSync(join(dir, 'run'));
    writeFileSync(join(dir, 'run/metrics.lock'), '999999999');
    expect(recordRun(config(), { phase: 'epilog', result: 'ok', durationMs: 1 })).toBeUndefined();
    writeFileSync(join(dir, 'run/metrics.lock'), String(process.pid));
    expect(recordRun(config(), { phase: 'epilog', result: 'ok', durationMs: 1 })).toMatch(/metrics lock .* busy/);
    expect(value(readFileSync(config().metrics.textfile, 'utf8'), 'strata_runs_total{phase="epilog",result="ok"}')).toBe(1);
  });

  test('an unwritable textfile is reported, not thrown', () => {
    writeFileSync(join(dir, 'prom'), 'a file, not a directory');
    expect(recordRun(config(), { phase: 'epilog', result: 'ok', durationMs: 1 })).toMatch(/cannot update .*strata\.prom: (ENOTDIR|EEXIST)/);
  });
});
