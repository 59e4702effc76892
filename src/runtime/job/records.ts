// The job's on-disk records, and the only code that reads or writes them: the journal (what the
// prolog did, for the epilog to undo) and the entry file (how to enter the rootfs: read by
// `strata exec`, `strata gc`, node status and, in C, the SPANK plugin's spank/json.c, which skips
// fields it does not know, such as `devices` and `additionalGids`; it reads `entrypoint`,
// `runEntrypoint`, `remapRoot` and `devicePaths`, which an older plugin skips: no version change
// for them). A field an older reader must not skip needs a new ENTRY_VERSION: both readers refuse
// a version they do not know (STRATA_ENTRY_VERSION in spank/json.h; test/unit/c-constants.test.ts).
//
// Both live on node-local tmpfs and outlive a package upgrade in the middle of a job, so both
// carry a version. The journal's version is in its `begin` record:
//   1 (no `v`): binds were journalled with their resolved host path, preceded by a `mountpoints`
//     record, and `readonly` was a read-only bind of the rootfs onto itself;
//   2: a bind's target is its container path, `readonly` flips the overlay mount's own flag.
//     CDI devices add `device-bind`, `device-node`, `symlink` and `chmod` records (no version
//     change: device binds are mounts under the job dir, the rest lives in the job's upper, so an
//     older epilog that skips the records still removes everything).
//   3: --container-remap-root: `rootfs` may carry `idmap` (idmapped clones of the layer mounts in
//     the job's `l/`, which the overlay stacks instead of the shared mounts) and is followed by a
//     `put-file` record (a file in the job's upper, removed with it). An older epilog unmounts the
//     clones in its final sweep, after releasing layers: those layers then wait for `strata node gc`.
// Teardown does not depend on these differences: it unmounts what mountinfo shows under the job's
// directory, verified by mount id; records only order it and say what else to remove. A journal
// from a NEWER strata (a downgrade mid-job) is torn down the same way: an unknown op is skipped and
// the mountinfo sweep removes whatever it mounted (tested in test/unit/records.test.ts).
//
//   {"op":"begin","v":2,"jobId":"42","uid":1000,"image":"sha256:…","at":"2026-…"}
//   {"op":"upper-tmpfs","target":"/run/strata/jobs/42/upper","sizeBytes":1073741824,…}
//   {"op":"mkdir","path":"/run/strata/jobs/42/rootfs","mode":493}
//   {"op":"rootfs","target":…,"layers":[…],"options":"lowerdir=…"}
//   {"op":"bind","rootfs":"/run/strata/jobs/42/rootfs","source":"/proc","target":"/proc",…}
//   {"op":"entry","path":"/run/strata/jobs/42/entry.json",…}
//
// The journal is not fsynced: on tmpfs it only has to survive the process.

import { closeSync, openSync, readFileSync, renameSync, writeFileSync, writeSync } from 'node:fs';
import { errnoCode, nodeError } from '../../errors.js';
import type { EntryConfig, Step } from './plan.js';

export const JOURNAL_VERSION = 3;
export const ENTRY_VERSION = 1;

export interface BeginRecord {
  op: 'begin';
  /** Journal format version; absent in version 1. */
  v?: number;
  jobId: string;
  uid: number;
  image: string;
  at: string;
}

/** Version 1 only: bind targets were made here; nothing to undo. */
export interface MountpointsRecord {
  op: 'mountpoints';
  rootfs: string;
  binds: unknown[];
}

export type JournalRecord = BeginRecord | Step | MountpointsRecord;

/** A journal being written: one descriptor for a whole set-up, each record one write(2). */
export interface JournalWriter {
  append(record: JournalRecord): void;
  close(): void;
}

/**
 * Open (create) the journal at `path` for appending. A record is on disk (in the page cache, as
 * with appendJournal) when `append` returns: a SIGKILL right after loses nothing.
 */
export function openJournal(path: string): JournalWriter {
  const fd = openSync(path, 'a', 0o600);
  return {
    append: (record) => void writeSync(fd, `${JSON.stringify(record)}\n`),
    close: () => closeSync(fd),
  };
}

/** The records of a journal; a torn last line (killed mid-write) is ignored. Missing → []. */
export function readJournal(path: string): JournalRecord[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return [];
    throw error;
  }
  const records: JournalRecord[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    try {
      const record = JSON.parse(line) as JournalRecord;
      if (record && typeof record === 'object' && typeof record.op === 'string') records.push(record);
    } catch {
      // Only the last line can be torn; anything after it was never written.
      break;
    }
  }
  return records;
}

/** The version of a journal's format (1 when its begin record has none). */
export const journalVersion = (records: JournalRecord[]): number => {
  const begin = records.find((record): record is BeginRecord => record.op === 'begin');
  return typeof begin?.v === 'number' ? begin.v : 1;
};

/** What entry.json holds: the entry config plus the format version. */
export type EntryFile = EntryConfig & { v: number };

/** Written atomically (its presence means "ready to enter"); readable by the job's tools. */
export function writeEntry(path: string, entry: EntryConfig): void {
  const temp = `${path}.tmp`;
  writeFileSync(temp, `${JSON.stringify({ v: ENTRY_VERSION, ...entry }, null, 2)}\n`, { mode: 0o644 });
  renameSync(temp, path);
}

/** Parse entry.json text; an entry without `v` is version 1. A newer or unknown version is refused. */
export function parseEntry(text: string, path: string): EntryFile {
  let entry: Partial<EntryFile>;
  try {
    entry = JSON.parse(text) as Partial<EntryFile>;
  } catch (error) {
    throw nodeError('E_ENTRY_DAMAGED', `${path} is damaged: ${(error as Error).message}`, { hint: 'end the job; its epilog removes the container' });
  }
  const version = entry.v ?? 1;
  // Formats 1..ENTRY_VERSION are read; anything else is refused as the SPANK plugin refuses it
  // (spank/json.c), so that `strata exec` and the task entry never disagree on an entry.
  if (typeof version !== 'number' || !Number.isInteger(version) || version < 1 || version > ENTRY_VERSION) {
    const writer = Number.isInteger(version) && version > ENTRY_VERSION ? 'a newer strata' : 'no strata release';
    throw nodeError('E_ENTRY_VERSION', `${path} was written by ${writer} (entry format ${JSON.stringify(version)}, this one reads ${ENTRY_VERSION})`, {
      hint: 'finish the strata upgrade on this node: every node must run the same version',
    });
  }
  if (typeof entry.rootfs !== 'string' || typeof entry.uid !== 'number' || !Array.isArray(entry.env)) {
    throw nodeError('E_ENTRY_DAMAGED', `${path} is damaged: it lacks rootfs, uid or env`, { hint: 'end the job; its epilog removes the container' });
  }
  return { ...entry, v: version } as EntryFile;
}

export const readEntry = (path: string): EntryFile => parseEntry(readFileSync(path, 'utf8'), path);
