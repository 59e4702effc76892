// `--container-save`: at the end of the job, before teardown, the epilog saves the job's writable
// layer on this node, as an OCI layer (oci-layer.ts) read with the job user's identity
// (host/upper-walk.ts). A file target is written by tar2sqfs running as the user, to a temporary
// name beside it, then renamed by the user (atomic: a reader sees the old file or the whole new
// one). An image target (`~/NAME:TAG`) goes through the store owner's writer, started through sudo
// by the user like any user import, as one layer on top of the job's pinned image. Root never
// opens a path the user chose. The prolog records the request (request.ts); this reads it.

import { randomBytes } from 'node:crypto';
import { lstatSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { posix } from 'node:path';
import type { Config } from '../../config/types.js';
import { firstLine, isStrataError, userError, type StrataError } from '../../errors.js';
import { runAsUser, spawnAsUser, type JobUser } from '../../host/as-user.js';
import { startStoreWriter } from '../../host/store-writer.js';
import { walkUpper } from '../../host/upper-walk.js';
import { relayWrite } from '../../store/write/relay/caller.js';
import { portableCompression, tar2sqfsArgs } from '../../store/import/squashfs.js';
import { TOOLS } from '../../host/tools.js';
import { RuntimePaths } from '../paths.js';
import { readJournal, type BeginRecord } from '../job/records.js';
import { emptySummary, ociLayerTar, savedMarkerEntry, SaveReadError, type LayerSummary } from './oci-layer.js';
import { readUpperRecords } from './upper-records.js';
import { readSaveRequest } from './request.js';

export type SaveOutcome =
  | { result: 'saved'; target: string; user: JobUser; summary: LayerSummary; digest?: string; durationMs: number }
  | { result: 'not-set-up'; target: string }
  | { result: 'failed'; target: string; user: JobUser; error: StrataError };

/** Save this node's writable layer of the job, if it asked for it. Never throws. */
export async function saveJobLayer(jobId: string, config: Config): Promise<SaveOutcome | undefined> {
  const request = readSaveRequest(jobId, config);
  if (!request) return undefined;
  const target = request.target.kind === 'file' ? request.target.path : request.target.tag;
  const job = new RuntimePaths(config.runtimeDir).job(jobId);
  const records = readJournal(job.journal);
  const begin = records.find((record): record is BeginRecord => record.op === 'begin');
  const upper = records.find((record) => record.op === 'upper-tmpfs' || record.op === 'upper-dir');
  const ready = records.some((record) => record.op === 'entry') && lstatSync(job.error, { throwIfNoEntry: false }) === undefined;
  if (!begin || !upper || !ready) return { result: 'not-set-up', target };
  const upperRoot = upper.op === 'upper-tmpfs' ? upper.target : upper.path;
  const user = { uid: upper.uid, gid: upper.gid };
  const started = performance.now();
  const summary = emptySummary();
  const stops = new Stops();
  try {
    const layer = () => ociLayerStream(posix.join(upperRoot, 'u'), user, summary, stops);
    const save = (async () => {
      if (request.target.kind === 'file') return void (await writeSquashfsAsUser(() => markedWithBase(layer(), begin.image), request.target.path, user, config, jobId, stops));
      return publishAsUser(layer, request.target.tag, begin.image, user, config, jobId, stops);
    })();
    const digest = await withinTimeLimit(save, stops, config.container.saveTimeLimit, target);
    return { result: 'saved', target, user, summary, digest: digest || undefined, durationMs: Math.round(performance.now() - started) };
  } catch (thrown) {
    const error = isStrataError(thrown) ? thrown : userError('E_SAVE_FAILED', `--container-save ${target} failed: ${firstLine(String((thrown as Error)?.message ?? thrown))}`, { hint: 'see the strata log on the node' });
    return { result: 'failed', target, user, error };
  }
}

/** What a save started (processes, a writer), to stop at the time limit; later ones stop at once. */
class Stops {
  private readonly stops: Array<() => void> = [];
  private stopped = false;

  add(stop: () => void): void {
    if (this.stopped) stop();
    else this.stops.push(stop);
  }

  stopAll(): void {
    this.stopped = true;
    for (const stop of this.stops.splice(0)) stop();
  }
}

const OVERTIME = Symbol('overtime');

/** Milliseconds a stopped save gets to end its processes and remove its temporary file. */
const STOP_GRACE_MS = 5000;

/**
 * Slurm drains a node whose epilog outlives PrologEpilogTimeout: a save that takes longer than
 * `limitSeconds` (container.save_time_limit, below that timeout) is stopped and reported to the
 * user instead.
 */
async function withinTimeLimit<T>(save: Promise<T>, stops: Stops, limitSeconds: number, target: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const overtime = new Promise<typeof OVERTIME>((resolve) => (timer = setTimeout(() => resolve(OVERTIME), limitSeconds * 1000)));
  try {
    const first = await Promise.race([save, overtime]);
    if (first !== OVERTIME) return first as T;
  } finally {
    clearTimeout(timer);
  }
  stops.stopAll();
  let grace: NodeJS.Timeout | undefined;
  await Promise.race([save.catch(() => undefined), new Promise((resolve) => (grace = setTimeout(resolve, STOP_GRACE_MS)))]);
  clearTimeout(grace);
  throw userError('E_SAVE_FAILED', `cannot save the container to ${target}: it took longer than the site's limit of ${limitSeconds} s, and was stopped (nothing was saved)`, {
    hint: 'save less (remove what you do not need before the job ends, or write large results outside the container), or ask your admins about container.save_time_limit',
  });
}

/** The layer as an OCI tar, read by a walker of its own (each reader of the layer starts one). */
async function* ociLayerStream(upperDir: string, user: JobUser, summary: LayerSummary, stops: Stops): AsyncGenerator<Buffer> {
  const walk = walkUpper(upperDir, user);
  stops.add(walk.stop);
  try {
    Object.assign(summary, emptySummary());
    yield* ociLayerTar(readUpperRecords(walk.output), summary);
  } catch (error) {
    if (error instanceof SaveReadError) {
      throw userError('E_SAVE_FAILED', `cannot save the container's writable layer: ${error.message}`, {
        hint: 'make what you created in the container readable by yourself (or remove it) before the job ends',
      });
    }
    throw error;
  } finally {
    walk.stop();
    const { status, stderr } = await walk.exit;
    if (status !== 0 && status !== 3 && status !== 137 && stderr) throw userError('E_SAVE_FAILED', `cannot read the container's writable layer: ${firstLine(stderr)}`, { hint: 'see the strata log on the node' });
  }
}

/** The file form names its base (the job's pinned image), so the file can be given back as an image. */
async function* markedWithBase(layer: AsyncIterable<Buffer>, base: string): AsyncGenerator<Buffer> {
  yield savedMarkerEntry(base);
  yield* layer;
}

const failed = (path: string, why: string) =>
  userError('E_SAVE_FAILED', `cannot save the container to ${path}: ${why}`, { hint: 'save to a directory you can write (on a filesystem with room), e.g. --container-save=$HOME/NAME.sqsh' });

/** tar2sqfs as the user into a temporary file beside `path`, renamed over it by the user. */
async function writeSquashfsAsUser(layer: () => AsyncIterable<Buffer>, path: string, user: JobUser, config: Config, jobId: string, stops: Stops): Promise<void> {
  const temp = posix.join(posix.dirname(path), `.${posix.basename(path)}.strata-${jobId}-${randomBytes(4).toString('hex')}.partial`);
  // A saved file is a squashfs (what Pyxis and enroot read), compressed so that unsquashfs reads it.
  const compression = portableCompression(config.import.compression);
  const packer = spawnAsUser(user, [TOOLS.tar2sqfs, ...tar2sqfsArgs(compression, temp)], ['pipe', 'ignore', 'pipe']);
  packer.child.stdin?.on('error', () => undefined);
  // Stopped at the time limit: tar2sqfs ends, and the temporary file is removed below.
  stops.add(() => packer.child.kill('SIGKILL'));
  let streamError: unknown;
  try {
    await pipeline(layer(), packer.child.stdin!);
  } catch (error) {
    streamError = error;
    packer.child.kill('SIGKILL');
  }
  const status = await packer.exit;
  try {
    if (streamError !== undefined) throw streamError;
    if (status !== 0) throw failed(path, firstLine(packer.stderr()) || `tar2sqfs exit status ${status}`);
    const moved = await runAsUser(user, [TOOLS.mv, '-f', '-T', '--', temp, path]);
    if (moved.status !== 0) throw failed(path, firstLine(moved.stderr) || `mv exit status ${moved.status}`);
  } catch (error) {
    await runAsUser(user, [TOOLS.rm, '-f', '--', temp]);
    throw error;
  }
}

/** Base image + the layer as ~USER/NAME:TAG, through the owner's writer started by the user (sudo). */
async function publishAsUser(layer: () => AsyncIterable<Buffer>, tag: string, base: string, user: JobUser, config: Config, jobId: string, stops: Stops): Promise<string> {
  const writer = startStoreWriter({ how: 'sudo', ownerUid: (await stat(config.store.path)).uid, asUser: user });
  // Stopped at the time limit: a writer whose request ends early publishes nothing.
  stops.add(() => {
    writer.stdin.destroy();
    writer.stdout.destroy();
  });
  const outcome = await relayWrite(writer, { op: 'import-layer', sourceText: `tar:job-${jobId}-layer`, what: `the writable layer of job ${jobId}`, tag, base }, async () => layer());
  if (outcome.status !== 0 || !outcome.digest) {
    throw userError('E_SAVE_FAILED', `cannot save the container as ${tag}: the store writer ${outcome.ready ? 'refused it (its message is in the node\'s slurmd log)' : 'did not start (is strata\'s sudoers rule installed on this node?)'}`, {
      hint: 'user images need import.user_imports and the sudoers rule of docs/install.md on the compute nodes too; or save to a file (--container-save=PATH)',
    });
  }
  return outcome.digest;
}
