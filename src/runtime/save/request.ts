// The job's --container-save request on the node: written by the prolog (root, in the job's
// root-owned directory), read by the epilog before teardown. Small on purpose: the prolog loads it.

import { lstatSync, readFileSync, writeFileSync } from 'node:fs';
import type { Config } from '../../config/types.js';
import { RuntimePaths } from '../paths.js';
import type { SaveTarget } from './target.js';

/** What the prolog leaves for the epilog: the parsed target and what the user typed. */
export interface SaveRequest {
  v: 1;
  text: string;
  target: SaveTarget;
}

export function recordSaveRequest(jobId: string, config: Config, request: Omit<SaveRequest, 'v'>): void {
  const path = new RuntimePaths(config.runtimeDir).job(jobId).save;
  writeFileSync(path, `${JSON.stringify({ v: 1, ...request })}\n`, { mode: 0o644 });
}

/** The job's save request, or undefined; a link or a damaged file counts as none (root wrote it). */
export function readSaveRequest(jobId: string, config: Config): SaveRequest | undefined {
  const path = new RuntimePaths(config.runtimeDir).job(jobId).save;
  const info = lstatSync(path, { throwIfNoEntry: false });
  if (!info?.isFile() || info.uid !== 0) return undefined;
  try {
    const request = JSON.parse(readFileSync(path, 'utf8')) as SaveRequest;
    return request?.v === 1 && (request.target?.kind === 'file' || request.target?.kind === 'image') ? request : undefined;
  } catch {
    return undefined;
  }
}

