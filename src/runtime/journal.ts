// The job journal: <runtime>/jobs/<job>/journal, one JSON object per line, appended BEFORE the
// step it describes is carried out. Teardown replays it backwards; every undo treats "already
// gone" as done, so a journal whose last step never happened (killed in between) is fine.
//
//   {"op":"begin","jobId":"42","uid":1000,"image":"sha256:…","at":"2026-…"}
//   {"op":"upper-tmpfs","target":"/run/strata/jobs/42/upper","sizeBytes":1073741824,…}
//   {"op":"mkdir","path":"/run/strata/jobs/42/rootfs","mode":493}
//   {"op":"rootfs","target":…,"layers":[…],"options":"lowerdir=…"}
//   {"op":"bind","source":"/proc","target":"/run/strata/jobs/42/rootfs/proc",…}   (resolved target)
//   {"op":"entry","path":"/run/strata/jobs/42/entry.json",…}
//
// The file lives on node-local tmpfs, so it is not fsynced: it only has to survive the process.

import { appendFileSync, readFileSync } from 'node:fs';
import { errnoCode } from '../errors.js';
import type { Step } from './plan.js';

export interface BeginRecord {
  op: 'begin';
  jobId: string;
  uid: number;
  image: string;
  at: string;
}

export type JournalRecord = BeginRecord | Step;

export function appendJournal(path: string, record: JournalRecord): void {
  appendFileSync(path, `${JSON.stringify(record)}\n`, { mode: 0o600 });
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
      records.push(JSON.parse(line) as JournalRecord);
    } catch {
      // Only the last line can be torn; anything after it was never written.
      break;
    }
  }
  return records;
}
