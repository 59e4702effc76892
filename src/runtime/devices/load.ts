// Reading CDI spec files from the configured directories (config `devices.spec_dirs`, by default
// /etc/cdi then /var/run/cdi). Only reads; each file is parsed (JSON or YAML by its extension, as
// the reference loader does), validated, and either used or reported as a problem. A broken file
// never hides the good ones, and never throws: what to make of a problem is the caller's call
// (doctor fails the node; a job asking for a device of that file fails with a node error).

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { CORE_SCHEMA, load } from 'js-yaml';
import type { LoadedSpec, SpecProblem } from './spec-types.js';
import { validateSpec } from './spec-validate.js';

/** Where CDI specs live unless the site says otherwise (the CDI convention, lowest priority first). */
export const DEFAULT_SPEC_DIRS: readonly string[] = ['/etc/cdi', '/var/run/cdi'];
/** A spec larger than this is not a spec (nvidia-ctk's for 8 GPUs is ~100 KiB). */
const MAX_SPEC_BYTES = 8 * 2 ** 20;

export interface SpecFiles {
  specs: LoadedSpec[];
  problems: SpecProblem[];
}

export interface LoadOptions {
  /** Owner a spec file must have (default root): hooks and mounts in it act as root on the node. */
  trustedUid?: number;
}

/** Parse and validate one spec file's text; `path` decides JSON or YAML and is used in messages. */
export function parseSpecText(text: string, path: string, priority: number): LoadedSpec | SpecProblem {
  let raw: unknown;
  try {
    raw = extname(path) === '.json' ? JSON.parse(text) : load(text, { filename: path, schema: CORE_SCHEMA });
  } catch (error) {
    // One line for doctor and the log; parsers quote the offending text, newlines included.
    const message = (error instanceof Error ? error.message : String(error)).replace(/\s+/g, ' ').slice(0, 200);
    return { path, message: `not valid ${extname(path) === '.json' ? 'JSON' : 'YAML'}: ${message}` };
  }
  const result = validateSpec(raw);
  if (result.errors) {
    const more = result.errors.length > 1 ? ` (and ${result.errors.length - 1} more: ${result.errors.slice(1, 4).join('; ')})` : '';
    return { path, message: `${result.errors[0]}${more}` };
  }
  return { path, priority, vendor: result.vendor, class: result.class, spec: result.spec };
}

/** Every `*.json` and `*.yaml` file of `dirs`, in priority order, then by name. Missing dirs are fine. */
export function loadSpecDirs(dirs: readonly string[], options: LoadOptions = {}): SpecFiles {
  const trustedUid = options.trustedUid ?? 0;
  const out: SpecFiles = { specs: [], problems: [] };
  dirs.forEach((dir, priority) => {
    let names: string[];
    try {
      names = readdirSync(dir).sort();
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') out.problems.push({ path: dir, message: `cannot list the directory: ${code ?? String(error)}` });
      return;
    }
    for (const name of names) {
      const ext = extname(name);
      if (ext !== '.json' && ext !== '.yaml') continue;
      const path = join(dir, name);
      try {
        const info = statSync(path);
        if (!info.isFile()) continue;
        // A spec names what root mounts into containers and which hooks it runs: a file that
        // someone other than root could have written is not one to trust.
        if (info.uid !== trustedUid || (info.mode & 0o022) !== 0) {
          out.problems.push({ path, message: `not used: owned by uid ${info.uid} with mode ${(info.mode & 0o777).toString(8)}; a spec must be owned by uid ${trustedUid} and writable by its owner only` });
          continue;
        }
        if (info.size > MAX_SPEC_BYTES) {
          out.problems.push({ path, message: `not used: ${info.size} bytes is too large for a CDI spec` });
          continue;
        }
        const parsed = parseSpecText(readFileSync(path, 'utf8'), path, priority);
        if ('spec' in parsed) out.specs.push(parsed);
        else out.problems.push(parsed);
      } catch (error) {
        out.problems.push({ path, message: `cannot read it: ${(error as NodeJS.ErrnoException).code ?? String(error)}` });
      }
    }
  });
  return out;
}
