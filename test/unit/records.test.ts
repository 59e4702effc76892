import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ENTRY_VERSION, openJournal, parseEntry, readEntry, readJournal, writeEntry, type JournalRecord } from '../../src/runtime/job/records.js';
import { StrataError } from '../../src/errors.js';

let dir: string;
let path: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'strata-journal-'));
  path = join(dir, 'journal');
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

const RECORDS: JournalRecord[] = [
  { op: 'begin', jobId: '42', uid: 1000, image: `sha256:${'a'.repeat(64)}`, at: '2026-01-01T00:00:00.000Z' },
  { op: 'upper-tmpfs', target: '/run/strata/jobs/42/upper', sizeBytes: 2 ** 30, uid: 1000, gid: 1000 },
  { op: 'mkdir', path: '/run/strata/jobs/42/rootfs', mode: 0o755 },
  {
    op: 'rootfs',
    target: '/run/strata/jobs/42/rootfs',
    layerDir: '/run/strata/l',
    layers: [{ id: 'aaaaaaaaaaaa', digest: `sha256:${'a'.repeat(64)}`, file: '/store/layers/sha256/aaa.sqfs', mountPoint: '/run/strata/l/aaaaaaaaaaaa' }],
    options: 'lowerdir=aaaaaaaaaaaa,upperdir=/run/strata/jobs/42/upper/u,workdir=/run/strata/jobs/42/upper/w',
  },
  { op: 'bind', rootfs: '/run/strata/jobs/42/rootfs', source: '/home/al ice', target: '/run/strata/jobs/42/rootfs/home/al ice', readonly: false, optional: true, recursive: false },
];

/** Append records the way a set-up does: one writer, open for all of them. */
function appendJournal(path: string, ...records: JournalRecord[]) {
  const journal = openJournal(path);
  try {
    for (const record of records) journal.append(record);
  } finally {
    journal.close();
  }
}

describe('journal', () => {
  test('records read back as appended, in order', () => {
    appendJournal(path, ...RECORDS);
    expect(readJournal(path)).toEqual(RECORDS);
  });

  test('one JSON object per line', () => {
    appendJournal(path, ...RECORDS);
    const lines = readFileSync(path, 'utf8').split('\n');
    expect(lines).toHaveLength(RECORDS.length + 1);
    expect(lines[lines.length - 1]).toBe('');
    expect(JSON.parse(lines[2])).toEqual(RECORDS[2]);
  });

  test('the journal is readable by root only', () => {
    appendJournal(path, RECORDS[0]);
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });

  test('appending keeps what is there (a re-run prolog continues the journal)', () => {
    appendJournal(path, RECORDS[0]);
    expect(readJournal(path)).toHaveLength(1);
    appendJournal(path, RECORDS[1]);
    expect(readJournal(path)).toEqual(RECORDS.slice(0, 2));
  });

  test('a torn last line (killed mid-write) is ignored', () => {
    appendJournal(path, ...RECORDS.slice(0, 3));
    const torn = JSON.stringify(RECORDS[3]).slice(0, 40);
    appendFileSync(path, torn);
    expect(readJournal(path)).toEqual(RECORDS.slice(0, 3));
  });

  test('a torn line that is only a prefix of "{" is ignored too', () => {
    appendJournal(path, RECORDS[0]);
    appendFileSync(path, '{');
    expect(readJournal(path)).toEqual([RECORDS[0]]);
  });

  test('a missing journal (or missing job directory) reads as empty', () => {
    expect(readJournal(path)).toEqual([]);
    expect(readJournal(join(dir, 'no-such-job', 'journal'))).toEqual([]);
  });

  test('an empty journal reads as empty', () => {
    writeFileSync(path, '');
    expect(readJournal(path)).toEqual([]);
  });

  test('errors other than "missing" are not hidden', () => {
    mkdirSync(join(dir, 'is-a-dir'));
    expect(() => readJournal(join(dir, 'is-a-dir'))).toThrow();
  });
});

describe('entry file versions', () => {
  const ENTRY = { rootfs: '/run/strata/jobs/42/rootfs', uid: 1000, gid: 1000, env: ['PATH=/usr/bin:/bin'], workdir: '/' };
  const entryError = (text: string): StrataError => {
    try {
      parseEntry(text, '/run/strata/jobs/42/entry.json');
    } catch (error) {
      return error as StrataError;
    }
    throw new Error('parseEntry accepted it');
  };

  test('written with this version, read back as written', () => {
    const path = join(dir, 'entry.json');
    writeEntry(path, ENTRY as never);
    expect(JSON.parse(readFileSync(path, 'utf8')).v).toBe(ENTRY_VERSION);
    expect(readEntry(path)).toEqual({ v: ENTRY_VERSION, ...ENTRY });
  });

  test('an entry from before versions (no v) reads as version 1', () => {
    expect(parseEntry(JSON.stringify(ENTRY), 'entry.json')).toEqual({ ...ENTRY, v: 1 });
  });

  test('an entry of this version reads', () => {
    expect(parseEntry(JSON.stringify({ v: ENTRY_VERSION, ...ENTRY }), 'entry.json').v).toBe(ENTRY_VERSION);
  });

  test('an entry from a newer strata is refused, saying so and what to do, not called damaged', () => {
    const error = entryError(JSON.stringify({ v: ENTRY_VERSION + 1, ...ENTRY }));
    expect(error.code).toBe('E_ENTRY_VERSION');
    expect(error.message).toBe(`/run/strata/jobs/42/entry.json was written by a newer strata (entry format ${ENTRY_VERSION + 1}, this one reads ${ENTRY_VERSION})`);
    expect(error.hint).toMatch(/finish the strata upgrade/);
  });

  test('a version no strata writes (0, negative, fractional, not a number) is refused as the plugin refuses it', () => {
    for (const v of [0, -1, 1.5, '1']) {
      const error = entryError(JSON.stringify({ ...ENTRY, v }));
      expect(error.code).toBe('E_ENTRY_VERSION');
      expect(error.message).toMatch(/written by no strata release \(entry format .*, this one reads 1\)/);
    }
  });

  test('a damaged entry is damaged whatever its version', () => {
    expect(entryError('{"v":1,').code).toBe('E_ENTRY_DAMAGED');
    expect(entryError(JSON.stringify({ v: 1, uid: 1000 })).code).toBe('E_ENTRY_DAMAGED');
  });
});
