// Image source names as users type them, as skopeo spells them: `docker://REF`, `oci:DIR[:REF]`,
// `oci-archive:FILE[:REF]`, `docker-archive:FILE[:NAME:TAG]`. The path ends at the first `:`.

import { resolve } from 'node:path';
import { userError } from '../../errors.js';
import { RegistrySource } from '../../registry/source.js';
import { DockerArchiveSource } from './docker-archive.js';
import { OciLayoutSource } from './oci-layout.js';
import type { ImageSource, Platform } from './types.js';

export type SourceKind = 'docker' | 'oci' | 'oci-archive' | 'docker-archive';

export interface ParsedSource {
  kind: SourceKind;
  /** docker: the reference after `docker://`; others: the absolute path. */
  location: string;
  ref?: string;
}

const PREFIXES: [string, SourceKind][] = [
  ['docker://', 'docker'],
  ['oci-archive:', 'oci-archive'],
  ['docker-archive:', 'docker-archive'],
  ['oci:', 'oci'],
];

/** The image source named by `text`, or undefined when it names none of these kinds. Pure. */
export function parseImageSource(text: string): ParsedSource | undefined {
  for (const [prefix, kind] of PREFIXES) {
    if (!text.startsWith(prefix)) continue;
    const rest = text.slice(prefix.length);
    if (kind === 'docker') return { kind, location: rest };
    const colon = rest.indexOf(':');
    const path = colon < 0 ? rest : rest.slice(0, colon);
    const ref = colon < 0 ? undefined : rest.slice(colon + 1) || undefined;
    if (!path) throw userError('E_BAD_SOURCE', `"${text}" names no path`, { hint: `use ${prefix}PATH` });
    return { kind, location: resolve(path), ref };
  }
  return undefined;
}

export interface OpenSourceOptions {
  platform: Platform;
  insecure?: boolean;
  env?: NodeJS.ProcessEnv;
  /** docker: Pyxis's `USER@`, the login whose credentials are used. */
  login?: string;
}

export function openImageSource(parsed: ParsedSource, options: OpenSourceOptions): ImageSource {
  switch (parsed.kind) {
    case 'docker':
      return new RegistrySource(parsed.location, options.platform, { insecure: options.insecure, env: options.env, login: options.login });
    case 'oci':
      return new OciLayoutSource(parsed.location, 'dir', parsed.ref, options.platform);
    case 'oci-archive':
      return new OciLayoutSource(parsed.location, 'archive', parsed.ref, options.platform);
    case 'docker-archive':
      return new DockerArchiveSource(parsed.location, parsed.ref);
  }
}
